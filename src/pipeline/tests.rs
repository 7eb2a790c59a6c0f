//! The pipeline's ordering contract with a scripted sink: batches overlap, commits follow
//! acknowledgements in batch order, an alert in flight is not published twice, and a failed
//! acknowledgement sends that batch again before the ones behind it.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::*;
use crate::config::StoreConfig;
use crate::defender::EntryAlerts;
use crate::normalize::Format;
use crate::sinks::{Events, Failure, SinkId};
use crate::watchlist::{EntryKind, Watchlist};

/// What the sink was handed, one line per handover: how many alerts the store held at that
/// moment, then the alert ids.
type Handovers = Arc<Mutex<Vec<(usize, Vec<String>)>>>;

struct ScriptedSink {
    id: SinkId,
    store: Arc<Store>,
    handovers: Handovers,
    /// Outcome of each handover in turn (true = acknowledged); acknowledged once it runs out.
    script: VecDeque<bool>,
}

#[async_trait::async_trait]
impl Sink for ScriptedSink {
    fn id(&self) -> &SinkId {
        &self.id
    }

    async fn send(&mut self, events: &Events) -> Result<(), SinkError> {
        self.start(events).await.await
    }

    async fn start(&mut self, events: &Events) -> Pending {
        let held = self
            .store
            .seen_ids()
            .map(|ids| ids.len())
            .unwrap_or(usize::MAX);
        let ids = events.iter().map(|e| e.alert_id().to_string()).collect();
        self.handovers.lock().unwrap().push((held, ids));
        let outcome = match self.script.pop_front().unwrap_or(true) {
            true => Ok(()),
            false => Err(Failure::plain("broker gone").of("scripted")),
        };
        Box::pin(std::future::ready(outcome))
    }

    async fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}

struct Harness {
    _dir: tempfile::TempDir,
    store: Arc<Store>,
    pipeline: Pipeline,
    handovers: Handovers,
    counters: Arc<Counters>,
}

fn harness(in_flight: usize, script: &[bool]) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        Store::open(&StoreConfig {
            path: dir.path().join("store"),
            retention: Duration::from_secs(86_400),
            cache_bytes: 1 << 20,
            flush_interval: Duration::ZERO,
        })
        .unwrap(),
    );
    let handovers = Handovers::default();
    let sink = ScriptedSink {
        id: SinkId::new("scripted", Format::Raw),
        store: store.clone(),
        handovers: handovers.clone(),
        script: script.iter().copied().collect(),
    };
    let counters = Arc::new(Counters::default());
    let pipeline = Pipeline::new(PipelineParts {
        store: store.clone(),
        sinks: vec![Box::new(sink)],
        updates: UpdatePolicy::Ignore,
        tenant_id: "tenant".into(),
        collector: "collector".into(),
        index: WatchIndex::new(&Watchlist::default()),
        counters: counters.clone(),
        stop: Shutdown::never(),
        in_flight_batches: in_flight,
    });
    Harness {
        _dir: dir,
        store,
        pipeline,
        handovers,
        counters,
    }
}

/// One user entry whose response holds `ids`.
fn batch(user: &str, ids: &[&str]) -> PolledBatch {
    let alerts: Vec<PolledAlert> = ids
        .iter()
        .map(|id| {
            let json = format!(
                r#"{{"id":"{id}","lastUpdateTime":"2026-11-01T10:00:00Z","status":"New"}}"#
            );
            PolledAlert::parse(json).unwrap()
        })
        .collect();
    let entry = Entry::for_test(EntryKind::User, user);
    PolledBatch {
        results: vec![(
            entry,
            Ok(EntryAlerts {
                ids: alerts.iter().map(|a| a.alert().id.to_string()).collect(),
                read: alerts.len() as u64,
                alerts,
                calls: 1,
                ..EntryAlerts::default()
            }),
        )],
        ..PolledBatch::default()
    }
}

