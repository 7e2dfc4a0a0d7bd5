//! Shared by the tests that run the `msgwire` binary: a `msgwire serve` guard, the
//! interop peers (Python, Node, Neovim) and a few process helpers.
//!
//! `scripts/test` installs the peers and sets `MSGWIRE_PYTHON` / `MSGWIRE_NODE_MODULES`;
//! a missing peer fails the test with a message saying so, never skips it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

#[path = "../../../../tests/support/peer_programs.rs"]
mod peer_programs;
#[allow(unused_imports)] // each test binary uses a different subset
pub use peer_programs::{node_script, python_script, repo};

/// Upper bound for anything a test waits for (a process to start, print or exit). Only
/// a guard against hangs: nothing is asserted about how long things take.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// `msgwire` (the binary under test) with no arguments yet.
pub fn msgwire() -> Command {
    Command::new(env!("CARGO_BIN_EXE_msgwire"))
}

/// Runs `msgwire ARGS` to completion with stdin closed; panics if it runs past
/// [`PATIENCE`].
pub fn run_msgwire(args: &[&str]) -> Output {
    let mut cmd = msgwire();
    cmd.args(args);
    run(cmd)
}

/// Runs `cmd` to completion with stdin closed and stdout/stderr captured; panics (after
/// killing it) if it runs past [`PATIENCE`].
pub fn run(mut cmd: Command) -> Output {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let guard = KillOnDrop(Some(child));
    let (tx, rx) = mpsc::channel();
    let pid = guard.0.as_ref().unwrap().id();
    let waiter = std::thread::spawn(move || {
        let mut guard = guard;
        let child = guard.0.take().unwrap();
        let out = child.wait_with_output();
        let _ = tx.send(());
        out
    });
    match rx.recv_timeout(PATIENCE) {
        Ok(()) => waiter.join().unwrap().unwrap(),
        Err(_) => {
            signal(pid, "KILL");
            panic!("{cmd:?} did not finish within {PATIENCE:?}");
        }
    }
}

/// Kills the child (if still held) when dropped.
struct KillOnDrop(Option<Child>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Stdout of a finished command, as text.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Stderr of a finished command, as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Sends `SIG<name>` (e.g. "TERM") to `pid` with the `kill` command.
pub fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .expect("cannot run kill");
    assert!(status.success(), "kill -{name} {pid} failed");
}

