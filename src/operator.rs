//! Wiring: four controllers, the Secret watch, health and metrics, graceful shutdown.

use crate::{
    api::HttpClient,
    controller::{self, Context, Settings},
    crd::{ZillizCluster, ZillizCollection, ZillizIndex, ZillizPartition},
    metrics::{KindLabel, Metrics},
    secrets::{self, Janitor, Tokens},
    stores::Cached as Managed,
    stores::{CacheWriter, Stores},
};
use axum::{Router, extract::State, http::StatusCode, response::IntoResponse, routing::get};
use futures::{
    FutureExt, StreamExt, TryStreamExt,
    channel::mpsc::{UnboundedReceiver, unbounded},
    future::BoxFuture,
};
use k8s_openapi::api::core::v1::Secret;
use kube::{
    Api, Client, ResourceExt,
    api::{ListParams, ObjectMeta, PartialObjectMeta},
    runtime::{
        Controller, PredicateConfig, WatchStreamExt,
        controller::Config as ControllerConfig,
        reflector::{self, Store},
        watcher,
    },
};
use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};
use tokio::sync::watch;
use tracing::{error, info, warn};

/// Runtime options of `zilliz-operator run`.
#[derive(Clone, Debug)]
pub struct Options {
    /// Watch one namespace, or all when `None`.
    pub namespace: Option<String>,
    pub concurrency: u16,
    pub settings: Settings,
    pub request_timeout: Duration,
    pub ca_bundle: Option<Vec<u8>>,
    /// Control plane requests per second per endpoint and credential (`None`: unlimited).
    pub control_plane_rps: Option<std::num::NonZeroU32>,
    /// Data plane calls in flight per endpoint (`None`: unlimited).
    pub data_plane_concurrency: Option<std::num::NonZeroUsize>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(
        "the CustomResourceDefinition for {0} is not installed; install the CRDs first: `zilliz-operator crd | kubectl apply -f -` (or `kubectl apply -f crds/`)"
    )]
    CrdMissing(String),
    #[error("cannot reach the Kubernetes API to check the CRDs: {0}")]
    Kube(#[from] kube::Error),
    #[error("cannot build the HTTP client: {0}")]
    Http(#[from] reqwest::Error),
    #[error("cannot serve metrics and health on {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
}

fn api_for<K: Managed>(client: &Client, namespace: &Option<String>) -> Api<K> {
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// Checks that a CRD is installed (a list with limit 1 answers 404 otherwise).
async fn check_crd<K: Managed>(
    client: &Client,
    namespace: &Option<String>,
) -> Result<(), StartError> {
    match api_for::<K>(client, namespace)
        .list_metadata(&ListParams::default().limit(1))
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Err(StartError::CrdMissing(format!(
            "{}.{}",
            K::plural(&()),
            K::group(&())
        ))),
        Err(e) => Err(e.into()),
    }
}

/// Health, readiness and metrics state shared with the HTTP endpoints.
pub struct Health {
    ready: AtomicBool,
    metrics: Arc<Metrics>,
    pending: std::sync::Mutex<Vec<PendingProbe>>,
}

type PendingProbe = Box<dyn Fn() -> (&'static str, i64, i64) + Send + Sync>;

impl Health {
    pub fn new(metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(Health {
            ready: AtomicBool::new(false),
            metrics,
            pending: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// Ready: a standby waiting for the lease, or a leader whose watches have synced.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }
}

async fn metrics_handler(State(h): State<Arc<Health>>) -> impl IntoResponse {
    for probe in h.pending.lock().unwrap_or_else(|p| p.into_inner()).iter() {
        let (kind, count, oldest) = probe();
        h.metrics
            .pending_deletion
            .get_or_create(&KindLabel { kind })
            .set(count);
        h.metrics
            .oldest_pending_deletion_seconds
            .get_or_create(&KindLabel { kind })
            .set(oldest);
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        h.metrics.encode(),
    )
}

async fn readyz(State(h): State<Arc<Health>>) -> impl IntoResponse {
    if h.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "watches not synced yet")
    }
}

/// Serves /metrics, /healthz and /readyz until `shutdown` turns true.
pub async fn serve_health(
    addr: SocketAddr,
    health: Arc<Health>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<SocketAddr, StartError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| StartError::Bind(addr, e))?;
    let bound = listener
        .local_addr()
        .map_err(|e| StartError::Bind(addr, e))?;
    let app = Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(health);
    tokio::spawn(async move {
        let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
            let _ = shutdown.wait_for(|s| *s).await;
        });
        if let Err(e) = serve.await {
            error!(error = %e, "metrics server failed");
        }
    });
    info!(addr = %bound, "serving /metrics, /healthz and /readyz");
    Ok(bound)
}

