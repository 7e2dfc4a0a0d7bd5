//! MessagePack scanning (being written).
pub fn run(_quick: bool) {}
