//! Streams end to end, in every dialect: the four kinds of method and how each ends —
//! normally, with a terminal error, after per-item errors, cancelled by either side,
//! the peer gone, a peer that stopped answering found by keepalive.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{next_event, serve_tcp, within, DropReport, Probe, RawPeer};
use futures::StreamExt;
use msgwire_rpc::{
    CallError, CallOptions, Client, Code, Context, Dialect, Message, RawValue, Router, RpcError,
    Server, StreamReceiver, StreamSender, Value,
};
use serde::{Deserialize, Serialize};

/// The methods the tests call.
fn stream_router(probe: &Probe) -> Router {
    let forever_probe = probe.clone();
    let sink_probe = probe.clone();
    let started = probe.clone();
    Router::new()
        .server_stream("count", |_ctx: Context, (n,): (u32,)| {
            futures::stream::iter((0..n).map(Ok::<_, RpcError>))
        })
        .server_stream("count_then_fail", |_ctx: Context, (n,): (u32,)| {
            let items = (0..n).map(Ok);
            let fail = std::iter::once(Err(RpcError::not_found("no more")));
            futures::stream::iter(items.chain(fail))
        })
        .server_stream_with(
            "every_other_fails",
            |_ctx: Context, (n,): (u32,), mut out: StreamSender<u32>| async move {
                for i in 0..n {
                    if i % 2 == 1 {
                        out.send_error(RpcError::invalid_argument(format!("item {i}")))
                            .await?;
                    } else {
                        out.send(&i).await?;
                    }
                }
                Ok::<_, RpcError>("done")
            },
        )
        .server_stream_with(
            "forever",
            move |_ctx: Context, (key,): (u64,), mut out: StreamSender<u64>| {
                let probe = forever_probe.clone();
                async move {
                    let _report = DropReport {
                        probe: probe.clone(),
                        key,
                    };
                    probe.event(format!("started:{key}"));
                    let mut i = 0u64;
                    loop {
                        out.send(&i).await?;
                        i += 1;
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                    #[allow(unreachable_code)]
                    Ok::<(), RpcError>(())
                }
            },
        )
        .server_stream_with(
            "server_cancels",
            |_ctx: Context, (n,): (u32,), mut out: StreamSender<u32>| async move {
                for i in 0..n {
                    out.send(&i).await?;
                }
                Err::<(), _>(RpcError::cancelled("the server gave up"))
            },
        )
        .client_stream(
            "sum",
            |_ctx: Context, (): (), mut input: StreamReceiver<i64>| async move {
                let mut sum = Sum::default();
                while let Some(item) = input.next().await {
                    match item {
                        Ok(n) => sum.sum += n,
                        Err(e) if e.is_item_error() => sum.errors += 1,
                        Err(e) => return Err(RpcError::from(e)),
                    }
                }
                Ok(sum)
            },
        )
        .client_stream(
            "sink_forever",
            move |_ctx: Context, (key,): (u64,), mut input: StreamReceiver<i64>| {
                let probe = sink_probe.clone();
                async move {
                    let _report = DropReport {
                        probe: probe.clone(),
                        key,
                    };
                    probe.event(format!("started:{key}"));
                    while input.next().await.is_some() {}
                    // The input ended; wait to be cancelled.
                    std::future::pending::<()>().await;
                    Ok::<(), RpcError>(())
                }
            },
        )
        .client_stream("never_reads", {
            let probe = probe.clone();
            move |_ctx: Context, (key,): (u64,), _input: StreamReceiver<i64>| {
                let probe = probe.clone();
                async move {
                    let _report = DropReport {
                        probe: probe.clone(),
                        key,
                    };
                    probe.event(format!("started:{key}"));
                    std::future::pending::<()>().await;
                    Ok::<(), RpcError>(())
                }
            }
        })
        .bidi_stream(
            "double",
            move |_ctx: Context,
                  (): (),
                  mut input: StreamReceiver<i64>,
                  mut out: StreamSender<i64>| {
                let probe = started.clone();
                async move {
                    probe.event("double started");
                    let mut seen = 0u32;
                    while let Some(item) = input.next().await {
                        match item {
                            Ok(n) => out.send(&(n * 2)).await?,
                            Err(e) if e.is_item_error() => {
                                out.send_error(RpcError::invalid_argument("bad in, bad out"))
                                    .await?
                            }
                            Err(e) => return Err(RpcError::from(e)),
                        }
                        seen += 1;
                    }
                    Ok::<_, RpcError>(seen)
                }
            },
        )
        .method_with_context("compute", {
            let probe = probe.clone();
            move |_ctx: Context, (ms,): (u64,)| {
                let probe = probe.clone();
                // Work before the first `.await`: the whole handler is one poll.
                probe.event("computing");
                std::thread::sleep(Duration::from_millis(ms));
                probe.event("computed");
                async move { Ok::<_, RpcError>(ms) }
            }
        })
        .method("add", |p: common::AddParams| async move {
            Ok::<_, RpcError>(p.a + p.b)
        })
}

#[derive(Debug, Default, Serialize, Deserialize, PartialEq)]
struct Sum {
    sum: i64,
    errors: u32,
}

async fn start(probe: &Probe) -> std::net::SocketAddr {
    serve_tcp(Server::builder().build(stream_router(probe)).unwrap()).await
}

/// Reads a stream to its end: its items (per-item errors as their codes) and how it
/// ended.
async fn drain<T: serde::de::DeserializeOwned>(
    rx: &mut StreamReceiver<T>,
) -> (Vec<Result<T, Code>>, Option<CallError>) {
    let mut items = Vec::new();
    while let Some(item) = within(rx.next()).await {
        match item {
            Ok(v) => items.push(Ok(v)),
            Err(e) if e.is_item_error() => items.push(Err(e.code())),
            Err(e) => {
                assert!(within(rx.next()).await.is_none(), "items after the end");
                return (items, Some(e));
            }
        }
    }
    (items, None)
}

#[tokio::test]
async fn a_server_stream_ends_normally_with_every_item_in_order() {
    let (probe, _events) = Probe::new();
    let addr = start(&probe).await;
    for dialect in Dialect::ALL {
        let client = Client::connect_tcp(addr, dialect).await.unwrap();
        // More items than one window of credit.
        let mut rx = client
            .server_stream::<_, u32>("count", &(500,))
            .await
            .unwrap();
        let (items, end) = drain(&mut rx).await;
        assert!(end.is_none(), "{dialect}: {end:?}");
        assert_eq!(items, (0..500).map(Ok).collect::<Vec<_>>(), "{dialect}");
        assert_eq!(rx.result(), Some(&RawValue::nil()));
        // The connection goes on.
        let sum: i64 = client.call_typed("add", &(1, 2)).await.unwrap();
        assert_eq!(sum, 3);
    }
}

#[tokio::test]
async fn a_terminal_error_ends_the_stream_after_its_items() {
    let (probe, _events) = Probe::new();
    let addr = start(&probe).await;
    for dialect in Dialect::ALL {
        let client = Client::connect_tcp(addr, dialect).await.unwrap();
        let mut rx = client
            .server_stream::<_, u32>("count_then_fail", &(3,))
            .await
            .unwrap();
        let (items, end) = drain(&mut rx).await;
        assert_eq!(items, vec![Ok(0), Ok(1), Ok(2)], "{dialect}");
        let end = end.expect("a terminal error");
        assert_eq!(end.code(), Code::NotFound, "{dialect}: {end}");
        assert!(!end.is_item_error());
        assert_eq!(rx.result(), None);
    }
}

#[tokio::test]
async fn per_item_errors_leave_the_stream_going() {
    let (probe, _events) = Probe::new();
    let addr = start(&probe).await;
    for dialect in Dialect::ALL {
        let client = Client::connect_tcp(addr, dialect).await.unwrap();
        let mut rx = client
            .server_stream::<_, u32>("every_other_fails", &(5,))
            .await
            .unwrap();
        let (items, end) = drain(&mut rx).await;
        assert!(end.is_none(), "{dialect}: {end:?}");
        let bad = Code::InvalidArgument;
        assert_eq!(
            items,
            vec![Ok(0), Err(bad), Ok(2), Err(bad), Ok(4)],
            "{dialect}"
        );
        assert_eq!(rx.result_typed::<String>().unwrap().unwrap(), "done");
    }
}

#[tokio::test]
async fn a_client_stream_sums_its_input() {
    let (probe, _events) = Probe::new();
    let addr = start(&probe).await;
    for dialect in Dialect::ALL {
        let client = Client::connect_tcp(addr, dialect).await.unwrap();
        // From a Stream, more items than one window.
        let input = futures::stream::iter(1..=1000i64);
        let sum: Sum = within(client.client_stream("sum", &(), input))
            .await
            .unwrap();
        assert_eq!(
            sum,
            Sum {
                sum: 500_500,
                errors: 0
            },
            "{dialect}"
        );
        // Through the sender, with a per-item error the stream survives.
        let (mut tx, rx) = client
            .open_stream::<_, i64, Value>("sum", &(), CallOptions::new())
            .await
            .unwrap();
        tx.send(&40).await.unwrap();
        tx.send_error(RpcError::invalid_argument("unreadable"))
            .await
            .unwrap();
        tx.send(&2).await.unwrap();
        tx.finish().unwrap();
        let result = within(rx.finish()).await.unwrap();
        assert_eq!(
            result.deserialize::<Sum>().unwrap(),
            Sum { sum: 42, errors: 1 }
        );
    }
}

#[tokio::test]
async fn a_bidirectional_stream_answers_item_by_item() {
    let (probe, _events) = Probe::new();
    let addr = start(&probe).await;
    for dialect in Dialect::ALL {
        let client = Client::connect_tcp(addr, dialect).await.unwrap();
        let (mut tx, mut rx) = client
            .open_stream::<_, i64, i64>("double", &(), CallOptions::new())
            .await
            .unwrap();
        // One at a time: each answer arrives before the next item is sent.
        for n in [1, 2, 3] {
            tx.send(&n).await.unwrap();
            assert_eq!(
                within(rx.next()).await.unwrap().unwrap(),
                n * 2,
                "{dialect}"
            );
        }
        tx.send_error(RpcError::invalid_argument("x"))
            .await
            .unwrap();
        let err = within(rx.next()).await.unwrap().unwrap_err();
        assert!(err.is_item_error(), "{dialect}: {err}");
        // Many at once, more than a window each way, read while sending.
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some(item) = rx.next().await {
                got.push(item.unwrap());
            }
            (got, rx.result_typed::<u32>().map(Result::unwrap))
        });
        for n in 0..300 {
            tx.send(&n).await.unwrap();
        }
        drop(tx);
        let (got, result) = within(reader).await.unwrap();
        assert_eq!(
            got,
            (0..300).map(|n| n * 2).collect::<Vec<i64>>(),
            "{dialect}"
        );
        assert_eq!(result, Some(304));
    }
}

