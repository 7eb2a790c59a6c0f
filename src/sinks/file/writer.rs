//! The file sink's writer thread. Batches are appended and synced there, one after another in
//! the order they were handed over, so the publisher encodes the next batch while this one syncs
//! (waiting for each sync on the publisher's path cost about a third of the heavy benchmark's
//! sweep, benches/README.md). A batch's acknowledgement resolves when its write is durable.
//! The thread ends when the sink is dropped, after the writes already handed over.

use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::oneshot;

use super::FileState;
use crate::sinks::{Doing, Failure};

/// A batch buffer larger than this is not kept for a later batch.
const SPARE_MAX: usize = 16 << 20;
/// Buffers kept for reuse: one being written, one being filled.
const SPARES: usize = 2;

/// What a job's sender learns: done, or why not.
pub(super) type Done = oneshot::Receiver<Result<(), Failure>>;

enum Job {
    Append {
        buffer: Vec<u8>,
        done: oneshot::Sender<Result<(), Failure>>,
    },
    SyncAll {
        done: oneshot::Sender<Result<(), Failure>>,
    },
}

pub(super) struct Writer {
    jobs: mpsc::Sender<Job>,
    /// Buffers written and handed back: the allocator's tuning (`memory.rs`) returns a large
    /// block to the system when it is freed, so a fresh one per batch cost page faults on every
    /// byte written (measured: ~4% of the daemon's CPU on the heavy benchmark).
    spares: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl Writer {
    /// Starts the thread that owns `state` from now on.
    pub(super) fn start(state: FileState) -> Result<Writer, Failure> {
        let (jobs, queue) = mpsc::channel();
        let spares = Arc::new(Mutex::new(Vec::with_capacity(SPARES)));
        let returned = spares.clone();
        std::thread::Builder::new()
            .name("file-sink".into())
            .spawn(move || run(state, queue, &returned))
            .doing(|| "cannot start the file sink's writer thread")?;
        Ok(Writer { jobs, spares })
    }

    /// An empty buffer for the next batch, one written before when there is one.
    pub(super) fn buffer(&self) -> Vec<u8> {
        let mut buffer = lock(&self.spares).pop().unwrap_or_default();
        buffer.clear();
        buffer
    }

    /// Appends `buffer` after everything handed over before it.
    pub(super) fn append(&self, buffer: Vec<u8>) -> Done {
        self.submit(|done| Job::Append { buffer, done })
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

fn run(mut state: FileState, queue: mpsc::Receiver<Job>, spares: &Mutex<Vec<Vec<u8>>>) {
    for job in queue {
        match job {
            Job::Append { buffer, done } => {
                let _ = done.send(state.write(&buffer));
                if buffer.capacity() <= SPARE_MAX {
                    let mut spares = lock(spares);
                    if spares.len() < SPARES {
                        spares.push(buffer);
                    }
                }
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

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Nothing panics while holding it; a poisoned pool of empty buffers is still usable.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
