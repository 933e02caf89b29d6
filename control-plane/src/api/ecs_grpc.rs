//! The ECS API over gRPC (`berth.ecs.v1.ECS`): the same actions as the JSON
//! API, through the same door.
//!
//! Each message's proto3 JSON form (pbjson) is the ECS JSON body, so a call
//! is encoded to JSON, run by [`super::ecs_json::execute`] exactly as a JSON
//! request would be (same decoding, validation, use case and answer), and
//! the JSON answer is decoded into the response message. Nothing here can
//! make the two doors disagree except the proto file itself, which the
//! end-to-end suite compares against the JSON answers.
//!
//! Errors are a gRPC status whose message is the JSON API's message, with
//! metadata `x-amzn-errortype` holding the ECS error name (and
//! `x-amzn-requestid`). With a credentials file, callers sign as described
//! in [`crate::auth::grpc`].

use super::ecs_json::{ApiError, execute_as};
use crate::app::ControlPlane;
use crate::auth::{Keys, Shared};
use berth_proto::ecs::v1 as pb;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::sync::Arc;
use tonic::metadata::MetadataValue;
use tonic::{Code, Request, Response, Status};
use tracing::Instrument;

pub use pb::ecs_server::EcsServer;

/// The gRPC service's full name, as in method paths.
pub const SERVICE_NAME: &str = "berth.ecs.v1.ECS";

/// The tonic service; clone-cheap.
#[derive(Debug, Clone)]
pub struct EcsGrpc {
    app: Arc<ControlPlane>,
    keys: Option<Arc<Shared<Keys>>>,
}

impl EcsGrpc {
    /// Serves `app`; with `keys`, every call must be signed.
    pub fn new(app: Arc<ControlPlane>, keys: Option<Arc<Shared<Keys>>>) -> Self {
        EcsGrpc { app, keys }
    }

    async fn call<Req, Resp>(
        &self,
        action: &'static str,
        request: Request<Req>,
    ) -> Result<Response<Resp>, Status>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
    {
        let started = std::time::Instant::now();
        let request_id = uuid::Uuid::new_v4().to_string();
        let span = tracing::info_span!("ecs_grpc", request_id = %request_id, action, caller = tracing::field::Empty);
        let result = async {
            let mut signed_by = None;
            if let Some(keys) = &self.keys {
                let authorization = request
                    .metadata()
                    .get("authorization")
                    .and_then(|v| v.to_str().ok());
                if let Some(claimed) = authorization.and_then(crate::auth::claimed_access_key_id) {
                    tracing::Span::current().record("caller", claimed);
                }
                let path = format!("/{SERVICE_NAME}/{action}");
                let caller = crate::auth::grpc::verify(
                    &keys.get(),
                    authorization,
                    &path,
                    std::time::SystemTime::now(),
                )?;
                tracing::Span::current().record("caller", caller.as_str());
                signed_by = Some(caller);
            }
            let body = json_body(action, request.get_ref())?;
            let answer = execute_as(&self.app, action, &body, signed_by.as_deref()).await?;
            serde_json::from_slice::<Resp>(&answer).map_err(ApiError::encode)
        }
        .instrument(span.clone())
        .await;
        let _enter = span.enter();
        // Counted with the HTTP status the JSON door would answer.
        let (code, outcome) = match &result {
            Ok(_) => (200, "OK"),
            Err(e) => (e.status().as_u16(), e.type_name()),
        };
        let elapsed = started.elapsed();
        self.app.metrics().api(action, code, elapsed.as_secs_f64());
        tracing::info!(
            status = code,
            outcome,
            duration_ms = elapsed.as_secs_f64() * 1000.0,
            "ECS API request"
        );
        match result {
            Ok(r) => {
                let mut response = Response::new(r);
                if let Ok(v) = MetadataValue::try_from(request_id.as_str()) {
                    response.metadata_mut().insert("x-amzn-requestid", v);
                }
                Ok(response)
            }
            Err(e) => {
                e.log(&request_id);
                Err(status(&e, &request_id))
            }
        }
    }
}

