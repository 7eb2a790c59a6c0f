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
use mde_watch::store::{decide, fingerprint, AlertDigest, SeenRecord, Store};
use mde_watch::watchlist::EntryKind;

// The tests' tansu and rsyslog helpers: one way to start each. The bench uses part of them.
#[allow(dead_code)]
#[path = "../tests/common/certs.rs"]
mod certs;
#[allow(dead_code)]
#[path = "../tests/common/kafka.rs"]
mod kafka;
#[allow(dead_code)]
#[path = "../tests/common/rsyslog.rs"]
mod rsyslog;

const FIXTURES: &[&str] = &[
    include_str!("../tests/fixtures/user-alerts-user1.json"),
    include_str!("../tests/fixtures/file-alerts-470454e35ea71dd971c2b0cbb29e0225cd0526cb.json"),
    include_str!("../tests/fixtures/quirks.json"),
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
        bench_ecs();
    }
    if wanted("store") {
        bench_store();
    }
    if wanted("end_to_end") {
        bench_end_to_end();
    }
    if wanted("steady") {
        bench_steady();
    }
    if wanted("heavy") {
        bench_heavy();
    }
    if wanted("stages") {
        bench_stages();
    }
    if wanted("feed") {
        bench_feed();
    }
    if wanted("kafka") {
        bench_kafka();
    }
    if wanted("syslog") {
        bench_syslog();
    }
}

fn bench_ecs() {
    let alerts: Vec<_> = FIXTURES
        .iter()
        .flat_map(|f| parse_page(f.as_bytes()).unwrap().alerts)
        .collect();
    let matches = [Match {
        kind: EntryKind::User,
        value: "user1".into(),
        original: None,
    }];
    let context = EventContext::new(
        &matches,
        "190241b8-187f-4db3-8148-d73536294b3a",
        "bench",
        Change::New,
        "2026-11-23T00:00:00Z",
    );
    for format in Format::ALL {
        // Five timed runs; the median is printed, so one descheduling on a shared machine does
        // not decide the figure.
        let rounds = 40_000;
        let mut rates = Vec::new();
        let mut bytes = 0usize;
        for _ in 0..5 {
            bytes = 0;
            let started = Instant::now();
            for round in 0..rounds {
                let alert = &alerts[round % alerts.len()];
                bytes += encode(format, alert, &context).unwrap().len();
            }
            rates.push(rounds as f64 / started.elapsed().as_secs_f64());
        }
        rates.sort_by(f64::total_cmp);
        println!(
            "encode {:<7} {:>10.0} alerts/s on one core, median of 5 (min {:.0}, max {:.0}; {} fixture alerts, {} B/event avg)  target >= 200000",
            format.as_str(),
            rates[2],
            rates[0],
            rates[4],
            alerts.len(),
            bytes / rounds
        );
    }
}

fn record(i: u64) -> SeenRecord {
    let now = chrono::Utc::now().timestamp();
    SeenRecord {
        last_update: Some(1_790_000_000_000_000 + i as i64),
        fingerprint: i as u32,
        first_observed: now,
        last_observed: now,
    }
}

/// Ids of alerts from the past months: Defender ids start with the creation time in ticks
/// (`da638…`), so older alerts sort before the ones the emulator serves, as in production.
fn alert_id(i: u64) -> String {
    format!(
        "da{:018}_{}",
        638_900_000_000_000_000u64 + i * 7919,
        (i * 2_654_435_761) as i32
    )
}

fn fill(store: &Store, count: u64) {
    // Modest batches: one 50,000-record sled batch balloons memory (gigabytes, measured).
    let batch = 5_000;
    for start in (0..count).step_by(batch as usize) {
        let records: Vec<(String, SeenRecord)> = (start..(start + batch).min(count))
            .map(|i| (alert_id(i), record(i)))
            .collect();
        store.commit(&records, &[], None).unwrap();
    }
}

