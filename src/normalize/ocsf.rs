//! OCSF 1.3 Detection Finding (class_uid 2004) with the `host` profile: activity Create for a new
//! alert, Update for a changed one, Close once it is Resolved; times in epoch milliseconds.
//! Every event validates against the OCSF 1.3.0 JSON schema whatever the alert holds: the
//! required `time` and `finding_info.title` have fallbacks, strings are cut to the schema's
//! 65,535 characters, and a value that breaks its attribute's type (a non-IP in an `ip`, a host
//! name with `|`, a "SHA-1" that is not 40 hex digits) is not dropped but moved to
//! `unmapped.nonconforming` with the attribute it was meant for. The whole alert, verbatim, is
//! `unmapped.defender` (docs/formats.md, "OCSF").

use serde::Serialize;

use super::text::{self, Capped};
use super::{evidence, Change, EventContext, Provenance, Severity, UNTITLED};
use crate::defender::{Alert, Evidence, PolledAlert};
use crate::json::text_slot::{self, TextSlot};

pub const OCSF_VERSION: &str = "1.3.0";
const CLASS_UID: u32 = 2004;

/// OCSF's `string_t`: at most 65,535 characters.
type Text<'a> = Capped<'a, 65_535>;

#[serde_with::skip_serializing_none]
#[derive(Serialize)]
struct Finding<'a> {
    class_uid: u32,
    class_name: &'static str,
    category_uid: u32,
    category_name: &'static str,
    activity_id: u32,
    activity_name: &'static str,
    type_uid: u32,
    type_name: &'static str,
    severity_id: u8,
    severity: &'static str,
    status_id: u8,
    status: Text<'a>,
    time: i64,
    message: Option<Text<'a>>,
    finding_info: FindingInfo<'a>,
    device: Option<Device<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    evidences: Vec<EvidenceItem<'a>>,
    metadata: Metadata<'a>,
    unmapped: Unmapped<'a>,
}

#[serde_with::skip_serializing_none]
#[derive(Serialize)]
struct FindingInfo<'a> {
    uid: Text<'a>,
    title: Text<'a>,
    desc: Option<Text<'a>>,
    created_time: Option<i64>,
    first_seen_time: Option<i64>,
    last_seen_time: Option<i64>,
    modified_time: Option<i64>,
    analytic: Option<Analytic<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    types: Vec<Text<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    attacks: Vec<Attack<'a>>,
}

#[derive(Serialize)]
struct Analytic<'a> {
    uid: Text<'a>,
    type_id: u8,
    #[serde(rename = "type")]
    kind: &'static str,
}

#[serde_with::skip_serializing_none]
#[derive(Serialize)]
struct Attack<'a> {
    technique: Uid<'a>,
    sub_technique: Option<Uid<'a>>,
    version: &'static str,
}

#[derive(Serialize)]
struct Uid<'a> {
    uid: Text<'a>,
}

#[serde_with::skip_serializing_none]
#[derive(Serialize)]
struct Device<'a> {
    uid: Option<Text<'a>>,
    hostname: Option<&'a str>,
    name: Option<Text<'a>>,
    type_id: u8,
}

#[serde_with::skip_serializing_none]
#[derive(Serialize, Default)]
struct EvidenceItem<'a> {
    file: Option<File<'a>>,
    process: Option<Process<'a>>,
    src_endpoint: Option<Endpoint>,
    url: Option<Url<'a>>,
    user: Option<User<'a>>,
}

#[serde_with::skip_serializing_none]
#[derive(Serialize)]
struct File<'a> {
    /// Required by OCSF: the evidence's file name, else its hash (how the file is known).
    name: &'a str,
    path: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    hashes: Vec<Hash<'a>>,
    type_id: u8,
}

#[derive(Serialize)]
struct Hash<'a> {
    algorithm_id: u8,
    algorithm: &'static str,
    value: &'a str,
}

#[serde_with::skip_serializing_none]
#[derive(Serialize)]
struct Process<'a> {
    pid: i64,
    cmd_line: Option<Text<'a>>,
    file: Option<File<'a>>,
}

#[derive(Serialize)]
struct Endpoint {
    ip: String,
}

#[derive(Serialize)]
struct Url<'a> {
    url_string: &'a str,
}

#[serde_with::skip_serializing_none]
#[derive(Serialize)]
struct User<'a> {
    name: &'a str,
    domain: Option<Text<'a>>,
}

#[serde_with::skip_serializing_none]
#[derive(Serialize)]
struct Metadata<'a> {
    product: Product,
    version: &'static str,
    /// `host`: the profile `device` belongs to; a validating consumer rejects it undeclared.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    profiles: &'static [&'static str],
    original_time: Option<Text<'a>>,
    tenant_uid: Option<Text<'a>>,
    uid: Text<'a>,
}

