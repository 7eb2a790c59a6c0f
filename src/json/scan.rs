//! One JSON object read in one pass: each member's name and its value as a slice of the text,
//! the whole checked against the JSON grammar (RFC 8259) on the way, as serde_json checks it.
//! An alert is read this way once ([`Cursor`]: the alert opens its evidence array and items in
//! the same pass); its typed fields come from the slices (a string without escapes is already
//! its own value), so no member is scanned twice to find where it ends. Pure: text in, slices
//! out.

use super::escape::first_escape;

/// serde_json's limit: deeper nesting is refused rather than followed.
const MAX_DEPTH: usize = 128;

/// Where the text stops being JSON, and what was expected there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected {expected} at byte {at}")]
pub struct Syntax {
    pub at: usize,
    pub expected: &'static str,
}

/// What a value is, as far as a reader of the slice needs to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A string; `escaped` when it holds a `\` escape (its slice is then not its value).
    String {
        escaped: bool,
    },
    Number,
    Bool,
    Null,
    Object,
    Array,
}

/// One member of an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member<'a> {
    /// The name between its quotes, escapes undecoded.
    pub name: &'a str,
    pub name_escaped: bool,
    /// The value as sent, e.g. `"High"`, `null`, `[{…}]`.
    pub value: &'a str,
    pub kind: Kind,
}

/// What `text` holds at its top level.
pub enum Top<'a> {
    Object(Members<'a>),
    /// Valid JSON, but not an object.
    Other(Kind),
}

/// Reads the top of `text`: an object's members one by one, or the kind of any other value
/// (checked whole, so that "not an object" is never said of text that is not JSON).
pub fn top(text: &str) -> Result<Top<'_>, Syntax> {
    let mut cursor = Cursor::new(text);
    if cursor.peek() == Some(b'{') {
        cursor.open()?;
        return Ok(Top::Object(Members {
            cursor,
            done: false,
        }));
    }
    let (_, kind) = cursor.skip()?;
    cursor.finish()?;
    Ok(Top::Other(kind))
}

/// The members of an object, in the order written. After the last one, the end of the object
/// and of the text (only white space may follow) is checked: an error is the last item.
pub struct Members<'a> {
    cursor: Cursor<'a>,
    done: bool,
}

impl<'a> Iterator for Members<'a> {
    type Item = Result<Member<'a>, Syntax>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let read = self.read();
        if !matches!(read, Ok(Some(_))) {
            self.done = true;
        }
        read.transpose()
    }
}

impl<'a> Members<'a> {
    fn read(&mut self) -> Result<Option<Member<'a>>, Syntax> {
        let Some((name, name_escaped)) = self.cursor.next_name()? else {
            return self.cursor.finish().map(|()| None);
        };
        let (value, kind) = self.cursor.skip()?;
        Ok(Some(Member {
            name,
            name_escaped,
            value,
            kind,
        }))
    }
}

/// A checked reader of one JSON text, pulled value by value: a caller opens the objects and
/// arrays it wants to read inside and skips (still checking) the values it does not, so nested
/// content is read in the same single pass as the rest. After [`Cursor::next_name`] or a true
/// [`Cursor::next_element`], exactly one value must be read: skipped, or opened and read to its
/// end.
pub struct Cursor<'a> {
    text: &'a str,
    at: usize,
    /// Objects and arrays open.
    depth: usize,
    /// Which of the open containers are objects, a bit per depth (at most [`MAX_DEPTH`] =
    /// 128): a member is read only in an object, an element only in an array, and each closes
    /// only with its own bracket.
    objects: u128,
    /// A value was read in the open container: the next member or element needs a `,`.
    comma: bool,
}

