//! The receivers' view of mde-watch's events, written apart from the product so that a mistake
//! in an encoder is not repeated here: a strict CEF reader checked against ArcSight's key
//! dictionary (types and lengths from the CEF Implementation Standard), the OCSF JSON Schema
//! (tests/receivers/ocsf_validate.py, PyPI's ocsf-json-schema), and ECS field types from the
//! field definitions in tests/fixtures/ecs-fields.tsv.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::Value;

/// A CEF line read strictly: header fields after `CEF:0`, extension pairs unescaped.
#[derive(Debug)]
pub struct Cef {
    /// Vendor, product, version, signature id, name, severity.
    pub header: Vec<String>,
    pub extension: Vec<(String, String)>,
}

impl Cef {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.extension
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Text(usize),
    Integer,
    Long,
    Time,
    Ipv4,
    Ipv6,
    Float,
}

/// ArcSight's CEF key dictionary, from tests/fixtures/cef-keys.tsv (key, type, text length),
/// read once.
fn dictionary() -> &'static HashMap<String, Kind> {
    static KEYS: std::sync::OnceLock<HashMap<String, Kind>> = std::sync::OnceLock::new();
    KEYS.get_or_init(read_dictionary)
}

fn read_dictionary() -> HashMap<String, Kind> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cef-keys.tsv");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut keys = HashMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let mut fields = line.split('\t');
        let (key, kind) = (fields.next().unwrap(), fields.next().unwrap_or(""));
        let kind = match kind {
            "text" => Kind::Text(fields.next().and_then(|n| n.parse().ok()).unwrap()),
            "integer" => Kind::Integer,
            "long" => Kind::Long,
            "time" => Kind::Time,
            "ipv4" => Kind::Ipv4,
            "ipv6" => Kind::Ipv6,
            "float" => Kind::Float,
            other => panic!("{}: {key} has an unknown type {other:?}", path.display()),
        };
        keys.insert(key.to_string(), kind);
    }
    keys
}

/// Header field limits: vendor, product, version, signature id, name.
const HEADER_LIMITS: [(&str, usize); 5] = [
    ("Device Vendor", 63),
    ("Device Product", 63),
    ("Device Version", 31),
    ("Signature ID", 1023),
    ("Name", 512),
];

/// Reads one CEF line the way a strict receiver does; every problem is named.
pub fn strict_cef(line: &str) -> Result<Cef, Vec<String>> {
    let mut problems = Vec::new();
    if let Some(c) = line.chars().find(|c| c.is_control()) {
        problems.push(format!("raw control character {c:?} in the line"));
    }
    let Some(rest) = line.strip_prefix("CEF:0|") else {
        return Err(vec![format!(
            "does not start with CEF:0|: {}",
            &line[..line.len().min(40)]
        )]);
    };
    let (header, extension_at) = read_header(rest, &mut problems);
    let Some(extension_at) = extension_at else {
        problems.push(format!("{} header fields after CEF:0, not 6", header.len()));
        return Err(problems);
    };
    for ((name, limit), value) in HEADER_LIMITS.iter().zip(&header) {
        let length = value.chars().count();
        if length > *limit {
            problems.push(format!(
                "{name} is {length} characters (ArcSight keeps {limit})"
            ));
        }
    }
    let severity_ok = header[5].parse::<u8>().is_ok_and(|s| s <= 10)
        || ["Unknown", "Low", "Medium", "High", "Very-High"].contains(&header[5].as_str());
    if !severity_ok {
        problems.push(format!("Severity '{}' is not 0-10", header[5]));
    }
    let extension = match read_extension(&rest[extension_at..]) {
        Ok(pairs) => pairs,
        Err(problem) => {
            problems.push(problem);
            Vec::new()
        }
    };
    check_pairs(&extension, &mut problems);
    if problems.is_empty() {
        Ok(Cef { header, extension })
    } else {
        Err(problems)
    }
}

/// The six header fields after `CEF:0|` (`\\` and `\|` unescaped), and where the extension
/// starts (None when there are fewer than six).
fn read_header(rest: &str, problems: &mut Vec<String>) -> (Vec<String>, Option<usize>) {
    let mut header = Vec::new();
    let mut field = String::new();
    let mut chars = rest.char_indices();
    let mut extension_at = None;
    while let Some((at, c)) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some((_, e @ ('\\' | '|'))) => field.push(e),
                other => {
                    problems.push(format!(
                        "header field {}: bad escape \\{other:?}",
                        header.len() + 1
                    ));
                }
            },
            '|' => {
                header.push(std::mem::take(&mut field));
                if header.len() == 6 {
                    extension_at = Some(at + 1);
                    break;
                }
            }
            c => field.push(c),
        }
    }
    (header, extension_at)
}

