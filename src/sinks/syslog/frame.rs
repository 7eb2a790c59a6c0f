//! Syslog messages as bytes (docs/formats.md, "Syslog"), pure: RFC 5424 and RFC 3164 headers,
//! structured-data escaping, and RFC 6587 framing for stream transports.

use chrono::{DateTime, Local, Utc};

use crate::normalize::Severity;

/// Facility numbers by name (RFC 5424 §6.2.1).
pub fn facility(name: &str) -> Option<u8> {
    let names = [
        "kern",
        "user",
        "mail",
        "daemon",
        "auth",
        "syslog",
        "lpr",
        "news",
        "uucp",
        "cron",
        "authpriv",
        "ftp",
        "ntp",
        "security",
        "console",
        "solaris-cron",
        "local0",
        "local1",
        "local2",
        "local3",
        "local4",
        "local5",
        "local6",
        "local7",
    ];
    names.iter().position(|n| *n == name).map(|p| p as u8)
}

/// Syslog severity for an alert severity: High → err (3), Medium → warning (4), Low → notice
/// (5), Informational and unspecified → info (6).
pub fn severity(severity: Severity) -> u8 {
    match severity {
        Severity::High => 3,
        Severity::Medium => 4,
        Severity::Low => 5,
        Severity::Informational | Severity::Unspecified => 6,
    }
}

/// Printable US-ASCII only, at most `max` bytes, `-` when nothing is left (RFC 5424 §6.2).
pub fn header_field(value: &str, max: usize) -> String {
    let clean: String = value
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(max)
        .collect();
    if clean.is_empty() {
        "-".into()
    } else {
        clean
    }
}

/// In SD-PARAM values `"`, `\` and `]` are escaped with a backslash (RFC 5424 §6.3.3). Control
/// characters (CR, LF, NUL, ESC…) have no escape there and would end or forge a record at a
/// receiver that splits on them: each becomes U+FFFD, visibly not what was sent.
pub fn escape_sd_value(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            '"' | '\\' | ']' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push(char::REPLACEMENT_CHARACTER),
            c => out.push(c),
        }
    }
}

/// What RFC 3164 relays read as a HOSTNAME: letters, digits, `-`, `_` and `.` (anything else,
/// a `|`, `]`, `"` or space, starts the TAG for them).
pub fn is_rfc3164_hostname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

pub struct Rfc5424<'a> {
    pub pri: u8,
    /// The event's time; at most 6 fractional digits go out.
    pub timestamp: DateTime<Utc>,
    pub hostname: &'a str,
    pub app_name: &'a str,
    pub procid: u32,
    pub msgid: &'a str,
    /// SD-ID and its params.
    pub structured_data: (&'a str, &'a [(&'a str, &'a str)]),
}

impl Rfc5424<'_> {
    pub fn encode(&self, msg: &[u8]) -> Vec<u8> {
        let mut head = format!(
            "<{}>1 {} {} {} {} {} ",
            self.pri,
            self.timestamp.format("%Y-%m-%dT%H:%M:%S%.6fZ"),
            header_field(self.hostname, 255),
            header_field(self.app_name, 48),
            self.procid,
            header_field(self.msgid, 32),
        );
        let (id, params) = self.structured_data;
        if params.is_empty() {
            head.push('-');
        } else {
            head.push('[');
            head.push_str(id);
            for (name, value) in params {
                head.push(' ');
                head.push_str(name);
                head.push_str("=\"");
                escape_sd_value(value, &mut head);
                head.push('"');
            }
            head.push(']');
        }
        let mut out = head.into_bytes();
        if !msg.is_empty() {
            out.push(b' ');
            out.extend_from_slice(msg);
        }
        out
    }
}

