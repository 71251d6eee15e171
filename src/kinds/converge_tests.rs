//! Creating from spec: the requests the kinds build, and the converge protocol (observe, then
//! create only what is absent).

use super::*;
use crate::crd::{ZillizCollection, ZillizIndex, ZillizPartition};
use proptest::prelude::*;
use serde_json::json;

fn collection(spec: serde_json::Value) -> ZillizCollection {
    let mut base = json!({"collectionName": "articles", "connection": {
        "endpoint": "http://m:19530", "credentialsSecretRef": {"name": "s"}}});
    base.as_object_mut()
        .unwrap()
        .extend(spec.as_object().unwrap().clone());
    ZillizCollection::new("c", serde_json::from_value(base).unwrap())
}

fn body(c: Creatable) -> (Call, serde_json::Value) {
    match c {
        Creatable::Yes(call, body) => (call, body),
        Creatable::No(why) => panic!("not creatable: {why}"),
    }
}

#[test]
fn a_quick_setup_speaks_each_flavour() {
    let c = collection(
        json!({"quickSetup": {"dimension": 768, "metricType": "COSINE",
        "primaryFieldName": "id", "vectorFieldName": "vector", "idType": "Int64", "autoId": true},
        "params": {"shardsNum": 2, "consistencyLevel": "Bounded"}}),
    );
    let (call, v2) = body(c.create_request("default", "articles", Flavour::V2));
    assert_eq!(call, Call::CreateCollection);
    assert_eq!(
        v2,
        json!({"dbName": "default", "collectionName": "articles", "dimension": 768,
            "metricType": "COSINE", "primaryFieldName": "id", "vectorFieldName": "vector",
            "idType": "Int64", "autoID": true,
            "params": {"shardsNum": 2, "consistencyLevel": "Bounded"}})
    );
    // v1 names the fields differently and has neither idType, autoID nor params
    let (_, v1) = body(c.create_request("default", "articles", Flavour::V1));
    assert_eq!(
        v1,
        json!({"dbName": "default", "collectionName": "articles", "dimension": 768,
            "metricType": "COSINE", "primaryField": "id", "vectorField": "vector"})
    );
}

#[test]
fn a_custom_schema_becomes_the_servers_fields() {
    let c = collection(json!({"description": "news", "schema": {"autoId": false,
        "enableDynamicField": true, "fields": [
            {"name": "id", "dataType": "Int64", "isPrimary": true},
            {"name": "title", "dataType": "VarChar", "maxLength": 512},
            {"name": "tenant", "dataType": "VarChar", "maxLength": 64, "isPartitionKey": true},
            {"name": "vector", "dataType": "FloatVector", "dim": 768}]}}));
    let (_, v2) = body(c.create_request("default", "articles", Flavour::V2));
    assert_eq!(
        v2,
        json!({"dbName": "default", "collectionName": "articles", "description": "news",
            "schema": {"autoID": false, "enableDynamicField": true, "fields": [
                {"fieldName": "id", "dataType": "Int64", "isPrimary": true},
                {"fieldName": "title", "dataType": "VarChar", "isPrimary": false,
                    "elementTypeParams": {"max_length": 512}},
                {"fieldName": "tenant", "dataType": "VarChar", "isPrimary": false,
                    "isPartitionKey": true, "elementTypeParams": {"max_length": 64}},
                {"fieldName": "vector", "dataType": "FloatVector", "isPrimary": false,
                    "elementTypeParams": {"dim": 768}}]}})
    );
    // REST v1 cannot create a custom schema
    assert!(matches!(
        c.create_request("default", "articles", Flavour::V1),
        Creatable::No(why) if why.contains("quickSetup")
    ));
}

#[test]
fn a_spec_that_does_not_say_how_never_creates_and_says_which_fields_would() {
    let c = collection(json!({}));
    assert!(matches!(
        c.create_request("default", "articles", Flavour::V2),
        Creatable::No(why) if why.contains("quickSetup") && why.contains("schema")
    ));
    let i: ZillizIndex = ZillizIndex::new(
        "i",
        serde_json::from_value(json!({"indexName": "vector_idx", "collectionRef": {"name": "c"}}))
            .unwrap(),
    );
    assert!(matches!(
        i.create_request("default", "articles", Flavour::V2),
        Creatable::No(why) if why.contains("fieldName")
    ));
}

