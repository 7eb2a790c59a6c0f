//! The Defender for Endpoint API emulator (`mde-watch sim`, and [`start`] for tests, benchmarks
//! and the demo): both token endpoints (v1 and v2), both watchlist alert endpoints, the per-app
//! limits with 429 + Retry-After and the real error body, a deterministic alert universe that
//! evolves over virtual time, fault injection, and `/sim/stats`; over HTTP, or HTTPS with a
//! given certificate ([`SimConfig::tls`], `mde-watch sim --tls-cert`) for the client's TLS tests.

mod answer;
mod faults;
pub mod feed;
mod feed_route;
pub mod graph;
mod server;
mod state;
mod stats;
mod tls;
mod token;
pub mod universe;
mod wire;

pub use faults::{Fault, Faults};
pub use server::{start, SimHandle};
pub use stats::{most_in_any_span, SimStats, WindowPeak};
pub use tls::{SimTls, TlsListener};
pub use universe::{epoch, Universe, UniverseSpec};

use std::net::SocketAddr;
use std::time::Duration;

use crate::schedule::limiter::{Window, DOCUMENTED_LIMITS};

pub const SIM_TENANT: &str = "00000000-0000-0000-0000-000000000000";
pub const SIM_CLIENT_ID: &str = "11111111-1111-1111-1111-111111111111";
pub const SIM_CLIENT_SECRET: &str = "emulator-secret-not-for-production";

#[derive(Debug, Clone)]
pub struct SimConfig {
    pub listen: SocketAddr,
    pub tenant_id: String,
    pub client_id: String,
    pub client_secret: String,
    /// The certificate registered on the app (PEM): client assertions signed by its key are
    /// accepted, as Entra ID accepts them, besides the secret.
    pub certificate_pem: Option<Vec<u8>>,
    /// The limits enforced per app; the documented ones by default.
    pub limits: Vec<Window>,
    /// `expires_in` of issued tokens.
    pub token_ttl: Duration,
    pub universe: UniverseSpec,
    pub faults: Faults,
    /// Virtual seconds per real second (0 freezes time; tests move it with `advance`).
    pub speed: f64,
    /// Virtual seconds added at every call of the feed, after it is answered: alerts appear and
    /// change between the pages of one poll, deterministically (to test paging under churn).
    pub advance_per_feed_call: f64,
    /// Serve HTTPS with this certificate instead of plain HTTP.
    pub tls: Option<SimTls>,
    /// Deflate Defender's alert pages for a client that accepts it, as Defender does (§4);
    /// false answers plain JSON to everyone.
    pub deflate: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            tenant_id: SIM_TENANT.into(),
            client_id: SIM_CLIENT_ID.into(),
            client_secret: SIM_CLIENT_SECRET.into(),
            certificate_pem: None,
            limits: DOCUMENTED_LIMITS.to_vec(),
            token_ttl: Duration::from_secs(3599),
            universe: UniverseSpec::default(),
            faults: Faults::default(),
            speed: 0.0,
            advance_per_feed_call: 0.0,
            tls: None,
            deflate: true,
        }
    }
}
