//! OTLP over HTTP (JSON encoding) when `[telemetry] otlp_endpoint` is set: the same metric set
//! as `/metrics`, pushed every `otlp_interval` to `<endpoint>/v1/metrics`, and the `sweep`,
//! `poll` and `publish` spans to `<endpoint>/v1/traces`. The exporters send through
//! [`Collector`] (reqwest's blocking client on the SDK's own threads, `otlp_ca_file` trusted,
//! failures logged and counted): build and shut them down outside the async runtime (or in
//! `spawn_blocking`).

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use opentelemetry::metrics::{AsyncInstrument, Meter, MeterProvider as _};
use opentelemetry::KeyValue;
use opentelemetry_otlp::{
    ExporterBuildError, MetricExporter, Protocol, SpanExporter, WithExportConfig, WithHttpConfig,
};
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;

use super::exports::{ClientError, Collector, Signal};
use super::metrics::{collect, Kind, Metric, Value};
use super::Sources;
use crate::config::secret::Secret;
use crate::config::TelemetryConfig;

/// How long one export may take.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum OtlpError {
    #[error("telemetry.otlp_endpoint {endpoint}: the exporter could not be built")]
    Exporter {
        endpoint: String,
        #[source]
        source: ExporterBuildError,
    },
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("OTLP collector {url}: no answer{}", reason(.certificate))]
    Unreachable {
        url: String,
        /// Why the collector's certificate was refused, when it was.
        certificate: Option<String>,
        #[source]
        source: reqwest::Error,
    },
    #[error("OTLP collector {url}: answered {status} to an empty export")]
    Refused {
        url: String,
        status: reqwest::StatusCode,
    },
}

fn reason(certificate: &Option<String>) -> String {
    certificate
        .as_deref()
        .map(|why| format!(": {why}"))
        .unwrap_or_default()
}

/// `check --connect`: sends an empty metrics export (`{}`, which a collector takes and
/// ignores) the way the exporter would, so the address, TLS and the CA are tried before the
/// service starts. Blocking: call it in `spawn_blocking`.
pub fn check_connection(target: Target, timeout: Duration) -> Result<String, OtlpError> {
    let url = format!("{}/v1/metrics", target.endpoint);
    let answer = super::exports::client(timeout, target.ca_file, target.headers)?
        .post(&url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body("{}")
        .send()
        .map_err(|source| OtlpError::Unreachable {
            url: url.clone(),
            certificate: crate::defender::tls::refused_certificate_for(
                &source,
                "telemetry.otlp_ca_file",
            ),
            source,
        })?;
    match answer.status() {
        status if status.is_success() => Ok(format!("{url} took an empty export ({status})")),
        status => Err(OtlpError::Refused { url, status }),
    }
}

/// Where OTLP goes: `[telemetry]`'s endpoint, the CA its certificate may chain to, and the
/// headers it wants.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub endpoint: &'a str,
    pub ca_file: Option<&'a Path>,
    pub headers: &'a [(String, Secret)],
}

impl<'a> Target<'a> {
    /// The target `[telemetry]` names, when it names an endpoint.
    pub fn of(telemetry: &'a TelemetryConfig) -> Option<Target<'a>> {
        Some(Target {
            endpoint: telemetry.otlp_endpoint.as_deref()?,
            ca_file: telemetry.otlp_ca_file.as_deref(),
            headers: &telemetry.otlp_headers,
        })
    }
}

fn resource() -> Resource {
    Resource::builder()
        .with_service_name("mde-watch")
        .with_attribute(KeyValue::new("service.version", crate::VERSION))
        .build()
}

fn build_failed(endpoint: &str) -> impl Fn(ExporterBuildError) -> OtlpError + '_ {
    move |source| OtlpError::Exporter {
        endpoint: endpoint.to_string(),
        source,
    }
}

/// What both exporters share: OTLP over HTTP with JSON to `<endpoint><path>`, 10 s a push,
/// through a [`Collector`] of their own.
fn http_json<B: WithExportConfig + WithHttpConfig>(
    builder: B,
    target: Target,
    signal: Signal,
) -> Result<B, OtlpError> {
    let path = match signal {
        Signal::Metrics => "/v1/metrics",
        Signal::Traces => "/v1/traces",
    };
    let collector = Collector::new(signal, EXPORT_TIMEOUT, target.ca_file, target.headers)?;
    Ok(builder
        .with_protocol(Protocol::HttpJson)
        .with_endpoint(format!("{}{path}", target.endpoint))
        .with_timeout(EXPORT_TIMEOUT)
        .with_http_client(collector))
}

