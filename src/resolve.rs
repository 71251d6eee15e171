//! From an object's spec to the external resource it names.
//!
//! Two steps: [`Managed::address`] is pure validation of the spec (no I/O, unit-tested), and
//! [`resolve`] reads what the address points to (referenced objects, the Secret) and builds a
//! [`Target`] with a ready API client.

use crate::secrets::Tokens;
use crate::stores::{Cache, Stores};
use crate::{
    api::{ControlPlane, DataPlane, Flavour, HttpClient, Token},
    crd::{
        CollectionAddress, ConnectionSpec, DeletionPolicy, SecretKeyRef, ZillizCluster,
        ZillizClusterSpec, ZillizCollection, ZillizCollectionSpec, ZillizIndex, ZillizPartition,
        ZillizStatus,
    },
};
use k8s_openapi::{NamespaceResourceScope, api::core::v1::Secret};
use kube::{Api, Client, Resource, ResourceExt, api::ObjectMeta, runtime::reflector::ObjectRef};
use serde::{Serialize, de::DeserializeOwned};
use std::{fmt::Debug, sync::Arc};
use url::Url;

/// Where a collection lives, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Host {
    /// A ZillizCluster object in the same namespace.
    ClusterRef(String),
    /// A direct endpoint with its own credentials.
    Connection { endpoint: Url, secret: SecretKeyRef },
}

/// A collection, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CollectionLoc {
    pub db: String,
    pub collection: String,
    pub host: Host,
    pub flavour: Flavour,
}

/// How a partition or index names its collection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CollectionSource {
    /// A ZillizCollection object in the same namespace.
    Object(String),
    Direct(CollectionLoc),
}

/// The external resource an object names, validated but not yet resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Address {
    Cluster {
        cluster_id: String,
        base: Url,
        flavour: Flavour,
        secret: SecretKeyRef,
    },
    Collection(CollectionLoc),
    Partition {
        collection: CollectionSource,
        partition: String,
    },
    Index {
        collection: CollectionSource,
        index: String,
        release_collection: bool,
    },
}

/// The objects a spec refers to by name (see [`Managed::refs`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Refs<'a> {
    pub cluster: Option<&'a str>,
    pub collection: Option<&'a str>,
}

/// What the four kinds have in common for the reconciler.
pub trait Managed:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + Debug
    + Serialize
    + DeserializeOwned
    + Send
    + Sync
    + 'static
{
    /// Bounded label for metrics and logs: `cluster`, `collection`, `partition`, `index`.
    const LABEL: &'static str;
    fn deletion_policy(&self) -> DeletionPolicy;
    fn zstatus(&self) -> Option<&ZillizStatus>;
    /// The external name shown to people (cluster id, collection/partition/index name).
    fn external_name(&self) -> &str;
    /// Validates the spec.
    fn address(&self) -> Result<Address, String>;
    /// Names of Secrets this object reads directly (for re-reconciling when they change).
    fn secret_names(&self) -> Vec<&str>;
    /// Names of the ZillizCluster and ZillizCollection objects (same namespace) this object's
    /// spec refers to, valid or not.
    fn refs(&self) -> Refs<'_>;
    /// This kind's cache among the operator's stores.
    fn cache(stores: &Stores) -> &Cache<Self>;
}

fn parse_endpoint(raw: &str, what: &str) -> Result<Url, String> {
    let url = Url::parse(raw.trim()).map_err(|e| {
        format!("{what} {raw:?} is not a URL ({e}); write it like https://host:443 or http://milvus:19530")
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!(
            "{what} {raw:?} must be an http:// or https:// URL with a host"
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "{what} must not carry credentials; put them in the Secret named by credentialsSecretRef"
        ));
    }
    Ok(url)
}