impl<'a> Cursor<'a> {
    pub fn new(text: &'a str) -> Cursor<'a> {
        Cursor {
            text,
            at: 0,
            depth: 0,
            objects: 0,
            comma: false,
        }
    }

    /// Whether the innermost open container is an object.
    #[inline(always)]
    fn in_object(&self) -> bool {
        self.depth > 0 && (self.objects >> (self.depth - 1)) & 1 == 1
    }

    /// The first byte of the next value, white space passed, not consumed.
    #[inline]
    pub fn peek(&mut self) -> Option<u8> {
        self.at = skip_ws(self.text.as_bytes(), self.at);
        self.text.as_bytes().get(self.at).copied()
    }

    /// Where the cursor is: after [`Cursor::peek`], the first byte of the next value.
    #[inline]
    pub fn position(&self) -> usize {
        self.at
    }

    /// The text from `from` to where the cursor is: a value just read, as sent.
    #[inline]
    pub fn since(&self, from: usize) -> &'a str {
        between(self.text, from, self.at)
    }

    /// Enters the object or array the next value opens.
    #[inline]
    pub fn open(&mut self) -> Result<(), Syntax> {
        match self.peek() {
            Some(b'{' | b'[') if self.depth >= MAX_DEPTH => {
                Err(expected(self.at, "less deeply nested values"))
            }
            Some(bracket @ (b'{' | b'[')) => {
                let bit = 1u128 << self.depth;
                if bracket == b'{' {
                    self.objects |= bit;
                } else {
                    self.objects &= !bit;
                }
                self.at += 1;
                self.depth += 1;
                self.comma = false;
                Ok(())
            }
            _ => Err(expected(self.at, "an object or an array")),
        }
    }

    /// The next member's name in the open object (between its quotes, and whether it holds an
    /// escape), the cursor then at its value; None when the object closes (consumed).
    #[inline(always)]
    pub fn next_name(&mut self) -> Result<Option<(&'a str, bool)>, Syntax> {
        if !self.in_object() {
            return Err(expected(self.at, "an object"));
        }
        if !self.next(b'}', "',' or '}'")? {
            return Ok(None);
        }
        let bytes = self.text.as_bytes();
        if bytes.get(self.at) != Some(&b'"') {
            return Err(expected(self.at, "a member name"));
        }
        let (name_end, escaped) = string(bytes, self.at + 1)?;
        let colon = skip_ws(bytes, name_end);
        if bytes.get(colon) != Some(&b':') {
            return Err(expected(colon, "':'"));
        }
        let name = between(self.text, self.at + 1, name_end - 1);
        self.at = skip_ws(bytes, colon + 1);
        self.comma = false;
        Ok(Some((name, escaped)))
    }

