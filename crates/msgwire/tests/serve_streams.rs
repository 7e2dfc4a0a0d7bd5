//! `msgwire serve` with the stream services' flags: `--data-dir` (leftovers cleared at
//! start, files kept there), `--max-upload` with a unit, `--heartbeat`; and the default
//! data directory, made only at the first upload.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use common::Serve;
use msgwire_rpc::{CallError, CallOptions, Client, Code, Dialect, RawValue};
use msgwire_services::events::StreamEvent;
use msgwire_services::files::{sha256_hex, Data, UploadMeta, Uploaded};

/// Uploads `data` as one bin after its metadata.
async fn upload(client: &Client, name: &str, data: &[u8]) -> Result<Uploaded, CallError> {
    let (mut tx, rx) = client
        .open_stream_raw("upload", RawValue::empty_array(), CallOptions::new())
        .await?;
    let meta = UploadMeta::new(name, data.len() as u64, sha256_hex(data));
    // The server may refuse at the metadata; its answer then says why.
    let sent = async {
        tx.send_raw(RawValue::serialize(&meta).unwrap()).await?;
        let data = Data(bytes::Bytes::copy_from_slice(data));
        tx.send_raw(RawValue::serialize(&data).unwrap()).await?;
        tx.finish()
    };
    let _ = sent.await;
    Ok(rx.finish().await?.deserialize().unwrap())
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn data_dir_max_upload_and_heartbeat_flags() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("files");
    std::fs::create_dir(&dir).unwrap();
    // What a killed server would leave, and something that is not an upload's.
    std::fs::write(dir.join(".0123456789abcdef0123456789abcdef.part"), b"half").unwrap();
    std::fs::write(dir.join("notes.txt"), b"mine").unwrap();
    let dir_arg = dir.to_str().unwrap();
    let mut serve = Serve::start(&[
        "--data-dir",
        dir_arg,
        "--max-upload",
        "1KiB",
        "--heartbeat",
        "1",
    ]);
    let line = serve.wait_line(|l| l.contains("files in"));
    assert_eq!(
        line,
        format!("msgwire serve: files in {dir_arg} (uploads up to 1 KiB)")
    );
    let services = serve.wait_line(|l| l.contains("services math"));
    for service in [
        "files (upload, download, fileInfo)",
        "chat (chat)",
        "subscribeEvents",
        "sumChunked",
    ] {
        assert!(services.contains(service), "{services}");
    }
    assert_eq!(names(&dir), ["notes.txt"], "the leftover is gone");

    let client = Client::connect_tcp(serve.addr, Dialect::MsgpackRpc)
        .await
        .unwrap();
    let err = upload(&client, "big", &[7; 1025]).await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err}");
    let uploaded = upload(&client, "fits", &[7; 1024]).await.unwrap();
    let id = uploaded.file_id;
    assert_eq!(
        names(&dir),
        [id.clone(), format!("{id}.meta"), "notes.txt".into()]
    );
    assert_eq!(std::fs::read(dir.join(&id)).unwrap(), vec![7; 1024]);

    // An idle event stream beats.
    let mut events = client
        .server_stream::<_, StreamEvent>("subscribeEvents", &(1,))
        .await
        .unwrap();
    let first = tokio::time::timeout(common::PATIENCE, events.next_raw())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let first: StreamEvent = first.deserialize().unwrap();
    assert!(matches!(first, StreamEvent::Heartbeat { .. }), "{first:?}");
}

#[tokio::test]
async fn the_default_data_dir_is_made_at_the_first_upload() {
    let cwd = tempfile::tempdir().unwrap();
    let mut serve = Serve::start_with(&[], |cmd| {
        cmd.current_dir(cwd.path());
    });
    let line = serve.wait_line(|l| l.contains("files in"));
    assert_eq!(
        line,
        "msgwire serve: files in msgwire-data (uploads up to 1 GiB)"
    );
    assert!(
        names(cwd.path()).is_empty(),
        "nothing made before it is needed"
    );
    let client = Client::connect_tcp(serve.addr, Dialect::FramedMap)
        .await
        .unwrap();
    let uploaded = upload(&client, "a.txt", b"hello").await.unwrap();
    assert_eq!(names(cwd.path()), ["msgwire-data"]);
    let stored = cwd.path().join("msgwire-data").join(&uploaded.file_id);
    assert_eq!(std::fs::read(stored).unwrap(), b"hello");
}

#[test]
fn serve_help_explains_the_stream_services_flags() {
    let out = common::run_msgwire(&["serve", "--help"]);
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for want in [
        "--data-dir <DIR>",
        "./msgwire-data",
        "--max-upload <BYTES>",
        "200MiB",
        "[default: 1GiB]",
        "RESOURCE_EXHAUSTED",
        "--chat-backlog <N>",
        "--heartbeat <SECS>",
    ] {
        assert!(help.contains(want), "serve --help lacks {want:?}:\n{help}");
    }
}
