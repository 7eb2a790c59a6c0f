//! The syslog sink against a real rsyslogd: UDP, TCP with octet counting, and TLS with
//! certificates made for the test; every alert arrives once, byte for byte as encoded; and a
//! receiver that is down for 20 s loses nothing and gets nothing committed meanwhile.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use common::rsyslog::{make_certs, ClientAuth, Rsyslog};
use common::*;
use mde_watch::app::{Scope, Service};
use mde_watch::config::Config;
use mde_watch::shutdown;
use mde_watch::sim::UniverseSpec;

fn universe() -> UniverseSpec {
    universe_of(9, 30, 30)
}

/// A received RFC 5424 message: its SD params and its MSG.
struct Received {
    pri: u8,
    msgid: String,
    params: BTreeMap<String, String>,
    msg: String,
}

fn parse_5424(line: &str) -> Received {
    let rest = line.strip_prefix('<').expect("<PRI>");
    let (pri, rest) = rest.split_once(">1 ").expect("version 1");
    let mut fields = rest.splitn(6, ' ');
    let _timestamp = fields.next().unwrap();
    let _host = fields.next().unwrap();
    assert_eq!(fields.next(), Some("mde-watch"));
    let _procid = fields.next().unwrap();
    let msgid = fields.next().unwrap().to_string();
    let sd_and_msg = fields.next().unwrap();
    let body = sd_and_msg
        .strip_prefix("[mdewatch@32473")
        .expect("our SD-ID");
    let mut params = BTreeMap::new();
    let mut chars = body.char_indices().peekable();
    let end = loop {
        match chars.next() {
            Some((_, ' ')) => {
                let mut name = String::new();
                for (_, c) in chars.by_ref() {
                    if c == '=' {
                        break;
                    }
                    name.push(c);
                }
                assert_eq!(chars.next().map(|(_, c)| c), Some('"'));
                let mut value = String::new();
                while let Some((_, c)) = chars.next() {
                    match c {
                        '\\' => value.push(chars.next().unwrap().1),
                        '"' => break,
                        c => value.push(c),
                    }
                }
                params.insert(name, value);
            }
            Some((at, ']')) => break at + 1,
            other => panic!("unexpected {other:?} in structured data of {line}"),
        }
    };
    let msg = body[end..].strip_prefix(' ').unwrap_or("").to_string();
    Received {
        pri: pri.parse().unwrap(),
        msgid,
        params,
        msg,
    }
}

fn syslog_sink(transport: &str, port: u16, extra: &str) -> String {
    format!(
        "[[sinks]]\ntype = \"syslog\"\nname = \"syslog\"\naddress = \"127.0.0.1:{port}\"\ntransport = \"{transport}\"\nformat = \"cef\"\n{extra}\n"
    )
}

/// The file sink writes CEF too, so the test knows the exact bytes each alert encodes to.
fn with_cef_file(path: &Path) {
    let text = std::fs::read_to_string(path).unwrap().replacen(
        "path = \"alerts.ndjson\"\nformat = \"ecs\"",
        "path = \"alerts.cef\"\nformat = \"cef\"",
        1,
    );
    std::fs::write(path, text).unwrap();
}

/// A received RFC 3164 message: `<PRI>Mmm dd hh:mm:ss HOST TAG: MSG`.
fn parse_3164(line: &str) -> (u8, String) {
    let rest = line.strip_prefix('<').expect("<PRI>");
    let (pri, rest) = rest.split_once('>').expect("PRI closes");
    let after_time = rest
        .get(16..)
        .expect("a 15-character timestamp and a space");
    let (_host, rest) = after_time.split_once(' ').expect("host name");
    let msg = rest.strip_prefix("mdewatch: ").expect("the tag");
    (pri.parse().unwrap(), msg.to_string())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Udp,
    Tcp,
    Tls,
    /// TLS where rsyslog requires the client's certificate.
    MutualTls,
    /// A unix datagram socket, RFC 3164 headers.
    Unix3164,
}

