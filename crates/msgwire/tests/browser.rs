//! The playground page in a real browser: `msgwire serve` with its HTTP side, and
//! `tests/browser/playground.mjs` driving headless Chromium through playwright-core.
//!
//! The script uses the page as a person would — `add(2, 3)` shows 5, an error shows
//! its code and message, `subscribeEvents` shows a replay longer than one window of
//! credit and then live events as the page publishes them, Cancel stops it, and two
//! pages in one chat room see each other's messages — and prints one `ok ...` line per
//! check, the screenshots' paths, and a JSON summary, which this test checks.
//!
//! Screenshots (PNG) are kept in `target/test-artifacts/browser/`. `scripts/test`
//! installs Chromium (`/usr/bin/chromium`, or `$MSGWIRE_CHROMIUM`) and playwright-core
//! (in `tests/interop/node_modules`, or `$MSGWIRE_NODE_MODULES`); without them the
//! test fails saying so, never skips.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{repo, run, stderr, stdout, Serve};

/// The Chromium the script launches.
fn chromium() -> PathBuf {
    let path = std::env::var_os("MSGWIRE_CHROMIUM")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    assert!(
        path.is_file(),
        "no Chromium at {}: run scripts/test (it installs Debian's chromium), or set \
         MSGWIRE_CHROMIUM",
        path.display()
    );
    path
}

/// The npm packages the script loads (playwright-core, @msgpack/msgpack).
fn node_modules() -> PathBuf {
    let modules = std::env::var_os("MSGWIRE_NODE_MODULES")
        .map_or_else(|| repo().join("tests/interop/node_modules"), PathBuf::from);
    for package in ["playwright-core", "@msgpack/msgpack"] {
        assert!(
            modules.join(package).exists(),
            "{package} is not installed in {}: run scripts/test (npm ci in tests/interop), \
             or set MSGWIRE_NODE_MODULES",
            modules.display()
        );
    }
    modules
}

/// Where the screenshots go: `target/test-artifacts/browser` (under
/// `$CARGO_TARGET_DIR` when it is set).
fn artifact_dir() -> PathBuf {
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| repo().join("target"), PathBuf::from);
    let dir = target.join("test-artifacts/browser");
    std::fs::create_dir_all(&dir).unwrap();
    // As the script prints it: absolute, with no `..`.
    dir.canonicalize().unwrap()
}

#[test]
fn the_playground_calls_follows_a_stream_and_chats_in_chromium() {
    let chromium = chromium();
    let modules = node_modules();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // No heartbeat items in the event stream while the script counts its items.
    let mut serve = Serve::start(&["--data-dir", data.to_str().unwrap(), "--heartbeat", "3600"]);
    let http = serve.http_addr();
    let artifacts = artifact_dir();
    for old in ["call", "stream", "chat-alice", "chat-bob"] {
        let _ = std::fs::remove_file(artifacts.join(format!("{old}.png")));
    }

    let (host, port) = serve.host_port();
    let mut cmd = Command::new("node");
    cmd.arg(repo().join("tests/browser/playground.mjs"))
        .arg(format!("http://{http}/"))
        .args([host, port])
        .arg(&artifacts)
        .env("NODE_PATH", &modules)
        .env("MSGWIRE_CHROMIUM", &chromium);
    let out = run(cmd);
    let printed = stdout(&out);
    // Shown with --nocapture: what was checked and where the screenshots are.
    println!("{printed}");
    assert!(
        out.status.success(),
        "tests/browser/playground.mjs failed ({}):\nstdout: {printed}\nstderr: {}",
        out.status,
        stderr(&out)
    );

    for wanted in [
        "ok playground: the page connected over /ws",
        "ok add [2, 3] shows 5",
        "ok getUser [99] shows code 5",
        "ok subscribeEvents replays 100 events, past the 64-item window: 100 shown",
        "ok the replayed events are the published ones, in order",
        "ok live event 3 appears in the open stream: 103 shown",
        "ok Cancel ends the stream on the page",
        "ok the connection goes on after the cancel",
        "ok bob sees alice's message",
        "ok alice sees bob's message",
        "ok alice sees bob leave",
        "ok the pages logged no error or warning",
    ] {
        assert!(
            printed.lines().any(|l| l.starts_with(wanted)),
            "no line {wanted:?} in:\n{printed}"
        );
    }
    let summary: serde_json::Value =
        serde_json::from_str(printed.lines().last().unwrap_or_default())
            .unwrap_or_else(|e| panic!("the last line is not the JSON summary ({e}):\n{printed}"));
    assert_eq!(summary["add"], 5);
    assert_eq!(summary["not_found"]["code"], 5);
    assert_eq!(summary["not_found"]["message"], "user 99 not found");
    assert_eq!(summary["stream_items"], 103);
    assert_eq!(summary["cancelled"], true);
    assert_eq!(summary["chat"]["bob_saw"], "alice: hello from alice");
    assert_eq!(summary["chat"]["alice_saw"], "bob: hi alice, bob here");

    let shots = summary["screenshots"].as_array().unwrap();
    assert_eq!(shots.len(), 4, "{summary}");
    for shot in shots {
        let path = PathBuf::from(shot.as_str().unwrap());
        assert!(path.starts_with(&artifacts), "{}", path.display());
        let bytes = std::fs::read(&path).unwrap();
        assert!(
            bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
            "{} is not a PNG",
            path.display()
        );
        println!("screenshot: {}", path.display());
    }
    assert!(serve.is_running(), "the server outlived the browser");
}
