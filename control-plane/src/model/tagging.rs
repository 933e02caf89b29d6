//! The tagging actions' shapes: TagResource, UntagResource,
//! ListTagsForResource.

use super::common::Tag;
use serde::{Deserialize, Serialize};

/// `TagResource` input.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TagResourceRequest {
    /// A long ARN of a cluster, task definition, task, container instance,
    /// capacity provider or service.
    pub resource_arn: Option<String>,
    /// Set or overwritten; other tags stay.
    pub tags: Option<Vec<Tag>>,
}

/// `UntagResource` input.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UntagResourceRequest {
    /// As for TagResource.
    pub resource_arn: Option<String>,
    /// Keys to remove; absent keys are no error.
    pub tag_keys: Option<Vec<String>>,
}

/// `ListTagsForResource` input.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListTagsForResourceRequest {
    /// As for TagResource.
    pub resource_arn: Option<String>,
}

/// `ListTagsForResource` output.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListTagsForResourceResponse {
    /// The resource's tags.
    pub tags: Vec<Tag>,
}

/// An output with no members (`TagResource`, `UntagResource`): `{}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Empty {}
