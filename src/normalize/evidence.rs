//! The facts every format pulls out of an alert's evidence list, found one way for all of them.

use crate::defender::{time, Alert, Evidence};

/// The file the alert is about: the first File evidence, else the first evidence with a hash.
pub fn file<'a, 'b>(alert: &'a Alert<'b>) -> Option<&'a Evidence<'b>> {
    alert
        .evidence
        .iter()
        .find(|e| e.is("File"))
        .or_else(|| alert.evidence.iter().find(|e| e.sha1.is_some()))
}

pub fn process<'a, 'b>(alert: &'a Alert<'b>) -> Option<&'a Evidence<'b>> {
    alert.evidence.iter().find(|e| e.is("Process"))
}

pub fn url<'a>(alert: &'a Alert<'_>) -> Option<&'a str> {
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
    let mut text = Vec::with_capacity(matches_len(matches));
    write_matches(&mut text, matches);
    String::from_utf8(text).unwrap_or_default()
}

/// The length of [`matches_text`].
pub fn matches_len(matches: &[super::Match]) -> usize {
    let each: usize = matches
        .iter()
        .map(|m| m.kind.as_str().len() + 1 + m.value.len())
        .sum();
    each + matches.len().saturating_sub(1)
}

/// [`matches_text`] written at the end of `out` (an event's own buffer: it is made for every
/// event of every batch).
pub fn write_matches(out: &mut Vec<u8>, matches: &[super::Match]) {
    for (i, found) in matches.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(found.kind.as_str().as_bytes());
        out.push(b':');
        out.extend_from_slice(found.value.as_bytes());
    }
}
