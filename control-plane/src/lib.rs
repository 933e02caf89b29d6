//! Berth's control plane: the Amazon ECS API over AWS JSON 1.1, the agent
//! gRPC service, cluster state in sled, and placement.
//!
//! # Layout
//!
//! - [`api`]: the front doors (`ecs_json`); translation only.
//! - [`agents`]: the agent-facing gRPC service: registration, sessions,
//!   state reports, liveness.
//! - [`app`]: the use cases (run_task, stop_task, ...): load, decide,
//!   persist, notify.
//! - [`validate`]: every request rule, pure.
//! - [`placement`]: choosing instances, pure.
//! - [`model`]: ECS wire shapes, ARNs, timestamps.
//! - [`store`]: persistence behind a trait; sled by default.
//! - [`config`]: the binary's edge (logging is `berth_proto::logging`).
//!
//! [`run`] takes bound listeners and a shutdown future, so tests can bind
//! port 0 and stop the server when they are done.

pub mod agents;
pub mod api;
pub mod app;
pub mod auth;
pub mod config;
pub mod console;
pub mod metrics;
pub mod model;
pub mod ops;
pub mod placement;
pub mod scheduler;
pub mod snapshot;
pub mod store;
pub mod validate;

use anyhow::Context;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// How often STOPPED tasks past retention are forgotten.
const EXPIRY_INTERVAL: Duration = Duration::from_secs(60);
/// The service scheduler's resync period.
const SCHEDULER_INTERVAL: Duration = Duration::from_secs(1);
/// How often a failed store is reopened, and free disk space checked.
const STORE_WATCH_INTERVAL: Duration = Duration::from_secs(1);
/// Free space below which the data directory's filesystem is reported as
/// nearly full: the larger of this and [`LOW_DISK_FRACTION`] of it.
const LOW_DISK_BYTES: u64 = 256 << 20;
/// See [`LOW_DISK_BYTES`].
const LOW_DISK_FRACTION: f64 = 0.05;

/// A short state for `systemctl status`.
fn status_line(app: &app::ControlPlane) -> String {
    let g = app.gauges();
    let connected: usize = g
        .instances
        .iter()
        .filter(|((_, _, connected), _)| *connected)
        .map(|(_, n)| n)
        .sum();
    let running: usize = g
        .tasks
        .iter()
        .filter(|((_, status), _)| status == "RUNNING")
        .map(|(_, n)| n)
        .sum();
    match app.store_failure() {
        Some(_) => format!("store refusing writes; {connected} instances connected"),
        None => format!("serving; {connected} instances connected, {running} tasks running"),
    }
}

/// Under systemd: `STATUS=` every few seconds and, with `WatchdogSec=`,
/// `WATCHDOG=1` at half the interval, only while the scheduler and store
/// loops turn and the state lock can be taken (a deadlock stops the pings,
/// and systemd restarts the service).
async fn watchdog(
    app: Arc<app::ControlPlane>,
    health: Arc<ops::Health>,
    notifier: Arc<berth_proto::systemd::Notifier>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    if !notifier.enabled() {
        return;
    }
    let every = notifier
        .watchdog_interval()
        .unwrap_or(Duration::from_secs(10))
        .min(Duration::from_secs(10));
    let mut tick = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let now = model::Timestamp::now().as_millis();
        let allowed = Duration::from_secs(15);
        let turning = [&health.scheduler_turned, &health.store_watch_turned]
            .iter()
            .all(|t| {
                berth_proto::systemd::turning(
                    t.load(std::sync::atomic::Ordering::Relaxed),
                    now,
                    allowed,
                )
            });
        // The state lock, taken off the async threads and bounded in time.
        let probe = {
            let app = app.clone();
            tokio::time::timeout(
                every,
                tokio::task::spawn_blocking(move || status_line(&app)),
            )
        };
        match probe.await {
            Ok(Ok(status)) if turning => {
                notifier.watchdog();
                notifier.status(&status);
            }
            _ => tracing::error!(
                "a control-plane loop or the state lock is stuck: withholding the systemd watchdog ping"
            ),
        }
    }
}

