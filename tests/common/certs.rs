//! Test certificates made with the openssl command (tests/install-deps.sh installs it): a CA and
//! the certificates it issues, for a name and a validity the test chooses, so a TLS client can
//! be shown a good certificate, one for another name, and an expired one.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A CA's certificate and key in `dir`.
pub struct TestCa {
    dir: PathBuf,
    pub pem: PathBuf,
}

/// A certificate and its key, both PEM files.
pub struct Issued {
    pub cert: PathBuf,
    pub key: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let status = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl runs (tests/install-deps.sh installs it)");
    assert!(status.success(), "openssl {args:?}");
}

impl TestCa {
    pub fn new(dir: &Path) -> TestCa {
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=mde-watch test CA",
            ],
        );
        TestCa {
            dir: dir.to_path_buf(),
            pem: dir.join("ca.pem"),
        }
    }

    /// A key and a certificate signed by the CA, valid for `days` from now (negative: it
    /// expired that long ago). The extensions also make it X.509 v3: rustls refuses v1.
    pub fn issue(&self, name: &str, subject: &str, extensions: &str, days: i32) -> Issued {
        let (key, csr, pem, ext) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.pem"),
            format!("{name}.ext"),
        );
        std::fs::write(self.dir.join(&ext), extensions).unwrap();
        openssl(
            &self.dir,
            &[
                "req", "-newkey", "rsa:2048", "-nodes", "-keyout", &key, "-out", &csr, "-subj",
                subject,
            ],
        );
        let days = days.to_string();
        openssl(
            &self.dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &pem,
                "-days",
                &days,
                "-extfile",
                &ext,
            ],
        );
        Issued {
            cert: self.dir.join(pem),
            key: self.dir.join(key),
        }
    }

    /// A server certificate for `localhost` and 127.0.0.1.
    pub fn server(&self, name: &str, days: i32) -> Issued {
        self.issue(
            name,
            "/CN=localhost",
            "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
            days,
        )
    }
}
