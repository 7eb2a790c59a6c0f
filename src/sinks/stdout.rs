//! Events on standard output, one per line: for trying things out and for `journalctl` pipelines.

use std::io::Write;

use super::{OutEvent, Sink, SinkError};
use crate::normalize::Format;

pub struct StdoutSink {
    name: String,
    format: Format,
}

impl StdoutSink {
    pub fn new(name: &str, format: Format) -> StdoutSink {
        StdoutSink {
            name: name.to_string(),
            format,
        }
    }
}

#[async_trait::async_trait]
impl Sink for StdoutSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn format(&self) -> Format {
        self.format
    }

    async fn send(&mut self, events: &[OutEvent]) -> Result<(), SinkError> {
        let mut out = std::io::stdout().lock();
        let result = events
            .iter()
            .try_for_each(|event| {
                out.write_all(&event.payload)
                    .and_then(|_| out.write_all(b"\n"))
            })
            .and_then(|_| out.flush());
        result.map_err(|err| SinkError::Io {
            sink: self.name.clone(),
            reason: format!("stdout: {err}"),
        })
    }

    async fn flush(&mut self) -> Result<(), SinkError> {
        std::io::stdout().flush().map_err(|err| SinkError::Io {
            sink: self.name.clone(),
            reason: format!("stdout: {err}"),
        })
    }
}
