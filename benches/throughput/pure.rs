//! The figures measured in process, no daemon: encoding, the store's decide and commit, and the
//! CPU of each stage an alert goes through.

use super::*;

pub fn bench_ecs() {
    let alerts: Vec<_> = FIXTURES
        .iter()
        .flat_map(|f| parse_page(f.as_bytes()).unwrap().alerts)
        .collect();
    let matches = [Match::new(EntryKind::User, "user1", None)];
    let context = EventContext::new(
        &matches,
        "190241b8-187f-4db3-8148-d73536294b3a",
        "bench",
        Change::New,
        "2026-11-23T00:00:00Z",
    );
    for format in Format::ALL {
        // Five timed runs; the median is printed, so one descheduling on a shared machine does
        // not decide the figure.
        let rounds = 40_000;
        let mut rates = Vec::new();
        let mut bytes = 0usize;
        for _ in 0..5 {
            bytes = 0;
            let started = Instant::now();
            for round in 0..rounds {
                let alert = &alerts[round % alerts.len()];
                bytes += encode(format, alert, &context).unwrap().len();
            }
            rates.push(rounds as f64 / started.elapsed().as_secs_f64());
        }
        rates.sort_by(f64::total_cmp);
        println!(
            "encode {:<7} {:>10.0} alerts/s on one core, median of 5 (min {:.0}, max {:.0}; {} fixture alerts, {} B/event avg)  target >= 200000",
            format.as_str(),
            rates[2],
            rates[0],
            rates[4],
            alerts.len(),
            bytes / rounds
        );
    }
}

fn record(i: u64) -> SeenRecord {
    let now = chrono::Utc::now().timestamp();
    SeenRecord {
        last_update: Some(1_790_000_000_000_000 + i as i64),
        fingerprint: i as u32,
        first_observed: now,
        last_observed: now,
    }
}

/// Ids of alerts from the past months: Defender ids start with the creation time in ticks
/// (`da638…`), so older alerts sort before the ones the emulator serves, as in production.
fn alert_id(i: u64) -> String {
    format!(
        "da{:018}_{}",
        638_900_000_000_000_000u64 + i * 7919,
        (i * 2_654_435_761) as i32
    )
}

pub fn fill(store: &Store, count: u64) {
    // Modest batches: one 50,000-record sled batch balloons memory (gigabytes, measured).
    let batch = 5_000;
    for start in (0..count).step_by(batch as usize) {
        let records: Vec<(String, SeenRecord)> = (start..(start + batch).min(count))
            .map(|i| (alert_id(i), record(i)))
            .collect();
        store.commit(&records, &[], None).unwrap();
    }
}

