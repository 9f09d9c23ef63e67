//! `auth_parsers`: arbitrary bytes into the two parsers of authentication input: the
//! server side of a SASL DIGEST-MD5 exchange (`paddock_core::sasl`, what any client may
//! send) and the JAAS file reader (`paddock_net_real::jaas`, what an operator writes).
//!
//! The first byte selects: bit 0 clear, the rest is a client's digest-response after the
//! challenge (bit 1 set: the rest is the first token instead, which must be empty);
//! bit 0 set, the rest is a JAAS file's text.
//!
//! Properties: never a panic; a fuzzed digest-response never authenticates (the fuzzer
//! cannot invert MD5, so success would mean a check was skipped), and after a failure the
//! exchange stays failed; a JAAS error names a line of the text, and parsing is a pure
//! function.

use paddock_core::sasl::{DigestMd5Server, NONCE_BYTES, SaslError, Step};
use paddock_net_real::jaas::{Jaas, JaasError};

/// The target body. See the module documentation.
pub fn run(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    if selector & 1 == 1 {
        jaas(rest);
    } else {
        digest(rest, selector & 2 == 2);
    }
}

fn digest(token: &[u8], as_first: bool) {
    let nonce = [0x5a; NONCE_BYTES];
    let mut server = DigestMd5Server::new();
    let users = |user: &str| (user == "bob").then_some("bobsecret");
    let result = if as_first {
        server.step(token, &nonce, users)
    } else {
        match server.step(b"", &nonce, users) {
            Ok(Step::Challenge(_)) => {}
            other => panic!("the first empty token gave {other:?}"),
        }
        server.step(token, &nonce, users)
    };
    match result {
        Ok(Step::Complete { user, .. }) => panic!("a fuzzed response authenticated {user:?}"),
        Ok(Step::Challenge(_)) => assert!(as_first && token.is_empty()),
        Err(_) => {
            assert_eq!(server.authenticated_user(), None);
            assert_eq!(
                server.step(b"", &nonce, users),
                Err(SaslError::AlreadyDone),
                "a failed exchange went on"
            );
        }
    }
}

fn jaas(bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    let parsed = Jaas::parse(&text);
    assert_eq!(
        Jaas::parse(&text),
        parsed,
        "parsing the same text twice differs"
    );
    if let Err(JaasError::Syntax { line, reason }) = parsed {
        let lines = text.split('\n').count();
        assert!(
            (1..=lines).contains(&line),
            "error names line {line} of {lines}: {reason}"
        );
        assert!(!reason.is_empty());
    }
}
