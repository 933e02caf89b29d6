//! Property test: random bodies through request decoding, validation and
//! the use cases of every action. Whatever arrives, the answer is a success
//! or a 4xx ECS error (never a panic, never a 5xx), and a refused request
//! leaves the stored state exactly as it was.
//!
//! Deterministic: `BERTH_FUZZ_SEED` replays a run, `BERTH_FUZZ_CASES` sets
//! how many bodies are tried (default 4,000).

use super::{ACTIONS, execute};
use crate::app::{ControlPlane, Settings};
use crate::model::ArnScope;
use crate::placement::Rng;
use crate::store::{MemoryStore, Store};
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::time::Duration;

/// The placement strategy's seeded generator, with a coin.
struct Gen(Rng);

impl Gen {
    fn below(&mut self, n: usize) -> usize {
        self.0.below(n)
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        self.0.pick(items)
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

/// Member names that appear in ECS requests, so random objects often hit
/// real members with wrong or odd values.
const MEMBERS: &[&str] = &[
    "cluster",
    "clusterName",
    "clusters",
    "taskDefinition",
    "family",
    "familyPrefix",
    "count",
    "containerDefinitions",
    "name",
    "image",
    "memory",
    "cpu",
    "memoryReservation",
    "essential",
    "portMappings",
    "containerPort",
    "hostPort",
    "protocol",
    "environment",
    "value",
    "command",
    "entryPoint",
    "networkMode",
    "volumes",
    "host",
    "sourcePath",
    "mountPoints",
    "tags",
    "key",
    "placementConstraints",
    "placementStrategy",
    "type",
    "expression",
    "field",
    "overrides",
    "containerOverrides",
    "launchType",
    "capacityProviderStrategy",
    "capacityProvider",
    "weight",
    "base",
    "clientToken",
    "startedBy",
    "group",
    "tasks",
    "task",
    "reason",
    "include",
    "maxResults",
    "nextToken",
    "desiredStatus",
    "containerInstances",
    "containerInstance",
    "status",
    "force",
    "attributes",
    "targetId",
    "targetType",
    "attributeName",
    "attributeValue",
    "filter",
    "healthCheck",
    "dependsOn",
    "condition",
    "containerName",
    "linuxParameters",
    "ulimits",
    "logConfiguration",
    "logDriver",
    "options",
    "secrets",
    "valueFrom",
    "networkConfiguration",
    "awsvpcConfiguration",
    "subnets",
    "requiresCompatibilities",
    "capacityProviders",
    "defaultCapacityProviderStrategy",
    "enableECSManagedTags",
    "propagateTags",
    "settings",
    "dockerVolumeConfiguration",
    "scope",
    "autoprovision",
    "driver",
    "startTimeout",
    "stopTimeout",
];

const STRINGS: &[&str] = &[
    "",
    "default",
    "web",
    "web:1",
    "web:0",
    "web:99999999999",
    "arn:aws:ecs:us-east-1:000000000000:task-definition/web:1",
    "arn:aws:ecs:us-east-1:000000000000:cluster/default",
    "arn:",
    "arn:aws:ecs:::",
    "a b",
    "UPPER",
    "memberOf",
    "distinctInstance",
    "spread",
    "binpack",
    "random",
    "attribute:ecs.os-type == linux",
    "attribute:ecs.os-type in [",
    "not(",
    "host",
    "bridge",
    "awsvpc",
    "none",
    "EXTERNAL",
    "EC2",
    "FARGATE",
    "RUNNING",
    "STOPPED",
    "DRAINING",
    "ACTIVE",
    "TAGS",
    "tcp",
    "udp",
    "START",
    "HEALTHY",
    "nofile",
    "json-file",
    "\u{0}",
    "\u{202e}evil",
    "ü",
    "😀",
    "%00",
    "../../etc/passwd",
    "${HOME}",
    "container-instance",
    "0123456789abcdef0123456789abcdef",
];

fn random_string(rng: &mut Gen) -> String {
    match rng.below(4) {
        0 => "x".repeat(rng.below(3000)),
        1 => (0..rng.below(40))
            .map(|_| char::from_u32(rng.below(0x11_0000) as u32).unwrap_or('?'))
            .collect(),
        _ => (*rng.pick(STRINGS)).to_owned(),
    }
}

fn random_number(rng: &mut Gen) -> Value {
    match rng.below(6) {
        0 => json!(0),
        1 => json!(-1),
        2 => json!(rng.below(20)),
        3 => json!(i64::MAX),
        4 => json!(1.5e300),
        _ => json!(rng.below(100_000) as f64 / 7.0),
    }
}

fn random_value(rng: &mut Gen, depth: usize) -> Value {
    let leaf = depth > 5 || rng.chance(45);
    if leaf {
        return match rng.below(6) {
            0 => Value::Null,
            1 => Value::Bool(rng.chance(50)),
            2 => random_number(rng),
            _ => Value::String(random_string(rng)),
        };
    }
    if rng.chance(50) {
        random_object(rng, depth + 1)
    } else {
        Value::Array(
            (0..rng.below(5))
                .map(|_| random_value(rng, depth + 1))
                .collect(),
        )
    }
}

fn random_object(rng: &mut Gen, depth: usize) -> Value {
    let mut map = Map::new();
    for _ in 0..rng.below(8) {
        let key = if rng.chance(85) {
            (*rng.pick(MEMBERS)).to_owned()
        } else {
            random_string(rng)
        };
        map.insert(key, random_value(rng, depth));
    }
    Value::Object(map)
}

/// Valid bodies to mutate, so mutations land near the accepted shapes.
fn seeds() -> Vec<(&'static str, Value)> {
    vec![
        (
            "CreateCluster",
            json!({"clusterName": "fz", "tags": [{"key": "a", "value": "b"}]}),
        ),
        (
            "RegisterTaskDefinition",
            json!({"family": "fz", "networkMode": "bridge", "containerDefinitions": [{"name": "app", "image": "x", "memory": 64, "portMappings": [{"containerPort": 80, "hostPort": 0}], "healthCheck": {"command": ["CMD", "true"]}, "dependsOn": []}]}),
        ),
        (
            "RunTask",
            json!({"taskDefinition": "fz", "count": 2, "placementStrategy": [{"type": "spread", "field": "instanceId"}], "placementConstraints": [{"type": "memberOf", "expression": "attribute:ecs.os-type == linux"}], "overrides": {"containerOverrides": [{"name": "app", "command": ["x"]}]}}),
        ),
        (
            "ListTasks",
            json!({"cluster": "default", "maxResults": 10, "desiredStatus": "RUNNING"}),
        ),
        (
            "PutAttributes",
            json!({"attributes": [{"name": "rack", "value": "r1", "targetId": "0123456789abcdef0123456789abcdef"}]}),
        ),
        (
            "ListContainerInstances",
            json!({"filter": "attribute:ecs.os-type == linux and registeredAt > 2020-01-01"}),
        ),
        ("CreateCapacityProvider", json!({"name": "fz-pool"})),
        (
            "PutClusterCapacityProviders",
            json!({"cluster": "default", "capacityProviders": ["fz-pool"], "defaultCapacityProviderStrategy": [{"capacityProvider": "fz-pool", "weight": 1}]}),
        ),
    ]
}

fn mutate(rng: &mut Gen, bytes: &mut Vec<u8>) {
    for _ in 0..1 + rng.below(4) {
        if bytes.is_empty() {
            bytes.push(b'{');
        }
        let at = rng.below(bytes.len());
        match rng.below(5) {
            0 => bytes[at] = rng.below(256) as u8,
            1 => {
                bytes.remove(at);
            }
            2 => bytes.insert(at, *rng.pick(b"{}[]\",:\\0-e.\xff\xc3")),
            3 => bytes.truncate(at),
            _ => {
                let chunk = bytes[at..].to_vec();
                bytes.extend_from_slice(&chunk[..chunk.len().min(64)]);
            }
        }
    }
}

fn body(rng: &mut Gen, seeds: &[(&'static str, Value)]) -> (String, Vec<u8>) {
    match rng.below(10) {
        // A real action with a random object.
        0..=4 => {
            let action = (*rng.pick(ACTIONS)).to_owned();
            let value = random_object(rng, 0);
            (action, serde_json::to_vec(&value).unwrap_or_default())
        }
        // A valid body with bytes changed.
        5..=7 => {
            let (action, value) = rng.pick(seeds).clone();
            let mut bytes = serde_json::to_vec(&value).unwrap_or_default();
            mutate(rng, &mut bytes);
            (action.to_owned(), bytes)
        }
        // Deep nesting, or noise.
        8 => {
            let depth = 1 + rng.below(5000);
            let open = if rng.chance(50) { "[" } else { "{\"a\":" };
            (
                (*rng.pick(ACTIONS)).to_owned(),
                open.repeat(depth).into_bytes(),
            )
        }
        _ => (
            (*rng.pick(ACTIONS)).to_owned(),
            (0..rng.below(200)).map(|_| rng.below(256) as u8).collect(),
        ),
    }
}

#[tokio::test]
async fn random_bodies_get_4xx_errors_and_refusals_change_nothing() {
    let seed: u64 = std::env::var("BERTH_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_0ecb_e47b);
    let cases: usize = std::env::var("BERTH_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4000);
    let store = Arc::new(MemoryStore::new());
    let app = Arc::new(
        ControlPlane::load(
            store.clone(),
            Settings {
                scope: ArnScope {
                    region: "us-east-1".into(),
                    account_id: "000000000000".into(),
                },
                stopped_task_retention: Duration::from_secs(3600),
                lost_host_timeout: Duration::from_secs(120),
                client_token_retention: Duration::from_secs(3600),
                placement_seed: 1,
            },
        )
        .expect("app"),
    );
    // Some state for requests to refer to.
    // Every listed action is one `execute` serves (the gRPC door and this
    // test take the list as the truth).
    for action in ACTIONS {
        if let Err(e) = execute(&app, action, b"{}").await {
            assert_ne!(e.type_name(), "UnknownOperationException", "{action}");
        }
    }
    let seeds = seeds();
    for (action, value) in &seeds {
        let _ = execute(
            &app,
            action,
            &serde_json::to_vec(&value).unwrap_or_default(),
        )
        .await;
    }
    let mut rng = Gen(Rng::new(seed));
    let (mut accepted, mut refused) = (0, 0);
    for case in 0..cases {
        let (action, bytes) = body(&mut rng, &seeds);
        let before = store.load().expect("load");
        let app = app.clone();
        let task_action = action.clone();
        let task_bytes = bytes.clone();
        let outcome = tokio::spawn(async move {
            match execute(&app, &task_action, &task_bytes).await {
                Ok(_) => Ok(()),
                Err(e) => Err((e.type_name(), e.status(), e.to_string())),
            }
        })
        .await;
        let shown = || String::from_utf8_lossy(&bytes[..bytes.len().min(400)]).into_owned();
        match outcome {
            Err(panic) => panic!(
                "case {case} (BERTH_FUZZ_SEED={seed}): {action} panicked on {}: {panic}",
                shown()
            ),
            Ok(Ok(())) => accepted += 1,
            Ok(Err((name, status, message))) => {
                refused += 1;
                assert!(
                    status.is_client_error(),
                    "case {case} (BERTH_FUZZ_SEED={seed}): {action} answered {status} {name}: {message} for {}",
                    shown()
                );
                assert!(!message.is_empty(), "{name} without a message");
                assert_eq!(
                    store.load().expect("load"),
                    before,
                    "case {case} (BERTH_FUZZ_SEED={seed}): refused {action} ({name}: {message}) changed the state; body {}",
                    shown()
                );
            }
        }
    }
    // The generator reaches both sides of the door.
    assert!(
        accepted > cases / 100,
        "only {accepted} of {cases} accepted"
    );
    assert!(refused > cases / 2, "only {refused} of {cases} refused");
}
