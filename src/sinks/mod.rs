//! Where events go. A [`Sink`] makes a batch durable and only then returns: that return is the
//! acknowledgement the pipeline waits for before committing the alerts to the store. A sink is
//! one folder: its settings and their check (`settings.rs`, a pure function the config loader
//! calls with the table as written), the sink itself, its `check --connect`, its tests. Adding
//! one means that folder, a variant in the config's sink table and a line in [`build`]; the
//! pipeline does not change.

mod choice;
mod error;
pub mod file;
pub mod kafka;
mod stdout;
pub mod syslog;

pub use choice::Choice;
pub use error::{Cause, Doing, Failure, SinkError};
pub use file::FileSink;
pub use kafka::KafkaSink;
pub use stdout::StdoutSink;
pub use syslog::SyslogSink;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::config::{SinkConfig, SinkKind};
use crate::normalize::{Format, Match, Severity};

/// A batch's events for one sink, shared: the pipeline keeps them to send again until every
/// sink acknowledged them, and a sink that writes on a thread of its own (the file sink) holds
/// them there instead of copying them.
pub type Events = Arc<[OutEvent]>;

/// One encoded event and what a sink may need to route or label it.
#[derive(Debug, Clone)]
pub struct OutEvent {
    /// The payload, then the alert id, then the matches: one allocation an event, not three
    /// (the id and matches are a few dozen bytes; an event is made for every alert published).
    bytes: Vec<u8>,
    payload_len: usize,
    alert_id_len: usize,
    pub severity: Severity,
    /// "user", "file" or "user,file": the kinds of watchlist match.
    pub match_kinds: &'static str,
    /// Alert creation (or update) time, milliseconds since the epoch.
    pub time_ms: Option<i64>,
}

impl OutEvent {
    /// The event `payload` of alert `alert_id`, found by `matches`, which are written after
    /// it in its own buffer.
    pub fn new(
        mut payload: Vec<u8>,
        alert_id: &str,
        matches: &[Match],
        severity: Severity,
        match_kinds: &'static str,
        time_ms: Option<i64>,
    ) -> OutEvent {
        let payload_len = payload.len();
        // Exactly: a full buffer would otherwise double for a few dozen bytes (a quarter of
        // the end-to-end benchmark's ECS buffers were full).
        payload.reserve_exact(alert_id.len() + crate::normalize::matches_len(matches));
        payload.extend_from_slice(alert_id.as_bytes());
        crate::normalize::write_matches(&mut payload, matches);
        OutEvent {
            bytes: payload,
            payload_len,
            alert_id_len: alert_id.len(),
            severity,
            match_kinds,
            time_ms,
        }
    }

    /// The same event with another payload (a shrunk one).
    pub fn with_payload(&self, mut payload: Vec<u8>) -> OutEvent {
        let tail = self.bytes.get(self.payload_len..).unwrap_or_default();
        let payload_len = payload.len();
        payload.reserve_exact(tail.len());
        payload.extend_from_slice(tail);
        OutEvent {
            bytes: payload,
            payload_len,
            alert_id_len: self.alert_id_len,
            severity: self.severity,
            match_kinds: self.match_kinds,
            time_ms: self.time_ms,
        }
    }

    /// The encoded event.
    pub fn payload(&self) -> &[u8] {
        self.bytes.get(..self.payload_len).unwrap_or_default()
    }

    pub fn alert_id(&self) -> &str {
        self.text(self.payload_len, self.payload_len + self.alert_id_len)
    }

    /// `user:user1,file:6532…`: every match, for transports that carry it beside the payload.
    pub fn matches(&self) -> &str {
        self.text(self.payload_len + self.alert_id_len, self.bytes.len())
    }

    /// Written from `&str`s by [`OutEvent::new`], so always text.
    fn text(&self, from: usize, to: usize) -> &str {
        std::str::from_utf8(self.bytes.get(from..to).unwrap_or_default()).unwrap_or_default()
    }
}

#[cfg(test)]
impl OutEvent {
    /// The event of one alert about `user`, for the sinks' tests.
    pub(crate) fn of_user(alert_id: &str, user: &str, severity: Severity, payload: &str) -> Self {
        let user = Match::new(crate::watchlist::EntryKind::User, user, None);
        OutEvent::new(
            payload.as_bytes().to_vec(),
            alert_id,
            &[user],
            severity,
            "user",
            None,
        )
    }
}

