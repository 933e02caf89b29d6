//! The agent's metrics, in a `prometheus-client` registry: Docker call
//! latency by call, image pulls by outcome, how long tasks take from
//! acceptance to RUNNING, the tasks this agent tracks by status, and whether
//! its session is open. Labels are Docker call names, outcomes and
//! statuses, never a task or container id.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// `call`: the Docker operation (`container create`, `image pull`, ...).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Call {
    call: &'static str,
}

/// `outcome`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    outcome: &'static str,
}

/// `last_status`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LastStatus {
    last_status: &'static str,
}

/// How an image pull ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullOutcome {
    /// Pulled.
    Success,
    /// The registry refused or could not be reached; the task used the
    /// cached image.
    FailedUsedCache,
    /// The pull failed and the task could not start.
    Failed,
}

impl PullOutcome {
    /// The metric's label value.
    fn label(self) -> &'static str {
        match self {
            PullOutcome::Success => "success",
            PullOutcome::FailedUsedCache => "failed_used_cache",
            PullOutcome::Failed => "failed",
        }
    }
}

/// Every metric of the agent.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    docker: Family<Call, Histogram>,
    pulls: Family<Outcome, Counter>,
    task_start: Histogram,
    tasks: Family<LastStatus, Gauge>,
    connected: Gauge,
    process: berth_proto::process_metrics::ProcessMetrics,
}

impl Metrics {
    /// A registry with every metric at zero.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let docker = Family::<Call, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.001, 2.0, 16))
        });
        registry.register(
            "berth_agent_docker_request_duration_seconds",
            "Time the Docker Engine took to answer, by call (failures and timeouts included)",
            docker.clone(),
        );
        let pulls = Family::<Outcome, Counter>::default();
        registry.register(
            "berth_agent_image_pulls",
            "Image pulls, by outcome (success, failed_used_cache, failed)",
            pulls.clone(),
        );
        let task_start = Histogram::new(exponential_buckets(0.05, 2.0, 14));
        registry.register(
            "berth_agent_task_start_duration_seconds",
            "Time from the agent accepting a task to the task RUNNING (pulls included)",
            task_start.clone(),
        );
        let tasks = Family::<LastStatus, Gauge>::default();
        registry.register(
            "berth_agent_tasks",
            "Tasks this agent tracks, by last status",
            tasks.clone(),
        );
        let connected = Gauge::default();
        registry.register(
            "berth_agent_connected",
            "1 while a session with the control plane is open",
            connected.clone(),
        );
        // Every outcome starts at zero, so rate() sees it before the first.
        for o in [
            PullOutcome::Success,
            PullOutcome::FailedUsedCache,
            PullOutcome::Failed,
        ] {
            let _ = pulls.get_or_create(&Outcome { outcome: o.label() });
        }
        let process =
            berth_proto::process_metrics::ProcessMetrics::register(&mut registry, crate::VERSION);
        Metrics {
            registry,
            docker,
            pulls,
            task_start,
            tasks,
            connected,
            process,
        }
    }

    /// Records one Docker call.
    pub fn docker(&self, call: &'static str, seconds: f64) {
        self.docker.get_or_create(&Call { call }).observe(seconds);
    }

    /// Counts one pull.
    pub fn pull(&self, outcome: PullOutcome) {
        let outcome = outcome.label();
        self.pulls.get_or_create(&Outcome { outcome }).inc();
    }

    /// Records a task that reached RUNNING `seconds` after it was accepted.
    pub fn task_started(&self, seconds: f64) {
        self.task_start.observe(seconds);
    }

    /// Whether the session is open.
    pub fn set_connected(&self, open: bool) {
        self.connected.set(i64::from(open));
    }

    /// The exposition text, with `tasks` (count by last status) as the
    /// task gauge.
    pub fn render(&self, tasks: &[(&'static str, usize)]) -> String {
        self.tasks.clear();
        for (status, n) in tasks {
            self.tasks
                .get_or_create(&LastStatus {
                    last_status: status,
                })
                .set(*n as i64);
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_names_and_labels() {
        let m = Metrics::new();
        m.docker("container create", 0.004);
        m.pull(PullOutcome::Success);
        m.task_started(0.3);
        m.set_connected(true);
        let out = m.render(&[("RUNNING", 2), ("STOPPED", 1)]);
        for want in [
            "berth_agent_docker_request_duration_seconds_count{call=\"container create\"} 1",
            "berth_agent_image_pulls_total{outcome=\"success\"} 1",
            "berth_agent_image_pulls_total{outcome=\"failed_used_cache\"} 0",
            "berth_agent_task_start_duration_seconds_count 1",
            "berth_agent_tasks{last_status=\"RUNNING\"} 2",
            "berth_agent_tasks{last_status=\"STOPPED\"} 1",
            "berth_agent_connected 1",
            "berth_build_info{version=",
            "process_resident_memory_bytes ",
        ] {
            assert!(out.contains(want), "missing {want}:\n{out}");
        }
        let out = m.render(&[("STOPPED", 1)]);
        assert!(
            !out.contains("last_status=\"RUNNING\""),
            "a status with no tasks left is dropped:\n{out}"
        );
    }
}
