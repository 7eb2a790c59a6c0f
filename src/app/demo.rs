//! `mde-watch demo`: the whole product on one machine in under a minute. It starts the emulator
//! on a free loopback port, runs two full sweeps through the real client (OAuth, both endpoints,
//! the documented limits), the sled store and one file sink per format under the demo directory,
//! and prints what happened. Virtual time runs fast in the emulator, so the second sweep finds
//! alerts that appeared and changed in the meantime, and suppresses the ones already shipped.
//!
//! The demo only ever removes what it created: it works in a directory that does not exist yet,
//! an empty one, or one a previous demo marked as its own, and there it removes only the store
//! and the output files its configuration names. Anything else is refused before anything runs
//! (`--dir /var/lib/mde-watch` cannot wipe a production store).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::{AppError, Scope, Service};
use crate::config::{Config, SinkKind, UpdatePolicy};
use crate::shutdown::Shutdown;
use crate::sim::{self, SimConfig, SimHandle};
use crate::stats::Snapshot;
use crate::units::format_duration;

const DEMO_CONFIG: &str = include_str!("../../conf/demo.toml");
const DEMO_FILES: usize = 8;
/// Virtual seconds per real second: one sweep (~15 s) lets half an hour of alerts happen.
const DEMO_SPEED: f64 = 120.0;
/// Marks a directory as the demo's own: only there does it remove a previous run's files.
pub const DEMO_MARKER: &str = ".mde-watch-demo";

pub struct DemoOptions {
    pub dir: PathBuf,
    pub keep_state: bool,
}

/// Why the demo will not use a directory.
#[derive(Debug, thiserror::Error)]
pub enum DemoDirError {
    #[error("{dir} is not empty and was not made by `mde-watch demo` (it has no {DEMO_MARKER}); the demo removes only what it created, so it will not work there: pick another --dir")]
    NotOurs { dir: String },
    #[error("cannot prepare the demo directory {dir}")]
    Io {
        dir: String,
        #[source]
        source: std::io::Error,
    },
}

/// Makes `dir` the demo's: creates it (or takes it empty) and marks it, or accepts it marked.
pub fn claim_dir(dir: &Path) -> Result<(), DemoDirError> {
    let io = |source| DemoDirError::Io {
        dir: dir.display().to_string(),
        source,
    };
    if dir.join(DEMO_MARKER).is_file() {
        return Ok(());
    }
    match std::fs::read_dir(dir) {
        Ok(mut listing) => {
            if listing.next().is_some() {
                return Err(DemoDirError::NotOurs {
                    dir: dir.display().to_string(),
                });
            }
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir).map_err(io)?
        }
        Err(err) => return Err(io(err)),
    }
    std::fs::write(
        dir.join(DEMO_MARKER),
        "made by `mde-watch demo`: it may remove the store and the alerts.* files it wrote here\n",
    )
    .map_err(io)
}

/// Removes a previous run's store and output files: the ones this configuration names, no others.
fn remove_previous_run(config: &Config) -> std::io::Result<()> {
    if config.store.path.exists() {
        std::fs::remove_dir_all(&config.store.path)?;
    }
    for sink in &config.sinks {
        if let SinkKind::File(file) = &sink.kind {
            let rotated = (1..=file.keep).map(|n| {
                let mut name = file.path.as_os_str().to_owned();
                name.push(format!(".{n}"));
                PathBuf::from(name)
            });
            for path in std::iter::once(file.path.clone()).chain(rotated) {
                match std::fs::remove_file(&path) {
                    Err(err) if err.kind() != std::io::ErrorKind::NotFound => return Err(err),
                    _ => {}
                }
            }
        }
    }
    Ok(())
}

pub async fn demo(
    options: &DemoOptions,
    stop: Shutdown,
    out: &mut dyn Write,
) -> Result<(), AppError> {
    let dir = &options.dir;
    let io = |what: &str, source: std::io::Error| AppError::Io {
        what: what.to_string(),
        source,
    };
    claim_dir(dir)?;
    write_secret(&dir.join("client-secret")).map_err(|e| io("cannot write the demo secret", e))?;

    let emulator = sim::start(SimConfig {
        speed: DEMO_SPEED,
        ..SimConfig::default()
    })
    .await
    .map_err(|e| io("cannot start the emulator", e))?;
    let config = demo_config(&emulator, dir)?;
    if !options.keep_state {
        remove_previous_run(&config).map_err(|e| io("cannot clear the previous demo run", e))?;
    }
    let outputs = file_outputs(&config);
    let updates = config.updates;
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
        say(out, sweep_line(sweep, &before, &after, report.failed.len()))?;
    }
    let stored = service.store().stats()?.seen_alerts;
    let totals = service.close().await?;
    let emulator_stats = emulator.stats();
    emulator.stop().await;

    let ended = Ended {
        elapsed: std::time::Duration::from_secs(started.elapsed().as_secs()),
        entries,
        totals,
        stored,
        updates,
        store: dir.join("store"),
        outputs,
        emulator: emulator_stats,
    };
    for line in ended.summary() {
        say(out, line)?;
    }
    Ok(())
}

