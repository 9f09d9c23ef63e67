//! `jaas`: the JAAS login configuration file ZooKeeper's SASL settings live in
//! (`-Djava.security.auth.login.config=FILE`), read for the DIGEST-MD5 credentials it
//! holds.
//!
//! The file is a list of named sections, each a list of login modules with options:
//!
//! ```text
//! Server {
//!     org.apache.zookeeper.server.auth.DigestLoginModule required
//!     user_super="adminsecret"
//!     user_bob="bobsecret";
//! };
//! QuorumLearner {
//!     org.apache.zookeeper.server.auth.DigestLoginModule required
//!     username="member" password="memberpw";
//! };
//! ```
//!
//! A server section's `user_NAME="password"` options are the users it accepts; a learner
//! or client section's `username` and `password` are the credentials it presents. Values
//! are quoted strings (`\"` and `\\` escape) or bare words; `//` and `/* */` comments are
//! skipped, as Java's parser does. Only `DigestLoginModule` (or any module whose class name
//! ends in `DigestLoginModule`, or Java's `PlainLoginModule` spelling of the same options)
//! carries credentials Paddock can use: a section naming Kerberos's `Krb5LoginModule` is
//! an error where the section is used, since Kerberos is not supported.

use std::collections::BTreeMap;
use std::path::Path;

/// Why a JAAS file was refused; `line` is 1-based.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JaasError {
    /// The file cannot be read.
    #[error("cannot read {path}: {reason}")]
    Read {
        /// The file.
        path: String,
        /// The system's reason.
        reason: String,
    },
    /// The file does not parse.
    #[error("line {line}: {reason}")]
    Syntax {
        /// Where.
        line: usize,
        /// What was expected.
        reason: String,
    },
    /// A section the configuration uses is absent.
    #[error("no section {0:?}")]
    MissingSection(String),
    /// A section is present but holds no credentials Paddock can use.
    #[error("section {section:?}: {reason}")]
    Unusable {
        /// The section.
        section: String,
        /// Why.
        reason: String,
    },
}

/// One login module line of a section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginModule {
    /// The module's class name.
    pub class: String,
    /// Its control flag (`required`, `optional`, ...).
    pub flag: String,
    /// Its options, in the order written (a repeated key: the later wins).
    pub options: BTreeMap<String, String>,
}

/// A parsed JAAS file: sections by name.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Jaas {
    sections: BTreeMap<String, Vec<LoginModule>>,
}

