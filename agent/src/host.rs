//! Facts about this host, through nix: CPUs, memory, OS, architecture, name.

/// What the agent advertises about the host by default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostFacts {
    /// CPUs available to this process x 1024 (ECS CPU units).
    pub cpu_units: i64,
    /// Total memory in MiB.
    pub memory_mib: i64,
    /// `x86_64` or `arm64` (ECS spelling), else what `uname -m` says.
    pub cpu_architecture: String,
    /// The host name.
    pub hostname: String,
}

/// Reads the host's facts.
pub fn detect() -> HostFacts {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let memory_mib = nix::sys::sysinfo::sysinfo()
        .map(|s| (s.ram_total() / (1024 * 1024)) as i64)
        .unwrap_or(0);
    let machine = nix::sys::utsname::uname()
        .map(|u| u.machine().to_string_lossy().into_owned())
        .unwrap_or_else(|_| std::env::consts::ARCH.to_owned());
    let hostname = nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "localhost".to_owned());
    HostFacts {
        cpu_units: cpus as i64 * 1024,
        memory_mib,
        cpu_architecture: normalize_arch(&machine),
        hostname,
    }
}

/// ECS spells the architectures `x86_64` and `arm64`.
pub fn normalize_arch(machine: &str) -> String {
    match machine {
        "aarch64" | "arm64" => "arm64".to_owned(),
        "x86_64" | "amd64" => "x86_64".to_owned(),
        other => other.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_something_sensible() {
        let f = detect();
        assert!(f.cpu_units >= 1024);
        assert!(f.memory_mib > 0);
        assert!(!f.hostname.is_empty());
        assert_eq!(normalize_arch("aarch64"), "arm64");
    }
}
