//! Reconciler scenarios: a scripted Kubernetes API server (tower-test) and a real HTTP fake of
//! the Zilliz / Milvus APIs (wiremock) answering with the recorded real bodies.

use crate::{
    controller::{Action, Error, error_policy, reconcile},
    crd::{ZillizCluster, ZillizCollection, ZillizIndex, ZillizPartition},
    fixtures::*,
    stores::Cached as Managed,
};
use http::{Method, StatusCode};
use kube::runtime::finalizer::Error as FinalizerError;
use serde_json::{Value, json};
use std::{sync::Arc, time::Duration};
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{any, body_json, header, method, path},
};

/// The condition of `type_` in a written status (`Value::Null` when absent).
fn cond<'a>(status: &'a Value, type_: &str) -> &'a Value {
    status["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == type_))
        .unwrap_or(&Value::Null)
}

fn typed<K: Managed>(v: &Value) -> Arc<K> {
    Arc::new(serde_json::from_value(v.clone()).expect("valid object"))
}

/// The requeue delay of an action (kube's `Action` has no getter; its Debug form says it).
fn requeue_of(action: &Action) -> Option<Duration> {
    let text = format!("{action:?}");
    let inner = text.split("Some(").nth(1)?.split(')').next()?;
    humantime::parse_duration(&inner.replace("ms", "ms ").replace('s', "s ")).ok()
}

fn connection(uri: &str) -> Value {
    json!({"endpoint": uri, "credentialsSecretRef": {"name": "creds"}})
}

/// A fake that fails the test if it is called at all.
async fn silent_fake() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&server)
        .await;
    server
}

fn ok_v2() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({"code": 0, "data": {}}))
}

/// The error a pending drop leaves, with its reason and delay.
fn pending(result: Result<Action, Error>) -> (&'static str, String, Duration) {
    match result {
        Err(Error::Finalizer(f)) => match *f {
            FinalizerError::CleanupFailed(Error::Pending {
                reason,
                message,
                retry_in,
            }) => (reason.as_str(), message, retry_in),
            other => panic!("expected a pending drop, got {other:?}"),
        },
        other => panic!("expected a pending drop, got {other:?}"),
    }
}

#[tokio::test]
async fn finalizer_is_added_before_anything_else() {
    let (ctx, mut api) = testcontext();
    let fake = silent_fake().await;
    let obj = object(
        "ZillizCollection",
        "books",
        json!({"collectionName": "books", "connection": connection(&fake.uri())}),
        false,
        false,
    );
    let run = tokio::spawn(reconcile::<ZillizCollection>(typed(&obj), ctx));
    let req = api.expect(Method::PATCH, &object_path(&obj)).await;
    assert_eq!(req.content_type, "application/json-patch+json");
    assert_eq!(
        req.body,
        json!([
            {"op": "test", "path": "/metadata/finalizers", "value": null},
            {"op": "add", "path": "/metadata/finalizers", "value": ["zilliz.io/finalizer"]}
        ])
    );
    let mut with = obj.clone();
    with["metadata"]["finalizers"] = json!(["zilliz.io/finalizer"]);
    req.ok(with);
    assert_eq!(run.await.unwrap().unwrap(), Action::await_change());
    api.expect_silence().await;
    fake.verify().await;
}

#[tokio::test]
async fn live_object_is_observed_and_an_unchanged_status_is_not_written_again() {
    let (ctx, mut api) = testcontext();
    let fake = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v2/vectordb/collections/describe"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .and(body_json(
            json!({"collectionName": "books", "dbName": "default"}),
        ))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"code": 0, "data": {
            "collectionName": "books", "load": "LoadStateLoaded", "shardsNum": 1,
            "fields": [{"name": "id", "type": "Int64", "primaryKey": true}]}})),
        )
        .expect(2)
        .mount(&fake)
        .await;
    let obj = object(
        "ZillizCollection",
        "books",
        json!({"collectionName": "books", "connection": connection(&fake.uri())}),
        true,
        false,
    );
    let run = tokio::spawn(reconcile::<ZillizCollection>(typed(&obj), ctx.clone()));
    api.serve_secret("creds").await;
    // the Secret it names is marked in use, so a namespace deletion cannot remove it first
    api.serve_secret_guard("creds").await;
    let status = api.serve_status_patch(&obj).await;
    let action = run.await.unwrap().unwrap();
    assert_eq!(status["observedGeneration"], 1);
    let ready = &status["conditions"][0];
    assert_eq!(
        (
            ready["type"].as_str(),
            ready["status"].as_str(),
            ready["reason"].as_str()
        ),
        (Some("Ready"), Some("True"), Some("Available"))
    );
    assert_eq!(ready["observedGeneration"], 1);
    assert!(ready["lastTransitionTime"].as_str().unwrap().ends_with('Z'));
    assert_eq!(cond(&status, "Synced")["type"], "Synced");
    assert_eq!(cond(&status, "Synced")["status"], "True");
    // re-observed on a jittered resync interval
    let delay = requeue_of(&action).expect("requeued");
    assert!(
        delay >= Duration::from_secs(540) && delay <= Duration::from_secs(660),
        "{delay:?}"
    );

    // the same observation again: no status write
    let mut again = obj.clone();
    again["status"] = status;
    let run = tokio::spawn(reconcile::<ZillizCollection>(typed(&again), ctx));
    api.serve_guarded_secret("creds").await;
    run.await.unwrap().unwrap();
    api.expect_silence().await;
    fake.verify().await;
}

