//! The API client's TLS: which roots it trusts (the Mozilla roots built in, plus `api.ca_file`
//! for a private CA or a TLS-inspecting proxy), and why a server's certificate was refused,
//! read from the typed rustls error in the chain. A refused certificate is not retried: the
//! next attempt would meet the same certificate.

use std::error::Error;
use std::path::Path;

use rustls::{CertificateError, Error as TlsError};

use super::errors::{ApiError, SetupCause};

/// Trusts every certificate in the PEM file at `path` besides the built-in roots.
pub fn trust_ca_file(
    builder: reqwest::ClientBuilder,
    path: &Path,
) -> Result<reqwest::ClientBuilder, ApiError> {
    let certificates = ca_certificates("api.ca_file", path).map_err(|err| {
        let what = err.to_string();
        let cause = match err {
            CaFileError::Read { source, .. } => SetupCause::Io(source),
            CaFileError::Certificates { source, .. } => SetupCause::Http(source),
        };
        ApiError::Setup { what, cause }
    })?;
    Ok(certificates
        .into_iter()
        .fold(builder, |builder, certificate| {
            builder.add_root_certificate(certificate)
        }))
}

/// Why the CA file named by `setting` gave no certificates.
#[derive(Debug, thiserror::Error)]
pub enum CaFileError {
    #[error("{setting}: cannot read {path}")]
    Read {
        setting: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{setting}: {path} holds no PEM certificate reqwest reads")]
    Certificates {
        setting: &'static str,
        path: String,
        #[source]
        source: reqwest::Error,
    },
}

/// The certificates in the PEM file at `path`, the value of `setting` (named in the errors).
/// One reader for every client that trusts a private CA: the API's and the OTLP exporters'.
pub fn ca_certificates(
    setting: &'static str,
    path: &Path,
) -> Result<Vec<reqwest::Certificate>, CaFileError> {
    let shown = || path.display().to_string();
    let pem = std::fs::read(path).map_err(|source| CaFileError::Read {
        setting,
        path: shown(),
        source,
    })?;
    reqwest::Certificate::from_pem_bundle(&pem).map_err(|source| CaFileError::Certificates {
        setting,
        path: shown(),
        source,
    })
}

/// Why the API's certificate was refused, when that is what `err` comes down to.
pub fn refused_certificate(err: &(dyn Error + 'static)) -> Option<String> {
    refused_certificate_for(err, "api.ca_file")
}

/// Why a server's certificate was refused, naming `ca_setting` as where a private CA goes.
pub fn refused_certificate_for(err: &(dyn Error + 'static), ca_setting: &str) -> Option<String> {
    let mut next = Some(err);
    while let Some(err) = next {
        if let Some(tls) = err.downcast_ref::<TlsError>() {
            return describe(tls, ca_setting);
        }
        // io::Error's `source()` skips the error it wraps (and the client nests two of them):
        // look inside it by hand.
        next = match err.downcast_ref::<std::io::Error>() {
            Some(io) => io.get_ref().map(|inner| inner as &(dyn Error + 'static)),
            None => err.source(),
        };
    }
    None
}

fn describe(err: &TlsError, ca_setting: &str) -> Option<String> {
    let TlsError::InvalidCertificate(why) = err else {
        return None;
    };
    let date = |time: &rustls_pki_types::UnixTime| {
        chrono::DateTime::from_timestamp(time.as_secs() as i64, 0)
            .map(|at| at.format("%Y-%m-%d %H:%M UTC").to_string())
            .unwrap_or_else(|| format!("{} s after the epoch", time.as_secs()))
    };
    let text = match why {
        CertificateError::NotValidForName => {
            "the server's certificate is not valid for the host name in the URL".to_string()
        }
        CertificateError::NotValidForNameContext { presented, .. } => format!(
            "the server's certificate is not valid for the host name in the URL (it names {})",
            if presented.is_empty() {
                "no host".to_string()
            } else {
                presented
                    .iter()
                    .map(|name| bare_name(name))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        ),
        CertificateError::Expired => "the server's certificate has expired".to_string(),
        CertificateError::ExpiredContext { not_after, .. } => format!(
            "the server's certificate has expired (it was valid until {})",
            date(not_after)
        ),
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            "the server's certificate is not valid yet (is this host's clock right?)".to_string()
        }
        CertificateError::UnknownIssuer => format!("the server's certificate is not signed by a CA mde-watch trusts (the Mozilla roots built in, and {ca_setting}: set it to your private CA's certificate)"),
        other => format!("the server's certificate was refused: {other}"),
    };
    Some(text)
}

/// rustls presents the certificate's names as webpki writes them, `DnsName("host")` or
/// `IpAddress(10.0.0.1)`: the name alone reads better in a sentence.
fn bare_name(presented: &str) -> &str {
    presented
        .split_once('(')
        .and_then(|(_, rest)| rest.strip_suffix(')'))
        .map_or(presented, |inner| inner.trim_matches('"'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::says;

    #[test]
    fn the_reason_is_found_inside_an_io_error() {
        let tls = TlsError::InvalidCertificate(CertificateError::UnknownIssuer);
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, tls);
        let io = std::io::Error::other(io);
        let text = refused_certificate(&io).unwrap();
        says(&text, "not signed by a CA");
        let expired = TlsError::InvalidCertificate(CertificateError::ExpiredContext {
            time: rustls_pki_types::UnixTime::since_unix_epoch(std::time::Duration::from_secs(
                1_800_000_000,
            )),
            not_after: rustls_pki_types::UnixTime::since_unix_epoch(
                std::time::Duration::from_secs(1_700_000_000),
            ),
        });
        assert_eq!(
            refused_certificate(&expired).unwrap(),
            "the server's certificate has expired (it was valid until 2023-11-14 22:13 UTC)"
        );
        assert_eq!(bare_name("DnsName(\"wrong.example\")"), "wrong.example");
        assert_eq!(bare_name("IpAddress(10.0.0.1)"), "10.0.0.1");
        assert_eq!(bare_name("plain.example"), "plain.example");
        let other = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert_eq!(refused_certificate(&other), None);
        assert_eq!(refused_certificate(&TlsError::HandshakeNotComplete), None);
    }

    #[test]
    fn a_ca_file_error_names_its_setting_and_path() {
        let missing = Path::new("/nonexistent/ca.pem");
        let err = ca_certificates("telemetry.otlp_ca_file", missing).unwrap_err();
        assert_eq!(
            err.to_string(),
            "telemetry.otlp_ca_file: cannot read /nonexistent/ca.pem"
        );
        let dir = tempfile::tempdir().unwrap();
        let broken = dir.path().join("ca.pem");
        std::fs::write(&broken, "-----BEGIN CERTIFICATE-----\nnot base64!\n").unwrap();
        let err = ca_certificates("api.ca_file", &broken).unwrap_err();
        says(&err.to_string(), "api.ca_file: ");
        says(&err.to_string(), "holds no PEM certificate reqwest reads");
    }
}
