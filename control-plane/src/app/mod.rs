//! The use cases: load, decide (validate, placement), persist, notify.
//!
//! Every operation follows one shape. Under the state lock it reads the
//! state, decides, and stages new records ([`Staged`]); [`ControlPlane::commit`]
//! encodes them, applies them to the store atomically, and only then
//! installs them in memory, so a refused or failed write changes nothing.
//! After the lock is released the operation awaits durability (one fsync
//! shared by concurrent requests) and then wakes the agents whose desired
//! task set changed. Success is answered only after that.
//!
//! One lock for the whole state serializes placement, so concurrent RunTasks
//! can never overbook an instance; decisions take microseconds and never
//! await while holding it.

mod agent;
mod capacity_provider;
mod cluster;
mod container_instance;
mod page;
mod state;
mod task;
mod task_definition;

pub use agent::{
    ContainerReport, DesiredContainer, DesiredSet, DesiredTask, RegisterInstance, Registered,
    SentTasks, SessionHandle, TaskNetwork, TaskReport,
};
pub use state::State;

use crate::model::ArnScope;
use crate::store::{Batch, Store, StoreError};
use crate::validate::ValidationError;
use state::{
    CapacityProviderRecord, ClusterRecord, InstanceRecord, TaskDefinitionRecord, TaskRecord,
    TokenRecord, key,
};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::watch;

/// Settings the service needs from the configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Region and account in ARNs.
    pub scope: ArnScope,
    /// How long STOPPED tasks stay describable.
    pub stopped_task_retention: Duration,
    /// How long a RunTask client token is remembered.
    pub client_token_retention: Duration,
    /// Seed of the `random` placement strategy (same seed, same choices).
    pub placement_seed: u64,
}

/// A failed use case. `api` maps each variant to one ECS error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A request rule was broken.
    #[error(transparent)]
    Validation(#[from] ValidationError),
    /// The named cluster does not exist.
    #[error("{0}")]
    ClusterNotFound(String),
    /// A client token was reused with other parameters.
    #[error("{message}")]
    Conflict {
        /// What happened.
        message: String,
        /// Tasks the token already created.
        resource_ids: Vec<String>,
    },
    /// DeleteCluster with instances registered.
    #[error("{0}")]
    ClusterContainsContainerInstances(String),
    /// DeleteCluster with tasks not yet stopped.
    #[error("{0}")]
    ClusterContainsTasks(String),
    /// A named service does not exist.
    #[error("{0}")]
    ServiceNotFound(String),
    /// A resource is in use and cannot be removed.
    #[error("{0}")]
    ResourceInUse(String),
    /// PutAttributes/DeleteAttributes named an instance that does not exist.
    #[error("{0}")]
    TargetNotFound(String),
    /// More than 10 custom attributes on one instance.
    #[error("{0}")]
    AttributeLimitExceeded(String),
    /// An agent tried to act for a container instance it did not register.
    #[error("{0}")]
    PermissionDenied(String),
    /// Reading or writing the state failed.
    #[error("the state store failed")]
    Store(#[from] StoreError),
    /// A record could not be encoded or decoded.
    #[error("state record {key} is not valid")]
    Record {
        /// The record's key.
        key: String,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
}

/// Result of a use case.
pub type Result<T> = std::result::Result<T, Error>;

fn invalid(message: impl Into<String>) -> Error {
    Error::Validation(ValidationError::invalid(message))
}

fn client(message: impl Into<String>) -> Error {
    Error::Validation(ValidationError::client(message))
}

/// Records a decision changes, written together by [`ControlPlane::commit`].
#[derive(Debug, Default)]
struct Staged {
    clusters: Vec<ClusterRecord>,
    task_definitions: Vec<TaskDefinitionRecord>,
    instances: Vec<InstanceRecord>,
    tasks: Vec<TaskRecord>,
    tokens: Vec<TokenRecord>,
    capacity_providers: Vec<CapacityProviderRecord>,
    deleted_tasks: Vec<String>,
    deleted_tokens: Vec<(String, String)>,
}

/// Agents to wake once a commit is durable: their desired set changed.
#[derive(Debug, Default)]
#[must_use = "publish after the commit is durable"]
struct Wakeups(Vec<(Arc<watch::Sender<u64>>, u64)>);

impl Wakeups {
    fn send(self) {
        for (tx, generation) in self.0 {
            tx.send_replace(generation);
        }
    }
}

/// The control plane's use cases over one state.
#[derive(Debug)]
pub struct ControlPlane {
    settings: Settings,
    store: Arc<dyn Store>,
    state: Mutex<State>,
    /// The `random` strategy's generator; locked only while the state lock
    /// is held, so placement stays serialized and repeatable for a seed.
    rng: Mutex<crate::placement::Rng>,
}

fn encode<T: serde::Serialize>(key: &str, value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|source| Error::Record {
        key: key.to_owned(),
        source,
    })
}

fn decode<T: serde::de::DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|source| Error::Record {
        key: key.to_owned(),
        source,
    })
}

