//! MessagePack: msgwire's scanner against decoding with rmpv and with Python's
//! `msgpack.Unpacker.feed`.
//!
//! Two streams of values back to back (RPC-like maps with strings, ints, floats, small
//! binaries and nested maps; and small scalars), each cut into the same reads for every
//! contender (one seed per chunking). Two chunkings: big reads (1 B–32 KiB, a busy
//! socket) and small reads (1–256 B, a trickle), where a value often spans reads.
//!
//! * msgwire `SelfDelimited`: `Framing::decode` on a `BytesMut`, each value handed out as
//!   a `Bytes` frame of its raw bytes;
//! * msgwire `MsgpackScanner`: measures every whole value in the buffer (borrowed, as
//!   `&[u8]`) with one `scan` call per value and drops the consumed bytes once per read;
//! * msgwire `MsgpackScanner::scan_many`: the same, one call per read (top-level
//!   fixed-size scalars take a table-driven fast path);
//! * msgwire `SelfDelimited::for_each_value`: the framing's batch path, every whole value
//!   handed out as a borrowed `&[u8]`, the buffer advanced once per read;
//! * rmpv `read_value` (owned `Value`) and `read_value_ref` (borrowed `ValueRef`): the
//!   naive way to use a decoder on a socket. After each read, decode values from the
//!   buffered bytes until one fails with `UnexpectedEof`; keep its bytes and try again
//!   from its start after the next read. A value cut by a read boundary is thus decoded
//!   (partly) more than once; the table counts those failed attempts;
//! * Python `msgpack.Unpacker` (`bench/py_unpacker.py`): `feed` each read, iterate the
//!   values. Timed inside Python, on the same bytes and the same reads.
//!
//! The scanner only finds where each value ends; the decoders also build the values.
//! That is the point of the comparison (a framer need not decode), and why it is not a
//! comparison of decoders.

use std::hint::black_box;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::Command;

use bytes::{Buf, BytesMut};
use msgwire_frame::msgpack::{MsgpackScanner, Scan, SelfDelimited};
use msgwire_frame::Framing;
use rand::{rngs::StdRng, Rng, SeedableRng};
use rmpv::Value;

use crate::timing::{human, median_of, per_sec, pieces, read_sizes};

/// Makes one value of a stream.
type MakeValue = fn(&mut StdRng) -> Value;

const METHODS: [&str; 5] = [
    "user.get",
    "orders.list",
    "cache.put",
    "metrics.push",
    "session.refresh",
];

fn text(rng: &mut StdRng, min: usize, max: usize) -> String {
    let len = rng.gen_range(min..=max);
    (0..len)
        .map(|_| char::from(rng.gen_range(b'a'..=b'z')))
        .collect()
}

fn blob(rng: &mut StdRng, min: usize, max: usize) -> Vec<u8> {
    let len = rng.gen_range(min..=max);
    (0..len).map(|_| rng.gen()).collect()
}

fn param(rng: &mut StdRng) -> Value {
    match rng.gen_range(0..8) {
        0 => Value::from(rng.gen_range(0..128u64)),
        1 => Value::from(rng.gen_range(-1_000_000i64..1_000_000)),
        2 => Value::from(rng.gen::<u64>()),
        3 => Value::from(rng.gen::<f64>() * 1e6),
        4 => Value::from(text(rng, 3, 40)),
        5 => Value::Binary(blob(rng, 8, 64)),
        6 => Value::from(rng.gen::<bool>()),
        _ => Value::Nil,
    }
}