#[tokio::test]
async fn the_server_cancelling_ends_the_stream_with_cancelled() {
    let (probe, _events) = Probe::new();
    let addr = start(&probe).await;
    for dialect in Dialect::ALL {
        let client = Client::connect_tcp(addr, dialect).await.unwrap();
        let mut rx = client
            .server_stream::<_, u32>("server_cancels", &(2,))
            .await
            .unwrap();
        let (items, end) = drain(&mut rx).await;
        assert_eq!(items, vec![Ok(0), Ok(1)]);
        assert_eq!(end.unwrap().code(), Code::Cancelled, "{dialect}");
        // A client stream whose server stops reading: sending fails, the answer says why.
        let (mut tx, rx) = client
            .open_stream::<_, i64, Value>("server_cancels", &(0,), CallOptions::new())
            .await
            .unwrap();
        let err = within(rx.finish()).await.unwrap_err();
        assert_eq!(err.code(), Code::Cancelled);
        assert!(matches!(tx.send(&1).await, Err(CallError::StreamEnded)));
    }
}

/// The drop of a handler, observed within a second of the cause.
async fn dropped_soon(events: &mut tokio::sync::mpsc::UnboundedReceiver<String>, key: u64) {
    let want = format!("dropped:{key}");
    let seen = tokio::time::timeout(Duration::from_secs(1), async {
        loop {
            if events.recv().await.as_deref() == Some(want.as_str()) {
                return;
            }
        }
    })
    .await;
    assert!(
        seen.is_ok(),
        "handler {key} was not dropped within a second"
    );
}

