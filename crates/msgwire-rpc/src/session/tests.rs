//! The session's rules, each with explicit instants: no sockets, no sleeps.

use std::time::{Duration, Instant};

use msgwire_wire::{
    CallId, Code, Dialect, Malformed, MalformedReason, Message, MessageKind, RawValue, RpcError,
    Value, WireError,
};

use super::{Event, IncomingCall, Session};
use crate::config::Settings;
use crate::error::{CallError, CloseReason, ProtocolError};

fn session_with(dialect: Dialect, now: Instant, tune: impl FnOnce(&mut Settings)) -> Session {
    let mut settings = Settings::with_idle_timeout(None);
    tune(&mut settings);
    Session::new(dialect, &settings.check().unwrap(), now)
}

fn session(now: Instant) -> Session {
    session_with(Dialect::MsgpackRpc, now, |_| {})
}

fn raw(v: impl Into<Value>) -> RawValue {
    RawValue::from(v.into())
}

fn request(id: impl Into<CallId>, method: &str) -> Result<Message, WireError> {
    Ok(Message::Request {
        id: id.into(),
        method: method.into(),
        params: raw(Value::Array(vec![])),
    })
}

fn notification(method: &str) -> Result<Message, WireError> {
    Ok(Message::Notification {
        method: method.into(),
        params: raw(Value::Array(vec![])),
    })
}

fn events(s: &mut Session) -> Vec<Event> {
    std::iter::from_fn(|| s.poll_event()).collect()
}

fn sent(s: &mut Session) -> Vec<Message> {
    std::iter::from_fn(|| s.poll_transmit()).collect()
}

/// The calls the session asks to start.
fn started(s: &mut Session) -> Vec<IncomingCall> {
    events(s)
        .into_iter()
        .filter_map(|e| match e {
            Event::Request { call, .. } => Some(call),
            _ => None,
        })
        .collect()
}

/// The error code of a response to `id` among `messages`.
fn error_for(messages: &[Message], id: &CallId) -> Option<Code> {
    messages.iter().find_map(|m| match m {
        Message::Response {
            id: i,
            result: Err(e),
        } if i == id => Some(e.code),
        _ => None,
    })
}

