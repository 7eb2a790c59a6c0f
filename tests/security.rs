//! Secure by default, as an operator would misconfigure it: a credential sent in clear to a remote
//! host and a secret file others can read are refused by `check` and by `run` (nothing starts);
//! alerts sent in clear are said; what mde-watch writes is not readable by other users; and the
//! API client's TLS runs against the emulator serving HTTPS: a private CA through `api.ca_file`
//! works, a certificate for another name and an expired one each fail saying which.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::certs::{Issued, TestCa};
use common::*;
use mde_watch::sim::{self, SimConfig, SimHandle, SimTls, UniverseSpec};
use tokio::io::AsyncBufReadExt;

fn universe() -> UniverseSpec {
    universe_of(17, 10, 10)
}

fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// The config at `path` with `from` replaced by `to` (which must be there).
fn edited(path: &Path, name: &str, from: &str, to: &str) -> PathBuf {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{from} in {text}");
    let edited = path.with_file_name(name);
    std::fs::write(&edited, text.replacen(from, to, 1)).unwrap();
    edited
}

/// `check` and `run` both refuse the config with `expected`, and `run` starts nothing.
async fn refused(config: &Path, expected: &str) {
    let check = run(&["check"], config).await;
    let said = show(&check);
    assert_eq!(check.status.code(), Some(1), "{said}");
    assert!(
        said.contains(&format!("error: {expected}")),
        "{expected}\n{said}"
    );
    let store = config.with_file_name("store");
    let run = run(&["run"], config).await;
    let said = show(&run);
    assert!(!run.status.success(), "{said}");
    assert!(said.contains(expected), "{expected}\n{said}");
    assert!(!store.exists(), "run refused, yet it opened the store");
}