/// The request's ECS JSON body. A repeated field cannot say "present but
/// empty", so list members an action requires and allows empty (a cluster's
/// whole provider list, the tags to set or remove) are sent as `[]`.
fn json_body<Req: Serialize>(action: &str, request: &Req) -> Result<Vec<u8>, ApiError> {
    let required_lists: &[&str] = match action {
        "PutClusterCapacityProviders" => &["capacityProviders", "defaultCapacityProviderStrategy"],
        "TagResource" => &["tags"],
        "UntagResource" => &["tagKeys"],
        "UpdateClusterSettings" => &["settings"],
        _ => return serde_json::to_vec(request).map_err(ApiError::encode),
    };
    let mut value = serde_json::to_value(request).map_err(ApiError::encode)?;
    if let Some(object) = value.as_object_mut() {
        for member in required_lists {
            object
                .entry(*member)
                .or_insert_with(|| serde_json::Value::Array(Vec::new()));
        }
    }
    serde_json::to_vec(&value).map_err(ApiError::encode)
}

/// The gRPC status for an API error: the JSON API's message, the ECS error
/// name in `x-amzn-errortype`.
pub fn status(e: &ApiError, request_id: &str) -> Status {
    let message = e.message(request_id);
    let name = e.type_name();
    let code = match name {
        "IncompleteSignatureException"
        | "UnrecognizedClientException"
        | "InvalidSignatureException" => Code::Unauthenticated,
        "ClusterNotFoundException"
        | "ServiceNotFoundException"
        | "TargetNotFoundException"
        | "ResourceNotFoundException" => Code::NotFound,
        "ConflictException"
        | "ResourceInUseException"
        | "ClusterContainsContainerInstancesException"
        | "ClusterContainsTasksException" => Code::FailedPrecondition,
        "UnsupportedFeatureException" | "UnknownOperationException" => Code::Unimplemented,
        "AttributeLimitExceededException" => Code::ResourceExhausted,
        _ if e.status().is_server_error() => Code::Internal,
        _ => Code::InvalidArgument,
    };
    let mut status = Status::new(code, message);
    if let Ok(v) = MetadataValue::try_from(name) {
        status.metadata_mut().insert("x-amzn-errortype", v);
    }
    if let Ok(v) = MetadataValue::try_from(request_id) {
        status.metadata_mut().insert("x-amzn-requestid", v);
    }
    status
}

macro_rules! actions {
    ($($method:ident => $action:literal ($req:ident) -> $resp:ident;)*) => {
        #[tonic::async_trait]
        impl pb::ecs_server::Ecs for EcsGrpc {
            $(
                async fn $method(&self, request: Request<pb::$req>) -> Result<Response<pb::$resp>, Status> {
                    self.call($action, request).await
                }
            )*
        }

        /// Every action the gRPC API serves.
        pub const ACTIONS: &[&str] = &[$($action),*];
    };
}

