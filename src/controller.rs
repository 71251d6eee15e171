//! The reconciler, shared by the four kinds.
//!
//! `finalizer()` is the single top-level action: it adds `zilliz.io/finalizer` before anything
//! else happens, runs [`apply`] for live objects and [`cleanup`] for deleted ones, and removes
//! the finalizer only when cleanup returns `Ok` — which it does only when the API confirmed the
//! drop, said the resource does not exist, or the user chose `Orphan`. Every other outcome is an
//! [`Error::Pending`] that carries its own requeue delay.

use crate::{
    api::{ApiError, ErrorClass, HttpClient},
    backoff::{self, Backoff},
    crd::{Condition, DeletionPolicy, DeletionStatus, FINALIZER, ZillizStatus},
    events::Publisher,
    external::{self, DropOutcome, Observed},
    metrics::{KindLabel, KindResult, Metrics, RetryLabels},
    resolve::{Managed, ResolveError, Sources, resolve},
    secrets::{self, Tokens},
    stores::{Stores, owner_order},
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
    fn sharing<K: Managed>(&self, obj: &K) -> Option<Sharing<K>> {
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
        reason: &'static str,
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
            Error::Pending { reason, .. } => reason,
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
    reason: &str,
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
        reason: reason.to_string(),
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
    (ready, reason, message): (bool, &str, &str),
    failed: Option<(&str, &str)>,
) {
    set_condition(status, "Ready", ready, reason, message, generation);
    match failed {
        None => set_condition(status, "Synced", true, "ReconcileSuccess", "", generation),
        Some((why, message)) => set_condition(status, "Synced", false, why, message, generation),
    }
}

/// Writes the status by server-side apply, only when it changed.
async fn patch_status<K: Managed>(
    ctx: &Context,
    obj: &K,
    status: &ZillizStatus,
) -> Result<(), kube::Error> {
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

async fn publish<K: Managed>(
    ctx: &Context,
    obj: &K,
    type_: EventType,
    reason: &str,
    action: &str,
    note: String,
) {
    let event = KubeEvent {
        type_,
        reason: reason.to_string(),
        note: Some(note.chars().take(1000).collect()),
        action: action.to_string(),
        secondary: None,
    };
    // A failed Event write (e.g. a terminating namespace) never blocks a drop.
    if let Err(e) = ctx.events.publish(&event, &obj.object_ref(&())).await {
        warn!(error = %e, reason, "could not record event");
    }
}

/// Entry point for the Controller.
pub async fn reconcile<K: Managed>(obj: Arc<K>, ctx: Arc<Context>) -> Result<Action, Error> {
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
                    ctx.clear_failures(&o.uid().unwrap_or_default());
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
pub fn error_policy<K: Managed>(obj: Arc<K>, err: &Error, ctx: Arc<Context>) -> Action {
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
async fn apply<K: Managed>(obj: &K, ctx: &Context) -> Result<Action, Error> {
    let generation = obj.meta().generation;
    let uid = obj.uid().unwrap_or_default();
    let mut status = obj.zstatus().cloned().unwrap_or_default();
    status.observed_generation = generation;
    status.deletion = None;

    enum Next {
        Resync,
        Soon,
        Backoff(Option<Duration>),
        Slow,
        AwaitChange,
    }

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
        let failed = Some(("Conflict", message.as_str()));
        observed(
            &mut status,
            generation,
            (false, "Conflict", &message),
            failed,
        );
        patch_status(ctx, obj, &status).await?;
        return Ok(Action::requeue(backoff::jittered(
            ctx.settings.resync.min(Duration::from_secs(60)),
        )));
    }

    let next = match resolve(obj, &ctx.sources()).await {
        Err(ResolveError::Kube(e)) => return Err(Error::Kube(e)),
        Err(e) => {
            let (reason, next) = match &e {
                ResolveError::InvalidSpec(_) => ("InvalidSpec", Next::AwaitChange),
                ResolveError::ReferenceNotFound { .. } => {
                    ("ReferenceNotFound", Next::Backoff(None))
                }
                ResolveError::ParentGone { .. } => ("NotFound", Next::Resync),
                ResolveError::ParentNotReady { .. } => ("ParentNotReady", Next::Backoff(None)),
                ResolveError::CredentialsUnavailable(_) => {
                    ("CredentialsUnavailable", Next::Backoff(None))
                }
                ResolveError::Kube(_) => ("KubeApi", Next::Backoff(None)),
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
            match external::observe(&resolved.target).await {
                Ok(Observed::Exists {
                    usable,
                    detail,
                    endpoint,
                    cluster_status,
                }) => {
                    let reason = if usable {
                        "Available"
                    } else {
                        "ClusterNotRunning"
                    };
                    observed(&mut status, generation, (usable, reason, &detail), None);
                    if cluster_status.is_some() {
                        status.endpoint = endpoint;
                        status.cluster_status = cluster_status;
                    }
                    if usable { Next::Resync } else { Next::Soon }
                }
                Ok(Observed::Absent { detail }) => {
                    observed(&mut status, generation, (false, "NotFound", &detail), None);
                    if status.cluster_status.is_some() {
                        status.cluster_status = Some("DELETED".into());
                    }
                    Next::Resync
                }
                Err(e) => {
                    let reason = observe_reason(&e);
                    let message = e.to_string();
                    let failed = Some((reason, message.as_str()));
                    observed(&mut status, generation, (false, reason, &message), failed);
                    if e.class.is_retryable() {
                        Next::Backoff(e.retry_after)
                    } else {
                        Next::Slow
                    }
                }
            }
        }
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

fn observe_reason(e: &ApiError) -> &'static str {
    match e.class {
        ErrorClass::Credentials => "Unauthorized",
        ErrorClass::Unsupported => "Unsupported",
        ErrorClass::BadRequest | ErrorClass::InvalidName => "InvalidRequest",
        _ => "Unreachable",
    }
}

/// Why a drop did not finish.
enum Failure {
    Api(ApiError),
    Resolve(ResolveError),
}

impl Failure {
    /// Condition reason, and whether it is retried with backoff (else slowly).
    fn reason(&self, obj_is_index: bool) -> (&'static str, bool) {
        match self {
            Failure::Api(e) if e.class == ErrorClass::NeedsRelease && obj_is_index => {
                ("DropBlocked", true)
            }
            Failure::Api(e) if e.class.is_retryable() => ("DropRetrying", true),
            Failure::Api(_) => ("DropFailed", false),
            Failure::Resolve(ResolveError::CredentialsUnavailable(_)) => {
                ("CredentialsUnavailable", true)
            }
            Failure::Resolve(_) => ("DropRetrying", true),
        }
    }

    fn message(&self) -> String {
        match self {
            Failure::Api(e) if e.class == ErrorClass::NeedsRelease => format!(
                "CollectionLoaded: {e}. The operator does not release a serving collection on its own; release it, or set spec.releaseCollectionBeforeDrop: true"
            ),
            Failure::Api(e) => e.to_string(),
            Failure::Resolve(e) => e.to_string(),
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            Failure::Api(e) => e.retry_after,
            Failure::Resolve(_) => None,
        }
    }
}

/// Drops the external resource of a deleted object. `Ok` lets the finalizer go.
async fn cleanup<K: Managed>(obj: &K, ctx: &Context) -> Result<Action, Error> {
    let name = obj.external_name().to_string();
    if obj.deletion_policy() == DeletionPolicy::Orphan {
        info!("deletionPolicy Orphan: keeping the external resource");
        publish(
            ctx,
            obj,
            EventType::Normal,
            "Orphaned",
            "Delete",
            format!(
                "deletionPolicy is Orphan: {} {name} was kept; no API call was made",
                K::LABEL
            ),
        )
        .await;
        return Ok(Action::await_change());
    }

    // Never drop what someone else still uses: another live object naming the same resource
    // keeps it, and so does an older one that will drop it itself.
    if let Some(sharing) = ctx.sharing(obj) {
        let keeper = sharing
            .others
            .iter()
            .find(|o| o.meta().deletion_timestamp.is_none())
            .or(sharing.owner.as_ref());
        if let Some(keeper) = keeper {
            let note = format!(
                "{} {name:?} was not dropped: {} still names it",
                K::LABEL,
                describe(keeper.as_ref())
            );
            info!(%note, "shared resource kept");
            publish(ctx, obj, EventType::Normal, "KeptShared", "Delete", note).await;
            return Ok(Action::await_change());
        }
    }

    let previous = obj
        .zstatus()
        .and_then(|s| s.deletion.clone())
        .unwrap_or_default();
    let accepted = previous.drop_accepted_time.is_some();

    // A cluster waits for the objects that live in it, so that they drop first (their drops
    // need the cluster; children never wait for parents, so no deletion order deadlocks).
    if K::LABEL == "cluster"
        && !accepted
        && let Some(stores) = &ctx.stores
    {
        // A restarted operator may run a cluster before the caches of the kinds that live in
        // it hold their first lists: none seen yet is not none.
        if !stores.synced() {
            return Err(Error::Pending {
                reason: "CachesSyncing",
                message: "waiting for the caches to list every object before looking for objects in this cluster".into(),
                retry_in: ctx.settings.poll.delay(0, None),
            });
        }
        let dependents =
            stores.cluster_dependents(&obj.namespace().unwrap_or_default(), &obj.name_any());
        if !dependents.is_empty() {
            let shown: Vec<&str> = dependents.iter().take(10).map(String::as_str).collect();
            let more = dependents.len().saturating_sub(shown.len());
            let message = format!(
                "waiting for {} object(s) in this cluster to be deleted first: {}{}",
                dependents.len(),
                shown.join(", "),
                if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                }
            );
            let mut deletion = previous.clone();
            deletion.attempts = deletion.attempts.saturating_add(1);
            let retry_in = ctx.settings.poll.delay(deletion.attempts - 1, None);
            return keep_finalizer(ctx, obj, deletion, "DependentsExist", message, retry_in).await;
        }
    }

    let outcome = match resolve(obj, &ctx.sources()).await {
        Ok(resolved) => external::drop(&resolved.target, accepted)
            .await
            .map_err(Failure::Api),
        Err(ResolveError::InvalidSpec(why)) => {
            // The operator never resolved an external resource from this spec, so it cannot
            // have created or observed one: nothing to drop.
            publish(
                ctx,
                obj,
                EventType::Warning,
                "NothingToDrop",
                "Delete",
                format!(
                    "the spec is invalid ({why}); it never named a resource, so nothing was dropped"
                ),
            )
            .await;
            return Ok(Action::await_change());
        }
        Err(e @ (ResolveError::ReferenceNotFound { .. } | ResolveError::ParentGone { .. })) => Ok(
            DropOutcome::AlreadyAbsent(format!("{e}; the {} went with it", K::LABEL)),
        ),
        Err(e) => Err(Failure::Resolve(e)),
    };

    let mut deletion = previous.clone();
    let stamp = now();
    deletion.attempts = deletion.attempts.saturating_add(1);
    deletion.last_attempt_time = Some(rfc3339(stamp));

    let (reason, message, retry_in) = match outcome {
        Ok(DropOutcome::Dropped(m)) => {
            info!(message = %m, "dropped");
            publish(ctx, obj, EventType::Normal, "Dropped", "Drop", m).await;
            return Ok(Action::await_change());
        }
        Ok(DropOutcome::AlreadyAbsent(m)) => {
            info!(message = %m, "already absent");
            publish(ctx, obj, EventType::Normal, "AlreadyAbsent", "Drop", m).await;
            return Ok(Action::await_change());
        }
        Ok(DropOutcome::InProgress(m)) => {
            if !accepted {
                publish(
                    ctx,
                    obj,
                    EventType::Normal,
                    "DropAccepted",
                    "Drop",
                    m.clone(),
                )
                .await;
                deletion.drop_accepted_time = Some(rfc3339(stamp));
                deletion.attempts = 0;
            }
            deletion.last_error = None;
            let uid = obj.uid().unwrap_or_default();
            if !accepted {
                ctx.clear_failures(&uid);
                let delay = ctx.settings.poll.delay(0, None);
                ("DropInProgress", m, delay)
            } else {
                // Polls count in memory (a restart only polls sooner once): a poll that learns
                // nothing new writes nothing, so a drop that takes many minutes costs no more
                // writes than one that takes seconds.
                let delay = ctx.settings.poll.delay(ctx.next_failure(&uid), None);
                let unchanged = previous.last_error.is_none()
                    && obj
                        .zstatus()
                        .and_then(|s| s.condition("Synced"))
                        .is_some_and(|c| c.reason == "DropInProgress" && c.message == m);
                if unchanged {
                    debug!(message = %m, ?delay, "drop still in progress");
                    return Err(Error::Pending {
                        reason: "DropInProgress",
                        message: m,
                        retry_in: delay,
                    });
                }
                ("DropInProgress", m, delay)
            }
        }
        Err(failure) => {
            let (reason, retryable) = failure.reason(K::LABEL == "index");
            let message = format!("{} (attempt {})", failure.message(), deletion.attempts);
            let delay = if retryable {
                ctx.settings
                    .backoff
                    .delay(deletion.attempts - 1, failure.retry_after())
            } else {
                ctx.settings.backoff.slow()
            };
            let last_error: String = failure.message().chars().take(1024).collect();
            // one Warning per distinct error, not one per retry
            let warn_now = !retryable || reason == "DropBlocked";
            if warn_now && previous.last_error.as_deref() != Some(last_error.as_str()) {
                let event_reason = if reason == "DropBlocked" {
                    "CollectionLoaded"
                } else {
                    reason
                };
                publish(
                    ctx,
                    obj,
                    EventType::Warning,
                    event_reason,
                    "Drop",
                    message.clone(),
                )
                .await;
            }
            deletion.last_error = Some(last_error);
            warn!(reason, error = %message, ?delay, "drop did not finish");
            (reason, message, delay)
        }
    };

    keep_finalizer(ctx, obj, deletion, reason, message, retry_in).await
}

/// The drop did not finish: record why and when the next attempt is due, and keep the
/// finalizer (the error carries the requeue delay).
async fn keep_finalizer<K: Managed>(
    ctx: &Context,
    obj: &K,
    mut deletion: DeletionStatus,
    reason: &'static str,
    message: String,
    retry_in: Duration,
) -> Result<Action, Error> {
    ctx.metrics
        .drop_retries
        .get_or_create(&RetryLabels {
            kind: K::LABEL,
            reason,
        })
        .inc();
    let stamp = now();
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
    Err(Error::Pending {
        reason,
        message,
        retry_in,
    })
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
        set_condition(&mut s, "Ready", true, "Available", "ok", Some(1));
        let t0 = s.condition("Ready").unwrap().last_transition_time.clone();
        s.conditions[0].last_transition_time = "2020-01-01T00:00:00Z".into();
        set_condition(&mut s, "Ready", true, "Available", "still ok", Some(2));
        let c = s.condition("Ready").unwrap();
        assert_eq!(c.last_transition_time, "2020-01-01T00:00:00Z");
        assert_eq!(c.observed_generation, Some(2));
        set_condition(&mut s, "Ready", false, "NotFound", "gone", Some(2));
        assert_ne!(
            s.condition("Ready").unwrap().last_transition_time,
            "2020-01-01T00:00:00Z"
        );
        assert!(!t0.is_empty());
        set_condition(&mut s, "Synced", true, "ReconcileSuccess", "", Some(2));
        let types: Vec<_> = s.conditions.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(types, ["Ready", "Synced"]);
    }
}
