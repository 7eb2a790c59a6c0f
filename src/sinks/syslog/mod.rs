//! Syslog over UDP, TCP, TLS or a unix socket, RFC 5424 (default) or RFC 3164. TCP and TLS are
//! octet-counted by default (RFC 6587); a message counts as acknowledged once written to the
//! socket. UDP is best effort: a datagram that is sent is not known to have arrived. Events too
//! large for a datagram are re-encoded by the pipeline with their description shortened. A broken
//! connection is dropped and made again on the next send, which the pipeline retries with backoff.

pub mod frame;
mod transport;

use std::time::Duration;

use chrono::{TimeZone, Utc};

use self::frame::{Framing, Rfc5424};
use self::transport::Connection;
use super::{OutEvent, Sink, SinkError};
use crate::config::{SyslogProtocol, SyslogSinkConfig, SyslogTransport};
use crate::normalize::Format;

/// `check --connect`: opens the transport (TCP connect, TLS handshake, unix socket) and says
/// what worked. UDP only resolves the address: nothing answers a datagram.
pub async fn check_connection(config: &SyslogSinkConfig) -> Result<String, String> {
    Connection::open(config)
        .await
        .map(|_| match config.transport {
            SyslogTransport::Udp => format!(
                "{} resolves (UDP cannot confirm a receiver)",
                config.address
            ),
            transport => format!(
                "{} {} accepted the connection",
                transport.as_str(),
                config.address
            ),
        })
}

/// Private-enterprise SD-ID; 32473 is the number IANA reserves for documentation and examples.
pub const SD_ID: &str = "mdewatch@32473";
const TRUNCATION_MARK: &[u8] = "…[truncated]".as_bytes();

pub struct SyslogSink {
    name: String,
    format: Format,
    config: SyslogSinkConfig,
    tenant: String,
    hostname: String,
    procid: u32,
    connection: Option<Connection>,
    oversized: u64,
}

impl SyslogSink {
    pub fn new(
        name: &str,
        format: Format,
        config: &SyslogSinkConfig,
        tenant: &str,
        hostname: &str,
    ) -> SyslogSink {
        SyslogSink {
            name: name.to_string(),
            format,
            config: config.clone(),
            tenant: tenant.to_string(),
            hostname: hostname.to_string(),
            procid: std::process::id(),
            connection: None,
            oversized: 0,
        }
    }

    fn fail(&self, reason: String) -> SinkError {
        SinkError::Io {
            sink: self.name.clone(),
            reason,
        }
    }

    /// One syslog message for one event, without transport framing.
    pub fn message(&self, event: &OutEvent) -> Vec<u8> {
        let pri = self.config.facility * 8 + frame::severity(event.severity);
        let timestamp = event
            .time_ms
            .and_then(|ms| Utc.timestamp_millis_opt(ms).single())
            .unwrap_or_else(Utc::now);
        match self.config.protocol {
            SyslogProtocol::Rfc5424 => {
                let params = [
                    ("alertId", event.alert_id.as_str()),
                    ("tenant", self.tenant.as_str()),
                    ("match", event.matches.as_str()),
                ];
                Rfc5424 {
                    pri,
                    timestamp,
                    hostname: &self.hostname,
                    app_name: "mde-watch",
                    procid: self.procid,
                    msgid: self.format.as_str(),
                    structured_data: (SD_ID, &params),
                }
                .encode(&event.payload)
            }
            SyslogProtocol::Rfc3164 => {
                frame::rfc3164(pri, timestamp, &self.hostname, "mdewatch", &event.payload)
            }
        }
    }

    /// UDP datagrams beyond the configured size are cut, marked and counted, never dropped
    /// silently: a relay would cut them anyway, without saying so.
    fn fit_datagram(&mut self, mut message: Vec<u8>, alert_id: &str) -> Vec<u8> {
        let limit = self.config.max_datagram;
        if message.len() <= limit {
            return message;
        }
        self.oversized += 1;
        tracing::warn!(sink = %self.name, alert = alert_id, bytes = message.len(), limit, oversized = self.oversized, "syslog datagram over the size limit: cut and marked");
        let mut keep = limit.saturating_sub(TRUNCATION_MARK.len());
        while keep > 0 && (message[keep] & 0xC0) == 0x80 {
            keep -= 1; // never split a UTF-8 character
        }
        message.truncate(keep);
        message.extend_from_slice(TRUNCATION_MARK);
        message
    }
}