#[test]
fn a_call_is_sent_and_answered_by_id() {
    let t0 = Instant::now();
    let mut s = session(t0);
    let a = s
        .call(
            "add".into(),
            raw(Value::Array(vec![1.into(), 2.into()])),
            None,
        )
        .unwrap();
    let b = s
        .call("add".into(), raw(Value::Array(vec![])), None)
        .unwrap();
    assert_ne!(a, b);
    let out = sent(&mut s);
    assert!(matches!(&out[0], Message::Request { id, method, .. } if *id == a && method == "add"));
    assert_eq!(s.waiting(), 2);
    // Answers in any order, matched by id.
    s.handle(
        t0,
        Ok(Message::Response {
            id: b.into(),
            result: Ok(raw(4)),
        }),
    );
    s.handle(
        t0,
        Ok(Message::Response {
            id: a.into(),
            result: Ok(raw(3)),
        }),
    );
    let answers: Vec<(u32, RawValue)> = events(&mut s)
        .into_iter()
        .map(|e| match e {
            Event::Answer { id, result: Ok(v) } => (id, v),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(answers, [(b, raw(4)), (a, raw(3))]);
    assert_eq!(s.waiting(), 0);
    // A response nobody waits for is ignored.
    s.handle(
        t0,
        Ok(Message::Response {
            id: a.into(),
            result: Ok(raw(3)),
        }),
    );
    s.handle(
        t0,
        Ok(Message::Response {
            id: CallId::string("x").unwrap(),
            result: Ok(raw(3)),
        }),
    );
    assert!(events(&mut s).is_empty());
}

#[test]
fn a_passed_deadline_fails_the_call_and_cancels_it_at_the_peer() {
    let t0 = Instant::now();
    let mut s = session(t0);
    let id = s
        .call(
            "slow".into(),
            raw(Value::Array(vec![])),
            Some(t0 + Duration::from_secs(2)),
        )
        .unwrap();
    let later = s
        .call(
            "slower".into(),
            raw(Value::Array(vec![])),
            Some(t0 + Duration::from_secs(5)),
        )
        .unwrap();
    sent(&mut s);
    assert_eq!(s.poll_timeout(), Some(t0 + Duration::from_secs(2)));
    s.handle_timeout(t0 + Duration::from_secs(1));
    assert!(events(&mut s).is_empty());
    s.handle_timeout(t0 + Duration::from_secs(2));
    assert!(matches!(
        &events(&mut s)[..],
        [Event::Answer { id: i, result: Err(CallError::DeadlineExceeded) }] if *i == id
    ));
    assert_eq!(sent(&mut s), [Message::cancel(&id.into())]);
    assert_eq!(s.poll_timeout(), Some(t0 + Duration::from_secs(5)));
    // The late answer crosses the cancel: ignored.
    s.handle(
        t0 + Duration::from_secs(3),
        Ok(Message::Response {
            id: id.into(),
            result: Ok(raw(1)),
        }),
    );
    assert!(events(&mut s).is_empty());
    // An answered call's deadline is gone.
    s.handle(
        t0,
        Ok(Message::Response {
            id: later.into(),
            result: Ok(raw(1)),
        }),
    );
    events(&mut s);
    assert_eq!(s.poll_timeout(), None);
}

#[test]
fn an_abandoned_call_is_cancelled_once() {
    let t0 = Instant::now();
    let mut s = session(t0);
    let id = s.call("m".into(), raw(Value::Array(vec![])), None).unwrap();
    sent(&mut s);
    assert!(s.abandon(t0, id));
    assert!(!s.abandon(t0, id));
    assert_eq!(sent(&mut s), [Message::cancel(&id.into())]);
}

#[test]
fn a_duplicate_id_in_flight_is_refused_and_the_first_call_can_still_be_cancelled() {
    let t0 = Instant::now();
    for id in [CallId::from(5u32), CallId::string("req-uuid-001").unwrap()] {
        let mut s = session_with(Dialect::FramedMap, t0, |_| {});
        s.handle(t0, request(id.clone(), "slow"));
        let first = started(&mut s);
        assert_eq!(first.len(), 1);
        s.handle(t0, request(id.clone(), "slow"));
        assert!(started(&mut s).is_empty(), "the duplicate runs nothing");
        assert_eq!(error_for(&sent(&mut s), &id), Some(Code::InvalidArgument));
        // The cancel reaches the first call.
        s.handle(t0, Ok(Message::cancel(&id)));
        assert!(matches!(&events(&mut s)[..], [Event::Cancel { call }] if *call == first[0]));
        // Its handler's late answer is not sent.
        s.respond(t0, &first[0], Ok(raw(1)));
        assert!(sent(&mut s).is_empty());
    }
}

#[test]
fn an_id_may_be_reused_once_its_call_is_answered() {
    let t0 = Instant::now();
    let mut s = session(t0);
    s.handle(t0, request(7u32, "m"));
    let first = started(&mut s).remove(0);
    s.respond(t0, &first, Ok(raw(1)));
    s.handle(t0, request(7u32, "m"));
    let second = started(&mut s).remove(0);
    assert_ne!(first, second);
    // An answer for the first call, now stale, does not answer the second.
    s.respond(t0, &first, Ok(raw(2)));
    assert_eq!(sent(&mut s).len(), 1);
    assert!(s.is_running(&second));
    s.respond(t0, &second, Ok(raw(3)));
    assert_eq!(
        sent(&mut s),
        [Message::Response {
            id: 7u32.into(),
            result: Ok(raw(3))
        }]
    );
}

#[test]
fn calls_and_notifications_have_separate_bounds() {
    let t0 = Instant::now();
    let mut s = session_with(Dialect::MsgpackRpc, t0, |c| {
        c.max_in_flight = 2;
        c.max_notifications = 3;
    });
    for _ in 0..2000 {
        s.handle(t0, notification("unknown"));
    }
    let queued = events(&mut s)
        .iter()
        .filter(|e| matches!(e, Event::Notification { .. }))
        .count();
    assert_eq!(queued, 3);
    // Notifications never take the slots calls need.
    for id in 1..=3u32 {
        s.handle(t0, request(id, "m"));
    }
    assert_eq!(started(&mut s).len(), 2);
    let out = sent(&mut s);
    assert_eq!(error_for(&out, &3u32.into()), Some(Code::ResourceExhausted));
    assert_eq!(out.len(), 1);
    // A finished notification makes room for the next.
    s.notification_done(t0);
    s.handle(t0, notification("n"));
    assert_eq!(events(&mut s).len(), 1);
}

#[test]
fn requests_and_answers_keep_their_order() {
    let t0 = Instant::now();
    let mut s = session(t0);
    for id in 1..=5u32 {
        s.handle(t0, request(id, &format!("m{id}")));
        s.handle(t0, notification(&format!("n{id}")));
    }
    let mut calls = Vec::new();
    let mut order = Vec::new();
    for event in events(&mut s) {
        match event {
            Event::Request { call, method, .. } => {
                order.push(method);
                calls.push(call);
            }
            Event::Notification { method, .. } => order.push(method),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        order,
        ["m1", "n1", "m2", "n2", "m3", "n3", "m4", "n4", "m5", "n5"]
    );
    // Answered out of order, written in the order answered.
    for call in calls.iter().rev() {
        s.respond(t0, call, Ok(raw(call.id().as_u32().unwrap())));
    }
    let ids: Vec<u32> = sent(&mut s)
        .iter()
        .map(|m| match m {
            Message::Response { id, .. } => id.as_u32().unwrap(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(ids, [5, 4, 3, 2, 1]);
}

#[test]
fn the_idle_timer_runs_only_while_nothing_is_in_flight() {
    let t0 = Instant::now();
    let secs = Duration::from_secs;
    let mut s = session_with(Dialect::MsgpackRpc, t0, |c| {
        c.idle_timeout = Some(secs(10));
        c.keepalive_interval = None;
    });
    assert_eq!(s.poll_timeout(), Some(t0 + secs(10)));
    s.bytes_received(t0 + secs(4));
    assert_eq!(s.poll_timeout(), Some(t0 + secs(14)));
    s.handle(t0 + secs(5), request(1u32, "slow"));
    let call = started(&mut s).remove(0);
    assert_eq!(s.poll_timeout(), None, "busy: no idle timer");
    s.handle_timeout(t0 + secs(100));
    assert!(!s.is_closed());
    s.respond(t0 + secs(50), &call, Ok(raw(1)));
    // Idle counts from when the last call ended (it was quiet only since then).
    assert_eq!(s.poll_timeout(), Some(t0 + secs(60)));
    s.handle_timeout(t0 + secs(59));
    assert!(!s.is_closed());
    s.handle_timeout(t0 + secs(100));
    assert!(s.is_closed());
    assert!(matches!(s.close_reason(), Some(CloseReason::IdleTimeout)));
}

fn malformed(kind: MessageKind, id: Option<CallId>) -> Result<Message, WireError> {
    Err(WireError::Malformed(Malformed {
        kind,
        id,
        reason: MalformedReason::NoMethod,
    }))
}

#[test]
fn a_malformed_frame_is_always_answered() {
    let t0 = Instant::now();
    // A request with a readable id: INVALID_ARGUMENT for that id; the connection goes on.
    for dialect in Dialect::ALL {
        let mut s = session_with(dialect, t0, |_| {});
        let id = CallId::string("r-1").unwrap();
        s.handle(t0, malformed(MessageKind::Request, Some(id.clone())));
        assert_eq!(error_for(&sent(&mut s), &id), Some(Code::InvalidArgument));
        assert!(!s.is_closed());
    }
    // No readable id: an error for no call, in every dialect, and the connection goes on.
    for dialect in Dialect::ALL {
        let mut s = session_with(dialect, t0, |_| {});
        s.handle(t0, malformed(MessageKind::Unknown, None));
        assert!(
            matches!(&sent(&mut s)[..], [Message::Error { error }] if error.code == Code::InvalidArgument),
            "{dialect}"
        );
        assert!(!s.is_closed(), "{dialect}");
    }
}

#[test]
fn a_malformed_response_fails_its_call_at_once() {
    let t0 = Instant::now();
    let mut s = session(t0);
    let id = s.call("m".into(), raw(Value::Array(vec![])), None).unwrap();
    let other = s.call("m".into(), raw(Value::Array(vec![])), None).unwrap();
    s.handle(t0, malformed(MessageKind::Response, Some(id.into())));
    match &events(&mut s)[..] {
        [Event::Answer {
            id: i,
            result: Err(e @ CallError::Protocol(ProtocolError::MalformedResponse(_))),
        }] => {
            assert_eq!(*i, id);
            assert!(!e.is_connection_error());
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(s.waiting(), 1, "call {other} still waits");
    assert!(!s.is_closed());
}

#[test]
fn a_broken_stream_answers_the_request_it_broke_in_then_closes() {
    let t0 = Instant::now();
    let mut s = session(t0);
    s.handle(t0, request(1u32, "slow"));
    let running = started(&mut s).remove(0);
    s.handle(
        t0,
        Err(WireError::Stream {
            error: msgwire_frame::Error::TooLong {
                length: 1 << 30,
                max: 1 << 24,
            },
            request: Some(9u32.into()),
        }),
    );
    assert_eq!(
        error_for(&sent(&mut s), &9u32.into()),
        Some(Code::InvalidArgument)
    );
    assert!(s.is_closed());
    let events = events(&mut s);
    assert!(events
        .iter()
        .any(|e| matches!(e, Event::Cancel { call } if *call == running)));
    assert!(matches!(
        events.last(),
        Some(Event::Closed {
            reason: CloseReason::Protocol(ProtocolError::Stream(_))
        })
    ));
    // Nothing is read or queued any more.
    s.handle(t0, request(2u32, "m"));
    assert!(sent(&mut s).is_empty());
    assert!(!s.wants_read());
    assert!(s.call("m".into(), RawValue::nil(), None).is_err());
}

#[test]
fn a_graceful_shutdown_refuses_new_calls_and_closes_when_the_last_is_done() {
    let t0 = Instant::now();
    let mut s = session(t0);
    s.handle(t0, request(1u32, "slow"));
    let call = started(&mut s).remove(0);
    s.shutdown();
    assert!(!s.is_closed());
    s.handle(t0, request(2u32, "m"));
    assert_eq!(
        error_for(&sent(&mut s), &2u32.into()),
        Some(Code::Unavailable)
    );
    s.respond(t0, &call, Ok(raw(1)));
    assert!(s.is_closed());
    assert!(matches!(s.close_reason(), Some(CloseReason::Closed)));
    // The answer queued before the close is still written.
    assert_eq!(sent(&mut s).len(), 1);
}

#[test]
fn closing_answers_every_waiting_call_with_the_reason() {
    let t0 = Instant::now();
    let mut s = session(t0);
    let ids: Vec<u32> = (0..3)
        .map(|_| s.call("m".into(), RawValue::nil(), None).unwrap())
        .collect();
    s.close(CloseReason::Io(std::sync::Arc::new(std::io::Error::other(
        "reset",
    ))));
    let answered: Vec<u32> = events(&mut s)
        .into_iter()
        .filter_map(|e| match e {
            Event::Answer {
                id,
                result: Err(CallError::Io(_)),
            } => Some(id),
            _ => None,
        })
        .collect();
    assert_eq!(answered, ids);
    // The first reason wins.
    s.close(CloseReason::Closed);
    assert!(matches!(s.close_reason(), Some(CloseReason::Io(_))));
}

#[test]
fn the_write_queue_is_bounded_in_bytes() {
    let t0 = Instant::now();
    let mut s = session_with(Dialect::MsgpackRpc, t0, |c| c.write_queue_bytes = 64 * 1024);
    let big = raw(Value::Binary(vec![0; 40 * 1024]));
    s.handle(t0, request(1u32, "echo"));
    s.handle(t0, request(2u32, "echo"));
    let calls = started(&mut s);
    s.respond(t0, &calls[0], Ok(big.clone()));
    assert!(s.wants_read() && s.has_room());
    s.respond(t0, &calls[1], Ok(big));
    assert!(
        !s.wants_read() && !s.has_room(),
        "80 KiB queued: stop reading"
    );
    s.poll_transmit();
    assert!(s.wants_read());
    // This end's own calls fill the queue for its callers, but never stop it reading the
    // answers that let the peer go on.
    let mut client = session_with(Dialect::MsgpackRpc, t0, |c| c.write_queue_bytes = 64 * 1024);
    for _ in 0..3 {
        client
            .call("put".into(), raw(Value::Binary(vec![0; 40 * 1024])), None)
            .unwrap();
    }
    assert!(!client.has_room());
    assert!(client.wants_read());
}

#[test]
fn warnings_about_a_peer_are_rate_limited() {
    let t0 = Instant::now();
    let mut s = session_with(Dialect::FramedMap, t0, |_| {});
    for _ in 0..100 {
        s.handle(t0, malformed(MessageKind::Unknown, None));
    }
    assert_eq!(s.warnings.as_ref().map_or(0, |w| w.suppressed()), 95);
    // Every one was still answered.
    assert_eq!(sent(&mut s).len(), 100);
    s.handle(
        t0 + Duration::from_secs(11),
        malformed(MessageKind::Unknown, None),
    );
    assert_eq!(s.warnings.as_ref().map_or(0, |w| w.suppressed()), 0);
}

#[test]
fn an_error_for_no_call_is_never_answered() {
    let t0 = Instant::now();
    let mut s = session_with(Dialect::FramedMap, t0, |_| {});
    s.handle(
        t0,
        Ok(Message::Error {
            error: RpcError::invalid_argument("what?"),
        }),
    );
    assert!(sent(&mut s).is_empty());
    assert!(matches!(&events(&mut s)[..], [Event::PeerError { .. }]));
    assert!(!s.is_closed());
}

#[test]
fn keepalive_pings_a_silent_peer_while_busy_and_closes_when_nothing_comes_back() {
    let t0 = Instant::now();
    let secs = Duration::from_secs;
    let mut s = session_with(Dialect::MsgpackRpc, t0, |c| {
        c.keepalive_interval = Some(secs(30));
        c.keepalive_timeout = secs(20);
    });
    // Nothing in flight: no pings.
    assert_eq!(s.poll_timeout(), None);
    s.handle(t0, request(1u32, "slow"));
    let call = started(&mut s).remove(0);
    assert_eq!(s.poll_timeout(), Some(t0 + secs(30)));
    // Input moves it on.
    s.bytes_received(t0 + secs(10));
    assert_eq!(s.poll_timeout(), Some(t0 + secs(40)));
    s.handle_timeout(t0 + secs(40));
    let ping = sent(&mut s);
    assert!(
        matches!(&ping[..], [Message::Request { method, .. }] if method == "$/ping"),
        "{ping:?}"
    );
    assert_eq!(s.poll_timeout(), Some(t0 + secs(60)));
    // Any answer (here bytes of one) counts; then the next ping is an interval away.
    s.bytes_received(t0 + secs(45));
    assert_eq!(s.poll_timeout(), Some(t0 + secs(75)));
    s.handle_timeout(t0 + secs(75));
    assert_eq!(sent(&mut s).len(), 1);
    s.handle_timeout(t0 + secs(94));
    assert!(!s.is_closed());
    s.handle_timeout(t0 + secs(95));
    assert!(matches!(
        s.close_reason(),
        Some(CloseReason::KeepaliveTimeout)
    ));
    let cancelled = events(&mut s)
        .into_iter()
        .any(|e| matches!(e, Event::Cancel { call: c } if c == call));
    assert!(cancelled, "the handler is stopped");
}

#[test]
fn a_ping_is_answered_at_once_and_is_not_a_call_in_flight() {
    let t0 = Instant::now();
    let mut s = session(t0);
    s.handle(t0, request(9u32, "$/ping"));
    assert!(started(&mut s).is_empty());
    assert_eq!(s.running(), 0);
    let answers = sent(&mut s);
    assert!(
        matches!(&answers[..], [Message::Response { id, result: Ok(v) }] if *id == 9u32 && v.is_nil()),
        "{answers:?}"
    );
}

#[test]
fn credit_goes_back_as_items_are_taken() {
    use super::{Input, StreamKey};
    use msgwire_wire::stream::{Direction, StreamMessage};
    use std::task::{Context, Poll};
    let t0 = Instant::now();
    let mut s = session(t0);
    let id = s
        .call_stream("items".into(), raw(Value::Array(vec![])), None)
        .unwrap();
    sent(&mut s);
    let item = |i: u32| {
        Ok(StreamMessage::Item {
            direction: Direction::FromCallee,
            id: CallId::from(id),
            value: raw(i),
        }
        .to_message())
    };
    let window = msgwire_wire::DEFAULT_WINDOW_ITEMS;
    for i in 0..window {
        s.handle(t0, item(i));
    }
    let key = StreamKey::Mine(id);
    let mut cx = Context::from_waker(futures::task::noop_waker_ref());
    // Half a window taken: one grant for exactly what was taken.
    for i in 0..window / 2 {
        match s.poll_recv(&key, &mut cx) {
            Poll::Ready(Some(Input::Item(v))) => assert_eq!(v, raw(i)),
            other => panic!("{other:?}"),
        }
    }
    let grants = sent(&mut s);
    let parsed: Vec<_> = grants
        .iter()
        .map(|m| match m {
            Message::Notification { method, params } => StreamMessage::parse(method, params),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        parsed,
        [Some(Ok(StreamMessage::Credit {
            direction: Direction::FromCaller,
            id: CallId::from(id),
            items: window / 2,
            bytes: u64::from(window / 2),
        }))]
    );
    // The peer may now send half a window more, and no more than that.
    for i in 0..window / 2 {
        s.handle(t0, item(window + i));
    }
    assert!(s.waiting() == 1, "still within its credit");
    s.handle(t0, item(999));
    assert_eq!(s.waiting(), 0, "past its credit: the call fails");
    let cancel = sent(&mut s);
    assert!(matches!(&cancel[..], [Message::Notification { method, .. }] if method == "$/cancel"));
}
