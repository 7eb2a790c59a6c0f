//! The sled store (0.34): the seen alerts (an append-only `log` of segments, indexed in memory,
//! see `seen.rs`), `entities` (per watchlist entry: last poll, outcome, alert count) and `meta`
//! (schema version, round-robin cursor, recent API calls, last retention pass). Alerts are
//! committed only after every sink acknowledged them and flushed at most `flush_interval` later
//! (`group.rs`), so a `kill -9` costs duplicates, never losses.

mod db;
mod decide;
mod error;
mod group;
mod index;
mod record;
mod seen;
mod segment;

pub use decide::{decide, Decision};
pub use error::{OpenCause, StoreError};
pub use index::SeenKey;
pub use record::{fingerprint, AlertDigest, SeenRecord};
pub use seen::Compaction;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::config::StoreConfig;
use db::{create_private_dir, open_db, reopen_db, Trees};
use error::log_error;
use group::GroupCommit;
use seen::SeenLog;

/// 1: one sled key per alert (`seen` tree). 2: segments in the `log` tree, indexed in memory.
pub const SCHEMA_VERSION: u32 = 2;
const SCHEMA_KEY: &[u8] = b"schema_version";
const CURSOR_KEY: &[u8] = b"cursor";
/// The feed's cursor: the latest `lastUpdateTime` (µs) of a poll every sink acknowledged.
const FEED_CURSOR_KEY: &[u8] = b"feed_cursor";
const LAST_PRUNE_KEY: &[u8] = b"last_prune";
const RECENT_CALLS_KEY: &[u8] = b"recent_calls";
const V1_SEEN_TREE: &str = "seen";

/// Records moved per commit when migrating a schema-1 store.
const MIGRATION_CHUNK: usize = 4_096;

/// Log segments read on one sled handle while the index is rebuilt (~2 MiB of pages).
const SEGMENTS_PER_HANDLE: usize = if cfg!(test) { 2 } else { 512 };

/// Compaction for space alone waits until at least this many records are superseded.
const COMPACT_MIN_DEAD: u64 = 50_000;

/// What the store knows of one watchlist entry's last poll.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntityStatus {
    pub last_poll: String,
    pub outcome: String,
    pub alerts: u32,
    /// The alert ids its last successful poll returned (`state list --entity`).
    #[serde(default)]
    pub alert_ids: Vec<String>,
    /// When its last successful poll was answered (RFC 3339): every alert of the entity up to
    /// then has been read. Kept across failed polls; absent in stores older than it.
    #[serde(default)]
    pub last_ok: Option<String>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoreStats {
    pub path: String,
    pub schema_version: u32,
    pub seen_alerts: usize,
    /// Records in the log, including superseded versions not yet compacted away.
    pub log_records: u64,
    pub index_bytes: usize,
    pub entities: usize,
    pub cursor: u64,
    /// The feed's cursor (RFC 3339), when a feed poll has completed.
    pub feed_cursor: Option<String>,
    /// How far the feed's cursor is behind now, in seconds.
    pub feed_cursor_age_secs: Option<i64>,
    pub size_on_disk: u64,
    /// Null, never absent: "never pruned" is an answer the state tools print.
    #[serialize_always]
    pub last_prune: Option<i64>,
}

pub struct Store {
    path: PathBuf,
    db: sled::Db,
    seen: SeenLog,
    entities: sled::Tree,
    meta: sled::Tree,
    /// Commits written and not flushed yet, and the cursor that waits for their flush.
    group: Mutex<GroupCommit>,
}

