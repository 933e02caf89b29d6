//! `berth-placement-bench`: placement throughput and RunTask latency of the
//! control plane, against N simulated agents.
//!
//! ```sh
//! cargo build --release --workspace
//! target/release/berth-placement-bench [--instances 100,1000,5000] [--runtasks 1000] [--clients 16]
//! ```
//!
//! For each N it starts a fresh `berth-control-plane` (the release binary
//! next to it, on a temporary data directory), registers N simulated agents
//! through the real agent gRPC API (each opens a session and reports every
//! task it is given RUNNING at once), then drives `--runtasks` RunTask calls
//! of `count` 10 through the ECS JSON API from `--clients` concurrent
//! aws-sdk-ecs clients. A RunTask answers only after its tasks are on disk,
//! so "placed" means durably stored. It prints tasks placed per second and
//! RunTask latency percentiles.
//!
//! `--stop`: every task exits as soon as it runs (the simulated agent
//! reports it RUNNING, then STOPPED), so STOPPED history piles up as in
//! real life. `--rss-every K`: after every K RunTasks, print the task
//! records so far, the control plane's resident memory (and peak), and the
//! placement rate of that stretch: the memory curve, and whether placement
//! slows as records accumulate.
//!
//! `--restart`: afterwards, kill -9 the control plane and time its restart
//! until it is ready again with all those records (startup cost).
//!
//! `--console`: afterwards, sign in to the web console and time its pages
//! (each fetched 20 times): the control plane's own time from the
//! `Server-Timing` header and the client's round trip, p50 and max.
//!
//! `--reconnect N` instead measures how N simulated agents, following the
//! real agent's reconnect back-off, spread their return after a kill -9 and
//! restart of the control plane.

use berth_proto::agent::v1 as pb;
use berth_tests::ControlPlane;
use berth_tests::sim::SimAgent;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tonic::transport::Channel;

/// Sessions share HTTP/2 connections, as many agents behind one NAT would not,
/// but 5,000 TCP connections from one process measure the kernel, not Berth.
const SESSIONS_PER_CONNECTION: usize = 100;

/// One simulated agent (the shared `berth_tests::sim`): registers, holds a
/// session, reports every task it is given RUNNING at once.
async fn simulated_agent(
    channel: Channel,
    n: usize,
    exits: bool,
    reported: Arc<AtomicU64>,
    ready: mpsc::Sender<()>,
) {
    let mut agent = SimAgent::register(
        channel,
        pb::RegisterRequest {
            instance_id: format!("sim-{n}"),
            cpu: 1_000_000,
            memory_mib: 1_000_000,
            attributes: vec![pb::Attribute {
                name: "zone".into(),
                value: Some(format!("z{}", n % 3)),
            }],
            ..SimAgent::request()
        },
    )
    .await;
    agent.exits = exits;
    let _ = ready.send(()).await;
    agent
        .autopilot(|sent| {
            reported.fetch_add(sent as u64, Ordering::Relaxed);
        })
        .await;
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

struct Outcome {
    placed: usize,
    failed: usize,
    seconds: f64,
    latencies_ms: Vec<f64>,
}

async fn drive(ecs: aws_sdk_ecs::Client, runtasks: usize, clients: usize) -> Outcome {
    let remaining = Arc::new(AtomicU64::new(runtasks as u64));
    let started = Instant::now();
    let workers: Vec<_> = (0..clients)
        .map(|_| {
            let ecs = ecs.clone();
            let remaining = remaining.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let (mut placed, mut failed) = (0, 0);
                while remaining
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |r| r.checked_sub(1))
                    .is_ok()
                {
                    let t0 = Instant::now();
                    let out = ecs
                        .run_task()
                        .task_definition("bench")
                        .count(10)
                        .send()
                        .await
                        .expect("RunTask");
                    latencies.push(t0.elapsed().as_secs_f64() * 1000.0);
                    placed += out.tasks().len();
                    failed += out.failures().len();
                }
                (latencies, placed, failed)
            })
        })
        .collect();
    let mut outcome = Outcome {
        placed: 0,
        failed: 0,
        seconds: 0.0,
        latencies_ms: Vec::new(),
    };
    for w in workers {
        let (l, p, f) = w.await.expect("worker");
        outcome.latencies_ms.extend(l);
        outcome.placed += p;
        outcome.failed += f;
    }
    outcome.seconds = started.elapsed().as_secs_f64();
    outcome.latencies_ms.sort_by(f64::total_cmp);
    outcome
}

/// `VmRSS` and `VmHWM` of a process, MiB.
fn memory_mib(pid: u32) -> (f64, f64) {
    berth_tests::process_memory_kib(pid).map_or((f64::NAN, f64::NAN), |(rss, peak)| {
        (rss as f64 / 1024.0, peak as f64 / 1024.0)
    })
}

