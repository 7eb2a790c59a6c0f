//! The OData collection envelope read as it arrives: bytes go in, in chunks cut anywhere (inside
//! a string, an escape, a multi-byte character), and each element of the `value` array comes out
//! as soon as its last byte is in. A response is never held whole: what is kept between chunks is
//! the element being read and the `@odata.nextLink`. Pure: no I/O, no clock.
//!
//! This reads the envelope's structure only (objects, arrays, strings, escapes, scalars); each
//! element is then parsed, and so validated, on its own. An element may be offered to its
//! reader first ([`Elements::in_place`]): one whole in the chunk is then parsed where it lies,
//! the parse finding its end, instead of being scanned here and parsed again. Anything the
//! envelope cannot be (not an object, no `value` array, stray bytes between elements, a body
//! that ends early) is an error for the whole response, as for `odata::parse_page`, which reads
//! a whole body the same way.

use crate::json::blocks;
use crate::json::escape::first_escape;

/// Where a [`PageReader`] puts the elements of `value` it finds.
pub trait Elements {
    /// An element that starts at byte `at` of the chunk being fed: read where it lies when it
    /// ends in the chunk, returning the index just past its last byte (and then read once, and
    /// whole); None leaves it to the reader, which gathers it, across chunks if need be, for
    /// [`Elements::whole`].
    fn in_place(&mut self, at: usize) -> Option<usize>;
    /// An element gathered whole.
    fn whole(&mut self, bytes: &[u8]);
}

/// A function given every element whole.
impl<F: FnMut(&[u8])> Elements for F {
    fn in_place(&mut self, _: usize) -> Option<usize> {
        None
    }

    fn whole(&mut self, bytes: &[u8]) {
        self(bytes)
    }
}

/// What the envelope had besides its elements.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Envelope {
    pub next_link: Option<String>,
    /// Elements read from the `value` array.
    pub elements: usize,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StreamError {
    #[error("response body is not an OData collection: {0}")]
    Malformed(String),
    #[error("response body cut short after {bytes} bytes (inside {inside})")]
    Truncated { bytes: u64, inside: &'static str },
    #[error("response has no 'value' array")]
    NoValue,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before the top-level `{`.
    Start,
    /// Inside the top object, before a key or its closing `}`.
    Key { first: bool },
    /// Before the `:` after a key.
    Colon,
    /// Before a top-level value.
    Value,
    /// Inside a top-level value that is skipped, or the nextLink being captured.
    InValue,
    /// After a top-level value: `,` or `}`.
    AfterValue,
    /// Inside `value`, before an element or the closing `]`.
    Element { first: bool },
    /// Inside an element.
    InElement,
    /// After an element: `,` or `]`.
    AfterElement,
    /// After the top-level `}`: only white space may follow.
    Done,
}

/// Where a JSON value being scanned stands.
#[derive(Debug, Default, Clone, Copy)]
struct Scan {
    /// Open `{`/`[` not closed yet.
    depth: u32,
    in_string: bool,
    escaped: bool,
    /// A number, `true`, `false` or `null`: it ends before the next delimiter.
    scalar: bool,
}

/// What a top-level value is kept for. Every member is kept until it ends, to be checked as
/// JSON (a whole-body parse would refuse a body with a broken member too); the envelope's members
/// are small, and one over [`MEMBER_LIMIT`] is refused rather than held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keep {
    Checked,
    NextLink,
}

/// The most a member of the envelope other than `value` may hold.
const MEMBER_LIMIT: usize = 1 << 20;

pub struct PageReader {
    state: State,
    scan: Scan,
    keep: Keep,
    /// The key being read, as sent (with its quotes, escapes undecoded).
    key: Vec<u8>,
    /// The last key read, decoded.
    member: String,
    key_scan: Scan,
    /// Bytes of the element (or nextLink) begun in an earlier chunk.
    pending: Vec<u8>,
    next_link: Option<Vec<u8>>,
    seen_value: bool,
    elements: usize,
    consumed: u64,
}

