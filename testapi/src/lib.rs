//! `kube-test-server`: an in-memory Kubernetes API server for tests.
//!
//! It speaks enough of the kube-apiserver REST protocol (JSON only) for
//! kube-rs clients, `kube::runtime` watchers/controllers/finalizers and
//! kubectl: discovery, CRDs, CRUD, the four patch types (server-side apply
//! with managedFields and conflicts), status
//! subresources, generation, finalizers, namespace termination and watches
//! with bookmarks, server-side Table printing for kubectl, and custom resources judged by
//! their CRD's schema and CEL rules (pruning, defaulting, validation). See the crate
//! README for what is not implemented.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let server = kube_test_server::TestServer::start().await?;
//! let url = server.url(); // http://127.0.0.1:PORT, no auth
//! server.faults().fail_next(1, 503);
//! server.shutdown().await;
//! # Ok(()) }
//! ```

pub mod cel;
pub mod discovery;
pub mod error;
pub mod handlers;
pub mod managed;
pub mod patch;
pub mod schema;
pub mod selector;
pub mod store;
pub mod table;
pub mod watch;

pub use cel::{UnboundedRule, unbounded_rules};

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU16, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use store::{Event, Store};
use tokio::sync::{broadcast, oneshot};

/// Shared server state.
pub struct App {
    /// The object store.
    pub store: Mutex<Store>,
    /// Change events (sent while the store lock is held).
    pub events: broadcast::Sender<Arc<Event>>,
    /// Bumped to end every open watch.
    pub close_epoch: tokio::sync::watch::Sender<u64>,
    /// Fault injection and counters.
    pub faults: Faults,
    /// `host:port` the server listens on.
    pub addr: String,
}

#[derive(Default)]
struct FaultState {
    fail_remaining: AtomicUsize,
    fail_status: AtomicU16,
    /// Requests whose User-Agent starts with this are not failed.
    fail_spares: Mutex<Option<String>>,
    latency_micros: AtomicU64,
    counts: Mutex<BTreeMap<String, u64>>,
    /// The same, per client: (product of the User-Agent, e.g. `kubectl`, key) → count.
    counts_by_client: Mutex<BTreeMap<(String, String), u64>>,
    app: Mutex<Option<std::sync::Weak<App>>>,
}

/// Fault-injection handle (cheap to clone).
#[derive(Clone, Default)]
pub struct Faults(Arc<FaultState>);

impl Faults {
    /// End every open watch stream now (clients see the stream close).
    pub fn close_watches(&self) {
        if let Some(app) = self.app() {
            app.close_epoch.send_modify(|e| *e += 1);
        }
    }

    /// The next `n` requests answer `status` with a `Status` body
    /// (429 also carries `Retry-After: 1`).
    pub fn fail_next(&self, n: usize, status: u16) {
        self.fail_next_sparing(n, status, None);
    }

    /// Like [`Faults::fail_next`], but requests whose User-Agent starts with `spared` (say
    /// `"kubectl/"`, whose client gives up after 10 retries of a 429) are served normally and
    /// do not count: the failures land on the other clients, however few requests they make.
    pub fn fail_next_sparing(&self, n: usize, status: u16, spared: Option<&str>) {
        if let Ok(mut s) = self.0.fail_spares.lock() {
            *s = spared.map(str::to_string);
        }
        self.0.fail_status.store(status, Ordering::SeqCst);
        self.0.fail_remaining.store(n, Ordering::SeqCst);
    }

    /// How many injected failures are still to come.
    pub fn failures_left(&self) -> usize {
        self.0.fail_remaining.load(Ordering::SeqCst)
    }

    /// Delay added before every answer.
    pub fn set_latency(&self, d: Duration) {
        self.0.latency_micros.store(
            u64::try_from(d.as_micros()).unwrap_or(u64::MAX),
            Ordering::SeqCst,
        );
    }

    /// Forget the event history: watches from any resourceVersion handed
    /// out before this call get an ERROR event with a 410 Expired `Status`.
    pub fn compact(&self) {
        if let Some(app) = self.app()
            && let Ok(mut s) = app.store.lock()
        {
            s.compact();
        }
    }

