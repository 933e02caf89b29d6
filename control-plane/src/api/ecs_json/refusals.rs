//! The ECS operations Berth does not serve, each refused with
//! UnsupportedFeatureException and a message that says what to use
//! instead: never a silent success, never a bare "unknown operation" for
//! an operation ECS has. Names not in ECS at all stay
//! UnknownOperationException.

/// `(operation, what to do instead)`.
pub const REFUSED: &[(&str, &str)] = &[
    // Called by the Amazon ECS container agent, not by users.
    ("DiscoverPollEndpoint", AGENT),
    ("RegisterContainerInstance", AGENT),
    ("SubmitTaskStateChange", AGENT),
    ("SubmitContainerStateChange", AGENT),
    ("SubmitAttachmentStateChanges", AGENT),
    (
        "UpdateContainerAgent",
        "UpdateContainerAgent updates the Amazon ECS container agent on an EC2 instance. Berth's agent is berth-agent: upgrade its package or binary on the host and restart the berth-agent service; running tasks keep running.",
    ),
    // Task sets: the EXTERNAL and CODE_DEPLOY deployment controllers.
    ("CreateTaskSet", TASK_SETS),
    ("DeleteTaskSet", TASK_SETS),
    ("DescribeTaskSets", TASK_SETS),
    ("UpdateTaskSet", TASK_SETS),
    ("UpdateServicePrimaryTaskSet", TASK_SETS),
    // Express Mode: Fargate behind an AWS-managed load balancer.
    ("CreateExpressGatewayService", EXPRESS),
    ("DeleteExpressGatewayService", EXPRESS),
    ("DescribeExpressGatewayService", EXPRESS),
    ("UpdateExpressGatewayService", EXPRESS),
    // Managed Instances daemons.
    ("CreateDaemon", DAEMONS),
    ("DeleteDaemon", DAEMONS),
    ("DescribeDaemon", DAEMONS),
    ("UpdateDaemon", DAEMONS),
    ("ListDaemons", DAEMONS),
    ("DescribeDaemonDeployments", DAEMONS),
    ("ListDaemonDeployments", DAEMONS),
    ("DescribeDaemonRevisions", DAEMONS),
    ("RegisterDaemonTaskDefinition", DAEMONS),
    ("DescribeDaemonTaskDefinition", DAEMONS),
    ("ListDaemonTaskDefinitions", DAEMONS),
    ("DeleteDaemonTaskDefinition", DAEMONS),
    // Service deployment and revision objects.
    ("ListServiceDeployments", DEPLOYMENTS),
    ("DescribeServiceDeployments", DEPLOYMENTS),
    ("DescribeServiceRevisions", DEPLOYMENTS),
    ("StopServiceDeployment", DEPLOYMENTS),
    ("ContinueServiceDeployment", DEPLOYMENTS),
    (
        "ListServicesByNamespace",
        "ListServicesByNamespace lists services by Service Connect (Cloud Map) namespace, which Berth does not run. Use ListServices per cluster.",
    ),
    (
        "ExecuteCommand",
        "ExecuteCommand is not available on Berth yet. Until it is, run `docker exec` on the task's host: DescribeTasks shows its container instance and each container's runtimeId.",
    ),
];

const AGENT: &str = "This operation is called by the Amazon ECS container agent, not by users. On Berth, a host joins a cluster and reports its tasks by running berth-agent (see the README's berth-agent section); list hosts with ListContainerInstances.";
const TASK_SETS: &str = "Task sets belong to the EXTERNAL and CODE_DEPLOY deployment controllers, which Berth does not offer. Berth's services use the ECS rolling-update controller: change a service with UpdateService.";
const EXPRESS: &str = "Express Mode services run on AWS Fargate behind an AWS-managed load balancer, which Berth does not have. Run the workload as a service with CreateService.";
const DAEMONS: &str = "ECS Managed Instances daemons are not available on Berth. To run one task on every host, create a service with schedulingStrategy DAEMON (CreateService).";
const DEPLOYMENTS: &str = "Berth does not keep service deployment and revision objects. DescribeServices shows a service's deployments with their rolloutState and counts; roll back with UpdateService to the earlier task definition (a circuit breaker with rollback does it for you).";

/// The refusal of `action`, if it is an ECS operation Berth does not serve.
pub fn refusal(action: &str) -> Option<String> {
    REFUSED
        .iter()
        .find(|(a, _)| *a == action)
        .map(|(a, why)| format!("{a} is not supported on Berth. {why}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_ecs_operation_is_served_or_refused_with_a_reason() {
        // botocore's ECS operations (2014-11-13 model, as installed with
        // the aws CLI this project tests with).
        let botocore = [
            "ContinueServiceDeployment",
            "CreateCapacityProvider",
            "CreateCluster",
            "CreateDaemon",
            "CreateExpressGatewayService",
            "CreateService",
            "CreateTaskSet",
            "DeleteAccountSetting",
            "DeleteAttributes",
            "DeleteCapacityProvider",
            "DeleteCluster",
            "DeleteDaemon",
            "DeleteDaemonTaskDefinition",
            "DeleteExpressGatewayService",
            "DeleteService",
            "DeleteTaskDefinitions",
            "DeleteTaskSet",
            "DeregisterContainerInstance",
            "DeregisterTaskDefinition",
            "DescribeCapacityProviders",
            "DescribeClusters",
            "DescribeContainerInstances",
            "DescribeDaemon",
            "DescribeDaemonDeployments",
            "DescribeDaemonRevisions",
            "DescribeDaemonTaskDefinition",
            "DescribeExpressGatewayService",
            "DescribeServiceDeployments",
            "DescribeServiceRevisions",
            "DescribeServices",
            "DescribeTaskDefinition",
            "DescribeTaskSets",
            "DescribeTasks",
            "DiscoverPollEndpoint",
            "ExecuteCommand",
            "GetTaskProtection",
            "ListAccountSettings",
            "ListAttributes",
            "ListClusters",
            "ListContainerInstances",
            "ListDaemonDeployments",
            "ListDaemonTaskDefinitions",
            "ListDaemons",
            "ListServiceDeployments",
            "ListServices",
            "ListServicesByNamespace",
            "ListTagsForResource",
            "ListTaskDefinitionFamilies",
            "ListTaskDefinitions",
            "ListTasks",
            "PutAccountSetting",
            "PutAccountSettingDefault",
            "PutAttributes",
            "PutClusterCapacityProviders",
            "RegisterContainerInstance",
            "RegisterDaemonTaskDefinition",
            "RegisterTaskDefinition",
            "RunTask",
            "StartTask",
            "StopServiceDeployment",
            "StopTask",
            "SubmitAttachmentStateChanges",
            "SubmitContainerStateChange",
            "SubmitTaskStateChange",
            "TagResource",
            "UntagResource",
            "UpdateCapacityProvider",
            "UpdateCluster",
            "UpdateClusterSettings",
            "UpdateContainerAgent",
            "UpdateContainerInstancesState",
            "UpdateDaemon",
            "UpdateExpressGatewayService",
            "UpdateService",
            "UpdateServicePrimaryTaskSet",
            "UpdateTaskProtection",
            "UpdateTaskSet",
        ];
        for op in botocore {
            let served = super::super::ACTIONS.contains(&op);
            let refused = refusal(op).is_some();
            assert!(
                served != refused,
                "{op}: served {served}, refused {refused}"
            );
        }
        for (op, _) in REFUSED {
            assert!(botocore.contains(op), "{op} is not an ECS operation");
        }
    }
}
