//! The Kafka sink over TLS against a real broker: tansu behind a TLS front whose certificate a
//! test CA signed (`common::kafka::TlsFront`). With the CA in `ssl.ca.location` every alert
//! arrives once; without it, `check --connect` and the running daemon say that the broker's
//! certificate was refused and where the CA goes, and nothing is committed.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::certs::TestCa;
use common::kafka::{consume_all_with, kafka_sink, TlsFront};
use common::*;

const TOPIC: &str = "mde-alerts";

/// The librdkafka table of a sink that speaks TLS, trusting `ca` when given.
fn tls_properties(ca: Option<&std::path::Path>) -> String {
    let mut table = "[sinks.librdkafka]\n\"security.protocol\" = \"SSL\"\n".to_string();
    if let Some(ca) = ca {
        table.push_str(&format!("\"ssl.ca.location\" = \"{}\"\n", ca.display()));
    }
    table
}

/// A broker behind TLS with the topic in `partitions`, its test CA, and the emulator with
/// `users` users and `files` files watched, in a config whose Kafka sink has `extra(ca)`.
/// Everything lives as long as this does: bind it whole.
struct TlsSetup {
    front: TlsFront,
    ca: TestCa,
    fixture: Fixture,
    config: std::path::PathBuf,
    _certificates: tempfile::TempDir,
}

async fn tls_setup(
    partitions: u32,
    (users, files): (usize, usize),
    extra: impl Fn(&TestCa) -> String,
) -> TlsSetup {
    let certificates = tempfile::tempdir().unwrap();
    let ca = TestCa::new(certificates.path());
    let front = TlsFront::start(&ca.server("broker", 1)).await;
    front.tansu.create_topic(TOPIC, partitions);
    let fixture = Fixture::start(universe_of(7, 20, 20), fast_limits(), users, files).await;
    let sink = kafka_sink(&front.brokers(), TOPIC, &extra(&ca));
    let config = write_config(fixture.dir.path(), &fixture.sim, &fixture.watch, &sink);
    TlsSetup {
        front,
        ca,
        fixture,
        config,
        _certificates: certificates,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_reach_a_broker_over_tls_that_ssl_ca_location_trusts() {
    let setup = tls_setup(2, (6, 6), |ca| tls_properties(Some(&ca.pem))).await;
    let TlsSetup {
        front, ca, config, ..
    } = &setup;
    let Fixture { sim, watch, .. } = &setup.fixture;

    let checked = stdout_of(&["check", "--connect"], config).await;
    says(&checked, "kafka: OK");
    says(
        &checked,
        &format!(
            "kafka {} over TLS (SSL), brokers' certificates verified against {} (ssl.ca.location)",
            front.brokers(),
            ca.pem.display()
        ),
    );

    run_ok(&["once"], config).await;
    let expected = sim.expected_ids(&watch.users, &watch.files);
    assert!(!expected.is_empty());
    let brokers = front.brokers();
    let ca_location = ca.pem.display().to_string();
    let messages = tokio::task::spawn_blocking(move || {
        let properties = [
            ("security.protocol", "SSL"),
            ("ssl.ca.location", ca_location.as_str()),
        ];
        consume_all_with(&brokers, &properties, TOPIC, 1, Duration::from_secs(30))
    })
    .await
    .unwrap();
    let keys: Vec<String> = messages.into_iter().map(|m| m.key).collect();
    assert_eq!(keys.len(), expected.len(), "each alert exactly once");
    assert_eq!(keys.into_iter().collect::<BTreeSet<_>>(), expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_certificate_from_an_unknown_ca_is_named_and_nothing_is_committed() {
    let short = "message_timeout = \"2s\"\nflush_timeout = \"2s\"\n";
    let setup = tls_setup(1, (3, 0), |_| format!("{short}{}", tls_properties(None))).await;
    let TlsSetup { front, config, .. } = &setup;

    let output = run(&["check", "--connect"], config).await;
    assert!(!output.status.success(), "{}", show(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    says(
        &stdout,
        &format!(
            "error: sink kafka: the TLS handshake with the brokers at {} failed",
            front.brokers()
        ),
    );
    says(&stdout, "certificate verify failed");
    says(&stdout, "ssl.ca.location");

    // The running daemon says it too, once, counts it on /metrics, and commits nothing while
    // it cannot deliver.
    let port = common::kafka::free_port();
    let metrics = format!("\n[telemetry]\nlisten = \"127.0.0.1:{port}\"\n");
    std::fs::OpenOptions::new()
        .append(true)
        .open(config)
        .and_then(|mut file| std::io::Write::write_all(&mut file, metrics.as_bytes()))
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let counted = scrape::until_at_least(&base, "mdewatch_kafka_client_errors_total", 1.0);
    let stderr = run_undeliverable(config, Duration::from_secs(5), counted).await;
    let said = "Kafka client error; counted in mdewatch_kafka_client_errors_total";
    says(&stderr, said);
    says(&stderr, "code=\"SSL\"");
    says(&stderr, "certificate verify failed");
    assert_eq!(
        stderr.matches(said).count(),
        1,
        "said once, repeats at debug: {stderr}"
    );
}
