//! Service tier, services: the control plane in-process with a scripted
//! agent that carries out its desired set (reports RUNNING for tasks it is
//! given, STOPPED for tasks it is told to stop) and kills tasks on cue.

mod support;

use berth_proto::agent::v1 as pb;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use support::{ScriptedAgent, Server, ecs, ok, register_family, start};

/// A simulated agent that carries out its desired set, and waits for a
/// service to reach a state.
struct Runner {
    agent: ScriptedAgent,
}

impl Runner {
    fn new(agent: ScriptedAgent) -> Self {
        Runner { agent }
    }

    async fn apply(&mut self) {
        self.agent.apply().await;
    }

    /// Follows desired-set changes until `done` holds of the service.
    async fn until(
        &mut self,
        server: &Server,
        service: &str,
        what: &str,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            self.agent.apply().await;
            let s = describe(server, service).await;
            if done(&s) {
                return s;
            }
            assert!(Instant::now() < deadline, "{what}: {s:#}");
            let _ = self.agent.try_next_change(Duration::from_millis(300)).await;
        }
    }

    /// Carries out desired-set changes until `done` holds of the agent.
    async fn settle(&mut self, what: &str, done: impl Fn(&Runner) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !done(self) {
            assert!(Instant::now() < deadline, "{what}");
            let _ = self.agent.try_next_change(Duration::from_millis(200)).await;
            self.apply().await;
        }
    }

    /// The agent sees a task die on its own.
    async fn kill(&mut self, arn: &str) {
        self.agent.kill(arn).await;
    }

    fn running(&self) -> Vec<String> {
        self.agent.running()
    }
}

async fn describe(server: &Server, service: &str) -> Value {
    let v = ok(server, "DescribeServices", json!({"services": [service]})).await;
    v["services"][0].clone()
}

fn steady(s: &Value, desired: i64) -> bool {
    s["deployments"].as_array().map(Vec::len) == Some(1)
        && s["runningCount"] == desired
        && s["desiredCount"] == desired
        && s["deployments"][0]["rolloutState"] == "COMPLETED"
}

