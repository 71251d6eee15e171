//! The reconciler, shared by the four kinds.
//!
//! `finalizer()` is the single top-level action: it adds `zilliz.io/finalizer` before anything
//! else happens, runs [`apply`] for live objects and [`cleanup`] for deleted ones, and removes
//! the finalizer only when cleanup returns `Ok` — which it does only when the API confirmed the
//! drop, said the resource does not exist, or the user chose `Orphan`. Every other outcome is an
//! [`Error::Pending`] that carries its own requeue delay.

mod create_once;

use crate::{
    api::HttpClient,
    backoff::{self, Backoff},
    crd::{Condition, FINALIZER, ManagementPolicy, Origin, Reason, ZillizStatus, allows},
    decide::{
        Decision, Gate, GateFacts, Input, Note, Pace, Polls, Recorded, Unresolved, decide, gate,
        live::{self, EventGate, Next},
    },
    events::Publisher,
    external,
    kinds::Managed,
    metrics::{KindLabel, KindResult, Metrics, RetryLabels},
    resolve::{Purpose, ResolveError, Sources, resolve},
    secrets::{self, Tokens},
    stores::{Cached, Stores, owner_order},
};
use k8s_openapi::api::core::v1::Secret;
use kube::{
    Api, Client, ResourceExt,
    api::{PartialObjectMeta, Patch, PatchParams},
    runtime::reflector::ObjectRef,
    runtime::{
        events::{Event as KubeEvent, EventType, Reporter},
        finalizer::{Event as Finalizer, finalizer},
    },
};
use serde_json::json;
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};
use tracing::{Instrument, debug, info, info_span, warn};

/// The field manager of our server-side-apply status writes.
pub const MANAGER: &str = "zilliz-operator";

/// Tunables of the reconciler.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Interval between observations of a healthy object (jittered ±10 %).
    pub resync: Duration,
    /// Backoff for failed drops and observations.
    pub backoff: Backoff,
    /// Backoff for polling an accepted asynchronous (cluster) drop.
    pub poll: Backoff,
}

impl Settings {
    /// The retry settings of decisions.
    pub fn pace(&self) -> Pace {
        Pace {
            backoff: self.backoff,
            poll: self.poll,
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            resync: Duration::from_secs(600),
            backoff: Backoff::default(),
            poll: Backoff {
                base: Duration::from_secs(5),
                cap: Duration::from_secs(60),
            },
        }
    }
}

/// Shared state of the reconcilers.
pub struct Context {
    pub client: Client,
    pub http: HttpClient,
    pub events: Publisher,
    pub settings: Settings,
    pub metrics: Arc<Metrics>,
    /// Consecutive failed observations per object uid (drops count in `status.deletion`).
    failures: Mutex<HashMap<String, u32>>,
    /// Observation Events recently recorded, per object and reason (rate limit).
    event_gate: Mutex<EventGate>,
    /// The caches of the four kinds (who else names the same external resource).
    stores: Option<Stores>,
    /// Tokens already read, kept while their Secret is unchanged.
    tokens: Tokens,
    /// Tells the Secret janitor that an object naming these Secrets is letting go.
    released: Option<futures::channel::mpsc::UnboundedSender<ObjectRef<PartialObjectMeta<Secret>>>>,
}

impl Context {
    pub fn new(
        client: Client,
        http: HttpClient,
        reporter: Reporter,
        settings: Settings,
        metrics: Arc<Metrics>,
    ) -> Self {
        Context {
            events: Publisher::new(client.clone(), reporter),
            client,
            http,
            settings,
            metrics,
            failures: Mutex::new(HashMap::new()),
            event_gate: Mutex::new(EventGate::default()),
            released: None,
            stores: None,
            tokens: Tokens::default(),
        }
    }

    /// Connects the caches, so that objects naming the same external resource are detected.
    pub fn with_stores(mut self, stores: Stores) -> Self {
        self.stores = Some(stores);
        self
    }

