//! The OData collection envelope (docs/microsoft-api.md §4): `value` holds the alerts, and
//! `@odata.nextLink`, when present, the next page. Pure: bytes in, alerts out.

use serde::Deserialize;
use serde_json::value::RawValue;

use super::alert::{PolledAlert, ReadError};

/// The largest `$top` Defender's API serves (docs/microsoft-api.md).
pub const MAX_PAGE_SIZE: usize = 10_000;

#[derive(Debug)]
pub struct Page {
    pub alerts: Vec<PolledAlert>,
    /// Alerts that could not be read, each described (id when known, and why).
    pub rejected: Vec<String>,
    pub next_link: Option<String>,
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    value: Option<Vec<&'a RawValue>>,
    #[serde(rename = "@odata.nextLink")]
    next_link: Option<String>,
}

/// Parses a collection response. A body that is not JSON, or has no `value` array, is an error
/// (the caller retries: truncated and malformed bodies are transient). One unreadable alert does
/// not sink the others; it is reported in `rejected`.
pub fn parse_page(body: &[u8]) -> Result<Page, String> {
    let envelope: Envelope = serde_json::from_slice(body).map_err(|err| {
        format!(
            "response body is not a complete JSON document ({err}; {} bytes)",
            body.len()
        )
    })?;
    let items = envelope
        .value
        .ok_or_else(|| "response has no 'value' array".to_string())?;
    let mut alerts = Vec::with_capacity(items.len());
    let mut rejected = Vec::new();
    for (index, item) in items.into_iter().enumerate() {
        match read_alert(index, item.get().as_bytes())? {
            Ok(alert) => alerts.push(alert),
            Err(reason) => rejected.push(reason),
        }
    }
    Ok(Page {
        alerts,
        rejected,
        next_link: envelope.next_link,
    })
}

/// One element of the `value` array, `index` counted from 0 in the response, parsed once. An
/// element that is not JSON makes the whole response malformed (the outer error: the call is
/// retried, as a cut-short body is); one that is JSON but not a readable alert is rejected on its
/// own (the inner error, naming the element without echoing it) and the others are kept.
pub fn read_alert(index: usize, bytes: &[u8]) -> Result<Result<PolledAlert, String>, String> {
    let malformed =
        |err: String| format!("response body is not valid JSON (alert #{index}: {err})");
    match PolledAlert::from_bytes(bytes) {
        Ok(alert) => Ok(Ok(alert)),
        Err(ReadError::Malformed(err)) => Err(malformed(err.to_string())),
        Err(ReadError::NotText(err)) => Err(malformed(err.to_string())),
        Err(unreadable) => Ok(Err(format!(
            "alert #{index} in the response: {}",
            crate::errors::Chain(&unreadable)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::says;

    #[test]
    fn empty_collection() {
        let page = parse_page(br#"{"@odata.context":"x","value":[]}"#).unwrap();
        assert!(page.alerts.is_empty() && page.next_link.is_none());
    }

    #[test]
    fn keeps_raw_bytes_and_next_link() {
        let body = br#"{"value":[{"id":"a1", "title" : "t"},{"title":"no id"}],"@odata.nextLink":"https://h/api/x?$skip=2"}"#;
        let page = parse_page(body).unwrap();
        assert_eq!(page.alerts.len(), 1);
        assert_eq!(
            page.alerts[0].text(),
            r#"{"id":"a1", "title" : "t"}"#,
            "single-line alerts are kept byte for byte"
        );
        assert_eq!(page.rejected.len(), 1);
        assert!(page.rejected[0].contains("alert #1"), "{:?}", page.rejected);
        assert_eq!(page.next_link.as_deref(), Some("https://h/api/x?$skip=2"));
    }

    #[test]
    fn truncated_body_is_an_error_not_a_panic() {
        let err = parse_page(br#"{"value":[{"id":"a1","tit"#).unwrap_err();
        says(&err, "not a complete JSON document");
        assert!(parse_page(b"{\"error\":{}}")
            .unwrap_err()
            .contains("no 'value'"));
    }
}
