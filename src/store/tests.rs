//! Tests of the store: commits, reopen, compaction, retention, migration and damage, against a real
//! sled store in a temporary directory.

use super::*;
use std::time::Duration;

fn config(dir: &Path) -> StoreConfig {
    StoreConfig {
        path: dir.join("store"),
        retention: Duration::from_secs(86_400),
        cache_bytes: 1 << 20,
        flush_interval: Duration::ZERO,
    }
}

const DAY: i64 = 86_400;

/// Opens (or reopens) the test store. sled's flusher thread may hold the file lock for a
/// moment after the previous handle is dropped, so a refusal for the lock is retried; any
/// other verdict is the test's to judge.
fn try_open(dir: &Path) -> Result<Store, StoreError> {
    for _ in 0..250 {
        match Store::open(&config(dir)) {
            Err(StoreError::Open {
                cause: OpenCause::Locked(_),
                ..
            }) => std::thread::sleep(Duration::from_millis(20)),
            done => return done,
        }
    }
    Store::open(&config(dir))
}

fn open(dir: &Path) -> Store {
    try_open(dir).unwrap()
}

fn record(last_observed_day: i64) -> SeenRecord {
    SeenRecord {
        last_update: Some(1_790_000_000_000_000),
        fingerprint: 2,
        first_observed: 1_780_000_000,
        last_observed: last_observed_day * DAY,
    }
}

#[test]
fn forgotten_ids_are_gone_across_reopen_and_the_rest_stay() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        let records: Vec<(String, SeenRecord)> = (0..600)
            .map(|i| (format!("a{i}"), record(20_000)))
            .collect();
        store.commit(&records, &[], None).unwrap();
        // Two versions of a5 in the log: both must go.
        store
            .commit(&[("a5".into(), record(20_001))], &[], None)
            .unwrap();
        let forgotten = store
            .forget(&["a5".into(), "a7".into(), "nope".into()], 0, 20_001 * DAY)
            .unwrap();
        assert_eq!(forgotten, ["a5", "a7"]);
        assert!(store.previous("a5").unwrap().is_none());
    }
    let store = open(dir.path());
    let ids = store.seen_ids().unwrap();
    assert_eq!(ids.len(), 598);
    assert!(!ids.contains(&"a5".to_string()) && !ids.contains(&"a7".to_string()));
    assert!(store.previous("a6").unwrap().is_some());
}

#[test]
fn commit_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        let status = EntityStatus {
            last_ok: None,
            last_poll: "t".into(),
            outcome: "ok".into(),
            alerts: 1,
            alert_ids: vec!["a1".into()],
        };
        store
            .commit(
                &[("a1".into(), record(10))],
                &[("u:user1".into(), status)],
                Some(7),
            )
            .unwrap();
    }
    let store = open(dir.path());
    assert_eq!(store.previous("a1").unwrap(), Some(record(10)));
    assert_eq!(store.previous("a2").unwrap(), None);
    assert_eq!(store.cursor().unwrap(), 7);
    assert_eq!(store.entity("u:user1").unwrap().unwrap().alerts, 1);
}

#[test]
fn commits_within_the_flush_interval_share_one_flush_and_the_cursor_waits_for_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig {
        flush_interval: Duration::from_secs(3_600),
        ..config(dir.path())
    };
    // A new store flushes its schema at open: the interval runs from there.
    let store = Store::open(&config).unwrap();
    store
        .commit(&[("a1".into(), record(20_000))], &[], Some(1))
        .unwrap();
    store
        .commit(&[("a2".into(), record(20_000))], &[], Some(2))
        .unwrap();
    store
        .commit(&[("a3".into(), record(20_000))], &[], None)
        .unwrap();
    assert!(
        store.previous("a3").unwrap().is_some(),
        "judged against at once"
    );
    assert_eq!(store.cursor().unwrap(), 0, "the cursor waits for its flush");
    store.flush_behind().unwrap();
    assert_eq!(store.cursor().unwrap(), 2);
    drop(store);
    let store = open(dir.path());
    assert_eq!(store.seen_ids().unwrap().len(), 3);
    assert_eq!(store.cursor().unwrap(), 2);

    // Flushed every commit: the cursor moves with each.
    store
        .commit(&[("a4".into(), record(20_000))], &[], Some(5))
        .unwrap();
    assert_eq!(store.cursor().unwrap(), 5);
}

#[test]
fn an_unreadable_entity_status_is_named_not_taken_for_never_polled() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store
        .entities
        .insert("u:user1", &b"{\"last_poll\":"[..])
        .unwrap();
    let err = store.entity("u:user1").unwrap_err();
    assert!(
        matches!(err, StoreError::EntityStatus { action: "read", .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("'u:user1'") && text.contains(&dir.path().display().to_string()),
        "{text}"
    );
    assert_eq!(
        store.entity("u:user2").unwrap(),
        None,
        "never polled is still None"
    );
}

#[test]
fn exact_records_keep_what_the_index_rounds() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let exact = SeenRecord {
        last_update: Some(1_790_000_000_123_456),
        fingerprint: 9,
        first_observed: 1_780_000_123,
        last_observed: 20_000 * DAY + 4_321,
    };
    store
        .commit(&[("a1".into(), exact), ("a2".into(), record(5))], &[], None)
        .unwrap();
    store.commit(&[("a1".into(), exact)], &[], None).unwrap();
    let rounded = store.previous("a1").unwrap().unwrap();
    assert_eq!(rounded.last_observed, 20_000 * DAY);
    assert_eq!(rounded.last_update, Some(1_790_000_000_000_000));
    let found = store.exact_records(&["a1".into(), "nope".into()]).unwrap();
    assert_eq!(found, vec![("a1".to_string(), exact)]);
}

