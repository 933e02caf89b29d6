//! Bad input gets the right ECS error, with a message that says what to
//! fix, and changes nothing.

use super::support::{container, register};
use aws_sdk_ecs::error::ProvideErrorMetadata;
use aws_sdk_ecs::operation::run_task::RunTaskError;
use berth_tests::TestCluster;
use berth_tests::raw_post;

#[tokio::test]
async fn bad_requests_get_ecs_errors() {
    let cluster = TestCluster::start(1).await;
    let ecs = &cluster.ecs;
    let addr = cluster.control_plane.http;
    register(ecs, "ok", vec![container("app", &["sleep", "1"])]).await;

    // Malformed JSON.
    let (status, headers, body) = raw_post(
        addr,
        Some("AmazonEC2ContainerServiceV20141113.RunTask"),
        b"{\"taskDefinition\": ",
    )
    .await;
    assert_eq!(status, 400);
    let v: serde_json::Value = serde_json::from_str(&body).expect("a JSON error body");
    assert_eq!(v["__type"], "SerializationException");
    assert!(
        headers
            .iter()
            .any(|(k, v)| k == "x-amzn-errortype" && v == "SerializationException")
    );
    assert!(headers.iter().any(|(k, _)| k == "x-amzn-requestid"));
    assert!(headers.iter().any(|(k, _)| k == "date"));

    // A member of the wrong type names the member.
    let (status, _, body) = raw_post(
        addr,
        Some("AmazonEC2ContainerServiceV20141113.RunTask"),
        br#"{"taskDefinition":"ok","count":"2"}"#,
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body.contains("SerializationException") && body.contains("count"),
        "{body}"
    );

    // Unknown operation, and no target at all.
    let (status, _, body) = raw_post(
        addr,
        Some("AmazonEC2ContainerServiceV20141113.LaunchRockets"),
        b"{}",
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body.contains("UnknownOperationException") && body.contains("LaunchRockets"),
        "{body}"
    );
    let (status, _, body) = raw_post(addr, None, b"{}").await;
    assert_eq!(status, 400);
    assert!(body.contains("UnknownOperationException"), "{body}");

    // An empty body is `{}`: ListClusters needs nothing.
    let (status, _, body) = raw_post(
        addr,
        Some("AmazonEC2ContainerServiceV20141113.ListClusters"),
        b"",
    )
    .await;
    assert_eq!(status, 200, "{body}");

    // Missing required member.
    let (status, _, body) = raw_post(
        addr,
        Some("AmazonEC2ContainerServiceV20141113.RunTask"),
        b"{}",
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body.contains("InvalidParameterException") && body.contains("taskDefinition"),
        "{body}"
    );

    // Unknown cluster.
    let err = ecs
        .run_task()
        .cluster("nope")
        .task_definition("ok")
        .send()
        .await
        .unwrap_err();
    let err = err.into_service_error();
    assert!(
        matches!(err, RunTaskError::ClusterNotFoundException(_)),
        "{err:?}"
    );
    assert!(err.message().unwrap_or_default().contains("nope"));

    // Unknown task definition.
    let err = ecs
        .run_task()
        .task_definition("missing:3")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(matches!(err, RunTaskError::ClientException(_)), "{err:?}");
    assert!(err.message().unwrap_or_default().contains("missing:3"));

    // count outside 1-10.
    for count in [0, 11] {
        let err = ecs
            .run_task()
            .task_definition("ok")
            .count(count)
            .send()
            .await
            .unwrap_err()
            .into_service_error();
        assert!(
            matches!(err, RunTaskError::InvalidParameterException(_)),
            "{err:?}"
        );
        assert!(
            err.message()
                .unwrap_or_default()
                .contains("between 1 and 10")
        );
    }

    // An INACTIVE revision named explicitly.
    ecs.deregister_task_definition()
        .task_definition("ok:1")
        .send()
        .await
        .expect("Deregister");
    let err = ecs
        .run_task()
        .task_definition("ok:1")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(
        matches!(err, RunTaskError::InvalidParameterException(_)),
        "{err:?}"
    );
    assert!(err.message().unwrap_or_default().contains("inactive"));

    // A bad task definition is refused as ECS does.
    let err = ecs
        .register_task_definition()
        .family("bad family")
        .container_definitions(container("app", &["sleep", "1"]))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("ClientException"));

    // Nothing of the above left a task behind.
    for status in ["RUNNING", "STOPPED"] {
        let listed = ecs
            .list_tasks()
            .desired_status(status.into())
            .send()
            .await
            .expect("ListTasks");
        assert!(
            listed.task_arns().is_empty(),
            "{status}: {:?}",
            listed.task_arns()
        );
    }
    let families = ecs
        .list_task_definition_families()
        .send()
        .await
        .expect("families");
    assert_eq!(families.families(), ["ok"]);
}
