//! `peer_auth`: quorum SASL, the members proving to each other that they hold the
//! credentials of the JAAS file (`quorum.auth.enableSasl=true`), on a plaintext peer
//! port.
//!
//! ZooKeeper runs DIGEST-MD5 here; Paddock's peer port speaks its own protocol (members of
//! one ensemble all run Paddock), so it runs a challenge-response of the same strength with
//! HMAC-SHA256 ([`ring::hmac`]) over the same credentials: the connecting member presents
//! the `username` and `password` of its learner section (`QuorumLearner`), the member
//! connected to checks them against the `user_NAME` entries of its server section
//! (`QuorumServer`), and then proves it holds the same password.
//!
//! After the connecting member's hello (`peer` module) with the magic [`SASL_MAGIC`]:
//!
//! ```text
//! connecting -> connected : [u8 username length][username][32-byte nonce C]
//! connected  -> connecting: [u8 0]                        (no SASL here), or
//!                           [u8 1][32-byte nonce S]
//! connecting -> connected : HMAC(password, "paddock quorum client" | from | to | username | C | S)
//! connected  -> connecting: HMAC(password, "paddock quorum server" | from | to | username | C | S)
//! ```
//!
//! `from` and `to` are the two members' ids (u64 little-endian), so a proof made for one
//! member is worthless to another. Nothing the connecting member sends past its hello is
//! decoded until its proof checked out. What this does not give: secrecy or integrity of
//! what follows (an attacker on the path can still read and alter frames after the
//! handshake; `sslQuorum=true` gives both), and a passive observer of one handshake can
//! try passwords offline against it, as with DIGEST-MD5 (use long random passwords).

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use paddock_core::ids::NodeId;
use ring::hmac;

use crate::config::QuorumSaslConfig;
use crate::jaas::{Jaas, JaasError};
use crate::peer::read_exact_until;

/// The hello magic of a connecting member that will authenticate (the plain one is
/// [`crate::peer::PEER_MAGIC`]).
pub const SASL_MAGIC: [u8; 8] = *b"PDKSASL1";
/// Bytes of each side's nonce.
pub const NONCE_BYTES: usize = 32;
/// Bytes of a proof (HMAC-SHA256).
pub const PROOF_BYTES: usize = 32;

const CLIENT_LABEL: &[u8] = b"paddock quorum client";
const SERVER_LABEL: &[u8] = b"paddock quorum server";

/// This server's quorum SASL settings and credentials.
#[derive(Clone)]
pub struct QuorumSasl {
    username: String,
    password: String,
    users: BTreeMap<String, String>,
    learner_require: bool,
    server_require: bool,
}

impl std::fmt::Debug for QuorumSasl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the passwords.
        f.debug_struct("QuorumSasl")
            .field("username", &self.username)
            .field("users", &self.users.keys().collect::<Vec<_>>())
            .field("learner_require", &self.learner_require)
            .field("server_require", &self.server_require)
            .finish()
    }
}

/// Why a peer connection's authentication failed.
#[derive(Debug, thiserror::Error)]
pub enum PeerAuthError {
    /// The connection failed or timed out.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// A member connected without authenticating to a server that requires it.
    #[error("it did not authenticate (quorum.auth.serverRequireSasl=true)")]
    Unauthenticated,
    /// The member connected to does not do SASL, and this server requires it.
    #[error("the member does not do quorum SASL (quorum.auth.learnerRequireSasl=true)")]
    PeerWithoutSasl,
    /// A user name the server section does not hold.
    #[error("unknown user {0:?}")]
    UnknownUser(String),
    /// A proof that does not match the user's password.
    #[error("wrong password for user {0:?}")]
    WrongPassword(String),
    /// The member connected to failed to prove it holds the password.
    #[error("the member connected to does not hold the password of {0:?}")]
    ServerProof(String),
    /// A user name that is empty, too long or not UTF-8, or a bad status byte.
    #[error("malformed SASL handshake: {0}")]
    Malformed(&'static str),
    /// No random source for a nonce.
    #[error("no random source: {0}")]
    Random(String),
}

impl QuorumSasl {
    /// The settings of `config` with the credentials of `jaas`: the learner section's
    /// `username`/`password`, and the server section's users.
    pub fn from_jaas(jaas: &Jaas, config: &QuorumSaslConfig) -> Result<QuorumSasl, JaasError> {
        let (username, password) = jaas.login(&config.learner_section)?;
        if username.len() > usize::from(u8::MAX) {
            return Err(JaasError::Unusable {
                section: config.learner_section.clone(),
                reason: "username longer than 255 bytes".into(),
            });
        }
        Ok(QuorumSasl {
            username,
            password,
            users: jaas.server_users(&config.server_section)?,
            learner_require: config.learner_require,
            server_require: config.server_require,
        })
    }

    /// Whether a member that does not authenticate is refused.
    pub fn server_require(&self) -> bool {
        self.server_require
    }

