//! A credential rotated while the daemon runs. Entra ID refuses a secret once it is deleted or
//! has expired, and a certificate once it has expired or is removed from the app; the operator
//! rotates by registering the new one, writing it into the files the daemon reads, then removing
//! the old one: from then on every token request failed until a restart. When the token endpoint
//! refuses the credential in use, its files (`api.client_secret_file`, or `api.certificate_file`
//! with `api.private_key_file`) are read again, checked as the config loader checks them, and a
//! different credential is tried at once (a mounted Kubernetes secret changes in place the same
//! way). An environment variable cannot change under a running process, and systemd copies a
//! credential when the service starts: those are not read again (the unit's credential needs
//! `systemctl restart`).

use std::sync::atomic::{AtomicU64, Ordering};

use super::errors::TokenFailure;

static REREADS: AtomicU64 = AtomicU64::new(0);

/// Times a credential was read again after the token endpoint refused it.
pub fn rereads() -> u64 {
    REREADS.load(Ordering::Relaxed)
}

/// Whether the token endpoint's answer may mean the credential itself was refused: Entra ID
/// says 401 for an unknown secret (AADSTS7000215) or certificate (AADSTS700027) and 400 for an
/// expired secret (AADSTS7000222).
pub fn refused_credential(failure: &TokenFailure) -> bool {
    matches!(
        failure,
        TokenFailure::Refused {
            status: 400 | 401,
            ..
        }
    )
}

/// What reading the credential again gave.
#[derive(Debug, PartialEq, Eq)]
pub enum Reread {
    /// A credential other than the refused one: tried at once.
    New,
    /// The same credential: the refusal stands.
    Same,
    /// The files could not be read or fail the loader's checks: the refusal stands.
    Failed(String),
}

/// Decides what a fresh read means: `in_use` says whether it is the refused credential (a
/// secret compared by value, a certificate by thumbprint). Pure.
pub fn compare<C>(read: Result<C, String>, in_use: impl FnOnce(&C) -> bool) -> (Reread, Option<C>) {
    match read {
        Ok(fresh) if !in_use(&fresh) => (Reread::New, Some(fresh)),
        Ok(_) => (Reread::Same, None),
        Err(reason) => (Reread::Failed(reason), None),
    }
}

/// One re-read of a credential: counted, and said (a new one at info, a failed read at warn).
pub struct CredentialReread<'a> {
    /// "client secret" or "certificate".
    pub what: &'static str,
    /// Where it was read from, naming the files and their settings.
    pub source: &'a dyn std::fmt::Display,
    pub outcome: &'a Reread,
}

impl CredentialReread<'_> {
    pub fn emit(self) {
        REREADS.fetch_add(1, Ordering::Relaxed);
        let (what, source) = (self.what, self.source);
        match self.outcome {
            Reread::New => tracing::info!(
                %source,
                "the token endpoint refused the {what} in use; a different one was read again and is tried now"
            ),
            Reread::Same => tracing::debug!(
                %source,
                "the token endpoint refused the {what} in use; reading it again gave the same one"
            ),
            Reread::Failed(reason) => tracing::warn!(
                %source,
                %reason,
                "the token endpoint refused the {what} in use, and reading it again failed"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_different_credential_is_tried() {
        let in_use = |fresh: &&str| *fresh == "old";
        let (outcome, fresh) = compare(Ok("new"), in_use);
        assert_eq!(outcome, Reread::New);
        assert_eq!(fresh, Some("new"));
        assert_eq!(compare(Ok("old"), in_use).0, Reread::Same);
        let failed = compare(Err("unreadable".into()), in_use);
        assert_eq!(failed.0, Reread::Failed("unreadable".into()));
        assert!(failed.1.is_none());
    }

    #[test]
    fn refusals_of_the_credential_are_told_from_other_failures() {
        let refused = |status| TokenFailure::Refused {
            status,
            description: String::new(),
        };
        assert!(refused_credential(&refused(401)));
        assert!(refused_credential(&refused(400)));
        assert!(!refused_credential(&refused(503)));
        assert!(!refused_credential(&TokenFailure::NoSecret));
    }
}
