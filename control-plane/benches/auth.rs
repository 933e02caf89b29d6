//! What authentication costs per request: verifying a SigV4 signature as
//! the aws-sdk-rust signs it (six signed headers, a 300-byte body), and a
//! gRPC call's HMAC. `cargo bench -p berth-control-plane --bench auth`.

use berth_control_plane::auth::sigv4::{
    SignedRequest, amz_date, canonical_request, signature, string_to_sign, verify,
};
use berth_control_plane::auth::{Keys, grpc};
use http::{HeaderMap, HeaderValue};
use std::hint::black_box;
use std::time::{Instant, SystemTime};

const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

fn main() {
    let keys = Keys::from_pairs([("AKIDEXAMPLE", SECRET)]);
    let now = SystemTime::now();
    let at = amz_date(now);
    let body = format!(
        r#"{{"cluster":"default","count":1,"taskDefinition":"web","clientToken":"625a9bd0-b94f-43c2-8ca3-853a9df1b883","overrides":{{"containerOverrides":[{{"name":"app","environment":[{{"name":"A","value":"{}"}}]}}]}}}}"#,
        "x".repeat(120)
    );
    let mut headers = HeaderMap::new();
    for (k, v) in [
        ("content-type", "application/x-amz-json-1.1"),
        ("content-length", &body.len().to_string()),
        ("host", "127.0.0.1:7080"),
        ("x-amz-date", &at),
        ("x-amz-target", "AmazonEC2ContainerServiceV20141113.RunTask"),
        (
            "x-amz-user-agent",
            "aws-sdk-rust/1.7.0 ua/2.1 api/ecs/1.157.0 os/linux lang/rust/1.95.0",
        ),
    ] {
        headers.insert(k, HeaderValue::from_str(v).expect("header"));
    }
    let list = "content-length;content-type;host;x-amz-date;x-amz-target;x-amz-user-agent";
    let unsigned = SignedRequest {
        method: "POST",
        path: "/",
        query: "",
        headers: &headers,
        body: body.as_bytes(),
    };
    let canonical = canonical_request(&unsigned, list, &list.split(';').collect::<Vec<_>>())
        .expect("canonical");
    let date = &at[..8];
    let sig = signature(
        SECRET,
        date,
        "us-east-1",
        "ecs",
        &string_to_sign(
            &at,
            &format!("{date}/us-east-1/ecs/aws4_request"),
            &canonical,
        ),
    );
    headers.insert(
        http::header::AUTHORIZATION,
        HeaderValue::from_str(&format!(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/{date}/us-east-1/ecs/aws4_request, SignedHeaders={list}, Signature={sig}"
        ))
        .expect("header"),
    );
    let request = SignedRequest {
        method: "POST",
        path: "/",
        query: "",
        headers: &headers,
        body: body.as_bytes(),
    };
    verify(&keys, &request, now).expect("the signature verifies");

    let rounds = 200_000;
    let t = Instant::now();
    for _ in 0..rounds {
        black_box(verify(&keys, black_box(&request), now).is_ok());
    }
    let sigv4 = t.elapsed() / rounds;

    let path = "/berth.ecs.v1.ECS/RunTask";
    let header = grpc::authorization("AKIDEXAMPLE", SECRET, path, now);
    let t = Instant::now();
    for _ in 0..rounds {
        black_box(grpc::verify(&keys, Some(black_box(&header)), path, now).is_ok());
    }
    let hmac = t.elapsed() / rounds;
    println!(
        "SigV4 verification (RunTask, 6 signed headers, {} B body): {sigv4:?} per request",
        body.len()
    );
    println!("gRPC BERTH-HMAC-SHA256 verification: {hmac:?} per call");
}
