//! The scale benchmark (`cargo run --release -p zilliz-devkit --bin bench`): N objects of the
//! four kinds against the in-process test API server and the Zilliz fake (with a fixed answer
//! latency), the release `zilliz-operator` binary as a subprocess, then every object deleted at
//! once. It measures, it does not assert: [`run`] answers a [`Report`] that prints as a table
//! and as one `BENCH {json}` line.
//!
//! Phases of one run:
//!
//! 1. API server, CRDs (through the API: `crds/*.yaml`), the Zilliz fake holding N resources,
//!    the Secret and the N objects (created concurrently, **before** the operator starts).
//! 2. The operator starts; the bench waits until every object carries the finalizer and
//!    `Ready=True` (listing), then until the operator is quiet (no reconcile, no fake call, no
//!    Kubernetes request for a second), and counts what the creation phase cost.
//! 3. Every object is deleted at once (concurrent delete calls); a watch per kind timestamps each
//!    object's disappearance (a list confirms the end). Counted from the first delete call.
//!
//! With [`Config::create`] phases 1 and 2 become the creation phase: the operator starts first,
//! the fake holds only some of the resources, and the objects, which say how to create the
//! others, are applied to the running operator (a watch per kind timestamps each first
//! `Ready`); once it is quiet, the bench waits one resync interval and counts its calls.

use crate::{e2e::Cluster, workspace_root, zilliz_fake::ZillizFake};
use futures::{StreamExt, TryStreamExt, stream};
use kube::{
    Api, Client,
    api::{
        ApiResource, DeleteParams, DynamicObject, ListParams, PostParams, WatchEvent, WatchParams,
    },
};
use serde_json::{Value, json};
use std::{
    collections::{BTreeMap, BTreeSet},
    fmt,
    path::PathBuf,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

/// The API key the fake accepts and the Secret holds.
pub const TOKEN: &str = "bench-api-key";
/// Namespace of every object.
pub const NAMESPACE: &str = "default";
/// The Secret every object names.
pub const SECRET: &str = "bench-credentials";
const FINALIZER: &str = "zilliz.io/finalizer";

/// One of the four kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Cluster,
    Collection,
    Partition,
    Index,
}

impl Kind {
    pub const ALL: [Kind; 4] = [
        Kind::Cluster,
        Kind::Collection,
        Kind::Partition,
        Kind::Index,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Kind::Cluster => "cluster",
            Kind::Collection => "collection",
            Kind::Partition => "partition",
            Kind::Index => "index",
        }
    }

    fn kind(self) -> &'static str {
        match self {
            Kind::Cluster => "ZillizCluster",
            Kind::Collection => "ZillizCollection",
            Kind::Partition => "ZillizPartition",
            Kind::Index => "ZillizIndex",
        }
    }

    fn plural(self) -> &'static str {
        match self {
            Kind::Cluster => "zillizclusters",
            Kind::Collection => "zillizcollections",
            Kind::Partition => "zillizpartitions",
            Kind::Index => "zillizindexes",
        }
    }

    fn api_resource(self) -> ApiResource {
        ApiResource {
            group: "zilliz.io".into(),
            version: "v1alpha1".into(),
            api_version: "zilliz.io/v1alpha1".into(),
            kind: self.kind().into(),
            plural: self.plural().into(),
        }
    }

    /// The drop-side calls one object of this kind needs at the least, one after the other.
    fn serial_calls(self) -> u32 {
        match self {
            // a describe (a drop accepted earlier is never sent again), the drop, then
            // describes until DELETED (the fake answers DELETING once)
            Kind::Cluster => 4,
            // release, then drop
            Kind::Partition => 2,
            _ => 1,
        }
    }

    /// The route that creates this kind's resource (`None`: the operator does not create
    /// clusters, it adopts them).
    pub fn create_route(self) -> Option<&'static str> {
        match self {
            Kind::Cluster => None,
            Kind::Collection => Some("POST /v2/vectordb/collections/create"),
            Kind::Partition => Some("POST /v2/vectordb/partitions/create"),
            Kind::Index => Some("POST /v2/vectordb/indexes/create"),
        }
    }

    pub fn parse(s: &str) -> Option<Vec<Kind>> {
        match s {
            "all" => Some(Kind::ALL.to_vec()),
            "cluster" | "clusters" => Some(vec![Kind::Cluster]),
            "collection" | "collections" => Some(vec![Kind::Collection]),
            "partition" | "partitions" => Some(vec![Kind::Partition]),
            "index" | "indexes" => Some(vec![Kind::Index]),
            _ => None,
        }
    }
}

/// What to run.
#[derive(Clone, Debug)]
pub struct Config {
    pub objects: usize,
    pub latency: Duration,
    pub kinds: Vec<Kind>,
    /// `--max-concurrent-reconciles` of the operator (per kind).
    pub concurrency: u16,
    /// Concurrent create calls (and delete calls) of the bench.
    pub client_concurrency: usize,
    /// `--poll-base` of the operator: the first wait between cluster describes after a drop.
    pub poll_base: Duration,
    /// Longest wait for Ready and for the deletion.
    pub timeout: Duration,
    pub operator_bin: PathBuf,
    /// `--control-plane-rps` of the operator, when given (0 turns the limit off).
    pub control_plane_rps: Option<u32>,
    /// `--data-plane-concurrency` of the operator, when given (0 turns the cap off).
    pub data_plane_concurrency: Option<usize>,
    /// Delete with one `deletecollection` call per kind, as the namespace controller does in a
    /// namespace teardown, instead of one delete call per object (`kubectl delete`, a GitOps
    /// prune).
    pub delete_collection: bool,
    /// Every object gets `deletionPolicy: Orphan`: the operator removes its finalizer without
    /// any Zilliz call, so the teardown measures what Kubernetes alone costs on this machine
    /// (the API server, the watches, the finalizer patches, the bench's delete calls).
    pub orphan: bool,
    /// Spread the objects over this many namespaces that look alike, as a Kustomize base
    /// applied once per tenant: the same object and collection names in every namespace, each
    /// tenant in a database of its own on the one Milvus (1: everything in `default`).
    pub tenants: usize,
    /// The operator is stopped once everything is Ready, all objects are deleted while it is
    /// down (they wait on its finalizer), and a new one is started: an upgrade or a failover
    /// in the middle of a teardown. Times then count from its start.
    pub restart: bool,
    /// The creation phase: the operator starts first, with the fake holding only one in
    /// [`EXISTING_EVERY`] of the collections, partitions and indexes the objects name (and
    /// every cluster and every collection a partition or index lives in); the objects carry
    /// what creates the rest (collections a quick setup or a schema, indexes a field, type and
    /// metric) and are applied while it runs. Measures apply → all Ready, create calls per
    /// absent and per existing resource, and what one resync interval after Ready calls.
    pub create: bool,
    /// `--resync-interval` of the operator (the creation phase waits one of them after Ready).
    pub resync_interval: Duration,
}

/// In the creation phase, objects `0, EXISTING_EVERY, 2 × EXISTING_EVERY, …` of each kind find
/// their resource already there (adopted); the others' resources are created.
pub const EXISTING_EVERY: usize = 4;

/// Whether object `i` of a kind finds its resource there before the operator looks.
pub fn pre_exists(cfg_create: bool, kind: Kind, i: usize) -> bool {
    !cfg_create || kind.create_route().is_none() || i.is_multiple_of(EXISTING_EVERY)
}

impl Config {
    /// The operator's flags (after `run`).
    pub fn operator_args(&self) -> Vec<String> {
        [
            "--max-concurrent-reconciles".to_string(),
            self.concurrency.to_string(),
            "--metrics-addr".into(),
            "127.0.0.1:0".into(),
            "--resync-interval".into(),
            duration_flag(self.resync_interval),
            "--backoff-base".into(),
            "200ms".into(),
            "--backoff-cap".into(),
            "2s".into(),
            "--poll-base".into(),
            format!("{}ms", self.poll_base.as_millis()),
            "--poll-cap".into(),
            "1s".into(),
            "--request-timeout".into(),
            "30s".into(),
        ]
        .into_iter()
        .chain(
            self.control_plane_rps
                .into_iter()
                .flat_map(|r| ["--control-plane-rps".to_string(), r.to_string()]),
        )
        .chain(
            self.data_plane_concurrency
                .into_iter()
                .flat_map(|c| ["--data-plane-concurrency".to_string(), c.to_string()]),
        )
        .collect()
    }

    /// Objects per kind: N split evenly, the remainder to the first kinds.
    pub fn split(&self) -> Vec<(Kind, usize)> {
        let k = self.kinds.len().max(1);
        self.kinds
            .iter()
            .enumerate()
            .map(|(i, kind)| (*kind, self.objects / k + usize::from(i < self.objects % k)))
            .collect()
    }
}

/// A duration as the operator's flags take it: `1h`, `10m`, `5s`, else in milliseconds.
fn duration_flag(d: Duration) -> String {
    let secs = d.as_secs();
    match (secs, d.subsec_nanos()) {
        (s, 0) if s > 0 && s % 3600 == 0 => format!("{}h", s / 3600),
        (s, 0) if s > 0 && s % 60 == 0 => format!("{}m", s / 60),
        (s, 0) if s > 0 => format!("{s}s"),
        _ => format!("{}ms", d.as_millis()),
    }
}

/// A `Duration` from `5ms`, `50ms`, `1s`, `2m`, `1h`, `300us` (or a bare number of ms).
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().ok()?;
    let secs = match unit {
        "" | "ms" => n / 1e3,
        "us" | "µs" => n / 1e6,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return None,
    };
    Some(Duration::from_secs_f64(secs))
}

/// CPU seconds (user + system) and resident memory of a process, from `/proc`.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcStats {
    pub cpu_seconds: f64,
    /// VmHWM: the peak resident set so far, in KiB.
    pub peak_rss_kib: u64,
    /// VmRSS now, in KiB.
    pub rss_kib: u64,
    /// RssFile now (pages of the binary and libraries), in KiB: the rest of VmRSS is anonymous
    /// memory (heap, stacks) and shared memory.
    pub rss_file_kib: u64,
}

fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

pub fn proc_stats(pid: u32) -> Option<ProcStats> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // fields after "(comm) ": state is field 3, utime 14, stime 15
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Some(ProcStats {
        cpu_seconds: (utime + stime) / clock_ticks(),
        peak_rss_kib: kib("VmHWM:"),
        rss_kib: kib("VmRSS:"),
        rss_file_kib: kib("RssFile:"),
    })
}

/// The bench's own delete calls (the operator deletes nothing of ours).
fn is_bench_delete(verb_resource: &str) -> bool {
    verb_resource.starts_with("delete ") || verb_resource.starts_with("deletecollection ")
}

/// The bench's own creates of the objects (in the creation phase, while the operator runs; the
/// operator creates no object of these kinds).
fn is_bench_create(verb_resource: &str) -> bool {
    verb_resource.starts_with("create zillizc")
        || verb_resource.starts_with("create zillizpartitions")
        || verb_resource.starts_with("create zillizindexes")
}

