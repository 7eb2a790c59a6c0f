//! The Alert entity (docs/microsoft-api.md). Every field but `id` may be null or absent; enums are
//! kept as strings because the API adds values.
//!
//! An alert is parsed once, into a view that borrows from its own text: strings are `&str` into
//! it (owned only where JSON escapes had to be decoded), and every top-level member is kept as
//! its verbatim JSON beside the typed fields. The formats build their events from the view and
//! copy the members they carry whole (ECS's vendor namespace, the `raw`, OCSF and Splunk copies)
//! from those slices, so no format parses the alert a second time and nothing the API sent is
//! ever dropped.

use std::borrow::Cow;
use std::fmt;

use bytes::Bytes;
use smallvec::SmallVec;

use super::{evidence, lenient, nested};
use crate::json::scan::{self, Cursor, Kind};

pub use super::evidence::{Evidence, EvidenceList};
pub use super::lenient::Text;
pub use super::nested::{LoggedOnUser, LoggedOnUsers, RelatedUser, Techniques};

#[derive(Debug, Clone, Default)]
pub struct Alert<'a> {
    pub id: Text<'a>,
    pub incident_id: Option<i64>,
    pub investigation_id: Option<i64>,
    pub assigned_to: Option<Text<'a>>,
    pub severity: Option<Text<'a>>,
    pub status: Option<Text<'a>>,
    pub classification: Option<Text<'a>>,
    pub determination: Option<Text<'a>>,
    pub investigation_state: Option<Text<'a>>,
    pub detection_source: Option<Text<'a>>,
    pub detector_id: Option<Text<'a>>,
    pub category: Option<Text<'a>>,
    pub threat_family_name: Option<Text<'a>>,
    pub threat_name: Option<Text<'a>>,
    pub title: Option<Text<'a>>,
    pub description: Option<Text<'a>>,
    pub alert_creation_time: Option<Text<'a>>,
    pub first_event_time: Option<Text<'a>>,
    pub last_event_time: Option<Text<'a>>,
    pub last_update_time: Option<Text<'a>>,
    pub resolved_time: Option<Text<'a>>,
    pub machine_id: Option<Text<'a>>,
    pub computer_dns_name: Option<Text<'a>>,
    pub rbac_group_name: Option<Text<'a>>,
    pub aad_tenant_id: Option<Text<'a>>,
    /// Graph only: the product that raised the alert (`microsoftDefenderForEndpoint`, …).
    pub service_source: Option<Text<'a>>,
    /// Documented as a string, sent as an array.
    pub mitre_techniques: Techniques<'a>,
    pub related_user: Option<RelatedUser<'a>>,
    /// Undocumented, observed.
    pub logged_on_users: LoggedOnUsers<'a>,
    pub evidence: EvidenceList<'a>,
    /// Every top-level member as sent, in order: name and verbatim JSON value (checked as JSON
    /// when the alert was read). A name borrowed from the text was sent without escapes, so it
    /// is written into JSON as it is; one with escapes is decoded into an owned string.
    pub members: Members<'a>,
}

/// The members an alert has had at most so far (Defender ~30, Graph ~40): room for them at once.
const USUAL_MEMBERS: usize = 48;

/// Every top-level member, name and verbatim value. The lists an alert holds have their usual
/// room inside it (this one, [`EvidenceList`], [`Techniques`], [`LoggedOnUsers`]), so reading
/// one costs one allocation, its box, instead of five: the members' 1.9 KB and the evidence's
/// 1.1 KB were blocks above glibc's per-thread cache, taken from and given back to the
/// arena's bins, and freed by the publishing thread into the reading thread's arena.
pub type Members<'a> = SmallVec<[(Text<'a>, &'a str); USUAL_MEMBERS]>;