    /// Requests served per `"<verb> <resource>"`, e.g. `"create secrets"`,
    /// `"patch zillizclusters.zilliz.io"`, `"patch zillizclusters.zilliz.io/status"`,
    /// `"list leases.coordination.k8s.io"`, `"watch ..."`. Discovery and
    /// requests failed by [`Faults::fail_next`] are not counted.
    pub fn request_counts(&self) -> BTreeMap<String, u64> {
        self.0.counts.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// [`Faults::request_counts`] of the clients whose User-Agent product (the part before
    /// the first `/`) is `product`: `kubectl`, or a kube-rs client's application name.
    pub fn request_counts_from(&self, product: &str) -> BTreeMap<String, u64> {
        self.0
            .counts_by_client
            .lock()
            .map(|c| {
                c.iter()
                    .filter(|((p, _), _)| p == product)
                    .map(|((_, k), v)| (k.clone(), *v))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Reset [`Faults::request_counts`].
    pub fn reset_counts(&self) {
        if let Ok(mut c) = self.0.counts.lock() {
            c.clear();
        }
        if let Ok(mut c) = self.0.counts_by_client.lock() {
            c.clear();
        }
    }

    pub(crate) fn count(&self, key: String, user_agent: Option<&str>) {
        let product = user_agent
            .and_then(|ua| ua.split('/').next())
            .unwrap_or_default()
            .to_string();
        if let Ok(mut c) = self.0.counts_by_client.lock() {
            *c.entry((product, key.clone())).or_default() += 1;
        }
        if let Ok(mut c) = self.0.counts.lock() {
            *c.entry(key).or_default() += 1;
        }
    }

    pub(crate) fn latency(&self) -> Duration {
        Duration::from_micros(self.0.latency_micros.load(Ordering::SeqCst))
    }

    pub(crate) fn take_failure(&self, user_agent: Option<&str>) -> Option<u16> {
        let spared = self.0.fail_spares.lock().ok().is_some_and(|s| {
            s.as_deref()
                .is_some_and(|prefix| user_agent.is_some_and(|ua| ua.starts_with(prefix)))
        });
        if spared {
            return None;
        }
        self.0
            .fail_remaining
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .ok()
            .map(|_| self.0.fail_status.load(Ordering::SeqCst))
    }

    fn app(&self) -> Option<Arc<App>> {
        self.0
            .app
            .lock()
            .ok()
            .and_then(|a| a.as_ref().and_then(std::sync::Weak::upgrade))
    }
}

/// A running server.
pub struct TestServer {
    addr: SocketAddr,
    app: Arc<App>,
    shutdown: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl TestServer {
    /// Start on a random free port of 127.0.0.1.
    pub async fn start() -> std::io::Result<TestServer> {
        Self::start_on(0).await
    }

    /// Start on the given port of 127.0.0.1 (0 = random).
    pub async fn start_on(port: u16) -> std::io::Result<TestServer> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        let (events, _) = broadcast::channel(8192);
        let (close_epoch, _) = tokio::sync::watch::channel(0u64);
        let faults = Faults::default();
        let app = Arc::new(App {
            store: Mutex::new(Store::new(events.clone())),
            events,
            close_epoch,
            faults: faults.clone(),
            addr: addr.to_string(),
        });
        if let Ok(mut a) = faults.0.app.lock() {
            *a = Some(Arc::downgrade(&app));
        }
        let router = axum::Router::new()
            .fallback(handlers::handle)
            .with_state(app.clone());
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = rx.await;
                })
                .await;
        });
        Ok(TestServer {
            addr,
            app,
            shutdown: Some(tx),
            task,
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A kubeconfig (cluster/user/context `kube-test-server`, namespace `default`).
    pub fn kubeconfig_yaml(&self) -> String {
        kubeconfig_yaml(&self.url())
    }

    /// Write [`TestServer::kubeconfig_yaml`] to `path`.
    pub fn write_kubeconfig(&self, path: &Path) -> std::io::Result<()> {
        std::fs::write(path, self.kubeconfig_yaml())
    }

    /// Fault-injection handle.
    pub fn faults(&self) -> Faults {
        self.app.faults.clone()
    }

    /// Request counters, see [`Faults::request_counts`].
    pub fn request_counts(&self) -> BTreeMap<String, u64> {
        self.app.faults.request_counts()
    }

    /// Stop serving: close watches, stop accepting, wait (at most 5 s) for
    /// in-flight requests.
    pub async fn shutdown(mut self) {
        self.app.faults.close_watches();
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let abort = self.task.abort_handle();
        if tokio::time::timeout(Duration::from_secs(5), &mut self.task)
            .await
            .is_err()
        {
            abort.abort();
        }
    }
}

/// A kubeconfig pointing at `url` without credentials.
pub fn kubeconfig_yaml(url: &str) -> String {
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: kube-test-server
  cluster:
    server: {url}
users:
- name: kube-test-server
  user:
    token: kube-test-server
contexts:
- name: kube-test-server
  context:
    cluster: kube-test-server
    user: kube-test-server
    namespace: default
current-context: kube-test-server
preferences: {{}}
"
    )
}
