//! A table of bad inputs, each run through `mde-watch check`: every one gives its own message,
//! naming the value and where it came from, with a non-zero exit and no panic.

mod common;

use std::path::Path;
use std::process::Command;

use common::write_secret;

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

struct Case {
    name: &'static str,
    /// (from, to) replacements applied to GOOD.
    edit: (&'static str, &'static str),
    /// Every string the output must contain.
    expect: &'static [&'static str],
    succeeds: bool,
}

const CASES: &[Case] = &[
    Case {
        name: "md5 hash",
        edit: ("6532ec91d513acc05f43ee0aa3002599729fd3e1", "d41d8cd98f00b204e9800998ecf8427e"),
        expect: &["config key watchlist.files[0]", "'d41d8cd98f00b204e9800998ecf8427e' looks like MD5: the API accepts SHA-1 only"],
        succeeds: false,
    },
    Case {
        name: "sha256 hash",
        edit: ("6532ec91d513acc05f43ee0aa3002599729fd3e1", "27bf53c7c1eb7dff02155467d9f4d50cacaa7f353912bf057637b7bdf14ce141"),
        expect: &["watchlist.files[0]", "looks like SHA-256: the API accepts SHA-1 only"],
        succeeds: false,
    },
    Case {
        name: "upn is accepted with a warning naming the original",
        edit: ("users = [\"user1\"]", "users = [\"user1@contoso.com\"]"),
        expect: &["warning: config key watchlist.users[0]: 'user1@contoso.com' watched as 'user1'"],
        succeeds: true,
    },
    Case {
        name: "impossible user name",
        edit: ("users = [\"user1\"]", "users = [\"ok\", \"bad|name\"]"),
        expect: &["config key watchlist.users[1]: 'bad|name' cannot be a user name"],
        succeeds: false,
    },
    Case {
        name: "unknown key",
        edit: ("[store]", "[store]\nretension = \"30d\""),
        expect: &["unknown key 'store.retension' in"],
        succeeds: false,
    },
    Case {
        name: "missing secret",
        edit: ("client_secret_file = \"secret\"", "client_secret_env = \"MDE_WATCH_TEST_SECRET_THAT_IS_NOT_SET\""),
        expect: &["environment variable MDE_WATCH_TEST_SECRET_THAT_IS_NOT_SET (api.client_secret_env) is not set"],
        succeeds: false,
    },
    Case {
        name: "no secret at all",
        edit: ("client_secret_file = \"secret\"", ""),
        expect: &["no credential configured", "api.certificate_file"],
        succeeds: false,
    },
    Case {
        name: "bad cron",
        edit: ("[store]", "[schedule]\ncron = \"*/5 * * * *\"\n[store]"),
        expect: &["schedule.cron: '*/5 * * * *' is not a valid cron expression"],
        succeeds: false,
    },
    Case {
        name: "unreadable list file",
        edit: ("users = [\"user1\"]", "users_file = \"no-such-users.txt\""),
        expect: &["cannot read watchlist file", "no-such-users.txt", "watchlist.users_file"],
        succeeds: false,
    },
    Case {
        name: "bad duration",
        edit: ("[store]", "[store]\nretention = \"ninety days\""),
        expect: &["store.retention: 'ninety days' is not a duration"],
        succeeds: false,
    },
    Case {
        name: "unknown sink type",
        edit: ("type = \"file\"", "type = \"carrier-pigeon\""),
        expect: &["sinks[0].type: unknown variant `carrier-pigeon`, expected one of `file`"],
        succeeds: false,
    },
    Case {
        name: "unknown format",
        edit: ("path = \"alerts.ndjson\"", "path = \"alerts.ndjson\"\nformat = \"xml\""),
        expect: &["sinks[0].format: 'xml' is not a format"],
        succeeds: false,
    },
    Case {
        name: "unknown syslog transport",
        edit: ("type = \"file\"\npath = \"alerts.ndjson\"", "type = \"syslog\"\naddress = \"127.0.0.1:514\"\ntransport = \"carrier\"\nfacility = \"local9\""),
        expect: &[
            "sinks[0].transport: 'carrier' is not a transport (udp | tcp | tls | unix)",
            "sinks[0].facility: 'local9' is not a facility",
        ],
        succeeds: false,
    },
    Case {
        name: "syslog message cap out of range",
        edit: ("type = \"file\"\npath = \"alerts.ndjson\"", "type = \"syslog\"\naddress = \"127.0.0.1:514\"\ntransport = \"udp\"\nmax_message = 100"),
        expect: &["sinks[0].max_message: 100 bytes is out of range for udp (480 to 65507)"],
        succeeds: false,
    },
    Case {
        name: "syslog message cap that is not a size",
        edit: ("type = \"file\"\npath = \"alerts.ndjson\"", "type = \"syslog\"\naddress = \"127.0.0.1:514\"\nmax_message = \"8 kilos\""),
        expect: &["sinks[0].max_message: '8 kilos'"],
        succeeds: false,
    },
    Case {
        name: "both names of the syslog cap",
        edit: ("type = \"file\"\npath = \"alerts.ndjson\"", "type = \"syslog\"\naddress = \"127.0.0.1:514\"\nmax_message = \"8KiB\"\nmax_datagram = 2048"),
        expect: &["sinks[0]: max_datagram is the former name of max_message; set only max_message"],
        succeeds: false,
    },
    Case {
        name: "the former name of the syslog cap still works",
        edit: ("type = \"file\"\npath = \"alerts.ndjson\"", "type = \"syslog\"\naddress = \"127.0.0.1:514\"\ntransport = \"udp\"\nformat = \"cef\"\nmax_datagram = 4096"),
        expect: &["warning: sinks[0].max_datagram is now called max_message", "messages up to 4096 bytes"],
        succeeds: true,
    },
    Case {
        name: "an RFC 3164 collector name a relay would misread",
        edit: ("type = \"file\"\npath = \"alerts.ndjson\"", "type = \"syslog\"\naddress = \"127.0.0.1:514\"\nprotocol = \"rfc3164\"\n[collector]\nname = \"host|=x\""),
        expect: &["collector.name: 'host|=x' cannot be an RFC 3164 HOSTNAME (sink 'syslog-0' uses protocol rfc3164)"],
        succeeds: false,
    },
    Case {
        name: "unknown cloud",
        edit: ("[api]", "[api]\ncloud = \"mars\""),
        expect: &["api.cloud: 'mars' is not a cloud"],
        succeeds: false,
    },
    Case {
        name: "not toml",
        edit: ("[watchlist]", "[watchlist"),
        expect: &["mde-watch.toml"],
        succeeds: false,
    },
];

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
    assert!(
        stdout.contains("plan: 2 entries (1 users, 1 files)"),
        "{stdout}"
    );
    assert!(stdout.contains("cron fires every 5m"), "{stdout}");
}

#[test]
fn every_bad_input_has_its_own_message() {
    for case in CASES {
        assert!(
            GOOD.contains(case.edit.0),
            "{}: the edit does not apply",
            case.name
        );
        let dir = tempfile::tempdir().unwrap();
        let output = check(dir.path(), &GOOD.replacen(case.edit.0, case.edit.1, 1));
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
        for expected in case.expect {
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
    assert!(
        stdout.contains("hashes.txt line 3: 'not-a-hash' is not a SHA-1 hash"),
        "{stdout}"
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
    assert!(
        stdout.contains("api: Defender for Endpoint, gcc-high cloud, https://api-gov.securitycenter.microsoft.us"),
        "{stdout}"
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
    assert!(stdout.contains("each sweep polls 2 entries"), "{stdout}");
}
