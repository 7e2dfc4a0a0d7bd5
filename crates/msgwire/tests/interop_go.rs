//! A Go peer against `msgwire serve`: `tests/interop/go`, built here with Debian's Go
//! and its packaged `github.com/vmihailenco/msgpack/v5`, offline.
//!
//! The program calls `getUser(1)` over the framed-map dialect with the string id
//! `"req-uuid-001"` and checks the id comes back as that string and the user is Alice;
//! then it GETs `/api/msgpack/users/1` and decodes the MessagePack body into a struct
//! with `msgpack` tags. It prints one `ok ...` line per check.
//!
//! The build is GOPATH mode (`GO111MODULE=off`) with `GOPATH=/usr/share/gocode`, where
//! Debian's `golang-*-dev` packages put their sources, `GOPROXY=off` and a `GOCACHE` in
//! a temporary directory: nothing is downloaded, nothing is written outside it.
//! `scripts/test` installs `golang-go` and `golang-github-vmihailenco-msgpack.v5-dev`;
//! without them the test fails saying so (it never skips). `MSGWIRE_GO` and
//! `MSGWIRE_GOPATH` point elsewhere.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{repo, run, stderr, stdout, Serve};

/// The `go` to build with: `$MSGWIRE_GO`, else `go` on PATH.
fn go() -> PathBuf {
    if let Some(path) = std::env::var_os("MSGWIRE_GO").map(PathBuf::from) {
        assert!(path.is_file(), "MSGWIRE_GO: no Go at {}", path.display());
        return path;
    }
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("go"))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "Go (go) is not on PATH: run scripts/test (it installs Debian's golang-go and \
             golang-github-vmihailenco-msgpack.v5-dev), or set MSGWIRE_GO"
        )
    })
}

/// Where the Go packages are: `$MSGWIRE_GOPATH`, else Debian's `/usr/share/gocode`.
fn gopath() -> PathBuf {
    let path = std::env::var_os("MSGWIRE_GOPATH")
        .map_or_else(|| PathBuf::from("/usr/share/gocode"), PathBuf::from);
    let msgpack = path.join("src/github.com/vmihailenco/msgpack/v5");
    assert!(
        msgpack.is_dir(),
        "github.com/vmihailenco/msgpack/v5 is not in {}: run scripts/test (it installs \
         golang-github-vmihailenco-msgpack.v5-dev), or set MSGWIRE_GOPATH",
        path.display()
    );
    path
}

/// Builds `tests/interop/go` into `dir`; returns the program.
fn build_peer(dir: &Path) -> PathBuf {
    let program = dir.join("gopeer");
    let mut cmd = Command::new(go());
    cmd.args(["build", "-o"])
        .arg(&program)
        .arg(".")
        .current_dir(repo().join("tests/interop/go"))
        .env("GO111MODULE", "off")
        .env("GOPATH", gopath())
        .env("GOCACHE", dir.join("gocache"))
        .env("GOPROXY", "off")
        .env("GOFLAGS", "")
        .env("CGO_ENABLED", "0");
    let out = run(cmd);
    assert!(
        out.status.success(),
        "go build of tests/interop/go failed ({}):\n{}{}",
        out.status,
        stdout(&out),
        stderr(&out)
    );
    program
}

#[test]
fn a_go_peer_reads_alice_over_framed_map_and_as_msgpack_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let peer = build_peer(dir.path());
    let data = dir.path().join("data");
    let mut serve = Serve::start(&["--data-dir", data.to_str().unwrap()]);
    let http = serve.http_addr();

    let mut cmd = Command::new(&peer);
    cmd.arg(serve.addr()).arg(http.to_string());
    let out = run(cmd);
    let printed = stdout(&out);
    assert!(
        out.status.success(),
        "the Go peer failed ({}):\nstdout: {printed}\nstderr: {}",
        out.status,
        stderr(&out)
    );
    let checks: Vec<&str> = printed.lines().filter(|l| l.starts_with("ok ")).collect();
    assert_eq!(
        checks,
        [
            "ok framed-map getUser: the id \"req-uuid-001\" is echoed as a string",
            "ok framed-map getUser(1) is Alice (admin, alice@example.com)",
            "ok GET /api/msgpack/users/1: 200, application/x-msgpack",
            "ok GET /api/msgpack/users/1 decodes to Alice (admin, alice@example.com)",
        ],
        "stdout: {printed}"
    );
    assert!(serve.is_running());
}

#[test]
fn the_go_peer_fails_on_a_mismatch() {
    // Not a msgwire server: a listener that answers a framed-map frame with the id as
    // an integer. The peer must notice and exit non-zero, not print "ok".
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let peer = build_peer(dir.path());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (mut socket, _) = listener.accept().unwrap();
        let mut head = [0u8; 4];
        socket.read_exact(&mut head).unwrap();
        let mut body = vec![0u8; u32::from_be_bytes(head) as usize];
        socket.read_exact(&mut body).unwrap();
        // {"result": nil, "error": nil, "id": 1}
        let answer = [
            0x83, 0xa6, b'r', b'e', b's', b'u', b'l', b't', 0xc0, 0xa5, b'e', b'r', b'r', b'o',
            b'r', 0xc0, 0xa2, b'i', b'd', 0x01,
        ];
        let length = u32::try_from(answer.len()).unwrap().to_be_bytes();
        socket.write_all(&length).unwrap();
        socket.write_all(&answer).unwrap();
    });
    let mut cmd = Command::new(&peer);
    cmd.arg(addr.to_string());
    let out = run(cmd);
    server.join().unwrap();
    assert!(!out.status.success(), "stdout: {}", stdout(&out));
    assert!(!stdout(&out).contains("ok "), "stdout: {}", stdout(&out));
    assert!(
        stderr(&out).contains("want the string \"req-uuid-001\" back"),
        "stderr: {}",
        stderr(&out)
    );
}