#[tokio::test]
async fn delete_drops_then_removes_the_finalizer() {
    let (ctx, mut api) = testcontext();
    let fake = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v2/vectordb/collections/drop"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .and(header("request-timeout", "2"))
        .and(body_json(
            json!({"collectionName": "books", "dbName": "default"}),
        ))
        .respond_with(ok_v2())
        .expect(1)
        .mount(&fake)
        .await;
    let obj = object(
        "ZillizCollection",
        "books",
        json!({"collectionName": "books", "connection": connection(&fake.uri())}),
        true,
        true,
    );
    let run = tokio::spawn(reconcile::<ZillizCollection>(typed(&obj), ctx));
    api.serve_fresh_read(&obj).await;
    api.serve_secret("creds").await;
    let note = api.serve_event("Dropped").await;
    assert!(note.contains("default.books"), "{note}");
    api.serve_finalizer_removal(&obj).await;
    assert_eq!(run.await.unwrap().unwrap(), Action::await_change());
    api.expect_silence().await;
    fake.verify().await;
}

#[tokio::test]
async fn v1_collection_already_gone_counts_as_dropped() {
    let (ctx, mut api) = testcontext();
    let fake = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/vector/collections/drop"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "code": 100, "message": "collection not found, database: default, collection: books"
        })))
        .expect(1)
        .mount(&fake)
        .await;
    let obj = object(
        "ZillizCollection",
        "books",
        json!({"collectionName": "books", "apiVersion": "v1", "connection": connection(&fake.uri())}),
        true,
        true,
    );
    let run = tokio::spawn(reconcile::<ZillizCollection>(typed(&obj), ctx));
    api.serve_fresh_read(&obj).await;
    api.serve_secret("creds").await;
    api.serve_event("AlreadyAbsent").await;
    api.serve_finalizer_removal(&obj).await;
    run.await.unwrap().unwrap();
    fake.verify().await;
}

#[tokio::test]
async fn a_stale_cached_deletion_is_not_dropped_again() {
    // The cache can still hold a deleted object whose drop already finished (a late trigger
    // queues it again); the fresh read says it is gone, so nothing is called.
    let (ctx, mut api) = testcontext();
    let fake = silent_fake().await;
    let obj = object(
        "ZillizCollection",
        "books",
        json!({"collectionName": "books", "connection": connection(&fake.uri())}),
        true,
        true,
    );
    let run = tokio::spawn(reconcile::<ZillizCollection>(typed(&obj), ctx));
    api.expect(Method::GET, &object_path(&obj)).await.respond(
        StatusCode::NOT_FOUND,
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404}),
    );
    assert_eq!(run.await.unwrap().unwrap(), Action::await_change());
    api.expect_silence().await;
    fake.verify().await;
}

#[tokio::test]
async fn a_cached_deletion_whose_finalizer_is_gone_or_whose_uid_changed_is_not_dropped() {
    // The copy a reconcile was handed still carries our finalizer, but the object as it is
    // now does not (our removal, not yet seen), or is another object of the same name created
    // since (a new uid): neither is dropped.
    let fake = silent_fake().await;
    let obj = object(
        "ZillizCollection",
        "books",
        json!({"collectionName": "books", "connection": connection(&fake.uri())}),
        true,
        true,
    );
    let mut let_go = obj.clone();
    let_go["metadata"]["finalizers"] = json!(["example.com/other"]);
    let mut recreated = obj.clone();
    recreated["metadata"]["uid"] = json!("uid-books-2");
    recreated["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("deletionTimestamp");
    for now in [let_go, recreated] {
        let (ctx, mut api) = testcontext();
        let run = tokio::spawn(reconcile::<ZillizCollection>(typed(&obj), ctx));
        api.expect(Method::GET, &object_path(&obj)).await.ok(now);
        assert_eq!(run.await.unwrap().unwrap(), Action::await_change());
        api.expect_silence().await;
    }
    fake.verify().await;
}

#[tokio::test]
async fn a_cluster_whose_accepted_mark_was_lost_is_not_dropped_again() {
    // The status write after an accepted drop failed: the object shows no dropAcceptedTime.
    // The describe that comes first shows DELETING, so no second DELETE is sent, and the mark
    // is written.
    let (ctx, mut api) = testcontext();
    let fake = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v2/clusters/in01-abc"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "code": 0, "data": {"clusterId": "in01-abc", "status": "DELETING"}
        })))
        .expect(1)
        .mount(&fake)
        .await;
    Mock::given(method("DELETE"))
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&fake)
        .await;
    let obj = cluster(&fake.uri(), None);
    let run = tokio::spawn(reconcile::<ZillizCluster>(typed(&obj), ctx));
    api.serve_fresh_read(&obj).await;
    api.serve_secret("creds").await;
    let status = api.serve_status_patch(&obj).await;
    let (reason, message, _) = pending(run.await.unwrap());
    assert_eq!(reason, "DropInProgress");
    assert!(message.contains("DELETING"), "{message}");
    assert!(
        status["deletion"]["dropAcceptedTime"].is_string(),
        "{status}"
    );
    fake.verify().await;
}

