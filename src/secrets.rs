//! Credentials outlive their users.
//!
//! In a namespace deletion Kubernetes deletes the Secret together with our objects; without
//! protection the Secret goes first and every drop then waits forever for credentials
//! (Azure/azure-service-operator#4679). So while any object of ours names a Secret, the Secret
//! carries the finalizer `zilliz.io/in-use`: added when an object is observed (never to a
//! Secret already being deleted), and removed by the janitor below once no object of ours in
//! that namespace names it any more.

use crate::{api::Token, crd::SecretKeyRef, stores::Stores};
use k8s_openapi::api::core::v1::Secret;
use kube::{
    Api, Client, ResourceExt,
    api::{ObjectMeta, PartialObjectMeta, Patch, PatchParams},
    runtime::{
        controller::Action,
        reflector::{ObjectRef, Store},
    },
};
use serde_json::json;
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};
use tracing::{debug, info};

/// Tokens read from Secrets, each with the resourceVersion of the Secret it came from, so that
/// a drop reads no Secret while the Secret is unchanged: during a teardown of N objects sharing
/// one Secret that was N Secret reads. A token is used only while the operator's own watch of
/// Secret metadata shows the Secret at that same resourceVersion; every change of a Secret (a
/// rotation among them) gives it a new one, and a Secret gone from the watch is read afresh
/// (and found missing). Without a watch ([`Tokens::default`]) every read goes to the API.
#[derive(Clone, Default)]
pub struct Tokens {
    watched: Option<Store<PartialObjectMeta<Secret>>>,
    /// (namespace, Secret, key) → (resourceVersion, token)
    read: Arc<Mutex<TokenMap>>,
}

type TokenMap = HashMap<(String, String, String), (String, Token)>;

impl Tokens {
    /// Tokens kept while `watched` (a store of Secret metadata) shows their Secret unchanged.
    pub fn watched(watched: Store<PartialObjectMeta<Secret>>) -> Self {
        Tokens {
            watched: Some(watched),
            read: Arc::default(),
        }
    }

    fn key(namespace: &str, secret: &SecretKeyRef) -> (String, String, String) {
        (
            namespace.to_string(),
            secret.name.clone(),
            secret.key.clone(),
        )
    }

    /// The token read earlier from `namespace/secret`, and the Secret's metadata, if the
    /// Secret has not changed since.
    pub fn get(&self, namespace: &str, secret: &SecretKeyRef) -> Option<(Token, ObjectMeta)> {
        let watched = self.watched.as_ref()?;
        let meta = watched
            .get(&ObjectRef::new(&secret.name).within(namespace))?
            .metadata
            .clone();
        let rv = meta.resource_version.as_deref()?;
        let read = self.read.lock().unwrap_or_else(|p| p.into_inner());
        match read.get(&Self::key(namespace, secret)) {
            Some((seen, token)) if seen == rv => Some((token.clone(), meta)),
            _ => None,
        }
    }

    /// Keeps a token just read from a Secret with this metadata.
    pub fn put(&self, namespace: &str, secret: &SecretKeyRef, meta: &ObjectMeta, token: &Token) {
        let (Some(_), Some(rv)) = (&self.watched, &meta.resource_version) else {
            return;
        };
        self.read
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(Self::key(namespace, secret), (rv.clone(), token.clone()));
    }

    /// Forgets the tokens of a Secret that is gone.
    pub fn forget(&self, namespace: &str, name: &str) {
        self.read
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(ns, n, _), _| !(ns == namespace && n == name));
    }
}

/// The finalizer on Secrets that objects of ours still read.
pub const IN_USE: &str = "zilliz.io/in-use";

/// Adds [`IN_USE`] to a Secret an object names, unless it is there or the Secret is being
/// deleted. Optimistic: the patch carries the resourceVersion it was computed from.
pub async fn guard(client: &Client, secret: &ObjectMeta) -> Result<bool, kube::Error> {
    let finalizers = secret.finalizers.clone().unwrap_or_default();
    if finalizers.iter().any(|f| f == IN_USE) || secret.deletion_timestamp.is_some() {
        return Ok(false);
    }
    let (Some(name), Some(ns)) = (&secret.name, &secret.namespace) else {
        return Ok(false);
    };
    let mut updated = finalizers;
    updated.push(IN_USE.to_string());
    let api: Api<Secret> = Api::namespaced(client.clone(), ns);
    api.patch_metadata(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {
            "finalizers": updated,
            "resourceVersion": secret.resource_version,
        }})),
    )
    .await?;
    debug!(secret = %name, "added {IN_USE}");
    Ok(true)
}

/// Context of the janitor.
pub struct Janitor {
    pub client: Client,
    pub users: Stores,
}

#[derive(Debug, thiserror::Error)]
#[error("releasing {IN_USE} from a Secret: {0}")]
pub struct JanitorError(#[from] kube::Error);

/// Removes [`IN_USE`] from a Secret that no object of ours names any more.
pub async fn reconcile(
    secret: Arc<PartialObjectMeta<Secret>>,
    ctx: Arc<Janitor>,
) -> Result<Action, JanitorError> {
    let Some(index) = secret.finalizers().iter().position(|f| f == IN_USE) else {
        return Ok(Action::await_change());
    };
    // A restarted operator's Secret cache fills before the others: until they hold every
    // object, "no user" may only mean "none seen yet", and releasing the guard then would let a
    // namespace deletion take the Secret before the drops that need it.
    if !ctx.users.synced() {
        return Ok(Action::requeue(Duration::from_millis(200)));
    }
    let ns = secret.namespace().unwrap_or_default();
    let name = secret.name_any();
    let (users, deleting) = ctx.users.secret_users(&ns, &name);
    if users > 0 {
        // Deletions are seen by the janitor's own watch and by the stores in no fixed order:
        // while every user is on its way out, look again soon instead of waiting for a change.
        return Ok(if users == deleting {
            Action::requeue(Duration::from_secs(2))
        } else {
            Action::await_change()
        });
    }
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
    let path = format!("/metadata/finalizers/{index}");
    let patch: json_patch::Patch = serde_json::from_value(json!([
        {"op": "test", "path": path, "value": IN_USE},
        {"op": "remove", "path": path},
    ]))
    .map_err(kube::Error::SerdeError)?;
    api.patch_metadata(&name, &PatchParams::default(), &Patch::Json::<()>(patch))
        .await?;
    info!(namespace = %ns, secret = %name, "no object uses the Secret any more: released {IN_USE}");
    Ok(Action::await_change())
}

pub fn error_policy(
    _secret: Arc<PartialObjectMeta<Secret>>,
    err: &JanitorError,
    _ctx: Arc<Janitor>,
) -> Action {
    debug!(error = %err, "janitor retry");
    Action::requeue(Duration::from_secs(1))
}
