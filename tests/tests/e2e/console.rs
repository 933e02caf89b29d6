//! The web console in a real browser: Debian's Chromium driven through
//! chromedriver (WebDriver), against the real binaries and Docker. Each test
//! saves screenshots of the pages it checked under
//! `target/console-screenshots/`.

use super::support::{container, register};
use aws_sdk_ecs::types::ContainerInstanceStatus;
use berth_tests::browser::Browser;
use berth_tests::{ACCESS_KEY_ID, SECRET_ACCESS_KEY, TestCluster};
use std::net::SocketAddr;
use std::time::Duration;
use thirtyfour::prelude::*;

const LIVE: Duration = Duration::from_secs(60);

fn url(cluster: &TestCluster, path: &str) -> String {
    format!("http://{}{path}", cluster.control_plane.http)
}

/// Signs in through the form, by keyboard only: the key field has focus,
/// Tab reaches the secret, Enter submits.
async fn sign_in(b: &Browser, cluster: &TestCluster, secret: &str) {
    b.goto(&url(cluster, "/console/")).await;
    b.wait_for_text("h1", "Berth console", LIVE).await;
    let key = b.driver.active_element().await.expect("focused element");
    assert_eq!(
        key.id().await.expect("id").as_deref(),
        Some("access_key_id"),
        "the key field has focus"
    );
    key.send_keys(ACCESS_KEY_ID).await.expect("type key id");
    key.send_keys(Key::Tab).await.expect("tab");
    let secret_field = b.driver.active_element().await.expect("focused element");
    assert_eq!(
        secret_field.id().await.expect("id").as_deref(),
        Some("secret_access_key")
    );
    secret_field.send_keys(secret).await.expect("type secret");
    secret_field.send_keys(Key::Enter).await.expect("enter");
}

async fn assert_labelled(b: &Browser, page: &str) {
    let unlabelled = b.unlabelled_controls().await;
    assert!(
        unlabelled.is_empty(),
        "controls without a label on {page}: {unlabelled:?}"
    );
}

/// Every link and control of the page can take keyboard focus.
async fn assert_keyboard_reachable(b: &Browser, page: &str) {
    let unreachable: Vec<String> = b
        .driver
        .execute(
            r#"return Array.from(document.querySelectorAll('a[href], button, input:not([type=hidden]), select, textarea'))
                 .filter(el => el.tabIndex < 0 || el.disabled)
                 .map(el => el.outerHTML.slice(0, 100));"#,
            Vec::new(),
        )
        .await
        .expect("script")
        .convert()
        .expect("list");
    assert!(
        unreachable.is_empty(),
        "not reachable by keyboard on {page}: {unreachable:?}"
    );
}

