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

mod account_setting;
mod agent;
mod capacity_provider;
mod cluster;
mod container_instance;
mod page;
mod records;
mod service;
mod state;
mod tagging;
mod task;
mod task_definition;
mod task_protection;
#[cfg(test)]
pub(crate) mod tests;

pub use agent::{
    ContainerReport, DesiredContainer, DesiredSet, DesiredTask, RegisterInstance, Registered,
    SentTasks, SessionHandle, TaskNetwork, TaskReport,
};
pub use state::State;

use crate::model::ArnScope;
use crate::model::status::Status;
use crate::store::{Batch, Store, StoreError};
use crate::validate::ValidationError;
use records::{AnyRecord, Change, Undo};
use state::ClusterRecord;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::watch;

/// How long a deleted (INACTIVE) service stays describable, as in ECS.
const INACTIVE_SERVICE_RETENTION: Duration = Duration::from_secs(3600);

/// Settings the control plane needs from the configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Region and account in ARNs.
    pub scope: ArnScope,
    /// How long STOPPED tasks stay describable.
    pub stopped_task_retention: Duration,
    /// How long an agent may be away before its service tasks are
    /// replaced elsewhere.
    pub lost_host_timeout: Duration,
    /// How long a RunTask client token is remembered.
    pub client_token_retention: Duration,
    /// Seed of the `random` placement strategy (same seed, same choices).
    pub placement_seed: u64,
}

/// Who is calling, for what belongs to a principal (account settings): the
/// access key that signed the request as an IAM user ARN
/// (`arn:aws:iam::<account>:user/<access key id>`), or the account's root
/// when requests are not signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The principal's ARN.
    pub principal_arn: String,
    /// The account in ARNs.
    pub account_id: String,
}

impl Caller {
    /// The account root's ARN (whose settings are the account defaults).
    pub fn root(&self) -> String {
        format!("arn:aws:iam::{}:root", self.account_id)
    }
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
    /// A named service exists but is not ACTIVE.
    #[error("{0}")]
    ServiceNotActive(String),
    /// DeleteCluster with services not yet INACTIVE.
    #[error("{0}")]
    ClusterContainsServices(String),
    /// A resource is in use and cannot be removed.
    #[error("{0}")]
    ResourceInUse(String),
    /// PutAttributes/DeleteAttributes named an instance that does not exist.
    #[error("{0}")]
    TargetNotFound(String),
    /// TagResource/UntagResource named a resource that does not exist.
    #[error("{0}")]
    ResourceNotFound(String),
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
    changes: Vec<Change>,
}

impl Staged {
    /// A decision that stores one record.
    fn one(record: impl Into<AnyRecord>) -> Self {
        let mut staged = Staged::default();
        staged.put(record);
        staged
    }

    /// Stores (inserts or replaces) a record.
    fn put(&mut self, record: impl Into<AnyRecord>) {
        self.changes.push(Change::Put(record.into()));
    }

    /// Removes the record with this one's key.
    fn delete(&mut self, record: impl Into<AnyRecord>) {
        self.changes.push(Change::Delete(record.into()));
    }

    fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }
}

/// Counts behind the control plane's gauges.
#[derive(Debug, Default)]
pub struct Gauges {
    /// (cluster, lastStatus) -> tasks still kept.
    pub tasks: std::collections::BTreeMap<(String, String), usize>,
    /// (cluster, status, agent connected) -> container instances.
    pub instances: std::collections::BTreeMap<(String, String, bool), usize>,
    /// Open agent sessions.
    pub sessions: usize,
    /// (cluster, status) -> services.
    pub services: std::collections::BTreeMap<(String, String), usize>,
}

/// Who to wake once a commit is durable: agents whose desired set changed,
/// and the service scheduler when services have a round due.
#[derive(Debug, Default)]
#[must_use = "publish after the commit is durable"]
struct Wakeups {
    agents: Vec<(Arc<watch::Sender<u64>>, u64)>,
    scheduler: bool,
}

impl Wakeups {
    fn of(state: &State, instances: BTreeSet<String>) -> Self {
        Wakeups {
            agents: instances
                .into_iter()
                .filter_map(|id| {
                    state
                        .live
                        .get(&id)
                        .map(|l| (l.notify.clone(), l.generation))
                })
                .collect(),
            scheduler: !state.dirty_services.is_empty() || state.all_services_dirty,
        }
    }

