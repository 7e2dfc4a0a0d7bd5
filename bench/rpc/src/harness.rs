//! The closed-loop load generator: `conns` connections, `in_flight` tasks
//! per connection, each task sending its next call as soon as the previous
//! one returns.

use std::fmt;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use hdrhistogram::Histogram;
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use tokio::task::JoinSet;

use crate::peer::{EchoClient, Peer};

/// Bytes in every echoed payload.
pub const PAYLOAD_LEN: usize = 64;

/// Connections, and calls in flight on each of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// TCP connections opened to the server.
    pub conns: usize,
    /// Concurrent callers sharing each connection.
    pub in_flight: usize,
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} × {}", self.conns, self.in_flight)
    }
}

impl std::str::FromStr for Shape {
    type Err = anyhow::Error;

    /// Parses `CONNSxIN_FLIGHT`, e.g. `16x16`.
    fn from_str(s: &str) -> anyhow::Result<Shape> {
        let (conns, in_flight) = s
            .split_once(['x', 'X'])
            .with_context(|| format!("shape {s:?} is not CONNSxIN_FLIGHT"))?;
        let shape = Shape {
            conns: conns.trim().parse()?,
            in_flight: in_flight.trim().parse()?,
        };
        anyhow::ensure!(
            shape.conns > 0 && shape.in_flight > 0,
            "shape {s:?} has a zero"
        );
        Ok(shape)
    }
}

/// How long to run each shape.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// Calls made before this are not counted.
    pub warmup: Duration,
    /// Calls completing within this window after the warm-up are counted.
    pub measure: Duration,
}

/// What one shape measured.
#[derive(Debug)]
pub struct Outcome {
    /// Calls completed inside the measurement window.
    pub calls: u64,
    /// The measurement window.
    pub window: Duration,
    /// Latency of each counted call, in nanoseconds.
    pub latency: Histogram<u64>,
}

impl Outcome {
    /// Completed calls per second over the window.
    pub fn calls_per_sec(&self) -> f64 {
        self.calls as f64 / self.window.as_secs_f64()
    }

    /// Latency at `quantile` (0.5 for p50).
    pub fn latency_at(&self, quantile: f64) -> Duration {
        Duration::from_nanos(self.latency.value_at_quantile(quantile))
    }
}

fn new_histogram() -> anyhow::Result<Histogram<u64>> {
    // 1 ns to 60 s at three significant figures.
    Ok(Histogram::new_with_bounds(1, 60_000_000_000, 3)?)
}

/// Connects, runs `shape` against the server at `addr` for `timing`, and
/// checks every echo. Call on the client runtime.
pub async fn run_shape<P: Peer>(
    addr: SocketAddr,
    shape: Shape,
    timing: Timing,
) -> anyhow::Result<Outcome> {
    let mut clients = Vec::with_capacity(shape.conns);
    for _ in 0..shape.conns {
        clients.push(P::connect(addr).await?);
    }

    let start = Instant::now();
    let measure_from = start + timing.warmup;
    let measure_until = measure_from + timing.measure;

    let mut callers = JoinSet::new();
    for client in &clients {
        for _ in 0..shape.in_flight {
            let rng = StdRng::from_rng(rand::thread_rng())?;
            callers.spawn(caller(client.clone(), rng, measure_from, measure_until));
        }
    }
    drop(clients);

    let mut outcome = Outcome {
        calls: 0,
        window: timing.measure,
        latency: new_histogram()?,
    };
    while let Some(joined) = callers.join_next().await {
        let tally = joined.context("caller task")??;
        outcome.calls += tally.calls;
        outcome.latency.add(&tally.latency)?;
    }
    Ok(outcome)
}

struct Tally {
    calls: u64,
    latency: Histogram<u64>,
}

/// One caller: sends fresh random payloads one after another until
/// `until`, counting the calls that complete in `[from, until)`.
async fn caller<C: EchoClient>(
    client: C,
    mut rng: StdRng,
    from: Instant,
    until: Instant,
) -> anyhow::Result<Tally> {
    let mut tally = Tally {
        calls: 0,
        latency: new_histogram()?,
    };
    let mut payload = [0u8; PAYLOAD_LEN];
    loop {
        rng.fill(&mut payload[..]);
        let sent = Instant::now();
        if sent >= until {
            return Ok(tally);
        }
        let reply = client.echo(payload.to_vec()).await?;
        let done = Instant::now();
        anyhow::ensure!(
            reply[..] == payload[..],
            "echo mismatch: sent {} bytes, got {} bytes back that differ",
            payload.len(),
            reply.len()
        );
        if done >= from && done < until {
            tally.calls += 1;
            let nanos = u64::try_from((done - sent).as_nanos()).unwrap_or(u64::MAX);
            tally.latency.saturating_record(nanos);
        }
    }
}
