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
use rustls::crypto::CryptoProvider;
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
        let provider = provider();
        let (chain, key) = key_store_read(key_store)?;
        let roots = trust_store_read(trust_store)?;

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

/// Whether a client of the secure client port must present a certificate (ZooKeeper's
/// `ssl.clientAuth`, whose default is `need`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// A certificate the trust store accepts is required.
    Need,
    /// A certificate is asked for; without one the client is served all the same, with
    /// one it must be accepted by the trust store.
    Want,
    /// No certificate is asked for.
    None,
}

/// The TLS configuration of the secure client port: this server's key store, and the
/// trust store client certificates are checked against (needed unless `auth` is
/// [`ClientAuth::None`]).
pub fn client_port_config(
    key_store: &Path,
    trust_store: Option<&Path>,
    auth: ClientAuth,
) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = provider();
    let (chain, key) = key_store_read(key_store)?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| config_error(&e))?;
    let builder = match (auth, trust_store) {
        (ClientAuth::None, _) => builder.with_no_client_auth(),
        (_, None) => {
            return Err(TlsError::Config(
                "client certificates are asked for (ssl.clientAuth) but no trust store is set \
                 (ssl.trustStore.location)"
                    .into(),
            ));
        }
        (auth, Some(trust_store)) => {
            let verifier = WebPkiClientVerifier::builder_with_provider(
                trust_store_read(trust_store)?,
                provider,
            );
            let verifier = if auth == ClientAuth::Want {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            builder.with_client_cert_verifier(verifier.build().map_err(|e| config_error(&e))?)
        }
    };
    let config = builder
        .with_single_cert(chain, key)
        .map_err(|e| config_error(&e))?;
    Ok(Arc::new(config))
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn config_error(error: &dyn std::fmt::Display) -> TlsError {
    TlsError::Config(error.to_string())
}

/// The private key and certificate chain of a PEM key store.
fn key_store_read(
    key_store: &Path,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
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
    Ok((chain, key))
}

/// The CA certificates of a PEM trust store.
fn trust_store_read(trust_store: &Path) -> Result<Arc<RootCertStore>, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in certificates(trust_store)? {
        roots.add(cert).map_err(|error| TlsError::Pem {
            path: trust_store.to_owned(),
            message: format!("not a CA certificate rustls can use: {error}"),
        })?;
    }
    Ok(Arc::new(roots))
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

/// The subject of a DER certificate as Java's `X500Principal.getName()` prints it (RFC
/// 2253), which is the id ZooKeeper's `x509` scheme gives a client: the relative names
/// last first, joined by `,` (the values of a multi-valued one by `+`); CN, C, L, ST, O,
/// OU, STREET, DC and UID by name with their string values escaped, other attributes as a
/// dotted OID and `#` with the hex of the value's DER encoding. `None` when the
/// certificate does not parse.
pub fn certificate_subject(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let rdns: Vec<String> = cert
        .subject()
        .iter_rdn()
        .map(|rdn| {
            rdn.iter()
                .map(|attribute| {
                    let oid = attribute.attr_type().to_id_string();
                    match (attribute_keyword(&oid), attribute.as_str()) {
                        (Some(keyword), Ok(value)) => {
                            format!("{keyword}={}", rfc2253_escape(value))
                        }
                        _ => {
                            let value = attribute.attr_value();
                            let mut der = vec![u8::try_from(value.tag().0).unwrap_or(0)];
                            let length = value.data.len();
                            if length < 0x80 {
                                der.push(length as u8);
                            } else {
                                let bytes: Vec<u8> = length
                                    .to_be_bytes()
                                    .into_iter()
                                    .skip_while(|b| *b == 0)
                                    .collect();
                                der.push(0x80 | bytes.len() as u8);
                                der.extend_from_slice(&bytes);
                            }
                            der.extend_from_slice(value.data);
                            let hex: String = der.iter().map(|b| format!("{b:02x}")).collect();
                            format!("{oid}=#{hex}")
                        }
                    }
                })
                .collect::<Vec<_>>()
                .join("+")
        })
        .collect();
    Some(rdns.into_iter().rev().collect::<Vec<_>>().join(","))
}

/// The keywords `X500Principal.getName()` prints for RFC 2253's attribute types.
fn attribute_keyword(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "STREET",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        _ => return None,
    })
}

/// RFC 2253 escaping of a string value: `,+"\<>;` anywhere, `#` or a space first, and a
/// space last, each preceded by a backslash.
fn rfc2253_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == '#' || c == ' '))
            || (i == last && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};

    fn subject_of(dn: &[(DnType, &str)]) -> Option<String> {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        let mut name = DistinguishedName::new();
        for (kind, value) in dn {
            name.push(kind.clone(), *value);
        }
        params.distinguished_name = name;
        let cert = params.self_signed(&KeyPair::generate().unwrap()).unwrap();
        certificate_subject(cert.der())
    }

    // The x509 identity of a certificate is its subject as Java prints it (RFC 2253): the
    // last relative name first, keywords for the usual types, special characters escaped,
    // other types as OID=#hex of the DER value.
    #[test]
    fn subjects_print_as_java_does() {
        assert_eq!(
            subject_of(&[
                (DnType::CountryName, "US"),
                (DnType::OrganizationName, "Example, Inc."),
                (DnType::CommonName, "client1"),
            ])
            .unwrap(),
            "CN=client1,O=Example\\, Inc.,C=US"
        );
        assert_eq!(
            subject_of(&[(DnType::CommonName, " #lead+trail ")]).unwrap(),
            "CN=\\ #lead\\+trail\\ "
        );
        // emailAddress (1.2.840.113549.1.9.1) has no RFC 2253 keyword: the value as rcgen
        // encodes it, a UTF8String (tag 12 = 0x0c) of 5 bytes.
        let email = DnType::CustomDnType(vec![1, 2, 840, 113_549, 1, 9, 1]);
        assert_eq!(
            subject_of(&[(email, "a@b.c")]).unwrap(),
            "1.2.840.113549.1.9.1=#0c056140622e63"
        );
        assert_eq!(certificate_subject(b"not a certificate"), None);
    }
}
