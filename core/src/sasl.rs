//! SASL DIGEST-MD5 (RFC 2831), server side, as ZooKeeper 3.8's server runs it.
//!
//! ZooKeeper clients that authenticate with a user name and password (the Java client
//! with a JAAS `DigestLoginModule`, kazoo through pure-sasl) speak DIGEST-MD5 to a server
//! that Java builds as `Sasl.createSaslServer("DIGEST-MD5", "zookeeper", "zk-sasl-md5",
//! ...)` and offers only `qop=auth`. [`DigestMd5Server`] is that exchange as a value:
//!
//! 1. The client sends an empty token (DIGEST-MD5 has no initial response); the server
//!    answers with a challenge carrying its realm and a fresh nonce.
//! 2. The client sends a digest-response; the server checks every directive, recomputes
//!    the response from the user's password and, when it matches, answers with
//!    `rspauth=...` so the client can authenticate the server in turn. The exchange is
//!    then complete and the identity granted is the user name.
//!
//! The realm ([`REALM`]) and digest-uri ([`DIGEST_URI`]) are ZooKeeper's fixed values:
//! clients derive the digest-uri from the server principal they are configured with,
//! whose default is `zk-sasl-md5`, so unchanged clients only work if we use the same.
//!
//! This module authenticates only. There is no integrity or confidentiality layer
//! (`qop=auth`): after the exchange the connection carries plain ZooKeeper frames.
//!
//! Like the rest of core it is pure: the nonce's random bytes are an argument, and the
//! password store is a lookup function the caller passes in. The client's token is
//! untrusted input: parsing is a single linear pass over at most
//! [`RESPONSE_BYTES_MAX`] bytes, and every malformed input is a [`SaslError`].

use base64::Engine;
use md5::{Digest, Md5};

/// The realm the server offers and accepts: ZooKeeper's server name for DIGEST-MD5.
pub const REALM: &str = "zk-sasl-md5";

/// The digest-uri a client must send, `serv-type "/" host` with ZooKeeper's protocol
/// name and server name (compared ignoring ASCII case, like Java's server).
pub const DIGEST_URI: &str = "zookeeper/zk-sasl-md5";

/// Bytes of random nonce material the caller supplies for each exchange; the nonce in
/// the challenge is their standard base64 encoding (32 characters).
pub const NONCE_BYTES: usize = 24;

/// The largest digest-response accepted, in bytes (RFC 2831 section 2.1.2: a
/// digest-response must be shorter than 4096 bytes; Java's server rejects more than
/// 4096).
pub const RESPONSE_BYTES_MAX: usize = 4096;

/// The only quality of protection offered: authentication without a security layer.
const QOP_AUTH: &str = "auth";

/// The only nonce count accepted: each nonce authenticates exactly one exchange.
const NONCE_COUNT_FIRST: &str = "00000001";

/// Why a DIGEST-MD5 exchange failed. After any error the exchange is over.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SaslError {
    /// The client's first token was not empty; DIGEST-MD5 has no initial response.
    #[error("DIGEST-MD5 must not have an initial response")]
    InitialResponse,
    /// The digest-response exceeds [`RESPONSE_BYTES_MAX`].
    #[error("digest-response of {length_bytes} bytes exceeds {RESPONSE_BYTES_MAX} bytes")]
    TooLong {
        /// Length of the token received, in bytes.
        length_bytes: usize,
    },
    /// The digest-response is not valid UTF-8 (the challenge announced `charset=utf-8`).
    #[error("digest-response is not valid UTF-8")]
    NotUtf8,
    /// The digest-response does not follow the `key=value, ...` syntax.
    #[error("malformed digest-response at byte {offset_bytes}: {reason}")]
    Malformed {
        /// What was expected or wrong.
        reason: &'static str,
        /// Where in the token, counted in bytes from its start.
        offset_bytes: usize,
    },
    /// A directive appears more than once.
    #[error("directive {0} appears more than once")]
    Duplicate(&'static str),
    /// A required directive is absent.
    #[error("required directive {0} is missing")]
    Missing(&'static str),
    /// The nonce is not the one this server sent in its challenge.
    #[error("nonce does not match the challenge")]
    NonceMismatch,
    /// The nonce count is not `00000001` (a nonce is good for one authentication).
    #[error("nonce count must be 00000001")]
    BadNc,
    /// The quality of protection is not `auth`, the only one offered.
    #[error("unsupported qop: only auth is offered")]
    BadQop,
    /// The charset is not `utf-8`, the only one offered.
    #[error("unsupported charset: only utf-8 is offered")]
    BadCharset,
    /// The realm is not [`REALM`].
    #[error("realm does not match {REALM}")]
    BadRealm,
    /// The digest-uri is not [`DIGEST_URI`].
    #[error("digest-uri does not match {DIGEST_URI}")]
    BadDigestUri,
    /// An authorization id was given that differs from the user name.
    #[error("authzid differs from the user name")]
    AuthzidMismatch,
    /// The response directive is not 32 lowercase hexadecimal digits.
    #[error("response must be 32 lowercase hex digits")]
    BadResponseFormat,
    /// Unknown user or wrong password; deliberately one error for both, so that the
    /// reply does not reveal which user names exist.
    #[error("authentication failed for user {user:?}")]
    Rejected {
        /// The user name the client claimed, for the log.
        user: String,
    },
    /// A token arrived after the exchange had completed or failed.
    #[error("the DIGEST-MD5 exchange is already over")]
    AlreadyDone,
}

/// What the server sends back after one client token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// The digest-challenge to send; the exchange continues with the client's
    /// digest-response.
    Challenge(Vec<u8>),
    /// Authentication succeeded: send `token` (`rspauth=...`) and grant `user`.
    Complete {
        /// The final server token, `rspauth=` and 32 lowercase hex digits.
        token: Vec<u8>,
        /// The authenticated user name (always the authentication id).
        user: String,
    },
}

