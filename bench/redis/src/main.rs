//! `RedisCache::get` against a direct `redis` client `GET` on a `ConnectionManager`,
//! one run, one table: a ~200-byte MessagePack value, read by 1 caller in sequence and
//! by 32 concurrent callers, against a redis-server this program starts (persistence
//! off) on a free loopback port.
//!
//! Rounds alternate between the two clients so that a change in the machine's load
//! touches both alike; each cell is the median of its rounds (ops/s, p50, p99, and
//! this process's CPU time per operation, which other load on the machine disturbs
//! less than wall time).
//!
//! ```text
//! cargo run --release -- [ROUNDS [SEQUENTIAL_OPS [CONCURRENT_OPS]]]   (default 7 10000 100000)
//! ```

#[path = "../../../crates/msgwire-redis/tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::Context as _;
use bytes::Bytes;
use msgwire_redis::{RedisCache, RedisCacheConfig};
use msgwire_services::cache::{encode, key, Cache, Key};
use redis::aio::ConnectionManager;
use redis::io::tcp::TcpSettings;
use redis::IntoConnectionInfo;

const CONCURRENT: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Client {
    Cache,
    Direct,
}

impl Client {
    fn name(self) -> &'static str {
        match self {
            Client::Cache => "RedisCache::get",
            Client::Direct => "redis GET, ConnectionManager",
        }
    }
}

/// One round of one client in one mode.
#[derive(Debug, Clone, Copy)]
struct Sample {
    ops_per_s: f64,
    p50_us: f64,
    p99_us: f64,
    /// This process's CPU time (user + system, all threads) per operation: what the
    /// client costs, less sensitive to other load on the machine than wall time.
    cpu_us: f64,
}

/// This process's CPU time so far, from /proc/self/stat (Linux; clock ticks of 10 ms,
/// USER_HZ = 100): `None` elsewhere.
fn cpu_time() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

