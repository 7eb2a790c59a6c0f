//! ArcSight CEF 0 (docs/formats.md, "CEF"), the form Sentinel's CommonSecurityLog reads:
//! `CEF:0|Microsoft|Defender for Endpoint|<version>|<signature id>|<name>|<severity>|<extension>`.
//! Header fields escape `\` and `|`; extension values escape `\` and `=` and write line breaks as
//! `\n`/`\r`. Other control characters (NUL and the like) have no CEF escape and become spaces.
//! Every field stays within the length ArcSight's key dictionary gives it (a longer value is cut
//! and marked), so a strict CEF reader takes every event whole: a title over the header's 512
//! characters is cut there and carried in `cs2` (Title) up to 4,000.

use super::text::{self, shorten};
use super::{evidence, EventContext, Severity, UNTITLED};
use crate::defender::{Alert, PolledAlert};

/// ArcSight's limits for the header fields, in characters.
pub const HEADER_LIMITS: HeaderLimits = HeaderLimits {
    vendor: 63,
    product: 63,
    version: 31,
    signature_id: 1023,
    name: 512,
};

pub struct HeaderLimits {
    pub vendor: usize,
    pub product: usize,
    pub version: usize,
    pub signature_id: usize,
    pub name: usize,
}

/// ArcSight keeps at most this much of `msg`; longer descriptions are cut and marked.
pub const MSG_LIMIT: usize = 1023;

/// What one extension key holds, from ArcSight's CEF key dictionary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    /// Text of at most this many characters.
    Text(usize),
    /// Milliseconds since the epoch.
    Time,
    /// A 64-bit number (`cnN`).
    Long,
    /// A 32-bit number (`spid`).
    Integer,
    Ipv4,
    Ipv6,
}

/// Every extension key these events use, with its type (the dictionary's `length` for text).
pub const KEYS: &[(&str, KeyType)] = &[
    ("rt", KeyType::Time),
    ("start", KeyType::Time),
    ("end", KeyType::Time),
    ("externalId", KeyType::Text(40)),
    ("cat", KeyType::Text(1023)),
    ("suser", KeyType::Text(1023)),
    ("sntdom", KeyType::Text(255)),
    ("dhost", KeyType::Text(1023)),
    ("deviceExternalId", KeyType::Text(255)),
    ("fileHash", KeyType::Text(255)),
    ("fname", KeyType::Text(1023)),
    ("filePath", KeyType::Text(1023)),
    ("sproc", KeyType::Text(1023)),
    ("spid", KeyType::Integer),
    ("src", KeyType::Ipv4),
    ("c6a2", KeyType::Ipv6),
    ("c6a2Label", KeyType::Text(1023)),
    ("request", KeyType::Text(1023)),
    ("msg", KeyType::Text(MSG_LIMIT)),
    ("cs1", KeyType::Text(4000)),
    ("cs1Label", KeyType::Text(1023)),
    ("cs2", KeyType::Text(4000)),
    ("cs2Label", KeyType::Text(1023)),
    ("cs3", KeyType::Text(4000)),
    ("cs3Label", KeyType::Text(1023)),
    ("cs4", KeyType::Text(4000)),
    ("cs4Label", KeyType::Text(1023)),
    ("cs5", KeyType::Text(4000)),
    ("cs5Label", KeyType::Text(1023)),
    ("cs6", KeyType::Text(4000)),
    ("cs6Label", KeyType::Text(1023)),
    ("cn1", KeyType::Long),
    ("cn1Label", KeyType::Text(1023)),
    ("cn2", KeyType::Long),
    ("cn2Label", KeyType::Text(1023)),
    ("cn3", KeyType::Long),
    ("cn3Label", KeyType::Text(1023)),
    ("deviceCustomDate1", KeyType::Time),
    ("deviceCustomDate1Label", KeyType::Text(1023)),
    ("flexString1", KeyType::Text(1023)),
    ("flexString1Label", KeyType::Text(128)),
    ("flexString2", KeyType::Text(1023)),
    ("flexString2Label", KeyType::Text(128)),
    ("dvchost", KeyType::Text(100)),
];

