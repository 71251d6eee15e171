//! The four custom resources (group `zilliz.io`, version `v1alpha1`).
//!
//! Identity fields (ids, names, database, endpoint, references) are immutable through CEL rules,
//! so that an edit can never retarget a drop at another resource.

// Each `printcolumn(..)` repeats `type_ = ..`; clippy reads them as one attribute list.
#![allow(clippy::duplicated_attributes)]

use kube::{CustomResource, CustomResourceExt, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The finalizer every live object carries until its external resource is dropped (or orphaned).
pub const FINALIZER: &str = "zilliz.io/finalizer";

/// The reasons of conditions and Events: bounded, CamelCase, part of the contract (kstatus,
/// Argo CD, Flux and people's alerts read them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    // Ready
    Available,
    ClusterNotRunning,
    NotFound,
    Conflict,
    InvalidSpec,
    ReferenceNotFound,
    ParentNotReady,
    DatabaseNotFound,
    CredentialsUnavailable,
    Unauthorized,
    Unreachable,
    Unsupported,
    InvalidRequest,
    KubeApi,
    /// The server's resource differs from the spec in what cannot change in place (or the
    /// policies do not allow `Update`).
    SpecMismatch,
    /// `loadState: Loaded`, and the collection's vector fields have no index yet.
    IndexMissing,
    Loading,
    IndexBuilding,
    IndexBuildFailed,
    /// A cluster create was sent and the cluster is not listed yet: looking again.
    Creating,
    // Synced
    ReconcileSuccess,
    DropInProgress,
    DropRetrying,
    DropBlocked,
    DropFailed,
    DependentsExist,
    CachesSyncing,
    DeletionProtected,
    /// A call bringing a mutable field to the spec failed.
    UpdateFailed,
    /// A cluster create may have happened and the operator cannot tell: it never sends a
    /// second one; someone decides (the message says how).
    CreatePending,
    // Events only
    Created,
    Orphaned,
    Dropped,
    AlreadyAbsent,
    KeptShared,
    NothingToDrop,
    DropAccepted,
    CollectionLoaded,
    Updated,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        use Reason::*;
        match self {
            Available => "Available",
            ClusterNotRunning => "ClusterNotRunning",
            NotFound => "NotFound",
            Conflict => "Conflict",
            InvalidSpec => "InvalidSpec",
            ReferenceNotFound => "ReferenceNotFound",
            ParentNotReady => "ParentNotReady",
            DatabaseNotFound => "DatabaseNotFound",
            CredentialsUnavailable => "CredentialsUnavailable",
            Unauthorized => "Unauthorized",
            Unreachable => "Unreachable",
            Unsupported => "Unsupported",
            InvalidRequest => "InvalidRequest",
            KubeApi => "KubeApi",
            SpecMismatch => "SpecMismatch",
            IndexMissing => "IndexMissing",
            Loading => "Loading",
            IndexBuilding => "IndexBuilding",
            IndexBuildFailed => "IndexBuildFailed",
            UpdateFailed => "UpdateFailed",
            Creating => "Creating",
            CreatePending => "CreatePending",
            Updated => "Updated",
            ReconcileSuccess => "ReconcileSuccess",
            DropInProgress => "DropInProgress",
            DropRetrying => "DropRetrying",
            DropBlocked => "DropBlocked",
            DropFailed => "DropFailed",
            DependentsExist => "DependentsExist",
            CachesSyncing => "CachesSyncing",
            DeletionProtected => "DeletionProtected",
            Created => "Created",
            Orphaned => "Orphaned",
            Dropped => "Dropped",
            AlreadyAbsent => "AlreadyAbsent",
            KeptShared => "KeptShared",
            NothingToDrop => "NothingToDrop",
            DropAccepted => "DropAccepted",
            CollectionLoaded => "CollectionLoaded",
        }
    }
}

impl Reason {
    /// kstatus's `Stalled`: nothing changes until someone acts (fixes the spec, the Secret, the
    /// collection's load, removes the annotation, or lets the object go).
    pub fn stalls(self) -> bool {
        use Reason::*;
        matches!(
            self,
            DropFailed
                | DeletionProtected
                | InvalidSpec
                | ReferenceNotFound
                | Conflict
                | NotFound
                | Unauthorized
                | Unsupported
                | InvalidRequest
                | DropBlocked
                | CredentialsUnavailable
                | SpecMismatch
                | IndexBuildFailed
                | CreatePending
        )
    }

