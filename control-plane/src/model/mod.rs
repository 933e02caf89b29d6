//! ECS resource types with their exact wire names (camelCase JSON), ARNs and
//! enums. Pure data: no I/O and no business rules.
//!
//! Request shapes keep every member optional, even the ones ECS requires:
//! `validate` reports a missing member as the InvalidParameterException ECS
//! returns, which serde's "missing field" could not do.

pub mod account_setting;
pub mod arn;
pub mod cluster;
pub mod common;
pub mod container_instance;
pub mod placement;
pub mod service;
pub mod status;
pub mod tagging;
pub mod task;
pub mod task_definition;
pub mod task_protection;
pub mod time;

pub use arn::ArnScope;
pub use common::{Attribute, Failure, KeyValuePair, Resource, Tag};
pub use time::Timestamp;