    /// Where resolving an object reads from.
    fn sources(&self) -> Sources<'_> {
        Sources {
            client: &self.client,
            tokens: &self.tokens,
            stores: self.stores.as_ref(),
            http: &self.http,
        }
    }

    /// Other objects naming the same external resource, and the oldest of all (the owner).
    fn sharing<K: Cached>(&self, obj: &K) -> Option<Sharing<K>> {
        let others = self.stores.as_ref()?.sharers(obj);
        if others.is_empty() {
            return None;
        }
        let owner = others
            .iter()
            .min_by_key(|o| owner_order(o.as_ref()))
            .filter(|o| owner_order(o.as_ref()) < owner_order(obj))
            .cloned();
        Some(Sharing { others, owner })
    }

    /// Reads tokens through `tokens` (which keeps them while their Secret is unchanged).
    pub fn with_tokens(mut self, tokens: Tokens) -> Self {
        self.tokens = tokens;
        self
    }

    /// Connects the Secret janitor, told when an object lets go of its Secrets.
    pub fn with_janitor(
        mut self,
        tx: futures::channel::mpsc::UnboundedSender<ObjectRef<PartialObjectMeta<Secret>>>,
    ) -> Self {
        self.released = Some(tx);
        self
    }

    fn release_secrets<K: Managed>(&self, obj: &K) {
        let (Some(tx), Some(ns)) = (&self.released, obj.namespace()) else {
            return;
        };
        for name in obj.secret_names() {
            let _ = tx.unbounded_send(ObjectRef::new(name).within(&ns));
        }
    }

    /// Consecutive failed observations (or polls) of `uid` so far.
    fn failures_of(&self, uid: &str) -> u32 {
        let map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        map.get(uid).copied().unwrap_or(0)
    }

    /// What is known of a deleted object before any call (see [`gate`]): the caches are read
    /// only once each holds its first list.
    fn gate_facts<K: Cached>(&self, obj: &K) -> GateFacts {
        let synced = self.stores.as_ref().is_none_or(Stores::synced);
        let accepted = obj
            .zstatus()
            .and_then(|s| s.deletion.as_ref())
            .is_some_and(|d| d.drop_accepted_time.is_some());
        let dependents = match &self.stores {
            Some(stores) if synced && !accepted => stores.dependents(
                K::CONTAINS,
                &obj.namespace().unwrap_or_default(),
                &obj.name_any(),
            ),
            _ => Vec::new(),
        };
        // another live object naming the resource keeps it, and so does an older one that will
        // drop it itself
        let keeper = synced
            .then(|| self.sharing(obj))
            .flatten()
            .and_then(|sharing| {
                sharing
                    .others
                    .iter()
                    .find(|o| o.meta().deletion_timestamp.is_none())
                    .or(sharing.owner.as_ref())
                    .map(|keeper| describe(keeper.as_ref()))
            });
        GateFacts {
            policy: obj.deletion_policy(),
            delete_allowed: allows(obj.management_policies(), ManagementPolicy::Delete),
            protected: obj.protected(),
            caches_synced: synced,
            dependents,
            invalid_spec: obj.address().err(),
            keeper,
        }
    }

    fn next_failure(&self, uid: &str) -> u32 {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let n = map.entry(uid.to_string()).or_insert(0);
        *n = n.saturating_add(1);
        *n - 1
    }

    fn clear_failures(&self, uid: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(uid);
    }

    /// Whether an observation Event with `reason` may be recorded for `uid` now: at most one per
    /// object and reason within `quiet`.
    fn event_gate(&self, uid: &str, reason: Reason, quiet: Duration) -> bool {
        self.event_gate
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .allow(uid, reason, Instant::now(), quiet)
    }
}

/// Objects of the same kind that name the same external resource as this one.
struct Sharing<K> {
    others: Vec<Arc<K>>,
    /// The oldest of them, if it is older than this object: it manages the resource.
    owner: Option<Arc<K>>,
}

fn describe<K: Managed>(obj: &K) -> String {
    format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any())
}