    /// kstatus's `Reconciling`: work is under way and will go on by itself (a drop being
    /// confirmed, retried, waiting for other objects or for a parent).
    pub fn in_progress(self) -> bool {
        use Reason::*;
        matches!(
            self,
            DropInProgress
                | DropRetrying
                | DependentsExist
                | CachesSyncing
                | ParentNotReady
                | DatabaseNotFound
                | ClusterNotRunning
                | Unreachable
                | KubeApi
                | IndexMissing
                | Loading
                | IndexBuilding
                | UpdateFailed
                | Creating
        )
    }

    /// The reason a condition carries, if it is one of ours.
    pub fn parse(raw: &str) -> Option<Reason> {
        use Reason::*;
        [
            Available,
            ClusterNotRunning,
            NotFound,
            Conflict,
            InvalidSpec,
            ReferenceNotFound,
            ParentNotReady,
            DatabaseNotFound,
            CredentialsUnavailable,
            Unauthorized,
            Unreachable,
            Unsupported,
            InvalidRequest,
            KubeApi,
            SpecMismatch,
            IndexMissing,
            Loading,
            IndexBuilding,
            IndexBuildFailed,
            Creating,
            ReconcileSuccess,
            DropInProgress,
            DropRetrying,
            DropBlocked,
            DropFailed,
            DependentsExist,
            CachesSyncing,
            DeletionProtected,
            UpdateFailed,
            CreatePending,
        ]
        .into_iter()
        .find(|r| r.as_str() == raw)
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What happens to the external resource when the object is deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum DeletionPolicy {
    /// Drop the external resource, and let the object go once the API confirms it is gone.
    #[default]
    Delete,
    /// Keep the external resource; only let the object go.
    Orphan,
}

/// What the operator may do to an object's external resource (Crossplane's vocabulary).
/// `Observe` is always implied; `*` is all of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ManagementPolicy {
    #[serde(rename = "*")]
    All,
    Observe,
    Create,
    Update,
    Delete,
}

fn all_policies() -> Vec<ManagementPolicy> {
    vec![ManagementPolicy::All]
}

/// Whether `policies` allow `action` (`*` allows everything; `Observe` is always allowed).
pub fn allows(policies: &[ManagementPolicy], action: ManagementPolicy) -> bool {
    action == ManagementPolicy::Observe
        || policies
            .iter()
            .any(|p| *p == ManagementPolicy::All || *p == action)
}

/// REST API version to speak.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ApiVersion {
    #[serde(rename = "v1")]
    V1,
    #[default]
    #[serde(rename = "v2")]
    V2,
}

impl From<ApiVersion> for crate::api::Flavour {
    fn from(v: ApiVersion) -> Self {
        match v {
            ApiVersion::V1 => crate::api::Flavour::V1,
            ApiVersion::V2 => crate::api::Flavour::V2,
        }
    }
}

fn default_key() -> String {
    "apiKey".to_string()
}

fn default_db() -> String {
    "default".to_string()
}

/// A key of a Secret in the object's own namespace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Name of the Secret (same namespace as this object).
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key in the Secret holding the token (an API key, or `user:password` for Milvus).
    #[serde(default = "default_key")]
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

/// A reference to another object of ours in the same namespace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
pub struct LocalRef {
    /// Name of the object, in this object's namespace.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// How to reach the Zilliz Cloud control plane.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ControlPlaneSpec {
    /// Control plane API version: `v2` (default, global endpoint) or `v1` (regional endpoint).
    #[serde(default)]
    pub api_version: ApiVersion,
    /// Cloud region, e.g. `gcp-us-west1`; needed for v1, whose host is per region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub region: Option<String>,
    /// Override of the control plane base URL (China region, private gateways, tests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    pub base_url: Option<String>,
}

/// A direct connection to any Milvus data plane (self-hosted included).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionSpec {
    /// Data plane URL, e.g. `https://in01-xxx.api.gcp-us-west1.zillizcloud.com` or
    /// `http://milvus.milvus.svc:19530`.
    #[schemars(length(min = 1, max = 2048))]
    pub endpoint: String,
    /// Secret key holding the token (`user:password` or an API key).
    pub credentials_secret_ref: SecretKeyRef,
}

/// A Zilliz Cloud cluster plan (`docs/zilliz-api.md`, "Creating and describing").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ClusterPlan {
    Free,
    Serverless,
    Standard,
    Enterprise,
}

impl From<ClusterPlan> for crate::api::ClusterPlan {
    fn from(p: ClusterPlan) -> Self {
        match p {
            ClusterPlan::Free => crate::api::ClusterPlan::Free,
            ClusterPlan::Serverless => crate::api::ClusterPlan::Serverless,
            ClusterPlan::Standard => crate::api::ClusterPlan::Standard,
            ClusterPlan::Enterprise => crate::api::ClusterPlan::Enterprise,
        }
    }
}