#[tokio::test]
async fn the_client_cancelling_drops_the_handler() {
    let (probe, mut events) = Probe::new();
    let addr = start(&probe).await;
    for (n, dialect) in Dialect::ALL.into_iter().enumerate() {
        let client = Client::connect_tcp(addr, dialect).await.unwrap();
        // A server stream: read a few items, then drop the receiver.
        let key = 10 + n as u64;
        let mut rx = client
            .server_stream::<_, u64>("forever", &(key,))
            .await
            .unwrap();
        for i in 0..3 {
            assert_eq!(within(rx.next()).await.unwrap().unwrap(), i);
        }
        rx.cancel();
        dropped_soon(&mut events, key).await;
        // A client stream: the same through the receiver of its answer.
        let key = 20 + n as u64;
        let (mut tx, rx) = client
            .open_stream::<_, i64, Value>("sink_forever", &(key,), CallOptions::new())
            .await
            .unwrap();
        tx.send(&1).await.unwrap();
        assert_eq!(next_event(&mut events).await, format!("started:{key}"));
        drop(rx);
        dropped_soon(&mut events, key).await;
        assert!(matches!(tx.send(&2).await, Err(CallError::StreamEnded)));
        // The connection goes on.
        let sum: i64 = client.call_typed("add", &(2, 2)).await.unwrap();
        assert_eq!(sum, 4);
    }
}

