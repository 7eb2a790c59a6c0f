//! Sink tables: each `[[sinks]]` entry checked into a [`SinkConfig`], every problem named by its
//! `sinks[N].key`.

use super::super::raw::{ByteSize, RawSink};
use super::Checker;
use crate::config::*;
use crate::normalize::Format;
use crate::sinks::kafka::settings::KafkaTable;
use crate::units::parse_bytes;

impl Checker {
    #[allow(clippy::too_many_arguments)]
    fn syslog(
        &mut self,
        key: &str,
        address: String,
        transport: Option<String>,
        framing: Option<String>,
        protocol: Option<String>,
        facility: Option<String>,
        [ca_file, cert_file, key_file]: [Option<String>; 3],
        server_name: Option<String>,
        (max_message, max_datagram): (Option<ByteSize>, Option<usize>),
    ) -> SinkKind {
        use crate::sinks::syslog::frame::{self, Framing};
        let transport = match transport.as_deref().unwrap_or("tcp") {
            "udp" => SyslogTransport::Udp,
            "tcp" => SyslogTransport::Tcp,
            "tls" => SyslogTransport::Tls,
            "unix" => SyslogTransport::Unix,
            other => {
                self.problem(format!(
                    "{key}.transport: '{other}' is not a transport (udp | tcp | tls | unix)"
                ));
                SyslogTransport::Tcp
            }
        };
        let framing = match framing.as_deref().unwrap_or("octet-counting") {
            "octet-counting" => Framing::OctetCounting,
            "newline" => Framing::Newline,
            other => {
                self.problem(format!(
                    "{key}.framing: '{other}' is not a framing (octet-counting | newline)"
                ));
                Framing::OctetCounting
            }
        };
        let protocol = match protocol.as_deref().unwrap_or("rfc5424") {
            "rfc5424" => SyslogProtocol::Rfc5424,
            "rfc3164" => SyslogProtocol::Rfc3164,
            other => {
                self.problem(format!(
                    "{key}.protocol: '{other}' is not a protocol (rfc5424 | rfc3164)"
                ));
                SyslogProtocol::Rfc5424
            }
        };
        let facility_name = facility.unwrap_or_else(|| "local4".into());
        let facility = frame::facility(&facility_name).unwrap_or_else(|| {
            self.problem(format!("{key}.facility: '{facility_name}' is not a facility (kern, user, daemon, auth, local0 … local7, …)"));
            20
        });
        if transport != SyslogTransport::Unix && !address.contains(':') {
            self.problem(format!(
                "{key}.address: '{address}' needs a port (host:port)"
            ));
        }
        if (cert_file.is_some()) != (key_file.is_some()) {
            self.problem(format!("{key}: cert_file and key_file go together"));
        }
        let max_message = self.max_message(key, transport, max_message, max_datagram);
        let path = |value: Option<String>| value.map(|p| self.path(&p));
        SinkKind::Syslog(SyslogSinkConfig {
            address,
            transport,
            framing,
            protocol,
            facility,
            ca_file: path(ca_file),
            cert_file: path(cert_file),
            key_file: path(key_file),
            server_name,
            max_message,
        })
    }

