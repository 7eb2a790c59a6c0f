//! Sink tables: each `[[sinks]]` entry checked into a [`SinkConfig`], every problem named by its
//! `sinks[N].key`.

use super::super::raw::RawSink;
use super::Checker;
use crate::config::*;
use crate::normalize::Format;
use crate::sinks::file::settings::FileTable;
use crate::sinks::kafka::settings::KafkaTable;
use crate::sinks::syslog::settings::SyslogTable;

impl Checker {
    /// A component's problems and warnings, added to the config's.
    fn take(&mut self, problems: Vec<String>, warnings: Vec<String>) {
        self.problems.extend(problems);
        self.warnings.extend(warnings);
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
                    let table = FileTable {
                        path,
                        max_size,
                        keep,
                        fsync,
                    };
                    let checked =
                        crate::sinks::file::settings::check(&key, table, |p| self.path(p));
                    self.take(checked.problems, checked.warnings);
                    let kind = SinkKind::File(checked.settings);
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
                    let checked = crate::sinks::kafka::settings::check(&key, table);
                    self.take(checked.problems, checked.warnings);
                    for (property, path) in checked.settings.librdkafka.key_files() {
                        let path = self.path(path);
                        self.secret_file(&format!("{key}.librdkafka.\"{property}\""), &path);
                    }
                    let kind = SinkKind::Kafka(checked.settings);
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
                    let table = SyslogTable {
                        address,
                        transport,
                        framing,
                        protocol,
                        facility,
                        ca_file,
                        cert_file,
                        key_file,
                        server_name,
                        max_message,
                        max_datagram,
                    };
                    let checked =
                        crate::sinks::syslog::settings::check(&key, table, |p| self.path(p));
                    self.take(checked.problems, checked.warnings);
                    if let Some(path) = &checked.settings.key_file {
                        self.secret_file(&format!("{key}.key_file"), path);
                    }
                    let kind = SinkKind::Syslog(checked.settings);
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
