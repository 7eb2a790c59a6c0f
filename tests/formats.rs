//! CEF, OCSF and Splunk re-parsed: hostile values (`|`, `=`, `\`, `]`, `"`, CR/LF, NUL,
//! right-to-left marks, emoji, a 100 KB description, a 70,000-character title, values that break
//! their fields' types, nulls everywhere) come back as the same field values or are moved where
//! the receiver takes them, and arbitrary alerts (proptest) never panic and always re-parse.

mod common;

use common::receivers::{strict_cef, Cef};
use mde_watch::defender::odata::parse_page;
use mde_watch::defender::PolledAlert;
use mde_watch::normalize::cef::MSG_LIMIT;
use mde_watch::normalize::shorten;
use mde_watch::normalize::{encode, Change, EventContext, Format, Match};
use mde_watch::watchlist::EntryKind;
use proptest::prelude::*;
use serde_json::{json, Value};

/// A CEF line read by the strict reader; any problem fails the test with the line.
fn parse_cef(line: &str) -> Cef {
    strict_cef(line).unwrap_or_else(|problems| panic!("{problems:?} in {line}"))
}

/// What CEF can carry of a value: control characters other than CR and LF become spaces.
fn cef_value(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() && c != '\n' && c != '\r' {
                ' '
            } else {
                c
            }
        })
        .collect()
}

fn cef_header(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn encode_all(alert: &PolledAlert) -> Vec<(Format, String)> {
    let matches = [Match::new(EntryKind::User, "us=er|\\", None)];
    let context = EventContext::new(&matches, "t", "c|=\\", Change::New, "2026-11-23T00:00:00Z");
    [
        Format::Cef,
        Format::Ocsf,
        Format::Splunk,
        Format::Ecs,
        Format::Raw,
        Format::SplunkHec,
    ]
    .into_iter()
    .map(|format| {
        (
            format,
            String::from_utf8(encode(format, alert, &context).unwrap()).unwrap(),
        )
    })
    .collect()
}

fn hostile() -> (Value, Vec<PolledAlert>) {
    let body = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/hostile.json"
    ))
    .unwrap();
    let original: Value = serde_json::from_slice(&body).unwrap();
    (original, parse_page(&body).unwrap().alerts)
}

#[test]
fn hostile_values_survive_cef() {
    let (original, alerts) = hostile();
    let source = &original["value"][0];
    let line = &encode_all(&alerts[0])[0].1;
    assert!(
        !line.contains('\n') && !line.contains('\r') && !line.contains('\0'),
        "one line, no raw control characters"
    );
    let cef = parse_cef(line);
    assert_eq!(cef.header[0], "Microsoft");
    assert_eq!(cef.header[3], source["detectorId"].as_str().unwrap());
    assert_eq!(cef.header[4], cef_header(source["title"].as_str().unwrap()));
    assert_eq!(cef.header[5], "8");
    assert_eq!(cef.get("externalId"), source["id"].as_str());
    assert_eq!(cef.get("suser").unwrap(), "us=er|\\");
    assert_eq!(cef.get("sntdom").unwrap(), "DOM\"AIN]");
    assert_eq!(cef.get("cat"), source["category"].as_str());
    assert_eq!(cef.get("fname").unwrap(), "a=b|c\\d.exe");
    assert_eq!(
        cef.get("filePath").unwrap(),
        "C:\\Temp\\x=y|z\\a=b|c\\d.exe"
    );
    assert_eq!(
        cef.get("sproc").unwrap(),
        "cmd.exe /c \"echo a=b | more\"\r\nnext"
    );
    assert_eq!(cef.get("request").unwrap(), "http://x.test/?a=b|c");
    assert_eq!(cef.get("cs4").unwrap(), "T1059.001,T1|=");
    assert_eq!(cef.get("flexString1").unwrap(), "user:us=er|\\");
    assert_eq!(cef.get("dvchost").unwrap(), "c|=\\");
    let description = cef_value(source["description"].as_str().unwrap());
    assert_eq!(cef.get("msg").unwrap(), shorten(&description, MSG_LIMIT));
    assert_eq!(
        cef.get("msg").unwrap().chars().count(),
        MSG_LIMIT,
        "100 KB descriptions are cut, and say so"
    );
}

#[test]
fn nulls_everywhere_still_give_valid_events() {
    let (_, alerts) = hostile();
    let all = encode_all(&alerts[1]);
    let cef = parse_cef(&all[0].1);
    assert_eq!(cef.header[3], "mde-alert");
    assert_eq!(cef.header[5], "0");
    assert_eq!(cef.get("externalId"), Some("da638999999999999998_0"));
    for (format, text) in &all[1..] {
        let event: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{format:?}: {e}"));
        assert!(event.is_object());
    }
    let ocsf: Value = serde_json::from_str(&all[1].1).unwrap();
    assert_eq!(ocsf["status_id"], 0);
    assert_eq!(ocsf["activity_id"], 1);
}

