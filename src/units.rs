//! Human-friendly durations ("90s", "5m", "1h", "90d", "250ms") and byte sizes ("100MiB", "10MB").
//! Pure parsing so that config errors can quote exactly what was written.

use std::time::Duration;

/// Splits "90d" into 90 and "d"; None when there is no leading integer.
fn number_and_unit(text: &str) -> Option<(u64, &str)> {
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (digits, unit) = trimmed.split_at(split);
    Some((digits.parse().ok()?, unit.trim()))
}

/// Parses a duration written as an integer followed by a unit: ms, s, m, h, d.
/// A bare integer is read as seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let (amount, unit) = number_and_unit(text).ok_or_else(|| {
        format!("'{text}' is not a duration (write e.g. 500ms, 60s, 5m, 1h, 90d)")
    })?;
    let millis_per_unit: u64 = match unit {
        "ms" => 1,
        "" | "s" | "sec" | "secs" => 1_000,
        "m" | "min" | "mins" => 60_000,
        "h" | "hour" | "hours" => 3_600_000,
        "d" | "day" | "days" => 86_400_000,
        other => {
            return Err(format!(
                "'{text}' has an unknown duration unit '{other}' (use ms, s, m, h or d)"
            ))
        }
    };
    amount
        .checked_mul(millis_per_unit)
        .map(Duration::from_millis)
        .ok_or_else(|| format!("'{text}' is too long a duration"))
}

/// Parses a byte size: an integer with an optional unit B, KB, MB, GB (powers of 1000) or
/// KiB, MiB, GiB (powers of 1024).
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let (amount, unit) = number_and_unit(text)
        .ok_or_else(|| format!("'{text}' is not a size (write e.g. 100MiB or 1GB)"))?;
    let factor: u64 = match unit {
        "" | "B" => 1,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        other => {
            return Err(format!(
                "'{text}' has an unknown size unit '{other}' (use B, KB, MB, GB, KiB, MiB or GiB)"
            ))
        }
    };
    amount
        .checked_mul(factor)
        .ok_or_else(|| format!("'{text}' is too large"))
}

/// Formats a duration the way operators write them: the largest whole unit.
pub fn format_duration(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis == 0 {
        return "0s".into();
    }
    if millis % 1000 != 0 {
        return format!("{millis}ms");
    }
    let secs = millis / 1000;
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60)] {
        if secs % size == 0 {
            return format!("{}{unit}", secs / size);
        }
    }
    if secs > 3600 {
        return format!("{:.1}h", secs as f64 / 3600.0);
    }
    if secs > 60 {
        return format!("{:.1}m", secs as f64 / 60.0);
    }
    format!("{secs}s")
}

/// A size written as a number of bytes (`8192`) or with a unit (`"8KiB"`).
#[derive(Debug, serde::Deserialize, Clone)]
#[serde(untagged)]
pub enum ByteSize {
    Bytes(u64),
    Text(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_every_unit() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("45"), Ok(Duration::from_secs(45)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("90d"), Ok(Duration::from_secs(90 * 86_400)));
    }

    #[test]
    fn bad_durations_quote_the_input() {
        let err = parse_duration("5 weeks").unwrap_err();
        assert!(err.contains("'5 weeks'") && err.contains("weeks"), "{err}");
        assert!(parse_duration("soon").unwrap_err().contains("'soon'"));
    }

    #[test]
    fn byte_sizes() {
        assert_eq!(parse_bytes("100MiB"), Ok(100 << 20));
        assert_eq!(parse_bytes("2GB"), Ok(2_000_000_000));
        assert_eq!(parse_bytes("512"), Ok(512));
        assert!(parse_bytes("12 parsecs").unwrap_err().contains("parsecs"));
    }

    #[test]
    fn formats_whole_units() {
        assert_eq!(format_duration(Duration::from_secs(300)), "5m");
        assert_eq!(format_duration(Duration::from_secs(3600)), "1h");
        assert_eq!(format_duration(Duration::from_millis(600)), "600ms");
        assert_eq!(format_duration(Duration::from_secs(45)), "45s");
    }
}
