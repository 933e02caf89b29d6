//! The agent's own records, in sled under `--data-dir`: its identity, the
//! tasks it runs with their containers' names and ids, and tombstones of
//! tasks it finished. Enough to recover after `kill -9`: a container's name
//! is recorded before Docker is asked to create it, so a crash between the
//! two leaves a name to look up, never an untracked container.
//!
//! A container's name record is flushed before the call returns: it is what
//! guards against a duplicate container. The task spec and the container id
//! are not (each costs an fsync on the path to RUNNING): the next flush
//! carries them, the control plane sends a lost spec again, and a container
//! whose id was lost is found by its recorded name.

use berth_proto::agent::v1 as pb;
use prost::Message;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// A failed state operation.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// sled failed.
    #[error("agent state database error")]
    Sled(#[from] sled::Error),
    /// A record did not decode.
    #[error("agent state record {key} is not valid: {message}")]
    Corrupt {
        /// Which record.
        key: String,
        /// Why.
        message: String,
    },
}

/// Result of a state operation.
pub type Result<T> = std::result::Result<T, StateError>;

/// Who this agent is.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The container-instance ARN the control plane issued.
    pub container_instance_arn: String,
    /// The cluster it belongs to.
    pub cluster: String,
    /// The secret proving this agent registered the instance (absent in
    /// state written before secrets existed).
    #[serde(default)]
    pub instance_secret: Option<String>,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("container_instance_arn", &self.container_instance_arn)
            .field("cluster", &self.cluster)
            .field(
                "instance_secret",
                &self.instance_secret.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// A container the agent created or is about to create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerRecord {
    /// Docker name, chosen before create.
    pub docker_name: String,
    /// Docker id, once create returned.
    pub docker_id: Option<String>,
}

impl ContainerRecord {
    /// What Docker knows the container by: its id once known, else its name.
    pub fn reference(&self) -> &str {
        self.docker_id.as_deref().unwrap_or(&self.docker_name)
    }
}

/// A task as recovered from the database.
#[derive(Debug, Clone, PartialEq)]
pub struct RecoveredTask {
    /// The spec it was started with.
    pub spec: pb::TaskSpec,
    /// Container name -> record.
    pub containers: Vec<(String, ContainerRecord)>,
}

/// The agent's database.
#[derive(Debug, Clone)]
pub struct AgentState {
    db: sled::Db,
}

fn corrupt(key: &str, e: impl std::fmt::Display) -> StateError {
    StateError::Corrupt {
        key: key.to_owned(),
        message: e.to_string(),
    }
}

impl AgentState {
    /// Opens (or creates) the database in `dir`.
    pub fn open(dir: &Path) -> Result<Self> {
        Ok(AgentState {
            db: sled::open(dir)?,
        })
    }

    fn put(&self, key: &str, value: &[u8]) -> Result<()> {
        self.db.insert(key.as_bytes(), value)?;
        self.db.flush()?;
        Ok(())
    }

    /// A write the next flush makes durable.
    fn put_lazily(&self, key: &str, value: &[u8]) -> Result<()> {
        self.db.insert(key.as_bytes(), value)?;
        Ok(())
    }

    /// The saved identity, if this agent registered before.
    pub fn identity(&self) -> Result<Option<Identity>> {
        match self.db.get("identity")? {
            None => Ok(None),
            Some(v) => serde_json::from_slice(&v)
                .map(Some)
                .map_err(|e| corrupt("identity", e)),
        }
    }

    /// Saves the identity.
    pub fn save_identity(&self, identity: &Identity) -> Result<()> {
        let bytes = serde_json::to_vec(identity).map_err(|e| corrupt("identity", e))?;
        self.put("identity", &bytes)
    }

    /// Records a task the agent starts running.
    /// Records that a task of this agent used `image` now; `pulled` when the
    /// agent pulled it (only images it pulled are ever cleaned up).
    pub fn image_used(&self, image: &str, pulled: bool, now_ms: i64) -> Result<()> {
        let key = format!("image/{image}");
        let known = self.db.get(&key)?.is_some();
        if !known && !pulled {
            return Ok(());
        }
        // Not flushed: losing a last-use time only delays a cleanup.
        self.db.insert(key.as_bytes(), &now_ms.to_le_bytes())?;
        Ok(())
    }

    /// Images this agent pulled, with when a task last used them (unix ms).
    pub fn pulled_images(&self) -> Result<Vec<(String, i64)>> {
        self.db
            .scan_prefix("image/")
            .map(|entry| {
                let (k, v) = entry?;
                let key = String::from_utf8_lossy(&k).into_owned();
                let at = <[u8; 8]>::try_from(v.as_ref())
                    .map(i64::from_le_bytes)
                    .map_err(|e| corrupt(&key, e))?;
                Ok((key.trim_start_matches("image/").to_owned(), at))
            })
            .collect()
    }

    /// Forgets an image (it was removed).
    pub fn forget_image(&self, image: &str) -> Result<()> {
        self.db.remove(format!("image/{image}").as_bytes())?;
        Ok(())
    }

