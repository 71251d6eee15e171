//! Test fixtures: a scripted Kubernetes API server (kube's tower-test pattern, as in kube-rs
//! controller-rs) and objects to reconcile. The Zilliz / Milvus side is a real HTTP server
//! (wiremock) in each test.

use crate::{
    api::HttpClient,
    backoff::Backoff,
    controller::{Context, Settings},
    crd::FINALIZER,
    metrics::Metrics,
};
use http::{Method, Request, Response, StatusCode};
use kube::{Client, client::Body, runtime::events::Reporter};
use serde_json::{Value, json};
use std::{sync::Arc, time::Duration};

type ApiServerHandle = tower_test::mock::Handle<Request<Body>, Response<Body>>;
type Responder = tower_test::mock::SendResponse<Response<Body>>;

pub const NS: &str = "testns";
pub const TOKEN: &str = "root:Milvus-secret-token";

/// One request the scripted API server received.
pub struct Received {
    pub method: Method,
    pub path: String,
    pub query: String,
    pub content_type: String,
    pub body: Value,
    responder: Responder,
}

impl Received {
    pub fn respond(self, status: StatusCode, body: Value) {
        self.responder.send_response(
            Response::builder()
                .status(status)
                .header("content-type", "application/json")
                .body(Body::from(serde_json::to_vec(&body).unwrap()))
                .unwrap(),
        );
    }

    pub fn ok(self, body: Value) {
        self.respond(StatusCode::OK, body)
    }
}

/// Answers the requests of one scenario in order; every `expect` asserts the next request.
pub struct ApiServerVerifier(ApiServerHandle);

impl ApiServerVerifier {
    pub async fn expect(&mut self, method: Method, path: &str) -> Received {
        let (request, responder) =
            tokio::time::timeout(Duration::from_secs(5), self.0.next_request())
                .await
                .unwrap_or_else(|_| panic!("no request came; expected {method} {path}"))
                .unwrap_or_else(|| panic!("client gone; expected {method} {path}"));
        let (parts, body) = request.into_parts();
        let bytes = body.collect_bytes().await.unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        let received = Received {
            method: parts.method.clone(),
            path: parts.uri.path().to_string(),
            query: parts.uri.query().unwrap_or_default().to_string(),
            content_type: parts
                .headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string(),
            body,
            responder,
        };
        assert_eq!(
            (received.method.clone(), received.path.as_str()),
            (method.clone(), path),
            "unexpected request (query {:?}, body {})",
            received.query,
            received.body
        );
        received
    }

    /// Asserts no further request comes within a short while.
    pub async fn expect_silence(&mut self) {
        let next = tokio::time::timeout(Duration::from_millis(200), self.0.next_request()).await;
        if let Ok(Some((req, _))) = next {
            panic!("unexpected request {} {}", req.method(), req.uri());
        }
    }

    /// The fresh read of a deleted object before its cleanup.
    pub async fn serve_fresh_read(&mut self, obj: &Value) {
        self.expect(Method::GET, &object_path(obj))
            .await
            .ok(obj.clone());
    }

    /// GET of the Secret holding the token.
    pub async fn serve_secret(&mut self, name: &str) {
        self.expect(
            Method::GET,
            &format!("/api/v1/namespaces/{NS}/secrets/{name}"),
        )
        .await
        .ok(secret(name, "apiKey", TOKEN));
    }

    /// GET of a Secret that already carries `zilliz.io/in-use`.
    pub async fn serve_guarded_secret(&mut self, name: &str) {
        let mut s = secret(name, "apiKey", TOKEN);
        s["metadata"]["finalizers"] = json!([crate::secrets::IN_USE]);
        self.expect(
            Method::GET,
            &format!("/api/v1/namespaces/{NS}/secrets/{name}"),
        )
        .await
        .ok(s);
    }

    /// The merge patch adding `zilliz.io/in-use` to a Secret, with optimistic locking.
    pub async fn serve_secret_guard(&mut self, name: &str) {
        let req = self
            .expect(
                Method::PATCH,
                &format!("/api/v1/namespaces/{NS}/secrets/{name}"),
            )
            .await;
        assert_eq!(req.content_type, "application/merge-patch+json");
        assert_eq!(
            req.body["metadata"]["finalizers"],
            json!([crate::secrets::IN_USE])
        );
        assert_eq!(req.body["metadata"]["resourceVersion"], "7");
        let mut s = secret(name, "apiKey", TOKEN);
        s["metadata"]["finalizers"] = json!([crate::secrets::IN_USE]);
        req.ok(s);
    }

