//! What the service tells its operators besides logs: metrics (Prometheus text on a loopback
//! endpoint, OTLP when an endpoint is configured), spans over OTLP, and `/healthz`. Everything
//! is read from the same [`Counters`](crate::stats::Counters) the run summary uses.

pub mod exports;
pub mod health;
pub mod metrics;
pub mod otlp;
pub mod prometheus;
pub mod server;

pub use metrics::{collect, Sources};
