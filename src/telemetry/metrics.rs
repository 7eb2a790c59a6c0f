//! The metric set: every figure the issue names, read from the counters, the rate gate and the
//! store at the moment of a scrape or an export.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::schedule::gate::RateGate;
use crate::schedule::limiter::Window;
use crate::stats::{CallOutcome, Counters, Endpoint, LATENCY_BUCKETS};
use crate::store::Store;

use super::exports::{self, Signal};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

#[derive(Debug, Clone)]
pub enum Value {
    Number(f64),
    Histogram {
        bounds: &'static [f64],
        cumulative: Vec<u64>,
        sum: f64,
        count: u64,
    },
}

#[derive(Debug, Clone)]
pub struct Sample {
    pub labels: Vec<(&'static str, String)>,
    pub value: Value,
}

#[derive(Debug, Clone)]
pub struct Metric {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: Kind,
    pub samples: Vec<Sample>,
}

/// Where the figures come from.
#[derive(Clone)]
pub struct Sources {
    pub counters: Arc<Counters>,
    pub gate: Arc<RateGate>,
    pub windows: Vec<Window>,
    pub store: Arc<Store>,
    /// The cron's cadence, for `/healthz`.
    pub cadence: Duration,
    /// When the process started, seconds since the epoch.
    pub started: i64,
    /// Whether alerts come from the feed (health then follows its cursor).
    pub feed: bool,
}

impl Sources {
    pub fn health(&self, now: i64) -> super::health::Health {
        let last = self.counters.last_sweep_ok.load(Ordering::Relaxed);
        let failing: Vec<String> = self
            .counters
            .sinks()
            .iter()
            .filter(|s| s.failing.load(Ordering::Relaxed))
            .map(|s| s.name.clone())
            .collect();
        let moved = self.counters.feed_cursor_moved.load(Ordering::Relaxed);
        super::health::evaluate(&super::health::Facts {
            now,
            started: self.started,
            last_sweep_ok: (last > 0).then_some(last as i64),
            cadence_secs: self.cadence.as_secs().max(1),
            failing_sinks: &failing,
            feed: self.feed.then_some((moved > 0).then_some(moved as i64)),
        })
    }
}

fn one(value: f64) -> Vec<Sample> {
    vec![Sample {
        labels: Vec::new(),
        value: Value::Number(value),
    }]
}

/// One sample per value of a single label, in the order given.
fn by_label(label: &'static str, values: &[(&str, f64)]) -> Vec<Sample> {
    values
        .iter()
        .map(|&(value, number)| Sample {
            labels: vec![(label, value.into())],
            value: Value::Number(number),
        })
        .collect()
}

fn metric(name: &'static str, help: &'static str, kind: Kind, samples: Vec<Sample>) -> Metric {
    Metric {
        name,
        help,
        kind,
        samples,
    }
}

fn load(counter: &AtomicU64) -> f64 {
    counter.load(Ordering::Relaxed) as f64
}

/// A metric that is one number read from the counters: name, help, kind, reading.
type Single = (&'static str, &'static str, Kind, fn(&Counters) -> f64);

#[rustfmt::skip]
const API_SINGLES: &[Single] = &[
    ("mdewatch_api_throttled_total", "429 answers received.", Kind::Counter, |c| load(&c.throttled)),
    ("mdewatch_api_retries_total", "Calls made again after a 429, a 5xx, a timeout or a 401.", Kind::Counter, |c| load(&c.retries)),
    ("mdewatch_limiter_wait_seconds_total", "Time calls waited for the rate limiter.", Kind::Counter, |c| load(&c.limiter_wait_ms) / 1000.0),
];

#[rustfmt::skip]
const ALERT_SINGLES: &[Single] = &[
    ("mdewatch_alerts_published_total", "Alerts every sink acknowledged and the store committed.", Kind::Counter, |c| load(&c.alerts_published)),
    ("mdewatch_alerts_rejected_total", "Alerts in responses that could not be read.", Kind::Counter, |c| load(&c.alerts_rejected)),
    ("mdewatch_feed_queries_total", "Queries of the alerts feed answered (time slices and pages).", Kind::Counter, |c| load(&c.feed_pages)),
];

#[rustfmt::skip]
const SWEEP_SINGLES: &[Single] = &[
    ("mdewatch_sweeps_total", "Sweeps started.", Kind::Counter, |c| load(&c.sweeps)),
    ("mdewatch_entries_polled_total", "Watchlist entries polled.", Kind::Counter, |c| load(&c.entries_polled)),
    ("mdewatch_entries_failed_total", "Watchlist entries that could not be polled.", Kind::Counter, |c| load(&c.entries_failed)),
    ("mdewatch_feed_cursor_advanced_timestamp_seconds", "When this process last moved the feed cursor forward (0: not yet).", Kind::Gauge, |c| load(&c.feed_cursor_moved)),
    ("mdewatch_last_successful_sweep_timestamp_seconds", "When the last sweep that polled entries ended (0: none yet).", Kind::Gauge, |c| load(&c.last_sweep_ok)),
];

fn singles(out: &mut Vec<Metric>, table: &[Single], counters: &Counters) {
    out.extend(
        table
            .iter()
            .map(|&(name, help, kind, read)| metric(name, help, kind, one(read(counters)))),
    );
}

pub fn collect(sources: &Sources, now_ms: i64) -> Vec<Metric> {
    let c = &sources.counters;
    let mut out = Vec::with_capacity(32);
    out.push(api_calls(c));
    singles(&mut out, API_SINGLES, c);
    out.extend(budget(sources, now_ms));
    let new = load(&c.alerts_new);
    let (changed, unchanged) = (load(&c.alerts_changed), load(&c.alerts_unchanged));
    out.push(metric(
        "mdewatch_alerts_total",
        "Alerts polled, by what dedup decided.",
        Kind::Counter,
        by_label(
            "decision",
            &[("new", new), ("changed", changed), ("unchanged", unchanged)],
        ),
    ));
    singles(&mut out, ALERT_SINGLES, c);
    let (matched, unmatched) = (load(&c.alerts_matched), load(&c.alerts_unmatched));
    out.push(metric(
        "mdewatch_feed_alerts_total",
        "Alerts read from the feed, by whether their content matched the watchlist.",
        Kind::Counter,
        by_label("matched", &[("yes", matched), ("no", unmatched)]),
    ));
    let oversized = load(&c.events_oversized);
    let fitted = (load(&c.events_shortened) - oversized).max(0.0);
    out.push(metric(
        "mdewatch_events_shrunk_total",
        "Events shrunk to fit a sink's size limit (syslog max_message), by whether they then fit.",
        Kind::Counter,
        by_label("fits", &[("yes", fitted), ("no", oversized)]),
    ));
    out.extend(sink_metrics(c));
    out.push(publish_latency(c));
    if let Ok(stats) = sources.store.stats() {
        #[rustfmt::skip]
        let store = [
            ("mdewatch_store_alerts", "Alert ids the store remembers.", stats.seen_alerts as f64),
            ("mdewatch_store_log_records", "Records in the store's log, superseded ones included.", stats.log_records as f64),
            ("mdewatch_store_disk_bytes", "The store's size on disk.", stats.size_on_disk as f64),
        ];
        out.extend(
            store
                .into_iter()
                .map(|(name, help, value)| metric(name, help, Kind::Gauge, one(value))),
        );
    }
    singles(&mut out, SWEEP_SINGLES, c);
    out.push(otlp_failures());
    out.push(metric(
        "mdewatch_kafka_client_errors_total",
        "Errors librdkafka reported of the Kafka sinks' brokers (unreachable, a refused certificate, a failed login).",
        Kind::Counter,
        one(crate::sinks::kafka::context::client_errors() as f64),
    ));
    out.push(metric(
        "mdewatch_credential_rereads_total",
        "Times the client secret or certificate was read again from its files after the token endpoint refused it.",
        Kind::Counter,
        one(crate::defender::rotation::rereads() as f64),
    ));
    out
}

fn otlp_failures() -> Metric {
    let failed = Signal::ALL.map(|signal| (signal.name(), exports::failures(signal) as f64));
    metric(
        "mdewatch_otlp_export_failures_total",
        "OTLP exports the collector did not take (unreachable, refused, an error status), by signal.",
        Kind::Counter,
        by_label("signal", &failed),
    )
}

fn api_calls(c: &Counters) -> Metric {
    let mut calls = Vec::new();
    for endpoint in Endpoint::ALL {
        for outcome in CallOutcome::ALL {
            calls.push(Sample {
                labels: vec![
                    ("endpoint", endpoint.label().into()),
                    ("status", outcome.label().into()),
                ],
                value: Value::Number(c.calls_of(endpoint, outcome) as f64),
            });
        }
    }
    metric(
        "mdewatch_api_calls_total",
        "Calls to the alert endpoints (users, files, the alerts feed), by endpoint and answer.",
        Kind::Counter,
        calls,
    )
}

/// Calls made within each limit window now, and what each window allows.
fn budget(sources: &Sources, now_ms: i64) -> [Metric; 2] {
    let recent = sources.gate.recent_calls_wall_ms();
    let mut used = Vec::new();
    let mut limit = Vec::new();
    for window in &sources.windows {
        let label = crate::units::format_duration(window.per);
        let since = now_ms - window.per.as_millis() as i64;
        let n = recent.iter().filter(|&&at| at > since).count();
        used.push(Sample {
            labels: vec![("window", label.clone())],
            value: Value::Number(n as f64),
        });
        limit.push(Sample {
            labels: vec![("window", label)],
            value: Value::Number(f64::from(window.calls)),
        });
    }
    [
        metric(
            "mdewatch_budget_used_calls",
            "Calls made within each limit window, now.",
            Kind::Gauge,
            used,
        ),
        metric(
            "mdewatch_budget_limit_calls",
            "Calls each limit window allows.",
            Kind::Gauge,
            limit,
        ),
    ]
}

/// Events per sink by outcome, the events each sink holds, and whether it is failing.
fn sink_metrics(c: &Counters) -> [Metric; 3] {
    let sinks = c.sinks();
    let mut events = Vec::new();
    let mut queued = Vec::new();
    let mut failing = Vec::new();
    for sink in sinks {
        for (outcome, counter) in [
            ("sent", &sink.sent),
            ("acked", &sink.acked),
            ("failed", &sink.failed),
        ] {
            events.push(Sample {
                labels: vec![("sink", sink.name.clone()), ("outcome", outcome.into())],
                value: Value::Number(load(counter)),
            });
        }
        queued.push(Sample {
            labels: vec![("sink", sink.name.clone())],
            value: Value::Number(load(&sink.queued)),
        });
        failing.push(Sample {
            labels: vec![("sink", sink.name.clone())],
            value: Value::Number(if sink.failing.load(Ordering::Relaxed) {
                1.0
            } else {
                0.0
            }),
        });
    }
    [
        metric(
            "mdewatch_sink_events_total",
            "Events per sink: handed over (resends included), acknowledged, in failed attempts.",
            Kind::Counter,
            events,
        ),
        metric(
            "mdewatch_sink_queued_events",
            "Events handed to a sink and not committed yet.",
            Kind::Gauge,
            queued,
        ),
        metric(
            "mdewatch_sink_failing",
            "1 while a sink's last delivery attempt failed.",
            Kind::Gauge,
            failing,
        ),
    ]
}

fn publish_latency(c: &Counters) -> Metric {
    let (cumulative, sum, count) = c.publish_latency.read();
    metric(
        "mdewatch_publish_latency_seconds",
        "From handing a batch to a sink to its acknowledgement.",
        Kind::Histogram,
        vec![Sample {
            labels: Vec::new(),
            value: Value::Histogram {
                bounds: &LATENCY_BUCKETS,
                cumulative,
                sum,
                count,
            },
        }],
    )
}