    /// An Event: asserts its reason, answers it, returns its note.
    pub async fn serve_event(&mut self, reason: &str) -> String {
        let req = self
            .expect(
                Method::POST,
                &format!("/apis/events.k8s.io/v1/namespaces/{NS}/events"),
            )
            .await;
        assert_eq!(req.body["reason"], reason, "event {}", req.body);
        let note = req.body["note"].as_str().unwrap_or_default().to_string();
        let body = req.body.clone();
        req.ok(body);
        note
    }

    /// A server-side-apply status patch: returns the status written.
    pub async fn serve_status_patch(&mut self, obj: &Value) -> Value {
        let path = format!("{}/status", object_path(obj));
        let req = self.expect(Method::PATCH, &path).await;
        assert_eq!(req.content_type, "application/apply-patch+yaml");
        assert!(
            req.query.contains("fieldManager=zilliz-operator"),
            "{}",
            req.query
        );
        let status = req.body["status"].clone();
        let mut updated = obj.clone();
        updated["status"] = status.clone();
        req.ok(updated);
        status
    }

    /// The JSON patch of kube's `finalizer()` removing our finalizer.
    pub async fn serve_finalizer_removal(&mut self, obj: &Value) {
        let req = self.expect(Method::PATCH, &object_path(obj)).await;
        assert_eq!(req.content_type, "application/json-patch+json");
        assert_eq!(
            req.body,
            json!([
                {"op": "test", "path": "/metadata/finalizers/0", "value": FINALIZER},
                {"op": "remove", "path": "/metadata/finalizers/0"}
            ])
        );
        let mut updated = obj.clone();
        updated["metadata"]["finalizers"] = json!([]);
        req.ok(updated);
    }
}

pub fn plural(kind: &str) -> &'static str {
    match kind {
        "ZillizCluster" => "zillizclusters",
        "ZillizCollection" => "zillizcollections",
        "ZillizPartition" => "zillizpartitions",
        "ZillizIndex" => "zillizindexes",
        other => panic!("unknown kind {other}"),
    }
}

pub fn object_path(obj: &Value) -> String {
    format!(
        "/apis/zilliz.io/v1alpha1/namespaces/{NS}/{}/{}",
        plural(obj["kind"].as_str().unwrap()),
        obj["metadata"]["name"].as_str().unwrap()
    )
}

pub fn secret(name: &str, key: &str, value: &str) -> Value {
    use k8s_openapi::{ByteString, api::core::v1::Secret};
    let secret = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(name.into()),
            namespace: Some(NS.into()),
            resource_version: Some("7".into()),
            ..Default::default()
        },
        data: Some([(key.to_string(), ByteString(value.as_bytes().to_vec()))].into()),
        ..Default::default()
    };
    let mut v = serde_json::to_value(secret).unwrap();
    v["apiVersion"] = json!("v1");
    v["kind"] = json!("Secret");
    v
}

/// An object of ours as the API server would hold it.
pub fn object(kind: &str, name: &str, spec: Value, finalizer: bool, deleting: bool) -> Value {
    let mut meta = json!({
        "name": name, "namespace": NS, "uid": format!("uid-{name}"),
        "generation": 1, "resourceVersion": "1",
    });
    if finalizer {
        meta["finalizers"] = json!([FINALIZER]);
    }
    if deleting {
        meta["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
    }
    json!({"apiVersion": "zilliz.io/v1alpha1", "kind": kind, "metadata": meta, "spec": spec})
}

/// A client on a scripted API server, and a context with fast backoff.
pub fn testcontext() -> (Arc<Context>, ApiServerVerifier) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(service, NS);
    let http = HttpClient::new(Duration::from_secs(2), None).unwrap();
    let settings = Settings {
        resync: Duration::from_secs(600),
        backoff: Backoff {
            base: Duration::from_millis(100),
            cap: Duration::from_secs(2),
        },
        poll: Backoff {
            base: Duration::from_millis(100),
            cap: Duration::from_secs(1),
        },
    };
    let ctx = Context::new(
        client,
        http,
        Reporter {
            controller: "zilliz-operator".into(),
            instance: None,
        },
        settings,
        Arc::new(Metrics::default()),
    );
    (Arc::new(ctx), ApiServerVerifier(handle))
}