/// Waits for `child` to exit, at most [`PATIENCE`]; panics if it does not.
pub fn wait_exit(child: &mut Child) -> ExitStatus {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "process {} did not exit within {PATIENCE:?}",
            child.id()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Calls `ready` every few milliseconds until it returns `Some`, at most [`PATIENCE`];
/// panics with `what` if it never does.
pub fn wait_until<T>(what: &str, mut ready: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(value) = ready() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A running `msgwire serve --rpc 127.0.0.1:0 [ARGS]`, killed when dropped.
#[derive(Debug)]
pub struct Serve {
    child: Option<Child>,
    /// The TCP address it printed ("rpc listening on ADDR").
    pub addr: SocketAddr,
    lines: Receiver<String>,
    /// Every stdout line seen so far.
    seen: Vec<String>,
    stderr: Arc<Mutex<String>>,
    stderr_thread: Option<JoinHandle<()>>,
}

impl Serve {
    /// Starts `msgwire serve --rpc 127.0.0.1:0 ARGS` and waits for the line that says
    /// where it listens (and, with `--unix`, for the Unix socket's line too).
    pub fn start(args: &[&str]) -> Serve {
        Serve::start_with(args, |_| {})
    }

    /// [`start`](Self::start), with `configure` applied to the command first (to set or
    /// remove environment variables, say).
    pub fn start_with(args: &[&str], configure: impl FnOnce(&mut Command)) -> Serve {
        let mut cmd = msgwire();
        cmd.arg("serve");
        // Free ports unless the test names its own.
        for (flag, default) in [("--rpc", "127.0.0.1:0"), ("--http", "127.0.0.1:0")] {
            if !args.contains(&flag) {
                cmd.args([flag, default]);
            }
        }
        cmd.args(args);
        configure(&mut cmd);
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot start msgwire serve");
        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err = child.stderr.take().unwrap();
        let sink = Arc::clone(&stderr);
        let stderr_thread = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = err.read(&mut buf) {
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let mut serve = Serve {
            child: Some(child),
            addr: "0.0.0.0:0".parse().unwrap(),
            lines,
            seen: Vec::new(),
            stderr,
            stderr_thread: Some(stderr_thread),
        };
        let line = serve.wait_line(|l| {
            l.starts_with("msgwire serve: rpc listening on ") && !l.contains("unix:")
        });
        serve.addr = parse_listening(&line, "msgwire serve: rpc listening on ");
        assert_ne!(
            serve.addr.port(),
            0,
            "port 0 printed instead of the real one"
        );
        if args.contains(&"--unix") {
            serve.wait_line(|l| l.starts_with("msgwire serve: rpc listening on unix:"));
        }
        // Every listener is open once the HTTP one is (it is bound last): tests that
        // count the server's descriptors start from here.
        serve.http_addr();
        serve
    }

    /// The TCP address as `HOST:PORT` text.
    pub fn addr(&self) -> String {
        self.addr.to_string()
    }

    /// The TCP address as the two arguments `HOST PORT` the peer scripts take.
    pub fn host_port(&self) -> (String, String) {
        (self.addr.ip().to_string(), self.addr.port().to_string())
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// Whether the process is still running (it has not exited or crashed).
    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().unwrap().try_wait().unwrap().is_none()
    }

    /// Waits (at most [`PATIENCE`]) for a stdout line matching `want` and returns it;
    /// lines already seen count too.
    pub fn wait_line(&mut self, want: impl Fn(&str) -> bool) -> String {
        if let Some(line) = self.seen.iter().find(|l| want(l)) {
            return line.clone();
        }
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if want(&line) {
                        return line;
                    }
                }
                Err(RecvTimeoutError::Timeout) => panic!(
                    "msgwire serve printed no such line within {PATIENCE:?}; stdout so far: {:?}; stderr: {}",
                    self.seen,
                    self.stderr()
                ),
                Err(RecvTimeoutError::Disconnected) => panic!(
                    "msgwire serve closed stdout without printing such a line; stdout: {:?}; stderr: {}",
                    self.seen,
                    self.stderr()
                ),
            }
        }
    }

    /// What the server wrote on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Sends SIGTERM and waits for the process to exit; returns its status and every
    /// stdout line it printed.
    pub fn terminate(mut self) -> (ExitStatus, Vec<String>) {
        signal(self.pid(), "TERM");
        let status = wait_exit(self.child.as_mut().unwrap());
        self.child = None;
        // The process is gone, so stdout reaches its end: collect the rest.
        while let Ok(line) = self.lines.recv_timeout(PATIENCE) {
            self.seen.push(line);
        }
        if let Some(thread) = self.stderr_thread.take() {
            thread.join().unwrap();
        }
        (status, std::mem::take(&mut self.seen))
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs a peer script; panics with its output unless it exits 0. Returns its stdout's
/// last line parsed as JSON (the peers print one JSON summary line).
pub fn run_peer(cmd: Command) -> serde_json::Value {
    let shown = format!("{cmd:?}");
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{shown} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        stdout(&out),
        stderr(&out)
    );
    let text = stdout(&out);
    let last = text.lines().last().unwrap_or_default();
    serde_json::from_str(last)
        .unwrap_or_else(|e| panic!("{shown} printed {text:?}, not one JSON line: {e}"))
}

/// The `nvim` to test against: `$MSGWIRE_NVIM`, else `nvim` on PATH.
pub fn nvim() -> PathBuf {
    if let Some(path) = std::env::var_os("MSGWIRE_NVIM") {
        return PathBuf::from(path);
    }
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("nvim"))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "Neovim (nvim) is not on PATH: install it (Debian: apt-get install neovim), \
             or set MSGWIRE_NVIM"
        )
    })
}

