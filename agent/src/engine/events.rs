//! Docker events for this agent's containers, routed to the task engine that
//! owns each container. One stream per agent, filtered by the instance label.
//! When the stream breaks (Docker restarted, socket lost) it reconnects with
//! backoff, replays events since the last one seen, and asks every engine to
//! re-inspect its containers, so nothing depends on seeing every event.

use super::Context;
use futures_util::StreamExt;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// What Docker reported about a container, or a request to re-inspect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerEvent {
    /// The container started.
    Started,
    /// The container's process exited.
    Died,
    /// The kernel OOM killer hit the container.
    Oom,
    /// The container was removed.
    Destroyed,
    /// Events may have been missed: inspect again.
    Resync,
    /// Docker's health check changed its verdict.
    Health,
}

impl ContainerEvent {
    fn from_action(action: &str) -> Option<Self> {
        match action {
            "start" => Some(ContainerEvent::Started),
            "die" => Some(ContainerEvent::Died),
            "oom" => Some(ContainerEvent::Oom),
            "destroy" => Some(ContainerEvent::Destroyed),
            a if a.starts_with("health_status") => Some(ContainerEvent::Health),
            _ => None,
        }
    }
}

/// Where an engine receives events: (container id, event).
pub type EventSender = mpsc::UnboundedSender<(String, ContainerEvent)>;

/// Container id -> owning engine.
#[derive(Debug, Default)]
pub struct Routes {
    routes: Mutex<HashMap<String, EventSender>>,
}

impl Routes {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, EventSender>> {
        self.routes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Routes `container_id`'s events to `tx`.
    pub fn insert(&self, container_id: &str, tx: EventSender) {
        self.lock().insert(container_id.to_owned(), tx);
    }

    /// Stops routing `container_id`.
    pub fn remove(&self, container_id: &str) {
        self.lock().remove(container_id);
    }

    fn send(&self, container_id: &str, event: ContainerEvent) {
        if let Some(tx) = self.lock().get(container_id) {
            let _ = tx.send((container_id.to_owned(), event));
        }
    }

    /// Asks every engine to re-inspect its containers.
    pub fn resync_all(&self) {
        for (id, tx) in self.lock().iter() {
            let _ = tx.send((id.clone(), ContainerEvent::Resync));
        }
    }
}

/// Follows Docker's event stream forever. The first subscription replays
/// from `start` (unix seconds, taken before any engine touched Docker), so
/// events that happen while the subscription is being set up are not lost.
pub async fn run(ctx: Arc<Context>, start: i64) {
    let mut since: Option<i64> = Some(start);
    let mut backoff = Duration::from_millis(500);
    loop {
        let mut stream = Box::pin(ctx.runtime.events(&ctx.instance_arn, since));
        let mut connected_once = false;
        while let Some(item) = stream.next().await {
            match item {
                Ok(event) => {
                    if !connected_once {
                        connected_once = true;
                        backoff = Duration::from_millis(500);
                    }
                    if let Some(t) = event.time {
                        since = Some(t);
                    }
                    let action = event.action.as_deref().unwrap_or_default();
                    let id = event
                        .actor
                        .as_ref()
                        .and_then(|a| a.id.as_deref())
                        .unwrap_or_default();
                    if let Some(e) = ContainerEvent::from_action(action) {
                        tracing::debug!(container = id, action, "docker event");
                        ctx.routes.send(id, e);
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "Docker event stream failed");
                    break;
                }
            }
        }
        tracing::warn!(retry_in = ?backoff, "Docker event stream ended; reconnecting");
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(30));
        ctx.routes.resync_all();
    }
}
