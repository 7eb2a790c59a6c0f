//! One poll, three sinks, three formats: a file with ECS for Elastic, syslog with CEF for
//! Sentinel, Kafka with OCSF for the data lake. Each receives every alert once, in its format.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::kafka::{consume_all, Tansu};
use common::rsyslog::Rsyslog;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_poll_feeds_file_ecs_syslog_cef_and_kafka_ocsf() {
    let dir = tempfile::tempdir().unwrap();
    let rsyslog = Rsyslog::start(dir.path(), None);
    let tansu = Tansu::start();
    tansu.create_topic("lake", 2);
    let sim = start_sim(universe_of(21, 20, 20), fast_limits()).await;
    let watch = Watch::first(&sim, 12, 12);
    let sinks = format!(
        "[[sinks]]\ntype = \"syslog\"\naddress = \"127.0.0.1:{}\"\ntransport = \"tcp\"\nformat = \"cef\"\n\
         [[sinks]]\ntype = \"kafka\"\nbrokers = \"{}\"\ntopic = \"lake\"\nformat = \"ocsf\"\n",
        rsyslog.tcp_port,
        tansu.brokers()
    );
    let config = write_config(dir.path(), &sim, &watch, &sinks);
    run_ok(&["once"], &config).await;
    let expected = sim.expected_ids(&watch.users, &watch.files);

    assert_eq!(file_ids(dir.path()), expected, "file: ECS");

    let brokers = tansu.brokers();
    let count = expected.len();
    let messages = tokio::task::spawn_blocking(move || {
        consume_all(&brokers, "lake", count, Duration::from_secs(30))
    })
    .await
    .unwrap();
    let mut lake = BTreeSet::new();
    for message in &messages {
        let finding: serde_json::Value = serde_json::from_slice(&message.payload).unwrap();
        assert_eq!(finding["class_uid"], 2004);
        assert_eq!(message.headers["format"], "ocsf");
        lake.insert(finding["finding_info"]["uid"].as_str().unwrap().to_string());
    }
    assert_eq!(messages.len(), count);
    assert_eq!(lake, expected, "kafka: OCSF");

    let lines =
        tokio::task::spawn_blocking(move || rsyslog.wait_for(count, Duration::from_secs(20)))
            .await
            .unwrap();
    assert_eq!(lines.len(), count);
    let sentinel: BTreeSet<String> = lines
        .iter()
        .map(|line| {
            let cef = line
                .split_once("] CEF:0|Microsoft|Defender for Endpoint|")
                .expect("CEF after the structured data")
                .1;
            let id = cef
                .split("externalId=")
                .nth(1)
                .unwrap()
                .split(' ')
                .next()
                .unwrap();
            id.to_string()
        })
        .collect();
    assert_eq!(sentinel, expected, "syslog: CEF");
}
