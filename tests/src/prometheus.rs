//! A real Prometheus server (Debian's `prometheus`) on 127.0.0.1, scraping
//! the targets a test names every second, queried through its own HTTP API;
//! and `promtool check metrics` on a scrape. Stopped when dropped.

use super::Process;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A running Prometheus.
#[derive(Debug)]
pub struct Prometheus {
    /// Its web and API address.
    pub address: SocketAddr,
    _process: Process,
}

impl Prometheus {
    /// Starts Prometheus in `dir`, scraping each `(job, target)` every
    /// second; waits until it is ready.
    pub fn start(dir: &Path, jobs: &[(&str, SocketAddr)]) -> Prometheus {
        super::require_tool("prometheus", "apt-get install prometheus");
        std::fs::create_dir_all(dir.join("data")).expect("prometheus dir");
        let mut config =
            String::from("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n");
        for (job, target) in jobs {
            config.push_str(&format!(
                "  - job_name: {job}\n    static_configs:\n      - targets: ['{target}']\n"
            ));
        }
        std::fs::write(dir.join("prometheus.yml"), config).expect("write config");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("a free port")
            .local_addr()
            .expect("addr")
            .port();
        let address: SocketAddr = ([127, 0, 0, 1], port).into();
        let log = std::fs::File::create(dir.join("prometheus.log")).expect("prometheus log");
        let child = Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={address}"))
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start prometheus");
        let prometheus = Prometheus {
            address,
            _process: Process(Some(child)),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok((200, _)) = http_get_blocking(address, "/-/ready") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "prometheus was not ready on {address}; see {}",
                dir.join("prometheus.log").display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        prometheus
    }

    /// An instant query through `/api/v1/query`: each series' labels and
    /// value.
    pub async fn query(&self, expr: &str) -> Vec<(serde_json::Value, f64)> {
        let path = format!("/api/v1/query?query={}", percent_encode(expr));
        let (status, body) = super::http_get(self.address, &path).await;
        assert_eq!(status, 200, "query {expr}: {body}");
        let v: serde_json::Value = serde_json::from_str(&body).expect("query JSON");
        assert_eq!(v["status"], "success", "query {expr}: {body}");
        v["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|s| {
                let value = s["value"][1]
                    .as_str()
                    .and_then(|x| x.parse::<f64>().ok())
                    .unwrap_or(f64::NAN);
                (s["metric"].clone(), value)
            })
            .collect()
    }

    /// The value of a query that yields one series (`None` when it yields
    /// none yet).
    pub async fn scalar(&self, expr: &str) -> Option<f64> {
        self.query(expr).await.first().map(|(_, v)| *v)
    }
}

/// `promtool check metrics` on an exposition text: its complaints (empty
/// when it accepts the text without warnings).
pub fn promtool_check(exposition: &str) -> String {
    super::require_tool("promtool", "apt-get install prometheus");
    use std::io::Write;
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(exposition.as_bytes())
        .expect("feed promtool");
    let out = child.wait_with_output().expect("promtool output");
    let complaints = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() && complaints.trim().is_empty() {
        String::new()
    } else {
        format!("exit {:?}: {complaints}", out.status.code())
    }
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn http_get_blocking(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())?;
    let mut raw = String::new();
    s.read_to_string(&mut raw)?;
    Ok(super::parse_response(&raw))
}
