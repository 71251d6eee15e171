//! The I/O side of [`kinds::create_once`]: a resource whose create is not idempotent and whose
//! id the API picks (a cluster) is created at most once per object. The decisions are the pure
//! protocol's; this only carries them out, in order:
//!
//! 1. the intent is recorded on the object (annotation `zilliz.io/create-pending`, which survives
//!    a status wipe or a restore from backup) **before** the create is sent;
//! 2. the create is sent only in the same reconcile that recorded the intent and found no such
//!    cluster by name;
//! 3. the id is recorded (annotation `zilliz.io/cluster-id`, then `status.clusterId`) as soon as
//!    it is known: from then on the object only describes, never creates;
//! 4. the connection Secret gets the credentials the create answered (the only time the API
//!    shows them).
//!
//! A lost answer (timeout, 5xx, reset, a restart) leaves the intent recorded and no id: later
//! reconciles look the cluster up by name and adopt it, or stop with `CreatePending`; they
//! never send a second create.

use super::{Context, Error, now, observed, patch_status, publish, rfc3339, set_condition};
use crate::{
    api::{ControlPlane, CreatedCluster},
    crd::{ManagementPolicy, Origin, Reason, ZillizStatus, allows},
    decide::{
        Note,
        live::{Next, observe_reason},
    },
    kinds::{CLUSTER_ID, CREATE_PENDING, ClusterStep, CreateEvent, create_once},
    resolve::ResolveError,
    stores::Cached,
};
use k8s_openapi::{
    ByteString, api::core::v1::Secret, apimachinery::pkg::apis::meta::v1::OwnerReference,
};
use kube::{
    Api, ResourceExt,
    api::{Patch, PatchParams, PostParams},
};
use serde_json::json;
use std::{collections::BTreeMap, time::Duration};
use tracing::{info, warn};

/// Calls one reconcile may make before it stops and looks again (list, intent, create, list).
const MAX_STEPS: usize = 6;

