//! Pretty-printed JSON made compact, strings untouched: an alert goes out on one NDJSON line.

/// Removes the whitespace between JSON tokens, leaving strings untouched, so that an alert the API
/// sent pretty-printed fits on one NDJSON line with its content byte-for-byte the same.
pub fn compact(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    let mut in_string = false;
    let mut escaped = false;
    for c in json.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !matches!(c, ' ' | '\n' | '\r' | '\t') {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_keeps_strings() {
        assert_eq!(
            compact("{ \"a\" : \"x y\\\" }\"\n, \"b\": [1, 2] }"),
            r#"{"a":"x y\" }","b":[1,2]}"#
        );
    }
}
