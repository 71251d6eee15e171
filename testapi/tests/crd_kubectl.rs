//! The operator's CRDs (`crds/zilliz.io_crds.yaml`, written by the root crate) judged as
//! kube-apiserver would: every `x-kubernetes-validations` rule compiles, and for each one an
//! object it accepts and one it rejects (raw HTTP); then kubectl against them: an invalid
//! apply shows the rule's message, a valid one passes with defaults, unknown fields are
//! refused (kubectl asks for strict field validation) or pruned (`--validate=false`), an
//! immutable field is refused on update, client-side and server-side.
//! Without /usr/bin/kubectl the kubectl test fails under CI and is skipped visibly elsewhere.

use kube_test_server::TestServer;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const KUBECTL: &str = "/usr/bin/kubectl";

/// A copy of `zilliz_devkit::e2e::skip_or_fail` (this crate cannot depend on the devkit):
/// fail under CI (env `CI` set, not empty, `0` or `false`), otherwise say `SKIPPED`.
fn skip_or_fail(why: &str) {
    if std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false") {
        panic!("CI is set and this test cannot run: {why}");
    }
    let line = format!("\nSKIPPED (not run, CI unset): {why}\n");
    let to_tty = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/tty")
        .and_then(|mut tty| std::io::Write::write_all(&mut tty, line.as_bytes()));
    if to_tty.is_err() {
        let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
    }
}

fn crd_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../crds/zilliz.io_crds.yaml")
}

/// The operator's CRDs, or `None` (skipped / failed under CI) when the file is missing.
fn operator_crds() -> Option<Vec<Value>> {
    let Ok(text) = std::fs::read_to_string(crd_file()) else {
        skip_or_fail(&format!("{} is missing", crd_file().display()));
        return None;
    };
    let docs = serde_yaml::Deserializer::from_str(&text)
        .map(|d| Value::deserialize(d).expect("CRD YAML"))
        .filter(|d| !d.is_null())
        .collect();
    Some(docs)
}

