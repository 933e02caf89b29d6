//! Pure, synchronous placement: which instance gets the next task, or why no
//! instance can. No async, no clocks, no I/O: `service` builds the candidates
//! from its state under the cluster's lock and applies the result.
//!
//! Pipeline (ECS's):
//! 1. feasibility: the instance is ACTIVE, its agent connected, of the
//!    requested launch type and capacity provider, with the attributes the
//!    task requires, and has the CPU, memory, static host ports and GPUs the
//!    task needs;
//! 2. constraints (binding): `distinctInstance` (no task of the same group on
//!    it), `memberOf` (a cluster-query-language expression holds);
//! 3. strategies (best effort), in order, each narrowing what the previous
//!    left: `random` (seeded), `spread` over instances or an attribute's
//!    values (fewest tasks of the group, counted over every ACTIVE instance of
//!    the cluster), `binpack` on CPU or memory (least remaining);
//! 4. ties: fewest tasks, then the lowest instance id. Candidates come in
//!    instance-id order, so the lowest id is the first index: no string
//!    comparisons in the hot loop.
//!
//! Without strategies the default is `spread` over instances: a task group
//! spreads across the cluster. Every rejected instance keeps its reason, and
//! [`explain`] turns them into an ECS failure whose detail accounts for every
//! instance considered.

pub mod cql;

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// A placement constraint, validated.
#[derive(Debug, Clone, PartialEq)]
pub enum Constraint {
    /// Each task of the group on a different instance.
    DistinctInstance,
    /// Only instances for which the expression holds.
    MemberOf {
        /// Parsed expression.
        expr: cql::Expr,
        /// As the caller wrote it, for failure details.
        text: String,
    },
}

/// What `spread` balances over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpreadField {
    /// `instanceId` / `host`.
    Instance,
    /// `attribute:<name>`.
    Attribute(String),
}

/// What `binpack` packs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinpackField {
    /// CPU units.
    Cpu,
    /// MiB.
    Memory,
}

/// A placement strategy rule, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Strategy {
    /// Uniformly among what is left (seeded).
    Random,
    /// Fewest tasks of the group per value.
    Spread(SpreadField),
    /// Least remaining.
    Binpack(BinpackField),
}

/// What one task needs from an instance.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Demand {
    /// CPU units.
    pub cpu: i64,
    /// MiB.
    pub memory: i64,
    /// Static TCP host ports.
    pub tcp_ports: Vec<u16>,
    /// Static UDP host ports.
    pub udp_ports: Vec<u16>,
    /// GPUs.
    pub gpus: usize,
    /// `EC2` or `EXTERNAL` when the caller asked for one.
    pub launch_type: Option<String>,
    /// The capacity provider the task must go through, if any.
    pub capacity_provider: Option<String>,
    /// Attributes (by name) the instance must have.
    pub required_attributes: Vec<String>,
    /// `ecs.cpu-architecture` the task definition requires.
    pub cpu_architecture: Option<String>,
}

/// An instance as placement sees it; updated in place as tasks are placed.
/// It borrows from the control plane's state, so building one per instance
/// for every RunTask allocates only what a placement changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate<'a> {
    /// Container-instance id. Candidates are passed in id order, which makes
    /// the index the final tie-breaker.
    pub id: Cow<'a, str>,
    /// Its ARN, for failures.
    pub arn: Cow<'a, str>,
    /// `ACTIVE` instances only take tasks.
    pub active: bool,
    /// Whether the agent's session is open.
    pub connected: bool,
    /// `EC2` or `EXTERNAL`.
    pub launch_type: &'a str,
    /// The capacity provider (agent pool) it belongs to.
    pub capacity_provider: Option<&'a str>,
    /// Unreserved CPU units.
    pub free_cpu: i64,
    /// Unreserved MiB.
    pub free_memory: i64,
    /// TCP host ports in use (reserved by the agent or held by tasks).
    pub used_tcp: Cow<'a, BTreeSet<u16>>,
    /// UDP host ports in use.
    pub used_udp: Cow<'a, BTreeSet<u16>>,
    /// GPU ids not assigned to a task.
    pub free_gpus: Vec<&'a str>,
    /// (name, value) of every attribute (shared with the instance's state).
    pub attributes: std::sync::Arc<Vec<(String, Option<String>)>>,
    /// Agent version, for `agentVersion` expressions.
    pub agent_version: Option<&'a str>,
    /// Host id, for `ec2InstanceId` expressions.
    pub ec2_instance_id: &'a str,
    /// Registration time, unix ms.
    pub registered_at_ms: i64,
    /// Tasks with desired status RUNNING.
    pub running_tasks_count: i64,
    /// Non-STOPPED tasks of the task group being placed.
    pub group_tasks: usize,
    /// All non-STOPPED tasks.
    pub tasks: usize,
    /// Groups of its non-STOPPED tasks (filled only when an expression
    /// needs `task:group`).
    pub task_groups: BTreeSet<Cow<'a, str>>,
}

