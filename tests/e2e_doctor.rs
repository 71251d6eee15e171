//! `zilliz-operator doctor` end to end: the test API server, the Zilliz fake and the real
//! operator make objects stuck for several reasons; the built binary's `doctor` explains each,
//! with the exact commands, in JSON and text, and its exit status says whether anything is
//! stuck (0 nothing, 1 something, 2 the doctor could not run).

use serde_json::{Value, json};
use std::{path::Path, process::Stdio, time::Duration};
use zilliz_devkit::{
    e2e::{Cluster, collection_yaml, namespace_yaml, require_kubectl, secret_yaml},
    zilliz_fake::ZillizFake,
};

const OPERATOR: &str = env!("CARGO_BIN_EXE_zilliz-operator");
const TOKEN: &str = "doctor-key-81f3";
const DROP: &str = "/v2/vectordb/collections/drop";
const WAIT: Duration = Duration::from_secs(30);
const OPNS: &str = "zilliz-operator";

/// Runs `zilliz-operator doctor <args>` with `kubeconfig`; answers (exit code, stdout, stderr).
async fn doctor(kubeconfig: &Path, args: &[&str]) -> (i32, String, String) {
    let out = tokio::process::Command::new(OPERATOR)
        .arg("doctor")
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .stdin(Stdio::null())
        .output()
        .await
        .expect("run zilliz-operator doctor");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn finding<'a>(report: &'a Value, kind: &str, name: &str) -> &'a Value {
    report["objects"]
        .as_array()
        .and_then(|os| os.iter().find(|o| o["kind"] == kind && o["name"] == name))
        .unwrap_or_else(|| panic!("no {kind}/{name} in the report: {report:#}"))
}

