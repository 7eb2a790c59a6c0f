//! Golden files for the normalized formats. Inputs are the project's own fixtures under
//! `tests/fixtures/` (shaped like Microsoft's examples, with the quirks the API reference lists);
//! expected outputs are `tests/golden/<fixture>.<format>.ndjson`, reviewed like code.
//! Regenerate after an intended change with `UPDATE_GOLDEN=1 cargo test --test golden`.

use std::path::{Path, PathBuf};

use mde_watch::defender::odata::parse_page;
use mde_watch::normalize::{encode, Change, EventContext, Format, Match};
use mde_watch::watchlist::EntryKind;
use serde_json::Value;

const FIXTURES: &[(&str, EntryKind, &str, Option<&str>)] = &[
    (
        "user-alerts-user1",
        EntryKind::User,
        "user1",
        Some("CONTOSO\\user1"),
    ),
    (
        "file-alerts-470454e35ea71dd971c2b0cbb29e0225cd0526cb",
        EntryKind::File,
        "470454e35ea71dd971c2b0cbb29e0225cd0526cb",
        None,
    ),
    ("quirks", EntryKind::User, "kiosk", None),
    ("empty", EntryKind::User, "nobody", None),
    ("hostile", EntryKind::User, "us=er|\\", None),
];

const FORMATS: [Format; 5] = [
    Format::Ecs,
    Format::Raw,
    Format::Cef,
    Format::Ocsf,
    Format::Splunk,
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests")
}

fn render(fixture: &str, format: Format, matched: &Match) -> String {
    let body = std::fs::read(root().join("fixtures").join(format!("{fixture}.json"))).unwrap();
    let page = parse_page(&body).unwrap();
    let matches = [matched.clone()];
    let context = EventContext {
        matches: &matches,
        tenant_id: "190241b8-187f-4db3-8148-d73536294b3a",
        collector: "golden-collector",
        change: Change::New,
        observed_at: "2026-11-23T05:00:00Z",
        description_limit: None,
    };
    let mut out = String::new();
    for alert in &page.alerts {
        out.push_str(std::str::from_utf8(&encode(format, alert, &context).unwrap()).unwrap());
        out.push('\n');
    }
    out
}

fn compare(path: &Path, actual: &str) {
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(path).unwrap_or_else(|_| {
        panic!(
            "{} is missing; run UPDATE_GOLDEN=1 cargo test --test golden",
            path.display()
        )
    });
    if expected != actual {
        for (number, (want, got)) in expected.lines().zip(actual.lines()).enumerate() {
            assert_eq!(want, got, "{} line {} differs", path.display(), number + 1);
        }
        assert_eq!(
            expected.lines().count(),
            actual.lines().count(),
            "{}: line count differs",
            path.display()
        );
    }
}

#[test]
fn golden_outputs() {
    for &(fixture, kind, value, original) in FIXTURES {
        let matched = Match {
            kind,
            value: value.into(),
            original: original.map(Into::into),
        };
        for format in FORMATS {
            let actual = render(fixture, format, &matched);
            compare(
                &root()
                    .join("golden")
                    .join(format!("{fixture}.{}.ndjson", format.as_str())),
                &actual,
            );
        }
    }
}

#[test]
fn raw_keeps_the_alert_verbatim_and_quirks_are_survived() {
    let body = std::fs::read(root().join("fixtures/quirks.json")).unwrap();
    let page = parse_page(&body).unwrap();
    assert_eq!(page.alerts.len(), 2);
    assert_eq!(
        page.rejected.len(),
        1,
        "the alert without an id is reported"
    );
    let raw = render(
        "quirks",
        Format::Raw,
        &Match {
            kind: EntryKind::User,
            value: "kiosk".into(),
            original: None,
        },
    );
    let second: Value = serde_json::from_str(raw.lines().nth(1).unwrap()).unwrap();
    let original: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        second["alert"], original["value"][1],
        "raw must carry the alert unchanged"
    );
    let ecs = render(
        "quirks",
        Format::Ecs,
        &Match {
            kind: EntryKind::User,
            value: "kiosk".into(),
            original: None,
        },
    );
    let event: Value = serde_json::from_str(ecs.lines().nth(1).unwrap()).unwrap();
    assert_eq!(
        event["microsoft"]["defender_endpoint"]["newNestedThing"]["kept"],
        serde_json::json!([1, 2, 3])
    );
    assert_eq!(
        event["url"]["full"],
        "http://phish.example.test/login?next=a%7Cb"
    );
    assert_eq!(
        event["threat"]["technique"]["id"],
        serde_json::json!(["T1566"])
    );
    let legacy: Value = serde_json::from_str(ecs.lines().next().unwrap()).unwrap();
    assert_eq!(
        legacy["@timestamp"], "2020-06-12T08:15:01Z",
        "offset timestamps are normalized to UTC"
    );
    assert_eq!(legacy["event"]["severity"], 0);
    assert_eq!(
        legacy["microsoft"]["defender_endpoint"]["incidentId"], 7,
        "a numeric string id is read as a number"
    );
}

/// name → (type, is array, allowed values)
fn ecs_definitions() -> std::collections::HashMap<String, (String, bool, Vec<String>)> {
    let text = std::fs::read_to_string(root().join("fixtures/ecs-fields.tsv")).unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|line| {
            let mut cols = line.split('\t');
            let name = cols.next()?.to_string();
            let kind = cols.next().unwrap_or("").to_string();
            let array = cols.next().unwrap_or("") == "array";
            let allowed = cols
                .next()
                .unwrap_or("")
                .split(',')
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect();
            Some((name, (kind, array, allowed)))
        })
        .collect()
}

fn leaves(prefix: &str, value: &Value, out: &mut Vec<(String, Value)>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                leaves(&path, inner, out);
            }
        }
        other => out.push((prefix.to_string(), other.clone())),
    }
}

#[test]
fn ecs_output_uses_only_ecs_fields_with_their_types() {
    let definitions = ecs_definitions();
    for &(fixture, kind, value, _) in FIXTURES {
        let matched = Match {
            kind,
            value: value.into(),
            original: None,
        };
        for line in render(fixture, Format::Ecs, &matched).lines() {
            let event: Value = serde_json::from_str(line).unwrap();
            let mut fields = Vec::new();
            leaves("", &event, &mut fields);
            for (path, value) in fields {
                if path.starts_with("microsoft.defender_endpoint.")
                    || path.starts_with("mde_watch.")
                {
                    continue;
                }
                let (kind, array, allowed) = definitions
                    .get(&path)
                    .unwrap_or_else(|| panic!("{fixture}: '{path}' is not an ECS field"));
                let items: Vec<&Value> = match &value {
                    Value::Array(items) => {
                        assert!(*array, "{path} is not an array field in ECS");
                        items.iter().collect()
                    }
                    single => vec![single],
                };
                for item in items {
                    match kind.as_str() {
                        "long" | "integer" => {
                            assert!(item.is_i64(), "{path} must be a number: {item}")
                        }
                        "date" => assert!(
                            item.as_str()
                                .and_then(mde_watch::defender::time::parse)
                                .is_some(),
                            "{path} must be a date: {item}"
                        ),
                        _ => assert!(item.is_string(), "{path} must be a string: {item}"),
                    }
                    if !allowed.is_empty() {
                        assert!(
                            allowed.iter().any(|a| item == a.as_str()),
                            "{path}: {item} is not an allowed value"
                        );
                    }
                }
            }
        }
    }
}
