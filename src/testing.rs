//! What the unit tests share.

/// Asserts that `text` contains `expected`, and shows both when it does not.
#[track_caller]
pub(crate) fn says(text: &str, expected: &str) {
    assert!(text.contains(expected), "expected {expected:?} in:\n{text}");
}

/// Narrows `path` to mode 0600, as mde-watch wants a secret file.
pub(crate) fn private(path: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// A temporary directory holding `secret.txt` (mode 0600), the secret the test configs name.
pub(crate) fn with_secret_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("secret.txt"), "s\n").unwrap();
    private(&dir.path().join("secret.txt"));
    dir
}
