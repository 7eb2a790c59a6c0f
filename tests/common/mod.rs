//! Helpers the integration tests share: an emulator on a free loopback port, configs pointing at
//! it with compressed limits, and the mde-watch binary.

#![allow(dead_code)]

pub mod certs;
pub mod kafka;
pub mod receivers;
pub mod rsyslog;
pub mod scrape;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use mde_watch::app::{AppError, Scope, Service, SweepReport};
use mde_watch::schedule::limiter::Window;
use mde_watch::shutdown::ShutdownTrigger;
use mde_watch::sim::{self, SimConfig, SimHandle, UniverseSpec};

/// Limits compressed in time: the limiter and the emulator run the same logic as with 100/60 s
/// and 1500/3600 s, fast enough for a test.
pub fn fast_limits() -> Vec<Window> {
    vec![
        Window {
            calls: 50,
            per: Duration::from_secs(2),
        },
        Window {
            calls: 600,
            per: Duration::from_secs(30),
        },
    ]
}

pub fn limits_toml(limits: &[Window]) -> String {
    limits
        .iter()
        .map(|w| {
            format!(
                "[[limits.window]]\ncalls = {}\nper = \"{}ms\"\n",
                w.calls,
                w.per.as_millis()
            )
        })
        .collect()
}

pub async fn start_sim(universe: UniverseSpec, limits: Vec<Window>) -> SimHandle {
    sim::start(SimConfig {
        universe,
        limits,
        ..SimConfig::default()
    })
    .await
    .expect("emulator starts on a free loopback port")
}

/// A universe of `users` users and `files` files drawn from `seed`, everything else as default.
pub fn universe_of(seed: u64, users: usize, files: usize) -> UniverseSpec {
    UniverseSpec {
        seed,
        users,
        files,
        ..UniverseSpec::default()
    }
}

pub struct Watch {
    pub users: Vec<String>,
    pub files: Vec<String>,
}

impl Watch {
    pub fn first(sim: &SimHandle, users: usize, files: usize) -> Watch {
        Watch {
            users: (1..=users).map(|i| format!("user{i}")).collect(),
            files: (1..=files).map(|i| sim.universe().file_hash(i)).collect(),
        }
    }
}

/// The ids of the alerts the emulator has changed by its virtual now.
pub fn changed_by_now(sim: &SimHandle) -> BTreeSet<String> {
    let now = sim.virtual_now_secs();
    sim.universe()
        .alerts
        .iter()
        .filter(|a| a.change_at.is_some_and(|at| at <= now))
        .map(|a| a.id.clone())
        .collect()
}

/// The start most tests share: an emulator, the first `users` users and `files` files of its
/// universe watched, and a temporary directory for the config, the store and the output.
pub struct Fixture {
    pub sim: SimHandle,
    pub watch: Watch,
    pub dir: tempfile::TempDir,
}

impl Fixture {
    pub async fn start(
        universe: UniverseSpec,
        limits: Vec<Window>,
        users: usize,
        files: usize,
    ) -> Fixture {
        let sim = start_sim(universe, limits).await;
        let watch = Watch::first(&sim, users, files);
        Fixture {
            sim,
            watch,
            dir: tempfile::tempdir().expect("a temporary directory"),
        }
    }
}

/// A `[schedule]` that sweeps every two seconds, for daemon tests.
pub const EVERY_TWO_SECONDS: &str = "[schedule]\ncron = \"*/2 * * * * *\"\n";

/// One full sweep of `service`, asked to stop `after` it starts (as SIGTERM would).
pub async fn sweep_stopped_after(
    service: &mut Service,
    trigger: ShutdownTrigger,
    after: Duration,
) -> Result<SweepReport, AppError> {
    let stopper = tokio::spawn(async move {
        tokio::time::sleep(after).await;
        trigger.trigger();
    });
    let outcome = service.sweep(Scope::Full).await;
    stopper.await.expect("the stopper task ends");
    outcome
}

/// Waits (at most 60 s) until the NDJSON file `output` holds exactly the alerts `expected`.
pub async fn written_within_a_minute(output: &Path, expected: &BTreeSet<String>) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while ids(&events(output)) != *expected {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not every alert was written within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs `once` again and asserts the NDJSON file `output` still holds `before` events.
pub async fn once_adds_nothing(config: &Path, output: &Path, before: usize, why: &str) {
    run_ok(&["once"], config).await;
    assert_eq!(events(output).len(), before, "{why}");
}

/// [`run`]'s standard output as text, whatever its exit status.
pub async fn stdout_of(args: &[&str], config: &Path) -> String {
    String::from_utf8_lossy(&run(args, config).await.stdout).into_owned()
}

/// [`run`], which must succeed.
pub async fn run_ok(args: &[&str], config: &Path) -> Output {
    let output = run(args, config).await;
    assert!(output.status.success(), "{}", show(&output));
    output
}

/// [`run`], which must fail: its output and its stderr as text.
pub async fn run_err(args: &[&str], config: &Path) -> (Output, String) {
    let output = run(args, config).await;
    assert!(!output.status.success(), "{}", show(&output));
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output, stderr)
}

