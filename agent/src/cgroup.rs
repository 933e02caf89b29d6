//! Task cgroups: the task-level `cpu` and `memory` of a task definition (or
//! its overrides) become hard limits on a cgroup that all of the task's
//! containers run under (Docker's `CgroupParent`), as the ECS agent does.
//!
//! - cgroupfs driver, cgroup v1: `/sys/fs/cgroup/{cpu,memory}/berth/<task>`
//!   with `memory.limit_in_bytes` and a CFS quota (`cpu.cfs_quota_us`).
//! - cgroupfs driver, cgroup v2: `/sys/fs/cgroup/berth/<task>` with
//!   `memory.max` and `cpu.max`.
//! - systemd driver: the slice `berth-<task>.slice`, its `MemoryMax` and
//!   `CPUQuota` set with `systemctl set-property --runtime` before Docker
//!   creates the containers' scopes in it.
//!
//! CPU: 1024 units are one CPU of quota per 100 ms period.

use std::path::{Path, PathBuf};

const PERIOD_US: i64 = 100_000;

/// How this host's Docker manages cgroups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Driver {
    /// cgroupfs driver on cgroup v1.
    CgroupfsV1,
    /// cgroupfs driver on cgroup v2.
    CgroupfsV2,
    /// systemd driver.
    Systemd,
}

/// Why a task cgroup could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("cannot set up the task cgroup {path}: {message}")]
pub struct CgroupError {
    /// What was being written.
    pub path: String,
    /// Why it failed.
    pub message: String,
}

/// Creates and removes task cgroups.
#[derive(Debug, Clone)]
pub struct TaskCgroups {
    driver: Driver,
    root: PathBuf,
}

fn write(path: &Path, value: &str) -> Result<(), CgroupError> {
    std::fs::write(path, value).map_err(|e| CgroupError {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

fn mkdir(path: &Path) -> Result<(), CgroupError> {
    std::fs::create_dir_all(path).map_err(|e| CgroupError {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

impl TaskCgroups {
    /// From Docker's `CgroupDriver` (`cgroupfs`/`systemd`) and
    /// `CgroupVersion` (`1`/`2`).
    pub fn new(driver: &str, version: &str) -> Self {
        let driver = match (driver, version) {
            ("systemd", _) => Driver::Systemd,
            (_, "2") => Driver::CgroupfsV2,
            _ => Driver::CgroupfsV1,
        };
        TaskCgroups {
            driver,
            root: PathBuf::from("/sys/fs/cgroup"),
        }
    }

    /// The driver in use.
    pub fn driver(&self) -> &Driver {
        &self.driver
    }

    /// Creates the task's cgroup with its limits (idempotent) and returns
    /// the `CgroupParent` for its containers.
    pub fn ensure(
        &self,
        task_id: &str,
        cpu_units: Option<i64>,
        memory_mib: Option<i64>,
    ) -> Result<String, CgroupError> {
        let quota = cpu_units.map(|u| (u * PERIOD_US / 1024).max(1000));
        let bytes = memory_mib.map(|m| m * 1024 * 1024);
        match self.driver {
            Driver::CgroupfsV1 => {
                let rel = format!("berth/{task_id}");
                if let Some(bytes) = bytes {
                    let dir = self.root.join("memory").join(&rel);
                    mkdir(&dir)?;
                    write(&dir.join("memory.limit_in_bytes"), &bytes.to_string())?;
                }
                if let Some(quota) = quota {
                    let dir = self.root.join("cpu").join(&rel);
                    mkdir(&dir)?;
                    write(&dir.join("cpu.cfs_period_us"), &PERIOD_US.to_string())?;
                    write(&dir.join("cpu.cfs_quota_us"), &quota.to_string())?;
                }
                Ok(format!("/{rel}"))
            }
            Driver::CgroupfsV2 => {
                let parent = self.root.join("berth");
                mkdir(&parent)?;
                for dir in [&self.root, &parent] {
                    write(&dir.join("cgroup.subtree_control"), "+cpu +memory")?;
                }
                let dir = parent.join(task_id);
                mkdir(&dir)?;
                if let Some(bytes) = bytes {
                    write(&dir.join("memory.max"), &bytes.to_string())?;
                }
                if let Some(quota) = quota {
                    write(&dir.join("cpu.max"), &format!("{quota} {PERIOD_US}"))?;
                }
                Ok(format!("/berth/{task_id}"))
            }
            Driver::Systemd => {
                let slice = format!("berth-{task_id}.slice");
                let mut args = vec![
                    "set-property".to_owned(),
                    "--runtime".to_owned(),
                    slice.clone(),
                ];
                if let Some(bytes) = bytes {
                    args.push(format!("MemoryMax={bytes}"));
                }
                if let Some(quota) = quota {
                    args.push(format!("CPUQuota={}%", quota * 100 / PERIOD_US));
                }
                let out = std::process::Command::new("systemctl")
                    .args(&args)
                    .output()
                    .map_err(|e| CgroupError {
                        path: slice.clone(),
                        message: format!("cannot run systemctl: {e}"),
                    })?;
                if !out.status.success() {
                    return Err(CgroupError {
                        path: slice,
                        message: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
                    });
                }
                Ok(slice)
            }
        }
    }

    /// Removes the task's cgroup once its containers are gone (best effort).
    pub fn remove(&self, task_id: &str) {
        let dirs: Vec<PathBuf> = match self.driver {
            Driver::CgroupfsV1 => ["memory", "cpu"]
                .iter()
                .map(|c| self.root.join(c).join("berth").join(task_id))
                .collect(),
            Driver::CgroupfsV2 => vec![self.root.join("berth").join(task_id)],
            Driver::Systemd => return,
        };
        for dir in dirs.into_iter().filter(|d| d.exists()) {
            if let Err(e) = std::fs::remove_dir(&dir) {
                tracing::debug!(cgroup = %dir.display(), error = %e, "task cgroup not removed yet");
            }
        }
    }

    /// The cgroup directory that holds the task's memory limit (for tests
    /// and diagnostics).
    pub fn memory_dir(&self, task_id: &str) -> Option<PathBuf> {
        match self.driver {
            Driver::CgroupfsV1 => Some(self.root.join("memory/berth").join(task_id)),
            Driver::CgroupfsV2 => Some(self.root.join("berth").join(task_id)),
            Driver::Systemd => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_v1_and_v2_limits_under_a_root() {
        let dir = tempfile::tempdir().unwrap();
        let v1 = TaskCgroups {
            driver: Driver::CgroupfsV1,
            root: dir.path().to_owned(),
        };
        assert_eq!(v1.ensure("t1", Some(512), Some(256)).unwrap(), "/berth/t1");
        let read = |p: &str| std::fs::read_to_string(dir.path().join(p)).unwrap();
        assert_eq!(
            read("memory/berth/t1/memory.limit_in_bytes"),
            (256 * 1024 * 1024).to_string()
        );
        assert_eq!(read("cpu/berth/t1/cpu.cfs_quota_us"), "50000");
        let v2 = TaskCgroups {
            driver: Driver::CgroupfsV2,
            root: dir.path().to_owned(),
        };
        v2.ensure("t2", Some(2048), None).unwrap();
        assert_eq!(read("berth/t2/cpu.max"), "200000 100000");
        assert!(!dir.path().join("berth/t2/memory.max").exists());
    }
}
