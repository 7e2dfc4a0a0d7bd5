//! chunked: a large array sent as a sequence of ordinary messages, and [`Reassembler`],
//! which puts it back together on the receiving side and checks it on the way.
//!
//! ```text
//!  {"type": "chunked_start", "total_items": 5, "total_chunks": 3}
//!  {"type": "chunk", "index": 0, "data": [1, 2]}        index 0, 1, 2: in order,
//!  {"type": "chunk", "index": 1, "data": [3, 4]}        no gap, no repeat
//!  {"type": "chunk", "index": 2, "data": [5]}
//!  {"type": "chunked_end"}                         ──►  [1, 2, 3, 4, 5]
//! ```
//!
//! The messages are plain MessagePack maps, so they travel on any dialect: as the items
//! of a client stream (`sumChunked` does that), as notifications, or as the params of
//! ordinary calls. Each chunk's `data` is an array of the items; how they are split is
//! the sender's choice (`chunk_size` in [`ChunkMessage::sequence`]).
//!
//! # What is checked
//!
//! | check | error | code |
//! |---|---|---|
//! | a chunk or end before the start, a second start, anything after the end | [`ChunkError::NotStarted`], [`ChunkError::AlreadyStarted`], [`ChunkError::Finished`] | INVALID_ARGUMENT |
//! | a chunk index above the next one expected | [`ChunkError::Gap`] | INVALID_ARGUMENT |
//! | a chunk index already received | [`ChunkError::Duplicate`] | INVALID_ARGUMENT |
//! | an index at or past `total_chunks` | [`ChunkError::IndexOutOfRange`] | INVALID_ARGUMENT |
//! | more items than `total_items`, or fewer at the end | [`ChunkError::ItemCountMismatch`] | INVALID_ARGUMENT |
//! | fewer chunks than `total_chunks` at the end | [`ChunkError::ChunkCountMismatch`] | INVALID_ARGUMENT |
//! | a declared `total_items` or `total_chunks` over the [`ChunkLimits`] | [`ChunkError::TooManyItems`], [`ChunkError::TooManyChunks`] | RESOURCE_EXHAUSTED |
//! | more encoded bytes than [`ChunkLimits::max_bytes`] | [`ChunkError::TooManyBytes`] | RESOURCE_EXHAUSTED |
//! | a message that is none of the three | [`ChunkError::Malformed`] | INVALID_ARGUMENT |
//!
//! The declared totals are checked against the limits at the start, before anything is
//! stored, and nothing is allocated from a declared count: the items are kept as they
//! arrive, so memory follows what was received (and the byte cap bounds that).
//!
//! # Example
//!
//! ```
//! use msgwire_services::chunked::{ChunkLimits, ChunkMessage, Reassembler};
//!
//! let items: Vec<u32> = (0..10).collect();
//! let mut reassembler = Reassembler::new(ChunkLimits::default());
//! let mut whole = None;
//! for message in ChunkMessage::sequence(&items, 4) {
//!     let bytes = rmp_serde::to_vec_named(&message).map_err(|e| e.to_string())?;
//!     whole = reassembler.push(message, bytes.len()).map_err(|e| e.to_string())?;
//! }
//! assert_eq!(whole, Some(items));
//! # Ok::<(), String>(())
//! ```

use msgwire_wire::{Code, RawValue, RpcError};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// One message of a chunked sequence; `type` on the wire names the variant.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ChunkMessage<T> {
    /// `{"type": "chunked_start", "total_items": n, "total_chunks": m}`
    ChunkedStart {
        /// How many items the whole array has.
        total_items: u64,
        /// How many `chunk` messages follow.
        total_chunks: u64,
    },
    /// `{"type": "chunk", "index": i, "data": [..]}`
    Chunk {
        /// 0, 1, 2, …: the chunk's place in the sequence.
        index: u64,
        /// This chunk's items.
        data: Vec<T>,
    },
    /// `{"type": "chunked_end"}`
    ChunkedEnd,
}

#[derive(Deserialize)]
struct StartFields {
    total_items: u64,
    total_chunks: u64,
}

#[derive(Deserialize)]
#[serde(bound = "T: DeserializeOwned")]
struct ChunkFields<T> {
    index: u64,
    data: Vec<T>,
}

