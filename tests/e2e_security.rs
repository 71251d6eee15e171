//! Security, end to end: credentials come only from the object's own namespace, an Orphan needs
//! none, an invalid name cannot wedge a deletion, TLS is verified (a private CA only through
//! `--ca-bundle`), and a token never shows in logs, Events or status — even when the API
//! echoes it back.

use serde_json::Value;
use std::{path::Path, time::Duration};
use zilliz_devkit::{
    e2e::{Cluster, condition, namespace_yaml, require_kubectl, secret_yaml},
    kube_proxy::RecordingProxy,
    raw_http::{Answer, RawHttp},
    tls::TlsProxy,
    zilliz_fake::ZillizFake,
};

const OPERATOR: &str = env!("CARGO_BIN_EXE_zilliz-operator");
const WAIT: Duration = Duration::from_secs(30);

fn cluster_yaml(ns: &str, name: &str, id: &str, base: &str, secret: &str, policy: &str) -> String {
    format!(
        r#"apiVersion: zilliz.io/v1alpha1
kind: ZillizCluster
metadata: {{name: {name}, namespace: {ns}}}
spec:
  clusterId: {id}
  controlPlane: {{baseUrl: "{base}"}}
  credentialsSecretRef: {{name: {secret}}}
  deletionPolicy: {policy}
"#
    )
}

fn collection_yaml(
    ns: &str,
    name: &str,
    coll: &str,
    endpoint: &str,
    secret: &str,
    policy: &str,
) -> String {
    format!(
        r#"apiVersion: zilliz.io/v1alpha1
kind: ZillizCollection
metadata: {{name: {name}, namespace: {ns}}}
spec:
  collectionName: "{coll}"
  connection: {{endpoint: "{endpoint}", credentialsSecretRef: {{name: {secret}}}}}
  deletionPolicy: {policy}
"#
    )
}

fn message(obj: &Value, type_: &str) -> String {
    condition(obj, type_)
        .and_then(|c| c["message"].as_str())
        .unwrap_or_default()
        .to_string()
}