/// Readiness: every kind's watch has delivered its initial list. (Not `Store::wait_until_ready`:
/// its one-shot wakes a single waiter, and the controller's runner is already waiting on it.)
struct Synced {
    kinds: std::sync::Mutex<std::collections::BTreeSet<&'static str>>,
    health: Arc<Health>,
}

impl Synced {
    fn kind_synced(&self, kind: &'static str) {
        let mut kinds = self.kinds.lock().unwrap_or_else(|p| p.into_inner());
        if kinds.insert(kind) && kinds.len() == 4 {
            self.health.set_ready(true);
            info!("watches synced; ready");
        }
    }
}

/// Objects being deleted in a store: count, and the age in seconds of the oldest.
fn pending_probe<K: Managed>(
    store: Store<K>,
) -> Box<dyn Fn() -> (&'static str, i64, i64) + Send + Sync> {
    Box::new(move || {
        let now = jiff::Timestamp::now();
        let mut count = 0;
        let mut oldest = 0;
        for obj in store.state() {
            if let Some(ts) = &obj.meta().deletion_timestamp {
                count += 1;
                oldest = oldest.max(now.duration_since(ts.0).as_secs());
            }
        }
        (K::LABEL, count, oldest)
    })
}

/// What a change must touch to trigger a reconcile: the spec (generation), the finalizers, or
/// the deletion mark.
pub fn trigger_hash<K: Managed>(obj: &K) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let meta = obj.meta();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    meta.generation.hash(&mut h);
    meta.finalizers.hash(&mut h);
    meta.deletion_timestamp.is_some().hash(&mut h);
    Some(h.finish())
}

/// Drops what the operator never reads from an object before it is cached: `managedFields`
/// and the `last-applied-configuration` annotation are often larger than the rest of the
/// object, and every object of ours stays cached while it exists.
pub fn slim(meta: &mut ObjectMeta) {
    meta.managed_fields = None;
    if let Some(annotations) = &mut meta.annotations {
        annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
        if annotations.is_empty() {
            meta.annotations = None;
        }
    }
}

/// A Secret whose credentials may have changed, sent to each kind's controller.
type SecretChange = PartialObjectMeta<Secret>;

/// Builds one controller: its own objects, plus Secrets that they read (`secret_changes`).
fn controller<K: Managed>(
    client: &Client,
    opts: &Options,
    synced: Arc<Synced>,
    mut writer: CacheWriter<K>,
    stores: Stores,
    secret_changes: UnboundedReceiver<SecretChange>,
) -> Controller<K> {
    let api = api_for::<K>(client, &opts.namespace);
    let store = K::cache(&stores).store().clone();
    // Reconcile on spec changes (generation), finalizer changes and the deletion mark — not on
    // our own status writes, which would otherwise retrigger a failed drop at once and defeat
    // its backoff.
    let triggers = watcher(api, watcher::Config::default().any_semantic())
        .default_backoff()
        .modify(|obj: &mut K| slim(obj.meta_mut()))
        .inspect_ok(move |event| {
            writer.apply_watcher_event(event);
            if matches!(event, watcher::Event::InitDone) {
                synced.kind_synced(K::LABEL);
            }
        })
        .applied_objects()
        .predicate_filter(trigger_hash::<K>, PredicateConfig::default());
    let controller = Controller::for_stream(triggers, store)
        .with_config(ControllerConfig::default().concurrency(opts.concurrency));
    controller.watches_stream(secret_changes.map(Ok::<_, watcher::Error>), move |secret| {
        let ns = secret.namespace().unwrap_or_default();
        stores.credential_users::<K>(&ns, &secret.name_any())
    })
}

