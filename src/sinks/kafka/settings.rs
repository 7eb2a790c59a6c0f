//! A Kafka sink's settings: what `[[sinks]] type = "kafka"` holds once checked, and the check.
//! Pure: the config loader hands the table's values in and gets the settings and every problem
//! back, each named by its `sinks[N].key`.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::sinks::choice::{choose, Choice, Names};
use crate::sinks::Checked;
use crate::units::parse_duration;

/// Compression codecs librdkafka's producer offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Zstd,
    Lz4,
    Gzip,
    Snappy,
    None,
}

#[rustfmt::skip]
impl Choice for Compression {
    const KEY: &'static str = "compression";
    const DEFAULT: Self = Self::Zstd;
    // The names are librdkafka's (`compression.type`), so the value is handed over as written.
    const CHOICES: Names<Self> = &[("zstd", Self::Zstd), ("lz4", Self::Lz4), ("gzip", Self::Gzip), ("snappy", Self::Snappy), ("none", Self::None)];
}

impl std::fmt::Display for Compression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct KafkaSettings {
    pub brokers: String,
    pub topic: String,
    pub compression: Compression,
    /// How long librdkafka keeps trying one message before reporting it failed.
    pub message_timeout: Duration,
    /// How long shutdown waits for the producer to drain.
    pub flush_timeout: Duration,
    pub librdkafka: LibrdkafkaProperties,
    /// Where `sasl.password` was read from (`password_file`): said by the security summary, and
    /// compared by a reload (the password itself prints redacted).
    pub password_file: Option<std::path::PathBuf>,
}

/// Passed-through librdkafka properties. `Debug` hides the values of anything that looks like a
/// credential (sasl.password, ssl.key.password, …), so a config dump never leaks one.
#[derive(Clone, PartialEq, Default)]
pub struct LibrdkafkaProperties(pub BTreeMap<String, String>);

impl LibrdkafkaProperties {
    pub fn iter(&self) -> impl Iterator<Item = (&String, &String)> {
        self.0.iter()
    }

    /// Properties naming a file that holds a private key, with the path written.
    pub fn key_files(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0
            .iter()
            .filter(|(key, _)| {
                ["ssl.key.location", "ssl.keystore.location"]
                    .iter()
                    .any(|name| key.eq_ignore_ascii_case(name))
            })
            .map(|(key, value)| (key.as_str(), value.as_str()))
    }

    /// The value of `name` (property names are case-insensitive in librdkafka).
    pub fn get(&self, name: &str) -> Option<&str> {
        super::security::property(&self.0, name)
    }

    pub fn is_secret(key: &str) -> bool {
        ["password", "secret", "key.pem", "token"]
            .iter()
            .any(|marker| key.contains(marker))
    }
}

impl<'a> IntoIterator for &'a LibrdkafkaProperties {
    type Item = (&'a String, &'a String);
    type IntoIter = std::collections::btree_map::Iter<'a, String, String>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl std::fmt::Debug for LibrdkafkaProperties {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut map = f.debug_map();
        for (key, value) in &self.0 {
            if LibrdkafkaProperties::is_secret(key) {
                map.entry(key, &"***");
            } else {
                map.entry(key, value);
            }
        }
        map.finish()
    }
}

/// The table as written (`[[sinks]] type = "kafka"`); a misspelt key is refused (the config loader finds it).
#[derive(Debug, serde::Deserialize)]
pub struct KafkaTable {
    pub name: Option<String>,
    pub brokers: String,
    pub topic: String,
    pub format: Option<String>,
    /// zstd (default) | lz4 | gzip | snappy | none
    pub compression: Option<String>,
    /// How long librdkafka keeps trying one message before reporting it failed.
    pub message_timeout: Option<String>,
    /// How long shutdown waits for the producer to drain.
    pub flush_timeout: Option<String>,
    /// A private file holding the SASL password (`sasl.password`): for Event Hubs, its
    /// connection string. Read at load; the config itself then holds no secret.
    pub password_file: Option<String>,
    /// librdkafka properties passed through as-is (SASL, TLS, tuning).
    #[serde(default)]
    pub librdkafka: BTreeMap<String, String>,
}

/// Checks the table at `key` (`sinks[N]`): the settings, with defaults where a value is
/// missing or wrong, and every problem found.
pub fn check(key: &str, table: KafkaTable) -> Checked<KafkaSettings> {
    let mut problems = Vec::new();
    let compression = choose(key, table.compression.as_deref(), &mut problems);
    if table.brokers.trim().is_empty() {
        problems.push(format!("{key}.brokers: give at least one host:port"));
    }
    if table.topic.trim().is_empty() {
        problems.push(format!("{key}.topic: must not be empty"));
    }
    let mut duration = |name: &str, value: Option<&str>, default: Duration| match value {
        None => default,
        Some(text) => parse_duration(text).unwrap_or_else(|err| {
            problems.push(format!("{key}.{name}: {err}"));
            default
        }),
    };
    let message_timeout = duration(
        "message_timeout",
        table.message_timeout.as_deref(),
        Duration::from_secs(120),
    );
    let flush_timeout = duration(
        "flush_timeout",
        table.flush_timeout.as_deref(),
        Duration::from_secs(30),
    );
    let librdkafka = LibrdkafkaProperties(table.librdkafka);
    let (in_clear, warnings) = super::security::check(key, &table.brokers, &librdkafka.0);
    problems.extend(in_clear);
    let settings = KafkaSettings {
        brokers: table.brokers,
        topic: table.topic,
        compression,
        message_timeout,
        flush_timeout,
        librdkafka,
        password_file: None,
    };
    Checked {
        settings,
        problems,
        warnings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> KafkaTable {
        KafkaTable {
            name: None,
            format: None,
            brokers: "127.0.0.1:9092".into(),
            topic: "alerts".into(),
            compression: None,
            message_timeout: None,
            flush_timeout: None,
            password_file: None,
            librdkafka: BTreeMap::new(),
        }
    }

    #[test]
    fn defaults_and_every_problem_named_by_its_key() {
        let Checked {
            settings, problems, ..
        } = check("sinks[0]", table());
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(settings.compression, Compression::Zstd);
        assert_eq!(settings.message_timeout, Duration::from_secs(120));

        let Checked {
            settings, problems, ..
        } = check(
            "sinks[2]",
            KafkaTable {
                brokers: " ".into(),
                topic: String::new(),
                compression: Some("brotli".into()),
                message_timeout: Some("soon".into()),
                ..table()
            },
        );
        assert_eq!(
            settings.compression,
            Compression::Zstd,
            "the default stands in"
        );
        assert_eq!(problems.len(), 4, "{problems:?}");
        for key in ["compression", "brokers", "topic", "message_timeout"] {
            assert!(
                problems
                    .iter()
                    .any(|p| p.starts_with(&format!("sinks[2].{key}"))),
                "{key}: {problems:?}"
            );
        }
        assert!(problems[0].contains("'brotli'"));
    }

    #[test]
    fn every_codec_reads_back_by_its_name_and_secrets_do_not_print() {
        crate::sinks::choice::reads_back::<Compression>();
        let properties = LibrdkafkaProperties(BTreeMap::from([
            ("sasl.password".to_string(), "hunter2".to_string()),
            ("sasl.mechanism".to_string(), "SCRAM-SHA-512".to_string()),
        ]));
        let shown = format!("{properties:?}");
        assert!(
            !shown.contains("hunter2") && shown.contains("SCRAM-SHA-512"),
            "{shown}"
        );
    }
}
