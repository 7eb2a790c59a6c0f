//! What can go wrong with the store, each naming the store's path: it would not open (held by
//! another process, or unreadable), it has another schema, a segment of the seen log is damaged,
//! or sled failed an operation.

use std::path::Path;

use super::seen::LogError;

/// Why the store's database did not open.
#[derive(Debug, thiserror::Error)]
pub enum OpenCause {
    #[error("another process has this store open (the service? stop it first)")]
    Locked(#[source] sled::Error),
    #[error(transparent)]
    Sled(#[from] sled::Error),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "cannot open the store at {path} (if another mde-watch uses it, stop that one; if it is \
         corrupt, move it aside: mde-watch then re-publishes every alert it finds)"
    )]
    Open {
        path: String,
        #[source]
        cause: OpenCause,
    },
    #[error(
        "the store at {path} has schema version {found}, this mde-watch reads version {expected}"
    )]
    Schema {
        path: String,
        found: String,
        expected: u32,
    },
    #[error("segment {segment} of the seen-alert log is unreadable ({detail}); the store at {path} is damaged: move it aside (mde-watch then re-publishes every alert it finds)")]
    Corrupt {
        path: String,
        segment: String,
        detail: String,
    },
    /// An entity's status that does not read back (or, in principle, does not serialize): named,
    /// never taken for "not polled yet" or stored empty.
    #[error("the status of watchlist entry '{key}' in the store at {path} cannot be {action}")]
    EntityStatus {
        path: String,
        key: String,
        action: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("store I/O failed at {path}")]
    Io {
        path: String,
        #[source]
        source: sled::Error,
    },
}

pub(super) fn log_error(path: &Path, err: LogError) -> StoreError {
    let path = path.display().to_string();
    match err {
        LogError::Sled(source) => StoreError::Io { path, source },
        LogError::Corrupt { segment, detail } => StoreError::Corrupt {
            path,
            segment,
            detail,
        },
    }
}