    fn send(self, scheduler: &tokio::sync::Notify) {
        for (tx, generation) in self.agents {
            tx.send_replace(generation);
        }
        if self.scheduler {
            scheduler.notify_one();
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
    /// Signalled after a durable commit that touched services: the service
    /// scheduler's change feed.
    changed: tokio::sync::Notify,
    /// Bumped after every durable commit and agent (dis)connection: what
    /// the console's live views watch.
    changes: watch::Sender<u64>,
    /// Counters and histograms the use cases move.
    metrics: Arc<crate::metrics::Metrics>,
}

impl ControlPlane {
    /// Loads the state from `store`. Every instance starts disconnected until
    /// its agent opens a session.
    pub fn load(store: Arc<dyn Store>, settings: Settings) -> Result<Self> {
        let state = Self::read_state(store.as_ref())?;
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
            changed: tokio::sync::Notify::new(),
            changes: watch::Sender::new(0),
            metrics: Arc::new(crate::metrics::Metrics::new()),
        })
    }

    /// Installs a stored task if it is STOPPED, from the members the index
    /// needs; false (nothing done) otherwise or if they do not parse.
    fn install_stopped(state: &mut State, bytes: &[u8]) -> bool {
        #[derive(serde::Deserialize)]
        struct Probe {
            id: String,
            cluster: String,
            task: ProbeTask,
        }
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct ProbeTask {
            last_status: crate::model::task::TaskStatus,
            #[serde(default)]
            stopped_at: Option<crate::model::Timestamp>,
            #[serde(default)]
            group: String,
        }
        match serde_json::from_slice::<Probe>(bytes) {
            Ok(p) if p.task.last_status == crate::model::task::TaskStatus::Stopped => {
                state.install_stopped_task(
                    &p.id,
                    &p.cluster,
                    &p.task.group,
                    p.task.stopped_at.map_or(0, |t| t.as_millis()),
                );
                true
            }
            _ => false,
        }
    }

    /// Every stored record, streamed from the store in key order: the bulk
    /// (tasks) is decoded and installed as it arrives, so neither its bytes
    /// nor its decoded records are ever all in memory, not even while
    /// loading. Key order already puts a task's cluster and instance before
    /// it (`capacity-provider/` < `cluster/` < `instance/` < `task/`), so
    /// those kinds install as they come; the other kinds are few and
    /// install afterwards, in [`AnyRecord::PREFIXES`] order.
    fn read_state(store: &dyn Store) -> Result<State> {
        const STREAMED: &[&str] = &["capacity-provider", "cluster", "instance", "task"];
        let mut state = State::default();
        let mut later: Vec<Vec<(String, Vec<u8>)>> = vec![Vec::new(); AnyRecord::PREFIXES.len()];
        let mut failed: Option<Error> = None;
        store.load_each(&mut |k, v| {
            if failed.is_some() {
                return;
            }
            let prefix = k.split('/').next().unwrap_or_default();
            match AnyRecord::PREFIXES.iter().position(|p| *p == prefix) {
                None => tracing::warn!(key = %k, "ignoring a record of unknown kind"),
                // A STOPPED task (most of them) is read for its index
                // entry only, not decoded whole.
                Some(_) if prefix == "task" && Self::install_stopped(&mut state, v) => {}
                Some(_) if STREAMED.contains(&prefix) => match AnyRecord::decode(k, v) {
                    Ok(Some(r)) => {
                        let _ = r.install(&mut state);
                    }
                    Ok(None) => {}
                    Err(e) => failed = Some(e),
                },
                Some(kind) => later[kind].push((k.to_owned(), v.to_vec())),
            }
        })?;
        if let Some(e) = failed {
            return Err(e);
        }
        for bucket in later {
            for (k, v) in bucket {
                if let Some(r) = AnyRecord::decode(&k, &v)? {
                    let _ = r.install(&mut state);
                }
            }
        }
        Ok(state)
    }

