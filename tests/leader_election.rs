//! Leader election on a `coordination.k8s.io/v1` Lease (kube-lease-manager), end to end: the
//! test Kubernetes API server in process, two real `zilliz-operator run --leader-elect`
//! processes, kubectl. The harness is `zilliz_devkit::e2e`.

use kube_test_server::TestServer;
use serde_json::Value;
use std::{
    path::Path,
    time::{Duration, Instant},
};
use zilliz_devkit::e2e::{
    Cluster, Operator, eventually, invalid_collection_yaml, namespace_yaml, require_kubectl,
};

const OPERATOR: &str = env!("CARGO_BIN_EXE_zilliz-operator");
const LEASE: &str = "zilliz-operator-leader";
const LEASE_SECS: u64 = 3;
const LEASE_DURATION: Duration = Duration::from_secs(LEASE_SECS);
const LEASE_NS: &str = "zilliz-system";
const NS: &str = "apps";

// ---------------------------------------------------------------------------------------------
// helpers

/// The test API server with the CRDs and the namespaces [`LEASE_NS`] and [`NS`].
async fn cluster() -> Cluster {
    let mut c = Cluster::start_empty().await;
    c.kubectl_timeout = Duration::from_secs(60);
    c.install_crds().await;
    c.apply(&namespace_yaml(LEASE_NS)).await;
    c.apply(&namespace_yaml(NS)).await;
    c
}

/// `spec.holderIdentity` of the leader Lease (None when absent or released).
async fn lease_holder(c: &Cluster, ns: &str) -> Option<String> {
    let out = c
        .kubectl_in(&["get", "lease", LEASE, "-n", ns, "-o", "json"], None)
        .await;
    if !out.ok {
        return None;
    }
    let lease: Value = serde_json::from_str(&out.stdout).ok()?;
    lease["spec"]["holderIdentity"].as_str().map(str::to_string)
}

