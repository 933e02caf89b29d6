//! Agents: disconnects are seen within 15 seconds and avoided by placement;
//! agents reconnect with their identity; several agents share one Docker.

use super::support::{container, describe, docker_running, register, run_one, wait_status};
use berth_tests::{TestCluster, eventually};
use std::time::{Duration, Instant};

async fn connected(ecs: &aws_sdk_ecs::Client, arn: &str) -> bool {
    ecs.describe_container_instances()
        .container_instances(arn)
        .send()
        .await
        .expect("DescribeContainerInstances")
        .container_instances()
        .first()
        .is_some_and(|c| c.agent_connected())
}

#[tokio::test]
async fn a_dead_agent_is_disconnected_and_gets_no_tasks_until_it_returns() {
    let mut cluster = TestCluster::start(1).await;
    let ecs = cluster.ecs.clone();
    register(&ecs, "work", vec![container("app", &["sleep", "600"])]).await;
    let arn = cluster.agents[0].arn.clone();
    assert!(connected(&ecs, &arn).await);

    cluster.agents[0].kill();
    let killed = Instant::now();
    eventually(Duration::from_secs(15), "agentConnected: false", || async {
        (!connected(&ecs, &arn).await).then_some(())
    })
    .await;
    eprintln!("disconnect seen after {:?}", killed.elapsed());

    let out = ecs
        .run_task()
        .task_definition("work")
        .send()
        .await
        .expect("RunTask");
    assert!(out.tasks().is_empty());
    let failure = &out.failures()[0];
    assert_eq!(failure.reason(), Some("AGENT"));
    assert_eq!(failure.arn(), Some(arn.as_str()));
    assert!(
        failure
            .detail()
            .unwrap_or_default()
            .contains("disconnected"),
        "{failure:?}"
    );

    cluster.agents[0].restart();
    assert!(
        connected(&ecs, &arn).await,
        "same identity, connected again"
    );
    let instances = ecs.list_container_instances().send().await.expect("List");
    assert_eq!(
        instances.container_instance_arns(),
        std::slice::from_ref(&arn)
    );
    let task = run_one(&ecs, "work").await;
    wait_status(
        &ecs,
        task.task_arn().expect("arn"),
        "RUNNING",
        Duration::from_secs(20),
    )
    .await;
}

#[tokio::test]
async fn two_agents_on_one_docker_each_run_their_own_tasks() {
    let mut cluster = TestCluster::start(2).await;
    let ecs = cluster.ecs.clone();
    register(&ecs, "spread", vec![container("app", &["sleep", "600"])]).await;
    let out = ecs
        .run_task()
        .task_definition("spread")
        .count(2)
        .send()
        .await
        .expect("RunTask");
    assert_eq!(out.tasks().len(), 2, "{:?}", out.failures());
    let mut hosts: Vec<String> = out
        .tasks()
        .iter()
        .filter_map(|t| t.container_instance_arn().map(str::to_owned))
        .collect();
    hosts.sort();
    hosts.dedup();
    assert_eq!(hosts.len(), 2, "one task per instance");
    for t in out.tasks() {
        wait_status(
            &ecs,
            t.task_arn().expect("arn"),
            "RUNNING",
            Duration::from_secs(20),
        )
        .await;
    }
    // Killing one agent leaves the other's task alone, and its own task too
    // (containers outlive their agent).
    cluster.agents[0].kill();
    for t in out.tasks() {
        let running = wait_status(
            &ecs,
            t.task_arn().expect("arn"),
            "RUNNING",
            Duration::from_secs(5),
        )
        .await;
        let id = running.containers()[0].runtime_id().expect("id");
        assert!(docker_running(&cluster.docker, id).await);
    }
    // The surviving agent stops only its own task.
    let survivor = cluster.agents[1].arn.clone();
    let theirs = out
        .tasks()
        .iter()
        .find(|t| t.container_instance_arn() == Some(survivor.as_str()))
        .and_then(|t| t.task_arn())
        .expect("a task on the surviving agent")
        .to_owned();
    ecs.stop_task()
        .task(&theirs)
        .send()
        .await
        .expect("StopTask");
    wait_status(&ecs, &theirs, "STOPPED", Duration::from_secs(20)).await;
    let orphan = out
        .tasks()
        .iter()
        .find(|t| t.container_instance_arn() != Some(survivor.as_str()))
        .expect("the other task");
    let still = describe(&ecs, orphan.task_arn().expect("arn")).await;
    let id = still.containers()[0].runtime_id().expect("id");
    assert!(
        docker_running(&cluster.docker, id).await,
        "the other agent's container was not touched"
    );
}

/// A network namespace joined to the host by a veth pair, removed on drop.
struct Netns {
    name: String,
    host_if: String,
    host_ip: String,
}