#[tokio::test]
async fn orphan_makes_no_api_call() {
    let (ctx, mut api) = testcontext();
    let fake = silent_fake().await;
    let obj = object(
        "ZillizCollection",
        "books",
        json!({"collectionName": "books", "deletionPolicy": "Orphan", "connection": connection(&fake.uri())}),
        true,
        true,
    );
    let run = tokio::spawn(reconcile::<ZillizCollection>(typed(&obj), ctx));
    api.serve_fresh_read(&obj).await;
    let note = api.serve_event("Orphaned").await;
    assert!(note.contains("kept"), "{note}");
    api.serve_finalizer_removal(&obj).await;
    run.await.unwrap().unwrap();
    api.expect_silence().await;
    fake.verify().await;
}

#[tokio::test]
async fn transient_error_writes_status_and_requeues_with_backoff() {
    let (ctx, mut api) = testcontext();
    let fake = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v2/vectordb/collections/drop"))
        .respond_with(
            ResponseTemplate::new(503)
                .insert_header("retry-after", "1")
                .set_body_string("<html>503 Service Unavailable</html>"),
        )
        .expect(2)
        .mount(&fake)
        .await;
    let obj = object(
        "ZillizCollection",
        "books",
        json!({"collectionName": "books", "connection": connection(&fake.uri())}),
        true,
        true,
    );
    let run = tokio::spawn(reconcile::<ZillizCollection>(typed(&obj), ctx.clone()));
    api.serve_fresh_read(&obj).await;
    api.serve_secret("creds").await;
    let status = api.serve_status_patch(&obj).await;
    let result = run.await.unwrap();
    let (reason, message, retry_in) = pending(result);
    assert_eq!(reason, "DropRetrying");
    assert!(
        message.contains("HTTP 503") && message.contains("attempt 1"),
        "{message}"
    );
    assert!(
        retry_in >= Duration::from_secs(1),
        "Retry-After honoured: {retry_in:?}"
    );
    assert_eq!(status["deletion"]["attempts"], 1);
    assert!(
        status["deletion"]["lastError"]
            .as_str()
            .unwrap()
            .contains("503")
    );
    assert!(status["deletion"]["nextRetryTime"].is_string());
    let synced = &cond(&status, "Synced");
    assert_eq!(
        (synced["type"].as_str(), synced["status"].as_str()),
        (Some("Synced"), Some("False"))
    );
    assert_eq!(synced["reason"], "DropRetrying");
    // the token never reaches the status
    assert!(!status.to_string().contains(TOKEN));

    // the next attempt counts on from the recorded status
    let mut again = obj.clone();
    again["status"] = status;
    let run = tokio::spawn(reconcile::<ZillizCollection>(typed(&again), ctx.clone()));
    api.serve_fresh_read(&again).await;
    api.serve_secret("creds").await;
    let status = api.serve_status_patch(&again).await;
    let err = run.await.unwrap().unwrap_err();
    assert_eq!(status["deletion"]["attempts"], 2);
    // error_policy uses the delay the error carries
    let action = error_policy(typed::<ZillizCollection>(&again), &err, ctx);
    let delay = requeue_of(&action).expect("requeued");
    assert!(
        delay >= Duration::from_secs(1) && delay <= Duration::from_secs(2),
        "{delay:?}"
    );
    fake.verify().await;
}

#[tokio::test]
async fn terminal_error_is_drop_failed_with_a_warning_and_a_slow_retry() {
    let (ctx, mut api) = testcontext();
    let fake = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v2/vectordb/collections/drop"))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_json(json!({"code": 1800, "message": "user hasn't authenticated"})),
        )
        .expect(1)
        .mount(&fake)
        .await;
    let obj = object(
        "ZillizCollection",
        "books",
        json!({"collectionName": "books", "connection": connection(&fake.uri())}),
        true,
        true,
    );
    let typed_obj = typed::<ZillizCollection>(&obj);
    let run = tokio::spawn(reconcile::<ZillizCollection>(
        typed_obj.clone(),
        ctx.clone(),
    ));
    api.serve_fresh_read(&obj).await;
    api.serve_secret("creds").await;
    let note = api.serve_event("DropFailed").await;
    assert!(note.contains("1800") && !note.contains(TOKEN), "{note}");
    let status = api.serve_status_patch(&obj).await;
    let result = run.await.unwrap();
    assert_eq!(cond(&status, "Synced")["reason"], "DropFailed");
    let err = result.unwrap_err();
    assert_eq!(err.category(), "DropFailed");
    // retried slowly: about the backoff cap (2 s in the test settings), never a hot loop
    let action = error_policy(typed_obj, &err, ctx);
    let delay = requeue_of(&action).expect("requeued");
    assert!(
        delay >= Duration::from_millis(1600) && delay <= Duration::from_secs(2),
        "{delay:?}"
    );
    fake.verify().await;
}

