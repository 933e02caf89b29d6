//! Converges the set of task engines to the control plane's desired set, and
//! cleans up after tasks.
//!
//! - A task in the set with no engine gets one (unless it already finished
//!   here: then its final report is sent again, never a second run).
//! - A task in the set that was never started here and is desired STOPPED is
//!   reported STOPPED at once.
//! - An engine whose task left the set is told to stop (the control plane
//!   never drops a task before it is STOPPED, so such a task is an orphan),
//!   and forgotten once it has finished.
//! - The janitor stops containers no engine owns and removes stopped ones
//!   after the cleanup wait; it does nothing until the first desired set
//!   arrived, so a restart never kills what it has not heard about.

use super::{Context, Outcome, TaskEngine, now_ms};
use berth_proto::agent::v1 as pb;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How long finished-task tombstones are kept.
const TOMBSTONE_RETENTION: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug)]
struct Handle {
    desired: watch::Sender<pb::DesiredStatus>,
    engine: JoinHandle<Outcome>,
}

/// Owns the task engines.
#[derive(Debug)]
pub struct Supervisor {
    ctx: Arc<Context>,
    tasks: Mutex<HashMap<String, Handle>>,
    /// Set once the first desired set has been applied.
    synced: AtomicBool,
}

impl Supervisor {
    /// A supervisor with no engines.
    pub fn new(ctx: Arc<Context>) -> Self {
        Supervisor {
            ctx,
            tasks: Mutex::new(HashMap::new()),
            synced: AtomicBool::new(false),
        }
    }

    /// Tasks with an engine here (running or finishing).
    pub fn task_count(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Handle>> {
        self.tasks.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn spawn(
        &self,
        tasks: &mut HashMap<String, Handle>,
        spec: pb::TaskSpec,
        recorded: &[(String, crate::state::ContainerRecord)],
        desired: pb::DesiredStatus,
    ) {
        let (tx, rx) = watch::channel(desired);
        let arn = spec.task_arn.clone();
        let engine = TaskEngine::new(self.ctx.clone(), spec, recorded, rx);
        let handle = tokio::spawn(engine.run());
        tasks.insert(
            arn,
            Handle {
                desired: tx,
                engine: handle,
            },
        );
    }

    /// Resumes the tasks recorded before a restart. They wait for the
    /// control plane's word before starting or stopping anything.
    pub fn recover(&self) -> Result<usize, crate::state::StateError> {
        let recovered = self.ctx.state.tasks()?;
        let n = recovered.len();
        let mut tasks = self.lock();
        for t in recovered {
            tracing::info!(task = %t.spec.task_arn, containers = t.containers.len(), "resuming a task recorded before the restart");
            self.spawn(
                &mut tasks,
                t.spec,
                &t.containers,
                pb::DesiredStatus::Unspecified,
            );
        }
        Ok(n)
    }

    /// Applies a desired set.
    pub fn apply(&self, set: pb::DesiredTasks) {
        let wanted: HashMap<String, pb::TaskSpec> = set
            .tasks
            .into_iter()
            .map(|t| (t.task_arn.clone(), t))
            .collect();
        let mut tasks = self.lock();
        for (arn, spec) in &wanted {
            let desired = pb::DesiredStatus::try_from(spec.desired_status)
                .unwrap_or(pb::DesiredStatus::Running);
            if let Some(h) = tasks.get(arn) {
                h.desired.send_if_modified(|d| {
                    let changed = *d != desired;
                    *d = desired;
                    changed
                });
                continue;
            }
            match self.ctx.state.finished(arn) {
                Ok(Some(report)) => {
                    tracing::info!(task = %arn, "task already finished here; reporting its final state again");
                    self.ctx.reporter.publish(report);
                    continue;
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::error!(task = %arn, error = %e, "cannot read the task's records; not starting it");
                    continue;
                }
            }
            if desired == pb::DesiredStatus::Stopped {
                // Stopped before it ever started here.
                self.ctx.reporter.publish(never_started(spec));
                continue;
            }
            if let Err(e) = self.ctx.state.save_task(spec) {
                tracing::error!(task = %arn, error = %e, "cannot record the task; not starting it");
                continue;
            }
            tracing::info!(task = %arn, family = %spec.family, revision = spec.revision, "starting task");
            self.spawn(&mut tasks, spec.clone(), &[], desired);
        }
        let gone: Vec<String> = tasks
            .keys()
            .filter(|arn| !wanted.contains_key(*arn))
            .cloned()
            .collect();
        for arn in gone {
            let finished = tasks.get(&arn).is_some_and(|h| h.engine.is_finished());
            if finished {
                tasks.remove(&arn);
                self.ctx.reporter.forget(&arn);
            } else if let Some(h) = tasks.get(&arn) {
                // A task told to stop leaves the set once its STOPPED is
                // recorded, while its engine may still be cleaning up: that
                // is the ordinary end, not worth a warning.
                if *h.desired.borrow() != pb::DesiredStatus::Stopped {
                    tracing::warn!(task = %arn, "the control plane no longer wants this task (it does not know it); stopping it");
                }
                h.desired.send_replace(pb::DesiredStatus::Stopped);
            }
        }
        for arn in self.ctx.reporter.task_arns() {
            if !wanted.contains_key(&arn) && !tasks.contains_key(&arn) {
                self.ctx.reporter.forget(&arn);
            }
        }
        self.synced.store(true, Ordering::Release);
    }

    fn is_running(&self, task_arn: &str) -> Option<bool> {
        self.lock().get(task_arn).map(|h| !h.engine.is_finished())
    }

    /// Other container instances with containers on this engine (a
    /// previous identity of this host, or another agent sharing the
    /// engine): the control plane decides which are gone.
    pub async fn foreign_instances(&self) -> Vec<String> {
        match self.ctx.runtime.berth_instances().await {
            Ok(found) => found
                .into_iter()
                .filter(|arn| *arn != self.ctx.instance_arn)
                .collect(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot list the engine's Berth containers");
                Vec::new()
            }
        }
    }

    /// Stops and removes the containers (and task volumes) of instances the
    /// control plane released: their tasks are already recorded STOPPED.
    pub async fn release(&self, instance_arns: Vec<String>) {
        let timeout = self.ctx.default_stop_timeout.as_secs() as u32;
        for arn in instance_arns {
            let containers = match self.ctx.runtime.list_owned(&arn).await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(container_instance = %arn, error = %e, "cannot list a released instance's containers");
                    continue;
                }
            };
            let n = containers.len();
            for c in containers {
                let id = c.id.clone().unwrap_or_default();
                if c.state.map(|s| s.to_string()).as_deref() == Some("running")
                    && let Err(e) = self.ctx.runtime.stop(&id, timeout).await
                {
                    tracing::warn!(container = %id, error = %e, "cannot stop a released instance's container");
                    continue;
                }
                if let Err(e) = self.ctx.runtime.remove(&id).await {
                    tracing::warn!(container = %id, error = %e, "cannot remove a released instance's container");
                }
            }
            if let Ok(volumes) = self.ctx.runtime.list_task_volumes(&arn).await {
                for (name, _) in volumes {
                    if let Err(e) = self.ctx.runtime.remove_volume(&name).await {
                        tracing::warn!(volume = %name, error = %e, "cannot remove a released instance's volume");
                    }
                }
            }
            if n > 0 {
                tracing::warn!(container_instance = %arn, containers = n, "stopped and removed the containers of a lost container instance (its tasks are STOPPED)");
            }
        }
    }

