//! `mde-watch demo`: the whole product on one machine in under a minute. It starts the emulator
//! on a free loopback port, runs two full sweeps through the real client (OAuth, both endpoints,
//! the documented limits), the sled store and a file sink under the demo directory, and prints
//! what happened. Virtual time runs fast in the emulator, so the second sweep finds alerts that
//! appeared and changed in the meantime, and suppresses the ones already shipped.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::{AppError, Scope, Service};
use crate::config::Config;
use crate::shutdown::Shutdown;
use crate::sim::{self, SimConfig};
use crate::units::format_duration;

const DEMO_CONFIG: &str = include_str!("../../conf/demo.toml");
const DEMO_FILES: usize = 8;
/// Virtual seconds per real second: one sweep (~15 s) lets half an hour of alerts happen.
const DEMO_SPEED: f64 = 120.0;

pub struct DemoOptions {
    pub dir: PathBuf,
    pub keep_state: bool,
}

pub async fn demo(
    options: &DemoOptions,
    stop: Shutdown,
    out: &mut dyn Write,
) -> Result<(), AppError> {
    let dir = &options.dir;
    let io = |what: &str, err: std::io::Error| AppError::Io(format!("{what}: {err}"));
    if !options.keep_state {
        remove_previous_run(dir).map_err(|e| io("cannot clear the previous demo run", e))?;
    }
    std::fs::create_dir_all(dir).map_err(|e| io(&format!("cannot create {}", dir.display()), e))?;
    write_secret(&dir.join("client-secret")).map_err(|e| io("cannot write the demo secret", e))?;

    let emulator = sim::start(SimConfig {
        speed: DEMO_SPEED,
        ..SimConfig::default()
    })
    .await
    .map_err(|e| io("cannot start the emulator", e))?;
    let files: Vec<String> = (1..=DEMO_FILES)
        .map(|i| format!("\"{}\"", emulator.universe().file_hash(i)))
        .collect();
    let text = DEMO_CONFIG
        .replace("@BASE_URL@", &emulator.base_url())
        .replace("@FILES@", &files.join(", "));
    let config = Config::from_toml(&text, "embedded demo config (conf/demo.toml)", dir, false)
        .map_err(AppError::Config)?;
    let output = dir.join("alerts.ndjson");
    let say =
        |out: &mut dyn Write, text: String| writeln!(out, "{text}").map_err(|e| io("stdout", e));

    say(
        out,
        format!(
            "mde-watch demo: emulator at {} (seed {}, limits 100 per 1m and 1500 per 1h)",
            emulator.base_url(),
            emulator.config().universe.seed
        ),
    )?;
    for warning in &config.warnings {
        say(out, format!("note: {warning}"))?;
    }
    let entries = config.watchlist.len();
    let mut service = Service::build(config, stop.clone())?;
    service.connect().await;
    say(out, service.plan().to_string())?;
    let started = std::time::Instant::now();
    for sweep in 1..=2 {
        if stop.is_triggered() {
            break;
        }
        say(
            out,
            format!("sweep {sweep}: polling {entries} entries at the documented pace..."),
        )?;
        let before = service.counters();
        let report = service.sweep(Scope::Full).await?;
        let after = service.counters();
        say(out, format!(
            "sweep {sweep}: {} calls, {} alerts received, {} written, {} duplicates suppressed{}",
            after.calls - before.calls,
            after.alerts_received - before.alerts_received,
            after.alerts_published - before.alerts_published,
            after.duplicates_suppressed - before.duplicates_suppressed,
            if report.failed.is_empty() { String::new() } else { format!(", {} entries failed", report.failed.len()) },
        ))?;
    }
    let stored = service.store().stats()?.seen_alerts;
    let totals = service.close().await?;
    let emulator_stats = emulator.stats();
    emulator.stop().await;

    say(
        out,
        format!(
            "summary after {}:",
            format_duration(std::time::Duration::from_secs(started.elapsed().as_secs()))
        ),
    )?;
    say(
        out,
        format!(
            "  entries polled:        {} ({} sweeps of {entries})",
            totals.entries_polled, totals.sweeps
        ),
    )?;
    say(
        out,
        format!(
            "  calls made:            {} ({} answered 429)",
            totals.calls, totals.throttled
        ),
    )?;
    say(
        out,
        format!("  alerts written:        {}", totals.alerts_published),
    )?;
    say(
        out,
        format!("  duplicates suppressed: {}", totals.duplicates_suppressed),
    )?;
    say(
        out,
        format!("  output file:           {}", output.display()),
    )?;
    say(
        out,
        format!(
            "  store:                 {} ({stored} alert ids)",
            dir.join("store").display()
        ),
    )?;
    say(
        out,
        format!(
            "  emulator: {} token calls, {} alert calls, at most {} in any 60 s (limit 100)",
            emulator_stats.token_calls,
            emulator_stats.user_calls + emulator_stats.file_calls,
            emulator_stats.max_in_any_60s
        ),
    )?;
    Ok(())
}

fn remove_previous_run(dir: &Path) -> std::io::Result<()> {
    let store = dir.join("store");
    if store.exists() {
        std::fs::remove_dir_all(store)?;
    }
    if let Ok(listing) = std::fs::read_dir(dir) {
        for entry in listing.flatten() {
            if entry
                .file_name()
                .to_string_lossy()
                .starts_with("alerts.ndjson")
            {
                std::fs::remove_file(entry.path())?;
            }
        }
    }
    Ok(())
}

/// The emulator's secret, in a file only this user can read: the same path a real secret takes.
fn write_secret(path: &Path) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(sim::SIM_CLIENT_SECRET.as_bytes())
}