fn dir_size(path: &Path) -> u64 {
    std::fs::read_dir(path)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_size(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

fn bench_store() {
    let dir = tempfile::tempdir().unwrap();
    // BENCH_STORE_DIR keeps the filled store for inspection (`mde-watch state stats`).
    let path = std::env::var_os("BENCH_STORE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| dir.path().join("store"));
    let config = StoreConfig {
        path,
        retention: Duration::from_secs(86_400 * 90),
        cache_bytes: 16 << 20,
    };
    let stored = 1_000_000u64;
    let fill_started = Instant::now();
    fill(&Store::open(&config).unwrap(), stored);
    println!(
        "store: filled {stored} ids in {:.1} s",
        fill_started.elapsed().as_secs_f64()
    );
    // Measured on a freshly opened store, as the daemon finds it after a restart.
    let opening = Instant::now();
    let store = Store::open(&config).unwrap();
    println!(
        "store: reopened in {:.2} s (in-memory index rebuilt from the log, {:.1} MiB)",
        opening.elapsed().as_secs_f64(),
        store.stats().unwrap().index_bytes as f64 / 1048576.0
    );

    // Half the incoming alerts are already stored (re-reads), half are new; commit batches of
    // 2,000 alerts, each flushed, as the pipeline does after each sink acknowledgement.
    let incoming = 400_000u64;
    let batch = 2_000u64;
    let started = Instant::now();
    let mut new_alerts = 0;
    for start in (0..incoming).step_by(batch as usize) {
        let mut records = Vec::with_capacity(batch as usize);
        for i in start..start + batch {
            let n = if i % 2 == 0 { i / 2 } else { stored + i };
            let id = alert_id(n);
            let digest = AlertDigest {
                last_update: Some(1_790_000_000_000_000 + n as i64),
                fingerprint: fingerprint(&[Some("New")]) ^ n as u32 ^ fingerprint(&[Some("New")]),
            };
            let previous = store.previous(&id).unwrap();
            if decide(&digest, previous.as_ref()) != mde_watch::store::Decision::Unchanged {
                new_alerts += 1;
                records.push((id, record(n)));
            }
        }
        store.commit(&records, &[], None).unwrap();
    }
    let elapsed = started.elapsed();
    store.flush().unwrap();
    println!(
        "store decide+commit:     {:>10.0} alerts/s with {stored} ids stored ({new_alerts} new of {incoming}, batches of {batch}, flushed)  target >= 200000",
        incoming as f64 / elapsed.as_secs_f64()
    );
    println!(
        "store size on disk:      {:>10.1} MiB for {} ids (sled size_on_disk {:.1} MiB)",
        dir_size(&config.path) as f64 / 1048576.0,
        stored + new_alerts,
        store.stats().unwrap().size_on_disk as f64 / 1048576.0
    );
    // The daily retention pass rewrites every live record: how long it holds the store.
    let compacting = Instant::now();
    let done = store.compact(0, chrono::Utc::now().timestamp()).unwrap();
    println!(
        "store compaction:        {:>10.2} s for {} live records ({} superseded dropped)",
        compacting.elapsed().as_secs_f64(),
        done.kept,
        done.dropped
    );
}

struct DaemonRun {
    written: usize,
    sweep_secs: f64,
    peak_mib: f64,
    /// User + system CPU seconds of the daemon (kernel accounting of the waited-for child).
    cpu_secs: f64,
    summary: String,
}

/// User + system CPU seconds of every child this process has waited for.
fn children_cpu_secs() -> f64 {
    // SAFETY: getrusage only writes into the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
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
        "[api]\ntenant_id = \"{}\"\nclient_id = \"{}\"\nclient_secret_file = \"secret\"\nbase_url = \"{url}\"\nlogin_url = \"{url}\"\n\
         [[limits.window]]\ncalls = 1000000\nper = \"1s\"\n\
         [watchlist]\nusers_file = \"users.txt\"\nfiles_file = \"hashes.txt\"\n\
         [store]\npath = \"store\"\ncache = \"{cache}\"\n\
         [pipeline]\nbatch_entries = {batch}\nconcurrency = 8\n{pipeline}\n{sinks}\n{extra}",
        sim::SIM_TENANT,
        sim::SIM_CLIENT_ID,
        url = emulator.base_url(),
        cache = std::env::var("BENCH_STORE_CACHE").unwrap_or_else(|_| "8MiB".into()),
        batch = std::env::var("BENCH_BATCH").unwrap_or_else(|_| "64".into()),
        // e.g. BENCH_PIPELINE='in_flight_batches = 4\nqueue_bytes = "8MiB"'
        pipeline = std::env::var("BENCH_PIPELINE").unwrap_or_default().replace("\\n", "\n"),
    );
    let config_path = dir.join("mde-watch.toml");
    std::fs::write(&config_path, config).unwrap();
    let store_config = StoreConfig {
        path: dir.join("store"),
        retention: Duration::from_secs(86_400),
        cache_bytes: 16 << 20,
    };
    fill(&Store::open(&store_config).unwrap(), prefill);
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
        if child.try_wait().unwrap().is_some() {
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
    DaemonRun {
        written: number_before(" alerts written").unwrap_or(0),
        sweep_secs: stdout
            .split("sweep took ")
            .nth(1)
            .and_then(|t| t.split_whitespace().next())
            .and_then(|t| t.parse().ok())
            .unwrap_or(f64::NAN),
        peak_mib: peak_kib as f64 / 1024.0,
        cpu_secs: children_cpu_secs() - cpu_before,
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

fn bench_end_to_end() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let emulator = emulator_for_end_to_end().await;
        let prefill: u64 = std::env::var("BENCH_PREFILL").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
        let run = run_daemon(&emulator, FILE_SINK, prefill).await;
        println!("end to end: {}", run.summary);
        println!(
            "end to end emulator->file: {:>10.0} alerts/s ({} alerts, 10000 entries, {prefill} ids stored, sweep {:.2} s)  target >= 20000",
            run.written as f64 / run.sweep_secs,
            run.written,
            run.sweep_secs
        );
        println!("end to end peak RSS:       {:>10.1} MiB (VmHWM, 10000-entry watchlist, {prefill} stored ids)  target <= 64", run.peak_mib);
        emulator.stop().await;
    });
}

/// The heavy shapes of issue 13: 200 entries × 500 alerts (~1 MB answers) and one entry with
/// 50,000 alerts (~100 MB), `[pipeline]` defaults, file sink (ECS), limits lifted, pages
/// pre-rendered by the emulator so that it only copies bytes. Alerts/s (over the sweep), CPU µs
/// per alert (the daemon's user + system time over the alerts written) and peak RSS.
fn bench_heavy() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        for (users, per_user) in [(200usize, 500u32), (1, 50_000)] {
            let emulator = sim::start(SimConfig {
                limits: vec![Window {
                    calls: 1_000_000,
                    per: Duration::from_secs(1),
                }],
                universe: UniverseSpec {
                    seed: 13,
                    users,
                    files: 0,
                    alerts_per_user: Some(per_user),
                    late_share: 0.0,
                    change_share: 0.0,
                    ..UniverseSpec::default()
                },
                ..SimConfig::default()
            })
            .await
            .unwrap();
            emulator.warm();
            emulator.warm_user_pages();
            let dir = tempfile::tempdir().unwrap();
            let users_list: String = (1..=users).map(|i| format!("user{i}\n")).collect();
            std::fs::write(dir.path().join("users.txt"), users_list).unwrap();
            write_secret(&dir.path().join("secret"));
            let config = format!(
                "[api]\ntenant_id = \"{}\"\nclient_id = \"{}\"\nclient_secret_file = \"secret\"\nbase_url = \"{url}\"\nlogin_url = \"{url}\"\n\
                 [[limits.window]]\ncalls = 1000000\nper = \"1s\"\n\
                 [watchlist]\nusers_file = \"users.txt\"\n\
                 [store]\npath = \"store\"\n\
                 [[sinks]]\ntype = \"file\"\npath = \"alerts.ndjson\"\nformat = \"ecs\"\nmax_size = \"1GiB\"\n{}",
                sim::SIM_TENANT,
                sim::SIM_CLIENT_ID,
                std::env::var("BENCH_PIPELINE").unwrap_or_default().replace("\\n", "\n"),
                url = emulator.base_url(),
            );
            let config_path = dir.path().join("mde-watch.toml");
            std::fs::write(&config_path, config).unwrap();
            let run = run_once(&config_path).await;
            let shape = format!("{users} x {per_user}");
            println!("heavy {shape}: {}", run.summary);
            println!(
                "heavy {shape:>12}: {:>8.0} alerts/s  {:>5.1} µs CPU/alert  peak RSS {:>5.1} MiB  ({} alerts, sweep {:.2} s, CPU {:.2} s)  targets >= 100000/s, <= 8 µs, <= 64 MiB",
                run.written as f64 / run.sweep_secs,
                run.cpu_secs * 1e6 / run.written.max(1) as f64,
                run.peak_mib,
                run.written,
                run.sweep_secs,
                run.cpu_secs,
            );
            emulator.stop().await;
        }
    });
}

