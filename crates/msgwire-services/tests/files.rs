//! `upload` and `download` through a real server: a 200 MiB round trip, and every way an
//! upload can fail leaving nothing in the data directory.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Instant;

use bytes::Bytes;
use common::{code, names, until_empty, until_names, within, Noise, TestServer};
use futures::StreamExt;
use msgwire_rpc::{CallError, CallOptions, Client, Code, Dialect, Value};
use msgwire_services::files::{
    sha256_hex, Data, DownloadChunk, FileInfo, UploadMeta, Uploaded, CHUNK_SIZE,
};
use msgwire_services::ServicesConfig;
use serde::Serialize;
use sha2::{Digest, Sha256};

/// The size of the round trip: 200 MiB unless `MSGWIRE_ROUND_TRIP_BYTES` says otherwise
/// (for a quick look in a debug build; the suite runs 200 MiB).
fn round_trip_size() -> u64 {
    std::env::var("MSGWIRE_ROUND_TRIP_BYTES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200 << 20)
}

/// The size of the pieces the test uploads in: not a multiple of the download's 64 KiB,
/// so the download cuts the file anew.
const PIECE: usize = 100_000;

/// An upload item: the metadata, then data either as a bare bin or as a map.
#[derive(Serialize)]
#[serde(untagged)]
enum Item {
    Meta(UploadMeta),
    Bin(Data),
    Map { data: Data, offset: u64 },
}

/// The upload items for `size` bytes of noise from `seed`: the metadata, then pieces
/// of [`PIECE`] bytes, alternately bins and `{data, offset}` maps — made as they are
/// sent, never all at once.
fn items(meta: UploadMeta, seed: u64, size: u64) -> impl futures::Stream<Item = Item> {
    let mut noise = Noise::new(seed);
    let pieces = (0..size.div_ceil(PIECE as u64)).map(move |i| {
        let offset = i * PIECE as u64;
        let data = Data(Bytes::from(noise.take(PIECE.min((size - offset) as usize))));
        if i % 2 == 0 {
            Item::Bin(data)
        } else {
            Item::Map { data, offset }
        }
    });
    futures::stream::iter(std::iter::once(Item::Meta(meta)).chain(pieces))
}

/// The sha256 (hex) of `size` bytes of noise from `seed`.
fn noise_sha256(seed: u64, size: u64) -> String {
    let mut noise = Noise::new(seed);
    let mut hasher = Sha256::new();
    let mut buf = vec![0; 1 << 20];
    let mut left = size;
    while left > 0 {
        let n = buf.len().min(left as usize);
        noise.fill(&mut buf[..n]);
        hasher.update(&buf[..n]);
        left -= n as u64;
    }
    hex(&hasher.finalize())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn no_params() -> Vec<Value> {
    Vec::new()
}

async fn upload(
    client: &Client,
    meta: UploadMeta,
    seed: u64,
    size: u64,
) -> Result<Uploaded, CallError> {
    within(client.client_stream("upload", &no_params(), items(meta, seed, size))).await
}

#[tokio::test]
async fn a_200_mib_file_round_trips_byte_identical() {
    let size = round_trip_size();
    let seed = 200;
    let server = TestServer::start(ServicesConfig::default()).await;
    let client = server.client(Dialect::MsgpackRpc).await;
    let checksum = noise_sha256(seed, size);

    let started = Instant::now();
    let mut meta = UploadMeta::new("noise.bin", size, checksum.to_uppercase());
    meta.content_type = Some("application/x-noise".into());
    let uploaded = upload(&client, meta, seed, size).await.unwrap();
    let upload_time = started.elapsed();
    assert_eq!(uploaded.bytes_uploaded, size);
    assert!(uploaded.checksum_verified);
    assert_eq!(uploaded.checksum, checksum);
    let id = uploaded.file_id.clone();
    assert_eq!(id.len(), 32);
    assert_eq!(server.files(), [id.clone(), format!("{id}.meta")]);

    // Download, comparing each chunk with the same noise made again and hashing it.
    let started = Instant::now();
    let mut rx = client
        .server_stream::<_, DownloadChunk>("download", &(id.as_str(),))
        .await
        .unwrap();
    let mut expected = Noise::new(seed);
    let mut hasher = Sha256::new();
    let (mut offset, mut chunks) = (0u64, 0u64);
    while let Some(chunk) = within(rx.next()).await {
        let chunk = chunk.unwrap();
        assert_eq!((chunk.offset, chunk.total_size), (offset, size));
        assert_eq!(chunk.size, chunk.data.0.len() as u64);
        let full = offset + CHUNK_SIZE as u64 <= size;
        let want = if full {
            CHUNK_SIZE as u64
        } else {
            size - offset
        };
        assert_eq!(chunk.size, want, "chunk at {offset}");
        assert!(
            chunk.data.0[..] == expected.take(chunk.data.0.len())[..],
            "the bytes at {offset} differ"
        );
        hasher.update(&chunk.data.0);
        offset += chunk.size;
        chunks += 1;
    }
    let download_time = started.elapsed();
    assert_eq!(offset, size);
    assert_eq!(chunks, size.div_ceil(CHUNK_SIZE as u64));
    assert_eq!(hex(&hasher.finalize()), checksum);
    let info: FileInfo = rx.result_typed().unwrap().unwrap();
    assert_eq!(
        (info.file_id.as_str(), info.filename.as_str(), info.size),
        (id.as_str(), "noise.bin", size)
    );
    assert_eq!(info.content_type, "application/x-noise");
    assert_eq!(info.checksum, checksum);
    let asked: FileInfo = client
        .call_typed("fileInfo", &(id.as_str(),))
        .await
        .unwrap();
    assert_eq!(asked, info);
    println!(
        "{} MiB: upload {:.2} s, download {:.2} s ({chunks} chunks), sha256 {checksum}",
        size >> 20,
        upload_time.as_secs_f64(),
        download_time.as_secs_f64()
    );
}

#[tokio::test]
async fn a_wrong_checksum_is_data_loss_and_nothing_is_kept() {
    let server = TestServer::start(ServicesConfig::default()).await;
    for dialect in Dialect::ALL {
        let client = server.client(dialect).await;
        let wrong = noise_sha256(2, 300_000);
        let meta = UploadMeta::new("x.bin", 300_000, wrong);
        let err = upload(&client, meta, 1, 300_000).await.unwrap_err();
        assert_eq!(err.code(), Code::DataLoss, "{dialect}: {err}");
        assert_eq!(err.code().as_i64(), 15);
        assert!(err.to_string().contains("checksum mismatch"), "{err}");
        // The error was answered after the upload was dropped: nothing is left.
        assert_eq!(server.files(), Vec::<String>::new(), "{dialect}");
    }
}

#[tokio::test]
async fn data_past_the_declared_size_or_short_of_it_is_invalid_argument() {
    let server = TestServer::start(ServicesConfig::default()).await;
    let client = server.client(Dialect::FramedMap).await;
    // 350,000 bytes sent where 150,000 were declared: refused at the piece that
    // overruns, and the rest is not sent.
    let meta = UploadMeta::new("x.bin", 150_000, noise_sha256(3, 350_000));
    let err = upload(&client, meta, 3, 350_000).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err}");
    assert!(err.to_string().contains("past the declared size"), "{err}");
    assert_eq!(server.files(), Vec::<String>::new());
    // Fewer bytes than declared.
    let meta = UploadMeta::new("x.bin", 350_000, noise_sha256(3, 350_000));
    let err = upload(&client, meta, 3, 150_000).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err}");
    assert!(
        err.to_string().contains("ended after 150000 of its 350000"),
        "{err}"
    );
    assert_eq!(server.files(), Vec::<String>::new());
    // No metadata, or items that are not data.
    let none = futures::stream::iter(Vec::<Item>::new());
    let err: Result<Uploaded, _> = client.client_stream("upload", &no_params(), none).await;
    assert_eq!(code(err), Code::InvalidArgument);
    let text = futures::stream::iter([Value::from("hello")]);
    let err: Result<Uploaded, _> = client.client_stream("upload", &no_params(), text).await;
    assert_eq!(code(err), Code::InvalidArgument);
    let meta = UploadMeta::new("x.bin", 10, sha256_hex(b"0123456789"));
    let (mut tx, rx) = client
        .open_stream::<_, Value, Value>("upload", &no_params(), CallOptions::new())
        .await
        .unwrap();
    tx.send(&Value::from(vec![(
        "filename".into(),
        Value::from(meta.filename.clone()),
    )]))
    .await
    .unwrap();
    assert_eq!(
        code(within(rx.finish()).await),
        Code::InvalidArgument,
        "metadata lacking fields"
    );
    let bad_checksum = UploadMeta::new("x.bin", 10, "abc");
    let err = upload(&client, bad_checksum, 3, 10).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(server.files(), Vec::<String>::new());
}