#[tokio::test]
async fn missing_secret_is_credentials_unavailable_and_retried() {
    let (ctx, mut api) = testcontext();
    let fake = silent_fake().await;
    let obj = object(
        "ZillizCollection",
        "books",
        json!({"collectionName": "books", "connection": connection(&fake.uri())}),
        true,
        true,
    );
    let run = tokio::spawn(reconcile::<ZillizCollection>(typed(&obj), ctx));
    api.serve_fresh_read(&obj).await;
    api.expect(
        Method::GET,
        &format!("/api/v1/namespaces/{NS}/secrets/creds"),
    )
    .await
    .respond(
        StatusCode::NOT_FOUND,
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                   "reason": "NotFound", "code": 404, "message": "secrets \"creds\" not found"}),
    );
    let status = api.serve_status_patch(&obj).await;
    let (reason, message, _) = pending(run.await.unwrap());
    assert_eq!(reason, "CredentialsUnavailable");
    assert!(message.contains("creds"), "{message}");
    assert_eq!(cond(&status, "Synced")["reason"], "CredentialsUnavailable");
    fake.verify().await;
}

#[tokio::test]
async fn invalid_spec_is_a_condition_and_stays_deletable() {
    let (ctx, mut api) = testcontext();
    let fake = silent_fake().await;
    // names both clusterRef and connection
    let spec = json!({"collectionName": "books", "clusterRef": {"name": "z"}, "connection": connection(&fake.uri())});
    let live = object("ZillizCollection", "books", spec.clone(), true, false);
    let run = tokio::spawn(reconcile::<ZillizCollection>(typed(&live), ctx.clone()));
    let status = api.serve_status_patch(&live).await;
    assert_eq!(run.await.unwrap().unwrap(), Action::await_change());
    assert_eq!(status["conditions"][0]["reason"], "InvalidSpec");
    assert!(
        status["conditions"][0]["message"]
            .as_str()
            .unwrap()
            .contains("exactly one")
    );

    let deleted = object("ZillizCollection", "books", spec, true, true);
    let run = tokio::spawn(reconcile::<ZillizCollection>(typed(&deleted), ctx));
    api.serve_fresh_read(&deleted).await;
    api.serve_event("NothingToDrop").await;
    api.serve_finalizer_removal(&deleted).await;
    run.await.unwrap().unwrap();
    fake.verify().await;
}

#[tokio::test]
async fn partition_is_released_then_dropped() {
    let (ctx, mut api) = testcontext();
    let fake = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v2/vectordb/partitions/release"))
        .and(body_json(
            json!({"collectionName": "books", "dbName": "default", "partitionNames": ["y2024"]}),
        ))
        .respond_with(ok_v2())
        .expect(1)
        .mount(&fake)
        .await;
    Mock::given(method("POST"))
        .and(path("/v2/vectordb/partitions/drop"))
        .and(body_json(
            json!({"collectionName": "books", "dbName": "default", "partitionName": "y2024"}),
        ))
        .respond_with(ok_v2())
        .expect(1)
        .mount(&fake)
        .await;
    let coll = object(
        "ZillizCollection",
        "books",
        json!({"collectionName": "books", "connection": connection(&fake.uri())}),
        true,
        false,
    );
    let obj = object(
        "ZillizPartition",
        "p",
        json!({"partitionName": "y2024", "collectionRef": {"name": "books"}}),
        true,
        true,
    );
    let run = tokio::spawn(reconcile::<ZillizPartition>(typed(&obj), ctx));
    api.serve_fresh_read(&obj).await;
    api.expect(Method::GET, &object_path(&coll))
        .await
        .ok(coll.clone());
    api.serve_secret("creds").await;
    api.serve_event("Dropped").await;
    api.serve_finalizer_removal(&obj).await;
    run.await.unwrap().unwrap();
    fake.verify().await;
    let order: Vec<String> = fake
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| r.url.path().to_string())
        .collect();
    assert_eq!(
        order,
        [
            "/v2/vectordb/partitions/release",
            "/v2/vectordb/partitions/drop"
        ]
    );
}

async fn collection_gone(api: &mut crate::fixtures::ApiServerVerifier) {
    api.expect(
        Method::GET,
        &format!("/apis/zilliz.io/v1alpha1/namespaces/{NS}/zillizcollections/books"),
    )
    .await
    .respond(
        StatusCode::NOT_FOUND,
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404}),
    );
}

