//! Every console page rendered and every form run against an in-memory
//! control plane: what each shows, what each changes, and what a refusal
//! looks like.

use super::actions::{Outcome, act};
use super::sessions::Sessions;
use super::views::{Ctx, ViewError, view};
use crate::app::ControlPlane;
use crate::app::tests::{app, call, connect, running};
use crate::store::MemoryStore;
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;

fn segs(path: &str) -> (Vec<String>, HashMap<String, String>) {
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    let segs = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let query = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    (segs, query)
}

/// The page's whole HTML (its parts joined), or the view's error.
fn page(app: &ControlPlane, path: &str) -> Result<String, ViewError> {
    let sessions = Sessions::default();
    let session = sessions.open(None);
    let ctx = Ctx {
        app,
        session: &session,
    };
    let (segs, query) = segs(path);
    view(&ctx, &segs, &query).map(|p| format!("{}{}{}{}", p.title, p.before, p.live, p.after))
}

fn show(app: &ControlPlane, path: &str) -> String {
    page(app, path).unwrap_or_else(|e| panic!("{path}: {e:?}"))
}

async fn post(app: &ControlPlane, path: &str, form: &[(&str, &str)]) -> Outcome {
    let sessions = Sessions::default();
    let session = sessions.open(None);
    let ctx = Ctx {
        app,
        session: &session,
    };
    let (segs, _) = segs(path);
    let form = form
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    act(&ctx, &segs, &form).await
}

fn done(outcome: Outcome) -> (String, String) {
    match outcome {
        Outcome::Done { to, message } => (to, message),
        other => panic!("expected success, got {other:?}"),
    }
}

#[tokio::test]
async fn every_page_renders_what_the_api_says() {
    let app = app(Arc::new(MemoryStore::new()));
    let (instance, _session) = connect(&app, "host-a").await;
    call(
        &app,
        "RegisterTaskDefinition",
        json!({"family": "web", "containerDefinitions": [
            {"name": "web", "image": "nginx:stable", "memory": 64}]}),
    )
    .await;
    let run = call(
        &app,
        "RunTask",
        json!({"taskDefinition": "web", "count": 2}),
    )
    .await;
    let task_arn = run["tasks"][0]["taskArn"].as_str().expect("arn").to_owned();
    let task = task_arn.rsplit('/').next().expect("id").to_owned();
    app.apply_report(&instance, running(&task_arn))
        .await
        .expect("report");
    call(
        &app,
        "CreateService",
        json!({"serviceName": "svc", "taskDefinition": "web", "desiredCount": 0}),
    )
    .await;

    let clusters = show(&app, "/clusters");
    assert!(
        clusters.contains("href=\"/console/clusters/default\""),
        "{clusters}"
    );
    let cluster = show(&app, "/clusters/default");
    assert!(cluster.contains("host-a") && cluster.contains(&instance));
    assert!(cluster.contains("connected"), "{cluster}");
    assert!(
        cluster.contains("<meter min=\"0\" max=\"4096\" value=\"0\""),
        "CPU bar: {cluster}"
    );
    assert!(
        cluster.contains("max=\"8192\" value=\"128\""),
        "memory bar: {cluster}"
    );
    assert!(cluster.contains("/console/clusters/default/services/svc"));
    let inst = show(&app, &format!("/clusters/default/instances/{instance}"));
    assert!(inst.contains("id=\"drain\"") && inst.contains(&task));
    let tasks = show(&app, "/clusters/default/tasks");
    assert!(
        tasks.contains(&task) && tasks.contains("RUNNING"),
        "{tasks}"
    );
    let one = show(&app, &format!("/clusters/default/tasks/{task}"));
    assert!(one.contains("id=\"stop\"") && one.contains("nginx:stable"));
    assert!(one.contains("c0ffee"), "the Docker id: {one}");
    assert!(one.contains("<strong>Started</strong>"), "timeline: {one}");
    let run_form = show(&app, "/clusters/default/run?taskDefinition=web");
    assert!(run_form.contains("value=\"web\""), "{run_form}");
    assert!(show(&app, "/clusters/default/services/svc").contains("id=\"scale\""));
    assert!(show(&app, "/task-definitions").contains("/console/task-definitions/web"));
    assert!(show(&app, "/task-definitions/web").contains("web:1"));
    assert!(show(&app, "/task-definitions/web/1").contains("&#34;family&#34;: &#34;web&#34;"));
    assert!(show(&app, "/task-definitions/register?from=web:1").contains("nginx:stable"));
    assert!(show(&app, "/task-definitions/register").contains("containerDefinitions"));

    // Nothing there: a 404 that says so; an API refusal keeps its words.
    for missing in [
        "/clusters/nope",
        "/clusters/default/tasks/0123456789abcdef0123456789abcdef",
        "/clusters/default/services/nope",
        "/clusters/default/instances/0123456789abcdef0123456789abcdef",
        "/task-definitions/nope",
        "/task-definitions/web/x",
        "/nowhere",
    ] {
        let e = page(&app, missing).expect_err(missing);
        assert_eq!(e.status(), http::StatusCode::NOT_FOUND, "{missing}: {e:?}");
    }
    let e = page(&app, "/task-definitions/web/9").expect_err("no revision 9");
    assert_eq!(e.status(), http::StatusCode::BAD_REQUEST);
    assert!(e.page().live.contains("ClientException") || e.page().title == "ClientException");
}

