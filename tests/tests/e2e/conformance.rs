//! aws-sdk-ecs against the actions the other modules do not drive:
//! attributes, capacity providers, container-instance state and
//! deregistration, with their typed errors and pagination; and a RunTask
//! the SDK retries after its answer was lost, which must start nothing new.

use super::support::{container, register};
use aws_sdk_ecs::error::ProvideErrorMetadata;
use aws_sdk_ecs::operation::create_capacity_provider::CreateCapacityProviderError;
use aws_sdk_ecs::operation::delete_capacity_provider::DeleteCapacityProviderError;
use aws_sdk_ecs::operation::deregister_container_instance::DeregisterContainerInstanceError;
use aws_sdk_ecs::operation::put_attributes::PutAttributesError;
use aws_sdk_ecs::operation::update_container_instances_state::UpdateContainerInstancesStateError;
use aws_sdk_ecs::types::{Attribute, ContainerInstanceStatus, Tag, TargetType};
use berth_tests::{TestCluster, ecs_client};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn attribute(name: &str, value: &str, target: &str) -> Attribute {
    Attribute::builder()
        .name(name)
        .value(value)
        .target_id(target)
        .build()
        .expect("attribute")
}

#[tokio::test]
async fn attributes_capacity_providers_and_instance_state_through_the_sdk() {
    let cluster = TestCluster::start(1).await;
    let ecs = &cluster.ecs;
    let instance = cluster.agents[0].arn.clone();

    // Attributes: put, list with the paginator, delete; typed errors.
    ecs.put_attributes()
        .attributes(attribute("rack", "r1", &instance))
        .attributes(attribute("disk", "ssd", &instance))
        .attributes(attribute("room", "attic", &instance))
        .send()
        .await
        .expect("PutAttributes");
    let listed: Vec<Attribute> = ecs
        .list_attributes()
        .target_type(TargetType::ContainerInstance)
        .max_results(1)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .expect("ListAttributes pages");
    let mut custom: Vec<&str> = listed
        .iter()
        .map(|a| a.name())
        .filter(|n| ["rack", "disk", "room"].contains(n))
        .collect();
    custom.sort();
    assert_eq!(custom, ["disk", "rack", "room"]);
    let filtered = ecs
        .list_attributes()
        .target_type(TargetType::ContainerInstance)
        .attribute_name("rack")
        .attribute_value("r1")
        .send()
        .await
        .expect("filtered");
    assert_eq!(filtered.attributes().len(), 1);
    ecs.delete_attributes()
        .attributes(attribute("room", "attic", &instance))
        .send()
        .await
        .expect("DeleteAttributes");
    let after = ecs
        .list_attributes()
        .target_type(TargetType::ContainerInstance)
        .attribute_name("room")
        .send()
        .await
        .expect("list");
    assert!(after.attributes().is_empty());
    let err = ecs
        .put_attributes()
        .attributes(attribute(
            "rack",
            "r2",
            &format!(
                "{}/0123456789abcdef0123456789abcdef",
                instance.rsplit_once('/').expect("arn").0
            ),
        ))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(
        matches!(err, PutAttributesError::TargetNotFoundException(_)),
        "{err:?}"
    );
    let mut many = ecs.put_attributes();
    for i in 0..9 {
        many = many.attributes(attribute(&format!("extra{i}"), "x", &instance));
    }
    let err = many.send().await.unwrap_err().into_service_error();
    assert!(
        matches!(err, PutAttributesError::AttributeLimitExceededException(_)),
        "{err:?}"
    );

    // Capacity providers: create, describe page by page, typed errors, delete.
    for name in ["pool-a", "pool-b", "pool-c"] {
        ecs.create_capacity_provider()
            .name(name)
            .tags(Tag::builder().key("owner").value("lab").build())
            .send()
            .await
            .expect("CreateCapacityProvider");
    }
    let err = ecs
        .create_capacity_provider()
        .name("pool-a")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(
        matches!(err, CreateCapacityProviderError::ClientException(_)),
        "{err:?}"
    );
    let mut names = Vec::new();
    let mut token = None;
    loop {
        let page = ecs
            .describe_capacity_providers()
            .max_results(2)
            .set_next_token(token.clone())
            .send()
            .await
            .expect("DescribeCapacityProviders");
        names.extend(
            page.capacity_providers()
                .iter()
                .filter_map(|p| p.name().map(str::to_owned)),
        );
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    for name in ["pool-a", "pool-b", "pool-c"] {
        assert!(names.contains(&name.to_owned()), "{names:?}");
    }
    let missing = ecs
        .describe_capacity_providers()
        .capacity_providers("pool-z")
        .send()
        .await
        .expect("describe");
    assert_eq!(missing.failures()[0].reason(), Some("MISSING"));
    ecs.put_cluster_capacity_providers()
        .cluster("default")
        .capacity_providers("pool-a")
        .default_capacity_provider_strategy(
            aws_sdk_ecs::types::CapacityProviderStrategyItem::builder()
                .capacity_provider("pool-a")
                .weight(1)
                .build()
                .expect("item"),
        )
        .send()
        .await
        .expect("PutClusterCapacityProviders");
    let err = ecs
        .delete_capacity_provider()
        .capacity_provider("pool-a")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(
        matches!(err, DeleteCapacityProviderError::ClientException(_)),
        "in use: {err:?}"
    );
    let deleted = ecs
        .delete_capacity_provider()
        .capacity_provider("pool-b")
        .send()
        .await
        .expect("DeleteCapacityProvider");
    assert_eq!(
        deleted
            .capacity_provider()
            .and_then(|p| p.status())
            .map(|s| s.as_str()),
        Some("INACTIVE")
    );

    // Container instance state and deregistration.
    let err = ecs
        .update_container_instances_state()
        .container_instances(&instance)
        .status(ContainerInstanceStatus::from("PAUSED"))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(
        matches!(
            err,
            UpdateContainerInstancesStateError::InvalidParameterException(_)
        ),
        "{err:?}"
    );
    let draining = ecs
        .update_container_instances_state()
        .container_instances(&instance)
        .status(ContainerInstanceStatus::Draining)
        .send()
        .await
        .expect("DRAINING");
    assert_eq!(draining.container_instances()[0].status(), Some("DRAINING"));
    let err = ecs
        .deregister_container_instance()
        .cluster("nowhere")
        .container_instance(&instance)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(
        matches!(
            err,
            DeregisterContainerInstanceError::ClusterNotFoundException(_)
        ),
        "{err:?}"
    );
    let gone = ecs
        .deregister_container_instance()
        .container_instance(&instance)
        .send()
        .await
        .expect("DeregisterContainerInstance");
    assert_eq!(
        gone.container_instance().and_then(|c| c.status()),
        Some("INACTIVE")
    );
}

/// A proxy in front of the JSON API that forwards the first request and
/// then drops the connection instead of answering (a lost response); later
/// connections pass through. Counts requests forwarded.
async fn lossy_proxy(upstream: SocketAddr) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let forwarded = Arc::new(AtomicUsize::new(0));
    let count = forwarded.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut client, _)) = listener.accept().await else {
                return;
            };
            let first = count.fetch_add(1, Ordering::SeqCst) == 0;
            tokio::spawn(async move {
                let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await else {
                    return;
                };
                if first {
                    // Read one whole request, forward it, wait for the
                    // answer, and hang up without passing it on.
                    let mut request = Vec::new();
                    let mut buf = [0u8; 8192];
                    loop {
                        let Ok(n) = client.read(&mut buf).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        request.extend_from_slice(&buf[..n]);
                        if let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") {
                            let head =
                                String::from_utf8_lossy(&request[..end]).to_ascii_lowercase();
                            let length: usize = head
                                .lines()
                                .find_map(|l| l.strip_prefix("content-length:"))
                                .and_then(|v| v.trim().parse().ok())
                                .unwrap_or(0);
                            if request.len() >= end + 4 + length {
                                break;
                            }
                        }
                    }
                    let _ = server.write_all(&request).await;
                    let _ = server.read(&mut buf).await;
                    drop(client);
                } else {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                }
            });
        }
    });
    (addr, forwarded)
}

#[tokio::test]
async fn a_run_task_retried_after_a_lost_answer_starts_nothing_new() {
    let cluster = TestCluster::start(1).await;
    register(
        &cluster.ecs,
        "retried",
        vec![container("app", &["sleep", "600"])],
    )
    .await;
    let (proxy, connections) = lossy_proxy(cluster.control_plane.http).await;
    // The SDK fills in clientToken itself and keeps it across retries.
    let through_proxy = ecs_client(proxy);
    let out = through_proxy
        .run_task()
        .task_definition("retried")
        .send()
        .await
        .expect("the SDK retries the lost answer");
    assert!(
        connections.load(Ordering::SeqCst) >= 2,
        "the first answer was lost, so the SDK retried"
    );
    assert_eq!(out.tasks().len(), 1);
    let listed = cluster.ecs.list_tasks().send().await.expect("ListTasks");
    assert_eq!(
        listed.task_arns(),
        [out.tasks()[0].task_arn().expect("arn").to_owned()],
        "the retry answered with the task the first attempt started"
    );
    let e = cluster
        .ecs
        .describe_tasks()
        .tasks("x")
        .cluster("nowhere")
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("ClusterNotFoundException"));
}
