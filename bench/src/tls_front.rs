//! TLS in front of the local stack's plain-HTTP endpoints, so that start-up can be timed with
//! the TLS handshakes a function makes in AWS.
//!
//! A throwaway CA (rcgen) signs a certificate for `127.0.0.1`; each front terminates TLS (rustls
//! with ring, as the functions use) and copies the bytes to its upstream. The function under test
//! trusts the system's roots plus the CA through `SSL_CERT_FILE`, which the SDK client's
//! native-roots loader reads.

use std::path::PathBuf;
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::BenchError;

/// Where Debian and Amazon Linux keep the system's root certificates.
const SYSTEM_BUNDLES: [&str; 2] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
];

/// Running fronts; dropping this stops them and removes the CA file.
pub struct TlsFronts {
    /// Variables that point a function at the fronts: each endpoint variable as `https://…`, and
    /// `SSL_CERT_FILE`.
    pub env: Vec<(String, String)>,
    ca_file: PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn setup(what: &str, e: impl std::fmt::Display) -> BenchError {
    BenchError::Setup(format!("TLS front: {what}: {e}"))
}

/// Starts one front per `(variable, http://host:port)` upstream, on loopback.
pub fn start(upstreams: &[(&str, String)]) -> Result<TlsFronts, BenchError> {
    let ca_key = KeyPair::generate().map_err(|e| setup("CA key", e))?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(|e| setup("CA", e))?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "winback-bench local CA");
    let ca = ca_params
        .self_signed(&ca_key)
        .map_err(|e| setup("CA certificate", e))?;
    let key = KeyPair::generate().map_err(|e| setup("server key", e))?;
    let cert = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .map_err(|e| setup("server names", e))?
        .signed_by(&key, &ca, &ca_key)
        .map_err(|e| setup("server certificate", e))?;

    // The function trusts the system's roots plus this CA, from one bundle file, as in Lambda
    // (where the roots are one bundle too, and `SSL_CERT_*` are not set).
    let mut bundle = ca.pem();
    for system in SYSTEM_BUNDLES {
        if let Ok(roots) = std::fs::read_to_string(system) {
            bundle.push_str(&roots);
            break;
        }
    }
    let ca_file = std::env::temp_dir().join(format!("winback-bench-ca-{}.pem", std::process::id()));
    std::fs::write(&ca_file, bundle)?;

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| setup("protocol versions", e))?
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .map_err(|e| setup("server config", e))?;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));

    let mut env = vec![("SSL_CERT_FILE".to_string(), ca_file.display().to_string())];
    let mut listeners = Vec::new();
    for (var, url) in upstreams {
        let upstream = url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        env.push((
            var.to_string(),
            format!("https://127.0.0.1:{}", listener.local_addr()?.port()),
        ));
        listeners.push((listener, upstream));
    }

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let thread = std::thread::spawn(move || {
        runtime.block_on(async move {
            for (listener, upstream) in listeners {
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                    continue;
                };
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    while let Ok((client, _)) = listener.accept().await {
                        let (acceptor, upstream) = (acceptor.clone(), upstream.clone());
                        // Without it, Nagle's algorithm against the client's delayed ACK holds
                        // the handshake's last flight for about 40 ms, which no AWS endpoint does.
                        let _ = client.set_nodelay(true);
                        tokio::spawn(async move {
                            let Ok(mut tls) = acceptor.accept(client).await else {
                                return;
                            };
                            let Ok(mut plain) = tokio::net::TcpStream::connect(&upstream).await
                            else {
                                return;
                            };
                            let _ = plain.set_nodelay(true);
                            let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                        });
                    }
                });
            }
            let _ = stopped.await;
        });
    });
    Ok(TlsFronts {
        env,
        ca_file,
        stop: Some(stop),
        thread: Some(thread),
    })
}

impl Drop for TlsFronts {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let _ = std::fs::remove_file(&self.ca_file);
    }
}
