//! JSON for Splunk whose top-level names are the CIM Alerts data model's (app, description, dest,
//! id, mitre_technique_id, severity, signature, signature_id, src, subject, type, user,
//! vendor_account), so a plain sourcetype lights up the data model without field extractions.
//! The full Defender alert rides along under `defender`.

use serde::Serialize;
use serde_json::value::RawValue;

use super::{evidence, EventContext, Provenance, Severity};
use crate::defender::PolledAlert;

#[derive(Serialize)]
struct SplunkAlert<'a> {
    app: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<std::borrow::Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dest: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dest_id: Option<&'a str>,
    id: &'a str,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    mitre_technique_id: &'a [String],
    severity: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    signature: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    signature_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    src: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    subject: Option<&'a str>,
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    vendor_account: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    category: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    file_hash: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    file_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    file_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    process: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<&'a str>,
    /// Epoch seconds of the alert's creation, for `TIME_PREFIX`-free timestamp extraction.
    #[serde(skip_serializing_if = "Option::is_none")]
    time: Option<f64>,
    defender: &'a RawValue,
    mde_watch: Provenance<'a>,
}

pub fn encode(polled: &PolledAlert, context: &EventContext) -> serde_json::Result<Vec<u8>> {
    let alert = &polled.alert;
    let file = evidence::file(alert);
    let event = SplunkAlert {
        app: "Microsoft Defender for Endpoint",
        description: super::description(alert, context),
        dest: alert.computer_dns_name.as_deref(),
        dest_id: alert.machine_id.as_deref(),
        id: &alert.id,
        mitre_technique_id: &alert.mitre_techniques,
        severity: Severity::parse(alert.severity.as_deref()).cim(),
        signature: alert.title.as_deref(),
        signature_id: alert.detector_id.as_deref(),
        src: evidence::ip(alert),
        subject: alert.title.as_deref(),
        kind: "alert",
        user: alert
            .related_user
            .as_ref()
            .and_then(|u| u.user_name.as_deref()),
        vendor_account: alert.aad_tenant_id.as_deref(),
        category: alert.category.as_deref(),
        status: alert.status.as_deref(),
        file_hash: file.and_then(|f| f.sha1.as_deref().or(f.sha256.as_deref())),
        file_name: file.and_then(|f| f.file_name.as_deref()),
        file_path: file
            .and_then(|f| evidence::full_path(f.file_path.as_deref(), f.file_name.as_deref())),
        process: evidence::process(alert).and_then(|p| p.process_command_line.as_deref()),
        url: evidence::url(alert),
        time: evidence::millis(alert.alert_creation_time.as_deref()).map(|ms| ms as f64 / 1000.0),
        defender: &polled.raw,
        mde_watch: Provenance::from(context),
    };
    let mut out = Vec::with_capacity(polled.raw.get().len() * 2 + 512);
    serde_json::to_writer(&mut out, &event)?;
    Ok(out)
}
