//! Validation of specs: what each kind's spec addresses.

use super::*;
use crate::crd::*;

fn collection(spec: serde_json::Value) -> ZillizCollection {
    ZillizCollection::new("c", serde_json::from_value(spec).unwrap())
}

#[test]
fn collection_needs_exactly_one_host() {
    let neither = collection(serde_json::json!({"collectionName": "c"}));
    assert!(neither.address().unwrap_err().contains("neither"));
    let both = collection(serde_json::json!({
        "collectionName": "c",
        "clusterRef": {"name": "x"},
        "connection": {"endpoint": "http://m:19530", "credentialsSecretRef": {"name": "s"}}
    }));
    assert!(both.address().unwrap_err().contains("both"));
    let ok = collection(serde_json::json!({
        "collectionName": "c",
        "connection": {"endpoint": "http://m:19530", "credentialsSecretRef": {"name": "s"}}
    }));
    let Address::Collection(loc) = ok.address().unwrap() else {
        panic!()
    };
    assert_eq!(loc.db, "default");
    assert_eq!(loc.flavour, Flavour::V2);
    assert_eq!(
        loc.host,
        Host::Connection {
            endpoint: Url::parse("http://m:19530").unwrap(),
            secret: SecretKeyRef {
                name: "s".into(),
                key: "apiKey".into()
            }
        }
    );
}

#[test]
fn endpoints_must_be_urls_without_credentials() {
    for bad in [
        "milvus:19530",
        "not a url",
        "ftp://m",
        "http://root:Milvus@m:19530",
    ] {
        let c = collection(serde_json::json!({
            "collectionName": "c",
            "connection": {"endpoint": bad, "credentialsSecretRef": {"name": "s"}}
        }));
        let err = c.address().unwrap_err();
        assert!(err.contains("connection.endpoint"), "{bad}: {err}");
        assert!(!err.contains("Milvus@") || !err.contains("Secret"), "{err}");
    }
}

#[test]
fn partition_addresses() {
    let by_ref: ZillizPartition = ZillizPartition::new(
        "p",
        serde_json::from_value(
            serde_json::json!({"partitionName": "p", "collectionRef": {"name": "c"}}),
        )
        .unwrap(),
    );
    assert_eq!(
        by_ref.address().unwrap(),
        Address::Partition {
            collection: CollectionSource::Object("c".into()),
            partition: "p".into()
        }
    );
    let mixed: ZillizPartition = ZillizPartition::new(
        "p",
        serde_json::from_value(serde_json::json!({
            "partitionName": "p", "collectionRef": {"name": "c"}, "collectionName": "x"
        }))
        .unwrap(),
    );
    assert!(mixed.address().unwrap_err().contains("collectionRef"));
    let nothing: ZillizIndex = ZillizIndex::new(
        "i",
        serde_json::from_value(serde_json::json!({"indexName": "i"})).unwrap(),
    );
    assert!(nothing.address().unwrap_err().contains("neither"));
}

#[test]
fn cluster_addresses() {
    let mk = |cp: serde_json::Value, id: &str| {
        ZillizCluster::new(
            "z",
            serde_json::from_value(serde_json::json!({
                "clusterId": id, "controlPlane": cp, "credentialsSecretRef": {"name": "s"}
            }))
            .unwrap(),
        )
    };
    let Address::Cluster { base, flavour, .. } =
        mk(serde_json::json!({}), "in01-x").address().unwrap()
    else {
        panic!()
    };
    assert_eq!(base.as_str(), "https://api.cloud.zilliz.com/");
    assert_eq!(flavour, Flavour::V2);
    let err = mk(serde_json::json!({"apiVersion": "v1"}), "in01-x")
        .address()
        .unwrap_err();
    assert!(err.contains("region"), "{err}");
    assert!(
        mk(serde_json::json!({}), "../etc")
            .address()
            .unwrap_err()
            .contains("clusterId")
    );
}

#[test]
fn collection_ref_stands_alone() {
    // each field that would also say where the collection is makes a collectionRef ambiguous
    for extra in [
        serde_json::json!({"dbName": "d"}),
        serde_json::json!({"collectionName": "x"}),
        serde_json::json!({"clusterRef": {"name": "z"}}),
        serde_json::json!({"connection": {"endpoint": "http://m:19530", "credentialsSecretRef": {"name": "s"}}}),
    ] {
        let mut spec = serde_json::json!({"partitionName": "p", "collectionRef": {"name": "c"}});
        spec.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let p = ZillizPartition::new("p", serde_json::from_value(spec).unwrap());
        let err = p.address().unwrap_err();
        assert!(
            err.contains("collectionRef is set together"),
            "{extra}: {err}"
        );
    }
}

#[test]
fn names_must_not_be_empty() {
    let c = collection(serde_json::json!({
        "collectionName": " ", "clusterRef": {"name": "z"}
    }));
    assert!(c.address().unwrap_err().contains("collectionName"));
    let c = collection(serde_json::json!({
        "collectionName": "books", "dbName": "", "clusterRef": {"name": "z"}
    }));
    assert!(c.address().unwrap_err().contains("dbName"));
    let c = collection(serde_json::json!({
        "collectionName": "books", "dbName": "shop", "clusterRef": {"name": "z"}
    }));
    let Address::Collection(loc) = c.address().unwrap() else {
        panic!()
    };
    assert_eq!(
        (loc.db.as_str(), loc.collection.as_str(), loc.host),
        ("shop", "books", Host::ClusterRef("z".into()))
    );
}

