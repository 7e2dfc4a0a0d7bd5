//! WebSocket (RFC 6455) in both roles: decoding any input whole, byte by byte and in
//! pieces over every buffer strategy must agree, and never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use msgwire_frame::websocket::{Message, Role, WebSocket};

include!("common.rs");

impl AsRefBytes for Message {
    fn bytes_of(&self) -> Vec<u8> {
        let mut out = self.opcode.name().as_bytes().to_vec();
        out.push(b':');
        out.extend_from_slice(&self.payload);
        out
    }
}

fuzz_target!(|data: &[u8]| {
    let [opts, max, piece, data @ ..] = data else {
        return;
    };
    let role = if opts & 1 == 0 {
        Role::Server
    } else {
        Role::Client
    };
    let make = || {
        WebSocket::builder(role)
            .max_frame_length(usize::from(*max) * 4)
            .max_message_length(usize::from(*max) * usize::from(opts >> 4).max(1))
            .build()
    };
    check_all(make, data, usize::from(*piece) + 1);
});
