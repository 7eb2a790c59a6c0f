//! The README's first command: the demo runs the whole product against the emulator and says
//! what it did. This runs it as a user would and checks the files it says it wrote, and that it
//! refuses a directory it did not make, leaving it as it was.

mod common;

use std::path::Path;

fn demo(dir: &Path) -> std::process::Output {
    std::process::Command::new(common::binary())
        .args(["demo", "--dir"])
        .arg(dir)
        .output()
        .unwrap()
}

fn number_after(stdout: &str, label: &str) -> usize {
    stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix(label))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no number after {label:?}:\n{stdout}"))
}

#[test]
fn demo_runs_end_to_end_and_reports() {
    let dir = tempfile::tempdir().unwrap();
    let output = demo(dir.path());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", common::show(&output));
    for expected in [
        "entries polled:",
        "calls made:",
        "duplicates suppressed:",
        "output files (one per format",
        "mde_watch.tenant_id is the tenant mde-watch signs in to",
        "GET /sim/universe",
    ] {
        assert!(stdout.contains(expected), "missing {expected:?}:\n{stdout}");
    }
    let written = number_after(&stdout, "alerts written:");
    let new = stdout
        .split("to each output file: ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap();
    assert!(written > 0 && new <= written);
    let stored: usize = stdout
        .split(" alert ids: one per distinct alert")
        .next()
        .and_then(|head| head.rsplit('(').next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap();
    assert_eq!(
        stored, new,
        "every new alert is one stored id; updates add none"
    );
    for file in [
        "alerts.ecs.ndjson",
        "alerts.ocsf.ndjson",
        "alerts.cef.log",
        "alerts.splunk.ndjson",
        "alerts.splunk_hec.ndjson",
        "alerts.raw.ndjson",
    ] {
        let path = dir.path().join(file);
        assert!(stdout.contains(&path.display().to_string()), "{file} named");
        let lines = std::fs::read_to_string(&path).unwrap().lines().count();
        assert_eq!(lines, written, "{file}: the summary matches the file");
    }
    assert!(
        stdout.contains("(0 answered 429)"),
        "the demo stays inside the documented limits:\n{stdout}"
    );
}

#[test]
fn demo_refuses_a_directory_it_did_not_make() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("store")).unwrap();
    std::fs::write(dir.path().join("alerts.ecs.ndjson"), "{\"kept\":true}\n").unwrap();
    let output = demo(dir.path());
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("was not made by `mde-watch demo`")
            && stderr.contains("pick another --dir"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("alerts.ecs.ndjson")).unwrap(),
        "{\"kept\":true}\n",
        "nothing touched"
    );
    assert!(dir.path().join("store").is_dir());
}
