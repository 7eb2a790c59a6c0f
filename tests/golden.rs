//! Golden files for the normalized formats. Inputs are the project's own fixtures under
//! `tests/fixtures/` (shaped like Microsoft's examples, with the quirks the API reference lists);
//! expected outputs are `tests/golden/<fixture>.<format>.ndjson`, reviewed like code.
//! Regenerate after an intended change with `UPDATE_GOLDEN=1 cargo test --test golden`.
//! Every golden event, and every event shrunk to a syslog cap, is also read by its receiver's
//! validator: the OCSF JSON Schema, a strict CEF reader, the ECS field types.

mod common;

use std::path::{Path, PathBuf};

use common::receivers::{ecs_definitions, ecs_problems, ocsf_schema_problems, strict_cef};
use mde_watch::defender::odata::parse_page;
use mde_watch::normalize::{encode, encode_within, Change, EventContext, Format, Match};
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
    // The Graph security API's alerts_v2 shape: one from Defender for Endpoint, one from
    // Defender for Office 365 (user evidence only).
    ("graph-alerts", EntryKind::User, "user1", None),
];

const FORMATS: [Format; 6] = Format::ALL;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests")
}

fn render(fixture: &str, format: Format, matched: &Match) -> String {
    let body = std::fs::read(root().join("fixtures").join(format!("{fixture}.json"))).unwrap();
    let page = parse_page(&body).unwrap();
    let matches = [matched.clone()];
    let context = EventContext::new(
        &matches,
        "190241b8-187f-4db3-8148-d73536294b3a",
        "golden-collector",
        Change::New,
        "2026-11-23T05:00:00Z",
    );
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
        let matched = Match::new(kind, value, original);
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
    let kiosk = Match::new(EntryKind::User, "kiosk", None);
    let raw = render("quirks", Format::Raw, &kiosk);
    let second: Value = serde_json::from_str(raw.lines().nth(1).unwrap()).unwrap();
    let original: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        second["alert"], original["value"][1],
        "raw must carry the alert unchanged"
    );
    let ecs = render("quirks", Format::Ecs, &kiosk);
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

/// Checks events of one format as their receiver would; returns every problem, named by `what`.
fn receiver_problems(format: Format, what: &str, events: &[String]) -> Vec<String> {
    let definitions = ecs_definitions();
    let mut problems = Vec::new();
    match format {
        Format::Ocsf => {
            problems.extend(
                ocsf_schema_problems(events)
                    .into_iter()
                    .map(|p| format!("{what} {p}")),
            );
        }
        Format::Cef => {
            for (n, line) in events.iter().enumerate() {
                if let Err(found) = strict_cef(line) {
                    problems.push(format!("{what} line {}: {found:?}", n + 1));
                }
            }
        }
        _ => {}
    }
    for (n, line) in events.iter().enumerate() {
        if format == Format::Cef {
            continue;
        }
        let event: Value = match serde_json::from_str(line) {
            Ok(event) => event,
            Err(err) => {
                problems.push(format!("{what} line {}: not JSON: {err}", n + 1));
                continue;
            }
        };
        match format {
            Format::Ecs => problems.extend(
                ecs_problems(&event, &definitions)
                    .into_iter()
                    .map(|p| format!("{what} line {}: {p}", n + 1)),
            ),
            // Splunk finds the timestamp within its default 128-character lookahead.
            Format::Splunk | Format::SplunkHec
                if !line.starts_with("{\"time\":") || !event["time"].is_number() =>
            {
                problems.push(format!("{what} line {}: time is not the first key", n + 1));
            }
            _ => {}
        }
        if format == Format::SplunkHec {
            for key in ["host", "source", "sourcetype", "event"] {
                if event.get(key).is_none() {
                    problems.push(format!("{what} line {}: HEC envelope without {key}", n + 1));
                }
            }
        }
    }
    problems
}

#[test]
fn every_golden_event_is_valid_for_its_receiver() {
    let mut problems = Vec::new();
    for &(fixture, kind, value, original) in FIXTURES {
        let matched = Match::new(kind, value, original);
        for format in FORMATS {
            let events: Vec<String> = render(fixture, format, &matched)
                .lines()
                .map(String::from)
                .collect();
            problems.extend(receiver_problems(
                format,
                &format!("{fixture}.{}", format.as_str()),
                &events,
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Events shrunk to syslog's caps (2,048 bytes over UDP, 8,192 on streams) are whole events that
/// pass the same validators, within the cap.
#[test]
fn shrunk_events_are_valid_and_within_the_cap() {
    let matches = [Match::new(EntryKind::User, "user1", None)];
    let context = EventContext::new(
        &matches,
        "190241b8-187f-4db3-8148-d73536294b3a",
        "golden-collector",
        Change::Updated,
        "2026-11-23T05:00:00Z",
    );
    let mut problems = Vec::new();
    let mut shrunk = 0;
    for &(fixture, ..) in FIXTURES {
        let body = std::fs::read(root().join("fixtures").join(format!("{fixture}.json"))).unwrap();
        let page = parse_page(&body).unwrap();
        for format in FORMATS {
            for limit in [2048, 8192] {
                let mut events = Vec::new();
                for alert in &page.alerts {
                    let fitted = encode_within(format, alert, &context, limit).unwrap();
                    assert!(fitted.fits, "{fixture} {format:?} {limit}");
                    assert!(fitted.payload.len() <= limit);
                    shrunk += usize::from(fitted.truncated);
                    events.push(String::from_utf8(fitted.payload).unwrap());
                }
                let what = format!("{fixture}.{} within {limit}", format.as_str());
                problems.extend(receiver_problems(format, &what, &events));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(
        shrunk > 20,
        "the fixtures exercise shrinking ({shrunk} events shrunk)"
    );
}

/// The Splunk stanzas shipped under packaging/splunk/ describe the events as encoded: the
/// sourcetype the HEC envelope names, the timestamp prefix every `splunk` line starts with, and
/// the `alert` tag the CIM Alerts data model selects on, reached through the event type.
#[test]
fn shipped_splunk_stanzas_match_the_events() {
    let read = |name: &str| {
        std::fs::read_to_string(
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("packaging/splunk/{name}")),
        )
        .unwrap()
    };
    let (props, eventtypes, tags) = (
        read("props.conf"),
        read("eventtypes.conf"),
        read("tags.conf"),
    );
    let matched = Match::new(EntryKind::User, "user1", None);
    let hec: Value = serde_json::from_str(
        render("user-alerts-user1", Format::SplunkHec, &matched)
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    let sourcetype = hec["sourcetype"].as_str().unwrap();
    assert!(
        props.contains(&format!("[{sourcetype}]")),
        "props.conf stanza for {sourcetype}"
    );
    assert!(props.contains("TIME_PREFIX = ^\\{\"time\":"));
    assert!(
        props.contains("TRUNCATE = 0"),
        "large alerts are never cut at index time"
    );
    for line in render("user-alerts-user1", Format::Splunk, &matched).lines() {
        assert!(line.starts_with("{\"time\":"));
    }
    assert!(eventtypes.contains(&format!("search = sourcetype={sourcetype}")));
    assert!(eventtypes.contains("[mde_watch_alert]"));
    assert!(tags.contains("[eventtype=mde_watch_alert]\nalert = enabled"));
}