impl Default for PageReader {
    fn default() -> Self {
        PageReader::new()
    }
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

impl Scan {
    fn start(b: u8) -> Scan {
        match b {
            b'{' | b'[' => Scan {
                depth: 1,
                ..Scan::default()
            },
            b'"' => Scan {
                in_string: true,
                ..Scan::default()
            },
            _ => Scan {
                scalar: true,
                ..Scan::default()
            },
        }
    }

    /// Feeds `bytes` from index `from` (the value's first byte already taken by [`Scan::start`]);
    /// returns the index just past the value's last byte when it ends in `bytes`. Inside an
    /// object or array (an alert), 64 bytes a step; a block with a backslash, the end of the
    /// chunk and other values byte by byte.
    fn run(&mut self, bytes: &[u8], mut at: usize) -> Option<usize> {
        loop {
            if let Some(block) = bytes[at.min(bytes.len())..].first_chunk::<64>() {
                if !self.scalar && !self.escaped && self.depth > 0 {
                    let mut inside = blocks::Inside {
                        depth: self.depth,
                        in_string: self.in_string,
                    };
                    let step = blocks::step(block, &mut inside);
                    (self.depth, self.in_string) = (inside.depth, inside.in_string);
                    match step {
                        blocks::Step::Ends(end) => return Some(at + end + 1),
                        blocks::Step::Continues => {
                            at += 64;
                            continue;
                        }
                        blocks::Step::HasEscape => {}
                    }
                }
            }
            let stop = (at + 64).min(bytes.len());
            if let Some(end) = self.run_bytes(&bytes[..stop], at) {
                return Some(end);
            }
            if stop == bytes.len() {
                return None;
            }
            at = stop;
        }
    }

    /// [`Scan::run`] a byte at a time (a string jumped over to its next quote or backslash).
    fn run_bytes(&mut self, bytes: &[u8], mut at: usize) -> Option<usize> {
        while at < bytes.len() {
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                    at += 1;
                    continue;
                }
                // Strings are most of an alert: jump to the next quote or backslash, eight bytes
                // a step (short strings cost a call to memchr more than its scan). The scan also
                // stops at a control character, which is passed over here: the element's own
                // parse refuses it.
                match first_escape(&bytes[at..]) {
                    None => return None,
                    Some(offset) => {
                        at += offset;
                        match bytes[at] {
                            b'\\' => self.escaped = true,
                            b'"' => {
                                self.in_string = false;
                                if self.depth == 0 {
                                    return Some(at + 1);
                                }
                            }
                            _ => {}
                        }
                        at += 1;
                    }
                }
                continue;
            }
            let b = bytes[at];
            if self.scalar {
                if is_ws(b) || matches!(b, b',' | b'}' | b']') {
                    return Some(at);
                }
                at += 1;
                continue;
            }
            match b {
                b'"' => self.in_string = true,
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' => {
                    self.depth -= 1;
                    if self.depth == 0 {
                        return Some(at + 1);
                    }
                }
                _ => {}
            }
            at += 1;
        }
        None
    }

    fn inside(&self) -> &'static str {
        if self.in_string {
            "a string"
        } else if self.depth > 0 {
            "an object or array"
        } else {
            "a value"
        }
    }
}

impl PageReader {
    pub fn new() -> PageReader {
        PageReader {
            state: State::Start,
            scan: Scan::default(),
            keep: Keep::Checked,
            key: Vec::new(),
            member: String::new(),
            key_scan: Scan::default(),
            pending: Vec::new(),
            next_link: None,
            seen_value: false,
            elements: 0,
            consumed: 0,
        }
    }

    /// Bytes of an unfinished element held between chunks (what a budget must count).
    pub fn pending_bytes(&self) -> usize {
        self.pending.len()
    }