#[tokio::test]
async fn the_peer_going_away_drops_the_handler() {
    let (probe, mut events) = Probe::new();
    let addr = start(&probe).await;
    for (n, dialect) in Dialect::ALL.into_iter().enumerate() {
        let key = 30 + n as u64;
        let client = Client::connect_tcp(addr, dialect).await.unwrap();
        let mut rx = client
            .server_stream::<_, u64>("forever", &(key,))
            .await
            .unwrap();
        assert_eq!(within(rx.next()).await.unwrap().unwrap(), 0);
        assert_eq!(next_event(&mut events).await, format!("started:{key}"));
        client.close();
        dropped_soon(&mut events, key).await;
        // The client's receiver sees the end too.
        let (_, end) = drain(&mut rx).await;
        assert!(end.is_some_and(|e| e.is_connection_error()), "{dialect}");
    }
}

#[tokio::test]
async fn keepalive_closes_a_connection_whose_peer_stopped_answering() {
    let (probe, mut events) = Probe::new();
    let server = Server::builder()
        .keepalive(Some(Duration::from_millis(200)), Duration::from_millis(200))
        .build(stream_router(&probe))
        .unwrap();
    let addr = serve_tcp(server).await;
    for (n, dialect) in Dialect::ALL.into_iter().enumerate() {
        // A peer that opens a stream, then neither reads nor answers anything.
        let key = 40 + n as u64;
        let mut peer = RawPeer::connect(addr, dialect).await;
        peer.send(&[common::request(1, "forever", vec![Value::from(key)])])
            .await;
        assert_eq!(next_event(&mut events).await, format!("started:{key}"));
        // The server pings, gets no answer, closes: the handler goes.
        let want = format!("dropped:{key}");
        while next_event(&mut events).await != want {}
        assert!(within(common::closed_by_server(&mut peer.stream)).await);
    }

    // And the client's side: a server that accepts a stream call and goes silent.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_addr = silent.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            held.push(socket);
        }
    });
    for dialect in Dialect::ALL {
        let client = Client::builder()
            .keepalive(Some(Duration::from_millis(200)), Duration::from_millis(200))
            .connect_tcp(silent_addr, dialect)
            .await
            .unwrap();
        let mut rx = client
            .server_stream::<_, u64>("forever", &(0,))
            .await
            .unwrap();
        let (items, end) = drain(&mut rx).await;
        assert!(items.is_empty());
        let end = end.expect("the stream fails");
        assert!(end.is_connection_error(), "{dialect}: {end}");
        assert!(end.to_string().contains("keepalive"), "{end}");
    }
}

