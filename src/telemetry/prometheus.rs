//! The Prometheus text exposition format (version 0.0.4) of a metric set. Pure.

use std::fmt::Write;

use super::metrics::{Kind, Metric, Value};

pub fn render(metrics: &[Metric]) -> String {
    let mut out = String::with_capacity(4096);
    for metric in metrics {
        let kind = match metric.kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        };
        let _ = writeln!(out, "# HELP {} {}", metric.name, escape_help(metric.help));
        let _ = writeln!(out, "# TYPE {} {kind}", metric.name);
        for sample in &metric.samples {
            let name = metric.name;
            let plain = labels(&sample.labels, None);
            match &sample.value {
                Value::Number(v) => line(&mut out, name, "", &plain, number(*v)),
                Value::Histogram {
                    bounds,
                    cumulative,
                    sum,
                    count,
                } => {
                    for (i, at) in cumulative.iter().enumerate() {
                        let le = bounds.get(i).map_or("+Inf".to_string(), |b| number(*b));
                        let with_le = labels(&sample.labels, Some(&le));
                        line(&mut out, name, "_bucket", &with_le, at);
                    }
                    line(&mut out, name, "_sum", &plain, number(*sum));
                    line(&mut out, name, "_count", &plain, count);
                }
            }
        }
    }
    out
}

/// `<name><suffix>{labels} <value>`: one sample's line.
fn line(out: &mut String, name: &str, suffix: &str, labels: &str, value: impl std::fmt::Display) {
    let _ = writeln!(out, "{name}{suffix}{labels} {value}");
}

fn labels(pairs: &[(&'static str, String)], le: Option<&str>) -> String {
    if pairs.is_empty() && le.is_none() {
        return String::new();
    }
    let mut parts: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape_value(v)))
        .collect();
    if let Some(le) = le {
        parts.push(format!("le=\"{le}\""));
    }
    format!("{{{}}}", parts.join(","))
}

fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else {
        format!("{v}")
    }
}

fn escape_value(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::super::metrics::Sample;
    use super::*;

    #[test]
    fn counters_gauges_and_histograms_render_as_prometheus_reads_them() {
        let metrics = vec![
            Metric {
                name: "mdewatch_api_calls_total",
                help: "Calls to the alert endpoints.",
                kind: Kind::Counter,
                samples: vec![Sample {
                    labels: vec![("endpoint", "users".into()), ("status", "2xx".into())],
                    value: Value::Number(12.0),
                }],
            },
            Metric {
                name: "mdewatch_sink_failing",
                help: "1 while a sink's last attempt failed.",
                kind: Kind::Gauge,
                samples: vec![Sample {
                    labels: vec![("sink", "we\"ird\\name".into())],
                    value: Value::Number(0.0),
                }],
            },
            Metric {
                name: "mdewatch_publish_latency_seconds",
                help: "Hand-over to acknowledgement.",
                kind: Kind::Histogram,
                samples: vec![Sample {
                    labels: vec![],
                    value: Value::Histogram {
                        bounds: &[0.1, 1.0],
                        cumulative: vec![1, 3, 4],
                        sum: 5.5,
                        count: 4,
                    },
                }],
            },
        ];
        let text = render(&metrics);
        let expected = "\
# HELP mdewatch_api_calls_total Calls to the alert endpoints.
# TYPE mdewatch_api_calls_total counter
mdewatch_api_calls_total{endpoint=\"users\",status=\"2xx\"} 12
# HELP mdewatch_sink_failing 1 while a sink's last attempt failed.
# TYPE mdewatch_sink_failing gauge
mdewatch_sink_failing{sink=\"we\\\"ird\\\\name\"} 0
# HELP mdewatch_publish_latency_seconds Hand-over to acknowledgement.
# TYPE mdewatch_publish_latency_seconds histogram
mdewatch_publish_latency_seconds_bucket{le=\"0.1\"} 1
mdewatch_publish_latency_seconds_bucket{le=\"1\"} 3
mdewatch_publish_latency_seconds_bucket{le=\"+Inf\"} 4
mdewatch_publish_latency_seconds_sum 5.5
mdewatch_publish_latency_seconds_count 4
";
        assert_eq!(text, expected);
    }
}
