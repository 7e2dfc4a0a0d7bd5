//! `rpc-bench`: msgwire RPC against tonic, tarpc and raw tokio TCP over
//! loopback, all in one process and one run. Two modes:
//!
//! * unary (the default): a 64-byte echo, calls/s and latency per shape;
//!   the raw peer (`raw_peer.rs`, a length-prefixed echo on a plain
//!   `TcpStream`) is the ceiling;
//! * `download`: one connection fetches 1 GiB in 64 KiB chunks, MiB/s
//!   (`download.rs`); a raw TCP copy is the ceiling, tonic streams it as a
//!   server-streaming RPC, msgwire is a slot to fill in `msgwire_peer.rs`.
//!
//! Each framework gets its own server runtime and, per shape, a fresh client
//! runtime. Both are multi-threaded tokio runtimes with two worker threads:
//! the reference machine has two cores, and giving server and client two
//! each is the same for every framework (they compete for the same two
//! cores, as a co-located client and server do).

mod download;
mod harness;
mod msgwire_peer;
mod peer;
mod raw_peer;
mod tarpc_peer;
mod tonic_peer;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::runtime::Runtime;

use harness::{Shape, Timing};
use peer::Peer;

/// Worker threads of the server runtime.
const SERVER_THREADS: usize = 2;
/// Worker threads of the client (load generator) runtime.
const CLIENT_THREADS: usize = 2;

const USAGE: &str = "\
usage: rpc-bench [unary] [--quick] [--secs S] [--warmup S] [--only NAME,...] [--shapes CxF,...]
       rpc-bench download [OPTIONS]   (rpc-bench download --help)

  --quick          1 s per shape after a 0.5 s warm-up (default: 5 s after 1 s)
  --secs S         measured seconds per shape
  --warmup S       warm-up seconds per shape (calls not counted)
  --only NAMES     frameworks to run, comma-separated: msgwire, tonic, tarpc, raw
  --shapes SHAPES  connections x calls in flight per connection
                   (default: 1x1,1x128,16x16)";

#[derive(Debug)]
struct Options {
    timing: Timing,
    only: Option<Vec<String>>,
    shapes: Vec<Shape>,
}

impl Options {
    fn parse(mut args: impl Iterator<Item = String>) -> anyhow::Result<Option<Options>> {
        let mut timing = Timing {
            warmup: Duration::from_secs(1),
            measure: Duration::from_secs(5),
        };
        let mut only = None;
        let mut shapes = vec![
            Shape {
                conns: 1,
                in_flight: 1,
            },
            Shape {
                conns: 1,
                in_flight: 128,
            },
            Shape {
                conns: 16,
                in_flight: 16,
            },
        ];
        while let Some(arg) = args.next() {
            let mut value = || args.next().with_context(|| format!("{arg} needs a value"));
            match arg.as_str() {
                "--quick" => {
                    timing.warmup = Duration::from_millis(500);
                    timing.measure = Duration::from_secs(1);
                }
                "--secs" => timing.measure = seconds(&value()?)?,
                "--warmup" => timing.warmup = seconds(&value()?)?,
                "--only" => only = Some(value()?.split(',').map(str::to_owned).collect()),
                "--shapes" => {
                    shapes = value()?
                        .split(',')
                        .map(str::parse)
                        .collect::<anyhow::Result<_>>()?
                }
                "-h" | "--help" => return Ok(None),
                other => anyhow::bail!("unknown argument {other:?}\n{USAGE}"),
            }
        }
        anyhow::ensure!(!timing.measure.is_zero(), "--secs must be above zero");
        Ok(Some(Options {
            timing,
            only,
            shapes,
        }))
    }

    fn wants(&self, name: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|only| only.iter().any(|n| n == name))
    }
}

fn seconds(s: &str) -> anyhow::Result<Duration> {
    Ok(Duration::try_from_secs_f64(s.parse()?)?)
}

/// One line of the results table.
#[derive(Debug)]
struct Row {
    framework: &'static str,
    shape: Shape,
    calls_per_sec: f64,
    p50: Duration,
    p99: Duration,
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rpc-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1).peekable();
    match args.peek().map(String::as_str) {
        Some("download") => {
            args.next();
            let Some(opts) = download::Options::parse(args)? else {
                println!("{}", download::USAGE);
                return Ok(());
            };
            download::run(&opts)
        }
        Some("unary") => {
            args.next();
            unary(args)
        }
        _ => unary(args),
    }
}

