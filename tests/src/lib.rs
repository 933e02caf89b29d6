//! Harness for Berth's end-to-end tests: start the real `berth-control-plane`
//! and `berth-agent` binaries against the real Docker Engine, drive them with
//! the real AWS SDK (`aws-sdk-ecs`), and clean up whatever a test created,
//! even when it fails.
//!
//! - [`TestCluster`]: a control plane plus agents in a temporary directory,
//!   an ECS client pointed at it, and a Docker client for checking what
//!   really runs. Dropping it kills the processes and removes every
//!   container its agents labelled.
//! - [`ensure_test_image`]: builds `berth-test/testbin:latest` locally (a
//!   static Rust program in a `FROM scratch` image): no registry, no network.
//! - [`eventually`]: polls until a condition holds or a deadline passes.
//!
//! The binaries are the ones `cargo test --workspace` builds next to this
//! test executable; running the suite through that command keeps them fresh.

pub mod browser;
pub mod private_docker;
pub mod prometheus;
pub mod registry;
pub mod sim;

use aws_sdk_ecs::config::{BehaviorVersion, Credentials, Region};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The access key the harness's control planes accept and its clients sign
/// with (written to each control plane's credentials file).
pub const ACCESS_KEY_ID: &str = "AKIAIOSFODNN7EXAMPLE";
/// Its secret.
pub const SECRET_ACCESS_KEY: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
/// The join token the harness's control planes require of agents.
pub const AGENT_TOKEN: &str = "berth-test-join-token-0123456789abcdef";

/// An agent-protocol client that presents [`AGENT_TOKEN`] (for tests and
/// benchmarks that script agents).
pub type AgentClient = berth_proto::agent::v1::agent_service_client::AgentServiceClient<
    tonic::service::interceptor::InterceptedService<tonic::transport::Channel, AddAgentToken>,
>;

/// The interceptor of [`AgentClient`].
pub type AddAgentToken = fn(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status>;

/// Wraps `channel` in an [`AgentClient`].
pub fn agent_client(channel: tonic::transport::Channel) -> AgentClient {
    fn add(mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        let value = format!("Bearer {AGENT_TOKEN}")
            .parse()
            .map_err(|_| tonic::Status::internal("token"))?;
        request.metadata_mut().insert("authorization", value);
        Ok(request)
    }
    berth_proto::agent::v1::agent_service_client::AgentServiceClient::with_interceptor(
        channel,
        add as AddAgentToken,
    )
}

/// The image every test task runs. Its entrypoint is `berth-testbin`; the
/// container's command picks what it does (see `tests/testbin`).
pub const TEST_IMAGE: &str = "berth-test/testbin:latest";

/// Where cargo put the workspace binaries of this build: `target/<profile>`
/// (test executables live one level down, in `deps/`).
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the executable has a path");
    let dir = exe.parent().expect("the executable is in a directory");
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.parent()
            .expect("deps/ is inside target/<profile>")
            .to_path_buf()
    } else {
        dir.to_path_buf()
    }
}

/// The path of a workspace binary, or a panic that says how to build it.
/// A binary older than its sources is refused too: `cargo test -p
/// berth-tests` alone does not rebuild it, and a stale binary makes tests
/// lie.
pub fn binary(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(
        path.exists(),
        "{} is missing: run the suite with `cargo test --workspace`, which builds the binaries",
        path.display()
    );
    let crate_dir = name.trim_start_matches("berth-");
    let built = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
    let root = workspace_root();
    // Templates are compiled into the binary too (the console's).
    let newest = [
        root.join(crate_dir).join("src"),
        root.join(crate_dir).join("templates"),
        root.join("proto"),
    ]
    .iter()
    .filter_map(|d| newest_file(d))
    .max();
    if let (Some(built), Some((changed, file))) = (built, newest) {
        assert!(
            changed <= built,
            "{} is older than {}: rebuild with `cargo build --workspace` (or run `cargo test --workspace`)",
            path.display(),
            file.display()
        );
    }
    path
}

