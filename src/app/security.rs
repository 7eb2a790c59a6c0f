//! `check`'s "security:" summary: for each place data goes, whether it is encrypted and verified,
//! stays on this host, or travels in clear; and where the credential rests. Pure: a config in,
//! lines out.

use crate::config::{Config, SecretSource, SinkKind};
use crate::exposure::{self, UrlReach};
use crate::sinks::kafka::security::Transport;
use crate::sinks::syslog::SyslogTransport;
use crate::sinks::Choice;

/// One line per destination, each starting with what it is.
pub fn summary(config: &Config) -> Vec<String> {
    let mut lines = vec![api(config), credential(config)];
    lines.extend(config.sinks.iter().map(|sink| {
        let how = match &sink.kind {
            SinkKind::File(file) => format!(
                "local file {} (mode 0640, directory 0750)",
                file.path.display()
            ),
            SinkKind::Stdout => "stdout (wherever it is sent)".to_string(),
            SinkKind::Syslog(syslog) => syslog_line(syslog),
            SinkKind::Kafka(kafka) => {
                let line = kafka_line(&kafka.brokers, &Transport::of(&kafka.librdkafka.0));
                match &kafka.password_file {
                    Some(file) => format!("{line}; SASL password from {}", file.display()),
                    None => line,
                }
            }
        };
        format!("sink {}: {how}", sink.name)
    }));
    if let Some(listen) = config.telemetry.listen {
        lines.push(format!(
            "/metrics and /healthz: on {listen} (loopback only)"
        ));
    }
    if let Some(url) = &config.telemetry.otlp_endpoint {
        let roots = match &config.telemetry.otlp_ca_file {
            Some(path) => format!(
                "the Mozilla roots and {} (telemetry.otlp_ca_file)",
                path.display()
            ),
            None => "the Mozilla roots".to_string(),
        };
        let mut line = format!("OTLP: {}", url_line(url, &roots));
        if let Some(file) = &config.telemetry.otlp_headers_file {
            line.push_str(&format!(
                "; headers from {} (values not shown)",
                file.display()
            ));
        }
        lines.push(line);
    }
    lines
}

/// How `url` is reached: verified TLS, plain HTTP on this host, or in clear.
fn url_line(url: &str, roots: &str) -> String {
    match exposure::url_reach(url) {
        Some(UrlReach::Tls) => format!("{url} over TLS, certificate verified against {roots}"),
        Some(UrlReach::Local) => format!("{url}, plain HTTP on this host"),
        _ => format!("{url} IN CLEAR"),
    }
}

fn api(config: &Config) -> String {
    let api = &config.api;
    let roots = match &api.ca_file {
        Some(path) => format!("the Mozilla roots and {} (api.ca_file)", path.display()),
        None => "the Mozilla roots".to_string(),
    };
    let mut line = format!(
        "api: alerts from {}; token from {}",
        url_line(&api.api_base, &roots),
        url_line(&api.login_base, &roots)
    );
    if api.allow_insecure_http {
        line.push_str(" (api.allow_insecure_http = true)");
    }
    if let Some(proxy) = &api.proxy {
        line.push_str(&format!(
            "; through the proxy {proxy} (HTTPS stays end to end through its CONNECT tunnel)"
        ));
        // Plain HTTP to the proxy: what it is sent itself (its credentials, the CONNECT line)
        // travels in clear, unless it is on this host.
        let in_clear = matches!(
            exposure::url_reach(proxy.expose()),
            Some(UrlReach::InClear { .. })
        );
        if proxy.has_credentials() && in_clear {
            line.push_str("; the proxy's credentials go to it IN CLEAR (an http:// proxy)");
        }
    }
    line
}

fn credential(config: &Config) -> String {
    match (&config.api.certificate, &config.api.secret_source) {
        (Some(credential), _) => format!(
            "credential: certificate {}, key from {}; the key never leaves this host",
            credential.path.display(),
            credential.key_source
        ),
        (None, Some(SecretSource::Credential(name))) => format!(
            "credential: client secret from the systemd credential {name} (guarded by systemd)"
        ),
        (None, Some(SecretSource::File(path))) => {
            let mode = exposure::mode_of(path)
                .map(|mode| format!("mode {mode:04o}"))
                .unwrap_or_else(|err| err.to_string());
            format!(
                "credential: client secret from the file {} ({mode})",
                path.display()
            )
        }
        (None, Some(source @ SecretSource::Env(_))) => format!(
            "credential: client secret from the {source}; the service's environment is readable by root and its own user"
        ),
        (None, None) => "credential: none configured".to_string(),
    }
}

