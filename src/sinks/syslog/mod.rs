//! Syslog over UDP, TCP, TLS or a unix socket, RFC 5424 (default) or RFC 3164. TCP and TLS are
//! octet-counted by default (RFC 6587); a message counts as acknowledged once written to the
//! socket. UDP is best effort: a datagram that is sent is not known to have arrived. No message is
//! larger than `max_message` (8,192 bytes on streams, 2,048 over UDP, as receivers take by
//! default): the sink tells the pipeline how much room each event has beside its header, and the
//! pipeline shrinks a larger event into a whole, smaller one. Bytes are never cut here: a receiver
//! that cuts a message loses the framing of every message after it. A broken connection is
//! dropped and made again on the next send, which the pipeline retries with backoff.

pub mod frame;
pub mod settings;
mod transport;

pub use settings::{SyslogProtocol, SyslogSettings, SyslogTransport};

pub use std::time::Duration;

use chrono::{TimeZone, Utc};

use self::frame::{Framing, Rfc5424};
use self::transport::Connection;
use super::{Choice, Events, Failure, OutEvent, Sink, SinkError, SinkId};
use crate::normalize::Format;

/// `check --connect`: opens the transport (TCP connect, TLS handshake, unix socket) and says
/// what worked. UDP only resolves the address: nothing answers a datagram.
pub async fn check_connection(config: &SyslogSettings) -> Result<String, Failure> {
    Connection::open(config)
        .await
        .map(|_| match config.transport {
            SyslogTransport::Udp => format!(
                "{} resolves (UDP cannot confirm a receiver)",
                config.address
            ),
            transport => format!(
                "{} {} accepted the connection",
                transport.name(),
                config.address
            ),
        })
}

/// `check`: whether a usual event of `format` fits this sink's `max_message` with its header,
/// as a warning to print when it does not.
pub fn size_warning(
    config: &SyslogSettings,
    format: Format,
    tenant: &str,
    hostname: &str,
) -> Option<String> {
    let sink = SyslogSink::new("check", format, config, tenant, hostname);
    let event = OutEvent::new(
        Vec::new(),
        "da638996440411627922_-193431444",
        &[crate::normalize::Match::new(
            crate::watchlist::EntryKind::User,
            "user1",
            None,
        )],
        crate::normalize::Severity::High,
        "user",
        Some(0),
    );
    let room = sink.payload_limit(&event)?;
    let header = config.max_message - room;
    let (whole, fits, fits_shrunk) =
        crate::normalize::sample::usual_event(format, hostname, tenant, room)?;
    let max = config.max_message;
    let format = format.as_str();
    match (fits, fits_shrunk) {
        (true, _) => None,
        (false, true) => Some(format!(
            "a usual {format} event is {} bytes with its syslog header, over max_message {max}: most events will go out shrunk (free text trimmed, lists shortened, marked truncated); if the receiver takes more (rsyslog: maxMessageSize), raise max_message",
            whole + header
        )),
        (false, false) => Some(format!(
            "max_message {max} is too small for {format} events even shrunk ({} bytes with the header): they will go out larger than the cap; raise max_message or use cef",
            whole + header
        )),
    }
}

/// Private-enterprise SD-ID; 32473 is the number IANA reserves for documentation and examples.
pub const SD_ID: &str = "mdewatch@32473";

pub struct SyslogSink {
    id: SinkId,
    config: SyslogSettings,
    tenant: String,
    hostname: String,
    procid: u32,
    connection: Option<Connection>,
}

impl SyslogSink {
    pub fn new(
        name: &str,
        format: Format,
        config: &SyslogSettings,
        tenant: &str,
        hostname: &str,
    ) -> SyslogSink {
        SyslogSink {
            id: SinkId::new(name, format),
            config: config.clone(),
            tenant: tenant.to_string(),
            hostname: hostname.to_string(),
            procid: std::process::id(),
            connection: None,
        }
    }

    fn fail(&self, failure: Failure) -> SinkError {
        failure.of(&self.id.name)
    }

    /// One syslog message for one event, without transport framing.
    pub fn message(&self, event: &OutEvent) -> Vec<u8> {
        self.message_with(event, event.payload())
    }