impl<'a> Alert<'a> {
    /// Reads an alert from its JSON text in one checked pass. Broken JSON is
    /// [`ReadError::Malformed`] (the response it came in is broken); JSON that is not an alert
    /// (not an object, no id, a member no reading can make sense of) is one of the others.
    /// A null is no value: it leaves a field empty, and never empties one that a member of the
    /// same name (sent twice) filled before it.
    pub fn read(text: &'a str) -> Result<Box<Alert<'a>>, ReadError> {
        let mut cursor = Cursor::new(text);
        if cursor.peek() != Some(b'{') {
            // Checked whole: text that is not JSON is broken, not merely no alert.
            let (_, kind) = cursor.skip().map_err(ReadError::Malformed)?;
            cursor.finish().map_err(ReadError::Malformed)?;
            return Err(ReadError::NotAnObject(kind));
        }
        let alert = Alert::read_object(&mut cursor)?;
        cursor.finish().map_err(ReadError::Malformed)?;
        Ok(alert)
    }

    /// Reads the alert object that starts `text` (more may follow it): the alert, and the
    /// length of its text. For reading an alert where it lies in a larger buffer.
    pub fn read_prefix(text: &'a str) -> Result<(Box<Alert<'a>>, usize), ReadError> {
        let mut cursor = Cursor::new(text);
        if cursor.peek() != Some(b'{') {
            return Err(ReadError::Malformed(scan::Syntax {
                at: cursor.position(),
                expected: "an alert object",
            }));
        }
        let alert = Alert::read_object(&mut cursor)?;
        Ok((alert, cursor.position()))
    }

    /// Reads the object the cursor is at, up to its closing brace.
    fn read_object(cursor: &mut Cursor<'a>) -> Result<Box<Alert<'a>>, ReadError> {
        cursor.open().map_err(ReadError::Malformed)?;
        let mut alert = Box::<Alert>::default();
        let mut id = None;
        let mut device = evidence::Device::default();
        while let Some((raw_name, escaped)) = cursor.next_name().map_err(ReadError::Malformed)? {
            let failed = |source| ReadError::Member {
                member: raw_name.to_string(),
                source,
            };
            let name = lenient::name_of(raw_name, escaped).map_err(failed)?;
            let value = if name == "evidence" {
                // Read in place, in the same pass: the items' bytes are walked once.
                let start = cursor.position();
                evidence::read(cursor, &mut alert.evidence, &mut device).map_err(|failure| {
                    match failure {
                        evidence::Failure::Syntax(err) => ReadError::Malformed(err),
                        evidence::Failure::Value(source) => failed(source),
                    }
                })?;
                cursor.since(start)
            } else {
                let (value, kind) = cursor.skip().map_err(ReadError::Malformed)?;
                if name == "id" {
                    id = lenient::text_of(value, kind).map_err(failed)?;
                } else {
                    alert.take(&name, value, kind).map_err(failed)?;
                }
                value
            };
            alert.members.push((name, value));
        }
        match id {
            Some(id) if !id.trim().is_empty() => alert.id = id,
            _ => return Err(ReadError::NoId),
        }
        alert.computer_dns_name = alert.computer_dns_name.take().or(device.dns_name);
        alert.machine_id = alert.machine_id.take().or(device.id);
        alert.logged_on_users.extend(device.logged_on_users);
        for value in [
            &mut alert.severity,
            &mut alert.status,
            &mut alert.classification,
            &mut alert.determination,
        ] {
            canonical(value);
        }
        Ok(alert)
    }

    /// Reads the member `name` into its typed field, if it has one; others are kept only as sent.
    fn take(&mut self, name: &str, value: &'a str, kind: Kind) -> serde_json::Result<()> {
        if kind == Kind::Null {
            // Every field starts empty: no name to match.
            return Ok(());
        }
        let slot = match name {
            "incidentId" => return lenient::number_of(value, kind).map(|v| self.incident_id = v),
            "investigationId" => {
                return lenient::number_of(value, kind).map(|v| self.investigation_id = v)
            }
            "mitreTechniques" => {
                return nested::techniques(value, kind).map(|v| self.mitre_techniques = v)
            }
            "relatedUser" => {
                return nested::related_user(value, kind).map(|v| self.related_user = v)
            }
            "loggedOnUsers" => {
                return nested::logged_on_users(value, kind).map(|v| self.logged_on_users = v)
            }
            "assignedTo" => &mut self.assigned_to,
            "severity" => &mut self.severity,
            "status" => &mut self.status,
            "classification" => &mut self.classification,
            "determination" => &mut self.determination,
            "investigationState" => &mut self.investigation_state,
            "detectionSource" => &mut self.detection_source,
            "detectorId" => &mut self.detector_id,
            "category" => &mut self.category,
            "threatFamilyName" => &mut self.threat_family_name,
            "threatName" | "threatDisplayName" => &mut self.threat_name,
            "title" => &mut self.title,
            "description" => &mut self.description,
            // Defender's names, then Graph's for the same facts.
            "alertCreationTime" | "createdDateTime" => &mut self.alert_creation_time,
            "firstEventTime" | "firstActivityDateTime" => &mut self.first_event_time,
            "lastEventTime" | "lastActivityDateTime" => &mut self.last_event_time,
            "lastUpdateTime" | "lastUpdateDateTime" => &mut self.last_update_time,
            "resolvedTime" | "resolvedDateTime" => &mut self.resolved_time,
            "aadTenantId" | "tenantId" => &mut self.aad_tenant_id,
            "serviceSource" => &mut self.service_source,
            "machineId" => &mut self.machine_id,
            "computerDnsName" => &mut self.computer_dns_name,
            "rbacGroupName" => &mut self.rbac_group_name,
            _ => return Ok(()),
        };
        *slot = lenient::text_of(value, kind)?;
        Ok(())
    }
}

/// Graph spells the enums Defender capitalizes in camelCase (`inProgress`, `truePositive`,
/// `apt`): read as Defender spells them, so an alert has one status whichever API sent it, and
/// the dedup fingerprint (over status, classification, determination) does not change when an
/// install moves from one API to the other. Defender's own values start upper-case and are left
/// as they are.
fn canonical(value: &mut Option<Text<'_>>) {
    let Some(text) = value.as_mut() else {
        return;
    };
    let Some(first) = text.chars().next().filter(char::is_ascii_lowercase) else {
        return;
    };
    *text = Cow::Owned(match text.as_ref() {
        "apt" => "APT".to_string(),
        "unknownFutureValue" => "UnknownFutureValue".to_string(),
        rest => format!("{}{}", first.to_ascii_uppercase(), &rest[1..]),
    });
}

impl Alert<'_> {
    /// When the alert was created, else last updated, in epoch milliseconds (None when neither
    /// time reads).
    pub fn created_or_updated_ms(&self) -> Option<i64> {
        let read = |text: Option<&str>| text.and_then(super::time::millis);
        read(self.alert_creation_time.as_deref()).or_else(|| read(self.last_update_time.as_deref()))
    }

    /// The member `name` as sent, if the alert has it.
    pub fn member(&self, name: &str) -> Option<&str> {
        self.members
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, raw)| *raw)
    }
}

