//! The web console, under `/console/` on the ECS API's HTTP listener.
//!
//! HTML rendered on the server ([askama] templates in
//! `control-plane/templates/console/`), one stylesheet and one small script
//! compiled into the binary. Every page reads the cluster through the same
//! use cases as the ECS API (so it shows what DescribeTasks would say, and
//! its forms get the API's validation and error messages). Pages work
//! without JavaScript; with it, each page's live region (`#live`) is
//! re-rendered by the server and pushed over server-sent events
//! (`/console/live`) whenever the cluster changes.
//!
//! - [`sessions`]: sign-in with a key from the credentials file, the
//!   session cookie, CSRF tokens. Without a credentials file (loopback
//!   development) there is no sign-in, as for the API.
//! - [`views`]: every page (`GET`), as a pure function of the state.
//! - [`actions`]: every form (`POST`), each one ECS action.

mod actions;
mod diff;
#[cfg(test)]
mod page_tests;
pub mod sessions;
mod views;

use crate::app::ControlPlane;
use crate::auth::{Keys, Shared};
use axum::body::Body;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{HeaderMap, HeaderValue, StatusCode, Uri};
use sessions::{Flash, Session, Sessions};
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Largest form accepted (a task definition's JSON is the biggest).
const MAX_FORM_BYTES: usize = crate::api::ecs_json::MAX_BODY_BYTES + 64 * 1024;

/// How long a failed sign-in waits before answering (slows guessing).
const SIGN_IN_PENALTY: Duration = Duration::from_millis(400);

/// How often a live view re-renders even without a change (clocks such as
/// "connected 5 min ago" move).
const LIVE_REFRESH: Duration = Duration::from_secs(10);

/// Changes closer together than this are sent as one update.
const LIVE_COALESCE: Duration = Duration::from_millis(100);

/// What every console handler needs.
#[derive(Debug)]
pub struct Console {
    app: Arc<ControlPlane>,
    keys: Option<Arc<Shared<Keys>>>,
    sessions: Sessions,
    stop: watch::Receiver<bool>,
}

/// The console's routes; `stop` ends its live streams at shutdown (the
/// server waits for open connections to finish).
pub fn router(
    app: Arc<ControlPlane>,
    keys: Option<Arc<Shared<Keys>>>,
    stop: watch::Receiver<bool>,
) -> axum::Router {
    let console = Arc::new(Console {
        app,
        keys,
        sessions: Sessions::default(),
        stop,
    });
    axum::Router::new()
        .route(
            "/console",
            get(|| async { redirect("/console/clusters") }).post(not_found),
        )
        .route("/console/static/console.css", get(stylesheet))
        .route("/console/static/console.js", get(script))
        .route("/console/sign-in", get(sign_in_page).post(sign_in))
        .route("/console/sign-out", axum::routing::post(sign_out))
        .route("/console/live", get(live))
        .route("/console/", get(page).post(action))
        .route("/console/{*rest}", get(page).post(action))
        .with_state(console)
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "Not found").into_response()
}

async fn stylesheet() -> Response {
    asset("text/css; charset=utf-8", include_str!("console.css"))
}

async fn script() -> Response {
    asset("text/javascript; charset=utf-8", include_str!("console.js"))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut r = Response::new(Body::from(body));
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(content_type),
    );
    r.headers_mut().insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    r
}

/// A `303 See Other` to `to`.
fn redirect(to: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(http::header::LOCATION, v);
    }
    r
}

