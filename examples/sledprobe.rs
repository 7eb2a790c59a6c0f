use mde_watch::config::StoreConfig;
use mde_watch::store::{SeenRecord, Store};
use std::time::{Duration, Instant};
fn rss() -> String {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("VmRSS") || l.starts_with("VmHWM"))
        .collect::<Vec<_>>()
        .join(" ")
}
fn id(i: u64) -> String {
    format!(
        "da{:018}_{}",
        638_990_000_000_000_000u64 + i * 7919,
        (i * 2_654_435_761) as i32
    )
}
fn rec(i: u64) -> SeenRecord {
    SeenRecord {
        last_update: Some(i as i64),
        fingerprint: i,
        first_observed: 1,
        last_observed: 1,
    }
}
fn main() {
    let path = std::env::args().nth(1).unwrap();
    let fill: u64 = std::env::args().nth(2).unwrap().parse().unwrap();
    let cfg = StoreConfig {
        path: path.into(),
        retention: Duration::from_secs(1),
        cache_bytes: 16 << 20,
    };
    let t = Instant::now();
    let store = Store::open(&cfg).unwrap();
    println!("open {:?} {}", t.elapsed(), rss());
    let t = Instant::now();
    for s in (0..fill).step_by(50_000) {
        let r: Vec<_> = (s..(s + 50_000).min(fill))
            .map(|i| (id(i), rec(i)))
            .collect();
        store.commit(&r, &[], None).unwrap();
    }
    println!("fill {fill} {:?} {}", t.elapsed(), rss());
    let t = Instant::now();
    let mut found = 0;
    for i in 0..60_000u64 {
        if store.previous(&id(i * 13 % 1_000_000)).unwrap().is_some() {
            found += 1;
        }
    }
    println!("60k gets {:?} found {found} {}", t.elapsed(), rss());
    let t = Instant::now();
    for b in 0..40u64 {
        let r: Vec<_> = (0..1500)
            .map(|i| {
                (
                    id(((b * 1500 + i) * 7_654_321) % 1_000_000 + 1_000_000 * ((b * 1500 + i) % 2)),
                    rec(i),
                )
            })
            .collect();
        store.commit(&r, &[], None).unwrap();
    }
    println!("40 commits of 1500 {:?} {}", t.elapsed(), rss());
}