fn ip(args: &[&str]) {
    let status = std::process::Command::new("ip")
        .args(args)
        .status()
        .expect("run ip (iproute2)");
    assert!(status.success(), "ip {args:?}: {status}");
}

impl Netns {
    fn new() -> Self {
        let id = std::process::id() % 10_000;
        let name = format!("berth-part-{id}");
        let (host_if, ns_if) = (format!("bph{id}"), format!("bpn{id}"));
        let subnet = (id % 250) as u8 + 1;
        let host_ip = format!("10.213.{subnet}.1");
        let ns_ip = format!("10.213.{subnet}.2");
        ip(&["netns", "add", &name]);
        ip(&[
            "link", "add", &host_if, "type", "veth", "peer", "name", &ns_if,
        ]);
        ip(&["link", "set", &ns_if, "netns", &name]);
        ip(&["addr", "add", &format!("{host_ip}/30"), "dev", &host_if]);
        ip(&["link", "set", &host_if, "up"]);
        ip(&[
            "netns",
            "exec",
            &name,
            "ip",
            "addr",
            "add",
            &format!("{ns_ip}/30"),
            "dev",
            &ns_if,
        ]);
        ip(&["netns", "exec", &name, "ip", "link", "set", &ns_if, "up"]);
        ip(&["netns", "exec", &name, "ip", "link", "set", "lo", "up"]);
        Netns {
            name,
            host_if,
            host_ip,
        }
    }

    /// Cuts (`false`) or heals (`true`) the link.
    fn link(&self, up: bool) {
        ip(&["link", "set", &self.host_if, if up { "up" } else { "down" }]);
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["link", "del", &self.host_if])
            .status();
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

#[tokio::test]
async fn an_agent_partitioned_for_a_minute_is_back_within_10_s_of_the_heal() {
    let cut_for = Duration::from_secs(
        std::env::var("BERTH_PARTITION_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(60),
    );
    let net = Netns::new();
    let mut cluster = TestCluster::start(0).await;
    // The agent reaches the control plane only through the veth pair.
    let data_dir = cluster.control_plane.data_dir().to_owned();
    cluster.control_plane.kill();
    let grpc: std::net::SocketAddr = format!("{}:0", net.host_ip).parse().expect("addr");
    let any: std::net::SocketAddr = "127.0.0.1:0".parse().expect("addr");
    cluster.control_plane = berth_tests::ControlPlane::start_with(
        &data_dir,
        any,
        grpc,
        &cluster.dir().join("control-plane.log"),
        &["--insecure".to_owned()],
    );
    cluster.ecs = berth_tests::ecs_client(cluster.control_plane.http);
    let ecs = cluster.ecs.clone();
    let agent = berth_tests::Agent::start_via(
        &["ip", "netns", "exec", &net.name],
        &cluster.dir().join("agent0"),
        &cluster.dir().join("agent0.log"),
        &[
            "--control-plane".to_owned(),
            cluster.control_plane.grpc_url(),
            "--agent-token-file".to_owned(),
            cluster.control_plane.agent_token_file.display().to_string(),
        ],
    );
    let instance = agent.arn.clone();
    cluster.agents.push(agent);
    register(&ecs, "part", vec![container("app", &["sleep", "600"])]).await;
    let keep = run_one(&ecs, "part")
        .await
        .task_arn()
        .expect("arn")
        .to_owned();
    let stop = run_one(&ecs, "part")
        .await
        .task_arn()
        .expect("arn")
        .to_owned();
    wait_status(&ecs, &keep, "RUNNING", Duration::from_secs(30)).await;
    wait_status(&ecs, &stop, "RUNNING", Duration::from_secs(30)).await;

    net.link(false);
    eventually(
        Duration::from_secs(20),
        "the agent counts as disconnected",
        || {
            let ecs = ecs.clone();
            let instance = instance.clone();
            async move { (!connected(&ecs, &instance).await).then_some(()) }
        },
    )
    .await;
    // Decided during the cut: carried out once the agent is back.
    ecs.stop_task().task(&stop).send().await.expect("StopTask");
    tokio::time::sleep(cut_for.saturating_sub(Duration::from_secs(12))).await;
    net.link(true);
    let healed = Instant::now();
    eventually(Duration::from_secs(10), "reconnected within 10 s", || {
        let ecs = ecs.clone();
        let instance = instance.clone();
        async move { connected(&ecs, &instance).await.then_some(()) }
    })
    .await;
    let back = healed.elapsed();
    wait_status(&ecs, &stop, "STOPPED", Duration::from_secs(10)).await;
    let converged = healed.elapsed();
    assert_eq!(
        describe(&ecs, &keep).await.last_status(),
        Some("RUNNING"),
        "the task kept running through the cut"
    );
    eprintln!(
        "cut {cut_for:?}: reconnected {back:?} after the heal; the StopTask issued during the cut took effect after {converged:?}"
    );
}
