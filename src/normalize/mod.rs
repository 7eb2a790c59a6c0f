//! Alert + match context → event bytes, one pure function per format, one file each. Every format
//! carries the watchlist matches that produced the alert, the tenant, the collector host and the
//! event schema version (docs/formats.md). Each event is valid for the receiver its format is
//! read by, whatever the alert holds: `fit` shrinks one to a transport's size limit while it
//! stays a whole event of its format.

pub mod cef;
mod ecs;
mod evidence;
mod fit;
mod ocsf;
mod product;
mod raw;
pub mod sample;
mod severity;
mod splunk;
mod text;
mod vendor;

use std::sync::Arc;

use serde::Serialize;

pub use evidence::{matches_len, matches_text, write_matches};
pub use fit::{encode_within, Fitted};
pub use severity::Severity;
pub use text::{shorten, TRUNCATION_MARK};

use crate::defender::PolledAlert;
use crate::watchlist::EntryKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Ecs,
    Raw,
    Cef,
    Ocsf,
    Splunk,
    /// The `splunk` event inside Splunk's HTTP Event Collector envelope.
    SplunkHec,
}

pub const FORMAT_NAMES: &str = "ecs | raw | cef | ocsf | splunk | splunk_hec";

impl Format {
    pub const ALL: [Format; 6] = [
        Format::Ecs,
        Format::Raw,
        Format::Cef,
        Format::Ocsf,
        Format::Splunk,
        Format::SplunkHec,
    ];
}

impl Format {
    pub fn parse(name: &str) -> Result<Format, String> {
        match name.trim().to_ascii_lowercase().as_str() {
            "ecs" => Ok(Format::Ecs),
            "raw" => Ok(Format::Raw),
            "cef" => Ok(Format::Cef),
            "ocsf" => Ok(Format::Ocsf),
            "splunk" => Ok(Format::Splunk),
            "splunk_hec" => Ok(Format::SplunkHec),
            other => Err(format!("'{other}' is not a format ({FORMAT_NAMES})")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Ecs => "ecs",
            Format::Raw => "raw",
            Format::Cef => "cef",
            Format::Ocsf => "ocsf",
            Format::Splunk => "splunk",
            Format::SplunkHec => "splunk_hec",
        }
    }
}

/// One watchlist entry an alert matched.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, PartialOrd, Ord)]
pub struct Match {
    #[serde(serialize_with = "kind_name")]
    pub kind: EntryKind,
    /// Shared: one entry's match is cloned onto every alert it reaches.
    pub value: Arc<str>,
    /// What the operator wrote, when normalization changed it.
    pub original: Option<Arc<str>>,
}

impl Match {
    pub fn new(kind: EntryKind, value: &str, original: Option<&str>) -> Match {
        Match {
            kind,
            value: value.into(),
            original: original.map(Into::into),
        }
    }
}

fn kind_name<S: serde::Serializer>(kind: &EntryKind, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(kind.as_str())
}

/// How the alert was found: polling a watched entity, or reading the tenant's feed and matching.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FoundBy {
    Entity,
    Feed,
}

impl FoundBy {
    pub fn as_str(self) -> &'static str {
        match self {
            FoundBy::Entity => "entity",
            FoundBy::Feed => "feed",
        }
    }
}

/// Why the event is being emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    New,
    Updated,
}

impl Change {
    pub fn as_str(self) -> &'static str {
        match self {
            Change::New => "new",
            Change::Updated => "updated",
        }
    }
}

/// Everything an event carries besides the alert itself.
#[derive(Debug, Clone)]
pub struct EventContext<'a> {
    pub matches: &'a [Match],
    pub tenant_id: &'a str,
    pub collector: &'a str,
    pub change: Change,
    /// When the alert was seen, RFC 3339; used where the alert lacks every timestamp.
    pub observed_at: &'a str,
    /// The alert was shrunk to fit a transport (see `fit.rs`): the event says so.
    pub truncated: bool,
    /// Carry the alert's verbatim copy (OCSF `unmapped.defender`, Splunk `defender`, ECS
    /// `microsoft.defender_endpoint`); only a shrink of last resort leaves it out.
    pub verbatim: bool,
    pub found_by: FoundBy,
}

