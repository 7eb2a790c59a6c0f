//! Certificate credentials: the app proves itself with a JWT signed by its certificate's key
//! (a client assertion) instead of a client secret. The certificate (PEM) gives the thumbprint
//! the token endpoint looks the app's key up by (`x5t`, SHA-1, or `x5t#S256`), its validity,
//! and its public key, which is checked against the private key before any request. Pure:
//! bytes and a clock in, a signed assertion out; the private key never leaves [`Signer`] and
//! never reaches a `Debug` or an error.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, NaiveDate, Utc};
use ring::signature::{self, RsaKeyPair};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// How an assertion is signed and how it names the certificate. Microsoft's current page uses
/// PS256 with the SHA-256 thumbprint (`x5t#S256`); older revisions, and many libraries, RS256
/// with the SHA-1 one (`x5t`). Entra ID accepts both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Algorithm {
    #[default]
    Ps256,
    Rs256,
}

impl Algorithm {
    pub fn parse(name: &str) -> Option<Algorithm> {
        match name {
            "PS256" => Some(Algorithm::Ps256),
            "RS256" => Some(Algorithm::Rs256),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Ps256 => "PS256",
            Algorithm::Rs256 => "RS256",
        }
    }
}

/// How long an assertion is good for: Microsoft's examples use ten minutes at most.
pub const ASSERTION_LIFETIME_SECS: i64 = 600;

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum CertificateError {
    #[error("not a PEM certificate ({0})")]
    NotPem(String),
    #[error("the certificate cannot be read: {0}")]
    Der(&'static str),
    #[error("not a PEM private key (PKCS#8 \"PRIVATE KEY\" or PKCS#1 \"RSA PRIVATE KEY\")")]
    NotKey,
    #[error("the private key is not an RSA key ring can sign with: {0}")]
    Key(String),
    #[error("the private key does not belong to the certificate (thumbprint {thumbprint})")]
    Mismatch { thumbprint: String },
    #[error("signing failed")]
    Sign,
}

/// The public facts of the app's certificate.
#[derive(Clone, PartialEq, Eq)]
pub struct Certificate {
    pub der: Vec<u8>,
    /// Base64url of the SHA-1 of the DER: the `x5t` header.
    pub x5t: String,
    /// Base64url of the SHA-256 of the DER: the `x5t#S256` header.
    pub x5t_s256: String,
    /// Upper-case hex SHA-1, as the Azure portal shows it.
    pub thumbprint: String,
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
    /// The RSA public key (PKCS#1 DER), from the SubjectPublicKeyInfo.
    pub public_key: Vec<u8>,
}

impl fmt::Debug for Certificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificate")
            .field("thumbprint", &self.thumbprint)
            .field("not_after", &self.not_after)
            .finish()
    }
}

impl Certificate {
    pub fn from_pem(pem: &[u8]) -> Result<Certificate, CertificateError> {
        let der = CertificateDer::from_pem_slice(pem)
            .map_err(|err| CertificateError::NotPem(err.to_string()))?;
        Certificate::from_der(der.as_ref())
    }

    pub fn from_der(der: &[u8]) -> Result<Certificate, CertificateError> {
        let facts = x509::read(der)?;
        let sha1 = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, der);
        let sha256 = ring::digest::digest(&ring::digest::SHA256, der);
        Ok(Certificate {
            der: der.to_vec(),
            x5t: URL_SAFE_NO_PAD.encode(sha1.as_ref()),
            x5t_s256: URL_SAFE_NO_PAD.encode(sha256.as_ref()),
            thumbprint: sha1.as_ref().iter().map(|b| format!("{b:02X}")).collect(),
            not_before: facts.not_before,
            not_after: facts.not_after,
            public_key: facts.public_key,
        })
    }

    /// Whether `signature` over `message` was made by this certificate's key.
    pub fn verifies(&self, algorithm: Algorithm, message: &[u8], signature: &[u8]) -> bool {
        let parameters: &dyn signature::VerificationAlgorithm = match algorithm {
            Algorithm::Ps256 => &signature::RSA_PSS_2048_8192_SHA256,
            Algorithm::Rs256 => &signature::RSA_PKCS1_2048_8192_SHA256,
        };
        signature::UnparsedPublicKey::new(parameters, &self.public_key)
            .verify(message, signature)
            .is_ok()
    }
}