#[tokio::test]
async fn a_service_runs_heals_scales_rolls_out_and_drains() {
    let server = start().await;
    let agent = ScriptedAgent::connect(server.grpc, 100_000, 100_000).await;
    let mut runner = Runner::new(agent);
    register_family(&server, "web", 64).await;

    let created = ok(
        &server,
        "CreateService",
        json!({"serviceName": "web", "taskDefinition": "web", "desiredCount": 3, "clientToken": "tok"}),
    )
    .await;
    let arn = created["service"]["serviceArn"]
        .as_str()
        .expect("arn")
        .to_owned();
    assert_eq!(
        arn,
        "arn:aws:ecs:us-east-1:000000000000:service/default/web"
    );
    assert_eq!(created["service"]["status"], "ACTIVE");
    assert_eq!(
        created["service"]["deploymentConfiguration"]["maximumPercent"],
        200
    );
    let deployment = created["service"]["deployments"][0]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    assert!(deployment.starts_with("ecs-svc/"), "{deployment}");

    // Idempotent with the same token and parameters; not otherwise.
    let again = ok(
        &server,
        "CreateService",
        json!({"serviceName": "web", "taskDefinition": "web", "desiredCount": 3, "clientToken": "tok"}),
    )
    .await;
    assert_eq!(again["service"]["serviceArn"], arn);
    let (status, err) = ecs(
        &server,
        "CreateService",
        json!({"serviceName": "web", "taskDefinition": "web", "desiredCount": 4}),
    )
    .await;
    assert_eq!(
        (status, err["__type"].as_str()),
        (400, Some("InvalidParameterException"))
    );
    assert_eq!(err["message"], "Creation of service was not idempotent.");

    let s = runner
        .until(&server, "web", "3 tasks steady", |s| steady(s, 3))
        .await;
    let events: Vec<&str> = s["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["message"].as_str())
        .collect();
    assert!(
        events[0] == "(service web) has reached a steady state.",
        "{events:?}"
    );
    assert!(
        events
            .iter()
            .any(|e| e.starts_with("(service web) has started 3 tasks: (task ")),
        "{events:?}"
    );
    let listed = ok(&server, "ListTasks", json!({"serviceName": "web"})).await;
    assert_eq!(listed["taskArns"].as_array().map(Vec::len), Some(3));
    let tasks = ok(
        &server,
        "DescribeTasks",
        json!({"tasks": listed["taskArns"]}),
    )
    .await;
    for t in tasks["tasks"].as_array().expect("tasks") {
        assert_eq!(t["group"], "service:web");
        assert_eq!(t["startedBy"], deployment.as_str());
    }

    // Self-healing: a task that dies is replaced at once.
    let victim = runner.running()[0].clone();
    let killed_at = Instant::now();
    runner.kill(&victim).await;
    let s = runner
        .until(&server, "web", "replacement running", |s| {
            s["runningCount"] == 3 && s["deployments"][0]["failedTasks"] == 1
        })
        .await;
    let healed = killed_at.elapsed();
    assert!(healed < Duration::from_secs(5), "replaced in {healed:?}");
    assert_eq!(s["deployments"][0]["failedTasks"], 1);
    // StopTask of a service task: replaced too.
    let victim = runner.running()[0].clone();
    ok(&server, "StopTask", json!({"task": victim})).await;
    runner
        .until(&server, "web", "replaced after StopTask", |s| {
            steady(s, 3) && s["runningCount"] == 3
        })
        .await;

    // Scale out and in.
    ok(
        &server,
        "UpdateService",
        json!({"service": "web", "desiredCount": 5}),
    )
    .await;
    runner
        .until(&server, "web", "scaled to 5", |s| steady(s, 5))
        .await;
    ok(
        &server,
        "UpdateService",
        json!({"service": arn, "desiredCount": 2}),
    )
    .await;
    let s = runner
        .until(&server, "web", "scaled to 2", |s| {
            steady(s, 2) && s["pendingCount"] == 0
        })
        .await;
    assert!(
        s["events"]
            .as_array()
            .expect("events")
            .iter()
            .any(|e| e["message"]
                .as_str()
                .is_some_and(|m| m.contains("has stopped 3 running tasks"))),
        "{s:#}"
    );

    // Rolling update to a new revision: 100/200 keeps 2 healthy throughout.
    register_family(&server, "web", 96).await;
    let updated = ok(
        &server,
        "UpdateService",
        json!({"service": "web", "taskDefinition": "web:2"}),
    )
    .await;
    assert_eq!(
        updated["service"]["deployments"].as_array().map(Vec::len),
        Some(2)
    );
    assert_eq!(updated["service"]["deployments"][0]["status"], "PRIMARY");
    assert_eq!(
        updated["service"]["deployments"][0]["rolloutState"],
        "IN_PROGRESS"
    );
    assert_eq!(updated["service"]["deployments"][1]["status"], "ACTIVE");
    let s = runner
        .until(&server, "web", "rolled out", |s| steady(s, 2))
        .await;
    assert!(
        s["taskDefinition"]
            .as_str()
            .is_some_and(|t| t.ends_with("task-definition/web:2"))
    );
    let listed = ok(&server, "ListTasks", json!({"serviceName": "web"})).await;
    let tasks = ok(
        &server,
        "DescribeTasks",
        json!({"tasks": listed["taskArns"]}),
    )
    .await;
    for t in tasks["tasks"].as_array().expect("tasks") {
        assert!(
            t["taskDefinitionArn"]
                .as_str()
                .is_some_and(|a| a.ends_with(":2")),
            "{t}"
        );
    }

    // DescribeServices' edges.
    let d = ok(
        &server,
        "DescribeServices",
        json!({"services": ["web", "nope"], "include": ["TAGS"]}),
    )
    .await;
    assert_eq!(d["failures"][0]["reason"], "MISSING");
    assert_eq!(
        d["failures"][0]["arn"],
        "arn:aws:ecs:us-east-1:000000000000:service/default/nope"
    );
    let eleven: Vec<String> = (0..11).map(|i| format!("s{i}")).collect();
    let (status, err) = ecs(&server, "DescribeServices", json!({"services": eleven})).await;
    assert_eq!(
        (status, err["__type"].as_str()),
        (400, Some("InvalidParameterException"))
    );
    let (_, err) = ecs(
        &server,
        "UpdateService",
        json!({"service": "nope", "desiredCount": 1}),
    )
    .await;
    assert_eq!(err["__type"], "ServiceNotFoundException");
    let l = ok(&server, "ListServices", json!({})).await;
    assert_eq!(l["serviceArns"], json!([arn]));

    let c = ok(
        &server,
        "DescribeClusters",
        json!({"clusters": ["default"]}),
    )
    .await;
    assert_eq!(c["clusters"][0]["activeServicesCount"], 1);

    // Delete: refused while scaled above 0 without force; then DRAINING
    // until its tasks stopped, then INACTIVE.
    let (_, err) = ecs(&server, "DeleteService", json!({"service": "web"})).await;
    assert_eq!(err["__type"], "InvalidParameterException");
    let deleted = ok(
        &server,
        "DeleteService",
        json!({"service": "web", "force": true}),
    )
    .await;
    assert_eq!(deleted["service"]["status"], "DRAINING");
    runner
        .until(&server, "web", "INACTIVE", |s| s["status"] == "INACTIVE")
        .await;
    let l = ok(&server, "ListServices", json!({})).await;
    assert_eq!(l["serviceArns"], json!([]));
    let (_, err) = ecs(
        &server,
        "UpdateService",
        json!({"service": "web", "desiredCount": 1}),
    )
    .await;
    assert_eq!(err["__type"], "ServiceNotActiveException");
    assert!(runner.running().is_empty(), "every task stopped");
}

#[tokio::test]
async fn a_deployment_whose_tasks_keep_failing_trips_the_circuit_breaker_and_rolls_back() {
    let server = start().await;
    let agent = ScriptedAgent::connect(server.grpc, 100_000, 100_000).await;
    let mut runner = Runner::new(agent);
    register_family(&server, "api", 64).await;
    register_family(&server, "api", 65).await;
    ok(
        &server,
        "CreateService",
        json!({"serviceName": "api", "taskDefinition": "api:1", "desiredCount": 2,
               "deploymentConfiguration": {"deploymentCircuitBreaker": {"enable": true, "rollback": true}}}),
    )
    .await;
    runner
        .until(&server, "api", "steady on :1", |s| steady(s, 2))
        .await;
    ok(
        &server,
        "UpdateService",
        json!({"service": "api", "taskDefinition": "api:2"}),
    )
    .await;
    // Every task of revision 2 dies as soon as it is given.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = describe(&server, "api").await;
        if s["deployments"][0]["taskDefinition"]
            .as_str()
            .is_some_and(|t| t.ends_with(":1"))
            && s["deployments"].as_array().map(Vec::len) == Some(2)
        {
            break;
        }
        assert!(Instant::now() < deadline, "rolled back in time: {s:#}");
        let _ = runner
            .agent
            .try_next_change(Duration::from_millis(300))
            .await;
        for (arn, spec) in runner.agent.view.clone() {
            if spec.family == "api"
                && spec.revision == 2
                && !runner.agent.reported.contains_key(&arn)
            {
                runner.kill(&arn).await;
            }
        }
        runner.apply().await;
    }
    let s = runner
        .until(&server, "api", "steady again on :1", |s| steady(s, 2))
        .await;
    assert!(
        s["taskDefinition"]
            .as_str()
            .is_some_and(|t| t.ends_with(":1")),
        "{s:#}"
    );
    let events: Vec<String> = s["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["message"].as_str().map(str::to_owned))
        .collect();
    assert!(
        events
            .iter()
            .any(|e| e.contains("deployment failed: tasks failed to start")),
        "{events:#?}"
    );
    assert!(
        events.iter().any(|e| e.contains("rolling back to")),
        "{events:#?}"
    );
}

#[tokio::test]
async fn a_daemon_service_runs_one_task_on_every_eligible_instance() {
    let server = start().await;
    let mut a = Runner::new(ScriptedAgent::connect(server.grpc, 10_000, 10_000).await);
    let mut b = Runner::new(ScriptedAgent::connect(server.grpc, 10_000, 10_000).await);
    register_family(&server, "node-exporter", 32).await;
    let (status, err) = ecs(
        &server,
        "CreateService",
        json!({"serviceName": "ne", "taskDefinition": "node-exporter", "schedulingStrategy": "DAEMON", "desiredCount": 2}),
    )
    .await;
    assert_eq!(
        (status, err["__type"].as_str()),
        (400, Some("InvalidParameterException")),
        "{err}"
    );
    let created = ok(
        &server,
        "CreateService",
        json!({"serviceName": "ne", "taskDefinition": "node-exporter", "schedulingStrategy": "DAEMON"}),
    )
    .await;
    assert_eq!(created["service"]["schedulingStrategy"], "DAEMON");
    assert_eq!(
        created["service"]["deploymentConfiguration"]["maximumPercent"],
        100
    );
    assert_eq!(
        created["service"]["deploymentConfiguration"]["minimumHealthyPercent"],
        0
    );

    // Both agents get exactly one task each.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        a.apply().await;
        b.apply().await;
        let s = describe(&server, "ne").await;
        if steady(&s, 2) && a.running().len() == 1 && b.running().len() == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "one task per instance: {s:#}");
        let _ = a.agent.try_next_change(Duration::from_millis(200)).await;
        let _ = b.agent.try_next_change(Duration::from_millis(200)).await;
    }

    // A new instance gets one too.
    let mut c = Runner::new(ScriptedAgent::connect(server.grpc, 10_000, 10_000).await);
    c.until(&server, "ne", "the new instance runs one", |s| steady(s, 3))
        .await;
    assert_eq!(c.running().len(), 1);

    // A DRAINING instance's daemon task stops; the count follows.
    ok(
        &server,
        "UpdateContainerInstancesState",
        json!({"containerInstances": [c.agent.arn], "status": "DRAINING"}),
    )
    .await;
    c.until(&server, "ne", "the draining instance's task stops", |s| {
        steady(s, 2)
    })
    .await;
    c.settle("the agent is told to stop it", |c| c.running().is_empty())
        .await;
    let (_, err) = ecs(
        &server,
        "UpdateService",
        json!({"service": "ne", "desiredCount": 5}),
    )
    .await;
    assert_eq!(err["__type"], "InvalidParameterException");
}