#[tokio::test]
async fn partition_whose_collection_object_is_gone_keeps_its_finalizer() {
    // A missing Kubernetes object says nothing about the collection (its object may have been
    // deleted with Orphan, or removed by hand): without a recorded address, keep and say how.
    let (ctx, mut api) = testcontext();
    let obj = object(
        "ZillizPartition",
        "p",
        json!({"partitionName": "y2024", "collectionRef": {"name": "books"}}),
        true,
        true,
    );
    let run = tokio::spawn(reconcile::<ZillizPartition>(typed(&obj), ctx));
    api.serve_fresh_read(&obj).await;
    collection_gone(&mut api).await;
    api.serve_event("ReferenceNotFound").await;
    let status = api.serve_status_patch(&obj).await;
    let (reason, message, _) = pending(run.await.unwrap());
    assert_eq!(reason, "ReferenceNotFound");
    assert!(message.contains("deletionPolicy: Orphan"), "{message}");
    assert_eq!(cond(&status, "Synced")["reason"], "ReferenceNotFound");
}

#[tokio::test]
async fn partition_whose_collection_object_is_gone_drops_where_it_recorded() {
    let (ctx, mut api) = testcontext();
    let fake = MockServer::start().await;
    for (route, expect) in [("release", 1), ("drop", 1)] {
        Mock::given(method("POST"))
            .and(path(format!("/v2/vectordb/partitions/{route}")))
            .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
            .respond_with(ok_v2())
            .expect(expect)
            .mount(&fake)
            .await;
    }
    let mut obj = object(
        "ZillizPartition",
        "p",
        json!({"partitionName": "y2024", "collectionRef": {"name": "books"}}),
        true,
        true,
    );
    obj["status"] = json!({"resolved": {
        "endpoint": fake.uri(), "dbName": "default", "collectionName": "books",
        "credentialsSecretRef": {"name": "creds", "key": "apiKey"}
    }});
    let run = tokio::spawn(reconcile::<ZillizPartition>(typed(&obj), ctx));
    api.serve_fresh_read(&obj).await;
    collection_gone(&mut api).await;
    api.serve_secret("creds").await;
    api.serve_event("Dropped").await;
    api.serve_finalizer_removal(&obj).await;
    run.await.unwrap().unwrap();
    fake.verify().await;
}

fn index_spec(uri: &str, release: bool) -> Value {
    json!({
        "indexName": "vec", "collectionName": "books", "connection": connection(uri),
        "releaseCollectionBeforeDrop": release
    })
}

fn loaded() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "code": 65535,
        "message": "index cannot be dropped, collection is loaded, please release it first"
    }))
}

#[tokio::test]
async fn index_of_a_loaded_collection_is_blocked_not_released() {
    let (ctx, mut api) = testcontext();
    let fake = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v2/vectordb/indexes/drop"))
        .and(body_json(
            json!({"collectionName": "books", "dbName": "default", "indexName": "vec"}),
        ))
        .respond_with(loaded())
        .expect(1)
        .mount(&fake)
        .await;
    Mock::given(method("POST"))
        .and(path("/v2/vectordb/collections/release"))
        .respond_with(ok_v2())
        .expect(0)
        .mount(&fake)
        .await;
    let obj = object(
        "ZillizIndex",
        "i",
        index_spec(&fake.uri(), false),
        true,
        true,
    );
    let run = tokio::spawn(reconcile::<ZillizIndex>(typed(&obj), ctx));
    api.serve_fresh_read(&obj).await;
    api.serve_secret("creds").await;
    let note = api.serve_event("CollectionLoaded").await;
    assert!(note.contains("releaseCollectionBeforeDrop"), "{note}");
    let status = api.serve_status_patch(&obj).await;
    let (reason, _, retry_in) = pending(run.await.unwrap());
    assert_eq!(reason, "DropBlocked");
    assert!(retry_in <= Duration::from_secs(2));
    assert_eq!(cond(&status, "Synced")["reason"], "DropBlocked");
    assert!(
        cond(&status, "Synced")["message"]
            .as_str()
            .unwrap()
            .starts_with("CollectionLoaded")
    );
    fake.verify().await;
}

#[tokio::test]
async fn index_with_release_allowed_releases_the_collection_then_drops() {
    let (ctx, mut api) = testcontext();
    let fake = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v2/vectordb/indexes/drop"))
        .respond_with(loaded())
        .up_to_n_times(1)
        .expect(1)
        .with_priority(1)
        .mount(&fake)
        .await;
    Mock::given(method("POST"))
        .and(path("/v2/vectordb/collections/release"))
        .and(body_json(
            json!({"collectionName": "books", "dbName": "default"}),
        ))
        .respond_with(ok_v2())
        .expect(1)
        .mount(&fake)
        .await;
    Mock::given(method("POST"))
        .and(path("/v2/vectordb/indexes/drop"))
        .respond_with(ok_v2())
        .expect(1)
        .with_priority(2)
        .mount(&fake)
        .await;
    let obj = object(
        "ZillizIndex",
        "i",
        index_spec(&fake.uri(), true),
        true,
        true,
    );
    let run = tokio::spawn(reconcile::<ZillizIndex>(typed(&obj), ctx));
    api.serve_fresh_read(&obj).await;
    api.serve_secret("creds").await;
    let note = api.serve_event("Dropped").await;
    assert!(note.contains("released first"), "{note}");
    api.serve_finalizer_removal(&obj).await;
    run.await.unwrap().unwrap();
    fake.verify().await;
}