/// Whether a cluster should run or be suspended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum DesiredStatus {
    #[default]
    Running,
    Suspended,
}

/// A Secret in the object's own namespace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
pub struct SecretRef {
    /// Name of the Secret (same namespace as this object).
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// A Zilliz Cloud cluster.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "zilliz.io",
    version = "v1alpha1",
    kind = "ZillizCluster",
    doc = "A Zilliz Cloud cluster, dropped when this object is deleted (unless deletionPolicy is Orphan)",
    namespaced,
    status = "ZillizStatus",
    shortname = "zc",
    category = "zilliz",
    printcolumn(name = "Cluster", type_ = "string", json_path = ".status.clusterId"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Synced",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Synced\")].status"
    ),
    printcolumn(
        name = "Reason",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Synced\")].reason"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(
    validation = kube::core::Rule::new("has(self.clusterId) || (has(self.clusterName) && has(self.projectId) && has(self.regionId) && has(self.plan))").message("set clusterId to adopt a cluster, or clusterName, projectId, regionId and plan to create one"),
    validation = kube::core::Rule::new("!has(oldSelf.clusterId) || has(self.clusterId)").message("clusterId cannot be removed once set"),
    validation = kube::core::Rule::new("has(self.clusterId) || !has(self.plan) || (self.plan != 'Standard' && self.plan != 'Enterprise') || (has(self.cuType) && has(self.cuSize))").message("creating a dedicated cluster (plan Standard or Enterprise) needs cuType and cuSize"),
    validation = kube::core::Rule::new("!has(self.plan) || self.plan == 'Standard' || self.plan == 'Enterprise' || (!has(self.cuType) && !has(self.cuSize))").message("cuType and cuSize are for dedicated plans (Standard, Enterprise) only"),
    validation = kube::core::Rule::new("!has(self.desiredStatus) || self.desiredStatus == 'Running' || !has(self.plan) || self.plan == 'Standard' || self.plan == 'Enterprise'").message("desiredStatus Suspended needs a dedicated plan (Standard, Enterprise)")
)]
#[serde(rename_all = "camelCase")]
pub struct ZillizClusterSpec {
    /// Zilliz Cloud cluster id, e.g. `in01-0123456789abcdef`: the cluster to adopt. Absent: the
    /// operator creates one from `clusterName`, `projectId`, `regionId` and `plan` (once). Set,
    /// it always wins over a cluster the object created or found; it may be set later (to
    /// resolve `CreatePending`), and is then immutable and cannot be removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 128),
        regex(pattern = r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
    )]
    #[x_kube(validation = kube::core::Rule::new("self == oldSelf").message("clusterId is immutable"))]
    pub cluster_id: Option<String>,
    /// Name of the cluster to create, unique in its project. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    #[x_kube(validation = kube::core::Rule::new("self == oldSelf").message("clusterName is immutable"))]
    pub cluster_name: Option<String>,
    /// Project to create the cluster in, e.g. `proj-0123456789abcdef`. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128))]
    #[x_kube(validation = kube::core::Rule::new("self == oldSelf").message("projectId is immutable"))]
    pub project_id: Option<String>,
    /// Cloud region to create the cluster in, e.g. `aws-us-west-2`. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    #[x_kube(validation = kube::core::Rule::new("self == oldSelf").message("regionId is immutable"))]
    pub region_id: Option<String>,
    /// Plan of the cluster to create: `Free`, `Serverless`, or the dedicated `Standard` and
    /// `Enterprise`. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = kube::core::Rule::new("self == oldSelf").message("plan is immutable"))]
    pub plan: Option<ClusterPlan>,
    /// Compute unit type of a dedicated cluster, e.g. `Performance-optimized`. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    #[x_kube(validation = kube::core::Rule::new("self == oldSelf").message("cuType is immutable"))]
    pub cu_type: Option<String>,
    /// Compute units of a dedicated cluster (Standard 1–32, Enterprise 1–1024); a change
    /// resizes the cluster in place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1024))]
    pub cu_size: Option<u32>,
    /// Replicas; a change is applied in place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1024))]
    pub replica: Option<u32>,
    /// `Running` (default) or `Suspended` (dedicated plans only): suspends or resumes the
    /// cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired_status: Option<DesiredStatus>,
    /// A Secret (in this object's namespace, owned by it) to write the connection to:
    /// `endpoint`, `clusterId`, and `username`/`password` of a cluster this object created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_connection_secret_to_ref: Option<SecretRef>,
    /// How to reach the control plane.
    #[serde(default)]
    #[x_kube(validation = kube::core::Rule::new("self == oldSelf").message("controlPlane is immutable"))]
    pub control_plane: ControlPlaneSpec,
    /// Secret key holding the Zilliz Cloud API key. Also used for the data plane of
    /// collections that reference this cluster.
    #[x_kube(validation = kube::core::Rule::new("self.name == oldSelf.name").message("credentialsSecretRef.name is immutable; rotate the Secret's content instead"))]
    pub credentials_secret_ref: SecretKeyRef,
    /// `Delete` (default) drops the cluster when this object is deleted; `Orphan` keeps it.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    /// What the operator may do: `["*"]` (default) or a list of `Observe`, `Create`, `Update`,
    /// `Delete`. `["Observe"]` is read-only; `["Observe", "Delete"]` only drops on delete. A drop
    /// happens only when both this and `deletionPolicy` allow it.
    #[serde(default = "all_policies")]
    #[schemars(length(min = 1, max = 5))]
    #[x_kube(validation = kube::core::Rule::new("!('*' in self) || size(self) == 1").message("'*' stands alone: write [\"*\"] or list the actions"))]
    pub management_policies: Vec<ManagementPolicy>,
}

