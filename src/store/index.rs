//! The in-memory index of seen alerts: 22 bytes an alert (a million ids in about 21 MiB), so
//! the dedup decision never waits on the disk. It holds what `decide` needs (update time in
//! seconds, fingerprint) and what a rewrite carries forward (first observed, day last observed);
//! the full records live in the sled log it is rebuilt from at start.

use std::collections::HashMap;
use std::hash::Hasher;

use super::record::SeenRecord;

/// The in-memory key of an alert id. The index is rebuilt from the ids on every start, so the
/// hash may change between releases. Two ids colliding in 64 bits (odds about 3e-8 for a
/// million ids) would share one entry: the later one could be taken for an update of the first.
pub fn key_of(id: &str) -> u64 {
    let mut hasher = std::hash::DefaultHasher::new();
    hasher.write(id.as_bytes());
    hasher.finish()
}

const SECONDS_PER_DAY: i64 = 86_400;

/// One alert in the index. Packed: 22 bytes instead of 24 is 2 MiB less per million ids.
#[derive(Clone, Copy, Default)]
#[repr(C, packed(2))]
pub struct Slot {
    key: u64,
    /// `lastUpdateTime` in whole seconds since the epoch; 0 when the alert had none.
    last_update: u32,
    fingerprint: u32,
    first_observed: u32,
    /// Days since the epoch: retention works in days.
    last_day: u16,
}

fn clamp_u32(value: i64) -> u32 {
    value.clamp(0, i64::from(u32::MAX)) as u32
}

impl Slot {
    pub fn new(key: u64, record: &SeenRecord) -> Slot {
        Slot {
            key,
            last_update: record
                .last_update
                .map_or(0, |micros| clamp_u32(micros.div_euclid(1_000_000)).max(1)),
            fingerprint: record.fingerprint,
            first_observed: clamp_u32(record.first_observed),
            last_day: record
                .last_observed
                .div_euclid(SECONDS_PER_DAY)
                .clamp(0, i64::from(u16::MAX)) as u16,
        }
    }

    pub fn last_day(self) -> i64 {
        i64::from(self.last_day)
    }

    pub fn key(self) -> u64 {
        self.key
    }

    /// The record as far as memory knows it: update time in whole seconds, last observed at the
    /// start of its day.
    pub fn record(self) -> SeenRecord {
        let last_update = self.last_update;
        SeenRecord {
            last_update: (last_update != 0).then(|| i64::from(last_update) * 1_000_000),
            fingerprint: self.fingerprint,
            first_observed: i64::from(self.first_observed),
            last_observed: i64::from(self.last_day) * SECONDS_PER_DAY,
        }
    }
}

/// A sorted array searched by bisection, plus a small hash map of ids added since the last
/// merge: the array costs no per-entry overhead, the map keeps inserts cheap.
#[derive(Default)]
pub struct SeenIndex {
    sorted: Vec<Slot>,
    fresh: HashMap<u64, Slot>,
}

/// The map is merged into the array once it holds this many entries or a thirty-second of the
/// array, whichever is more: a bounded number of linear merges per doubling, and a map small
/// next to the array (at a million ids, 2 MiB instead of the 8 an eighth took while the index
/// was rebuilt, the moment the process holds the most).
const FRESH_MIN: usize = if cfg!(test) { 64 } else { 16_384 };
const FRESH_SHARE: usize = 32;

impl SeenIndex {
    pub fn len(&self) -> usize {
        self.sorted.len() + self.fresh.len()
    }

    pub fn get(&self, key: u64) -> Option<Slot> {
        if let Some(slot) = self.fresh.get(&key) {
            return Some(*slot);
        }
        self.position(key).map(|at| self.sorted[at])
    }

    /// Where `key` sits in the sorted array (complete after [`SeenIndex::settle`]).
    pub fn position(&self, key: u64) -> Option<usize> {
        self.sorted.binary_search_by_key(&key, |slot| slot.key).ok()
    }

    pub fn upsert(&mut self, slot: Slot) {
        if let Some(at) = self.position(slot.key) {
            self.sorted[at] = slot;
            return;
        }
        self.fresh.insert(slot.key, slot);
        if self.fresh.len() >= FRESH_MIN.max(self.sorted.len() / FRESH_SHARE) {
            self.settle();
        }
    }

