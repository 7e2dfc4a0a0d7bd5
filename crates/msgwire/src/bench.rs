//! `msgwire bench`: a load generator against any msgwire (or msgpack-rpc) server.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use msgwire_rpc::{CallOptions, Client, Value};

use crate::call::{timeout, CallSpec};
use msgwire_http::json::to_json;

/// Options of `msgwire bench`. Every call sends the same params, and every answer must
/// equal the first one.
#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(flatten)]
    call: CallSpec,

    /// Connections to open.
    #[arg(long, value_name = "N", default_value_t = 4)]
    connections: usize,

    /// Calls in flight on each connection at any moment.
    #[arg(long, value_name = "M", default_value_t = 16)]
    in_flight: usize,

    /// Run for this many seconds (the default, 10, unless --calls is given).
    #[arg(long, value_name = "SECS", conflicts_with = "calls")]
    duration: Option<f64>,

    /// Make exactly this many calls, then stop.
    #[arg(long, value_name = "N")]
    calls: Option<u64>,
}

/// What stops the run.
#[derive(Debug, Clone, Copy)]
enum Stop {
    After(Instant),
    Calls(u64),
}

/// Counts shared by every worker.
#[derive(Debug, Default)]
struct Tally {
    issued: AtomicU64,
    ok: AtomicU64,
    failed: AtomicU64,
    wrong: AtomicU64,
}

/// Runs the load; `Ok(false)` if any call failed or answered wrongly (exit status 1).
pub async fn run(args: BenchArgs) -> anyhow::Result<bool> {
    anyhow::ensure!(
        args.connections > 0 && args.in_flight > 0,
        "--connections and --in-flight must be at least 1"
    );
    let call = &args.call;
    let params = call.request.params()?;
    let options = call.options()?;
    let mut clients = Vec::with_capacity(args.connections);
    for _ in 0..args.connections {
        clients.push(call.request.target.connect(call.request.dialect).await?);
    }
    let expected = clients[0]
        .call_with(call.request.method.as_str(), params.clone(), options)
        .await
        .with_context(|| format!("the first call of {} failed", call.request.method))?;
    eprintln!(
        "msgwire bench: {} {} → {} · {} connections × {} in flight · {}",
        call.request.target,
        call.request.method,
        to_json(&expected),
        args.connections,
        args.in_flight,
        call.request.dialect
    );
    let start = Instant::now();
    let stop = match (args.calls, args.duration) {
        (Some(n), _) => Stop::Calls(n),
        (None, secs) => Stop::After(start + timeout(secs.unwrap_or(10.0))?),
    };
    let bar = progress(stop, start);
    let tally = Arc::new(Tally::default());
    let job = Arc::new(Job {
        method: call.request.method.clone(),
        params,
        expected,
        options,
        stop,
    });
    let mut workers = tokio::task::JoinSet::new();
    for client in &clients {
        for _ in 0..args.in_flight {
            let histogram = new_histogram()?;
            workers.spawn(worker(
                client.clone(),
                Arc::clone(&job),
                Arc::clone(&tally),
                bar.clone(),
                histogram,
            ));
        }
    }
    let ticker = tokio::spawn(tick(bar.clone(), Arc::clone(&tally), stop, start));
    let mut histogram = new_histogram()?;
    while let Some(done) = workers.join_next().await {
        histogram.add(done.context("a bench worker failed")?)?;
    }
    ticker.abort();
    let elapsed = start.elapsed();
    bar.finish_and_clear();
    for client in &clients {
        client.close();
    }
    for client in &clients {
        client.closed().await;
    }
    report(&tally, &histogram, elapsed)?;
    Ok(tally.failed.load(Relaxed) == 0 && tally.wrong.load(Relaxed) == 0)
}

/// What every worker does.
#[derive(Debug)]
struct Job {
    method: String,
    params: Value,
    expected: Value,
    options: CallOptions,
    stop: Stop,
}

fn new_histogram() -> anyhow::Result<Histogram<u64>> {
    // Microseconds, from 1 µs to 10 minutes, 3 significant digits.
    Histogram::new_with_bounds(1, 600_000_000, 3).context("histogram bounds")
}

async fn worker(
    client: Client,
    job: Arc<Job>,
    tally: Arc<Tally>,
    bar: ProgressBar,
    mut histogram: Histogram<u64>,
) -> Histogram<u64> {
    loop {
        match job.stop {
            Stop::After(deadline) if Instant::now() >= deadline => break,
            Stop::Calls(n) if tally.issued.fetch_add(1, Relaxed) >= n => break,
            _ => {}
        }
        if matches!(job.stop, Stop::After(_)) {
            tally.issued.fetch_add(1, Relaxed);
        }
        let sent = Instant::now();
        let answer = client
            .call_with(job.method.as_str(), job.params.clone(), job.options)
            .await;
        let micros = u64::try_from(sent.elapsed().as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        histogram.saturating_record(micros);
        match answer {
            Ok(value) if value == job.expected => tally.ok.fetch_add(1, Relaxed),
            Ok(_) => tally.wrong.fetch_add(1, Relaxed),
            Err(_) => tally.failed.fetch_add(1, Relaxed),
        };
        if matches!(job.stop, Stop::Calls(_)) {
            bar.inc(1);
        }
        if client.is_closed() {
            break;
        }
    }
    histogram
}

fn progress(stop: Stop, start: Instant) -> ProgressBar {
    let (len, template) = match stop {
        Stop::Calls(n) => (n, "{bar:40} {pos}/{len} calls · {msg}"),
        Stop::After(deadline) => (
            deadline.saturating_duration_since(start).as_millis() as u64,
            "{bar:40} {elapsed} · {msg}",
        ),
    };
    let bar = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar
}

async fn tick(bar: ProgressBar, tally: Arc<Tally>, stop: Stop, start: Instant) {
    let mut interval = tokio::time::interval(Duration::from_millis(200));
    loop {
        interval.tick().await;
        let done = tally.ok.load(Relaxed) + tally.failed.load(Relaxed) + tally.wrong.load(Relaxed);
        let rate = done as f64 / start.elapsed().as_secs_f64().max(1e-9);
        bar.set_message(format!("{rate:.0} calls/s"));
        if let Stop::After(_) = stop {
            bar.set_position(start.elapsed().as_millis() as u64);
        }
    }
}

fn report(tally: &Tally, histogram: &Histogram<u64>, elapsed: Duration) -> anyhow::Result<()> {
    let ok = tally.ok.load(Relaxed);
    let failed = tally.failed.load(Relaxed);
    let wrong = tally.wrong.load(Relaxed);
    let total = ok + failed + wrong;
    let us = |q: f64| histogram.value_at_quantile(q);
    let lines = [
        format!("calls:      {total} ({ok} ok, {failed} failed, {wrong} wrong answers)"),
        format!("duration:   {:.2} s", elapsed.as_secs_f64()),
        format!(
            "throughput: {:.0} calls/s",
            total as f64 / elapsed.as_secs_f64().max(1e-9)
        ),
        format!(
            "latency:    p50 {} µs, p90 {} µs, p99 {} µs, max {} µs",
            us(0.50),
            us(0.90),
            us(0.99),
            histogram.max()
        ),
    ];
    crate::print_line(&lines.join("\n")).context("cannot print the report")
}
