//! Under systemd: both binaries speak the notify protocol to a real
//! datagram socket standing in for systemd (READY=1 once serving, STATUS=,
//! WATCHDOG=1 at half of WATCHDOG_USEC while their loops turn, STOPPING=1
//! on SIGTERM).

use berth_tests::TestCluster;
use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

/// A datagram socket standing in for systemd's notify socket.
struct FakeSystemd {
    socket: UnixDatagram,
    path: std::path::PathBuf,
}

impl FakeSystemd {
    fn new(dir: &std::path::Path, name: &str) -> Self {
        let path = dir.join(format!("{name}.notify"));
        let socket = UnixDatagram::bind(&path).expect("bind the notify socket");
        socket
            .set_read_timeout(Some(Duration::from_millis(500)))
            .expect("timeout");
        FakeSystemd { socket, path }
    }

    /// Every datagram received within `window`.
    fn collect(&self, window: Duration) -> Vec<(Duration, String)> {
        let start = Instant::now();
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        while start.elapsed() < window {
            if let Ok(n) = self.socket.recv(&mut buf) {
                got.push((
                    start.elapsed(),
                    String::from_utf8_lossy(&buf[..n]).into_owned(),
                ));
            }
        }
        got
    }
}

fn check_pings(what: &str, got: &[(Duration, String)], interval: Duration) {
    let pings: Vec<Duration> = got
        .iter()
        .filter(|(_, m)| m == "WATCHDOG=1")
        .map(|(t, _)| *t)
        .collect();
    assert!(pings.len() >= 3, "{what}: watchdog pings: {got:?}");
    for w in pings.windows(2) {
        assert!(
            w[1] - w[0] <= interval + Duration::from_millis(700),
            "{what}: pings at most {interval:?} apart: {pings:?}"
        );
    }
}

#[tokio::test]
async fn both_binaries_notify_systemd_ready_status_watchdog_and_stopping() {
    let mut cluster = TestCluster::start(0).await;
    let dir = cluster.dir().to_owned();

    // The control plane, with systemd's environment.
    let cp_systemd = FakeSystemd::new(&dir, "cp");
    let mut cp = std::process::Command::new(berth_tests::binary("berth-control-plane"))
        .args(["--data-dir"])
        .arg(dir.join("cp-notify"))
        .args([
            "--http-listen",
            "127.0.0.1:0",
            "--grpc-listen",
            "127.0.0.1:0",
        ])
        .args(["--metrics-listen", "off"])
        .env("NOTIFY_SOCKET", &cp_systemd.path)
        .env("WATCHDOG_USEC", "2000000")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start berth-control-plane");
    let got = cp_systemd.collect(Duration::from_secs(5));
    let ready = got
        .iter()
        .find(|(_, m)| m.starts_with("READY=1"))
        .unwrap_or_else(|| panic!("READY=1 from the control plane: {got:?}"));
    assert!(ready.1.contains("STATUS=serving"), "{ready:?}");
    check_pings("control plane", &got, Duration::from_secs(1));
    assert!(
        got.iter()
            .any(|(_, m)| m.starts_with("STATUS=serving; 0 instances connected")),
        "{got:?}"
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(cp.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("SIGTERM");
    let got = cp_systemd.collect(Duration::from_secs(2));
    assert!(
        got.iter().any(|(_, m)| m.starts_with("STOPPING=1")),
        "{got:?}"
    );
    let _ = cp.wait();

    // An agent, with systemd's environment.
    let agent_systemd = FakeSystemd::new(&dir, "agent");
    let notify_env = format!("NOTIFY_SOCKET={}", agent_systemd.path.display());
    let agent = berth_tests::Agent::start_via(
        &["env", &notify_env, "WATCHDOG_USEC=2000000"],
        &dir.join("agent-notify"),
        &dir.join("agent-notify.log"),
        &[
            "--control-plane".to_owned(),
            cluster.control_plane.grpc_url(),
            "--agent-token-file".to_owned(),
            cluster.control_plane.agent_token_file.display().to_string(),
        ],
    );
    cluster.agents.push(agent);
    let got = agent_systemd.collect(Duration::from_secs(5));
    check_pings("agent", &got, Duration::from_secs(1));
    assert!(
        got.iter()
            .any(|(_, m)| m.starts_with("STATUS=session open, 0 tasks")),
        "{got:?}"
    );
    let pid = cluster.agents[0].pid().expect("agent pid");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("SIGTERM");
    let got = agent_systemd.collect(Duration::from_secs(2));
    assert!(
        got.iter().any(|(_, m)| m.starts_with("STOPPING=1")),
        "{got:?}"
    );
}

/// Starts a control plane with stderr to `log` and `env`, long enough for
/// its first lines; returns them.
fn control_plane_log_lines(
    dir: &std::path::Path,
    name: &str,
    args: &[&str],
    env: &[(&str, String)],
) -> Vec<String> {
    let log = dir.join(format!("{name}.log"));
    let file = std::fs::File::create(&log).expect("log file");
    let mut command = std::process::Command::new(berth_tests::binary("berth-control-plane"));
    command
        .arg("--data-dir")
        .arg(dir.join(name))
        .args([
            "--http-listen",
            "127.0.0.1:0",
            "--grpc-listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "off",
        ])
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(file);
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().expect("start berth-control-plane");
    let deadline = Instant::now() + Duration::from_secs(10);
    let lines = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("state loaded") || Instant::now() > deadline {
            break text.lines().map(str::to_owned).collect();
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = child.kill();
    let _ = child.wait();
    lines
}

#[test]
fn logs_drop_their_timestamps_on_the_journal_and_speak_json_when_asked() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().expect("temp dir");

    // Under systemd, JOURNAL_STREAM names stderr's device and inode.
    let log = dir.path().join("journal.log");
    std::fs::File::create(&log).expect("create");
    let meta = std::fs::metadata(&log).expect("stat");
    // (The helper truncates this same file: the inode stays.)
    let stream = format!("{}:{}", meta.dev(), meta.ino());
    let lines = control_plane_log_lines(dir.path(), "journal", &[], &[("JOURNAL_STREAM", stream)]);
    assert!(!lines.is_empty());
    for l in &lines {
        assert!(
            l.trim_start().starts_with("INFO") || l.trim_start().starts_with("WARN"),
            "no timestamp of its own on the journal: {l}"
        );
    }

    // Elsewhere, a JOURNAL_STREAM that is not stderr changes nothing.
    let lines = control_plane_log_lines(
        dir.path(),
        "plain",
        &[],
        &[("JOURNAL_STREAM", "1:1".to_owned())],
    );
    assert!(lines[0].starts_with("20"), "timestamped: {}", lines[0]);

    // --log-format json: one object per line, with level and message.
    let lines = control_plane_log_lines(dir.path(), "json", &["--log-format", "json"], &[]);
    for l in &lines {
        let v: serde_json::Value =
            serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: not JSON: {l}"));
        assert!(
            v["timestamp"].is_string() && v["level"].is_string() && v["message"].is_string(),
            "{l}"
        );
    }
}
