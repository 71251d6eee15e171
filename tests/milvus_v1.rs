//! The data-plane client against a real Milvus 2.3.5 (REST v1), started by `zilliz_devkit::milvus`.
//!
//! Each test owns its server (auth off / auth on); the two run in parallel on their own ports.
//! The bodies in the comments are what the server really answered on this machine.

use serde_json::{Value, json};
use std::time::Duration;
use url::Url;
use zilliz_devkit::milvus::{Milvus, ROOT_TOKEN};
use zilliz_operator::api::{ApiError, DataPlane, ErrorClass, Flavour, HttpClient, Token};

fn plane(m: &Milvus, flavour: Flavour, token: &str) -> DataPlane {
    DataPlane {
        http: HttpClient::new(Duration::from_secs(10), None).unwrap(),
        endpoint: Url::parse(&m.base).unwrap(),
        flavour,
        token: Token::new(token),
    }
}

/// Raw REST v1 call, so that setup and checks do not depend on the client under test.
async fn raw(
    m: &Milvus,
    method: &str,
    path: &str,
    body: Option<Value>,
    token: Option<&str>,
) -> (u16, Value) {
    let http = reqwest::Client::new();
    let url = format!("{}{path}", m.base);
    let mut req = match method {
        "GET" => http.get(url),
        _ => http.post(url),
    };
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("raw request");
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, v)
}

async fn create_collection(m: &Milvus, name: &str, token: Option<&str>) {
    // handler_v1.go (v2.3.5) CreateCollectionReq: collectionName and dimension are required;
    // metricType defaults to L2, primaryField "id", vectorField "vector"; the collection is
    // created with an index and loaded.
    let (status, body) = raw(
        m,
        "POST",
        "/v1/vector/collections/create",
        Some(json!({"collectionName": name, "dimension": 4})),
        token,
    )
    .await;
    // seen: 200 {"code":200,"data":{}}
    assert_eq!((status, &body), (200, &json!({"code": 200, "data": {}})));
}

async fn list_collections(m: &Milvus, token: Option<&str>) -> Vec<String> {
    let (status, body) = raw(m, "GET", "/v1/vector/collections", None, token).await;
    // seen: 200 {"code":200,"data":["c1"]} (and {"code":200,"data":[]} when empty)
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["code"], 200, "{body}");
    body["data"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

fn assert_err(
    res: Result<impl std::fmt::Debug, ApiError>,
    class: ErrorClass,
    status: u16,
    code: i64,
) -> ApiError {
    let err = res.expect_err("expected an error");
    assert_eq!(err.class, class, "{err:?}");
    assert_eq!(err.http_status, Some(status), "{err:?}");
    assert_eq!(err.code, Some(code), "{err:?}");
    err
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_collection_against_milvus_without_auth() {
    let Some(m) = Milvus::start(false).await else {
        return;
    };
    // without auth the token is ignored; any value will do
    let dp = plane(&m, Flavour::V1, "root:Milvus");

    create_collection(&m, "c1", None).await;
    create_collection(&m, "keep_me", None).await;
    assert!(list_collections(&m, None).await.contains(&"c1".to_string()));
    // GET /v1/vector/collections/describe?collectionName=c1&dbName=default
    // seen: 200 {"code":200,"data":{"collectionName":"c1",...,"load":"LoadStateLoading",...}}
    assert!(dp.has_collection("default", "c1").await.expect("describe"));

    // a loaded collection drops fine in v1. seen: 200 {"code":200,"data":{}}
    dp.drop_collection("default", "c1").await.expect("dropped");

    // seen: 200 {"code":100,"message":"can't find collection collection not found[database=default][collection=c1]"}
    assert!(!dp.has_collection("default", "c1").await.expect("describe"));
    let names = list_collections(&m, None).await;
    assert!(!names.contains(&"c1".to_string()), "{names:?}");
    assert!(
        names.contains(&"keep_me".to_string()),
        "only c1 is dropped: {names:?}"
    );

    // second drop. seen: 200 {"code":100,"message":"collection not found, database: default, collection: c1"}
    let err = assert_err(
        dp.drop_collection("default", "c1").await,
        ErrorClass::NotFound,
        200,
        100,
    );
    assert!(err.message.contains("collection not found"), "{err}");

    // seen: 200 {"code":1100,"message":"Invalid collection name: bad name!. collection name can
    // only contain numbers, letters and underscores: invalid parameter"}
    let err = assert_err(
        dp.drop_collection("default", "bad name!").await,
        ErrorClass::InvalidName,
        200,
        1100,
    );
    assert!(err.message.contains("Invalid collection name"), "{err}");
    // the describe answers the same 1100, so "has" is an error, not a guess
    let err = dp.has_collection("default", "bad name!").await.unwrap_err();
    assert_eq!(err.class, ErrorClass::InvalidName, "{err}");

    // unknown database. seen: 200 {"code":800,"message":"database not found, database: nodb"}
    assert_err(
        dp.drop_collection("nodb", "keep_me").await,
        ErrorClass::NotFound,
        200,
        800,
    );

    // REST v2 against this v1-only server. seen: 404, text/plain "404 page not found"
    let v2 = plane(&m, Flavour::V2, "root:Milvus");
    let err = v2.drop_collection("default", "keep_me").await.unwrap_err();
    assert_eq!(err.class, ErrorClass::BadRequest, "{err}");
    assert_eq!(err.http_status, Some(404));
    assert!(err.message.contains("API version"), "{err}");
    // and nothing was dropped by any of the failed calls
    assert!(
        list_collections(&m, None)
            .await
            .contains(&"keep_me".to_string())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_against_milvus_with_auth() {
    let Some(m) = Milvus::start(true).await else {
        return;
    };
    create_collection(&m, "secured", Some(ROOT_TOKEN)).await;

    // no token at all. seen: HTTP 401 {"code":1800,"message":"user hasn't authenticated"}
    let (status, body) = raw(&m, "GET", "/v1/vector/collections", None, None).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["code"], 1800, "{body}");

    // wrong password. seen: HTTP 401 {"code":1800,"message":"user hasn't authenticated"}
    // (the same answer for a token without a colon, and for the describe)
    let wrong = plane(&m, Flavour::V1, "root:wrong");
    let err = assert_err(
        wrong.drop_collection("default", "secured").await,
        ErrorClass::Credentials,
        401,
        1800,
    );
    assert!(!err.class.is_retryable());
    for text in [format!("{err:?}"), err.to_string()] {
        assert!(!text.contains("root:wrong"), "{text}");
    }
    let err = wrong
        .has_collection("default", "secured")
        .await
        .unwrap_err();
    assert_eq!(err.class, ErrorClass::Credentials, "{err}");
    assert!(
        list_collections(&m, Some(ROOT_TOKEN))
            .await
            .contains(&"secured".to_string())
    );

    // the right one. seen: 200 {"code":200,"data":{}}
    let root = plane(&m, Flavour::V1, ROOT_TOKEN);
    assert!(root.has_collection("default", "secured").await.unwrap());
    root.drop_collection("default", "secured")
        .await
        .expect("dropped");
    assert!(!root.has_collection("default", "secured").await.unwrap());
    assert!(
        !list_collections(&m, Some(ROOT_TOKEN))
            .await
            .contains(&"secured".to_string())
    );
    // a Secret written with `echo` (trailing newline) still works: Token::new trims
    let echoed = plane(&m, Flavour::V1, "root:Milvus\n");
    assert_err(
        echoed.drop_collection("default", "secured").await,
        ErrorClass::NotFound,
        200,
        100,
    );
}
