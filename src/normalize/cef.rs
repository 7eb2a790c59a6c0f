//! ArcSight CEF 0 (normalization.md, "CEF"), the form Sentinel's CommonSecurityLog reads:
//! `CEF:0|Microsoft|Defender for Endpoint|<version>|<signature id>|<name>|<severity>|<extension>`.
//! Header fields escape `\` and `|`; extension values escape `\` and `=` and write line breaks as
//! `\n`/`\r`. Other control characters (NUL and the like) have no CEF escape and become spaces.

use super::{evidence, shorten, EventContext, Severity};
use crate::defender::PolledAlert;

/// ArcSight keeps at most this much of `msg`; longer descriptions are cut and marked.
pub const MSG_LIMIT: usize = 1023;

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

pub fn escape_header(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '|' => out.push_str("\\|"),
            '\r' | '\n' => out.push(' '),
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
    fn add(&mut self, key: &str, value: Option<&str>) {
        if let Some(value) = value.filter(|v| !v.is_empty()) {
            if !self.text.is_empty() {
                self.text.push(' ');
            }
            self.text.push_str(key);
            self.text.push('=');
            escape_value(value, &mut self.text);
        }
    }

    fn labelled(&mut self, key: &str, label: &str, value: Option<&str>) {
        if value.is_some_and(|v| !v.is_empty()) {
            self.add(&format!("{key}Label"), Some(label));
            self.add(key, value);
        }
    }
}

pub fn encode(polled: &PolledAlert, context: &EventContext) -> Vec<u8> {
    let alert = &polled.alert;
    let mut line = String::with_capacity(1024);
    line.push_str("CEF:0|Microsoft|Defender for Endpoint|");
    escape_header(crate::VERSION, &mut line);
    line.push('|');
    escape_header(
        alert.detector_id.as_deref().unwrap_or("mde-alert"),
        &mut line,
    );
    line.push('|');
    escape_header(
        alert
            .title
            .as_deref()
            .unwrap_or("Defender for Endpoint alert"),
        &mut line,
    );
    line.push('|');
    line.push_str(&severity(Severity::parse(alert.severity.as_deref())).to_string());
    line.push('|');

    let mut ext = Extension {
        text: String::with_capacity(512),
    };
    let ms = |t: Option<&String>| evidence::millis(t.map(String::as_str)).map(|v| v.to_string());
    ext.add("rt", ms(alert.alert_creation_time.as_ref()).as_deref());
    ext.add("start", ms(alert.first_event_time.as_ref()).as_deref());
    ext.add("end", ms(alert.last_event_time.as_ref()).as_deref());
    ext.add("externalId", Some(&alert.id));
    ext.add("cat", alert.category.as_deref());
    ext.add("act", alert.status.as_deref());
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
        ext.add("spid", process.process_id.map(|p| p.to_string()).as_deref());
    }
    ext.add("src", evidence::ip(alert));
    ext.add("request", evidence::url(alert));
    ext.add(
        "msg",
        alert
            .description
            .as_deref()
            .map(|d| {
                shorten(
                    d,
                    context
                        .description_limit
                        .map_or(MSG_LIMIT, |l| l.min(MSG_LIMIT)),
                )
            })
            .as_deref(),
    );
    ext.labelled(
        "cs1",
        "IncidentId",
        alert.incident_id.map(|v| v.to_string()).as_deref(),
    );
    ext.labelled(
        "cs2",
        "InvestigationId",
        alert.investigation_id.map(|v| v.to_string()).as_deref(),
    );
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
        "deviceCustomDate1",
        "LastUpdateTime",
        ms(alert.last_update_time.as_ref()).as_deref(),
    );
    ext.labelled(
        "flexString1",
        "WatchlistMatch",
        Some(evidence::matches_text(context.matches)).as_deref(),
    );
    ext.labelled("flexString2", "Change", Some(context.change.as_str()));
    ext.labelled(
        "cn1",
        "SchemaVersion",
        Some(crate::EVENT_SCHEMA_VERSION.to_string()).as_deref(),
    );
    ext.add("dvchost", Some(context.collector));
    line.push_str(&ext.text);
    line.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_follow_the_spec() {
        let mut header = String::new();
        escape_header("a|b\\c\nd", &mut header);
        assert_eq!(header, "a\\|b\\\\c d");
        let mut value = String::new();
        escape_value("x=1\\2\r\n|3", &mut value);
        assert_eq!(value, "x\\=1\\\\2\\r\\n|3");
    }

    #[test]
    fn long_text_is_cut_and_marked() {
        let long = "é".repeat(2000);
        let short = shorten(&long, MSG_LIMIT);
        assert_eq!(short.chars().count(), MSG_LIMIT);
        assert!(short.ends_with(crate::normalize::TRUNCATION_MARK));
        assert_eq!(shorten("short", MSG_LIMIT), "short");
    }
}
