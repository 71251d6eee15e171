//! Server-side printing over raw HTTP: `meta.k8s.io` Tables for get, list
//! and watch when the `Accept` header asks for them.

use kube_test_server::TestServer;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TABLE_V1: &str = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";

/// One HTTP/1.0 request (so a watch body is close-delimited, not chunked);
/// returns (status code, Content-Type, body text).
async fn raw(
    server: &TestServer,
    method: &str,
    path: &str,
    accept: &str,
    ct: &str,
    body: &str,
) -> (u16, String, String) {
    let mut s = tokio::net::TcpStream::connect(server.addr())
        .await
        .expect("connect");
    let msg = format!(
        "{method} {path} HTTP/1.0\r\nHost: x\r\nAccept: {accept}\r\nContent-Type: {ct}\r\nContent-Length: {}\r\n\r\n{body}",
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
    let content_type = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-type:")
                .map(|v| v.trim().to_string())
        })
        .unwrap_or_default();
    (code, content_type, body.to_string())
}

async fn get_json(server: &TestServer, path: &str, accept: &str) -> (u16, String, Value) {
    let (c, ct, b) = raw(server, "GET", path, accept, "application/json", "").await;
    (c, ct, serde_json::from_str(&b).unwrap_or(Value::Null))
}

async fn send(server: &TestServer, method: &str, path: &str, ct: &str, body: Value) {
    let (c, _, b) = raw(
        server,
        method,
        path,
        "application/json",
        ct,
        &body.to_string(),
    )
    .await;
    assert!((200..300).contains(&c), "{method} {path}: {c} {b}");
}

const THINGS: &str = "/apis/ex.io/v1/namespaces/default/things";

async fn setup() -> TestServer {
    let server = TestServer::start().await.expect("server");
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "things.ex.io"},
        "spec": {"group": "ex.io", "scope": "Namespaced",
            "names": {"plural": "things", "kind": "Thing"},
            "versions": [
                {"name": "v1", "served": true, "storage": true, "subresources": {"status": {}},
                 "additionalPrinterColumns": [
                    {"name": "N", "type": "integer", "jsonPath": ".spec.n"},
                    {"name": "Ready", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].status"},
                    {"name": "Flag", "type": "boolean", "jsonPath": ".spec.flag", "priority": 1, "description": "a flag"},
                    {"name": "Wrong", "type": "integer", "jsonPath": ".spec.name"},
                    {"name": "Created", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                 ]},
                {"name": "v2", "served": true, "storage": false},
            ]}
    });
    send(
        &server,
        "POST",
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        "application/json",
        crd,
    )
    .await;
    for (name, n) in [("a", 1), ("b", 2)] {
        let obj = json!({"apiVersion": "ex.io/v1", "kind": "Thing",
            "metadata": {"name": name, "labels": {"x": "y"}},
            "spec": {"n": n, "flag": true, "name": "str"}});
        send(&server, "POST", THINGS, "application/json", obj).await;
    }
    send(
        &server,
        "PATCH",
        &format!("{THINGS}/a/status"),
        "application/merge-patch+json",
        json!({"status": {"conditions": [{"type": "Synced", "status": "False"}, {"type": "Ready", "status": "True"}]}}),
    )
    .await;
    server
}

