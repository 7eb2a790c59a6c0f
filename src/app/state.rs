//! `mde-watch state …`: read what the store remembers, move it between hosts, prune it. One
//! record a line (NDJSON) in and out, so the output pipes into jq and an export imports back.

use std::io::Write;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::defender::time;
use crate::store::{SeenRecord, Store, StoreError};
use crate::units::parse_duration;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Input(String),
    #[error("writing the output")]
    Output(#[from] std::io::Error),
}

/// One alert as `state list`/`export` print it and `import` reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordLine {
    pub id: String,
    /// The alert's `lastUpdateTime` as the store keeps it (RFC 3339, microseconds).
    pub last_update: Option<String>,
    pub fingerprint: u32,
    /// When a response first and last held the alert (RFC 3339).
    pub first_observed: String,
    pub last_observed: String,
}

impl RecordLine {
    pub fn of(id: &str, record: &SeenRecord) -> RecordLine {
        let seconds = |s: i64| {
            DateTime::<Utc>::from_timestamp(s, 0)
                .map(time::format)
                .unwrap_or_default()
        };
        RecordLine {
            id: id.to_string(),
            last_update: record
                .last_update
                .and_then(DateTime::<Utc>::from_timestamp_micros)
                .map(time::format),
            fingerprint: record.fingerprint,
            first_observed: seconds(record.first_observed),
            last_observed: seconds(record.last_observed),
        }
    }

    /// The record, or what is wrong with it (named by field and value).
    pub fn record(&self) -> Result<(String, SeenRecord), String> {
        if self.id.trim().is_empty() {
            return Err("empty id".into());
        }
        let at = |field: &str, text: &str| {
            time::parse(text).ok_or_else(|| format!("{field} '{text}' is not an RFC 3339 time"))
        };
        let last_update = match &self.last_update {
            Some(text) => Some(at("last_update", text)?.timestamp_micros()),
            None => None,
        };
        Ok((
            self.id.clone(),
            SeenRecord {
                last_update,
                fingerprint: self.fingerprint,
                first_observed: at("first_observed", &self.first_observed)?.timestamp(),
                last_observed: at("last_observed", &self.last_observed)?.timestamp(),
            },
        ))
    }
}

/// Reads an export: every line checked first; any bad line and nothing is imported. Each
/// problem names `source` and the line.
pub fn parse_import(text: &str, source: &str) -> Result<Vec<(String, SeenRecord)>, Vec<String>> {
    let mut records = Vec::new();
    let mut problems = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let parsed = serde_json::from_str::<RecordLine>(line)
            .map_err(|err| err.to_string())
            .and_then(|line| line.record());
        match parsed {
            Ok(record) => records.push(record),
            Err(reason) => problems.push(format!("{source}, line {}: {reason}", n + 1)),
        }
    }
    if problems.is_empty() {
        Ok(records)
    } else {
        Err(problems)
    }
}

/// `--since`: an RFC 3339 time, or a span back from `now` such as "7d" or "12h".
pub fn parse_since(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    if let Some(at) = time::parse(text) {
        return Ok(at);
    }
    let span = parse_duration(text).map_err(|_| {
        format!("--since '{text}': neither an RFC 3339 time (2026-11-01T00:00:00Z) nor a span back from now (7d, 12h)")
    })?;
    let span =
        chrono::Duration::from_std(span).map_err(|err| format!("--since '{text}': {err}"))?;
    Ok(now - span)
}

/// `state list`: alerts first observed at or after `since`, one JSON object a line.
pub fn list(
    store: &Store,
    since: Option<DateTime<Utc>>,
    out: &mut dyn Write,
) -> Result<usize, StateError> {
    let from = since.map_or(i64::MIN, |t| t.timestamp());
    let mut n = 0;
    for (id, record) in store.seen_records()? {
        if record.first_observed >= from {
            writeln!(
                out,
                "{}",
                serde_json::to_string(&RecordLine::of(&id, &record)).unwrap_or_default()
            )?;
            n += 1;
        }
    }
    Ok(n)
}

