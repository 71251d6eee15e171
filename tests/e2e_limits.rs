//! Staying polite, through the binary: `--control-plane-rps` paces calls to one control plane
//! endpoint and API key, `--data-plane-concurrency` caps calls in flight to one data plane
//! endpoint. (`client_limits` tests the client itself; this checks the flags reach it.)

use std::{path::Path, time::Duration, time::Instant};
use zilliz_devkit::{
    e2e::{Cluster, namespace_yaml, numbered_collections_yaml, require_kubectl, secret_yaml},
    zilliz_fake::ZillizFake,
};

const OPERATOR: &str = env!("CARGO_BIN_EXE_zilliz-operator");
const TOKEN: &str = "limits-key-5d0c";

fn zilliz_cluster(ns: &str, i: usize, fake: &str) -> String {
    format!(
        r#"apiVersion: zilliz.io/v1alpha1
kind: ZillizCluster
metadata: {{name: c{i}, namespace: {ns}}}
spec:
  clusterId: in01-limits{i}
  controlPlane: {{apiVersion: v2, baseUrl: "{fake}"}}
  credentialsSecretRef: {{name: creds, key: apiKey}}
"#
    )
}

/// Arrival times of the calls whose path starts with `prefix`, sorted.
fn arrivals(fake: &ZillizFake, prefix: &str) -> Vec<Instant> {
    let mut times: Vec<Instant> = fake
        .timed_calls(0)
        .into_iter()
        .filter(|(_, path, _)| path.starts_with(prefix))
        .map(|(_, _, at)| at)
        .collect();
    times.sort();
    times
}

/// The shortest time between a call and the `k`-th call after it.
fn tightest(times: &[Instant], k: usize) -> Duration {
    times
        .windows(k + 1)
        .map(|w| w[k] - w[0])
        .min()
        .unwrap_or(Duration::MAX)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_paces_the_control_plane_and_caps_the_data_plane() {
    if !require_kubectl() {
        return;
    }
    const RPS: usize = 4;
    const CAP: usize = 2;
    const LATENCY: Duration = Duration::from_millis(300);
    const N: usize = 12;
    let fake = ZillizFake::start(TOKEN).await;
    for i in 0..N {
        fake.add_cluster(&format!("in01-limits{i}"));
        fake.add_collection("default", &format!("coll_{i}"), false);
    }
    let mut c = Cluster::start().await;
    c.start_operator(
        Path::new(OPERATOR),
        &[
            "--control-plane-rps",
            &RPS.to_string(),
            "--data-plane-concurrency",
            &CAP.to_string(),
        ],
    )
    .await;
    let ns = "polite";
    c.apply(&namespace_yaml(ns)).await;
    c.apply(&secret_yaml(ns, "creds", "apiKey", TOKEN)).await;

    // control plane: N clusters observed at once, answered at once
    let started = Instant::now();
    let mut yaml = String::new();
    for i in 0..N {
        yaml.push_str(&zilliz_cluster(ns, i, &fake.uri()));
        yaml.push_str("---\n");
    }
    c.apply(&yaml).await;
    c.wait_ready(ns, &["zc", "--all"], Duration::from_secs(60))
        .await;
    let took = started.elapsed();
    let cp = arrivals(&fake, "/v2/clusters");
    assert!(cp.len() >= N, "{} control plane calls", cp.len());
    // a bucket of RPS tokens refilled at RPS per second: any 2×RPS calls span at least 1 s
    let span = tightest(&cp, 2 * RPS);
    println!(
        "control plane: {} calls in {took:?}; tightest {} consecutive calls span {span:?} (bound 1 s)",
        cp.len(),
        2 * RPS + 1
    );
    assert!(
        span >= Duration::from_millis(950),
        "{} calls within {span:?} at {RPS}/s",
        2 * RPS + 1
    );

    // data plane: N collections on one endpoint, each call answered after LATENCY
    fake.set_latency(LATENCY);
    c.apply(&numbered_collections_yaml(
        ns,
        N,
        &fake.uri(),
        Some("apiKey"),
    ))
    .await;
    c.wait_ready(ns, &["zcol", "--all"], Duration::from_secs(60))
        .await;
    let dp = arrivals(&fake, "/v2/vectordb");
    assert!(dp.len() >= N, "{} data plane calls", dp.len());
    // with CAP slots held for LATENCY each, the call CAP places later waits for a slot
    let span = tightest(&dp, CAP);
    println!(
        "data plane: {} calls; tightest {} consecutive calls span {span:?} (bound {LATENCY:?})",
        dp.len(),
        CAP + 1
    );
    assert!(
        span >= LATENCY - Duration::from_millis(30),
        "{} calls within {span:?} with {CAP} in flight at most",
        CAP + 1
    );
}