impl Jaas {
    /// Reads and parses `path`.
    pub fn load(path: &Path) -> Result<Jaas, JaasError> {
        let text = std::fs::read_to_string(path).map_err(|e| JaasError::Read {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Jaas::parse(&text)
    }

    /// Parses the text of a JAAS file.
    pub fn parse(text: &str) -> Result<Jaas, JaasError> {
        let tokens = tokenize(text)?;
        let mut tokens = tokens.into_iter().peekable();
        let mut sections = BTreeMap::new();
        let syntax = |line: usize, reason: String| JaasError::Syntax { line, reason };
        while let Some((line, token)) = tokens.next() {
            let Token::Word(name) = token else {
                return Err(syntax(
                    line,
                    format!("expected a section name, found {token}"),
                ));
            };
            match tokens.next() {
                Some((_, Token::Open)) => {}
                Some((line, other)) => {
                    return Err(syntax(
                        line,
                        format!("expected '{{' after {name}, found {other}"),
                    ));
                }
                None => return Err(syntax(line, format!("{name}: unexpected end of file"))),
            }
            let mut modules = Vec::new();
            loop {
                match tokens.next() {
                    Some((_, Token::Close)) => break,
                    Some((_, Token::Word(class))) => {
                        let flag = match tokens.next() {
                            Some((_, Token::Word(flag))) => flag,
                            Some((line, other)) => {
                                return Err(syntax(
                                    line,
                                    format!("expected a control flag after {class}, found {other}"),
                                ));
                            }
                            None => return Err(syntax(line, "unexpected end of file".into())),
                        };
                        let mut options = BTreeMap::new();
                        loop {
                            match tokens.next() {
                                Some((_, Token::Semicolon)) => break,
                                Some((line, Token::Word(key))) => {
                                    match tokens.next() {
                                        Some((_, Token::Equals)) => {}
                                        _ => {
                                            return Err(syntax(
                                                line,
                                                format!("expected '=' after option {key}"),
                                            ));
                                        }
                                    }
                                    match tokens.next() {
                                        Some((_, Token::Word(value) | Token::Quoted(value))) => {
                                            options.insert(key, value);
                                        }
                                        _ => {
                                            return Err(syntax(
                                                line,
                                                format!("expected a value for option {key}"),
                                            ));
                                        }
                                    }
                                }
                                Some((line, other)) => {
                                    return Err(syntax(
                                        line,
                                        format!("expected an option or ';', found {other}"),
                                    ));
                                }
                                None => {
                                    return Err(syntax(line, "unexpected end of file".into()));
                                }
                            }
                        }
                        modules.push(LoginModule {
                            class,
                            flag,
                            options,
                        });
                    }
                    Some((line, other)) => {
                        return Err(syntax(
                            line,
                            format!("expected a login module or '}}', found {other}"),
                        ));
                    }
                    None => return Err(syntax(line, format!("{name}: missing '}}'"))),
                }
            }
            match tokens.next() {
                Some((_, Token::Semicolon)) => {}
                Some((line, other)) => {
                    return Err(syntax(
                        line,
                        format!("expected ';' after '}}', found {other}"),
                    ));
                }
                None => return Err(syntax(line, format!("{name}: missing ';' after '}}'"))),
            }
            if sections.insert(name.clone(), modules).is_some() {
                return Err(syntax(line, format!("section {name} appears twice")));
            }
        }
        Ok(Jaas { sections })
    }

    /// Whether the file has section `name`.
    pub fn has_section(&self, name: &str) -> bool {
        self.sections.contains_key(name)
    }

    /// The digest module of `section`: an error when the section is absent, names
    /// Kerberos, or has no digest module.
    fn digest_module(&self, section: &str) -> Result<&LoginModule, JaasError> {
        let modules = self
            .sections
            .get(section)
            .ok_or_else(|| JaasError::MissingSection(section.to_owned()))?;
        let unusable = |reason: &str| JaasError::Unusable {
            section: section.to_owned(),
            reason: reason.to_owned(),
        };
        if modules.iter().any(|m| m.class.ends_with("Krb5LoginModule")) {
            return Err(unusable(
                "Kerberos (Krb5LoginModule) is not supported; use DigestLoginModule",
            ));
        }
        modules
            .iter()
            .find(|m| {
                m.class.ends_with("DigestLoginModule") || m.class.ends_with("PlainLoginModule")
            })
            .ok_or_else(|| unusable("no DigestLoginModule"))
    }

    /// The users a server section accepts (`user_NAME="password"`), by name.
    pub fn server_users(&self, section: &str) -> Result<BTreeMap<String, String>, JaasError> {
        let module = self.digest_module(section)?;
        let users: BTreeMap<String, String> = module
            .options
            .iter()
            .filter_map(|(key, value)| {
                key.strip_prefix("user_")
                    .filter(|name| !name.is_empty())
                    .map(|name| (name.to_owned(), value.clone()))
            })
            .collect();
        if users.is_empty() {
            return Err(JaasError::Unusable {
                section: section.to_owned(),
                reason: "no user_NAME=\"password\" option".into(),
            });
        }
        Ok(users)
    }

    /// The credentials a learner or client section presents: `(username, password)`.
    pub fn login(&self, section: &str) -> Result<(String, String), JaasError> {
        let module = self.digest_module(section)?;
        match (
            module.options.get("username"),
            module.options.get("password"),
        ) {
            (Some(user), Some(password)) if !user.is_empty() => {
                Ok((user.clone(), password.clone()))
            }
            _ => Err(JaasError::Unusable {
                section: section.to_owned(),
                reason: "needs username=\"...\" and password=\"...\"".into(),
            }),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(String),
    Quoted(String),
    Open,
    Close,
    Semicolon,
    Equals,
}

impl std::fmt::Display for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Token::Word(w) => write!(f, "{w:?}"),
            Token::Quoted(_) => f.write_str("a quoted string"),
            Token::Open => f.write_str("'{'"),
            Token::Close => f.write_str("'}'"),
            Token::Semicolon => f.write_str("';'"),
            Token::Equals => f.write_str("'='"),
        }
    }
}

/// Splits `text` into tokens with their line numbers, skipping comments.
fn tokenize(text: &str) -> Result<Vec<(usize, Token)>, JaasError> {
    let mut out = Vec::new();
    let mut line = 1;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\n' => line += 1,
            c if c.is_whitespace() => {}
            '{' => out.push((line, Token::Open)),
            '}' => out.push((line, Token::Close)),
            ';' => out.push((line, Token::Semicolon)),
            '=' => out.push((line, Token::Equals)),
            '/' if chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        line += 1;
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let start = line;
                let mut previous = ' ';
                loop {
                    match chars.next() {
                        Some('/') if previous == '*' => break,
                        Some(c) => {
                            if c == '\n' {
                                line += 1;
                            }
                            previous = c;
                        }
                        None => {
                            return Err(JaasError::Syntax {
                                line: start,
                                reason: "unterminated /* comment".into(),
                            });
                        }
                    }
                }
            }
            '"' => {
                let start = line;
                let mut value = String::new();
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(escaped) => value.push(escaped),
                            None => break,
                        },
                        Some(c) => {
                            if c == '\n' {
                                line += 1;
                            }
                            value.push(c);
                        }
                        None => {
                            return Err(JaasError::Syntax {
                                line: start,
                                reason: "unterminated quoted string".into(),
                            });
                        }
                    }
                }
                out.push((start, Token::Quoted(value)));
            }
            c => {
                let mut word = String::from(c);
                while let Some(&next) = chars.peek() {
                    if next.is_whitespace() || matches!(next, '{' | '}' | ';' | '=' | '"') {
                        break;
                    }
                    word.push(next);
                    chars.next();
                }
                out.push((line, Token::Word(word)));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
// ZooKeeper's documented example, with comments.
Server {
       org.apache.zookeeper.server.auth.DigestLoginModule required
       user_super="adminsecret"
       user_bob="bob\"secret";   /* a quote inside */
};
QuorumServer {
       org.apache.zookeeper.server.auth.DigestLoginModule required
       user_test="test";
};
QuorumLearner {
       org.apache.zookeeper.server.auth.DigestLoginModule required
       username="test"
       password=test;
};
Kerb {
  com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true;
};
"#;

    #[test]
    fn reads_the_sections_zookeeper_documents() {
        let jaas = Jaas::parse(SAMPLE).expect("parses");
        let users = jaas.server_users("Server").expect("users");
        assert_eq!(users.get("super").map(String::as_str), Some("adminsecret"));
        assert_eq!(users.get("bob").map(String::as_str), Some("bob\"secret"));
        assert_eq!(users.len(), 2);
        assert_eq!(
            jaas.login("QuorumLearner").expect("login"),
            ("test".to_owned(), "test".to_owned())
        );
        assert_eq!(jaas.server_users("QuorumServer").expect("users").len(), 1);
    }

    #[test]
    fn missing_kerberos_and_empty_sections_are_errors() {
        let jaas = Jaas::parse(SAMPLE).expect("parses");
        assert_eq!(
            jaas.server_users("Client"),
            Err(JaasError::MissingSection("Client".into()))
        );
        assert!(matches!(
            jaas.server_users("Kerb"),
            Err(JaasError::Unusable { reason, .. }) if reason.contains("Kerberos")
        ));
        assert!(matches!(
            jaas.login("Server"),
            Err(JaasError::Unusable { .. })
        ));
        assert!(matches!(
            jaas.server_users("QuorumLearner"),
            Err(JaasError::Unusable { .. })
        ));
    }

    #[test]
    fn syntax_errors_name_their_line() {
        for (text, line) in [
            ("Server {\n m required\n user_a=\"x\";\n};\n", 0),
            ("Server {\n m required\n user_a=\"x\"\n}\n", 4),
            ("Server {\n m required user_a=\n};", 2),
            ("Server \n m required;\n};", 2),
            ("Server {\n m required user_a=\"never closed;\n};", 2),
            ("Server {\n m required;\n};\nServer {\n m required;\n};", 4),
            ("/* open", 1),
            ("Server {\n m", 1),
        ] {
            match Jaas::parse(text) {
                Ok(_) if line == 0 => {}
                Err(JaasError::Syntax { line: at, .. }) => assert_eq!(at, line, "{text:?}"),
                other => panic!("{text:?}: {other:?}"),
            }
        }
    }
}