/// An RPC request or reply: `{id, method, params: [...], meta: {...}}`.
fn rpc(rng: &mut StdRng) -> Value {
    let params = (0..rng.gen_range(1..=6)).map(|_| param(rng)).collect();
    let meta = vec![
        (Value::from("ts"), Value::from(rng.gen::<u64>() >> 20)),
        (Value::from("trace"), Value::Binary(blob(rng, 16, 16))),
        (
            Value::from("retry"),
            Value::from(rng.gen_range(0..4u8) == 0),
        ),
        (Value::from("score"), Value::F32(rng.gen())),
    ];
    Value::Map(vec![
        (Value::from("id"), Value::from(rng.gen::<u32>())),
        (
            Value::from("method"),
            Value::from(METHODS[rng.gen_range(0..METHODS.len())]),
        ),
        (Value::from("params"), Value::Array(params)),
        (Value::from("meta"), Value::Map(meta)),
    ])
}

/// A small scalar: fixints, nil, booleans, 16-bit ints, doubles, short strings.
fn scalar(rng: &mut StdRng) -> Value {
    match rng.gen_range(0..7) {
        0 => Value::from(rng.gen_range(0..128u8)),
        1 => Value::from(rng.gen_range(-32i8..0)),
        2 => Value::Nil,
        3 => Value::from(rng.gen::<bool>()),
        4 => Value::from(rng.gen::<u16>()),
        5 => Value::from(rng.gen::<f64>()),
        _ => Value::from(text(rng, 1, 8)),
    }
}

/// Values from `make` written back to back until the stream holds `bytes` bytes.
fn stream(bytes: usize, seed: u64, make: MakeValue) -> (Vec<u8>, usize) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut wire = Vec::with_capacity(bytes + 1024);
    let mut count = 0;
    while wire.len() < bytes {
        rmpv::encode::write_value(&mut wire, &make(&mut rng)).unwrap();
        count += 1;
    }
    (wire, count)
}

fn msgwire_framing(reads: &[&[u8]]) -> usize {
    let mut framing = SelfDelimited::new();
    let mut buf = BytesMut::new();
    let mut values = 0;
    for read in reads {
        buf.extend_from_slice(read);
        while let Some(frame) = framing.decode(&mut buf).unwrap() {
            black_box(&frame[..]);
            values += 1;
        }
    }
    values
}

fn msgwire_scanner(reads: &[&[u8]]) -> usize {
    let mut scanner = MsgpackScanner::new();
    let mut buf = BytesMut::new();
    let mut values = 0;
    for read in reads {
        buf.extend_from_slice(read);
        let mut pos = 0;
        // The value in progress keeps its start at byte 0 of what is left after the
        // `advance`, so the scanner resumes where it stopped.
        while let Scan::Complete(len) = scanner.scan(&buf[pos..]).unwrap() {
            black_box(&buf[pos..pos + len]);
            pos += len;
            values += 1;
        }
        buf.advance(pos);
    }
    values
}

fn msgwire_scan_many(reads: &[&[u8]]) -> usize {
    let mut scanner = MsgpackScanner::new();
    let mut buf = BytesMut::new();
    let mut values = 0;
    for read in reads {
        buf.extend_from_slice(read);
        let used = scanner
            .scan_many(&buf, |range| {
                black_box(&buf[range]);
                values += 1;
            })
            .unwrap();
        buf.advance(used);
    }
    values
}

fn msgwire_for_each_value(reads: &[&[u8]]) -> usize {
    let mut framing = SelfDelimited::new();
    let mut buf = BytesMut::new();
    let mut values = 0;
    for read in reads {
        buf.extend_from_slice(read);
        values += framing
            .for_each_value(&mut buf, |value| {
                black_box(value);
            })
            .unwrap();
    }
    values
}

/// Decodes with `decode` from the buffered bytes after each read, retrying a value that
/// hit the end of the buffer after the next read. Returns values and failed attempts.
fn rmpv_naive(
    reads: &[&[u8]],
    decode: fn(&mut &[u8]) -> Result<(), rmpv::decode::Error>,
) -> (usize, usize) {
    let mut buf = BytesMut::new();
    let mut values = 0;
    let mut retries = 0;
    for read in reads {
        buf.extend_from_slice(read);
        let mut pos = 0;
        while pos < buf.len() {
            let mut rest = &buf[pos..];
            match decode(&mut rest) {
                Ok(()) => {
                    pos = buf.len() - rest.len();
                    values += 1;
                }
                Err(e) if e.kind() == ErrorKind::UnexpectedEof => {
                    retries += 1;
                    break;
                }
                Err(e) => panic!("rmpv failed on a valid stream: {e}"),
            }
        }
        buf.advance(pos);
    }
    (values, retries)
}

