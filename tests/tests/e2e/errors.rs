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

/// Sends raw bytes; returns the status of the answer (0 if the connection
/// closed without one).
async fn raw_bytes(addr: std::net::SocketAddr, request: &[u8]) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let _ = stream.write_all(request).await;
    let mut raw = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_end(&mut raw),
    )
    .await;
    String::from_utf8_lossy(&raw)
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn header_garbage_gets_4xx_and_the_server_keeps_serving() {
    let cluster = TestCluster::start(0).await;
    let addr = cluster.control_plane.http;
    let target = "AmazonEC2ContainerServiceV20141113.ListClusters";
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "a control character in a header",
            format!("POST / HTTP/1.1\r\nHost: {addr}\r\nX-Amz-Target: {target}\x01\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}").into_bytes(),
        ),
        (
            "bytes that are not UTF-8 in the target",
            [
                format!("POST / HTTP/1.1\r\nHost: {addr}\r\nX-Amz-Target: ").as_bytes(),
                b"\xff\xfe\xc3",
                b"\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
            ]
            .concat(),
        ),
        (
            "a 200 KB header",
            format!("POST / HTTP/1.1\r\nHost: {addr}\r\nX-Junk: {}\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}", "j".repeat(200_000)).into_bytes(),
        ),
        (
            "a Content-Length that is not a number",
            format!("POST / HTTP/1.1\r\nHost: {addr}\r\nX-Amz-Target: {target}\r\nContent-Length: lots\r\nConnection: close\r\n\r\n{{}}").into_bytes(),
        ),
        (
            "a malformed Authorization",
            format!("POST / HTTP/1.1\r\nHost: {addr}\r\nX-Amz-Target: {target}\r\nAuthorization: AWS4-HMAC-SHA256 Credential=\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}").into_bytes(),
        ),
        (
            "a 2 MiB body",
            [
                format!("POST / HTTP/1.1\r\nHost: {addr}\r\nX-Amz-Target: {target}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", 2 << 20).as_bytes(),
                &vec![b' '; 2 << 20],
            ]
            .concat(),
        ),
    ];
    for (what, request) in cases {
        let status = raw_bytes(addr, &request).await;
        assert!((400..500).contains(&status), "{what}: answered {status}");
    }
    cluster
        .ecs
        .list_clusters()
        .send()
        .await
        .expect("still serving");
}
