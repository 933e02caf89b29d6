//! A private image registry on 127.0.0.1 for pull tests: Debian's
//! `docker-registry` with htpasswd authentication, in a temporary
//! directory, stopped when dropped. Docker trusts 127.0.0.0/8 registries
//! over plain HTTP by default.

use super::Process;
use bollard::auth::DockerCredentials;
use futures_util::StreamExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// A running registry.
#[derive(Debug)]
pub struct Registry {
    /// `127.0.0.1:PORT`.
    pub address: String,
    /// The one user's name and password.
    pub user: (String, String),
    log: std::path::PathBuf,
    _process: Process,
}

impl Registry {
    /// Starts a registry in `dir` with one user.
    pub fn start(dir: &Path, user: &str, password: &str) -> Registry {
        super::require_tool(
            "docker-registry",
            "apt-get install docker-registry apache2-utils",
        );
        super::require_tool("htpasswd", "apt-get install docker-registry apache2-utils");
        std::fs::create_dir_all(dir.join("data")).expect("registry dir");
        let htpasswd = Command::new("htpasswd")
            .args(["-Bbn", user, password])
            .output()
            .expect("run htpasswd");
        assert!(htpasswd.status.success(), "htpasswd failed");
        std::fs::write(dir.join("htpasswd"), &htpasswd.stdout).expect("write htpasswd");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("a free port")
            .local_addr()
            .expect("addr")
            .port();
        let address = format!("127.0.0.1:{port}");
        let config = format!(
            "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {address}\nauth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n",
            dir.join("data").display(),
            dir.join("htpasswd").display()
        );
        std::fs::write(dir.join("config.yml"), config).expect("write config");
        let log = std::fs::File::create(dir.join("registry.log")).expect("registry log");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(dir.join("config.yml"))
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start docker-registry");
        let process = Process(Some(child));
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(&address).is_err() {
            assert!(
                Instant::now() < deadline,
                "docker-registry did not listen on {address}; see {}",
                dir.join("registry.log").display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Registry {
            address,
            user: (user.to_owned(), password.to_owned()),
            log: dir.join("registry.log"),
            _process: process,
        }
    }

    /// How many requests the registry has answered whose URI contains
    /// `path` (from its access log).
    pub fn requests(&self, path: &str) -> usize {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("response completed") && l.contains(path))
            .count()
    }

    fn credentials(&self) -> DockerCredentials {
        DockerCredentials {
            username: Some(self.user.0.clone()),
            password: Some(self.user.1.clone()),
            serveraddress: Some(self.address.clone()),
            ..Default::default()
        }
    }

    /// Pushes local image `source` as `<registry>/<repository>:<tag>`, then
    /// removes that tag locally (the image stays under `source`), so using
    /// the reference needs a pull. Returns the reference.
    pub async fn push(
        &self,
        docker: &bollard::Docker,
        source: &str,
        repository: &str,
        tag: &str,
    ) -> String {
        let repo = format!("{}/{repository}", self.address);
        docker
            .tag_image(
                source,
                Some(
                    bollard::query_parameters::TagImageOptionsBuilder::new()
                        .repo(&repo)
                        .tag(tag)
                        .build(),
                ),
            )
            .await
            .expect("tag the image");
        let mut push = docker.push_image(
            &repo,
            Some(
                bollard::query_parameters::PushImageOptionsBuilder::new()
                    .tag(tag)
                    .build(),
            ),
            Some(self.credentials()),
        );
        while let Some(progress) = push.next().await {
            let progress = progress.expect("push");
            if let Some(e) = progress.error_detail {
                panic!("push failed: {e:?}");
            }
        }
        let reference = format!("{repo}:{tag}");
        self.forget_locally(docker, &reference).await;
        reference
    }

    /// Removes the local tag `reference` (not the image's other tags).
    pub async fn forget_locally(&self, docker: &bollard::Docker, reference: &str) {
        docker
            .remove_image(
                reference,
                None::<bollard::query_parameters::RemoveImageOptions>,
                None,
            )
            .await
            .expect("untag");
    }
}
