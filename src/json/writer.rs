//! A JSON writer for the formats written on every alert: keys and values appended to one buffer,
//! strings escaped exactly as serde_json escapes them (`escape.rs`). ECS is most of the encoding
//! time of a heavy poll, and serde_json's byte-by-byte escape loop and its per-event structures
//! were the largest part of it. Pure: bytes in, bytes out.

use super::escape::escape_into;

/// Writes one JSON document into `out`. Commas are placed by the writer: after any value, the
/// next key or element is preceded by one; opening an object or array resets that.
pub struct JsonWriter<'b> {
    out: &'b mut Vec<u8>,
    comma: bool,
    /// The addresses of the JSON text the event is built from (see [`JsonWriter::for_text`]).
    source: std::ops::Range<usize>,
}

impl<'b> JsonWriter<'b> {
    pub fn new(out: &'b mut Vec<u8>) -> JsonWriter<'b> {
        JsonWriter {
            out,
            comma: false,
            source: 0..0,
        }
    }

    /// A writer for an event built from `source`, JSON text the scan checked (an alert as
    /// received). The view of an alert borrows a string from that text only where it was sent
    /// without escapes, and the scan refuses raw control characters, so such a string has no
    /// byte to escape: [`JsonWriter::str`] copies it as it is. Strings anywhere else (decoded,
    /// built, constants) are escaped as always. Most strings of an event are borrowed ones;
    /// their escape scan was ~8% of the instructions spent on an ECS event.
    pub fn for_text(out: &'b mut Vec<u8>, source: &str) -> JsonWriter<'b> {
        let start = source.as_ptr() as usize;
        JsonWriter {
            out,
            comma: false,
            source: start..start + source.len(),
        }
    }

    /// Whether `value` lies inside the source text (is a slice of it).
    #[inline(always)]
    fn borrowed(&self, value: &str) -> bool {
        let start = value.as_ptr() as usize;
        start >= self.source.start && start + value.len() <= self.source.end
    }

    #[inline(always)]
    fn separate(&mut self) {
        if self.comma {
            self.out.push(b',');
        }
    }

    /// `"key":`, the key written as is: this program's constants. Names from the alert go
    /// through [`JsonWriter::unescaped_key`] (sent without escapes) or
    /// [`JsonWriter::escaped_key`].
    #[inline(always)]
    pub fn key(&mut self, key: &'static str) -> &mut Self {
        self.unescaped_key(key)
    }

    /// A key read from JSON text where it held no escape: such a string has no byte to escape,
    /// so it is copied as it is.
    #[inline(always)]
    pub fn unescaped_key(&mut self, key: &str) -> &mut Self {
        debug_assert!(
            super::escape::first_escape(key.as_bytes()).is_none(),
            "key {key:?} needs escaping"
        );
        self.separate();
        self.out.reserve(key.len() + 3);
        self.out.push(b'"');
        self.out.extend_from_slice(key.as_bytes());
        self.out.extend_from_slice(b"\":");
        self.comma = false;
        self
    }

    /// A key that came from the alert, escaped like any string.
    pub fn escaped_key(&mut self, key: &str) -> &mut Self {
        self.separate();
        escape_into(self.out, key);
        self.out.push(b':');
        self.comma = false;
        self
    }

    #[inline]
    pub fn begin_object(&mut self) -> &mut Self {
        self.open(b'{')
    }

    #[inline]
    pub fn end_object(&mut self) -> &mut Self {
        self.close(b'}')
    }

    pub fn begin_array(&mut self) -> &mut Self {
        self.open(b'[')
    }

    pub fn end_array(&mut self) -> &mut Self {
        self.close(b']')
    }

    #[inline]
    fn open(&mut self, bracket: u8) -> &mut Self {
        self.separate();
        self.out.push(bracket);
        self.comma = false;
        self
    }

    #[inline]
    fn close(&mut self, bracket: u8) -> &mut Self {
        self.out.push(bracket);
        self.comma = true;
        self
    }

    #[inline]
    pub fn str(&mut self, value: &str) -> &mut Self {
        self.separate();
        if self.borrowed(value) {
            debug_assert!(
                super::escape::first_escape(value.as_bytes()).is_none(),
                "string {value:?} of the source needs escaping"
            );
            self.quoted(value);
        } else {
            escape_into(self.out, value);
        }
        self.comma = true;
        self
    }

    /// A string the program holds as a constant (a format's fixed values: `"alert"`, a
    /// product's name, this build's version): it has no byte to escape, so it is copied as it
    /// is (the golden files would show one that had).
    #[inline]
    pub fn lit(&mut self, value: &'static str) -> &mut Self {
        debug_assert!(
            super::escape::first_escape(value.as_bytes()).is_none(),
            "constant {value:?} needs escaping"
        );
        self.separate();
        self.quoted(value);
        self.comma = true;
        self
    }

    #[inline(always)]
    fn quoted(&mut self, value: &str) {
        self.out.reserve(value.len() + 2);
        self.out.push(b'"');
        self.out.extend_from_slice(value.as_bytes());
        self.out.push(b'"');
    }

    #[inline]
    pub fn int(&mut self, value: i64) -> &mut Self {
        self.separate();
        self.out
            .extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
        self.comma = true;
        self
    }

    pub fn bool(&mut self, value: bool) -> &mut Self {
        self.separate();
        self.out
            .extend_from_slice(if value { b"true" } else { b"false" });
        self.comma = true;
        self
    }

    /// A value that is already JSON (a member of the alert as sent, validated when it was read).
    #[inline]
    pub fn raw(&mut self, json: &str) -> &mut Self {
        self.separate();
        self.out.extend_from_slice(json.as_bytes());
        self.comma = true;
        self
    }

    /// A value written through its `Display` as a JSON string (addresses, which never need
    /// escaping).
    pub fn display(&mut self, value: impl std::fmt::Display) -> &mut Self {
        use std::io::Write;
        self.separate();
        self.out.push(b'"');
        // Writing into a Vec cannot fail.
        let _ = write!(self.out, "{value}");
        self.out.push(b'"');
        self.comma = true;
        self
    }

    /// `"key":"value"` when there is a value; nothing otherwise.
    #[inline]
    pub fn opt_str(&mut self, key: &'static str, value: Option<&str>) -> &mut Self {
        if let Some(value) = value {
            self.key(key).str(value);
        }
        self
    }

    /// `"key":["a","b"]` of constants (see [`JsonWriter::lit`]).
    pub fn lit_array(
        &mut self,
        key: &'static str,
        values: impl IntoIterator<Item = &'static str>,
    ) -> &mut Self {
        self.array(key, values, JsonWriter::lit)
    }

    /// `"key":["a","b"]`.
    pub fn str_array<'v>(
        &mut self,
        key: &'static str,
        values: impl IntoIterator<Item = &'v str>,
    ) -> &mut Self {
        self.array(key, values, JsonWriter::str)
    }

    #[inline]
    fn array<'v>(
        &mut self,
        key: &'static str,
        values: impl IntoIterator<Item = &'v str>,
        write: for<'w> fn(&'w mut Self, &'v str) -> &'w mut Self,
    ) -> &mut Self {
        self.key(key).begin_array();
        for value in values {
            write(self, value);
        }
        self.end_array()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commas_go_between_values_at_every_depth() {
        let mut out = Vec::new();
        let mut w = JsonWriter::new(&mut out);
        w.begin_object()
            .key("a")
            .int(-1)
            .str_array("b", ["x", "y"])
            .key("c")
            .begin_object()
            .opt_str("d", None)
            .opt_str("e", Some("q\""))
            .key("f")
            .bool(true)
            .end_object()
            .escaped_key("g\n")
            .raw("{\"h\":[1]}")
            .key("i")
            .display(std::net::Ipv4Addr::LOCALHOST)
            .key("j")
            .begin_array()
            .end_array()
            .end_object();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"a":-1,"b":["x","y"],"c":{"e":"q\"","f":true},"g\n":{"h":[1]},"i":"127.0.0.1","j":[]}"#
        );
    }

    #[test]
    fn strings_of_the_source_are_copied_and_the_others_escaped() {
        let source = r#"{"a":"plain","b":"tab\there"}"#;
        let plain = &source[6..11];
        assert_eq!(plain, "plain");
        // What the view holds for "b": decoded, owned, outside the source.
        let decoded = String::from("tab\there");
        let mut out = Vec::new();
        let mut w = JsonWriter::for_text(&mut out, source);
        w.begin_array()
            .str(plain)
            .str(&decoded)
            .str("q\"")
            .end_array();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"["plain","tab\there","q\""]"#
        );
    }
}
