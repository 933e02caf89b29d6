//! The ECS API over AWS JSON 1.1: `POST` to any path, the operation named by
//! `X-Amz-Target: AmazonEC2ContainerServiceV20141113.<Action>`, a JSON body.
//!
//! Every answer carries `x-amzn-RequestId` and `Date`; errors are
//! `{"__type": <ShortName>, "message": ...}` with `X-Amzn-ErrorType` set to
//! the same name (botocore reads the body, aws-sdk-rust the header), HTTP 400
//! for client errors and 500 for `ServerException`.
//!
//! With a credentials file every request must carry a valid AWS Signature
//! Version 4 ([`crate::auth::sigv4`]), checked after the body is read and
//! before anything is decoded or executed. Without one, any credentials are
//! accepted (the configuration allows that only on loopback or with
//! `--insecure`).

mod error;
#[cfg(test)]
mod fuzz;
pub mod refusals;

pub use error::ApiError;

use crate::app::ControlPlane;
use crate::auth::{Keys, Shared};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use http::{HeaderMap, HeaderValue, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::future::Future;
use std::sync::Arc;
use tracing::Instrument;

/// The `X-Amz-Target` prefix of every ECS operation.
pub const TARGET_PREFIX: &str = "AmazonEC2ContainerServiceV20141113.";

/// Largest request body accepted (task definitions are the biggest inputs).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// What the JSON door needs.
#[derive(Debug, Clone)]
struct Door {
    app: Arc<ControlPlane>,
    keys: Option<Arc<Shared<Keys>>>,
}

/// The axum router serving the JSON API on every path; with `keys`, every
/// request must be signed with one of them.
pub fn router(app: Arc<ControlPlane>, keys: Option<Arc<Shared<Keys>>>) -> axum::Router {
    axum::Router::new()
        .fallback(handle)
        .with_state(Door { app, keys })
}

async fn handle(State(door): State<Door>, request: Request) -> Response {
    let started = std::time::Instant::now();
    let request_id = uuid::Uuid::new_v4().to_string();
    let (parts, body) = request.into_parts();
    let action = action(&parts.headers).unwrap_or_default().to_owned();
    let span = tracing::info_span!("ecs_api", request_id = %request_id, action = %action, caller = tracing::field::Empty);
    let result = async {
        if parts.method != http::Method::POST {
            return Err(ApiError::unknown_operation(format!(
                "The ECS API takes POST requests (got {}).",
                parts.method
            )));
        }
        let body = axum::body::to_bytes(body, MAX_BODY_BYTES)
            .await
            .map_err(|_| ApiError::too_large(MAX_BODY_BYTES))?;
        let mut signed_by = None;
        if let Some(keys) = &door.keys {
            if let Some(claimed) = parts
                .headers
                .get(http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(crate::auth::claimed_access_key_id)
            {
                tracing::Span::current().record("caller", claimed);
            }
            let caller = crate::auth::sigv4::verify(
                &keys.get(),
                &crate::auth::sigv4::SignedRequest {
                    method: parts.method.as_str(),
                    path: parts.uri.path(),
                    query: parts.uri.query().unwrap_or(""),
                    headers: &parts.headers,
                    body: &body,
                },
                std::time::SystemTime::now(),
            )?;
            tracing::Span::current().record("caller", caller.access_key_id.as_str());
            signed_by = Some(caller.access_key_id);
        }
        dispatch(&door.app, &parts.headers, &body, signed_by.as_deref()).await
    }
    .instrument(span.clone())
    .await;
    let _enter = span.enter();
    let response = match result {
        Ok(body) => respond(StatusCode::OK, body, &request_id, None),
        Err(e) => {
            e.log(&request_id);
            let (status, body) = e.to_body(&request_id);
            respond(status, body, &request_id, Some(e.type_name()))
        }
    };
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    door.app
        .metrics()
        .api(&action, status, elapsed.as_secs_f64());
    let outcome = response
        .headers()
        .get("x-amzn-errortype")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("OK");
    tracing::info!(
        status,
        outcome,
        duration_ms = elapsed.as_secs_f64() * 1000.0,
        "ECS API request"
    );
    response
}

fn respond(
    status: StatusCode,
    body: Vec<u8>,
    request_id: &str,
    error_type: Option<&str>,
) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-amz-json-1.1"),
    );
    if let Ok(v) = HeaderValue::from_str(request_id) {
        headers.insert("x-amzn-requestid", v);
    }
    if let Ok(v) = HeaderValue::from_str(&httpdate::fmt_http_date(std::time::SystemTime::now())) {
        headers.insert(http::header::DATE, v);
    }
    if let Some(t) = error_type.and_then(|t| HeaderValue::from_str(t).ok()) {
        headers.insert("x-amzn-errortype", t);
    }
    response
}