fn percentile_us(sorted_ns: &[u64], p: f64) -> f64 {
    let n = sorted_ns.len();
    if n == 0 {
        return 0.0;
    }
    let i = ((n as f64 * p).ceil() as usize).clamp(1, n) - 1;
    sorted_ns[i] as f64 / 1000.0
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

/// The medians of the rounds' ops/s, p50 and p99.
fn medians(samples: &[Sample]) -> Sample {
    Sample {
        ops_per_s: median(samples.iter().map(|s| s.ops_per_s).collect()),
        p50_us: median(samples.iter().map(|s| s.p50_us).collect()),
        p99_us: median(samples.iter().map(|s| s.p99_us).collect()),
        cpu_us: median(samples.iter().map(|s| s.cpu_us).collect()),
    }
}

fn arg(n: usize, default: usize) -> anyhow::Result<usize> {
    Ok(match std::env::args().nth(n) {
        Some(value) => value.parse()?,
        None => default,
    })
}

/// ~200 bytes of MessagePack: a user record.
fn value() -> anyhow::Result<Bytes> {
    let mut user = BTreeMap::new();
    user.insert("id", "1".to_owned());
    user.insert("name", "Ada Lovelace".to_owned());
    user.insert("email", "ada@example.invalid".to_owned());
    user.insert("role", "admin".to_owned());
    user.insert("bio", "x".repeat(130));
    Ok(encode(&user)?)
}

async fn one_caller(
    client: Client,
    cache: RedisCache,
    direct: ConnectionManager,
    k: Key,
    ops: usize,
    expected: usize,
) -> anyhow::Result<Vec<u64>> {
    let mut latencies = Vec::with_capacity(ops);
    let mut direct = direct;
    let raw_key = k.as_str().to_owned();
    for _ in 0..ops {
        let start = Instant::now();
        let len = match client {
            Client::Cache => cache.get(&k).await?.map(|v| v.len()),
            Client::Direct => redis::cmd("GET")
                .arg(&raw_key)
                .query_async::<Option<Vec<u8>>>(&mut direct)
                .await?
                .map(|v| v.len()),
        };
        latencies.push(start.elapsed().as_nanos() as u64);
        anyhow::ensure!(len == Some(expected), "read {len:?} bytes, not {expected}");
    }
    Ok(latencies)
}

async fn run(
    client: Client,
    cache: &RedisCache,
    direct: &ConnectionManager,
    callers: usize,
    ops: usize,
    expected: usize,
) -> anyhow::Result<Sample> {
    let per_caller = ops / callers;
    let cpu_start = cpu_time();
    let start = Instant::now();
    let tasks: Vec<_> = (0..callers)
        .map(|_| {
            tokio::spawn(one_caller(
                client,
                cache.clone(),
                direct.clone(),
                key("bench", 1),
                per_caller,
                expected,
            ))
        })
        .collect();
    let mut latencies = Vec::with_capacity(per_caller * callers);
    for task in tasks {
        latencies.extend(task.await??);
    }
    let time = start.elapsed();
    let cpu = match (cpu_start, cpu_time()) {
        (Some(a), Some(b)) => b - a,
        _ => f64::NAN,
    };
    latencies.sort_unstable();
    Ok(Sample {
        ops_per_s: (per_caller * callers) as f64 / time.as_secs_f64(),
        p50_us: percentile_us(&latencies, 0.5),
        p99_us: percentile_us(&latencies, 0.99),
        cpu_us: cpu * 1e6 / (per_caller * callers) as f64,
    })
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let rounds = arg(1, 7)?;
    let sequential_ops = arg(2, 10_000)?;
    let concurrent_ops = arg(3, 100_000)?;
    let server = support::RedisServer::start();
    let cache = RedisCache::new(RedisCacheConfig::new(server.url()))?;
    // The same TCP settings as RedisCache's (TCP_NODELAY), the client's defaults
    // otherwise.
    let direct_info = server
        .url()
        .into_connection_info()?
        .set_tcp_settings(TcpSettings::default().set_nodelay(true));
    let direct = redis::Client::open(direct_info)?
        .get_connection_manager()
        .await
        .context("connecting the direct client")?;
    let value = value()?;
    let expected = value.len();
    cache.set(&key("bench", 1), value, None).await?;

    let modes = [(1, sequential_ops), (CONCURRENT, concurrent_ops)];
    let clients = [Client::Cache, Client::Direct];
    // samples[mode][client]: one per round.
    let mut samples: Vec<Vec<Vec<Sample>>> = modes
        .iter()
        .map(|_| clients.iter().map(|_| Vec::new()).collect())
        .collect();
    // Warm up both clients (connections, allocator).
    for client in clients {
        run(client, &cache, &direct, CONCURRENT, 20_000, expected).await?;
    }
    for round in 0..rounds {
        for (m, &(callers, ops)) in modes.iter().enumerate() {
            // Alternate which client goes first.
            let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
            for c in order {
                let sample = run(clients[c], &cache, &direct, callers, ops, expected).await?;
                samples[m][c].push(sample);
            }
        }
    }

    let version = std::process::Command::new("redis-server")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    println!(
        "GET of a {expected}-byte MessagePack value on loopback; {version}; {} cores; \
         medians of {rounds} rounds",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!();
    println!("| callers | client | ops/s | p50 µs | p99 µs | client CPU µs/op |");
    println!("|---:|---|---:|---:|---:|---:|");
    let mut summary = Vec::new();
    for (m, &(callers, _)) in modes.iter().enumerate() {
        let mut row = Vec::new();
        for (c, client) in clients.iter().enumerate() {
            let cell = medians(&samples[m][c]);
            println!(
                "| {callers} | {} | {:.0} | {:.1} | {:.1} | {:.1} |",
                client.name(),
                cell.ops_per_s,
                cell.p50_us,
                cell.p99_us,
                cell.cpu_us
            );
            row.push(cell);
        }
        summary.push((callers, row));
    }
    println!();
    for (callers, row) in summary {
        let (cache, direct) = (row[0], row[1]);
        println!(
            "{callers:>2} caller(s): RedisCache ÷ direct: ops/s {:.2}×, p50 {:.2}×, p99 {:.2}×, \
             client CPU/op {:.2}×",
            cache.ops_per_s / direct.ops_per_s,
            cache.p50_us / direct.p50_us,
            cache.p99_us / direct.p99_us,
            cache.cpu_us / direct.cpu_us,
        );
    }
    drop(server);
    Ok(())
}
