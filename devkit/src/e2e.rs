//! End-to-end harness: the project's test Kubernetes API server (in process), the real
//! `zilliz-operator` binary as a subprocess with a kubeconfig, and kubectl.
//!
//! The operator binary is a parameter of [`Cluster::start_operator`]: the operator's own
//! integration tests pass `env!("CARGO_BIN_EXE_zilliz-operator")`, the demo finds it next to
//! itself.

use kube_test_server::TestServer;
use serde_json::Value;
use std::{
    path::{Path, PathBuf},
    process::Stdio,
    sync::atomic::{AtomicUsize, Ordering},
    time::{Duration, Instant},
};
use tokio::{io::AsyncWriteExt, process::Command};

pub const KUBECTL: &str = "kubectl";

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

pub struct Cluster {
    pub server: TestServer,
    pub dir: PathBuf,
    pub kubeconfig: PathBuf,
    operator: Option<tokio::process::Child>,
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
        let out = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
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

    /// Starts the operator binary `bin` (`zilliz-operator`) with fast retries; extra flags
    /// override.
    pub async fn start_operator(&mut self, bin: &Path, extra: &[&str]) {
        let log = std::fs::File::create(&self.operator_log).unwrap();
        let child = Command::new(bin)
            .arg("run")
            .args([
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
            ])
            .args(extra)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("RUST_LOG", "info,zilliz_operator=debug")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", bin.display()));
        self.operator = Some(child);
    }

    pub fn operator_pid(&self) -> Option<u32> {
        self.operator.as_ref().and_then(|c| c.id())
    }

    /// Stops the operator with SIGTERM and waits for it (10 s, then SIGKILL); answers its exit
    /// status when it stopped on the SIGTERM.
    pub async fn stop_operator(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.operator.take()?;
        if let Some(pid) = child.id() {
            let _ = std::process::Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .status();
        }
        let status = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
        let _ = child.kill().await;
        status.ok().and_then(Result::ok)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.operator_log).unwrap_or_default()
    }

    pub fn log_tail(&self) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
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
        if let Some(child) = self.operator.as_mut() {
            let _ = child.start_kill();
        }
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        } else {
            eprintln!("e2e: kept {} for inspection", self.dir.display());
        }
    }
}

/// YAML of a Secret with one string key.
pub fn secret_yaml(ns: &str, name: &str, key: &str, value: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\n  namespace: {ns}\ntype: Opaque\nstringData:\n  {key}: \"{value}\"\n"
    )
}

pub fn namespace_yaml(ns: &str) -> String {
    format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n")
}
