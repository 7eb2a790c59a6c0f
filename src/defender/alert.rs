//! The Alert entity (docs/defender-api.md). Every field but `id` may be null or absent; enums are
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

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::{evidence, lenient};

pub use super::evidence::{Evidence, LoggedOnUser};
pub use super::lenient::Text;

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
    pub mitre_techniques: Vec<Text<'a>>,
    pub related_user: Option<RelatedUser<'a>>,
    /// Undocumented, observed.
    pub logged_on_users: Vec<LoggedOnUser<'a>>,
    pub evidence: Vec<Evidence<'a>>,
    /// Every top-level member as sent, in order: name and verbatim JSON value.
    pub members: Vec<(Text<'a>, &'a RawValue)>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct RelatedUser<'a> {
    #[serde(borrow, default, deserialize_with = "lenient::opt_string")]
    pub user_name: Option<Text<'a>>,
    #[serde(borrow, default, deserialize_with = "lenient::opt_string")]
    pub domain_name: Option<Text<'a>>,
}

/// A member's name, borrowed unless escaped.
struct Name<'a>(Text<'a>);

impl<'de> Deserialize<'de> for Name<'de> {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        struct NameVisitor;
        impl<'de> Visitor<'de> for NameVisitor {
            type Value = Name<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a member name")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Name(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Name(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Name(Cow::Owned(v)))
            }
        }
        de.deserialize_str(NameVisitor)
    }
}

/// Reads a typed field from the member's verbatim JSON (borrowed from the same text).
fn field<'a, T>(
    raw: &'a RawValue,
    read: impl FnOnce(
        &mut serde_json::Deserializer<serde_json::de::StrRead<'a>>,
    ) -> serde_json::Result<T>,
) -> serde_json::Result<T> {
    read(&mut serde_json::Deserializer::from_str(raw.get()))
}

/// A scalar member as text. Most are a string without escapes or `null`: those are read from
/// the verbatim slice the member's one scan already validated, without parsing it again.
fn text_of(raw: &RawValue) -> serde_json::Result<Option<Text<'_>>> {
    let json = raw.get();
    if json == "null" {
        return Ok(None);
    }
    if let Some(inner) = json.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        if memchr::memchr(b'\\', inner.as_bytes()).is_none() {
            return Ok(Some(Cow::Borrowed(inner)));
        }
    }
    field(raw, |de| lenient::opt_string(de))
}

/// A numeric member: plain integers read directly, anything else (a string, a float) leniently.
fn number_of(raw: &RawValue) -> serde_json::Result<Option<i64>> {
    match raw.get() {
        "null" => Ok(None),
        json => match json.parse::<i64>() {
            Ok(n) => Ok(Some(n)),
            Err(_) => field(raw, |de| lenient::opt_i64(de)),
        },
    }
}

impl<'de> Deserialize<'de> for Alert<'de> {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        struct AlertVisitor;
        impl<'de> Visitor<'de> for AlertVisitor {
            type Value = Alert<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an alert object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                use serde::de::Error;
                let mut alert = Alert::default();
                let mut id = None;
                let mut device = evidence::Device::default();
                while let Some(Name(name)) = map.next_key::<Name<'de>>()? {
                    let raw: &'de RawValue = map.next_value()?;
                    let text = || text_of(raw);
                    let number = || number_of(raw);
                    let read =
                        match name.as_ref() {
                            "id" => text().map(|v| id = Some(v)),
                            "incidentId" => number().map(|v| alert.incident_id = v),
                            "investigationId" => number().map(|v| alert.investigation_id = v),
                            "assignedTo" => text().map(|v| alert.assigned_to = v),
                            "severity" => text().map(|v| alert.severity = v),
                            "status" => text().map(|v| alert.status = v),
                            "classification" => text().map(|v| alert.classification = v),
                            "determination" => text().map(|v| alert.determination = v),
                            "investigationState" => text().map(|v| alert.investigation_state = v),
                            "detectionSource" => text().map(|v| alert.detection_source = v),
                            "detectorId" => text().map(|v| alert.detector_id = v),
                            "category" => text().map(|v| alert.category = v),
                            "threatFamilyName" => text().map(|v| alert.threat_family_name = v),
                            "threatName" => text().map(|v| alert.threat_name = v),
                            "title" => text().map(|v| alert.title = v),
                            "description" => text().map(|v| alert.description = v),
                            // Defender's names, then Graph's for the same facts.
                            "alertCreationTime" | "createdDateTime" => {
                                text().map(|v| alert.alert_creation_time = v)
                            }
                            "firstEventTime" | "firstActivityDateTime" => {
                                text().map(|v| alert.first_event_time = v)
                            }
                            "lastEventTime" | "lastActivityDateTime" => {
                                text().map(|v| alert.last_event_time = v)
                            }
                            "lastUpdateTime" | "lastUpdateDateTime" => {
                                text().map(|v| alert.last_update_time = v)
                            }
                            "resolvedTime" | "resolvedDateTime" => {
                                text().map(|v| alert.resolved_time = v)
                            }
                            "threatDisplayName" => text().map(|v| alert.threat_name = v),
                            "tenantId" => text().map(|v| alert.aad_tenant_id = v),
                            "serviceSource" => text().map(|v| alert.service_source = v),
                            "machineId" => text().map(|v| alert.machine_id = v),
                            "computerDnsName" => text().map(|v| alert.computer_dns_name = v),
                            "rbacGroupName" => text().map(|v| alert.rbac_group_name = v),
                            "aadTenantId" => text().map(|v| alert.aad_tenant_id = v),
                            "mitreTechniques" => field(raw, |de| lenient::vec_of(de))
                                .map(|v| alert.mitre_techniques = v),
                            "relatedUser" => field(raw, |de| lenient::opt_object(de))
                                .map(|v| alert.related_user = v),
                            "loggedOnUsers" => field(raw, |de| lenient::vec_of(de))
                                .map(|v| alert.logged_on_users = v),
                            "evidence" => field(raw, |de| lenient::vec_of(de)).map(|items| {
                                evidence::read(items, &mut alert.evidence, &mut device)
                            }),
                            _ => Ok(()),
                        };
                    read.map_err(|err| A::Error::custom(format!("{name}: {err}")))?;
                    alert.members.push((name, raw));
                }
                match id.flatten() {
                    Some(id) if !id.trim().is_empty() => alert.id = id,
                    _ => return Err(A::Error::custom("alert has an empty or null id")),
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
        }
        de.deserialize_map(AlertVisitor)
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
        let read = |text: Option<&str>| {
            text.and_then(super::time::parse)
                .map(|t| t.timestamp_millis())
        };
        read(self.alert_creation_time.as_deref()).or_else(|| read(self.last_update_time.as_deref()))
    }

    /// The member `name` as sent, if the alert has it.
    pub fn member(&self, name: &str) -> Option<&RawValue> {
        self.members
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, raw)| *raw)
    }
}

