//! Tests of the streaming OData reader: pages cut at every byte come out as a whole-body parse
//! reads them, and broken envelopes are errors, never panics.

use super::*;

fn read(chunks: &[&[u8]]) -> Result<(Vec<String>, Envelope), StreamError> {
    let mut reader = PageReader::new();
    let mut out = Vec::new();
    for chunk in chunks {
        reader.feed(chunk, &mut |e: &[u8]| {
            out.push(String::from_utf8(e.to_vec()).unwrap())
        })?;
    }
    Ok((out, reader.finish()?))
}

#[test]
fn elements_come_out_whole_whatever_the_cuts() {
    let body = br#"{"@odata.context":"x{[","value":[{"id":"a\"}]","n":[1,{"x":"\\"}]},{"id":"b"} , 7,"s"],"@odata.nextLink":"https://h/p?$skip=2"}"#;
    for cut in 0..body.len() {
        let (elements, envelope) = read(&[&body[..cut], &body[cut..]]).unwrap();
        assert_eq!(
            elements,
            [
                r#"{"id":"a\"}]","n":[1,{"x":"\\"}]}"#,
                r#"{"id":"b"}"#,
                "7",
                "\"s\""
            ],
            "cut at {cut}"
        );
        assert_eq!(envelope.next_link.as_deref(), Some("https://h/p?$skip=2"));
    }
    let bytes: Vec<&[u8]> = body.chunks(1).collect();
    assert_eq!(read(&bytes).unwrap().0.len(), 4);
}