/// The server side of one DIGEST-MD5 exchange, driven by [`DigestMd5Server::step`] with
/// each client token in turn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestMd5Server {
    state: State,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Waiting for the client's empty first token.
    AwaitingInitial,
    /// The challenge with this nonce went out; waiting for the digest-response.
    ChallengeSent { nonce: String },
    /// Authenticated as this user.
    Complete { user: String },
    /// An error ended the exchange.
    Failed,
}

impl Default for DigestMd5Server {
    fn default() -> Self {
        Self::new()
    }
}

impl DigestMd5Server {
    /// A new exchange, waiting for the client's first (empty) token.
    pub fn new() -> Self {
        Self {
            state: State::AwaitingInitial,
        }
    }

    /// The authenticated user once the exchange is complete; `None` before that or
    /// after a failure.
    pub fn authenticated_user(&self) -> Option<&str> {
        match &self.state {
            State::Complete { user } => Some(user),
            State::AwaitingInitial | State::ChallengeSent { .. } | State::Failed => None,
        }
    }

    /// Takes one client token and returns the server's next token.
    ///
    /// `nonce_bytes` (fresh random bytes from the caller) are used only by the first
    /// step. `password_of` looks up a user's password and is called at most once, in the
    /// second step; `None` means no such user. An error ends the exchange for good:
    /// every later step returns [`SaslError::AlreadyDone`] (a completed exchange stays
    /// complete but refuses further tokens the same way).
    pub fn step<P: AsRef<str>>(
        &mut self,
        token: &[u8],
        nonce_bytes: &[u8; NONCE_BYTES],
        password_of: impl FnOnce(&str) -> Option<P>,
    ) -> Result<Step, SaslError> {
        // Failed unless a branch below puts a live state back.
        match std::mem::replace(&mut self.state, State::Failed) {
            State::AwaitingInitial => {
                if !token.is_empty() {
                    return Err(SaslError::InitialResponse);
                }
                let nonce = base64::engine::general_purpose::STANDARD.encode(nonce_bytes);
                let challenge = step_challenge(&nonce);
                self.state = State::ChallengeSent { nonce };
                Ok(Step::Challenge(challenge))
            }
            State::ChallengeSent { nonce } => {
                let (user, rspauth) = step_response(token, &nonce, password_of)?;
                self.state = State::Complete { user: user.clone() };
                Ok(Step::Complete {
                    token: format!("rspauth={rspauth}").into_bytes(),
                    user,
                })
            }
            State::Complete { user } => {
                self.state = State::Complete { user };
                Err(SaslError::AlreadyDone)
            }
            State::Failed => Err(SaslError::AlreadyDone),
        }
    }
}

/// The digest-challenge, with the directives and values Java's server sends for
/// ZooKeeper (one realm, qop auth only, UTF-8, md5-sess).
fn step_challenge(nonce: &str) -> Vec<u8> {
    format!(
        "realm=\"{REALM}\",nonce=\"{nonce}\",qop=\"{QOP_AUTH}\",charset=utf-8,\
         algorithm=md5-sess"
    )
    .into_bytes()
}