impl Store {
    pub fn open(config: &StoreConfig) -> Result<Store, StoreError> {
        let path = config.path.clone();
        let shown = path.display().to_string();
        let open_error = |cause: OpenCause| StoreError::Open {
            path: shown.clone(),
            cause,
        };
        create_private_dir(&path).map_err(|err| open_error(err.into()))?;
        let (mut db, mut trees) = open_db(config).map_err(open_error)?;
        let found = trees
            .meta
            .get(SCHEMA_KEY)
            .map_err(|err| open_error(err.into()))?
            .map(|found| String::from_utf8_lossy(&found).into_owned());
        let migrate = match found.as_deref() {
            None => false,
            Some("1") => true,
            Some(version) if version == SCHEMA_VERSION.to_string() => false,
            Some(other) => {
                return Err(StoreError::Schema {
                    path: shown,
                    found: other.to_string(),
                    expected: SCHEMA_VERSION,
                })
            }
        };
        // sled evicts only after 64 accesses to one of its 256 cache shards, so one pass over
        // the log keeps every page it read whatever cache_capacity says (~15 MiB at a million
        // ids), and it has no call to let them go. The index is therefore read a slice at a
        // time, each on a fresh handle (an open takes a few ms), and the service gets a fresh
        // one too.
        let mut index = seen::State::default();
        loop {
            let more = SeenLog::read_more(&trees.log, &mut index, SEGMENTS_PER_HANDLE)
                .map_err(|err| log_error(&path, err))?;
            drop((db, trees));
            crate::memory::release_free_memory();
            (db, trees) = reopen_db(config).map_err(open_error)?;
            if !more {
                break;
            }
        }
        let Trees {
            meta,
            entities,
            log,
        } = trees;
        let seen = SeenLog::new(log, index);
        let store = Store {
            path,
            db,
            seen,
            entities,
            meta,
            group: Mutex::new(GroupCommit::new(config.flush_interval)),
        };
        if migrate {
            store.migrate_from_v1()?;
        }
        if found.is_none() || migrate {
            store
                .meta
                .insert(SCHEMA_KEY, SCHEMA_VERSION.to_string().as_bytes())
                .map_err(|e| store.io(e))?;
            store.flush()?;
        }
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn io(&self, err: sled::Error) -> StoreError {
        StoreError::Io {
            path: self.path.display().to_string(),
            source: err,
        }
    }

    /// Moves schema 1's one-key-per-alert tree into the log, a chunk at a time, then drops it.
    fn migrate_from_v1(&self) -> Result<(), StoreError> {
        let old = self.db.open_tree(V1_SEEN_TREE).map_err(|e| self.io(e))?;
        let mut chunk = Vec::with_capacity(MIGRATION_CHUNK);
        for item in old.iter() {
            let (key, value) = item.map_err(|e| self.io(e))?;
            let id = String::from_utf8_lossy(&key).into_owned();
            let record = SeenRecord::decode_v1(&value).ok_or_else(|| StoreError::Corrupt {
                path: self.path.display().to_string(),
                segment: format!("schema 1 record {id}"),
                detail: format!("{} bytes, expected 32", value.len()),
            })?;
            chunk.push((SeenKey::of(&id), id, record));
            if chunk.len() >= MIGRATION_CHUNK {
                self.append(&chunk)?;
                chunk.clear();
            }
        }
        self.append(&chunk)?;
        self.flush()?;
        self.db.drop_tree(V1_SEEN_TREE).map_err(|e| self.io(e))?;
        tracing::info!(
            alerts = self.seen.sizes().0,
            "store migrated from schema 1 to schema {SCHEMA_VERSION}"
        );
        Ok(())
    }

    fn append(&self, records: &[(SeenKey, String, SeenRecord)]) -> Result<(), StoreError> {
        self.seen
            .append(records)
            .map_err(|err| log_error(&self.path, err))
    }

    /// What the store remembers of `alert_id` (update time in whole seconds, last observed to
    /// the day: see `index.rs`).
    pub fn previous(&self, alert_id: &str) -> Result<Option<SeenRecord>, StoreError> {
        self.previous_of(SeenKey::of(alert_id))
    }

    /// [`Store::previous`] of an id already hashed.
    pub fn previous_of(&self, key: SeenKey) -> Result<Option<SeenRecord>, StoreError> {
        Ok(self.seen.previous(key))
    }

    /// Writes a batch of seen records and entity statuses, and moves the cursor once they are
    /// durable: the commit is flushed when the last flush is `flush_interval` old, else by a
    /// later commit, [`Store::flush_behind`] (a sweep's end), shutdown or sled's own flush
    /// within a second (`group.rs`). Plain inserts: a sled batch seals and writes the log
    /// buffer twice, waking all seven of sled's I/O threads each time, and no all-or-nothing is
    /// needed, as every record is of an acknowledged alert (a crash halfway costs duplicates,
    /// never a loss). The cursor must not get ahead, so it goes in after the flush and reaches
    /// the disk with the next one (a commit, sled's own within a second, the close); a crash
    /// before only polls again.
    pub fn commit(
        &self,
        seen: &[(String, SeenRecord)],
        entities: &[(String, EntityStatus)],
        cursor: Option<u64>,
    ) -> Result<(), StoreError> {
        let keyed: Vec<_> = seen
            .iter()
            .map(|(id, record)| (SeenKey::of(id), id.clone(), *record))
            .collect();
        self.commit_keyed(&keyed, entities, cursor)
    }

    /// [`Store::commit`] of records whose ids were hashed when they were judged.
    pub fn commit_keyed(
        &self,
        seen: &[(SeenKey, String, SeenRecord)],
        entities: &[(String, EntityStatus)],
        cursor: Option<u64>,
    ) -> Result<(), StoreError> {
        self.append(seen)?;
        for (key, status) in entities {
            let encoded = serde_json::to_vec(status)
                .map_err(|source| self.status_error(key, "written", source))?;
            self.entities
                .insert(key.as_bytes(), encoded)
                .map_err(|e| self.io(e))?;
        }
        let due = self.group().committed(Instant::now(), cursor);
        if due {
            self.flush()?;
        }
        Ok(())
    }

    /// Flushes what was committed since the last flush, if anything was (a sweep's end).
    pub fn flush_behind(&self) -> Result<(), StoreError> {
        let behind = self.group().behind();
        if behind {
            self.flush()?;
        }
        Ok(())
    }

    /// Makes everything written durable, then writes the cursor that waited for it.
    pub fn flush(&self) -> Result<(), StoreError> {
        // Held across the flush: a cursor noted during it would be written before its records
        // were flushed.
        let mut group = self.group();
        self.db.flush().map_err(|e| self.io(e))?;
        if let Some(cursor) = group.flushed(Instant::now()) {
            self.meta
                .insert(CURSOR_KEY, &cursor.to_be_bytes())
                .map_err(|e| self.io(e))?;
        }
        Ok(())
    }

    /// The group commit's state; a panic elsewhere while it was held leaves nothing half-done
    /// in it worth refusing.
    fn group(&self) -> std::sync::MutexGuard<'_, GroupCommit> {
        self.group
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Moves the feed's cursor, once everything its poll read is committed (after [`Store::commit`]
    /// of its last batch, so a crash between the two re-reads, never skips).
    pub fn set_feed_cursor(&self, micros: i64) -> Result<(), StoreError> {
        self.meta
            .insert(FEED_CURSOR_KEY, &micros.to_be_bytes())
            .map_err(|e| self.io(e))?;
        self.flush()
    }

    /// The feed's cursor, `lastUpdateTime` in microseconds; None before the first feed poll.
    pub fn feed_cursor(&self) -> Result<Option<i64>, StoreError> {
        Ok(self.read_u64(FEED_CURSOR_KEY)?.map(|v| v as i64))
    }

    /// The round-robin position: index of the next entry to poll.
    pub fn cursor(&self) -> Result<u64, StoreError> {
        self.read_u64(CURSOR_KEY).map(|c| c.unwrap_or(0))
    }

    fn read_u64(&self, key: &[u8]) -> Result<Option<u64>, StoreError> {
        Ok(self
            .meta
            .get(key)
            .map_err(|e| self.io(e))?
            .and_then(|bytes| <[u8; 8]>::try_from(bytes.as_ref()).ok())
            .map(u64::from_be_bytes))
    }

    pub fn entity(&self, key: &str) -> Result<Option<EntityStatus>, StoreError> {
        self.entities
            .get(key)
            .map_err(|e| self.io(e))?
            .map(|bytes| serde_json::from_slice(&bytes))
            .transpose()
            .map_err(|source| self.status_error(key, "read", source))
    }

    fn status_error(
        &self,
        key: &str,
        action: &'static str,
        source: serde_json::Error,
    ) -> StoreError {
        StoreError::EntityStatus {
            path: self.path.display().to_string(),
            key: key.to_string(),
            action,
            source,
        }
    }

    /// Retention and compaction, when due: forgets alerts not observed in any response since
    /// `cutoff` (seconds since the epoch, compared by day), and drops superseded records once
    /// they outnumber the live ones. Alerts still being returned keep being observed, so they
    /// are never forgotten (forgetting them would re-publish them). Returns None when nothing
    /// was due, which is the common case and costs one pass over the index.
    pub fn maintain(&self, cutoff: i64, now: i64) -> Result<Option<Compaction>, StoreError> {
        let cutoff_day = cutoff.div_euclid(86_400);
        if !self.seen.compaction_due(cutoff_day, COMPACT_MIN_DEAD) {
            return Ok(None);
        }
        self.compact(cutoff, now).map(Some)
    }

    /// Compacts now (see [`Store::maintain`]).
    pub fn compact(&self, cutoff: i64, now: i64) -> Result<Compaction, StoreError> {
        let done = self
            .seen
            .compact(cutoff.div_euclid(86_400))
            .map_err(|err| log_error(&self.path, err))?;
        self.mark_pruned(now)?;
        Ok(done)
    }

    /// Records when the store was last pruned (`stats` shows it) and makes the prune durable.
    fn mark_pruned(&self, now: i64) -> Result<(), StoreError> {
        self.meta
            .insert(LAST_PRUNE_KEY, &(now as u64).to_be_bytes())
            .map_err(|e| self.io(e))?;
        self.flush()
    }

    /// Forgets `ids` (and, in the same pass, what retention would): each is shipped again the
    /// next time a response holds it. Returns the ids that were in the store.
    pub fn forget(&self, ids: &[String], cutoff: i64, now: i64) -> Result<Vec<String>, StoreError> {
        let known: Vec<String> = ids
            .iter()
            .filter(|id| self.seen.previous(SeenKey::of(id)).is_some())
            .cloned()
            .collect();
        if known.is_empty() {
            return Ok(known);
        }
        let keys = known.iter().map(|id| index::key_of(id)).collect();
        self.seen
            .compact_forgetting(cutoff.div_euclid(86_400), &keys)
            .map_err(|err| log_error(&self.path, err))?;
        self.mark_pruned(now)?;
        Ok(known)
    }

    /// Saves the wall-clock times of recent API calls (flushed with the next commit).
    pub fn save_recent_calls(&self, calls_wall_ms: &[i64]) -> Result<(), StoreError> {
        let bytes: Vec<u8> = calls_wall_ms.iter().flat_map(|t| t.to_be_bytes()).collect();
        self.meta
            .insert(RECENT_CALLS_KEY, bytes)
            .map_err(|e| self.io(e))?;
        Ok(())
    }

    pub fn recent_calls(&self) -> Result<Vec<i64>, StoreError> {
        let bytes = self
            .meta
            .get(RECENT_CALLS_KEY)
            .map_err(|e| self.io(e))?
            .unwrap_or_default();
        Ok(bytes
            .chunks_exact(8)
            .filter_map(|chunk| <[u8; 8]>::try_from(chunk).ok())
            .map(i64::from_be_bytes)
            .collect())
    }

    pub fn last_prune(&self) -> Result<Option<i64>, StoreError> {
        self.read_u64(LAST_PRUNE_KEY).map(|v| v.map(|v| v as i64))
    }

    /// Every alert id the store holds, sorted (for tests and `state` inspection).
    pub fn seen_ids(&self) -> Result<Vec<String>, StoreError> {
        self.seen.ids().map_err(|err| log_error(&self.path, err))
    }

    /// Every alert the store remembers, with its record, sorted by id.
    pub fn seen_records(&self) -> Result<Vec<(String, SeenRecord)>, StoreError> {
        self.seen
            .records()
            .map_err(|err| log_error(&self.path, err))
    }

    /// The records of `ids` exactly as logged (`previous` rounds times to what decide needs),
    /// sorted by id; unknown ids are left out. Reads the whole log: for the state tools.
    pub fn exact_records(&self, ids: &[String]) -> Result<Vec<(String, SeenRecord)>, StoreError> {
        self.seen
            .records_of(ids)
            .map_err(|err| log_error(&self.path, err))
    }

    /// Adds the records of ids the store does not know (an import); known ids keep theirs.
    /// Returns how many were added.
    pub fn import(&self, records: &[(String, SeenRecord)]) -> Result<usize, StoreError> {
        let mut fresh = Vec::new();
        for (id, record) in records {
            if self.previous(id)?.is_none() {
                fresh.push((id.clone(), *record));
            }
        }
        self.commit(&fresh, &[], None)?;
        // Durable before the command reports it, whatever the flush interval.
        self.flush_behind()?;
        Ok(fresh.len())
    }

    pub fn stats(&self) -> Result<StoreStats, StoreError> {
        let (seen_alerts, log_records, index_bytes) = self.seen.sizes();
        Ok(StoreStats {
            path: self.path.display().to_string(),
            schema_version: SCHEMA_VERSION,
            seen_alerts,
            log_records,
            index_bytes,
            entities: self.entities.len(),
            cursor: self.cursor()?,
            feed_cursor: self
                .feed_cursor()?
                .and_then(chrono::DateTime::<chrono::Utc>::from_timestamp_micros)
                .map(crate::defender::time::format),
            feed_cursor_age_secs: self.feed_cursor()?.map(|micros| {
                (crate::defender::time::to_micros(chrono::Utc::now()) - micros) / 1_000_000
            }),
            size_on_disk: self.db.size_on_disk().map_err(|e| self.io(e))?,
            last_prune: self.last_prune()?,
        })
    }
}

#[cfg(test)]
mod tests;
