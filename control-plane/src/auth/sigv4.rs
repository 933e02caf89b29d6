//! Verifying AWS Signature Version 4 (header form) on JSON API requests.
//!
//! The verifier recomputes the signature from the request's own
//! `SignedHeaders` list (botocore and aws-sdk-rust sign different sets), the
//! path as sent, the query, and the SHA-256 of the raw body. Any region is
//! accepted in the credential scope; the service must be `ecs`; the
//! timestamp must be within [`MAX_SKEW`] of the server's clock.

use super::{Keys, ct_eq, hex, parameter};
use hmac::{Hmac, KeyInit, Mac};
use http::HeaderMap;
use sha2::{Digest, Sha256};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How far a request's timestamp may be from the server's clock.
pub const MAX_SKEW: Duration = Duration::from_secs(15 * 60);

/// The signing service name in the credential scope.
pub const SERVICE: &str = "ecs";

/// Why a request is not authenticated. Messages never hold secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No signature at all.
    #[error("{0}")]
    Missing(String),
    /// An `Authorization` header that cannot be parsed.
    #[error("{0}")]
    Incomplete(String),
    /// The access key id (or a session token) is not known.
    #[error("{0}")]
    Unrecognized(String),
    /// The signature does not match, or the timestamp is out of range.
    #[error("{0}")]
    InvalidSignature(String),
}

impl AuthError {
    /// The error's `__type`.
    pub fn type_name(&self) -> &'static str {
        match self {
            // A missing signature is InvalidSignatureException, as Berth's
            // contract says (the message starts "Missing Authentication
            // Token", AWS's wording); some AWS services name it
            // MissingAuthenticationTokenException. SDKs model neither for
            // ECS, so both surface the same way.
            AuthError::Missing(_) => "InvalidSignatureException",
            AuthError::Incomplete(_) => "IncompleteSignatureException",
            AuthError::Unrecognized(_) => "UnrecognizedClientException",
            AuthError::InvalidSignature(_) => "InvalidSignatureException",
        }
    }

    /// HTTP status: 400 for a malformed header, 403 otherwise.
    pub fn status(&self) -> http::StatusCode {
        match self {
            AuthError::Incomplete(_) => http::StatusCode::BAD_REQUEST,
            _ => http::StatusCode::FORBIDDEN,
        }
    }
}

/// The parts of a request the signature covers.
#[derive(Debug, Clone, Copy)]
pub struct SignedRequest<'a> {
    /// `POST`.
    pub method: &'a str,
    /// The path as the client sent it.
    pub path: &'a str,
    /// The raw query string (without `?`), empty if none.
    pub query: &'a str,
    /// All request headers.
    pub headers: &'a HeaderMap,
    /// The raw body.
    pub body: &'a [u8],
}

/// Who signed a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The access key id used.
    pub access_key_id: String,
    /// The credential scope's region.
    pub region: String,
}

struct Authorization<'a> {
    access_key_id: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
    signed_headers: &'a str,
    signature: &'a str,
}

fn parse_authorization(value: &str) -> Result<Authorization<'_>, AuthError> {
    let incomplete = |what: &str| {
        AuthError::Incomplete(format!(
            "Authorization header requires {what}. Expected 'AWS4-HMAC-SHA256 Credential=<access key id>/<yyyymmdd>/<region>/ecs/aws4_request, SignedHeaders=<h1;h2>, Signature=<hex>'."
        ))
    };
    let rest = value.trim_start().strip_prefix("AWS4-HMAC-SHA256").ok_or_else(|| {
        AuthError::Incomplete(
            "Authorization header must use the AWS4-HMAC-SHA256 algorithm (AWS Signature Version 4)."
                .to_owned(),
        )
    })?;
    let signature = parameter(rest, "Signature").filter(|s| !s.is_empty()).ok_or_else(|| {
        AuthError::InvalidSignature(
            "The request carries no signature: the Authorization header has no 'Signature' parameter."
                .to_owned(),
        )
    })?;
    let credential =
        parameter(rest, "Credential").ok_or_else(|| incomplete("a 'Credential' parameter"))?;
    let signed_headers = parameter(rest, "SignedHeaders")
        .ok_or_else(|| incomplete("a 'SignedHeaders' parameter"))?;
    let mut scope = credential.split('/');
    let (Some(access_key_id), Some(date), Some(region), Some(service), Some("aws4_request"), None) = (
        scope.next(),
        scope.next(),
        scope.next(),
        scope.next(),
        scope.next(),
        scope.next(),
    ) else {
        return Err(AuthError::Incomplete(format!(
            "Credential must have the form <access key id>/<yyyymmdd>/<region>/ecs/aws4_request (got a scope of {} parts).",
            credential.split('/').count()
        )));
    };
    if access_key_id.is_empty() || date.len() != 8 || region.is_empty() {
        return Err(incomplete(
            "a Credential with an access key id, an 8-digit date and a region",
        ));
    }
    Ok(Authorization {
        access_key_id,
        date,
        region,
        service,
        signed_headers,
        signature,
    })
}

