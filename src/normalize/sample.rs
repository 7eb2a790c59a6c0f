//! A usual alert (an LSASS-access alert with a user, a process and a file, as the API renders
//! one: about 3.7 KB of JSON), for `check` to say how large each format's events run and
//! whether they fit a sink's size limit before any alert is polled.

use super::{encode_within, Change, EventContext, Format, Match};
use crate::defender::PolledAlert;
use crate::watchlist::EntryKind;

const SAMPLE_ALERT: &str = include_str!("sample-alert.json");

pub fn sample_alert() -> Option<PolledAlert> {
    PolledAlert::parse(SAMPLE_ALERT.trim()).ok()
}

/// What the usual alert becomes in `format` under `limit` bytes: (bytes whole, fits whole,
/// fits at all once shrunk).
pub fn usual_event(
    format: Format,
    collector: &str,
    tenant: &str,
    limit: usize,
) -> Option<(usize, bool, bool)> {
    let alert = sample_alert()?;
    let matches = [Match::new(EntryKind::User, "user1", None)];
    let context = EventContext::new(
        &matches,
        tenant,
        collector,
        Change::New,
        "2026-11-23T05:00:00Z",
    );
    let whole = super::encode(format, &alert, &context).ok()?.len();
    let fitted = encode_within(format, &alert, &context, limit).ok()?;
    Some((whole, whole <= limit, fitted.fits))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_parses_and_encodes_in_every_format() {
        assert!(sample_alert().is_some());
        for format in Format::ALL {
            let (bytes, fits, _) = usual_event(format, "c", "t", 1 << 20).unwrap();
            assert!(bytes > 500 && fits, "{format:?}");
        }
        let (_, fits, shrunk_fits) = usual_event(Format::Ecs, "c", "t", 2048).unwrap();
        assert!(!fits && shrunk_fits);
    }
}
