//! End-to-end harness: the project's test Kubernetes API server (in process), the real
//! `zilliz-operator` binary as subprocesses with a kubeconfig, and kubectl.
//!
//! The operator binary is a parameter of [`Cluster::start_operator`] and
//! [`Cluster::spawn_operator`]: the operator's own integration tests pass
//! `env!("CARGO_BIN_EXE_zilliz-operator")`, the demo finds it next to itself.
//!
//! * [`Cluster`]: the API server, its kubeconfig, kubectl, and optionally one operator it owns
//!   (fast retries, text log in [`Cluster::operator_log`]).
//! * [`Operator`]: one more `zilliz-operator run` process with its own name, environment and
//!   log (several at once for leader election): signals, exit status, log, ops endpoints.

use kube_test_server::TestServer;
use serde_json::Value;
use std::{
    path::{Path, PathBuf},
    process::{ExitStatus, Stdio},
    sync::atomic::{AtomicUsize, Ordering},
    time::{Duration, Instant},
};
use tokio::{io::AsyncWriteExt, process::Command};

pub const KUBECTL: &str = "kubectl";

/// The message the operator logs (field `addr`) once /metrics, /healthz and /readyz listen.
pub const SERVING_LINE: &str = "serving /metrics, /healthz and /readyz";

/// How long a kubectl call may take before [`Cluster::kubectl_in`] calls it hung, unless
/// [`Cluster::kubectl_timeout`] says otherwise.
pub const KUBECTL_TIMEOUT: Duration = Duration::from_secs(120);

/// The flags [`Cluster::start_operator`] runs the operator with (fast retries), before its
/// extra flags.
pub const FAST_RETRY_ARGS: &[&str] = &[
    "--metrics-addr",
    "127.0.0.1:0",
    "--backoff-base",
    "200ms",
    "--backoff-cap",
    "2s",
    "--poll-base",
    "200ms",
    "--poll-cap",
    "1s",
    "--request-timeout",
    "5s",
];

/// kubectl is on every machine of this project; without it the e2e tests cannot run.
pub fn kubectl_available() -> bool {
    std::process::Command::new(KUBECTL)
        .arg("version")
        .arg("--client")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// The opening of every test that needs kubectl: true when it is there; otherwise
/// [`skip_or_fail`] (fails under CI, else a visible skip) and false, and the test returns.
pub fn require_kubectl() -> bool {
    if kubectl_available() {
        return true;
    }
    skip_or_fail(&format!("{KUBECTL} is not installed"));
    false
}

/// Whether this is a CI run: env `CI` set to anything but empty, `0` or `false` (the same test
/// as the Milvus fixture's).
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false")
}

/// **The one rule for a test that cannot run here** (a tool it needs, such as kubectl or a
/// Lua 5.1 interpreter, is missing), followed by every such test of the workspace:
/// - under CI ([`in_ci`]) it **fails**, naming what is missing: CI runs every test or fails;
/// - elsewhere the test is skipped **visibly**: `SKIPPED: <why>` goes to the terminal
///   (`/dev/tty` when there is one, otherwise straight to the process's stderr) — never with
///   `println!`/`eprintln!`, which the test harness captures and hides for a test that
///   passes — and the caller returns early.
///
/// `testapi/tests/kubectl.rs` cannot depend on this crate and keeps a copy of this function.
pub fn skip_or_fail(why: &str) {
    if in_ci() {
        panic!("CI is set and this test cannot run: {why}");
    }
    let line = format!("\nSKIPPED (not run, CI unset): {why}\n");
    let to_tty = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/tty")
        .and_then(|mut tty| std::io::Write::write_all(&mut tty, line.as_bytes()));
    if to_tty.is_err() {
        let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
    }
}

pub struct Cluster {
    pub server: TestServer,
    pub dir: PathBuf,
    pub kubeconfig: PathBuf,
    /// How long one kubectl call may take before it is called hung ([`KUBECTL_TIMEOUT`]).
    pub kubectl_timeout: Duration,
    operator: Option<Operator>,
    pub operator_log: PathBuf,
}

