//! The doctor's analysis, reason by reason, without I/O.

use super::*;
use serde_json::{Value, json};

const NS: &str = "team-a";
const NOW: &str = "2026-12-02T12:00:00Z";

fn now() -> jiff::Timestamp {
    NOW.parse().unwrap()
}

fn settings() -> Settings {
    Settings {
        stuck_after: Duration::from_secs(600),
        names: Vec::new(),
        operator_namespace: "zilliz-operator".into(),
    }
}

fn cond(type_: &str, status: &str, reason: &str, message: &str, at: &str) -> Value {
    json!({"type": type_, "status": status, "reason": reason, "message": message,
           "lastTransitionTime": at})
}

/// `metadata` of an object; deleted `ago` seconds before [`NOW`] when `deleted` is given.
fn meta(name: &str, deleted: Option<i64>, annotations: Value) -> Value {
    let mut m = json!({"name": name, "namespace": NS, "finalizers": [FINALIZER],
                       "annotations": annotations});
    if let Some(ago) = deleted {
        let t = now() - jiff::SignedDuration::from_secs(ago);
        m["deletionTimestamp"] = json!(t.to_string());
    }
    m
}

fn collection(name: &str, spec: Value, deleted: Option<i64>, status: Value) -> Object {
    let mut full = json!({"collectionName": name});
    merge(&mut full, spec);
    Object::Collection(
        serde_json::from_value(json!({
            "apiVersion": "zilliz.io/v1alpha1", "kind": "ZillizCollection",
            "metadata": meta(name, deleted, json!({})),
            "spec": full, "status": status
        }))
        .unwrap(),
    )
}

fn direct(name: &str, deleted: Option<i64>, status: Value) -> Object {
    collection(
        name,
        json!({"connection": {"endpoint": "https://milvus.example:19530",
                              "credentialsSecretRef": {"name": "creds", "key": "token"}}}),
        deleted,
        status,
    )
}

fn merge(into: &mut Value, from: Value) {
    if let (Some(a), Value::Object(b)) = (into.as_object_mut(), from) {
        a.extend(b);
    }
}

fn cluster(name: &str, id: &str, deleted: Option<i64>, status: Value) -> Object {
    Object::Cluster(
        serde_json::from_value(json!({
            "apiVersion": "zilliz.io/v1alpha1", "kind": "ZillizCluster",
            "metadata": meta(name, deleted, json!({})),
            "spec": {"clusterId": id, "credentialsSecretRef": {"name": "zilliz-key"}},
            "status": status
        }))
        .unwrap(),
    )
}

fn index(name: &str, collection_ref: &str, deleted: Option<i64>, status: Value) -> Object {
    Object::Index(
        serde_json::from_value(json!({
            "apiVersion": "zilliz.io/v1alpha1", "kind": "ZillizIndex",
            "metadata": meta(name, deleted, json!({})),
            "spec": {"indexName": format!("{name}_idx"), "collectionRef": {"name": collection_ref}},
            "status": status
        }))
        .unwrap(),
    )
}

fn partition(name: &str, collection_ref: &str) -> Object {
    Object::Partition(
        serde_json::from_value(json!({
            "apiVersion": "zilliz.io/v1alpha1", "kind": "ZillizPartition",
            "metadata": meta(name, None, json!({})),
            "spec": {"partitionName": name, "collectionRef": {"name": collection_ref}},
        }))
        .unwrap(),
    )
}

/// A status whose `Synced` is false with `reason` (deleting), and a `status.deletion`.
fn failing(reason: &str, message: &str, attempts: u32) -> Value {
    json!({
        "conditions": [
            cond("Ready", "True", "Available", "ok", "2026-12-01T00:00:00Z"),
            cond("Synced", "False", reason, message, "2026-12-02T11:58:00Z"),
        ],
        "deletion": {"attempts": attempts, "lastError": message,
                     "nextRetryTime": "2026-12-02T12:05:00Z"}
    })
}

fn ready() -> Value {
    json!({"conditions": [
        cond("Ready", "True", "Available", "ok", "2026-12-01T00:00:00Z"),
        cond("Synced", "True", "ReconcileSuccess", "", "2026-12-01T00:00:00Z"),
    ]})
}

fn one(obj: Object, all: &[Object]) -> Finding {
    examine(&obj, all, now(), &settings())
}

fn advice(f: &Finding) -> Vec<Advice> {
    f.steps.iter().map(|s| s.advice).collect()
}

fn commands(f: &Finding) -> Vec<String> {
    f.steps.iter().flat_map(|s| s.commands.clone()).collect()
}

