//! SIGHUP with a valid and with an invalid watchlist, checked through the emulator's record of
//! which entity each call was for.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use mde_watch::sim::{SimHandle, UniverseSpec};

fn universe() -> UniverseSpec {
    universe_of(9, 10, 10)
}

/// Waits until the emulator's call record satisfies `done`.
async fn calls_until(sim: &SimHandle, what: &str, done: impl Fn(&[String]) -> bool) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let calls = sim.entity_calls();
        if done(&calls) {
            return calls;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} within 30 s; calls so far: {calls:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A config whose users come from `users.txt` (user1 and user2 to start with); returns the
/// config's path and the list's.
fn watching_users_file(dir: &Path, sim: &SimHandle, extra: &str) -> (PathBuf, PathBuf) {
    let path = write_config(dir, sim, &Watch::first(sim, 0, 0), extra);
    let config = std::fs::read_to_string(&path).unwrap();
    let config = config.replacen("users = []", "users_file = \"users.txt\"", 1);
    std::fs::write(&path, config).unwrap();
    let users = dir.join("users.txt");
    std::fs::write(&users, "user1\nuser2\n").unwrap();
    (path, users)
}

fn count(calls: &[String], entity: &str) -> usize {
    calls.iter().filter(|c| *c == entity).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_applies_a_valid_watchlist_at_once_and_refuses_an_invalid_one() {
    let sim = start_sim(universe(), fast_limits()).await;
    let dir = tempfile::tempdir().unwrap();
    let (path, users) = watching_users_file(dir.path(), &sim, EVERY_TWO_SECONDS);
    let log = std::fs::File::create(dir.path().join("daemon.log")).unwrap();
    let daemon = tokio::process::Command::new(binary())
        .args(["run", "--config"])
        .arg(&path)
        .env("RUST_LOG", "info")
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .unwrap();

    calls_until(&sim, "user1 and user2 polled", |c| {
        count(c, "user:user1") > 0 && count(c, "user:user2") > 0
    })
    .await;

    // Valid: user1 leaves, user3 and user4 arrive and are polled first, at once.
    std::fs::write(&users, "user2\nuser3\nuser4\n").unwrap();
    signal(&daemon, "HUP");
    let calls = calls_until(&sim, "user3 and user4 polled", |c| {
        count(c, "user:user3") > 0 && count(c, "user:user4") > 0
    })
    .await;
    let first_new = calls
        .iter()
        .position(|c| c == "user:user3" || c == "user:user4")
        .unwrap();
    let mut added_first = calls[first_new..first_new + 2].to_vec();
    added_first.sort();
    assert_eq!(added_first, ["user:user3", "user:user4"], "{calls:?}");
    // Two full sweeps later: user1 was never polled after the reload, user2 still is.
    let seen = calls.len();
    let calls = calls_until(&sim, "two sweeps of the new list", |c| c.len() >= seen + 6).await;
    assert_eq!(count(&calls[first_new..], "user:user1"), 0, "{calls:?}");
    assert!(count(&calls[seen..], "user:user2") >= 2, "{calls:?}");

    // Invalid: refused with the file and line named; the running list stays.
    std::fs::write(&users, "user2\nuser5\nno/such:user\n").unwrap();
    signal(&daemon, "HUP");
    let log_path = dir.path().join("daemon.log");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let refused = loop {
        let text = std::fs::read_to_string(&log_path).unwrap();
        if let Some(line) = text.lines().find(|l| l.contains("reload refused")) {
            break line.to_string();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no refusal logged:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        refused.contains("users.txt")
            && refused.contains("line 3")
            && refused.contains("no/such:user"),
        "{refused}"
    );
    let seen = sim.entity_calls().len();
    let calls = calls_until(&sim, "two sweeps after the refusal", |c| {
        c.len() >= seen + 6
    })
    .await;
    assert_eq!(count(&calls, "user:user5"), 0, "{calls:?}");
    for user in ["user:user2", "user:user3", "user:user4"] {
        assert!(count(&calls[seen..], user) >= 2, "{user}: {calls:?}");
    }

    sigterm(&daemon);
    stopped_cleanly(daemon).await;
}

/// In feed mode, users added by a reload get their earlier alerts from one read of the feed
/// (not a call per added entry), each once, and nothing else is published again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_in_feed_mode_catches_up_added_users_from_the_feed() {
    // Alerts spread over the last hour, and polls that look back one second behind their
    // cursor: the added users' alerts are long behind it, so only a catch-up finds them.
    let sim = start_sim(
        UniverseSpec {
            late_share: 1.0,
            horizon_secs: 3600,
            change_share: 0.0,
            ..universe()
        },
        fast_limits(),
    )
    .await;
    sim.advance(Duration::from_secs(3601));
    let dir = tempfile::tempdir().unwrap();
    let (path, users) = watching_users_file(
        dir.path(),
        &sim,
        "[schedule]\ncron = \"*/2 * * * * *\"\n[source]\nmode = \"feed\"\nlookback = \"1s\"\n",
    );
    let daemon = spawn(&["run"], &path, "warn");
    let output = dir.path().join("alerts.ndjson");
    let user = |names: &[&str]| {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        sim.expected_ids(&names, &[])
    };
    let written_until = |want: std::collections::BTreeSet<String>, what: &'static str| {
        let output = output.clone();
        async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            loop {
                let written = events(&output);
                if want.is_subset(&ids(&written)) {
                    return written;
                }
                assert!(tokio::time::Instant::now() < deadline, "{what} within 30 s");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    let before = user(&["user1", "user2"]);
    assert!(!before.is_empty() && !user(&["user3", "user4"]).is_empty());
    written_until(before.clone(), "user1 and user2's alerts").await;

    std::fs::write(&users, "user2\nuser3\nuser4\n").unwrap();
    signal(&daemon, "HUP");
    let all: std::collections::BTreeSet<String> =
        before.union(&user(&["user3", "user4"])).cloned().collect();
    let written = written_until(all.clone(), "user3 and user4's earlier alerts").await;
    sigterm(&daemon);
    stopped_cleanly(daemon).await;

    assert_eq!(ids(&written), all);
    assert!(
        id_counts(&written).values().all(|&n| n == 1),
        "an alert twice"
    );
    let calls = sim.entity_calls();
    assert!(
        calls.iter().all(|c| c == "feed"),
        "an entity poll: {calls:?}"
    );
}