/// `check` accepts the config and warns with `expected`.
async fn warned(config: &Path, expected: &str) -> String {
    let check = run_ok(&["check"], config).await;
    let said = show(&check);
    assert!(
        said.contains(&format!("warning: {expected}")),
        "{expected}\n{said}"
    );
    said
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_in_clear_and_secrets_others_can_read_are_refused() {
    let fixture = Fixture::start(universe(), fast_limits(), 3, 3).await;
    let dir = fixture.dir.path();
    let config = write_config(dir, &fixture.sim, &fixture.watch, "");

    api_hosts_in_clear(&fixture, &config).await;
    kafka_passwords_in_clear(&fixture).await;
    a_tls_key_others_can_read(&fixture).await;
    secret_file_modes(dir, &config).await;
}

/// http:// to a remote login or API host is refused; the lab's way out is allowed, and said.
async fn api_hosts_in_clear(fixture: &Fixture, config: &Path) {
    let login = format!("login_url = \"{}\"", fixture.sim.base_url());
    let base = format!("base_url = \"{}\"", fixture.sim.base_url());
    let remote_login = edited(
        config,
        "login.toml",
        &login,
        "login_url = \"http://login.example.net\"",
    );
    refused(
        &remote_login,
        "api.login_url: 'http://login.example.net' would send the client secret to login.example.net in clear; use https://, or set allow_insecure_http = true in [api]",
    )
    .await;
    let remote_base = edited(
        config,
        "base.toml",
        &base,
        "base_url = \"http://10.1.2.3:8080\"",
    );
    refused(
        &remote_base,
        "api.base_url: 'http://10.1.2.3:8080' would send every bearer token to 10.1.2.3 in clear",
    )
    .await;
    // The lab's way out is allowed, and said.
    let lab = edited(
        &remote_base,
        "lab.toml",
        "[api]\n",
        "[api]\nallow_insecure_http = true\n",
    );
    let said = warned(
        &lab,
        "INSECURE: api.base_url 'http://10.1.2.3:8080' is http:// to 10.1.2.3",
    )
    .await;
    says(&said, "alerts from http://10.1.2.3:8080 IN CLEAR");
}

async fn kafka_passwords_in_clear(fixture: &Fixture) {
    let dir = fixture.dir.path();
    // A password on the wire to a remote broker.
    let kafka = "[[sinks]]\ntype = \"kafka\"\nbrokers = \"kafka.example.net:9092\"\ntopic = \"alerts\"\n[sinks.librdkafka]\n\"security.protocol\" = \"SASL_PLAINTEXT\"\n";
    let plain = write_config_named(
        dir,
        fixture,
        "plain.toml",
        &format!("{kafka}\"sasl.mechanism\" = \"PLAIN\"\n"),
    );
    refused(
        &plain,
        "sinks[1].librdkafka: security.protocol = \"SASL_PLAINTEXT\" with sasl.mechanism = \"PLAIN\" sends the SASL password to kafka.example.net:9092 in clear",
    )
    .await;
    let scram = write_config_named(
        dir,
        fixture,
        "scram.toml",
        &format!("{kafka}\"sasl.mechanism\" = \"SCRAM-SHA-256\"\n"),
    );
    warned(&scram, "sinks[1].librdkafka: SCRAM-SHA-256 over SASL_PLAINTEXT sends no password, but every alert goes to kafka.example.net:9092 in clear").await;
}

async fn a_tls_key_others_can_read(fixture: &Fixture) {
    let dir = fixture.dir.path();
    // A TLS client key every local user can read.
    let key = dir.join("client.key");
    std::fs::write(&key, "not read: refused before").unwrap();
    set_mode(&key, 0o644);
    let tls = write_config_named(
        dir,
        fixture,
        "tls.toml",
        "[[sinks]]\ntype = \"syslog\"\naddress = \"127.0.0.1:6514\"\ntransport = \"tls\"\ncert_file = \"client.pem\"\nkey_file = \"client.key\"\n",
    );
    refused(
        &tls,
        &format!(
            "sinks[1].key_file: {} can be read by every local user (mode 0644)",
            key.display()
        ),
    )
    .await;
}

async fn secret_file_modes(dir: &Path, config: &Path) {
    // The secret file, like an ssh key: 0644 refused, 0640 warned (at check and at start),
    // 0600 silent.
    let secret = dir.join("secret");
    set_mode(&secret, 0o644);
    refused(
        config,
        &format!("api.client_secret_file: {} can be read by every local user (mode 0644); a secret file must be private: run chmod 600 {}", secret.display(), secret.display()),
    )
    .await;
    set_mode(&secret, 0o640);
    let group = format!(
        "api.client_secret_file: {} can be read by its group (mode 0640); run chmod 600",
        secret.display()
    );
    warned(config, &group).await;
    let once = run_ok(&["once"], config).await;
    assert!(show(&once).contains(&group), "{}", show(&once));
    set_mode(&secret, 0o600);
    let check = run_ok(&["check"], config).await;
    let said = show(&check);
    assert!(
        !said
            .lines()
            .any(|line| line.starts_with("warning:") && line.contains("secret")),
        "{said}"
    );
    says(
        &said,
        &format!(
            "credential: client secret from the file {} (mode 0600)",
            secret.display()
        ),
    );
}

/// The fixture's config under another name, with `extra` appended.
fn write_config_named(dir: &Path, fixture: &Fixture, name: &str, extra: &str) -> PathBuf {
    let base = write_config(dir, &fixture.sim, &fixture.watch, "");
    let text = std::fs::read_to_string(base).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, format!("{text}\n{extra}")).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_in_clear_are_said_and_what_is_written_is_not_for_others() {
    let fixture = Fixture::start(universe(), fast_limits(), 3, 3).await;
    let dir = fixture.dir.path();
    let extra = "[telemetry]\notlp_endpoint = \"http://otlp.example.net:4318\"\n\n[[sinks]]\ntype = \"syslog\"\naddress = \"relay.example.net:514\"\ntransport = \"udp\"\n";
    let remote = write_config_named(dir, &fixture, "remote.toml", extra);
    let said = warned(&remote, "sinks[1]: alerts go to relay.example.net over udp in clear; transport = \"tls\" encrypts them").await;
    for expected in [
        "warning: telemetry.otlp_endpoint: metrics and traces (whose spans name watched entries) go to otlp.example.net over http, in clear",
        "security:\n",
        "  sink file-0: local file",
        "  sink syslog-1: syslog over udp to relay.example.net:514 IN CLEAR",
        "  OTLP: http://otlp.example.net:4318 IN CLEAR",
    ] {
        assert!(said.contains(expected), "{expected}\n{said}");
    }

    the_service_says_it_at_start(&fixture).await;
    nothing_written_is_for_others(&fixture).await;
}

async fn the_service_says_it_at_start(fixture: &Fixture) {
    let dir = fixture.dir.path();
    // The service says it at start too. A documentation address (RFC 5737) over udp: opening
    // the sink sends nothing, and no sweep runs before the test stops it.
    let service = write_config_named(
        dir,
        fixture,
        "service.toml",
        "[[sinks]]\ntype = \"syslog\"\naddress = \"192.0.2.1:514\"\ntransport = \"udp\"\n",
    );
    edit_config(
        &service,
        "[watchlist]",
        "[schedule]\ncron = \"0 0 0 1 1 *\"\nrun_on_start = false\n\n[watchlist]",
    );
    let mut daemon = spawn(&["run"], &service, "warn");
    let mut lines = tokio::io::BufReader::new(daemon.stderr.take().unwrap()).lines();
    let expected = "sinks[1]: alerts go to 192.0.2.1 over udp in clear";
    let said = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        let mut said = String::new();
        while let Ok(Some(line)) = lines.next_line().await {
            said.push_str(&line);
            said.push('\n');
            if line.contains(expected) {
                break;
            }
        }
        said
    })
    .await
    .expect("the service logs within 30 s");
    daemon.kill().await.unwrap();
    assert!(said.contains(expected), "{said}");
}

