//! The client secret: where it comes from, and a type that never prints it.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::exposure;

/// A secret string. `Debug` and `Display` print `***`; only [`Secret::expose`] reveals it, and
/// only the token request calls that.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// The proxy's URL, which may carry its user and password: `Debug` and `Display` show it without
/// them; only [`ProxyUrl::expose`] gives it whole, to the HTTP client.
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyUrl(String);

impl ProxyUrl {
    pub fn new(value: impl Into<String>) -> Self {
        ProxyUrl(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// It names a user (and maybe a password) that the proxy is sent.
    pub fn has_credentials(&self) -> bool {
        self.0.contains('@')
    }
}

impl fmt::Debug for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProxyUrl({})", without_credentials(&self.0))
    }
}

impl fmt::Display for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&without_credentials(&self.0))
    }
}

/// A URL as a message may show it: what stands before an `@` (a user and password) is
/// replaced, whether or not the rest parses, so a credential never reaches a log or an error.
pub fn without_credentials(value: &str) -> String {
    let Some(at) = value.rfind('@') else {
        return value.to_string();
    };
    let scheme = value
        .find("://")
        .filter(|&end| end < at)
        .map_or(0, |end| end + 3);
    format!("{}***{}", &value[..scheme], &value[at..])
}

/// One of the three places a secret may be kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// An environment variable, by name.
    Env(String),
    /// A file whose content (trailing newline trimmed) is the secret.
    File(PathBuf),
    /// A systemd credential: `$CREDENTIALS_DIRECTORY/<name>` (LoadCredential= in the unit).
    Credential(String),
}

impl fmt::Display for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretSource::Env(name) => {
                write!(f, "environment variable {name} (api.client_secret_env)")
            }
            SecretSource::File(path) => {
                write!(f, "file {} (api.client_secret_file)", path.display())
            }
            SecretSource::Credential(name) => {
                write!(f, "systemd credential {name} (api.credential)")
            }
        }
    }
}

/// Reads the secret. Errors say where it was looked for and never contain any of its bytes.
pub fn resolve(source: &SecretSource, credentials_dir: Option<&Path>) -> Result<Secret, String> {
    let value = match source {
        SecretSource::Env(name) => std::env::var(name)
            .map_err(|_| format!("client secret not found: {source} is not set"))?,
        SecretSource::File(path) => read_secret_file(path, source)?,
        SecretSource::Credential(name) => {
            let dir = credentials_dir.ok_or_else(|| {
                format!(
                    "client secret not found: {source} needs $CREDENTIALS_DIRECTORY, which is set only when \
                     systemd starts the service with LoadCredential={name}:..."
                )
            })?;
            read_secret_file(&dir.join(name), source)?
        }
    };
    let trimmed = value.trim_end_matches(['\r', '\n']);
    if trimmed.is_empty() {
        return Err(format!("client secret from {source} is empty"));
    }
    Ok(Secret::new(trimmed))
}

/// A client secret's file, read again while the daemon runs when the token endpoint refuses the
/// secret in use (`defender/rotation.rs`). An environment variable cannot change under a running
/// process and systemd copies a credential when the service starts: neither has one.
#[derive(Debug, Clone)]
pub struct SecretFile {
    source: SecretSource,
    path: PathBuf,
}

impl SecretFile {
    pub fn of(source: &SecretSource) -> Option<SecretFile> {
        match source {
            SecretSource::File(path) => Some(SecretFile {
                source: source.clone(),
                path: path.clone(),
            }),
            SecretSource::Env(_) | SecretSource::Credential(_) => None,
        }
    }

    pub fn source(&self) -> &SecretSource {
        &self.source
    }

    /// The secret as the file holds it now. A file every local user can read is refused, as at
    /// start; errors name the file, never its content.
    pub fn read(&self) -> Result<Secret, String> {
        exposure::private_enough("api.client_secret_file", &self.path)?;
        resolve(&self.source, None)
    }
}

fn read_secret_file(path: &Path, source: &SecretSource) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|err| {
        format!(
            "client secret not readable from {source}: {}: {}",
            path.display(),
            err.kind()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::says;

    #[test]
    fn debug_and_display_hide_the_value() {
        let secret = Secret::new("hunter2-very-secret");
        assert_eq!(format!("{secret:?}"), "Secret(***)");
        assert_eq!(format!("{secret}"), "***");
        assert_eq!(secret.expose(), "hunter2-very-secret");
    }

    #[test]
    fn file_and_credential_sources() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("mde"), "s3cret\n").unwrap();
        let from_file = resolve(&SecretSource::File(dir.path().join("mde")), None).unwrap();
        assert_eq!(from_file.expose(), "s3cret");
        let from_cred = resolve(&SecretSource::Credential("mde".into()), Some(dir.path())).unwrap();
        assert_eq!(from_cred.expose(), "s3cret");
        let missing = resolve(&SecretSource::Credential("mde".into()), None).unwrap_err();
        says(&missing, "CREDENTIALS_DIRECTORY");
    }

    #[test]
    fn a_secret_file_is_read_again_and_a_public_one_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "rotated\n").unwrap();
        crate::testing::private(&path);
        let file = SecretFile::of(&SecretSource::File(path.clone())).unwrap();
        assert!(file.read().unwrap() == Secret::new("rotated"));
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let refused = file.read().unwrap_err();
        says(&refused, "every local user");
        assert!(!refused.contains("rotated"), "{refused}");
        assert!(SecretFile::of(&SecretSource::Env("X".into())).is_none());
        assert!(SecretFile::of(&SecretSource::Credential("c".into())).is_none());
    }

    #[test]
    fn missing_env_names_the_variable() {
        let err = resolve(
            &SecretSource::Env("MDE_WATCH_TEST_UNSET_SECRET_VAR".into()),
            None,
        )
        .unwrap_err();
        assert!(
            err.contains("MDE_WATCH_TEST_UNSET_SECRET_VAR") && err.contains("not set"),
            "{err}"
        );
    }
}
