//! Turns the raw TOML (plus environment overrides) into a [`Config`], collecting every problem.

pub(super) mod certificate;
mod proof;
mod sections;
mod security;
mod sinks;

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::raw::{RawApi, RawConfig};
use super::*;
use crate::schedule::limiter;
use crate::units::parse_duration;

const DEFAULT_QUEUE_BYTES: u64 = 2 << 20;
/// How long a store commit may wait for its flush (`store/group.rs`): a crash re-sends at most
/// this much more than the batches in flight; one flush a batch cost ~1 µs an alert.
const DEFAULT_FLUSH_INTERVAL: std::time::Duration = std::time::Duration::from_millis(100);

pub(super) fn from_toml(
    text: &str,
    source_name: &str,
    base_dir: &Path,
    with_env: bool,
    read_secret: bool,
) -> Result<Config, ConfigError> {
    let fail = |problems: Vec<String>| ConfigError {
        source_name: source_name.to_string(),
        problems,
    };
    let mut builder = ::config::Config::builder()
        .add_source(::config::File::from_str(text, ::config::FileFormat::Toml));
    if with_env {
        builder = builder.add_source(
            ::config::Environment::with_prefix(ENV_PREFIX)
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true),
        );
    }
    let merged = builder
        .build()
        .map_err(|err| fail(vec![describe_config_error(&err, "", source_name)]))?;
    let mut unknown = Vec::new();
    let raw: RawConfig = serde_ignored::deserialize(merged, |path| unknown.push(key_of(&path)))
        .map_err(|err| fail(vec![describe_config_error(&err, "", source_name)]))?;
    let mut checker = Checker {
        read_secret,
        base_dir: base_dir.to_path_buf(),
        problems: Vec::new(),
        warnings: Vec::new(),
        source_name: source_name.to_string(),
    };
    for key in unknown {
        checker.unknown_key(&key);
    }
    let config = checker.check(raw, source_name);
    match config {
        Some(config) if checker.problems.is_empty() => Ok(config),
        _ => Err(fail(checker.problems)),
    }
}

/// A key as the operator writes it (`store.retension`, `sinks[0].path`) from the path
/// `serde_ignored` reports.
fn key_of(path: &serde_ignored::Path) -> String {
    use serde_ignored::Path;
    match path {
        Path::Root => String::new(),
        Path::Map { parent, key } => match key_of(parent) {
            above if above.is_empty() => key.clone(),
            above => format!("{above}.{key}"),
        },
        Path::Seq { parent, index } => format!("{}[{index}]", key_of(parent)),
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => key_of(parent),
    }
}

/// A value the config crate could not read, led by its key (`within` prefixes keys read from a
/// table on its own, such as `sinks[0]`), from the error's fields rather than its message.
fn describe_config_error(err: &::config::ConfigError, within: &str, source_name: &str) -> String {
    use ::config::ConfigError;
    let (key, what) = match err {
        ConfigError::Type {
            key: Some(key),
            unexpected,
            expected,
            ..
        } => (
            key,
            format!("invalid type: {unexpected}, expected {expected}"),
        ),
        ConfigError::At {
            key: Some(key),
            error,
            ..
        } => (key, error.to_string()),
        other => return format!("{other} (in {source_name})"),
    };
    // The config crate writes an array element's key as `sinks[0]path`.
    let key = key.replace(']', "].").replace("..", ".");
    let key = key.trim_end_matches('.');
    match within {
        "" => format!("{key}: {what} (in {source_name})"),
        table => format!("{table}.{key}: {what} (in {source_name})"),
    }
}

struct Checker {
    /// False for the store tools: the secret's source is checked, not read.
    read_secret: bool,
    base_dir: PathBuf,
    problems: Vec<String>,
    warnings: Vec<String>,
    /// The config file's name as shown (`conf/mde-watch.toml`).
    source_name: String,
}

impl Checker {
    fn problem(&mut self, text: impl Into<String>) {
        self.problems.push(text.into());
    }

    /// A key no setting takes (misspelt, or from another version), and where it was written:
    /// the environment variable that sets it, or the file.
    fn unknown_key(&mut self, key: &str) {
        let env_name = format!(
            "{ENV_PREFIX}__{}",
            key.replace(['.', '[', ']'], "__")
                .replace("____", "__")
                .trim_end_matches('_')
                .to_ascii_uppercase()
        );
        let origin = if std::env::var_os(&env_name).is_some() {
            format!("environment variable {env_name}")
        } else {
            self.source_name.clone()
        };
        self.problem(format!("unknown key '{key}' in {origin}"));
    }

