//! Throughput and memory figures for issue #2's targets. Prints numbers; asserts nothing, so a
//! noisy machine cannot make it flake. Run with `cargo bench` (or `cargo bench -- ecs` etc.).
//!
//! - ECS normalize + serialize on one core (target ≥ 200,000 alerts/s)
//! - store decide + commit with 1,000,000 ids already stored (target ≥ 200,000 alerts/s)
//! - end to end, emulator → `mde-watch once` → file sink, limits lifted, 10,000-entry watchlist
//!   and 1,000,000 stored ids (targets ≥ 20,000 alerts/s, peak RSS ≤ 64 MiB)
//! - steady: `mde-watch run` sweeping every 5 s for a minute, resident memory over time

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mde_watch::config::StoreConfig;
use mde_watch::defender::odata::parse_page;
use mde_watch::normalize::{encode, Change, EventContext, Format, Match};
use mde_watch::schedule::limiter::Window;
use mde_watch::sim::{self, SimConfig, UniverseSpec};
use mde_watch::store::{decide, fingerprint, AlertDigest, SeenKey, SeenRecord, Store};
use mde_watch::watchlist::EntryKind;

mod daemon;
mod pure;

// The tests' tansu and rsyslog helpers: one way to start each. The bench uses part of them.
#[allow(dead_code)]
#[path = "../../tests/common/certs.rs"]
mod certs;
#[allow(dead_code)]
#[path = "../../tests/common/kafka.rs"]
mod kafka;
#[allow(dead_code)]
#[path = "../../tests/common/rsyslog.rs"]
mod rsyslog;
const FIXTURES: &[&str] = &[
    include_str!("../../tests/fixtures/user-alerts-user1.json"),
    include_str!("../../tests/fixtures/file-alerts-470454e35ea71dd971c2b0cbb29e0225cd0526cb.json"),
    include_str!("../../tests/fixtures/quirks.json"),
];

fn main() {
    // `cargo test --all-targets` runs bench targets too, without `--bench`: stay quick there.
    if !std::env::args().any(|a| a == "--bench") {
        println!("throughput: built; run the figures with `cargo bench`");
        return;
    }
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wanted = |name: &str| filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str()));
    if wanted("encode") || wanted("ecs") {
        pure::bench_ecs();
    }
    if wanted("store") {
        pure::bench_store();
    }
    if wanted("end_to_end") {
        daemon::bench_end_to_end();
    }
    if wanted("steady") {
        daemon::bench_steady();
    }
    if wanted("heavy") {
        daemon::bench_heavy();
    }
    if wanted("stages") {
        pure::bench_stages();
    }
    if wanted("feed") {
        daemon::bench_feed();
    }
    if wanted("kafka") {
        daemon::bench_kafka();
    }
    if wanted("syslog") {
        daemon::bench_syslog();
    }
}

struct DaemonRun {
    written: usize,
    sweep_secs: f64,
    peak_mib: f64,
    /// User + system CPU seconds of the daemon (kernel accounting of the waited-for child).
    cpu_secs: f64,
    /// The system (kernel) part of `cpu_secs`.
    sys_secs: f64,
    summary: String,
}

/// User and system CPU seconds of every child this process has waited for.
fn children_cpu_secs() -> (f64, f64) {
    // SAFETY: getrusage only writes into the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (secs(usage.ru_utime), secs(usage.ru_stime))
}

/// The start of every benchmark daemon's config: `[api]` for `emulator` (with `api_extra` keys)
/// and a window no sweep reaches.
fn api_tables(emulator: &sim::SimHandle, api_extra: &str) -> String {
    format!(
        "[api]\ntenant_id = \"{}\"\nclient_id = \"{}\"\nclient_secret_file = \"secret\"\nbase_url = \"{url}\"\nlogin_url = \"{url}\"\n{api_extra}\
         [[limits.window]]\ncalls = 1000000\nper = \"1s\"\n",
        sim::SIM_TENANT,
        sim::SIM_CLIENT_ID,
        url = emulator.base_url(),
    )
}

/// `BENCH_PIPELINE`'s keys for the daemon's `[pipeline]` table, `\n` read as a line break.
fn bench_pipeline() -> String {
    std::env::var("BENCH_PIPELINE")
        .unwrap_or_default()
        .replace("\\n", "\n")
}

