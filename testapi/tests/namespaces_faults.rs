//! Namespace termination semantics and fault injection.

mod common;

use common::*;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use kube::api::{DeleteParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::json;
use std::time::{Duration, Instant};

fn cm(name: &str, finalizers: &[&str]) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            finalizers: Some(finalizers.iter().map(|s| s.to_string()).collect()),
            ..Default::default()
        },
        ..Default::default()
    }
}

#[tokio::test]
async fn namespace_termination() {
    let (server, client) = start().await;
    let pp = PostParams::default();
    let nss: Api<Namespace> = Api::all(client.clone());
    assert!(nss.get("default").await.is_ok(), "default namespace exists");
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some("t".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    nss.create(&pp, &ns).await.expect("create ns");
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "t");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "t");
    cms.create(&pp, &cm("held", &["example.com/hold"]))
        .await
        .expect("cm");
    let mut s = Secret::default();
    s.metadata.name = Some("s".into());
    s.string_data = Some([("k".to_string(), "v".to_string())].into());
    let s = secrets.create(&pp, &s).await.expect("secret");
    assert_eq!(
        s.data
            .as_ref()
            .and_then(|d| d.get("k"))
            .map(|b| b.0.clone()),
        Some(b"v".to_vec())
    );
    assert!(s.string_data.is_none(), "stringData folded into data");

    nss.delete("t", &DeleteParams::default())
        .await
        .expect("delete ns");
    let t = nss.get("t").await.expect("still terminating");
    assert!(t.metadata.deletion_timestamp.is_some());
    assert_eq!(
        t.status.and_then(|s| s.phase).as_deref(),
        Some("Terminating")
    );
    // the contents go once the namespace controller ran (asynchronously, as in Kubernetes)
    assert!(
        eventually(Duration::from_secs(10), || async {
            secrets.get("s").await.is_err_and(|e| code(&e) == 404)
        })
        .await,
        "secret deleted by the namespace controller"
    );
    let held = cms.get("held").await.expect("held by finalizer");
    assert!(held.metadata.deletion_timestamp.is_some());

    match cms.create(&pp, &cm("new", &[])).await {
        Err(kube::Error::Api(s)) => {
            assert_eq!((s.code, s.reason.as_str()), (403, "Forbidden"));
            assert!(
                s.message.contains("because it is being terminated"),
                "{}",
                s.message
            );
        }
        other => panic!("expected 403, got {other:?}"),
    }
    // adding a finalizer to an object being deleted is rejected
    let add = cms
        .patch(
            "held",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": ["example.com/hold", "x/new"]}})),
        )
        .await;
    assert_eq!(code(&add.expect_err("no new finalizers")), 422);
    // releasing the last finalizer removes the object, then the namespace
    cms.patch(
        "held",
        &PatchParams::default(),
        &Patch::Json::<()>(
            serde_json::from_value(json!([
                {"op": "remove", "path": "/metadata/finalizers/0"}
            ]))
            .expect("patch"),
        ),
    )
    .await
    .expect("release");
    assert_eq!(code(&cms.get("held").await.expect_err("gone")), 404);
    assert_eq!(code(&nss.get("t").await.expect_err("namespace gone")), 404);
    server.shutdown().await;
}

#[tokio::test]
async fn fault_injection() {
    let (server, client) = start().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(client.clone());
    cms.create(&PostParams::default(), &cm("c", &[]))
        .await
        .expect("create");

    // kube's default client retries 503/429 transparently (kube::Config::default_retry)
    server.faults().fail_next(2, 503);
    assert!(cms.get("c").await.is_ok(), "default client retries 503");
    // a client without retries sees the injected status
    let mut config = kube::Config::new(server.url().parse().expect("url"));
    config.default_retry = false;
    let raw: Api<ConfigMap> =
        Api::default_namespaced(kube::Client::try_from(config).expect("client"));
    assert!(
        raw.get("c").await.is_ok(),
        "failures were consumed by the retries"
    );
    server.faults().fail_next(2, 503);
    assert_eq!(code(&raw.get("c").await.expect_err("503")), 503);
    assert_eq!(code(&raw.get("c").await.expect_err("503 again")), 503);
    assert!(raw.get("c").await.is_ok(), "faults exhausted");
    server.faults().fail_next(1, 429);
    assert_eq!(code(&raw.get("c").await.expect_err("429")), 429);
    server.faults().fail_next(1, 500);
    assert_eq!(
        code(&cms.get("c").await.expect_err("500 is not retried")),
        500
    );

    server.faults().set_latency(Duration::from_millis(300));
    let t = Instant::now();
    cms.get("c").await.expect("slow get");
    assert!(
        t.elapsed() >= Duration::from_millis(300),
        "latency applied: {:?}",
        t.elapsed()
    );
    server.faults().set_latency(Duration::ZERO);

    let counts = server.request_counts();
    assert_eq!(counts.get("create configmaps"), Some(&1));
    assert_eq!(counts.get("get configmaps"), Some(&4), "{counts:?}");
    let _ = cms.get("c").await.map(|c| c.name_any());
    server.shutdown().await;
}
