//! mde-watch: watches users and SHA-1 file hashes in Microsoft Defender for Endpoint and ships every
//! new alert about them, normalized, to SIEM pipelines.
//!
//! Read the modules in data-flow order: [`config`] and [`watchlist`] describe what to watch,
//! [`schedule`] decides when each call may be made, [`defender`] makes the calls, [`store`] decides
//! what is new, [`normalize`] turns alerts into events, [`sinks`] make them durable, and
//! [`pipeline`] ties one poll result through all of it. [`sim`] is the API emulator the tests,
//! benchmarks and demo run against.

pub mod app;
pub mod config;
pub mod defender;
pub mod errors;
pub mod exposure;
pub mod feed;
pub mod json;
pub mod logging;
pub mod memory;
pub mod normalize;
pub mod notify;
pub mod pipeline;
pub mod schedule;
pub mod shutdown;
pub mod sim;
pub mod sinks;
pub mod stats;
pub mod store;
pub mod telemetry;
#[cfg(test)]
mod testing;
pub mod units;
pub mod watchlist;

/// Version of the events mde-watch emits; bumped when a field changes meaning or moves.
pub const EVENT_SCHEMA_VERSION: u32 = 2;

/// The crate version, used in the User-Agent and in CEF/ECS metadata.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