#[test]
fn endpoints_must_not_carry_a_user_alone() {
    for bad in ["http://root@m:19530", "http://:secret@m:19530"] {
        let c = collection(serde_json::json!({
            "collectionName": "c",
            "connection": {"endpoint": bad, "credentialsSecretRef": {"name": "s"}}
        }));
        let err = c.address().unwrap_err();
        assert!(err.contains("must not carry credentials"), "{bad}: {err}");
        assert!(
            !err.contains("secret@"),
            "the password is not repeated: {err}"
        );
    }
    let c = collection(serde_json::json!({
        "collectionName": "c",
        "connection": {"endpoint": "https://in01-k.example:443", "credentialsSecretRef": {"name": "s"}}
    }));
    assert!(c.address().is_ok());
}

#[test]
fn cluster_ids_may_hold_dashes_and_underscores() {
    let mk = |id: &str| {
        ZillizCluster::new(
            "z",
            serde_json::from_value(serde_json::json!({
                "clusterId": id, "controlPlane": {}, "credentialsSecretRef": {"name": "s"}
            }))
            .unwrap(),
        )
    };
    for ok in ["in01-x", "in01_x", "IN01x9"] {
        let Address::Cluster { cluster_id, .. } = mk(ok).address().unwrap() else {
            panic!()
        };
        assert_eq!(cluster_id, ok);
    }
    for bad in ["in01.x", "in01/x", "in01 x", ""] {
        assert!(
            mk(bad).address().unwrap_err().contains("clusterId"),
            "{bad}"
        );
    }
}

/// What the reconciler reads from each kind: policy, status, name, Secrets, references and the
/// protection annotation.
#[test]
fn what_each_kind_tells_the_reconciler() {
    let status = ZillizStatus {
        endpoint: Some("https://in01-k.example".into()),
        ..Default::default()
    };
    let protect = |meta: &mut kube::api::ObjectMeta, value: &str| {
        meta.annotations = Some(
            [(DELETION_PROTECTION.to_string(), value.to_string())]
                .into_iter()
                .collect(),
        );
    };

    let mut z = ZillizCluster::new(
        "z",
        serde_json::from_value(serde_json::json!({
            "clusterId": "in01-k", "controlPlane": {}, "credentialsSecretRef": {"name": "key"},
            "deletionPolicy": "Orphan"
        }))
        .unwrap(),
    );
    assert_eq!(z.deletion_policy(), DeletionPolicy::Orphan);
    assert_eq!(z.external_name(), "in01-k");
    assert_eq!(z.secret_names(), vec!["key"]);
    // refs(): a cluster refers to no object; `Refs::default()` is its real answer, so the
    // mutant that replaces it with `Default::default()` is equivalent.
    assert_eq!(z.refs(), Refs::default());
    assert_eq!(z.zstatus(), None);
    z.status = Some(status.clone());
    assert_eq!(z.zstatus(), Some(&status));
    assert!(!z.protected());
    protect(&mut z.metadata, " True ");
    assert!(z.protected());
    protect(&mut z.metadata, "false");
    assert!(!z.protected());

    let mut c = collection(serde_json::json!({
        "collectionName": "books", "clusterRef": {"name": "z"}, "deletionPolicy": "Orphan"
    }));
    assert_eq!(c.deletion_policy(), DeletionPolicy::Orphan);
    assert_eq!(c.external_name(), "books");
    assert_eq!(c.secret_names(), Vec::<&str>::new());
    assert_eq!(
        c.refs(),
        Refs {
            cluster: Some("z"),
            collection: None
        }
    );
    c.status = Some(status.clone());
    assert_eq!(c.zstatus(), Some(&status));
    protect(&mut c.metadata, "true");
    assert!(c.protected());
    let direct = collection(serde_json::json!({
        "collectionName": "books",
        "connection": {"endpoint": "http://m:19530", "credentialsSecretRef": {"name": "milvus"}}
    }));
    assert_eq!(direct.secret_names(), vec!["milvus"]);
    assert_eq!(direct.refs(), Refs::default());
    assert_eq!(direct.deletion_policy(), DeletionPolicy::Delete);
    assert_eq!(direct.zstatus(), None);

    let mut p = ZillizPartition::new(
        "p",
        serde_json::from_value(serde_json::json!({
            "partitionName": "2024", "collectionRef": {"name": "c"}, "deletionPolicy": "Orphan"
        }))
        .unwrap(),
    );
    assert_eq!(p.deletion_policy(), DeletionPolicy::Orphan);
    assert_eq!(p.external_name(), "2024");
    assert_eq!(p.secret_names(), Vec::<&str>::new());
    assert_eq!(
        p.refs(),
        Refs {
            cluster: None,
            collection: Some("c")
        }
    );
    assert_eq!(p.zstatus(), None);
    p.status = Some(status.clone());
    assert_eq!(p.zstatus(), Some(&status));
    let p_direct = ZillizPartition::new(
        "p",
        serde_json::from_value(serde_json::json!({
            "partitionName": "2024", "collectionName": "books",
            "connection": {"endpoint": "http://m:19530", "credentialsSecretRef": {"name": "milvus"}}
        }))
        .unwrap(),
    );
    assert_eq!(p_direct.secret_names(), vec!["milvus"]);

    let mut i = ZillizIndex::new(
        "i",
        serde_json::from_value(serde_json::json!({
            "indexName": "vec_idx", "collectionName": "books", "clusterRef": {"name": "z"},
            "deletionPolicy": "Orphan"
        }))
        .unwrap(),
    );
    assert_eq!(i.deletion_policy(), DeletionPolicy::Orphan);
    assert_eq!(i.external_name(), "vec_idx");
    assert_eq!(i.secret_names(), Vec::<&str>::new());
    assert_eq!(
        i.refs(),
        Refs {
            cluster: Some("z"),
            collection: None
        }
    );
    assert_eq!(i.zstatus(), None);
    i.status = Some(status.clone());
    assert_eq!(i.zstatus(), Some(&status));
    let i_direct = ZillizIndex::new(
        "i",
        serde_json::from_value(serde_json::json!({
            "indexName": "vec_idx", "collectionName": "books",
            "connection": {"endpoint": "http://m:19530", "credentialsSecretRef": {"name": "milvus"}}
        }))
        .unwrap(),
    );
    assert_eq!(i_direct.secret_names(), vec!["milvus"]);
}