/// Feed mode at scale: a tenant of 100,000 alerts over a day (20,000 users with 5 each), read from the
/// start through `/api/alerts` in 10,000-alert pages (~20 MB each) and matched against 10,000
/// watched users and 2,000 watched files; file sink (ECS), limits lifted, alerts pre-rendered.
/// Alerts read/s and written/s over the poll, CPU µs per alert read, peak RSS.
fn bench_feed() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let emulator = sim::start(SimConfig {
            limits: vec![Window {
                calls: 1_000_000,
                per: Duration::from_secs(1),
            }],
            universe: UniverseSpec {
                seed: 29,
                users: 20_000,
                files: 4_000,
                alerts_per_user: Some(5),
                // Alerts spread over a day, as a tenant's are, all visible when the poll runs.
                late_share: 1.0,
                horizon_secs: 86_400,
                change_share: 0.0,
                ..UniverseSpec::default()
            },
            ..SimConfig::default()
        })
        .await
        .unwrap();
        emulator.advance(Duration::from_secs(86_401));
        emulator.warm();
        let dir = tempfile::tempdir().unwrap();
        let users: String = (1..=10_000).map(|i| format!("user{}\n", 2 * i)).collect();
        let files: String = (1..=2_000)
            .map(|i| format!("{}\n", emulator.universe().file_hash(2 * i)))
            .collect();
        std::fs::write(dir.path().join("users.txt"), users).unwrap();
        std::fs::write(dir.path().join("hashes.txt"), files).unwrap();
        write_secret(&dir.path().join("secret"));
        let config = format!(
            "[api]\ntenant_id = \"{}\"\nclient_id = \"{}\"\nclient_secret_file = \"secret\"\nbase_url = \"{url}\"\nlogin_url = \"{url}\"\ntimeout = \"60s\"\n\
             [[limits.window]]\ncalls = 1000000\nper = \"1s\"\n\
             [watchlist]\nusers_file = \"users.txt\"\nfiles_file = \"hashes.txt\"\n\
             [source]\nmode = \"feed\"\npage_size = 10000\n\
             [store]\npath = \"store\"\n\
             [[sinks]]\ntype = \"file\"\npath = \"alerts.ndjson\"\nformat = \"ecs\"\nmax_size = \"1GiB\"\n{}",
            sim::SIM_TENANT,
            sim::SIM_CLIENT_ID,
            std::env::var("BENCH_PIPELINE").unwrap_or_default().replace("\\n", "\n"),
            url = emulator.base_url(),
        );
        let config_path = dir.path().join("mde-watch.toml");
        std::fs::write(&config_path, config).unwrap();
        let run = run_once(&config_path).await;
        println!("feed: {}", run.summary);
        let read: u64 = run
            .summary
            .split(" alerts read")
            .next()
            .and_then(|t| t.rsplit(' ').next())
            .and_then(|t| t.parse().ok())
            .unwrap_or(0);
        println!(
            "feed 10000-alert pages: {:>8.0} alerts read/s  {:>8.0} written/s  {:>5.1} µs CPU/alert read  peak RSS {:>5.1} MiB  ({read} read, {} written, poll {:.2} s, CPU {:.2} s)",
            read as f64 / run.sweep_secs,
            run.written as f64 / run.sweep_secs,
            run.cpu_secs * 1e6 / read.max(1) as f64,
            run.peak_mib,
            run.written,
            run.sweep_secs,
            run.cpu_secs,
        );
        emulator.stop().await;
    });
}

