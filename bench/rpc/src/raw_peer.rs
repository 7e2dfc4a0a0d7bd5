//! Raw tokio TCP: the ceiling both modes compare the frameworks against.
//!
//! No framework, no codec, no buffering layer: a plain [`TcpStream`] with
//! `TCP_NODELAY`, `read_exact` and `write_all`, and one server task per
//! connection.
//!
//! * Unary echo: a frame is a u32 big-endian length and that many payload
//!   bytes. The server reads a frame and writes the same frame back, one
//!   frame at a time. The client writes each call's frame with one
//!   `write_all` under a lock (so frames never interleave) and queues the
//!   caller's reply slot in the same critical section; one reader task per
//!   connection reads the replies, which come back in the order the calls
//!   were written, and hands each to the oldest waiting caller. That is
//!   the least a client needs to keep 128 calls in flight on one connection.
//! * Download: the client writes a 12-byte request (u64 BE size, u32 BE
//!   chunk size); the server writes `size` bytes from one reused buffer, a
//!   `write_all` per chunk; the client reads into one reused buffer and
//!   counts.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::Context as _;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

use crate::download::{self, DownloadPeer};
use crate::peer::{EchoClient, Peer};

/// Largest echo frame the server accepts (the harness sends 64 bytes).
const MAX_FRAME: usize = 16 << 20;

/// The raw TCP peer.
#[derive(Debug)]
pub struct Raw;

/// Callers waiting for their replies, oldest first.
#[derive(Debug, Default)]
struct Waiting {
    replies: VecDeque<oneshot::Sender<Vec<u8>>>,
    /// Set once the reader task has stopped: nothing will answer any more.
    closed: bool,
}

type Shared = Arc<Mutex<Waiting>>;

fn lock(waiting: &Shared) -> std::sync::MutexGuard<'_, Waiting> {
    waiting.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A raw client on one TCP connection; clones share it.
///
/// Dropping the last clone drops the write half, which shuts the socket
/// down for writing: the server task then sees end of file and closes, and
/// the reader task sees it in turn and stops.
#[derive(Debug, Clone)]
pub struct RawClient {
    writer: Arc<tokio::sync::Mutex<OwnedWriteHalf>>,
    waiting: Shared,
}

impl EchoClient for RawClient {
    async fn echo(&self, payload: Vec<u8>) -> anyhow::Result<Vec<u8>> {
        let len = u32::try_from(payload.len()).context("payload over 4 GiB")?;
        let mut frame = Vec::with_capacity(4 + payload.len());
        frame.extend_from_slice(&len.to_be_bytes());
        frame.extend_from_slice(&payload);

        let (reply_tx, reply_rx) = oneshot::channel();
        {
            let mut writer = self.writer.lock().await;
            {
                let mut waiting = lock(&self.waiting);
                anyhow::ensure!(!waiting.closed, "raw connection closed");
                // Queued in write order: the writer lock is held.
                waiting.replies.push_back(reply_tx);
            }
            writer.write_all(&frame).await.context("raw write")?;
        }
        reply_rx
            .await
            .context("raw connection closed before the reply")
    }
}

/// The client's reader task: reads replies and hands them out in order.
async fn read_replies(mut reader: OwnedReadHalf, waiting: Shared) {
    let outcome = read_replies_until_eof(&mut reader, &waiting).await;
    // Whatever stopped it, fail every caller still waiting (dropping a
    // sender fails its receiver) and refuse new ones.
    let mut waiting = lock(&waiting);
    waiting.closed = true;
    waiting.replies.clear();
    drop(waiting);
    if let Err(e) = outcome {
        if !is_disconnect(&e) {
            eprintln!("raw client: {e}");
        }
    }
}

async fn read_replies_until_eof(reader: &mut OwnedReadHalf, waiting: &Shared) -> io::Result<()> {
    let mut header = [0u8; 4];
    loop {
        if !read_or_eof(reader, &mut header).await? {
            return Ok(());
        }
        let len = frame_len(header)?;
        let mut reply = vec![0u8; len];
        reader.read_exact(&mut reply).await?;
        let caller = lock(waiting).replies.pop_front().ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidData, "a reply nobody asked for")
        })?;
        // A caller that gave up is no error of the connection.
        let _ = caller.send(reply);
    }
}