/// `METHOD /path` with cluster ids replaced by `{id}`.
pub fn endpoint(method: &str, path: &str) -> String {
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let path = match segs.as_slice() {
        [v, "clusters", _] => format!("/{v}/clusters/{{id}}"),
        [v, "clusters", _, rest @ ..] => format!("/{v}/clusters/{{id}}/{}", rest.join("/")),
        _ => path.to_string(),
    };
    format!("{method} {path}")
}

/// Calls per endpoint.
fn count_calls(calls: &[(String, String, Instant)]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for (m, p, _) in calls {
        *out.entry(endpoint(m, p)).or_insert(0) += 1;
    }
    out
}

/// Per endpoint, the most calls that arrived within one `window` (the fake's answer latency):
/// how many it was serving at once at the peak.
fn peak_concurrency(
    calls: &[(String, String, Instant)],
    window: Duration,
) -> BTreeMap<String, usize> {
    let mut by: BTreeMap<String, Vec<Instant>> = BTreeMap::new();
    for (m, p, t) in calls {
        by.entry(endpoint(m, p)).or_default().push(*t);
    }
    by.into_iter()
        .map(|(k, ts)| (k, peak_within(ts, window)))
        .collect()
}

/// A limit flag as given: the operator's default when not given, `off` for 0.
fn show_limit(given: Option<String>, default: &str) -> String {
    match given.as_deref() {
        None => format!("default {default}"),
        Some("0") => "off".to_string(),
        Some(v) => v.to_string(),
    }
}

/// The most of `times` within one `window`.
fn peak_within(times: impl IntoIterator<Item = Instant>, window: Duration) -> usize {
    let window = window.max(Duration::from_millis(1));
    let mut ts: Vec<Instant> = times.into_iter().collect();
    ts.sort();
    let mut peak = 0;
    let mut lo = 0;
    for hi in 0..ts.len() {
        while ts[hi].duration_since(ts[lo]) >= window {
            lo += 1;
        }
        peak = peak.max(hi - lo + 1);
    }
    peak
}

/// `after - before` of the test server's request counters (zeros left out).
fn diff_counts(
    before: &BTreeMap<String, u64>,
    after: &BTreeMap<String, u64>,
) -> BTreeMap<String, u64> {
    after
        .iter()
        .filter_map(|(k, v)| {
            let d = v - before.get(k).copied().unwrap_or(0);
            (d > 0).then(|| (k.clone(), d))
        })
        .collect()
}

fn is_write(key: &str) -> bool {
    matches!(
        key.split(' ').next(),
        Some("create" | "update" | "patch" | "delete" | "deletecollection")
    )
}

/// `zilliz_operator_reconciles_total` by kind (all results).
fn reconciles(metrics: &str) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for line in metrics.lines() {
        let Some(rest) = line.strip_prefix("zilliz_operator_reconciles_total{") else {
            continue;
        };
        let Some((labels, value)) = rest.split_once("} ") else {
            continue;
        };
        let kind = labels
            .split(',')
            .find_map(|l| l.strip_prefix("kind=\""))
            .map(|k| k.trim_end_matches('"').to_string())
            .unwrap_or_default();
        let v: f64 = value.trim().parse().unwrap_or(0.0);
        *out.entry(kind).or_insert(0) += v as u64;
    }
    out
}

fn sum<V: Copy + std::iter::Sum<V>>(m: &BTreeMap<String, V>) -> V {
    m.values().copied().sum()
}

/// Zilliz calls that change something: creates, drops, releases, loads, alters.
pub fn is_mutating(endpoint: &str) -> bool {
    let last = endpoint.rsplit('/').next().unwrap_or_default();
    matches!(last, "create" | "drop" | "release" | "load") || last.starts_with("alter")
}

/// The create calls of one kind in the creation phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CreateCount {
    pub kind: Kind,
    /// objects whose resource was not there
    pub absent: usize,
    /// objects whose resource was there before the operator looked (adopted)
    pub existing: usize,
    /// create calls naming a resource that was absent
    pub on_absent: usize,
    /// create calls naming a resource that existed
    pub on_existing: usize,
}

/// What one run measured.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub objects: usize,
    pub per_kind: Vec<(Kind, usize)>,
    pub latency: Duration,
    pub concurrency: u16,
    pub poll_base: Duration,
    pub operator_args: Vec<String>,
    pub create_time: Duration,
    /// operator spawn → first call the fake saw (an observe: objects existed before the spawn)
    pub spawn_to_first_call: Option<Duration>,
    /// operator spawn → every object finalized and Ready
    pub spawn_to_ready: Duration,
    /// Zilliz calls per endpoint from the operator's start until it was quiet after Ready
    pub creation_calls: BTreeMap<String, usize>,
    pub creation_k8s: BTreeMap<String, u64>,
    pub creation_reconciles: BTreeMap<String, u64>,
    /// first delete call → last object gone
    pub delete_time: Duration,
    /// first delete call → first drop call at the fake
    pub first_drop_after_delete: Option<Duration>,
    /// last delete call answered, after the first was sent
    pub delete_calls_time: Duration,
    /// first delete call → first delete call of each kind (the bench sends them kind by kind)
    pub first_delete_by_kind: BTreeMap<&'static str, Duration>,
    /// first delete call → last object of each kind gone (seen by the watch)
    pub last_gone_by_kind: BTreeMap<&'static str, Duration>,
    /// The objects had `deletionPolicy: Orphan`: no drops, the Kubernetes floor.
    pub orphan: bool,
    /// namespaces (tenants) the objects were spread over
    pub tenants: usize,
    /// The watches missed deletions, so the end is the list that found nothing left (to 2 s).
    pub end_by_list: bool,
    /// times the bench's watches were resumed after the API server ended them
    pub watch_resumes: usize,
    /// The operator was down during the deletes; deletion times count from its new start.
    pub restart: bool,
    /// The operator's CPU seconds when the deletion phase began (0 for a restarted one).
    pub deletion_cpu_base: f64,
    pub deletion_calls: BTreeMap<String, usize>,
    pub deletion_peak_concurrency: BTreeMap<String, usize>,
    /// The most data plane calls (all of them share the fake's one endpoint) that arrived
    /// within one latency, in the deletion phase: held against `--data-plane-concurrency`.
    pub data_plane_peak: usize,
    /// The most control plane calls that arrived within one second (creation and deletion):
    /// held against `--control-plane-rps`.
    pub control_plane_peak_per_second: usize,
    pub control_plane_rps: Option<u32>,
    pub data_plane_concurrency: Option<usize>,
    /// The bench deleted with one deletecollection call per kind.
    pub delete_collection: bool,
    pub deletion_k8s: BTreeMap<String, u64>,
    pub deletion_reconciles: BTreeMap<String, u64>,
    pub proc_after_ready: ProcStats,
    pub proc_after_delete: ProcStats,
    pub operator_warnings: usize,
    /// distinct WARN/ERROR messages of the operator (without timestamps), with their count
    pub warning_kinds: BTreeMap<String, usize>,
    /// CPU seconds of this process (API server, fake, watches, delete calls) in the deletion
    /// phase: with the operator's, how busy the machine was
    pub bench_cpu_deletion: f64,
    /// The creation phase ran ([`Config::create`]); the fields below are its figures.
    pub create: bool,
    /// first create call of an object → last object finalized and Ready
    pub apply_to_ready: Option<Duration>,
    /// first create call → first create call of each kind (the bench applies kind by kind)
    pub first_apply_by_kind: BTreeMap<&'static str, Duration>,
    /// first create call → last object of each kind Ready (seen by a watch)
    pub last_ready_by_kind: BTreeMap<&'static str, Duration>,
    /// The watches missed a Ready, so the end is the list that found all Ready (to 2 s).
    pub ready_by_list: bool,
    /// create calls per kind, on absent and on existing resources
    pub creates: Vec<CreateCount>,
    /// the operator's `--resync-interval`
    pub resync_interval: Duration,
    /// how long the bench watched after the creation phase was quiet: one resync interval and
    /// its jitter
    pub resync_window: Duration,
    /// Zilliz calls per endpoint in that window
    pub resync_calls: BTreeMap<String, usize>,
    /// Kubernetes requests in that window
    pub resync_k8s: BTreeMap<String, u64>,
}

impl Report {
    /// Reconcilers that may run at once: `--max-concurrent-reconciles` per kind, one controller
    /// per kind in play.
    pub fn allowed(&self) -> usize {
        usize::from(self.concurrency) * self.per_kind.len()
    }

    /// N × latency ÷ allowed concurrency: every object one call, every allowed slot busy all
    /// the time. Per plane, the slowest: clusters (control plane) have `C` reconcilers, paced
    /// to `--control-plane-rps` calls a second when set; the other kinds share the fake's one
    /// data plane endpoint, `C` reconcilers each, at most `--data-plane-concurrency` in flight.
    /// Without limits and with N split evenly this is N × latency ÷ (C × kinds).
    pub fn ideal(&self) -> Duration {
        let c = f64::from(self.concurrency.max(1));
        let lat = self.latency.as_secs_f64();
        let n_cp = self.n_of(Kind::Cluster) as f64;
        let n_dp = self.objects as f64 - n_cp;
        let dp_kinds = self
            .per_kind
            .iter()
            .filter(|(k, _)| *k != Kind::Cluster)
            .count() as f64;
        let cp = match self.control_plane_rps.filter(|r| *r > 0) {
            Some(rps) => (n_cp * lat / c).max(n_cp / f64::from(rps)),
            None => n_cp * lat / c,
        };
        let dp_slots = match self.data_plane_concurrency.filter(|c| *c > 0) {
            Some(cap) => (c * dp_kinds).min(cap as f64),
            None => c * dp_kinds,
        };
        let dp = if n_dp > 0.0 {
            n_dp * lat / dp_slots.max(1.0)
        } else {
            0.0
        };
        Duration::from_secs_f64(cp.max(dp))
    }

    /// The same with the calls one object needs one after the other (partition release + drop;
    /// cluster describe, drop and 2 describes; without the poll waits between them): the
    /// slowest kind.
    pub fn ideal_serial(&self) -> Duration {
        let calls: Vec<(Kind, f64)> = self
            .per_kind
            .iter()
            .map(|(k, n)| (*k, (*n as f64) * f64::from(k.serial_calls())))
            .collect();
        self.ideal_for_calls(&calls)
    }