/// Reconcile errors. Each knows its requeue delay and its bounded category (metric label and
/// log field).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The Kubernetes API failed (read, status write, finalizer patch).
    #[error("Kubernetes API: {0}")]
    Kube(#[source] kube::Error),
    /// The drop is not finished (retrying, blocked, failed or in progress): keep the finalizer.
    #[error("{reason}: {message}")]
    Pending {
        reason: Reason,
        message: String,
        retry_in: Duration,
    },
    #[error("object has no namespace")]
    NoNamespace,
    #[error(transparent)]
    Finalizer(#[from] Box<kube::runtime::finalizer::Error<Error>>),
}

impl From<kube::Error> for Error {
    fn from(e: kube::Error) -> Self {
        Error::Kube(e)
    }
}

impl Error {
    /// Bounded category: a metric label.
    pub fn category(&self) -> &'static str {
        use kube::runtime::finalizer::Error as F;
        match self {
            Error::Kube(_) => "KubeApi",
            Error::Pending { reason, .. } => reason.as_str(),
            Error::NoNamespace => "NoNamespace",
            Error::Finalizer(f) => match f.as_ref() {
                F::ApplyFailed(e) | F::CleanupFailed(e) => e.category(),
                F::AddFinalizer(_) | F::RemoveFinalizer(_) if self.is_stale_copy() => "StaleCopy",
                F::AddFinalizer(_) | F::RemoveFinalizer(_) => "FinalizerPatch",
                F::UnnamedObject | F::InvalidFinalizer => "InvalidObject",
            },
        }
    }

    /// A finalizer patch the API server refused because the copy it was made from is out of
    /// date: its `test` of the finalizers failed (422) or its resourceVersion did not match
    /// (409). Another write changed the object first, often our own finalizer patch that the
    /// watch had not delivered when a second trigger (such as the Secret's first event)
    /// queued the object again; that write's watch event queues it once more with the new copy.
    fn is_stale_copy(&self) -> bool {
        use kube::runtime::finalizer::Error as F;
        match self {
            Error::Finalizer(f) => match f.as_ref() {
                F::AddFinalizer(kube::Error::Api(e)) | F::RemoveFinalizer(kube::Error::Api(e)) => {
                    e.code == 409 || (e.code == 422 && e.message.contains("/metadata/finalizers"))
                }
                _ => false,
            },
            _ => false,
        }
    }

    /// The delay this error asks for, if it carries one.
    fn retry_in(&self) -> Option<Duration> {
        use kube::runtime::finalizer::Error as F;
        match self {
            Error::Pending { retry_in, .. } => Some(*retry_in),
            Error::Finalizer(f) => match f.as_ref() {
                F::ApplyFailed(e) | F::CleanupFailed(e) => e.retry_in(),
                _ => None,
            },
            _ => None,
        }
    }
}

fn now() -> jiff::Timestamp {
    jiff::Timestamp::now()
}

fn rfc3339(t: jiff::Timestamp) -> String {
    t.round(jiff::Unit::Second).unwrap_or(t).to_string()
}

/// Sets a condition, keeping `lastTransitionTime` unless the status changed.
fn set_condition(
    status: &mut ZillizStatus,
    type_: &str,
    value: bool,
    reason: Reason,
    message: &str,
    generation: Option<i64>,
) {
    let value = if value { "True" } else { "False" };
    let message: String = message.chars().take(1024).collect();
    let last = status
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .filter(|c| c.status == value)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or_else(|| rfc3339(now()));
    let cond = Condition {
        type_: type_.to_string(),
        status: value.to_string(),
        reason: reason.as_str().to_string(),
        message,
        last_transition_time: last,
        observed_generation: generation,
    };
    match status.conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(c) => *c = cond,
        None => status.conditions.push(cond),
    }
    status.conditions.sort_by(|a, b| a.type_.cmp(&b.type_));
}

/// Records an observation: `Ready` from what was found, `Synced` true unless `failed` says why
/// the reconcile did not work.
fn observed(
    status: &mut ZillizStatus,
    generation: Option<i64>,
    (ready, reason, message): (bool, Reason, &str),
    failed: Option<(Reason, &str)>,
) {
    set_condition(status, "Ready", ready, reason, message, generation);
    match failed {
        None => set_condition(
            status,
            "Synced",
            true,
            Reason::ReconcileSuccess,
            "",
            generation,
        ),
        Some((why, message)) => set_condition(status, "Synced", false, why, message, generation),
    }
}

/// Adds the conditions kstatus (cli-utils), Flux and `kubectl wait` read besides `Ready` and
/// `Synced`: `Reconciling=True` while work goes on by itself, `Stalled=True` when nothing
/// changes until someone acts; both `False` otherwise. Derived from the reasons of `Synced`
/// (what the last reconcile did) and `Ready` (what was observed), in that order.
fn with_kstatus(status: &ZillizStatus, generation: Option<i64>) -> ZillizStatus {
    let mut status = status.clone();
    let failing = ["Synced", "Ready"].into_iter().find_map(|t| {
        let c = status.condition(t).filter(|c| c.status == "False")?;
        Some((Reason::parse(&c.reason)?, c.message.clone()))
    });
    let (reconciling, stalled) = match &failing {
        Some((reason, _)) => (reason.in_progress(), reason.stalls()),
        None => (false, false),
    };
    let (reason, message) = failing.unwrap_or((Reason::ReconcileSuccess, String::new()));
    set_condition(
        &mut status,
        "Reconciling",
        reconciling,
        reason,
        if reconciling { &message } else { "" },
        generation,
    );
    set_condition(
        &mut status,
        "Stalled",
        stalled,
        reason,
        if stalled { &message } else { "" },
        generation,
    );
    status
}

