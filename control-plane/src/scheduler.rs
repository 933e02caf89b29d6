//! The service scheduler's decision, pure: one REPLICA service's desired
//! state and its observed tasks in, what to launch and what to stop out.
//! No clocks, no I/O, no locks: `app::service` gathers the view from the
//! committed state, calls [`decide`], and commits the result; the next
//! round sees what it committed, so repeating a round never launches twice.
//!
//! The rules are ECS's rolling update:
//! - never more than `maximumPercent` of the desired count running or
//!   pending (tasks on lost hosts and tasks already stopping do not count);
//! - never fewer than `minimumHealthyPercent` of it healthy because of a
//!   stop the scheduler chose (tasks that are not healthy may always go);
//! - a task is healthy once RUNNING and, if its definition has health
//!   checks on essential containers, HEALTHY;
//! - stopped first: tasks failing their health check after the grace
//!   period, tasks on hosts lost for too long, pending tasks of old
//!   deployments; then, within the healthy budget, old deployments' tasks,
//!   tasks on DRAINING instances, and tasks beyond the desired count
//!   (scale-in: from the instance running most of the service's tasks).

use std::collections::BTreeMap;

/// One task of the service that is still meant to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskView {
    /// Task id.
    pub id: String,
    /// Whether it belongs to the PRIMARY deployment.
    pub primary: bool,
    /// Its container instance.
    pub instance: String,
    /// Last status RUNNING (else PENDING or PROVISIONING).
    pub running: bool,
    /// RUNNING and, with health checks, HEALTHY.
    pub healthy: bool,
    /// UNHEALTHY past the health-check grace period.
    pub failing: bool,
    /// Its instance is DRAINING.
    pub displaced: bool,
    /// Its instance's agent has been gone past the lost-host timeout.
    pub lost: bool,
    /// Scale-in protection is on and has not expired: never stopped for
    /// scale-in or to be replaced by a deployment.
    pub protected: bool,
}

/// Why the scheduler stops a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum StopWhy {
    /// Failed its container health checks.
    Unhealthy,
    /// Its host has been unreachable too long; replaced elsewhere.
    Lost,
    /// Belongs to a deployment being replaced.
    Replaced,
    /// Its instance is DRAINING.
    Draining,
    /// The desired count went down.
    ScaleIn,
}

impl StopWhy {
    /// Every reason, for the metrics' label values.
    pub const ALL: [StopWhy; 5] = [
        StopWhy::Unhealthy,
        StopWhy::Lost,
        StopWhy::Replaced,
        StopWhy::Draining,
        StopWhy::ScaleIn,
    ];

    /// The metrics' label value.
    pub fn label(self) -> &'static str {
        match self {
            StopWhy::Unhealthy => "unhealthy",
            StopWhy::Lost => "lost",
            StopWhy::Replaced => "replaced",
            StopWhy::Draining => "draining",
            StopWhy::ScaleIn => "scalein",
        }
    }

    /// The `stoppedReason` ECS gives.
    pub fn reason(self) -> &'static str {
        match self {
            StopWhy::Unhealthy => {
                "Task failed container health checks (stopped by the service scheduler)"
            }
            StopWhy::Lost => {
                "Task stopped because its container instance's agent was unreachable past the lost-host timeout; replaced by the service scheduler"
            }
            StopWhy::Replaced => "Deployment replaced this task (stopped by the service scheduler)",
            StopWhy::Draining => {
                "Container instance is draining (stopped by the service scheduler)"
            }
            StopWhy::ScaleIn => "Scaling activity initiated by (deployment)",
        }
    }
}

/// A service's desired state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Desired {
    /// Tasks to keep running.
    pub count: usize,
    /// `minimumHealthyPercent`.
    pub min_healthy_percent: i64,
    /// `maximumPercent`.
    pub max_percent: i64,
    /// Whether new tasks may be launched now (not throttled, deployment
    /// not failed).
    pub may_launch: bool,
}

/// What to do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decision {
    /// New tasks of the PRIMARY deployment.
    pub launch: usize,
    /// Tasks to stop, and why.
    pub stop: Vec<(String, StopWhy)>,
    /// Whether the service is converged: exactly `count` healthy PRIMARY
    /// tasks, nothing else left, nothing to do.
    pub steady: bool,
}

/// The most tasks that may run or be pending.
pub fn maximum(desired: &Desired) -> usize {
    (desired.count as i64 * desired.max_percent / 100).max(0) as usize
}

