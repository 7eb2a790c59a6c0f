//! Events that must fit a size limit (a syslog message cap) are shrunk, never cut: the alert
//! itself is trimmed and encoded again, so what goes out is still a whole event of its format
//! (JSON that parses, CEF a strict reader takes). Free text goes first, longest first (every
//! string over a cap that halves each round, down to [`TEXT_FLOOR`] characters, each marked
//! "…[truncated]"), then lists (evidence, techniques) are shortened, halving their length.
//! Trimming the alert rather than the event keeps the typed fields and the verbatim copy in step,
//! and leaves each format's own rules in charge of where things go. The event says it was shrunk
//! (`mde_watch.truncated`, or `,truncated` in CEF's Change). The alert id is never trimmed.

use serde_json::Value;

use super::{encode, text, EventContext, Format, NormalizeError};
use crate::defender::PolledAlert;

/// Strings are not trimmed below this many characters: ids, hashes and times stay whole.
pub const TEXT_FLOOR: usize = 128;
/// Lists keep this many items before the verbatim copy is given up.
pub const LIST_FLOOR: usize = 8;

/// An event encoded within a size limit.
#[derive(Debug)]
pub struct Fitted {
    pub payload: Vec<u8>,
    /// The alert was trimmed to get here.
    pub truncated: bool,
    /// False when even the smallest form is over the limit (a limit too small for the format):
    /// the payload is then that smallest form, whole.
    pub fits: bool,
}

/// Encodes `polled` as `format` in at most `limit` bytes, shrinking the alert when it must.
pub fn encode_within(
    format: Format,
    polled: &PolledAlert,
    context: &EventContext,
    limit: usize,
) -> Result<Fitted, NormalizeError> {
    let payload = encode(format, polled, context)?;
    if payload.len() <= limit {
        return Ok(Fitted {
            payload,
            truncated: false,
            fits: true,
        });
    }
    let fail = |reason: String| NormalizeError {
        alert_id: polled.alert().id.to_string(),
        format: format.as_str(),
        reason,
    };
    let original: Value =
        serde_json::from_str(polled.text()).map_err(|err| fail(err.to_string()))?;
    let mut text_cap = longest_text(&original);
    let mut list_cap = longest_list(&original);
    let mut shrunk_context = EventContext {
        truncated: true,
        ..context.clone()
    };
    let mut smallest = payload;
    loop {
        if text_cap > TEXT_FLOOR {
            text_cap = (text_cap / 2).max(TEXT_FLOOR);
        } else if list_cap > LIST_FLOOR {
            list_cap = (list_cap / 2).max(LIST_FLOOR);
        } else if shrunk_context.verbatim {
            shrunk_context.verbatim = false;
        } else if list_cap > 0 {
            list_cap /= 2;
        } else {
            return Ok(Fitted {
                payload: smallest,
                truncated: true,
                fits: false,
            });
        }
        let mut value = original.clone();
        if let Value::Object(fields) = &mut value {
            for (key, field) in fields.iter_mut() {
                if key != "id" {
                    trim(field, text_cap, list_cap);
                }
            }
        }
        let json = serde_json::to_string(&value).map_err(|err| fail(err.to_string()))?;
        let shrunk = PolledAlert::parse(json).map_err(|err| fail(err.to_string()))?;
        let payload = encode(format, &shrunk, &shrunk_context)?;
        if payload.len() <= limit {
            return Ok(Fitted {
                payload,
                truncated: true,
                fits: true,
            });
        }
        if payload.len() < smallest.len() {
            smallest = payload;
        }
    }
}

/// Cuts every string over `text_cap` characters and every array over `list_cap` items.
fn trim(value: &mut Value, text_cap: usize, list_cap: usize) {
    match value {
        Value::String(s) => {
            if let std::borrow::Cow::Owned(cut) = text::shorten(s, text_cap) {
                *s = cut;
            }
        }
        Value::Array(items) => {
            items.truncate(list_cap);
            for item in items {
                trim(item, text_cap, list_cap);
            }
        }
        Value::Object(fields) => {
            for field in fields.values_mut() {
                trim(field, text_cap, list_cap);
            }
        }
        _ => {}
    }
}

