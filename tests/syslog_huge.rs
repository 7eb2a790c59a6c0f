//! Alerts far larger than a stock rsyslog takes (8 KiB by default) reach it as whole events,
//! shrunk to fit, over UDP, TCP and TLS.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::rsyslog::{make_certs, parse_5424, syslog_sink, Certs, Rsyslog};
use common::*;
use mde_watch::sim::UniverseSpec;

/// Stock rsyslogds (8 KiB messages) take ECS, OCSF and CEF over UDP, TCP and TLS from one run on
/// alerts with a 100 KB description and 500 evidence entries each: every record they store is
/// one whole event of its format (JSON that parses, CEF the strict reader takes), within the
/// transport's default cap, each alert once per sink, and the shrunk ones say so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stock_rsyslog_stores_whole_events_of_huge_alerts_over_every_transport() {
    let dir = tempfile::tempdir().unwrap();
    let (plain_dir, tls_dir) = (dir.path().join("plain"), dir.path().join("tls"));
    std::fs::create_dir_all(&plain_dir).unwrap();
    std::fs::create_dir_all(&tls_dir).unwrap();
    let certs = make_certs(&tls_dir);
    let plain = Rsyslog::start_stock(&plain_dir, None);
    let tls = Rsyslog::start_stock(&tls_dir, Some(&certs));
    let huge = UniverseSpec {
        description_padding: 100_000,
        evidence_padding: 500,
        ..universe_of(9, 30, 30)
    };
    let sim = start_sim(huge, fast_limits()).await;
    let watch = Watch::first(&sim, 4, 2);
    let path = write_config(dir.path(), &sim, &watch, &nine_sinks(&plain, &tls, &certs));
    without_file_sink(&path);

    let stdout = stdout_of(&["check"], &path).await;
    assert!(
        stdout.contains("warning: sink udp-ocsf: a usual ocsf event is")
            && stdout.contains("over max_message 2048"),
        "check says a usual OCSF event does not fit a datagram: {stdout}"
    );
    let output = run_ok(&["once"], &path).await;
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("event over the sink's size limit"),
        "{}",
        show(&output)
    );
    let expected = sim.expected_ids(&watch.users, &watch.files);
    assert!(expected.len() >= 3, "a few huge alerts: {}", expected.len());
    let want = expected.len();
    let (plain_lines, tls_lines, _receivers) = tokio::task::spawn_blocking(move || {
        let plain_lines = plain.wait_for(6 * want, Duration::from_secs(30));
        let tls_lines = tls.wait_for(3 * want, Duration::from_secs(30));
        (plain_lines, tls_lines, (plain, tls))
    })
    .await
    .unwrap();

    let stored = Stored::read(&[("plain", &plain_lines), ("tls", &tls_lines)]);
    let (seen, datagram_sized, truncated) = (stored.seen, stored.datagram_sized, stored.truncated);
    assert_eq!(
        plain_lines.len(),
        6 * want,
        "plain rsyslog: one record per event, nothing more"
    );
    assert_eq!(
        tls_lines.len(),
        3 * want,
        "TLS rsyslog: one record per event, nothing more"
    );
    for format in ["ecs", "ocsf", "cef"] {
        for (receiver, sinks) in [("plain", 2), ("tls", 1)] {
            let counts = &seen[&(receiver, format.to_string())];
            assert_eq!(
                counts.keys().cloned().collect::<BTreeSet<_>>(),
                expected,
                "{receiver} {format}"
            );
            assert!(
                counts.values().all(|&n| n == sinks),
                "{receiver} {format}: {counts:?}"
            );
        }
        assert!(
            datagram_sized[format] >= want,
            "{format}: the UDP sink's events fit a datagram"
        );
    }
    assert!(
        truncated >= 2 * want,
        "huge alerts are shrunk and marked ({truncated})"
    );
}

/// Nine syslog sinks: ECS, OCSF and CEF over UDP and TCP to `plain`, and over TLS to `tls`.
fn nine_sinks(plain: &Rsyslog, tls: &Rsyslog, certs: &Certs) -> String {
    let mut sinks = String::new();
    let tls_extra = format!(
        "ca_file = \"{}\"\nserver_name = \"localhost\"\n",
        certs.ca.display()
    );
    for format in ["ecs", "ocsf", "cef"] {
        for (transport, port, extra) in [
            ("udp", plain.udp_port, ""),
            ("tcp", plain.tcp_port, ""),
            ("tls", tls.tcp_port, tls_extra.as_str()),
        ] {
            sinks.push_str(
                &syslog_sink(transport, port, extra)
                    .replace(
                        "name = \"syslog\"",
                        &format!("name = \"{transport}-{format}\""),
                    )
                    .replace("format = \"cef\"", &format!("format = \"{format}\"")),
            );
        }
    }
    sinks
}

/// One stored record read as its receiver would (strict CEF, whole JSON): its format, its
/// alert id, and whether it says it was shrunk.
fn read_record(line: &str) -> (String, String, bool) {
    let message = parse_5424(line);
    let id = message.params["alertId"].clone();
    let shrunk = match message.msgid.as_str() {
        "cef" => {
            let cef = common::receivers::strict_cef(&message.msg).unwrap_or_else(|p| {
                panic!("{p:?}: {}", &message.msg[..200.min(message.msg.len())])
            });
            assert_eq!(cef.get("externalId"), Some(id.as_str()));
            cef.get("flexString2")
                .is_some_and(|c| c.ends_with(",truncated"))
        }
        "ecs" | "ocsf" => {
            let event: serde_json::Value = serde_json::from_str(&message.msg).unwrap_or_else(|e| {
                let tail = message.msg.len().saturating_sub(80);
                panic!(
                    "{} record is not whole JSON ({e}): …{}",
                    message.msgid,
                    &message.msg[tail..]
                )
            });
            let provenance = event
                .get("mde_watch")
                .or_else(|| event["unmapped"].get("mde_watch"))
                .unwrap();
            provenance["truncated"] == true
        }
        other => panic!("unexpected msgid {other}"),
    };
    (message.msgid, id, shrunk)
}

/// What the receivers stored, counted.
struct Stored {
    /// (receiver, format) → alert id → records; the plain receiver has a UDP and a TCP sink.
    seen: BTreeMap<(&'static str, String), BTreeMap<String, usize>>,
    /// Records per format small enough for a datagram.
    datagram_sized: BTreeMap<String, usize>,
    /// Records that say they were shrunk.
    truncated: usize,
}

impl Stored {
    fn read(receivers: &[(&'static str, &Vec<String>)]) -> Stored {
        let mut stored = Stored {
            seen: BTreeMap::new(),
            datagram_sized: BTreeMap::new(),
            truncated: 0,
        };
        for &(receiver, lines) in receivers {
            for line in lines {
                assert!(line.len() <= 8192, "{} bytes stored by rsyslog", line.len());
                let (format, id, shrunk) = read_record(line);
                stored.truncated += usize::from(shrunk);
                if line.len() <= 2048 {
                    *stored.datagram_sized.entry(format.clone()).or_default() += 1;
                }
                *stored
                    .seen
                    .entry((receiver, format))
                    .or_default()
                    .entry(id)
                    .or_default() += 1;
            }
        }
        stored
    }
}
