//! `api.certificate_file` with `api.private_key_file` or `api.private_key_credential`: the
//! certificate credentials, read and checked at load so that a wrong key, a certificate that
//! is expired or not yet valid, or one about to expire is said at `check`, naming the key.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::Checker;
use crate::config::CertificateCredential;
use crate::defender::certificate::{Algorithm, Certificate, Signer};
use crate::exposure;

/// Where the private key is read from.
enum KeySource {
    File(PathBuf),
    /// A systemd credential (`LoadCredential=`), guarded by systemd.
    Credential(String),
}

impl std::fmt::Display for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeySource::File(path) => write!(f, "file {} (api.private_key_file)", path.display()),
            KeySource::Credential(name) => {
                write!(f, "systemd credential {name} (api.private_key_credential)")
            }
        }
    }
}

impl KeySource {
    /// The key's PEM. The error never holds the key, only why it could not be read.
    fn read(&self, credentials_dir: Option<&std::path::Path>) -> Result<Vec<u8>, String> {
        let path = match self {
            KeySource::File(path) => path.clone(),
            KeySource::Credential(name) => credentials_dir
                .ok_or("$CREDENTIALS_DIRECTORY is set only when systemd starts the service with LoadCredential=")?
                .join(name),
        };
        std::fs::read(&path).map_err(|err| format!("cannot read {}: {err}", path.display()))
    }
}

/// Within this many days of its end, a certificate draws a warning at every load.
pub const EXPIRY_WARNING_DAYS: i64 = 30;

impl Checker {
    /// The certificate credential, when one is configured; `None` with a problem recorded when
    /// it cannot be used.
    pub(super) fn certificate(
        &mut self,
        certificate_file: Option<String>,
        private_key_file: Option<String>,
        private_key_credential: Option<String>,
        algorithm: Option<String>,
        credentials_dir: Option<&std::path::Path>,
    ) -> Option<CertificateCredential> {
        let algorithm = match algorithm.as_deref() {
            None => Algorithm::default(),
            Some(name) => match Algorithm::parse(name) {
                Some(algorithm) => algorithm,
                None => {
                    self.problem(format!(
                        "api.assertion_algorithm: '{name}' is not one of PS256 (x5t#S256) and RS256 (x5t)"
                    ));
                    return None;
                }
            },
        };
        let path = certificate_file.as_deref().map(|p| self.path(p));
        let keys: Vec<KeySource> = [
            private_key_file
                .as_deref()
                .map(|p| KeySource::File(self.path(p))),
            private_key_credential.map(KeySource::Credential),
        ]
        .into_iter()
        .flatten()
        .collect();
        let (path, key_source) = match (path, keys.len()) {
            (Some(path), 1) => (path, keys.into_iter().next()?),
            (None, _) => {
                self.problem("api.certificate_file is required with api.private_key_file or api.private_key_credential");
                return None;
            }
            (Some(_), 0) => {
                self.problem("api.certificate_file needs its private key: set api.private_key_file or api.private_key_credential");
                return None;
            }
            (Some(_), _) => {
                self.problem(
                    "api: set only one of api.private_key_file and api.private_key_credential",
                );
                return None;
            }
        };
        if let KeySource::File(key_path) = &key_source {
            self.secret_file("api.private_key_file", key_path);
        }
        if !self.read_secret {
            return None;
        }
        let certificate = self.read_certificate(&path)?;
        let key = match key_source.read(credentials_dir) {
            Ok(key) => key,
            Err(err) => {
                self.problem(format!("api: private key from {key_source}: {err}"));
                return None;
            }
        };
        let signer = match Signer::from_pem(&key, &certificate) {
            Ok(signer) => signer,
            Err(err) => {
                self.problem(format!("api: private key from {key_source}: {err}"));
                return None;
            }
        };
        Some(CertificateCredential {
            certificate: Arc::new(certificate),
            signer: Arc::new(signer),
            path,
            key_source: key_source.to_string(),
            key_file: match &key_source {
                KeySource::File(path) => Some(path.clone()),
                KeySource::Credential(_) => None,
            },
            algorithm,
        })
    }

