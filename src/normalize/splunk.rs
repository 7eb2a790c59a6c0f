//! JSON for Splunk whose top-level names are the CIM Alerts data model's (app, description, dest,
//! id, mitre_technique_id, severity, signature, signature_id, src, subject, type, user,
//! vendor_account), so a plain sourcetype lights up the data model without field extractions.
//! `time` comes first, inside Splunk's default 128-character timestamp lookahead; the full
//! Defender alert rides along under `defender`. `splunk_hec` wraps the same event in the HTTP
//! Event Collector envelope, for HEC and Splunk Connect for Kafka. The props, eventtypes and
//! tags stanzas that give the events `tag=alert` ship under packaging/splunk/.

use serde::Serialize;

use super::{evidence, EventContext, Provenance, Severity};
use crate::defender::PolledAlert;
use crate::json::text_slot::{self, TextSlot};

/// The sourcetype the shipped props.conf and eventtypes.conf describe.
pub const SOURCETYPE: &str = "mde_watch:alert";
/// The source every event names.
pub const SOURCE: &str = "mde-watch";

#[serde_with::skip_serializing_none]
#[derive(Serialize)]
struct SplunkAlert<'a> {
    /// Epoch seconds of the alert's creation (else its last update, else when it was seen).
    time: f64,
    app: &'static str,
    description: Option<&'a str>,
    dest: Option<&'a str>,
    dest_id: Option<&'a str>,
    id: &'a str,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    mitre_technique_id: &'a [std::borrow::Cow<'a, str>],
    severity: &'static str,
    signature: Option<&'a str>,
    signature_id: Option<&'a str>,
    src: Option<String>,
    subject: Option<&'a str>,
    #[serde(rename = "type")]
    kind: &'static str,
    user: Option<&'a str>,
    vendor_account: Option<&'a str>,
    category: Option<&'a str>,
    status: Option<&'a str>,
    file_hash: Option<&'a str>,
    file_name: Option<&'a str>,
    file_path: Option<String>,
    process: Option<&'a str>,
    url: Option<&'a str>,
    defender: Option<TextSlot>,
    mde_watch: Provenance<'a>,
}

/// HEC's event envelope: <https://docs.splunk.com/Documentation/Splunk/latest/Data/FormateventsforHTTPEventCollector>.
#[derive(Serialize)]
struct HecEvent<'a> {
    time: f64,
    host: &'a str,
    source: &'static str,
    sourcetype: &'static str,
    event: SplunkAlert<'a>,
}

fn build<'a>(polled: &'a PolledAlert, context: &EventContext<'a>) -> SplunkAlert<'a> {
    let alert = &polled.alert();
    let file = evidence::file(alert);
    SplunkAlert {
        time: super::event_time_ms(alert, context) as f64 / 1000.0,
        app: super::product::of(alert).full_name,
        description: alert.description.as_deref(),
        dest: alert.computer_dns_name.as_deref(),
        dest_id: alert.machine_id.as_deref(),
        id: &alert.id,
        mitre_technique_id: &alert.mitre_techniques,
        severity: Severity::parse(alert.severity.as_deref()).cim(),
        signature: alert.title.as_deref(),
        signature_id: alert.detector_id.as_deref(),
        // CIM's src is an address or a host name; a value that is neither stays in `defender`.
        src: alert
            .evidence
            .iter()
            .find_map(|e| e.ip_address.as_deref().and_then(super::text::ip))
            .map(|ip| ip.to_string()),
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
        defender: context.verbatim.then_some(TextSlot),
        mde_watch: Provenance::from(context),
    }
}

pub fn encode(polled: &PolledAlert, context: &EventContext) -> serde_json::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(polled.len() * 2 + 512);
    text_slot::to_vec(&mut out, &build(polled, context), polled.text())?;
    Ok(out)
}

pub fn encode_hec(polled: &PolledAlert, context: &EventContext) -> serde_json::Result<Vec<u8>> {
    let event = build(polled, context);
    let envelope = HecEvent {
        time: event.time,
        host: context.collector,
        source: SOURCE,
        sourcetype: SOURCETYPE,
        event,
    };
    let mut out = Vec::with_capacity(polled.len() * 2 + 640);
    text_slot::to_vec(&mut out, &envelope, polled.text())?;
    Ok(out)
}