    /// One janitor pass: stops containers with this agent's label that no
    /// running engine owns, removes stopped ones older than `cleanup_wait`,
    /// and expires old tombstones.
    pub async fn clean(&self, cleanup_wait: Duration) {
        if !self.synced.load(Ordering::Acquire) {
            return;
        }
        let containers = match self.ctx.runtime.list_owned(&self.ctx.instance_arn).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "janitor cannot list containers");
                return;
            }
        };
        let cutoff = now_ms() - cleanup_wait.as_millis() as i64;
        // Tasks that still have a container here keep their volumes.
        let mut kept: HashSet<String> = HashSet::new();
        for c in containers {
            let id = c.id.clone().unwrap_or_default();
            let task = c
                .labels
                .as_ref()
                .and_then(|l| l.get("com.amazonaws.ecs.task-arn"))
                .cloned()
                .unwrap_or_default();
            if self.is_running(&task) == Some(true) {
                kept.insert(task);
                continue;
            }
            let state = c.state.map(|s| s.to_string()).unwrap_or_default();
            if state == "running" {
                kept.insert(task.clone());
                tracing::warn!(container = %id, task = %task, "stopping a container no task owns");
                if let Err(e) = self
                    .ctx
                    .runtime
                    .stop(&id, self.ctx.default_stop_timeout.as_secs() as u32)
                    .await
                {
                    tracing::warn!(container = %id, error = %e, "cannot stop an orphaned container");
                }
                continue;
            }
            let finished_at = match self.ctx.runtime.inspect(&id).await {
                Ok(Some(info)) => info
                    .state
                    .and_then(|s| s.finished_at)
                    .and_then(|t| parse_docker_time(&t))
                    .unwrap_or(0),
                _ => {
                    kept.insert(task);
                    continue;
                }
            };
            if finished_at <= cutoff {
                tracing::info!(container = %id, task = %task, "removing the container of a stopped task");
                if let Err(e) = self.ctx.runtime.remove(&id).await {
                    tracing::warn!(container = %id, error = %e, "cannot remove a container");
                    kept.insert(task);
                }
            } else {
                kept.insert(task);
            }
        }
        // Task-scoped volumes go with the last container of their task.
        match self
            .ctx
            .runtime
            .list_task_volumes(&self.ctx.instance_arn)
            .await
        {
            Ok(volumes) => {
                for (name, task) in volumes {
                    if kept.contains(&task) || self.is_running(&task) == Some(true) {
                        continue;
                    }
                    tracing::info!(volume = %name, task = %task, "removing the volume of a stopped task");
                    if let Err(e) = self.ctx.runtime.remove_volume(&name).await {
                        tracing::warn!(volume = %name, error = %e, "cannot remove a volume");
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "janitor cannot list volumes"),
        }
        let tombstone_cutoff = now_ms() - TOMBSTONE_RETENTION.max(cleanup_wait).as_millis() as i64;
        if let Err(e) = self.ctx.state.expire_finished(tombstone_cutoff) {
            tracing::warn!(error = %e, "cannot expire finished-task records");
        }
    }

    /// Removes images this agent pulled that no container uses and no task
    /// has used for `age`; at most 5 per pass. Images it did not pull
    /// (built or imported on the host, the pause image) are never touched.
    pub async fn clean_images(&self, age: Duration) {
        if !self.synced.load(Ordering::Acquire) {
            return;
        }
        let images = match self.ctx.state.pulled_images() {
            Ok(i) => i,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the pulled-image records");
                return;
            }
        };
        let cutoff = now_ms() - age.as_millis() as i64;
        let mut removed = 0;
        for (image, last_used) in images {
            if last_used > cutoff || removed >= 5 {
                continue;
            }
            match self.ctx.runtime.image_in_use(&image).await {
                Ok(false) => {}
                Ok(true) => {
                    tracing::debug!(image = %image, "image unused by tasks but in use by a container; kept");
                    continue;
                }
                Err(e) => {
                    tracing::warn!(image = %image, error = %e, "cannot tell whether an image is in use");
                    continue;
                }
            }
            match self.ctx.runtime.remove_image(&image).await {
                Ok(()) => {
                    tracing::info!(image = %image, "removed an image no task used for a while");
                    removed += 1;
                    if let Err(e) = self.ctx.state.forget_image(&image) {
                        tracing::warn!(image = %image, error = %e, "cannot forget a removed image");
                    }
                }
                Err(e) => tracing::warn!(image = %image, error = %e, "cannot remove an image"),
            }
        }
    }

    /// Task ARNs with a live engine (for logs and tests).
    pub fn active_tasks(&self) -> HashSet<String> {
        self.lock()
            .iter()
            .filter(|(_, h)| !h.engine.is_finished())
            .map(|(arn, _)| arn.clone())
            .collect()
    }
}