    /// The control plane's metrics.
    pub fn metrics(&self) -> &crate::metrics::Metrics {
        &self.metrics
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

    /// Writes staged records to the store, then installs them in memory,
    /// keeping what they replaced so [`ControlPlane::roll_back`] can undo
    /// them if the write never becomes durable. Nothing is installed when
    /// the store refuses the batch.
    fn commit(&self, state: &mut State, staged: Staged) -> Result<Wakeups> {
        if staged.is_empty() {
            return Ok(Wakeups::default());
        }
        let mut batch = Batch::default();
        for change in &staged.changes {
            match change {
                Change::Put(r) => batch.put(r.key(), r.encode()?),
                Change::Delete(r) => batch.delete(r.key()),
            }
        }
        let seq = self.store.apply(batch)?;
        state.journal.forget_durable(self.store.durable_seq());
        let mut undo = Vec::with_capacity(staged.changes.len());
        let mut woken = BTreeSet::new();
        for change in staged.changes {
            match change {
                Change::Put(r) => {
                    // A replaced record comes back from `install` for the
                    // undo; only a new one is copied (to know what to remove).
                    let added = (!r.exists(state)).then(|| r.clone());
                    let installed = r.install(state);
                    woken.extend(installed.woken);
                    match (installed.previous, added) {
                        (Some(previous), _) => undo.push(Undo::Restore(previous)),
                        (None, Some(added)) => undo.push(Undo::Remove(added)),
                        (None, None) => {}
                    }
                }
                Change::Delete(r) => {
                    if let Some(previous) = r.remove(state) {
                        undo.push(Undo::Restore(previous));
                    }
                }
            }
        }
        state.journal.record(seq, undo);
        Ok(Wakeups::of(state, woken))
    }

    /// Awaits durability of everything committed so far, then wakes agents.
    /// If the store cannot make it durable, every change not yet durable is
    /// rolled back in memory first, so nothing unacknowledged is ever
    /// visible afterwards (not even to a retry with the same client token).
    async fn durable(&self, wakeups: Wakeups) -> Result<()> {
        let started = std::time::Instant::now();
        let synced = self.store.sync().await;
        self.metrics
            .store_commit
            .observe(started.elapsed().as_secs_f64());
        if let Err(e) = synced {
            self.roll_back();
            return Err(e.into());
        }
        wakeups.send(&self.changed);
        self.touched();
        Ok(())
    }

    /// Tells the change feed's watchers that something visible changed.
    fn touched(&self) {
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A feed that moves after every durable change and agent (dis)connection
    /// (the console's live views re-render on it).
    pub fn watch_changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// For each of these instance ids: whether its agent is connected, and
    /// since when it is connected or disconnected.
    pub fn instance_connections<'a>(
        &self,
        ids: impl IntoIterator<Item = &'a str>,
    ) -> std::collections::HashMap<String, (bool, Option<crate::model::time::Timestamp>)> {
        let state = self.lock();
        ids.into_iter()
            .filter_map(|id| {
                let live = state.live.get(id)?;
                let since = if live.connected {
                    live.connected_at
                } else {
                    live.disconnected_at
                };
                Some((id.to_owned(), (live.connected, since)))
            })
            .collect()
    }

    /// Resolves after the next durable commit that gave services a round
    /// to run (or at once if one happened since the last call).
    pub async fn changed(&self) {
        self.changed.notified().await;
    }

    /// Undoes, newest first, every installed change the store has not made
    /// durable, and wakes the agents whose desired set that changed.
    fn roll_back(&self) {
        let mut state = self.lock();
        let undone = state.journal.take_after(self.store.durable_seq());
        if undone.is_empty() {
            return;
        }
        let mut woken = BTreeSet::new();
        let mut changes = 0;
        for undo in undone.into_iter().rev() {
            changes += 1;
            match undo {
                Undo::Restore(previous) => woken.extend(previous.install(&mut state).woken),
                Undo::Remove(added) => {
                    if let AnyRecord::Task(t) = &added {
                        woken.insert(t.instance_id.clone());
                    }
                    added.remove(&mut state);
                }
            }
        }
        tracing::warn!(
            changes,
            "rolled back changes the state store could not make durable"
        );
        Wakeups::of(&state, woken).send(&self.changed);
    }

    /// Every record, encoded, in key order, as of one moment, and durable
    /// when this returns (for snapshots).
    pub async fn snapshot_records(&self) -> Result<Vec<(String, Vec<u8>)>> {
        let mut records = {
            let state = self.lock();
            let mut records = state
                .records()
                .iter()
                .map(|r| Ok((r.key(), r.encode()?)))
                .collect::<Result<Vec<_>>>()?;
            // STOPPED tasks live on disk only; under the lock nothing
            // changes them meanwhile.
            for id in state.stopped.keys() {
                let key = state::key::task(&id);
                if let Some(bytes) = self.store.get(&key)? {
                    records.push((key, bytes));
                }
            }
            records
        };
        // Everything taken was applied before this sync: it is durable.
        self.store.sync().await?;
        records.sort();
        Ok(records)
    }

    /// Counts for the operator's gauges (low-cardinality labels only).
    pub fn gauges(&self) -> Gauges {
        use std::collections::BTreeMap;
        let state = self.lock();
        let mut g = Gauges::default();
        for ((cluster, status), n) in &state.task_counts {
            g.tasks
                .insert((cluster.clone(), status.as_str().to_owned()), *n);
        }
        for i in state.instances.values() {
            let connected = state.live.get(&i.id).is_some_and(|l| l.connected);
            *g.instances
                .entry((i.cluster.clone(), i.status.as_str().to_owned(), connected))
                .or_default() += 1;
            if connected {
                g.sessions += 1;
            }
        }
        let mut services: BTreeMap<(String, String), usize> = BTreeMap::new();
        // Every cluster shows its ACTIVE and DRAINING counts, zero included.
        for c in state
            .clusters
            .values()
            .filter(|c| c.status == Status::Active)
        {
            for status in ["ACTIVE", "DRAINING"] {
                services.insert((c.name.clone(), status.to_owned()), 0);
            }
        }
        for s in state.services.values() {
            *services
                .entry((s.cluster.clone(), s.status.as_str().to_owned()))
                .or_default() += 1;
        }
        g.services = services;
        g
    }

    /// The state's digest (see [`State::digest`]).
    pub fn digest(&self) -> String {
        self.lock().digest()
    }

    /// Why writes are refused, while the store is failed.
    pub fn store_failure(&self) -> Option<String> {
        self.store.failure()
    }

    /// Reopens a failed store and reloads the state from what is on disk,
    /// keeping agents' sessions. Returns whether writes work again.
    pub fn recover_store(&self) -> Result<()> {
        if self.store.failure().is_none() {
            return Ok(());
        }
        self.roll_back();
        let mut state = self.lock();
        self.store.reopen()?;
        let mut fresh = Self::read_state(self.store.as_ref())?;
        let mut woken = BTreeSet::new();
        for (id, live) in fresh.live.iter_mut() {
            if let Some(old) = state.live.get(id) {
                live.connected = old.connected;
                live.session = old.session;
                live.connected_at = old.connected_at;
                live.disconnected_at = old.disconnected_at;
                live.notify = old.notify.clone();
                live.generation = old.generation + 1;
                woken.insert(id.clone());
            }
        }
        *state = fresh;
        tracing::info!(
            tasks = state.tasks.len(),
            container_instances = state.instances.len(),
            "state reloaded from the reopened store; writes are accepted again"
        );
        Wakeups::of(&state, woken).send(&self.changed);
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
        let mut n = 0;
        let expired: Vec<String> = state.stopped.stopped_before(task_cutoff);
        for id in expired {
            if let Some(t) = self.stopped_task(&id)? {
                staged.delete(t);
                n += 1;
            }
        }
        for t in state.tokens.values() {
            if t.created_at.as_millis() < token_cutoff {
                staged.delete(t.clone());
            }
        }
        let service_cutoff = now - INACTIVE_SERVICE_RETENTION.as_millis() as i64;
        for s in state.services.values() {
            if s.status == Status::Inactive && s.status_changed_at.as_millis() < service_cutoff {
                staged.delete(s.clone());
            }
        }
        // Deleted task definitions no longer in use leave only a tombstone.
        for r in task_definition::finished_deletions(&state) {
            staged.put(r);
        }
        // Deletions wake no agent: only STOPPED tasks are forgotten.
        let _ = self.commit(&mut state, staged)?;
        Ok(n)
    }

    /// A STOPPED task's record, read from the store (memory keeps only
    /// its `stopped` entry).
    fn stopped_task(&self, id: &str) -> Result<Option<state::TaskRecord>> {
        let key = state::key::task(id);
        let Some(bytes) = self.store.get(&key)? else {
            return Ok(None);
        };
        match AnyRecord::decode(&key, &bytes)? {
            Some(AnyRecord::Task(t)) => Ok(Some(t)),
            _ => Ok(None),
        }
    }

    /// A task by id: from memory, or (STOPPED) from the store.
    fn task_by_id<'s>(
        &self,
        state: &'s State,
        id: &str,
    ) -> Result<Option<std::borrow::Cow<'s, state::TaskRecord>>> {
        if let Some(t) = state.tasks.get(id) {
            return Ok(Some(std::borrow::Cow::Borrowed(t)));
        }
        if !state.stopped.contains_key(id) {
            return Ok(None);
        }
        Ok(self.stopped_task(id)?.map(std::borrow::Cow::Owned))
    }

    /// The caller that signed with `access_key_id` (`None`: unsigned).
    pub fn caller(&self, access_key_id: Option<&str>) -> Caller {
        let account_id = self.scope().account_id.clone();
        let principal_arn = match access_key_id {
            Some(key) => format!("arn:aws:iam::{account_id}:user/{key}"),
            None => format!("arn:aws:iam::{account_id}:root"),
        };
        Caller {
            principal_arn,
            account_id,
        }
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
                "Cluster not found. '{name}' was deleted (INACTIVE); create it again with CreateCluster."
            ))),
            None => Err(Error::ClusterNotFound(format!(
                "Cluster not found. There is no cluster '{name}': create it with CreateCluster, or check the name with ListClusters."
            ))),
        }
    }
}