/// Writes the status by server-side apply, only when it changed.
async fn patch_status<K: Cached>(
    ctx: &Context,
    obj: &K,
    status: &ZillizStatus,
) -> Result<(), kube::Error> {
    let status = &with_kstatus(status, obj.meta().generation);
    if obj.zstatus() == Some(status) {
        return Ok(());
    }
    let ns = obj.namespace().unwrap_or_default();
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &ns);
    let patch = json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    let written = api
        .patch_status(
            &obj.name_any(),
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await?;
    if let Some(stores) = &ctx.stores {
        K::cache(stores).wrote(obj, written.resource_version());
    }
    Ok(())
}

async fn publish<K: Managed>(ctx: &Context, obj: &K, note: Note) {
    let event = KubeEvent {
        type_: if note.warning {
            EventType::Warning
        } else {
            EventType::Normal
        },
        reason: note.reason.as_str().to_string(),
        note: Some(note.message.chars().take(1000).collect()),
        action: note.action.to_string(),
        secondary: None,
    };
    let reason = note.reason.as_str();
    // A failed Event write (e.g. a terminating namespace) never blocks a drop.
    if let Err(e) = ctx.events.publish(&event, &obj.object_ref(&())).await {
        warn!(error = %e, reason, "could not record event");
    }
}

/// Records an observation Event, at most once per object and reason within
/// min(`--resync-interval`, 5 min), so that a flapping resource does not flood the stream.
async fn tell<K: Managed>(ctx: &Context, obj: &K, uid: &str, note: Note) {
    let quiet = ctx.settings.resync.min(Duration::from_secs(300));
    if ctx.event_gate(uid, note.reason, quiet) {
        publish(ctx, obj, note).await;
    }
}

/// Entry point for the Controller.
pub async fn reconcile<K: Cached>(obj: Arc<K>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = obj.namespace().ok_or(Error::NoNamespace)?;
    let span = info_span!("reconcile", kind = K::LABEL, namespace = %ns, name = %obj.name_any());
    let started = Instant::now();
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &ns);
    // A deleted object is taken from the cache as it is now, when the cache shows every write
    // of ours, else read afresh, before anything is dropped: the copy this reconcile was handed
    // may predate a write of ours, such as the removal of our finalizer after a finished drop
    // (a late trigger, such as a Secret change, queues the object again) or a cluster's
    // accepted drop in its status; dropping again would be a second call. Without the caches
    // (tests of the reconciler alone) it is always read.
    let obj = if obj.meta().deletion_timestamp.is_some()
        && obj.finalizers().iter().any(|f| f == FINALIZER)
    {
        let cached = ctx
            .stores
            .as_ref()
            .and_then(|stores| K::cache(stores).current(obj.as_ref()));
        let latest = match cached {
            Some(copy) => copy,
            None => match api.get_opt(&obj.name_any()).instrument(span.clone()).await {
                Ok(fresh) => fresh.map(Arc::new),
                Err(e) => return Err(Error::Kube(e)),
            },
        };
        match latest {
            Some(latest)
                if latest.uid() == obj.uid()
                    && latest.finalizers().iter().any(|f| f == FINALIZER) =>
            {
                latest
            }
            _ => {
                debug!(parent: &span, "already let go: nothing to do");
                return Ok(Action::await_change());
            }
        }
    } else {
        obj
    };
    let result = finalizer(&api, FINALIZER, obj, |event| async {
        match event {
            Finalizer::Apply(o) => apply(o.as_ref(), &ctx).await,
            Finalizer::Cleanup(o) => {
                let done = cleanup(o.as_ref(), &ctx).await;
                if done.is_ok() {
                    // finalizer() removes our finalizer next
                    if let Some(stores) = &ctx.stores {
                        K::cache(stores).wrote(o.as_ref(), None);
                    }
                    ctx.release_secrets(o.as_ref());
                    let uid = o.uid().unwrap_or_default();
                    ctx.clear_failures(&uid);
                    ctx.event_gate
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .forget(&uid);
                }
                done
            }
        }
    })
    .instrument(span)
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)));
    ctx.metrics
        .reconcile_duration
        .get_or_create(&KindLabel { kind: K::LABEL })
        .observe(started.elapsed().as_secs_f64());
    ctx.metrics
        .reconciles
        .get_or_create(&KindResult {
            kind: K::LABEL,
            result: match &result {
                Ok(_) => "success",
                Err(e) => e.category(),
            },
        })
        .inc();
    result
}

