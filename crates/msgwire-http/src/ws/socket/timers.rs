//! Time: pings every `ping_interval`, the pong timeout, the close timeout, and the
//! shutdown signal. One timer, reset only when the next deadline changes.

use std::future::Future;
use std::task::Context;

use msgwire_frame::websocket::Opcode;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

use super::super::close::{self, control_frame, Closing};
use super::{Phase, Socket};

impl<IO: AsyncRead + AsyncWrite + Unpin> Socket<IO> {
    /// Pings, the pong timeout, the close timeout and the shutdown signal.
    pub(super) fn poll_time(&mut self, cx: &mut Context<'_>) {
        if self.phase == Phase::Open {
            if let Some(shutdown) = self.shutdown.as_mut() {
                if shutdown.as_mut().poll(cx).is_ready() {
                    self.shutdown = None;
                    self.begin_close(
                        Closing::new(close::GOING_AWAY, "the server is shutting down"),
                        false,
                    );
                }
            }
        }
        loop {
            let wake_at = match self.phase {
                Phase::Open => match (self.next_ping, self.pong_deadline) {
                    (Some(ping), Some(pong)) => Some(ping.min(pong)),
                    (ping, pong) => ping.or(pong),
                },
                Phase::Closing { deadline, .. } => Some(deadline),
                Phase::Done => None,
            };
            let Some(wake_at) = wake_at else {
                return;
            };
            if self.timer_at != Some(wake_at) {
                self.timer.as_mut().reset(wake_at);
                self.timer_at = Some(wake_at);
            }
            if self.timer.as_mut().poll(cx).is_pending() {
                return;
            }
            self.timer_at = None;
            // Never before the deadline the timer was set for, so that what was due
            // is done and the next deadline is later.
            self.on_time(Instant::now().max(wake_at));
        }
    }

    fn on_time(&mut self, now: Instant) {
        match self.phase {
            Phase::Open => {
                if self.pong_deadline.is_some_and(|due| due <= now) {
                    self.begin_close(
                        Closing::new(close::INTERNAL_ERROR, "no pong within the timeout"),
                        false,
                    );
                    return;
                }
                if let (Some(due), Some(every)) = (self.next_ping, self.config.ping_interval) {
                    if due <= now {
                        self.pings += 1;
                        let payload = self.pings.to_be_bytes();
                        self.send_control(&control_frame(Opcode::Ping, &payload));
                        if self.pong_deadline.is_none() {
                            self.pong_deadline = Some(now + self.config.pong_timeout);
                        }
                        self.next_ping = Some(now + every);
                    }
                }
            }
            Phase::Closing { deadline, .. } if deadline <= now => self.phase = Phase::Done,
            _ => {}
        }
    }
}
