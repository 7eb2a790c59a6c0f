//! Secure by default: a credential never crosses a network in clear, a secret file is private to
//! its owner, and alerts sent in clear are said. The verdicts are `crate::exposure`'s; this file
//! turns them into problems and warnings named by their keys.

use std::path::{Path, PathBuf};

use super::Checker;
use crate::exposure::{self, Finding, UrlReach};

impl Checker {
    fn finding(&mut self, finding: Option<Finding>) {
        match finding {
            Some(Finding::Problem(text)) => self.problem(text),
            Some(Finding::Warning(text)) => self.warnings.push(text),
            None => {}
        }
    }

    /// A file holding a secret or a private key, at `key`.
    pub(super) fn secret_file(&mut self, key: &str, path: &Path) {
        let finding = exposure::secret_file_on_disk(key, path);
        self.finding(finding);
    }

    /// `url` at `key` carries `what` (a secret, tokens): `http://` is for loopback only, unless
    /// `allow_insecure` (a lab), which is said at every start.
    fn credential_url(&mut self, key: &str, url: &str, allow_insecure: bool, what: &str) {
        let Some(UrlReach::InClear { host }) = exposure::url_reach(url) else {
            return;
        };
        if allow_insecure {
            self.warnings.push(format!(
                "INSECURE: {key} '{url}' is http:// to {host}: {what} travels in clear (allowed by api.allow_insecure_http = true; for a lab only)"
            ));
        } else {
            self.problem(format!(
                "{key}: '{url}' would send {what} to {host} in clear; use https://, or set allow_insecure_http = true in [api] for a lab"
            ));
        }
    }

    /// The API and login hosts: the login host gets the app's proof (its secret, or an
    /// assertion signed with its certificate's key), the API host every bearer token.
    pub(super) fn api_hosts_in_clear(
        &mut self,
        (api_base, login_base): (&str, &str),
        allow_insecure: bool,
        certificate: bool,
    ) {
        let proof = if certificate {
            "the app's signed client assertion"
        } else {
            "the client secret"
        };
        self.credential_url("api.login_url", login_base, allow_insecure, proof);
        self.credential_url(
            "api.base_url",
            api_base,
            allow_insecure,
            "every bearer token",
        );
    }

    /// OTLP over `http://` to another host: metrics and spans in clear, said and allowed.
    pub(super) fn telemetry_url(&mut self, url: &str) {
        if let Some(UrlReach::InClear { host }) = exposure::url_reach(url) {
            self.warnings.push(format!(
                "telemetry.otlp_endpoint: metrics and traces (whose spans name watched entries) go to {host} over http, in clear; https:// encrypts them"
            ));
        }
    }

    /// The text of the secret file at `key`: its mode checked like any secret file's, a file
    /// that cannot be read named (never its content).
    pub(super) fn secret_text(&mut self, key: &str, path: &Path) -> Option<String> {
        self.secret_file(key, path);
        std::fs::read_to_string(path)
            .map_err(|err| self.problem(format!("{key}: cannot read {}: {err}", path.display())))
            .ok()
    }

    /// `telemetry.otlp_headers_file`: private like any secret file, every line a header, and never
    /// sent in clear (the endpoint's `http://` is for this host only, when it carries them).
    pub(super) fn otlp_headers(
        &mut self,
        path: &Path,
        endpoint: Option<&str>,
    ) -> Vec<(String, crate::config::secret::Secret)> {
        const KEY: &str = "telemetry.otlp_headers_file";
        let shown = path.display().to_string();
        let Some(text) = self.secret_text(KEY, path) else {
            return Vec::new();
        };
        let headers = match super::super::headers::parse(&text) {
            Ok(headers) => headers,
            Err(problems) => {
                for problem in problems {
                    self.problem(format!("{KEY}: {shown} {problem}"));
                }
                return Vec::new();
            }
        };
        match endpoint.map(exposure::url_reach) {
            None => self.warnings.push(format!(
                "{KEY} is set but telemetry.otlp_endpoint is not: it is not used"
            )),
            Some(Some(UrlReach::InClear { host })) => self.problem(format!(
                "{KEY}: its headers would go to {host} in clear (telemetry.otlp_endpoint is http://); use https://"
            )),
            Some(_) => {}
        }
        headers
    }

    /// A CA file (`api.ca_file`, `telemetry.otlp_ca_file`): read now so a wrong path or a file without a certificate is said at `check`.
    pub(super) fn ca_file(&mut self, key: &str, written: Option<&str>) -> Option<PathBuf> {
        use rustls_pki_types::pem::PemObject;
        let path = self.path(written?);
        let shown = path.display().to_string();
        let certificates = match rustls_pki_types::CertificateDer::pem_file_iter(&path) {
            Ok(iter) => iter.collect::<Result<Vec<_>, _>>(),
            Err(err) => {
                self.problem(format!("{key}: cannot read {shown}: {err}"));
                return None;
            }
        };
        match certificates {
            Ok(certificates) if !certificates.is_empty() => Some(path),
            Ok(_) => {
                self.problem(format!(
                    "{key}: {shown} holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
                ));
                None
            }
            Err(err) => {
                self.problem(format!("{key}: {shown}: {err}"));
                None
            }
        }
    }
}
