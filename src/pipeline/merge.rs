//! A polled batch merged by alert id: one candidate per alert carrying every watchlist entry
//! that reached it and every one its own content names; and each polled entry's status.

use hashbrown::HashTable;

use super::matches::Lookup;
use super::{id_hash, Candidate, Matches, Pipeline};
use crate::defender::{time, ApiError, EntryAlerts, PolledAlert};
use crate::errors::Chain;
use crate::normalize::{FoundBy, Match};
use crate::store::EntityStatus;
use crate::watchlist::Entry;

impl Pipeline {
    /// Merges the batch by alert id and adds content matches; also builds each entry's status.
    pub(super) fn merge(
        &self,
        results: Vec<(Entry, Result<EntryAlerts, ApiError>)>,
        feed: Option<EntryAlerts>,
        observed_at: &str,
    ) -> (Vec<Candidate>, Vec<(String, EntityStatus)>) {
        let polled = results
            .iter()
            .filter_map(|(_, result)| result.as_ref().ok())
            .chain(&feed)
            .map(|found| found.alerts.len())
            .sum();
        let mut merging = Merging {
            candidates: Vec::with_capacity(polled),
            by_id: HashTable::with_capacity(polled),
            lookup: Lookup::default(),
        };
        let mut statuses = Vec::with_capacity(results.len());
        if let Some(feed) = feed {
            self.merge_feed(feed, &mut merging);
        }
        for (entry, result) in results {
            let reached = Match::new(entry.kind(), entry.value(), entry.original.as_deref());
            // A piece of a response still streaming says nothing of the entry yet: its status
            // comes with the rest of the response (and never when that fails).
            let piece = result.as_ref().is_ok_and(|found| !found.complete);
            let (outcome, count, alert_ids, last_ok) = match result {
                Err(err) => {
                    // A failed poll says nothing new about the entry's alerts: keep the last list
                    // and the time of the last poll that read them.
                    let known = self.store.entity(&entry.key()).unwrap_or_else(|err| {
                        tracing::warn!(error = %Chain(&err), "entity status unreadable; rewritten");
                        None
                    });
                    let (ids, last_ok) = known
                        .map(|status| (status.alert_ids, status.last_ok))
                        .unwrap_or_default();
                    (format!("error: {}", Chain(&err)), 0, ids, last_ok)
                }
                Ok(found) => {
                    let count = u32::try_from(found.read).unwrap_or(u32::MAX);
                    let alert_ids = found.ids;
                    self.counters
                        .add(&self.counters.alerts_received, found.alerts.len() as u64);
                    for rejected in &found.rejected {
                        tracing::error!(entry = %entry.value(), problem = %rejected, "alert skipped: unreadable");
                    }
                    self.counters
                        .add(&self.counters.alerts_rejected, found.rejected.len() as u64);
                    self.add_entity_alerts(found.alerts, &reached, &mut merging);
                    let outcome = if found.rejected.is_empty() {
                        "ok".to_string()
                    } else {
                        format!("ok, {} unreadable alert(s) skipped", found.rejected.len())
                    };
                    // In the API's time when it said (its clock is the one alerts carry).
                    let answered = found
                        .answered_at
                        .and_then(chrono::DateTime::<chrono::Utc>::from_timestamp_micros)
                        .map(time::format)
                        .unwrap_or_else(|| observed_at.to_string());
                    (outcome, count, alert_ids, Some(answered))
                }
            };
            if piece {
                continue;
            }
            statuses.push((
                entry.key(),
                EntityStatus {
                    last_poll: observed_at.to_string(),
                    outcome,
                    alerts: count,
                    alert_ids,
                    last_ok,
                },
            ));
        }
        (merging.finish(), statuses)
    }

    /// An entity's alerts join the candidates: an alert another entry already reached gains
    /// this entry's match; a new one comes with this match and those its own content names.
    fn add_entity_alerts(&self, alerts: Vec<PolledAlert>, reached: &Match, merging: &mut Merging) {
        let Merging {
            candidates,
            by_id,
            lookup,
        } = merging;
        for polled in alerts {
            let id = polled.alert().id.as_ref();
            if let Some(&at) = find(by_id, candidates, id) {
                self.counters.add(&self.counters.duplicates_suppressed, 1);
                push_match(&mut candidates[at].matches, reached.clone());
                continue;
            }
            let mut matches = Matches::new();
            matches.push(reached.clone());
            for found in self.index.matches_in(polled.alert(), lookup) {
                push_match(&mut matches, found.clone());
            }
            by_id.insert_unique(id_hash(id), candidates.len(), |&at| rehash(candidates, at));
            candidates.push(Candidate {
                polled,
                matches,
                found_by: FoundBy::Entity,
            });
        }
    }

    /// Feed alerts whose content matches the watchlist become candidates, with those matches:
    /// the relation an entity poll observes (related user, user evidence, logged-on users, file
    /// and process hashes), found by one hash lookup per value. The rest are counted and dropped;
    /// one that matches later (its evidence came late) is read again when it is updated.
    fn merge_feed(&self, feed: EntryAlerts, merging: &mut Merging) {
        let Merging {
            candidates,
            by_id,
            lookup,
        } = merging;
        self.counters
            .add(&self.counters.alerts_received, feed.alerts.len() as u64);
        for rejected in &feed.rejected {
            tracing::error!(problem = %rejected, "feed alert skipped: unreadable");
        }
        self.counters
            .add(&self.counters.alerts_rejected, feed.rejected.len() as u64);
        for polled in feed.alerts {
            let matches = self.index.matches_in(polled.alert(), lookup);
            if matches.is_empty() {
                self.counters.add(&self.counters.alerts_unmatched, 1);
                continue;
            }
            self.counters.add(&self.counters.alerts_matched, 1);
            let id = polled.alert().id.as_ref();
            if find(by_id, candidates, id).is_some() {
                self.counters.add(&self.counters.duplicates_suppressed, 1);
                continue;
            }
            by_id.insert_unique(id_hash(id), candidates.len(), |&at| rehash(candidates, at));
            let matches = Matches::from(matches);
            candidates.push(Candidate {
                polled,
                matches,
                found_by: FoundBy::Feed,
            });
        }
    }
}

/// What a merge builds: the candidates, where each alert id sits among them, and the buffers
/// the content match reuses from one alert to the next.
struct Merging {
    candidates: Vec<Candidate>,
    /// Indexes into `candidates`, hashed by their alert's id: the id is not copied.
    by_id: HashTable<usize>,
    lookup: Lookup,
}

/// Where the alert `id` sits among `candidates`, if it is there.
fn find<'t>(by_id: &'t HashTable<usize>, candidates: &[Candidate], id: &str) -> Option<&'t usize> {
    by_id.find(id_hash(id), |&at| candidates[at].polled.alert().id == id)
}

fn rehash(candidates: &[Candidate], at: usize) -> u64 {
    id_hash(&candidates[at].polled.alert().id)
}

impl Merging {
    /// The candidates, each one's matches in a stable order.
    fn finish(mut self) -> Vec<Candidate> {
        for candidate in &mut self.candidates {
            candidate.matches.sort();
        }
        self.candidates
    }
}

fn push_match(matches: &mut Matches, found: Match) {
    if !matches
        .iter()
        .any(|m| m.kind == found.kind && m.value.eq_ignore_ascii_case(&found.value))
    {
        matches.push(found);
    }
}
