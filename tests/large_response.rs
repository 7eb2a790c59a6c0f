//! One entry whose answer holds 50,000 alerts (a ~100 MB body, deflated as Defender sends it)
//! under a 1 MiB byte budget: every alert is delivered once, and the daemon's peak resident
//! memory stays far below the body's size, so a return to reading whole responses fails this
//! test. In its own test binary so that the peak read from the kernel (RUSAGE_CHILDREN) is that
//! daemon's alone.

mod common;

use common::*;
use mde_watch::sim::UniverseSpec;

/// The largest resident set of any child process this test binary has waited for, in KiB.
fn children_peak_rss_kib() -> i64 {
    // SAFETY: getrusage only writes into the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let status = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    assert_eq!(status, 0, "getrusage");
    usage.ru_maxrss
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_100_mb_answer_streams_through_a_1_mib_budget() {
    let alerts = 50_000u32;
    let Fixture { sim, watch, dir } = Fixture::start(
        UniverseSpec {
            alerts_per_user: Some(alerts),
            late_share: 0.0,
            change_share: 0.0,
            ..universe_of(5, 1, 0)
        },
        fast_limits(),
        1,
        0,
    )
    .await;
    let config = write_config(
        dir.path(),
        &sim,
        &watch,
        "[pipeline]\nqueue_bytes = \"1MiB\"\n",
    );
    // ~150 MB of ECS: one file, not rotated at the default 100 MiB.
    edit_config(
        &config,
        "format = \"ecs\"\n",
        "format = \"ecs\"\nmax_size = \"1GiB\"\n",
    );
    // The emulator renders the page before the daemon starts, so the figure below is the
    // daemon's reading, not the server's writing.
    let body = reqwest::Client::new()
        .get(format!("{}/sim/universe", sim.base_url()))
        .send()
        .await
        .unwrap();
    assert!(body.status().is_success());

    let output = run_ok(&["once"], &config).await;
    let peak_mib = children_peak_rss_kib() / 1024;

    let written = events(&dir.path().join("alerts.ndjson"));
    assert_eq!(
        written.len(),
        alerts as usize,
        "every alert once: {}",
        show(&output)
    );
    assert_eq!(ids(&written), sim.expected_ids(&watch.users, &watch.files));
    assert!(
        id_counts(&written).values().all(|&n| n == 1),
        "an alert was written twice"
    );
    assert_eq!(
        sim.stats().served_deflated,
        1,
        "the answer went deflated, as Defender sends it"
    );
    // The entry's status keeps the first 1,000 ids and the whole count, and says so when listed.
    let listed = run_ok(&["state", "list", "--entity", "user1"], &config).await;
    let lines = String::from_utf8_lossy(&listed.stdout).lines().count();
    assert_eq!(lines, mde_watch::defender::IDS_KEPT, "{}", show(&listed));
    let said = String::from_utf8_lossy(&listed.stderr);
    assert!(
        said.contains("alerts=50000") && said.contains("kept=1000"),
        "{said}"
    );
    println!("peak RSS of mde-watch once: {peak_mib} MiB for a 50,000-alert answer");
    assert!(
        peak_mib < 128,
        "peak RSS {peak_mib} MiB: the answer was held whole"
    );
}
