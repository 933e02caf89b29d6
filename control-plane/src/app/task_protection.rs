//! UpdateTaskProtection and GetTaskProtection: scale-in protection of
//! tasks. The service scheduler never stops a protected task for scale-in
//! or to replace it in a deployment until the protection expires (a
//! deployment waits for it); failing health checks, lost hosts and
//! draining instances still stop it, as in ECS.

use super::state::TaskRecord;
use super::{ControlPlane, Result, Staged, invalid};
use crate::model::task::TaskStatus;
use crate::model::task_protection::{
    GetTaskProtectionRequest, ProtectedTask, TaskProtectionResponse, UpdateTaskProtectionRequest,
};
use crate::model::{Failure, Timestamp};
use crate::validate;

/// Default protection when `expiresInMinutes` is absent.
const DEFAULT_MINUTES: i64 = 120;
/// The longest protection ECS allows (48 hours).
const MAX_MINUTES: i64 = 2880;

fn view(cp: &ControlPlane, t: &TaskRecord, now: Timestamp) -> ProtectedTask {
    let on = t
        .protection_expires_at
        .filter(|e| e.as_millis() > now.as_millis());
    ProtectedTask {
        task_arn: cp.scope().task(&t.cluster, &t.id),
        protection_enabled: on.is_some(),
        expiration_date: on,
    }
}

fn task_list(tasks: &[String], max: usize) -> Result<()> {
    if tasks.is_empty() || tasks.len() > max {
        return Err(invalid(format!(
            "tasks must name 1 to {max} tasks (got {}).",
            tasks.len()
        )));
    }
    Ok(())
}

impl ControlPlane {
    /// UpdateTaskProtection: protection on for `expiresInMinutes` (default
    /// 120, at most 2880), or off.
    pub async fn update_task_protection(
        &self,
        req: UpdateTaskProtectionRequest,
    ) -> Result<TaskProtectionResponse> {
        let cluster_ref = validate::required_str(req.cluster.as_deref(), "cluster")?;
        let tasks = validate::required(req.tasks.as_deref(), "tasks")?;
        task_list(tasks, 10)?;
        let enabled = *validate::required(req.protection_enabled.as_ref(), "protectionEnabled")?;
        let minutes = req.expires_in_minutes.unwrap_or(DEFAULT_MINUTES);
        if !(1..=MAX_MINUTES).contains(&minutes) {
            return Err(invalid(format!(
                "expiresInMinutes must be between 1 and {MAX_MINUTES} (got {minutes})."
            )));
        }
        let now = Timestamp::now();
        let until = enabled.then(|| Timestamp::from_millis(now.as_millis() + minutes * 60_000));
        let (wakeups, response) = {
            let mut state = self.lock();
            let cluster = self.cluster(&state, cluster_ref)?.name.clone();
            let mut staged = Staged::default();
            let mut protected_tasks = Vec::new();
            let mut failures = Vec::new();
            for reference in tasks {
                let Some(t) = self.find_task(&state, &cluster, reference)? else {
                    failures.push(Failure::new(
                        self.scope()
                            .task(&cluster, reference.rsplit('/').next().unwrap_or(reference)),
                        "MISSING",
                        None,
                    ));
                    continue;
                };
                if t.task.last_status == TaskStatus::Stopped
                    || t.task.desired_status == TaskStatus::Stopped
                {
                    failures.push(Failure::new(
                        self.scope().task(&cluster, &t.id),
                        "TASK_NOT_VALID",
                        Some(
                            "The task is stopped or stopping: only running tasks can be protected."
                                .into(),
                        ),
                    ));
                    continue;
                }
                let mut r = t.clone().into_owned();
                r.protection_expires_at = until;
                protected_tasks.push(view(self, &r, now));
                if r != *t {
                    staged.put(r);
                }
            }
            let wakeups = self.commit(&mut state, staged)?;
            (
                wakeups,
                TaskProtectionResponse {
                    protected_tasks,
                    failures,
                },
            )
        };
        self.durable(wakeups).await?;
        Ok(response)
    }

    /// GetTaskProtection: the named tasks, or every protected task of the
    /// cluster.
    pub fn get_task_protection(
        &self,
        req: GetTaskProtectionRequest,
    ) -> Result<TaskProtectionResponse> {
        let cluster_ref = validate::required_str(req.cluster.as_deref(), "cluster")?;
        let now = Timestamp::now();
        let state = self.lock();
        let cluster = self.cluster(&state, cluster_ref)?;
        let mut protected_tasks = Vec::new();
        let mut failures = Vec::new();
        match req.tasks.as_deref() {
            Some(tasks) => {
                task_list(tasks, 100)?;
                for reference in tasks {
                    match self.find_task(&state, &cluster.name, reference)? {
                        Some(t) => protected_tasks.push(view(self, &t, now)),
                        None => failures.push(Failure::new(
                            self.scope().task(
                                &cluster.name,
                                reference.rsplit('/').next().unwrap_or(reference),
                            ),
                            "MISSING",
                            None,
                        )),
                    }
                }
            }
            None => {
                for id in &cluster.task_ids {
                    if let Some(t) = state.tasks.get(id) {
                        let v = view(self, t, now);
                        if v.protection_enabled {
                            protected_tasks.push(v);
                        }
                    }
                }
            }
        }
        Ok(TaskProtectionResponse {
            protected_tasks,
            failures,
        })
    }
}
