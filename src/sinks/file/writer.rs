//! The file sink's writer thread. Batches are appended and synced there, one after another in
//! the order they were handed over, so the publisher encodes the next batch while this one syncs
//! (waiting for each sync on the publisher's path cost about a third of the heavy benchmark's
//! sweep, benches/README.md). A batch's acknowledgement resolves when its write is durable.
//! The thread ends when the sink is dropped, after the writes already handed over.

use std::sync::mpsc;

use tokio::sync::oneshot;

use super::FileState;
use crate::sinks::{Doing, Events, Failure};

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

fn run(mut state: FileState, queue: mpsc::Receiver<Job>) {
    for job in queue {
        match job {
            Job::Append { events, done } => {
                let _ = done.send(state.write(&events));
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
    }
}
