//! The operator's listener (`--metrics-listen`): `GET /healthz` (the
//! process's loops are turning), `GET /readyz` (ready to serve: the store
//! takes writes; a nearly full data directory is a warning line), and `GET
//! /metrics` (Prometheus text exposition). Unauthenticated, as Prometheus
//! endpoints are; loopback unless `--metrics-public`.

use crate::app::ControlPlane;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

/// A loop that has not turned for this long makes /healthz fail.
const STALL: Duration = Duration::from_secs(15);

/// What the background loops report for /healthz and /readyz.
#[derive(Debug, Default)]
pub struct Health {
    /// Unix ms of the service scheduler loop's last turn.
    pub scheduler_turned: AtomicI64,
    /// Unix ms of the store watcher's last turn.
    pub store_watch_turned: AtomicI64,
    /// Bytes free on the data directory's filesystem (0: unknown).
    pub disk_free: AtomicU64,
    /// Its size in bytes (0: unknown).
    pub disk_total: AtomicU64,
    /// 1 while the free space is below the warning threshold.
    pub disk_low: AtomicU64,
}

fn now_ms() -> i64 {
    crate::model::Timestamp::now().as_millis()
}

impl Health {
    /// A fresh record, started now.
    pub fn new() -> Arc<Self> {
        let h = Health::default();
        h.scheduler_turned.store(now_ms(), Ordering::Relaxed);
        h.store_watch_turned.store(now_ms(), Ordering::Relaxed);
        Arc::new(h)
    }

    /// Marks a loop's turn.
    pub fn turned(cell: &AtomicI64) {
        cell.store(now_ms(), Ordering::Relaxed);
    }
}

#[derive(Clone)]
struct Ops {
    app: Arc<ControlPlane>,
    health: Arc<Health>,
}

/// The operator's routes.
pub fn router(app: Arc<ControlPlane>, health: Arc<Health>) -> axum::Router {
    axum::Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(Ops { app, health })
}

fn text(status: StatusCode, body: String) -> axum::response::Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

async fn healthz(axum::extract::State(ops): axum::extract::State<Ops>) -> axum::response::Response {
    let now = now_ms();
    let stale: Vec<&str> = [
        ("service scheduler", &ops.health.scheduler_turned),
        ("store watcher", &ops.health.store_watch_turned),
    ]
    .into_iter()
    .filter(|(_, t)| now - t.load(Ordering::Relaxed) > STALL.as_millis() as i64)
    .map(|(name, _)| name)
    .collect();
    if stale.is_empty() {
        text(StatusCode::OK, "ok: alive, loops turning\n".into())
    } else {
        text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "unhealthy: stalled for over {STALL:?}: {}\n",
                stale.join(", ")
            ),
        )
    }
}

async fn readyz(axum::extract::State(ops): axum::extract::State<Ops>) -> axum::response::Response {
    if let Some(failure) = ops.app.store_failure() {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: writes refused: {failure}\n"),
        );
    }
    let mut body = String::from("ready: store open, listeners bound\n");
    if ops.health.disk_low.load(Ordering::Relaxed) == 1 {
        let _ = writeln!(
            body,
            "warning: the data directory's filesystem is nearly full ({} MiB free of {} MiB); writes fail when it is full",
            ops.health.disk_free.load(Ordering::Relaxed) >> 20,
            ops.health.disk_total.load(Ordering::Relaxed) >> 20
        );
    }
    text(StatusCode::OK, body)
}

async fn metrics(
    axum::extract::State(ops): axum::extract::State<Ops>,
    headers: axum::http::HeaderMap,
) -> axum::response::Response {
    let app = ops.app.clone();
    let free = ops.health.disk_free.load(Ordering::Relaxed);
    // Rendering takes the state lock: off the async threads.
    let body = tokio::task::spawn_blocking(move || app.metrics().render(&app, free))
        .await
        .unwrap_or_default();
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let (content_type, body) = berth_proto::exposition::negotiate(accept, body);
    (StatusCode::OK, [(header::CONTENT_TYPE, content_type)], body).into_response()
}
