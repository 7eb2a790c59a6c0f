//! Builds a [`Watchlist`] from inline config values and list files (one value per line, `#` starts a
//! comment). Bad values are collected, not fatal one by one, so `check` can list every problem and
//! nothing already accepted is lost.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::{entry_key, Entry, EntryKind, Origin, UserNote, WatchedId, Watchlist, WatchlistError};

/// The raw inputs: inline values and optional list files, with the config keys they came from.
#[derive(Debug, Clone, Default)]
pub struct ListSources {
    pub users: Vec<String>,
    pub files: Vec<String>,
    pub users_file: Option<PathBuf>,
    pub files_file: Option<PathBuf>,
}

/// The result of loading: what was accepted, what was noted, what was rejected.
#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    pub watchlist: Watchlist,
    pub warnings: Vec<String>,
    pub errors: Vec<WatchlistError>,
}

/// Loads every source; list-file paths are used as given (the config resolves them first).
pub fn load(sources: &ListSources) -> LoadReport {
    let mut builder = Builder::default();
    let lists = [
        (EntryKind::User, &sources.users, &sources.users_file),
        (EntryKind::File, &sources.files, &sources.files_file),
    ];
    for (kind, inline, file) in lists {
        let key = format!("watchlist.{}s", kind.as_str());
        for (index, value) in inline.iter().enumerate() {
            let origin = Origin::ConfigKey {
                key: format!("{key}[{index}]"),
            };
            builder.add(kind, value, origin);
        }
        if let Some(path) = file {
            builder.add_file(kind, path, &format!("{key}_file"));
        }
    }
    builder.finish()
}

#[derive(Default)]
struct Builder {
    report: LoadReport,
    entries: Vec<Entry>,
    seen: HashMap<String, Origin>,
}

impl Builder {
    fn add_file(&mut self, kind: EntryKind, path: &Path, key: &str) {
        let shown = path.display().to_string();
        let text = match std::fs::read(path) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(text) => text,
                Err(_) => {
                    self.report.errors.push(WatchlistError::Unreadable {
                        path: shown,
                        key: key.into(),
                        reason: "not UTF-8 text".into(),
                    });
                    return;
                }
            },
            Err(err) => {
                self.report.errors.push(WatchlistError::Unreadable {
                    path: shown,
                    key: key.into(),
                    reason: err.to_string(),
                });
                return;
            }
        };
        for (number, line) in text.lines().enumerate() {
            let value = strip_comment(line).trim();
            if value.is_empty() {
                continue;
            }
            let origin = Origin::FileLine {
                path: shown.clone(),
                line: number + 1,
            };
            self.add(kind, value, origin);
        }
    }

    fn add(&mut self, kind: EntryKind, raw: &str, origin: Origin) {
        let (id, note) = match WatchedId::parse(kind, raw) {
            Ok(parsed) => parsed,
            Err(reason) => {
                self.report
                    .errors
                    .push(WatchlistError::BadValue { origin, reason });
                return;
            }
        };
        let value = id.as_str();
        let trimmed = raw.trim();
        if let Some(note) = note {
            let how = match note {
                UserNote::StrippedUpnDomain => "the API takes the account name, not the UPN",
                UserNote::StrippedNetbiosDomain => {
                    "the API takes the account name without its domain"
                }
            };
            self.report.warnings.push(format!(
                "{origin}: '{trimmed}' watched as '{value}' ({how})"
            ));
        }
        let key = entry_key(kind, value);
        if let Some(first) = self.seen.get(&key) {
            self.report.warnings.push(format!(
                "{origin}: '{trimmed}' duplicates {} {value} from {first}; merged",
                kind.as_str()
            ));
            return;
        }
        self.seen.insert(key, origin.clone());
        let original = (trimmed != value).then(|| trimmed.to_string());
        self.entries.push(Entry {
            id,
            original,
            origin,
        });
    }

    fn finish(mut self) -> LoadReport {
        // Users first, then files: a stable order the round-robin cursor can rely on.
        self.entries.sort_by_key(|e| e.kind());
        self.report.watchlist.entries = self.entries.into();
        self.report
    }
}

/// A `#` starts a comment at the start of a line or after whitespace.
fn strip_comment(line: &str) -> &str {
    let bytes = line.as_bytes();
    for (index, &byte) in bytes.iter().enumerate() {
        if byte == b'#' && (index == 0 || bytes[index - 1].is_ascii_whitespace()) {
            return &line[..index];
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::says;
    use std::io::Write;

    fn sources(users: &[&str], files: &[&str]) -> ListSources {
        ListSources {
            users: users.iter().map(|s| s.to_string()).collect(),
            files: files.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn inline_values_with_notes_and_duplicates() {
        let report = load(&sources(
            &["user1", "CONTOSO\\user1", "user2@contoso.com"],
            &["6532EC91D513ACC05F43EE0AA3002599729FD3E1"],
        ));
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        let values: Vec<_> = report.watchlist.entries.iter().map(|e| e.value()).collect();
        assert_eq!(
            values,
            ["user1", "user2", "6532ec91d513acc05f43ee0aa3002599729fd3e1"]
        );
        assert_eq!(
            report.watchlist.entries[1].original.as_deref(),
            Some("user2@contoso.com")
        );
        assert!(report
            .warnings
            .iter()
            .any(|w| w.contains("watchlist.users[1]") && w.contains("duplicates user user1")));
        assert!(report
            .warnings
            .iter()
            .any(|w| w.contains("'user2@contoso.com' watched as 'user2'")));
    }

    #[test]
    fn list_file_errors_name_file_and_line_and_keep_good_values() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        writeln!(file, "# hashes from the IR ticket").unwrap();
        writeln!(
            file,
            "470454e35ea71dd971c2b0cbb29e0225cd0526cb  # updater.exe"
        )
        .unwrap();
        writeln!(file).unwrap();
        writeln!(file, "d41d8cd98f00b204e9800998ecf8427e").unwrap();
        let report = load(&ListSources {
            files_file: Some(file.path().to_path_buf()),
            ..Default::default()
        });
        assert_eq!(report.watchlist.len(), 1);
        let message = report.errors[0].to_string();
        says(&message, &format!("{} line 4", file.path().display()));
        says(&message, "looks like MD5");
    }

    #[test]
    fn unreadable_file_names_path_and_key() {
        let report = load(&ListSources {
            users_file: Some("/nonexistent/users.txt".into()),
            ..Default::default()
        });
        let message = report.errors[0].to_string();
        assert!(
            message.contains("/nonexistent/users.txt") && message.contains("watchlist.users_file"),
            "{message}"
        );
    }

    #[test]
    fn comments_only_after_whitespace() {
        assert_eq!(strip_comment("abc # note"), "abc ");
        assert_eq!(strip_comment("# all"), "");
        assert_eq!(strip_comment("ab#c"), "ab#c");
    }
}