/// The app's private key, able to sign and nothing else.
pub struct Signer {
    key: RsaKeyPair,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Signer(<private key>)")
    }
}

impl Signer {
    /// Reads a PEM private key and checks that it belongs to `certificate`.
    pub fn from_pem(pem: &[u8], certificate: &Certificate) -> Result<Signer, CertificateError> {
        let key = match PrivateKeyDer::from_pem_slice(pem).map_err(|_| CertificateError::NotKey)? {
            PrivateKeyDer::Pkcs8(der) => RsaKeyPair::from_pkcs8(der.secret_pkcs8_der()),
            PrivateKeyDer::Pkcs1(der) => RsaKeyPair::from_der(der.secret_pkcs1_der()),
            _ => return Err(CertificateError::Key("not an RSA key".into())),
        }
        .map_err(|err| CertificateError::Key(err.to_string()))?;
        let signer = Signer { key };
        let probe = b"mde-watch: does this key belong to the certificate?";
        if !certificate.verifies(
            Algorithm::Rs256,
            probe,
            &signer.sign(Algorithm::Rs256, probe)?,
        ) {
            return Err(CertificateError::Mismatch {
                thumbprint: certificate.thumbprint.clone(),
            });
        }
        Ok(signer)
    }

    fn sign(&self, algorithm: Algorithm, message: &[u8]) -> Result<Vec<u8>, CertificateError> {
        let mut signature = vec![0; self.key.public().modulus_len()];
        let padding: &dyn signature::RsaEncoding = match algorithm {
            Algorithm::Ps256 => &signature::RSA_PSS_SHA256,
            Algorithm::Rs256 => &signature::RSA_PKCS1_SHA256,
        };
        self.key
            .sign(
                padding,
                &ring::rand::SystemRandom::new(),
                message,
                &mut signature,
            )
            .map_err(|_| CertificateError::Sign)?;
        Ok(signature)
    }
}

/// A client assertion for `client_id` at `token_url`, valid from `now` for
/// [`ASSERTION_LIFETIME_SECS`]; `jti` must be unique per assertion.
pub fn assertion(
    algorithm: Algorithm,
    signer: &Signer,
    certificate: &Certificate,
    client_id: &str,
    token_url: &str,
    now: DateTime<Utc>,
    jti: &str,
) -> Result<String, CertificateError> {
    let header = match algorithm {
        Algorithm::Ps256 => {
            serde_json::json!({ "alg": "PS256", "typ": "JWT", "x5t#S256": certificate.x5t_s256 })
        }
        Algorithm::Rs256 => {
            serde_json::json!({ "alg": "RS256", "typ": "JWT", "x5t": certificate.x5t })
        }
    };
    let issued = now.timestamp();
    let claims = serde_json::json!({
        "aud": token_url,
        "iss": client_id,
        "sub": client_id,
        "jti": jti,
        "nbf": issued,
        "iat": issued,
        "exp": issued + ASSERTION_LIFETIME_SECS,
    });
    let mut jwt = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = signer.sign(algorithm, jwt.as_bytes())?;
    jwt.push('.');
    jwt.push_str(&URL_SAFE_NO_PAD.encode(signature));
    Ok(jwt)
}

/// The parts of a client assertion, for the emulator's token endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedAssertion {
    pub header: serde_json::Value,
    pub claims: serde_json::Value,
    pub signed: String,
    pub signature: Vec<u8>,
}