#[tokio::test]
async fn an_upload_over_the_cap_is_resource_exhausted() {
    let cap = 1 << 20;
    let server = TestServer::start(ServicesConfig {
        max_upload: cap,
        ..ServicesConfig::default()
    })
    .await;
    let client = server.client(Dialect::FramedBinary).await;
    let meta = UploadMeta::new("big.bin", cap + 1, noise_sha256(4, cap + 1));
    let err = upload(&client, meta, 4, cap + 1).await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err}");
    assert!(err.to_string().contains("limit of 1048576 bytes"), "{err}");
    assert_eq!(server.files(), Vec::<String>::new());
    // At the cap is fine.
    let meta = UploadMeta::new("big.bin", cap, noise_sha256(4, cap));
    let uploaded = upload(&client, meta, 4, cap).await.unwrap();
    assert_eq!(uploaded.bytes_uploaded, cap);
}

/// How a client goes away in the middle of an upload.
#[derive(Debug, Clone, Copy)]
enum Leaving {
    /// Drops the call's receiver: `$/cancel`, the connection stays.
    Cancels,
    /// Drops the connection: the socket is closed as usual.
    Disconnects,
    /// The socket is reset (SO_LINGER 0), as when the process is killed.
    Resets,
}

#[tokio::test]
async fn a_client_that_goes_away_mid_upload_leaves_no_file_and_no_temporary_file() {
    let server = TestServer::start(ServicesConfig::default()).await;
    for leaving in [Leaving::Cancels, Leaving::Disconnects, Leaving::Resets] {
        let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        if let Leaving::Resets = leaving {
            tcp.set_zero_linger().unwrap();
        }
        let client = Client::new(tcp, Dialect::MsgpackRpc);
        let size = 10 << 20;
        let meta = UploadMeta::new("cut.bin", size, noise_sha256(5, size));
        let (mut tx, rx) = client
            .open_stream::<_, Item, Value>("upload", &no_params(), CallOptions::new())
            .await
            .unwrap();
        let mut items = Box::pin(items(meta, 5, size));
        // The metadata and 3 MB of the 10 MiB.
        for _ in 0..31 {
            let item = items.next().await.unwrap();
            within(tx.send(&item)).await.unwrap();
        }
        // The temporary file is there and has data in it.
        let part_has_data = |dir: &std::path::Path, names: &[String]| {
            names.len() == 1
                && names[0].starts_with('.')
                && names[0].ends_with(".part")
                && std::fs::metadata(dir.join(&names[0])).is_ok_and(|m| m.len() >= 1 << 20)
        };
        let dir = server.data_dir.clone();
        until_names(&server.data_dir, |names| part_has_data(&dir, names)).await;
        match leaving {
            Leaving::Cancels => {
                rx.cancel();
                until_empty(&server.data_dir).await;
                // The connection goes on.
                let sum: i64 = client.call_typed("add", &(1, 2)).await.unwrap();
                assert_eq!(sum, 3);
                drop((tx, client));
            }
            Leaving::Disconnects | Leaving::Resets => {
                drop((tx, rx, client));
                until_empty(&server.data_dir).await;
            }
        }
        println!("{leaving:?}: nothing left in the data directory");
    }
}