const ORPHAN: &str = r#"kubectl -n team-a patch zillizcollection books --type merge -p '{"spec":{"deletionPolicy":"Orphan"}}'"#;

#[test]
fn deletion_protected_says_how_to_drop_or_keep_and_what_stripping_leaks() {
    let status = failing("DeletionProtected", "annotated ...", 0);
    let f = one(direct("books", Some(30), status), &[]);
    assert_eq!(
        f.severity,
        Severity::Stuck,
        "a stalled reason is stuck at once"
    );
    assert_eq!(f.reason.as_deref(), Some("DeletionProtected"));
    assert_eq!(f.for_seconds, Some(30));
    assert_eq!(advice(&f), [Advice::RemoveProtection, Advice::KeepResource]);
    assert_eq!(
        commands(&f),
        [
            "kubectl -n team-a annotate zillizcollection books zilliz.io/deletion-protection-",
            ORPHAN
        ]
    );
    let leak = f.if_finalizer_stripped.unwrap();
    assert!(
        leak.contains("collection default.books at https://milvus.example:19530")
            && leak.contains("stays and keeps its data"),
        "{leak}"
    );
}

#[test]
fn dependents_exist_lists_them_and_says_to_delete_or_orphan_them() {
    let coll = direct(
        "books",
        Some(30),
        failing(
            "DependentsExist",
            "waiting for 2 object(s) in this collection to be deleted first",
            2,
        ),
    );
    let all = vec![
        coll.clone(),
        partition("y2024", "books"),
        index("vec", "books", None, ready()),
        index("other", "films", None, ready()),
    ];
    let f = one(coll, &all);
    assert_eq!(f.dependents, ["ZillizIndex/vec", "ZillizPartition/y2024"]);
    assert_eq!(
        advice(&f),
        [Advice::DeleteDependents, Advice::OrphanDependents]
    );
    assert_eq!(
        f.steps[0].commands,
        ["kubectl -n team-a delete zillizindex/vec zillizpartition/y2024"]
    );
    assert!(
        f.steps[1].commands[0].starts_with("kubectl -n team-a patch zillizindex vec --type merge"),
        "{:?}",
        f.steps[1].commands
    );
    // waiting on other objects is progress, not a stall: stuck only after the threshold
    assert_eq!(f.severity, Severity::Pending);
    let later = examine(
        &all[0],
        &all,
        now() + jiff::SignedDuration::from_secs(3600),
        &settings(),
    );
    assert_eq!(later.severity, Severity::Stuck);
    assert_eq!(f.attempts, Some(2));
    assert_eq!(f.next_retry.as_deref(), Some("2026-12-02T12:05:00Z"));
}

#[test]
fn a_cluster_s_dependents_include_what_lives_in_its_collections() {
    let c = cluster(
        "analytics",
        "in01-abc",
        Some(5),
        failing("DependentsExist", "waiting", 1),
    );
    let coll = collection(
        "books",
        json!({"clusterRef": {"name": "analytics"}}),
        None,
        ready(),
    );
    let all = vec![c.clone(), coll, index("vec", "books", None, ready())];
    let f = one(c, &all);
    assert_eq!(f.dependents, ["ZillizCollection/books", "ZillizIndex/vec"]);
    let leak = f.if_finalizer_stripped.unwrap();
    assert!(
        leak.contains("Zilliz Cloud cluster in01-abc") && leak.contains("billed"),
        "{leak}"
    );
}

#[test]
fn missing_credentials_give_the_secret_and_key_to_fix() {
    let f = one(
        direct(
            "books",
            Some(30),
            failing(
                "CredentialsUnavailable",
                "Secret \"creds\" has no key \"token\"",
                3,
            ),
        ),
        &[],
    );
    assert_eq!(f.severity, Severity::Stuck);
    assert_eq!(advice(&f), [Advice::FixCredentials, Advice::KeepResource]);
    let cmds = commands(&f);
    assert!(
        cmds.contains(&"kubectl -n team-a create secret generic creds --from-literal=token=<token> --dry-run=client -o yaml | kubectl apply -f -".to_string()),
        "{cmds:?}"
    );
    assert!(cmds[0].starts_with("kubectl -n team-a get secret creds -o go-template="));
}

