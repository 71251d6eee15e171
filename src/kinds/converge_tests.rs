//! Creating from spec: the requests the kinds build, and the converge protocol (observe, then
//! create only what is absent).

use super::*;
use crate::api::{CollectionInfo, FieldInfo, LoadState};
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
        desired: Desired::Nothing,
        update: true,
    }
}

fn not_found(code: i64) -> ApiError {
    ApiError {
        code: Some(code),
        ..ApiError::new(ErrorClass::NotFound, "not found")
    }
}

fn info(load: LoadState, ttl: Option<i64>, indexed: bool) -> CollectionInfo {
    CollectionInfo {
        description: None,
        auto_id: Some(false),
        enable_dynamic_field: Some(true),
        fields: vec![
            FieldInfo {
                name: "id".into(),
                data_type: "Int64".into(),
                primary: true,
                partition_key: false,
                dim: None,
                max_length: None,
            },
            FieldInfo {
                name: "vector".into(),
                data_type: "FloatVector".into(),
                primary: false,
                partition_key: false,
                dim: Some(8),
                max_length: None,
            },
        ],
        indexed_fields: if indexed {
            vec!["vector".into()]
        } else {
            vec![]
        },
        load,
        shards_num: Some(1),
        consistency_level: Some("Bounded".into()),
        ttl_seconds: ttl,
    }
}