fn rmpv_owned(rest: &mut &[u8]) -> Result<(), rmpv::decode::Error> {
    black_box(rmpv::decode::read_value(rest)?);
    Ok(())
}

fn rmpv_borrowed(rest: &mut &[u8]) -> Result<(), rmpv::decode::Error> {
    black_box(rmpv::decode::read_value_ref(rest)?);
    Ok(())
}

/// The Python to run: `$MSGWIRE_PYTHON`, else the repository's `.venv`.
fn python() -> PathBuf {
    std::env::var_os("MSGWIRE_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python"))
}

/// Python's values/s on the same stream and reads, or why there is no figure.
fn python_rate(
    wire: &[u8],
    sizes: &[usize],
    values: usize,
    rounds: usize,
) -> Result<(f64, String), String> {
    let python = python();
    if !python.exists() {
        return Err(format!(
            "no Python at {} (set MSGWIRE_PYTHON, or run scripts/test to create .venv)",
            python.display()
        ));
    }
    let dir = std::env::temp_dir();
    let tag = format!("msgwire-bench-{}", std::process::id());
    let stream_path = dir.join(format!("{tag}-stream.bin"));
    let sizes_path = dir.join(format!("{tag}-sizes.bin"));
    let sizes_le: Vec<u8> = sizes
        .iter()
        .flat_map(|&n| (n as u32).to_le_bytes())
        .collect();
    let written =
        std::fs::write(&stream_path, wire).and_then(|()| std::fs::write(&sizes_path, sizes_le));
    let output = written.and_then(|()| {
        Command::new(&python)
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("py_unpacker.py"))
            .arg(&stream_path)
            .arg(&sizes_path)
            .arg(rounds.to_string())
            .arg(values.to_string())
            .output()
    });
    let _ = std::fs::remove_file(&stream_path);
    let _ = std::fs::remove_file(&sizes_path);
    let output = output.map_err(|e| format!("could not run {}: {e}", python.display()))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last = stderr.lines().last().unwrap_or("no message");
        return Err(format!("py_unpacker.py failed: {last}"));
    }
    // values N seconds S impl I msgpack V
    let stdout = String::from_utf8_lossy(&output.stdout);
    let words: Vec<&str> = stdout.split_whitespace().collect();
    match words.as_slice() {
        ["values", n, "seconds", s, "impl", imp, "msgpack", version] => {
            let n: f64 = n.parse().map_err(|_| format!("bad output: {stdout}"))?;
            let s: f64 = s.parse().map_err(|_| format!("bad output: {stdout}"))?;
            Ok((n / s, format!("msgpack {version}, {imp} extension")))
        }
        _ => Err(format!("unexpected output: {}", stdout.trim())),
    }
}

