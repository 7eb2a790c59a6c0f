//! The HTTP client both OTLP exporters send through: reqwest's blocking client (the SDK calls it
//! from its own threads), trusting `telemetry.otlp_ca_file` besides the built-in roots, and the
//! one place an export's outcome is logged and counted. The SDK alone would drop a failed export
//! without a word (its internal logs are not built in), so a collector that is down, answers with
//! an error or presents a certificate nobody trusts would look like an idle service.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use crate::config::secret::Secret;
use crate::defender::tls::{ca_certificates, CaFileError};
use crate::errors::Chain;

/// What an exporter sends: each has its own path on the collector and its own counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Metrics = 0,
    Traces = 1,
}

impl Signal {
    pub const ALL: [Signal; 2] = [Signal::Metrics, Signal::Traces];

    pub fn name(self) -> &'static str {
        match self {
            Signal::Metrics => "metrics",
            Signal::Traces => "traces",
        }
    }
}

/// Exports that failed, by signal, since the process started.
static FAILED: [AtomicU64; 2] = [AtomicU64::new(0), AtomicU64::new(0)];
/// Whether the last export of each signal failed: an outage is logged when it starts and when
/// it ends, not at every export in between.
static FAILING: [AtomicBool; 2] = [AtomicBool::new(false), AtomicBool::new(false)];

/// Failed exports of `signal` so far (`mdewatch_otlp_export_failures_total`).
pub fn failures(signal: Signal) -> u64 {
    FAILED[signal as usize].load(Ordering::Relaxed)
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(transparent)]
    CaFile(#[from] CaFileError),
    #[error("telemetry.otlp_headers_file: header {name} cannot be sent")]
    Header { name: String },
    #[error("the OTLP HTTP client could not be built")]
    Build(#[source] reqwest::Error),
}

/// The collector as one exporter sees it.
#[derive(Debug)]
pub struct Collector {
    client: reqwest::blocking::Client,
    signal: Signal,
}

/// A blocking client with `timeout` per request that also trusts the CAs in `ca_file` and
/// sends `headers` (marked sensitive, so no debug output of reqwest's shows them). Call it, and
/// drop what it returns, outside the async runtime (or in `spawn_blocking`).
pub fn client(
    timeout: Duration,
    ca_file: Option<&Path>,
    headers: &[(String, Secret)],
) -> Result<reqwest::blocking::Client, ClientError> {
    let mut builder = reqwest::blocking::Client::builder()
        .timeout(timeout)
        .default_headers(header_map(headers)?);
    if let Some(path) = ca_file {
        for certificate in ca_certificates("telemetry.otlp_ca_file", path)? {
            builder = builder.add_root_certificate(certificate);
        }
    }
    builder.build().map_err(ClientError::Build)
}

fn header_map(headers: &[(String, Secret)]) -> Result<HeaderMap, ClientError> {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        let refused = || ClientError::Header { name: name.clone() };
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| refused())?;
        let mut value = HeaderValue::from_str(value.expose()).map_err(|_| refused())?;
        value.set_sensitive(true);
        map.append(name, value);
    }
    Ok(map)
}

impl Collector {
    /// The collector for `signal`'s exporter, through [`client`].
    pub fn new(
        signal: Signal,
        timeout: Duration,
        ca_file: Option<&Path>,
        headers: &[(String, Secret)],
    ) -> Result<Collector, ClientError> {
        Ok(Collector {
            client: client(timeout, ca_file, headers)?,
            signal,
        })
    }
}

#[async_trait::async_trait]
impl HttpClient for Collector {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let url = request.uri().to_string();
        let outcome = self.client.send_bytes(request).await;
        match &outcome {
            Ok(_) => ExportDone {
                signal: self.signal,
                url: &url,
            }
            .emit(),
            Err(error) => ExportFailed {
                signal: self.signal,
                url: &url,
                error: error.as_ref(),
            }
            .emit(),
        }
        outcome
    }
}

/// An export the collector did not take (unreachable, refused, an error status).
struct ExportFailed<'a> {
    signal: Signal,
    url: &'a str,
    error: &'a (dyn std::error::Error + 'static),
}

impl ExportFailed<'_> {
    fn emit(self) {
        let index = self.signal as usize;
        FAILED[index].fetch_add(1, Ordering::Relaxed);
        if FAILING[index].swap(true, Ordering::Relaxed) {
            tracing::debug!(signal = self.signal.name(), url = self.url, error = %Chain(self.error), "OTLP export failed again");
            return;
        }
        let certificate =
            crate::defender::tls::refused_certificate_for(self.error, "telemetry.otlp_ca_file");
        tracing::warn!(
            signal = self.signal.name(),
            url = self.url,
            certificate = certificate.as_deref(),
            error = %Chain(self.error),
            "OTLP export failed; counted in mdewatch_otlp_export_failures_total, said again when it works"
        );
    }
}

/// An export the collector took: ends an outage.
struct ExportDone<'a> {
    signal: Signal,
    url: &'a str,
}

impl ExportDone<'_> {
    fn emit(self) {
        if FAILING[self.signal as usize].swap(false, Ordering::Relaxed) {
            tracing::info!(
                signal = self.signal.name(),
                url = self.url,
                "OTLP export works again"
            );
        }
    }
}