/// Requeue policy: errors that carry a delay use it; the rest back off per object.
pub fn error_policy<K: Cached>(obj: Arc<K>, err: &Error, ctx: Arc<Context>) -> Action {
    let mut attempt = None;
    let delay = err.retry_in().unwrap_or_else(|| {
        let n = ctx.next_failure(&obj.uid().unwrap_or_default());
        attempt = Some(n);
        ctx.settings.backoff.delay(n, None)
    });
    match err {
        Error::Finalizer(f)
            if matches!(
                f.as_ref(),
                kube::runtime::finalizer::Error::CleanupFailed(Error::Pending { .. })
            ) =>
        {
            debug!(kind = K::LABEL, name = %obj.name_any(), error = %err, ?delay, "drop pending")
        }
        // once is a race that fixes itself; again and again is worth a warning
        _ if err.is_stale_copy() && attempt == Some(0) => {
            debug!(kind = K::LABEL, name = %obj.name_any(), error = %err, ?delay, "stale copy: retrying")
        }
        _ => {
            warn!(kind = K::LABEL, name = %obj.name_any(), error = %err, ?delay, "reconcile failed")
        }
    }
    Action::requeue(delay)
}

pub use kube::runtime::controller::Action;

/// Observes a live object and records `Ready` and `Synced`.
async fn apply<K: Cached>(obj: &K, ctx: &Context) -> Result<Action, Error> {
    let generation = obj.meta().generation;
    let uid = obj.uid().unwrap_or_default();
    let mut status = obj.zstatus().cloned().unwrap_or_default();
    status.observed_generation = generation;
    status.deletion = None;

    // what the last observation said, so that its Events are told when a state is first seen
    let was = status
        .condition("Ready")
        .and_then(|c| Reason::parse(&c.reason));

    // Never two managers for one external resource: the younger object reports Conflict.
    if let Some(Sharing {
        owner: Some(owner), ..
    }) = ctx.sharing(obj)
    {
        let message = format!(
            "{} already manages the same {} {:?}; this object will not drop it while that one exists",
            describe(owner.as_ref()),
            K::LABEL,
            obj.external_name()
        );
        // told when first seen
        if was != Some(Reason::Conflict) {
            let note = Note {
                warning: true,
                reason: Reason::Conflict,
                action: "Observe",
                message: message.clone(),
            };
            tell(ctx, obj, &uid, note).await;
        }
        let failed = Some((Reason::Conflict, message.as_str()));
        observed(
            &mut status,
            generation,
            (false, Reason::Conflict, &message),
            failed,
        );
        patch_status(ctx, obj, &status).await?;
        return Ok(Action::requeue(backoff::jittered(
            ctx.settings.resync.min(Duration::from_secs(60)),
        )));
    }

    let next = match create_once::ensure(obj, ctx, &mut status).await? {
        Some(next) => next,
        None => match resolve(obj, &ctx.sources(), Purpose::Observe).await {
            Err(ResolveError::Kube(e)) => return Err(Error::Kube(e)),
            Err(e) => {
                let (reason, next) = match &e {
                    ResolveError::InvalidSpec(_) => (Reason::InvalidSpec, Next::AwaitChange),
                    ResolveError::ReferenceNotFound { .. } => {
                        (Reason::ReferenceNotFound, Next::Backoff(None))
                    }
                    ResolveError::ParentGone { .. } => (Reason::NotFound, Next::Resync),
                    ResolveError::ParentNotReady { .. } => {
                        (Reason::ParentNotReady, Next::Backoff(None))
                    }
                    ResolveError::CredentialsUnavailable(_) => {
                        (Reason::CredentialsUnavailable, Next::Backoff(None))
                    }
                    ResolveError::Kube(_) => (Reason::KubeApi, Next::Backoff(None)),
                };
                let message = e.to_string();
                // a gone parent is a successful observation; the rest failed to observe
                let failed = (!matches!(next, Next::Resync)).then_some((reason, message.as_str()));
                observed(&mut status, generation, (false, reason, &message), failed);
                next
            }
            Ok(resolved) => {
                if let Some(secret) = &resolved.own_secret
                    && let Err(e) = secrets::guard(&ctx.client, secret).await
                {
                    match e {
                        // The Secret changed since it was seen: usually another object of ours
                        // marking the same Secret at the same moment. A change of anything but its
                        // finalizers re-queues its users, who try again.
                        kube::Error::Api(ref status) if status.code == 409 => {
                            debug!(error = %e, "Secret changed while marking it in use")
                        }
                        // the drop still works without it; only a namespace deletion could outrun it
                        _ => warn!(error = %e, "could not mark the Secret in use"),
                    }
                }
                // where the resource is, for a drop after its referenced object is gone
                if resolved.record.is_some() {
                    status.resolved = resolved.record.clone();
                }
                let converged = external::converge::<K>(&resolved.target).await;
                let judged = live::judge(&converged, resolved.target.no_create, was);
                if let Some(note) = judged.note.clone() {
                    info!(reason = %note.reason, message = %note.message, "observed");
                    tell(ctx, obj, &uid, note).await;
                }
                let failed = judged.failed.map(|r| (r, judged.message.as_str()));
                observed(
                    &mut status,
                    generation,
                    (judged.ready, judged.reason, &judged.message),
                    failed,
                );
                if let Some((endpoint, state)) = &judged.cluster {
                    // the connection Secret learns the endpoint once the cluster has one; only its
                    // endpoint and clusterId keys are written (never a password not received)
                    if let (Some(secret), Some(address)) = (obj.connection_secret(), endpoint)
                        && status.endpoint.as_ref() != Some(address)
                    {
                        let mut data = std::collections::BTreeMap::new();
                        data.insert("endpoint", address.clone());
                        data.insert("clusterId", obj.external_name().to_string());
                        if let Err(e) = create_once::write_secret(ctx, obj, secret, data).await {
                            warn!(error = %e, secret, "could not write the connection Secret");
                            return Err(Error::Kube(e));
                        }
                    }
                    status.endpoint = endpoint.clone();
                    status.cluster_status = Some(state.to_string());
                    if status.cluster_id.is_none() {
                        status.cluster_id = Some(obj.external_name().to_string());
                    }
                }
                if let Some((cu_size, replica)) = judged.sizes {
                    status.cu_size = cu_size;
                    status.replica = replica;
                }
                if judged.absent && status.cluster_status.is_some() {
                    status.cluster_status = Some("DELETED".into());
                }
                if judged.observed.is_some() || judged.absent {
                    status.observed = judged.observed.clone();
                }
                // found there, not made by this object: adopted, never recreated; a create by this
                // object is never forgotten
                match judged.origin {
                    Some(Origin::Created) => status.origin = Some(Origin::Created),
                    Some(Origin::Adopted) => {
                        status.origin.get_or_insert(Origin::Adopted);
                    }
                    None => {}
                }
                judged.next
            }
        },
    };

    patch_status(ctx, obj, &status).await?;

    let settings = &ctx.settings;
    Ok(match next {
        Next::Resync => {
            ctx.clear_failures(&uid);
            Action::requeue(backoff::jittered(settings.resync))
        }
        Next::Soon => {
            ctx.clear_failures(&uid);
            Action::requeue(backoff::jittered(settings.poll.cap.min(settings.resync)))
        }
        Next::Backoff(retry_after) => {
            Action::requeue(settings.backoff.delay(ctx.next_failure(&uid), retry_after))
        }
        Next::Slow => Action::requeue(settings.backoff.slow()),
        Next::AwaitChange => Action::await_change(),
    })
}