/// Checks a digest-response against the challenge's `nonce` and the user's password.
/// Returns the user name and the rspauth value (32 lowercase hex digits).
fn step_response<P: AsRef<str>>(
    token: &[u8],
    nonce: &str,
    password_of: impl FnOnce(&str) -> Option<P>,
) -> Result<(String, String), SaslError> {
    if token.len() > RESPONSE_BYTES_MAX {
        return Err(SaslError::TooLong {
            length_bytes: token.len(),
        });
    }
    let text = std::str::from_utf8(token).map_err(|_| SaslError::NotUtf8)?;
    let directives = parse_digest_response(text)?;

    let required =
        |value: Option<String>, field: Field| value.ok_or(SaslError::Missing(field.name()));
    let username = required(directives.username, Field::Username)?;
    let client_nonce = required(directives.nonce, Field::Nonce)?;
    let cnonce = required(directives.cnonce, Field::Cnonce)?;
    let nc = required(directives.nc, Field::Nc)?;
    let digest_uri = required(directives.digest_uri, Field::DigestUri)?;
    let response = required(directives.response, Field::Response)?;

    if client_nonce != nonce {
        return Err(SaslError::NonceMismatch);
    }
    if nc != NONCE_COUNT_FIRST {
        return Err(SaslError::BadNc);
    }
    // An absent qop means auth (RFC 2831 section 2.1.2.1).
    if directives.qop.as_deref().is_some_and(|qop| qop != QOP_AUTH) {
        return Err(SaslError::BadQop);
    }
    if directives
        .charset
        .as_deref()
        .is_some_and(|charset| charset != "utf-8")
    {
        return Err(SaslError::BadCharset);
    }
    // An absent realm enters the digest as the empty string (RFC 2831 section 2.1.2).
    // Java's server refuses an absent realm; we accept it, as the RFC allows.
    let realm = match directives.realm {
        Some(realm) if realm != REALM => return Err(SaslError::BadRealm),
        Some(realm) => realm,
        None => String::new(),
    };
    if !digest_uri.eq_ignore_ascii_case(DIGEST_URI) {
        return Err(SaslError::BadDigestUri);
    }
    // ZooKeeper grants the authentication id whatever the authzid says; we refuse an
    // authzid that would claim a different identity rather than silently ignore it.
    if directives
        .authzid
        .as_deref()
        .is_some_and(|authzid| authzid != username)
    {
        return Err(SaslError::AuthzidMismatch);
    }
    if response.len() != 32
        || !response
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return Err(SaslError::BadResponseFormat);
    }

    let password = password_of(&username);
    // An unknown user still costs a full digest computation, so timing does not tell
    // unknown users from wrong passwords either.
    let expected = digest_values(&DigestInputs {
        username: &username,
        realm: &realm,
        password: password.as_ref().map_or("", AsRef::as_ref),
        nonce,
        cnonce: &cnonce,
        nc: &nc,
        digest_uri: &digest_uri,
        authzid: directives.authzid.as_deref(),
    });
    let matches = equal_constant_time(expected.response.as_bytes(), response.as_bytes());
    if password.is_none() || !matches {
        return Err(SaslError::Rejected { user: username });
    }
    Ok((username, expected.rspauth))
}

/// The inputs of the RFC 2831 section 2.1.2.1 response value (md5-sess, qop auth), each
/// exactly as the client sent it (the realm is empty when the client sent none).
struct DigestInputs<'a> {
    username: &'a str,
    realm: &'a str,
    password: &'a str,
    nonce: &'a str,
    cnonce: &'a str,
    nc: &'a str,
    digest_uri: &'a str,
    authzid: Option<&'a str>,
}

/// The client's expected response and the server's rspauth, both as 32 lowercase hex
/// digits.
struct DigestValues {
    response: String,
    rspauth: String,
}

/// Computes the response and rspauth values of RFC 2831 section 2.1.2.1 with md5-sess
/// and qop auth:
///
/// ```text
/// A1 = H(username ":" realm ":" password) ":" nonce ":" cnonce [":" authzid]
/// A2 = "AUTHENTICATE:" digest-uri          (rspauth: ":" digest-uri)
/// value = HEX(H(HEX(H(A1)) ":" nonce ":" nc ":" cnonce ":" qop ":" HEX(H(A2))))
/// ```
fn digest_values(inputs: &DigestInputs<'_>) -> DigestValues {
    let mut credentials = Md5::new();
    credentials.update(latin1_or_utf8(inputs.username));
    credentials.update(b":");
    credentials.update(latin1_or_utf8(inputs.realm));
    credentials.update(b":");
    credentials.update(latin1_or_utf8(inputs.password));

    let mut a1 = Md5::new();
    a1.update(credentials.finalize());
    a1.update(b":");
    a1.update(inputs.nonce);
    a1.update(b":");
    a1.update(inputs.cnonce);
    if let Some(authzid) = inputs.authzid {
        a1.update(b":");
        a1.update(authzid);
    }
    let a1_hex = hex_lower(&a1.finalize());

    let value = |a2_prefix: &str| {
        let mut a2 = Md5::new();
        a2.update(a2_prefix);
        a2.update(inputs.digest_uri);
        let a2_hex = hex_lower(&a2.finalize());
        let mut kd = Md5::new();
        for (index, part) in [
            &*a1_hex,
            inputs.nonce,
            inputs.nc,
            inputs.cnonce,
            QOP_AUTH,
            &*a2_hex,
        ]
        .iter()
        .enumerate()
        {
            if index > 0 {
                kd.update(b":");
            }
            kd.update(part);
        }
        hex_lower(&kd.finalize())
    };
    DigestValues {
        response: value("AUTHENTICATE:"),
        rspauth: value(":"),
    }
}

