//! `msgwire upload`, `download` and `stream` against a real `msgwire serve` (issue 7,
//! acceptance 7): what they print, their exit statuses, what they leave on disk, and
//! that Ctrl-C on `stream` cancels the call on the server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use common::{msgwire, run, run_msgwire, signal, stderr, stdout, wait_exit, wait_until, Serve};

/// Bytes that are the same on every run and not all alike.
fn noise(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn serve_in(dir: &std::path::Path) -> Serve {
    Serve::start_with(&["--data-dir", dir.to_str().unwrap()], |cmd| {
        cmd.env("RUST_LOG", "msgwire_rpc=debug");
    })
}

#[test]
fn upload_then_download_gives_the_same_bytes_and_checksums() {
    let data = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let serve = serve_in(data.path());
    let input = work.path().join("in.bin");
    let bytes = noise(3 * 1024 * 1024 + 17);
    std::fs::write(&input, &bytes).unwrap();

    let out = run_msgwire(&["upload", &serve.addr(), input.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let uploaded: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(uploaded["bytes_uploaded"], bytes.len());
    assert_eq!(uploaded["checksum_verified"], true);
    // Not a terminal: no progress bar.
    assert_eq!(stderr(&out), "");
    let file_id = uploaded["file_id"].as_str().unwrap();

    let target = work.path().join("out.bin");
    let out = run_msgwire(&["download", &serve.addr(), file_id, target.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let downloaded: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(downloaded["checksum"], uploaded["checksum"]);
    assert_eq!(downloaded["checksum_verified"], true);
    assert_eq!(std::fs::read(&target).unwrap(), bytes);
    assert!(!work.path().join("out.bin.part").exists());
}

#[test]
fn a_download_that_fails_exits_1_naming_the_code_and_leaves_nothing() {
    let data = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let serve = serve_in(data.path());
    let target = work.path().join("out.bin");
    let unknown = "0123456789abcdef0123456789abcdef";
    let out = run_msgwire(&["download", &serve.addr(), unknown, target.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("NOT_FOUND (5)"), "{}", stderr(&out));
    assert_eq!(std::fs::read_dir(work.path()).unwrap().count(), 0);
}

#[test]
fn an_upload_the_server_refuses_exits_1() {
    let data = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let serve = Serve::start(&[
        "--data-dir",
        data.path().to_str().unwrap(),
        "--max-upload",
        "1KiB",
    ]);
    let input = work.path().join("big.bin");
    std::fs::write(&input, noise(4096)).unwrap();
    let out = run_msgwire(&["upload", &serve.addr(), input.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("RESOURCE_EXHAUSTED (8)"),
        "{}",
        stderr(&out)
    );
    assert_eq!(stdout(&out), "");
}

#[test]
fn stream_prints_items_as_json_lines_and_ends_0_or_fails_1() {
    let data = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let serve = serve_in(data.path());
    let input = work.path().join("in.bin");
    std::fs::write(&input, noise(200 * 1024)).unwrap();
    let out = run_msgwire(&["upload", &serve.addr(), input.to_str().unwrap()]);
    let uploaded: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    let id = format!("\"{}\"", uploaded["file_id"].as_str().unwrap());

    // 200 KiB: four chunks, then the file's info.
    let out = run_msgwire(&["stream", &serve.addr(), "download", &id, "--result"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let lines: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 5, "{}", stdout(&out));
    let offsets: Vec<u64> = lines[..4]
        .iter()
        .map(|l| l["offset"].as_u64().unwrap())
        .collect();
    assert_eq!(offsets, [0, 65536, 131072, 196608]);
    assert_eq!(lines[4]["result"]["size"], 200 * 1024);

    let out = run_msgwire(&["stream", &serve.addr(), "download", "\"not-an-id\""]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("INVALID_ARGUMENT (3)"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn ctrl_c_cancels_the_stream_and_the_server_sees_the_cancel() {
    let data = tempfile::tempdir().unwrap();
    let serve = serve_in(data.path());
    for kind in ["login", "logout"] {
        let out = run_msgwire(&[
            "call",
            &serve.addr(),
            "publishEvent",
            "9",
            &format!("\"{kind}\""),
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let mut child = msgwire()
        .args(["stream", &serve.addr(), "subscribeEvents", "9", "[]", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut kinds = Vec::new();
    for _ in 0..2 {
        let line = lines.next().unwrap().unwrap();
        let item: serde_json::Value = serde_json::from_str(&line).unwrap();
        kinds.push(item["type"].as_str().unwrap().to_owned());
    }
    assert_eq!(kinds, ["login", "logout"]);
    assert!(
        !serve.stderr().contains("cancelled by the peer"),
        "a cancel before Ctrl-C"
    );
    signal(child.id(), "INT");
    let status = wait_exit(&mut child);
    assert_eq!(status.code(), Some(130));
    wait_until("the server logs the cancel", || {
        serve
            .stderr()
            .contains("call cancelled by the peer")
            .then_some(())
    });
    // The subscription went with it: a new one still works.
    let mut cmd = msgwire();
    cmd.args(["call", &serve.addr(), "add", "1", "2"]);
    let out = run(cmd);
    assert_eq!(stdout(&out).trim(), "3");
}
