//! A sink's failure: which sink, what it was doing (in its words: the file, the address, the
//! topic) and the cause, kept as the error it was. Printed through `errors::Chain` (see
//! `errors.rs` for the rule), as "sink 'siem': cannot write /var/…/alerts.ndjson: No space left".

use std::fmt::Display;

/// A failure inside a sink, not yet named: what was being done and, where another error said
/// why, that error (a time-out or a topic the brokers do not know has none).
#[derive(Debug, thiserror::Error)]
#[error("{doing}")]
pub struct Failure {
    pub doing: String,
    #[source]
    pub cause: Option<Box<Cause>>,
}

/// A [`Failure`] named by its sink; the chain reads "sink 'siem': cannot write …: …".
#[derive(Debug, thiserror::Error)]
#[error("sink '{sink}'")]
pub struct SinkError {
    pub sink: String,
    #[source]
    pub failure: Failure,
}

/// What a sink's I/O failed with (boxed where it is kept: rustls's and librdkafka's errors are
/// large, and every `Result` of the pipeline would carry their size).
#[derive(Debug, thiserror::Error)]
pub enum Cause {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error(transparent)]
    Tls(#[from] rustls::Error),
    #[error(transparent)]
    Pem(#[from] rustls::pki_types::pem::Error),
    /// The blocking task that did the I/O panicked or was cancelled.
    #[error(transparent)]
    Task(#[from] tokio::task::JoinError),
}

impl Failure {
    pub fn new(doing: impl Into<String>, cause: impl Into<Cause>) -> Failure {
        Failure {
            doing: doing.into(),
            cause: Some(Box::new(cause.into())),
        }
    }

    /// A failure the sink found itself, with no error beneath it.
    pub fn plain(doing: impl Into<String>) -> Failure {
        Failure {
            doing: doing.into(),
            cause: None,
        }
    }

    /// The failure as the sink named `sink` reports it.
    pub fn of(self, sink: &str) -> SinkError {
        SinkError {
            sink: sink.to_string(),
            failure: self,
        }
    }
}

/// Says what a fallible step was doing, keeping its error as the cause.
pub trait Doing<T> {
    fn doing<D: Display>(self, what: impl FnOnce() -> D) -> Result<T, Failure>;
}

impl<T, E: Into<Cause>> Doing<T> for Result<T, E> {
    fn doing<D: Display>(self, what: impl FnOnce() -> D) -> Result<T, Failure> {
        self.map_err(|err| Failure::new(what().to_string(), err))
    }
}
