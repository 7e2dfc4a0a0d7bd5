//! The download mode: one client fetches `--bytes` bytes (1 GiB by default)
//! from a server that sends them in `--chunk`-byte pieces (64 KiB), over one
//! loopback TCP connection; throughput in MiB/s for each peer in the same
//! run, `--runs` rounds interleaved (every peer once per round), median shown.
//!
//! Every server sends clones (or slices) of one buffer made per request by
//! [`chunk_buffer`], so producing the data costs nothing and what is measured
//! is the framework's path from that buffer to the client's counter.
//!
//! Adding a peer means implementing [`DownloadPeer`] and one entry in
//! [`run`]'s list.

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::Bytes;
use tokio::net::TcpListener;

use crate::msgwire_peer::{self, Msgwire};
use crate::raw_peer::Raw;
use crate::tonic_peer::Tonic;
use crate::{runtime, CLIENT_THREADS, SERVER_THREADS};

/// One peer of the download benchmark.
///
/// Like [`crate::peer::Peer`]: `serve` runs on the server runtime, `connect`
/// and `download` on the client runtime; only `download` is timed.
pub trait DownloadPeer {
    /// The name used on the command line and in the results table.
    const NAME: &'static str;

    /// What `connect` opens: one connection to the server.
    type Conn: Send + 'static;

    /// Serves downloads on every connection `listener` accepts, until the
    /// server runtime is shut down.
    fn serve(listener: TcpListener) -> impl Future<Output = anyhow::Result<()>> + Send + 'static;

    /// Opens one new connection to `addr`.
    fn connect(addr: SocketAddr) -> impl Future<Output = anyhow::Result<Self::Conn>> + Send;

    /// Asks the server on `conn` for `size` bytes in chunks of `chunk`
    /// bytes (the last one shorter if `size` is not a multiple), consumes
    /// them, and returns how many bytes arrived. Called more than once per
    /// connection (a warm-up, then the measured download).
    fn download(
        conn: &mut Self::Conn,
        size: u64,
        chunk: u32,
    ) -> impl Future<Output = anyhow::Result<u64>> + Send;
}

/// The buffer a server sends its chunks from: `chunk` bytes of a fixed
/// pattern, made once per request and cloned (a reference count) per chunk.
pub fn chunk_buffer(chunk: usize) -> Bytes {
    (0..chunk)
        .map(|i| (i % 251) as u8)
        .collect::<Vec<u8>>()
        .into()
}

/// The raw peer's request: u64 BE size, then u32 BE chunk size.
pub fn raw_request(size: u64, chunk: u32) -> [u8; 12] {
    let mut request = [0u8; 12];
    request[..8].copy_from_slice(&size.to_be_bytes());
    request[8..].copy_from_slice(&chunk.to_be_bytes());
    request
}

/// The inverse of [`raw_request`]: `(size, chunk)`.
pub fn split_raw_request(request: [u8; 12]) -> (u64, usize) {
    let mut size = [0u8; 8];
    size.copy_from_slice(&request[..8]);
    let mut chunk = [0u8; 4];
    chunk.copy_from_slice(&request[8..]);
    (u64::from_be_bytes(size), u32::from_be_bytes(chunk) as usize)
}

pub const USAGE: &str = "\
usage: rpc-bench download [--quick] [--bytes SIZE] [--chunk SIZE] [--warmup-bytes SIZE]
                          [--runs N] [--only NAME,...]

  --bytes SIZE         bytes per measured download (default 1GiB; --quick: 256MiB)
  --chunk SIZE         bytes per chunk the server sends (default 64KiB)
  --warmup-bytes SIZE  downloaded first on the same connection, not timed
                       (default 64MiB, at most --bytes; --quick: 16MiB)
  --runs N             rounds, every peer once per round, median shown (default 3)
  --only NAMES         peers, comma-separated: raw, tonic, msgwire
  SIZE is bytes, or a number with K/KiB, M/MiB or G/GiB (powers of 1024)";

/// The download mode's options.
#[derive(Debug)]
pub struct Options {
    bytes: u64,
    chunk: u32,
    warmup_bytes: Option<u64>,
    runs: usize,
    only: Option<Vec<String>>,
}