/// Whether the browser reached us over TLS (through a proxy that says so).
fn over_tls(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

/// Who is asking.
enum Visitor {
    /// A live session.
    Known(Session),
    /// No session, and none needed (no credentials file): one was opened,
    /// and its cookie must be set on the answer.
    New(Session),
    /// Must sign in first.
    Stranger,
}

impl Console {
    fn keys(&self) -> Option<Arc<Keys>> {
        self.keys.as_ref().map(|k| k.get())
    }

    fn visitor(&self, headers: &HeaderMap) -> Visitor {
        let keys = self.keys();
        if let Some(s) = sessions::token_from(headers)
            .and_then(|token| self.sessions.find(&token, keys.as_deref()))
        {
            return Visitor::Known(s);
        }
        match keys {
            None => Visitor::New(self.sessions.open(None)),
            Some(_) => Visitor::Stranger,
        }
    }
}

/// Adds the headers every console page carries.
fn finish(mut response: Response, new_session: Option<&Session>, tls: bool) -> Response {
    let h = response.headers_mut();
    h.insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert(
        "content-security-policy",
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'",
        ),
    );
    h.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    if let Some(s) = new_session
        && let Ok(v) = HeaderValue::from_str(&sessions::set_cookie(&s.token, tls))
    {
        h.append(http::header::SET_COOKIE, v);
    }
    response
}

fn html(status: StatusCode, body: String, started: Instant) -> Response {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!(
        "app;dur={:.2}",
        started.elapsed().as_secs_f64() * 1000.0
    )) {
        r.headers_mut().insert("server-timing", v);
    }
    r
}

/// The path below `/console/` split into percent-decoded segments.
fn segments(path: &str) -> Vec<String> {
    path.trim_start_matches("/console")
        .split('/')
        .filter(|s| !s.is_empty())
        .map(crate::auth::sigv4::percent_decode)
        .collect()
}

fn query_of(uri: &Uri) -> HashMap<String, String> {
    axum::extract::Query::<HashMap<String, String>>::try_from_uri(uri)
        .map(|q| q.0)
        .unwrap_or_default()
}

/// The page at `uri` for `session`, as a full HTML document.
fn render_page(console: &Console, session: &Session, uri: &Uri, started: Instant) -> Response {
    let query = query_of(uri);
    let segs = segments(uri.path());
    let flash = console.sessions.take_flash(&session.token);
    let ctx = views::Ctx {
        app: &console.app,
        session,
    };
    let (status, page) = match views::view(&ctx, &segs, &query) {
        Ok(page) => (StatusCode::OK, page),
        Err(e) => (e.status(), e.page()),
    };
    let path_and_query = uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| uri.path().to_owned());
    html(
        status,
        views::layout(&ctx, page, flash, &path_and_query),
        started,
    )
}

async fn page(State(console): State<Arc<Console>>, headers: HeaderMap, uri: Uri) -> Response {
    let started = Instant::now();
    let tls = over_tls(&headers);
    let (session, new) = match console.visitor(&headers) {
        Visitor::Known(s) => (s, false),
        Visitor::New(s) => (s, true),
        Visitor::Stranger => {
            let next = uri
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/console/");
            return finish(
                redirect(&format!(
                    "/console/sign-in?next={}",
                    views::url_encode(next)
                )),
                None,
                tls,
            );
        }
    };
    let response = render_page(&console, &session, &uri, started);
    finish(response, new.then_some(&session), tls)
}

/// Where a sign-in may send the browser next: a console path only.
fn safe_next(next: Option<&String>) -> String {
    match next {
        Some(n) if n.starts_with("/console/") && !n.starts_with("//") && !n.contains('\\') => {
            n.clone()
        }
        _ => "/console/clusters".to_owned(),
    }
}

async fn sign_in_page(
    State(console): State<Arc<Console>>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let started = Instant::now();
    let tls = over_tls(&headers);
    let query = query_of(&uri);
    let next = safe_next(query.get("next"));
    if console.keys.is_none() || matches!(console.visitor(&headers), Visitor::Known(_)) {
        return finish(redirect(&next), None, tls);
    }
    finish(
        html(StatusCode::OK, views::sign_in(&next, "", None), started),
        None,
        tls,
    )
}