    /// The next member of the open object, its value skipped (checked whole): what
    /// [`Cursor::next_name`] then [`Cursor::skip`] give, in one step whose position stays in a
    /// register (an evidence item's two dozen members are read this way); None when the
    /// object closes (consumed).
    #[inline(always)]
    pub fn next_member(&mut self) -> Result<Option<Member<'a>>, Syntax> {
        if !self.in_object() {
            return Err(expected(self.at, "an object"));
        }
        let bytes = self.text.as_bytes();
        let mut at = skip_ws(bytes, self.at);
        match bytes.get(at) {
            Some(b'}') => {
                self.at = at + 1;
                self.depth = self.depth.saturating_sub(1);
                self.comma = true;
                return Ok(None);
            }
            Some(b',') if self.comma => at = skip_ws(bytes, at + 1),
            _ if !self.comma => {}
            _ => return Err(expected(at, "',' or '}'")),
        }
        if bytes.get(at) != Some(&b'"') {
            return Err(expected(at, "a member name"));
        }
        let (name_end, name_escaped) = string(bytes, at + 1)?;
        let colon = skip_ws(bytes, name_end);
        if bytes.get(colon) != Some(&b':') {
            return Err(expected(colon, "':'"));
        }
        let start = skip_ws(bytes, colon + 1);
        let (end, kind) = value(bytes, start, self.depth)?;
        self.at = end;
        self.comma = true;
        Ok(Some(Member {
            name: between(self.text, at + 1, name_end - 1),
            name_escaped,
            value: between(self.text, start, end),
            kind,
        }))
    }

    /// Whether the open array has another element (the cursor then at it); false when the
    /// array closes (consumed).
    #[inline]
    pub fn next_element(&mut self) -> Result<bool, Syntax> {
        if self.depth == 0 || self.in_object() {
            return Err(expected(self.at, "an array"));
        }
        let more = self.next(b']', "',' or ']'")?;
        if more {
            // The element is read next; a `,` is due only after it.
            self.comma = false;
        }
        Ok(more)
    }

    /// Past the `,` before the next member or element; false at the container's end.
    fn next(&mut self, close: u8, expecting: &'static str) -> Result<bool, Syntax> {
        match self.peek() {
            Some(b) if b == close => {
                self.at += 1;
                // Never below zero, whatever a caller does out of order.
                self.depth = self.depth.saturating_sub(1);
                self.comma = true;
                Ok(false)
            }
            Some(b',') if self.comma => {
                self.at = skip_ws(self.text.as_bytes(), self.at + 1);
                Ok(true)
            }
            _ if !self.comma => Ok(true),
            _ => Err(expected(self.at, expecting)),
        }
    }

    /// Skips the next value, checked whole: its text as sent and its kind.
    #[inline(always)]
    pub fn skip(&mut self) -> Result<(&'a str, Kind), Syntax> {
        let start = skip_ws(self.text.as_bytes(), self.at);
        let (end, kind) = value(self.text.as_bytes(), start, self.depth)?;
        self.at = end;
        self.comma = true;
        Ok((between(self.text, start, end), kind))
    }

    /// Only white space may follow the value read.
    pub fn finish(&mut self) -> Result<(), Syntax> {
        end_of_text(self.text.as_bytes(), self.at)
    }
}

/// `text[from..to]`, where both ends sit next to a byte the scan stopped at (a quote, a
/// bracket, the end of a value), so on char boundaries; `split_at` checks them inline where a
/// range index was a call, twice per member.
#[inline(always)]
fn between(text: &str, from: usize, to: usize) -> &str {
    text.split_at(to).0.split_at(from).1
}

#[inline]
fn expected(at: usize, what: &'static str) -> Syntax {
    Syntax { at, expected: what }
}

#[inline]
fn end_of_text(bytes: &[u8], at: usize) -> Result<(), Syntax> {
    let at = skip_ws(bytes, at);
    if at == bytes.len() {
        Ok(())
    } else {
        Err(expected(at, "the end of the text"))
    }
}

#[inline]
fn skip_ws(bytes: &[u8], mut at: usize) -> usize {
    // Compact JSON has none: every byte above the space is no white space, one comparison.
    if bytes.get(at).is_some_and(|&b| b > b' ') {
        return at;
    }
    while let Some(b' ' | b'\n' | b'\r' | b'\t') = bytes.get(at) {
        at += 1;
    }
    at
}

/// The value starting at `at` (no white space before it): where it ends, and what it is.
// Inlined where a member's value is read (most are null, a short string or a number); objects
// and arrays go to `container`, kept out of line.
#[inline(always)]
fn value(bytes: &[u8], at: usize, depth: usize) -> Result<(usize, Kind), Syntax> {
    match bytes.get(at) {
        Some(b'"') => string(bytes, at + 1).map(|(end, escaped)| (end, Kind::String { escaped })),
        Some(b'{') => container(bytes, at, depth, b'}').map(|end| (end, Kind::Object)),
        Some(b'[') => container(bytes, at, depth, b']').map(|end| (end, Kind::Array)),
        Some(b't') => literal(bytes, at, b"true").map(|end| (end, Kind::Bool)),
        Some(b'f') => literal(bytes, at, b"false").map(|end| (end, Kind::Bool)),
        Some(b'n') => literal(bytes, at, b"null").map(|end| (end, Kind::Null)),
        Some(b'-' | b'0'..=b'9') => number(bytes, at).map(|end| (end, Kind::Number)),
        _ => Err(expected(at, "a value")),
    }
}

