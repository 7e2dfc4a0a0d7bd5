//! The bidirectional `chat` method: one call is one member of one room.

use std::future::{poll_fn, Future};
use std::sync::Arc;
use std::task::Poll;

use msgwire_rpc::{CallError, StreamReceiver, StreamSender};
use msgwire_wire::{Code, RawValue, RpcError};
use serde::{Deserialize, Serialize};

use super::{ChatHub, ChatKind, ChatMessage, Member};

/// The result of a `chat` call that ended by leaving: who left which room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatEnd {
    /// The member's user id.
    pub user_id: String,
    /// The room it left.
    pub room_id: String,
}

/// What the hub has for the peer next.
enum ForPeer {
    Message(Arc<ChatMessage>),
    /// Out of the room (removed for its backlog); what was queued has been passed on
    /// if the peer was reading.
    Removed,
    /// The output stream is over (the call was cancelled, the connection is gone).
    Closed(CallError),
}

/// What happened first.
enum Turn {
    Input(Option<Result<RawValue, CallError>>),
    Output(ForPeer),
}

/// How long a join waits for the hub to listen to the room's bus topic before the
/// member is answered anyway.
const SUBSCRIBE_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// `chat`: the first item the peer sends joins a room (`{user_id, room_id, type,
/// content}`; a `text` or `typing` first message is also passed on); then every `text`
/// or `typing` item goes to the room's other members, and what they send comes back as
/// items (see the [module docs](super) for the shapes). A `leave` item, or the end of
/// the peer's input, leaves the room and ends the call with [`ChatEnd`] (`nil` if it
/// never joined). A member removed for its backlog ends with RESOURCE_EXHAUSTED once
/// what was queued for it is passed on — at once if it is not reading at all.
///
/// An item that is not a chat message, or one the hub refuses (a second join, content
/// too long), is answered with a per-item error and the call goes on; an error item
/// from the peer is ignored.
pub async fn chat_call(
    hub: &ChatHub,
    mut input: StreamReceiver<RawValue>,
    mut out: StreamSender<ChatMessage>,
) -> Result<Option<ChatEnd>, RpcError> {
    let mut member = loop {
        let Some(message) = next_message(&mut input, &mut out).await? else {
            return Ok(None);
        };
        if message.kind == ChatKind::Leave {
            return Ok(None);
        }
        if message.kind == ChatKind::System {
            out.send_error(RpcError::invalid_argument(
                "join with a \"join\", \"text\" or \"typing\" message",
            ))
            .await?;
            continue;
        }
        let (user_id, room_id) = (message.user_id.clone(), message.room_id.clone());
        match hub.join(user_id, room_id) {
            Ok(member) => {
                // The welcome goes out once messages from other processes reach the
                // member too — or, if the bus does not confirm in time, without them
                // (the room goes on locally; the hub keeps trying).
                let _ = tokio::time::timeout(SUBSCRIBE_WAIT, member.subscribed()).await;
                if message.kind != ChatKind::Join {
                    send_or_tell(&member, message, &mut out).await?;
                }
                break member;
            }
            Err(error) => out.send_error(error).await?,
        }
    };
    loop {
        let turn = tokio::select! {
            item = input.next_raw() => Turn::Input(item),
            next = for_peer(&mut member, &mut out) => Turn::Output(next),
        };
        match turn {
            Turn::Output(ForPeer::Message(message)) => out.send(&message).await?,
            Turn::Output(ForPeer::Removed) => {
                return Err(RpcError::resource_exhausted(format!(
                    "{} was removed from {}: more than {} unread messages",
                    member.user_id(),
                    member.room_id(),
                    hub.backlog()
                )))
            }
            Turn::Output(ForPeer::Closed(error)) => return Err(error.into()),
            Turn::Input(None) => return Ok(Some(leave(member))),
            Turn::Input(Some(item)) => {
                let Some(message) = decode(item, &mut out).await? else {
                    continue;
                };
                match message.kind {
                    ChatKind::Leave => return Ok(Some(leave(member))),
                    ChatKind::Text | ChatKind::Typing => {
                        send_or_tell(&member, message, &mut out).await?;
                    }
                    ChatKind::Join | ChatKind::System => {
                        let error = RpcError::invalid_argument(format!(
                            "already in {}: send \"text\", \"typing\" or \"leave\"",
                            member.room_id()
                        ));
                        out.send_error(error).await?;
                    }
                }
            }
        }
    }
}

fn leave(member: Member) -> ChatEnd {
    let end = ChatEnd {
        user_id: member.user_id().to_owned(),
        room_id: member.room_id().to_owned(),
    };
    member.leave();
    end
}

/// Passes `message` on; a refusal goes back to the peer as a per-item error, except
/// that the member is no longer in the room, which [`for_peer`] reports.
async fn send_or_tell(
    member: &Member,
    message: ChatMessage,
    out: &mut StreamSender<ChatMessage>,
) -> Result<(), RpcError> {
    match member.send(message) {
        Err(error) if error.code != Code::FailedPrecondition => {
            out.send_error(error).await?;
            Ok(())
        }
        _ => Ok(()),
    }
}

/// The next chat message from the peer, answering the items that are not one; `None`
/// at the end of its input.
async fn next_message(
    input: &mut StreamReceiver<RawValue>,
    out: &mut StreamSender<ChatMessage>,
) -> Result<Option<ChatMessage>, RpcError> {
    loop {
        let Some(item) = input.next_raw().await else {
            return Ok(None);
        };
        if let Some(message) = decode(item, out).await? {
            return Ok(Some(message));
        }
    }
}

/// One item as a chat message; `None` (after telling the peer, for an item that does
/// not decode) for what is to be skipped. The peer's terminal error ends the call.
async fn decode(
    item: Result<RawValue, CallError>,
    out: &mut StreamSender<ChatMessage>,
) -> Result<Option<ChatMessage>, RpcError> {
    match item {
        Ok(raw) => match raw.deserialize::<ChatMessage>() {
            Ok(message) => Ok(Some(message)),
            Err(e) => {
                let error = RpcError::invalid_argument(format!(
                    "not a chat message {{user_id, room_id, content, type}}: {e}"
                ));
                out.send_error(error).await?;
                Ok(None)
            }
        },
        Err(error) if error.is_item_error() => Ok(None),
        Err(error) => Err(error.into()),
    }
}

/// Waits until the peer has credit for a message and the hub has one — or until the
/// member is out of the room, which ends the wait even while the peer reads nothing.
fn for_peer<'a>(
    member: &'a mut Member,
    out: &'a mut StreamSender<ChatMessage>,
) -> impl Future<Output = ForPeer> + 'a {
    poll_fn(move |cx| match out.poll_ready(cx) {
        Poll::Ready(Ok(())) => member
            .poll_recv(cx)
            .map(|next| next.map_or(ForPeer::Removed, ForPeer::Message)),
        Poll::Ready(Err(error)) => Poll::Ready(ForPeer::Closed(error)),
        Poll::Pending => member.poll_removed(cx).map(|()| ForPeer::Removed),
    })
}