/// The report of a task stopped before any of its containers existed.
fn never_started(spec: &pb::TaskSpec) -> pb::TaskStateReport {
    pb::TaskStateReport {
        task_arn: spec.task_arn.clone(),
        last_status: pb::TaskStatus::Stopped as i32,
        containers: spec
            .containers
            .iter()
            .map(|c| pb::ContainerStateReport {
                name: c.name.clone(),
                last_status: pb::ContainerStatus::Stopped as i32,
                ..Default::default()
            })
            .collect(),
        execution_stopped_at_ms: Some(now_ms()),
        ..Default::default()
    }
}

/// Docker's RFC 3339 times (`2026-11-28T14:03:35.123456789Z`) as unix ms;
/// `None` for Docker's zero time or anything unparsable.
pub fn parse_docker_time(t: &str) -> Option<i64> {
    if t.starts_with("0001-") {
        return None;
    }
    let (date, rest) = t.split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (year, month, day) = (d.next()??, d.next()??, d.next()??);
    let time = rest.trim_end_matches('Z');
    let time = time.split(['+']).next()?;
    let mut parts = time.split(':');
    let (h, m) = (
        parts.next()?.parse::<i64>().ok()?,
        parts.next()?.parse::<i64>().ok()?,
    );
    let sec_text = parts.next()?;
    let (s, frac) = sec_text.split_once('.').unwrap_or((sec_text, "0"));
    let s: i64 = s.parse().ok()?;
    let ms: i64 = format!("{frac:0<3}")[..3].parse().ok()?;
    // Days from civil (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 86_400 + h * 3600 + m * 60 + s) * 1000) + ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_times() {
        assert_eq!(parse_docker_time("1970-01-01T00:00:01.5Z"), Some(1500));
        assert_eq!(
            parse_docker_time("2026-11-28T14:03:35.123456789Z"),
            Some(1_795_874_615_123)
        );
        assert_eq!(parse_docker_time("0001-01-01T00:00:00Z"), None);
        assert_eq!(parse_docker_time("garbage"), None);
    }
}
