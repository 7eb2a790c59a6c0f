//! `check --connect` for Kafka: reach the brokers, read the topic's metadata, and say in plain
//! words what is wrong when that fails.

use std::time::Duration;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, Producer};

use super::client_config;
use super::context::{Brokers, ClientError, SinkContext};
use super::KafkaSettings;
use crate::sinks::{Doing, Failure};

/// Ok with the partition count, or a sentence an operator can act on (with librdkafka's error);
/// `sink` names the sink in what librdkafka's errors log meanwhile.
pub fn check_connection(
    sink: &str,
    config: &KafkaSettings,
    timeout: Duration,
) -> Result<usize, Failure> {
    // A producer, as the sink's own: its polls hand librdkafka's errors, with their reasons,
    // to the context (a consumer's polls return only their codes).
    let brokers = Brokers::new(sink);
    let mut client = client_config(config);
    // A producer's metadata request would create a missing topic: the check reports it instead.
    client.set("allow.auto.create.topics", "false");
    let producer: BaseProducer<SinkContext> = client
        .create_with_context(SinkContext(brokers.clone()))
        .doing(|| "the Kafka settings are not accepted")?;
    let metadata = producer
        .client()
        .fetch_metadata(Some(&config.topic), timeout)
        .map_err(|err| {
            // One event a turn, log lines among them: a tenth of a second serves them all.
            producer.poll(Duration::from_millis(100));
            let said = brokers.error_since(0);
            Failure::new(describe(&err, said.as_ref(), config, timeout), err)
        })?;
    let topic = metadata
        .topics()
        .iter()
        .find(|t| t.name() == config.topic)
        .ok_or_else(|| {
            Failure::plain(format!(
                "the brokers at {} sent no metadata for topic {}",
                config.brokers, config.topic
            ))
        })?;
    if let Some(err) = topic.error() {
        let code = RDKafkaErrorCode::from(err);
        return Err(Failure::plain(match code {
            RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic => format!(
                "topic {} does not exist on {}; create it (brokers that auto-create topics make it on the first write, with their default partitions)",
                config.topic, config.brokers
            ),
            RDKafkaErrorCode::TopicAuthorizationFailed => format!(
                "not authorized for topic {}: grant this principal WRITE and DESCRIBE on it",
                config.topic
            ),
            other => format!("topic {}: {other}", config.topic),
        }));
    }
    Ok(topic.partitions().len())
}

/// What went wrong, from the metadata request's error and the last error librdkafka reported
/// on the way (the request itself only times out when the TLS handshake fails).
fn describe(
    err: &KafkaError,
    said: Option<&ClientError>,
    config: &KafkaSettings,
    timeout: Duration,
) -> String {
    if let Some(said) = said.filter(|said| said.is_settings()) {
        let what = match said.code {
            Some(RDKafkaErrorCode::SSL) => "the TLS handshake with",
            _ => "authentication with",
        };
        return format!(
            "{what} the brokers at {} failed: {} ({})",
            config.brokers,
            said.reason,
            said.hint().unwrap_or_default()
        );
    }
    let code = err.rdkafka_error_code();
    match code {
        Some(RDKafkaErrorCode::SaslAuthenticationFailed) | Some(RDKafkaErrorCode::Authentication) => format!(
            "authentication with the brokers at {} failed: check sasl.mechanism, sasl.username and the password (password_file or sasl.password)",
            config.brokers
        ),
        Some(RDKafkaErrorCode::TopicAuthorizationFailed) | Some(RDKafkaErrorCode::ClusterAuthorizationFailed) => {
            format!("not authorized at {}", config.brokers)
        }
        Some(RDKafkaErrorCode::AllBrokersDown) | Some(RDKafkaErrorCode::BrokerTransportFailure) | Some(RDKafkaErrorCode::OperationTimedOut) | None => format!(
            "cannot reach the Kafka brokers at {} within {}s (are the addresses, ports and security.protocol right?){}",
            config.brokers,
            timeout.as_secs(),
            said.map(|said| format!("; librdkafka: {}", said.reason)).unwrap_or_default()
        ),
        Some(_) => format!("Kafka brokers at {}", config.brokers),
    }
}
