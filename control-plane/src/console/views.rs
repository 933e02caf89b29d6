//! Every console page (`GET`): a function of the cluster state, read through
//! the same use cases as the ECS API. A page is three HTML parts: `before`
//! and `after` are rendered once (forms), `live` is re-rendered and pushed
//! whenever the cluster changes.

use super::diff;
use super::sessions::{Flash, Session};
use crate::api::ecs_json::ApiError;
use crate::app::ControlPlane;
use crate::model::cluster::{DescribeClustersRequest, ListClustersRequest};
use crate::model::container_instance::{
    ContainerInstance, DescribeContainerInstancesRequest, ListContainerInstancesRequest,
};
use crate::model::service::{DescribeServicesRequest, ListServicesRequest, Service};
use crate::model::task::{DescribeTasksRequest, ListTasksRequest, Task};
use crate::model::task_definition::{
    DescribeTaskDefinitionRequest, ListTaskDefinitionFamiliesRequest, ListTaskDefinitionsRequest,
    TaskDefinition,
};
use crate::model::time::Timestamp;
use askama::Template;
use http::StatusCode;
use std::collections::HashMap;

/// Rows per page of instances and tasks.
pub const PAGE_SIZE: i64 = 50;

/// What a view reads with.
#[derive(Debug)]
pub struct Ctx<'a> {
    /// The use cases.
    pub app: &'a ControlPlane,
    /// Who is looking (forms carry its CSRF token).
    pub session: &'a Session,
}

/// A breadcrumb.
#[derive(Debug, Clone)]
pub struct Crumb {
    /// Shown.
    pub label: String,
    /// Where it leads.
    pub href: String,
}

fn crumb(label: impl Into<String>, href: impl Into<String>) -> Crumb {
    Crumb {
        label: label.into(),
        href: href.into(),
    }
}

/// One rendered page.
#[derive(Debug, Default)]
pub struct Page {
    /// The `<h1>` and `<title>`.
    pub title: String,
    /// The path to it.
    pub crumbs: Vec<Crumb>,
    /// Rendered once, above the live region.
    pub before: String,
    /// Re-rendered on every change.
    pub live: String,
    /// Rendered once, below the live region.
    pub after: String,
}

/// Why a page cannot be shown.
#[derive(Debug)]
pub enum ViewError {
    /// No such page or resource.
    NotFound(String),
    /// The API refused (its message is shown).
    Api(ApiError),
}

impl From<crate::app::Error> for ViewError {
    fn from(e: crate::app::Error) -> Self {
        ViewError::Api(ApiError::from(e))
    }
}

impl ViewError {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ViewError::NotFound(_) => StatusCode::NOT_FOUND,
            ViewError::Api(e) if e.type_name() == "ServerException" => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
            ViewError::Api(_) => StatusCode::BAD_REQUEST,
        }
    }

    /// A page that says what went wrong.
    pub fn page(&self) -> Page {
        let (title, message) = match self {
            ViewError::NotFound(m) => ("Not found".to_owned(), m.clone()),
            ViewError::Api(e) => (e.type_name().to_owned(), e.to_string()),
        };
        Page {
            live: render(&ErrorBox { message }),
            title,
            ..Page::default()
        }
    }
}

type Result<T> = std::result::Result<T, ViewError>;

fn render<T: Template>(t: &T) -> String {
    t.render().unwrap_or_else(|e| {
        tracing::error!(error = %e, "a console template failed to render");
        "<p class=\"error\">This part of the page could not be shown.</p>".to_owned()
    })
}

/// Percent-encodes `s` for a URL's path segment or query value.
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/' | b':') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `2026-12-08 04:05:06 UTC`.
pub fn utc(ts: Timestamp) -> String {
    let ms = ts.as_millis();
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// `5 s ago`, `3 min ago`, `2 h ago`, `4 d ago`.
pub fn ago(ts: Timestamp) -> String {
    let s = (Timestamp::now().as_millis() - ts.as_millis()).max(0) / 1000;
    match s {
        0..60 => format!("{s} s ago"),
        60..3600 => format!("{} min ago", s / 60),
        3600..86_400 => format!("{} h ago", s / 3600),
        _ => format!("{} d ago", s / 86_400),
    }
}

/// The last part of an ARN (`…/cluster/ID` → `ID`).
pub fn short_id(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

/// `family:revision` of a task definition ARN.
pub fn family_revision(arn: &str) -> &str {
    arn.rsplit_once(":task-definition/")
        .map(|(_, fr)| fr)
        .unwrap_or(arn)
}

fn container_status(s: crate::model::task::ContainerStatus) -> &'static str {
    use crate::model::task::ContainerStatus;
    match s {
        ContainerStatus::Pending => "PENDING",
        ContainerStatus::Running => "RUNNING",
        ContainerStatus::Stopped => "STOPPED",
    }
}

/// Every item of a paginated list action: `fetch` gets the next token and
/// answers one page and the token after it.
fn every_page(
    mut fetch: impl FnMut(Option<String>) -> crate::app::Result<(Vec<String>, Option<String>)>,
) -> Result<Vec<String>> {
    let mut items = Vec::new();
    let mut token = None;
    loop {
        let (page, next) = api(fetch(token))?;
        items.extend(page);
        match next {
            Some(t) => token = Some(t),
            None => return Ok(items),
        }
    }
}

fn api<T>(r: crate::app::Result<T>) -> Result<T> {
    r.map_err(ViewError::from)
}

/// The page for a path below `/console/`.
pub fn view(ctx: &Ctx<'_>, segs: &[String], q: &HashMap<String, String>) -> Result<Page> {
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    match s.as_slice() {
        [] | ["clusters"] => clusters(ctx),
        ["clusters", c] => cluster(ctx, c, q),
        ["clusters", c, "instances", id] => instance(ctx, c, id),
        ["clusters", c, "tasks"] => tasks(ctx, c, q),
        ["clusters", c, "tasks", id] => task(ctx, c, id),
        ["clusters", c, "run"] => {
            cluster_exists(ctx, c)?;
            Ok(run_form(ctx, c, &RunForm::from_query(q), None))
        }
        ["clusters", c, "services", name] => service(ctx, c, name),
        ["task-definitions"] => families(ctx, q),
        ["task-definitions", "register"] => register_form(ctx, q),
        ["task-definitions", f] => family(ctx, f),
        ["task-definitions", family, "diff"] => compare(ctx, family, q),
        ["task-definitions", family, revision] => task_definition(ctx, family, revision),
        _ => Err(ViewError::NotFound(
            "There is no console page at this address.".to_owned(),
        )),
    }
}

#[derive(Template)]
#[template(path = "console/layout.html")]
struct Layout<'a> {
    title: &'a str,
    crumbs: &'a [Crumb],
    user: Option<&'a str>,
    csrf: &'a str,
    flash: Option<Flash>,
    live_path: &'a str,
    before: &'a str,
    live: &'a str,
    after: &'a str,
    version: &'a str,
}