impl Options {
    /// Parses the arguments after `download`; `None` for `--help`.
    pub fn parse(mut args: impl Iterator<Item = String>) -> anyhow::Result<Option<Options>> {
        let mut opts = Options {
            bytes: 1 << 30,
            chunk: 64 << 10,
            warmup_bytes: None,
            runs: 3,
            only: None,
        };
        let mut quick = false;
        while let Some(arg) = args.next() {
            let mut value = || args.next().with_context(|| format!("{arg} needs a value"));
            match arg.as_str() {
                "--quick" => quick = true,
                "--bytes" => opts.bytes = parse_size(&value()?)?,
                "--chunk" => {
                    opts.chunk = u32::try_from(parse_size(&value()?)?)
                        .context("--chunk must be under 4 GiB")?
                }
                "--warmup-bytes" => opts.warmup_bytes = Some(parse_size(&value()?)?),
                "--runs" => opts.runs = value()?.parse().context("--runs")?,
                "--only" => opts.only = Some(value()?.split(',').map(str::to_owned).collect()),
                "-h" | "--help" => return Ok(None),
                other => anyhow::bail!("unknown argument {other:?}\n{USAGE}"),
            }
        }
        if quick {
            opts.bytes = 256 << 20;
            opts.warmup_bytes.get_or_insert(16 << 20);
        }
        anyhow::ensure!(opts.bytes > 0, "--bytes must be above zero");
        anyhow::ensure!(opts.chunk > 0, "--chunk must be above zero");
        anyhow::ensure!(opts.runs > 0, "--runs must be above zero");
        Ok(Some(opts))
    }

    fn warmup(&self) -> u64 {
        self.warmup_bytes.unwrap_or(64 << 20).min(self.bytes)
    }

    fn wants(&self, name: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|only| only.iter().any(|n| n == name))
    }
}

/// `"1GiB"`, `"64K"`, `"4096"`: a byte count, suffixes in powers of 1024.
fn parse_size(s: &str) -> anyhow::Result<u64> {
    let t = s.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, suffix) = t.split_at(digits);
    let number: u64 = number
        .parse()
        .with_context(|| format!("size {s:?} does not start with a number"))?;
    let shift = match suffix.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kib" => 10,
        "m" | "mib" => 20,
        "g" | "gib" => 30,
        other => anyhow::bail!("size {s:?}: unknown unit {other:?} (K/KiB, M/MiB, G/GiB)"),
    };
    number
        .checked_mul(1 << shift)
        .with_context(|| format!("size {s:?} is too large"))
}

/// What one measured download took.
#[derive(Debug, Clone, Copy)]
struct Transfer {
    bytes: u64,
    elapsed: Duration,
}

impl Transfer {
    fn mib_per_sec(&self) -> f64 {
        self.bytes as f64 / f64::from(1u32 << 20) / self.elapsed.as_secs_f64()
    }
}

/// One download against `P`: a fresh server runtime and a fresh client
/// runtime, one connection, the warm-up, then the timed download.
fn measure<P: DownloadPeer>(opts: &Options) -> anyhow::Result<Transfer> {
    let server_rt = runtime("server", SERVER_THREADS)?;
    let listener = server_rt.block_on(TcpListener::bind("127.0.0.1:0"))?;
    let addr = listener.local_addr()?;
    let server = server_rt.spawn(P::serve(listener));

    let client_rt = runtime("client", CLIENT_THREADS)?;
    let (size, chunk, warmup) = (opts.bytes, opts.chunk, opts.warmup());
    // The download runs in a task on the client runtime (as an application's work
    // does), not on this thread in `block_on`: there every item a framework's
    // connection task hands over would wake this thread from its futex.
    let download = client_rt.spawn(async move {
        let mut conn = P::connect(addr).await?;
        if warmup > 0 {
            let got = P::download(&mut conn, warmup, chunk)
                .await
                .context("warm-up")?;
            anyhow::ensure!(got == warmup, "warm-up: got {got} of {warmup} bytes");
        }
        let start = Instant::now();
        let got = P::download(&mut conn, size, chunk).await?;
        let elapsed = start.elapsed();
        anyhow::ensure!(got == size, "got {got} of {size} bytes");
        Ok(Transfer {
            bytes: got,
            elapsed,
        })
    });
    let outcome = client_rt
        .block_on(download)
        .context("download task")
        .and_then(|outcome| outcome);
    client_rt.shutdown_timeout(Duration::from_secs(1));

    if server.is_finished() {
        let result = server_rt.block_on(server).context("server task")?;
        result.with_context(|| format!("{} server stopped", P::NAME))?;
        anyhow::bail!("{} server stopped early", P::NAME);
    }
    server_rt.shutdown_timeout(Duration::from_secs(1));
    outcome.with_context(|| format!("{} download", P::NAME))
}

/// One row of the results: a peer and its runs, or `None` if it cannot be
/// measured yet.
struct Entry {
    name: &'static str,
    measure: Option<fn(&Options) -> anyhow::Result<Transfer>>,
    runs: Vec<Transfer>,
}

impl Entry {
    fn new<P: DownloadPeer>(available: bool) -> Entry {
        Entry {
            name: P::NAME,
            measure: available.then_some(measure::<P> as fn(&Options) -> _),
            runs: Vec::new(),
        }
    }