/// The action named by `X-Amz-Target`, if it has our prefix.
fn action(headers: &HeaderMap) -> Option<&str> {
    headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|t| t.strip_prefix(TARGET_PREFIX))
}

/// Decodes the body as `Req` (an empty body is `{}`; unknown members are
/// ignored), runs the use case, encodes its answer.
async fn call<Req, Resp, F, Fut>(body: &[u8], f: F) -> Result<Vec<u8>, ApiError>
where
    Req: DeserializeOwned,
    Resp: Serialize,
    F: FnOnce(Req) -> Fut,
    Fut: Future<Output = crate::app::Result<Resp>>,
{
    let request = decode(body)?;
    let response = f(request).await?;
    serde_json::to_vec(&response).map_err(ApiError::encode)
}

fn decode<Req: DeserializeOwned>(body: &[u8]) -> Result<Req, ApiError> {
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        body
    };
    let mut de = serde_json::Deserializer::from_slice(body);
    let request = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path.is_empty() || path == "." {
            ApiError::serialization(format!(
                "The request body is not a valid JSON object: {inner}."
            ))
        } else {
            ApiError::serialization(format!("Member '{path}' is not valid: {inner}."))
        }
    })?;
    de.end().map_err(|e| {
        ApiError::serialization(format!("The request body has trailing data: {e}."))
    })?;
    Ok(request)
}

async fn dispatch(
    app: &ControlPlane,
    headers: &HeaderMap,
    body: &[u8],
    access_key_id: Option<&str>,
) -> Result<Vec<u8>, ApiError> {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let Some(action) = target.strip_prefix(TARGET_PREFIX) else {
        return Err(ApiError::unknown_operation(if target.is_empty() {
            "Missing X-Amz-Target header: name the operation as AmazonEC2ContainerServiceV20141113.<Action>.".to_owned()
        } else {
            format!(
                "Unknown target '{target}': expected AmazonEC2ContainerServiceV20141113.<Action>."
            )
        }));
    };
    execute_as(app, action, body, access_key_id).await
}

/// Every action this door serves.
pub const ACTIONS: &[&str] = &[
    "CreateCluster",
    "DescribeClusters",
    "ListClusters",
    "DeleteCluster",
    "RegisterTaskDefinition",
    "DescribeTaskDefinition",
    "ListTaskDefinitions",
    "ListTaskDefinitionFamilies",
    "DeregisterTaskDefinition",
    "RunTask",
    "StartTask",
    "StopTask",
    "DescribeTasks",
    "ListTasks",
    "ListContainerInstances",
    "DescribeContainerInstances",
    "DeregisterContainerInstance",
    "UpdateContainerInstancesState",
    "PutAttributes",
    "DeleteAttributes",
    "ListAttributes",
    "CreateCapacityProvider",
    "DescribeCapacityProviders",
    "DeleteCapacityProvider",
    "PutClusterCapacityProviders",
    "CreateService",
    "UpdateService",
    "DeleteService",
    "DescribeServices",
    "ListServices",
    "TagResource",
    "UntagResource",
    "ListTagsForResource",
    "UpdateCluster",
    "UpdateClusterSettings",
    "PutAccountSetting",
    "PutAccountSettingDefault",
    "DeleteAccountSetting",
    "ListAccountSettings",
    "DeleteTaskDefinitions",
    "UpdateTaskProtection",
    "GetTaskProtection",
    "UpdateCapacityProvider",
];

/// [`execute_as`] for an unsigned caller (the account root).
pub async fn execute(app: &ControlPlane, action: &str, body: &[u8]) -> Result<Vec<u8>, ApiError> {
    execute_as(app, action, body, None).await
}

