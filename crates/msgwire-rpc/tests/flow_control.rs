//! Flow control: a fast sender and a slow reader, measured in heap bytes; and two peers
//! flooding each other with streams nobody reads, while ordinary calls go on.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Duration;

use common::{serve_tcp, within};
use futures::StreamExt;
use msgwire_rpc::{
    CallOptions, Client, Context, Dialect, Router, RpcError, Server, StreamReceiver, StreamSender,
};
use serde::{Deserialize, Serialize};

/// Counts the bytes live on the heap of this test process.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is passed to the system allocator unchanged; only a counter is
// updated around it.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's contract is passed on.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's contract is passed on.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: the caller's contract is passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// The count is of the whole test process: the tests take turns, so that what one
/// allocates is never counted against the other's bound.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

#[derive(Debug, Serialize, Deserialize)]
struct Chunk {
    seq: u64,
    #[serde(with = "serde_bytes_like")]
    data: Vec<u8>,
}

/// `Vec<u8>` as MessagePack bin.
mod serde_bytes_like {
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct Visit;
        impl serde::de::Visitor<'_> for Visit {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(v)
            }
        }
        d.deserialize_bytes(Visit)
    }
}

const CHUNK: usize = 64 * 1024;

fn router() -> Router {
    Router::new()
        .server_stream_with(
            "firehose",
            |_ctx: Context, (n,): (u64,), mut out: StreamSender<Chunk>| async move {
                for seq in 0..n {
                    let data = vec![(seq % 251) as u8; CHUNK];
                    out.send(&Chunk { seq, data }).await?;
                }
                Ok::<_, RpcError>(n)
            },
        )
        .method("add", |(a, b): (i64, i64)| async move {
            Ok::<_, RpcError>(a + b)
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_reader_keeps_the_senders_memory_flat_and_loses_nothing() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let addr = serve_tcp(Server::builder().build(router()).unwrap()).await;
    for dialect in Dialect::ALL {
        let client = Client::connect_tcp(addr, dialect).await.unwrap();
        let before = live();
        // 300 chunks of 64 KiB: 19 MiB, far more than any buffer on the way may hold.
        let total = 300u64;
        let mut rx: StreamReceiver<Chunk> =
            client.server_stream("firehose", &(total,)).await.unwrap();
        let mut peak = 0isize;
        let mut next = 0u64;
        while let Some(chunk) = within(rx.next()).await {
            let chunk = chunk.unwrap();
            // In order, nothing lost, nothing damaged.
            assert_eq!(chunk.seq, next, "{dialect}");
            assert_eq!(chunk.data.len(), CHUNK);
            assert!(chunk.data.iter().all(|b| *b == (next % 251) as u8));
            next += 1;
            drop(chunk);
            if next.is_multiple_of(25) {
                peak = peak.max(live() - before);
                // Meanwhile ordinary calls on the same connection are answered.
                let sum: i64 = within(client.call_typed("add", &(next as i64, 1)))
                    .await
                    .unwrap();
                assert_eq!(sum, next as i64 + 1);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(next, total, "{dialect}");
        assert_eq!(rx.result_typed::<u64>().unwrap().unwrap(), total);
        // Both ends in this process together: one window (1 MiB) of items on each
        // side, the write queue (1 MiB), socket buffers and the read buffer — a few
        // MiB, whatever the length of the stream. Without credit it would be most of
        // the 19 MiB sent.
        println!(
            "{dialect}: peak heap growth while streaming {} KiB",
            peak / 1024
        );
        assert!(
            peak < 6 * 1024 * 1024,
            "{dialect}: the heap grew by {peak} bytes while a slow reader was fed"
        );
    }
}

/// A method that streams at the caller as fast as credit allows and never ends.
fn flooding(name: &'static str) -> Router {
    Router::new()
        .server_stream_with(
            "flood",
            |_ctx: Context, (): (), mut out: StreamSender<Chunk>| async move {
                let mut seq = 0;
                loop {
                    out.send(&Chunk {
                        seq,
                        data: vec![1; CHUNK],
                    })
                    .await?;
                    seq += 1;
                }
                #[allow(unreachable_code)]
                Ok::<(), RpcError>(())
            },
        )
        .method(
            "whoami",
            move |(): ()| async move { Ok::<_, RpcError>(name) },
        )
        .method_with_context("ask_peer", |ctx: Context, (): ()| async move {
            let who: String = ctx.call_typed("whoami", &()).await?;
            Ok::<_, RpcError>(who)
        })
        .method_with_context("flood_me_back", |ctx: Context, (): ()| async move {
            // The server opens a flood towards its client and keeps it unread.
            let rx = ctx
                .open_stream::<_, (), Chunk>("flood", &(), CallOptions::new())
                .await?;
            let (_tx, rx) = rx;
            tokio::spawn(async move {
                let _unread = rx;
                tokio::time::sleep(Duration::from_secs(3600)).await;
            });
            Ok::<_, RpcError>(())
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_peers_flooding_each_other_unread_do_not_stall_their_calls() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let server = Server::builder().build(flooding("server")).unwrap();
    let addr = serve_tcp(server).await;
    for dialect in Dialect::ALL {
        let client = Client::builder()
            .router(flooding("client"))
            .connect_tcp(addr, dialect)
            .await
            .unwrap();
        // The server floods the client (never read)...
        let unread = client
            .server_stream::<_, Chunk>("flood", &())
            .await
            .unwrap();
        // ...and the client floods the server, which never reads either.
        within(client.call_typed::<_, ()>("flood_me_back", &()))
            .await
            .unwrap();
        // Both floods are stopped by credit, not by a full socket: calls go both ways.
        for _ in 0..20 {
            let who: String = within(client.call_typed("whoami", &())).await.unwrap();
            assert_eq!(who, "server", "{dialect}");
            // The server calls the client back, on the same connection.
            let back: String = within(client.call_typed("ask_peer", &())).await.unwrap();
            assert_eq!(back, "client", "{dialect}");
        }
        drop(unread);
    }
}