/// The whole document around `page`.
pub fn layout(ctx: &Ctx<'_>, page: Page, flash: Option<Flash>, path_and_query: &str) -> String {
    render(&Layout {
        title: &page.title,
        crumbs: &page.crumbs,
        user: ctx.session.access_key_id.as_deref(),
        csrf: &ctx.session.csrf,
        flash,
        live_path: path_and_query,
        before: &page.before,
        live: &page.live,
        after: &page.after,
        version: env!("CARGO_PKG_VERSION"),
    })
}

#[derive(Template)]
#[template(path = "console/sign_in.html")]
struct SignIn<'a> {
    next: &'a str,
    access_key_id: &'a str,
    error: Option<&'a str>,
}

/// The sign-in page.
pub fn sign_in(next: &str, access_key_id: &str, error: Option<&str>) -> String {
    render(&SignIn {
        next,
        access_key_id,
        error,
    })
}

#[derive(Template)]
#[template(path = "console/error.html")]
struct ErrorBox {
    message: String,
}

// ---- clusters ----

struct ClusterRow {
    name: String,
    status: String,
    instances: i64,
    running: i64,
    pending: i64,
    services: i64,
}

#[derive(Template)]
#[template(path = "console/clusters.html")]
struct ClustersLive {
    rows: Vec<ClusterRow>,
}

fn clusters(ctx: &Ctx<'_>) -> Result<Page> {
    let names = every_page(|next_token| {
        ctx.app
            .list_clusters(ListClustersRequest {
                next_token,
                max_results: Some(100),
            })
            .map(|p| (p.cluster_arns, p.next_token))
    })?;
    let mut rows = Vec::new();
    for chunk in names.chunks(100) {
        let described = api(ctx.app.describe_clusters(DescribeClustersRequest {
            clusters: Some(chunk.to_vec()),
            include: None,
        }))?;
        rows.extend(described.clusters.into_iter().map(|c| ClusterRow {
            name: c.cluster_name,
            status: c.status,
            instances: c.registered_container_instances_count,
            running: c.running_tasks_count,
            pending: c.pending_tasks_count,
            services: c.active_services_count,
        }));
    }
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Page {
        title: "Clusters".into(),
        live: render(&ClustersLive { rows }),
        ..Page::default()
    })
}

// ---- one cluster ----

struct Usage {
    used: i64,
    registered: i64,
}

impl Usage {
    fn of(i: &ContainerInstance, name: &str) -> Usage {
        let get = |list: &[crate::model::Resource]| {
            list.iter()
                .find(|r| r.name == name)
                .map(|r| r.integer_value)
                .unwrap_or(0)
        };
        let registered = get(&i.registered_resources);
        Usage {
            used: registered - get(&i.remaining_resources),
            registered,
        }
    }

    fn free(&self) -> i64 {
        self.registered - self.used
    }
}

struct InstanceRow {
    id: String,
    host: String,
    status: String,
    connected: bool,
    since: String,
    cpu: Usage,
    memory: Usage,
    running: i64,
    pending: i64,
    health: String,
}

struct ServiceRow {
    name: String,
    status: String,
    desired: i64,
    running: i64,
    pending: i64,
    task_definition: String,
    rollout: String,
}

#[derive(Template)]
#[template(path = "console/cluster.html")]
struct ClusterLive {
    name: String,
    running: i64,
    pending: i64,
    instance_count: i64,
    instances: Vec<InstanceRow>,
    next: Option<String>,
    paged: bool,
    services: Vec<ServiceRow>,
}

fn cluster_exists(ctx: &Ctx<'_>, cluster: &str) -> Result<crate::model::cluster::Cluster> {
    let mut described = api(ctx.app.describe_clusters(DescribeClustersRequest {
        clusters: Some(vec![cluster.to_owned()]),
        include: None,
    }))?;
    match described.clusters.pop() {
        Some(c) => Ok(c),
        None => Err(ViewError::NotFound(format!(
            "Cluster '{cluster}' does not exist."
        ))),
    }
}