fn longest_text(value: &Value) -> usize {
    match value {
        Value::String(s) => s.chars().count(),
        Value::Array(items) => items.iter().map(longest_text).max().unwrap_or(0),
        Value::Object(fields) => fields.values().map(longest_text).max().unwrap_or(0),
        _ => 0,
    }
}

fn longest_list(value: &Value) -> usize {
    match value {
        Value::Array(items) => items
            .iter()
            .map(longest_list)
            .max()
            .unwrap_or(0)
            .max(items.len()),
        Value::Object(fields) => fields.values().map(longest_list).max().unwrap_or(0),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::{Change, Match};
    use crate::watchlist::EntryKind;

    fn alert(description_chars: usize, evidence: usize) -> PolledAlert {
        let evidence: Vec<Value> = (0..evidence)
            .map(|i| serde_json::json!({"entityType": "Process", "processId": i, "processCommandLine": format!("cmd.exe /c step {i}")}))
            .collect();
        let json = serde_json::json!({
            "id": "da1", "title": "t", "severity": "High", "status": "New",
            "description": "d".repeat(description_chars),
            "alertCreationTime": "2026-11-23T04:05:06Z",
            "evidence": evidence,
        });
        PolledAlert::parse(json.to_string()).unwrap()
    }

    fn context(matches: &[Match]) -> EventContext<'_> {
        EventContext::new(
            matches,
            "tenant",
            "collector",
            Change::New,
            "2026-11-23T05:00:00Z",
        )
    }

    #[test]
    fn an_event_that_fits_is_left_alone() {
        let matches = [];
        let fitted = encode_within(Format::Ecs, &alert(10, 1), &context(&matches), 8192).unwrap();
        assert!(fitted.fits && !fitted.truncated);
        let event: Value = serde_json::from_slice(&fitted.payload).unwrap();
        assert!(event["mde_watch"].get("truncated").is_none());
    }

    #[test]
    fn large_alerts_shrink_into_whole_events_of_every_format() {
        let matches = [Match::new(EntryKind::User, "user1", None)];
        let big = alert(100_000, 500);
        for format in Format::ALL {
            for limit in [2048, 8192] {
                let fitted = encode_within(format, &big, &context(&matches), limit).unwrap();
                assert!(fitted.fits, "{format:?} at {limit}");
                assert!(fitted.payload.len() <= limit, "{format:?} at {limit}");
                let text = std::str::from_utf8(&fitted.payload).unwrap();
                if format == Format::Cef {
                    // CEF keeps within ArcSight's field lengths anyway: small enough whole.
                    assert!(!fitted.truncated && text.starts_with("CEF:0|"), "{text}");
                } else {
                    assert!(fitted.truncated);
                    let event: Value = serde_json::from_str(text).unwrap();
                    let provenance = event
                        .pointer("/mde_watch")
                        .or_else(|| event.pointer("/unmapped/mde_watch"))
                        .or_else(|| event.pointer("/event/mde_watch"))
                        .unwrap();
                    assert_eq!(provenance["truncated"], true, "{format:?}");
                }
                assert!(text.contains("da1"), "the id is never trimmed");
            }
        }
    }

    #[test]
    fn text_goes_before_lists() {
        let matches = [];
        // A long description and a few evidence items: trimming the text is enough.
        let fitted =
            encode_within(Format::Raw, &alert(50_000, 3), &context(&matches), 4096).unwrap();
        let event: Value = serde_json::from_slice(&fitted.payload).unwrap();
        assert_eq!(event["alert"]["evidence"].as_array().unwrap().len(), 3);
        let description = event["alert"]["description"].as_str().unwrap();
        assert!(description.ends_with(text::TRUNCATION_MARK));
    }

    #[test]
    fn a_limit_below_the_smallest_event_says_so() {
        let matches = [];
        let fitted = encode_within(Format::Ocsf, &alert(5000, 5), &context(&matches), 100).unwrap();
        assert!(!fitted.fits);
        serde_json::from_slice::<Value>(&fitted.payload).expect("still a whole event");
    }
}
