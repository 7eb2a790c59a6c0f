//! NDJSON files: appended, fsynced per batch (the acknowledgement), created with mode 0640,
//! rotated by size keeping N old files (`alerts.ndjson.1` is the newest of those).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::{OutEvent, Sink, SinkError};
use crate::config::FileSinkConfig;
use crate::normalize::Format;

pub struct FileSink {
    name: String,
    format: Format,
    state: Arc<Mutex<FileState>>,
}

struct FileState {
    path: PathBuf,
    file: File,
    size: u64,
    max_size: u64,
    keep: u32,
    fsync: bool,
}

impl FileSink {
    pub fn open(
        name: &str,
        format: Format,
        config: &FileSinkConfig,
    ) -> Result<FileSink, SinkError> {
        let fail = |reason: String| SinkError::Io {
            sink: name.to_string(),
            reason,
        };
        if let Some(parent) = config.path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o750)
                .create(parent)
                .map_err(|err| fail(format!("cannot create {}: {err}", parent.display())))?;
        }
        let file = open_append(&config.path).map_err(fail)?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(FileSink {
            name: name.to_string(),
            format,
            state: Arc::new(Mutex::new(FileState {
                path: config.path.clone(),
                file,
                size,
                max_size: config.max_size,
                keep: config.keep,
                fsync: config.fsync,
            })),
        })
    }

    async fn with_state<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut FileState) -> Result<T, String> + Send + 'static,
    ) -> Result<T, SinkError> {
        let state = self.state.clone();
        let outcome = tokio::task::spawn_blocking(move || {
            let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
            work(&mut state)
        })
        .await
        .map_err(|err| err.to_string())
        .and_then(|r| r);
        outcome.map_err(|reason| SinkError::Io {
            sink: self.name.clone(),
            reason,
        })
    }
}

fn open_append(path: &Path) -> Result<File, String> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .open(path)
        .map_err(|err| format!("cannot open {}: {err}", path.display()))
}

/// `alerts.ndjson.N`
fn numbered(path: &Path, n: u32) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

impl FileState {
    fn write(&mut self, buffer: &[u8]) -> Result<(), String> {
        if self.max_size > 0 && self.size > 0 && self.size + buffer.len() as u64 > self.max_size {
            self.rotate()?;
        }
        self.file
            .write_all(buffer)
            .map_err(|err| format!("cannot write {}: {err}", self.path.display()))?;
        self.size += buffer.len() as u64;
        if self.fsync {
            self.file
                .sync_data()
                .map_err(|err| format!("cannot fsync {}: {err}", self.path.display()))?;
        }
        Ok(())
    }

    fn rotate(&mut self) -> Result<(), String> {
        self.file
            .sync_all()
            .map_err(|err| format!("cannot fsync {}: {err}", self.path.display()))?;
        let rename = |from: &Path, to: &Path| match std::fs::rename(from, to) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(format!(
                "cannot rotate {} to {}: {err}",
                from.display(),
                to.display()
            )),
            _ => Ok(()),
        };
        if self.keep == 0 {
            std::fs::remove_file(&self.path)
                .map_err(|err| format!("cannot remove {}: {err}", self.path.display()))?;
        } else {
            let _ = std::fs::remove_file(numbered(&self.path, self.keep));
            for n in (1..self.keep).rev() {
                rename(&numbered(&self.path, n), &numbered(&self.path, n + 1))?;
            }
            rename(&self.path, &numbered(&self.path, 1))?;
        }
        self.file = open_append(&self.path)?;
        self.size = 0;
        tracing::info!(path = %self.path.display(), "rotated");
        Ok(())
    }
}

#[async_trait::async_trait]
impl Sink for FileSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn format(&self) -> Format {
        self.format
    }

    async fn send(&mut self, events: &[OutEvent]) -> Result<(), SinkError> {
        if events.is_empty() {
            return Ok(());
        }
        let mut buffer = Vec::with_capacity(events.iter().map(|e| e.payload.len() + 1).sum());
        for event in events {
            buffer.extend_from_slice(&event.payload);
            buffer.push(b'\n');
        }
        self.with_state(move |state| state.write(&buffer)).await
    }

    async fn flush(&mut self) -> Result<(), SinkError> {
        self.with_state(|state| {
            state
                .file
                .sync_all()
                .map_err(|err| format!("cannot fsync {}: {err}", state.path.display()))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::Severity;

    fn event(payload: &str) -> OutEvent {
        OutEvent {
            alert_id: "a".into(),
            payload: payload.as_bytes().to_vec(),
            severity: Severity::Low,
            match_kinds: "user",
            matches: "user:u".into(),
            time_ms: None,
        }
    }

    #[tokio::test]
    async fn appends_lines_with_mode_0640_and_rotates() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out/alerts.ndjson");
        let config = FileSinkConfig {
            path: path.clone(),
            max_size: 20,
            keep: 2,
            fsync: true,
        };
        let mut sink = FileSink::open("f", Format::Ecs, &config).unwrap();
        sink.send(&[event("0123456789"), event("abc")])
            .await
            .unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "0123456789\nabc\n");
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o640
        );
        sink.send(&[event("second-batch")]).await.unwrap();
        sink.send(&[event("third-batch")]).await.unwrap();
        sink.send(&[event("fourth-batch")]).await.unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "fourth-batch\n");
        assert_eq!(
            std::fs::read_to_string(numbered(&path, 1)).unwrap(),
            "third-batch\n"
        );
        assert_eq!(
            std::fs::read_to_string(numbered(&path, 2)).unwrap(),
            "second-batch\n"
        );
        assert!(!numbered(&path, 3).exists());
    }
}
