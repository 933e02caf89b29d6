//! How gRPC callers of the public ECS API authenticate: with the same access
//! keys as the JSON API, as one metadata entry.
//!
//! ```text
//! authorization: BERTH-HMAC-SHA256 Credential=<access key id>, Timestamp=<yyyymmddThhmmssZ>, Signature=<hex>
//! Signature = hex(HMAC-SHA256(key = "BERTH" + secret access key,
//!                             data = Timestamp + "\n" + gRPC method path))
//! ```
//!
//! The method path is the HTTP/2 path, e.g. `/berth.ecs.v1.ECS/RunTask`, so
//! a signature for one action does not authorize another. The timestamp
//! must be within [`super::sigv4::MAX_SKEW`] of the server's clock. The
//! message body is not covered (interceptors do not see it): beyond one
//! host, serve gRPC with TLS (`--tls-cert`/`--tls-key`), which keeps the
//! header from being replayed by anyone on the path.
//!
//! From a shell (for grpcurl):
//! ```sh
//! ts=$(date -u +%Y%m%dT%H%M%SZ)
//! sig=$(printf '%s\n%s' "$ts" /berth.ecs.v1.ECS/ListClusters | openssl dgst -sha256 -hmac "BERTH$SECRET" -r | cut -d' ' -f1)
//! grpcurl -plaintext -H "authorization: BERTH-HMAC-SHA256 Credential=$AKID, Timestamp=$ts, Signature=$sig" \
//!   -d '{}' 127.0.0.1:7081 berth.ecs.v1.ECS/ListClusters
//! ```

use super::sigv4::{AuthError, MAX_SKEW, amz_date, hmac_hex, parse_amz_date};
use super::{Keys, ct_eq, parameter};
use std::time::SystemTime;

/// The scheme name at the start of the `authorization` value.
pub const SCHEME: &str = "BERTH-HMAC-SHA256";

/// The `authorization` metadata value for calling `path` at `now`.
pub fn authorization(access_key_id: &str, secret: &str, path: &str, now: SystemTime) -> String {
    let timestamp = amz_date(now);
    let signature = sign(secret, &timestamp, path);
    format!("{SCHEME} Credential={access_key_id}, Timestamp={timestamp}, Signature={signature}")
}

fn sign(secret: &str, timestamp: &str, path: &str) -> String {
    hmac_hex(
        format!("BERTH{secret}").as_bytes(),
        format!("{timestamp}\n{path}").as_bytes(),
    )
}

/// Checks an `authorization` value for a call to `path`; returns the
/// access key id.
pub fn verify(
    keys: &Keys,
    authorization: Option<&str>,
    path: &str,
    now: SystemTime,
) -> Result<String, AuthError> {
    let Some(value) = authorization else {
        return Err(AuthError::Missing(format!(
            "Missing Authentication Token: send 'authorization: {SCHEME} Credential=<access key id>, Timestamp=<yyyymmddThhmmssZ>, Signature=<hex>' metadata (see the README)."
        )));
    };
    let rest = value.trim().strip_prefix(SCHEME).ok_or_else(|| {
        AuthError::Incomplete(format!(
            "The authorization metadata must use the {SCHEME} scheme."
        ))
    })?;
    let signature = parameter(rest, "Signature")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            AuthError::InvalidSignature(
                "The authorization metadata carries no Signature.".to_owned(),
            )
        })?;
    let (Some(credential), Some(timestamp)) =
        (parameter(rest, "Credential"), parameter(rest, "Timestamp"))
    else {
        return Err(AuthError::Incomplete(
            "The authorization metadata needs Credential, Timestamp and Signature.".to_owned(),
        ));
    };
    let at = parse_amz_date(timestamp).ok_or_else(|| {
        AuthError::Incomplete(format!(
            "Timestamp '{timestamp}' is not of the form yyyymmddThhmmssZ."
        ))
    })?;
    if at + MAX_SKEW < now || at > now + MAX_SKEW {
        return Err(AuthError::InvalidSignature(format!(
            "Signature expired or not yet current: {timestamp} is more than 15 minutes from the server's time {}.",
            amz_date(now)
        )));
    }
    let key = keys.get(credential).ok_or_else(|| {
        AuthError::Unrecognized(
            "The security token included in the request is invalid: the access key id is not in the control plane's credentials file.".to_owned(),
        )
    })?;
    let expected = sign(key.secret_access_key.expose(), timestamp, path);
    if !ct_eq(expected.as_bytes(), signature.as_bytes()) {
        return Err(AuthError::InvalidSignature(
            "The request signature we calculated does not match the signature you provided. Check the secret access key and that the signed path is the gRPC method path.".to_owned(),
        ));
    }
    Ok(key.access_key_id.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_failures() {
        let keys = Keys::from_pairs([("AKIDEXAMPLE", "0123456789abcdef0123")]);
        let now = parse_amz_date("20261130T120000Z").unwrap();
        let path = "/berth.ecs.v1.ECS/RunTask";
        let good = authorization("AKIDEXAMPLE", "0123456789abcdef0123", path, now);
        assert_eq!(
            verify(&keys, Some(&good), path, now).unwrap(),
            "AKIDEXAMPLE"
        );
        let kind = |v: Option<&str>, p: &str| verify(&keys, v, p, now).unwrap_err().type_name();
        assert_eq!(
            kind(Some(&good), "/berth.ecs.v1.ECS/StopTask"),
            "InvalidSignatureException"
        );
        assert_eq!(kind(None, path), "InvalidSignatureException");
        assert_eq!(kind(Some("Bearer x"), path), "IncompleteSignatureException");
        let other = authorization("AKIDOTHER", "0123456789abcdef0123", path, now);
        assert_eq!(kind(Some(&other), path), "UnrecognizedClientException");
        let wrong = authorization("AKIDEXAMPLE", "0123456789abcdef0124", path, now);
        assert_eq!(kind(Some(&wrong), path), "InvalidSignatureException");
        let old = authorization(
            "AKIDEXAMPLE",
            "0123456789abcdef0123",
            path,
            now - MAX_SKEW - std::time::Duration::from_secs(1),
        );
        assert_eq!(kind(Some(&old), path), "InvalidSignatureException");
    }

    #[test]
    fn matches_the_documented_openssl_recipe() {
        // printf '%s\n%s' 20261130T120000Z /berth.ecs.v1.ECS/ListClusters | openssl dgst -sha256 -hmac BERTH0123456789abcdef0123
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg("printf '%s\\n%s' 20261130T120000Z /berth.ecs.v1.ECS/ListClusters | openssl dgst -sha256 -hmac BERTH0123456789abcdef0123 -r | cut -d' ' -f1")
            .output()
            .expect("sh runs");
        let from_openssl = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        assert_eq!(
            from_openssl.len(),
            64,
            "openssl dgst failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            sign(
                "0123456789abcdef0123",
                "20261130T120000Z",
                "/berth.ecs.v1.ECS/ListClusters"
            ),
            from_openssl
        );
    }
}
