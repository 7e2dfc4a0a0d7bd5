//! `chat` through a real server: three clients in two rooms, and a member that never
//! reads.
//!
//! "Nobody else got it" is shown by order, not by waiting: a message is put into every
//! receiving member's queue in the same step, so a member that wrongly got one would
//! see it before the next message that does reach it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{within, TestServer};
use futures::StreamExt;
use msgwire_rpc::{CallOptions, Client, Code, Dialect, StreamReceiver, StreamSender, Value};
use msgwire_services::chat::{ChatEnd, ChatKind, ChatMessage};
use msgwire_services::ServicesConfig;

type Seen = (ChatKind, String, String, String);

fn seen(kind: ChatKind, user: &str, room: &str, content: &str) -> Seen {
    (kind, user.into(), room.into(), content.into())
}

/// One `chat` call: one member of one room.
struct Chatter {
    user: String,
    room: String,
    tx: StreamSender<ChatMessage>,
    rx: StreamReceiver<ChatMessage>,
}

impl Chatter {
    /// Opens a `chat` call on `client`, joins `room` as `user` and reads the welcome.
    async fn join(client: &Client, user: &str, room: &str) -> Chatter {
        let (mut tx, rx) = client
            .open_stream::<_, ChatMessage, ChatMessage>(
                "chat",
                &Vec::<Value>::new(),
                CallOptions::new(),
            )
            .await
            .unwrap();
        let mut join = ChatMessage::new(ChatKind::Join, "");
        join.user_id = user.into();
        join.room_id = room.into();
        tx.send(&join).await.unwrap();
        let mut chatter = Chatter {
            user: user.into(),
            room: room.into(),
            tx,
            rx,
        };
        let welcome = format!("Welcome to {room}, {user}");
        assert_eq!(
            chatter.next().await,
            seen(ChatKind::System, "system", room, &welcome)
        );
        chatter
    }

    async fn send(&mut self, kind: ChatKind, content: &str) {
        within(self.tx.send(&ChatMessage::new(kind, content)))
            .await
            .unwrap();
    }

    async fn say(&mut self, content: &str) {
        self.send(ChatKind::Text, content).await;
    }

    /// The next message for this member.
    async fn next(&mut self) -> Seen {
        let m = within(self.rx.next())
            .await
            .unwrap_or_else(|| panic!("{}'s chat ended", self.user))
            .unwrap_or_else(|e| panic!("{}'s chat failed: {e}", self.user));
        assert!(m.timestamp > 0);
        (m.kind, m.user_id, m.room_id, m.content)
    }

    /// Leaves with a `leave` message; the call ends with who left where.
    async fn leave(mut self) {
        self.send(ChatKind::Leave, "").await;
        let end = within(self.rx.finish()).await.unwrap();
        let end: ChatEnd = end.deserialize().unwrap();
        assert_eq!((end.user_id, end.room_id), (self.user, self.room));
    }
}

#[tokio::test]
async fn three_clients_in_two_rooms_each_message_reaches_exactly_its_room() {
    use ChatKind::*;
    let server = TestServer::start(ServicesConfig::default()).await;
    let a = server.client(Dialect::MsgpackRpc).await;
    let b = server.client(Dialect::FramedMap).await;
    let c = server.client(Dialect::FramedBinary).await;

    let mut alice = Chatter::join(&a, "alice", "rust").await;
    let mut bob = Chatter::join(&b, "bob", "rust").await;
    assert_eq!(
        alice.next().await,
        seen(Join, "bob", "rust", "bob joined rust")
    );
    let mut carol = Chatter::join(&c, "carol", "go").await;

    // In rust: to the others, not back to the sender; typing too.
    alice.say("hi rust").await;
    assert_eq!(bob.next().await, seen(Text, "alice", "rust", "hi rust"));
    bob.send(Typing, "").await;
    bob.say("hi alice").await;
    assert_eq!(alice.next().await, seen(Typing, "bob", "rust", ""));
    assert_eq!(alice.next().await, seen(Text, "bob", "rust", "hi alice"));

    // Alice's client joins go as well (a second call on the same connection). That is
    // the next thing carol sees: nothing of rust reached her.
    let mut alice_go = Chatter::join(&a, "alice", "go").await;
    assert_eq!(
        carol.next().await,
        seen(Join, "alice", "go", "alice joined go")
    );
    carol.say("anyone?").await;
    assert_eq!(alice_go.next().await, seen(Text, "carol", "go", "anyone?"));

    // And nothing of go reached rust: the next thing alice and bob see in rust is
    // this.
    bob.say("still here").await;
    assert_eq!(alice.next().await, seen(Text, "bob", "rust", "still here"));
    alice.say("me too").await;
    assert_eq!(bob.next().await, seen(Text, "alice", "rust", "me too"));

    // Leaving: with a message, or by disconnecting; the room is told either way.
    bob.leave().await;
    assert_eq!(
        alice.next().await,
        seen(Leave, "bob", "rust", "bob left rust")
    );
    drop(carol);
    drop(c);
    assert_eq!(
        alice_go.next().await,
        seen(Leave, "carol", "go", "carol left go")
    );
    // The first item is what the call was about, not a second join.
    alice.send(Join, "").await;
    let err = within(alice.rx.next()).await.unwrap().unwrap_err();
    assert!(
        err.is_item_error() && err.code() == Code::InvalidArgument,
        "{err}"
    );
    alice.say("alone now").await;
    alice_go.say("alone here too").await;

    let chat = server.services.chat();
    assert_eq!((chat.member_count("rust"), chat.member_count("go")), (1, 1));
    alice.leave().await;
    alice_go.leave().await;
    // A member leaves before its call answers: the rooms are gone.
    assert_eq!(chat.room_count(), 0);
}

