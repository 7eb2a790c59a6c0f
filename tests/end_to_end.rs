//! The whole path against the emulator, through the real binary: OAuth, both endpoints, the
//! limiter, the sled store, the file sink. Assertions are on the bytes the file received.

mod common;

use common::*;
use mde_watch::sim::{Faults, UniverseSpec};

fn universe() -> UniverseSpec {
    universe_of(7, 60, 60)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_sweep_writes_every_alert_once_with_all_its_matches() {
    let Fixture { sim, watch, dir } = Fixture::start(universe(), fast_limits(), 50, 50).await;
    let config = write_config(dir.path(), &sim, &watch, "");

    run_ok(&["once"], &config).await;

    let written = events(&dir.path().join("alerts.ndjson"));
    let expected = sim.expected_ids(&watch.users, &watch.files);
    assert!(
        expected.len() > 50,
        "the universe should give plenty of alerts, got {}",
        expected.len()
    );
    assert_eq!(ids(&written), expected);
    assert!(
        id_counts(&written).values().all(|&n| n == 1),
        "an alert was written twice"
    );

    // Alerts tied to a watched user and a watched file: one event, two matches.
    let universe = sim.universe();
    let both: Vec<_> = universe
        .alerts
        .iter()
        .filter(|a| {
            a.appear_at == 0 && a.user.is_some_and(|u| u <= 50) && a.file.is_some_and(|f| f <= 50)
        })
        .collect();
    assert!(
        !both.is_empty(),
        "seed 7 should tie some alerts to a user and a file"
    );
    for alert in both {
        let event = written
            .iter()
            .find(|e| e["event"]["id"] == alert.id.as_str())
            .unwrap();
        let matches = event["mde_watch"]["matches"].as_array().unwrap();
        let kinds: Vec<_> = matches
            .iter()
            .map(|m| m["kind"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["user", "file"], "{}: {matches:?}", alert.id);
    }
    assert_eq!(sim.stats().user_calls, 50);
    assert_eq!(sim.stats().file_calls, 50);
    assert_within_limits(&sim);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_writes_nothing_again_and_later_alerts_come_next_sweep() {
    let Fixture { sim, watch, dir } = Fixture::start(universe(), fast_limits(), 20, 20).await;
    let config = write_config(dir.path(), &sim, &watch, "");
    let output_file = dir.path().join("alerts.ndjson");

    assert!(run(&["once"], &config).await.status.success());
    let first = std::fs::read(&output_file).unwrap();
    let first_ids = ids(&events(&output_file));

    run_ok(&["once"], &config).await;
    assert_eq!(
        std::fs::read(&output_file).unwrap(),
        first,
        "a restart on the same store wrote again"
    );

    sim.advance(std::time::Duration::from_secs(4 * 3600));
    let later = sim.expected_ids(&watch.users, &watch.files);
    let appeared: std::collections::BTreeSet<_> = later.difference(&first_ids).cloned().collect();
    assert!(!appeared.is_empty(), "virtual time should bring new alerts");

    run_ok(&["once"], &config).await;
    let all = events(&output_file);
    let new_lines: std::collections::BTreeSet<_> = ids(&all[first_ids.len()..]);
    assert_eq!(
        new_lines, appeared,
        "exactly the alerts that appeared are written, once"
    );
    assert!(id_counts(&all).values().all(|&n| n == 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_lose_nothing_and_limits_hold() {
    let Fixture { sim, watch, dir } = Fixture::start(universe(), fast_limits(), 40, 40).await;
    sim.set_faults(Faults {
        error_rate: 0.12,
        malformed_rate: 0.05,
        truncated_rate: 0.08,
        throttle_rate: 0.04,
        throttle_retry_after_secs: 1,
        ..Faults::default()
    });
    let config = write_config(dir.path(), &sim, &watch, "");

    run_ok(&["once"], &config).await;
    let written = events(&dir.path().join("alerts.ndjson"));
    assert_eq!(ids(&written), sim.expected_ids(&watch.users, &watch.files));
    let stats = sim.stats();
    assert!(
        stats.faults_injected >= 10,
        "faults were injected: {stats:?}"
    );
    assert!(
        stats.user_calls + stats.file_calls > 80,
        "failed calls were retried: {stats:?}"
    );
    assert_within_limits(&sim);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_expiring_mid_run_is_renewed_without_failing_the_sweep() {
    let Fixture { sim, watch, dir } = Fixture::start(universe(), fast_limits(), 30, 30).await;
    // The token claims an hour but dies after 1.2 s: the client meets 401s and must renew. (Much
    // shorter and a loaded machine can stall past a fresh token's whole life.)
    sim.set_faults(Faults {
        token_dies_after_ms: Some(1200),
        ..Faults::default()
    });
    let config = write_config(dir.path(), &sim, &watch, "");

    run_ok(&["once"], &config).await;
    let stats = sim.stats();
    assert!(stats.served_401 >= 1, "the token never expired: {stats:?}");
    assert!(
        stats.token_calls >= 2,
        "the token was never renewed: {stats:?}"
    );
    assert_delivered_all(dir.path(), &sim, &watch);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_rotated_in_its_file_is_read_again_when_the_old_one_is_refused() {
    let Fixture { sim, watch, dir } = Fixture::start(universe(), fast_limits(), 10, 10).await;
    // Tokens die quickly, so the running daemon asks for new ones after the rotation.
    let short_tokens = Faults {
        token_dies_after_ms: Some(1200),
        ..Faults::default()
    };
    sim.set_faults(short_tokens.clone());
    let config = write_config(
        dir.path(),
        &sim,
        &watch,
        "[schedule]\ncron = \"* * * * * *\"\n",
    );
    let output = dir.path().join("alerts.ndjson");
    let daemon = spawn(&["run"], &config, "info");
    written_within_a_minute(&output, &sim.expected_ids(&watch.users, &watch.files)).await;

    // The operator writes the new secret into the file, then deletes the old one in Entra ID.
    let rotated = "rotated-secret-value";
    write_secret(&dir.path().join("secret"), rotated);
    let refused_before = sim.stats().served_401;
    let rotation = Faults {
        client_secret: Some(rotated.into()),
        ..short_tokens
    };
    let stderr = deliver_after_rotation(&sim, &watch, &output, rotation, daemon).await;
    says(
        &stderr,
        "the token endpoint refused the client secret in use; a different one was read again",
    );
    says(&stderr, "api.client_secret_file");
    assert!(!stderr.contains(rotated), "the secret leaked: {stderr}");
    assert!(
        sim.stats().served_401 > refused_before,
        "no token died after the rotation: {:?}",
        sim.stats()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1_token_endpoint_with_string_lifetimes_works() {
    let Fixture { sim, watch, dir } = Fixture::start(universe(), fast_limits(), 3, 3).await;
    let config = write_config(dir.path(), &sim, &watch, "");
    edit_config(
        &config,
        "timeout = \"5s\"",
        "timeout = \"5s\"\ntoken_endpoint = \"v1\"",
    );
    run_ok(&["once"], &config).await;
    assert_delivered_all(dir.path(), &sim, &watch);
}

/// `users` users watched with the config `extra` adds, and the wrong client secret on disk.
async fn with_a_wrong_secret(users: usize, extra: &str) -> (Fixture, std::path::PathBuf) {
    let fixture = Fixture::start(universe(), fast_limits(), users, 0).await;
    let Fixture { sim, watch, dir } = &fixture;
    let config = write_config(dir.path(), sim, watch, extra);
    write_secret(&dir.path().join("secret"), "wrong-secret");
    (fixture, config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forbidden_and_wrong_secret_fail_loudly_and_name_the_cause() {
    let (Fixture { sim, dir, .. }, config) = with_a_wrong_secret(2, "").await;
    let (output, stderr) = run_err(&["once"], &config).await;
    assert!(stderr.contains("AADSTS7000215"), "{}", show(&output));
    assert!(
        !stderr.contains("wrong-secret"),
        "the secret leaked into the output"
    );

    write_secret(
        &dir.path().join("secret"),
        mde_watch::sim::SIM_CLIENT_SECRET,
    );
    sim.set_faults(Faults {
        forbidden: true,
        ..Faults::default()
    });
    let (output, stderr) = run_err(&["once"], &config).await;
    assert!(
        stderr.contains("403 Forbidden") && stderr.contains("Alert.Read.All"),
        "{}",
        show(&output)
    );
    assert_eq!(sim.stats().user_calls, 2, "a 403 is not retried");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_secret_stops_the_sweep_instead_of_hammering_the_login_host() {
    // The directory must outlive the run: bind it, not `..` (which drops it here).
    let (Fixture { sim, dir: _dir, .. }, config) =
        with_a_wrong_secret(40, "[pipeline]\nbatch_entries = 8\n").await;
    let (output, stderr) = run_err(&["once"], &config).await;
    assert!(
        stderr.contains("sweep stopped early") && stderr.contains("AADSTS7000215"),
        "{}",
        show(&output)
    );
    let stats = sim.stats();
    assert!(
        stats.token_calls <= 8,
        "one batch at most asks for a token: {stats:?}"
    );
    assert_eq!(stats.user_calls, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_byte_budget_smaller_than_two_batches_still_drains() {
    // Every batch weighs more than half of the 64 KiB budget: the poller can only go on once
    // the batch in flight is committed, which must not wait for the next batch to arrive.
    let Fixture { sim, watch, dir } = Fixture::start(universe(), fast_limits(), 50, 50).await;
    let extra = "[pipeline]\nbatch_entries = 25\nqueue_bytes = \"64KiB\"\n";
    let config = write_config(dir.path(), &sim, &watch, extra);

    let output = tokio::time::timeout(std::time::Duration::from_secs(60), run(&["once"], &config))
        .await
        .expect("the sweep stalled: poller and publisher waited on each other");
    assert!(output.status.success(), "{}", show(&output));
    let written = events(&dir.path().join("alerts.ndjson"));
    assert_eq!(ids(&written), sim.expected_ids(&watch.users, &watch.files));
    assert!(id_counts(&written).values().all(|&n| n == 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_gives_up_on_a_dead_sink_and_commits_nothing() {
    let Fixture { sim, watch, dir } = Fixture::start(universe(), fast_limits(), 5, 5).await;
    // A port nothing listens on: every delivery is refused.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let sink = format!(
        "[[sinks]]\ntype = \"syslog\"\naddress = \"127.0.0.1:{closed}\"\ntransport = \"tcp\"\nformat = \"cef\"\n"
    );
    let config = write_config(dir.path(), &sim, &watch, &sink);
    without_file_sink(&config);

    let started = std::time::Instant::now();
    let output = run(&["once"], &config).await;
    assert!(!output.status.success(), "{}", show(&output));
    let said = show(&output);
    says(&said, "still failing after 5 retries");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(60),
        "took {:?}",
        started.elapsed()
    );
    let listed = run_ok(&["state", "list"], &config).await;
    assert!(
        listed.stdout.is_empty(),
        "nothing may be committed: {}",
        show(&listed)
    );
}

/// A newcomer finds what the emulator holds: `GET /sim/universe` lists every user and file hash
/// with its alerts, and `sim --help` says what each option does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_emulator_lists_its_universe_and_explains_its_options() {
    let sim = start_sim(universe(), fast_limits()).await;
    let listing: serde_json::Value = reqwest::get(format!("{}/sim/universe", sim.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listing["users"].as_array().unwrap().len(), 60);
    assert_eq!(listing["files"][4]["sha1"], sim.universe().file_hash(5));
    let watched = Watch::first(&sim, 60, 60);
    let listed: usize = ["users", "files"]
        .iter()
        .flat_map(|kind| listing[kind].as_array().unwrap())
        .map(|entry| entry["visible_now"].as_u64().unwrap() as usize)
        .sum();
    let expected = sim.expected_ids(&watched.users, &watched.files).len();
    assert!(listed >= expected, "{listed} listed, {expected} distinct");

    let help = std::process::Command::new(binary())
        .args(["sim", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for described in [
        "--listen <LISTEN>\n          Address to listen on",
        "--seed <SEED>\n          Seed of the alert universe",
        "--users <USERS>\n          Users in the universe",
        "--files <FILES>\n          Files in the universe",
        "--speed <SPEED>\n          Virtual seconds per real second",
        "--per-minute <PER_MINUTE>\n          Alert calls allowed",
        "--per-hour <PER_HOUR>\n          Alert calls allowed",
        "--faults <FAULTS>\n          Fault injection as JSON",
        "GET /sim/universe",
    ] {
        assert!(
            help.contains(described),
            "sim --help lacks {described:?}:\n{help}"
        );
    }
}