#[tokio::test]
async fn every_form_changes_what_it_says_and_refusals_keep_the_api_words() {
    let app = app(Arc::new(MemoryStore::new()));
    let (instance, _session) = connect(&app, "host-a").await;
    call(
        &app,
        "RegisterTaskDefinition",
        json!({"family": "web", "containerDefinitions": [
            {"name": "web", "image": "nginx:stable", "memory": 64}]}),
    )
    .await;

    // Run: one task leads to its page, several to the list of them.
    let (to, message) = done(
        post(
            &app,
            "/clusters/default/run",
            &[("taskDefinition", "web"), ("count", "1")],
        )
        .await,
    );
    assert!(to.starts_with("/console/clusters/default/tasks/"), "{to}");
    assert_eq!(message, "Started 1 task.");
    let task = to.rsplit('/').next().expect("id").to_owned();
    let (to, _) = done(
        post(
            &app,
            "/clusters/default/run",
            &[("taskDefinition", "web"), ("count", "2")],
        )
        .await,
    );
    assert!(to.contains("/tasks?ids="), "{to}");
    let (segs_, q) = segs(to.trim_start_matches("/console"));
    let listed = {
        let sessions = Sessions::default();
        let session = sessions.open(None);
        let ctx = Ctx {
            app: &app,
            session: &session,
        };
        view(&ctx, &segs_, &q).expect("the launched tasks").live
    };
    assert_eq!(listed.matches("<tr id=\"task-").count(), 2, "{listed}");

    // A placement failure is shown with the per-instance detail.
    match post(
        &app,
        "/clusters/default/run",
        &[
            ("taskDefinition", "web"),
            (
                "placementConstraints",
                r#"[{"type":"memberOf","expression":"attribute:rack == r9"}]"#,
            ),
        ],
    )
    .await
    {
        Outcome::Page { status, page } => {
            assert_eq!(status, http::StatusCode::OK);
            assert!(
                page.after
                    .contains("MemberOf placement constraint unsatisfied")
            );
            assert!(
                page.after.contains("attribute:rack == r9"),
                "{}",
                page.after
            );
        }
        other => panic!("{other:?}"),
    }
    // A refused RunTask shows the API's error.
    match post(&app, "/clusters/default/run", &[("taskDefinition", "nope")]).await {
        Outcome::Page { status, page } => {
            assert_eq!(status, http::StatusCode::BAD_REQUEST);
            assert!(page.after.contains("ClientException"), "{}", page.after);
        }
        other => panic!("{other:?}"),
    }

    // Stop, with the reason kept.
    done(
        post(
            &app,
            &format!("/clusters/default/tasks/{task}/stop"),
            &[("reason", "enough")],
        )
        .await,
    );
    let described = call(&app, "DescribeTasks", json!({"tasks": [task]})).await;
    assert_eq!(described["tasks"][0]["desiredStatus"], "STOPPED");
    assert_eq!(described["tasks"][0]["stoppedReason"], "enough");

    // Drain and activate.
    let path = format!("/clusters/default/instances/{instance}/state");
    done(post(&app, &path, &[("status", "DRAINING")]).await);
    assert!(
        show(&app, &format!("/clusters/default/instances/{instance}")).contains("id=\"activate\"")
    );
    done(post(&app, &path, &[("status", "ACTIVE")]).await);
    match post(&app, &path, &[("status", "SLEEPING")]).await {
        Outcome::Failed { message, .. } => {
            assert!(message.contains("InvalidParameterException"), "{message}")
        }
        other => panic!("{other:?}"),
    }

    // Services: scale and force a new deployment.
    call(
        &app,
        "CreateService",
        json!({"serviceName": "svc", "taskDefinition": "web", "desiredCount": 0}),
    )
    .await;
    let (_, message) = done(
        post(
            &app,
            "/clusters/default/services/svc/scale",
            &[("desiredCount", "3")],
        )
        .await,
    );
    assert_eq!(message, "Desired count set to 3.");
    let svc = call(&app, "DescribeServices", json!({"services": ["svc"]})).await;
    assert_eq!(svc["services"][0]["desiredCount"], 3);
    match post(
        &app,
        "/clusters/default/services/svc/scale",
        &[("desiredCount", "-1")],
    )
    .await
    {
        Outcome::Failed { message, .. } => assert!(message.contains("desiredCount"), "{message}"),
        other => panic!("{other:?}"),
    }
    done(post(&app, "/clusters/default/services/svc/deploy", &[]).await);
    let svc = call(&app, "DescribeServices", json!({"services": ["svc"]})).await;
    assert_eq!(
        svc["services"][0]["deployments"].as_array().map(Vec::len),
        Some(2)
    );

    // Task definitions: register from JSON (a DescribeTaskDefinition
    // answer works as is), diff, deregister.
    let described = call(
        &app,
        "DescribeTaskDefinition",
        json!({"taskDefinition": "web:1"}),
    )
    .await;
    let mut td = described["taskDefinition"].clone();
    td["containerDefinitions"][0]["memory"] = json!(96);
    let (to, message) = done(
        post(
            &app,
            "/task-definitions/register",
            &[("json", &td.to_string())],
        )
        .await,
    );
    assert_eq!(to, "/console/task-definitions/web/2");
    assert_eq!(message, "Registered web:2.");
    let diff = show(&app, "/task-definitions/web/diff?a=1&b=2");
    assert!(
        diff.contains("<span class=\"added\">+ ") && diff.contains("96"),
        "{diff}"
    );
    match post(
        &app,
        "/task-definitions/register",
        &[("json", "{\"family\": 7}")],
    )
    .await
    {
        Outcome::Page { status, page } => {
            assert_eq!(status, http::StatusCode::BAD_REQUEST);
            assert!(
                page.after.contains("Member &#39;family&#39;"),
                "{}",
                page.after
            );
            assert!(
                page.after.contains("{&#34;family&#34;: 7}"),
                "the text is kept"
            );
        }
        other => panic!("{other:?}"),
    }
    done(post(&app, "/task-definitions/web/1/deregister", &[]).await);
    assert!(show(&app, "/task-definitions/web/1").contains("INACTIVE"));
    assert!(matches!(
        post(&app, "/task-definitions/web/1/nothing", &[]).await,
        Outcome::Page {
            status: http::StatusCode::NOT_FOUND,
            ..
        }
    ));
}

