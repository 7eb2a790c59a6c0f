//! The seen alerts: an append-only log of segments in the sled tree `log`, and the in-memory
//! index rebuilt from it at start. Compaction rewrites the live records into new segments and
//! drops the old ones; it is also how retention forgets alerts not observed for too long.

use std::sync::{Mutex, MutexGuard, PoisonError};

use super::index::{key_of, Seen, SeenIndex, SeenKey};
use super::record::SeenRecord;
use super::segment::{self, SEGMENT_RECORDS};

/// Segments written per sled batch while compacting: bounded memory however large the store.
const SEGMENTS_PER_BATCH: usize = 64;

/// What a failed log operation needs to become a [`super::StoreError`].
#[derive(Debug)]
pub enum LogError {
    Sled(sled::Error),
    Corrupt { segment: String, detail: String },
}

impl From<sled::Error> for LogError {
    fn from(err: sled::Error) -> LogError {
        LogError::Sled(err)
    }
}

/// The index and log position read from the log: [`SeenLog::read_more`] builds it,
/// [`SeenLog::new`] puts it to work.
#[derive(Default)]
pub struct State {
    index: SeenIndex,
    /// Sequence number of the next segment.
    next_seq: u64,
    /// Records in the log, live or superseded: compaction is due when too many are dead.
    records: u64,
    encoder: segment::Encoder,
}

pub struct SeenLog {
    tree: sled::Tree,
    state: Mutex<State>,
}

/// The outcome of one compaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compaction {
    /// Alerts forgotten because they were not observed since the cutoff.
    pub expired: usize,
    /// Live records rewritten.
    pub kept: u64,
    /// Superseded records dropped.
    pub dropped: u64,
}

fn seq_of(key: &[u8]) -> Result<u64, LogError> {
    <[u8; 8]>::try_from(key)
        .map(u64::from_be_bytes)
        .map_err(|_| LogError::Corrupt {
            segment: format!("{key:02x?}"),
            detail: "key is not a sequence number".into(),
        })
}

fn decode_all(seq: u64, bytes: &[u8]) -> Result<Vec<(String, SeenRecord)>, LogError> {
    let mut records = Vec::with_capacity(SEGMENT_RECORDS);
    segment::decode(bytes, |id, record| records.push((id.to_string(), record))).map_err(|err| {
        LogError::Corrupt {
            segment: seq.to_string(),
            detail: err.to_string(),
        }
    })?;
    Ok(records)
}

impl SeenLog {
    pub fn new(tree: sled::Tree, state: State) -> SeenLog {
        SeenLog {
            tree,
            state: Mutex::new(state),
        }
    }

