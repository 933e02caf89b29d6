//! The latest observed state of every task, waiting to be sent. Reports
//! coalesce: only the newest report of a task is kept, and each carries a
//! sequence number so a session sends exactly what changed since it last
//! sent. A new session starts from nothing and sends everything.

use berth_proto::agent::v1 as pb;
use std::collections::HashMap;
use std::sync::Mutex;
use tokio::sync::Notify;

/// Task reports not yet known to be superseded.
#[derive(Debug, Default)]
pub struct Reporter {
    inner: Mutex<Inner>,
    changed: Notify,
}

#[derive(Debug, Default)]
struct Inner {
    seq: u64,
    reports: HashMap<String, (u64, pb::TaskStateReport)>,
}

impl Reporter {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a task's newest state; wakes the session when it differs.
    pub fn publish(&self, report: pb::TaskStateReport) {
        let mut inner = self.lock();
        if inner
            .reports
            .get(&report.task_arn)
            .is_some_and(|(_, r)| *r == report)
        {
            return;
        }
        inner.seq += 1;
        let seq = inner.seq;
        inner.reports.insert(report.task_arn.clone(), (seq, report));
        drop(inner);
        self.changed.notify_one();
    }

    /// Reports newer than what `sent` records; updates `sent`.
    pub fn unsent(&self, sent: &mut HashMap<String, u64>) -> Vec<pb::TaskStateReport> {
        let inner = self.lock();
        let mut out: Vec<(u64, pb::TaskStateReport)> = inner
            .reports
            .iter()
            .filter(|(arn, (seq, _))| sent.get(*arn).is_none_or(|s| s < seq))
            .map(|(_, (seq, r))| (*seq, r.clone()))
            .collect();
        out.sort_by_key(|(seq, _)| *seq);
        for (seq, r) in &out {
            sent.insert(r.task_arn.clone(), *seq);
        }
        out.into_iter().map(|(_, r)| r).collect()
    }

    /// Drops a task's report (the control plane has its final state).
    pub fn forget(&self, task_arn: &str) {
        self.lock().reports.remove(task_arn);
    }

    /// How many tasks have each last status (ECS's names), for metrics.
    pub fn status_counts(&self) -> Vec<(&'static str, usize)> {
        let mut counts = std::collections::BTreeMap::<&'static str, usize>::new();
        for (_, r) in self.lock().reports.values() {
            let status = match pb::TaskStatus::try_from(r.last_status) {
                Ok(pb::TaskStatus::Running) => "RUNNING",
                Ok(pb::TaskStatus::Stopping) => "STOPPING",
                Ok(pb::TaskStatus::Stopped) => "STOPPED",
                _ => "PENDING",
            };
            *counts.entry(status).or_default() += 1;
        }
        counts.into_iter().collect()
    }

    /// Tasks with a report.
    pub fn task_arns(&self) -> Vec<String> {
        self.lock().reports.keys().cloned().collect()
    }

    /// Resolves after the next publish (or at once if one happened since the
    /// last call).
    pub async fn changed(&self) {
        self.changed.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(arn: &str, status: pb::TaskStatus) -> pb::TaskStateReport {
        pb::TaskStateReport {
            task_arn: arn.into(),
            last_status: status as i32,
            ..Default::default()
        }
    }

    #[test]
    fn sends_only_what_changed() {
        let r = Reporter::default();
        let mut sent = HashMap::new();
        r.publish(report("a", pb::TaskStatus::Pending));
        r.publish(report("b", pb::TaskStatus::Pending));
        assert_eq!(r.unsent(&mut sent).len(), 2);
        assert!(r.unsent(&mut sent).is_empty());
        r.publish(report("a", pb::TaskStatus::Pending));
        assert!(
            r.unsent(&mut sent).is_empty(),
            "an identical report is not news"
        );
        r.publish(report("a", pb::TaskStatus::Running));
        let again = r.unsent(&mut sent);
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].last_status, pb::TaskStatus::Running as i32);
        let mut fresh = HashMap::new();
        assert_eq!(
            r.unsent(&mut fresh).len(),
            2,
            "a new session gets everything"
        );
        assert_eq!(r.status_counts(), vec![("PENDING", 1), ("RUNNING", 1)]);
        r.forget("a");
        assert_eq!(r.task_arns(), vec!["b".to_owned()]);
    }
}
