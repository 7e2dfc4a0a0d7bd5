//! Fairness (issue 6, section 2): how long a small call waits while other connections
//! send the server large messages.
//!
//! A real `msgwire serve` (the release binary next to this one, or `$MSGWIRE_BIN`) runs
//! as a child process on 2 tokio worker threads (`TOKIO_WORKER_THREADS=2`). A victim
//! connection calls `add(1, 2)` over msgpack-rpc one call at a time for the measured
//! period, timing each round trip; meanwhile two attacker connections each send ~8 MiB
//! `echo` requests back to back (a writer thread each, never waiting) and read every
//! answer (a reader thread each, checking its envelope and size). Contents: an array of
//! one-element arrays (`[[0], [0], …]`, the most work per byte for the MessagePack
//! scanner) and one big bin (almost none), each in msgpack-rpc (scanned as it arrives)
//! and framed-map (length-prefixed, parsed once whole). Every scenario gets a fresh
//! server; the victim starts once the attackers have sent their first message.
//!
//! All client threads run in this process, on the same 2 cores as the server: the
//! figures are what a third client sees on a machine that two heavy senders keep busy.
//! Before the table, the time `MsgpackScanner::scan` takes to measure each content once
//! (in this process): the work the server does on every attacker message as it reads
//! it (msgpack-rpc) or parses it (framed-map, on the blocking pool).

use std::hint::black_box;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use msgwire_frame::msgpack::{MsgpackScanner, Scan};

use crate::timing::median_of;

/// The size of each attacker message.
const MESSAGE: usize = 8 << 20;
/// Attacker connections.
const ATTACKERS: usize = 2;

/// What an attacker's `echo` carries.
#[derive(Debug, Clone, Copy)]
enum Content {
    /// `[[0], [0], …]`: one container and one integer every two bytes.
    OneElementArrays,
    /// One bin of `MESSAGE` bytes.
    Bin,
}

impl Content {
    fn name(self) -> &'static str {
        match self {
            Content::OneElementArrays => "array of one-element arrays",
            Content::Bin => "one bin",
        }
    }

    /// The MessagePack value, about `MESSAGE` bytes.
    fn value(self) -> Vec<u8> {
        let mut out = Vec::with_capacity(MESSAGE);
        match self {
            Content::OneElementArrays => {
                let items = (MESSAGE - 64) / 2;
                out.push(0xdd); // array 32
                out.extend_from_slice(&(items as u32).to_be_bytes());
                for _ in 0..items {
                    out.extend_from_slice(&[0x91, 0x00]); // [0]
                }
            }
            Content::Bin => {
                let len = MESSAGE - 64;
                out.push(0xc6); // bin 32
                out.extend_from_slice(&(len as u32).to_be_bytes());
                out.extend((0..len).map(|i| (i * 31) as u8));
            }
        }
        out
    }
}

/// The attackers' dialect (the victim always speaks msgpack-rpc).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Wire {
    MsgpackRpc,
    FramedMap,
}

impl Wire {
    fn name(self) -> &'static str {
        match self {
            Wire::MsgpackRpc => "msgpack-rpc",
            Wire::FramedMap => "framed-map",
        }
    }

    /// `echo(value)` with id 1, and where the id's byte is (ids stay fixints, so every
    /// request and answer keeps its size).
    fn echo_request(self, value: &[u8]) -> (Vec<u8>, usize) {
        let mut out = Vec::with_capacity(value.len() + 64);
        match self {
            Wire::MsgpackRpc => {
                // [0, id, "echo", [value]]
                out.extend_from_slice(&[0x94, 0x00, 0x01, 0xa4]);
                out.extend_from_slice(b"echo");
                out.push(0x91);
                out.extend_from_slice(value);
                (out, 2)
            }
            Wire::FramedMap => {
                // [u32 length] {"method": "echo", "params": [value], "id": id}
                let mut body = vec![0x83, 0xa6];
                body.extend_from_slice(b"method");
                body.push(0xa4);
                body.extend_from_slice(b"echo");
                body.push(0xa6);
                body.extend_from_slice(b"params");
                body.push(0x91);
                body.extend_from_slice(value);
                body.push(0xa2);
                body.extend_from_slice(b"id");
                body.push(0x01);
                out.extend_from_slice(&(body.len() as u32).to_be_bytes());
                out.extend_from_slice(&body);
                let at = out.len() - 1;
                (out, at)
            }
        }
    }

    /// Reads one answer to an `echo` of `value_len` bytes; false when the connection
    /// ended. Panics on an answer that is not the echo.
    fn read_echo(self, stream: &mut TcpStream, buf: &mut Vec<u8>, value_len: usize) -> bool {
        match self {
            Wire::MsgpackRpc => {
                // [1, id, nil, value]
                buf.resize(4 + value_len, 0);
                if stream.read_exact(buf).is_err() {
                    return false;
                }
                assert!(
                    buf[0] == 0x94 && buf[1] == 0x01 && buf[3] == 0xc0,
                    "not a successful answer: {:02x?}",
                    &buf[..8]
                );
            }
            Wire::FramedMap => {
                let mut head = [0u8; 4];
                if stream.read_exact(&mut head).is_err() {
                    return false;
                }
                buf.resize(u32::from_be_bytes(head) as usize, 0);
                if stream.read_exact(buf).is_err() {
                    return false;
                }
                assert!(
                    buf.len() > value_len,
                    "an answer of {} bytes is not the echo",
                    buf.len()
                );
            }
        }
        true
    }
}

