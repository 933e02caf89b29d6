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
    /// When the process started, unix seconds.
    pub started: AtomicI64,
}

fn now_ms() -> i64 {
    crate::model::Timestamp::now().as_millis()
}

impl Health {
    /// A fresh record, started now.
    pub fn new() -> Arc<Self> {
        let h = Health::default();
        h.started.store(now_ms() / 1000, Ordering::Relaxed);
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

/// Escapes a label value for the text exposition format.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

async fn metrics(axum::extract::State(ops): axum::extract::State<Ops>) -> axum::response::Response {
    let g = ops.app.gauges();
    let mut out = String::new();
    let family = |out: &mut String, name: &str, kind: &str, help: &str| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
    };
    family(
        &mut out,
        "berth_build_info",
        "gauge",
        "Always 1; the version of this control plane is a label.",
    );
    let _ = writeln!(
        out,
        "berth_build_info{{version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    );
    family(
        &mut out,
        "berth_tasks",
        "gauge",
        "Tasks kept, by cluster and last status.",
    );
    for ((cluster, status), n) in &g.tasks {
        let _ = writeln!(
            out,
            "berth_tasks{{cluster=\"{}\",last_status=\"{status}\"}} {n}",
            label(cluster)
        );
    }
    family(
        &mut out,
        "berth_container_instances",
        "gauge",
        "Container instances, by cluster, status and whether their agent is connected.",
    );
    for ((cluster, status, connected), n) in &g.instances {
        let _ = writeln!(
            out,
            "berth_container_instances{{cluster=\"{}\",status=\"{status}\",connected=\"{connected}\"}} {n}",
            label(cluster)
        );
    }
    family(
        &mut out,
        "berth_agent_sessions",
        "gauge",
        "Open agent sessions.",
    );
    let _ = writeln!(out, "berth_agent_sessions {}", g.sessions);
    family(
        &mut out,
        "berth_services",
        "gauge",
        "Services, by cluster and status.",
    );
    for ((cluster, status), n) in &g.services {
        let _ = writeln!(
            out,
            "berth_services{{cluster=\"{}\",status=\"{status}\"}} {n}",
            label(cluster)
        );
    }
    family(
        &mut out,
        "berth_store_writable",
        "gauge",
        "1 while the state store takes writes, 0 while it refuses them.",
    );
    let _ = writeln!(
        out,
        "berth_store_writable {}",
        u8::from(ops.app.store_failure().is_none())
    );
    family(
        &mut out,
        "berth_data_dir_free_bytes",
        "gauge",
        "Bytes free on the data directory's filesystem.",
    );
    let _ = writeln!(
        out,
        "berth_data_dir_free_bytes {}",
        ops.health.disk_free.load(Ordering::Relaxed)
    );
    family(
        &mut out,
        "process_start_time_seconds",
        "gauge",
        "Start time of the process since unix epoch in seconds.",
    );
    let _ = writeln!(
        out,
        "process_start_time_seconds {}",
        ops.health.started.load(Ordering::Relaxed)
    );
    if let Some(rss) = resident_bytes() {
        family(
            &mut out,
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
        );
        let _ = writeln!(out, "process_resident_memory_bytes {rss}");
    }
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
        .into_response()
}

/// This process's resident set, from /proc.
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}
