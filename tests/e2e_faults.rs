//! Faults survived: the operator killed mid-drop, the API server's watches cut and compacted
//! (410 Gone), and a 429 storm with Retry-After.

use std::{path::Path, time::Duration};
use zilliz_devkit::{
    e2e::{Cluster, collection_yaml, namespace_yaml, require_kubectl, secret_yaml},
    zilliz_fake::ZillizFake,
};

const OPERATOR: &str = env!("CARGO_BIN_EXE_zilliz-operator");
const TOKEN: &str = "faults-key-0c7e";
const DROP: &str = "/v2/vectordb/collections/drop";

fn collection(ns: &str, name: &str, fake: &str) -> String {
    collection_yaml(ns, name, name, fake, None)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_between_the_drop_and_the_finalizer_patch_recovers_after_restart() {
    if !require_kubectl() {
        return;
    }
    let fake = ZillizFake::start(TOKEN).await;
    fake.add_collection("default", "victim", false);
    let mut c = Cluster::start().await;
    c.start_operator(Path::new(OPERATOR), &[]).await;
    let ns = "crash";
    c.apply(&namespace_yaml(ns)).await;
    c.apply(&secret_yaml(ns, "creds", "apiKey", TOKEN)).await;
    c.apply(&collection(ns, "victim", &fake.uri())).await;
    c.kubectl_ok(&[
        "wait",
        "--for=condition=Ready",
        "--timeout=30s",
        "-n",
        ns,
        "zcol/victim",
    ])
    .await;

    // every answer now takes 2 s: the drop reaches the API, and the operator dies before it can
    // remove the finalizer
    fake.set_latency(Duration::from_secs(2));
    c.kubectl_ok(&["delete", "--wait=false", "-n", ns, "zcol/victim"])
        .await;
    c.eventually(
        "the drop reached the API",
        Duration::from_secs(20),
        || async { fake.calls("POST", DROP) == 1 },
    )
    .await;
    let pid = c.operator_pid().expect("operator running");
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    c.stop_operator().await;
    // the external drop happened; the object still holds its finalizer
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!fake.has_collection("default", "victim"));
    let o = c.get_json(&["get", "-n", ns, "zcol/victim"]).await;
    assert_eq!(o["metadata"]["finalizers"][0], "zilliz.io/finalizer");

    // restart: the drop is simply made again (idempotent) and the finalizer goes
    fake.set_latency(Duration::ZERO);
    c.start_operator(Path::new(OPERATOR), &[]).await;
    c.kubectl_ok(&[
        "wait",
        "--for=delete",
        "--timeout=30s",
        "-n",
        ns,
        "zcol/victim",
    ])
    .await;
    assert_eq!(
        fake.calls("POST", DROP),
        2,
        "one drop before the crash, one after"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_and_compacted_watches_and_a_429_storm_are_survived() {
    if !require_kubectl() {
        return;
    }
    let fake = ZillizFake::start(TOKEN).await;
    for name in ["a", "b", "c"] {
        fake.add_collection("default", name, false);
    }
    let mut c = Cluster::start().await;
    c.start_operator(Path::new(OPERATOR), &[]).await;
    let ns = "watches";
    c.apply(&namespace_yaml(ns)).await;
    c.apply(&secret_yaml(ns, "creds", "apiKey", TOKEN)).await;
    c.apply(&collection(ns, "a", &fake.uri())).await;
    c.kubectl_ok(&[
        "wait",
        "--for=condition=Ready",
        "--timeout=30s",
        "-n",
        ns,
        "zcol/a",
    ])
    .await;

    // every watch is cut and the history forgotten: the operator relists (410 Gone) and still
    // sees what comes next
    let faults = c.server.faults();
    faults.compact();
    faults.close_watches();
    c.apply(&collection(ns, "b", &fake.uri())).await;
    c.kubectl_ok(&[
        "wait",
        "--for=condition=Ready",
        "--timeout=30s",
        "-n",
        ns,
        "zcol/b",
    ])
    .await;

    // the Kubernetes API throttles (429 with Retry-After) for a while: drops still complete
    c.apply(&collection(ns, "c", &fake.uri())).await;
    c.kubectl_ok(&[
        "wait",
        "--for=condition=Ready",
        "--timeout=30s",
        "-n",
        ns,
        "zcol/c",
    ])
    .await;
    // the storm lands on the operator only (kubectl's own client gives up after 10 429s), and
    // begins before the deletions so that none of them can finish ahead of it
    faults.fail_next_sparing(20, 429, Some("kubectl/"));
    c.kubectl_ok(&[
        "delete",
        "--wait=false",
        "-n",
        ns,
        "zcol/a",
        "zcol/b",
        "zcol/c",
    ])
    .await;
    c.kubectl_ok(&[
        "wait",
        "--for=delete",
        "--timeout=60s",
        "-n",
        ns,
        "zcol/a",
        "zcol/b",
        "zcol/c",
    ])
    .await;
    for name in ["a", "b", "c"] {
        assert!(!fake.has_collection("default", name), "{name}");
    }
    assert_eq!(fake.calls("POST", DROP), 3, "{:?}", fake.all_calls());
    assert_eq!(
        faults.failures_left(),
        0,
        "the operator met the whole 429 storm"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fixed_secret_retries_a_failed_drop_at_once() {
    if !require_kubectl() {
        return;
    }
    let fake = ZillizFake::start(TOKEN).await;
    fake.add_collection("default", "locked", false);
    let mut c = Cluster::start().await;
    // terminal errors retry at about the cap: a minute here, so only the Secret watch can make
    // the drop happen within the test's wait
    c.start_operator(Path::new(OPERATOR), &["--backoff-cap", "60s"])
        .await;
    let ns = "rotate";
    c.apply(&namespace_yaml(ns)).await;
    c.apply(&secret_yaml(ns, "creds", "apiKey", "wrong-key"))
        .await;
    c.apply(&collection(ns, "locked", &fake.uri())).await;
    c.eventually(
        "observed as Unauthorized",
        Duration::from_secs(20),
        || async {
            c.kubectl_ok(&["get", "-n", ns, "zcol/locked"])
                .await
                .contains("Unauthorized")
        },
    )
    .await;
    c.kubectl_ok(&["delete", "--wait=false", "-n", ns, "zcol/locked"])
        .await;
    c.eventually("DropFailed", Duration::from_secs(20), || async {
        c.kubectl_ok(&["get", "-n", ns, "zcol/locked"])
            .await
            .contains("DropFailed")
    })
    .await;
    c.apply(&secret_yaml(ns, "creds", "apiKey", TOKEN)).await;
    c.kubectl_ok(&[
        "wait",
        "--for=delete",
        "--timeout=15s",
        "-n",
        ns,
        "zcol/locked",
    ])
    .await;
    assert!(!fake.has_collection("default", "locked"));
}
