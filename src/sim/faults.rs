//! Fault injection for the alert endpoints: each call draws once from a seeded generator and may
//! be slowed, fail with a 5xx, come back as malformed or cut-short JSON, or be throttled.

use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Faults {
    /// Share of calls answered 500/503.
    pub error_rate: f64,
    /// Share answered 200 with a body that is not JSON.
    pub malformed_rate: f64,
    /// Share whose body stops half way (the connection is cut).
    pub truncated_rate: f64,
    /// Share answered 429 even below the limits ("by CPU", docs/microsoft-api.md §9).
    pub throttle_rate: f64,
    /// Retry-After sent with forced 429s, in seconds.
    pub throttle_retry_after_secs: u64,
    /// Added to every alert call.
    pub latency_ms: u64,
    /// Tokens stop working this long after issue, whatever `expires_in` said.
    pub token_dies_after_ms: Option<u64>,
    /// Answer every alert call 403, as for an app registration without Alert.Read.All.
    pub forbidden: bool,
    /// The app's secret was rotated: the token endpoint takes this one, and no longer the one
    /// configured (tokens already issued keep working, as Entra ID's do).
    pub client_secret: Option<String>,
    /// The app's certificate was renewed: the token endpoint takes assertions signed for this
    /// one (PEM), and no longer for the one configured.
    pub certificate_pem: Option<Vec<u8>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    None,
    ServerError,
    Malformed,
    Truncated,
    Throttle,
}

impl Faults {
    pub fn latency(&self) -> Duration {
        Duration::from_millis(self.latency_ms)
    }

    /// Picks the fault for a call from one uniform draw in [0, 1).
    pub fn pick(&self, draw: f64) -> Fault {
        let mut edge = 0.0;
        for (rate, fault) in [
            (self.error_rate, Fault::ServerError),
            (self.malformed_rate, Fault::Malformed),
            (self.truncated_rate, Fault::Truncated),
            (self.throttle_rate, Fault::Throttle),
        ] {
            edge += rate.max(0.0);
            if draw < edge {
                return fault;
            }
        }
        Fault::None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_fall_into_bands() {
        let faults = Faults {
            error_rate: 0.1,
            malformed_rate: 0.1,
            truncated_rate: 0.1,
            throttle_rate: 0.1,
            ..Default::default()
        };
        assert_eq!(faults.pick(0.05), Fault::ServerError);
        assert_eq!(faults.pick(0.15), Fault::Malformed);
        assert_eq!(faults.pick(0.25), Fault::Truncated);
        assert_eq!(faults.pick(0.35), Fault::Throttle);
        assert_eq!(faults.pick(0.45), Fault::None);
        assert_eq!(Faults::default().pick(0.0), Fault::None);
    }
}
