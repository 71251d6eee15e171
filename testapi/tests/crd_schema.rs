//! Custom resources judged by their CRD as kube-apiserver does: structural-schema validation,
//! pruning, defaulting and `x-kubernetes-validations` rules, over raw HTTP (every write
//! path: create, PUT, merge and JSON patch, server-side apply, `/status`) on a small CRD of
//! this file; `tests/crd_kubectl.rs` does the same through kubectl and with the operator's
//! CRDs.

use kube_test_server::TestServer;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One HTTP/1.1 request; returns (status code, `Warning` headers, JSON body or Null).
async fn req(
    server: &TestServer,
    method: &str,
    path: &str,
    ct: &str,
    body: &str,
) -> (u16, Vec<String>, Value) {
    let mut s = tokio::net::TcpStream::connect(server.addr())
        .await
        .expect("connect");
    let msg = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nUser-Agent: raw/1\r\nContent-Type: {ct}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(msg.as_bytes()).await.expect("write");
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.expect("read");
    let text = String::from_utf8_lossy(&buf).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let code = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let warnings = head
        .lines()
        .filter_map(|l| l.strip_prefix("warning: ").or(l.strip_prefix("Warning: ")))
        .map(str::to_string)
        .collect();
    (
        code,
        warnings,
        serde_json::from_str(body).unwrap_or(Value::Null),
    )
}

const JSON: &str = "application/json";
const MERGE: &str = "application/merge-patch+json";
const JSON_PATCH: &str = "application/json-patch+json";
const APPLY: &str = "application/apply-patch+yaml";
const SPROCKETS: &str = "/apis/test.example.com/v1/namespaces/default/sprockets";

/// A CRD with a bit of everything kube-apiserver enforces.
fn sprocket_crd() -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "sprockets.test.example.com"},
        "spec": {
            "group": "test.example.com",
            "scope": "Namespaced",
            "names": {"plural": "sprockets", "singular": "sprocket", "kind": "Sprocket"},
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {
                        "spec": {
                            "type": "object",
                            "required": ["id"],
                            "x-kubernetes-validations": [{
                                "rule": "!has(self.min) || !has(self.max) || self.min <= self.max",
                                "messageExpression": "'min ' + string(self.min) + ' is above max ' + string(self.max)",
                                "fieldPath": ".min"
                            }],
                            "properties": {
                                "id": {"type": "string", "minLength": 1, "maxLength": 12,
                                       "pattern": "^[a-z][a-z0-9-]*$",
                                       "x-kubernetes-validations": [
                                           {"rule": "self == oldSelf", "message": "id is immutable"}]},
                                "mode": {"type": "string", "enum": ["fast", "slow"], "default": "fast"},
                                "replicas": {"type": "integer", "minimum": 1, "maximum": 5, "default": 1},
                                "min": {"type": "integer"},
                                "max": {"type": "integer"},
                                "tags": {"type": "array", "maxItems": 3,
                                         "items": {"type": "string", "maxLength": 8}},
                                "owner": {"type": "string", "nullable": true},
                                "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
                            }
                        },
                        "status": {
                            "type": "object",
                            "properties": {
                                "phase": {"type": "string", "enum": ["Pending", "Ready"]},
                                "count": {"type": "integer", "default": 0}
                            }
                        }
                    }
                }}
            }]
        }
    })
}

async fn server_with_sprockets() -> TestServer {
    let server = TestServer::start().await.expect("server");
    let (c, _, v) = req(
        &server,
        "POST",
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        JSON,
        &sprocket_crd().to_string(),
    )
    .await;
    assert_eq!(c, 201, "{v}");
    server
}

fn sprocket(name: &str, spec: Value) -> String {
    json!({"apiVersion": "test.example.com/v1", "kind": "Sprocket",
           "metadata": {"name": name}, "spec": spec})
    .to_string()
}

/// The causes of a 422 as `field: message` lines.
fn causes(v: &Value) -> Vec<String> {
    v["details"]["causes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            format!(
                "{} {}: {}",
                c["reason"].as_str().unwrap_or(""),
                c["field"].as_str().unwrap_or(""),
                c["message"].as_str().unwrap_or("")
            )
        })
        .collect()
}

