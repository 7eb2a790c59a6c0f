//! NDJSON files: appended, fsynced before a batch is acknowledged (batches handed over while
//! the last sync ran share the next one: `writer.rs`), created with mode 0640,
//! rotated by size keeping N old files (`alerts.ndjson.1` is the newest of those). A reader
//! only ever sees whole lines: a batch that fails midway (a full disk) is cut back off the file
//! before the error is reported, and a file left ending in a partial line (a crash mid-write, a
//! cut that failed too) is repaired when it is opened. The cut-off events were never
//! acknowledged, so they are written again. Writes and syncs run on the sink's own thread, in
//! the order batches were handed over (`writer.rs`), straight from the batch's events: one
//! `writev` takes each payload and its newline where it lies, so no batch is copied together
//! first (that copy was ~2% of the daemon's CPU on the heavy benchmark).

pub mod settings;
mod writer;

pub use settings::FileSettings;

use std::fs::{File, OpenOptions};
use std::io::{IoSlice, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::{Doing, Events, Failure, OutEvent, Pending, Sink, SinkError, SinkId};
use crate::normalize::Format;
use writer::{writer_gone, Done, Writer};

pub struct FileSink {
    id: SinkId,
    /// Owns the file: every write and sync goes through it, in order.
    writer: Writer,
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
    pub fn open(name: &str, format: Format, config: &FileSettings) -> Result<FileSink, SinkError> {
        let fail = |failure: Failure| failure.of(name);
        if let Some(parent) = config.path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o750)
                .create(parent)
                .doing(|| format!("cannot create {}", parent.display()))
                .map_err(fail)?;
        }
        let file = open_append(&config.path).map_err(fail)?;
        let size = repair_torn_tail(&file)
            .doing(|| {
                format!(
                    "cannot repair the partial last line of {}",
                    config.path.display()
                )
            })
            .map_err(fail)?;
        let writer = Writer::start(FileState {
            path: config.path.clone(),
            file,
            size,
            max_size: config.max_size,
            keep: config.keep,
            fsync: config.fsync,
        })
        .map_err(fail)?;
        Ok(FileSink {
            id: SinkId::new(name, format),
            writer,
        })
    }

    /// What a job's answer means for this sink, once it comes.
    fn acknowledgement(&self, done: Done) -> Pending {
        let name = self.id.name.clone();
        Box::pin(async move {
            done.await
                .unwrap_or_else(|_| Err(writer_gone()))
                .map_err(|failure| failure.of(&name))
        })
    }
}

fn open_append(path: &Path) -> Result<File, Failure> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .read(true)
        .mode(0o640)
        .open(path)
        .doing(|| format!("cannot open {}", path.display()))
}

/// `alerts.ndjson.N`
fn numbered(path: &Path, n: u32) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

/// Where a batch is appended: a file, or a stand-in in tests.
trait Appendable: Write {
    fn cut_to(&mut self, len: u64) -> std::io::Result<()>;
    fn sync(&mut self) -> std::io::Result<()>;
}

impl Appendable for File {
    fn cut_to(&mut self, len: u64) -> std::io::Result<()> {
        self.set_len(len)
    }
    fn sync(&mut self) -> std::io::Result<()> {
        self.sync_data()
    }
}

/// Appends the events of `batches`, a line each, to a file `start` bytes long, under one sync,
/// whole or not at all: on any failure (a write cut short by a full disk, a failed fsync) the
/// file is cut back to `start`. Returns the write error, and the cut's own error if that
/// failed too (the next open repairs the file then).
fn append_whole(
    file: &mut impl Appendable,
    start: u64,
    batches: &[&[OutEvent]],
    fsync: bool,
) -> Result<(), (std::io::Error, Option<std::io::Error>)> {
    let written = batches
        .iter()
        .try_for_each(|events| write_lines(file, events))
        .and_then(|()| if fsync { file.sync() } else { Ok(()) });
    written.map_err(|err| (err, file.cut_to(start).err()))
}

/// Lines handed to one `writev`: two slices each, within Linux's 1,024 (`IOV_MAX`).
const LINES_PER_WRITE: usize = 512;