/// Why an alert's text could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Not JSON at all: the response it came in is broken.
    #[error("not valid JSON")]
    Malformed(#[source] scan::Syntax),
    /// JSON, but not an object.
    #[error("an alert is a JSON object, not {}", kind_name(*.0))]
    NotAnObject(Kind),
    #[error("alert has an empty or null id")]
    NoId,
    /// Bytes that are not UTF-8: the response it came in is broken.
    #[error("not UTF-8 text")]
    NotText(#[source] std::str::Utf8Error),
    /// A member no lenient reading can make sense of (an escape that decodes to no character).
    #[error("member {member} cannot be read")]
    Member {
        member: String,
        #[source]
        source: serde_json::Error,
    },
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::String { .. } => "a string",
        Kind::Number => "a number",
        Kind::Bool => "a boolean",
        Kind::Null => "null",
        Kind::Object => "an object",
        Kind::Array => "an array",
    }
}

/// An alert as received: its text, and the view of it parsed once.
pub struct PolledAlert {
    // Declared before the bytes they borrow from, so they are dropped first. Boxed: the view
    // is ~3.5 KB with its lists' room, and an alert moves from page to batch to candidate to
    // the publish list; a pointer moves instead. It is read straight into its box.
    view: Box<Alert<'static>>,
    /// `bytes` as text (checked UTF-8 when the alert was read).
    text: &'static str,
    /// The alert's own copy of its text, or its slice of the response chunk it was read in.
    bytes: Bytes,
}

impl PolledAlert {
    /// Parses one alert object, keeping its text. The error says whether the text is not JSON
    /// (a broken response) or not an alert (this one is skipped).
    pub fn parse(text: impl Into<Box<str>>) -> Result<PolledAlert, ReadError> {
        let text: Box<str> = text.into();
        PolledAlert::owning(Bytes::from(text.into_boxed_bytes()))
    }

