//! Kafka, through rdkafka's `FutureProducer`: idempotent, `acks=all`, keyed by alert id (every
//! version of an alert lands in one partition, in order). A batch counts as delivered only when
//! the broker's delivery report came back for every message in it; anything else is an error the
//! pipeline retries, so nothing undelivered is ever committed.

mod connect;
pub mod context;
pub mod security;
pub mod settings;

pub use connect::check_connection;
pub use settings::{Compression, KafkaSettings};

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};

use self::context::{Brokers, SinkContext};
use super::{Choice, Doing, Events, Failure, OutEvent, Pending, Sink, SinkError, SinkId};
use crate::normalize::Format;

/// librdkafka settings mde-watch sets unless the operator's table says otherwise.
pub fn client_config(config: &KafkaSettings) -> ClientConfig {
    let mut client = ClientConfig::new();
    client
        .set("bootstrap.servers", &config.brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("compression.type", config.compression.name())
        .set(
            "message.timeout.ms",
            config.message_timeout.as_millis().to_string(),
        )
        .set("client.id", format!("mde-watch/{}", crate::VERSION));
    for (key, value) in &config.librdkafka {
        client.set(key, value);
    }
    client
}

pub struct KafkaSink {
    id: SinkId,
    topic: String,
    flush_timeout: Duration,
    client: ClientConfig,
    producer: FutureProducer<SinkContext>,
    /// What librdkafka reported of the brokers, shared by every producer this sink makes.
    brokers: Arc<Brokers>,
    /// Set when a delivery failed: the producer is renewed before the next batch goes out.
    failed: Arc<AtomicBool>,
}

impl KafkaSink {
    pub fn new(name: &str, format: Format, config: &KafkaSettings) -> Result<KafkaSink, SinkError> {
        let client = client_config(config);
        let brokers = Brokers::new(name);
        let producer: FutureProducer<SinkContext> = client
            .create_with_context(SinkContext(brokers.clone()))
            .doing(|| format!("cannot create the Kafka producer for {}", config.brokers))
            .map_err(|failure| failure.of(name))?;
        Ok(KafkaSink {
            id: SinkId::new(name, format),
            topic: config.topic.clone(),
            flush_timeout: config.flush_timeout,
            client,
            producer,
            brokers,
            failed: Arc::new(AtomicBool::new(false)),
        })
    }

    /// After a failed batch the producer starts over. Messages that timed out while in flight
    /// leave an idempotent producer with a sequence gap, which librdkafka may treat as fatal:
    /// the old producer would then refuse everything forever. The pipeline resends a failed
    /// batch only after every acknowledgement it was waiting for has settled, so nothing is
    /// pending on the old producer and a new one loses nothing.
    fn renew_producer(&mut self) {
        if let Some((code, reason)) = self.producer.client().fatal_error() {
            tracing::warn!(sink = %self.id.name, ?code, %reason, "Kafka producer hit a fatal error");
        }
        match self
            .client
            .create_with_context::<_, FutureProducer<SinkContext>>(SinkContext(
                self.brokers.clone(),
            )) {
            Ok(producer) => self.producer = producer,
            Err(err) => {
                tracing::error!(sink = %self.id.name, error = %err, "cannot recreate the Kafka producer; keeping the old one")
            }
        }
    }

    fn fail(&self, failure: Failure) -> SinkError {
        failure.of(&self.id.name)
    }
}

fn headers(format: Format, event: &OutEvent) -> OwnedHeaders {
    let schema = crate::EVENT_SCHEMA_VERSION.to_string();
    OwnedHeaders::new_with_capacity(4)
        .insert(Header {
            key: "format",
            value: Some(format.as_str()),
        })
        .insert(Header {
            key: "schema_version",
            value: Some(schema.as_str()),
        })
        .insert(Header {
            key: "severity",
            value: Some(event.severity.label()),
        })
        .insert(Header {
            key: "match_kind",
            value: Some(event.match_kinds),
        })
}

#[async_trait::async_trait]
impl Sink for KafkaSink {
    fn id(&self) -> &SinkId {
        &self.id
    }

    /// Reads the topic's metadata through the producer: the brokers are connected, and an
    /// idempotent producer asks for its producer id on that first metadata answer instead of
    /// on its 500 ms retry timer, which the first batch would otherwise wait out.
    async fn connect(&mut self) -> Result<(), SinkError> {
        let producer = self.producer.clone();
        let topic = self.topic.clone();
        let timeout = self.flush_timeout.min(Duration::from_secs(10));
        let mark = self.brokers.mark();
        let fetched = tokio::task::spawn_blocking(move || {
            producer
                .client()
                .fetch_metadata(Some(&topic), timeout)
                .map(|metadata| {
                    metadata
                        .topics()
                        .first()
                        .map_or(0, |topic| topic.partitions().len())
                })
        })
        .await
        .doing(|| "the metadata task stopped")
        .map_err(|failure| self.fail(failure))?;
        match fetched {
            Ok(partitions) => {
                tracing::info!(sink = %self.id.name, topic = %self.topic, partitions, "Kafka brokers reached");
                Ok(())
            }
            Err(err) => {
                let mut doing = format!(
                    "cannot read the metadata of topic {} within {}s",
                    self.topic,
                    timeout.as_secs()
                );
                if let Some(error) = self.brokers.error_since(mark) {
                    doing.push_str(&format!(" (librdkafka: {})", error.reason));
                }
                Err(self.fail(Failure::new(doing, err)))
            }
        }
    }

    async fn send(&mut self, events: &Events) -> Result<(), SinkError> {
        self.start(events).await.await
    }

    async fn start(&mut self, events: &Events) -> Pending {
        if self.failed.swap(false, Ordering::AcqRel) {
            self.renew_producer();
        }
        let mark = self.brokers.mark();
        let mut deliveries = Vec::with_capacity(events.len());
        for event in events.iter() {
            let mut record = FutureRecord::to(&self.topic)
                .key(event.alert_id())
                .payload(event.payload())
                .headers(headers(self.id.format, event));
            if let Some(time_ms) = event.time_ms {
                record = record.timestamp(time_ms);
            }
            loop {
                match self.producer.send_result(record) {
                    Ok(delivery) => {
                        deliveries.push(delivery);
                        break;
                    }
                    // librdkafka's local queue is full: wait for deliveries to drain it.
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                        record = returned;
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    Err((err, _)) => {
                        self.failed.store(true, Ordering::Release);
                        let failure = self.fail(Failure::new(
                            format!("cannot enqueue for topic {}", self.topic),
                            err,
                        ));
                        return Box::pin(std::future::ready(Err(failure)));
                    }
                }
            }
        }
        let (sink, topic, failed_flag, brokers) = (
            self.id.name.clone(),
            self.topic.clone(),
            self.failed.clone(),
            self.brokers.clone(),
        );
        Box::pin(async move {
            let total = deliveries.len();
            let mut failed = 0;
            // The first failure's error; None inside when the producer was dropped.
            let mut first_error: Option<Option<KafkaError>> = None;
            for delivery in deliveries {
                match delivery.await {
                    Ok(Ok(_)) => {}
                    Ok(Err((err, _))) => {
                        failed += 1;
                        first_error.get_or_insert(Some(err));
                    }
                    Err(_) => {
                        failed += 1;
                        first_error.get_or_insert(None);
                    }
                }
            }
            let Some(cause) = first_error else {
                brokers.delivered();
                return Ok(());
            };
            failed_flag.store(true, Ordering::Release);
            let mut doing = format!(
                "{failed} of {total} message(s) not acknowledged by the brokers of topic {topic}"
            );
            if let Some(error) = brokers.error_since(mark) {
                doing.push_str(&format!(" (librdkafka: {})", error.reason));
            }
            let failure = match cause {
                Some(err) => Failure::new(doing, err),
                None => Failure::plain(format!("{doing} (the producer was dropped)")),
            };
            Err(failure.of(&sink))
        })
    }

    async fn flush(&mut self) -> Result<(), SinkError> {
        let producer = self.producer.clone();
        let timeout = self.flush_timeout;
        let flushed = tokio::task::spawn_blocking(move || producer.flush(timeout))
            .await
            .doing(|| "the flush task stopped")
            .map_err(|failure| self.fail(failure))?;
        flushed
            .doing(|| format!("flush within {timeout:?} failed"))
            .map_err(|failure| self.fail(failure))
    }
}