fn host_of(
    cluster_ref: &Option<crate::crd::LocalRef>,
    connection: &Option<ConnectionSpec>,
) -> Result<Host, String> {
    match (cluster_ref, connection) {
        (Some(r), None) => Ok(Host::ClusterRef(r.name.clone())),
        (None, Some(c)) => Ok(Host::Connection {
            endpoint: parse_endpoint(&c.endpoint, "connection.endpoint")?,
            secret: c.credentials_secret_ref.clone(),
        }),
        (Some(_), Some(_)) => {
            Err("both clusterRef and connection are set; set exactly one of them".into())
        }
        (None, None) => {
            Err("neither clusterRef nor connection is set; set exactly one of them".into())
        }
    }
}

fn non_empty(value: &str, field: &str) -> Result<String, String> {
    if value.trim().is_empty() {
        Err(format!("{field} must not be empty"))
    } else {
        Ok(value.to_string())
    }
}

fn collection_source(addr: &CollectionAddress) -> Result<CollectionSource, String> {
    match &addr.collection_ref {
        Some(r) => {
            if addr.collection_name.is_some()
                || addr.db_name.is_some()
                || addr.cluster_ref.is_some()
                || addr.connection.is_some()
            {
                return Err("collectionRef is set together with collectionName/dbName/clusterRef/connection; set either collectionRef alone, or collectionName with exactly one of clusterRef and connection".into());
            }
            Ok(CollectionSource::Object(non_empty(
                &r.name,
                "collectionRef.name",
            )?))
        }
        None => {
            let name = addr.collection_name.as_deref().ok_or(
                "neither collectionRef nor collectionName is set; set collectionRef, or collectionName with exactly one of clusterRef and connection",
            )?;
            Ok(CollectionSource::Direct(CollectionLoc {
                db: non_empty(addr.db_name.as_deref().unwrap_or("default"), "dbName")?,
                collection: non_empty(name, "collectionName")?,
                host: host_of(&addr.cluster_ref, &addr.connection)?,
                // partitions and indexes only exist in the v2 data plane
                flavour: Flavour::V2,
            }))
        }
    }
}

fn cluster_address(spec: &ZillizClusterSpec) -> Result<Address, String> {
    let id = non_empty(&spec.cluster_id, "clusterId")?;
    if !id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(format!(
            "clusterId {id:?} may only hold letters, digits, '-' and '_'"
        ));
    }
    let flavour = Flavour::from(spec.control_plane.api_version);
    let base = match &spec.control_plane.base_url {
        Some(raw) => parse_endpoint(raw, "controlPlane.baseUrl")?,
        None => ControlPlane::default_base(flavour, spec.control_plane.region.as_deref())?,
    };
    Ok(Address::Cluster {
        cluster_id: id,
        base,
        flavour,
        secret: spec.credentials_secret_ref.clone(),
    })
}

pub fn collection_loc_of(spec: &ZillizCollectionSpec) -> Result<CollectionLoc, String> {
    Ok(CollectionLoc {
        db: non_empty(&spec.db_name, "dbName")?,
        collection: non_empty(&spec.collection_name, "collectionName")?,
        host: host_of(&spec.cluster_ref, &spec.connection)?,
        flavour: spec.api_version.into(),
    })
}

fn address_refs(addr: &CollectionAddress) -> Refs<'_> {
    Refs {
        cluster: addr.cluster_ref.as_ref().map(|r| r.name.as_str()),
        collection: addr.collection_ref.as_ref().map(|r| r.name.as_str()),
    }
}

fn address_secrets(addr: &CollectionAddress) -> Vec<&str> {
    addr.connection
        .iter()
        .map(|c| c.credentials_secret_ref.name.as_str())
        .collect()
}

impl Managed for ZillizCluster {
    fn cache(stores: &Stores) -> &Cache<Self> {
        &stores.clusters
    }
    const LABEL: &'static str = "cluster";
    fn deletion_policy(&self) -> DeletionPolicy {
        self.spec.deletion_policy
    }
    fn zstatus(&self) -> Option<&ZillizStatus> {
        self.status.as_ref()
    }
    fn external_name(&self) -> &str {
        &self.spec.cluster_id
    }
    fn address(&self) -> Result<Address, String> {
        cluster_address(&self.spec)
    }
    fn secret_names(&self) -> Vec<&str> {
        vec![self.spec.credentials_secret_ref.name.as_str()]
    }
    fn refs(&self) -> Refs<'_> {
        Refs::default()
    }
}