impl<T: DeserializeOwned> ChunkMessage<T> {
    /// Reads a message from MessagePack bytes: the `type` first, then the fields of
    /// that variant (straight into `T`, with no tree built on the way).
    pub fn from_raw(message: &RawValue) -> Result<Self, ChunkError> {
        let kind = message
            .get("type")
            .ok_or_else(|| ChunkError::Malformed("a map with a \"type\"".into()))?;
        let kind: String = kind
            .deserialize()
            .map_err(|_| ChunkError::Malformed("\"type\" as a string".into()))?;
        let fields = |e: rmp_serde::decode::Error| ChunkError::Malformed(format!("{kind}: {e}"));
        match kind.as_str() {
            "chunked_start" => {
                let start: StartFields = message.deserialize().map_err(fields)?;
                Ok(ChunkMessage::ChunkedStart {
                    total_items: start.total_items,
                    total_chunks: start.total_chunks,
                })
            }
            "chunk" => {
                let chunk: ChunkFields<T> = message.deserialize().map_err(fields)?;
                Ok(ChunkMessage::Chunk {
                    index: chunk.index,
                    data: chunk.data,
                })
            }
            "chunked_end" => Ok(ChunkMessage::ChunkedEnd),
            _ => Err(ChunkError::Malformed(
                "\"type\" chunked_start, chunk or chunked_end".into(),
            )),
        }
    }
}

impl<T> ChunkMessage<T> {
    /// `chunked_start`.
    pub fn start(total_items: u64, total_chunks: u64) -> Self {
        ChunkMessage::ChunkedStart {
            total_items,
            total_chunks,
        }
    }

    /// `chunk` number `index`, with `data`.
    pub fn chunk(index: u64, data: impl Into<Vec<T>>) -> Self {
        ChunkMessage::Chunk {
            index,
            data: data.into(),
        }
    }
}

impl<T: Clone> ChunkMessage<T> {
    /// The whole sequence for `items` in chunks of `chunk_size` (at least 1): start,
    /// chunks, end.
    pub fn sequence(items: &[T], chunk_size: usize) -> Vec<ChunkMessage<T>> {
        let chunks = items.chunks(chunk_size.max(1));
        let mut messages = vec![ChunkMessage::ChunkedStart {
            total_items: items.len() as u64,
            total_chunks: chunks.len() as u64,
        }];
        messages.extend(chunks.enumerate().map(|(index, data)| ChunkMessage::Chunk {
            index: index as u64,
            data: data.to_vec(),
        }));
        messages.push(ChunkMessage::ChunkedEnd);
        messages
    }
}

/// How much one reassembly may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkLimits {
    /// The most items a sequence may declare.
    pub max_items: u64,
    /// The most chunks a sequence may declare.
    pub max_chunks: u64,
    /// The most encoded bytes of chunk messages a sequence may bring.
    pub max_bytes: u64,
}

impl Default for ChunkLimits {
    /// A million items, 65,536 chunks, 64 MiB.
    fn default() -> Self {
        Self {
            max_items: 1_000_000,
            max_chunks: 65_536,
            max_bytes: 64 << 20,
        }
    }
}