/// Source files that only unit tests compile (`#[cfg(test)] mod ...;`):
/// editing them does not make a binary stale.
const TEST_ONLY_FILES: &[&str] = &["tests.rs", "page_tests.rs", "fuzz.rs"];

/// The most recently modified file below `dir` (test-only files aside).
fn newest_file(dir: &Path) -> Option<(std::time::SystemTime, PathBuf)> {
    let mut newest: Option<(std::time::SystemTime, PathBuf)> = None;
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        if path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| TEST_ONLY_FILES.contains(&n))
        {
            continue;
        }
        let candidate = if path.is_dir() {
            newest_file(&path)
        } else {
            entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .map(|t| (t, path))
        };
        if let Some(c) = candidate
            && newest.as_ref().is_none_or(|n| c.0 > n.0)
        {
            newest = Some(c);
        }
    }
    newest
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the workspace")
        .to_path_buf()
}

/// Fails the test with a clear message when Docker is not reachable.
pub fn require_docker() {
    static CHECKED: OnceLock<Result<(), String>> = OnceLock::new();
    let result = CHECKED.get_or_init(|| {
        let out = Command::new("docker")
            .args(["version", "--format", "{{.Server.Version}}"])
            .output();
        match out {
            Ok(o) if o.status.success() => Ok(()),
            Ok(o) => Err(String::from_utf8_lossy(&o.stderr).into_owned()),
            Err(e) => Err(format!("cannot run the docker CLI: {e}")),
        }
    });
    if let Err(e) = result {
        panic!("these tests need a running Docker Engine (/var/run/docker.sock): {e}");
    }
}

/// Builds the test image once per test process: `berth-testbin` compiled
/// fully static, copied as the only file of a `FROM scratch` image.
pub fn ensure_test_image() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        require_docker();
        let root = workspace_root();
        let target = format!("{}-unknown-linux-gnu", std::env::consts::ARCH);
        let target_dir = root.join("target").join("testbin");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let status = Command::new(cargo)
            .current_dir(&root)
            .args([
                "build",
                "--quiet",
                "--release",
                "-p",
                "berth-testbin",
                "--target",
                &target,
            ])
            .arg("--target-dir")
            .arg(&target_dir)
            .env("RUSTFLAGS", "-C target-feature=+crt-static")
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building the static test program failed");
        let context = tempfile::tempdir().expect("temp dir");
        std::fs::copy(
            target_dir
                .join(&target)
                .join("release")
                .join("berth-testbin"),
            context.path().join("berth-testbin"),
        )
        .expect("copy the test program");
        std::fs::write(
            context.path().join("Dockerfile"),
            "FROM scratch\nCOPY berth-testbin /testbin\nENTRYPOINT [\"/testbin\"]\n",
        )
        .expect("write the Dockerfile");
        let out = Command::new("docker")
            .args(["build", "--quiet", "--tag", TEST_IMAGE])
            .arg(context.path())
            .env("DOCKER_BUILDKIT", "0")
            .output()
            .expect("docker build runs");
        assert!(
            out.status.success(),
            "docker build of the test image failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    });
}

/// Panics, saying how to install it, unless `tool` is on the PATH (the
/// Debian packages `.ci/run` installs for the tests that need them).
pub fn require_tool(tool: &str, install: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "this test needs `{tool}`: {install} (.ci/run does this)"
    );
}

/// `VmRSS` and `VmHWM` (peak) of process `pid`, in KiB.
pub fn process_memory_kib(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// Polls `check` every 50 ms until it returns `Some`, or panics after
/// `timeout` with `what`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `GET path` on `addr` (HTTP/1.1, unauthenticated: the metrics
/// listeners, Prometheus's API); returns (status, body). A chunked body is
/// joined.
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    http_get_with(addr, path, &[]).await
}

/// [`http_get`] with extra request headers.
pub async fn http_get_with(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    let mut head = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).await.expect("request");
    let mut raw = String::new();
    s.read_to_string(&mut raw).await.expect("response");
    parse_response(&raw)
}

