//! The emulator's alerts in the Graph security API's shape (`alerts_v2`): the same universe
//! rendered as Graph renders a Defender for Endpoint alert (camelCase enums, `createdDateTime`,
//! `lastUpdateDateTime`, `incidentId` as a string, typed evidence under `@odata.type`), and
//! alerts only Graph serves: Defender for Office 365 alerts naming a user by user evidence only.
//! Pure: a Defender alert in, a Graph alert out.

use serde_json::{json, Map, Value};

use super::universe::{epoch, Universe};

const ALERT_TYPE: &str = "#microsoft.graph.security.alert";

/// Graph's spelling of a Defender enum value: `InProgress` → `inProgress`, `APT` → `apt`.
fn camel(value: &Value) -> Value {
    match value.as_str() {
        Some("APT") => Value::from("apt"),
        Some(text) => {
            let mut chars = text.chars();
            Value::from(
                chars
                    .next()
                    .map(|c| c.to_lowercase().chain(chars).collect::<String>())
                    .unwrap_or_default(),
            )
        }
        None => Value::Null,
    }
}

/// A Defender alert as Graph serves it.
pub fn to_graph(alert: &Value) -> Value {
    let field = |name: &str| alert.get(name).cloned().unwrap_or(Value::Null);
    let mut evidence: Vec<Value> = alert["evidence"]
        .as_array()
        .map(|items| items.iter().map(typed).collect())
        .unwrap_or_default();
    let host = field("computerDnsName");
    if !host.is_null() {
        evidence.insert(
            0,
            json!({
                "@odata.type": "#microsoft.graph.security.deviceEvidence",
                "createdDateTime": field("alertCreationTime"),
                "verdict": "unknown",
                "remediationStatus": "none",
                "mdeDeviceId": field("machineId"),
                "deviceDnsName": host,
                "rbacGroupName": field("rbacGroupName"),
                "loggedOnUsers": field("loggedOnUsers"),
                "roles": [],
                "tags": [],
            }),
        );
    }
    let id = field("id");
    json!({
        "@odata.type": ALERT_TYPE,
        "id": id,
        "providerAlertId": id,
        "incidentId": match field("incidentId") {
            Value::Number(n) => Value::from(n.to_string()),
            other => other,
        },
        "status": camel(&field("status")),
        "severity": camel(&field("severity")),
        "classification": camel(&field("classification")),
        "determination": camel(&field("determination")),
        "serviceSource": "microsoftDefenderForEndpoint",
        "detectionSource": camel(&field("detectionSource")),
        "detectorId": field("detectorId"),
        "tenantId": field("aadTenantId"),
        "title": field("title"),
        "description": field("description"),
        "category": field("category"),
        "assignedTo": field("assignedTo"),
        "threatDisplayName": field("threatName"),
        "threatFamilyName": field("threatFamilyName"),
        "mitreTechniques": field("mitreTechniques"),
        "createdDateTime": field("alertCreationTime"),
        "lastUpdateDateTime": field("lastUpdateTime"),
        "resolvedDateTime": field("resolvedTime"),
        "firstActivityDateTime": field("firstEventTime"),
        "lastActivityDateTime": field("lastEventTime"),
        "comments": [],
        "evidence": evidence,
    })
}

/// One Defender evidence item as Graph types it.
fn typed(item: &Value) -> Value {
    let field = |name: &str| item.get(name).cloned().unwrap_or(Value::Null);
    let file = |sha1: Value, sha256: Value, name: Value, path: Value| json!({ "sha1": sha1, "sha256": sha256, "fileName": name, "filePath": path });
    let account = || {
        json!({
            "accountName": field("accountName"),
            "domainName": field("domainName"),
            "userSid": field("userSid"),
            "azureAdUserId": field("aadUserId"),
            "userPrincipalName": field("userPrincipalName"),
        })
    };
    let mut out = Map::new();
    let kind = item["entityType"].as_str().unwrap_or_default();
    let (odata, extra) = match kind {
        "User" => ("userEvidence", json!({ "userAccount": account() })),
        "File" => (
            "fileEvidence",
            json!({
                "detectionStatus": camel(&field("detectionStatus")),
                "fileDetails": file(field("sha1"), field("sha256"), field("fileName"), field("filePath")),
            }),
        ),
        "Process" => (
            "processEvidence",
            json!({
                "processId": field("processId"),
                "parentProcessId": field("parentProcessId"),
                "processCommandLine": field("processCommandLine"),
                "imageFile": file(field("sha1"), field("sha256"), field("fileName"), field("filePath")),
                "parentProcessImageFile": file(Value::Null, Value::Null, field("parentProcessFileName"), field("parentProcessFilePath")),
                "userAccount": if field("accountName").is_null() { Value::Null } else { account() },
            }),
        ),
        "Ip" => ("ipEvidence", json!({ "ipAddress": field("ipAddress") })),
        "Url" => ("urlEvidence", json!({ "url": field("url") })),
        other => {
            let mut name = camel(&Value::from(other))
                .as_str()
                .unwrap_or_default()
                .to_string();
            name.push_str("Evidence");
            return json!({
                "@odata.type": format!("#microsoft.graph.security.{name}"),
                "createdDateTime": field("evidenceCreationTime"),
            });
        }
    };
    out.insert(
        "@odata.type".into(),
        Value::from(format!("#microsoft.graph.security.{odata}")),
    );
    out.insert("createdDateTime".into(), field("evidenceCreationTime"));
    out.insert("verdict".into(), Value::from("unknown"));
    out.insert("remediationStatus".into(), Value::from("none"));
    if let Value::Object(extra) = extra {
        out.extend(extra);
    }
    Value::Object(out)
}