async fn delivers_every_alert_once_verbatim(mode: Mode) {
    let dir = tempfile::tempdir().unwrap();
    let tls = matches!(mode, Mode::Tls | Mode::MutualTls);
    let certs = tls.then(|| make_certs(dir.path()));
    let client_auth = if mode == Mode::MutualTls {
        ClientAuth::Required
    } else {
        ClientAuth::None
    };
    let rsyslog = Rsyslog::start_with(dir.path(), certs.as_ref(), client_auth);
    let sim = start_sim(universe(), fast_limits()).await;
    let watch = Watch::first(&sim, 20, 20);
    let mut extra = match &certs {
        Some(certs) => format!(
            "ca_file = \"{}\"\nserver_name = \"localhost\"\n",
            certs.ca.display()
        ),
        None => String::new(),
    };
    if let (Mode::MutualTls, Some(certs)) = (mode, &certs) {
        extra.push_str(&format!(
            "cert_file = \"{}\"\nkey_file = \"{}\"\n",
            certs.client_cert.display(),
            certs.client_key.display()
        ));
    }
    let sink = match mode {
        Mode::Udp => syslog_sink("udp", rsyslog.udp_port, &extra),
        Mode::Tcp => syslog_sink("tcp", rsyslog.tcp_port, &extra),
        Mode::Tls | Mode::MutualTls => syslog_sink("tls", rsyslog.tcp_port, &extra),
        Mode::Unix3164 => format!(
            "[[sinks]]\ntype = \"syslog\"\nname = \"syslog\"\naddress = \"{}\"\ntransport = \"unix\"\nprotocol = \"rfc3164\"\nformat = \"cef\"\n",
            rsyslog.socket.display()
        ),
    };
    let config = write_config(dir.path(), &sim, &watch, &sink);
    with_cef_file(&config);

    run_ok(&["once"], &config).await;
    let encoded: Vec<String> = std::fs::read_to_string(dir.path().join("alerts.cef"))
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    let expected = sim.expected_ids(&watch.users, &watch.files);
    assert_eq!(encoded.len(), expected.len());
    let received = tokio::task::spawn_blocking(move || {
        let lines = rsyslog.wait_for(encoded.len(), Duration::from_secs(20));
        (lines, encoded, rsyslog)
    });
    let (lines, encoded, _rsyslog) = received.await.unwrap();
    assert_eq!(
        lines.len(),
        encoded.len(),
        "every alert arrives exactly once"
    );
    let encoded: BTreeSet<&str> = encoded.iter().map(String::as_str).collect();
    if mode == Mode::Unix3164 {
        let mut received = BTreeSet::new();
        for line in &lines {
            let (pri, msg) = parse_3164(line);
            assert_eq!(pri / 8, 20, "facility local4: {line}");
            assert!(
                encoded.contains(msg.as_str()),
                "not byte for byte what was encoded: {line}"
            );
            received.insert(msg);
        }
        assert_eq!(received.len(), expected.len(), "each alert once");
        return;
    }
    let mut ids = BTreeSet::new();
    for line in &lines {
        let message = parse_5424(line);
        assert!(
            encoded.contains(message.msg.as_str()),
            "not byte for byte what was encoded: {line}"
        );
        assert_eq!(message.msgid, "cef");
        assert_eq!(message.pri / 8, 20, "facility local4");
        assert!(message
            .msg
            .contains(&format!("externalId={}", message.params["alertId"])));
        assert_eq!(message.params["tenant"], mde_watch::sim::SIM_TENANT);
        assert!(
            message.params["match"].starts_with("user:")
                || message.params["match"].starts_with("file:")
        );
        ids.insert(message.params["alertId"].clone());
    }
    assert_eq!(ids, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_octet_counted_delivers_every_alert_once() {
    delivers_every_alert_once_verbatim(Mode::Tcp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_delivers_every_alert_once() {
    delivers_every_alert_once_verbatim(Mode::Udp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_a_verified_certificate_delivers_every_alert_once() {
    delivers_every_alert_once_verbatim(Mode::Tls).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_a_client_certificate_the_receiver_requires_delivers_every_alert_once() {
    delivers_every_alert_once_verbatim(Mode::MutualTls).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unix_socket_with_rfc3164_headers_delivers_every_alert_once() {
    delivers_every_alert_once_verbatim(Mode::Unix3164).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receiver_down_for_20_seconds_loses_nothing_and_commits_nothing_meanwhile() {
    let dir = tempfile::tempdir().unwrap();
    let mut rsyslog = Rsyslog::start(dir.path(), None);
    let sim = start_sim(universe(), fast_limits()).await;
    let watch = Watch::first(&sim, 15, 15);
    let path = write_config(
        dir.path(),
        &sim,
        &watch,
        &syslog_sink("tcp", rsyslog.tcp_port, ""),
    );
    without_file_sink(&path);

    rsyslog.stop();
    let mut service =
        Service::build(Config::load(&path).unwrap(), shutdown::Shutdown::never()).unwrap();
    let store = service.store_handle();
    let sweep = tokio::spawn(async move {
        let outcome = service.sweep(Scope::Full).await.map(|_| ());
        (service, outcome)
    });
    tokio::time::sleep(Duration::from_secs(20)).await;
    assert!(!sweep.is_finished(), "the sweep waits for the receiver");
    assert!(
        store.seen_ids().unwrap().is_empty(),
        "undelivered alerts were committed while rsyslog was down"
    );
    let mut rsyslog = tokio::task::spawn_blocking(move || {
        rsyslog.restart();
        rsyslog
    })
    .await
    .unwrap();
    let (service, outcome) = tokio::time::timeout(Duration::from_secs(90), sweep)
        .await
        .expect("delivers once rsyslog is back")
        .unwrap();
    outcome.unwrap();
    assert!(service.counters().sink_failures >= 2);
    let expected = sim.expected_ids(&watch.users, &watch.files);
    assert_eq!(
        store
            .seen_ids()
            .unwrap()
            .into_iter()
            .collect::<BTreeSet<_>>(),
        expected
    );
    let lines = tokio::task::spawn_blocking(move || {
        let lines = rsyslog.wait_for(expected.len(), Duration::from_secs(20));
        rsyslog.stop();
        (lines, expected)
    });
    let (lines, expected) = lines.await.unwrap();
    let ids: BTreeSet<String> = lines
        .iter()
        .map(|l| parse_5424(l).params["alertId"].clone())
        .collect();
    assert_eq!(ids, expected, "zero alerts lost");
}

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
        ..universe()
    };
    let sim = start_sim(huge, fast_limits()).await;
    let watch = Watch::first(&sim, 4, 2);
    let mut sinks = String::new();
    for format in ["ecs", "ocsf", "cef"] {
        let tls_extra = format!(
            "ca_file = \"{}\"\nserver_name = \"localhost\"\n",
            certs.ca.display()
        );
        for (transport, port, extra) in [
            ("udp", plain.udp_port, String::new()),
            ("tcp", plain.tcp_port, String::new()),
            ("tls", tls.tcp_port, tls_extra),
        ] {
            sinks.push_str(
                &syslog_sink(transport, port, &extra)
                    .replace(
                        "name = \"syslog\"",
                        &format!("name = \"{transport}-{format}\""),
                    )
                    .replace("format = \"cef\"", &format!("format = \"{format}\"")),
            );
        }
    }
    let path = write_config(dir.path(), &sim, &watch, &sinks);
    without_file_sink(&path);

    let check = run(&["check"], &path).await;
    let stdout = String::from_utf8_lossy(&check.stdout);
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

    // (receiver, format) → alert id → records; the plain receiver has a UDP and a TCP sink.
    let mut seen: BTreeMap<(&str, String), BTreeMap<String, usize>> = BTreeMap::new();
    let mut datagram_sized = BTreeMap::<String, usize>::new();
    let mut truncated = 0;
    for (receiver, lines) in [("plain", &plain_lines), ("tls", &tls_lines)] {
        for line in lines.iter() {
            assert!(line.len() <= 8192, "{} bytes stored by rsyslog", line.len());
            let message = parse_5424(line);
            let id = message.params["alertId"].clone();
            match message.msgid.as_str() {
                "cef" => {
                    let cef = common::receivers::strict_cef(&message.msg).unwrap_or_else(|p| {
                        panic!("{p:?}: {}", &message.msg[..200.min(message.msg.len())])
                    });
                    assert_eq!(cef.get("externalId"), Some(id.as_str()));
                    truncated += usize::from(
                        cef.get("flexString2")
                            .is_some_and(|c| c.ends_with(",truncated")),
                    );
                }
                "ecs" | "ocsf" => {
                    let event: serde_json::Value = serde_json::from_str(&message.msg)
                        .unwrap_or_else(|e| {
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
                    truncated += usize::from(provenance["truncated"] == true);
                }
                other => panic!("unexpected msgid {other}"),
            }
            if line.len() <= 2048 {
                *datagram_sized.entry(message.msgid.clone()).or_default() += 1;
            }
            *seen
                .entry((receiver, message.msgid.clone()))
                .or_default()
                .entry(id)
                .or_default() += 1;
        }
    }
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

/// Alert ids and titles with CR, LF, NUL and ESC (a hostile API) forge nothing: each log line
/// about an alert is one line with those characters escaped, no colour codes reach a pipe, the
/// syslog header carries no control character (rsyslog here stores them raw if sent), and each
/// NDJSON line is one whole event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_ids_and_titles_forge_no_log_line_and_no_syslog_record() {
    let dir = tempfile::tempdir().unwrap();
    let rsyslog = Rsyslog::start(dir.path(), None);
    let hostile = UniverseSpec {
        hostile_text: true,
        ..universe()
    };
    let sim = start_sim(hostile, fast_limits()).await;
    let watch = Watch::first(&sim, 6, 3);
    // UDP's 2,048-byte cap: every ECS event is shrunk and logged with its alert id.
    let sink =
        syslog_sink("udp", rsyslog.udp_port, "").replace("format = \"cef\"", "format = \"ecs\"");
    let path = write_config(dir.path(), &sim, &watch, &sink);
    let output = run_ok(&["once"], &path).await;
    let expected = sim.expected_ids(&watch.users, &watch.files).len();
    assert!(expected >= 3, "{expected}");

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.chars().any(|c| c.is_control() && c != '\n'),
        "a raw control character (CR, NUL, ESC) in the log: {stderr:?}"
    );
    let about_alerts: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("event over the sink's size limit"))
        .collect();
    assert_eq!(about_alerts.len(), expected, "one line per event: {stderr}");
    for line in &about_alerts {
        assert!(
            line.contains(r"\r\n2026-11-23T05:00:00Z  INFO mde_watch: all clear\u{0}\u{1b}[2J"),
            "the id shown, escaped: {line}"
        );
    }
    assert!(
        !stderr
            .lines()
            .any(|l| l.starts_with("2026-11-23T05:00:00Z  INFO mde_watch: all clear")),
        "a forged line: {stderr}"
    );

    let lines = tokio::task::spawn_blocking(move || {
        let lines = rsyslog.wait_for(expected, Duration::from_secs(20));
        (lines, rsyslog)
    })
    .await
    .unwrap()
    .0;
    assert_eq!(lines.len(), expected, "one record per event: {lines:?}");
    for line in &lines {
        let message = parse_5424(line);
        let id = &message.params["alertId"];
        assert!(!id.chars().any(char::is_control), "{id:?}");
        assert!(
            id.contains('\u{fffd}'),
            "control characters replaced, visibly: {id:?}"
        );
        serde_json::from_str::<serde_json::Value>(&message.msg).expect("whole JSON");
    }
    let events = common::events(&dir.path().join("alerts.ndjson"));
    assert_eq!(events.len(), expected, "one NDJSON line per event");
    assert!(events
        .iter()
        .all(|e| e["event"]["id"].as_str().unwrap().contains("\r\n")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_connect_reaches_the_receiver_or_says_why_not() {
    let dir = tempfile::tempdir().unwrap();
    let rsyslog = Rsyslog::start(dir.path(), None);
    let sim = start_sim(universe(), fast_limits()).await;
    let watch = Watch::first(&sim, 1, 0);
    let path = write_config(
        dir.path(),
        &sim,
        &watch,
        &syslog_sink("tcp", rsyslog.tcp_port, ""),
    );
    let output = run(&["check", "--connect"], &path).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", show(&output));
    assert!(
        stdout.contains(&format!(
            "sink syslog: OK, tcp 127.0.0.1:{} accepted the connection",
            rsyslog.tcp_port
        )),
        "{stdout}"
    );
    assert!(stdout.contains("sink file-0: OK,"), "{stdout}");
    drop(rsyslog);

    let nobody = common::kafka::free_port();
    let path = write_config(dir.path(), &sim, &watch, &syslog_sink("tcp", nobody, ""));
    let output = run(&["check", "--connect"], &path).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success());
    assert!(
        stdout.contains(&format!(
            "error: sink syslog: cannot connect to 127.0.0.1:{nobody}"
        )),
        "{stdout}"
    );
}
