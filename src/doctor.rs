//! `zilliz-operator doctor`: why an object is stuck, and the safe way out.
//!
//! Two halves. [`analyze`] is pure: from the listed objects, the installation checks and the
//! time it builds a [`Report`] — for each object whether it is stuck (deleted and still holding
//! our finalizer, or not `Ready` for longer than a threshold), the reason its conditions give,
//! the safe way out as exact `kubectl` commands ([`Advice`]), and what stripping the finalizer
//! by hand would leave behind. [`gather`] is the I/O: it lists the objects, checks the CRDs, the
//! leader Lease and the operator's RBAC, and (only when asked) observes each resource read-only
//! with the object's own credentials. A check that cannot run is reported `unknown` with why; it
//! never fails the doctor.
//!
//! The reasons are the operator's (`crd::Reason`); what each means is in docs/operations.md
//! ("Troubleshooting a stuck finalizer"), and how the operator reads the Zilliz / Milvus answers
//! behind them is in docs/zilliz-api.md.

use crate::{
    api::{ErrorClass, HttpClient},
    crd::{
        DeletionPolicy, FINALIZER, Reason, ZillizCluster, ZillizCollection, ZillizIndex,
        ZillizPartition, ZillizStatus,
    },
    external,
    kinds::{Call, Exchange, Facts, MAX_CALLS, Managed, Observed, Script, Step as Next},
    resolve::{Purpose, Sources, resolve},
    secrets::Tokens,
};
use k8s_openapi::{
    api::{
        authorization::v1::{ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec},
        coordination::v1::Lease,
    },
    apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
};
use kube::{Api, Client, CustomResourceExt, api::ListParams};
use serde::Serialize;
use std::{collections::BTreeMap, fmt::Write as _, time::Duration};

/// The four kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Kind {
    ZillizCluster,
    ZillizCollection,
    ZillizPartition,
    ZillizIndex,
}

impl Kind {
    pub const ALL: [Kind; 4] = [
        Kind::ZillizCluster,
        Kind::ZillizCollection,
        Kind::ZillizPartition,
        Kind::ZillizIndex,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::ZillizCluster => "ZillizCluster",
            Kind::ZillizCollection => "ZillizCollection",
            Kind::ZillizPartition => "ZillizPartition",
            Kind::ZillizIndex => "ZillizIndex",
        }
    }

    /// The resource name kubectl takes (`kubectl get zillizcollection ...`).
    pub fn resource(self) -> &'static str {
        match self {
            Kind::ZillizCluster => "zillizcluster",
            Kind::ZillizCollection => "zillizcollection",
            Kind::ZillizPartition => "zillizpartition",
            Kind::ZillizIndex => "zillizindex",
        }
    }

    pub fn plural(self) -> &'static str {
        match self {
            Kind::ZillizCluster => "zillizclusters",
            Kind::ZillizCollection => "zillizcollections",
            Kind::ZillizPartition => "zillizpartitions",
            Kind::ZillizIndex => "zillizindexes",
        }
    }

    fn crd(self) -> CustomResourceDefinition {
        match self {
            Kind::ZillizCluster => ZillizCluster::crd(),
            Kind::ZillizCollection => ZillizCollection::crd(),
            Kind::ZillizPartition => ZillizPartition::crd(),
            Kind::ZillizIndex => ZillizIndex::crd(),
        }
    }
}

/// One listed object of ours.
#[derive(Clone, Debug)]
pub enum Object {
    Cluster(ZillizCluster),
    Collection(ZillizCollection),
    Partition(ZillizPartition),
    Index(ZillizIndex),
}

macro_rules! each {
    ($obj:expr, $o:ident => $e:expr) => {
        match $obj {
            Object::Cluster($o) => $e,
            Object::Collection($o) => $e,
            Object::Partition($o) => $e,
            Object::Index($o) => $e,
        }
    };
}

impl Object {
    pub fn kind(&self) -> Kind {
        match self {
            Object::Cluster(_) => Kind::ZillizCluster,
            Object::Collection(_) => Kind::ZillizCollection,
            Object::Partition(_) => Kind::ZillizPartition,
            Object::Index(_) => Kind::ZillizIndex,
        }
    }

    fn meta(&self) -> &ObjectMeta {
        each!(self, o => &o.metadata)
    }

    pub fn namespace(&self) -> String {
        self.meta().namespace.clone().unwrap_or_default()
    }

    pub fn name(&self) -> String {
        self.meta().name.clone().unwrap_or_default()
    }

    fn status(&self) -> Option<&ZillizStatus> {
        each!(self, o => o.zstatus())
    }

    fn policy(&self) -> DeletionPolicy {
        each!(self, o => o.deletion_policy())
    }

    fn protected(&self) -> bool {
        each!(self, o => o.protected())
    }

    fn external_name(&self) -> String {
        each!(self, o => o.external_name().to_string())
    }

    fn cluster_ref(&self) -> Option<&str> {
        each!(self, o => o.refs().cluster)
    }

    fn collection_ref(&self) -> Option<&str> {
        each!(self, o => o.refs().collection)
    }

    fn holds_finalizer(&self) -> bool {
        self.meta()
            .finalizers
            .as_ref()
            .is_some_and(|f| f.iter().any(|f| f == FINALIZER))
    }

    fn key(&self) -> (Kind, String, String) {
        (self.kind(), self.namespace(), self.name())
    }
}

/// How bad it is, worst first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Severity {
    /// Deleted and held by our finalizer with no way forward on its own, or for longer than the
    /// threshold; or not Ready for longer than the threshold.
    Stuck,
    /// Deleted or not Ready, but moving (or not for long yet).
    Pending,
    Healthy,
}

