//! `tls`: mutual TLS on the peer port (ZooKeeper's `sslQuorum=true`).
//!
//! Every server presents the certificate of its key store and requires one from the other
//! side, each checked against the trust store (the certificate authorities that make
//! members). A dialling server checks that the certificate of the server it dials is valid
//! for that server's host in `server.N`; an accepting server checks the same of the
//! certificate of whoever dials it, for the host of the id it claims in the Paddock
//! handshake. So a member is whoever holds a key the trust store vouches for, issued for
//! the host its `server.N` line names. With `ssl.quorum.hostnameVerification=false` the
//! host checks are skipped: any certificate the trust store accepts is any member.
//!
//! Key and trust stores are PEM files, as ZooKeeper's `PEM` store type: the key store holds
//! the private key (PKCS#8, PKCS#1 or SEC1, not encrypted) and its certificate chain, the
//! trust store one or more CA certificates. rustls does the cryptography, with ring.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{WebPkiServerVerifier, verify_server_name};
use rustls::server::{ParsedCertificate, WebPkiClientVerifier};
use rustls::{
    CertificateError, ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore,
    ServerConfig, ServerConnection, SignatureScheme, StreamOwned,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

/// How long a TLS handshake on the peer port may take before the connection is dropped.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the quorum TLS settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A store file cannot be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What reading it gave.
        source: io::Error,
    },
    /// A store holds no certificate.
    #[error("{path}: no PEM certificate in it")]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// The key store holds no usable private key.
    #[error(
        "{path}: no PEM private key in it (PKCS#8, PKCS#1 or SEC1; an encrypted key is not \
         supported: decrypt it with `openssl pkey`)"
    )]
    NoKey {
        /// The file.
        path: PathBuf,
    },
    /// A PEM section does not parse.
    #[error("{path}: {message}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// rustls refused the certificates or key.
    #[error("{0}")]
    Config(String),
}

/// The TLS side of the peer port: what a server presents and what it accepts.
#[derive(Debug, Clone)]
pub struct QuorumTls {
    client: Arc<ClientConfig>,
    server: Arc<ServerConfig>,
    hostname_verification: bool,
}

/// A peer connection, with TLS or without.
pub trait PeerStream: Read + Write + Send {}
impl<T: Read + Write + Send> PeerStream for T {}

impl QuorumTls {
    /// Reads the key store (private key and certificate chain) and the trust store (CA
    /// certificates), both PEM.
    pub fn load(
        key_store: &Path,
        trust_store: &Path,
        hostname_verification: bool,
    ) -> Result<QuorumTls, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let chain = certificates(key_store)?;
        let key = PrivateKeyDer::from_pem_file(key_store).map_err(|error| match error {
            rustls_pki_types::pem::Error::Io(source) => TlsError::Read {
                path: key_store.to_owned(),
                source,
            },
            rustls_pki_types::pem::Error::NoItemsFound => TlsError::NoKey {
                path: key_store.to_owned(),
            },
            other => TlsError::Pem {
                path: key_store.to_owned(),
                message: other.to_string(),
            },
        })?;
        let mut roots = RootCertStore::empty();
        for cert in certificates(trust_store)? {
            roots.add(cert).map_err(|error| TlsError::Pem {
                path: trust_store.to_owned(),
                message: format!("not a CA certificate rustls can use: {error}"),
            })?;
        }
        let roots = Arc::new(roots);
        let config_error = |error: &dyn std::fmt::Display| TlsError::Config(error.to_string());

