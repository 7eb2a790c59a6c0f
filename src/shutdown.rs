//! One stop signal for the whole process (after mini-redis's `shutdown.rs`): SIGTERM or SIGINT
//! flips it; the scheduler stops ticking, pollers stop waiting for new slots, and the pipeline
//! finishes the batch it holds before the store and sinks are flushed.

use std::time::Duration;

use tokio::sync::watch;

#[derive(Clone)]
pub struct Shutdown {
    receiver: watch::Receiver<bool>,
}

pub struct ShutdownTrigger {
    sender: watch::Sender<bool>,
}

pub fn channel() -> (ShutdownTrigger, Shutdown) {
    let (sender, receiver) = watch::channel(false);
    (ShutdownTrigger { sender }, Shutdown { receiver })
}

impl ShutdownTrigger {
    pub fn trigger(&self) {
        self.sender.send_replace(true);
    }

    pub fn subscribe(&self) -> Shutdown {
        Shutdown {
            receiver: self.sender.subscribe(),
        }
    }
}

impl Shutdown {
    /// A signal that never fires, for one-shot callers.
    pub fn never() -> Shutdown {
        let (trigger, shutdown) = channel();
        // Keep the sender alive for the life of the process: dropping it would read as "stop".
        std::mem::forget(trigger);
        shutdown
    }

    pub fn is_triggered(&self) -> bool {
        *self.receiver.borrow()
    }

    /// Resolves once shutdown is triggered (or its trigger is gone).
    pub async fn wait(&mut self) {
        let _ = self.receiver.wait_for(|stop| *stop).await;
    }

    /// Sleeps for `duration` unless shutdown comes first; returns false if it did.
    pub async fn sleep(&self, duration: Duration) -> bool {
        let mut watcher = self.clone();
        tokio::select! {
            _ = tokio::time::sleep(duration) => true,
            _ = watcher.wait() => false,
        }
    }
}

/// Triggers `trigger` on SIGTERM or SIGINT.
pub fn on_signals(trigger: ShutdownTrigger) -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: finishing in-flight work, then stopping"),
            _ = int.recv() => tracing::info!("SIGINT: finishing in-flight work, then stopping"),
        }
        trigger.trigger();
        // Keep the trigger alive so subscribers see `true`, not a closed channel.
        std::future::pending::<()>().await;
    });
    Ok(())
}
