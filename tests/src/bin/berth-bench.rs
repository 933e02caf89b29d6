//! `berth-bench`: how long RunTask takes to reach RUNNING, next to a bare
//! Docker create+start of the same image and network mode, on this machine.
//!
//! ```sh
//! cargo build --release --workspace
//! target/release/berth-bench [--iterations 20] [--network bridge|host]
//! ```
//!
//! For each network mode it measures, sequentially, `--iterations` times:
//! - RunTask -> RUNNING as a client sees it (RunTask sent until DescribeTasks,
//!   polled every 5 ms, reports RUNNING);
//! - the same as the control plane records it (`startedAt - createdAt`);
//! - bare Docker: create + start through the Engine API (bollard);
//!
//! then 10 tasks at once (one RunTask with count 10) against 10 parallel bare
//! create+starts, then 20 at once (two concurrent RunTasks of count 10)
//! against 20 parallel bare create+starts, and the agent's resident memory
//! idle, with those tasks, and with 50 tasks running.
//! It starts its own control plane and agent (the release binaries next to
//! it) and removes everything it created.

use aws_sdk_ecs::types::{ContainerDefinition, NetworkMode};
use berth_tests::{TEST_IMAGE, TestCluster};
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{CreateContainerOptionsBuilder, RemoveContainerOptionsBuilder};
use std::time::{Duration, Instant};

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn summary(name: &str, mut ms: Vec<f64>) -> f64 {
    ms.sort_by(f64::total_cmp);
    let p50 = percentile(&ms, 0.5);
    println!(
        "  {name:<44} n={:<3} p50 {:>7.1} ms   p90 {:>7.1} ms   max {:>7.1} ms",
        ms.len(),
        p50,
        percentile(&ms, 0.9),
        ms.last().copied().unwrap_or(f64::NAN)
    );
    p50
}

fn rss_kib(pid: u32) -> Option<u64> {
    berth_tests::process_memory_kib(pid).map(|(rss, _)| rss)
}

/// Polls DescribeTasks every `poll` until every task has `status`.
async fn wait_all(
    ecs: &aws_sdk_ecs::Client,
    arns: &[String],
    status: &str,
    poll: Duration,
) -> Vec<aws_sdk_ecs::types::Task> {
    loop {
        let out = ecs
            .describe_tasks()
            .set_tasks(Some(arns.to_vec()))
            .send()
            .await
            .expect("DescribeTasks");
        let tasks = out.tasks();
        if tasks.len() == arns.len() && tasks.iter().all(|t| t.last_status() == Some(status)) {
            return tasks.to_vec();
        }
        if status != "STOPPED"
            && let Some(t) = tasks.iter().find(|t| t.last_status() == Some("STOPPED"))
        {
            panic!("a task stopped: {:?}", t.stopped_reason());
        }
        tokio::time::sleep(poll).await;
    }
}

async fn wait_running(ecs: &aws_sdk_ecs::Client, arns: &[String]) -> Vec<aws_sdk_ecs::types::Task> {
    wait_all(ecs, arns, "RUNNING", Duration::from_millis(5)).await
}

/// One RunTask of `count` tasks; their ARNs (all placed).
async fn run(ecs: &aws_sdk_ecs::Client, family: &str, count: i32) -> Vec<String> {
    let out = ecs
        .run_task()
        .task_definition(family)
        .count(count)
        .send()
        .await
        .expect("RunTask");
    let arns: Vec<String> = out
        .tasks()
        .iter()
        .filter_map(|t| t.task_arn().map(str::to_owned))
        .collect();
    assert_eq!(arns.len(), count as usize, "{:?}", out.failures());
    arns
}

async fn stop_all(ecs: &aws_sdk_ecs::Client, arns: &[String]) {
    for arn in arns {
        ecs.stop_task().task(arn).send().await.expect("StopTask");
    }
    wait_all(ecs, arns, "STOPPED", Duration::from_millis(50)).await;
}

fn server_ms(t: &aws_sdk_ecs::types::Task) -> f64 {
    let created = t.created_at().map(|d| d.as_secs_f64()).unwrap_or(0.0);
    let started = t.started_at().map(|d| d.as_secs_f64()).unwrap_or(0.0);
    (started - created) * 1000.0
}

async fn bare_docker(docker: &bollard::Docker, network: &str, n: usize) -> (f64, Vec<String>) {
    let started = Instant::now();
    let runs = (0..n).map(|i| {
        let docker = docker.clone();
        let network = network.to_owned();
        async move {
            let name = format!("berth-bench-bare-{}-{i}", uuid::Uuid::new_v4().simple());
            let body = ContainerCreateBody {
                image: Some(TEST_IMAGE.to_owned()),
                cmd: Some(vec!["sleep".into(), "3600".into()]),
                labels: Some([("berth-bench".to_owned(), "1".to_owned())].into()),
                host_config: Some(HostConfig {
                    network_mode: Some(network),
                    memory: Some(32 * 1024 * 1024),
                    cpu_shares: Some(2),
                    ..Default::default()
                }),
                ..Default::default()
            };
            let id = docker
                .create_container(
                    Some(CreateContainerOptionsBuilder::new().name(&name).build()),
                    body,
                )
                .await
                .expect("create")
                .id;
            docker.start_container(&id, None).await.expect("start");
            id
        }
    });
    let ids = futures_util::future::join_all(runs).await;
    (started.elapsed().as_secs_f64() * 1000.0, ids)
}

