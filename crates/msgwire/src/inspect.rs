//! `msgwire inspect`: decode a captured byte stream into one JSON line per message.
//!
//! ```text
//! $ msgwire inspect capture.bin
//! {"offset":0,"length":3,"value":[1,2]}
//! {"offset":7,"length":4,"value":{"$bin":"AAEC"}}
//! ```
//!
//! Each line holds the byte offset at which the frame starts (header included), the
//! payload length, and the payload decoded as MessagePack and printed as JSON (see
//! [`crate::json`] for how binary, ext and non-string keys are spelled). A payload that
//! is not one MessagePack value prints as `{"$bin": ...}` with a `"note"` saying why.
//!
//! Input is read incrementally, so a stream that trickles in decodes the same as a file.
//! On corrupt or truncated input every good message is printed first, then one error
//! line naming the byte offset goes to stderr and the exit status is 1.

use std::io::{self, BufWriter, Read, Write};
use std::path::PathBuf;

use anyhow::Context;
use bytes::{Bytes, BytesMut};
use clap::{Args, ValueEnum};
use msgwire_frame::{
    chunked::Chunked,
    delimiter::Delimited,
    grpc::{GrpcMessage, GrpcPrefixed},
    length::LengthPrefixed,
    msgpack::SelfDelimited,
    varint::VarintPrefixed,
    websocket::{Message, Opcode, Role, WebSocket},
    Decoded, Framing, StreamDecoder, DEFAULT_MAX_FRAME,
};
use serde_json::{json, Map, Value as Json};

use msgwire_http::json::{bin, decode_msgpack, to_json};

/// Options of `msgwire inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The capture to read; `-` or nothing reads standard input.
    #[arg(value_name = "FILE|-")]
    input: Option<PathBuf>,

    /// How the stream is framed. Without it, a u32 big-endian length-prefixed stream is
    /// told apart from back-to-back MessagePack by looking at the first frame.
    #[arg(long, value_enum)]
    framing: Option<FramingKind>,

    /// Largest frame accepted; a header announcing more is an error.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_FRAME)]
    max_frame: usize,
}

/// The framings `inspect` understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FramingKind {
    /// `[u32 BE length][payload]`.
    Length,
    /// `[LEB128 length][payload]`.
    Varint,
    /// One message per `\n`-terminated line (a trailing `\r` is dropped).
    Line,
    /// MessagePack values back to back, no prefix.
    Msgpack,
    /// WebSocket frames (RFC 6455), masked or not; fragments reassembled.
    Websocket,
    /// HTTP/1.1 chunked transfer coding: one message per chunk.
    Chunked,
    /// gRPC message prefix: `[flag u8][u32 BE length][payload]`.
    Grpc,
}

/// Runs `msgwire inspect`. `Ok(false)` means the input was bad (exit status 1).
pub fn run(args: &InspectArgs) -> anyhow::Result<bool> {
    let reader: Box<dyn Read> = match &args.input {
        None => Box::new(io::stdin().lock()),
        Some(p) if p.as_os_str() == "-" => Box::new(io::stdin().lock()),
        Some(p) => Box::new(
            std::fs::File::open(p).with_context(|| format!("cannot open {}", p.display()))?,
        ),
    };
    let mut input = Input::new(reader);
    let out = io::stdout().lock();
    let mut out = BufWriter::new(out);
    let kind = match args.framing {
        Some(kind) => kind,
        None => detect(&mut input, args.max_frame)?,
    };
    let max = args.max_frame;
    let result = match kind {
        FramingKind::Length => {
            let framing = LengthPrefixed::builder().max_frame_length(max).build()?;
            pump(framing, &mut input, &mut out, payload_line)
        }
        FramingKind::Varint => pump(
            VarintPrefixed::builder().max_frame_length(max).build(),
            &mut input,
            &mut out,
            payload_line,
        ),
        FramingKind::Line => pump(
            Delimited::builder(b"\n")
                .strip_trailing_cr(true)
                .max_length(max)
                .build()?,
            &mut input,
            &mut out,
            payload_line,
        ),
        FramingKind::Msgpack => pump(
            SelfDelimited::builder().max_frame_length(max).build(),
            &mut input,
            &mut out,
            payload_line,
        ),
        FramingKind::Chunked => pump(
            Chunked::builder().max_chunk_length(max).build(),
            &mut input,
            &mut out,
            payload_line,
        ),
        FramingKind::Grpc => pump(
            GrpcPrefixed::builder().max_message_length(max).build(),
            &mut input,
            &mut out,
            grpc_line,
        ),
        FramingKind::Websocket => {
            // A capture of what a client sent is masked; of what a server sent, not.
            // Look at the first frame's MASK bit to pick the side that reads it.
            let masked = input.peek(2)?.get(1).is_some_and(|b| b & 0x80 != 0);
            let builder = WebSocket::builder(if masked { Role::Server } else { Role::Client });
            let framing = builder
                .max_frame_length(max)
                .max_message_length(max)
                .build();
            pump(framing, &mut input, &mut out, websocket_line)
        }
    };
    out.flush()?;
    match result {
        Ok(()) => Ok(true),
        Err(Failure::Stream(e)) => {
            eprintln!(
                "msgwire inspect: error at byte offset {}: {}",
                e.offset, e.error
            );
            Ok(false)
        }
        Err(Failure::Io(e)) => Err(e.into()),
    }
}

enum Failure {
    Stream(msgwire_frame::StreamError),
    Io(io::Error),
}

/// Reads the input in pieces, with a look-ahead used only by framing detection.
struct Input {
    reader: Box<dyn Read>,
    /// Bytes read ahead for detection, handed out first by `read`.
    ahead: Vec<u8>,
    eof: bool,
}