#[async_trait::async_trait]
impl Sink for SyslogSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn format(&self) -> Format {
        self.format
    }

    /// Room for the payload in a datagram: the limit less what the header and structured data
    /// take (the sink still cuts and marks anything that does not fit after that).
    fn max_payload_bytes(&self) -> Option<usize> {
        (self.config.transport == SyslogTransport::Udp).then(|| {
            let header = 160 + self.hostname.len().min(255) + self.tenant.len() + 256;
            self.config.max_datagram.saturating_sub(header).max(256)
        })
    }

    async fn send(&mut self, events: &[OutEvent]) -> Result<(), SinkError> {
        if self.connection.is_none() {
            let connection = Connection::open(&self.config)
                .await
                .map_err(|err| self.fail(err))?;
            self.connection = Some(connection);
        }
        let framing = match self.config.transport {
            SyslogTransport::Udp | SyslogTransport::Unix => None,
            // RFC 5425: TLS is always octet-counted.
            SyslogTransport::Tls => Some(Framing::OctetCounting),
            SyslogTransport::Tcp => Some(self.config.framing),
        };
        let mut outcome = Ok(());
        match framing {
            Some(framing) => {
                let mut buffer =
                    Vec::with_capacity(events.iter().map(|e| e.payload.len() + 160).sum());
                for event in events {
                    frame::frame(framing, &self.message(event), &mut buffer);
                }
                if let Some(connection) = self.connection.as_mut() {
                    outcome = connection.write_stream(&buffer).await;
                }
            }
            None => {
                for event in events {
                    let message = self.message(event);
                    let message = if self.config.transport == SyslogTransport::Udp {
                        self.fit_datagram(message, &event.alert_id)
                    } else {
                        message
                    };
                    if let Some(connection) = self.connection.as_mut() {
                        outcome = connection.send_datagram(&message).await;
                        if outcome.is_err() {
                            break;
                        }
                    }
                }
            }
        }
        outcome.map_err(|err| {
            // The next send makes a new connection.
            self.connection = None;
            self.fail(format!(
                "{} {}: {err}",
                self.config.transport.as_str(),
                self.config.address
            ))
        })
    }

    async fn flush(&mut self) -> Result<(), SinkError> {
        if let Some(connection) = self.connection.as_mut() {
            let flushed = tokio::time::timeout(Duration::from_secs(10), connection.flush()).await;
            if !matches!(flushed, Ok(Ok(()))) {
                return Err(self.fail("flush at shutdown did not complete".into()));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::Severity;
    use crate::sinks::syslog::frame::Framing;

    fn sink(transport: SyslogTransport, max_datagram: usize) -> SyslogSink {
        let config = SyslogSinkConfig {
            address: "127.0.0.1:1".into(),
            transport,
            framing: Framing::OctetCounting,
            protocol: SyslogProtocol::Rfc5424,
            facility: 20,
            ca_file: None,
            cert_file: None,
            key_file: None,
            server_name: None,
            max_datagram,
        };
        SyslogSink::new("s", Format::Cef, &config, "tenant", "collector01")
    }

    fn event(payload: &str) -> OutEvent {
        OutEvent {
            alert_id: "da1".into(),
            payload: payload.as_bytes().to_vec(),
            severity: Severity::High,
            match_kinds: "user",
            matches: "user:user1".into(),
            time_ms: Some(1_795_340_841_162),
        }
    }

    #[test]
    fn message_carries_pri_time_sd_and_payload() {
        let text =
            String::from_utf8(sink(SyslogTransport::Tcp, 2048).message(&event("CEF:0|x"))).unwrap();
        let pid = std::process::id();
        assert_eq!(
            text,
            format!("<163>1 2026-11-22T09:47:21.162000Z collector01 mde-watch {pid} cef [mdewatch@32473 alertId=\"da1\" tenant=\"tenant\" match=\"user:user1\"] CEF:0|x")
        );
    }

    #[test]
    fn oversized_datagrams_are_cut_marked_and_counted() {
        let mut sink = sink(SyslogTransport::Udp, 300);
        let message = sink.message(&event(&"é".repeat(400)));
        let fitted = sink.fit_datagram(message, "da1");
        assert!(fitted.len() <= 300);
        assert!(
            String::from_utf8(fitted).unwrap().ends_with("…[truncated]"),
            "cut on a character boundary, marked"
        );
        assert_eq!(sink.oversized, 1);
    }
}
