//! What each command does: one function per command, each returning the process's exit code.
//! `anyhow` lives here and in `main.rs` only: everything below returns typed errors.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;

use crate::cli::{Cli, Command, Generated, SimArgs, StateAction};
use mde_watch::app::demo::{demo, DemoOptions};
use mde_watch::app::reload::Reload;
use mde_watch::app::state;
use mde_watch::app::{check, AppError, Scope, Service, SweepReport};
use mde_watch::config::Config;
use mde_watch::notify::Notifier;
use mde_watch::schedule::limiter::Window;
use mde_watch::shutdown;
use mde_watch::sim::{self, Faults, SimConfig, UniverseSpec};
use mde_watch::stats::Snapshot;
use mde_watch::store::Store;
use mde_watch::telemetry::otlp;

/// Deliveries of one batch `once` and `backfill` try before they stop (about 8 s of backoff).
const ONCE_DELIVERY_ATTEMPTS: u32 = 5;

pub async fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Check { connect, file } => check_config(&file.config, connect).await,
        Command::Run(file) => run_service(&file.config).await,
        Command::Once(file) => once(&file.config).await,
        Command::Demo { dir, keep_state } => run_demo(DemoOptions { dir, keep_state }).await,
        Command::Sim(args) => run_sim(args).await,
        Command::Generate { what } => generate(what),
        Command::State { action, file } => state(&file.config, action),
        Command::Backfill { since, file } => backfill(&file.config, &since).await,
    }
}

/// `check`: the exit code says whether the config holds (and, with `--connect`, reaches).
async fn check_config(path: &Path, connect: bool) -> anyhow::Result<ExitCode> {
    let code = check::check(path, connect, &mut std::io::stdout()).await?;
    Ok(ExitCode::from(code as u8))
}

/// `run`: the service until SIGTERM or SIGINT, with OTLP metrics when configured.
async fn run_service(path: &Path) -> anyhow::Result<ExitCode> {
    let config = load(path)?;
    let (trigger, stop) = shutdown::channel();
    shutdown::on_signals(trigger).context("cannot install signal handlers")?;
    let notifier = Notifier::from_env().context("systemd notification settings")?;
    let reload =
        Reload::on_sighup(path.to_path_buf()).context("cannot install the SIGHUP handler")?;
    let telemetry = config.telemetry.clone();
    let service = Service::build(config, stop)?;
    let meters = if telemetry.otlp_endpoint.is_some() {
        let sources = service.telemetry_sources();
        tokio::task::spawn_blocking(move || {
            otlp::Target::of(&telemetry)
                .map(|target| otlp::meter_provider(target, telemetry.otlp_interval, sources))
                .transpose()
        })
        .await
        .context("starting the OTLP metrics exporter")??
    } else {
        None
    };
    let totals = service
        .run(std::sync::Arc::new(notifier), Some(reload))
        .await;
    if let Some(meters) = meters {
        // A last export, so the final counts reach the collector.
        let _ = tokio::task::spawn_blocking(move || meters.shutdown()).await;
    }
    let totals = totals?;
    tracing::info!(?totals, "stopped");
    Ok(ExitCode::SUCCESS)
}

/// `once`: one full sweep, a summary line, non-zero when anything failed.
async fn once(path: &Path) -> anyhow::Result<ExitCode> {
    let mut service = one_shot_service(path).await?;
    let started = std::time::Instant::now();
    let report = service.sweep(Scope::Full).await;
    let elapsed = started.elapsed();
    let (report, totals) = close(service, report).await?;
    let what = match report.feed_queries {
        Some(queries) => format!(
            "the alerts feed, {queries} queries, {} alerts read",
            totals.alerts_received
        ),
        None => format!(
            "{} entries, {} polled",
            report.entries, totals.entries_polled
        ),
    };
    println!(
        "once: {what}, {} failed, {} calls, {} alerts written, {} duplicates suppressed, sweep took {:.3} s",
        report.failed.len(),
        totals.calls,
        totals.alerts_published,
        totals.duplicates_suppressed,
        elapsed.as_secs_f64()
    );
    Ok(outcome(&report))
}

/// Closes the service after a one-shot sweep: the sweep's report and the run's totals.
async fn close(
    service: Service,
    report: Result<SweepReport, AppError>,
) -> anyhow::Result<(SweepReport, Snapshot)> {
    let totals = service.close().await?;
    Ok((report?, totals))
}

