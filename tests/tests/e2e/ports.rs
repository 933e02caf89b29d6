//! Port mappings: a published port answers, bindings come back as
//! `networkBindings`, and a static host port that is taken fails the task
//! with Docker's message instead of hanging.

use super::support::{container, container_named, register_and_run, wait_status};
use aws_sdk_ecs::Client;
use aws_sdk_ecs::types::{ContainerDefinition, NetworkMode, PortMapping, TransportProtocol};
use berth_tests::TestCluster;
use std::io::Read;
use std::time::Duration;

fn echo(text: &str, port: i32, host_port: Option<i32>) -> ContainerDefinition {
    let mut c = container("web", &["echo-server", &port.to_string(), text]);
    c.port_mappings = Some(vec![
        PortMapping::builder()
            .container_port(port)
            .set_host_port(host_port)
            .protocol(TransportProtocol::Tcp)
            .build(),
    ]);
    c
}

async fn run(ecs: &Client, family: &str, mode: NetworkMode, c: ContainerDefinition) -> String {
    register_and_run(
        ecs,
        ecs.register_task_definition()
            .family(family)
            .network_mode(mode)
            .container_definitions(c),
    )
    .await
}

/// What the server on `port` says to a new connection (retrying while the
/// container's process comes up).
async fn answer(port: u16) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let attempt = tokio::task::spawn_blocking(move || {
            let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
            s.set_read_timeout(Some(Duration::from_secs(2)))?;
            let mut text = String::new();
            s.read_to_string(&mut text)?;
            Ok::<_, std::io::Error>(text)
        })
        .await
        .expect("join");
        match attempt {
            Ok(text) if !text.is_empty() => return text,
            _ if std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            other => panic!("no answer on port {port}: {other:?}"),
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

#[tokio::test]
async fn published_ports_answer_and_a_taken_static_port_fails_the_task() {
    let cluster = TestCluster::start(1).await;
    let ecs = &cluster.ecs;

    // Bridge, dynamic host port.
    let arn = run(
        ecs,
        "dynamic",
        NetworkMode::Bridge,
        echo("hi-dynamic", 7000, None),
    )
    .await;
    let task = wait_status(ecs, &arn, "RUNNING", Duration::from_secs(60)).await;
    let binding = container_named(&task, "web").network_bindings()[0].clone();
    assert_eq!(binding.container_port(), Some(7000));
    assert_eq!(binding.protocol().map(|p| p.as_str()), Some("tcp"));
    let host_port = binding.host_port().expect("host port");
    assert!(
        host_port > 1024,
        "a dynamic port from the ephemeral range: {host_port}"
    );
    assert!(answer(host_port as u16).await.starts_with("hi-dynamic"));

    // UDP, dynamic host port.
    let mut udp = echo("hi-udp", 7001, None);
    udp.port_mappings = Some(vec![
        PortMapping::builder()
            .container_port(7001)
            .protocol(TransportProtocol::Udp)
            .build(),
    ]);
    let arn = run(ecs, "udp", NetworkMode::Bridge, udp).await;
    let task = wait_status(ecs, &arn, "RUNNING", Duration::from_secs(60)).await;
    let binding = container_named(&task, "web").network_bindings()[0].clone();
    assert_eq!(binding.protocol().map(|p| p.as_str()), Some("udp"));
    let udp_port = binding.host_port().expect("host port") as u16;
    let reply = tokio::task::spawn_blocking(move || {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        socket
            .set_read_timeout(Some(Duration::from_millis(300)))
            .expect("timeout");
        let mut buf = [0u8; 512];
        for _ in 0..30 {
            socket
                .send_to(b"ping", ("127.0.0.1", udp_port))
                .expect("send");
            if let Ok((n, _)) = socket.recv_from(&mut buf) {
                return String::from_utf8_lossy(&buf[..n]).into_owned();
            }
        }
        panic!("no UDP answer on {udp_port}");
    })
    .await
    .expect("join");
    assert_eq!(reply, "hi-udp");

    // Bridge, static host port.
    let port = free_port();
    let arn = run(
        ecs,
        "static",
        NetworkMode::Bridge,
        echo("hi-static", 7000, Some(i32::from(port))),
    )
    .await;
    let task = wait_status(ecs, &arn, "RUNNING", Duration::from_secs(60)).await;
    assert_eq!(
        container_named(&task, "web").network_bindings()[0].host_port(),
        Some(i32::from(port))
    );
    assert!(answer(port).await.starts_with("hi-static"));

    // Host networking: the container port is the host port.
    let port = free_port();
    let arn = run(
        ecs,
        "host",
        NetworkMode::Host,
        echo("hi-host", i32::from(port), None),
    )
    .await;
    let task = wait_status(ecs, &arn, "RUNNING", Duration::from_secs(60)).await;
    assert_eq!(
        container_named(&task, "web").network_bindings()[0].host_port(),
        Some(i32::from(port))
    );
    assert!(answer(port).await.starts_with("hi-host"));

    // A static host port something else on the host holds.
    let holder = std::net::TcpListener::bind("0.0.0.0:0").expect("bind");
    let taken = holder.local_addr().expect("addr").port();
    let arn = run(
        ecs,
        "taken",
        NetworkMode::Bridge,
        echo("never", 7000, Some(i32::from(taken))),
    )
    .await;
    let stopped = wait_status(ecs, &arn, "STOPPED", Duration::from_secs(60)).await;
    assert_eq!(
        stopped.stop_code().map(|c| c.as_str()),
        Some("TaskFailedToStart")
    );
    let reason = stopped.stopped_reason().expect("reason");
    assert!(
        reason.contains("CannotStartContainerError") && reason.contains(&taken.to_string()),
        "{reason}"
    );
    drop(holder);
}
