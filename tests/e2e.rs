//! End to end on one machine: the test Kubernetes API server, the real `zilliz-operator`
//! binary, kubectl, a real Milvus 2.3.5 (v1 data plane) and an HTTP fake of the Zilliz control
//! plane and v2 data plane answering with the recorded real bodies.

use serde_json::{Value, json};
use std::{path::Path, time::Duration};
use zilliz_devkit::{
    e2e::{Cluster, event_reasons_of, namespace_yaml, require_kubectl, secret_yaml},
    milvus,
    zilliz_fake::ZillizFake,
};

const OPERATOR: &str = env!("CARGO_BIN_EXE_zilliz-operator");

const TOKEN: &str = "e2e-api-key-7f3a9c";
const WAIT: Duration = Duration::from_secs(60);

fn cluster_yaml(ns: &str, name: &str, id: &str, fake: &str, policy: &str) -> String {
    format!(
        r#"apiVersion: zilliz.io/v1alpha1
kind: ZillizCluster
metadata: {{name: {name}, namespace: {ns}}}
spec:
  clusterId: {id}
  controlPlane: {{apiVersion: v2, baseUrl: "{fake}"}}
  credentialsSecretRef: {{name: zilliz-credentials}}
  deletionPolicy: {policy}
"#
    )
}

fn collection_by_ref_yaml(ns: &str, name: &str, coll: &str, cluster: &str, policy: &str) -> String {
    format!(
        r#"apiVersion: zilliz.io/v1alpha1
kind: ZillizCollection
metadata: {{name: {name}, namespace: {ns}}}
spec:
  collectionName: {coll}
  clusterRef: {{name: {cluster}}}
  deletionPolicy: {policy}
"#
    )
}

fn children_yaml(ns: &str, coll_obj: &str) -> String {
    format!(
        r#"apiVersion: zilliz.io/v1alpha1
kind: ZillizPartition
metadata: {{name: articles-2024, namespace: {ns}}}
spec:
  partitionName: y2024
  collectionRef: {{name: {coll_obj}}}
---
apiVersion: zilliz.io/v1alpha1
kind: ZillizIndex
metadata: {{name: articles-vector, namespace: {ns}}}
spec:
  indexName: vector_idx
  collectionRef: {{name: {coll_obj}}}
"#
    )
}

