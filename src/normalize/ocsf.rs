//! OCSF 1.3 Detection Finding (class_uid 2004): activity Create for a new alert, Update for a
//! changed one, Close once it is Resolved; times in epoch milliseconds; what OCSF has no place for
//! goes to `unmapped`, verbatim (normalization.md, "Status" and "Field mapping").

use serde::Serialize;
use serde_json::value::RawValue;

use super::{evidence, Change, EventContext, Provenance, Severity};
use crate::defender::{Evidence, PolledAlert};

pub const OCSF_VERSION: &str = "1.3.0";
const CLASS_UID: u32 = 2004;

#[derive(Serialize)]
struct Finding<'a> {
    class_uid: u32,
    class_name: &'static str,
    category_uid: u32,
    category_name: &'static str,
    activity_id: u32,
    activity_name: &'static str,
    type_uid: u32,
    type_name: String,
    severity_id: u8,
    severity: &'static str,
    status_id: u8,
    status: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    time: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
    finding_info: FindingInfo<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    device: Option<Device<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    evidences: Vec<EvidenceItem<'a>>,
    metadata: Metadata<'a>,
    unmapped: Unmapped<'a>,
}

#[derive(Serialize)]
struct FindingInfo<'a> {
    uid: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    title: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    desc: Option<std::borrow::Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    created_time: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    first_seen_time: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_seen_time: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    modified_time: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    analytic: Option<Analytic<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    types: Vec<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    attacks: Vec<Attack<'a>>,
}

#[derive(Serialize)]
struct Analytic<'a> {
    uid: &'a str,
    type_id: u8,
    #[serde(rename = "type")]
    kind: &'static str,
}

#[derive(Serialize)]
struct Attack<'a> {
    technique: Uid<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sub_technique: Option<Uid<'a>>,
    version: &'static str,
}

#[derive(Serialize)]
struct Uid<'a> {
    uid: &'a str,
}

#[derive(Serialize)]
struct Device<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    uid: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hostname: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    type_id: u8,
}

#[derive(Serialize, Default)]
struct EvidenceItem<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<File<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    process: Option<Process<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    src_endpoint: Option<Endpoint<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<Url<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<User<'a>>,
}

#[derive(Serialize)]
struct File<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
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

#[derive(Serialize)]
struct Process<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pid: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cmd_line: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<File<'a>>,
}

#[derive(Serialize)]
struct Endpoint<'a> {
    ip: &'a str,
}

#[derive(Serialize)]
struct Url<'a> {
    url_string: &'a str,
}

#[derive(Serialize)]
struct User<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    domain: Option<&'a str>,
}

#[derive(Serialize)]
struct Metadata<'a> {
    product: Product,
    version: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    original_time: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tenant_uid: Option<&'a str>,
    uid: &'a str,
}

#[derive(Serialize)]
struct Product {
    name: &'static str,
    vendor_name: &'static str,
}

#[derive(Serialize)]
struct Unmapped<'a> {
    /// The whole alert as the API sent it: everything OCSF has no field for stays reachable.
    defender: &'a RawValue,
    mde_watch: Provenance<'a>,
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

fn status_id(status: Option<&str>) -> u8 {
    match status.map(str::to_ascii_lowercase).as_deref() {
        Some("new") => 1,
        Some("inprogress") => 2,
        Some("resolved") => 4,
        Some(_) => 99,
        None => 0,
    }
}

fn file(e: &Evidence) -> File<'_> {
    let mut hashes = Vec::new();
    if let Some(value) = e.sha1.as_deref() {
        hashes.push(Hash {
            algorithm_id: 2,
            algorithm: "SHA-1",
            value,
        });
    }
    if let Some(value) = e.sha256.as_deref() {
        hashes.push(Hash {
            algorithm_id: 3,
            algorithm: "SHA-256",
            value,
        });
    }
    File {
        name: e.file_name.as_deref(),
        path: evidence::full_path(e.file_path.as_deref(), e.file_name.as_deref()),
        hashes,
        type_id: 1,
    }
}