/// Status and body of a raw HTTP/1.1 response (chunks joined).
fn parse_response(raw: &str) -> (u16, String) {
    let status = raw
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let Some((head, body)) = raw.split_once("\r\n\r\n") else {
        return (status, String::new());
    };
    if !head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        return (status, body.to_owned());
    }
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || tail.len() < n {
            break;
        }
        out.push_str(&tail[..n]);
        rest = tail[n..].strip_prefix("\r\n").unwrap_or(&tail[n..]);
    }
    (status, out)
}

/// Reads the first stdout line of `child` that starts with `prefix`.
fn wait_for_line(child: &mut Child, prefix: &str, timeout: Duration, log: &Path) -> String {
    let stdout = child.stdout.take().expect("stdout is piped");
    let (tx, rx) = std::sync::mpsc::channel();
    let prefix = prefix.to_owned();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.starts_with(&prefix) {
                let _ = tx.send(line);
            }
        }
    });
    match rx.recv_timeout(timeout) {
        Ok(line) => line,
        Err(_) => panic!(
            "no '{}' line within {timeout:?}; log:\n{}",
            "ready",
            std::fs::read_to_string(log).unwrap_or_default()
        ),
    }
}

fn field<'a>(line: &'a str, key: &str) -> &'a str {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key))
        .unwrap_or_else(|| panic!("'{line}' has no {key}"))
}

/// A log file to append a process's stderr to (kept across restarts).
fn append_to(log: &Path) -> std::fs::File {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap_or_else(|e| panic!("cannot open {}: {e}", log.display()))
}

/// A child process that is killed (SIGKILL) when dropped.
#[derive(Debug, Default)]
struct Process(Option<Child>);