/// Checks the request's signature against `keys` at time `now`.
pub fn verify(
    keys: &Keys,
    request: &SignedRequest<'_>,
    now: SystemTime,
) -> Result<Caller, AuthError> {
    let headers = request.headers;
    let Some(authorization) = headers.get(http::header::AUTHORIZATION) else {
        return Err(AuthError::Missing(
            "Missing Authentication Token: the request is not signed. Sign it with AWS Signature Version 4 using an access key from the control plane's credentials file (the aws CLI and SDKs do this when credentials are configured).".to_owned(),
        ));
    };
    let authorization = authorization.to_str().map_err(|_| {
        AuthError::Incomplete("The Authorization header is not valid ASCII.".to_owned())
    })?;
    let auth = parse_authorization(authorization)?;
    if auth.service != SERVICE {
        return Err(AuthError::InvalidSignature(format!(
            "Credential should be scoped to correct service: '{SERVICE}' (got '{}').",
            auth.service
        )));
    }
    let signed: Vec<&str> = auth.signed_headers.split(';').collect();
    // Host, and X-Amz-Target (which names the action) when there is one,
    // must be signed: every AWS client signs both. (Without a target the
    // request names no action and fails as UnknownOperationException.)
    let target_present = headers.contains_key("x-amz-target");
    for required in ["host", "x-amz-target"] {
        if required == "x-amz-target" && !target_present {
            continue;
        }
        if !signed.contains(&required) {
            return Err(AuthError::InvalidSignature(format!(
                "'{required}' must be a signed header."
            )));
        }
    }
    if signed
        .iter()
        .any(|h| h.is_empty() || h.bytes().any(|b| b.is_ascii_uppercase()))
    {
        return Err(AuthError::Incomplete(
            "SignedHeaders must be lower-case header names separated by ';'.".to_owned(),
        ));
    }

    // The timestamp: X-Amz-Date, or a signed Date header.
    let timestamp = match header(headers, "x-amz-date") {
        Some(t) => t.to_owned(),
        None if signed.contains(&"date") => header(headers, "date")
            .and_then(|d| httpdate::parse_http_date(d).ok())
            .map(amz_date)
            .ok_or_else(|| {
                AuthError::Incomplete("The Date header is not an HTTP date.".to_owned())
            })?,
        None => {
            return Err(AuthError::Incomplete(
                "The request must carry an X-Amz-Date header (or a signed Date header).".to_owned(),
            ));
        }
    };
    let signed_at = parse_amz_date(&timestamp).ok_or_else(|| {
        AuthError::Incomplete(format!(
            "X-Amz-Date '{timestamp}' is not of the form yyyymmddThhmmssZ."
        ))
    })?;
    if !timestamp.starts_with(auth.date) {
        return Err(AuthError::InvalidSignature(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{}'.",
            auth.date,
            &timestamp[..8]
        )));
    }
    if signed_at + MAX_SKEW < now {
        return Err(AuthError::InvalidSignature(format!(
            "Signature expired: {timestamp} is now earlier than {} ({} - 15 min.)",
            amz_date(now - MAX_SKEW),
            amz_date(now)
        )));
    }
    if signed_at > now + MAX_SKEW {
        return Err(AuthError::InvalidSignature(format!(
            "Signature not yet current: {timestamp} is still later than {} ({} + 15 min.)",
            amz_date(now + MAX_SKEW),
            amz_date(now)
        )));
    }

    let Some(key) = keys.get(auth.access_key_id) else {
        return Err(AuthError::Unrecognized(
            "The security token included in the request is invalid: the access key id is not in the control plane's credentials file.".to_owned(),
        ));
    };
    if headers.contains_key("x-amz-security-token") {
        return Err(AuthError::Unrecognized(
            "The security token included in the request is invalid: Berth issues no session tokens; sign with a long-term access key and no session token.".to_owned(),
        ));
    }

    let canonical = canonical_request(request, auth.signed_headers, &signed)?;
    let scope = format!(
        "{}/{}/{}/aws4_request",
        auth.date, auth.region, auth.service
    );
    let expected = signature(
        key.secret_access_key.expose(),
        auth.date,
        auth.region,
        auth.service,
        &string_to_sign(&timestamp, &scope, &canonical),
    );
    if !ct_eq(expected.as_bytes(), auth.signature.as_bytes()) {
        return Err(AuthError::InvalidSignature(
            "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method; a proxy that rewrites Host, Content-Type, Content-Length or x-amz-* headers also breaks signatures.".to_owned(),
        ));
    }
    Ok(Caller {
        access_key_id: key.access_key_id.clone(),
        region: auth.region.to_owned(),
    })
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The canonical request (SigV4 task 1).
pub fn canonical_request(
    request: &SignedRequest<'_>,
    signed_headers: &str,
    signed: &[&str],
) -> Result<String, AuthError> {
    let mut out = String::with_capacity(512);
    out.push_str(request.method);
    out.push('\n');
    out.push_str(&canonical_uri(request.path));
    out.push('\n');
    out.push_str(&canonical_query(request.query));
    out.push('\n');
    for name in signed {
        let values: Vec<String> = request
            .headers
            .get_all(*name)
            .iter()
            .map(|v| {
                String::from_utf8_lossy(v.as_bytes())
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        if values.is_empty() {
            return Err(AuthError::InvalidSignature(format!(
                "Header '{name}' is listed in SignedHeaders but not present in the request."
            )));
        }
        out.push_str(name);
        out.push(':');
        out.push_str(&values.join(","));
        out.push('\n');
    }
    out.push('\n');
    out.push_str(signed_headers);
    out.push('\n');
    // The body is always hashed here. A client may also send the hash in
    // X-Amz-Content-Sha256 (botocore then signs that value); it must be the
    // body's hash, or a captured signature would carry any body
    // (`UNSIGNED-PAYLOAD` and streaming payloads are refused the same way).
    let body_hash = hex(&Sha256::digest(request.body));
    if let Some(claimed) = request.headers.get("x-amz-content-sha256")
        && claimed.as_bytes() != body_hash.as_bytes()
    {
        return Err(AuthError::InvalidSignature(
            "X-Amz-Content-Sha256 must be the hex SHA-256 of the request body (unsigned and streaming payloads are not accepted)."
                .to_owned(),
        ));
    }
    out.push_str(&body_hash);
    Ok(out)
}

/// The path with each segment URI-encoded once more (non-S3 services sign
/// the already-encoded path encoded again; `/` stays `/`).
fn canonical_uri(path: &str) -> String {
    if path.is_empty() {
        return "/".to_owned();
    }
    path.split('/')
        .map(uri_encode)
        .collect::<Vec<_>>()
        .join("/")
}

fn canonical_query(query: &str) -> String {
    if query.is_empty() {
        return String::new();
    }
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                uri_encode(&percent_decode(k)),
                uri_encode(&percent_decode(v)),
            )
        })
        .collect();
    pairs.sort();
    pairs
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn uri_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes `%XX` escapes (a malformed one is kept as it is); not UTF-8
/// results are replaced lossily.
pub(crate) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(v) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The string to sign (SigV4 task 2).
pub fn string_to_sign(timestamp: &str, scope: &str, canonical_request: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256\n{timestamp}\n{scope}\n{}",
        hex(&Sha256::digest(canonical_request.as_bytes()))
    )
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// The signing key (SigV4 task 3).
pub fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k_region = hmac(&k_date, region.as_bytes());
    let k_service = hmac(&k_region, service.as_bytes());
    hmac(&k_service, b"aws4_request")
}

