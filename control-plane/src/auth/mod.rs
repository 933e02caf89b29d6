//! Who may talk to the control plane.
//!
//! - API callers (the JSON API and the public gRPC API) prove they hold one
//!   of the access keys in the credentials file ([`Keys`]): JSON requests
//!   with AWS Signature Version 4 ([`sigv4`]), gRPC calls with an HMAC in
//!   their metadata ([`grpc`]).
//! - Agents present the join token ([`JoinToken`]) on every call; after
//!   registration each container instance also has its own secret, so one
//!   agent cannot speak for another's instance.
//!
//! Secrets never reach logs or error messages: the types holding them print
//! as `<redacted>`, and failures name only the access key id.

pub mod grpc;
pub mod sigv4;

use serde::Deserialize;
use std::collections::HashMap;
use std::fmt;
use std::path::Path;

/// A value replaced while readers may still hold the old one: the keys and
/// join tokens, reloaded from their files on SIGHUP.
#[derive(Debug)]
pub struct Shared<T>(std::sync::RwLock<std::sync::Arc<T>>);

impl<T> Shared<T> {
    /// Shares `value`.
    pub fn new(value: T) -> std::sync::Arc<Self> {
        std::sync::Arc::new(Shared(std::sync::RwLock::new(std::sync::Arc::new(value))))
    }

    /// The current value.
    pub fn get(&self) -> std::sync::Arc<T> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Replaces the value for every later reader.
    pub fn replace(&self, value: T) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = std::sync::Arc::new(value);
    }
}

/// A secret string that never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps `value`.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself; only for computing signatures.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// One API user.
#[derive(Debug, Clone)]
pub struct Key {
    /// The access key id (not secret: it names the key in logs).
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: Secret,
    /// Who the key belongs to, for logs.
    pub name: Option<String>,
}

/// The access keys API callers sign with.
#[derive(Debug, Clone, Default)]
pub struct Keys {
    by_id: HashMap<String, Key>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CredentialsFile {
    #[serde(default)]
    credentials: Vec<CredentialEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CredentialEntry {
    access_key_id: String,
    secret_access_key: String,
    name: Option<String>,
}

impl Keys {
    /// Reads a credentials file: TOML with one `[[credentials]]` table per
    /// user holding `access_key_id`, `secret_access_key` and an optional
    /// `name`.
    pub fn load(path: &Path) -> Result<Keys, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the credentials file {}: {e}", path.display()))?;
        Keys::parse(&text).map_err(|e| format!("credentials file {}: {e}", path.display()))
    }

    /// Parses the credentials file's text.
    pub fn parse(text: &str) -> Result<Keys, String> {
        // toml's errors quote the offending line, which may hold a secret:
        // report only where the problem is.
        let file: CredentialsFile = toml::from_str(text).map_err(|e| match e.span() {
            Some(span) => format!(
                "not valid: expected [[credentials]] tables with access_key_id, secret_access_key and an optional name (problem at line {})",
                text[..span.start.min(text.len())].lines().count().max(1)
            ),
            None => "not valid: expected [[credentials]] tables with access_key_id, secret_access_key and an optional name".to_owned(),
        })?;
        if file.credentials.is_empty() {
            return Err("it holds no [[credentials]] table".to_owned());
        }
        let mut keys = Keys::default();
        for (i, entry) in file.credentials.into_iter().enumerate() {
            let n = i + 1;
            let id = entry.access_key_id.trim().to_owned();
            if id.len() < 4
                || id.len() > 128
                || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            {
                return Err(format!(
                    "credentials #{n}: access_key_id must be 4 to 128 letters, digits or underscores"
                ));
            }
            if entry.secret_access_key.len() < 16
                || entry.secret_access_key.trim() != entry.secret_access_key
            {
                return Err(format!(
                    "credentials #{n} ({id}): secret_access_key must be at least 16 characters with no surrounding spaces"
                ));
            }
            let key = Key {
                access_key_id: id.clone(),
                secret_access_key: Secret(entry.secret_access_key),
                name: entry.name,
            };
            if keys.by_id.insert(id.clone(), key).is_some() {
                return Err(format!("access_key_id {id} appears twice"));
            }
        }
        Ok(keys)
    }

    /// Builds keys from (id, secret) pairs (tests, embedding).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Keys {
        Keys {
            by_id: pairs
                .into_iter()
                .map(|(id, secret)| {
                    (
                        id.to_owned(),
                        Key {
                            access_key_id: id.to_owned(),
                            secret_access_key: Secret::new(secret),
                            name: None,
                        },
                    )
                })
                .collect(),
        }
    }

    /// The key with this id.
    pub fn get(&self, access_key_id: &str) -> Option<&Key> {
        self.by_id.get(access_key_id)
    }

    /// How many keys there are.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

/// The token agents join with. A file may hold several (one per line) so a
/// token can be rotated without a flag day.
#[derive(Debug, Clone)]
pub struct JoinToken {
    tokens: Vec<Secret>,
}

/// Shortest join token accepted.
pub const MIN_TOKEN_LEN: usize = 16;

impl JoinToken {
    /// Reads the token file: one token per line; blank lines and `#`
    /// comments are ignored.
    pub fn load(path: &Path) -> Result<JoinToken, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the agent token file {}: {e}", path.display()))?;
        JoinToken::parse(&text).map_err(|e| format!("agent token file {}: {e}", path.display()))
    }

