//! The four ways to reach a syslog receiver. TLS uses rustls with hostname verification on,
//! trusting the given CA file (or the public web roots), with an optional client certificate.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpStream, UdpSocket, UnixDatagram, UnixStream};
use tokio_rustls::client::TlsStream;

use super::settings::{SyslogSettings, SyslogTransport};
use crate::sinks::{Doing, Failure};

pub enum Connection {
    Udp(UdpSocket),
    Tcp(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    UnixDatagram(UnixDatagram),
    UnixStream(UnixStream),
}

impl Connection {
    pub async fn open(config: &SyslogSettings) -> Result<Connection, Failure> {
        let address = config.address.as_str();
        match config.transport {
            SyslogTransport::Udp => {
                let bind = if address.starts_with('[') {
                    "[::]:0"
                } else {
                    "0.0.0.0:0"
                };
                let socket = UdpSocket::bind(bind)
                    .await
                    .doing(|| "cannot open a UDP socket")?;
                socket
                    .connect(address)
                    .await
                    .doing(|| format!("cannot resolve {address}"))?;
                Ok(Connection::Udp(socket))
            }
            SyslogTransport::Tcp => {
                let stream = TcpStream::connect(address)
                    .await
                    .doing(|| format!("cannot connect to {address}"))?;
                let _ = stream.set_nodelay(true);
                Ok(Connection::Tcp(stream))
            }
            SyslogTransport::Tls => {
                let connector = tokio_rustls::TlsConnector::from(Arc::new(tls_config(config)?));
                let host = config.server_name.clone().unwrap_or_else(|| {
                    address
                        .rsplit_once(':')
                        .map_or(address, |(h, _)| h)
                        .trim_matches(['[', ']'])
                        .to_string()
                });
                let server_name = ServerName::try_from(host.clone()).map_err(|err| {
                    Failure::plain(format!("'{host}' is not a server name ({err})"))
                })?;
                let stream = TcpStream::connect(address)
                    .await
                    .doing(|| format!("cannot connect to {address}"))?;
                let _ = stream.set_nodelay(true);
                let tls = connector
                    .connect(server_name, stream)
                    .await
                    .doing(|| format!("TLS handshake with {address} ({host}) failed"))?;
                Ok(Connection::Tls(Box::new(tls)))
            }
            SyslogTransport::Unix => {
                // /dev/log and rsyslog's imuxsock are datagram sockets; fall back to a stream.
                let socket = UnixDatagram::unbound().doing(|| "cannot open a unix socket")?;
                match socket.connect(address) {
                    Ok(()) => Ok(Connection::UnixDatagram(socket)),
                    Err(_) => UnixStream::connect(address)
                        .await
                        .map(Connection::UnixStream)
                        .doing(|| format!("cannot connect to unix socket {address}")),
                }
            }
        }
    }

    pub async fn write_stream(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Connection::Tcp(stream) => stream.write_all(bytes).await,
            Connection::Tls(stream) => {
                stream.write_all(bytes).await?;
                stream.flush().await
            }
            Connection::UnixStream(stream) => stream.write_all(bytes).await,
            Connection::Udp(_) | Connection::UnixDatagram(_) => {
                Err(std::io::Error::other("not a stream transport"))
            }
        }
    }

    pub async fn send_datagram(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Connection::Udp(socket) => socket.send(bytes).await.map(|_| ()),
            Connection::UnixDatagram(socket) => socket.send(bytes).await.map(|_| ()),
            Connection::UnixStream(stream) => {
                stream.write_all(bytes).await?;
                stream.write_all(b"\n").await
            }
            Connection::Tcp(_) | Connection::Tls(_) => {
                Err(std::io::Error::other("not a datagram transport"))
            }
        }
    }

    pub async fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Connection::Tcp(stream) => stream.flush().await,
            Connection::Tls(stream) => stream.flush().await,
            Connection::UnixStream(stream) => stream.flush().await,
            Connection::Udp(_) | Connection::UnixDatagram(_) => Ok(()),
        }
    }
}

/// rustls refuses X.509 v1 certificates; webpki says why inside rustls's error.
fn is_x509_v1(err: &rustls::Error) -> bool {
    let rustls::Error::InvalidCertificate(rustls::CertificateError::Other(other)) = err else {
        return false;
    };
    matches!(
        other.0.downcast_ref::<webpki::Error>(),
        Some(webpki::Error::UnsupportedCertVersion)
    )
}

fn tls_config(config: &SyslogSettings) -> Result<rustls::ClientConfig, Failure> {
    let mut roots = rustls::RootCertStore::empty();
    match &config.ca_file {
        Some(path) => {
            let shown = path.display();
            for cert in CertificateDer::pem_file_iter(path).doing(|| format!("ca_file {shown}"))? {
                let cert = cert.doing(|| format!("ca_file {shown}"))?;
                roots
                    .add(cert)
                    .doing(|| format!("ca_file {shown}: a certificate is refused"))?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .doing(|| "TLS setup")?
        .with_root_certificates(roots);
    match (&config.cert_file, &config.key_file) {
        (Some(cert_file), Some(key_file)) => {
            let chain: Result<Vec<_>, _> = CertificateDer::pem_file_iter(cert_file)
                .doing(|| format!("cert_file {}", cert_file.display()))?
                .collect();
            let chain = chain.doing(|| format!("cert_file {}", cert_file.display()))?;
            let key = PrivateKeyDer::from_pem_file(key_file)
                .doing(|| format!("key_file {}", key_file.display()))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| {
                    let hint = if is_x509_v1(&e) {
                        " (an X.509 v1 certificate: reissue it as v3, e.g. with an extension such as extendedKeyUsage=clientAuth)"
                    } else {
                        ""
                    };
                    Failure::new(
                        format!(
                            "client certificate {} with key {}{hint}",
                            cert_file.display(),
                            key_file.display()
                        ),
                        e,
                    )
                })
        }
        _ => Ok(builder.with_no_client_auth()),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::process::Command;

    use super::*;
    use crate::sinks::syslog::frame::Framing;
    use crate::sinks::syslog::settings::SyslogProtocol;

    fn openssl(dir: &Path, args: &[&str]) {
        let status = Command::new("openssl")
            .current_dir(dir)
            .args(args)
            .output()
            .expect("openssl runs");
        assert!(status.status.success(), "openssl {args:?}: {status:?}");
    }

    #[test]
    fn an_x509_v1_client_certificate_is_named_with_its_fix() {
        let dir = tempfile::tempdir().unwrap();
        let subject = ["-subj", "/CN=client"];
        let request = [
            "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "k.pem", "-out", "r.csr",
        ];
        openssl(dir.path(), &[&request[..], &subject[..]].concat());
        // `x509 -req` without extensions makes a version 1 certificate.
        openssl(
            dir.path(),
            &[
                "x509", "-req", "-in", "r.csr", "-signkey", "k.pem", "-out", "c.pem",
            ],
        );
        let settings = SyslogSettings {
            address: "127.0.0.1:6514".into(),
            transport: SyslogTransport::Tls,
            framing: Framing::OctetCounting,
            protocol: SyslogProtocol::Rfc5424,
            facility: 20,
            ca_file: None,
            cert_file: Some(dir.path().join("c.pem")),
            key_file: Some(dir.path().join("k.pem")),
            server_name: None,
            max_message: 8192,
        };
        let Err(failure) = tls_config(&settings) else {
            panic!("a v1 client certificate was taken");
        };
        assert!(failure.doing.contains("reissue it as v3"), "{failure}");
        assert!(matches!(
            failure.cause.as_deref(),
            Some(crate::sinks::Cause::Tls(_))
        ));
    }
}
