//! SIGHUP: the config and its list files are read again. A valid new watchlist replaces the old
//! one (entries it adds are polled at once, ahead of the round-robin; entries it drops are not
//! polled again); an invalid one is refused with every problem logged, and the old one runs on.
//! Other settings (API, sinks, store, limits, telemetry) are read at start only: a change to them
//! is named in the log as waiting for a restart. A new API credential in the files the daemon
//! reads it from is not such a change: it is taken when Entra ID refuses the one in use
//! (`defender/rotation.rs`), and the log says so.

use std::path::PathBuf;

use tokio::signal::unix::{signal, Signal, SignalKind};

use crate::config::{ApiConfig, CertificateFiles, Config, SecretFile};
use crate::watchlist::{Entry, Watchlist};

/// SIGHUPs, and the file to read again on each.
pub struct Reload {
    pub path: PathBuf,
    signals: Signal,
}

impl Reload {
    pub fn on_sighup(path: PathBuf) -> std::io::Result<Reload> {
        Ok(Reload {
            path,
            signals: signal(SignalKind::hangup())?,
        })
    }

    /// The next SIGHUP.
    pub async fn requested(&mut self) {
        if self.signals.recv().await.is_none() {
            std::future::pending::<()>().await;
        }
    }
}

/// What a new watchlist changes.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct WatchlistChange {
    /// Entries only the new list has, in its order.
    pub added: Vec<Entry>,
    /// Entries only the old list had.
    pub removed: Vec<Entry>,
}

impl WatchlistChange {
    pub fn between(old: &Watchlist, new: &Watchlist) -> WatchlistChange {
        let keys = |list: &Watchlist| -> std::collections::HashSet<String> {
            list.entries.iter().map(Entry::key).collect()
        };
        let (old_keys, new_keys) = (keys(old), keys(new));
        WatchlistChange {
            added: new
                .entries
                .iter()
                .filter(|e| !old_keys.contains(&e.key()))
                .cloned()
                .collect(),
            removed: old
                .entries
                .iter()
                .filter(|e| !new_keys.contains(&e.key()))
                .cloned()
                .collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty()
    }
}

/// The sections of `new` that differ from `old` but only apply at the next start.
pub fn needs_restart(old: &Config, new: &Config) -> Vec<&'static str> {
    // Debug output compares every field; secrets print redacted on both sides, so they are
    // also compared by value: a secret rotated in its file, then a SIGHUP, is named too.
    let mut changed = Vec::new();
    let differs =
        |a: &dyn std::fmt::Debug, b: &dyn std::fmt::Debug| format!("{a:?}") != format!("{b:?}");
    let credential_waits = credential_differs(&old.api, &new.api) && !read_again(&new.api);
    if api_settings(&old.api) != api_settings(&new.api) || credential_waits {
        changed.push("api");
    }
    if differs(&old.limits, &new.limits) {
        changed.push("limits");
    }
    if differs(&old.schedule, &new.schedule) {
        changed.push("schedule");
    }
    if differs(&old.store, &new.store) {
        changed.push("store");
    }
    // Sinks compare whole: their settings are PartialEq, secrets included.
    if old.sinks != new.sinks {
        changed.push("sinks");
    }
    if differs(&old.pipeline, &new.pipeline) || old.updates != new.updates {
        changed.push("pipeline/updates");
    }
    if old.collector != new.collector {
        changed.push("collector");
    }
    // The listener and the OTLP exporters are built once, at start.
    if differs(&old.telemetry, &new.telemetry)
        || old.telemetry.otlp_headers != new.telemetry.otlp_headers
    {
        changed.push("telemetry");
    }
    changed
}

/// Whether a reload brings an API credential other than the one in use, with nothing else of
/// `[api]` changed, in files the token provider reads again when the one in use is refused.
pub fn credential_rotated(old: &Config, new: &Config) -> bool {
    api_settings(&old.api) == api_settings(&new.api)
        && credential_differs(&old.api, &new.api)
        && read_again(&new.api)
}

