//! What to watch: user account names and SHA-1 file hashes, from the config inline and from list
//! files. `UserId` and `Sha1` can only hold values the Defender API accepts, so everything past this
//! module can trust them. Every rejection names the value and where it came from.

mod ids;
mod load;

pub use ids::{parse_sha1, parse_user, Sha1, UserId, UserNote};
pub use load::{load, ListSources, LoadReport};

use std::fmt;

/// Where a watchlist value was written: a config key or a list file line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    ConfigKey { key: String },
    FileLine { path: String, line: usize },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::ConfigKey { key } => write!(f, "config key {key}"),
            Origin::FileLine { path, line } => write!(f, "{path} line {line}"),
        }
    }
}

/// Which endpoint an entry is polled through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EntryKind {
    User,
    File,
}

impl EntryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::User => "user",
            EntryKind::File => "file",
        }
    }
}

/// The id of a watched thing, as the API takes it: checked once, when the watchlist is read.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum WatchedId {
    User(UserId),
    File(Sha1),
}

impl WatchedId {
    /// Reads what the operator wrote for an entry of `kind`; a user's note says what was
    /// rewritten (a UPN or a domain stripped).
    pub fn parse(kind: EntryKind, raw: &str) -> Result<(WatchedId, Option<UserNote>), String> {
        match kind {
            EntryKind::User => parse_user(raw).map(|(id, note)| (WatchedId::User(id), note)),
            EntryKind::File => parse_sha1(raw).map(|sha| (WatchedId::File(sha), None)),
        }
    }

    pub fn kind(&self) -> EntryKind {
        match self {
            WatchedId::User(_) => EntryKind::User,
            WatchedId::File(_) => EntryKind::File,
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            WatchedId::User(user) => user.as_str(),
            WatchedId::File(sha) => sha.as_str(),
        }
    }
}

/// One thing to poll: its id, and the spelling the operator wrote when it differed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The id sent to the API: a bare account name, or a lower-case SHA-1.
    pub id: WatchedId,
    /// What the operator wrote, when normalization changed it (`CONTOSO\user1`, an upper-case hash).
    pub original: Option<String>,
    pub origin: Origin,
}

impl Entry {
    pub fn kind(&self) -> EntryKind {
        self.id.kind()
    }

    /// The id as the API takes it.
    pub fn value(&self) -> &str {
        self.id.as_str()
    }

    /// Stable key for the store's `entities` tree and for match lookups.
    pub fn key(&self) -> String {
        entry_key(self.kind(), self.value())
    }

    /// An entry from a value known to be valid, for unit tests' fixtures.
    #[cfg(test)]
    pub fn for_test(kind: EntryKind, value: &str) -> Entry {
        let (id, _) = WatchedId::parse(kind, value).expect("a valid test id");
        Entry {
            id,
            original: None,
            origin: Origin::ConfigKey {
                key: format!("watchlist.{}s", kind.as_str()),
            },
        }
    }
}

/// Key of an entry: `u:<lower-case user>` or `f:<sha1>`. User names compare case-insensitively in
/// Active Directory, so they are folded here.
pub fn entry_key(kind: EntryKind, value: &str) -> String {
    let mut key = String::with_capacity(value.len() + 2);
    write_entry_key(kind, value, &mut key);
    key
}

/// [`entry_key`] into a buffer the caller reuses (the match runs it for every name in every alert).
pub fn write_entry_key(kind: EntryKind, value: &str, key: &mut String) {
    key.clear();
    key.push_str(match kind {
        EntryKind::User => "u:",
        EntryKind::File => "f:",
    });
    if value.is_ascii() {
        // Copied whole and lowered in place: a char at a time cost ~1% of a heavy sweep.
        let start = key.len();
        key.push_str(value);
        key[start..].make_ascii_lowercase();
    } else {
        match kind {
            EntryKind::User => key.push_str(&value.to_lowercase()),
            EntryKind::File => key.push_str(&value.to_ascii_lowercase()),
        }
    }
}

/// A validated watchlist: users first, then files, each in the order written, without duplicates.
/// Shared, not copied: a sweep reads the entries while a reload may swap in a new list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watchlist {
    pub entries: std::sync::Arc<[Entry]>,
}

impl Default for Watchlist {
    fn default() -> Watchlist {
        Watchlist {
            entries: Vec::new().into(),
        }
    }
}

impl Watchlist {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn users(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter().filter(|e| e.kind() == EntryKind::User)
    }

    pub fn files(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter().filter(|e| e.kind() == EntryKind::File)
    }
}

/// A value that cannot be watched, with where it came from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WatchlistError {
    #[error("{origin}: {reason}")]
    BadValue { origin: Origin, reason: String },
    #[error("cannot read watchlist file {path} ({key}): {reason}")]
    Unreadable {
        path: String,
        key: String,
        reason: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_fold_case_the_same_through_the_reused_buffer() {
        let mut buffer = String::from("left over");
        for (kind, value, key) in [
            (EntryKind::User, "CONTOSO\\User7", "u:contoso\\user7"),
            (EntryKind::User, "ÉLODIE", "u:élodie"),
            (EntryKind::File, "AB12Cd", "f:ab12cd"),
            (EntryKind::File, "ÀB", "f:Àb"),
        ] {
            write_entry_key(kind, value, &mut buffer);
            assert_eq!(buffer, key);
            assert_eq!(entry_key(kind, value), key);
        }
    }
}
