//! The sled store (0.34): `seen` (alert id → [`SeenRecord`]), `entities` (per watchlist entry: last
//! poll, outcome, alert count), `meta` (schema version, round-robin cursor, last prune). Alerts
//! are committed only after every sink acknowledged them, and each commit is flushed, so a
//! `kill -9` costs duplicates, never losses.

mod decide;
mod record;

pub use decide::{decide, Decision};
pub use record::{fingerprint, AlertDigest, SeenRecord};

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::StoreConfig;

pub const SCHEMA_VERSION: u32 = 1;
const SCHEMA_KEY: &[u8] = b"schema_version";
const CURSOR_KEY: &[u8] = b"cursor";
const LAST_PRUNE_KEY: &[u8] = b"last_prune";
const RECENT_CALLS_KEY: &[u8] = b"recent_calls";
const PRUNE_CURSOR_KEY: &[u8] = b"prune_cursor";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "cannot open the store at {path}: {reason}. If another mde-watch uses it, stop that one; if it is \
         corrupt, move it aside (mde-watch then re-publishes every alert it finds)"
    )]
    Open { path: String, reason: String },
    #[error(
        "the store at {path} has schema version {found}, this mde-watch reads version {expected}"
    )]
    Schema {
        path: String,
        found: String,
        expected: u32,
    },
    #[error("store record for {key} in tree '{tree}' is unreadable ({len} bytes); the store at {path} is damaged")]
    Corrupt {
        path: String,
        tree: &'static str,
        key: String,
        len: usize,
    },
    #[error("store I/O failed at {path}: {reason}")]
    Io { path: String, reason: String },
}

/// What the store knows of one watchlist entry's last poll.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntityStatus {
    pub last_poll: String,
    pub outcome: String,
    pub alerts: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoreStats {
    pub path: String,
    pub schema_version: u32,
    pub seen_alerts: usize,
    pub entities: usize,
    pub cursor: u64,
    pub size_on_disk: u64,
    pub last_prune: Option<i64>,
}

pub struct Store {
    path: PathBuf,
    db: sled::Db,
    seen: sled::Tree,
    entities: sled::Tree,
    meta: sled::Tree,
}

impl Store {
    pub fn open(config: &StoreConfig) -> Result<Store, StoreError> {
        let path = config.path.clone();
        let shown = path.display().to_string();
        let open_error = |reason: String| StoreError::Open {
            path: shown.clone(),
            reason,
        };
        create_private_dir(&path).map_err(|err| open_error(err.to_string()))?;
        let db = sled::Config::new()
            .path(&path)
            .cache_capacity(config.cache_bytes)
            .flush_every_ms(Some(1000))
            .open()
            .map_err(|err| open_error(err.to_string()))?;
        let tree = |name: &str| {
            db.open_tree(name)
                .map_err(|err| open_error(err.to_string()))
        };
        let store = Store {
            seen: tree("seen")?,
            entities: tree("entities")?,
            meta: tree("meta")?,
            db,
            path,
        };
        store.check_schema()?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn io(&self, err: sled::Error) -> StoreError {
        StoreError::Io {
            path: self.path.display().to_string(),
            reason: err.to_string(),
        }
    }

    fn check_schema(&self) -> Result<(), StoreError> {
        let expected = SCHEMA_VERSION.to_string();
        match self.meta.get(SCHEMA_KEY).map_err(|e| self.io(e))? {
            Some(found) if found.as_ref() == expected.as_bytes() => Ok(()),
            Some(found) => Err(StoreError::Schema {
                path: self.path.display().to_string(),
                found: String::from_utf8_lossy(&found).into_owned(),
                expected: SCHEMA_VERSION,
            }),
            None => {
                self.meta
                    .insert(SCHEMA_KEY, expected.as_bytes())
                    .map_err(|e| self.io(e))?;
                self.db.flush().map_err(|e| self.io(e))?;
                Ok(())
            }
        }
    }

    /// What the store remembers of `alert_id`.
    pub fn previous(&self, alert_id: &str) -> Result<Option<SeenRecord>, StoreError> {
        let Some(bytes) = self.seen.get(alert_id).map_err(|e| self.io(e))? else {
            return Ok(None);
        };
        SeenRecord::decode(&bytes)
            .map(Some)
            .ok_or_else(|| StoreError::Corrupt {
                path: self.path.display().to_string(),
                tree: "seen",
                key: alert_id.to_string(),
                len: bytes.len(),
            })
    }

    /// Writes a batch of seen records and entity statuses, then flushes to disk.
    pub fn commit(
        &self,
        seen: &[(String, SeenRecord)],
        entities: &[(String, EntityStatus)],
        cursor: Option<u64>,
    ) -> Result<(), StoreError> {
        if !seen.is_empty() {
            let mut batch = sled::Batch::default();
            for (id, record) in seen {
                batch.insert(id.as_bytes(), &record.encode()[..]);
            }
            self.seen.apply_batch(batch).map_err(|e| self.io(e))?;
        }
        if !entities.is_empty() {
            let mut batch = sled::Batch::default();
            for (key, status) in entities {
                let encoded = serde_json::to_vec(status).unwrap_or_default();
                batch.insert(key.as_bytes(), encoded);
            }
            self.entities.apply_batch(batch).map_err(|e| self.io(e))?;
        }
        if let Some(cursor) = cursor {
            self.meta
                .insert(CURSOR_KEY, &cursor.to_be_bytes())
                .map_err(|e| self.io(e))?;
        }
        self.flush()
    }

    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush().map(|_| ()).map_err(|e| self.io(e))
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
        Ok(self
            .entities
            .get(key)
            .map_err(|e| self.io(e))?
            .and_then(|bytes| serde_json::from_slice(&bytes).ok()))
    }