#[test]
fn hostile_values_survive_the_json_formats() {
    let (original, alerts) = hostile();
    let source = &original["value"][0];
    let all = encode_all(&alerts[0]);
    let ocsf: Value = serde_json::from_str(&all[1].1).unwrap();
    let description = source["description"].as_str().unwrap();
    assert!(description.chars().count() > 65_535);
    assert_eq!(
        ocsf["finding_info"]["desc"].as_str().unwrap(),
        shorten(description, 65_535),
        "OCSF keeps the description up to the schema's 65,535 characters"
    );
    assert_eq!(ocsf["finding_info"]["title"], source["title"]);
    assert_eq!(ocsf["activity_id"], 3, "Resolved closes the finding");
    assert_eq!(ocsf["type_uid"], 200403);
    assert_eq!(ocsf["unmapped"]["defender"], *source);
    let splunk: Value = serde_json::from_str(&all[2].1).unwrap();
    assert_eq!(splunk["description"], source["description"]);
    assert_eq!(splunk["user"], "us=er|\\");
    assert_eq!(splunk["severity"], "high");
    assert_eq!(splunk["defender"], *source);
    let raw: Value = serde_json::from_str(&all[4].1).unwrap();
    assert_eq!(raw["alert"], *source);
}

fn arbitrary_alert() -> impl Strategy<Value = Value> {
    let text = any::<String>();
    (
        text,
        text,
        text,
        text,
        proptest::option::of(text),
        prop_oneof![
            Just(json!(null)),
            Just(json!("High")),
            Just(json!("low")),
            Just(json!(7))
        ],
        proptest::collection::vec(text, 0..3),
        prop_oneof![
            Just(json!(null)),
            Just(json!("2026-11-23T04:05:06.1234567Z")),
            Just(json!("garbage")),
            Just(json!(12))
        ],
    )
        .prop_map(
            |(id, title, description, user, sha1, severity, techniques, time)| {
                json!({
                    "id": format!("x{id}"),
                    "title": title,
                    "description": description,
                    "severity": severity,
                    "status": "New",
                    "alertCreationTime": time,
                    "mitreTechniques": techniques,
                    "relatedUser": {"userName": user, "domainName": null},
                    "evidence": [{"entityType": "File", "sha1": sha1, "fileName": "f"}],
                })
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// The encoders' fuzz target: whatever the API sends, nothing panics and everything re-parses.
    #[test]
    fn arbitrary_alerts_never_panic_and_always_reparse(alert in arbitrary_alert()) {
        let body = serde_json::to_vec(&json!({"value": [alert.clone()]})).unwrap();
        let page = parse_page(&body).unwrap();
        prop_assert_eq!(page.alerts.len(), 1);
        let all = encode_all(&page.alerts[0]);
        let cef = parse_cef(&all[0].1);
        prop_assert_eq!(cef.header.len(), 6, "vendor, product, version, signature id, name, severity");
        prop_assert_eq!(cef.get("externalId").map(String::from), Some(cef_value(alert["id"].as_str().unwrap())));
        let user = alert["relatedUser"]["userName"].as_str().unwrap();
        prop_assert_eq!(cef.get("suser").map(String::from), (!user.is_empty()).then(|| cef_value(user)));
        prop_assert!(!all[0].1.contains('\n'));
        for (format, text) in &all[1..] {
            let parsed: Result<Value, _> = serde_json::from_str(text);
            prop_assert!(parsed.is_ok(), "{:?} does not re-parse", format);
        }
    }
}
#[test]
fn the_strict_cef_reader_refuses_what_receivers_refuse() {
    let ok = "CEF:0|V|P|1|sig|name|5|externalId=a\\=b msg=x y\\nz cs1Label=L cs1=v";
    let cef = strict_cef(ok).unwrap();
    assert_eq!(cef.get("externalId"), Some("a=b"));
    assert_eq!(cef.get("msg"), Some("x y\nz"));
    for bad in [
        "CEF:0|V|P|1|sig|name|5|src=fe80::1",
        "CEF:0|V|P|1|sig|name|5|cs1=v",
        "CEF:0|V|P|1|sig|name|5|act=a=b",
        "CEF:0|V|P|1|sig|name|5|bogusKey=1",
        "CEF:0|V|P|1|sig|name|11|msg=x",
        "CEF:0|V|P|1|sig|name|5|externalId=0123456789012345678901234567890123456789X",
        "CEF:0|V|P|1|sig|name|5|spid=99999999999",
        "CEF:0|V|P|1|sig|name\n|5|msg=x",
    ] {
        assert!(strict_cef(bad).is_err(), "{bad}");
    }
    let long_name = format!("CEF:0|V|P|1|sig|{}|5|msg=x", "n".repeat(513));
    assert!(strict_cef(&long_name).is_err());
}