    /// Median MiB/s over the runs, `None` if not measured.
    fn median(&self) -> Option<f64> {
        let mut rates: Vec<f64> = self.runs.iter().map(Transfer::mib_per_sec).collect();
        if rates.is_empty() {
            return None;
        }
        rates.sort_by(f64::total_cmp);
        let mid = rates.len() / 2;
        Some(if rates.len() % 2 == 1 {
            rates[mid]
        } else {
            (rates[mid - 1] + rates[mid]) / 2.0
        })
    }
}

const NOT_MEASURED: &str = "not measured yet";

/// The download mode: measures, then prints the tables.
pub fn run(opts: &Options) -> anyhow::Result<()> {
    // Ceiling first, then the frameworks; msgwire is measured once
    // `msgwire_peer::DOWNLOAD_AVAILABLE` is set.
    let mut entries: Vec<Entry> = [
        Entry::new::<Raw>(true),
        Entry::new::<Tonic>(true),
        Entry::new::<Msgwire>(msgwire_peer::DOWNLOAD_AVAILABLE),
    ]
    .into_iter()
    .filter(|e| opts.wants(e.name))
    .collect();
    anyhow::ensure!(!entries.is_empty(), "no peer selected\n{USAGE}");

    for entry in &entries {
        if entry.measure.is_none() {
            eprintln!(
                "{}: {NOT_MEASURED} (src/msgwire_peer.rs, `impl DownloadPeer`), skipped",
                entry.name
            );
        }
    }
    for round in 1..=opts.runs {
        for entry in &mut entries {
            let Some(measure) = entry.measure else {
                continue;
            };
            eprintln!("download {} run {round}/{} ...", entry.name, opts.runs);
            let transfer = measure(opts)?;
            eprintln!("  {:.1} MiB/s", transfer.mib_per_sec());
            entry.runs.push(transfer);
        }
    }

    print_tables(opts, &entries);
    Ok(())
}

fn mib(bytes: u64) -> String {
    let mib = bytes as f64 / f64::from(1u32 << 20);
    if mib.fract() == 0.0 {
        format!("{mib:.0} MiB")
    } else {
        format!("{mib:.2} MiB")
    }
}

fn print_tables(opts: &Options, entries: &[Entry]) {
    let order: Vec<&str> = entries
        .iter()
        .filter(|e| e.measure.is_some())
        .map(|e| e.name)
        .collect();
    println!(
        "Loopback TCP download, {} ({} bytes) per measured run in {}-byte chunks over one \
         connection, after a {} warm-up download on it; {} run(s), interleaved ({} each round), \
         median shown; server and client runtimes {SERVER_THREADS} + {CLIENT_THREADS} worker \
         threads, {} CPUs.",
        mib(opts.bytes),
        opts.bytes,
        opts.chunk,
        mib(opts.warmup()),
        opts.runs,
        order.join(", "),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );
    println!();
    println!("| peer | MiB/s (median) | each run, in order (MiB/s) |");
    println!("|---|---:|---|");
    for entry in entries {
        match entry.median() {
            Some(median) => {
                let each: Vec<String> = entry
                    .runs
                    .iter()
                    .map(|t| format!("{:.1}", t.mib_per_sec()))
                    .collect();
                println!("| {} | {median:.1} | {} |", entry.name, each.join(" / "));
            }
            None => println!("| {} | {NOT_MEASURED} | — |", entry.name),
        }
    }
    for entry in entries.iter().filter(|e| e.median().is_none()) {
        println!();
        println!("{}: {NOT_MEASURED}", entry.name);
    }

    let find = |name: &str| entries.iter().find(|e| e.name == name);
    let pairs = [
        (<Msgwire as DownloadPeer>::NAME, <Raw as DownloadPeer>::NAME),
        (
            <Msgwire as DownloadPeer>::NAME,
            <Tonic as DownloadPeer>::NAME,
        ),
        (<Tonic as DownloadPeer>::NAME, <Raw as DownloadPeer>::NAME),
    ];
    let rows: Vec<(String, String)> = pairs
        .iter()
        .filter_map(|&(top, bottom)| {
            let (top, bottom) = (find(top)?, find(bottom)?);
            let ratio = match (top.median(), bottom.median()) {
                (Some(t), Some(b)) => format!("{:.2}", t / b),
                _ => NOT_MEASURED.to_owned(),
            };
            Some((format!("{} / {}", top.name, bottom.name), ratio))
        })
        .collect();
    if rows.is_empty() {
        return;
    }
    println!();
    println!("Ratios of the median MiB/s (above 1 means the first is faster):");
    println!();
    println!("| ratio | × |");
    println!("|---|---:|");
    for (pair, ratio) in rows {
        println!("| {pair} | {ratio} |");
    }
}