    /// Reads one chunk; each `value` element completed in it goes to `elements`.
    pub fn feed(&mut self, chunk: &[u8], elements: &mut dyn Elements) -> Result<(), StreamError> {
        let mut at = 0;
        while at < chunk.len() {
            at = self.step(chunk, at, elements)?;
        }
        self.consumed += chunk.len() as u64;
        Ok(())
    }

    fn unexpected(&self, b: u8, expected: &str) -> StreamError {
        StreamError::Malformed(format!(
            "expected {expected}, found {:?} at byte {}",
            char::from(b),
            self.consumed
        ))
    }

    /// Handles the bytes of `chunk` from `at` on in the current state; returns where it stopped.
    fn step(
        &mut self,
        chunk: &[u8],
        at: usize,
        elements: &mut dyn Elements,
    ) -> Result<usize, StreamError> {
        let b = chunk[at];
        match self.state {
            // A key cut by the chunk boundary: white space in it is part of it.
            State::Colon if self.key_scan.in_string => self.read_key(chunk, at),
            State::Start
            | State::Key { .. }
            | State::Colon
            | State::Value
            | State::AfterValue
            | State::Element { .. }
            | State::AfterElement
            | State::Done
                if is_ws(b) =>
            {
                Ok(at + 1)
            }
            // A UTF-8 byte order mark before the document.
            State::Start if b == 0xEF || b == 0xBB || b == 0xBF => Ok(at + 1),
            State::Start if b == b'{' => {
                self.state = State::Key { first: true };
                Ok(at + 1)
            }
            State::Start => Err(self.unexpected(b, "'{'")),
            State::Key { first } => match b {
                b'"' => self.start_key(chunk, at),
                b'}' if first => self.close(at),
                _ => Err(self.unexpected(b, "a key")),
            },
            State::Colon if b == b':' => {
                self.state = State::Value;
                Ok(at + 1)
            }
            State::Colon => Err(self.unexpected(b, "':'")),
            State::Value => self.start_value(b, chunk, at, elements),
            State::InValue => self.scan_value(chunk, at, at, elements),
            State::AfterValue => match b {
                b',' => {
                    self.state = State::Key { first: false };
                    Ok(at + 1)
                }
                b'}' => self.close(at),
                _ => Err(self.unexpected(b, "',' or '}'")),
            },
            State::Element { first } => match b {
                b']' if first => {
                    self.state = State::AfterValue;
                    Ok(at + 1)
                }
                b',' | b']' | b'}' | b':' => Err(self.unexpected(b, "an element")),
                _ => {
                    let read = elements.in_place(at);
                    if let Some(end) = read.filter(|&end| end > at && end <= chunk.len()) {
                        self.elements += 1;
                        self.state = State::AfterElement;
                        return Ok(end);
                    }
                    self.pending.clear();
                    self.scan = Scan::start(b);
                    self.state = State::InElement;
                    self.scan_value(chunk, at, at + 1, elements)
                }
            },
            State::InElement => self.scan_value(chunk, at, at, elements),
            State::AfterElement => match b {
                b',' => {
                    self.state = State::Element { first: false };
                    Ok(at + 1)
                }
                b']' => {
                    self.state = State::AfterValue;
                    Ok(at + 1)
                }
                _ => Err(self.unexpected(b, "',' or ']'")),
            },
            State::Done => Err(self.unexpected(b, "nothing after the closing '}'")),
        }
    }

    /// A member name's opening quote: the name is read, possibly across chunks.
    fn start_key(&mut self, chunk: &[u8], at: usize) -> Result<usize, StreamError> {
        self.key.clear();
        self.key.push(b'"');
        self.key_scan = Scan::start(b'"');
        self.state = State::Colon;
        self.read_key(chunk, at + 1)
    }