pub struct Out {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Cluster {
    /// A test API server with the CRDs installed.
    pub async fn start() -> Cluster {
        let c = Cluster::start_empty().await;
        c.install_crds().await;
        c
    }

    /// A test API server and its kubeconfig (in a fresh temporary directory), no CRDs yet.
    pub async fn start_empty() -> Cluster {
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        let server = TestServer::start()
            .await
            .expect("start the test API server");
        let dir = std::env::temp_dir().join(format!(
            "zilliz-e2e-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let kubeconfig = dir.join("kubeconfig");
        server.write_kubeconfig(&kubeconfig).unwrap();
        Cluster {
            server,
            operator_log: dir.join("operator.log"),
            dir,
            kubeconfig,
            kubectl_timeout: KUBECTL_TIMEOUT,
            operator: None,
        }
    }

    /// `kubectl apply -f crds/` and wait until the four CRDs are established; answers the
    /// output of the apply.
    pub async fn install_crds(&self) -> String {
        let crds = crate::workspace_root().join("crds");
        let crds = format!("{}/", crds.display());
        let applied = self.kubectl_ok(&["apply", "-f", &crds]).await;
        self.kubectl_ok(&[
            "wait",
            "--for",
            "condition=established",
            "--timeout=30s",
            "crd/zillizclusters.zilliz.io",
            "crd/zillizcollections.zilliz.io",
            "crd/zillizpartitions.zilliz.io",
            "crd/zillizindexes.zilliz.io",
        ])
        .await;
        applied
    }

    pub async fn kubectl_in(&self, args: &[&str], stdin: Option<&str>) -> Out {
        let mut cmd = Command::new(KUBECTL);
        cmd.arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().expect("run kubectl");
        if let Some(input) = stdin {
            let mut pipe = child.stdin.take().unwrap();
            pipe.write_all(input.as_bytes()).await.unwrap();
            drop(pipe);
        }
        let out = tokio::time::timeout(self.kubectl_timeout, child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("kubectl {args:?} hung"))
            .unwrap();
        Out {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    pub async fn kubectl(&self, args: &[&str]) -> Out {
        self.kubectl_in(args, None).await
    }

    /// Runs kubectl and asserts success; returns stdout.
    pub async fn kubectl_ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args).await;
        assert!(
            out.ok,
            "kubectl {args:?} failed:\n{}\n{}\noperator log tail:\n{}",
            out.stdout,
            out.stderr,
            self.log_tail()
        );
        out.stdout
    }

    /// `kubectl apply -f -` with this YAML.
    pub async fn apply(&self, yaml: &str) {
        let out = self.kubectl_in(&["apply", "-f", "-"], Some(yaml)).await;
        assert!(out.ok, "kubectl apply failed: {}\n{yaml}", out.stderr);
    }

    pub async fn get_json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["-o", "json"]);
        let text = self.kubectl_ok(&all).await;
        serde_json::from_str(&text).expect("kubectl -o json")
    }

    /// `kubectl wait --for=condition=Ready` on `objects` in `ns`; on failure the panic shows the
    /// objects and the operator's log.
    pub async fn wait_ready(&self, ns: &str, objects: &[&str], timeout: Duration) {
        let limit = format!("--timeout={}s", timeout.as_secs());
        let mut args = vec!["wait", "--for=condition=Ready", limit.as_str(), "-n", ns];
        args.extend_from_slice(objects);
        let out = self.kubectl(&args).await;
        if !out.ok {
            let mut args = vec!["get", "-n", ns, "-o", "json"];
            args.extend_from_slice(objects);
            let dump = self.kubectl(&args).await;
            panic!(
                "not Ready: {}\n{}\noperator log:\n{}",
                out.stderr,
                dump.stdout,
                self.log_tail()
            );
        }
    }

    /// `kubectl wait --for=delete` on `objects` in `ns`.
    pub async fn wait_gone(&self, ns: &str, objects: &[&str], timeout: Duration) {
        let limit = format!("--timeout={}s", timeout.as_secs());
        let mut args = vec!["wait", "--for=delete", limit.as_str(), "-n", ns];
        args.extend_from_slice(objects);
        self.kubectl_ok(&args).await;
    }