/// CPU per alert of each stage on one core, over the emulator's ~2 KB alerts: where the end-to-end
/// figure goes. Medians of 5 runs, nanoseconds per alert.
fn bench_stages() {
    let universe = sim::Universe::new(UniverseSpec {
        seed: 13,
        users: 2,
        files: 0,
        alerts_per_user: Some(500),
        late_share: 0.0,
        change_share: 0.0,
        ..UniverseSpec::default()
    });
    let texts: Vec<String> = (0..universe.alerts.len())
        .filter_map(|i| universe.render_json(i, 0).map(|t| t.to_string()))
        .collect();
    let bytes_each = texts.iter().map(String::len).sum::<usize>() / texts.len();
    let polled: Vec<_> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| {
            mde_watch::defender::odata::read_alert(i, t.as_bytes())
                .unwrap()
                .unwrap()
        })
        .collect();
    let matches = [Match {
        kind: EntryKind::User,
        value: "user1".into(),
        original: None,
    }];
    let context = EventContext::new(&matches, "t", "bench", Change::New, "2026-11-23T00:00:00Z");
    // Fewer rounds under callgrind (instruction counts are exact, and its runs are slow).
    let rounds: usize = std::env::var("BENCH_STAGE_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let time = |name: &str, work: &mut dyn FnMut(usize)| {
        let mut runs: Vec<f64> = (0..5)
            .map(|_| {
                let started = Instant::now();
                for i in 0..rounds {
                    work(i % texts.len());
                }
                started.elapsed().as_nanos() as f64 / rounds as f64
            })
            .collect();
        runs.sort_by(f64::total_cmp);
        println!("stage {name:<34} {:>7.0} ns/alert", runs[2]);
    };
    println!("stages over {} alerts of ~{bytes_each} bytes", texts.len());
    time("validate (&RawValue)", &mut |i| {
        std::hint::black_box(
            serde_json::from_str::<&serde_json::value::RawValue>(&texts[i]).unwrap(),
        );
    });
    // The envelope scan that cuts a streamed page into its alerts, fed in 64 KiB chunks.
    let page = format!("{{\"value\":[{}]}}", texts.join(","));
    let mut pages = 0;
    time("stream (cut a page into alerts)", &mut |i| {
        // One page per `texts.len()` rounds, so that the figure is per alert.
        if i == 0 {
            let mut reader = mde_watch::defender::stream::PageReader::new();
            for chunk in page.as_bytes().chunks(64 * 1024) {
                reader
                    .feed(chunk, &mut |bytes| {
                        std::hint::black_box(bytes);
                    })
                    .unwrap();
            }
            pages += reader.finish().unwrap().elements;
        }
    });
    std::hint::black_box(pages);
    time("read_alert (one pass: view + members)", &mut |i| {
        std::hint::black_box(
            mde_watch::defender::odata::read_alert(i, texts[i].as_bytes())
                .unwrap()
                .unwrap(),
        );
    });
    time("digest (dedup key)", &mut |i| {
        std::hint::black_box(AlertDigest::of(polled[i].alert()));
    });
    for format in [Format::Ecs, Format::Cef, Format::Ocsf, Format::Raw] {
        time(&format!("encode {}", format.as_str()), &mut |i| {
            std::hint::black_box(encode(format, &polled[i], &context).unwrap());
        });
    }
}