/// A form posted with the session cookie but without the page's CSRF token
/// is refused.
async fn post_without_csrf(addr: SocketAddr, path: &str, cookie: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let body = "status=DRAINING";
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nCookie: berth_console={cookie}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(request.as_bytes()).await.expect("write");
    let mut raw = String::new();
    s.read_to_string(&mut raw).await.expect("read");
    raw.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn console_signs_in_shows_the_cluster_and_drains_an_instance() {
    let cluster = TestCluster::start(1).await;
    let b = Browser::start().await;
    let instance_id = cluster.agents[0]
        .arn
        .rsplit('/')
        .next()
        .expect("id")
        .to_owned();

    // Not signed in: every page leads to the sign-in form.
    b.goto(&url(&cluster, "/console/clusters/default")).await;
    b.wait_for_text("h1", "Berth console", LIVE).await;
    assert_labelled(&b, "sign-in").await;
    b.screenshot("sign-in").await;

    // A wrong secret is refused with a message, and nothing is revealed.
    sign_in(&b, &cluster, "not-the-secret-at-all").await;
    b.wait_for_text("#sign-in-error", "not right", LIVE).await;

    sign_in(&b, &cluster, SECRET_ACCESS_KEY).await;
    b.wait_for_text("h1", "Clusters", LIVE).await;
    b.wait_for_text(".who", ACCESS_KEY_ID, LIVE).await;
    b.wait_for_text("#clusters", "default", LIVE).await;
    // The session cookie is HttpOnly: scripts cannot read it.
    let visible: String = b
        .driver
        .execute("return document.cookie;", Vec::new())
        .await
        .expect("script")
        .convert()
        .expect("string");
    assert!(!visible.contains("berth_console"), "{visible}");
    let cookie = b
        .driver
        .get_named_cookie("berth_console")
        .await
        .expect("the session cookie");
    assert_eq!(cookie.http_only, Some(true));
    assert_eq!(cookie.same_site, Some(SameSite::Strict));
    b.screenshot("clusters").await;

    // The cluster: the instance, connected, with its resources as bars.
    b.click("#clusters a").await;
    b.wait_for_text("#instances", &instance_id, LIVE).await;
    b.wait_for_text("#instances", "connected", LIVE).await;
    assert_labelled(&b, "cluster").await;
    assert_keyboard_reachable(&b, "cluster").await;
    let meters = b
        .driver
        .find_all(By::Css("#instances meter"))
        .await
        .expect("meters");
    assert_eq!(meters.len(), 2, "CPU and memory bars");
    b.screenshot("cluster").await;

    // Without the page's CSRF token, a form post is refused.
    let status = post_without_csrf(
        cluster.control_plane.http,
        &format!("/console/clusters/default/instances/{instance_id}/state"),
        &cookie.value,
    )
    .await;
    assert_eq!(status, 403);

    // Drain from the instance page, then activate again.
    b.click(&format!("#instances a[href$='{instance_id}']"))
        .await;
    b.wait_for_text("#attributes", "ecs.os-type", LIVE).await;
    assert_labelled(&b, "instance").await;
    b.click("#drain").await;
    b.wait_for_text("#flash", "DRAINING", LIVE).await;
    b.wait_for_text("#instance-status", "DRAINING", LIVE).await;
    let described = cluster
        .ecs
        .describe_container_instances()
        .container_instances(&instance_id)
        .send()
        .await
        .expect("DescribeContainerInstances");
    assert_eq!(
        described.container_instances()[0].status(),
        Some("DRAINING")
    );
    b.screenshot("instance").await;
    b.click("#activate").await;
    b.wait_for_text("#instance-status", "ACTIVE", LIVE).await;
    let described = cluster
        .ecs
        .describe_container_instances()
        .container_instances(&instance_id)
        .send()
        .await
        .expect("DescribeContainerInstances");
    assert_eq!(
        described.container_instances()[0].status(),
        Some(ContainerInstanceStatus::Active.as_str())
    );

    // Sign out: the session is gone, pages lead to sign-in again.
    b.click("#sign-out").await;
    b.wait_for_text("h1", "Berth console", LIVE).await;
    b.goto(&url(&cluster, "/console/clusters")).await;
    b.wait_for_text("h1", "Berth console", LIVE).await;
    b.quit().await;
}

#[tokio::test]
async fn console_runs_a_task_watches_it_live_stops_it_and_explains_placement() {
    let cluster = TestCluster::start(1).await;
    let family = register(
        &cluster.ecs,
        "console-run",
        vec![container("main", &["sleep", "300"])],
    )
    .await;
    let b = Browser::start().await;
    sign_in(&b, &cluster, SECRET_ACCESS_KEY).await;
    b.wait_for_text("h1", "Clusters", LIVE).await;

    b.goto(&url(&cluster, "/console/clusters/default/run"))
        .await;
    assert_labelled(&b, "run task").await;
    assert_keyboard_reachable(&b, "run task").await;
    b.fill("#taskDefinition", &family).await;
    b.fill("#count", "1").await;
    b.fill("#startedBy", "console-test").await;
    b.screenshot("run-task").await;
    b.click("#run").await;
    // One task: the browser lands on its page, which updates itself.
    b.wait_for_text("h1", "Task ", LIVE).await;
    b.wait_for_text("#flash", "Started 1 task", LIVE).await;
    b.driver
        .execute("window.berthMarker = 'same page';", Vec::new())
        .await
        .expect("mark the page");
    b.wait_for_text("#last-status", "RUNNING", LIVE).await;
    let marker: String = b
        .driver
        .execute("return window.berthMarker || 'reloaded';", Vec::new())
        .await
        .expect("read the mark")
        .convert()
        .expect("string");
    assert_eq!(marker, "same page", "RUNNING arrived without a reload");
    b.wait_for_text("#live-state", "live", LIVE).await;
    b.wait_for_text("#containers", "RUNNING", LIVE).await;
    b.wait_for_text("#timeline", "Started", LIVE).await;
    assert_labelled(&b, "task").await;
    b.screenshot("task-running").await;
    let task_url = b.driver.current_url().await.expect("url").to_string();
    let task_id = task_url.rsplit('/').next().expect("id").to_owned();
    let described = cluster
        .ecs
        .describe_tasks()
        .tasks(&task_id)
        .send()
        .await
        .expect("DescribeTasks");
    assert_eq!(described.tasks()[0].started_by(), Some("console-test"));

    // Stop it with a reason; the page shows the stop as it happens.
    b.fill("#stop-reason", "stopped by the console test").await;
    b.click("#stop").await;
    b.wait_for_text("#flash", "Stopping", LIVE).await;
    b.driver
        .execute("window.berthMarker = 'same page';", Vec::new())
        .await
        .expect("mark the page");
    b.wait_for_text("#last-status", "STOPPED", LIVE).await;
    b.wait_for_text("#stopped-reason", "stopped by the console test", LIVE)
        .await;
    b.wait_for_text("#stop-code", "UserInitiated", LIVE).await;
    let stopped = cluster
        .ecs
        .describe_tasks()
        .tasks(&task_id)
        .send()
        .await
        .expect("DescribeTasks");
    let exit_code = stopped.tasks()[0].containers()[0]
        .exit_code()
        .expect("an exit code once STOPPED");
    b.wait_for_text(".exit-code", &exit_code.to_string(), LIVE)
        .await;
    b.screenshot("task-stopped").await;

    // It is listed with the stopped tasks.
    b.goto(&url(
        &cluster,
        "/console/clusters/default/tasks?status=STOPPED",
    ))
    .await;
    b.wait_for_text("#tasks", &task_id, LIVE).await;
    assert_labelled(&b, "tasks").await;
    b.screenshot("tasks").await;

    // A task that cannot be placed: the failure says why, per instance.
    b.goto(&url(&cluster, "/console/clusters/default/run"))
        .await;
    b.fill("#taskDefinition", &family).await;
    b.fill(
        "#placementConstraints",
        r#"[{"type": "memberOf", "expression": "attribute:rack == r9"}]"#,
    )
    .await;
    b.click("#run").await;
    b.wait_for_text("#failures", "MemberOf", LIVE).await;
    b.wait_for_text("#failures .detail", "rack", LIVE).await;
    b.screenshot("run-placement-failure").await;

    // Bad JSON is refused with a message that names the field.
    b.fill("#placementConstraints", "").await;
    b.fill("#overrides", "{not json").await;
    b.click("#run").await;
    b.wait_for_text("#run-error", "Overrides is not valid JSON", LIVE)
        .await;
    b.quit().await;
}

#[tokio::test]
async fn console_scales_a_service_and_manages_task_definitions() {
    let cluster = TestCluster::start(1).await;
    let family = register(
        &cluster.ecs,
        "console-svc",
        vec![container("main", &["sleep", "300"])],
    )
    .await;
    cluster
        .ecs
        .create_service()
        .service_name("web")
        .task_definition(&family)
        .desired_count(1)
        .send()
        .await
        .expect("CreateService");
    let b = Browser::start().await;
    sign_in(&b, &cluster, SECRET_ACCESS_KEY).await;
    b.wait_for_text("h1", "Clusters", LIVE).await;

    b.goto(&url(&cluster, "/console/clusters/default")).await;
    b.wait_for_text("#services", "web", LIVE).await;
    b.click("#services a").await;
    b.wait_for_text("#running", "1", LIVE).await;
    assert_labelled(&b, "service").await;
    assert_keyboard_reachable(&b, "service").await;
    b.fill("#desiredCount", "2").await;
    b.click("#scale").await;
    b.wait_for_text("#flash", "Desired count set to 2", LIVE)
        .await;
    b.driver
        .execute("window.berthMarker = 'same page';", Vec::new())
        .await
        .expect("mark the page");
    b.wait_for_text("#running", "2", LIVE).await;
    b.wait_for_text("#events", "has reached a steady state", LIVE)
        .await;
    let marker: String = b
        .driver
        .execute("return window.berthMarker || 'reloaded';", Vec::new())
        .await
        .expect("read the mark")
        .convert()
        .expect("string");
    assert_eq!(marker, "same page", "the count moved without a reload");
    b.screenshot("service").await;

    // Task definitions: register a revision from the current one's JSON,
    // compare the two, deregister the old one.
    b.goto(&url(&cluster, "/console/task-definitions")).await;
    b.wait_for_text("#families", "console-svc", LIVE).await;
    b.screenshot("task-definitions").await;
    b.click("#families a").await;
    b.click("#revisions a").await;
    b.wait_for_text("#json", "\"containerDefinitions\"", LIVE)
        .await;
    b.click("#new-revision").await;
    assert_labelled(&b, "register").await;
    let json = b
        .driver
        .find(By::Id("json"))
        .await
        .expect("textarea")
        .prop("value")
        .await
        .expect("value")
        .expect("the form is filled with revision 1");
    assert!(json.contains("\"family\": \"console-svc\""), "{json}");
    let changed = json.replacen("\"sleep\"", "\"sleep\", \"--\"", 1);
    assert_ne!(changed, json);
    b.fill("#json", &changed).await;
    b.click("#register").await;
    b.wait_for_text("#flash", "Registered console-svc:2", LIVE)
        .await;
    b.screenshot("task-definition").await;
    b.click("a[href$='diff?a=1&b=2']").await;
    b.wait_for_text(
        "#diff-summary",
        "differ between revision 1 and revision 2",
        LIVE,
    )
    .await;
    let added = b
        .driver
        .find_all(By::Css("#diff .added"))
        .await
        .expect("added lines");
    assert!(!added.is_empty(), "the diff shows added lines");
    b.screenshot("task-definition-diff").await;

    // An invalid definition is refused with the API's message.
    b.goto(&url(&cluster, "/console/task-definitions/register"))
        .await;
    b.fill(
        "#json",
        r#"{"family": "console-svc", "containerDefinitions": []}"#,
    )
    .await;
    b.click("#register").await;
    b.wait_for_text("#register-error", "ClientException", LIVE)
        .await;
    b.screenshot("register-task-definition").await;

    b.goto(&url(&cluster, "/console/task-definitions/console-svc/1"))
        .await;
    b.click("#deregister").await;
    b.wait_for_text("#td-status", "INACTIVE", LIVE).await;
    b.quit().await;
}