    fn path(&self, text: &str) -> PathBuf {
        let path = PathBuf::from(text);
        if path.is_absolute() {
            path
        } else {
            self.base_dir.join(path)
        }
    }

    fn duration(&mut self, key: &str, value: Option<&str>, default: Duration) -> Duration {
        match value {
            None => default,
            Some(text) => parse_duration(text).unwrap_or_else(|err| {
                self.problem(format!("{key}: {err}"));
                default
            }),
        }
    }

    fn check(&mut self, raw: RawConfig, source_name: &str) -> Option<Config> {
        let which = match raw.source.api.as_deref().unwrap_or("defender") {
            "defender" => Api::Defender,
            "graph" => Api::Graph,
            other => {
                self.problem(format!(
                    "source.api: '{other}' is not an API (defender | graph)"
                ));
                Api::Defender
            }
        };
        let api = self.api(raw.api, which);
        let limits = self.limits(raw.limits.window, which);
        let schedule = self.schedule(raw.schedule);
        let (watchlist_sources, watchlist) = self.watchlist(raw.watchlist);
        let store = self.store(raw.store);
        let updates = self.updates(raw.updates);
        let sinks = self.sinks(raw.sinks);
        let pipeline = self.pipeline(raw.pipeline);
        let collector = raw
            .collector
            .name
            .unwrap_or_else(|| gethostname::gethostname().to_string_lossy().into_owned());
        self.rfc3164_hostname(&sinks, &collector);
        let telemetry = self.telemetry(raw.telemetry);
        let alert_source = self.source(raw.source, which);
        Some(Config {
            source: source_name.to_string(),
            api: api?,
            limits,
            schedule,
            watchlist,
            watchlist_sources,
            store,
            updates,
            sinks,
            pipeline,
            collector,
            telemetry,
            alert_source,
            warnings: std::mem::take(&mut self.warnings),
        })
    }

    /// RFC 3164 has no quoting: the collector name goes out as HOSTNAME, and a name with `|`,
    /// `]` or a space is read by relays as the start of the TAG or the message.
    fn rfc3164_hostname(&mut self, sinks: &[SinkConfig], collector: &str) {
        let rfc3164 = sinks.iter().find(|sink| {
            matches!(&sink.kind, SinkKind::Syslog(syslog) if syslog.protocol == crate::sinks::syslog::SyslogProtocol::Rfc3164)
        });
        if let Some(sink) = rfc3164 {
            if !crate::sinks::syslog::frame::is_rfc3164_hostname(collector) {
                self.problem(format!(
                    "collector.name: '{collector}' cannot be an RFC 3164 HOSTNAME (sink '{}' uses protocol rfc3164): use letters, digits, '-', '_' and '.' only",
                    sink.name
                ));
            }
        }
    }

    fn telemetry(&mut self, raw: super::raw::RawTelemetry) -> TelemetryConfig {
        let listen = raw.listen.and_then(|text| match text.parse::<std::net::SocketAddr>() {
            Ok(address) if address.ip().is_loopback() => Some(address),
            Ok(address) => {
                self.problem(format!(
                    "telemetry.listen: '{address}' is not a loopback address; /metrics and /healthz are served on 127.0.0.1 or [::1] only (put a proxy in front to expose them)"
                ));
                None
            }
            Err(_) => {
                self.problem(format!(
                    "telemetry.listen: '{text}' is not an address and port, e.g. \"127.0.0.1:9464\""
                ));
                None
            }
        });
        let otlp_endpoint = raw.otlp_endpoint.and_then(|url| {
            if url.starts_with("http://") || url.starts_with("https://") {
                self.telemetry_url(&url);
                Some(url.trim_end_matches('/').to_string())
            } else {
                self.problem(format!(
                    "telemetry.otlp_endpoint: '{url}' is not an http(s) URL, e.g. \"http://127.0.0.1:4318\""
                ));
                None
            }
        });
        let otlp_interval = self.duration(
            "telemetry.otlp_interval",
            raw.otlp_interval.as_deref(),
            Duration::from_secs(60),
        );
        let otlp_ca_file = self.ca_file("telemetry.otlp_ca_file", raw.otlp_ca_file.as_deref());
        if otlp_ca_file.is_some() && otlp_endpoint.is_none() {
            self.warnings.push(
                "telemetry.otlp_ca_file is set but telemetry.otlp_endpoint is not: it is not used"
                    .to_string(),
            );
        }
        let otlp_headers_file = raw.otlp_headers_file.as_deref().map(|file| self.path(file));
        let otlp_headers = match &otlp_headers_file {
            Some(path) => self.otlp_headers(path, otlp_endpoint.as_deref()),
            None => Vec::new(),
        };
        TelemetryConfig {
            listen,
            otlp_endpoint,
            otlp_interval,
            otlp_ca_file,
            otlp_headers_file,
            otlp_headers,
        }
    }

