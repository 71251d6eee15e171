//! From an object's spec to the external resource it names: reads the referenced objects (from
//! the caches) and the Secret, and builds a [`Target`] with ready API clients and the [`Plan`]
//! its kind's protocol needs.
//!
//! Validation is pure and lives with the kinds ([`Managed::address`]). A drop never learns
//! "gone" here: a missing referenced object is [`ResolveError::ReferenceNotFound`] (unless the
//! object recorded where its resource is), and a parent that says its cluster is gone only
//! makes the drop ask that cluster first.

use crate::secrets::Tokens;
use crate::stores::{Cached, Stores};
use crate::{
    api::{ControlPlane, DataPlane, Flavour, HttpClient, Token},
    crd::{
        ManagementPolicy, Reason, ResolvedCluster, ResolvedStatus, SecretKeyRef, ZillizCluster,
        ZillizCollection, ZillizStatus, allows,
    },
    kinds::{
        Address, ClusterState, CollectionLoc, CollectionSource, Container, Creatable, Host,
        Managed, Plan, collection_loc_of, control_plane_base, parse_endpoint,
    },
};
use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client, ResourceExt, api::ObjectMeta, runtime::reflector::ObjectRef};
use std::sync::Arc;
use url::Url;

/// What the resolve is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// Observing a live object: a parent that is not ready or gone is reported as such.
    Observe,
    /// Dropping: a parent's state is only a hint, and a parent removed by hand is replaced by
    /// what the object recorded.
    Drop,
}

/// A resolved external resource with ready clients.
#[derive(Clone, Debug)]
pub struct Target {
    /// What the kind's protocol needs to know.
    pub plan: Plan,
    /// The cluster's control plane: the object's own cluster, or the one its collection is in.
    pub control: Option<ControlPlane>,
    /// The data plane, for collections, partitions and indexes.
    pub data: Option<DataTarget>,
    /// Why the resource is not created when absent (the spec does not say how, or
    /// `managementPolicies` do not allow it).
    pub no_create: Option<&'static str>,
}

/// A collection (and a partition or index in it) on a data plane.
#[derive(Clone, Debug)]
pub struct DataTarget {
    pub http: HttpClient,
    pub flavour: Flavour,
    pub token: Token,
    /// Known beforehand; else the cluster's describe gives it.
    pub endpoint: Option<Url>,
    pub db: String,
    pub collection: String,
    /// The partition or index, for those kinds.
    pub leaf: Option<String>,
    /// The request that creates the resource, when the plan may create it.
    pub create_body: Option<serde_json::Value>,
}

impl DataTarget {
    /// The data plane at `endpoint`.
    pub fn at(&self, endpoint: Url) -> DataPlane {
        DataPlane {
            http: self.http.clone(),
            endpoint,
            flavour: self.flavour,
            token: self.token.clone(),
        }
    }
}

