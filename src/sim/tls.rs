//! HTTPS for the emulator: a listener that hands axum TLS streams, so the API client's TLS path
//! (a private CA through `api.ca_file`, a certificate for another name, an expired one) runs
//! against it in the tests. Handshakes run beside the accept loop: a client that refuses the
//! certificate, or stalls, never holds up the next one.

use std::net::SocketAddr;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// The server's certificate chain and key, both PEM.
#[derive(Debug, Clone)]
pub struct SimTls {
    pub certificate_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
}

impl SimTls {
    fn server_config(&self) -> std::io::Result<rustls::ServerConfig> {
        let invalid = |what: &str, err: &dyn std::fmt::Display| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{what}: {err}"))
        };
        let chain = CertificateDer::pem_slice_iter(&self.certificate_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| invalid("emulator certificate", &err))?;
        let key = PrivateKeyDer::from_pem_slice(&self.key_pem)
            .map_err(|err| invalid("emulator key", &err))?;
        rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|err| invalid("TLS versions", &err))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|err| invalid("emulator certificate", &err))
    }
}

/// Accepts TCP connections and yields those whose TLS handshake completed.
pub struct TlsListener {
    address: SocketAddr,
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    accepting: tokio::task::JoinHandle<()>,
}

impl TlsListener {
    pub fn new(listener: TcpListener, tls: &SimTls) -> std::io::Result<TlsListener> {
        let acceptor = TlsAcceptor::from(Arc::new(tls.server_config()?));
        let address = listener.local_addr()?;
        let (done, ready) = mpsc::channel(64);
        let accepting = tokio::spawn(async move {
            loop {
                let Ok((stream, peer)) = listener.accept().await else {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let (acceptor, done) = (acceptor.clone(), done.clone());
                tokio::spawn(async move {
                    let handshake = tokio::time::timeout(
                        std::time::Duration::from_secs(10),
                        acceptor.accept(stream),
                    );
                    match handshake.await {
                        Ok(Ok(stream)) => {
                            let _ = done.send((stream, peer)).await;
                        }
                        Ok(Err(err)) => {
                            tracing::debug!(%peer, error = %err, "emulator: TLS handshake failed")
                        }
                        Err(_) => tracing::debug!(%peer, "emulator: TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(TlsListener {
            address,
            ready,
            accepting,
        })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(accepted) => accepted,
            // The accept loop never ends on its own; if it was aborted, nothing comes again.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.address)
    }
}
