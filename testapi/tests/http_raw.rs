//! Raw HTTP checks: discovery documents and malformed requests (answered
//! with a `Status`, never a crash).

use kube_test_server::TestServer;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One HTTP/1.1 request; returns (status code, JSON body or Null).
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

#[tokio::test]
async fn discovery_documents() {
    let server = TestServer::start().await.expect("server");
    let (c, v) = req(&server, "GET", "/api/v1", "application/json", "").await;
    assert_eq!((c, v["groupVersion"].as_str()), (200, Some("v1")));
    assert!(
        v["resources"]
            .as_array()
            .is_some_and(|r| r.iter().any(|r| r["name"] == "namespaces/status"))
    );
    let (_, v) = req(&server, "GET", "/api", "application/json", "").await;
    assert_eq!(v["versions"][0], "v1");
    let crd = r#"{"apiVersion":"apiextensions.k8s.io/v1","kind":"CustomResourceDefinition",
        "metadata":{"name":"things.ex.io"},
        "spec":{"group":"ex.io","scope":"Cluster","names":{"plural":"things","kind":"Thing","shortNames":["th"]},
        "versions":[{"name":"v1beta1","served":true,"storage":false},{"name":"v1","served":true,"storage":true}]}}"#;
    let (c, v) = req(
        &server,
        "POST",
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        "application/json",
        crd,
    )
    .await;
    assert_eq!(c, 201, "{v}");
    assert_eq!(v["status"]["conditions"][1]["type"], "Established");
    let (_, v) = req(&server, "GET", "/apis", "application/json", "").await;
    let g = v["groups"]
        .as_array()
        .and_then(|g| g.iter().find(|g| g["name"] == "ex.io"))
        .cloned()
        .expect("group");
    assert_eq!(g["preferredVersion"]["version"], "v1");
    let (c, v) = req(
        &server,
        "GET",
        "/apis/ex.io/v1beta1",
        "application/json",
        "",
    )
    .await;
    assert_eq!(
        (c, v["resources"][0]["shortNames"][0].as_str()),
        (200, Some("th"))
    );
    assert_eq!(v["resources"][0]["namespaced"], false);
    let (c, _) = req(
        &server,
        "DELETE",
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/things.ex.io",
        "application/json",
        "",
    )
    .await;
    assert_eq!(c, 200);
    let (c, _) = req(&server, "GET", "/apis/ex.io/v1", "application/json", "").await;
    assert_eq!(c, 404, "group gone with its CRD");
    server.shutdown().await;
}

#[tokio::test]
async fn malformed_requests_get_status_answers() {
    let server = TestServer::start().await.expect("server");
    let cms = "/api/v1/namespaces/default/configmaps";
    let cases: &[(&str, String, &str, &str, u16, &str)] = &[
        (
            "POST",
            cms.into(),
            "application/json",
            "{not json",
            400,
            "BadRequest",
        ),
        (
            "POST",
            cms.into(),
            "application/json",
            "[1,2]",
            400,
            "BadRequest",
        ),
        (
            "POST",
            cms.into(),
            "application/vnd.kubernetes.protobuf",
            "k8s\0",
            415,
            "UnsupportedMediaType",
        ),
        (
            "POST",
            cms.into(),
            "application/json",
            r#"{"metadata":{}}"#,
            422,
            "Invalid",
        ),
        (
            "GET",
            format!("{cms}?labelSelector=a%20in%20b"),
            "application/json",
            "",
            400,
            "BadRequest",
        ),
        (
            "GET",
            format!("{cms}?limit=x"),
            "application/json",
            "",
            400,
            "BadRequest",
        ),
        (
            "GET",
            format!("{cms}?watch=1&resourceVersion=abc"),
            "application/json",
            "",
            400,
            "BadRequest",
        ),
        (
            "GET",
            "/apis/nope/v1/things".into(),
            "application/json",
            "",
            404,
            "NotFound",
        ),
        (
            "PATCH",
            format!("{cms}/x"),
            "text/plain",
            "{}",
            415,
            "UnsupportedMediaType",
        ),
        (
            "PATCH",
            format!("{cms}/missing"),
            "application/merge-patch+json",
            "{}",
            404,
            "NotFound",
        ),
        (
            "PATCH",
            format!("{cms}/m?fieldManager=t"),
            "application/apply-patch+yaml",
            "metadata: 5\n",
            201,
            "",
        ),
        (
            "PATCH",
            format!("{cms}/m"),
            "application/json-patch+json",
            r#"[{"op":"bogus"}]"#,
            400,
            "BadRequest",
        ),
        (
            "PATCH",
            format!("{cms}/m"),
            "application/json-patch+json",
            r#"[{"op":"remove","path":"/nope"}]"#,
            422,
            "Invalid",
        ),
        (
            "PATCH",
            format!("{cms}/m"),
            "application/apply-patch+yaml",
            "data: {}\n",
            422,
            "Invalid",
        ),
        (
            "PATCH",
            format!("{cms}/m"),
            "application/merge-patch+json",
            r#"{"metadata":"x"}"#,
            200,
            "",
        ),
        (
            "DELETE",
            format!("{cms}/m"),
            "application/json",
            "{bad",
            400,
            "BadRequest",
        ),
        (
            "PUT",
            "/api".into(),
            "application/json",
            "{}",
            405,
            "MethodNotAllowed",
        ),
    ];
    for (method, path, ct, body, code, reason) in cases {
        let (c, v) = req(&server, method, path, ct, body).await;
        assert_eq!(c, *code, "{method} {path} {body}: {v}");
        if !reason.is_empty() {
            assert_eq!(
                (v["kind"].as_str(), v["reason"].as_str()),
                (Some("Status"), Some(*reason)),
                "{v}"
            );
        }
    }
    server.shutdown().await;
}