fn unary(args: impl Iterator<Item = String>) -> anyhow::Result<()> {
    let Some(opts) = Options::parse(args)? else {
        println!("{USAGE}");
        return Ok(());
    };

    let mut rows = Vec::new();
    // msgwire first: it is the baseline of the ratio table.
    if opts.wants(<msgwire_peer::Msgwire as Peer>::NAME) {
        if msgwire_peer::AVAILABLE {
            rows.extend(bench::<msgwire_peer::Msgwire>(&opts)?);
        } else {
            eprintln!("msgwire: not wired in yet (src/msgwire_peer.rs), skipped");
        }
    }
    if opts.wants(<tonic_peer::Tonic as Peer>::NAME) {
        rows.extend(bench::<tonic_peer::Tonic>(&opts)?);
    }
    if opts.wants(tarpc_peer::Tarpc::NAME) {
        rows.extend(bench::<tarpc_peer::Tarpc>(&opts)?);
    }
    // The ceiling: no framework at all, same payloads and shapes.
    if opts.wants(<raw_peer::Raw as Peer>::NAME) {
        rows.extend(bench::<raw_peer::Raw>(&opts)?);
    }
    anyhow::ensure!(!rows.is_empty(), "no framework selected");

    print_tables(&opts, &rows);
    Ok(())
}

fn runtime(role: &str, threads: usize) -> anyhow::Result<Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .thread_name(format!("rpc-bench-{role}"))
        .enable_all()
        .build()
        .with_context(|| format!("{role} runtime"))
}

/// Runs every shape against `P`'s server, started on a runtime of its own.
fn bench<P: Peer>(opts: &Options) -> anyhow::Result<Vec<Row>> {
    let server_rt = runtime("server", SERVER_THREADS)?;
    let listener = server_rt.block_on(TcpListener::bind("127.0.0.1:0"))?;
    let addr: SocketAddr = listener.local_addr()?;
    let server = server_rt.spawn(P::serve(listener));

    let mut rows = Vec::new();
    for &shape in &opts.shapes {
        if server.is_finished() {
            break;
        }
        eprintln!("{} {shape} ...", P::NAME);
        // A fresh client runtime per shape, so no connection or task of the
        // previous shape is still around.
        let client_rt = runtime("client", CLIENT_THREADS)?;
        let outcome = client_rt
            .block_on(harness::run_shape::<P>(addr, shape, opts.timing))
            .with_context(|| format!("{} {shape}", P::NAME))?;
        client_rt.shutdown_timeout(Duration::from_secs(1));
        rows.push(Row {
            framework: P::NAME,
            shape,
            calls_per_sec: outcome.calls_per_sec(),
            p50: outcome.latency_at(0.50),
            p99: outcome.latency_at(0.99),
        });
    }

    if server.is_finished() {
        let result = server_rt.block_on(server).context("server task")?;
        result.with_context(|| format!("{} server stopped", P::NAME))?;
        anyhow::bail!("{} server stopped early", P::NAME);
    }
    server_rt.shutdown_timeout(Duration::from_secs(1));
    Ok(rows)
}

fn micros(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e6)
}

fn print_tables(opts: &Options, rows: &[Row]) {
    println!(
        "Loopback TCP echo, {}-byte payload, closed loop; {} s measured after {} s warm-up; \
         server and client runtimes {SERVER_THREADS} + {CLIENT_THREADS} worker threads, \
         {} CPUs; raw = u32 BE length-prefixed echo on a plain tokio TcpStream (the ceiling).",
        harness::PAYLOAD_LEN,
        opts.timing.measure.as_secs_f64(),
        opts.timing.warmup.as_secs_f64(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );
    println!();
    println!("| framework | shape (conns × in flight) | calls/s | p50 (µs) | p99 (µs) |");
    println!("|---|---|---:|---:|---:|");
    for row in rows {
        println!(
            "| {} | {} | {:.0} | {} | {} |",
            row.framework,
            row.shape,
            row.calls_per_sec,
            micros(row.p50),
            micros(row.p99)
        );
    }

    // Ratios against the first framework run (msgwire once it is wired in).
    let base_name = rows[0].framework;
    let others: Vec<&Row> = rows.iter().filter(|r| r.framework != base_name).collect();
    if others.is_empty() {
        return;
    }
    println!();
    println!(
        "Ratios, {base_name} ÷ other: calls/s above 1 means {base_name} is faster; \
         p50/p99 below 1 means {base_name} is quicker."
    );
    println!();
    println!("| {base_name} vs | shape | calls/s × | p50 × | p99 × |");
    println!("|---|---|---:|---:|---:|");
    for other in others {
        let Some(base) = rows
            .iter()
            .find(|r| r.framework == base_name && r.shape == other.shape)
        else {
            continue;
        };
        println!(
            "| {} | {} | {:.2} | {:.2} | {:.2} |",
            other.framework,
            other.shape,
            base.calls_per_sec / other.calls_per_sec,
            base.p50.as_secs_f64() / other.p50.as_secs_f64(),
            base.p99.as_secs_f64() / other.p99.as_secs_f64(),
        );
    }
}