impl Managed for ZillizCollection {
    fn cache(stores: &Stores) -> &Cache<Self> {
        &stores.collections
    }
    const LABEL: &'static str = "collection";
    fn deletion_policy(&self) -> DeletionPolicy {
        self.spec.deletion_policy
    }
    fn zstatus(&self) -> Option<&ZillizStatus> {
        self.status.as_ref()
    }
    fn external_name(&self) -> &str {
        &self.spec.collection_name
    }
    fn address(&self) -> Result<Address, String> {
        collection_loc_of(&self.spec).map(Address::Collection)
    }
    fn secret_names(&self) -> Vec<&str> {
        self.spec
            .connection
            .iter()
            .map(|c| c.credentials_secret_ref.name.as_str())
            .collect()
    }
    fn refs(&self) -> Refs<'_> {
        Refs {
            cluster: self.spec.cluster_ref.as_ref().map(|r| r.name.as_str()),
            collection: None,
        }
    }
}

impl Managed for ZillizPartition {
    fn cache(stores: &Stores) -> &Cache<Self> {
        &stores.partitions
    }
    const LABEL: &'static str = "partition";
    fn deletion_policy(&self) -> DeletionPolicy {
        self.spec.deletion_policy
    }
    fn zstatus(&self) -> Option<&ZillizStatus> {
        self.status.as_ref()
    }
    fn external_name(&self) -> &str {
        &self.spec.partition_name
    }
    fn address(&self) -> Result<Address, String> {
        Ok(Address::Partition {
            collection: collection_source(&self.spec.collection)?,
            partition: non_empty(&self.spec.partition_name, "partitionName")?,
        })
    }
    fn secret_names(&self) -> Vec<&str> {
        address_secrets(&self.spec.collection)
    }
    fn refs(&self) -> Refs<'_> {
        address_refs(&self.spec.collection)
    }
}

impl Managed for ZillizIndex {
    fn cache(stores: &Stores) -> &Cache<Self> {
        &stores.indexes
    }
    const LABEL: &'static str = "index";
    fn deletion_policy(&self) -> DeletionPolicy {
        self.spec.deletion_policy
    }
    fn zstatus(&self) -> Option<&ZillizStatus> {
        self.status.as_ref()
    }
    fn external_name(&self) -> &str {
        &self.spec.index_name
    }
    fn address(&self) -> Result<Address, String> {
        Ok(Address::Index {
            collection: collection_source(&self.spec.collection)?,
            index: non_empty(&self.spec.index_name, "indexName")?,
            release_collection: self.spec.release_collection_before_drop,
        })
    }
    fn secret_names(&self) -> Vec<&str> {
        address_secrets(&self.spec.collection)
    }
    fn refs(&self) -> Refs<'_> {
        address_refs(&self.spec.collection)
    }
}

/// A resolved external resource with a ready client.
#[derive(Clone, Debug)]
pub enum Target {
    Cluster {
        cp: ControlPlane,
        cluster_id: String,
    },
    Collection {
        dp: DataPlane,
        db: String,
        collection: String,
    },
    Partition {
        dp: DataPlane,
        db: String,
        collection: String,
        partition: String,
    },
    Index {
        dp: DataPlane,
        db: String,
        collection: String,
        index: String,
        release_collection: bool,
    },
}

