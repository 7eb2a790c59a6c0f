//! Tests of the config's loading and validation: documented defaults, every problem listed with its
//! key and file, limits that warn, secrets kept out of Debug.

use super::*;

const MINIMAL: &str = concat!(
    test_config_head!(),
    r#"[[sinks]]
type = "file"
path = "out/alerts.ndjson"
"#
);

fn private(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

fn with_secret_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("secret.txt"), "s\n").unwrap();
    private(&dir.path().join("secret.txt"));
    dir
}

#[test]
fn minimal_config_gets_documented_defaults() {
    let dir = with_secret_dir();
    let config = Config::from_toml(MINIMAL, "test.toml", dir.path(), false).unwrap();
    assert_eq!(config.limits, limiter::DOCUMENTED_LIMITS.to_vec());
    assert_eq!(config.schedule.cron, "0 */5 * * * *");
    assert_eq!(config.api.api_base, "https://api.security.microsoft.com");
    assert_eq!(config.store.retention, Duration::from_secs(90 * 86_400));
    assert_eq!(config.updates, UpdatePolicy::Ignore);
    assert_eq!(config.pipeline.queue_bytes, 2 << 20);
    let SinkKind::File(file) = &config.sinks[0].kind else {
        panic!("file sink expected")
    };
    assert_eq!(file.path, dir.path().join("out/alerts.ndjson"));
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
}

#[test]
fn unknown_key_names_key_and_file() {
    let dir = with_secret_dir();
    let text = MINIMAL.replace("[watchlist]", "[watchlist]\nuserz = [\"x\"]");
    let err = Config::from_toml(&text, "conf/x.toml", dir.path(), false).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("unknown key 'watchlist.userz' in conf/x.toml"),
        "{message}"
    );
}

#[test]
fn every_problem_is_listed() {
    let dir = with_secret_dir();
    let text = MINIMAL
        .replace(
            "users = [\"user1\"]",
            "users = [\"a|b\"]\nfiles = [\"d41d8cd98f00b204e9800998ecf8427e\"]",
        )
        .replace(
            "[watchlist]",
            "[schedule]\ncron = \"every five minutes\"\n[watchlist]",
        );
    let err = Config::from_toml(&text, "x.toml", dir.path(), false).unwrap_err();
    let message = err.to_string();
    assert!(message.contains("schedule.cron"), "{message}");
    assert!(message.contains("watchlist.users[0]"), "{message}");
    assert!(message.contains("looks like MD5"), "{message}");
    assert_eq!(err.problems.len(), 3, "{message}");
}

#[test]
fn queue_bytes_are_read_and_checked() {
    let dir = with_secret_dir();
    let with = |value: &str| format!("{MINIMAL}\n[pipeline]\nqueue_bytes = \"{value}\"\n");
    let config = Config::from_toml(&with("16MiB"), "x.toml", dir.path(), false).unwrap();
    assert_eq!(config.pipeline.queue_bytes, 16 << 20);
    let err = Config::from_toml(&with("1KiB"), "x.toml", dir.path(), false).unwrap_err();
    assert!(
        err.to_string()
            .contains("pipeline.queue_bytes: '1KiB' is too small"),
        "{err}"
    );
    let err = Config::from_toml(&with("lots"), "x.toml", dir.path(), false).unwrap_err();
    assert!(err.to_string().contains("pipeline.queue_bytes"), "{err}");
}

#[test]
fn generous_limits_warn_loudly() {
    let dir = with_secret_dir();
    let text = format!("{MINIMAL}\n[[limits.window]]\ncalls = 1000\nper = \"1s\"\n");
    let config = Config::from_toml(&text, "x.toml", dir.path(), false).unwrap();
    assert!(
        config
            .warnings
            .iter()
            .any(|w| w.contains("ABOVE THE DOCUMENTED")),
        "{:?}",
        config.warnings
    );
}

#[test]
fn secret_never_in_debug_output() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("secret.txt"), "TOPSECRET-VALUE").unwrap();
    private(&dir.path().join("secret.txt"));
    let config = Config::from_toml(MINIMAL, "x.toml", dir.path(), false).unwrap();
    assert!(!format!("{config:?}").contains("TOPSECRET"));
}