/// A browser that opens a page's live stream gets the page's live part at
/// once, though nothing changes afterwards: the cluster may have moved
/// between the page's render and the stream's start.
#[tokio::test]
async fn a_live_stream_sends_the_current_state_first() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = Arc::new(app(Arc::new(MemoryStore::new())));
    let (_instance, _session) = connect(&app, "host-live").await;
    let (_stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let router = super::router(app.clone(), None, stop_rx);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    let exchange = |request: String| async move {
        let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
        s.write_all(request.as_bytes()).await.expect("write");
        s
    };
    // No credentials file: the first page opens a session.
    let mut page = exchange(format!(
        "GET /console/clusters HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    ))
    .await;
    let mut head = String::new();
    page.read_to_string(&mut head).await.expect("page");
    let cookie = head
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .and_then(|c| c.split(';').next())
        .expect("a session cookie")
        .to_owned();
    let mut stream = exchange(format!(
        "GET /console/live?path=%2Fconsole%2Fclusters%2Fdefault HTTP/1.1\r\nHost: {addr}\r\nCookie: {cookie}\r\n\r\n"
    ))
    .await;
    let mut seen = Vec::new();
    let got = tokio::time::timeout(std::time::Duration::from_secs(3), async {
        let mut buf = [0u8; 4096];
        loop {
            let n = stream.read(&mut buf).await.expect("read");
            assert!(n > 0, "the stream ended");
            seen.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&seen);
            if text.contains("event: live") && text.contains("host-live") {
                return text.into_owned();
            }
        }
    })
    .await
    .unwrap_or_else(|_| {
        panic!(
            "no live event within 3 s: {}",
            String::from_utf8_lossy(&seen)
        )
    });
    assert!(got.contains("text/event-stream"), "{got}");
}
