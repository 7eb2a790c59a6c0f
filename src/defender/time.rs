//! Defender timestamps: ISO 8601 UTC with 0 to 7 fractional digits, sometimes different lengths in
//! one alert (docs/defender-api.md §7). Any RFC 3339 offset is accepted, as Graph's sibling API uses them.

use chrono::{DateTime, SecondsFormat, Utc};

pub fn parse(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text.trim())
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// RFC 3339 in UTC with as many fractional digits as needed (0, 3, 6 or 9).
pub fn format(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// Microseconds since the epoch, the store's compact form.
pub fn to_micros(time: DateTime<Utc>) -> i64 {
    time.timestamp_micros()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fraction_length_parses() {
        for text in [
            "2023-04-25T22:52:11Z",
            "2026-11-22T09:47:22.31Z",
            "2026-11-22T09:47:22.5Z",
            "2026-11-22T09:45:02.4419Z",
            "2026-11-22T09:45:02.441980Z",
            "2026-11-22T09:47:21.1627922Z",
            "2026-11-22T10:47:21.1627922+01:00",
        ] {
            assert!(parse(text).is_some(), "{text}");
        }
        let seven = parse("2026-11-22T09:47:21.1627922Z").unwrap();
        assert_eq!(format(seven), "2026-11-22T09:47:21.162792200Z");
        assert_eq!(
            parse("2026-11-22T10:47:21+01:00"),
            parse("2026-11-22T09:47:21Z")
        );
    }

    #[test]
    fn garbage_is_none_not_a_panic() {
        assert_eq!(parse("yesterday"), None);
        assert_eq!(parse(""), None);
    }
}