    /// A member's value starts at `at` with `b`: the `value` array is opened to be read element by
    /// element; any other value is scanned whole (and `@odata.nextLink`'s kept).
    fn start_value(
        &mut self,
        b: u8,
        chunk: &[u8],
        at: usize,
        elements: &mut dyn Elements,
    ) -> Result<usize, StreamError> {
        if self.member == "value" {
            if self.seen_value {
                return Err(StreamError::Malformed("two 'value' members".into()));
            }
            self.seen_value = true;
            if b != b'[' {
                return Err(StreamError::NoValue);
            }
            self.state = State::Element { first: true };
            return Ok(at + 1);
        }
        self.keep = if self.member == "@odata.nextLink" {
            Keep::NextLink
        } else {
            Keep::Checked
        };
        self.pending.clear();
        self.scan = Scan::start(b);
        self.state = State::InValue;
        self.scan_value(chunk, at, at + 1, elements)
    }

    fn read_key(&mut self, chunk: &[u8], from: usize) -> Result<usize, StreamError> {
        match self.key_scan.run(chunk, from) {
            Some(end) => {
                self.key.extend_from_slice(&chunk[from..end]);
                self.member = serde_json::from_slice(&self.key)
                    .map_err(|err| StreamError::Malformed(format!("a member name: {err}")))?;
                Ok(end)
            }
            None => {
                self.key.extend_from_slice(&chunk[from..]);
                Ok(chunk.len())
            }
        }
    }

    fn close(&mut self, at: usize) -> Result<usize, StreamError> {
        if !self.seen_value {
            return Err(StreamError::NoValue);
        }
        self.state = State::Done;
        Ok(at + 1)
    }

    /// Scans a value that started at `start` (in this chunk, or earlier when `start == from`
    /// and bytes are pending), resuming at `from`.
    fn scan_value(
        &mut self,
        chunk: &[u8],
        start: usize,
        from: usize,
        elements: &mut dyn Elements,
    ) -> Result<usize, StreamError> {
        let in_element = self.state == State::InElement;
        match self.scan.run(chunk, from) {
            None => {
                self.pending.extend_from_slice(&chunk[start..]);
                if !in_element && self.pending.len() > MEMBER_LIMIT {
                    return Err(StreamError::Malformed(format!(
                        "an envelope member over {MEMBER_LIMIT} bytes"
                    )));
                }
                Ok(chunk.len())
            }
            Some(end) => {
                let whole: &[u8] = if self.pending.is_empty() {
                    &chunk[start..end]
                } else {
                    self.pending.extend_from_slice(&chunk[start..end]);
                    &self.pending
                };
                if in_element {
                    elements.whole(whole);
                    self.elements += 1;
                    self.state = State::AfterElement;
                } else {
                    if self.keep == Keep::NextLink {
                        self.next_link = Some(whole.to_vec());
                    } else if let Err(err) = serde_json::from_slice::<serde::de::IgnoredAny>(whole)
                    {
                        return Err(StreamError::Malformed(format!(
                            "member {}: {err}",
                            self.member
                        )));
                    }
                    self.state = State::AfterValue;
                }
                self.pending.clear();
                Ok(end)
            }
        }
    }

    /// The end of the body: the envelope must be complete.
    pub fn finish(self) -> Result<Envelope, StreamError> {
        let inside = match self.state {
            State::Done => {
                let next_link = match self.next_link {
                    None => None,
                    Some(bytes) if bytes == b"null" => None,
                    Some(bytes) => {
                        Some(serde_json::from_slice::<String>(&bytes).map_err(|err| {
                            StreamError::Malformed(format!("@odata.nextLink: {err}"))
                        })?)
                    }
                };
                return Ok(Envelope {
                    next_link,
                    elements: self.elements,
                });
            }
            State::Start => "nothing (an empty body)",
            State::InElement => "an alert",
            State::InValue => self.scan.inside(),
            State::Element { .. } | State::AfterElement => "the value array",
            _ => "the envelope",
        };
        Err(StreamError::Truncated {
            bytes: self.consumed,
            inside,
        })
    }
}

#[cfg(test)]
#[path = "stream_tests.rs"]
mod tests;
