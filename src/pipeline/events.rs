//! What the pipeline reports, each as one event type whose `emit()` logs and counts together,
//! so a send, an acknowledgement, a failure or a shrunk event is reported the same way by every
//! path that sees it (the first send, a resend, a retry).

use std::time::{Duration, Instant};

use crate::errors::Chain;
use crate::sinks::SinkError;
use crate::stats::{Counters, SinkCounters};

/// Events handed to a sink (counted when handed, acknowledged or not).
pub(super) struct EventsSent<'a> {
    pub sink: Option<&'a SinkCounters>,
    pub events: usize,
}

impl EventsSent<'_> {
    pub fn emit(&self) {
        if let Some(sink) = self.sink {
            sink.sent
                .fetch_add(self.events as u64, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

/// A sink acknowledged `events` handed to it at `started`.
pub(super) struct SinkAcked<'a> {
    pub sink: Option<&'a SinkCounters>,
    pub events: usize,
    pub started: Instant,
}

impl SinkAcked<'_> {
    pub fn emit(&self, counters: &Counters) {
        if let Some(sink) = self.sink {
            sink.attempt(self.events, true);
        }
        counters
            .publish_latency
            .observe(self.started.elapsed().as_secs_f64());
    }
}

/// What follows a sink's failure.
pub(super) enum Then {
    /// The batch is sent again once the batches ahead of it are settled.
    SendAgain,
    /// The same send is retried after a backoff.
    RetryIn(Duration),
    /// A one-shot run gives up; the error it returns says so, so nothing is logged here.
    GiveUp,
}

/// A sink failed `events`; they are sent again, never dropped (but by a one-shot run that gives
/// up, which then commits none of them).
pub(super) struct SinkFailed<'a> {
    pub name: &'a str,
    pub sink: Option<&'a SinkCounters>,
    pub events: usize,
    pub error: &'a SinkError,
    pub then: Then,
}

impl SinkFailed<'_> {
    pub fn emit(&self, counters: &Counters) {
        if let Some(sink) = self.sink {
            sink.attempt(self.events, false);
        }
        counters.add(&counters.sink_failures, 1);
        match self.then {
            Then::RetryIn(wait) => {
                tracing::error!(sink = self.name, error = %Chain(self.error), retry_in_ms = wait.as_millis() as u64, pending = self.events, "sink failed; retrying (nothing is dropped)")
            }
            Then::SendAgain => {
                tracing::error!(sink = self.name, error = %Chain(self.error), pending = self.events, "sink failed; sending again (nothing is dropped)")
            }
            Then::GiveUp => {}
        }
    }
}

/// An event shrunk to a sink's size limit: logged and counted together.
pub(super) struct EventShrunk<'a> {
    pub sink: &'a str,
    pub alert_id: &'a str,
    pub bytes: usize,
    pub shrunk_to: usize,
    pub limit: usize,
    pub fits: bool,
}

impl EventShrunk<'_> {
    pub fn emit(&self, counters: &Counters) {
        counters.add(&counters.events_shortened, 1);
        if self.fits {
            tracing::warn!(sink = self.sink, alert = %self.alert_id, bytes = self.bytes, shrunk_to = self.shrunk_to, limit = self.limit, "event over the sink's size limit: free text trimmed and lists shortened, marked truncated");
        } else {
            counters.add(&counters.events_oversized, 1);
            tracing::error!(sink = self.sink, alert = %self.alert_id, bytes = self.shrunk_to, limit = self.limit, "event over the sink's size limit even shrunk: sent whole (raise max_message or pick a smaller format)");
        }
    }
}
