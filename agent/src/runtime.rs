//! Everything that speaks Docker, through bollard: connecting with API
//! version negotiation, images, containers, and the event stream.
//!
//! Verbs are idempotent where Docker allows: stopping a stopped container or
//! removing a missing one succeeds. Every call that can hang has a timeout.

use crate::config::PullBehavior;
use crate::metrics::{Metrics, PullOutcome};
use bollard::Docker;
pub use bollard::auth::DockerCredentials;
use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, ContainerSummary, EventMessage,
    VolumeCreateRequest,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, CreateImageOptionsBuilder, EventsOptionsBuilder,
    InspectContainerOptions, ListContainersOptionsBuilder, ListVolumesOptions,
    RemoveContainerOptionsBuilder, RemoveVolumeOptions, StopContainerOptionsBuilder,
};
use futures_util::{Stream, StreamExt};
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// The label that ties a container to the container instance (agent) that
/// created it. Several agents may share one Docker Engine; each touches only
/// containers carrying its own instance ARN here.
pub const INSTANCE_LABEL: &str = "berth.container-instance-arn";

/// Connection-level timeout bollard applies until response headers. It must
/// exceed the longest container stop we ask Docker for.
const CLIENT_TIMEOUT_SECS: u64 = 900;
/// Longest stop timeout we pass to Docker, seconds.
pub const MAX_STOP_TIMEOUT_SECS: u32 = 600;
const CREATE_TIMEOUT: Duration = Duration::from_secs(240);
const START_TIMEOUT: Duration = Duration::from_secs(180);
const QUICK_TIMEOUT: Duration = Duration::from_secs(60);

/// A failed Docker operation.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The Docker address is not usable.
    #[error("cannot use Docker at {host}")]
    Connect {
        /// The address.
        host: String,
        /// Why.
        #[source]
        source: bollard::errors::Error,
    },
    /// Docker answered with an error.
    #[error("{message}")]
    Docker {
        /// Docker's own message, as users should see it.
        message: String,
        /// HTTP status, when Docker gave one.
        status: Option<u16>,
    },
    /// Docker did not answer in time.
    #[error("Docker did not answer {op} within {secs} s")]
    Timeout {
        /// The operation.
        op: &'static str,
        /// The timeout.
        secs: u64,
    },
}

impl RuntimeError {
    fn from_bollard(e: bollard::errors::Error) -> Self {
        use bollard::errors::Error as B;
        match e {
            B::DockerResponseServerError {
                status_code,
                message,
            } => RuntimeError::Docker {
                message,
                status: Some(status_code),
            },
            B::DockerStreamError { error } => RuntimeError::Docker {
                message: error,
                status: None,
            },
            other => RuntimeError::Docker {
                message: other.to_string(),
                status: None,
            },
        }
    }

    /// Whether a pull failed because the registry refused the credentials
    /// (as opposed to not being reachable).
    pub fn is_auth_failure(&self) -> bool {
        let text = self.to_string().to_ascii_lowercase();
        matches!(
            self,
            RuntimeError::Docker {
                status: Some(401 | 403),
                ..
            }
        ) || [
            "unauthorized",
            "denied",
            "no basic auth credentials",
            "authentication required",
        ]
        .iter()
        .any(|m| text.contains(m))
    }

    /// Whether Docker said the object does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            RuntimeError::Docker {
                status: Some(404),
                ..
            }
        )
    }
}

/// Result of a Docker operation.
pub type Result<T> = std::result::Result<T, RuntimeError>;

async fn timed<T>(
    op: &'static str,
    limit: Duration,
    f: impl Future<Output = std::result::Result<T, bollard::errors::Error>>,
) -> Result<T> {
    match tokio::time::timeout(limit, f).await {
        Ok(r) => r.map_err(RuntimeError::from_bollard),
        Err(_) => Err(RuntimeError::Timeout {
            op,
            secs: limit.as_secs(),
        }),
    }
}