/// Why an address could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// The spec is invalid; nothing can have been created from it by this operator.
    #[error("invalid spec: {0}")]
    InvalidSpec(String),
    /// A referenced object of ours does not exist.
    #[error("{kind} {name:?} does not exist in this namespace")]
    ReferenceNotFound { kind: &'static str, name: String },
    /// A referenced object reports its external resource as gone.
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

/// Cluster statuses after which its collections are gone with it.
fn cluster_is_gone(status: &ZillizStatus) -> Option<String> {
    if let Some(s) = status.cluster_status.as_deref()
        && matches!(s, "DELETED" | "DELETING")
    {
        return Some(format!("the cluster is {s}"));
    }
    status
        .condition("Ready")
        .filter(|c| c.status == "False" && c.reason == "NotFound")
        .map(|c| c.message.clone())
}

/// The data plane of a collection, and the metadata of the Secret it read when the collection
/// names that Secret itself (a `connection`).
async fn resolve_collection(
    from: &Sources<'_>,
    namespace: &str,
    loc: &CollectionLoc,
) -> Result<(DataPlane, Option<ObjectMeta>), ResolveError> {
    let (endpoint, (token, secret_meta)) = match &loc.host {
        Host::Connection { endpoint, secret } => {
            let (token, meta) = read_token(from.client, from.tokens, namespace, secret).await?;
            (endpoint.clone(), (token, Some(meta)))
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
            if let Some(why) = cluster_is_gone(&status) {
                return Err(ResolveError::ParentGone {
                    kind: "ZillizCluster",
                    name: name.clone(),
                    why,
                });
            }
            let raw = status
                .endpoint
                .as_deref()
                .ok_or_else(|| ResolveError::ParentNotReady {
                    kind: "ZillizCluster",
                    name: name.clone(),
                    why: "its data plane endpoint is not known yet".into(),
                })?;
            let endpoint = parse_endpoint(raw, "the cluster's endpoint").map_err(|why| {
                ResolveError::ParentNotReady {
                    kind: "ZillizCluster",
                    name: name.clone(),
                    why,
                }
            })?;
            let (token, _) = read_token(
                from.client,
                from.tokens,
                namespace,
                &cluster.spec.credentials_secret_ref,
            )
            .await?;
            (endpoint, (token, None))
        }
    };
    let dp = DataPlane {
        http: from.http.clone(),
        endpoint,
        flavour: loc.flavour,
        token,
    };
    Ok((dp, secret_meta))
}

async fn collection_loc(
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

/// A resolved target, and the metadata of the Secret the object names itself (if it names one).
pub struct Resolved {
    pub target: Target,
    pub own_secret: Option<ObjectMeta>,
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
    /// else read. A cache's copy may be a moment old, as a read may be by the time it is used;
    /// a cache without it may not have seen it yet, so only the API says it does not exist
    /// (which lets a drop treat the resource as gone with its parent).
    async fn referenced<K: Managed>(
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
}

/// Resolves an object's address into a target: reads referenced objects and the Secret.
pub async fn resolve<K: Managed>(obj: &K, from: &Sources<'_>) -> Result<Resolved, ResolveError> {
    let (client, tokens, http) = (from.client, from.tokens, from.http);
    let namespace = obj.namespace().unwrap_or_default();
    let address = obj.address().map_err(ResolveError::InvalidSpec)?;
    Ok(match address {
        Address::Cluster {
            cluster_id,
            base,
            flavour,
            secret,
        } => {
            let (token, meta) = read_token(client, tokens, &namespace, &secret).await?;
            Resolved {
                target: Target::Cluster {
                    cp: ControlPlane {
                        http: http.clone(),
                        base,
                        flavour,
                        token,
                    },
                    cluster_id,
                },
                own_secret: Some(meta),
            }
        }
        Address::Collection(loc) => {
            let (dp, own_secret) = resolve_collection(from, &namespace, &loc).await?;
            Resolved {
                target: Target::Collection {
                    dp,
                    db: loc.db,
                    collection: loc.collection,
                },
                own_secret,
            }
        }
        Address::Partition {
            collection,
            partition,
        } => {
            let own = matches!(collection, CollectionSource::Direct(_));
            let loc = collection_loc(from, &namespace, &collection).await?;
            let (dp, secret) = resolve_collection(from, &namespace, &loc).await?;
            Resolved {
                target: Target::Partition {
                    dp,
                    db: loc.db,
                    collection: loc.collection,
                    partition,
                },
                own_secret: secret.filter(|_| own),
            }
        }
        Address::Index {
            collection,
            index,
            release_collection,
        } => {
            let own = matches!(collection, CollectionSource::Direct(_));
            let loc = collection_loc(from, &namespace, &collection).await?;
            let (dp, secret) = resolve_collection(from, &namespace, &loc).await?;
            Resolved {
                target: Target::Index {
                    dp,
                    db: loc.db,
                    collection: loc.collection,
                    index,
                    release_collection,
                },
                own_secret: secret.filter(|_| own),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::*;

    fn collection(spec: serde_json::Value) -> ZillizCollection {
        ZillizCollection::new("c", serde_json::from_value(spec).unwrap())
    }

    #[test]
    fn collection_needs_exactly_one_host() {
        let neither = collection(serde_json::json!({"collectionName": "c"}));
        assert!(neither.address().unwrap_err().contains("neither"));
        let both = collection(serde_json::json!({
            "collectionName": "c",
            "clusterRef": {"name": "x"},
            "connection": {"endpoint": "http://m:19530", "credentialsSecretRef": {"name": "s"}}
        }));
        assert!(both.address().unwrap_err().contains("both"));
        let ok = collection(serde_json::json!({
            "collectionName": "c",
            "connection": {"endpoint": "http://m:19530", "credentialsSecretRef": {"name": "s"}}
        }));
        let Address::Collection(loc) = ok.address().unwrap() else {
            panic!()
        };
        assert_eq!(loc.db, "default");
        assert_eq!(loc.flavour, Flavour::V2);
        assert_eq!(
            loc.host,
            Host::Connection {
                endpoint: Url::parse("http://m:19530").unwrap(),
                secret: SecretKeyRef {
                    name: "s".into(),
                    key: "apiKey".into()
                }
            }
        );
    }

    #[test]
    fn endpoints_must_be_urls_without_credentials() {
        for bad in [
            "milvus:19530",
            "not a url",
            "ftp://m",
            "http://root:Milvus@m:19530",
        ] {
            let c = collection(serde_json::json!({
                "collectionName": "c",
                "connection": {"endpoint": bad, "credentialsSecretRef": {"name": "s"}}
            }));
            let err = c.address().unwrap_err();
            assert!(err.contains("connection.endpoint"), "{bad}: {err}");
            assert!(!err.contains("Milvus@") || !err.contains("Secret"), "{err}");
        }
    }

    #[test]
    fn partition_addresses() {
        let by_ref: ZillizPartition = ZillizPartition::new(
            "p",
            serde_json::from_value(
                serde_json::json!({"partitionName": "p", "collectionRef": {"name": "c"}}),
            )
            .unwrap(),
        );
        assert_eq!(
            by_ref.address().unwrap(),
            Address::Partition {
                collection: CollectionSource::Object("c".into()),
                partition: "p".into()
            }
        );
        let mixed: ZillizPartition = ZillizPartition::new(
            "p",
            serde_json::from_value(serde_json::json!({
                "partitionName": "p", "collectionRef": {"name": "c"}, "collectionName": "x"
            }))
            .unwrap(),
        );
        assert!(mixed.address().unwrap_err().contains("collectionRef"));
        let nothing: ZillizIndex = ZillizIndex::new(
            "i",
            serde_json::from_value(serde_json::json!({"indexName": "i"})).unwrap(),
        );
        assert!(nothing.address().unwrap_err().contains("neither"));
    }

    #[test]
    fn cluster_addresses() {
        let mk = |cp: serde_json::Value, id: &str| {
            ZillizCluster::new(
                "z",
                serde_json::from_value(serde_json::json!({
                    "clusterId": id, "controlPlane": cp, "credentialsSecretRef": {"name": "s"}
                }))
                .unwrap(),
            )
        };
        let Address::Cluster { base, flavour, .. } =
            mk(serde_json::json!({}), "in01-x").address().unwrap()
        else {
            panic!()
        };
        assert_eq!(base.as_str(), "https://api.cloud.zilliz.com/");
        assert_eq!(flavour, Flavour::V2);
        let err = mk(serde_json::json!({"apiVersion": "v1"}), "in01-x")
            .address()
            .unwrap_err();
        assert!(err.contains("region"), "{err}");
        assert!(
            mk(serde_json::json!({}), "../etc")
                .address()
                .unwrap_err()
                .contains("clusterId")
        );
    }
}
