//! gRPC message prefix: decoding any input whole, byte by byte and in pieces over every
//! buffer strategy must agree, and never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use msgwire_frame::grpc::{GrpcMessage, GrpcPrefixed};

include!("common.rs");

impl<P: AsRefBytes> AsRefBytes for GrpcMessage<P> {
    fn bytes_of(&self) -> Vec<u8> {
        let mut out = vec![u8::from(self.compressed)];
        out.extend(self.payload.bytes_of());
        out
    }
}

fuzz_target!(|data: &[u8]| {
    let [max, piece, data @ ..] = data else {
        return;
    };
    let make = || {
        GrpcPrefixed::builder()
            .max_message_length(usize::from(*max) * 8)
            .build()
    };
    check_all(make, data, usize::from(*piece) + 1);
});