        let client_verifier =
            WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
                .build()
                .map_err(|e| config_error(&e))?;
        let mut server = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| config_error(&e))?
            .with_client_cert_verifier(client_verifier)
            .with_single_cert(chain.clone(), key.clone_key())
            .map_err(|e| config_error(&e))?;
        // Peer links are long-lived and never resumed: no session tickets, which the
        // dialling side, only writing, would never read.
        server.send_tls13_tickets = 0;

        let inner = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
            .build()
            .map_err(|e| config_error(&e))?;
        let client = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| config_error(&e))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(MemberVerifier {
                inner,
                hostname_verification,
            }))
            .with_client_auth_cert(chain, key)
            .map_err(|e| config_error(&e))?;
        Ok(QuorumTls {
            client: Arc::new(client),
            server: Arc::new(server),
            hostname_verification,
        })
    }

    /// Runs the client side of the handshake on a dialled connection to a server of host
    /// `host`, within [`HANDSHAKE_TIMEOUT`] (the socket's own timeouts pace the attempts).
    pub fn connect(
        &self,
        host: &str,
        tcp: TcpStream,
    ) -> io::Result<StreamOwned<ClientConnection, TcpStream>> {
        let name = server_name(host)?;
        let conn = ClientConnection::new(self.client.clone(), name)
            .map_err(|error| io::Error::new(io::ErrorKind::InvalidData, error))?;
        let mut stream = StreamOwned::new(conn, tcp);
        handshake(&mut stream.conn, &mut stream.sock, None)?;
        Ok(stream)
    }

    /// Runs the server side of the handshake on an accepted connection, within
    /// [`HANDSHAKE_TIMEOUT`] or until `stop` is set. Returns the stream and the certificate
    /// the other side presented (the trust store accepted it).
    pub fn accept(
        &self,
        tcp: TcpStream,
        stop: &AtomicBool,
    ) -> io::Result<(
        StreamOwned<ServerConnection, TcpStream>,
        CertificateDer<'static>,
    )> {
        let conn = ServerConnection::new(self.server.clone())
            .map_err(|error| io::Error::new(io::ErrorKind::InvalidData, error))?;
        let mut stream = StreamOwned::new(conn, tcp);
        handshake(&mut stream.conn, &mut stream.sock, Some(stop))?;
        let cert = stream
            .conn
            .peer_certificates()
            .and_then(|certs| certs.first())
            .map(|cert| cert.clone().into_owned())
            .ok_or_else(|| {
                io::Error::new(io::ErrorKind::PermissionDenied, "no client certificate")
            })?;
        Ok((stream, cert))
    }

    /// Whether `cert`, which a dialling server presented, is valid for `host`, the host of
    /// the member it claims to be. Always true without hostname verification.
    pub fn certificate_names(&self, cert: &CertificateDer<'_>, host: &str) -> Result<(), String> {
        if !self.hostname_verification {
            return Ok(());
        }
        let name = server_name(host).map_err(|error| error.to_string())?;
        let parsed = ParsedCertificate::try_from(cert).map_err(|error| error.to_string())?;
        verify_server_name(&parsed, &name).map_err(|error| error.to_string())
    }
}

/// The certificates of a PEM file; at least one.
fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let mut certs = Vec::new();
    let iter = CertificateDer::pem_file_iter(path).map_err(|error| match error {
        rustls_pki_types::pem::Error::Io(source) => TlsError::Read {
            path: path.to_owned(),
            source,
        },
        other => TlsError::Pem {
            path: path.to_owned(),
            message: other.to_string(),
        },
    })?;
    for cert in iter {
        certs.push(cert.map_err(|error| TlsError::Pem {
            path: path.to_owned(),
            message: error.to_string(),
        })?);
    }
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

/// `host` of a `server.N` line as a TLS name: an IP address or a DNS name.
fn server_name(host: &str) -> io::Result<ServerName<'static>> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_owned()).map_err(|error| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{host:?} is not a host name TLS can check: {error}"),
        )
    })
}

/// Drives a handshake to its end over a blocking socket with a read timeout, giving up
/// after [`HANDSHAKE_TIMEOUT`] or once `stop` is set.
fn handshake<C, S>(conn: &mut C, sock: &mut TcpStream, stop: Option<&AtomicBool>) -> io::Result<()>
where
    C: std::ops::DerefMut<Target = rustls::ConnectionCommon<S>>,
{
    let deadline = Instant::now() + HANDSHAKE_TIMEOUT;
    while conn.is_handshaking() {
        if Instant::now() > deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "TLS handshake not done in time",
            ));
        }
        if stop.is_some_and(|stop| stop.load(Ordering::Relaxed)) {
            return Err(io::ErrorKind::Interrupted.into());
        }
        match conn.complete_io(sock) {
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) => {}
            Err(e) => return Err(e),
        }
    }
    // What the handshake's last flight left to send (a TLS 1.3 client's Finished).
    while conn.wants_write() {
        conn.write_tls(sock)?;
    }
    Ok(())
}

/// The dialling side's check of a server's certificate: rustls's own (chain to the trust
/// store, validity, and the name of the host dialled), with only the name check waived
/// when hostname verification is off.
#[derive(Debug)]
struct MemberVerifier {
    inner: Arc<WebPkiServerVerifier>,
    hostname_verification: bool,
}

impl ServerCertVerifier for MemberVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            // The name is checked after the chain, so this error means the chain is good.
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.hostname_verification => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