    /// [`PolledAlert::parse`] of a copy of `bytes`, which must be UTF-8 text
    /// ([`ReadError::NotText`] otherwise).
    pub fn from_bytes(bytes: &[u8]) -> Result<PolledAlert, ReadError> {
        PolledAlert::owning(Bytes::copy_from_slice(bytes))
    }

    fn owning(bytes: Bytes) -> Result<PolledAlert, ReadError> {
        let text = std::str::from_utf8(&bytes).map_err(ReadError::NotText)?;
        // NDJSON needs one line per event; whitespace inside JSON strings is always escaped, so
        // only a pretty-printed alert has raw line breaks, and only that one needs compacting.
        // A break still there after is inside a string: no JSON, as the reading then says.
        if has_line_break(text) {
            let compact = crate::json::compact(text);
            if !has_line_break(&compact) {
                return PolledAlert::owning(Bytes::from(compact));
            }
        }
        // SAFETY: `bytes` is kept beside the text and the view (see `detach`).
        let text = unsafe { detach(text) };
        let view = Alert::read(text)?;
        Ok(PolledAlert { view, text, bytes })
    }

    /// Reads the alert that starts `text`, where it lies: `text` is checked text inside
    /// `chunk`'s bytes. Some(alert, its length) when the alert is whole there, single-line and
    /// readable; None leaves it to [`PolledAlert::from_bytes`] (cut by the chunk's end,
    /// broken, not an alert, or pretty-printed), so every failure is told as that reading tells
    /// it. The alert shares the chunk's bytes instead of copying them.
    pub fn in_place(chunk: &Bytes, text: &str) -> Option<(PolledAlert, usize)> {
        let at = (text.as_ptr() as usize).checked_sub(chunk.as_ptr() as usize)?;
        if at + text.len() > chunk.len() {
            return None;
        }
        // SAFETY: what is kept of the text is kept with its slice of `chunk` (see `detach`).
        let rest = unsafe { detach(text) };
        let (view, len) = Alert::read_prefix(rest).ok()?;
        let text = rest.get(..len)?;
        if has_line_break(text) {
            return None;
        }
        let alert = PolledAlert {
            view,
            text,
            bytes: chunk.slice(at..at + len),
        };
        Some((alert, len))
    }

    /// The parsed view, borrowing from this alert.
    pub fn alert(&self) -> &Alert<'_> {
        let view: &Alert<'static> = &self.view;
        // SAFETY: the view borrows from `text`, which lives as long as `self`; the lifetime is
        // only shortened, behind a shared reference, which the inline lists' invariance alone
        // forbids (an `Alert` holds no cell a shorter-lived value could be written into).
        unsafe { std::mem::transmute::<&Alert<'static>, &Alert<'_>>(view) }
    }

    /// The alert's JSON text as received (compacted if it came pretty-printed).
    pub fn text(&self) -> &str {
        self.text
    }

    /// Bytes of JSON this alert holds.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

/// `text` as if it lived for ever, for a [`PolledAlert`] to keep beside the buffer it borrows.
///
/// # Safety
/// `text` must lie in the buffer of a `Bytes` that the `PolledAlert` keeping the result (and
/// the view read from it) also keeps, declared after them so it is dropped last. A `Bytes`
/// never moves or changes its buffer while a handle to it exists, so moving the struct moves
/// the handle, not the text; `alert()` and `text()` hand them out only for the lifetime of a
/// borrow of the struct. A result not kept that way must not outlive the call that made it.
unsafe fn detach(text: &str) -> &'static str {
    // SAFETY: the caller keeps the buffer alive for as long as the result is used.
    unsafe { std::mem::transmute::<&str, &'static str>(text) }
}

fn has_line_break(text: &str) -> bool {
    memchr::memchr2(b'\n', b'\r', text.as_bytes()).is_some()
}

impl Clone for PolledAlert {
    fn clone(&self) -> Self {
        match PolledAlert::parse(self.text) {
            Ok(alert) => alert,
            // The text parsed once; it parses again.
            Err(_) => unreachable!("an alert's own text reads again"),
        }
    }
}

