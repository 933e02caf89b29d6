//! Pure, synchronous placement: which instance gets the next task, or why no
//! instance can. No async, no clocks, no I/O: `service` builds the candidates
//! from its state under the cluster's lock and applies the result.
//!
//! Pipeline (ECS's): drop instances that are not ACTIVE, whose agent is
//! disconnected or whose launch type differs; drop those without the CPU,
//! memory and static host ports the task needs; choose among the rest.
//! Choice: the fewest tasks of the same task group, then the fewest tasks,
//! then the lowest id. This spreads a group across instances and is
//! repeatable; placement strategies replace it when a caller gives them.

use std::collections::BTreeSet;

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
    /// `EC2` or `EXTERNAL` when the caller asked for one.
    pub launch_type: Option<String>,
}

/// An instance as placement sees it; updated in place as tasks are placed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Container-instance id (tie-breaker).
    pub id: String,
    /// Its ARN, for failures.
    pub arn: String,
    /// `ACTIVE` instances only take tasks.
    pub active: bool,
    /// Whether the agent's session is open.
    pub connected: bool,
    /// `EC2` or `EXTERNAL`.
    pub launch_type: String,
    /// Unreserved CPU units.
    pub free_cpu: i64,
    /// Unreserved MiB.
    pub free_memory: i64,
    /// TCP host ports in use (reserved by the agent or held by tasks).
    pub used_tcp: BTreeSet<u16>,
    /// UDP host ports in use.
    pub used_udp: BTreeSet<u16>,
    /// Non-STOPPED tasks of the task group being placed.
    pub group_tasks: usize,
    /// All non-STOPPED tasks.
    pub tasks: usize,
}

/// Why an instance cannot take the task. Ordered by how early the pipeline
/// drops an instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// DRAINING or otherwise not ACTIVE.
    NotActive,
    /// Agent disconnected (ECS reason `AGENT`).
    Agent,
    /// The instance is of another launch type.
    LaunchType(String),
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
}

impl Rejection {
    /// The ECS `failures[].reason`.
    pub fn reason(&self) -> &'static str {
        match self {
            Rejection::NotActive | Rejection::LaunchType(_) => "ATTRIBUTE",
            Rejection::Agent => "AGENT",
            Rejection::Cpu { .. } => "RESOURCE:CPU",
            Rejection::Memory { .. } => "RESOURCE:MEMORY",
            Rejection::TcpPort(_) => "RESOURCE:PORTS",
            Rejection::UdpPort(_) => "RESOURCE:PORTS_UDP",
        }
    }
}

/// Checks one instance against a demand.
pub fn check(demand: &Demand, c: &Candidate) -> Result<(), Rejection> {
    if !c.active {
        return Err(Rejection::NotActive);
    }
    if !c.connected {
        return Err(Rejection::Agent);
    }
    if let Some(lt) = &demand.launch_type
        && lt != &c.launch_type
    {
        return Err(Rejection::LaunchType(c.launch_type.clone()));
    }
    if demand.cpu > c.free_cpu {
        return Err(Rejection::Cpu { free: c.free_cpu });
    }
    if demand.memory > c.free_memory {
        return Err(Rejection::Memory {
            free: c.free_memory,
        });
    }
    if let Some(p) = demand.tcp_ports.iter().find(|p| c.used_tcp.contains(p)) {
        return Err(Rejection::TcpPort(*p));
    }
    if let Some(p) = demand.udp_ports.iter().find(|p| c.used_udp.contains(p)) {
        return Err(Rejection::UdpPort(*p));
    }
    Ok(())
}

/// Chooses an instance for one task: the index into `candidates`, or every
/// candidate's rejection.
pub fn place(demand: &Demand, candidates: &[Candidate]) -> Result<usize, Vec<(usize, Rejection)>> {
    let mut rejections = Vec::new();
    let mut best: Option<usize> = None;
    for (i, c) in candidates.iter().enumerate() {
        match check(demand, c) {
            Err(r) => rejections.push((i, r)),
            Ok(()) => {
                let better = match best {
                    None => true,
                    Some(b) => {
                        let cur = &candidates[b];
                        (c.group_tasks, c.tasks, &c.id) < (cur.group_tasks, cur.tasks, &cur.id)
                    }
                };
                if better {
                    best = Some(i);
                }
            }
        }
    }
    best.ok_or(rejections)
}

/// Reserves `demand` on a candidate after it was chosen, so the next task of
/// the same call sees what is left.
pub fn reserve(demand: &Demand, c: &mut Candidate) {
    c.free_cpu -= demand.cpu;
    c.free_memory -= demand.memory;
    c.used_tcp.extend(demand.tcp_ports.iter().copied());
    c.used_udp.extend(demand.udp_ports.iter().copied());
    c.group_tasks += 1;
    c.tasks += 1;
}

