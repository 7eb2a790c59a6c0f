//! Alert + match context → event bytes, one pure function per format, one file each. Every format
//! carries the watchlist matches that produced the alert, the tenant, the collector host and the
//! event schema version (normalization.md).

pub mod cef;
mod ecs;
mod evidence;
mod ocsf;
mod raw;
mod severity;
mod splunk;
mod vendor;

use serde::Serialize;

pub use evidence::matches_text;
pub use severity::Severity;

use crate::defender::PolledAlert;
use crate::watchlist::EntryKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Ecs,
    Raw,
    Cef,
    Ocsf,
    Splunk,
}

pub const FORMAT_NAMES: &str = "ecs | raw | cef | ocsf | splunk";

impl Format {
    pub fn parse(name: &str) -> Result<Format, String> {
        match name.trim().to_ascii_lowercase().as_str() {
            "ecs" => Ok(Format::Ecs),
            "raw" => Ok(Format::Raw),
            "cef" => Ok(Format::Cef),
            "ocsf" => Ok(Format::Ocsf),
            "splunk" => Ok(Format::Splunk),
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
        }
    }
}

/// One watchlist entry an alert matched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, PartialOrd, Ord)]
pub struct Match {
    #[serde(serialize_with = "kind_name")]
    pub kind: EntryKind,
    pub value: String,
    /// What the operator wrote, when normalization changed it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub original: Option<String>,
}

fn kind_name<S: serde::Serializer>(kind: &EntryKind, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(kind.as_str())
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
    /// Cut the description to this many characters (marked), for transports with a size limit.
    pub description_limit: Option<usize>,
}

pub const TRUNCATION_MARK: &str = "…[truncated]";

/// Cuts `text` to `limit` characters (marking the cut), on a character boundary.
pub fn shorten(text: &str, limit: usize) -> std::borrow::Cow<'_, str> {
    if text.chars().count() <= limit {
        return std::borrow::Cow::Borrowed(text);
    }
    let keep = limit.saturating_sub(TRUNCATION_MARK.chars().count());
    let cut: String = text.chars().take(keep).collect();
    std::borrow::Cow::Owned(cut + TRUNCATION_MARK)
}

/// The alert's description as this event carries it (shortened when the context says so).
fn description<'a>(
    alert: &'a crate::defender::Alert,
    context: &EventContext,
) -> Option<std::borrow::Cow<'a, str>> {
    let text = alert.description.as_deref()?;
    Some(match context.description_limit {
        Some(limit) => shorten(text, limit),
        None => std::borrow::Cow::Borrowed(text),
    })
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
    };
    result.map_err(|err| NormalizeError {
        alert_id: alert.alert.id.clone(),
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
    version: &'static str,
}

impl<'a> Provenance<'a> {
    fn from(context: &EventContext<'a>) -> Provenance<'a> {
        Provenance {
            matches: context.matches,
            schema_version: crate::EVENT_SCHEMA_VERSION,
            collector: context.collector,
            tenant_id: context.tenant_id,
            change: context.change.as_str(),
            version: crate::VERSION,
        }
    }
}