    fn read_certificate(&mut self, path: &Path) -> Option<Certificate> {
        let now = chrono::Utc::now();
        let certificate = certificate_in(path, now)
            .map_err(|problem| self.problem(problem))
            .ok()?;
        let shown = path.display();
        let left = (certificate.not_after - now).num_days();
        if left < EXPIRY_WARNING_DAYS {
            self.warnings.push(format!(
                "the certificate in {shown} (thumbprint {}) expires on {}, in {left} day(s): renew it and upload the new one to the app registration",
                certificate.thumbprint,
                day(&certificate.not_after)
            ));
        }
        Some(certificate)
    }
}

fn day(time: &chrono::DateTime<chrono::Utc>) -> String {
    time.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// The certificate in `path`, read and checked against its validity window at `now`. The
/// error is the config's problem, naming the setting and the file.
fn certificate_in(path: &Path, now: chrono::DateTime<chrono::Utc>) -> Result<Certificate, String> {
    let shown = path.display();
    let pem = std::fs::read(path)
        .map_err(|err| format!("api.certificate_file: cannot read {shown}: {err}"))?;
    let certificate = Certificate::from_pem(&pem)
        .map_err(|err| format!("api.certificate_file: {shown}: {err}"))?;
    if certificate.not_after <= now {
        return Err(format!(
            "api.certificate_file: the certificate in {shown} (thumbprint {}) expired on {}: Entra ID refuses what it signs; renew it and upload the new one to the app registration",
            certificate.thumbprint,
            day(&certificate.not_after)
        ));
    }
    if certificate.not_before > now {
        return Err(format!(
            "api.certificate_file: the certificate in {shown} (thumbprint {}) is not valid before {}",
            certificate.thumbprint,
            day(&certificate.not_before)
        ));
    }
    Ok(certificate)
}

/// A certificate credential's files, read again while the daemon runs when the token endpoint
/// refuses the certificate in use (`defender/rotation.rs`): the renewed certificate and its key
/// written over the old ones. A key handed over as a systemd credential is copied when the
/// service starts: such a credential has none.
#[derive(Debug, Clone)]
pub struct CertificateFiles {
    certificate: PathBuf,
    key: PathBuf,
    algorithm: Algorithm,
    shown: String,
}

impl CertificateFiles {
    pub fn of(credential: &CertificateCredential) -> Option<CertificateFiles> {
        let key = credential.key_file.clone()?;
        Some(CertificateFiles {
            shown: format!(
                "files {} (api.certificate_file) and {} (api.private_key_file)",
                credential.path.display(),
                key.display()
            ),
            certificate: credential.path.clone(),
            key,
            algorithm: credential.algorithm,
        })
    }

    /// Where the credential is read from, for the log.
    pub fn source(&self) -> &str {
        &self.shown
    }

    /// The certificate and key as the files hold them now, checked as at start: the key private
    /// to its owner and the certificate's own, the certificate within its validity window.
    /// Errors never hold the key.
    pub fn read(&self) -> Result<CertificateCredential, String> {
        exposure::private_enough("api.private_key_file", &self.key)?;
        let certificate = certificate_in(&self.certificate, chrono::Utc::now())?;
        let key_source = KeySource::File(self.key.clone());
        let key = key_source
            .read(None)
            .map_err(|err| format!("api: private key from {key_source}: {err}"))?;
        let signer = Signer::from_pem(&key, &certificate)
            .map_err(|err| format!("api: private key from {key_source}: {err}"))?;
        Ok(CertificateCredential {
            certificate: Arc::new(certificate),
            signer: Arc::new(signer),
            path: self.certificate.clone(),
            key_source: key_source.to_string(),
            key_file: Some(self.key.clone()),
            algorithm: self.algorithm,
        })
    }
}
