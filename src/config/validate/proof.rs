//! What the app proves itself with: exactly one client secret source, or certificate
//! credentials; the secret read now (unless the store tools loaded the config), and the files
//! that hold a secret or a key checked for who else can read them.

use std::path::PathBuf;

use super::super::raw::RawApi;
use super::super::secret::{self, Secret, SecretSource};
use super::Checker;
use crate::config::CertificateCredential;

/// The credential part of `[api]`, checked.
pub(super) struct Proof {
    pub secret_source: Option<SecretSource>,
    /// None: not read (the store tools); `Some(None)`: it could not be read (a problem is
    /// recorded).
    pub secret: Option<Option<Secret>>,
    pub certificate: Option<CertificateCredential>,
}

impl Checker {
    pub(super) fn proof(&mut self, raw: &RawApi) -> Proof {
        let sources: Vec<SecretSource> = [
            raw.client_secret_env.clone().map(SecretSource::Env),
            raw.client_secret_file
                .as_deref()
                .map(|p| SecretSource::File(self.path(p))),
            raw.credential.clone().map(SecretSource::Credential),
        ]
        .into_iter()
        .flatten()
        .collect();
        let credentials_dir = std::env::var_os("CREDENTIALS_DIRECTORY").map(PathBuf::from);
        let wants_certificate = raw.certificate_file.is_some()
            || raw.private_key_file.is_some()
            || raw.private_key_credential.is_some();
        let certificate = if wants_certificate {
            if !sources.is_empty() {
                self.problem(
                    "api: set a client secret or a certificate (api.certificate_file), not both",
                );
            }
            self.certificate(
                raw.certificate_file.clone(),
                raw.private_key_file.clone(),
                raw.private_key_credential.clone(),
                raw.assertion_algorithm.clone(),
                credentials_dir.as_deref(),
            )
        } else {
            None
        };
        let secret_source = match sources.len() {
            0 if wants_certificate => None,
            0 => {
                self.problem("api: no credential configured: set api.client_secret_env, api.client_secret_file or api.credential, or api.certificate_file with its private key");
                None
            }
            1 => sources.into_iter().next(),
            _ => {
                self.problem("api: set only one of api.client_secret_env, api.client_secret_file and api.credential");
                None
            }
        };
        if let Some(SecretSource::File(path)) = &secret_source {
            self.secret_file("api.client_secret_file", path);
        }
        let secret = match &secret_source {
            Some(source) if self.read_secret => Some(
                secret::resolve(source, credentials_dir.as_deref())
                    .map_err(|err| self.problem(format!("api: {err}")))
                    .ok(),
            ),
            _ => None,
        };
        Proof {
            secret_source,
            secret,
            certificate,
        }
    }
}