#[derive(Serialize)]
struct Product {
    name: &'static str,
    vendor_name: &'static str,
}

#[serde_with::skip_serializing_none]
#[derive(Serialize)]
struct Unmapped<'a> {
    /// The whole alert as the API sent it: everything OCSF has no field for stays reachable.
    defender: Option<TextSlot>,
    mde_watch: Provenance<'a>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    nonconforming: Vec<Nonconforming<'a>>,
}

/// A value the alert holds that its OCSF attribute's type does not allow.
#[derive(Serialize)]
struct Nonconforming<'a> {
    attribute: &'static str,
    value: Text<'a>,
    reason: &'static str,
}

fn severity_id(severity: Severity) -> (u8, &'static str) {
    match severity {
        Severity::Unspecified => (0, "Unknown"),
        Severity::Informational => (1, "Informational"),
        Severity::Low => (2, "Low"),
        Severity::Medium => (3, "Medium"),
        Severity::High => (4, "High"),
    }
}

/// The schema's `status_id` and its caption; for Other (99) the caption is the source's value.
fn status(status: Option<&str>) -> (u8, &str) {
    match status.map(str::to_ascii_lowercase).as_deref() {
        Some("new") => (1, "New"),
        Some("inprogress") => (2, "In Progress"),
        Some("resolved") => (4, "Resolved"),
        None | Some("unknown") | Some("") => (0, "Unknown"),
        Some(_) => (99, status.unwrap_or("Other")),
    }
}

/// Builds the event's evidence and device parts, noting values that do not fit their type.
struct Mapper<'a> {
    nonconforming: Vec<Nonconforming<'a>>,
}

impl<'a> Mapper<'a> {
    fn reject(&mut self, attribute: &'static str, value: &'a str, reason: &'static str) {
        self.nonconforming.push(Nonconforming {
            attribute,
            value: Capped(value),
            reason,
        });
    }

    fn hash(
        &mut self,
        value: Option<&'a str>,
        (algorithm_id, algorithm, digits): (u8, &'static str, usize),
    ) -> Option<Hash<'a>> {
        let value = value?;
        if text::is_hex_digest(value, digits) {
            Some(Hash {
                algorithm_id,
                algorithm,
                value,
            })
        } else {
            self.reject(
                "evidences.file.hashes.value",
                value,
                "not a hex digest of the algorithm's length",
            );
            None
        }
    }