/// The whole alert as the API sent it, written from its members (the API sends compact JSON,
/// so this is its text byte for byte).
pub struct Verbatim<'a>(pub &'a Alert<'a>);

impl Serialize for Verbatim<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.members.len()))?;
        for (name, value) in &self.0.members {
            map.serialize_entry(name.as_ref(), value)?;
        }
        map.end()
    }
}

/// Why an alert's text could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Not JSON at all: the response it came in is broken.
    #[error("not valid JSON: {0}")]
    Malformed(#[source] serde_json::Error),
    /// JSON, but not an alert mde-watch can read (no id, not an object).
    #[error("{0}")]
    Unreadable(#[source] serde_json::Error),
}

/// An alert as received: its text, and the view of it parsed once.
pub struct PolledAlert {
    // Declared before `text`, so it is dropped first: it borrows from `text`.
    view: Alert<'static>,
    text: Box<str>,
}

impl PolledAlert {
    /// Parses one alert object, keeping its text. The error says whether the text is not JSON
    /// (a broken response) or not an alert (this one is skipped).
    pub fn parse(text: impl Into<Box<str>>) -> Result<PolledAlert, ReadError> {
        let text: Box<str> = text.into();
        let view: Alert<'_> = serde_json::from_str(&text).map_err(|err| {
            if err.is_syntax() || err.is_eof() {
                ReadError::Malformed(err)
            } else {
                ReadError::Unreadable(err)
            }
        })?;
        // SAFETY: `view` borrows from the heap buffer of `text`, which this struct owns, never
        // changes, and drops after `view` (field order); moving the struct moves the `Box`, not
        // the buffer. `alert()` hands the view out only for the lifetime of a borrow of `self`.
        let view: Alert<'static> =
            unsafe { std::mem::transmute::<Alert<'_>, Alert<'static>>(view) };
        Ok(PolledAlert { view, text })
    }

    /// The parsed view, borrowing from this alert.
    pub fn alert(&self) -> &Alert<'_> {
        &self.view
    }

    /// The alert's JSON text as received (compacted if it came pretty-printed).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Bytes of JSON this alert holds.
    pub fn len(&self) -> usize {
        self.text.len()
    }

    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    /// The whole alert as sent, for formats that carry it.
    pub fn verbatim(&self) -> Verbatim<'_> {
        Verbatim(self.alert())
    }
}

impl Clone for PolledAlert {
    fn clone(&self) -> Self {
        match PolledAlert::parse(self.text.clone()) {
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
        let alert: Alert = serde_json::from_str(raw).unwrap();
        assert_eq!(alert.incident_id, Some(20433));
        assert_eq!(alert.mitre_techniques, ["T1059"]);
        assert!(alert.evidence.is_empty());
        assert_eq!(alert.member("futureField").unwrap().get(), r#"{"x":1}"#);
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
        let alert: Alert = serde_json::from_str(text).unwrap();
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
        let defender: Alert = serde_json::from_str(r#"{"id":"a","status":"InProgress"}"#).unwrap();
        assert!(matches!(defender.status, Some(Cow::Borrowed("InProgress"))));
    }

    #[test]
    fn missing_id_is_an_error() {
        let err = serde_json::from_str::<Alert>(r#"{"id":null,"title":"x"}"#).unwrap_err();
        assert!(err.to_string().contains("null id"), "{err}");
        assert!(serde_json::from_str::<Alert>(r#"{"title":"x"}"#).is_err());
    }

    #[test]
    fn strings_are_borrowed_unless_escaped_and_the_text_comes_back_whole() {
        let text = r#"{"id":"da1","title":"plain","description":"line\nbreak","evidence":[{"entityType":"File","sha1":"ab"}]}"#;
        let polled = PolledAlert::parse(text).unwrap();
        let alert = polled.alert();
        assert!(matches!(alert.title, Some(Cow::Borrowed("plain"))));
        assert!(matches!(alert.description, Some(Cow::Owned(_))));
        assert!(matches!(alert.evidence[0].sha1, Some(Cow::Borrowed("ab"))));
        assert_eq!(serde_json::to_string(&polled.verbatim()).unwrap(), text);
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
            Err(ReadError::Unreadable(_))
        ));
        assert!(matches!(
            PolledAlert::parse("[1]"),
            Err(ReadError::Unreadable(_))
        ));
    }
}
