//! awsvpc tasks: each gets its own network namespace, held by a pause
//! container the agent builds locally, on the Docker network its first
//! subnet names; the address appears in `attachments` and the containers'
//! `networkInterfaces`, and the task answers on it.

use super::support::{container, container_named, docker_running, inspect, wait_status};
use aws_sdk_ecs::types::{
    AwsVpcConfiguration, NetworkConfiguration, NetworkMode, PortMapping, Task,
};
use berth_tests::TestCluster;
use std::io::Read;
use std::time::Duration;

fn detail<'t>(task: &'t Task, name: &str) -> Option<&'t str> {
    task.attachments()
        .first()?
        .details()
        .iter()
        .find(|d| d.name() == Some(name))
        .and_then(|d| d.value())
}

#[tokio::test]
async fn awsvpc_tasks_get_their_own_address_on_the_subnets_network() {
    let cluster = TestCluster::start(1).await;
    let ecs = &cluster.ecs;
    let docker = &cluster.docker.clone();
    let network = format!(
        "berth-test-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );

    let mut web = container("web", &["echo-server", "8080", "hi-awsvpc"]);
    web.port_mappings = Some(vec![PortMapping::builder().container_port(8080).build()]);
    ecs.register_task_definition()
        .family("vpc")
        .network_mode(NetworkMode::Awsvpc)
        .container_definitions(web)
        .send()
        .await
        .expect("RegisterTaskDefinition");
    let configuration = NetworkConfiguration::builder()
        .awsvpc_configuration(
            AwsVpcConfiguration::builder()
                .subnets(&network)
                .security_groups("sg-homelab")
                .build()
                .expect("awsvpc configuration"),
        )
        .build();
    // Two tasks with the same port on one instance: each has its own address.
    let run = ecs
        .run_task()
        .task_definition("vpc")
        .count(2)
        .network_configuration(configuration)
        .send()
        .await
        .expect("RunTask");
    assert!(run.failures().is_empty(), "{:?}", run.failures());
    assert_eq!(run.tasks().len(), 2);
    let placed = &run.tasks()[0];
    let attachment = &placed.attachments()[0];
    assert_eq!(attachment.r#type(), Some("ElasticNetworkInterface"));
    assert_eq!(attachment.status(), Some("PRECREATED"));
    assert_eq!(detail(placed, "subnetId"), Some(network.as_str()));

    let mut addresses = Vec::new();
    for t in run.tasks() {
        let arn = t.task_arn().expect("arn");
        let task = wait_status(ecs, arn, "RUNNING", Duration::from_secs(60)).await;
        assert_eq!(task.attachments()[0].status(), Some("ATTACHED"), "{task:?}");
        let ip = detail(&task, "privateIPv4Address")
            .expect("address")
            .to_owned();
        assert!(ip.parse::<std::net::Ipv4Addr>().is_ok(), "{ip}");
        assert!(detail(&task, "macAddress").is_some_and(|m| m.len() == 17));
        let web = container_named(&task, "web");
        assert_eq!(
            web.network_interfaces()[0].private_ipv4_address(),
            Some(ip.as_str())
        );
        assert_eq!(
            web.network_interfaces()[0].attachment_id(),
            task.attachments()[0].id()
        );
        // The container shares the pause container's namespace.
        let pause = detail(&task, "networkInterfaceId")
            .expect("pause id")
            .to_owned();
        let info = inspect(docker, web.runtime_id().expect("id")).await;
        assert_eq!(
            info.host_config.and_then(|h| h.network_mode),
            Some(format!("container:{pause}"))
        );
        assert!(docker_running(docker, &pause).await);
        // It answers on the task's own address.
        let text = tokio::task::spawn_blocking({
            let ip = ip.clone();
            move || {
                let deadline = std::time::Instant::now() + Duration::from_secs(10);
                loop {
                    match std::net::TcpStream::connect((ip.as_str(), 8080)) {
                        Ok(mut s) => {
                            let mut text = String::new();
                            s.read_to_string(&mut text).expect("read");
                            return text;
                        }
                        Err(e) if std::time::Instant::now() > deadline => {
                            panic!("{ip}:8080 does not answer: {e}")
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(200)),
                    }
                }
            }
        })
        .await
        .expect("join");
        assert!(text.starts_with("hi-awsvpc"), "{text}");
        addresses.push((arn.to_owned(), ip, pause));
    }
    assert_ne!(addresses[0].1, addresses[1].1);
    let net = docker
        .inspect_network(
            &network,
            None::<bollard::query_parameters::InspectNetworkOptions>,
        )
        .await
        .expect("the agent created the network");
    assert_eq!(
        net.labels
            .unwrap_or_default()
            .get("berth.managed")
            .map(String::as_str),
        Some("true")
    );

    // Stopped: the interface is DELETED and the pause container is gone.
    let (arn, _, pause) = &addresses[0];
    ecs.stop_task().task(arn).send().await.expect("StopTask");
    let stopped = wait_status(ecs, arn, "STOPPED", Duration::from_secs(60)).await;
    assert_eq!(stopped.attachments()[0].status(), Some("DELETED"));
    assert!(!docker_running(docker, pause).await);
    ecs.stop_task()
        .task(&addresses[1].0)
        .send()
        .await
        .expect("StopTask");
    wait_status(ecs, &addresses[1].0, "STOPPED", Duration::from_secs(60)).await;
    drop(cluster); // removes the containers, pause ones included
    let _ = docker.remove_network(&network).await;
}