impl Candidate<'_> {
    fn attribute(&self, name: &str) -> Option<Option<&str>> {
        self.attributes
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_deref())
    }

    /// What the cluster query language sees of this instance.
    pub fn facts(&self) -> cql::Facts<'_> {
        cql::Facts {
            attributes: self
                .attributes
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_deref()))
                .collect(),
            agent_connected: self.connected,
            agent_version: self.agent_version,
            ec2_instance_id: self.ec2_instance_id,
            registered_at_ms: self.registered_at_ms,
            running_tasks_count: self.running_tasks_count,
            task_groups: self.task_groups.iter().map(|g| &**g).collect(),
        }
    }
}

/// Why an instance cannot take the task, in pipeline order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// DRAINING or otherwise not ACTIVE.
    NotActive,
    /// Agent disconnected (ECS reason `AGENT`).
    Agent,
    /// The instance is of another launch type.
    LaunchType(String),
    /// The instance is not in the requested capacity provider.
    CapacityProvider,
    /// The instance lacks a required attribute.
    Attribute(String),
    /// Not enough CPU (`RESOURCE:CPU`).
    Cpu {
        /// Units available.
        free: i64,
    },
    /// Not enough memory (`RESOURCE:MEMORY`).
    Memory {
        /// MiB available.
        free: i64,
    },
    /// A static TCP port is taken (`RESOURCE:PORTS`).
    TcpPort(u16),
    /// A static UDP port is taken (`RESOURCE:PORTS_UDP`).
    UdpPort(u16),
    /// Not enough unassigned GPUs (`RESOURCE:GPU`).
    Gpu {
        /// GPUs available.
        free: usize,
    },
    /// A task of the group already runs there.
    DistinctInstance,
    /// A `memberOf` expression does not hold (its text).
    MemberOf(String),
}

/// The failure reason when no instance of the cluster is in the capacity
/// provider a task is placed through (ECS's words for an empty provider).
pub const EMPTY_PROVIDER: &str = "EMPTY CAPACITY PROVIDER";

impl Rejection {
    /// Every `failures[].reason` placement can give (the metrics start
    /// each at zero).
    pub const REASONS: [&'static str; 10] = [
        EMPTY_PROVIDER,
        "AGENT",
        "ATTRIBUTE",
        "RESOURCE:CPU",
        "RESOURCE:MEMORY",
        "RESOURCE:PORTS",
        "RESOURCE:PORTS_UDP",
        "RESOURCE:GPU",
        "DistinctInstance placement constraint unsatisfied",
        "MemberOf placement constraint unsatisfied",
    ];

    /// The ECS `failures[].reason`.
    pub fn reason(&self) -> &'static str {
        match self {
            Rejection::NotActive
            | Rejection::LaunchType(_)
            | Rejection::CapacityProvider
            | Rejection::Attribute(_) => "ATTRIBUTE",
            Rejection::Agent => "AGENT",
            Rejection::Cpu { .. } => "RESOURCE:CPU",
            Rejection::Memory { .. } => "RESOURCE:MEMORY",
            Rejection::TcpPort(_) => "RESOURCE:PORTS",
            Rejection::UdpPort(_) => "RESOURCE:PORTS_UDP",
            Rejection::Gpu { .. } => "RESOURCE:GPU",
            Rejection::DistinctInstance => "DistinctInstance placement constraint unsatisfied",
            Rejection::MemberOf(_) => "MemberOf placement constraint unsatisfied",
        }
    }

    /// Whether the instance could take the task with more room, or once
    /// its agent is back (as opposed to never, as things are).
    pub fn is_about_room_or_agent(&self) -> bool {
        matches!(
            self,
            Rejection::Agent
                | Rejection::Cpu { .. }
                | Rejection::Memory { .. }
                | Rejection::TcpPort(_)
                | Rejection::UdpPort(_)
                | Rejection::Gpu { .. }
                | Rejection::DistinctInstance
        )
    }

    fn is_constraint(&self) -> bool {
        matches!(self, Rejection::DistinctInstance | Rejection::MemberOf(_))
    }
}

/// What is being placed: the demand, the task group, the rules.
#[derive(Debug, Clone, Copy)]
pub struct Plan<'a> {
    /// Per task.
    pub demand: &'a Demand,
    /// The task group (default `family:<family>`).
    pub group: &'a str,
    /// Binding constraints.
    pub constraints: &'a [Constraint],
    /// Strategy rules, in order; empty means the default (spread over instances).
    pub strategies: &'a [Strategy],
}