impl Process {
    /// `kill -9`, then reap it.
    fn kill(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn pid(&self) -> Option<u32> {
        self.0.as_ref().map(Child::id)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A running `berth-control-plane` process.
#[derive(Debug)]
pub struct ControlPlane {
    process: Process,
    /// The ECS JSON API address.
    pub http: SocketAddr,
    /// The agent gRPC address.
    pub grpc: SocketAddr,
    /// The metrics listener (/metrics, /healthz, /readyz).
    pub metrics: SocketAddr,
    data_dir: PathBuf,
    log: PathBuf,
    extra: Vec<String>,
    /// The file holding [`AGENT_TOKEN`], for agents' `--agent-token-file`.
    pub agent_token_file: PathBuf,
    /// The credentials file (holding the [`ACCESS_KEY_ID`] key).
    pub credentials_file: PathBuf,
}

impl ControlPlane {
    /// Starts a control plane on `data_dir`, on the given addresses (port 0
    /// picks free ports). It requires signed API requests (the
    /// [`ACCESS_KEY_ID`] key) and the [`AGENT_TOKEN`] of agents, as a
    /// production control plane would.
    pub fn start(data_dir: &Path, http: SocketAddr, grpc: SocketAddr, log: &Path) -> Self {
        Self::start_with(data_dir, http, grpc, log, &[])
    }

    /// [`ControlPlane::start`] with extra arguments.
    pub fn start_with(
        data_dir: &Path,
        http: SocketAddr,
        grpc: SocketAddr,
        log: &Path,
        extra: &[String],
    ) -> Self {
        let parent = data_dir.parent().unwrap_or(data_dir);
        std::fs::create_dir_all(parent).expect("create the data directory's parent");
        let credentials_file = parent.join("credentials.toml");
        std::fs::write(
            &credentials_file,
            format!(
                "[[credentials]]\naccess_key_id = \"{ACCESS_KEY_ID}\"\nsecret_access_key = \"{SECRET_ACCESS_KEY}\"\nname = \"test harness\"\n"
            ),
        )
        .expect("write the credentials file");
        let agent_token_file = parent.join("agent-token");
        std::fs::write(&agent_token_file, format!("{AGENT_TOKEN}\n"))
            .expect("write the agent token");
        let mut child = Command::new(binary("berth-control-plane"))
            .arg("--data-dir")
            .arg(data_dir)
            .args([
                "--http-listen",
                &http.to_string(),
                "--grpc-listen",
                &grpc.to_string(),
            ])
            .arg("--credentials-file")
            .arg(&credentials_file)
            .arg("--agent-token-file")
            .arg(&agent_token_file)
            .args(["--metrics-listen", "127.0.0.1:0"])
            .args(["--log", "info,berth_control_plane=debug"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(append_to(log))
            .spawn()
            .expect("start berth-control-plane");
        let line = wait_for_line(
            &mut child,
            "berth-control-plane ready",
            Duration::from_secs(30),
            log,
        );
        ControlPlane {
            http: field(&line, "http=").parse().expect("http address"),
            grpc: field(&line, "grpc=").parse().expect("grpc address"),
            metrics: field(&line, "metrics=").parse().expect("metrics address"),
            process: Process(Some(child)),
            data_dir: data_dir.to_owned(),
            log: log.to_owned(),
            extra: extra.to_vec(),
            agent_token_file,
            credentials_file,
        }
    }

    /// Its data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// `kill -9`.
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// Starts it again on the same data directory and ports.
    pub fn restart(&mut self) {
        self.kill();
        *self = ControlPlane::start_with(
            &self.data_dir.clone(),
            self.http,
            self.grpc,
            &self.log.clone(),
            &self.extra.clone(),
        );
    }

    /// Its process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.process.pid()
    }

    /// The gRPC URL agents use.
    pub fn grpc_url(&self) -> String {
        format!("http://{}", self.grpc)
    }
}

/// A running `berth-agent` process.
#[derive(Debug)]
pub struct Agent {
    process: Process,
    /// Its container-instance ARN.
    pub arn: String,
    /// Its metrics listener (/metrics, /healthz, /readyz).
    pub metrics: SocketAddr,
    data_dir: PathBuf,
    log: PathBuf,
    args: Vec<String>,
}

impl Agent {
    /// Starts an agent with its own data directory; waits for its first
    /// session.
    pub fn start(data_dir: &Path, log: &Path, args: &[String]) -> Self {
        Self::start_via(&[], data_dir, log, args)
    }

    /// [`Agent::start`] through a wrapper command (`ip netns exec NS`).
    pub fn start_via(wrapper: &[&str], data_dir: &Path, log: &Path, args: &[String]) -> Self {
        let mut command = match wrapper.split_first() {
            Some((program, rest)) => {
                let mut c = Command::new(program);
                c.args(rest).arg(binary("berth-agent"));
                c
            }
            None => Command::new(binary("berth-agent")),
        };
        let mut child = command
            .arg("--data-dir")
            .arg(data_dir)
            .args([
                "--log",
                "info,berth_agent=debug",
                "--container-stop-timeout",
                "5s",
                "--metrics-listen",
                "127.0.0.1:0",
            ])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(append_to(log))
            .spawn()
            .expect("start berth-agent");
        let line = wait_for_line(
            &mut child,
            "berth-agent ready",
            Duration::from_secs(60),
            log,
        );
        Agent {
            arn: field(&line, "container-instance=").to_owned(),
            metrics: field(&line, "metrics=").parse().expect("metrics address"),
            process: Process(Some(child)),
            data_dir: data_dir.to_owned(),
            log: log.to_owned(),
            args: args.to_vec(),
        }
    }

    /// `kill -9`: its containers keep running.
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// Starts it again with the same data directory and arguments.
    pub fn restart(&mut self) {
        self.kill();
        let arn = self.arn.clone();
        *self = Agent::start(
            &self.data_dir.clone(),
            &self.log.clone(),
            &self.args.clone(),
        );
        assert_eq!(
            self.arn, arn,
            "a restarted agent keeps its container-instance ARN"
        );
    }

    /// Its process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.process.pid()
    }

    /// The id part of its ARN.
    pub fn id(&self) -> &str {
        self.arn.rsplit('/').next().unwrap_or_default()
    }
}

/// An ECS client for `endpoint`, signing with the harness's key.
pub fn ecs_client(http: SocketAddr) -> aws_sdk_ecs::Client {
    ecs_client_with_key(http, ACCESS_KEY_ID, SECRET_ACCESS_KEY)
}

/// An ECS client for `endpoint` signing with the given key.
pub fn ecs_client_with_key(
    http: SocketAddr,
    access_key_id: &str,
    secret: &str,
) -> aws_sdk_ecs::Client {
    let config = aws_sdk_ecs::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(format!("http://{http}"))
        .credentials_provider(Credentials::new(
            access_key_id.to_owned(),
            secret.to_owned(),
            None,
            None,
            "static",
        ))
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .build();
    aws_sdk_ecs::Client::from_conf(config)
}

/// A control plane, its agents, and clients, in a temporary directory.
#[derive(Debug)]
pub struct TestCluster {
    /// The control plane.
    pub control_plane: ControlPlane,
    /// Agents, in start order.
    pub agents: Vec<Agent>,
    /// ECS client pointed at the control plane.
    pub ecs: aws_sdk_ecs::Client,
    /// Docker, to check what really runs.
    pub docker: bollard::Docker,
    dir: tempfile::TempDir,
    /// Every container-instance ARN ever started here (for cleanup).
    instance_arns: Vec<String>,
}

impl TestCluster {
    /// A control plane with `agents` agents in cluster `default`.
    pub async fn start(agents: usize) -> Self {
        ensure_test_image();
        let dir = tempfile::tempdir().expect("temp dir");
        let any: SocketAddr = "127.0.0.1:0".parse().expect("address");
        let control_plane = ControlPlane::start(
            &dir.path().join("cp"),
            any,
            any,
            &dir.path().join("control-plane.log"),
        );
        let ecs = ecs_client(control_plane.http);
        let docker = bollard::Docker::connect_with_local_defaults()
            .expect("docker client")
            .negotiate_version()
            .await
            .expect("docker answers");
        let mut cluster = TestCluster {
            control_plane,
            agents: Vec::new(),
            ecs,
            docker,
            dir,
            instance_arns: Vec::new(),
        };
        for _ in 0..agents {
            cluster.start_agent(&[]);
        }
        cluster
    }

    /// Starts one more agent with extra arguments; returns its index.
    pub fn start_agent(&mut self, extra: &[&str]) -> usize {
        let n = self.agents.len();
        let mut args = vec![
            "--control-plane".to_owned(),
            self.control_plane.grpc_url(),
            "--agent-token-file".to_owned(),
            self.control_plane.agent_token_file.display().to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let agent = Agent::start(
            &self.dir.path().join(format!("agent{n}")),
            &self.dir.path().join(format!("agent{n}.log")),
            &args,
        );
        self.instance_arns.push(agent.arn.clone());
        self.agents.push(agent);
        n
    }

    /// The temporary directory (logs live here).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn logs(&self) -> String {
        let mut out = String::new();
        let mut names: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        names.sort();
        for path in names
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "log"))
        {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(60)..];
            out.push_str(&format!(
                "==> {} <==\n{}\n",
                path.display(),
                tail.join("\n")
            ));
        }
        out
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- logs of the failed test ---\n{}", self.logs());
        }
        for a in &mut self.agents {
            a.kill();
        }
        self.control_plane.kill();
        // Agents a test started itself and pushed (through a wrapper, say)
        // count too: their containers must not outlive the test.
        let mut arns = self.instance_arns.clone();
        arns.extend(self.agents.iter().map(|a| a.arn.clone()));
        arns.sort();
        arns.dedup();
        // Twice: a create the killed agent had in flight can land in Docker
        // just after the first sweep.
        for pass in 0..2 {
            if pass > 0 {
                std::thread::sleep(Duration::from_millis(300));
            }
            for arn in &arns {
                remove_containers(&format!("berth.container-instance-arn={arn}"));
            }
        }
    }
}

