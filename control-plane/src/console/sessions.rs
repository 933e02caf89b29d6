//! Console sign-in: sessions kept in memory, named by an unguessable token
//! carried in an HttpOnly, SameSite=Strict cookie, each with its own CSRF
//! token for the forms that change something.
//!
//! A session is valid while it is younger than [`SESSION_LIFETIME`] and, when
//! the control plane has a credentials file, while its access key is still in
//! that file (removing a key and sending SIGHUP signs its sessions out).
//! Sessions do not survive a restart of the control plane: signing in again is
//! the price of keeping no secret-derived state on disk.

use crate::auth::Keys;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The cookie's name.
pub const COOKIE: &str = "berth_console";

/// How long a session lasts after sign-in.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(8 * 3600);

/// Most sessions kept at once; the oldest goes when a new one would pass it.
const MAX_SESSIONS: usize = 10_000;

/// One signed-in browser.
#[derive(Debug, Clone)]
pub struct Session {
    /// The cookie value.
    pub token: String,
    /// The key that signed in; `None` without a credentials file.
    pub access_key_id: Option<String>,
    /// Echoed by every form that changes something.
    pub csrf: String,
    created: Instant,
    /// A one-time message for the next page (an action's outcome).
    flash: Option<Flash>,
}

/// A message shown once, on the page after an action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flash {
    /// Whether it reports a failure.
    pub error: bool,
    /// The text.
    pub message: String,
}

/// Every open session.
#[derive(Debug, Default)]
pub struct Sessions {
    by_token: Mutex<HashMap<String, Session>>,
}

/// A random token: two version-4 UUIDs, 244 random bits, as 64 hex digits.
fn random_token() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// Compares two secrets in time that depends only on their hashes' length.
pub fn same_secret(a: &str, b: &str) -> bool {
    let (x, y) = (Sha256::digest(a.as_bytes()), Sha256::digest(b.as_bytes()));
    x.iter()
        .zip(y.iter())
        .fold(0u8, |acc, (p, q)| acc | (p ^ q))
        == 0
}

/// Why a sign-in was refused (one message for both, so a caller cannot
/// learn which key ids exist).
pub const SIGN_IN_REFUSED: &str = "The access key ID or secret access key is not right. Use a key from the control plane's credentials file.";

/// Checks a key id and secret against the credentials file.
pub fn check_key(keys: &Keys, access_key_id: &str, secret: &str) -> Result<(), &'static str> {
    match keys.get(access_key_id.trim()) {
        Some(key) if same_secret(key.secret_access_key.expose(), secret) => Ok(()),
        _ => Err(SIGN_IN_REFUSED),
    }
}

impl Sessions {
    /// Opens a session for `access_key_id` (or an anonymous one).
    pub fn open(&self, access_key_id: Option<String>) -> Session {
        let session = Session {
            token: random_token(),
            access_key_id,
            csrf: random_token(),
            created: Instant::now(),
            flash: None,
        };
        let mut all = self.lock();
        all.retain(|_, s| s.created.elapsed() < SESSION_LIFETIME);
        if all.len() >= MAX_SESSIONS
            && let Some(oldest) = all
                .values()
                .min_by_key(|s| s.created)
                .map(|s| s.token.clone())
        {
            all.remove(&oldest);
        }
        all.insert(session.token.clone(), session.clone());
        session
    }

    /// The live session named by `token`, if it has not expired and its key
    /// is still accepted (`keys`, when there is a credentials file).
    pub fn find(&self, token: &str, keys: Option<&Keys>) -> Option<Session> {
        let mut all = self.lock();
        let session = all.get(token)?;
        let key_ok = match (&session.access_key_id, keys) {
            (Some(id), Some(keys)) => keys.get(id).is_some(),
            (None, None) => true,
            // Signed in before a credentials file appeared or after it went:
            // sign in again.
            _ => false,
        };
        if session.created.elapsed() >= SESSION_LIFETIME || !key_ok {
            all.remove(token);
            return None;
        }
        Some(session.clone())
    }

    /// Ends the session.
    pub fn close(&self, token: &str) {
        self.lock().remove(token);
    }

