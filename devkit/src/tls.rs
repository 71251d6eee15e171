//! HTTPS in front of a plain HTTP server (the Zilliz fake), with a private CA made at test time:
//! a CA certificate and a server certificate for `127.0.0.1` and `localhost` signed by it
//! (rcgen), TLS terminated with rustls (ring), the decrypted bytes forwarded to the backend.
//! Counts the handshakes that worked and those that failed (a client that does not trust the
//! CA aborts the handshake, and nothing reaches the backend).

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
};
use tokio::{
    net::{TcpListener, TcpStream},
    task::JoinHandle,
};
use tokio_rustls::{
    TlsAcceptor,
    rustls::{
        self,
        pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer},
    },
};

/// A private CA and one server certificate it signed.
pub struct TestPki {
    /// The CA certificate (PEM): what a client must trust.
    pub ca_pem: String,
    pub server_cert: CertificateDer<'static>,
    pub server_key: PrivateKeyDer<'static>,
}

impl TestPki {
    /// A fresh CA, and a certificate for `names` (DNS names or IP addresses) signed by it.
    pub fn new(names: &[&str]) -> TestPki {
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "zilliz-operator test CA");
        ca_params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();

        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = rcgen::CertificateParams::new(names).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "zilliz-fake");
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &ca).unwrap();
        TestPki {
            ca_pem: ca.pem(),
            server_cert: cert.der().clone(),
            server_key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        }
    }
}

/// The TLS front; stopped when dropped.
pub struct TlsProxy {
    addr: SocketAddr,
    pki: TestPki,
    ok: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl TlsProxy {
    /// Listens on a free port of 127.0.0.1 with a certificate for `127.0.0.1` and `localhost`
    /// from a fresh CA, forwarding to `backend`.
    pub async fn start(backend: SocketAddr) -> TlsProxy {
        let pki = TestPki::new(&["127.0.0.1", "localhost"]);
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![pki.server_cert.clone()], pki.server_key.clone_key())
        .unwrap();
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let ok = Arc::new(AtomicUsize::new(0));
        let failed = Arc::new(AtomicUsize::new(0));
        let (ok2, failed2) = (ok.clone(), failed.clone());
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (acceptor, ok, failed) = (acceptor.clone(), ok2.clone(), failed2.clone());
                tokio::spawn(async move {
                    let mut tls = match acceptor.accept(stream).await {
                        Ok(tls) => tls,
                        Err(_) => {
                            failed.fetch_add(1, Ordering::SeqCst);
                            return;
                        }
                    };
                    ok.fetch_add(1, Ordering::SeqCst);
                    let Ok(mut plain) = TcpStream::connect(backend).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                });
            }
        });
        TlsProxy {
            addr,
            pki,
            ok,
            failed,
            task,
        }
    }

    /// `https://127.0.0.1:PORT`
    pub fn uri(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// The CA certificate (PEM) to trust.
    pub fn ca_pem(&self) -> &str {
        &self.pki.ca_pem
    }

    /// Handshakes completed, and handshakes that failed (the client did not trust us, or gave
    /// up).
    pub fn handshakes(&self) -> (usize, usize) {
        (
            self.ok.load(Ordering::SeqCst),
            self.failed.load(Ordering::SeqCst),
        )
    }
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zilliz_fake::ZillizFake;

    #[tokio::test]
    async fn only_a_client_trusting_the_ca_gets_through() {
        let fake = ZillizFake::start("k").await;
        let proxy = TlsProxy::start(*fake.server.address()).await;
        let url = format!("{}/v2/clusters", proxy.uri());
        let untrusting = reqwest::Client::new();
        let err = untrusting.get(&url).send().await.unwrap_err();
        let chain = format!("{:?}", err);
        assert!(chain.contains("UnknownIssuer"), "{chain}");
        assert_eq!(fake.total_calls(), 0);
        let trusting = reqwest::Client::builder()
            .add_root_certificate(
                reqwest::Certificate::from_pem(proxy.ca_pem().as_bytes()).unwrap(),
            )
            .build()
            .unwrap();
        let status = trusting
            .get(&url)
            .bearer_auth("k")
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 200);
        assert_eq!(fake.total_calls(), 1);
        let (ok, failed) = proxy.handshakes();
        assert_eq!(ok, 1);
        assert!(failed >= 1);
    }
}