/// Fills `buf`, or returns `false` on a clean end of file before its first
/// byte.
async fn read_or_eof<R: AsyncRead + Unpin>(reader: &mut R, buf: &mut [u8]) -> io::Result<bool> {
    match reader.read_exact(buf).await {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(e),
    }
}

fn frame_len(header: [u8; 4]) -> io::Result<usize> {
    let len = u32::from_be_bytes(header) as usize;
    if len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {len} bytes, over {MAX_FRAME}"),
        ));
    }
    Ok(len)
}

/// The errors a peer going away produces (the client runtime is shut down
/// at the end of each shape).
fn is_disconnect(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
    )
}

/// Accepts connections for ever, each served by `serve_one` in a task.
async fn accept_loop<F, Fut>(listener: TcpListener, serve_one: F) -> anyhow::Result<()>
where
    F: Fn(TcpStream) -> Fut,
    Fut: std::future::Future<Output = io::Result<()>> + Send + 'static,
{
    loop {
        let (stream, _) = listener.accept().await.context("raw accept")?;
        stream.set_nodelay(true)?;
        let connection = serve_one(stream);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                if !is_disconnect(&e) {
                    eprintln!("raw server: {e}");
                }
            }
        });
    }
}

/// Server side of the echo: read a frame, write it back, until end of file.
async fn echo_connection(mut stream: TcpStream) -> io::Result<()> {
    // Header and payload in one buffer, so the answer is one `write_all`.
    let mut frame = vec![0u8; 4];
    loop {
        if !read_or_eof(&mut stream, &mut frame[..4]).await? {
            return Ok(());
        }
        let header = [frame[0], frame[1], frame[2], frame[3]];
        let len = frame_len(header)?;
        frame.resize(4 + len, 0);
        stream.read_exact(&mut frame[4..]).await?;
        stream.write_all(&frame).await?;
        frame.truncate(4);
    }
}

impl Peer for Raw {
    const NAME: &'static str = "raw";
    type Client = RawClient;

    async fn serve(listener: TcpListener) -> anyhow::Result<()> {
        accept_loop(listener, echo_connection).await
    }

    async fn connect(addr: SocketAddr) -> anyhow::Result<RawClient> {
        let stream = TcpStream::connect(addr).await.context("raw connect")?;
        stream.set_nodelay(true)?;
        let (reader, writer) = stream.into_split();
        let waiting = Shared::default();
        tokio::spawn(read_replies(reader, waiting.clone()));
        Ok(RawClient {
            writer: Arc::new(tokio::sync::Mutex::new(writer)),
            waiting,
        })
    }
}

/// Server side of the download: for each 12-byte request, `size` bytes in
/// chunks from one buffer made once per request.
async fn download_connection(mut stream: TcpStream) -> io::Result<()> {
    let mut request = [0u8; 12];
    loop {
        if !read_or_eof(&mut stream, &mut request).await? {
            return Ok(());
        }
        let (size, chunk) = download::split_raw_request(request);
        if chunk == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "chunk size 0"));
        }
        let buf = download::chunk_buffer(chunk);
        let mut left = size;
        while left > 0 {
            let n = left.min(buf.len() as u64) as usize;
            stream.write_all(&buf[..n]).await?;
            left -= n as u64;
        }
    }
}

impl DownloadPeer for Raw {
    const NAME: &'static str = "raw";
    type Conn = TcpStream;

    async fn serve(listener: TcpListener) -> anyhow::Result<()> {
        accept_loop(listener, download_connection).await
    }

    async fn connect(addr: SocketAddr) -> anyhow::Result<TcpStream> {
        let stream = TcpStream::connect(addr).await.context("raw connect")?;
        stream.set_nodelay(true)?;
        Ok(stream)
    }

    async fn download(stream: &mut TcpStream, size: u64, chunk: u32) -> anyhow::Result<u64> {
        stream
            .write_all(&download::raw_request(size, chunk))
            .await
            .context("raw download request")?;
        let mut buf = vec![0u8; chunk as usize];
        let mut got = 0u64;
        while got < size {
            let want = (size - got).min(buf.len() as u64) as usize;
            let n = stream.read(&mut buf[..want]).await.context("raw read")?;
            anyhow::ensure!(n > 0, "raw server closed after {got} of {size} bytes");
            got += n as u64;
        }
        Ok(got)
    }
}
