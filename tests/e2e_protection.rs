//! What keeps a resource. Deletion protection: an object annotated `zilliz.io/deletion-protection: "true"` is never
//! dropped; deleting it keeps the finalizer with `Synced=False`/`DeletionProtected` until the
//! annotation goes (then it is dropped) or the policy becomes Orphan (then it goes, kept). A
//! read-only object (`managementPolicies: [Observe]`) is let go without a drop.

use std::{path::Path, time::Duration};
use zilliz_devkit::{
    e2e::{Cluster, collection_yaml, namespace_yaml, require_kubectl, secret_yaml},
    zilliz_fake::ZillizFake,
};

const OPERATOR: &str = env!("CARGO_BIN_EXE_zilliz-operator");
const TOKEN: &str = "protection-key-5e1a";
const DROP: &str = "/v2/vectordb/collections/drop";
const WAIT: Duration = Duration::from_secs(30);

fn protected(ns: &str, name: &str, collection: &str, fake: &str) -> String {
    collection_yaml(ns, name, collection, fake, None).replacen(
        &format!("metadata: {{name: {name}, namespace: {ns}}}"),
        &format!(
            "metadata: {{name: {name}, namespace: {ns}, annotations: {{zilliz.io/deletion-protection: \"true\"}}}}"
        ),
        1,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_protected_object_is_never_dropped_until_the_annotation_goes() {
    if !require_kubectl() {
        return;
    }
    let fake = ZillizFake::start(TOKEN).await;
    fake.add_collection("default", "kept", false);
    fake.add_collection("default", "later", false);
    let mut c = Cluster::start().await;
    c.start_operator(Path::new(OPERATOR), &[]).await;
    let ns = "protected";
    c.apply(&namespace_yaml(ns)).await;
    c.apply(&secret_yaml(ns, "creds", "apiKey", TOKEN)).await;
    let uri = fake.uri();
    let yaml = protected(ns, "kept", "kept", &uri);
    assert!(yaml.contains("deletion-protection"), "{yaml}");
    c.apply(&yaml).await;
    c.apply(&protected(ns, "later", "later", &uri)).await;
    c.wait_ready(ns, &["zcol/kept", "zcol/later"], WAIT).await;

    // deleted while protected: the finalizer stays, the condition and one Warning say why
    c.delete_nowait(ns, &["zcol/kept", "zcol/later"]).await;
    for obj in ["zcol/kept", "zcol/later"] {
        let o = c
            .wait_reason(ns, obj, "Synced", "DeletionProtected", WAIT)
            .await;
        let message = o["status"]["conditions"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["type"] == "Synced"))
            .and_then(|c| c["message"].as_str())
            .unwrap_or_default()
            .to_string();
        assert!(
            message.contains("Remove the annotation") && message.contains("Orphan"),
            "{message}"
        );
        assert_eq!(o["metadata"]["finalizers"][0], "zilliz.io/finalizer");
    }
    let reasons = c.event_reasons(ns).await;
    assert_eq!(
        reasons.iter().filter(|r| *r == "DeletionProtected").count(),
        2,
        "one Warning per object: {reasons:?}"
    );
    assert_eq!(fake.calls("POST", DROP), 0, "nothing is dropped");

    // the annotation goes: dropped, once
    c.kubectl_ok(&[
        "annotate",
        "-n",
        ns,
        "zcol/kept",
        "zilliz.io/deletion-protection-",
    ])
    .await;
    c.wait_gone(ns, &["zcol/kept"], WAIT).await;
    assert_eq!(fake.calls("POST", DROP), 1);
    assert!(!fake.has_collection("default", "kept"));

    // Orphan instead: the object goes and the collection stays, with no call
    c.kubectl_ok(&[
        "patch",
        "-n",
        ns,
        "zcol/later",
        "--type=merge",
        "-p",
        r#"{"spec":{"deletionPolicy":"Orphan"}}"#,
    ])
    .await;
    c.wait_gone(ns, &["zcol/later"], WAIT).await;
    assert_eq!(fake.calls("POST", DROP), 1);
    assert!(fake.has_collection("default", "later"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_object_is_let_go_without_a_drop() {
    if !require_kubectl() {
        return;
    }
    let fake = ZillizFake::start(TOKEN).await;
    fake.add_collection("default", "watched", false);
    let mut c = Cluster::start().await;
    c.start_operator(Path::new(OPERATOR), &[]).await;
    let ns = "read-only";
    c.apply(&namespace_yaml(ns)).await;
    c.apply(&secret_yaml(ns, "creds", "apiKey", TOKEN)).await;
    let yaml = collection_yaml(ns, "watched", "watched", &fake.uri(), None)
        + "  managementPolicies: [Observe]\n";
    c.apply(&yaml).await;
    c.wait_ready(ns, &["zcol/watched"], WAIT).await;
    let o = c.get_json(&["get", "zcol/watched", "-n", ns]).await;
    assert_eq!(o["spec"]["managementPolicies"][0], "Observe", "{o}");
    c.kubectl_ok(&["delete", "-n", ns, "zcol/watched", "--timeout=30s"])
        .await;
    assert_eq!(fake.calls("POST", DROP), 0, "read-only: nothing is dropped");
    assert!(fake.has_collection("default", "watched"));
    assert!(c.event_reasons(ns).await.contains(&"Orphaned".to_string()));
}