/// Runs the create-once protocol for an object whose resource has no known id. `None`: the id
/// is known (or the kind has no such create), go on as usual; `Some(next)`: `status` says what
/// happened, write it and look again after `next`.
pub(super) async fn ensure<K: Cached>(
    obj: &K,
    ctx: &Context,
    status: &mut ZillizStatus,
) -> Result<Option<Next>, Error> {
    let Some(once) = obj.create_once(now()) else {
        return Ok(None);
    };
    if once.record.cluster_id.is_some() {
        return Ok(None);
    }
    let generation = obj.meta().generation;
    if !allows(obj.management_policies(), ManagementPolicy::Create) {
        return report(
            status,
            generation,
            false,
            Reason::NotFound,
            "spec.clusterId is not set and managementPolicies do not include Create: set spec.clusterId to adopt a cluster",
            false,
            Next::Resync,
        );
    }
    let (want, base) = match (once.want, once.base) {
        (Ok(want), Some(base)) => (want, base),
        (Err(why), _) => {
            return report(
                status,
                generation,
                false,
                Reason::InvalidSpec,
                &why,
                true,
                Next::AwaitChange,
            );
        }
        (Ok(_), None) => {
            return report(
                status,
                generation,
                false,
                Reason::InvalidSpec,
                "the control plane's base URL is invalid",
                true,
                Next::AwaitChange,
            );
        }
    };
    let ns = obj.namespace().unwrap_or_default();
    let token = match ctx.sources().token(&ns, &once.secret).await {
        Ok((token, _)) => token,
        Err(ResolveError::Kube(e)) => return Err(Error::Kube(e)),
        Err(e) => {
            return report(
                status,
                generation,
                false,
                Reason::CredentialsUnavailable,
                &e.to_string(),
                true,
                Next::Backoff(None),
            );
        }
    };
    let cp = ControlPlane {
        http: ctx.http.clone(),
        base,
        flavour: once.flavour,
        token,
    };
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &ns);
    let name = obj.name_any();
    let mut events: Vec<CreateEvent> = Vec::new();
    let mut answer: Option<CreatedCluster> = None;
    for _ in 0..MAX_STEPS {
        match create_once(&once.record, &want, &events) {
            ClusterStep::Known(_) => return Ok(None),
            ClusterStep::FindByName => events.push(CreateEvent::Found(
                cp.find_clusters_by_name(&want.project_id, &want.cluster_name)
                    .await,
            )),
            ClusterStep::RecordIntent => {
                // conditional on the object as read: a stale copy (one that predates an intent
                // or an id another pass recorded) must not lead to a create
                let patch = json!({"metadata": {
                    "resourceVersion": obj.resource_version(),
                    "annotations": {CREATE_PENDING: rfc3339(now())}}});
                match api
                    .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                {
                    Ok(_) => events.push(CreateEvent::IntentRecorded),
                    Err(kube::Error::Api(s)) if s.code == 409 => {
                        return report(
                            status,
                            generation,
                            false,
                            Reason::Creating,
                            "the object changed while recording the create; looking again",
                            false,
                            Next::Soon,
                        );
                    }
                    Err(e) => return Err(Error::Kube(e)),
                }
            }
            ClusterStep::Create => {
                info!(cluster = %want.cluster_name, project = %want.project_id, "creating the cluster");
                let created = cp.create_cluster(&want).await;
                events.push(CreateEvent::Created(
                    created
                        .as_ref()
                        .map(|c| c.cluster_id.clone())
                        .map_err(Clone::clone),
                ));
                answer = created.ok();
            }
            ClusterStep::Adopt { cluster_id, origin } => {
                // the id first: from now on this object only describes its cluster
                let patch = json!({"metadata": {"annotations": {
                    CLUSTER_ID: cluster_id, CREATE_PENDING: null}}});
                api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await?;
                status.cluster_id = Some(cluster_id.clone());
                status.origin = Some(origin);
                let what = format!(
                    "cluster {cluster_id} ({} in project {})",
                    want.cluster_name, want.project_id
                );
                let message = match origin {
                    Origin::Created => format!("{what} created; waiting for it to run"),
                    Origin::Adopted => format!("{what} found by name and adopted"),
                };
                if origin == Origin::Created {
                    publish(
                        ctx,
                        obj,
                        Note {
                            warning: false,
                            reason: Reason::Created,
                            action: "Create",
                            message: message.clone(),
                        },
                    )
                    .await;
                    if let (Some(secret), Some(created)) = (obj.connection_secret(), &answer) {
                        let mut data = BTreeMap::new();
                        data.insert("clusterId", created.cluster_id.clone());
                        data.insert("username", created.username.clone());
                        data.insert("password", created.password.expose().to_string());
                        if let Err(e) = write_secret(ctx, obj, secret, data).await {
                            // the password is lost for good: say so, never guess one
                            warn!(error = %e, secret, "could not write the connection Secret");
                        }
                    }
                }
                return report(
                    status,
                    generation,
                    false,
                    Reason::ClusterNotRunning,
                    &message,
                    false,
                    Next::Soon,
                );
            }
            ClusterStep::Wait(why) => {
                return report(
                    status,
                    generation,
                    false,
                    Reason::Creating,
                    &why,
                    true,
                    Next::Soon,
                );
            }
            ClusterStep::CreatePending(why) => {
                return report(
                    status,
                    generation,
                    false,
                    Reason::CreatePending,
                    &why,
                    true,
                    Next::Slow,
                );
            }
            ClusterStep::Refused(e) => {
                // refused before anything was made: no create is pending any more
                let patch = json!({"metadata": {"annotations": {CREATE_PENDING: null}}});
                api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await?;
                let message = format!("the API refused to create the cluster: {e}");
                return report(
                    status,
                    generation,
                    false,
                    Reason::InvalidSpec,
                    &message,
                    true,
                    Next::Slow,
                );
            }
            ClusterStep::Failed(e) => {
                let next = if e.class.is_retryable() {
                    Next::Backoff(e.retry_after)
                } else {
                    Next::Slow
                };
                return report(
                    status,
                    generation,
                    false,
                    observe_reason(&e),
                    &e.to_string(),
                    true,
                    next,
                );
            }
        }
    }
    report(
        status,
        generation,
        false,
        Reason::Creating,
        "the create protocol did not settle in one reconcile; looking again",
        true,
        Next::Soon,
    )
}