impl<'a> EventContext<'a> {
    /// A context for an event that carries the alert whole.
    pub fn new(
        matches: &'a [Match],
        tenant_id: &'a str,
        collector: &'a str,
        change: Change,
        observed_at: &'a str,
    ) -> EventContext<'a> {
        EventContext {
            matches,
            tenant_id,
            collector,
            change,
            observed_at,
            truncated: false,
            verbatim: true,
            found_by: FoundBy::Entity,
        }
    }
}

/// The title an alert without one is shown under (OCSF and CEF require a title).
pub const UNTITLED: &str = "Defender for Endpoint alert";

/// The alert's time in epoch milliseconds: creation, else last update, else when it was seen.
/// Every format needs one, and an alert whose times are all null or unreadable still happened.
pub fn event_time_ms(alert: &crate::defender::Alert, context: &EventContext) -> i64 {
    evidence::millis(alert.alert_creation_time.as_deref())
        .or_else(|| evidence::millis(alert.last_update_time.as_deref()))
        .or_else(|| evidence::millis(Some(context.observed_at)))
        .unwrap_or_default()
}

#[derive(Debug, thiserror::Error)]
#[error("cannot encode alert {alert_id} as {format}: {reason}")]
pub struct NormalizeError {
    pub alert_id: String,
    pub format: &'static str,
    pub reason: String,
}

/// Encodes one alert as one event (no trailing newline).
pub fn encode(
    format: Format,
    alert: &PolledAlert,
    context: &EventContext,
) -> Result<Vec<u8>, NormalizeError> {
    let result = match format {
        Format::Ecs => ecs::encode(alert, context),
        Format::Raw => raw::encode(alert, context),
        Format::Cef => Ok(cef::encode(alert, context)),
        Format::Ocsf => ocsf::encode(alert, context),
        Format::Splunk => splunk::encode(alert, context),
        Format::SplunkHec => splunk::encode_hec(alert, context),
    };
    result.map_err(|err| NormalizeError {
        alert_id: alert.alert().id.to_string(),
        format: format.as_str(),
        reason: err.to_string(),
    })
}

/// The `mde_watch` block every format carries.
#[derive(Serialize)]
struct Provenance<'a> {
    matches: &'a [Match],
    schema_version: u32,
    collector: &'a str,
    tenant_id: &'a str,
    change: &'static str,
    /// `entity` (polled for a watched user or file) or `feed` (read from the tenant's feed and
    /// matched here).
    found_by: &'static str,
    version: &'static str,
    /// Present (true) only when the event was shrunk to fit a transport's size limit.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    truncated: bool,
}

/// The `mde_watch` block as [`Provenance`] serializes it, for the formats written by hand.
fn write_provenance(w: &mut crate::json::JsonWriter, context: &EventContext) {
    w.begin_object().key("matches").begin_array();
    for found in context.matches {
        w.begin_object()
            .key("kind")
            .lit(found.kind.as_str())
            .key("value")
            .str(&found.value)
            .opt_str("original", found.original.as_deref())
            .end_object();
    }
    w.end_array()
        .key("schema_version")
        .int(i64::from(crate::EVENT_SCHEMA_VERSION))
        .key("collector")
        .str(context.collector)
        .key("tenant_id")
        .str(context.tenant_id)
        .key("change")
        .lit(context.change.as_str())
        .key("found_by")
        .lit(context.found_by.as_str())
        .key("version")
        .lit(crate::VERSION);
    if context.truncated {
        w.key("truncated").bool(true);
    }
    w.end_object();
}

impl<'a> Provenance<'a> {
    fn from(context: &EventContext<'a>) -> Provenance<'a> {
        Provenance {
            matches: context.matches,
            schema_version: crate::EVENT_SCHEMA_VERSION,
            collector: context.collector,
            tenant_id: context.tenant_id,
            change: context.change.as_str(),
            found_by: context.found_by.as_str(),
            version: crate::VERSION,
            truncated: context.truncated,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hand_written_block_is_the_serialized_one() {
        let matches = [
            Match::new(EntryKind::User, "user1", Some("CONTOSO\\User1")),
            Match::new(EntryKind::File, "ab\"c", None),
        ];
        for truncated in [false, true] {
            let mut context = EventContext::new(&matches, "t", "host\n1", Change::Updated, "x");
            context.truncated = truncated;
            context.found_by = FoundBy::Feed;
            let mut out = Vec::new();
            write_provenance(&mut crate::json::JsonWriter::new(&mut out), &context);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                serde_json::to_string(&Provenance::from(&context)).unwrap()
            );
        }
    }
}