fn cluster(uri: &str, status: Option<Value>) -> Value {
    let mut obj = object(
        "ZillizCluster",
        "z",
        json!({
            "clusterId": "in01-abc",
            "controlPlane": {"apiVersion": "v2", "baseUrl": uri},
            "credentialsSecretRef": {"name": "creds"}
        }),
        true,
        true,
    );
    if let Some(s) = status {
        obj["status"] = s;
    }
    obj
}

/// A restarted operator a moment after its start: the first lists of clusters, partitions
/// and indexes are in; the collections' list has begun and is not.
fn collections_still_listing(writers: &mut crate::stores::StoreWriters) {
    use kube::runtime::watcher::Event;
    writers.clusters.apply_watcher_event(&Event::InitDone);
    writers.partitions.apply_watcher_event(&Event::InitDone);
    writers.indexes.apply_watcher_event(&Event::InitDone);
    writers.collections.apply_watcher_event(&Event::Init);
}

/// A restarted operator: the clusters' cache is filled, the collections' is not yet. The
/// deleted cluster is not dropped (nor its Secret read) until every cache holds its first list:
/// a collection in it not seen yet is still a collection in it.
#[tokio::test]
async fn a_cluster_is_not_dropped_before_every_cache_holds_its_first_list() {
    use crate::stores::Stores;
    use kube::runtime::watcher;
    let (ctx, mut api) = testcontext();
    let obj = cluster("http://cp.invalid", None);
    let (stores, mut writers) = Stores::new();
    collections_still_listing(&mut writers);
    writers.clusters.apply_watcher_event(&watcher::Event::Apply(
        typed::<ZillizCluster>(&obj).as_ref().clone(),
    ));
    let Ok(ctx) = Arc::try_unwrap(ctx) else {
        panic!("the test context is shared")
    };
    let ctx = Arc::new(ctx.with_stores(stores));
    let result = tokio::time::timeout(
        Duration::from_secs(2),
        reconcile::<ZillizCluster>(typed(&obj), ctx),
    )
    .await
    .expect("the reconcile called an API");
    let (reason, message, _) = pending(result);
    assert_eq!(reason, "CachesSyncing", "{message}");
    api.expect_silence().await;
}

#[tokio::test]
async fn cluster_drop_waits_for_deleted() {
    let (ctx, mut api) = testcontext();
    let fake = MockServer::start().await;
    Mock::given(method("DELETE"))
        .and(path("/v2/clusters/in01-abc/drop"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "code": 0,
            "data": {"clusterId": "in01-abc", "prompt": "The cluster has been deleted. If you consider this action to be an error, you have the option to restore the deleted cluster from the recycle bin within a 30-day period."}
        })))
        .expect(1)
        .mount(&fake)
        .await;
    // a describe comes first, always: RUNNING, so the drop is sent
    Mock::given(method("GET"))
        .and(path("/v2/clusters/in01-abc"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "code": 0, "data": {"clusterId": "in01-abc", "status": "RUNNING"}
        })))
        .up_to_n_times(1)
        .with_priority(1)
        .expect(1)
        .mount(&fake)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2/clusters/in01-abc"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "code": 0, "data": {"clusterId": "in01-abc", "status": "DELETING"}
        })))
        .up_to_n_times(2)
        .with_priority(2)
        .expect(2)
        .mount(&fake)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2/clusters/in01-abc"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "code": 0, "data": {"clusterId": "in01-abc", "status": "DELETED"}
        })))
        .with_priority(3)
        .expect(1)
        .mount(&fake)
        .await;

    // 1: the drop is accepted; the finalizer stays
    let obj = cluster(&fake.uri(), None);
    let run = tokio::spawn(reconcile::<ZillizCluster>(typed(&obj), ctx.clone()));
    api.serve_fresh_read(&obj).await;
    api.serve_secret("creds").await;
    api.serve_event("DropAccepted").await;
    let status = api.serve_status_patch(&obj).await;
    let (reason, _, _) = pending(run.await.unwrap());
    assert_eq!(reason, "DropInProgress");
    assert!(status["deletion"]["dropAcceptedTime"].is_string());
    assert_eq!(cond(&status, "Synced")["reason"], "DropInProgress");

    // 2: DELETING: keep polling, no second drop
    let obj = cluster(&fake.uri(), Some(status));
    let run = tokio::spawn(reconcile::<ZillizCluster>(typed(&obj), ctx.clone()));
    api.serve_fresh_read(&obj).await;
    api.serve_secret("creds").await;
    let status = api.serve_status_patch(&obj).await;
    let (reason, message, first_poll) = pending(run.await.unwrap());
    assert_eq!(reason, "DropInProgress");
    assert!(message.contains("DELETING"), "{message}");

    // 2b: still DELETING: nothing new, so nothing is written; the polls slow down
    let obj = cluster(&fake.uri(), Some(status.clone()));
    let run = tokio::spawn(reconcile::<ZillizCluster>(typed(&obj), ctx.clone()));
    api.serve_fresh_read(&obj).await;
    api.serve_secret("creds").await;
    api.expect_silence().await;
    let (reason, again, second_poll) = pending(run.await.unwrap());
    assert_eq!((reason, &again), ("DropInProgress", &message));
    assert!(
        first_poll <= Duration::from_millis(200) && second_poll <= Duration::from_millis(400),
        "full jitter within 100 ms × 2^n: {first_poll:?}, {second_poll:?}"
    );

    // 3: DELETED: the finalizer goes
    let obj = cluster(&fake.uri(), Some(status));
    let run = tokio::spawn(reconcile::<ZillizCluster>(typed(&obj), ctx));
    api.serve_fresh_read(&obj).await;
    api.serve_secret("creds").await;
    api.serve_event("Dropped").await;
    api.serve_finalizer_removal(&obj).await;
    run.await.unwrap().unwrap();
    fake.verify().await;
}

