//! A quick loopback load test: calls/s and latency for 1 × 1, 1 × 128 and 16 × 16
//! (connections × calls in flight), echoing 64 bytes. The comparison with other
//! frameworks lives in the bench crate; this is for looking at msgwire alone.
//!
//! ```text
//! cargo run --release -p msgwire-rpc --example throughput -- [seconds per shape] [dialect] [CxN ...]
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::future::IntoFuture;
use std::time::{Duration, Instant};

use msgwire_rpc::{Client, Dialect, Router, Server, Value};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let seconds: f64 = args.next().map_or(Ok(2.0), |s| s.parse())?;
    let dialect: Dialect = args.next().map_or(Ok(Dialect::MsgpackRpc), |s| s.parse())?;
    let mut shapes: Vec<(usize, usize)> = args
        .map(|s| {
            let (c, n) = s
                .split_once('x')
                .ok_or("a shape is CONNECTIONSxIN_FLIGHT")?;
            Ok::<_, Box<dyn std::error::Error>>((c.parse()?, n.parse()?))
        })
        .collect::<Result<_, _>>()?;
    if shapes.is_empty() {
        shapes = vec![(1, 1), (1, 128), (16, 16)];
    }
    let router = Router::new().method_raw("echo", |_ctx, params| async move { Ok(params) });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(Server::new(router).serve_tcp(listener).into_future());

    for (connections, in_flight) in shapes {
        let duration = Duration::from_secs_f64(seconds);
        let mut tasks = Vec::new();
        for _ in 0..connections {
            let client = Client::connect_tcp(addr, dialect).await?;
            for _ in 0..in_flight {
                let client = client.clone();
                tasks.push(tokio::spawn(async move {
                    let payload = Value::Array(vec![Value::Binary(vec![42; 64])]);
                    let mut latencies = Vec::new();
                    let start = Instant::now();
                    while start.elapsed() < duration {
                        let t = Instant::now();
                        let answer = client.call("echo", payload.clone()).await.unwrap();
                        latencies.push(t.elapsed());
                        assert_eq!(answer, payload);
                    }
                    latencies
                }));
            }
        }
        let mut latencies = Vec::new();
        for task in tasks {
            latencies.extend(task.await?);
        }
        latencies.sort_unstable();
        let pct =
            |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
        println!(
            "{dialect} {connections:>2} x {in_flight:<3}  {:>9.0} calls/s  p50 {:>8.1?}  p99 {:>8.1?}",
            latencies.len() as f64 / seconds,
            pct(0.50),
            pct(0.99)
        );
    }
    Ok(())
}
