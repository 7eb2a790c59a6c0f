//! What a Kafka sink's librdkafka properties send in clear, and what they leave unverified. Pure:
//! the brokers and properties as configured in, problems and warnings out.
//!
//! librdkafka's defaults are `security.protocol = plaintext` and `sasl.mechanisms = GSSAPI`;
//! property names and values are case-insensitive there, so they are here.

use std::collections::BTreeMap;

use crate::exposure;

/// How the producer talks to its brokers, from its properties.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transport {
    /// `PLAINTEXT`, `SSL`, `SASL_PLAINTEXT` or `SASL_SSL` (upper case).
    pub protocol: String,
    /// The SASL mechanism (upper case) when the protocol uses SASL.
    pub mechanism: Option<String>,
    /// The properties that turn certificate verification off, as `name = value`.
    pub unverified: Vec<String>,
    /// `ssl.ca.location` as written: the CAs the brokers' certificates are checked against
    /// (OpenSSL's default store when unset).
    pub ca_location: Option<String>,
}

impl Transport {
    pub fn of(properties: &BTreeMap<String, String>) -> Transport {
        let written = |name: &str| property(properties, name).map(str::trim);
        let get = |name: &str| written(name).map(str::to_ascii_uppercase);
        let protocol = get("security.protocol").unwrap_or_else(|| "PLAINTEXT".into());
        let mechanism = protocol.starts_with("SASL_").then(|| {
            get("sasl.mechanisms")
                .or_else(|| get("sasl.mechanism"))
                .unwrap_or_else(|| "GSSAPI".into())
        });
        let mut unverified = Vec::new();
        if get("enable.ssl.certificate.verification").as_deref() == Some("FALSE") {
            unverified.push("enable.ssl.certificate.verification = false".to_string());
        }
        if get("ssl.endpoint.identification.algorithm").as_deref() == Some("NONE") {
            unverified.push("ssl.endpoint.identification.algorithm = none".to_string());
        }
        Transport {
            protocol,
            mechanism,
            unverified,
            ca_location: written("ssl.ca.location").map(str::to_string),
        }
    }

    pub fn encrypted(&self) -> bool {
        self.protocol.ends_with("SSL")
    }

    /// Mechanisms that put a reusable credential itself on the wire: the password (PLAIN), or
    /// a bearer token (OAUTHBEARER). SCRAM and GSSAPI prove it without sending it.
    fn sends_credential(&self) -> bool {
        matches!(self.mechanism.as_deref(), Some("PLAIN" | "OAUTHBEARER"))
    }
}

/// The value of property `name` (names are case-insensitive in librdkafka).
pub fn property<'a>(properties: &'a BTreeMap<String, String>, name: &str) -> Option<&'a str> {
    properties
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.as_str())
}

/// The problems and warnings of the sink at `key` (`sinks[N]`) sending to `brokers`.
pub fn check(
    key: &str,
    brokers: &str,
    properties: &BTreeMap<String, String>,
) -> (Vec<String>, Vec<String>) {
    let (mut problems, mut warnings) = (Vec::new(), Vec::new());
    let transport = Transport::of(properties);
    for switch in &transport.unverified {
        warnings.push(format!(
            "{key}.librdkafka: {switch} turns the brokers' certificate check off: anyone on the path can pose as them and read every alert"
        ));
    }
    let Some(remote) = exposure::first_remote(brokers.split(',')) else {
        return (problems, warnings);
    };
    if transport.encrypted() {
        return (problems, warnings);
    }
    match transport.mechanism.as_deref() {
        Some(mechanism) if transport.sends_credential() => problems.push(format!(
            "{key}.librdkafka: security.protocol = \"SASL_PLAINTEXT\" with sasl.mechanism = \"{mechanism}\" sends the {} to {remote} in clear; \
             use security.protocol = \"SASL_SSL\" (or a SCRAM mechanism, which sends no password)",
            if mechanism == "PLAIN" { "SASL password" } else { "bearer token" }
        )),
        Some(mechanism) => warnings.push(format!(
            "{key}.librdkafka: {mechanism} over SASL_PLAINTEXT sends no password, but every alert goes to {remote} in clear; security.protocol = \"SASL_SSL\" encrypts them"
        )),
        None => warnings.push(format!(
            "{key}: alerts go to {remote} in clear (security.protocol = {}); set librdkafka's security.protocol = \"SSL\" or \"SASL_SSL\" to encrypt them",
            transport.protocol
        )),
    }
    (problems, warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SASL over `protocol`, the mechanism set under `key` (librdkafka reads both spellings).
    fn sasl(protocol: &str, key: &str, mechanism: &str) -> BTreeMap<String, String> {
        properties(&[("security.protocol", protocol), (key, mechanism)])
    }

    fn properties(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|&(k, v)| (k.into(), v.into())).collect()
    }

    #[test]
    fn a_password_in_clear_to_a_remote_broker_is_refused() {
        let plain = sasl("sasl_plaintext", "sasl.mechanism", "PLAIN");
        let (problems, _) = check("sinks[1]", "127.0.0.1:9092,kafka-2.corp:9092", &plain);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].starts_with("sinks[1].librdkafka: security.protocol = \"SASL_PLAINTEXT\" with sasl.mechanism = \"PLAIN\" sends the SASL password to kafka-2.corp:9092 in clear"),
            "{problems:?}"
        );
        // The same to loopback brokers: nothing leaves the host.
        let clean = (vec![], vec![]);
        assert_eq!(check("sinks[1]", "localhost:9092", &plain), clean);
        // SASL_SSL carries it encrypted.
        let ssl = sasl("SASL_SSL", "sasl.mechanisms", "PLAIN");
        assert_eq!(check("sinks[1]", "kafka-2.corp:9093", &ssl), clean);
        let bearer = sasl("SASL_PLAINTEXT", "sasl.mechanisms", "OAUTHBEARER");
        assert!(check("sinks[0]", "kafka:9092", &bearer).0[0].contains("bearer token"));
    }

    #[test]
    fn scram_and_plaintext_in_clear_are_warnings() {
        let scram = sasl("SASL_PLAINTEXT", "sasl.mechanism", "SCRAM-SHA-512");
        let (problems, warnings) = check("sinks[0]", "kafka:9092", &scram);
        assert!(problems.is_empty());
        assert!(
            warnings[0].contains("SCRAM-SHA-512 over SASL_PLAINTEXT sends no password"),
            "{warnings:?}"
        );
        let (problems, warnings) = check("sinks[0]", "kafka:9092", &properties(&[]));
        assert!(problems.is_empty());
        assert!(
            warnings[0]
                .contains("alerts go to kafka:9092 in clear (security.protocol = PLAINTEXT)"),
            "{warnings:?}"
        );
    }

    #[test]
    fn verification_switches_are_named() {
        let off = properties(&[
            ("security.protocol", "SSL"),
            ("enable.ssl.certificate.verification", "false"),
            ("ssl.endpoint.identification.algorithm", "none"),
        ]);
        let (problems, warnings) = check("sinks[0]", "kafka:9093", &off);
        assert!(problems.is_empty());
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].contains("enable.ssl.certificate.verification = false"));
        assert!(warnings[1].contains("ssl.endpoint.identification.algorithm = none"));
    }
}