/// Runs one action on a JSON body for the caller that signed with
/// `access_key_id`, and answers JSON: the one place both doors (this one
/// and the gRPC API) reach the use cases.
pub async fn execute_as(
    app: &ControlPlane,
    action: &str,
    body: &[u8],
    access_key_id: Option<&str>,
) -> Result<Vec<u8>, ApiError> {
    let s = app;
    let caller = &app.caller(access_key_id);
    match action {
        "CreateCluster" => call(body, |r| s.create_cluster(r, caller)).await,
        "UpdateCluster" => call(body, |r| s.update_cluster(r)).await,
        "UpdateClusterSettings" => call(body, |r| s.update_cluster_settings(r)).await,
        "PutAccountSetting" => call(body, |r| s.put_account_setting(r, caller)).await,
        "PutAccountSettingDefault" => {
            call(body, |r| s.put_account_setting_default(r, caller)).await
        }
        "DeleteAccountSetting" => call(body, |r| s.delete_account_setting(r, caller)).await,
        "ListAccountSettings" => call(body, |r| async { s.list_account_settings(r, caller) }).await,
        "DescribeClusters" => call(body, |r| async { s.describe_clusters(r) }).await,
        "ListClusters" => call(body, |r| async { s.list_clusters(r) }).await,
        "DeleteCluster" => call(body, |r| s.delete_cluster(r)).await,
        "RegisterTaskDefinition" => call(body, |r| s.register_task_definition(r)).await,
        "DescribeTaskDefinition" => call(body, |r| async { s.describe_task_definition(r) }).await,
        "ListTaskDefinitions" => call(body, |r| async { s.list_task_definitions(r) }).await,
        "ListTaskDefinitionFamilies" => {
            call(body, |r| async { s.list_task_definition_families(r) }).await
        }
        "DeregisterTaskDefinition" => call(body, |r| s.deregister_task_definition(r)).await,
        "DeleteTaskDefinitions" => call(body, |r| s.delete_task_definitions(r)).await,
        "UpdateTaskProtection" => call(body, |r| s.update_task_protection(r)).await,
        "GetTaskProtection" => call(body, |r| async { s.get_task_protection(r) }).await,
        "RunTask" => call(body, |r| s.run_task(r)).await,
        "StartTask" => call(body, |r| s.start_task(r)).await,
        "StopTask" => call(body, |r| s.stop_task(r)).await,
        "DescribeTasks" => call(body, |r| async { s.describe_tasks(r) }).await,
        "ListTasks" => call(body, |r| async { s.list_tasks(r) }).await,
        "ListContainerInstances" => call(body, |r| async { s.list_container_instances(r) }).await,
        "DescribeContainerInstances" => {
            call(body, |r| async { s.describe_container_instances(r) }).await
        }
        "DeregisterContainerInstance" => call(body, |r| s.deregister_container_instance(r)).await,
        "UpdateContainerInstancesState" => {
            call(body, |r| s.update_container_instances_state(r)).await
        }
        "PutAttributes" => call(body, |r| s.put_attributes(r)).await,
        "DeleteAttributes" => call(body, |r| s.delete_attributes(r)).await,
        "ListAttributes" => call(body, |r| async { s.list_attributes(r) }).await,
        "CreateCapacityProvider" => call(body, |r| s.create_capacity_provider(r)).await,
        "CreateService" => call(body, |r| s.create_service(r)).await,
        "UpdateService" => call(body, |r| s.update_service(r)).await,
        "DeleteService" => call(body, |r| s.delete_service(r)).await,
        "DescribeServices" => call(body, |r| async { s.describe_services(r) }).await,
        "ListServices" => call(body, |r| async { s.list_services(r) }).await,
        "DescribeCapacityProviders" => {
            call(body, |r| async { s.describe_capacity_providers(r) }).await
        }
        "DeleteCapacityProvider" => call(body, |r| s.delete_capacity_provider(r)).await,
        "UpdateCapacityProvider" => call(body, |r| s.update_capacity_provider(r)).await,
        "PutClusterCapacityProviders" => call(body, |r| s.put_cluster_capacity_providers(r)).await,
        "TagResource" => call(body, |r| s.tag_resource(r)).await,
        "UntagResource" => call(body, |r| s.untag_resource(r)).await,
        "ListTagsForResource" => call(body, |r| async { s.list_tags_for_resource(r) }).await,
        other => Err(match refusals::refusal(other) {
            Some(why) => ApiError::App(crate::app::Error::Validation(
                crate::validate::ValidationError::unsupported(why),
            )),
            None => ApiError::unknown_operation(format!(
                "'{other}' is not an ECS operation Berth knows; check the action name."
            )),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::task::RunTaskRequest;

    #[test]
    fn empty_body_is_an_empty_object() {
        let r: RunTaskRequest = decode(b"").unwrap();
        assert_eq!(r, RunTaskRequest::default());
    }

    #[test]
    fn unknown_members_are_ignored() {
        let r: RunTaskRequest =
            decode(br#"{"taskDefinition": "x", "someNewMember": [1]}"#).unwrap();
        assert_eq!(r.task_definition.as_deref(), Some("x"));
    }

    #[test]
    fn wrong_types_name_the_member() {
        let e = decode::<RunTaskRequest>(br#"{"count": "three"}"#).unwrap_err();
        assert_eq!(e.type_name(), "SerializationException");
        assert!(e.to_string().contains("'count'"), "{e}");
        assert!(decode::<RunTaskRequest>(b"[1]").is_err());
        assert!(decode::<RunTaskRequest>(b"{} x").is_err());
        let deep = "[".repeat(10_000);
        assert!(decode::<RunTaskRequest>(deep.as_bytes()).is_err());
    }
}
