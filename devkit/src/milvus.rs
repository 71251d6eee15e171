//! Fixture: a real Milvus 2.3.5 standalone server (PyPI `milvus`, REST v1 only).
//!
//! * Finds `milvus-server`: env `MILVUS_SERVER`, else `<repo>/target/milvus-venv/bin/milvus-server`;
//!   when that is missing it runs `devkit/scripts/provision-milvus.sh` (a venv plus
//!   `pip install milvus==2.3.5`, under a file lock so parallel test binaries do not race).
//!   When python3, venv or PyPI is unavailable: panics if env `CI` is set, otherwise the test is
//!   skipped with a loud message on stderr ([`Milvus::start`] answers `None`).
//! * Every port is chosen here and exact (see `milvus_launch.py`): the proxy (gRPC + REST), the
//!   internal coordinator ports, the metrics/healthz port and the embedded etcd's client and peer
//!   ports. So any number of servers run at once, beside other test binaries and a developer's
//!   own Milvus on 19530. A port taken in between is an error (not a silent move), and the
//!   start is retried on fresh ports.
//! * Each server gets its own data directory and runs in its own process group under a small
//!   bash guard that holds a pipe from this process: when the pipe closes (the [`Milvus`] value
//!   is dropped, a test panics, or the test process dies, even by SIGKILL) the guard kills the
//!   whole group and removes the data directory. No server outlives the test process.

#![allow(dead_code)]

use std::{
    io::Write,
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        OnceLock,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

/// The built-in administrator of a Milvus with authorization on.
pub const ROOT_TOKEN: &str = "root:Milvus";
pub const MILVUS_VERSION: &str = "2.3.5";

/// Longest wait for a server to answer (2 cores shared with builds; a start takes about 3-10 s).
const READY_TIMEOUT: Duration = Duration::from_secs(180);
const START_ATTEMPTS: usize = 3;

/// Runs the server (`$@`) as the leader of a new process group and kills the group (then removes
/// the data directory) when stdin reaches EOF, when the server exits, or on TERM/INT/HUP.
/// `$1` = log file, `$2` = data directory, rest = the command.
const GUARD: &str = r#"
set -u
log=$1; data=$2; shift 2
setsid "$@" </dev/null >"$log" 2>&1 &
server=$!
cat <&0 >/dev/null &
watcher=$!
stop() {
    trap - TERM INT HUP
    exec 2>/dev/null # no "Killed" job notices
    kill -KILL -- "-$server" 2>/dev/null
    kill "$watcher" 2>/dev/null
    for _ in $(seq 100); do
        kill -0 -- "-$server" 2>/dev/null || break
        sleep 0.1
    done
    wait "$server" 2>/dev/null
    if [ "${1:-0}" != 0 ]; then
        tail -n 40 "$data/logs/milvus-stderr.log" >>"$log" 2>/dev/null
    fi
    rm -rf -- "$data"
    # keep the log of a server that died on its own: the fixture shows it
    [ "${1:-0}" = 0 ] && rm -f -- "$log"
    exit "${1:-0}"
}
trap stop TERM INT HUP
wait -n "$server" "$watcher"
# the server exiting first means it failed: say so through the exit status
if kill -0 "$server" 2>/dev/null; then stop 0; else stop 3; fi
"#;

/// The workspace root (`devkit/..`): `target/milvus-venv` lives there.
fn repo() -> PathBuf {
    crate::workspace_root()
}

/// `devkit/scripts/<name>`: the provisioning script and the launcher.
fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scripts")
        .join(name)
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false")
}

/// No Milvus here: fail in CI, skip (loudly) elsewhere.
fn unavailable(why: &str) -> Option<PathBuf> {
    if in_ci() {
        panic!("CI is set and the Milvus test server is unavailable: {why}");
    }
    // straight to fd 2: the test harness captures eprintln! of passing tests
    let _ = writeln!(
        std::io::stderr(),
        "\n==================================================================\n\
         SKIPPING the real-Milvus tests: {why}\n\
         (they need python3 with venv and PyPI access for milvus=={MILVUS_VERSION};\n\
         set MILVUS_SERVER=/path/to/milvus-server to use an existing install;\n\
         with CI set this is a failure)\n\
         ==================================================================\n"
    );
    None
}

