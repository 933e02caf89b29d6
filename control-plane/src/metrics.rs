//! The control plane's metrics, in a `prometheus-client` registry: counters
//! and histograms the request, placement, store and scheduler paths move as
//! they go, and gauges refreshed from the state at each scrape. Labels are
//! of low cardinality: actions, codes, reasons, clusters and statuses,
//! never a task id.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// `action`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Action {
    /// The ECS action (one of the served ones, or `unknown`).
    pub action: &'static str,
}

/// `action`, `code` (the HTTP status the answer has, on either door).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActionCode {
    /// The ECS action.
    pub action: &'static str,
    /// `200`, `400`, `500`, ...
    pub code: u16,
}

/// `reason`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Reason {
    /// ECS's reason (`RESOURCE:MEMORY`, `AGENT`, ...) or the scheduler's.
    pub reason: String,
}

/// `cluster`, `last_status`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClusterTaskStatus {
    /// Cluster name.
    pub cluster: String,
    /// The task's last status.
    pub last_status: String,
}

/// `cluster`, `status`, `connected`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClusterInstance {
    /// Cluster name.
    pub cluster: String,
    /// ACTIVE, DRAINING, INACTIVE.
    pub status: String,
    /// Whether its agent is connected.
    pub connected: String,
}

/// `cluster`, `status`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClusterStatus {
    /// Cluster name.
    pub cluster: String,
    /// The service's status.
    pub status: String,
}

/// Every metric of the control plane.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// API calls answered, by action and code.
    pub api_requests: Family<ActionCode, Counter>,
    /// How long they took, by action.
    pub api_duration: Family<Action, Histogram>,
    /// Tasks that could not be placed, by reason.
    pub placement_failures: Family<Reason, Counter>,
    /// How long a commit took to become durable.
    pub store_commit: Histogram,
    /// Tasks the service scheduler launched.
    pub service_tasks_started: Counter,
    /// Tasks it stopped, by why.
    pub service_tasks_stopped: Family<Reason, Counter>,
    /// Deployments, by what happened to them (created, completed, failed,
    /// rolled_back).
    pub deployments: Family<Reason, Counter>,
    tasks: Family<ClusterTaskStatus, Gauge>,
    instances: Family<ClusterInstance, Gauge>,
    sessions: Gauge,
    services: Family<ClusterStatus, Gauge>,
    store_writable: Gauge,
    disk_free: Gauge,
    process: berth_proto::process_metrics::ProcessMetrics,
}

