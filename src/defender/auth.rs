//! OAuth 2.0 client credentials against the cloud's login host (docs/microsoft-api.md §2). The token is
//! cached and refreshed ahead of its expiry; `expires_in` may be a number (v2) or a string (v1).
//! The secret is only ever put in the form body of the token request; a secret or certificate
//! the endpoint refuses is read again from its files (`rotation.rs`).

use std::sync::{Arc, PoisonError};
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::errors::{backoff, ApiError, TokenFailure};
use super::lenient;
use super::rotation::{self, CredentialReread, Reread};
use crate::config::{
    ApiConfig, CertificateCredential, CertificateFiles, Secret, SecretFile, TokenEndpoint,
};
use crate::errors::Chain;

/// A token as the endpoint returned it.
#[derive(Debug, PartialEq)]
pub struct IssuedToken {
    pub access_token: String,
    pub expires_in: Duration,
}

#[derive(Deserialize)]
struct TokenBody {
    access_token: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    expires_in: Option<i64>,
}

#[derive(Deserialize, Default)]
struct TokenErrorBody {
    error: Option<String>,
    error_description: Option<String>,
}

/// Lifetime assumed when the response omits `expires_in`: the short end of Entra's 60–90 min.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(3599);

pub fn parse_token_response(body: &[u8]) -> Result<IssuedToken, String> {
    let parsed: TokenBody = serde_json::from_slice(body)
        .map_err(|err| format!("token response is not JSON ({err})"))?;
    let access_token = parsed
        .access_token
        .filter(|t| !t.is_empty())
        .ok_or("token response has no access_token")?;
    let expires_in = parsed
        .expires_in
        .filter(|&secs| secs > 0)
        .map(|secs| Duration::from_secs(secs as u64))
        .unwrap_or(DEFAULT_LIFETIME);
    Ok(IssuedToken {
        access_token,
        expires_in,
    })
}

/// The error a token endpoint returned, in one line: `invalid_client: AADSTS7000215: …`.
pub fn describe_token_error(status: u16, body: &[u8]) -> String {
    let parsed: TokenErrorBody = serde_json::from_slice(body).unwrap_or_default();
    let description = parsed
        .error_description
        .as_deref()
        .and_then(|d| d.lines().next())
        .unwrap_or("no description");
    format!(
        "HTTP {status} {}: {description}",
        parsed.error.as_deref().unwrap_or("error")
    )
}

/// When to ask again: `margin` before expiry, but never later than half the lifetime.
pub fn refresh_after(expires_in: Duration, margin: Duration) -> Duration {
    expires_in.saturating_sub(margin.min(expires_in / 2))
}

struct Cached {
    token: Arc<str>,
    refresh_at: Instant,
}

pub struct TokenProvider {
    http: reqwest::Client,
    url: String,
    client_id: String,
    /// The credential in use, replaced when the token endpoint refuses it and its files hold
    /// another (`rotation.rs`): a certificate, else a secret.
    secret: std::sync::Mutex<Option<Secret>>,
    secret_file: Option<SecretFile>,
    certificate: std::sync::Mutex<Option<CertificateCredential>>,
    certificate_files: Option<CertificateFiles>,
    endpoint: TokenEndpoint,
    audience: String,
    margin: Duration,
    max_retries: u32,
    backoff_base: Duration,
    backoff_max: Duration,
    cache: Mutex<Option<Cached>>,
}

impl TokenProvider {
    pub fn new(http: reqwest::Client, api: &ApiConfig) -> TokenProvider {
        let path = match api.token_endpoint {
            TokenEndpoint::V2 => "oauth2/v2.0/token",
            TokenEndpoint::V1 => "oauth2/token",
        };
        let tenant = percent_encoding::utf8_percent_encode(&api.tenant_id, super::cloud::SEGMENT);
        TokenProvider {
            http,
            url: format!("{}/{tenant}/{path}", api.login_base),
            client_id: api.client_id.clone(),
            secret: std::sync::Mutex::new(api.secret.clone()),
            // A certificate proves the app instead: its secret, if any, is never sent.
            secret_file: match api.certificate {
                Some(_) => None,
                None => api.secret_source.as_ref().and_then(SecretFile::of),
            },
            certificate: std::sync::Mutex::new(api.certificate.clone()),
            certificate_files: api.certificate.as_ref().and_then(CertificateFiles::of),
            endpoint: api.token_endpoint,
            audience: api.audience.clone(),
            margin: api.token_refresh_margin,
            max_retries: api.max_retries,
            backoff_base: api.backoff_base,
            backoff_max: api.backoff_max,
            cache: Mutex::new(None),
        }
    }

    pub fn token_url(&self) -> &str {
        &self.url
    }

    /// A valid bearer token, from the cache or freshly issued.
    pub async fn bearer(&self) -> Result<Arc<str>, ApiError> {
        let mut cache = self.cache.lock().await;
        if let Some(cached) = cache.as_ref() {
            if Instant::now() < cached.refresh_at {
                return Ok(cached.token.clone());
            }
        }
        let issued = self.request_with_retries().await?;
        let token: Arc<str> = issued.access_token.into();
        *cache = Some(Cached {
            token: token.clone(),
            refresh_at: Instant::now() + refresh_after(issued.expires_in, self.margin),
        });
        tracing::debug!(
            expires_in_s = issued.expires_in.as_secs(),
            "new access token"
        );
        Ok(token)
    }

    /// Drops `stale` from the cache (after a 401) so the next call fetches a new token. A token
    /// that another caller already replaced is left alone.
    pub async fn invalidate(&self, stale: &Arc<str>) {
        let mut cache = self.cache.lock().await;
        if cache.as_ref().is_some_and(|c| Arc::ptr_eq(&c.token, stale)) {
            *cache = None;
        }
    }

