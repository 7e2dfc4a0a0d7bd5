//! Buffer strategies (being written).
pub fn run(_quick: bool) {}
