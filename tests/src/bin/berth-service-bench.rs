//! `berth-service-bench`: Berth services next to Docker Swarm services on the
//! same Docker Engine, in one run.
//!
//! ```sh
//! cargo build --release -p berth-control-plane -p berth-agent -p berth-tests
//! target/release/berth-service-bench [--replicas 20] [--repeats 3] [--timeout 120] [--swarm-first] [--swarm-image-by-id]
//! ```
//!
//! It starts its own control plane and one agent (the release binaries next
//! to it), makes this engine a one-node swarm manager unless it already is
//! one (`docker swarm init --advertise-addr 127.0.0.1`; it leaves again at
//! the end, and removes the `docker_gwbridge` network init created, only if
//! it initialised it), and measures, for Berth and for Swarm,
//! one after the other (Berth first unless `--swarm-first`):
//!
//! 1. create a service of `--replicas` replicas of the local test image
//!    (`sleep 3600`, 32 MiB memory limit, bridge network) until the
//!    orchestrator reports them all running: Berth `CreateService` until
//!    DescribeServices says runningCount = replicas; Swarm `POST
//!    /services/create` until that many of its tasks are in state `running`;
//! 2. self-healing, `--repeats` times: SIGKILL one task's container until the
//!    orchestrator again reports `replicas` running, one of them a task that
//!    did not exist before the kill. Swarm with its default restart policy
//!    (5 s restart delay), then again with `--restart-delay 0s`;
//! 3. a rolling update of all replicas to `sleep 3601`: Berth `UpdateService`
//!    to a new revision (default 200 % / 100 %), Swarm `POST
//!    /services/{id}/update` with parallelism = replicas, start-first. Two
//!    end points: the rollout is done as the orchestrator says (Berth: one
//!    deployment, COMPLETED, runningCount = replicas; Swarm: UpdateStatus
//!    `completed`, replicas running tasks of the new spec), and Docker has
//!    converged (replicas containers of the new spec running, none of the
//!    old).
//!
//! Swarm is driven through the Engine API (bollard), as Berth through the ECS
//! API (aws-sdk-ecs): no CLI process start inside a timed span. Every
//! orchestrator is polled every 20 ms. It also times a bare Docker
//! create+start of the same image (`sleep 1`, 32 MiB, bridge) for reference,
//! and removes everything it created, also after a failure.

use aws_sdk_ecs::types::ContainerDefinition;
use berth_tests::{TEST_IMAGE, TestCluster};
use bollard::Docker;
use bollard::models::{
    ContainerCreateBody, HostConfig, Limit, ServiceSpec, ServiceSpecMode,
    ServiceSpecModeReplicated, ServiceSpecUpdateConfig, ServiceSpecUpdateConfigOrderEnum,
    ServiceUpdateStatusStateEnum, TaskSpec, TaskSpecContainerSpec, TaskSpecResources,
    TaskSpecRestartPolicy, TaskState,
};
use bollard::query_parameters::{
    InspectServiceOptions, ListContainersOptions, ListTasksOptions, RemoveContainerOptionsBuilder,
    UpdateServiceOptions,
};
use std::collections::{HashMap, HashSet};
use std::process::Command;
use std::time::{Duration, Instant};

const BERTH_SERVICE: &str = "bench";
const FAMILY: &str = "bench-svc";
const SWARM_SERVICE: &str = "bench-swarm";
const SWARM_LABEL: &str = "com.docker.swarm.service.name=bench-swarm";
const POLL: Duration = Duration::from_millis(20);
const MEMORY_MIB: i64 = 32;

#[derive(Debug, Clone, Copy)]
struct Options {
    replicas: usize,
    repeats: usize,
    timeout: Duration,
}

/// What one orchestrator took, in seconds.
#[derive(Debug, Default, Clone)]
struct Figures {
    create: f64,
    heal: Vec<f64>,
    /// Swarm only: self-healing with `--restart-delay 0s`.
    heal_no_delay: Vec<f64>,
    rollout_done: f64,
    converged: f64,
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        f64::NAN
    } else {
        v[v.len() / 2]
    }
}

