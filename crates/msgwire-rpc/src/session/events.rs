//! What a [`Session`](super::Session) asks its driver to do.

use msgwire_wire::{CallId, RawValue, RpcError};

use crate::error::{CallError, CloseReason};

/// One of the peer's calls being handled here: its id, and a sequence number that tells
/// it apart from an earlier call that used the same id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IncomingCall {
    pub(crate) id: CallId,
    pub(crate) seq: u64,
}

impl IncomingCall {
    /// The peer's id for the call.
    pub fn id(&self) -> &CallId {
        &self.id
    }
}

/// Something the driver of a [`Session`](super::Session) must do, from
/// [`poll_event`](super::Session::poll_event).
#[derive(Debug)]
#[non_exhaustive]
pub enum Event {
    /// Run the handler for the peer's call, then pass its result to
    /// [`respond`](super::Session::respond).
    Request {
        /// Which call.
        call: IncomingCall,
        /// The method.
        method: String,
        /// Its params: an array or a map.
        params: RawValue,
    },
    /// Run the notification handler (in order with the others), then call
    /// [`notification_done`](super::Session::notification_done).
    Notification {
        /// The method.
        method: String,
        /// Its params.
        params: RawValue,
    },
    /// One of this end's calls is over: its answer, or why there is none.
    Answer {
        /// The id [`call`](super::Session::call) returned.
        id: u32,
        /// The result.
        result: Result<RawValue, CallError>,
    },
    /// Stop the handler of this call: the peer cancelled it, or the connection closed.
    /// No response will be sent for it.
    Cancel {
        /// Which call.
        call: IncomingCall,
    },
    /// The peer reported an error that belongs to no call.
    PeerError {
        /// What it said.
        error: RpcError,
    },
    /// Wake this task: a stream it waits on has an item, credit, or its end.
    Wake(std::task::Waker),
    /// The session closed: read nothing more; write what is queued, then shut the
    /// connection.
    Closed {
        /// Why.
        reason: CloseReason,
    },
}