    /// The time `calls` (all the calls of each kind, made one after the other per object)
    /// take at the fake's latency with every reconciler busy all the time: per kind, its calls
    /// × latency ÷ `--max-concurrent-reconciles` (clusters paced to `--control-plane-rps` when
    /// set; the data plane kinds together at most `--data-plane-concurrency` in flight when
    /// set); the slowest.
    pub fn ideal_for_calls(&self, calls: &[(Kind, f64)]) -> Duration {
        let c = f64::from(self.concurrency.max(1));
        let lat = self.latency.as_secs_f64();
        let per_kind = calls
            .iter()
            .map(
                |(k, n)| match (k, self.control_plane_rps.filter(|r| *r > 0)) {
                    (Kind::Cluster, Some(rps)) => (n * lat / c).max(n / f64::from(rps)),
                    _ => n * lat / c,
                },
            )
            .fold(0.0, f64::max);
        let dp_calls: f64 = calls
            .iter()
            .filter(|(k, _)| *k != Kind::Cluster)
            .map(|(_, n)| n)
            .sum();
        let dp_kinds = calls.iter().filter(|(k, _)| *k != Kind::Cluster).count() as f64;
        let shared = match self.data_plane_concurrency.filter(|c| *c > 0) {
            Some(cap) if dp_kinds > 0.0 => dp_calls * lat / (c * dp_kinds).min(cap as f64),
            _ => 0.0,
        };
        Duration::from_secs_f64(per_kind.max(shared))
    }

    /// The calls each kind needs in the creation phase, one after the other per object: an
    /// observe and a create per absent resource, an observe per existing one.
    fn creation_call_counts(&self) -> Vec<(Kind, f64)> {
        self.per_kind
            .iter()
            .map(|(k, n)| {
                let absent = self
                    .creates
                    .iter()
                    .find(|c| c.kind == *k)
                    .map_or(0, |c| c.absent);
                (*k, (*n + absent) as f64)
            })
            .collect()
    }

    /// The serial ideal of the creation phase (see [`Report::ideal_for_calls`]).
    pub fn creation_ideal(&self) -> Duration {
        self.ideal_for_calls(&self.creation_call_counts())
    }

    /// The serial ideal of one kind's creation calls.
    pub fn creation_kind_ideal(&self, kind: Kind) -> Duration {
        let calls: Vec<(Kind, f64)> = self
            .creation_call_counts()
            .into_iter()
            .filter(|(k, _)| *k == kind)
            .collect();
        self.ideal_for_calls(&calls)
    }

    /// Apply → all Ready, over the serial ideal.
    pub fn creation_ratio(&self) -> Option<f64> {
        self.apply_to_ready
            .map(|d| d.as_secs_f64() / self.creation_ideal().as_secs_f64().max(1e-9))
    }

    /// The kind's first create call → its last object Ready.
    pub fn creation_kind_span(&self, kind: &str) -> Option<Duration> {
        let first = self
            .first_apply_by_kind
            .get(kind)
            .copied()
            .unwrap_or_default();
        self.last_ready_by_kind
            .get(kind)
            .map(|d| d.saturating_sub(first))
    }

    /// The mutating Zilliz calls of the resync window, per endpoint.
    pub fn resync_mutating(&self) -> BTreeMap<String, usize> {
        self.resync_calls
            .iter()
            .filter(|(ep, _)| is_mutating(ep))
            .map(|(ep, n)| (ep.clone(), *n))
            .collect()
    }

    /// Kubernetes writes in the resync window (nobody but the operator writes then).
    pub fn resync_k8s_writes(&self) -> u64 {
        self.resync_k8s
            .iter()
            .filter(|(k, _)| is_write(k))
            .map(|(_, v)| v)
            .sum()
    }

    /// The politeness flags given to the operator, as shown.
    pub fn limits(&self) -> String {
        format!(
            "{} cp rps, {} dp in flight",
            show_limit(self.control_plane_rps.map(|r| r.to_string()), "10"),
            show_limit(self.data_plane_concurrency.map(|c| c.to_string()), "32")
        )
    }

    /// The kind's first delete call → its last object gone.
    pub fn kind_span(&self, kind: &str) -> Duration {
        let first = self
            .first_delete_by_kind
            .get(kind)
            .copied()
            .unwrap_or_default();
        self.last_gone_by_kind
            .get(kind)
            .map(|d| d.saturating_sub(first))
            .unwrap_or_default()
    }

    pub fn ratio(&self) -> f64 {
        self.delete_time.as_secs_f64() / self.ideal().as_secs_f64().max(1e-9)
    }

    fn n_of(&self, kind: Kind) -> usize {
        self.per_kind
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, n)| *n)
            .unwrap_or(0)
    }

    /// Drop calls per object of the kind that makes them (clusters, collections, partitions,
    /// indexes): `(kind, drops, objects)`.
    pub fn drops(&self) -> Vec<(Kind, usize, usize)> {
        self.per_kind
            .iter()
            .map(|(k, n)| {
                let key = match k {
                    Kind::Cluster => "DELETE /v2/clusters/{id}/drop",
                    Kind::Collection => "POST /v2/vectordb/collections/drop",
                    Kind::Partition => "POST /v2/vectordb/partitions/drop",
                    Kind::Index => "POST /v2/vectordb/indexes/drop",
                };
                (*k, self.deletion_calls.get(key).copied().unwrap_or(0), *n)
            })
            .collect()
    }

    pub fn total_drops(&self) -> usize {
        self.drops().iter().map(|(_, d, _)| d).sum()
    }

    /// Kubernetes writes (create/update/patch) the operator made in the deletion phase; the
    /// bench's own delete calls are not in it.
    pub fn deletion_operator_writes(&self) -> u64 {
        self.deletion_k8s
            .iter()
            .filter(|(k, _)| is_write(k) && !is_bench_delete(k))
            .map(|(_, v)| v)
            .sum()
    }

    /// Operator + bench CPU in the deletion phase, per second of it.
    pub fn cores_busy(&self) -> f64 {
        let op = self.proc_after_delete.cpu_seconds - self.deletion_cpu_base;
        (op + self.bench_cpu_deletion) / self.delete_time.as_secs_f64().max(1e-9)
    }

    /// The operator's CPU seconds in the deletion phase per 1,000 drop calls; `None` when it
    /// made none (an Orphan run).
    pub fn cpu_per_1000_drops(&self) -> Option<f64> {
        let cpu = self.proc_after_delete.cpu_seconds - self.deletion_cpu_base;
        let drops = self.total_drops();
        (drops > 0).then(|| cpu * 1000.0 / drops as f64)
    }

    pub fn json(&self) -> Value {
        let ms = |d: Duration| (d.as_secs_f64() * 1e6).round() / 1e3;
        let per_obj = |v: f64| (v / self.objects.max(1) as f64 * 1000.0).round() / 1000.0;
        let mut out = json!({
            "objects": self.objects,
            "per_kind": self.per_kind.iter().map(|(k, n)| (k.label(), *n)).collect::<BTreeMap<_, _>>(),
            "latency_ms": ms(self.latency),
            "concurrency_per_kind": self.concurrency,
            "allowed_concurrency": self.allowed(),
            "poll_base_ms": ms(self.poll_base),
            "create_ms": ms(self.create_time),
            "spawn_to_first_call_ms": self.spawn_to_first_call.map(ms),
            "spawn_to_ready_ms": ms(self.spawn_to_ready),
            "delete_all_ms": ms(self.delete_time),
            "ideal_ms": ms(self.ideal()),
            "ideal_serial_ms": ms(self.ideal_serial()),
            "ratio": (self.ratio() * 100.0).round() / 100.0,
            "delete_calls_ms": ms(self.delete_calls_time),
            "last_gone_ms_by_kind": self.last_gone_by_kind.iter().map(|(k, d)| (*k, ms(*d))).collect::<BTreeMap<_, _>>(),
            "kind_span_ms": self.last_gone_by_kind.keys().map(|k| (*k, ms(self.kind_span(k)))).collect::<BTreeMap<_, _>>(),
            "first_drop_after_delete_ms": self.first_drop_after_delete.map(ms),
            "drops_per_object": self.drops().iter().map(|(k, d, n)| (k.label(), (*d as f64 / (*n).max(1) as f64 * 1000.0).round() / 1000.0)).collect::<BTreeMap<_, _>>(),
            "deletion_calls": self.deletion_calls,
            "deletion_peak_concurrency": self.deletion_peak_concurrency,
            "creation_calls": self.creation_calls,
            "deletion_k8s": self.deletion_k8s,
            "creation_k8s": self.creation_k8s,
            "k8s_writes_per_deleted_object": per_obj(self.deletion_operator_writes() as f64),
            "creation_reconciles_per_object": per_obj(sum(&self.creation_reconciles) as f64),
            "deletion_reconciles_per_object": per_obj(sum(&self.deletion_reconciles) as f64),
            "creation_reconciles": self.creation_reconciles,
            "deletion_reconciles": self.deletion_reconciles,
            "peak_rss_mib": (self.proc_after_delete.peak_rss_kib as f64 / 1024.0 * 10.0).round() / 10.0,
            "rss_after_ready_mib": (self.proc_after_ready.rss_kib as f64 / 1024.0 * 10.0).round() / 10.0,
            "rss_file_after_ready_mib": (self.proc_after_ready.rss_file_kib as f64 / 1024.0 * 10.0).round() / 10.0,
            "cpu_s_total": (self.proc_after_delete.cpu_seconds * 100.0).round() / 100.0,
            "cpu_s_to_ready": (self.proc_after_ready.cpu_seconds * 100.0).round() / 100.0,
            "cpu_s_per_1000_drops": self.cpu_per_1000_drops().map(|c| (c * 1000.0).round() / 1000.0),
            "operator_warnings": self.operator_warnings,
            "operator_warning_kinds": self.warning_kinds,
            "bench_cpu_s_deletion": (self.bench_cpu_deletion * 100.0).round() / 100.0,
            "cores_busy_deletion": (self.cores_busy() * 100.0).round() / 100.0,
            "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            "operator_args": self.operator_args,
        });
        // (a second literal: one json! of every field exceeds the macro recursion limit)
        if let Value::Object(fields) = &mut out {
            fields.extend(
                json!({
                    "control_plane_rps": self.control_plane_rps,
                    "data_plane_concurrency": self.data_plane_concurrency,
                    "delete": if self.delete_collection { "collection" } else { "each" },
                    "deletion_policy": if self.orphan { "Orphan" } else { "Delete" },
                    "tenants": self.tenants,
                    "end_by_list": self.end_by_list,
                    "restart": self.restart,
                    "watch_resumes": self.watch_resumes,
                    "data_plane_peak_in_flight": self.data_plane_peak,
                    "control_plane_peak_per_second": self.control_plane_peak_per_second,
                })
                .as_object()
                .cloned()
                .unwrap_or_default(),
            );
            fields.insert("create".into(), json!(self.create));
            if self.create {
                fields.extend(self.creation_json());
            }
        }
        out
    }

    /// The creation phase's figures, as ratios where there is a target.
    fn creation_json(&self) -> serde_json::Map<String, Value> {
        let ms = |d: Duration| (d.as_secs_f64() * 1e6).round() / 1e3;
        let r3 = |v: f64| (v * 1000.0).round() / 1000.0;
        let ratio = |a: usize, b: usize| (b > 0).then(|| r3(a as f64 / b as f64));
        let by_kind = |f: &dyn Fn(&CreateCount) -> Value| {
            self.creates
                .iter()
                .map(|c| (c.kind.label(), f(c)))
                .collect::<BTreeMap<_, _>>()
        };
        let spans: BTreeMap<&str, Value> = self
            .per_kind
            .iter()
            .map(|(k, _)| {
                let span = self.creation_kind_span(k.label());
                let ideal = self.creation_kind_ideal(*k);
                (
                    k.label(),
                    json!({
                        "span_ms": span.map(ms),
                        "ideal_ms": ms(ideal),
                        "ratio": span.map(|s| (s.as_secs_f64() / ideal.as_secs_f64().max(1e-9) * 100.0).round() / 100.0),
                    }),
                )
            })
            .collect();
        let mutating = self.resync_mutating();
        let resync_total: usize = self.resync_calls.values().sum();
        json!({
            "apply_to_ready_ms": self.apply_to_ready.map(ms),
            "ready_by_list": self.ready_by_list,
            "creation_ideal_serial_ms": ms(self.creation_ideal()),
            "creation_ratio": self.creation_ratio().map(|r| (r * 100.0).round() / 100.0),
            "creation_by_kind": spans,
            "absent": by_kind(&|c| json!(c.absent)),
            "existing": by_kind(&|c| json!(c.existing)),
            "create_calls_per_absent": by_kind(&|c| json!(ratio(c.on_absent, c.absent))),
            "create_calls_per_existing": by_kind(&|c| json!(ratio(c.on_existing, c.existing))),
            "resync_interval_ms": ms(self.resync_interval),
            "resync_window_ms": ms(self.resync_window),
            "resync_calls": self.resync_calls,
            "resync_calls_per_object": r3(resync_total as f64 / self.objects.max(1) as f64),
            "resync_mutating_calls": mutating,
            "resync_mutating_total": mutating.values().sum::<usize>(),
            "resync_k8s_writes": self.resync_k8s_writes(),
            "resync_k8s": self.resync_k8s,
        })
        .as_object()
        .cloned()
        .unwrap_or_default()
    }
}