pub fn parse_assertion(jwt: &str) -> Option<ParsedAssertion> {
    let mut parts = jwt.split('.');
    let (header, claims, signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let json = |part: &str| {
        URL_SAFE_NO_PAD
            .decode(part)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
    };
    Some(ParsedAssertion {
        header: json(header)?,
        claims: json(claims)?,
        signed: format!("{header}.{claims}"),
        signature: URL_SAFE_NO_PAD.decode(signature).ok()?,
    })
}

/// Just enough DER to read a certificate's validity and public key.
mod x509 {
    use super::*;

    pub struct Facts {
        pub not_before: DateTime<Utc>,
        pub not_after: DateTime<Utc>,
        pub public_key: Vec<u8>,
    }

    /// One DER element: its tag, its content, and what follows it.
    fn element(input: &[u8]) -> Result<(u8, &[u8], &[u8]), CertificateError> {
        let short = CertificateError::Der("truncated");
        let (&tag, rest) = input.split_first().ok_or(short.clone())?;
        let (&first, rest) = rest.split_first().ok_or(short.clone())?;
        let (length, rest) = if first < 0x80 {
            (usize::from(first), rest)
        } else {
            let count = usize::from(first & 0x7f);
            if count == 0 || count > 4 || rest.len() < count {
                return Err(CertificateError::Der("bad length"));
            }
            let length = rest[..count]
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
            (length, &rest[count..])
        };
        if rest.len() < length {
            return Err(short);
        }
        Ok((tag, &rest[..length], &rest[length..]))
    }

    fn expect(input: &[u8], tag: u8) -> Result<(&[u8], &[u8]), CertificateError> {
        let (found, content, rest) = element(input)?;
        if found != tag {
            return Err(CertificateError::Der("unexpected element"));
        }
        Ok((content, rest))
    }

    fn time(tag: u8, text: &[u8]) -> Result<DateTime<Utc>, CertificateError> {
        let bad = CertificateError::Der("bad time");
        let text = std::str::from_utf8(text).map_err(|_| bad.clone())?;
        let digits = text.strip_suffix('Z').ok_or(bad.clone())?;
        let number = |range: std::ops::Range<usize>| -> Result<u32, CertificateError> {
            digits
                .get(range)
                .and_then(|d| d.parse().ok())
                .ok_or(bad.clone())
        };
        // UTCTime: YYMMDDHHMMSS (years 1950-2049); GeneralizedTime: YYYYMMDDHHMMSS.
        let (year, at) = match (tag, digits.len()) {
            (0x17, 12) => {
                let yy = number(0..2)? as i32;
                (if yy < 50 { 2000 + yy } else { 1900 + yy }, 2)
            }
            (0x18, 14) => (number(0..4)? as i32, 4),
            _ => return Err(bad),
        };
        NaiveDate::from_ymd_opt(year, number(at..at + 2)?, number(at + 2..at + 4)?)
            .and_then(|day| {
                day.and_hms_opt(
                    number(at + 4..at + 6).ok()?,
                    number(at + 6..at + 8).ok()?,
                    number(at + 8..at + 10).ok()?,
                )
            })
            .map(|t| t.and_utc())
            .ok_or(bad)
    }

    pub fn read(der: &[u8]) -> Result<Facts, CertificateError> {
        const SEQUENCE: u8 = 0x30;
        let (certificate, _) = expect(der, SEQUENCE)?;
        let (tbs, _) = expect(certificate, SEQUENCE)?;
        let mut rest = tbs;
        // version [0] is optional
        if rest.first() == Some(&0xa0) {
            rest = element(rest)?.2;
        }
        let rest = element(rest)?.2; // serialNumber
        let rest = element(rest)?.2; // signature algorithm
        let rest = element(rest)?.2; // issuer
        let (validity, rest) = expect(rest, SEQUENCE)?;
        let (tag, start, after) = element(validity)?;
        let not_before = time(tag, start)?;
        let (tag, end, _) = element(after)?;
        let not_after = time(tag, end)?;
        let rest = element(rest)?.2; // subject
        let (spki, _) = expect(rest, SEQUENCE)?;
        let (_, key) = expect(spki, SEQUENCE)?; // algorithm
        let (bits, _) = expect(key, 0x03)?;
        let (&unused, public_key) = bits
            .split_first()
            .ok_or(CertificateError::Der("empty key"))?;
        if unused != 0 {
            return Err(CertificateError::Der("bad key bits"));
        }
        Ok(Facts {
            not_before,
            not_after,
            public_key: public_key.to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CERT: &[u8] = include_bytes!("../../tests/fixtures/cert/app.pem");
    const KEY: &[u8] = include_bytes!("../../tests/fixtures/cert/app.key");
    const EXPIRED: &[u8] = include_bytes!("../../tests/fixtures/cert/expired.pem");
    const OTHER_KEY: &[u8] = include_bytes!("../../tests/fixtures/cert/other.key");

    #[test]
    fn reads_the_certificate_and_signs_an_assertion_it_verifies() {
        let cert = Certificate::from_pem(CERT).unwrap();
        // openssl x509 -in tests/fixtures/cert/app.pem -noout -fingerprint -sha1
        assert_eq!(cert.thumbprint, "C7F2D3B1FE75B147475F82C817290A986386928A");
        assert_eq!(cert.not_after.to_rfc3339(), "2126-01-01T00:00:00+00:00");
        assert_eq!(cert.not_before.to_rfc3339(), "2026-01-01T00:00:00+00:00");
        let signer = Signer::from_pem(KEY, &cert).unwrap();
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let jwt = assertion(
            Algorithm::Rs256,
            &signer,
            &cert,
            "client-1",
            "https://login/t/oauth2/v2.0/token",
            now,
            "j-1",
        )
        .unwrap();
        let parsed = parse_assertion(&jwt).unwrap();
        assert_eq!(parsed.header["x5t"], cert.x5t.as_str());
        assert_eq!(parsed.header["alg"], "RS256");
        let pss = parse_assertion(
            &assertion(
                Algorithm::Ps256,
                &signer,
                &cert,
                "client-1",
                "aud",
                now,
                "j-2",
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(pss.header["x5t#S256"], cert.x5t_s256.as_str());
        assert!(cert.verifies(Algorithm::Ps256, pss.signed.as_bytes(), &pss.signature));
        assert!(!cert.verifies(Algorithm::Rs256, pss.signed.as_bytes(), &pss.signature));
        assert_eq!(parsed.claims["iss"], "client-1");
        assert_eq!(parsed.claims["sub"], "client-1");
        assert_eq!(parsed.claims["aud"], "https://login/t/oauth2/v2.0/token");
        assert_eq!(parsed.claims["exp"], 1_800_000_600);
        assert!(cert.verifies(
            Algorithm::Rs256,
            parsed.signed.as_bytes(),
            &parsed.signature
        ));
        assert!(!cert.verifies(Algorithm::Rs256, b"something else", &parsed.signature));
        assert!(
            !format!("{signer:?}").contains("BEGIN"),
            "the key is never shown"
        );
    }

    #[test]
    fn a_key_of_another_certificate_and_an_expired_one_are_told_apart() {
        let cert = Certificate::from_pem(CERT).unwrap();
        let err = Signer::from_pem(OTHER_KEY, &cert).unwrap_err();
        assert!(matches!(err, CertificateError::Mismatch { .. }), "{err}");
        let expired = Certificate::from_pem(EXPIRED).unwrap();
        assert_eq!(expired.not_after.to_rfc3339(), "2025-01-01T00:00:00+00:00");
        assert!(matches!(
            Certificate::from_pem(b"not a certificate"),
            Err(CertificateError::NotPem(_))
        ));
        assert!(matches!(
            Signer::from_pem(CERT, &cert),
            Err(CertificateError::NotKey)
        ));
    }
}