/// A small seeded generator (xorshift64*): the same seed gives the same
/// `random` choices.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed (0 is replaced: xorshift needs a non-zero state).
    pub fn new(seed: u64) -> Self {
        Rng(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }

    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (`0` when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    /// One of `items` (which must not be empty).
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// One capacity provider of a strategy, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderShare {
    /// Provider name.
    pub name: String,
    /// Relative share.
    pub weight: u32,
    /// Tasks placed here first.
    pub base: u32,
}

/// Which provider each of `count` tasks goes through: the provider with a
/// base gets up to `base` tasks first; the rest follow the weights (each
/// next task goes to the provider furthest below its weighted share; ties by
/// strategy order). No shares: no provider for any task.
pub fn split_by_strategy(count: usize, shares: &[ProviderShare]) -> Vec<Option<String>> {
    if shares.is_empty() {
        return vec![None; count];
    }
    let mut out = Vec::with_capacity(count);
    let mut weighted = vec![0u64; shares.len()];
    if let Some(b) = shares.iter().find(|s| s.base > 0) {
        out.extend(std::iter::repeat_n(
            Some(b.name.clone()),
            (b.base as usize).min(count),
        ));
    }
    let total: u64 = shares.iter().map(|s| u64::from(s.weight)).sum();
    while out.len() < count {
        if total == 0 {
            // Only a base was given: everything beyond it goes there too.
            let b = shares.iter().find(|s| s.base > 0).unwrap_or(&shares[0]);
            out.push(Some(b.name.clone()));
            continue;
        }
        // Smallest (assigned + 1) / weight, compared without division.
        let next = (0..shares.len())
            .filter(|i| shares[*i].weight > 0)
            .min_by(|a, b| {
                let lhs = (weighted[*a] + 1) * u64::from(shares[*b].weight);
                let rhs = (weighted[*b] + 1) * u64::from(shares[*a].weight);
                lhs.cmp(&rhs).then(a.cmp(b))
            })
            .unwrap_or(0);
        weighted[next] += 1;
        out.push(Some(shares[next].name.clone()));
    }
    out
}

/// Checks one instance against the demand and constraints.
pub fn check(plan: &Plan<'_>, c: &Candidate<'_>) -> Result<(), Rejection> {
    let d = plan.demand;
    if !c.active {
        return Err(Rejection::NotActive);
    }
    if !c.connected {
        return Err(Rejection::Agent);
    }
    if let Some(lt) = &d.launch_type
        && lt != c.launch_type
    {
        return Err(Rejection::LaunchType(c.launch_type.to_owned()));
    }
    if let Some(p) = &d.capacity_provider
        && c.capacity_provider != Some(p.as_str())
    {
        return Err(Rejection::CapacityProvider);
    }
    if let Some(missing) = d
        .required_attributes
        .iter()
        .find(|a| c.attribute(a).is_none())
    {
        return Err(Rejection::Attribute(missing.clone()));
    }
    if let Some(arch) = &d.cpu_architecture
        && c.attribute("ecs.cpu-architecture").flatten() != Some(arch.as_str())
    {
        return Err(Rejection::Attribute(format!("ecs.cpu-architecture={arch}")));
    }
    if d.cpu > c.free_cpu {
        return Err(Rejection::Cpu { free: c.free_cpu });
    }
    if d.memory > c.free_memory {
        return Err(Rejection::Memory {
            free: c.free_memory,
        });
    }
    if let Some(p) = d.tcp_ports.iter().find(|p| c.used_tcp.contains(p)) {
        return Err(Rejection::TcpPort(*p));
    }
    if let Some(p) = d.udp_ports.iter().find(|p| c.used_udp.contains(p)) {
        return Err(Rejection::UdpPort(*p));
    }
    if d.gpus > c.free_gpus.len() {
        return Err(Rejection::Gpu {
            free: c.free_gpus.len(),
        });
    }
    for constraint in plan.constraints {
        match constraint {
            Constraint::DistinctInstance if c.group_tasks > 0 => {
                return Err(Rejection::DistinctInstance);
            }
            Constraint::MemberOf { expr, text } if !expr.eval(&c.facts()) => {
                return Err(Rejection::MemberOf(text.clone()));
            }
            _ => {}
        }
    }
    Ok(())
}

/// The value an attribute spread balances over; instances without the
/// attribute share the "none" bucket.
fn spread_value<'c>(name: &str, c: &'c Candidate<'_>) -> Option<&'c str> {
    c.attribute(name).map(Option::unwrap_or_default)
}

/// Chooses an instance for one task: the index into `candidates`, or every
/// candidate's rejection.
pub fn place(
    plan: &Plan<'_>,
    candidates: &[Candidate<'_>],
    rng: &mut Rng,
) -> Result<usize, Vec<(usize, Rejection)>> {
    place_checked(plan, candidates, &check_all(plan, candidates), rng)
}

/// [`check`] for every candidate, in order.
pub fn check_all(plan: &Plan<'_>, candidates: &[Candidate<'_>]) -> Vec<Result<(), Rejection>> {
    candidates.iter().map(|c| check(plan, c)).collect()
}

/// [`place`] with the checks already made. Placing several tasks of one plan,
/// only the candidate that took the last task changes, so a caller re-checks
/// just that one (`checks[i] = check(plan, &candidates[i])` after
/// [`reserve`]) instead of every instance for every task.
pub fn place_checked(
    plan: &Plan<'_>,
    candidates: &[Candidate<'_>],
    checks: &[Result<(), Rejection>],
    rng: &mut Rng,
) -> Result<usize, Vec<(usize, Rejection)>> {
    debug_assert_eq!(candidates.len(), checks.len());
    let mut set: Vec<usize> = Vec::with_capacity(candidates.len());
    for (i, r) in checks.iter().enumerate() {
        if r.is_ok() {
            set.push(i);
        }
    }
    if set.is_empty() {
        return Err(checks
            .iter()
            .enumerate()
            .filter_map(|(i, r)| r.clone().err().map(|r| (i, r)))
            .collect());
    }
    let default = [Strategy::Spread(SpreadField::Instance)];
    let strategies = if plan.strategies.is_empty() {
        &default[..]
    } else {
        plan.strategies
    };
    for strategy in strategies {
        if set.len() == 1 {
            break;
        }
        match strategy {
            Strategy::Random => {
                let pick = set[rng.below(set.len())];
                return Ok(pick);
            }
            Strategy::Spread(SpreadField::Instance) => {
                // Each instance is its own value: its tasks of the group.
                let load = |i: &usize| candidates[*i].group_tasks;
                let least = set.iter().map(load).min().unwrap_or(0);
                set.retain(|i| load(i) == least);
            }
            Strategy::Spread(SpreadField::Attribute(name)) => {
                // Tasks of the group per value, over every ACTIVE instance.
                let mut counts: HashMap<Option<&str>, usize> = HashMap::new();
                for c in candidates.iter().filter(|c| c.active) {
                    *counts.entry(spread_value(name, c)).or_default() += c.group_tasks;
                }
                let load = |i: &usize| {
                    counts
                        .get(&spread_value(name, &candidates[*i]))
                        .copied()
                        .unwrap_or(0)
                };
                let least = set.iter().map(load).min().unwrap_or(0);
                set.retain(|i| load(i) == least);
            }
            Strategy::Binpack(field) => {
                let free = |i: &usize| match field {
                    BinpackField::Cpu => candidates[*i].free_cpu,
                    BinpackField::Memory => candidates[*i].free_memory,
                };
                let least = set.iter().map(free).min().unwrap_or(0);
                set.retain(|i| free(i) == least);
            }
        }
    }
    debug_assert!(
        candidates.windows(2).all(|w| w[0].id <= w[1].id),
        "candidates must be in instance-id order"
    );
    set.into_iter()
        .min_by_key(|i| (candidates[*i].tasks, *i))
        .ok_or_else(Vec::new)
}

/// Reserves one task's demand on the chosen candidate, so the next task of
/// the same call sees what is left. Returns the GPU ids assigned.
pub fn reserve(plan: &Plan<'_>, c: &mut Candidate<'_>) -> Vec<String> {
    let d = plan.demand;
    c.free_cpu -= d.cpu;
    c.free_memory -= d.memory;
    if !d.tcp_ports.is_empty() {
        c.used_tcp.to_mut().extend(d.tcp_ports.iter().copied());
    }
    if !d.udp_ports.is_empty() {
        c.used_udp.to_mut().extend(d.udp_ports.iter().copied());
    }
    c.group_tasks += 1;
    c.tasks += 1;
    c.running_tasks_count += 1;
    if !c.task_groups.contains(plan.group) {
        c.task_groups.insert(Cow::Owned(plan.group.to_owned()));
    }
    c.free_gpus
        .drain(..d.gpus.min(c.free_gpus.len()))
        .map(str::to_owned)
        .collect()
}

/// The ECS failure for a task no instance could take: (arn, reason, detail).
/// The reason is the most common one; constraint reasons name the cluster,
/// others an instance they blocked. The detail accounts for every instance.
pub fn explain(
    plan: &Plan<'_>,
    candidates: &[Candidate<'_>],
    rejections: &[(usize, Rejection)],
    cluster_arn: &str,
) -> (String, String, String) {
    let mut by_reason: BTreeMap<&'static str, Vec<usize>> = BTreeMap::new();
    for (i, r) in rejections {
        by_reason.entry(r.reason()).or_default().push(*i);
    }
    let (reason, first) = by_reason
        .iter()
        .max_by_key(|(reason, idx)| (idx.len(), std::cmp::Reverse(**reason)))
        .map(|(r, idx)| (*r, idx.first().copied()))
        .unwrap_or(("RESOURCE:CPU", None));
    // No instance of the cluster is in the provider at all (a pool whose
    // agents are gone, or FARGATE, which Berth has no capacity for).
    let empty_provider = plan.demand.capacity_provider.is_some()
        && !rejections.is_empty()
        && rejections
            .iter()
            .all(|(_, r)| matches!(r, Rejection::CapacityProvider));
    let (reason, first) = if empty_provider {
        (EMPTY_PROVIDER, None)
    } else {
        (reason, first)
    };
    let constraint = rejections
        .iter()
        .any(|(_, r)| r.reason() == reason && r.is_constraint());
    let arn = match first {
        Some(i) if !constraint => candidates[i].arn.to_string(),
        _ => cluster_arn.to_owned(),
    };

    let d = plan.demand;
    let count =
        |pred: &dyn Fn(&Rejection) -> bool| rejections.iter().filter(|(_, r)| pred(r)).count();
    let mut parts = Vec::new();
    let mut push = |n: usize, text: String| {
        if n > 0 {
            parts.push(format!("{n} {text}"));
        }
    };
    push(
        count(&|r| matches!(r, Rejection::NotActive)),
        "not ACTIVE (draining)".into(),
    );
    push(
        count(&|r| matches!(r, Rejection::Agent)),
        "with the agent disconnected or its Docker Engine not answering".into(),
    );
    push(
        count(&|r| matches!(r, Rejection::LaunchType(_))),
        format!(
            "not of launch type {}",
            d.launch_type.as_deref().unwrap_or_default()
        ),
    );
    push(
        count(&|r| matches!(r, Rejection::CapacityProvider)),
        format!(
            "not in capacity provider {}",
            d.capacity_provider.as_deref().unwrap_or_default()
        ),
    );
    let missing: BTreeSet<&str> = rejections
        .iter()
        .filter_map(|(_, r)| match r {
            Rejection::Attribute(a) => Some(a.as_str()),
            _ => None,
        })
        .collect();
    push(
        count(&|r| matches!(r, Rejection::Attribute(_))),
        format!(
            "without the required attribute {}",
            missing.into_iter().collect::<Vec<_>>().join(", ")
        ),
    );
    let most =
        |f: &dyn Fn(&Rejection) -> Option<i64>| rejections.iter().filter_map(|(_, r)| f(r)).max();
    let cpu = count(&|r| matches!(r, Rejection::Cpu { .. }));
    if let Some(m) = most(&|r| {
        if let Rejection::Cpu { free } = r {
            Some(*free)
        } else {
            None
        }
    }) {
        push(
            cpu,
            format!("without {} free CPU units (most free: {m})", d.cpu),
        );
    }
    let mem = count(&|r| matches!(r, Rejection::Memory { .. }));
    if let Some(m) = most(&|r| {
        if let Rejection::Memory { free } = r {
            Some(*free)
        } else {
            None
        }
    }) {
        push(
            mem,
            format!("without {} MiB free memory (most free: {m} MiB)", d.memory),
        );
    }
    push(
        count(&|r| matches!(r, Rejection::TcpPort(_))),
        "with a requested TCP host port in use".into(),
    );
    push(
        count(&|r| matches!(r, Rejection::UdpPort(_))),
        "with a requested UDP host port in use".into(),
    );
    let gpu = count(&|r| matches!(r, Rejection::Gpu { .. }));
    if let Some(m) = most(&|r| {
        if let Rejection::Gpu { free } = r {
            Some(*free as i64)
        } else {
            None
        }
    }) {
        push(
            gpu,
            format!("without {} free GPUs (most free: {m})", d.gpus),
        );
    }
    push(
        count(&|r| matches!(r, Rejection::DistinctInstance)),
        format!(
            "already running a task of group {} (distinctInstance)",
            plan.group
        ),
    );
    let exprs: BTreeSet<&str> = rejections
        .iter()
        .filter_map(|(_, r)| match r {
            Rejection::MemberOf(t) => Some(t.as_str()),
            _ => None,
        })
        .collect();
    push(
        count(&|r| matches!(r, Rejection::MemberOf(_))),
        format!(
            "outside memberOf ({})",
            exprs.into_iter().collect::<Vec<_>>().join("; ")
        ),
    );
    let n = candidates.len();
    let detail = if n == 0 {
        "0 instances to consider".to_owned()
    } else {
        format!(
            "{n} instance{}: {}",
            if n == 1 { "" } else { "s" },
            parts.join(", ")
        )
    };
    (arn, reason.to_owned(), detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(id: &str, cpu: i64, mem: i64) -> Candidate<'static> {
        // Test candidates outlive the names they are built from.
        let id: &'static str = Box::leak(id.to_owned().into_boxed_str());
        Candidate {
            id: id.into(),
            arn: format!("arn:{id}").into(),
            active: true,
            connected: true,
            launch_type: "EXTERNAL",
            capacity_provider: None,
            free_cpu: cpu,
            free_memory: mem,
            used_tcp: Cow::Owned(BTreeSet::from([22])),
            used_udp: Cow::Owned(BTreeSet::new()),
            free_gpus: Vec::new(),
            attributes: std::sync::Arc::new(vec![(
                "ecs.cpu-architecture".into(),
                Some("x86_64".into()),
            )]),
            agent_version: Some("0.1.0"),
            ec2_instance_id: id,
            registered_at_ms: 0,
            running_tasks_count: 0,
            group_tasks: 0,
            tasks: 0,
            task_groups: BTreeSet::new(),
        }
    }

    fn with_attr<'a>(mut c: Candidate<'a>, name: &str, value: &str) -> Candidate<'a> {
        std::sync::Arc::make_mut(&mut c.attributes).push((name.into(), Some(value.into())));
        c
    }

    fn demand(cpu: i64, memory: i64) -> Demand {
        Demand {
            cpu,
            memory,
            ..Default::default()
        }
    }

    fn plan<'a>(
        d: &'a Demand,
        constraints: &'a [Constraint],
        strategies: &'a [Strategy],
    ) -> Plan<'a> {
        Plan {
            demand: d,
            group: "family:web",
            constraints,
            strategies,
        }
    }

    /// Places `n` tasks, returning the chosen ids in order.
    fn place_n(p: &Plan<'_>, cs: &mut [Candidate<'_>], n: usize, seed: u64) -> Vec<String> {
        let mut rng = Rng::new(seed);
        (0..n)
            .map(|_| {
                let i = place(p, cs, &mut rng).expect("placed");
                reserve(p, &mut cs[i]);
                cs[i].id.to_string()
            })
            .collect()
    }

    #[test]
    fn rechecking_only_the_chosen_candidate_places_as_checking_all() {
        let mut rng = Rng::new(7);
        for round in 0..200 {
            let n = 1 + rng.below(12);
            let mut cs: Vec<Candidate<'static>> = (0..n)
                .map(|i| {
                    let c = candidate(
                        &format!("i{i:02}"),
                        256 * (1 + rng.below(4) as i64),
                        256 * (1 + rng.below(4) as i64),
                    );
                    with_attr(c, "zone", ["a", "b", "c"][rng.below(3)])
                })
                .collect();
            cs.iter_mut().for_each(|c| c.tasks = rng.below(3));
            let strategies = [
                vec![],
                vec![Strategy::Binpack(BinpackField::Memory)],
                vec![
                    Strategy::Spread(SpreadField::Attribute("zone".into())),
                    Strategy::Binpack(BinpackField::Cpu),
                ],
                vec![Strategy::Random],
            ];
            let constraints = [vec![], vec![Constraint::DistinctInstance]];
            let s = &strategies[round % strategies.len()];
            let k = &constraints[round % 2];
            let d = demand(128 * (1 + rng.below(3) as i64), 256);
            let p = plan(&d, k, s);
            let (mut fresh, mut incremental) = (cs.clone(), cs);
            let (mut r1, mut r2) = (Rng::new(round as u64), Rng::new(round as u64));
            let mut checks = check_all(&p, &incremental);
            for _ in 0..8 {
                let a = place(&p, &fresh, &mut r1);
                let b = place_checked(&p, &incremental, &checks, &mut r2);
                assert_eq!(a, b, "round {round}");
                let Ok(i) = a else { break };
                reserve(&p, &mut fresh[i]);
                reserve(&p, &mut incremental[i]);
                checks[i] = check(&p, &incremental[i]);
            }
        }
    }

    #[test]
    fn default_spreads_a_group_across_instances() {
        let d = demand(10, 10);
        let p = plan(&d, &[], &[]);
        let mut cs = vec![
            candidate("a", 1024, 1024),
            candidate("b", 1024, 1024),
            candidate("c", 1024, 1024),
        ];
        cs[0].tasks = 1; // an ungrouped task: "a" is the last to get one
        assert_eq!(place_n(&p, &mut cs, 4, 1), ["b", "c", "a", "b"]);
    }

    #[test]
    fn binpack_fills_the_fullest_instance_first() {
        let d = demand(100, 256);
        let s = [Strategy::Binpack(BinpackField::Memory)];
        let p = plan(&d, &[], &s);
        let mut cs = vec![candidate("a", 4096, 2048), candidate("b", 4096, 1024)];
        assert_eq!(place_n(&p, &mut cs, 5, 1), ["b", "b", "b", "b", "a"]);
    }

    #[test]
    fn spread_by_attribute_then_instance() {
        let d = demand(1, 1);
        let s = [
            Strategy::Spread(SpreadField::Attribute("zone".into())),
            Strategy::Spread(SpreadField::Instance),
        ];
        let p = plan(&d, &[], &s);
        let mut cs = vec![
            with_attr(candidate("a1", 4096, 4096), "zone", "a"),
            with_attr(candidate("a2", 4096, 4096), "zone", "a"),
            with_attr(candidate("b1", 4096, 4096), "zone", "b"),
        ];
        let order = place_n(&p, &mut cs, 4, 1);
        assert_eq!(order, ["a1", "b1", "a2", "b1"]);
    }

    #[test]
    fn random_is_deterministic_for_a_seed_and_covers_everyone() {
        let d = demand(1, 1);
        let s = [Strategy::Random];
        let p = plan(&d, &[], &s);
        let fresh = || {
            (0..5)
                .map(|i| candidate(&format!("i{i}"), 100_000, 100_000))
                .collect::<Vec<_>>()
        };
        let a = place_n(&p, &mut fresh(), 50, 7);
        let b = place_n(&p, &mut fresh(), 50, 7);
        let c = place_n(&p, &mut fresh(), 50, 8);
        assert_eq!(a, b);
        assert_ne!(a, c);
        let distinct: BTreeSet<&String> = a.iter().collect();
        assert_eq!(distinct.len(), 5);
    }

    #[test]
    fn constraints_bind() {
        let d = demand(1, 1);
        let distinct = [Constraint::DistinctInstance];
        let p = plan(&d, &distinct, &[]);
        let mut cs = vec![candidate("a", 4096, 4096), candidate("b", 4096, 4096)];
        assert_eq!(place_n(&p, &mut cs, 2, 1), ["a", "b"]);
        let mut rng = Rng::new(1);
        let rej = place(&p, &cs, &mut rng).unwrap_err();
        assert!(rej.iter().all(|(_, r)| *r == Rejection::DistinctInstance));
        let (arn, reason, detail) = explain(&p, &cs, &rej, "arn:cluster");
        assert_eq!(
            (arn.as_str(), reason.as_str()),
            (
                "arn:cluster",
                "DistinctInstance placement constraint unsatisfied"
            )
        );
        assert!(
            detail.contains("2 already running a task of group family:web"),
            "{detail}"
        );

        let member = [Constraint::MemberOf {
            expr: cql::parse("attribute:zone == b").unwrap(),
            text: "attribute:zone == b".into(),
        }];
        let p = plan(&d, &member, &[]);
        let cs = vec![
            with_attr(candidate("a", 4096, 4096), "zone", "a"),
            with_attr(candidate("b", 4096, 4096), "zone", "b"),
        ];
        assert_eq!(place(&p, &cs, &mut rng), Ok(1));
    }

    #[test]
    fn task_group_affinity_sees_tasks_placed_earlier_in_the_call() {
        let d = demand(1, 1);
        let affinity = [Constraint::MemberOf {
            expr: cql::parse("task:group == family:web").unwrap(),
            text: "task:group == family:web".into(),
        }];
        let p = plan(&d, &affinity, &[]);
        let mut cs = vec![candidate("a", 4096, 4096), candidate("b", 4096, 4096)];
        let mut rng = Rng::new(1);
        assert!(
            place(&p, &cs, &mut rng).is_err(),
            "no task of the group anywhere yet"
        );
        cs[1].task_groups.insert("family:web".into());
        cs[1].group_tasks = 1;
        assert_eq!(place_n(&p, &mut cs, 3, 1), ["b", "b", "b"]);
    }

    #[test]
    fn failures_account_for_every_instance() {
        let mut off = candidate("off", 4096, 4096);
        off.connected = false;
        let mut draining = candidate("drain", 4096, 4096);
        draining.active = false;
        let cs = vec![
            candidate("small", 100, 4096),
            off,
            candidate("tiny", 4096, 64),
            draining,
            candidate("tiny2", 4096, 256),
        ];
        let d = demand(512, 512);
        let p = plan(&d, &[], &[]);
        let rej = place(&p, &cs, &mut Rng::new(1)).unwrap_err();
        assert_eq!(rej.len(), 5);
        let (arn, reason, detail) = explain(&p, &cs, &rej, "arn:cluster");
        assert_eq!(reason, "RESOURCE:MEMORY");
        assert_eq!(arn, "arn:tiny");
        assert_eq!(
            detail,
            "5 instances: 1 not ACTIVE (draining), 1 with the agent disconnected or its Docker Engine not answering, 1 without 512 free CPU units (most free: 100), 2 without 512 MiB free memory (most free: 256 MiB)"
        );
    }

    #[test]
    fn a_provider_without_instances_is_an_empty_capacity_provider() {
        let d = Demand {
            capacity_provider: Some("FARGATE".into()),
            ..demand(1, 1)
        };
        let p = plan(&d, &[], &[]);
        let cs = vec![candidate("a", 4096, 4096), candidate("b", 4096, 4096)];
        let rej = place(&p, &cs, &mut Rng::new(1)).unwrap_err();
        let (arn, reason, detail) = explain(&p, &cs, &rej, "arn:cluster");
        assert_eq!(
            (arn.as_str(), reason.as_str()),
            ("arn:cluster", "EMPTY CAPACITY PROVIDER")
        );
        assert_eq!(detail, "2 instances: 2 not in capacity provider FARGATE");
        // Instances of the provider that are full stay a resource failure.
        let mut mixed = cs.clone();
        mixed.push(Candidate {
            capacity_provider: Some("FARGATE"),
            ..candidate("c", 0, 4096)
        });
        let rej = place(&p, &mixed, &mut Rng::new(1)).unwrap_err();
        let (_, reason, _) = explain(&p, &mixed, &rej, "arn:cluster");
        assert_ne!(reason, "EMPTY CAPACITY PROVIDER");
    }

    #[test]
    fn ports_gpus_attributes_and_launch_types() {
        let mut cs = vec![candidate("a", 4096, 4096)];
        cs[0].free_gpus = vec!["0", "1"];
        let d = Demand {
            tcp_ports: vec![8080],
            gpus: 2,
            ..demand(1, 1)
        };
        let p = plan(&d, &[], &[]);
        let i = place(&p, &cs, &mut Rng::new(1)).unwrap();
        assert_eq!(
            reserve(&p, &mut cs[i]),
            vec!["0".to_owned(), "1".to_owned()]
        );
        let rej = place(&p, &cs, &mut Rng::new(1)).unwrap_err();
        assert_eq!(rej[0].1, Rejection::TcpPort(8080));
        let gpu_only = Demand {
            gpus: 1,
            ..demand(1, 1)
        };
        let rej = place(&plan(&gpu_only, &[], &[]), &cs, &mut Rng::new(1)).unwrap_err();
        assert_eq!(rej[0].1, Rejection::Gpu { free: 0 });
        let arm = Demand {
            cpu_architecture: Some("arm64".into()),
            ..demand(1, 1)
        };
        assert_eq!(
            place(&plan(&arm, &[], &[]), &cs, &mut Rng::new(1)).unwrap_err()[0]
                .1
                .reason(),
            "ATTRIBUTE"
        );
        let ec2 = Demand {
            launch_type: Some("EC2".into()),
            ..demand(1, 1)
        };
        let rej = place(&plan(&ec2, &[], &[]), &cs, &mut Rng::new(1)).unwrap_err();
        assert_eq!(rej[0].1, Rejection::LaunchType("EXTERNAL".into()));
    }

    #[test]
    fn capacity_provider_split_follows_base_then_weights() {
        let share = |name: &str, weight: u32, base: u32| ProviderShare {
            name: name.into(),
            weight,
            base,
        };
        let count =
            |v: &[Option<String>], n: &str| v.iter().filter(|p| p.as_deref() == Some(n)).count();
        let split = split_by_strategy(10, &[share("a", 1, 2), share("b", 3, 0)]);
        assert_eq!((count(&split, "a"), count(&split, "b")), (4, 6));
        assert_eq!(split[..2], [Some("a".to_owned()), Some("a".to_owned())]);
        let split = split_by_strategy(3, &[share("a", 1, 0), share("b", 1, 0)]);
        assert_eq!(
            split,
            [
                Some("a".to_owned()),
                Some("b".to_owned()),
                Some("a".to_owned())
            ]
        );
        assert_eq!(
            split_by_strategy(2, &[share("a", 0, 5)]),
            [Some("a".to_owned()), Some("a".to_owned())]
        );
        assert_eq!(split_by_strategy(2, &[]), [None, None]);
    }

    #[test]
    fn property_placement_never_overbooks() {
        let mut rng = Rng::new(99);
        for round in 0..200 {
            let n = 1 + rng.below(6);
            let mut cs: Vec<Candidate> = (0..n)
                .map(|i| {
                    candidate(
                        &format!("i{i}"),
                        256 + (rng.below(4) as i64) * 256,
                        256 + (rng.below(4) as i64) * 256,
                    )
                })
                .collect();
            let registered: Vec<(i64, i64)> =
                cs.iter().map(|c| (c.free_cpu, c.free_memory)).collect();
            let d = demand(
                64 * (1 + rng.below(4) as i64),
                64 * (1 + rng.below(4) as i64),
            );
            let strategies = match round % 4 {
                0 => vec![],
                1 => vec![Strategy::Random],
                2 => vec![Strategy::Binpack(BinpackField::Cpu)],
                _ => vec![
                    Strategy::Spread(SpreadField::Instance),
                    Strategy::Binpack(BinpackField::Memory),
                ],
            };
            let p = plan(&d, &[], &strategies);
            let mut placed = 0;
            while let Ok(i) = place(&p, &cs, &mut rng) {
                reserve(&p, &mut cs[i]);
                placed += 1;
                assert!(placed < 1000);
            }
            for (c, (cpu, mem)) in cs.iter().zip(&registered) {
                assert!(c.free_cpu >= 0 && c.free_memory >= 0, "overbooked {c:?}");
                let tasks = c.tasks as i64;
                assert_eq!(cpu - c.free_cpu, tasks * d.cpu);
                assert_eq!(mem - c.free_memory, tasks * d.memory);
                // Nothing left fits: a task that could still be placed would have been.
                assert!(c.free_cpu < d.cpu || c.free_memory < d.memory);
            }
        }
    }
}