/// A way out, by kind; the commands of a [`Step`] carry the names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Advice {
    /// Remove `zilliz.io/deletion-protection`: the operator then drops the resource.
    RemoveProtection,
    /// Set `deletionPolicy: Orphan`: the resource is kept on purpose and the object goes.
    KeepResource,
    /// Delete the objects that live in this one's resource first.
    DeleteDependents,
    /// Or keep the dependents' resources: set `Orphan` on them, then delete them.
    OrphanDependents,
    /// Put the token under the key the object names.
    FixCredentials,
    /// Let the operator release the loaded collection before it drops the index.
    ReleaseCollection,
    /// Recreate the referenced object, which says where the resource is.
    RecreateReference,
    /// Zilliz / Milvus refuses the drop: fix the cause there (see `lastError`).
    FixExternal,
    /// Nothing to do: the operator goes on by itself.
    Wait,
    /// Another, older object manages the same resource.
    RemoveDuplicate,
    /// The spec names no valid resource, or one that differs from it in what cannot change.
    FixSpec,
    /// A collection to be loaded has no index on its vector fields.
    CreateIndex,
    /// A parent object (cluster, collection, database) is not ready.
    FixParent,
    /// The API could not be reached.
    CheckNetwork,
    /// The operator has not acted on the object: is it running, and does it watch this
    /// namespace?
    CheckOperator,
}

/// One way out: what it does and the exact commands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Step {
    pub advice: Advice,
    pub summary: String,
    pub commands: Vec<String>,
}

/// The external state seen by `--probe`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ProbeState {
    Exists,
    /// Exists but not usable (a cluster that is not RUNNING).
    NotUsable,
    Absent,
    /// The API answered an error (the detail says which).
    Error,
    /// The resource could not be addressed (Secret, reference, spec).
    Unresolved,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Probe {
    pub state: ProbeState,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_status: Option<String>,
    /// Collections: the load state a describe shows (`NotLoaded`, `Loading`, `Loaded`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load_state: Option<String>,
    /// Indexes: the build state (`Finished`, `InProgress`, `Failed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index_state: Option<String>,
}

/// What the doctor found about one object.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    pub kind: Kind,
    pub namespace: String,
    pub name: String,
    pub severity: Severity,
    /// `metadata.deletionTimestamp` is set.
    pub deleting: bool,
    /// It still carries `zilliz.io/finalizer`.
    pub holds_finalizer: bool,
    pub deletion_policy: DeletionPolicy,
    pub protected: bool,
    /// The reason that explains the state: `Synced`'s while deleting, else the failing
    /// condition's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Since when (the deletion, or the `Ready` condition's last transition).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub for_seconds: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_retry: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drop_accepted: Option<String>,
    /// Objects living in this one's resource (`Kind/name`), when it has any.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dependents: Vec<String>,
    /// The safe ways out, the preferred first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<Step>,
    /// What removing the finalizer by hand would leave behind (deleted objects only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub if_finalizer_stripped: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probe: Option<Probe>,
}

/// The result of one installation check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum CheckStatus {
    Fail,
    Warn,
    Unknown,
    Ok,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Check {
    pub check: String,
    pub status: CheckStatus,
    pub detail: String,
}

impl Check {
    fn new(check: impl Into<String>, status: CheckStatus, detail: impl Into<String>) -> Check {
        Check {
            check: check.into(),
            status,
            detail: detail.into(),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub objects: usize,
    pub stuck: usize,
    pub pending: usize,
    pub healthy: usize,
    pub install_problems: usize,
}

/// Everything the doctor found; serialized as the stable JSON of `-o json`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub version: &'static str,
    pub now: String,
    pub summary: Summary,
    pub install: Vec<Check>,
    /// Worst first.
    pub objects: Vec<Finding>,
}

impl Report {
    /// 0 nothing stuck and the installation fine; 1 something stuck or an installation check
    /// failed. (2, the doctor could not run, is decided by the caller.)
    pub fn exit_code(&self) -> u8 {
        if self.summary.stuck > 0 || self.install.iter().any(|c| c.status == CheckStatus::Fail) {
            1
        } else {
            0
        }
    }
}

/// What the analysis needs besides the objects.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Not Ready (or deleted and waiting) for longer than this is stuck.
    pub stuck_after: Duration,
    /// Only these names (all when empty).
    pub names: Vec<String>,
    /// Where the operator runs (for [`Advice::CheckOperator`]).
    pub operator_namespace: String,
}

fn quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:/=".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

fn patch_cmd(ns: &str, kind: Kind, name: &str, patch: &str) -> String {
    format!(
        "kubectl -n {} patch {} {} --type merge -p '{patch}'",
        quote(ns),
        kind.resource(),
        quote(name)
    )
}