/// `Ok(None)` for an object Docker says does not exist.
fn found<T>(result: Result<T>) -> Result<Option<T>> {
    match result {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

/// What Docker has of an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Local {
    Missing,
    /// Pulled from a registry (it has a registry digest).
    FromRegistry,
    /// Built or imported on this host: no registry to refresh it from.
    BuiltHere,
}

/// The repository of an image reference, in Docker's familiar form:
/// `docker.io/library/busybox:1.36` and `busybox` are both `busybox`.
fn repository(reference: &str) -> &str {
    let name = reference.split('@').next().unwrap_or(reference);
    let name = match name.rfind(':') {
        Some(colon) if !name[colon..].contains('/') => &name[..colon],
        _ => name,
    };
    let name = name.strip_prefix("docker.io/").unwrap_or(name);
    name.strip_prefix("library/").unwrap_or(name)
}

/// Whether to pull an image: `last_pull` is when this agent last pulled it,
/// `asked` when this request came. With `last_pull` `None` the answer is the
/// most eager there is, so a `false` then holds for any history.
fn should_pull(
    behavior: PullBehavior,
    local: Local,
    last_pull: Option<std::time::Instant>,
    asked: std::time::Instant,
) -> bool {
    match (behavior, local) {
        (_, Local::Missing) => true,
        (PullBehavior::PreferCached, _) | (PullBehavior::Default, Local::BuiltHere) => false,
        (PullBehavior::Once, _) => last_pull.is_none(),
        // A pull that finished while this request waited for it serves it.
        (PullBehavior::Default | PullBehavior::Always, _) => last_pull.is_none_or(|t| t < asked),
    }
}

/// A Docker Engine connection (cheap to clone).
#[derive(Debug, Clone)]
pub struct Runtime {
    docker: Docker,
    metrics: Arc<Metrics>,
    pulls: std::sync::Arc<Pulls>,
    /// Held while creating a network: Docker allows two of one name.
    network_creation: std::sync::Arc<tokio::sync::Mutex<()>>,
}

/// Pulls in progress and done, shared by every clone: one pull of an image
/// at a time (a request that waited for another's pull of the same image
/// uses it), and when this agent last pulled each image (for `once`).
#[derive(Debug, Default)]
struct Pulls(std::sync::Mutex<HashMap<String, PullSlot>>);

type PullSlot = std::sync::Arc<tokio::sync::Mutex<Option<std::time::Instant>>>;

impl Pulls {
    fn slot(&self, image: &str) -> PullSlot {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(image.to_owned())
            .or_default()
            .clone()
    }
}

/// An image ready to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageReady {
    /// `sha256:...`: the registry digest when the image came from one, else
    /// the local image id.
    pub digest: Option<String>,
    /// Whether it had to be pulled.
    pub pulled: bool,
}

impl Runtime {
    /// Connects to `host` (`unix://...`, `tcp://...`, `http://...` or a
    /// socket path) and negotiates the API version down to the engine's.
    pub async fn connect(host: &str, metrics: Arc<Metrics>) -> Result<Runtime> {
        let version = bollard::API_DEFAULT_VERSION;
        let docker = if let Some(path) = host.strip_prefix("unix://") {
            Docker::connect_with_unix(path, CLIENT_TIMEOUT_SECS, version)
        } else if host.starts_with("tcp://") || host.starts_with("http://") {
            Docker::connect_with_http(host, CLIENT_TIMEOUT_SECS, version)
        } else if host.starts_with('/') {
            Docker::connect_with_unix(host, CLIENT_TIMEOUT_SECS, version)
        } else {
            return Err(RuntimeError::Docker {
                message: format!(
                    "unsupported Docker address '{host}': use unix:///path or tcp://host:port"
                ),
                status: None,
            });
        }
        .map_err(|source| RuntimeError::Connect {
            host: host.to_owned(),
            source,
        })?;
        let docker = timed(
            "version negotiation",
            QUICK_TIMEOUT,
            docker.negotiate_version(),
        )
        .await?;
        Ok(Runtime {
            docker,
            metrics,
            pulls: Default::default(),
            network_creation: Default::default(),
        })
    }

