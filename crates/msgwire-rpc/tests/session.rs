//! Two sessions talking to each other through the real codec, on a fake clock: no
//! sockets, no tasks, no sleeps. The bytes between them are cut into pieces of every
//! size, as TCP may deliver them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use msgwire_rpc::session::{Event, IncomingCall, Session};
use msgwire_rpc::{CallError, Code, ConnectionConfig, Dialect, RawValue, RpcError, Value};
use msgwire_wire::WireCodec;

/// One end: its session, its codec, and the bytes it has received but not decoded.
struct End {
    session: Session,
    codec: WireCodec,
    inbox: BytesMut,
    /// Events this end has seen, in order.
    seen: Vec<Event>,
}

impl End {
    fn new(dialect: Dialect, config: &ConnectionConfig, now: Instant) -> Self {
        Self {
            session: Session::new(dialect, config, now),
            codec: config.codec(dialect),
            inbox: BytesMut::new(),
            seen: Vec::new(),
        }
    }

    /// Everything the session wants written, encoded.
    fn outgoing(&mut self) -> Vec<u8> {
        let mut out = BytesMut::new();
        while let Some(message) = self.session.poll_transmit() {
            self.codec.encode(&message, &mut out).unwrap();
        }
        out.to_vec()
    }

    /// Decodes and handles whatever whole messages are in the inbox.
    fn take_in(&mut self, now: Instant) {
        loop {
            match self.codec.decode(&mut self.inbox) {
                Ok(Some(message)) => self.session.handle(now, Ok(message)),
                Ok(None) => break,
                Err(e) => {
                    let fatal = e.is_fatal();
                    self.session.handle(now, Err(e));
                    if fatal {
                        break;
                    }
                }
            }
        }
        while let Some(event) = self.session.poll_event() {
            self.seen.push(event);
        }
    }

    /// The calls the session asked to run, taken out of `seen`.
    fn requests(&mut self) -> Vec<(IncomingCall, String, RawValue)> {
        let mut out = Vec::new();
        self.seen.retain(|event| match event {
            Event::Request {
                call,
                method,
                params,
            } => {
                out.push((call.clone(), method.clone(), params.clone()));
                false
            }
            _ => true,
        });
        out
    }

    /// The answers to this end's calls, taken out of `seen`.
    fn answers(&mut self) -> HashMap<u32, Result<RawValue, CallError>> {
        let mut out = HashMap::new();
        let seen = std::mem::take(&mut self.seen);
        for event in seen {
            match event {
                Event::Answer { id, result } => {
                    out.insert(id, result);
                }
                other => self.seen.push(other),
            }
        }
        out
    }
}

/// A client end and a server end, the bytes between them delivered in pieces of
/// `piece` bytes (0: all at once).
struct Pair {
    client: End,
    server: End,
    now: Instant,
    piece: usize,
}

impl Pair {
    fn new(dialect: Dialect, piece: usize) -> Self {
        let now = Instant::now();
        Self {
            client: End::new(dialect, &ConnectionConfig::client_default(), now),
            server: End::new(dialect, &ConnectionConfig::server_default(), now),
            now,
            piece,
        }
    }

    /// Moves bytes both ways until neither end has anything more to say.
    fn pump(&mut self) {
        loop {
            let to_server = self.client.outgoing();
            let to_client = self.server.outgoing();
            if to_server.is_empty() && to_client.is_empty() {
                return;
            }
            for (bytes, end) in [(to_server, &mut self.server), (to_client, &mut self.client)] {
                let piece = if self.piece == 0 {
                    bytes.len().max(1)
                } else {
                    self.piece
                };
                for chunk in bytes.chunks(piece) {
                    end.inbox.extend_from_slice(chunk);
                    end.session.bytes_received(self.now);
                    end.take_in(self.now);
                }
            }
        }
    }

    /// Lets `by` pass on both ends' clocks.
    fn advance(&mut self, by: Duration) {
        self.now += by;
        for end in [&mut self.client, &mut self.server] {
            end.session.handle_timeout(self.now);
            end.take_in(self.now);
        }
    }
}

fn raw(v: impl Into<Value>) -> RawValue {
    RawValue::from(v.into())
}

#[test]
fn pipelined_calls_answered_in_reverse_reach_their_callers_in_every_dialect_and_cut() {
    for dialect in Dialect::ALL {
        for piece in [0, 1, 7] {
            let mut pair = Pair::new(dialect, piece);
            let ids: Vec<(u32, i64)> = (0..50i64)
                .map(|n| {
                    let params = raw(Value::Array(vec![n.into()]));
                    (
                        pair.client
                            .session
                            .call("double".into(), params, None)
                            .unwrap(),
                        n,
                    )
                })
                .collect();
            pair.pump();
            let requests = pair.server.requests();
            assert_eq!(requests.len(), 50, "{dialect} piece {piece}");
            for (call, method, params) in requests.into_iter().rev() {
                assert_eq!(method, "double");
                let (n,): (i64,) = params.deserialize().unwrap();
                pair.server.session.respond(pair.now, &call, Ok(raw(n * 2)));
            }
            pair.pump();
            let answers = pair.client.answers();
            for (id, n) in ids {
                let answer = answers[&id].as_ref().unwrap();
                assert_eq!(
                    answer.deserialize::<i64>().unwrap(),
                    n * 2,
                    "{dialect} piece {piece}"
                );
            }
        }
    }
}

