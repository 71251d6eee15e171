//! The newcomer's one-command demo (`cargo run -p zilliz-devkit --bin demo`): the operator
//! against an in-process Kubernetes API server, a real Milvus 2.3.5 and the Zilliz fake, driven
//! with kubectl from the files in `examples/`, step by step, then torn down.
//!
//! [`run`] is the whole demo as a library function: the binary calls it, and the operator's
//! `tests/demo.rs` runs it end to end and checks the [`Summary`] it answers.

use crate::{
    e2e::{Cluster, KUBECTL, kubectl_available, namespace_yaml},
    milvus::{self, MILVUS_VERSION, Milvus},
    workspace_root,
    zilliz_fake::ZillizFake,
};
use serde_json::{Value, json};
use std::{
    collections::BTreeMap,
    fmt,
    io::IsTerminal,
    path::Path,
    time::{Duration, Instant},
};

/// The namespace the examples go to.
pub const NAMESPACE: &str = "zilliz-demo";
/// The API key the Zilliz fake accepts; written into `zilliz-credentials` instead of the
/// placeholder of `examples/secret.yaml`.
pub const DEMO_API_KEY: &str = "demo-zilliz-api-key";
/// The cluster of `examples/cluster.yaml`.
pub const CLUSTER_ID: &str = "in01-0123456789abcdef";
/// The files of `examples/`, in the order they are applied.
pub const EXAMPLES: [&str; 5] = [
    "secret.yaml",
    "cluster.yaml",
    "collection.yaml",
    "partition.yaml",
    "index.yaml",
];

/// Lines of kubectl output shown per command (the rest is summarised).
const MAX_LINES: usize = 14;

/// Why the demo did not complete.
#[derive(Debug)]
pub enum Error {
    /// A prerequisite is missing on this machine (kubectl, or python3/PyPI for Milvus).
    Unavailable(String),
    /// Something went wrong on the way.
    Failed(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Unavailable(m) => write!(f, "cannot run here: {m}"),
            Error::Failed(m) => write!(f, "failed: {m}"),
        }
    }
}

impl std::error::Error for Error {}

fn failed(m: impl Into<String>) -> Error {
    Error::Failed(m.into())
}

/// One example object and what its deletion did to the outside world.
#[derive(Debug, Clone)]
pub struct Row {
    /// `kind/name` as kubectl spells it, e.g. `zpart/articles-2024`.
    pub object: String,
    /// `Delete` or `Orphan`.
    pub policy: String,
    /// The external resource it names, and where it lives.
    pub resource: String,
    /// `Created` (this object created its resource) or `Adopted` (found it there), as its
    /// status said once Ready.
    pub origin: Option<String>,
    /// Create calls that named this resource; `None` on the real Milvus (the collection list
    /// before/after tells).
    pub creates: Option<usize>,
    /// Drop calls that named this resource; `None` on the real Milvus (its calls are not
    /// counted: the collection list before/after tells).
    pub drops: Option<usize>,
    /// Release calls that named it (partitions only).
    pub releases: usize,
    /// Whether the external resource still exists after the demo.
    pub exists_after: bool,
    /// Reasons of the Events about this object, oldest first.
    pub events: Vec<String>,
}

/// What [`run`] observed.
#[derive(Debug, Clone)]
pub struct Summary {
    pub rows: Vec<Row>,
    /// `(method, path) → count` of every drop and release call that reached the Zilliz fake.
    pub fake_drop_calls: BTreeMap<(String, String), usize>,
    /// Every call that reached the Zilliz fake.
    pub fake_total_calls: usize,
    /// `GET /v1/vector/collections` on Milvus before the deletes and after.
    pub milvus_before: Vec<String>,
    pub milvus_after: Vec<String>,
    /// `zc,zcol,zpart,zidx` objects left in the namespace at the end.
    pub objects_left: usize,
    /// How the operator exited on SIGTERM (`None`: it had to be killed).
    pub operator_exit: Option<String>,
    pub elapsed: Duration,
}

impl Summary {
    pub fn row(&self, object: &str) -> Option<&Row> {
        self.rows.iter().find(|r| r.object == object)
    }
}