    fn source(&mut self, raw: super::raw::RawSource, which: Api) -> SourceConfig {
        let defaults = SourceConfig::for_api(which);
        let mode = match raw.mode.as_deref().unwrap_or(defaults.mode.as_str()) {
            "entities" if which == Api::Graph => {
                self.problem(
                    "source.mode: 'entities' needs source.api = \"defender\": the Graph security API has no per-user or per-file alert routes; use mode = \"feed\"",
                );
                SourceMode::Feed
            }
            "entities" => SourceMode::Entities,
            "feed" => SourceMode::Feed,
            "auto" => SourceMode::Auto,
            other => {
                self.problem(format!(
                    "source.mode: '{other}' is not a mode (entities | feed | auto)"
                ));
                SourceMode::Entities
            }
        };
        let since = raw
            .since
            .as_deref()
            .and_then(|text| match parse_duration(text) {
                Ok(span) => Some(span),
                Err(err) => {
                    self.problem(format!("source.since: {err}"));
                    None
                }
            });
        let lookback = self.duration(
            "source.lookback",
            raw.lookback.as_deref(),
            defaults.lookback,
        );
        let page_size = match raw.page_size {
            None => defaults.page_size,
            Some(n @ 1..=crate::defender::odata::MAX_PAGE_SIZE) => n,
            Some(n) => {
                self.problem(format!(
                    "source.page_size: {n} is out of range (1 to {}, the API's largest $top)",
                    crate::defender::odata::MAX_PAGE_SIZE
                ));
                defaults.page_size
            }
        };
        // Graph has nothing but its feed: `auto` has no choice to make.
        let mode = match (which, mode) {
            (Api::Graph, SourceMode::Auto) => SourceMode::Feed,
            (_, mode) => mode,
        };
        SourceConfig {
            mode,
            since,
            lookback,
            page_size,
        }
    }

    fn at_least_one(&mut self, key: &str, value: Option<usize>, default: usize) -> usize {
        match value {
            Some(0) => {
                self.problem(format!("{key}: must be at least 1"));
                default
            }
            Some(n) => n,
            None => default,
        }
    }

    fn api(&mut self, raw: RawApi, which: Api) -> Option<ApiConfig> {
        let cloud = self.cloud(raw.cloud.as_deref());
        let tenant_id = self.required_id("api.tenant_id", raw.tenant_id.clone());
        let client_id = self.required_id("api.client_id", raw.client_id.clone());
        let proof = self.proof(&raw);
        let endpoints = match which {
            Api::Defender => cloud.endpoints(),
            Api::Graph => cloud.graph_endpoints(),
        };
        let api_base = self
            .url("api.base_url", raw.base_url)
            .unwrap_or(endpoints.api_base);
        let login_base = self
            .url("api.login_url", raw.login_url)
            .unwrap_or(endpoints.login_base);
        let allow_insecure_http = raw.allow_insecure_http.unwrap_or(false);
        self.api_hosts_in_clear(
            (&api_base, &login_base),
            allow_insecure_http,
            proof.certificate.is_some(),
        );
        let ca_file = self.ca_file("api.ca_file", raw.ca_file.as_deref());
        let token_endpoint = self.token_endpoint(raw.token_endpoint.as_deref());
        let proxy = self.url("api.proxy", raw.proxy).map(ProxyUrl::new);
        // The API's timings: key, value, default.
        #[rustfmt::skip]
        let timings = [
            ("api.timeout", &raw.timeout, Duration::from_secs(30)),
            ("api.connect_timeout", &raw.connect_timeout, Duration::from_secs(10)),
            ("api.backoff_base", &raw.backoff_base, Duration::from_millis(500)),
            ("api.backoff_max", &raw.backoff_max, Duration::from_secs(60)),
            ("api.token_refresh_margin", &raw.token_refresh_margin, Duration::from_secs(300)),
        ];
        let [timeout, connect_timeout, backoff_base, backoff_max, token_refresh_margin] =
            timings.map(|(key, value, default)| self.duration(key, value.as_deref(), default));
        Some(ApiConfig {
            api: which,
            cloud,
            tenant_id: tenant_id?,
            client_id: client_id?,
            // Outer None: the secret could not be read (a problem is recorded).
            secret: match proof.secret {
                Some(read) => Some(read?),
                None => None,
            },
            secret_source: proof.secret_source,
            certificate: proof.certificate,
            api_base,
            login_base,
            allow_insecure_http,
            ca_file,
            audience: raw.audience.unwrap_or(endpoints.audience),
            token_endpoint,
            timeout,
            connect_timeout,
            proxy,
            max_retries: raw.max_retries.unwrap_or(6),
            backoff_base,
            backoff_max,
            token_refresh_margin,
        })
    }

