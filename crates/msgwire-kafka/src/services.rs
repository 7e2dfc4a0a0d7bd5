//! [`KafkaEventLog`] as the events service's [`EventLog`]: what `msgwire serve
//! --kafka` gives its [`msgwire_services::events::EventStore`].

use bytes::Bytes;
use futures::future::BoxFuture;
use msgwire_services::events::{read_record, EventLog};
use msgwire_wire::{Code, RpcError};

use crate::{KafkaError, KafkaEventLog};

/// The most records one replay returns (a subscription's `start_time` far in the
/// past on a long log): bounded memory.
pub(crate) const MAX_REPLAY: usize = 100_000;

fn rpc_error(e: &KafkaError) -> RpcError {
    let code = if e.is_transient() {
        Code::Unavailable
    } else {
        Code::Internal
    };
    RpcError::new(code, format!("event log: {e}"))
}

impl EventLog for KafkaEventLog {
    fn append(&self, user_id: u64, record: Bytes) -> BoxFuture<'_, Result<(), RpcError>> {
        Box::pin(async move {
            // The record's own timestamp, so that replays by time see it where the
            // event says it happened.
            let timestamp = read_record(&record).map(|(event, _origin)| event.timestamp);
            self.append_at(&user_id.to_string(), &record, timestamp)
                .await
                .map(|_| ())
                .map_err(|e| rpc_error(&e))
        })
    }

    fn replay(&self, since: i64) -> BoxFuture<'_, Result<Vec<Bytes>, RpcError>> {
        Box::pin(async move {
            let records = KafkaEventLog::replay(self, since, MAX_REPLAY)
                .await
                .map_err(|e| rpc_error(&e))?;
            Ok(records.into_iter().filter_map(|r| r.payload).collect())
        })
    }
}
