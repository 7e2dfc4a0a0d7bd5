//! An in-process `msgwire serve`: the services on a TCP port of their own, with a
//! fresh data directory, and helpers the tests share.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use msgwire_rpc::{CallError, Client, Code, Dialect, Server};
use msgwire_services::{Services, ServicesConfig};
use tokio::net::TcpListener;

/// An upper bound so that a broken test fails instead of hanging. Never a timing claim.
pub const LIMIT: Duration = Duration::from_secs(60);

/// Awaits `f`, failing the test if it takes longer than [`LIMIT`].
pub async fn within<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(LIMIT, f)
        .await
        .expect("the test hung (gave up after the upper bound)")
}

/// A server of every service, and what the test needs to look at.
pub struct TestServer {
    pub addr: SocketAddr,
    pub services: Services,
    /// The data directory (inside `root`).
    pub data_dir: PathBuf,
    /// A temporary directory holding the data directory, removed at the end.
    pub root: tempfile::TempDir,
}

impl TestServer {
    /// Serves with `config`, whose data directory is replaced by `<root>/data/files`.
    pub async fn start(config: ServicesConfig) -> TestServer {
        let root = tempfile::tempdir().unwrap();
        let data_dir = root.path().join("data").join("files");
        std::fs::create_dir_all(&data_dir).unwrap();
        let services = Services::new(ServicesConfig {
            data_dir: data_dir.clone(),
            ..config
        })
        .unwrap();
        let server = Server::builder().build(services.router()).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(server.serve_tcp(listener).into_future());
        TestServer {
            addr,
            services,
            data_dir,
            root,
        }
    }

    pub async fn client(&self, dialect: Dialect) -> Client {
        Client::connect_tcp(self.addr, dialect).await.unwrap()
    }

    /// The names in the data directory, sorted.
    pub fn files(&self) -> Vec<String> {
        names(&self.data_dir)
    }
}

/// The names of the entries of `dir`, sorted.
pub fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Polls `dir` until it is empty, failing with what is still there after five seconds:
/// an assertion that it empties, not of when.
pub async fn until_empty(dir: &Path) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let left = names(dir);
        if left.is_empty() {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still in the data directory after 5 s: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Polls `dir` until `pred` holds of its names, failing after [`LIMIT`].
pub async fn until_names(dir: &Path, pred: impl Fn(&[String]) -> bool) {
    within(async {
        while !pred(&names(dir)) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
}

/// The code of a call's error, for assertions.
pub fn code<T: std::fmt::Debug>(result: Result<T, CallError>) -> Code {
    match result {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e.code(),
    }
}

/// Deterministic pseudo-random bytes (SplitMix64), produced in any slice sizes: the
/// same seed gives the same stream however it is cut, so a test can make a large
/// file twice instead of keeping it.
#[derive(Debug, Clone)]
pub struct Noise {
    state: u64,
    word: [u8; 8],
    used: usize,
}

impl Noise {
    pub fn new(seed: u64) -> Noise {
        Noise {
            state: seed,
            word: [0; 8],
            used: 8,
        }
    }

    fn next_word(&mut self) -> [u8; 8] {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)).to_le_bytes()
    }

    /// Fills `out` with the next bytes of the stream.
    pub fn fill(&mut self, out: &mut [u8]) {
        let mut at = 0;
        while at < out.len() {
            if self.used == 8 {
                self.word = self.next_word();
                self.used = 0;
            }
            let n = (8 - self.used).min(out.len() - at);
            out[at..at + n].copy_from_slice(&self.word[self.used..self.used + n]);
            self.used += n;
            at += n;
        }
    }

    /// The next `n` bytes.
    pub fn take(&mut self, n: usize) -> Vec<u8> {
        let mut out = vec![0; n];
        self.fill(&mut out);
        out
    }
}
