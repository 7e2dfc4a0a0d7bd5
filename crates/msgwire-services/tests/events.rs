//! `subscribeEvents` and `publishEvent` through a real server: filtered by type and
//! time, live after the replay, a heartbeat when idle.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{code, within, TestServer};
use futures::StreamExt;
use msgwire_rpc::{Client, Code, Dialect, StreamReceiver, Value};
use msgwire_services::events::{unix_millis, Event, EventType, StreamEvent};
use msgwire_services::ServicesConfig;

/// A short heartbeat, so that an idle stream beats soon; the tests skip heartbeats
/// where they wait for events, so how soon does not matter.
const HEARTBEAT: Duration = Duration::from_millis(100);

async fn start() -> TestServer {
    TestServer::start(ServicesConfig {
        heartbeat: HEARTBEAT,
        ..ServicesConfig::default()
    })
    .await
}

async fn publish(client: &Client, user: u64, kind: &str) -> Event {
    client
        .call_typed("publishEvent", &(user, kind))
        .await
        .unwrap()
}

/// Publishes after the clock has moved past `after`, so that timestamps differ.
async fn publish_after(client: &Client, after: i64, user: u64, kind: &str) -> Event {
    while unix_millis() <= after {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    publish(client, user, kind).await
}

/// The next event, skipping heartbeats.
async fn next_event(rx: &mut StreamReceiver<StreamEvent>) -> Event {
    loop {
        match within(rx.next()).await.unwrap().unwrap() {
            StreamEvent::Event(event) => return event,
            StreamEvent::Heartbeat { .. } => continue,
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[tokio::test]
async fn subscribe_events_filters_by_type_and_time_and_beats_when_idle() {
    let server = start().await;
    for dialect in Dialect::ALL {
        let client = server.client(dialect).await;
        let user = 100 + dialect as u64;
        let a = publish(&client, user, "login").await;
        let b = publish_after(&client, a.timestamp, user, "logout").await;
        publish(&client, user, "profile_update").await; // not of the types asked for
        let d = publish(&client, user, "login").await;
        publish(&client, user + 1000, "login").await; // another user

        // From b's time on (a is older), logins and logouts only: b and d are replayed,
        // oldest first.
        let types = vec!["login", "logout"];
        let mut rx = client
            .server_stream::<_, StreamEvent>("subscribeEvents", &(user, types, b.timestamp))
            .await
            .unwrap();
        assert_eq!(next_event(&mut rx).await, b, "{dialect}");
        assert_eq!(next_event(&mut rx).await, d, "{dialect}");
        // Then live, through the same filter: not the password change, not the other
        // user's login.
        publish(&client, user, "password_change").await;
        publish(&client, user + 1000, "logout").await;
        let data = Value::Map(vec![("ip".into(), "10.0.0.1".into())]);
        let e: Event = client
            .call_typed("publishEvent", &(user, "logout", data.clone()))
            .await
            .unwrap();
        let got = next_event(&mut rx).await;
        assert_eq!(got, e, "{dialect}");
        assert_eq!(got.data, Some(data));
        assert_eq!(got.event_type, EventType::Logout);
        // Nothing more is published: the next item is a heartbeat.
        match within(rx.next()).await.unwrap().unwrap() {
            StreamEvent::Heartbeat { timestamp } => assert!(timestamp >= e.timestamp),
            other => panic!("{dialect}: expected a heartbeat, got {other:?}"),
        }
        rx.cancel();

        // Without a start time: live only, every type.
        let mut live = client
            .server_stream::<_, StreamEvent>("subscribeEvents", &(user,))
            .await
            .unwrap();
        // A heartbeat first shows the subscription is open before the publish.
        assert!(matches!(
            within(live.next()).await.unwrap().unwrap(),
            StreamEvent::Heartbeat { .. }
        ));
        let f = publish(&client, user, "password_change").await;
        assert_eq!(next_event(&mut live).await, f, "{dialect}: no replay");
    }
}

#[tokio::test]
async fn named_params_and_bad_params() {
    let server = start().await;
    let client = server.client(Dialect::FramedMap).await;
    let named = Value::Map(vec![
        ("user_id".into(), 5.into()),
        ("event_types".into(), Value::Array(vec!["login".into()])),
    ]);
    let mut rx = client
        .server_stream::<_, StreamEvent>("subscribeEvents", &named)
        .await
        .unwrap();
    let named_publish = Value::Map(vec![
        ("user_id".into(), 5.into()),
        ("type".into(), "login".into()),
    ]);
    let e: Event = client
        .call_typed("publishEvent", &named_publish)
        .await
        .unwrap();
    assert_eq!(next_event(&mut rx).await, e);

    let err = client
        .server_stream::<_, StreamEvent>("subscribeEvents", &(5, vec!["hack"]))
        .await
        .unwrap()
        .finish()
        .await;
    assert_eq!(code(err), Code::InvalidArgument);
    let err: Result<Event, _> = client.call_typed("publishEvent", &(5, "hack")).await;
    assert_eq!(code(err), Code::InvalidArgument);
    let err: Result<Event, _> = client.call_typed("publishEvent", &(5, "login", 3)).await;
    assert_eq!(code(err), Code::InvalidArgument, "data must be a map");
}
