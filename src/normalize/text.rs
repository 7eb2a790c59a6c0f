//! Small checks and cuts shared by the formats: text cut to a receiver's limit (marked, on a
//! character boundary), IP addresses and host names as strict receivers read them.

use std::borrow::Cow;
use std::net::IpAddr;

use serde::{Serialize, Serializer};

/// Appended to every value mde-watch had to cut.
pub const TRUNCATION_MARK: &str = "…[truncated]";

/// Cuts `text` to at most `limit` characters (the mark included), on a character boundary.
pub fn shorten(text: &str, limit: usize) -> Cow<'_, str> {
    // A string of at most `limit` bytes has at most `limit` characters: no count needed.
    if text.len() <= limit || text.chars().count() <= limit {
        return Cow::Borrowed(text);
    }
    let mark = TRUNCATION_MARK.chars().count();
    if limit <= mark {
        return Cow::Owned(text.chars().take(limit).collect());
    }
    let mut cut: String = text.chars().take(limit - mark).collect();
    cut.push_str(TRUNCATION_MARK);
    Cow::Owned(cut)
}

/// A string serialized cut to `N` characters: for schema fields with a maximum length.
pub struct Capped<'a, const N: usize>(pub &'a str);

impl<const N: usize> Serialize for Capped<'_, N> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&shorten(self.0, N))
    }
}

/// The address an API value holds, if it is one (surrounding blanks allowed, nothing else).
pub fn ip(text: &str) -> Option<IpAddr> {
    text.trim().parse().ok()
}

/// A DNS host name: dot-separated labels of letters, digits and inner hyphens (RFC 1123), the
/// shape OCSF's `hostname_t` pattern accepts.
pub fn is_hostname(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 253
        && text.split('.').all(|label| {
            let bytes = label.as_bytes();
            !bytes.is_empty()
                && bytes.len() <= 63
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
                && bytes[0] != b'-'
                && bytes[bytes.len() - 1] != b'-'
        })
}

/// A hex digest of exactly `len` characters (40 for SHA-1, 64 for SHA-256).
pub fn is_hex_digest(text: &str, len: usize) -> bool {
    text.len() == len && text.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shorten_counts_characters_and_marks() {
        let long = "é".repeat(2000);
        let short = shorten(&long, 1023);
        assert_eq!(short.chars().count(), 1023);
        assert!(short.ends_with(TRUNCATION_MARK));
        assert_eq!(shorten("short", 1023), "short");
        assert_eq!(
            shorten(&"é".repeat(10), 10),
            "é".repeat(10),
            "10 characters fit in 10"
        );
        assert_eq!(
            shorten("abcdefghij", 4),
            "abcd",
            "a limit below the mark cuts bare"
        );
    }

    #[test]
    fn capped_serializes_within_its_limit() {
        let text = "x".repeat(100);
        let json = serde_json::to_string(&Capped::<20>(&text)).unwrap();
        let back: String = serde_json::from_str(&json).unwrap();
        assert_eq!(back.chars().count(), 20);
    }

    #[test]
    fn addresses_and_host_names() {
        assert_eq!(ip(" 10.1.2.3 "), Some("10.1.2.3".parse().unwrap()));
        assert!(ip("fe80::1").is_some_and(|a| a.is_ipv6()));
        assert!(ip("not-an-ip").is_none());
        assert!(ip("10.1.2.3; DROP").is_none());
        assert!(is_hostname("ws-0001.corp.contoso.com"));
        assert!(is_hostname("host1"));
        assert!(!is_hostname("host|=\\name.corp"));
        assert!(!is_hostname("trailing.dot."));
        assert!(!is_hostname("-lead.example"));
        assert!(!is_hostname("under_score.example"));
        assert!(is_hex_digest(&"a".repeat(40), 40));
        assert!(!is_hex_digest("xyz", 40));
    }
}