/// `mde-watch run` sweeping every 5 s for 60 s (the emulator's clock moves 6 h between sweeps,
/// so alerts change status and the store takes new records): a daemon's resident memory must
/// level off after its first sweeps, not creep.
fn bench_steady() {
    const RUN: Duration = Duration::from_secs(60);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let emulator = emulator_for_end_to_end().await;
        let prefill: u64 = std::env::var("BENCH_PREFILL")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1_000_000);
        let dir = tempfile::tempdir().unwrap();
        let schedule = "[schedule]\ncron = \"*/5 * * * * *\"\n";
        let config = daemon_config(dir.path(), &emulator, FILE_SINK, schedule, prefill);
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_mde-watch"))
            .args(["run", "--config"])
            .arg(&config)
            .env("RUST_LOG", "error")
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let pid = child.id().unwrap();
        let started = Instant::now();
        let mut rss_at = Vec::new();
        let mut next_advance = Duration::from_secs(5);
        while started.elapsed() < RUN {
            tokio::time::sleep(Duration::from_millis(250)).await;
            if started.elapsed() >= next_advance {
                emulator.advance(Duration::from_secs(6 * 3600));
                next_advance += Duration::from_secs(5);
            }
            if let Some((_, rss)) = memory_kib(pid) {
                rss_at.push((started.elapsed().as_secs(), rss));
            }
        }
        let (peak, _) = memory_kib(pid).unwrap_or_default();
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
        let stopped = tokio::time::timeout(Duration::from_secs(30), child.wait()).await;
        let mib = |kib: u64| kib as f64 / 1024.0;
        let highest_in = |from: u64, to: u64| {
            rss_at
                .iter()
                .filter(|(at, _)| (from..to).contains(at))
                .map(|(_, rss)| *rss)
                .max()
                .unwrap_or(0)
        };
        let stats = emulator.stats();
        println!(
            "steady run, {prefill} ids stored: {} sweeps of 10000 entries in {} s; highest RSS in 0-20 s {:.1} MiB, 20-40 s {:.1} MiB, 40-60 s {:.1} MiB; peak {:.1} MiB; stopped cleanly: {}",
            (stats.user_calls + stats.file_calls) / 10_000,
            RUN.as_secs(),
            mib(highest_in(0, 20)),
            mib(highest_in(20, 40)),
            mib(highest_in(40, 60)),
            mib(peak),
            matches!(stopped, Ok(Ok(status)) if status.success()),
        );
        emulator.stop().await;
    });
}

