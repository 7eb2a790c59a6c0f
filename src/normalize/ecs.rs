//! ECS (Elastic Common Schema) events, following docs/formats.md: ECS fields where ECS has a
//! place, `microsoft.defender_endpoint.*` for the rest of the alert (the namespace Elastic's own
//! integration uses), `mde_watch.*` for ours. Field types follow the ECS definitions
//! (`event.severity` is a number; `event.category`, `event.type`, `related.*` are arrays).

use std::borrow::Cow;

use serde::Serialize;

use super::evidence;
use super::text;
use super::vendor::VendorFields;
use super::{Change, EventContext, Provenance, Severity};
use crate::defender::{time, Alert, PolledAlert};

pub const ECS_VERSION: &str = "9.0.0";

#[derive(Serialize)]
struct EcsEvent<'a> {
    #[serde(rename = "@timestamp")]
    timestamp: Cow<'a, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
    ecs: EcsVersion,
    event: EventFields<'a>,
    rule: Rule<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    threat: Option<Threat<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    host: Option<Host<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<User<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<File<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    process: Option<Process<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<Url<'a>>,
    related: Related<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cloud: Option<Cloud<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    organization: Option<Id<'a>>,
    observer: Observer,
    #[serde(skip_serializing_if = "Option::is_none")]
    microsoft: Option<Microsoft<'a>>,
    mde_watch: Provenance<'a>,
}

#[derive(Serialize)]
struct EcsVersion {
    version: &'static str,
}

#[derive(Serialize)]
struct EventFields<'a> {
    kind: &'static str,
    category: &'static [&'static str],
    #[serde(rename = "type")]
    kind_type: [&'static str; 1],
    action: &'static str,
    provider: &'static str,
    module: &'static str,
    dataset: &'static str,
    id: &'a str,
    severity: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    created: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    start: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    end: Option<Cow<'a, str>>,
}

#[derive(Serialize)]
struct Rule<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    category: Option<&'a str>,
}

#[derive(Serialize)]
struct Threat<'a> {
    framework: &'static str,
    technique: Technique<'a>,
}

#[derive(Serialize)]
struct Technique<'a> {
    id: Vec<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    subtechnique: Option<Subtechnique<'a>>,
}

#[derive(Serialize)]
struct Subtechnique<'a> {
    id: Vec<&'a str>,
}

#[derive(Serialize)]
struct Host<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hostname: Option<&'a str>,
}

#[derive(Serialize)]
struct User<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    domain: Option<&'a str>,
}

#[derive(Serialize)]
struct File<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    directory: Option<&'a str>,
    hash: Hash<'a>,
}

#[derive(Serialize)]
struct Hash<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    sha1: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sha256: Option<&'a str>,
}

#[derive(Serialize)]
struct Process<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pid: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    command_line: Option<&'a str>,
}

#[derive(Serialize)]
struct Url<'a> {
    full: &'a str,
}

#[derive(Serialize)]
struct Related<'a> {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    hash: Vec<&'a str>,
    /// Only addresses: Elasticsearch rejects a whole document for one non-IP in an `ip` field.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    ip: Vec<std::net::IpAddr>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    user: Vec<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    hosts: Vec<&'a str>,
}

#[derive(Serialize)]
struct Cloud<'a> {
    account: Id<'a>,
}

#[derive(Serialize)]
struct Id<'a> {
    id: &'a str,
}

#[derive(Serialize)]
struct Observer {
    vendor: &'static str,
    product: &'static str,
}

#[derive(Serialize)]
struct Microsoft<'a> {
    defender_endpoint: VendorFields<'a>,
}

pub fn encode(polled: &PolledAlert, context: &EventContext) -> serde_json::Result<Vec<u8>> {
    let alert = polled.alert();
    let vendor = VendorFields::of(alert);
    // ECS events are a little larger than the alert they come from: size the buffer once.
    let mut out = Vec::with_capacity(polled.len() + 1024);
    serde_json::to_writer(&mut out, &build(alert, vendor, context))?;
    Ok(out)
}

fn build<'a>(
    alert: &'a Alert,
    vendor: VendorFields<'a>,
    context: &EventContext<'a>,
) -> EcsEvent<'a> {
    let created = alert
        .alert_creation_time
        .as_deref()
        .and_then(normalized_time);
    let timestamp = created
        .clone()
        .or_else(|| alert.last_update_time.as_deref().and_then(normalized_time))
        .unwrap_or(Cow::Borrowed(context.observed_at));
    let severity = Severity::parse(alert.severity.as_deref());
    let file_evidence = evidence::file(alert);
    let process_evidence = evidence::process(alert);
    let url = evidence::url(alert).map(|full| Url { full });
    EcsEvent {
        timestamp,
        message: alert.title.as_deref(),
        ecs: EcsVersion {
            version: ECS_VERSION,
        },
        event: EventFields {
            kind: "alert",
            category: categories(alert),
            kind_type: ["info"],
            action: match context.change {
                Change::New => "alert-created",
                Change::Updated => "alert-updated",
            },
            provider: super::product::of(alert).provider,
            module: "mde_watch",
            dataset: "mde_watch.alert",
            id: &alert.id,
            severity: severity.ecs(),
            created,
            start: alert.first_event_time.as_deref().and_then(normalized_time),
            end: alert.last_event_time.as_deref().and_then(normalized_time),
        },
        rule: Rule {
            id: alert.detector_id.as_deref(),
            name: alert.title.as_deref(),
            description: alert.description.as_deref(),
            category: alert.category.as_deref(),
        },
        threat: threat(&alert.mitre_techniques),
        host: host(alert),
        user: alert.related_user.as_ref().and_then(|u| {
            (u.user_name.is_some() || u.domain_name.is_some()).then_some(User {
                name: u.user_name.as_deref(),
                domain: u.domain_name.as_deref(),
            })
        }),
        file: file_evidence.map(|e| File {
            name: e.file_name.as_deref(),
            path: evidence::full_path(e.file_path.as_deref(), e.file_name.as_deref()),
            directory: e.file_path.as_deref(),
            hash: Hash {
                sha1: e.sha1.as_deref(),
                sha256: e.sha256.as_deref(),
            },
        }),
        process: process_evidence.map(|e| Process {
            pid: e.process_id,
            name: e.file_name.as_deref(),
            command_line: e.process_command_line.as_deref(),
        }),
        url,
        related: related(alert),
        cloud: alert
            .aad_tenant_id
            .as_deref()
            .map(|id| Cloud { account: Id { id } }),
        organization: alert.aad_tenant_id.as_deref().map(|id| Id { id }),
        observer: Observer {
            vendor: "Microsoft",
            product: super::product::of(alert).name,
        },
        microsoft: context.verbatim.then_some(Microsoft {
            defender_endpoint: vendor,
        }),
        mde_watch: Provenance::from(context),
    }
}

