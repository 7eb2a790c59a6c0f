//! The `mde-watch` command line. `anyhow` lives here only: everything below returns typed errors.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use mde_watch::app::demo::{demo, DemoOptions};
use mde_watch::app::reload::Reload;
use mde_watch::app::state;
use mde_watch::app::{check, Scope, Service};
use mde_watch::config::{Config, DEFAULT_CONFIG_PATH};
use mde_watch::notify::Notifier;
use mde_watch::schedule::limiter::Window;
use mde_watch::shutdown;
use mde_watch::sim::{self, Faults, SimConfig, UniverseSpec};
use mde_watch::store::Store;
use mde_watch::telemetry::otlp;

#[derive(Parser)]
#[command(
    name = "mde-watch",
    version,
    about = "Ships Microsoft Defender for Endpoint alerts about watched users and files to your SIEM"
)]
struct Cli {
    /// Log filter (error, warn, info, debug, or a tracing filter); RUST_LOG wins when set.
    #[arg(long, global = true)]
    log_level: Option<String>,
    /// Log lines as human text or one JSON object each. Under journald (JOURNAL_STREAM set)
    /// text lines carry no timestamp of their own: the journal has one.
    #[arg(long, global = true, env = "MDE_WATCH_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

/// Where a command that reads the configuration finds it (demo, sim and generate read none).
#[derive(clap::Args)]
struct ConfigFile {
    /// The configuration file.
    #[arg(long, global = true, env = "MDE_WATCH_CONFIG", default_value = DEFAULT_CONFIG_PATH)]
    config: PathBuf,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service: sweep on the cron schedule until SIGTERM or SIGINT.
    Run(ConfigFile),
    /// Validate the configuration and print the plan; non-zero exit on any error.
    Check {
        /// Also fetch a token and make one API call.
        #[arg(long)]
        connect: bool,
        #[command(flatten)]
        file: ConfigFile,
    },
    /// Poll every entry once, publish, and exit (non-zero if some entries could not be polled).
    Once(ConfigFile),
    /// Run the whole product against the built-in emulator on its embedded configuration
    /// (conf/demo.toml): output, one file per format, and the store under --dir.
    Demo {
        /// Where the demo writes. It must not exist, be empty, or be a previous demo's
        /// directory: the demo never removes anything it did not create.
        #[arg(long, default_value = "./mde-watch-demo")]
        dir: PathBuf,
        /// Keep the store and output of the previous demo run.
        #[arg(long)]
        keep_state: bool,
    },
    /// Run the Defender API emulator.
    ///
    /// It serves the token endpoints and both alert endpoints of the Defender API, with the
    /// API's limits, for the tenant, client id and secret it prints at start. GET /sim/universe
    /// lists its users and file hashes with their alerts; GET /sim/stats the calls it answered.
    Sim(SimArgs),
    /// Inspect the store.
    State {
        #[command(subcommand)]
        action: StateAction,
        #[command(flatten)]
        file: ConfigFile,
    },
    /// Publish again every alert created since a time (for a new SIEM), polled afresh from the
    /// API; the store is left as it is, so normal runs keep their dedup. Stop the service first:
    /// the store and the API budget are shared.
    Backfill {
        /// An RFC 3339 time, or a span back from now (30d).
        #[arg(long)]
        since: String,
        #[command(flatten)]
        file: ConfigFile,
    },
    /// Write shell completions or the man page (packaging uses this).
    Generate {
        #[command(subcommand)]
        what: Generated,
    },
}

#[derive(Subcommand)]
enum Generated {
    /// Completions for a shell, on stdout.
    Completions { shell: clap_complete::Shell },
    /// The man page (roff), on stdout.
    Man,
}

#[derive(clap::Args)]
struct SimArgs {
    /// Address to listen on (keep it on loopback: the emulator has no real authentication).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Seed of the alert universe: the same seed gives the same users, hashes and alerts.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Users in the universe, named user1..userN (each has 0 to 4 alerts).
    #[arg(long, default_value_t = 200)]
    users: usize,
    /// Files in the universe, each a stable SHA-1 (0 to 2 alerts of their own, and some users' alerts).
    #[arg(long, default_value_t = 200)]
    files: usize,
    /// Virtual seconds per real second: how fast alerts appear (over the first virtual hour)
    /// and change status. 0 freezes time.
    #[arg(long, default_value_t = 1.0)]
    speed: f64,
    /// Alert calls allowed per app in any 60 s (documented: 100); more are answered 429.
    #[arg(long, default_value_t = 100)]
    per_minute: u32,
    /// Alert calls allowed per app in any hour (documented: 1500).
    #[arg(long, default_value_t = 1500)]
    per_hour: u32,
    /// Fault injection as JSON, every key optional: error_rate, malformed_rate, truncated_rate,
    /// throttle_rate (shares of calls, 0 to 1), throttle_retry_after_secs, latency_ms,
    /// token_dies_after_ms, forbidden (true: every alert call 403).
    /// Example: '{"error_rate":0.1,"truncated_rate":0.05}'.
    #[arg(long)]
    faults: Option<String>,
    /// A certificate (PEM) registered on the emulated app: client assertions signed by its key
    /// are accepted besides the secret.
    #[arg(long)]
    certificate: Option<std::path::PathBuf>,
}

#[derive(Subcommand)]
enum StateAction {
    /// Counts and sizes of the store.
    Stats,
    /// The alerts the store remembers, one JSON object a line.
    List {
        /// Only alerts first observed since then: an RFC 3339 time or a span back (7d, 12h).
        #[arg(long)]
        since: Option<String>,
        /// Only the alerts this watchlist entry's last poll returned (a user name, a SHA-1, or
        /// its key u:NAME / f:SHA1).
        #[arg(long)]
        entity: Option<String>,
    },
    /// One alert's record.
    Show { id: String },
    /// Every record as NDJSON on stdout (what `import` reads).
    Export,
    /// Adds the records of an export for ids this store does not know; all lines are checked
    /// first, and a bad one means nothing is imported.
    Import { file: PathBuf },
    /// Forgets alerts not observed within the retention period and drops superseded records, now.
    Prune,
    /// Forgets these alert ids: each is published again the next time a response holds it.
    Forget {
        #[arg(required = true)]
        ids: Vec<String>,
    },
}

/// Deliveries of one batch `once` and `backfill` try before they stop (about 8 s of backoff).
const ONCE_DELIVERY_ATTEMPTS: u32 = 5;

fn main() -> ExitCode {
    mde_watch::memory::tune_allocator();
    let cli = Cli::parse();
    // Spans go to OTLP only from the service, and the layer must be there from the start: the
    // config is read once here for its endpoint (errors are reported by the real load later).
    let tracer = match &cli.command {
        Command::Run(file) => Config::load(&file.config)
            .ok()
            .and_then(|config| config.telemetry.otlp_endpoint),
        _ => None,
    }
    .map(|endpoint| otlp::tracer_provider(&endpoint));
    let tracer = match tracer.transpose() {
        Ok(tracer) => tracer,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::FAILURE;
        }
    };
    init_logging(
        cli.log_level.as_deref(),
        matches!(cli.command, Command::Demo { .. }),
        cli.log_format,
        tracer.as_ref(),
    );
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let code = match runtime.block_on(dispatch(cli)) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    };
    drop(runtime);
    if let Some(tracer) = tracer {
        // Sends the spans still batched; outside the runtime, as the blocking exporter needs.
        if let Err(err) = tracer.shutdown() {
            eprintln!("warning: spans not all exported at exit: {err}");
        }
    }
    code
}

