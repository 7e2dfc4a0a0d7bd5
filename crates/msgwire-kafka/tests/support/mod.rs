//! A Tansu broker for the tests: started on a free port from an empty temporary
//! directory, stopped (and restartable on the same port) on demand, killed on drop.
//!
//! The binary is `$MSGWIRE_TANSU`, else `$MSGWIRE_TOOLS/bin/tansu` (default
//! `~/.cache/msgwire-tools/bin/tansu`, where `scripts/test` installs it), else
//! `tansu` on PATH. A missing broker FAILS the test with a message saying how to
//! install it — never a silent skip.
//!
//! Storage: [`Storage::Memory`] (`memory://tansu/`) is lost when the broker stops;
//! [`Storage::S3`] keeps the broker's data in an S3 server of its own
//! ([`S3Server`]: moto's, from the interop Python `.venv`), which outlives broker
//! restarts — Tansu 0.6 built with the `dynostore` feature has no local-file storage
//! (its dynostore engine takes `s3://` and `memory://` URLs only).
//!
//! Shared by the msgwire-kafka tests and `crates/msgwire/tests/cli_kafka.rs` (which
//! includes this file with `#[path]`).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Upper bound for anything a test waits for (a broker to start, a record to
/// arrive). Only a guard against hangs: nothing is asserted about durations.
pub const PATIENCE: Duration = Duration::from_secs(90);

#[path = "../../../../tests/support/peer_programs.rs"]
mod peer_programs;
#[allow(unused_imports)] // each test binary uses a different subset
pub use peer_programs::{python, python_script, repo};

/// The tansu binary; panics with instructions when there is none.
pub fn tansu_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("MSGWIRE_TANSU") {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "MSGWIRE_TANSU={} is not a file: install Tansu with scripts/test",
            path.display()
        );
        return path;
    }
    let tools = std::env::var_os("MSGWIRE_TOOLS")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/msgwire-tools"))
        });
    if let Some(path) = tools.map(|t| t.join("bin/tansu")).filter(|p| p.is_file()) {
        return path;
    }
    if let Some(path) = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("tansu"))
            .find(|p| p.is_file())
    }) {
        return path;
    }
    panic!(
        "no Tansu broker found (looked at $MSGWIRE_TANSU, ~/.cache/msgwire-tools/bin/tansu \
         and PATH): run scripts/test, which installs it, or `cargo install tansu --version \
         0.6.0 --locked --no-default-features --features dynostore --root \
         ~/.cache/msgwire-tools`"
    );
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for_port(port: u16, child: &mut Child, log: &Path, what: &str) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "{what} exited with {status} before listening on {port}; its log:\n{}",
                tail(log)
            );
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not listen on port {port} within {PATIENCE:?}; its log:\n{}",
            tail(log)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The last lines of a log file.
pub fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