/// The signature (SigV4 task 4), lower-case hex.
pub fn signature(
    secret: &str,
    date: &str,
    region: &str,
    service: &str,
    string_to_sign: &str,
) -> String {
    hex(&hmac(
        &signing_key(secret, date, region, service),
        string_to_sign.as_bytes(),
    ))
}

/// HMAC-SHA256 as lower-case hex (used by the gRPC scheme).
pub fn hmac_hex(key: &[u8], data: &[u8]) -> String {
    hex(&hmac(key, data))
}

/// `yyyymmddThhmmssZ` for a time.
pub fn amz_date(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Parses `yyyymmddThhmmssZ`.
pub fn parse_amz_date(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u64> {
        let part = s.get(r)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let (y, mo, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (h, mi, se) = (num(9..11)?, num(11..13)?, num(13..15)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let days = days_from_civil(y as i64, mo as i64, d as i64);
    let secs = u64::try_from(days).ok()? * 86_400 + h * 3600 + mi * 60 + se;
    Some(UNIX_EPOCH + Duration::from_secs(secs))
}

// Howard Hinnant's civil-date algorithms.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn aws_published_iam_vector() {
        let h = headers(&[
            (
                "content-type",
                "application/x-www-form-urlencoded; charset=utf-8",
            ),
            ("host", "iam.amazonaws.com"),
            ("x-amz-date", "20150830T123600Z"),
        ]);
        let req = SignedRequest {
            method: "GET",
            path: "/",
            query: "Action=ListUsers&Version=2010-05-08",
            headers: &h,
            body: b"",
        };
        let signed = "content-type;host;x-amz-date";
        let canonical =
            canonical_request(&req, signed, &signed.split(';').collect::<Vec<_>>()).unwrap();
        assert_eq!(
            hex(&Sha256::digest(canonical.as_bytes())),
            "f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59"
        );
        assert_eq!(
            hex(&signing_key(SECRET, "20150830", "us-east-1", "iam")),
            "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9"
        );
        let sts = string_to_sign(
            "20150830T123600Z",
            "20150830/us-east-1/iam/aws4_request",
            &canonical,
        );
        assert_eq!(
            signature(SECRET, "20150830", "us-east-1", "iam", &sts),
            "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
        );
    }

    #[test]
    fn botocore_ecs_vector_with_a_session_token() {
        let h = headers(&[
            ("content-type", "application/x-amz-json-1.1"),
            ("host", "127.0.0.1:8080"),
            ("x-amz-date", "20261128T125729Z"),
            ("x-amz-security-token", "TOKEN123"),
            (
                "x-amz-target",
                "AmazonEC2ContainerServiceV20141113.ListClusters",
            ),
        ]);
        let req = SignedRequest {
            method: "POST",
            path: "/",
            query: "",
            headers: &h,
            body: br#"{"maxResults": 5}"#,
        };
        let signed = "content-type;host;x-amz-date;x-amz-security-token;x-amz-target";
        let canonical =
            canonical_request(&req, signed, &signed.split(';').collect::<Vec<_>>()).unwrap();
        assert!(
            canonical.ends_with("a9beb71dc23498443f6ea1378ccbcc2e2b403a8ada90e04221a5e5c2e569eebc")
        );
        let sts = string_to_sign(
            "20261128T125729Z",
            "20261128/us-east-1/ecs/aws4_request",
            &canonical,
        );
        assert_eq!(
            signature(SECRET, "20261128", "us-east-1", "ecs", &sts),
            "80429112be1050f9b69989f126f400da0d904fdd3d7391f5e1fe70b7a5dc1c03"
        );
    }

    /// `POST /` with these headers and body.
    fn post<'a>(headers: &'a HeaderMap, body: &'a [u8]) -> SignedRequest<'a> {
        SignedRequest {
            method: "POST",
            path: "/",
            query: "",
            headers,
            body,
        }
    }

    /// Signs like botocore does, for the verify tests.
    fn signed(
        keys_secret: &str,
        akid: &str,
        at: &str,
        body: &[u8],
        extra: &[(&str, &str)],
    ) -> HeaderMap {
        let mut h = headers(&[
            ("content-type", "application/x-amz-json-1.1"),
            ("host", "127.0.0.1:7080"),
            ("x-amz-date", at),
            (
                "x-amz-target",
                "AmazonEC2ContainerServiceV20141113.ListClusters",
            ),
        ]);
        for (k, v) in extra {
            h.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        let list = "content-type;host;x-amz-date;x-amz-target";
        let req = SignedRequest {
            method: "POST",
            path: "/",
            query: "",
            headers: &h,
            body,
        };
        let canonical =
            canonical_request(&req, list, &list.split(';').collect::<Vec<_>>()).unwrap();
        let date = &at[..8];
        let sig = signature(
            keys_secret,
            date,
            "home-1",
            "ecs",
            &string_to_sign(at, &format!("{date}/home-1/ecs/aws4_request"), &canonical),
        );
        h.insert(
            http::header::AUTHORIZATION,
            HeaderValue::from_str(&format!("AWS4-HMAC-SHA256 Credential={akid}/{date}/home-1/ecs/aws4_request, SignedHeaders={list}, Signature={sig}")).unwrap(),
        );
        h
    }

    #[test]
    fn verify_accepts_a_good_signature_and_names_each_failure() {
        let keys = Keys::from_pairs([("AKIDEXAMPLE", SECRET)]);
        let now = parse_amz_date("20261128T130000Z").unwrap();
        let body = br#"{"maxResults":5}"#;
        let req = |h: &HeaderMap, body: &'static [u8]| -> Result<Caller, AuthError> {
            verify(&keys, &post(h, body), now)
        };
        let good = signed(SECRET, "AKIDEXAMPLE", "20261128T125500Z", body, &[]);
        let caller = req(&good, body).unwrap();
        assert_eq!(caller.access_key_id, "AKIDEXAMPLE");
        assert_eq!(caller.region, "home-1");

        // A changed body, a wrong secret, an unknown key, a bad date.
        let e = req(&good, br#"{"maxResults":6}"#).unwrap_err();
        assert_eq!(e.type_name(), "InvalidSignatureException");
        let e = req(
            &signed(
                "not-the-secret-at-all",
                "AKIDEXAMPLE",
                "20261128T125500Z",
                body,
                &[],
            ),
            body,
        )
        .unwrap_err();
        assert_eq!(e.type_name(), "InvalidSignatureException");
        assert!(!e.to_string().contains(SECRET));
        let e = req(
            &signed(SECRET, "AKIDOTHER", "20261128T125500Z", body, &[]),
            body,
        )
        .unwrap_err();
        assert_eq!(e.type_name(), "UnrecognizedClientException");
        assert_eq!(e.status(), http::StatusCode::FORBIDDEN);
        let e = req(
            &signed(SECRET, "AKIDEXAMPLE", "20261128T124400Z", body, &[]),
            body,
        )
        .unwrap_err();
        assert_eq!(e.type_name(), "InvalidSignatureException");
        assert!(
            e.to_string().starts_with(
                "Signature expired: 20261128T124400Z is now earlier than 20261128T124500Z"
            ),
            "{e}"
        );
        let e = req(
            &signed(SECRET, "AKIDEXAMPLE", "20261128T131600Z", body, &[]),
            body,
        )
        .unwrap_err();
        assert!(
            e.to_string().starts_with("Signature not yet current"),
            "{e}"
        );
        // 14 minutes off either way is fine.
        req(
            &signed(SECRET, "AKIDEXAMPLE", "20261128T124600Z", body, &[]),
            body,
        )
        .unwrap();
        req(
            &signed(SECRET, "AKIDEXAMPLE", "20261128T131400Z", body, &[]),
            body,
        )
        .unwrap();

        // Unsigned headers may change; signed ones may not.
        let mut h = good.clone();
        h.insert("user-agent", HeaderValue::from_static("changed"));
        req(&h, body).unwrap();
        let mut h = good.clone();
        h.insert("host", HeaderValue::from_static("127.0.0.1:7081"));
        assert_eq!(
            req(&h, body).unwrap_err().type_name(),
            "InvalidSignatureException"
        );

        // Missing and malformed.
        let mut h = good.clone();
        h.remove(http::header::AUTHORIZATION);
        let e = req(&h, body).unwrap_err();
        assert_eq!(e.type_name(), "InvalidSignatureException");
        assert!(
            e.to_string().starts_with("Missing Authentication Token"),
            "{e}"
        );
        for (value, name) in [
            ("Basic dXNlcjpwYXNz", "IncompleteSignatureException"),
            (
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261128/home-1/ecs/aws4_request, SignedHeaders=host;x-amz-date",
                "InvalidSignatureException",
            ),
            (
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261128/ecs/aws4_request, SignedHeaders=host, Signature=00",
                "IncompleteSignatureException",
            ),
            (
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261128/home-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=00",
                "InvalidSignatureException",
            ),
            (
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261127/home-1/ecs/aws4_request, SignedHeaders=host;x-amz-date, Signature=00",
                "InvalidSignatureException",
            ),
            (
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261128/home-1/ecs/aws4_request, SignedHeaders=content-type;x-amz-date, Signature=00",
                "InvalidSignatureException",
            ),
            (
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261128/home-1/ecs/aws4_request, SignedHeaders=host;x-amz-nothere, Signature=00",
                "InvalidSignatureException",
            ),
        ] {
            let mut h = good.clone();
            h.insert(
                http::header::AUTHORIZATION,
                HeaderValue::from_str(value).unwrap(),
            );
            assert_eq!(req(&h, body).unwrap_err().type_name(), name, "{value}");
        }

        // Session tokens are not issued, so none is valid.
        let e = req(
            &signed(
                SECRET,
                "AKIDEXAMPLE",
                "20261128T125500Z",
                body,
                &[("x-amz-security-token", "TOKEN")],
            ),
            body,
        )
        .unwrap_err();
        assert_eq!(e.type_name(), "UnrecognizedClientException");
    }

    /// Property: a signature covers exactly what it says. Any change to the
    /// body or to a signed header fails; unsigned headers may change; and
    /// hostile Authorization, X-Amz-Date and SignedHeaders values are
    /// refused without a panic.
    #[test]
    fn signatures_cover_the_body_and_signed_headers_and_garbage_never_panics() {
        let keys = Keys::from_pairs([("AKIDEXAMPLE", SECRET)]);
        let now = parse_amz_date("20261128T130000Z").unwrap();
        let body: &[u8] = br#"{"cluster":"prod","taskDefinition":"web","count":1}"#;
        let good = signed(SECRET, "AKIDEXAMPLE", "20261128T125500Z", body, &[]);
        let check = |h: &HeaderMap, body: &[u8]| verify(&keys, &post(h, body), now);
        check(&good, body).unwrap();
        let mut rng = crate::placement::Rng::new(0xbe27);
        let alphabet: Vec<char> =
            "aZ09=,/; -_.:\t\u{e9}\u{1F600}AWS4-HMAC-SHA256Credential=SignedHeaders=Signature="
                .chars()
                .collect();
        let garbage = |rng: &mut crate::placement::Rng| -> String {
            (0..rng.below(120)).map(|_| *rng.pick(&alphabet)).collect()
        };
        for _ in 0..3000 {
            // A changed body.
            let mut changed = body.to_vec();
            let at = rng.below(changed.len());
            changed[at] = changed[at].wrapping_add(1 + rng.below(200) as u8);
            assert!(check(&good, &changed).is_err());
            // A changed signed header, or the body's hash claimed for another body.
            let mut h = good.clone();
            let name = *rng.pick(&["content-type", "host", "x-amz-date", "x-amz-target"]);
            let value = format!("{}{}", h[name].to_str().unwrap(), rng.below(9));
            h.insert(name, HeaderValue::from_str(&value).unwrap());
            assert!(check(&h, body).is_err(), "{name} changed");
            let mut h = good.clone();
            h.insert(
                "x-amz-content-sha256",
                HeaderValue::from_str(&hex(&Sha256::digest(body))).unwrap(),
            );
            assert!(
                check(&h, &changed).is_err(),
                "a claimed hash does not replace the body's"
            );
            // An unsigned header may change.
            let mut h = good.clone();
            h.insert(
                "user-agent",
                HeaderValue::from_str(&format!("ua/{}", rng.below(1000))).unwrap(),
            );
            check(&h, body).unwrap();
            // Garbage where the parser looks.
            let mut h = good.clone();
            let (name, value) = match rng.below(3) {
                0 => ("authorization", garbage(&mut rng)),
                1 => ("x-amz-date", garbage(&mut rng)),
                _ => (
                    "authorization",
                    format!(
                        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261128/home-1/ecs/aws4_request, SignedHeaders={}, Signature={}",
                        garbage(&mut rng),
                        garbage(&mut rng)
                    ),
                ),
            };
            if let Ok(v) = HeaderValue::from_str(&value) {
                h.insert(name, v);
                assert!(check(&h, body).is_err(), "{name}: {value:?}");
            }
        }
    }

    #[test]
    fn dates_round_trip() {
        for s in [
            "19700101T000000Z",
            "20261128T130350Z",
            "20240229T235959Z",
            "21000301T000000Z",
        ] {
            assert_eq!(amz_date(parse_amz_date(s).unwrap()), s);
        }
        for bad in [
            "2026-11-28T13:03:50Z",
            "20261328T130350Z",
            "20261128T130350",
            "２０261128T130350Z",
        ] {
            assert!(parse_amz_date(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn paths_and_queries() {
        assert_eq!(canonical_uri("/"), "/");
        assert_eq!(canonical_uri(""), "/");
        assert_eq!(canonical_uri("/a b/%2F"), "/a%20b/%252F");
        assert_eq!(canonical_query("b=2&a=1&a=0"), "a=0&a=1&b=2");
    }
}
