//! Browser tests: drive a real headless Chromium through `chromedriver` with
//! the `thirtyfour` WebDriver client.
//!
//! [`Browser::start`] launches `chromedriver` on a free loopback port (in its
//! own process group, logging to a temporary directory), opens a headless
//! Chromium session with a throwaway profile, and hands back a [`Browser`].
//! Dropping it kills that process group, so no `chromedriver` or `chromium`
//! outlives a test, even one that panicked; [`Browser::quit`] ends the
//! session politely first.
//!
//! thirtyfour is built without its default features (no reqwest, no TLS), so
//! this module supplies its HTTP client: [`HyperClient`], plain HTTP/1.1 over
//! hyper-util's pooled client, which is all a loopback `chromedriver` needs.
//!
//! The helpers (`goto`, `text_of`, `wait_for_text`, `click`, `fill`,
//! `unlabelled_controls`, `screenshot`) panic with the page's title and URL
//! on failure, which is what a test wants; use [`Browser::driver`] directly
//! for anything else.

use crate::require_tool;
use http::header::CONTENT_TYPE;
use http::{HeaderValue, Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::fs::File;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use thirtyfour::extensions::query::ElementPollerWithTimeout;
use thirtyfour::prelude::*;
use thirtyfour::session::http::{Body, HttpClient};

/// How long one WebDriver HTTP request may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the element helpers wait for their element to appear.
pub const ELEMENT_TIMEOUT: Duration = Duration::from_secs(10);
/// How often waits poll.
const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// How long `chromedriver` gets to answer `GET /status` with `ready: true`.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How many ports to try when another process takes the one we picked.
const PORT_ATTEMPTS: usize = 5;

/// `chromedriver`'s log file, in the browser's temporary directory.
const LOG: &str = "chromedriver.log";

const INSTALL: &str = "apt-get install chromium chromium-driver";

/// A thirtyfour [`HttpClient`] over hyper-util's pooled HTTP/1.1 client:
/// plain HTTP, for a `chromedriver` on loopback. Each request (sending it
/// and reading the whole response) is bounded by a timeout.
#[derive(Debug, Clone)]
pub struct HyperClient {
    client: Client<HttpConnector, Full<Bytes>>,
    timeout: Duration,
}

impl HyperClient {
    /// A client whose requests time out after `timeout`.
    pub fn with_timeout(timeout: Duration) -> Self {
        Self {
            client: Client::builder(TokioExecutor::new()).build_http(),
            timeout,
        }
    }
}

#[async_trait::async_trait]
impl HttpClient for HyperClient {
    async fn send(&self, request: Request<Body<'_>>) -> WebDriverResult<Response<Bytes>> {
        let (mut parts, body) = request.into_parts();
        let body = match body {
            Body::Empty => Full::default(),
            Body::Json(value) => {
                let json = serde_json::to_vec(value)
                    .map_err(|e| WebDriverError::Json(format!("serialize request body: {e}")))?;
                parts
                    .headers
                    .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                Full::new(Bytes::from(json))
            }
        };
        let method = parts.method.clone();
        let uri = parts.uri.clone();
        let exchange = async {
            let response = self
                .client
                .request(Request::from_parts(parts, body))
                .await
                .map_err(|e| WebDriverError::RequestFailed(format!("{method} {uri}: {e}")))?;
            let (parts, body) = response.into_parts();
            let bytes = body
                .collect()
                .await
                .map_err(|e| {
                    WebDriverError::RequestFailed(format!("{method} {uri}: reading the body: {e}"))
                })?
                .to_bytes();
            Ok(Response::from_parts(parts, bytes))
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| {
                WebDriverError::Timeout(format!(
                    "{method} {uri}: no response within {:?}",
                    self.timeout
                ))
            })?
    }

    /// A fresh client with its own connection pool: thirtyfour calls this to
    /// end a session from a new runtime when the old one may be gone.
    async fn new(&self) -> Arc<dyn HttpClient> {
        Arc::new(Self::with_timeout(self.timeout))
    }
}

/// A headless Chromium driven through its own `chromedriver`.
#[derive(Debug)]
pub struct Browser {
    /// The WebDriver session, for anything the helpers don't cover.
    pub driver: WebDriver,
    /// `chromedriver`, leader of a process group that also holds the
    /// Chromium it launched.
    chromedriver: Child,
    /// Holds `chromedriver.log` and the Chromium profile; removed on drop.
    dir: tempfile::TempDir,
}

impl Browser {
    /// Starts `chromedriver` and a headless Chromium session, or panics with
    /// what went wrong (including the tail of `chromedriver`'s log).
    pub async fn start() -> Browser {
        require_tool("chromium", INSTALL);
        require_tool("chromedriver", INSTALL);
        let chromium = which("chromium");
        let dir = tempfile::tempdir().expect("temp dir for the browser");
        let log = dir.path().join(LOG);
        let client = HyperClient::with_timeout(REQUEST_TIMEOUT);

        let (mut chromedriver, server) = start_chromedriver(&client, &log).await;

        let mut caps = DesiredCapabilities::chrome();
        let profile = dir.path().join("profile");
        let args = [
            "--headless=new".to_string(),
            "--no-sandbox".to_string(),
            "--disable-gpu".to_string(),
            "--disable-dev-shm-usage".to_string(),
            "--window-size=1280,1000".to_string(),
            format!("--user-data-dir={}", profile.display()),
        ];
        caps.set_binary(&chromium.to_string_lossy())
            .expect("chromium binary capability");
        for arg in &args {
            caps.add_arg(arg).expect("chromium argument capability");
        }
        let connected = WebDriver::builder(server.as_str(), caps)
            .client(client)
            .request_timeout(REQUEST_TIMEOUT)
            .poller(Arc::new(ElementPollerWithTimeout::new(
                ELEMENT_TIMEOUT,
                POLL_INTERVAL,
            )))
            .connect()
            .await;
        match connected {
            Ok(driver) => Browser {
                driver,
                chromedriver,
                dir,
            },
            Err(e) => {
                kill_group(&mut chromedriver);
                panic!(
                    "could not open a Chromium session through chromedriver at {server}: {e}\n\
                     chromedriver log:\n{}",
                    log_tail(&log)
                );
            }
        }
    }

    /// Navigates to `url` and waits for the page to load.
    pub async fn goto(&self, url: &str) {
        if let Err(e) = self.driver.goto(url).await {
            panic!("navigating to {url}: {e} ({})", self.whereabouts().await);
        }
    }

    /// The rendered text of the first element matching `css`, waiting up to
    /// [`ELEMENT_TIMEOUT`] for one to appear.
    pub async fn text_of(&self, css: &str) -> String {
        let element = self.element(css).await;
        match element.text().await {
            Ok(text) => text,
            Err(e) => panic!("text of {css:?}: {e} ({})", self.whereabouts().await),
        }
    }

    /// Polls until the first element matching `css` exists and its text
    /// contains `needle`; after `timeout`, panics with the last text seen and
    /// the page's title and URL.
    pub async fn wait_for_text(&self, css: &str, needle: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let mut last = None;
        loop {
            let found = self.driver.query(By::Css(css)).nowait().first_opt().await;
            if let Ok(Some(element)) = found
                && let Ok(text) = element.text().await
            {
                if text.contains(needle) {
                    return;
                }
                last = Some(text);
            }
            if Instant::now() >= deadline {
                let last = match last {
                    Some(text) => format!("its last text was {text:?}"),
                    None => "no such element was seen".to_string(),
                };
                panic!(
                    "{css:?} did not contain {needle:?} within {timeout:?}: {last} ({})",
                    self.whereabouts().await
                );
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// Clicks the first element matching `css` (waiting for it to appear).
    pub async fn click(&self, css: &str) {
        let element = self.element(css).await;
        if let Err(e) = element.click().await {
            panic!("clicking {css:?}: {e} ({})", self.whereabouts().await);
        }
    }

    /// Replaces the value of the form control matching `css` (waiting for it
    /// to appear): clears it, then types `value`.
    pub async fn fill(&self, css: &str, value: &str) {
        let element = self.element(css).await;
        if let Err(e) = element.clear().await {
            panic!("clearing {css:?}: {e} ({})", self.whereabouts().await);
        }
        if let Err(e) = element.send_keys(value).await {
            panic!("typing into {css:?}: {e} ({})", self.whereabouts().await);
        }
    }

    /// Describes every form control on the page without an accessible name,
    /// e.g. `input#port[name="port"][type="number"]`:
    ///
    /// - `input` (except `type=hidden`), `select`, `textarea`: no associated
    ///   `<label>` (`control.labels`), no `aria-label`, no `aria-labelledby`.
    ///   `input` of type `submit`/`reset` (default captions), `button` (its
    ///   `value`) and `image` (its `alt`) are named like buttons.
    /// - `button`: no text and no `aria-label`/`aria-labelledby`.
    ///
    /// An empty list means every control is labelled.
    pub async fn unlabelled_controls(&self) -> Vec<String> {
        const SCRIPT: &str = r#"
            const filled = (el, attr) => (el.getAttribute(attr) || '').trim() !== '';
            const aria = el => filled(el, 'aria-label') || filled(el, 'aria-labelledby');
            const describe = el => {
                let d = el.tagName.toLowerCase();
                if (el.id) d += '#' + el.id;
                for (const attr of ['name', 'type']) {
                    if (el.hasAttribute(attr)) d += `[${attr}="${el.getAttribute(attr)}"]`;
                }
                if (!el.id && !el.hasAttribute('name')) d += ' ' + el.outerHTML.slice(0, 120);
                return d;
            };
            const named = el => {
                if (aria(el)) return true;
                if (el.tagName === 'BUTTON') return el.textContent.trim() !== '';
                if (el.tagName === 'INPUT') {
                    const type = el.type;
                    if (type === 'submit' || type === 'reset') return true;
                    if (type === 'button') return filled(el, 'value');
                    if (type === 'image') return filled(el, 'alt');
                }
                return el.labels !== null && el.labels.length > 0;
            };
            return Array.from(document.querySelectorAll('input, select, textarea, button'))
                .filter(el => !(el.tagName === 'INPUT' && el.type === 'hidden'))
                .filter(el => !named(el))
                .map(describe);
        "#;
        let result = match self.driver.execute(SCRIPT, Vec::new()).await {
            Ok(result) => result,
            Err(e) => panic!(
                "finding unlabelled controls: {e} ({})",
                self.whereabouts().await
            ),
        };
        result
            .convert()
            .expect("the unlabelled-controls script returns a list of strings")
    }

    /// Saves a PNG of the viewport to
    /// `<target dir>/console-screenshots/<name>.png` and returns its path.
    /// The target dir is `$CARGO_TARGET_DIR` (relative to the workspace root
    /// if relative) or the workspace's `target/`.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let path = screenshot_dir().join(format!("{name}.png"));
        let dir = path.parent().expect("a screenshot path has a parent");
        tokio::fs::create_dir_all(dir)
            .await
            .unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        let png = match self.driver.screenshot_as_png().await {
            Ok(png) => png,
            Err(e) => panic!("screenshot {name}: {e} ({})", self.whereabouts().await),
        };
        tokio::fs::write(&path, png)
            .await
            .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        path
    }

    /// Ends the session (Chromium exits), then kills `chromedriver`.
    pub async fn quit(self) {
        if let Err(e) = self.driver.clone().quit().await {
            panic!(
                "ending the browser session: {e}\nchromedriver log:\n{}",
                log_tail(&self.dir.path().join(LOG))
            );
        }
    }

    /// The first element matching `css`, waiting up to [`ELEMENT_TIMEOUT`].
    async fn element(&self, css: &str) -> WebElement {
        let found = self
            .driver
            .query(By::Css(css))
            .wait(ELEMENT_TIMEOUT, POLL_INTERVAL)
            .first()
            .await;
        match found {
            Ok(element) => element,
            Err(e) => panic!(
                "no element matches {css:?} after {ELEMENT_TIMEOUT:?}: {e} ({})",
                self.whereabouts().await
            ),
        }
    }

    /// "page "<title>" at <url>", for failure messages.
    async fn whereabouts(&self) -> String {
        let title = match self.driver.title().await {
            Ok(title) => format!("{title:?}"),
            Err(e) => format!("<no title: {e}>"),
        };
        let url = match self.driver.current_url().await {
            Ok(url) => url.to_string(),
            Err(e) => format!("<no URL: {e}>"),
        };
        format!("page {title} at {url}")
    }
}

impl Drop for Browser {
    /// Kills `chromedriver` and the Chromium it started, without waiting on
    /// either of them over HTTP.
    fn drop(&mut self) {
        // The whole browser dies below, so tell thirtyfour not to end the
        // session over HTTP from its own Drop (a blocking call). After
        // `quit` this is a no-op.
        let _ = self.driver.clone().leak();
        kill_group(&mut self.chromedriver);
        if std::thread::panicking() {
            eprintln!(
                "chromedriver log:\n{}",
                log_tail(&self.dir.path().join(LOG))
            );
        }
    }
}

/// Starts `chromedriver` on a free loopback port and waits until it is
/// ready; returns it and its URL. Retries with another port if the chosen one
/// was taken in the meantime (`chromedriver` then exits).
async fn start_chromedriver(client: &HyperClient, log: &Path) -> (Child, String) {
    let mut failures = Vec::new();
    for _ in 0..PORT_ATTEMPTS {
        let port = free_port();
        let out = File::create(log).expect("create the chromedriver log");
        let err = out.try_clone().expect("clone the chromedriver log handle");
        let mut child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            // Its own process group, which Chromium joins: one kill ends both.
            .process_group(0)
            .spawn()
            .expect("spawn chromedriver");
        let server = format!("http://127.0.0.1:{port}");
        match wait_ready(client, &server, &mut child).await {
            Ok(()) => return (child, server),
            Err(why) => {
                kill_group(&mut child);
                failures.push(format!("port {port}: {why}\n{}", log_tail(log)));
            }
        }
    }
    panic!(
        "chromedriver did not start after {PORT_ATTEMPTS} attempts:\n{}",
        failures.join("\n")
    );
}

/// Polls `GET /status` until `chromedriver` says it is ready, it exits, or
/// [`READY_TIMEOUT`] passes.
async fn wait_ready(client: &HyperClient, server: &str, child: &mut Child) -> Result<(), String> {
    let deadline = Instant::now() + READY_TIMEOUT;
    let url = format!("{server}/status");
    loop {
        if let Some(status) = child.try_wait().map_err(|e| format!("waiting: {e}"))? {
            return Err(format!("chromedriver exited ({status})"));
        }
        let request = Request::get(url.as_str())
            .body(Body::Empty)
            .expect("a GET /status request");
        let last = match client.send(request).await {
            Ok(response) => {
                let ready = serde_json::from_slice::<serde_json::Value>(response.body())
                    .ok()
                    .and_then(|v| v["value"]["ready"].as_bool());
                if ready == Some(true) {
                    return Ok(());
                }
                format!(
                    "{}: {}",
                    response.status(),
                    String::from_utf8_lossy(response.body())
                )
            }
            Err(e) => e.to_string(),
        };
        if Instant::now() >= deadline {
            return Err(format!("not ready after {READY_TIMEOUT:?}: {last}"));
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// A loopback port that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a free loopback port")
        .port()
}

/// SIGKILLs the process group led by `child` and reaps `child`.
fn kill_group(child: &mut Child) {
    if let Ok(pid) = i32::try_from(child.id()) {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// The absolute path of `tool` on `PATH`.
fn which(tool: &str) -> PathBuf {
    let out = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .unwrap_or_else(|e| panic!("look up {tool}: {e}"));
    let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        out.status.success() && !path.is_empty(),
        "{tool} is not on PATH: {INSTALL}"
    );
    PathBuf::from(path)
}

/// The last lines of `chromedriver`'s log.
fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_else(|e| format!("<{e}>"));
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// `<target dir>/console-screenshots`.
fn screenshot_dir() -> PathBuf {
    let root = crate::workspace_root();
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => root.join(dir),
        _ => root.join("target"),
    };
    target.join("console-screenshots")
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Berth browser self-test</title></head>
<body>
  <h1>Hello from Berth</h1>
  <form onsubmit="event.preventDefault();
      document.getElementById('echo').textContent =
        'Hello, ' + document.getElementById('name').value;">
    <label for="name">Name</label> <input id="name" name="name" type="text">
    <input type="hidden" name="csrf" value="x">
    <input id="mystery" name="mystery" type="text">
    <button type="submit">Greet</button>
  </form>
  <p id="echo"></p>
</body>
</html>
"#;

    /// Serves [`PAGE`] at `/` (and 404 elsewhere) on a loopback port.
    async fn serve_page() -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the page server");
        let addr = listener.local_addr().expect("page server address");
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    }
                    let (status, body) = if request.starts_with(b"GET / ") {
                        ("200 OK", PAGE)
                    } else {
                        ("404 Not Found", "not found")
                    };
                    let response = format!(
                        "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\n\
                         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = stream.write_all(response.as_bytes()).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        format!("http://{addr}/")
    }

    /// Processes whose command line mentions `needle`.
    fn processes_mentioning(needle: &str) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        entries
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
            .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
            .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
            .filter(|c| c.contains(needle))
            .collect()
    }

    #[tokio::test]
    async fn drives_a_real_chromium() {
        let url = serve_page().await;
        let browser = Browser::start().await;
        let profile = browser.dir.path().join("profile");
        let profile = profile.to_string_lossy().into_owned();
        assert!(
            !processes_mentioning(&profile).is_empty(),
            "chromium runs with the temporary profile"
        );

        browser.goto(&url).await;
        assert_eq!(browser.text_of("h1").await, "Hello from Berth");
        browser.fill("#name", "Grace").await;
        browser.fill("#name", "Ada").await;
        browser.click("button").await;
        browser
            .wait_for_text("#echo", "Hello, Ada", Duration::from_secs(5))
            .await;
        assert_eq!(browser.text_of("#echo").await, "Hello, Ada");

        assert_eq!(
            browser.unlabelled_controls().await,
            vec![r#"input#mystery[name="mystery"][type="text"]"#.to_string()]
        );

        let shot = browser.screenshot("browser-self-test").await;
        let png = std::fs::read(&shot).expect("read the screenshot");
        assert!(
            png.starts_with(b"\x89PNG\r\n\x1a\n"),
            "{} is a PNG",
            shot.display()
        );

        browser.quit().await;
        assert_gone(&profile).await;
    }

    /// What a panicking test does: drop the browser without quitting.
    #[tokio::test]
    async fn dropping_kills_chromium() {
        let browser = Browser::start().await;
        let profile = browser.dir.path().join("profile");
        let profile = profile.to_string_lossy().into_owned();
        assert!(!processes_mentioning(&profile).is_empty());
        drop(browser);
        assert_gone(&profile).await;
    }

    /// Waits a little for every process using `profile` to be gone.
    async fn assert_gone(profile: &str) {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let left = processes_mentioning(profile);
            if left.is_empty() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "processes outlived the browser: {left:#?}"
            );
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }
}
