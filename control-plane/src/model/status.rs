//! The closed sets of values ECS uses for statuses, launch types,
//! strategies and health, as enums: the domain compares these, never
//! strings. Each serializes as its ECS wire string, so stored records and
//! API shapes read the same as before.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! wire_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $wire:literal),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name {
            $(
                $(#[$vdoc])*
                #[serde(rename = $wire)]
                $variant,
            )*
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            /// The ECS wire string.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $wire,)*
                }
            }

            /// The value a wire string names.
            pub fn parse(s: &str) -> Option<Self> {
                match s {
                    $($wire => Some($name::$variant),)*
                    _ => None,
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

wire_enum! {
    /// The lifecycle of clusters, container instances, services and
    /// capacity providers (each uses the subset ECS gives it).
    Status {
        /// In use.
        Active = "ACTIVE",
        /// Being emptied (instances, services).
        Draining = "DRAINING",
        /// Deleted or deregistered; still describable for a while.
        Inactive = "INACTIVE",
    }
}

wire_enum! {
    /// Where a task runs. Berth places EC2 and EXTERNAL.
    LaunchType {
        /// An EC2 instance (an agent that says so).
        Ec2 = "EC2",
        /// Fargate (not available on Berth).
        Fargate = "FARGATE",
        /// On-premises capacity: Berth's agents.
        External = "EXTERNAL",
        /// ECS Managed Instances (not available on Berth).
        ManagedInstances = "MANAGED_INSTANCES",
    }
}

wire_enum! {
    /// How a service schedules its tasks.
    SchedulingStrategy {
        /// Keep `desiredCount` tasks.
        Replica = "REPLICA",
        /// One task per eligible instance.
        Daemon = "DAEMON",
    }
}

wire_enum! {
    /// A deployment's place in its service.
    DeploymentStatus {
        /// The one being rolled out (or current).
        Primary = "PRIMARY",
        /// An older one whose tasks are being replaced.
        Active = "ACTIVE",
        /// Done with.
        Inactive = "INACTIVE",
    }
}

wire_enum! {
    /// How a deployment's rollout is going.
    RolloutState {
        /// Tasks are being replaced.
        InProgress = "IN_PROGRESS",
        /// Every task of it is healthy, nothing else is left.
        Completed = "COMPLETED",
        /// The circuit breaker stopped it.
        Failed = "FAILED",
    }
}

wire_enum! {
    /// A task's or container's health.
    HealthStatus {
        /// Its checks pass.
        Healthy = "HEALTHY",
        /// Its checks fail.
        Unhealthy = "UNHEALTHY",
        /// No checks, or not yet known.
        Unknown = "UNKNOWN",
    }
}

wire_enum! {
    /// How a task's containers are networked.
    NetworkMode {
        /// Docker's bridge: host ports are mapped.
        Bridge = "bridge",
        /// The host's network: container ports are host ports.
        Host = "host",
        /// An address of the task's own on a Docker network.
        Awsvpc = "awsvpc",
        /// No network.
        None = "none",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_through_their_wire_strings() {
        for s in Status::ALL {
            assert_eq!(Status::parse(s.as_str()), Some(*s));
            assert_eq!(
                serde_json::to_string(s).expect("json"),
                format!("\"{}\"", s.as_str())
            );
        }
        for l in LaunchType::ALL {
            assert_eq!(LaunchType::parse(l.as_str()), Some(*l));
        }
        assert_eq!(
            RolloutState::parse("IN_PROGRESS"),
            Some(RolloutState::InProgress)
        );
        assert_eq!(HealthStatus::parse("healthy"), None);
        assert_eq!(NetworkMode::parse("awsvpc"), Some(NetworkMode::Awsvpc));
    }
}