fn describe_instances(
    ctx: &Ctx<'_>,
    cluster: &str,
    arns: Vec<String>,
) -> Result<Vec<ContainerInstance>> {
    if arns.is_empty() {
        return Ok(Vec::new());
    }
    Ok(api(ctx
        .app
        .describe_container_instances(DescribeContainerInstancesRequest {
            cluster: Some(cluster.to_owned()),
            container_instances: Some(arns),
            include: Some(vec!["CONTAINER_INSTANCE_HEALTH".to_owned()]),
        }))?
    .container_instances)
}

/// The rows of `instances`, with since when each agent is (dis)connected.
fn instance_rows(ctx: &Ctx<'_>, instances: &[ContainerInstance]) -> Vec<InstanceRow> {
    let connections = ctx.app.instance_connections(
        instances
            .iter()
            .map(|i| short_id(&i.container_instance_arn)),
    );
    instances
        .iter()
        .map(|i| {
            let id = short_id(&i.container_instance_arn).to_owned();
            let since = connections
                .get(&id)
                .and_then(|(_, since)| *since)
                .map(|t| format!("since {} ({})", utc(t), ago(t)))
                .unwrap_or_default();
            InstanceRow {
                host: i.ec2_instance_id.clone(),
                status: i.status.clone(),
                connected: i.agent_connected,
                since,
                cpu: Usage::of(i, "CPU"),
                memory: Usage::of(i, "MEMORY"),
                running: i.running_tasks_count,
                pending: i.pending_tasks_count,
                health: i
                    .health_status
                    .as_ref()
                    .map(|h| h.overall_status.clone())
                    .unwrap_or_default(),
                id,
            }
        })
        .collect()
}

fn services_of(ctx: &Ctx<'_>, cluster: &str) -> Result<Vec<Service>> {
    let arns = every_page(|next_token| {
        ctx.app
            .list_services(ListServicesRequest {
                cluster: Some(cluster.to_owned()),
                next_token,
                max_results: Some(100),
                ..Default::default()
            })
            .map(|p| (p.service_arns, p.next_token))
    })?;
    let mut out = Vec::new();
    for chunk in arns.chunks(10) {
        let described = api(ctx.app.describe_services(DescribeServicesRequest {
            cluster: Some(cluster.to_owned()),
            services: Some(chunk.to_vec()),
            include: None,
        }))?;
        out.extend(described.services);
    }
    out.sort_by(|a, b| a.service_name.cmp(&b.service_name));
    Ok(out)
}

fn cluster(ctx: &Ctx<'_>, name: &str, q: &HashMap<String, String>) -> Result<Page> {
    let c = cluster_exists(ctx, name)?;
    let listed = api(ctx
        .app
        .list_container_instances(ListContainerInstancesRequest {
            cluster: Some(name.to_owned()),
            next_token: q.get("next").cloned(),
            max_results: Some(PAGE_SIZE),
            ..Default::default()
        }))?;
    let instances = instance_rows(
        ctx,
        &describe_instances(ctx, name, listed.container_instance_arns)?,
    );
    let services = services_of(ctx, name)?
        .into_iter()
        .map(|s| {
            let rollout = s
                .deployments
                .iter()
                .find(|d| d.status == "PRIMARY")
                .map(|d| d.rollout_state.clone())
                .unwrap_or_default();
            ServiceRow {
                name: s.service_name,
                status: s.status,
                desired: s.desired_count,
                running: s.running_count,
                pending: s.pending_count,
                task_definition: family_revision(&s.task_definition).to_owned(),
                rollout,
            }
        })
        .collect();
    Ok(Page {
        title: format!("Cluster {name}"),
        crumbs: vec![crumb("Clusters", "/console/clusters")],
        live: render(&ClusterLive {
            name: name.to_owned(),
            running: c.running_tasks_count,
            pending: c.pending_tasks_count,
            instance_count: c.registered_container_instances_count,
            instances,
            paged: q.contains_key("next"),
            next: listed.next_token,
            services,
        }),
        ..Page::default()
    })
}

// ---- one instance ----

struct ResourceRow {
    name: String,
    registered: String,
    remaining: String,
}

struct TaskRow {
    id: String,
    definition: String,
    last_status: String,
    desired_status: String,
    health: String,
    instance: String,
    group: String,
    when: String,
    stop_code: String,
}

fn task_row(t: &Task) -> TaskRow {
    let when = t.stopped_at.or(t.started_at).unwrap_or(t.created_at);
    TaskRow {
        id: short_id(&t.task_arn).to_owned(),
        definition: family_revision(&t.task_definition_arn).to_owned(),
        last_status: t.last_status.as_str().to_owned(),
        desired_status: t.desired_status.as_str().to_owned(),
        health: t.health_status.clone(),
        instance: t
            .container_instance_arn
            .as_deref()
            .map(short_id)
            .unwrap_or_default()
            .to_owned(),
        group: t.group.clone(),
        when: format!("{} ({})", utc(when), ago(when)),
        stop_code: t.stop_code.clone().unwrap_or_default(),
    }
}

#[derive(Template)]
#[template(path = "console/instance.html")]
struct InstanceLive {
    cluster: String,
    row: InstanceRow,
    arn: String,
    agent_version: String,
    docker_version: String,
    registered_at: String,
    capacity_provider: String,
    attributes: Vec<(String, String)>,
    resources: Vec<ResourceRow>,
    tasks: Vec<TaskRow>,
    more_tasks: bool,
    csrf: String,
}