/// `events.k8s.io` Events of `ns`: (reason, note).
async fn events(c: &Cluster, ns: &str) -> Vec<(String, String)> {
    let list = c.get_json(&["get", "events.events.k8s.io", "-n", ns]).await;
    list["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|e| {
            (
                e["reason"].as_str().unwrap_or_default().to_string(),
                e["note"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_is_never_read_from_another_namespace() {
    if !require_kubectl() {
        return;
    }
    const A_TOKEN: &str = "team-a-key-33c1";
    const B_TOKEN: &str = "team-b-key-9e07";
    // the API takes B's key for now: had the operator used it, the calls would have worked
    let fake = ZillizFake::start(B_TOKEN).await;
    fake.add_cluster("in01-iso");
    fake.add_collection("default", "alpha", false);
    let mut c = Cluster::start().await;
    // the operator talks to the API server through a proxy that records every request path
    let proxy = RecordingProxy::start(c.server.addr()).await;
    let kubeconfig = c.path("operator-kubeconfig");
    proxy.write_kubeconfig(&kubeconfig).unwrap();
    c.start_operator_env(
        Path::new(OPERATOR),
        &[],
        &[("KUBECONFIG", kubeconfig.to_str().unwrap())],
    )
    .await;
    let uri = fake.uri();
    for ns in ["team-a", "team-b"] {
        c.apply(&namespace_yaml(ns)).await;
    }
    // `creds` exists only in team-b; team-a's objects name it (a reference has no namespace)
    c.apply(&secret_yaml("team-b", "creds", "apiKey", B_TOKEN))
        .await;
    c.apply(&cluster_yaml(
        "team-a", "cl", "in01-iso", &uri, "creds", "Delete",
    ))
    .await;
    c.apply(&collection_yaml(
        "team-a", "alpha", "alpha", &uri, "creds", "Delete",
    ))
    .await;
    for obj in ["zc/cl", "zcol/alpha"] {
        let o = c
            .wait_reason("team-a", obj, "Ready", "CredentialsUnavailable", WAIT)
            .await;
        let m = message(&o, "Ready");
        assert!(m.contains(r#"not found in namespace "team-a""#), "{m}");
    }
    c.delete_nowait("team-a", &["zcol/alpha"]).await;
    let o = c
        .wait_reason(
            "team-a",
            "zcol/alpha",
            "Synced",
            "CredentialsUnavailable",
            WAIT,
        )
        .await;
    assert_eq!(o["metadata"]["finalizers"][0], "zilliz.io/finalizer");
    assert_eq!(fake.total_calls(), 0, "{:?}", fake.all_calls());
    // team-b's Secret was not even marked in use
    let b = c.get_json(&["get", "secret/creds", "-n", "team-b"]).await;
    assert_eq!(b["metadata"]["finalizers"], Value::Null, "{b}");

    // team-a gets its own Secret: the drop goes through with team-a's key
    fake.set_token(A_TOKEN);
    c.apply(&secret_yaml("team-a", "creds", "apiKey", A_TOKEN))
        .await;
    c.wait_gone("team-a", &["zcol/alpha"], Duration::from_secs(30))
        .await;
    c.delete_nowait("team-a", &["zc/cl"]).await;
    c.wait_gone("team-a", &["zc/cl"], Duration::from_secs(30))
        .await;
    assert!(!fake.has_collection("default", "alpha"));
    assert_eq!(fake.cluster_status("in01-iso").as_deref(), Some("DELETED"));
    let calls = fake.call_log(0);
    assert!(calls.len() >= 2);
    assert!(
        calls.iter().all(|call| call.token == A_TOKEN),
        "{:?}",
        calls
            .iter()
            .map(|call| (&call.path, call.token == B_TOKEN))
            .collect::<Vec<_>>()
    );

    // what the operator asked the API server: team-a's Secret by name, nothing of team-b's, and
    // of all the others (the watch that tells it a Secret changed) metadata only
    let requests = proxy.requests();
    let about_secrets: Vec<String> = requests
        .iter()
        .filter(|r| r.path.contains("/secrets"))
        .map(|r| format!("{} {} [{}]", r.method, r.path, r.accept))
        .collect();
    println!(
        "isolation: {} requests through the proxy; about Secrets: {about_secrets:#?}",
        requests.len()
    );
    assert!(
        requests
            .iter()
            .any(|r| r.method == "GET" && r.path == "/api/v1/namespaces/team-a/secrets/creds"),
        "the proxy saw the operator's reads: {requests:?}"
    );
    let of_b: Vec<_> = requests
        .iter()
        .filter(|r| r.path.contains("/namespaces/team-b/"))
        .collect();
    assert!(of_b.is_empty(), "requests in team-b: {of_b:?}");
    let everywhere: Vec<_> = requests
        .iter()
        .filter(|r| r.path.starts_with("/api/v1/secrets"))
        .collect();
    assert!(!everywhere.is_empty(), "{requests:?}");
    for r in everywhere {
        assert!(
            r.accept.contains("as=PartialObjectMetadata"),
            "Secrets of every namespace read whole: {r:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_orphan_whose_secret_never_existed_goes_without_a_call() {
    if !require_kubectl() {
        return;
    }
    let fake = ZillizFake::start("orphan-key-5a5a").await;
    fake.add_cluster("in01-orphan");
    fake.add_collection("default", "kept", false);
    let mut c = Cluster::start().await;
    c.start_operator(Path::new(OPERATOR), &[]).await;
    let ns = "orphans";
    let uri = fake.uri();
    c.apply(&namespace_yaml(ns)).await;
    c.apply(&cluster_yaml(
        ns,
        "cl",
        "in01-orphan",
        &uri,
        "never-created",
        "Orphan",
    ))
    .await;
    c.apply(&collection_yaml(
        ns,
        "kept",
        "kept",
        &uri,
        "never-created",
        "Orphan",
    ))
    .await;
    for obj in ["zc/cl", "zcol/kept"] {
        let o = c
            .wait_reason(ns, obj, "Ready", "CredentialsUnavailable", WAIT)
            .await;
        assert_eq!(o["metadata"]["finalizers"][0], "zilliz.io/finalizer");
    }
    c.delete_nowait(ns, &["zc/cl", "zcol/kept"]).await;
    c.wait_gone(ns, &["zc/cl", "zcol/kept"], Duration::from_secs(30))
        .await;
    assert_eq!(fake.total_calls(), 0, "{:?}", fake.all_calls());
    assert!(fake.has_collection("default", "kept"));
    assert_eq!(
        fake.cluster_status("in01-orphan").as_deref(),
        Some("RUNNING")
    );
    let reasons = c.event_reasons(ns).await;
    assert_eq!(
        reasons.iter().filter(|r| *r == "Orphaned").count(),
        2,
        "{reasons:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_name_keeps_its_finalizer_until_the_user_lets_go() {
    if !require_kubectl() {
        return;
    }
    const TOKEN: &str = "invalid-name-key-c4d2";
    const DROP: &str = "/v2/vectordb/collections/drop";
    let fake = ZillizFake::start(TOKEN).await;
    let mut c = Cluster::start().await;
    c.start_operator(Path::new(OPERATOR), &[]).await;
    let ns = "names";
    c.apply(&namespace_yaml(ns)).await;
    c.apply(&secret_yaml(ns, "creds", "apiKey", TOKEN)).await;
    c.apply(&collection_yaml(
        ns,
        "bad",
        "bad name!",
        &fake.uri(),
        "creds",
        "Delete",
    ))
    .await;
    // observed: the API answers 1100 (invalid name)
    let o = c
        .wait_reason(ns, "zcol/bad", "Ready", "InvalidRequest", WAIT)
        .await;
    let m = message(&o, "Ready");
    assert!(
        m.contains("code 1100") && m.contains("Invalid collection name"),
        "{m}"
    );
    assert_eq!(o["metadata"]["finalizers"][0], "zilliz.io/finalizer");

    // Deleted: 1100 is Milvus' generic "invalid parameter", and a read of the collection answers
    // 1100 too, so nothing says it does not exist: the finalizer stays, and the condition says
    // what the API answered and how to let the object go on purpose.
    c.delete_nowait(ns, &["zcol/bad"]).await;
    let o = c
        .wait_reason(ns, "zcol/bad", "Synced", "DropFailed", WAIT)
        .await;
    let m = message(&o, "Synced");
    assert!(
        m.contains("code 1100") && m.contains("deletionPolicy: Orphan"),
        "{m}"
    );
    assert_eq!(o["metadata"]["finalizers"][0], "zilliz.io/finalizer");
    let drops: Vec<Option<i64>> = fake
        .call_log(0)
        .iter()
        .filter(|call| call.path == DROP)
        .map(|call| call.code)
        .collect();
    assert_eq!(drops, [Some(1100)], "one drop, answered 1100");
    // Orphan lets it go, with no further call
    let before = fake.total_calls();
    c.kubectl_ok(&[
        "patch",
        "zcol/bad",
        "-n",
        ns,
        "--type=merge",
        "-p",
        r#"{"spec":{"deletionPolicy":"Orphan"}}"#,
    ])
    .await;
    c.wait_gone(ns, &["zcol/bad"], Duration::from_secs(30))
        .await;
    assert_eq!(fake.total_calls(), before, "Orphan makes no call");
    let events = events(&c, ns).await;
    assert!(
        !events
            .iter()
            .any(|(r, _)| r == "AlreadyAbsent" || r == "Dropped"),
        "{events:?}"
    );
    assert!(events.iter().any(|(r, _)| r == "Orphaned"), "{events:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_a_private_ca_works_only_through_the_ca_bundle() {
    if !require_kubectl() {
        return;
    }
    // no flag may turn verification off
    for args in [&["--help"][..], &["run", "--help"][..]] {
        let out = std::process::Command::new(OPERATOR)
            .args(args)
            .output()
            .unwrap();
        let help = String::from_utf8_lossy(&out.stdout).to_lowercase();
        assert!(help.contains("--ca-bundle") || args.len() == 1, "{help}");
        for word in ["insecure", "skip", "no-verify", "danger", "accept-invalid"] {
            assert!(!help.contains(word), "{args:?} offers {word:?}:\n{help}");
        }
    }
    const TOKEN: &str = "tls-key-8b1e";
    let fake = ZillizFake::start(TOKEN).await;
    fake.add_cluster("in01-tls");
    fake.add_collection("default", "secured", false);
    let tls = TlsProxy::start(*fake.server.address()).await;
    let mut c = Cluster::start().await;
    let ca = c.path("ca.pem");
    std::fs::write(&ca, tls.ca_pem()).unwrap();
    c.start_operator(Path::new(OPERATOR), &[]).await;
    let ns = "tls";
    c.apply(&namespace_yaml(ns)).await;
    c.apply(&secret_yaml(ns, "creds", "apiKey", TOKEN)).await;
    c.apply(&cluster_yaml(
        ns,
        "cl",
        "in01-tls",
        &tls.uri(),
        "creds",
        "Delete",
    ))
    .await;
    c.apply(&collection_yaml(
        ns,
        "secured",
        "secured",
        &tls.uri(),
        "creds",
        "Delete",
    ))
    .await;

    // without the CA: the certificate is refused, nothing reaches the API
    for obj in ["zc/cl", "zcol/secured"] {
        let o = c.wait_reason(ns, obj, "Ready", "Unreachable", WAIT).await;
        let m = message(&o, "Ready");
        assert!(m.contains("certificate"), "{m}");
    }
    c.delete_nowait(ns, &["zcol/secured"]).await;
    let o = c
        .wait_reason(ns, "zcol/secured", "Synced", "DropRetrying", WAIT)
        .await;
    let refused = o["status"]["deletion"]["lastError"].to_string();
    assert!(refused.contains("certificate"), "{refused}");
    assert_eq!(fake.total_calls(), 0, "{:?}", fake.all_calls());
    let (ok, failed) = tls.handshakes();
    assert_eq!(ok, 0);
    assert!(failed >= 3, "{failed}");

    // with --ca-bundle: the drop goes through
    c.stop_operator().await;
    c.start_operator(Path::new(OPERATOR), &["--ca-bundle", ca.to_str().unwrap()])
        .await;
    c.wait_gone(ns, &["zcol/secured"], Duration::from_secs(30))
        .await;
    c.kubectl_ok(&[
        "wait",
        "--for=condition=Ready",
        "--timeout=30s",
        "-n",
        ns,
        "zc/cl",
    ])
    .await;
    c.delete_nowait(ns, &["zc/cl"]).await;
    c.wait_gone(ns, &["zc/cl"], Duration::from_secs(30)).await;
    let dropped: Vec<(String, String)> = fake
        .call_log(0)
        .iter()
        .filter(|call| call.path.ends_with("/drop") && call.code == Some(0))
        .map(|call| (call.method.clone(), call.path.clone()))
        .collect();
    assert_eq!(
        dropped,
        [
            (
                "POST".to_string(),
                "/v2/vectordb/collections/drop".to_string()
            ),
            ("DELETE".into(), "/v2/clusters/in01-tls/drop".into()),
        ]
    );
    assert!(tls.handshakes().0 >= 1);
    println!(
        "tls: without the CA: {refused}; with it: {} handshakes, {} calls",
        tls.handshakes().0,
        fake.total_calls()
    );
}

/// Standard base64 (with padding): how a Secret's value travels in its `data`.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_never_show_in_logs_events_or_status_even_when_echoed() {
    if !require_kubectl() {
        return;
    }
    const WRONG: &str = "grep-wrong-key-7d3c9a41";
    const RIGHT: &str = "grep-right-key-0f6be2d5";
    assert_eq!(base64(b"root:Milvus"), "cm9vdDpNaWx2dXM=");
    // the API takes RIGHT only, and its errors (401 envelopes, 503 gateway pages) quote the
    // Authorization header they were sent
    let fake = ZillizFake::start(RIGHT).await;
    fake.set_echo_auth(true);
    fake.add_cluster("in01-grep");
    fake.add_collection("default", "coll", false);
    fake.add_collection("default", "pcoll", false);
    fake.add_partition("default", "pcoll", "p1", false);
    fake.add_collection("default", "icoll", false);
    fake.add_index("default", "icoll", "i1");
    let mut c = Cluster::start().await;
    c.start_operator_env(Path::new(OPERATOR), &[], &[("RUST_LOG", "debug")])
        .await;
    let ns = "grep";
    let uri = fake.uri();
    let conn =
        format!("connection: {{endpoint: \"{uri}\", credentialsSecretRef: {{name: creds}}}}");
    c.apply(&namespace_yaml(ns)).await;
    c.apply(&secret_yaml(ns, "creds", "apiKey", WRONG)).await;
    c.apply(&cluster_yaml(
        ns,
        "cl",
        "in01-grep",
        &uri,
        "creds",
        "Delete",
    ))
    .await;
    c.apply(&collection_yaml(
        ns, "coll", "coll", &uri, "creds", "Delete",
    ))
    .await;
    c.apply(&format!(
        r#"apiVersion: zilliz.io/v1alpha1
kind: ZillizPartition
metadata: {{name: part, namespace: {ns}}}
spec:
  partitionName: p1
  collectionName: pcoll
  {conn}
---
apiVersion: zilliz.io/v1alpha1
kind: ZillizIndex
metadata: {{name: idx, namespace: {ns}}}
spec:
  indexName: i1
  collectionName: icoll
  {conn}
"#
    ))
    .await;
    let all = ["zc/cl", "zcol/coll", "zpart/part", "zidx/idx"];
    let mut seen: Vec<(String, String)> = Vec::new();

    // 1. the wrong key, echoed back in every 401
    for obj in all {
        let o = c.wait_reason(ns, obj, "Ready", "Unauthorized", WAIT).await;
        let m = message(&o, "Ready");
        assert!(m.contains("Bearer <redacted>"), "{obj}: {m}");
    }
    let listed = c.get_json(&["get", "zc,zcol,zpart,zidx", "-n", ns]).await;
    seen.push(("objects while Unauthorized".into(), listed.to_string()));

    // 2. deleted with the wrong key: DropFailed, the echo in lastError and a Warning Event
    c.delete_nowait(ns, &all).await;
    for obj in all {
        let o = c.wait_reason(ns, obj, "Synced", "DropFailed", WAIT).await;
        let last = o["status"]["deletion"]["lastError"].to_string();
        assert!(last.contains("<redacted>"), "{obj}: {last}");
    }
    let listed = c.get_json(&["get", "zc,zcol,zpart,zidx", "-n", ns]).await;
    seen.push(("objects while DropFailed".into(), listed.to_string()));

    // 3. the right key during an outage whose gateway page echoes it
    fake.set_outage(true);
    c.apply(&secret_yaml(ns, "creds", "apiKey", RIGHT)).await;
    for obj in all {
        let o = c.wait_reason(ns, obj, "Synced", "DropRetrying", WAIT).await;
        let last = o["status"]["deletion"]["lastError"].to_string();
        assert!(
            last.contains("HTTP 503") && last.contains("Bearer <redacted>"),
            "{obj}: {last}"
        );
    }
    let listed = c.get_json(&["get", "zc,zcol,zpart,zidx", "-n", ns]).await;
    seen.push(("objects while DropRetrying".into(), listed.to_string()));

    // 4. the API back: everything dropped
    fake.set_outage(false);
    c.wait_gone(ns, &all, Duration::from_secs(30)).await;
    let echoed = fake
        .call_log(0)
        .iter()
        .filter(|call| call.status == 401 || call.status == 503)
        .count();
    assert!(echoed >= 8, "{echoed} answers echoed a key");

    let core_events = c.get_json(&["get", "events", "-A"]).await;
    let new_events = c.get_json(&["get", "events.events.k8s.io", "-A"]).await;
    let reasons = c.event_reasons(ns).await;
    assert_eq!(
        reasons.iter().filter(|r| *r == "Dropped").count(),
        4,
        "{reasons:?}"
    );
    assert!(reasons.contains(&"DropFailed".to_string()), "{reasons:?}");
    seen.push(("core/v1 Events".into(), core_events.to_string()));
    seen.push(("events.k8s.io Events".into(), new_events.to_string()));
    c.stop_operator().await;
    let log = c.log();
    assert!(
        log.contains("<redacted>"),
        "the echoed errors reach the log, redacted"
    );
    seen.push(("operator log".into(), log));
    let sizes: Vec<(String, usize)> = seen.iter().map(|(w, t)| (w.clone(), t.len())).collect();
    println!("token grep: {echoed} answers echoed a key; searched {sizes:?}");
    for token in [WRONG, RIGHT] {
        for needle in [token.to_string(), base64(token.as_bytes())] {
            for (what, text) in &seen {
                assert!(!text.contains(&needle), "{needle:?} appears in the {what}");
            }
        }
    }
}

/// An HTML error page is cut to a 200-character excerpt for the condition: the token is removed
/// from the whole body first, or a token echoed across the cut would leave its first characters
/// in the condition (it did, before `Token::redact_body`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_cut_by_the_error_excerpt_is_still_redacted() {
    if !require_kubectl() {
        return;
    }
    const TOKEN: &str = "zk-3f9a1c7e5b2d4a6c8e0f";
    // the token starts 190 characters into the page: the excerpt keeps its first 10
    let padding = "x".repeat(133);
    let page = format!(
        "<html><body><pre>{padding}Request rejected: Authorization: Bearer {TOKEN}</pre></body></html>"
    );
    assert_eq!(page.find(TOKEN), Some(190));
    let raw = RawHttp::start(Answer::Full {
        status: 503,
        content_type: "text/html",
        body: page.clone(),
    })
    .await;
    let mut c = Cluster::start().await;
    c.start_operator(Path::new(OPERATOR), &[]).await;
    let ns = "excerpt";
    c.apply(&namespace_yaml(ns)).await;
    c.apply(&secret_yaml(ns, "creds", "apiKey", TOKEN)).await;
    c.apply(&format!(
        r#"apiVersion: zilliz.io/v1alpha1
kind: ZillizCollection
metadata: {{name: docs, namespace: {ns}}}
spec:
  collectionName: docs
  apiVersion: v1
  connection: {{endpoint: "{}", credentialsSecretRef: {{name: creds}}}}
"#,
        raw.uri()
    ))
    .await;
    let o = c
        .wait_reason(ns, "zcol/docs", "Ready", "Unreachable", WAIT)
        .await;
    let m = message(&o, "Ready");
    let start = page.find(TOKEN).unwrap();
    let kept = 200 - start;
    let leaked = &TOKEN[..kept.min(TOKEN.len())];
    assert!(
        !m.contains(leaked),
        "{leaked:?} (the first {kept} characters of the token) is in the condition: {m}"
    );
}