/// Why an address could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// The spec is invalid; nothing can have been created from it by this operator.
    #[error("invalid spec: {0}")]
    InvalidSpec(String),
    /// A referenced object of ours does not exist (and, for a drop, nothing was recorded).
    #[error("{kind} {name:?} does not exist in this namespace")]
    ReferenceNotFound { kind: &'static str, name: String },
    /// A referenced object reports its external resource as gone (observing only).
    #[error("{kind} {name:?} reports its external resource gone: {why}")]
    ParentGone {
        kind: &'static str,
        name: String,
        why: String,
    },
    /// A referenced object is not usable yet (e.g. the cluster's endpoint is not known).
    #[error("{kind} {name:?} is not ready: {why}")]
    ParentNotReady {
        kind: &'static str,
        name: String,
        why: String,
    },
    /// The Secret or its key is missing or empty.
    #[error("{0}")]
    CredentialsUnavailable(String),
    #[error("reading from the Kubernetes API failed: {0}")]
    Kube(#[from] kube::Error),
}

/// Reads a token from a Secret in `namespace` (never another namespace).
/// A token still valid in `tokens` (the Secret unchanged since it was read) is not read again.
pub async fn read_token(
    client: &Client,
    tokens: &Tokens,
    namespace: &str,
    secret: &SecretKeyRef,
) -> Result<(Token, ObjectMeta), ResolveError> {
    if let Some(known) = tokens.get(namespace, secret) {
        return Ok(known);
    }
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let found = match api.get_opt(&secret.name).await {
        Ok(found) => found,
        Err(kube::Error::Api(status)) if status.code == 403 => {
            return Err(ResolveError::CredentialsUnavailable(format!(
                "the operator may not read Secret {:?}: {}",
                secret.name, status.message
            )));
        }
        Err(e) => return Err(e.into()),
    };
    let found = found.ok_or_else(|| {
        ResolveError::CredentialsUnavailable(format!(
            "Secret {:?} not found in namespace {namespace:?}",
            secret.name
        ))
    })?;
    let bytes = found
        .data
        .as_ref()
        .and_then(|d| d.get(&secret.key))
        .map(|b| b.0.clone())
        .or_else(|| {
            found
                .string_data
                .as_ref()
                .and_then(|d| d.get(&secret.key))
                .map(|s| s.clone().into_bytes())
        })
        .ok_or_else(|| {
            ResolveError::CredentialsUnavailable(format!(
                "Secret {:?} has no key {:?}",
                secret.name, secret.key
            ))
        })?;
    let text = String::from_utf8(bytes).map_err(|_| {
        ResolveError::CredentialsUnavailable(format!(
            "key {:?} of Secret {:?} is not UTF-8 text",
            secret.key, secret.name
        ))
    })?;
    let token = Token::new(text);
    if token.is_empty() {
        return Err(ResolveError::CredentialsUnavailable(format!(
            "key {:?} of Secret {:?} is empty",
            secret.key, secret.name
        )));
    }
    tokens.put(namespace, secret, &found.metadata, &token);
    Ok((token, found.metadata))
}

/// Cluster statuses after which its collections are gone with it (a hint: only the cluster's
/// own describe decides a drop).
fn cluster_is_gone(status: &ZillizStatus) -> Option<String> {
    if let Some(s) = status.cluster_status.as_deref()
        && matches!(
            ClusterState::parse(s),
            ClusterState::Deleted | ClusterState::Deleting
        )
    {
        return Some(format!("the cluster is {s}"));
    }
    status
        .condition("Ready")
        .filter(|c| c.status == "False" && c.reason == Reason::NotFound.as_str())
        .map(|c| c.message.clone())
}

/// Where [`resolve`] reads from.
pub struct Sources<'a> {
    pub client: &'a Client,
    /// Tokens, kept while their Secret is unchanged.
    pub tokens: &'a Tokens,
    /// The caches, which hold the objects a spec refers to (none in tests of the reconciler
    /// alone: then they are read from the API).
    pub stores: Option<&'a Stores>,
    pub http: &'a HttpClient,
}

impl Sources<'_> {
    /// The ZillizCluster or ZillizCollection `namespace/name` a spec refers to: the cache's copy,
    /// else read. A cache without it may not have seen it yet, so only the API says it does not
    /// exist.
    async fn referenced<K: Cached>(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Arc<K>>, kube::Error> {
        let cached = self
            .stores
            .and_then(|stores| K::cache(stores).get(&ObjectRef::new(name).within(namespace)));
        if let Some(obj) = cached {
            return Ok(Some(obj));
        }
        let api: Api<K> = Api::namespaced(self.client.clone(), namespace);
        Ok(api.get_opt(name).await?.map(Arc::new))
    }

    pub async fn token(
        &self,
        namespace: &str,
        secret: &SecretKeyRef,
    ) -> Result<(Token, ObjectMeta), ResolveError> {
        read_token(self.client, self.tokens, namespace, secret).await
    }
}

/// A resolved target; the metadata of the Secret the object names itself (if it names one);
/// and, for an object reached through another object, where its resource was found.
pub struct Resolved {
    pub target: Target,
    pub own_secret: Option<ObjectMeta>,
    pub record: Option<ResolvedStatus>,
}

/// Where a collection is, once its host is resolved.
struct Located {
    endpoint: Option<Url>,
    token: Token,
    secret: SecretKeyRef,
    own_secret: Option<ObjectMeta>,
    control: Option<ControlPlane>,
    cluster: Option<ResolvedCluster>,
    hint_gone: bool,
    /// Reached through another object (so it is worth recording).
    referenced: bool,
}

fn cluster_plane(
    from: &Sources<'_>,
    id: &str,
    base: Url,
    flavour: Flavour,
    token: Token,
) -> (ControlPlane, ResolvedCluster) {
    let record = ResolvedCluster {
        cluster_id: id.to_string(),
        control_plane_url: base.to_string(),
        api_version: match flavour {
            Flavour::V1 => crate::crd::ApiVersion::V1,
            Flavour::V2 => crate::crd::ApiVersion::V2,
        },
    };
    let cp = ControlPlane {
        http: from.http.clone(),
        base,
        flavour,
        token,
    };
    (cp, record)
}

