//! The file sink on a full disk: a real 64 KiB tmpfs under the output file. The run that fills it
//! fails with the failing batch not committed, and the file ends at its last whole line; once
//! the disk has room again, every line parses and every alert is there, each once.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use mde_watch::config::Config;
use mde_watch::store::Store;

/// A tmpfs of a given size mounted for the test, unmounted when dropped (also on failure).
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(at).unwrap();
        let status = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0750"),
                "tmpfs",
            ])
            .arg(at)
            .status()
            .expect("the mount command runs");
        assert!(
            status.success(),
            "mounting a {size} tmpfs at {} failed: the test needs root (CAP_SYS_ADMIN), as CI has",
            at.display()
        );
        Tmpfs(at.to_path_buf())
    }

    fn resize(&self, size: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(status.success(), "remount {} to {size}", self.0.display());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn lines(path: &Path) -> Vec<String> {
    let bytes = std::fs::read(path).unwrap_or_default();
    assert!(
        bytes.is_empty() || bytes.ends_with(b"\n"),
        "the file ends in a partial line"
    );
    String::from_utf8(bytes)
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

fn ids_of(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .map(|line| {
            let event: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("a line that is not JSON ({e}): {line:.120}"));
            event["event"]["id"].as_str().unwrap().to_string()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_tears_no_line_and_loses_no_alert() {
    let Fixture { sim, watch, dir } =
        Fixture::start(universe_of(11, 60, 20), fast_limits(), 60, 20).await;
    let disk = Tmpfs::mount(&dir.path().join("out"), "64k");
    let path = write_config(
        dir.path(),
        &sim,
        &watch,
        "[pipeline]\nbatch_entries = 8\nin_flight_batches = 1\n",
    );
    edit_config(
        &path,
        "path = \"alerts.ndjson\"",
        "path = \"out/alerts.ndjson\"",
    );
    let output_file = dir.path().join("out/alerts.ndjson");
    let expected = sim.expected_ids(&watch.users, &watch.files);

    let full = run(&["once"], &path).await;
    assert!(
        !full.status.success(),
        "the run fails on a full disk: {}",
        show(&full)
    );
    assert!(
        String::from_utf8_lossy(&full.stderr).contains("No space left on device"),
        "{}",
        show(&full)
    );
    let written = ids_of(&lines(&output_file));
    assert!(
        !written.is_empty() && written.len() < expected.len(),
        "{} written",
        written.len()
    );
    let committed: std::collections::BTreeSet<String> = {
        let store = Store::open(&Config::load(&path).unwrap().store).unwrap();
        store.seen_ids().unwrap().into_iter().collect()
    };
    assert_eq!(
        committed,
        written.iter().cloned().collect(),
        "exactly what the file holds is committed: the failed batch is not"
    );

    disk.resize("16m");
    run_ok(&["once"], &path).await;
    let all = ids_of(&lines(&output_file));
    assert_eq!(all.len(), expected.len(), "each alert once");
    assert_eq!(
        all.into_iter().collect::<std::collections::BTreeSet<_>>(),
        expected
    );
}