/// Sum of the `zilliz_operator_reconciles_total` samples.
async fn reconciles(op: &Operator) -> f64 {
    let (status, body) = op.http("/metrics").await;
    assert_eq!(status, 200, "{body}");
    body.lines()
        .filter(|l| l.starts_with("zilliz_operator_reconciles_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// No finalizer and no status: nobody reconciled it.
async fn untouched(c: &Cluster, ns: &str, name: &str) -> bool {
    let obj = c.get_json(&["get", "zcol", name, "-n", ns]).await;
    obj["metadata"]["finalizers"].is_null() && obj["status"].is_null()
}

/// A `--leader-elect` candidate on the Lease in [`LEASE_NS`], as Pod `name`.
fn spawn_candidate(c: &Cluster, name: &str) -> Operator {
    let lease_duration = format!("{LEASE_SECS}s");
    c.spawn_pod(
        Path::new(OPERATOR),
        name,
        &[
            "--leader-elect",
            "--lease-namespace",
            LEASE_NS,
            "--lease-duration",
            &lease_duration,
        ],
    )
}

/// Candidate `op-a`, once it holds the Lease in [`LEASE_NS`] (within 20 s).
async fn op_a_leads(c: &Cluster) -> Operator {
    let a = spawn_candidate(c, "op-a");
    wait_holder_prefix(c, LEASE_NS, "op-a", Duration::from_secs(20)).await;
    a
}

async fn wait_holder_prefix(c: &Cluster, ns: &str, prefix: &str, timeout: Duration) -> Duration {
    let prefix = format!("{prefix}-");
    let prefix = &prefix;
    eventually(
        &format!("lease held by {prefix}*"),
        timeout,
        || async move {
            lease_holder(c, ns)
                .await
                .is_some_and(|h| h.starts_with(prefix.as_str()))
        },
    )
    .await
}

// ---------------------------------------------------------------------------------------------
// tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_leader_reconciles_standby_takes_over_on_kill_and_release_on_sigterm() {
    if !require_kubectl() {
        return;
    }
    let c = cluster().await;

    // op-a first, so that it is the leader; then op-b as a standby.
    let mut a = op_a_leads(&c).await;
    let mut b = spawn_candidate(&c, "op-b");
    a.addr().await;
    b.addr().await;
    {
        let b = &b;
        eventually(
            "op-b waits for the lease",
            Duration::from_secs(20),
            || async move { !b.logged("waiting for the leader lease").is_empty() },
        )
        .await;
    }

    // /healthz is 200 on both; /readyz is 200 on both (a standby is ready). Readiness failures
    // are collected and asserted at the end, so that the election figures are measured anyway.
    let mut not_ready = Vec::new();
    for op in [&a, &b] {
        assert_eq!(op.http("/healthz").await.0, 200, "{} /healthz", op.name());
        if let Some(why) = op.readyz_within(Duration::from_secs(15)).await {
            not_ready.push(why);
        }
    }
    // Only the leader reconciles.
    c.apply(&invalid_collection_yaml(NS, "first")).await;
    eventually("op-a reconciles `first`", Duration::from_secs(20), || {
        c.reconciled_invalid(NS, "first")
    })
    .await;
    {
        let a = &a;
        eventually(
            "op-a counts its reconciles",
            Duration::from_secs(10),
            || async move { reconciles(a).await > 0.0 },
        )
        .await;
    }
    // give a would-be second reconciler time to show up
    tokio::time::sleep(LEASE_DURATION).await;
    let holder = lease_holder(&c, LEASE_NS).await.unwrap();
    assert!(holder.starts_with("op-a-"), "holder {holder}");
    let (_, standby_metrics) = b.http("/metrics").await;
    assert!(
        standby_metrics.contains("zilliz_operator_build_info"),
        "{standby_metrics}"
    );
    assert_eq!(
        reconciles(&b).await,
        0.0,
        "the standby reconciled:\n{standby_metrics}"
    );
    assert!(
        b.logged("acquired the leader lease").is_empty(),
        "{}",
        b.log_tail()
    );
    assert_eq!(
        a.logged("acquired the leader lease").len(),
        1,
        "{}",
        a.log_tail()
    );

    // SIGKILL the leader: op-b takes over within one lease duration (plus a little).
    a.kill();
    let killed = Instant::now();
    a.wait_exit(Duration::from_secs(5)).await;
    wait_holder_prefix(
        &c,
        LEASE_NS,
        "op-b",
        LEASE_DURATION + Duration::from_secs(10),
    )
    .await;
    let takeover = killed.elapsed();
    c.apply(&invalid_collection_yaml(NS, "second")).await;
    eventually("op-b reconciles `second`", Duration::from_secs(20), || {
        c.reconciled_invalid(NS, "second")
    })
    .await;
    let reconciling = killed.elapsed();
    eprintln!(
        "MEASURED takeover after SIGKILL of the leader: lease held by op-b after {takeover:?}; \
         a new object reconciled by op-b {reconciling:?} after the kill (lease duration {LEASE_DURATION:?})"
    );
    assert!(
        takeover < LEASE_DURATION + Duration::from_secs(3),
        "takeover took {takeover:?}\n{}",
        b.log_tail()
    );
    assert!(reconciles(&b).await > 0.0, "{}", b.log_tail());
    if let Some(why) = b.readyz_within(Duration::from_secs(15)).await {
        not_ready.push(format!("after takeover: {why}"));
    }

    // SIGTERM the new leader: it gives the lease back at once and exits 0.
    b.sigterm();
    let termed = Instant::now();
    let c_ref = &c;
    let released = eventually(
        "the lease is released",
        Duration::from_secs(10),
        || async move { lease_holder(c_ref, LEASE_NS).await.is_none() },
    )
    .await;
    let status = b.wait_exit(Duration::from_secs(10)).await;
    let exited = termed.elapsed();
    eprintln!(
        "MEASURED release on SIGTERM: holderIdentity cleared within {released:?}, process exited after {exited:?} with {status}"
    );
    assert!(status.success(), "exit {status}\n{}", b.log_tail());
    assert!(
        released < Duration::from_secs(3),
        "release took {released:?}"
    );
    assert!(exited < Duration::from_secs(5), "exit took {exited:?}");
    assert!(
        !b.logged("released the leader lease").is_empty(),
        "{}",
        b.log_tail()
    );
    let lease = c.get_json(&["get", "lease", LEASE, "-n", LEASE_NS]).await;
    assert!(lease["spec"]["holderIdentity"].is_null(), "{lease}");

    assert!(not_ready.is_empty(), "/readyz:\n{}", not_ready.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_that_loses_the_lease_stops_and_exits_non_zero() {
    if !require_kubectl() {
        return;
    }
    let c = cluster().await;

    let mut a = op_a_leads(&c).await;
    c.apply(&invalid_collection_yaml(NS, "before")).await;
    eventually("op-a reconciles `before`", Duration::from_secs(20), || {
        c.reconciled_invalid(NS, "before")
    })
    .await;

    // Someone else takes the lease (fresh renewTime, and ten minutes, so that it cannot expire
    // while the steps below run on a loaded machine): op-a must stop reconciling and exit.
    let now = format!("{:.6}", jiff::Timestamp::now());
    let patch = format!(
        r#"{{"spec":{{"holderIdentity":"intruder","renewTime":"{now}","acquireTime":"{now}","leaseDurationSeconds":600}}}}"#
    );
    c.kubectl_ok(&[
        "patch",
        "lease",
        LEASE,
        "-n",
        LEASE_NS,
        "--type=merge",
        "-p",
        &patch,
    ])
    .await;
    let patched = Instant::now();
    let status = a.wait_exit(LEASE_DURATION + Duration::from_secs(5)).await;
    let exited = patched.elapsed();
    eprintln!(
        "MEASURED lost lease: op-a exited {exited:?} after the Lease was taken, with {status}"
    );
    assert!(!status.success(), "op-a exited 0\n{}", a.log_tail());
    assert!(
        exited < LEASE_DURATION + Duration::from_secs(2),
        "op-a took {exited:?} to notice\n{}",
        a.log_tail()
    );
    assert!(
        !a.logged("lost the leader lease").is_empty(),
        "no 'lost the leader lease' in the log\n{}",
        a.log_tail()
    );
    // The intruder keeps the lease: op-a did not clear it on the way out.
    assert_eq!(
        lease_holder(&c, LEASE_NS).await.as_deref(),
        Some("intruder")
    );

    // Nothing reconciles while the intruder holds the lease, although a live candidate is
    // there that would (op-b, started after op-a led, waiting for the lease).
    let mut b = spawn_candidate(&c, "op-b");
    b.addr().await;
    {
        let b = &b;
        eventually(
            "op-b waits for the lease",
            Duration::from_secs(20),
            || async move { !b.logged("waiting for the leader lease").is_empty() },
        )
        .await;
    }
    c.apply(&invalid_collection_yaml(NS, "after")).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(untouched(&c, NS, "after").await);
    assert_eq!(b.http("/healthz").await.0, 200, "op-b is alive");
    assert_eq!(reconciles(&b).await, 0.0, "{}", b.log_tail());

    // The check above could fail: once the intruder lets go, op-b leads and reconciles `after`.
    c.kubectl_ok(&[
        "patch",
        "lease",
        LEASE,
        "-n",
        LEASE_NS,
        "--type=merge",
        "-p",
        r#"{"spec":{"holderIdentity":null,"renewTime":null,"acquireTime":null}}"#,
    ])
    .await;
    wait_holder_prefix(&c, LEASE_NS, "op-b", Duration::from_secs(60)).await;
    eventually("op-b reconciles `after`", Duration::from_secs(30), || {
        c.reconciled_invalid(NS, "after")
    })
    .await;
    b.sigterm();
    b.wait_exit(Duration::from_secs(10)).await;
}

/// Two candidates racing for a free Lease through the operator's own lease manager
/// (`leader::acquire`, as `run --leader-elect` calls it): only one may lead. kube-lease-manager
/// takes the lease with a non-forced apply of `holderIdentity` under each candidate's own field
/// manager (see `leader::field_manager`), so the API server refuses the second with 409
/// Conflict; with one shared field manager both would believe they lead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_second_of_two_racing_candidates_is_refused() {
    use k8s_openapi::api::coordination::v1::Lease;
    use kube::api::{Api, PostParams};
    use zilliz_operator::leader::{LeaseConfig, acquire};
    let server = TestServer::start().await.unwrap();
    let client = kube::Client::try_from(kube::Config::new(server.url().parse().unwrap())).unwrap();
    let leases: Api<Lease> = Api::namespaced(client.clone(), "default");
    let (_stop_tx, stop) = tokio::sync::watch::channel(false);
    for round in 0..3 {
        let name = format!("race-{round}");
        let mut lease = Lease::default();
        lease.metadata.name = Some(name.clone());
        leases.create(&PostParams::default(), &lease).await.unwrap();
        let candidate = |who: &str| {
            let config = LeaseConfig {
                name: name.clone(),
                namespace: "default".into(),
                identity: format!("{who}-{round:08x}"),
                duration: LEASE_DURATION,
                grace: Duration::from_secs(1),
            };
            let (client, stop) = (client.clone(), stop.clone());
            tokio::spawn(async move {
                let held = acquire(client, &config, stop).await;
                (config.identity, held)
            })
        };
        let (mut a, mut b) = (candidate("op-a"), candidate("op-b"));
        let ((winner, held), loser) = tokio::time::timeout(Duration::from_secs(10), async {
            tokio::select! {
                r = &mut a => (r.unwrap(), b),
                r = &mut b => (r.unwrap(), a),
            }
        })
        .await
        .expect("one candidate leads within 10 s");
        let leadership = held.unwrap().expect("the winner holds the lease");
        // the other one must not lead while the winner holds and renews the lease
        tokio::time::sleep(LEASE_DURATION + Duration::from_secs(1)).await;
        assert!(
            !loser.is_finished(),
            "round {round}: both candidates lead ({winner} and {:?})",
            loser.await.map(|(who, h)| (who, h.map(|l| l.is_some())))
        );
        assert!(*leadership.watch().borrow(), "round {round}: {winner} lost");
        let holder = leases
            .get(&name)
            .await
            .unwrap()
            .spec
            .unwrap()
            .holder_identity;
        assert_eq!(holder.as_deref(), Some(winner.as_str()));
        // the winner gives the lease back: the other one takes it at once
        leadership.release().await;
        let (next, held) = tokio::time::timeout(Duration::from_secs(5), loser)
            .await
            .expect("the standby takes over within 5 s of the release")
            .unwrap();
        assert_ne!(next, winner);
        let leadership = held.unwrap().expect("the standby holds the lease");
        leadership.release().await;
    }
}