impl ControlPlane {
    /// Loads the state from `store`. Every instance starts disconnected until
    /// its agent opens a session.
    pub fn load(store: Arc<dyn Store>, settings: Settings) -> Result<Self> {
        let mut state = State::default();
        // Keys sort capacity providers < clusters < instances < tasks <
        // taskdefs < tokens, so a task's cluster and instance are installed
        // before the task.
        for (k, v) in store.load()? {
            let kind = k.split('/').next().unwrap_or_default();
            match kind {
                "cluster" => state.install_cluster(decode(&k, &v)?),
                "instance" => state.install_instance(decode(&k, &v)?),
                "task" => {
                    state.install_task(decode(&k, &v)?);
                }
                "taskdef" => state.install_task_definition(decode(&k, &v)?),
                "token" => {
                    let t: TokenRecord = decode(&k, &v)?;
                    state.tokens.insert((t.cluster.clone(), t.token.clone()), t);
                }
                "capacity-provider" => {
                    let p: CapacityProviderRecord = decode(&k, &v)?;
                    state.capacity_providers.insert(p.name.clone(), p);
                }
                _ => tracing::warn!(key = %k, "ignoring a record of unknown kind"),
            }
        }
        tracing::info!(
            clusters = state.clusters.len(),
            task_definitions = state.families.values().map(|f| f.len()).sum::<usize>(),
            tasks = state.tasks.len(),
            container_instances = state.instances.len(),
            "state loaded"
        );
        Ok(ControlPlane {
            rng: Mutex::new(crate::placement::Rng::new(settings.placement_seed)),
            settings,
            store,
            state: Mutex::new(state),
        })
    }

    /// The ARN scope.
    pub fn scope(&self) -> &ArnScope {
        &self.settings.scope
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave a half-installed
        // record: records are installed only after the store accepted them.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes staged records to the store, then installs them in memory.
    /// Nothing is installed when the store refuses the batch.
    fn commit(&self, state: &mut State, staged: Staged) -> Result<Wakeups> {
        let mut batch = Batch::default();
        for c in &staged.clusters {
            let k = key::cluster(&c.name);
            batch.put(k.clone(), encode(&k, c)?);
        }
        for td in &staged.task_definitions {
            let k = key::task_definition(&td.definition.family, td.definition.revision);
            batch.put(k.clone(), encode(&k, td)?);
        }
        for i in &staged.instances {
            let k = key::instance(&i.id);
            batch.put(k.clone(), encode(&k, i)?);
        }
        for t in &staged.tasks {
            let k = key::task(&t.id);
            batch.put(k.clone(), encode(&k, t)?);
        }
        for t in &staged.tokens {
            let k = key::token(&t.cluster, &t.token);
            batch.put(k.clone(), encode(&k, t)?);
        }
        for p in &staged.capacity_providers {
            let k = key::capacity_provider(&p.name);
            batch.put(k.clone(), encode(&k, p)?);
        }
        for id in &staged.deleted_tasks {
            batch.delete(key::task(id));
        }
        for (cluster, token) in &staged.deleted_tokens {
            batch.delete(key::token(cluster, token));
        }
        if !batch.is_empty() {
            self.store.apply(batch)?;
        }

        for c in staged.clusters {
            state.install_cluster(c);
        }
        for td in staged.task_definitions {
            state.install_task_definition(td);
        }
        for i in staged.instances {
            state.install_instance(i);
        }
        let mut woken = std::collections::BTreeSet::new();
        for t in staged.tasks {
            let instance = t.instance_id.clone();
            if state.install_task(t) {
                woken.insert(instance);
            }
        }
        for t in staged.tokens {
            state.tokens.insert((t.cluster.clone(), t.token.clone()), t);
        }
        for p in staged.capacity_providers {
            state.capacity_providers.insert(p.name.clone(), p);
        }
        for id in staged.deleted_tasks {
            state.remove_task(&id);
        }
        for k in staged.deleted_tokens {
            state.tokens.remove(&k);
        }
        Ok(Wakeups(
            woken
                .into_iter()
                .filter_map(|id| {
                    state
                        .live
                        .get(&id)
                        .map(|l| (l.notify.clone(), l.generation))
                })
                .collect(),
        ))
    }

    /// Awaits durability of everything committed so far, then wakes agents.
    async fn durable(&self, wakeups: Wakeups) -> Result<()> {
        self.store.sync().await?;
        wakeups.send();
        Ok(())
    }

    /// Forgets STOPPED tasks past their retention and expired client
    /// tokens. Returns how many tasks were forgotten.
    pub fn expire(&self) -> Result<usize> {
        let now = crate::model::Timestamp::now().as_millis();
        let task_cutoff = now - self.settings.stopped_task_retention.as_millis() as i64;
        let token_cutoff = now - self.settings.client_token_retention.as_millis() as i64;
        let mut state = self.lock();
        let mut staged = Staged::default();
        for (id, t) in &state.tasks {
            if t.task.last_status == crate::model::task::TaskStatus::Stopped
                && t.task
                    .stopped_at
                    .is_some_and(|s| s.as_millis() < task_cutoff)
            {
                staged.deleted_tasks.push(id.clone());
            }
        }
        for (k, t) in &state.tokens {
            if t.created_at.as_millis() < token_cutoff {
                staged.deleted_tokens.push(k.clone());
            }
        }
        let n = staged.deleted_tasks.len();
        if n > 0 || !staged.deleted_tokens.is_empty() {
            // Deletions wake no agent: only STOPPED tasks are forgotten.
            let _ = self.commit(&mut state, staged)?;
        }
        Ok(n)
    }

    /// The active cluster a reference names, or ClusterNotFoundException.
    fn cluster<'s>(&self, state: &'s State, reference: &str) -> Result<&'s ClusterRecord> {
        let name = crate::model::arn::cluster_name(reference).ok_or_else(|| {
            invalid(format!(
                "'{reference}' is not a cluster name or cluster ARN."
            ))
        })?;
        match state.clusters.get(name) {
            Some(c) if c.is_active() => Ok(c),
            Some(_) => Err(Error::ClusterNotFound(format!(
                "Cluster not found: '{name}' was deleted (INACTIVE). Create it again with CreateCluster."
            ))),
            None => Err(Error::ClusterNotFound(format!(
                "Cluster not found: '{name}'. Create it with CreateCluster, or check the name with ListClusters."
            ))),
        }
    }
}