/// `<repo>/target/milvus-venv`: where `provision-milvus.sh` installs the server.
pub fn venv_dir() -> PathBuf {
    repo().join("target").join("milvus-venv")
}

/// Whether a server can start without provisioning first (env `MILVUS_SERVER` set, or the venv
/// complete with its unpacked binaries).
pub fn is_provisioned() -> bool {
    if std::env::var_os("MILVUS_SERVER").is_some_and(|p| !p.is_empty()) {
        return true;
    }
    let venv = venv_dir();
    venv.join("bin").join("milvus-server").is_file()
        && venv
            .join(format!(".provisioned-milvus-{MILVUS_VERSION}"))
            .is_file()
        && venv.join("milvus-home/bin/milvus").is_file()
}

/// `milvus-server`, provisioned once per process (and once per machine thanks to the lock).
fn milvus_server() -> Option<PathBuf> {
    static FOUND: OnceLock<Option<PathBuf>> = OnceLock::new();
    FOUND.get_or_init(find_or_provision).clone()
}

fn find_or_provision() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("MILVUS_SERVER").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        assert!(p.is_file(), "MILVUS_SERVER={} does not exist", p.display());
        return Some(p);
    }
    let venv = venv_dir();
    let exe = venv.join("bin").join("milvus-server");
    if is_provisioned() {
        return Some(exe);
    }
    let script = script("provision-milvus.sh");
    eprintln!(
        "milvus fixture: {} is not ready; running {} (python3 -m venv + pip install milvus=={MILVUS_VERSION})",
        venv.display(),
        script.display()
    );
    let started = Instant::now();
    let status = Command::new("bash")
        .arg(&script)
        .arg(&venv)
        .stdin(Stdio::null())
        .status();
    eprintln!(
        "milvus fixture: provisioning finished in {:.1?}: {status:?}",
        started.elapsed()
    );
    match status {
        Ok(s) if s.success() => Some(exe),
        Ok(s) if s.code() == Some(2) => {
            unavailable("python3, python3 -m venv or PyPI is not available (see the output above)")
        }
        Ok(s) => panic!("{} failed: {s}", script.display()),
        Err(e) => unavailable(&format!("cannot run bash: {e}")),
    }
}

/// The interpreter of the venv that holds `milvus-server` (its sibling `python3`, else its
/// shebang).
fn python_of(exe: &Path) -> PathBuf {
    let sibling = exe.with_file_name("python3");
    if sibling.is_file() {
        return sibling;
    }
    std::fs::read_to_string(exe)
        .ok()
        .and_then(|s| {
            s.lines()
                .next()
                .and_then(|l| l.strip_prefix("#!"))
                .and_then(|l| l.split_whitespace().next())
                .map(PathBuf::from)
        })
        .unwrap_or_else(|| PathBuf::from("python3"))
}

/// The names `milvus_launch.py` expects, in the order the ports are picked.
const PORT_NAMES: [&str; 12] = [
    "proxy_port",
    "etcd_client",
    "etcd_peer",
    "metrics",
    "root_coord_port",
    "proxy_internal_port",
    "query_coord_port",
    "query_node_port",
    "index_coord_port",
    "index_node_port",
    "data_coord_port",
    "data_node_port",
];