/// Kafka against the file sink on the same alerts, both from an empty store.
fn bench_kafka() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let emulator = emulator_for_end_to_end().await;
        let tansu = kafka::Tansu::start();
        tansu.create_topic("bench", 3);
        let file = run_daemon(&emulator, FILE_SINK, 0).await;
        let kafka_sink = format!("[[sinks]]\ntype = \"kafka\"\nbrokers = \"{}\"\ntopic = \"bench\"\nformat = \"ecs\"\n{}", tansu.brokers(), std::env::var("BENCH_KAFKA_EXTRA").unwrap_or_default().replace("\\n", "\n"));
        let kafka = run_daemon(&emulator, &kafka_sink, 0).await;
        let file_rate = file.written as f64 / file.sweep_secs;
        let kafka_rate = kafka.written as f64 / kafka.sweep_secs;
        println!("kafka: {}", kafka.summary);
        println!(
            "emulator->kafka (acked):   {kafka_rate:>10.0} alerts/s ({} alerts, acks=all, idempotent, tansu on loopback; compression zstd unless BENCH_KAFKA_EXTRA says otherwise)  target >= 20000",
            kafka.written
        );
        println!("emulator->file:            {file_rate:>10.0} alerts/s ({} alerts, same run conditions)", file.written);
        println!("kafka/file ratio:          {:>10.2}  target >= 0.50", kafka_rate / file_rate);
        emulator.stop().await;
    });
}

/// Syslog TCP (octet-counted RFC 5424, CEF) into a real rsyslogd, from an empty store.
fn bench_syslog() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let emulator = emulator_for_end_to_end().await;
        let dir = tempfile::tempdir().unwrap();
        let receiver = rsyslog::Rsyslog::start(dir.path(), None);
        let sink = format!(
            "[[sinks]]\ntype = \"syslog\"\naddress = \"127.0.0.1:{}\"\ntransport = \"tcp\"\nformat = \"cef\"\n",
            receiver.tcp_port
        );
        let run = run_daemon(&emulator, &sink, 0).await;
        let received = receiver.wait_for(run.written, Duration::from_secs(60)).len();
        println!("syslog: {}", run.summary);
        println!(
            "emulator->syslog tcp:      {:>10.0} alerts/s ({} alerts written, {received} received by rsyslogd, CEF, RFC 5424, octet-counting)  target >= 20000",
            run.written as f64 / run.sweep_secs,
            run.written
        );
        emulator.stop().await;
    });
}

/// The emulator's secret in a file of mode 0600: mde-watch refuses a secret others can read.
fn write_secret(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, sim::SIM_CLIENT_SECRET).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}