#[test]
fn credentials_of_a_referencing_object_are_its_cluster_s() {
    let c = cluster("analytics", "in01-abc", None, ready());
    let coll = collection(
        "books",
        json!({"clusterRef": {"name": "analytics"}}),
        Some(60),
        failing(
            "CredentialsUnavailable",
            "Secret \"zilliz-key\" not found",
            1,
        ),
    );
    let idx = index("vec", "books", None, ready());
    let all = vec![c, coll.clone(), idx.clone()];
    let f = one(coll, &all);
    assert!(
        commands(&f)
            .iter()
            .any(|c| c.contains("secret generic zilliz-key --from-literal=apiKey=<token>")),
        "{:?}",
        commands(&f)
    );
    assert_eq!(
        credentials_of(&idx, &all),
        Some(("zilliz-key".into(), "apiKey".into()))
    );
    assert!(
        f.if_finalizer_stripped
            .unwrap()
            .contains("default.books in Zilliz Cloud cluster in01-abc")
    );
}

#[test]
fn unauthorized_while_live_is_stuck_only_after_the_threshold() {
    let status = |at: &str| {
        json!({"conditions": [
            cond("Ready", "False", "Unauthorized", "401", at),
            cond("Synced", "False", "Unauthorized", "401", at),
        ]})
    };
    let fresh = one(direct("books", None, status("2026-12-02T11:59:00Z")), &[]);
    assert_eq!(fresh.severity, Severity::Pending);
    assert_eq!(fresh.advice_kinds(), [Advice::FixCredentials]);
    assert!(
        fresh.if_finalizer_stripped.is_none(),
        "live objects leak nothing"
    );
    let old = one(direct("books", None, status("2026-12-02T10:00:00Z")), &[]);
    assert_eq!(old.severity, Severity::Stuck);
    assert_eq!(old.for_seconds, Some(7200));
}

impl Finding {
    fn advice_kinds(&self) -> Vec<Advice> {
        advice(self)
    }
}

#[test]
fn a_loaded_collection_blocks_an_index_drop_until_release_is_allowed() {
    let f = one(
        index(
            "vec",
            "books",
            Some(30),
            failing("DropBlocked", "CollectionLoaded: ...", 4),
        ),
        &[],
    );
    assert_eq!(f.severity, Severity::Stuck);
    assert_eq!(
        f.advice_kinds(),
        [Advice::ReleaseCollection, Advice::KeepResource]
    );
    assert_eq!(
        f.steps[0].commands,
        [
            r#"kubectl -n team-a patch zillizindex vec --type merge -p '{"spec":{"releaseCollectionBeforeDrop":true}}'"#
        ]
    );
    assert!(f.if_finalizer_stripped.unwrap().contains("index vec_idx"));
}

#[test]
fn a_missing_reference_says_to_recreate_it_or_orphan() {
    let f = one(
        index(
            "vec",
            "books",
            Some(30),
            failing(
                "ReferenceNotFound",
                "ZillizCollection \"books\" does not exist",
                1,
            ),
        ),
        &[],
    );
    assert_eq!(f.severity, Severity::Stuck);
    assert_eq!(
        f.advice_kinds(),
        [Advice::RecreateReference, Advice::KeepResource]
    );
    assert!(f.steps[0].commands[0].contains("ZillizCollection books"));
}

#[test]
fn caches_syncing_and_drop_in_progress_are_waits() {
    for reason in ["CachesSyncing", "DropInProgress", "DropRetrying"] {
        let f = one(direct("books", Some(30), failing(reason, "m", 1)), &[]);
        assert_eq!(f.severity, Severity::Pending, "{reason}");
        assert_eq!(f.advice_kinds(), [Advice::Wait], "{reason}");
    }
    let old = one(
        direct("books", Some(3600), failing("DropInProgress", "m", 1)),
        &[],
    );
    assert_eq!(
        old.severity,
        Severity::Stuck,
        "an hour is too long for anything"
    );
}

#[test]
fn a_failed_drop_points_to_the_external_cause_and_orphan() {
    let f = one(
        direct(
            "books",
            Some(30),
            failing("DropFailed", "403 forbidden; ...", 7),
        ),
        &[],
    );
    assert_eq!(f.severity, Severity::Stuck);
    assert_eq!(
        f.advice_kinds(),
        [Advice::FixExternal, Advice::KeepResource]
    );
    assert_eq!(f.last_error.as_deref(), Some("403 forbidden; ..."));
    assert_eq!(f.attempts, Some(7));
}

