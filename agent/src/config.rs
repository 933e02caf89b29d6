//! Configuration: flags (clap; their doc comments are `--help`), `BERTH_*`
//! environment variables, and a TOML file, in that order of precedence, over
//! the defaults. Every problem is reported at once, then startup fails.

use clap::Parser;
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// Berth agent: runs the tasks the control plane places on this host.
#[derive(Debug, Parser)]
#[command(name = "berth-agent", version, about)]
pub struct Cli {
    /// TOML configuration file (keys as the flags, e.g. `cluster = "home"`).
    #[arg(long, env = "BERTH_AGENT_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The control plane's gRPC address [default: http://127.0.0.1:7081].
    #[arg(long, env = "BERTH_CONTROL_PLANE", value_name = "URL")]
    pub control_plane: Option<String>,
    /// Cluster to join; created when missing [default: default].
    #[arg(long, env = "BERTH_CLUSTER")]
    pub cluster: Option<String>,
    /// Where the agent keeps its identity and task records [default: /var/lib/berth/agent].
    #[arg(long, env = "BERTH_AGENT_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Docker Engine address, e.g. unix:///var/run/docker.sock [default: $DOCKER_HOST or the local socket].
    #[arg(long, env = "DOCKER_HOST", value_name = "URL")]
    pub docker_host: Option<String>,
    /// Custom instance attribute, KEY=VALUE or KEY (repeatable).
    #[arg(long = "attribute", value_name = "KEY=VALUE")]
    pub attributes: Vec<String>,
    /// CPU units to advertise [default: cores x 1024].
    #[arg(long, env = "BERTH_CPU", value_name = "UNITS")]
    pub cpu: Option<i64>,
    /// Memory to advertise, MiB [default: the host's total memory].
    #[arg(long, env = "BERTH_MEMORY", value_name = "MIB")]
    pub memory: Option<i64>,
    /// Host TCP ports tasks may never use (repeatable) [default: 22, 2375, 2376].
    #[arg(long = "reserved-port", value_name = "PORT")]
    pub reserved_ports: Vec<u16>,
    /// Register as EXTERNAL (on-premises capacity) or EC2 [default: EXTERNAL].
    #[arg(long, env = "BERTH_LAUNCH_TYPE")]
    pub launch_type: Option<String>,
    /// Shown as the `ecs.availability-zone` attribute (a rack, room or site).
    #[arg(long, env = "BERTH_AVAILABILITY_ZONE")]
    pub availability_zone: Option<String>,
    /// Shown as the `ecs.instance-type` attribute (a host class).
    #[arg(long, env = "BERTH_INSTANCE_TYPE")]
    pub instance_type: Option<String>,
    /// Host identifier shown as ec2InstanceId [default: the host name].
    #[arg(long, env = "BERTH_INSTANCE_ID")]
    pub instance_id: Option<String>,
    /// Capacity provider (agent pool) to join; created on the control plane when missing.
    #[arg(long, env = "BERTH_CAPACITY_PROVIDER", value_name = "NAME")]
    pub capacity_provider: Option<String>,
    /// A GPU this host offers to tasks, by id (repeatable, e.g. --gpu 0 --gpu 1).
    #[arg(long = "gpu", value_name = "ID")]
    pub gpus: Vec<String>,
    /// How assigned GPUs reach containers: device-requests (Docker --gpus, NVIDIA Container Toolkit), nvidia-runtime (runtime nvidia + NVIDIA_VISIBLE_DEVICES, as the ECS agent does) or env (NVIDIA_VISIBLE_DEVICES only) [default: device-requests].
    #[arg(long, env = "BERTH_GPU_ACCESS", value_name = "MODE")]
    pub gpu_access: Option<String>,
    /// Where environment files named by S3 ARNs are read from: arn:aws:s3:::bucket/key.env is <DIR>/bucket/key.env [default: /etc/berth/env-files].
    #[arg(long, env = "BERTH_ENV_FILES_DIR", value_name = "DIR")]
    pub env_files_dir: Option<PathBuf>,
    /// When images are pulled, as the ECS agent's ECS_IMAGE_PULL_BEHAVIOR: default (pull; use the cached image if the registry cannot be reached, never after an authentication failure), always, once (first use on this agent), prefer-cached [default: default].
    #[arg(long, env = "BERTH_IMAGE_PULL_BEHAVIOR", value_name = "MODE")]
    pub image_pull_behavior: Option<String>,
    /// Where repositoryCredentials are read from: credentialsParameter NAME (or an ARN ending in secret:NAME) is <DIR>/NAME.json, {"username": ..., "password": ...} [default: /etc/berth/registry-credentials].
    #[arg(long, env = "BERTH_REGISTRY_CREDENTIALS_DIR", value_name = "DIR")]
    pub registry_credentials_dir: Option<PathBuf>,
    /// Where container secrets are read from: valueFrom arn:aws:ssm:...:parameter/NAME, arn:aws:secretsmanager:...:secret:NAME[:json-key] or NAME is the file <DIR>/NAME [default: /etc/berth/secrets].
    #[arg(long, env = "BERTH_SECRETS_DIR", value_name = "DIR")]
    pub secrets_dir: Option<PathBuf>,
    /// Grace period between the stop signal and SIGKILL when a container definition has no stopTimeout [default: 30s].
    #[arg(long, env = "BERTH_CONTAINER_STOP_TIMEOUT", value_name = "DURATION")]
    pub container_stop_timeout: Option<String>,
    /// How long the containers of a stopped task are kept before removal [default: 1h].
    #[arg(long, env = "BERTH_TASK_CLEANUP_WAIT", value_name = "DURATION")]
    pub task_cleanup_wait: Option<String>,
    /// Images this agent pulled are removed once no container uses them and no task has for this long; images built or imported on the host are never removed [default: 3h].
    #[arg(long, env = "BERTH_IMAGE_CLEANUP_AGE", value_name = "DURATION")]
    pub image_cleanup_age: Option<String>,
    /// File holding the join token the control plane requires (its --agent-token-file; the first token in the file is used).
    #[arg(long, env = "BERTH_AGENT_TOKEN_FILE", value_name = "FILE")]
    pub agent_token_file: Option<PathBuf>,
    /// PEM CA certificate(s) the control plane's TLS certificate must chain to; needed for an https:// control-plane URL.
    #[arg(long, env = "BERTH_TLS_CA_FILE", value_name = "FILE")]
    pub tls_ca_file: Option<PathBuf>,
    /// Address of /metrics, /healthz and /readyz (unauthenticated), or `off` [default: 127.0.0.1:7083].
    #[arg(long, env = "BERTH_METRICS_LISTEN", value_name = "ADDR")]
    pub metrics_listen: Option<String>,
    /// Allow --metrics-listen beyond loopback (its endpoints are unauthenticated, as Prometheus endpoints are) [default: false].
    #[arg(long, env = "BERTH_METRICS_PUBLIC")]
    pub metrics_public: bool,
    /// Log filter, RUST_LOG syntax [default: info].
    #[arg(long, env = "BERTH_LOG", value_name = "FILTER")]
    pub log: Option<String>,
    /// Log lines as text or json (one object per line); text lines carry no timestamp when stderr is the journal [default: text].
    #[arg(long, env = "BERTH_LOG_FORMAT", value_name = "FORMAT")]
    pub log_format: Option<String>,
}