/// The value after `name` in a command line (`--iterations 20`), for the
/// benchmarks' flags.
pub fn flag_value(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

/// Removes every container carrying `label` (`key=value`).
pub fn remove_containers(label: &str) {
    let Ok(out) = Command::new("docker")
        .args(["ps", "-aq", "--filter", &format!("label={label}")])
        .output()
    else {
        return;
    };
    let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    if !ids.is_empty() {
        let _ = Command::new("docker")
            .args(["rm", "-f", "-v"])
            .args(&ids)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// A raw AWS JSON 1.1 request, for what SDKs never send (malformed bodies,
/// unknown operations), signed with the harness's key by AWS's own SigV4
/// signer (`aws-sigv4`). Returns (status, lower-cased headers, body).
pub async fn raw_post(
    addr: std::net::SocketAddr,
    target: Option<&str>,
    body: &[u8],
) -> (u16, Vec<(String, String)>, String) {
    let headers = with_signature(
        base_headers(addr, target, body),
        body,
        ACCESS_KEY_ID,
        SECRET_ACCESS_KEY,
        std::time::SystemTime::now(),
    );
    raw_request(addr, &headers, body).await
}

/// The headers an AWS JSON 1.1 client sends before signing.
pub fn base_headers(addr: SocketAddr, target: Option<&str>, body: &[u8]) -> Vec<(String, String)> {
    let mut headers = vec![
        ("host".to_owned(), addr.to_string()),
        (
            "content-type".to_owned(),
            "application/x-amz-json-1.1".to_owned(),
        ),
        ("content-length".to_owned(), body.len().to_string()),
    ];
    if let Some(t) = target {
        headers.push(("x-amz-target".to_owned(), t.to_owned()));
    }
    headers
}

/// `headers` with the signature `aws-sigv4` makes for them and `body`
/// at time `at` added.
pub fn with_signature(
    mut headers: Vec<(String, String)>,
    body: &[u8],
    access_key_id: &str,
    secret: &str,
    at: std::time::SystemTime,
) -> Vec<(String, String)> {
    let signature = sign(&headers, body, access_key_id, secret, at);
    headers.extend(signature);
    headers
}

/// The headers `aws-sigv4` adds to sign `POST /` with these headers and body
/// (`x-amz-date` and `authorization`).
pub fn sign(
    headers: &[(String, String)],
    body: &[u8],
    access_key_id: &str,
    secret: &str,
    at: std::time::SystemTime,
) -> Vec<(String, String)> {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    let identity =
        aws_credential_types::Credentials::new(access_key_id, secret, None, None, "test").into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("ecs")
        .time(at)
        .settings(SigningSettings::default())
        .build()
        .expect("signing parameters")
        .into();
    let host = headers
        .iter()
        .find(|(k, _)| k == "host")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let request = SignableRequest::new(
        "POST",
        format!("http://{host}/"),
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Bytes(body),
    )
    .expect("signable request");
    let (instructions, _) = sign(request, &params).expect("sign").into_parts();
    instructions
        .headers()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// Sends `POST /` with exactly these headers and body; returns (status,
/// lower-cased headers, body).
pub async fn raw_request(
    addr: SocketAddr,
    headers: &[(String, String)],
    body: &[u8],
) -> (u16, Vec<(String, String)>, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut head = "POST / HTTP/1.1\r\nConnection: close\r\n".to_owned();
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.expect("write");
    stream.write_all(body).await.expect("write");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP response");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (status, headers, body.to_owned())
}

#[cfg(test)]
mod stale_check_tests {
    use super::*;

    #[test]
    fn test_only_files_do_not_make_a_binary_stale() {
        let dir = tempfile::tempdir().expect("temp dir");
        let sub = dir.path().join("app");
        std::fs::create_dir(&sub).expect("mkdir");
        std::fs::write(sub.join("state.rs"), "// real code").expect("write");
        std::thread::sleep(Duration::from_millis(20));
        std::fs::write(sub.join("tests.rs"), "// unit tests only").expect("write");
        let (_, newest) = newest_file(dir.path()).expect("a file");
        assert_eq!(newest, sub.join("state.rs"));
        std::thread::sleep(Duration::from_millis(20));
        std::fs::write(dir.path().join("lib.rs"), "// newer real code").expect("write");
        let (_, newest) = newest_file(dir.path()).expect("a file");
        assert_eq!(newest, dir.path().join("lib.rs"));
    }
}