/// The bytes a user name, realm or password enters the digest as: ISO-8859-1 when every
/// character fits in it, UTF-8 otherwise (RFC 2831 section 2.1.2.1 with charset utf-8;
/// Java converts each string on its own, and so do we).
fn latin1_or_utf8(text: &str) -> Vec<u8> {
    let latin1: Option<Vec<u8>> = text.chars().map(|c| u8::try_from(c).ok()).collect();
    latin1.unwrap_or_else(|| text.as_bytes().to_vec())
}

/// Lowercase hexadecimal digits of `bytes`.
fn hex_lower(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut hex = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        hex.push(char::from(DIGITS[usize::from(byte >> 4)]));
        hex.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    hex
}

/// Whether `a` and `b` are equal, taking the same time wherever they differ.
fn equal_constant_time(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

/// The directives of a digest-response that the server reads; `None` when absent.
#[derive(Debug, Default)]
struct DigestResponse {
    username: Option<String>,
    realm: Option<String>,
    nonce: Option<String>,
    cnonce: Option<String>,
    nc: Option<String>,
    qop: Option<String>,
    digest_uri: Option<String>,
    response: Option<String>,
    charset: Option<String>,
    authzid: Option<String>,
}

/// The directives the server reads (maxbuf and cipher only matter with a security
/// layer, so like unknown directives they are skipped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Username,
    Realm,
    Nonce,
    Cnonce,
    Nc,
    Qop,
    DigestUri,
    Response,
    Charset,
    Authzid,
}

impl Field {
    const ALL: [Field; 10] = [
        Field::Username,
        Field::Realm,
        Field::Nonce,
        Field::Cnonce,
        Field::Nc,
        Field::Qop,
        Field::DigestUri,
        Field::Response,
        Field::Charset,
        Field::Authzid,
    ];

    /// The directive's name as RFC 2831 spells it.
    fn name(self) -> &'static str {
        match self {
            Field::Username => "username",
            Field::Realm => "realm",
            Field::Nonce => "nonce",
            Field::Cnonce => "cnonce",
            Field::Nc => "nc",
            Field::Qop => "qop",
            Field::DigestUri => "digest-uri",
            Field::Response => "response",
            Field::Charset => "charset",
            Field::Authzid => "authzid",
        }
    }

    /// The field named `key`, ignoring ASCII case; `None` for directives we skip.
    fn from_key(key: &str) -> Option<Field> {
        Field::ALL
            .into_iter()
            .find(|field| field.name().eq_ignore_ascii_case(key))
    }
}

impl DigestResponse {
    fn slot(&mut self, field: Field) -> &mut Option<String> {
        match field {
            Field::Username => &mut self.username,
            Field::Realm => &mut self.realm,
            Field::Nonce => &mut self.nonce,
            Field::Cnonce => &mut self.cnonce,
            Field::Nc => &mut self.nc,
            Field::Qop => &mut self.qop,
            Field::DigestUri => &mut self.digest_uri,
            Field::Response => &mut self.response,
            Field::Charset => &mut self.charset,
            Field::Authzid => &mut self.authzid,
        }
    }
}

/// Parses `directive *("," directive)` with `directive = token LWS "=" LWS (token |
/// quoted-string)` (RFC 2831 section 7.1, with the #rule of RFC 2616 section 2.1: empty
/// elements and whitespace around commas are allowed). Keys ignore ASCII case; a
/// repeated known directive is an error. One pass, each byte looked at a bounded number
/// of times.
fn parse_digest_response(text: &str) -> Result<DigestResponse, SaslError> {
    let bytes = text.as_bytes();
    let mut directives = DigestResponse::default();
    let mut cursor = 0;
    loop {
        cursor = skip_whitespace(bytes, cursor);
        match bytes.get(cursor) {
            None => return Ok(directives),
            Some(b',') => {
                cursor += 1;
                continue;
            }
            Some(_) => {}
        }
        let key_start = cursor;
        while bytes.get(cursor).copied().is_some_and(is_token_byte) {
            cursor += 1;
        }
        // The key is ASCII, so both ends are character boundaries.
        let key = match text.get(key_start..cursor) {
            Some(key) if !key.is_empty() => key,
            _ => return Err(malformed("expected a directive name", cursor)),
        };
        cursor = skip_whitespace(bytes, cursor);
        if bytes.get(cursor) != Some(&b'=') {
            return Err(malformed("expected '=' after the directive name", cursor));
        }
        cursor = skip_whitespace(bytes, cursor + 1);
        let (value, value_end) = parse_value(text, cursor)?;
        cursor = skip_whitespace(bytes, value_end);
        match bytes.get(cursor) {
            None => {}
            Some(b',') => cursor += 1,
            Some(_) => return Err(malformed("expected ',' after a directive", cursor)),
        }
        if let Some(field) = Field::from_key(key) {
            let slot = directives.slot(field);
            if slot.is_some() {
                return Err(SaslError::Duplicate(field.name()));
            }
            *slot = Some(value);
        }
    }
}

