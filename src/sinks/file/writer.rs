//! The file sink's writer thread. Batches are appended and synced there, one after another in
//! the order they were handed over (those waiting when a sync ends share the next one), so the
//! publisher encodes the next batch while this one syncs (waiting for each sync on the
//! publisher's path cost about a third of the heavy benchmark's sweep, benches/README.md). A
//! batch's acknowledgement resolves when its write is durable.
//! The thread ends when the sink is dropped, after the writes already handed over.

use std::sync::mpsc;

use tokio::sync::oneshot;

use super::FileState;
use crate::sinks::{Doing, Events, Failure, OutEvent};

/// What a job's sender learns: done, or why not.
pub(super) type Done = oneshot::Receiver<Result<(), Failure>>;

enum Job {
    Append {
        events: Events,
        done: oneshot::Sender<Result<(), Failure>>,
    },
    SyncAll {
        done: oneshot::Sender<Result<(), Failure>>,
    },
}

pub(super) struct Writer {
    jobs: mpsc::Sender<Job>,
}

impl Writer {
    /// Starts the thread that owns `state` from now on.
    pub(super) fn start(state: FileState) -> Result<Writer, Failure> {
        let (jobs, queue) = mpsc::channel();
        std::thread::Builder::new()
            .name("file-sink".into())
            .spawn(move || run(state, queue))
            .doing(|| "cannot start the file sink's writer thread")?;
        Ok(Writer { jobs })
    }

    /// Appends `events`, a line each, after everything handed over before them.
    pub(super) fn append(&self, events: Events) -> Done {
        self.submit(|done| Job::Append { events, done })
    }

    /// Syncs the file and its metadata, after everything handed over before.
    pub(super) fn sync_all(&self) -> Done {
        self.submit(|done| Job::SyncAll { done })
    }

    fn submit(&self, job: impl FnOnce(oneshot::Sender<Result<(), Failure>>) -> Job) -> Done {
        let (done, outcome) = oneshot::channel();
        // When the thread is gone the job is dropped with its sender: the receiver says so.
        let _ = self.jobs.send(job(done));
        outcome
    }
}

/// The failure of a job whose thread went away without answering.
pub(super) fn writer_gone() -> Failure {
    Failure::plain("the file sink's writer thread stopped")
}

/// Batches written under one sync at most. The pipeline hands over at most `in_flight_batches`
/// (2) before it waits, so a group rarely holds more than two; this only keeps one bounded
/// whatever hands batches over.
const MOST_IN_ONE_SYNC: usize = 16;

fn run(mut state: FileState, queue: mpsc::Receiver<Job>) {
    let mut next = queue.recv().ok();
    while let Some(job) = next.take() {
        match job {
            Job::Append { events, done } => {
                let (group, after) = group_appends((events, done), &queue);
                append_group(&mut state, group);
                next = after;
            }
            Job::SyncAll { done } => {
                let path = state.path.display().to_string();
                let _ = done.send(
                    state
                        .file
                        .sync_all()
                        .doing(|| format!("cannot fsync {path}")),
                );
            }
        }
        if next.is_none() {
            next = queue.recv().ok();
        }
    }
}

type Append = (Events, oneshot::Sender<Result<(), Failure>>);

/// `first` and the appends already waiting behind it, in order (they share one sync, which
/// matters on a disk whose sync takes longer than the publisher needs for a batch), and the job
/// that ended the group.
fn group_appends(first: Append, queue: &mpsc::Receiver<Job>) -> (Vec<Append>, Option<Job>) {
    let mut group = vec![first];
    while group.len() < MOST_IN_ONE_SYNC {
        match queue.try_recv() {
            Ok(Job::Append { events, done }) => group.push((events, done)),
            Ok(other) => return (group, Some(other)),
            Err(_) => break,
        }
    }
    (group, None)
}

/// Writes a group whole or not at all, and answers each of its batches.
fn append_group(state: &mut FileState, group: Vec<Append>) {
    let batches: Vec<&[OutEvent]> = group.iter().map(|(events, _)| &events[..]).collect();
    let outcome = state.write(&batches);
    let mut answers = group.into_iter().map(|(_, done)| done);
    match outcome {
        Ok(()) => answers.for_each(|done| {
            let _ = done.send(Ok(()));
        }),
        Err(failure) => {
            if let Some(first) = answers.next() {
                let _ = first.send(Err(failure));
            }
            // Taken back with the first: sent again after it, in order.
            answers.for_each(|done| {
                let _ = done.send(Err(Failure::plain(
                    "not written: it shared a write with the batch before it, which failed",
                )));
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::Severity;

    fn append(payload: &str) -> (Job, oneshot::Receiver<Result<(), Failure>>) {
        let (done, answer) = oneshot::channel();
        let events: Events = vec![OutEvent::of_user("a", "u", Severity::Low, payload)].into();
        (Job::Append { events, done }, answer)
    }

    fn payloads(group: &[Append]) -> Vec<&[u8]> {
        group
            .iter()
            .map(|(events, _)| events[0].payload())
            .collect()
    }

    #[test]
    fn appends_waiting_behind_one_join_it_until_another_kind_of_job() {
        let (jobs, queue) = mpsc::channel();
        let (first, _a) = append("1");
        let Job::Append { events, done } = first else {
            unreachable!()
        };
        let (second, _b) = append("2");
        let (third, _c) = append("3");
        let (sync_done, _d) = oneshot::channel();
        let (after, _e) = append("4");
        for job in [second, third, Job::SyncAll { done: sync_done }, after] {
            jobs.send(job).unwrap();
        }
        let (group, next) = group_appends((events, done), &queue);
        assert_eq!(payloads(&group), [b"1", b"2", b"3"]);
        assert!(matches!(next, Some(Job::SyncAll { .. })));
        let Ok(Job::Append { events, .. }) = queue.try_recv() else {
            panic!("the append after the sync was taken")
        };
        assert_eq!(events[0].payload(), b"4");

        // Nothing waiting: a group of one, and no job taken.
        let (alone, _f) = append("5");
        let Job::Append { events, done } = alone else {
            unreachable!()
        };
        let (group, next) = group_appends((events, done), &queue);
        assert_eq!(payloads(&group), [b"5"]);
        assert!(next.is_none());
    }
}