/// A headless Neovim listening on a Unix socket, killed when dropped.
#[derive(Debug)]
pub struct Nvim {
    child: Child,
    /// The socket it listens on.
    pub socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl Nvim {
    /// Starts `nvim --headless --clean --listen <dir>/nvim.sock` and waits until the
    /// socket accepts connections.
    pub fn start() -> Nvim {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("nvim.sock");
        let child = Command::new(nvim())
            .args(["--headless", "--clean", "--listen"])
            .arg(&socket)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start nvim: {e}"));
        let mut nvim = Nvim {
            child,
            socket,
            _dir: dir,
        };
        let socket = nvim.socket.clone();
        let child = &mut nvim.child;
        wait_until("nvim to accept on its socket", || {
            if let Some(status) = child.try_wait().unwrap() {
                panic!("nvim exited early: {status}");
            }
            connects(&socket).then_some(())
        });
        nvim
    }
}

fn connects(socket: &Path) -> bool {
    std::os::unix::net::UnixStream::connect(socket).is_ok()
}

impl Drop for Nvim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Serve {
    /// The HTTP address it printed ("http listening on ADDR"), waiting for the line.
    pub fn http_addr(&mut self) -> SocketAddr {
        let line = self.wait_line(|l| l.starts_with("msgwire serve: http listening on "));
        parse_listening(&line, "msgwire serve: http listening on ")
    }
}

/// The address in a "… listening on ADDR (…)" line.
pub fn parse_listening(line: &str, prefix: &str) -> SocketAddr {
    let addr = line
        .trim_start_matches(prefix)
        .split_whitespace()
        .next()
        .unwrap_or_default();
    addr.parse()
        .unwrap_or_else(|e| panic!("{addr:?} in {line:?} is not an address: {e}"))
}

/// An HTTP answer read by [`http_request`].
#[derive(Debug)]
pub struct HttpAnswer {
    /// The status code.
    pub status: u16,
    /// The headers, names lowercased.
    pub headers: Vec<(String, String)>,
    /// The body (de-chunked).
    pub body: Vec<u8>,
}

impl HttpAnswer {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
}

/// One HTTP/1.1 request on a fresh connection (`Connection: close`), its whole answer
/// read; a plain client for tests, so that no HTTP library of the server's own is in
/// the way. `headers` are `(name, value)` pairs.
pub fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpAnswer {
    use std::io::Write;
    let mut stream = std::net::TcpStream::connect(addr).expect("cannot connect over HTTP");
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        request.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .expect("cannot read the HTTP answer");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no end of headers in {:?}", String::from_utf8_lossy(&raw)));
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {head:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    HttpAnswer {
        status,
        headers,
        body,
    }
}

/// A chunked body's data.
fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(end) = raw.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size_text = String::from_utf8_lossy(&raw[..end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16)
            .unwrap_or_else(|_| panic!("bad chunk size {size_text:?}"));
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&raw[end + 2..end + 2 + size]);
        raw = &raw[end + 2 + size + 2..];
    }
}

/// `value`'s field `name`, when it is a map with one.
pub fn field<'a>(value: &'a msgwire_rpc::Value, name: &str) -> Option<&'a msgwire_rpc::Value> {
    value
        .as_map()?
        .iter()
        .find(|(k, _)| k.as_str() == Some(name))
        .map(|(_, v)| v)
}

/// The next item of a `subscribeEvents` stream that is not a heartbeat, within `wait`
/// (`None` when none came).
pub async fn next_event(
    events: &mut msgwire_rpc::StreamReceiver<msgwire_rpc::Value>,
    wait: Duration,
) -> Option<msgwire_rpc::Value> {
    use futures::StreamExt;
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let item = tokio::time::timeout_at(deadline, events.next())
            .await
            .ok()?;
        let item = item.expect("the stream ended").expect("the stream failed");
        if field(&item, "type").and_then(msgwire_rpc::Value::as_str) != Some("heartbeat") {
            return Some(item);
        }
    }
}
