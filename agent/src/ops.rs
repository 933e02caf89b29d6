//! The operator's listener (`--metrics-listen`): `GET /healthz` (the
//! process is alive and its session or reconnect loop is turning), `GET
//! /readyz` (ready to run tasks: a session with the control plane is open
//! and the Docker Engine answers), `GET /metrics` (Prometheus text
//! exposition). Unauthenticated, as Prometheus endpoints are; loopback
//! unless `--metrics-public`. It is up before Docker is reached, so an
//! operator can see why the agent is not ready yet.

use crate::engine::{Context, now_ms};
use crate::metrics::Metrics;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// A loop that has not turned for this long makes /healthz fail (as it
/// stops the systemd watchdog pings).
const STALL: Duration = Duration::from_secs(15);

/// What the routes read: the metrics from the start, the engine context
/// once Docker answered and the identity is known.
#[derive(Debug, Clone)]
pub struct Ops {
    metrics: Arc<Metrics>,
    ctx: Arc<OnceLock<Arc<Context>>>,
}

impl Ops {
    /// Routes over `metrics`, with no context yet.
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Ops {
            metrics,
            ctx: Arc::new(OnceLock::new()),
        }
    }

    /// The context is ready: health and readiness read it from now on.
    pub fn started(&self, ctx: Arc<Context>) {
        let _ = self.ctx.set(ctx);
    }

    /// The routes.
    pub fn router(&self) -> axum::Router {
        axum::Router::new()
            .route("/healthz", get(healthz))
            .route("/readyz", get(readyz))
            .route("/metrics", get(metrics))
            .with_state(self.clone())
    }

    /// Whether the process's loops turn, and why not.
    pub fn health(&self) -> Result<&'static str, String> {
        let Some(ctx) = self.ctx.get() else {
            return Ok("ok: alive, connecting to the Docker Engine\n");
        };
        let last = ctx.loop_turned.load(std::sync::atomic::Ordering::Relaxed);
        if berth_proto::systemd::turning(last, now_ms(), STALL) {
            Ok("ok: alive, loops turning\n")
        } else {
            Err(format!(
                "unhealthy: the session loop has not turned for {} s\n",
                (now_ms() - last) / 1000
            ))
        }
    }

    /// Whether the agent can run tasks, and why not.
    pub fn readiness(&self) -> Result<&'static str, String> {
        let Some(ctx) = self.ctx.get() else {
            return Err("not ready: connecting to the Docker Engine\n".into());
        };
        if !ctx.runtime_health.ok() {
            return Err(format!(
                "not ready: {}\n",
                ctx.runtime_health.to_proto().detail
            ));
        }
        if !ctx.session_open.load(std::sync::atomic::Ordering::Relaxed) {
            return Err("not ready: no session with the control plane (reconnecting)\n".into());
        }
        Ok("ready: session open, Docker Engine answering\n")
    }
}

fn text(result: Result<&'static str, String>) -> axum::response::Response {
    let (status, body) = match result {
        Ok(body) => (StatusCode::OK, body.to_owned()),
        Err(body) => (StatusCode::SERVICE_UNAVAILABLE, body),
    };
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

async fn healthz(axum::extract::State(ops): axum::extract::State<Ops>) -> axum::response::Response {
    text(ops.health())
}

async fn readyz(axum::extract::State(ops): axum::extract::State<Ops>) -> axum::response::Response {
    text(ops.readiness())
}

async fn metrics(
    axum::extract::State(ops): axum::extract::State<Ops>,
    headers: axum::http::HeaderMap,
) -> axum::response::Response {
    let tasks = ops
        .ctx
        .get()
        .map(|c| c.reporter.status_counts())
        .unwrap_or_default();
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let (content_type, body) =
        berth_proto::exposition::negotiate(accept, ops.metrics.render(&tasks));
    (StatusCode::OK, [(header::CONTENT_TYPE, content_type)], body).into_response()
}
