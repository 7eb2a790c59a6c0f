//! Certificate credentials end to end against the emulator's token endpoint, which verifies the
//! client assertion as Entra ID does: the certificate's thumbprint, the signature, the claims.
//! A key of another certificate, an expired certificate and a certificate the app does not have
//! registered each fail with their own message.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::*;
use mde_watch::sim::{self, SimConfig, SimHandle, UniverseSpec};

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/cert")
            .join(name),
    )
    .unwrap()
}

async fn start(registered: &str) -> SimHandle {
    sim::start(SimConfig {
        universe: UniverseSpec {
            seed: 41,
            users: 10,
            files: 10,
            ..UniverseSpec::default()
        },
        limits: fast_limits(),
        certificate_pem: Some(fixture(registered)),
        ..SimConfig::default()
    })
    .await
    .unwrap()
}

/// A config for `sim` that signs with `certificate` and `key` (copied beside it, 0600).
fn config_with(dir: &Path, sim: &SimHandle, certificate: &str, key: &str) -> std::path::PathBuf {
    let path = write_config(dir, sim, &Watch::first(sim, 5, 5), "");
    for (name, mode) in [(certificate, 0o644), (key, 0o600)] {
        std::fs::write(dir.join(name), fixture(name)).unwrap();
        std::fs::set_permissions(dir.join(name), std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let text = std::fs::read_to_string(&path).unwrap().replace(
        "client_secret_file = \"secret\"",
        &format!("certificate_file = \"{certificate}\"\nprivate_key_file = \"{key}\""),
    );
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_gets_tokens_and_check_says_when_it_expires() {
    let sim = start("app.pem").await;
    let dir = tempfile::tempdir().unwrap();
    let config = config_with(dir.path(), &sim, "app.pem", "app.key");

    let check = run(&["check"], &config).await;
    let stdout = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success(), "{}", show(&check));
    assert!(
        stdout.contains("thumbprint C7F2D3B1FE75B147475F82C817290A986386928A")
            && stdout.contains("valid until 2126-01-01"),
        "{stdout}"
    );
    let key = String::from_utf8(fixture("app.key")).unwrap();
    let body = key.lines().nth(1).unwrap();
    assert!(!stdout.contains(body), "the key never shows");

    let once = run(&["once"], &config).await;
    assert!(once.status.success(), "{}", show(&once));
    let watch = Watch::first(&sim, 5, 5);
    assert_eq!(
        ids(&events(&dir.path().join("alerts.ndjson"))),
        sim.expected_ids(&watch.users, &watch.files)
    );
    assert!(!String::from_utf8_lossy(&once.stderr).contains(body));
    assert!(stdout.contains("assertions signed PS256"), "{stdout}");
    let tokens = sim.stats().token_calls;
    assert!(tokens >= 1);

    // The older form, RS256 with the SHA-1 thumbprint, is accepted too.
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "private_key_file = \"app.key\"",
        "private_key_file = \"app.key\"\nassertion_algorithm = \"RS256\"",
    );
    std::fs::write(&config, text).unwrap();
    let again = run(&["once"], &config).await;
    assert!(again.status.success(), "{}", show(&again));
    assert!(sim.stats().token_calls > tokens);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_key_an_expired_certificate_and_an_unregistered_one_each_say_so() {
    let sim = start("app.pem").await;
    let dir = tempfile::tempdir().unwrap();

    let wrong_key = config_with(dir.path(), &sim, "app.pem", "other.key");
    let check = run(&["check"], &wrong_key).await;
    assert!(!check.status.success());
    let said = show(&check);
    assert!(
        said.contains("does not belong to the certificate")
            && said.contains("other.key (api.private_key_file)"),
        "{said}"
    );

    let expired = config_with(dir.path(), &sim, "expired.pem", "app.key");
    let check = run(&["check"], &expired).await;
    assert!(!check.status.success());
    let said = show(&check);
    assert!(
        said.contains("api.certificate_file") && said.contains("expired on 2025-01-01"),
        "{said}"
    );

    // The app has another certificate registered: Entra ID does not know this thumbprint.
    let other_app = start("expired.pem").await;
    let unregistered = config_with(dir.path(), &other_app, "app.pem", "app.key");
    let once = run(&["once"], &unregistered).await;
    assert!(!once.status.success());
    let said = show(&once);
    assert!(
        said.contains("AADSTS700027") && said.contains("not registered"),
        "{said}"
    );
}