/// Resolves where a collection lives: its endpoint, token and (through a cluster) the cluster.
async fn locate(
    from: &Sources<'_>,
    namespace: &str,
    loc: &CollectionLoc,
    purpose: Purpose,
) -> Result<Located, ResolveError> {
    match &loc.host {
        Host::Connection { endpoint, secret } => {
            let (token, meta) = from.token(namespace, secret).await?;
            Ok(Located {
                endpoint: Some(endpoint.clone()),
                token,
                secret: secret.clone(),
                own_secret: Some(meta),
                control: None,
                cluster: None,
                hint_gone: false,
                referenced: false,
            })
        }
        Host::ClusterRef(name) => {
            let cluster = from
                .referenced::<ZillizCluster>(namespace, name)
                .await?
                .ok_or_else(|| ResolveError::ReferenceNotFound {
                    kind: "ZillizCluster",
                    name: name.clone(),
                })?;
            let status = cluster.status.clone().unwrap_or_default();
            let gone = cluster_is_gone(&status);
            let endpoint = status
                .endpoint
                .as_deref()
                .and_then(|raw| parse_endpoint(raw, "the cluster's endpoint").ok());
            if purpose == Purpose::Observe {
                if let Some(why) = gone {
                    return Err(ResolveError::ParentGone {
                        kind: "ZillizCluster",
                        name: name.clone(),
                        why,
                    });
                }
                if endpoint.is_none() {
                    return Err(ResolveError::ParentNotReady {
                        kind: "ZillizCluster",
                        name: name.clone(),
                        why: "its data plane endpoint is not known yet".into(),
                    });
                }
            }
            let invalid = |why: String| ResolveError::ParentNotReady {
                kind: "ZillizCluster",
                name: name.clone(),
                why: format!("its spec is invalid: {why}"),
            };
            let (cluster_id, base, flavour, secret) = match cluster.address().map_err(invalid)? {
                Address::Cluster {
                    cluster_id,
                    base,
                    flavour,
                    secret,
                } => (cluster_id, base, flavour, secret),
                other => return Err(invalid(format!("it addresses {other:?}"))),
            };
            let (token, _) = from.token(namespace, &secret).await?;
            let (cp, record) = cluster_plane(from, &cluster_id, base, flavour, token.clone());
            Ok(Located {
                endpoint,
                token,
                secret,
                own_secret: None,
                control: Some(cp),
                cluster: Some(record),
                hint_gone: gone.is_some(),
                referenced: true,
            })
        }
    }
}

/// Where the object recorded its resource to be, for a drop whose referenced object is gone.
async fn recorded(
    from: &Sources<'_>,
    namespace: &str,
    record: &ResolvedStatus,
) -> Result<Located, ResolveError> {
    let (token, _) = from
        .token(namespace, &record.credentials_secret_ref)
        .await?;
    let endpoint = record
        .endpoint
        .as_deref()
        .and_then(|raw| parse_endpoint(raw, "the recorded endpoint").ok());
    let (control, cluster) = match &record.cluster {
        Some(c) => {
            let flavour = Flavour::from(c.api_version);
            let base = control_plane_base(flavour, Some(&c.control_plane_url), None)
                .map_err(ResolveError::InvalidSpec)?;
            let (cp, rec) = cluster_plane(from, &c.cluster_id, base, flavour, token.clone());
            (Some(cp), Some(rec))
        }
        None => (None, None),
    };
    Ok(Located {
        endpoint,
        token,
        secret: record.credentials_secret_ref.clone(),
        own_secret: None,
        control,
        cluster,
        hint_gone: false,
        referenced: true,
    })
}

/// The collection a partition or index lives in.
async fn collection_of(
    from: &Sources<'_>,
    namespace: &str,
    source: &CollectionSource,
) -> Result<CollectionLoc, ResolveError> {
    match source {
        CollectionSource::Direct(loc) => Ok(loc.clone()),
        CollectionSource::Object(name) => {
            let coll = from
                .referenced::<ZillizCollection>(namespace, name)
                .await?
                .ok_or_else(|| ResolveError::ReferenceNotFound {
                    kind: "ZillizCollection",
                    name: name.clone(),
                })?;
            collection_loc_of(&coll.spec).map_err(|why| ResolveError::ParentNotReady {
                kind: "ZillizCollection",
                name: name.clone(),
                why: format!("its spec is invalid: {why}"),
            })
        }
    }
}