/// How the bench runs.
#[derive(Debug, Clone, Copy)]
struct Options {
    runtasks: usize,
    clients: usize,
    exits: bool,
    rss_every: Option<usize>,
    restart: bool,
    console: bool,
}

async fn bench(instances: usize, options: Options) {
    let Options {
        runtasks,
        clients,
        exits,
        rss_every,
        restart,
        console,
    } = options;
    let dir = tempfile::tempdir().expect("temp dir");
    let any: SocketAddr = "127.0.0.1:0".parse().expect("address");
    let mut cp = ControlPlane::start(
        &dir.path().join("cp"),
        any,
        any,
        &dir.path().join("control-plane.log"),
    );
    let ecs = berth_tests::ecs_client(cp.http);

    let t0 = Instant::now();
    let reported = Arc::new(AtomicU64::new(0));
    let (ready_tx, mut ready_rx) = mpsc::channel(instances.max(1));
    let mut channel = None;
    for n in 0..instances {
        if n % SESSIONS_PER_CONNECTION == 0 {
            channel = Some(
                tonic::transport::Endpoint::from_shared(cp.grpc_url())
                    .expect("url")
                    .connect()
                    .await
                    .expect("connect"),
            );
        }
        let channel = channel.clone().expect("a channel");
        tokio::spawn(simulated_agent(
            channel,
            n,
            exits,
            reported.clone(),
            ready_tx.clone(),
        ));
    }
    for _ in 0..instances {
        ready_rx.recv().await.expect("agent ready");
    }
    let registration = t0.elapsed();

    ecs.register_task_definition()
        .family("bench")
        .container_definitions(
            aws_sdk_ecs::types::ContainerDefinition::builder()
                .name("app")
                .image("bench")
                .memory(16)
                .cpu(10)
                .build(),
        )
        .send()
        .await
        .expect("register");
    // Warm-up: connections, first pages of the database.
    drive(ecs.clone(), clients.min(runtasks), clients).await;
    let pid = cp.pid().expect("the control plane runs");
    let out = match rss_every {
        None => drive(ecs.clone(), runtasks, clients).await,
        Some(step) => {
            let (rss, _) = memory_mib(pid);
            println!(
                "instances {instances:>5}  records {:>9}  rss {rss:>7.1} MiB",
                clients.min(runtasks) * 10
            );
            let mut total = Outcome {
                placed: 0,
                failed: 0,
                seconds: 0.0,
                latencies_ms: Vec::new(),
            };
            let mut done = 0;
            while done < runtasks {
                let n = step.min(runtasks - done);
                let part = drive(ecs.clone(), n, clients).await;
                done += n;
                let (rss, peak) = memory_mib(pid);
                println!(
                    "instances {instances:>5}  records {:>9}  rss {rss:>7.1} MiB  peak {peak:>7.1} MiB  {:>7.0} tasks placed/s  p99 {:>6.1} ms",
                    (done + clients.min(runtasks)) * 10,
                    part.placed as f64 / part.seconds,
                    percentile(&part.latencies_ms, 0.99),
                );
                total.placed += part.placed;
                total.failed += part.failed;
                total.seconds += part.seconds;
                total.latencies_ms.extend(part.latencies_ms);
            }
            total.latencies_ms.sort_by(f64::total_cmp);
            total
        }
    };
    let placed_per_second = out.placed as f64 / out.seconds;
    println!(
        "instances {instances:>5}  registration {:>6.2} s  RunTask x{runtasks} (count 10, {clients} clients) in {:>6.2} s: \
         {:>7.0} tasks placed/s ({} placed, {} failed)  RunTask p50 {:>6.1} ms  p99 {:>6.1} ms  max {:>6.1} ms  per task {:>5.1} us",
        registration.as_secs_f64(),
        out.seconds,
        placed_per_second,
        out.placed,
        out.failed,
        percentile(&out.latencies_ms, 0.5),
        percentile(&out.latencies_ms, 0.99),
        out.latencies_ms.last().copied().unwrap_or(f64::NAN),
        out.seconds * 1e6 / out.placed.max(1) as f64,
    );
    // Let the agents' RUNNING (and STOPPED) reports drain before the next
    // size.
    let per_task = if exits { 2 } else { 1 };
    let expected = ((out.placed + clients.min(runtasks) * 10) * per_task) as u64;
    let deadline = Instant::now() + Duration::from_secs(60);
    while reported.load(Ordering::Relaxed) < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (rss, peak) = memory_mib(pid);
    println!(
        "                 agents sent {} of {} reports; control plane rss {rss:.1} MiB, peak {peak:.1} MiB",
        reported.load(Ordering::Relaxed),
        expected
    );
    if console {
        console_timings(&cp, &ecs).await;
    }
    if restart {
        // kill -9, then start on the same data directory until ready.
        // Ready means answering: the listeners are bound (and the ready
        // line printed) before the state is loaded.
        let t0 = Instant::now();
        cp.restart();
        let ecs = berth_tests::ecs_client(cp.http);
        ecs.list_clusters().send().await.expect("ListClusters");
        let (rss, _) = memory_mib(cp.pid().expect("restarted"));
        println!(
            "                 restart with {} task records: answering in {:.2} s after kill -9, rss {rss:.1} MiB",
            out.placed + clients.min(runtasks) * 10,
            t0.elapsed().as_secs_f64()
        );
    }
    drop(cp);
}