    /// `kubectl delete --wait=false` on `objects` in `ns`.
    pub async fn delete_nowait(&self, ns: &str, objects: &[&str]) {
        let mut args = vec!["delete", "--wait=false", "-n", ns];
        args.extend_from_slice(objects);
        self.kubectl_ok(&args).await;
    }

    /// `kubectl get <args> -o json`, or `None` when kubectl fails (say, the object is gone).
    pub async fn get_json_opt(&self, args: &[&str]) -> Option<Value> {
        let mut all = args.to_vec();
        all.extend(["-o", "json"]);
        let out = self.kubectl(&all).await;
        out.ok
            .then(|| serde_json::from_str(&out.stdout).expect("kubectl -o json"))
    }

    /// Waits until `obj` (`kind/name`) in `ns` has the condition `type_` with `reason`, and
    /// answers the object as it was then.
    pub async fn wait_reason(
        &self,
        ns: &str,
        obj: &str,
        type_: &str,
        reason: &str,
        timeout: Duration,
    ) -> Value {
        let start = Instant::now();
        loop {
            let found = self.get_json_opt(&["get", obj, "-n", ns]).await;
            if let Some(o) = &found
                && condition(o, type_).is_some_and(|c| c["reason"] == reason)
            {
                return found.unwrap();
            }
            if start.elapsed() > timeout {
                panic!(
                    "timed out after {timeout:?} waiting for {ns}/{obj} {type_}={reason}; last seen: {}\noperator log tail:\n{}",
                    found
                        .map(|o| o["status"].to_string())
                        .unwrap_or_else(|| "gone".into()),
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The reasons of the `events.k8s.io` Events in namespace `ns`, in list order (`""` for an
    /// Event without one).
    pub async fn event_reasons(&self, ns: &str) -> Vec<String> {
        let events = self
            .get_json(&["get", "events.events.k8s.io", "-n", ns])
            .await;
        event_reasons_of(&events)
    }

    /// True once the ZillizCollection `ns/name` of [`invalid_collection_yaml`] has been
    /// reconciled: it carries our finalizer and `Ready=False/InvalidSpec`. False while it is
    /// not (or cannot be read).
    pub async fn reconciled_invalid(&self, ns: &str, name: &str) -> bool {
        let out = self
            .kubectl_in(&["get", "zcol", name, "-n", ns, "-o", "json"], None)
            .await;
        if !out.ok {
            return false;
        }
        let obj: Value = serde_json::from_str(&out.stdout).unwrap();
        let finalized = obj["metadata"]["finalizers"]
            .as_array()
            .is_some_and(|f| f.iter().any(|f| f == "zilliz.io/finalizer"));
        let invalid = obj["status"]["conditions"].as_array().is_some_and(|cs| {
            cs.iter().any(|c| {
                c["type"] == "Ready" && c["status"] == "False" && c["reason"] == "InvalidSpec"
            })
        });
        finalized && invalid
    }

    /// Starts `bin run <args>` against this cluster as `name`: `KUBECONFIG` set, `env` added
    /// (the rest inherited), stdout and stderr into `<dir>/<name>.log`, killed on drop. The
    /// caller owns it; see [`Cluster::spawn_pod`] for the usual flags.
    pub fn spawn_operator(
        &self,
        bin: &Path,
        name: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Operator {
        let log = self.path(&format!("{name}.log"));
        let file = std::fs::File::create(&log).unwrap();
        let child = Command::new(bin)
            .arg("run")
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", bin.display()));
        Operator {
            name: name.to_string(),
            child,
            log,
            addr: None,
        }
    }

    /// [`Cluster::spawn_operator`] as the operator's Pod `name` would run it: `POD_NAME=name`,
    /// JSON log at `info`, `--metrics-addr 127.0.0.1:0 --request-timeout 5s`, then `extra`.
    pub fn spawn_pod(&self, bin: &Path, name: &str, extra: &[&str]) -> Operator {
        let mut args = vec!["--metrics-addr", "127.0.0.1:0", "--request-timeout", "5s"];
        args.extend_from_slice(extra);
        self.spawn_operator(
            bin,
            name,
            &args,
            &[
                ("POD_NAME", name),
                ("LOG_FORMAT", "json"),
                ("RUST_LOG", "info"),
            ],
        )
    }

    /// Starts the operator binary `bin` (`zilliz-operator`) with fast retries
    /// ([`FAST_RETRY_ARGS`]); extra flags override. Its log is [`Cluster::operator_log`]; the
    /// cluster owns it (see [`Cluster::stop_operator`]).
    pub async fn start_operator(&mut self, bin: &Path, extra: &[&str]) {
        self.start_operator_env(bin, extra, &[]).await;
    }

    /// [`Cluster::start_operator`] with more environment variables (`RUST_LOG`, or a
    /// `KUBECONFIG` of its own such as a [`crate::kube_proxy::RecordingProxy`]'s), which win
    /// over the defaults.
    pub async fn start_operator_env(&mut self, bin: &Path, extra: &[&str], env: &[(&str, &str)]) {
        let mut args = FAST_RETRY_ARGS.to_vec();
        args.extend_from_slice(extra);
        let mut all_env = vec![("RUST_LOG", "info,zilliz_operator=debug")];
        all_env.extend_from_slice(env);
        let op = self.spawn_operator(bin, "operator", &args, &all_env);
        debug_assert_eq!(op.log, self.operator_log);
        self.operator = Some(op);
    }

    pub fn operator_pid(&self) -> Option<u32> {
        self.operator.as_ref().and_then(Operator::pid)
    }

    /// Stops the operator with SIGTERM and waits for it (10 s, then SIGKILL); answers its exit
    /// status when it stopped on the SIGTERM.
    pub async fn stop_operator(&mut self) -> Option<ExitStatus> {
        let mut op = self.operator.take()?;
        op.signal("TERM");
        let status = op.exit_within(Duration::from_secs(10)).await;
        let _ = op.child.kill().await;
        status
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.operator_log).unwrap_or_default()
    }

    pub fn log_tail(&self) -> String {
        tail(&self.log(), 40)
    }

    /// [`Cluster::log_tail`] without the ANSI colours of the text log, for failure messages.
    pub fn plain_log_tail(&self) -> String {
        let log: Vec<String> = self.log().lines().map(strip_ansi).collect();
        tail(&log.join("\n"), 40)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Polls `check` until it is true, or fails with `what` after `timeout`.
    pub async fn eventually<F, Fut>(&self, what: &str, timeout: Duration, mut check: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if check().await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "timed out after {timeout:?} waiting for: {what}\noperator log tail:\n{}",
            self.log_tail()
        );
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(op) = self.operator.as_mut() {
            let _ = op.child.start_kill();
        }
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        } else {
            eprintln!("e2e: kept {} for inspection", self.dir.display());
        }
    }
}

/// One `zilliz-operator run` process started by [`Cluster::spawn_operator`], logging to its own
/// file. Killed when dropped.
pub struct Operator {
    name: String,
    child: tokio::process::Child,
    log: PathBuf,
    addr: Option<String>,
}

impl Operator {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// None once it has been waited for.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last 30 lines of the log, under a header naming this operator.
    pub fn log_tail(&self) -> String {
        format!("--- {} log tail ---\n{}", self.name, tail(&self.log(), 30))
    }

    /// The JSON log lines (`LOG_FORMAT=json`) whose message contains `needle`.
    pub fn logged(&self, needle: &str) -> Vec<Value> {
        self.log()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["message"].as_str().is_some_and(|m| m.contains(needle)))
            .collect()
    }

    /// `kill -<sig> <pid>` (`TERM`, `INT`, `KILL`, ...): false when it is no longer running or
    /// kill failed.
    pub fn signal(&self, sig: &str) -> bool {
        let Some(pid) = self.pid() else {
            return false;
        };
        std::process::Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(pid.to_string())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// SIGTERM; fails when it could not be sent.
    pub fn sigterm(&self) {
        assert!(
            self.signal("TERM"),
            "kill -TERM {} ({:?}) failed",
            self.name,
            self.pid()
        );
    }

    /// SIGKILL, without waiting (see [`Operator::wait_exit`]).
    pub fn kill(&mut self) {
        self.child
            .start_kill()
            .unwrap_or_else(|e| panic!("SIGKILL {}: {e}", self.name));
    }

    /// Its exit status, if it exits within `within`.
    pub async fn exit_within(&mut self, within: Duration) -> Option<ExitStatus> {
        match tokio::time::timeout(within, self.child.wait()).await {
            Ok(status) => Some(status.unwrap()),
            Err(_) => None,
        }
    }

    /// Its exit status; fails (with the log tail) when it has not exited within `within`.
    pub async fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        match self.exit_within(within).await {
            Some(status) => status,
            None => panic!(
                "{} did not exit within {within:?}\n{}",
                self.name,
                self.log_tail()
            ),
        }
    }

    /// The bound address of /metrics, /healthz and /readyz, from the log (text or JSON): waits
    /// up to 20 s for it, failing early when the process exits.
    pub async fn addr(&mut self) -> String {
        if let Some(a) = &self.addr {
            return a.clone();
        }
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(20) {
            if let Some(addr) = metrics_addr(&self.log()) {
                self.addr = Some(addr.clone());
                return addr;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("{} exited with {status}\n{}", self.name, self.log_tail());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "{} never logged its metrics address\n{}",
            self.name,
            self.log_tail()
        );
    }

    /// GET on the ops endpoint (after [`Operator::addr`]): status and body. Fails when the
    /// request does (5 s timeout).
    pub async fn http(&self, path: &str) -> (u16, String) {
        let addr = self.addr.as_ref().expect("call addr() first");
        let url = format!("http://{addr}{path}");
        let resp = reqwest::Client::new()
            .get(&url)
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}\n{}", self.log_tail()));
        let status = resp.status().as_u16();
        (status, resp.text().await.unwrap())
    }

    /// None when /readyz answers 200 within `timeout` (polled every 100 ms), else why not.
    pub async fn readyz_within(&self, timeout: Duration) -> Option<String> {
        let start = Instant::now();
        loop {
            let (status, body) = self.http("/readyz").await;
            if status == 200 {
                return None;
            }
            if start.elapsed() > timeout {
                return Some(format!(
                    "{} /readyz still {status} {body:?} after {timeout:?}\n{}",
                    self.name,
                    self.log_tail()
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The address in the operator's [`SERVING_LINE`], from a whole log: the `addr` field of a JSON
/// line, or the `addr=` of a text line (ANSI colours or not).
pub fn metrics_addr(log: &str) -> Option<String> {
    log.lines().find_map(|line| {
        if let Ok(v) = serde_json::from_str::<Value>(line) {
            return v["message"]
                .as_str()
                .is_some_and(|m| m.contains(SERVING_LINE))
                .then(|| v["addr"].as_str().map(str::to_string))
                .flatten();
        }
        let line = strip_ansi(line);
        let (_, fields) = line.split_once(SERVING_LINE)?;
        fields
            .split_whitespace()
            .find_map(|f| f.strip_prefix("addr="))
            .map(str::to_string)
    })
}

/// `line` without ANSI escape sequences (`ESC [ ... final byte`).
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            if chars.next() == Some('[') {
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// One `events.k8s.io` Event as a test reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventSeen {
    /// the object it is about, `Kind/name` (`ZillizCollection/articles`)
    pub regarding: String,
    pub reason: String,
    pub note: String,
}

/// The Events in a `kubectl get events.events.k8s.io -o json` list, in order.
pub fn events_of(events: &Value) -> Vec<EventSeen> {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    events["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|e| EventSeen {
            regarding: format!(
                "{}/{}",
                text(&e["regarding"]["kind"]),
                text(&e["regarding"]["name"])
            ),
            reason: text(&e["reason"]),
            note: text(&e["note"]),
        })
        .collect()
}

impl Cluster {
    /// The `events.k8s.io` Events in namespace `ns`, in list order.
    pub async fn events(&self, ns: &str) -> Vec<EventSeen> {
        let events = self
            .get_json(&["get", "events.events.k8s.io", "-n", ns])
            .await;
        events_of(&events)
    }

    /// Starts `kubectl get <obj> -n <ns> --watch -o json`: every version of the object from
    /// now on (its status writes among them) is kept, so a test can say what an object
    /// *never* showed, not only what it shows at the end. Stops when dropped.
    pub fn watch(&self, ns: &str, obj: &str) -> Watch {
        let mut child = std::process::Command::new(KUBECTL)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(["get", obj, "-n", ns, "--watch", "-o", "json"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("run kubectl --watch");
        let stdout = child.stdout.take().expect("kubectl stdout");
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = seen.clone();
        std::thread::spawn(move || {
            let reader = std::io::BufReader::new(stdout);
            for v in serde_json::Deserializer::from_reader(reader).into_iter::<Value>() {
                let Ok(v) = v else { break };
                sink.lock().unwrap().push(v);
            }
        });
        Watch {
            what: format!("{ns}/{obj}"),
            child,
            seen,
        }
    }
}

/// The versions of one object seen by [`Cluster::watch`].
pub struct Watch {
    what: String,
    child: std::process::Child,
    seen: std::sync::Arc<std::sync::Mutex<Vec<Value>>>,
}

impl Watch {
    /// Every version seen so far, in order.
    pub fn seen(&self) -> Vec<Value> {
        self.seen.lock().unwrap().clone()
    }

    /// The distinct `(status, reason)` of condition `type_` seen so far, in order of first
    /// appearance (`("", "")` for a version without it).
    pub fn conditions_seen(&self, type_: &str) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        for v in self.seen() {
            let c = condition(&v, type_);
            let field = |k: &str| {
                c.and_then(|c| c[k].as_str())
                    .unwrap_or_default()
                    .to_string()
            };
            let pair = (field("status"), field("reason"));
            if !out.contains(&pair) {
                out.push(pair);
            }
        }
        out
    }

    /// The versions seen whose condition `type_` has `reason` (empty when none did).
    pub fn with_reason(&self, type_: &str, reason: &str) -> Vec<Value> {
        self.seen()
            .into_iter()
            .filter(|v| condition(v, type_).is_some_and(|c| c["reason"] == reason))
            .collect()
    }

    /// Waits until the watch has delivered at least one version (kubectl's first list), so
    /// that nothing after this call is missed; fails after `timeout`.
    pub async fn started(&self, timeout: Duration) {
        let start = Instant::now();
        while self.seen.lock().unwrap().is_empty() {
            assert!(
                start.elapsed() < timeout,
                "kubectl --watch of {} delivered nothing within {timeout:?}",
                self.what
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A ZillizCluster `name` for the cluster `id` on the control plane (v2) at `base`, its API
/// key in the Secret `secret` (key `apiKey`), with `deletionPolicy: policy`.
pub fn cluster_yaml(
    ns: &str,
    name: &str,
    id: &str,
    base: &str,
    secret: &str,
    policy: &str,
) -> String {
    format!(
        r#"apiVersion: zilliz.io/v1alpha1
kind: ZillizCluster
metadata: {{name: {name}, namespace: {ns}}}
spec:
  clusterId: {id}
  controlPlane: {{apiVersion: v2, baseUrl: "{base}"}}
  credentialsSecretRef: {{name: {secret}}}
  deletionPolicy: {policy}
"#
    )
}

/// A ZillizCollection `name` for the collection `collection` in the cluster of the
/// ZillizCluster object `cluster` (`clusterRef`), with `deletionPolicy: policy`.
pub fn collection_ref_yaml(
    ns: &str,
    name: &str,
    collection: &str,
    cluster: &str,
    policy: &str,
) -> String {
    format!(
        r#"apiVersion: zilliz.io/v1alpha1
kind: ZillizCollection
metadata: {{name: {name}, namespace: {ns}}}
spec:
  collectionName: {collection}
  clusterRef: {{name: {cluster}}}
  deletionPolicy: {policy}
"#
    )
}

/// Polls `check` every 50 ms until it is true and answers how long that took; fails with
/// `what` once `timeout` has passed.
pub async fn eventually<F, Fut>(what: &str, timeout: Duration, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return start.elapsed();
        }
        if start.elapsed() > timeout {
            panic!("timed out after {timeout:?} waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The reasons of the Events in a `kubectl get events -o json` list, in order (`""` for an
/// Event without one).
pub fn event_reasons_of(events: &Value) -> Vec<String> {
    events["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|e| e["reason"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// The condition `type_` (`Ready`, `Synced`) of an object read with `-o json`.
pub fn condition<'a>(obj: &'a Value, type_: &str) -> Option<&'a Value> {
    obj["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
}

/// YAML of a Secret with one string key.
pub fn secret_yaml(ns: &str, name: &str, key: &str, value: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\n  namespace: {ns}\ntype: Opaque\nstringData:\n  {key}: \"{value}\"\n"
    )
}

/// A ZillizCollection `name` for the collection `collection` at `endpoint`, its token in the
/// Secret `creds` (under `key`, or the default key).
pub fn collection_yaml(
    ns: &str,
    name: &str,
    collection: &str,
    endpoint: &str,
    key: Option<&str>,
) -> String {
    let key = key.map(|k| format!(", key: {k}")).unwrap_or_default();
    format!(
        r#"apiVersion: zilliz.io/v1alpha1
kind: ZillizCollection
metadata: {{name: {name}, namespace: {ns}}}
spec:
  collectionName: {collection}
  connection: {{endpoint: "{endpoint}", credentialsSecretRef: {{name: creds{key}}}}}
"#
    )
}

/// `n` collections `coll<i>` (collection `coll_<i>`) at `endpoint`, as one multi-document YAML.
pub fn numbered_collections_yaml(ns: &str, n: usize, endpoint: &str, key: Option<&str>) -> String {
    (0..n)
        .map(|i| collection_yaml(ns, &format!("coll{i}"), &format!("coll_{i}"), endpoint, key))
        .collect::<Vec<_>>()
        .join("---\n")
}

pub fn namespace_yaml(ns: &str) -> String {
    format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n")
}

/// A ZillizCollection with neither `clusterRef` nor `connection`: invalid on purpose, so its
/// reconcile needs no external API (see [`Cluster::reconciled_invalid`]).
pub fn invalid_collection_yaml(ns: &str, name: &str) -> String {
    format!(
        "apiVersion: zilliz.io/v1alpha1\nkind: ZillizCollection\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n  collectionName: {name}\n  connection: {{endpoint: not-a-url, credentialsSecretRef: {{name: unused}}}}\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_metrics_address_is_read_from_text_and_json_logs() {
        let json = concat!(
            r#"{"timestamp":"2026-11-23T12:11:01.877823Z","level":"INFO","message":"zilliz-operator starting"}"#,
            "\n",
            r#"{"timestamp":"2026-11-23T12:11:01.877823Z","level":"INFO","message":"serving /metrics, /healthz and /readyz","addr":"127.0.0.1:35445","target":"zilliz_operator::operator"}"#,
            "\n",
        );
        assert_eq!(metrics_addr(json).as_deref(), Some("127.0.0.1:35445"));
        let plain = "2026-11-23T12:11:01.939925Z  INFO zilliz_operator::operator: serving /metrics, /healthz and /readyz addr=127.0.0.1:43399\n";
        assert_eq!(metrics_addr(plain).as_deref(), Some("127.0.0.1:43399"));
        let coloured = "\x1b[2m2026-11-23T12:11:00.106147Z\x1b[0m \x1b[32m INFO\x1b[0m \x1b[2mzilliz_operator::operator\x1b[0m\x1b[2m:\x1b[0m serving /metrics, /healthz and /readyz \x1b[3maddr\x1b[0m\x1b[2m=\x1b[0m127.0.0.1:36017\n";
        assert_eq!(metrics_addr(coloured).as_deref(), Some("127.0.0.1:36017"));
        assert_eq!(metrics_addr("not yet\n{\"message\":\"other\"}\n"), None);
        assert_eq!(
            metrics_addr(r#"{"message":"serving /metrics, /healthz and /readyz"}"#),
            None
        );
    }

    #[test]
    fn event_reasons_keep_order_and_blanks() {
        let events = serde_json::json!({"items": [
            {"reason": "Dropped"}, {}, {"reason": "DropAccepted"}
        ]});
        assert_eq!(event_reasons_of(&events), ["Dropped", "", "DropAccepted"]);
        assert!(event_reasons_of(&serde_json::json!({})).is_empty());
    }
}