#[tokio::test]
async fn a_member_that_never_reads_is_dropped_while_the_others_keep_chatting() {
    use ChatKind::*;
    const BACKLOG: usize = 16;
    // Rounds of 4 messages, each read before the next: the readers' queues never hold
    // more than a round, well inside the backlog.
    const ROUNDS: usize = 40;
    let server = TestServer::start(ServicesConfig {
        chat_backlog: BACKLOG,
        ..ServicesConfig::default()
    })
    .await;
    let clients = [
        server.client(Dialect::MsgpackRpc).await,
        server.client(Dialect::MsgpackRpc).await,
        server.client(Dialect::FramedMap).await,
    ];
    let mut alice = Chatter::join(&clients[0], "alice", "r").await;
    let mut bob = Chatter::join(&clients[1], "bob", "r").await;
    assert_eq!(alice.next().await, seen(Join, "bob", "r", "bob joined r"));
    // Dave joins and then never reads again.
    let mut dave = Chatter::join(&clients[2], "dave", "r").await;
    assert_eq!(alice.next().await, seen(Join, "dave", "r", "dave joined r"));
    assert_eq!(bob.next().await, seen(Join, "dave", "r", "dave joined r"));

    let removed = seen(
        Leave,
        "dave",
        "r",
        "dave was removed from r: too far behind",
    );
    let (mut bob_saw_removal, mut alice_saw_removal) = (false, false);
    for round in 0..ROUNDS {
        let texts: Vec<String> = (0..4).map(|i| format!("{round}.{i}")).collect();
        for text in &texts {
            alice.say(text).await;
        }
        let mut got = Vec::new();
        while got.len() < texts.len() {
            let item = bob.next().await;
            if item == removed {
                assert!(!bob_saw_removal, "told twice");
                bob_saw_removal = true;
            } else {
                got.push(item);
            }
        }
        let want: Vec<Seen> = texts.iter().map(|t| seen(Text, "alice", "r", t)).collect();
        assert_eq!(got, want, "round {round}");
        if bob_saw_removal && !alice_saw_removal {
            assert_eq!(alice.next().await, removed);
            alice_saw_removal = true;
        }
    }
    if !bob_saw_removal {
        // Removed by the very last message: the notice comes right after it.
        assert_eq!(bob.next().await, removed);
        assert_eq!(alice.next().await, removed);
    }
    assert_eq!(server.services.chat().member_count("r"), 2);

    // The others go on.
    bob.say("still going").await;
    assert_eq!(alice.next().await, seen(Text, "bob", "r", "still going"));
    alice.say("yes").await;
    assert_eq!(bob.next().await, seen(Text, "alice", "r", "yes"));

    // Dave's call ended when he was removed: what his window held, then the reason.
    let mut items = 0;
    let end = loop {
        match within(dave.rx.next()).await {
            Some(Ok(m)) => {
                assert_eq!(m.kind, Text);
                items += 1;
            }
            Some(Err(e)) => break e,
            None => panic!("dave's call ended without an error"),
        }
    };
    assert_eq!(end.code(), Code::ResourceExhausted, "{end}");
    assert_eq!(
        end.to_string(),
        format!(
            "RESOURCE_EXHAUSTED (8): dave was removed from r: more than {BACKLOG} unread messages"
        )
    );
    println!("dave was removed after {items} messages reached his connection unread");
    assert!(within(dave.rx.next()).await.is_none());
}

#[tokio::test]
async fn bad_items_get_item_errors_and_the_chat_goes_on() {
    let server = TestServer::start(ServicesConfig::default()).await;
    let client = server.client(Dialect::MsgpackRpc).await;
    let (mut tx, mut rx) = client
        .open_stream::<_, Value, ChatMessage>("chat", &Vec::<Value>::new(), CallOptions::new())
        .await
        .unwrap();
    let item_error = |r: Option<Result<ChatMessage, msgwire_rpc::CallError>>| {
        let e = r.unwrap().unwrap_err();
        assert!(e.is_item_error(), "{e}");
        e.code()
    };
    // Not a chat message, then a join with no user: both answered, the call goes on.
    tx.send(&Value::from("hello")).await.unwrap();
    assert_eq!(item_error(within(rx.next()).await), Code::InvalidArgument);
    let no_user = Value::Map(vec![
        ("room_id".into(), "r".into()),
        ("type".into(), "join".into()),
    ]);
    tx.send(&no_user).await.unwrap();
    assert_eq!(item_error(within(rx.next()).await), Code::InvalidArgument);
    // A first message that is text joins and is passed on; integer ids are fine.
    let text = Value::Map(vec![
        ("user_id".into(), 42.into()),
        ("room_id".into(), 7.into()),
        ("type".into(), "text".into()),
        ("content".into(), "first!".into()),
    ]);
    tx.send(&text).await.unwrap();
    let welcome = within(rx.next()).await.unwrap().unwrap();
    assert_eq!(welcome.content, "Welcome to 7, 42");
    // The end of the input leaves the room.
    tx.finish().unwrap();
    let end: ChatEnd = within(rx.finish()).await.unwrap().deserialize().unwrap();
    assert_eq!((end.user_id.as_str(), end.room_id.as_str()), ("42", "7"));
    assert_eq!(server.services.chat().member_count("7"), 0);
}
