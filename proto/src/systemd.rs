//! The systemd notification protocol (`sd_notify`), spoken directly: a
//! datagram to the socket named by `NOTIFY_SOCKET` (a path, or `@name` for
//! the abstract namespace). Both binaries use it: `READY=1` once serving,
//! `STATUS=...` for `systemctl status`, `WATCHDOG=1` while their loops turn
//! (`WatchdogSec=` in the unit), `STOPPING=1` on shutdown. Outside systemd
//! (`NOTIFY_SOCKET` unset) every call does nothing.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

/// A connection to systemd's notification socket, if the process has one.
#[derive(Debug)]
pub struct Notifier {
    socket: Option<(UnixDatagram, String)>,
    watchdog: Option<Duration>,
}

impl Notifier {
    /// From `NOTIFY_SOCKET` and `WATCHDOG_USEC` (honoured only when
    /// `WATCHDOG_PID` is unset or this process's pid).
    pub fn from_env() -> Self {
        let socket = std::env::var("NOTIFY_SOCKET")
            .ok()
            .filter(|s| !s.is_empty())
            .and_then(|addr| UnixDatagram::unbound().ok().map(|s| (s, addr)));
        let ours = std::env::var("WATCHDOG_PID")
            .ok()
            .is_none_or(|p| p.trim() == std::process::id().to_string());
        let watchdog = std::env::var("WATCHDOG_USEC")
            .ok()
            .and_then(|u| u.trim().parse::<u64>().ok())
            .filter(|u| *u > 0 && ours)
            .map(Duration::from_micros);
        Notifier { socket, watchdog }
    }

    /// Whether systemd listens.
    pub fn enabled(&self) -> bool {
        self.socket.is_some()
    }

    /// How often to send `WATCHDOG=1`: half the unit's `WatchdogSec=`.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog.filter(|_| self.enabled()).map(|w| w / 2)
    }

    /// Sends one notification (newline-separated assignments). Errors are
    /// ignored: systemd going away must not take the service with it.
    pub fn notify(&self, message: &str) {
        let Some((socket, addr)) = &self.socket else {
            return;
        };
        let sent = if let Some(name) = addr.strip_prefix('@') {
            use std::os::linux::net::SocketAddrExt;
            std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
                .and_then(|a| socket.send_to_addr(message.as_bytes(), &a))
        } else {
            socket.send_to(message.as_bytes(), addr)
        };
        let _ = sent;
    }

    /// `READY=1` with a status line.
    pub fn ready(&self, status: &str) {
        self.notify(&format!("READY=1\nSTATUS={status}"));
    }

    /// `STATUS=...`.
    pub fn status(&self, status: &str) {
        self.notify(&format!("STATUS={status}"));
    }

    /// `WATCHDOG=1`.
    pub fn watchdog(&self) {
        self.notify("WATCHDOG=1");
    }

    /// `STOPPING=1`.
    pub fn stopping(&self) {
        self.notify("STOPPING=1\nSTATUS=stopping");
    }
}

/// Whether a loop that last turned at `last_turn_ms` (unix ms) still
/// counts as turning at `now_ms`: the watchdog pings only while it does.
pub fn turning(last_turn_ms: i64, now_ms: i64, allowed: Duration) -> bool {
    now_ms - last_turn_ms <= allowed.as_millis() as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notifications_reach_a_datagram_socket_standing_in_for_systemd() {
        let dir = std::env::temp_dir().join(format!("berth-notify-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("notify.sock");
        let _ = std::fs::remove_file(&path);
        let systemd = UnixDatagram::bind(&path).expect("bind");
        systemd
            .set_read_timeout(Some(Duration::from_secs(2)))
            .expect("timeout");
        let n = Notifier {
            socket: Some((
                UnixDatagram::unbound().expect("socket"),
                path.display().to_string(),
            )),
            watchdog: Some(Duration::from_secs(10)),
        };
        assert_eq!(n.watchdog_interval(), Some(Duration::from_secs(5)));
        n.ready("serving");
        n.watchdog();
        n.stopping();
        let mut buf = [0u8; 256];
        let mut got = Vec::new();
        for _ in 0..3 {
            let len = systemd.recv(&mut buf).expect("a datagram");
            got.push(String::from_utf8_lossy(&buf[..len]).into_owned());
        }
        assert_eq!(
            got,
            [
                "READY=1\nSTATUS=serving",
                "WATCHDOG=1",
                "STOPPING=1\nSTATUS=stopping"
            ]
        );
        let _ = std::fs::remove_dir_all(&dir);
        // Outside systemd nothing happens.
        let off = Notifier {
            socket: None,
            watchdog: Some(Duration::from_secs(10)),
        };
        off.ready("x");
        assert_eq!(off.watchdog_interval(), None);
    }

    #[test]
    fn a_stalled_loop_stops_the_pings() {
        assert!(turning(1_000, 5_000, Duration::from_secs(10)));
        assert!(!turning(1_000, 12_000, Duration::from_secs(10)));
    }
}
