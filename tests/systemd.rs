//! What systemd sees of the daemon: the notify protocol read from a socket the test owns, as
//! systemd would with `Type=notify` and `WatchdogSec=`.

mod common;

use std::time::Duration;

use common::*;
use mde_watch::sim::UniverseSpec;
use tokio::net::UnixDatagram;

fn universe() -> UniverseSpec {
    universe_of(5, 20, 20)
}

/// Messages from the socket until one satisfies `wanted`; all of them, in order.
async fn until(socket: &UnixDatagram, seen: &mut Vec<String>, wanted: impl Fn(&str) -> bool) {
    let mut buffer = vec![0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(30), socket.recv(&mut buffer))
            .await
            .unwrap_or_else(|_| panic!("no such notification within 30 s; got {seen:#?}"))
            .unwrap();
        let message = String::from_utf8_lossy(&buffer[..n]).into_owned();
        let done = wanted(&message);
        seen.push(message);
        if done {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_watchdog_status_and_stopping_reach_the_notify_socket() {
    let Fixture { sim, watch, dir } = Fixture::start(universe(), fast_limits(), 10, 10).await;
    let path = write_config(dir.path(), &sim, &watch, EVERY_TWO_SECONDS);
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    let daemon = tokio::process::Command::new(binary())
        .args(["run", "--config"])
        .arg(&path)
        .env("RUST_LOG", "warn")
        .env("NOTIFY_SOCKET", &socket_path)
        // Half of it, 200 ms, is how often the daemon must say it is alive.
        .env("WATCHDOG_USEC", "400000")
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();

    let mut seen = Vec::new();
    until(&socket, &mut seen, |m| m.starts_with("READY=1\n")).await;
    let ready = seen.last().unwrap().clone();
    assert!(
        ready.contains("\nSTATUS=") && ready.contains("calls used"),
        "{ready}"
    );
    // The first sweep runs on start: every alert goes out, and the daemon keeps pinging.
    let expected = sim.expected_ids(&watch.users, &watch.files);
    let output_file = dir.path().join("alerts.ndjson");
    written_within_a_minute(&output_file, &expected).await;
    let before = seen.len();
    until(&socket, &mut seen, |m| m == "WATCHDOG=1").await;
    until(&socket, &mut seen, |m| m == "WATCHDOG=1").await;
    let published = format!("{} alerts published", expected.len());
    until(&socket, &mut seen, |m| {
        m.starts_with("STATUS=") && m.contains(&published)
    })
    .await;
    assert!(seen.len() > before);

    sigterm(&daemon);
    until(&socket, &mut seen, |m| m.starts_with("STOPPING=1")).await;
    stopped_cleanly(daemon).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_watchdog_setting_is_named() {
    let Fixture { sim, watch, dir } = Fixture::start(universe(), fast_limits(), 1, 0).await;
    let path = write_config(dir.path(), &sim, &watch, "");
    let output = tokio::process::Command::new(binary())
        .args(["run", "--config"])
        .arg(&path)
        .env("WATCHDOG_USEC", "soon")
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    says(&stderr, "WATCHDOG_USEC 'soon'");
}

/// The shipped unit with the binary's path where the package installs it.
fn unit_for_this_build(dir: &std::path::Path) -> std::path::PathBuf {
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/systemd/mde-watch.service"
    ))
    .unwrap();
    let path = dir.join("mde-watch.service");
    std::fs::write(&path, unit.replace("/usr/bin/mde-watch", binary())).unwrap();
    path
}

#[test]
fn the_unit_passes_systemd_analyze_verify() {
    let dir = tempfile::tempdir().unwrap();
    let unit = unit_for_this_build(dir.path());
    let output = std::process::Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&unit)
        .output()
        .expect("systemd-analyze is installed (tests/install-deps.sh)");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{said}");
    assert!(
        !said.contains("mde-watch.service"),
        "systemd-analyze verify has remarks on the unit:\n{said}"
    );
}

#[test]
fn the_unit_is_hardened_to_an_exposure_of_at_most_2() {
    let output = std::process::Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--no-pager"])
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/systemd/mde-watch.service"
        ))
        .output()
        .expect("systemd-analyze is installed (tests/install-deps.sh)");
    let text = String::from_utf8_lossy(&output.stdout);
    let exposure: f64 = text
        .split("Overall exposure level for mde-watch.service:")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|figure| figure.parse().ok())
        .unwrap_or_else(|| panic!("no exposure figure in:\n{text}"));
    println!("systemd-analyze security: exposure {exposure}");
    assert!(exposure <= 2.0, "exposure {exposure}:\n{text}");
}
