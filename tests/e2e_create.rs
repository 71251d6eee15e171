//! Declare it and it exists: collections, partitions and indexes are created from their spec
//! when absent, adopted when present (never recreated), and dropped on delete as before —
//! through kubectl, the test API server and the real binary, against a real Milvus 2.3.5 (REST
//! v1, quick setup) and the devkit's v2 fake (custom schema, partitions, indexes).

use serde_json::{Value, json};
use std::{path::Path, time::Duration};
use zilliz_devkit::{
    e2e::{Cluster, namespace_yaml, require_kubectl, secret_yaml},
    milvus,
    zilliz_fake::ZillizFake,
};

const OPERATOR: &str = env!("CARGO_BIN_EXE_zilliz-operator");
const WAIT: Duration = Duration::from_secs(60);

fn connection(endpoint: &str) -> String {
    format!(r#"connection: {{endpoint: "{endpoint}", credentialsSecretRef: {{name: creds}}}}"#)
}

/// A raw v1 describe on the real Milvus: the answer's code and data.
async fn describe_v1(base: &str, name: &str) -> (i64, Value) {
    let url = format!("{base}/v1/vector/collections/describe?collectionName={name}");
    let v: Value = reqwest::get(url)
        .await
        .expect("describe")
        .json()
        .await
        .expect("JSON");
    (v["code"].as_i64().unwrap_or_default(), v["data"].clone())
}

async fn events_of(c: &Cluster, ns: &str, name: &str) -> Vec<String> {
    let list = c.get_json(&["get", "events.events.k8s.io", "-n", ns]).await;
    list["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter(|e| e["regarding"]["name"] == name)
        .map(|e| e["reason"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quick_setup_collection_is_created_on_a_real_milvus_an_existing_one_adopted() {
    if !require_kubectl() {
        return;
    }
    let Some(m) = milvus::Milvus::start(false).await else {
        return;
    };
    // an existing collection, made outside Kubernetes
    let made = reqwest::Client::new()
        .post(format!("{}/v1/vector/collections/create", m.base))
        .json(&json!({"collectionName": "existing", "dimension": 4}))
        .send()
        .await
        .expect("create");
    assert_eq!(made.status(), 200);
    let mut c = Cluster::start().await;
    c.start_operator(Path::new(OPERATOR), &["--resync-interval", "2s"])
        .await;
    let ns = "create-v1";
    c.apply(&namespace_yaml(ns)).await;
    c.apply(&secret_yaml(ns, "creds", "apiKey", milvus::ROOT_TOKEN))
        .await;
    let conn = connection(&m.base);
    c.apply(&format!(
        r#"apiVersion: zilliz.io/v1alpha1
kind: ZillizCollection
metadata: {{name: articles, namespace: {ns}}}
spec:
  collectionName: articles
  apiVersion: v1
  {conn}
  description: news articles
  quickSetup: {{dimension: 8, metricType: COSINE}}
---
apiVersion: zilliz.io/v1alpha1
kind: ZillizCollection
metadata: {{name: existing, namespace: {ns}}}
spec:
  collectionName: existing
  apiVersion: v1
  {conn}
  quickSetup: {{dimension: 4}}
"#
    ))
    .await;
    c.wait_ready(ns, &["zcol/articles", "zcol/existing"], WAIT)
        .await;

    // created by the operator: there, with its dimension, index and load
    let (code, data) = describe_v1(&m.base, "articles").await;
    assert_eq!(code, 200, "{data}");
    let fields = data["fields"].to_string();
    assert!(fields.contains("FloatVector(8)"), "{data}");
    assert_eq!(data["indexes"][0]["metricType"], "COSINE", "{data}");
    // Milvus loads in the background after a quick setup
    zilliz_devkit::e2e::eventually("the created collection loads", WAIT, || async {
        describe_v1(&m.base, "articles").await.1["load"] == "LoadStateLoaded"
    })
    .await;
    let o = c.get_json(&["get", "zcol/articles", "-n", ns]).await;
    assert_eq!(o["status"]["origin"], "Created", "{}", o["status"]);
    // status shows what the server has: its fields and, once loaded, the load state
    assert!(
        o["status"]["observed"]["fields"]
            .to_string()
            .contains("vector: FloatVector(dim=8)"),
        "{}",
        o["status"]
    );
    c.eventually("status shows the collection Loaded", WAIT, || async {
        let o = c.get_json(&["get", "zcol/articles", "-n", ns]).await;
        o["status"]["observed"]["loadState"] == "Loaded"
    })
    .await;
    assert!(
        events_of(&c, ns, "articles")
            .await
            .contains(&"Created".to_string())
    );

    // adopted, never created again (its dimension stays 4)
    let o = c.get_json(&["get", "zcol/existing", "-n", ns]).await;
    assert_eq!(o["status"]["origin"], "Adopted", "{}", o["status"]);
    assert!(
        !events_of(&c, ns, "existing")
            .await
            .contains(&"Created".to_string())
    );
    let (_, data) = describe_v1(&m.base, "existing").await;
    assert!(
        data["fields"].to_string().contains("FloatVector(4)"),
        "{data}"
    );

    // deleted: both dropped
    c.kubectl_ok(&[
        "delete",
        "-n",
        ns,
        "zcol/articles",
        "zcol/existing",
        "--timeout=60s",
    ])
    .await;
    for name in ["articles", "existing"] {
        let (code, data) = describe_v1(&m.base, name).await;
        assert_eq!(code, 100, "{name} should be gone: {data}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_collection_its_partition_and_index_are_created_once_then_dropped() {
    if !require_kubectl() {
        return;
    }
    const TOKEN: &str = "create-key-77a1";
    let fake = ZillizFake::start(TOKEN).await;
    let mut c = Cluster::start().await;
    c.start_operator(Path::new(OPERATOR), &["--resync-interval", "2s"])
        .await;
    let ns = "create-v2";
    c.apply(&namespace_yaml(ns)).await;
    c.apply(&secret_yaml(ns, "creds", "apiKey", TOKEN)).await;
    let conn = connection(&fake.uri());
    // all at once: the partition and the index wait for their collection
    c.apply(&format!(
        r#"apiVersion: zilliz.io/v1alpha1
kind: ZillizPartition
metadata: {{name: y2024, namespace: {ns}}}
spec: {{partitionName: y2024, collectionRef: {{name: articles}}}}
---
apiVersion: zilliz.io/v1alpha1
kind: ZillizIndex
metadata: {{name: vector-idx, namespace: {ns}}}
spec:
  indexName: vector_idx
  collectionRef: {{name: articles}}
  fieldName: vector
  indexType: HNSW
  metricType: COSINE
  params: {{M: "16", efConstruction: "200"}}
---
apiVersion: zilliz.io/v1alpha1
kind: ZillizCollection
metadata: {{name: articles, namespace: {ns}}}
spec:
  collectionName: articles
  {conn}
  schema:
    autoId: false
    enableDynamicField: true
    fields:
      - {{name: id, dataType: Int64, isPrimary: true}}
      - {{name: title, dataType: VarChar, maxLength: 512}}
      - {{name: vector, dataType: FloatVector, dim: 8}}
  params: {{shardsNum: 1, consistencyLevel: Bounded}}
"#
    ))
    .await;
    let all = ["zcol/articles", "zpart/y2024", "zidx/vector-idx"];
    c.wait_ready(ns, &all, WAIT).await;
    let state = fake
        .collection_state("default", "articles")
        .expect("the collection was created");
    assert!(state.partitions.contains(&"y2024".to_string()), "{state:?}");
    assert!(state.indexes.contains_key("vector_idx"), "{state:?}");
    for route in ["collections", "partitions", "indexes"] {
        assert_eq!(
            fake.calls("POST", &format!("/v2/vectordb/{route}/create")),
            1,
            "one create of the {route}"
        );
    }
    // converged: resyncs (every 2 s) read, and create nothing more
    tokio::time::sleep(Duration::from_secs(5)).await;
    for route in ["collections", "partitions", "indexes"] {
        assert_eq!(
            fake.calls("POST", &format!("/v2/vectordb/{route}/create")),
            1,
            "a converged {route} is not created again"
        );
    }
    for obj in all {
        let o = c.get_json(&["get", obj, "-n", ns]).await;
        assert_eq!(o["status"]["origin"], "Created", "{obj}: {}", o["status"]);
    }
    // deleted: the children first, then the collection; nothing left
    let mut args = vec!["delete", "-n", ns, "--timeout=60s"];
    args.extend(all);
    c.kubectl_ok(&args).await;
    assert!(fake.collection_state("default", "articles").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spec_that_does_not_say_how_is_not_found_and_says_which_fields_would_create() {
    if !require_kubectl() {
        return;
    }
    const TOKEN: &str = "create-key-2b9c";
    let fake = ZillizFake::start(TOKEN).await;
    let mut c = Cluster::start().await;
    c.start_operator(Path::new(OPERATOR), &[]).await;
    let ns = "not-creatable";
    c.apply(&namespace_yaml(ns)).await;
    c.apply(&secret_yaml(ns, "creds", "apiKey", TOKEN)).await;
    let conn = connection(&fake.uri());
    c.apply(&format!(
        r#"apiVersion: zilliz.io/v1alpha1
kind: ZillizCollection
metadata: {{name: plain, namespace: {ns}}}
spec: {{collectionName: plain, {conn}}}
---
apiVersion: zilliz.io/v1alpha1
kind: ZillizCollection
metadata: {{name: watched, namespace: {ns}}}
spec:
  collectionName: watched
  {conn}
  quickSetup: {{dimension: 8}}
  managementPolicies: [Observe, Delete]
"#
    ))
    .await;
    for (obj, words) in [
        ("zcol/plain", "quickSetup"),
        ("zcol/watched", "managementPolicies do not include Create"),
    ] {
        let o = c.wait_reason(ns, obj, "Ready", "NotFound", WAIT).await;
        let message = o["status"]["conditions"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"))
            .and_then(|c| c["message"].as_str())
            .unwrap_or_default()
            .to_string();
        assert!(message.contains(words), "{obj}: {message}");
    }
    assert_eq!(fake.calls("POST", "/v2/vectordb/collections/create"), 0);
}

fn ready_message(o: &Value) -> String {
    o["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"))
        .and_then(|c| c["message"].as_str())
        .unwrap_or_default()
        .to_string()
}

/// The whole life on v2: an index is Ready only once built (`TYPE`/`STATE` columns), a
/// collection with `loadState: Loaded` waits for its index (`IndexMissing`) and then loads
/// (`LOAD` column), `ttlSeconds` and `loadState` changes are brought to the server in place,
/// and a collection that exists with another schema is adopted with `SpecMismatch` listing the
/// difference: never dropped, never recreated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_state_ttl_index_build_and_drift_are_kept_in_step_and_reported() {
    if !require_kubectl() {
        return;
    }
    const TOKEN: &str = "update-key-5c0e";
    let fake = ZillizFake::start(TOKEN).await;
    // each new index shows InProgress to its first 3 describes
    fake.set_index_build_describes(3);
    // a collection made outside Kubernetes with dim 8, which the spec below says is 16
    let made = fake.create_collection(json!({"collectionName": "legacy", "schema": {"fields": [
        {"fieldName": "id", "dataType": "Int64", "isPrimary": true},
        {"fieldName": "vector", "dataType": "FloatVector", "elementTypeParams": {"dim": 8}}]}}));
    assert_eq!(made["code"], 0, "{made}");
    let mut c = Cluster::start().await;
    // a slow pace of 16-20 s for what needs someone to act, to see it is used
    c.start_operator(
        Path::new(OPERATOR),
        &["--resync-interval", "2s", "--backoff-cap", "20s"],
    )
    .await;
    let ns = "update-v2";
    c.apply(&namespace_yaml(ns)).await;
    c.apply(&secret_yaml(ns, "creds", "apiKey", TOKEN)).await;
    let conn = connection(&fake.uri());
    let schema = |dim: u32| {
        format!(
            r#"schema:
    fields:
      - {{name: id, dataType: Int64, isPrimary: true}}
      - {{name: vector, dataType: FloatVector, dim: {dim}}}"#
        )
    };
    // the collection first, alone: it cannot load before its index exists
    c.apply(&format!(
        r#"apiVersion: zilliz.io/v1alpha1
kind: ZillizCollection
metadata: {{name: articles, namespace: {ns}}}
spec:
  collectionName: articles
  {conn}
  {}
  loadState: Loaded
---
apiVersion: zilliz.io/v1alpha1
kind: ZillizCollection
metadata: {{name: legacy, namespace: {ns}}}
spec:
  collectionName: legacy
  {conn}
  {}
"#,
        schema(8),
        schema(16)
    ))
    .await;
    let o = c
        .wait_reason(ns, "zcol/articles", "Ready", "IndexMissing", WAIT)
        .await;
    let reconciling = o["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Reconciling"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(reconciling["status"], "True", "{reconciling}");
    assert_eq!(fake.calls("POST", "/v2/vectordb/collections/load"), 0);

    // drift: adopted, reported with each difference, and an Event; nothing destructive
    let o = c
        .wait_reason(ns, "zcol/legacy", "Ready", "SpecMismatch", WAIT)
        .await;
    let message = ready_message(&o);
    assert!(
        message.contains("schema.fields[vector].dim: declared 16, observed 8"),
        "{message}"
    );
    assert_eq!(o["status"]["origin"], "Adopted");
    let stalled = o["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Stalled"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(stalled["status"], "True", "{stalled}");
    zilliz_devkit::e2e::eventually("a SpecMismatch Event", WAIT, || async {
        events_of(&c, ns, "legacy")
            .await
            .contains(&"SpecMismatch".to_string())
    })
    .await;

    // the index: created, building (STATE shows it), then Ready; the collection then loads
    c.apply(&format!(
        r#"apiVersion: zilliz.io/v1alpha1
kind: ZillizIndex
metadata: {{name: vector-idx, namespace: {ns}}}
spec:
  indexName: vector_idx
  collectionRef: {{name: articles}}
  fieldName: vector
  indexType: HNSW
  metricType: COSINE
  params: {{M: "16", efConstruction: "200"}}
"#
    ))
    .await;
    let o = c
        .wait_reason(ns, "zidx/vector-idx", "Ready", "IndexBuilding", WAIT)
        .await;
    assert_eq!(o["status"]["observed"]["indexState"], "InProgress");
    c.wait_ready(ns, &["zidx/vector-idx", "zcol/articles"], WAIT)
        .await;
    // bad input the CRD cannot catch: the server's refusal, as InvalidSpec, no retry storm
    c.apply(&format!(
        r#"apiVersion: zilliz.io/v1alpha1
kind: ZillizIndex
metadata: {{name: typo-idx, namespace: {ns}}}
spec: {{indexName: typo_idx, collectionRef: {{name: articles}}, fieldName: vectr}}
"#
    ))
    .await;
    let o = c
        .wait_reason(ns, "zidx/typo-idx", "Synced", "InvalidSpec", WAIT)
        .await;
    assert!(ready_message(&o).contains("vectr"), "{}", o["status"]);
    let tries = fake.calls("POST", "/v2/vectordb/indexes/create");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        fake.calls("POST", "/v2/vectordb/indexes/create"),
        tries,
        "a refused create is not retried at the resync pace"
    );
    c.kubectl_ok(&["delete", "-n", ns, "zidx/typo-idx", "--timeout=60s"])
        .await;

    let index = c.kubectl_ok(&["get", "zidx/vector-idx", "-n", ns]).await;
    assert!(
        index.contains("TYPE") && index.contains("HNSW") && index.contains("Finished"),
        "{index}"
    );
    let state = fake
        .collection_state("default", "articles")
        .expect("created");
    assert!(state.loaded, "loadState: Loaded loads the collection");
    let listed = c.kubectl_ok(&["get", "zcol", "-n", ns]).await;
    assert!(
        listed.contains("LOAD") && listed.contains("Loaded"),
        "{listed}"
    );

    // ttlSeconds changed: altered in place, shown in status, told by an Event
    c.kubectl_ok(&[
        "patch",
        "zcol/articles",
        "-n",
        ns,
        "--type=merge",
        "-p",
        r#"{"spec":{"params":{"ttlSeconds":3600}}}"#,
    ])
    .await;
    zilliz_devkit::e2e::eventually("ttl altered and observed", WAIT, || async {
        let o = c.get_json(&["get", "zcol/articles", "-n", ns]).await;
        o["status"]["observed"]["ttlSeconds"] == 3600
    })
    .await;
    let state = fake.collection_state("default", "articles").expect("kept");
    assert_eq!(
        state
            .definition
            .properties
            .get("collection.ttl.seconds")
            .map(String::as_str),
        Some("3600")
    );
    assert!(
        events_of(&c, ns, "articles")
            .await
            .contains(&"Updated".to_string())
    );

    // released on request
    c.kubectl_ok(&[
        "patch",
        "zcol/articles",
        "-n",
        ns,
        "--type=merge",
        "-p",
        r#"{"spec":{"loadState":"Released"}}"#,
    ])
    .await;
    zilliz_devkit::e2e::eventually("released", WAIT, || async {
        !fake
            .collection_state("default", "articles")
            .is_some_and(|s| s.loaded)
    })
    .await;

    // converged: resyncs only read
    c.wait_ready(ns, &["zcol/articles"], WAIT).await;
    let mutating = |f: &ZillizFake| {
        ["create", "drop", "load", "release", "alter_properties"]
            .iter()
            .map(|r| f.calls("POST", &format!("/v2/vectordb/collections/{r}")))
            .sum::<usize>()
            + f.calls("POST", "/v2/vectordb/indexes/create")
    };
    let before = mutating(&fake);
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        mutating(&fake),
        before,
        "a converged resync changes nothing"
    );
    // the mismatched collection was never dropped or recreated
    assert_eq!(fake.calls("POST", "/v2/vectordb/collections/drop"), 0);
    assert_eq!(fake.calls("POST", "/v2/vectordb/collections/create"), 1);
    let legacy = fake.collection_state("default", "legacy").expect("kept");
    assert_eq!(
        legacy.definition.fields[1]
            .params
            .get("dim")
            .map(String::as_str),
        Some("8")
    );

    c.kubectl_ok(&[
        "delete",
        "-n",
        ns,
        "zidx/vector-idx",
        "zcol/articles",
        "zcol/legacy",
        "--timeout=60s",
    ])
    .await;
    assert!(fake.collection_state("default", "articles").is_none());
    assert!(fake.collection_state("default", "legacy").is_none());
}
