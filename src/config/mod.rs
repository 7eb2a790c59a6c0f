//! Typed settings: a TOML file plus `MDE_WATCH__SECTION__KEY` environment overrides (the `config`
//! crate), validated into values the rest of the program can trust. Every problem is collected
//! with the key (and file, or list-file line) it came from, so `check` can print them all at once.

mod headers;
mod raw;
#[cfg(test)]
mod test_head;
#[cfg(test)]
pub(crate) use test_head::test_config_head;
pub mod secret;
mod validate;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use secret::{ProxyUrl, Secret, SecretFile, SecretSource};
pub use validate::certificate::CertificateFiles;

use crate::defender::cloud::Cloud;
use crate::normalize::Format;
use crate::schedule::limiter::Window;
use crate::watchlist::{ListSources, Watchlist};

/// Prefix of environment overrides: `MDE_WATCH__API__TENANT_ID` sets `api.tenant_id`.
pub const ENV_PREFIX: &str = "MDE_WATCH";
pub const DEFAULT_CONFIG_PATH: &str = "/etc/mde-watch/mde-watch.toml";

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where it was read from (a path, or a name for an embedded config).
    pub source: String,
    pub api: ApiConfig,
    pub limits: Vec<Window>,
    pub schedule: ScheduleConfig,
    pub watchlist: Watchlist,
    pub watchlist_sources: ListSources,
    pub store: StoreConfig,
    pub updates: UpdatePolicy,
    pub sinks: Vec<SinkConfig>,
    pub pipeline: PipelineConfig,
    /// Host name written into every event.
    pub collector: String,
    pub telemetry: TelemetryConfig,
    /// Where alerts come from: one call per watched entity, or the tenant's alert feed.
    pub alert_source: SourceConfig,
    /// Things worth telling the operator that do not stop the program.
    pub warnings: Vec<String>,
}

/// How alerts are found (`[source]`).
#[derive(Debug, Clone, PartialEq)]
pub struct SourceConfig {
    pub mode: SourceMode,
    /// How far back the feed's first poll starts; None: everything the API keeps.
    pub since: Option<std::time::Duration>,
    /// How far behind its cursor each feed poll reads again (alerts become visible late).
    pub lookback: std::time::Duration,
    /// `$top` of each feed query.
    pub page_size: usize,
}

impl Default for SourceConfig {
    fn default() -> Self {
        SourceConfig::for_api(Api::Defender)
    }
}

impl SourceConfig {
    /// The defaults for `api`. Graph is a feed only, and its largest `$top` is not documented:
    /// 2,000 is what Elastic's Microsoft 365 Defender integration asks for (not confirmed by
    /// Microsoft; a larger page_size may be set).
    pub fn for_api(api: Api) -> SourceConfig {
        let (mode, page_size) = match api {
            Api::Defender => (SourceMode::Entities, crate::defender::odata::MAX_PAGE_SIZE),
            Api::Graph => (SourceMode::Feed, 2_000),
        };
        SourceConfig {
            mode,
            since: None,
            lookback: std::time::Duration::from_secs(600),
            page_size,
        }
    }
}

/// `[source] mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceMode {
    /// `GET /api/users/{id}/alerts` and `/api/files/{sha1}/alerts`, one call per entry.
    Entities,
    /// `GET /api/alerts` for the whole tenant, matched against the watchlist here.
    Feed,
    /// The feed when the watchlist is larger than a sweep's budget can poll at the cron's
    /// cadence, else entities.
    Auto,
}

impl SourceMode {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceMode::Entities => "entities",
            SourceMode::Feed => "feed",
            SourceMode::Auto => "auto",
        }
    }
}

/// Metrics, health and traces; everything off by default.
#[derive(Debug, Clone, Default)]
pub struct TelemetryConfig {
    /// Where /metrics and /healthz are served (loopback only).
    pub listen: Option<std::net::SocketAddr>,
    /// OTLP/HTTP base URL; metrics go to `<url>/v1/metrics`, spans to `<url>/v1/traces`.
    pub otlp_endpoint: Option<String>,
    pub otlp_interval: Duration,
    /// A private CA the collector's certificate may chain to, besides the built-in roots.
    pub otlp_ca_file: Option<PathBuf>,
    /// Where `otlp_headers` were read from.
    pub otlp_headers_file: Option<PathBuf>,
    /// Sent with every export; the values never print.
    pub otlp_headers: Vec<(String, secret::Secret)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenEndpoint {
    V1,
    V2,
}

/// `[source] api`: which Microsoft API alerts are read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Api {
    /// Defender for Endpoint's API: the per-user and per-file routes and `/api/alerts`.
    #[default]
    Defender,
    /// The Graph security API, `GET /v1.0/security/alerts_v2`: a feed only, with every
    /// Defender product's alerts.
    Graph,
}

impl Api {
    pub fn as_str(self) -> &'static str {
        match self {
            Api::Defender => "defender",
            Api::Graph => "graph",
        }
    }
}

