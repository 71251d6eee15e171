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
