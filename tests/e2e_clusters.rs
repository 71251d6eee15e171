//! Clusters from spec, through kubectl, the test API server and the real binary against the
//! devkit fake of the Zilliz Cloud control plane: created exactly once (even when the create's
//! answer is lost), waited for until `RUNNING`, a connection Secret written, a collection created
//! in it, resized, suspended and resumed, and everything dropped exactly once.

use serde_json::Value;
use std::{path::Path, time::Duration};
use zilliz_devkit::{
    e2e::{Cluster, eventually, namespace_yaml, require_kubectl, secret_yaml},
    zilliz_fake::{CreateFault, PhaseLength, ZillizFake},
};

const OPERATOR: &str = env!("CARGO_BIN_EXE_zilliz-operator");
const WAIT: Duration = Duration::from_secs(60);
const PROJECT: &str = "proj-0123456789abcdef";

fn cluster_spec(ns: &str, base: &str, extra: &str) -> String {
    format!(
        r#"apiVersion: zilliz.io/v1alpha1
kind: ZillizCluster
metadata: {{name: analytics, namespace: {ns}}}
spec:
  clusterName: analytics
  projectId: {PROJECT}
  regionId: aws-us-west-2
  plan: Standard
  cuType: Performance-optimized
  cuSize: 1
  controlPlane: {{apiVersion: v2, baseUrl: "{base}"}}
  credentialsSecretRef: {{name: creds}}
{extra}"#
    )
}

fn secret_value(secret: &Value, key: &str) -> String {
    let secret: k8s_openapi::api::core::v1::Secret =
        serde_json::from_value(secret.clone()).expect("a Secret");
    secret
        .data
        .and_then(|d| {
            d.get(key)
                .map(|v| String::from_utf8_lossy(&v.0).into_owned())
        })
        .unwrap_or_default()
}