/// Why a chunked sequence was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChunkError {
    /// A message that is not one of the three.
    #[error("not a chunked message: expected {0}")]
    Malformed(String),
    /// A `chunk` or `chunked_end` before `chunked_start`.
    #[error("{0} before chunked_start")]
    NotStarted(&'static str),
    /// A second `chunked_start`.
    #[error("chunked_start when a sequence is already under way")]
    AlreadyStarted,
    /// A message after `chunked_end`.
    #[error("{0} after chunked_end")]
    Finished(&'static str),
    /// A chunk index past the next one expected: chunks are missing.
    #[error("chunk {got} arrived when chunk {expected} was expected: a gap")]
    Gap {
        /// The next index expected.
        expected: u64,
        /// The index that came.
        got: u64,
    },
    /// A chunk index that was already received.
    #[error("chunk {index} arrived twice")]
    Duplicate {
        /// The repeated index.
        index: u64,
    },
    /// A chunk index at or past the declared number of chunks.
    #[error("chunk {index} of a sequence of {total_chunks} chunks")]
    IndexOutOfRange {
        /// The index that came.
        index: u64,
        /// The declared number of chunks.
        total_chunks: u64,
    },
    /// The items received do not add up to `total_items`.
    #[error("{received} items where {declared} were declared")]
    ItemCountMismatch {
        /// `total_items`.
        declared: u64,
        /// What arrived (at least this many, when too many arrived).
        received: u64,
    },
    /// `chunked_end` before every declared chunk arrived.
    #[error("{received} chunks where {declared} were declared")]
    ChunkCountMismatch {
        /// `total_chunks`.
        declared: u64,
        /// What arrived.
        received: u64,
    },
    /// `total_items` over [`ChunkLimits::max_items`].
    #[error("{declared} items declared, more than the limit of {limit}")]
    TooManyItems {
        /// `total_items`.
        declared: u64,
        /// The limit.
        limit: u64,
    },
    /// `total_chunks` over [`ChunkLimits::max_chunks`].
    #[error("{declared} chunks declared, more than the limit of {limit}")]
    TooManyChunks {
        /// `total_chunks`.
        declared: u64,
        /// The limit.
        limit: u64,
    },
    /// The chunks' bytes over [`ChunkLimits::max_bytes`].
    #[error("more than {limit} bytes of chunks")]
    TooManyBytes {
        /// The limit.
        limit: u64,
    },
}

impl ChunkError {
    /// RESOURCE_EXHAUSTED for a limit, INVALID_ARGUMENT for the rest.
    pub fn code(&self) -> Code {
        match self {
            ChunkError::TooManyItems { .. }
            | ChunkError::TooManyChunks { .. }
            | ChunkError::TooManyBytes { .. } => Code::ResourceExhausted,
            _ => Code::InvalidArgument,
        }
    }
}

impl From<ChunkError> for RpcError {
    fn from(error: ChunkError) -> Self {
        RpcError::new(error.code(), error.to_string())
    }
}

#[derive(Debug)]
enum Stage {
    Waiting,
    Receiving {
        total_items: u64,
        total_chunks: u64,
        next_index: u64,
    },
    Done,
}

/// Puts a chunked sequence back together, checking it message by message (see the
/// [module docs](self)). Once it has failed, start a new one: the sequence is lost.
#[derive(Debug)]
pub struct Reassembler<T> {
    limits: ChunkLimits,
    stage: Stage,
    items: Vec<T>,
    bytes: u64,
}

impl<T> Reassembler<T> {
    /// A reassembler waiting for `chunked_start`.
    pub fn new(limits: ChunkLimits) -> Self {
        Self {
            limits,
            stage: Stage::Waiting,
            items: Vec::new(),
            bytes: 0,
        }
    }

    /// Takes the next message, `encoded_len` bytes as it arrived: `Some(items)` once
    /// `chunked_end` completes the array, `None` while more is to come.
    pub fn push(
        &mut self,
        message: ChunkMessage<T>,
        encoded_len: usize,
    ) -> Result<Option<Vec<T>>, ChunkError> {
        self.count_bytes(encoded_len)?;
        match message {
            ChunkMessage::ChunkedStart {
                total_items,
                total_chunks,
            } => self.start(total_items, total_chunks).map(|()| None),
            ChunkMessage::Chunk { index, data } => self.chunk(index, data).map(|()| None),
            ChunkMessage::ChunkedEnd => self.end().map(Some),
        }
    }

    /// Whether `chunked_end` has completed the array.
    pub fn is_done(&self) -> bool {
        matches!(self.stage, Stage::Done)
    }

    fn count_bytes(&mut self, encoded_len: usize) -> Result<(), ChunkError> {
        let limit = self.limits.max_bytes;
        self.bytes = self.bytes.saturating_add(encoded_len as u64);
        if self.bytes > limit {
            return Err(ChunkError::TooManyBytes { limit });
        }
        Ok(())
    }

    fn start(&mut self, total_items: u64, total_chunks: u64) -> Result<(), ChunkError> {
        match self.stage {
            Stage::Waiting => {}
            Stage::Receiving { .. } => return Err(ChunkError::AlreadyStarted),
            Stage::Done => return Err(ChunkError::Finished("chunked_start")),
        }
        let limits = self.limits;
        if total_items > limits.max_items {
            return Err(ChunkError::TooManyItems {
                declared: total_items,
                limit: limits.max_items,
            });
        }
        if total_chunks > limits.max_chunks {
            return Err(ChunkError::TooManyChunks {
                declared: total_chunks,
                limit: limits.max_chunks,
            });
        }
        self.stage = Stage::Receiving {
            total_items,
            total_chunks,
            next_index: 0,
        };
        Ok(())
    }

    fn chunk(&mut self, index: u64, data: Vec<T>) -> Result<(), ChunkError> {
        let (total_items, next_index) = match &mut self.stage {
            Stage::Waiting => return Err(ChunkError::NotStarted("a chunk")),
            Stage::Done => return Err(ChunkError::Finished("a chunk")),
            Stage::Receiving {
                total_items,
                total_chunks,
                next_index,
            } => {
                if index >= *total_chunks {
                    return Err(ChunkError::IndexOutOfRange {
                        index,
                        total_chunks: *total_chunks,
                    });
                }
                if index < *next_index {
                    return Err(ChunkError::Duplicate { index });
                }
                if index > *next_index {
                    return Err(ChunkError::Gap {
                        expected: *next_index,
                        got: index,
                    });
                }
                (*total_items, next_index)
            }
        };
        let received = self.items.len() as u64 + data.len() as u64;
        if received > total_items {
            return Err(ChunkError::ItemCountMismatch {
                declared: total_items,
                received,
            });
        }
        *next_index += 1;
        self.items.extend(data);
        Ok(())
    }

    fn end(&mut self) -> Result<Vec<T>, ChunkError> {
        match self.stage {
            Stage::Waiting => Err(ChunkError::NotStarted("chunked_end")),
            Stage::Done => Err(ChunkError::Finished("chunked_end")),
            Stage::Receiving {
                total_items,
                total_chunks,
                next_index,
            } => {
                if next_index != total_chunks {
                    return Err(ChunkError::ChunkCountMismatch {
                        declared: total_chunks,
                        received: next_index,
                    });
                }
                let received = self.items.len() as u64;
                if received != total_items {
                    return Err(ChunkError::ItemCountMismatch {
                        declared: total_items,
                        received,
                    });
                }
                self.stage = Stage::Done;
                Ok(std::mem::take(&mut self.items))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Msg = ChunkMessage<i64>;

    fn start(total_items: u64, total_chunks: u64) -> Msg {
        Msg::start(total_items, total_chunks)
    }

    fn chunk(index: u64, data: &[i64]) -> Msg {
        Msg::chunk(index, data)
    }

    /// Feeds `messages`; the first error, or what the end gave.
    fn feed(limits: ChunkLimits, messages: Vec<Msg>) -> Result<Option<Vec<i64>>, ChunkError> {
        let mut r = Reassembler::new(limits);
        let mut out = None;
        for m in messages {
            out = r.push(m, 10)?;
        }
        Ok(out)
    }

    fn ok(messages: Vec<Msg>) -> Result<Option<Vec<i64>>, ChunkError> {
        feed(ChunkLimits::default(), messages)
    }

    #[test]
    fn a_good_sequence_comes_back_whole() {
        let items: Vec<i64> = (1..=10).collect();
        for size in [1, 3, 10, 100] {
            assert_eq!(
                ok(ChunkMessage::sequence(&items, size)),
                Ok(Some(items.clone()))
            );
        }
        assert_eq!(ok(ChunkMessage::sequence(&[], 4)), Ok(Some(vec![])));
        // Empty chunks are fine as long as the counts add up.
        assert_eq!(
            ok(vec![
                start(2, 3),
                chunk(0, &[]),
                chunk(1, &[1, 2]),
                chunk(2, &[]),
                Msg::ChunkedEnd
            ]),
            Ok(Some(vec![1, 2]))
        );
    }

    #[test]
    fn order_gaps_and_duplicates() {
        assert_eq!(
            ok(vec![start(3, 3), chunk(0, &[1]), chunk(2, &[3])]),
            Err(ChunkError::Gap {
                expected: 1,
                got: 2
            })
        );
        assert_eq!(
            ok(vec![
                start(3, 3),
                chunk(0, &[1]),
                chunk(1, &[2]),
                chunk(1, &[2])
            ]),
            Err(ChunkError::Duplicate { index: 1 })
        );
        assert_eq!(
            ok(vec![
                start(3, 2),
                chunk(0, &[1]),
                chunk(1, &[2]),
                chunk(2, &[3])
            ]),
            Err(ChunkError::IndexOutOfRange {
                index: 2,
                total_chunks: 2
            })
        );
        assert_eq!(
            ok(vec![chunk(0, &[1])]),
            Err(ChunkError::NotStarted("a chunk"))
        );
        assert_eq!(
            ok(vec![Msg::ChunkedEnd]),
            Err(ChunkError::NotStarted("chunked_end"))
        );
        assert_eq!(
            ok(vec![start(1, 1), start(1, 1)]),
            Err(ChunkError::AlreadyStarted)
        );
        let done = vec![start(0, 0), Msg::ChunkedEnd, chunk(0, &[1])];
        assert_eq!(ok(done), Err(ChunkError::Finished("a chunk")));
    }

    #[test]
    fn counts_must_add_up() {
        // More items than declared: refused at the chunk that overflows.
        assert_eq!(
            ok(vec![start(2, 2), chunk(0, &[1, 2]), chunk(1, &[3])]),
            Err(ChunkError::ItemCountMismatch {
                declared: 2,
                received: 3
            })
        );
        // Fewer items than declared.
        assert_eq!(
            ok(vec![start(3, 1), chunk(0, &[1, 2]), Msg::ChunkedEnd]),
            Err(ChunkError::ItemCountMismatch {
                declared: 3,
                received: 2
            })
        );
        // Fewer chunks than declared.
        assert_eq!(
            ok(vec![start(2, 2), chunk(0, &[1, 2]), Msg::ChunkedEnd]),
            Err(ChunkError::ChunkCountMismatch {
                declared: 2,
                received: 1
            })
        );
    }

    #[test]
    fn limits_are_checked_before_anything_is_kept() {
        let limits = ChunkLimits {
            max_items: 4,
            max_chunks: 2,
            max_bytes: 25,
        };
        // A declared count far past what anyone could allocate costs nothing.
        assert_eq!(
            feed(limits, vec![start(u64::MAX, 1)]),
            Err(ChunkError::TooManyItems {
                declared: u64::MAX,
                limit: 4
            })
        );
        assert_eq!(
            feed(limits, vec![start(4, 3)]),
            Err(ChunkError::TooManyChunks {
                declared: 3,
                limit: 2
            })
        );
        // Three messages of 10 bytes: the third is over 25.
        assert_eq!(
            feed(
                limits,
                vec![start(4, 2), chunk(0, &[1, 2]), chunk(1, &[3, 4])]
            ),
            Err(ChunkError::TooManyBytes { limit: 25 })
        );
        let code = |e: ChunkError| RpcError::from(e).code;
        assert_eq!(
            code(ChunkError::TooManyBytes { limit: 1 }),
            Code::ResourceExhausted
        );
        assert_eq!(
            code(ChunkError::Duplicate { index: 1 }),
            Code::InvalidArgument
        );
    }

    #[test]
    fn wire_shapes_and_from_raw() {
        let value = |m: &Msg| {
            let raw = RawValue::serialize(m).unwrap();
            (
                raw.to_value().unwrap(),
                ChunkMessage::<i64>::from_raw(&raw).unwrap(),
            )
        };
        let m = start(5, 3);
        let (v, back) = value(&m);
        assert_eq!(
            v,
            msgwire_wire::Value::Map(vec![
                ("type".into(), "chunked_start".into()),
                ("total_items".into(), 5.into()),
                ("total_chunks".into(), 3.into()),
            ])
        );
        assert_eq!(back, m);
        let m = chunk(1, &[7, 8]);
        let (v, back) = value(&m);
        assert_eq!(
            v,
            msgwire_wire::Value::Map(vec![
                ("type".into(), "chunk".into()),
                ("index".into(), 1.into()),
                (
                    "data".into(),
                    msgwire_wire::Value::Array(vec![7.into(), 8.into()])
                ),
            ])
        );
        assert_eq!(back, m);
        let (v, back) = value(&Msg::ChunkedEnd);
        assert_eq!(
            v,
            msgwire_wire::Value::Map(vec![("type".into(), "chunked_end".into())])
        );
        assert_eq!(back, Msg::ChunkedEnd);

        let bad =
            |v: msgwire_wire::Value| ChunkMessage::<i64>::from_raw(&RawValue::from(v)).unwrap_err();
        assert!(matches!(bad(7.into()), ChunkError::Malformed(_)));
        let unknown = msgwire_wire::Value::Map(vec![("type".into(), "chunk_start".into())]);
        assert!(matches!(bad(unknown), ChunkError::Malformed(_)));
        let no_index = msgwire_wire::Value::Map(vec![
            ("type".into(), "chunk".into()),
            ("data".into(), msgwire_wire::Value::Array(vec![])),
        ]);
        assert!(matches!(bad(no_index), ChunkError::Malformed(m) if m.contains("index")));
    }
}
