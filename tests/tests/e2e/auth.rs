//! Locked doors: signed API requests (SigV4 checked against the credentials
//! file), agents that must present the join token, TLS between agents and
//! the control plane, and a control plane that will not listen beyond
//! loopback unauthenticated.

use super::support::{container, register, run_one, wait_status};
use aws_sdk_ecs::error::ProvideErrorMetadata;
use berth_tests::{
    ACCESS_KEY_ID, AGENT_TOKEN, Agent, ControlPlane, SECRET_ACCESS_KEY, TestCluster, base_headers,
    binary, ecs_client, ecs_client_with_key, raw_request, remove_containers, with_signature,
};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

const TARGET: &str = "AmazonEC2ContainerServiceV20141113.";

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Waits until the log file at `path` contains `text`; returns the log.
async fn log_says(path: &std::path::Path, text: &str, timeout: Duration) -> String {
    berth_tests::eventually(
        timeout,
        &format!("{} to say {text:?}", path.display()),
        || async {
            let log = std::fs::read_to_string(path).unwrap_or_default();
            log.contains(text).then_some(log)
        },
    )
    .await
}

async fn cluster_names(ecs: &aws_sdk_ecs::Client) -> Vec<String> {
    ecs.list_clusters()
        .send()
        .await
        .expect("ListClusters")
        .cluster_arns()
        .iter()
        .map(|a| a.rsplit('/').next().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn api_requests_must_carry_a_valid_signature_from_a_known_key() {
    let cluster = TestCluster::start(0).await;
    let http = cluster.control_plane.http;

    // The SDK signs with the key in the credentials file: accepted.
    cluster
        .ecs
        .create_cluster()
        .cluster_name("signed")
        .send()
        .await
        .expect("a signed request is served");

    // An unknown key and a wrong secret, through the real SDK.
    let e = ecs_client_with_key(http, "AKIDNOTINTHEFILE", SECRET_ACCESS_KEY)
        .create_cluster()
        .cluster_name("stranger")
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("UnrecognizedClientException"), "{e:?}");
    let e = ecs_client_with_key(http, ACCESS_KEY_ID, "a-wrong-secret-0123456789")
        .create_cluster()
        .cluster_name("forger")
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("InvalidSignatureException"), "{e:?}");
    assert!(
        e.message()
            .is_some_and(|m| m.contains("signature we calculated does not match")),
        "{e:?}"
    );

    // Raw requests: unsigned, expired, tampered after signing, and one
    // carrying a session token. Each is refused and executes nothing.
    let body = br#"{"clusterName":"unsigned"}"#;
    let base = base_headers(http, Some(&format!("{TARGET}CreateCluster")), body);
    let (status, headers, text) = raw_request(http, &base, body).await;
    assert_eq!(status, 403, "{text}");
    assert!(
        text.contains("InvalidSignatureException") && text.contains("Missing Authentication Token"),
        "{text}"
    );
    assert_eq!(
        header(&headers, "x-amzn-errortype"),
        Some("InvalidSignatureException")
    );
    assert!(header(&headers, "date").is_some());

    let expired = with_signature(
        base.clone(),
        body,
        ACCESS_KEY_ID,
        SECRET_ACCESS_KEY,
        SystemTime::now() - Duration::from_secs(16 * 60),
    );
    let (status, _, text) = raw_request(http, &expired, body).await;
    assert_eq!(status, 403, "{text}");
    assert!(
        text.contains("InvalidSignatureException") && text.contains("Signature expired"),
        "{text}"
    );
    // 14 minutes of skew is within the window.
    let skewed = with_signature(
        base.clone(),
        body,
        ACCESS_KEY_ID,
        SECRET_ACCESS_KEY,
        SystemTime::now() - Duration::from_secs(14 * 60),
    );
    let (status, _, text) = raw_request(http, &skewed, body).await;
    assert_eq!(status, 200, "{text}");

    let tampered_body = br#"{"clusterName":"tampered"}"#;
    // Signed for one body, sent with another of the same length.
    let tampered = with_signature(
        base.clone(),
        body,
        ACCESS_KEY_ID,
        SECRET_ACCESS_KEY,
        SystemTime::now(),
    );
    assert_eq!(body.len(), tampered_body.len());
    let (status, _, text) = raw_request(http, &tampered, tampered_body).await;
    assert_eq!(status, 403, "{text}");
    assert!(text.contains("InvalidSignatureException"), "{text}");

    let mut with_token = base.clone();
    with_token.push(("x-amz-security-token".into(), "FQoGZXIvYXdz".into()));
    let with_token = with_signature(
        with_token,
        body,
        ACCESS_KEY_ID,
        SECRET_ACCESS_KEY,
        SystemTime::now(),
    );
    let (status, _, text) = raw_request(http, &with_token, body).await;
    assert_eq!(status, 403, "{text}");
    assert!(text.contains("UnrecognizedClientException"), "{text}");

    let names = cluster_names(&cluster.ecs).await;
    for refused in ["stranger", "forger", "tampered"] {
        assert!(
            !names.contains(&refused.to_owned()),
            "{refused} was created: {names:?}"
        );
    }
    assert!(
        names.contains(&"unsigned".to_owned()),
        "the 14-minute request ran"
    );

    // Secrets never reach the log.
    let log = std::fs::read_to_string(cluster.dir().join("control-plane.log")).expect("log");
    assert!(
        log.contains("request not authenticated"),
        "refusals are logged"
    );
    assert!(
        log.contains("AKIDNOTINTHEFILE"),
        "with the access key id they claimed"
    );
    for secret in [SECRET_ACCESS_KEY, AGENT_TOKEN, "a-wrong-secret-0123456789"] {
        assert!(!log.contains(secret), "the log holds a secret");
    }
}