/// Says what failed in a one-shot sweep; success only when nothing failed or stopped it.
fn outcome(report: &SweepReport) -> ExitCode {
    for (entry, reason) in &report.failed {
        eprintln!("error: {entry}: {reason}");
    }
    if let Some(reason) = &report.aborted {
        eprintln!("error: sweep stopped early: {reason}");
    }
    if report.failed.is_empty() && !report.cancelled && report.aborted.is_none() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// `demo`: the embedded default against the emulator.
async fn run_demo(options: DemoOptions) -> anyhow::Result<ExitCode> {
    let (trigger, stop) = shutdown::channel();
    shutdown::on_signals(trigger).context("cannot install signal handlers")?;
    demo(&options, stop, &mut std::io::stdout()).await?;
    Ok(ExitCode::SUCCESS)
}

/// A file for state or alert content: created at 0640, an existing one narrowed to at most
/// that, so no other local user can read it.
fn private_file(path: &std::path::Path) -> std::io::Result<std::io::BufWriter<std::fs::File>> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o640)
        .open(path)?;
    let mode = file.metadata()?.permissions().mode() & 0o7777;
    if mode & 0o027 != 0 {
        file.set_permissions(std::fs::Permissions::from_mode(mode & !0o027))?;
    }
    Ok(std::io::BufWriter::new(file))
}

/// `generate`: shell completions or the man page, from the command line's own definition.
fn generate(what: Generated) -> anyhow::Result<ExitCode> {
    use clap::CommandFactory;
    let mut command = Cli::command();
    let mut stdout = std::io::stdout();
    match what {
        Generated::Completions { shell } => {
            clap_complete::generate(shell, &mut command, "mde-watch", &mut stdout)
        }
        Generated::Man => clap_mangen::Man::new(command)
            .render(&mut stdout)
            .context("cannot write the man page")?,
    }
    Ok(ExitCode::SUCCESS)
}

/// `state …`: the store tools, which check the config but do not read the secret.
fn state(path: &Path, action: StateAction) -> anyhow::Result<ExitCode> {
    let config = Config::load_for_store(path)?;
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    let store = Store::open(&config.store)?;
    state_command(&store, &config, action)
}

/// `backfill`: every alert created since `since` published again; the store is left as it was.
async fn backfill(path: &Path, since: &str) -> anyhow::Result<ExitCode> {
    let since = state::parse_since(since, chrono::Utc::now()).map_err(anyhow::Error::msg)?;
    let mut service = one_shot_service(path).await?;
    let report = service.backfill(since).await;
    let (report, totals) = close(service, report).await?;
    let what = match report.feed_queries {
        Some(queries) => format!(
            "the alerts feed read in {queries} queries ({} alerts)",
            totals.alerts_received
        ),
        None => format!("{} entries polled", totals.entries_polled),
    };
    println!(
        "backfill: {what}, {} alerts created since {} published again, {} failed; the store was not changed",
        totals.alerts_published,
        since.to_rfc3339(),
        report.failed.len()
    );
    Ok(outcome(&report))
}

/// The service for a one-shot command (`once`, `backfill`): stops on SIGTERM/SIGINT, and a
/// sink still failing after a few retries ends the run instead of holding a cron job forever.
async fn one_shot_service(path: &std::path::Path) -> anyhow::Result<Service> {
    let config = load(path)?;
    let (trigger, stop) = shutdown::channel();
    shutdown::on_signals(trigger).context("cannot install signal handlers")?;
    let mut service = Service::build(config, stop)?;
    service.give_up_after(ONCE_DELIVERY_ATTEMPTS);
    service.connect().await;
    Ok(service)
}

/// Now, and the oldest observation retention keeps (seconds since the epoch).
fn retention_cutoff(config: &Config) -> (i64, i64) {
    let now = chrono::Utc::now().timestamp();
    (now, now - config.store.retention.as_secs() as i64)
}