    /// The connecting side, right after its hello with [`SASL_MAGIC`] was written:
    /// authenticates as `from` to `to`. `Ok(true)` once both proofs checked out,
    /// `Ok(false)` when `to` does not do SASL and this server does not require it.
    pub fn connect(
        &self,
        stream: &mut (impl Read + Write),
        from: NodeId,
        to: NodeId,
        stop: &AtomicBool,
        deadline: Instant,
    ) -> Result<bool, PeerAuthError> {
        let client_nonce = nonce()?;
        let mut hello = Vec::with_capacity(1 + self.username.len() + NONCE_BYTES);
        hello.push(
            u8::try_from(self.username.len())
                .map_err(|_| PeerAuthError::Malformed("username too long"))?,
        );
        hello.extend_from_slice(self.username.as_bytes());
        hello.extend_from_slice(&client_nonce);
        stream.write_all(&hello)?;
        stream.flush()?;
        let mut status = [0u8; 1];
        read_exact_until(stream, &mut status, stop, Some(deadline))?;
        match status[0] {
            0 if self.learner_require => return Err(PeerAuthError::PeerWithoutSasl),
            0 => return Ok(false),
            1 => {}
            _ => return Err(PeerAuthError::Malformed("status byte")),
        }
        let mut server_nonce = [0u8; NONCE_BYTES];
        read_exact_until(stream, &mut server_nonce, stop, Some(deadline))?;
        let transcript = Transcript {
            from,
            to,
            username: &self.username,
            client_nonce: &client_nonce,
            server_nonce: &server_nonce,
        };
        let key = hmac::Key::new(hmac::HMAC_SHA256, self.password.as_bytes());
        stream.write_all(hmac::sign(&key, &transcript.message(CLIENT_LABEL)).as_ref())?;
        stream.flush()?;
        let mut proof = [0u8; PROOF_BYTES];
        read_exact_until(stream, &mut proof, stop, Some(deadline))?;
        hmac::verify(&key, &transcript.message(SERVER_LABEL), &proof)
            .map_err(|_| PeerAuthError::ServerProof(self.username.clone()))?;
        Ok(true)
    }

    /// The connected side, after a hello with [`SASL_MAGIC`] from `from` to this server
    /// (`me`): checks its proof and proves this server's. Returns the user it
    /// authenticated as.
    pub fn accept(
        &self,
        stream: &mut (impl Read + Write),
        from: NodeId,
        me: NodeId,
        stop: &AtomicBool,
        deadline: Instant,
    ) -> Result<String, PeerAuthError> {
        let (username, client_nonce) = read_hello(stream, stop, deadline)?;
        let server_nonce = nonce()?;
        let mut challenge = [1u8; 1 + NONCE_BYTES];
        challenge[1..].copy_from_slice(&server_nonce);
        stream.write_all(&challenge)?;
        stream.flush()?;
        let mut proof = [0u8; PROOF_BYTES];
        read_exact_until(stream, &mut proof, stop, Some(deadline))?;
        // An unknown user is told apart only after its proof arrived, so a prober learns
        // nothing from the timing of the challenge.
        let password = self
            .users
            .get(&username)
            .ok_or_else(|| PeerAuthError::UnknownUser(username.clone()))?;
        let transcript = Transcript {
            from,
            to: me,
            username: &username,
            client_nonce: &client_nonce,
            server_nonce: &server_nonce,
        };
        let key = hmac::Key::new(hmac::HMAC_SHA256, password.as_bytes());
        hmac::verify(&key, &transcript.message(CLIENT_LABEL), &proof)
            .map_err(|_| PeerAuthError::WrongPassword(username.clone()))?;
        stream.write_all(hmac::sign(&key, &transcript.message(SERVER_LABEL)).as_ref())?;
        stream.flush()?;
        Ok(username)
    }
}

/// The connected side of a server without quorum SASL, after a hello with
/// [`SASL_MAGIC`]: reads the rest of the hello and answers "no SASL here".
pub fn decline(
    stream: &mut (impl Read + Write),
    stop: &AtomicBool,
    deadline: Instant,
) -> Result<(), PeerAuthError> {
    read_hello(stream, stop, deadline)?;
    stream.write_all(&[0])?;
    stream.flush()?;
    Ok(())
}

/// The rest of a SASL hello: the user name and the connecting side's nonce.
fn read_hello(
    stream: &mut impl Read,
    stop: &AtomicBool,
    deadline: Instant,
) -> Result<(String, [u8; NONCE_BYTES]), PeerAuthError> {
    let mut length = [0u8; 1];
    read_exact_until(stream, &mut length, stop, Some(deadline))?;
    if length[0] == 0 {
        return Err(PeerAuthError::Malformed("empty user name"));
    }
    let mut name = vec![0u8; usize::from(length[0])];
    read_exact_until(stream, &mut name, stop, Some(deadline))?;
    let username =
        String::from_utf8(name).map_err(|_| PeerAuthError::Malformed("user name not UTF-8"))?;
    let mut client_nonce = [0u8; NONCE_BYTES];
    read_exact_until(stream, &mut client_nonce, stop, Some(deadline))?;
    Ok((username, client_nonce))
}

fn nonce() -> Result<[u8; NONCE_BYTES], PeerAuthError> {
    let mut bytes = [0u8; NONCE_BYTES];
    getrandom::fill(&mut bytes).map_err(|e| PeerAuthError::Random(e.to_string()))?;
    Ok(bytes)
}

/// What both proofs cover.
struct Transcript<'a> {
    from: NodeId,
    to: NodeId,
    username: &'a str,
    client_nonce: &'a [u8; NONCE_BYTES],
    server_nonce: &'a [u8; NONCE_BYTES],
}