/// The bytes of `events` as lines: each payload and a newline.
fn lines_len(events: &[OutEvent]) -> u64 {
    events.iter().map(|e| e.payload().len() as u64 + 1).sum()
}

/// Writes each event's payload and a newline, in place, however few bytes each write takes.
fn write_lines(out: &mut impl Write, events: &[OutEvent]) -> std::io::Result<()> {
    let mut slices = Vec::with_capacity(2 * LINES_PER_WRITE.min(events.len()));
    // The line under way, and how much of it is written.
    let (mut line, mut done) = (0, 0);
    while line < events.len() {
        slices.clear();
        for (n, event) in events[line..].iter().take(LINES_PER_WRITE).enumerate() {
            let skip = if n == 0 { done } else { 0 };
            if skip < event.payload().len() {
                slices.push(IoSlice::new(&event.payload()[skip..]));
            }
            slices.push(IoSlice::new(b"\n"));
        }
        let mut written = match out.write_vectored(&slices) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(written) => written,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        };
        while written > 0 {
            let left = events[line].payload().len() + 1 - done;
            if written < left {
                done += written;
                break;
            }
            written -= left;
            line += 1;
            done = 0;
        }
    }
    Ok(())
}

/// Cuts a partial last line off `file` (one not ended by a newline); returns the length left.
fn repair_torn_tail(mut file: &File) -> std::io::Result<u64> {
    let len = file.metadata()?.len();
    let mut end = len;
    let mut chunk = vec![0u8; 64 << 10];
    // Walk back from the end to the last newline; a line may be longer than one chunk.
    while end > 0 {
        let from = end.saturating_sub(chunk.len() as u64);
        let part = &mut chunk[..(end - from) as usize];
        file.seek(SeekFrom::Start(from))?;
        file.read_exact(part)?;
        if let Some(at) = part.iter().rposition(|&b| b == b'\n') {
            end = from + at as u64 + 1;
            break;
        }
        end = from;
    }
    if end < len {
        file.set_len(end)?;
        file.sync_all()?;
        tracing::warn!(bytes = len - end, kept = end, "output file ended in a partial line (an interrupted write): cut back to the last whole line; those events were never acknowledged and are written again");
    }
    Ok(end)
}

impl FileState {
    /// Appends `batches` whole, under one sync, or none of them.
    fn write(&mut self, batches: &[&[OutEvent]]) -> Result<(), Failure> {
        let bytes: u64 = batches.iter().map(|events| lines_len(events)).sum();
        if self.max_size > 0 && self.size > 0 && self.size + bytes > self.max_size {
            self.rotate()?;
        }
        match append_whole(&mut self.file, self.size, batches, self.fsync) {
            Ok(()) => {
                self.size += bytes;
                Ok(())
            }
            Err((err, None)) => Err(Failure::new(
                format!(
                    "cannot write {} (the batch was taken back off the file)",
                    self.path.display()
                ),
                err,
            )),
            Err((err, Some(cut))) => {
                // The file may end in a partial line: repair it before anything else goes in.
                match repair_torn_tail(&self.file) {
                    Ok(size) => self.size = size,
                    Err(repair) => {
                        tracing::error!(path = %self.path.display(), error = %repair, "cannot repair the output file; retried before the next write")
                    }
                }
                Err(Failure::new(
                    format!(
                        "cannot write {} (taking the batch back failed too: {cut})",
                        self.path.display()
                    ),
                    err,
                ))
            }
        }
    }