fn stop_child(child: &mut Child) {
    if child.try_wait().ok().flatten().is_some() {
        return;
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if child.try_wait().ok().flatten().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Where the broker keeps its data.
#[derive(Debug, Clone)]
pub enum Storage {
    /// `memory://tansu/`: gone when the broker stops.
    Memory,
    /// `s3://<bucket>/` on an S3 server at `endpoint` (e.g. an [`S3Server`]).
    S3 {
        /// `http://127.0.0.1:PORT`
        endpoint: String,
        /// The bucket (must exist).
        bucket: String,
    },
}

/// A running (or stopped) Tansu broker. Killed when dropped.
#[derive(Debug)]
pub struct Broker {
    port: u16,
    storage: Storage,
    dir: tempfile::TempDir,
    child: Option<Child>,
    starts: u32,
}

impl Broker {
    /// A broker with memory storage.
    pub fn start() -> Broker {
        Broker::start_with(Storage::Memory)
    }

    /// A broker with `storage`, on a free port, in a new empty directory.
    pub fn start_with(storage: Storage) -> Broker {
        let mut broker = Broker {
            port: free_port(),
            storage,
            dir: tempfile::tempdir().unwrap(),
            child: None,
            starts: 0,
        };
        broker.run();
        broker
    }

    /// `127.0.0.1:PORT`, for `bootstrap.servers`.
    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The broker's address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join(format!("tansu-{}.log", self.starts))
    }

    fn run(&mut self) {
        assert!(self.child.is_none(), "the broker is running already");
        self.starts += 1;
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let storage_url = match &self.storage {
            Storage::Memory => "memory://tansu/".to_owned(),
            Storage::S3 { bucket, .. } => format!("s3://{bucket}/"),
        };
        let log = std::fs::File::create(self.log()).unwrap();
        let mut cmd = Command::new(tansu_binary());
        cmd.arg("broker")
            .args(["--listener-url", &url])
            .args(["--advertised-listener-url", &url])
            .args(["--storage-engine", &storage_url])
            .current_dir(self.dir.path())
            .env_remove("STORAGE_ENGINE")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        if let Storage::S3 { endpoint, .. } = &self.storage {
            cmd.env("AWS_ENDPOINT", endpoint)
                .env("AWS_ALLOW_HTTP", "true")
                .env("AWS_ACCESS_KEY_ID", "msgwire")
                .env("AWS_SECRET_ACCESS_KEY", "msgwire")
                .env("AWS_DEFAULT_REGION", "us-east-1")
                .env("AWS_REGION", "us-east-1");
        }
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        wait_for_port(self.port, &mut child, &self.log(), "tansu broker");
        self.child = Some(child);
    }

    /// Stops the broker (SIGTERM, then SIGKILL); the port and storage stay for
    /// [`Broker::restart`].
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            stop_child(&mut child);
        }
        // Wait until the port is free again, so a restart can bind it.
        let deadline = Instant::now() + PATIENCE;
        while TcpStream::connect(self.addr()).is_ok() {
            assert!(Instant::now() < deadline, "port {} stays busy", self.port);
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts the broker again on the same port with the same storage.
    pub fn restart(&mut self) {
        self.stop();
        self.run();
    }

    /// The broker's log so far (the current run), for failure messages.
    pub fn log_tail(&self) -> String {
        tail(&self.log())
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// An S3 server for the broker's storage that outlives broker restarts: moto's
/// server (`python -m moto.server`, from the interop venv), with one bucket.
#[derive(Debug)]
pub struct S3Server {
    port: u16,
    child: Child,
    dir: tempfile::TempDir,
    /// The bucket, created at start.
    pub bucket: String,
}

impl S3Server {
    /// Starts the server on a free port and creates bucket `tansu`.
    pub fn start() -> S3Server {
        let python = python();
        let ok = Command::new(&python)
            .args(["-c", "import moto.server"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(
            ok,
            "moto's S3 server is not installed in {}: run scripts/test (pip install -r \
             tests/interop/requirements.txt), or set MSGWIRE_PYTHON",
            python.display()
        );
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let log_path = dir.path().join("moto.log");
        let log = std::fs::File::create(&log_path).unwrap();
        let mut child = Command::new(&python)
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        wait_for_port(port, &mut child, &log_path, "moto S3 server");
        let server = S3Server {
            port,
            child,
            dir,
            bucket: "tansu".into(),
        };
        server.create_bucket();
        server
    }

    /// `http://127.0.0.1:PORT`
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The broker storage on this server.
    pub fn storage(&self) -> Storage {
        Storage::S3 {
            endpoint: self.endpoint(),
            bucket: self.bucket.clone(),
        }
    }

    fn create_bucket(&self) {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        write!(
            stream,
            "PUT /{} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.bucket, self.port
        )
        .unwrap();
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        assert!(
            answer.starts_with("HTTP/1.1 200") || answer.starts_with("HTTP/1.0 200"),
            "creating bucket {} on the S3 server failed: {answer}",
            self.bucket
        );
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A topic name no other test uses.
pub fn unique_topic(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}