impl fmt::Debug for PolledAlert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PolledAlert")
            .field("id", &self.view.id)
            .field("bytes", &self.text.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_shapes_do_not_fail_the_alert() {
        let raw = r#"{"id":"da1_2","incidentId":"20433","severity":"High","mitreTechniques":"T1059",
            "evidence":null,"relatedUser":null,"loggedOnUsers":[{"accountName":"u"}],
            "futureField":{"x":1},"comments":[]}"#;
        let alert = Alert::read(raw).unwrap();
        assert_eq!(alert.incident_id, Some(20433));
        assert_eq!(alert.mitre_techniques.as_slice(), ["T1059"]);
        assert!(alert.evidence.is_empty());
        assert_eq!(alert.member("futureField"), Some(r#"{"x":1}"#));
    }

    #[test]
    fn a_graph_alert_reads_into_the_same_view() {
        let text = r##"{"@odata.type":"#microsoft.graph.security.alert","id":"da9_1","incidentId":"48117",
            "status":"inProgress","severity":"high","classification":"truePositive","determination":"apt",
            "serviceSource":"microsoftDefenderForEndpoint","createdDateTime":"2026-11-20T08:15:42.1234567Z",
            "lastUpdateDateTime":"2026-11-20T09:02:10Z","tenantId":"t-1","evidence":[
            {"@odata.type":"#microsoft.graph.security.deviceEvidence","deviceDnsName":"wks-1","mdeDeviceId":"m-1",
             "loggedOnUsers":[{"accountName":"jdoe","domainName":"CONTOSO"}]},
            {"@odata.type":"#microsoft.graph.security.userEvidence","userAccount":{"accountName":"user1",
             "domainName":"CONTOSO","userPrincipalName":"user1@contoso.com"}},
            {"@odata.type":"#microsoft.graph.security.processEvidence","processId":7,"imageFile":{"sha1":"aa"},
             "parentProcessImageFile":{"sha1":"bb","fileName":"cmd.exe"},"userAccount":{"accountName":"svc"}},
            {"@odata.type":"#microsoft.graph.security.fileEvidence","fileDetails":{"sha1":"cc","fileName":"x.exe"}}]}"##;
        let alert = Alert::read(text).unwrap();
        assert_eq!(alert.incident_id, Some(48117));
        assert_eq!(
            [
                &alert.status,
                &alert.severity,
                &alert.classification,
                &alert.determination
            ]
            .map(|v| v.as_deref().unwrap_or_default()),
            ["InProgress", "High", "TruePositive", "APT"],
            "Defender's spelling"
        );
        assert_eq!(
            alert.alert_creation_time.as_deref(),
            Some("2026-11-20T08:15:42.1234567Z")
        );
        assert_eq!(
            alert.last_update_time.as_deref(),
            Some("2026-11-20T09:02:10Z")
        );
        assert_eq!(alert.aad_tenant_id.as_deref(), Some("t-1"));
        assert_eq!(alert.computer_dns_name.as_deref(), Some("wks-1"));
        assert_eq!(alert.machine_id.as_deref(), Some("m-1"));
        assert_eq!(
            alert.logged_on_users[0].account_name.as_deref(),
            Some("jdoe")
        );
        let typed: Vec<(Option<&str>, Option<&str>, Option<&str>)> = alert
            .evidence
            .iter()
            .map(|e| {
                (
                    e.entity_type.as_deref(),
                    e.sha1.as_deref(),
                    e.account_name.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            typed,
            [
                (Some("Machine"), None, None),
                (Some("User"), None, Some("user1")),
                (Some("Process"), Some("aa"), Some("svc")),
                (Some("Process"), Some("bb"), None),
                (Some("File"), Some("cc"), None),
            ]
        );
        // Defender's values are left as sent.
        let defender = Alert::read(r#"{"id":"a","status":"InProgress"}"#).unwrap();
        assert!(matches!(defender.status, Some(Cow::Borrowed("InProgress"))));
    }

    #[test]
    fn lists_longer_than_their_room_inside_the_view_are_read_whole() {
        let extra: String = (0..USUAL_MEMBERS + 12)
            .map(|i| format!(r#","extra{i}":{i}"#))
            .collect();
        let evidence: Vec<String> = (0..7)
            .map(|i| format!(r#"{{"entityType":"File","sha1":"h{i}"}}"#))
            .collect();
        let users: Vec<String> = (0..3)
            .map(|i| format!(r#"{{"accountName":"u{i}","domainName":"D"}}"#))
            .collect();
        let text = format!(
            r#"{{"id":"da1","mitreTechniques":["T1","T2","T3","T4","T5"],"loggedOnUsers":[{}],"evidence":[{}]{extra}}}"#,
            users.join(","),
            evidence.join(","),
        );
        let polled = PolledAlert::parse(text).unwrap();
        let alert = polled.alert();
        assert_eq!(alert.members.len(), 4 + USUAL_MEMBERS + 12);
        assert_eq!(
            alert.members.last().unwrap().1,
            (USUAL_MEMBERS + 11).to_string()
        );
        assert_eq!(
            alert.mitre_techniques.as_slice(),
            ["T1", "T2", "T3", "T4", "T5"]
        );
        let sha1s: Vec<String> = alert
            .evidence
            .iter()
            .map(|e| e.sha1.as_deref().unwrap_or("none").to_string())
            .collect();
        assert_eq!(sha1s, (0..7).map(|i| format!("h{i}")).collect::<Vec<_>>());
        let accounts: Vec<_> = alert
            .logged_on_users
            .iter()
            .map(|u| u.account_name.as_deref())
            .collect();
        assert_eq!(accounts, [Some("u0"), Some("u1"), Some("u2")]);
    }

    #[test]
    fn a_null_never_empties_a_field_a_value_filled() {
        let alert = Alert::read(
            r#"{"id":"a","title":"t","title":null,"severity":null,
                "evidence":[{"sha1":"aa","sha1":null,"fileName":null}]}"#,
        )
        .unwrap();
        assert_eq!(alert.title.as_deref(), Some("t"));
        assert_eq!(alert.severity, None);
        assert_eq!(alert.evidence[0].sha1.as_deref(), Some("aa"));
        assert_eq!(alert.evidence[0].file_name, None);
        let titles: Vec<&str> = alert
            .members
            .iter()
            .filter(|(name, _)| name == "title")
            .map(|(_, raw)| *raw)
            .collect();
        assert_eq!(titles, [r#""t""#, "null"], "both kept as sent");
    }

    #[test]
    fn missing_id_is_an_error() {
        let err = Alert::read(r#"{"id":null,"title":"x"}"#).unwrap_err();
        assert!(err.to_string().contains("null id"), "{err}");
        assert!(matches!(
            Alert::read(r#"{"title":"x"}"#),
            Err(ReadError::NoId)
        ));
    }

    #[test]
    fn strings_are_borrowed_unless_escaped_and_the_text_comes_back_whole() {
        let text = r#"{"id":"da1","title":"plain","description":"line\nbreak","evidence":[{"entityType":"File","sha1":"ab"}]}"#;
        let polled = PolledAlert::parse(text).unwrap();
        let alert = polled.alert();
        assert!(matches!(alert.title, Some(Cow::Borrowed("plain"))));
        assert!(matches!(alert.description, Some(Cow::Owned(_))));
        assert!(matches!(alert.evidence[0].sha1, Some(Cow::Borrowed("ab"))));
        assert_eq!(polled.text(), text);
        let moved = [polled];
        assert_eq!(moved[0].alert().id, "da1", "the view survives a move");
        assert_eq!(moved[0].clone().alert().title.as_deref(), Some("plain"));
    }

    #[test]
    fn broken_text_and_unreadable_alerts_are_told_apart() {
        assert!(matches!(
            PolledAlert::parse(r#"{"id":"a",,}"#),
            Err(ReadError::Malformed(_))
        ));
        assert!(matches!(
            PolledAlert::parse(r#"{"id":"a""#),
            Err(ReadError::Malformed(_))
        ));
        assert!(matches!(
            PolledAlert::parse(r#"{"id":null}"#),
            Err(ReadError::NoId)
        ));
        assert!(matches!(
            PolledAlert::parse("[1]"),
            Err(ReadError::NotAnObject(Kind::Array))
        ));
        assert!(matches!(
            PolledAlert::parse(r#"{"id":"a","title":"\ud800"}"#),
            Err(ReadError::Member { .. })
        ));
    }

    #[test]
    fn a_pretty_alert_is_kept_compact() {
        let pretty = PolledAlert::parse("{\n \"id\": \"a 1\",\n \"n\": [1, 2]\n}").unwrap();
        assert_eq!(pretty.text(), r#"{"id":"a 1","n":[1,2]}"#);
        assert_eq!(pretty.text(), pretty.text());
    }
}
