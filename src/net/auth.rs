//! Token authentication: the secret a consumer sends once per connection
//! (an auth frame, see [`crate::protocol::mprpc`]) and the tokens a provider accepts.
//!
//! A token is a secret: [`AuthToken`]'s `Debug` never shows it, the config
//! keeps it out of [`Config::raw`](crate::Config::raw), no log line carries
//! it, and a provider compares a presented token with every one it accepts
//! in time that does not depend on where they differ.

use std::fmt;
use std::sync::Arc;

use crate::protocol::mprpc::MAX_TOKEN_LEN;

/// A shared secret. Its `Debug` output is redacted.
#[derive(Clone)]
pub struct AuthToken(Arc<[u8]>);

impl AuthToken {
    /// A token from its text: not empty, at most 1024 bytes.
    pub fn new(token: &str) -> Result<AuthToken, String> {
        if token.is_empty() {
            return Err("an auth token must not be empty".into());
        }
        if token.len() > MAX_TOKEN_LEN {
            return Err(format!(
                "an auth token of {} bytes exceeds {MAX_TOKEN_LEN} bytes",
                token.len()
            ));
        }
        Ok(AuthToken(token.as_bytes().into()))
    }

    /// Comma-separated tokens (`auth_token=a,b`: a provider accepts any).
    pub fn list(tokens: &str) -> Result<Vec<AuthToken>, String> {
        tokens
            .split(',')
            .map(|t| AuthToken::new(t.trim()))
            .collect()
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for AuthToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuthToken(<redacted>)")
    }
}

/// Whether `presented` is one of `accepted`. Every accepted token is
/// compared in full, whatever matched before.
pub(crate) fn accepts(accepted: &[AuthToken], presented: &[u8]) -> bool {
    let mut matched = false;
    for token in accepted {
        matched |= constant_time_eq(token.as_bytes(), presented);
    }
    matched
}

/// `secret == presented`, in time that depends on the secret's length only.
fn constant_time_eq(secret: &[u8], presented: &[u8]) -> bool {
    let mut diff = u8::from(secret.len() != presented.len());
    for (i, s) in secret.iter().enumerate() {
        diff |= s ^ presented.get(i).copied().unwrap_or(!s);
    }
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_listed_token_is_accepted_and_nothing_else() {
        let tokens = AuthToken::list("alpha, beta").unwrap();
        assert!(accepts(&tokens, b"alpha"));
        assert!(accepts(&tokens, b"beta"));
        for wrong in [
            &b""[..],
            b"alph",
            b"alphaa",
            b"Alpha",
            b"gamma",
            b"alpha,beta",
        ] {
            assert!(!accepts(&tokens, wrong), "{wrong:?}");
        }
        assert!(!accepts(&[], b"alpha"));
    }

    #[test]
    fn tokens_are_checked_and_never_shown() {
        assert!(AuthToken::new("").is_err());
        assert!(AuthToken::list("a,,b").is_err());
        assert!(AuthToken::new(&"x".repeat(MAX_TOKEN_LEN + 1)).is_err());
        let shown = format!("{:?}", AuthToken::new("hunter2").unwrap());
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}
