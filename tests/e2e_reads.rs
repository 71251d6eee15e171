//! What a teardown reads from the Kubernetes API, through the binary: a drop reads neither its
//! object (the cache already shows every write of ours) nor its Secret (unchanged since it was
//! read) again; a rotated Secret is read again, and its new token is the one that drops. Nor
//! does it read the ZillizCluster or ZillizCollection its spec refers to: the caches hold them.

use std::{collections::BTreeMap, path::Path, time::Duration};
use zilliz_devkit::{
    e2e::{Cluster, namespace_yaml, numbered_collections_yaml, require_kubectl, secret_yaml},
    zilliz_fake::ZillizFake,
};

const OPERATOR: &str = env!("CARGO_BIN_EXE_zilliz-operator");
const TOKEN: &str = "reads-key-7c1e";
const ROTATED: &str = "reads-key-rotated-93fa";
const N: usize = 8;

/// The operator's requests (kubectl's are not counted) since `before`, by verb and resource.
fn since(before: &BTreeMap<String, u64>, now: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    now.iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0)))
        .filter(|(_, v)| *v > 0)
        .collect()
}

/// Deletes the collections `coll<i>` for `i` in `which` and waits until they are gone.
async fn delete_and_wait(c: &Cluster, ns: &str, which: std::ops::Range<usize>) {
    let names: Vec<String> = which.map(|i| format!("coll{i}")).collect();
    let args: Vec<&str> = std::iter::once("zcol")
        .chain(names.iter().map(String::as_str))
        .collect();
    c.delete_nowait(ns, &args).await;
    c.wait_gone(ns, &args, Duration::from_secs(60)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drops_read_no_object_and_no_unchanged_secret_again() {
    if !require_kubectl() {
        return;
    }
    let fake = ZillizFake::start(TOKEN).await;
    for i in 0..N {
        fake.add_collection("default", &format!("coll_{i}"), false);
    }
    let mut c = Cluster::start().await;
    // one reconcile at a time, so that no two drops read the Secret at the same moment
    c.start_operator(Path::new(OPERATOR), &["--max-concurrent-reconciles", "1"])
        .await;
    let ns = "reads";
    c.apply(&namespace_yaml(ns)).await;
    c.apply(&secret_yaml(ns, "creds", "apiKey", TOKEN)).await;
    c.apply(&numbered_collections_yaml(
        ns,
        N,
        &fake.uri(),
        Some("apiKey"),
    ))
    .await;
    c.wait_ready(ns, &["zcol", "--all"], Duration::from_secs(60))
        .await;
    // the in-use finalizer on the Secret is a change of it: wait until it is there, so that the
    // deletion starts from a Secret that does not change any more
    c.eventually(
        "the Secret is marked in use",
        Duration::from_secs(20),
        || async {
            c.get_json(&["-n", ns, "get", "secret", "creds"]).await["metadata"]["finalizers"]
                .as_array()
                .is_some_and(|f| f.iter().any(|f| f == "zilliz.io/in-use"))
        },
    )
    .await;

    // half of them: the first drop reads the Secret (changed by the in-use mark), the others not
    let faults = c.server.faults();
    let before = faults.request_counts_from("zilliz-operator");
    delete_and_wait(&c, ns, 0..N / 2).await;
    let reads = since(&before, &faults.request_counts_from("zilliz-operator"));
    println!(
        "requests while {} collections were dropped: {reads:?}",
        N / 2
    );
    for i in 0..N / 2 {
        assert!(!fake.has_collection("default", &format!("coll_{i}")));
    }
    assert_eq!(
        reads.get("get zillizcollections.zilliz.io"),
        None,
        "a drop read its object again: {reads:?}"
    );
    let secret_reads = reads.get("get secrets").copied().unwrap_or(0);
    assert!(
        secret_reads <= 1,
        "{secret_reads} Secret reads for {} drops: {reads:?}",
        N / 2
    );

    // rotate: the fake accepts only the new key, and the Secret holds it; the rotation
    // re-queues the Secret's users, and the first to run reads the new version
    let before = faults.request_counts_from("zilliz-operator");
    let mark = fake.total_calls();
    fake.set_token(ROTATED);
    c.apply(&secret_yaml(ns, "creds", "apiKey", ROTATED)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    delete_and_wait(&c, ns, N / 2..N).await;
    let reads = since(&before, &faults.request_counts_from("zilliz-operator"));
    println!("requests from the rotation to the last drop: {reads:?}");
    for i in 0..N {
        assert!(!fake.has_collection("default", &format!("coll_{i}")));
    }
    // every drop after the rotation carried the new key, as the fake received it, and each
    // collection was dropped by exactly one call that succeeded
    let calls = fake.call_log(mark);
    let key_of = |token: &str| match token {
        ROTATED => "rotated",
        TOKEN => "old",
        _ => "other",
    };
    let drops: Vec<(String, &str, Option<i64>)> = calls
        .iter()
        .filter(|call| call.path == "/v2/vectordb/collections/drop")
        .map(|call| {
            (
                call.body["collectionName"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                key_of(&call.token),
                call.code,
            )
        })
        .collect();
    let mut expected: Vec<(String, &str, Option<i64>)> = (N / 2..N)
        .map(|i| (format!("coll_{i}"), "rotated", Some(0)))
        .collect();
    let mut seen = drops;
    seen.sort();
    expected.sort();
    assert_eq!(
        seen, expected,
        "the drops after the rotation (collection, key the fake received, code)"
    );
    let other: Vec<(&str, &str, u16)> = calls
        .iter()
        .filter(|call| call.token != ROTATED)
        .map(|call| (call.path.as_str(), key_of(&call.token), call.status))
        .collect();
    assert!(
        other.is_empty(),
        "calls after the rotation without the rotated key: {other:?}"
    );
    let secret_reads = reads.get("get secrets").copied().unwrap_or(0);
    assert!(
        (1..=3).contains(&secret_reads),
        "the rotated Secret read {secret_reads} times: {reads:?}"
    );
    let log = c.log();
    assert!(
        !log.contains("DropFailed") && !log.contains(TOKEN) && !log.contains(ROTATED),
        "{}",
        c.log_tail()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drops_through_references_read_no_referenced_object() {
    if !require_kubectl() {
        return;
    }
    let fake = ZillizFake::start(TOKEN).await;
    fake.add_cluster("in01-reads");
    for i in 0..N {
        fake.add_collection("default", &format!("coll_{i}"), false);
        fake.add_partition("default", &format!("coll_{i}"), "y2024", false);
    }
    let mut c = Cluster::start().await;
    c.start_operator(Path::new(OPERATOR), &[]).await;
    let ns = "reads-refs";
    c.apply(&namespace_yaml(ns)).await;
    c.apply(&secret_yaml(ns, "creds", "apiKey", TOKEN)).await;
    let mut yaml = format!(
        r#"apiVersion: zilliz.io/v1alpha1
kind: ZillizCluster
metadata: {{name: analytics, namespace: {ns}}}
spec:
  clusterId: in01-reads
  controlPlane: {{apiVersion: v2, baseUrl: "{}"}}
  credentialsSecretRef: {{name: creds}}
"#,
        fake.uri()
    );
    for i in 0..N {
        yaml.push_str(&format!(
            r#"---
apiVersion: zilliz.io/v1alpha1
kind: ZillizCollection
metadata: {{name: coll{i}, namespace: {ns}}}
spec:
  collectionName: coll_{i}
  clusterRef: {{name: analytics}}
---
apiVersion: zilliz.io/v1alpha1
kind: ZillizPartition
metadata: {{name: part{i}, namespace: {ns}}}
spec:
  partitionName: y2024
  collectionRef: {{name: coll{i}}}
"#
        ));
    }
    c.apply(&yaml).await;
    let ready = Duration::from_secs(60);
    c.wait_ready(ns, &["zc", "--all"], ready).await;
    c.wait_ready(ns, &["zcol", "--all"], ready).await;
    c.wait_ready(ns, &["zpart", "--all"], ready).await;

    // partitions first (they name their collections), then the collections (they name the
    // cluster), which stays: every drop finds its references in the caches
    let faults = c.server.faults();
    let before = faults.request_counts_from("zilliz-operator");
    let parts: Vec<String> = (0..N).map(|i| format!("zpart/part{i}")).collect();
    let colls: Vec<String> = (0..N).map(|i| format!("zcol/coll{i}")).collect();
    for objects in [&parts, &colls] {
        let objects: Vec<&str> = objects.iter().map(String::as_str).collect();
        c.delete_nowait(ns, &objects).await;
        c.wait_gone(ns, &objects, Duration::from_secs(60)).await;
    }
    let reads = since(&before, &faults.request_counts_from("zilliz-operator"));
    println!("requests while {N} partitions and {N} collections were dropped: {reads:?}");
    for i in 0..N {
        let coll = format!("coll_{i}");
        assert!(!fake.has_partition("default", &coll, "y2024"));
        assert!(!fake.has_collection("default", &coll));
    }
    for kind in ["zillizclusters", "zillizcollections", "zillizpartitions"] {
        assert_eq!(
            reads.get(&format!("get {kind}.zilliz.io")),
            None,
            "a drop read a {kind} object: {reads:?}"
        );
    }
}
