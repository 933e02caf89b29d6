//! Every console form (`POST`): one ECS action each, through the same use
//! cases (and so the same validation and messages) as the API.

use super::views::{self, Ctx, Page, RunForm, RunOutcome, url_encode};
use crate::api::ecs_json::ApiError;
use crate::model::container_instance::UpdateContainerInstancesStateRequest;
use crate::model::service::UpdateServiceRequest;
use crate::model::task::{RunTaskRequest, StopTaskRequest};
use crate::model::task_definition::{
    DeregisterTaskDefinitionRequest, RegisterTaskDefinitionRequest,
};
use http::StatusCode;
use std::collections::HashMap;

/// What a form leads to.
#[derive(Debug)]
pub enum Outcome {
    /// Done: go to `to` and say `message`.
    Done {
        /// Where next.
        to: String,
        /// What happened.
        message: String,
    },
    /// Refused: go back to `to` and show the API's message.
    Failed {
        /// Where next.
        to: String,
        /// Why.
        message: String,
    },
    /// Show this page (a form again, with what went wrong).
    Page {
        /// The HTTP status.
        status: StatusCode,
        /// The page.
        page: Page,
    },
}

/// The API's words for an error: `Type: message`.
fn says(e: impl Into<ApiError>) -> String {
    let e = e.into();
    format!("{}: {}", e.type_name(), e)
}

/// Done with `message` on success, or back to `to` with the API's words.
fn settle<T>(
    to: String,
    result: crate::app::Result<T>,
    message: impl FnOnce() -> String,
) -> Outcome {
    match result {
        Ok(_) => Outcome::Done {
            to,
            message: message(),
        },
        Err(e) => Outcome::Failed {
            to,
            message: says(e),
        },
    }
}

fn field<'a>(form: &'a HashMap<String, String>, name: &str) -> &'a str {
    form.get(name).map(|s| s.trim()).unwrap_or("")
}

fn not_found() -> Outcome {
    Outcome::Page {
        status: StatusCode::NOT_FOUND,
        page: views::ViewError::NotFound("There is no console form at this address.".into()).page(),
    }
}

/// Runs the form posted to the path `segs`.
pub async fn act(ctx: &Ctx<'_>, segs: &[String], form: &HashMap<String, String>) -> Outcome {
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    match s.as_slice() {
        ["clusters", c, "instances", id, "state"] => instance_state(ctx, c, id, form).await,
        ["clusters", c, "tasks", id, "stop"] => stop(ctx, c, id, form).await,
        ["clusters", c, "run"] => run(ctx, c, form).await,
        ["clusters", c, "services", name, "scale"] => scale(ctx, c, name, form).await,
        ["clusters", c, "services", name, "deploy"] => deploy(ctx, c, name).await,
        ["task-definitions", "register"] => register(ctx, form).await,
        ["task-definitions", family, revision, "deregister"] => {
            deregister(ctx, family, revision).await
        }
        _ => not_found(),
    }
}