#[test]
fn broken_envelopes_are_errors() {
    assert_eq!(
        read(&[br#"{"value":[{"id":"a"},{"id":"#]).unwrap_err(),
        StreamError::Truncated {
            bytes: 27,
            inside: "an alert"
        }
    );
    assert_eq!(
        read(&[b""]).unwrap_err().to_string(),
        "response body cut short after 0 bytes (inside nothing (an empty body))"
    );
    assert_eq!(read(&[br#"{"x":1}"#]).unwrap_err(), StreamError::NoValue);
    assert_eq!(
        read(&[br#"{"value":null}"#]).unwrap_err(),
        StreamError::NoValue
    );
    assert!(read(&[br#"[1,2]"#]).is_err());
    assert!(read(&[br#"{"value":[1 2]}"#]).is_err());
    assert!(read(&[br#"{"value":[],"value":[]}"#]).is_err());
    assert!(read(&[br#"{"value":[]} x"#]).is_err());
    assert!(read(&[br#"<html>503</html>"#]).is_err());
    let (elements, envelope) = read(&[b"\xEF\xBB\xBF {\"value\": [] }\n"]).unwrap();
    assert!(elements.is_empty() && envelope.next_link.is_none());
}

use crate::defender::chunk::ChunkAlerts;
use crate::defender::odata::parse_page;
use bytes::Bytes;
use proptest::prelude::*;
use serde_json::json;

/// Strings with what makes splitting hard: quotes, backslashes, escapes, brackets, braces,
/// commas, control characters and multi-byte UTF-8.
fn nasty_text() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just("\"".to_string()),
            Just("\\".to_string()),
            Just("]}[{,:".to_string()),
            Just("\n\r\t\u{0}".to_string()),
            Just("é🚨\u{202e}".to_string()),
            "[a-z ]{0,8}",
        ],
        0..6,
    )
    .prop_map(|parts| parts.concat())
}

fn page() -> impl Strategy<Value = (Vec<u8>, usize)> {
    (
        proptest::collection::vec((nasty_text(), nasty_text(), 0..3usize), 0..6),
        proptest::option::of(nasty_text()),
        any::<bool>(),
    )
        .prop_map(|(alerts, next_link, pretty)| {
            let value: Vec<serde_json::Value> = alerts
                .iter()
                .enumerate()
                .map(|(i, (title, user, evidence))| {
                    json!({
                        "id": format!("da{i}{title}"),
                        "title": title,
                        "relatedUser": {"userName": user},
                        "evidence": vec![json!({"entityType": "File", "fileName": title}); *evidence],
                    })
                })
                .collect();
            let mut page = json!({"@odata.context": "https://x/$metadata#Alerts", "value": value});
            if let Some(link) = next_link {
                page["@odata.nextLink"] = json!(link);
            }
            let body = if pretty {
                serde_json::to_vec_pretty(&page).unwrap()
            } else {
                serde_json::to_vec(&page).unwrap()
            };
            (body, alerts.len())
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Split anywhere, a page reads as the same alerts as the whole body does.
    #[test]
    fn streaming_reads_what_a_whole_body_parse_reads(
        (body, count) in page(),
        cuts in proptest::collection::vec(any::<proptest::sample::Index>(), 0..8),
        in_place in any::<bool>(),
    ) {
        let mut points: Vec<usize> = cuts.iter().map(|i| i.index(body.len() + 1)).collect();
        points.push(0);
        points.push(body.len());
        points.sort_unstable();
        let mut reader = PageReader::new();
        // In place, or every alert copied out of its chunk.
        let mut read = ChunkAlerts::sharing_from(if in_place { 0 } else { usize::MAX });
        for pair in points.windows(2) {
            read.feed(&mut reader, &Bytes::copy_from_slice(&body[pair[0]..pair[1]])).unwrap();
        }
        let envelope = reader.finish().unwrap();
        let whole = parse_page(&body).unwrap();
        prop_assert_eq!(read.alerts.len(), count);
        prop_assert!(read.rejected.is_empty() && read.malformed.is_none());
        prop_assert_eq!(envelope.next_link, whole.next_link);
        let streamed: Vec<(String, String)> = read
            .alerts
            .iter()
            .map(|a| (a.alert().id.to_string(), a.text().to_string()))
            .collect();
        let reference: Vec<(String, String)> = whole
            .alerts
            .into_iter()
            .map(|a| (a.alert().id.to_string(), a.text().to_string()))
            .collect();
        prop_assert_eq!(streamed, reference);
    }

    /// A body cut short, or with a byte changed, is an error or a read: never a panic, a
    /// cut-short body is never taken for a complete one, and a damaged body reads as the
    /// whole-body parse reads it: the same alerts, or an error for the response.
    #[test]
    fn damaged_streams_are_errors_not_panics(
        (body, _) in page(),
        cut in any::<proptest::sample::Index>(),
        flip in any::<(proptest::sample::Index, u8)>(),
        split in any::<proptest::sample::Index>(),
    ) {
        let cut = cut.index(body.len());
        let mut reader = PageReader::new();
        let fed = ChunkAlerts::sharing_from(0).feed(&mut reader, &Bytes::copy_from_slice(&body[..cut]));
        prop_assert!(fed.is_err() || reader.finish().is_err(), "a cut at {} read as complete", cut);

        let mut damaged = body.clone();
        let at = flip.0.index(damaged.len());
        damaged[at] = flip.1;
        let split = split.index(damaged.len() + 1);
        let streamed = stream_all(&[&damaged[..split], &damaged[split..]]);
        let whole = parse_page(&damaged).map(|page| {
            page.alerts.iter().map(|a| a.alert().id.to_string()).collect::<Vec<_>>()
        });
        prop_assert_eq!(streamed.is_ok(), whole.is_ok(), "stream {:?} vs whole {:?}", streamed, whole);
        if let (Ok(streamed), Ok(whole)) = (streamed, whole) {
            prop_assert_eq!(streamed, whole);
        }
    }
}

/// Reads chunks to the end: the ids of the alerts, or the response's error.
fn stream_all(chunks: &[&[u8]]) -> Result<Vec<String>, String> {
    let mut reader = PageReader::new();
    let mut read = ChunkAlerts::sharing_from(0);
    for chunk in chunks {
        read.feed(&mut reader, &Bytes::copy_from_slice(chunk))
            .map_err(|e| e.to_string())?;
        if let Some(reason) = read.malformed.take() {
            return Err(reason);
        }
    }
    reader.finish().map_err(|e| e.to_string())?;
    Ok(read
        .alerts
        .iter()
        .map(|a| a.alert().id.to_string())
        .collect())
}

proptest! {
    /// The scan 64 bytes a step ends values where, and leaves the state that, the walk byte by
    /// byte does, whatever the bytes and however they are cut into chunks.
    #[test]
    fn blocks_scan_as_bytes_do(
        parts in proptest::collection::vec(
            prop_oneof![
                8 => "[a-z :,]{1,40}",
                2 => Just("\"".to_string()),
                1 => Just("\\".to_string()),
                1 => Just("{[".to_string()),
                1 => Just("]}".to_string()),
                1 => Just("é🚨".to_string()),
            ],
            0..80,
        ),
        first in prop_oneof![Just(b'{'), Just(b'['), Just(b'"')],
        cuts in proptest::collection::vec(any::<proptest::sample::Index>(), 0..4),
    ) {
        let bytes = parts.concat().into_bytes();
        let mut at_cuts: Vec<usize> = cuts.iter().map(|c| c.index(bytes.len() + 1)).collect();
        at_cuts.push(bytes.len());
        at_cuts.sort_unstable();
        let (mut fast, mut slow) = (Scan::start(first), Scan::start(first));
        let mut from = 0;
        for cut in at_cuts {
            let chunk = &bytes[..cut];
            let ended = fast.run(chunk, from);
            prop_assert_eq!(ended, slow.run_bytes(chunk, from));
            prop_assert_eq!(
                (fast.depth, fast.in_string, fast.escaped),
                (slow.depth, slow.in_string, slow.escaped)
            );
            if ended.is_some() {
                break;
            }
            from = cut;
        }
    }
}
