//! What can go wrong talking to the API, and how each HTTP answer is classified
//! (docs/microsoft-api.md §9). Classification is pure so it is tested without a server.

use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("token request to {url} failed")]
    Token {
        url: String,
        #[source]
        cause: TokenFailure,
    },
    #[error("401 Unauthorized even with a fresh token ({message})")]
    Unauthorized { message: String },
    #[error(
        "403 Forbidden ({code}): the app registration lacks the {needs} with admin consent, or the \
         token audience is wrong; {message}"
    )]
    Forbidden {
        /// The permission the API needs, as the admin grants it.
        needs: &'static str,
        code: String,
        message: String,
    },
    #[error("400 Bad Request ({code}) for {what}: {message}")]
    BadRequest {
        what: String,
        code: String,
        message: String,
    },
    #[error("gave up on {what} after {attempts} attempts; the last")]
    RetriesExhausted {
        what: String,
        attempts: u32,
        #[source]
        last: Transient,
    },
    /// The server's certificate was refused; retrying would meet the same certificate.
    #[error("TLS: {why}")]
    CertificateRefused {
        why: String,
        #[source]
        cause: reqwest::Error,
    },
    #[error("stopped before {what} completed (shutdown)")]
    Cancelled { what: String },
    #[error("unexpected HTTP {status} ({code}) for {what}: {message}")]
    Unexpected {
        status: u16,
        code: String,
        what: String,
        message: String,
    },
    /// The client could not be set up (its CA file, its proxy).
    #[error("{what}")]
    Setup {
        what: String,
        #[source]
        cause: SetupCause,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum SetupCause {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Http(#[from] reqwest::Error),
}

/// Why one call failed in a way a later try may not: it is retried with backoff.
#[derive(Debug, thiserror::Error)]
pub enum Transient {
    /// The request did not get an answer (connection refused, reset, DNS).
    #[error("request failed")]
    Request(#[source] reqwest::Error),
    #[error("no answer within {0}")]
    TimedOut(String),
    #[error("HTTP {status} ({code})")]
    Status { status: u16, code: String },
    #[error("429 Too Many Requests")]
    Throttled,
    #[error("response body cut short")]
    BodyCut(#[source] reqwest::Error),
    /// A 200 whose body is not the collection it should be (truncated, malformed).
    #[error("response body unreadable")]
    Page(#[source] super::page::PageError),
}

/// Why the token endpoint gave no token.
#[derive(Debug, thiserror::Error)]
pub enum TokenFailure {
    #[error("cannot sign the client assertion")]
    Sign(#[source] super::certificate::CertificateError),
    #[error("no client secret was read (the config was loaded for the store tools)")]
    NoSecret,
    #[error("cannot reach the token endpoint: {why}")]
    CertificateRefused {
        why: String,
        #[source]
        cause: reqwest::Error,
    },
    #[error("cannot reach the token endpoint")]
    Unreachable(#[source] reqwest::Error),
    #[error("token response cut short")]
    BodyCut(#[source] reqwest::Error),
    /// A 200 without a usable token.
    #[error("{0}")]
    BadResponse(String),
    /// The endpoint refused: its AADSTS code and description, with what to check.
    #[error("{description}")]
    Refused { status: u16, description: String },
}

impl TokenFailure {
    /// Whether asking again could help (a server error, a throttle, the network).
    pub fn retryable(&self) -> bool {
        match self {
            TokenFailure::Unreachable(_)
            | TokenFailure::BodyCut(_)
            | TokenFailure::BadResponse(_) => true,
            TokenFailure::Refused { status, .. } => *status >= 500 || *status == 429,
            TokenFailure::Sign(_)
            | TokenFailure::NoSecret
            | TokenFailure::CertificateRefused { .. } => false,
        }
    }
}

/// The error body all MDE APIs use.
#[derive(Debug, Deserialize, Default)]
struct ErrorBody {
    #[serde(default)]
    error: ErrorDetail,
}

#[derive(Debug, Deserialize, Default)]
struct ErrorDetail {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

/// The error code and message from a body, if it has the documented shape.
pub fn error_code_and_message(body: &[u8]) -> (String, String) {
    let parsed: ErrorBody = serde_json::from_slice(body).unwrap_or_default();
    let code = parsed.error.code.unwrap_or_else(|| "no error code".into());
    let message = parsed
        .error
        .message
        .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned());
    (code, message)
}

/// What to do with one HTTP answer.
#[derive(Debug)]
pub enum Verdict {
    /// 200: parse the body.
    Success,
    /// 404 on a watchlist path: the entity has no alerts (older API behaviour, §3).
    NoAlerts,
    /// 429: wait (Retry-After when given) and try again; pauses every call.
    Throttled(Option<Duration>),
    /// 5xx: back off and try again.
    Transient(Transient),
    /// 401: refresh the token once and try again.
    RefreshToken,
    /// Anything that retrying will not fix.
    Fatal(ApiError),
}

/// The permission an app needs to read alerts from `api`.
pub fn permission(api: crate::config::Api) -> &'static str {
    match api {
        crate::config::Api::Defender => {
            "WindowsDefenderATP application permission Alert.Read.All (or delegated Alert.Read)"
        }
        crate::config::Api::Graph => {
            "Microsoft Graph application permission SecurityAlert.Read.All"
        }
    }
}

pub fn classify(
    status: u16,
    retry_after: Option<&str>,
    body: &[u8],
    what: &str,
    api: crate::config::Api,
) -> Verdict {
    match status {
        200..=299 => Verdict::Success,
        404 => Verdict::NoAlerts,
        429 => Verdict::Throttled(retry_after.and_then(parse_retry_after)),
        401 => Verdict::RefreshToken,
        403 => {
            let (code, message) = error_code_and_message(body);
            Verdict::Fatal(ApiError::Forbidden {
                needs: permission(api),
                code,
                message,
            })
        }
        400 => {
            let (code, message) = error_code_and_message(body);
            Verdict::Fatal(ApiError::BadRequest {
                what: what.into(),
                code,
                message,
            })
        }
        500..=599 | 408 => {
            let (code, _) = error_code_and_message(body);
            Verdict::Transient(Transient::Status { status, code })
        }
        other => {
            let (code, message) = error_code_and_message(body);
            Verdict::Fatal(ApiError::Unexpected {
                status: other,
                code,
                what: what.into(),
                message,
            })
        }
    }
}

/// Retry-After in seconds (the form MDE sends); an HTTP-date or garbage gives None (back off).
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let secs: f64 = value.trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(3600.0)))
}

/// Full-jitter exponential backoff: a random wait in [0, min(max, base × 2^attempt)].
pub fn backoff(attempt: u32, base: Duration, max: Duration, unit_random: f64) -> Duration {
    let ceiling = base.saturating_mul(1u32 << attempt.min(16)).min(max);
    ceiling.mul_f64(unit_random.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Api;

    #[test]
    fn statuses_are_classified() {
        assert!(matches!(
            classify(200, None, b"", "x", Api::Defender),
            Verdict::Success
        ));
        assert!(matches!(
            classify(404, None, b"", "x", Api::Defender),
            Verdict::NoAlerts
        ));
        assert!(matches!(
            classify(429, Some("7"), b"", "x", Api::Defender),
            Verdict::Throttled(Some(wait)) if wait == Duration::from_secs(7)
        ));
        assert!(matches!(
            classify(429, None, b"", "x", Api::Defender),
            Verdict::Throttled(None)
        ));
        assert!(matches!(
            classify(401, None, b"", "x", Api::Defender),
            Verdict::RefreshToken
        ));
        assert!(matches!(
            classify(503, None, b"", "x", Api::Defender),
            Verdict::Transient(_)
        ));
        let forbidden = classify(
            403,
            None,
            br#"{"error":{"code":"Forbidden","message":"no role"}}"#,
            "x",
            Api::Defender,
        );
        let Verdict::Fatal(err) = forbidden else {
            panic!("fatal expected")
        };
        assert!(err.to_string().contains("Alert.Read.All"), "{err}");
        let graph = classify(403, None, b"{}", "x", Api::Graph);
        assert!(
            bad_message(graph).contains("SecurityAlert.Read.All"),
            "a 403 from Graph names Graph's permission"
        );
        let bad = classify(
            400,
            None,
            br#"{"error":{"code":"InvalidHashValue","message":"bad"}}"#,
            "file abc",
            Api::Defender,
        );
        assert!(bad_message(bad).contains("InvalidHashValue"));
    }

    fn bad_message(verdict: Verdict) -> String {
        match verdict {
            Verdict::Fatal(err) => err.to_string(),
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn a_call_that_gave_up_shows_its_last_cause_once() {
        let err = ApiError::RetriesExhausted {
            what: "user u1".into(),
            attempts: 4,
            last: Transient::Status {
                status: 503,
                code: "ServiceUnavailable".into(),
            },
        };
        assert_eq!(
            crate::errors::Chain(&err).to_string(),
            "gave up on user u1 after 4 attempts; the last: HTTP 503 (ServiceUnavailable)"
        );
    }

    #[test]
    fn token_failures_say_whether_asking_again_can_help() {
        let refused = |status| TokenFailure::Refused {
            status,
            description: "AADSTS".into(),
        };
        assert!(refused(503).retryable() && refused(429).retryable());
        assert!(!refused(400).retryable() && !refused(401).retryable());
        assert!(!TokenFailure::NoSecret.retryable());
        assert!(TokenFailure::BadResponse("not JSON".into()).retryable());
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let base = Duration::from_millis(500);
        let max = Duration::from_secs(60);
        assert_eq!(backoff(0, base, max, 1.0), base);
        assert_eq!(backoff(3, base, max, 1.0), Duration::from_secs(4));
        assert_eq!(backoff(30, base, max, 1.0), max);
        assert_eq!(backoff(3, base, max, 0.0), Duration::ZERO);
    }

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after(" 30 "), Some(Duration::from_secs(30)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2026 07:28:00 GMT"), None);
        assert_eq!(parse_retry_after("-1"), None);
    }
}
