//! Server-side apply field ownership: `metadata.managedFields`, conflicts,
//! forced applies, removal of fields a manager stopped applying, and
//! ownership taken by updates.

mod common;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use kube_test_server::TestServer;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One HTTP/1.1 request with an optional User-Agent; returns (status, JSON body).
async fn req_ua(
    server: &TestServer,
    method: &str,
    path: &str,
    ct: &str,
    body: &str,
    user_agent: Option<&str>,
) -> (u16, Value) {
    let mut s = tokio::net::TcpStream::connect(server.addr())
        .await
        .expect("connect");
    let ua = user_agent
        .map(|u| format!("User-Agent: {u}\r\n"))
        .unwrap_or_default();
    let msg = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{ua}Content-Type: {ct}\r\nContent-Length: {}\r\n\r\n{body}",
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

async fn req(server: &TestServer, method: &str, path: &str, ct: &str, body: &str) -> (u16, Value) {
    req_ua(server, method, path, ct, body, None).await
}

const APPLY: &str = "application/apply-patch+yaml";
const MERGE: &str = "application/merge-patch+json";
const LEASE: &str = "/apis/coordination.k8s.io/v1/namespaces/default/leases/l";
const CM: &str = "/api/v1/namespaces/default/configmaps/cm";

fn lease_cfg(holder: &str) -> String {
    json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "l"},
           "spec": {"holderIdentity": holder, "leaseDurationSeconds": 3}})
    .to_string()
}

fn cm_cfg(data: Value) -> String {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}, "data": data})
        .to_string()
}

async fn apply(
    server: &TestServer,
    path: &str,
    manager: &str,
    force: bool,
    cfg: &str,
) -> (u16, Value) {
    let q = format!("{path}?fieldManager={manager}&force={force}");
    req(server, "PATCH", &q, APPLY, cfg).await
}

/// The managedFields entry of `manager` (with `operation`), or Null.
fn entry<'a>(obj: &'a Value, manager: &str, operation: &str) -> &'a Value {
    obj["metadata"]["managedFields"]
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|e| e["manager"] == manager && e["operation"] == operation)
        })
        .unwrap_or(&Value::Null)
}