/// The file form; same names as the flags.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileConfig {
    control_plane: Option<String>,
    cluster: Option<String>,
    data_dir: Option<PathBuf>,
    docker_host: Option<String>,
    #[serde(default)]
    attributes: std::collections::BTreeMap<String, String>,
    cpu: Option<i64>,
    memory: Option<i64>,
    reserved_ports: Option<Vec<u16>>,
    launch_type: Option<String>,
    availability_zone: Option<String>,
    instance_type: Option<String>,
    instance_id: Option<String>,
    capacity_provider: Option<String>,
    gpus: Option<Vec<String>>,
    gpu_access: Option<String>,
    env_files_dir: Option<PathBuf>,
    image_pull_behavior: Option<String>,
    registry_credentials_dir: Option<PathBuf>,
    secrets_dir: Option<PathBuf>,
    container_stop_timeout: Option<String>,
    task_cleanup_wait: Option<String>,
    image_cleanup_age: Option<String>,
    agent_token_file: Option<PathBuf>,
    tls_ca_file: Option<PathBuf>,
    metrics_listen: Option<String>,
    metrics_public: Option<bool>,
    log: Option<String>,
    log_format: Option<String>,
}

/// The effective configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// gRPC URL of the control plane.
    pub control_plane: String,
    /// Cluster name.
    pub cluster: String,
    /// Agent state directory.
    pub data_dir: PathBuf,
    /// Docker Engine address.
    pub docker_host: String,
    /// Custom attributes.
    pub attributes: Vec<(String, Option<String>)>,
    /// Advertised CPU units (None = detect).
    pub cpu: Option<i64>,
    /// Advertised MiB (None = detect).
    pub memory: Option<i64>,
    /// Reserved TCP ports.
    pub reserved_ports: Vec<u16>,
    /// EXTERNAL or EC2.
    pub launch_type: String,
    /// `ecs.availability-zone`.
    pub availability_zone: Option<String>,
    /// `ecs.instance-type`.
    pub instance_type: Option<String>,
    /// `ec2InstanceId` override.
    pub instance_id: Option<String>,
    /// Capacity provider to join.
    pub capacity_provider: Option<String>,
    /// GPU ids offered to tasks.
    pub gpus: Vec<String>,
    /// How GPUs reach containers.
    pub gpu_access: GpuAccess,
    /// Root of environment files named by S3 ARNs.
    pub env_files_dir: PathBuf,
    /// When images are pulled.
    pub image_pull_behavior: PullBehavior,
    /// Root of registry credential files.
    pub registry_credentials_dir: PathBuf,
    /// Root of secret files.
    pub secrets_dir: PathBuf,
    /// Default stop timeout.
    pub container_stop_timeout: Duration,
    /// Delay before a stopped task's containers are removed.
    pub task_cleanup_wait: Duration,
    /// Unused pulled images are removed after this.
    pub image_cleanup_age: Duration,
    /// The join token sent to the control plane.
    pub agent_token: Option<Token>,
    /// PEM CA bundle that verifies the control plane (https:// URLs).
    pub tls_ca: Option<Pem>,
    /// /metrics, /healthz, /readyz; `None` when off.
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// Log filter.
    pub log: String,
    /// Log line format.
    pub log_format: berth_proto::logging::Format,
}