async fn delete_and_wait(c: &Cluster, ns: &str, objects: &[&str]) {
    c.delete_nowait(ns, objects).await;
    c.wait_gone(ns, objects, Duration::from_secs(60)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_four_kinds_are_dropped_exactly_once_through_kubectl() {
    if !require_kubectl() {
        return;
    }
    let fake = ZillizFake::start(TOKEN).await;
    fake.add_cluster("in01-e2e");
    fake.add_collection("default", "articles", false);
    fake.add_partition("default", "articles", "y2024", true);
    fake.add_index("default", "articles", "vector_idx");
    let Some(milvus) = milvus::Milvus::start(false).await else {
        return;
    };
    // a real collection on the real Milvus (v1)
    let created: Value = reqwest::Client::new()
        .post(format!("{}/v1/vector/collections/create", milvus.base))
        .json(&json!({"collectionName": "docs", "dimension": 4}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(created["code"], 200, "{created}");

    let mut c = Cluster::start().await;
    c.start_operator(Path::new(OPERATOR), &[]).await;
    let ns = "e2e";
    c.apply(&namespace_yaml(ns)).await;
    c.apply(&secret_yaml(ns, "zilliz-credentials", "apiKey", TOKEN))
        .await;
    c.apply(&secret_yaml(
        ns,
        "milvus-credentials",
        "token",
        "root:Milvus",
    ))
    .await;
    c.apply(&cluster_yaml(
        ns,
        "analytics",
        "in01-e2e",
        &fake.uri(),
        "Delete",
    ))
    .await;
    c.apply(&collection_by_ref_yaml(
        ns,
        "articles",
        "articles",
        "analytics",
        "Delete",
    ))
    .await;
    c.apply(&children_yaml(ns, "articles")).await;
    c.apply(&format!(
        r#"apiVersion: zilliz.io/v1alpha1
kind: ZillizCollection
metadata: {{name: docs, namespace: {ns}}}
spec:
  collectionName: docs
  apiVersion: v1
  connection:
    endpoint: "{}"
    credentialsSecretRef: {{name: milvus-credentials, key: token}}
"#,
        milvus.base
    ))
    .await;

    let all = [
        "zc/analytics",
        "zcol/articles",
        "zpart/articles-2024",
        "zidx/articles-vector",
        "zcol/docs",
    ];
    c.wait_ready(ns, &all, Duration::from_secs(60)).await;
    let table = c.kubectl_ok(&["get", "zc,zcol,zpart,zidx", "-n", ns]).await;
    assert!(
        table.contains("in01-e2e") && table.contains("ReconcileSuccess"),
        "{table}"
    );
    let listed = c.get_json(&["get", "zc,zcol,zpart,zidx", "-n", ns]).await;
    for item in listed["items"].as_array().unwrap() {
        assert_eq!(
            item["metadata"]["finalizers"],
            json!(["zilliz.io/finalizer"]),
            "{}",
            item["metadata"]["name"]
        );
    }
    let cluster = c.get_json(&["get", "zc/analytics", "-n", ns]).await;
    assert_eq!(cluster["status"]["endpoint"], fake.uri());
    assert_eq!(cluster["status"]["clusterStatus"], "RUNNING");

    // children first, then the collections, then the cluster
    delete_and_wait(&c, ns, &["zpart/articles-2024", "zidx/articles-vector"]).await;
    assert_eq!(fake.calls("POST", "/v2/vectordb/partitions/release"), 1);
    assert_eq!(fake.calls("POST", "/v2/vectordb/partitions/drop"), 1);
    assert_eq!(fake.calls("POST", "/v2/vectordb/indexes/drop"), 1);
    assert!(!fake.has_partition("default", "articles", "y2024"));
    assert!(!fake.has_index("default", "articles", "vector_idx"));

    delete_and_wait(&c, ns, &["zcol/articles", "zcol/docs"]).await;
    assert_eq!(fake.calls("POST", "/v2/vectordb/collections/drop"), 1);
    assert!(!fake.has_collection("default", "articles"));
    let listed: Value = reqwest::get(format!("{}/v1/vector/collections", milvus.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        !listed["data"].as_array().unwrap().contains(&json!("docs")),
        "docs still on Milvus: {listed}"
    );

    delete_and_wait(&c, ns, &["zc/analytics"]).await;
    assert_eq!(fake.calls("DELETE", "/v2/clusters/in01-e2e/drop"), 1);
    assert_eq!(fake.cluster_status("in01-e2e").as_deref(), Some("DELETED"));

    let events = c.get_json(&["get", "events.events.k8s.io", "-n", ns]).await;
    let reasons = event_reasons_of(&events);
    assert_eq!(
        reasons.iter().filter(|r| *r == "Dropped").count(),
        5,
        "{reasons:?}"
    );
    assert!(reasons.contains(&"DropAccepted".to_string()), "{reasons:?}");
    // the token never reaches logs or Events
    c.stop_operator().await;
    let log = c.log();
    assert!(!log.contains(TOKEN), "token in the operator log");
    assert!(!events.to_string().contains(TOKEN), "token in Events");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphan_outage_and_terminal_errors() {
    if !require_kubectl() {
        return;
    }
    let fake = ZillizFake::start(TOKEN).await;
    fake.add_cluster("in01-x");
    for name in ["kept", "flaky", "locked"] {
        fake.add_collection("default", name, false);
    }
    let mut c = Cluster::start().await;
    c.start_operator(Path::new(OPERATOR), &[]).await;
    let ns = "faults";
    c.apply(&namespace_yaml(ns)).await;
    c.apply(&secret_yaml(ns, "zilliz-credentials", "apiKey", TOKEN))
        .await;
    c.apply(&cluster_yaml(ns, "z", "in01-x", &fake.uri(), "Orphan"))
        .await;
    c.apply(&collection_by_ref_yaml(ns, "kept", "kept", "z", "Orphan"))
        .await;
    c.apply(&collection_by_ref_yaml(ns, "flaky", "flaky", "z", "Delete"))
        .await;
    c.wait_ready(
        ns,
        &["zc/z", "zcol/kept", "zcol/flaky"],
        Duration::from_secs(60),
    )
    .await;

    // Orphan: the object goes, the collection stays, no drop call
    delete_and_wait(&c, ns, &["zcol/kept"]).await;
    assert!(fake.has_collection("default", "kept"));
    assert_eq!(fake.calls("POST", "/v2/vectordb/collections/drop"), 0);

    // a transient outage (every call 503 with HTML) is retried until it clears
    fake.outage(5);
    delete_and_wait(&c, ns, &["zcol/flaky"]).await;
    assert_eq!(fake.outage_left(), 0);
    assert!(!fake.has_collection("default", "flaky"));
    assert!(fake.calls("POST", "/v2/vectordb/collections/drop") >= 2);

    // a terminal error (wrong credentials) shows DropFailed, and clears once the Secret is fixed
    c.apply(&secret_yaml(ns, "other-credentials", "apiKey", "wrong-key"))
        .await;
    c.apply(&format!(
        r#"apiVersion: zilliz.io/v1alpha1
kind: ZillizCollection
metadata: {{name: locked, namespace: {ns}}}
spec:
  collectionName: locked
  connection:
    endpoint: "{}"
    credentialsSecretRef: {{name: other-credentials}}
"#,
        fake.uri()
    ))
    .await;
    c.eventually("locked observed as Unauthorized", WAIT, || async {
        let o = c.get_json(&["get", "zcol/locked", "-n", ns]).await;
        o["status"]["conditions"][0]["reason"] == "Unauthorized"
    })
    .await;
    c.kubectl_ok(&["delete", "--wait=false", "-n", ns, "zcol/locked"])
        .await;
    c.eventually("DropFailed in kubectl get", WAIT, || async {
        c.kubectl_ok(&["get", "zcol/locked", "-n", ns])
            .await
            .contains("DropFailed")
    })
    .await;
    let o = c.get_json(&["get", "zcol/locked", "-n", ns]).await;
    assert!(
        o["status"]["deletion"]["lastError"]
            .as_str()
            .unwrap()
            .contains("1800")
    );
    assert!(fake.has_collection("default", "locked"));
    c.apply(&secret_yaml(ns, "other-credentials", "apiKey", TOKEN))
        .await;
    c.kubectl_ok(&[
        "wait",
        "--for=delete",
        "--timeout=20s",
        "-n",
        ns,
        "zcol/locked",
    ])
    .await;
    assert!(!fake.has_collection("default", "locked"));

    // the Orphan cluster is kept
    delete_and_wait(&c, ns, &["zc/z"]).await;
    assert_eq!(fake.calls("DELETE", "/v2/clusters/in01-x/drop"), 0);
    let reasons = c.event_reasons(ns).await;
    assert_eq!(
        reasons.iter().filter(|r| *r == "Orphaned").count(),
        2,
        "{reasons:?}"
    );
    assert!(reasons.contains(&"DropFailed".to_string()), "{reasons:?}");
}