/// `[api]` without the credential's value (its files' paths stay: a moved file needs a restart).
fn api_settings(api: &ApiConfig) -> String {
    let mut api = api.clone();
    api.secret = None;
    let files = api
        .certificate
        .take()
        .map(|c| (c.path, c.key_file, c.algorithm));
    format!("{api:?} {files:?}")
}

/// Whether the secret or the certificate differs by value (both print redacted or shortened).
fn credential_differs(old: &ApiConfig, new: &ApiConfig) -> bool {
    let thumbprint = |api: &ApiConfig| {
        api.certificate
            .as_ref()
            .map(|c| c.certificate.thumbprint.clone())
    };
    old.secret != new.secret || thumbprint(old) != thumbprint(new)
}

/// Whether the token provider reads this credential's files again (not an environment
/// variable, not a systemd credential copied at start).
fn read_again(api: &ApiConfig) -> bool {
    match &api.certificate {
        Some(certificate) => CertificateFiles::of(certificate).is_some(),
        None => api
            .secret_source
            .as_ref()
            .and_then(SecretFile::of)
            .is_some(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::watchlist::EntryKind;

    fn list(users: &[&str]) -> Watchlist {
        Watchlist {
            entries: users
                .iter()
                .map(|u| Entry::for_test(EntryKind::User, u))
                .collect(),
        }
    }

    fn values(entries: &[Entry]) -> Vec<&str> {
        entries.iter().map(|e| e.value()).collect()
    }

    #[test]
    fn added_and_removed_entries_are_found_in_the_new_order() {
        let change = WatchlistChange::between(&list(&["a", "b", "c"]), &list(&["d", "b", "e"]));
        assert_eq!(values(&change.added), ["d", "e"]);
        assert_eq!(values(&change.removed), ["a", "c"]);
    }

    #[test]
    fn a_changed_telemetry_section_waits_for_the_restart() {
        let dir = crate::testing::with_secret_dir();
        let load = |telemetry: &str| {
            let sink = "[[sinks]]\ntype = \"file\"\npath = \"out.ndjson\"\n";
            let text = format!("{}{sink}{telemetry}", crate::config::test_config_head!());
            Config::from_toml(&text, "x.toml", dir.path(), false).unwrap()
        };
        let before = load("[telemetry]\notlp_endpoint = \"http://127.0.0.1:4318\"\n");
        let after = load("[telemetry]\notlp_endpoint = \"http://127.0.0.1:4319\"\n");
        assert_eq!(needs_restart(&before, &after), ["telemetry"]);
        assert!(needs_restart(&before, &before).is_empty());
    }

    #[test]
    fn an_api_secret_rotated_in_its_file_is_taken_when_refused_a_sink_password_waits() {
        let dir = crate::testing::with_secret_dir();
        std::fs::write(dir.path().join("kafka-password"), "old-password\n").unwrap();
        crate::testing::private(&dir.path().join("kafka-password"));
        let load = || {
            let sink = "[[sinks]]\ntype = \"kafka\"\nbrokers = \"127.0.0.1:9092\"\ntopic = \"t\"\npassword_file = \"kafka-password\"\n";
            let text = format!("{}{sink}", crate::config::test_config_head!());
            Config::from_toml(&text, "x.toml", dir.path(), false).unwrap()
        };
        let before = load();
        assert!(needs_restart(&before, &load()).is_empty());
        assert!(!credential_rotated(&before, &load()));
        std::fs::write(dir.path().join("secret.txt"), "rotated\n").unwrap();
        std::fs::write(dir.path().join("kafka-password"), "new-password\n").unwrap();
        let after = load();
        assert_eq!(needs_restart(&before, &after), ["sinks"]);
        assert!(credential_rotated(&before, &after));

        // The same secret from the environment: nothing reads it again.
        let mut from_env = after.clone();
        from_env.api.secret_source = Some(crate::config::SecretSource::Env("MDE_SECRET".into()));
        assert_eq!(needs_restart(&before, &from_env), ["api", "sinks"]);
        assert!(!credential_rotated(&before, &from_env));
    }

    #[test]
    fn user_names_compare_case_insensitively() {
        let change = WatchlistChange::between(&list(&["Alice"]), &list(&["alice"]));
        assert!(change.is_empty(), "{change:?}");
    }
}