#[test]
fn partitions_and_indexes_are_created_in_their_collection() {
    let p: ZillizPartition = ZillizPartition::new(
        "p",
        serde_json::from_value(json!({"partitionName": "y2024", "collectionRef": {"name": "c"}}))
            .unwrap(),
    );
    assert_eq!(
        body(p.create_request("db1", "articles", Flavour::V2)),
        (
            Call::CreatePartition,
            json!({"dbName": "db1", "collectionName": "articles", "partitionName": "y2024"})
        )
    );
    let i: ZillizIndex = ZillizIndex::new(
        "i",
        serde_json::from_value(
            json!({"indexName": "vector_idx", "collectionRef": {"name": "c"},
            "fieldName": "vector", "indexType": "HNSW", "metricType": "COSINE",
            "params": {"M": "16", "efConstruction": "200"}}),
        )
        .unwrap(),
    );
    assert_eq!(
        body(i.create_request("db1", "articles", Flavour::V2)),
        (
            Call::CreateIndex,
            json!({"dbName": "db1", "collectionName": "articles", "indexParams": [{
                "fieldName": "vector", "indexName": "vector_idx", "indexType": "HNSW",
                "metricType": "COSINE", "params": {"M": "16", "efConstruction": "200"}}]})
        )
    );
}

fn plan(create: Option<Call>) -> Plan {
    Plan {
        what: "collection default.articles".into(),
        cluster_id: None,
        accepted: false,
        release_collection: false,
        container: Container::None,
        create,
    }
}

fn not_found(code: i64) -> ApiError {
    ApiError {
        code: Some(code),
        ..ApiError::new(ErrorClass::NotFound, "not found")
    }
}

#[test]
fn an_absent_resource_is_created_once_an_existing_one_adopted() {
    let mut calls = Vec::new();
    let (out, _) = run(
        |s| converge::<ZillizCollection>(&plan(Some(Call::CreateCollection)), s),
        |call, _| {
            calls.push(call);
            Ok(match call {
                Call::HasCollection => Reply::Has(false),
                _ => Reply::Done,
            })
        },
        MAX_CALLS,
    );
    assert!(matches!(out, Ok(Converged::Created(_))), "{out:?}");
    assert_eq!(calls, [Call::HasCollection, Call::CreateCollection]);

    let (out, history) = run(
        |s| converge::<ZillizCollection>(&plan(Some(Call::CreateCollection)), s),
        |_, _| Ok(Reply::Has(true)),
        MAX_CALLS,
    );
    assert!(
        matches!(out, Ok(Converged::Seen(Ok(Observed::Exists { .. })))),
        "{out:?}"
    );
    assert_eq!(history.len(), 1, "an existing resource is only read");
}

#[test]
fn a_child_whose_collection_or_database_is_missing_waits() {
    for (code, database) in [(100, false), (800, true)] {
        let (out, _) = run(
            |s| converge::<ZillizPartition>(&plan(Some(Call::CreatePartition)), s),
            |call, _| match call {
                Call::HasPartition => Ok(Reply::Has(false)),
                _ => Err(not_found(code)),
            },
            MAX_CALLS,
        );
        assert!(
            matches!(out, Ok(Converged::Waiting { database: d, .. }) if d == database),
            "{code}: {out:?}"
        );
    }
}

fn any_answer() -> impl Strategy<Value = Result<Reply, ApiError>> {
    prop_oneof![
        Just(Ok(Reply::Done)),
        Just(Ok(Reply::Has(true))),
        Just(Ok(Reply::Has(false))),
        Just(Err(not_found(100))),
        Just(Err(not_found(800))),
        Just(Err(ApiError::new(ErrorClass::Transient, "503"))),
        Just(Err(ApiError::new(ErrorClass::InvalidName, "1100"))),
        Just(Err(ApiError::new(ErrorClass::Unknown, "?"))),
    ]
}

proptest! {
    /// Whatever the server answers, observing and creating never drops or releases anything,
    /// never creates after a read said the resource exists, and creates at most once a run.
    #[test]
    fn converging_never_drops_and_never_creates_what_exists(
        answers in proptest::collection::vec(any_answer(), 1..8),
        creatable in any::<bool>(),
    ) {
        for create in [Call::CreateCollection, Call::CreatePartition, Call::CreateIndex] {
            let p = plan(creatable.then_some(create));
            let mut next = answers.iter().cycle();
            let (_, history) = match create {
                Call::CreateCollection => run(|s| converge::<ZillizCollection>(&p, s), |_, _| next.next().unwrap().clone(), MAX_CALLS),
                Call::CreatePartition => run(|s| converge::<ZillizPartition>(&p, s), |_, _| next.next().unwrap().clone(), MAX_CALLS),
                _ => run(|s| converge::<ZillizIndex>(&p, s), |_, _| next.next().unwrap().clone(), MAX_CALLS),
            };
            let creates = history.iter().filter(|(c, _)| *c == create).count();
            prop_assert!(creates <= usize::from(creatable));
            for (i, (call, _)) in history.iter().enumerate() {
                prop_assert!(!matches!(call, Call::DropCollection | Call::DropPartition | Call::DropIndex | Call::DropCluster | Call::ReleaseCollection | Call::ReleasePartition), "{history:?}");
                if *call == create {
                    prop_assert!(!history[..i].iter().any(|(_, a)| *a == Ok(Reply::Has(true))), "{history:?}");
                }
            }
        }
    }
}