/// Resolves an object's address into a target: reads referenced objects and the Secret.
pub async fn resolve<K: Managed>(
    obj: &K,
    from: &Sources<'_>,
    purpose: Purpose,
) -> Result<Resolved, ResolveError> {
    let namespace = obj.namespace().unwrap_or_default();
    let address = obj.address().map_err(ResolveError::InvalidSpec)?;
    let accepted = obj
        .zstatus()
        .and_then(|s| s.deletion.as_ref())
        .is_some_and(|d| d.drop_accepted_time.is_some());
    let (loc, leaf, release_collection) = match address {
        Address::Cluster {
            cluster_id,
            base,
            flavour,
            secret,
        } => {
            let (token, meta) = from.token(&namespace, &secret).await?;
            let (cp, _) = cluster_plane(from, &cluster_id, base, flavour, token);
            let plan = Plan {
                what: format!("cluster {cluster_id}"),
                cluster_id: Some(cluster_id),
                accepted,
                release_collection: false,
                container: Container::None,
                create: None,
                desired: obj.desired(),
                update: allows(obj.management_policies(), ManagementPolicy::Update),
            };
            return Ok(Resolved {
                target: Target {
                    plan,
                    control: Some(cp),
                    data: None,
                    no_create: Some(
                        "a cluster whose id is known is never created again; for a new cluster, apply a new object without spec.clusterId",
                    ),
                },
                own_secret: Some(meta),
                record: None,
            });
        }
        Address::Collection(loc) => (Ok(loc), None, false),
        Address::Partition {
            collection,
            partition,
        } => (
            collection_of(from, &namespace, &collection).await,
            Some(("partition", partition)),
            false,
        ),
        Address::Index {
            collection,
            index,
            release_collection,
        } => (
            collection_of(from, &namespace, &collection).await,
            Some(("index", index)),
            release_collection,
        ),
    };
    // partitions and indexes only exist in the v2 data plane
    let flavour = loc.as_ref().map_or(Flavour::V2, |loc| loc.flavour);
    let found = match loc {
        Ok(loc) => locate(from, &namespace, &loc, purpose)
            .await
            .map(|located| (located, loc.db, loc.collection)),
        Err(e) => Err(e),
    };
    // A referenced object removed by hand: a drop goes where the object recorded last.
    let record = obj.zstatus().and_then(|s| s.resolved.as_ref());
    let (located, db, collection) = match (found, record) {
        (Ok(found), _) => found,
        (Err(ResolveError::ReferenceNotFound { .. }), Some(record)) if purpose == Purpose::Drop => {
            (
                recorded(from, &namespace, record).await?,
                record.db_name.clone(),
                record.collection_name.clone(),
            )
        }
        (Err(e), _) => return Err(e),
    };
    let what = match &leaf {
        Some((kind, name)) => format!("{kind} {name} of {db}.{collection}"),
        None => format!("collection {db}.{collection}"),
    };
    let container = match located.control {
        Some(_) => Container::Cluster {
            hint_gone: located.hint_gone,
            endpoint_known: located.endpoint.is_some(),
        },
        None => Container::None,
    };
    let (create, create_body, no_create) =
        if !allows(obj.management_policies(), ManagementPolicy::Create) {
            (None, None, Some("managementPolicies do not include Create"))
        } else {
            match obj.create_request(&db, &collection, flavour) {
                Creatable::Yes(call, body) => (Some(call), Some(body), None),
                Creatable::No(why) => (None, None, Some(why)),
            }
        };
    let plan = Plan {
        what,
        cluster_id: located.cluster.as_ref().map(|c| c.cluster_id.clone()),
        accepted,
        release_collection,
        container,
        create: create.filter(|_| purpose == Purpose::Observe),
        desired: obj.desired(),
        update: allows(obj.management_policies(), ManagementPolicy::Update),
    };
    let record = located.referenced.then(|| ResolvedStatus {
        endpoint: located.endpoint.as_ref().map(Url::to_string),
        db_name: db.clone(),
        collection_name: collection.clone(),
        credentials_secret_ref: located.secret.clone(),
        cluster: located.cluster.clone(),
    });
    let names_a_secret = !obj.secret_names().is_empty();
    Ok(Resolved {
        target: Target {
            plan,
            control: located.control,
            data: Some(DataTarget {
                http: from.http.clone(),
                flavour,
                token: located.token,
                endpoint: located.endpoint,
                db,
                collection,
                leaf: leaf.map(|(_, name)| name),
                create_body,
            }),
            no_create,
        },
        own_secret: located.own_secret.filter(|_| names_a_secret),
        record,
    })
}