    /// The engine's version string, e.g. `20.10.24+dfsg1`.
    /// Whether the engine answers a ping within `limit`.
    /// [`timed`], recording the call's duration (failures and timeouts
    /// included) in the metrics.
    async fn timed<T>(
        &self,
        op: &'static str,
        limit: Duration,
        f: impl Future<Output = std::result::Result<T, bollard::errors::Error>>,
    ) -> Result<T> {
        let started = std::time::Instant::now();
        let result = timed(op, limit, f).await;
        self.metrics.docker(op, started.elapsed().as_secs_f64());
        result
    }

    pub async fn ping(&self, limit: Duration) -> Result<()> {
        self.timed("ping", limit, self.docker.ping())
            .await
            .map(|_| ())
    }

    pub async fn version(&self) -> Result<String> {
        let v = self
            .timed("version", QUICK_TIMEOUT, self.docker.version())
            .await?;
        Ok(v.version.unwrap_or_default())
    }

    /// Docker's cgroup driver (`cgroupfs`/`systemd`) and cgroup version
    /// (`1`/`2`).
    pub async fn cgroup_info(&self) -> Result<(String, String)> {
        let info = self
            .timed("info", QUICK_TIMEOUT, self.docker.info())
            .await?;
        let driver = info
            .cgroup_driver
            .map(|d| d.to_string())
            .unwrap_or_else(|| "cgroupfs".to_owned());
        let version = info
            .cgroup_version
            .map(|v| v.to_string())
            .unwrap_or_else(|| "1".to_owned());
        Ok((driver, version))
    }

    /// Makes `image` available locally as `behavior` says, pulling with
    /// `credentials` when given. Identical pulls on this host happen once:
    /// a request that waited for another's pull of the same image uses it.
    pub async fn ensure_image(
        &self,
        image: &str,
        behavior: PullBehavior,
        credentials: Option<DockerCredentials>,
    ) -> Result<ImageReady> {
        let asked = std::time::Instant::now();
        // Decided without this agent's pull history: no lock, so tasks of
        // one image start in parallel.
        let (digest, local) = self.local_image(image).await?;
        if !should_pull(behavior, local, None, asked) {
            return Ok(ImageReady {
                digest,
                pulled: false,
            });
        }
        let slot = self.pulls.slot(image);
        let mut last_pull = slot.lock().await;
        // Another task's pull may have finished while this one waited.
        let (cached, local) = self.local_image(image).await?;
        if !should_pull(behavior, local, *last_pull, asked) {
            return Ok(ImageReady {
                digest: cached,
                pulled: false,
            });
        }
        let pulled = self.pull(image, credentials).await;
        self.metrics.pull(match &pulled {
            Ok(()) => PullOutcome::Success,
            Err(e)
                if behavior == PullBehavior::Default
                    && local != Local::Missing
                    && !e.is_auth_failure() =>
            {
                PullOutcome::FailedUsedCache
            }
            Err(_) => PullOutcome::Failed,
        });
        match pulled {
            Ok(()) => {
                *last_pull = Some(std::time::Instant::now());
                Ok(ImageReady {
                    digest: self.image_digest(image).await?,
                    pulled: true,
                })
            }
            Err(e)
                if behavior == PullBehavior::Default
                    && local != Local::Missing
                    && !e.is_auth_failure() =>
            {
                tracing::warn!(image, error = %e, "cannot pull the image; using the cached one");
                Ok(ImageReady {
                    digest: cached,
                    pulled: false,
                })
            }
            Err(e) => Err(e),
        }
    }

    async fn image_digest(&self, image: &str) -> Result<Option<String>> {
        Ok(self.local_image(image).await?.0)
    }

    /// The digest of a local image (the registry's, else the image id) and
    /// where it came from.
    async fn local_image(&self, image: &str) -> Result<(Option<String>, Local)> {
        let Some(info) = found(
            self.timed(
                "image inspect",
                QUICK_TIMEOUT,
                self.docker.inspect_image(image),
            )
            .await,
        )?
        else {
            return Ok((None, Local::Missing));
        };
        // Only a digest of this reference's own repository says the image
        // came from its registry: an image built here and pushed elsewhere
        // under another name carries that other repository's digest.
        let wanted = repository(image);
        let repo_digest = info
            .repo_digests
            .unwrap_or_default()
            .into_iter()
            .find_map(|d| {
                d.split_once('@')
                    .filter(|(repo, _)| repository(repo) == wanted)
                    .map(|(_, digest)| digest.to_owned())
            });
        let local = if repo_digest.is_some() {
            Local::FromRegistry
        } else {
            Local::BuiltHere
        };
        Ok((repo_digest.or(info.id), local))
    }