/// The `msgwire` binary: `$MSGWIRE_BIN`, else the one built next to this benchmark.
fn msgwire_bin() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("MSGWIRE_BIN") {
        return Some(PathBuf::from(path));
    }
    let exe = std::env::current_exe().ok()?;
    let path = exe.parent()?.join("msgwire");
    path.is_file().then_some(path)
}

/// A running `msgwire serve`, killed when dropped.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    fn start(bin: &PathBuf) -> Server {
        let mut child = Command::new(bin)
            .args(["serve", "--rpc", "127.0.0.1:0", "--http", "127.0.0.1:0"])
            .env("TOKIO_WORKER_THREADS", "2")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stdout));
        let prefix = "msgwire serve: rpc listening on ";
        let addr = loop {
            let line = lines
                .next()
                .expect("msgwire serve exited before saying where it listens")
                .expect("read msgwire serve's stdout");
            if let Some(rest) = line.strip_prefix(prefix) {
                let addr = rest.split_whitespace().next().unwrap_or_default();
                break addr.parse().expect("an address");
            }
        };
        // Keep reading its stdout so that it never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Server { child, addr }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One attacker: a writer thread sending `echo`s back to back, a reader thread reading
/// the answers. Both end when the server goes away.
struct Attacker {
    threads: [JoinHandle<()>; 2],
}

impl Attacker {
    fn start(
        addr: SocketAddr,
        wire: Wire,
        value: &[u8],
        answers: &Arc<AtomicUsize>,
        sent: &Arc<AtomicUsize>,
    ) -> Attacker {
        let stream = TcpStream::connect(addr).expect("connect an attacker");
        let mut reading = stream.try_clone().expect("clone the socket");
        let (mut request, id_at) = wire.echo_request(value);
        let value_len = value.len();
        let sent = Arc::clone(sent);
        let writer = std::thread::spawn(move || {
            let mut stream = stream;
            for id in (1..=127u8).cycle() {
                request[id_at] = id;
                if stream.write_all(&request).is_err() {
                    return;
                }
                sent.fetch_add(1, Relaxed);
            }
        });
        let answers = Arc::clone(answers);
        let reader = std::thread::spawn(move || {
            let mut buf = Vec::new();
            while wire.read_echo(&mut reading, &mut buf, value_len) {
                answers.fetch_add(1, Relaxed);
            }
        });
        Attacker {
            threads: [writer, reader],
        }
    }
}

/// `add(1, 2)` one call at a time for `period`; the round-trip time of each.
fn victim(addr: SocketAddr, period: Duration) -> Vec<Duration> {
    let mut stream = TcpStream::connect(addr).expect("connect the victim");
    stream.set_nodelay(true).expect("nodelay");
    let mut request = vec![0x94, 0x00, 0x00, 0xa3];
    request.extend_from_slice(b"add");
    request.extend_from_slice(&[0x92, 0x01, 0x02]);
    let mut times = Vec::new();
    let start = Instant::now();
    let mut answer = [0u8; 5];
    for id in (0..=127u8).cycle() {
        if start.elapsed() >= period {
            break;
        }
        request[2] = id;
        let sent = Instant::now();
        stream.write_all(&request).expect("send add");
        stream.read_exact(&mut answer).expect("read the answer");
        times.push(sent.elapsed());
        // [1, id, nil, 3]
        assert_eq!(
            answer,
            [0x94, 0x01, id, 0xc0, 0x03],
            "the answer to add(1, 2)"
        );
    }
    times
}