#[test]
fn a_deadline_on_the_fake_clock_fails_the_call_and_cancels_the_handler() {
    for dialect in Dialect::ALL {
        let mut pair = Pair::new(dialect, 3);
        let deadline = pair.now + Duration::from_secs(2);
        let id = pair
            .client
            .session
            .call("slow".into(), raw(Value::Array(vec![])), Some(deadline))
            .unwrap();
        pair.pump();
        let (call, _, _) = pair.server.requests().remove(0);
        pair.advance(Duration::from_secs(1));
        assert!(pair.client.answers().is_empty(), "{dialect}: not yet");
        pair.advance(Duration::from_secs(1));
        assert!(matches!(
            pair.client.answers().remove(&id),
            Some(Err(CallError::DeadlineExceeded))
        ));
        // The cancel reaches the server, which stops the handler and answers nothing.
        pair.pump();
        assert!(
            pair.server
                .seen
                .iter()
                .any(|e| matches!(e, Event::Cancel { call: c } if *c == call)),
            "{dialect}: {:?}",
            pair.server.seen
        );
        pair.server.session.respond(pair.now, &call, Ok(raw(1)));
        assert!(pair.server.outgoing().is_empty(), "{dialect}");
    }
}

#[test]
fn errors_keep_their_code_and_message_across() {
    for dialect in Dialect::ALL {
        let mut pair = Pair::new(dialect, 0);
        let id = pair
            .client
            .session
            .call("getUser".into(), raw(Value::Array(vec![99.into()])), None)
            .unwrap();
        pair.pump();
        let (call, _, _) = pair.server.requests().remove(0);
        pair.server.session.respond(
            pair.now,
            &call,
            Err(RpcError::not_found("user 99 not found")),
        );
        pair.pump();
        match pair.client.answers().remove(&id) {
            Some(Err(CallError::Rpc(e))) => {
                assert_eq!(
                    (e.code, e.message.as_str()),
                    (Code::NotFound, "user 99 not found")
                )
            }
            other => panic!("{dialect}: {other:?}"),
        }
    }
}

#[test]
fn notifications_arrive_in_order_and_are_never_answered() {
    let mut pair = Pair::new(Dialect::MsgpackRpc, 2);
    for n in 0..20i64 {
        pair.client
            .session
            .notify("log".into(), raw(Value::Array(vec![n.into()])))
            .unwrap();
    }
    pair.pump();
    let got: Vec<i64> = pair
        .server
        .seen
        .iter()
        .filter_map(|e| match e {
            Event::Notification { params, .. } => params.deserialize::<(i64,)>().ok().map(|p| p.0),
            _ => None,
        })
        .collect();
    assert_eq!(got, (0..20).collect::<Vec<_>>());
    assert!(pair.server.outgoing().is_empty());
}

#[test]
fn a_server_that_drains_answers_what_it_runs_and_refuses_the_rest() {
    let mut pair = Pair::new(Dialect::FramedMap, 0);
    let first = pair
        .client
        .session
        .call("slow".into(), RawValue::empty_array(), None)
        .unwrap();
    pair.pump();
    let (call, _, _) = pair.server.requests().remove(0);
    pair.server.session.shutdown();
    let second = pair
        .client
        .session
        .call("m".into(), RawValue::empty_array(), None)
        .unwrap();
    pair.pump();
    pair.server
        .session
        .respond(pair.now, &call, Ok(raw("done")));
    assert!(
        pair.server.session.is_closed(),
        "closed once its last call is answered"
    );
    pair.pump();
    let mut answers = pair.client.answers();
    assert_eq!(answers.remove(&first).unwrap().unwrap(), raw("done"));
    match answers.remove(&second) {
        Some(Err(CallError::Rpc(e))) => assert_eq!(e.code, Code::Unavailable),
        other => panic!("{other:?}"),
    }
}

#[test]
fn idle_ends_close_and_busy_ones_do_not() {
    let mut pair = Pair::new(Dialect::MsgpackRpc, 0);
    let id = pair
        .client
        .session
        .call("slow".into(), RawValue::empty_array(), None)
        .unwrap();
    pair.pump();
    let (call, _, _) = pair.server.requests().remove(0);
    // The server's idle timeout is 300 s; a call in flight keeps it open past that.
    pair.advance(Duration::from_secs(400));
    assert!(!pair.server.session.is_closed());
    pair.server.session.respond(pair.now, &call, Ok(raw(1)));
    pair.pump();
    assert!(pair.client.answers().contains_key(&id));
    pair.advance(Duration::from_secs(299));
    assert!(!pair.server.session.is_closed());
    pair.advance(Duration::from_secs(1));
    assert!(pair.server.session.is_closed());
    // A client has no idle timeout by default.
    assert!(!pair.client.session.is_closed());
}
