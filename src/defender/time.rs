//! Defender timestamps: ISO 8601 UTC with 0 to 7 fractional digits, sometimes different lengths in
//! one alert (docs/microsoft-api.md §7). Any RFC 3339 offset is accepted, as Graph's sibling API uses them.

use chrono::{DateTime, SecondsFormat, Utc};

pub fn parse(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    utc(text.as_bytes()).or_else(|| {
        DateTime::parse_from_rfc3339(text)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    })
}

/// The shape every Defender time has, `2026-11-22T09:47:21.1627922Z`, read directly: an event
/// reads five or six of them, and chrono's general RFC 3339 parser cost more than the rest of
/// the alert's dates. Anything else (an offset, a leap second, more than nine digits) is left
/// to chrono: None here means "not this shape", not "not a time".
fn utc(text: &[u8]) -> Option<DateTime<Utc>> {
    let (head, fraction) = match text {
        [head @ .., b'Z'] if head.len() == 19 => (head, &[][..]),
        [head @ .., b'Z'] if head.len() > 20 && head[19] == b'.' => (&head[..19], &head[20..]),
        _ => return None,
    };
    let digits = |range: std::ops::Range<usize>| -> Option<u32> {
        head[range].iter().try_fold(0u32, |n, &b| {
            b.is_ascii_digit().then(|| n * 10 + u32::from(b - b'0'))
        })
    };
    let separators = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')];
    if separators.iter().any(|&(at, sep)| head[at] != sep) || fraction.len() > 9 {
        return None;
    }
    let mut nanos = 0u32;
    for &b in fraction {
        nanos = nanos * 10 + u32::from(b.is_ascii_digit().then(|| b - b'0')?);
    }
    nanos *= 10u32.pow(9 - fraction.len() as u32);
    let date =
        chrono::NaiveDate::from_ymd_opt(digits(0..4)? as i32, digits(5..7)?, digits(8..10)?)?;
    let second = digits(17..19)?;
    // 60 is a leap second: chrono's own reading of it stands.
    if second > 59 {
        return None;
    }
    let time =
        chrono::NaiveTime::from_hms_nano_opt(digits(11..13)?, digits(14..16)?, second, nanos)?;
    Some(date.and_time(time).and_utc())
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

    proptest::proptest! {
        /// The direct reading of Defender's shape gives what chrono gives, and refuses what
        /// chrono refuses (then chrono's answer stands).
        #[test]
        fn the_direct_reading_agrees_with_chrono(
            year in 0u32..10000, month in 0u32..14, day in 0u32..33, hour in 0u32..26,
            minute in 0u32..61, second in 0u32..62, fraction in "[0-9]{0,10}",
            separators in proptest::sample::select(vec!["--T::", "--t::", "-- ::", "/-T::"]),
        ) {
            let s: Vec<char> = separators.chars().collect();
            let dot = if fraction.is_empty() { "" } else { "." };
            let text = format!(
                "{year:04}{}{month:02}{}{day:02}{}{hour:02}{}{minute:02}{}{second:02}{dot}{fraction}Z",
                s[0], s[1], s[2], s[3], s[4]
            );
            let chrono = DateTime::parse_from_rfc3339(&text).ok().map(|t| t.with_timezone(&Utc));
            if let Some(direct) = utc(text.as_bytes()) {
                proptest::prop_assert_eq!(Some(direct), chrono, "{}", text);
            }
            proptest::prop_assert_eq!(parse(&text), chrono, "{}", text);
        }
    }

    #[test]
    fn garbage_is_none_not_a_panic() {
        for text in [
            "2026-11-22T09:47:21.Z",
            "2026-11-22T09:47:2xZ",
            "Z",
            "2026-13-01T00:00:00Z",
        ] {
            assert_eq!(utc(text.as_bytes()), None, "{text}");
        }
        assert_eq!(parse("yesterday"), None);
        assert_eq!(parse(""), None);
    }
}