/// Step headers and indented, trimmed command output; bold headers only on a terminal.
struct Out {
    start: Instant,
    step: usize,
    tty: bool,
}

const STEPS: usize = 11;

impl Out {
    fn new() -> Out {
        Out {
            start: Instant::now(),
            step: 0,
            tty: std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
        }
    }

    fn step(&mut self, title: &str) {
        self.step += 1;
        let head = format!(
            "[{:>5.1}s] {}/{STEPS} {title}",
            self.start.elapsed().as_secs_f64(),
            self.step
        );
        if self.tty {
            println!("\n\x1b[1m{head}\x1b[0m");
        } else {
            println!("\n{head}");
        }
    }

    fn say(&self, text: &str) {
        for line in text.lines() {
            println!("  {line}");
        }
    }

    fn command(&self, cmd: &str) {
        if self.tty {
            println!("  \x1b[36m$ {cmd}\x1b[0m");
        } else {
            println!("  $ {cmd}");
        }
    }

    /// Command output, indented, at most [`MAX_LINES`] lines.
    fn output(&self, text: &str) {
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        for line in lines.iter().take(MAX_LINES) {
            let line: String = line.chars().take(160).collect();
            println!("    {line}");
        }
        if lines.len() > MAX_LINES {
            println!("    ... ({} more lines)", lines.len() - MAX_LINES);
        }
    }
}

/// Runs kubectl (shown as typed, with `KUBECONFIG` exported) and prints its trimmed output.
async fn kubectl(
    out: &Out,
    c: &Cluster,
    args: &[&str],
    stdin: Option<&str>,
) -> Result<String, Error> {
    out.command(&format!("{KUBECTL} {}", args.join(" ")));
    let res = c.kubectl_in(args, stdin).await;
    out.output(&res.stdout);
    out.output(&res.stderr);
    if res.ok {
        Ok(res.stdout)
    } else {
        Err(failed(format!(
            "kubectl {} failed: {}\noperator log tail:\n{}",
            args.join(" "),
            res.stderr.trim(),
            c.log_tail()
        )))
    }
}

/// kubectl without printing; answers parsed `-o json`.
async fn kubectl_json(c: &Cluster, args: &[&str]) -> Result<Value, Error> {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    let res = c.kubectl(&all).await;
    if !res.ok {
        return Err(failed(format!("kubectl {all:?}: {}", res.stderr.trim())));
    }
    serde_json::from_str(&res.stdout).map_err(|e| failed(format!("kubectl {all:?}: {e}")))
}

async fn milvus_collections(m: &Milvus) -> Result<Vec<String>, Error> {
    let v: Value = reqwest::get(format!("{}/v1/vector/collections", m.base))
        .await
        .map_err(|e| failed(format!("list Milvus collections: {e}")))?
        .json()
        .await
        .map_err(|e| failed(format!("list Milvus collections: {e}")))?;
    let mut names: Vec<String> = v["data"]
        .as_array()
        .ok_or_else(|| failed(format!("list Milvus collections: {v}")))?
        .iter()
        .filter_map(|n| n.as_str().map(str::to_string))
        .collect();
    names.sort();
    Ok(names)
}

