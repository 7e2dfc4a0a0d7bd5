//! WebSocket echo on loopback, one run, one table: msgwire's framing (the `/ws`
//! socket loop, echoing) against tokio-tungstenite, fastwebsockets and
//! tokio-websockets, plus msgwire's real `/ws` msgpack-rpc path and a raw TCP copy.
//!
//! The servers run on a runtime of one worker thread, the client on another, so that
//! on a 2-core machine each gets a core; every server is driven by the same client
//! ([`client`]). For each message size: messages answered per second and the ratio
//! msgwire ÷ that server (above 1: msgwire answers more).
//!
//! ```text
//! cargo run --release -- [CONNECTIONS [WINDOW [SECONDS [ROUNDS]]]]    (default 16 32 1 5)
//! WS_BENCH_SIZE=16384 WS_BENCH_ONLY=msgwire cargo run --release    (one size, some servers)
//! ```

mod client;
mod servers;

use std::time::Duration;

use client::{Load, Payload};
use servers::Kind;

const SIZES: [usize; 2] = [32, 16 * 1024];

const KINDS: [Kind; 7] = [
    Kind::Msgwire,
    Kind::Tungstenite,
    Kind::Fastwebsockets,
    Kind::TokioWebsockets,
    Kind::TokioWebsocketsForward,
    Kind::MsgwireRpc,
    Kind::RawTcp,
];

fn arg(n: usize, default: u64) -> anyhow::Result<u64> {
    Ok(match std::env::args().nth(n) {
        Some(value) => value.parse()?,
        None => default,
    })
}

fn runtime(name: &str) -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name(name)
        .enable_all()
        .build()?)
}

fn main() -> anyhow::Result<()> {
    let connections = usize::try_from(arg(1, 16)?)?;
    let window = usize::try_from(arg(2, 32)?)?;
    let seconds = arg(3, 1)? as f64;
    let rounds = arg(4, 5)?;
    let only: Option<String> = std::env::var("WS_BENCH_ONLY").ok();
    let server_rt = runtime("ws-server")?;
    let client_rt = runtime("ws-client")?;
    // samples[kind][size]: one per round. Rounds go through every cell in turn, so
    // that a change in the machine's load touches every server alike; the table
    // shows each cell's median.
    let mut samples = vec![vec![Vec::new(); SIZES.len()]; KINDS.len()];
    let mut cpu = samples.clone();
    for round in 1..=rounds {
        for (s, &size) in SIZES.iter().enumerate() {
            if std::env::var("WS_BENCH_SIZE").is_ok_and(|only| only != size.to_string()) {
                continue;
            }
            for (k, &kind) in KINDS.iter().enumerate() {
                if only.as_deref().is_some_and(|o| !kind.name().contains(o)) {
                    continue;
                }
                let (addr, accept) = server_rt.block_on(servers::start(kind))?;
                let payload = match kind {
                    Kind::MsgwireRpc => Payload::Rpc,
                    _ => Payload::Echo,
                };
                let load = Load {
                    connections,
                    window,
                    size,
                    warmup: Duration::from_millis(300),
                    measure: Duration::from_secs_f64(seconds),
                };
                let measured =
                    client_rt.block_on(client::run(addr, payload, load, server_cpu_ns))?;
                accept.abort();
                eprintln!(
                    "round {round}: {size:>6} B  {:<34} {:>12.0} msg/s {:>8.0} ns/msg",
                    kind.name(),
                    measured.rate,
                    measured.server_ns
                );
                samples[k][s].push(measured.rate);
                cpu[k][s].push(measured.server_ns);
                // Let the server drop the closed connections before the next one.
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
    let medians = |table: &mut Vec<Vec<Vec<f64>>>| -> Vec<Vec<f64>> {
        table
            .iter_mut()
            .map(|sizes| sizes.iter_mut().map(|cell| median(cell)).collect())
            .collect()
    };
    let rates = medians(&mut samples);
    let cpu = medians(&mut cpu);
    println!(
        "\nWebSocket echo on loopback: {connections} connections x {window} messages in \
         flight; median of {rounds} rounds of {seconds} s per cell; server and client on one \
         worker thread each\n"
    );
    print!("| server |");
    for size in SIZES {
        let size = label(size);
        print!(" {size} msg/s | msgwire ÷ | {size} server µs/msg | msgwire ÷ (CPU) |");
    }
    println!();
    print!("|---|");
    for _ in SIZES {
        print!("---:|---:|---:|---:|");
    }
    println!();
    for (k, kind) in KINDS.iter().enumerate() {
        print!("| {} |", kind.name());
        for s in 0..SIZES.len() {
            let ratio = |ours: f64, theirs: f64| {
                if ours > 0.0 && theirs > 0.0 {
                    format!("{:.2}x", ours / theirs)
                } else {
                    "—".to_owned()
                }
            };
            print!(
                " {} | {} | {:.2} | {} |",
                thousands(rates[k][s]),
                ratio(rates[0][s], rates[k][s]),
                cpu[k][s] / 1000.0,
                ratio(cpu[k][s], cpu[0][s]),
            );
        }
        println!();
    }
    println!(
        "\nmsgwire ÷: msgwire's echo server's messages/s over this server's (above 1: \
         msgwire answers more); (CPU): this server's CPU time per message over msgwire's \
         (above 1: msgwire spends less), from the server thread's schedstat."
    );
    Ok(())
}

/// CPU time (ns) used so far by the server runtime's worker thread, from
/// `/proc/self/task/*/schedstat` (0 where there is no such file).
fn server_cpu_ns() -> u64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    let mut total = 0;
    for task in tasks.flatten() {
        let path = task.path();
        let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        if comm.trim() != "ws-server" {
            continue;
        }
        let stat = std::fs::read_to_string(path.join("schedstat")).unwrap_or_default();
        total += stat
            .split_whitespace()
            .next()
            .and_then(|ns| ns.parse::<u64>().ok())
            .unwrap_or(0);
    }
    total
}

fn median(cell: &mut [f64]) -> f64 {
    cell.sort_by(f64::total_cmp);
    match cell.len() {
        0 => 0.0,
        n if n % 2 == 1 => cell[n / 2],
        n => (cell[n / 2 - 1] + cell[n / 2]) / 2.0,
    }
}

fn label(size: usize) -> String {
    if size >= 1024 {
        format!("{} KiB", size / 1024)
    } else {
        format!("{size} B")
    }
}

fn thousands(rate: f64) -> String {
    let digits = format!("{:.0}", rate);
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}