fn managers(obj: &Value) -> Vec<String> {
    obj["metadata"]["managedFields"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| {
                    format!(
                        "{}/{}",
                        e["manager"].as_str().unwrap_or(""),
                        e["operation"].as_str().unwrap_or("")
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn two_managers_applying_different_values_conflict() {
    let server = TestServer::start().await.expect("server");
    let (c, created) = apply(&server, LEASE, "candidate-a", false, &lease_cfg("a")).await;
    assert_eq!(c, 201, "{created}");
    let a = entry(&created, "candidate-a", "Apply");
    assert_eq!(a["apiVersion"], "coordination.k8s.io/v1");
    assert_eq!(a["fieldsType"], "FieldsV1");
    assert!(a["time"].is_string(), "{a}");
    assert!(a.get("subresource").is_none());
    assert_eq!(
        a["fieldsV1"],
        json!({"f:spec": {"f:holderIdentity": {}, "f:leaseDurationSeconds": {}}})
    );

    let (c, status) = apply(&server, LEASE, "candidate-b", false, &lease_cfg("b")).await;
    assert_eq!(c, 409, "{status}");
    assert_eq!(status["reason"], "Conflict");
    assert_eq!(status["code"], 409);
    assert_eq!(
        status["message"],
        "Apply failed with 1 conflict: conflict with \"candidate-a\": .spec.holderIdentity"
    );
    assert_eq!(
        status["details"]["causes"],
        json!([{"reason": "FieldManagerConflict", "message": "conflict with \"candidate-a\"", "field": ".spec.holderIdentity"}])
    );
    let (_, now) = req(&server, "GET", LEASE, "", "").await;
    assert_eq!(now["spec"]["holderIdentity"], "a");
    assert_eq!(
        now["metadata"]["resourceVersion"],
        created["metadata"]["resourceVersion"]
    );
    assert_eq!(managers(&now), ["candidate-a/Apply"]);

    // two conflicting fields: both reported
    let two = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                     "spec": {"holderIdentity": "b", "leaseDurationSeconds": 9}})
    .to_string();
    let (c, status) = apply(&server, LEASE, "candidate-b", false, &two).await;
    assert_eq!(c, 409);
    assert_eq!(
        status["message"],
        "Apply failed with 2 conflicts: conflicts with \"candidate-a\":\n- .spec.holderIdentity\n- .spec.leaseDurationSeconds"
    );
    assert_eq!(
        status["details"]["causes"].as_array().map(Vec::len),
        Some(2)
    );
    server.shutdown().await;
}

#[tokio::test]
async fn same_value_is_shared_and_force_moves_ownership() {
    let server = TestServer::start().await.expect("server");
    let (c, _) = apply(&server, CM, "a", false, &cm_cfg(json!({"x": "1"}))).await;
    assert_eq!(c, 201);
    // same value: no conflict, both own data.x
    let (c, shared) = apply(&server, CM, "b", false, &cm_cfg(json!({"x": "1"}))).await;
    assert_eq!(c, 200, "{shared}");
    let fx = json!({"f:data": {"f:x": {}}});
    assert_eq!(entry(&shared, "a", "Apply")["fieldsV1"], fx);
    assert_eq!(entry(&shared, "b", "Apply")["fieldsV1"], fx);
    // a shared field changed by one of its owners conflicts with the other
    let (c, status) = apply(&server, CM, "b", false, &cm_cfg(json!({"x": "2"}))).await;
    assert_eq!(
        (c, status["message"].as_str()),
        (
            409,
            Some("Apply failed with 1 conflict: conflict with \"a\": .data.x")
        )
    );
    // force: b takes it, a owns nothing any more
    let (c, forced) = apply(&server, CM, "b", true, &cm_cfg(json!({"x": "2"}))).await;
    assert_eq!(c, 200, "{forced}");
    assert_eq!(forced["data"]["x"], "2");
    assert_eq!(managers(&forced), ["b/Apply"]);
    let (c, status) = apply(&server, CM, "a", false, &cm_cfg(json!({"x": "3"}))).await;
    assert_eq!(c, 409);
    assert_eq!(
        status["details"]["causes"][0]["message"],
        "conflict with \"b\""
    );
    server.shutdown().await;
}

#[tokio::test]
async fn apply_that_drops_a_field_removes_it_unless_someone_else_owns_it() {
    let server = TestServer::start().await.expect("server");
    let cfg = |data: Value, labels: Value| {
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": "cm", "labels": labels}, "data": data})
        .to_string()
    };
    let (c, _) = apply(
        &server,
        CM,
        "a",
        false,
        &cfg(
            json!({"x": "1", "y": "2", "z": "3"}),
            json!({"app": "demo", "tier": "t"}),
        ),
    )
    .await;
    assert_eq!(c, 201);
    // b shares z
    let (c, _) = apply(&server, CM, "b", false, &cm_cfg(json!({"z": "3"}))).await;
    assert_eq!(c, 200);
    let (c, obj) = apply(
        &server,
        CM,
        "a",
        false,
        &cfg(json!({"x": "1"}), json!({"app": "demo"})),
    )
    .await;
    assert_eq!(c, 200, "{obj}");
    assert_eq!(
        obj["data"],
        json!({"x": "1", "z": "3"}),
        "y removed, z kept for b"
    );
    assert_eq!(obj["metadata"]["labels"], json!({"app": "demo"}));
    assert_eq!(
        entry(&obj, "a", "Apply")["fieldsV1"],
        json!({"f:data": {"f:x": {}}, "f:metadata": {"f:labels": {"f:app": {}}}})
    );
    // a manager that applies nothing but the identity gives everything up
    let (c, obj) = apply(
        &server,
        CM,
        "b",
        false,
        &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}}).to_string(),
    )
    .await;
    assert_eq!(c, 200);
    assert_eq!(obj["data"], json!({"x": "1"}));
    assert_eq!(managers(&obj), ["a/Apply"]);

    // keyed lists (a Deployment's containers by name): an item dropped by its only
    // applier goes away, the other stays; FieldsV1 names the items by key
    let dep = |containers: Value| {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
               "spec": {"selector": {"matchLabels": {"app": "d"}},
                        "template": {"metadata": {"labels": {"app": "d"}},
                                     "spec": {"containers": containers}}}})
        .to_string()
    };
    let path = "/apis/apps/v1/namespaces/default/deployments/d";
    let (c, _) = apply(
        &server,
        path,
        "a",
        false,
        &dep(json!([{"name": "main", "image": "m:1"}, {"name": "side", "image": "s:1"}])),
    )
    .await;
    assert_eq!(c, 201);
    let (c, d) = apply(
        &server,
        path,
        "a",
        false,
        &dep(json!([{"name": "main", "image": "m:2"}])),
    )
    .await;
    assert_eq!(c, 200, "{d}");
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"],
        json!([{"name": "main", "image": "m:2"}])
    );
    assert_eq!(
        entry(&d, "a", "Apply")["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"],
        json!({"k:{\"name\":\"main\"}": {".": {}, "f:image": {}, "f:name": {}}})
    );
    // another manager's non-forced apply of a different image in the same item conflicts
    let (c, status) = apply(
        &server,
        path,
        "b",
        false,
        &dep(json!([{"name": "main", "image": "m:3"}])),
    )
    .await;
    assert_eq!(c, 409);
    assert_eq!(
        status["details"]["causes"][0]["field"],
        ".spec.template.spec.containers[name=\"main\"].image"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn updates_take_ownership_and_later_applies_conflict_with_them() {
    let server = TestServer::start().await.expect("server");
    let (c, _) = apply(
        &server,
        CM,
        "a",
        false,
        &cm_cfg(json!({"x": "1", "y": "1"})),
    )
    .await;
    assert_eq!(c, 201);
    // merge patch by "editor": takes data.x from a
    let (c, patched) = req(
        &server,
        "PATCH",
        &format!("{CM}?fieldManager=editor"),
        MERGE,
        r#"{"data":{"x":"2"}}"#,
    )
    .await;
    assert_eq!(c, 200, "{patched}");
    let ed = entry(&patched, "editor", "Update");
    assert_eq!(ed["apiVersion"], "v1");
    assert_eq!(ed["fieldsV1"], json!({"f:data": {"f:x": {}}}));
    assert_eq!(
        entry(&patched, "a", "Apply")["fieldsV1"],
        json!({"f:data": {"f:y": {}}})
    );
    // a's non-forced apply of its old value now conflicts with the updater
    let (c, status) = apply(
        &server,
        CM,
        "a",
        false,
        &cm_cfg(json!({"x": "1", "y": "1"})),
    )
    .await;
    assert_eq!(c, 409);
    assert_eq!(
        status["message"],
        "Apply failed with 1 conflict: conflict with \"editor\" using v1: .data.x"
    );
    // applying the updater's value is fine (shared)
    let (c, _) = apply(
        &server,
        CM,
        "a",
        false,
        &cm_cfg(json!({"x": "2", "y": "1"})),
    )
    .await;
    assert_eq!(c, 200);

    // without fieldManager the manager is the User-Agent's first segment
    let (c, obj) = req_ua(
        &server,
        "PATCH",
        CM,
        MERGE,
        r#"{"data":{"w":"1"}}"#,
        Some("kubectl-edit/v1.32.0 (linux/amd64) kubernetes/abc"),
    )
    .await;
    assert_eq!(c, 200);
    assert_eq!(
        entry(&obj, "kubectl-edit", "Update")["fieldsV1"],
        json!({"f:data": {"f:w": {}}})
    );

    // setting a field to null removes it from everyone
    let (c, obj) = req(
        &server,
        "PATCH",
        &format!("{CM}?fieldManager=janitor"),
        MERGE,
        r#"{"data":{"x":null}}"#,
    )
    .await;
    assert_eq!(c, 200);
    assert!(obj["data"].get("x").is_none());
    assert_eq!(
        entry(&obj, "a", "Apply")["fieldsV1"],
        json!({"f:data": {"f:y": {}}})
    );
    assert!(
        entry(&obj, "editor", "Update").is_null(),
        "editor owned only x: {obj}"
    );
    assert!(
        entry(&obj, "janitor", "Update").is_null(),
        "nothing left to own"
    );

    // JSON patch and strategic merge patch are updates too
    let (c, obj) = req(
        &server,
        "PATCH",
        &format!("{CM}?fieldManager=jp"),
        "application/json-patch+json",
        r#"[{"op":"add","path":"/data/j","value":"1"}]"#,
    )
    .await;
    assert_eq!(c, 200);
    assert_eq!(
        entry(&obj, "jp", "Update")["fieldsV1"],
        json!({"f:data": {"f:j": {}}})
    );
    let (c, obj) = req(
        &server,
        "PATCH",
        &format!("{CM}?fieldManager=smp"),
        "application/strategic-merge-patch+json",
        r#"{"metadata":{"labels":{"k":"v"}}}"#,
    )
    .await;
    assert_eq!(c, 200);
    assert_eq!(
        entry(&obj, "smp", "Update")["fieldsV1"],
        json!({"f:metadata": {"f:labels": {".": {}, "f:k": {}}}})
    );

    // PUT (update) by a create-time manager; managedFields in the body are not taken
    // when absent, and the stored ones come back
    let mut body = obj.clone();
    body["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("managedFields");
    body["data"]["p"] = json!("1");
    let (c, put) = req(
        &server,
        "PUT",
        &format!("{CM}?fieldManager=putter"),
        "application/json",
        &body.to_string(),
    )
    .await;
    assert_eq!(c, 200, "{put}");
    assert_eq!(
        entry(&put, "putter", "Update")["fieldsV1"],
        json!({"f:data": {"f:p": {}}})
    );
    assert_eq!(entry(&put, "smp", "Update"), entry(&obj, "smp", "Update"));

    // apply configurations may not carry managedFields
    let bad = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm", "managedFields": [{"manager": "x"}]}}).to_string();
    let (c, _) = apply(&server, CM, "a", false, &bad).await;
    assert_eq!(c, 400);

    // create records an Update entry for its manager
    let (c, created) = req(
        &server,
        "POST",
        "/api/v1/namespaces/default/configmaps?fieldManager=creator",
        "application/json",
        r#"{"metadata":{"name":"c2","labels":{"a":"b"}},"data":{"k":"v"}}"#,
    )
    .await;
    assert_eq!(c, 201);
    assert_eq!(
        entry(&created, "creator", "Update")["fieldsV1"],
        json!({"f:data": {".": {}, "f:k": {}}, "f:metadata": {"f:labels": {".": {}, "f:a": {}}}})
    );
    server.shutdown().await;
}

#[tokio::test]
async fn no_op_apply_keeps_resource_version_and_timestamps() {
    let server = TestServer::start().await.expect("server");
    let (_, first) = apply(&server, CM, "a", false, &cm_cfg(json!({"x": "1"}))).await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (c, again) = apply(&server, CM, "a", false, &cm_cfg(json!({"x": "1"}))).await;
    assert_eq!(c, 200);
    assert_eq!(
        again["metadata"]["resourceVersion"],
        first["metadata"]["resourceVersion"]
    );
    assert_eq!(
        again["metadata"]["managedFields"],
        first["metadata"]["managedFields"]
    );
    // a no-op merge patch too
    let (_, p) = req(
        &server,
        "PATCH",
        &format!("{CM}?fieldManager=other"),
        MERGE,
        r#"{"data":{"x":"1"}}"#,
    )
    .await;
    assert_eq!(
        p["metadata"]["resourceVersion"],
        first["metadata"]["resourceVersion"]
    );
    assert_eq!(managers(&p), ["a/Apply"]);
    // but a new co-owner is a change
    let (_, shared) = apply(&server, CM, "b", false, &cm_cfg(json!({"x": "1"}))).await;
    assert_ne!(
        shared["metadata"]["resourceVersion"],
        first["metadata"]["resourceVersion"]
    );
    server.shutdown().await;
}

#[tokio::test]
async fn status_subresource_has_its_own_entries() {
    let (server, client) = common::start_with_crd().await;
    let api: Api<common::Gadget> = Api::namespaced(client, "default");
    api.create(&PostParams::default(), &common::gadget("g", 1))
        .await
        .expect("create");
    let st = api
        .patch_status(
            "g",
            &PatchParams::apply("zilliz-operator").force(),
            &Patch::Apply(json!({"apiVersion": "test.example.com/v1", "kind": "Gadget", "status": {"ready": true}})),
        )
        .await
        .expect("status apply");
    let mf = st.metadata.managed_fields.clone().unwrap_or_default();
    let e = mf
        .iter()
        .find(|e| e.manager.as_deref() == Some("zilliz-operator"))
        .expect("status entry");
    assert_eq!(e.operation.as_deref(), Some("Apply"));
    assert_eq!(e.subresource.as_deref(), Some("status"));
    assert_eq!(
        e.fields_v1.as_ref().map(|f| f.0.clone()),
        Some(json!({"f:status": {"f:ready": {}}}))
    );
    // the main resource's apply does not own (nor prune) status
    let main = api
        .patch(
            "g",
            &PatchParams::apply("zilliz-operator").force(),
            &Patch::Apply(json!({"apiVersion": "test.example.com/v1", "kind": "Gadget", "spec": {"size": 2}, "status": {"ready": false}})),
        )
        .await
        .expect("main apply");
    assert_eq!(main.status.map(|s| s.ready), Some(true));
    let mf = main.metadata.managed_fields.unwrap_or_default();
    let main_entry = mf
        .iter()
        .find(|e| e.manager.as_deref() == Some("zilliz-operator") && e.subresource.is_none())
        .expect("main entry");
    assert_eq!(
        main_entry.fields_v1.as_ref().map(|f| f.0.clone()),
        Some(json!({"f:spec": {"f:size": {}}}))
    );
    // re-applying the same status is a no-op
    let again = api
        .patch_status(
            "g",
            &PatchParams::apply("zilliz-operator").force(),
            &Patch::Apply(json!({"apiVersion": "test.example.com/v1", "kind": "Gadget", "status": {"ready": true}})),
        )
        .await
        .expect("status apply again");
    assert_eq!(
        again.metadata.resource_version,
        main.metadata.resource_version
    );
    server.shutdown().await;
}

#[tokio::test]
async fn kube_rs_sees_the_conflict_as_an_api_error() {
    let (server, client) = common::start().await;
    let leases: Api<Lease> = Api::namespaced(client, "default");
    let mut lease = Lease::default();
    lease.metadata.name = Some("l".into());
    leases
        .create(&PostParams::default(), &lease)
        .await
        .expect("create");
    let take = |who: &str| {
        json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
               "spec": {"holderIdentity": who, "leaseDurationSeconds": 3}})
    };
    leases
        .patch(
            "l",
            &PatchParams::apply("kube-lease-manager-a"),
            &Patch::Apply(take("a")),
        )
        .await
        .expect("first candidate wins");
    let err = leases
        .patch(
            "l",
            &PatchParams::apply("kube-lease-manager-b"),
            &Patch::Apply(take("b")),
        )
        .await
        .expect_err("second candidate loses");
    match &err {
        kube::Error::Api(s) => {
            assert_eq!((s.code, s.reason.as_str()), (409, "Conflict"), "{s:?}");
            assert!(s.message.contains(".spec.holderIdentity"), "{s:?}");
            // the cause type travels as `reason` (Go's StatusCause.Type is `json:"reason"`)
            let causes = s
                .details
                .as_ref()
                .map(|d| d.causes.clone())
                .unwrap_or_default();
            assert_eq!(causes.len(), 1, "{s:?}");
            assert_eq!(causes[0].reason, "FieldManagerConflict");
            assert_eq!(causes[0].field, ".spec.holderIdentity");
            assert_eq!(causes[0].message, "conflict with \"kube-lease-manager-a\"");
        }
        other => panic!("not an API error: {other:?}"),
    }
    // the lease manager's release (strategic merge patch of nulls) frees the fields,
    // after which another candidate's non-forced apply succeeds
    leases
        .patch(
            "l",
            &PatchParams {
                field_manager: Some("kube-lease-manager-a".into()),
                ..Default::default()
            },
            &Patch::Strategic(
                json!({"spec": {"holderIdentity": null, "leaseDurationSeconds": null}}),
            ),
        )
        .await
        .expect("release");
    let taken = leases
        .patch(
            "l",
            &PatchParams::apply("kube-lease-manager-b"),
            &Patch::Apply(take("b")),
        )
        .await
        .expect("free lease taken");
    assert_eq!(
        taken.spec.and_then(|s| s.holder_identity).as_deref(),
        Some("b")
    );

    // typed clients see the entries
    let cms: Api<ConfigMap> = Api::namespaced(leases.clone().into_client(), "default");
    let cm = cms
        .patch(
            "cm",
            &PatchParams::apply("me"),
            &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"a": "b"}})),
        )
        .await
        .expect("apply");
    let mf = cm.metadata.managed_fields.unwrap_or_default();
    assert_eq!(mf.len(), 1);
    assert_eq!(mf[0].manager.as_deref(), Some("me"));
    assert_eq!(mf[0].fields_type.as_deref(), Some("FieldsV1"));
    server.shutdown().await;
}
