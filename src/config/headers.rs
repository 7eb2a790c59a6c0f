//! `telemetry.otlp_headers_file`: headers an OTLP collector wants on every export (an API key, a
//! bearer token), one `Name: value` a line as curl's `-H` takes them; blank lines and `#`
//! comments are skipped. The values are secrets: kept as [`Secret`], and a bad line is named by
//! its number and its header's name, never its value.

use super::secret::Secret;

/// Headers the exporter writes itself: a file setting them would break the request.
const SET_BY_THE_EXPORTER: [&str; 4] = [
    "content-type",
    "content-length",
    "host",
    "transfer-encoding",
];

/// The headers in `text`, or one problem per bad line ("line 3: …").
pub fn parse(text: &str) -> Result<Vec<(String, Secret)>, Vec<String>> {
    let mut headers = Vec::new();
    let mut problems = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match header(line) {
            Ok(header) => headers.push(header),
            Err(problem) => problems.push(format!("line {}: {problem}", number + 1)),
        }
    }
    if problems.is_empty() {
        Ok(headers)
    } else {
        Err(problems)
    }
}

fn header(line: &str) -> Result<(String, Secret), String> {
    let Some((name, value)) = line.split_once(':') else {
        return Err("no ':' between a header's name and its value".to_string());
    };
    let (name, value) = (name.trim(), value.trim());
    if name.is_empty() || !name.bytes().all(is_token_byte) {
        return Err(format!("'{name}' is not a header name"));
    }
    if SET_BY_THE_EXPORTER.contains(&name.to_ascii_lowercase().as_str()) {
        return Err(format!("{name} is set by the exporter"));
    }
    if value.is_empty() {
        return Err(format!("{name} has no value"));
    }
    // Visible ASCII, spaces and tabs: what every HTTP stack takes in a header value.
    if !value
        .bytes()
        .all(|b| b == b'\t' || (b' '..=b'~').contains(&b))
    {
        return Err(format!(
            "the value of {name} holds a character a header cannot carry"
        ));
    }
    Ok((name.to_string(), Secret::new(value)))
}

/// RFC 9110's `tchar`.
fn is_token_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_values_are_read_and_bad_lines_named_without_their_values() {
        let text = "# for the collector\n\nx-api-key: s3cret value\nAuthorization:Bearer abc\n";
        let headers = parse(text).unwrap();
        let read: Vec<_> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.expose()))
            .collect();
        assert_eq!(
            read,
            [
                ("x-api-key", "s3cret value"),
                ("Authorization", "Bearer abc")
            ]
        );
        assert_eq!(
            format!("{headers:?}"),
            "[(\"x-api-key\", Secret(***)), (\"Authorization\", Secret(***))]"
        );

        let bad = "x-api-key hunter2\nbad name: hunter2\nContent-Type: text/plain\nx-empty:\nx-key: hunter2\u{7f}\n";
        let problems = parse(bad).unwrap_err();
        assert_eq!(
            problems,
            [
                "line 1: no ':' between a header's name and its value",
                "line 2: 'bad name' is not a header name",
                "line 3: Content-Type is set by the exporter",
                "line 4: x-empty has no value",
                "line 5: the value of x-key holds a character a header cannot carry",
            ]
        );
        assert!(problems.iter().all(|p| !p.contains("hunter2")));
    }
}