async fn nothing_written_is_for_others(fixture: &Fixture) {
    let dir = fixture.dir.path();
    // Whatever the umask it is started with, nothing it writes is for other users.
    let config = write_config(dir, &fixture.sim, &fixture.watch, "");
    let mut once = tokio::process::Command::new(binary());
    once.args(["once", "--config"])
        .arg(&config)
        .env("RUST_LOG", "warn")
        .kill_on_drop(true);
    // SAFETY: umask in the child between fork and exec only swaps its mask.
    unsafe {
        once.pre_exec(|| {
            libc::umask(0o000);
            Ok(())
        });
    }
    let output = tokio::time::timeout(std::time::Duration::from_secs(180), once.output())
        .await
        .expect("once finishes within 3 minutes")
        .unwrap();
    assert!(output.status.success(), "{}", show(&output));
    let shipped = ids(&events(&dir.join("alerts.ndjson")));
    assert_eq!(
        shipped,
        fixture
            .sim
            .expected_ids(&fixture.watch.users, &fixture.watch.files)
    );
    assert_eq!(mode_of(&dir.join("alerts.ndjson")) & 0o007, 0);
    for entry in walk(&dir.join("store")) {
        assert_eq!(
            mode_of(&entry) & 0o007,
            0,
            "{} is open to others",
            entry.display()
        );
    }
    let export = dir.join("seen.ndjson");
    std::fs::write(&export, "").unwrap();
    set_mode(&export, 0o666);
    let done = run_ok(
        &["state", "export", "-o", export.to_str().unwrap()],
        &config,
    )
    .await;
    assert!(
        show(&done).contains(&format!("exported {} record(s)", shipped.len())),
        "{}",
        show(&done)
    );
    assert_eq!(
        mode_of(&export),
        0o640,
        "an existing export file is narrowed"
    );
    assert_eq!(
        std::fs::read_to_string(&export).unwrap().lines().count(),
        shipped.len()
    );
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut found = vec![dir.to_path_buf()];
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(walk(&path));
        } else {
            found.push(path);
        }
    }
    found
}

/// The emulator serving HTTPS with `served`.
async fn https_sim(served: &Issued) -> SimHandle {
    sim::start(SimConfig {
        universe: universe(),
        limits: fast_limits(),
        tls: Some(SimTls {
            certificate_pem: std::fs::read(&served.cert).unwrap(),
            key_pem: std::fs::read(&served.key).unwrap(),
        }),
        ..SimConfig::default()
    })
    .await
    .unwrap()
}

/// A config in its own directory under `root` for `sim`, trusting `ca` when given.
fn https_config(root: &Path, name: &str, sim: &SimHandle, ca: Option<&Path>) -> PathBuf {
    let dir = root.join(name);
    std::fs::create_dir(&dir).unwrap();
    assert!(sim.base_url().starts_with("https://127.0.0.1:"));
    let config = write_config(&dir, sim, &Watch::first(sim, 3, 3), "");
    match ca {
        Some(ca) => edited(
            &config,
            "mde-watch.toml",
            "[api]\n",
            &format!("[api]\nca_file = \"{}\"\n", ca.display()),
        ),
        None => config,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_over_https_a_private_ca_works_a_wrong_name_and_an_expired_certificate_say_which() {
    let root = tempfile::tempdir().unwrap();
    let ca = TestCa::new(root.path());

    let good = https_sim(&ca.server("good", 2)).await;
    let config = https_config(root.path(), "good", &good, Some(&ca.pem));
    let connect = run_ok(&["check", "--connect"], &config).await;
    let said = show(&connect);
    assert!(
        said.contains("token: OK") && said.contains("api: OK"),
        "{said}"
    );
    says(
        &said,
        &format!(
            "certificate verified against the Mozilla roots and {} (api.ca_file)",
            ca.pem.display()
        ),
    );
    run_ok(&["once"], &config).await;
    let watch = Watch::first(&good, 3, 3);
    assert_eq!(
        ids(&events(&config.with_file_name("alerts.ndjson"))),
        good.expected_ids(&watch.users, &watch.files)
    );
    // Without the private CA, the same server is not trusted.
    let untrusted = https_config(root.path(), "untrusted", &good, None);
    let connect = run(&["check", "--connect"], &untrusted).await;
    fails_saying(
        &connect,
        "the server's certificate is not signed by a CA mde-watch trusts",
    );

    let elsewhere = ca.issue(
        "wrong",
        "/CN=wrong.example",
        "subjectAltName=DNS:wrong.example\n",
        2,
    );
    let wrong = https_sim(&elsewhere).await;
    let config = https_config(root.path(), "wrong", &wrong, Some(&ca.pem));
    let connect = run(&["check", "--connect"], &config).await;
    fails_saying(&connect, "the server's certificate is not valid for the host name in the URL (it names wrong.example)");
    // Refused at once: retrying would meet the same certificate.
    assert_eq!(wrong.stats().token_calls, 0);

    let expired = https_sim(&ca.server("expired", -1)).await;
    let config = https_config(root.path(), "expired", &expired, Some(&ca.pem));
    let once = run(&["once"], &config).await;
    fails_saying(&once, "the server's certificate has expired");
    assert!(
        !config.with_file_name("alerts.ndjson").exists()
            || events(&config.with_file_name("alerts.ndjson")).is_empty()
    );
}