impl Transcript<'_> {
    fn message(&self, label: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(label.len() + 17 + self.username.len() + 2 * NONCE_BYTES);
        out.extend_from_slice(label);
        out.extend_from_slice(&self.from.0.to_le_bytes());
        out.extend_from_slice(&self.to.0.to_le_bytes());
        // The name's length first, so no two (name, nonce) pairs give one message.
        out.push(u8::try_from(self.username.len()).unwrap_or(u8::MAX));
        out.extend_from_slice(self.username.as_bytes());
        out.extend_from_slice(self.client_nonce);
        out.extend_from_slice(self.server_nonce);
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::net::{TcpListener, TcpStream};
    use std::thread;
    use std::time::Duration;

    use super::*;

    fn sasl(user: &str, password: &str, users: &[(&str, &str)]) -> QuorumSasl {
        QuorumSasl {
            username: user.into(),
            password: password.into(),
            users: users
                .iter()
                .map(|(u, p)| ((*u).to_owned(), (*p).to_owned()))
                .collect(),
            learner_require: true,
            server_require: true,
        }
    }

    /// Runs `connect` against `accept` (or `decline` when `acceptor` is `None`) over a
    /// loopback TCP pair; returns both results.
    fn exchange(
        connector: &QuorumSasl,
        acceptor: Option<QuorumSasl>,
    ) -> (Result<bool, PeerAuthError>, Result<String, PeerAuthError>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let stop = AtomicBool::new(false);
            let deadline = Instant::now() + Duration::from_secs(5);
            match acceptor {
                Some(a) => a.accept(&mut stream, NodeId(2), NodeId(1), &stop, deadline),
                None => decline(&mut stream, &stop, deadline).map(|()| String::new()),
            }
        });
        let mut stream = TcpStream::connect(addr).unwrap();
        let stop = AtomicBool::new(false);
        let deadline = Instant::now() + Duration::from_secs(5);
        let connected = connector.connect(&mut stream, NodeId(2), NodeId(1), &stop, deadline);
        drop(stream);
        (connected, server.join().unwrap())
    }

    #[test]
    fn members_with_the_credentials_authenticate_each_other() {
        let member = sasl("member", "pw", &[("member", "pw"), ("other", "x")]);
        let (connected, accepted) = exchange(&member, Some(member.clone()));
        assert!(connected.unwrap());
        assert_eq!(accepted.unwrap(), "member");
    }

    #[test]
    fn wrong_credentials_are_refused_both_ways() {
        let server = sasl("member", "pw", &[("member", "pw")]);
        let (connected, accepted) = exchange(&sasl("member", "guess", &[]), Some(server.clone()));
        assert!(matches!(accepted, Err(PeerAuthError::WrongPassword(u)) if u == "member"));
        assert!(connected.is_err());
        let (_, accepted) = exchange(&sasl("nobody", "pw", &[]), Some(server));
        assert!(matches!(accepted, Err(PeerAuthError::UnknownUser(u)) if u == "nobody"));
        // A server that accepts anyone's proof (it holds another password for the user)
        // does not pass the connecting side's check of its proof.
        let impostor = sasl("member", "pw", &[("member", "other")]);
        let (connected, _) = exchange(&sasl("member", "pw", &[]), Some(impostor));
        assert!(connected.is_err());
    }

    #[test]
    fn a_server_without_sasl_is_refused_only_when_required() {
        let mut member = sasl("member", "pw", &[]);
        let (connected, declined) = exchange(&member, None);
        assert!(matches!(connected, Err(PeerAuthError::PeerWithoutSasl)));
        assert!(declined.is_ok());
        member.learner_require = false;
        let (connected, _) = exchange(&member, None);
        assert!(!connected.unwrap());
    }

    // A proof made for one member does not pass at another: the ids are in it.
    #[test]
    fn proofs_are_bound_to_both_members() {
        let nonce = [7u8; NONCE_BYTES];
        let base = Transcript {
            from: NodeId(2),
            to: NodeId(1),
            username: "member",
            client_nonce: &nonce,
            server_nonce: &nonce,
        };
        let other = Transcript {
            to: NodeId(3),
            ..base
        };
        assert_ne!(base.message(CLIENT_LABEL), other.message(CLIENT_LABEL));
        assert_ne!(base.message(CLIENT_LABEL), base.message(SERVER_LABEL));
    }
}
