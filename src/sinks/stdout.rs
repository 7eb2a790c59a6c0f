//! Events on standard output, one per line: for trying things out and for `journalctl` pipelines.

use std::io::Write;

use super::{Doing, Events, Sink, SinkError, SinkId};
use crate::normalize::Format;

pub struct StdoutSink {
    id: SinkId,
}

impl StdoutSink {
    pub fn new(name: &str, format: Format) -> StdoutSink {
        StdoutSink {
            id: SinkId::new(name, format),
        }
    }
}

#[async_trait::async_trait]
impl Sink for StdoutSink {
    fn id(&self) -> &SinkId {
        &self.id
    }

    async fn send(&mut self, events: &Events) -> Result<(), SinkError> {
        let mut out = std::io::stdout().lock();
        let result = events
            .iter()
            .try_for_each(|event| {
                out.write_all(event.payload())
                    .and_then(|_| out.write_all(b"\n"))
            })
            .and_then(|_| out.flush());
        result
            .doing(|| "cannot write to stdout")
            .map_err(|failure| failure.of(&self.id.name))
    }

    async fn flush(&mut self) -> Result<(), SinkError> {
        std::io::stdout()
            .flush()
            .doing(|| "cannot flush stdout")
            .map_err(|failure| failure.of(&self.id.name))
    }
}