/// A component's settings once checked, with every problem (the config is refused) and every
/// warning (it loads, and says so), each naming its key.
#[derive(Debug)]
pub struct Checked<T> {
    pub settings: T,
    pub problems: Vec<String>,
    pub warnings: Vec<String>,
}

/// An acknowledgement still to come: resolves once the events handed over are durable.
pub type Pending = Pin<Box<dyn Future<Output = Result<(), SinkError>> + Send>>;

/// What names a sink in logs, metrics and errors, and the format its events are encoded in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkId {
    pub name: String,
    pub format: Format,
}

impl SinkId {
    pub fn new(name: &str, format: Format) -> SinkId {
        SinkId {
            name: name.to_string(),
            format,
        }
    }
}

#[async_trait::async_trait]
pub trait Sink: Send {
    fn id(&self) -> &SinkId;
    fn name(&self) -> &str {
        &self.id().name
    }
    fn format(&self) -> Format {
        self.id().format
    }
    /// Room for `event`'s payload, if this sink has a size limit (syslog's `max_message` less
    /// the header it puts around this event). Larger events are shrunk by the pipeline.
    fn payload_limit(&self, _event: &OutEvent) -> Option<usize> {
        None
    }
    /// Reaches the destination ahead of the first batch, so a problem shows at start and the
    /// first batch does not wait for connections to come up. A failure is reported, not fatal:
    /// sending retries anyway.
    async fn connect(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
    /// Makes `events` durable. Returning Ok is the acknowledgement.
    async fn send(&mut self, events: &Events) -> Result<(), SinkError>;
    /// Hands `events` over and returns their acknowledgement without waiting for it, so the
    /// pipeline can prepare the next batch meanwhile. Sinks whose acknowledgement is the write
    /// itself keep this default: the returned acknowledgement is already settled.
    async fn start(&mut self, events: &Events) -> Pending {
        let outcome = self.send(events).await;
        Box::pin(std::future::ready(outcome))
    }
    /// Pushes out anything buffered (at shutdown).
    async fn flush(&mut self) -> Result<(), SinkError>;
}

/// Builds every configured sink; `tenant` and `hostname` label what transports add around events.
pub fn build(
    configs: &[SinkConfig],
    tenant: &str,
    hostname: &str,
) -> Result<Vec<Box<dyn Sink>>, SinkError> {
    configs
        .iter()
        .map(|config| -> Result<Box<dyn Sink>, SinkError> {
            Ok(match &config.kind {
                SinkKind::File(file) => {
                    Box::new(FileSink::open(&config.name, config.format, file)?)
                }
                SinkKind::Stdout => Box::new(StdoutSink::new(&config.name, config.format)),
                SinkKind::Kafka(kafka) => {
                    Box::new(KafkaSink::new(&config.name, config.format, kafka)?)
                }
                SinkKind::Syslog(syslog) => Box::new(SyslogSink::new(
                    &config.name,
                    config.format,
                    syslog,
                    tenant,
                    hostname,
                )),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_keeps_its_payload_id_and_matches_apart() {
        let event = OutEvent::of_user("da1_2", "é1", Severity::High, "{\"a\":1}");
        assert_eq!(event.payload(), b"{\"a\":1}");
        assert_eq!(event.alert_id(), "da1_2");
        assert_eq!(event.matches(), "user:é1");
        let shrunk = event.with_payload(b"{}".to_vec());
        assert_eq!(
            (shrunk.payload(), shrunk.alert_id(), shrunk.matches()),
            (&b"{}"[..], "da1_2", "user:é1")
        );
        let full = b"{\"event\":1}".to_vec();
        assert_eq!(full.capacity(), full.len());
        let matches = [
            Match::new(crate::watchlist::EntryKind::User, "u1", None),
            Match::new(crate::watchlist::EntryKind::File, "ab12", Some("AB12")),
        ];
        let event = OutEvent::new(full, "da9", &matches, Severity::Low, "user,file", None);
        assert_eq!(event.matches(), crate::normalize::matches_text(&matches));
        assert_eq!(
            event.matches().len(),
            crate::normalize::matches_len(&matches)
        );
        assert_eq!(
            event.bytes.capacity(),
            event.bytes.len(),
            "the tail is reserved exactly, not by doubling the event"
        );
        let empty = OutEvent::new(Vec::new(), "", &[], Severity::Low, "user", None);
        assert_eq!(
            (empty.payload(), empty.alert_id(), empty.matches()),
            (&b""[..], "", "")
        );
    }
}