/// How assigned GPUs are handed to a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GpuAccess {
    /// Docker device requests (`--gpus device=...`), driver `nvidia`.
    DeviceRequests,
    /// Runtime `nvidia` plus `NVIDIA_VISIBLE_DEVICES` (the ECS agent's way).
    NvidiaRuntime,
    /// `NVIDIA_VISIBLE_DEVICES` only (a default runtime handles it).
    Env,
}

/// When the agent pulls an image (the ECS agent's `ECS_IMAGE_PULL_BEHAVIOR`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullBehavior {
    /// Pull every time; when the registry cannot be reached (not when it
    /// refuses the credentials) and the image is cached, use the cache.
    Default,
    /// Pull every time; a failed pull fails the task.
    Always,
    /// Pull the first time this agent uses the image, then use the cache.
    Once,
    /// Use the cached image when there is one; pull otherwise.
    PreferCached,
}

/// Every configuration problem found.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n  - {}", .0.join("\n  - "))]
pub struct ConfigError(pub Vec<String>);

impl Config {
    /// Merges flags/env over the file over the defaults.
    pub fn load(cli: Cli) -> Result<Config, ConfigError> {
        let mut errors = Vec::new();
        let file = match &cli.config {
            None => FileConfig::default(),
            Some(path) => match std::fs::read_to_string(path) {
                Err(e) => {
                    errors.push(format!("cannot read {}: {e}", path.display()));
                    FileConfig::default()
                }
                Ok(text) => toml::from_str(&text).unwrap_or_else(|e| {
                    errors.push(format!("{}: {e}", path.display()));
                    FileConfig::default()
                }),
            },
        };
        let log_format = match cli.log_format.or(file.log_format) {
            None => berth_proto::logging::Format::default(),
            Some(f) => f.parse().unwrap_or_else(|e: String| {
                errors.push(e);
                berth_proto::logging::Format::default()
            }),
        };
        let metrics_text = cli
            .metrics_listen
            .or(file.metrics_listen)
            .unwrap_or_else(|| "127.0.0.1:7083".to_owned());
        let metrics_listen = if metrics_text == "off" {
            None
        } else {
            match metrics_text.parse::<std::net::SocketAddr>() {
                Ok(a) => Some(a),
                Err(_) => {
                    errors.push(format!(
                        "metrics-listen '{metrics_text}' is not an address like 127.0.0.1:7083, or off"
                    ));
                    None
                }
            }
        };
        if let Some(m) = metrics_listen
            && !m.ip().is_loopback()
            && !(cli.metrics_public || file.metrics_public.unwrap_or(false))
        {
            errors.push(format!(
                "metrics-listen {m} is not a loopback address: its endpoints are unauthenticated. Listen on 127.0.0.1, or pass --metrics-public (metrics-public = true) to serve them on the network"
            ));
        }
        let control_plane = cli
            .control_plane
            .or(file.control_plane)
            .unwrap_or_else(|| "http://127.0.0.1:7081".to_owned());
        if !(control_plane.starts_with("http://") || control_plane.starts_with("https://")) {
            errors.push(format!(
                "control-plane '{control_plane}' must be a URL like http://10.0.0.1:7081"
            ));
        }
        let cluster = cli
            .cluster
            .or(file.cluster)
            .unwrap_or_else(|| "default".to_owned());
        if cluster.is_empty()
            || cluster.len() > 255
            || !cluster
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            errors.push(format!(
                "cluster '{cluster}' must be 1-255 letters, digits, hyphens and underscores"
            ));
        }
        let mut attributes: Vec<(String, Option<String>)> = file
            .attributes
            .into_iter()
            .map(|(k, v)| (k, Some(v)))
            .collect();
        for a in &cli.attributes {
            match a.split_once('=') {
                Some((k, v)) => attributes.push((k.to_owned(), Some(v.to_owned()))),
                None => attributes.push((a.clone(), None)),
            }
        }
        for (k, v) in &attributes {
            let name_ok = !k.is_empty()
                && k.len() <= 128
                && k.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_/\\.".contains(c));
            let value_ok = v.as_deref().is_none_or(|v| {
                !v.is_empty()
                    && v.len() <= 128
                    && v.trim() == v
                    && v.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_.@/\\: ".contains(c))
            });
            if !name_ok || !value_ok {
                errors.push(format!(
                    "attribute '{k}' is not valid: names are 1-128 of letters, digits and - _ / \\ . ; values 1-128 of letters, digits, spaces and - _ . @ / \\ :"
                ));
            }
        }
        let cpu = cli.cpu.or(file.cpu);
        if cpu.is_some_and(|c| c <= 0) {
            errors.push("cpu must be a positive number of CPU units".to_owned());
        }
        let memory = cli.memory.or(file.memory);
        if memory.is_some_and(|m| m <= 0) {
            errors.push("memory must be a positive number of MiB".to_owned());
        }
        let reserved_ports = if !cli.reserved_ports.is_empty() {
            cli.reserved_ports
        } else {
            file.reserved_ports.unwrap_or_else(|| vec![22, 2375, 2376])
        };
        if reserved_ports.contains(&0) {
            errors.push("reserved ports must be 1-65535".to_owned());
        }
        let launch_type = cli
            .launch_type
            .or(file.launch_type)
            .unwrap_or_else(|| "EXTERNAL".to_owned());
        if launch_type != "EXTERNAL" && launch_type != "EC2" {
            errors.push(format!(
                "launch-type '{launch_type}' must be EXTERNAL or EC2"
            ));
        }
        let mut duration = |what: &str, value: Option<String>, default: &str| -> Duration {
            let text = value.unwrap_or_else(|| default.to_owned());
            parse_duration(&text).unwrap_or_else(|e| {
                errors.push(format!("{what}: {e}"));
                Duration::from_secs(30)
            })
        };
        let container_stop_timeout = duration(
            "container-stop-timeout",
            cli.container_stop_timeout.or(file.container_stop_timeout),
            "30s",
        );
        let task_cleanup_wait = duration(
            "task-cleanup-wait",
            cli.task_cleanup_wait.or(file.task_cleanup_wait),
            "1h",
        );
        let image_cleanup_age = duration(
            "image-cleanup-age",
            cli.image_cleanup_age.or(file.image_cleanup_age),
            "3h",
        );
        let capacity_provider = cli.capacity_provider.or(file.capacity_provider);
        if let Some(p) = &capacity_provider
            && (p.is_empty()
                || p.len() > 255
                || !p
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        {
            errors.push(format!(
                "capacity-provider '{p}' must be 1-255 letters, digits, hyphens and underscores"
            ));
        }
        let gpus = if cli.gpus.is_empty() {
            file.gpus.unwrap_or_default()
        } else {
            cli.gpus
        };
        let mut unique = gpus.clone();
        unique.sort();
        unique.dedup();
        if unique.len() != gpus.len() || gpus.iter().any(String::is_empty) {
            errors.push("gpu ids must be unique and non-empty".to_owned());
        }
        let gpu_access = match cli.gpu_access.or(file.gpu_access).as_deref() {
            None | Some("device-requests") => GpuAccess::DeviceRequests,
            Some("nvidia-runtime") => GpuAccess::NvidiaRuntime,
            Some("env") => GpuAccess::Env,
            Some(other) => {
                errors.push(format!(
                    "gpu-access '{other}' must be device-requests, nvidia-runtime or env"
                ));
                GpuAccess::DeviceRequests
            }
        };
        let image_pull_behavior = match cli
            .image_pull_behavior
            .or(file.image_pull_behavior)
            .as_deref()
        {
            None | Some("default") => PullBehavior::Default,
            Some("always") => PullBehavior::Always,
            Some("once") => PullBehavior::Once,
            Some("prefer-cached") => PullBehavior::PreferCached,
            Some(other) => {
                errors.push(format!(
                    "image-pull-behavior '{other}' must be default, always, once or prefer-cached"
                ));
                PullBehavior::Default
            }
        };
        let docker_host = cli
            .docker_host
            .or(file.docker_host)
            .unwrap_or_else(|| "unix:///var/run/docker.sock".to_owned());
        let agent_token = cli
            .agent_token_file
            .or(file.agent_token_file)
            .and_then(|path| match std::fs::read_to_string(&path) {
                Err(e) => {
                    errors.push(format!(
                        "cannot read the agent token file {}: {e}",
                        path.display()
                    ));
                    None
                }
                Ok(text) => {
                    let token = text
                        .lines()
                        .map(str::trim)
                        .find(|l| !l.is_empty() && !l.starts_with('#'));
                    match token {
                        None => errors.push(format!(
                            "the agent token file {} holds no token",
                            path.display()
                        )),
                        Some(t) if t.len() < 16 || !t.bytes().all(|b| b.is_ascii_graphic()) => {
                            errors.push(format!(
                                "the token in {} must be at least 16 printable characters without spaces, as the control plane requires",
                                path.display()
                            ))
                        }
                        Some(_) => {}
                    }
                    token.map(|t| Token(t.to_owned()))
                }
            });
        let tls_ca =
            cli.tls_ca_file
                .or(file.tls_ca_file)
                .and_then(|path| match std::fs::read(&path) {
                    Ok(pem)
                        if String::from_utf8_lossy(&pem)
                            .contains("-----BEGIN CERTIFICATE-----") =>
                    {
                        Some(Pem(pem))
                    }
                    Ok(_) => {
                        errors.push(format!(
                            "tls-ca-file {} holds no PEM certificate",
                            path.display()
                        ));
                        None
                    }
                    Err(e) => {
                        errors.push(format!("cannot read tls-ca-file {}: {e}", path.display()));
                        None
                    }
                });
        if control_plane.starts_with("https://")
            && tls_ca.is_none()
            && !errors.iter().any(|e| e.contains("tls-ca-file"))
        {
            errors.push(format!(
                "control-plane {control_plane} uses TLS: give --tls-ca-file with the CA certificate that signed the control plane's certificate"
            ));
        }
        if control_plane.starts_with("http://") && tls_ca.is_some() {
            errors.push(format!(
                "tls-ca-file is given but control-plane {control_plane} is plain http://: use https:// to verify the control plane over TLS"
            ));
        }
        let config = Config {
            control_plane,
            cluster,
            data_dir: cli
                .data_dir
                .or(file.data_dir)
                .unwrap_or_else(|| PathBuf::from("/var/lib/berth/agent")),
            docker_host,
            attributes,
            cpu,
            memory,
            reserved_ports,
            launch_type,
            availability_zone: cli.availability_zone.or(file.availability_zone),
            instance_type: cli.instance_type.or(file.instance_type),
            instance_id: cli.instance_id.or(file.instance_id),
            capacity_provider,
            gpus,
            gpu_access,
            env_files_dir: cli
                .env_files_dir
                .or(file.env_files_dir)
                .unwrap_or_else(|| PathBuf::from("/etc/berth/env-files")),
            image_pull_behavior,
            registry_credentials_dir: cli
                .registry_credentials_dir
                .or(file.registry_credentials_dir)
                .unwrap_or_else(|| PathBuf::from("/etc/berth/registry-credentials")),
            secrets_dir: cli
                .secrets_dir
                .or(file.secrets_dir)
                .unwrap_or_else(|| PathBuf::from("/etc/berth/secrets")),
            container_stop_timeout,
            task_cleanup_wait,
            image_cleanup_age,
            agent_token,
            tls_ca,
            metrics_listen,
            log: cli.log.or(file.log).unwrap_or_else(|| "info".to_owned()),
            log_format,
        };
        if errors.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError(errors))
        }
    }
}