// ---------------------------------------------------------------------------------------------
// The protocols, replayed through `run` against a scripted API: each test lists the calls it
// expects, in order, with their answers, and checks what the protocol established.

type Answer = Result<Reply, ApiError>;

/// Runs `protocol`, answering the calls with `script` in order; fails if the protocol makes
/// another call than the next scripted one, or stops before using every answer.
///
/// Equivalent mutant: `replace match guard *made == call with true in Script<'a>::ask`. Every
/// history is built by replaying the same deterministic protocol (here and in
/// `external::drive`), so the call recorded at each position is always the call the protocol
/// asks there: the guard is never false on a history the drivers make.
fn replay<T>(
    protocol: impl Fn(&mut Script<'_>) -> Result<T, Step>,
    script: &[(Call, Answer)],
) -> T {
    let (out, history) = run(
        protocol,
        |call, history| match script.get(history.len()) {
            Some((expected, answer)) if *expected == call => answer.clone(),
            other => panic!(
                "call {} was {call:?}, the script says {:?}",
                history.len(),
                other.map(|(c, _)| c)
            ),
        },
        MAX_CALLS,
    );
    let made: Vec<Call> = history.iter().map(|(c, _)| *c).collect();
    let expected: Vec<Call> = script.iter().map(|(c, _)| *c).collect();
    assert_eq!(made, expected, "the calls made");
    out.expect("the protocol ended")
}

fn api(class: ErrorClass, code: Option<i64>, message: &str) -> ApiError {
    ApiError {
        code,
        ..ApiError::new(class, message)
    }
}

fn not_found(code: i64) -> Answer {
    Err(api(ErrorClass::NotFound, Some(code), "not found"))
}

fn no_permission() -> Answer {
    Err(api(
        ErrorClass::NotFoundOrForbidden,
        Some(80020),
        "Cluster not exist or you don't have permission.",
    ))
}

fn unavailable() -> Answer {
    Err(ApiError {
        http_status: Some(503),
        ..ApiError::new(ErrorClass::Transient, "503 Service Temporarily Unavailable")
    })
}

fn invalid_parameter() -> Answer {
    Err(api(
        ErrorClass::InvalidName,
        Some(1100),
        "invalid parameter",
    ))
}

fn loaded() -> Answer {
    Err(api(
        ErrorClass::NeedsRelease,
        Some(65535),
        "collection is loaded, please release it first",
    ))
}

fn described(status: &str) -> Answer {
    Ok(Reply::Cluster(ClusterInfo {
        status: status.into(),
        connect_address: Some("https://in01-k.example".into()),
        ..ClusterInfo::default()
    }))
}

fn listed(ids: &[&str]) -> Answer {
    Ok(Reply::Clusters(ids.iter().map(|s| s.to_string()).collect()))
}

const ID: &str = "in01-k";

fn plan(container: Container) -> Plan {
    Plan {
        what: "collection default.books".into(),
        cluster_id: Some(ID.into()),
        accepted: false,
        release_collection: false,
        container,
        create: None,
        desired: Default::default(),
        update: false,
    }
}

fn cluster_plan(accepted: bool) -> Plan {
    Plan {
        what: format!("cluster {ID}"),
        accepted,
        ..plan(Container::None)
    }
}

/// In a ZillizCluster whose object says it runs, with its endpoint.
const KNOWN: Container = Container::Cluster {
    hint_gone: false,
    endpoint_known: true,
};

fn drop_cluster(accepted: bool, script: &[(Call, Answer)]) -> Attempt {
    let plan = cluster_plan(accepted);
    replay(|s| ZillizCluster::drop_protocol(&plan, s), script)
}

fn observe_cluster(script: &[(Call, Answer)]) -> Observation {
    let plan = cluster_plan(false);
    replay(|s| ZillizCluster::observe_protocol(&plan, s), script)
}

fn drop_collection(container: Container, script: &[(Call, Answer)]) -> Attempt {
    let plan = plan(container);
    replay(|s| ZillizCollection::drop_protocol(&plan, s), script)
}

fn failed(a: Attempt) -> ApiError {
    match a {
        Attempt::Failed(e) => e,
        other => panic!("expected Failed, got {other:?}"),
    }
}

fn absent(a: Attempt) -> (Evidence, String) {
    match a {
        Attempt::Absent(evidence, m) => (evidence, m),
        other => panic!("expected Absent, got {other:?}"),
    }
}

use Call::*;

#[test]
fn a_running_cluster_is_described_then_dropped_once() {
    let a = drop_cluster(
        false,
        &[
            (DescribeCluster, described("RUNNING")),
            (DropCluster, Ok(Reply::Done)),
        ],
    );
    let Attempt::Accepted(m) = a else {
        panic!("{a:?}")
    };
    assert!(m.contains(ID), "{m}");
    // any state but DELETING/DELETED is dropped
    for state in ["CREATING", "SUSPENDED", "MODIFYING", "SOMETHING_NEW"] {
        let a = drop_cluster(
            false,
            &[
                (DescribeCluster, described(state)),
                (DropCluster, Ok(Reply::Done)),
            ],
        );
        assert!(matches!(a, Attempt::Accepted(_)), "{state}: {a:?}");
    }
}

#[test]
fn an_accepted_cluster_drop_is_only_polled() {
    for state in ["RUNNING", "DELETING"] {
        let a = drop_cluster(true, &[(DescribeCluster, described(state))]);
        let Attempt::InProgress(m) = a else {
            panic!("{state}: {a:?}")
        };
        assert!(
            m.contains(state) && m.contains("waiting for DELETED"),
            "{m}"
        );
    }
    let a = drop_cluster(true, &[(DescribeCluster, described("DELETED"))]);
    assert!(
        matches!(a, Attempt::Dropped(ref m) if m.contains("DELETED")),
        "{a:?}"
    );
    let a = drop_cluster(true, &[(DescribeCluster, not_found(90102))]);
    assert!(matches!(a, Attempt::Dropped(_)), "{a:?}");
    let a = drop_cluster(
        true,
        &[
            (DescribeCluster, no_permission()),
            (ListClusters, listed(&[])),
        ],
    );
    assert!(matches!(a, Attempt::Dropped(_)), "{a:?}");
}

#[test]
fn a_cluster_deleting_or_deleted_is_never_dropped_again() {
    // the accepted mark was lost: DELETING is polled, not dropped a second time
    let a = drop_cluster(false, &[(DescribeCluster, described("DELETING"))]);
    assert!(matches!(a, Attempt::InProgress(_)), "{a:?}");
    let (evidence, m) = absent(drop_cluster(
        false,
        &[(DescribeCluster, described("deleted"))],
    ));
    assert_eq!(evidence, Evidence::ClusterDeleted);
    assert!(m.contains(ID), "{m}");
    let (evidence, _) = absent(drop_cluster(false, &[(DescribeCluster, not_found(90102))]));
    assert_eq!(evidence, Evidence::NotFound { code: Some(90102) });
}

#[test]
fn a_cluster_describe_that_settles_nothing_sends_no_drop() {
    for answer in [unavailable(), invalid_parameter(), Ok(Reply::Done)] {
        let e = failed(drop_cluster(false, &[(DescribeCluster, answer.clone())]));
        match answer {
            Err(sent) => assert_eq!(e, sent),
            Ok(_) => {
                assert_eq!(e.class, ErrorClass::Unknown);
                assert!(e.message.contains("Done"), "{e}");
            }
        }
    }
}

#[test]
fn a_cluster_80020_is_gone_only_when_the_same_key_lists_every_cluster_without_it() {
    for accepted in [false, true] {
        let a = drop_cluster(
            accepted,
            &[
                (DescribeCluster, no_permission()),
                (ListClusters, listed(&["in01-a"])),
            ],
        );
        let m = match a {
            Attempt::Absent(Evidence::ListedWithout, m) if !accepted => m,
            Attempt::Dropped(m) if accepted => m,
            other => panic!("{other:?}"),
        };
        assert!(
            m.contains("cluster in01-k does not exist") && m.contains("80020"),
            "{m}"
        );
    }
    // still listed: the key lacks the right, the cluster is not gone, nothing is dropped
    let e = failed(drop_cluster(
        false,
        &[
            (DescribeCluster, no_permission()),
            (ListClusters, listed(&["in01-a", ID])),
        ],
    ));
    assert_eq!(e.class, ErrorClass::Credentials);
    assert_eq!(e.code, Some(80020));
    assert!(e.message.contains("may lack permission"), "{e}");
    // a list that fails, or answers something else, proves nothing
    let e = failed(drop_cluster(
        false,
        &[
            (DescribeCluster, no_permission()),
            (ListClusters, unavailable()),
        ],
    ));
    assert_eq!(e.class, ErrorClass::Credentials);
    assert!(
        e.message
            .contains("listing clusters with the same credentials failed"),
        "{e}"
    );
    let e = failed(drop_cluster(
        false,
        &[
            (DescribeCluster, no_permission()),
            (ListClusters, Ok(Reply::Done)),
        ],
    ));
    assert_eq!(e.class, ErrorClass::Unknown);
    assert!(e.message.contains("the cluster list answered Done"), "{e}");
}

#[test]
fn a_cluster_drop_answer_is_classified() {
    let running = (DescribeCluster, described("RUNNING"));
    let (evidence, _) = absent(drop_cluster(
        false,
        &[running.clone(), (DropCluster, not_found(90102))],
    ));
    assert_eq!(evidence, Evidence::NotFound { code: Some(90102) });
    let (evidence, _) = absent(drop_cluster(
        false,
        &[
            running.clone(),
            (DropCluster, no_permission()),
            (ListClusters, listed(&[])),
        ],
    ));
    assert_eq!(evidence, Evidence::ListedWithout);
    let e = failed(drop_cluster(
        false,
        &[
            running.clone(),
            (DropCluster, no_permission()),
            (ListClusters, listed(&[ID])),
        ],
    ));
    assert_eq!(e.class, ErrorClass::Credentials);
    // no list after an answer that is not 80020
    for answer in [unavailable(), invalid_parameter()] {
        let e = failed(drop_cluster(
            false,
            &[running.clone(), (DropCluster, answer.clone())],
        ));
        assert_eq!(Err(e), answer);
    }
}

#[test]
fn a_cluster_observation_names_its_state() {
    // (what the API says, the state, how the state is shown)
    let cases = [
        ("RUNNING", ClusterState::Running, "RUNNING"),
        ("creating", ClusterState::Creating, "CREATING"),
        ("RESTORING", ClusterState::Restoring, "RESTORING"),
        ("MODIFYING", ClusterState::Modifying, "MODIFYING"),
        ("SUSPENDING", ClusterState::Suspending, "SUSPENDING"),
        ("STOPPING", ClusterState::Suspending, "SUSPENDING"),
        ("SUSPENDED", ClusterState::Suspended, "SUSPENDED"),
        (" stopped ", ClusterState::Suspended, "SUSPENDED"),
        ("RESUMING", ClusterState::Resuming, "RESUMING"),
        ("DELETING", ClusterState::Deleting, "DELETING"),
        ("Frozen", ClusterState::Other("Frozen".into()), "Frozen"),
    ];
    for (raw, state, shown) in cases {
        let answer = described(raw);
        let found = observe_cluster(&[(DescribeCluster, answer.clone())]);
        let Ok(Reply::Cluster(info)) = answer else {
            unreachable!()
        };
        assert_eq!(
            found,
            Ok(Observed::Exists {
                usable: state == ClusterState::Running,
                detail: format!("cluster {ID} is {shown}"),
                endpoint: Some("https://in01-k.example".into()),
                cluster_state: Some(state),
                facts: Facts::Cluster(Box::new(info)),
            }),
            "{raw}"
        );
    }
    assert_eq!(
        observe_cluster(&[(DescribeCluster, described("DELETED"))]),
        Ok(Observed::Absent {
            detail: format!("cluster {ID} is DELETED")
        })
    );
}

#[test]
fn a_cluster_observation_reads_80020_like_a_drop() {
    assert!(matches!(
        observe_cluster(&[(DescribeCluster, not_found(90102))]),
        Ok(Observed::Absent { .. })
    ));
    assert!(matches!(
        observe_cluster(&[(DescribeCluster, no_permission()), (ListClusters, listed(&[]))]),
        Ok(Observed::Absent { ref detail }) if detail.contains("does not exist")
    ));
    let e = observe_cluster(&[
        (DescribeCluster, no_permission()),
        (ListClusters, listed(&[ID])),
    ])
    .unwrap_err();
    assert_eq!(e.class, ErrorClass::Credentials);
    assert_eq!(
        observe_cluster(&[(DescribeCluster, unavailable())]),
        Err(unavailable().unwrap_err())
    );
    let e = observe_cluster(&[(DescribeCluster, Ok(Reply::Has(true)))]).unwrap_err();
    assert_eq!(e.class, ErrorClass::Unknown);
}

#[test]
fn a_collection_in_a_known_running_cluster_is_dropped_without_a_describe() {
    for container in [Container::None, KNOWN] {
        let a = drop_collection(container, &[(DropCollection, Ok(Reply::Done))]);
        assert_eq!(
            a,
            Attempt::Dropped("collection default.books dropped".into()),
            "{container:?}"
        );
    }
}

#[test]
fn a_collection_whose_cluster_may_be_gone_or_has_no_endpoint_asks_the_cluster_first() {
    for (hint_gone, endpoint_known) in [(true, true), (true, false), (false, false)] {
        let container = Container::Cluster {
            hint_gone,
            endpoint_known,
        };
        let a = drop_collection(
            container,
            &[
                (DescribeCluster, described("RUNNING")),
                (DropCollection, Ok(Reply::Done)),
            ],
        );
        assert!(matches!(a, Attempt::Dropped(_)), "{container:?}: {a:?}");
        let (evidence, m) = absent(drop_collection(
            container,
            &[(DescribeCluster, described("DELETED"))],
        ));
        assert_eq!(evidence, Evidence::ClusterDeleted);
        assert_eq!(
            m,
            "cluster in01-k, which holds collection default.books, is DELETED"
        );
    }
}

#[test]
fn the_cluster_a_collection_lives_in_decides_before_its_drop() {
    let first = Container::Cluster {
        hint_gone: true,
        endpoint_known: false,
    };
    let (evidence, m) = absent(drop_collection(
        first,
        &[(DescribeCluster, not_found(90102))],
    ));
    assert_eq!(evidence, Evidence::NotFound { code: Some(90102) });
    assert!(m.contains("does not exist"), "{m}");
    let (evidence, m) = absent(drop_collection(
        first,
        &[
            (DescribeCluster, no_permission()),
            (ListClusters, listed(&[])),
        ],
    ));
    assert_eq!(evidence, Evidence::ListedWithout);
    assert!(m.ends_with("; it held collection default.books"), "{m}");
    let e = failed(drop_collection(
        first,
        &[
            (DescribeCluster, no_permission()),
            (ListClusters, listed(&[ID])),
        ],
    ));
    assert_eq!(e.class, ErrorClass::Credentials);
    // not in a state to serve the drop: wait, send nothing
    let e = failed(drop_collection(
        first,
        &[(DescribeCluster, described("SUSPENDED"))],
    ));
    assert_eq!(e.class, ErrorClass::Transient);
    assert!(e.message.contains("is SUSPENDED"), "{e}");
    let no_endpoint = Ok(Reply::Cluster(ClusterInfo {
        status: "RUNNING".into(),
        connect_address: None,
        ..ClusterInfo::default()
    }));
    let e = failed(drop_collection(first, &[(DescribeCluster, no_endpoint)]));
    assert_eq!(e.class, ErrorClass::Unknown);
    assert!(e.message.contains("gave no endpoint"), "{e}");
    // a describe that settles nothing: no list, no drop
    for answer in [unavailable(), invalid_parameter()] {
        let e = failed(drop_collection(first, &[(DescribeCluster, answer.clone())]));
        assert_eq!(Err(e), answer);
    }
    let e = failed(drop_collection(
        first,
        &[(DescribeCluster, Ok(Reply::Done))],
    ));
    assert_eq!(e.class, ErrorClass::Unknown);
}

#[test]
fn a_collection_drop_answer_counts_as_gone_only_when_it_says_so_or_a_read_confirms() {
    let (evidence, m) = absent(drop_collection(
        Container::None,
        &[(DropCollection, not_found(100))],
    ));
    assert_eq!(evidence, Evidence::NotFound { code: Some(100) });
    assert_eq!(m, "collection default.books: not found");
    // 1100 or 80020 from the data plane: a read decides
    for ambiguous in [invalid_parameter(), no_permission()] {
        let (evidence, m) = absent(drop_collection(
            Container::None,
            &[
                (DropCollection, ambiguous.clone()),
                (HasCollection, Ok(Reply::Has(false))),
            ],
        ));
        assert_eq!(evidence, Evidence::ReadSaysAbsent);
        assert!(m.contains("a read confirmed it"), "{m}");
        let (evidence, _) = absent(drop_collection(
            Container::None,
            &[
                (DropCollection, ambiguous.clone()),
                (HasCollection, not_found(100)),
            ],
        ));
        assert_eq!(evidence, Evidence::NotFound { code: Some(100) });
        let sent = ambiguous.clone().unwrap_err();
        for (read, says) in [
            (
                Ok(Reply::Has(true)),
                "yet a read shows collection default.books exists",
            ),
            (
                unavailable(),
                "a read to confirm that collection default.books is gone failed too",
            ),
            (Ok(Reply::Done), "a read to confirm answered Done"),
        ] {
            let e = failed(drop_collection(
                Container::None,
                &[(DropCollection, ambiguous.clone()), (HasCollection, read)],
            ));
            assert_eq!((e.class, e.code), (sent.class, sent.code));
            assert!(e.message.starts_with(&sent.message), "{e}");
            assert!(e.message.contains(says), "{e}");
        }
    }
    // anything else is a failure, with no read
    for answer in [unavailable(), loaded()] {
        let e = failed(drop_collection(
            Container::None,
            &[(DropCollection, answer.clone())],
        ));
        assert_eq!(Err(e), answer);
    }
}

#[test]
fn an_unreachable_data_plane_asks_the_cluster_once() {
    // a transient or unknown failure may come from a cluster that is gone: ask it
    let unknown = Err(api(ErrorClass::Unknown, Some(4242), "something new"));
    for failure in [unavailable(), unknown] {
        let (evidence, _) = absent(drop_collection(
            KNOWN,
            &[
                (DropCollection, failure.clone()),
                (DescribeCluster, described("DELETED")),
            ],
        ));
        assert_eq!(evidence, Evidence::ClusterDeleted);
        // the cluster runs (or cannot tell): the drop's own error stands
        for describe in [described("RUNNING"), described("SUSPENDED"), unavailable()] {
            let e = failed(drop_collection(
                KNOWN,
                &[
                    (DropCollection, failure.clone()),
                    (DescribeCluster, describe),
                ],
            ));
            assert_eq!(Err(e), failure);
        }
        // no cluster to ask
        let e = failed(drop_collection(
            Container::None,
            &[(DropCollection, failure.clone())],
        ));
        assert_eq!(Err(e), failure);
        // the cluster was described already before the drop: not again
        let e = failed(drop_collection(
            Container::Cluster {
                hint_gone: true,
                endpoint_known: true,
            },
            &[
                (DescribeCluster, described("RUNNING")),
                (DropCollection, failure.clone()),
            ],
        ));
        assert_eq!(Err(e), failure);
    }
    // a failure that says something else is not a reason to ask
    let denied = Err(api(
        ErrorClass::Credentials,
        Some(1800),
        "user hasn't authenticated",
    ));
    let e = failed(drop_collection(KNOWN, &[(DropCollection, denied.clone())]));
    assert_eq!(Err(e), denied);
}

#[test]
fn a_collection_observation_is_a_describe() {
    let plan = plan(KNOWN);
    let observe = |answer: Answer| {
        replay(
            |s| ZillizCollection::observe_protocol(&plan, s),
            &[(DescribeCollection, answer)],
        )
    };
    let info = crate::api::describe::collection_info(
        &serde_json::json!({"fields": [{"name": "id", "type": "Int64", "primaryKey": true}]}),
    )
    .unwrap();
    assert_eq!(
        observe(Ok(Reply::Collection(Box::new(info.clone())))),
        Ok(Observed::Exists {
            usable: true,
            detail: "collection default.books exists".into(),
            endpoint: None,
            cluster_state: None,
            facts: Facts::Collection(Box::new(info)),
        })
    );
    assert_eq!(
        observe(not_found(100)),
        Ok(Observed::Absent {
            detail: "collection default.books does not exist".into()
        })
    );
    // a missing database is not a missing collection: the caller waits for it
    assert_eq!(
        observe(not_found(800)),
        not_found(800).map(|_| unreachable!())
    );
    assert_eq!(observe(unavailable()), Err(unavailable().unwrap_err()));
    assert_eq!(
        observe(Ok(Reply::Has(true))).unwrap_err().class,
        ErrorClass::Unknown
    );
}

fn partition_plan(container: Container) -> Plan {
    Plan {
        what: "partition 2024 of collection default.books".into(),
        ..plan(container)
    }
}

#[test]
fn a_partition_is_released_then_dropped() {
    let plan = partition_plan(KNOWN);
    let drop =
        |script: &[(Call, Answer)]| replay(|s| ZillizPartition::drop_protocol(&plan, s), script);
    assert_eq!(
        drop(&[
            (ReleasePartition, Ok(Reply::Done)),
            (DropPartition, Ok(Reply::Done))
        ]),
        Attempt::Dropped("partition 2024 of collection default.books released and dropped".into())
    );
    // the release tells already that it is gone
    let (evidence, _) = absent(drop(&[(ReleasePartition, not_found(200))]));
    assert_eq!(evidence, Evidence::NotFound { code: Some(200) });
    let (evidence, _) = absent(drop(&[
        (ReleasePartition, invalid_parameter()),
        (HasPartition, Ok(Reply::Has(false))),
    ]));
    assert_eq!(evidence, Evidence::ReadSaysAbsent);
    let (evidence, _) = absent(drop(&[
        (ReleasePartition, Ok(Reply::Done)),
        (DropPartition, invalid_parameter()),
        (HasPartition, Ok(Reply::Has(false))),
    ]));
    assert_eq!(evidence, Evidence::ReadSaysAbsent);
    let e = failed(drop(&[
        (ReleasePartition, Ok(Reply::Done)),
        (DropPartition, invalid_parameter()),
        (HasPartition, Ok(Reply::Has(true))),
    ]));
    assert_eq!(e.class, ErrorClass::InvalidName);
    // a cluster that may be gone is asked first
    let plan = partition_plan(Container::Cluster {
        hint_gone: true,
        endpoint_known: true,
    });
    let (evidence, _) = absent(replay(
        |s| ZillizPartition::drop_protocol(&plan, s),
        &[(DescribeCluster, described("DELETED"))],
    ));
    assert_eq!(evidence, Evidence::ClusterDeleted);
}

#[test]
fn a_partition_observation_reports_a_missing_collection_as_an_error() {
    let plan = partition_plan(KNOWN);
    let observe = |answer: Answer| {
        replay(
            |s| ZillizPartition::observe_protocol(&plan, s),
            &[(HasPartition, answer)],
        )
    };
    // a missing collection is not an absent partition: converge waits for the collection
    // (ParentNotReady) instead of creating the partition in nothing
    assert!(matches!(
        observe(not_found(100)),
        Err(ref e) if e.code == Some(100)
    ));
    assert!(matches!(
        observe(Ok(Reply::Has(false))),
        Ok(Observed::Absent { .. })
    ));
    assert!(matches!(
        observe(Ok(Reply::Has(true))),
        Ok(Observed::Exists { .. })
    ));
    assert_eq!(observe(unavailable()), Err(unavailable().unwrap_err()));
    assert_eq!(observe(no_permission()), Err(no_permission().unwrap_err()));
}

fn index_plan(release_collection: bool) -> Plan {
    Plan {
        what: "index vec_idx of collection default.books".into(),
        release_collection,
        ..plan(KNOWN)
    }
}

fn drop_index(release_collection: bool, script: &[(Call, Answer)]) -> Attempt {
    let plan = index_plan(release_collection);
    replay(|s| ZillizIndex::drop_protocol(&plan, s), script)
}

#[test]
fn an_index_of_a_loaded_collection_is_blocked_unless_the_spec_allows_a_release() {
    for allowed in [false, true] {
        assert_eq!(
            drop_index(allowed, &[(DropIndex, Ok(Reply::Done))]),
            Attempt::Dropped("index vec_idx of collection default.books dropped".into())
        );
    }
    let blocked = drop_index(
        false,
        &[(DropIndex, loaded()), (HasIndex, Ok(Reply::Has(true)))],
    );
    assert_eq!(blocked, Attempt::Blocked(loaded().unwrap_err()));
    // a read that fails settles nothing: still blocked
    let blocked = drop_index(false, &[(DropIndex, loaded()), (HasIndex, unavailable())]);
    assert_eq!(blocked, Attempt::Blocked(loaded().unwrap_err()));
    // the server refuses the drop of any index of a loaded collection, even of one that does
    // not exist (a create it refused): a read that says so lets it go
    let (evidence, _) = absent(drop_index(
        false,
        &[(DropIndex, loaded()), (HasIndex, Ok(Reply::Has(false)))],
    ));
    assert_eq!(evidence, Evidence::ReadSaysAbsent);
    assert_eq!(
        drop_index(
            true,
            &[
                (DropIndex, loaded()),
                (ReleaseCollection, Ok(Reply::Done)),
                (DropIndex, Ok(Reply::Done)),
            ]
        ),
        Attempt::Dropped(
            "index vec_idx of collection default.books dropped (the collection was released first)"
                .into()
        )
    );
    // released once, loaded again (someone loads it back): blocked, not a loop of releases
    assert_eq!(
        drop_index(
            true,
            &[
                (DropIndex, loaded()),
                (ReleaseCollection, Ok(Reply::Done)),
                (DropIndex, loaded()),
                (HasIndex, Ok(Reply::Has(true))),
            ]
        ),
        Attempt::Blocked(loaded().unwrap_err())
    );
}

#[test]
fn an_index_drop_answer_is_classified() {
    let (evidence, _) = absent(drop_index(false, &[(DropIndex, not_found(700))]));
    assert_eq!(evidence, Evidence::NotFound { code: Some(700) });
    let (evidence, _) = absent(drop_index(
        true,
        &[
            (DropIndex, invalid_parameter()),
            (HasIndex, Ok(Reply::Has(false))),
        ],
    ));
    assert_eq!(evidence, Evidence::ReadSaysAbsent);
    // the release of the collection answers that it is gone: so is its index
    let (evidence, _) = absent(drop_index(
        true,
        &[(DropIndex, loaded()), (ReleaseCollection, not_found(100))],
    ));
    assert_eq!(evidence, Evidence::NotFound { code: Some(100) });
    let e = failed(drop_index(
        true,
        &[
            (DropIndex, loaded()),
            (ReleaseCollection, unavailable()),
            (DescribeCluster, described("RUNNING")),
        ],
    ));
    assert_eq!(Err(e), unavailable());
    let plan = index_plan(false);
    assert!(matches!(
        replay(
            |s| ZillizIndex::observe_protocol(&plan, s),
            &[(
                DescribeIndex,
                Ok(Reply::Index(Box::new(crate::api::IndexInfo {
                    field_name: "vector".into(),
                    index_type: "HNSW".into(),
                    metric_type: "COSINE".into(),
                    state: crate::api::IndexState::Finished,
                    indexed_rows: 0,
                    total_rows: 0,
                    fail_reason: String::new(),
                })))
            )]
        ),
        Ok(Observed::Exists {
            facts: Facts::Index(_),
            ..
        })
    ));
    // only 700 says the index is absent; 100 (its collection) is an error the caller tells apart
    assert!(matches!(
        replay(
            |s| ZillizIndex::observe_protocol(&plan, s),
            &[(DescribeIndex, not_found(700))]
        ),
        Ok(Observed::Absent { .. })
    ));
    assert_eq!(
        replay(
            |s| ZillizIndex::observe_protocol(&plan, s),
            &[(DescribeIndex, not_found(100))]
        ),
        not_found(100).map(|_| unreachable!())
    );
}

/// Equivalent mutant: `replace match guard *call == Call::DescribeCluster with true in
/// learned_endpoint`. Only a describe is answered with `Reply::Cluster` (`external::execute`),
/// so no history holds a cluster description under another call.
#[test]
fn the_endpoint_is_the_last_one_a_describe_gave() {
    assert_eq!(learned_endpoint(&[]), None);
    let with = |addr: Option<&str>| {
        (
            DescribeCluster,
            Ok(Reply::Cluster(ClusterInfo {
                status: "RUNNING".into(),
                connect_address: addr.map(String::from),
                ..ClusterInfo::default()
            })),
        )
    };
    assert_eq!(
        learned_endpoint(&[
            with(Some("https://a.example")),
            (DropCollection, unavailable())
        ]),
        Some("https://a.example")
    );
    assert_eq!(
        learned_endpoint(&[
            with(Some("https://a.example")),
            with(Some("https://b.example"))
        ]),
        Some("https://b.example")
    );
    assert_eq!(learned_endpoint(&[with(None)]), None);
    assert_eq!(learned_endpoint(&[(DescribeCluster, unavailable())]), None);
}