/// Writes a snapshot to `<data-dir>/snapshots/latest.snap` on SIGUSR1
/// (what `berth-control-plane snapshot save` sends).
async fn snapshot_on_signal(app: Arc<app::ControlPlane>, data_dir: std::path::PathBuf) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut usr1 = match signal(SignalKind::user_defined1()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch SIGUSR1: snapshot save will not reach this process");
            return;
        }
    };
    while usr1.recv().await.is_some() {
        let file = snapshot::latest(&data_dir);
        let started = std::time::Instant::now();
        let written = match app.snapshot_records().await {
            Ok(records) => {
                let n = records.len();
                let path = file.clone();
                tokio::task::spawn_blocking(move || snapshot::write(&path, &records).map(|()| n))
                    .await
                    .map_err(anyhow::Error::from)
                    .and_then(|r| r)
            }
            Err(e) => Err(anyhow::Error::from(e)),
        };
        match written {
            Ok(n) => {
                tracing::info!(file = %file.display(), records = n, took = ?started.elapsed(), "snapshot written")
            }
            Err(e) => tracing::error!(error = format!("{e:#}"), "snapshot failed"),
        }
    }
}

/// The service scheduler's loop: a round over the services a durable commit
/// touched (the change feed), and over all of them once a second for its
/// timers (throttle,
/// health-check grace, lost hosts). A round that changes nothing commits
/// nothing, so the loop comes to rest.
async fn run_scheduler(
    app: Arc<app::ControlPlane>,
    health: Arc<ops::Health>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(SCHEDULER_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let all = tokio::select! {
            _ = app.changed() => false,
            _ = tick.tick() => true,
            _ = stop.changed() => break,
        };
        ops::Health::turned(&health.scheduler_turned);
        if let Err(e) = app.reconcile_services(all).await {
            tracing::warn!(error = %e, "a service scheduler round failed; retrying");
            tokio::time::sleep(SCHEDULER_INTERVAL).await;
        }
    }
}

/// Reopens the store once it has failed (a full disk, an I/O error), so
/// writes resume by themselves when the cause is gone, and warns while the
/// data directory's filesystem is nearly full.
async fn watch_store(
    app: Arc<app::ControlPlane>,
    health: Arc<ops::Health>,
    data_dir: std::path::PathBuf,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(STORE_WATCH_INTERVAL);
    let mut low = false;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => break,
        }
        ops::Health::turned(&health.store_watch_turned);
        if app.store_failure().is_some() {
            let recovering = app.clone();
            match tokio::task::spawn_blocking(move || recovering.recover_store()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::debug!(error = %e, "the state store cannot be reopened yet"),
                Err(e) => tracing::error!(error = %e, "reopening the state store panicked"),
            }
        }
        if let Some((available, total)) = free_space(&data_dir) {
            let threshold = LOW_DISK_BYTES.max((total as f64 * LOW_DISK_FRACTION) as u64);
            let now_low = available < threshold;
            if now_low && !low {
                tracing::warn!(
                    data_dir = %data_dir.display(),
                    available_mib = available >> 20,
                    total_mib = total >> 20,
                    "the data directory's filesystem is nearly full; writes will fail when it is"
                );
            } else if low && !now_low {
                tracing::info!(data_dir = %data_dir.display(), available_mib = available >> 20, "the data directory's filesystem has room again");
            }
            low = now_low;
            use std::sync::atomic::Ordering::Relaxed;
            health.disk_free.store(available, Relaxed);
            health.disk_total.store(total, Relaxed);
            health.disk_low.store(u64::from(low), Relaxed);
        }
    }
}

/// Bytes available to an unprivileged writer, and the filesystem's size.
fn free_space(path: &std::path::Path) -> Option<(u64, u64)> {
    let s = nix::sys::statvfs::statvfs(path).ok()?;
    let block = s.fragment_size();
    Some((s.blocks_available() * block, s.blocks() * block))
}