/// A fake cluster API whose describe of `in01-abc` answers 80020, whose cluster list answers
/// `list`, and which must never be asked to drop; every call must carry the object's token.
async fn ambiguous_cluster_api(list: ResponseTemplate) -> MockServer {
    let fake = MockServer::start().await;
    let auth = format!("Bearer {TOKEN}");
    Mock::given(method("GET"))
        .and(path("/v2/clusters/in01-abc"))
        .and(header("authorization", auth.as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"code": 80020, "message": "Cluster not exist or you don't have permission."}),
        ))
        .expect(1)
        .mount(&fake)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2/clusters"))
        .and(header("authorization", auth.as_str()))
        .respond_with(list)
        .expect(1)
        .mount(&fake)
        .await;
    // an ambiguous describe sends no drop (it may be a drop accepted earlier, or no permission)
    Mock::given(method("DELETE"))
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&fake)
        .await;
    fake
}

#[tokio::test]
async fn ambiguous_80020_is_confirmed_before_the_finalizer_goes() {
    // confirmed: the same credentials list every cluster, and this one is not there
    let (ctx, mut api) = testcontext();
    let fake = ambiguous_cluster_api(ResponseTemplate::new(200).set_body_json(
        json!({"code": 0, "data": {"count": 1, "currentPage": 1, "pageSize": 100, "clusters": [{"clusterId": "in01-other"}]}}),
    ))
    .await;
    let obj = cluster(&fake.uri(), None);
    let run = tokio::spawn(reconcile::<ZillizCluster>(typed(&obj), ctx));
    api.serve_fresh_read(&obj).await;
    api.serve_secret("creds").await;
    api.serve_event("AlreadyAbsent").await;
    api.serve_finalizer_removal(&obj).await;
    run.await.unwrap().unwrap();
    fake.verify().await;
}

#[tokio::test]
async fn ambiguous_80020_with_a_failing_list_keeps_the_finalizer() {
    // not confirmed: listing fails with the same credentials -> credentials problem, kept
    let (ctx, mut api) = testcontext();
    let fake = ambiguous_cluster_api(
        ResponseTemplate::new(401)
            .set_body_json(json!({"code": 21119, "message": "The apikey is illegal"})),
    )
    .await;
    let obj = cluster(&fake.uri(), None);
    let run = tokio::spawn(reconcile::<ZillizCluster>(typed(&obj), ctx));
    api.serve_fresh_read(&obj).await;
    api.serve_secret("creds").await;
    api.serve_event("DropFailed").await;
    let status = api.serve_status_patch(&obj).await;
    let (reason, message, _) = pending(run.await.unwrap());
    assert_eq!(reason, "DropFailed");
    assert!(message.contains("deletionPolicy: Orphan"), "{message}");
    let last_error = status["deletion"]["lastError"].as_str().unwrap();
    assert!(last_error.contains("not treating"), "{last_error}");
    fake.verify().await;
}

#[tokio::test]
async fn ambiguous_80020_with_the_cluster_still_listed_keeps_the_finalizer() {
    // the key lost its rights on the cluster, which still exists: never "gone"
    let (ctx, mut api) = testcontext();
    let fake = ambiguous_cluster_api(ResponseTemplate::new(200).set_body_json(
        json!({"code": 0, "data": {"count": 1, "currentPage": 1, "pageSize": 100, "clusters": [{"clusterId": "in01-abc"}]}}),
    ))
    .await;
    let obj = cluster(&fake.uri(), None);
    let run = tokio::spawn(reconcile::<ZillizCluster>(typed(&obj), ctx));
    api.serve_fresh_read(&obj).await;
    api.serve_secret("creds").await;
    api.serve_event("DropFailed").await;
    let status = api.serve_status_patch(&obj).await;
    let (reason, message, _) = pending(run.await.unwrap());
    assert_eq!(reason, "DropFailed");
    assert!(message.contains("lack permission"), "{message}");
    assert_eq!(cond(&status, "Synced")["reason"], "DropFailed");
    fake.verify().await;
}

