//! The in-memory index of seen alerts: 20 bytes an alert (a million ids in about 19 MiB), so
//! the dedup decision never waits on the disk. It holds what `decide` needs (update time in
//! seconds, fingerprint) and what a rewrite carries forward (first observed, day last observed);
//! the full records live in the sled log it is rebuilt from at start.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use super::record::SeenRecord;

/// The in-memory key of an alert id. The index is rebuilt from the ids on every start, so the
/// hash may change between releases. Two ids colliding in 64 bits (odds about 3e-8 for a
/// million ids) would share one entry: the later one could be taken for an update of the first.
pub fn key_of(id: &str) -> u64 {
    let mut hasher = std::hash::DefaultHasher::new();
    hasher.write(id.as_bytes());
    hasher.finish()
}

/// An alert id's key, hashed once when its alert is judged and carried to the commit: the
/// lookup, the batch still in flight and the index all use it, so the id is not hashed again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SeenKey(u64);

impl SeenKey {
    pub fn of(id: &str) -> SeenKey {
        SeenKey(key_of(id))
    }

    pub fn get(self) -> u64 {
        self.0
    }
}

const SECONDS_PER_DAY: i64 = 86_400;

/// What the index knows of one alert. Packed: 14 bytes instead of 16.
#[derive(Clone, Copy, Default)]
#[repr(C, packed(2))]
pub struct Seen {
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

impl Seen {
    pub fn new(record: &SeenRecord) -> Seen {
        Seen {
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

/// The array is cut into groups by the top bits of the key; a slot's group implies those bits,
/// so it stores only the low 48: 2 bytes (2 MiB per million ids) for a 256 KiB table of starts.
const GROUP_BITS: u32 = 16;
const GROUPS: usize = 1 << GROUP_BITS;
const LOW_BITS: u32 = 64 - GROUP_BITS;

fn group_of(key: u64) -> usize {
    (key >> LOW_BITS) as usize
}

fn low_of(key: u64) -> u64 {
    key & ((1 << LOW_BITS) - 1)
}

/// One alert in the sorted array: 20 bytes.
#[derive(Clone, Copy, Default)]
#[repr(C, packed(2))]
struct Slot {
    low: [u16; 3],
    seen: Seen,
}

impl Slot {
    fn new(key: u64, seen: Seen) -> Slot {
        let low = low_of(key);
        Slot {
            low: [(low >> 32) as u16, (low >> 16) as u16, low as u16],
            seen,
        }
    }

    fn low(self) -> u64 {
        let [a, b, c] = self.low;
        (u64::from(a) << 32) | (u64::from(b) << 16) | u64::from(c)
    }
}

/// A sorted array searched by bisection within its group, plus a small hash map of ids added
/// since the last merge: the array costs no per-entry overhead, the map keeps inserts cheap.
#[derive(Default)]
pub struct SeenIndex {
    sorted: Vec<Slot>,
    /// Group g's slots are `sorted[starts[g]..starts[g + 1]]`; empty while `sorted` is.
    starts: Vec<u32>,
    fresh: HashMap<u64, Seen, BuildHasherDefault<KeyIsHash>>,
}

/// The map's hasher: its keys are already SipHash values ([`key_of`]), spread evenly over 64
/// bits, so hashing them again only cost time (~1% of an alert's instructions on a heavy poll).
#[derive(Default)]
struct KeyIsHash(u64);

impl Hasher for KeyIsHash {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write_u64(&mut self, key: u64) {
        self.0 = key;
    }

    /// Only u64 keys are hashed here; anything else is folded in, not dropped.
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }
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

    pub fn get(&self, key: u64) -> Option<Seen> {
        if let Some(seen) = self.fresh.get(&key) {
            return Some(*seen);
        }
        self.position(key).map(|at| self.sorted[at].seen)
    }

    /// Where `key` sits in the sorted array (complete after [`SeenIndex::settle`]).
    pub fn position(&self, key: u64) -> Option<usize> {
        let group = group_of(key);
        let (from, to) = (*self.starts.get(group)?, *self.starts.get(group + 1)?);
        let low = low_of(key);
        self.sorted[from as usize..to as usize]
            .binary_search_by_key(&low, |slot| slot.low())
            .ok()
            .map(|at| from as usize + at)
    }

    pub fn upsert(&mut self, key: u64, seen: Seen) {
        if let Some(at) = self.position(key) {
            self.sorted[at].seen = seen;
            return;
        }
        self.fresh.insert(key, seen);
        if self.fresh.len() >= FRESH_MIN.max(self.sorted.len() / FRESH_SHARE) {
            self.settle();
        }
    }

    /// Merges the map into the array, from the back, in place, then recounts the groups.
    pub fn settle(&mut self) {
        if self.fresh.is_empty() {
            return;
        }
        // Taking the map frees its table once drained.
        let mut incoming: Vec<(u64, Seen)> = std::mem::take(&mut self.fresh).into_iter().collect();
        incoming.sort_unstable_by_key(|(key, _)| *key);
        let mut counts = vec![0u32; GROUPS];
        for window in self.starts.windows(2).enumerate() {
            counts[window.0] = window.1[1] - window.1[0];
        }
        for (key, _) in &incoming {
            counts[group_of(*key)] += 1;
        }
        let old = self.sorted.len();
        self.sorted.reserve_exact(incoming.len());
        self.sorted.resize(old + incoming.len(), Slot::default());
        let (mut from_old, mut from_new) = (old, incoming.len());
        let mut write = old + incoming.len();
        // The group of the old slot at from_old - 1; it only moves down as the merge does.
        let mut group = GROUPS;
        let full_key = |starts: &[u32], group: &mut usize, at: usize, low: u64| {
            while starts[*group] as usize > at {
                *group -= 1;
            }
            ((*group as u64) << LOW_BITS) | low
        };
        while from_new > 0 {
            write -= 1;
            let (key, seen) = incoming[from_new - 1];
            let old_key = (from_old > 0).then(|| {
                let slot = self.sorted[from_old - 1];
                full_key(&self.starts, &mut group, from_old - 1, slot.low())
            });
            if old_key.is_some_and(|old_key| old_key > key) {
                from_old -= 1;
                self.sorted[write] = self.sorted[from_old];
            } else {
                from_new -= 1;
                self.sorted[write] = Slot::new(key, seen);
            }
        }
        self.set_starts(&counts);
    }

    fn set_starts(&mut self, counts: &[u32]) {
        self.starts.clear();
        self.starts.reserve_exact(GROUPS + 1);
        let mut at = 0u32;
        self.starts.push(0);
        for count in counts {
            at += count;
            self.starts.push(at);
        }
    }

    /// Keeps the alerts `keep` accepts (given key and what is known); returns how many went.
    pub fn retain(&mut self, keep: impl Fn(u64, Seen) -> bool) -> usize {
        let before = self.len();
        let mut counts = vec![0u32; GROUPS];
        let mut write = 0;
        for (group, bounds) in self.starts.windows(2).enumerate() {
            for read in bounds[0] as usize..bounds[1] as usize {
                let slot = self.sorted[read];
                if keep(((group as u64) << LOW_BITS) | slot.low(), slot.seen) {
                    self.sorted[write] = slot;
                    write += 1;
                    counts[group] += 1;
                }
            }
        }
        self.sorted.truncate(write);
        self.sorted.shrink_to_fit();
        if self.sorted.is_empty() {
            self.starts = Vec::new();
        } else {
            self.set_starts(&counts);
        }
        self.fresh.retain(|key, seen| keep(*key, *seen));
        before - self.len()
    }

    pub fn count(&self, matching: impl Fn(Seen) -> bool) -> usize {
        self.sorted
            .iter()
            .map(|slot| slot.seen)
            .chain(self.fresh.values().copied())
            .filter(|seen| matching(*seen))
            .count()
    }

    /// Bytes held, for `state stats`.
    pub fn heap_bytes(&self) -> usize {
        self.sorted.capacity() * std::mem::size_of::<Slot>()
            + self.starts.capacity() * std::mem::size_of::<u32>()
            + self.fresh.capacity() * (std::mem::size_of::<(u64, Seen)>() + 1)
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
    fn slot_is_20_bytes_and_keeps_what_decide_needs() {
        assert_eq!(std::mem::size_of::<Slot>(), 20);
        let kept = Seen::new(&record(Some(1_790_000_123_456_789), 42, 1_790_000_500)).record();
        assert_eq!(kept.last_update, Some(1_790_000_123_000_000));
        assert_eq!(kept.fingerprint, 42);
        assert_eq!(kept.first_observed, 1_790_000_000);
        assert_eq!(kept.last_observed, 1_790_000_500 / 86_400 * 86_400);
        assert_eq!(Seen::new(&record(None, 1, 0)).record().last_update, None);
        // An update time at the epoch is still a time, not "none".
        assert_eq!(
            Seen::new(&record(Some(0), 1, 0)).record().last_update,
            Some(1_000_000)
        );
        let key = 0xfedc_ba98_7654_3210;
        let slot = Slot::new(key, Seen::default());
        assert_eq!((group_of(key) as u64) << LOW_BITS | slot.low(), key);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Upsert(u64, u32),
        Expire(u16),
        Settle,
    }

    /// Keys from a few groups (the top 16 bits) and a few low parts, so that groups hold
    /// several keys, some are empty, and the first and last groups are used.
    fn key() -> impl Strategy<Value = u64> {
        (
            prop_oneof![Just(0u64), Just(1), Just(7), Just(0x8000), Just(0xffff)],
            prop_oneof![0u64..400, Just((1 << 48) - 1)],
        )
            .prop_map(|(group, low)| (group << 48) | low)
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            8 => (key(), any::<u32>()).prop_map(|(k, f)| Op::Upsert(k, f)),
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
                        index.upsert(key, Seen::new(&record(None, fingerprint, i64::from(day) * 86_400)));
                        model.insert(key, (fingerprint, day));
                    }
                    Op::Expire(cutoff) => {
                        let removed = index.retain(|_, seen| seen.last_day() >= i64::from(cutoff));
                        let before = model.len();
                        model.retain(|_, (_, day)| *day >= cutoff);
                        prop_assert_eq!(removed, before - model.len());
                    }
                    Op::Settle => index.settle(),
                }
                prop_assert_eq!(index.len(), model.len());
            }
            let answers = |index: &SeenIndex| -> Vec<(u64, u32, u16)> {
                model
                    .keys()
                    .filter_map(|key| {
                        index.get(*key).map(|seen| (*key, seen.record().fingerprint, seen.last_day() as u16))
                    })
                    .collect()
            };
            let expected: Vec<(u64, u32, u16)> = model.iter().map(|(k, (f, d))| (*k, *f, *d)).collect();
            prop_assert_eq!(answers(&index), expected.clone());
            // Keys never upserted are not found, in any group.
            prop_assert!(index.get(401).is_none() && index.get((7 << 48) | 401).is_none());
            index.settle();
            prop_assert_eq!(answers(&index), expected);
            // Every key is at a distinct position once settled; retain sees the full keys.
            let mut positions: Vec<usize> = model.keys().filter_map(|key| index.position(*key)).collect();
            positions.sort_unstable();
            positions.dedup();
            prop_assert_eq!(positions.len(), model.len());
            let mut kept = Vec::new();
            let keys = std::cell::RefCell::new(&mut kept);
            index.retain(|key, _| {
                keys.borrow_mut().push(key);
                true
            });
            prop_assert_eq!(kept, model.keys().copied().collect::<Vec<_>>());
        }
    }
}