async fn sign_in(State(console): State<Arc<Console>>, headers: HeaderMap, body: Body) -> Response {
    let started = Instant::now();
    let tls = over_tls(&headers);
    let form = match read_form(body).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let next = safe_next(form.get("next"));
    let Some(keys) = console.keys() else {
        return finish(redirect(&next), None, tls);
    };
    if !same_origin(&headers) {
        return finish(forbidden(), None, tls);
    }
    let id = form.get("access_key_id").map(|s| s.trim()).unwrap_or("");
    let secret = form
        .get("secret_access_key")
        .map(String::as_str)
        .unwrap_or("");
    match sessions::check_key(&keys, id, secret) {
        Ok(()) => {
            tracing::info!(access_key_id = %id, "console sign-in");
            let session = console.sessions.open(Some(id.to_owned()));
            finish(redirect(&next), Some(&session), tls)
        }
        Err(why) => {
            tracing::warn!(access_key_id = %id, "console sign-in refused");
            tokio::time::sleep(SIGN_IN_PENALTY).await;
            finish(
                html(
                    StatusCode::UNAUTHORIZED,
                    views::sign_in(&next, id, Some(why)),
                    started,
                ),
                None,
                tls,
            )
        }
    }
}

async fn sign_out(State(console): State<Arc<Console>>, headers: HeaderMap, body: Body) -> Response {
    let tls = over_tls(&headers);
    let form = match read_form(body).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    if let Visitor::Known(s) = console.visitor(&headers) {
        if !csrf_ok(&s, &form) || !same_origin(&headers) {
            return finish(forbidden(), None, tls);
        }
        console.sessions.close(&s.token);
    }
    let mut r = redirect(if console.keys.is_some() {
        "/console/sign-in"
    } else {
        "/console/clusters"
    });
    if let Ok(v) = HeaderValue::from_str(&sessions::clear_cookie(tls)) {
        r.headers_mut().insert(http::header::SET_COOKIE, v);
    }
    finish(r, None, tls)
}

fn forbidden() -> Response {
    let mut r = Response::new(Body::from(
        "This form has expired or came from another site. Go back, reload the page and try again.",
    ));
    *r.status_mut() = StatusCode::FORBIDDEN;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// A form body as name -> value (the last of repeated names wins).
async fn read_form(body: Body) -> Result<HashMap<String, String>, Response> {
    let bytes = axum::body::to_bytes(body, MAX_FORM_BYTES)
        .await
        .map_err(|_| {
            (
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("The form is larger than {MAX_FORM_BYTES} bytes."),
            )
                .into_response()
        })?;
    Ok(form_urlencoded::parse(&bytes).into_owned().collect())
}

fn csrf_ok(session: &Session, form: &HashMap<String, String>) -> bool {
    form.get("csrf")
        .is_some_and(|t| sessions::same_secret(t, &session.csrf))
}

/// A form must come from a page of ours: when the browser names the
/// origin, it must be this host.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers
        .get(http::header::ORIGIN)
        .and_then(|v| v.to_str().ok())
    else {
        return true;
    };
    let host = headers
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    origin
        .split_once("://")
        .is_some_and(|(_, rest)| rest == host)
}

async fn action(
    State(console): State<Arc<Console>>,
    headers: HeaderMap,
    uri: Uri,
    body: Body,
) -> Response {
    let started = Instant::now();
    let tls = over_tls(&headers);
    let form = match read_form(body).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let session = match console.visitor(&headers) {
        Visitor::Known(s) => s,
        // A form needs the session (and its CSRF token) that served it.
        Visitor::New(_) | Visitor::Stranger => return finish(forbidden(), None, tls),
    };
    if !csrf_ok(&session, &form) || !same_origin(&headers) {
        return finish(forbidden(), None, tls);
    }
    let segs = segments(uri.path());
    let ctx = views::Ctx {
        app: &console.app,
        session: &session,
    };
    let response = match actions::act(&ctx, &segs, &form).await {
        actions::Outcome::Done { to, message } => {
            console.sessions.set_flash(
                &session.token,
                Flash {
                    error: false,
                    message,
                },
            );
            redirect(&to)
        }
        actions::Outcome::Failed { to, message } => {
            console.sessions.set_flash(
                &session.token,
                Flash {
                    error: true,
                    message,
                },
            );
            redirect(&to)
        }
        actions::Outcome::Page { status, page } => {
            html(status, views::layout(&ctx, page, None, uri.path()), started)
        }
    };
    finish(response, None, tls)
}

