//! The command line's shape (clap): the commands, their arguments and where each reads its
//! configuration. What each command does is in `commands.rs`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use mde_watch::config::DEFAULT_CONFIG_PATH;

#[derive(Parser)]
#[command(
    name = "mde-watch",
    version,
    about = "Ships Microsoft Defender for Endpoint alerts about watched users and files to your SIEM"
)]
pub(crate) struct Cli {
    /// Log filter (error, warn, info, debug, or a tracing filter); RUST_LOG wins when set.
    #[arg(long, global = true)]
    pub(crate) log_level: Option<String>,
    /// Log lines as human text or one JSON object each. Under journald (JOURNAL_STREAM set)
    /// text lines carry no timestamp of their own: the journal has one.
    #[arg(long, global = true, env = "MDE_WATCH_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub(crate) log_format: LogFormat,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Where a command that reads the configuration finds it (demo, sim and generate read none).
#[derive(clap::Args)]
pub(crate) struct ConfigFile {
    /// The configuration file.
    #[arg(long, global = true, env = "MDE_WATCH_CONFIG", default_value = DEFAULT_CONFIG_PATH)]
    pub(crate) config: PathBuf,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub(crate) enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
pub(crate) enum Command {
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
pub(crate) enum Generated {
    /// Completions for a shell, on stdout.
    Completions { shell: clap_complete::Shell },
    /// The man page (roff), on stdout.
    Man,
}

#[derive(clap::Args)]
pub(crate) struct SimArgs {
    /// Address to listen on (keep it on loopback: the emulator has no real authentication).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub(crate) listen: SocketAddr,
    /// Seed of the alert universe: the same seed gives the same users, hashes and alerts.
    #[arg(long, default_value_t = 1)]
    pub(crate) seed: u64,
    /// Users in the universe, named user1..userN (each has 0 to 4 alerts).
    #[arg(long, default_value_t = 200)]
    pub(crate) users: usize,
    /// Files in the universe, each a stable SHA-1 (0 to 2 alerts of their own, and some users' alerts).
    #[arg(long, default_value_t = 200)]
    pub(crate) files: usize,
    /// Virtual seconds per real second: how fast alerts appear (over the first virtual hour)
    /// and change status. 0 freezes time.
    #[arg(long, default_value_t = 1.0)]
    pub(crate) speed: f64,
    /// Alert calls allowed per app in any 60 s (documented: 100); more are answered 429.
    #[arg(long, default_value_t = 100)]
    pub(crate) per_minute: u32,
    /// Alert calls allowed per app in any hour (documented: 1500).
    #[arg(long, default_value_t = 1500)]
    pub(crate) per_hour: u32,
    /// Fault injection as JSON, every key optional: error_rate, malformed_rate, truncated_rate,
    /// throttle_rate (shares of calls, 0 to 1), throttle_retry_after_secs, latency_ms,
    /// token_dies_after_ms, forbidden (true: every alert call 403).
    /// Example: '{"error_rate":0.1,"truncated_rate":0.05}'.
    #[arg(long)]
    pub(crate) faults: Option<String>,
    /// A certificate (PEM) registered on the emulated app: client assertions signed by its key
    /// are accepted besides the secret.
    #[arg(long)]
    pub(crate) certificate: Option<std::path::PathBuf>,
    /// Serve HTTPS with this certificate chain (PEM) instead of HTTP; needs --tls-key.
    #[arg(long, requires = "tls_key")]
    pub(crate) tls_cert: Option<std::path::PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub(crate) tls_key: Option<std::path::PathBuf>,
    /// Answer plain JSON even to a client that accepts deflate (Defender deflates its answers).
    #[arg(long)]
    pub(crate) plain: bool,
}

#[derive(Subcommand)]
pub(crate) enum StateAction {
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
    /// Every record as NDJSON (what `import` reads), on stdout or into a file.
    Export {
        /// Write into this file, created (or narrowed) to mode 0640: the records name watched
        /// users and files. A shell's `>` would create it with the shell's umask.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
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
