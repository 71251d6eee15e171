//! Outages, end to end: a long outage of every Zilliz call (time-scaled), a Secret rotated while
//! the API is down, answers slower than the request timeout, and broken answers (a body cut off
//! before its length, a reset connection, a gateway's HTML error pages).

use serde_json::Value;
use std::{
    collections::BTreeMap,
    path::Path,
    time::{Duration, Instant},
};
use zilliz_devkit::{
    e2e::{Cluster, collection_yaml, condition, namespace_yaml, require_kubectl, secret_yaml},
    raw_http::{Answer, RawHttp},
    zilliz_fake::{Call, ZillizFake},
};

const OPERATOR: &str = env!("CARGO_BIN_EXE_zilliz-operator");
const TOKEN: &str = "outage-key-4b2d";
const DROP: &str = "/v2/vectordb/collections/drop";
const WAIT: Duration = Duration::from_secs(30);

fn collection(ns: &str, name: &str, endpoint: &str) -> String {
    collection_yaml(ns, name, name, endpoint, None)
}

/// Waits until `obj` shows `Synced=False/DropRetrying` with `needle` in
/// `status.deletion.lastError`; answers the object then.
async fn drop_retrying_with(c: &Cluster, ns: &str, obj: &str, needle: &str) -> Value {
    let start = Instant::now();
    loop {
        let o = c.get_json_opt(&["get", obj, "-n", ns]).await;
        let o = o.unwrap_or_else(|| {
            panic!(
                "{obj} went away while its drop could not have succeeded\n{}",
                c.log_tail()
            )
        });
        let retrying = condition(&o, "Synced").is_some_and(|s| s["reason"] == "DropRetrying");
        let last_error = o["status"]["deletion"]["lastError"]
            .as_str()
            .unwrap_or_default();
        if retrying && last_error.contains(needle) {
            assert_eq!(o["metadata"]["finalizers"][0], "zilliz.io/finalizer");
            return o;
        }
        assert!(
            start.elapsed() < WAIT,
            "{obj}: no DropRetrying with {needle:?} after {WAIT:?}: {}\n{}",
            o["status"],
            c.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Which object a call of the outage test belongs to.
fn object_of(call: &Call) -> String {
    let coll = call.body["collectionName"].as_str().unwrap_or_default();
    match (call.method.as_str(), call.path.as_str()) {
        // a cluster's drop starts with a describe
        ("DELETE", "/v2/clusters/in01-outage/drop") | ("GET", "/v2/clusters/in01-outage") => {
            "zc/big".into()
        }
        ("POST", DROP) => format!("zcol/{coll}"),
        ("POST", "/v2/vectordb/partitions/release" | "/v2/vectordb/partitions/drop") => {
            "zpart/part".into()
        }
        ("POST", "/v2/vectordb/indexes/drop") => "zidx/idx".into(),
        (m, p) => format!("other: {m} {p}"),
    }
}

/// Time scale 1/250: `--backoff-base 4ms --backoff-cap 1200ms` stand for the defaults (1 s and
/// 5 min, the same ratio cap/base = 300), and an 18 s outage for one of 75 minutes.
const BASE: Duration = Duration::from_millis(4);
const CAP: Duration = Duration::from_millis(1200);
const OUTAGE: Duration = Duration::from_secs(18);

/// The most drop attempts one object may make in an outage of `t`, in all but ~1e-11 of runs.
///
/// Attempt k (0-based) is followed by a delay drawn uniformly from [base/10, min(cap, base·2^k)]
/// (src/backoff.rs) plus the reconcile's own time (>= 0). The first K = ceil(log2(cap/base))
/// delays are below the cap and may be tiny: at most 1 + K attempts fit in any window that way.
/// From then on every delay is an independent draw from [base/10, cap] ⊇ no shorter than a draw
/// from [0, cap]; m more attempts within `t` need m such draws summing to <= t, whose
/// probability is at most (t/cap)^m / m! (the volume of the simplex). With m = ceil(4·t/cap) —
/// twice the expected pace of one attempt per cap/2 — and t/cap = 15, m = 60: 15^60/60! ≈ 5e-12.
/// A hot loop, or a backoff that stops doubling, blows through it (18 s of 10 ms retries is
/// 1800 attempts).
fn attempt_bound(t: Duration) -> usize {
    let k = (CAP.as_secs_f64() / BASE.as_secs_f64()).log2().ceil() as usize;
    let m = (4.0 * t.as_secs_f64() / CAP.as_secs_f64()).ceil() as usize;
    1 + k + m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_outage_is_retried_with_capped_backoff_and_every_object_dropped_once() {
    if !require_kubectl() {
        return;
    }
    let fake = ZillizFake::start(TOKEN).await;
    fake.add_cluster("in01-outage");
    fake.add_collection("default", "first", false);
    fake.add_collection("default", "second", false);
    fake.add_collection("default", "parted", false);
    fake.add_partition("default", "parted", "p1", true);
    fake.add_collection("default", "indexed", false);
    fake.add_index("default", "indexed", "vec_idx");
    let mut c = Cluster::start().await;
    c.start_operator(
        Path::new(OPERATOR),
        &[
            "--backoff-base",
            "4ms",
            "--backoff-cap",
            "1200ms",
            "--poll-base",
            "100ms",
            "--poll-cap",
            "400ms",
        ],
    )
    .await;
    let ns = "outage";
    let uri = fake.uri();
    let conn =
        format!("connection: {{endpoint: \"{uri}\", credentialsSecretRef: {{name: creds}}}}");
    c.apply(&namespace_yaml(ns)).await;
    c.apply(&secret_yaml(ns, "creds", "apiKey", TOKEN)).await;
    c.apply(&format!(
        r#"apiVersion: zilliz.io/v1alpha1
kind: ZillizCluster
metadata: {{name: big, namespace: {ns}}}
spec:
  clusterId: in01-outage
  controlPlane: {{baseUrl: "{uri}"}}
  credentialsSecretRef: {{name: creds}}
---
apiVersion: zilliz.io/v1alpha1
kind: ZillizPartition
metadata: {{name: part, namespace: {ns}}}
spec:
  partitionName: p1
  collectionName: parted
  {conn}
---
apiVersion: zilliz.io/v1alpha1
kind: ZillizIndex
metadata: {{name: idx, namespace: {ns}}}
spec:
  indexName: vec_idx
  collectionName: indexed
  {conn}
"#
    ))
    .await;
    c.apply(&collection(ns, "first", &uri)).await;
    c.apply(&collection(ns, "second", &uri)).await;
    let all = [
        "zc/big",
        "zcol/first",
        "zcol/second",
        "zpart/part",
        "zidx/idx",
    ];
    c.wait_ready(ns, &all, WAIT).await;

    // every call answers 503 with a gateway's HTML page for OUTAGE; the five are deleted in it
    let mark = fake.total_calls();
    let until = fake.outage_for(OUTAGE);
    let mut args = vec!["delete", "--wait=false", "-n", ns];
    args.extend_from_slice(&all);
    c.kubectl_ok(&args).await;
    for obj in all {
        drop_retrying_with(&c, ns, obj, "HTTP 503").await;
    }
    tokio::time::sleep_until(until.into()).await;
    c.wait_gone(ns, &all, Duration::from_secs(30)).await;
    let recovered = until.elapsed();

    let log = fake.call_log(mark);
    let mut during: BTreeMap<String, usize> = BTreeMap::new();
    for call in log.iter().filter(|c| c.status == 503) {
        *during.entry(object_of(call)).or_default() += 1;
    }
    let bound = attempt_bound(OUTAGE);
    let total: usize = during.values().sum();
    println!(
        "outage of {OUTAGE:?} (base {BASE:?}, cap {CAP:?}; stands for 75 min at 1 s / 5 min): \
         {total} calls in all, per object {during:?}; bound {bound} per object, {} in all; \
         every object dropped {recovered:?} after the outage ended",
        bound * all.len()
    );
    assert_eq!(
        during.keys().map(String::as_str).collect::<Vec<_>>(),
        [
            "zc/big",
            "zcol/first",
            "zcol/second",
            "zidx/idx",
            "zpart/part"
        ],
        "only drop attempts (a cluster's first step: describe; a partition's: release) during the outage"
    );
    for (obj, n) in &during {
        assert!(
            *n <= bound,
            "{obj}: {n} attempts in {OUTAGE:?}, more than the backoff allows ({bound})"
        );
        // still retrying all along: delays never exceed the cap (plus a reconcile's own time)
        assert!(*n >= 5, "{obj}: only {n} attempts in {OUTAGE:?}");
    }
    assert!(total <= bound * all.len());
    // each pending delay is at most the cap: everything goes within the cap after the end (and
    // the cluster's two polls, and a loaded machine's slack)
    assert!(
        recovered <= CAP + Duration::from_secs(6),
        "recovery took {recovered:?}"
    );

    // after the outage: every object's resource dropped exactly once
    let after: Vec<&Call> = log.iter().filter(|c| c.status != 503).collect();
    let ok_calls = |method: &str, path: &str, coll: Option<&str>| {
        after
            .iter()
            .filter(|c| c.method == method && c.path == path && c.code == Some(0))
            .filter(|c| coll.is_none_or(|n| c.body["collectionName"] == n))
            .count()
    };
    assert_eq!(ok_calls("DELETE", "/v2/clusters/in01-outage/drop", None), 1);
    assert_eq!(ok_calls("POST", DROP, Some("first")), 1);
    assert_eq!(ok_calls("POST", DROP, Some("second")), 1);
    assert_eq!(ok_calls("POST", "/v2/vectordb/partitions/release", None), 1);
    assert_eq!(ok_calls("POST", "/v2/vectordb/partitions/drop", None), 1);
    assert_eq!(ok_calls("POST", "/v2/vectordb/indexes/drop", None), 1);
    assert_eq!(
        fake.cluster_status("in01-outage").as_deref(),
        Some("DELETED")
    );
    assert!(!fake.has_collection("default", "first"));
    assert!(!fake.has_collection("default", "second"));
    assert!(!fake.has_partition("default", "parted", "p1"));
    assert!(!fake.has_index("default", "indexed", "vec_idx"));
    let reasons = c.event_reasons(ns).await;
    assert_eq!(
        reasons.iter().filter(|r| *r == "Dropped").count(),
        5,
        "{reasons:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_rotated_during_an_outage_is_used_and_the_old_token_never_again() {
    if !require_kubectl() {
        return;
    }
    const OLD: &str = "rotate-old-key-61aa";
    const NEW: &str = "rotate-new-key-e09f";
    let fake = ZillizFake::start(OLD).await;
    fake.add_collection("default", "rotated", false);
    let mut c = Cluster::start().await;
    c.start_operator(Path::new(OPERATOR), &[]).await;
    let ns = "rotation";
    c.apply(&namespace_yaml(ns)).await;
    c.apply(&secret_yaml(ns, "creds", "apiKey", OLD)).await;
    c.apply(&collection(ns, "rotated", &fake.uri())).await;
    c.wait_ready(ns, &["zcol/rotated"], WAIT).await;

    let mark = fake.total_calls();
    fake.set_outage(true);
    c.kubectl_ok(&["delete", "--wait=false", "-n", ns, "zcol/rotated"])
        .await;
    drop_retrying_with(&c, ns, "zcol/rotated", "HTTP 503").await;

    // the key is rotated while the API is down: the API now takes only the new one
    fake.set_token(NEW);
    let rotated = Instant::now();
    c.apply(&secret_yaml(ns, "creds", "apiKey", NEW)).await;
    let picked_up = zilliz_devkit::e2e::eventually(
        "a call with the new token",
        Duration::from_secs(15),
        || async { fake.call_log(mark).iter().any(|c| c.token == NEW) },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    fake.set_outage(false);
    c.wait_gone(ns, &["zcol/rotated"], Duration::from_secs(20))
        .await;

    let log = fake.call_log(mark);
    let old_in_outage = log
        .iter()
        .filter(|c| c.token == OLD && c.status == 503)
        .count();
    let first_new = log.iter().position(|c| c.token == NEW).unwrap();
    println!(
        "rotation: {old_in_outage} calls with the old key before it, the new key used {:?} after \
         the Secret changed ({picked_up:?} after the apply returned), {} calls with it",
        log[first_new].arrived - rotated,
        log.len() - first_new
    );
    assert!(old_in_outage >= 1, "the outage began with the old key");
    // once the operator has read the new Secret, the old key is never sent again
    let stale: Vec<_> = log[first_new..]
        .iter()
        .filter(|c| c.token != NEW)
        .map(|c| (&c.path, c.status))
        .collect();
    assert!(
        stale.is_empty(),
        "calls after the rotation with the old key: {stale:?}"
    );
    assert!(
        log.iter().all(|c| c.status != 401),
        "a call was refused for its key: {:?}",
        log.iter()
            .map(|c| (&c.path, c.status, c.token == NEW))
            .collect::<Vec<_>>()
    );
    // the one drop that worked carried the new key
    let dropped: Vec<&Call> = log
        .iter()
        .filter(|c| c.path == DROP && c.code == Some(0))
        .collect();
    assert_eq!(dropped.len(), 1, "{log:?}");
    assert_eq!(dropped[0].token, NEW);
    assert!(!fake.has_collection("default", "rotated"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_slower_than_the_request_timeout_are_retried_not_waited_for() {
    if !require_kubectl() {
        return;
    }
    let fake = ZillizFake::start(TOKEN).await;
    fake.add_collection("default", "sluggish", false);
    let mut c = Cluster::start().await;
    c.start_operator(Path::new(OPERATOR), &["--request-timeout", "1s"])
        .await;
    let ns = "slow";
    c.apply(&namespace_yaml(ns)).await;
    c.apply(&secret_yaml(ns, "creds", "apiKey", TOKEN)).await;
    c.apply(&collection(ns, "sluggish", &fake.uri())).await;
    c.wait_ready(ns, &["zcol/sluggish"], WAIT).await;

    // every answer now takes 3 s, three times the operator's request timeout
    let slow = Duration::from_secs(3);
    fake.set_latency(slow);
    let mark = fake.total_calls();
    let deleted = Instant::now();
    c.kubectl_ok(&["delete", "--wait=false", "-n", ns, "zcol/sluggish"])
        .await;
    let o = drop_retrying_with(&c, ns, "zcol/sluggish", "timed out").await;
    let shown = deleted.elapsed();
    // the slow call reached the fake and dropped the collection there, but its answer came too
    // late: a timeout is never taken for a success, the finalizer stays
    assert!(!fake.has_collection("default", "sluggish"));
    assert_eq!(o["metadata"]["finalizers"][0], "zilliz.io/finalizer");
    // and it keeps retrying, each attempt cut at the timeout
    c.eventually("a second attempt", WAIT, || async {
        let o = c.get_json(&["get", "zcol/sluggish", "-n", ns]).await;
        o["status"]["deletion"]["attempts"].as_u64() >= Some(2)
    })
    .await;

    let fast_from = Instant::now();
    fake.set_latency(Duration::ZERO);
    c.wait_gone(ns, &["zcol/sluggish"], WAIT).await;
    let gone_after = fast_from.elapsed();

    // What is counted: drop calls by the delay the fake gave their answer. Slow ones reached
    // the fake (and changed its state) but the operator gave up on them; answers without delay
    // are the ones the operator could read: exactly one, and then the object went.
    let drops: Vec<Call> = fake
        .call_log(mark)
        .into_iter()
        .filter(|c| c.path == DROP)
        .collect();
    let slow_drops = drops.iter().filter(|c| c.delay == slow).count();
    let read: Vec<&Call> = drops.iter().filter(|c| c.delay.is_zero()).collect();
    println!(
        "slow answers: DropRetrying shown {shown:?} after the delete; {slow_drops} drop calls \
         answered after {slow:?} (timed out at 1 s), {} answered at once; gone {gone_after:?} \
         after the latency went back to 0",
        read.len()
    );
    assert!(slow_drops >= 2, "{drops:?}");
    assert_eq!(read.len(), 1, "{drops:?}");
    assert_eq!(read[0].code, Some(0));
    assert!(
        shown < Duration::from_secs(10),
        "DropRetrying took {shown:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_cut_short_resets_and_gateway_pages_are_retried_until_a_real_answer() {
    if !require_kubectl() {
        return;
    }
    const SUCCESS: &str = r#"{"code":200,"data":{}}"#;
    const V1_DROP: &str = "/v1/vector/collections/drop";
    // a self-hosted Milvus (REST v1) behind something that breaks answers; at first it answers
    // whole, with a collection's description (a drop takes it as success too)
    const DESCRIBED: &str = r#"{"code":200,"data":{"collectionName":"docs","fields":[{"name":"id","type":"Int64","primaryKey":true}],"load":"LoadStateLoaded"}}"#;
    let raw = RawHttp::start(Answer::json(200, DESCRIBED)).await;
    let mut c = Cluster::start().await;
    c.start_operator(Path::new(OPERATOR), &[]).await;
    let ns = "broken";
    c.apply(&namespace_yaml(ns)).await;
    c.apply(&secret_yaml(ns, "creds", "apiKey", "root:Milvus"))
        .await;
    c.apply(&format!(
        r#"apiVersion: zilliz.io/v1alpha1
kind: ZillizCollection
metadata: {{name: docs, namespace: {ns}}}
spec:
  collectionName: docs
  apiVersion: v1
  connection: {{endpoint: "{}", credentialsSecretRef: {{name: creds}}}}
"#,
        raw.uri()
    ))
    .await;
    c.wait_ready(ns, &["zcol/docs"], WAIT).await;

    // the first bytes are a whole success envelope, but the headers promised 64: an operator
    // that read what came and ignored the cut would take it for a success
    raw.set_answer(Answer::CutBody {
        status: 200,
        declared: 64,
        sent: SUCCESS.into(),
        reset: false,
    });
    c.kubectl_ok(&["delete", "--wait=false", "-n", ns, "zcol/docs"])
        .await;
    let cut = drop_retrying_with(&c, ns, "zcol/docs", "cut off").await;
    let cut_error = cut["status"]["deletion"]["lastError"].to_string();

    // the same, ended by a reset (RST) instead of a FIN
    raw.set_answer(Answer::CutBody {
        status: 200,
        declared: 64,
        sent: SUCCESS.into(),
        reset: true,
    });
    let resets_from = raw.requests().len();
    c.eventually("a reset answer served", WAIT, || async {
        raw.requests()[resets_from..]
            .iter()
            .any(|r| r.answer == "reset")
    })
    .await;
    let reset = drop_retrying_with(&c, ns, "zcol/docs", "reset").await;
    let reset_error = reset["status"]["deletion"]["lastError"].to_string();

    // a gateway's HTML pages
    raw.set_answer(Answer::html_error(502));
    drop_retrying_with(&c, ns, "zcol/docs", "HTTP 502").await;
    raw.set_answer(Answer::html_error(504));
    let page = drop_retrying_with(&c, ns, "zcol/docs", "HTTP 504").await;
    let page_error = page["status"]["deletion"]["lastError"].to_string();

    // Milvus answers again: the drop goes through once and the object goes
    raw.set_answer(Answer::json(200, SUCCESS));
    c.wait_gone(ns, &["zcol/docs"], WAIT).await;

    let requests = raw.requests();
    let mut by_answer: BTreeMap<String, usize> = BTreeMap::new();
    for r in requests.iter().filter(|r| r.path == V1_DROP) {
        *by_answer.entry(r.answer.clone()).or_default() += 1;
    }
    println!(
        "broken answers: drop requests by answer {by_answer:?}; last errors: {cut_error} / \
         {reset_error} / {page_error}"
    );
    for label in ["cut", "reset", "html 502", "html 504"] {
        assert!(by_answer.get(label) >= Some(&1), "{label}: {by_answer:?}");
    }
    // one drop answered properly (the only other proper answer was the observation's describe),
    // and it was the last request: nothing after the object could go
    assert_eq!(by_answer.get("json 200"), Some(&1), "{by_answer:?}");
    let last = requests.last().unwrap();
    assert_eq!(
        (
            last.method.as_str(),
            last.path.as_str(),
            last.answer.as_str()
        ),
        ("POST", V1_DROP, "json 200")
    );
    let reasons = c.event_reasons(ns).await;
    assert_eq!(
        reasons.iter().filter(|r| *r == "Dropped").count(),
        1,
        "{reasons:?}"
    );
}