/// A Milvus collection, in a ZillizCluster or behind a direct connection.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "zilliz.io",
    version = "v1alpha1",
    kind = "ZillizCollection",
    doc = "A Milvus collection, dropped when this object is deleted (unless deletionPolicy is Orphan)",
    namespaced,
    status = "ZillizStatus",
    shortname = "zcol",
    category = "zilliz",
    printcolumn(
        name = "Collection",
        type_ = "string",
        json_path = ".spec.collectionName"
    ),
    printcolumn(
        name = "Load",
        type_ = "string",
        json_path = ".status.observed.loadState"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Synced",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Synced\")].status"
    ),
    printcolumn(
        name = "Reason",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Synced\")].reason"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(
    validation = kube::core::Rule::new("has(self.clusterRef) != has(self.connection)").message("set exactly one of clusterRef and connection"),
    validation = kube::core::Rule::new("has(self.clusterRef) == has(oldSelf.clusterRef) && has(self.connection) == has(oldSelf.connection)").message("clusterRef and connection cannot be added or removed"),
    validation = kube::core::Rule::new("!(has(self.schema) && has(self.quickSetup))").message("set schema or quickSetup, not both"),
    validation = kube::core::Rule::new("!has(self.schema) || !has(self.apiVersion) || self.apiVersion != 'v1'").message("REST v1 can only create from quickSetup; use apiVersion v2 for a custom schema"),
    validation = kube::core::Rule::new("!has(oldSelf.schema) || has(self.schema)").message("schema is immutable once set; create a new object for a new schema"),
    validation = kube::core::Rule::new("!has(oldSelf.quickSetup) || has(self.quickSetup)").message("quickSetup is immutable once set; create a new object for a new collection"),
    validation = kube::core::Rule::new("!has(self.loadState) || !has(self.apiVersion) || self.apiVersion != 'v1'").message("loadState needs apiVersion v2 (REST v1 has no load or release)")
)]
#[serde(rename_all = "camelCase")]
pub struct ZillizCollectionSpec {
    /// Name of the collection. Immutable.
    #[schemars(length(min = 1, max = 255))]
    #[x_kube(validation = kube::core::Rule::new("self == oldSelf").message("collectionName is immutable"))]
    pub collection_name: String,
    /// Database of the collection (default `default`). Immutable.
    #[serde(default = "default_db")]
    #[schemars(length(min = 1, max = 255))]
    #[x_kube(validation = kube::core::Rule::new("self == oldSelf").message("dbName is immutable"))]
    pub db_name: String,
    /// The ZillizCluster (same namespace) the collection lives in; its endpoint and API key are
    /// used. Exactly one of clusterRef and connection. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = kube::core::Rule::new("self == oldSelf").message("clusterRef is immutable"))]
    pub cluster_ref: Option<LocalRef>,
    /// A direct connection to any Milvus. Exactly one of clusterRef and connection. The endpoint
    /// is immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = kube::core::Rule::new("self.endpoint == oldSelf.endpoint").message("connection.endpoint is immutable"))]
    pub connection: Option<ConnectionSpec>,
    /// Data plane REST version: `v2` (default) or `v1` (collections only).
    #[serde(default)]
    pub api_version: ApiVersion,
    /// What the collection is for, for people (sent when it is created).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub description: Option<String>,
    /// A custom schema (v2 only): with it, or with `quickSetup`, the operator creates the
    /// collection when it does not exist. Immutable once set: for another schema, apply a new
    /// object under another collection name. A server that shows another schema is reported as
    /// `SpecMismatch`, never dropped and recreated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = kube::core::Rule::new("self == oldSelf").message("schema is immutable; create a new object for a new schema"))]
    pub schema: Option<CollectionSchema>,
    /// The server's quick setup (v1 and v2): an id and a vector field, an index on it, loaded.
    /// Immutable once set: for another dimension, apply a new object under another collection
    /// name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = kube::core::Rule::new("self == oldSelf").message("quickSetup is immutable; create a new object for a new collection"))]
    pub quick_setup: Option<QuickSetup>,
    /// Collection parameters sent when it is created (v2). `ttlSeconds` is kept in step
    /// afterwards; `shardsNum` cannot change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<CollectionParams>,
    /// `Loaded` or `Released` (v2): the operator loads or releases the collection to match.
    /// Unset: left as it is. A collection whose vector fields have no index yet cannot load; it
    /// reports `IndexMissing` until its ZillizIndex objects have created them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_state: Option<LoadStateSpec>,
    /// `Delete` (default) drops the collection when this object is deleted; `Orphan` keeps it.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    /// What the operator may do: `["*"]` (default) or a list of `Observe`, `Create`, `Update`,
    /// `Delete`. `["Observe"]` is read-only; `["Observe", "Delete"]` only drops on delete. A drop
    /// happens only when both this and `deletionPolicy` allow it.
    #[serde(default = "all_policies")]
    #[schemars(length(min = 1, max = 5))]
    #[x_kube(validation = kube::core::Rule::new("!('*' in self) || size(self) == 1").message("'*' stands alone: write [\"*\"] or list the actions"))]
    pub management_policies: Vec<ManagementPolicy>,
}

