//! The facts every format pulls out of an alert's evidence list, found one way for all of them.

use crate::defender::{time, Alert, Evidence};

/// The file the alert is about: the first File evidence, else the first evidence with a hash.
pub fn file<'a>(alert: &'a Alert<'a>) -> Option<&'a Evidence<'a>> {
    alert
        .evidence
        .iter()
        .find(|e| e.is("File"))
        .or_else(|| alert.evidence.iter().find(|e| e.sha1.is_some()))
}

pub fn process<'a>(alert: &'a Alert<'a>) -> Option<&'a Evidence<'a>> {
    alert.evidence.iter().find(|e| e.is("Process"))
}

pub fn url<'a>(alert: &'a Alert<'a>) -> Option<&'a str> {
    alert.evidence.iter().find_map(|e| e.url.as_deref())
}

/// Milliseconds since the epoch of a Defender timestamp, when it is readable.
pub fn millis(text: Option<&str>) -> Option<i64> {
    text.and_then(time::millis)
}

/// Windows paths: Defender gives the folder and the name apart; most schemas want the full path.
pub fn full_path(directory: Option<&str>, name: Option<&str>) -> Option<String> {
    match (directory, name) {
        (Some(dir), Some(name)) => Some(format!("{}\\{name}", dir.trim_end_matches('\\'))),
        (None, Some(name)) => Some(name.to_string()),
        _ => None,
    }
}

/// `user:user1,file:6532…`: the matches in one compact string, for formats without arrays.
pub fn matches_text(matches: &[super::Match]) -> String {
    // Written into one string: it is made for every event of every batch.
    let mut text = String::with_capacity(matches.iter().map(|m| m.value.len() + 6).sum());
    for (i, found) in matches.iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        text.push_str(found.kind.as_str());
        text.push(':');
        text.push_str(&found.value);
    }
    text
}