fn orphan_cmd(ns: &str, kind: Kind, name: &str) -> String {
    patch_cmd(ns, kind, name, r#"{"spec":{"deletionPolicy":"Orphan"}}"#)
}

fn parse_time(raw: &str) -> Option<jiff::Timestamp> {
    raw.parse().ok()
}

/// The Secret key the object reads its token from: its own, else the one it recorded, else its
/// cluster's or collection's (from the listed objects).
fn credentials_of(obj: &Object, all: &[Object]) -> Option<(String, String)> {
    let find = |kind: Kind, name: &str| {
        all.iter()
            .find(|o| o.kind() == kind && o.namespace() == obj.namespace() && o.name() == name)
    };
    let own = match obj {
        Object::Cluster(c) => Some(&c.spec.credentials_secret_ref),
        Object::Collection(c) => c
            .spec
            .connection
            .as_ref()
            .map(|c| &c.credentials_secret_ref),
        Object::Partition(p) => p
            .spec
            .collection
            .connection
            .as_ref()
            .map(|c| &c.credentials_secret_ref),
        Object::Index(i) => i
            .spec
            .collection
            .connection
            .as_ref()
            .map(|c| &c.credentials_secret_ref),
    };
    if let Some(r) = own {
        return Some((r.name.clone(), r.key.clone()));
    }
    if let Some(r) = obj.status().and_then(|s| s.resolved.as_ref()) {
        return Some((
            r.credentials_secret_ref.name.clone(),
            r.credentials_secret_ref.key.clone(),
        ));
    }
    if let Some(cluster) = obj.cluster_ref() {
        return find(Kind::ZillizCluster, cluster).and_then(|c| credentials_of(c, all));
    }
    obj.collection_ref()
        .and_then(|coll| find(Kind::ZillizCollection, coll))
        .and_then(|c| credentials_of(c, all))
}

/// Objects of ours that live in `obj`'s resource (the same rule as the operator's caches):
/// `Kind/name`, sorted.
pub fn dependents_of(obj: &Object, all: &[Object]) -> Vec<String> {
    let ns = obj.namespace();
    let name = obj.name();
    let same_ns = |o: &&Object| o.namespace() == ns;
    let mut out: Vec<String> = match obj.kind() {
        Kind::ZillizCluster => {
            let collections: Vec<String> = all
                .iter()
                .filter(same_ns)
                .filter(|o| o.kind() == Kind::ZillizCollection && o.cluster_ref() == Some(&name))
                .map(Object::name)
                .collect();
            all.iter()
                .filter(same_ns)
                .filter(|o| {
                    (o.kind() == Kind::ZillizCollection && o.cluster_ref() == Some(&name))
                        || (matches!(o.kind(), Kind::ZillizPartition | Kind::ZillizIndex)
                            && (o.cluster_ref() == Some(&name)
                                || o.collection_ref()
                                    .is_some_and(|c| collections.iter().any(|n| n == c))))
                })
                .map(|o| format!("{}/{}", o.kind().as_str(), o.name()))
                .collect()
        }
        Kind::ZillizCollection => all
            .iter()
            .filter(same_ns)
            .filter(|o| {
                matches!(o.kind(), Kind::ZillizPartition | Kind::ZillizIndex)
                    && o.collection_ref() == Some(&name)
            })
            .map(|o| format!("{}/{}", o.kind().as_str(), o.name()))
            .collect(),
        Kind::ZillizPartition | Kind::ZillizIndex => Vec::new(),
    };
    out.sort();
    out
}

/// Where the resource is, for people: `collection default.books in cluster in01-x`.
fn whereabouts(obj: &Object, all: &[Object]) -> String {
    let ns = obj.namespace();
    let cluster_id = |name: &str| {
        all.iter()
            .find(|o| o.kind() == Kind::ZillizCluster && o.namespace() == ns && o.name() == name)
            .map(Object::external_name)
    };
    let resolved = obj.status().and_then(|s| s.resolved.as_ref());
    let place = |endpoint: Option<String>, cluster: Option<String>| match (cluster, endpoint) {
        (Some(c), _) => format!(" in Zilliz Cloud cluster {c}"),
        (None, Some(e)) => format!(" at {e}"),
        (None, None) => String::new(),
    };
    let recorded_place = || {
        resolved.map(|r| {
            place(
                r.endpoint.clone(),
                r.cluster.as_ref().map(|c| c.cluster_id.clone()),
            )
        })
    };
    match obj {
        Object::Cluster(_) => match obj.external_name() {
            id if id.is_empty() => {
                "the Zilliz Cloud cluster of this object (id not known yet)".into()
            }
            id => format!("the Zilliz Cloud cluster {id}"),
        },
        Object::Collection(c) => {
            let at = recorded_place().unwrap_or_else(|| {
                place(
                    c.spec.connection.as_ref().map(|c| c.endpoint.clone()),
                    c.spec
                        .cluster_ref
                        .as_ref()
                        .and_then(|r| cluster_id(&r.name)),
                )
            });
            format!(
                "the collection {}.{}{at}",
                c.spec.db_name, c.spec.collection_name
            )
        }
        Object::Partition(_) | Object::Index(_) => {
            let (label, leaf) = match obj {
                Object::Partition(p) => ("partition", p.spec.partition_name.clone()),
                Object::Index(i) => ("index", i.spec.index_name.clone()),
                _ => ("", String::new()),
            };
            let coll = resolved
                .map(|r| format!("{}.{}", r.db_name, r.collection_name))
                .or_else(|| {
                    let addr = each!(obj, o => o.address().ok());
                    match addr {
                        Some(crate::kinds::Address::Partition { collection, .. })
                        | Some(crate::kinds::Address::Index { collection, .. }) => match collection
                        {
                            crate::kinds::CollectionSource::Direct(loc) => {
                                Some(format!("{}.{}", loc.db, loc.collection))
                            }
                            crate::kinds::CollectionSource::Object(name) => all
                                .iter()
                                .find(|o| {
                                    o.kind() == Kind::ZillizCollection
                                        && o.namespace() == ns
                                        && o.name() == name
                                })
                                .map(|o| match o {
                                    Object::Collection(c) => {
                                        format!("{}.{}", c.spec.db_name, c.spec.collection_name)
                                    }
                                    _ => name.clone(),
                                }),
                        },
                        _ => None,
                    }
                })
                .unwrap_or_else(|| "its collection".into());
            format!(
                "the {label} {leaf} of {coll}{}",
                recorded_place().unwrap_or_default()
            )
        }
    }
}

/// What removing the finalizer by hand would leave behind.
fn leak(obj: &Object, all: &[Object], dependents: &[String]) -> String {
    let what = whereabouts(obj, all);
    let cost = match obj.kind() {
        Kind::ZillizCluster => "stays, keeps running and is billed, with all its data",
        Kind::ZillizCollection => {
            "stays and keeps its data (storage, and memory while loaded, are billed on Zilliz Cloud)"
        }
        Kind::ZillizPartition => "stays with its data",
        Kind::ZillizIndex => "stays, and keeps using memory while its collection is loaded",
    };
    let mut out = if obj.policy() == DeletionPolicy::Orphan {
        format!("{what} is kept either way (deletionPolicy Orphan)")
    } else {
        format!(
            "{what} {cost}; nothing would drop it later, and no Event or status would record it"
        )
    };
    if !dependents.is_empty() {
        let _ = write!(
            out,
            "; the drops of {} would lose the {} they go through",
            dependents.join(", "),
            obj.kind().resource().trim_start_matches("zilliz")
        );
    }
    out
}

/// The safe ways out for `obj`, whose explaining reason is `reason`.
fn steps_for(
    obj: &Object,
    reason: Option<Reason>,
    message: &str,
    deleting: bool,
    dependents: &[String],
    all: &[Object],
    settings: &Settings,
) -> Vec<Step> {
    let ns = obj.namespace();
    let name = obj.name();
    let kind = obj.kind();
    let res = kind.resource();
    let step = |advice, summary: String, commands: Vec<String>| Step {
        advice,
        summary,
        commands,
    };
    let keep = || {
        step(
            Advice::KeepResource,
            format!(
                "keep {} on purpose: the operator lets the object go without any API call",
                whereabouts(obj, all)
            ),
            vec![orphan_cmd(&ns, kind, &name)],
        )
    };
    let keep_if = |deleting: bool| {
        (deleting && obj.policy() == DeletionPolicy::Delete)
            .then(keep)
            .into_iter()
    };
    let describe = format!("kubectl -n {} describe {res} {}", quote(&ns), quote(&name));
    let credentials = || {
        let (secret, key) = credentials_of(obj, all)
            .unwrap_or_else(|| ("<secret>".to_string(), "apiKey".to_string()));
        vec![
            format!(
                "kubectl -n {} get secret {} -o go-template='{{{{range $k, $v := .data}}}}{{{{$k}}}}{{{{\"\\n\"}}}}{{{{end}}}}'",
                quote(&ns),
                quote(&secret)
            ),
            format!(
                "kubectl -n {} create secret generic {} --from-literal={}=<token> --dry-run=client -o yaml | kubectl apply -f -",
                quote(&ns),
                quote(&secret),
                quote(&key)
            ),
        ]
    };
    let Some(reason) = reason else {
        let opns = quote(&settings.operator_namespace);
        return vec![step(
            Advice::CheckOperator,
            "the operator has not recorded anything about this object yet: check that it runs and watches this namespace".into(),
            vec![
                format!("kubectl -n {opns} get pods"),
                format!("kubectl -n {opns} logs deployment/zilliz-operator --tail=50"),
            ],
        )];
    };
    use Reason::*;
    match reason {
        DeletionProtected => {
            let mut out = vec![step(
                Advice::RemoveProtection,
                format!("drop {} as asked: remove the protection", whereabouts(obj, all)),
                vec![format!(
                    "kubectl -n {} annotate {res} {} zilliz.io/deletion-protection-",
                    quote(&ns),
                    quote(&name)
                )],
            )];
            out.extend(keep_if(true));
            out
        }
        DependentsExist => {
            let listed: Vec<String> = dependents
                .iter()
                .map(|d| {
                    let (k, n) = d.split_once('/').unwrap_or((d, ""));
                    format!("{}/{}", k.to_lowercase(), n)
                })
                .collect();
            let mut out = Vec::new();
            if listed.is_empty() {
                out.push(step(
                    Advice::DeleteDependents,
                    format!("delete the objects the condition names first: {message}"),
                    vec![describe.clone()],
                ));
            } else {
                out.push(step(
                    Advice::DeleteDependents,
                    format!(
                        "delete the objects in this {} first (their resources are dropped, then this one): {}",
                        res.trim_start_matches("zilliz"),
                        dependents.join(", ")
                    ),
                    vec![format!(
                        "kubectl -n {} delete {}",
                        quote(&ns),
                        listed.join(" ")
                    )],
                ));
                let mut commands: Vec<String> = dependents
                    .iter()
                    .filter_map(|d| {
                        let (k, n) = d.split_once('/')?;
                        let kind = Kind::ALL.into_iter().find(|x| x.as_str() == k)?;
                        Some(orphan_cmd(&ns, kind, n))
                    })
                    .collect();
                commands.push(format!(
                    "kubectl -n {} delete {}",
                    quote(&ns),
                    listed.join(" ")
                ));
                out.push(step(
                    Advice::OrphanDependents,
                    "keep their resources instead: set Orphan on them, then delete them (whatever this object's own deletionPolicy, it waits for them)".into(),
                    commands,
                ));
            }
            out
        }
        CredentialsUnavailable | Unauthorized => {
            let summary = if reason == Unauthorized {
                "the API key was rejected: put a valid one in the Secret; the operator retries at once"
            } else {
                "the Secret or its key is missing or empty: list the Secret's keys, then put the token under the key the object names"
            };
            let mut out = vec![step(Advice::FixCredentials, summary.into(), credentials())];
            out.extend(keep_if(deleting));
            out
        }
        DropBlocked => {
            let mut out = vec![step(
                Advice::ReleaseCollection,
                "the collection is loaded (serving searches): let the operator release it before the drop, or release it yourself in Zilliz / Milvus".into(),
                vec![patch_cmd(
                    &ns,
                    Kind::ZillizIndex,
                    &name,
                    r#"{"spec":{"releaseCollectionBeforeDrop":true}}"#,
                )],
            )];
            out.extend(keep_if(deleting));
            out
        }
        ReferenceNotFound => {
            let referenced = obj
                .collection_ref()
                .map(|n| (Kind::ZillizCollection, n))
                .or_else(|| obj.cluster_ref().map(|n| (Kind::ZillizCluster, n)));
            let commands = match referenced {
                Some((k, n)) => vec![
                    format!(
                        "kubectl -n {} apply -f <the manifest of {} {}>",
                        quote(&ns),
                        k.as_str(),
                        n
                    ),
                ],
                None => vec![describe.clone()],
            };
            let mut out = vec![step(
                Advice::RecreateReference,
                "the referenced object is gone and this one recorded no address of its own: recreate it so the drop knows where to go".into(),
                commands,
            )];
            out.extend(keep_if(deleting));
            out
        }
        DropFailed => {
            let mut out = vec![step(
                Advice::FixExternal,
                "Zilliz / Milvus refuses the drop and retrying will not help: fix the cause there (lastError says what it answered); the operator retries slowly".into(),
                vec![describe.clone()],
            )];
            out.extend(keep_if(deleting));
            out
        }
        DropRetrying | DropInProgress | CachesSyncing | KubeApi => vec![step(
            Advice::Wait,
            "the operator goes on by itself (nextRetry says when); nothing to do unless it lasts".into(),
            vec![describe.clone()],
        )],
        Conflict => vec![step(
            Advice::RemoveDuplicate,
            format!(
                "another, older object manages the same resource ({message}); delete this duplicate object: only its finalizer is released, nothing is dropped"
            ),
            vec![format!(
                "kubectl -n {} delete {res} {}",
                quote(&ns),
                quote(&name)
            )],
        )],
        InvalidSpec | NotFound | Unsupported | InvalidRequest => {
            let mut out = vec![step(
                Advice::FixSpec,
                "the spec does not name a usable resource, or the server refuses it: fix the spec (see the message)".into(),
                vec![format!("kubectl -n {} edit {res} {}", quote(&ns), quote(&name))],
            )];
            out.extend(keep_if(deleting));
            out
        }
        SpecMismatch => {
            let mut out = vec![step(
                Advice::FixSpec,
                "the resource differs from the spec in what cannot change in place (or managementPolicies do not allow Update): make the spec match it, or create a new object for a new resource".into(),
                vec![describe.clone(), format!("kubectl -n {} edit {res} {}", quote(&ns), quote(&name))],
            )];
            out.extend(keep_if(deleting));
            out
        }
        IndexMissing => vec![step(
            Advice::CreateIndex,
            "the collection is to be loaded but its vector fields have no index: create a ZillizIndex with fieldName on each, or set spec.loadState: Released".into(),
            vec![format!("kubectl -n {} get zillizindexes", quote(&ns))],
        )],
        IndexBuildFailed => {
            let mut out = vec![step(
                Advice::FixExternal,
                "the server failed to build the index (the message says why): fix the cause, then delete and recreate this object".into(),
                vec![describe.clone()],
            )];
            out.extend(keep_if(deleting));
            out
        }
        CreatePending => vec![step(
            Advice::FixExternal,
            "a cluster create may have happened and the operator cannot tell, so it never sends a second one: look in Zilliz Cloud and do what the message says".into(),
            vec![describe.clone()],
        )],
        Loading | IndexBuilding | UpdateFailed | Creating => vec![step(
            Advice::Wait,
            "the operator goes on by itself (creating, loading, building, or retrying an update); the message says more if it lasts".into(),
            vec![describe.clone()],
        )],
        ParentNotReady | DatabaseNotFound | ClusterNotRunning => vec![step(
            Advice::FixParent,
            "the cluster, collection or database it lives in is not ready: fix that one first; this object follows".into(),
            vec![format!("kubectl -n {} get zillizclusters,zillizcollections", quote(&ns))],
        )],
        Unreachable => {
            let mut out = vec![step(
                Advice::CheckNetwork,
                "the API could not be reached (timeout, 5xx, DNS, TLS): check the endpoint, network policies and CA_BUNDLE; retried with backoff".into(),
                vec![describe.clone()],
            )];
            out.extend(keep_if(deleting));
            out
        }
        Available | ReconcileSuccess | Created | Orphaned | Dropped | AlreadyAbsent
        | KeptShared | NothingToDrop | DropAccepted | CollectionLoaded | Updated => {
            if deleting {
                vec![step(
                    Advice::Wait,
                    "the operator has not recorded the deletion yet: it normally does within seconds".into(),
                    vec![describe.clone()],
                )]
            } else {
                Vec::new()
            }
        }
    }
}

/// The condition that explains a live object's state: `Synced` when false, else `Ready` when
/// false.
fn explaining(status: Option<&ZillizStatus>, deleting: bool) -> Option<&crate::crd::Condition> {
    let status = status?;
    if deleting {
        return status
            .condition("Synced")
            .filter(|c| c.status == "False")
            .or_else(|| status.condition("Synced"));
    }
    ["Synced", "Ready"]
        .into_iter()
        .find_map(|t| status.condition(t).filter(|c| c.status != "True"))
}

/// Reasons that mean the operator acted on a deletion.
fn deletion_reason(r: Reason) -> bool {
    use Reason::*;
    matches!(
        r,
        DropInProgress
            | DropRetrying
            | DropBlocked
            | DropFailed
            | DependentsExist
            | CachesSyncing
            | DeletionProtected
            | CredentialsUnavailable
            | ReferenceNotFound
    )
}

/// Analyzes one object.
pub fn examine(obj: &Object, all: &[Object], now: jiff::Timestamp, settings: &Settings) -> Finding {
    let meta = obj.meta();
    let deleting = meta.deletion_timestamp.is_some();
    let holds = obj.holds_finalizer();
    let status = obj.status();
    let cond = explaining(status, deleting);
    let mut reason = cond.and_then(|c| Reason::parse(&c.reason));
    if deleting && !reason.is_some_and(deletion_reason) {
        // the condition still shows the last observation: the deletion is not handled yet
        reason = None;
    }
    let since = if deleting {
        meta.deletion_timestamp.as_ref().map(|t| t.0)
    } else if status.is_none_or(|s| s.conditions.is_empty()) {
        // never reconciled: as old as the object
        meta.creation_timestamp.as_ref().map(|t| t.0)
    } else {
        cond.and_then(|c| parse_time(&c.last_transition_time))
    };
    let for_seconds = since.map(|t| now.as_second().saturating_sub(t.as_second()).max(0));
    let long = for_seconds.is_some_and(|s| s >= settings.stuck_after.as_secs() as i64);
    let ready = status
        .and_then(|s| s.condition("Ready"))
        .is_some_and(|c| c.status == "True");
    let severity = if deleting {
        if !holds {
            // another finalizer holds it, not ours
            Severity::Pending
        } else if reason.is_some_and(Reason::stalls) || long {
            Severity::Stuck
        } else {
            Severity::Pending
        }
    } else if ready && cond.is_none() {
        Severity::Healthy
    } else if long {
        Severity::Stuck
    } else {
        Severity::Pending
    };
    let deletion = status
        .and_then(|s| s.deletion.as_ref())
        .filter(|_| deleting);
    let dependents = if deleting && reason == Some(Reason::DependentsExist) {
        dependents_of(obj, all)
    } else {
        Vec::new()
    };
    let steps = if severity == Severity::Healthy || (deleting && !holds) {
        Vec::new()
    } else {
        steps_for(
            obj,
            reason,
            cond.map(|c| c.message.as_str()).unwrap_or_default(),
            deleting,
            &dependents,
            all,
            settings,
        )
    };
    Finding {
        kind: obj.kind(),
        namespace: obj.namespace(),
        name: obj.name(),
        severity,
        deleting,
        holds_finalizer: holds,
        deletion_policy: obj.policy(),
        protected: obj.protected(),
        reason: cond
            .map(|c| c.reason.clone())
            .filter(|_| severity != Severity::Healthy),
        message: cond
            .map(|c| c.message.clone())
            .filter(|m| !m.is_empty() && severity != Severity::Healthy),
        since: since.map(|t| t.to_string()),
        for_seconds,
        attempts: deletion.map(|d| d.attempts),
        last_error: deletion.and_then(|d| d.last_error.clone()),
        next_retry: deletion.and_then(|d| d.next_retry_time.clone()),
        drop_accepted: deletion.and_then(|d| d.drop_accepted_time.clone()),
        if_finalizer_stripped: (deleting && holds).then(|| leak(obj, all, &dependents)),
        dependents,
        steps,
        probe: None,
    }
}

/// The pure analysis: every object (of the namespaces listed; `settings.names` filters what is
/// shown, not what dependents are looked up in), the installation checks and the time.
pub fn analyze(
    objects: &[Object],
    install: Vec<Check>,
    probes: &BTreeMap<(Kind, String, String), Probe>,
    now: jiff::Timestamp,
    settings: &Settings,
) -> Report {
    let mut findings: Vec<Finding> = objects
        .iter()
        .filter(|o| settings.names.is_empty() || settings.names.contains(&o.name()))
        .map(|o| {
            let mut f = examine(o, objects, now, settings);
            f.probe = probes.get(&o.key()).cloned();
            f
        })
        .collect();
    findings.sort_by(|a, b| {
        (a.severity, !a.deleting, std::cmp::Reverse(a.for_seconds))
            .cmp(&(b.severity, !b.deleting, std::cmp::Reverse(b.for_seconds)))
            .then_with(|| (a.kind, &a.namespace, &a.name).cmp(&(b.kind, &b.namespace, &b.name)))
    });
    let mut install = install;
    install.sort_by_key(|c| c.status);
    let count = |s: Severity| findings.iter().filter(|f| f.severity == s).count();
    let summary = Summary {
        objects: findings.len(),
        stuck: count(Severity::Stuck),
        pending: count(Severity::Pending),
        healthy: count(Severity::Healthy),
        install_problems: install
            .iter()
            .filter(|c| matches!(c.status, CheckStatus::Fail | CheckStatus::Warn))
            .count(),
    };
    Report {
        version: env!("CARGO_PKG_VERSION"),
        now: now.to_string(),
        summary,
        install,
        objects: findings,
    }
}

fn human(secs: i64) -> String {
    let d = Duration::from_secs(secs.max(0) as u64);
    humantime::format_duration(d).to_string()
}

/// The report for a terminal: a summary first, the installation's problems, then the objects
/// worst first, grouped by severity.
pub fn render_text(r: &Report) -> String {
    let mut out = String::new();
    let s = &r.summary;
    let unknown = r
        .install
        .iter()
        .filter(|c| c.status == CheckStatus::Unknown)
        .count();
    let _ = writeln!(
        out,
        "{} stuck, {} pending, {} healthy ({} object(s)); installation: {}",
        s.stuck,
        s.pending,
        s.healthy,
        s.objects,
        match (s.install_problems, unknown) {
            (0, 0) => "no problem found".to_string(),
            (0, n) => format!("no problem found, {n} check(s) could not run"),
            (p, 0) => format!("{p} problem(s)"),
            (p, n) => format!("{p} problem(s), {n} check(s) could not run"),
        }
    );
    let _ = writeln!(out, "\nInstallation:");
    for c in &r.install {
        let tag = match c.status {
            CheckStatus::Ok => "ok     ",
            CheckStatus::Warn => "WARN   ",
            CheckStatus::Fail => "FAIL   ",
            CheckStatus::Unknown => "unknown",
        };
        let _ = writeln!(out, "  {tag} {}: {}", c.check, c.detail);
    }
    for (severity, title) in [
        (Severity::Stuck, "STUCK"),
        (Severity::Pending, "Pending"),
        (Severity::Healthy, "Healthy"),
    ] {
        let group: Vec<&Finding> = r
            .objects
            .iter()
            .filter(|f| f.severity == severity)
            .collect();
        if group.is_empty() {
            continue;
        }
        let _ = writeln!(out, "\n{title} ({}):", group.len());
        for f in group {
            let state = match (f.deleting, f.holds_finalizer) {
                (true, true) => "deleting, held by zilliz.io/finalizer",
                (true, false) => "deleting, held by another finalizer",
                (false, _) if severity == Severity::Healthy => "Ready",
                (false, _) => "not Ready",
            };
            let age = f
                .for_seconds
                .filter(|_| severity != Severity::Healthy)
                .map(|s| format!(" for {}", human(s)))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "  {} {}/{}: {state}{age}",
                f.kind.as_str(),
                f.namespace,
                f.name
            );
            if severity == Severity::Healthy {
                continue;
            }
            if let Some(reason) = &f.reason {
                let _ = writeln!(
                    out,
                    "    reason: {reason}{}",
                    f.message
                        .as_ref()
                        .map(|m| format!(" — {m}"))
                        .unwrap_or_default()
                );
            }
            if let Some(a) = f.attempts {
                let _ = writeln!(
                    out,
                    "    attempts: {a}{}{}",
                    f.next_retry
                        .as_ref()
                        .map(|t| format!(", next retry {t}"))
                        .unwrap_or_default(),
                    f.drop_accepted
                        .as_ref()
                        .map(|t| format!(", drop accepted {t}"))
                        .unwrap_or_default()
                );
            }
            if let Some(e) = &f.last_error {
                let _ = writeln!(out, "    last error: {e}");
            }
            if let Some(p) = &f.probe {
                let extra: Vec<String> = [
                    p.cluster_status.as_ref().map(|s| format!("cluster {s}")),
                    p.load_state.as_ref().map(|s| format!("load {s}")),
                    p.index_state.as_ref().map(|s| format!("build {s}")),
                ]
                .into_iter()
                .flatten()
                .collect();
                let _ = writeln!(
                    out,
                    "    external (probe): {:?}{} — {}",
                    p.state,
                    if extra.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", extra.join(", "))
                    },
                    p.detail
                );
            }
            for (i, step) in f.steps.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "    {} {}",
                    if i == 0 { "way out:" } else { "or:     " },
                    step.summary
                );
                for c in &step.commands {
                    let _ = writeln!(out, "        {c}");
                }
            }
            if let Some(l) = &f.if_finalizer_stripped {
                let _ = writeln!(out, "    do not strip the finalizer by hand: {l}");
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Installation checks: pure decisions from what the API answered.

/// Compares a CRD found on the server with the one this binary serves.
pub fn check_crd(kind: Kind, found: Result<Option<&CustomResourceDefinition>, String>) -> Check {
    let expected = kind.crd();
    let name = expected.metadata.name.clone().unwrap_or_default();
    let check = format!("CRD {name}");
    let found = match found {
        Err(why) => {
            return Check::new(
                check,
                CheckStatus::Unknown,
                format!("cannot read it: {why}"),
            );
        }
        Ok(None) => {
            return Check::new(
                check,
                CheckStatus::Fail,
                "not installed: kubectl apply --server-side -k deploy/crds/ (or zilliz-operator crd | kubectl apply --server-side -f -)",
            );
        }
        Ok(Some(found)) => found,
    };
    let want = expected.spec.versions.iter().find(|v| v.name == "v1alpha1");
    let have = found.spec.versions.iter().find(|v| v.name == "v1alpha1");
    let Some(have) = have.filter(|v| v.served) else {
        return Check::new(check, CheckStatus::Fail, "does not serve v1alpha1");
    };
    let schema = |v: Option<&k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinitionVersion>| {
        v.and_then(|v| v.schema.as_ref())
            .and_then(|s| serde_json::to_value(s).ok())
    };
    if schema(want) != schema(Some(have)) {
        return Check::new(
            check,
            CheckStatus::Warn,
            format!(
                "serves v1alpha1 with a schema that differs from this binary's ({}): apply this version's CRDs, or use the doctor of the operator's version",
                env!("CARGO_PKG_VERSION")
            ),
        );
    }
    Check::new(
        check,
        CheckStatus::Ok,
        "serves v1alpha1 with this binary's schema",
    )
}

/// Whether the leader Lease is held and renewed recently.
pub fn check_lease(
    namespace: &str,
    name: &str,
    found: Result<Option<&Lease>, String>,
    now: jiff::Timestamp,
) -> Check {
    let check = format!("leader Lease {namespace}/{name}");
    let lease = match found {
        Err(why) => {
            return Check::new(
                check,
                CheckStatus::Unknown,
                format!("cannot read it: {why}"),
            );
        }
        Ok(None) => {
            return Check::new(
                check,
                CheckStatus::Warn,
                format!(
                    "not found: the operator is not installed in {namespace:?} (see --operator-namespace), has not started, or runs without --leader-elect (then check: kubectl -n {namespace} get pods)"
                ),
            );
        }
        Ok(Some(lease)) => lease,
    };
    let spec = lease.spec.clone().unwrap_or_default();
    let Some(holder) = spec.holder_identity.filter(|h| !h.is_empty()) else {
        return Check::new(
            check,
            CheckStatus::Fail,
            "held by nobody: no operator replica is leading, so nothing is reconciled",
        );
    };
    let duration = i64::from(spec.lease_duration_seconds.unwrap_or(15).max(1));
    let Some(renewed) = spec.renew_time.map(|t| t.0) else {
        return Check::new(
            check,
            CheckStatus::Unknown,
            format!("held by {holder}, never renewed"),
        );
    };
    let ago = now.as_second() - renewed.as_second();
    if ago > duration * 2 {
        Check::new(
            check,
            CheckStatus::Fail,
            format!(
                "held by {holder} but not renewed for {} (lease duration {duration}s): the leader is gone and no standby took over",
                human(ago)
            ),
        )
    } else {
        Check::new(
            check,
            CheckStatus::Ok,
            format!("held by {holder}, renewed {} ago", human(ago)),
        )
    }
}

/// One permission the operator needs: (group, resource, subresource, verb).
type Need = (&'static str, &'static str, &'static str, &'static str);

/// What the operator's ServiceAccount needs (deploy/rbac/cluster-role.yaml).
pub fn needs() -> Vec<Need> {
    let mut out = Vec::new();
    for kind in Kind::ALL {
        for verb in ["list", "watch", "patch"] {
            out.push(("zilliz.io", kind.plural(), "", verb));
        }
        out.push(("zilliz.io", kind.plural(), "status", "patch"));
    }
    for verb in ["get", "list", "watch"] {
        out.push(("", "secrets", "", verb));
    }
    out.push(("events.k8s.io", "events", "", "create"));
    out
}

/// The RBAC verdict from the answers of the access reviews (`Ok(allowed)` or why it could not
/// be asked).
pub fn check_rbac(subject: &str, answers: &[(Need, Result<bool, String>)]) -> Check {
    let check = format!("RBAC of {subject}");
    let show = |(g, r, s, v): &Need| {
        let res = if s.is_empty() {
            r.to_string()
        } else {
            format!("{r}/{s}")
        };
        if g.is_empty() {
            format!("{v} {res}")
        } else {
            format!("{v} {res}.{g}")
        }
    };
    if let Some((_, Err(why))) = answers.iter().find(|(_, a)| a.is_err()) {
        return Check::new(
            check,
            CheckStatus::Unknown,
            format!(
                "could not be checked (SubjectAccessReview: {why}); check it with: kubectl auth can-i --list --as={subject}"
            ),
        );
    }
    let denied: Vec<String> = answers
        .iter()
        .filter(|(_, a)| matches!(a, Ok(false)))
        .map(|(n, _)| show(n))
        .collect();
    if denied.is_empty() {
        Check::new(
            check,
            CheckStatus::Ok,
            format!("allowed all {} permissions it needs", answers.len()),
        )
    } else {
        Check::new(
            check,
            CheckStatus::Fail,
            format!("denied: {}", denied.join(", ")),
        )
    }
}

// ---------------------------------------------------------------------------------------------
// I/O.

/// Where and what to look at.
#[derive(Clone, Debug)]
pub struct Options {
    /// `None`: every namespace.
    pub namespace: Option<String>,
    pub settings: Settings,
    pub probe: bool,
    pub lease_name: String,
    pub service_account: String,
    pub request_timeout: Duration,
}

fn kube_why(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => format!("{} {}", s.code, s.message),
        other => other.to_string(),
    }
}

