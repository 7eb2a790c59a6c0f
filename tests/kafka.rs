//! The Kafka sink against a real broker (tansu on a free loopback port): what goes in comes back
//! out with its key and headers, a frozen broker loses nothing and gets nothing committed, a
//! daemon killed over and over loses nothing, and bad settings are explained.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use common::kafka::{consume_all, kafka_sink, Tansu};
use common::*;
use mde_watch::app::{Scope, Service};
use mde_watch::config::Config;
use mde_watch::shutdown;
use mde_watch::sim::UniverseSpec;

const TOPIC: &str = "mde-alerts";

fn universe() -> UniverseSpec {
    universe_of(5, 50, 50)
}

async fn consume(tansu: &Tansu, expected: usize) -> Vec<common::kafka::Consumed> {
    let brokers = tansu.brokers();
    tokio::task::spawn_blocking(move || {
        consume_all(&brokers, TOPIC, expected, Duration::from_secs(30))
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_come_back_from_the_topic_with_keys_headers_and_the_file_payload() {
    let tansu = Tansu::start();
    tansu.create_topic(TOPIC, 3);
    let Fixture { sim, watch, dir } = Fixture::start(universe(), fast_limits(), 20, 20).await;
    let config = write_config(
        dir.path(),
        &sim,
        &watch,
        &kafka_sink(&tansu.brokers(), TOPIC, ""),
    );

    run_ok(&["once"], &config).await;
    let expected = sim.expected_ids(&watch.users, &watch.files);
    let messages = consume(&tansu, expected.len()).await;
    let keys: Vec<String> = messages.iter().map(|m| m.key.clone()).collect();
    assert_eq!(keys.len(), expected.len(), "each alert exactly once");
    assert_eq!(keys.iter().cloned().collect::<BTreeSet<_>>(), expected);

    // The payload is byte for byte what the file sink wrote for the same alert.
    let file = std::fs::read_to_string(dir.path().join("alerts.ndjson")).unwrap();
    let by_id: BTreeMap<String, &str> = file
        .lines()
        .map(|line| {
            let event: serde_json::Value = serde_json::from_str(line).unwrap();
            (event["event"]["id"].as_str().unwrap().to_string(), line)
        })
        .collect();
    for message in &messages {
        assert_eq!(
            std::str::from_utf8(&message.payload).unwrap(),
            by_id[&message.key]
        );
        let event: serde_json::Value = serde_json::from_slice(&message.payload).unwrap();
        assert_eq!(message.headers["format"], "ecs");
        assert_eq!(
            message.headers["schema_version"],
            mde_watch::EVENT_SCHEMA_VERSION.to_string()
        );
        let severity = event["microsoft"]["defender_endpoint"]["severity"]
            .as_str()
            .unwrap_or("UnSpecified")
            .to_lowercase();
        assert_eq!(message.headers["severity"], severity);
        let kinds: Vec<&str> = event["mde_watch"]["matches"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["kind"].as_str().unwrap())
            .collect();
        let expected_kind = if kinds.contains(&"user") && kinds.contains(&"file") {
            "user,file"
        } else {
            kinds[0]
        };
        assert_eq!(message.headers["match_kind"], expected_kind);
        let created =
            mde_watch::defender::time::parse(event["@timestamp"].as_str().unwrap()).unwrap();
        assert_eq!(
            message.timestamp,
            Some(created.timestamp_millis()),
            "the message time is the alert's"
        );
    }

    // A restart after a clean run publishes nothing.
    run_ok(&["once"], &config).await;
    assert_eq!(consume(&tansu, expected.len()).await.len(), expected.len());
}

/// A broker with the topic in `partitions`, the emulator with `watched` users and files, and a
/// config sending to the broker with these message and flush timeouts.
async fn with_kafka(
    partitions: u32,
    (users, files): (usize, usize),
    (message_timeout, flush_timeout): (&str, &str),
) -> (Tansu, Fixture, PathBuf) {
    let tansu = Tansu::start();
    tansu.create_topic(TOPIC, partitions);
    let fixture = Fixture::start(universe(), fast_limits(), users, files).await;
    let timeouts =
        format!("message_timeout = \"{message_timeout}\"\nflush_timeout = \"{flush_timeout}\"");
    let sink = kafka_sink(&tansu.brokers(), TOPIC, &timeouts);
    let path = write_config(fixture.dir.path(), &fixture.sim, &fixture.watch, &sink);
    (tansu, fixture, path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_broker_loses_nothing_and_nothing_is_committed_meanwhile() {
    let (tansu, fixture, path) = with_kafka(2, (15, 15), ("1500ms", "2s")).await;
    let Fixture { sim, watch, .. } = &fixture;
    // Only Kafka: the file sink would otherwise be written while Kafka is down.
    without_file_sink(&path);

    let mut service =
        Service::build(Config::load(&path).unwrap(), shutdown::Shutdown::never()).unwrap();
    tansu.signal("-STOP");
    let sweep = tokio::spawn(async move {
        let report = service.sweep(Scope::Full).await.map(|_| ());
        (service, report)
    });
    // Longer than message.timeout.ms: librdkafka gives up on the messages and reports failure.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(
        !sweep.is_finished(),
        "the sweep must wait for the broker, not finish"
    );
    tansu.signal("-CONT");
    let (service, report) = tokio::time::timeout(Duration::from_secs(90), sweep)
        .await
        .expect("delivers after the broker resumes")
        .unwrap();
    report.unwrap();
    assert!(
        service.counters().sink_failures >= 1,
        "the frozen broker made deliveries fail: {:?}",
        service.counters()
    );
    let expected = sim.expected_ids(&watch.users, &watch.files);
    assert_eq!(
        service
            .store()
            .seen_ids()
            .unwrap()
            .into_iter()
            .collect::<BTreeSet<_>>(),
        expected
    );
    drop(service);
    let keys: BTreeSet<String> = consume(&tansu, expected.len())
        .await
        .into_iter()
        .map(|m| m.key)
        .collect();
    assert_eq!(keys, expected, "zero alerts lost");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_undelivered_is_committed_while_the_broker_is_frozen() {
    let (tansu, _fixture, path) = with_kafka(1, (10, 0), ("1s", "1s")).await;
    let (trigger, stop) = shutdown::channel();
    let mut service = Service::build(Config::load(&path).unwrap(), stop).unwrap();
    tansu.signal("-STOP");
    let outcome = sweep_stopped_after(&mut service, trigger, Duration::from_secs(4)).await;
    assert!(
        outcome.is_err(),
        "stopping while Kafka is down leaves the batch undelivered"
    );
    assert!(
        service.store().seen_ids().unwrap().is_empty(),
        "undelivered alerts were committed"
    );
    tansu.signal("-CONT");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_daemon_ten_times_loses_nothing() {
    let tansu = Tansu::start();
    tansu.create_topic(TOPIC, 3);
    let Fixture { sim, watch, dir } = Fixture::start(universe(), fast_limits(), 40, 20).await;
    let batch_entries = 4;
    let extra = format!(
        "[pipeline]\nbatch_entries = {batch_entries}\nconcurrency = 2\n{}",
        kafka_sink(&tansu.brokers(), TOPIC, "")
    );
    let path = write_config(dir.path(), &sim, &watch, &extra);
    let mut delays = [350u64, 900, 150, 1300, 600, 250, 1100, 450, 800, 200].into_iter();
    for _ in 0..10 {
        let mut daemon = spawn(&["once"], &path, "error");
        tokio::time::sleep(Duration::from_millis(delays.next().unwrap())).await;
        let _ = daemon.start_kill();
        let _ = daemon.wait().await;
    }
    run_ok(&["once"], &path).await;

    let expected = sim.expected_ids(&watch.users, &watch.files);
    let messages = consume(&tansu, expected.len()).await;
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for message in &messages {
        *counts.entry(&message.key).or_default() += 1;
    }
    let got: BTreeSet<String> = counts.keys().map(|k| k.to_string()).collect();
    assert_eq!(got, expected, "zero alerts lost");
    // Each kill can repeat at most the batches in flight (pipeline.in_flight_batches, default 2).
    let duplicates: usize = counts.values().map(|n| n - 1).sum();
    let most_alerts_per_entry = 8; // max_alerts_per_user 4, plus file-only alerts
    let in_flight = 2;
    assert!(
        duplicates <= 10 * in_flight * batch_entries * most_alerts_per_entry,
        "{duplicates} duplicates"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_kafka_settings_are_explained_and_run_survives_them() {
    let tansu = Tansu::start();
    let Fixture { sim, watch, dir } = Fixture::start(universe(), fast_limits(), 3, 0).await;

    let nobody = format!("127.0.0.1:{}", common::kafka::free_port());
    // `check --connect` with one Kafka sink: whether it passed, and what it printed.
    let check_connect = |brokers: &str, topic: &str, extra: &str| {
        let path = write_config(dir.path(), &sim, &watch, &kafka_sink(brokers, topic, extra));
        async move {
            let output = run(&["check", "--connect"], &path).await;
            let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
            assert!(!output.status.success(), "{stdout}");
            stdout
        }
    };
    let short = "message_timeout = \"1s\"\nflush_timeout = \"1s\"";
    let stdout = check_connect(&nobody, TOPIC, short).await;
    says(
        &stdout,
        &format!("error: sink kafka: cannot reach the Kafka brokers at {nobody}"),
    );

    // The topic was never created: check says so instead of letting the first write guess.
    let stdout = check_connect(&tansu.brokers(), "no-such-topic", "").await;
    says(
        &stdout,
        "error: sink kafka: topic no-such-topic does not exist",
    );

    let sasl = "[sinks.librdkafka]\n\"security.protocol\" = \"SASL_PLAINTEXT\"\n\"sasl.mechanism\" = \"PLAIN\"\n\"sasl.username\" = \"mde\"\n\"sasl.password\" = \"hunter2-kafka\"";
    let stdout = check_connect(&tansu.brokers(), TOPIC, sasl).await;
    says(&stdout, "error: sink kafka:");
    assert!(
        !stdout.contains("hunter2-kafka"),
        "the SASL password leaked: {stdout}"
    );

    // `run` with an unreachable broker keeps running, commits nothing, and stops cleanly.
    let path = write_config(dir.path(), &sim, &watch, &kafka_sink(&nobody, TOPIC, short));
    let stderr = run_undeliverable(&path, Duration::from_secs(4), async {}).await;
    says(&stderr, "sink failed; retrying");
}
