//! What every framework under test provides: an echo server and a client.
//!
//! Adding a framework means one module with a type implementing [`Peer`] and
//! one line in `main.rs`'s framework list.

use std::future::Future;
use std::net::SocketAddr;

use tokio::net::TcpListener;

/// A handle that issues echo calls on one connection.
///
/// Clones must share the connection: the harness clones one client into
/// every task that is meant to run on that connection (1 × 128 runs 128
/// tasks over one client).
pub trait EchoClient: Clone + Send + Sync + 'static {
    /// Sends `payload` and returns what the server sent back.
    fn echo(&self, payload: Vec<u8>) -> impl Future<Output = anyhow::Result<Vec<u8>>> + Send;
}

/// One framework under test.
pub trait Peer {
    /// The name used on the command line and in the results table.
    const NAME: &'static str;

    /// The client handle for one connection.
    type Client: EchoClient;

    /// Serves echo calls on every connection `listener` accepts.
    ///
    /// Runs until the server runtime is shut down; it is spawned on that
    /// runtime, so anything it spawns runs there too.
    fn serve(listener: TcpListener) -> impl Future<Output = anyhow::Result<()>> + Send + 'static;

    /// Opens one new connection to `addr`.
    ///
    /// Every call must make a separate TCP connection: 16 × 16 calls this
    /// 16 times.
    fn connect(addr: SocketAddr) -> impl Future<Output = anyhow::Result<Self::Client>> + Send;
}