/// Parses a directive value starting at `start`: a quoted-string (backslash escapes the
/// next character) or a bare run of characters up to a comma, quote or whitespace.
/// Returns the unescaped value and the offset just past it.
fn parse_value(text: &str, start: usize) -> Result<(String, usize), SaslError> {
    let bytes = text.as_bytes();
    if bytes.get(start) == Some(&b'"') {
        let mut value = Vec::new();
        let mut cursor = start + 1;
        loop {
            match bytes.get(cursor) {
                None => return Err(malformed("unterminated quoted string", start)),
                Some(b'"') => break,
                Some(b'\\') => {
                    let escaped = bytes
                        .get(cursor + 1)
                        .ok_or_else(|| malformed("unterminated quoted string", start))?;
                    value.push(*escaped);
                    cursor += 2;
                }
                Some(byte) => {
                    value.push(*byte);
                    cursor += 1;
                }
            }
        }
        // Only ASCII backslashes were removed from valid UTF-8, so this cannot fail;
        // map the error anyway rather than trust that argument with a panic.
        let value = String::from_utf8(value).map_err(|_| SaslError::NotUtf8)?;
        return Ok((value, cursor + 1));
    }
    let mut end = start;
    while bytes
        .get(end)
        .is_some_and(|&b| !matches!(b, b',' | b'"') && !is_whitespace(b) && !b.is_ascii_control())
    {
        end += 1;
    }
    // The run stops only at ASCII bytes or the end, so both ends are boundaries.
    match text.get(start..end) {
        Some(value) if !value.is_empty() => Ok((value.to_owned(), end)),
        _ => Err(malformed("expected a value", start)),
    }
}

fn malformed(reason: &'static str, offset_bytes: usize) -> SaslError {
    SaslError::Malformed {
        reason,
        offset_bytes,
    }
}

/// Linear whitespace (RFC 2616 LWS, folding included).
fn is_whitespace(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\r' | b'\n')
}

fn skip_whitespace(bytes: &[u8], mut cursor: usize) -> usize {
    while bytes.get(cursor).copied().is_some_and(is_whitespace) {
        cursor += 1;
    }
    cursor
}