async fn instance_state(
    ctx: &Ctx<'_>,
    cluster: &str,
    id: &str,
    form: &HashMap<String, String>,
) -> Outcome {
    let to = format!(
        "/console/clusters/{}/instances/{}",
        url_encode(cluster),
        url_encode(id)
    );
    let status = field(form, "status");
    let result = ctx
        .app
        .update_container_instances_state(UpdateContainerInstancesStateRequest {
            cluster: Some(cluster.to_owned()),
            container_instances: Some(vec![id.to_owned()]),
            status: Some(status.to_owned()),
        })
        .await;
    match result {
        Ok(r) if r.failures.is_empty() => Outcome::Done {
            to,
            message: format!("Instance set to {status}."),
        },
        Ok(r) => Outcome::Failed {
            to,
            message: r
                .failures
                .iter()
                .map(|f| format!("{} ({})", f.reason, f.detail.clone().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join("; "),
        },
        Err(e) => Outcome::Failed {
            to,
            message: says(e),
        },
    }
}

async fn stop(ctx: &Ctx<'_>, cluster: &str, id: &str, form: &HashMap<String, String>) -> Outcome {
    let to = format!(
        "/console/clusters/{}/tasks/{}",
        url_encode(cluster),
        url_encode(id)
    );
    let reason = match field(form, "reason") {
        "" => "Stopped from the console".to_owned(),
        r => r.to_owned(),
    };
    let result = ctx
        .app
        .stop_task(StopTaskRequest {
            cluster: Some(cluster.to_owned()),
            task: Some(id.to_owned()),
            reason: Some(reason),
        })
        .await;
    settle(to, result, || "Stopping the task.".into())
}

/// Parses an optional JSON field of the run form.
fn json_field(
    form: &HashMap<String, String>,
    name: &str,
    label: &str,
) -> Result<Option<serde_json::Value>, String> {
    match field(form, name) {
        "" => Ok(None),
        text => serde_json::from_str(text)
            .map(Some)
            .map_err(|e| format!("{label} is not valid JSON: {e}.")),
    }
}

fn run_request(cluster: &str, form: &HashMap<String, String>) -> Result<RunTaskRequest, String> {
    let mut body = serde_json::Map::new();
    body.insert("cluster".into(), cluster.into());
    let td = field(form, "taskDefinition");
    if td.is_empty() {
        return Err("Name a task definition (family, family:revision or ARN).".into());
    }
    body.insert("taskDefinition".into(), td.into());
    match field(form, "count") {
        "" => {}
        n => {
            let n: i64 = n
                .parse()
                .map_err(|_| format!("Count must be a whole number from 1 to 10 (got '{n}')."))?;
            body.insert("count".into(), n.into());
        }
    }
    for (name, key) in [("group", "group"), ("startedBy", "startedBy")] {
        match field(form, name) {
            "" => {}
            v => {
                body.insert(key.into(), v.into());
            }
        }
    }
    for (name, label) in [
        ("overrides", "Overrides"),
        ("placementConstraints", "Placement constraints"),
        ("placementStrategy", "Placement strategy"),
    ] {
        if let Some(v) = json_field(form, name, label)? {
            body.insert(name.into(), v);
        }
    }
    serde_path_to_error::deserialize(serde_json::Value::Object(body))
        .map_err(|e| format!("Member '{}' is not valid: {}.", e.path(), e.inner()))
}

async fn run(ctx: &Ctx<'_>, cluster: &str, form: &HashMap<String, String>) -> Outcome {
    let typed = RunForm::from_query(form);
    let page = |outcome: RunOutcome, status: StatusCode| Outcome::Page {
        status,
        page: views::run_form(ctx, cluster, &typed, Some(&outcome)),
    };
    let request = match run_request(cluster, form) {
        Ok(r) => r,
        Err(message) => {
            return page(
                RunOutcome {
                    error: Some(format!("SerializationException: {message}")),
                    ..RunOutcome::default()
                },
                StatusCode::BAD_REQUEST,
            );
        }
    };
    match ctx.app.run_task(request).await {
        Err(e) => page(
            RunOutcome {
                error: Some(says(e)),
                ..RunOutcome::default()
            },
            StatusCode::BAD_REQUEST,
        ),
        Ok(r) => {
            let started: Vec<String> = r
                .tasks
                .iter()
                .map(|t| views::short_id(&t.task_arn).to_owned())
                .collect();
            let cluster_url = url_encode(cluster);
            if r.failures.is_empty() {
                let to = match started.as_slice() {
                    [one] => format!("/console/clusters/{cluster_url}/tasks/{one}"),
                    many => format!(
                        "/console/clusters/{cluster_url}/tasks?ids={}",
                        many.join(",")
                    ),
                };
                return Outcome::Done {
                    to,
                    message: format!(
                        "Started {} task{}.",
                        started.len(),
                        if started.len() == 1 { "" } else { "s" }
                    ),
                };
            }
            page(
                RunOutcome {
                    error: None,
                    started,
                    failures: r
                        .failures
                        .into_iter()
                        .map(|f| {
                            (
                                f.reason,
                                f.arn.unwrap_or_default(),
                                f.detail.unwrap_or_default(),
                            )
                        })
                        .collect(),
                },
                StatusCode::OK,
            )
        }
    }
}

async fn scale(
    ctx: &Ctx<'_>,
    cluster: &str,
    name: &str,
    form: &HashMap<String, String>,
) -> Outcome {
    let to = format!(
        "/console/clusters/{}/services/{}",
        url_encode(cluster),
        url_encode(name)
    );
    let raw = field(form, "desiredCount");
    let Ok(desired) = raw.parse::<i64>() else {
        return Outcome::Failed {
            to,
            message: format!("Desired count must be a whole number (got '{raw}')."),
        };
    };
    let result = ctx
        .app
        .update_service(UpdateServiceRequest {
            cluster: Some(cluster.to_owned()),
            service: Some(name.to_owned()),
            desired_count: Some(desired),
            ..Default::default()
        })
        .await;
    settle(to, result, || format!("Desired count set to {desired}."))
}

async fn deploy(ctx: &Ctx<'_>, cluster: &str, name: &str) -> Outcome {
    let to = format!(
        "/console/clusters/{}/services/{}",
        url_encode(cluster),
        url_encode(name)
    );
    let result = ctx
        .app
        .update_service(UpdateServiceRequest {
            cluster: Some(cluster.to_owned()),
            service: Some(name.to_owned()),
            force_new_deployment: Some(true),
            ..Default::default()
        })
        .await;
    settle(to, result, || "A new deployment started.".into())
}

async fn register(ctx: &Ctx<'_>, form: &HashMap<String, String>) -> Outcome {
    let json = form.get("json").map(String::as_str).unwrap_or("");
    let again = |message: String| Outcome::Page {
        status: StatusCode::BAD_REQUEST,
        page: views::register_page(ctx, json, Some(&message)),
    };
    let mut de = serde_json::Deserializer::from_str(json);
    let request: RegisterTaskDefinitionRequest = match serde_path_to_error::deserialize(&mut de) {
        Ok(r) => r,
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner();
            return again(if path.is_empty() || path == "." {
                format!(
                    "SerializationException: The text is not a JSON object of RegisterTaskDefinition's members: {inner}."
                )
            } else {
                format!("SerializationException: Member '{path}' is not valid: {inner}.")
            });
        }
    };
    match ctx.app.register_task_definition(request).await {
        Ok(r) => {
            let td = r.task_definition;
            Outcome::Done {
                to: format!(
                    "/console/task-definitions/{}/{}",
                    url_encode(&td.family),
                    td.revision
                ),
                message: format!("Registered {}:{}.", td.family, td.revision),
            }
        }
        Err(e) => again(says(e)),
    }
}

async fn deregister(ctx: &Ctx<'_>, family: &str, revision: &str) -> Outcome {
    let to = format!(
        "/console/task-definitions/{}/{}",
        url_encode(family),
        url_encode(revision)
    );
    let result = ctx
        .app
        .deregister_task_definition(DeregisterTaskDefinitionRequest {
            task_definition: Some(format!("{family}:{revision}")),
        })
        .await;
    settle(to, result, || {
        format!("Deregistered {family}:{revision}; it is INACTIVE.")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_run_form_becomes_a_run_task_request() {
        let r = run_request(
            "default",
            &form(&[
                ("taskDefinition", " web:2 "),
                ("count", "3"),
                ("group", "g"),
                ("startedBy", ""),
                (
                    "overrides",
                    r#"{"containerOverrides":[{"name":"web","command":["sleep","1"]}]}"#,
                ),
                ("placementConstraints", r#"[{"type":"distinctInstance"}]"#),
                (
                    "placementStrategy",
                    r#"[{"type":"spread","field":"instanceId"}]"#,
                ),
            ]),
        )
        .expect("valid");
        assert_eq!(r.task_definition.as_deref(), Some("web:2"));
        assert_eq!(r.count, Some(3));
        assert_eq!(r.group.as_deref(), Some("g"));
        assert_eq!(r.started_by, None);
        assert_eq!(r.placement_constraints.map(|c| c.len()), Some(1));
        assert!(r.overrides.is_some());
    }

    #[test]
    fn run_form_mistakes_name_the_field() {
        let e = run_request("default", &form(&[("taskDefinition", "")])).unwrap_err();
        assert!(e.contains("task definition"), "{e}");
        let e = run_request(
            "default",
            &form(&[("taskDefinition", "x"), ("count", "two")]),
        )
        .unwrap_err();
        assert!(e.contains("Count"), "{e}");
        let e = run_request(
            "default",
            &form(&[("taskDefinition", "x"), ("overrides", "{")]),
        )
        .unwrap_err();
        assert!(e.starts_with("Overrides is not valid JSON"), "{e}");
        let e = run_request(
            "default",
            &form(&[
                ("taskDefinition", "x"),
                ("placementStrategy", r#"{"type":1}"#),
            ]),
        )
        .unwrap_err();
        assert!(e.contains("placementStrategy"), "{e}");
    }
}
