//! Berth's agent: registers this host with the control plane and runs the
//! tasks placed on it through the Docker Engine.
//!
//! # Layout
//!
//! - [`session`]: the gRPC client: registration, the session stream,
//!   reconnects.
//! - [`engine`]: one state machine per task, the supervisor that converges
//!   engines to the desired set, Docker event routing, pending reports.
//! - [`runtime`]: everything that speaks Docker (bollard).
//! - [`network`]: network modes, port mappings, network bindings.
//! - [`state`]: the agent's sled database (identity, tasks, containers).
//! - [`host`]: host facts through nix.
//! - [`cgroup`]: task cgroups for task-level CPU and memory limits.
//! - [`metrics`], [`ops`]: the operator's listener (/metrics, /healthz,
//!   /readyz).
//! - [`config`]: the binary's edge (logging is `berth_proto::logging`).

pub mod cgroup;
pub mod config;
pub mod engine;
pub mod host;
pub mod metrics;
pub mod network;
pub mod ops;
pub mod pause;
pub mod runtime;
pub mod session;
pub mod state;

use anyhow::Context as _;
use berth_proto::agent::v1 as pb;
use std::sync::Arc;
use std::time::Duration;

/// The agent version reported at registration.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Connects to Docker, retrying until it answers.
async fn connect_docker(host: &str, metrics: &Arc<metrics::Metrics>) -> runtime::Runtime {
    let mut backoff = Duration::from_millis(500);
    loop {
        match runtime::Runtime::connect(host, metrics.clone()).await {
            Ok(r) => return r,
            Err(e) => {
                tracing::error!(docker_host = host, error = %format!("{e:#}"), retry_in = ?backoff, "cannot reach the Docker Engine");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    }
}

/// Runs the agent until the process is stopped. Containers keep running
/// when the agent exits; the next start resumes them.
pub async fn run(config: config::Config) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir).with_context(|| {
        format!(
            "cannot create the data directory {}",
            config.data_dir.display()
        )
    })?;
    let state = state::AgentState::open(&config.data_dir.join("state")).with_context(|| {
        format!(
            "cannot open the agent database in {}",
            config.data_dir.display()
        )
    })?;
    let events_start = engine::now_ms() / 1000 - 1;

    let metrics = Arc::new(metrics::Metrics::new());
    let ops = ops::Ops::new(metrics.clone());
    let metrics_addr = match config.metrics_listen {
        None => None,
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} (metrics-listen)"))?;
            let bound = listener.local_addr()?;
            let router = ops.router();
            tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, router).await {
                    tracing::error!(error = %e, "the metrics listener failed");
                }
            });
            tracing::info!(metrics = %bound, "serving /metrics, /healthz and /readyz");
            Some(bound)
        }
    };

    let runtime = connect_docker(&config.docker_host, &metrics).await;
    let docker_version = runtime.version().await.unwrap_or_default();
    let (cgroup_driver, cgroup_version) = runtime
        .cgroup_info()
        .await
        .unwrap_or_else(|_| ("cgroupfs".to_owned(), "1".to_owned()));
    tracing::info!(docker_version = %docker_version, %cgroup_driver, %cgroup_version, "connected to Docker");

    let facts = host::detect();
    let registration = session::Registration {
        url: config.control_plane.clone(),
        request: register_request(&config, &facts, &docker_version),
        token: config.agent_token.clone(),
        tls_ca: config.tls_ca.clone(),
    };
    let identity = match state.identity()? {
        Some(id) => {
            if id.cluster != config.cluster {
                tracing::warn!(
                    saved = %id.cluster,
                    configured = %config.cluster,
                    "this agent is registered in another cluster; the control plane will refuse the new one until the data directory is cleared"
                );
            }
            id
        }
        None => {
            let id = session::first_registration(&registration, &config.cluster).await;
            state.save_identity(&id)?;
            id
        }
    };
    tracing::info!(container_instance = %identity.container_instance_arn, "agent identity");

    let ctx = Arc::new(engine::Context {
        runtime,
        state,
        reporter: engine::Reporter::default(),
        routes: engine::Routes::default(),
        instance_arn: identity.container_instance_arn.clone(),
        default_stop_timeout: config.container_stop_timeout,
        cgroups: cgroup::TaskCgroups::new(&cgroup_driver, &cgroup_version),
        gpu_access: config.gpu_access,
        env_files_dir: config.env_files_dir.clone(),
        pull_behavior: config.image_pull_behavior,
        registry_credentials_dir: config.registry_credentials_dir.clone(),
        secrets_dir: config.secrets_dir.clone(),
        runtime_health: engine::RuntimeHealth::default(),
        notifier: berth_proto::systemd::Notifier::from_env(),
        loop_turned: std::sync::atomic::AtomicI64::new(engine::now_ms()),
        session_open: std::sync::atomic::AtomicBool::new(false),
        metrics,
        metrics_addr,
    });
    ops.started(ctx.clone());
    tokio::spawn(engine::probe_runtime(ctx.clone()));
    tokio::spawn(engine::events::run(ctx.clone(), events_start));
    let supervisor = Arc::new(engine::Supervisor::new(ctx.clone()));
    let resumed = supervisor.recover()?;
    if resumed > 0 {
        tracing::info!(tasks = resumed, "resumed tasks from the agent database");
    }
    {
        let supervisor = supervisor.clone();
        let wait = config.task_cleanup_wait;
        let image_age = config.image_cleanup_age;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(
                Duration::from_secs(60).min(wait.max(Duration::from_secs(5))),
            );
            loop {
                tick.tick().await;
                supervisor.clean(wait).await;
                supervisor.clean_images(image_age).await;
            }
        });
    }
    tokio::spawn(engine::watchdog(ctx.clone(), supervisor.clone()));
    session::run(ctx, supervisor, registration).await;
    Ok(())
}

