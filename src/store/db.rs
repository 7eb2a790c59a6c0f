//! Opening sled: the store's directory (private), the database with its three trees, and a
//! lock held by another handle told apart from other failures.

use std::path::Path;

use super::error::OpenCause;
use crate::config::StoreConfig;

pub(super) struct Trees {
    pub meta: sled::Tree,
    pub entities: sled::Tree,
    pub log: sled::Tree,
}

/// Opens the database and its trees.
pub(super) fn open_db(config: &StoreConfig) -> Result<(sled::Db, Trees), OpenCause> {
    let db = sled::Config::new()
        .path(&config.path)
        .cache_capacity(config.cache_bytes)
        .flush_every_ms(Some(1000))
        .open()
        .map_err(|err| {
            if locked_elsewhere(&config.path) {
                OpenCause::Locked(err)
            } else {
                OpenCause::Sled(err)
            }
        })?;
    let trees = Trees {
        meta: db.open_tree("meta")?,
        entities: db.open_tree("entities")?,
        log: db.open_tree("log")?,
    };
    Ok((db, trees))
}

/// Whether another handle holds the store: sled `flock`s its `db` file for as long as it is
/// open and reports a refusal only as text, so the lock is probed the same way it is taken.
fn locked_elsewhere(dir: &Path) -> bool {
    use std::os::fd::AsRawFd;
    let Ok(file) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(dir.join("db"))
    else {
        return false;
    };
    // SAFETY: flock on a descriptor this function owns; dropping `file` releases what it took.
    let taken = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    taken != 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EWOULDBLOCK)
}

/// [`open_db`] right after this process dropped its handle: sled's write-back threads may hold
/// the file lock a moment longer, so a lock refusal is retried for up to two seconds.
pub(super) fn reopen_db(config: &StoreConfig) -> Result<(sled::Db, Trees), OpenCause> {
    let mut attempts = 0;
    loop {
        match open_db(config) {
            Err(OpenCause::Locked(_)) if attempts < 100 => {
                attempts += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            done => return done,
        }
    }
}

/// The store holds alert ids and timings: readable by the service account only.
pub(super) fn create_private_dir(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if path.exists() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o750)
        .create(path)
}
