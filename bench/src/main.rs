//! msgwire's comparison benchmarks: same input, same chunking, same run, reported as
//! ratios. Results go in BENCHMARKS.md.
//!
//! ```text
//! cargo run --release -p msgwire-bench -- [--quick] [framing|scanner|buffers|all]
//! cargo build --release -p msgwire && cargo run --release -p msgwire-bench -- fairness
//! ```
//!
//! `fairness` runs the real `msgwire serve`, so it is not part of `all`.

mod alloc;
mod buffers;
mod fairness;
mod framing;
mod scanner;
mod timing;

#[global_allocator]
static ALLOC: alloc::Counting = alloc::Counting;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let what: Vec<&str> = args
        .iter()
        .filter(|a| !a.starts_with("--"))
        .map(String::as_str)
        .collect();
    let all = what.is_empty() || what.contains(&"all");
    let wants = |name: &str| all || what.contains(&name);
    println!("# msgwire benchmarks\n");
    println!("{}\n", timing::machine());
    if wants("framing") {
        framing::run(quick);
    }
    if wants("scanner") {
        scanner::run(quick);
    }
    if wants("buffers") {
        buffers::run(quick);
    }
    if what.contains(&"fairness") {
        fairness::run(quick);
    }
}
