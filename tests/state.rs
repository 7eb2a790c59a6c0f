//! `mde-watch state …` and `backfill` on a store filled from the emulator: what they print,
//! that an export imports into another store (which then ships nothing twice), that a bad
//! import changes nothing, and that a backfill re-publishes without touching dedup.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::*;
use mde_watch::sim::UniverseSpec;

fn universe() -> UniverseSpec {
    universe_of(21, 12, 12)
}

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn listed_ids(text: &str) -> BTreeSet<String> {
    text.lines()
        .map(|line| {
            let json: serde_json::Value = serde_json::from_str(line).unwrap();
            json["id"].as_str().unwrap().to_string()
        })
        .collect()
}

async fn state(args: &[&str], config: &Path) -> std::process::Output {
    let mut all = vec!["state"];
    all.extend_from_slice(args);
    run(&all, config).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_tools_list_show_export_import_prune_and_backfill() {
    let sim = start_sim(universe(), fast_limits()).await;
    let watch = Watch::first(&sim, 8, 8);
    let expected = sim.expected_ids(&watch.users, &watch.files);
    let first = tempfile::tempdir().unwrap();
    let config = write_config(first.path(), &sim, &watch, "");
    run_ok(&["once"], &config).await;

    list_show_and_entity(&sim, &config, first.path(), &expected).await;
    export_and_import(&sim, &watch, &config, first.path(), &expected).await;
    backfill_forget_and_prune(&config, first.path(), &expected).await;
}

/// `list` without the secret, `--since`, `show`, `--entity`: what an operator reads first.
async fn list_show_and_entity(
    sim: &mde_watch::sim::SimHandle,
    config: &Path,
    dir: &Path,
    expected: &BTreeSet<String>,
) {
    // The state tools do not read the client secret: under systemd it is a credential only the
    // service can read. Without it, `list` still works and `once` names what is missing.
    let secret = dir.join("secret");
    std::fs::rename(&secret, dir.join("secret.away")).unwrap();
    let list = state(&["list"], config).await;
    assert!(list.status.success(), "{}", show(&list));
    assert_eq!(&listed_ids(&stdout(&list)), expected);
    let no_secret = run(&["once"], config).await;
    assert!(
        !no_secret.status.success() && show(&no_secret).contains("client secret"),
        "{}",
        show(&no_secret)
    );
    std::fs::rename(dir.join("secret.away"), &secret).unwrap();
    let recent = state(&["list", "--since", "1h"], config).await;
    assert_eq!(
        &listed_ids(&stdout(&recent)),
        expected,
        "all were first observed just now"
    );
    let future = state(&["list", "--since", "2100-01-01T00:00:00Z"], config).await;
    assert!(stdout(&future).is_empty());

    let id = expected.iter().next().unwrap();
    let shown = state(&["show", id], config).await;
    assert!(
        shown.status.success() && stdout(&shown).contains(&format!("\"id\": \"{id}\"")),
        "{}",
        show(&shown)
    );
    let missing = state(&["show", "no-such-alert"], config).await;
    fails_saying(&missing, "alert 'no-such-alert' is not in the store");

    let entity = state(&["list", "--entity", "User1"], config).await;
    assert!(entity.status.success(), "{}", show(&entity));
    let of_user1 = sim.expected_ids(&["user1".to_string()], &[]);
    assert!(!of_user1.is_empty(), "seed 21 gives user1 alerts");
    assert_eq!(listed_ids(&stdout(&entity)), of_user1);
    let nobody = state(&["list", "--entity", "user99"], config).await;
    fails_saying(&nobody, "no entry 'user99' has been polled");
}

/// Export, then import into a fresh store on "another host": that collector ships nothing
/// again, and a bad line refuses the whole import.
async fn export_and_import(
    sim: &mde_watch::sim::SimHandle,
    watch: &Watch,
    config: &Path,
    dir: &Path,
    expected: &BTreeSet<String>,
) {
    // Export, import into a fresh store on "another host": that collector ships nothing again.
    let export = state(&["export"], config).await;
    assert!(export.status.success());
    let export_file = dir.join("export.ndjson");
    std::fs::write(&export_file, &export.stdout).unwrap();
    let second = tempfile::tempdir().unwrap();
    let other = write_config(second.path(), sim, watch, "");
    let bad_file = second.path().join("bad.ndjson");
    let text = String::from_utf8_lossy(&export.stdout).into_owned();
    std::fs::write(
        &bad_file,
        format!("{text}{{\"id\":\"x\",\"fingerprint\":1}}\n"),
    )
    .unwrap();
    let refused = state(&["import", bad_file.to_str().unwrap()], &other).await;
    assert!(!refused.status.success());
    let said = show(&refused);
    let bad_line = expected.len() + 1;
    assert!(
        said.contains("nothing imported")
            && said.contains(&format!("bad.ndjson, line {bad_line}: missing field")),
        "{said}"
    );
    assert!(
        stdout(&state(&["list"], &other).await).is_empty(),
        "a refused import left records"
    );
    let imported = state(&["import", export_file.to_str().unwrap()], &other).await;
    assert!(imported.status.success(), "{}", show(&imported));
    assert!(
        stdout(&imported).contains(&format!("imported {} alert(s)", expected.len())),
        "{}",
        stdout(&imported)
    );
    run_ok(&["once"], &other).await;
    let shipped = std::fs::read_to_string(second.path().join("alerts.ndjson")).unwrap_or_default();
    assert!(
        shipped.is_empty(),
        "the imported store should know every alert: {shipped}"
    );
}

/// Backfill ships everything again without touching dedup; forget ships one again; prune.
async fn backfill_forget_and_prune(config: &Path, dir: &Path, expected: &BTreeSet<String>) {
    let id = expected.iter().next().unwrap();
    // Backfill: every alert again, and the store as it was.
    let output_file = dir.join("alerts.ndjson");
    let before = events(&output_file).len();
    let backfill = run_ok(&["backfill", "--since", "36500d"], config).await;
    let after = events(&output_file);
    assert_eq!(
        after.len(),
        before + expected.len(),
        "{}",
        stdout(&backfill)
    );
    assert_eq!(&ids(&after[before..]), expected);
    run_ok(&["once"], config).await;
    assert_eq!(
        events(&output_file).len(),
        after.len(),
        "a backfill must not change dedup"
    );

    // Forget one: the next sweep ships exactly that one again; an unknown id is named.
    let forgotten = state(&["forget", id], config).await;
    assert!(forgotten.status.success(), "{}", show(&forgotten));
    let count = events(&output_file).len();
    let once = run(&["once"], config).await;
    assert!(once.status.success());
    let now = events(&output_file);
    assert_eq!(ids(&now[count..]), BTreeSet::from([id.clone()]));
    let unknown = state(&["forget", "no-such-alert"], config).await;
    fails_saying(&unknown, "not in the store: no-such-alert");

    let pruned = state(&["prune"], config).await;
    assert!(pruned.status.success(), "{}", show(&pruned));
    assert!(
        stdout(&pruned).contains(&format!(
            "0 alert(s) not observed within 90d forgotten, {} kept",
            expected.len()
        )),
        "{}",
        stdout(&pruned)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_tools_say_when_the_service_holds_the_store() {
    let Fixture { sim, watch, dir } = Fixture::start(universe(), fast_limits(), 2, 0).await;
    let config = write_config(dir.path(), &sim, &watch, "");
    let daemon = spawn(&["run"], &config, "warn");
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    while !dir.path().join("store").join("db").exists() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the service never opened its store"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let busy = state(&["stats"], &config).await;
    fails_saying(&busy, "another process has this store open");
    sigterm(&daemon);
    let _ = daemon.wait_with_output().await;
}