/// One example file, rewritten for the local endpoints: each document parsed, the fields that
/// point at the outside world replaced. Answers the YAML to apply and what was replaced.
fn rewrite(
    file: &str,
    text: &str,
    fake: &str,
    milvus: &str,
) -> Result<(String, Vec<String>), Error> {
    let mut docs = Vec::new();
    let mut changes = Vec::new();
    for part in text.split("\n---") {
        let mut doc: Value =
            serde_yaml::from_str(part).map_err(|e| failed(format!("examples/{file}: {e}")))?;
        if doc.is_null() {
            continue;
        }
        let name = doc["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let kind = doc["kind"].as_str().unwrap_or_default().to_string();
        let mut set = |doc: &mut Value, path: &[&str], value: &str, what: &str| {
            let mut at = &mut *doc;
            for key in path {
                at = &mut at[*key];
            }
            *at = json!(value);
            changes.push(format!(
                "{kind}/{name}: {} = {value} ({what})",
                path.join(".")
            ));
        };
        if kind == "Secret" && doc["stringData"]["apiKey"].is_string() {
            set(
                &mut doc,
                &["stringData", "apiKey"],
                DEMO_API_KEY,
                "the key the fake accepts",
            );
        }
        if kind == "ZillizCluster" {
            set(
                &mut doc,
                &["spec", "controlPlane", "baseUrl"],
                fake,
                "the Zilliz fake",
            );
        }
        if doc["spec"]["connection"]["endpoint"].is_string() {
            if doc["spec"]["apiVersion"] == "v1" {
                set(
                    &mut doc,
                    &["spec", "connection", "endpoint"],
                    milvus,
                    "the real Milvus",
                );
            } else {
                set(
                    &mut doc,
                    &["spec", "connection", "endpoint"],
                    fake,
                    "the Zilliz fake",
                );
            }
        }
        docs.push(serde_yaml::to_string(&doc).map_err(|e| failed(e.to_string()))?);
    }
    Ok((docs.join("---\n"), changes))
}

/// The whole demo. `operator_bin` is the `zilliz-operator` binary to run. Prints every step on
/// stdout; everything it started is stopped before it returns (also on error, by drop).
pub async fn run(operator_bin: &Path) -> Result<Summary, Error> {
    let mut out = Out::new();
    if !kubectl_available() {
        return Err(Error::Unavailable(
            "kubectl is not on PATH (https://kubernetes.io/docs/tasks/tools/)".into(),
        ));
    }
    if !operator_bin.is_file() {
        return Err(failed(format!(
            "no operator binary at {}",
            operator_bin.display()
        )));
    }
    let ns = NAMESPACE;

    out.step("Start the test Kubernetes API server (in process)");
    let mut c = Cluster::start_empty().await;
    out.say(&format!(
        "kube-test-server listening on {} (in memory, plain HTTP, no auth)\n\
         kubeconfig written; to look around from another shell while the demo runs:\n  \
         export KUBECONFIG={}",
        c.server.url(),
        c.kubeconfig.display()
    ));

    out.step(&format!("Start a real Milvus {MILVUS_VERSION} (auth off)"));
    if milvus::is_provisioned() {
        out.say(&format!("using {}", milvus::venv_dir().display()));
    } else {
        out.say(&format!(
            "first use: provisioning {} (python3 -m venv + pip install milvus=={MILVUS_VERSION});\n\
             this may take a minute or more, only the first time",
            milvus::venv_dir().display()
        ));
    }
    let Some(milvus) = Milvus::start(false).await else {
        return Err(Error::Unavailable(
            "no Milvus: python3 with venv and PyPI access are needed (see above)".into(),
        ));
    };
    out.say(&format!(
        "Milvus is serving REST v1 on {} (ready in {:.1?})",
        milvus.base, milvus.startup
    ));

    out.step("Start the Zilliz Cloud fake (control plane v2 + data plane v2)");
    let fake = ZillizFake::start(DEMO_API_KEY).await;
    fake.add_cluster(CLUSTER_ID);
    fake.add_collection("default", "docs", false);
    fake.add_index("default", "docs", "vector_idx");
    // a new index shows InProgress to its first describes, as a real build does
    fake.set_index_build_describes(2);
    out.say(&format!(
        "fake on {} (API key {DEMO_API_KEY}) holds:\n  \
         cluster {CLUSTER_ID} RUNNING\n  \
         collection default/docs and its index vector_idx (to be adopted)\n  \
         no medium_articles: the examples declare it, its partition and its index, and the\n  \
         operator creates them",
        fake.uri()
    ));

    let milvus_before = milvus_collections(&milvus).await?;
    out.say(&format!(
        "Milvus collections: {milvus_before:?} (examples/collection.yaml declares docs)"
    ));

    out.step("Install the CRDs");
    let crds = workspace_root().join("crds");
    out.command(&format!("{KUBECTL} apply -f {}/", crds.display()));
    out.output(&c.install_crds().await);

    out.step("Start the operator");
    c.start_operator(operator_bin, &[]).await;
    out.command(&format!(
        "{} run --metrics-addr 127.0.0.1:0 --backoff-base 200ms --backoff-cap 2s --poll-base 200ms --poll-cap 1s --request-timeout 5s",
        operator_bin.display()
    ));
    out.say(&format!(
        "pid {}, log in {} (fast retries for the demo)",
        c.operator_pid().unwrap_or_default(),
        c.operator_log.display()
    ));

    out.step(&format!(
        "Apply examples/ (rewritten for the local endpoints) in namespace {ns}"
    ));
    kubectl(&out, &c, &["apply", "-f", "-"], Some(&namespace_yaml(ns))).await?;
    for file in EXAMPLES {
        let path = workspace_root().join("examples").join(file);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| failed(format!("{}: {e}", path.display())))?;
        let (yaml, changes) = rewrite(file, &text, &fake.uri(), &milvus.base)?;
        out.say(&format!("examples/{file}:"));
        for change in &changes {
            out.say(&format!("  {change}"));
        }
        out.command(&format!(
            "{KUBECTL} apply -n {ns} -f - < examples/{file}  # rewritten"
        ));
        let res = c
            .kubectl_in(&["apply", "-n", ns, "-f", "-"], Some(&yaml))
            .await;
        out.output(&res.stdout);
        out.output(&res.stderr);
        if !res.ok {
            return Err(failed(format!(
                "applying examples/{file}: {}",
                res.stderr.trim()
            )));
        }
    }

    out.step("Wait until every object is Ready");
    let objects = [
        "zc/analytics",
        "zcol/articles",
        "zcol/self-hosted-docs",
        "zpart/articles-2024",
        "zidx/articles-vector",
        "zidx/docs-vector",
    ];
    let mut args = vec!["wait", "-n", ns, "--for=condition=Ready", "--timeout=60s"];
    args.extend(objects);
    kubectl(&out, &c, &args, None).await?;
    out.say("LOAD is what the server says of each collection; TYPE and STATE of each index");
    kubectl(&out, &c, &["get", "-n", ns, "zc,zcol,zpart,zidx"], None).await?;
    // one listing: each object's origin (once Ready) and deletion policy
    let listed = kubectl_json(&c, &["get", "-n", ns, "zc,zcol,zpart,zidx"]).await?;
    let items = listed["items"].as_array().cloned().unwrap_or_default();
    let origins: BTreeMap<String, String> = items
        .iter()
        .filter_map(|o| Some((short_ref(o), o["status"]["origin"].as_str()?.to_string())))
        .collect();
    let policies: BTreeMap<String, String> = items
        .iter()
        .map(|o| {
            let policy = o["spec"]["deletionPolicy"].as_str().unwrap_or("Delete");
            (short_ref(o), policy.to_string())
        })
        .collect();

    out.step("Delete them: children first, then collections, then the cluster");
    let phases: [&[&str]; 3] = [
        &[
            "zpart/articles-2024",
            "zidx/articles-vector",
            "zidx/docs-vector",
        ],
        &["zcol/articles", "zcol/self-hosted-docs"],
        &["zc/analytics"],
    ];
    for phase in phases {
        let mut args = vec!["delete", "-n", ns, "--wait=false"];
        args.extend(phase);
        kubectl(&out, &c, &args, None).await?;
        let mut args = vec!["wait", "-n", ns, "--for=delete", "--timeout=60s"];
        args.extend(phase);
        kubectl(&out, &c, &args, None).await?;
    }
    let left = kubectl(&out, &c, &["get", "-n", ns, "zc,zcol,zpart,zidx"], None).await?;
    let objects_left = left
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count()
        .saturating_sub(1);

    out.step("What reached each API");
    let mut fake_drop_calls = BTreeMap::new();
    for (method, path) in fake.all_calls() {
        if path.ends_with("/drop") || path.ends_with("/release") {
            *fake_drop_calls.entry((method, path)).or_insert(0) += 1;
        }
    }
    let fake_total_calls = fake.total_calls();
    out.say(&format!(
        "Zilliz fake: {fake_total_calls} calls in all (observes included); drops and releases:"
    ));
    for ((method, path), n) in &fake_drop_calls {
        out.say(&format!("  {n} x {method} {path}"));
    }
    let milvus_after = milvus_collections(&milvus).await?;
    out.say(&format!(
        "Milvus collections: before {milvus_before:?}, after {milvus_after:?}"
    ));

    out.step("Events");
    kubectl(
        &out,
        &c,
        &[
            "get",
            "-n",
            ns,
            "events.events.k8s.io",
            "--sort-by=.metadata.creationTimestamp",
            "-o",
            "custom-columns=OBJECT:.regarding.name,KIND:.regarding.kind,REASON:.reason,NOTE:.note",
        ],
        None,
    )
    .await?;
    let events = kubectl_json(&c, &["get", "-n", ns, "events.events.k8s.io"]).await?;
    let mut items = events["items"].as_array().cloned().unwrap_or_default();
    items.sort_by_key(|e| {
        e["metadata"]["creationTimestamp"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    });
    let events_of = |kind: &str, name: &str| -> Vec<String> {
        items
            .iter()
            .filter(|e| e["regarding"]["kind"] == kind && e["regarding"]["name"] == name)
            .filter_map(|e| e["reason"].as_str().map(str::to_string))
            .collect()
    };

    // per example object: the calls that named its resource, and whether it is still there
    let count = |method: &str, path: &str, matches: &dyn Fn(&Value) -> bool| -> usize {
        fake.call_bodies(method, path)
            .iter()
            .filter(|b| matches(b))
            .count()
    };
    let coll = |name: &'static str| move |b: &Value| b["collectionName"] == name;
    let row = |object: &str,
               resource: String,
               (creates, drops): (Option<usize>, Option<usize>),
               releases: usize,
               exists_after: bool,
               events: Vec<String>| Row {
        object: object.to_string(),
        policy: policies
            .get(object)
            .cloned()
            .unwrap_or_else(|| "Delete".into()),
        resource,
        origin: origins.get(object).cloned(),
        creates,
        drops,
        releases,
        exists_after,
        events,
    };
    let rows = vec![
        row(
            "zpart/articles-2024",
            "partition medium_articles/y2024 (fake)".into(),
            (
                Some(count("POST", "/v2/vectordb/partitions/create", &|b| {
                    b["collectionName"] == "medium_articles" && b["partitionName"] == "y2024"
                })),
                Some(count("POST", "/v2/vectordb/partitions/drop", &|b| {
                    b["collectionName"] == "medium_articles" && b["partitionName"] == "y2024"
                })),
            ),
            count("POST", "/v2/vectordb/partitions/release", &|b| {
                b["collectionName"] == "medium_articles"
                    && b["partitionNames"]
                        .as_array()
                        .is_some_and(|p| p.contains(&json!("y2024")))
            }),
            fake.has_partition("default", "medium_articles", "y2024"),
            events_of("ZillizPartition", "articles-2024"),
        ),
        row(
            "zidx/articles-vector",
            "index medium_articles/vector_idx (fake)".into(),
            (
                Some(count(
                    "POST",
                    "/v2/vectordb/indexes/create",
                    &coll("medium_articles"),
                )),
                Some(count("POST", "/v2/vectordb/indexes/drop", &|b| {
                    b["collectionName"] == "medium_articles" && b["indexName"] == "vector_idx"
                })),
            ),
            0,
            fake.has_index("default", "medium_articles", "vector_idx"),
            events_of("ZillizIndex", "articles-vector"),
        ),
        row(
            "zidx/docs-vector",
            "index docs/vector_idx (fake)".into(),
            (
                Some(count("POST", "/v2/vectordb/indexes/create", &coll("docs"))),
                Some(count("POST", "/v2/vectordb/indexes/drop", &|b| {
                    b["collectionName"] == "docs" && b["indexName"] == "vector_idx"
                })),
            ),
            0,
            fake.has_index("default", "docs", "vector_idx"),
            events_of("ZillizIndex", "docs-vector"),
        ),
        row(
            "zcol/articles",
            "collection medium_articles (fake)".into(),
            (
                Some(count(
                    "POST",
                    "/v2/vectordb/collections/create",
                    &coll("medium_articles"),
                )),
                Some(count(
                    "POST",
                    "/v2/vectordb/collections/drop",
                    &coll("medium_articles"),
                )),
            ),
            0,
            fake.has_collection("default", "medium_articles"),
            events_of("ZillizCollection", "articles"),
        ),
        row(
            "zcol/self-hosted-docs",
            "collection docs (Milvus)".into(),
            (None, None),
            0,
            milvus_after.iter().any(|n| n == "docs"),
            events_of("ZillizCollection", "self-hosted-docs"),
        ),
        row(
            "zc/analytics",
            format!("cluster {CLUSTER_ID} (fake)"),
            (
                Some(0),
                Some(fake.calls("DELETE", &format!("/v2/clusters/{CLUSTER_ID}/drop"))),
            ),
            0,
            fake.cluster_status(CLUSTER_ID)
                .is_some_and(|s| s != "DELETED"),
            events_of("ZillizCluster", "analytics"),
        ),
    ];

    out.step("Tear down");
    let status = c.stop_operator().await;
    let operator_exit = status.map(|s| s.to_string());
    out.say(&format!(
        "operator: SIGTERM -> {}",
        operator_exit
            .as_deref()
            .unwrap_or("did not stop in 10 s, killed")
    ));
    drop(milvus);
    out.say("Milvus: process group killed, data directory removed");
    drop(fake);
    out.say("Zilliz fake: stopped");
    drop(c);
    out.say("test API server: stopped; kubeconfig and operator log removed");

    let summary = Summary {
        rows,
        fake_drop_calls,
        fake_total_calls,
        milvus_before,
        milvus_after,
        objects_left,
        operator_exit,
        elapsed: out.start.elapsed(),
    };
    print_summary(&summary);
    Ok(summary)
}

/// `kind/name` as kubectl spells it.
fn short_ref(o: &Value) -> String {
    let short = match o["kind"].as_str().unwrap_or_default() {
        "ZillizCluster" => "zc",
        "ZillizCollection" => "zcol",
        "ZillizPartition" => "zpart",
        _ => "zidx",
    };
    let name = o["metadata"]["name"].as_str().unwrap_or_default();
    format!("{short}/{name}")
}

fn print_summary(s: &Summary) {
    println!(
        "
Summary ({:.1}s)",
        s.elapsed.as_secs_f64()
    );
    let header = [
        "OBJECT",
        "POLICY",
        "EXTERNAL RESOURCE",
        "ORIGIN",
        "CALLS",
        "AFTER",
        "EVENTS",
    ];
    let cells: Vec<[String; 7]> = s
        .rows
        .iter()
        .map(|r| {
            let calls = match (r.creates, r.drops, r.releases) {
                (_, None, _) => "- (real Milvus)".to_string(),
                (c, Some(d), n) => {
                    let mut calls = Vec::new();
                    if let Some(c) = c.filter(|c| *c > 0) {
                        calls.push(format!("create x{c}"));
                    }
                    if n > 0 {
                        calls.push(format!("release x{n}"));
                    }
                    calls.push(format!("drop x{d}"));
                    calls.join(", ")
                }
            };
            let after = if r.exists_after { "kept" } else { "gone" };
            [
                r.object.clone(),
                r.policy.clone(),
                r.resource.clone(),
                r.origin.clone().unwrap_or_else(|| "-".into()),
                calls,
                after.to_string(),
                r.events.join(","),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &cells {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cols: Vec<&str>| {
        let text: Vec<String> = cols
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("  {}", text.join("  ").trim_end());
    };
    line(header.to_vec());
    for row in &cells {
        line(row.iter().map(String::as_str).collect());
    }
    println!(
        "  Kubernetes objects left: {}; Milvus collections before {:?}, after {:?}",
        s.objects_left, s.milvus_before, s.milvus_after
    );
}
