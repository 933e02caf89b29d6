//! End-to-end tests: real `berth-control-plane` and `berth-agent` processes,
//! the real Docker Engine, and the real AWS SDK. One test binary with a
//! module per area, so it links once.

mod api;
mod auth;
mod awsvpc;
mod breadth;
mod conformance;
mod console;
mod crash;
mod durability;
mod engine_restart;
mod errors;
mod images;
mod lifecycle;
mod liveness;
mod observability;
mod options;
mod ports;
mod runtask;
mod services;
mod support;
mod systemd;
mod tasks;
mod terraform;