/// Users that also have an alert only Graph serves: every fourth.
pub fn has_office_alert(user: usize) -> bool {
    user % 4 == 1
}

/// The Defender for Office 365 alert of `user` (1-based), created at `created_secs` after the
/// universe's epoch: it names the user by user evidence only, with a UPN and the mail domain.
pub fn office_alert(user: usize, created_secs: u64) -> Value {
    let name = Universe::user_name(user);
    let at = (epoch() + chrono::Duration::seconds(created_secs as i64))
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string();
    json!({
        "@odata.type": ALERT_TYPE,
        "id": office_alert_id(user),
        "providerAlertId": format!("{:08x}-0365-4000-8000-{:012x}", user, user),
        "incidentId": format!("{}", 90_000 + user),
        "status": "new",
        "severity": "medium",
        "classification": null,
        "determination": null,
        "serviceSource": "microsoftDefenderForOffice365",
        "detectionSource": "microsoftDefenderForOffice365",
        "detectorId": "0365d0d0-0000-4000-8000-000000000001",
        "tenantId": "190241b8-187f-4db3-8148-d73536294b3a",
        "title": "Email messages containing malicious URL removed after delivery",
        "description": format!("An emulated Office 365 alert for {name}."),
        "category": "InitialAccess",
        "assignedTo": null,
        "mitreTechniques": ["T1566.002"],
        "createdDateTime": at,
        "lastUpdateDateTime": at,
        "resolvedDateTime": null,
        "firstActivityDateTime": at,
        "lastActivityDateTime": at,
        "comments": [],
        "evidence": [{
            "@odata.type": "#microsoft.graph.security.userEvidence",
            "createdDateTime": at,
            "verdict": "unknown",
            "remediationStatus": "none",
            "userAccount": {
                "accountName": name,
                "domainName": "contoso.com",
                "userPrincipalName": format!("{name}@contoso.com"),
            },
        }],
    })
}

/// When the Office 365 alert of `user` was created, in seconds after the epoch: spread over
/// ten minutes.
pub fn office_alert_secs(user: usize) -> u64 {
    (user % 600) as u64
}

/// The same, in microseconds since 1970, as a feed's filter compares it.
pub fn office_alert_micros(user: usize) -> i64 {
    crate::defender::time::to_micros(
        epoch() + chrono::Duration::seconds(office_alert_secs(user) as i64),
    )
}

/// Other products' ids are not Defender's `da…` form.
pub fn office_alert_id(user: usize) -> String {
    format!("fa{:08x}-0365-4000-8000-{:012x}", user, user)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::defender::PolledAlert;
    use crate::sim::UniverseSpec;

    #[test]
    fn a_graph_rendering_reads_back_as_the_same_alert() {
        let universe = Universe::new(UniverseSpec {
            seed: 5,
            users: 20,
            files: 20,
            ..UniverseSpec::default()
        });
        for index in 0..universe.alerts.len() {
            let Some(defender) = universe.render(index, 0) else {
                continue;
            };
            let graph = to_graph(&defender);
            let (d, g) = (
                PolledAlert::parse(defender.to_string()).unwrap(),
                PolledAlert::parse(graph.to_string()).unwrap(),
            );
            let (d, g) = (d.alert(), g.alert());
            assert_eq!(d.id, g.id);
            assert_eq!(d.status, g.status, "{}", d.id);
            assert_eq!(d.last_update_time, g.last_update_time);
            let digest = crate::store::AlertDigest::of;
            assert_eq!(digest(d), digest(g), "the dedup digest holds across APIs");
        }
        let office = office_alert(1, 30);
        assert!(PolledAlert::parse(office.to_string()).is_ok());
    }
}