/// Resolves a deleted object's resource and runs its kind's drop protocol.
async fn attempt<K: Cached>(obj: &K, ctx: &Context) -> Input {
    match resolve(obj, &ctx.sources(), Purpose::Drop).await {
        Ok(resolved) => Input::Attempt(external::drop::<K>(&resolved.target).await),
        Err(ResolveError::CredentialsUnavailable(m)) => {
            Input::Unresolved(Unresolved::Credentials(m))
        }
        Err(e @ ResolveError::ReferenceNotFound { .. }) => {
            Input::Unresolved(Unresolved::ReferenceNotFound(e.to_string()))
        }
        Err(e) => Input::Unresolved(Unresolved::Other(e.to_string())),
    }
}

/// A deleted object: the gates, else an attempt, then [`decide`], carried out. `Ok` lets the
/// finalizer go.
async fn cleanup<K: Cached>(obj: &K, ctx: &Context) -> Result<Action, Error> {
    let uid = obj.uid().unwrap_or_default();
    let status = obj.zstatus();
    let recorded = Recorded {
        deletion: status.and_then(|s| s.deletion.clone()).unwrap_or_default(),
        synced: status
            .and_then(|s| s.condition("Synced"))
            .map(|c| (c.reason.clone(), c.message.clone())),
        polls: ctx.failures_of(&uid),
    };
    let gated = gate(&ctx.gate_facts(obj));
    // No id, but a create may have happened (its answer was lost): "nothing to drop" would
    // leak the cluster. Look it up by name first; this only ever keeps the finalizer.
    if let Some(Gate::NothingToDrop(_)) = &gated
        && let Some(kept) = create_once::before_release(obj, ctx).await?
    {
        return Err(kept);
    }
    let input = match gated {
        Some(g) => Input::Gate(g),
        None => attempt(obj, ctx).await,
    };
    let stamp = now();
    let decision = decide(
        K::LABEL,
        obj.external_name(),
        &recorded,
        input,
        &rfc3339(stamp),
    );
    match decision {
        Decision::Release(note) => {
            info!(reason = %note.reason, message = %note.message, "letting the object go");
            publish(ctx, obj, note).await;
            Ok(Action::await_change())
        }
        Decision::Keep {
            reason,
            message,
            retry,
            deletion,
            note,
            polls,
        } => {
            let retry_in = retry.delay(&ctx.settings.pace());
            match polls {
                Polls::Count => {
                    ctx.next_failure(&uid);
                }
                Polls::Reset => ctx.clear_failures(&uid),
                Polls::Leave => {}
            }
            ctx.metrics
                .drop_retries
                .get_or_create(&RetryLabels {
                    kind: K::LABEL,
                    reason: reason.as_str(),
                })
                .inc();
            match reason {
                Reason::DropInProgress | Reason::CachesSyncing | Reason::DependentsExist => {
                    debug!(%reason, %message, ?retry_in, "drop pending")
                }
                _ => warn!(%reason, error = %message, ?retry_in, "drop did not finish"),
            }
            if let Some(note) = note {
                publish(ctx, obj, note).await;
            }
            if let Some(mut deletion) = deletion {
                let next = stamp
                    .checked_add(jiff::SignedDuration::try_from(retry_in).unwrap_or_default())
                    .unwrap_or(stamp);
                deletion.next_retry_time = Some(rfc3339(next));
                let mut status = obj.zstatus().cloned().unwrap_or_default();
                status.deletion = Some(deletion);
                set_condition(
                    &mut status,
                    "Synced",
                    false,
                    reason,
                    &message,
                    obj.meta().generation,
                );
                patch_status(ctx, obj, &status).await?;
            }
            Err(Error::Pending {
                reason,
                message,
                retry_in,
            })
        }
    }
}