/// A deleted object with no id whose create may have happened (the intent is recorded): the
/// cluster is looked up by name. Found: its id is recorded, and the next cleanup drops it.
/// Otherwise the finalizer stays with `CreatePending`, saying how to let go (check the console;
/// remove the annotation, or set `Orphan`). `None`: no create can have happened, go on; `Some`:
/// the finalizer stays (an [`Error::Pending`], never `Ok`, which would let it go).
pub(super) async fn before_release<K: Cached>(
    obj: &K,
    ctx: &Context,
) -> Result<Option<Error>, Error> {
    let Some(once) = obj.create_once(now()) else {
        return Ok(None);
    };
    let (true, None) = (once.record.pending, &once.record.cluster_id) else {
        return Ok(None);
    };
    let ns = obj.namespace().unwrap_or_default();
    let keep = |message: String, retry: Duration| async move {
        let mut status = obj.zstatus().cloned().unwrap_or_default();
        let generation = obj.meta().generation;
        set_synced_false(&mut status, generation, Reason::CreatePending, &message);
        patch_status(ctx, obj, &status).await?;
        Ok::<_, Error>(Some(Error::Pending {
            reason: Reason::CreatePending,
            message,
            retry_in: retry,
        }))
    };
    let (Ok(want), Some(base)) = (once.want, once.base) else {
        return keep(
            format!("a cluster create may have happened (annotation {CREATE_PENDING}) and the spec no longer says which cluster: check the Zilliz Cloud console, then remove the annotation or set deletionPolicy: Orphan"),
            ctx.settings.backoff.slow(),
        )
        .await;
    };
    let token = match ctx.sources().token(&ns, &once.secret).await {
        Ok((token, _)) => token,
        Err(e) => {
            return keep(
                format!("a cluster create may have happened (annotation {CREATE_PENDING}); looking it up by name needs the API key: {e}"),
                ctx.settings.backoff.delay(1, None),
            )
            .await;
        }
    };
    let cp = ControlPlane {
        http: ctx.http.clone(),
        base,
        flavour: once.flavour,
        token,
    };
    let (name, project) = (&want.cluster_name, &want.project_id);
    match cp.find_clusters_by_name(project, name).await {
        Ok(found) if found.len() == 1 && found[0].cluster_id.is_some() => {
            let id = found[0].cluster_id.clone().unwrap_or_default();
            info!(cluster = %id, "found the cluster a lost create made; dropping it");
            let api: Api<K> = Api::namespaced(ctx.client.clone(), &ns);
            let patch = json!({"metadata": {"annotations": {CLUSTER_ID: id, CREATE_PENDING: null}}});
            api.patch(&obj.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
                .await?;
            Ok(Some(Error::Pending {
                reason: Reason::CreatePending,
                message: format!("found cluster {id}, which a lost create made; dropping it next"),
                retry_in: Duration::from_millis(200),
            }))
        }
        Ok(found) => {
            keep(
                format!("a create of cluster {name} in project {project} may have happened (annotation {CREATE_PENDING}), and the list shows {} such clusters: nothing is dropped, nor let go, on a guess. Check the Zilliz Cloud console: if the cluster exists, set spec.clusterId to its id (it is then dropped); if it does not, remove the annotation (or set deletionPolicy: Orphan) to let this object go", found.len()),
                ctx.settings.backoff.slow(),
            )
            .await
        }
        Err(e) => {
            keep(
                format!("a cluster create may have happened (annotation {CREATE_PENDING}); looking it up by name failed: {e}"),
                ctx.settings.backoff.delay(1, e.retry_after),
            )
            .await
        }
    }
}

/// Writes what happened into `status` and says when to look again.
fn report(
    status: &mut ZillizStatus,
    generation: Option<i64>,
    ready: bool,
    reason: Reason,
    message: &str,
    failed: bool,
    next: Next,
) -> Result<Option<Next>, Error> {
    let failed = failed.then_some((reason, message));
    observed(status, generation, (ready, reason, message), failed);
    Ok(Some(next))
}

fn set_synced_false(
    status: &mut ZillizStatus,
    generation: Option<i64>,
    reason: Reason,
    message: &str,
) {
    set_condition(status, "Synced", false, reason, message, generation);
}

/// Writes `data` into the Secret `name` (the object's namespace), owned by the object so that
/// it goes with it: created if missing, else only these keys are changed.
pub(super) async fn write_secret<K: Cached>(
    ctx: &Context,
    owner: &K,
    name: &str,
    data: BTreeMap<&str, String>,
) -> Result<(), kube::Error> {
    let ns = owner.namespace().unwrap_or_default();
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
    let bytes: BTreeMap<String, ByteString> = data
        .iter()
        .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
        .collect();
    let mut secret = Secret {
        data: Some(bytes.clone()),
        ..Secret::default()
    };
    secret.metadata.name = Some(name.to_string());
    secret.metadata.namespace = Some(ns.clone());
    secret.metadata.owner_references = Some(vec![OwnerReference {
        api_version: K::api_version(&()).to_string(),
        kind: K::kind(&()).to_string(),
        name: owner.name_any(),
        uid: owner.uid().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: None,
    }]);
    match api.create(&PostParams::default(), &secret).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => {
            let patch = json!({"data": bytes});
            api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map(|_| ())
        }
        Err(e) => Err(e),
    }
}
