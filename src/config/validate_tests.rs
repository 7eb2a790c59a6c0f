//! Tests of the config's loading and validation: documented defaults, every problem listed with its
//! key and file, limits that warn, secrets kept out of Debug.

use super::*;
use crate::testing::{private, says, with_secret_dir};

const MINIMAL: &str = concat!(
    test_config_head!(),
    r#"[[sinks]]
type = "file"
path = "out/alerts.ndjson"
"#
);

#[test]
fn minimal_config_gets_documented_defaults() {
    let dir = with_secret_dir();
    let config = Config::from_toml(MINIMAL, "test.toml", dir.path(), false).unwrap();
    assert_eq!(config.limits, limiter::DOCUMENTED_LIMITS.to_vec());
    assert_eq!(config.schedule.cron, "0 */5 * * * *");
    assert_eq!(config.api.api_base, "https://api.security.microsoft.com");
    assert_eq!(config.store.retention, Duration::from_secs(90 * 86_400));
    assert_eq!(config.store.flush_interval, Duration::from_millis(100));
    assert_eq!(config.updates, UpdatePolicy::Ignore);
    assert_eq!(config.pipeline.queue_bytes, 2 << 20);
    let SinkKind::File(file) = &config.sinks[0].kind else {
        panic!("file sink expected")
    };
    assert_eq!(file.path, dir.path().join("out/alerts.ndjson"));
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
}

#[test]
fn unknown_key_names_key_and_file() {
    let dir = with_secret_dir();
    let text = MINIMAL.replace("[watchlist]", "[watchlist]\nuserz = [\"x\"]");
    let err = Config::from_toml(&text, "conf/x.toml", dir.path(), false).unwrap_err();
    let message = err.to_string();
    says(&message, "unknown key 'watchlist.userz' in conf/x.toml");
}

#[test]
fn unknown_keys_are_all_named_with_the_other_problems() {
    let dir = with_secret_dir();
    let text = MINIMAL
        .replace("[watchlist]", "[watchlist]\nuserz = [\"x\"]")
        .replace(
            "path = \"out/alerts.ndjson\"",
            "path = \"out/alerts.ndjson\"\nmax_sise = \"1MiB\"\nformat = \"xml\"",
        );
    let err = Config::from_toml(&text, "conf/x.toml", dir.path(), false).unwrap_err();
    let mut problems = err.problems.clone();
    problems.sort();
    assert_eq!(
        problems,
        [
            "sinks[0].format: 'xml' is not a format (ecs | raw | cef | ocsf | splunk | splunk_hec)",
            "unknown key 'sinks[0].max_sise' in conf/x.toml",
            "unknown key 'watchlist.userz' in conf/x.toml",
        ],
    );
}

#[test]
fn an_unknown_key_from_the_environment_names_its_variable() {
    let dir = with_secret_dir();
    let name = "MDE_WATCH__TELEMETRY__LISTEN_ADDRESS";
    std::env::set_var(name, "127.0.0.1:9464");
    let err = Config::from_toml(MINIMAL, "conf/x.toml", dir.path(), true).unwrap_err();
    std::env::remove_var(name);
    assert_eq!(
        err.problems,
        [format!(
            "unknown key 'telemetry.listen_address' in environment variable {name}"
        )]
    );
}

#[test]
fn a_value_of_the_wrong_type_names_its_key() {
    let dir = with_secret_dir();
    let text = MINIMAL.replace(
        "path = \"out/alerts.ndjson\"",
        "path = \"o\"\nkeep = \"many\"",
    );
    let err = Config::from_toml(&text, "conf/x.toml", dir.path(), false).unwrap_err();
    assert_eq!(err.problems.len(), 1, "{err}");
    assert!(
        err.problems[0].starts_with("sinks[0].keep: ") && err.problems[0].contains("many"),
        "{err}"
    );
}

#[test]
fn every_problem_is_listed() {
    let dir = with_secret_dir();
    let text = MINIMAL
        .replace(
            "users = [\"user1\"]",
            "users = [\"a|b\"]\nfiles = [\"d41d8cd98f00b204e9800998ecf8427e\"]",
        )
        .replace(
            "[watchlist]",
            "[schedule]\ncron = \"every five minutes\"\n[watchlist]",
        );
    let err = Config::from_toml(&text, "x.toml", dir.path(), false).unwrap_err();
    let message = err.to_string();
    says(&message, "schedule.cron");
    says(&message, "watchlist.users[0]");
    says(&message, "looks like MD5");
    assert_eq!(err.problems.len(), 3, "{message}");
}