fn init_logging(
    level: Option<&str>,
    quiet: bool,
    format: LogFormat,
    tracer: Option<&opentelemetry_sdk::trace::SdkTracerProvider>,
) {
    use opentelemetry::trace::TracerProvider as _;
    use tracing_subscriber::prelude::*;
    let default = level.unwrap_or(if quiet { "warn" } else { "info" });
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let journald = std::env::var_os("JOURNAL_STREAM").is_some();
    let lines = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let lines = match (format, journald) {
        (LogFormat::Json, _) => lines.json().boxed(),
        (LogFormat::Text, true) => lines
            .without_time()
            .with_ansi(false)
            .fmt_fields(mde_watch::logging::EscapedFields)
            .boxed(),
        (LogFormat::Text, false) => lines
            .with_ansi(mde_watch::logging::use_color())
            .fmt_fields(mde_watch::logging::EscapedFields)
            .boxed(),
    };
    let spans = tracer
        .map(|provider| tracing_opentelemetry::layer().with_tracer(provider.tracer("mde-watch")));
    tracing_subscriber::registry()
        .with(filter)
        .with(lines)
        .with(spans)
        .init();
}

async fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Check { connect, file } => {
            let code = check::check(&file.config, connect, &mut std::io::stdout()).await?;
            Ok(ExitCode::from(code as u8))
        }
        Command::Run(file) => {
            let config = load(&file.config)?;
            let (trigger, stop) = shutdown::channel();
            shutdown::on_signals(trigger).context("cannot install signal handlers")?;
            let notifier = Notifier::from_env().context("systemd notification settings")?;
            let reload = Reload::on_sighup(file.config.clone())
                .context("cannot install the SIGHUP handler")?;
            let otlp_target = config
                .telemetry
                .otlp_endpoint
                .clone()
                .map(|endpoint| (endpoint, config.telemetry.otlp_interval));
            let service = Service::build(config, stop)?;
            let meters = match otlp_target {
                Some((endpoint, interval)) => {
                    let sources = service.telemetry_sources();
                    let built = tokio::task::spawn_blocking(move || {
                        otlp::meter_provider(&endpoint, interval, sources)
                    })
                    .await
                    .context("starting the OTLP metrics exporter")??;
                    Some(built)
                }
                None => None,
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
        Command::Once(file) => {
            let mut service = one_shot_service(&file.config).await?;
            let started = std::time::Instant::now();
            let report = service.sweep(Scope::Full).await;
            let elapsed = started.elapsed();
            let totals = service.close().await?;
            let report = report?;
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
            for (entry, reason) in &report.failed {
                eprintln!("error: {entry}: {reason}");
            }
            if let Some(reason) = &report.aborted {
                eprintln!("error: sweep stopped early: {reason}");
            }
            Ok(
                if report.failed.is_empty() && !report.cancelled && report.aborted.is_none() {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                },
            )
        }
        Command::Demo { dir, keep_state } => {
            let (trigger, stop) = shutdown::channel();
            shutdown::on_signals(trigger).context("cannot install signal handlers")?;
            demo(
                &DemoOptions { dir, keep_state },
                stop,
                &mut std::io::stdout(),
            )
            .await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Sim(args) => run_sim(args).await,
        Command::Generate { what } => {
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
        Command::State { action, file } => {
            let config = Config::load_for_store(&file.config)?;
            for warning in &config.warnings {
                tracing::warn!("{warning}");
            }
            let store = Store::open(&config.store)?;
            state_command(&store, &config, action)
        }
        Command::Backfill { since, file } => {
            let since =
                state::parse_since(&since, chrono::Utc::now()).map_err(anyhow::Error::msg)?;
            let mut service = one_shot_service(&file.config).await?;
            let report = service.backfill(since).await;
            let totals = service.close().await?;
            let report = report?;
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
            for (entry, reason) in &report.failed {
                eprintln!("error: {entry}: {reason}");
            }
            Ok(if report.failed.is_empty() && !report.cancelled {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
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
        StateAction::Export => {
            state::list(store, None, &mut out)?;
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