fn syslog_line(syslog: &crate::sinks::syslog::SyslogSettings) -> String {
    let transport = syslog.transport.name();
    match syslog.transport {
        SyslogTransport::Tls => format!(
            "syslog over TLS to {}, certificate verified against {}{}",
            syslog.address,
            syslog
                .ca_file
                .as_ref()
                .map_or("the Mozilla roots".to_string(), |path| path
                    .display()
                    .to_string()),
            if syslog.cert_file.is_some() {
                ", with a client certificate"
            } else {
                ""
            }
        ),
        SyslogTransport::Unix => format!("syslog on the local socket {}", syslog.address),
        _ if syslog.clear_host().is_some() => {
            format!("syslog over {transport} to {} IN CLEAR", syslog.address)
        }
        _ => format!(
            "syslog over {transport} to {} (stays on this host)",
            syslog.address
        ),
    }
}

fn kafka_line(brokers: &str, transport: &Transport) -> String {
    let sasl = transport
        .mechanism
        .as_ref()
        .map(|mechanism| format!(", SASL {mechanism}"))
        .unwrap_or_default();
    let protocol = &transport.protocol;
    if transport.encrypted() {
        if transport.unverified.is_empty() {
            let roots = match &transport.ca_location {
                Some(location) => format!("{location} (ssl.ca.location)"),
                None => "OpenSSL's default CA store".to_string(),
            };
            format!(
                "kafka {brokers} over TLS ({protocol}{sasl}), brokers' certificates verified against {roots}"
            )
        } else {
            format!(
                "kafka {brokers} over TLS ({protocol}{sasl}) WITHOUT verifying the brokers ({})",
                transport.unverified.join(", ")
            )
        }
    } else if exposure::first_remote(brokers.split(',')).is_none() {
        format!("kafka {brokers} ({protocol}{sasl}, stays on this host)")
    } else {
        format!("kafka {brokers} IN CLEAR ({protocol}{sasl})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_destination_says_how_it_is_reached() {
        let dir = crate::testing::with_secret_dir();
        let text = concat!(
            crate::config::test_config_head!(),
            r#"[[sinks]]
type = "syslog"
address = "relay.corp:514"
[[sinks]]
type = "kafka"
brokers = "kafka.corp:9093"
topic = "alerts"
[sinks.librdkafka]
"security.protocol" = "SASL_SSL"
"sasl.mechanism" = "SCRAM-SHA-512"
[telemetry]
otlp_endpoint = "http://127.0.0.1:4318"
"#
        );
        let config = Config::from_toml(text, "x.toml", dir.path(), false).unwrap();
        let lines = summary(&config);
        assert_eq!(
            lines[0],
            "api: alerts from https://api.security.microsoft.com over TLS, certificate verified against the Mozilla roots; \
             token from https://login.microsoftonline.com over TLS, certificate verified against the Mozilla roots"
        );
        assert!(lines[1].ends_with("secret.txt (mode 0600)"), "{lines:?}");
        assert_eq!(
            lines[2],
            "sink syslog-0: syslog over tcp to relay.corp:514 IN CLEAR"
        );
        assert_eq!(
            lines[3],
            "sink kafka-1: kafka kafka.corp:9093 over TLS (SASL_SSL, SASL SCRAM-SHA-512), brokers' certificates verified against OpenSSL's default CA store"
        );
        assert_eq!(
            lines[4],
            "OTLP: http://127.0.0.1:4318, plain HTTP on this host"
        );
    }

    #[test]
    fn a_proxy_is_shown_without_its_credentials_and_an_http_one_said_to_be_in_clear() {
        let dir = crate::testing::with_secret_dir();
        let head = crate::config::test_config_head!();
        let sink = "[[sinks]]\ntype = \"file\"\npath = \"out.ndjson\"\n";
        let with_proxy = |proxy: &str| {
            let text = head.replace("[watchlist]", &format!("proxy = \"{proxy}\"\n[watchlist]"));
            let config =
                Config::from_toml(&format!("{text}{sink}"), "x.toml", dir.path(), false).unwrap();
            assert!(
                !format!("{config:?}").contains("s3cret"),
                "Debug shows the password"
            );
            summary(&config).remove(0)
        };
        let line = with_proxy("http://alice:s3cret@proxy.corp:3128");
        assert!(
            line.ends_with(
                "; through the proxy http://***@proxy.corp:3128 (HTTPS stays end to end through \
                 its CONNECT tunnel); the proxy's credentials go to it IN CLEAR (an http:// proxy)"
            ),
            "{line}"
        );
        let line = with_proxy("https://alice:s3cret@proxy.corp:3128");
        assert!(
            line.ends_with(
                "https://***@proxy.corp:3128 (HTTPS stays end to end through its CONNECT tunnel)"
            ),
            "{line}"
        );
        let line = with_proxy("http://proxy.corp:3128");
        assert!(!line.contains("IN CLEAR"), "{line}");
        let line = with_proxy("http://alice:s3cret@127.0.0.1:3128");
        assert!(!line.contains("IN CLEAR"), "a proxy on this host: {line}");
    }
}
