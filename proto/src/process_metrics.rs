//! What both binaries export besides their own metrics: the standard
//! `process_*` facts (read from /proc at each scrape) and
//! `berth_build_info{version}`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64};

/// `version`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Version {
    version: String,
}

/// The process metrics, registered in a binary's registry.
#[derive(Debug)]
pub struct ProcessMetrics {
    rss: Gauge,
    fds: Gauge,
    cpu: Counter<f64, AtomicU64>,
    cpu_seen: Mutex<f64>,
}

impl ProcessMetrics {
    /// Registers `process_*` and `berth_build_info` (with `version`) in
    /// `registry`.
    pub fn register(registry: &mut Registry, version: &str) -> Self {
        let build = Family::<Version, Gauge>::default();
        build
            .get_or_create(&Version {
                version: version.to_owned(),
            })
            .set(1);
        registry.register(
            "berth_build_info",
            "Always 1; the version is a label",
            build,
        );
        let start = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds",
            start.clone(),
        );
        let rss = Gauge::default();
        registry.register(
            "process_resident_memory_bytes",
            "Resident memory size in bytes",
            rss.clone(),
        );
        let fds = Gauge::default();
        registry.register(
            "process_open_fds",
            "Number of open file descriptors",
            fds.clone(),
        );
        let cpu = Counter::<f64, AtomicU64>::default();
        registry.register(
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds",
            cpu.clone(),
        );
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or_default();
        start.set(now);
        ProcessMetrics {
            rss,
            fds,
            cpu,
            cpu_seen: Mutex::new(0.0),
        }
    }

    /// Reads /proc into the gauges; call before encoding.
    pub fn refresh(&self) {
        if let Some(rss) = resident_bytes() {
            self.rss.set(rss as i64);
        }
        if let Some(fds) = open_fds() {
            self.fds.set(fds as i64);
        }
        if let Some(cpu) = cpu_seconds() {
            let mut seen = self.cpu_seen.lock().unwrap_or_else(|p| p.into_inner());
            if cpu > *seen {
                self.cpu.inc_by(cpu - *seen);
                *seen = cpu;
            }
        }
    }
}

/// The process's resident set, bytes.
pub fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

fn open_fds() -> Option<usize> {
    Some(std::fs::read_dir("/proc/self/fd").ok()?.count())
}

fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command (which may hold spaces) close with ')'.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    let ticks = 100.0; // USER_HZ on Linux
    Some((utime + stime) / ticks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_has_the_process_facts_and_the_version() {
        let mut registry = Registry::default();
        let p = ProcessMetrics::register(&mut registry, "1.2.3");
        p.refresh();
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &registry).expect("encode");
        assert!(
            out.contains("berth_build_info{version=\"1.2.3\"} 1"),
            "{out}"
        );
        let rss = out
            .lines()
            .find_map(|l| l.strip_prefix("process_resident_memory_bytes "))
            .expect("rss line");
        assert!(rss.parse::<u64>().expect("a number") > 0, "{out}");
        assert!(out.contains("process_cpu_seconds_total "), "{out}");
    }
}
