//! The README's first command: the demo runs the whole product against the emulator and says
//! what it did. This runs it as a user would and checks the file it says it wrote.

mod common;

#[test]
fn demo_runs_end_to_end_and_reports() {
    let dir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(common::binary())
        .args(["demo", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", common::show(&output));
    for expected in [
        "entries polled:",
        "calls made:",
        "alerts written:",
        "duplicates suppressed:",
        "output file:",
    ] {
        assert!(stdout.contains(expected), "missing {expected:?}:\n{stdout}");
    }
    let written: usize = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("alerts written:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap();
    let lines = std::fs::read_to_string(dir.path().join("alerts.ndjson"))
        .unwrap()
        .lines()
        .count();
    assert!(written > 0);
    assert_eq!(lines, written, "the summary matches the file");
    assert!(
        stdout.contains("(0 answered 429)"),
        "the demo stays inside the documented limits:\n{stdout}"
    );
}
