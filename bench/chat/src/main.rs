//! Chat fan-out on loopback, one run, one table: a sender and `MEMBERS` members of one
//! room, (1) all on one `msgwire serve` — the in-process hub — and (2) the sender on
//! one `msgwire serve --redis` and the members on another, so that every message
//! crosses Redis pub/sub between two processes.
//!
//! Two phases per layout and round:
//! * sustained: the sender sends `MESSAGES` texts as fast as it may while staying at
//!   most `WINDOW` (32) messages ahead of the slowest member — within every buffer on
//!   the way, which drop the oldest under a longer burst (the chat's lag policy);
//!   deliveries per second = messages × members ÷ (last delivery − first send);
//! * paced: 500 messages per second for one second; delivery latency p50/p99 (send to
//!   receipt, one clock: every client is in this process).
//!
//! ```text
//! cargo run --release -- [MEMBERS [MESSAGES [ROUNDS]]]     (default 16 2000 3)
//! ```
//! Needs `redis-server` on PATH; builds the release `msgwire` itself.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures::StreamExt;
use hdrhistogram::Histogram;
use msgwire_rpc::{CallOptions, Client, Dialect, StreamReceiver, StreamSender, Value};
use msgwire_services::chat::{ChatKind, ChatMessage};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::Notify;
use tokio::process::{Child, Command};

const PACED_RATE: u64 = 500;

/// Messages the sender may be ahead of the slowest member.
const WINDOW: usize = 32;