/// Prints the table.
pub fn run(quick: bool) {
    let rounds = if quick { 3 } else { 7 };
    let budget = if quick { 1 << 20 } else { 8 << 20 };
    println!("## MessagePack: msgwire scanner vs rmpv and Python `msgpack.Unpacker`\n");
    println!(
        "Streams of ~{} MiB of values back to back; every contender gets the same reads \
         (one seed per chunking); median of {rounds} runs. Ratios are values/s ÷ the \
         named contender's values/s on the same stream and reads. \"retries\" counts \
         rmpv decode attempts that hit the end of the buffered bytes and were redone \
         after the next read.\n",
        budget >> 20
    );
    let corpora: [(&str, MakeValue); 2] = [("RPC maps", rpc), ("small scalars", scalar)];
    let chunkings = [("1 B–32 KiB", 32 * 1024, 11u64), ("1–256 B", 256, 12u64)];
    let mut python_note = None;
    println!("| stream | reads | contender | values/s | MB/s | ÷ rmpv `read_value` | ÷ Python |");
    println!("|---|---|---|---|---|---|---|");
    for (name, make) in corpora {
        let (wire, count) = stream(budget, 5, make);
        for (reads_name, max_read, seed) in chunkings {
            let sizes = read_sizes(wire.len(), max_read, seed);
            let reads = pieces(&wire, &sizes);
            assert_eq!(msgwire_framing(&reads), count);
            assert_eq!(msgwire_scanner(&reads), count);
            assert_eq!(msgwire_scan_many(&reads), count);
            assert_eq!(msgwire_for_each_value(&reads), count);
            let (owned_count, retries) = rmpv_naive(&reads, rmpv_owned);
            assert_eq!(owned_count, count);
            assert_eq!(rmpv_naive(&reads, rmpv_borrowed).0, count);
            let time = |f: &dyn Fn() -> usize| {
                per_sec(
                    count,
                    median_of(rounds, || {
                        black_box(f());
                    }),
                )
            };
            let framing = time(&|| msgwire_framing(&reads));
            let scanner = time(&|| msgwire_scanner(&reads));
            let scan_many = time(&|| msgwire_scan_many(&reads));
            let for_each = time(&|| msgwire_for_each_value(&reads));
            let owned = time(&|| rmpv_naive(&reads, rmpv_owned).0);
            let borrowed = time(&|| rmpv_naive(&reads, rmpv_borrowed).0);
            let py = python_rate(&wire, &sizes, count, rounds);
            let mb = |rate: f64| rate * wire.len() as f64 / count as f64 / 1e6;
            let vs_py = |rate: f64| match &py {
                Ok((p, _)) => format!("{:.2}×", rate / p),
                Err(_) => "n/a".to_owned(),
            };
            let label = format!(
                "{name} ({count} values, {:.1} MiB)",
                wire.len() as f64 / 1048576.0
            );
            let rows = [
                ("msgwire `SelfDelimited` (frames)", framing),
                (
                    "msgwire `SelfDelimited::for_each_value` (borrowed)",
                    for_each,
                ),
                (
                    "msgwire `MsgpackScanner` (measure, `scan` per value)",
                    scanner,
                ),
                (
                    "msgwire `MsgpackScanner::scan_many` (measure, batch)",
                    scan_many,
                ),
                ("rmpv `read_value` (owned)", owned),
                ("rmpv `read_value_ref` (borrowed)", borrowed),
            ];
            for (i, (contender, rate)) in rows.into_iter().enumerate() {
                let contender = if i == 4 {
                    format!("{contender}, {retries} retries")
                } else {
                    contender.to_owned()
                };
                println!(
                    "| {} | {reads_name} | {contender} | {} | {:.0} | {:.2}× | {} |",
                    if i == 0 { label.as_str() } else { "" },
                    human(rate),
                    mb(rate),
                    rate / owned,
                    vs_py(rate)
                );
            }
            match &py {
                Ok((p, note)) => {
                    println!(
                        "| | {reads_name} | Python `Unpacker.feed` | {} | {:.0} | {:.2}× | 1.00× |",
                        human(*p),
                        mb(*p),
                        p / owned
                    );
                    python_note = Some(note.clone());
                }
                Err(why) => {
                    println!("| | {reads_name} | Python `Unpacker.feed` | n/a | n/a | n/a | n/a |");
                    python_note = Some(format!("Python: n/a — {why}"));
                }
            }
        }
    }
    println!();
    if let Some(note) = python_note {
        println!(
            "Python: {}, `{}`.\n",
            note.trim_start_matches("Python: "),
            python().display()
        );
    }
}
