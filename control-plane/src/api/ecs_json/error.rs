//! The one mapping from service errors to ECS error names and HTTP statuses.

use crate::app::Error;
use crate::store::StoreError;
use crate::validate::ValidationKind;
use http::StatusCode;

/// An error as the JSON API answers it.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A use case refused the request or failed.
    #[error(transparent)]
    App(#[from] Error),
    /// The body is not JSON of the expected shape.
    #[error("{0}")]
    Serialization(String),
    /// `X-Amz-Target` names nothing we serve.
    #[error("{0}")]
    UnknownOperation(String),
    /// The body exceeds the limit.
    #[error("The request body is larger than {0} bytes.")]
    TooLarge(usize),
    /// The caller is not authenticated.
    #[error(transparent)]
    Auth(#[from] crate::auth::sigv4::AuthError),
    /// The response could not be encoded (a bug).
    #[error("the response could not be encoded")]
    Encode(#[source] serde_json::Error),
}

impl ApiError {
    pub(super) fn serialization(message: String) -> Self {
        ApiError::Serialization(message)
    }

    pub(super) fn unknown_operation(message: String) -> Self {
        ApiError::UnknownOperation(message)
    }

    pub(super) fn too_large(limit: usize) -> Self {
        ApiError::TooLarge(limit)
    }

    pub(crate) fn encode(e: serde_json::Error) -> Self {
        ApiError::Encode(e)
    }

    /// The ECS error name (`__type`).
    pub fn type_name(&self) -> &'static str {
        match self {
            ApiError::Serialization(_) | ApiError::TooLarge(_) => "SerializationException",
            ApiError::UnknownOperation(_) => "UnknownOperationException",
            ApiError::Encode(_) => "ServerException",
            ApiError::Auth(e) => e.type_name(),
            ApiError::App(e) => match e {
                Error::Validation(v) => match v.kind {
                    ValidationKind::InvalidParameter => "InvalidParameterException",
                    ValidationKind::Client => "ClientException",
                    ValidationKind::UnsupportedFeature => "UnsupportedFeatureException",
                    ValidationKind::PlatformUnknown => "PlatformUnknownException",
                    ValidationKind::PlatformTaskDefinitionIncompatibility => {
                        "PlatformTaskDefinitionIncompatibilityException"
                    }
                },
                Error::ClusterNotFound(_) => "ClusterNotFoundException",
                Error::Conflict { .. } => "ConflictException",
                Error::ClusterContainsContainerInstances(_) => {
                    "ClusterContainsContainerInstancesException"
                }
                Error::ClusterContainsTasks(_) => "ClusterContainsTasksException",
                Error::ServiceNotFound(_) => "ServiceNotFoundException",
                Error::ServiceNotActive(_) => "ServiceNotActiveException",
                Error::ClusterContainsServices(_) => "ClusterContainsServicesException",
                Error::ResourceInUse(_) => "ResourceInUseException",
                Error::TargetNotFound(_) => "TargetNotFoundException",
                Error::ResourceNotFound(_) => "ResourceNotFoundException",
                Error::AttributeLimitExceeded(_) => "AttributeLimitExceededException",
                Error::PermissionDenied(_) => "AccessDeniedException",
                Error::Store(_) | Error::Record { .. } => "ServerException",
            },
        }
    }

    /// 500 for server faults (SDKs retry them), 413 for oversized bodies,
    /// 400 for everything else.
    pub fn status(&self) -> StatusCode {
        if let ApiError::Auth(e) = self {
            return e.status();
        }
        match self.type_name() {
            "ServerException" => StatusCode::INTERNAL_SERVER_ERROR,
            _ if matches!(self, ApiError::TooLarge(_)) => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// Logs a server fault once, with its whole chain; client errors at debug.
    pub fn log(&self, request_id: &str) {
        if self.status().is_server_error() {
            let mut chain = self.to_string();
            let mut source = std::error::Error::source(self);
            while let Some(s) = source {
                chain.push_str(": ");
                chain.push_str(&s.to_string());
                source = s.source();
            }
            tracing::error!(request_id, error = %chain, "request failed");
        } else if let ApiError::Auth(_) = self {
            // Refused callers are worth seeing; the message holds no secret.
            tracing::warn!(request_id, error_type = self.type_name(), message = %self, "request not authenticated");
        } else {
            tracing::debug!(request_id, error_type = self.type_name(), message = %self, "request refused");
        }
    }

    /// The message callers see: server faults point at the log entry,
    /// except a store refusing writes, whose message (data directory and
    /// cause, nothing secret) tells the operator what to fix.
    pub fn message(&self, request_id: &str) -> String {
        if let ApiError::App(Error::Store(StoreError::Unavailable(m))) = self {
            format!("{m} (request id {request_id})")
        } else if self.status().is_server_error() {
            format!(
                "Internal error in the control plane; its log has the details (request id {request_id})."
            )
        } else {
            self.to_string()
        }
    }

    /// Status and JSON body. Server faults do not leak internals: the message
    /// points at the log entry.
    pub fn to_body(&self, request_id: &str) -> (StatusCode, Vec<u8>) {
        let status = self.status();
        let message = self.message(request_id);
        let mut body = serde_json::json!({ "__type": self.type_name(), "message": message });
        if let ApiError::App(Error::Conflict { resource_ids, .. }) = self {
            body["resourceIds"] = serde_json::json!(resource_ids);
        }
        (status, serde_json::to_vec(&body).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_failures_are_server_exceptions_that_leak_nothing() {
        let e = ApiError::App(Error::Store(StoreError::Flush(
            "/var/lib/berth: No space left on device".into(),
        )));
        assert_eq!(e.type_name(), "ServerException");
        assert_eq!(e.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let (status, body) = e.to_body("req-1");
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        let body = String::from_utf8(body).expect("utf-8");
        assert!(body.contains("\"__type\":\"ServerException\""), "{body}");
        assert!(body.contains("req-1"), "{body}");
        assert!(
            !body.contains("No space"),
            "internals stay in the log: {body}"
        );
    }

    #[test]
    fn a_store_refusing_writes_says_where_and_why() {
        let e = ApiError::App(Error::Store(StoreError::Unavailable(
            "The state store in /var/lib/berth/state cannot be written (No space left on device)."
                .into(),
        )));
        assert_eq!(e.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let (_, body) = e.to_body("req-2");
        let body = String::from_utf8(body).expect("utf-8");
        assert!(body.contains("\"__type\":\"ServerException\""), "{body}");
        assert!(body.contains("/var/lib/berth/state"), "{body}");
        assert!(body.contains("No space left on device"), "{body}");
    }

    #[test]
    fn client_errors_are_400_and_oversized_bodies_413() {
        let e = ApiError::App(Error::ClusterNotFound("Cluster not found.".into()));
        assert_eq!(
            (e.type_name(), e.status()),
            ("ClusterNotFoundException", StatusCode::BAD_REQUEST)
        );
        let e = ApiError::too_large(1024);
        assert_eq!(
            (e.type_name(), e.status()),
            ("SerializationException", StatusCode::PAYLOAD_TOO_LARGE)
        );
    }
}