    fn rotate(&mut self) -> Result<(), Failure> {
        self.file
            .sync_all()
            .doing(|| format!("cannot fsync {}", self.path.display()))?;
        let rename = |from: &Path, to: &Path| match std::fs::rename(from, to) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(Failure::new(
                format!("cannot rotate {} to {}", from.display(), to.display()),
                err,
            )),
            _ => Ok(()),
        };
        if self.keep == 0 {
            std::fs::remove_file(&self.path)
                .doing(|| format!("cannot remove {}", self.path.display()))?;
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
    fn id(&self) -> &SinkId {
        &self.id
    }

    async fn send(&mut self, events: &Events) -> Result<(), SinkError> {
        self.start(events).await.await
    }

    /// Hands the batch to the writer thread; the acknowledgement resolves once it is durable.
    async fn start(&mut self, events: &Events) -> Pending {
        if events.is_empty() {
            return Box::pin(std::future::ready(Ok(())));
        }
        self.acknowledgement(self.writer.append(events.clone()))
    }

    async fn flush(&mut self) -> Result<(), SinkError> {
        self.acknowledgement(self.writer.sync_all()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::Severity;

    fn event(payload: &str) -> OutEvent {
        OutEvent::of_user("a", "u", Severity::Low, payload)
    }

    fn batch(events: Vec<OutEvent>) -> Events {
        events.into()
    }

    /// Settings that sync every write: `max_size` 0 never rotates.
    fn settings(path: PathBuf, max_size: u64, keep: u32) -> FileSettings {
        FileSettings {
            path,
            max_size,
            keep,
            fsync: true,
        }
    }

    /// A disk that takes `room` more bytes, then fails like a full one.
    struct FullDisk {
        bytes: Vec<u8>,
        room: usize,
        syncs: usize,
    }

    impl Write for FullDisk {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if self.room == 0 {
                return Err(std::io::Error::from_raw_os_error(libc::ENOSPC));
            }
            let n = buf.len().min(self.room);
            self.bytes.extend_from_slice(&buf[..n]);
            self.room -= n;
            Ok(n)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Appendable for FullDisk {
        fn cut_to(&mut self, len: u64) -> std::io::Result<()> {
            self.bytes.truncate(len as usize);
            Ok(())
        }
        fn sync(&mut self) -> std::io::Result<()> {
            self.syncs += 1;
            Ok(())
        }
    }

    /// A file whose `writev` takes at most `per_call` bytes, across slices, as a real one may.
    struct Trickle {
        bytes: Vec<u8>,
        per_call: usize,
        calls: usize,
    }

    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.write_vectored(&[IoSlice::new(buf)])
        }
        fn write_vectored(&mut self, slices: &[IoSlice<'_>]) -> std::io::Result<usize> {
            self.calls += 1;
            let mut room = self.per_call;
            for slice in slices {
                let n = slice.len().min(room);
                self.bytes.extend_from_slice(&slice[..n]);
                room -= n;
            }
            Ok(self.per_call - room)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn every_line_is_written_whole_and_once_however_little_each_write_takes() {
        // Empty payloads, one-byte ones, long ones, and more lines than one writev carries.
        let payloads: Vec<String> = (0..1300)
            .map(|n| "x".repeat([0, 1, 7, 300][n % 4]) + &n.to_string())
            .chain([String::new(), "{}".into()])
            .collect();
        let events: Vec<OutEvent> = payloads.iter().map(|p| event(p)).collect();
        let expected: String = payloads.iter().map(|p| format!("{p}\n")).collect();
        for per_call in [1, 2, 3, 299, 4096, usize::MAX / 2] {
            let mut file = Trickle {
                bytes: Vec::new(),
                per_call,
                calls: 0,
            };
            write_lines(&mut file, &events).unwrap();
            assert_eq!(
                String::from_utf8(file.bytes).unwrap(),
                expected,
                "{per_call} bytes a write"
            );
            if per_call == usize::MAX / 2 {
                assert_eq!(file.calls, 3, "512 lines a writev");
            }
        }
        assert_eq!(lines_len(&events), expected.len() as u64);
    }

    #[test]
    fn a_batch_that_fills_the_disk_is_taken_back_whole() {
        let mut disk = FullDisk {
            bytes: b"{\"a\":1}\n".to_vec(),
            room: 12,
            syncs: 0,
        };
        let start = disk.bytes.len() as u64;
        let (err, cut) = append_whole(
            &mut disk,
            start,
            &[&[event("{\"b\":2}"), event("{\"c\":3}")]],
            true,
        )
        .unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOSPC));
        assert!(cut.is_none());
        assert_eq!(
            disk.bytes, b"{\"a\":1}\n",
            "nothing of the failed batch is left"
        );
        disk.room = 1 << 20;
        append_whole(
            &mut disk,
            start,
            &[&[event("{\"b\":2}"), event("{\"c\":3}")]],
            true,
        )
        .unwrap();
        assert_eq!(disk.bytes, b"{\"a\":1}\n{\"b\":2}\n{\"c\":3}\n");
    }

    #[test]
    fn batches_written_together_share_one_sync_and_fail_together() {
        let mut disk = FullDisk {
            bytes: Vec::new(),
            room: 1 << 20,
            syncs: 0,
        };
        let (first, second) = ([event("{\"a\":1}")], [event("{\"b\":2}"), event("{}")]);
        append_whole(&mut disk, 0, &[&first, &second], true).unwrap();
        assert_eq!(disk.bytes, b"{\"a\":1}\n{\"b\":2}\n{}\n");
        assert_eq!(disk.syncs, 1);

        // The second batch fills the disk: the first goes too, both are sent again.
        let start = disk.bytes.len() as u64;
        disk.room = 10;
        append_whole(&mut disk, start, &[&first, &second], true).unwrap_err();
        assert_eq!(disk.bytes.len() as u64, start, "the group taken back whole");
        assert_eq!(disk.syncs, 1, "nothing synced");
    }

    #[test]
    fn an_unusable_path_names_the_sink_the_path_and_the_cause_once() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("plain-file");
        std::fs::write(&blocker, b"").unwrap();
        let config = settings(blocker.join("alerts.ndjson"), 0, 1);
        let Err(err) = FileSink::open("f", Format::Ecs, &config) else {
            panic!("a file under a plain file was opened");
        };
        let Some(super::super::Cause::Io(cause)) = err.failure.cause.as_deref() else {
            panic!("not an I/O cause: {err:?}");
        };
        let shown = crate::errors::Chain(&err).to_string();
        let reason = cause.to_string();
        assert_eq!(
            shown,
            format!("sink 'f': cannot create {}: {reason}", blocker.display())
        );
    }

    #[tokio::test]
    async fn a_partial_last_line_is_repaired_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alerts.ndjson");
        let long_partial = "x".repeat(200 << 10);
        std::fs::write(&path, format!("{{\"a\":1}}\n{{\"b\":2}}\n{long_partial}")).unwrap();
        let config = settings(path.clone(), 0, 1);
        let mut sink = FileSink::open("f", Format::Ecs, &config).unwrap();
        sink.send(&batch(vec![event("{\"c\":3}")])).await.unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"a\":1}\n{\"b\":2}\n{\"c\":3}\n"
        );
        std::fs::write(&path, "no newline at all").unwrap();
        drop(sink);
        FileSink::open("f", Format::Ecs, &config).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "");
    }

    #[tokio::test]
    async fn appends_lines_with_mode_0640_and_rotates() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out/alerts.ndjson");
        let config = settings(path.clone(), 20, 2);
        let mut sink = FileSink::open("f", Format::Ecs, &config).unwrap();
        sink.send(&batch(vec![event("0123456789"), event("abc")]))
            .await
            .unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "0123456789\nabc\n");
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o640
        );
        sink.send(&batch(vec![event("second-batch")]))
            .await
            .unwrap();
        sink.send(&batch(vec![event("third-batch")])).await.unwrap();
        sink.send(&batch(vec![event("fourth-batch")]))
            .await
            .unwrap();
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

    #[tokio::test]
    async fn batches_started_together_land_in_order_and_each_ack_waits_for_its_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alerts.ndjson");
        let mut sink = FileSink::open("f", Format::Ecs, &settings(path.clone(), 0, 0)).unwrap();
        let mut acks = Vec::new();
        for n in 0..50 {
            acks.push(sink.start(&batch(vec![event(&format!("batch-{n}"))])).await);
        }
        let second_last = acks.remove(48);
        second_last.await.unwrap();
        let written = std::fs::read_to_string(&path).unwrap();
        let expected: String = (0..49).map(|n| format!("batch-{n}\n")).collect();
        assert!(
            written.starts_with(&expected),
            "an acknowledged batch is on disk after every batch started before it: {written:?}"
        );
        for ack in acks {
            ack.await.unwrap();
        }
        sink.flush().await.unwrap();
        let expected: String = (0..50).map(|n| format!("batch-{n}\n")).collect();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), expected);
    }
}