    /// Reads up to `segments` more segments, oldest first (the newest record of an id wins),
    /// into `state`; false once the log is read to its end (the index is then settled).
    pub fn read_more(
        tree: &sled::Tree,
        state: &mut State,
        segments: usize,
    ) -> Result<bool, LogError> {
        let mut read = 0;
        for item in tree.range(state.next_seq.to_be_bytes()..).take(segments) {
            let (key, value) = item?;
            let seq = seq_of(&key)?;
            segment::decode(&value, |id, record| {
                state.index.upsert(key_of(id), Seen::new(&record));
                state.records += 1;
            })
            .map_err(|err| LogError::Corrupt {
                segment: seq.to_string(),
                detail: err.to_string(),
            })?;
            state.next_seq = seq + 1;
            read += 1;
        }
        if read < segments {
            state.index.settle();
            return Ok(false);
        }
        Ok(true)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock; if something did, the index is still whole.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn previous(&self, key: SeenKey) -> Option<SeenRecord> {
        self.lock().index.get(key.get()).map(Seen::record)
    }

    /// Appends `records` as new segments (not flushed: the store flushes the whole commit).
    pub fn append(&self, records: &[(SeenKey, String, SeenRecord)]) -> Result<(), LogError> {
        if records.is_empty() {
            return Ok(());
        }
        let mut state = self.lock();
        // One insert per segment rather than a sled batch, which would seal and write the log
        // buffer twice (see `Store::commit`). A segment written before a failure stays: its
        // alerts were acknowledged, and the next sequence number is read back from the log.
        for chunk in records.chunks(SEGMENT_RECORDS) {
            let encoded = state
                .encoder
                .encode(chunk.iter().map(|(_, id, record)| (id.as_str(), record)));
            self.tree.insert(state.next_seq.to_be_bytes(), encoded)?;
            state.next_seq += 1;
            state.records += chunk.len() as u64;
        }
        for (key, _, record) in records {
            state.index.upsert(key.get(), Seen::new(record));
        }
        Ok(())
    }

    /// (live alerts, records in the log, bytes the index holds).
    pub fn sizes(&self) -> (usize, u64, usize) {
        let state = self.lock();
        (state.index.len(), state.records, state.index.heap_bytes())
    }

    /// Whether compaction would do work: alerts last observed before `cutoff_day`, or more dead
    /// records than live ones (and at least `min_dead`).
    pub fn compaction_due(&self, cutoff_day: i64, min_dead: u64) -> bool {
        let state = self.lock();
        let live = state.index.len() as u64;
        let dead = state.records.saturating_sub(live);
        (dead > live && dead >= min_dead)
            || state.index.count(|seen| seen.last_day() < cutoff_day) > 0
    }

    /// Rewrites the newest record of every id still observed on or after `cutoff_day` into new
    /// segments, then drops every older segment. A crash midway leaves old and new segments side
    /// by side, which reads back the same.
    pub fn compact(&self, cutoff_day: i64) -> Result<Compaction, LogError> {
        self.compact_forgetting(cutoff_day, &std::collections::HashSet::new())
    }

    /// [`SeenLog::compact`] that also leaves out the ids whose keys are in `forget`: an alert
    /// forgotten on purpose is shipped again the next time a response holds it.
    pub fn compact_forgetting(
        &self,
        cutoff_day: i64,
        forget: &std::collections::HashSet<u64>,
    ) -> Result<Compaction, LogError> {
        let mut state = self.lock();
        state.index.settle();
        let first_new = state.next_seq;
        let mut seq = first_new;
        let mut out: Vec<(String, SeenRecord)> = Vec::with_capacity(SEGMENT_RECORDS);
        let mut batch = sled::Batch::default();
        let mut batched = 0;
        let mut kept = 0u64;
        let mut write_segment = |out: &mut Vec<(String, SeenRecord)>, batch: &mut sled::Batch| {
            batch.insert(
                &seq.to_be_bytes(),
                segment::encode(out.iter().map(|(i, r)| (i.as_str(), r))),
            );
            out.clear();
            seq += 1;
        };
        let dropped = self.each_current(&state.index, first_new, |id, record| {
            if record.last_observed.div_euclid(86_400) < cutoff_day || forget.contains(&key_of(&id))
            {
                return Ok(());
            }
            out.push((id, record));
            kept += 1;
            if out.len() == SEGMENT_RECORDS {
                write_segment(&mut out, &mut batch);
                batched += 1;
                if batched == SEGMENTS_PER_BATCH {
                    self.tree.apply_batch(std::mem::take(&mut batch))?;
                    batched = 0;
                }
            }
            Ok(())
        })?;
        if !out.is_empty() {
            write_segment(&mut out, &mut batch);
        }
        self.tree.apply_batch(batch)?;
        // Every live record is now in a new segment: the old ones go.
        let mut doomed = sled::Batch::default();
        for key in self.tree.range(..first_new.to_be_bytes()).keys() {
            doomed.remove(key?);
        }
        self.tree.apply_batch(doomed)?;
        let expired = state
            .index
            .retain(|key, seen| seen.last_day() >= cutoff_day && !forget.contains(&key));
        state.next_seq = seq;
        state.records = kept;
        Ok(Compaction {
            expired,
            kept,
            dropped,
        })
    }

    /// Calls `each` with the current record of every id in the segments before `before_seq`:
    /// walking the log newest first, the first record met for an id is its current one (the
    /// index is settled, so a bit per position marks it met). Returns how many records were
    /// superseded.
    fn each_current(
        &self,
        index: &SeenIndex,
        before_seq: u64,
        mut each: impl FnMut(String, SeenRecord) -> Result<(), LogError>,
    ) -> Result<u64, LogError> {
        let mut met = vec![0u64; index.len().div_ceil(64)];
        let mut superseded = 0;
        for item in self.tree.range(..before_seq.to_be_bytes()).rev() {
            let (key, value) = item?;
            for (id, record) in decode_all(seq_of(&key)?, &value)?.into_iter().rev() {
                let position = index.position(key_of(&id));
                let Some(at) = position.filter(|at| met[at / 64] & (1 << (at % 64)) == 0) else {
                    superseded += 1;
                    continue;
                };
                met[at / 64] |= 1 << (at % 64);
                each(id, record)?;
            }
        }
        Ok(superseded)
    }

    /// Every live alert id, sorted (for tests and `state` inspection).
    pub fn ids(&self) -> Result<Vec<String>, LogError> {
        Ok(self.records()?.into_iter().map(|(id, _)| id).collect())
    }

    /// Every live alert with its current record, sorted by id (`state list`, `state export`).
    pub fn records(&self) -> Result<Vec<(String, SeenRecord)>, LogError> {
        self.records_where(|_| true)
    }

    /// The current records of `ids` as the log has them (exact times, which the index rounds),
    /// sorted by id; ids the store does not know are left out. Reads the whole log.
    pub fn records_of(&self, ids: &[String]) -> Result<Vec<(String, SeenRecord)>, LogError> {
        let wanted: std::collections::HashSet<&str> = ids.iter().map(String::as_str).collect();
        self.records_where(|id| wanted.contains(id))
    }

    fn records_where(
        &self,
        wanted: impl Fn(&str) -> bool,
    ) -> Result<Vec<(String, SeenRecord)>, LogError> {
        let mut state = self.lock();
        state.index.settle();
        let mut records = Vec::new();
        self.each_current(&state.index, state.next_seq, |id, record| {
            if wanted(&id) {
                records.push((id, record));
            }
            Ok(())
        })?;
        records.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        Ok(records)
    }
}
