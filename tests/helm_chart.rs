//! The Helm chart (deploy/helm/zilliz-operator) renders the same objects as the kustomize
//! install (deploy/) for the same settings, its values change what they say, and `helm lint`
//! passes — all checked with Helm's own engine, not by matching strings.
//!
//! The engine: PyPI `helm-python-sdk` (pinned below), which ships `libhelm_c.so`, Helm's Go SDK
//! behind a C ABI, and calls it with ctypes: `Chart.render` is `helm template` (offline, no
//! cluster), `lint` is `helm lint`. The first test to need it creates a venv in
//! target/helm-venv and pip-installs the package there (about 30 MB from PyPI, once; later runs
//! reuse it), under a file lock so that parallel tests and runs do not build it twice. Without
//! python3, venv or PyPI the tests fail under CI and skip visibly elsewhere
//! (`zilliz_devkit::e2e::skip_or_fail`), as they do without kubectl, which renders deploy/.

use serde_yaml::Value;
use std::{
    collections::{BTreeMap, BTreeSet},
    io::Write,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::OnceLock,
};

const REPO: &str = env!("CARGO_MANIFEST_DIR");
const CHART: &str = "deploy/helm/zilliz-operator";
/// `helm install zilliz-operator ... -n zilliz-operator`: the release and namespace whose names
/// are deploy/'s.
const RELEASE: &str = "zilliz-operator";
const NAMESPACE: &str = "zilliz-operator";
const SDK: &str = "helm-python-sdk==0.2.2";

/// Labels Helm's conventions add to every object; deploy/ has none of them.
const HELM_LABELS: &[&str] = &[
    "app.kubernetes.io/instance",
    "app.kubernetes.io/managed-by",
    "app.kubernetes.io/version",
    "helm.sh/chart",
];
/// Labels deploy/ puts on most objects and the chart puts on all of them (deploy/rbac/'s
/// ClusterRole and binding, and the CRDs, have none in deploy/).
const COMMON_LABELS: &[&str] = &["app.kubernetes.io/name", "app.kubernetes.io/part-of"];

fn repo(rel: &str) -> PathBuf {
    Path::new(REPO).join(rel)
}

// ---------------------------------------------------------------------------------------------
// the Helm engine

/// Reads one request (JSON) on stdin, answers one JSON object on stdout: what Helm rendered or
/// linted, or `error` when Helm refused (a template's `fail`, bad values).
const DRIVER: &str = r#"
import json, sys
import helm_python as helm

req = json.load(sys.stdin)
out = {"helm": helm.helm_sdk_version()}
try:
    if req["op"] == "render":
        with helm.Chart.load(req["chart"]) as chart:
            out["manifests"] = chart.render(
                req["values"], name=req["release"], namespace=req["namespace"], is_install=True
            )
            out["crds"] = [{"name": c["name"], "data": c["data"]} for c in chart.crds]
    elif req["op"] == "lint":
        out["lint"] = helm.lint(
            req["chart"], req["values"], strict=True, namespace=req["namespace"]
        )
    else:
        raise SystemExit("unknown op " + req["op"])
except helm.HelmError as e:
    out["error"] = type(e).__name__ + ": " + str(e)
json.dump(out, sys.stdout)
"#;

fn target_dir() -> PathBuf {
    // CARGO_TARGET_TMPDIR is <target>/tmp
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target dir")
        .to_path_buf()
}

/// The venv's python, provisioned on first use; `None` (after skip_or_fail) when it cannot be.
fn helm_python() -> Option<PathBuf> {
    static PYTHON: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match PYTHON.get_or_init(provision) {
        Ok(p) => Some(p.clone()),
        Err(why) => {
            zilliz_devkit::e2e::skip_or_fail(why);
            None
        }
    }
}