/// Each extension pair against ArcSight's dictionary: known key, valid value, stored length,
/// no key twice, and a label beside every custom field.
fn check_pairs(extension: &[(String, String)], problems: &mut Vec<String>) {
    let dictionary = dictionary();
    let mut seen = std::collections::HashSet::new();
    for (key, value) in extension {
        if !seen.insert(key.as_str()) {
            problems.push(format!("key {key} appears twice"));
        }
        let Some(kind) = dictionary.get(key) else {
            problems.push(format!("key {key} is not in ArcSight's dictionary"));
            continue;
        };
        let valid = match kind {
            Kind::Text(limit) => {
                let length = value.chars().count();
                if length > *limit {
                    problems.push(format!(
                        "{key} is {length} characters (ArcSight keeps {limit})"
                    ));
                }
                true
            }
            Kind::Integer => value.parse::<i32>().is_ok(),
            Kind::Long => value.parse::<i64>().is_ok(),
            Kind::Time => value.parse::<u64>().is_ok(),
            Kind::Float => value.parse::<f64>().is_ok(),
            Kind::Ipv4 => value.parse::<std::net::Ipv4Addr>().is_ok(),
            Kind::Ipv6 => value.parse::<std::net::Ipv6Addr>().is_ok(),
        };
        if !valid {
            problems.push(format!("{key}={value:?} is not a valid {kind:?}"));
        }
        let custom = [
            "cs",
            "cn",
            "c6a",
            "cfp",
            "deviceCustomDate",
            "flexString",
            "flexDate",
        ];
        if !key.ends_with("Label")
            && custom
                .iter()
                .any(|p| key.starts_with(p) && key[p.len()..].parse::<u8>().is_ok())
            && !extension.iter().any(|(k, _)| *k == format!("{key}Label"))
        {
            problems.push(format!("{key} has no {key}Label"));
        }
    }
}

/// `key=value key=value`: keys are letters and digits; in values `\\`, `\=`, `\n` and `\r` are
/// the only escapes and an unescaped `=` is an error (a reader cannot tell where a key starts).
fn read_extension(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let key_start = i;
        while i < bytes.len() && bytes[i].is_ascii_alphanumeric() {
            i += 1;
        }
        if i == key_start || i >= bytes.len() || bytes[i] != b'=' {
            return Err(format!(
                "no key=value at byte {key_start}: {:?}",
                &text[key_start..text.len().min(key_start + 30)]
            ));
        }
        let key = text[key_start..i].to_string();
        i += 1;
        let mut value = String::new();
        let mut chars = text[i..].char_indices().peekable();
        let mut end = text.len();
        while let Some((at, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, 'r')) => value.push('\r'),
                    Some((_, e @ ('\\' | '='))) => value.push(e),
                    other => return Err(format!("{key}: bad escape \\{other:?}")),
                },
                '=' => return Err(format!("{key}: unescaped '=' in its value")),
                ' ' => {
                    // A space ends the value when a key follows it.
                    let next = &text[i + at + 1..];
                    let key_len = next.bytes().take_while(u8::is_ascii_alphanumeric).count();
                    if key_len > 0 && next.as_bytes().get(key_len) == Some(&b'=') {
                        end = i + at;
                        break;
                    }
                    value.push(' ');
                }
                c => value.push(c),
            }
        }
        pairs.push((key, value));
        i = if end == text.len() { end } else { end + 1 };
    }
    Ok(pairs)
}

fn tests_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests")
}

/// OCSF events (one JSON text each) checked against the OCSF JSON Schema; the problems found.
pub fn ocsf_schema_problems(events: &[String]) -> Vec<String> {
    let mut child = Command::new("python3")
        .arg(tests_dir().join("receivers/ocsf_validate.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs (tests/install-deps.sh installs ocsf-json-schema and jsonschema)");
    let mut stdin = child.stdin.take().unwrap();
    let input: String = events.iter().map(|e| format!("{e}\n")).collect();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("Traceback"),
        "the OCSF validator failed to run:\n{stderr}"
    );
    let counted = format!("{} event(s)", events.len());
    assert!(
        stderr.contains(&counted),
        "validator read {stderr}, expected {counted}"
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(String::from)
        .collect()
}

/// name → (type, is array, allowed values), from the ECS field definitions.
pub fn ecs_definitions() -> HashMap<String, (String, bool, Vec<String>)> {
    let text = std::fs::read_to_string(tests_dir().join("fixtures/ecs-fields.tsv")).unwrap();
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

/// What Elasticsearch under the ECS mapping would refuse or misfile in one event: fields outside
/// ECS (but for the two custom namespaces), values of the wrong type (a non-IP in an `ip` field
/// rejects the whole document), values outside a field's allowed set.
pub fn ecs_problems(
    event: &Value,
    definitions: &HashMap<String, (String, bool, Vec<String>)>,
) -> Vec<String> {
    let mut problems = Vec::new();
    let mut fields = Vec::new();
    leaves("", event, &mut fields);
    for (path, value) in fields {
        if path.starts_with("microsoft.defender_endpoint.") || path.starts_with("mde_watch.") {
            continue;
        }
        let Some((kind, array, allowed)) = definitions.get(&path) else {
            problems.push(format!("'{path}' is not an ECS field"));
            continue;
        };
        let items: Vec<&Value> = match &value {
            Value::Array(items) => {
                if !*array {
                    problems.push(format!("{path} is not an array field in ECS"));
                }
                items.iter().collect()
            }
            single => vec![single],
        };
        for item in items {
            let ok = match kind.as_str() {
                "long" | "integer" => item.is_i64(),
                "date" => item
                    .as_str()
                    .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                    .is_some(),
                "ip" => item
                    .as_str()
                    .is_some_and(|t| t.parse::<std::net::IpAddr>().is_ok()),
                _ => item.is_string(),
            };
            if !ok {
                problems.push(format!("{path} must be a {kind}: {item}"));
            }
            if !allowed.is_empty() && !allowed.iter().any(|a| item == a.as_str()) {
                problems.push(format!("{path}: {item} is not an allowed value"));
            }
        }
    }
    problems
}
