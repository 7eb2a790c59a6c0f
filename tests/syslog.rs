//! The syslog sink against a real rsyslogd: UDP, TCP with octet counting, and TLS with
//! certificates made for the test; every alert arrives once, byte for byte as encoded; and a
//! receiver that is down for 20 s loses nothing and gets nothing committed meanwhile.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use common::rsyslog::{
    make_certs, parse_3164, parse_5424, syslog_sink, Certs, ClientAuth, Rsyslog,
};
use common::*;
use mde_watch::app::{Scope, Service};
use mde_watch::config::Config;
use mde_watch::shutdown;
use mde_watch::sim::UniverseSpec;

fn universe() -> UniverseSpec {
    universe_of(9, 30, 30)
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

/// The syslog sink that reaches `rsyslog` in `mode` (with the test CA and, for mutual TLS,
/// the client certificate).
fn sink_for(mode: Mode, rsyslog: &Rsyslog, certs: Option<&Certs>) -> String {
    let mut extra = match certs {
        Some(certs) => format!(
            "ca_file = \"{}\"\nserver_name = \"localhost\"\n",
            certs.ca.display()
        ),
        None => String::new(),
    };
    if let (Mode::MutualTls, Some(certs)) = (mode, certs) {
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
    sink
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
    let sink = sink_for(mode, &rsyslog, certs.as_ref());
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

/// One test per transport, each named for what it proves.
macro_rules! delivers_every_alert_once {
    ($($name:ident: $mode:expr;)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            delivers_every_alert_once_verbatim($mode).await;
        }
    )*};
}

delivers_every_alert_once! {
    tcp_octet_counted_delivers_every_alert_once: Mode::Tcp;
    udp_delivers_every_alert_once: Mode::Udp;
    tls_with_a_verified_certificate_delivers_every_alert_once: Mode::Tls;
    tls_with_a_client_certificate_the_receiver_requires_delivers_every_alert_once: Mode::MutualTls;
    unix_socket_with_rfc3164_headers_delivers_every_alert_once: Mode::Unix3164;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receiver_down_for_20_seconds_loses_nothing_and_commits_nothing_meanwhile() {
    let dir = tempfile::tempdir().unwrap();
    let mut rsyslog = Rsyslog::start(dir.path(), None);
    let sim = start_sim(universe(), fast_limits()).await;
    let watch = Watch::first(&sim, 15, 15);
    let sink = syslog_sink("tcp", rsyslog.tcp_port, "");
    let path = write_config(dir.path(), &sim, &watch, &sink);
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
    let sink = syslog_sink("tcp", rsyslog.tcp_port, "");
    let path = write_config(dir.path(), &sim, &watch, &sink);
    let output = run(&["check", "--connect"], &path).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", show(&output));
    says(
        &stdout,
        &format!(
            "sink syslog: OK, tcp 127.0.0.1:{} accepted the connection",
            rsyslog.tcp_port
        ),
    );
    says(&stdout, "sink file-0: OK,");
    drop(rsyslog);

    let nobody = common::kafka::free_port();
    let path = write_config(dir.path(), &sim, &watch, &syslog_sink("tcp", nobody, ""));
    let output = run(&["check", "--connect"], &path).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success());
    says(
        &stdout,
        &format!("error: sink syslog: cannot connect to 127.0.0.1:{nobody}"),
    );
}