/// The one watch of Secret metadata (the operator never caches Secret contents). It feeds the
/// janitor (every change) and tells the four controllers which Secrets changed: not when the
/// only news is a finalizer change — our own in-use guard and its janitor are not a change of
/// credentials, and re-queueing every object that names a shared Secret on them ran some of
/// those objects from a stale cache.
fn secret_watch(
    client: &Client,
    opts: &Options,
    writer: reflector::store::Writer<PartialObjectMeta<Secret>>,
    tokens: Tokens,
) -> (
    impl futures::Stream<Item = Result<PartialObjectMeta<Secret>, watcher::Error>> + Send + 'static,
    [UnboundedReceiver<SecretChange>; 4],
) {
    let secrets: Api<PartialObjectMeta<Secret>> = match &opts.namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let [a, b, c, d] = std::array::from_fn(|_| unbounded::<SecretChange>());
    let (txs, rxs) = ([a.0, b.0, c.0, d.0], [a.1, b.1, c.1, d.1]);
    let mut seen: HashMap<(Option<String>, String), Vec<String>> = HashMap::new();
    let stream = watcher(secrets, watcher::Config::default().any_semantic())
        .default_backoff()
        .modify(|secret: &mut PartialObjectMeta<Secret>| slim(&mut secret.metadata))
        .reflect(writer)
        .inspect_ok(move |event| {
            let changed = match event {
                watcher::Event::Apply(secret) | watcher::Event::InitApply(secret) => {
                    let key = (secret.namespace(), secret.name_any());
                    let finalizers = secret.finalizers().to_vec();
                    match seen.insert(key, finalizers.clone()) {
                        Some(before) if before != finalizers => None,
                        _ => Some(secret),
                    }
                }
                watcher::Event::Delete(secret) => {
                    seen.remove(&(secret.namespace(), secret.name_any()));
                    tokens.forget(&secret.namespace().unwrap_or_default(), &secret.name_any());
                    Some(secret)
                }
                watcher::Event::Init | watcher::Event::InitDone => None,
            };
            if let Some(secret) = changed {
                for tx in &txs {
                    let _ = tx.unbounded_send(secret.clone());
                }
            }
        })
        .applied_objects();
    (stream, rxs)
}

/// How long in-flight reconciles may take to finish after a shutdown signal; a drop cut short
/// after that is retried by the next leader or start (drops are idempotent).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(25);

/// Resolves once shutdown should stop waiting for a controller: at once when the signal comes
/// before the caches have synced (a controller holds its runner until its cache is ready, and
/// graceful shutdown stops the watch that would make it ready), else after [`SHUTDOWN_GRACE`].
async fn forced_stop(mut shutdown: watch::Receiver<bool>, health: Arc<Health>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
    if health.ready.load(Ordering::Relaxed) {
        tokio::time::sleep(SHUTDOWN_GRACE).await;
        warn!("reconciles still running after the shutdown grace period; stopping them");
    }
}

fn run_controller<K: Managed>(
    controller: Controller<K>,
    ctx: Arc<Context>,
    shutdown: watch::Receiver<bool>,
    health: Arc<Health>,
) -> BoxFuture<'static, ()> {
    let mut graceful = shutdown.clone();
    let run = controller
        .graceful_shutdown_on(async move {
            let _ = graceful.wait_for(|stop| *stop).await;
        })
        .run(
            controller::reconcile::<K>,
            controller::error_policy::<K>,
            ctx,
        )
        .for_each(|_| futures::future::ready(()));
    async move {
        tokio::select! {
            _ = run => {}
            _ = forced_stop(shutdown, health) => {}
        }
    }
    .boxed()
}

