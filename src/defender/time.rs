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

/// The fields of a time in Defender's own shape, `2026-11-22T09:47:21.1627922Z`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fields {
    year: u32,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    nanos: u32,
}

/// Reads a time in Defender's own shape, its fields checked as chrono checks them (a real day
/// of a real month, no leap second): an event reads five of them, and chrono's general RFC 3339
/// parser cost more than the rest of the alert's dates. None means "not this shape" (an offset,
/// a leap second, more than nine digits), not "not a time": chrono has the last word on those.
fn fields(text: &[u8]) -> Option<Fields> {
    // Fixed places in a fixed-size head: every index is checked at compile time.
    let (head, rest) = text.split_first_chunk::<19>()?;
    let fraction = match rest {
        [b'Z'] => &[][..],
        [b'.', fraction @ .., b'Z'] if !fraction.is_empty() && fraction.len() <= 9 => fraction,
        _ => return None,
    };
    let separators = [head[4], head[7], head[10], head[13], head[16]];
    if separators != *b"--T::" {
        return None;
    }
    let digit = |b: u8| {
        let d = b.wrapping_sub(b'0');
        (d < 10).then_some(u32::from(d))
    };
    let two = |at: usize| Some(digit(head[at])? * 10 + digit(head[at + 1])?);
    let mut nanos = 0u32;
    for &b in fraction {
        nanos = nanos * 10 + digit(b)?;
    }
    nanos *= 10u32.pow(9 - fraction.len() as u32);
    let found = Fields {
        year: two(0)? * 100 + two(2)?,
        month: two(5)?,
        day: two(8)?,
        hour: two(11)?,
        minute: two(14)?,
        // 60 is a leap second: chrono's own reading of it stands.
        second: two(17)?,
        nanos,
    };
    let real_day = (1..=12).contains(&found.month)
        && found.day >= 1
        && found.day <= days_in_month(found.year, found.month);
    (real_day && found.hour < 24 && found.minute < 60 && found.second < 60).then_some(found)
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

impl Fields {
    /// Days from 1970-01-01 to the date (proleptic Gregorian; H. Hinnant's `days_from_civil`).
    fn days_since_epoch(self) -> i64 {
        let (month, day) = (i64::from(self.month), i64::from(self.day));
        // Years counted from March, so that a leap day ends its year.
        let year = i64::from(self.year) - i64::from(month <= 2);
        let era = year.div_euclid(400);
        let year_of_era = year - era * 400;
        let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
        let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
        era * 146_097 + day_of_era - 719_468
    }

    fn micros(self) -> i64 {
        let seconds = self.days_since_epoch() * 86_400
            + i64::from(self.hour * 3600 + self.minute * 60 + self.second);
        seconds * 1_000_000 + i64::from(self.nanos / 1_000)
    }
}

fn utc(text: &[u8]) -> Option<DateTime<Utc>> {
    let found = fields(text)?;
    let date = chrono::NaiveDate::from_ymd_opt(found.year as i32, found.month, found.day)?;
    let time =
        chrono::NaiveTime::from_hms_nano_opt(found.hour, found.minute, found.second, found.nanos)?;
    Some(date.and_time(time).and_utc())
}

/// Whether `text` is a time in Defender's own UTC shape (`…Z`), which goes out as sent: what
/// [`parse`] reads, without building a date.
pub fn is_utc_as_sent(text: &str) -> bool {
    fields(text.as_bytes()).is_some()
}

/// [`parse`] then [`to_micros`], without building a date for Defender's own shape.
pub fn micros(text: &str) -> Option<i64> {
    match fields(text.as_bytes()) {
        Some(found) => Some(found.micros()),
        None => parse(text).map(to_micros),
    }
}

/// Milliseconds since the epoch of a time [`parse`] reads.
pub fn millis(text: &str) -> Option<i64> {
    match fields(text.as_bytes()) {
        Some(found) => Some(found.micros().div_euclid(1_000)),
        None => parse(text).map(|t| t.timestamp_millis()),
    }
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
            proptest::prop_assert_eq!(micros(&text), chrono.map(to_micros), "{}", text);
            proptest::prop_assert_eq!(millis(&text), chrono.map(|t| t.timestamp_millis()), "{}", text);
            proptest::prop_assert_eq!(is_utc_as_sent(&text), utc(text.as_bytes()).is_some(), "{}", text);
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
        assert_eq!(micros("yesterday"), None);
    }

    #[test]
    fn the_direct_reading_knows_the_calendar() {
        for (text, real) in [
            ("2024-02-29T00:00:00Z", true),
            ("2000-02-29T00:00:00Z", true),
            ("1900-02-29T00:00:00Z", false),
            ("2026-02-29T00:00:00Z", false),
            ("2026-04-31T00:00:00Z", false),
            ("2026-12-31T23:59:59.9999999Z", true),
            ("2026-00-10T00:00:00Z", false),
            ("2026-01-00T00:00:00Z", false),
            ("2026-01-01T24:00:00Z", false),
        ] {
            assert_eq!(is_utc_as_sent(text), real, "{text}");
            let chrono = DateTime::parse_from_rfc3339(text).ok().map(|t| t.to_utc());
            assert_eq!(micros(text), chrono.map(to_micros), "{text}");
        }
        assert_eq!(micros("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(millis("1969-12-31T23:59:59.9995Z"), Some(-1));
        assert_eq!(
            micros("2026-11-22T09:47:21.1627922Z"),
            Some(1_795_340_841_162_792)
        );
        // Outside the direct reading's shape: chrono reads it, with its offset.
        assert_eq!(
            micros("2026-11-22T10:47:21.1627922+01:00"),
            Some(1_795_340_841_162_792)
        );
        assert!(!is_utc_as_sent(" 2026-11-22T09:47:21Z"));
    }
}