    pub fn save_task(&self, spec: &pb::TaskSpec) -> Result<()> {
        self.put_lazily(&format!("task/{}", spec.task_arn), &spec.encode_to_vec())
    }

    /// Records a container's name (before create) or id (after).
    pub fn save_container(
        &self,
        task_arn: &str,
        name: &str,
        record: &ContainerRecord,
    ) -> Result<()> {
        let key = format!("container/{task_arn}\n{name}");
        let bytes = serde_json::to_vec(record).map_err(|e| corrupt(&key, e))?;
        if record.docker_id.is_some() {
            // The name was flushed before create; the id can wait.
            self.put_lazily(&key, &bytes)
        } else {
            self.put(&key, &bytes)
        }
    }

    /// Every task recorded, with its containers.
    pub fn tasks(&self) -> Result<Vec<RecoveredTask>> {
        let mut out = Vec::new();
        for entry in self.db.scan_prefix("task/") {
            let (k, v) = entry?;
            let key = String::from_utf8_lossy(&k).into_owned();
            let spec = pb::TaskSpec::decode(v.as_ref()).map_err(|e| corrupt(&key, e))?;
            let mut containers = Vec::new();
            for c in self
                .db
                .scan_prefix(format!("container/{}\n", spec.task_arn))
            {
                let (ck, cv) = c?;
                let ckey = String::from_utf8_lossy(&ck).into_owned();
                let name = ckey.rsplit('\n').next().unwrap_or_default().to_owned();
                let record: ContainerRecord =
                    serde_json::from_slice(&cv).map_err(|e| corrupt(&ckey, e))?;
                containers.push((name, record));
            }
            out.push(RecoveredTask { spec, containers });
        }
        Ok(out)
    }

    /// Records that a task finished, with its final report, and forgets its
    /// running records.
    pub fn finish_task(
        &self,
        final_report: &pb::TaskStateReport,
        finished_at_ms: i64,
    ) -> Result<()> {
        let arn = &final_report.task_arn;
        let mut batch = sled::Batch::default();
        batch.remove(format!("task/{arn}").as_bytes());
        for c in self.db.scan_prefix(format!("container/{arn}\n")) {
            let (k, _) = c?;
            batch.remove(k);
        }
        let mut value = finished_at_ms.to_be_bytes().to_vec();
        value.extend(final_report.encode_to_vec());
        batch.insert(format!("done/{arn}").as_bytes(), value);
        self.db.apply_batch(batch)?;
        self.db.flush()?;
        Ok(())
    }

    /// The final report of a finished task, if it finished here.
    pub fn finished(&self, task_arn: &str) -> Result<Option<pb::TaskStateReport>> {
        let key = format!("done/{task_arn}");
        match self.db.get(&key)? {
            None => Ok(None),
            Some(v) if v.len() >= 8 => pb::TaskStateReport::decode(&v[8..])
                .map(Some)
                .map_err(|e| corrupt(&key, e)),
            Some(_) => Err(corrupt(&key, "too short")),
        }
    }

    /// Forgets tombstones older than `cutoff_ms`. Returns how many.
    pub fn expire_finished(&self, cutoff_ms: i64) -> Result<usize> {
        let mut batch = sled::Batch::default();
        let mut n = 0;
        for entry in self.db.scan_prefix("done/") {
            let (k, v) = entry?;
            let at = v
                .get(..8)
                .and_then(|b| b.try_into().ok())
                .map(i64::from_be_bytes)
                .unwrap_or(0);
            if at < cutoff_ms {
                batch.remove(k);
                n += 1;
            }
        }
        if n > 0 {
            self.db.apply_batch(batch)?;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let spec = pb::TaskSpec {
            task_arn: "arn:t1".into(),
            ..Default::default()
        };
        {
            let s = AgentState::open(dir.path()).unwrap();
            s.save_identity(&Identity {
                container_instance_arn: "arn:ci".into(),
                cluster: "c".into(),
                instance_secret: Some("s".into()),
            })
            .unwrap();
            s.save_task(&spec).unwrap();
            s.save_container(
                "arn:t1",
                "app",
                &ContainerRecord {
                    docker_name: "ecs-x".into(),
                    docker_id: None,
                },
            )
            .unwrap();
        }
        let s = AgentState::open(dir.path()).unwrap();
        assert_eq!(
            s.identity().unwrap().unwrap().container_instance_arn,
            "arn:ci"
        );
        let tasks = s.tasks().unwrap();
        assert_eq!(tasks.len(), 1);
        assert_eq!(tasks[0].containers[0].0, "app");
        let report = pb::TaskStateReport {
            task_arn: "arn:t1".into(),
            last_status: pb::TaskStatus::Stopped as i32,
            ..Default::default()
        };
        s.finish_task(&report, 5).unwrap();
        assert!(s.tasks().unwrap().is_empty());
        assert_eq!(s.finished("arn:t1").unwrap().unwrap(), report);
        assert_eq!(s.expire_finished(10).unwrap(), 1);
        assert!(s.finished("arn:t1").unwrap().is_none());
    }
}