    /// Leaves a message for the session's next page.
    pub fn set_flash(&self, token: &str, flash: Flash) {
        if let Some(s) = self.lock().get_mut(token) {
            s.flash = Some(flash);
        }
    }

    /// Takes the session's message, if any.
    pub fn take_flash(&self, token: &str) -> Option<Flash> {
        self.lock().get_mut(token).and_then(|s| s.flash.take())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.by_token.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The `Set-Cookie` value that carries `token`; `Secure` when the browser
/// reached us over TLS.
pub fn set_cookie(token: &str, secure: bool) -> String {
    format!(
        "{COOKIE}={token}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={}{}",
        SESSION_LIFETIME.as_secs(),
        if secure { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value that removes the cookie.
pub fn clear_cookie(secure: bool) -> String {
    format!(
        "{COOKIE}=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0{}",
        if secure { "; Secure" } else { "" }
    )
}

/// The session token in a `Cookie` header, if any.
pub fn token_from(headers: &http::HeaderMap) -> Option<String> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_owned())
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Keys {
        Keys::from_pairs([("AKIDCONSOLE", "console-secret-0123456789")])
    }

    #[test]
    fn sign_in_takes_only_the_right_secret() {
        let keys = keys();
        assert!(check_key(&keys, "AKIDCONSOLE", "console-secret-0123456789").is_ok());
        assert!(check_key(&keys, " AKIDCONSOLE ", "console-secret-0123456789").is_ok());
        assert_eq!(
            check_key(&keys, "AKIDCONSOLE", "console-secret-012345678"),
            Err(SIGN_IN_REFUSED)
        );
        assert_eq!(
            check_key(&keys, "AKIDOTHER", "console-secret-0123456789"),
            Err(SIGN_IN_REFUSED)
        );
        assert!(!same_secret("a", "b"));
        assert!(same_secret("", ""));
    }

    #[test]
    fn sessions_end_when_closed_or_when_their_key_goes() {
        let sessions = Sessions::default();
        let keys = keys();
        let s = sessions.open(Some("AKIDCONSOLE".to_owned()));
        assert_eq!(s.token.len(), 64);
        assert_ne!(s.token, s.csrf);
        assert!(sessions.find(&s.token, Some(&keys)).is_some());
        assert!(sessions.find("not-a-token", Some(&keys)).is_none());
        // The key left the credentials file (SIGHUP): signed out.
        let other = Keys::from_pairs([("AKIDOTHER", "another-secret-0123456789")]);
        assert!(sessions.find(&s.token, Some(&other)).is_none());
        assert!(sessions.find(&s.token, Some(&keys)).is_none(), "removed");
        let s = sessions.open(Some("AKIDCONSOLE".to_owned()));
        sessions.close(&s.token);
        assert!(sessions.find(&s.token, Some(&keys)).is_none());
        // Anonymous sessions only while there is no credentials file.
        let anon = sessions.open(None);
        assert!(sessions.find(&anon.token, None).is_some());
        assert!(sessions.find(&anon.token, Some(&keys)).is_none());
    }

    #[test]
    fn flash_is_shown_once() {
        let sessions = Sessions::default();
        let s = sessions.open(None);
        let flash = Flash {
            error: false,
            message: "Stopped".into(),
        };
        sessions.set_flash(&s.token, flash.clone());
        assert_eq!(sessions.take_flash(&s.token), Some(flash));
        assert_eq!(sessions.take_flash(&s.token), None);
    }

    #[test]
    fn cookies_are_http_only_strict_and_secure_over_tls() {
        let c = set_cookie("abc", false);
        assert!(c.starts_with("berth_console=abc; Path=/console; HttpOnly; SameSite=Strict"));
        assert!(!c.contains("Secure"));
        assert!(set_cookie("abc", true).ends_with("; Secure"));
        assert!(clear_cookie(false).contains("Max-Age=0"));
        let mut h = http::HeaderMap::new();
        h.insert(
            http::header::COOKIE,
            http::HeaderValue::from_static("a=1; berth_console=tok; b=2"),
        );
        assert_eq!(token_from(&h).as_deref(), Some("tok"));
        h.insert(
            http::header::COOKIE,
            http::HeaderValue::from_static("berth_console="),
        );
        assert_eq!(token_from(&h), None);
    }
}