fn state_command(store: &Store, config: &Config, action: StateAction) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    match action {
        StateAction::Stats => {
            println!("{}", serde_json::to_string_pretty(&store.stats()?)?);
        }
        StateAction::List { since, entity } => {
            let since = since
                .map(|text| state::parse_since(&text, chrono::Utc::now()))
                .transpose()
                .map_err(anyhow::Error::msg)?;
            match entity {
                Some(entity) => state::entity_alerts(store, &entity, since, &mut out)?,
                None => state::list(store, since, &mut out)?,
            };
        }
        StateAction::Show { id } => state::show(store, &id, &mut out)?,
        StateAction::Export { output: None } => {
            state::list(store, None, &mut out)?;
        }
        StateAction::Export { output: Some(path) } => {
            let shown = path.display().to_string();
            let mut file = private_file(&path).with_context(|| format!("cannot write {shown}"))?;
            let records = state::list(store, None, &mut file)?;
            std::io::Write::flush(&mut file).with_context(|| format!("cannot write {shown}"))?;
            eprintln!("exported {records} record(s) to {shown}");
        }
        StateAction::Import { file } => {
            let shown = file.display().to_string();
            let text =
                std::fs::read_to_string(&file).with_context(|| format!("reading {shown}"))?;
            let records = state::parse_import(&text, &shown).map_err(|problems| {
                anyhow::anyhow!(
                    "nothing imported; {} bad line(s):\n  {}",
                    problems.len(),
                    problems.join("\n  ")
                )
            })?;
            let added = store.import(&records)?;
            println!(
                "imported {added} alert(s) from {shown}; {} already known were kept as they are",
                records.len() - added
            );
        }
        StateAction::Forget { ids } => {
            let (now, cutoff) = retention_cutoff(config);
            let forgotten = store.forget(&ids, cutoff, now)?;
            let unknown: Vec<&String> = ids.iter().filter(|id| !forgotten.contains(id)).collect();
            println!(
                "forgot {} alert(s); they are published again when next polled",
                forgotten.len()
            );
            if !unknown.is_empty() {
                let unknown: Vec<&str> = unknown.iter().map(|id| id.as_str()).collect();
                anyhow::bail!("not in the store: {}", unknown.join(", "));
            }
        }
        StateAction::Prune => {
            let (now, cutoff) = retention_cutoff(config);
            let done = store.compact(cutoff, now)?;
            println!(
                "pruned: {} alert(s) not observed within {} forgotten, {} kept, {} superseded record(s) dropped",
                done.expired,
                mde_watch::units::format_duration(config.store.retention),
                done.kept,
                done.dropped
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn load(path: &std::path::Path) -> anyhow::Result<Config> {
    let config = Config::load(path)?;
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    Ok(config)
}

async fn run_sim(args: SimArgs) -> anyhow::Result<ExitCode> {
    let faults: Faults = match &args.faults {
        Some(json) => serde_json::from_str(json).with_context(|| format!("--faults '{json}'"))?,
        None => Faults::default(),
    };
    let config = SimConfig {
        listen: args.listen,
        limits: vec![
            Window {
                calls: args.per_minute,
                per: std::time::Duration::from_secs(60),
            },
            Window {
                calls: args.per_hour,
                per: std::time::Duration::from_secs(3600),
            },
        ],
        universe: UniverseSpec {
            seed: args.seed,
            users: args.users,
            files: args.files,
            ..UniverseSpec::default()
        },
        faults,
        speed: args.speed,
        deflate: !args.plain,
        certificate_pem: match &args.certificate {
            Some(path) => {
                let pem = std::fs::read(path)
                    .with_context(|| format!("--certificate {}", path.display()))?;
                mde_watch::defender::certificate::Certificate::from_pem(&pem)
                    .with_context(|| format!("--certificate {}", path.display()))?;
                Some(pem)
            }
            None => None,
        },
        tls: match (&args.tls_cert, &args.tls_key) {
            (Some(cert), Some(key)) => {
                let read = |flag: &str, path: &std::path::Path| {
                    std::fs::read(path).with_context(|| format!("{flag} {}", path.display()))
                };
                Some(sim::SimTls {
                    certificate_pem: read("--tls-cert", cert)?,
                    key_pem: read("--tls-key", key)?,
                })
            }
            _ => None,
        },
        ..SimConfig::default()
    };
    let handle = sim::start(config)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    println!("emulator listening on {}", handle.base_url());
    println!(
        "  tenant {}  client {}  secret {}",
        sim::SIM_TENANT,
        sim::SIM_CLIENT_ID,
        sim::SIM_CLIENT_SECRET
    );
    println!(
        "  users user1..user{}; {} files, the first {}",
        args.users,
        args.files,
        handle.universe().file_hash(1)
    );
    println!(
        "  every user and file hash with its alerts: GET {}/sim/universe",
        handle.base_url()
    );
    println!("  calls answered: GET {}/sim/stats", handle.base_url());
    let (trigger, mut stop) = shutdown::channel();
    shutdown::on_signals(trigger)?;
    stop.wait().await;
    handle.stop().await;
    Ok(ExitCode::SUCCESS)
}