/// Spans, batched and exported from the SDK's thread.
pub fn tracer_provider(target: Target) -> Result<SdkTracerProvider, OtlpError> {
    let exporter = http_json(SpanExporter::builder().with_http(), target, Signal::Traces)?
        .build()
        .map_err(build_failed(target.endpoint))?;
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource())
        .build())
}

/// Every metric of [`collect`], observed at each export.
pub fn meter_provider(
    target: Target,
    interval: Duration,
    sources: Sources,
) -> Result<SdkMeterProvider, OtlpError> {
    let exporter = http_json(
        MetricExporter::builder().with_http(),
        target,
        Signal::Metrics,
    )?
    .build()
    .map_err(build_failed(target.endpoint))?;
    let reader = PeriodicReader::builder(exporter)
        .with_interval(interval)
        .build();
    let provider = SdkMeterProvider::builder()
        .with_reader(reader)
        .with_resource(resource())
        .build();
    let meter = provider.meter("mde-watch");
    let cache = Arc::new(Cached {
        sources,
        last: Mutex::new(None),
    });
    for metric in cache.metrics().iter() {
        register(&meter, metric, &cache);
    }
    Ok(provider)
}

/// One collection serves every instrument's callback of an export.
struct Cached {
    sources: Sources,
    last: Mutex<Option<(Instant, Arc<Vec<Metric>>)>>,
}

impl Cached {
    fn metrics(&self) -> Arc<Vec<Metric>> {
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        match &*last {
            Some((at, metrics)) if at.elapsed() < Duration::from_millis(500) => metrics.clone(),
            _ => {
                let metrics = Arc::new(collect(
                    &self.sources,
                    chrono::Utc::now().timestamp_millis(),
                ));
                *last = Some((Instant::now(), metrics.clone()));
                metrics
            }
        }
    }

    /// (attributes, value) of each sample of `name`; a histogram gives its sum or its count.
    fn samples(&self, name: &str, part: Part) -> Vec<(Vec<KeyValue>, f64)> {
        let metrics = self.metrics();
        let Some(metric) = metrics.iter().find(|m| m.name == name) else {
            return Vec::new();
        };
        metric
            .samples
            .iter()
            .map(|sample| {
                let attributes = sample
                    .labels
                    .iter()
                    .map(|(k, v)| KeyValue::new(*k, v.clone()))
                    .collect();
                let value = match (&sample.value, part) {
                    (Value::Number(v), _) => *v,
                    (Value::Histogram { sum, .. }, Part::Sum) => *sum,
                    (Value::Histogram { count, .. }, _) => *count as f64,
                };
                (attributes, value)
            })
            .collect()
    }
}

#[derive(Clone, Copy)]
enum Part {
    Value,
    Sum,
    Count,
}

fn register(meter: &Meter, metric: &Metric, cache: &Arc<Cached>) {
    let observe = |part: Part| {
        let cache = cache.clone();
        let name = metric.name;
        move |observer: &dyn AsyncInstrument<f64>| {
            for (attributes, value) in cache.samples(name, part) {
                observer.observe(value, &attributes);
            }
        }
    };
    match metric.kind {
        Kind::Counter => {
            meter
                .f64_observable_counter(metric.name)
                .with_description(metric.help)
                .with_callback(observe(Part::Value))
                .build();
        }
        Kind::Gauge => {
            meter
                .f64_observable_gauge(metric.name)
                .with_description(metric.help)
                .with_callback(observe(Part::Value))
                .build();
        }
        // Observable histograms do not exist in OpenTelemetry: the sum and count go out as
        // counters (the buckets are on /metrics).
        Kind::Histogram => {
            meter
                .f64_observable_counter(format!("{}_sum", metric.name))
                .with_description(metric.help)
                .with_callback(observe(Part::Sum))
                .build();
            meter
                .f64_observable_counter(format!("{}_count", metric.name))
                .with_description(metric.help)
                .with_callback(observe(Part::Count))
                .build();
        }
    }
}