fn provision() -> Result<PathBuf, String> {
    let target = target_dir();
    std::fs::create_dir_all(&target).map_err(|e| format!("{}: {e}", target.display()))?;
    let venv = target.join("helm-venv");
    let python = venv.join("bin/python3");
    let marker = venv.join(format!(".provisioned-{SDK}"));
    let lock_path = target.join("helm-venv.lock");
    let lock =
        std::fs::File::create(&lock_path).map_err(|e| format!("{}: {e}", lock_path.display()))?;
    lock.lock()
        .map_err(|e| format!("lock {}: {e}", lock_path.display()))?;
    if marker.is_file() && python.is_file() {
        return Ok(python);
    }
    let say = |s: &str| eprintln!("helm_chart: {s}");
    say(&format!("creating {} with {SDK} (once)", venv.display()));
    let _ = std::fs::remove_dir_all(&venv);
    let run = |cmd: &mut Command, what: &str| -> Result<(), String> {
        let out = cmd
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("{what}: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{what} failed ({}):\n{}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    };
    run(
        Command::new("python3").arg("-m").arg("venv").arg(&venv),
        "python3 -m venv (on Debian/Ubuntu: apt-get install python3-venv)",
    )
    .map_err(|e| format!("the Helm engine cannot be provisioned: {e}"))?;
    run(
        Command::new(&python).args([
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--no-input",
            "--progress-bar",
            "off",
            SDK,
        ]),
        &format!("pip install {SDK} (PyPI unreachable?)"),
    )
    .map_err(|e| {
        let _ = std::fs::remove_dir_all(&venv);
        format!("the Helm engine cannot be provisioned: {e}")
    })?;
    std::fs::write(&marker, b"").map_err(|e| format!("{}: {e}", marker.display()))?;
    Ok(python)
}

fn helm(python: &Path, request: serde_json::Value) -> serde_json::Value {
    let mut child = Command::new(python)
        .args(["-c", DRIVER])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the Helm driver");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(request.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "Helm driver failed on {request}:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("driver answers JSON")
}

/// What `helm template` renders (templates, then the chart's crds/ separately, as Helm
/// installs them), or Helm's error.
struct Rendered {
    objects: Vec<Value>,
    crds: Vec<Value>,
    crd_files: Vec<(String, String)>,
}

fn try_render(python: &Path, values: serde_json::Value) -> Result<Rendered, String> {
    let out = helm(
        python,
        serde_json::json!({
            "op": "render", "chart": repo(CHART), "values": values,
            "release": RELEASE, "namespace": NAMESPACE,
        }),
    );
    if let Some(e) = out["error"].as_str() {
        return Err(e.to_string());
    }
    let manifests = out["manifests"].as_object().expect("manifests");
    assert!(!manifests.is_empty(), "nothing rendered");
    let mut objects = vec![];
    // sorted by template path, so the order is stable
    let sorted: BTreeMap<_, _> = manifests.iter().collect();
    for (path, text) in sorted {
        objects.extend(parse_docs(text.as_str().expect("text"), path));
    }
    let mut crds = vec![];
    let mut crd_files = vec![];
    for c in out["crds"].as_array().expect("crds") {
        let (name, data) = (c["name"].as_str().unwrap(), c["data"].as_str().unwrap());
        crds.extend(parse_docs(data, name));
        crd_files.push((name.to_string(), data.to_string()));
    }
    Ok(Rendered {
        objects,
        crds,
        crd_files,
    })
}

fn render(python: &Path, values: serde_json::Value) -> Rendered {
    try_render(python, values.clone())
        .unwrap_or_else(|e| panic!("helm template with {values} failed: {e}"))
}

/// The `helm lint --strict` report: (errors, messages of severity warning or error).
fn lint(python: &Path, chart: &Path, values: serde_json::Value) -> (Vec<String>, Vec<String>) {
    let out = helm(
        python,
        serde_json::json!({
            "op": "lint", "chart": chart, "values": values, "namespace": NAMESPACE,
        }),
    );
    if let Some(e) = out["error"].as_str() {
        return (vec![e.to_string()], vec![]);
    }
    let report = &out["lint"];
    assert_eq!(report["total_charts_linted"], 1, "{report}");
    let errors = report["errors"]
        .as_array()
        .map(|a| a.iter().map(|e| e.to_string()).collect())
        .unwrap_or_default();
    // severity: 0 unknown, 1 info, 2 warning, 3 error
    let serious = report["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter(|m| m["severity"].as_u64() != Some(1))
        .map(|m| m.to_string())
        .collect();
    (errors, serious)
}

// ---------------------------------------------------------------------------------------------
// kustomize (deploy/)

/// kubectl, or `None` (after skip_or_fail) when it is absent.
fn kubectl() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("KUBECTL").map(PathBuf::from),
        Some(PathBuf::from("/usr/bin/kubectl")),
        Some(PathBuf::from("/usr/local/bin/kubectl")),
    ];
    for c in candidates.into_iter().flatten() {
        if c.is_file() {
            return Some(c);
        }
    }
    if Command::new("kubectl")
        .args(["version", "--client"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
    {
        return Some(PathBuf::from("kubectl"));
    }
    zilliz_devkit::e2e::skip_or_fail(
        "kubectl not found (set KUBECTL=/path/to/kubectl); deploy/ not rendered",
    );
    None
}

fn kustomize(kubectl: &Path, dir: &str) -> Vec<Value> {
    let out = Command::new(kubectl)
        .arg("kustomize")
        .arg(repo(dir))
        .stdin(Stdio::null())
        .output()
        .expect("run kubectl kustomize");
    assert!(
        out.status.success(),
        "kubectl kustomize {dir} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let docs = parse_docs(&String::from_utf8(out.stdout).expect("utf-8"), dir);
    assert!(!docs.is_empty(), "kubectl kustomize {dir} rendered nothing");
    docs
}

/// Both engines and the chart's inputs, or `None` when a tool is missing (skipped or failed).
fn engines() -> Option<(PathBuf, PathBuf)> {
    let kubectl = kubectl()?;
    let python = helm_python()?;
    Some((kubectl, python))
}

// ---------------------------------------------------------------------------------------------
// objects

fn parse_docs(yaml: &str, origin: &str) -> Vec<Value> {
    use serde::Deserialize;
    let docs: Vec<Value> = serde_yaml::Deserializer::from_str(yaml)
        .map(|d| Value::deserialize(d).unwrap_or_else(|e| panic!("{origin}: invalid YAML: {e}")))
        .filter(|v| !v.is_null())
        .collect();
    for d in &docs {
        assert!(
            d["apiVersion"].is_string()
                && d["kind"].is_string()
                && d["metadata"]["name"].is_string(),
            "{origin}: object without apiVersion/kind/metadata.name: {d:?}"
        );
    }
    docs
}

fn kind(v: &Value) -> &str {
    v["kind"].as_str().unwrap_or_default()
}

fn name(v: &Value) -> &str {
    v["metadata"]["name"].as_str().unwrap_or_default()
}

fn id(v: &Value) -> String {
    let ns = v["metadata"]["namespace"].as_str().unwrap_or("");
    format!("{} {}/{}", kind(v), ns, name(v))
}

fn by_id(docs: &[Value]) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for d in docs {
        assert!(
            out.insert(id(d), d.clone()).is_none(),
            "{} rendered twice",
            id(d)
        );
    }
    out
}

fn one<'a>(docs: &'a [Value], k: &str, n: &str) -> &'a Value {
    let found: Vec<_> = docs
        .iter()
        .filter(|d| kind(d) == k && name(d) == n)
        .collect();
    assert_eq!(found.len(), 1, "expected exactly one {k} {n}");
    found[0]
}

/// Where `a` and `b` differ (mappings compared by key, sequences in order), as paths.
fn diff(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Mapping(ma), Value::Mapping(mb)) => {
            let keys: BTreeSet<String> = ma
                .keys()
                .chain(mb.keys())
                .map(|k| k.as_str().expect("string keys").to_string())
                .collect();
            for k in keys {
                let key = Value::String(k.clone());
                let va = ma.get(&key).unwrap_or(&Value::Null);
                let vb = mb.get(&key).unwrap_or(&Value::Null);
                diff(&format!("{path}.{k}"), va, vb, out);
            }
        }
        (Value::Sequence(sa), Value::Sequence(sb)) if sa.len() == sb.len() => {
            for (i, (va, vb)) in sa.iter().zip(sb).enumerate() {
                diff(&format!("{path}[{i}]"), va, vb, out);
            }
        }
        // the same number (crds/ writes `minimum: 0.0`, kustomize re-emits it as `0`)
        (Value::Number(na), Value::Number(nb)) if na.as_f64() == nb.as_f64() => {}
        _ if a == b => {}
        _ => out.push(format!(
            "{path}: chart {} / kustomize {}",
            serde_json::to_string(a).unwrap(),
            serde_json::to_string(b).unwrap()
        )),
    }
}