fn arg(n: usize, default: usize) -> anyhow::Result<usize> {
    Ok(match std::env::args().nth(n) {
        Some(value) => value.parse()?,
        None => default,
    })
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A child process killed when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.start_kill();
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

async fn start_redis(dir: &Path) -> anyhow::Result<(Process, String)> {
    let port = free_port()?;
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--save", "", "--appendonly", "no"])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("cannot start redis-server (apt-get install redis-server)")?;
    let addr = format!("127.0.0.1:{port}");
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(&addr).await.is_ok() {
            return Ok((Process(child), format!("redis://{addr}")));
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    bail!("redis-server did not listen on {addr}")
}

/// Starts `msgwire serve` with `extra` flags; its RPC address.
async fn start_serve(msgwire: &Path, dir: &Path, extra: &[&str]) -> anyhow::Result<(Process, String)> {
    let mut child = Command::new(msgwire)
        .args(["serve", "--rpc", "127.0.0.1:0", "--http", "127.0.0.1:0"])
        .args(["--chat-backlog", "1000000"])
        .arg("--data-dir")
        .arg(dir)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .context("cannot start msgwire serve")?;
    let stdout = child.stdout.take().context("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let prefix = "msgwire serve: rpc listening on ";
    let mut rpc = None;
    while let Some(line) = lines.next_line().await? {
        if let Some(rest) = line.strip_prefix(prefix) {
            rpc = rest.split_whitespace().next().map(str::to_owned);
        }
        if line.starts_with("msgwire serve: http listening on ") {
            break;
        }
    }
    // Keep reading, so that the server never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let rpc = rpc.context("msgwire serve printed no RPC address")?;
    Ok((Process(child), rpc))
}

struct Member {
    tx: StreamSender<ChatMessage>,
    rx: StreamReceiver<ChatMessage>,
    _client: Client,
}

async fn join(addr: &str, user: &str, room: &str) -> anyhow::Result<Member> {
    let client = Client::connect_tcp(addr, Dialect::MsgpackRpc).await?;
    let (mut tx, mut rx) = client
        .open_stream::<_, ChatMessage, ChatMessage>("chat", &Vec::<Value>::new(), CallOptions::new())
        .await?;
    let mut join = ChatMessage::new(ChatKind::Join, "");
    join.user_id = user.into();
    join.room_id = room.into();
    tx.send(&join).await?;
    rx.next().await.context("no welcome")??;
    Ok(Member {
        tx,
        rx,
        _client: client,
    })
}

/// The next text's content within `wait`.
async fn next_text(member: &mut Member, wait: Duration) -> anyhow::Result<Option<String>> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let Ok(item) = tokio::time::timeout_at(deadline, member.rx.next()).await else {
            return Ok(None);
        };
        let message = item.context("the chat ended")??;
        if message.kind == ChatKind::Text {
            return Ok(Some(message.content));
        }
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Sample {
    deliveries_per_sec: f64,
    p50_us: f64,
    p99_us: f64,
}

/// One layout, one round: the sender on `send_addr`, `members` on `member_addr`.
async fn round(send_addr: &str, member_addr: &str, members: usize, messages: usize, room: &str) -> anyhow::Result<Sample> {
    let mut sender = join(send_addr, "sender", room).await?;
    let mut group = Vec::new();
    for m in 0..members {
        group.push(join(member_addr, &format!("m{m}"), room).await?);
    }
    // Open the path: probes until every member heard one, then drain the rest.
    for member in &mut group {
        let mut heard = false;
        for _ in 0..100 {
            sender.tx.send(&ChatMessage::new(ChatKind::Text, "probe")).await?;
            if next_text(member, Duration::from_millis(200)).await?.is_some() {
                heard = true;
                break;
            }
        }
        if !heard {
            bail!("no probe reached a member of {room}");
        }
    }
    for member in &mut group {
        while next_text(member, Duration::from_millis(300)).await?.is_some() {}
    }
    while next_text(&mut sender, Duration::from_millis(50)).await?.is_some() {}

    let epoch = Instant::now();
    let progress: Arc<Vec<AtomicUsize>> =
        Arc::new((0..members).map(|_| AtomicUsize::new(0)).collect());
    let moved = Arc::new(Notify::new());
    let receivers: Vec<_> = group
        .into_iter()
        .enumerate()
        .map(|(m, mut member)| {
            let (progress, moved) = (Arc::clone(&progress), Arc::clone(&moved));
            tokio::spawn(async move {
                // Burst, then paced: each content is "<phase> <nanos since epoch>".
                let mut burst_last = Duration::ZERO;
                let mut latencies = Histogram::<u64>::new(3)?;
                let paced = PACED_RATE as usize;
                for n in 0..messages + paced {
                    let content = next_text(&mut member, Duration::from_secs(30))
                        .await?
                        .with_context(|| format!("message {n} did not arrive"))?;
                    let now = epoch.elapsed();
                    let sent: u64 = content.split(' ').nth(1).context("no time")?.parse()?;
                    progress[m].store(n + 1, Ordering::Release);
                    moved.notify_one();
                    if n < messages {
                        burst_last = now;
                    } else {
                        let micros = (now.as_nanos() as u64).saturating_sub(sent) / 1_000;
                        latencies.record(micros.max(1))?;
                    }
                }
                anyhow::Ok((burst_last, latencies, member))
            })
        })
        .collect();
    let burst_start = epoch.elapsed();
    let slowest = || progress.iter().map(|p| p.load(Ordering::Acquire)).min().unwrap_or(0);
    for sent in 0..messages {
        while sent >= slowest() + WINDOW {
            // Woken by any member's progress; the bound only guards a missed wake-up.
            let _ = tokio::time::timeout(Duration::from_millis(5), moved.notified()).await;
        }
        let content = format!("burst {}", epoch.elapsed().as_nanos());
        sender.tx.send(&ChatMessage::new(ChatKind::Text, content)).await?;
    }
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / PACED_RATE));
    for _ in 0..PACED_RATE {
        tick.tick().await;
        let content = format!("paced {}", epoch.elapsed().as_nanos());
        sender.tx.send(&ChatMessage::new(ChatKind::Text, content)).await?;
    }
    let mut last = Duration::ZERO;
    let mut all = Histogram::<u64>::new(3)?;
    for receiver in receivers {
        let (burst_last, latencies, _member) = receiver.await??;
        last = last.max(burst_last);
        all.add(&latencies)?;
    }
    let burst = (last - burst_start).as_secs_f64();
    Ok(Sample {
        deliveries_per_sec: (messages * members) as f64 / burst,
        p50_us: all.value_at_quantile(0.5) as f64,
        p99_us: all.value_at_quantile(0.99) as f64,
    })
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let members = arg(1, 16)?;
    let messages = arg(2, 2000)?;
    let rounds = arg(3, 3)?.max(1);
    let status = std::process::Command::new("cargo")
        .args(["build", "--release", "-q", "-p", "msgwire"])
        .current_dir(repo())
        .status()?;
    if !status.success() {
        bail!("cargo build -p msgwire failed");
    }
    let msgwire = repo().join("target/release/msgwire");
    let tmp = std::env::temp_dir().join(format!("msgwire-chat-bench-{}", std::process::id()));
    std::fs::create_dir_all(&tmp)?;
    let (_redis, url) = start_redis(&tmp).await?;
    let (_local, local) = start_serve(&msgwire, &tmp.join("local"), &[]).await?;
    let (_a, a) = start_serve(&msgwire, &tmp.join("a"), &["--redis", &url]).await?;
    let (_b, b) = start_serve(&msgwire, &tmp.join("b"), &["--redis", &url]).await?;

    let layouts = [("in-process hub (one process)", local.clone(), local), ("Redis pub/sub (two processes)", a, b)];
    let mut samples = vec![Vec::new(); layouts.len()];
    for r in 0..rounds {
        for (l, (name, send, recv)) in layouts.iter().enumerate() {
            let sample = round(send, recv, members, messages, &format!("bench-{r}-{l}")).await?;
            eprintln!("round {} {name}: {sample:?}", r + 1);
            samples[l].push(sample);
        }
    }
    println!("{members} members, {messages} messages sustained (window {WINDOW}) + {PACED_RATE} paced at {PACED_RATE}/s; median of {rounds} rounds\n");
    println!("| layout | deliveries/s (sustained) | p50 latency (paced) | p99 latency (paced) |");
    println!("|---|---:|---:|---:|");
    let mut rows = Vec::new();
    for (l, (name, _, _)) in layouts.iter().enumerate() {
        let s = &samples[l];
        let rate = median(s.iter().map(|x| x.deliveries_per_sec).collect());
        let p50 = median(s.iter().map(|x| x.p50_us).collect());
        let p99 = median(s.iter().map(|x| x.p99_us).collect());
        println!("| {name} | {rate:.0} | {p50:.0} µs | {p99:.0} µs |");
        rows.push((rate, p99));
    }
    if let [(local_rate, local_p99), (redis_rate, redis_p99)] = rows[..] {
        println!(
            "\nRedis ÷ in-process: {:.2}× the deliveries/s, {:.2}× the p99 latency",
            redis_rate / local_rate,
            redis_p99 / local_p99
        );
    }
    let _ = std::fs::remove_dir_all(&tmp);
    Ok(())
}