/// One HTTP/1.1 exchange: (status, head, body).
async fn http(addr: SocketAddr, request: String) -> (u16, String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(request.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.expect("read");
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, head.to_owned(), body.to_owned())
}

/// `--console`: signs in to the web console and times its pages.
async fn console_timings(cp: &ControlPlane, ecs: &aws_sdk_ecs::Client) {
    let addr = cp.http;
    let form = format!(
        "access_key_id={}&secret_access_key={}&next=%2Fconsole%2Fclusters",
        berth_tests::ACCESS_KEY_ID,
        berth_tests::SECRET_ACCESS_KEY.replace('/', "%2F")
    );
    let (status, head, _) = http(
        addr,
        format!(
            "POST /console/sign-in HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{form}",
            form.len()
        ),
    )
    .await;
    let cookie = head
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .and_then(|c| c.split(';').next())
        .unwrap_or_else(|| panic!("console sign-in answered {status} without a cookie"))
        .to_owned();
    let instance = ecs
        .list_container_instances()
        .max_results(1)
        .send()
        .await
        .expect("ListContainerInstances")
        .container_instance_arns()
        .first()
        .and_then(|a| a.rsplit('/').next())
        .unwrap_or_default()
        .to_owned();
    let mut task = String::new();
    for status in [
        aws_sdk_ecs::types::DesiredStatus::Running,
        aws_sdk_ecs::types::DesiredStatus::Stopped,
    ] {
        let listed = ecs
            .list_tasks()
            .desired_status(status)
            .max_results(1)
            .send()
            .await
            .expect("ListTasks");
        if let Some(arn) = listed.task_arns().first() {
            task = arn.rsplit('/').next().unwrap_or_default().to_owned();
            break;
        }
    }
    let pages = [
        "/console/clusters".to_owned(),
        "/console/clusters/default".to_owned(),
        "/console/clusters/default/tasks".to_owned(),
        "/console/clusters/default/tasks?status=STOPPED".to_owned(),
        format!("/console/clusters/default/instances/{instance}"),
        format!("/console/clusters/default/tasks/{task}"),
        "/console/clusters/default/run".to_owned(),
        "/console/task-definitions/bench/1".to_owned(),
    ];
    for page in pages {
        let mut server = Vec::new();
        let mut client = Vec::new();
        let mut last = (0, 0);
        for _ in 0..20 {
            let t0 = Instant::now();
            let (status, head, body) = http(
                addr,
                format!("GET {page} HTTP/1.1\r\nHost: {addr}\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"),
            )
            .await;
            client.push(t0.elapsed().as_secs_f64() * 1000.0);
            let dur = head
                .lines()
                .find_map(|l| l.strip_prefix("server-timing: app;dur="))
                .and_then(|d| d.trim().parse::<f64>().ok())
                .unwrap_or(f64::NAN);
            server.push(dur);
            last = (status, body.len());
        }
        server.sort_by(f64::total_cmp);
        client.sort_by(f64::total_cmp);
        println!(
            "                 console {page:<60} {} {:>7} B  server p50 {:>6.2} ms max {:>6.2} ms  round trip p50 {:>6.2} ms",
            last.0,
            last.1,
            percentile(&server, 0.5),
            server.last().copied().unwrap_or(f64::NAN),
            percentile(&client, 0.5),
        );
    }
}