/// The fewest tasks that must stay healthy.
pub fn minimum_healthy(desired: &Desired) -> usize {
    ((desired.count as i64 * desired.min_healthy_percent + 99) / 100).max(0) as usize
}

/// Stops that need no healthy budget: tasks on lost hosts, failing their
/// health checks, on a host they must leave (`leaving`: DAEMON), or pending
/// tasks of an old deployment.
fn free_stops(tasks: &[TaskView], leaving: impl Fn(&TaskView) -> bool) -> Vec<(String, StopWhy)> {
    tasks
        .iter()
        .filter_map(|t| {
            let why = if t.lost {
                StopWhy::Lost
            } else if t.failing {
                StopWhy::Unhealthy
            } else if leaving(t) {
                StopWhy::Draining
            } else if !t.primary && !t.running && !t.protected {
                StopWhy::Replaced
            } else {
                return None;
            };
            Some((t.id.clone(), why))
        })
        .collect()
}

/// One round of the rolling-update rules over `tasks`.
pub fn decide(desired: &Desired, tasks: &[TaskView]) -> Decision {
    let mut stop = free_stops(tasks, |_| false);
    let remaining: Vec<&TaskView> = tasks
        .iter()
        .filter(|t| !stop.iter().any(|(id, _)| *id == t.id))
        .collect();
    let good_primary = remaining
        .iter()
        .filter(|t| t.primary && !t.displaced)
        .count();
    let launch = if desired.may_launch {
        desired
            .count
            .saturating_sub(good_primary)
            .min(maximum(desired).saturating_sub(remaining.len()))
    } else {
        0
    };

    // Stops that need the healthy budget, most deserving first.
    let mut per_instance: BTreeMap<&str, usize> = BTreeMap::new();
    for t in &remaining {
        *per_instance.entry(t.instance.as_str()).or_default() += 1;
    }
    let mut candidates: Vec<(&TaskView, StopWhy)> = Vec::new();
    for t in &remaining {
        if !t.primary {
            if !t.protected {
                candidates.push((t, StopWhy::Replaced));
            }
        } else if t.displaced {
            candidates.push((t, StopWhy::Draining));
        }
    }
    let excess = good_primary.saturating_sub(desired.count);
    if excess > 0 {
        let mut primaries: Vec<&TaskView> = remaining
            .iter()
            .copied()
            .filter(|t| t.primary && !t.displaced && !t.protected)
            .collect();
        // Not yet healthy first; then the fullest instance; then by id
        // for a stable choice.
        primaries.sort_by(|a, b| {
            a.healthy
                .cmp(&b.healthy)
                .then(per_instance[b.instance.as_str()].cmp(&per_instance[a.instance.as_str()]))
                .then(a.id.cmp(&b.id))
        });
        candidates.extend(
            primaries
                .into_iter()
                .take(excess)
                .map(|t| (t, StopWhy::ScaleIn)),
        );
    }
    candidates.sort_by(|(a, wa), (b, wb)| {
        a.healthy
            .cmp(&b.healthy)
            .then(wa.cmp(wb))
            .then(per_instance[b.instance.as_str()].cmp(&per_instance[a.instance.as_str()]))
            .then(a.id.cmp(&b.id))
    });
    let healthy = remaining.iter().filter(|t| t.healthy).count();
    let mut budget = healthy.saturating_sub(minimum_healthy(desired));
    for (t, why) in candidates {
        if !t.healthy {
            stop.push((t.id.clone(), why));
        } else if budget > 0 {
            budget -= 1;
            stop.push((t.id.clone(), why));
        }
    }
    let steady = launch == 0
        && stop.is_empty()
        && remaining.len() == desired.count
        && remaining
            .iter()
            .all(|t| t.primary && t.healthy && !t.displaced);
    Decision {
        launch,
        stop,
        steady,
    }
}

/// A DAEMON service's desired state: one task on each eligible host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonDesired {
    /// Instances that should run one task (ACTIVE, constraints hold).
    pub hosts: Vec<String>,
    /// `minimumHealthyPercent` (default 0 for DAEMON).
    pub min_healthy_percent: i64,
    /// `maximumPercent` (default 100: an old task stops before its
    /// replacement starts; 200 starts the replacement first).
    pub max_percent: i64,
    /// Whether new tasks may be launched now.
    pub may_launch: bool,
}

