//! Never drop what someone else still uses: two live objects naming the same external resource.

use std::{path::Path, time::Duration};
use zilliz_devkit::{
    e2e::{Cluster, collection_yaml, namespace_yaml, require_kubectl, secret_yaml},
    zilliz_fake::ZillizFake,
};

const OPERATOR: &str = env!("CARGO_BIN_EXE_zilliz-operator");
const TOKEN: &str = "conflict-key-93e1";
const DROP: &str = "/v2/vectordb/collections/drop";

fn collection(ns: &str, name: &str, fake: &str) -> String {
    collection_yaml(ns, name, "shared", fake, None)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_resource_is_dropped_only_by_its_last_user() {
    if !require_kubectl() {
        return;
    }
    let fake = ZillizFake::start(TOKEN).await;
    fake.add_collection("default", "shared", false);
    let mut c = Cluster::start().await;
    c.start_operator(Path::new(OPERATOR), &[]).await;
    let uri = fake.uri();
    for ns in ["team-a", "team-b"] {
        c.apply(&namespace_yaml(ns)).await;
        c.apply(&secret_yaml(ns, "creds", "apiKey", TOKEN)).await;
    }
    c.apply(&collection("team-a", "first", &uri)).await;
    c.kubectl_ok(&[
        "wait",
        "--for=condition=Ready",
        "--timeout=30s",
        "-n",
        "team-a",
        "zcol/first",
    ])
    .await;
    // created later, in another namespace, naming the same collection: Conflict
    tokio::time::sleep(Duration::from_millis(1100)).await;
    c.apply(&collection("team-b", "second", &uri)).await;
    c.eventually(
        "the second object reports Conflict",
        Duration::from_secs(30),
        || async {
            let o = c.get_json(&["get", "zcol/second", "-n", "team-b"]).await;
            o["status"]["conditions"][0]["reason"] == "Conflict"
        },
    )
    .await;
    let o = c.get_json(&["get", "zcol/second", "-n", "team-b"]).await;
    let message = o["status"]["conditions"][0]["message"].as_str().unwrap();
    assert!(message.contains("team-a/first"), "{message}");
    // told by a Warning Event too, once
    c.eventually("a Conflict Event", Duration::from_secs(30), || async {
        c.event_reasons("team-b")
            .await
            .contains(&"Conflict".to_string())
    })
    .await;

    // deleting the younger one while the older lives: no drop
    c.kubectl_ok(&["delete", "-n", "team-b", "zcol/second", "--timeout=30s"])
        .await;
    assert_eq!(fake.calls("POST", DROP), 0);
    assert!(fake.has_collection("default", "shared"));
    assert!(
        c.event_reasons("team-b")
            .await
            .contains(&"KeptShared".to_string())
    );

    // again, and this time the older one goes first: still no drop
    c.apply(&collection("team-b", "second", &uri)).await;
    c.eventually(
        "the new object carries the finalizer",
        Duration::from_secs(30),
        || async {
            let o = c.get_json(&["get", "zcol/second", "-n", "team-b"]).await;
            o["metadata"]["finalizers"][0] == "zilliz.io/finalizer"
        },
    )
    .await;
    c.kubectl_ok(&["delete", "-n", "team-a", "zcol/first", "--timeout=30s"])
        .await;
    assert_eq!(fake.calls("POST", DROP), 0);
    assert!(fake.has_collection("default", "shared"));
    assert!(
        c.event_reasons("team-a")
            .await
            .contains(&"KeptShared".to_string())
    );

    // the last user drops it, exactly once
    c.kubectl_ok(&["delete", "-n", "team-b", "zcol/second", "--timeout=30s"])
        .await;
    assert_eq!(fake.calls("POST", DROP), 1);
    assert!(!fake.has_collection("default", "shared"));
}
