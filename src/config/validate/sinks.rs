//! Sink tables: each `[[sinks]]` entry checked into a [`SinkConfig`], every problem named by its
//! `sinks[N].key`.

use super::super::raw::{RawSink, SinkType};
use super::{describe_config_error, key_of, Checker};
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

    pub(super) fn sinks(&mut self, raw: Vec<::config::Value>) -> Vec<SinkConfig> {
        if raw.is_empty() {
            self.problem("sinks: no sink configured (add a [[sinks]] table, e.g. type = \"file\")");
        }
        let mut sinks: Vec<SinkConfig> = Vec::new();
        for (index, table) in raw.into_iter().enumerate() {
            let key = format!("sinks[{index}]");
            let Some(sink) = self.read_sink(&key, table) else {
                continue;
            };
            let (name, format, kind) = match sink {
                RawSink::File(raw) => self.file_sink(&key, raw),
                RawSink::Kafka(raw) => self.kafka_sink(&key, raw),
                RawSink::Syslog(raw) => self.syslog_sink(&key, raw),
                RawSink::Stdout(raw) => (raw.name, raw.format, SinkKind::Stdout),
            };
            let name = name.unwrap_or_else(|| format!("{}-{index}", kind.type_name()));
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

    /// One `[[sinks]]` table read by its `type` into that sink's table, every key the table
    /// does not know reported as the other unknown keys are.
    fn read_sink(&mut self, key: &str, table: ::config::Value) -> Option<RawSink> {
        let mut table = match table.into_table() {
            Ok(table) => table,
            Err(err) => {
                self.problem(format!("{key}: {err}"));
                return None;
            }
        };
        let Some(kind) = table.remove("type") else {
            self.problem(format!(
                "{key}.type: missing (file, stdout, syslog or kafka)"
            ));
            return None;
        };
        let kind = kind
            .into_string()
            .map_err(|err| err.to_string())
            .and_then(|name| {
                use serde::de::IntoDeserializer;
                let name: serde::de::value::StrDeserializer<'_, serde::de::value::Error> =
                    name.as_str().into_deserializer();
                serde::Deserialize::deserialize(name).map_err(|err| err.to_string())
            });
        let kind: SinkType = match kind {
            Ok(kind) => kind,
            Err(err) => {
                self.problem(format!("{key}.type: {err}"));
                return None;
            }
        };
        let table = ::config::Value::new(None, ::config::ValueKind::Table(table));
        let mut unknown = Vec::new();
        let mut note = |path: serde_ignored::Path| unknown.push(key_of(&path));
        let read = match kind {
            SinkType::File => serde_ignored::deserialize(table, &mut note).map(RawSink::File),
            SinkType::Stdout => serde_ignored::deserialize(table, &mut note).map(RawSink::Stdout),
            SinkType::Syslog => serde_ignored::deserialize(table, &mut note).map(RawSink::Syslog),
            SinkType::Kafka => serde_ignored::deserialize(table, &mut note).map(RawSink::Kafka),
        };
        for field in unknown {
            self.unknown_key(&format!("{key}.{field}"));
        }
        read.map_err(|err| {
            let source_name = self.source_name.clone();
            self.problem(describe_config_error(&err, key, &source_name));
        })
        .ok()
    }

    fn file_sink(&mut self, key: &str, mut table: FileTable) -> Named {
        let (name, format) = (table.name.take(), table.format.take());
        let checked = crate::sinks::file::settings::check(key, table, |p| self.path(p));
        self.take(checked.problems, checked.warnings);
        (name, format, SinkKind::File(checked.settings))
    }

    fn kafka_sink(&mut self, key: &str, mut table: KafkaTable) -> Named {
        let (name, format) = (table.name.take(), table.format.take());
        let password_file = table.password_file.take().map(|file| self.path(&file));
        let mut checked = crate::sinks::kafka::settings::check(key, table);
        self.take(checked.problems, checked.warnings);
        for (property, path) in checked.settings.librdkafka.key_files() {
            let path = self.path(path);
            self.secret_file(&format!("{key}.librdkafka.\"{property}\""), &path);
        }
        if let Some(path) = password_file {
            if let Some(password) = self.kafka_password(key, &path, &checked.settings.librdkafka) {
                (checked.settings.librdkafka.0).insert("sasl.password".into(), password);
            }
            checked.settings.password_file = Some(path);
        }
        (name, format, SinkKind::Kafka(checked.settings))
    }

    /// The SASL password in `path` (`KEY.password_file`): private like any secret file, read
    /// now, never shown; set once, so not also in the librdkafka table.
    fn kafka_password(
        &mut self,
        key: &str,
        path: &std::path::Path,
        properties: &crate::sinks::kafka::settings::LibrdkafkaProperties,
    ) -> Option<String> {
        let setting = format!("{key}.password_file");
        let shown = path.display();
        if properties.get("sasl.password").is_some() {
            self.problem(format!(
                "{setting}: the SASL password is also in {key}.librdkafka.\"sasl.password\"; keep it in the file only"
            ));
        }
        if !self.read_secret {
            self.secret_file(&setting, path);
            return None;
        }
        let text = self.secret_text(&setting, path)?;
        let password = text.trim_end_matches(['\r', '\n']);
        if password.is_empty() {
            self.problem(format!("{setting}: {shown} is empty"));
            return None;
        }
        Some(password.to_string())
    }

    fn syslog_sink(&mut self, key: &str, mut table: SyslogTable) -> Named {
        // CEF is what syslog receivers (Sentinel's CommonSecurityLog, QRadar, ArcSight) parse.
        let (name, format) = (
            table.name.take(),
            table.format.take().or(Some("cef".into())),
        );
        let checked = crate::sinks::syslog::settings::check(key, table, |p| self.path(p));
        self.take(checked.problems, checked.warnings);
        if let Some(path) = &checked.settings.key_file {
            self.secret_file(&format!("{key}.key_file"), path);
        }
        (name, format, SinkKind::Syslog(checked.settings))
    }
}

/// A sink's name and format as written, and its checked settings.
type Named = (Option<String>, Option<String>, SinkKind);