actions! {
    create_cluster => "CreateCluster"(CreateClusterRequest) -> CreateClusterResponse;
    describe_clusters => "DescribeClusters"(DescribeClustersRequest) -> DescribeClustersResponse;
    list_clusters => "ListClusters"(ListClustersRequest) -> ListClustersResponse;
    delete_cluster => "DeleteCluster"(DeleteClusterRequest) -> DeleteClusterResponse;
    register_task_definition => "RegisterTaskDefinition"(RegisterTaskDefinitionRequest) -> RegisterTaskDefinitionResponse;
    describe_task_definition => "DescribeTaskDefinition"(DescribeTaskDefinitionRequest) -> DescribeTaskDefinitionResponse;
    list_task_definitions => "ListTaskDefinitions"(ListTaskDefinitionsRequest) -> ListTaskDefinitionsResponse;
    list_task_definition_families => "ListTaskDefinitionFamilies"(ListTaskDefinitionFamiliesRequest) -> ListTaskDefinitionFamiliesResponse;
    deregister_task_definition => "DeregisterTaskDefinition"(DeregisterTaskDefinitionRequest) -> DeregisterTaskDefinitionResponse;
    run_task => "RunTask"(RunTaskRequest) -> RunTaskResponse;
    start_task => "StartTask"(StartTaskRequest) -> StartTaskResponse;
    stop_task => "StopTask"(StopTaskRequest) -> StopTaskResponse;
    describe_tasks => "DescribeTasks"(DescribeTasksRequest) -> DescribeTasksResponse;
    list_tasks => "ListTasks"(ListTasksRequest) -> ListTasksResponse;
    list_container_instances => "ListContainerInstances"(ListContainerInstancesRequest) -> ListContainerInstancesResponse;
    describe_container_instances => "DescribeContainerInstances"(DescribeContainerInstancesRequest) -> DescribeContainerInstancesResponse;
    deregister_container_instance => "DeregisterContainerInstance"(DeregisterContainerInstanceRequest) -> DeregisterContainerInstanceResponse;
    update_container_instances_state => "UpdateContainerInstancesState"(UpdateContainerInstancesStateRequest) -> UpdateContainerInstancesStateResponse;
    put_attributes => "PutAttributes"(PutAttributesRequest) -> PutAttributesResponse;
    delete_attributes => "DeleteAttributes"(DeleteAttributesRequest) -> DeleteAttributesResponse;
    list_attributes => "ListAttributes"(ListAttributesRequest) -> ListAttributesResponse;
    create_capacity_provider => "CreateCapacityProvider"(CreateCapacityProviderRequest) -> CreateCapacityProviderResponse;
    describe_capacity_providers => "DescribeCapacityProviders"(DescribeCapacityProvidersRequest) -> DescribeCapacityProvidersResponse;
    delete_capacity_provider => "DeleteCapacityProvider"(DeleteCapacityProviderRequest) -> DeleteCapacityProviderResponse;
    put_cluster_capacity_providers => "PutClusterCapacityProviders"(PutClusterCapacityProvidersRequest) -> PutClusterCapacityProvidersResponse;
    create_service => "CreateService"(CreateServiceRequest) -> CreateServiceResponse;
    update_service => "UpdateService"(UpdateServiceRequest) -> UpdateServiceResponse;
    delete_service => "DeleteService"(DeleteServiceRequest) -> DeleteServiceResponse;
    describe_services => "DescribeServices"(DescribeServicesRequest) -> DescribeServicesResponse;
    list_services => "ListServices"(ListServicesRequest) -> ListServicesResponse;
    tag_resource => "TagResource"(TagResourceRequest) -> TagResourceResponse;
    untag_resource => "UntagResource"(UntagResourceRequest) -> UntagResourceResponse;
    list_tags_for_resource => "ListTagsForResource"(ListTagsForResourceRequest) -> ListTagsForResourceResponse;
    update_cluster => "UpdateCluster"(UpdateClusterRequest) -> UpdateClusterResponse;
    update_cluster_settings => "UpdateClusterSettings"(UpdateClusterSettingsRequest) -> UpdateClusterSettingsResponse;
    put_account_setting => "PutAccountSetting"(PutAccountSettingRequest) -> PutAccountSettingResponse;
    put_account_setting_default => "PutAccountSettingDefault"(PutAccountSettingDefaultRequest) -> PutAccountSettingDefaultResponse;
    delete_account_setting => "DeleteAccountSetting"(DeleteAccountSettingRequest) -> DeleteAccountSettingResponse;
    list_account_settings => "ListAccountSettings"(ListAccountSettingsRequest) -> ListAccountSettingsResponse;
    delete_task_definitions => "DeleteTaskDefinitions"(DeleteTaskDefinitionsRequest) -> DeleteTaskDefinitionsResponse;
    update_task_protection => "UpdateTaskProtection"(UpdateTaskProtectionRequest) -> UpdateTaskProtectionResponse;
    get_task_protection => "GetTaskProtection"(GetTaskProtectionRequest) -> GetTaskProtectionResponse;
    update_capacity_provider => "UpdateCapacityProvider"(UpdateCapacityProviderRequest) -> UpdateCapacityProviderResponse;
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_grpc_door_serves_every_action_of_the_json_door() {
        assert_eq!(super::ACTIONS, super::super::ecs_json::ACTIONS);
    }
}
