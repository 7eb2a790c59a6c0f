//! The alerts in one response's chunks, as the [`PageReader`] finds them. An alert whole in a
//! large chunk is read where it lies, in the one pass that also finds its end, and keeps a
//! slice of the chunk instead of a copy; one cut by a chunk's end, or in a small chunk, is
//! gathered by the reader and read from its own copy. Small chunks are gathered into large ones
//! first ([`Gathered`]). Pure: chunks in, alerts out.

use bytes::{Bytes, BytesMut};

use super::odata::read_alert;
use super::stream::{Elements, PageReader, StreamError};
use super::PolledAlert;

/// Alerts in a smaller chunk are copied out. A kept slice keeps its chunk's whole buffer, which
/// for a small answer (one alert in a connection's read buffer of some KiB) is mostly not the
/// alert; a large chunk is mostly alerts that are kept and let go together.
pub const SHARED_CHUNK_MIN: usize = 64 * 1024;

/// A body's chunks as they are read: one of at least [`SHARED_CHUNK_MIN`] bytes as it came,
/// smaller ones copied together until they make one that large. A deflated answer arrives 4 KiB
/// at a time (reqwest's inflating buffer); gathered, its alerts are read in place like a plain
/// answer's, for one copy of its bytes instead of a copy of each alert after a pass to find
/// where it ends. What is gathered and not yet read (under 64 KiB a poll) is not in the budget.
#[derive(Debug)]
pub struct Gathered {
    gathering: BytesMut,
    min: usize,
}

impl Default for Gathered {
    fn default() -> Self {
        Gathered::up_to(SHARED_CHUNK_MIN)
    }
}

impl Gathered {
    /// Gathers small chunks into chunks of at least `min` bytes.
    pub fn up_to(min: usize) -> Gathered {
        Gathered {
            gathering: BytesMut::new(),
            min,
        }
    }

    /// The next chunk to read, once there is one.
    pub fn push(&mut self, chunk: Bytes) -> Option<Bytes> {
        if self.gathering.is_empty() {
            if chunk.len() >= self.min {
                return Some(chunk);
            }
            // Room for one small chunk past `min`, so that the last one rarely moves it all.
            self.gathering = BytesMut::with_capacity(self.min + (16 << 10));
        }
        self.gathering.extend_from_slice(&chunk);
        (self.gathering.len() >= self.min).then(|| self.gathering.split().freeze())
    }

    /// What is gathered at the body's end.
    pub fn rest(&mut self) -> Option<Bytes> {
        (!self.gathering.is_empty()).then(|| self.gathering.split().freeze())
    }
}

/// What the chunks fed so far held.
#[derive(Debug)]
pub struct ChunkAlerts {
    /// Alerts read, in the order sent.
    pub alerts: Vec<PolledAlert>,
    /// Elements that are JSON but no readable alert, each described.
    pub rejected: Vec<String>,
    /// The first element that is not JSON: the whole response is broken.
    pub malformed: Option<String>,
    /// Elements read so far: the next one's index in the response.
    index: usize,
    /// Chunks of at least this many bytes are read in place.
    shared_min: usize,
}

impl Default for ChunkAlerts {
    fn default() -> Self {
        ChunkAlerts::sharing_from(SHARED_CHUNK_MIN)
    }
}

impl ChunkAlerts {
    /// Reads alerts in place in chunks of at least `shared_min` bytes.
    pub fn sharing_from(shared_min: usize) -> ChunkAlerts {
        ChunkAlerts {
            alerts: Vec::new(),
            rejected: Vec::new(),
            malformed: None,
            index: 0,
            shared_min,
        }
    }

    /// Feeds one chunk of the body to `reader`, reading the alerts it completes.
    pub fn feed(&mut self, reader: &mut PageReader, chunk: &Bytes) -> Result<(), StreamError> {
        if chunk.len() < self.shared_min {
            return reader.feed(chunk, &mut |bytes: &[u8]| self.read_copy(bytes));
        }
        reader.feed(
            chunk,
            &mut InPlace {
                chunk,
                text: None,
                out: self,
            },
        )
    }

    fn read_copy(&mut self, bytes: &[u8]) {
        match read_alert(self.index, bytes) {
            Ok(Ok(alert)) => self.alerts.push(alert),
            Ok(Err(reason)) => self.rejected.push(reason),
            Err(reason) => {
                self.malformed.get_or_insert(reason);
            }
        }
        self.index += 1;
    }
}

/// Elements read where they lie in `chunk` when they can be.
struct InPlace<'a> {
    chunk: &'a Bytes,
    /// The chunk checked as text from its first element on (a chunk may begin or end inside a
    /// character): where that is, and the text.
    text: Option<(usize, &'a str)>,
    out: &'a mut ChunkAlerts,
}