fn resource_text(r: &crate::model::Resource) -> String {
    match r.kind.as_str() {
        "STRINGSET" => {
            let set = r.string_set_value.clone().unwrap_or_default();
            if set.is_empty() {
                "none".to_owned()
            } else {
                set.join(", ")
            }
        }
        "LONG" => r.long_value.to_string(),
        "DOUBLE" => r.double_value.to_string(),
        _ => r.integer_value.to_string(),
    }
}

fn tasks_by_arn(ctx: &Ctx<'_>, cluster: &str, arns: Vec<String>) -> Result<Vec<Task>> {
    if arns.is_empty() {
        return Ok(Vec::new());
    }
    Ok(api(ctx.app.describe_tasks(DescribeTasksRequest {
        cluster: Some(cluster.to_owned()),
        tasks: Some(arns),
        include: None,
    }))?
    .tasks)
}

fn instance(ctx: &Ctx<'_>, cluster: &str, id: &str) -> Result<Page> {
    cluster_exists(ctx, cluster)?;
    let described = describe_instances(ctx, cluster, vec![id.to_owned()])?;
    let Some(i) = described.first() else {
        return Err(ViewError::NotFound(format!(
            "Container instance '{id}' is not in cluster '{cluster}'."
        )));
    };
    let row = instance_rows(ctx, std::slice::from_ref(i))
        .pop()
        .ok_or_else(|| ViewError::NotFound(format!("Container instance '{id}' is gone.")))?;
    let listed = api(ctx.app.list_tasks(ListTasksRequest {
        cluster: Some(cluster.to_owned()),
        container_instance: Some(i.container_instance_arn.clone()),
        max_results: Some(100),
        ..Default::default()
    }))?;
    let more_tasks = listed.next_token.is_some();
    let tasks = tasks_by_arn(ctx, cluster, listed.task_arns)?
        .iter()
        .map(task_row)
        .collect();
    let remaining: HashMap<&str, String> = i
        .remaining_resources
        .iter()
        .map(|r| (r.name.as_str(), resource_text(r)))
        .collect();
    let resources = i
        .registered_resources
        .iter()
        .map(|r| ResourceRow {
            name: r.name.clone(),
            registered: resource_text(r),
            remaining: remaining.get(r.name.as_str()).cloned().unwrap_or_default(),
        })
        .collect();
    let mut attributes: Vec<(String, String)> = i
        .attributes
        .iter()
        .map(|a| (a.name.clone(), a.value.clone().unwrap_or_default()))
        .collect();
    attributes.sort();
    Ok(Page {
        title: format!("Instance {}", row.host),
        crumbs: vec![
            crumb("Clusters", "/console/clusters"),
            crumb(
                cluster,
                format!("/console/clusters/{}", url_encode(cluster)),
            ),
        ],
        live: render(&InstanceLive {
            cluster: cluster.to_owned(),
            arn: i.container_instance_arn.clone(),
            agent_version: i.version_info.agent_version.clone().unwrap_or_default(),
            docker_version: i.version_info.docker_version.clone().unwrap_or_default(),
            registered_at: utc(i.registered_at),
            capacity_provider: i.capacity_provider_name.clone().unwrap_or_default(),
            attributes,
            resources,
            tasks,
            more_tasks,
            row,
            csrf: ctx.session.csrf.clone(),
        }),
        ..Page::default()
    })
}

// ---- tasks ----

#[derive(Template)]
#[template(path = "console/tasks_filter.html")]
struct TasksFilter<'a> {
    cluster: &'a str,
    status: &'a str,
    family: &'a str,
    service: &'a str,
    instance: &'a str,
}

#[derive(Template)]
#[template(path = "console/tasks.html")]
struct TasksLive {
    cluster: String,
    rows: Vec<TaskRow>,
    next: Option<String>,
    paged: bool,
    /// The filter as query parameters, for the next page's link.
    filter_query: String,
    missing: Vec<String>,
}

fn tasks(ctx: &Ctx<'_>, cluster: &str, q: &HashMap<String, String>) -> Result<Page> {
    cluster_exists(ctx, cluster)?;
    let get = |k: &str| q.get(k).map(|s| s.trim()).filter(|s| !s.is_empty());
    let status = get("status").unwrap_or("RUNNING");
    let (family, service, instance) = (get("family"), get("service"), get("instance"));
    let (arns, next) = if let Some(ids) = get("ids") {
        // A RunTask's tasks, named one by one.
        let ids: Vec<String> = ids
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .take(100)
            .map(str::to_owned)
            .collect();
        (ids, None)
    } else {
        let listed = api(ctx.app.list_tasks(ListTasksRequest {
            cluster: Some(cluster.to_owned()),
            container_instance: instance.map(str::to_owned),
            family: family.map(str::to_owned),
            service_name: service.map(str::to_owned),
            desired_status: Some(status.to_owned()),
            next_token: q.get("next").cloned(),
            max_results: Some(PAGE_SIZE),
            ..Default::default()
        }))?;
        (listed.task_arns, listed.next_token)
    };
    let (described, missing) = if arns.is_empty() {
        (Vec::new(), Vec::new())
    } else {
        let r = api(ctx.app.describe_tasks(DescribeTasksRequest {
            cluster: Some(cluster.to_owned()),
            tasks: Some(arns),
            include: None,
        }))?;
        let missing = r
            .failures
            .into_iter()
            .map(|f| f.arn.unwrap_or_default())
            .collect();
        (r.tasks, missing)
    };
    let mut filter_query = format!("status={}", url_encode(status));
    for (k, v) in [
        ("family", family),
        ("service", service),
        ("instance", instance),
    ] {
        if let Some(v) = v {
            filter_query.push_str(&format!("&{k}={}", url_encode(v)));
        }
    }
    Ok(Page {
        title: format!("Tasks in {cluster}"),
        crumbs: vec![
            crumb("Clusters", "/console/clusters"),
            crumb(
                cluster,
                format!("/console/clusters/{}", url_encode(cluster)),
            ),
        ],
        before: render(&TasksFilter {
            cluster,
            status,
            family: family.unwrap_or(""),
            service: service.unwrap_or(""),
            instance: instance.unwrap_or(""),
        }),
        live: render(&TasksLive {
            cluster: cluster.to_owned(),
            rows: described.iter().map(task_row).collect(),
            next,
            paged: q.contains_key("next"),
            filter_query,
            missing,
        }),
        ..Page::default()
    })
}