    fn message_with(&self, event: &OutEvent, payload: &[u8]) -> Vec<u8> {
        let pri = self.config.facility * 8 + frame::severity(event.severity);
        match self.config.protocol {
            SyslogProtocol::Rfc5424 => {
                let params = [
                    ("alertId", event.alert_id()),
                    ("tenant", self.tenant.as_str()),
                    ("match", event.matches()),
                ];
                Rfc5424 {
                    pri,
                    timestamp: event
                        .time_ms
                        .and_then(|ms| Utc.timestamp_millis_opt(ms).single())
                        .unwrap_or_else(Utc::now),
                    hostname: &self.hostname,
                    app_name: "mde-watch",
                    procid: self.procid,
                    msgid: self.id.format.as_str(),
                    structured_data: (SD_ID, &params),
                }
                .encode(payload)
            }
            // No year in a 3164 header: the send time, so the receiver's year is right.
            SyslogProtocol::Rfc3164 => {
                frame::rfc3164(pri, Utc::now(), &self.hostname, "mdewatch", payload)
            }
        }
    }
}

#[async_trait::async_trait]
impl Sink for SyslogSink {
    fn id(&self) -> &SinkId {
        &self.id
    }

    /// `max_message` less this event's header (its structured data holds the alert id and the
    /// matches, so the room differs by event; the header's times have a fixed width).
    fn payload_limit(&self, event: &OutEvent) -> Option<usize> {
        let header = self.message_with(event, b"-").len();
        Some(self.config.max_message.saturating_sub(header - 1))
    }

    async fn send(&mut self, events: &Events) -> Result<(), SinkError> {
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
                    Vec::with_capacity(events.iter().map(|e| e.payload().len() + 160).sum());
                for event in events.iter() {
                    frame::frame(framing, &self.message(event), &mut buffer);
                }
                if let Some(connection) = self.connection.as_mut() {
                    outcome = connection.write_stream(&buffer).await;
                }
            }
            None => {
                for event in events.iter() {
                    let message = self.message(event);
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
            self.fail(Failure::new(
                format!("{} {}", self.config.transport.name(), self.config.address),
                err,
            ))
        })
    }

    async fn flush(&mut self) -> Result<(), SinkError> {
        if let Some(connection) = self.connection.as_mut() {
            let flushed = tokio::time::timeout(Duration::from_secs(10), connection.flush()).await;
            let failure = match flushed {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(err)) => Failure::new("flush at shutdown failed", err),
                Err(_) => Failure::plain("flush at shutdown did not complete within 10 s"),
            };
            return Err(self.fail(failure));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::Severity;
    use crate::sinks::syslog::frame::Framing;

    fn sink(transport: SyslogTransport, max_message: usize) -> SyslogSink {
        let config = SyslogSettings {
            address: "127.0.0.1:1".into(),
            transport,
            framing: Framing::OctetCounting,
            protocol: SyslogProtocol::Rfc5424,
            facility: 20,
            ca_file: None,
            cert_file: None,
            key_file: None,
            server_name: None,
            max_message,
        };
        SyslogSink::new("s", Format::Cef, &config, "tenant", "collector01")
    }

    fn event(payload: &str) -> OutEvent {
        OutEvent {
            time_ms: Some(1_795_340_841_162),
            ..OutEvent::of_user("da1", "user1", Severity::High, payload)
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
    fn rfc3164_headers_carry_the_send_time_not_the_alerts() {
        let mut config = sink(SyslogTransport::Udp, 2048).config;
        config.protocol = SyslogProtocol::Rfc3164;
        let sink = SyslogSink::new("s", Format::Cef, &config, "tenant", "collector01");
        let mut old = event("CEF:0|x");
        old.time_ms = Some(1_583_056_800_000); // 2020-03-01: its month would be filed this year
        let before = chrono::Local::now();
        let text = String::from_utf8(sink.message(&old)).unwrap();
        let after = chrono::Local::now();
        let stamped = &text[text.find('>').unwrap() + 1..][..15];
        let expected: Vec<String> = [before, after]
            .iter()
            .map(|t| t.format("%b %e %H:%M:%S").to_string())
            .collect();
        assert!(
            expected.iter().any(|e| e == stamped),
            "{stamped} vs {expected:?}"
        );
        assert!(text.ends_with(" collector01 mdewatch: CEF:0|x"), "{text}");
    }

    #[test]
    fn payload_room_is_the_cap_less_this_events_header() {
        let sink = sink(SyslogTransport::Tcp, 8192);
        let short = event("x");
        let long = OutEvent {
            time_ms: Some(1_795_340_841_162),
            ..OutEvent::of_user("da1", &"u".repeat(500), Severity::High, "x")
        };
        let room = sink.payload_limit(&short).unwrap();
        assert_eq!(room + sink.message(&short).len() - 1, 8192);
        assert_eq!(
            sink.payload_limit(&long).unwrap(),
            room - ("user:".len() + 500 - "user:user1".len()),
            "a longer SD leaves less room"
        );
        let exact = event(&"p".repeat(room));
        assert_eq!(sink.message(&exact).len(), 8192);
    }
}
