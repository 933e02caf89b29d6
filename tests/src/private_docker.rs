//! A Docker Engine of a test's own: `dockerd` in a network namespace of its
//! own (`unshare --net`: its bridge and iptables rules cannot touch the
//! host's `docker0`), with its socket, data root and exec root in the test's
//! directory, so a test can stop and restart it without disturbing the
//! machine's engine or the tests running beside it. Needs root, util-linux's
//! `unshare` and Debian's `docker.io` (`dockerd`).

use super::{Process, TEST_IMAGE};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A running private engine.
#[derive(Debug)]
pub struct PrivateDocker {
    dir: PathBuf,
    /// `unix://.../docker.sock`, for `--docker-host`.
    pub host: String,
    process: Option<Process>,
}

impl PrivateDocker {
    /// Starts an engine in `dir` and loads the test image into it.
    pub fn start(dir: &Path) -> PrivateDocker {
        std::fs::create_dir_all(dir).expect("private docker dir");
        std::fs::write(dir.join("daemon.json"), "{}").expect("daemon.json");
        let mut engine = PrivateDocker {
            dir: dir.to_owned(),
            host: format!("unix://{}", dir.join("docker.sock").display()),
            process: None,
        };
        engine.run();
        let mut save = Command::new("docker")
            .args(["save", TEST_IMAGE])
            .stdout(Stdio::piped())
            .spawn()
            .expect("docker save");
        let load = Command::new("docker")
            .args(["-H", &engine.host, "load", "--quiet"])
            .stdin(save.stdout.take().expect("save output"))
            .output()
            .expect("docker load");
        let _ = save.wait();
        assert!(
            load.status.success(),
            "loading the test image into the private engine failed: {}",
            String::from_utf8_lossy(&load.stderr)
        );
        engine
    }

    fn run(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("dockerd.log"))
            .expect("dockerd log");
        let child = Command::new("unshare")
            .args(["--net", "--", "dockerd"])
            .arg("--config-file")
            .arg(self.dir.join("daemon.json"))
            .arg("--host")
            .arg(&self.host)
            .arg("--data-root")
            .arg(self.dir.join("data"))
            .arg("--exec-root")
            .arg(self.dir.join("exec"))
            .arg("--pidfile")
            .arg(self.dir.join("docker.pid"))
            .args(["--iptables=false", "--ip-masq=false", "--ip6tables=false"])
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start dockerd (the e2e tests need Debian's docker.io and root)");
        self.process = Some(Process(Some(child)));
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let up = Command::new("docker")
                .args(["-H", &self.host, "version"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if up {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the private dockerd did not start; see {}",
                self.dir.join("dockerd.log").display()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Freezes (SIGSTOP) or thaws (SIGCONT) dockerd: a frozen engine
    /// accepts connections and never answers, as a deadlocked one does; its
    /// containers (under containerd) keep running.
    pub fn freeze(&self, frozen: bool) {
        let pid = std::fs::read_to_string(self.dir.join("docker.pid")).expect("dockerd pid file");
        let status = Command::new("kill")
            .arg(if frozen { "-STOP" } else { "-CONT" })
            .arg(pid.trim())
            .status()
            .expect("kill");
        assert!(status.success(), "signal dockerd");
    }

    /// Stops the engine as an administrator would (SIGTERM, waiting for it
    /// to exit): its containers stop with it.
    pub fn stop(&mut self) {
        if let Some(mut p) = self.process.take()
            && let Some(mut child) = p.0.take()
        {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let deadline = Instant::now() + Duration::from_secs(60);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
            // dockerd leaves its default network namespace mounted.
            let _ = Command::new("umount")
                .arg(self.dir.join("exec/netns/default"))
                .stderr(Stdio::null())
                .status();
        }
    }

    /// Starts it again on the same data.
    pub fn restart(&mut self) {
        self.stop();
        self.run();
    }
}

impl Drop for PrivateDocker {
    fn drop(&mut self) {
        self.stop();
    }
}