/// Writes a 10,000-entry watchlist and a config for `emulator` with `sinks` (TOML) and
/// `extra` TOML into `dir`, with `prefill` ids already in the store; returns the config path.
fn daemon_config(
    dir: &Path,
    emulator: &sim::SimHandle,
    sinks: &str,
    extra: &str,
    prefill: u64,
) -> PathBuf {
    let users: String = (1..=5_000).map(|i| format!("user{i}\n")).collect();
    let files: String = (1..=5_000)
        .map(|i| format!("{}\n", emulator.universe().file_hash(i)))
        .collect();
    std::fs::write(dir.join("users.txt"), users).unwrap();
    std::fs::write(dir.join("hashes.txt"), files).unwrap();
    write_secret(&dir.join("secret"));
    let config = format!(
        "{api}[watchlist]\nusers_file = \"users.txt\"\nfiles_file = \"hashes.txt\"\n\
         [store]\npath = \"store\"\ncache = \"{cache}\"\n\
         [pipeline]\nbatch_entries = {batch}\nconcurrency = 8\n{pipeline}\n{sinks}\n{extra}",
        api = api_tables(emulator, ""),
        cache = std::env::var("BENCH_STORE_CACHE").unwrap_or_else(|_| "8MiB".into()),
        batch = std::env::var("BENCH_BATCH").unwrap_or_else(|_| "64".into()),
        // e.g. BENCH_PIPELINE='in_flight_batches = 4\nqueue_bytes = "8MiB"'
        pipeline = bench_pipeline(),
    );
    let config_path = dir.join("mde-watch.toml");
    std::fs::write(&config_path, config).unwrap();
    let store_config = StoreConfig {
        path: dir.join("store"),
        retention: Duration::from_secs(86_400),
        cache_bytes: 16 << 20,
        flush_interval: Duration::ZERO,
    };
    pure::fill(&Store::open(&store_config).unwrap(), prefill);
    config_path
}

/// VmHWM and VmRSS of a process, in KiB.
fn memory_kib(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
    };
    Some((field("VmHWM:")?, field("VmRSS:")?))
}

/// Runs `mde-watch once` over a 10,000-entry watchlist against `emulator`, with `sinks` (TOML)
/// and `prefill` ids already in the store; measures the sweep and the daemon's peak RSS.
async fn run_daemon(emulator: &sim::SimHandle, sinks: &str, prefill: u64) -> DaemonRun {
    let dir = tempfile::tempdir().unwrap();
    let config_path = daemon_config(dir.path(), emulator, sinks, "", prefill);
    run_once(&config_path).await
}

/// Runs `mde-watch once --config CONFIG`, sampling its peak RSS; its CPU comes from the kernel
/// once it has been waited for.
async fn run_once(config_path: &Path) -> DaemonRun {
    let cpu_before = children_cpu_secs();
    // BENCH_DAEMON_WRAP runs the daemon under a profiler, e.g. "heaptrack -o /tmp/daemon". The
    // peak RSS printed is the wrapper's unless it execs the daemon (`env VAR=x` does).
    let wrap = std::env::var("BENCH_DAEMON_WRAP").unwrap_or_default();
    let mut words = wrap.split_whitespace();
    let mut command = match words.next() {
        Some(program) => {
            let mut command = tokio::process::Command::new(program);
            command.args(words).arg(env!("CARGO_BIN_EXE_mde-watch"));
            command
        }
        None => tokio::process::Command::new(env!("CARGO_BIN_EXE_mde-watch")),
    };
    let mut child = command
        .args(["once", "--config"])
        .arg(config_path)
        .env(
            "RUST_LOG",
            std::env::var("BENCH_DAEMON_LOG").unwrap_or_else(|_| "error".into()),
        )
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id().unwrap();
    let mut peak_kib = 0u64;
    let stdout = loop {
        if let Some((hwm, _)) = memory_kib(pid) {
            peak_kib = peak_kib.max(hwm);
        }
        if let Some(status) = child.try_wait().unwrap() {
            // A failed run has no figures: printing NaN beside the targets would read as one.
            assert!(
                status.success(),
                "mde-watch once failed ({status}); its error is printed above"
            );
            let mut stdout = String::new();
            // The child is reaped by try_wait: its CPU is in RUSAGE_CHILDREN from here.
            use tokio::io::AsyncReadExt;
            child
                .stdout
                .take()
                .unwrap()
                .read_to_string(&mut stdout)
                .await
                .unwrap();
            break stdout;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let number_before = |marker: &str| {
        stdout
            .split(marker)
            .next()
            .and_then(|t| t.rsplit(' ').next())
            .and_then(|t| t.parse().ok())
    };
    let (user, sys) = children_cpu_secs();
    DaemonRun {
        written: number_before(" alerts written").unwrap_or(0),
        sweep_secs: stdout
            .split("sweep took ")
            .nth(1)
            .and_then(|t| t.split_whitespace().next())
            .and_then(|t| t.parse().ok())
            .unwrap_or(f64::NAN),
        peak_mib: peak_kib as f64 / 1024.0,
        cpu_secs: user + sys - (cpu_before.0 + cpu_before.1),
        sys_secs: sys - cpu_before.1,
        summary: stdout.trim().to_string(),
    }
}

async fn emulator_for_end_to_end() -> sim::SimHandle {
    let lifted = vec![Window {
        calls: 1_000_000,
        per: Duration::from_secs(1),
    }];
    let universe = UniverseSpec {
        seed: 3,
        users: 5_000,
        files: 5_000,
        max_alerts_per_user: 16,
        late_share: 0.0,
        ..UniverseSpec::default()
    };
    let emulator = sim::start(SimConfig {
        limits: lifted,
        universe,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    emulator.warm();
    emulator
}

const FILE_SINK: &str = "[[sinks]]\ntype = \"file\"\npath = \"alerts.ndjson\"\nformat = \"ecs\"\n";

/// The emulator's secret in a file of mode 0600: mde-watch refuses a secret others can read.
fn write_secret(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, sim::SIM_CLIENT_SECRET).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}