fn labels(v: &Value) -> BTreeMap<String, String> {
    v["metadata"]["labels"]
        .as_mapping()
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    (
                        k.as_str().unwrap_or_default().to_string(),
                        v.as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn without_labels(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(m) = v["metadata"].as_mapping_mut() {
        m.remove("labels");
    }
    v
}

/// The chart's object is kustomize's, field for field, except that its labels add Helm's
/// usual ones (and deploy/'s two common ones where deploy/ has none).
fn same_object(what: &str, chart: &Value, kustomize: &Value) -> Vec<String> {
    let mut out = vec![];
    let (lc, lk) = (labels(chart), labels(kustomize));
    for (k, v) in &lk {
        if lc.get(k) != Some(v) {
            out.push(format!(
                "{what}: label {k}: chart {:?} / kustomize {v:?}",
                lc.get(k)
            ));
        }
    }
    for (k, v) in &lc {
        if !lk.contains_key(k) && !HELM_LABELS.contains(&k.as_str()) {
            if COMMON_LABELS.contains(&k.as_str()) {
                if v != "zilliz-operator" {
                    out.push(format!("{what}: label {k}: {v:?}"));
                }
            } else {
                out.push(format!("{what}: label {k} not in deploy/"));
            }
        }
    }
    // crds/ is installed as it is, never templated: Helm labels only what it renders
    let templated = kind(chart) != "CustomResourceDefinition";
    for k in HELM_LABELS {
        if templated && !lc.contains_key(*k) {
            out.push(format!("{what}: Helm label {k} missing"));
        }
    }
    diff(
        what,
        &without_labels(chart),
        &without_labels(kustomize),
        &mut out,
    );
    out
}

/// The chart renders exactly the objects of `expected`, each the same.
fn assert_same_objects(what: &str, chart: &[Value], expected: &[Value]) {
    let (c, k) = (by_id(chart), by_id(expected));
    let only_chart: Vec<_> = c.keys().filter(|i| !k.contains_key(*i)).collect();
    let only_kustomize: Vec<_> = k.keys().filter(|i| !c.contains_key(*i)).collect();
    assert!(
        only_chart.is_empty() && only_kustomize.is_empty(),
        "{what}: the chart renders other objects than kustomize:\n  only in the chart: \
         {only_chart:?}\n  only in kustomize: {only_kustomize:?}"
    );
    let mut diffs = vec![];
    for (i, obj) in &c {
        diffs.extend(same_object(i, obj, &k[i]));
    }
    assert!(
        diffs.is_empty(),
        "{what}: the chart's objects differ from kustomize's:\n{}",
        diffs.join("\n")
    );
}

fn container(docs: &[Value]) -> &Value {
    &one(docs, "Deployment", "zilliz-operator")["spec"]["template"]["spec"]["containers"][0]
}

fn strings(v: &Value) -> Vec<String> {
    v.as_sequence()
        .map(|s| {
            s.iter()
                .map(|x| x.as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn env_names(c: &Value) -> Vec<String> {
    c["env"]
        .as_sequence()
        .expect("env")
        .iter()
        .map(|e| e["name"].as_str().unwrap_or_default().to_string())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// tests

/// The chart's crds/ holds a copy of crds/ (Helm installs only files inside the chart); it must
/// never go stale.
#[test]
fn chart_crds_match_crds_byte_for_byte() {
    let original =
        std::fs::read(repo("crds/zilliz.io_crds.yaml")).expect("crds/zilliz.io_crds.yaml");
    let dir = repo(&format!("{CHART}/crds"));
    let files: Vec<_> = std::fs::read_dir(&dir)
        .expect("the chart's crds/")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(files, ["zilliz.io_crds.yaml"], "{}", dir.display());
    let copy = std::fs::read(dir.join("zilliz.io_crds.yaml")).unwrap();
    assert!(
        original == copy,
        "{CHART}/crds/zilliz.io_crds.yaml is stale: cp crds/zilliz.io_crds.yaml {CHART}/crds/"
    );
}

/// Default values: deploy/'s objects (CRDs from crds/, the rest from the templates), except the
/// Namespace, which a Helm release cannot create (values.yaml, namespace.create); with
/// namespace.create it is there too, the same as deploy/'s.
#[test]
fn default_values_render_the_objects_of_deploy() {
    let Some((kubectl, python)) = engines() else {
        return;
    };
    let deploy = kustomize(&kubectl, "deploy");
    let chart = render(&python, serde_json::json!({}));

    // the CRDs Helm installs (crds/ is never templated)
    assert_eq!(chart.crd_files.len(), 1, "one CRD file");
    assert_eq!(
        chart.crd_files[0].1,
        std::fs::read_to_string(repo("crds/zilliz.io_crds.yaml")).unwrap(),
        "Helm loads the CRDs unchanged"
    );
    assert!(
        chart
            .objects
            .iter()
            .all(|o| kind(o) != "CustomResourceDefinition"),
        "CRDs only in crds/"
    );
    let mut objects = chart.crds.clone();
    objects.extend(chart.objects.clone());

    let without_namespace: Vec<Value> = deploy
        .iter()
        .filter(|d| kind(d) != "Namespace")
        .cloned()
        .collect();
    assert_eq!(deploy.len(), without_namespace.len() + 1);
    assert_same_objects("default values vs deploy/", &objects, &without_namespace);

    let with_ns = render(&python, serde_json::json!({"namespace": {"create": true}}));
    let mut objects = with_ns.crds;
    objects.extend(with_ns.objects);
    assert_same_objects("namespace.create vs deploy/", &objects, &deploy);
}

/// `namespaced: true` (with `helm install --skip-crds`): deploy/namespaced/'s objects.
#[test]
fn namespaced_values_render_the_objects_of_deploy_namespaced() {
    let Some((kubectl, python)) = engines() else {
        return;
    };
    let namespaced = kustomize(&kubectl, "deploy/namespaced");
    let chart = render(&python, serde_json::json!({"namespaced": true}));
    assert!(
        chart
            .objects
            .iter()
            .all(|o| !kind(o).starts_with("Cluster")),
        "namespaced: no cluster-scoped RBAC"
    );
    let without_namespace: Vec<Value> = namespaced
        .iter()
        .filter(|d| kind(d) != "Namespace")
        .cloned()
        .collect();
    assert_same_objects(
        "namespaced vs deploy/namespaced/",
        &chart.objects,
        &without_namespace,
    );
    let with_ns = render(
        &python,
        serde_json::json!({"namespaced": true, "namespace": {"create": true}}),
    );
    assert_same_objects(
        "namespaced + namespace.create vs deploy/namespaced/",
        &with_ns.objects,
        &namespaced,
    );
    let env = env_names(container(&chart.objects));
    assert_eq!(env.last().map(String::as_str), Some("WATCH_NAMESPACE"));

    // the docs say how to skip the CRDs for such an install
    let guide = std::fs::read_to_string(repo("docs/operations.md")).unwrap();
    assert!(
        guide.contains("--skip-crds") && guide.contains("namespaced=true"),
        "docs/operations.md says how to install the namespaced variant with Helm"
    );
}

/// The opt-in objects are off by default and, when on, are deploy/'s: the ServiceMonitor of
/// deploy/optional/ and the admission policy of deploy/deletion-protection/.
#[test]
fn optional_objects_are_the_ones_of_deploy() {
    let Some((kubectl, python)) = engines() else {
        return;
    };
    let defaults = render(&python, serde_json::json!({}));
    for k in [
        "ServiceMonitor",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
    ] {
        assert!(
            defaults.objects.iter().all(|o| kind(o) != k),
            "{k} is opt-in"
        );
    }

    let on = render(
        &python,
        serde_json::json!({
            "metrics": {"serviceMonitor": {"enabled": true, "labels": {"release": "prom"}}},
            "deletionProtection": {"enabled": true},
        }),
    );
    let text = std::fs::read_to_string(repo("deploy/optional/servicemonitor.yaml")).unwrap();
    let mut expected = parse_docs(&text, "deploy/optional/servicemonitor.yaml");
    expected[0]["metadata"]["labels"]["release"] = "prom".into();
    let sm: Vec<Value> = on
        .objects
        .iter()
        .filter(|o| kind(o) == "ServiceMonitor")
        .cloned()
        .collect();
    assert_same_objects("ServiceMonitor", &sm, &expected);
    // it selects the metrics Service the chart renders
    let svc = one(&on.objects, "Service", "zilliz-operator-metrics");
    for (k, v) in sm[0]["spec"]["selector"]["matchLabels"]
        .as_mapping()
        .unwrap()
    {
        assert_eq!(
            &svc["metadata"]["labels"][k], v,
            "ServiceMonitor selector {k:?}"
        );
    }

    let policy: Vec<Value> = on
        .objects
        .iter()
        .filter(|o| kind(o).starts_with("ValidatingAdmissionPolicy"))
        .cloned()
        .collect();
    assert_same_objects(
        "deletion protection",
        &policy,
        &kustomize(&kubectl, "deploy/deletion-protection"),
    );

    // the rest is unchanged by them
    let rest: Vec<Value> = on
        .objects
        .iter()
        .filter(|o| kind(o) != "ServiceMonitor" && !kind(o).starts_with("ValidatingAdmission"))
        .cloned()
        .collect();
    assert_same_objects("the rest", &rest, &defaults.objects);

    // a ServiceMonitor without the Service it selects is refused
    let err = try_render(
        &python,
        serde_json::json!({"metrics": {"service": {"enabled": false},
                                       "serviceMonitor": {"enabled": true}}}),
    )
    .err()
    .expect("ServiceMonitor without Service refused");
    assert!(err.contains("metrics.service.enabled"), "{err}");
    let no_svc = render(
        &python,
        serde_json::json!({"metrics": {"service": {"enabled": false}}}),
    );
    assert!(no_svc.objects.iter().all(|o| kind(o) != "Service"));
}

/// Each value changes what it says, and only that.
#[test]
fn values_change_what_they_say() {
    let Some(python) = helm_python() else { return };
    let defaults = render(&python, serde_json::json!({})).objects;
    let deployment = |docs: &[Value]| one(docs, "Deployment", "zilliz-operator").clone();
    // the Deployment of `values` differs from the default one exactly at `paths`
    let changes = |values: serde_json::Value| -> (Vec<Value>, Vec<String>) {
        let docs = render(&python, values).objects;
        let mut d = vec![];
        diff(
            "",
            &without_labels(&deployment(&docs)),
            &without_labels(&deployment(&defaults)),
            &mut d,
        );
        let paths = d
            .iter()
            .map(|l| l.split(':').next().unwrap().to_string())
            .collect();
        (docs, paths)
    };
    let c = ".spec.template.spec.containers[0]";

    let (docs, paths) = changes(serde_json::json!({"image": {
        "repository": "registry.example.com/mirror/zilliz-operator",
        "tag": "0.2.0-rc.1", "pullPolicy": "Always"}}));
    assert_eq!(
        paths,
        [format!("{c}.image"), format!("{c}.imagePullPolicy")]
    );
    assert_eq!(
        container(&docs)["image"],
        "registry.example.com/mirror/zilliz-operator:0.2.0-rc.1"
    );
    assert_eq!(container(&docs)["imagePullPolicy"], "Always");

    let (docs, paths) = changes(serde_json::json!({"replicas": 3}));
    assert_eq!(paths, [".spec.replicas"]);
    assert_eq!(deployment(&docs)["spec"]["replicas"], 3);

    let (docs, paths) = changes(serde_json::json!({"resources": {
        "requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "1Gi"}}}));
    assert!(
        paths
            .iter()
            .all(|p| p.starts_with(&format!("{c}.resources"))),
        "{paths:?}"
    );
    // Helm merges maps: a value replaces a key and keeps the others
    assert_eq!(container(&docs)["resources"]["requests"]["cpu"], "100m");
    assert_eq!(container(&docs)["resources"]["limits"]["memory"], "1Gi");
    assert_eq!(container(&docs)["resources"]["limits"]["cpu"], "500m");

    let (docs, paths) = changes(serde_json::json!({"extraArgs": [
        "--resync-interval=5m", "--max-concurrent-reconciles", "32"]}));
    assert!(paths.iter().all(|p| p.starts_with(&format!("{c}.args"))));
    assert_eq!(
        strings(&container(&docs)["args"]),
        [
            "run",
            "--leader-elect",
            "--resync-interval=5m",
            "--max-concurrent-reconciles",
            "32"
        ]
    );

    let (docs, paths) = changes(serde_json::json!({"logLevel": "debug,kube=info"}));
    assert_eq!(paths, [format!("{c}.env[3].value")]);
    assert_eq!(container(&docs)["env"][3]["value"], "debug,kube=info");

    // the port moves everywhere it is named
    let (docs, paths) = changes(serde_json::json!({"metrics": {"port": 9090}}));
    assert_eq!(
        paths,
        [
            format!("{c}.env[4].value"),
            format!("{c}.ports[0].containerPort")
        ]
    );
    assert_eq!(container(&docs)["env"][4]["value"], "0.0.0.0:9090");
    assert_eq!(
        one(&docs, "Service", "zilliz-operator-metrics")["spec"]["ports"][0]["port"],
        9090
    );

    // another lease: the flag, and the Role's resourceNames follow
    let (docs, paths) = changes(serde_json::json!({"leaderElection": {"leaseName": "zo-a"}}));
    assert_eq!(paths, [format!("{c}.args")]);
    assert_eq!(
        strings(&container(&docs)["args"]),
        ["run", "--leader-elect", "--lease-name=zo-a"]
    );
    let role = one(&docs, "Role", "zilliz-operator-leader-election");
    assert_eq!(strings(&role["rules"][1]["resourceNames"]), ["zo-a"]);

    // no leader election: one replica, no flag, no Lease RBAC
    let (docs, paths) = changes(serde_json::json!({"replicas": 1,
                                                   "leaderElection": {"enabled": false}}));
    assert_eq!(paths, [".spec.replicas".to_string(), format!("{c}.args")]);
    assert_eq!(strings(&container(&docs)["args"]), ["run"]);
    assert!(
        docs.iter().all(|d| !name(d).ends_with("-leader-election")),
        "no leader-election Role without leader election"
    );
    // ... and never two replicas without it: both would reconcile and drop
    let err = try_render(
        &python,
        serde_json::json!({"leaderElection": {"enabled": false}}),
    )
    .err()
    .expect("two replicas without leader election refused");
    assert!(err.contains("leaderElection.enabled"), "{err}");

    // the binary knows every flag the chart passes
    let help = Command::new(env!("CARGO_BIN_EXE_zilliz-operator"))
        .args(["run", "--help"])
        .output()
        .expect("zilliz-operator run --help");
    let help = String::from_utf8_lossy(&help.stdout);
    for flag in [
        "--leader-elect",
        "--lease-name",
        "--resync-interval",
        "--max-concurrent-reconciles",
    ] {
        assert!(help.contains(flag), "`zilliz-operator run` lacks {flag}");
    }

    // another release name: names follow it, the selector stays deploy/'s
    let out = helm(
        &python,
        serde_json::json!({"op": "render", "chart": repo(CHART), "values": {},
                           "release": "team-a", "namespace": "team-a"}),
    );
    let docs = parse_docs(
        out["manifests"]["zilliz-operator/templates/deployment.yaml"]
            .as_str()
            .expect("deployment"),
        "deployment",
    );
    let d = one(&docs, "Deployment", "team-a-zilliz-operator");
    assert_eq!(d["metadata"]["namespace"], "team-a");
    assert_eq!(
        d["spec"]["template"]["spec"]["serviceAccountName"],
        "team-a-zilliz-operator"
    );
    assert_eq!(
        d["spec"]["selector"],
        deployment(&defaults)["spec"]["selector"]
    );
}

/// values.schema.json refuses a misspelt or mistyped value instead of ignoring it (Helm checks
/// it on install, upgrade, template and lint).
#[test]
fn values_schema_refuses_typos_and_wrong_types() {
    let Some(python) = helm_python() else { return };
    for (values, says) in [
        (serde_json::json!({"replica": 3}), "'replica' not allowed"),
        (serde_json::json!({"replicas": "two"}), "/replicas"),
        (
            serde_json::json!({"image": {"pullPolicy": "always"}}),
            "/image/pullPolicy",
        ),
        (
            serde_json::json!({"leaderElection": {"enable": false}}),
            "'enable' not allowed",
        ),
        (
            serde_json::json!({"metrics": {"port": "8080"}}),
            "/metrics/port",
        ),
        (
            serde_json::json!({"extraArgs": "--resync-interval=5m"}),
            "/extraArgs",
        ),
        (serde_json::json!({"logFormat": "yaml"}), "/logFormat"),
    ] {
        let err = try_render(&python, values.clone())
            .err()
            .unwrap_or_else(|| panic!("{values} rendered"));
        assert!(err.contains(says), "{values}: {err}");
        let (errors, _) = lint(&python, &repo(CHART), values.clone());
        assert!(
            errors.iter().any(|e| e.contains(says)),
            "helm lint with {values}: {errors:?}"
        );
    }
}

/// `helm lint --strict` passes with the default, the namespaced and the all-options values —
/// and fails on a broken copy of the chart (so the check can fail).
#[test]
fn helm_lint_passes() {
    let Some(python) = helm_python() else { return };
    let chart = repo(CHART);
    for values in [
        serde_json::json!({}),
        serde_json::json!({"namespaced": true}),
        serde_json::json!({"namespace": {"create": true},
                           "metrics": {"serviceMonitor": {"enabled": true}},
                           "deletionProtection": {"enabled": true},
                           "extraArgs": ["--resync-interval=5m"]}),
    ] {
        let (errors, serious) = lint(&python, &chart, values.clone());
        assert!(
            errors.is_empty() && serious.is_empty(),
            "helm lint --strict with {values}:\n{errors:?}\n{serious:?}"
        );
    }

    // a copy with an unclosed action in a template: lint reports it
    let broken = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "helm-lint-broken-{}/zilliz-operator",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&broken);
    std::fs::create_dir_all(broken.join("templates")).unwrap();
    for f in ["Chart.yaml", "values.yaml"] {
        std::fs::copy(chart.join(f), broken.join(f)).unwrap();
    }
    for e in std::fs::read_dir(chart.join("templates")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), broken.join("templates").join(e.file_name())).unwrap();
    }
    let svc = std::fs::read_to_string(chart.join("templates/service.yaml")).unwrap();
    std::fs::write(
        broken.join("templates/service.yaml"),
        svc.replace("{{ .Values.metrics.port }}", "{{ .Values.metrics.port "),
    )
    .unwrap();
    let (errors, serious) = lint(&python, &broken, serde_json::json!({}));
    let _ = std::fs::remove_dir_all(broken.parent().unwrap());
    assert!(
        !errors.is_empty() || !serious.is_empty(),
        "helm lint accepted a broken template"
    );
}
