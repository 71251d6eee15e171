//! The scale benchmark (`zilliz_devkit::bench`, the `bench` binary) at a small N against the
//! debug build: it asserts the counts the issue sets as targets, never a time (the times live
//! in the benchmark's output). It also keeps the benchmark itself working, since CI does not
//! run it at scale.
use std::{path::PathBuf, time::Duration};
use zilliz_devkit::bench::{self, Config, Kind};

fn config(objects: usize, tenants: usize, delete_collection: bool, orphan: bool) -> Config {
    Config {
        objects,
        latency: Duration::from_millis(1),
        kinds: Kind::ALL.to_vec(),
        concurrency: 4,
        client_concurrency: 8,
        poll_base: Duration::from_millis(20),
        timeout: Duration::from_secs(120),
        operator_bin: PathBuf::from(env!("CARGO_BIN_EXE_zilliz-operator")),
        control_plane_rps: Some(0),
        data_plane_concurrency: Some(0),
        delete_collection,
        orphan,
        tenants,
        restart: false,
        create: false,
        resync_interval: Duration::from_secs(3600),
    }
}

fn secret_patches(r: &bench::Report) -> u64 {
    r.deletion_k8s.get("patch secrets").copied().unwrap_or(0)
}

/// Tenants alike (the same names in five namespaces, each in a database of its own) torn down
/// by deletecollection, as the namespace controller does: every object's resource is dropped
/// by exactly one call, none is kept as shared, and the watches timed every disappearance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_alike_are_each_dropped_once_by_a_deletecollection_teardown() {
    let r = bench::run(&config(40, 5, true, false))
        .await
        .expect("bench run");
    assert_eq!(r.tenants, 5);
    for (kind, drops, objects) in r.drops() {
        assert_eq!(objects, 10, "{kind:?}");
        assert_eq!(drops, objects, "{kind:?}: drop calls");
    }
    assert_eq!(
        r.deletion_calls.get("POST /v2/vectordb/partitions/release"),
        Some(&10),
        "{:?}",
        r.deletion_calls
    );
    assert_eq!(r.operator_warnings, 0, "{:?}", r.warning_kinds);
    // 2 per collection, partition and index (Event, finalizer), 5 per cluster (2 Events, 2
    // status writes, finalizer), and at most one per Secret: its in-use guard let go
    let secrets = secret_patches(&r);
    assert!(secrets <= 5, "{:?}", r.deletion_k8s);
    assert_eq!(
        r.deletion_operator_writes() - secrets,
        3 * 10 * 2 + 10 * 5,
        "{:?}",
        r.deletion_k8s
    );
    assert!(!r.end_by_list, "the watches missed a deletion");
    assert_eq!(r.last_gone_by_kind.len(), 4, "{:?}", r.last_gone_by_kind);
}

/// `deletionPolicy: Orphan` everywhere (the benchmark's Kubernetes floor): not one Zilliz call
/// in the teardown, one Event and one finalizer patch per object.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_orphan_teardown_makes_no_zilliz_call() {
    let r = bench::run(&config(20, 1, false, true))
        .await
        .expect("bench run");
    assert!(r.deletion_calls.is_empty(), "{:?}", r.deletion_calls);
    let secrets = secret_patches(&r);
    assert!(secrets <= 1, "{:?}", r.deletion_k8s);
    assert_eq!(
        r.deletion_operator_writes() - secrets,
        2 * 20,
        "{:?}",
        r.deletion_k8s
    );
    assert_eq!(r.operator_warnings, 0, "{:?}", r.warning_kinds);
    assert!(!r.end_by_list, "the watches missed a deletion");
}

/// Everything deleted while the operator is down (an upgrade in the middle of a teardown):
/// the new operator drops each object's resource exactly once and leaves nothing waiting on
/// the finalizer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_teardown_while_the_operator_is_down_is_finished_by_the_next_one() {
    let mut cfg = config(20, 1, false, false);
    cfg.restart = true;
    let r = bench::run(&cfg).await.expect("bench run");
    assert!(r.restart);
    for (kind, drops, objects) in r.drops() {
        assert_eq!(drops, objects, "{kind:?}: drop calls");
    }
    assert!(r.first_drop_after_delete.is_some());
    assert_eq!(r.operator_warnings, 0, "{:?}", r.warning_kinds);
    assert!(!r.end_by_list, "the watches missed a deletion");
}

/// The creation phase: objects applied to the running operator, of which one in four finds its
/// resource there. Each absent collection, partition and index is created by exactly one call,
/// none that existed is created, and once all is Ready, a resync interval observes again and
/// changes nothing on Zilliz (no create, drop, release, load or alter call). The created
/// resources are then dropped once each, as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_creation_phase_creates_each_absent_resource_once_and_a_resync_changes_nothing() {
    let mut cfg = config(40, 1, false, false);
    cfg.create = true;
    cfg.resync_interval = Duration::from_secs(4);
    let r = bench::run(&cfg).await.expect("bench run");
    assert!(r.apply_to_ready.is_some());
    assert!(!r.ready_by_list, "the watches missed a Ready");
    assert_eq!(r.creates.len(), 3, "{:?}", r.creates);
    for c in &r.creates {
        // objects 0, 4 and 8 of each kind found their resource there
        assert_eq!((c.absent, c.existing), (7, 3), "{c:?}");
        assert_eq!(
            c.on_absent, c.absent,
            "{c:?}: create calls per absent resource"
        );
        assert_eq!(
            c.on_existing, 0,
            "{c:?}: create calls per existing resource"
        );
    }
    let j = r.json();
    for kind in ["collection", "partition", "index"] {
        assert_eq!(j["create_calls_per_absent"][kind], 1.0, "{j}");
        assert_eq!(j["create_calls_per_existing"][kind], 0.0, "{j}");
    }
    // the resync happened (every object observed again) and mutated nothing
    let observes: usize = r.resync_calls.values().sum();
    assert!(observes >= r.objects, "{:?}", r.resync_calls);
    assert!(r.resync_mutating().is_empty(), "{:?}", r.resync_calls);
    assert_eq!(j["resync_mutating_total"], 0);
    // Kubernetes: a converged resync writes nothing (the run that creates a resource describes
    // it again, so its status is already what the resync sees)
    assert_eq!(r.resync_k8s_writes(), 0, "{:?}", r.resync_k8s);
    for (kind, drops, objects) in r.drops() {
        assert_eq!(drops, objects, "{kind:?}: drop calls");
    }
    assert_eq!(r.operator_warnings, 0, "{:?}", r.warning_kinds);
    assert!(!r.end_by_list, "the watches missed a deletion");
}