/// Serves the control plane on the given listeners until `shutdown`
/// resolves.
pub async fn run(
    config: config::Config,
    http: TcpListener,
    grpc: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let metrics = bind_metrics(&config).await?;
    run_with_sighup(config, http, grpc, metrics, shutdown, None).await
}

/// Binds `--metrics-listen`, unless it is `off`.
pub async fn bind_metrics(config: &config::Config) -> anyhow::Result<Option<TcpListener>> {
    match config.metrics_listen {
        Some(addr) => {
            Ok(Some(TcpListener::bind(addr).await.with_context(|| {
                format!("cannot listen on {addr} (metrics-listen)")
            })?))
        }
        None => Ok(None),
    }
}

/// [`run`], reloading the credentials and agent token files on each signal
/// of `sighup`: the binary registers it before it announces readiness, so a
/// SIGHUP right after the ready line is not lost (or fatal). [`run`] passes
/// `None`: embedders and in-process tests keep their own SIGHUP handling.
pub async fn run_with_sighup(
    config: config::Config,
    http: TcpListener,
    grpc: TcpListener,
    metrics: Option<TcpListener>,
    shutdown: impl Future<Output = ()> + Send + 'static,
    sighup: Option<tokio::signal::unix::Signal>,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir).with_context(|| {
        format!(
            "cannot create the data directory {}",
            config.data_dir.display()
        )
    })?;
    let store = store::SledStore::open_with_cache(
        &config.data_dir.join("state"),
        config.accept_state_loss,
        config.store_cache_bytes,
    )
    .with_context(|| {
        format!(
            "cannot open the state database in {}",
            config.data_dir.display()
        )
    })?;
    let settings = app::Settings {
        scope: model::ArnScope {
            region: config.region.clone(),
            account_id: config.account_id.clone(),
        },
        stopped_task_retention: config.stopped_task_retention,
        lost_host_timeout: config.lost_host_timeout,
        client_token_retention: Duration::from_secs(12 * 3600),
        placement_seed: config.placement_seed.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        }),
    };
    let app = Arc::new(
        app::ControlPlane::load(Arc::new(store), settings).context("cannot load the state")?,
    );

    // Everything that can fail is set up before any task is spawned.
    let mut builder = tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(Duration::from_secs(5)))
        .http2_keepalive_timeout(Some(Duration::from_secs(5)));
    if let Some(tls) = &config.tls {
        let read = |p: &std::path::Path| {
            std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))
        };
        let identity = tonic::transport::Identity::from_pem(read(&tls.cert)?, read(&tls.key)?);
        builder = builder
            .tls_config(tonic::transport::ServerTlsConfig::new().identity(identity))
            .context("the TLS certificate or key is not usable (both must be PEM)")?;
    }
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(berth_proto::FILE_DESCRIPTOR_SET)
        .build_v1()
        .context("cannot build the gRPC reflection service")?;

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };

    let expiry = {
        let app = app.clone();
        let mut rx = stop_rx.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(EXPIRY_INTERVAL);
            loop {
                tokio::select! {
                    _ = tick.tick() => match app.expire() {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(tasks = n, "forgot STOPPED tasks past retention"),
                        Err(e) => tracing::error!(error = %e, "expiring STOPPED tasks failed"),
                    },
                    _ = rx.changed() => break,
                }
            }
        })
    };

    let health = ops::Health::new();
    let scheduler = tokio::spawn(run_scheduler(app.clone(), health.clone(), stop_rx.clone()));
    let ops_server = metrics.map(|listener| {
        let router = ops::router(app.clone(), health.clone());
        let stop = stopped(stop_rx.clone());
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, router)
                .with_graceful_shutdown(stop)
                .await
            {
                tracing::error!(error = %e, "the metrics listener failed");
            }
        })
    });
    let pid_file = snapshot::pid_file(&config.data_dir);
    if let Err(e) = std::fs::write(&pid_file, format!("{}\n", std::process::id())) {
        tracing::warn!(error = %e, file = %pid_file.display(), "cannot write the pid file (snapshot save will not reach this process)");
    }
    let snapshots = tokio::spawn(snapshot_on_signal(app.clone(), config.data_dir.clone()));
    let store_watch = tokio::spawn(watch_store(
        app.clone(),
        health.clone(),
        config.data_dir.clone(),
        stop_rx.clone(),
    ));

    let keys = config.keys.clone().map(auth::Shared::new);
    let join_token = config.join_token.clone().map(auth::Shared::new);
    let reload = sighup.map(|sighup| {
        tokio::spawn(reload_on_sighup(
            sighup,
            keys.clone(),
            config.credentials_file.clone(),
            join_token.clone(),
            config.agent_token_file.clone(),
        ))
    });

    let http_router = api::ecs_json::router(app.clone(), keys.clone()).merge(console::router(
        app.clone(),
        keys.clone(),
        stop_rx.clone(),
    ));
    let http_server =
        axum::serve(http, http_router).with_graceful_shutdown(stopped(stop_rx.clone()));
    let grpc_incoming = tokio_stream::wrappers::TcpListenerStream::new(grpc);
    let grpc_server = builder
        .add_service(agents::AgentServiceServer::with_interceptor(
            agents::Agents::new(app.clone(), join_token.clone()),
            agents::join_token_check(join_token),
        ))
        .add_service(
            // The JSON API's body limit applies to gRPC messages too.
            api::ecs_grpc::EcsServer::new(api::ecs_grpc::EcsGrpc::new(app.clone(), keys))
                .max_decoding_message_size(api::ecs_json::MAX_BODY_BYTES),
        )
        .add_service(reflection)
        .serve_with_incoming_shutdown(grpc_incoming, stopped(stop_rx.clone()));

    let notifier = Arc::new(berth_proto::systemd::Notifier::from_env());
    notifier.ready(&status_line(&app));
    let watchdog = tokio::spawn(watchdog(
        app.clone(),
        health.clone(),
        notifier.clone(),
        stop_rx.clone(),
    ));
    let (http_result, grpc_result) = tokio::join!(http_server, grpc_server);
    notifier.stopping();
    watchdog.abort();
    expiry.abort();
    store_watch.abort();
    scheduler.abort();
    if let Some(o) = ops_server {
        o.abort();
    }
    snapshots.abort();
    let _ = std::fs::remove_file(&pid_file);
    if let Some(reload) = reload {
        reload.abort();
    }
    http_result.context("the ECS API server failed")?;
    grpc_result.context("the gRPC server failed")?;
    tracing::info!("control plane stopped");
    Ok(())
}