    fn max_message(
        &mut self,
        key: &str,
        transport: SyslogTransport,
        max_message: Option<ByteSize>,
        max_datagram: Option<usize>,
    ) -> usize {
        let default = transport.default_max_message();
        let bytes = match (max_message, max_datagram) {
            (Some(_), Some(_)) => {
                self.problem(format!(
                    "{key}: max_datagram is the former name of max_message; set only max_message"
                ));
                return default;
            }
            (None, Some(bytes)) => {
                self.warnings.push(format!(
                    "{key}.max_datagram is now called max_message (it applies to every transport); read as max_message = {bytes}"
                ));
                bytes as u64
            }
            (Some(ByteSize::Bytes(bytes)), None) => bytes,
            (Some(ByteSize::Text(text)), None) => match parse_bytes(&text) {
                Ok(bytes) => bytes,
                Err(err) => {
                    self.problem(format!("{key}.max_message: {err}"));
                    return default;
                }
            },
            (None, None) => return default,
        };
        // 480 bytes is what every UDP receiver must take (RFC 5426 §3.2); 65,507 is the most a
        // UDP datagram carries; stream transports have no such ceiling, 16 MiB is a sanity bound.
        let ceiling: u64 = if transport == SyslogTransport::Udp {
            65_507
        } else {
            16 << 20
        };
        if !(480..=ceiling).contains(&bytes) {
            self.problem(format!(
                "{key}.max_message: {bytes} bytes is out of range for {} (480 to {ceiling})",
                transport.as_str()
            ));
            return default;
        }
        bytes as usize
    }

    pub(super) fn sinks(&mut self, raw: Vec<RawSink>) -> Vec<SinkConfig> {
        if raw.is_empty() {
            self.problem("sinks: no sink configured (add a [[sinks]] table, e.g. type = \"file\")");
        }
        let mut sinks: Vec<SinkConfig> = Vec::new();
        for (index, sink) in raw.into_iter().enumerate() {
            let key = format!("sinks[{index}]");
            let (name, format, kind) = match sink {
                RawSink::File {
                    name,
                    path,
                    format,
                    max_size,
                    keep,
                    fsync,
                } => {
                    let max_size = match max_size.as_deref() {
                        None => 100 << 20,
                        Some(text) => parse_bytes(text).unwrap_or_else(|err| {
                            self.problem(format!("{key}.max_size: {err}"));
                            0
                        }),
                    };
                    let kind = SinkKind::File(FileSinkConfig {
                        path: self.path(&path),
                        max_size,
                        keep: keep.unwrap_or(5),
                        fsync: fsync.unwrap_or(true),
                    });
                    (
                        name.unwrap_or_else(|| format!("file-{index}")),
                        format,
                        kind,
                    )
                }
                RawSink::Kafka {
                    name,
                    brokers,
                    topic,
                    format,
                    compression,
                    message_timeout,
                    flush_timeout,
                    librdkafka,
                } => {
                    let table = KafkaTable {
                        brokers,
                        topic,
                        compression,
                        message_timeout,
                        flush_timeout,
                        librdkafka,
                    };
                    let (settings, problems) = crate::sinks::kafka::settings::check(&key, table);
                    for problem in problems {
                        self.problem(problem);
                    }
                    let kind = SinkKind::Kafka(settings);
                    (
                        name.unwrap_or_else(|| format!("kafka-{index}")),
                        format,
                        kind,
                    )
                }
                RawSink::Syslog {
                    name,
                    address,
                    transport,
                    framing,
                    protocol,
                    format,
                    facility,
                    ca_file,
                    cert_file,
                    key_file,
                    server_name,
                    max_message,
                    max_datagram,
                } => {
                    let kind = self.syslog(
                        &key,
                        address,
                        transport,
                        framing,
                        protocol,
                        facility,
                        [ca_file, cert_file, key_file],
                        server_name,
                        (max_message, max_datagram),
                    );
                    (
                        name.unwrap_or_else(|| format!("syslog-{index}")),
                        format.or(Some("cef".into())),
                        kind,
                    )
                }
                RawSink::Stdout { name, format } => (
                    name.unwrap_or_else(|| format!("stdout-{index}")),
                    format,
                    SinkKind::Stdout,
                ),
            };
            let format = match Format::parse(format.as_deref().unwrap_or("ecs")) {
                Ok(format) => format,
                Err(err) => {
                    self.problem(format!("{key}.format: {err}"));
                    continue;
                }
            };
            if sinks.iter().any(|s| s.name == name) {
                self.problem(format!("{key}.name: '{name}' is used by another sink"));
                continue;
            }
            sinks.push(SinkConfig { name, format, kind });
        }
        sinks
    }
}