#[tokio::test]
async fn tasks_on_a_lost_host_are_replaced_and_stopped_when_it_returns() {
    // The test server's lost-host timeout is 3 s.
    let server = start().await;
    let mut a = Runner::new(ScriptedAgent::connect(server.grpc, 10_000, 10_000).await);
    register_family(&server, "web", 32).await;
    ok(
        &server,
        "CreateService",
        json!({"serviceName": "web", "taskDefinition": "web", "desiredCount": 2}),
    )
    .await;
    a.until(&server, "web", "steady on host a", |s| steady(s, 2))
        .await;
    let on_a = a.running();
    assert_eq!(on_a.len(), 2);
    let mut b = Runner::new(ScriptedAgent::connect(server.grpc, 10_000, 10_000).await);

    // Host a goes away (its agent's stream ends).
    let (arn, secret) = (a.agent.arn.clone(), a.agent.secret.clone());
    drop(a);
    let lost_at = Instant::now();
    b.until(&server, "web", "replaced on host b", |s| {
        s["runningCount"] == 2 && s["pendingCount"] == 0
    })
    .await;
    b.settle("b runs the replacements", |b| b.running().len() == 2)
        .await;
    let took = lost_at.elapsed();
    assert!(
        took >= Duration::from_secs(3),
        "not before the timeout: {took:?}"
    );
    let old = ok(&server, "DescribeTasks", json!({"tasks": on_a})).await;
    for t in old["tasks"].as_array().expect("tasks") {
        assert_eq!(t["desiredStatus"], "STOPPED", "{t}");
        assert_eq!(t["stopCode"], "ServiceSchedulerInitiated");
    }

    // Host a comes back with its identity: it is told to stop the old
    // tasks, and the service keeps exactly two.
    let mut a = Runner::new(
        ScriptedAgent::register(
            berth_tests::sim::channel(server.grpc).await,
            pb::RegisterRequest {
                container_instance_arn: Some(arn),
                instance_secret: Some(secret),
                cpu: 10_000,
                memory_mib: 10_000,
                ..ScriptedAgent::request()
            },
        )
        .await,
    );
    for arn in &on_a {
        a.agent
            .reported
            .insert(arn.clone(), pb::TaskStatus::Running);
    }
    a.settle("the returning host stops its old tasks", |a| {
        a.running().is_empty()
    })
    .await;
    let s = b.until(&server, "web", "still two", |s| steady(s, 2)).await;
    let listed = ok(&server, "ListTasks", json!({"serviceName": "web"})).await;
    assert_eq!(
        listed["taskArns"].as_array().map(Vec::len),
        Some(2),
        "{s:#}"
    );
}