    /// The evidence's file, when it names one: a name, a path or a valid hash.
    fn file(&mut self, e: &'a Evidence) -> Option<File<'a>> {
        let mut hashes = Vec::new();
        hashes.extend(self.hash(e.sha1.as_deref(), (2, "SHA-1", 40)));
        hashes.extend(self.hash(e.sha256.as_deref(), (3, "SHA-256", 64)));
        let name = e
            .file_name
            .as_deref()
            .or_else(|| hashes.first().map(|h| h.value))?;
        Some(File {
            name,
            path: evidence::full_path(e.file_path.as_deref(), e.file_name.as_deref())
                .map(|path| text::shorten(&path, 65_535).into_owned()),
            hashes,
            type_id: 1,
        })
    }

    fn evidence(&mut self, e: &'a Evidence) -> Option<EvidenceItem<'a>> {
        if e.is("Process") {
            let file = self.file(e);
            return match e.process_id {
                Some(pid) => Some(EvidenceItem {
                    process: Some(Process {
                        pid,
                        cmd_line: e.process_command_line.as_deref().map(Capped),
                        file,
                    }),
                    ..Default::default()
                }),
                // OCSF's process needs a pid: without one, the image file is the evidence.
                None => {
                    if let Some(cmd_line) = e.process_command_line.as_deref() {
                        self.reject("evidences.process.cmd_line", cmd_line, "process has no pid");
                    }
                    file.map(|file| EvidenceItem {
                        file: Some(file),
                        ..Default::default()
                    })
                }
            };
        }
        if e.is("File") || e.sha1.is_some() || e.sha256.is_some() {
            return self.file(e).map(|file| EvidenceItem {
                file: Some(file),
                ..Default::default()
            });
        }
        if let Some(value) = e.ip_address.as_deref() {
            match text::ip(value) {
                Some(ip) => {
                    return Some(EvidenceItem {
                        src_endpoint: Some(Endpoint { ip: ip.to_string() }),
                        ..Default::default()
                    })
                }
                None => self.reject("evidences.src_endpoint.ip", value, "not an IP address"),
            }
        }
        if let Some(url_string) = e.url.as_deref() {
            return Some(EvidenceItem {
                url: Some(Url { url_string }),
                ..Default::default()
            });
        }
        e.account_name.as_deref().map(|name| EvidenceItem {
            user: Some(User {
                name,
                domain: e.domain_name.as_deref().map(Capped),
            }),
            ..Default::default()
        })
    }

    fn device(&mut self, alert: &'a crate::defender::Alert) -> Option<Device<'a>> {
        let host = alert.computer_dns_name.as_deref();
        if host.is_none() && alert.machine_id.is_none() {
            return None;
        }
        let hostname = host.filter(|h| {
            let valid = text::is_hostname(h);
            if !valid {
                self.reject("device.hostname", h, "not a DNS host name");
            }
            valid
        });
        Some(Device {
            uid: alert.machine_id.as_deref().map(Capped),
            hostname,
            name: host.map(|h| Capped(h.split('.').next().unwrap_or(h))),
            type_id: 0,
        })
    }
}

/// What was found: the alert's identity, text, times, rule and ATT&CK techniques.
fn finding_info<'a>(alert: &'a Alert<'_>, title: &'a str) -> FindingInfo<'a> {
    let attacks = alert
        .mitre_techniques
        .iter()
        .map(|t| {
            let parent = t.split('.').next().unwrap_or(t);
            Attack {
                technique: Uid {
                    uid: Capped(parent),
                },
                sub_technique: t.contains('.').then_some(Uid { uid: Capped(t) }),
                version: "v15",
            }
        })
        .collect();
    FindingInfo {
        uid: Capped(&alert.id),
        title: Capped(title),
        desc: alert.description.as_deref().map(Capped),
        created_time: evidence::millis(alert.alert_creation_time.as_deref()),
        first_seen_time: evidence::millis(alert.first_event_time.as_deref()),
        last_seen_time: evidence::millis(alert.last_event_time.as_deref()),
        modified_time: evidence::millis(alert.last_update_time.as_deref()),
        analytic: alert.detector_id.as_deref().map(|uid| Analytic {
            uid: Capped(uid),
            type_id: 1,
            kind: "Rule",
        }),
        types: alert.category.as_deref().map(Capped).into_iter().collect(),
        attacks,
    }
}

pub fn encode(polled: &PolledAlert, context: &EventContext) -> serde_json::Result<Vec<u8>> {
    let alert = &polled.alert();
    let (status_id, status) = status(alert.status.as_deref());
    let (activity_id, activity_name, type_name) = match (status_id, context.change) {
        (4, _) => (3, "Close", "Detection Finding: Close"),
        (_, Change::New) => (1, "Create", "Detection Finding: Create"),
        (_, Change::Updated) => (2, "Update", "Detection Finding: Update"),
    };
    let (severity_id, severity) = severity_id(Severity::parse(alert.severity.as_deref()));
    let mut mapper = Mapper {
        nonconforming: Vec::new(),
    };
    let device = mapper.device(alert);
    let evidences = alert
        .evidence
        .iter()
        .filter_map(|e| mapper.evidence(e))
        .collect();
    let title = alert.title.as_deref().unwrap_or(UNTITLED);
    let finding = Finding {
        class_uid: CLASS_UID,
        class_name: "Detection Finding",
        category_uid: 2,
        category_name: "Findings",
        activity_id,
        activity_name,
        type_uid: CLASS_UID * 100 + activity_id,
        type_name,
        severity_id,
        severity,
        status_id,
        status: Capped(status),
        time: super::event_time_ms(alert, context),
        message: Some(Capped(title)),
        finding_info: finding_info(alert, title),
        metadata: Metadata {
            product: Product {
                name: super::product::of(alert).full_name,
                vendor_name: "Microsoft",
            },
            version: OCSF_VERSION,
            profiles: if device.is_some() { &["host"] } else { &[] },
            original_time: alert.alert_creation_time.as_deref().map(Capped),
            tenant_uid: alert.aad_tenant_id.as_deref().map(Capped),
            uid: Capped(&alert.id),
        },
        device,
        evidences,
        unmapped: Unmapped {
            defender: context.verbatim.then_some(TextSlot),
            mde_watch: Provenance::from(context),
            nonconforming: mapper.nonconforming,
        },
    };
    let mut out = Vec::with_capacity(polled.len() + 1536);
    text_slot::to_vec(&mut out, &finding, polled.text())?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_captions_come_from_the_schema() {
        assert_eq!(status(Some("New")), (1, "New"));
        assert_eq!(status(Some("InProgress")), (2, "In Progress"));
        assert_eq!(status(Some("resolved")), (4, "Resolved"));
        assert_eq!(status(Some("Unknown")), (0, "Unknown"));
        assert_eq!(status(None), (0, "Unknown"));
        assert_eq!(status(Some("Escalated")), (99, "Escalated"));
    }
}