/// The reporter for Events.
pub fn reporter() -> Reporter {
    Reporter {
        controller: MANAGER.into(),
        instance: std::env::var("POD_NAME").ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_finalizer_patch_from_a_stale_copy_is_told_apart() {
        use kube::{core::Status, runtime::finalizer::Error as F};
        let api = |code, message: &str| {
            kube::Error::Api(Status::failure(message, "Invalid").with_code(code).boxed())
        };
        let test_failed = "ZillizIndex \"i\" is invalid: operation 'test' failed at path '/metadata/finalizers': value did not match";
        let cases = [
            (F::AddFinalizer(api(422, test_failed)), "StaleCopy"),
            (
                F::RemoveFinalizer(api(409, "the object has been modified")),
                "StaleCopy",
            ),
            // any other refusal is not a race and keeps its warning
            (
                F::AddFinalizer(api(422, "spec.x: Invalid value")),
                "FinalizerPatch",
            ),
            (F::AddFinalizer(api(403, "forbidden")), "FinalizerPatch"),
        ];
        for (f, category) in cases {
            let err = Error::Finalizer(Box::new(f));
            assert_eq!(err.category(), category, "{err}");
            assert_eq!(err.is_stale_copy(), category == "StaleCopy", "{err}");
        }
    }

    #[test]
    fn transition_time_moves_only_with_status() {
        let mut s = ZillizStatus::default();
        set_condition(&mut s, "Ready", true, Reason::Available, "ok", Some(1));
        let t0 = s.condition("Ready").unwrap().last_transition_time.clone();
        s.conditions[0].last_transition_time = "2020-01-01T00:00:00Z".into();
        set_condition(
            &mut s,
            "Ready",
            true,
            Reason::Available,
            "still ok",
            Some(2),
        );
        let c = s.condition("Ready").unwrap();
        assert_eq!(c.last_transition_time, "2020-01-01T00:00:00Z");
        assert_eq!(c.observed_generation, Some(2));
        set_condition(&mut s, "Ready", false, Reason::NotFound, "gone", Some(2));
        assert_ne!(
            s.condition("Ready").unwrap().last_transition_time,
            "2020-01-01T00:00:00Z"
        );
        assert!(!t0.is_empty());
        set_condition(
            &mut s,
            "Synced",
            true,
            Reason::ReconcileSuccess,
            "",
            Some(2),
        );
        let types: Vec<_> = s.conditions.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(types, ["Ready", "Synced"]);
    }
}

/// kstatus (sigs.k8s.io/cli-utils `pkg/kstatus/status`), the rules Flux and `kpt` use to judge
/// a custom resource, fed with statuses the reconciler writes.
#[cfg(test)]
mod kstatus_tests {
    use super::*;
    use serde_json::Value;

    /// kstatus's documented generic rules (`checkGenericProperties`, `checkGeneration`), for a
    /// custom resource of a type kstatus has no special rules for: deleted → Terminating;
    /// `observedGeneration` behind → InProgress; `Reconciling=True` → InProgress;
    /// `Stalled=True` → Failed; otherwise Current.
    fn kstatus(obj: &Value) -> &'static str {
        if obj["metadata"]["deletionTimestamp"]
            .as_str()
            .is_some_and(|t| !t.is_empty())
        {
            return "Terminating";
        }
        if let (Some(g), Some(o)) = (
            obj["metadata"]["generation"].as_i64(),
            obj["status"]["observedGeneration"].as_i64(),
        ) && g != o
        {
            return "InProgress";
        }
        for c in obj["status"]["conditions"].as_array().into_iter().flatten() {
            if c["type"] == "Reconciling" && c["status"] == "True" {
                return "InProgress";
            }
            if c["type"] == "Stalled" && c["status"] == "True" {
                return "Failed";
            }
        }
        "Current"
    }

    fn object(status: &ZillizStatus, generation: i64, deleting: bool) -> Value {
        let mut o = json!({
            "apiVersion": "zilliz.io/v1alpha1", "kind": "ZillizCollection",
            "metadata": {"name": "c", "generation": generation},
            "status": with_kstatus(status, Some(generation)),
        });
        if deleting {
            o["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        }
        o
    }

    fn observed_as(ready: bool, reason: Reason, failed: Option<Reason>) -> ZillizStatus {
        let mut s = ZillizStatus {
            observed_generation: Some(2),
            ..Default::default()
        };
        observed(
            &mut s,
            Some(2),
            (ready, reason, "m"),
            failed.map(|r| (r, "m")),
        );
        s
    }

    #[test]
    fn kstatus_reads_each_state_as_flux_should_show_it() {
        let cases = [
            (observed_as(true, Reason::Available, None), "Current"),
            // found absent, not creatable: nothing changes until the spec does
            (observed_as(false, Reason::NotFound, None), "Failed"),
            (
                observed_as(false, Reason::InvalidSpec, Some(Reason::InvalidSpec)),
                "Failed",
            ),
            (
                observed_as(false, Reason::ParentNotReady, Some(Reason::ParentNotReady)),
                "InProgress",
            ),
            (
                observed_as(false, Reason::Unreachable, Some(Reason::Unreachable)),
                "InProgress",
            ),
            (
                observed_as(false, Reason::Unauthorized, Some(Reason::Unauthorized)),
                "Failed",
            ),
            (
                observed_as(false, Reason::ClusterNotRunning, None),
                "InProgress",
            ),
        ];
        for (status, expected) in cases {
            let o = object(&status, 2, false);
            assert_eq!(kstatus(&o), expected, "{}", o["status"]);
        }
        // a newer spec not yet observed
        let behind = object(&observed_as(true, Reason::Available, None), 3, false);
        let mut behind = behind;
        behind["status"]["observedGeneration"] = json!(2);
        assert_eq!(kstatus(&behind), "InProgress");
    }

    #[test]
    fn a_deletion_in_progress_or_stalled_says_so_beside_terminating() {
        for (reason, reconciling, stalled) in [
            (Reason::DropInProgress, true, false),
            (Reason::DropRetrying, true, false),
            (Reason::DependentsExist, true, false),
            (Reason::DropFailed, false, true),
            (Reason::DeletionProtected, false, true),
            (Reason::DropBlocked, false, true),
            (Reason::ReferenceNotFound, false, true),
        ] {
            let mut s = observed_as(true, Reason::Available, None);
            set_condition(&mut s, "Synced", false, reason, "why", Some(2));
            let o = object(&s, 2, true);
            assert_eq!(kstatus(&o), "Terminating");
            let flag = |t: &str| {
                o["status"]["conditions"]
                    .as_array()
                    .and_then(|cs| cs.iter().find(|c| c["type"] == t))
                    .map(|c| (c["status"] == "True", c["reason"].clone()))
            };
            assert_eq!(
                flag("Reconciling").map(|f| f.0),
                Some(reconciling),
                "{reason}"
            );
            assert_eq!(flag("Stalled").map(|f| f.0), Some(stalled), "{reason}");
            assert_eq!(flag("Stalled").map(|f| f.1), Some(json!(reason.as_str())));
            // the same status without the deletion mark: kstatus reads the flags
            let live = object(&s, 2, false);
            let expected = match (reconciling, stalled) {
                (true, _) => "InProgress",
                (_, true) => "Failed",
                _ => "Current",
            };
            assert_eq!(kstatus(&live), expected, "{reason}");
        }
    }
}