#[tokio::test]
async fn agents_without_the_join_token_are_refused_and_say_why() {
    let mut cluster = TestCluster::start(0).await;
    let wrong = cluster.dir().join("wrong-token");
    std::fs::write(&wrong, "not-the-join-token-0123456789\n").expect("write");
    let log = cluster.dir().join("refused-agent.log");
    let mut refused = Command::new(binary("berth-agent"))
        .arg("--data-dir")
        .arg(cluster.dir().join("refused-agent"))
        .args(["--control-plane", &cluster.control_plane.grpc_url()])
        .args(["--metrics-listen", "off"])
        .arg("--agent-token-file")
        .arg(&wrong)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("start berth-agent");
    let says_why = log_says(
        &log,
        "refused this agent's join token",
        Duration::from_secs(20),
    )
    .await;
    assert!(
        !says_why.contains("not-the-join-token"),
        "the agent logs no token"
    );
    let _ = refused.kill();
    let _ = refused.wait();
    let cp_log = std::fs::read_to_string(cluster.dir().join("control-plane.log")).expect("log");
    assert!(
        cp_log.contains("agent refused: wrong join token"),
        "the control plane logs it"
    );
    assert!(
        cluster_names(&cluster.ecs).await.is_empty(),
        "a refused agent created nothing, not even its cluster"
    );

    // With the token, an agent joins and runs tasks.
    cluster.start_agent(&[]);
    register(
        &cluster.ecs,
        "joined",
        vec![container("app", &["sleep", "30"])],
    )
    .await;
    let task = run_one(&cluster.ecs, "joined").await;
    wait_status(
        &cluster.ecs,
        task.task_arn().expect("arn"),
        "RUNNING",
        Duration::from_secs(60),
    )
    .await;
}

