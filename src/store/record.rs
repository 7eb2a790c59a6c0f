//! What the store remembers of each shipped alert, in a fixed 32-byte form: last update time,
//! a fingerprint of the fields analysts change, and when it was first and last observed.

use crate::defender::{time, Alert};

/// The part of an alert that decides whether it changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlertDigest {
    /// `lastUpdateTime` in microseconds since the epoch, when present and readable.
    pub last_update: Option<i64>,
    /// FNV-1a over status, classification, determination and assignedTo.
    pub fingerprint: u64,
}

impl AlertDigest {
    pub fn of(alert: &Alert) -> AlertDigest {
        AlertDigest {
            last_update: alert
                .last_update_time
                .as_deref()
                .and_then(time::parse)
                .map(time::to_micros),
            fingerprint: fingerprint(&[
                alert.status.as_deref(),
                alert.classification.as_deref(),
                alert.determination.as_deref(),
                alert.assigned_to.as_deref(),
            ]),
        }
    }
}

/// A stable hash (std's hasher may change between Rust releases; the store outlives them).
pub fn fingerprint(fields: &[Option<&str>]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = OFFSET;
    for field in fields {
        // A separator byte that cannot occur in UTF-8 keeps ("ab", "c") apart from ("a", "bc"),
        // and a marker keeps null apart from "".
        let bytes = field.map(str::as_bytes);
        for &byte in bytes
            .unwrap_or(&[])
            .iter()
            .chain(&[0xff, u8::from(bytes.is_some())])
        {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(PRIME);
        }
    }
    hash
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeenRecord {
    pub last_update: Option<i64>,
    pub fingerprint: u64,
    /// Seconds since the epoch when the alert was first and last seen in a response.
    pub first_observed: i64,
    pub last_observed: i64,
}

const ENCODED_LEN: usize = 32;

impl SeenRecord {
    pub fn encode(&self) -> [u8; ENCODED_LEN] {
        let mut out = [0u8; ENCODED_LEN];
        out[0..8].copy_from_slice(&self.last_update.unwrap_or(i64::MIN).to_be_bytes());
        out[8..16].copy_from_slice(&self.fingerprint.to_be_bytes());
        out[16..24].copy_from_slice(&self.first_observed.to_be_bytes());
        out[24..32].copy_from_slice(&self.last_observed.to_be_bytes());
        out
    }

    pub fn decode(bytes: &[u8]) -> Option<SeenRecord> {
        let bytes: &[u8; ENCODED_LEN] = bytes.try_into().ok()?;
        let field = |at: usize| {
            let mut word = [0u8; 8];
            word.copy_from_slice(&bytes[at..at + 8]);
            word
        };
        let last_update = i64::from_be_bytes(field(0));
        Some(SeenRecord {
            last_update: (last_update != i64::MIN).then_some(last_update),
            fingerprint: u64::from_be_bytes(field(8)),
            first_observed: i64::from_be_bytes(field(16)),
            last_observed: i64::from_be_bytes(field(24)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let record = SeenRecord {
            last_update: Some(1_790_000_000_123_456),
            fingerprint: 42,
            first_observed: 7,
            last_observed: 9,
        };
        assert_eq!(SeenRecord::decode(&record.encode()), Some(record));
        let none = SeenRecord {
            last_update: None,
            ..record
        };
        assert_eq!(SeenRecord::decode(&none.encode()), Some(none));
        assert_eq!(SeenRecord::decode(b"short"), None);
    }

    #[test]
    fn fingerprint_separates_fields_and_nulls() {
        assert_ne!(
            fingerprint(&[Some("ab"), Some("c")]),
            fingerprint(&[Some("a"), Some("bc")])
        );
        assert_ne!(fingerprint(&[None]), fingerprint(&[Some("")]));
        assert_eq!(
            fingerprint(&[Some("New"), None]),
            fingerprint(&[Some("New"), None])
        );
    }
}