#[test]
fn a_live_conflict_invalid_spec_or_parent_problem_has_its_own_advice() {
    let live = |reason: &str| {
        json!({"conditions": [
            cond("Ready", "False", reason, "m", "2026-12-02T08:00:00Z"),
            cond("Synced", "False", reason, "m", "2026-12-02T08:00:00Z"),
        ]})
    };
    for (reason, want) in [
        ("Conflict", Advice::RemoveDuplicate),
        ("InvalidSpec", Advice::FixSpec),
        ("ClusterNotRunning", Advice::FixParent),
        ("ParentNotReady", Advice::FixParent),
        ("Unreachable", Advice::CheckNetwork),
        ("SpecMismatch", Advice::FixSpec),
        ("IndexMissing", Advice::CreateIndex),
        ("IndexBuildFailed", Advice::FixExternal),
        ("Loading", Advice::Wait),
        ("Creating", Advice::Wait),
        ("CreatePending", Advice::FixExternal),
    ] {
        let f = one(direct("books", None, live(reason)), &[]);
        assert_eq!(f.severity, Severity::Stuck, "{reason}");
        assert_eq!(f.advice_kinds(), [want], "{reason}");
        assert!(
            !f.advice_kinds().contains(&Advice::KeepResource),
            "not deleted"
        );
    }
}

#[test]
fn a_deletion_the_operator_never_recorded_points_at_the_operator() {
    // Synced still shows the last observation: no operator has handled the deletion
    let f = one(direct("books", Some(3600), ready()), &[]);
    assert_eq!(f.severity, Severity::Stuck);
    assert_eq!(f.reason.as_deref(), Some("ReconcileSuccess"));
    assert_eq!(f.advice_kinds(), [Advice::CheckOperator]);
    assert_eq!(
        f.steps[0].commands[0],
        "kubectl -n zilliz-operator get pods"
    );
}

#[test]
fn an_orphan_object_leaks_nothing_by_stripping() {
    let obj = collection(
        "books",
        json!({"connection": {"endpoint": "http://m:19530", "credentialsSecretRef": {"name": "c"}},
               "deletionPolicy": "Orphan"}),
        Some(3600),
        failing("DependentsExist", "waiting", 1),
    );
    let f = one(obj, &[]);
    assert!(
        f.if_finalizer_stripped
            .as_deref()
            .unwrap()
            .contains("kept either way")
    );
    assert!(!f.advice_kinds().contains(&Advice::KeepResource));
}

#[test]
fn the_report_is_worst_first_with_a_summary_and_exit_code() {
    let all = vec![
        direct("healthy", None, ready()),
        direct("protected", Some(30), failing("DeletionProtected", "m", 0)),
        direct("dropping", Some(10), failing("DropInProgress", "m", 1)),
        direct("failed", Some(900), failing("DropFailed", "m", 2)),
    ];
    let r = analyze(&all, Vec::new(), &BTreeMap::new(), now(), &settings());
    let order: Vec<&str> = r.objects.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(order, ["failed", "protected", "dropping", "healthy"]);
    assert_eq!(
        r.summary,
        Summary {
            objects: 4,
            stuck: 2,
            pending: 1,
            healthy: 1,
            install_problems: 0
        }
    );
    assert_eq!(r.exit_code(), 1);
    let text = render_text(&r);
    assert!(
        text.starts_with("2 stuck, 1 pending, 1 healthy (4 object(s))"),
        "{text}"
    );
    assert!(text.find("STUCK (2)").unwrap() < text.find("Pending (1)").unwrap());
    assert!(text.contains("do not strip the finalizer by hand"));
    // stable JSON
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["objects"][0]["severity"], "stuck");
    assert_eq!(json["objects"][0]["steps"][0]["advice"], "fixExternal");
    assert_eq!(json["objects"][1]["steps"][0]["advice"], "removeProtection");
    assert_eq!(json["summary"]["stuck"], 2);

    let healthy = analyze(&all[..1], Vec::new(), &BTreeMap::new(), now(), &settings());
    assert_eq!(healthy.exit_code(), 0);
    let failed_check = analyze(
        &all[..1],
        vec![Check::new("CRD x", CheckStatus::Fail, "missing")],
        &BTreeMap::new(),
        now(),
        &settings(),
    );
    assert_eq!(failed_check.exit_code(), 1);
}

#[test]
fn names_filter_what_is_shown_not_where_dependents_are_found() {
    let coll = direct("books", Some(30), failing("DependentsExist", "m", 1));
    let all = vec![coll, index("vec", "books", None, ready())];
    let s = Settings {
        names: vec!["books".into()],
        ..settings()
    };
    let r = analyze(&all, Vec::new(), &BTreeMap::new(), now(), &s);
    assert_eq!(r.objects.len(), 1);
    assert_eq!(r.objects[0].dependents, ["ZillizIndex/vec"]);
}