/// An object or an array opened at `at`: where it ends.
#[inline(never)]
fn container(bytes: &[u8], open: usize, depth: usize, close: u8) -> Result<usize, Syntax> {
    if depth >= MAX_DEPTH {
        return Err(expected(open, "less deeply nested values"));
    }
    let object = close == b'}';
    let mut at = skip_ws(bytes, open + 1);
    if bytes.get(at) == Some(&close) {
        return Ok(at + 1);
    }
    loop {
        if object {
            if bytes.get(at) != Some(&b'"') {
                return Err(expected(at, "a member name"));
            }
            let (end, _) = string(bytes, at + 1)?;
            at = skip_ws(bytes, end);
            if bytes.get(at) != Some(&b':') {
                return Err(expected(at, "':'"));
            }
            at = skip_ws(bytes, at + 1);
        }
        let (end, _) = value(bytes, at, depth + 1)?;
        at = skip_ws(bytes, end);
        match bytes.get(at) {
            Some(b',') => at = skip_ws(bytes, at + 1),
            Some(&b) if b == close => return Ok(at + 1),
            _ if object => return Err(expected(at, "',' or '}'")),
            _ => return Err(expected(at, "',' or ']'")),
        }
    }
}

/// A string whose opening quote is before `at`: the index after its closing quote, and whether
/// it holds an escape. Control characters must be escaped; an escape must be one JSON knows.
/// Most strings (every member name) have no escape: found here in one step, inline.
#[inline(always)]
fn string(bytes: &[u8], at: usize) -> Result<(usize, bool), Syntax> {
    if let Some(found) = first_escape(bytes.get(at..).unwrap_or_default()) {
        if bytes[at + found] == b'"' {
            return Ok((at + found + 1, false));
        }
    }
    escaped_string(bytes, at)
}

/// [`string`] for a string that holds an escape or a control character, or never ends.
#[inline(never)]
fn escaped_string(bytes: &[u8], mut at: usize) -> Result<(usize, bool), Syntax> {
    let mut escaped = false;
    loop {
        let Some(found) = first_escape(&bytes[at.min(bytes.len())..]) else {
            return Err(expected(bytes.len(), "the end of a string"));
        };
        at += found;
        match bytes[at] {
            b'"' => return Ok((at + 1, escaped)),
            b'\\' => {
                escaped = true;
                match bytes.get(at + 1) {
                    Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => at += 2,
                    Some(b'u') => {
                        let hex = bytes.get(at + 2..at + 6).unwrap_or_default();
                        if hex.len() < 4 || !hex.iter().all(u8::is_ascii_hexdigit) {
                            return Err(expected(at + 2, "four hex digits"));
                        }
                        at += 6;
                    }
                    _ => return Err(expected(at + 1, "an escape")),
                }
            }
            _ => return Err(expected(at, "an escaped control character")),
        }
    }
}

#[inline]
fn literal(bytes: &[u8], at: usize, word: &[u8]) -> Result<usize, Syntax> {
    if bytes.get(at..at + word.len()) == Some(word) {
        Ok(at + word.len())
    } else {
        Err(expected(at, "true, false or null"))
    }
}

/// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`: where it ends.
#[inline]
fn number(bytes: &[u8], mut at: usize) -> Result<usize, Syntax> {
    let digits = |from: usize| {
        let count = bytes[from.min(bytes.len())..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        if count == 0 {
            Err(expected(from, "a digit"))
        } else {
            Ok(from + count)
        }
    };
    if bytes.get(at) == Some(&b'-') {
        at += 1;
    }
    at = if bytes.get(at) == Some(&b'0') {
        at + 1
    } else {
        digits(at)?
    };
    if bytes.get(at) == Some(&b'.') {
        at = digits(at + 1)?;
    }
    if let Some(b'e' | b'E') = bytes.get(at) {
        at += 1;
        if let Some(b'+' | b'-') = bytes.get(at) {
            at += 1;
        }
        at = digits(at)?;
    }
    Ok(at)
}