    /// Parses the token file's text.
    pub fn parse(text: &str) -> Result<JoinToken, String> {
        let tokens: Vec<Secret> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(Secret::new)
            .collect();
        if tokens.is_empty() {
            return Err("it holds no token".to_owned());
        }
        if let Some(i) = tokens
            .iter()
            .position(|t| t.0.len() < MIN_TOKEN_LEN || !t.0.bytes().all(|b| b.is_ascii_graphic()))
        {
            return Err(format!(
                "token #{} must be at least {MIN_TOKEN_LEN} printable characters without spaces (e.g. `openssl rand -hex 32`)",
                i + 1
            ));
        }
        Ok(JoinToken { tokens })
    }

    /// The token an agent sends (the first one in the file).
    pub fn first(&self) -> &Secret {
        &self.tokens[0]
    }

    /// Whether `presented` is one of the tokens (constant time per token).
    pub fn accepts(&self, presented: &str) -> bool {
        self.tokens.iter().fold(false, |ok, t| {
            ok | ct_eq(t.0.as_bytes(), presented.as_bytes())
        })
    }
}

/// The value of parameter `name` in the part of an authorization value
/// after its scheme: `Credential=AKID/..., SignedHeaders=a;b, Signature=ff`
/// (comma-separated `Name=value` pairs, spaces around them ignored).
pub fn parameter<'a>(params: &'a str, name: &str) -> Option<&'a str> {
    params
        .split(',')
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| k.trim() == name)
        .map(|(_, v)| v.trim())
}

/// The access key id an `authorization` value (either scheme) claims, if it
/// looks like one; for logging who was refused (ids are not secret;
/// anything else is not echoed).
pub fn claimed_access_key_id(authorization: &str) -> Option<&str> {
    let (_scheme, params) = authorization.trim_start().split_once(' ')?;
    let id = parameter(params, "Credential")?.split('/').next()?;
    (!id.is_empty()
        && id.len() <= 128
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
    .then_some(id)
}

/// Constant-time equality (the length is not secret).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 15) as usize] as char);
    }
    out
}

/// A fresh random secret: 32 bytes from the OS, hex.
pub fn random_secret() -> String {
    // UUIDv4 draws from the OS generator; two of them are 244 random bits.
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_file() {
        let keys = Keys::parse(
            r#"
            [[credentials]]
            access_key_id = "AKIDEXAMPLE"
            secret_access_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
            name = "ci"

            [[credentials]]
            access_key_id = "BERTHADMIN"
            secret_access_key = "0123456789abcdef0123"
            "#,
        )
        .unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys.get("AKIDEXAMPLE").unwrap().name.as_deref(), Some("ci"));
        let printed = format!("{keys:?}");
        assert!(
            !printed.contains("wJalr") && printed.contains("<redacted>"),
            "{printed}"
        );
    }

    #[test]
    fn bad_credentials_files_say_why_without_the_secret() {
        for (text, says) in [
            ("", "no [[credentials]]"),
            (
                "[[credentials]]\naccess_key_id = \"AK\"\nsecret_access_key = \"0123456789abcdef\"\n",
                "access_key_id",
            ),
            (
                "[[credentials]]\naccess_key_id = \"AKID\"\nsecret_access_key = \"short\"\n",
                "at least 16",
            ),
            (
                "[[credentials]]\naccess_key_id = \"AKID\"\nsecret_access_key = \"0123456789abcdef\"\n[[credentials]]\naccess_key_id = \"AKID\"\nsecret_access_key = \"0123456789abcdef\"\n",
                "twice",
            ),
            (
                "[[credentials]]\naccess_key_id = \"AKID\"\nsecret_access_key = \"0123456789abcdefSECRET\"\nextra = 1\n",
                "line",
            ),
            (
                "[[credentials]]\naccess_key_id = \"AKID\"\nsecret_access_key = 0123456789abcdefSECRET\n",
                "line",
            ),
        ] {
            let e = Keys::parse(text).unwrap_err();
            assert!(e.contains(says), "{text:?}: {e}");
            assert!(
                !e.contains("SECRET") && !e.contains("0123456789abcdef"),
                "{e}"
            );
        }
    }

    #[test]
    fn join_tokens() {
        let t =
            JoinToken::parse("# rotated 2026-11\nnew-token-0123456789\n\nold-token-0123456789\n")
                .unwrap();
        assert!(t.accepts("new-token-0123456789"));
        assert!(t.accepts("old-token-0123456789"));
        assert!(!t.accepts("new-token-012345678"));
        assert!(!t.accepts(""));
        assert_eq!(t.first().expose(), "new-token-0123456789");
        assert!(JoinToken::parse("short\n").is_err());
        assert!(JoinToken::parse("\n# only a comment\n").is_err());
        assert!(!format!("{t:?}").contains("token-0123"));
    }

    #[test]
    fn claimed_ids() {
        assert_eq!(
            claimed_access_key_id(
                "AWS4-HMAC-SHA256 Credential=AKID_1/20261130/x/ecs/aws4_request, SignedHeaders=host"
            ),
            Some("AKID_1")
        );
        assert_eq!(
            claimed_access_key_id("BERTH-HMAC-SHA256 Credential=AKID, Timestamp=1"),
            Some("AKID")
        );
        assert_eq!(claimed_access_key_id("X Credential=evil\nline/x"), None);
        assert_eq!(parameter(" A=1 ,B = 2,C", "B"), Some("2"));
        assert_eq!(parameter("A=1", "C"), None);
        assert_eq!(claimed_access_key_id("Basic abc"), None);
    }

    #[test]
    fn helpers() {
        assert_eq!(hex(&[0, 15, 255]), "000fff");
        assert!(ct_eq(b"abc", b"abc") && !ct_eq(b"abc", b"abd") && !ct_eq(b"abc", b"ab"));
        assert_eq!(random_secret().len(), 64);
    }
}