fn per(n: impl Into<f64>, objects: usize) -> String {
    format!("{:.3}", n.into() / objects.max(1) as f64)
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.objects;
        let kinds: Vec<String> = self
            .per_kind
            .iter()
            .map(|(k, n)| format!("{n} {}", k.label()))
            .collect();
        writeln!(
            f,
            "== {n} objects ({}), fake latency {:?}, --max-concurrent-reconciles {}, --poll-base {:?}",
            kinds.join(", "),
            self.latency,
            self.concurrency,
            self.poll_base
        )?;
        if self.tenants > 1 {
            writeln!(
                f,
                "  {} tenants: namespaces and databases alike, with the same names in each",
                self.tenants
            )?;
        }
        if self.restart {
            writeln!(
                f,
                "  restart: all objects deleted while the operator was down; times from its new start"
            )?;
        }
        if self.orphan {
            writeln!(
                f,
                "  deletionPolicy: Orphan: no Zilliz calls; the teardown is what Kubernetes alone costs here"
            )?;
        }
        writeln!(f, "  {:<58} {:>12}", "figure", "value")?;
        let row = |f: &mut fmt::Formatter<'_>, k: &str, v: String| writeln!(f, "  {k:<58} {v:>12}");
        row(
            f,
            if self.create {
                "create N objects (bench, the operator running)"
            } else {
                "create N objects (bench, before the operator)"
            },
            format!("{:.2?}", self.create_time),
        )?;
        row(
            f,
            "operator spawn -> first Zilliz call (an observe)",
            self.spawn_to_first_call
                .map(|d| format!("{d:.2?}"))
                .unwrap_or("-".into()),
        )?;
        row(
            f,
            "operator spawn -> all finalized and Ready",
            format!("{:.2?}", self.spawn_to_ready),
        )?;
        if self.create {
            self.fmt_creation(f)?;
        }
        row(
            f,
            match (self.restart, self.end_by_list) {
                (false, false) => "DELETE ALL: first delete call -> last object gone",
                (false, true) => {
                    "DELETE ALL: first delete call -> last object gone (by list, to 2 s)"
                }
                (true, false) => "DELETE ALL: operator start -> last object gone",
                (true, true) => "DELETE ALL: operator start -> last object gone (by list, to 2 s)",
            },
            format!("{:.2?}", self.delete_time),
        )?;
        if self.watch_resumes > 0 {
            row(
                f,
                "  the bench's watches resumed after the server ended them",
                self.watch_resumes.to_string(),
            )?;
        }
        row(
            f,
            &format!(
                "  ideal N x latency / allowed (C x {} kinds = {}; limits: {})",
                self.per_kind.len(),
                self.allowed(),
                self.limits()
            ),
            format!("{:.2?}", self.ideal()),
        )?;
        row(
            f,
            "  ratio delete-all / ideal (target <= 1.2)",
            format!("{:.2}", self.ratio()),
        )?;
        row(
            f,
            "  ideal with serial calls per object (slowest kind)",
            format!("{:.2?}", self.ideal_serial()),
        )?;
        row(
            f,
            if self.delete_collection {
                "  the bench's deletecollection calls took"
            } else {
                "  the bench's N delete calls took"
            },
            format!("{:.2?}", self.delete_calls_time),
        )?;
        row(
            f,
            if self.restart {
                "  operator start -> first drop at the fake"
            } else {
                "  first delete call -> first drop at the fake"
            },
            self.first_drop_after_delete
                .map(|d| format!("{d:.2?}"))
                .unwrap_or("-".into()),
        )?;
        for (k, d) in &self.last_gone_by_kind {
            row(
                f,
                &format!("  last {k} gone after (after its kind's first delete)"),
                format!("{d:.2?} ({:.2?})", self.kind_span(k)),
            )?;
        }
        for (k, d, objs) in self.drops() {
            row(
                f,
                &format!("drop calls per {} (target 1.0)", k.label()),
                per(d as f64, objs),
            )?;
        }
        writeln!(
            f,
            "  Zilliz calls in the deletion phase (per deleted object; peak concurrency):"
        )?;
        for (ep, c) in &self.deletion_calls {
            let peak = self.deletion_peak_concurrency.get(ep).copied().unwrap_or(0);
            let objs = if ep.contains("/clusters") {
                self.n_of(Kind::Cluster)
            } else if ep.contains("/partitions/") {
                self.n_of(Kind::Partition)
            } else if ep.contains("/indexes/") {
                self.n_of(Kind::Index)
            } else {
                self.n_of(Kind::Collection)
            };
            row(
                f,
                &format!("  {ep}"),
                format!("{c} ({}/obj, peak {peak})", per(*c as f64, objs)),
            )?;
        }
        row(
            f,
            &format!(
                "  data plane calls in flight at the peak (cap: {})",
                show_limit(self.data_plane_concurrency.map(|c| c.to_string()), "32")
            ),
            self.data_plane_peak.to_string(),
        )?;
        row(
            f,
            &format!(
                "  control plane calls in one second at the peak (limit: {} + burst)",
                show_limit(self.control_plane_rps.map(|r| r.to_string()), "10")
            ),
            self.control_plane_peak_per_second.to_string(),
        )?;
        writeln!(f, "  Zilliz calls in the creation phase (observe):")?;
        for (ep, c) in &self.creation_calls {
            row(f, &format!("  {ep}"), c.to_string())?;
        }
        row(
            f,
            "Kubernetes writes per deleted object (operator; target <= 3)",
            per(self.deletion_operator_writes() as f64, n),
        )?;
        for (k, v) in self.deletion_k8s.iter().filter(|(k, _)| is_write(k)) {
            let by = if is_bench_delete(k) { " (bench)" } else { "" };
            row(
                f,
                &format!("  {k}{by}"),
                format!("{v} ({}/obj)", per(*v as f64, n)),
            )?;
        }
        let reads: u64 = self
            .deletion_k8s
            .iter()
            .filter(|(k, _)| !is_write(k))
            .map(|(_, v)| v)
            .sum();
        row(
            f,
            "Kubernetes reads in the deletion phase (get/list/watch)",
            format!("{reads} ({}/obj)", per(reads as f64, n)),
        )?;
        for (k, v) in self.deletion_k8s.iter().filter(|(k, _)| !is_write(k)) {
            row(f, &format!("  {k}"), v.to_string())?;
        }
        let cw: u64 = self
            .creation_k8s
            .iter()
            .filter(|(k, _)| is_write(k) && !is_bench_create(k))
            .map(|(_, v)| v)
            .sum();
        row(
            f,
            "Kubernetes writes per object, creation phase (operator)",
            per(cw as f64, n),
        )?;
        for (k, v) in self.creation_k8s.iter().filter(|(k, _)| is_write(k)) {
            let by = if is_bench_create(k) { " (bench)" } else { "" };
            row(f, &format!("  {k}{by}"), v.to_string())?;
        }
        row(
            f,
            "reconciles per object, creation phase",
            per(sum(&self.creation_reconciles) as f64, n),
        )?;
        row(
            f,
            "reconciles per object, deletion phase",
            per(sum(&self.deletion_reconciles) as f64, n),
        )?;
        for (k, v) in &self.deletion_reconciles {
            row(f, &format!("  {k}"), v.to_string())?;
        }
        row(
            f,
            "operator peak RSS (VmHWM; target < 64 MiB at 10k)",
            format!(
                "{:.1} MiB",
                self.proc_after_delete.peak_rss_kib as f64 / 1024.0
            ),
        )?;
        row(
            f,
            "operator RSS once Ready (of it mapped files)",
            format!(
                "{:.1} MiB ({:.1} MiB)",
                self.proc_after_ready.rss_kib as f64 / 1024.0,
                self.proc_after_ready.rss_file_kib as f64 / 1024.0
            ),
        )?;
        row(
            f,
            "operator CPU to Ready",
            format!("{:.2} s", self.proc_after_ready.cpu_seconds),
        )?;
        row(
            f,
            "operator CPU per 1,000 drops (deletion phase)",
            self.cpu_per_1000_drops()
                .map_or("n/a (no drops)".into(), |c| format!("{c:.3} s")),
        )?;
        row(
            f,
            "CPU busy in the deletion phase (operator + bench), cores",
            format!(
                "{:.2} of {}",
                self.cores_busy(),
                std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(1)
            ),
        )?;
        row(
            f,
            "operator WARN/ERROR log lines",
            self.operator_warnings.to_string(),
        )?;
        for (m, c) in &self.warning_kinds {
            writeln!(f, "    {c} x {m}")?;
        }
        Ok(())
    }
}