/// Defender times in UTC RFC 3339; unreadable ones are left out of ECS date fields (they stay,
/// verbatim, in the vendor namespace or the raw format). A valid UTC time ending in `Z` is
/// already what ECS takes (Elasticsearch reads up to 9 fractional digits), so it goes out as is.
fn normalized_time(text: &str) -> Option<Cow<'_, str>> {
    let parsed = time::parse(text)?;
    if text.ends_with('Z') {
        Some(Cow::Borrowed(text))
    } else {
        Some(Cow::Owned(time::format(parsed)))
    }
}

fn categories(alert: &Alert) -> &'static [&'static str] {
    let malware = alert.threat_family_name.is_some()
        || alert
            .category
            .as_deref()
            .is_some_and(|c| c.eq_ignore_ascii_case("malware"));
    if malware {
        &["intrusion_detection", "malware"]
    } else {
        &["intrusion_detection"]
    }
}

/// `T1003.001` is a sub-technique of `T1003`: the parent goes to technique.id, the full id to
/// technique.subtechnique.id.
fn threat<'a>(techniques: &'a [std::borrow::Cow<'a, str>]) -> Option<Threat<'a>> {
    if techniques.is_empty() {
        return None;
    }
    let mut ids: Vec<&str> = Vec::new();
    let mut subs: Vec<&str> = Vec::new();
    for technique in techniques {
        let technique = technique.trim();
        let parent = technique.split('.').next().unwrap_or(technique);
        push_unique(&mut ids, parent);
        if technique.contains('.') {
            push_unique(&mut subs, technique);
        }
    }
    Some(Threat {
        framework: "MITRE ATT&CK",
        technique: Technique {
            id: ids,
            subtechnique: (!subs.is_empty()).then_some(Subtechnique { id: subs }),
        },
    })
}

fn push_unique<T: PartialEq>(list: &mut Vec<T>, item: T) {
    if !list.contains(&item) {
        list.push(item);
    }
}

fn host<'a>(alert: &'a Alert<'a>) -> Option<Host<'a>> {
    let name = alert.computer_dns_name.as_deref();
    if name.is_none() && alert.machine_id.is_none() {
        return None;
    }
    Some(Host {
        id: alert.machine_id.as_deref(),
        name,
        hostname: name.map(|n| n.split('.').next().unwrap_or(n)),
    })
}

fn related<'a>(alert: &'a Alert<'a>) -> Related<'a> {
    let mut related = Related {
        hash: Vec::new(),
        ip: Vec::new(),
        user: Vec::new(),
        hosts: Vec::new(),
    };
    if let Some(name) = alert
        .related_user
        .as_ref()
        .and_then(|u| u.user_name.as_deref())
    {
        push_unique(&mut related.user, name);
    }
    for user in &alert.logged_on_users {
        if let Some(name) = user.account_name.as_deref() {
            push_unique(&mut related.user, name);
        }
    }
    for evidence in &alert.evidence {
        for hash in [evidence.sha1.as_deref(), evidence.sha256.as_deref()]
            .into_iter()
            .flatten()
        {
            push_unique(&mut related.hash, hash);
        }
        // A value that is not an address stays, verbatim, in the evidence under
        // microsoft.defender_endpoint.
        if let Some(ip) = evidence.ip_address.as_deref().and_then(text::ip) {
            push_unique(&mut related.ip, ip);
        }
        if let Some(name) = evidence.account_name.as_deref() {
            push_unique(&mut related.user, name);
        }
    }
    if let Some(host) = alert.computer_dns_name.as_deref() {
        push_unique(&mut related.hosts, host);
    }
    related
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subtechniques_split_from_parents() {
        let techniques = ["T1003".into(), "T1003.001".into(), "T1059.001".into()];
        let threat = threat(&techniques).unwrap();
        assert_eq!(threat.technique.id, ["T1003", "T1059"]);
        assert_eq!(
            threat.technique.subtechnique.unwrap().id,
            ["T1003.001", "T1059.001"]
        );
        assert!(super::threat(&[]).is_none());
    }
}