// ---- one task ----

struct ContainerRow {
    name: String,
    image: String,
    digest: String,
    runtime_id: String,
    last_status: String,
    exit_code: String,
    reason: String,
    health: String,
    bindings: Vec<String>,
}

struct Moment {
    label: &'static str,
    at: String,
    ago: String,
}

#[derive(Template)]
#[template(path = "console/task.html")]
struct TaskLive {
    cluster: String,
    id: String,
    arn: String,
    definition: String,
    family: String,
    revision: String,
    last_status: String,
    desired_status: String,
    health: String,
    launch_type: String,
    instance: String,
    group: String,
    started_by: String,
    cpu: String,
    memory: String,
    availability_zone: String,
    stop_code: String,
    stopped_reason: String,
    timeline: Vec<Moment>,
    containers: Vec<ContainerRow>,
    attachments: Vec<(String, String, String)>,
    tags: Vec<(String, String)>,
    stoppable: bool,
    csrf: String,
}

fn task(ctx: &Ctx<'_>, cluster: &str, id: &str) -> Result<Page> {
    cluster_exists(ctx, cluster)?;
    let described = api(ctx.app.describe_tasks(DescribeTasksRequest {
        cluster: Some(cluster.to_owned()),
        tasks: Some(vec![id.to_owned()]),
        include: Some(vec!["TAGS".to_owned()]),
    }))?;
    let Some(t) = described.tasks.into_iter().next() else {
        return Err(ViewError::NotFound(format!(
            "Task '{id}' is not in cluster '{cluster}' (STOPPED tasks are forgotten after the retention period)."
        )));
    };
    let mut timeline: Vec<(Timestamp, &'static str)> = [
        (Some(t.created_at), "Created"),
        (t.pull_started_at, "Image pull started"),
        (t.pull_stopped_at, "Image pull finished"),
        (t.connectivity_at, "Connected"),
        (t.started_at, "Started"),
        (t.stopping_at, "Stopping"),
        (t.execution_stopped_at, "Containers stopped"),
        (t.stopped_at, "Stopped"),
    ]
    .into_iter()
    .filter_map(|(at, label)| at.map(|at| (at, label)))
    .collect();
    timeline.sort_by_key(|(at, _)| at.as_millis());
    let containers = t
        .containers
        .iter()
        .map(|c| ContainerRow {
            name: c.name.clone(),
            image: c.image.clone(),
            digest: c.image_digest.clone().unwrap_or_default(),
            runtime_id: c
                .runtime_id
                .as_deref()
                .map(|r| r.chars().take(12).collect())
                .unwrap_or_default(),
            last_status: container_status(c.last_status).to_owned(),
            exit_code: c.exit_code.map(|e| e.to_string()).unwrap_or_default(),
            reason: c.reason.clone().unwrap_or_default(),
            health: c.health_status.clone(),
            bindings: c
                .network_bindings
                .iter()
                .map(|b| {
                    format!(
                        "{}:{} → {}/{}",
                        b.bind_ip, b.host_port, b.container_port, b.protocol
                    )
                })
                .collect(),
        })
        .collect();
    let attachments = t
        .attachments
        .iter()
        .map(|a| {
            let field = |k: &str| a.get(k).and_then(|v| v.as_str()).unwrap_or("").to_owned();
            let details = a
                .get("details")
                .and_then(|d| d.as_array())
                .map(|d| {
                    d.iter()
                        .filter_map(|kv| {
                            Some(format!(
                                "{}={}",
                                kv.get("name")?.as_str()?,
                                kv.get("value")?.as_str()?
                            ))
                        })
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default();
            (field("type"), field("status"), details)
        })
        .collect();
    let fr = family_revision(&t.task_definition_arn).to_owned();
    let (family, revision) = fr
        .split_once(':')
        .map(|(f, r)| (f.to_owned(), r.to_owned()))
        .unwrap_or((fr.clone(), String::new()));
    Ok(Page {
        title: format!("Task {id}"),
        crumbs: vec![
            crumb("Clusters", "/console/clusters"),
            crumb(
                cluster,
                format!("/console/clusters/{}", url_encode(cluster)),
            ),
            crumb(
                "Tasks",
                format!("/console/clusters/{}/tasks", url_encode(cluster)),
            ),
        ],
        live: render(&TaskLive {
            cluster: cluster.to_owned(),
            id: id.to_owned(),
            arn: t.task_arn.clone(),
            definition: fr,
            family,
            revision,
            last_status: t.last_status.as_str().to_owned(),
            desired_status: t.desired_status.as_str().to_owned(),
            health: t.health_status.clone(),
            launch_type: t.launch_type.clone(),
            instance: t
                .container_instance_arn
                .as_deref()
                .map(short_id)
                .unwrap_or_default()
                .to_owned(),
            group: t.group.clone(),
            started_by: t.started_by.clone().unwrap_or_default(),
            cpu: t.cpu.clone().unwrap_or_default(),
            memory: t.memory.clone().unwrap_or_default(),
            availability_zone: t.availability_zone.clone().unwrap_or_default(),
            stop_code: t.stop_code.clone().unwrap_or_default(),
            stopped_reason: t.stopped_reason.clone().unwrap_or_default(),
            timeline: timeline
                .into_iter()
                .map(|(at, label)| Moment {
                    label,
                    at: utc(at),
                    ago: ago(at),
                })
                .collect(),
            containers,
            attachments,
            tags: t
                .tags
                .clone()
                .unwrap_or_default()
                .into_iter()
                .map(|tag| (tag.key.unwrap_or_default(), tag.value.unwrap_or_default()))
                .collect(),
            stoppable: t.desired_status != crate::model::task::TaskStatus::Stopped,
            csrf: ctx.session.csrf.clone(),
        }),
        ..Page::default()
    })
}

// ---- run task ----

/// The run-task form's fields, as typed.
#[derive(Debug, Default, Clone)]
pub struct RunForm {
    /// `family[:revision]` or an ARN.
    pub task_definition: String,
    /// How many.
    pub count: String,
    /// Task group.
    pub group: String,
    /// `startedBy`.
    pub started_by: String,
    /// `overrides` as JSON.
    pub overrides: String,
    /// `placementConstraints` as JSON.
    pub constraints: String,
    /// `placementStrategy` as JSON.
    pub strategy: String,
}

impl RunForm {
    /// The fields from a form body (or a link's query).
    pub fn from_query(q: &HashMap<String, String>) -> RunForm {
        let get = |k: &str| q.get(k).cloned().unwrap_or_default();
        RunForm {
            task_definition: get("taskDefinition"),
            count: q.get("count").cloned().unwrap_or_else(|| "1".to_owned()),
            group: get("group"),
            started_by: get("startedBy"),
            overrides: get("overrides"),
            constraints: get("placementConstraints"),
            strategy: get("placementStrategy"),
        }
    }
}

/// What a RunTask that placed less than asked returned.
#[derive(Debug, Default)]
pub struct RunOutcome {
    /// The API's refusal, if it refused.
    pub error: Option<String>,
    /// Tasks it started (id).
    pub started: Vec<String>,
    /// (reason, arn, detail) of every failure.
    pub failures: Vec<(String, String, String)>,
}

#[derive(Template)]
#[template(path = "console/run.html")]
struct RunPage<'a> {
    cluster: &'a str,
    form: &'a RunForm,
    families: Vec<String>,
    outcome: Option<&'a RunOutcome>,
    csrf: &'a str,
}

fn active_families(ctx: &Ctx<'_>) -> Vec<String> {
    ctx.app
        .list_task_definition_families(ListTaskDefinitionFamiliesRequest {
            status: Some("ACTIVE".to_owned()),
            max_results: Some(100),
            ..Default::default()
        })
        .map(|r| r.families)
        .unwrap_or_default()
}

/// The run-task form, with what the last attempt returned.
pub fn run_form(
    ctx: &Ctx<'_>,
    cluster: &str,
    form: &RunForm,
    outcome: Option<&RunOutcome>,
) -> Page {
    Page {
        title: format!("Run a task in {cluster}"),
        crumbs: vec![
            crumb("Clusters", "/console/clusters"),
            crumb(
                cluster,
                format!("/console/clusters/{}", url_encode(cluster)),
            ),
        ],
        after: render(&RunPage {
            cluster,
            form,
            families: active_families(ctx),
            outcome,
            csrf: &ctx.session.csrf,
        }),
        ..Page::default()
    }
}

// ---- one service ----

struct DeploymentRow {
    id: String,
    status: String,
    task_definition: String,
    desired: i64,
    pending: i64,
    running: i64,
    failed: i64,
    rollout: String,
    reason: String,
    created: String,
    updated: String,
}

#[derive(Template)]
#[template(path = "console/service.html")]
struct ServiceLive {
    cluster: String,
    name: String,
    status: String,
    desired: i64,
    running: i64,
    pending: i64,
    task_definition: String,
    scheduling: String,
    launch_type: String,
    min_healthy: String,
    max_percent: String,
    deployments: Vec<DeploymentRow>,
    events: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "console/service_controls.html")]
