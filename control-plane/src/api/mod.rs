//! The front doors. Each translates its wire format to the service layer and
//! back, and owns exactly one mapping from service errors to its protocol's
//! errors; none contains business rules.

pub mod ecs_grpc;
pub mod ecs_json;
