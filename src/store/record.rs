//! What the store remembers of each shipped alert: last update time, a fingerprint of the fields
//! analysts change, and when it was first and last observed.

use crate::defender::{time, Alert};

/// The part of an alert that decides whether it changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlertDigest {
    /// `lastUpdateTime` in microseconds since the epoch, when present and readable.
    pub last_update: Option<i64>,
    /// FNV-1a over status, classification, determination and assignedTo, folded to 32 bits.
    pub fingerprint: u32,
}

impl AlertDigest {
    pub fn of(alert: &Alert) -> AlertDigest {
        AlertDigest {
            last_update: alert.last_update_time.as_deref().and_then(time::micros),
            fingerprint: fingerprint(&[
                alert.status.as_deref(),
                alert.classification.as_deref(),
                alert.determination.as_deref(),
                alert.assigned_to.as_deref(),
            ]),
        }
    }
}

/// A stable hash (std's hasher may change between Rust releases; the store outlives them),
/// folded to 32 bits: it only breaks ties between reads with the same `lastUpdateTime`.
pub fn fingerprint(fields: &[Option<&str>]) -> u32 {
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
    fold(hash)
}

fn fold(hash: u64) -> u32 {
    (hash ^ (hash >> 32)) as u32
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeenRecord {
    /// `lastUpdateTime` in microseconds since the epoch.
    pub last_update: Option<i64>,
    pub fingerprint: u32,
    /// Seconds since the epoch when the alert was first and last seen in a response.
    pub first_observed: i64,
    pub last_observed: i64,
}

impl SeenRecord {
    /// Reads the fixed 32-byte record of schema 1 (one sled key per alert), for the migration.
    pub fn decode_v1(bytes: &[u8]) -> Option<SeenRecord> {
        let bytes: &[u8; 32] = bytes.try_into().ok()?;
        let word = |at: usize| {
            let mut word = [0u8; 8];
            word.copy_from_slice(&bytes[at..at + 8]);
            i64::from_be_bytes(word)
        };
        let last_update = word(0);
        Some(SeenRecord {
            last_update: (last_update != i64::MIN).then_some(last_update),
            fingerprint: fold(word(8) as u64),
            first_observed: word(16),
            last_observed: word(24),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_schema_1_records() {
        let mut bytes = Vec::new();
        for word in [1_790_000_000_123_456i64, 42, 7, 9] {
            bytes.extend_from_slice(&word.to_be_bytes());
        }
        let expected = SeenRecord {
            last_update: Some(1_790_000_000_123_456),
            fingerprint: 42,
            first_observed: 7,
            last_observed: 9,
        };
        assert_eq!(SeenRecord::decode_v1(&bytes), Some(expected));
        bytes[..8].copy_from_slice(&i64::MIN.to_be_bytes());
        assert_eq!(SeenRecord::decode_v1(&bytes).unwrap().last_update, None);
        assert_eq!(SeenRecord::decode_v1(b"short"), None);
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
