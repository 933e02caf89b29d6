//! The record kinds the control plane stores, declared once.
//!
//! Each kind is a line of [`records!`]: its type, its key prefix, and how it
//! is installed in and removed from [`State`]. From that one line come the
//! [`AnyRecord`] enum, decoding by key prefix at load, encoding at commit,
//! and the dispatch that [`ControlPlane::commit`](super::ControlPlane) and
//! its rollback use. Adding a kind is one line here plus its `Keyed` impl
//! and its install/remove methods on `State`.

use super::state::{
    AccountSettingRecord, CapacityProviderRecord, ClusterRecord, InstanceRecord, ServiceRecord,
    State, TaskDefinitionRecord, TaskRecord, TokenRecord, key,
};
use super::{Error, Result};

/// A stored record: where it lives.
pub trait Keyed {
    /// Its full store key, `<prefix>/<id...>`.
    fn key(&self) -> String;
    /// Whether `state` holds a record under this one's key.
    fn exists(&self, state: &State) -> bool;
}

impl Keyed for ClusterRecord {
    fn key(&self) -> String {
        key::cluster(&self.name)
    }
    fn exists(&self, state: &State) -> bool {
        state.clusters.contains_key(&self.name)
    }
}
impl Keyed for TaskDefinitionRecord {
    fn key(&self) -> String {
        key::task_definition(&self.definition.family, self.definition.revision)
    }
    fn exists(&self, state: &State) -> bool {
        state
            .families
            .get(&self.definition.family)
            .is_some_and(|f| f.contains_key(&self.definition.revision))
    }
}
impl Keyed for InstanceRecord {
    fn key(&self) -> String {
        key::instance(&self.id)
    }
    fn exists(&self, state: &State) -> bool {
        state.instances.contains_key(&self.id)
    }
}
impl Keyed for TaskRecord {
    fn key(&self) -> String {
        key::task(&self.id)
    }
    fn exists(&self, state: &State) -> bool {
        state.tasks.contains_key(&self.id) || state.stopped.contains_key(&self.id)
    }
}
impl Keyed for TokenRecord {
    fn key(&self) -> String {
        key::token(&self.cluster, &self.token)
    }
    fn exists(&self, state: &State) -> bool {
        state
            .tokens
            .contains_key(&(self.cluster.clone(), self.token.clone()))
    }
}
impl Keyed for CapacityProviderRecord {
    fn key(&self) -> String {
        key::capacity_provider(&self.name)
    }
    fn exists(&self, state: &State) -> bool {
        state.capacity_providers.contains_key(&self.name)
    }
}

impl Keyed for AccountSettingRecord {
    fn key(&self) -> String {
        key::account_setting(&self.name, &self.principal_arn)
    }
    fn exists(&self, state: &State) -> bool {
        state
            .account_settings
            .contains_key(&(self.principal_arn.clone(), self.name.clone()))
    }
}

impl Keyed for ServiceRecord {
    fn key(&self) -> String {
        key::service(&self.cluster, &self.name)
    }
    fn exists(&self, state: &State) -> bool {
        state
            .services
            .contains_key(&(self.cluster.clone(), self.name.clone()))
    }
}

/// What installing a record did.
#[derive(Debug, Default)]
pub struct Installed {
    /// The record it replaced.
    pub previous: Option<AnyRecord>,
    /// An instance whose desired task set changed.
    pub woken: Option<String>,
}

macro_rules! records {
    ($($variant:ident($ty:ty) = $prefix:literal, install $install:ident, remove $remove:ident;)*) => {
        /// A record of any kind. Not boxed: a record is moved, never
        /// copied, from decision to store to state.
        #[derive(Debug, Clone, PartialEq)]
        #[allow(clippy::large_enum_variant)]
        pub enum AnyRecord {
            $(
                #[doc = concat!("Stored under `", $prefix, "/`.")]
                $variant($ty),
            )*
        }

        $(
            impl From<$ty> for AnyRecord {
                fn from(r: $ty) -> Self {
                    AnyRecord::$variant(r)
                }
            }
        )*

        impl AnyRecord {
            /// Key prefixes of every kind, in load order.
            pub const PREFIXES: &'static [&'static str] = &[$($prefix),*];

            /// Its store key.
            pub fn key(&self) -> String {
                match self {
                    $(AnyRecord::$variant(r) => r.key(),)*
                }
            }

            /// Whether `state` holds a record under its key.
            pub fn exists(&self, state: &State) -> bool {
                match self {
                    $(AnyRecord::$variant(r) => r.exists(state),)*
                }
            }

            /// The encoded record.
            pub fn encode(&self) -> Result<Vec<u8>> {
                let encoded = match self {
                    $(AnyRecord::$variant(r) => serde_json::to_vec(r),)*
                };
                encoded.map_err(|source| Error::Record { key: self.key(), source })
            }

            /// Decodes the record stored under `key`; `None` for a prefix no
            /// kind claims.
            pub fn decode(key: &str, bytes: &[u8]) -> Result<Option<Self>> {
                let prefix = key.split('/').next().unwrap_or_default();
                let decoded = match prefix {
                    $($prefix => serde_json::from_slice(bytes).map(AnyRecord::$variant),)*
                    _ => return Ok(None),
                };
                decoded
                    .map(Some)
                    .map_err(|source| Error::Record { key: key.to_owned(), source })
            }

            /// Installs it, keeping the derived indexes true.
            pub fn install(self, state: &mut State) -> Installed {
                match self {
                    $(AnyRecord::$variant(r) => state.$install(r),)*
                }
            }

            /// Removes the record stored under this one's key; returns it.
            pub fn remove(&self, state: &mut State) -> Option<AnyRecord> {
                match self {
                    $(AnyRecord::$variant(r) => state.$remove(r).map(AnyRecord::$variant),)*
                }
            }
        }
    };
}

// Load order matters: a task's cluster and instance are installed before it.
records! {
    CapacityProvider(CapacityProviderRecord) = "capacity-provider",
        install install_capacity_provider, remove remove_capacity_provider;
    Cluster(ClusterRecord) = "cluster", install install_cluster, remove remove_cluster;
    TaskDefinition(TaskDefinitionRecord) = "taskdef",
        install install_task_definition, remove remove_task_definition;
    Instance(InstanceRecord) = "instance", install install_instance, remove remove_instance;
    Task(TaskRecord) = "task", install install_task, remove remove_task;
    Token(TokenRecord) = "token", install install_token, remove remove_token;
    Service(ServiceRecord) = "service", install install_service, remove remove_service;
    AccountSetting(AccountSettingRecord) = "account-setting",
        install install_account_setting, remove remove_account_setting;
}

/// One change a decision makes.
#[derive(Debug, Clone)]
pub enum Change {
    /// Store (insert or replace) a record.
    Put(AnyRecord),
    /// Remove the record with this one's key.
    Delete(AnyRecord),
}

/// What to do to undo one installed change.
#[derive(Debug)]
pub enum Undo {
    /// Put this record back.
    Restore(AnyRecord),
    /// Remove the record with this key (it did not exist before).
    Remove(AnyRecord),
}