impl Report {
    /// The creation phase's rows.
    fn fmt_creation(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let row = |f: &mut fmt::Formatter<'_>, k: &str, v: String| writeln!(f, "  {k:<58} {v:>12}");
        row(
            f,
            if self.ready_by_list {
                "APPLY -> ALL READY: first create call -> last Ready (by list)"
            } else {
                "APPLY -> ALL READY: first create call -> last object Ready"
            },
            self.apply_to_ready
                .map_or("-".into(), |d| format!("{d:.2?}")),
        )?;
        row(
            f,
            "  serial ideal: observe (+ create if absent) per object",
            format!("{:.2?}", self.creation_ideal()),
        )?;
        row(
            f,
            "  ratio apply-to-ready / serial ideal",
            self.creation_ratio()
                .map_or("-".into(), |r| format!("{r:.2}")),
        )?;
        for (k, _) in &self.per_kind {
            let Some(span) = self.creation_kind_span(k.label()) else {
                continue;
            };
            let ideal = self.creation_kind_ideal(*k);
            row(
                f,
                &format!(
                    "  {} span (its first create call -> last Ready; ideal)",
                    k.label()
                ),
                format!(
                    "{span:.2?} ({ideal:.2?}, {:.2}x)",
                    span.as_secs_f64() / ideal.as_secs_f64().max(1e-9)
                ),
            )?;
        }
        for c in &self.creates {
            row(
                f,
                &format!("create calls per absent {} (target 1.000)", c.kind.label()),
                format!(
                    "{} ({} absent)",
                    per(c.on_absent as f64, c.absent),
                    c.absent
                ),
            )?;
            row(
                f,
                &format!("create calls per existing {} (target 0)", c.kind.label()),
                format!(
                    "{} ({} adopted)",
                    per(c.on_existing as f64, c.existing),
                    c.existing
                ),
            )?;
        }
        let resync_total: usize = self.resync_calls.values().sum();
        row(
            f,
            &format!(
                "resync: Zilliz calls in {:.1?} after Ready (--resync-interval {:?})",
                self.resync_window, self.resync_interval
            ),
            format!(
                "{resync_total} ({}/obj)",
                per(resync_total as f64, self.objects)
            ),
        )?;
        for (ep, c) in &self.resync_calls {
            row(f, &format!("  {ep}"), c.to_string())?;
        }
        let mutating = self.resync_mutating();
        row(
            f,
            "resync: mutating calls (create/drop/release/load/alter; target 0)",
            mutating.values().sum::<usize>().to_string(),
        )?;
        for (ep, c) in &mutating {
            row(f, &format!("  {ep}"), c.to_string())?;
        }
        row(
            f,
            "resync: Kubernetes writes (operator)",
            self.resync_k8s_writes().to_string(),
        )?;
        for (k, v) in self.resync_k8s.iter().filter(|(k, _)| is_write(k)) {
            row(f, &format!("  {k}"), v.to_string())?;
        }
        Ok(())
    }
}

fn err(what: &str) -> impl Fn(kube::Error) -> String + '_ {
    move |e| format!("{what}: {e}")
}

/// Where object `i` of a kind lives: its namespace, its database and its number there.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Slot {
    ns: String,
    db: String,
    /// the number in names: `i` itself with one tenant, else `i` within its tenant
    j: usize,
    /// `i`, which keeps cluster ids unique across tenants
    i: usize,
}

impl Slot {
    fn of(i: usize, tenants: usize) -> Slot {
        if tenants <= 1 {
            return Slot {
                ns: NAMESPACE.into(),
                db: "default".into(),
                j: i,
                i,
            };
        }
        let t = i % tenants;
        Slot {
            ns: format!("tenant-{t:04}"),
            db: format!("tenant_{t:04}"),
            j: i / tenants,
            i,
        }
    }
}

/// Object `slot` of `kind`; with `create`, its spec also says how to create its resource:
/// collections a quick setup (even numbers) or a custom schema (odd), both describing as the
/// fake's [`ZillizFake::add_collection`] does; indexes the field, type and metric the fake's
/// [`ZillizFake::add_index`] gives (so that an adopted one matches); partitions their name.
fn object_json(kind: Kind, slot: &Slot, fake: &str, orphan: bool, create: bool) -> (String, Value) {
    let Slot { ns, db, j, i } = slot;
    let name = format!("bench-{}-{j:05}", kind.label());
    let creds = json!({"name": SECRET, "key": "apiKey"});
    let connection = json!({"endpoint": fake, "credentialsSecretRef": creds});
    let mut spec = match kind {
        Kind::Cluster => json!({
            "clusterId": format!("in01-bench{i:05}"),
            "controlPlane": {"apiVersion": "v2", "baseUrl": fake},
            "credentialsSecretRef": creds,
        }),
        Kind::Collection => json!({
            "collectionName": format!("coll_{j:05}"),
            "dbName": db,
            "connection": connection,
        }),
        // partitions and indexes live in collections of their own, which no object names
        Kind::Partition => json!({
            "partitionName": format!("p_{j:05}"),
            "collectionName": format!("pcoll_{j:05}"),
            "dbName": db,
            "connection": connection,
        }),
        Kind::Index => json!({
            "indexName": "vector_idx",
            "collectionName": format!("icoll_{j:05}"),
            "dbName": db,
            "connection": connection,
        }),
    };
    if orphan {
        spec["deletionPolicy"] = json!("Orphan");
    }
    if create {
        match kind {
            Kind::Collection if j % 2 == 0 => {
                spec["quickSetup"] = json!({"dimension": 4});
            }
            Kind::Collection => {
                spec["schema"] = json!({
                    "autoId": false,
                    "enableDynamicField": true,
                    "fields": [
                        {"name": "id", "dataType": "Int64", "isPrimary": true},
                        {"name": "vector", "dataType": "FloatVector", "dim": 4},
                    ],
                });
            }
            Kind::Index => {
                spec["fieldName"] = json!("vector");
                spec["indexType"] = json!("AUTOINDEX");
                spec["metricType"] = json!("L2");
            }
            Kind::Cluster | Kind::Partition => {}
        }
    }
    let obj = json!({
        "apiVersion": "zilliz.io/v1alpha1",
        "kind": kind.kind(),
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    });
    (name, obj)
}

/// What the fake holds for object `slot` of `kind` before the operator looks: the collection a
/// partition or index lives in always, the resource itself when `exists`.
fn seed(fake: &ZillizFake, kind: Kind, slot: &Slot, exists: bool) {
    let Slot { db, j, i, .. } = slot;
    if db != "default" {
        fake.add_database(db);
    }
    match kind {
        Kind::Cluster => fake.add_cluster(&format!("in01-bench{i:05}")),
        Kind::Collection => {
            if exists {
                fake.add_collection(db, &format!("coll_{j:05}"), false)
            }
        }
        Kind::Partition => {
            let coll = format!("pcoll_{j:05}");
            fake.add_collection(db, &coll, true);
            if exists {
                fake.add_partition(db, &coll, &format!("p_{j:05}"), true);
            }
        }
        Kind::Index => {
            let coll = format!("icoll_{j:05}");
            fake.add_collection(db, &coll, false);
            if exists {
                fake.add_index(db, &coll, "vector_idx");
            }
        }
    }
}

/// The resource a create call's body names: database, collection, and the partition's or the
/// index's name (empty for a collection).
fn created_resource(body: &Value) -> (String, String, String) {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let db = body["dbName"]
        .as_str()
        .filter(|d| !d.is_empty())
        .unwrap_or("default")
        .to_string();
    let name = if body.get("partitionName").is_some() {
        text(&body["partitionName"])
    } else {
        text(&body["indexParams"][0]["indexName"])
    };
    (db, text(&body["collectionName"]), name)
}

/// The resource object `slot` of `kind` names, as [`created_resource`] reads it from a create.
fn resource_of(kind: Kind, slot: &Slot) -> (String, String, String) {
    let Slot { db, j, .. } = slot;
    match kind {
        Kind::Cluster => (
            String::new(),
            format!("in01-bench{:05}", slot.i),
            String::new(),
        ),
        Kind::Collection => (db.clone(), format!("coll_{j:05}"), String::new()),
        Kind::Partition => (db.clone(), format!("pcoll_{j:05}"), format!("p_{j:05}")),
        Kind::Index => (db.clone(), format!("icoll_{j:05}"), "vector_idx".into()),
    }
}