pub fn key_type(key: &str) -> Option<KeyType> {
    KEYS.iter().find(|(k, _)| *k == key).map(|(_, t)| *t)
}

/// CEF severity 0–10.
pub fn severity(severity: Severity) -> u8 {
    match severity {
        Severity::Unspecified => 0,
        Severity::Informational => 1,
        Severity::Low => 3,
        Severity::Medium => 5,
        Severity::High => 8,
    }
}

/// Writes a header field cut to `limit` characters, escaped.
pub fn escape_header(value: &str, limit: usize, out: &mut String) {
    for c in shorten(value, limit).chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '|' => out.push_str("\\|"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
}

pub fn escape_value(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '=' => out.push_str("\\="),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
}

struct Extension {
    text: String,
}

impl Extension {
    /// Adds `key=value`, the value cut to the key's dictionary length. Keys outside [`KEYS`]
    /// are a programming error caught by the tests, not by a panic here.
    fn add(&mut self, key: &str, value: Option<&str>) {
        let Some(value) = value.filter(|v| !v.is_empty()) else {
            return;
        };
        let value = match key_type(key) {
            Some(KeyType::Text(limit)) => shorten(value, limit),
            _ => value.into(),
        };
        if !self.text.is_empty() {
            self.text.push(' ');
        }
        self.text.push_str(key);
        self.text.push('=');
        escape_value(&value, &mut self.text);
    }

    fn labelled(&mut self, key: &str, label: &str, value: Option<&str>) {
        if value.is_some_and(|v| !v.is_empty()) {
            self.add(&format!("{key}Label"), Some(label));
            self.add(key, value);
        }
    }
}

pub fn encode(polled: &PolledAlert, context: &EventContext) -> Vec<u8> {
    let alert = &polled.alert();
    let title = alert.title.as_deref().unwrap_or(UNTITLED);
    let mut line = String::with_capacity(1024);
    write_header(alert, title, &mut line);
    let mut ext = Extension {
        text: String::with_capacity(512),
    };
    add_times_and_ids(&mut ext, alert, context);
    add_entities(&mut ext, alert);
    add_labelled(&mut ext, alert, context, title);
    line.push_str(&ext.text);
    line.into_bytes()
}

/// `CEF:0|Vendor|Product|Version|SignatureID|Name|Severity|`, each field cut to its limit.
fn write_header(alert: &Alert, title: &str, line: &mut String) {
    let limits = &HEADER_LIMITS;
    line.push_str("CEF:0|");
    escape_header("Microsoft", limits.vendor, line);
    line.push('|');
    escape_header(super::product::of(alert).name, limits.product, line);
    line.push('|');
    escape_header(crate::VERSION, limits.version, line);
    line.push('|');
    escape_header(
        alert.detector_id.as_deref().unwrap_or("mde-alert"),
        limits.signature_id,
        line,
    );
    line.push('|');
    escape_header(title, limits.name, line);
    line.push('|');
    line.push_str(&severity(Severity::parse(alert.severity.as_deref())).to_string());
    line.push('|');
}

fn millis_text(time: Option<&str>) -> Option<String> {
    evidence::millis(time).map(|v| v.to_string())
}

/// When it happened and which alert it is.
fn add_times_and_ids(ext: &mut Extension, alert: &Alert, context: &EventContext) {
    ext.add(
        "rt",
        Some(super::event_time_ms(alert, context).to_string()).as_deref(),
    );
    ext.add(
        "start",
        millis_text(alert.first_event_time.as_deref()).as_deref(),
    );
    ext.add(
        "end",
        millis_text(alert.last_event_time.as_deref()).as_deref(),
    );
    ext.add("externalId", Some(&alert.id));
    ext.add("cat", alert.category.as_deref());
}

/// Who, on which device, with which file, process, address and URL.
fn add_entities(ext: &mut Extension, alert: &Alert) {
    if let Some(user) = &alert.related_user {
        ext.add("suser", user.user_name.as_deref());
        ext.add("sntdom", user.domain_name.as_deref());
    }
    ext.add("dhost", alert.computer_dns_name.as_deref());
    ext.add("deviceExternalId", alert.machine_id.as_deref());
    if let Some(file) = evidence::file(alert) {
        ext.add("fileHash", file.sha1.as_deref().or(file.sha256.as_deref()));
        ext.add("fname", file.file_name.as_deref());
        ext.add(
            "filePath",
            evidence::full_path(file.file_path.as_deref(), file.file_name.as_deref()).as_deref(),
        );
    }
    if let Some(process) = evidence::process(alert) {
        ext.add("sproc", process.process_command_line.as_deref());
        // spid is a 32-bit Integer in the dictionary.
        let pid = process.process_id.and_then(|p| i32::try_from(p).ok());
        ext.add("spid", pid.map(|p| p.to_string()).as_deref());
    }
    // `src` is IPv4 only; an IPv6 source goes to the custom IPv6 key with its label. Values
    // that are not addresses stay out (the raw format and ECS's vendor namespace keep them).
    let addresses: Vec<std::net::IpAddr> = alert
        .evidence
        .iter()
        .filter_map(|e| e.ip_address.as_deref().and_then(text::ip))
        .collect();
    let v4 = addresses
        .iter()
        .find(|a| a.is_ipv4())
        .map(|a| a.to_string());
    let v6 = addresses
        .iter()
        .find(|a| a.is_ipv6())
        .map(|a| a.to_string());
    ext.add("src", v4.as_deref());
    ext.labelled("c6a2", "Source IPv6 Address", v6.as_deref());
    ext.add("request", evidence::url(alert));
}

/// The fields CEF has no name for, each with its label, then the collector.
fn add_labelled(ext: &mut Extension, alert: &Alert, context: &EventContext, title: &str) {
    let limits = &HEADER_LIMITS;
    ext.add("msg", alert.description.as_deref());
    ext.labelled("cs1", "Status", alert.status.as_deref());
    if title.chars().count() > limits.name {
        ext.labelled("cs2", "Title", Some(title));
    }
    ext.labelled("cs3", "Classification", alert.classification.as_deref());
    ext.labelled(
        "cs4",
        "MitreTechniques",
        Some(alert.mitre_techniques.join(",")).as_deref(),
    );
    ext.labelled("cs5", "Determination", alert.determination.as_deref());
    ext.labelled(
        "cs6",
        "TenantId",
        alert.aad_tenant_id.as_deref().or(Some(context.tenant_id)),
    );
    ext.labelled(
        "cn1",
        "SchemaVersion",
        Some(crate::EVENT_SCHEMA_VERSION.to_string()).as_deref(),
    );
    ext.labelled(
        "cn2",
        "IncidentId",
        alert.incident_id.map(|v| v.to_string()).as_deref(),
    );
    ext.labelled(
        "cn3",
        "InvestigationId",
        alert.investigation_id.map(|v| v.to_string()).as_deref(),
    );
    ext.labelled(
        "deviceCustomDate1",
        "LastUpdateTime",
        millis_text(alert.last_update_time.as_deref()).as_deref(),
    );
    ext.labelled(
        "flexString1",
        "WatchlistMatch",
        Some(evidence::matches_text(context.matches)).as_deref(),
    );
    let change = if context.truncated {
        format!("{},truncated", context.change.as_str())
    } else {
        context.change.as_str().to_string()
    };
    ext.labelled("flexString2", "Change", Some(change.as_str()));
    ext.add("dvchost", Some(context.collector));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_follow_the_spec() {
        let mut header = String::new();
        escape_header("a|b\\c\nd", 100, &mut header);
        assert_eq!(header, "a\\|b\\\\c d");
        let mut value = String::new();
        escape_value("x=1\\2\r\n|3", &mut value);
        assert_eq!(value, "x\\=1\\\\2\\r\\n|3");
    }

    #[test]
    fn header_fields_are_cut_before_they_are_escaped() {
        let mut header = String::new();
        escape_header(&"|".repeat(600), 512, &mut header);
        let unescaped = header.replace("\\|", "|");
        assert_eq!(unescaped.chars().count(), 512);
    }
}