struct ServiceControls<'a> {
    cluster: &'a str,
    name: &'a str,
    desired: i64,
    replica: bool,
    active: bool,
    csrf: &'a str,
}

fn service(ctx: &Ctx<'_>, cluster: &str, name: &str) -> Result<Page> {
    cluster_exists(ctx, cluster)?;
    let described = api(ctx.app.describe_services(DescribeServicesRequest {
        cluster: Some(cluster.to_owned()),
        services: Some(vec![name.to_owned()]),
        include: None,
    }))?;
    let Some(s) = described.services.into_iter().next() else {
        return Err(ViewError::NotFound(format!(
            "Service '{name}' is not in cluster '{cluster}'."
        )));
    };
    let deployments = s
        .deployments
        .iter()
        .map(|d| DeploymentRow {
            id: d.id.clone(),
            status: d.status.clone(),
            task_definition: family_revision(&d.task_definition).to_owned(),
            desired: d.desired_count,
            pending: d.pending_count,
            running: d.running_count,
            failed: d.failed_tasks,
            rollout: d.rollout_state.clone(),
            reason: d.rollout_state_reason.clone(),
            created: utc(d.created_at),
            updated: ago(d.updated_at),
        })
        .collect();
    let events = s
        .events
        .iter()
        .take(50)
        .map(|e| (utc(e.created_at), e.message.clone()))
        .collect();
    let dc = &s.deployment_configuration;
    let controls = render(&ServiceControls {
        cluster,
        name,
        desired: s.desired_count,
        replica: s.scheduling_strategy == "REPLICA",
        active: s.status == "ACTIVE",
        csrf: &ctx.session.csrf,
    });
    Ok(Page {
        title: format!("Service {name}"),
        crumbs: vec![
            crumb("Clusters", "/console/clusters"),
            crumb(
                cluster,
                format!("/console/clusters/{}", url_encode(cluster)),
            ),
        ],
        before: controls,
        live: render(&ServiceLive {
            cluster: cluster.to_owned(),
            name: name.to_owned(),
            status: s.status.clone(),
            desired: s.desired_count,
            running: s.running_count,
            pending: s.pending_count,
            task_definition: family_revision(&s.task_definition).to_owned(),
            scheduling: s.scheduling_strategy.clone(),
            launch_type: s.launch_type.clone().unwrap_or_default(),
            min_healthy: dc
                .minimum_healthy_percent
                .map(|p| format!("{p}%"))
                .unwrap_or_default(),
            max_percent: dc
                .maximum_percent
                .map(|p| format!("{p}%"))
                .unwrap_or_default(),
            deployments,
            events,
        }),
        ..Page::default()
    })
}

