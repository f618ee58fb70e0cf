//! Who may call the admin API. Tokens come from a file (`admin.tokens_file`,
//! or systemd's `$CREDENTIALS_DIRECTORY`), one per line, `NAME ROLE TOKEN`;
//! they are compared in constant time, and only the name reaches logs and
//! the audit table.

use sha2::{Digest, Sha256};
use std::path::Path;

/// What a caller may do. `support` reads and resyncs; `ops` does everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Support,
    Ops,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub name: String,
    pub role: Role,
}

struct Entry {
    caller: Caller,
    digest: [u8; 32],
}

/// The known tokens.
#[derive(Default)]
pub struct Tokens(Vec<Entry>);

#[derive(Debug, thiserror::Error)]
pub enum TokensError {
    #[error(transparent)]
    Secret(#[from] crate::config::SecretError),
    #[error("admin tokens file, line {0}: expected `NAME ROLE TOKEN` with ROLE support or ops")]
    Line(usize),
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl Tokens {
    /// Reads the tokens file; a missing file means no tokens (every API call
    /// answers 401), and says so in the log, since a path mistyped in the
    /// configuration looks the same; a malformed line is an error naming
    /// the line.
    pub fn load(path: &Path) -> Result<Self, TokensError> {
        let text = match crate::config::read_secret(path) {
            Ok(t) => t,
            Err(crate::config::SecretError::Read { path, source })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                tracing::warn!(
                    file = %path.display(),
                    "admin.tokens_file does not exist: every API call answers 401 \
                     (health, readiness and metrics are not affected)"
                );
                return Ok(Tokens::default());
            }
            Err(e) => return Err(e.into()),
        };
        Self::parse(&text)
    }

    pub fn parse(text: &str) -> Result<Self, TokensError> {
        let mut entries = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let parts: Vec<&str> = line.split_whitespace().collect();
            let role = match parts.get(1) {
                Some(&"support") => Role::Support,
                Some(&"ops") => Role::Ops,
                _ => return Err(TokensError::Line(i + 1)),
            };
            if parts.len() != 3 || parts[2].len() < 16 {
                return Err(TokensError::Line(i + 1));
            }
            entries.push(Entry {
                caller: Caller {
                    name: parts[0].to_string(),
                    role,
                },
                digest: digest(parts[2]),
            });
        }
        Ok(Tokens(entries))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether some token of the file belongs to this name with this role.
    pub fn has(&self, caller: &Caller) -> bool {
        self.0.iter().any(|e| e.caller == *caller)
    }

    /// The caller a bearer token belongs to. Every entry is compared, each
    /// in constant time, so the answer's timing says nothing about the token.
    pub fn authenticate(&self, token: &str) -> Option<Caller> {
        let d = digest(token);
        let mut found = None;
        for e in &self.0 {
            let diff = e
                .digest
                .iter()
                .zip(d.iter())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b));
            if diff == 0 {
                found = Some(e.caller.clone());
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_map_to_named_callers_with_roles() {
        let t = Tokens::parse(
            "# comment\nalice support aaaaaaaaaaaaaaaaaaaa\nbob ops bbbbbbbbbbbbbbbbbbbbbb\n",
        )
        .unwrap();
        assert_eq!(
            t.authenticate("aaaaaaaaaaaaaaaaaaaa"),
            Some(Caller {
                name: "alice".into(),
                role: Role::Support
            })
        );
        assert_eq!(
            t.authenticate("bbbbbbbbbbbbbbbbbbbbbb").unwrap().role,
            Role::Ops
        );
        assert_eq!(t.authenticate("aaaaaaaaaaaaaaaaaaab"), None);
        assert_eq!(t.authenticate(""), None);
    }

    #[test]
    fn malformed_lines_and_short_tokens_are_named() {
        assert!(matches!(
            Tokens::parse("alice admin aaaaaaaaaaaaaaaaaaaa"),
            Err(TokensError::Line(1))
        ));
        assert!(matches!(
            Tokens::parse("\nalice support short"),
            Err(TokensError::Line(2))
        ));
    }
}