#[test]
fn an_absent_resource_is_created_once_then_described_an_existing_one_adopted() {
    let mut calls = Vec::new();
    let mut exists = false;
    let (out, _) = run(
        |s| converge::<ZillizCollection>(&plan(Some(Call::CreateCollection)), s),
        |call, _| {
            calls.push(call);
            match call {
                Call::DescribeCollection if !exists => Err(not_found(100)),
                Call::DescribeCollection => Ok(Reply::Collection(Box::new(info(
                    LoadState::Loaded,
                    None,
                    true,
                )))),
                _ => {
                    exists = true;
                    Ok(Reply::Done)
                }
            }
        },
        MAX_CALLS,
    );
    assert!(
        matches!(
            out,
            Ok(Converged::Seen {
                created: true,
                seen: Ok(Observed::Exists { .. }),
                ..
            })
        ),
        "{out:?}"
    );
    assert_eq!(
        calls,
        [
            Call::DescribeCollection,
            Call::CreateCollection,
            Call::DescribeCollection
        ]
    );

    let (out, history) = run(
        |s| converge::<ZillizCollection>(&plan(Some(Call::CreateCollection)), s),
        |_, _| {
            Ok(Reply::Collection(Box::new(info(
                LoadState::NotLoad,
                None,
                false,
            ))))
        },
        MAX_CALLS,
    );
    assert!(
        matches!(
            out,
            Ok(Converged::Seen {
                created: false,
                seen: Ok(Observed::Exists { .. }),
                ..
            })
        ),
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

#[test]
fn a_create_the_server_refuses_as_bad_input_is_refused_not_retried_as_is() {
    let (out, _) = run(
        |s| converge::<ZillizIndex>(&plan(Some(Call::CreateIndex)), s),
        |call, _| match call {
            Call::DescribeIndex => Err(not_found(700)),
            _ => Err(ApiError::new(
                ErrorClass::BadRequest,
                "field vector2 not found",
            )),
        },
        MAX_CALLS,
    );
    assert!(
        matches!(&out, Ok(Converged::Refused(e)) if e.message.contains("vector2")),
        "{out:?}"
    );
}

fn want(load: Option<LoadWanted>, ttl: Option<i64>) -> Desired {
    Desired::Collection(desired::WantCollection {
        ttl_seconds: ttl,
        load,
        ..Default::default()
    })
}

#[test]
fn mutable_fields_are_updated_only_when_update_is_allowed() {
    let run_with = |update: bool| {
        let p = Plan {
            desired: want(Some(LoadWanted::Loaded), Some(60)),
            update,
            ..plan(None)
        };
        run(
            |s| converge::<ZillizCollection>(&p, s),
            |call, _| match call {
                Call::DescribeCollection => Ok(Reply::Collection(Box::new(info(
                    LoadState::NotLoad,
                    None,
                    true,
                )))),
                _ => Ok(Reply::Done),
            },
            MAX_CALLS,
        )
    };
    let (out, history) = run_with(true);
    let calls: Vec<Call> = history.iter().map(|(c, _)| *c).collect();
    assert_eq!(
        calls,
        [
            Call::DescribeCollection,
            Call::AlterCollection,
            Call::LoadCollection
        ]
    );
    let Ok(Converged::Seen { assessment, .. }) = out else {
        panic!("{out:?}")
    };
    assert_eq!(assessment.updated.len(), 2);
    assert!(assessment.differences.is_empty());
    // read-only or without Update: reported, not changed
    let (out, history) = run_with(false);
    assert_eq!(history.len(), 1);
    let Ok(Converged::Seen { assessment, .. }) = out else {
        panic!("{out:?}")
    };
    assert_eq!(assessment.differences.len(), 2);
    assert!(assessment.updated.is_empty());
}

fn any_answer() -> impl Strategy<Value = Result<Reply, ApiError>> {
    prop_oneof![
        Just(Ok(Reply::Done)),
        Just(Ok(Reply::Has(true))),
        Just(Ok(Reply::Has(false))),
        Just(Ok(Reply::Collection(Box::new(info(
            LoadState::Loaded,
            None,
            true
        ))))),
        Just(Ok(Reply::Collection(Box::new(info(
            LoadState::NotLoad,
            Some(5),
            false
        ))))),
        Just(Err(not_found(100))),
        Just(Err(not_found(700))),
        Just(Err(not_found(800))),
        Just(Err(ApiError::new(ErrorClass::Transient, "503"))),
        Just(Err(ApiError::new(ErrorClass::InvalidName, "1100"))),
        Just(Err(ApiError::new(ErrorClass::BadRequest, "1802"))),
        Just(Err(ApiError::new(ErrorClass::Unknown, "?"))),
    ]
}

fn any_desired() -> impl Strategy<Value = Desired> {
    (
        prop_oneof![
            Just(None),
            Just(Some(LoadWanted::Loaded)),
            Just(Some(LoadWanted::Released))
        ],
        prop_oneof![Just(None), Just(Some(0)), Just(Some(5))],
    )
        .prop_map(|(load, ttl)| want(load, ttl))
}

/// Whether an answer shows the resource exists.
fn shows_it(answer: &Result<Reply, ApiError>) -> bool {
    matches!(
        answer,
        Ok(Reply::Has(true) | Reply::Collection(_) | Reply::Index(_))
    )
}

proptest! {
    /// Whatever the server answers, converging never drops anything, never creates after a read
    /// said the resource exists, creates at most once a run, and loads or releases only what the
    /// spec's `loadState` asks for.
    #[test]
    fn converging_never_drops_and_never_creates_what_exists(
        answers in proptest::collection::vec(any_answer(), 1..8),
        creatable in any::<bool>(),
        desired in any_desired(),
        update in any::<bool>(),
    ) {
        for create in [Call::CreateCollection, Call::CreatePartition, Call::CreateIndex] {
            let p = Plan { desired: desired.clone(), update, ..plan(creatable.then_some(create)) };
            let mut next = answers.iter().cycle();
            let (_, history) = match create {
                Call::CreateCollection => run(|s| converge::<ZillizCollection>(&p, s), |_, _| next.next().unwrap().clone(), MAX_CALLS),
                Call::CreatePartition => run(|s| converge::<ZillizPartition>(&p, s), |_, _| next.next().unwrap().clone(), MAX_CALLS),
                _ => run(|s| converge::<ZillizIndex>(&p, s), |_, _| next.next().unwrap().clone(), MAX_CALLS),
            };
            let creates = history.iter().filter(|(c, _)| *c == create).count();
            prop_assert!(creates <= usize::from(creatable));
            let Desired::Collection(w) = &desired else { unreachable!() };
            for (i, (call, _)) in history.iter().enumerate() {
                prop_assert!(!matches!(call, Call::DropCollection | Call::DropPartition | Call::DropIndex | Call::DropCluster | Call::ReleasePartition), "{history:?}");
                prop_assert!(*call != Call::ReleaseCollection || (update && w.load == Some(LoadWanted::Released)), "{history:?}");
                prop_assert!(*call != Call::LoadCollection || (update && w.load == Some(LoadWanted::Loaded)), "{history:?}");
                prop_assert!(*call != Call::AlterCollection || (update && w.ttl_seconds.is_some()), "{history:?}");
                if *call == create {
                    prop_assert!(!history[..i].iter().any(|(_, a)| shows_it(a)), "{history:?}");
                }
            }
        }
    }
}

/// A small model of one collection on the server, for successive converge runs.
#[derive(Clone, Debug)]
struct World {
    exists: bool,
    load: LoadState,
    ttl: Option<i64>,
    indexed: bool,
    /// Create calls that reached the server.
    creates: usize,
    mutating: usize,
}

impl World {
    /// Answers `call`; with `lose`, the server does the work and the answer is lost (a 504).
    fn answer(&mut self, call: Call, lose: bool) -> Result<Reply, ApiError> {
        if call.mutates() {
            self.mutating += 1;
        }
        let reply = match call {
            Call::DescribeCollection if self.exists => Ok(Reply::Collection(Box::new(info(
                self.load.clone(),
                self.ttl,
                self.indexed,
            )))),
            Call::DescribeCollection => Err(not_found(100)),
            Call::CreateCollection => {
                assert!(!self.exists, "VIOLATION: created a collection that exists");
                self.creates += 1;
                self.exists = true;
                // a quick setup: indexed and loaded
                self.indexed = true;
                self.load = LoadState::Loaded;
                Ok(Reply::Done)
            }
            Call::LoadCollection if self.indexed => {
                self.load = LoadState::Loaded;
                Ok(Reply::Done)
            }
            Call::LoadCollection => Err(ApiError::new(ErrorClass::Unknown, "no index")),
            Call::ReleaseCollection => {
                self.load = LoadState::NotLoad;
                Ok(Reply::Done)
            }
            Call::AlterCollection => {
                self.ttl = Some(5);
                Ok(Reply::Done)
            }
            other => panic!("VIOLATION: the converge of a collection called {other:?}"),
        };
        if lose {
            Err(ApiError::new(ErrorClass::Transient, "504 Gateway Timeout"))
        } else {
            reply
        }
    }
}

proptest! {
    /// Successive runs over one world, with answers lost after the server acted, the spec's
    /// `loadState` changed between runs and the collection dropped or released outside
    /// Kubernetes: a create reaches the server only when the collection does not exist (so a
    /// lost create answer never leads to a second one), and once a run without faults has
    /// brought everything to the spec, the next run makes no mutating call.
    #[test]
    fn successive_runs_create_once_and_converge(
        steps in proptest::collection::vec((any::<bool>(), 0u8..6, any::<u8>()), 1..20),
        ttl in prop_oneof![Just(None), Just(Some(5))],
    ) {
        let mut world = World { exists: false, load: LoadState::NotLoad, ttl: None, indexed: false, creates: 0, mutating: 0 };
        let mut load = None;
        for (fault, event, lose_at) in steps {
            match event {
                0 => load = Some(LoadWanted::Loaded),
                1 => load = Some(LoadWanted::Released),
                // dropped outside Kubernetes: a create may follow, once
                2 => { world = World { exists: false, creates: 0, ..world.clone() } }
                3 => world.load = LoadState::NotLoad,
                _ => {}
            }
            let p = Plan { desired: want(load, ttl), ..plan(Some(Call::CreateCollection)) };
            let mut n = 0u8;
            let mut w = world.clone();
            let _ = run(|s| converge::<ZillizCollection>(&p, s), |call, _| {
                n += 1;
                w.answer(call, fault && n == lose_at % 4 + 1)
            }, MAX_CALLS);
            world = w;
            prop_assert!(world.creates <= 1, "{world:?}");
            if !fault {
                // converged: the next run only reads
                let before = world.mutating;
                let mut w = world.clone();
                let (out, _) = run(|s| converge::<ZillizCollection>(&p, s), |call, _| w.answer(call, false), MAX_CALLS);
                prop_assert_eq!(w.mutating, before, "{:?}", out);
                let ok = matches!(out, Ok(Converged::Seen { ref assessment, .. }) if assessment.updated.is_empty() && assessment.differences.is_empty());
                prop_assert!(ok, "{:?}", out);
                world = w;
            }
        }
    }
}