#[test]
fn the_newest_record_wins_and_compaction_keeps_only_it() {
    let dir = tempfile::tempdir().unwrap();
    let newer = SeenRecord {
        fingerprint: 3,
        ..record(11)
    };
    {
        let store = open(dir.path());
        // Enough records for several segments, then a newer version of two of them.
        let many: Vec<(String, SeenRecord)> =
            (0..600).map(|i| (format!("a{i}"), record(10))).collect();
        store.commit(&many, &[], None).unwrap();
        store
            .commit(&[("a5".into(), newer), ("a599".into(), newer)], &[], None)
            .unwrap();
        assert_eq!(store.previous("a5").unwrap(), Some(newer));
        assert_eq!(store.stats().unwrap().log_records, 602);
    }
    let store = open(dir.path());
    assert_eq!(store.previous("a5").unwrap(), Some(newer));
    assert_eq!(store.previous("a6").unwrap(), Some(record(10)));
    let done = store.compact(0, 1_000).unwrap();
    assert_eq!((done.kept, done.dropped, done.expired), (600, 2, 0));
    drop(store);
    let store = open(dir.path());
    let stats = store.stats().unwrap();
    assert_eq!((stats.seen_alerts, stats.log_records), (600, 600));
    assert_eq!(stats.last_prune, Some(1_000));
    assert_eq!(store.previous("a599").unwrap(), Some(newer));
    assert_eq!(store.previous("a0").unwrap(), Some(record(10)));
}

#[test]
fn retention_forgets_only_alerts_not_observed_since_the_cutoff() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let records: Vec<(String, SeenRecord)> = (0..10)
        .map(|i| (format!("a{i}"), record(if i % 3 == 0 { 100 } else { 1000 })))
        .collect();
    store.commit(&records, &[], None).unwrap();
    // a3 was observed again later: it stays.
    store
        .commit(&[("a3".into(), record(900))], &[], None)
        .unwrap();
    assert_eq!(store.maintain(0, 1_000).unwrap(), None, "nothing due");
    let done = store.maintain(500 * DAY, 1_000 * DAY).unwrap().unwrap();
    assert_eq!(done.expired, 3);
    let kept = ["a1", "a2", "a3", "a4", "a5", "a7", "a8"];
    assert_eq!(store.seen_ids().unwrap(), kept);
    assert_eq!(store.previous("a0").unwrap(), None);
    assert_eq!(store.maintain(500 * DAY, 1_000 * DAY).unwrap(), None);
    drop(store);
    let store = open(dir.path());
    assert_eq!(store.seen_ids().unwrap(), kept);
    assert_eq!(store.stats().unwrap().log_records, 7);
}

#[test]
fn a_schema_1_store_is_migrated() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = sled::open(dir.path().join("store")).unwrap();
        let seen = db.open_tree("seen").unwrap();
        for i in 0..5_000i64 {
            let mut value = Vec::new();
            for word in [
                1_790_000_000_000_000 + i * 1_000_000,
                7,
                1_780_000_000,
                10 * DAY,
            ] {
                value.extend_from_slice(&word.to_be_bytes());
            }
            seen.insert(format!("da{i}"), value).unwrap();
        }
        db.open_tree("meta")
            .unwrap()
            .insert(SCHEMA_KEY, b"1".as_slice())
            .unwrap();
        db.flush().unwrap();
    }
    let store = open(dir.path());
    let found = store.previous("da4999").unwrap().unwrap();
    assert_eq!(
        found.last_update,
        Some(1_790_000_000_000_000 + 4_999_000_000)
    );
    assert_eq!(found.fingerprint, 7);
    assert_eq!(store.stats().unwrap().seen_alerts, 5_000);
    assert!(!store
        .db
        .tree_names()
        .contains(&sled::IVec::from(V1_SEEN_TREE)));
    drop(store);
    let store = open(dir.path());
    assert_eq!(store.stats().unwrap().seen_alerts, 5_000);
}

#[test]
fn a_damaged_segment_is_named() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        store
            .commit(&[("a1".into(), record(1))], &[], None)
            .unwrap();
        let log = store.db.open_tree("log").unwrap();
        log.insert(9u64.to_be_bytes(), b"\x01\x00\x09da".as_slice())
            .unwrap();
        store.flush().unwrap();
    }
    let Err(err) = try_open(dir.path()) else {
        panic!("a damaged segment must be refused")
    };
    let text = err.to_string();
    assert!(
        text.contains("segment 9 ") && text.contains("truncated id"),
        "{text}"
    );
}

#[test]
fn other_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        store.meta.insert(SCHEMA_KEY, b"99".as_slice()).unwrap();
        store.flush().unwrap();
    }
    let Err(err) = try_open(dir.path()) else {
        panic!("schema 99 must be refused")
    };
    assert!(err.to_string().contains("schema version 99"), "{err}");
}