/// The embedded demo config, pointed at this emulator and its first files.
fn demo_config(emulator: &SimHandle, dir: &Path) -> Result<Config, AppError> {
    let files: Vec<String> = (1..=DEMO_FILES)
        .map(|i| format!("\"{}\"", emulator.universe().file_hash(i)))
        .collect();
    let text = DEMO_CONFIG
        .replace("@BASE_URL@", &emulator.base_url())
        .replace("@FILES@", &files.join(", "));
    Config::from_toml(&text, "embedded demo config (conf/demo.toml)", dir, false)
        .map_err(AppError::Config)
}

/// Each file sink's format and path, for the summary.
fn file_outputs(config: &Config) -> Vec<(String, PathBuf)> {
    config
        .sinks
        .iter()
        .filter_map(|sink| match &sink.kind {
            SinkKind::File(file) => Some((sink.format.as_str().to_string(), file.path.clone())),
            _ => None,
        })
        .collect()
}

/// What one sweep did, from the counters before and after it.
fn sweep_line(sweep: u32, before: &Snapshot, after: &Snapshot, failed: usize) -> String {
    format!(
        "sweep {sweep}: {} calls, {} alerts received, {} written, {} duplicates suppressed{}",
        after.calls - before.calls,
        after.alerts_received - before.alerts_received,
        after.alerts_published - before.alerts_published,
        after.duplicates_suppressed - before.duplicates_suppressed,
        if failed == 0 {
            String::new()
        } else {
            format!(", {failed} entries failed")
        },
    )
}

/// What a demo run did, for its closing summary.
struct Ended {
    elapsed: std::time::Duration,
    /// Watched entries.
    entries: usize,
    totals: crate::stats::Snapshot,
    /// Alert ids in the store.
    stored: usize,
    updates: UpdatePolicy,
    store: PathBuf,
    /// Each output file, with its format.
    outputs: Vec<(String, PathBuf)>,
    emulator: crate::sim::SimStats,
}

impl Ended {
    fn summary(&self) -> Vec<String> {
        let totals = &self.totals;
        let stored = self.stored;
        let updates_note = match self.updates {
            UpdatePolicy::Emit => "[updates] policy = \"emit\" ships a changed alert again",
            UpdatePolicy::Ignore => "[updates] policy = \"ignore\" ships each alert once",
        };
        let mut lines = vec![
            format!("summary after {}:", format_duration(self.elapsed)),
            format!(
                "  entries polled:        {} ({} sweeps of {})",
                totals.entries_polled, totals.sweeps, self.entries
            ),
            format!(
                "  calls made:            {} ({} answered 429)",
                totals.calls, totals.throttled
            ),
            format!(
                "  alerts written:        {} to each output file: {} new, {} updates of alerts already shipped ({updates_note})",
                totals.alerts_published,
                totals.alerts_new,
                totals.alerts_published.saturating_sub(totals.alerts_new)
            ),
            format!(
                "  duplicates suppressed: {} (alerts polled again unchanged, or reached through a user and a file at once)",
                totals.duplicates_suppressed
            ),
            format!(
                "  store:                 {} ({stored} alert ids: one per distinct alert, whatever it was written as)",
                self.store.display()
            ),
            "  output files (one per format, the same alerts in each):".to_string(),
        ];
        for (format, path) in &self.outputs {
            lines.push(format!("    {format:<11} {}", path.display()));
        }
        lines.push("  each event names two tenants: mde_watch.tenant_id is the tenant mde-watch signs in to; the alert's own aadTenantId (ECS organization.id and cloud.account.id, OCSF metadata.tenant_uid) is where the alert was raised, which differs when you watch a tenant you manage for another".to_string());
        lines.push(format!(
            "  emulator: {} token calls, {} alert calls, at most {} in any 60 s (limit 100); its users and files: GET /sim/universe",
            self.emulator.token_calls,
            self.emulator.user_calls + self.emulator.file_calls,
            self.emulator.max_in_any_60s
        ));
        lines
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_new_empty_or_marked_directories_are_claimed() {
        let root = tempfile::tempdir().unwrap();
        let fresh = root.path().join("new/demo");
        claim_dir(&fresh).unwrap();
        assert!(fresh.join(DEMO_MARKER).is_file());
        claim_dir(&fresh).unwrap();

        let foreign = root.path().join("var-lib-mde-watch");
        std::fs::create_dir_all(foreign.join("store")).unwrap();
        std::fs::write(foreign.join("alerts.ndjson"), "{}\n").unwrap();
        let err = claim_dir(&foreign).unwrap_err();
        assert!(matches!(err, DemoDirError::NotOurs { .. }), "{err}");
        assert!(err.to_string().contains("pick another --dir"));
        assert!(foreign.join("store").is_dir() && foreign.join("alerts.ndjson").is_file());
        assert!(!foreign.join(DEMO_MARKER).exists());
    }
}