    /// Pulls `image`, logging Docker's progress messages as they change.
    pub async fn pull(&self, image: &str, credentials: Option<DockerCredentials>) -> Result<()> {
        let (from_image, tag) = split_reference(image);
        let options = CreateImageOptionsBuilder::new()
            .from_image(&from_image)
            .tag(&tag)
            .build();
        let started = std::time::Instant::now();
        let pulled = self.pull_stream(image, options, credentials).await;
        self.metrics
            .docker("image pull", started.elapsed().as_secs_f64());
        pulled?;
        tracing::info!(
            image,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "image pulled"
        );
        Ok(())
    }

    async fn pull_stream(
        &self,
        image: &str,
        options: bollard::query_parameters::CreateImageOptions,
        credentials: Option<DockerCredentials>,
    ) -> Result<()> {
        let mut stream = self.docker.create_image(Some(options), None, credentials);
        tracing::info!(image, "pulling image");
        let mut last_status = String::new();
        loop {
            // Docker sends progress at least every few seconds while pulling.
            match tokio::time::timeout(Duration::from_secs(120), stream.next()).await {
                Err(_) => {
                    return Err(RuntimeError::Timeout {
                        op: "image pull (no progress)",
                        secs: 120,
                    });
                }
                Ok(None) => break,
                Ok(Some(Err(e))) => return Err(RuntimeError::from_bollard(e)),
                Ok(Some(Ok(info))) => {
                    let status = info.status.unwrap_or_default();
                    if status != last_status {
                        tracing::info!(image, layer = info.id.as_deref().unwrap_or_default(), status = %status, "pull progress");
                        last_status = status;
                    }
                }
            }
        }
        Ok(())
    }

    /// Creates a container called `name`; returns its id.
    pub async fn create(&self, name: &str, body: ContainerCreateBody) -> Result<String> {
        let options = CreateContainerOptionsBuilder::new().name(name).build();
        let created = self
            .timed(
                "container create",
                CREATE_TIMEOUT,
                self.docker.create_container(Some(options), body),
            )
            .await?;
        for w in created.warnings {
            tracing::warn!(container = name, warning = %w, "Docker warning on create");
        }
        Ok(created.id)
    }

    /// Starts a container (a running one is left alone).
    pub async fn start(&self, id: &str) -> Result<()> {
        match self
            .timed(
                "container start",
                START_TIMEOUT,
                self.docker.start_container(id, None),
            )
            .await
        {
            Err(RuntimeError::Docker {
                status: Some(304), ..
            }) => Ok(()),
            other => other,
        }
    }