fn handed(h: &Harness) -> Vec<(usize, Vec<String>)> {
    h.handovers.lock().unwrap().clone()
}

fn ids(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// Batch u1 (a1, a2) then batch u2 (b1), with `in_flight` batches allowed out at once.
async fn two_batches(in_flight: usize) -> Harness {
    let mut h = harness(in_flight, &[]);
    for (entry, alerts) in [("u1", &["a1", "a2"][..]), ("u2", &["b1"])] {
        h.pipeline.process(batch(entry, alerts)).await.unwrap();
    }
    h
}

#[tokio::test]
async fn the_next_batch_goes_out_before_the_previous_one_is_committed() {
    let mut h = two_batches(2).await;
    // a1/a2 are committed only now that b1 is out; b1 waits for the drain.
    assert_eq!(h.store.seen_ids().unwrap().len(), 2);
    h.pipeline.drain().await.unwrap();
    assert_eq!(
        handed(&h),
        vec![(0, ids(&["a1", "a2"])), (0, ids(&["b1"]))],
        "b1 was handed over while a1 and a2 were still uncommitted"
    );
    assert_eq!(h.store.seen_ids().unwrap().len(), 3);
    assert_eq!(h.counters.snapshot().alerts_published, 3);
}

#[tokio::test]
async fn one_batch_in_flight_commits_before_the_next_goes_out() {
    let h = two_batches(1).await;
    assert_eq!(handed(&h), vec![(0, ids(&["a1", "a2"])), (2, ids(&["b1"]))]);
    assert_eq!(h.store.seen_ids().unwrap().len(), 3);
}

#[tokio::test]
async fn an_alert_still_in_flight_is_not_published_again() {
    let mut h = harness(2, &[]);
    h.pipeline.process(batch("u1", &["a1", "x"])).await.unwrap();
    h.pipeline.process(batch("u2", &["x", "b1"])).await.unwrap();
    h.pipeline.drain().await.unwrap();
    assert_eq!(handed(&h), vec![(0, ids(&["a1", "x"])), (0, ids(&["b1"]))]);
    assert_eq!(h.counters.snapshot().duplicates_suppressed, 1);
}

#[tokio::test]
async fn a_failed_batch_is_sent_again_before_the_ones_behind_it() {
    // a fails; b (already out) is acknowledged; then a is resent and b after it, so the last
    // copy of every alert on the wire is in batch order.
    let mut h = harness(2, &[false, true]);
    h.pipeline.process(batch("u1", &["a1"])).await.unwrap();
    h.pipeline.process(batch("u2", &["b1"])).await.unwrap();
    h.pipeline.process(batch("u3", &["c1"])).await.unwrap();
    h.pipeline.drain().await.unwrap();
    let sent: Vec<Vec<String>> = handed(&h).into_iter().map(|(_, ids)| ids).collect();
    assert_eq!(
        sent,
        vec![
            ids(&["a1"]),
            ids(&["b1"]),
            ids(&["a1"]),
            ids(&["b1"]),
            ids(&["c1"])
        ]
    );
    let mut stored = h.store.seen_ids().unwrap();
    stored.sort();
    assert_eq!(stored, ids(&["a1", "b1", "c1"]));
    assert_eq!(h.counters.snapshot().sink_failures, 1);
}

#[tokio::test]
async fn nothing_in_flight_is_committed_when_the_sink_never_recovers() {
    let (trigger, stop) = crate::shutdown::channel();
    let mut h = harness(2, &[false, false, false]);
    h.pipeline.stop = stop;
    h.pipeline.process(batch("u1", &["a1"])).await.unwrap();
    trigger.trigger();
    let outcome = h.pipeline.process(batch("u2", &["b1"])).await;
    assert!(
        matches!(outcome, Err(PipelineError::Undelivered { .. })),
        "{outcome:?}"
    );
    assert!(h.store.seen_ids().unwrap().is_empty());
    assert!(h.pipeline.in_flight.is_empty());
}