    fn cloud(&mut self, value: Option<&str>) -> Cloud {
        Cloud::parse(value.unwrap_or("public")).unwrap_or_else(|err| {
            self.problem(format!("api.cloud: {err}"));
            Cloud::Public
        })
    }

    fn token_endpoint(&mut self, value: Option<&str>) -> TokenEndpoint {
        match value.unwrap_or("v2") {
            "v2" => TokenEndpoint::V2,
            "v1" => TokenEndpoint::V1,
            other => {
                self.problem(format!(
                    "api.token_endpoint: '{other}' is not a token endpoint (v2 | v1)"
                ));
                TokenEndpoint::V2
            }
        }
    }

    /// Tenant and client ids: a GUID, or (tenant only) a domain such as contoso.onmicrosoft.com.
    fn required_id(&mut self, key: &str, value: Option<String>) -> Option<String> {
        let Some(value) = value
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
        else {
            self.problem(format!("{key} is required"));
            return None;
        };
        if !value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        {
            self.problem(format!("{key}: '{value}' is not a GUID or domain name"));
            return None;
        }
        Some(value)
    }

    fn url(&mut self, key: &str, value: Option<String>) -> Option<String> {
        let value = value?;
        match reqwest::Url::parse(&value) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {
                Some(value.trim_end_matches('/').to_string())
            }
            _ => {
                let shown = super::secret::without_credentials(&value);
                self.problem(format!("{key}: '{shown}' is not an http(s) URL"));
                None
            }
        }
    }

    fn limits(&mut self, raw: Option<Vec<super::raw::RawWindow>>, which: Api) -> Vec<Window> {
        let documented: &[Window] = match which {
            Api::Defender => &limiter::DOCUMENTED_LIMITS,
            Api::Graph => &limiter::GRAPH_LIMITS,
        };
        let Some(raw) = raw else {
            return documented.to_vec();
        };
        let mut windows = Vec::new();
        for (index, window) in raw.iter().enumerate() {
            let key = format!("limits.window[{index}]");
            let per = self.duration(&format!("{key}.per"), Some(&window.per), Duration::ZERO);
            if window.calls == 0 {
                self.problem(format!("{key}.calls: must be at least 1"));
            } else if per.is_zero() {
                if parse_duration(&window.per).is_ok() {
                    self.problem(format!("{key}.per: must be longer than zero"));
                }
            } else {
                windows.push(Window {
                    calls: window.calls,
                    per,
                });
            }
        }
        if raw.is_empty() {
            self.problem("limits.window: at least one window is needed (the API allows 100 per 60s and 1500 per 1h)");
        }
        if let Some(excess) = limiter::exceeds(&windows, documented) {
            self.warnings.push(format!(
                "LIMITS ABOVE THE DOCUMENTED API LIMITS: {excess}. Microsoft will answer with 429s; use such limits only against the emulator or in benchmarks"
            ));
        }
        windows
    }
}

#[cfg(test)]
#[path = "validate_tests.rs"]
mod tests;