/// One scenario's figures.
struct Figures {
    calls: usize,
    p50: Duration,
    p99: Duration,
    max: Duration,
    /// Attacker echoes answered per second, all attackers together.
    echoes_per_sec: f64,
}

fn scenario(bin: &PathBuf, attack: Option<(Wire, Content)>, period: Duration) -> Figures {
    let server = Server::start(bin);
    let answers = Arc::new(AtomicUsize::new(0));
    let sent = Arc::new(AtomicUsize::new(0));
    let mut attackers = Vec::new();
    if let Some((wire, content)) = attack {
        let value = content.value();
        for _ in 0..ATTACKERS {
            attackers.push(Attacker::start(server.addr, wire, &value, &answers, &sent));
        }
        // Under way: every attacker has sent a whole message.
        while sent.load(Relaxed) < ATTACKERS {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    let answered_before = answers.load(Relaxed);
    let started = Instant::now();
    let mut times = victim(server.addr, period);
    let took = started.elapsed();
    let answered = answers.load(Relaxed) - answered_before;
    drop(server);
    for attacker in attackers {
        for thread in attacker.threads {
            let _ = thread.join();
        }
    }
    times.sort();
    let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
    Figures {
        calls: times.len(),
        p50: at(0.50),
        p99: at(0.99),
        max: times[times.len() - 1],
        echoes_per_sec: answered as f64 / took.as_secs_f64(),
    }
}

/// How long measuring `value` once takes the scanner (median of 5 runs).
fn scan_time(value: &[u8]) -> Duration {
    median_of(5, || {
        let mut scanner = MsgpackScanner::with_limits(usize::MAX, usize::MAX);
        let scanned = scanner.scan(black_box(value));
        assert!(matches!(scanned, Ok(Scan::Complete(n)) if n == value.len()));
    })
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}

/// Prints the table.
pub fn run(quick: bool) {
    let Some(bin) = msgwire_bin() else {
        println!(
            "fairness: no msgwire binary next to this benchmark; build it first \
             (`cargo build --release -p msgwire`) or set MSGWIRE_BIN\n"
        );
        return;
    };
    let period = Duration::from_secs(if quick { 3 } else { 10 });
    println!("## Fairness: a small call while two peers send 8 MiB echoes\n");
    println!(
        "`{}` serving on 2 worker threads; a victim calls `add(1, 2)` (msgpack-rpc) one \
         call at a time for {} s while {ATTACKERS} attacker connections send ~8 MiB `echo` \
         requests back to back and read the answers; all clients in this process, same \
         2 cores. A fresh server per row.\n",
        bin.display(),
        period.as_secs()
    );
    println!("Measuring each attacker value once with `MsgpackScanner::scan` (median of 5):\n");
    println!("| content | bytes | µs | ns a byte | µs per 64 KiB |");
    println!("|---|---:|---:|---:|---:|");
    for content in [Content::OneElementArrays, Content::Bin] {
        let value = content.value();
        let took = scan_time(&value).as_secs_f64() * 1e6;
        println!(
            "| {} | {} | {took:.1} | {:.3} | {:.1} |",
            content.name(),
            value.len(),
            took * 1e3 / value.len() as f64,
            took * 65536.0 / value.len() as f64
        );
    }
    println!();
    println!(
        "| attackers | content | victim calls | p50 (ms) | p99 (ms) | max (ms) | attacker echoes/s |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|");
    let mut attacks = vec![None];
    for wire in [Wire::MsgpackRpc, Wire::FramedMap] {
        for content in [Content::OneElementArrays, Content::Bin] {
            attacks.push(Some((wire, content)));
        }
    }
    for attack in attacks {
        let (attackers, content) = match attack {
            None => ("none".to_owned(), "—"),
            Some((wire, content)) => (format!("{ATTACKERS} × {}", wire.name()), content.name()),
        };
        let f = scenario(&bin, attack, period);
        println!(
            "| {attackers} | {content} | {} | {} | {} | {} | {:.1} |",
            f.calls,
            ms(f.p50),
            ms(f.p99),
            ms(f.max),
            f.echoes_per_sec
        );
    }
    println!();
}