/// A CA and a certificate for 127.0.0.1 signed by it, made with openssl.
fn make_pki(
    dir: &std::path::Path,
    name: &str,
) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl runs");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let (ca_key, ca) = (format!("{name}-ca.key"), format!("{name}-ca.pem"));
    let (key, csr, cert) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.pem"),
    );
    run(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        &ca_key,
        "-out",
        &ca,
        "-days",
        "2",
        "-subj",
        &format!("/CN={name} test CA"),
    ]);
    run(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        &key,
        "-out",
        &csr,
        "-subj",
        "/CN=berth-control-plane",
    ]);
    std::fs::write(
        dir.join("san.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .expect("ext");
    run(&[
        "x509",
        "-req",
        "-in",
        &csr,
        "-CA",
        &ca,
        "-CAkey",
        &ca_key,
        "-CAcreateserial",
        "-out",
        &cert,
        "-days",
        "2",
        "-extfile",
        "san.ext",
    ]);
    (dir.join(ca), dir.join(cert), dir.join(key))
}

#[tokio::test]
async fn agents_reach_a_tls_control_plane_and_verify_it() {
    berth_tests::ensure_test_image();
    let dir = tempfile::tempdir().expect("temp dir");
    let (ca, cert, key) = make_pki(dir.path(), "home");
    let (other_ca, _, _) = make_pki(dir.path(), "other");
    let any: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    let cp = ControlPlane::start_with(
        &dir.path().join("cp"),
        any,
        any,
        &dir.path().join("control-plane.log"),
        &[
            "--tls-cert".into(),
            cert.display().to_string(),
            "--tls-key".into(),
            key.display().to_string(),
        ],
    );
    let url = format!("https://127.0.0.1:{}", cp.grpc.port());
    let args = |ca: &std::path::Path| {
        vec![
            "--control-plane".to_owned(),
            url.clone(),
            "--agent-token-file".to_owned(),
            cp.agent_token_file.display().to_string(),
            "--tls-ca-file".to_owned(),
            ca.display().to_string(),
        ]
    };

    // An agent trusting another CA does not connect, and says so.
    let log = dir.path().join("untrusting.log");
    let mut untrusting = Command::new(binary("berth-agent"))
        .arg("--data-dir")
        .arg(dir.path().join("untrusting"))
        .args(args(&other_ca))
        .args(["--metrics-listen", "off"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("start berth-agent");
    log_says(
        &log,
        "cannot register with the control plane",
        Duration::from_secs(20),
    )
    .await;
    let _ = untrusting.kill();
    let _ = untrusting.wait();

    // Plain HTTP/2 to the TLS port fails too.
    let plain = tonic::transport::Endpoint::from_shared(format!("http://{}", cp.grpc))
        .expect("url")
        .connect_timeout(Duration::from_secs(3));
    let plain_client = plain.connect().await.map(berth_tests::agent_client);
    if let Ok(mut c) = plain_client {
        assert!(
            c.register(berth_proto::agent::v1::RegisterRequest::default())
                .await
                .is_err()
        );
    }

    // The agent trusting the right CA registers and runs a task.
    let agent = Agent::start(
        &dir.path().join("agent"),
        &dir.path().join("agent.log"),
        &args(&ca),
    );
    let ecs = ecs_client(cp.http);
    register(&ecs, "over-tls", vec![container("app", &["sleep", "30"])]).await;
    let task = run_one(&ecs, "over-tls").await;
    let arn = task.task_arn().expect("arn").to_owned();
    wait_status(&ecs, &arn, "RUNNING", Duration::from_secs(60)).await;
    ecs.stop_task().task(&arn).send().await.expect("stop");
    wait_status(&ecs, &arn, "STOPPED", Duration::from_secs(60)).await;
    remove_containers(&format!("berth.container-instance-arn={}", agent.arn));
}

#[tokio::test]
async fn the_control_plane_will_not_listen_beyond_loopback_unauthenticated() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = Command::new(binary("berth-control-plane"))
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--http-listen", "0.0.0.0:0", "--grpc-listen", "127.0.0.1:0"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("credentials-file") && stderr.contains("--insecure"),
        "{stderr}"
    );
}

#[tokio::test]
async fn keys_and_join_tokens_rotate_on_sighup() {
    let mut cluster = TestCluster::start(0).await;
    let http = cluster.control_plane.http;
    let pid = cluster.control_plane.pid().expect("running");
    let hup = || {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGHUP,
        )
        .expect("SIGHUP");
    };
    let new_secret = "rotated-secret-0123456789abcdef";
    std::fs::write(
        &cluster.control_plane.credentials_file,
        format!(
            "[[credentials]]\naccess_key_id = \"ROTATED\"\nsecret_access_key = \"{new_secret}\"\n"
        ),
    )
    .expect("write");
    let new_token = "rotated-join-token-0123456789";
    std::fs::write(
        &cluster.control_plane.agent_token_file,
        format!("{new_token}\n{AGENT_TOKEN}\n"),
    )
    .expect("write");
    hup();
    let rotated = ecs_client_with_key(http, "ROTATED", new_secret);
    berth_tests::eventually(
        Duration::from_secs(10),
        "the new key is accepted",
        || async { rotated.list_clusters().send().await.ok() },
    )
    .await;
    let e = cluster.ecs.list_clusters().send().await.unwrap_err();
    assert_eq!(
        e.code(),
        Some("UnrecognizedClientException"),
        "the old key is gone"
    );

    // A broken file is reported and the keys in force stay.
    std::fs::write(
        &cluster.control_plane.credentials_file,
        "[[credentials]]\nnope\n",
    )
    .expect("write");
    hup();
    log_says(
        &cluster.dir().join("control-plane.log"),
        "kept the previous contents of the credentials file",
        Duration::from_secs(10),
    )
    .await;
    rotated
        .list_clusters()
        .send()
        .await
        .expect("still accepted");

    // Agents with either token of the rotated file join: the harness's
    // token file now starts with the new token; the old one is still listed.
    cluster.start_agent(&[]);
    let old = cluster.dir().join("old-token");
    std::fs::write(&old, format!("{AGENT_TOKEN}\n")).expect("write");
    let veteran = Agent::start(
        &cluster.dir().join("veteran"),
        &cluster.dir().join("veteran.log"),
        &[
            "--control-plane".to_owned(),
            cluster.control_plane.grpc_url(),
            "--agent-token-file".to_owned(),
            old.display().to_string(),
        ],
    );
    let instances = rotated
        .list_container_instances()
        .send()
        .await
        .expect("list");
    assert_eq!(instances.container_instance_arns().len(), 2);

    // Revoking the old token ends the session that presented it, and the
    // agent cannot come back; the agent with the new token stays.
    std::fs::write(
        &cluster.control_plane.agent_token_file,
        format!("{new_token}\n"),
    )
    .expect("write");
    hup();
    let connected = |arn: String| {
        let ecs = rotated.clone();
        async move {
            ecs.describe_container_instances()
                .container_instances(arn)
                .send()
                .await
                .expect("describe")
                .container_instances()[0]
                .agent_connected()
        }
    };
    berth_tests::eventually(
        Duration::from_secs(20),
        "the revoked agent is disconnected",
        || async { (!connected(veteran.arn.clone()).await).then_some(()) },
    )
    .await;
    assert!(
        connected(cluster.agents[0].arn.clone()).await,
        "the other agent stays"
    );
    log_says(
        &cluster.dir().join("veteran.log"),
        "refused this agent's join token",
        Duration::from_secs(40),
    )
    .await;
    drop(veteran);
}