// ---- task definitions ----

#[derive(Template)]
#[template(path = "console/families.html")]
struct FamiliesLive {
    families: Vec<String>,
    status: String,
    next: Option<String>,
}

fn families(ctx: &Ctx<'_>, q: &HashMap<String, String>) -> Result<Page> {
    let status = match q.get("status").map(String::as_str) {
        Some("INACTIVE") => "INACTIVE",
        Some("ALL") => "ALL",
        _ => "ACTIVE",
    };
    let listed = api(ctx
        .app
        .list_task_definition_families(ListTaskDefinitionFamiliesRequest {
            status: Some(status.to_owned()),
            next_token: q.get("next").cloned(),
            max_results: Some(100),
            ..Default::default()
        }))?;
    Ok(Page {
        title: "Task definitions".into(),
        live: render(&FamiliesLive {
            families: listed.families,
            status: status.to_owned(),
            next: listed.next_token,
        }),
        ..Page::default()
    })
}

struct RevisionRow {
    revision: String,
    status: String,
}

#[derive(Template)]
#[template(path = "console/family.html")]
struct FamilyLive {
    family: String,
    revisions: Vec<RevisionRow>,
}

fn revisions_of(ctx: &Ctx<'_>, family: &str) -> Result<Vec<RevisionRow>> {
    let mut rows = Vec::new();
    for status in ["ACTIVE", "INACTIVE"] {
        let arns = every_page(|next_token| {
            ctx.app
                .list_task_definitions(ListTaskDefinitionsRequest {
                    family_prefix: Some(family.to_owned()),
                    status: Some(status.to_owned()),
                    sort: Some("DESC".to_owned()),
                    next_token,
                    max_results: Some(100),
                })
                .map(|p| (p.task_definition_arns, p.next_token))
        })?;
        rows.extend(arns.iter().filter_map(|arn| {
            let (f, r) = family_revision(arn).split_once(':')?;
            (f == family).then(|| RevisionRow {
                revision: r.to_owned(),
                status: status.to_owned(),
            })
        }));
    }
    rows.sort_by_key(|r| std::cmp::Reverse(r.revision.parse::<u64>().unwrap_or(0)));
    Ok(rows)
}

fn family(ctx: &Ctx<'_>, family: &str) -> Result<Page> {
    let revisions = revisions_of(ctx, family)?;
    if revisions.is_empty() {
        return Err(ViewError::NotFound(format!(
            "There is no task definition family '{family}'."
        )));
    }
    Ok(Page {
        title: format!("Family {family}"),
        crumbs: vec![crumb("Task definitions", "/console/task-definitions")],
        live: render(&FamilyLive {
            family: family.to_owned(),
            revisions,
        }),
        ..Page::default()
    })
}

fn describe_revision(ctx: &Ctx<'_>, family: &str, revision: &str) -> Result<TaskDefinition> {
    if revision.parse::<u32>().is_err() {
        return Err(ViewError::NotFound(format!(
            "'{revision}' is not a revision number."
        )));
    }
    Ok(api(ctx
        .app
        .describe_task_definition(DescribeTaskDefinitionRequest {
            task_definition: Some(format!("{family}:{revision}")),
            include: None,
        }))?
    .task_definition)
}

