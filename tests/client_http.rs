//! The HTTP clients (`zilliz_operator::api`) against wiremock and a few raw TCP servers.
//!
//! Every mock checks the method, the path, the headers and the exact JSON body, and is mounted
//! with `.expect(1)` and verified, so a client that sends the wrong request fails here rather
//! than against a paid cluster. The answers are the real ones of `docs/zilliz-api.md` and the
//! seed pages in `docs/api-seeds/` (003: control plane v2 drop, 004: control plane v1 drop).

use serde_json::{Value, json};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use url::Url;
use wiremock::matchers::{body_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};
use zilliz_operator::api::{
    ApiError, ControlPlane, DataPlane, ErrorClass, Flavour, HttpClient, Token,
};

/// A token that must never show up in an error or a `Debug` output.
const TOKEN: &str = "root:Sup3r-S3cret-T0ken-4711";
/// Client timeout for ordinary tests; sent as `Request-Timeout: 5`.
const TIMEOUT: Duration = Duration::from_secs(5);

fn client(timeout: Duration) -> HttpClient {
    HttpClient::new(timeout, None).expect("http client")
}

fn url(base: &str) -> Url {
    Url::parse(base).expect("url")
}

fn control(base: &str, flavour: Flavour) -> ControlPlane {
    ControlPlane {
        http: client(TIMEOUT),
        base: url(base),
        flavour,
        token: Token::new(TOKEN),
    }
}

fn data(endpoint: &str, flavour: Flavour) -> DataPlane {
    DataPlane {
        http: client(TIMEOUT),
        endpoint: url(endpoint),
        flavour,
        token: Token::new(TOKEN),
    }
}

/// No `Content-Type` when no body is sent.
fn no_content_type(req: &Request) -> bool {
    !req.headers.contains_key("content-type") && req.body.is_empty()
}

/// A mock for a body-less request (control plane, v1 describe) with the common headers.
fn bodyless(verb: &str, p: &str) -> wiremock::MockBuilder {
    Mock::given(method(verb))
        .and(path(p.to_string()))
        .and(header("Authorization", format!("Bearer {TOKEN}").as_str()))
        .and(header("Request-Timeout", "5"))
        .and(header("Accept", "application/json"))
        .and(no_content_type)
}

/// A mock for a JSON POST (data plane) with the common headers and the exact body.
fn post_json(p: &str, body: Value) -> wiremock::MockBuilder {
    Mock::given(method("POST"))
        .and(path(p.to_string()))
        .and(header("Authorization", format!("Bearer {TOKEN}").as_str()))
        .and(header("Request-Timeout", "5"))
        .and(header("Content-Type", "application/json"))
        .and(body_json(body))
}

fn ok_json(v: Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(v)
}

/// The token must not leak through an error, whatever the class.
fn assert_no_token(err: &ApiError) {
    let secret = TOKEN.split(':').nth(1).unwrap();
    for text in [format!("{err:?}"), err.to_string(), err.message.clone()] {
        assert!(
            !text.contains(TOKEN) && !text.contains(secret),
            "the token leaked into an error: {text}"
        );
    }
}

fn expect_err<T: std::fmt::Debug>(res: Result<T, ApiError>) -> ApiError {
    let err = res.expect_err("expected an error");
    assert_no_token(&err);
    err
}

// ---------------------------------------------------------------------------------------------
// Control plane
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn control_plane_v2_drop_sends_delete_and_accepts_code_0() {
    let server = MockServer::start().await;
    // seed 003: the documented answer
    bodyless("DELETE", "/v2/clusters/inxx-xxxxxxxxxxxxxxx/drop")
        .respond_with(ok_json(json!({
            "code": 0,
            "data": {
                "clusterId": "inxx-xxxxxxxxxxxxxxx",
                "prompt": "The cluster has been deleted. If you consider this action to be an error, you have the option to restore the deleted cluster from the recycle bin within a 30-day period. Kindly note, this recovery feature does not apply to free clusters."
            }
        })))
        .expect(1)
        .mount(&server)
        .await;
    let cp = control(&server.uri(), Flavour::V2);
    cp.drop_cluster("inxx-xxxxxxxxxxxxxxx")
        .await
        .expect("dropped");
    server.verify().await;
}

#[tokio::test]
async fn control_plane_v1_drop_keeps_the_base_url_path_prefix_and_accepts_code_200() {
    let server = MockServer::start().await;
    // seed 004: the documented answer
    bodyless("DELETE", "/gateway/zilliz/v1/clusters/in01-abcdef/drop")
        .respond_with(ok_json(json!({
            "code": 200,
            "data": {
                "clusterId": "in01-abcdef",
                "prompt": "The Cluster has been deleted. If you believe this was a mistake, you can restore the Cluster from the recycle bin within 30 days (this not include serverless)."
            }
        })))
        .expect(1)
        .mount(&server)
        .await;
    let cp = control(&format!("{}/gateway/zilliz/", server.uri()), Flavour::V1);
    cp.drop_cluster("in01-abcdef").await.expect("dropped");
    server.verify().await;
}