fn names(t: &Value) -> Vec<String> {
    t["columnDefinitions"]
        .as_array()
        .map(|c| {
            c.iter()
                .map(|c| c["name"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn list_and_get_tables() {
    let server = setup().await;
    let (c, ct, t) = get_json(&server, THINGS, TABLE_V1).await;
    assert_eq!(c, 200, "{t}");
    assert_eq!(ct, "application/json;as=table;v=v1;g=meta.k8s.io");
    assert_eq!(
        (t["kind"].as_str(), t["apiVersion"].as_str()),
        (Some("Table"), Some("meta.k8s.io/v1"))
    );
    assert!(t["metadata"]["resourceVersion"].is_string());
    assert_eq!(
        names(&t),
        ["Name", "N", "Ready", "Flag", "Wrong", "Created"]
    );
    let cols = &t["columnDefinitions"];
    assert_eq!(cols[0]["format"], "name");
    assert_eq!(
        (
            cols[3]["priority"].as_i64(),
            cols[3]["description"].as_str()
        ),
        (Some(1), Some("a flag"))
    );
    let rows = t["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 2);
    let cells = rows[0]["cells"].as_array().expect("cells");
    assert_eq!(
        cells[..5],
        [
            json!("a"),
            json!(1),
            json!("True"),
            json!(true),
            Value::Null
        ]
    );
    assert!(
        cells[5].as_str().is_some_and(|s| s.ends_with('s')),
        "age: {cells:?}"
    );
    assert_eq!(rows[1]["cells"][2], Value::Null, "b has no Ready condition");
    let obj = &rows[0]["object"];
    assert_eq!(obj["kind"], "PartialObjectMetadata");
    assert_eq!(obj["apiVersion"], "meta.k8s.io/v1");
    assert_eq!(obj["metadata"]["labels"]["x"], "y");
    assert!(obj.get("spec").is_none());

    // includeObject
    let (_, _, t) = get_json(&server, &format!("{THINGS}?includeObject=Object"), TABLE_V1).await;
    assert_eq!(t["rows"][0]["object"]["kind"], "Thing");
    assert_eq!(t["rows"][0]["object"]["spec"]["n"], 1);
    let (_, _, t) = get_json(&server, &format!("{THINGS}?includeObject=None"), TABLE_V1).await;
    assert!(t["rows"][0].get("object").is_none(), "{t}");
    let (c, _, t) = get_json(
        &server,
        &format!("{THINGS}?includeObject=Everything"),
        TABLE_V1,
    )
    .await;
    assert_eq!((c, t["reason"].as_str()), (400, Some("BadRequest")));

    // single object, v1beta1, paging, other version without columns
    let (c, _, t) = get_json(
        &server,
        &format!("{THINGS}/a"),
        "application/json;as=Table;v=v1beta1;g=meta.k8s.io",
    )
    .await;
    assert_eq!(
        (c, t["apiVersion"].as_str()),
        (200, Some("meta.k8s.io/v1beta1"))
    );
    assert_eq!(t["rows"].as_array().map(Vec::len), Some(1));
    assert_eq!(t["rows"][0]["object"]["apiVersion"], "meta.k8s.io/v1beta1");
    let (_, _, t) = get_json(&server, &format!("{THINGS}?limit=1"), TABLE_V1).await;
    assert_eq!(t["rows"].as_array().map(Vec::len), Some(1));
    assert!(t["metadata"]["continue"].is_string(), "{t}");
    let (_, _, t) = get_json(
        &server,
        "/apis/ex.io/v2/namespaces/default/things",
        TABLE_V1,
    )
    .await;
    assert_eq!(names(&t), ["Name", "Age"]);
    assert_eq!(t["columnDefinitions"][1]["type"], "date");

    // plain JSON clients and subresources are unaffected
    let (_, ct, t) = get_json(&server, THINGS, "application/json").await;
    assert_eq!(
        (ct.as_str(), t["kind"].as_str()),
        ("application/json", Some("ThingList"))
    );
    let (_, _, t) = get_json(&server, THINGS, "").await;
    assert_eq!(t["kind"], "ThingList");
    let (_, _, t) = get_json(&server, &format!("{THINGS}/a/status"), TABLE_V1).await;
    assert_eq!(t["kind"], "Thing");
    let (_, _, t) = get_json(
        &server,
        THINGS,
        "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io,application/json",
    )
    .await;
    assert_eq!(t["kind"], "ThingList");

    // built-ins
    send(
        &server,
        "POST",
        "/api/v1/namespaces/default/secrets",
        "application/json",
        json!({"metadata": {"name": "s"}, "stringData": {"a": "1", "b": "2"}}),
    )
    .await;
    let (_, _, t) = get_json(&server, "/api/v1/namespaces/default/secrets/s", TABLE_V1).await;
    assert_eq!(names(&t), ["Name", "Type", "Data", "Age"]);
    assert_eq!(
        t["rows"][0]["cells"].as_array().map(|c| c[..3].to_vec()),
        Some(vec![json!("s"), json!("Opaque"), json!(2)])
    );
    let (_, _, t) = get_json(&server, "/api/v1/namespaces", TABLE_V1).await;
    assert_eq!(names(&t), ["Name", "Status", "Age"]);
    assert_eq!(t["rows"][0]["cells"][1], "Active");
    let (_, _, t) = get_json(
        &server,
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        TABLE_V1,
    )
    .await;
    assert_eq!(names(&t), ["Name", "Created At"]);
    assert!(
        t["rows"][0]["cells"][1]
            .as_str()
            .is_some_and(|s| s.ends_with('Z'))
    );
    server.shutdown().await;
}

#[tokio::test]
async fn watch_tables() {
    let server = setup().await;
    let (c, ct, body) = raw(
        &server,
        "GET",
        &format!("{THINGS}?watch=true&timeoutSeconds=1"),
        TABLE_V1,
        "application/json",
        "",
    )
    .await;
    assert_eq!(c, 200);
    assert_eq!(ct, "application/json;as=table;v=v1;g=meta.k8s.io");
    let events: Vec<Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).expect("event json"))
        .collect();
    assert_eq!(events.len(), 2, "{body}");
    for (i, (ev, name)) in events.iter().zip(["a", "b"]).enumerate() {
        assert_eq!(ev["type"], "ADDED");
        let t = &ev["object"];
        assert_eq!(t["kind"], "Table");
        assert_eq!(t["rows"].as_array().map(Vec::len), Some(1));
        assert_eq!(t["rows"][0]["cells"][0], name);
        assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
        // column definitions only in the first event
        assert_eq!(names(t).len(), if i == 0 { 6 } else { 0 }, "{t}");
    }

    // a plain watch still sends objects
    let (_, _, body) = raw(
        &server,
        "GET",
        &format!("{THINGS}?watch=true&timeoutSeconds=1"),
        "application/json",
        "application/json",
        "",
    )
    .await;
    let first: Value = serde_json::from_str(body.lines().next().unwrap_or("")).expect("event");
    assert_eq!(first["object"]["kind"], "Thing");
    server.shutdown().await;
}