/// An index's build parameters: bounded, so that the CEL rule reading them stays within a real
/// API server's cost budget.
fn index_params_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "maxProperties": 32,
        "additionalProperties": {"type": "string", "maxLength": 256}
    })
}

/// A field's type, as the server spells it (case-sensitive).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum DataType {
    Bool,
    Int8,
    Int16,
    Int32,
    Int64,
    Float,
    Double,
    VarChar,
    #[serde(rename = "JSON")]
    Json,
    FloatVector,
    BinaryVector,
    Float16Vector,
    BFloat16Vector,
    SparseFloatVector,
}

impl DataType {
    pub fn as_str(self) -> &'static str {
        match self {
            DataType::Bool => "Bool",
            DataType::Int8 => "Int8",
            DataType::Int16 => "Int16",
            DataType::Int32 => "Int32",
            DataType::Int64 => "Int64",
            DataType::Float => "Float",
            DataType::Double => "Double",
            DataType::VarChar => "VarChar",
            DataType::Json => "JSON",
            DataType::FloatVector => "FloatVector",
            DataType::BinaryVector => "BinaryVector",
            DataType::Float16Vector => "Float16Vector",
            DataType::BFloat16Vector => "BFloat16Vector",
            DataType::SparseFloatVector => "SparseFloatVector",
        }
    }

    /// A dense vector, which needs a `dim`.
    pub fn is_dense_vector(self) -> bool {
        matches!(
            self,
            DataType::FloatVector
                | DataType::BinaryVector
                | DataType::Float16Vector
                | DataType::BFloat16Vector
        )
    }
}

/// One field of a custom schema.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = kube::core::Rule::new("!(self.dataType in ['FloatVector', 'BinaryVector', 'Float16Vector', 'BFloat16Vector']) || has(self.dim)").message("a dense vector field needs dim"),
    validation = kube::core::Rule::new("self.dataType != 'VarChar' || has(self.maxLength)").message("a VarChar field needs maxLength")
)]
pub struct FieldSpec {
    #[schemars(length(min = 1, max = 255))]
    pub name: String,
    pub data_type: DataType,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub is_primary: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub is_partition_key: bool,
    /// VarChar: the longest value, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub max_length: Option<i64>,
    /// Dense vectors: the dimension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 32768))]
    pub dim: Option<i64>,
}

/// A custom schema (v2).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = kube::core::Rule::new("self.fields.filter(f, has(f.isPrimary) && f.isPrimary).size() == 1").message("exactly one field must be isPrimary"))]
pub struct CollectionSchema {
    #[serde(default)]
    pub auto_id: bool,
    #[serde(default)]
    pub enable_dynamic_field: bool,
    #[schemars(length(min = 1, max = 64))]
    pub fields: Vec<FieldSpec>,
}

