//! A file sink's settings: what `[[sinks]] type = "file"` holds once checked, and the check.

use std::path::PathBuf;

use crate::sinks::Checked;
use crate::units::parse_bytes;

#[derive(Debug, Clone, PartialEq)]
pub struct FileSettings {
    pub path: PathBuf,
    /// Size at which the file is rotated.
    pub max_size: u64,
    /// Rotated files kept.
    pub keep: u32,
    /// fsync before acknowledging (a write is durable when it is acknowledged).
    pub fsync: bool,
}

/// The table as written (`[[sinks]] type = "file"`); a misspelt key is refused (the config loader finds it).
#[derive(Debug, serde::Deserialize)]
pub struct FileTable {
    pub name: Option<String>,
    pub path: String,
    pub format: Option<String>,
    pub max_size: Option<String>,
    pub keep: Option<u32>,
    pub fsync: Option<bool>,
}

/// Checks the table at `key` (`sinks[N]`); `resolve` makes a written path absolute.
pub fn check(
    key: &str,
    table: FileTable,
    resolve: impl Fn(&str) -> PathBuf,
) -> Checked<FileSettings> {
    let mut problems = Vec::new();
    let max_size = match table.max_size.as_deref() {
        None => 100 << 20,
        Some(text) => parse_bytes(text).unwrap_or_else(|err| {
            problems.push(format!("{key}.max_size: {err}"));
            0
        }),
    };
    Checked {
        settings: FileSettings {
            path: resolve(&table.path),
            max_size,
            keep: table.keep.unwrap_or(5),
            fsync: table.fsync.unwrap_or(true),
        },
        problems,
        warnings: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_a_size_that_does_not_read() {
        let table = |max_size: Option<&str>| FileTable {
            name: None,
            format: None,
            path: "alerts.ndjson".into(),
            max_size: max_size.map(str::to_string),
            keep: None,
            fsync: None,
        };
        let checked = check("sinks[0]", table(None), |p| {
            PathBuf::from("/var/lib").join(p)
        });
        assert!(checked.problems.is_empty());
        assert_eq!(
            checked.settings.path,
            PathBuf::from("/var/lib/alerts.ndjson")
        );
        assert_eq!(
            (checked.settings.max_size, checked.settings.keep),
            (100 << 20, 5)
        );
        assert!(checked.settings.fsync);
        let checked = check("sinks[3]", table(Some("lots")), |p| PathBuf::from(p));
        assert!(
            checked.problems[0].starts_with("sinks[3].max_size: "),
            "{:?}",
            checked.problems
        );
    }
}