/// `state list --entity E`: the alerts the entry's last successful poll returned (the first
/// [`crate::defender::IDS_KEPT`] of them), as the store knows them. `entity` is a user name, a
/// SHA-1, or a key (`u:user1`, `f:<sha1>`).
pub fn entity_alerts(
    store: &Store,
    entity: &str,
    since: Option<DateTime<Utc>>,
    out: &mut dyn Write,
) -> Result<usize, StateError> {
    let wanted = entity.trim();
    let keys = [
        wanted.to_string(),
        format!("u:{}", wanted.to_lowercase()),
        format!("f:{}", wanted.to_ascii_lowercase()),
    ];
    let mut status = None;
    for key in &keys {
        if let Some(found) = store.entity(key)? {
            status = Some(found);
            break;
        }
    }
    let status = status.ok_or_else(|| {
        StateError::Input(format!(
            "no entry '{entity}' has been polled into this store"
        ))
    })?;
    if status.alerts as usize > status.alert_ids.len() {
        tracing::warn!(
            entity = %entity,
            alerts = status.alerts,
            kept = status.alert_ids.len(),
            "the entry's last poll read more alerts than its status keeps the ids of: only the first are listed (`state list` lists every alert)"
        );
    }
    let from = since.map_or(i64::MIN, |t| t.timestamp());
    let records: std::collections::HashMap<String, SeenRecord> = store
        .exact_records(&status.alert_ids)?
        .into_iter()
        .collect();
    let mut n = 0;
    for id in &status.alert_ids {
        if let Some(record) = records.get(id) {
            if record.first_observed >= from {
                writeln!(
                    out,
                    "{}",
                    serde_json::to_string(&RecordLine::of(id, record)).unwrap_or_default()
                )?;
                n += 1;
            }
        }
    }
    Ok(n)
}

/// `state show ID`.
pub fn show(store: &Store, id: &str, out: &mut dyn Write) -> Result<(), StateError> {
    let (_, record) = store
        .exact_records(&[id.to_string()])?
        .pop()
        .ok_or_else(|| StateError::Input(format!("alert '{id}' is not in the store")))?;
    let line = RecordLine::of(id, &record);
    writeln!(
        out,
        "{}",
        serde_json::to_string_pretty(&line).unwrap_or_default()
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::says;
    use chrono::TimeZone;

    fn record() -> SeenRecord {
        SeenRecord {
            last_update: Some(1_762_000_000_123_456),
            fingerprint: 0xdead_beef,
            first_observed: 1_762_000_100,
            last_observed: 1_762_086_500,
        }
    }

    #[test]
    fn a_line_round_trips_to_the_same_record() {
        let line = RecordLine::of("da6377", &record());
        let text = serde_json::to_string(&line).unwrap();
        let back = parse_import(&text, "export.ndjson").unwrap();
        assert_eq!(back, vec![("da6377".to_string(), record())]);
    }

    #[test]
    fn bad_lines_are_all_named_and_nothing_is_taken() {
        let good = serde_json::to_string(&RecordLine::of("a1", &record())).unwrap();
        let text = format!(
            "{good}\n{{\"id\":\"a2\"}}\n\n{}\nnot json\n",
            good.replace("2025", "20x5")
        );
        let problems = parse_import(&text, "old.ndjson").unwrap_err();
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(
            problems[0].starts_with("old.ndjson, line 2: missing field"),
            "{problems:?}"
        );
        assert!(
            problems[1].starts_with("old.ndjson, line 4: last_update '20x5"),
            "{problems:?}"
        );
        assert!(
            problems[2].starts_with("old.ndjson, line 5:"),
            "{problems:?}"
        );
    }

    #[test]
    fn since_is_a_time_or_a_span_back() {
        let now = Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap();
        assert_eq!(
            parse_since("7d", now).unwrap(),
            Utc.with_ymd_and_hms(2026, 11, 16, 12, 0, 0).unwrap()
        );
        assert_eq!(
            parse_since("2026-11-01T00:00:00Z", now).unwrap(),
            Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap()
        );
        let err = parse_since("last tuesday", now).unwrap_err();
        says(&err, "'last tuesday'");
    }
}
