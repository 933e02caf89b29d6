//! The commit path under a failing store: for every mutating action, a
//! write the store cannot make durable leaves the state exactly as it was
//! (records, client tokens, derived indexes, agents' desired sets), and
//! writes resume once the store is reopened.

use super::*;
use crate::api::ecs_json::{ACTIONS, execute};
use crate::model::container_instance::VersionInfo;
use crate::model::task::{ContainerStatus, TaskStatus};
use crate::store::MemoryStore;
use serde_json::{Value, json};

pub(crate) fn app(store: Arc<MemoryStore>) -> ControlPlane {
    ControlPlane::load(
        store,
        Settings {
            scope: ArnScope {
                region: "us-east-1".into(),
                account_id: "000000000000".into(),
            },
            stopped_task_retention: Duration::ZERO,
            lost_host_timeout: Duration::from_secs(120),
            client_token_retention: Duration::from_secs(3600),
            placement_seed: 7,
        },
    )
    .expect("load")
}

fn registration(host: &str) -> RegisterInstance {
    RegisterInstance {
        cluster: "default".into(),
        container_instance_arn: None,
        instance_secret: None,
        ec2_instance_id: host.into(),
        cpu: 4096,
        memory: 8192,
        reserved_tcp: Default::default(),
        reserved_udp: Default::default(),
        attributes: Vec::new(),
        version_info: VersionInfo::default(),
        launch_type: "EXTERNAL".into(),
        capacity_provider: None,
        gpu_ids: Vec::new(),
    }
}

pub(crate) fn running(task_arn: &str) -> TaskReport {
    TaskReport {
        task_arn: task_arn.into(),
        last_status: TaskStatus::Running,
        containers: vec![ContainerReport {
            name: "web".into(),
            last_status: ContainerStatus::Running,
            runtime_id: Some("c0ffee".into()),
            exit_code: None,
            reason: None,
            network_bindings: Vec::new(),
            image_digest: None,
            health_status: None,
        }],
        pull_started_at: None,
        pull_stopped_at: None,
        execution_stopped_at: None,
        stop_code: None,
        stopped_reason: None,
        health_status: None,
        network: None,
    }
}

/// A STOPPED report: the container exited with `exit_code`.
fn stopped(task_arn: &str, exit_code: i32) -> TaskReport {
    let mut report = running(task_arn);
    report.last_status = TaskStatus::Stopped;
    report.containers[0].last_status = ContainerStatus::Stopped;
    report.containers[0].exit_code = Some(exit_code);
    report
}

/// Registers `host` and opens its agent's session (open while the handle
/// lives); the instance id.
pub(crate) async fn connect(
    app: &ControlPlane,
    host: &str,
) -> (String, super::agent::SessionHandle) {
    let registered = app
        .register_instance(registration(host))
        .await
        .expect("register");
    let arn = registered.container_instance_arn.clone();
    let session = app
        .open_session(&arn, registered.instance_secret.expose())
        .expect("session");
    (arn.rsplit('/').next().expect("id").to_owned(), session)
}

/// `action` with `body` through the JSON door; its answer.
pub(crate) async fn call(app: &ControlPlane, action: &str, body: Value) -> Value {
    let out = execute(app, action, &serde_json::to_vec(&body).expect("json"))
        .await
        .unwrap_or_else(|e| panic!("{action}: {e}"));
    serde_json::from_slice(&out).expect("json")
}

