//! `raw`: the Defender alert exactly as the API sent it, inside a small envelope with the match
//! context. For pipelines that do their own parsing.

use super::{write_provenance, EventContext};
use crate::defender::PolledAlert;
use crate::json::JsonWriter;

/// `{"mde_watch":{…},"alert":<the alert's text>}`: the text is copied, not re-read (it was
/// checked as JSON when the alert was polled, and compacted if it came pretty-printed).
pub fn encode(alert: &PolledAlert, context: &EventContext) -> serde_json::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(alert.len() + 512);
    let mut w = JsonWriter::new(&mut out);
    w.begin_object().key("mde_watch");
    write_provenance(&mut w, context);
    w.key("alert").raw(alert.text()).end_object();
    Ok(out)
}