/// What to do for a DAEMON service.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DaemonDecision {
    /// Instances that get a new PRIMARY task.
    pub launch_on: Vec<String>,
    /// Tasks to stop, and why.
    pub stop: Vec<(String, StopWhy)>,
    /// Exactly one healthy PRIMARY task per host, nothing else.
    pub steady: bool,
}

/// One round of the DAEMON rules over `tasks`: tasks on hosts that are no
/// longer eligible (DRAINING, constraints no longer hold) stop; each host
/// without a PRIMARY task gets one, replacing an old deployment's task
/// stop-first (or start-first with `maximumPercent` 200), never letting
/// healthy tasks fall below `minimumHealthyPercent` of the hosts.
pub fn decide_daemon(desired: &DaemonDesired, tasks: &[TaskView]) -> DaemonDecision {
    let mut stop = free_stops(tasks, |t| !desired.hosts.contains(&t.instance));
    let stopped = |id: &str, stop: &[(String, StopWhy)]| stop.iter().any(|(s, _)| s == id);
    let healthy = tasks
        .iter()
        .filter(|t| t.healthy && !stopped(&t.id, &stop))
        .count();
    let floor =
        ((desired.hosts.len() as i64 * desired.min_healthy_percent + 99) / 100).max(0) as usize;
    let mut budget = healthy.saturating_sub(floor);
    let mut launch_on = Vec::new();
    for host in &desired.hosts {
        let here: Vec<&TaskView> = tasks
            .iter()
            .filter(|t| t.instance == *host && !stopped(&t.id, &stop))
            .collect();
        let mut primaries: Vec<&TaskView> = here.iter().copied().filter(|t| t.primary).collect();
        let olds: Vec<&TaskView> = here.iter().copied().filter(|t| !t.primary).collect();
        if primaries.len() > 1 {
            primaries.sort_by(|a, b| b.healthy.cmp(&a.healthy).then(a.id.cmp(&b.id)));
            for extra in primaries[1..].iter().filter(|t| !t.protected) {
                stop.push((extra.id.clone(), StopWhy::ScaleIn));
            }
        }
        let replaced = primaries.first().is_some_and(|p| p.healthy);
        if primaries.is_empty() && (olds.is_empty() || desired.max_percent >= 200) {
            if desired.may_launch {
                launch_on.push(host.clone());
            }
            continue;
        }
        for old in olds.into_iter().filter(|t| !t.protected) {
            if replaced || !old.healthy {
                stop.push((old.id.clone(), StopWhy::Replaced));
            } else if primaries.is_empty() && budget > 0 {
                budget -= 1;
                stop.push((old.id.clone(), StopWhy::Replaced));
            }
        }
    }
    let steady = launch_on.is_empty()
        && stop.is_empty()
        && tasks.len() == desired.hosts.len()
        && desired.hosts.iter().all(|h| {
            tasks
                .iter()
                .any(|t| t.instance == *h && t.primary && t.healthy)
        });
    DaemonDecision {
        launch_on,
        stop,
        steady,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(id: &str, primary: bool, healthy: bool) -> TaskView {
        TaskView {
            id: id.into(),
            primary,
            instance: "i1".into(),
            running: healthy,
            healthy,
            failing: false,
            displaced: false,
            lost: false,
            protected: false,
        }
    }

    fn desired(count: usize, min: i64, max: i64) -> Desired {
        Desired {
            count,
            min_healthy_percent: min,
            max_percent: max,
            may_launch: true,
        }
    }

    fn tasks(prefix: &str, n: usize, primary: bool, healthy: bool) -> Vec<TaskView> {
        (0..n)
            .map(|i| task(&format!("{prefix}{i:02}"), primary, healthy))
            .collect()
    }

    #[test]
    fn a_new_service_launches_its_desired_count() {
        let d = decide(&desired(3, 100, 200), &[]);
        assert_eq!((d.launch, d.stop.len(), d.steady), (3, 0, false));
        let d = decide(&desired(3, 100, 200), &tasks("p", 3, true, true));
        assert_eq!((d.launch, d.stop.len(), d.steady), (0, 0, true));
    }

    #[test]
    fn a_stopped_task_is_replaced_and_pending_ones_are_not_steady() {
        let d = decide(&desired(3, 100, 200), &tasks("p", 2, true, true));
        assert_eq!(d.launch, 1);
        let mut t = tasks("p", 3, true, true);
        t[2].running = false;
        t[2].healthy = false;
        let d = decide(&desired(3, 100, 200), &t);
        assert_eq!((d.launch, d.steady), (0, false));
    }

    #[test]
    fn rolling_update_100_200_starts_all_then_stops_old_once_new_are_healthy() {
        let old = tasks("o", 20, false, true);
        let d = decide(&desired(20, 100, 200), &old);
        assert_eq!((d.launch, d.stop.len()), (20, 0));
        // New ones pending: nothing old may stop yet.
        let mut all = old.clone();
        all.extend(tasks("n", 20, true, false).into_iter().map(|mut t| {
            t.running = false;
            t
        }));
        let d = decide(&desired(20, 100, 200), &all);
        assert_eq!((d.launch, d.stop.len()), (0, 0));
        // New ones healthy: every old one goes.
        let mut all = old;
        all.extend(tasks("n", 20, true, true));
        let d = decide(&desired(20, 100, 200), &all);
        assert_eq!(d.launch, 0);
        assert_eq!(d.stop.len(), 20);
        assert!(
            d.stop
                .iter()
                .all(|(id, w)| id.starts_with('o') && *w == StopWhy::Replaced)
        );
    }

    #[test]
    fn rolling_update_0_100_stops_first_then_starts() {
        let old = tasks("o", 4, false, true);
        let d = decide(&desired(4, 0, 100), &old);
        assert_eq!((d.launch, d.stop.len()), (0, 4));
        let d = decide(&desired(4, 0, 100), &[]);
        assert_eq!(d.launch, 4);
    }

    #[test]
    fn rolling_update_50_150_never_breaks_either_bound() {
        // Simulate rounds where launched tasks become healthy and stopped
        // ones vanish before the next round.
        let want = desired(10, 50, 150);
        let mut live = tasks("o", 10, false, true);
        let mut next = 0;
        for _round in 0..20 {
            let d = decide(&want, &live);
            live.retain(|t| !d.stop.iter().any(|(id, _)| *id == t.id));
            assert!(
                live.iter().filter(|t| t.healthy).count() >= minimum_healthy(&want),
                "healthy floor kept"
            );
            for _ in 0..d.launch {
                live.push(task(&format!("n{next:03}"), true, true));
                next += 1;
            }
            assert!(live.len() <= maximum(&want), "ceiling kept: {}", live.len());
            if d.steady {
                break;
            }
        }
        assert_eq!(live.len(), 10);
        assert!(live.iter().all(|t| t.primary));
    }

    #[test]
    fn scale_in_stops_from_the_fullest_instance_first() {
        let mut t = tasks("p", 4, true, true);
        t[0].instance = "a".into();
        t[1].instance = "b".into();
        t[2].instance = "b".into();
        t[3].instance = "b".into();
        let d = decide(&desired(2, 100, 200), &t);
        assert_eq!(d.stop.len(), 2);
        assert!(
            d.stop
                .iter()
                .all(|(id, w)| id != "p00" && *w == StopWhy::ScaleIn)
        );
    }

    #[test]
    fn failing_lost_and_old_pending_tasks_go_without_budget() {
        let mut t = tasks("p", 2, true, true);
        t[0].failing = true;
        t[1].lost = true;
        let mut old_pending = task("o1", false, false);
        old_pending.running = false;
        t.push(old_pending);
        let d = decide(&desired(2, 100, 100), &t);
        let mut whys: Vec<StopWhy> = d.stop.iter().map(|(_, w)| *w).collect();
        whys.sort();
        assert_eq!(
            whys,
            vec![StopWhy::Unhealthy, StopWhy::Lost, StopWhy::Replaced]
        );
        assert_eq!(d.launch, 2);
    }

    #[test]
    fn draining_moves_tasks_within_the_bounds() {
        let mut t = tasks("p", 2, true, true);
        t[0].displaced = true;
        // 100/200: a replacement first, the displaced task only once the
        // healthy floor allows.
        let d = decide(&desired(2, 100, 200), &t);
        assert_eq!((d.launch, d.stop.len()), (1, 0));
        t.push(task("p99", true, true));
        let d = decide(&desired(2, 100, 200), &t);
        assert_eq!(d.stop, vec![("p00".to_owned(), StopWhy::Draining)]);
    }

    fn on(id: &str, host: &str, primary: bool, healthy: bool) -> TaskView {
        TaskView {
            instance: host.into(),
            ..task(id, primary, healthy)
        }
    }

    fn daemon(hosts: &[&str], min: i64, max: i64) -> DaemonDesired {
        DaemonDesired {
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
            min_healthy_percent: min,
            max_percent: max,
            may_launch: true,
        }
    }

    #[test]
    fn a_daemon_runs_one_task_per_eligible_host() {
        let d = decide_daemon(
            &daemon(&["a", "b", "c"], 0, 100),
            &[on("t1", "a", true, true)],
        );
        assert_eq!(d.launch_on, vec!["b".to_owned(), "c".to_owned()]);
        assert!(d.stop.is_empty());
        let all = [
            on("t1", "a", true, true),
            on("t2", "b", true, true),
            on("t3", "c", true, true),
        ];
        assert!(decide_daemon(&daemon(&["a", "b", "c"], 0, 100), &all).steady);
        // Host c drains (no longer eligible): its task stops, nothing new.
        let d = decide_daemon(&daemon(&["a", "b"], 0, 100), &all);
        assert_eq!(d.stop, vec![("t3".to_owned(), StopWhy::Draining)]);
        assert!(d.launch_on.is_empty());
        // Two on one host (a race): one goes.
        let dup = [on("t1", "a", true, true), on("t9", "a", true, false)];
        let d = decide_daemon(&daemon(&["a"], 0, 100), &dup);
        assert_eq!(d.stop, vec![("t9".to_owned(), StopWhy::ScaleIn)]);
    }

    #[test]
    fn a_daemon_rolls_out_stop_first_by_default_and_start_first_at_200() {
        let old = [on("o1", "a", false, true), on("o2", "b", false, true)];
        let d = decide_daemon(&daemon(&["a", "b"], 0, 100), &old);
        assert!(d.launch_on.is_empty());
        assert_eq!(d.stop.len(), 2);
        // minimumHealthyPercent 50: one host at a time.
        let d = decide_daemon(&daemon(&["a", "b"], 50, 100), &old);
        assert_eq!(d.stop.len(), 1);
        // maximumPercent 200: the new task first, then the old one.
        let d = decide_daemon(&daemon(&["a", "b"], 100, 200), &old);
        assert_eq!(d.launch_on.len(), 2);
        assert!(d.stop.is_empty());
        let mixed = [on("o1", "a", false, true), on("n1", "a", true, true)];
        let d = decide_daemon(&daemon(&["a"], 100, 200), &mixed);
        assert_eq!(d.stop, vec![("o1".to_owned(), StopWhy::Replaced)]);
    }

    #[test]
    fn protected_tasks_survive_scale_in_and_deployments_until_protection_ends() {
        let protect = |mut t: TaskView| {
            t.protected = true;
            t
        };
        // Scale-in from 3 to 1: the protected task is not chosen.
        let tasks = [
            protect(task("p1", true, true)),
            task("p2", true, true),
            task("p3", true, true),
        ];
        let d = decide(&desired(1, 100, 200), &tasks);
        assert_eq!(d.stop.len(), 2);
        assert!(d.stop.iter().all(|(id, _)| id != "p1"), "{:?}", d.stop);
        // Only protected tasks left above the count: nothing stops, and the
        // service is not steady.
        let tasks = [
            protect(task("p1", true, true)),
            protect(task("p2", true, true)),
        ];
        let d = decide(&desired(1, 100, 200), &tasks);
        assert!(d.stop.is_empty() && !d.steady, "{d:?}");
        // A deployment leaves a protected old task running.
        let tasks = [
            protect(task("o1", false, true)),
            task("o2", false, true),
            task("n1", true, true),
            task("n2", true, true),
        ];
        let d = decide(&desired(2, 100, 200), &tasks);
        assert_eq!(d.stop, vec![("o2".to_owned(), StopWhy::Replaced)]);
        assert!(!d.steady);
        // A DAEMON too.
        let old = [
            protect(on("o1", "a", false, true)),
            on("n1", "a", true, true),
        ];
        let d = decide_daemon(&daemon(&["a"], 100, 200), &old);
        assert!(d.stop.is_empty(), "{d:?}");
        // Protection does not keep a failing task.
        let mut failing = protect(task("f1", true, false));
        failing.failing = true;
        let d = decide(&desired(1, 100, 200), &[failing]);
        assert_eq!(d.stop, vec![("f1".to_owned(), StopWhy::Unhealthy)]);
    }

    #[test]
    fn a_throttled_service_launches_nothing() {
        let mut want = desired(3, 100, 200);
        want.may_launch = false;
        assert_eq!(decide(&want, &[]).launch, 0);
    }
}