impl Metrics {
    /// A registry with every metric at zero.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let api_requests = Family::<ActionCode, Counter>::default();
        registry.register(
            "berth_api_requests",
            "ECS API calls answered (both doors), by action and HTTP status code",
            api_requests.clone(),
        );
        let api_duration = Family::<Action, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 14))
        });
        registry.register(
            "berth_api_request_duration_seconds",
            "Time to answer an ECS API call, by action",
            api_duration.clone(),
        );
        let placement_failures = Family::<Reason, Counter>::default();
        registry.register(
            "berth_placement_failures",
            "Tasks that could not be placed, by ECS failure reason",
            placement_failures.clone(),
        );
        let store_commit = Histogram::new(exponential_buckets(0.0001, 2.0, 14));
        registry.register(
            "berth_store_commit_duration_seconds",
            "Time for a commit to become durable (the group fsync)",
            store_commit.clone(),
        );
        let service_tasks_started = Counter::default();
        registry.register(
            "berth_service_tasks_started",
            "Tasks the service scheduler launched",
            service_tasks_started.clone(),
        );
        let service_tasks_stopped = Family::<Reason, Counter>::default();
        registry.register(
            "berth_service_tasks_stopped",
            "Tasks the service scheduler stopped, by why",
            service_tasks_stopped.clone(),
        );
        let deployments = Family::<Reason, Counter>::default();
        registry.register(
            "berth_service_deployments",
            "Service deployments, by what happened (created, completed, failed, rolled_back)",
            deployments.clone(),
        );
        let tasks = Family::<ClusterTaskStatus, Gauge>::default();
        registry.register(
            "berth_tasks",
            "Tasks kept, by cluster and last status",
            tasks.clone(),
        );
        let instances = Family::<ClusterInstance, Gauge>::default();
        registry.register(
            "berth_container_instances",
            "Container instances, by cluster, status and whether their agent is connected",
            instances.clone(),
        );
        let sessions = Gauge::default();
        registry.register(
            "berth_agent_sessions",
            "Open agent sessions",
            sessions.clone(),
        );
        let services = Family::<ClusterStatus, Gauge>::default();
        registry.register(
            "berth_services",
            "Services, by cluster and status",
            services.clone(),
        );
        let store_writable = Gauge::default();
        registry.register(
            "berth_store_writable",
            "1 while the state store takes writes, 0 while it refuses them",
            store_writable.clone(),
        );
        let disk_free = Gauge::default();
        registry.register(
            "berth_data_dir_free_bytes",
            "Bytes free on the data directory's filesystem",
            disk_free.clone(),
        );
        // Known label values start at zero, so rate() and the dashboard see
        // them before the first event.
        for reason in crate::placement::Rejection::REASONS {
            let _ = placement_failures.get_or_create(&Reason {
                reason: reason.to_owned(),
            });
        }
        for why in crate::scheduler::StopWhy::ALL {
            let _ = service_tasks_stopped.get_or_create(&Reason {
                reason: why.label().to_owned(),
            });
        }
        for what in ["created", "completed", "failed", "rolled_back"] {
            let _ = deployments.get_or_create(&Reason {
                reason: what.to_owned(),
            });
        }
        let process = berth_proto::process_metrics::ProcessMetrics::register(
            &mut registry,
            env!("CARGO_PKG_VERSION"),
        );
        Metrics {
            registry,
            api_requests,
            api_duration,
            placement_failures,
            store_commit,
            service_tasks_started,
            service_tasks_stopped,
            deployments,
            tasks,
            instances,
            sessions,
            services,
            store_writable,
            disk_free,
            process,
        }
    }

    /// Counts one answered API call.
    pub fn api(&self, action: &str, code: u16, seconds: f64) {
        // Unknown actions would let a caller mint label values: fold them.
        // Labels are static strings: counting allocates nothing.
        let action = crate::api::ecs_json::ACTIONS
            .iter()
            .find(|a| **a == action)
            .copied()
            .unwrap_or("unknown");
        self.api_requests
            .get_or_create(&ActionCode { action, code })
            .inc();
        self.api_duration
            .get_or_create(&Action { action })
            .observe(seconds);
    }

    /// Counts a reasoned event in a family.
    pub fn reason(family: &Family<Reason, Counter>, reason: &str) {
        family
            .get_or_create(&Reason {
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// The exposition text, with the gauges refreshed from `app`.
    pub fn render(&self, app: &crate::app::ControlPlane, disk_free: u64) -> String {
        let g = app.gauges();
        self.tasks.clear();
        for ((cluster, last_status), n) in &g.tasks {
            self.tasks
                .get_or_create(&ClusterTaskStatus {
                    cluster: cluster.clone(),
                    last_status: last_status.clone(),
                })
                .set(*n as i64);
        }
        self.instances.clear();
        for ((cluster, status, connected), n) in &g.instances {
            self.instances
                .get_or_create(&ClusterInstance {
                    cluster: cluster.clone(),
                    status: status.clone(),
                    connected: connected.to_string(),
                })
                .set(*n as i64);
        }
        self.sessions.set(g.sessions as i64);
        self.services.clear();
        for ((cluster, status), n) in &g.services {
            self.services
                .get_or_create(&ClusterStatus {
                    cluster: cluster.clone(),
                    status: status.clone(),
                })
                .set(*n as i64);
        }
        self.store_writable
            .set(i64::from(app.store_failure().is_none()));
        self.disk_free.set(disk_free as i64);
        self.process.refresh();
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