/// `crds/*.yaml` through the apiextensions API, then waits until each kind can be listed.
async fn install_crds(client: &Client, kinds: &[Kind]) -> Result<(), String> {
    let ar = ApiResource {
        group: "apiextensions.k8s.io".into(),
        version: "v1".into(),
        api_version: "apiextensions.k8s.io/v1".into(),
        kind: "CustomResourceDefinition".into(),
        plural: "customresourcedefinitions".into(),
    };
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
    let dir = workspace_root().join("crds");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    for file in files {
        let text =
            std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        for doc in text.split("\n---") {
            let v: Value =
                serde_yaml::from_str(doc).map_err(|e| format!("{}: {e}", file.display()))?;
            if v.is_null() {
                continue;
            }
            let crd: DynamicObject =
                serde_json::from_value(v).map_err(|e| format!("{}: {e}", file.display()))?;
            api.create(&PostParams::default(), &crd)
                .await
                .map_err(err("create CRD"))?;
        }
    }
    for kind in kinds {
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &kind.api_resource());
        let start = Instant::now();
        while api.list(&ListParams::default().limit(1)).await.is_err() {
            if start.elapsed() > Duration::from_secs(30) {
                return Err(format!("the CRD of {} is not served", kind.kind()));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    Ok(())
}

fn is_ready(o: &DynamicObject) -> bool {
    let finalized = o
        .metadata
        .finalizers
        .as_ref()
        .is_some_and(|f| f.iter().any(|f| f == FINALIZER));
    let ready = o.data["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    });
    finalized && ready
}

/// Objects of the kinds in play that are finalized and Ready, and how many exist (in every
/// namespace: the API server holds nothing else of these kinds).
async fn count_ready(client: &Client, kinds: &[Kind]) -> Result<(usize, usize), String> {
    let mut ready = 0;
    let mut all = 0;
    for kind in kinds {
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &kind.api_resource());
        let list = api
            .list(&ListParams::default())
            .await
            .map_err(err("list"))?;
        all += list.items.len();
        ready += list.items.iter().filter(|o| is_ready(o)).count();
    }
    Ok((ready, all))
}

type Events = futures::stream::BoxStream<'static, kube::Result<WatchEvent<DynamicObject>>>;

/// A watch of `kind` from now on: its API, the resourceVersion it starts at, its events.
async fn watch_from_now(
    client: &Client,
    kind: Kind,
) -> Result<(Api<DynamicObject>, String, Events), String> {
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &kind.api_resource());
    let rv = api
        .list(&ListParams::default().limit(1))
        .await
        .map_err(err("list"))?
        .metadata
        .resource_version
        .unwrap_or_default();
    let events = api
        .watch(&WatchParams::default().timeout(290), &rv)
        .await
        .map_err(err("watch"))?
        .boxed();
    Ok((api, rv, events))
}

/// Hands every event of a watch to `on`. A watch the API server ends (a burst of events it
/// could not hand over fast enough, as the real one ends a slow watcher) is resumed from the
/// last resourceVersion seen, so a deletecollection burst is timed by the watch too, not by the
/// 2-second list that backs it up.
async fn follow(
    (api, mut rv, mut events): (Api<DynamicObject>, String, Events),
    resumes: Arc<AtomicUsize>,
    mut on: impl FnMut(&WatchEvent<DynamicObject>) + Send,
) {
    loop {
        while let Some(Ok(ev)) = events.next().await {
            on(&ev);
            let seen = match ev {
                WatchEvent::Deleted(o) | WatchEvent::Added(o) | WatchEvent::Modified(o) => {
                    o.metadata.resource_version
                }
                WatchEvent::Bookmark(b) => Some(b.metadata.resource_version),
                // 410 Gone and the like: the list every 2 s takes over
                WatchEvent::Error(_) => return,
            };
            if let Some(seen) = seen {
                rv = seen;
            }
        }
        if resumes.fetch_add(1, Ordering::Relaxed) > 1000 {
            return;
        }
        match api.watch(&WatchParams::default().timeout(290), &rv).await {
            Ok(stream) => events = stream.boxed(),
            Err(_) => return,
        }
    }
}

/// Timestamps each deletion of `kind`.
async fn watch_deletions(
    watch: (Api<DynamicObject>, String, Events),
    kind: Kind,
    gone: Arc<Mutex<Vec<(Kind, Instant)>>>,
    resumes: Arc<AtomicUsize>,
) {
    follow(watch, resumes, move |ev| {
        if let WatchEvent::Deleted(_) = ev {
            gone.lock().unwrap().push((kind, Instant::now()));
        }
    })
    .await
}

/// The objects seen Ready (`namespace/name`), and each one's kind and time, in order.
type ReadySeen = Arc<Mutex<(BTreeSet<String>, Vec<(Kind, Instant)>)>>;

/// Timestamps the first time each object of `kind` is seen finalized and Ready.
async fn watch_ready(
    watch: (Api<DynamicObject>, String, Events),
    kind: Kind,
    ready: ReadySeen,
    resumes: Arc<AtomicUsize>,
) {
    follow(watch, resumes, move |ev| {
        if let WatchEvent::Added(o) | WatchEvent::Modified(o) = ev
            && is_ready(o)
        {
            let key = format!(
                "{}/{}",
                o.metadata.namespace.as_deref().unwrap_or_default(),
                o.metadata.name.as_deref().unwrap_or_default()
            );
            let mut r = ready.lock().unwrap();
            if r.0.insert(key) {
                r.1.push((kind, Instant::now()));
            }
        }
    })
    .await
}

/// One run of the benchmark.
pub async fn run(cfg: &Config) -> Result<Report, String> {
    let per_kind = cfg.split();
    let kinds: Vec<Kind> = per_kind.iter().map(|(k, _)| *k).collect();
    let cluster = Cluster::start_empty().await;
    let url = cluster
        .server
        .url()
        .parse()
        .map_err(|e| format!("server url: {e}"))?;
    let client = Client::try_from(kube::Config::new(url)).map_err(err("kube client"))?;
    install_crds(&client, &kinds).await?;

    let fake = ZillizFake::start(TOKEN).await;
    fake.set_latency(cfg.latency);
    let fake_uri = fake.uri();

    // the tenants' namespaces, each with the Secret
    let namespaces: Vec<String> = (0..cfg.tenants.max(1))
        .map(|t| Slot::of(t, cfg.tenants).ns)
        .collect();
    let core = |kind: &str, plural: &str| ApiResource {
        group: String::new(),
        version: "v1".into(),
        api_version: "v1".into(),
        kind: kind.into(),
        plural: plural.into(),
    };
    let ns_api: Api<DynamicObject> =
        Api::all_with(client.clone(), &core("Namespace", "namespaces"));
    stream::iter(namespaces.iter().map(|ns| {
        let ns_api = ns_api.clone();
        let secrets: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), ns, &core("Secret", "secrets"));
        async move {
            if ns != NAMESPACE {
                let namespace: DynamicObject = serde_json::from_value(json!({
                    "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns},
                }))
                .map_err(|e| e.to_string())?;
                ns_api
                    .create(&PostParams::default(), &namespace)
                    .await
                    .map_err(err("create Namespace"))?;
            }
            let secret: DynamicObject = serde_json::from_value(json!({
                "apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": SECRET, "namespace": ns},
                "type": "Opaque",
                "stringData": {"apiKey": TOKEN},
            }))
            .map_err(|e| e.to_string())?;
            secrets
                .create(&PostParams::default(), &secret)
                .await
                .map_err(err("create Secret"))
        }
    }))
    .buffer_unordered(cfg.client_concurrency.max(1))
    .try_collect::<Vec<_>>()
    .await?;

    // 1. the N objects (in the creation phase: the operator is running first); the fake holds
    // their resources (in the creation phase: one in EXISTING_EVERY, see `pre_exists`)
    let mut todo = Vec::new();
    let mut existing = BTreeSet::new();
    let mut creates = Vec::new();
    for (kind, n) in &per_kind {
        let mut count = CreateCount {
            kind: *kind,
            absent: 0,
            existing: 0,
            on_absent: 0,
            on_existing: 0,
        };
        for i in 0..*n {
            let slot = Slot::of(i, cfg.tenants);
            let exists = pre_exists(cfg.create, *kind, i);
            seed(&fake, *kind, &slot, exists);
            if exists {
                count.existing += 1;
                existing.insert(resource_of(*kind, &slot));
            } else {
                count.absent += 1;
            }
            let (name, obj) = object_json(*kind, &slot, &fake_uri, cfg.orphan, cfg.create);
            let obj: DynamicObject = serde_json::from_value(obj).map_err(|e| e.to_string())?;
            todo.push((*kind, slot.ns, name, obj));
        }
        if kind.create_route().is_some() {
            creates.push(count);
        }
    }
    let apply = |t0: Instant| {
        let client = &client;
        stream::iter(todo.iter().map(move |(kind, ns, _, obj)| {
            let api: Api<DynamicObject> =
                Api::namespaced_with(client.clone(), ns, &kind.api_resource());
            async move {
                let sent = t0.elapsed();
                api.create(&PostParams::default(), obj)
                    .await
                    .map(|_| (kind.label(), sent))
            }
        }))
        .buffer_unordered(cfg.client_concurrency.max(1))
        .try_collect::<Vec<(&'static str, Duration)>>()
    };
    let mut create_time = Duration::ZERO;
    if !cfg.create {
        let started = Instant::now();
        apply(started).await.map_err(err("create object"))?;
        create_time = started.elapsed();
    }

    // 2. the operator, until everything is Ready and it is quiet
    let k8s_0 = cluster.server.request_counts();
    let fake_0 = fake.total_calls();
    let args = cfg.operator_args();
    let arg_refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let rust_log = std::env::var("BENCH_RUST_LOG").unwrap_or_else(|_| "info".into());
    let spawn = |name: &str| {
        cluster.spawn_operator(
            &cfg.operator_bin,
            name,
            &arg_refs,
            &[("RUST_LOG", &rust_log), ("LOG_FORMAT", "json")],
        )
    };
    let spawned = Instant::now();
    let mut op = spawn("operator");
    let pid = op.pid().ok_or("the operator exited at once")?;
    op.addr().await;
    let resumes: Arc<AtomicUsize> = Arc::default();
    // (creation phase) the objects are applied to the running operator; a watch per kind
    // timestamps each object's first Ready
    let mut apply_to_ready = None;
    let mut first_apply_by_kind: BTreeMap<&'static str, Duration> = BTreeMap::new();
    let mut last_ready_by_kind: BTreeMap<&'static str, Duration> = BTreeMap::new();
    let mut ready_by_list = false;
    if cfg.create {
        if let Some(why) = op.readyz_within(Duration::from_secs(60)).await {
            return Err(why);
        }
        let ready: ReadySeen = Arc::default();
        let mut watches = Vec::new();
        for kind in &kinds {
            let watch = watch_from_now(&client, *kind).await?;
            watches.push(tokio::spawn(watch_ready(
                watch,
                *kind,
                ready.clone(),
                resumes.clone(),
            )));
        }
        let t_apply = Instant::now();
        let sent = apply(t_apply).await.map_err(err("create object"))?;
        create_time = t_apply.elapsed();
        for (kind, at) in sent {
            let e = first_apply_by_kind.entry(kind).or_insert(at);
            *e = (*e).min(at);
        }
        let mut last_list = Instant::now();
        let end = loop {
            {
                let r = ready.lock().unwrap();
                if r.1.len() >= cfg.objects {
                    break r.1.iter().map(|(_, t)| *t).max().unwrap_or(t_apply);
                }
            }
            if last_list.elapsed() > Duration::from_secs(2) {
                last_list = Instant::now();
                let (ready, _) = count_ready(&client, &kinds).await?;
                if ready == cfg.objects {
                    // the watches missed some: the list says when, to 2 s
                    ready_by_list = true;
                    break Instant::now();
                }
            }
            if spawned.elapsed() > cfg.timeout {
                let (ready, all) = count_ready(&client, &kinds).await?;
                return Err(format!(
                    "only {ready} of {all} objects Ready after {:?}\n{}",
                    cfg.timeout,
                    op.log_tail()
                ));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        apply_to_ready = Some(end.saturating_duration_since(t_apply));
        for (kind, t) in ready.lock().unwrap().1.iter() {
            let d = t.saturating_duration_since(t_apply);
            let e = last_ready_by_kind.entry(kind.label()).or_insert(d);
            *e = (*e).max(d);
        }
        for w in watches {
            w.abort();
        }
    }
    loop {
        let (ready, all) = count_ready(&client, &kinds).await?;
        if ready == cfg.objects {
            break;
        }
        if spawned.elapsed() > cfg.timeout {
            return Err(format!(
                "only {ready} of {all} objects Ready after {:?}\n{}",
                cfg.timeout,
                op.log_tail()
            ));
        }
        tokio::time::sleep(Duration::from_millis(if cfg.objects > 2000 {
            500
        } else {
            100
        }))
        .await;
    }
    let spawn_to_ready = spawned.elapsed();
    let spawn_to_first_call = fake
        .timed_calls(fake_0)
        .first()
        .map(|(_, _, t)| t.saturating_duration_since(spawned));
    // quiet: no reconcile, no Zilliz call, no operator request for one second
    let mut last = (reconciles(&op.http("/metrics").await.1), fake.total_calls());
    let mut quiet_since = Instant::now();
    while quiet_since.elapsed() < Duration::from_secs(1) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = (reconciles(&op.http("/metrics").await.1), fake.total_calls());
        if now != last {
            last = now;
            quiet_since = Instant::now();
        }
        if spawned.elapsed() > cfg.timeout {
            return Err(format!(
                "the operator never went quiet after Ready (Ready after {spawn_to_ready:?}; reconciles {:?}, Zilliz calls {})\n{}",
                last.0,
                last.1,
                op.log_tail()
            ));
        }
    }
    let creation_reconciles = last.0.clone();
    let fake_1 = fake.total_calls();
    let creation_calls = count_calls(&fake.timed_calls(fake_0)[..fake_1 - fake_0]);
    let k8s_1 = cluster.server.request_counts();
    let creation_k8s = diff_counts(&k8s_0, &k8s_1);
    let proc_after_ready = proc_stats(pid).unwrap_or_default();
    // create calls, on the resources that were absent and on those that existed
    for call in fake.call_log(fake_0).iter().take(fake_1 - fake_0) {
        let route = endpoint(&call.method, &call.path);
        let Some(count) = creates
            .iter_mut()
            .find(|c| c.kind.create_route() == Some(route.as_str()))
        else {
            continue;
        };
        if existing.contains(&created_resource(&call.body)) {
            count.on_existing += 1;
        } else {
            count.on_absent += 1;
        }
    }
    // (creation phase) one resync interval and its jitter, plus a second: every object has
    // been observed again by then
    let mut resync_window = Duration::ZERO;
    let mut resync_calls = BTreeMap::new();
    let mut resync_k8s = BTreeMap::new();
    if cfg.create {
        let started = Instant::now();
        tokio::time::sleep(cfg.resync_interval.mul_f64(1.1) + Duration::from_secs(1)).await;
        resync_window = started.elapsed();
        resync_calls = count_calls(&fake.timed_calls(fake_1));
        resync_k8s = diff_counts(&k8s_1, &cluster.server.request_counts());
    }

    // (--restart) the operator goes down; its log is kept for the warnings
    let mut earlier_log = String::new();
    if cfg.restart {
        op.sigterm();
        if op.exit_within(Duration::from_secs(30)).await.is_none() {
            return Err(format!(
                "the operator did not stop within 30 s\n{}",
                op.log_tail()
            ));
        }
        earlier_log = op.log();
    }

    // 3. delete everything at once; a watch per kind timestamps each disappearance
    let gone: Arc<Mutex<Vec<(Kind, Instant)>>> = Arc::default();
    let mut watches = Vec::new();
    for kind in &kinds {
        let watch = watch_from_now(&client, *kind).await?;
        watches.push(tokio::spawn(watch_deletions(
            watch,
            *kind,
            gone.clone(),
            resumes.clone(),
        )));
    }
    let k8s_2 = cluster.server.request_counts();
    let fake_2 = fake.total_calls();
    let metrics_2 = if cfg.restart {
        BTreeMap::new()
    } else {
        reconciles(&op.http("/metrics").await.1)
    };
    let bench_cpu_0 = proc_stats(std::process::id()).unwrap_or_default();
    let cpu_before_delete = if cfg.restart {
        proc_after_ready.cpu_seconds
    } else {
        proc_stats(pid).unwrap_or_default().cpu_seconds
    };
    let mut t0 = Instant::now();
    // (kind, when its delete call was sent): the bench sends the kinds one after the other
    let sent: Vec<(&'static str, Duration)> = if cfg.delete_collection {
        let calls: Vec<(Kind, &String)> = kinds
            .iter()
            .flat_map(|kind| namespaces.iter().map(move |ns| (*kind, ns)))
            .collect();
        stream::iter(calls.into_iter().map(|(kind, ns)| {
            let api: Api<DynamicObject> =
                Api::namespaced_with(client.clone(), ns, &kind.api_resource());
            async move {
                let sent = t0.elapsed();
                api.delete_collection(&DeleteParams::default(), &ListParams::default())
                    .await
                    .map(|_| (kind.label(), sent))
            }
        }))
        .buffer_unordered(cfg.client_concurrency.max(1))
        .try_collect()
        .await
        .map_err(err("deletecollection"))?
    } else {
        stream::iter(todo.iter().map(|(kind, ns, name, _)| {
            let api: Api<DynamicObject> =
                Api::namespaced_with(client.clone(), ns, &kind.api_resource());
            async move {
                let sent = t0.elapsed();
                api.delete(name, &DeleteParams::default())
                    .await
                    .map(|_| (kind.label(), sent))
            }
        }))
        .buffer_unordered(cfg.client_concurrency.max(1))
        .try_collect()
        .await
        .map_err(err("delete object"))?
    };
    let delete_calls_time = t0.elapsed();
    let mut first_delete_by_kind: BTreeMap<&'static str, Duration> = BTreeMap::new();
    for (kind, at) in sent {
        let e = first_delete_by_kind.entry(kind).or_insert(at);
        *e = (*e).min(at);
    }
    // (--restart) every object now waits on the finalizer; the new operator's start is t0
    let mut cpu_base = cpu_before_delete;
    let mut pid = pid;
    if cfg.restart {
        first_delete_by_kind.clear();
        t0 = Instant::now();
        op = spawn("operator-restarted");
        pid = op.pid().ok_or("the restarted operator exited at once")?;
        op.addr().await;
        cpu_base = 0.0;
    }
    let mut last_list = Instant::now();
    let (end, end_by_list) = loop {
        let seen = gone.lock().unwrap().len();
        if seen >= cfg.objects {
            let last = gone.lock().unwrap().iter().map(|(_, t)| *t).max();
            break (last.unwrap_or(t0), false);
        }
        if last_list.elapsed() > Duration::from_secs(2) {
            last_list = Instant::now();
            let (_, left) = count_ready(&client, &kinds).await?;
            if left == 0 {
                // the watch missed some: the list says when, to 2 s
                break (Instant::now(), true);
            }
        }
        if t0.elapsed() > cfg.timeout {
            return Err(format!(
                "{} of {} objects still there after {:?}\n{}",
                cfg.objects - seen,
                cfg.objects,
                cfg.timeout,
                op.log_tail()
            ));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let delete_time = end.saturating_duration_since(t0);
    let mut last_gone_by_kind = BTreeMap::new();
    for (kind, t) in gone.lock().unwrap().iter() {
        let d = t.saturating_duration_since(t0);
        let e = last_gone_by_kind.entry(kind.label()).or_insert(d);
        *e = (*e).max(d);
    }
    let (_, left) = count_ready(&client, &kinds).await?;
    if left != 0 {
        return Err(format!(
            "{left} objects left after the watch saw them all go"
        ));
    }
    // the operator finishes its last reconciles (metrics) after the objects are gone
    tokio::time::sleep(Duration::from_millis(300)).await;
    let proc_after_delete = proc_stats(pid).unwrap_or_default();
    let bench_cpu_deletion = proc_stats(std::process::id())
        .unwrap_or_default()
        .cpu_seconds
        - bench_cpu_0.cpu_seconds;
    let metrics_3 = reconciles(&op.http("/metrics").await.1);
    let deletion_reconciles: BTreeMap<String, u64> = metrics_3
        .iter()
        .map(|(k, v)| (k.clone(), v - metrics_2.get(k).copied().unwrap_or(0)))
        .filter(|(_, v)| *v > 0)
        .collect();
    let del_calls = fake.timed_calls(fake_2);
    let first_drop_after_delete = del_calls
        .iter()
        .find(|(_, p, _)| p.ends_with("/drop"))
        .map(|(_, _, t)| t.saturating_duration_since(t0));
    let deletion_calls = count_calls(&del_calls);
    let deletion_peak_concurrency = peak_concurrency(&del_calls, cfg.latency);
    let is_control_plane = |path: &str| path.contains("/clusters");
    let data_plane_peak = peak_within(
        del_calls
            .iter()
            .filter(|(_, p, _)| !is_control_plane(p))
            .map(|(_, _, t)| *t),
        cfg.latency,
    );
    let control_plane_peak_per_second = peak_within(
        fake.timed_calls(0)
            .iter()
            .filter(|(_, p, _)| is_control_plane(p))
            .map(|(_, _, t)| *t),
        Duration::from_secs(1),
    );
    let k8s_3 = cluster.server.request_counts();
    let deletion_k8s = diff_counts(&k8s_2, &k8s_3);
    for w in watches {
        w.abort();
    }
    let log = earlier_log + &op.log();
    if let Some(path) = std::env::var_os("BENCH_OPERATOR_LOG") {
        std::fs::write(&path, &log).map_err(|e| format!("writing the operator log: {e}"))?;
    }
    let warnings: Vec<Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["level"] == "WARN" || v["level"] == "ERROR")
        .collect();
    let operator_warnings = warnings.len();
    let mut warning_kinds = BTreeMap::new();
    for w in warnings {
        // the message and its error, numbers masked: the shape, not the instance
        let shape: String = format!(
            "{} {}: {}",
            w["level"].as_str().unwrap_or_default(),
            w["message"].as_str().unwrap_or_default(),
            w["error"].as_str().unwrap_or_default()
        )
        .chars()
        .map(|c| if c.is_ascii_digit() { '#' } else { c })
        .take(240)
        .collect();
        *warning_kinds.entry(shape).or_insert(0) += 1;
    }
    op.sigterm();
    if op.exit_within(Duration::from_secs(10)).await.is_none() {
        op.kill();
    }
    Ok(Report {
        objects: cfg.objects,
        per_kind,
        latency: cfg.latency,
        concurrency: cfg.concurrency,
        poll_base: cfg.poll_base,
        operator_args: args,
        create_time,
        spawn_to_first_call,
        spawn_to_ready,
        creation_calls,
        creation_k8s,
        creation_reconciles,
        delete_time,
        first_drop_after_delete,
        delete_calls_time,
        first_delete_by_kind,
        last_gone_by_kind,
        orphan: cfg.orphan,
        tenants: cfg.tenants.max(1),
        end_by_list,
        watch_resumes: resumes.load(Ordering::Relaxed),
        restart: cfg.restart,
        deletion_cpu_base: cpu_base,
        deletion_calls,
        deletion_peak_concurrency,
        data_plane_peak,
        control_plane_peak_per_second,
        control_plane_rps: cfg.control_plane_rps,
        data_plane_concurrency: cfg.data_plane_concurrency,
        delete_collection: cfg.delete_collection,
        deletion_k8s,
        deletion_reconciles,
        proc_after_ready,
        proc_after_delete,
        operator_warnings,
        warning_kinds,
        bench_cpu_deletion,
        create: cfg.create,
        apply_to_ready,
        first_apply_by_kind,
        last_ready_by_kind,
        ready_by_list,
        creates,
        resync_interval: cfg.resync_interval,
        resync_window,
        resync_calls,
        resync_k8s,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("5ms"), Some(Duration::from_millis(5)));
        assert_eq!(parse_duration("50"), Some(Duration::from_millis(50)));
        assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("5 parsecs"), None);
    }

    #[test]
    fn endpoints_hide_cluster_ids() {
        assert_eq!(
            endpoint("GET", "/v2/clusters/in01-x"),
            "GET /v2/clusters/{id}"
        );
        assert_eq!(
            endpoint("DELETE", "/v2/clusters/in01-x/drop"),
            "DELETE /v2/clusters/{id}/drop"
        );
        assert_eq!(endpoint("GET", "/v2/clusters"), "GET /v2/clusters");
        assert_eq!(
            endpoint("POST", "/v2/vectordb/collections/drop"),
            "POST /v2/vectordb/collections/drop"
        );
    }

    #[test]
    fn peak_concurrency_counts_calls_within_one_latency() {
        let t = Instant::now();
        let ms = Duration::from_millis;
        let calls: Vec<(String, String, Instant)> = [0, 1, 2, 10, 11]
            .iter()
            .map(|o| ("POST".to_string(), "/x".to_string(), t + ms(*o)))
            .collect();
        assert_eq!(peak_concurrency(&calls, ms(5))["POST /x"], 3);
        assert_eq!(peak_concurrency(&calls, ms(20))["POST /x"], 5);
    }

    #[test]
    fn orphan_objects_name_the_policy_and_the_rest_default_to_delete() {
        let slot = Slot::of(7, 1);
        for kind in Kind::ALL {
            let (_, obj) = object_json(kind, &slot, "http://fake", true, false);
            assert_eq!(obj["spec"]["deletionPolicy"], "Orphan", "{kind:?}");
            let (_, obj) = object_json(kind, &slot, "http://fake", false, false);
            assert!(obj["spec"].get("deletionPolicy").is_none(), "{kind:?}");
        }
    }

    #[test]
    fn tenants_repeat_names_in_namespaces_and_databases_of_their_own() {
        assert_eq!(Slot::of(7, 1).ns, NAMESPACE);
        let (a, b) = (Slot::of(3, 10), Slot::of(13, 10));
        assert_eq!(
            (a.ns.as_str(), b.ns.as_str()),
            ("tenant-0003", "tenant-0003")
        );
        assert_eq!((a.j, b.j), (0, 1));
        let c = Slot::of(4, 10);
        for kind in Kind::ALL {
            let (name_a, obj_a) = object_json(kind, &a, "http://fake", false, false);
            let (name_c, obj_c) = object_json(kind, &c, "http://fake", false, false);
            // the same names in two tenants, in two namespaces and two databases
            assert_eq!(name_a, name_c, "{kind:?}");
            assert_ne!(
                obj_a["metadata"]["namespace"],
                obj_c["metadata"]["namespace"]
            );
            if kind == Kind::Cluster {
                assert_ne!(obj_a["spec"]["clusterId"], obj_c["spec"]["clusterId"]);
            } else {
                assert_eq!(
                    obj_a["spec"]["collectionName"],
                    obj_c["spec"]["collectionName"]
                );
                assert_eq!(obj_a["spec"]["dbName"], "tenant_0003");
                assert_eq!(obj_c["spec"]["dbName"], "tenant_0004");
            }
        }
    }

    #[test]
    fn split_and_reconcile_metrics() {
        let cfg = Config {
            objects: 10,
            latency: Duration::ZERO,
            kinds: Kind::ALL.to_vec(),
            concurrency: 16,
            client_concurrency: 1,
            poll_base: Duration::from_millis(20),
            timeout: Duration::ZERO,
            operator_bin: PathBuf::new(),
            control_plane_rps: Some(0),
            data_plane_concurrency: None,
            delete_collection: false,
            orphan: false,
            tenants: 1,
            restart: false,
            create: false,
            resync_interval: Duration::from_secs(3600),
        };
        let args = cfg.operator_args().join(" ");
        assert!(args.contains("--resync-interval 1h "), "{args}");
        assert!(args.ends_with("--control-plane-rps 0"), "{args}");
        let split: Vec<usize> = cfg.split().iter().map(|(_, n)| *n).collect();
        assert_eq!(split, [3, 3, 2, 2]);
        let m = "# HELP x\nzilliz_operator_reconciles_total{kind=\"cluster\",result=\"success\"} 3\nzilliz_operator_reconciles_total{kind=\"cluster\",result=\"pending\"} 2\nzilliz_operator_reconciles_total{kind=\"index\",result=\"success\"} 1\n";
        let r = reconciles(m);
        assert_eq!(r["cluster"], 5);
        assert_eq!(r["index"], 1);
    }

    /// An Orphan run makes no drop: its CPU per 1,000 drops is no figure (it once printed the
    /// deletion phase's CPU seconds × 1,000).
    #[test]
    fn an_orphan_run_has_no_cpu_per_drop() {
        let mut r = Report {
            objects: 20,
            per_kind: Kind::ALL.iter().map(|k| (*k, 5)).collect(),
            orphan: true,
            deletion_cpu_base: 1.0,
            proc_after_delete: ProcStats {
                cpu_seconds: 5.61,
                ..ProcStats::default()
            },
            ..Report::default()
        };
        assert_eq!(r.cpu_per_1000_drops(), None);
        assert!(r.json()["cpu_s_per_1000_drops"].is_null(), "{}", r.json());
        let text = r.to_string();
        let line = text
            .lines()
            .find(|l| l.contains("operator CPU per 1,000 drops"))
            .expect("the row");
        assert!(line.ends_with("n/a (no drops)"), "{line}");
        // with drops: CPU per 1,000 of them
        r.deletion_calls
            .insert("POST /v2/vectordb/collections/drop".into(), 5);
        r.deletion_calls
            .insert("POST /v2/vectordb/indexes/drop".into(), 5);
        assert_eq!(r.json()["cpu_s_per_1000_drops"], 461.0);
    }

    #[test]
    fn creation_objects_say_how_to_create_and_one_in_four_pre_exists() {
        let slot = Slot::of(3, 1);
        let (_, quick) = object_json(Kind::Collection, &Slot::of(2, 1), "http://f", false, true);
        assert_eq!(quick["spec"]["quickSetup"]["dimension"], 4);
        let (_, schema) = object_json(Kind::Collection, &slot, "http://f", false, true);
        assert_eq!(schema["spec"]["schema"]["fields"][1]["dim"], 4);
        let (_, index) = object_json(Kind::Index, &slot, "http://f", false, true);
        assert_eq!(index["spec"]["fieldName"], "vector");
        assert_eq!(index["spec"]["indexType"], "AUTOINDEX");
        let (_, plain) = object_json(Kind::Index, &slot, "http://f", false, false);
        assert!(plain["spec"].get("fieldName").is_none());
        let existing: Vec<usize> = (0..9)
            .filter(|i| pre_exists(true, Kind::Partition, *i))
            .collect();
        assert_eq!(existing, [0, 4, 8]);
        // clusters are adopted (the operator does not create them), and without the creation
        // phase everything pre-exists
        assert!((0..9).all(|i| pre_exists(true, Kind::Cluster, i)));
        assert!((0..9).all(|i| pre_exists(false, Kind::Index, i)));
    }

    /// The bodies the operator's create requests carry (`src/kinds/*.rs` `create_request`)
    /// name the resource the bench seeded or left out for the object.
    #[test]
    fn a_create_body_names_the_objects_resource() {
        let slot = Slot::of(3, 10);
        let bodies = [
            (
                Kind::Collection,
                json!({"dbName": "tenant_0003", "collectionName": "coll_00000", "dimension": 4}),
            ),
            (
                Kind::Partition,
                json!({"dbName": "tenant_0003", "collectionName": "pcoll_00000", "partitionName": "p_00000"}),
            ),
            (
                Kind::Index,
                json!({"dbName": "tenant_0003", "collectionName": "icoll_00000", "indexParams": [{"fieldName": "vector", "indexName": "vector_idx"}]}),
            ),
        ];
        for (kind, body) in bodies {
            assert_eq!(
                created_resource(&body),
                resource_of(kind, &slot),
                "{kind:?}"
            );
        }
        assert_eq!(
            created_resource(&json!({"collectionName": "c"})).0,
            "default"
        );
    }

    #[test]
    fn the_benchs_own_creates_are_not_the_operators_writes() {
        for k in [
            "create zillizclusters.zilliz.io",
            "create zillizcollections.zilliz.io",
            "create zillizpartitions.zilliz.io",
            "create zillizindexes.zilliz.io",
        ] {
            assert!(is_bench_create(k), "{k}");
        }
        assert!(!is_bench_create("create events.events.k8s.io"));
        assert!(!is_bench_create("patch zillizclusters.zilliz.io/status"));
    }

    #[test]
    fn mutating_routes() {
        for ep in [
            "POST /v2/vectordb/collections/create",
            "POST /v2/vectordb/partitions/release",
            "POST /v2/vectordb/collections/load",
            "POST /v2/vectordb/collections/alter_properties",
            "DELETE /v2/clusters/{id}/drop",
        ] {
            assert!(is_mutating(ep), "{ep}");
        }
        for ep in [
            "POST /v2/vectordb/collections/has",
            "POST /v2/vectordb/indexes/describe",
            "GET /v2/clusters/{id}",
            "POST /v2/vectordb/collections/get_load_state",
        ] {
            assert!(!is_mutating(ep), "{ep}");
        }
    }

    /// The creation phase's serial ideal: an observe and a create per absent resource, an
    /// observe per existing one, per kind at its reconcilers; the deletion's serial ideal the
    /// same computation with the drop calls.
    #[test]
    fn serial_ideals_count_each_kinds_calls() {
        let ms = Duration::from_millis;
        let r = Report {
            objects: 64,
            per_kind: Kind::ALL.iter().map(|k| (*k, 16)).collect(),
            latency: ms(10),
            concurrency: 4,
            create: true,
            creates: [Kind::Collection, Kind::Partition, Kind::Index]
                .iter()
                .map(|k| CreateCount {
                    kind: *k,
                    absent: 12,
                    existing: 4,
                    on_absent: 12,
                    on_existing: 0,
                })
                .collect(),
            ..Report::default()
        };
        // clusters 16 x 4 calls, 4 at a time, 10 ms each
        let close = |d: Duration, want: u64| {
            assert!(
                d.abs_diff(ms(want)) < Duration::from_micros(1),
                "{d:?} != {want} ms"
            )
        };
        close(r.ideal_serial(), 160);
        // 16 observes + 12 creates, 4 at a time
        close(r.creation_ideal(), 70);
        close(r.creation_kind_ideal(Kind::Cluster), 40);
        close(r.creation_kind_ideal(Kind::Index), 70);
        // a data plane cap of 2 in flight: the three kinds' 84 calls, 2 at a time
        let capped = Report {
            data_plane_concurrency: Some(2),
            ..r.clone()
        };
        close(capped.creation_ideal(), 420);
        let j = r.json();
        assert_eq!(j["create_calls_per_absent"]["index"], 1.0);
        assert_eq!(j["create_calls_per_existing"]["index"], 0.0);
        assert_eq!(j["creation_ideal_serial_ms"], 70.0);
    }
}