/// An RFC 2616 token character: visible ASCII except separators.
fn is_token_byte(byte: u8) -> bool {
    byte.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&byte)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    /// The nonce bytes of every exchange below: 0, 1, ..., 23.
    const NONCE_BYTES_TEST: [u8; NONCE_BYTES] = [
        0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23,
    ];
    /// Their base64, the nonce in the challenge.
    const NONCE: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYX";

    /// A response produced by pure-sasl 0.6 (kazoo's SASL library) as
    /// `SASLClient("zk-sasl-md5", service="zookeeper", mechanism="DIGEST-MD5",
    /// username="bob", password="bobsecret")` processing our challenge with [`NONCE`].
    const PURE_SASL_BOB: &str = "qop=auth,realm=\"zk-sasl-md5\",username=\"bob\",\
        nonce=\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYX\",cnonce=\"9671711785953445\",nc=00000001,\
        digest-uri=\"zookeeper/zk-sasl-md5\",response=d81f1c0ed3b0e566bb2b176de4020a5d";

    fn users(user: &str) -> Option<&'static str> {
        match user {
            "bob" => Some("bobsecret"),
            "jörg" => Some("secret"),
            "b\"o\\b" => Some("quoted"),
            _ => None,
        }
    }

    /// A server that has sent its challenge with [`NONCE`].
    fn challenged() -> DigestMd5Server {
        let mut server = DigestMd5Server::new();
        server.step(b"", &NONCE_BYTES_TEST, users).unwrap();
        server
    }

    /// Runs the second step of a fresh exchange with `response`.
    fn respond(response: &str) -> Result<Step, SaslError> {
        challenged().step(response.as_bytes(), &NONCE_BYTES_TEST, users)
    }

    /// A digest-response for `user` with `password`, `realm` (omitted when `None`) and
    /// `digest_uri`, computed by this module: for tests whose subject is the parser or a
    /// check other than the digest arithmetic.
    fn response_for(user: &str, password: &str, realm: Option<&str>, digest_uri: &str) -> String {
        let values = digest_values(&DigestInputs {
            username: user,
            realm: realm.unwrap_or(""),
            password,
            nonce: NONCE,
            cnonce: "cnonce1",
            nc: "00000001",
            digest_uri,
            authzid: None,
        });
        let escaped = user.replace('\\', "\\\\").replace('"', "\\\"");
        let realm = realm.map_or(String::new(), |realm| format!("realm=\"{realm}\","));
        format!(
            "username=\"{escaped}\",{realm}nonce=\"{NONCE}\",cnonce=\"cnonce1\",nc=00000001,\
             qop=auth,digest-uri=\"{digest_uri}\",response={}",
            values.response
        )
    }

    // RFC 2831 section 4's worked example (md5-sess, qop auth) gives both values; this
    // pins the digest arithmetic independently of any client.
    #[test]
    fn rfc2831_example_digest_values() {
        let values = digest_values(&DigestInputs {
            username: "chris",
            realm: "elwood.innosoft.com",
            password: "secret",
            nonce: "OA6MG9tEQGm2hh",
            cnonce: "OA6MHXh6VqTrRk",
            nc: "00000001",
            digest_uri: "imap/elwood.innosoft.com",
            authzid: None,
        });
        assert_eq!(values.response, "d388dad90d4bbd760a152321f2143af7");
        assert_eq!(values.rspauth, "ea40f60335c427b5527b84dbabcdfffd");
    }

    // The challenge carries exactly what Java's server sends for ZooKeeper, with the
    // caller's nonce bytes in base64.
    #[test]
    fn challenge_offers_zookeeper_realm_and_nonce() {
        let mut server = DigestMd5Server::new();
        let step = server.step(b"", &NONCE_BYTES_TEST, users).unwrap();
        let expected = format!(
            "realm=\"zk-sasl-md5\",nonce=\"{NONCE}\",qop=\"auth\",charset=utf-8,\
             algorithm=md5-sess"
        );
        assert_eq!(step, Step::Challenge(expected.into_bytes()));
        assert_eq!(server.authenticated_user(), None);
    }

    // Interop with kazoo: a real pure-sasl response is accepted, and our rspauth is the
    // value pure-sasl itself computes to authenticate the server.
    #[test]
    fn accepts_pure_sasl_response() {
        let mut server = challenged();
        let step = server
            .step(PURE_SASL_BOB.as_bytes(), &NONCE_BYTES_TEST, users)
            .unwrap();
        assert_eq!(
            step,
            Step::Complete {
                token: b"rspauth=4eaeb41c82e7a363b9b65db69638bccc".to_vec(),
                user: "bob".to_owned(),
            }
        );
        assert_eq!(server.authenticated_user(), Some("bob"));
    }

    // pure-sasl with a password outside ISO-8859-1: both sides hash its UTF-8 bytes.
    #[test]
    fn accepts_pure_sasl_response_with_utf8_password() {
        let response = "qop=auth,realm=\"zk-sasl-md5\",username=\"bob\",\
            nonce=\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYX\",cnonce=\"9389749107489287\",nc=00000001,\
            digest-uri=\"zookeeper/zk-sasl-md5\",response=00eca18da93cd8e1101546073c783ed0";
        let step = challenged().step(response.as_bytes(), &NONCE_BYTES_TEST, |_: &str| {
            Some("секрет")
        });
        assert_eq!(
            step.unwrap(),
            Step::Complete {
                token: b"rspauth=b501dd8f42882383079eb993ac34b6ac".to_vec(),
                user: "bob".to_owned(),
            }
        );
    }

    // Interop with ZooKeeper's Java client: responses of the JDK 17 DigestMD5Client
    // (created as ZooKeeper does: protocol "zookeeper", server name "zk-sasl-md5") to
    // our challenge are accepted, and each rspauth below was accepted by that client
    // (isComplete() true). They cover an ASCII password, an ISO-8859-1 password, and an
    // ISO-8859-1 user name with an authzid, which enters A1.
    #[test]
    fn accepts_java_client_responses() {
        let cases = [
            (
                "bob",
                "bobsecret",
                "charset=utf-8,username=\"bob\",realm=\"zk-sasl-md5\",\
                 nonce=\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYX\",nc=00000001,\
                 cnonce=\"Yp0PKMasUSMOnreYioIXy07Tkc1yqexIYhzDoM1j\",\
                 digest-uri=\"zookeeper/zk-sasl-md5\",maxbuf=65536,\
                 response=03a6f8e1c7a74ff3ce01b51182e26eb4,qop=auth",
                "b764c2b7dece07f5c6c7c2bf31f4d9b1",
            ),
            (
                "bob",
                "pässwörd",
                "charset=utf-8,username=\"bob\",realm=\"zk-sasl-md5\",\
                 nonce=\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYX\",nc=00000001,\
                 cnonce=\"5UxjiCu4AMtbM674i4dToPSJn+Kumx22m4DxciOu\",\
                 digest-uri=\"zookeeper/zk-sasl-md5\",maxbuf=65536,\
                 response=ab1bea0d68d50d7839a58db6573f6107,qop=auth",
                "74a5375179a4c7a3b03401fe795d817b",
            ),
            (
                "jörg",
                "secret",
                "charset=utf-8,username=\"jörg\",realm=\"zk-sasl-md5\",\
                 nonce=\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYX\",nc=00000001,\
                 cnonce=\"aLfdxszekhgV5kR1S/bu8/dOSsUhCGO9gYXrbelE\",\
                 digest-uri=\"zookeeper/zk-sasl-md5\",maxbuf=65536,\
                 response=1a18c6e0f9a3afadd7269b306c3b2fa0,qop=auth,authzid=\"jörg\"",
                "620c116fe016d6ca67206153e054be36",
            ),
        ];
        for (user, password, response, rspauth) in cases {
            let step = challenged().step(response.as_bytes(), &NONCE_BYTES_TEST, |_: &str| {
                Some(password)
            });
            assert_eq!(
                step.unwrap(),
                Step::Complete {
                    token: format!("rspauth={rspauth}").into_bytes(),
                    user: user.to_owned(),
                },
                "{response}"
            );
        }
    }

    // Without a realm directive the realm enters A1 as the empty string; the expected
    // value was computed by an independent Python implementation (checked against the
    // JDK client above).
    #[test]
    fn accepts_absent_realm_as_empty() {
        let response = format!(
            "username=\"bob\",nonce=\"{NONCE}\",cnonce=\"OA6MHXh6VqTrRk\",nc=00000001,\
             digest-uri=\"zookeeper/zk-sasl-md5\",response=37041abd60da3451a6626cf0f33089b8"
        );
        assert_eq!(
            respond(&response).unwrap(),
            Step::Complete {
                token: b"rspauth=8b157f34dc18e1f57653c84240ddd292".to_vec(),
                user: "bob".to_owned(),
            }
        );
    }

    // A wrong password and an unknown user fail with the same error kind.
    #[test]
    fn rejects_wrong_password_and_unknown_user_alike() {
        let wrong_password = response_for("bob", "guess", Some(REALM), DIGEST_URI);
        assert_eq!(
            respond(&wrong_password),
            Err(SaslError::Rejected {
                user: "bob".to_owned()
            })
        );
        let unknown = response_for("mallory", "", Some(REALM), DIGEST_URI);
        assert_eq!(
            respond(&unknown),
            Err(SaslError::Rejected {
                user: "mallory".to_owned()
            })
        );
    }

    // Each directive check rejects a response that is otherwise the valid pure-sasl one.
    #[test]
    fn rejects_each_bad_directive() {
        let cases = [
            (
                PURE_SASL_BOB.replace("nonce=\"AAEC", "nonce=\"BAEC"),
                SaslError::NonceMismatch,
            ),
            (
                PURE_SASL_BOB.replace("nc=00000001", "nc=00000002"),
                SaslError::BadNc,
            ),
            (
                PURE_SASL_BOB.replace("qop=auth", "qop=auth-conf"),
                SaslError::BadQop,
            ),
            (
                PURE_SASL_BOB.replace("qop=auth", "qop=auth-int"),
                SaslError::BadQop,
            ),
            (
                PURE_SASL_BOB.replace("zookeeper/zk-sasl-md5", "zookeeper/localhost"),
                SaslError::BadDigestUri,
            ),
            (
                PURE_SASL_BOB.replace("realm=\"zk-sasl-md5\"", "realm=\"other\""),
                SaslError::BadRealm,
            ),
            (
                PURE_SASL_BOB.replace("realm=\"zk-sasl-md5\"", "realm=\"\""),
                SaslError::BadRealm,
            ),
            (
                format!("{PURE_SASL_BOB},charset=iso-8859-1"),
                SaslError::BadCharset,
            ),
            (
                format!("{PURE_SASL_BOB},charset=UTF-8"),
                SaslError::BadCharset,
            ),
            (
                format!("{PURE_SASL_BOB},authzid=\"alice\""),
                SaslError::AuthzidMismatch,
            ),
            (
                PURE_SASL_BOB.replace("response=d81f", "response=D81F"),
                SaslError::BadResponseFormat,
            ),
            (
                PURE_SASL_BOB.replace("=d81f1c0ed3b0e566bb2b176de4020a5d", "=d81f"),
                SaslError::BadResponseFormat,
            ),
            (
                format!("{PURE_SASL_BOB},nc=00000001"),
                SaslError::Duplicate("nc"),
            ),
            (
                format!("{PURE_SASL_BOB},USERNAME=\"bob\""),
                SaslError::Duplicate("username"),
            ),
            (
                PURE_SASL_BOB.replace("cnonce=", "x-cnonce="),
                SaslError::Missing("cnonce"),
            ),
            (String::new(), SaslError::Missing("username")),
        ];
        for (response, expected) in cases {
            assert_eq!(respond(&response), Err(expected), "{response}");
        }
    }

    // Syntax errors, non-UTF-8 and oversized tokens are typed errors.
    #[test]
    fn rejects_malformed_tokens() {
        let cases: [(&[u8], SaslError); 6] = [
            (
                b"username",
                malformed("expected '=' after the directive name", 8),
            ),
            (
                b"username=\"bob",
                malformed("unterminated quoted string", 9),
            ),
            (
                b"username=\"bob\\",
                malformed("unterminated quoted string", 9),
            ),
            (b"username=", malformed("expected a value", 9)),
            (
                b"username=\"bob\" nonce=x",
                malformed("expected ',' after a directive", 15),
            ),
            (b"username=\"b\xffob\"", SaslError::NotUtf8),
        ];
        for (token, expected) in cases {
            let step = challenged().step(token, &NONCE_BYTES_TEST, users);
            assert_eq!(step, Err(expected), "{}", token.escape_ascii());
        }
        let oversized = vec![b','; RESPONSE_BYTES_MAX + 1];
        assert_eq!(
            challenged().step(&oversized, &NONCE_BYTES_TEST, users),
            Err(SaslError::TooLong {
                length_bytes: RESPONSE_BYTES_MAX + 1
            })
        );
    }

    // Quoted strings unescape \" and \\, and the unescaped name is the one hashed and
    // granted.
    #[test]
    fn quoted_string_escapes() {
        let response = response_for("b\"o\\b", "quoted", Some(REALM), DIGEST_URI);
        assert!(response.starts_with(r#"username="b\"o\\b","#), "{response}");
        let step = respond(&response).unwrap();
        assert!(matches!(step, Step::Complete { user, .. } if user == "b\"o\\b"));
    }

    // Keys ignore case, whitespace may surround '=' and ',', empty list elements and
    // unknown directives are skipped, and the digest-uri ignores ASCII case (hashed as
    // sent).
    #[test]
    fn accepts_lenient_syntax() {
        let uri = "ZooKeeper/ZK-SASL-MD5";
        let response = response_for("bob", "bobsecret", Some(REALM), uri)
            .replace(",", " ,\t, ")
            .replace("username=", "UserName =  ")
            .replace("nc=", "NC= ");
        let response = format!(" cipher=rc4 , {response},maxbuf=1024,x-unknown=\"a,b\" ");
        let step = respond(&response).unwrap();
        assert!(matches!(step, Step::Complete { user, .. } if user == "bob"));
    }

    // The first token must be empty, and the exchange is over after success or failure.
    #[test]
    fn exchange_order() {
        let mut server = DigestMd5Server::new();
        assert_eq!(
            server.step(b"username=bob", &NONCE_BYTES_TEST, users),
            Err(SaslError::InitialResponse)
        );
        assert_eq!(
            server.step(b"", &NONCE_BYTES_TEST, users),
            Err(SaslError::AlreadyDone)
        );

        let mut server = challenged();
        server
            .step(PURE_SASL_BOB.as_bytes(), &NONCE_BYTES_TEST, users)
            .unwrap();
        assert_eq!(
            server.step(PURE_SASL_BOB.as_bytes(), &NONCE_BYTES_TEST, users),
            Err(SaslError::AlreadyDone)
        );
        assert_eq!(server.authenticated_user(), Some("bob"));

        let mut server = challenged();
        let wrong = PURE_SASL_BOB.replace("nc=00000001", "nc=00000002");
        assert_eq!(
            server.step(wrong.as_bytes(), &NONCE_BYTES_TEST, users),
            Err(SaslError::BadNc)
        );
        assert_eq!(
            server.step(PURE_SASL_BOB.as_bytes(), &NONCE_BYTES_TEST, users),
            Err(SaslError::AlreadyDone)
        );
        assert_eq!(server.authenticated_user(), None);
    }

    // Every proper prefix of a valid response fails cleanly (none authenticates).
    #[test]
    fn truncations_are_rejected() {
        for end in 0..PURE_SASL_BOB.len() {
            let step =
                challenged().step(&PURE_SASL_BOB.as_bytes()[..end], &NONCE_BYTES_TEST, users);
            assert!(step.is_err(), "prefix of {end} bytes was accepted");
        }
    }

    // A token of the largest accepted size made of many tiny directives is parsed to
    // the end and fails cleanly.
    #[test]
    fn many_directives_up_to_the_limit() {
        let token = "a=b,".repeat(RESPONSE_BYTES_MAX / 4);
        assert_eq!(token.len(), RESPONSE_BYTES_MAX);
        assert_eq!(
            challenged().step(token.as_bytes(), &NONCE_BYTES_TEST, users),
            Err(SaslError::Missing("username"))
        );
    }

    proptest! {
        // Arbitrary bytes never panic and never authenticate.
        #[test]
        fn arbitrary_tokens_never_panic(token in proptest::collection::vec(any::<u8>(), 0..512)) {
            prop_assert!(challenged().step(&token, &NONCE_BYTES_TEST, users).is_err());
        }

        // Mutations of a valid response never panic. (Some still authenticate, such as
        // a change in a key's case, so only the absence of a panic is asserted.)
        #[test]
        fn mutated_responses_never_panic(
            edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
            end in any::<usize>(),
        ) {
            let mut token = PURE_SASL_BOB.as_bytes().to_vec();
            for (index, byte) in edits {
                let index = index % token.len();
                token[index] = byte;
            }
            token.truncate(end % (token.len() + 1));
            let _ = challenged().step(&token, &NONCE_BYTES_TEST, users);
        }
    }
}