#[tokio::test]
async fn a_peer_that_sends_past_its_credit_fails_its_stream() {
    let (probe, mut events) = Probe::new();
    let addr = start(&probe).await;
    for (n, dialect) in Dialect::ALL.into_iter().enumerate() {
        let key = 50 + n as u64;
        let mut peer = RawPeer::connect(addr, dialect).await;
        peer.send(&[common::request(7, "never_reads", vec![Value::from(key)])])
            .await;
        assert_eq!(next_event(&mut events).await, format!("started:{key}"));
        // The handler takes nothing, so no credit comes back: one item past the
        // window breaks the rules.
        let id = msgwire_rpc::CallId::from(7u32);
        let burst: Vec<Message> = (0..=msgwire_rpc::config::DEFAULT_WINDOW_ITEMS)
            .map(|i| {
                msgwire_wire::stream::StreamMessage::Item {
                    direction: msgwire_wire::stream::Direction::FromCaller,
                    id: id.clone(),
                    value: RawValue::from(Value::from(i)),
                }
                .to_message()
            })
            .collect();
        peer.send(&burst).await;
        let answer = within(peer.recv()).await.expect("an answer");
        let Message::Response { id, result } = answer else {
            panic!("{dialect}: {answer:?}")
        };
        assert_eq!(id, 7u32);
        assert_eq!(
            result.unwrap_err().code,
            Code::ResourceExhausted,
            "{dialect}"
        );
        dropped_soon(&mut events, key).await;
        // The connection goes on.
        peer.send(&[common::request(8, "add", vec![1.into(), 2.into()])])
            .await;
        assert_eq!(common::response_id(&within(peer.recv()).await), Some(8));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_computing_before_its_first_await_does_not_hold_up_reading() {
    let (probe, mut events) = Probe::new();
    // The server on a runtime of its own, as a server in another process would be: the
    // computing handler wakes this test (its "computing" event) right before it blocks
    // its worker, and a task woken from a worker waits in that worker's own slot, which
    // other workers of the same runtime do not take from — this test would wait out the
    // computation for a reason that has nothing to do with the server's reading.
    let (addr_tx, addr_rx) = tokio::sync::oneshot::channel();
    let server_probe = probe.clone();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(4)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let _ = addr_tx.send(start(&server_probe).await);
            let _ = stop_rx.await;
        });
    });
    let addr = addr_rx.await.unwrap();
    for (n, dialect) in Dialect::ALL.into_iter().enumerate() {
        let client = Client::connect_tcp(addr, dialect).await.unwrap();
        // A client stream whose handler reads what this connection brings...
        let key = 60 + n as u64;
        let (mut tx, rx) = client
            .open_stream::<_, i64, Value>("sink_forever", &(key,), CallOptions::new())
            .await
            .unwrap();
        assert_eq!(next_event(&mut events).await, format!("started:{key}"));
        // ...and a handler that computes for 3 s before it first waits.
        let computing = {
            let client = client.clone();
            tokio::spawn(async move { client.call_typed::<_, u64>("compute", &(3000,)).await })
        };
        assert_eq!(next_event(&mut events).await, "computing");
        // Meanwhile the connection is read: items arrive, and a cancel takes effect.
        for i in 0..10 {
            tx.send(&i).await.unwrap();
        }
        drop(rx);
        assert_eq!(
            next_event(&mut events).await,
            format!("dropped:{key}"),
            "{dialect}: the cancel waited for the computation"
        );
        assert_eq!(within(computing).await.unwrap().unwrap(), 3000);
        assert_eq!(next_event(&mut events).await, "computed");
    }
    let _ = stop_tx.send(());
    server.join().unwrap();
}