#[tokio::test]
async fn control_plane_success_codes_do_not_cross_flavours() {
    // a v1 endpoint answering code 0 is not "done", nor is a v2 one answering 200 without data
    let server = MockServer::start().await;
    bodyless("DELETE", "/v1/clusters/in01-a/drop")
        .respond_with(ok_json(json!({"code": 0, "data": {}})))
        .expect(1)
        .mount(&server)
        .await;
    bodyless("DELETE", "/v2/clusters/in01-a/drop")
        .respond_with(ok_json(
            json!({"code": 200, "message": "cluster not found"}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let err = expect_err(
        control(&server.uri(), Flavour::V1)
            .drop_cluster("in01-a")
            .await,
    );
    assert_eq!(err.class, ErrorClass::Unknown, "{err}");
    let err = expect_err(
        control(&server.uri(), Flavour::V2)
            .drop_cluster("in01-a")
            .await,
    );
    // code 200 with a message is an error in v2, but not proof the cluster is gone (the
    // control plane's not-found codes are 80020/90102): never a guess that leaves a paid
    // cluster running
    assert_eq!(err.class, ErrorClass::Unknown, "{err}");
    server.verify().await;
}

#[tokio::test]
async fn control_plane_describe_v2_and_v1() {
    let server = MockServer::start().await;
    bodyless("GET", "/v2/clusters/inxx-1")
        .respond_with(ok_json(json!({
            "code": 0,
            "data": {
                "clusterId": "inxx-1",
                "clusterName": "prod",
                "status": "RUNNING",
                "connectAddress": "https://inxx-1.serverless.gcp-us-west1.cloud.zilliz.com"
            }
        })))
        .expect(1)
        .mount(&server)
        .await;
    bodyless("GET", "/v1/clusters/in01-2")
        .respond_with(ok_json(json!({
            "code": 200,
            "data": {"clusterId": "in01-2", "status": "DELETING", "connectAddress": ""}
        })))
        .expect(1)
        .mount(&server)
        .await;
    bodyless("GET", "/v2/clusters/inxx-3")
        .respond_with(ok_json(json!({"code": 0, "data": {"clusterId": "inxx-3"}})))
        .expect(1)
        .mount(&server)
        .await;

    let info = control(&server.uri(), Flavour::V2)
        .describe_cluster("inxx-1")
        .await
        .expect("described");
    assert_eq!(info.status, "RUNNING");
    assert_eq!(
        info.connect_address.as_deref(),
        Some("https://inxx-1.serverless.gcp-us-west1.cloud.zilliz.com")
    );

    let info = control(&server.uri(), Flavour::V1)
        .describe_cluster("in01-2")
        .await
        .expect("described");
    assert_eq!(info.status, "DELETING");
    assert_eq!(info.connect_address, None, "an empty address is no address");

    // no data.status: never guess
    let err = expect_err(
        control(&server.uri(), Flavour::V2)
            .describe_cluster("inxx-3")
            .await,
    );
    assert_eq!(err.class, ErrorClass::Unknown);
    server.verify().await;
}

/// One page of a cluster list answer (`data`), as the Zilliz docs show it.
fn cluster_page(count: usize, page: usize, page_size: usize, ids: &[String]) -> Value {
    let clusters: Vec<Value> = ids
        .iter()
        .map(|id| json!({"clusterId": id, "clusterName": id, "status": "RUNNING"}))
        .collect();
    json!({"count": count, "currentPage": page, "pageSize": page_size, "clusters": clusters})
}

/// A list mock for one page: the same headers (and so the same credentials) as the describe.
fn list_page_mock(p: &str, page_param: &str, page: usize) -> wiremock::MockBuilder {
    bodyless("GET", p)
        .and(query_param("pageSize", "100"))
        .and(query_param(page_param, page.to_string().as_str()))
}

#[tokio::test]
async fn control_plane_list_cluster_ids_reads_every_page() {
    // v2: 101 clusters, the one that matters is alone on page 2
    let server = MockServer::start().await;
    let first: Vec<String> = (0..100).map(|i| format!("inxx-{i:03}")).collect();
    let second = vec!["inxx-on-page-2".to_string()];
    list_page_mock("/v2/clusters", "currentPage", 1)
        .respond_with(ok_json(
            json!({"code": 0, "data": cluster_page(101, 1, 100, &first)}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    list_page_mock("/v2/clusters", "currentPage", 2)
        .respond_with(ok_json(
            json!({"code": 0, "data": cluster_page(101, 2, 100, &second)}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let ids = control(&server.uri(), Flavour::V2)
        .list_cluster_ids()
        .await
        .expect("listed");
    assert_eq!(ids.len(), 101);
    assert!(ids.contains(&"inxx-on-page-2".to_string()));
    assert_eq!(ids[..100], first[..]);
    server.verify().await;

    // v1 names the page `current`, answers code 200; this server pages by 2 whatever is asked
    let server = MockServer::start().await;
    let pages = [
        vec!["in01-a".to_string(), "in01-b".to_string()],
        vec!["in01-c".to_string()],
    ];
    for (i, ids) in pages.iter().enumerate() {
        list_page_mock("/v1/clusters", "current", i + 1)
            .respond_with(ok_json(
                json!({"code": 200, "data": cluster_page(3, i + 1, 2, ids)}),
            ))
            .expect(1)
            .mount(&server)
            .await;
    }
    let ids = control(&server.uri(), Flavour::V1)
        .list_cluster_ids()
        .await
        .expect("listed");
    assert_eq!(ids, ["in01-a", "in01-b", "in01-c"]);
    server.verify().await;

    // an empty account: one page, no clusters
    let server = MockServer::start().await;
    list_page_mock("/v2/clusters", "currentPage", 1)
        .respond_with(ok_json(
            json!({"code": 0, "data": cluster_page(0, 1, 100, &[])}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let ids = control(&server.uri(), Flavour::V2)
        .list_cluster_ids()
        .await
        .expect("listed");
    assert!(ids.is_empty());
    server.verify().await;
}

#[tokio::test]
async fn control_plane_list_needs_the_same_credentials() {
    let server = MockServer::start().await;
    list_page_mock("/v2/clusters", "currentPage", 1)
        .respond_with(ok_json(
            json!({"code": 0, "data": cluster_page(1, 1, 100, &["inxx-a".to_string()])}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    // another credential gets no answer from the mock (wiremock's 404): an error, never a list
    let mut other = control(&server.uri(), Flavour::V2);
    other.token = Token::new("root:another-credential-123");
    let err = other
        .list_cluster_ids()
        .await
        .expect_err("the mock answers only the describe's credentials");
    assert_eq!(err.http_status, Some(404), "{err}");
    let ids = control(&server.uri(), Flavour::V2)
        .list_cluster_ids()
        .await
        .expect("listed");
    assert_eq!(ids, ["inxx-a"]);
    server.verify().await;
}

/// A malformed or partial list can never confirm that a cluster is gone: each is an error of
/// class `Unknown`, not a (shorter) list.
#[tokio::test]
async fn control_plane_malformed_or_partial_lists_are_errors() {
    let a = |ids: &[&str]| ids.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let full: Vec<String> = (0..100).map(|i| format!("inxx-{i:03}")).collect();
    // (case, page 1 answer, page 2 answer when page 2 is read)
    let cases: Vec<(&str, ResponseTemplate, Option<ResponseTemplate>)> = vec![
        (
            "no clusters array",
            ok_json(json!({"code": 0, "data": {"count": 0, "currentPage": 1, "pageSize": 100}})),
            None,
        ),
        (
            "clusters is not an array",
            ok_json(json!({"code": 0, "data": {"count": 1, "clusters": {"clusterId": "inxx-a"}}})),
            None,
        ),
        (
            "no count",
            ok_json(
                json!({"code": 0, "data": {"currentPage": 1, "clusters": [{"clusterId": "inxx-a"}]}}),
            ),
            None,
        ),
        (
            "count is text",
            ok_json(
                json!({"code": 0, "data": {"count": "1", "clusters": [{"clusterId": "inxx-a"}]}}),
            ),
            None,
        ),
        (
            "an entry without clusterId",
            ok_json(
                json!({"code": 0, "data": {"count": 2, "clusters": [{"clusterId": "inxx-a"}, {"clusterName": "b"}]}}),
            ),
            None,
        ),
        (
            "an empty clusterId",
            ok_json(json!({"code": 0, "data": {"count": 1, "clusters": [{"clusterId": ""}]}})),
            None,
        ),
        ("no data at all", ok_json(json!({"code": 0})), None),
        (
            "count larger than what the pages hold",
            ok_json(json!({"code": 0, "data": cluster_page(2, 1, 100, &a(&["inxx-a"]))})),
            Some(ok_json(
                json!({"code": 0, "data": cluster_page(2, 2, 100, &[])}),
            )),
        ),
        (
            "count smaller than the page",
            ok_json(json!({"code": 0, "data": cluster_page(1, 1, 100, &a(&["inxx-a", "inxx-b"]))})),
            None,
        ),
        (
            "the server ignores the page number",
            ok_json(json!({"code": 0, "data": cluster_page(101, 1, 100, &full)})),
            Some(ok_json(
                json!({"code": 0, "data": cluster_page(101, 1, 100, &full)}),
            )),
        ),
        (
            "the same cluster on two pages",
            ok_json(json!({"code": 0, "data": cluster_page(101, 1, 100, &full)})),
            Some(ok_json(
                json!({"code": 0, "data": cluster_page(101, 2, 100, &a(&["inxx-000"]))}),
            )),
        ),
        (
            "count changes between pages",
            ok_json(json!({"code": 0, "data": cluster_page(101, 1, 100, &full)})),
            Some(ok_json(
                json!({"code": 0, "data": cluster_page(102, 2, 100, &a(&["inxx-x"]))}),
            )),
        ),
        (
            "page 2 fails",
            ok_json(json!({"code": 0, "data": cluster_page(101, 1, 100, &full)})),
            Some(ResponseTemplate::new(503).set_body_raw("<html>503</html>", "text/html")),
        ),
        (
            "page 2 is not JSON",
            ok_json(json!({"code": 0, "data": cluster_page(101, 1, 100, &full)})),
            Some(ResponseTemplate::new(200).set_body_raw("<html>ok</html>", "text/html")),
        ),
        (
            "more clusters than the operator reads",
            ok_json(json!({"code": 0, "data": cluster_page(1_000_000, 1, 100, &full)})),
            None,
        ),
    ];
    for (case, page1, page2) in cases {
        let server = MockServer::start().await;
        list_page_mock("/v2/clusters", "currentPage", 1)
            .respond_with(page1)
            .expect(1)
            .mount(&server)
            .await;
        let reads_page_2 = page2.is_some();
        if let Some(page2) = page2 {
            list_page_mock("/v2/clusters", "currentPage", 2)
                .respond_with(page2)
                .expect(1)
                .mount(&server)
                .await;
        }
        let res = control(&server.uri(), Flavour::V2).list_cluster_ids().await;
        let err = match res {
            Ok(ids) => panic!("{case}: listed {} clusters, expected an error", ids.len()),
            Err(e) => e,
        };
        assert_no_token(&err);
        assert_eq!(err.class, ErrorClass::Unknown, "{case}: {err}");
        if reads_page_2 {
            assert!(err.message.contains("page 2"), "{case}: {err}");
        }
        server.verify().await;
    }
}

#[tokio::test]
async fn control_plane_bad_api_key_is_credentials() {
    let server = MockServer::start().await;
    bodyless("DELETE", "/v2/clusters/inxx-1/drop")
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_json(json!({"code": 21119, "message": "The apikey is illegal"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let err = expect_err(
        control(&server.uri(), Flavour::V2)
            .drop_cluster("inxx-1")
            .await,
    );
    assert_eq!(err.class, ErrorClass::Credentials);
    assert_eq!(err.http_status, Some(401));
    assert_eq!(err.code, Some(21119));
    assert!(!err.class.is_retryable());
    server.verify().await;
}

#[tokio::test]
async fn control_plane_not_exist_or_no_permission_is_ambiguous() {
    let server = MockServer::start().await;
    bodyless("DELETE", "/v1/clusters/in01-x/drop")
        .respond_with(ok_json(json!({
            "code": 80020,
            "message": "Cluster not exist or you don't have permission."
        })))
        .expect(1)
        .mount(&server)
        .await;
    let err = expect_err(
        control(&server.uri(), Flavour::V1)
            .drop_cluster("in01-x")
            .await,
    );
    assert_eq!(err.class, ErrorClass::NotFoundOrForbidden);
    assert_eq!(err.code, Some(80020));
    server.verify().await;
}

// ---------------------------------------------------------------------------------------------
// Data plane v1
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn data_plane_v1_collection_drop_and_describe() {
    let server = MockServer::start().await;
    post_json(
        "/v1/vector/collections/drop",
        json!({"collectionName": "c1", "dbName": "default"}),
    )
    .respond_with(ok_json(json!({"code": 200, "data": {}})))
    .expect(1)
    .mount(&server)
    .await;
    bodyless("GET", "/v1/vector/collections/describe")
        .and(query_param("collectionName", "c1"))
        .and(query_param("dbName", "default"))
        // real 2.3.5 answer for a missing collection (see tests/milvus_v1.rs)
        .respond_with(ok_json(json!({
            "code": 100,
            "message": "can't find collection collection not found[database=default][collection=c1]"
        })))
        .expect(1)
        .mount(&server)
        .await;
    bodyless("GET", "/v1/vector/collections/describe")
        .and(query_param("collectionName", "c2"))
        .and(query_param("dbName", "db 2"))
        .respond_with(ok_json(json!({
            "code": 200,
            "data": {"collectionName": "c2", "load": "LoadStateLoaded", "shardsNum": 1}
        })))
        .expect(1)
        .mount(&server)
        .await;

    let dp = data(&server.uri(), Flavour::V1);
    dp.drop_collection("default", "c1").await.expect("dropped");
    assert!(!dp.has_collection("default", "c1").await.expect("describe"));
    assert!(dp.has_collection("db 2", "c2").await.expect("describe"));
    server.verify().await;
}

#[tokio::test]
async fn data_plane_v1_answers() {
    let cases: Vec<(u16, Value, Option<ErrorClass>, Option<i64>)> = vec![
        (200, json!({"code": 200, "data": {}}), None, None),
        (
            200,
            json!({"code": 100, "message": "collection not found, database: default, collection: c1"}),
            Some(ErrorClass::NotFound),
            Some(100),
        ),
        (
            200,
            json!({"code": 1100, "message": "Invalid collection name: c1. collection name can only contain numbers, letters and underscores: invalid parameter"}),
            Some(ErrorClass::InvalidName),
            Some(1100),
        ),
        (
            200,
            json!({"code": 800, "message": "database not found, database: default"}),
            Some(ErrorClass::NotFound),
            Some(800),
        ),
        // a v1 server never answers 0 for success
        (
            200,
            json!({"code": 0, "data": {}}),
            Some(ErrorClass::Unknown),
            Some(0),
        ),
        (
            401,
            json!({"code": 1800, "message": "user hasn't authenticated"}),
            Some(ErrorClass::Credentials),
            Some(1800),
        ),
    ];
    for (status, body, expected, code) in cases {
        let server = MockServer::start().await;
        post_json(
            "/v1/vector/collections/drop",
            json!({"collectionName": "c1", "dbName": "default"}),
        )
        .respond_with(ResponseTemplate::new(status).set_body_json(body.clone()))
        .expect(1)
        .mount(&server)
        .await;
        let res = data(&server.uri(), Flavour::V1)
            .drop_collection("default", "c1")
            .await;
        match expected {
            None => res.unwrap_or_else(|e| panic!("{body}: {e}")),
            Some(class) => {
                let err = expect_err(res);
                assert_eq!(err.class, class, "{body}: {err}");
                assert_eq!(err.code, code, "{body}");
                assert_eq!(err.http_status, Some(status));
            }
        }
        server.verify().await;
    }
}

#[tokio::test]
async fn v2_only_operations_on_a_v1_endpoint_send_nothing() {
    let server = MockServer::start().await;
    let dp = data(&server.uri(), Flavour::V1);
    let errs = [
        dp.release_collection("default", "c").await.unwrap_err(),
        dp.has_partition("default", "c", "p").await.unwrap_err(),
        dp.release_partition("default", "c", "p").await.unwrap_err(),
        dp.drop_partition("default", "c", "p").await.unwrap_err(),
        dp.has_index("default", "c", "i").await.unwrap_err(),
        dp.drop_index("default", "c", "i").await.unwrap_err(),
    ];
    for err in errs {
        assert_eq!(err.class, ErrorClass::Unsupported, "{err}");
        assert_no_token(&err);
    }
    assert!(server.received_requests().await.unwrap().is_empty());
}

// ---------------------------------------------------------------------------------------------
// Data plane v2
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn data_plane_v2_collection_drop_has_release() {
    let server = MockServer::start().await;
    let c = json!({"collectionName": "c1", "dbName": "db1"});
    post_json("/v2/vectordb/collections/has", c.clone())
        .respond_with(ok_json(json!({"code": 0, "data": {"has": true}})))
        .expect(1)
        .mount(&server)
        .await;
    post_json("/v2/vectordb/collections/release", c.clone())
        .respond_with(ok_json(json!({"code": 0, "data": {}})))
        .expect(1)
        .mount(&server)
        .await;
    post_json("/v2/vectordb/collections/drop", c.clone())
        .respond_with(ok_json(json!({"code": 0, "data": {}})))
        .expect(1)
        .mount(&server)
        .await;
    let dp = data(&server.uri(), Flavour::V2);
    assert!(dp.has_collection("db1", "c1").await.expect("has"));
    dp.release_collection("db1", "c1").await.expect("released");
    dp.drop_collection("db1", "c1").await.expect("dropped");
    server.verify().await;

    // has: false, early-v2 200-with-data, and a body without data.has
    for (body, expected) in [
        (json!({"code": 0, "data": {"has": false}}), Ok(false)),
        (json!({"code": 200, "data": {"has": true}}), Ok(true)),
        (json!({"code": 0, "data": {}}), Err(ErrorClass::Unknown)),
    ] {
        let server = MockServer::start().await;
        post_json("/v2/vectordb/collections/has", c.clone())
            .respond_with(ok_json(body.clone()))
            .expect(1)
            .mount(&server)
            .await;
        let res = data(&server.uri(), Flavour::V2)
            .has_collection("db1", "c1")
            .await
            .map_err(|e| {
                assert_no_token(&e);
                e.class
            });
        assert_eq!(res, expected, "{body}");
        server.verify().await;
    }
}

#[tokio::test]
async fn data_plane_v2_partition_release_then_drop() {
    let server = MockServer::start().await;
    post_json(
        "/v2/vectordb/partitions/has",
        json!({"collectionName": "c1", "dbName": "default", "partitionName": "january"}),
    )
    .respond_with(ok_json(json!({"code": 0, "data": {"has": true}})))
    .expect(1)
    .mount(&server)
    .await;
    post_json(
        "/v2/vectordb/partitions/release",
        json!({"collectionName": "c1", "dbName": "default", "partitionNames": ["january"]}),
    )
    .respond_with(ok_json(json!({"code": 0, "data": {}})))
    .expect(1)
    .mount(&server)
    .await;
    post_json(
        "/v2/vectordb/partitions/drop",
        json!({"collectionName": "c1", "dbName": "default", "partitionName": "january"}),
    )
    .respond_with(ok_json(json!({"code": 0, "data": {}})))
    .expect(1)
    .mount(&server)
    .await;
    let dp = data(&server.uri(), Flavour::V2);
    assert!(dp.has_partition("default", "c1", "january").await.unwrap());
    dp.release_partition("default", "c1", "january")
        .await
        .expect("released");
    dp.drop_partition("default", "c1", "january")
        .await
        .expect("dropped");
    server.verify().await;
}

#[tokio::test]
async fn data_plane_v2_index_drop_and_describe() {
    let server = MockServer::start().await;
    let body = json!({"collectionName": "c1", "dbName": "default", "indexName": "vector_idx"});
    post_json("/v2/vectordb/indexes/describe", body.clone())
        .respond_with(ok_json(json!({
            "code": 0,
            "data": [{"indexName": "vector_idx", "fieldName": "vector", "indexType": "AUTOINDEX", "metricType": "L2"}]
        })))
        .expect(1)
        .mount(&server)
        .await;
    post_json("/v2/vectordb/indexes/drop", body.clone())
        .respond_with(ok_json(json!({"code": 0, "data": {}})))
        .expect(1)
        .mount(&server)
        .await;
    let dp = data(&server.uri(), Flavour::V2);
    assert!(dp.has_index("default", "c1", "vector_idx").await.unwrap());
    dp.drop_index("default", "c1", "vector_idx")
        .await
        .expect("dropped");
    server.verify().await;

    // 700: index not found -> absent
    let server = MockServer::start().await;
    post_json("/v2/vectordb/indexes/describe", body.clone())
        .respond_with(ok_json(
            json!({"code": 700, "message": "index not found[indexName=vector_idx]"}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    assert!(
        !data(&server.uri(), Flavour::V2)
            .has_index("default", "c1", "vector_idx")
            .await
            .unwrap()
    );
    server.verify().await;
}

/// Which v2 drop an answer is given to.
#[derive(Clone, Copy, Debug)]
enum Op {
    Collection,
    Partition,
    Index,
}

async fn answer_v2(op: Op, resp: ResponseTemplate) -> Result<(), ApiError> {
    let server = MockServer::start().await;
    let (p, body) = match op {
        Op::Collection => (
            "/v2/vectordb/collections/drop",
            json!({"collectionName": "c1", "dbName": "default"}),
        ),
        Op::Partition => (
            "/v2/vectordb/partitions/drop",
            json!({"collectionName": "c1", "dbName": "default", "partitionName": "p1"}),
        ),
        Op::Index => (
            "/v2/vectordb/indexes/drop",
            json!({"collectionName": "c1", "dbName": "default", "indexName": "i1"}),
        ),
    };
    post_json(p, body)
        .respond_with(resp)
        .expect(1)
        .mount(&server)
        .await;
    let dp = data(&server.uri(), Flavour::V2);
    let res = match op {
        Op::Collection => dp.drop_collection("default", "c1").await,
        Op::Partition => dp.drop_partition("default", "c1", "p1").await,
        Op::Index => dp.drop_index("default", "c1", "i1").await,
    };
    server.verify().await;
    res
}

/// A v2 answer and what it must give: `None` = Ok, else the class, HTTP status and code.
type Case = (
    Op,
    ResponseTemplate,
    Option<ErrorClass>,
    Option<u16>,
    Option<i64>,
);

#[tokio::test]
async fn data_plane_v2_answers() {
    use ErrorClass::*;
    let json_answer = |status: u16, body: Value| ResponseTemplate::new(status).set_body_json(body);
    let cases: Vec<Case> = vec![
        (Op::Collection, json_answer(200, json!({"code": 0, "data": {}})), None, None, None),
        // early v2 builds answered 200 with data
        (Op::Collection, json_answer(200, json!({"code": 200, "data": {}})), None, None, None),
        (
            Op::Collection,
            json_answer(200, json!({"code": 100, "message": "collection not found[database=default][collection=c1]"})),
            Some(NotFound),
            Some(200),
            Some(100),
        ),
        (
            Op::Partition,
            json_answer(200, json!({"code": 65535, "message": "partition cannot be dropped, partition is loaded, please release it first"})),
            Some(NeedsRelease),
            Some(200),
            Some(65535),
        ),
        (
            Op::Index,
            json_answer(200, json!({"code": 65535, "message": "index cannot be dropped, collection is loaded, please release it first"})),
            Some(NeedsRelease),
            Some(200),
            Some(65535),
        ),
        (
            Op::Partition,
            json_answer(200, json!({"code": 65535, "message": "default partition cannot be deleted"})),
            Some(Unsupported),
            Some(200),
            Some(65535),
        ),
        // v2: 200 with a message and no data is an error
        (
            Op::Partition,
            json_answer(200, json!({"code": 200, "message": "partition not found[partition=p1]"})),
            Some(NotFound),
            Some(200),
            Some(200),
        ),
        (
            Op::Collection,
            json_answer(401, json!({"code": 1800, "message": "user hasn't authenticated"})),
            Some(Credentials),
            Some(401),
            Some(1800),
        ),
        (
            Op::Collection,
            json_answer(401, json!({"code": 21119, "message": "The apikey is illegal"})),
            Some(Credentials),
            Some(401),
            Some(21119),
        ),
        (
            Op::Collection,
            json_answer(403, json!({"code": 65535, "message": "PermissionDenied: not allowed to DropCollection"})),
            Some(Credentials),
            Some(403),
            Some(65535),
        ),
        (Op::Collection, ResponseTemplate::new(401), Some(Credentials), Some(401), None),
        (Op::Collection, ResponseTemplate::new(403), Some(Credentials), Some(403), None),
        (
            Op::Collection,
            json_answer(408, json!({"code": 10001})),
            Some(Transient),
            Some(408),
            Some(10001),
        ),
        (
            Op::Collection,
            ResponseTemplate::new(502).set_body_raw(
                "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n",
                "text/html",
            ),
            Some(Transient),
            Some(502),
            None,
        ),
        (Op::Collection, ResponseTemplate::new(503), Some(Transient), Some(503), None),
        (
            Op::Collection,
            ResponseTemplate::new(504).set_body_raw("<html><body>504 Gateway Time-out</body></html>", "text/html"),
            Some(Transient),
            Some(504),
            None,
        ),
        // a malformed body on HTTP 200 is never "done"
        (
            Op::Collection,
            ResponseTemplate::new(200).set_body_raw("{\"code\":0,\"data\":", "application/json"),
            Some(Unknown),
            Some(200),
            None,
        ),
        (
            Op::Collection,
            ResponseTemplate::new(200).set_body_raw("OK", "text/plain"),
            Some(Unknown),
            Some(200),
            None,
        ),
        (Op::Collection, ResponseTemplate::new(200), Some(Unknown), Some(200), None),
        // an unknown code: retried, body kept
        (
            Op::Collection,
            json_answer(200, json!({"code": 424242, "message": "something new"})),
            Some(Unknown),
            Some(200),
            Some(424242),
        ),
        // a success code behind an error status (a proxy answering for a dead backend) is not "done"
        (
            Op::Collection,
            json_answer(503, json!({"code": 0, "data": {}})),
            Some(Transient),
            Some(503),
            Some(0),
        ),
        (
            Op::Collection,
            json_answer(401, json!({"code": 200, "data": {}})),
            Some(Credentials),
            Some(401),
            Some(200),
        ),
    ];
    for (op, resp, expected, status, code) in cases {
        let label = format!("{op:?} {resp:?}");
        let res = answer_v2(op, resp).await;
        match expected {
            None => res.unwrap_or_else(|e| panic!("{label}: {e}")),
            Some(class) => {
                let err = expect_err(res);
                assert_eq!(err.class, class, "{label}: {err}");
                assert_eq!(err.http_status, status, "{label}: {err}");
                assert_eq!(err.code, code, "{label}: {err}");
            }
        }
    }
}

#[tokio::test]
async fn a_v2_call_on_a_v1_only_server_is_a_bad_request_naming_the_api_version() {
    let server = MockServer::start().await;
    // what Milvus 2.3.5 answers for /v2/... (gin's default 404)
    post_json(
        "/v2/vectordb/collections/drop",
        json!({"collectionName": "c1", "dbName": "default"}),
    )
    .respond_with(ResponseTemplate::new(404).set_body_raw("404 page not found", "text/plain"))
    .expect(1)
    .mount(&server)
    .await;
    let err = expect_err(
        data(&server.uri(), Flavour::V2)
            .drop_collection("default", "c1")
            .await,
    );
    assert_eq!(err.class, ErrorClass::BadRequest);
    assert_eq!(err.http_status, Some(404));
    assert!(err.message.contains("API version"), "{}", err.message);
    assert!(
        err.message.contains("404 page not found"),
        "{}",
        err.message
    );
    assert!(!err.class.is_retryable());
    server.verify().await;
}

#[tokio::test]
async fn throttling_keeps_retry_after() {
    let server = MockServer::start().await;
    bodyless("DELETE", "/v2/clusters/inxx-1/drop")
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("Retry-After", "3")
                .set_body_json(json!({"code": 429, "message": "Too many requests"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let err = expect_err(
        control(&server.uri(), Flavour::V2)
            .drop_cluster("inxx-1")
            .await,
    );
    assert_eq!(err.class, ErrorClass::Transient, "{err}");
    assert_eq!(err.http_status, Some(429));
    assert_eq!(err.retry_after, Some(Duration::from_secs(3)));
    assert!(err.class.is_retryable());
    server.verify().await;

    // a plain-text 429 too
    let server = MockServer::start().await;
    bodyless("DELETE", "/v2/clusters/inxx-1/drop")
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("Retry-After", "3")
                .set_body_raw("slow down", "text/plain"),
        )
        .expect(1)
        .mount(&server)
        .await;
    let err = expect_err(
        control(&server.uri(), Flavour::V2)
            .drop_cluster("inxx-1")
            .await,
    );
    assert_eq!(err.class, ErrorClass::Transient, "{err}");
    assert_eq!(err.retry_after, Some(Duration::from_secs(3)));
    server.verify().await;
}

// ---------------------------------------------------------------------------------------------
// Transport failures
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn connection_refused_is_transient() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    }; // dropped: nothing listens there now
    let base = format!("http://127.0.0.1:{port}");
    let err = expect_err(
        data(&base, Flavour::V1)
            .drop_collection("default", "c1")
            .await,
    );
    assert_eq!(err.class, ErrorClass::Transient, "{err}");
    assert_eq!(err.http_status, None);
    assert!(err.message.contains("connection failed"), "{}", err.message);
    let err = expect_err(control(&base, Flavour::V2).drop_cluster("inxx-1").await);
    assert_eq!(err.class, ErrorClass::Transient, "{err}");
}

#[tokio::test]
async fn a_server_slower_than_the_timeout_is_transient() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v2/vectordb/collections/drop"))
        // Request-Timeout is whole seconds, at least 1
        .and(header("Request-Timeout", "1"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"code": 0, "data": {}}))
                .set_delay(Duration::from_secs(5)),
        )
        .expect(1)
        .mount(&server)
        .await;
    let dp = DataPlane {
        http: client(Duration::from_millis(300)),
        endpoint: url(&server.uri()),
        flavour: Flavour::V2,
        token: Token::new(TOKEN),
    };
    let started = std::time::Instant::now();
    let err = expect_err(dp.drop_collection("default", "c1").await);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(err.class, ErrorClass::Transient, "{err}");
    assert!(err.message.contains("timed out"), "{}", err.message);
    server.verify().await;
}

/// A raw HTTP server answering every connection with `head` then `body`, then closing.
async fn raw_server(head: &'static str, body: &'static [u8]) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                // read the request head (and whatever body came with it)
                let mut buf = vec![0u8; 8192];
                let mut seen = Vec::new();
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = sock.write_all(head.as_bytes()).await;
                let _ = sock.write_all(body).await;
                let _ = sock.flush().await;
                let _ = sock.shutdown().await;
            });
        }
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn a_body_cut_mid_way_is_transient_never_done() {
    // promises 200 bytes, sends the start of a success envelope, closes
    let base = raw_server(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n",
        b"{\"code\":0,\"data\":{\"clus",
    )
    .await;
    let err = expect_err(
        data(&base, Flavour::V2)
            .drop_collection("default", "c1")
            .await,
    );
    assert_eq!(err.class, ErrorClass::Transient, "{err}");
    assert_eq!(err.http_status, Some(200));
    assert!(err.message.contains("cut off"), "{}", err.message);

    let err = expect_err(control(&base, Flavour::V2).drop_cluster("inxx-1").await);
    assert_eq!(err.class, ErrorClass::Transient, "{err}");

    // a connection closed before any answer
    let base = raw_server("", b"").await;
    let err = expect_err(
        data(&base, Flavour::V1)
            .drop_collection("default", "c1")
            .await,
    );
    assert_eq!(err.class, ErrorClass::Transient, "{err}");
    assert_eq!(err.http_status, None);
}

// ---------------------------------------------------------------------------------------------
// The token stays secret
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn the_token_never_shows_in_debug_output_or_errors() {
    let cp = control("https://api.cloud.zilliz.com", Flavour::V2);
    let dp = data(
        "https://in01-x.api.gcp-us-west1.zillizcloud.com",
        Flavour::V2,
    );
    let secret = TOKEN.split(':').nth(1).unwrap();
    for text in [
        format!("{cp:?}"),
        format!("{dp:?}"),
        format!("{:?}", cp.http),
        format!("{:?}", cp.token),
    ] {
        assert!(!text.contains(secret), "{text}");
    }

    // a gateway that echoes the Authorization header back in its error
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(move |req: &Request| {
            let auth = req
                .headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            if req.url.path().ends_with("/collections/drop") {
                ResponseTemplate::new(401).set_body_json(
                    json!({"code": 80001, "message": format!("The token is illegal: {auth}")}),
                )
            } else {
                ResponseTemplate::new(502)
                    .set_body_raw(format!("<html>bad gateway for {auth}</html>"), "text/html")
            }
        })
        .expect(2)
        .mount(&server)
        .await;
    let dp = data(&server.uri(), Flavour::V2);
    let err = expect_err(dp.drop_collection("default", "c1").await);
    assert_eq!(err.class, ErrorClass::Credentials, "{err}");
    let err = expect_err(dp.drop_index("default", "c1", "i1").await);
    assert_eq!(err.class, ErrorClass::Transient, "{err}");
    server.verify().await;
}

/// A short password echoed alone by the server: the password never comes through, whatever its
/// length (the whole message is withheld when it is too short to cut out), and the answer is
/// still classified as it came.
#[tokio::test]
async fn a_short_password_echoed_alone_never_shows() {
    use zilliz_operator::api::WITHHELD_MESSAGE;
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(|req: &Request| {
            let auth = req
                .headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            // the password alone, as a server that splits `user:password` would echo it
            let password = auth.rsplit(':').next().unwrap_or_default().to_string();
            if req.url.path().ends_with("/collections/drop") {
                ResponseTemplate::new(401).set_body_json(json!({
                    "code": 1800,
                    "message": format!("user hasn't authenticated: wrong password {password}")
                }))
            } else {
                ResponseTemplate::new(502).set_body_raw(
                    format!("<html>{}{password}</html>", "x".repeat(193)),
                    "text/html",
                )
            }
        })
        .expect(4)
        .mount(&server)
        .await;
    for password in ["Xq7", "Zk9#2w"] {
        let mut dp = data(&server.uri(), Flavour::V2);
        dp.token = Token::new(format!("root:{password}"));
        let err = dp.drop_collection("default", "c1").await.expect_err("401");
        assert_eq!(err.class, ErrorClass::Credentials, "{err}");
        assert_eq!(err.code, Some(1800));
        assert_eq!(err.message, WITHHELD_MESSAGE);
        // the echo straddles the 200-character excerpt of a non-JSON body
        let err = dp.drop_index("default", "c1", "i1").await.expect_err("502");
        assert_eq!(err.class, ErrorClass::Transient, "{err}");
        assert_eq!(err.message, WITHHELD_MESSAGE);
        for text in [err.to_string(), format!("{err:?}")] {
            assert!(!text.contains(password), "{password} leaked: {text}");
        }
    }
    server.verify().await;
}