impl Elements for InPlace<'_> {
    fn in_place(&mut self, at: usize) -> Option<usize> {
        let chunk = self.chunk;
        let (from, text) = *self.text.get_or_insert_with(|| (at, text_from(chunk, at)));
        let (alert, len) = PolledAlert::in_place(chunk, text.get(at.checked_sub(from)?..)?)?;
        self.out.alerts.push(alert);
        self.out.index += 1;
        Some(at + len)
    }

    fn whole(&mut self, bytes: &[u8]) {
        self.out.read_copy(bytes)
    }
}

/// The text `chunk` holds from `at` on, up to its first byte that is not part of one (a
/// character the next chunk completes, or no text at all, which the copying reading reports).
fn text_from(chunk: &[u8], at: usize) -> &str {
    let bytes = chunk.get(at..).unwrap_or_default();
    // The fast check says only whether the whole is text; std's finds where it stops.
    if let Ok(text) = simdutf8::basic::from_utf8(bytes) {
        return text;
    }
    match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(err) => std::str::from_utf8(&bytes[..err.valid_up_to()]).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inside(alert: &PolledAlert, chunk: &Bytes) -> bool {
        let range = chunk.as_ptr_range();
        range.contains(&alert.text().as_ptr())
    }

    #[test]
    fn alerts_whole_in_a_large_chunk_share_it_and_the_others_are_copied() {
        let alert = |i: usize| format!(r#"{{"id":"da{i}","title":"{}"}}"#, "é".repeat(40));
        let texts: Vec<String> = (0..3).map(alert).collect();
        let body = format!(r#"{{"value":[{}]}}"#, texts.join(","));
        // Cut inside the second alert, and inside a two-byte character of it.
        let cut = body.find("da1").unwrap() + 21;
        assert!(!body.is_char_boundary(cut));
        let (first, second) = (
            Bytes::copy_from_slice(&body.as_bytes()[..cut]),
            Bytes::copy_from_slice(&body.as_bytes()[cut..]),
        );
        let mut reader = PageReader::new();
        let mut read = ChunkAlerts::sharing_from(0);
        read.feed(&mut reader, &first).unwrap();
        read.feed(&mut reader, &second).unwrap();
        reader.finish().unwrap();
        let read_texts: Vec<&str> = read.alerts.iter().map(PolledAlert::text).collect();
        assert_eq!(read_texts, texts);
        assert!(inside(&read.alerts[0], &first));
        assert!(!inside(&read.alerts[1], &first) && !inside(&read.alerts[1], &second));
        assert!(inside(&read.alerts[2], &second));

        let mut reader = PageReader::new();
        let mut small = ChunkAlerts::default();
        small.feed(&mut reader, &first).unwrap();
        assert!(
            !inside(&small.alerts[0], &first),
            "a small chunk is copied from"
        );
    }

    #[test]
    fn small_chunks_are_gathered_into_one_read_in_place_and_a_large_one_passes() {
        let alerts: Vec<String> = (0..40)
            .map(|i| format!(r#"{{"id":"da{i}","title":"{}"}}"#, "x".repeat(30)))
            .collect();
        let body = format!(r#"{{"value":[{}]}}"#, alerts.join(","));
        let mut gathered = Gathered::up_to(1024);
        let mut chunks = Vec::new();
        for piece in body.as_bytes().chunks(100) {
            chunks.extend(gathered.push(Bytes::copy_from_slice(piece)));
        }
        chunks.extend(gathered.rest());
        assert!(chunks.len() >= 2, "{} chunks", chunks.len());
        assert!(chunks[..chunks.len() - 1]
            .iter()
            .all(|c| (1024..1124).contains(&c.len())));
        assert_eq!(
            chunks.concat(),
            body.as_bytes(),
            "every byte once, in order"
        );

        let mut reader = PageReader::new();
        let mut read = ChunkAlerts::sharing_from(1024);
        for chunk in &chunks {
            read.feed(&mut reader, chunk).unwrap();
        }
        reader.finish().unwrap();
        let texts: Vec<&str> = read.alerts.iter().map(PolledAlert::text).collect();
        assert_eq!(texts, alerts);
        assert!(inside(&read.alerts[1], &chunks[0]), "read where it lies");

        let large = Bytes::from(vec![b' '; 2048]);
        assert_eq!(
            gathered.push(large.clone()).unwrap().as_ptr(),
            large.as_ptr()
        );
        assert!(gathered.rest().is_none());
    }
}