async fn patch(c: &Cluster, ns: &str, obj: &str, json: &str) {
    c.kubectl_ok(&["patch", obj, "-n", ns, "--type=merge", "-p", json])
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_from_spec_lives_its_whole_life_and_is_created_once() {
    if !require_kubectl() {
        return;
    }
    const TOKEN: &str = "cluster-key-3f1d";
    let fake = ZillizFake::start(TOKEN).await;
    // a new cluster shows CREATING to its first 3 describes
    fake.set_create_phase(PhaseLength::describes(3));
    let mut c = Cluster::start().await;
    c.start_operator(Path::new(OPERATOR), &["--resync-interval", "2s"])
        .await;
    let ns = "clusters";
    c.apply(&namespace_yaml(ns)).await;
    c.apply(&secret_yaml(ns, "creds", "apiKey", TOKEN)).await;
    c.apply(&cluster_spec(
        ns,
        &fake.uri(),
        "  writeConnectionSecretToRef: {name: analytics-conn}\n",
    ))
    .await;
    // a collection in it, applied at once: it waits for the cluster to run
    c.apply(&format!(
        r#"apiVersion: zilliz.io/v1alpha1
kind: ZillizCollection
metadata: {{name: articles, namespace: {ns}}}
spec:
  collectionName: articles
  clusterRef: {{name: analytics}}
  quickSetup: {{dimension: 8}}
"#
    ))
    .await;
    c.wait_ready(ns, &["zc/analytics", "zcol/articles"], WAIT)
        .await;

    // exactly one cluster, recorded on the object
    let made = fake.clusters_named(PROJECT, "analytics");
    assert_eq!(made.len(), 1, "{made:?}");
    let id = made[0].cluster_id.clone();
    assert_eq!(fake.calls("POST", "/v2/clusters/createDedicated"), 1);
    let o = c.get_json(&["get", "zc/analytics", "-n", ns]).await;
    assert_eq!(
        o["metadata"]["annotations"]["zilliz.io/cluster-id"], id,
        "{}",
        o["metadata"]
    );
    assert!(
        o["metadata"]["annotations"]
            .get("zilliz.io/create-pending")
            .is_none()
    );
    assert_eq!(o["status"]["clusterId"], id);
    assert_eq!(o["status"]["origin"], "Created");
    assert_eq!(o["status"]["clusterStatus"], "RUNNING");
    // the connection Secret: endpoint, id and the credentials the create answered
    let secret = c
        .get_json(&["get", "secret/analytics-conn", "-n", ns])
        .await;
    assert_eq!(secret_value(&secret, "clusterId"), id);
    assert_eq!(secret_value(&secret, "endpoint"), fake.uri());
    assert!(!secret_value(&secret, "username").is_empty());
    assert!(secret_value(&secret, "password").len() >= 8);
    assert_eq!(
        secret["metadata"]["ownerReferences"][0]["kind"],
        "ZillizCluster"
    );
    // the password is in the Secret and nowhere else
    let password = secret_value(&secret, "password");
    assert!(!c.log().contains(&password), "the log shows the password");
    assert!(!o.to_string().contains(&password));
    // the collection was created in it
    assert!(fake.has_collection("default", "articles"));

    // converged: resyncs make no create and no modify
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(fake.calls("POST", "/v2/clusters/createDedicated"), 1);
    let modify = format!("/v2/clusters/{id}/modify");
    assert_eq!(fake.calls("POST", &modify), 0, "adopting makes no modify");

    // resize in place
    patch(&c, ns, "zc/analytics", r#"{"spec":{"cuSize":2}}"#).await;
    eventually("resized to 2 CU", WAIT, || async {
        fake.cluster(&id).is_some_and(|k| k.cu_size == 2)
    })
    .await;
    c.eventually("status shows 2 CU", WAIT, || async {
        let o = c.get_json(&["get", "zc/analytics", "-n", ns]).await;
        o["status"]["cuSize"] == 2
    })
    .await;
    assert_eq!(fake.calls("POST", &modify), 1, "one modify for one change");

    // suspend, then resume
    patch(
        &c,
        ns,
        "zc/analytics",
        r#"{"spec":{"desiredStatus":"Suspended"}}"#,
    )
    .await;
    c.eventually("suspended and Ready as declared", WAIT, || async {
        let o = c.get_json(&["get", "zc/analytics", "-n", ns]).await;
        o["status"]["clusterStatus"] == "SUSPENDED"
            && o["status"]["conditions"][0]["status"] == "True"
    })
    .await;
    patch(
        &c,
        ns,
        "zc/analytics",
        r#"{"spec":{"desiredStatus":"Running"}}"#,
    )
    .await;
    c.eventually("running again", WAIT, || async {
        let o = c.get_json(&["get", "zc/analytics", "-n", ns]).await;
        o["status"]["clusterStatus"] == "RUNNING"
    })
    .await;
    assert_eq!(fake.calls("POST", &format!("/v2/clusters/{id}/suspend")), 1);
    assert_eq!(fake.calls("POST", &format!("/v2/clusters/{id}/resume")), 1);

    // delete everything: the collection first, then the cluster, each dropped once
    c.kubectl_ok(&[
        "delete",
        "-n",
        ns,
        "zcol/articles",
        "zc/analytics",
        "--timeout=60s",
    ])
    .await;
    assert!(!fake.has_collection("default", "articles"));
    assert_eq!(fake.calls("POST", "/v2/vectordb/collections/drop"), 1);
    assert_eq!(fake.calls("DELETE", &format!("/v2/clusters/{id}/drop")), 1);
    assert_eq!(fake.cluster_status(&id).as_deref(), Some("DELETED"));
    assert_eq!(fake.calls("POST", "/v2/clusters/createDedicated"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_create_answer_leaves_exactly_one_cluster_adopted_by_its_object() {
    if !require_kubectl() {
        return;
    }
    const TOKEN: &str = "cluster-key-8a2e";
    let fake = ZillizFake::start(TOKEN).await;
    // the server creates the cluster, the gateway answers 504; the list lags behind a while
    fake.fault_next_create(CreateFault::GatewayTimeout);
    fake.set_list_lag(2);
    let mut c = Cluster::start().await;
    c.start_operator(Path::new(OPERATOR), &["--resync-interval", "2s"])
        .await;
    let ns = "lost-create";
    c.apply(&namespace_yaml(ns)).await;
    c.apply(&secret_yaml(ns, "creds", "apiKey", TOKEN)).await;
    c.apply(&cluster_spec(ns, &fake.uri(), "")).await;
    c.wait_ready(ns, &["zc/analytics"], WAIT).await;
    let made = fake.clusters_named(PROJECT, "analytics");
    assert_eq!(made.len(), 1, "{made:?}");
    assert_eq!(
        fake.calls("POST", "/v2/clusters/createDedicated"),
        1,
        "no second create after a lost answer"
    );
    let o = c.get_json(&["get", "zc/analytics", "-n", ns]).await;
    assert_eq!(o["status"]["clusterId"], made[0].cluster_id);
    assert_eq!(
        o["metadata"]["annotations"]["zilliz.io/cluster-id"],
        made[0].cluster_id
    );
    c.kubectl_ok(&["delete", "-n", ns, "zc/analytics", "--timeout=60s"])
        .await;
    assert_eq!(
        fake.cluster_status(&made[0].cluster_id).as_deref(),
        Some("DELETED")
    );
}

/// An object deleted while its create's answer is lost and the list does not show the cluster
/// yet: it is never let go as "nothing to drop" (that would leak a paid cluster); once the list
/// shows it, the cluster is dropped and the object goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_deleted_before_its_lost_create_settles_drops_the_cluster_it_made() {
    if !require_kubectl() {
        return;
    }
    const TOKEN: &str = "cluster-key-51c4";
    let fake = ZillizFake::start(TOKEN).await;
    fake.fault_next_create(CreateFault::GatewayTimeout);
    // the list leaves the new cluster out for a long while
    fake.set_list_lag(1_000);
    let mut c = Cluster::start().await;
    c.start_operator(Path::new(OPERATOR), &["--resync-interval", "2s"])
        .await;
    let ns = "lost-then-deleted";
    c.apply(&namespace_yaml(ns)).await;
    c.apply(&secret_yaml(ns, "creds", "apiKey", TOKEN)).await;
    c.apply(&cluster_spec(ns, &fake.uri(), "")).await;
    c.wait_reason(ns, "zc/analytics", "Ready", "Creating", WAIT)
        .await;
    let made = fake.clusters_named(PROJECT, "analytics");
    assert_eq!(made.len(), 1, "{made:?}");
    c.kubectl_ok(&["delete", "-n", ns, "zc/analytics", "--wait=false"])
        .await;
    let o = c
        .wait_reason(ns, "zc/analytics", "Synced", "CreatePending", WAIT)
        .await;
    assert!(o["metadata"]["deletionTimestamp"].is_string());
    // the list catches up: the cluster is found, dropped, and the object goes
    fake.catch_up_lists();
    c.kubectl_ok(&[
        "wait",
        "-n",
        ns,
        "--for=delete",
        "zc/analytics",
        "--timeout=60s",
    ])
    .await;
    let id = &made[0].cluster_id;
    assert_eq!(fake.calls("DELETE", &format!("/v2/clusters/{id}/drop")), 1);
    assert_eq!(fake.calls("POST", "/v2/clusters/createDedicated"), 1);
}

/// The operator killed (SIGKILL) right after sending the create, before its answer: the
/// restarted operator finds the intent recorded, looks the cluster up by name and adopts it;
/// exactly one cluster exists and exactly one create reached the API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_killed_after_sending_the_create_adopts_the_cluster_after_restart() {
    if !require_kubectl() {
        return;
    }
    const TOKEN: &str = "cluster-key-9d07";
    let fake = ZillizFake::start(TOKEN).await;
    // the cluster is made at once; its answer is held back 20 s
    fake.fault_next_create(CreateFault::Delay(Duration::from_secs(20)));
    let mut c = Cluster::start().await;
    c.start_operator(Path::new(OPERATOR), &["--resync-interval", "2s"])
        .await;
    let ns = "killed-create";
    c.apply(&namespace_yaml(ns)).await;
    c.apply(&secret_yaml(ns, "creds", "apiKey", TOKEN)).await;
    c.apply(&cluster_spec(ns, &fake.uri(), "")).await;
    eventually("the create reached the API", WAIT, || async {
        fake.calls("POST", "/v2/clusters/createDedicated") == 1
    })
    .await;
    let pid = c.operator_pid().expect("operator running");
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    c.stop_operator().await;
    let o = c.get_json(&["get", "zc/analytics", "-n", ns]).await;
    assert!(
        o["metadata"]["annotations"]
            .get("zilliz.io/create-pending")
            .is_some(),
        "the intent was recorded before the create: {}",
        o["metadata"]
    );

    c.start_operator(Path::new(OPERATOR), &["--resync-interval", "2s"])
        .await;
    c.wait_ready(ns, &["zc/analytics"], WAIT).await;
    let made = fake.clusters_named(PROJECT, "analytics");
    assert_eq!(made.len(), 1, "{made:?}");
    assert_eq!(fake.calls("POST", "/v2/clusters/createDedicated"), 1);
    let o = c.get_json(&["get", "zc/analytics", "-n", ns]).await;
    assert_eq!(o["status"]["clusterId"], made[0].cluster_id);
    assert_eq!(o["status"]["origin"], "Adopted");
}

/// A cluster still `CREATING` when its object is deleted: the drop is retried while the API
/// refuses it, sent again once it is accepted, and the finalizer goes when the cluster is
/// `DELETED`; the cluster exists once and is dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_deleted_while_creating_is_dropped_once_the_api_accepts() {
    if !require_kubectl() {
        return;
    }
    const TOKEN: &str = "cluster-key-c7b2";
    let fake = ZillizFake::start(TOKEN).await;
    // it stays CREATING for a long while
    fake.set_create_phase(PhaseLength::describes(1_000));
    let mut c = Cluster::start().await;
    c.start_operator(Path::new(OPERATOR), &["--resync-interval", "2s"])
        .await;
    let ns = "deleted-while-creating";
    c.apply(&namespace_yaml(ns)).await;
    c.apply(&secret_yaml(ns, "creds", "apiKey", TOKEN)).await;
    c.apply(&cluster_spec(ns, &fake.uri(), "")).await;
    let o = c
        .wait_reason(ns, "zc/analytics", "Ready", "ClusterNotRunning", WAIT)
        .await;
    let id = o["metadata"]["annotations"]["zilliz.io/cluster-id"]
        .as_str()
        .expect("the id is recorded")
        .to_string();
    assert_eq!(fake.cluster_status(&id).as_deref(), Some("CREATING"));
    // the API refuses the first two drops
    let drop = format!("/v2/clusters/{id}/drop");
    fake.answer_next(
        "DELETE",
        &drop,
        2,
        200,
        serde_json::json!({"code": 80000, "message": "The cluster is being created; try again later."}),
    );
    c.kubectl_ok(&["delete", "-n", ns, "zc/analytics", "--timeout=60s"])
        .await;
    assert_eq!(fake.calls("DELETE", &drop), 3, "two refused, one accepted");
    assert_eq!(fake.cluster_status(&id).as_deref(), Some("DELETED"));
    assert_eq!(fake.clusters_named(PROJECT, "analytics").len(), 1);
}