    /// Imports the pause image ([`crate::pause::IMAGE`]) unless Docker has it.
    pub async fn ensure_pause_image(&self) -> Result<()> {
        if self.local_image(crate::pause::IMAGE).await?.1 != Local::Missing {
            return Ok(());
        }
        let rootfs = crate::pause::rootfs().map_err(|message| RuntimeError::Docker {
            message,
            status: None,
        })?;
        let (repo, tag) = split_reference(crate::pause::IMAGE);
        let options = bollard::query_parameters::CreateImageOptions {
            from_src: Some("-".to_owned()),
            repo: Some(repo),
            tag: Some(tag),
            changes: vec![r#"ENTRYPOINT ["/pause"]"#.to_owned()],
            ..Default::default()
        };
        let mut stream = self.docker.create_image(
            Some(options),
            Some(bollard::body_full(bytes::Bytes::from(rootfs))),
            None,
        );
        while let Some(item) = stream.next().await {
            item.map_err(RuntimeError::from_bollard)?;
        }
        tracing::info!(image = crate::pause::IMAGE, "built the pause image");
        Ok(())
    }

    /// Makes sure a Docker network called `name` exists: an existing one is
    /// used as it is; otherwise the agent creates a bridge network (Docker
    /// chooses its addresses), labelled as Berth's.
    pub async fn ensure_network(&self, name: &str) -> Result<()> {
        let _one_at_a_time = self.network_creation.lock().await;
        let existing = self
            .timed(
                "network inspect",
                QUICK_TIMEOUT,
                self.docker.inspect_network(
                    name,
                    None::<bollard::query_parameters::InspectNetworkOptions>,
                ),
            )
            .await;
        if found(existing)?.is_some() {
            return Ok(());
        }
        let request = bollard::models::NetworkCreateRequest {
            name: name.to_owned(),
            driver: Some("bridge".to_owned()),
            labels: Some(HashMap::from([(
                "berth.managed".to_owned(),
                "true".to_owned(),
            )])),
            ..Default::default()
        };
        match self
            .timed(
                "network create",
                QUICK_TIMEOUT,
                self.docker.create_network(request),
            )
            .await
        {
            // Another task created it meanwhile.
            Err(RuntimeError::Docker {
                status: Some(409), ..
            })
            | Ok(_) => {
                tracing::info!(network = name, "created a Docker network for awsvpc tasks");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Whether any container (running or not) was created from `image`.
    pub async fn image_in_use(&self, image: &str) -> Result<bool> {
        let filters = HashMap::from([("ancestor", vec![image.to_owned()])]);
        let options = ListContainersOptionsBuilder::new()
            .all(true)
            .filters(&filters)
            .build();
        let list = self
            .timed(
                "container list",
                QUICK_TIMEOUT,
                self.docker.list_containers(Some(options)),
            )
            .await?;
        Ok(!list.is_empty())
    }

    /// Removes an image reference (not forced: Docker refuses while a
    /// container uses it). Missing is fine.
    pub async fn remove_image(&self, image: &str) -> Result<()> {
        let removed = self
            .timed(
                "image remove",
                QUICK_TIMEOUT,
                self.docker.remove_image(
                    image,
                    None::<bollard::query_parameters::RemoveImageOptions>,
                    None,
                ),
            )
            .await;
        found(removed).map(|_| ())
    }

    /// SIGKILL; a stopped or missing container is fine.
    pub async fn kill(&self, id: &str) -> Result<()> {
        match self
            .timed(
                "container kill",
                QUICK_TIMEOUT,
                self.docker
                    .kill_container(id, None::<bollard::query_parameters::KillContainerOptions>),
            )
            .await
        {
            Err(RuntimeError::Docker {
                status: Some(404 | 409),
                ..
            }) => Ok(()),
            other => other,
        }
    }

    /// Stops a container: its stop signal, then SIGKILL after `timeout_secs`.
    /// A stopped or missing container is fine.
    pub async fn stop(&self, id: &str, timeout_secs: u32) -> Result<()> {
        let t = timeout_secs.min(MAX_STOP_TIMEOUT_SECS);
        let options = StopContainerOptionsBuilder::new().t(t as i32).build();
        let limit = Duration::from_secs(u64::from(t) + 60);
        match self
            .timed(
                "container stop",
                limit,
                self.docker.stop_container(id, Some(options)),
            )
            .await
        {
            Err(RuntimeError::Docker {
                status: Some(304 | 404),
                ..
            }) => Ok(()),
            other => other,
        }
    }

    /// Removes a container (and its anonymous volumes). Missing is fine.
    pub async fn remove(&self, id: &str) -> Result<()> {
        let options = RemoveContainerOptionsBuilder::new()
            .force(true)
            .v(true)
            .build();
        let removed = self
            .timed(
                "container remove",
                QUICK_TIMEOUT,
                self.docker.remove_container(id, Some(options)),
            )
            .await;
        found(removed).map(|_| ())
    }

    /// Inspects a container by id or name; `None` when it does not exist.
    pub async fn inspect(&self, id_or_name: &str) -> Result<Option<ContainerInspectResponse>> {
        found(
            self.timed(
                "container inspect",
                QUICK_TIMEOUT,
                self.docker
                    .inspect_container(id_or_name, None::<InspectContainerOptions>),
            )
            .await,
        )
    }

    /// Creates a Docker volume (Docker answers with the existing one when
    /// the name is taken).
    pub async fn create_volume(&self, request: VolumeCreateRequest) -> Result<()> {
        self.timed(
            "volume create",
            QUICK_TIMEOUT,
            self.docker.create_volume(request),
        )
        .await
        .map(|_| ())
    }

    /// Whether a volume exists.
    pub async fn volume_exists(&self, name: &str) -> Result<bool> {
        let volume = self
            .timed(
                "volume inspect",
                QUICK_TIMEOUT,
                self.docker.inspect_volume(name),
            )
            .await;
        Ok(found(volume)?.is_some())
    }

    /// Names of the volumes this agent created for tasks, with their task ARN.
    pub async fn list_task_volumes(&self, instance_arn: &str) -> Result<Vec<(String, String)>> {
        let filters: HashMap<String, Vec<String>> = HashMap::from([(
            "label".to_owned(),
            vec![format!("{INSTANCE_LABEL}={instance_arn}")],
        )]);
        let options = ListVolumesOptions {
            filters: Some(filters),
        };
        let list = self
            .timed(
                "volume list",
                QUICK_TIMEOUT,
                self.docker.list_volumes(Some(options)),
            )
            .await?;
        Ok(list
            .volumes
            .unwrap_or_default()
            .into_iter()
            .filter_map(|v| {
                let task = v.labels.get("com.amazonaws.ecs.task-arn")?.clone();
                Some((v.name, task))
            })
            .collect())
    }

    /// Removes a volume; one already gone is not an error.
    pub async fn remove_volume(&self, name: &str) -> Result<()> {
        let removed = self
            .timed(
                "volume remove",
                QUICK_TIMEOUT,
                self.docker.remove_volume(name, None::<RemoveVolumeOptions>),
            )
            .await;
        found(removed).map(|_| ())
    }

    /// The container-instance ARNs of every Berth container on this engine
    /// (any agent's).
    pub async fn berth_instances(&self) -> Result<std::collections::BTreeSet<String>> {
        Ok(self
            .list_labelled(INSTANCE_LABEL.to_owned())
            .await?
            .into_iter()
            .filter_map(|c| c.labels?.remove(INSTANCE_LABEL))
            .collect())
    }

    /// Every container (running or not) labelled for `instance_arn`.
    pub async fn list_owned(&self, instance_arn: &str) -> Result<Vec<ContainerSummary>> {
        self.list_labelled(format!("{INSTANCE_LABEL}={instance_arn}"))
            .await
    }

    /// Every container (running or not) matching a `label` filter (`key`
    /// or `key=value`).
    async fn list_labelled(&self, label: String) -> Result<Vec<ContainerSummary>> {
        let filters = HashMap::from([("label", vec![label])]);
        let options = ListContainersOptionsBuilder::new()
            .all(true)
            .filters(&filters)
            .build();
        self.timed(
            "container list",
            QUICK_TIMEOUT,
            self.docker.list_containers(Some(options)),
        )
        .await
    }

    /// Container events for containers labelled for `instance_arn`, from
    /// `since` (unix seconds) when given, so a reconnect replays what it
    /// missed.
    pub fn events(
        &self,
        instance_arn: &str,
        since: Option<i64>,
    ) -> impl Stream<Item = Result<EventMessage>> + use<> {
        let filters = HashMap::from([
            ("type", vec!["container".to_owned()]),
            ("label", vec![format!("{INSTANCE_LABEL}={instance_arn}")]),
        ]);
        let mut builder = EventsOptionsBuilder::new().filters(&filters);
        let since_text = since.map(|s| s.to_string());
        if let Some(s) = &since_text {
            builder = builder.since(s);
        }
        self.docker
            .events(Some(builder.build()))
            .map(|r| r.map_err(RuntimeError::from_bollard))
    }
}

/// Splits an image reference into Docker's `fromImage` and `tag` so a
/// reference without a tag pulls `latest`, not every tag.
pub fn split_reference(image: &str) -> (String, String) {
    if let Some((name, digest)) = image.split_once('@') {
        return (name.to_owned(), digest.to_owned());
    }
    // A ':' after the last '/' separates the tag; one before it is a port.
    let last_slash = image.rfind('/').map_or(0, |i| i + 1);
    match image[last_slash..].rfind(':') {
        Some(i) => (
            image[..last_slash + i].to_owned(),
            image[last_slash + i + 1..].to_owned(),
        ),
        None => (image.to_owned(), "latest".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repositories_of_references() {
        assert_eq!(repository("busybox"), "busybox");
        assert_eq!(repository("docker.io/library/busybox:1.36"), "busybox");
        assert_eq!(
            repository("berth-test/testbin:latest"),
            "berth-test/testbin"
        );
        assert_eq!(
            repository("127.0.0.1:5000/team/app:v2"),
            "127.0.0.1:5000/team/app"
        );
        assert_eq!(
            repository("127.0.0.1:5000/team/app"),
            "127.0.0.1:5000/team/app"
        );
        assert_eq!(repository("app@sha256:abc"), "app");
        assert_eq!(
            repository("registry:5000/app:1@sha256:abc"),
            "registry:5000/app"
        );
    }

    #[test]
    fn pull_behaviours_decide_as_the_ecs_agent_does() {
        use Local::*;
        use PullBehavior::*;
        let asked = std::time::Instant::now();
        let before = asked - Duration::from_secs(1);
        let after = asked + Duration::from_millis(1);
        let histories = [None, Some(before), Some(after)];
        // Nothing cached: every behaviour pulls, whatever the history.
        for b in [Default, Always, Once, PreferCached] {
            for h in histories {
                assert!(should_pull(b, Missing, h, asked), "{b:?} {h:?}");
            }
        }
        // Cached and pulled before this request: default and always pull again.
        assert!(should_pull(Default, FromRegistry, Some(before), asked));
        assert!(should_pull(Always, FromRegistry, Some(before), asked));
        assert!(!should_pull(Once, FromRegistry, Some(before), asked));
        assert!(!should_pull(
            PreferCached,
            FromRegistry,
            Some(before),
            asked
        ));
        // Cached but never pulled by this agent: once pulls, prefer-cached does not.
        assert!(should_pull(Once, FromRegistry, None, asked));
        assert!(!should_pull(PreferCached, FromRegistry, None, asked));
        // Built on this host: default leaves it alone, always still pulls.
        assert!(!should_pull(Default, BuiltHere, None, asked));
        assert!(should_pull(Always, BuiltHere, None, asked));
        // A pull that finished while this request waited serves it.
        assert!(!should_pull(Default, FromRegistry, Some(after), asked));
        assert!(!should_pull(Always, FromRegistry, Some(after), asked));
        // No history is the most eager: a `false` then is `false` for any history
        // (what lets `ensure_image` skip the lock).
        for b in [Default, Always, Once, PreferCached] {
            for l in [Missing, FromRegistry, BuiltHere] {
                if !should_pull(b, l, None, asked) {
                    for h in histories {
                        assert!(!should_pull(b, l, h, asked), "{b:?} {l:?} {h:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn auth_failures_are_told_apart_from_unreachable_registries() {
        let docker = |message: &str, status| RuntimeError::Docker {
            message: message.to_owned(),
            status,
        };
        assert!(docker("unauthorized: authentication required", Some(500)).is_auth_failure());
        assert!(docker("pull access denied for x", Some(404)).is_auth_failure());
        assert!(docker("no basic auth credentials", None).is_auth_failure());
        assert!(
            !docker(
                "dial tcp 127.0.0.1:5000: connect: connection refused",
                Some(500)
            )
            .is_auth_failure()
        );
    }

    #[test]
    fn references() {
        assert_eq!(
            split_reference("busybox"),
            ("busybox".into(), "latest".into())
        );
        assert_eq!(
            split_reference("busybox:1.36"),
            ("busybox".into(), "1.36".into())
        );
        assert_eq!(
            split_reference("127.0.0.1:5000/app"),
            ("127.0.0.1:5000/app".into(), "latest".into())
        );
        assert_eq!(
            split_reference("127.0.0.1:5000/app:v2"),
            ("127.0.0.1:5000/app".into(), "v2".into())
        );
        assert_eq!(
            split_reference("app@sha256:abc"),
            ("app".into(), "sha256:abc".into())
        );
    }
}