async fn req(server: &TestServer, method: &str, path: &str, ct: &str, body: &str) -> (u16, Value) {
    let mut s = tokio::net::TcpStream::connect(server.addr())
        .await
        .expect("connect");
    let msg = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: {ct}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(msg.as_bytes()).await.expect("write");
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.expect("read");
    let text = String::from_utf8_lossy(&buf).to_string();
    let code = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (code, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// RFC 7386 merge of `patch` into a copy of `base`.
fn with(base: &Value, patch: Value) -> Value {
    fn merge(a: &mut Value, b: &Value) {
        match (a.as_object_mut(), b.as_object()) {
            (Some(a), Some(b)) => {
                for (k, v) in b {
                    if v.is_null() {
                        a.remove(k);
                    } else {
                        merge(a.entry(k.clone()).or_insert(Value::Null), v);
                    }
                }
            }
            _ => *a = b.clone(),
        }
    }
    let mut out = base.clone();
    merge(&mut out, &patch);
    out
}

/// One rule of a CRD: where it is, its message, and an object it accepts and one it rejects
/// (`old` set: a transition rule, judged on an update from `old`).
struct Case {
    kind: &'static str,
    path: &'static str,
    message: &'static str,
    old: Option<Value>,
    accepted: Value,
    rejected: Value,
}

fn cases() -> Vec<Case> {
    let secret = json!({"name": "s"});
    let conn = json!({"endpoint": "http://a", "credentialsSecretRef": secret});
    let cluster = json!({"clusterId": "in01-a", "credentialsSecretRef": secret});
    let orphan = json!({"deletionPolicy": "Orphan"});
    let mut v = vec![
        Case {
            kind: "ZillizCluster",
            path: "spec.clusterId",
            message: "clusterId is immutable",
            old: Some(cluster.clone()),
            accepted: with(&cluster, orphan.clone()),
            rejected: with(&cluster, json!({"clusterId": "in01-b"})),
        },
        Case {
            kind: "ZillizCluster",
            path: "spec.controlPlane",
            message: "controlPlane is immutable",
            old: Some(with(
                &cluster,
                json!({"controlPlane": {"apiVersion": "v2"}}),
            )),
            accepted: with(&cluster, orphan.clone()),
            rejected: with(
                &cluster,
                json!({"controlPlane": {"apiVersion": "v1", "region": "r"}}),
            ),
        },
        Case {
            kind: "ZillizCluster",
            path: "spec.credentialsSecretRef",
            message: "credentialsSecretRef.name is immutable; rotate the Secret's content instead",
            old: Some(cluster.clone()),
            accepted: with(&cluster, json!({"credentialsSecretRef": {"key": "other"}})),
            rejected: with(&cluster, json!({"credentialsSecretRef": {"name": "t"}})),
        },
    ];
    // clusters from spec (issue 15): what a create needs, dedicated-only fields, immutables
    let create = json!({"clusterName": "analytics", "projectId": "proj-1",
        "regionId": "aws-us-west-2", "plan": "Standard", "cuType": "Performance-optimized",
        "cuSize": 2, "credentialsSecretRef": secret});
    let free = with(
        &create,
        json!({"plan": "Free", "cuType": null, "cuSize": null}),
    );
    for (field, other) in [
        ("clusterName", json!("other")),
        ("projectId", json!("proj-2")),
        ("regionId", json!("gcp-us-west1")),
        ("plan", json!("Enterprise")),
        ("cuType", json!("Capacity-optimized")),
    ] {
        let (path, message) = match field {
            "clusterName" => ("spec.clusterName", "clusterName is immutable"),
            "projectId" => ("spec.projectId", "projectId is immutable"),
            "regionId" => ("spec.regionId", "regionId is immutable"),
            "plan" => ("spec.plan", "plan is immutable"),
            _ => ("spec.cuType", "cuType is immutable"),
        };
        v.push(Case {
            kind: "ZillizCluster",
            path,
            message,
            old: Some(create.clone()),
            // the mutable fields may change
            accepted: with(
                &create,
                json!({"cuSize": 4, "replica": 2, "desiredStatus": "Suspended",
                       "writeConnectionSecretToRef": {"name": "conn"}}),
            ),
            rejected: with(
                &create,
                Value::Object([(field.to_string(), other)].into_iter().collect()),
            ),
        });
    }
    v.extend([
        Case {
            kind: "ZillizCluster",
            path: "spec",
            message: "set clusterId to adopt a cluster, or clusterName, projectId, regionId and plan to create one",
            old: None,
            accepted: create.clone(),
            rejected: with(&create, json!({"regionId": null})),
        },
        Case {
            kind: "ZillizCluster",
            path: "spec",
            message: "clusterId cannot be removed once set",
            old: Some(with(&create, json!({"clusterId": "in01-a"}))),
            // set later, to resolve CreatePending
            accepted: with(&create, json!({"clusterId": "in01-a", "cuSize": 3})),
            rejected: create.clone(),
        },
        Case {
            kind: "ZillizCluster",
            path: "spec",
            message: "creating a dedicated cluster (plan Standard or Enterprise) needs cuType and cuSize",
            old: None,
            // adopting needs neither
            accepted: with(&cluster, json!({"plan": "Enterprise"})),
            rejected: with(&create, json!({"cuSize": null})),
        },
        Case {
            kind: "ZillizCluster",
            path: "spec",
            message: "cuType and cuSize are for dedicated plans (Standard, Enterprise) only",
            old: None,
            accepted: free.clone(),
            rejected: with(&free, json!({"cuSize": 2})),
        },
        Case {
            kind: "ZillizCluster",
            path: "spec",
            message: "desiredStatus Suspended needs a dedicated plan (Standard, Enterprise)",
            old: None,
            accepted: with(&create, json!({"desiredStatus": "Suspended"})),
            rejected: with(&free, json!({"desiredStatus": "Suspended"})),
        },
    ]);
    let col_ref = json!({"collectionName": "c", "clusterRef": {"name": "zc"}});
    let col_conn = json!({"collectionName": "c", "connection": conn});
    v.extend([
        Case {
            kind: "ZillizCollection",
            path: "spec.clusterRef",
            message: "clusterRef is immutable",
            old: Some(col_ref.clone()),
            accepted: with(&col_ref, orphan.clone()),
            rejected: with(&col_ref, json!({"clusterRef": {"name": "zc2"}})),
        },
        Case {
            kind: "ZillizCollection",
            path: "spec.collectionName",
            message: "collectionName is immutable",
            old: Some(col_ref.clone()),
            accepted: with(&col_ref, orphan.clone()),
            rejected: with(&col_ref, json!({"collectionName": "d"})),
        },
        Case {
            kind: "ZillizCollection",
            path: "spec.connection",
            message: "connection.endpoint is immutable",
            old: Some(col_conn.clone()),
            accepted: with(
                &col_conn,
                json!({"connection": {"credentialsSecretRef": {"name": "t"}}}),
            ),
            rejected: with(&col_conn, json!({"connection": {"endpoint": "http://b"}})),
        },
        Case {
            kind: "ZillizCollection",
            path: "spec.dbName",
            message: "dbName is immutable",
            // dbName is defaulted to "default": the rule sees it on both sides
            old: Some(col_ref.clone()),
            accepted: with(&col_ref, json!({"dbName": "default"})),
            rejected: with(&col_ref, json!({"dbName": "other"})),
        },
        Case {
            kind: "ZillizCollection",
            path: "spec",
            message: "set exactly one of clusterRef and connection",
            old: None,
            accepted: col_ref.clone(),
            rejected: with(&col_ref, json!({"connection": conn})),
        },
        Case {
            kind: "ZillizCollection",
            path: "spec",
            message: "clusterRef and connection cannot be added or removed",
            old: Some(col_ref.clone()),
            accepted: with(&col_ref, orphan.clone()),
            rejected: col_conn.clone(),
        },
    ]);
    // creating from spec (issue 14): schema xor quickSetup, v1 only with quickSetup, immutable
    let fields = json!([
        {"name": "id", "dataType": "Int64", "isPrimary": true},
        {"name": "v", "dataType": "FloatVector", "dim": 8}
    ]);
    let schema = with(&col_conn, json!({"schema": {"fields": fields}}));
    let quick = with(&col_conn, json!({"quickSetup": {"dimension": 8}}));
    let sharded = with(&quick, json!({"params": {"shardsNum": 1}}));
    v.extend([
        Case {
            kind: "ZillizCollection",
            path: "spec",
            message: "set schema or quickSetup, not both",
            old: None,
            accepted: schema.clone(),
            rejected: with(&schema, json!({"quickSetup": {"dimension": 8}})),
        },
        Case {
            kind: "ZillizCollection",
            path: "spec",
            message: "REST v1 can only create from quickSetup; use apiVersion v2 for a custom schema",
            old: None,
            accepted: with(&quick, json!({"apiVersion": "v1"})),
            rejected: with(&schema, json!({"apiVersion": "v1"})),
        },
        Case {
            kind: "ZillizCollection",
            path: "spec",
            message: "loadState needs apiVersion v2 (REST v1 has no load or release)",
            old: None,
            accepted: with(&quick, json!({"loadState": "Released"})),
            rejected: with(&quick, json!({"apiVersion": "v1", "loadState": "Loaded"})),
        },
        Case {
            kind: "ZillizCollection",
            path: "spec",
            message: "schema is immutable once set; create a new object for a new schema",
            old: Some(schema.clone()),
            accepted: with(&schema, orphan.clone()),
            rejected: col_conn.clone(),
        },
        Case {
            kind: "ZillizCollection",
            path: "spec",
            message: "quickSetup is immutable once set; create a new object for a new collection",
            old: Some(quick.clone()),
            accepted: with(&quick, orphan.clone()),
            rejected: col_conn.clone(),
        },
        Case {
            kind: "ZillizCollection",
            path: "spec.schema",
            message: "schema is immutable; create a new object for a new schema",
            old: Some(schema.clone()),
            accepted: with(&schema, orphan.clone()),
            rejected: with(&schema, json!({"schema": {"enableDynamicField": true}})),
        },
        Case {
            kind: "ZillizCollection",
            path: "spec.quickSetup",
            message: "quickSetup is immutable; create a new object for a new collection",
            old: Some(quick.clone()),
            accepted: with(&quick, orphan.clone()),
            rejected: with(&quick, json!({"quickSetup": {"dimension": 16}})),
        },
        Case {
            kind: "ZillizCollection",
            path: "spec.params.shardsNum",
            message: "shardsNum is immutable; create a new object for another shard count",
            old: Some(sharded.clone()),
            accepted: with(&sharded, json!({"params": {"ttlSeconds": 60}})),
            rejected: with(&sharded, json!({"params": {"shardsNum": 2}})),
        },
        Case {
            kind: "ZillizCollection",
            path: "spec.schema",
            message: "exactly one field must be isPrimary",
            old: None,
            accepted: schema.clone(),
            rejected: with(
                &col_conn,
                json!({"schema": {"fields": [{"name": "v", "dataType": "FloatVector", "dim": 8}]}}),
            ),
        },
        Case {
            kind: "ZillizCollection",
            path: "spec.schema.fields[*]",
            message: "a dense vector field needs dim",
            old: None,
            accepted: schema.clone(),
            rejected: with(
                &col_conn,
                json!({"schema": {"fields": [
                    {"name": "id", "dataType": "Int64", "isPrimary": true},
                    {"name": "v", "dataType": "FloatVector"}
                ]}}),
            ),
        },
        Case {
            kind: "ZillizCollection",
            path: "spec.schema.fields[*]",
            message: "a VarChar field needs maxLength",
            old: None,
            accepted: with(
                &col_conn,
                json!({"schema": {"fields": [
                    {"name": "id", "dataType": "VarChar", "isPrimary": true, "maxLength": 64}
                ]}}),
            ),
            rejected: with(
                &col_conn,
                json!({"schema": {"fields": [
                    {"name": "id", "dataType": "VarChar", "isPrimary": true}
                ]}}),
            ),
        },
    ]);
    let index = json!({"indexName": "i", "collectionRef": {"name": "col"}, "fieldName": "v",
        "indexType": "HNSW", "metricType": "COSINE", "params": {"M": "16"}});
    for (path, message, change) in [
        (
            "spec.fieldName",
            "fieldName is immutable; create a new object for another index",
            json!({"fieldName": "w"}),
        ),
        (
            "spec.indexType",
            "indexType is immutable",
            json!({"indexType": "IVF_FLAT"}),
        ),
        (
            "spec.metricType",
            "metricType is immutable",
            json!({"metricType": "L2"}),
        ),
        (
            "spec.params",
            "params are immutable",
            json!({"params": {"M": "32"}}),
        ),
    ] {
        v.push(Case {
            kind: "ZillizIndex",
            path,
            message,
            old: Some(index.clone()),
            accepted: with(&index, orphan.clone()),
            rejected: with(&index, change),
        });
    }
    // managementPolicies: '*' stands alone, on every kind
    for (kind, base) in [
        ("ZillizCluster", cluster.clone()),
        ("ZillizCollection", col_conn.clone()),
        (
            "ZillizPartition",
            json!({"partitionName": "p", "collectionRef": {"name": "col"}}),
        ),
        (
            "ZillizIndex",
            json!({"indexName": "i", "collectionRef": {"name": "col"}}),
        ),
    ] {
        v.push(Case {
            kind,
            path: "spec.managementPolicies",
            message: "'*' stands alone: write [\"*\"] or list the actions",
            old: None,
            accepted: with(&base, json!({"managementPolicies": ["Observe", "Delete"]})),
            rejected: with(&base, json!({"managementPolicies": ["*", "Delete"]})),
        });
    }
    for (kind, name_field) in [
        ("ZillizPartition", "partitionName"),
        ("ZillizIndex", "indexName"),
    ] {
        let by_ref = json!({name_field: "p", "collectionRef": {"name": "col"}});
        let direct = json!({name_field: "p", "collectionName": "c", "clusterRef": {"name": "zc"}});
        let direct_conn = json!({name_field: "p", "collectionName": "c", "connection": conn});
        let name_path = if name_field == "partitionName" {
            ("spec.partitionName", "partitionName is immutable")
        } else {
            ("spec.indexName", "indexName is immutable")
        };
        v.extend([
            Case {
                kind,
                path: "spec.clusterRef",
                message: "clusterRef is immutable",
                old: Some(direct.clone()),
                accepted: with(&direct, orphan.clone()),
                rejected: with(&direct, json!({"clusterRef": {"name": "zc2"}})),
            },
            Case {
                kind,
                path: "spec.collectionName",
                message: "collectionName is immutable",
                old: Some(direct.clone()),
                accepted: with(&direct, orphan.clone()),
                rejected: with(&direct, json!({"collectionName": "d"})),
            },
            Case {
                kind,
                path: "spec.collectionRef",
                message: "collectionRef is immutable",
                old: Some(by_ref.clone()),
                accepted: with(&by_ref, orphan.clone()),
                rejected: with(&by_ref, json!({"collectionRef": {"name": "col2"}})),
            },
            Case {
                kind,
                path: "spec.connection",
                message: "connection.endpoint is immutable",
                old: Some(direct_conn.clone()),
                accepted: with(
                    &direct_conn,
                    json!({"connection": {"credentialsSecretRef": {"name": "t"}}}),
                ),
                rejected: with(&direct_conn, json!({"connection": {"endpoint": "http://b"}})),
            },
            Case {
                kind,
                path: "spec.dbName",
                message: "dbName is immutable",
                old: Some(with(&direct, json!({"dbName": "db"}))),
                accepted: with(&direct, json!({"dbName": "db", "deletionPolicy": "Orphan"})),
                rejected: with(&direct, json!({"dbName": "db2"})),
            },
            Case {
                kind,
                path: name_path.0,
                message: name_path.1,
                old: Some(by_ref.clone()),
                accepted: with(&by_ref, orphan.clone()),
                rejected: with(&by_ref, json!({name_field: "p2"})),
            },
            Case {
                kind,
                path: "spec",
                message: "set collectionRef, or collectionName with exactly one of clusterRef and connection",
                old: None,
                accepted: by_ref.clone(),
                rejected: with(&by_ref, json!({"collectionName": "c"})),
            },
            Case {
                kind,
                path: "spec",
                message: "the collection's address cannot be added or removed",
                old: Some(direct.clone()),
                accepted: with(&direct, orphan.clone()),
                rejected: with(&direct, json!({"dbName": "db"})),
            },
        ]);
    }
    v
}

/// Every rule of the CRDs: (kind, path, message).
fn rules_in(crds: &[Value]) -> BTreeSet<(String, String, String)> {
    fn walk(s: &Value, kind: &str, path: &str, out: &mut BTreeSet<(String, String, String)>) {
        for r in s["x-kubernetes-validations"]
            .as_array()
            .into_iter()
            .flatten()
        {
            out.insert((
                kind.to_string(),
                path.to_string(),
                r["message"].as_str().unwrap_or("").to_string(),
            ));
        }
        for (k, p) in s["properties"].as_object().into_iter().flatten() {
            let at = if path.is_empty() {
                k.clone()
            } else {
                format!("{path}.{k}")
            };
            walk(p, kind, &at, out);
        }
        if s["items"].is_object() {
            walk(&s["items"], kind, &format!("{path}[*]"), out);
        }
    }
    let mut out = BTreeSet::new();
    for crd in crds {
        let kind = crd["spec"]["names"]["kind"].as_str().unwrap_or("");
        for v in crd["spec"]["versions"].as_array().into_iter().flatten() {
            walk(&v["schema"]["openAPIV3Schema"], kind, "", &mut out);
        }
    }
    out
}

fn url(kind: &str) -> String {
    let plural = match kind {
        "ZillizCluster" => "zillizclusters",
        "ZillizCollection" => "zillizcollections",
        "ZillizPartition" => "zillizpartitions",
        _ => "zillizindexes",
    };
    format!("/apis/zilliz.io/v1alpha1/namespaces/default/{plural}")
}

fn object(kind: &str, name: &str, spec: &Value) -> String {
    json!({"apiVersion": "zilliz.io/v1alpha1", "kind": kind, "metadata": {"name": name},
           "spec": spec})
    .to_string()
}

/// Create `old` as `name`, then replace its spec with `spec` by JSON patch.
async fn update(
    server: &TestServer,
    kind: &str,
    name: &str,
    old: &Value,
    spec: &Value,
) -> (u16, Value) {
    let (c, v) = req(
        server,
        "POST",
        &url(kind),
        "application/json",
        &object(kind, name, old),
    )
    .await;
    assert_eq!(c, 201, "{kind} {old}: {v}");
    let patch = json!([{"op": "replace", "path": "/spec", "value": spec}]).to_string();
    req(
        server,
        "PATCH",
        &format!("{}/{name}", url(kind)),
        "application/json-patch+json",
        &patch,
    )
    .await
}

#[tokio::test]
async fn every_rule_of_the_operator_crds_accepts_and_rejects() {
    let Some(crds) = operator_crds() else { return };
    let server = TestServer::start().await.expect("server");
    for crd in &crds {
        let (c, v) = req(
            &server,
            "POST",
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
            "application/json",
            &crd.to_string(),
        )
        .await;
        assert_eq!(c, 201, "every rule compiles: {v}");
    }
    let cases = cases();
    let covered: BTreeSet<(String, String, String)> = cases
        .iter()
        .map(|c| {
            (
                c.kind.to_string(),
                c.path.to_string(),
                c.message.to_string(),
            )
        })
        .collect();
    let in_crds = rules_in(&crds);
    assert_eq!(
        in_crds.difference(&covered).collect::<Vec<_>>(),
        Vec::<&(String, String, String)>::new(),
        "rules of the CRDs without a case here"
    );
    assert_eq!(
        covered.difference(&in_crds).collect::<Vec<_>>(),
        Vec::<&(String, String, String)>::new(),
        "cases of rules the CRDs no longer have"
    );
    // a list item's path names its index (`fields[1]`); the rule's path says `[*]`
    let item = regex::Regex::new(r"\[\d+\]").expect("regex");
    for (i, case) in cases.iter().enumerate() {
        let what = format!("{} {} {:?}", case.kind, case.path, case.message);
        let (accepted, rejected) = match &case.old {
            None => (
                req(
                    &server,
                    "POST",
                    &url(case.kind),
                    "application/json",
                    &object(case.kind, &format!("a{i}"), &case.accepted),
                )
                .await,
                req(
                    &server,
                    "POST",
                    &url(case.kind),
                    "application/json",
                    &object(case.kind, &format!("r{i}"), &case.rejected),
                )
                .await,
            ),
            Some(old) => (
                update(&server, case.kind, &format!("a{i}"), old, &case.accepted).await,
                update(&server, case.kind, &format!("r{i}"), old, &case.rejected).await,
            ),
        };
        assert!(
            accepted.0 == 200 || accepted.0 == 201,
            "{what} accepts {}: {}",
            case.accepted,
            accepted.1
        );
        assert_eq!(
            rejected.0, 422,
            "{what} rejects {}: {}",
            case.rejected, rejected.1
        );
        let causes: Vec<(String, String)> = rejected.1["details"]["causes"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| {
                (
                    c["field"].as_str().unwrap_or("").to_string(),
                    c["message"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect();
        assert!(
            causes
                .iter()
                .any(|(f, m)| item.replace_all(f, "[*]") == case.path
                    && m.starts_with("Invalid value")
                    && m.ends_with(case.message)),
            "{what}: {causes:?}"
        );
        assert_eq!(causes.len(), 1, "{what}: only this rule fails: {causes:?}");
    }
    server.shutdown().await;
}

struct Kubectl {
    server: TestServer,
    dir: PathBuf,
}

impl Kubectl {
    async fn new() -> Kubectl {
        let server = TestServer::start().await.expect("server");
        let dir = std::env::temp_dir().join(format!("kube-test-server-crd-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        server
            .write_kubeconfig(&dir.join("kubeconfig"))
            .expect("kubeconfig");
        Kubectl { server, dir }
    }

    async fn run(&self, args: &[&str]) -> (bool, String, String) {
        let out = tokio::process::Command::new(KUBECTL)
            .arg("--kubeconfig")
            .arg(self.dir.join("kubeconfig"))
            .args(args)
            .env("KUBECACHEDIR", self.dir.join("cache"))
            .kill_on_drop(true)
            .output()
            .await
            .expect("kubectl runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    }

    async fn ok(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.run(args).await;
        assert!(ok, "kubectl {args:?} failed: {out}{err}");
        out
    }

    async fn fails(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.run(args).await;
        assert!(!ok, "kubectl {args:?} should fail: {out}");
        err
    }

    fn file(&self, name: &str, text: &str) -> String {
        let p = self.dir.join(name);
        std::fs::write(&p, text).expect("write");
        p.to_string_lossy().to_string()
    }
}

#[tokio::test]
async fn kubectl_against_the_operator_crds() {
    if !Path::new(KUBECTL).exists() {
        skip_or_fail(&format!("{KUBECTL} is missing"));
        return;
    }
    if operator_crds().is_none() {
        return;
    }
    let k = Kubectl::new().await;
    k.ok(&["apply", "-f", &crd_file().to_string_lossy()]).await;
    k.ok(&[
        "wait",
        "--for",
        "condition=established",
        "crd",
        "--all",
        "--timeout=10s",
    ])
    .await;

    // invalid: both clusterRef and connection
    let both = k.file(
        "both.yaml",
        "apiVersion: zilliz.io/v1alpha1
kind: ZillizCollection
metadata: {name: both}
spec:
  collectionName: docs
  clusterRef: {name: analytics}
  connection: {endpoint: 'http://milvus:19530', credentialsSecretRef: {name: s}}
",
    );
    let err = k.fails(&["apply", "-f", &both]).await;
    assert!(
        err.contains("The ZillizCollection \"both\" is invalid: spec: Invalid value: set exactly one of clusterRef and connection"),
        "{err}"
    );
    let err = k.fails(&["apply", "--server-side", "-f", &both]).await;
    assert!(
        err.contains("set exactly one of clusterRef and connection"),
        "{err}"
    );
    let err = k.fails(&["get", "zcol", "both"]).await;
    assert!(
        err.contains("NotFound") || err.contains("not found"),
        "{err}"
    );

    // valid: passes, with the schema's defaults
    let docs = "apiVersion: zilliz.io/v1alpha1
kind: ZillizCollection
metadata: {name: docs}
spec:
  collectionName: docs
  clusterRef: {name: analytics}
";
    k.ok(&["apply", "-f", &k.file("docs.yaml", docs)]).await;
    let got: Value =
        serde_json::from_str(&k.ok(&["get", "zcol", "docs", "-o", "json"]).await).expect("json");
    assert_eq!(
        got["spec"],
        json!({"collectionName": "docs", "clusterRef": {"name": "analytics"},
               "dbName": "default", "deletionPolicy": "Delete", "apiVersion": "v2",
               "managementPolicies": ["*"]})
    );

    // an unknown field: kubectl asks for strict field validation, and gets kube's error;
    // with --validate=false the field is pruned
    let typo = format!("{docs}  delPolicy: Orphan\n");
    let typo = k.file("typo.yaml", &typo);
    let err = k.fails(&["apply", "-f", &typo]).await;
    assert!(
        err.contains("strict decoding error: unknown field \"spec.delPolicy\""),
        "{err}"
    );
    k.ok(&["apply", "--validate=false", "-f", &typo]).await;
    let spec = k
        .ok(&["get", "zcol", "docs", "-o", "jsonpath={.spec}"])
        .await;
    assert!(
        !spec.contains("delPolicy") && spec.contains("\"deletionPolicy\":\"Delete\""),
        "{spec}"
    );

    // an immutable field, refused on update (client-side apply, server-side apply, patch)
    let renamed = k.file(
        "renamed.yaml",
        &docs.replace("collectionName: docs", "collectionName: other"),
    );
    for args in [
        vec!["apply", "-f", renamed.as_str()],
        vec![
            "apply",
            "--server-side",
            "--force-conflicts",
            "-f",
            renamed.as_str(),
        ],
        vec![
            "patch",
            "zcol",
            "docs",
            "--type=merge",
            "-p",
            r#"{"spec":{"collectionName":"other"}}"#,
        ],
    ] {
        let err = k.fails(&args).await;
        assert!(
            err.contains(
                "spec.collectionName: Invalid value: \"other\": collectionName is immutable"
            ),
            "{args:?}: {err}"
        );
    }
    let name = k
        .ok(&[
            "get",
            "zcol",
            "docs",
            "-o",
            "jsonpath={.spec.collectionName}",
        ])
        .await;
    assert_eq!(name, "docs");
    // the operator's status write (server-side apply on /status) still passes
    k.ok(&[
        "patch",
        "zcol",
        "docs",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"conditions":[{"type":"Ready","status":"True","reason":"Available","lastTransitionTime":"2025-01-01T00:00:00Z"}]}}"#,
    ])
    .await;
    let msg = k
        .ok(&[
            "get",
            "zcol",
            "docs",
            "-o",
            "jsonpath={.status.conditions[0].message}|{.status.conditions[0].reason}",
        ])
        .await;
    // `message` defaulted to "" by the schema
    assert_eq!(msg, "|Available");
    let _ = std::fs::remove_dir_all(&k.dir);
    k.server.shutdown().await;
}
