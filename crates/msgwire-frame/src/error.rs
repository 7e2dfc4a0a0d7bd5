//! The crate's one error type.
//!
//! Variants shared by every framing sit at the top level; what only one framing can
//! report lives in that framing's module as a sub-enum and is wrapped here.

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything a framing can reject.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A frame's declared (or measured) length is over the configured limit. Raised on the
    /// header, before any buffer of that size is allocated. Also raised, with `length`
    /// at most `max`, when the limit is so high (`usize::MAX`) that a length within it
    /// plus its header cannot be represented in a `usize` on this machine.
    #[error("{}", too_long_message(*.length, *.max))]
    TooLong {
        /// The length the peer declared or the bytes seen so far.
        length: u64,
        /// The configured limit.
        max: u64,
    },
    /// An over-long frame was skipped (discard-and-resync mode). Not fatal: decoding goes
    /// on with the next frame.
    #[error("discarded a frame of {length} bytes over the limit of {max} bytes")]
    Discarded {
        /// The length of the discarded frame, as far as known.
        length: u64,
        /// The configured limit.
        max: u64,
    },
    /// The input ended inside a frame.
    #[error("input ended inside a frame ({buffered} bytes buffered)")]
    Truncated {
        /// Bytes of the unfinished frame that had arrived.
        buffered: usize,
    },
    /// The decoder already failed with a fatal error and cannot go on.
    #[error("decoder is unusable after an earlier fatal error")]
    Poisoned,
    /// Length-field framing.
    #[error(transparent)]
    Length(#[from] crate::length::LengthError),
    /// Varint-prefixed framing.
    #[error(transparent)]
    Varint(#[from] crate::varint::VarintError),
    /// Delimiter framing.
    #[error(transparent)]
    Delimiter(#[from] crate::delimiter::DelimiterError),
    /// Self-delimited MessagePack.
    #[error(transparent)]
    Msgpack(#[from] crate::msgpack::MsgpackError),
    /// WebSocket.
    #[error(transparent)]
    WebSocket(#[from] crate::websocket::WebSocketError),
    /// HTTP/1.1 chunked transfer coding.
    #[error(transparent)]
    Chunked(#[from] crate::chunked::ChunkedError),
    /// gRPC message prefix.
    #[error(transparent)]
    Grpc(#[from] crate::grpc::GrpcError),
    /// An encoder was handed an item it cannot represent.
    #[error("cannot encode: {0}")]
    Encode(&'static str),
    /// I/O error from an adapter (the sans-IO core never raises it).
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl Error {
    /// Whether the stream is unusable after this error. Only [`Error::Discarded`] is not:
    /// the framing skipped the bad frame and the next call decodes the frame after it.
    pub fn is_fatal(&self) -> bool {
        !matches!(self, Error::Discarded { .. })
    }
}

fn too_long_message(length: u64, max: u64) -> String {
    if length > max {
        format!("frame of {length} bytes exceeds the limit of {max} bytes")
    } else {
        format!("frame of {length} bytes and its header is more than this machine can address")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn too_long_says_whether_the_limit_or_the_machine_refused() {
        let over = Error::TooLong { length: 5, max: 4 };
        assert_eq!(
            over.to_string(),
            "frame of 5 bytes exceeds the limit of 4 bytes"
        );
        let unaddressable = Error::TooLong {
            length: u64::MAX,
            max: u64::MAX,
        };
        assert!(unaddressable
            .to_string()
            .contains("more than this machine can address"));
    }
}