/// `GET /console/live?path=<a console page>`: an event stream that sends
/// the page's live region each time it changes.
async fn live(State(console): State<Arc<Console>>, headers: HeaderMap, uri: Uri) -> Response {
    let tls = over_tls(&headers);
    let session = match console.visitor(&headers) {
        Visitor::Known(s) => s,
        Visitor::New(_) | Visitor::Stranger => {
            return finish(
                (StatusCode::UNAUTHORIZED, "Sign in first.").into_response(),
                None,
                tls,
            );
        }
    };
    let query = query_of(&uri);
    let Some(target) = query
        .get("path")
        .filter(|p| p.starts_with("/console/"))
        .and_then(|p| p.parse::<Uri>().ok())
    else {
        return (StatusCode::BAD_REQUEST, "path must name a console page").into_response();
    };
    struct Watch {
        console: Arc<Console>,
        session: Session,
        target: Uri,
        changes: watch::Receiver<u64>,
        stop: watch::Receiver<bool>,
        last: Option<String>,
    }
    let changes = console.app.watch_changes();
    let stop = console.stop.clone();
    let first = Watch {
        console,
        session,
        target,
        changes,
        stop,
        last: None,
    };
    let stream = futures_util::stream::unfold(Some(first), |w| async move {
        let mut w = w?;
        loop {
            if *w.stop.borrow() {
                return None;
            }
            if w.last.is_some() {
                tokio::select! {
                    changed = w.changes.changed() => {
                        if changed.is_err() {
                            return None;
                        }
                        tokio::time::sleep(LIVE_COALESCE).await;
                    }
                    _ = tokio::time::sleep(LIVE_REFRESH) => {}
                    _ = w.stop.changed() => return None,
                }
            }
            w.changes.borrow_and_update();
            let keys = w.console.keys();
            if w.console
                .sessions
                .find(&w.session.token, keys.as_deref())
                .is_none()
            {
                let event = Event::default().event("signed-out").data("signed out");
                return Some((Ok::<_, Infallible>(event), None));
            }
            let ctx = views::Ctx {
                app: &w.console.app,
                session: &w.session,
            };
            let segs = segments(w.target.path());
            let html = match views::view(&ctx, &segs, &query_of(&w.target)) {
                Ok(page) => page.live,
                Err(e) => e.page().live,
            };
            // The first render is always sent: the cluster may have moved
            // between the page's render and this stream's start, and no
            // later change need come to correct it.
            if w.last.as_deref() != Some(html.as_str()) {
                w.last = Some(html.clone());
                let event = Event::default().event("live").data(html);
                return Some((Ok(event), Some(w)));
            }
        }
    });
    let mut r = Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response();
    r.headers_mut().insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_into_decoded_segments() {
        assert_eq!(segments("/console/"), Vec::<String>::new());
        assert_eq!(
            segments("/console/clusters/my%2Dcluster/tasks"),
            vec!["clusters", "my-cluster", "tasks"]
        );
        assert_eq!(segments("/console/a%zz%4"), vec!["a%zz%4"]);
    }

    #[test]
    fn sign_in_sends_only_to_console_pages() {
        assert_eq!(
            safe_next(Some(&"/console/x?y=1".to_owned())),
            "/console/x?y=1"
        );
        for bad in [
            "https://evil.example/",
            "//evil.example/",
            "/metrics",
            "/console\\x",
        ] {
            assert_eq!(
                safe_next(Some(&bad.to_owned())),
                "/console/clusters",
                "{bad}"
            );
        }
        assert_eq!(safe_next(None), "/console/clusters");
    }

    #[test]
    fn forms_from_other_sites_are_refused() {
        let mut h = HeaderMap::new();
        h.insert(
            http::header::HOST,
            HeaderValue::from_static("127.0.0.1:8080"),
        );
        assert!(same_origin(&h), "no Origin header: a same-origin form post");
        h.insert(
            http::header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:8080"),
        );
        assert!(same_origin(&h));
        h.insert(
            http::header::ORIGIN,
            HeaderValue::from_static("http://evil.example"),
        );
        assert!(!same_origin(&h));
    }
}