/// Distinct free ports from the kernel (all held at once, then released for the server).
fn pick_ports() -> Vec<u16> {
    let held: Vec<TcpListener> = PORT_NAMES
        .iter()
        .map(|_| TcpListener::bind("0.0.0.0:0").expect("bind an ephemeral port"))
        .collect();
    held.iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

/// A running Milvus server; dropping it stops the server and removes its data.
pub struct Milvus {
    /// `http://127.0.0.1:<proxy port>` (REST v1 and gRPC share the proxy port).
    pub base: String,
    pub port: u16,
    pub auth: bool,
    /// From spawning the server to the first 200 on `GET /v1/vector/collections`.
    pub startup: Duration,
    data_dir: PathBuf,
    log: PathBuf,
    guard: Option<Child>,
}

impl Milvus {
    /// Starts a server (`auth`: `--authorization-enabled true`, user root / password Milvus).
    /// `None`: no Milvus on this machine and not in CI, so the caller returns (skips).
    pub async fn start(auth: bool) -> Option<Milvus> {
        let exe = match tokio::task::spawn_blocking(milvus_server).await {
            Ok(found) => found?,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        };
        let python = python_of(&exe);
        let bin_cache = exe
            .parent()
            .and_then(Path::parent)
            .map(|venv| venv.join("milvus-home").join("bin"))
            .filter(|b| b.join("milvus").is_file());
        let mut last = String::new();
        for attempt in 1..=START_ATTEMPTS {
            match Self::try_start(&python, bin_cache.as_deref(), auth).await {
                Ok(m) => {
                    eprintln!(
                        "milvus fixture: server (auth {}) ready on {} in {:.1?}",
                        if auth { "on" } else { "off" },
                        m.base,
                        m.startup
                    );
                    return Some(m);
                }
                Err(e) => {
                    eprintln!("milvus fixture: start attempt {attempt} failed: {e}");
                    last = e;
                }
            }
        }
        panic!("Milvus did not start in {START_ATTEMPTS} attempts; last: {last}");
    }

    async fn try_start(
        python: &Path,
        bin_cache: Option<&Path>,
        auth: bool,
    ) -> Result<Milvus, String> {
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "zilliz-operator-milvus-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::SeqCst)
        );
        let data_dir = std::env::temp_dir().join(&name);
        let log = std::env::temp_dir().join(format!("{name}.log"));
        let ports = pick_ports();
        let port_json = serde_json::Value::Object(
            PORT_NAMES
                .iter()
                .zip(&ports)
                .map(|(k, p)| (k.to_string(), serde_json::json!(p)))
                .collect(),
        )
        .to_string();
        let launcher = script("milvus_launch.py");
        let started = Instant::now();
        let guard = Command::new("bash")
            .arg("-c")
            .arg(GUARD)
            .arg("milvus-guard")
            .arg(&log)
            .arg(&data_dir)
            .arg(python)
            .arg(&launcher)
            .arg(&data_dir)
            .arg(if auth { "1" } else { "0" })
            .arg(&port_json)
            .arg(bin_cache.map(Path::as_os_str).unwrap_or_default())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot spawn bash: {e}"))?;
        // from here on, Drop cleans up whatever happens
        let mut m = Milvus {
            base: format!("http://127.0.0.1:{}", ports[0]),
            port: ports[0],
            auth,
            startup: Duration::ZERO,
            data_dir,
            log,
            guard: Some(guard),
        };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        let url = format!("{}/v1/vector/collections", m.base);
        loop {
            if let Some(status) = m.guard.as_mut().unwrap().try_wait().ok().flatten() {
                return Err(format!(
                    "the server exited ({status}) before answering; log {}:\n{}",
                    m.log.display(),
                    m.log_tail()
                ));
            }
            let mut req = http.get(&url);
            if auth {
                req = req.bearer_auth(ROOT_TOKEN);
            }
            if let Ok(resp) = req.send().await
                && resp.status() == 200
            {
                m.startup = started.elapsed();
                return Ok(m);
            }
            if started.elapsed() > READY_TIMEOUT {
                return Err(format!(
                    "no 200 from {url} within {READY_TIMEOUT:?}; log:\n{}",
                    m.log_tail()
                ));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The last lines of the server's stdout/stderr (the launcher's and the server's).
    pub fn log_tail(&self) -> String {
        let mut text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let stderr = self.data_dir.join("logs").join("milvus-stderr.log");
        text.push_str(&std::fs::read_to_string(stderr).unwrap_or_default());
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Stops the server now (also done on drop).
    pub fn stop(&mut self) {
        let Some(mut guard) = self.guard.take() else {
            return;
        };
        drop(guard.stdin.take()); // EOF: the guard kills the process group
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match guard.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                _ => {
                    let _ = guard.kill();
                    let _ = guard.wait();
                    break;
                }
            }
        }
        let _ = std::fs::remove_dir_all(&self.data_dir);
        let _ = std::fs::remove_file(&self.log);
    }
}

impl Drop for Milvus {
    fn drop(&mut self) {
        self.stop();
    }
}