#[tokio::test]
async fn create_is_validated_with_kube_status_and_causes() {
    let server = server_with_sprockets().await;
    let (c, _, v) = req(&server, "POST", SPROCKETS, JSON, &sprocket("s1", json!({}))).await;
    assert_eq!(c, 422, "{v}");
    assert_eq!(v["reason"], "Invalid");
    assert_eq!(v["details"]["kind"], "Sprocket");
    assert_eq!(v["details"]["group"], "test.example.com");
    assert_eq!(v["details"]["name"], "s1");
    // the missing field blocks the CEL rules, as kube-apiserver says
    assert_eq!(
        v["message"],
        "Sprocket.test.example.com \"s1\" is invalid: [spec.id: Required value, <nil>: Invalid value: \"null\": some validation rules were not checked because the object was invalid; correct the existing errors to complete validation]"
    );
    assert_eq!(causes(&v)[0], "FieldValueRequired spec.id: Required value");

    let bad = json!({"id": "Bad id", "mode": "warp", "replicas": 9, "tags": ["a", "b", "c", "d"],
                     "owner": 3});
    let (c, _, v) = req(&server, "POST", SPROCKETS, JSON, &sprocket("s1", bad)).await;
    assert_eq!(c, 422, "{v}");
    let got = causes(&v);
    for want in [
        "FieldValueInvalid spec.id: Invalid value: \"Bad id\": spec.id in body should match '^[a-z][a-z0-9-]*$'",
        "FieldValueNotSupported spec.mode: Unsupported value: \"warp\": supported values: \"fast\", \"slow\"",
        "FieldValueInvalid spec.replicas: Invalid value: 9: spec.replicas in body should be less than or equal to 5",
        "FieldValueTooMany spec.tags: Too many: 4: must have at most 3 items",
        "FieldValueTypeInvalid spec.owner: Invalid value: \"integer\": spec.owner in body must be of type string: \"integer\"",
    ] {
        assert!(got.contains(&want.to_string()), "{want}\nnot in {got:#?}");
    }
    let (c, _, v) = req(
        &server,
        "POST",
        SPROCKETS,
        JSON,
        &sprocket("s1", json!({"id": "abcdefghijklmnop"})),
    )
    .await;
    assert_eq!(c, 422, "{v}");
    assert_eq!(
        causes(&v)[0],
        "FieldValueTooLong spec.id: Too long: may not be more than 12 bytes"
    );

    // a CEL rule: messageExpression, fieldPath
    let (c, _, v) = req(
        &server,
        "POST",
        SPROCKETS,
        JSON,
        &sprocket("s1", json!({"id": "a", "min": 5, "max": 2})),
    )
    .await;
    assert_eq!(c, 422, "{v}");
    assert_eq!(
        v["message"],
        "Sprocket.test.example.com \"s1\" is invalid: spec.min: Invalid value: min 5 is above max 2"
    );
    // dry run is judged the same, and nothing was stored
    let (c, _, _) = req(
        &server,
        "POST",
        &format!("{SPROCKETS}?dryRun=All"),
        JSON,
        &sprocket("s1", json!({"id": "a", "min": 5, "max": 2})),
    )
    .await;
    assert_eq!(c, 422);
    let (c, _, _) = req(&server, "GET", &format!("{SPROCKETS}/s1"), JSON, "").await;
    assert_eq!(c, 404);
    // the valid one passes
    let (c, _, v) = req(
        &server,
        "POST",
        SPROCKETS,
        JSON,
        &sprocket("s1", json!({"id": "a", "min": 1, "max": 2, "owner": null})),
    )
    .await;
    assert_eq!(c, 201, "{v}");
    server.shutdown().await;
}

