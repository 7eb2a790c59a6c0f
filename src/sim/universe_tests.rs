//! Tests of the emulator's universe: a seed always renders the same one, alerts link users and
//! files, the listing names everyone, timestamps vary their fractions.

use super::*;

#[test]
fn same_seed_same_universe() {
    let a = Universe::new(UniverseSpec::default());
    let b = Universe::new(UniverseSpec::default());
    assert_eq!(a.alerts.len(), b.alerts.len());
    assert_eq!(a.render(3, 10_000), b.render(3, 10_000));
    assert_eq!(a.file_hash(1).len(), 40);
}

#[test]
fn some_alerts_link_a_user_and_a_file() {
    let universe = Universe::new(UniverseSpec::default());
    assert!(universe
        .alerts
        .iter()
        .any(|a| a.user.is_some() && a.file.is_some()));
    let alert = universe.alerts.iter().find(|a| a.appear_at > 0).unwrap();
    assert!(universe.render(alert.index, 0).is_none());
    assert!(universe.render(alert.index, alert.appear_at).is_some());
}

#[test]
fn the_listing_names_every_user_and_file() {
    let universe = Universe::new(UniverseSpec {
        users: 3,
        files: 2,
        ..UniverseSpec::default()
    });
    let listing = universe.listing(0);
    assert_eq!(listing["users"].as_array().unwrap().len(), 3);
    assert_eq!(listing["users"][0]["user"], "user1");
    assert_eq!(listing["files"][1]["sha1"], universe.file_hash(2));
    let total: u64 = listing["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["alerts"].as_u64().unwrap())
        .sum();
    assert!(total <= universe.alerts.len() as u64);
}

#[test]
fn stamps_have_every_fraction_length() {
    assert_eq!(stamp(0, 0, 0), "2026-11-01T00:00:00Z");
    assert_eq!(stamp(0, 137, 7), "2026-11-01T00:00:00.1370003Z");
    assert_eq!(stamp(0, 137, 2), "2026-11-01T00:00:00.13Z");
    assert!(crate::defender::time::parse(&stamp(5, 1, 4)).is_some());
}
