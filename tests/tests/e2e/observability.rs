//! Operating Berth: a real Prometheus server scrapes both binaries and sees
//! what they do through its own query API; `promtool` accepts both
//! expositions; the agent's /healthz and /readyz say what holds; the
//! control plane logs each request and task transition once.

use crate::support::{container, register, wait_status};
use berth_tests::prometheus::{Prometheus, promtool_check};
use berth_tests::{TestCluster, eventually, http_get, http_get_with};
use std::time::Duration;

#[tokio::test]
async fn prometheus_scrapes_both_binaries_and_sees_tasks_run() {
    let cluster = TestCluster::start(1).await;
    let cp = cluster.control_plane.metrics;
    let agent = cluster.agents[0].metrics;
    let prometheus = Prometheus::start(
        &cluster.dir().join("prometheus"),
        &[("berth-control-plane", cp), ("berth-agent", agent)],
    );

    let up = eventually(Duration::from_secs(30), "both targets up", || async {
        let up = prometheus.query("up").await;
        (up.len() == 2 && up.iter().all(|(_, v)| *v == 1.0)).then_some(up)
    })
    .await;
    let jobs: Vec<&str> = up.iter().filter_map(|(m, _)| m["job"].as_str()).collect();
    assert!(
        jobs.contains(&"berth-control-plane") && jobs.contains(&"berth-agent"),
        "{up:?}"
    );
    assert_eq!(
        prometheus.scalar("berth_agent_connected").await,
        Some(1.0),
        "the agent's session is open"
    );
    let run_tasks_before = prometheus
        .scalar(r#"sum(berth_api_requests_total{action="RunTask",code="200"})"#)
        .await
        .unwrap_or(0.0);
    let starts_before = prometheus
        .scalar("berth_agent_task_start_duration_seconds_count")
        .await
        .unwrap_or(0.0);

    let family = register(
        &cluster.ecs,
        "observed",
        vec![container("main", &["sleep", "300"])],
    )
    .await;
    let out = cluster
        .ecs
        .run_task()
        .task_definition(&family)
        .count(2)
        .send()
        .await
        .expect("RunTask");
    assert!(out.failures().is_empty(), "{:?}", out.failures());
    for t in out.tasks() {
        wait_status(
            &cluster.ecs,
            t.task_arn().expect("arn"),
            "RUNNING",
            Duration::from_secs(60),
        )
        .await;
    }

    // The counters move, as Prometheus sees them.
    eventually(
        Duration::from_secs(30),
        "RunTask, task and Docker counters to move in Prometheus",
        || async {
            let run_tasks = prometheus
                .scalar(r#"sum(berth_api_requests_total{action="RunTask",code="200"})"#)
                .await?;
            let running = prometheus
                .scalar(r#"sum(berth_tasks{last_status="RUNNING"})"#)
                .await?;
            let starts = prometheus
                .scalar("berth_agent_task_start_duration_seconds_count")
                .await?;
            let agent_running = prometheus
                .scalar(r#"berth_agent_tasks{last_status="RUNNING"}"#)
                .await?;
            let creates = prometheus
                .scalar(
                    r#"berth_agent_docker_request_duration_seconds_count{call="container create"}"#,
                )
                .await?;
            let commits = prometheus
                .scalar("berth_store_commit_duration_seconds_count")
                .await?;
            (run_tasks >= run_tasks_before + 1.0
                && running >= 2.0
                && starts >= starts_before + 2.0
                && agent_running >= 2.0
                && creates >= 2.0
                && commits >= 1.0)
                .then_some(())
        },
    )
    .await;
    let instances = prometheus.query("berth_container_instances").await;
    assert!(
        instances.iter().any(|(m, v)| m["connected"] == "true"
            && m["status"] == "ACTIVE"
            && m["cluster"] == "default"
            && *v == 1.0),
        "{instances:?}"
    );
    for expr in [
        "berth_agent_sessions",
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
        "process_open_fds",
        "process_start_time_seconds",
        "berth_build_info",
    ] {
        let series = prometheus.query(expr).await;
        assert!(
            !series.is_empty() && series.iter().all(|(_, v)| *v > 0.0),
            "{expr}: {series:?}"
        );
    }

    // Both expositions, after that activity, pass promtool without a
    // warning; Prometheus itself is answered in OpenMetrics.
    let mut scraped = String::new();
    for (what, addr) in [("control plane", cp), ("agent", agent)] {
        let (status, text) = http_get(addr, "/metrics").await;
        scraped.push_str(&text);
        assert_eq!(status, 200, "{what}");
        assert_eq!(promtool_check(&text), "", "{what}:\n{text}");
        let (_, open) = http_get_with(
            addr,
            "/metrics",
            &[("Accept", "application/openmetrics-text;version=1.0.0")],
        )
        .await;
        assert!(open.trim_end().ends_with("# EOF"), "{what}: {open}");
        assert!(!text.contains("task/"), "{what}: no task ids in labels");
    }

    // The Grafana dashboard's queries are valid PromQL over metrics the
    // binaries export.
    dashboard_queries_work(&prometheus, &scraped).await;

    // The agent's health and readiness.
    let (status, body) = http_get(agent, "/healthz").await;
    assert_eq!((status, body.trim()), (200, "ok: alive, loops turning"));
    let (status, body) = http_get(agent, "/readyz").await;
    assert_eq!(
        (status, body.trim()),
        (200, "ready: session open, Docker Engine answering")
    );

    // One info line per request and per task transition, in the control
    // plane's log.
    let log = std::fs::read_to_string(cluster.dir().join("control-plane.log")).expect("log");
    let task_id = out.tasks()[0]
        .task_arn()
        .and_then(|a| a.rsplit('/').next())
        .expect("task id")
        .to_owned();
    let transitions: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("task transition") && l.contains(&task_id))
        .collect();
    assert_eq!(
        transitions.len(),
        1,
        "one PENDING -> RUNNING line: {transitions:?}"
    );
    assert!(
        transitions[0].contains("from=\"PENDING\"") && transitions[0].contains("to=\"RUNNING\""),
        "{transitions:?}"
    );
    let run_task_lines = log
        .lines()
        .filter(|l| l.contains("ECS API request") && l.contains("RunTask"))
        .count();
    assert_eq!(run_task_lines, 1, "RunTask logged once");
}

/// Every query of `deploy/grafana/berth-dashboard.json` runs on the real
/// Prometheus, and every metric it names is in a scrape.
async fn dashboard_queries_work(prometheus: &Prometheus, scraped: &str) {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/grafana/berth-dashboard.json"
    );
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("the dashboard")).expect("JSON");
    let mut exprs: Vec<String> = dashboard["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .filter_map(|t| t["expr"].as_str().map(str::to_owned))
        .collect();
    assert!(exprs.len() > 20, "{exprs:?}");
    for v in dashboard["templating"]["list"]
        .as_array()
        .expect("variables")
    {
        if let Some(q) = v["query"]["query"].as_str() {
            exprs.push(
                q.replace("label_values(", "")
                    .split(',')
                    .next()
                    .unwrap_or_default()
                    .to_owned(),
            );
        }
    }
    // Declared families count even with no sample yet (no placement
    // failure has happened): a histogram's series carry its suffixes.
    let mut names = std::collections::BTreeSet::new();
    for l in scraped.lines() {
        if let Some(decl) = l.strip_prefix("# TYPE ") {
            let mut parts = decl.split(' ');
            let (name, kind) = (parts.next().unwrap_or_default(), parts.next());
            names.insert(name.to_owned());
            if kind == Some("histogram") {
                for suffix in ["_bucket", "_sum", "_count"] {
                    names.insert(format!("{name}{suffix}"));
                }
            }
        }
    }
    for expr in &exprs {
        let concrete = expr
            .replace("$__rate_interval", "1m")
            .replace("$cp_job", "berth-control-plane")
            .replace("$agent_job", "berth-agent")
            .replace("$cluster", ".*");
        prometheus.query(&concrete).await;
        for word in concrete.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
            if (word.starts_with("berth_") || word.starts_with("process_"))
                && !word.ends_with("_job")
            {
                assert!(
                    names.contains(word),
                    "the dashboard's {expr} names {word}, which neither binary exports"
                );
            }
        }
    }
}