#[test]
fn queue_bytes_are_read_and_checked() {
    let dir = with_secret_dir();
    let with = |value: &str| format!("{MINIMAL}\n[pipeline]\nqueue_bytes = \"{value}\"\n");
    let config = Config::from_toml(&with("16MiB"), "x.toml", dir.path(), false).unwrap();
    assert_eq!(config.pipeline.queue_bytes, 16 << 20);
    let err = Config::from_toml(&with("1KiB"), "x.toml", dir.path(), false).unwrap_err();
    assert!(
        err.to_string()
            .contains("pipeline.queue_bytes: '1KiB' is too small"),
        "{err}"
    );
    let err = Config::from_toml(&with("lots"), "x.toml", dir.path(), false).unwrap_err();
    assert!(err.to_string().contains("pipeline.queue_bytes"), "{err}");
}

#[test]
fn the_store_flush_interval_is_at_most_a_second() {
    let dir = with_secret_dir();
    let with = |value: &str| format!("{MINIMAL}\n[store]\nflush_interval = \"{value}\"\n");
    let config = Config::from_toml(&with("0s"), "x.toml", dir.path(), false).unwrap();
    assert_eq!(config.store.flush_interval, Duration::ZERO);
    let config = Config::from_toml(&with("250ms"), "x.toml", dir.path(), false).unwrap();
    assert_eq!(config.store.flush_interval, Duration::from_millis(250));
    let err = Config::from_toml(&with("5s"), "x.toml", dir.path(), false).unwrap_err();
    assert!(
        err.to_string()
            .contains("store.flush_interval: '5s' is longer than a second"),
        "{err}"
    );
    let err = Config::from_toml(&with("soon"), "x.toml", dir.path(), false).unwrap_err();
    assert!(
        err.to_string().contains("store.flush_interval: 'soon'"),
        "{err}"
    );
}

#[test]
fn generous_limits_warn_loudly() {
    let dir = with_secret_dir();
    let text = format!("{MINIMAL}\n[[limits.window]]\ncalls = 1000\nper = \"1s\"\n");
    let config = Config::from_toml(&text, "x.toml", dir.path(), false).unwrap();
    assert!(
        config
            .warnings
            .iter()
            .any(|w| w.contains("ABOVE THE DOCUMENTED")),
        "{:?}",
        config.warnings
    );
}

#[test]
fn a_proxy_url_refused_is_named_without_its_credentials() {
    let dir = with_secret_dir();
    for proxy in [
        "socks5://alice:s3cret@proxy.corp.example:1080",
        "http://alice:s3cret@proxy.corp.example:99999",
        "alice:s3cret@proxy.corp.example",
    ] {
        let text = MINIMAL.replace("[watchlist]", &format!("proxy = \"{proxy}\"\n[watchlist]"));
        let err = Config::from_toml(&text, "x.toml", dir.path(), false).unwrap_err();
        let message = err.to_string();
        says(&message, "api.proxy: '");
        says(&message, "***@proxy.corp.example");
        assert!(
            !message.contains("s3cret") && !message.contains("alice"),
            "{message}"
        );
    }
}

#[test]
fn secret_never_in_debug_output() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("secret.txt"), "TOPSECRET-VALUE").unwrap();
    private(&dir.path().join("secret.txt"));
    let config = Config::from_toml(MINIMAL, "x.toml", dir.path(), false).unwrap();
    assert!(!format!("{config:?}").contains("TOPSECRET"));
}

#[test]
fn an_otlp_ca_file_is_read_at_load_and_named_when_it_is_not_a_certificate() {
    let dir = with_secret_dir();
    let with = |file: &str| {
        format!("{MINIMAL}\n[telemetry]\notlp_endpoint = \"https://collector.example:4318\"\notlp_ca_file = \"{file}\"\n")
    };
    std::fs::write(dir.path().join("not-a-ca.pem"), "hello\n").unwrap();
    let err = Config::from_toml(&with("not-a-ca.pem"), "x.toml", dir.path(), false).unwrap_err();
    says(&err.to_string(), "telemetry.otlp_ca_file: ");
    says(&err.to_string(), "not-a-ca.pem holds no PEM certificate");
    let err = Config::from_toml(&with("missing.pem"), "x.toml", dir.path(), false).unwrap_err();
    says(&err.to_string(), "telemetry.otlp_ca_file: cannot read ");
    says(&err.to_string(), "missing.pem");
    let config = Config::from_toml(MINIMAL, "x.toml", dir.path(), false).unwrap();
    assert_eq!(config.telemetry.otlp_ca_file, None);
    // Without an endpoint the file is read (a wrong one is still an error) but said unused.
    let certificate = include_bytes!("../../tests/fixtures/cert/app.pem");
    std::fs::write(dir.path().join("ca.pem"), certificate).unwrap();
    let text = format!("{MINIMAL}\n[telemetry]\notlp_ca_file = \"ca.pem\"\n");
    let config = Config::from_toml(&text, "x.toml", dir.path(), false).unwrap();
    assert!(
        config.warnings.iter().any(|w| w.contains("telemetry.otlp_ca_file is set but telemetry.otlp_endpoint is not")),
        "{:?}",
        config.warnings
    );
}