#[tokio::test]
async fn unknown_fields_are_pruned_and_defaults_applied() {
    let server = server_with_sprockets().await;
    let body = json!({"apiVersion": "test.example.com/v1", "kind": "Sprocket",
        "metadata": {"name": "s2"}, "bogus": 1,
        "spec": {"id": "b", "colour": "red", "extra": {"free": {"form": true}}},
        "status": {"phase": "Ready"}});
    let (c, warnings, v) = req(&server, "POST", SPROCKETS, JSON, &body.to_string()).await;
    assert_eq!(c, 201, "{v}");
    assert_eq!(
        warnings,
        [
            "299 - \"unknown field \\\"bogus\\\"\"",
            "299 - \"unknown field \\\"spec.colour\\\"\""
        ]
    );
    assert_eq!(
        v["spec"],
        json!({"id": "b", "mode": "fast", "replicas": 1, "extra": {"free": {"form": true}}})
    );
    assert!(v.get("bogus").is_none() && v.get("status").is_none(), "{v}");
    let (_, _, got) = req(&server, "GET", &format!("{SPROCKETS}/s2"), JSON, "").await;
    assert_eq!(got["spec"], v["spec"]);

    // fieldValidation=Strict refuses what would be pruned; Ignore prunes quietly
    let strict = json!({"apiVersion": "test.example.com/v1", "kind": "Sprocket",
        "metadata": {"name": "s3"}, "spec": {"id": "c", "colour": "red"}});
    let (c, _, v) = req(
        &server,
        "POST",
        &format!("{SPROCKETS}?fieldValidation=Strict"),
        JSON,
        &strict.to_string(),
    )
    .await;
    assert_eq!(c, 400, "{v}");
    assert_eq!(
        v["message"],
        "Sprocket in version \"v1\" cannot be handled as a Sprocket: strict decoding error: unknown field \"spec.colour\""
    );
    let (c, warnings, _) = req(
        &server,
        "POST",
        &format!("{SPROCKETS}?fieldValidation=Ignore"),
        JSON,
        &strict.to_string(),
    )
    .await;
    assert_eq!((c, warnings.len()), (201, 0));

    // a merge patch removing a defaulted field gets the default back; unknown fields go
    let (c, _, v) = req(
        &server,
        "PATCH",
        &format!("{SPROCKETS}/s2"),
        MERGE,
        r#"{"spec":{"mode":null,"replicas":3,"shape":"round"}}"#,
    )
    .await;
    assert_eq!(c, 200, "{v}");
    assert_eq!(v["spec"]["mode"], "fast");
    assert_eq!(v["spec"]["replicas"], 3);
    assert!(v["spec"].get("shape").is_none(), "{v}");
    assert_eq!(v["metadata"]["generation"], 2);

    // the status subresource: pruned and defaulted too, and validated
    let (c, _, v) = req(
        &server,
        "PATCH",
        &format!("{SPROCKETS}/s2/status"),
        MERGE,
        r#"{"status":{"phase":"Ready","junk":true}}"#,
    )
    .await;
    assert_eq!(c, 200, "{v}");
    assert_eq!(v["status"], json!({"phase": "Ready", "count": 0}));
    let (c, _, v) = req(
        &server,
        "PATCH",
        &format!("{SPROCKETS}/s2/status"),
        MERGE,
        r#"{"status":{"phase":"Gone"}}"#,
    )
    .await;
    assert_eq!(c, 422, "{v}");
    assert_eq!(
        causes(&v)[0],
        "FieldValueNotSupported status.phase: Unsupported value: \"Gone\": supported values: \"Pending\", \"Ready\""
    );

    // server-side apply: the unknown field is pruned and not owned
    let (c, _, v) = req(
        &server,
        "PATCH",
        &format!("{SPROCKETS}/s2?fieldManager=tool"),
        APPLY,
        r#"{"apiVersion":"test.example.com/v1","kind":"Sprocket","metadata":{"name":"s2"},"spec":{"id":"b","tags":["x"],"size":"L"}}"#,
    )
    .await;
    assert_eq!(c, 200, "{v}");
    assert_eq!(v["spec"]["tags"], json!(["x"]));
    assert!(v["spec"].get("size").is_none(), "{v}");
    let owned = v["metadata"]["managedFields"]
        .as_array()
        .and_then(|m| m.iter().find(|e| e["manager"] == "tool"))
        .map(|e| e["fieldsV1"].to_string())
        .unwrap_or_default();
    assert!(
        owned.contains("f:tags") && !owned.contains("f:size"),
        "{owned}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn immutable_field_is_refused_on_every_update_path() {
    let server = server_with_sprockets().await;
    let (c, _, v) = req(
        &server,
        "POST",
        SPROCKETS,
        JSON,
        &sprocket("s4", json!({"id": "a"})),
    )
    .await;
    assert_eq!(c, 201, "{v}");
    let rv = v["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let url = format!("{SPROCKETS}/s4");
    let want = "Sprocket.test.example.com \"s4\" is invalid: spec.id: Invalid value: \"b\": id is immutable";

    let mut put: Value = serde_json::from_str(&sprocket("s4", json!({"id": "b"}))).unwrap();
    put["metadata"]["resourceVersion"] = json!(rv);
    let (c, _, v) = req(&server, "PUT", &url, JSON, &put.to_string()).await;
    assert_eq!((c, v["message"].as_str()), (422, Some(want)), "{v}");
    let (c, _, v) = req(&server, "PATCH", &url, MERGE, r#"{"spec":{"id":"b"}}"#).await;
    assert_eq!((c, v["message"].as_str()), (422, Some(want)), "{v}");
    let (c, _, v) = req(
        &server,
        "PATCH",
        &url,
        JSON_PATCH,
        r#"[{"op":"replace","path":"/spec/id","value":"b"}]"#,
    )
    .await;
    assert_eq!((c, v["message"].as_str()), (422, Some(want)), "{v}");
    let (c, _, v) = req(
        &server,
        "PATCH",
        &format!("{url}?fieldManager=tool&force=true"),
        APPLY,
        r#"{"apiVersion":"test.example.com/v1","kind":"Sprocket","metadata":{"name":"s4"},"spec":{"id":"b"}}"#,
    )
    .await;
    assert_eq!((c, v["message"].as_str()), (422, Some(want)), "{v}");
    let (_, _, v) = req(&server, "GET", &url, JSON, "").await;
    assert_eq!(v["spec"]["id"], "a");
    assert_eq!(
        v["metadata"]["resourceVersion"],
        json!(rv),
        "nothing was written"
    );

    // other changes pass (the transition rule holds), and the operator's paths work:
    // a finalizer added by JSON patch with kube-rs's `test` of a missing path against null,
    // and status written by server-side apply
    let (c, _, v) = req(&server, "PATCH", &url, MERGE, r#"{"spec":{"replicas":2}}"#).await;
    assert_eq!(c, 200, "{v}");
    let (c, _, v) = req(
        &server,
        "PATCH",
        &url,
        JSON_PATCH,
        r#"[{"op":"test","path":"/metadata/finalizers","value":null},{"op":"add","path":"/metadata/finalizers","value":["test.example.com/f"]}]"#,
    )
    .await;
    assert_eq!(c, 200, "{v}");
    let (c, _, v) = req(
        &server,
        "PATCH",
        &format!("{url}/status?fieldManager=op&force=true"),
        APPLY,
        r#"{"apiVersion":"test.example.com/v1","kind":"Sprocket","status":{"phase":"Ready"}}"#,
    )
    .await;
    assert_eq!(c, 200, "{v}");
    assert_eq!(v["status"], json!({"phase": "Ready", "count": 0}));
    server.shutdown().await;
}

#[tokio::test]
async fn a_crd_whose_rule_does_not_compile_is_refused() {
    let server = TestServer::start().await.expect("server");
    let mut crd = sprocket_crd();
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["x-kubernetes-validations"] =
        json!([{"rule": "self.min <="}, {"rule": "self.size > 1"}]);
    let (c, _, v) = req(
        &server,
        "POST",
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        JSON,
        &crd.to_string(),
    )
    .await;
    assert_eq!(c, 422, "{v}");
    let message = v["message"].as_str().unwrap_or("");
    assert!(
        message.starts_with("CustomResourceDefinition.apiextensions.k8s.io \"sprockets.test.example.com\" is invalid: [spec.versions[0].schema.openAPIV3Schema.properties[spec].x-kubernetes-validations[0].rule: Invalid value: \"self.min <=\": compilation failed: "),
        "{message}"
    );
    assert!(message.contains("x-kubernetes-validations[1].rule: Invalid value: \"self.size > 1\": compilation failed: ERROR: <input>: undefined field 'size'"), "{message}");
    // nothing is served
    let (c, _, _) = req(&server, "GET", SPROCKETS, JSON, "").await;
    assert_eq!(c, 404);
    server.shutdown().await;
}

#[test]
fn unbounded_rules_of_a_crd() {
    let found: Vec<String> = kube_test_server::unbounded_rules(&sprocket_crd())
        .iter()
        .map(ToString::to_string)
        .collect();
    // `id` has maxLength; `min`/`max` are integers
    assert!(found.is_empty(), "{found:#?}");
    let mut crd = sprocket_crd();
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["extra"] = json!({"type": "object", "properties": {"note": {"type": "string"}},
                           "x-kubernetes-validations": [{"rule": "self == oldSelf"}]});
    let found: Vec<String> = kube_test_server::unbounded_rules(&crd)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        found,
        [
            "Sprocket v1 spec.extra: rule \"self == oldSelf\" reads spec.extra.note (string without maxLength)"
        ]
    );
}