/// Writes a secret file as an operator should: mode 0600 (mde-watch refuses one others can read).
pub fn write_secret(path: &Path, secret: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, secret).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// Writes the secret and a config for `sim` into `dir`; `extra` is appended verbatim.
pub fn write_config(dir: &Path, sim: &SimHandle, watch: &Watch, extra: &str) -> PathBuf {
    write_secret(&dir.join("secret"), sim::SIM_CLIENT_SECRET);
    let quoted = |list: &[String]| {
        list.iter()
            .map(|v| format!("\"{v}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let text = format!(
        r#"[api]
tenant_id = "{tenant}"
client_id = "{client}"
client_secret_file = "secret"
base_url = "{url}"
login_url = "{url}"
timeout = "5s"
backoff_base = "20ms"
backoff_max = "300ms"
max_retries = 12

{limits}
[watchlist]
users = [{users}]
files = [{files}]

[store]
path = "store"

[[sinks]]
type = "file"
path = "alerts.ndjson"
format = "ecs"

[collector]
name = "test-collector"
{extra}
"#,
        tenant = sim::SIM_TENANT,
        client = sim::SIM_CLIENT_ID,
        url = sim.base_url(),
        limits = limits_toml(&sim.config().limits),
        users = quoted(&watch.users),
        files = quoted(&watch.files),
    );
    let path = dir.join("mde-watch.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Drops the default file sink from a config `write_config` wrote, for tests where only the sink
/// under test may receive events.
pub fn without_file_sink(path: &Path) {
    let text = std::fs::read_to_string(path).unwrap();
    let file_sink = "[[sinks]]\ntype = \"file\"\npath = \"alerts.ndjson\"\nformat = \"ecs\"\n";
    assert!(text.contains(file_sink));
    std::fs::write(path, text.replacen(file_sink, "", 1)).unwrap();
}

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_mde-watch")
}

/// Runs the binary to completion off the async runtime (the emulator keeps serving meanwhile).
pub async fn run(args: &[&str], config: &Path) -> Output {
    let mut command = tokio::process::Command::new(binary());
    command
        .args(args)
        .arg("--config")
        .arg(config)
        .env("RUST_LOG", "warn")
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(180), command.output())
        .await
        .expect("mde-watch finishes within 3 minutes")
        .expect("mde-watch runs");
    assert!(
        !String::from_utf8_lossy(&output.stderr).contains("panicked"),
        "mde-watch panicked: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Starts the binary in the background; it is killed if the test drops it.
pub fn spawn(args: &[&str], config: &Path, log: &str) -> tokio::process::Child {
    tokio::process::Command::new(binary())
        .args(args)
        .arg("--config")
        .arg(config)
        .env("RUST_LOG", log)
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("mde-watch starts")
}

/// Waits (at most 30 s) for a daemon already sent SIGTERM to exit, and asserts it exited 0.
pub async fn stopped_cleanly(daemon: tokio::process::Child) -> Output {
    let output = tokio::time::timeout(Duration::from_secs(30), daemon.wait_with_output())
        .await
        .expect("the daemon stops within 30 s of SIGTERM")
        .expect("the daemon's exit status");
    assert!(output.status.success(), "{}", show(&output));
    output
}

/// Sends SIGTERM, as systemd does to stop the service.
pub fn sigterm(child: &tokio::process::Child) {
    signal(child, "TERM");
}

/// Sends the signal `name` (`TERM`, `HUP`) with kill(1).
pub fn signal(child: &tokio::process::Child, name: &str) {
    let pid = child.id().expect("still running").to_string();
    let sent = std::process::Command::new("kill")
        .args([&format!("-{name}"), &pid])
        .status();
    assert!(
        sent.is_ok_and(|status| status.success()),
        "kill -{name} {pid}"
    );
}

pub fn show(output: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Every event in an NDJSON file, parsed.
pub fn events(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|err| panic!("not JSON ({err}): {line}"))
        })
        .collect()
}

/// The sorted `kind:value` of an event's watchlist matches.
pub fn match_keys(event: &serde_json::Value) -> Vec<String> {
    let mut keys: Vec<String> = event["mde_watch"]["matches"]
        .as_array()
        .expect("mde_watch.matches")
        .iter()
        .map(|m| {
            format!(
                "{}:{}",
                m["kind"].as_str().unwrap_or_default(),
                m["value"].as_str().unwrap_or_default()
            )
        })
        .collect();
    keys.sort();
    keys
}

/// Event id → how many times it was written.
pub fn id_counts(events: &[serde_json::Value]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for event in events {
        let id = event["event"]["id"].as_str().expect("event.id").to_string();
        *counts.entry(id).or_insert(0) += 1;
    }
    counts
}

/// Asserts the file sink under `dir` holds exactly the alerts of the watched entries.
pub fn assert_delivered_all(dir: &Path, sim: &SimHandle, watch: &Watch) {
    assert_eq!(file_ids(dir), sim.expected_ids(&watch.users, &watch.files));
}

/// Asserts the command failed and said `expected` (on stdout or stderr).
/// Asserts that `text` contains `expected`, and shows both when it does not.
#[track_caller]
pub fn says(text: &str, expected: &str) {
    assert!(text.contains(expected), "expected {expected:?} in:\n{text}");
}

pub fn fails_saying(output: &Output, expected: &str) {
    let said = show(output);
    assert!(!output.status.success(), "succeeded: {said}");
    assert!(said.contains(expected), "expected {expected:?} in:\n{said}");
}

/// The alert ids the file sink wrote under `dir` (write_config's `alerts.ndjson`).
pub fn file_ids(dir: &Path) -> BTreeSet<String> {
    ids(&events(&dir.join("alerts.ndjson")))
}

/// Changes the first `from` in the config at `path` to `to`: a test's one change to what
/// `write_config` wrote.
pub fn edit_config(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{} has no {from:?}", path.display());
    std::fs::write(path, text.replacen(from, to, 1)).unwrap();
}

pub fn ids(events: &[serde_json::Value]) -> BTreeSet<String> {
    id_counts(events).into_keys().collect()
}

/// Asserts the emulator never saw more calls in a window than the window allows.
pub fn assert_within_limits(sim: &SimHandle) {
    let stats = sim.stats();
    for window in &stats.windows {
        assert!(
            window.most_seen <= window.calls as usize,
            "{} calls arrived within {} ms; the limit is {}: {stats:?}",
            window.most_seen,
            window.per_ms,
            window.calls
        );
    }
}

/// Runs the daemon on `config` for `running` while a sink cannot deliver, with `meanwhile`
/// (a look at its metrics) beside it: it must keep running, stop cleanly on SIGTERM and have
/// committed nothing. Returns what it logged.
pub async fn run_undeliverable(
    config: &std::path::Path,
    running: Duration,
    meanwhile: impl std::future::Future<Output = ()>,
) -> String {
    let mut daemon = spawn(&["run"], config, "warn");
    tokio::join!(tokio::time::sleep(running), meanwhile);
    assert!(
        daemon.try_wait().unwrap().is_none(),
        "run must not exit because a sink cannot deliver"
    );
    sigterm(&daemon);
    let output = stopped_cleanly(daemon).await;
    let config = mde_watch::config::Config::load(config).unwrap();
    let store = mde_watch::store::Store::open(&config.store).unwrap();
    assert!(store.seen_ids().unwrap().is_empty(), "nothing is committed");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The end of a credential rotation test: the emulator takes only the new credential
/// (`rotated`, its faults from now on); once every token issued before has died, virtual time
/// brings new alerts, which can only be fetched with a token the new credential obtained. Waits
/// until they are written, stops `daemon` and returns what it logged.
pub async fn deliver_after_rotation(
    sim: &SimHandle,
    watch: &Watch,
    output: &Path,
    rotated: mde_watch::sim::Faults,
    daemon: tokio::process::Child,
) -> String {
    let before = sim.expected_ids(&watch.users, &watch.files);
    sim.set_faults(rotated);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    sim.advance(Duration::from_secs(12 * 3600));
    let later = sim.expected_ids(&watch.users, &watch.files);
    assert!(later.len() > before.len(), "virtual time brings new alerts");
    written_within_a_minute(output, &later).await;
    sigterm(&daemon);
    let stopped = stopped_cleanly(daemon).await;
    assert!(id_counts(&events(output)).values().all(|&n| n == 1));
    String::from_utf8_lossy(&stopped.stderr).into_owned()
}