fn register_request(
    config: &config::Config,
    facts: &host::HostFacts,
    docker_version: &str,
) -> pb::RegisterRequest {
    let mut attributes = vec![
        attribute("ecs.os-type", Some("linux")),
        attribute("ecs.os-family", Some("LINUX")),
        attribute("ecs.cpu-architecture", Some(&facts.cpu_architecture)),
    ];
    if config.launch_type == "EXTERNAL" {
        attributes.push(attribute("ecs.capability.external", None));
    }
    // Capabilities this agent implements, for definitions' requiresAttributes.
    attributes.push(attribute("ecs.capability.env-files.s3", None));
    attributes.push(attribute("ecs.capability.task-cpu-mem-limit", None));
    if let Some(zone) = &config.availability_zone {
        attributes.push(attribute("ecs.availability-zone", Some(zone)));
    }
    if let Some(kind) = &config.instance_type {
        attributes.push(attribute("ecs.instance-type", Some(kind)));
    }
    for (k, v) in &config.attributes {
        attributes.push(attribute(k, v.as_deref()));
    }
    pb::RegisterRequest {
        cluster: config.cluster.clone(),
        container_instance_arn: None,
        instance_secret: None,
        instance_id: config
            .instance_id
            .clone()
            .unwrap_or_else(|| facts.hostname.clone()),
        cpu: config.cpu.unwrap_or(facts.cpu_units),
        memory_mib: config.memory.unwrap_or(facts.memory_mib),
        reserved_tcp_ports: config
            .reserved_ports
            .iter()
            .map(|p| u32::from(*p))
            .collect(),
        reserved_udp_ports: Vec::new(),
        attributes,
        version_info: Some(pb::VersionInfo {
            agent_version: VERSION.to_owned(),
            agent_hash: String::new(),
            docker_version: docker_version.to_owned(),
        }),
        launch_type: config.launch_type.clone(),
        capacity_provider: config.capacity_provider.clone(),
        gpu_ids: config.gpus.clone(),
    }
}

fn attribute(name: &str, value: Option<&str>) -> pb::Attribute {
    pb::Attribute {
        name: name.to_owned(),
        value: value.map(str::to_owned),
    }
}
