//! How a page of alerts goes on the wire: Defender answers `Content-Encoding: deflate` to a
//! client that accepts it (docs/microsoft-api.md §4); HTTP's deflate is the zlib format.

use std::io::Write;

use axum::body::Bytes;
use axum::http::{header, HeaderMap};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Wire {
    Plain,
    Deflate,
}

impl Wire {
    /// Whether the request's `Accept-Encoding` names deflate (or `*`) without refusing it by
    /// `q=0`.
    pub(super) fn accepted(headers: &HeaderMap) -> bool {
        headers
            .get_all(header::ACCEPT_ENCODING)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .any(accepts_deflate)
    }

    /// The body as it goes on the wire.
    pub(super) fn encode(self, body: Bytes) -> Bytes {
        match self {
            Wire::Plain => body,
            Wire::Deflate => deflated(&body),
        }
    }
}

/// One coding of an `Accept-Encoding` list: `deflate` or `*`, with no `q=0`.
fn accepts_deflate(coding: &str) -> bool {
    let mut parts = coding.split(';').map(str::trim);
    let name = parts.next().unwrap_or_default();
    let refused = parts.any(|param| {
        param
            .strip_prefix("q=")
            .and_then(|q| q.parse::<f32>().ok())
            .is_some_and(|q| q == 0.0)
    });
    (name.eq_ignore_ascii_case("deflate") || name == "*") && !refused
}

fn deflated(body: &[u8]) -> Bytes {
    // Fast: a benchmark's pages (up to 100 MB) are deflated when warmed, tests' at each call.
    let mut encoder = flate2::write::ZlibEncoder::new(
        Vec::with_capacity(body.len() / 4),
        flate2::Compression::fast(),
    );
    // Writing into a Vec cannot fail.
    let _ = encoder.write_all(body);
    Bytes::from(encoder.finish().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deflate_is_accepted_by_name_or_star_unless_refused() {
        for coding in ["deflate", " Deflate ", "deflate;q=0.5", "*", "*;q=1"] {
            assert!(accepts_deflate(coding), "{coding}");
        }
        for coding in [
            "gzip",
            "br",
            "deflate;q=0",
            "deflate; q=0.0",
            "*;q=0",
            "identity",
        ] {
            assert!(!accepts_deflate(coding), "{coding}");
        }
    }

    #[test]
    fn a_deflated_body_inflates_to_the_page() {
        let page = Bytes::from_static(br#"{"value":[{"id":"da1"}]}"#);
        let wire = Wire::Deflate.encode(page.clone());
        assert_ne!(wire, page);
        let mut inflating = flate2::write::ZlibDecoder::new(Vec::new());
        inflating.write_all(&wire).unwrap();
        assert_eq!(inflating.finish().unwrap(), page);
    }
}