impl Input {
    fn new(reader: Box<dyn Read>) -> Self {
        Self {
            reader,
            ahead: Vec::new(),
            eof: false,
        }
    }

    /// At least `n` bytes of look-ahead, or all there is before end of input.
    fn peek(&mut self, n: usize) -> io::Result<&[u8]> {
        let mut chunk = [0u8; 8192];
        while self.ahead.len() < n && !self.eof {
            let got = read_some(&mut self.reader, &mut chunk)?;
            if got == 0 {
                self.eof = true;
            }
            self.ahead.extend_from_slice(&chunk[..got]);
        }
        Ok(&self.ahead)
    }

    /// The next piece of input; empty at end of input.
    fn read(&mut self, chunk: &mut [u8]) -> io::Result<Vec<u8>> {
        if !self.ahead.is_empty() {
            return Ok(std::mem::take(&mut self.ahead));
        }
        if self.eof {
            return Ok(Vec::new());
        }
        let got = read_some(&mut self.reader, chunk)?;
        Ok(chunk[..got].to_vec())
    }
}

fn read_some(reader: &mut dyn Read, chunk: &mut [u8]) -> io::Result<usize> {
    loop {
        match reader.read(chunk) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// Length-prefixed or back-to-back MessagePack? A length-prefixed stream starts with a
/// u32 BE length within the limit, followed by exactly one MessagePack value of that
/// length. Back-to-back MessagePack almost never does: an array or map marker (≥ 0x80)
/// as the first byte already makes the "length" larger than 16 MiB.
fn detect(input: &mut Input, max: usize) -> io::Result<FramingKind> {
    let head = input.peek(4)?;
    if head.len() < 4 {
        return Ok(FramingKind::Msgpack);
    }
    let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
    // Over the limit, or (with --max-frame near usize::MAX on a 32-bit machine) a frame
    // that cannot be addressed: not a length-prefixed stream this run could read.
    let end = usize::try_from(len)
        .ok()
        .filter(|len| *len <= max)
        .and_then(|len| len.checked_add(4));
    let Some(end) = end else {
        return Ok(FramingKind::Msgpack);
    };
    let frame = input.peek(end)?;
    if frame.len() < end {
        return Ok(FramingKind::Msgpack);
    }
    Ok(match decode_msgpack(&frame[4..end]) {
        Ok(_) => FramingKind::Length,
        Err(_) => FramingKind::Msgpack,
    })
}

fn pump<F, L>(framing: F, input: &mut Input, out: &mut dyn Write, line: L) -> Result<(), Failure>
where
    F: Framing,
    L: Fn(&F::Frame<BytesMut>) -> (usize, Map<String, Json>),
{
    let mut decoder = StreamDecoder::new(framing, BytesMut::new());
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let piece = input.read(&mut chunk).map_err(Failure::Io)?;
        if piece.is_empty() {
            break;
        }
        decoder.feed(&piece);
        while let Some(d) = decoder.next_frame().map_err(Failure::Stream)? {
            emit(out, &line, d)?;
        }
        out.flush().map_err(Failure::Io)?;
    }
    while let Some(d) = decoder.finish().map_err(Failure::Stream)? {
        emit(out, &line, d)?;
    }
    Ok(())
}

/// Prints one JSON line for a decoded frame.
fn emit<T, L>(out: &mut dyn Write, line: &L, d: Decoded<T>) -> Result<(), Failure>
where
    L: Fn(&T) -> (usize, Map<String, Json>),
{
    let (length, fields) = line(&d.frame);
    let mut object = Map::new();
    object.insert("offset".into(), json!(d.offset));
    object.insert("length".into(), json!(length));
    object.extend(fields);
    writeln!(out, "{}", Json::Object(object)).map_err(Failure::Io)
}

/// `"value"` (and `"note"` when the payload is not MessagePack) for a payload.
fn describe_payload(payload: &[u8]) -> Map<String, Json> {
    let mut fields = Map::new();
    match decode_msgpack(payload) {
        Ok(value) => {
            fields.insert("value".into(), to_json(&value));
        }
        Err(note) => {
            fields.insert("value".into(), bin(payload));
            fields.insert("note".into(), Json::String(note));
        }
    }
    fields
}

fn payload_line(frame: &Bytes) -> (usize, Map<String, Json>) {
    (frame.len(), describe_payload(frame))
}

fn grpc_line(msg: &GrpcMessage<Bytes>) -> (usize, Map<String, Json>) {
    let mut fields = Map::new();
    fields.insert("compressed".into(), Json::Bool(msg.compressed));
    if msg.compressed {
        fields.insert("value".into(), bin(&msg.payload));
        fields.insert("note".into(), json!("compressed payload, shown as is"));
    } else {
        fields.extend(describe_payload(&msg.payload));
    }
    (msg.payload.len(), fields)
}

fn websocket_line(msg: &Message) -> (usize, Map<String, Json>) {
    let mut fields = Map::new();
    fields.insert("opcode".into(), json!(msg.opcode.name()));
    match msg.opcode {
        Opcode::Binary => fields.extend(describe_payload(&msg.payload)),
        Opcode::Text => {
            let text = String::from_utf8_lossy(&msg.payload).into_owned();
            fields.insert("value".into(), Json::String(text));
        }
        Opcode::Close => {
            let value = match msg.close_code() {
                Some(code) => {
                    let reason = String::from_utf8_lossy(msg.payload.get(2..).unwrap_or_default());
                    json!({ "code": code, "reason": reason })
                }
                None => Json::Null,
            };
            fields.insert("value".into(), value);
        }
        _ => {
            fields.insert("value".into(), bin(&msg.payload));
        }
    }
    (msg.payload.len(), fields)
}