/// The code a download of `file_id` ends with.
async fn download_code(client: &Client, file_id: &str) -> Code {
    let rx = client
        .server_stream::<_, DownloadChunk>("download", &(file_id,))
        .await
        .unwrap();
    code(within(rx.finish()).await)
}

#[tokio::test]
async fn a_file_name_never_chooses_a_path() {
    let server = TestServer::start(ServicesConfig::default()).await;
    let client = server.client(Dialect::MsgpackRpc).await;
    let data = b"root:x:0:0:root:/root:/bin/bash\n";
    let mut ids = Vec::new();
    for name in ["../../etc/passwd", "/etc/passwd", "..", ".x.part", ""] {
        let meta = UploadMeta::new(name, data.len() as u64, sha256_hex(data));
        let items =
            futures::stream::iter([Item::Meta(meta), Item::Bin(Data(Bytes::from_static(data)))]);
        let uploaded: Uploaded = within(client.client_stream("upload", &no_params(), items))
            .await
            .unwrap();
        let info: FileInfo = client
            .call_typed("fileInfo", &(uploaded.file_id.as_str(),))
            .await
            .unwrap();
        assert_eq!(info.filename, name, "kept as metadata only");
        assert_eq!(info.content_type, "application/octet-stream");
        ids.push(uploaded.file_id);
    }
    // Everything is inside the data directory, under server-made names; the two
    // directories above it (where "../../" points) hold only what they held.
    let mut expected: Vec<String> = ids
        .iter()
        .flat_map(|id| [id.clone(), format!("{id}.meta")])
        .collect();
    expected.sort();
    assert_eq!(server.files(), expected);
    assert_eq!(names(&server.root.path().join("data")), ["files"]);
    assert_eq!(names(server.root.path()), ["data"]);

    // A file id from the peer is never a path either.
    for bad in [
        "../../etc/passwd",
        "/etc/passwd",
        "..",
        "",
        &format!("{}.meta", ids[0]),
    ] {
        let err = download_code(&client, bad).await;
        assert_eq!(err, Code::InvalidArgument, "download({bad:?})");
        let err: Result<FileInfo, _> = client.call_typed("fileInfo", &(bad,)).await;
        assert_eq!(code(err), Code::InvalidArgument, "fileInfo({bad:?})");
    }
    let unknown = "0123456789abcdef0123456789abcdef";
    assert_eq!(download_code(&client, unknown).await, Code::NotFound);
    let err: Result<FileInfo, _> = client.call_typed("fileInfo", &(unknown,)).await;
    assert_eq!(code(err), Code::NotFound);
    let mut rx = client
        .server_stream::<_, DownloadChunk>("download", &(ids[0].as_str(),))
        .await
        .unwrap();
    let chunk = within(rx.next()).await.unwrap().unwrap();
    assert_eq!(&chunk.data.0[..], data);
    assert!(within(rx.next()).await.is_none());
}

#[tokio::test]
async fn an_empty_file_round_trips_with_no_chunks() {
    let server = TestServer::start(ServicesConfig::default()).await;
    let client = server.client(Dialect::FramedMap).await;
    let meta = UploadMeta::new("empty", 0, sha256_hex(b""));
    let uploaded = upload(&client, meta, 0, 0).await.unwrap();
    assert_eq!(uploaded.bytes_uploaded, 0);
    let mut rx = client
        .server_stream::<_, DownloadChunk>("download", &(uploaded.file_id.as_str(),))
        .await
        .unwrap();
    assert!(within(rx.next()).await.is_none());
    let info: FileInfo = rx.result_typed().unwrap().unwrap();
    assert_eq!((info.size, info.checksum), (0, sha256_hex(b"")));
}

#[test]
fn noise_is_the_same_however_it_is_cut() {
    let whole = Noise::new(7).take(1000);
    let mut cut = Noise::new(7);
    let mut pieces = Vec::new();
    for n in [1, 7, 8, 9, 100, 875] {
        pieces.extend(cut.take(n));
    }
    assert_eq!(pieces, whole);
    assert_ne!(Noise::new(8).take(1000), whole);
}
