//! Certificate credentials end to end against the emulator's token endpoint, which verifies the
//! client assertion as Entra ID does: the certificate's thumbprint, the signature, the claims.
//! A key of another certificate, an expired certificate and a certificate the app does not have
//! registered each fail with their own message.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::*;
use mde_watch::sim::{self, Faults, SimConfig, SimHandle};

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/cert")
            .join(name),
    )
    .unwrap()
}

async fn start(registered: &str) -> SimHandle {
    start_with(fixture(registered)).await
}

/// The emulator with `certificate` registered for the app.
async fn start_with(certificate: Vec<u8>) -> SimHandle {
    sim::start(SimConfig {
        universe: universe_of(41, 10, 10),
        limits: fast_limits(),
        certificate_pem: Some(certificate),
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

    let check = run_ok(&["check"], &config).await;
    let stdout = String::from_utf8_lossy(&check.stdout);
    assert!(
        stdout.contains("thumbprint C7F2D3B1FE75B147475F82C817290A986386928A")
            && stdout.contains("valid until 2126-01-01"),
        "{stdout}"
    );
    let key = String::from_utf8(fixture("app.key")).unwrap();
    let body = key.lines().nth(1).unwrap();
    assert!(!stdout.contains(body), "the key never shows");

    let once = run_ok(&["once"], &config).await;
    let watch = Watch::first(&sim, 5, 5);
    assert_delivered_all(dir.path(), &sim, &watch);
    assert!(!String::from_utf8_lossy(&once.stderr).contains(body));
    says(&stdout, "assertions signed PS256");
    let tokens = sim.stats().token_calls;
    assert!(tokens >= 1);

    // The older form, RS256 with the SHA-1 thumbprint, is accepted too.
    edit_config(
        &config,
        "private_key_file = \"app.key\"",
        "private_key_file = \"app.key\"\nassertion_algorithm = \"RS256\"",
    );
    run_ok(&["once"], &config).await;
    assert!(sim.stats().token_calls > tokens);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_key_an_expired_certificate_and_an_unregistered_one_each_say_so() {
    let sim = start("app.pem").await;
    let dir = tempfile::tempdir().unwrap();

    let wrong_key = config_with(dir.path(), &sim, "app.pem", "other.key");
    let (check, _) = run_err(&["check"], &wrong_key).await;
    let said = show(&check);
    assert!(
        said.contains("does not belong to the certificate")
            && said.contains("other.key (api.private_key_file)"),
        "{said}"
    );

    let expired = config_with(dir.path(), &sim, "expired.pem", "app.key");
    let (check, _) = run_err(&["check"], &expired).await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewed_certificate_in_its_files_is_read_again_when_the_old_one_is_refused() {
    let sim = start("app.pem").await;
    let dir = tempfile::tempdir().unwrap();
    let config = config_with(dir.path(), &sim, "app.pem", "app.key");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("\n[schedule]\ncron = \"* * * * * *\"\n");
    std::fs::write(&config, text).unwrap();
    // Tokens die quickly, so the running daemon asks for new ones after the renewal.
    let short_tokens = Faults {
        token_dies_after_ms: Some(1200),
        ..Faults::default()
    };
    sim.set_faults(short_tokens.clone());
    let watch = Watch::first(&sim, 5, 5);
    let output = dir.path().join("alerts.ndjson");
    let daemon = spawn(&["run"], &config, "info");
    written_within_a_minute(&output, &sim.expected_ids(&watch.users, &watch.files)).await;

    // The operator writes the renewed certificate and its key over the old files, then the
    // app registration drops the old certificate.
    std::fs::write(dir.path().join("app.pem"), fixture("other.pem")).unwrap();
    std::fs::write(dir.path().join("app.key"), fixture("other.key")).unwrap();
    let renewed = Faults {
        certificate_pem: Some(fixture("other.pem")),
        ..short_tokens
    };
    let stderr = deliver_after_rotation(&sim, &watch, &output, renewed, daemon).await;
    says(
        &stderr,
        "the token endpoint refused the certificate in use; a different one was read again",
    );
    says(&stderr, "app.key (api.private_key_file)");
    let key = String::from_utf8(fixture("other.key")).unwrap();
    assert!(
        !stderr.contains(key.lines().nth(1).unwrap()),
        "the key never shows"
    );
}

/// `mde-watch ARGS --config CONFIG` as systemd starts it with `LoadCredential=`.
async fn run_with_credentials(
    args: &[&str],
    config: &Path,
    credentials: &Path,
) -> std::process::Output {
    let output = tokio::process::Command::new(binary())
        .args(args)
        .arg("--config")
        .arg(config)
        .env("RUST_LOG", "warn")
        .env("CREDENTIALS_DIRECTORY", credentials)
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    assert!(!String::from_utf8_lossy(&output.stderr).contains("panicked"));
    output
}

/// A certificate made now that ends in 10 days, its key read from a systemd credential, against
/// Graph: `check` warns of the expiry, and Graph's token scope is granted with the assertion.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_near_its_end_warns_and_a_credential_key_signs_for_graph() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("app.key"), fixture("app.key")).unwrap();
    let made = std::process::Command::new("openssl")
        .args(["req", "-x509", "-new", "-key", "app.key", "-days", "10"])
        .args(["-subj", "/CN=mde-watch test", "-out", "soon.pem"])
        .current_dir(dir.path())
        .output()
        .expect("openssl runs (tests/install-deps.sh installs it)");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let soon = std::fs::read(dir.path().join("soon.pem")).unwrap();
    std::fs::remove_file(dir.path().join("app.key")).unwrap();
    let sim = start_with(soon).await;
    let watch = Watch::first(&sim, 5, 5);
    let config = write_config(
        dir.path(),
        &sim,
        &watch,
        "[source]\napi = \"graph\"\npage_size = 20\n",
    );
    edit_config(
        &config,
        "client_secret_file = \"secret\"",
        "certificate_file = \"soon.pem\"\nprivate_key_credential = \"mde-watch-key\"",
    );
    let credentials = dir.path().join("credentials");
    std::fs::create_dir(&credentials).unwrap();
    std::fs::write(credentials.join("mde-watch-key"), fixture("app.key")).unwrap();

    let check = run_with_credentials(&["check"], &config, &credentials).await;
    assert!(check.status.success(), "{}", show(&check));
    let said = show(&check);
    let ends = (chrono::Utc::now() + chrono::Duration::days(10)).format("%Y-%m-%d");
    assert!(
        said.contains(&format!("expires on {ends}"))
            && (said.contains("in 9 day(s)") || said.contains("in 10 day(s)")),
        "{said}"
    );
    says(&said, "renew it");

    let once = run_with_credentials(&["once"], &config, &credentials).await;
    assert!(once.status.success(), "{}", show(&once));
    assert_eq!(
        file_ids(dir.path()),
        sim.expected_graph_ids(&watch.users, &watch.files),
        "alerts_v2 answers only a token with Graph's audience"
    );
    let key = String::from_utf8(fixture("app.key")).unwrap();
    assert!(!show(&once).contains(key.lines().nth(1).unwrap()));
    assert!(sim.stats().feed_calls > 0);
}