#[test]
fn an_otlp_headers_file_is_private_well_formed_and_never_sent_in_clear() {
    let dir = with_secret_dir();
    let write =
        |text: &str, mode: u32| write_with_mode(&dir.path().join("otlp-headers"), text, mode);
    let load = |endpoint: &str| {
        let text = format!("{MINIMAL}\n[telemetry]\notlp_endpoint = \"{endpoint}\"\notlp_headers_file = \"otlp-headers\"\n");
        Config::from_toml(&text, "x.toml", dir.path(), false)
    };
    let refused = |endpoint: &str| load(endpoint).unwrap_err().to_string();
    write("x-api-key: hunter2\n", 0o600);
    let config = load("https://collector.example").unwrap();
    assert_eq!(config.telemetry.otlp_headers.len(), 1);
    assert!(!format!("{config:?}").contains("hunter2"));
    says(
        &refused("http://collector.example"),
        "telemetry.otlp_headers_file: its headers would go to collector.example in clear",
    );
    // This host's collector over http is fine.
    load("http://127.0.0.1:4318").unwrap();

    write("x-api-key: hunter2\n", 0o644);
    says(
        &refused("https://collector.example"),
        "can be read by every local user",
    );

    write("x-api-key hunter2\n", 0o600);
    let said = refused("https://collector.example");
    says(
        &said,
        "otlp-headers line 1: no ':' between a header's name and its value",
    );
    assert!(!said.contains("hunter2"), "{said}");
}

#[test]
fn a_kafka_password_file_is_private_read_once_and_never_shown() {
    let dir = with_secret_dir();
    let write =
        |text: &str, mode: u32| write_with_mode(&dir.path().join("kafka-password"), text, mode);
    let load = |inline: &str| {
        let text = format!(
            "{MINIMAL}\n[[sinks]]\ntype = \"kafka\"\nbrokers = \"kafka.example:9093\"\ntopic = \"alerts\"\n\
             password_file = \"kafka-password\"\n[sinks.librdkafka]\n\"security.protocol\" = \"SASL_SSL\"\n\
             \"sasl.mechanism\" = \"PLAIN\"\n{inline}"
        );
        Config::from_toml(&text, "x.toml", dir.path(), false)
    };
    let refused = |inline: &str| load(inline).unwrap_err().to_string();
    write("Endpoint=sb://ns.example/;SharedAccessKey=hunter2\n", 0o600);
    let config = load("").unwrap();
    let kafka = config
        .sinks
        .iter()
        .find_map(|sink| match &sink.kind {
            crate::config::SinkKind::Kafka(kafka) => Some(kafka),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        kafka.librdkafka.get("sasl.password"),
        Some("Endpoint=sb://ns.example/;SharedAccessKey=hunter2"),
        "the file's content without its newline"
    );
    assert!(!format!("{config:?}").contains("hunter2"));
    assert_eq!(
        kafka.password_file.as_deref(),
        Some(dir.path().join("kafka-password").as_path())
    );
    let summary = crate::app::security::summary(&config).join("\n");
    says(
        &summary,
        &format!(
            "SASL password from {}",
            dir.path().join("kafka-password").display()
        ),
    );
    assert!(!summary.contains("hunter2"), "{summary}");

    let said = refused("\"sasl.password\" = \"inline\"\n");
    says(
        &said,
        "sinks[1].password_file: the SASL password is also in sinks[1].librdkafka.\"sasl.password\"",
    );
    write("hunter2\n", 0o644);
    let said = refused("");
    says(&said, "sinks[1].password_file: ");
    says(&said, "can be read by every local user");
    write("\n", 0o600);
    says(&refused(""), "kafka-password is empty");
    std::fs::remove_file(dir.path().join("kafka-password")).unwrap();
    let said = refused("");
    says(&said, "sinks[1].password_file: cannot read ");
    assert!(!said.contains("hunter2"), "{said}");
}

/// Writes `text` at `path` with permission bits `mode` (a secret file as an operator left it).
fn write_with_mode(path: &std::path::Path, text: &str, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}