/// The server's quick setup: a primary key and one vector field, indexed and loaded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct QuickSetup {
    #[schemars(range(min = 1, max = 32768))]
    pub dimension: i64,
    /// `COSINE` (v2's default), `L2` (v1's default), `IP`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    pub metric_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 255))]
    pub primary_field_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 255))]
    pub vector_field_name: Option<String>,
    /// `Int64` (default) or `VarChar` (v2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_type: Option<IdType>,
    /// v2: whether the server assigns ids (v1 always does).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_id: Option<bool>,
}

/// The primary key's type in a quick setup.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum IdType {
    Int64,
    VarChar,
}

/// How reads see writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ConsistencyLevel {
    Strong,
    Session,
    Bounded,
    Eventually,
}

/// The load state a collection's spec asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum LoadStateSpec {
    Loaded,
    Released,
}

/// Parameters sent when a collection is created (v2).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct CollectionParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consistency_level: Option<ConsistencyLevel>,
    /// Immutable: a collection's shard count cannot change; to change it, create a new object
    /// (and collection).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 64))]
    #[x_kube(validation = kube::core::Rule::new("self == oldSelf").message("shardsNum is immutable; create a new object for another shard count"))]
    pub shards_num: Option<i64>,
    /// Seconds after which entities expire (0: never); altered in place
    /// (`collection.ttl.seconds`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub ttl_seconds: Option<i64>,
}

/// Where a partition's or index's collection is, when it is not given by `collectionRef`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct CollectionAddress {
    /// A ZillizCollection in the same namespace. Either this, or collectionName with exactly one
    /// of clusterRef and connection. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = kube::core::Rule::new("self == oldSelf").message("collectionRef is immutable"))]
    pub collection_ref: Option<LocalRef>,
    /// Name of the collection, when given directly. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 255))]
    #[x_kube(validation = kube::core::Rule::new("self == oldSelf").message("collectionName is immutable"))]
    pub collection_name: Option<String>,
    /// Database of the collection, when given directly (default `default`). Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 255))]
    #[x_kube(validation = kube::core::Rule::new("self == oldSelf").message("dbName is immutable"))]
    pub db_name: Option<String>,
    /// The ZillizCluster the collection lives in, when given directly. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = kube::core::Rule::new("self == oldSelf").message("clusterRef is immutable"))]
    pub cluster_ref: Option<LocalRef>,
    /// A direct connection, when given directly. The endpoint is immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = kube::core::Rule::new("self.endpoint == oldSelf.endpoint").message("connection.endpoint is immutable"))]
    pub connection: Option<ConnectionSpec>,
}

/// A partition of a collection (data plane v2).
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "zilliz.io",
    version = "v1alpha1",
    kind = "ZillizPartition",
    doc = "A partition of a Milvus collection, released and dropped when this object is deleted (unless deletionPolicy is Orphan)",
    namespaced,
    status = "ZillizStatus",
    shortname = "zpart",
    category = "zilliz",
    printcolumn(
        name = "Partition",
        type_ = "string",
        json_path = ".spec.partitionName"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Synced",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Synced\")].status"
    ),
    printcolumn(
        name = "Reason",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Synced\")].reason"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(
    validation = kube::core::Rule::new("has(self.collectionRef) ? !has(self.collectionName) && !has(self.clusterRef) && !has(self.connection) : has(self.collectionName) && (has(self.clusterRef) != has(self.connection))").message("set collectionRef, or collectionName with exactly one of clusterRef and connection"),
    validation = kube::core::Rule::new("has(self.collectionRef) == has(oldSelf.collectionRef) && has(self.collectionName) == has(oldSelf.collectionName) && has(self.dbName) == has(oldSelf.dbName) && has(self.clusterRef) == has(oldSelf.clusterRef) && has(self.connection) == has(oldSelf.connection)").message("the collection's address cannot be added or removed")
)]
#[serde(rename_all = "camelCase")]
pub struct ZillizPartitionSpec {
    /// Name of the partition. Immutable.
    #[schemars(length(min = 1, max = 255))]
    #[x_kube(validation = kube::core::Rule::new("self == oldSelf").message("partitionName is immutable"))]
    pub partition_name: String,
    /// Where the collection is.
    #[serde(flatten)]
    pub collection: CollectionAddress,
    /// `Delete` (default) releases and drops the partition when this object is deleted;
    /// `Orphan` keeps it.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    /// What the operator may do: `["*"]` (default) or a list of `Observe`, `Create`, `Update`,
    /// `Delete`. `["Observe"]` is read-only; `["Observe", "Delete"]` only drops on delete. A drop
    /// happens only when both this and `deletionPolicy` allow it.
    #[serde(default = "all_policies")]
    #[schemars(length(min = 1, max = 5))]
    #[x_kube(validation = kube::core::Rule::new("!('*' in self) || size(self) == 1").message("'*' stands alone: write [\"*\"] or list the actions"))]
    pub management_policies: Vec<ManagementPolicy>,
}