    async fn request_with_retries(&self) -> Result<IssuedToken, ApiError> {
        let mut attempt = 0;
        let mut reread = false;
        loop {
            match self.request_once().await {
                Ok(token) => return Ok(token),
                Err(failure) => {
                    if !reread
                        && rotation::refused_credential(&failure)
                        && self.credential_rotated()
                    {
                        reread = true;
                        continue;
                    }
                    if !failure.retryable() || attempt >= self.max_retries {
                        return Err(ApiError::Token {
                            url: self.url.clone(),
                            cause: failure,
                        });
                    }
                    let wait =
                        backoff(attempt, self.backoff_base, self.backoff_max, rand::random());
                    tracing::warn!(attempt, wait_ms = wait.as_millis() as u64, error = %Chain(&failure), "token request failed; retrying");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
            }
        }
    }

    /// Reads the refused credential's files again: true when they now hold another one, which
    /// replaces the one in use.
    fn credential_rotated(&self) -> bool {
        if let Some(files) = &self.certificate_files {
            let mut in_use = self
                .certificate
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let (outcome, fresh) = rotation::compare(files.read(), |fresh| {
                in_use.as_ref().map(|c| &c.certificate.thumbprint)
                    == Some(&fresh.certificate.thumbprint)
            });
            return adopt(&mut in_use, "certificate", &files.source(), outcome, fresh);
        }
        if let Some(file) = &self.secret_file {
            let mut in_use = self.secret.lock().unwrap_or_else(PoisonError::into_inner);
            let (outcome, fresh) =
                rotation::compare(file.read(), |fresh| in_use.as_ref() == Some(fresh));
            return adopt(&mut in_use, "client secret", file.source(), outcome, fresh);
        }
        false
    }

    /// One token request; the error says whether trying again could help.
    async fn request_once(&self) -> Result<IssuedToken, TokenFailure> {
        let secret = self
            .secret
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let certificate = self
            .certificate
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        // The app proves itself with its certificate's signature, or with its secret.
        let (proof_field, proof) = match (&certificate, &secret) {
            (Some(credential), _) => {
                let jti = format!("{:032x}", rand::random::<u128>());
                let jwt = super::certificate::assertion(
                    credential.algorithm,
                    &credential.signer,
                    &credential.certificate,
                    &self.client_id,
                    &self.url,
                    chrono::Utc::now(),
                    &jti,
                )
                .map_err(TokenFailure::Sign)?;
                ("client_assertion", jwt)
            }
            (None, Some(secret)) => ("client_secret", secret.expose().to_string()),
            (None, None) => return Err(TokenFailure::NoSecret),
        };
        let audience_field = match self.endpoint {
            TokenEndpoint::V2 => (
                "scope",
                format!("{}/.default", self.audience.trim_end_matches('/')),
            ),
            TokenEndpoint::V1 => ("resource", self.audience.clone()),
        };
        let mut form = vec![
            ("grant_type", "client_credentials"),
            ("client_id", self.client_id.as_str()),
            (proof_field, proof.as_str()),
            (audience_field.0, audience_field.1.as_str()),
        ];
        if proof_field == "client_assertion" {
            form.push((
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ));
        }
        let response = self
            .http
            .post(&self.url)
            .form(&form)
            .send()
            .await
            .map_err(|err| match super::tls::refused_certificate(&err) {
                Some(why) => TokenFailure::CertificateRefused {
                    why,
                    cause: err.without_url(),
                },
                None => TokenFailure::Unreachable(err.without_url()),
            })?;
        let status = response.status().as_u16();
        let body = response
            .bytes()
            .await
            .map_err(|err| TokenFailure::BodyCut(err.without_url()))?;
        if status == 200 {
            return parse_token_response(&body).map_err(TokenFailure::BadResponse);
        }
        Err(TokenFailure::Refused {
            status,
            description: describe_token_error(status, &body),
        })
    }
}

/// Says what a re-read gave and puts a different credential in place of the refused one.
fn adopt<C>(
    in_use: &mut Option<C>,
    what: &'static str,
    source: &dyn std::fmt::Display,
    outcome: Reread,
    fresh: Option<C>,
) -> bool {
    CredentialReread {
        what,
        source,
        outcome: &outcome,
    }
    .emit();
    if fresh.is_some() {
        *in_use = fresh;
    }
    outcome == Reread::New
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_number_and_v1_string_lifetimes() {
        let v2 = parse_token_response(
            br#"{"token_type":"Bearer","expires_in":3599,"access_token":"abc"}"#,
        )
        .unwrap();
        assert_eq!(v2.expires_in, Duration::from_secs(3599));
        let v1 = parse_token_response(br#"{"token_type":"Bearer","expires_in":"3600","expires_on":"1790000000","access_token":"abc"}"#).unwrap();
        assert_eq!(v1.expires_in, Duration::from_secs(3600));
        assert!(parse_token_response(br#"{"expires_in":1}"#).is_err());
    }

    #[test]
    fn refreshes_ahead_of_expiry() {
        assert_eq!(
            refresh_after(Duration::from_secs(3599), Duration::from_secs(300)),
            Duration::from_secs(3299)
        );
        // A short-lived token is refreshed at half its life, not immediately.
        assert_eq!(
            refresh_after(Duration::from_secs(60), Duration::from_secs(300)),
            Duration::from_secs(30)
        );
    }

    #[test]
    fn token_errors_keep_the_aadsts_line() {
        let body = br#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.\r\nTrace ID: x"}"#;
        assert_eq!(
            describe_token_error(401, body),
            "HTTP 401 invalid_client: AADSTS7000215: Invalid client secret provided."
        );
    }
}
