//! Streams with peers in another language (issue 7, acceptance 5), against the real
//! `msgwire serve`: a Python client written only from docs/PROTOCOL.md section 10 —
//! the stock `msgpack` package and a socket (`tests/interop/py_stream_client.py`) —
//! uploads and downloads a file, consumes `subscribeEvents`, and cancels a stream
//! midway; pynvim's session layer receives a server stream's items as notifications.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{python_script, run_peer, Serve};
use serde_json::json;

/// 4 MiB up (64 chunks, past the 1 MiB window both ways, so credit has to flow), the
/// same bytes back in 64 KiB chunks in order, and a second download cancelled after 3
/// chunks: what was already on its way within the window may still arrive, its
/// response never does, and a unary call on the same connection is answered.
#[test]
fn python_uploads_downloads_and_cancels_a_download_midway() {
    let data = tempfile::tempdir().unwrap();
    let serve = Serve::start(&["--data-dir", data.path().to_str().unwrap()]);
    let (host, port) = serve.host_port();
    let mut summary = run_peer(python_script(
        "py_stream_client.py",
        &["files", &host, &port, "4194304"],
    ));
    let late_items = summary["late"]["items"].as_u64().unwrap();
    let file_id = summary["file_id"].as_str().unwrap().to_owned();
    summary.as_object_mut().unwrap().remove("file_id");
    summary.as_object_mut().unwrap().remove("late");
    assert_eq!(
        summary,
        json!({
            "uploaded": {"bytes_uploaded": 4194304, "checksum_verified": true},
            "identical": true,
            "chunks": 64,
            "largest_chunk": 65536,
            "offsets_in_order": true,
            "final_size": 4194304,
            "cancelled_after": 3,
            "add_after_cancel": 5,
        })
    );
    // The window (1 MiB = 16 chunks of 64 KiB, no credit granted before the cancel)
    // bounds what can still arrive after it.
    assert!(late_items <= 13, "{late_items} items after the cancel");
    assert!(data.path().join(&file_id).exists());
}

/// Events published for a user reach its subscription, filtered by type (login and
/// logout, not profile_update); the subscription is cancelled and the connection goes
/// on.
#[test]
fn python_consumes_subscribe_events_and_cancels_it() {
    let data = tempfile::tempdir().unwrap();
    let serve = Serve::start(&["--data-dir", data.path().to_str().unwrap()]);
    let (host, port) = serve.host_port();
    let summary = run_peer(python_script(
        "py_stream_client.py",
        &["events", &host, &port, "42"],
    ));
    assert_eq!(summary["events"], json!(["login", "logout"]));
    assert_eq!(summary["add_after_cancel"], json!(5));
    assert_eq!(summary["late"]["responses"], json!(0));
}

/// pynvim's blocking `request("download", id)` returns the file's info, and the
/// chunks that came before it are `$/item` notifications in its queue: a stock
/// msgpack-rpc peer follows a server stream within one window (300 KiB here).
#[test]
fn pynvim_receives_a_server_streams_items_as_notifications() {
    let data = tempfile::tempdir().unwrap();
    let serve = Serve::start(&["--data-dir", data.path().to_str().unwrap()]);
    let (host, port) = serve.host_port();
    let uploaded = run_peer(python_script(
        "py_stream_client.py",
        &["files", &host, &port, "307200"],
    ));
    assert_eq!(uploaded["identical"], json!(true));
    let file_id = uploaded["file_id"].as_str().unwrap();
    let summary = run_peer(python_script(
        "py_stream_client.py",
        &["pynvim", &host, &port, file_id],
    ));
    assert_eq!(
        summary,
        json!({
            "result_size": 307200,
            "kinds": ["notification"],
            "names": ["$/item"],
            "bytes": 307200,
        })
    );
}