/// The members a revision was registered with, as pretty JSON: what a diff
/// compares (the ARN, revision number and registration times differ
/// between any two revisions and say nothing).
fn registrable(td: &TaskDefinition) -> String {
    let mut value = serde_json::to_value(td).unwrap_or_default();
    if let Some(members) = value.as_object_mut() {
        for noise in [
            "taskDefinitionArn",
            "revision",
            "status",
            "registeredAt",
            "registeredBy",
            "deregisteredAt",
            "deleteRequestedAt",
        ] {
            members.remove(noise);
        }
    }
    serde_json::to_string_pretty(&value).unwrap_or_default()
}

fn pretty(td: &TaskDefinition) -> String {
    serde_json::to_string_pretty(td).unwrap_or_default()
}

#[derive(Template)]
#[template(path = "console/task_definition.html")]
struct TaskDefinitionLive {
    family: String,
    revision: String,
    previous: Option<u32>,
    status: String,
    arn: String,
    json: String,
    csrf: String,
}

fn task_definition(ctx: &Ctx<'_>, family: &str, revision: &str) -> Result<Page> {
    let td = describe_revision(ctx, family, revision)?;
    Ok(Page {
        title: format!("{family}:{revision}"),
        crumbs: vec![
            crumb("Task definitions", "/console/task-definitions"),
            crumb(
                family,
                format!("/console/task-definitions/{}", url_encode(family)),
            ),
        ],
        live: render(&TaskDefinitionLive {
            family: family.to_owned(),
            revision: revision.to_owned(),
            previous: td.revision.checked_sub(1).filter(|r| *r > 0),
            status: td.status.clone(),
            arn: td.task_definition_arn.clone(),
            json: pretty(&td),
            csrf: ctx.session.csrf.clone(),
        }),
        ..Page::default()
    })
}

#[derive(Template)]
#[template(path = "console/diff.html")]
struct DiffLive {
    family: String,
    a: String,
    b: String,
    lines: Vec<diff::Line>,
    changed: usize,
    revisions: Vec<RevisionRow>,
}

fn compare(ctx: &Ctx<'_>, family: &str, q: &HashMap<String, String>) -> Result<Page> {
    let revisions = revisions_of(ctx, family)?;
    let newest = revisions
        .first()
        .map(|r| r.revision.clone())
        .unwrap_or_default();
    let b = q.get("b").cloned().unwrap_or(newest);
    let a = q.get("a").cloned().unwrap_or_else(|| {
        b.parse::<u32>()
            .ok()
            .and_then(|r| r.checked_sub(1))
            .unwrap_or(1)
            .to_string()
    });
    let old = registrable(&describe_revision(ctx, family, &a)?);
    let new = registrable(&describe_revision(ctx, family, &b)?);
    let lines = diff::lines(&old, &new);
    let changed = lines.iter().filter(|l| l.kind() != "same").count();
    Ok(Page {
        title: format!("{family}: revision {a} → {b}"),
        crumbs: vec![
            crumb("Task definitions", "/console/task-definitions"),
            crumb(
                family,
                format!("/console/task-definitions/{}", url_encode(family)),
            ),
        ],
        live: render(&DiffLive {
            family: family.to_owned(),
            a,
            b,
            lines,
            changed,
            revisions,
        }),
        ..Page::default()
    })
}

#[derive(Template)]
#[template(path = "console/register.html")]
struct RegisterPage<'a> {
    json: &'a str,
    error: Option<&'a str>,
    csrf: &'a str,
}

/// An example to start from when no revision is named.
const REGISTER_EXAMPLE: &str = r#"{
  "family": "web",
  "networkMode": "bridge",
  "containerDefinitions": [
    {
      "name": "web",
      "image": "nginx:stable",
      "memory": 128,
      "essential": true,
      "portMappings": [{ "containerPort": 80, "hostPort": 0 }]
    }
  ]
}"#;

/// The register form, holding `json` and the last attempt's error.
pub fn register_page(ctx: &Ctx<'_>, json: &str, error: Option<&str>) -> Page {
    Page {
        title: "Register a task definition".into(),
        crumbs: vec![crumb("Task definitions", "/console/task-definitions")],
        after: render(&RegisterPage {
            json,
            error,
            csrf: &ctx.session.csrf,
        }),
        ..Page::default()
    }
}

fn register_form(ctx: &Ctx<'_>, q: &HashMap<String, String>) -> Result<Page> {
    let json = match q.get("from").and_then(|f| f.split_once(':')) {
        Some((family, revision)) => pretty(&describe_revision(ctx, family, revision)?),
        None => REGISTER_EXAMPLE.to_owned(),
    };
    Ok(register_page(ctx, &json, None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_utc() {
        assert_eq!(utc(Timestamp::from_millis(0)), "1970-01-01 00:00:00 UTC");
        assert_eq!(
            utc(Timestamp::from_millis(1_796_702_706_000)),
            "2026-12-08 04:05:06 UTC"
        );
        assert_eq!(
            utc(Timestamp::from_millis(951_782_400_000)),
            "2000-02-29 00:00:00 UTC"
        );
    }

    #[test]
    fn arns_shorten() {
        assert_eq!(short_id("arn:aws:ecs:us-east-1:1:task/default/abc"), "abc");
        assert_eq!(
            family_revision("arn:aws:ecs:us-east-1:1:task-definition/web:3"),
            "web:3"
        );
        assert_eq!(url_encode("a b&c/d"), "a%20b%26c/d");
    }
}
