//! `sumChunked` through a real server: a chunked sequence reassembled, and each way a
//! sequence is refused, with its code.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{code, within, TestServer};
use msgwire_rpc::{CallError, Client, Code, Dialect, Value};
use msgwire_services::chunked::{ChunkLimits, ChunkMessage};
use msgwire_services::math::Number;
use msgwire_services::{ChunkedSum, ServicesConfig};

type Msg = ChunkMessage<i64>;

async fn sum(client: &Client, messages: Vec<Msg>) -> Result<ChunkedSum, CallError> {
    let input = futures::stream::iter(messages);
    within(client.client_stream("sumChunked", &Vec::<Value>::new(), input)).await
}

/// The error's code and message.
fn refused(result: Result<ChunkedSum, CallError>) -> (Code, String) {
    let err = result.unwrap_err();
    (err.code(), err.to_string())
}

#[tokio::test]
async fn a_good_sequence_is_reassembled_in_every_dialect() {
    let server = TestServer::start(ServicesConfig::default()).await;
    let items: Vec<i64> = (1..=1000).collect();
    for dialect in Dialect::ALL {
        let client = server.client(dialect).await;
        let answer = sum(&client, ChunkMessage::sequence(&items, 64))
            .await
            .unwrap();
        assert_eq!(
            answer,
            ChunkedSum {
                count: 1000,
                sum: Number::Int(500_500)
            },
            "{dialect}"
        );
        let empty = sum(&client, ChunkMessage::sequence(&[], 64)).await.unwrap();
        assert_eq!(empty.count, 0);
    }
}

#[tokio::test]
async fn gaps_duplicates_and_counts_are_invalid_argument() {
    let server = TestServer::start(ServicesConfig::default()).await;
    let client = server.client(Dialect::MsgpackRpc).await;
    let end = || Msg::ChunkedEnd;

    let (c, m) = refused(
        sum(
            &client,
            vec![Msg::start(3, 3), Msg::chunk(0, [1]), Msg::chunk(2, [3])],
        )
        .await,
    );
    assert_eq!(c, Code::InvalidArgument);
    assert!(
        m.contains("chunk 2 arrived when chunk 1 was expected"),
        "{m}"
    );

    let dup = vec![
        Msg::start(2, 2),
        Msg::chunk(0, [1]),
        Msg::chunk(0, [1]),
        Msg::chunk(1, [2]),
        end(),
    ];
    let (c, m) = refused(sum(&client, dup).await);
    assert_eq!(c, Code::InvalidArgument);
    assert!(m.contains("chunk 0 arrived twice"), "{m}");

    let fewer_items = vec![Msg::start(3, 1), Msg::chunk(0, [1, 2]), end()];
    let (c, m) = refused(sum(&client, fewer_items).await);
    assert_eq!(c, Code::InvalidArgument);
    assert!(m.contains("2 items where 3 were declared"), "{m}");

    let more_items = vec![Msg::start(1, 1), Msg::chunk(0, [1, 2]), end()];
    let (c, m) = refused(sum(&client, more_items).await);
    assert_eq!(c, Code::InvalidArgument);
    assert!(m.contains("2 items where 1 were declared"), "{m}");

    let fewer_chunks = vec![Msg::start(1, 2), Msg::chunk(0, [1]), end()];
    let (c, m) = refused(sum(&client, fewer_chunks).await);
    assert_eq!(c, Code::InvalidArgument);
    assert!(m.contains("1 chunks where 2 were declared"), "{m}");

    let no_end = vec![Msg::start(1, 1), Msg::chunk(0, [1])];
    let (c, m) = refused(sum(&client, no_end).await);
    assert_eq!(c, Code::InvalidArgument);
    assert!(m.contains("before chunked_end"), "{m}");

    let not_chunked = futures::stream::iter([Value::from(7)]);
    let err: Result<ChunkedSum, _> = client
        .client_stream("sumChunked", &Vec::<Value>::new(), not_chunked)
        .await;
    assert_eq!(code(err), Code::InvalidArgument);
}

#[tokio::test]
async fn over_the_caps_is_resource_exhausted() {
    let server = TestServer::start(ServicesConfig {
        chunk_limits: ChunkLimits {
            max_items: 100,
            max_chunks: 10,
            max_bytes: 1000,
        },
        ..ServicesConfig::default()
    })
    .await;
    let client = server.client(Dialect::FramedMap).await;
    let (c, m) = refused(sum(&client, vec![Msg::start(101, 1)]).await);
    assert_eq!(
        (c, m.contains("more than the limit of 100")),
        (Code::ResourceExhausted, true),
        "{m}"
    );
    let (c, m) = refused(sum(&client, vec![Msg::start(10, 11)]).await);
    assert_eq!(
        (c, m.contains("more than the limit of 10")),
        (Code::ResourceExhausted, true),
        "{m}"
    );
    // 100 items declared, within the item cap, but big numbers: past 1000 bytes.
    let big: Vec<i64> = (0..100).map(|i| i64::MAX - i).collect();
    let (c, m) = refused(sum(&client, ChunkMessage::sequence(&big, 10)).await);
    assert_eq!(
        (c, m.as_str()),
        (
            Code::ResourceExhausted,
            "RESOURCE_EXHAUSTED (8): more than 1000 bytes of chunks"
        )
    );
    // Within every cap: fine, and an integer overflow in the sum is OUT_OF_RANGE.
    let overflow = sum(&client, ChunkMessage::sequence(&big[..2], 1)).await;
    assert_eq!(code(overflow), Code::OutOfRange);
    let ok = sum(&client, ChunkMessage::sequence(&[1, 2, 3], 1))
        .await
        .unwrap();
    assert_eq!(ok.sum, Number::Int(6));
}