fn evidences(polled: &PolledAlert) -> Vec<EvidenceItem<'_>> {
    polled
        .alert
        .evidence
        .iter()
        .filter_map(|e| {
            let item = if e.is("Process") {
                EvidenceItem {
                    process: Some(Process {
                        pid: e.process_id,
                        cmd_line: e.process_command_line.as_deref(),
                        file: e.file_name.is_some().then(|| file(e)),
                    }),
                    ..Default::default()
                }
            } else if e.is("File") || e.sha1.is_some() || e.sha256.is_some() {
                EvidenceItem {
                    file: Some(file(e)),
                    ..Default::default()
                }
            } else if let Some(ip) = e.ip_address.as_deref() {
                EvidenceItem {
                    src_endpoint: Some(Endpoint { ip }),
                    ..Default::default()
                }
            } else if let Some(url_string) = e.url.as_deref() {
                EvidenceItem {
                    url: Some(Url { url_string }),
                    ..Default::default()
                }
            } else if e.account_name.is_some() {
                EvidenceItem {
                    user: Some(User {
                        name: e.account_name.as_deref(),
                        domain: e.domain_name.as_deref(),
                    }),
                    ..Default::default()
                }
            } else {
                return None;
            };
            Some(item)
        })
        .collect()
}

pub fn encode(polled: &PolledAlert, context: &EventContext) -> serde_json::Result<Vec<u8>> {
    let alert = &polled.alert;
    let status_id = status_id(alert.status.as_deref());
    let (activity_id, activity_name) = match (status_id, context.change) {
        (4, _) => (3, "Close"),
        (_, Change::New) => (1, "Create"),
        (_, Change::Updated) => (2, "Update"),
    };
    let (severity_id, severity) = severity_id(Severity::parse(alert.severity.as_deref()));
    let created = evidence::millis(alert.alert_creation_time.as_deref());
    let attacks = alert
        .mitre_techniques
        .iter()
        .map(|t| {
            let parent = t.split('.').next().unwrap_or(t);
            Attack {
                technique: Uid { uid: parent },
                sub_technique: t.contains('.').then_some(Uid { uid: t }),
                version: "v15",
            }
        })
        .collect();
    let host = alert.computer_dns_name.as_deref();
    let finding = Finding {
        class_uid: CLASS_UID,
        class_name: "Detection Finding",
        category_uid: 2,
        category_name: "Findings",
        activity_id,
        activity_name,
        type_uid: CLASS_UID * 100 + activity_id,
        type_name: format!("Detection Finding: {activity_name}"),
        severity_id,
        severity,
        status_id,
        status: alert.status.as_deref().unwrap_or("Unknown"),
        time: created.or_else(|| evidence::millis(alert.last_update_time.as_deref())),
        message: alert.title.as_deref(),
        finding_info: FindingInfo {
            uid: &alert.id,
            title: alert.title.as_deref(),
            desc: super::description(alert, context),
            created_time: created,
            first_seen_time: evidence::millis(alert.first_event_time.as_deref()),
            last_seen_time: evidence::millis(alert.last_event_time.as_deref()),
            modified_time: evidence::millis(alert.last_update_time.as_deref()),
            analytic: alert.detector_id.as_deref().map(|uid| Analytic {
                uid,
                type_id: 1,
                kind: "Rule",
            }),
            types: alert.category.as_deref().into_iter().collect(),
            attacks,
        },
        device: (host.is_some() || alert.machine_id.is_some()).then(|| Device {
            uid: alert.machine_id.as_deref(),
            hostname: host,
            name: host.map(|h| h.split('.').next().unwrap_or(h)),
            type_id: 0,
        }),
        evidences: evidences(polled),
        metadata: Metadata {
            product: Product {
                name: "Microsoft Defender for Endpoint",
                vendor_name: "Microsoft",
            },
            version: OCSF_VERSION,
            original_time: alert.alert_creation_time.as_deref(),
            tenant_uid: alert.aad_tenant_id.as_deref(),
            uid: &alert.id,
        },
        unmapped: Unmapped {
            defender: &polled.raw,
            mde_watch: Provenance::from(context),
        },
    };
    let mut out = Vec::with_capacity(polled.raw.get().len() + 1536);
    serde_json::to_writer(&mut out, &finding)?;
    Ok(out)
}
