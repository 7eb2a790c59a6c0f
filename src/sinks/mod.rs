//! Where events go. A [`Sink`] makes a batch durable and only then returns: that return is the
//! acknowledgement the pipeline waits for before committing the alerts to the store. Adding a sink
//! (Kafka, syslog) means adding a file here and a line in [`build`]; the pipeline does not change.

mod file;
pub mod kafka;
mod stdout;
pub mod syslog;

pub use file::FileSink;
pub use kafka::KafkaSink;
pub use stdout::StdoutSink;
pub use syslog::SyslogSink;

use crate::config::{SinkConfig, SinkKind};
use crate::normalize::{Format, Severity};

/// One encoded event and what a sink may need to route or label it.
#[derive(Debug, Clone)]
pub struct OutEvent {
    pub alert_id: String,
    pub payload: Vec<u8>,
    pub severity: Severity,
    /// "user", "file" or "user,file": the kinds of watchlist match.
    pub match_kinds: &'static str,
    /// `user:user1,file:6532…`: every match, for transports that carry it beside the payload.
    pub matches: String,
    /// Alert creation (or update) time, milliseconds since the epoch.
    pub time_ms: Option<i64>,
}

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("sink '{sink}': {reason}")]
    Io { sink: String, reason: String },
}

#[async_trait::async_trait]
pub trait Sink: Send {
    fn name(&self) -> &str;
    fn format(&self) -> Format;
    /// Largest payload this sink can carry whole, if it has such a limit (syslog over UDP).
    fn max_payload_bytes(&self) -> Option<usize> {
        None
    }
    /// Makes `events` durable. Returning Ok is the acknowledgement.
    async fn send(&mut self, events: &[OutEvent]) -> Result<(), SinkError>;
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
