//! A client secret rotated while the daemon runs. Entra ID refuses a secret once it is deleted
//! or has expired, and the operator rotates by adding a new secret, writing it into the file the
//! daemon reads, then deleting the old one: from then on every token request failed until a
//! restart. When the token endpoint refuses the secret in use, its file (`api.client_secret_file`)
//! is read again, checked as the config loader checks it, and a different secret is tried at
//! once (a mounted Kubernetes secret changes in place the same way). An environment variable
//! cannot change under a running process, and systemd copies a credential when the service
//! starts: those are not read again (the unit's credential needs `systemctl restart`).

use std::sync::atomic::{AtomicU64, Ordering};

use super::errors::TokenFailure;

static REREADS: AtomicU64 = AtomicU64::new(0);

/// Times the client secret was read again after the token endpoint refused it.
pub fn rereads() -> u64 {
    REREADS.load(Ordering::Relaxed)
}

/// Whether the token endpoint's answer may mean the secret itself was refused: Entra ID says
/// 401 for an unknown secret (AADSTS7000215) and 400 for an expired one (AADSTS7000222).
pub fn refused_secret(failure: &TokenFailure) -> bool {
    matches!(
        failure,
        TokenFailure::Refused {
            status: 400 | 401,
            ..
        }
    )
}

/// What reading the secret again gave.
#[derive(Debug, PartialEq, Eq)]
pub enum Reread {
    /// A secret other than the refused one: tried at once.
    New,
    /// The same secret: the refusal stands.
    Same,
    /// The file could not be read or is not private: the refusal stands.
    Failed(String),
}

/// Decides what a fresh read of a secret (`config::Secret`) means against the one in use. Pure.
pub fn compare<S: PartialEq>(in_use: Option<&S>, read: Result<S, String>) -> (Reread, Option<S>) {
    match read {
        Ok(fresh) if in_use != Some(&fresh) => (Reread::New, Some(fresh)),
        Ok(_) => (Reread::Same, None),
        Err(reason) => (Reread::Failed(reason), None),
    }
}

/// One re-read of the secret: counted, and said (the new secret at info, a failed read at warn).
pub struct SecretReread<'a> {
    /// Where it was read from (`config::SecretSource`, which names the file and the setting).
    pub source: &'a dyn std::fmt::Display,
    pub outcome: &'a Reread,
}

impl SecretReread<'_> {
    pub fn emit(self) {
        REREADS.fetch_add(1, Ordering::Relaxed);
        let source = self.source;
        match self.outcome {
            Reread::New => tracing::info!(
                %source,
                "the token endpoint refused the client secret in use; read a new one from its file and trying it"
            ),
            Reread::Same => tracing::debug!(
                %source,
                "the token endpoint refused the client secret in use; its file holds the same one"
            ),
            Reread::Failed(reason) => tracing::warn!(
                %source,
                %reason,
                "the token endpoint refused the client secret in use, and reading it again failed"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_different_secret_is_tried() {
        let old = "old";
        let (outcome, fresh) = compare(Some(&old), Ok("new"));
        assert_eq!(outcome, Reread::New);
        assert_eq!(fresh, Some("new"));
        assert_eq!(compare(Some(&old), Ok("old")).0, Reread::Same);
        assert_eq!(compare(None, Ok("new")).0, Reread::New);
        let failed = compare(Some(&old), Err("unreadable".into()));
        assert_eq!(failed.0, Reread::Failed("unreadable".into()));
        assert!(failed.1.is_none());
    }

    #[test]
    fn refusals_of_the_secret_are_told_from_other_failures() {
        let refused = |status| TokenFailure::Refused {
            status,
            description: String::new(),
        };
        assert!(refused_secret(&refused(401)));
        assert!(refused_secret(&refused(400)));
        assert!(!refused_secret(&refused(503)));
        assert!(!refused_secret(&TokenFailure::NoSecret));
    }
}