#[test]
fn crds_are_compared_with_this_binary_s() {
    let mine = ZillizCollection::crd();
    assert_eq!(
        check_crd(Kind::ZillizCollection, Ok(Some(&mine))).status,
        CheckStatus::Ok
    );
    assert_eq!(
        check_crd(Kind::ZillizCollection, Ok(None)).status,
        CheckStatus::Fail
    );
    let mut other = mine.clone();
    other.spec.versions[0].schema = None;
    assert_eq!(
        check_crd(Kind::ZillizCollection, Ok(Some(&other))).status,
        CheckStatus::Warn
    );
    let mut unserved = mine;
    unserved.spec.versions[0].served = false;
    assert_eq!(
        check_crd(Kind::ZillizCollection, Ok(Some(&unserved))).status,
        CheckStatus::Fail
    );
    let unknown = check_crd(Kind::ZillizCollection, Err("403 forbidden".into()));
    assert_eq!(unknown.status, CheckStatus::Unknown);
    assert!(unknown.detail.contains("403 forbidden"));
}

#[test]
fn the_lease_is_held_and_renewed_or_not() {
    let lease = |holder: &str, renewed_ago: i64| -> Lease {
        serde_json::from_value(json!({
            "metadata": {"name": "l", "namespace": "zilliz-operator"},
            "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15,
                     "renewTime": (now() - jiff::SignedDuration::from_secs(renewed_ago)).strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()}
        }))
        .unwrap()
    };
    let ok = check_lease("zilliz-operator", "l", Ok(Some(&lease("pod-a", 3))), now());
    assert_eq!(ok.status, CheckStatus::Ok, "{ok:?}");
    assert!(ok.detail.contains("pod-a"));
    let stale = check_lease(
        "zilliz-operator",
        "l",
        Ok(Some(&lease("pod-a", 600))),
        now(),
    );
    assert_eq!(stale.status, CheckStatus::Fail, "{stale:?}");
    let nobody = check_lease("zilliz-operator", "l", Ok(Some(&lease("", 3))), now());
    assert_eq!(nobody.status, CheckStatus::Fail);
    assert_eq!(
        check_lease("zilliz-operator", "l", Ok(None), now()).status,
        CheckStatus::Warn
    );
    assert_eq!(
        check_lease("zilliz-operator", "l", Err("403".into()), now()).status,
        CheckStatus::Unknown
    );
}

#[test]
fn rbac_is_ok_denied_or_unknown() {
    let n = needs();
    let all_ok: Vec<_> = n.iter().map(|x| (*x, Ok(true))).collect();
    let sa = "system:serviceaccount:zilliz-operator:zilliz-operator";
    assert_eq!(check_rbac(sa, &all_ok).status, CheckStatus::Ok);
    let mut denied = all_ok.clone();
    denied[0].1 = Ok(false);
    let c = check_rbac(sa, &denied);
    assert_eq!(c.status, CheckStatus::Fail);
    assert!(
        c.detail.contains("list zillizclusters.zilliz.io"),
        "{}",
        c.detail
    );
    let unknown = check_rbac(sa, &[(n[0], Err("404 not found".into()))]);
    assert_eq!(unknown.status, CheckStatus::Unknown);
    assert!(unknown.detail.contains("kubectl auth can-i --list --as="));
}

#[test]
fn the_probe_makes_only_reads() {
    assert!(read_only(Call::HasCollection) && read_only(Call::DescribeCluster));
    assert!(read_only(Call::DescribeCollection) && read_only(Call::DescribeIndex));
    for write in [
        Call::DropCluster,
        Call::DropCollection,
        Call::ReleaseCollection,
        Call::DropIndex,
        Call::CreateCollection,
        Call::CreateIndex,
        Call::CreatePartition,
        Call::DropPartition,
        Call::ReleasePartition,
        Call::LoadCollection,
        Call::AlterCollection,
    ] {
        assert!(!read_only(write), "{write:?}");
    }
}

#[test]
fn names_with_shell_characters_are_quoted() {
    assert_eq!(quote("books"), "books");
    assert_eq!(quote("it's"), r"'it'\''s'");
}

#[test]
fn an_object_the_operator_never_reconciled_is_stuck_once_old_enough() {
    let unseen = |age: i64| {
        let mut o = direct("books", None, json!(null));
        if let Object::Collection(c) = &mut o {
            c.metadata.creation_timestamp =
                Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                    now() - jiff::SignedDuration::from_secs(age),
                ));
        }
        o
    };
    let young = one(unseen(60), &[]);
    assert_eq!(young.severity, Severity::Pending);
    assert_eq!(young.advice_kinds(), [Advice::CheckOperator]);
    let old = one(unseen(3600), &[]);
    assert_eq!(old.severity, Severity::Stuck);
    assert_eq!(old.for_seconds, Some(3600));
}