/// An index of a collection (data plane v2).
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "zilliz.io",
    version = "v1alpha1",
    kind = "ZillizIndex",
    doc = "An index of a Milvus collection, dropped when this object is deleted (unless deletionPolicy is Orphan)",
    namespaced,
    status = "ZillizStatus",
    shortname = "zidx",
    category = "zilliz",
    printcolumn(name = "Index", type_ = "string", json_path = ".spec.indexName"),
    printcolumn(
        name = "Type",
        type_ = "string",
        json_path = ".status.observed.indexType"
    ),
    printcolumn(
        name = "State",
        type_ = "string",
        json_path = ".status.observed.indexState"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Synced",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Synced\")].status"
    ),
    printcolumn(
        name = "Reason",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Synced\")].reason"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(
    validation = kube::core::Rule::new("has(self.collectionRef) ? !has(self.collectionName) && !has(self.clusterRef) && !has(self.connection) : has(self.collectionName) && (has(self.clusterRef) != has(self.connection))").message("set collectionRef, or collectionName with exactly one of clusterRef and connection"),
    validation = kube::core::Rule::new("has(self.collectionRef) == has(oldSelf.collectionRef) && has(self.collectionName) == has(oldSelf.collectionName) && has(self.dbName) == has(oldSelf.dbName) && has(self.clusterRef) == has(oldSelf.clusterRef) && has(self.connection) == has(oldSelf.connection)").message("the collection's address cannot be added or removed")
)]
#[serde(rename_all = "camelCase")]
pub struct ZillizIndexSpec {
    /// Name of the index. Immutable.
    #[schemars(length(min = 1, max = 255))]
    #[x_kube(validation = kube::core::Rule::new("self == oldSelf").message("indexName is immutable"))]
    pub index_name: String,
    /// Where the collection is.
    #[serde(flatten)]
    pub collection: CollectionAddress,
    /// An index cannot be dropped while its collection is loaded. By default the operator does
    /// not release a serving collection on its own: it reports `DropBlocked` and retries. Set
    /// this to let it release the collection first.
    #[serde(default)]
    pub release_collection_before_drop: bool,
    /// The field the index is on: with it the operator creates the index when it does not
    /// exist. Immutable once set: an index is never rebuilt in place; for another index, apply
    /// a new object (and delete this one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 255))]
    #[x_kube(validation = kube::core::Rule::new("self == oldSelf").message("fieldName is immutable; create a new object for another index"))]
    pub field_name: Option<String>,
    /// `AUTOINDEX` (default), `HNSW`, `IVF_FLAT`, ... as the server accepts. Immutable: for
    /// another type, apply a new object (and delete this one). A server that shows another type
    /// is reported as `SpecMismatch`, never rebuilt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    #[x_kube(validation = kube::core::Rule::new("self == oldSelf").message("indexType is immutable"))]
    pub index_type: Option<String>,
    /// `COSINE`, `L2`, `IP`, ... Immutable: for another metric, apply a new object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    #[x_kube(validation = kube::core::Rule::new("self == oldSelf").message("metricType is immutable"))]
    pub metric_type: Option<String>,
    /// Build parameters (e.g. `M: "16"`, `efConstruction: "200"`). Immutable: for other
    /// parameters, apply a new object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "index_params_schema")]
    #[x_kube(validation = kube::core::Rule::new("self == oldSelf").message("params are immutable"))]
    pub params: Option<std::collections::BTreeMap<String, String>>,
    /// `Delete` (default) drops the index when this object is deleted; `Orphan` keeps it.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    /// What the operator may do: `["*"]` (default) or a list of `Observe`, `Create`, `Update`,
    /// `Delete`. `["Observe"]` is read-only; `["Observe", "Delete"]` only drops on delete. A drop
    /// happens only when both this and `deletionPolicy` allow it.
    #[serde(default = "all_policies")]
    #[schemars(length(min = 1, max = 5))]
    #[x_kube(validation = kube::core::Rule::new("!('*' in self) || size(self) == 1").message("'*' stands alone: write [\"*\"] or list the actions"))]
    pub management_policies: Vec<ManagementPolicy>,
}