    /// Merges the map into the array, from the back, in place.
    pub fn settle(&mut self) {
        if self.fresh.is_empty() {
            return;
        }
        // Taking the map frees its table once drained.
        let mut incoming: Vec<Slot> = std::mem::take(&mut self.fresh).into_values().collect();
        incoming.sort_unstable_by_key(|slot| slot.key);
        let old = self.sorted.len();
        self.sorted.reserve_exact(incoming.len());
        self.sorted.resize(old + incoming.len(), Slot::default());
        let (mut from_old, mut from_new) = (old, incoming.len());
        let mut write = old + incoming.len();
        while from_new > 0 {
            write -= 1;
            if from_old > 0 && self.sorted[from_old - 1].key > incoming[from_new - 1].key {
                from_old -= 1;
                self.sorted[write] = self.sorted[from_old];
            } else {
                from_new -= 1;
                self.sorted[write] = incoming[from_new];
            }
        }
    }

    /// Keeps the slots `keep` accepts; returns how many were removed.
    pub fn retain(&mut self, keep: impl Fn(Slot) -> bool) -> usize {
        let before = self.len();
        self.sorted.retain(|slot| keep(*slot));
        self.sorted.shrink_to_fit();
        self.fresh.retain(|_, slot| keep(*slot));
        before - self.len()
    }

    pub fn count(&self, matching: impl Fn(Slot) -> bool) -> usize {
        self.sorted
            .iter()
            .chain(self.fresh.values())
            .filter(|slot| matching(**slot))
            .count()
    }

    /// Bytes held, for `state stats`.
    pub fn heap_bytes(&self) -> usize {
        self.sorted.capacity() * std::mem::size_of::<Slot>()
            + self.fresh.capacity() * (std::mem::size_of::<(u64, Slot)>() + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn record(last_update: Option<i64>, fingerprint: u32, last_observed: i64) -> SeenRecord {
        SeenRecord {
            last_update,
            fingerprint,
            first_observed: 1_790_000_000,
            last_observed,
        }
    }

    #[test]
    fn slot_is_22_bytes_and_keeps_what_decide_needs() {
        assert_eq!(std::mem::size_of::<Slot>(), 22);
        let kept = Slot::new(7, &record(Some(1_790_000_123_456_789), 42, 1_790_000_500)).record();
        assert_eq!(kept.last_update, Some(1_790_000_123_000_000));
        assert_eq!(kept.fingerprint, 42);
        assert_eq!(kept.first_observed, 1_790_000_000);
        assert_eq!(kept.last_observed, 1_790_000_500 / 86_400 * 86_400);
        assert_eq!(Slot::new(7, &record(None, 1, 0)).record().last_update, None);
        // An update time at the epoch is still a time, not "none".
        assert_eq!(
            Slot::new(7, &record(Some(0), 1, 0)).record().last_update,
            Some(1_000_000)
        );
    }

    #[derive(Debug, Clone)]
    enum Op {
        Upsert(u64, u32),
        Expire(u16),
        Settle,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            8 => (0u64..2_000, any::<u32>()).prop_map(|(k, f)| Op::Upsert(k, f)),
            1 => (0u16..50).prop_map(Op::Expire),
            1 => Just(Op::Settle),
        ]
    }

    proptest! {
        /// The index answers like a plain map whatever the order of inserts, merges and removals.
        #[test]
        fn behaves_like_a_map(ops in proptest::collection::vec(op(), 1..3_000)) {
            let mut index = SeenIndex::default();
            let mut model: BTreeMap<u64, (u32, u16)> = BTreeMap::new();
            for op in ops {
                match op {
                    Op::Upsert(key, fingerprint) => {
                        let day = (fingerprint % 50) as u16;
                        index.upsert(Slot::new(key, &record(None, fingerprint, i64::from(day) * 86_400)));
                        model.insert(key, (fingerprint, day));
                    }
                    Op::Expire(cutoff) => {
                        let removed = index.retain(|slot| slot.last_day() >= i64::from(cutoff));
                        let before = model.len();
                        model.retain(|_, (_, day)| *day >= cutoff);
                        prop_assert_eq!(removed, before - model.len());
                    }
                    Op::Settle => index.settle(),
                }
                prop_assert_eq!(index.len(), model.len());
            }
            for key in 0..2_000u64 {
                let found = index.get(key).map(|slot| {
                    let record = slot.record();
                    (record.fingerprint, slot.last_day() as u16)
                });
                prop_assert_eq!(found, model.get(&key).copied());
            }
            index.settle();
            let keys: Vec<u64> = index.sorted.iter().map(|slot| slot.key).collect();
            prop_assert_eq!(keys, model.keys().copied().collect::<Vec<_>>());
        }
    }
}