    /// Removes alerts not observed in any response since `cutoff` (seconds since the epoch),
    /// looking at no more than `max_scan` records from where the previous step stopped, so each
    /// step costs bounded time and memory however large the store is; successive steps cover
    /// the whole store. Alerts still being returned keep being observed, so they are never
    /// removed (removing them would re-publish them). Returns (removed, whether it wrapped).
    pub fn prune_step(
        &self,
        cutoff: i64,
        now: i64,
        max_scan: usize,
    ) -> Result<(usize, bool), StoreError> {
        let start = self
            .meta
            .get(PRUNE_CURSOR_KEY)
            .map_err(|e| self.io(e))?
            .map(|k| k.to_vec())
            .unwrap_or_default();
        let mut doomed = sled::Batch::default();
        let mut removed = 0;
        let mut scanned = 0;
        let mut last_key: Option<sled::IVec> = None;
        for item in self.seen.range(start..) {
            let (key, value) = item.map_err(|e| self.io(e))?;
            if scanned == max_scan {
                break;
            }
            scanned += 1;
            if SeenRecord::decode(&value).is_some_and(|r| r.last_observed < cutoff) {
                doomed.remove(key.clone());
                removed += 1;
            }
            last_key = Some(key);
        }
        let wrapped = scanned < max_scan;
        self.seen.apply_batch(doomed).map_err(|e| self.io(e))?;
        match (wrapped, last_key) {
            (false, Some(key)) => {
                // Resume just after the last key looked at.
                let mut next = key.to_vec();
                next.push(0);
                self.meta
                    .insert(PRUNE_CURSOR_KEY, next)
                    .map_err(|e| self.io(e))?;
            }
            _ => {
                self.meta.remove(PRUNE_CURSOR_KEY).map_err(|e| self.io(e))?;
                self.meta
                    .insert(LAST_PRUNE_KEY, &(now as u64).to_be_bytes())
                    .map_err(|e| self.io(e))?;
            }
        }
        self.flush()?;
        Ok((removed, wrapped))
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

    /// Every alert id the store holds (for tests and `state` inspection).
    pub fn seen_ids(&self) -> Result<Vec<String>, StoreError> {
        self.seen
            .iter()
            .keys()
            .map(|key| {
                key.map(|k| String::from_utf8_lossy(&k).into_owned())
                    .map_err(|e| self.io(e))
            })
            .collect()
    }

    pub fn stats(&self) -> Result<StoreStats, StoreError> {
        Ok(StoreStats {
            path: self.path.display().to_string(),
            schema_version: SCHEMA_VERSION,
            seen_alerts: self.seen.len(),
            entities: self.entities.len(),
            cursor: self.cursor()?,
            size_on_disk: self.db.size_on_disk().map_err(|e| self.io(e))?,
            last_prune: self.last_prune()?,
        })
    }
}

/// The store holds alert ids and timings: readable by the service account only.
fn create_private_dir(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if path.exists() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o750)
        .create(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn config(dir: &Path) -> StoreConfig {
        StoreConfig {
            path: dir.join("store"),
            retention: Duration::from_secs(86_400),
            cache_bytes: 1 << 20,
        }
    }

    fn record(last_observed: i64) -> SeenRecord {
        SeenRecord {
            last_update: Some(1),
            fingerprint: 2,
            first_observed: 3,
            last_observed,
        }
    }

    #[test]
    fn commit_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(&config(dir.path())).unwrap();
            let status = EntityStatus {
                last_poll: "t".into(),
                outcome: "ok".into(),
                alerts: 1,
            };
            store
                .commit(
                    &[("a1".into(), record(10))],
                    &[("u:user1".into(), status)],
                    Some(7),
                )
                .unwrap();
        }
        let store = Store::open(&config(dir.path())).unwrap();
        assert_eq!(store.previous("a1").unwrap(), Some(record(10)));
        assert_eq!(store.previous("a2").unwrap(), None);
        assert_eq!(store.cursor().unwrap(), 7);
        assert_eq!(store.entity("u:user1").unwrap().unwrap().alerts, 1);
    }

    #[test]
    fn prune_removes_only_unobserved_in_bounded_steps() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&config(dir.path())).unwrap();
        let records: Vec<(String, SeenRecord)> = (0..10)
            .map(|i| (format!("a{i}"), record(if i % 3 == 0 { 100 } else { 1000 })))
            .collect();
        store.commit(&records, &[], None).unwrap();
        // Four records a step: the third step reaches the end and wraps.
        assert_eq!(store.prune_step(500, 1000, 4).unwrap(), (2, false));
        assert_eq!(store.prune_step(500, 1000, 4).unwrap(), (1, false));
        assert_eq!(store.last_prune().unwrap(), None);
        assert_eq!(store.prune_step(500, 1000, 4).unwrap(), (1, true));
        assert_eq!(store.last_prune().unwrap(), Some(1000));
        assert_eq!(
            store.seen_ids().unwrap(),
            ["a1", "a2", "a4", "a5", "a7", "a8"]
        );
    }

    #[test]
    fn other_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(&config(dir.path())).unwrap();
            store.meta.insert(SCHEMA_KEY, b"99".as_slice()).unwrap();
            store.flush().unwrap();
        }
        let Err(err) = Store::open(&config(dir.path())) else {
            panic!("schema 99 must be refused")
        };
        assert!(err.to_string().contains("schema version 99"), "{err}");
    }
}
