//! A table of bad inputs (`bad_inputs.json`), each run through `mde-watch check`: every one gives its own message,
//! naming the value and where it came from, with a non-zero exit and no panic.

mod common;

use std::path::Path;
use std::process::Command;

use common::{says, write_secret};

const GOOD: &str = r#"
[api]
tenant_id = "00000000-0000-0000-0000-000000000000"
client_id = "11111111-1111-1111-1111-111111111111"
client_secret_file = "secret"
[watchlist]
users = ["user1"]
files = ["6532ec91d513acc05f43ee0aa3002599729fd3e1"]
[store]
path = "store"
[[sinks]]
type = "file"
path = "alerts.ndjson"
"#;

/// One bad input, from `bad_inputs.json` (a table of data, reviewed like code).
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    /// The text of GOOD to change, and what it becomes.
    replace: String,
    with: String,
    /// Every string the output must contain.
    expect: Vec<String>,
    succeeds: bool,
}

fn cases() -> Vec<Case> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad_inputs.json");
    let text = std::fs::read_to_string(&path).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

fn check(dir: &Path, text: &str) -> std::process::Output {
    write_secret(&dir.join("secret"), "s");
    let path = dir.join("mde-watch.toml");
    std::fs::write(&path, text).unwrap();
    Command::new(common::binary())
        .arg("check")
        .arg("--config")
        .arg(&path)
        .env_remove("MDE_WATCH_TEST_SECRET_THAT_IS_NOT_SET")
        .output()
        .unwrap()
}

#[test]
fn good_config_passes_and_prints_the_plan() {
    let dir = tempfile::tempdir().unwrap();
    let output = check(dir.path(), GOOD);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", common::show(&output));
    says(&stdout, "plan: 2 entries (1 users, 1 files)");
    says(&stdout, "cron fires every 5m");
    says(&stdout, "(retention 90d, commits flushed within 100ms)");
}

#[test]
fn every_bad_input_has_its_own_message() {
    let cases = cases();
    assert!(cases.len() >= 20, "the table lost cases: {}", cases.len());
    for case in &cases {
        assert!(
            GOOD.contains(&case.replace),
            "{}: the edit does not apply",
            case.name
        );
        let dir = tempfile::tempdir().unwrap();
        let output = check(dir.path(), &GOOD.replacen(&case.replace, &case.with, 1));
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(
            output.status.success(),
            case.succeeds,
            "{}: {}",
            case.name,
            common::show(&output)
        );
        assert!(!all.contains("panicked"), "{}: {all}", case.name);
        for expected in &case.expect {
            assert!(
                all.contains(expected),
                "{}: expected {expected:?} in:\n{all}",
                case.name
            );
        }
    }
}

#[test]
fn all_problems_are_listed_one_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let text = GOOD
        .replace(
            "6532ec91d513acc05f43ee0aa3002599729fd3e1",
            "d41d8cd98f00b204e9800998ecf8427e",
        )
        .replace("[store]", "[schedule]\ncron = \"nope\"\n[store]");
    let output = check(dir.path(), &text);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success());
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("error: ")).count(),
        2,
        "{stdout}"
    );
}

#[test]
fn list_file_errors_name_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("hashes.txt"),
        "# IR-1234\n470454e35ea71dd971c2b0cbb29e0225cd0526cb\nnot-a-hash\n",
    )
    .unwrap();
    let text = GOOD.replace(
        "files = [\"6532ec91d513acc05f43ee0aa3002599729fd3e1\"]",
        "files_file = \"hashes.txt\"",
    );
    let output = check(dir.path(), &text);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success());
    says(
        &stdout,
        "hashes.txt line 3: 'not-a-hash' is not a SHA-1 hash",
    );
}

#[test]
fn env_override_sets_a_key() {
    let dir = tempfile::tempdir().unwrap();
    write_secret(&dir.path().join("secret"), "s");
    let path = dir.path().join("mde-watch.toml");
    std::fs::write(&path, GOOD).unwrap();
    let output = Command::new(common::binary())
        .args(["check", "--config"])
        .arg(&path)
        .env("MDE_WATCH__API__CLOUD", "gcc-high")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", common::show(&output));
    says(
        &stdout,
        "api: Defender for Endpoint, gcc-high cloud, https://api-gov.securitycenter.microsoft.us",
    );
}

#[test]
fn the_example_config_is_valid() {
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("conf/mde-watch.toml");
    // The secret arrives as the systemd credential the unit loads.
    let credentials = tempfile::tempdir().unwrap();
    std::fs::write(credentials.path().join("mde-watch-secret"), "example").unwrap();
    let output = Command::new(common::binary())
        .args(["check", "--config"])
        .arg(&example)
        .env("CREDENTIALS_DIRECTORY", credentials.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", common::show(&output));
    says(&stdout, "each sweep polls 2 entries");
}
