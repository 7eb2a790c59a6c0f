//! `check --connect` for Kafka: reach the brokers, read the topic's metadata, and say in plain
//! words what is wrong when that fails.

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use super::client_config;
use super::KafkaSettings;
use crate::sinks::{Doing, Failure};

/// Ok with the partition count, or a sentence an operator can act on (with librdkafka's error).
pub fn check_connection(config: &KafkaSettings, timeout: Duration) -> Result<usize, Failure> {
    let mut client = client_config(config);
    // A metadata-only client: producer settings would only draw warnings from a consumer.
    for key in [
        "enable.idempotence",
        "acks",
        "compression.type",
        "message.timeout.ms",
    ] {
        client.remove(key);
    }
    let consumer: BaseConsumer = client
        .create()
        .doing(|| "the Kafka settings are not accepted")?;
    let metadata = consumer
        .fetch_metadata(Some(&config.topic), timeout)
        .map_err(|err| Failure::new(describe(&err, config, timeout), err))?;
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

fn describe(err: &KafkaError, config: &KafkaSettings, timeout: Duration) -> String {
    let code = err.rdkafka_error_code();
    match code {
        Some(RDKafkaErrorCode::SaslAuthenticationFailed) | Some(RDKafkaErrorCode::Authentication) => format!(
            "authentication with the brokers at {} failed: check sasl.mechanism, sasl.username and sasl.password",
            config.brokers
        ),
        Some(RDKafkaErrorCode::TopicAuthorizationFailed) | Some(RDKafkaErrorCode::ClusterAuthorizationFailed) => {
            format!("not authorized at {}", config.brokers)
        }
        Some(RDKafkaErrorCode::AllBrokersDown) | Some(RDKafkaErrorCode::BrokerTransportFailure) | Some(RDKafkaErrorCode::OperationTimedOut) | None => format!(
            "cannot reach the Kafka brokers at {} within {}s (are the addresses, ports and security.protocol right?)",
            config.brokers,
            timeout.as_secs()
        ),
        Some(_) => format!("Kafka brokers at {}", config.brokers),
    }
}
