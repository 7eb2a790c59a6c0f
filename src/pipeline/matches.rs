//! Which watchlist entries an alert's own content names: its related user, logged-on users and
//! evidence accounts against the watched users; its evidence hashes against the watched files.

use crate::defender::Alert;
use crate::normalize::Match;
use crate::watchlist::{write_entry_key, EntryKind, Watchlist};

pub struct WatchIndex {
    by_key: super::FastMap<String, Match>,
}

impl WatchIndex {
    pub fn new(watchlist: &Watchlist) -> WatchIndex {
        let by_key = watchlist
            .entries
            .iter()
            .map(|e| {
                (
                    e.key(),
                    Match {
                        kind: e.kind(),
                        value: e.value().into(),
                        original: e.original.as_deref().map(Into::into),
                    },
                )
            })
            .collect();
        WatchIndex { by_key }
    }

    /// The entries `alert`'s content names, each once, in `lookup`'s buffers (kept by the
    /// caller across a batch, so a lookup allocates nothing once they have grown).
    pub fn matches_in<'l>(&self, alert: &Alert, lookup: &'l mut Lookup) -> &'l [Match] {
        let Lookup { key, found } = lookup;
        found.clear();
        let mut check = |kind: EntryKind, value: Option<&str>| {
            let Some(value) = value else { return };
            write_entry_key(kind, value, key);
            if let Some(hit) = self.by_key.get(key.as_str()) {
                if !found.contains(hit) {
                    found.push(hit.clone());
                }
            }
        };
        if let Some(user) = &alert.related_user {
            check(EntryKind::User, user.user_name.as_deref());
        }
        for user in &alert.logged_on_users {
            check(EntryKind::User, user.account_name.as_deref());
        }
        for evidence in &alert.evidence {
            check(EntryKind::User, evidence.account_name.as_deref());
            check(EntryKind::File, evidence.sha1.as_deref());
        }
        found
    }
}

/// The buffers of [`WatchIndex::matches_in`]: the key being looked up and what was found.
#[derive(Debug, Default)]
pub struct Lookup {
    key: String,
    found: Vec<Match>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::watchlist::{load, ListSources};

    #[test]
    fn finds_users_and_hashes_in_content() {
        let report = load(&ListSources {
            users: vec!["CONTOSO\\User7".into()],
            files: vec!["470454E35EA71DD971C2B0CBB29E0225CD0526CB".into()],
            ..Default::default()
        });
        let index = WatchIndex::new(&report.watchlist);
        let alert = Alert::read(
            r#"{"id":"x","relatedUser":{"userName":"user7","domainName":"CONTOSO"},
               "evidence":[{"entityType":"File","sha1":"470454e35ea71dd971c2b0cbb29e0225cd0526cb"}]}"#,
        )
        .unwrap();
        let mut lookup = Lookup::default();
        let found = index.matches_in(&alert, &mut lookup);
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(found[0].original.as_deref(), Some("CONTOSO\\User7"));
    }
}