fn not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

async fn list<K>(client: &Client, ns: Option<&str>) -> Result<Option<Vec<K>>, String>
where
    K: Managed,
{
    let api: Api<K> = match ns {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    match api.list(&ListParams::default()).await {
        Ok(l) => Ok(Some(l.items)),
        // the CRD is missing: its check says so
        Err(e) if not_found(&e) => Ok(None),
        Err(e) => Err(format!("cannot list {}: {}", K::plural(&()), kube_why(&e))),
    }
}

/// Only reads go out: a protocol that asks for anything else is stopped.
pub fn read_only(call: Call) -> bool {
    !call.mutates()
}

/// Observes `obj`'s resource read-only, with its own credentials: resolved as for an
/// observation, with nothing to create, and driven through the kind's observe protocol.
async fn probe_one<K: Managed>(obj: &K, sources: &Sources<'_>) -> Probe {
    let unresolved = |detail: String| Probe {
        state: ProbeState::Unresolved,
        detail,
        cluster_status: None,
        load_state: None,
        index_state: None,
    };
    let mut target = match resolve(obj, sources, Purpose::Observe).await {
        Ok(r) => r.target,
        Err(e) => return unresolved(e.to_string()),
    };
    target.plan.create = None;
    if let Some(d) = target.data.as_mut() {
        d.create_body = None;
    }
    let mut history: Vec<Exchange> = Vec::new();
    let seen = loop {
        match K::observe_protocol(&target.plan, &mut Script::new(&history)) {
            Ok(seen) => break seen,
            Err(Next(call)) if history.len() < MAX_CALLS && read_only(call) => {
                let reply = external::execute(&target, call, &history).await;
                history.push((call, reply));
            }
            Err(Next(call)) => {
                return unresolved(format!("stopped before {call:?}: the probe only reads"));
            }
        }
    };
    match seen {
        Ok(Observed::Exists {
            usable,
            detail,
            cluster_state,
            facts,
            ..
        }) => Probe {
            state: if usable {
                ProbeState::Exists
            } else {
                ProbeState::NotUsable
            },
            detail,
            cluster_status: cluster_state.map(|s| s.to_string()),
            load_state: match &facts {
                Facts::Collection(c) => Some(c.load.as_str().to_string()),
                _ => None,
            },
            index_state: match &facts {
                Facts::Index(i) => Some(i.state.as_str().to_string()),
                _ => None,
            },
        },
        Ok(Observed::Absent { detail }) => Probe {
            state: ProbeState::Absent,
            detail,
            cluster_status: None,
            load_state: None,
            index_state: None,
        },
        Err(e) => Probe {
            state: if e.class == ErrorClass::NotFound {
                ProbeState::Absent
            } else {
                ProbeState::Error
            },
            detail: e.to_string(),
            cluster_status: None,
            load_state: None,
            index_state: None,
        },
    }
}

/// Lists the objects, checks the installation, probes if asked, and analyzes. `Err` when the
/// doctor itself cannot run (no API server, the objects cannot be listed).
pub async fn gather(client: Client, opts: &Options) -> Result<Report, String> {
    let ns = opts.namespace.as_deref();
    let mut objects: Vec<Object> = Vec::new();
    let mut listed_any = false;
    macro_rules! list_into {
        ($t:ty, $v:ident) => {
            if let Some(items) = list::<$t>(&client, ns).await? {
                listed_any = true;
                objects.extend(items.into_iter().map(Object::$v));
            }
        };
    }
    list_into!(ZillizCluster, Cluster);
    list_into!(ZillizCollection, Collection);
    list_into!(ZillizPartition, Partition);
    list_into!(ZillizIndex, Index);

    let mut install = Vec::new();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for kind in Kind::ALL {
        let name = format!("{}.zilliz.io", kind.plural());
        let found = crds.get_opt(&name).await.map_err(|e| kube_why(&e));
        install.push(check_crd(
            kind,
            found.as_ref().map(Option::as_ref).map_err(Clone::clone),
        ));
    }
    if !listed_any && install.iter().all(|c| c.status == CheckStatus::Unknown) {
        return Err("cannot read any of the four kinds nor their CRDs".into());
    }

    let opns = &opts.settings.operator_namespace;
    let leases: Api<Lease> = Api::namespaced(client.clone(), opns);
    let lease = leases
        .get_opt(&opts.lease_name)
        .await
        .map_err(|e| kube_why(&e));
    install.push(check_lease(
        opns,
        &opts.lease_name,
        lease.as_ref().map(Option::as_ref).map_err(Clone::clone),
        jiff::Timestamp::now(),
    ));

    let subject = format!("system:serviceaccount:{opns}:{}", opts.service_account);
    let reviews: Api<SubjectAccessReview> = Api::all(client.clone());
    let mut answers = Vec::new();
    for need in needs() {
        let (group, resource, sub, verb) = need;
        let review = SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                user: Some(subject.clone()),
                groups: Some(vec![
                    "system:serviceaccounts".into(),
                    format!("system:serviceaccounts:{opns}"),
                ]),
                resource_attributes: Some(ResourceAttributes {
                    group: Some(group.into()),
                    resource: Some(resource.into()),
                    subresource: (!sub.is_empty()).then(|| sub.to_string()),
                    verb: Some(verb.into()),
                    namespace: ns.map(str::to_string),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        let answer = reviews
            .create(&Default::default(), &review)
            .await
            .map(|r| r.status.is_some_and(|s| s.allowed))
            .map_err(|e| kube_why(&e));
        let failed = answer.is_err();
        answers.push((need, answer));
        if failed {
            break; // one refusal says it all
        }
    }
    install.push(check_rbac(&subject, &answers));

    let mut probes = BTreeMap::new();
    if opts.probe {
        let http = HttpClient::new(opts.request_timeout, None)
            .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
        let tokens = Tokens::default();
        let sources = Sources {
            client: &client,
            tokens: &tokens,
            stores: None,
            http: &http,
        };
        for obj in objects
            .iter()
            .filter(|o| opts.settings.names.is_empty() || opts.settings.names.contains(&o.name()))
        {
            let p = each!(obj, o => probe_one(o, &sources).await);
            probes.insert(obj.key(), p);
        }
    }
    Ok(analyze(
        &objects,
        install,
        &probes,
        jiff::Timestamp::now(),
        &opts.settings,
    ))
}

#[cfg(test)]
mod tests;
