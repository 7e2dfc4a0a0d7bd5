//! The one client every server is measured with: N connections, each keeping a window
//! of messages in flight. It does as little as a client can, so that the server is
//! what is measured: its frames are encoded (and masked) once and written again and
//! again, one write for all the answers of a read; the answers are only measured
//! (their headers parsed with msgwire-frame's `FrameHeader::parse`, their payloads
//! skipped, never copied).
//!
//! ```text
//!  client ── [frame][frame]...[frame] (window) ──► server
//!         ◄── answers; for each answer read, the same frame again, in one write
//! ```

use std::io::IoSlice;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use bytes::{Buf, BytesMut};
use msgwire_frame::websocket::{encode_frame, FrameHeader, Opcode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What each message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payload {
    /// `size` bytes, echoed as they are.
    Echo,
    /// A msgpack-rpc `echo` request with a bin of `size` bytes; answers are matched to
    /// their request by id (ids 0 to window-1, each reused once answered).
    Rpc,
}

/// One run's settings.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    pub connections: usize,
    pub window: usize,
    pub size: usize,
    pub warmup: Duration,
    pub measure: Duration,
}

/// What a run measured, over `load.measure` after `load.warmup`.
#[derive(Debug, Clone, Copy)]
pub struct Measured {
    /// Messages answered per second.
    pub rate: f64,
    /// CPU time the server's thread spent per message answered, in nanoseconds.
    pub server_ns: f64,
}

/// Runs `load` against the server at `addr`; `server_cpu` reads the CPU time (ns) the
/// server's thread has used so far.
pub async fn run(
    addr: SocketAddr,
    payload: Payload,
    load: Load,
    server_cpu: fn() -> u64,
) -> anyhow::Result<Measured> {
    let answered = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..load.connections {
        let stream = connect(addr).await?;
        let (answered, stop) = (Arc::clone(&answered), Arc::clone(&stop));
        tasks.push(tokio::spawn(drive(stream, payload, load, answered, stop)));
    }
    tokio::time::sleep(load.warmup).await;
    let (start, before, cpu_before) = (
        Instant::now(),
        answered.load(Ordering::Relaxed),
        server_cpu(),
    );
    tokio::time::sleep(load.measure).await;
    let (elapsed, after, cpu_after) = (
        start.elapsed(),
        answered.load(Ordering::Relaxed),
        server_cpu(),
    );
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.abort();
        if let Ok(Err(e)) = task.await {
            bail!("a connection failed: {e:#}");
        }
    }
    let messages = (after - before).max(1) as f64;
    Ok(Measured {
        rate: (after - before) as f64 / elapsed.as_secs_f64(),
        server_ns: cpu_after.saturating_sub(cpu_before) as f64 / messages,
    })
}

/// Connects and does the client side of the opening handshake.
async fn connect(addr: SocketAddr) -> anyhow::Result<TcpStream> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let request = format!(
        "GET /ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).await? == 0 {
            bail!("closed during the handshake");
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    if !head.starts_with("HTTP/1.1 101") {
        bail!("handshake refused: {head}");
    }
    Ok(stream)
}

/// The frames this connection sends: one for echo, one per id for RPC.
fn frames(payload: Payload, load: Load) -> anyhow::Result<Vec<BytesMut>> {
    let data = vec![0x5a; load.size];
    let key = Some([0x1f, 0x2e, 0x3d, 0x4c]);
    let mut frames = Vec::new();
    match payload {
        Payload::Echo => {
            let mut frame = BytesMut::new();
            encode_frame(true, Opcode::Binary, &data, key, &mut frame)?;
            frames.push(frame);
        }
        Payload::Rpc => {
            for id in 0..load.window {
                let id = u8::try_from(id).ok().filter(|id| *id < 0x80);
                let id = id.context("RPC window must be at most 128 (fixint ids)")?;
                // [0, id, "echo", [bin]]
                let mut message = vec![0x94, 0x00, id, 0xa4, b'e', b'c', b'h', b'o', 0x91];
                match u32::try_from(load.size)? {
                    n @ 0..=0xff => message.extend_from_slice(&[0xc4, n as u8]),
                    n @ 0..=0xffff => {
                        message.push(0xc5);
                        message.extend_from_slice(&(n as u16).to_be_bytes());
                    }
                    n => {
                        message.push(0xc6);
                        message.extend_from_slice(&n.to_be_bytes());
                    }
                }
                message.extend_from_slice(&data);
                let mut frame = BytesMut::new();
                encode_frame(true, Opcode::Binary, &message, key, &mut frame)?;
                frames.push(frame);
            }
        }
    }
    Ok(frames)
}

async fn drive(
    mut stream: TcpStream,
    payload: Payload,
    load: Load,
    answered: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<()> {
    let frames = frames(payload, load)?;
    // Which frames to send next, by index: written from `frames` in one vectored
    // write, never copied.
    let mut out: Vec<usize> = (0..load.window).map(|i| i % frames.len()).collect();
    write_frames(&mut stream, &frames, &out).await?;
    out.clear();
    let mut buf = BytesMut::with_capacity(256 * 1024);
    // Payload bytes of the current frame still to skip.
    let mut skip = 0usize;
    while !stop.load(Ordering::Relaxed) {
        if buf.capacity() - buf.len() < 16 * 1024 {
            buf.reserve(256 * 1024);
        }
        if stream.read_buf(&mut buf).await? == 0 {
            bail!("the server closed the connection");
        }
        let mut count = 0;
        loop {
            if skip > 0 {
                let n = skip.min(buf.len());
                buf.advance(n);
                skip -= n;
                if skip > 0 {
                    break;
                }
            }
            let Some((header, header_len)) = FrameHeader::parse(&buf)? else {
                break;
            };
            if header.opcode != Opcode::Binary {
                bail!("unexpected {} frame", header.opcode);
            }
            let frame = match payload {
                Payload::Echo => 0,
                Payload::Rpc => {
                    // [1, id, nil, result]: the id is the payload's third byte.
                    let Some(&id) = buf.get(header_len + 2) else {
                        break;
                    };
                    usize::from(id)
                }
            };
            if frame >= frames.len() {
                bail!("an answer with a bad id");
            }
            out.push(frame);
            count += 1;
            buf.advance(header_len);
            skip = usize::try_from(header.payload_len)?;
        }
        if count > 0 {
            answered.fetch_add(count, Ordering::Relaxed);
            write_frames(&mut stream, &frames, &out).await?;
            out.clear();
        }
    }
    Ok(())
}

/// Writes `frames[i]` for each `i` of `which`, in order, with vectored writes.
async fn write_frames(
    stream: &mut TcpStream,
    frames: &[BytesMut],
    which: &[usize],
) -> std::io::Result<()> {
    const MAX_SLICES: usize = 512;
    for chunk in which.chunks(MAX_SLICES) {
        let mut slices: Vec<IoSlice<'_>> =
            chunk.iter().map(|&i| IoSlice::new(&frames[i])).collect();
        let mut slices = &mut slices[..];
        while !slices.is_empty() {
            let n = stream.write_vectored(slices).await?;
            if n == 0 {
                return Err(std::io::ErrorKind::WriteZero.into());
            }
            IoSlice::advance_slices(&mut slices, n);
        }
    }
    Ok(())
}