/// Runs until `shutdown` turns true; in-flight reconciles finish first.
pub async fn run(
    client: Client,
    opts: Options,
    health: Arc<Health>,
    shutdown: watch::Receiver<bool>,
) -> Result<(), StartError> {
    check_crd::<ZillizCluster>(&client, &opts.namespace).await?;
    check_crd::<ZillizCollection>(&client, &opts.namespace).await?;
    check_crd::<ZillizPartition>(&client, &opts.namespace).await?;
    check_crd::<ZillizIndex>(&client, &opts.namespace).await?;

    let metrics = health.metrics().clone();
    let http = HttpClient::new(opts.request_timeout, opts.ca_bundle.as_deref())?
        .with_limits(opts.control_plane_rps, opts.data_plane_concurrency)
        .with_observer(metrics.clone());
    health.set_ready(false);
    let synced = Arc::new(Synced {
        kinds: Default::default(),
        health: health.clone(),
    });
    let (caches, writers) = Stores::new();
    let (secret_store, secret_writer) = reflector::store();
    let tokens = Tokens::watched(secret_store.clone());
    let (secret_triggers, [to_clusters, to_collections, to_partitions, to_indexes]) =
        secret_watch(&client, &opts, secret_writer, tokens.clone());
    let clusters = controller(
        &client,
        &opts,
        synced.clone(),
        writers.clusters,
        caches.clone(),
        to_clusters,
    );
    let collections = controller(
        &client,
        &opts,
        synced.clone(),
        writers.collections,
        caches.clone(),
        to_collections,
    );
    let partitions = controller(
        &client,
        &opts,
        synced.clone(),
        writers.partitions,
        caches.clone(),
        to_partitions,
    );
    let indexes = controller(
        &client,
        &opts,
        synced,
        writers.indexes,
        caches.clone(),
        to_indexes,
    );
    let (released_tx, released_rx) = futures::channel::mpsc::unbounded();
    let ctx = Arc::new(
        Context::new(
            client.clone(),
            http,
            controller::reporter(),
            opts.settings.clone(),
            metrics,
        )
        .with_janitor(released_tx)
        .with_stores(caches.clone())
        .with_tokens(tokens),
    );

    *health.pending.lock().unwrap_or_else(|p| p.into_inner()) = vec![
        pending_probe(caches.clusters.store().clone()),
        pending_probe(caches.collections.store().clone()),
        pending_probe(caches.partitions.store().clone()),
        pending_probe(caches.indexes.store().clone()),
    ];
    let janitor = Arc::new(Janitor {
        client: client.clone(),
        users: caches,
    });
    let mut janitor_stop = shutdown.clone();
    let janitor_run = Controller::for_stream(secret_triggers, secret_store)
        .reconcile_on(released_rx)
        .graceful_shutdown_on(async move {
            let _ = janitor_stop.wait_for(|stop| *stop).await;
        })
        .run(secrets::reconcile, secrets::error_policy, janitor)
        .for_each(|_| futures::future::ready(()));
    let janitor_stopped = forced_stop(shutdown.clone(), health.clone());
    let janitor_run = async move {
        tokio::select! {
            _ = janitor_run => {}
            _ = janitor_stopped => {}
        }
    };

    info!(namespace = ?opts.namespace, concurrency = opts.concurrency, "zilliz-operator started");
    futures::join!(
        janitor_run,
        run_controller(clusters, ctx.clone(), shutdown.clone(), health.clone()),
        run_controller(collections, ctx.clone(), shutdown.clone(), health.clone()),
        run_controller(partitions, ctx.clone(), shutdown.clone(), health.clone()),
        run_controller(indexes, ctx.clone(), shutdown.clone(), health.clone()),
    );
    info!("controllers stopped");
    Ok(())
}