mod janitor {
    use super::*;
    use crate::secrets::{IN_USE, Janitor, reconcile as janitor_reconcile};
    use crate::stores::Stores;
    use k8s_openapi::api::core::v1::Secret;
    use kube::{api::PartialObjectMeta, runtime::watcher};

    fn secret_meta(finalizers: &[&str]) -> Arc<PartialObjectMeta<Secret>> {
        Arc::new(
            serde_json::from_value(json!({
                "apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "creds", "namespace": NS, "finalizers": finalizers}
            }))
            .unwrap(),
        )
    }

    /// Caches whose first lists are in, holding `collections`.
    fn users(collections: Vec<Value>) -> Stores {
        let (stores, mut writers) = Stores::new();
        collections_still_listing(&mut writers);
        for c in collections {
            writers
                .collections
                .apply_watcher_event(&watcher::Event::InitApply(
                    serde_json::from_value(c).unwrap(),
                ));
        }
        writers
            .collections
            .apply_watcher_event(&watcher::Event::InitDone);
        stores
    }

    fn user(deleting: bool) -> Value {
        object(
            "ZillizCollection",
            "books",
            json!({"collectionName": "books", "connection": connection("http://m:19530")}),
            true,
            deleting,
        )
    }

    #[tokio::test]
    async fn releases_the_secret_when_no_object_names_it() {
        let (ctx, mut api) = testcontext();
        let janitor = Arc::new(Janitor {
            client: ctx.client.clone(),
            users: users(vec![]),
        });
        let run = tokio::spawn(janitor_reconcile(
            secret_meta(&["someone-else", IN_USE]),
            janitor,
        ));
        let req = api
            .expect(
                Method::PATCH,
                &format!("/api/v1/namespaces/{NS}/secrets/creds"),
            )
            .await;
        assert_eq!(req.content_type, "application/json-patch+json");
        assert_eq!(
            req.body,
            json!([
                {"op": "test", "path": "/metadata/finalizers/1", "value": IN_USE},
                {"op": "remove", "path": "/metadata/finalizers/1"}
            ])
        );
        req.ok(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds", "namespace": NS}}));
        assert_eq!(run.await.unwrap().unwrap(), Action::await_change());
    }

    /// A restarted operator: the Secret cache is filled, the others are not yet. The guard
    /// stays, with no API call, and the janitor looks again soon.
    #[tokio::test]
    async fn keeps_the_guard_until_every_cache_holds_its_first_list() {
        let (ctx, mut api) = testcontext();
        let (stores, mut writers) = Stores::new();
        // the collections' first list, with the Secret's only user, is still coming
        collections_still_listing(&mut writers);
        let janitor = Arc::new(Janitor {
            client: ctx.client.clone(),
            users: stores.clone(),
        });
        // (a release would wait on the mock API server's answer: bounded)
        let action = tokio::time::timeout(
            Duration::from_secs(2),
            janitor_reconcile(secret_meta(&[IN_USE]), janitor.clone()),
        )
        .await
        .expect("the janitor called the API server")
        .unwrap();
        assert_eq!(action, Action::requeue(Duration::from_millis(200)));
        api.expect_silence().await;
        writers
            .collections
            .apply_watcher_event(&watcher::Event::InitApply(
                serde_json::from_value(user(true)).unwrap(),
            ));
        writers
            .collections
            .apply_watcher_event(&watcher::Event::InitDone);
        // now it sees the user, on its way out: still kept
        let action = janitor_reconcile(secret_meta(&[IN_USE]), janitor)
            .await
            .unwrap();
        assert_eq!(action, Action::requeue(Duration::from_secs(2)));
    }

    #[tokio::test]
    async fn keeps_the_secret_while_an_object_names_it() {
        let (ctx, mut api) = testcontext();
        // a live user: wait for a change
        let janitor = Arc::new(Janitor {
            client: ctx.client.clone(),
            users: users(vec![user(false)]),
        });
        let action = janitor_reconcile(secret_meta(&[IN_USE]), janitor)
            .await
            .unwrap();
        assert_eq!(action, Action::await_change());
        // every user on its way out: look again soon
        let janitor = Arc::new(Janitor {
            client: ctx.client.clone(),
            users: users(vec![user(true)]),
        });
        let action = janitor_reconcile(secret_meta(&[IN_USE]), janitor)
            .await
            .unwrap();
        assert_eq!(action, Action::requeue(Duration::from_secs(2)));
        api.expect_silence().await;
    }
}