async fn remove(docker: &bollard::Docker, ids: &[String]) {
    for id in ids {
        let _ = docker
            .remove_container(
                id,
                Some(RemoveContainerOptionsBuilder::new().force(true).build()),
            )
            .await;
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| berth_tests::flag_value(&args, name);
    let iterations: usize = arg("--iterations")
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let networks: Vec<String> = arg("--network")
        .map(|n| vec![n])
        .unwrap_or_else(|| vec!["host".into(), "bridge".into()]);

    let cluster = TestCluster::start(1).await;
    let ecs = cluster.ecs.clone();
    let docker = cluster.docker.clone();
    let agent_pid = cluster.agents[0].pid().expect("agent runs");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle_rss = rss_kib(agent_pid);
    println!(
        "berth-bench: {iterations} iterations, image {TEST_IMAGE}, release binaries from {}",
        berth_tests::bin_dir().display()
    );

    for network in &networks {
        let family = format!("bench-{network}");
        let container = ContainerDefinition::builder()
            .name("app")
            .image(TEST_IMAGE)
            .memory(32)
            .set_command(Some(vec!["sleep".into(), "3600".into()]))
            .build();
        ecs.register_task_definition()
            .family(&family)
            .network_mode(NetworkMode::from(network.as_str()))
            .container_definitions(container)
            .send()
            .await
            .expect("RegisterTaskDefinition");

        // Warm-up: first create on a fresh image/network path is slower.
        for _ in 0..2 {
            let arns = run(&ecs, &family, 1).await;
            wait_running(&ecs, &arns).await;
            stop_all(&ecs, &arns).await;
            let (_, ids) = bare_docker(&docker, network, 1).await;
            remove(&docker, &ids).await;
        }

        let mut client = Vec::new();
        let mut server = Vec::new();
        let mut bare = Vec::new();
        for _ in 0..iterations {
            let t0 = Instant::now();
            let arns = run(&ecs, &family, 1).await;
            let tasks = wait_running(&ecs, &arns).await;
            client.push(t0.elapsed().as_secs_f64() * 1000.0);
            server.push(server_ms(&tasks[0]));
            stop_all(&ecs, &arns).await;

            let (ms, ids) = bare_docker(&docker, network, 1).await;
            bare.push(ms);
            remove(&docker, &ids).await;
        }
        println!("\nnetwork mode {network}, one task at a time:");
        let berth_p50 = summary("RunTask -> RUNNING (client, DescribeTasks)", client);
        summary("RunTask -> RUNNING (startedAt - createdAt)", server);
        let bare_p50 = summary("bare Docker create+start", bare);
        println!(
            "  ratio of medians (client / bare): {:.2}x",
            berth_p50 / bare_p50
        );

        let mut client10 = Vec::new();
        let mut bare10 = Vec::new();
        let mut rss_busy = None;
        for _ in 0..3 {
            let t0 = Instant::now();
            let arns = run(&ecs, &family, 10).await;
            wait_running(&ecs, &arns).await;
            client10.push(t0.elapsed().as_secs_f64() * 1000.0);
            rss_busy = rss_kib(agent_pid);
            stop_all(&ecs, &arns).await;
            let (ms, ids) = bare_docker(&docker, network, 10).await;
            bare10.push(ms);
            remove(&docker, &ids).await;
        }
        println!("network mode {network}, 10 tasks at once (RunTask count 10):");
        summary("RunTask -> all 10 RUNNING", client10);
        summary("bare Docker: 10 create+start in parallel", bare10);

        // 20 at once: two RunTasks of count 10 sent together.
        let mut client20 = Vec::new();
        let mut bare20 = Vec::new();
        for _ in 0..5 {
            let t0 = Instant::now();
            let (a, b) = tokio::join!(run(&ecs, &family, 10), run(&ecs, &family, 10));
            let arns: Vec<String> = a.into_iter().chain(b).collect();
            wait_running(&ecs, &arns).await;
            client20.push(t0.elapsed().as_secs_f64() * 1000.0);
            stop_all(&ecs, &arns).await;
            let (ms, ids) = bare_docker(&docker, network, 20).await;
            bare20.push(ms);
            remove(&docker, &ids).await;
        }
        println!("network mode {network}, 20 tasks at once (two RunTasks of count 10):");
        let berth20 = summary("RunTask x2 -> all 20 RUNNING", client20);
        let bare20 = summary("bare Docker: 20 create+start in parallel", bare20);
        println!(
            "  ratio of medians (Berth / bare): {:.2}x",
            berth20 / bare20
        );
        if let Some(kib) = rss_busy {
            println!(
                "  agent resident memory with 10 tasks running: {:.1} MiB",
                kib as f64 / 1024.0
            );
        }
    }
    if let Some(kib) = idle_rss {
        println!(
            "\nagent resident memory, idle: {:.1} MiB",
            kib as f64 / 1024.0
        );
    }
    // The agent's memory with 50 tasks running.
    let family = format!("bench-{}", networks[0]);
    let mut arns = Vec::new();
    for _ in 0..5 {
        arns.extend(run(&ecs, &family, 10).await);
    }
    wait_running(&ecs, &arns).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    if let Some(kib) = rss_kib(agent_pid) {
        println!(
            "agent resident memory with {} tasks running: {:.1} MiB",
            arns.len(),
            kib as f64 / 1024.0
        );
    }
    stop_all(&ecs, &arns).await;
    drop(cluster);
}