/// Re-reads the credentials file and the agent token file on SIGHUP
/// (`systemctl reload`), so keys and tokens rotate without a restart. A
/// file that no longer parses is reported and the previous contents stay in
/// force. Authentication cannot be switched on or off this way.
async fn reload_on_sighup(
    mut hup: tokio::signal::unix::Signal,
    keys: Option<Arc<auth::Shared<auth::Keys>>>,
    credentials_file: Option<std::path::PathBuf>,
    token: Option<Arc<auth::Shared<auth::JoinToken>>>,
    agent_token_file: Option<std::path::PathBuf>,
) {
    while hup.recv().await.is_some() {
        reload(
            &keys,
            credentials_file.as_deref(),
            auth::Keys::load,
            "the credentials file",
        );
        reload(
            &token,
            agent_token_file.as_deref(),
            auth::JoinToken::load,
            "the agent token file",
        );
    }
}

/// Replaces `shared` with what `load` reads from `path`; on failure keeps
/// what is in force and says so.
fn reload<T>(
    shared: &Option<Arc<auth::Shared<T>>>,
    path: Option<&std::path::Path>,
    load: fn(&std::path::Path) -> Result<T, String>,
    what: &str,
) {
    let (Some(shared), Some(path)) = (shared, path) else {
        return;
    };
    match load(path) {
        Ok(value) => {
            shared.replace(value);
            tracing::info!(file = %path.display(), "reloaded {what}");
        }
        Err(e) => tracing::error!(error = %e, "kept the previous contents of {what}"),
    }
}
