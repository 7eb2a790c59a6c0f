//! The config file as written: serde structs that mirror the TOML, with defaults for everything
//! that has a sensible one. A misspelt key is an error: `validate.rs` reads these through
//! `serde_ignored`, which names every key no struct took (a path, not a message to parse), and
//! reads each `[[sinks]]` table by its `type` the same way. Validation into typed values happens
//! in `validate.rs`.

use serde::Deserialize;

#[derive(Debug, Deserialize, Default)]
pub struct RawConfig {
    #[serde(default)]
    pub api: RawApi,
    #[serde(default)]
    pub limits: RawLimits,
    #[serde(default)]
    pub schedule: RawSchedule,
    #[serde(default)]
    pub watchlist: RawWatchlist,
    #[serde(default)]
    pub store: RawStore,
    #[serde(default)]
    pub updates: RawUpdates,
    /// Each read by its `type` into a [`RawSink`] in `validate/sinks.rs`.
    #[serde(default)]
    pub sinks: Vec<::config::Value>,
    #[serde(default)]
    pub pipeline: RawPipeline,
    #[serde(default)]
    pub collector: RawCollector,
    #[serde(default)]
    pub telemetry: RawTelemetry,
    #[serde(default)]
    pub source: RawSource,
}

#[derive(Debug, Deserialize, Default)]
pub struct RawTelemetry {
    /// Loopback address for /metrics and /healthz ("127.0.0.1:9464"); off when unset.
    pub listen: Option<String>,
    /// OTLP/HTTP collector base URL ("http://127.0.0.1:4318"); off when unset.
    pub otlp_endpoint: Option<String>,
    /// How often metrics are pushed over OTLP.
    pub otlp_interval: Option<String>,
    /// PEM file of the CA(s) an `https://` collector's certificate is checked against, besides
    /// the built-in roots.
    pub otlp_ca_file: Option<String>,
    /// A private file of `Name: value` lines sent with every export (an API key).
    pub otlp_headers_file: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
pub struct RawApi {
    pub cloud: Option<String>,
    pub tenant_id: Option<String>,
    pub client_id: Option<String>,
    pub client_secret_env: Option<String>,
    pub client_secret_file: Option<String>,
    pub credential: Option<String>,
    /// Certificate credentials instead of a secret: the certificate (PEM) and its key.
    pub certificate_file: Option<String>,
    pub private_key_file: Option<String>,
    pub private_key_credential: Option<String>,
    /// "PS256" (x5t#S256, the default) or "RS256" (x5t).
    pub assertion_algorithm: Option<String>,
    pub base_url: Option<String>,
    pub login_url: Option<String>,
    /// Lets `base_url` and `login_url` be `http://` to a host other than loopback (a lab).
    pub allow_insecure_http: Option<bool>,
    /// A CA certificate (PEM, may hold several) trusted besides the system's roots: a private
    /// CA, a TLS-inspecting proxy.
    pub ca_file: Option<String>,
    /// "v2" (scope, default) or "v1" (resource).
    pub token_endpoint: Option<String>,
    /// Overrides the token audience (scope is `<audience>/.default`).
    pub audience: Option<String>,
    pub timeout: Option<String>,
    pub connect_timeout: Option<String>,
    pub proxy: Option<String>,
    pub max_retries: Option<u32>,
    pub backoff_base: Option<String>,
    pub backoff_max: Option<String>,
    /// Refresh the token this long before it expires.
    pub token_refresh_margin: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
pub struct RawLimits {
    pub window: Option<Vec<RawWindow>>,
}

#[derive(Debug, Deserialize)]
pub struct RawWindow {
    pub calls: u32,
    pub per: String,
}

#[derive(Debug, Deserialize, Default)]
pub struct RawSchedule {
    pub cron: Option<String>,
    /// Sweep once at start instead of waiting for the first cron tick (default true).
    pub run_on_start: Option<bool>,
}

#[derive(Debug, Deserialize, Default)]
pub struct RawWatchlist {
    #[serde(default)]
    pub users: Vec<String>,
    #[serde(default)]
    pub files: Vec<String>,
    pub users_file: Option<String>,
    pub files_file: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
pub struct RawStore {
    pub path: Option<String>,
    pub retention: Option<String>,
    pub cache: Option<String>,
    pub flush_interval: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
pub struct RawSource {
    /// defender | graph
    pub api: Option<String>,
    /// entities | feed | auto
    pub mode: Option<String>,
    /// First run of the feed: how far back it starts ("180d"); default everything the API keeps.
    pub since: Option<String>,
    /// Each feed poll re-reads this far behind its cursor ("10m").
    pub lookback: Option<String>,
    /// `$top` of each feed query (1 to 10,000).
    pub page_size: Option<usize>,
}

#[derive(Debug, Deserialize, Default)]
pub struct RawUpdates {
    pub policy: Option<String>,
}

/// A `[[sinks]]` table's `type`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SinkType {
    File,
    Stdout,
    Syslog,
    Kafka,
}

/// One `[[sinks]]` table, read by its `type`. Each sink's table is its own, in its folder.
#[derive(Debug)]
pub enum RawSink {
    File(crate::sinks::file::settings::FileTable),
    Stdout(RawStdoutSink),
    Syslog(crate::sinks::syslog::settings::SyslogTable),
    Kafka(crate::sinks::kafka::settings::KafkaTable),
}

#[derive(Debug, Deserialize)]
pub struct RawStdoutSink {
    pub name: Option<String>,
    pub format: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
pub struct RawPipeline {
    /// Entries polled per batch; a batch is merged, published and committed together.
    pub batch_entries: Option<usize>,
    /// Polls in flight at once (still inside the limiter's budget).
    pub concurrency: Option<usize>,
    /// Polled batches waiting for the sinks before polling pauses (back-pressure).
    pub queue_batches: Option<usize>,
    /// Batches handed to the sinks and not yet acknowledged (1 = one at a time).
    pub in_flight_batches: Option<usize>,
    /// Alert JSON waiting for the sinks, in bytes ("8MiB"), before polling pauses.
    pub queue_bytes: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
pub struct RawCollector {
    /// Host name written into events; defaults to this machine's.
    pub name: Option<String>,
}