/// One mutation, through the door it takes in real life.
#[derive(Debug, Clone)]
enum Op {
    Api(&'static str, Value),
    Register(String),
    Report(String, String),
    Reconcile,
    Expire,
}

async fn run(app: &ControlPlane, op: &Op) -> std::result::Result<Value, String> {
    match op {
        Op::Api(action, body) => {
            let bytes = serde_json::to_vec(body).expect("json");
            execute(app, action, &bytes)
                .await
                .map(|b| serde_json::from_slice(&b).expect("answer is JSON"))
                .map_err(|e| format!("{}: {}", e.type_name(), e.message("test")))
        }
        Op::Register(host) => app
            .register_instance(registration(host))
            .await
            .map(|r| json!({"containerInstanceArn": r.container_instance_arn, "secret": r.instance_secret.expose()}))
            .map_err(|e| format!("{e:?}")),
        Op::Report(instance, task) => app
            .apply_report(instance, running(task))
            .await
            .map(|()| json!({}))
            .map_err(|e| format!("{e:?}")),
        Op::Reconcile => app
            .reconcile_services(true)
            .await
            .map(|n| json!({ "changed": n }))
            .map_err(|e| format!("{e:?}")),
        Op::Expire => app
            .expire()
            .map(|n| json!({ "expired": n }))
            .map_err(|e| format!("{e:?}")),
    }
}

/// Fails `op` once at `apply` and once at `sync`, checking each time that
/// nothing changed and that the store recovers; then runs it for real.
async fn fails_cleanly_then_succeeds(app: &ControlPlane, store: &MemoryStore, op: &Op) -> Value {
    // Writes nobody awaited (an agent's session bumping its instance's
    // version) would be rolled back too: start from a durable state.
    app.store.sync().await.expect("sync");
    let before = app.digest();
    let faults: &[fn(&MemoryStore)] = match op {
        // Expiry is a background sweep that never waits for durability;
        // only its write can fail.
        Op::Expire => &[MemoryStore::fail_next_apply],
        _ => &[MemoryStore::fail_next_apply, MemoryStore::fail_next_sync],
    };
    for fault in faults {
        fault(store);
        let err = run(app, op)
            .await
            .expect_err(&format!("{op:?} must fail on a failing store"));
        assert!(
            err.contains("No space left on device"),
            "{op:?}: the error names the cause: {err}"
        );
        assert_eq!(
            app.digest(),
            before,
            "{op:?}: a failed write changed the state"
        );
        assert!(store.failure().is_some());
        // Refused while failed, with the same clear error.
        let again = run(app, op).await.expect_err("refused while failed");
        assert!(again.contains("No space left on device"), "{again}");
        app.recover_store().expect("recover");
        assert!(store.failure().is_none());
        assert_eq!(app.digest(), before, "{op:?}: recovery changed the state");
    }
    let answer = run(app, op)
        .await
        .unwrap_or_else(|e| panic!("{op:?} after recovery: {e}"));
    assert_ne!(app.digest(), before, "{op:?} is a mutation");
    answer
}

#[tokio::test]
async fn a_failed_write_changes_nothing_for_every_mutating_action() {
    let store = Arc::new(MemoryStore::new());
    let app = app(store.clone());
    let mut covered = BTreeSet::new();
    let mut step = async |op: Op| {
        if let Op::Api(action, _) = &op {
            covered.insert(*action);
        }
        fails_cleanly_then_succeeds(&app, &store, &op).await
    };

    let registered = step(Op::Register("host-a".into())).await;
    let instance_arn = registered["containerInstanceArn"]
        .as_str()
        .expect("arn")
        .to_owned();
    let instance_id = instance_arn.rsplit('/').next().expect("id").to_owned();
    let session = app
        .open_session(
            &instance_arn,
            registered["secret"].as_str().expect("secret"),
        )
        .expect("session");
    let mut sent = SentTasks::default();
    step(Op::Api("CreateCluster", json!({"clusterName": "spare"}))).await;
    step(Op::Api(
        "RegisterTaskDefinition",
        json!({"family": "web", "containerDefinitions": [
            {"name": "web", "image": "nginx", "memory": 128, "portMappings": [{"containerPort": 80, "hostPort": 8080}]}
        ]}),
    ))
    .await;
    step(Op::Api(
        "RegisterTaskDefinition",
        json!({"family": "job", "containerDefinitions": [{"name": "job", "image": "busybox", "memory": 64}]}),
    ))
    .await;
    // The SDK's retry of a failed RunTask carries the same client token:
    // the failed attempt must have left no token behind to answer it.
    let ran = step(Op::Api(
        "RunTask",
        json!({"taskDefinition": "web", "count": 1, "clientToken": "retry-me"}),
    ))
    .await;
    let task_arn = ran["tasks"][0]["taskArn"]
        .as_str()
        .unwrap_or_else(|| panic!("a task was placed: {ran}"))
        .to_owned();
    let desired = app
        .desired_set(&instance_id, &mut sent)
        .expect("desired set");
    assert_eq!(desired.tasks.len(), 1, "{desired:?}");
    step(Op::Report(instance_id.clone(), task_arn.clone())).await;
    step(Op::Api(
        "StartTask",
        json!({"taskDefinition": "job", "containerInstances": [instance_id], "startedBy": "ECS Deploy"}),
    ))
    .await;
    step(Op::Api(
        "UpdateTaskProtection",
        json!({"cluster": "default", "tasks": [task_arn], "protectionEnabled": true}),
    ))
    .await;
    step(Op::Api(
        "StopTask",
        json!({"task": task_arn, "reason": "test"}),
    ))
    .await;
    step(Op::Api(
        "CreateService",
        json!({"serviceName": "svc", "taskDefinition": "job", "desiredCount": 1}),
    ))
    .await;
    // The scheduler's round: a task launched and the service's events.
    step(Op::Reconcile).await;
    step(Op::Api(
        "UpdateService",
        json!({"service": "svc", "desiredCount": 2, "forceNewDeployment": true}),
    ))
    .await;
    step(Op::Api(
        "DeleteService",
        json!({"service": "svc", "force": true}),
    ))
    .await;
    step(Op::Api(
        "PutAttributes",
        json!({"attributes": [{"name": "rack", "value": "r1", "targetId": instance_arn}]}),
    ))
    .await;
    step(Op::Api(
        "DeleteAttributes",
        json!({"attributes": [{"name": "rack", "targetId": instance_arn}]}),
    ))
    .await;
    step(Op::Api(
        "UpdateContainerInstancesState",
        json!({"containerInstances": [instance_arn], "status": "DRAINING"}),
    ))
    .await;
    step(Op::Api("CreateCapacityProvider", json!({"name": "pool"}))).await;
    step(Op::Api(
        "PutClusterCapacityProviders",
        json!({"cluster": "spare", "capacityProviders": ["pool"], "defaultCapacityProviderStrategy": []}),
    ))
    .await;
    step(Op::Api(
        "PutClusterCapacityProviders",
        json!({"cluster": "spare", "capacityProviders": [], "defaultCapacityProviderStrategy": []}),
    ))
    .await;
    step(Op::Api(
        "UpdateCapacityProvider",
        json!({"name": "pool", "autoScalingGroupProvider": {"managedDraining": "DISABLED"}}),
    ))
    .await;
    step(Op::Api(
        "DeleteCapacityProvider",
        json!({"capacityProvider": "pool"}),
    ))
    .await;
    step(Op::Api(
        "DeregisterTaskDefinition",
        json!({"taskDefinition": "web:1"}),
    ))
    .await;
    step(Op::Api(
        "DeleteTaskDefinitions",
        json!({"taskDefinitions": ["web:1"]}),
    ))
    .await;
    step(Op::Api(
        "DeregisterContainerInstance",
        json!({"containerInstance": instance_arn, "force": true}),
    ))
    .await;
    let spare = "arn:aws:ecs:us-east-1:000000000000:cluster/spare";
    step(Op::Api(
        "TagResource",
        json!({"resourceArn": spare, "tags": [{"key": "team", "value": "ops"}]}),
    ))
    .await;
    step(Op::Api(
        "UntagResource",
        json!({"resourceArn": spare, "tagKeys": ["team"]}),
    ))
    .await;
    step(Op::Api(
        "UpdateCluster",
        json!({"cluster": "spare", "settings": [{"name": "containerInsights", "value": "enabled"}]}),
    ))
    .await;
    step(Op::Api(
        "UpdateClusterSettings",
        json!({"cluster": "spare", "settings": [{"name": "containerInsights", "value": "enhanced"}]}),
    ))
    .await;
    step(Op::Api(
        "PutAccountSetting",
        json!({"name": "awsvpcTrunking", "value": "enabled"}),
    ))
    .await;
    step(Op::Api(
        "PutAccountSettingDefault",
        json!({"name": "containerInsights", "value": "enabled"}),
    ))
    .await;
    step(Op::Api(
        "DeleteAccountSetting",
        json!({"name": "awsvpcTrunking"}),
    ))
    .await;
    step(Op::Api("DeleteCluster", json!({"cluster": "spare"}))).await;
    drop(session);
    // The stopped task (retention zero) is forgotten by the sweep.
    step(Op::Expire).await;

    // Every action is either checked above or reads only.
    let reads = [
        "DescribeClusters",
        "ListClusters",
        "DescribeTaskDefinition",
        "ListTaskDefinitions",
        "ListTaskDefinitionFamilies",
        "DescribeTasks",
        "ListTasks",
        "ListContainerInstances",
        "DescribeContainerInstances",
        "ListAttributes",
        "DescribeCapacityProviders",
        "DescribeServices",
        "ListServices",
        "ListTagsForResource",
        "ListAccountSettings",
        "GetTaskProtection",
    ];
    for action in ACTIONS {
        assert!(
            covered.contains(action) || reads.contains(action),
            "{action} is neither checked under a failing store nor listed as read-only"
        );
    }
    // What is durable is exactly what is in memory (expiry does not wait
    // for its own fsync: the next one covers it).
    app.store.sync().await.expect("sync");
    let reloaded = ControlPlane::load(
        Arc::new({
            let copy = MemoryStore::new();
            let mut batch = crate::store::Batch::default();
            for (k, v) in store.durable() {
                batch.put(k, v);
            }
            copy.apply(batch).expect("copy");
            copy
        }),
        app.settings.clone(),
    )
    .expect("reload");
    assert_eq!(
        reloaded
            .lock()
            .digest()
            .lines()
            .filter(|l| !l.starts_with("live/"))
            .collect::<Vec<_>>(),
        app.digest()
            .lines()
            .filter(|l| !l.starts_with("live/"))
            .collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn a_task_carries_its_merged_spec_and_needs_no_definition_to_run() {
    let app = app(Arc::new(MemoryStore::new()));
    let (id, _session) = connect(&app, "host-b").await;
    call(
        &app,
        "RegisterTaskDefinition",
        json!({"family": "spec", "containerDefinitions": [{"name": "web", "image": "nginx", "memory": 64, "command": ["a"]}]}),
    )
    .await;
    call(
        &app,
        "RunTask",
        json!({"taskDefinition": "spec", "overrides": {"containerOverrides": [{"name": "web", "command": ["b"]}]}}),
    )
    .await;
    // Even with its definition gone from memory, the task's desired state
    // is what was merged at placement.
    app.lock().families.clear();
    let set = app
        .desired_set(&id, &mut SentTasks::default())
        .expect("desired set");
    assert_eq!(set.tasks.len(), 1);
    assert_eq!(
        set.tasks[0].containers[0].definition.command,
        Some(vec!["b".to_owned()])
    );
    // Once STOPPED it never runs again: the spec is dropped, in memory and
    // in the record the store keeps.
    let task_arn = set.tasks[0].task_arn.clone();
    let task_id = task_arn.rsplit('/').next().expect("id").to_owned();
    app.apply_report(&id, stopped(&task_arn, 0))
        .await
        .expect("report");
    // STOPPED: out of memory but for its index entry, on disk without the
    // spec.
    assert!(!app.lock().tasks.contains_key(&task_id));
    assert!(app.lock().stopped.contains_key(&task_id));
    let on_disk = app
        .stopped_task(&task_id)
        .expect("read")
        .expect("the stopped task is on disk");
    assert!(on_disk.spec.is_none());
    let described = call(&app, "DescribeTasks", json!({"tasks": [task_arn]})).await;
    assert_eq!(described["tasks"][0]["lastStatus"], "STOPPED");
    assert_eq!(
        described["tasks"][0]["overrides"]["containerOverrides"][0]["command"][0],
        "b"
    );
}

#[tokio::test]
async fn the_change_feed_names_only_the_services_a_commit_touched() {
    let app = app(Arc::new(MemoryStore::new()));
    let (id, _session) = connect(&app, "host-c").await;
    call(
        &app,
        "RegisterTaskDefinition",
        json!({"family": "web", "containerDefinitions": [{"name": "web", "image": "x", "memory": 16}]}),
    )
    .await;
    for name in ["a", "b"] {
        call(
            &app,
            "CreateService",
            json!({"serviceName": name, "taskDefinition": "web", "desiredCount": 1}),
        )
        .await;
    }
    app.reconcile_services(true).await.expect("round");
    // The round's own commit touched both; the next round settles them.
    app.reconcile_services(false).await.expect("round");
    assert!(app.lock().dirty_services.is_empty());
    assert!(!app.lock().all_services_dirty);
    let a_task = {
        let state = app.lock();
        state.service_tasks[&("default".to_owned(), "service:a".to_owned())]
            .iter()
            .next()
            .cloned()
            .expect("a's task")
    };
    let standalone = call(&app, "RunTask", json!({"taskDefinition": "web"})).await;
    let standalone = standalone["tasks"][0]["taskArn"]
        .as_str()
        .expect("arn")
        .to_owned();
    app.apply_report(&id, running(&standalone))
        .await
        .expect("report");
    assert!(
        app.lock().dirty_services.is_empty(),
        "a standalone task touches no service"
    );
    let arn = app.lock().tasks[&a_task].task.task_arn.clone();
    app.apply_report(&id, running(&arn)).await.expect("report");
    assert_eq!(
        app.lock().dirty_services,
        BTreeSet::from([("default".to_owned(), "a".to_owned())]),
        "only a's round is due"
    );
}

#[tokio::test]
async fn stopped_tasks_are_read_from_disk_by_every_path_that_needs_them() {
    let store = Arc::new(MemoryStore::new());
    let app = app(store.clone());
    let (id, _session) = connect(&app, "host-d").await;
    call(&app,
        "RegisterTaskDefinition",
        json!({"family": "cold", "containerDefinitions": [{"name": "web", "image": "nginx", "memory": 64}]}),
    )
    .await;
    let ran = call(
        &app,
        "RunTask",
        json!({"taskDefinition": "cold", "clientToken": "cold-token", "startedBy": "me"}),
    )
    .await;
    let task_arn = ran["tasks"][0]["taskArn"].as_str().expect("arn").to_owned();
    let task_id = task_arn.rsplit('/').next().expect("id").to_owned();
    app.apply_report(&id, stopped(&task_arn, 3))
        .await
        .expect("report");
    assert!(app.lock().stopped.contains_key(&task_id));

    // Every reader finds it on disk.
    let described = call(
        &app,
        "DescribeTasks",
        json!({"tasks": [task_arn], "include": ["TAGS"]}),
    )
    .await;
    assert_eq!(described["tasks"][0]["lastStatus"], "STOPPED");
    assert_eq!(described["tasks"][0]["containers"][0]["exitCode"], 3);
    let listed = call(
        &app,
        "ListTasks",
        json!({"desiredStatus": "STOPPED", "startedBy": "me"}),
    )
    .await;
    assert_eq!(listed["taskArns"], json!([task_arn]));
    let none = call(
        &app,
        "ListTasks",
        json!({"desiredStatus": "STOPPED", "startedBy": "else"}),
    )
    .await;
    assert_eq!(none["taskArns"], json!([]));
    let again = call(&app, "StopTask", json!({"task": task_arn})).await;
    assert_eq!(again["task"]["lastStatus"], "STOPPED");
    let replayed = call(
        &app,
        "RunTask",
        json!({"taskDefinition": "cold", "clientToken": "cold-token", "startedBy": "me"}),
    )
    .await;
    assert_eq!(replayed["tasks"][0]["taskArn"], task_arn.as_str());
    call(
        &app,
        "TagResource",
        json!({"resourceArn": task_arn, "tags": [{"key": "k", "value": "v"}]}),
    )
    .await;
    let tags = call(
        &app,
        "ListTagsForResource",
        json!({"resourceArn": task_arn}),
    )
    .await;
    assert_eq!(tags["tags"], json!([{"key": "k", "value": "v"}]));
    assert!(
        app.lock().stopped.contains_key(&task_id),
        "still on disk only"
    );

    // After a restart too.
    let reloaded = self::app(store.clone());
    assert!(reloaded.lock().stopped.contains_key(&task_id));
    assert!(!reloaded.lock().tasks.contains_key(&task_id));
    let out = call(
        &reloaded,
        "DescribeTasks",
        json!({"tasks": [task_arn], "include": ["TAGS"]}),
    )
    .await;
    assert_eq!(out["tasks"][0]["tags"], json!([{"key": "k", "value": "v"}]));

    // Retention (zero here) forgets it, from disk too.
    assert_eq!(reloaded.expire().expect("expire"), 1);
    assert!(!reloaded.lock().stopped.contains_key(&task_id));
    reloaded.store.sync().await.expect("sync");
    assert!(reloaded.stopped_task(&task_id).expect("read").is_none());
}

/// ListTasks reads RUNNING from the cluster's running set, an instance's
/// active set or a service's set, and STOPPED as every other task: each
/// answer must equal a filter over DescribeTasks, page by page.
#[tokio::test]
async fn list_tasks_answers_from_its_indexes_as_a_full_scan_would() {
    let app = app(Arc::new(MemoryStore::new()));
    let (a, _sa) = connect(&app, "host-a").await;
    let (_b, _sb) = connect(&app, "host-b").await;
    call(
        &app,
        "RegisterTaskDefinition",
        json!({"family": "idx", "containerDefinitions": [{"name": "web", "image": "nginx", "memory": 64}]}),
    )
    .await;
    let ran = call(
        &app,
        "RunTask",
        json!({"taskDefinition": "idx", "count": 8}),
    )
    .await;
    call(
        &app,
        "CreateService",
        json!({"serviceName": "svc", "taskDefinition": "idx", "desiredCount": 0}),
    )
    .await;
    let arns: Vec<String> = ran["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .map(|t| t["taskArn"].as_str().expect("arn").to_owned())
        .collect();
    // One stopped by its agent (on disk), one asked to stop (desired
    // STOPPED, still in memory), one reported RUNNING then stopped.
    let on_a: Vec<&String> = arns
        .iter()
        .filter(|arn| {
            let d = &ran["tasks"]
                .as_array()
                .expect("tasks")
                .iter()
                .find(|t| t["taskArn"] == json!(arn))
                .expect("task")["containerInstanceArn"];
            d.as_str().is_some_and(|i| i.ends_with(&a))
        })
        .collect();
    assert!(on_a.len() >= 2, "spread over both hosts");
    app.apply_report(&a, stopped(on_a[0], 0))
        .await
        .expect("report");
    call(&app, "StopTask", json!({"task": arns[7]})).await;
    app.apply_report(&a, running(on_a[1]))
        .await
        .expect("report");

    let all = call(&app, "DescribeTasks", json!({"tasks": arns})).await;
    let expect = |pred: &dyn Fn(&Value) -> bool| {
        let mut ids: Vec<String> = all["tasks"]
            .as_array()
            .expect("tasks")
            .iter()
            .filter(|t| pred(t))
            .map(|t| t["taskArn"].as_str().expect("arn").to_owned())
            .collect();
        ids.sort_by_key(|arn| arn.rsplit('/').next().map(str::to_owned));
        ids
    };
    let list = |body: Value| {
        let app = &app;
        async move {
            // One task per page: the pages must walk the same order.
            let mut out = Vec::new();
            let mut token: Option<String> = None;
            loop {
                let mut body = body.clone();
                body["maxResults"] = json!(1);
                if let Some(t) = &token {
                    body["nextToken"] = json!(t);
                }
                let page = call(app, "ListTasks", body).await;
                for arn in page["taskArns"].as_array().expect("arns") {
                    out.push(arn.as_str().expect("arn").to_owned());
                }
                match page["nextToken"].as_str() {
                    Some(t) => token = Some(t.to_owned()),
                    None => break,
                }
            }
            out
        }
    };
    let running = expect(&|t| t["desiredStatus"] == "RUNNING");
    let stopped_ = expect(&|t| t["desiredStatus"] == "STOPPED");
    assert_eq!(running.len(), 6);
    assert_eq!(stopped_.len(), 2);
    assert_eq!(list(json!({})).await, running);
    assert_eq!(list(json!({"desiredStatus": "STOPPED"})).await, stopped_);
    assert_eq!(
        list(json!({"desiredStatus": "PENDING"})).await,
        Vec::<String>::new()
    );
    assert_eq!(
        list(json!({"containerInstance": a})).await,
        expect(&|t| t["desiredStatus"] == "RUNNING"
            && t["containerInstanceArn"]
                .as_str()
                .is_some_and(|i| i.ends_with(&a)))
    );
    assert_eq!(
        list(json!({"containerInstance": a, "desiredStatus": "STOPPED"})).await,
        expect(&|t| t["desiredStatus"] == "STOPPED"
            && t["containerInstanceArn"]
                .as_str()
                .is_some_and(|i| i.ends_with(&a)))
    );
    assert_eq!(
        list(json!({"serviceName": "svc"})).await,
        Vec::<String>::new()
    );
    assert_eq!(list(json!({"family": "idx"})).await, running);
}

/// Task ids are 32 hex digits, as ECS's, and ordered by creation, so new
/// task records land together at the right end of the store's key space.
#[tokio::test]
async fn task_ids_are_ordered_by_creation() {
    let app = app(Arc::new(MemoryStore::new()));
    let (_a, _session) = connect(&app, "host-a").await;
    call(
        &app,
        "RegisterTaskDefinition",
        json!({"family": "ord", "containerDefinitions": [{"name": "web", "image": "nginx", "memory": 8}]}),
    )
    .await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let ran = call(
            &app,
            "RunTask",
            json!({"taskDefinition": "ord", "count": 10}),
        )
        .await;
        for t in ran["tasks"].as_array().expect("tasks") {
            let arn = t["taskArn"].as_str().expect("arn");
            ids.push(arn.rsplit('/').next().expect("id").to_owned());
        }
    }
    assert_eq!(ids.len(), 30);
    assert!(
        ids.iter()
            .all(|id| id.len() == 32 && id.chars().all(|c| c.is_ascii_hexdigit()))
    );
    let mut sorted = ids.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, ids, "ids in creation order and distinct");
}

/// A restart rebuilds the same state (every derived index included) from a
/// store holding running, stopping and STOPPED tasks of a service and of
/// RunTask, though STOPPED ones are read only for their index entry.
#[tokio::test]
async fn a_reload_rebuilds_the_same_state_with_stopped_tasks_read_in_part() {
    let store = Arc::new(MemoryStore::new());
    let app = app(store.clone());
    let (a, _session) = connect(&app, "host-a").await;
    call(
        &app,
        "RegisterTaskDefinition",
        json!({"family": "re", "containerDefinitions": [{"name": "web", "image": "nginx", "memory": 8}]}),
    )
    .await;
    call(
        &app,
        "CreateService",
        json!({"serviceName": "svc", "taskDefinition": "re", "desiredCount": 2}),
    )
    .await;
    app.reconcile_services(true).await.expect("reconcile");
    let ran = call(&app, "RunTask", json!({"taskDefinition": "re", "count": 4})).await;
    let arns: Vec<String> = ran["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .map(|t| t["taskArn"].as_str().expect("arn").to_owned())
        .collect();
    app.apply_report(&a, stopped(&arns[0], 0))
        .await
        .expect("report");
    app.apply_report(&a, running(&arns[1]))
        .await
        .expect("report");
    call(&app, "StopTask", json!({"task": arns[2]})).await;
    let listed = call(&app, "ListTasks", json!({"serviceName": "svc"})).await;
    let service_task = listed["taskArns"][0]
        .as_str()
        .expect("a service task")
        .to_owned();
    app.apply_report(&a, stopped(&service_task, 1))
        .await
        .expect("report");
    assert_eq!(app.lock().stopped.len(), 2);
    store.sync().await.expect("sync");

    let reloaded = self::app(store.clone());
    let strip = |d: String| {
        // Connection state is not stored: a reload starts disconnected.
        d.lines()
            .filter(|l| !l.starts_with("live/"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(strip(reloaded.digest()), strip(app.digest()));
}