fn dir_size(path: &Path) -> u64 {
    std::fs::read_dir(path)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_size(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

pub fn bench_store() {
    let dir = tempfile::tempdir().unwrap();
    // BENCH_STORE_DIR keeps the filled store for inspection (`mde-watch state stats`).
    let path = std::env::var_os("BENCH_STORE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| dir.path().join("store"));
    let config = StoreConfig {
        path,
        retention: Duration::from_secs(86_400 * 90),
        cache_bytes: 16 << 20,
        flush_interval: Duration::ZERO,
    };
    let stored = 1_000_000u64;
    let fill_started = Instant::now();
    fill(&Store::open(&config).unwrap(), stored);
    println!(
        "store: filled {stored} ids in {:.1} s",
        fill_started.elapsed().as_secs_f64()
    );
    // Measured on a freshly opened store, as the daemon finds it after a restart.
    let opening = Instant::now();
    let store = Store::open(&config).unwrap();
    println!(
        "store: reopened in {:.2} s (in-memory index rebuilt from the log, {:.1} MiB)",
        opening.elapsed().as_secs_f64(),
        store.stats().unwrap().index_bytes as f64 / 1048576.0
    );

    // Half the incoming alerts are already stored (re-reads), half are new; commit batches of
    // 2,000 alerts, each flushed, as the pipeline does after each sink acknowledgement.
    let incoming = 400_000u64;
    let batch = 2_000u64;
    let started = Instant::now();
    let mut new_alerts = 0;
    for start in (0..incoming).step_by(batch as usize) {
        let mut records = Vec::with_capacity(batch as usize);
        for i in start..start + batch {
            let n = if i % 2 == 0 { i / 2 } else { stored + i };
            let id = alert_id(n);
            let digest = AlertDigest {
                last_update: Some(1_790_000_000_000_000 + n as i64),
                fingerprint: fingerprint(&[Some("New")]) ^ n as u32 ^ fingerprint(&[Some("New")]),
            };
            // As the pipeline judges: the id hashed once, its key carried to the commit.
            let key = SeenKey::of(&id);
            let previous = store.previous_of(key).unwrap();
            if decide(&digest, previous.as_ref()) != mde_watch::store::Decision::Unchanged {
                new_alerts += 1;
                records.push((key, id, record(n)));
            }
        }
        store.commit_keyed(&records, &[], None).unwrap();
    }
    let elapsed = started.elapsed();
    store.flush().unwrap();
    println!(
        "store decide+commit:     {:>10.0} alerts/s with {stored} ids stored ({new_alerts} new of {incoming}, batches of {batch}, flushed)  target >= 200000",
        incoming as f64 / elapsed.as_secs_f64()
    );
    println!(
        "store size on disk:      {:>10.1} MiB for {} ids (sled size_on_disk {:.1} MiB)",
        dir_size(&config.path) as f64 / 1048576.0,
        stored + new_alerts,
        store.stats().unwrap().size_on_disk as f64 / 1048576.0
    );
    // The daily retention pass rewrites every live record: how long it holds the store.
    let compacting = Instant::now();
    let done = store.compact(0, chrono::Utc::now().timestamp()).unwrap();
    println!(
        "store compaction:        {:>10.2} s for {} live records ({} superseded dropped)",
        compacting.elapsed().as_secs_f64(),
        done.kept,
        done.dropped
    );
}

/// The emulator's alerts of two users, 500 each, as the API renders them.
fn stage_alerts() -> Vec<String> {
    let universe = sim::Universe::new(UniverseSpec {
        seed: 13,
        users: 2,
        files: 0,
        alerts_per_user: Some(500),
        late_share: 0.0,
        change_share: 0.0,
        ..UniverseSpec::default()
    });
    (0..universe.alerts.len())
        .filter_map(|i| universe.render_json(i, 0).map(|t| t.to_string()))
        .collect()
}

/// CPU per alert of each stage on one core, over the emulator's ~2 KB alerts: where the end-to-end
/// figure goes. Medians of 5 runs, nanoseconds per alert.
pub fn bench_stages() {
    let texts = stage_alerts();
    let bytes_each = texts.iter().map(String::len).sum::<usize>() / texts.len();
    let polled: Vec<_> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| {
            mde_watch::defender::odata::read_alert(i, t.as_bytes())
                .unwrap()
                .unwrap()
        })
        .collect();
    let matches = [Match::new(EntryKind::User, "user1", None)];
    let context = EventContext::new(&matches, "t", "bench", Change::New, "2026-11-23T00:00:00Z");
    // Fewer rounds under callgrind (instruction counts are exact, and its runs are slow).
    let rounds: usize = std::env::var("BENCH_STAGE_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let time = |name: &str, work: &mut dyn FnMut(usize)| {
        let mut runs: Vec<f64> = (0..5)
            .map(|_| {
                let started = Instant::now();
                for i in 0..rounds {
                    work(i % texts.len());
                }
                started.elapsed().as_nanos() as f64 / rounds as f64
            })
            .collect();
        runs.sort_by(f64::total_cmp);
        println!("stage {name:<34} {:>7.0} ns/alert", runs[2]);
    };
    println!("stages over {} alerts of ~{bytes_each} bytes", texts.len());
    time("validate (&RawValue)", &mut |i| {
        std::hint::black_box(
            serde_json::from_str::<&serde_json::value::RawValue>(&texts[i]).unwrap(),
        );
    });
    // The envelope scan that cuts a streamed page into its alerts, fed in 64 KiB chunks.
    let page = format!("{{\"value\":[{}]}}", texts.join(","));
    let mut pages = 0;
    time("stream (cut a page into alerts)", &mut |i| {
        // One page per `texts.len()` rounds, so that the figure is per alert.
        if i == 0 {
            let mut reader = mde_watch::defender::stream::PageReader::new();
            for chunk in page.as_bytes().chunks(64 * 1024) {
                reader
                    .feed(chunk, &mut |bytes: &[u8]| {
                        std::hint::black_box(bytes);
                    })
                    .unwrap();
            }
            pages += reader.finish().unwrap().elements;
        }
    });
    std::hint::black_box(pages);
    time("read_alert (one pass: view + members)", &mut |i| {
        std::hint::black_box(
            mde_watch::defender::odata::read_alert(i, texts[i].as_bytes())
                .unwrap()
                .unwrap(),
        );
    });
    time("digest (dedup key)", &mut |i| {
        std::hint::black_box(AlertDigest::of(polled[i].alert()));
    });
    for format in [Format::Ecs, Format::Cef, Format::Ocsf, Format::Raw] {
        time(&format!("encode {}", format.as_str()), &mut |i| {
            std::hint::black_box(encode(format, &polled[i], &context).unwrap());
        });
    }
}
