//! serde-written events (OCSF, Splunk) that carry the alert's text as sent: a [`TextSlot`] in
//! the structure marks the place, and the formatter writes the text there. The text was checked
//! as JSON when the alert was read; serde_json only writes a `RawValue` it has checked itself,
//! and checking the whole alert again for every event halved OCSF's encoding rate.

use std::io;

use serde::{Serialize, Serializer};
use serde_json::value::RawValue;

/// Valid JSON no event holds otherwise: the formatter recognises its slot by it.
const MARK: &str = "\"\\u0000mde-watch alert text\"";

/// Where the alert's text goes. Serialize it only through [`to_vec`].
pub struct TextSlot;

impl Serialize for TextSlot {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serde_json::from_str::<&RawValue>(MARK)
            .map_err(serde::ser::Error::custom)?
            .serialize(serializer)
    }
}

/// Compact JSON, as `serde_json::to_writer` writes it, but for the slot.
struct WithText<'a> {
    text: &'a str,
}

impl serde_json::ser::Formatter for WithText<'_> {
    fn write_raw_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let written = if fragment == MARK {
            self.text
        } else {
            fragment
        };
        writer.write_all(written.as_bytes())
    }
}

/// Appends `value` to `out` as compact JSON, with `text` (already checked JSON) in its slots.
pub fn to_vec<T: Serialize>(out: &mut Vec<u8>, value: &T, text: &str) -> serde_json::Result<()> {
    value.serialize(&mut serde_json::Serializer::with_formatter(
        out,
        WithText { text },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Event<'a> {
        name: &'a str,
        alert: Option<TextSlot>,
        other: &'a RawValue,
    }

    #[test]
    fn the_text_goes_in_the_slot_and_other_raw_values_stay() {
        let other = serde_json::from_str::<&RawValue>("[1,2]").unwrap();
        let mut out = Vec::new();
        let event = Event {
            name: "a\"b",
            alert: Some(TextSlot),
            other,
        };
        to_vec(&mut out, &event, r#"{"id":"x","n":[1]}"#).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"name":"a\"b","alert":{"id":"x","n":[1]},"other":[1,2]}"#
        );
    }
}