/// The ECS failure for a task no instance could take: the most common
/// blocking reason, with the ARN of an instance it blocked, and a detail
/// that accounts for every instance considered.
pub fn explain(
    demand: &Demand,
    candidates: &[Candidate],
    rejections: &[(usize, Rejection)],
) -> (String, String, String) {
    use std::collections::BTreeMap;
    // reason -> (instances, example index)
    let mut by_reason: BTreeMap<&'static str, Vec<usize>> = BTreeMap::new();
    for (i, r) in rejections {
        by_reason.entry(r.reason()).or_default().push(*i);
    }
    let (reason, indexes) = by_reason
        .iter()
        .max_by_key(|(reason, idx)| (idx.len(), std::cmp::Reverse(**reason)))
        .map(|(r, idx)| (*r, idx.clone()))
        .unwrap_or(("RESOURCE:CPU", Vec::new()));
    let arn = indexes
        .first()
        .map(|i| candidates[*i].arn.clone())
        .unwrap_or_default();

    let mut parts = Vec::new();
    let count =
        |pred: &dyn Fn(&Rejection) -> bool| rejections.iter().filter(|(_, r)| pred(r)).count();
    let not_active = count(&|r| matches!(r, Rejection::NotActive));
    if not_active > 0 {
        parts.push(format!("{not_active} not ACTIVE (draining)"));
    }
    let agent = count(&|r| matches!(r, Rejection::Agent));
    if agent > 0 {
        parts.push(format!("{agent} with the agent disconnected"));
    }
    let lt = count(&|r| matches!(r, Rejection::LaunchType(_)));
    if lt > 0 {
        parts.push(format!(
            "{lt} not of launch type {}",
            demand.launch_type.as_deref().unwrap_or_default()
        ));
    }
    let cpu: Vec<i64> = rejections
        .iter()
        .filter_map(|(_, r)| match r {
            Rejection::Cpu { free } => Some(*free),
            _ => None,
        })
        .collect();
    if let Some(most) = cpu.iter().max() {
        parts.push(format!(
            "{} without {} free CPU units (most free: {most})",
            cpu.len(),
            demand.cpu
        ));
    }
    let mem: Vec<i64> = rejections
        .iter()
        .filter_map(|(_, r)| match r {
            Rejection::Memory { free } => Some(*free),
            _ => None,
        })
        .collect();
    if let Some(most) = mem.iter().max() {
        parts.push(format!(
            "{} without {} MiB free memory (most free: {most} MiB)",
            mem.len(),
            demand.memory
        ));
    }
    let tcp = count(&|r| matches!(r, Rejection::TcpPort(_)));
    if tcp > 0 {
        parts.push(format!("{tcp} with a requested TCP host port in use"));
    }
    let udp = count(&|r| matches!(r, Rejection::UdpPort(_)));
    if udp > 0 {
        parts.push(format!("{udp} with a requested UDP host port in use"));
    }
    let n = candidates.len();
    let detail = format!(
        "{n} instance{}: {}",
        if n == 1 { "" } else { "s" },
        parts.join(", ")
    );
    (arn, reason.to_owned(), detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(id: &str, cpu: i64, mem: i64) -> Candidate {
        Candidate {
            id: id.into(),
            arn: format!("arn:{id}"),
            active: true,
            connected: true,
            launch_type: "EXTERNAL".into(),
            free_cpu: cpu,
            free_memory: mem,
            used_tcp: BTreeSet::from([22]),
            used_udp: BTreeSet::new(),
            group_tasks: 0,
            tasks: 0,
        }
    }

    fn demand(cpu: i64, memory: i64) -> Demand {
        Demand {
            cpu,
            memory,
            ..Default::default()
        }
    }

    #[test]
    fn picks_least_loaded_then_lowest_id() {
        let mut cs = vec![candidate("b", 1024, 1024), candidate("a", 1024, 1024)];
        assert_eq!(place(&demand(10, 10), &cs), Ok(1));
        reserve(&demand(10, 10), &mut cs[1]);
        assert_eq!(place(&demand(10, 10), &cs), Ok(0));
    }

    #[test]
    fn rejects_with_reasons() {
        let mut off = candidate("off", 4096, 4096);
        off.connected = false;
        let cs = vec![
            candidate("small", 100, 4096),
            off,
            candidate("tiny", 4096, 64),
        ];
        let rej = place(&demand(512, 512), &cs).unwrap_err();
        assert_eq!(rej.len(), 3);
        let (_, reason, detail) = explain(&demand(512, 512), &cs, &rej);
        assert_eq!(reason, "AGENT");
        assert!(detail.starts_with("3 instances:"), "{detail}");
        assert!(
            detail.contains("1 without 512 MiB free memory (most free: 64 MiB)"),
            "{detail}"
        );
        assert!(
            detail.contains("1 without 512 free CPU units (most free: 100)"),
            "{detail}"
        );
    }

    #[test]
    fn ports_block_and_reserve() {
        let mut cs = vec![candidate("a", 4096, 4096)];
        let d = Demand {
            tcp_ports: vec![8080],
            ..demand(1, 1)
        };
        assert_eq!(place(&d, &cs), Ok(0));
        reserve(&d, &mut cs[0]);
        let rej = place(&d, &cs).unwrap_err();
        assert_eq!(rej[0].1, Rejection::TcpPort(8080));
        assert_eq!(
            check(
                &Demand {
                    tcp_ports: vec![22],
                    ..demand(1, 1)
                },
                &cs[0]
            ),
            Err(Rejection::TcpPort(22))
        );
    }
}