/// A condition, following the Kubernetes convention (readable by kstatus, Argo CD and Flux).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// `Ready` (the external resource exists and is usable) or `Synced` (the last reconcile
    /// succeeded).
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// Machine-readable reason, CamelCase.
    pub reason: String,
    /// What happened, for people.
    #[serde(default)]
    pub message: String,
    /// When `status` last changed (RFC 3339).
    pub last_transition_time: String,
    /// The `metadata.generation` this condition was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// Progress of a drop.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeletionStatus {
    /// Drop attempts made so far.
    #[serde(default)]
    pub attempts: u32,
    /// When the last attempt was made (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempt_time: Option<String>,
    /// The last error, if the last attempt failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// When the next attempt is due (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_retry_time: Option<String>,
    /// When the API accepted an asynchronous drop (clusters): from then on the operator only
    /// polls until the resource is gone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drop_accepted_time: Option<String>,
}

/// Observed state, shared by the four kinds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ZillizStatus {
    /// `Ready` and `Synced`.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// The `metadata.generation` last reconciled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Clusters: the data plane endpoint from the control plane's describe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Clusters: the control plane's status (RUNNING, DELETING, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_status: Option<String>,
    /// Clusters: the id of the cluster this object manages (`spec.clusterId`, or the one it
    /// created or found by name; also kept in the annotation `zilliz.io/cluster-id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_id: Option<String>,
    /// Clusters: compute units, as the last describe said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cu_size: Option<u32>,
    /// Clusters: replicas, as the last describe said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica: Option<u32>,
    /// Progress of the drop, once the object is being deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion: Option<DeletionStatus>,
    /// `Created` when this object created its resource, `Adopted` when it found it there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<Origin>,
    /// Collections, partitions and indexes reached through another object: where the resource
    /// was last found, so that it can still be dropped if that object is removed by hand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved: Option<ResolvedStatus>,
    /// What the last observation found on the server (collections and indexes): what is really
    /// there, whatever the spec says. Never written back into the spec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed: Option<ObservedState>,
}

/// What a describe of the resource showed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObservedState {
    /// Collections: `Loaded`, `Loading`, `NotLoaded`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_state: Option<String>,
    /// Collections: the fields, as `name: Type(params)`, e.g. `vector: FloatVector(dim=768)`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
    /// Collections: the shard count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shards_num: Option<i64>,
    /// Collections: `collection.ttl.seconds` (0: no expiry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_seconds: Option<i64>,
    /// Collections: the consistency level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consistency_level: Option<String>,
    /// Indexes: the field indexed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field_name: Option<String>,
    /// Indexes: the index type (`HNSW`, `AUTOINDEX`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index_type: Option<String>,
    /// Indexes: the metric type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric_type: Option<String>,
    /// Indexes: `Finished`, `InProgress`, `Failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index_state: Option<String>,
    /// Indexes: rows indexed so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub indexed_rows: Option<i64>,
    /// Indexes: rows to index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_rows: Option<i64>,
}

/// How an object came to manage its resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Origin {
    Created,
    Adopted,
}

/// Where a collection, partition or index reached through another object was last found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResolvedStatus {
    /// The data-plane endpoint, when it was known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// The database of the collection.
    pub db_name: String,
    /// The collection (itself, or the one the partition or index is in).
    pub collection_name: String,
    /// The Secret key the token was read from (in this object's namespace).
    pub credentials_secret_ref: SecretKeyRef,
    /// The Zilliz Cloud cluster the collection is in, when it is reached through a
    /// ZillizCluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ResolvedCluster>,
}

/// A Zilliz Cloud cluster, as a child recorded it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResolvedCluster {
    /// The cluster's id.
    pub cluster_id: String,
    /// The control plane's base URL.
    pub control_plane_url: String,
    /// The control plane's API version.
    #[serde(default)]
    pub api_version: ApiVersion,
}

impl ZillizStatus {
    pub fn condition(&self, type_: &str) -> Option<&Condition> {
        self.conditions.iter().find(|c| c.type_ == type_)
    }
}

/// All four CRDs, as the multi-document YAML that `zilliz-operator crd` prints.
pub fn all_crds_yaml() -> Result<String, serde_yaml::Error> {
    let crds = [
        ZillizCluster::crd(),
        ZillizCollection::crd(),
        ZillizPartition::crd(),
        ZillizIndex::crd(),
    ];
    let mut out = String::new();
    for crd in crds {
        out.push_str("---\n");
        out.push_str(&serde_yaml::to_string(&crd)?);
    }
    Ok(out)
}