/// `--reconnect N`: how the agents' reconnect back-off spreads N simulated
/// agents over time when the control plane comes back after a restart.
/// Each agent follows the real agent's policy (`berth_agent::session`:
/// 250 ms doubling to `MAX_BACKOFF`, each wait jittered to 50-100 %).
async fn reconnect_spread(instances: usize) {
    let dir = tempfile::tempdir().expect("temp dir");
    let any: SocketAddr = "127.0.0.1:0".parse().expect("address");
    let mut cp = ControlPlane::start(&dir.path().join("cp"), any, any, &dir.path().join("cp.log"));
    let restarted: Arc<std::sync::Mutex<Option<Instant>>> = Arc::default();
    let (back_tx, mut back_rx) = mpsc::channel::<Duration>(instances);
    let (ready_tx, mut ready_rx) = mpsc::channel::<()>(instances);
    let mut channel = None;
    for n in 0..instances {
        if n % SESSIONS_PER_CONNECTION == 0 {
            channel = Some(
                tonic::transport::Endpoint::from_shared(cp.grpc_url())
                    .expect("url")
                    .connect_timeout(berth_agent::session::CONNECT_TIMEOUT)
                    .connect_lazy(),
            );
        }
        let channel = channel.clone().expect("a channel");
        let (restarted, back_tx, ready_tx) = (restarted.clone(), back_tx.clone(), ready_tx.clone());
        tokio::spawn(async move {
            let request = pb::RegisterRequest {
                instance_id: format!("sim-{n}"),
                ..SimAgent::request()
            };
            let agent = SimAgent::register(channel.clone(), request.clone()).await;
            let (arn, secret) = (agent.arn.clone(), agent.secret.clone());
            let _ = ready_tx.send(()).await;
            agent.autopilot(|_| {}).await;
            // The session ended: reconnect as the agent does.
            let mut backoff = Duration::from_millis(250);
            loop {
                tokio::time::sleep(berth_agent::session::jittered(backoff)).await;
                let again = pb::RegisterRequest {
                    container_instance_arn: Some(arn.clone()),
                    instance_secret: Some(secret.clone()),
                    ..request.clone()
                };
                if let Ok(agent) = SimAgent::try_register(channel.clone(), again).await {
                    let since = restarted.lock().expect("lock").map(|t| t.elapsed());
                    let _ = back_tx.send(since.unwrap_or_default()).await;
                    agent.autopilot(|_| {}).await;
                    return;
                }
                backoff = (backoff * 2).min(berth_agent::session::MAX_BACKOFF);
            }
        });
    }
    for _ in 0..instances {
        ready_rx.recv().await.expect("agent ready");
    }
    // kill -9 and start again on the same ports; time from ready.
    let killed = Instant::now();
    cp.restart();
    *restarted.lock().expect("lock") = Some(Instant::now());
    let down = killed.elapsed();
    let mut times = Vec::with_capacity(instances);
    let deadline = Instant::now() + Duration::from_secs(60);
    while times.len() < instances && Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(1), back_rx.recv()).await {
            Ok(Some(t)) => times.push(t.as_secs_f64()),
            Ok(None) => break,
            Err(_) => {}
        }
    }
    times.sort_by(f64::total_cmp);
    println!(
        "reconnect after a control-plane restart (kill -9 to ready: {:.2} s), {instances} simulated agents (back-off cap {:?}, jittered 50-100 %): {} back; \
         from ready: p50 {:.2} s  p90 {:.2} s  p99 {:.2} s  max {:.2} s",
        down.as_secs_f64(),
        berth_agent::session::MAX_BACKOFF,
        times.len(),
        percentile(&times, 0.5),
        percentile(&times, 0.9),
        percentile(&times, 0.99),
        times.last().copied().unwrap_or(f64::NAN),
    );
    let mut line = String::from("  per 0.5 s:");
    let mut bucket = 0.0;
    while bucket <= times.last().copied().unwrap_or(0.0) {
        let n = times
            .iter()
            .filter(|t| **t >= bucket && **t < bucket + 0.5)
            .count();
        line.push_str(&format!(" {n}"));
        bucket += 0.5;
    }
    println!("{line}");
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| berth_tests::flag_value(&args, name);
    let sizes: Vec<usize> = arg("--instances")
        .unwrap_or_else(|| "100,1000,5000".to_owned())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let runtasks: usize = arg("--runtasks")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let clients: usize = arg("--clients").and_then(|v| v.parse().ok()).unwrap_or(16);
    let options = Options {
        runtasks,
        clients,
        exits: args.iter().any(|a| a == "--stop"),
        rss_every: arg("--rss-every").and_then(|v| v.parse().ok()),
        restart: args.iter().any(|a| a == "--restart"),
        console: args.iter().any(|a| a == "--console"),
    };
    println!(
        "berth-placement-bench: release binaries from {}",
        berth_tests::bin_dir().display()
    );
    if let Some(n) = arg("--reconnect").and_then(|v| v.parse().ok()) {
        reconnect_spread(n).await;
        return;
    }
    for n in sizes {
        bench(n, options).await;
    }
}