/// Polls `check` every [`POLL`] until it returns `Ok`; panics after `timeout`
/// with `what` and the last state `check` described.
async fn poll_until<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        match check().await {
            Ok(v) => return v,
            Err(state) => assert!(
                Instant::now() < deadline,
                "timed out after {timeout:?} waiting for {what}; last seen: {state}"
            ),
        }
        tokio::time::sleep(POLL).await;
    }
}

/// `docker ARGS` (outside timed spans); its stdout, or its stderr as error.
fn docker_cli(args: &[&str]) -> Result<String, String> {
    let out = Command::new("docker")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run docker: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
    }
}

/// The command's last word of every running container carrying `label`.
async fn running_commands(docker: &Docker, label: &str) -> Vec<String> {
    let filters = HashMap::from([
        ("label".to_owned(), vec![label.to_owned()]),
        ("status".to_owned(), vec!["running".to_owned()]),
    ]);
    docker
        .list_containers(Some(ListContainersOptions {
            filters: Some(filters),
            ..Default::default()
        }))
        .await
        .expect("list containers")
        .into_iter()
        .map(|c| {
            c.command
                .unwrap_or_default()
                .split_whitespace()
                .last()
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

/// Whether Docker runs exactly `n` containers with `label` whose command
/// ends in `new`, and none other; else what it runs.
async fn docker_converged(docker: &Docker, label: &str, new: &str, n: usize) -> Result<(), String> {
    let commands = running_commands(docker, label).await;
    let fresh = commands.iter().filter(|c| *c == new).count();
    if fresh == n && commands.len() == n {
        Ok(())
    } else {
        Err(format!(
            "{} running containers, {fresh} of them `sleep {new}`",
            commands.len()
        ))
    }
}

// ---------------------------------------------------------------- reference

/// Median of `runs` bare create+start of the test image (`sleep 1`, 32 MiB,
/// bridge) through the Engine API, after one warm-up.
async fn bare_docker(docker: &Docker, runs: usize) -> Vec<f64> {
    let mut samples = Vec::new();
    for i in 0..=runs {
        let body = ContainerCreateBody {
            image: Some(TEST_IMAGE.to_owned()),
            cmd: Some(vec!["sleep".into(), "1".into()]),
            labels: Some([("berth-service-bench".to_owned(), "1".to_owned())].into()),
            host_config: Some(HostConfig {
                network_mode: Some("bridge".into()),
                memory: Some(MEMORY_MIB * 1024 * 1024),
                ..Default::default()
            }),
            ..Default::default()
        };
        let t0 = Instant::now();
        let id = docker
            .create_container(
                None::<bollard::query_parameters::CreateContainerOptions>,
                body,
            )
            .await
            .expect("create a bare container")
            .id;
        docker
            .start_container(&id, None)
            .await
            .expect("start a bare container");
        let took = t0.elapsed().as_secs_f64();
        if i > 0 {
            samples.push(took);
        }
        let _ = docker
            .remove_container(
                &id,
                Some(RemoveContainerOptionsBuilder::new().force(true).build()),
            )
            .await;
    }
    samples
}

// -------------------------------------------------------------------- Berth

async fn describe(ecs: &aws_sdk_ecs::Client) -> aws_sdk_ecs::types::Service {
    let out = ecs
        .describe_services()
        .services(BERTH_SERVICE)
        .send()
        .await
        .expect("DescribeServices");
    out.services()
        .first()
        .cloned()
        .unwrap_or_else(|| panic!("DescribeServices has no service: {:?}", out.failures()))
}

/// Counts, deployments and the newest events, for timeout messages.
fn service_state(s: &aws_sdk_ecs::types::Service) -> String {
    let deployments: Vec<String> = s
        .deployments()
        .iter()
        .map(|d| {
            format!(
                "{} {} {:?} running {} pending {} failed {}",
                d.status().unwrap_or_default(),
                d.task_definition().unwrap_or_default(),
                d.rollout_state(),
                d.running_count(),
                d.pending_count(),
                d.failed_tasks()
            )
        })
        .collect();
    let events: Vec<&str> = s
        .events()
        .iter()
        .take(8)
        .filter_map(|e| e.message())
        .collect();
    format!(
        "status {:?} desired {} running {} pending {}; deployments [{}]; newest events: {events:#?}",
        s.status(),
        s.desired_count(),
        s.running_count(),
        s.pending_count(),
        deployments.join("; ")
    )
}

/// The service's tasks that should run (ListTasks + DescribeTasks).
async fn berth_tasks(ecs: &aws_sdk_ecs::Client) -> Vec<aws_sdk_ecs::types::Task> {
    let arns = ecs
        .list_tasks()
        .service_name(BERTH_SERVICE)
        .send()
        .await
        .expect("ListTasks")
        .task_arns()
        .to_vec();
    if arns.is_empty() {
        return Vec::new();
    }
    ecs.describe_tasks()
        .set_tasks(Some(arns))
        .send()
        .await
        .expect("DescribeTasks")
        .tasks()
        .to_vec()
}

async fn register(ecs: &aws_sdk_ecs::Client, seconds: &str) -> String {
    let container = ContainerDefinition::builder()
        .name("app")
        .image(TEST_IMAGE)
        .memory(MEMORY_MIB as i32)
        .set_command(Some(vec!["sleep".into(), seconds.into()]))
        .build();
    ecs.register_task_definition()
        .family(FAMILY)
        .container_definitions(container)
        .send()
        .await
        .expect("RegisterTaskDefinition")
        .task_definition()
        .and_then(|t| t.task_definition_arn())
        .expect("a task definition ARN")
        .to_owned()
}

/// Waits until the service is steady: one deployment, COMPLETED, all
/// replicas running.
async fn berth_steady(ecs: &aws_sdk_ecs::Client, o: Options) {
    poll_until(o.timeout, "the Berth service to be steady", || async move {
        let s = describe(ecs).await;
        let done = s.deployments().len() == 1
            && s.deployments()[0].rollout_state().map(|r| r.as_str()) == Some("COMPLETED")
            && s.running_count() as usize == o.replicas;
        if done { Ok(()) } else { Err(service_state(&s)) }
    })
    .await;
}

async fn bench_berth(cluster: &TestCluster, o: Options) -> Figures {
    let ecs = &cluster.ecs;
    let docker = &cluster.docker;
    let label = format!("berth.container-instance-arn={}", cluster.agents[0].arn);
    let n = o.replicas;
    let mut f = Figures::default();
    register(ecs, "3600").await;

    // 1. Create.
    let t0 = Instant::now();
    ecs.create_service()
        .service_name(BERTH_SERVICE)
        .task_definition(FAMILY)
        .desired_count(n as i32)
        .send()
        .await
        .expect("CreateService");
    poll_until(o.timeout, "Berth: all replicas RUNNING", || async move {
        let s = describe(ecs).await;
        if s.running_count() as usize == n {
            Ok(())
        } else {
            Err(service_state(&s))
        }
    })
    .await;
    f.create = t0.elapsed().as_secs_f64();
    println!("Berth: {n} replicas RUNNING after {:.3} s", f.create);
    berth_steady(ecs, o).await;

    // 2. Self-healing.
    for i in 0..o.repeats {
        berth_steady(ecs, o).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let before = berth_tasks(ecs).await;
        let known: HashSet<String> = before
            .iter()
            .filter_map(|t| t.task_arn().map(str::to_owned))
            .collect();
        let victim = before
            .iter()
            .find(|t| t.last_status() == Some("RUNNING"))
            .and_then(|t| t.containers().first())
            .and_then(|c| c.runtime_id())
            .expect("a RUNNING task with a container id")
            .to_owned();
        let t0 = Instant::now();
        docker
            .kill_container(&victim, None)
            .await
            .expect("kill a Berth container");
        poll_until(o.timeout, "Berth: a replacement task RUNNING", || {
            let known = &known;
            async move {
                let s = describe(ecs).await;
                if s.running_count() as usize != n {
                    return Err(service_state(&s));
                }
                let tasks = berth_tasks(ecs).await;
                let replaced = tasks.iter().any(|t| {
                    t.last_status() == Some("RUNNING")
                        && t.task_arn().is_some_and(|a| !known.contains(a))
                });
                if replaced {
                    Ok(())
                } else {
                    Err(format!("no new task RUNNING yet; {}", service_state(&s)))
                }
            }
        })
        .await;
        let took = t0.elapsed().as_secs_f64();
        println!(
            "Berth: kill {} -> replacement RUNNING after {took:.3} s",
            i + 1
        );
        f.heal.push(took);
    }

    // 3. Rolling update.
    berth_steady(ecs, o).await;
    let revision = register(ecs, "3601").await;
    let t0 = Instant::now();
    ecs.update_service()
        .service(BERTH_SERVICE)
        .task_definition(&revision)
        .send()
        .await
        .expect("UpdateService");
    let (mut done, mut converged) = (None, None);
    let deadline = Instant::now() + o.timeout;
    loop {
        let s = describe(ecs).await;
        if done.is_none()
            && s.deployments().len() == 1
            && s.deployments()[0].task_definition() == Some(revision.as_str())
            && s.deployments()[0].rollout_state().map(|r| r.as_str()) == Some("COMPLETED")
            && s.running_count() as usize == n
        {
            done = Some(t0.elapsed().as_secs_f64());
        }
        let docker_state = docker_converged(docker, &label, "3601", n).await;
        if converged.is_none() && docker_state.is_ok() {
            converged = Some(t0.elapsed().as_secs_f64());
        }
        if done.is_some() && converged.is_some() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {:?} waiting for Berth's rolling update; COMPLETED after {done:?}, Docker converged after {converged:?}; Docker: {docker_state:?}; {}",
            o.timeout,
            service_state(&s)
        );
        tokio::time::sleep(POLL).await;
    }
    f.rollout_done = done.unwrap_or(f64::NAN);
    f.converged = converged.unwrap_or(f64::NAN);
    println!(
        "Berth: rolling update COMPLETED after {:.3} s, Docker converged after {:.3} s",
        f.rollout_done, f.converged
    );
    f
}

/// DeleteService with force, until INACTIVE; then removes the stopped
/// containers. Best effort: reports, never panics.
async fn cleanup_berth(cluster: &TestCluster, timeout: Duration) {
    let ecs = &cluster.ecs;
    if ecs
        .delete_service()
        .service(BERTH_SERVICE)
        .force(true)
        .send()
        .await
        .is_err()
    {
        return; // never created
    }
    let deadline = Instant::now() + timeout;
    loop {
        let status = ecs
            .describe_services()
            .services(BERTH_SERVICE)
            .send()
            .await
            .ok()
            .and_then(|o| {
                o.services()
                    .first()
                    .and_then(|s| s.status().map(str::to_owned))
            });
        if status.as_deref() == Some("INACTIVE") {
            break;
        }
        if Instant::now() > deadline {
            eprintln!("cleanup: the Berth service is still {status:?} after {timeout:?}");
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    berth_tests::remove_containers(&format!(
        "berth.container-instance-arn={}",
        cluster.agents[0].arn
    ));
}

// -------------------------------------------------------------------- Swarm

/// What this run must undo: whether it made the engine a swarm manager
/// (and so must leave), and whether `docker_gwbridge` existed before (the
/// swarm creates it, `swarm leave` keeps it).
#[derive(Debug, Clone, Copy)]
struct SwarmSetup {
    initialised: bool,
    had_gwbridge: bool,
}

fn swarm_join() -> SwarmSetup {
    let state = docker_cli(&[
        "info",
        "--format",
        "{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}",
    ])
    .expect("docker info");
    match state.as_str() {
        "active true" => {
            println!("Swarm: this engine is already a swarm manager; reusing it");
            SwarmSetup {
                initialised: false,
                had_gwbridge: true,
            }
        }
        "inactive false" => {
            let had_gwbridge = docker_cli(&["network", "inspect", "docker_gwbridge"]).is_ok();
            docker_cli(&["swarm", "init", "--advertise-addr", "127.0.0.1"])
                .unwrap_or_else(|e| panic!("docker swarm init failed: {e}"));
            println!("Swarm: initialised a one-node swarm (will leave at the end)");
            SwarmSetup {
                initialised: true,
                had_gwbridge,
            }
        }
        other => panic!("the engine's swarm state is '{other}': neither inactive nor a manager"),
    }
}

fn swarm_spec(image: &str, seconds: &str, replicas: usize) -> ServiceSpec {
    ServiceSpec {
        name: Some(SWARM_SERVICE.to_owned()),
        task_template: Some(TaskSpec {
            container_spec: Some(TaskSpecContainerSpec {
                image: Some(image.to_owned()),
                args: Some(vec!["sleep".into(), seconds.into()]),
                ..Default::default()
            }),
            resources: Some(TaskSpecResources {
                limits: Some(Limit {
                    memory_bytes: Some(MEMORY_MIB * 1024 * 1024),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        mode: Some(ServiceSpecMode {
            replicated: Some(ServiceSpecModeReplicated {
                replicas: Some(replicas as i64),
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The service's tasks: (id, state, command's last argument) of those
/// whose desired state is `running`, and of all.
async fn swarm_tasks(docker: &Docker, desired_running: bool) -> Vec<(String, TaskState, String)> {
    let mut filters = HashMap::from([("service".to_owned(), vec![SWARM_SERVICE.to_owned()])]);
    if desired_running {
        filters.insert("desired-state".to_owned(), vec!["running".to_owned()]);
    }
    docker
        .list_tasks(Some(ListTasksOptions {
            filters: Some(filters),
        }))
        .await
        .expect("list swarm tasks")
        .into_iter()
        .map(|t| {
            let args = t
                .spec
                .and_then(|s| s.container_spec)
                .and_then(|c| c.args)
                .and_then(|a| a.last().cloned())
                .unwrap_or_default();
            let state = t.status.and_then(|s| s.state).unwrap_or(TaskState::NEW);
            (t.id.unwrap_or_default(), state, args)
        })
        .collect()
}

/// The ids of running tasks, or how many run.
async fn swarm_running(docker: &Docker, n: usize, args: &str) -> Result<Vec<String>, String> {
    let tasks = swarm_tasks(docker, true).await;
    let running: Vec<String> = tasks
        .iter()
        .filter(|(_, s, a)| *s == TaskState::RUNNING && a == args)
        .map(|(id, _, _)| id.clone())
        .collect();
    if running.len() == n {
        Ok(running)
    } else {
        let states: Vec<String> = tasks.iter().map(|(_, s, a)| format!("{s}/{a}")).collect();
        Err(format!(
            "{} of {n} tasks running `sleep {args}`; desired-running tasks: {states:?}",
            running.len()
        ))
    }
}

async fn swarm_update(docker: &Docker, change: impl FnOnce(&mut ServiceSpec)) {
    let service = docker
        .inspect_service(SWARM_SERVICE, None::<InspectServiceOptions>)
        .await
        .expect("inspect the swarm service");
    let mut spec = service.spec.expect("a service spec");
    change(&mut spec);
    let version = service.version.and_then(|v| v.index).expect("a version");
    docker
        .update_service(
            SWARM_SERVICE,
            spec,
            UpdateServiceOptions {
                version: version as i32,
                ..Default::default()
            },
            None,
        )
        .await
        .expect("update the swarm service");
}

async fn swarm_heal(docker: &Docker, o: Options, args: &str, what: &str) -> Vec<f64> {
    let n = o.replicas;
    let mut samples = Vec::new();
    for i in 0..o.repeats {
        let before = poll_until(o.timeout, "Swarm: all replicas running", || {
            swarm_running(docker, n, args)
        })
        .await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let known: HashSet<String> = swarm_tasks(docker, false)
            .await
            .into_iter()
            .map(|t| t.0)
            .chain(before)
            .collect();
        let filters = HashMap::from([
            ("label".to_owned(), vec![SWARM_LABEL.to_owned()]),
            ("status".to_owned(), vec!["running".to_owned()]),
        ]);
        let victim = docker
            .list_containers(Some(ListContainersOptions {
                filters: Some(filters),
                ..Default::default()
            }))
            .await
            .expect("list swarm containers")
            .into_iter()
            .find_map(|c| c.id)
            .expect("a running swarm container");
        let t0 = Instant::now();
        docker
            .kill_container(&victim, None)
            .await
            .expect("kill a swarm container");
        poll_until(o.timeout, "Swarm: a replacement task running", || {
            let known = &known;
            async move {
                let running = swarm_running(docker, n, args).await?;
                if running.iter().any(|id| !known.contains(id)) {
                    Ok(())
                } else {
                    Err("no new task running yet".to_owned())
                }
            }
        })
        .await;
        let took = t0.elapsed().as_secs_f64();
        println!(
            "Swarm ({what}): kill {} -> replacement running after {took:.3} s",
            i + 1
        );
        samples.push(took);
    }
    samples
}

async fn bench_swarm(docker: &Docker, o: Options, image: &str) -> Figures {
    let n = o.replicas;
    let mut f = Figures::default();

    // 1. Create.
    let t0 = Instant::now();
    docker
        .create_service(swarm_spec(image, "3600", n), None)
        .await
        .expect("create the swarm service");
    poll_until(o.timeout, "Swarm: all replicas running", || {
        swarm_running(docker, n, "3600")
    })
    .await;
    f.create = t0.elapsed().as_secs_f64();
    println!("Swarm: {n} replicas running after {:.3} s", f.create);

    // 2. Self-healing, default restart policy (restart delay 5 s).
    f.heal = swarm_heal(docker, o, "3600", "default restart policy").await;

    // 3. Rolling update: all at once, start-first.
    poll_until(o.timeout, "Swarm: all replicas running", || {
        swarm_running(docker, n, "3600")
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let t0 = Instant::now();
    swarm_update(docker, |spec| {
        if let Some(c) = spec
            .task_template
            .as_mut()
            .and_then(|t| t.container_spec.as_mut())
        {
            c.args = Some(vec!["sleep".into(), "3601".into()]);
        }
        let update = spec.update_config.get_or_insert_with(Default::default);
        update.parallelism = Some(n as i64);
        update.order = Some(ServiceSpecUpdateConfigOrderEnum::START_FIRST);
    })
    .await;
    let (mut done, mut converged) = (None, None);
    let deadline = Instant::now() + o.timeout;
    loop {
        let state = docker
            .inspect_service(SWARM_SERVICE, None::<InspectServiceOptions>)
            .await
            .expect("inspect the swarm service")
            .update_status
            .and_then(|u| u.state);
        let tasks = swarm_running(docker, n, "3601").await;
        if done.is_none() && state == Some(ServiceUpdateStatusStateEnum::COMPLETED) && tasks.is_ok()
        {
            done = Some(t0.elapsed().as_secs_f64());
        }
        let docker_state = docker_converged(docker, SWARM_LABEL, "3601", n).await;
        if converged.is_none() && docker_state.is_ok() {
            converged = Some(t0.elapsed().as_secs_f64());
        }
        if done.is_some() && converged.is_some() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {:?} waiting for Swarm's rolling update; completed after {done:?}, Docker converged after {converged:?}; update state {state:?}; tasks {tasks:?}; Docker: {docker_state:?}",
            o.timeout
        );
        tokio::time::sleep(POLL).await;
    }
    f.rollout_done = done.unwrap_or(f64::NAN);
    f.converged = converged.unwrap_or(f64::NAN);
    println!(
        "Swarm: rolling update completed after {:.3} s, Docker converged after {:.3} s",
        f.rollout_done, f.converged
    );

    // 2b. Self-healing without the restart delay (not timed: this update
    // redeploys every task).
    swarm_update(docker, |spec| {
        if let Some(t) = spec.task_template.as_mut() {
            let policy = t
                .restart_policy
                .get_or_insert_with(TaskSpecRestartPolicy::default);
            policy.delay = Some(0);
        }
        spec.update_config = Some(ServiceSpecUpdateConfig {
            parallelism: Some(n as i64),
            order: Some(ServiceSpecUpdateConfigOrderEnum::START_FIRST),
            ..Default::default()
        });
    })
    .await;
    poll_until(
        o.timeout,
        "Swarm: the restart-delay update",
        || async move {
            let state = docker
                .inspect_service(SWARM_SERVICE, None::<InspectServiceOptions>)
                .await
                .expect("inspect the swarm service")
                .update_status
                .and_then(|u| u.state);
            if state == Some(ServiceUpdateStatusStateEnum::COMPLETED) {
                swarm_running(docker, n, "3601").await.map(|_| ())
            } else {
                Err(format!("update state {state:?}"))
            }
        },
    )
    .await;
    f.heal_no_delay = swarm_heal(docker, o, "3601", "restart delay 0s").await;
    f
}

/// Removes the swarm service, waits for its containers to go, and leaves
/// the swarm if this run joined it. Best effort: reports, never panics.
async fn cleanup_swarm(docker: &Docker, setup: Option<SwarmSetup>, timeout: Duration) {
    if docker.delete_service(SWARM_SERVICE).await.is_ok() {
        let deadline = Instant::now() + timeout;
        while docker_cli(&["ps", "-aq", "--filter", &format!("label={SWARM_LABEL}")])
            .is_ok_and(|ids| !ids.is_empty())
        {
            if Instant::now() > deadline {
                eprintln!("cleanup: swarm containers still present after {timeout:?}");
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let Some(setup) = setup.filter(|s| s.initialised) else {
        return;
    };
    if let Err(e) = docker_cli(&["swarm", "leave", "--force"]) {
        eprintln!("cleanup: docker swarm leave --force failed: {e}");
    }
    if !setup.had_gwbridge
        && docker_cli(&["network", "inspect", "docker_gwbridge"]).is_ok()
        && let Err(e) = docker_cli(&["network", "rm", "docker_gwbridge"])
    {
        eprintln!("cleanup: docker network rm docker_gwbridge failed: {e}");
    }
}

// --------------------------------------------------------------------- main

fn row(name: &str, berth: f64, swarm: f64, target: &str) {
    println!(
        "| {name:<52} | {berth:>8.3} s | {swarm:>8.3} s | {:>6.2}x | {target} |",
        berth / swarm
    );
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "MISSED" }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| berth_tests::flag_value(&args, name);
    let o = Options {
        replicas: arg("--replicas").and_then(|v| v.parse().ok()).unwrap_or(20),
        repeats: arg("--repeats").and_then(|v| v.parse().ok()).unwrap_or(3),
        timeout: Duration::from_secs(arg("--timeout").and_then(|v| v.parse().ok()).unwrap_or(120)),
    };
    let swarm_first = args.iter().any(|a| a == "--swarm-first");
    let by_id = args.iter().any(|a| a == "--swarm-image-by-id");

    let cluster = TestCluster::start(1).await;
    let docker = cluster.docker.clone();
    // Before joining a swarm: nothing to undo if this fails.
    let bare = bare_docker(&docker, 5).await;
    println!(
        "bare Docker create+start: median {:.3} s of {:?}",
        median(&bare),
        bare
    );
    // A service left over by an interrupted run.
    let _ = docker.delete_service(SWARM_SERVICE).await;
    let setup = swarm_join();
    // Swarm tries to pull a tag on every task start (failing fast here: no
    // registry); an image id skips the pull.
    let swarm_image = if by_id {
        docker_cli(&["image", "inspect", "--format", "{{.Id}}", TEST_IMAGE]).expect("image id")
    } else {
        TEST_IMAGE.to_owned()
    };
    println!(
        "berth-service-bench: {} replicas, {} kills each, image {TEST_IMAGE} (Swarm: {swarm_image}), release binaries from {}",
        o.replicas,
        o.repeats,
        berth_tests::bin_dir().display()
    );

    // Each phase runs in its own task so a panic (a timeout) still lets the
    // cleanup below run.
    let cluster = std::sync::Arc::new(cluster);
    let berth_phase = {
        let cluster = cluster.clone();
        async move {
            let result = tokio::spawn({
                let cluster = cluster.clone();
                async move { bench_berth(&cluster, o).await }
            })
            .await;
            cleanup_berth(&cluster, o.timeout).await;
            result
        }
    };
    let swarm_phase = {
        let docker = docker.clone();
        let image = swarm_image.clone();
        async move {
            let result = tokio::spawn({
                let docker = docker.clone();
                async move { bench_swarm(&docker, o, &image).await }
            })
            .await;
            cleanup_swarm(&docker, None, o.timeout).await;
            result
        }
    };
    // A phase after a failed one is skipped (None).
    let (berth, swarm) = if swarm_first {
        let s = swarm_phase.await;
        let b = if s.is_ok() {
            Some(berth_phase.await)
        } else {
            None
        };
        (b, Some(s))
    } else {
        let b = berth_phase.await;
        let s = if b.is_ok() {
            Some(swarm_phase.await)
        } else {
            None
        };
        (Some(b), s)
    };
    cleanup_swarm(&docker, Some(setup), o.timeout).await;
    drop(cluster);
    let (berth, swarm) = match (berth, swarm) {
        (Some(Ok(b)), Some(Ok(s))) => (b, s),
        (b, s) => {
            let describe = |r: Option<Result<Figures, tokio::task::JoinError>>| match r {
                None => "not run".to_owned(),
                Some(Ok(_)) => "ok".to_owned(),
                Some(Err(e)) => e.to_string(),
            };
            eprintln!(
                "berth-service-bench failed (Berth: {}; Swarm: {}); everything it created is removed",
                describe(b),
                describe(s)
            );
            std::process::exit(1);
        }
    };

    let n = o.replicas;
    let bare = median(&bare);
    let heal_berth = median(&berth.heal);
    println!(
        "\nBerth self-healing samples {:?}; Swarm {:?}; Swarm (restart delay 0s) {:?}",
        berth.heal, swarm.heal, swarm.heal_no_delay
    );
    println!("\n| measurement | Berth | Swarm | Berth/Swarm | target |\n|---|---|---|---|---|");
    row(
        &format!("create {n} replicas -> {n} running"),
        berth.create,
        swarm.create,
        &format!(
            "Berth <= 0.6x Swarm: {}",
            verdict(berth.create <= 0.6 * swarm.create)
        ),
    );
    row(
        &format!("self-heal, median of {} (Swarm default policy)", o.repeats),
        heal_berth,
        median(&swarm.heal),
        &format!(
            "Berth < 1 s + bare ({:.3} s): {}",
            1.0 + bare,
            verdict(heal_berth < 1.0 + bare)
        ),
    );
    row(
        "self-heal, median (Swarm --restart-delay 0s)",
        heal_berth,
        median(&swarm.heal_no_delay),
        "-",
    );
    row(
        &format!("rolling update {n} -> rollout completed"),
        berth.rollout_done,
        swarm.rollout_done,
        &format!(
            "Berth faster: {}",
            verdict(berth.rollout_done < swarm.rollout_done)
        ),
    );
    row(
        &format!("rolling update {n} -> Docker converged"),
        berth.converged,
        swarm.converged,
        "-",
    );
    println!(
        "| {:<52} | {bare:>8.3} s | | | reference |",
        "bare Docker create+start (median of 5)"
    );
}