fn advice(f: &Value) -> Vec<String> {
    f["steps"]
        .as_array()
        .map(|s| {
            s.iter()
                .map(|s| s["advice"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn commands(f: &Value) -> Vec<String> {
    f["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| s["commands"].as_array().cloned().unwrap_or_default())
        .map(|c| c.as_str().unwrap_or_default().to_string())
        .collect()
}

fn check<'a>(report: &'a Value, prefix: &str) -> &'a Value {
    report["install"]
        .as_array()
        .and_then(|cs| {
            cs.iter()
                .find(|c| c["check"].as_str().is_some_and(|n| n.starts_with(prefix)))
        })
        .unwrap_or_else(|| panic!("no check {prefix}: {report:#}"))
}

fn with_annotation(yaml: &str, name: &str, ns: &str) -> String {
    yaml.replacen(
        &format!("metadata: {{name: {name}, namespace: {ns}}}"),
        &format!(
            "metadata: {{name: {name}, namespace: {ns}, annotations: {{zilliz.io/deletion-protection: \"true\"}}}}"
        ),
        1,
    )
}

fn index_yaml(
    ns: &str,
    name: &str,
    index: &str,
    collection: &str,
    endpoint: Option<&str>,
) -> String {
    let address = match endpoint {
        Some(e) => format!(
            "collectionName: {collection}\n  connection: {{endpoint: \"{e}\", credentialsSecretRef: {{name: creds}}}}"
        ),
        None => format!("collectionRef: {{name: {collection}}}"),
    };
    format!(
        "apiVersion: zilliz.io/v1alpha1\nkind: ZillizIndex\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n  indexName: {index}\n  {address}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_doctor_explains_each_stuck_object_and_exits_non_zero() {
    if !require_kubectl() {
        return;
    }
    let fake = ZillizFake::start(TOKEN).await;
    for (name, loaded) in [
        ("guarded", false),
        ("parent", false),
        ("nokey", false),
        ("refused", false),
        ("loaded", true),
        ("fine", false),
    ] {
        fake.add_collection("default", name, loaded);
    }
    fake.add_index("default", "parent", "pvec_idx");
    fake.add_index("default", "loaded", "vec_idx");
    let uri = fake.uri();

    let mut c = Cluster::start().await;
    c.apply(&namespace_yaml(OPNS)).await;
    c.start_operator(
        Path::new(OPERATOR),
        &["--leader-elect", "--lease-namespace", OPNS],
    )
    .await;

    // a healthy namespace: nothing stuck, exit 0
    let fine = "fine";
    c.apply(&namespace_yaml(fine)).await;
    c.apply(&secret_yaml(fine, "creds", "apiKey", TOKEN)).await;
    c.apply(&collection_yaml(fine, "fine", "fine", &uri, None))
        .await;
    c.wait_ready(fine, &["zcol/fine"], WAIT).await;
    let (code, out, err) = doctor(&c.kubeconfig, &["-n", fine, "-o", "json"]).await;
    assert_eq!(code, 0, "healthy: exit 0\n{out}\n{err}");
    let report: Value = serde_json::from_str(&out).expect("JSON report");
    assert_eq!(report["summary"]["stuck"], 0, "{report:#}");
    assert_eq!(report["summary"]["healthy"], 1, "{report:#}");
    assert_eq!(
        finding(&report, "ZillizCollection", "fine")["severity"],
        "healthy"
    );
    for crd in ["CRD zillizclusters", "CRD zillizindexes"] {
        assert_eq!(check(&report, crd)["status"], "ok", "{report:#}");
    }
    let lease = check(
        &report,
        "leader Lease zilliz-operator/zilliz-operator-leader",
    );
    assert_eq!(lease["status"], "ok", "{lease}");
    // the test API server has no SubjectAccessReview: said, not failed
    let rbac = check(
        &report,
        "RBAC of system:serviceaccount:zilliz-operator:zilliz-operator",
    );
    assert_eq!(rbac["status"], "unknown", "{rbac}");
    assert!(
        rbac["detail"]
            .as_str()
            .unwrap()
            .contains("kubectl auth can-i"),
        "{rbac}"
    );

    // objects stuck for several reasons
    let ns = "stuck";
    c.apply(&namespace_yaml(ns)).await;
    c.apply(&secret_yaml(ns, "creds", "apiKey", TOKEN)).await;
    c.apply(&with_annotation(
        &collection_yaml(ns, "guarded", "guarded", &uri, None),
        "guarded",
        ns,
    ))
    .await;
    c.apply(&collection_yaml(ns, "parent", "parent", &uri, None))
        .await;
    c.apply(&index_yaml(ns, "parent-vec", "pvec_idx", "parent", None))
        .await;
    c.apply(&collection_yaml(
        ns,
        "nokey",
        "nokey",
        &uri,
        Some("missing"),
    ))
    .await;
    c.apply(&collection_yaml(ns, "refused", "refused", &uri, None))
        .await;
    c.apply(&index_yaml(
        ns,
        "loaded-vec",
        "vec_idx",
        "loaded",
        Some(&uri),
    ))
    .await;
    c.wait_ready(
        ns,
        &[
            "zcol/guarded",
            "zcol/parent",
            "zidx/parent-vec",
            "zcol/refused",
            "zidx/loaded-vec",
        ],
        WAIT,
    )
    .await;
    c.wait_reason(ns, "zcol/nokey", "Ready", "CredentialsUnavailable", WAIT)
        .await;
    fake.answer_next(
        "POST",
        DROP,
        10_000,
        200,
        json!({"code": 1100, "message": "invalid parameter: refused on purpose"}),
    );
    c.delete_nowait(
        ns,
        &[
            "zcol/guarded",
            "zcol/parent",
            "zcol/nokey",
            "zcol/refused",
            "zidx/loaded-vec",
        ],
    )
    .await;
    for (obj, reason) in [
        ("zcol/guarded", "DeletionProtected"),
        ("zcol/parent", "DependentsExist"),
        ("zcol/nokey", "CredentialsUnavailable"),
        ("zcol/refused", "DropFailed"),
        ("zidx/loaded-vec", "DropBlocked"),
    ] {
        c.wait_reason(ns, obj, "Synced", reason, WAIT).await;
    }

    let (code, out, err) = doctor(&c.kubeconfig, &["-n", ns, "-o", "json"]).await;
    assert_eq!(code, 1, "something is stuck: exit 1\n{out}\n{err}");
    let report: Value = serde_json::from_str(&out).expect("JSON report");
    let at = |kind: &str, name: &str| finding(&report, kind, name).clone();

    let guarded = at("ZillizCollection", "guarded");
    assert_eq!(guarded["severity"], "stuck", "{guarded:#}");
    assert_eq!(guarded["reason"], "DeletionProtected");
    assert_eq!(guarded["deleting"], true);
    assert_eq!(guarded["holdsFinalizer"], true);
    assert_eq!(advice(&guarded), ["removeProtection", "keepResource"]);
    assert_eq!(
        commands(&guarded),
        [
            "kubectl -n stuck annotate zillizcollection guarded zilliz.io/deletion-protection-",
            r#"kubectl -n stuck patch zillizcollection guarded --type merge -p '{"spec":{"deletionPolicy":"Orphan"}}'"#
        ]
    );
    let leak = guarded["ifFinalizerStripped"].as_str().unwrap();
    assert!(
        leak.contains(&format!("the collection default.guarded at {uri}")),
        "{leak}"
    );

    let parent = at("ZillizCollection", "parent");
    assert_eq!(parent["reason"], "DependentsExist");
    assert_eq!(
        parent["severity"], "pending",
        "waiting on others is progress for 10m"
    );
    assert_eq!(parent["dependents"], json!(["ZillizIndex/parent-vec"]));
    assert_eq!(advice(&parent), ["deleteDependents", "orphanDependents"]);
    assert_eq!(
        commands(&parent)[0],
        "kubectl -n stuck delete zillizindex/parent-vec"
    );
    assert!(parent["attempts"].as_u64().unwrap() >= 1, "{parent:#}");
    assert!(parent["nextRetry"].is_string(), "{parent:#}");

    let nokey = at("ZillizCollection", "nokey");
    assert_eq!(nokey["severity"], "stuck");
    assert_eq!(nokey["reason"], "CredentialsUnavailable");
    assert_eq!(advice(&nokey), ["fixCredentials", "keepResource"]);
    assert!(
        commands(&nokey).contains(
            &"kubectl -n stuck create secret generic creds --from-literal=missing=<token> --dry-run=client -o yaml | kubectl apply -f -".to_string()
        ),
        "{:?}",
        commands(&nokey)
    );

    let refused = at("ZillizCollection", "refused");
    assert_eq!(refused["severity"], "stuck");
    assert_eq!(refused["reason"], "DropFailed");
    assert_eq!(advice(&refused), ["fixExternal", "keepResource"]);
    assert!(
        refused["lastError"]
            .as_str()
            .unwrap()
            .contains("refused on purpose"),
        "{refused:#}"
    );

    let loaded = at("ZillizIndex", "loaded-vec");
    assert_eq!(loaded["severity"], "stuck");
    assert_eq!(loaded["reason"], "DropBlocked");
    assert_eq!(advice(&loaded), ["releaseCollection", "keepResource"]);
    assert_eq!(
        commands(&loaded)[0],
        r#"kubectl -n stuck patch zillizindex loaded-vec --type merge -p '{"spec":{"releaseCollectionBeforeDrop":true}}'"#
    );

    // worst first: the stuck deletions before the pending one and the healthy index
    let order: Vec<&str> = report["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["severity"].as_str().unwrap())
        .collect();
    assert_eq!(
        order,
        ["stuck", "stuck", "stuck", "stuck", "pending", "healthy"],
        "{report:#}"
    );
    assert_eq!(report["summary"]["stuck"], 4);

    // the text: a summary first, grouped, with the commands; a name narrows it down
    let (code, text, _) = doctor(&c.kubeconfig, &["-n", ns, "guarded"]).await;
    assert_eq!(code, 1);
    assert!(
        text.starts_with("1 stuck, 0 pending, 0 healthy (1 object(s))"),
        "{text}"
    );
    assert!(
        text.contains("STUCK (1):\n  ZillizCollection stuck/guarded: deleting"),
        "{text}"
    );
    assert!(text.contains("zilliz.io/deletion-protection-"), "{text}");
    assert!(
        text.contains("do not strip the finalizer by hand"),
        "{text}"
    );
    assert!(!text.contains(TOKEN), "no secret in the output");

    // the probe: only reads, with each object's own credentials
    c.stop_operator().await;
    let before = fake.total_calls();
    let (code, out, err) = doctor(&c.kubeconfig, &["-n", ns, "--probe", "-o", "json"]).await;
    assert_eq!(code, 1, "{out}\n{err}");
    let report: Value = serde_json::from_str(&out).expect("JSON report");
    let calls = fake.call_log(before);
    assert!(!calls.is_empty(), "the probe called the API");
    for call in &calls {
        assert!(
            !["drop", "create", "release", "load"]
                .iter()
                .any(|w| call.path.ends_with(w)),
            "the probe only reads: {} {}",
            call.method,
            call.path
        );
    }
    let probe = |kind: &str, name: &str| finding(&report, kind, name)["probe"].clone();
    assert_eq!(probe("ZillizCollection", "guarded")["state"], "exists");
    assert_eq!(
        probe("ZillizCollection", "guarded")["loadState"],
        "NotLoaded",
        "{report:#}"
    );
    assert_eq!(probe("ZillizIndex", "loaded-vec")["state"], "exists");
    assert_eq!(probe("ZillizIndex", "loaded-vec")["indexState"], "Finished");
    assert_eq!(probe("ZillizCollection", "nokey")["state"], "unresolved");
    assert!(fake.has_collection("default", "guarded"));
    assert!(!out.contains(TOKEN), "no secret in the output");
}

#[tokio::test]
async fn the_doctor_exits_2_when_it_cannot_reach_the_api_server() {
    let dir = std::env::temp_dir().join(format!("zilliz-doctor-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: \"http://127.0.0.1:1\"}\ncontexts:\n- name: c\n  context: {cluster: c, user: u, namespace: default}\ncurrent-context: c\nusers:\n- name: u\n  user: {}\n",
    )
    .unwrap();
    let (code, out, err) = doctor(&kubeconfig, &["-o", "json"]).await;
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(err.starts_with("doctor: "), "{err}");
}