/// The app's certificate and the key that signs its client assertions.
#[derive(Debug, Clone)]
pub struct CertificateCredential {
    pub certificate: std::sync::Arc<crate::defender::certificate::Certificate>,
    pub signer: std::sync::Arc<crate::defender::certificate::Signer>,
    pub path: std::path::PathBuf,
    /// Where the key was read from, for `check`.
    pub key_source: String,
    /// The key's file (`api.private_key_file`); None for a systemd credential.
    pub key_file: Option<std::path::PathBuf>,
    pub algorithm: crate::defender::certificate::Algorithm,
}

#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Which API, and so which hosts, token audience, routes and permission.
    pub api: Api,
    pub cloud: Cloud,
    pub tenant_id: String,
    pub client_id: String,
    /// None when the config was loaded for the store tools ([`Config::load_for_store`]).
    pub secret: Option<Secret>,
    /// Where the client secret comes from; None with certificate credentials.
    pub secret_source: Option<SecretSource>,
    /// Certificate credentials (`api.certificate_file` and its key), instead of a secret.
    pub certificate: Option<CertificateCredential>,
    pub api_base: String,
    pub login_base: String,
    /// `http://` to a remote host was allowed (`api.allow_insecure_http`); said at every start.
    pub allow_insecure_http: bool,
    /// CA certificates (PEM) trusted for the API and login hosts besides the system's roots.
    pub ca_file: Option<PathBuf>,
    pub audience: String,
    pub token_endpoint: TokenEndpoint,
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// Shown without its credentials wherever it is printed.
    pub proxy: Option<ProxyUrl>,
    pub max_retries: u32,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    pub token_refresh_margin: Duration,
}

#[derive(Debug, Clone)]
pub struct ScheduleConfig {
    pub cron: String,
    pub run_on_start: bool,
}

#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub path: PathBuf,
    pub retention: Duration,
    pub cache_bytes: u64,
    /// How long a commit may wait for sled's flush (`store/group.rs`).
    pub flush_interval: Duration,
}

/// What to do when an alert already shipped comes back changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdatePolicy {
    /// Record the change, publish nothing (the default: only new alerts are published).
    Ignore,
    /// Publish the changed alert again as an update.
    Emit,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SinkConfig {
    pub name: String,
    pub format: Format,
    pub kind: SinkKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SinkKind {
    File(crate::sinks::file::FileSettings),
    Stdout,
    Kafka(crate::sinks::kafka::KafkaSettings),
    Syslog(crate::sinks::syslog::SyslogSettings),
}

impl SinkKind {
    /// The `type` of its table, also the stem of its default name (`file-0`).
    pub fn type_name(&self) -> &'static str {
        match self {
            SinkKind::File(_) => "file",
            SinkKind::Stdout => "stdout",
            SinkKind::Kafka(_) => "kafka",
            SinkKind::Syslog(_) => "syslog",
        }
    }
}

#[derive(Debug, Clone)]
pub struct PipelineConfig {
    pub batch_entries: usize,
    pub concurrency: usize,
    pub queue_batches: usize,
    /// Batches handed to the sinks whose acknowledgements are still outstanding: the next batch
    /// is normalized and enqueued while the previous one's acks travel. It is also the most a
    /// crash can publish twice.
    pub in_flight_batches: usize,
    /// Bytes of alert JSON polled and not yet published before polling pauses: bounds memory
    /// whatever the alerts' size.
    pub queue_bytes: u64,
}

/// Everything wrong with a config, one problem a line.
#[derive(Debug, thiserror::Error)]
#[error("{} in {source_name}:\n{}", count(.problems.len()), .problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
pub struct ConfigError {
    pub source_name: String,
    pub problems: Vec<String>,
}

fn count(n: usize) -> String {
    if n == 1 {
        "1 problem".into()
    } else {
        format!("{n} problems")
    }
}

impl Config {
    /// Reads the file at `path`, applies environment overrides and validates everything.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Config::read(path, true)
    }

    /// [`Config::load`] for commands that only open the store (`state …`): every key is still
    /// checked, but the client secret is not read. It often lives where only the service can
    /// read it (a systemd credential), and these commands never call the API.
    pub fn load_for_store(path: &Path) -> Result<Config, ConfigError> {
        Config::read(path, false)
    }

    fn read(path: &Path, read_secret: bool) -> Result<Config, ConfigError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|err| ConfigError {
            source_name: shown.clone(),
            problems: vec![format!("cannot read the config file {shown}: {err}")],
        })?;
        // Relative paths in the file are relative to the file, wherever mde-watch was started.
        let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let base_dir = absolute.parent().map(Path::to_path_buf).unwrap_or_default();
        validate::from_toml(&text, &shown, &base_dir, true, read_secret)
    }

    /// Parses TOML text. Relative paths are resolved against `base_dir`; `with_env` applies the
    /// `MDE_WATCH__…` overrides.
    pub fn from_toml(
        text: &str,
        source_name: &str,
        base_dir: &Path,
        with_env: bool,
    ) -> Result<Config, ConfigError> {
        validate::from_toml(text, source_name, base_dir, with_env, true)
    }
}