/// `<PRI>Mmm dd hh:mm:ss HOSTNAME TAG: MSG`, in local time, for relays that predate RFC 5424.
/// The header has no year, so a receiver stamps its own: `timestamp` must be the send time (an
/// alert from 2020 would otherwise be filed under this year); the alert's time is in the event.
/// The HOSTNAME keeps only the characters [`is_rfc3164_hostname`] allows (config checks it).
pub fn rfc3164(
    pri: u8,
    timestamp: DateTime<Utc>,
    hostname: &str,
    tag: &str,
    msg: &[u8],
) -> Vec<u8> {
    let local = timestamp.with_timezone(&Local);
    let tag: String = tag
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(32)
        .collect();
    let hostname: String = hostname
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .take(255)
        .collect();
    let hostname = if hostname.is_empty() { "-" } else { &hostname };
    let mut out = format!(
        "<{pri}>{} {hostname} {tag}: ",
        local.format("%b %e %H:%M:%S"),
    )
    .into_bytes();
    out.extend_from_slice(msg);
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// RFC 6587 §3.4.1: `LEN SP MSG`; any byte may appear in the message.
    OctetCounting,
    /// RFC 6587 §3.4.2: the message, then LF; line breaks inside become spaces.
    Newline,
}

pub fn frame(framing: Framing, message: &[u8], out: &mut Vec<u8>) {
    match framing {
        Framing::OctetCounting => {
            out.extend_from_slice(message.len().to_string().as_bytes());
            out.push(b' ');
            out.extend_from_slice(message);
        }
        Framing::Newline => {
            out.extend(
                message
                    .iter()
                    .map(|&b| if b == b'\n' || b == b'\r' { b' ' } else { b }),
            );
            out.push(b'\n');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::says;
    use chrono::TimeZone;

    #[test]
    fn rfc5424_matches_the_reference_example() {
        let timestamp = Utc.with_ymd_and_hms(2026, 11, 23, 5, 0, 37).unwrap()
            + chrono::Duration::nanoseconds(123_456_789);
        let params = [
            ("alertId", "da637000"),
            ("tenant", "t\"]\\"),
            ("match", "user:user1"),
        ];
        let header = Rfc5424 {
            pri: 20 * 8 + 3,
            timestamp,
            hostname: "collector01",
            app_name: "mde-watch",
            procid: 4242,
            msgid: "cef",
            structured_data: ("mdewatch@32473", &params),
        };
        assert_eq!(
            String::from_utf8(header.encode(b"CEF:0|x")).unwrap(),
            r#"<163>1 2026-11-23T05:00:37.123456Z collector01 mde-watch 4242 cef [mdewatch@32473 alertId="da637000" tenant="t\"\]\\" match="user:user1"] CEF:0|x"#
        );
    }

    #[test]
    fn sd_values_carry_no_control_characters() {
        let mut out = String::new();
        escape_sd_value("da1\r\n<13>1 forged\u{0}\u{1b}[31m", &mut out);
        assert!(!out.chars().any(|c| c.is_control()), "{out:?}");
        assert_eq!(out, "da1\u{fffd}\u{fffd}<13>1 forged\u{fffd}\u{fffd}[31m");
    }

    #[test]
    fn rfc3164_hostnames() {
        assert!(is_rfc3164_hostname("collector-01.corp_eu"));
        for bad in ["a|b", "a=b", "a\\b", "a]b", "a\"b", "a b", ""] {
            assert!(!is_rfc3164_hostname(bad), "{bad}");
        }
        let line = rfc3164(13, Utc::now(), "evil|host]", "mdewatch", b"x");
        let text = String::from_utf8(line).unwrap();
        says(&text, " evilhost mdewatch: x");
    }

    #[test]
    fn header_fields_are_printable_ascii() {
        assert_eq!(header_field("host name\u{202e}", 255), "hostname");
        assert_eq!(header_field("", 48), "-");
        assert_eq!(header_field(&"a".repeat(300), 255).len(), 255);
    }

    #[test]
    fn framings() {
        let mut out = Vec::new();
        frame(Framing::OctetCounting, "é\n1".as_bytes(), &mut out);
        assert_eq!(
            out,
            "4 é\n1".as_bytes(),
            "the length counts bytes, not characters"
        );
        out.clear();
        frame(Framing::Newline, b"a\nb", &mut out);
        assert_eq!(out, b"a b\n");
    }

    #[test]
    fn facilities_and_severities() {
        assert_eq!(facility("local4"), Some(20));
        assert_eq!(facility("nope"), None);
        assert_eq!(severity(Severity::High), 3);
        assert_eq!(severity(Severity::Informational), 6);
    }
}
