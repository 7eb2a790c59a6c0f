//! What librdkafka says about a sink's brokers. rdkafka hands librdkafka's errors and log lines
//! to a client context whose default forwards them to the `log` crate, which this daemon does
//! not read: a refused certificate or a failed login showed only as messages timing out. The
//! sink's context counts every error (`mdewatch_kafka_client_errors_total`), says at warn the
//! first one that waiting will not mend (a TLS handshake, an authentication) and the rest at
//! debug, and keeps the last one: a failed batch and `check --connect` name it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::DeliveryResult;
use rdkafka::producer::ProducerContext;

static ERRORS: AtomicU64 = AtomicU64::new(0);

/// Errors librdkafka reported for every Kafka sink so far.
pub fn client_errors() -> u64 {
    ERRORS.load(Ordering::Relaxed)
}

/// One error librdkafka reported: its code and its own sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientError {
    pub code: Option<RDKafkaErrorCode>,
    pub reason: String,
}

impl ClientError {
    /// Errors that waiting does not mend: the operator must change a setting or a certificate.
    pub fn is_settings(&self) -> bool {
        matches!(
            self.code,
            Some(
                RDKafkaErrorCode::SSL
                    | RDKafkaErrorCode::Authentication
                    | RDKafkaErrorCode::SaslAuthenticationFailed
            )
        )
    }

    /// Where the fix goes, for the errors [`ClientError::is_settings`] names.
    pub fn hint(&self) -> Option<&'static str> {
        match self.code {
            Some(RDKafkaErrorCode::SSL) => Some(
                "a broker certificate from a private CA needs the CA in librdkafka \"ssl.ca.location\"",
            ),
            Some(
                RDKafkaErrorCode::Authentication | RDKafkaErrorCode::SaslAuthenticationFailed,
            ) => Some("check sasl.mechanism, sasl.username and the password (password_file or sasl.password)"),
            _ => None,
        }
    }
}

/// A sink's brokers as librdkafka reports them; shared by every producer the sink makes.
#[derive(Debug)]
pub struct Brokers {
    sink: String,
    /// An error was said at warn and no batch has been delivered since.
    failing: AtomicBool,
    /// Errors reported so far, so a batch names only an error of its own time.
    reported: AtomicU64,
    kept: Mutex<Kept>,
}

/// The last error, and the last settings error: a refused certificate is followed by "all
/// brokers are down", which says less.
#[derive(Debug, Default)]
struct Kept {
    last: Option<(u64, ClientError)>,
    settings: Option<(u64, ClientError)>,
}

impl Brokers {
    pub fn new(sink: &str) -> Arc<Brokers> {
        Arc::new(Brokers {
            sink: sink.to_string(),
            failing: AtomicBool::new(false),
            reported: AtomicU64::new(0),
            kept: Mutex::new(Kept::default()),
        })
    }

    /// A mark to pass to [`Brokers::error_since`].
    pub fn mark(&self) -> u64 {
        self.reported.load(Ordering::Acquire)
    }

    /// The error that says most of those librdkafka reported after `mark`: the last settings
    /// error if there was one, the last error otherwise.
    pub fn error_since(&self, mark: u64) -> Option<ClientError> {
        let kept = self
            .kept
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let newer = |kept: &Option<(u64, ClientError)>| {
            kept.as_ref()
                .filter(|(seen, _)| *seen > mark)
                .map(|(_, error)| error.clone())
        };
        newer(&kept.settings).or_else(|| newer(&kept.last))
    }

    /// A batch was delivered: an outage said at warn is over.
    pub fn delivered(&self) {
        if self.failing.swap(false, Ordering::Relaxed) {
            tracing::info!(sink = %self.sink, "Kafka brokers take batches again");
        }
    }

    fn reported(&self, error: ClientError) {
        ClientErrorReported {
            brokers: self,
            error: &error,
        }
        .emit();
        let mut kept = self
            .kept
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let seen = self.reported.load(Ordering::Acquire) + 1;
        if error.is_settings() {
            kept.settings = Some((seen, error.clone()));
        }
        kept.last = Some((seen, error));
        self.reported.store(seen, Ordering::Release);
    }
}

/// One error from librdkafka: counted, and said as [`Brokers`] explains.
struct ClientErrorReported<'a> {
    brokers: &'a Brokers,
    error: &'a ClientError,
}

impl ClientErrorReported<'_> {
    fn emit(self) {
        ERRORS.fetch_add(1, Ordering::Relaxed);
        let (sink, reason) = (&self.brokers.sink, &self.error.reason);
        let code = self.error.code.map(|code| format!("{code:?}"));
        if !self.error.is_settings() || self.brokers.failing.swap(true, Ordering::Relaxed) {
            tracing::debug!(%sink, code, %reason, "Kafka client error");
            return;
        }
        tracing::warn!(
            %sink,
            code,
            %reason,
            hint = self.error.hint(),
            "Kafka client error; counted in mdewatch_kafka_client_errors_total, said again after a batch is delivered"
        );
    }
}

/// The context of a sink's producers and of its `check --connect` client.
#[derive(Clone)]
pub struct SinkContext(pub Arc<Brokers>);

impl ClientContext for SinkContext {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        // Each error also comes through `error`, which counts and says it: these are detail.
        tracing::debug!(sink = %self.0.sink, ?level, facility, "librdkafka: {message}");
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.0.reported(ClientError {
            code: error.rdkafka_error_code(),
            reason: reason.to_string(),
        });
    }
}

/// For `check --connect`'s producer, which sends nothing.
impl ProducerContext for SinkContext {
    type DeliveryOpaque = ();

    fn delivery(&self, _: &DeliveryResult<'_>, _: Self::DeliveryOpaque) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_settings_error_is_kept_counted_and_ends_with_a_delivery() {
        let brokers = Brokers::new("kafka");
        let context = SinkContext(brokers.clone());
        let before = client_errors();
        let mark = brokers.mark();
        assert_eq!(brokers.error_since(mark), None);
        let transport = || KafkaError::Global(RDKafkaErrorCode::BrokerTransportFailure);
        context.error(transport(), "Connect to ipv4#127.0.0.1:1 failed");
        assert!(
            !brokers.failing.load(Ordering::Relaxed),
            "an outage heals alone"
        );
        let outage = brokers.error_since(mark).unwrap();
        assert_eq!(outage.code, Some(RDKafkaErrorCode::BrokerTransportFailure));
        assert_eq!(outage.hint(), None);
        context.error(
            KafkaError::Global(RDKafkaErrorCode::SSL),
            "SSL handshake failed: certificate verify failed",
        );
        context.error(
            KafkaError::Global(RDKafkaErrorCode::AllBrokersDown),
            "1/1 brokers are down",
        );
        assert!(brokers.failing.load(Ordering::Relaxed));
        let told = brokers.error_since(mark).unwrap();
        assert_eq!(
            told.code,
            Some(RDKafkaErrorCode::SSL),
            "the settings error says most"
        );
        assert!(told.hint().unwrap().contains("ssl.ca.location"));
        let later = brokers.mark();
        assert_eq!(brokers.error_since(later), None);
        context.error(transport(), "Disconnected");
        assert_eq!(brokers.error_since(later).unwrap().reason, "Disconnected");
        assert!(client_errors() >= before + 4);
        brokers.delivered();
        assert!(!brokers.failing.load(Ordering::Relaxed));
    }
}