/// PEM bytes; prints as their size.
#[derive(Clone, PartialEq, Eq)]
pub struct Pem(pub Vec<u8>);

impl std::fmt::Debug for Pem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<PEM, {} bytes>", self.0.len())
    }
}

/// The join token; prints as `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(pub String);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// `90s`, `15m`, `1h`, `2d`, or plain seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let bad = || format!("'{text}' is not a duration like 30s, 15m, 1h or 2d");
    let n: u64 = number.parse().map_err(|_| bad())?;
    let factor = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    Ok(Duration::from_secs(n * factor))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("berth-agent").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn join_token_and_tls_ca() {
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("token");
        std::fs::write(
            &token,
            "# cluster token\n\n  tok-0123456789abcdef  \nsecond\n",
        )
        .unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(
            &ca,
            "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let (token, ca) = (token.to_str().unwrap(), ca.to_str().unwrap());
        let c = Config::load(cli(&[
            "--agent-token-file",
            token,
            "--control-plane",
            "https://10.0.0.10:7081",
            "--tls-ca-file",
            ca,
        ]))
        .unwrap();
        assert_eq!(c.agent_token, Some(Token("tok-0123456789abcdef".into())));
        let printed = format!("{c:?}");
        assert!(
            !printed.contains("tok-0123") && printed.contains("<PEM, "),
            "{printed}"
        );
        // https needs a CA; a CA file must hold a certificate; files must exist.
        let e = Config::load(cli(&["--control-plane", "https://10.0.0.10:7081"])).unwrap_err();
        assert!(e.0[0].contains("--tls-ca-file"), "{e}");
        let e = Config::load(cli(&[
            "--tls-ca-file",
            token,
            "--agent-token-file",
            "/nonexistent",
        ]))
        .unwrap_err();
        assert_eq!(e.0.len(), 2, "{e}");
    }

    #[test]
    fn defaults() {
        let c = Config::load(cli(&[])).unwrap();
        assert_eq!(c.cluster, "default");
        assert_eq!(c.launch_type, "EXTERNAL");
        assert_eq!(c.container_stop_timeout, Duration::from_secs(30));
        assert_eq!(c.reserved_ports, vec![22, 2375, 2376]);
    }

    #[test]
    fn the_example_file_states_the_defaults() {
        let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/agent.toml");
        let from_file = Config::load(cli(&["--config", example])).unwrap();
        let defaults = Config::load(cli(&[])).unwrap();
        assert_eq!(format!("{from_file:?}"), format!("{defaults:?}"));
    }

    #[test]
    fn attributes_and_errors() {
        let c = Config::load(cli(&["--attribute", "zone=b", "--attribute", "gpu"])).unwrap();
        assert_eq!(
            c.attributes,
            vec![("zone".into(), Some("b".into())), ("gpu".into(), None)]
        );
        let err = Config::load(cli(&[
            "--attribute",
            "bad name=1",
            "--cpu",
            "0",
            "--launch-type",
            "FARGATE",
            "--control-plane",
            "127.0.0.1:1",
        ]))
        .unwrap_err();
        assert_eq!(err.0.len(), 4, "{err}");
    }
}
