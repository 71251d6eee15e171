//! The four kinds, one module each, behind one trait: what a spec addresses, and how the
//! resource is observed and dropped.
//!
//! Everything here is pure: no I/O and no Kubernetes client. Observing and dropping are written
//! as *protocols*: a kind's protocol looks at the calls made so far and their answers (a
//! [`Script`]) and either asks for the next [`Call`] or ends with what was established. The I/O
//! shell (`external.rs`) makes the calls against the real API; the model test
//! (`decide::model_tests`) answers them from a model of the external world. Both run the same
//! code, so what the model test proves holds for the operator.
//!
//! Arrows run one way: `api`, `crd` ← `kinds` ← `stores`, `secrets` ← `resolve` ← `decide` ←
//! `controller`.

pub mod cluster;
mod collection;
mod desired;
mod index;
mod partition;

pub use desired::{Assessment, Desired, Difference, LoadWanted, Pending, Update, WantCluster};

use crate::{
    api::{ApiError, ClusterInfo, CollectionInfo, ControlPlane, ErrorClass, Flavour, IndexInfo},
    crd::{
        CollectionAddress, ConnectionSpec, DeletionPolicy, ManagementPolicy, SecretKeyRef,
        ZillizStatus,
    },
};
use k8s_openapi::NamespaceResourceScope;
use kube::{Resource, ResourceExt};
use serde::{Serialize, de::DeserializeOwned};
use std::fmt::{self, Debug};
use url::Url;

/// The annotation that keeps an object's resource from being dropped.
pub const DELETION_PROTECTION: &str = "zilliz.io/deletion-protection";

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

/// Which objects live inside an object's resource, and so must be gone before the object may
/// go (whatever its `deletionPolicy`): their drops need it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Contains {
    /// Nothing refers to this kind.
    Nothing,
    /// Collections, partitions and indexes naming this ZillizCluster (directly or through a
    /// ZillizCollection that does).
    ClusterObjects,
    /// Partitions and indexes naming this ZillizCollection.
    CollectionObjects,
}

/// What the four kinds have in common for the reconciler. Everything kind-specific the generic
/// reconciler needs is here; it never asks which kind it runs.
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
    /// Which objects must be gone before this one goes.
    const CONTAINS: Contains;
    fn deletion_policy(&self) -> DeletionPolicy;
    /// What the operator may do to the resource (`managementPolicies`).
    fn management_policies(&self) -> &[ManagementPolicy];
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
    /// Drops the resource: the next call, or what was established.
    fn drop_protocol(plan: &Plan, s: &mut Script<'_>) -> Result<Attempt, Step>;
    /// Observes the resource: the next call, or what was found.
    fn observe_protocol(plan: &Plan, s: &mut Script<'_>) -> Result<Observation, Step>;
    /// The request that creates the resource from the spec, in collection `db.collection`, or
    /// why the spec cannot create it (which fields would make it creatable).
    fn create_request(&self, db: &str, collection: &str, flavour: Flavour) -> Creatable {
        let _ = (db, collection, flavour);
        Creatable::No("the operator does not create this kind")
    }

    /// What the spec declares of the resource beyond its name, to compare with what a describe
    /// shows (see [`Desired`]).
    fn desired(&self) -> Desired {
        Desired::Nothing
    }

    /// A resource the operator creates at most once, outside [`converge`], because its create
    /// is not idempotent and the API picks its id (clusters): what was recorded and what to
    /// create. `None` for the kinds whose create is idempotent and happens in `converge`.
    fn create_once(&self, now: jiff::Timestamp) -> Option<CreateOnce> {
        let _ = now;
        None
    }

    /// The Secret (same namespace) to write the resource's connection details into.
    fn connection_secret(&self) -> Option<&str> {
        None
    }

    /// The user asked that the resource never be dropped.
    fn protected(&self) -> bool {
        self.annotations()
            .get(DELETION_PROTECTION)
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
    }
}

/// What [`Managed::create_once`] gives the shell.
#[derive(Clone, Debug)]
pub struct CreateOnce {
    /// What the object recorded (annotations that survive a status wipe or a restore).
    pub record: cluster::CreateRecord,
    /// The create request, or why the spec cannot create.
    pub want: Result<crate::api::CreateCluster, String>,
    /// The control plane (`None` when the spec's is invalid: then `want` says why), and the
    /// Secret key holding its API key.
    pub base: Option<Url>,
    pub flavour: Flavour,
    pub secret: SecretKeyRef,
}

pub use cluster::{CLUSTER_ID, CREATE_PENDING, ClusterStep, CreateEvent, create_once};

/// Whether a spec says how to create its resource.
#[derive(Clone, Debug, PartialEq)]
pub enum Creatable {
    /// The call, and the request body.
    Yes(Call, serde_json::Value),
    /// Which fields would make it creatable.
    No(&'static str),
}

/// What observing a live object, creating its resource when absent and bringing its mutable
/// fields to the spec came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Converged {
    /// What was observed (after the create, when this run created the resource), compared with
    /// the spec.
    Seen {
        seen: Observation,
        /// This run created the resource.
        created: bool,
        assessment: Assessment,
    },
    /// The resource cannot be created yet: its collection or database does not exist.
    Waiting { database: bool, message: String },
    /// The server refused to create the resource from this spec (a bad request: an unknown
    /// type, an index on a missing field, a different schema under the same name): the spec
    /// must change; retrying the same request cannot help.
    Refused(ApiError),
}

impl Converged {
    /// Only an observation, nothing compared (tests and errors).
    pub fn seen(seen: Observation) -> Self {
        Converged::Seen {
            seen,
            created: false,
            assessment: Assessment::default(),
        }
    }
}

/// Observes a live object's resource; when it is absent and the plan says how, creates it and
/// observes it again; then compares what was observed with the spec ([`Managed`]'s
/// [`Desired`]) and, when `managementPolicies` allow `Update`, brings the mutable fields to the
/// spec.
///
/// The create–adopt–update guarantee: this never drops anything, never creates a resource a
/// read in the same run saw, creates at most once a run, never releases or loads a collection
/// unless the spec's `loadState` asks for it, and a run that finds the resource as the spec
/// declares it makes no mutating call (`converge_tests`: the property test and the model of
/// successive runs). Immutable differences are reported, never "fixed": nothing is dropped and
/// recreated to make a resource match.
pub fn converge<K: Managed>(plan: &Plan, s: &mut Script<'_>) -> Result<Converged, Step> {
    let mut seen = K::observe_protocol(plan, s)?;
    let mut created = false;
    match (&seen, plan.create) {
        (Ok(Observed::Absent { .. }), Some(call)) => match s.ask(call)? {
            Ok(_) => {
                created = true;
                seen = K::observe_protocol(plan, s)?;
            }
            Err(e) if explicit_not_found(e) => {
                return Ok(Converged::Waiting {
                    database: e.code == Some(800),
                    message: format!("cannot create {} yet: {}", plan.what, e.message),
                });
            }
            Err(e) if matches!(e.class, ErrorClass::BadRequest | ErrorClass::InvalidName) => {
                return Ok(Converged::Refused(ApiError {
                    message: format!("the server refused to create {}: {}", plan.what, e.message),
                    ..e.clone()
                }));
            }
            Err(e) => return Ok(Converged::seen(Err(e.clone()))),
        },
        // the collection (or database) the resource would live in is missing
        (Err(e), _) if explicit_not_found(e) => {
            return Ok(Converged::Waiting {
                database: e.code == Some(800),
                message: format!("{} cannot exist yet: {}", plan.what, e.message),
            });
        }
        _ => {}
    }
    let mut assessment = Assessment::default();
    if let Ok(Observed::Exists { facts, .. }) = &seen {
        let found = plan.desired.assess(facts);
        assessment.differences = found.differences;
        assessment.pending = found.pending;
        for update in found.updates {
            if !plan.update {
                assessment.differences.push(update.difference);
                continue;
            }
            match s.ask(update.call)? {
                Ok(_) => assessment.updated.push(update.difference),
                Err(e) => {
                    assessment.failed = Some(ApiError {
                        message: format!(
                            "could not bring {} to the spec ({}): {}",
                            update.difference.field, update.difference, e.message
                        ),
                        ..e.clone()
                    });
                    break;
                }
            }
        }
    }
    Ok(Converged::Seen {
        seen,
        created,
        assessment,
    })
}

/// A cluster's state, as a describe gives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClusterState {
    Creating,
    Restoring,
    Running,
    Modifying,
    Suspending,
    Suspended,
    Resuming,
    Deleting,
    Deleted,
    /// Any other word the API uses (kept as it came).
    Other(String),
}

impl ClusterState {
    pub fn parse(raw: &str) -> Self {
        match raw.trim().to_ascii_uppercase().as_str() {
            "CREATING" => ClusterState::Creating,
            "RESTORING" => ClusterState::Restoring,
            "RUNNING" => ClusterState::Running,
            "MODIFYING" => ClusterState::Modifying,
            // the raw API says STOPPING/STOPPED, the console SUSPENDING/SUSPENDED
            "SUSPENDING" | "STOPPING" => ClusterState::Suspending,
            "SUSPENDED" | "STOPPED" => ClusterState::Suspended,
            "RESUMING" => ClusterState::Resuming,
            "DELETING" => ClusterState::Deleting,
            "DELETED" => ClusterState::Deleted,
            _ => ClusterState::Other(raw.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            ClusterState::Creating => "CREATING",
            ClusterState::Restoring => "RESTORING",
            ClusterState::Running => "RUNNING",
            ClusterState::Modifying => "MODIFYING",
            ClusterState::Suspending => "SUSPENDING",
            ClusterState::Suspended => "SUSPENDED",
            ClusterState::Resuming => "RESUMING",
            ClusterState::Deleting => "DELETING",
            ClusterState::Deleted => "DELETED",
            ClusterState::Other(s) => s,
        }
    }
}

impl fmt::Display for ClusterState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One call against the object's resolved target (its cluster on the control plane, or its
/// collection, partition or index on the data plane).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Call {
    /// Describe the cluster: the object's own, or the one its collection lives in.
    DescribeCluster,
    /// List the clusters the same credentials see (every page).
    ListClusters,
    DropCluster,
    HasCollection,
    DropCollection,
    ReleaseCollection,
    HasPartition,
    ReleasePartition,
    DropPartition,
    HasIndex,
    DropIndex,
    /// Create the resource from the request its kind built from the spec.
    CreateCollection,
    CreatePartition,
    CreateIndex,
    /// Describe the collection (fields, load state, shards, properties).
    DescribeCollection,
    /// Describe the index (type, metric, build progress).
    DescribeIndex,
    LoadCollection,
    /// Alter the collection's properties to the spec's (`params.ttlSeconds`).
    AlterCollection,
    /// Modify the cluster's `cuSize` to the spec's.
    ResizeCluster,
    /// Modify the cluster's `replica` to the spec's.
    ReplicateCluster,
    SuspendCluster,
    ResumeCluster,
}

impl Call {
    /// Whether the call changes the resource (anything but a read).
    pub fn mutates(self) -> bool {
        !matches!(
            self,
            Call::DescribeCluster
                | Call::ListClusters
                | Call::HasCollection
                | Call::HasPartition
                | Call::HasIndex
                | Call::DescribeCollection
                | Call::DescribeIndex
        )
    }
}

/// A successful answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    Done,
    Has(bool),
    Cluster(ClusterInfo),
    Clusters(Vec<String>),
    Collection(Box<CollectionInfo>),
    Index(Box<IndexInfo>),
}

/// A call and its answer.
pub type Exchange = (Call, Result<Reply, ApiError>);

/// The next call a protocol needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Step(pub Call);

/// The calls made so far, replayed to a protocol: [`Script::ask`] gives the answer of the
/// next call if it was made, or stops the protocol with that call as its next step. A protocol
/// is thus an ordinary function, run again from the start with one more answer each time.
pub struct Script<'a> {
    history: &'a [Exchange],
    at: usize,
}

impl<'a> Script<'a> {
    pub fn new(history: &'a [Exchange]) -> Self {
        Script { history, at: 0 }
    }

    /// The answer to `call`, or `Err(Step(call))` when it has not been made yet.
    pub fn ask(&mut self, call: Call) -> Result<&'a Result<Reply, ApiError>, Step> {
        match self.history.get(self.at) {
            Some((made, answer)) if *made == call => {
                self.at += 1;
                Ok(answer)
            }
            // a history that does not follow the protocol (never made by the drivers): ask
            // again from here
            _ => Err(Step(call)),
        }
    }

    /// Whether `call` was made earlier in this run.
    fn made(&self, call: Call) -> bool {
        self.history[..self.at].iter().any(|(c, _)| *c == call)
    }
}

#[cfg(test)]
/// Runs a protocol to its end, answering each call with `answer`. At most `limit` calls are
/// made; a protocol that wants more ends with an error.
pub fn run<T>(
    protocol: impl Fn(&mut Script<'_>) -> Result<T, Step>,
    mut answer: impl FnMut(Call, &[Exchange]) -> Result<Reply, ApiError>,
    limit: usize,
) -> (Result<T, ApiError>, Vec<Exchange>) {
    let mut history: Vec<Exchange> = Vec::new();
    loop {
        match protocol(&mut Script::new(&history)) {
            Ok(done) => return (Ok(done), history),
            Err(Step(call)) if history.len() < limit => {
                let reply = answer(call, &history);
                history.push((call, reply));
            }
            Err(Step(call)) => {
                let e = ApiError::new(
                    ErrorClass::Unknown,
                    format!("gave up after {limit} calls (the next would have been {call:?})"),
                );
                return (Err(e), history);
            }
        }
    }
}

/// The most calls one drop or observation makes (a partition: describe its cluster, release,
/// drop, and one confirming read; an index: the same with a release of its collection).
pub const MAX_CALLS: usize = 8;

/// The data-plane endpoint to use after `history`: the one a describe of the cluster gave, else
/// the one known beforehand.
pub fn learned_endpoint(history: &[Exchange]) -> Option<&str> {
    history
        .iter()
        .rev()
        .find_map(|(call, answer)| match answer {
            Ok(Reply::Cluster(info)) if *call == Call::DescribeCluster => {
                info.connect_address.as_deref()
            }
            _ => None,
        })
}

/// What a protocol needs to know beyond the answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// The resource, for people: `collection default.books`, `cluster in01-x`.
    pub what: String,
    /// The cluster's id, when the protocol may describe or list clusters.
    pub cluster_id: Option<String>,
    /// An asynchronous (cluster) drop was accepted earlier: only poll.
    pub accepted: bool,
    /// An index may release its collection to be dropped.
    pub release_collection: bool,
    /// The cluster a collection, partition or index lives in, when it is reached through a
    /// ZillizCluster object.
    pub container: Container,
    /// The call that creates the resource, when the spec says how and `managementPolicies`
    /// allow `Create`.
    pub create: Option<Call>,
    /// What the spec declares, compared with what is observed.
    pub desired: Desired,
    /// `managementPolicies` allow `Update`: mutable fields are brought to the spec.
    pub update: bool,
}

/// What is known of the cluster a data-plane resource lives in, before any call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Container {
    /// A direct connection: there is no cluster to ask.
    None,
    Cluster {
        /// The ZillizCluster object (or its recorded state) says the cluster is gone or going:
        /// a hint only; the cluster's describe decides.
        hint_gone: bool,
        /// A data-plane endpoint is known without a describe.
        endpoint_known: bool,
    },
}

/// Why the API's answer lets a resource count as gone. Only these: the API that holds the
/// resource said so for that exact resource or for the cluster it lives in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Evidence {
    /// An explicit "not found" code for the resource or its collection or database.
    NotFound { code: Option<i64> },
    /// A read of the resource (`has`/`describe`) said it does not exist, after an answer that
    /// did not say so by itself (1100, 80020, ...).
    ReadSaysAbsent,
    /// A describe shows the cluster (the resource, or its container) `DELETED`.
    ClusterDeleted,
    /// 80020 ("not exist or no permission"), and the same credentials list every cluster
    /// without this one.
    ListedWithout,
}

/// What a drop established.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attempt {
    /// The drop endpoint confirmed the drop of this exact resource (or a poll found the
    /// accepted drop finished).
    Dropped(String),
    /// The API said the resource, or the cluster it lives in, does not exist.
    Absent(Evidence, String),
    /// The API accepted an asynchronous drop: poll until it is done.
    Accepted(String),
    /// The resource is being deleted (a drop accepted earlier, perhaps by us with the mark
    /// lost): poll.
    InProgress(String),
    /// The drop cannot go ahead until something changes (a loaded collection).
    Blocked(ApiError),
    /// An answer that settled nothing.
    Failed(ApiError),
}

/// What an observation found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Observed {
    /// The resource exists. For clusters, `usable` is false unless it is RUNNING.
    Exists {
        usable: bool,
        detail: String,
        endpoint: Option<String>,
        cluster_state: Option<ClusterState>,
        /// What a describe showed, to compare with the spec.
        facts: Facts,
    },
    /// The resource does not exist.
    Absent { detail: String },
}

pub type Observation = Result<Observed, ApiError>;

/// What a describe showed of a resource, beyond its existence.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Facts {
    /// Only existence was read.
    #[default]
    None,
    Collection(Box<CollectionInfo>),
    Index(Box<IndexInfo>),
    Cluster(Box<ClusterInfo>),
}

/// An answer that says by itself that the resource (or its collection or database) does not
/// exist.
pub fn explicit_not_found(e: &ApiError) -> bool {
    e.class == ErrorClass::NotFound
}

/// An answer that may mean "gone" but does not say so: confirmed by a read before it counts.
pub fn ambiguous(e: &ApiError) -> bool {
    matches!(
        e.class,
        ErrorClass::NotFoundOrForbidden | ErrorClass::InvalidName
    )
}

/// After an ambiguous answer `e` to a drop, a read of the resource (`has`) decides: it counts as
/// gone only if the read says it does not exist.
pub fn confirm_by_read(
    s: &mut Script<'_>,
    read: Call,
    what: &str,
    e: &ApiError,
) -> Result<Attempt, Step> {
    Ok(match s.ask(read)? {
        Ok(Reply::Has(false)) => Attempt::Absent(
            Evidence::ReadSaysAbsent,
            format!("{what} does not exist (the drop answered \"{e}\" and a read confirmed it)"),
        ),
        Err(r) if explicit_not_found(r) => Attempt::Absent(
            Evidence::NotFound { code: r.code },
            format!("{what} does not exist (the drop answered \"{e}\"; a read answered \"{r}\")"),
        ),
        Ok(Reply::Has(true)) => Attempt::Failed(ApiError {
            message: format!("{}; yet a read shows {what} exists", e.message),
            ..e.clone()
        }),
        Ok(other) => Attempt::Failed(ApiError {
            message: format!("{}; a read to confirm answered {other:?}", e.message),
            ..e.clone()
        }),
        Err(r) => Attempt::Failed(ApiError {
            message: format!(
                "{}; a read to confirm that {what} is gone failed too ({r})",
                e.message
            ),
            ..e.clone()
        }),
    })
}

/// After 80020 ("not exist or you don't have permission") for `cluster_id`: the same
/// credentials list every cluster; absent from a complete list is gone, anything else is not.
pub fn confirm_by_list(
    s: &mut Script<'_>,
    cluster_id: &str,
    e: &ApiError,
) -> Result<Result<String, ApiError>, Step> {
    Ok(match s.ask(Call::ListClusters)? {
        Ok(Reply::Clusters(ids)) if !ids.iter().any(|i| i == cluster_id) => Ok(format!(
            "cluster {cluster_id} does not exist (the API answered {} and the same credentials list every cluster without it)",
            e.code.unwrap_or_default()
        )),
        Ok(Reply::Clusters(_)) => Err(ApiError {
            class: ErrorClass::Credentials,
            message: format!(
                "the API answered \"{}\" for cluster {cluster_id}, yet the same credentials list it: the API key may lack permission on it; not treating it as gone",
                e.message
            ),
            ..e.clone()
        }),
        Ok(other) => Err(ApiError {
            class: ErrorClass::Unknown,
            message: format!(
                "the API answered \"{}\" and the cluster list answered {other:?}",
                e.message
            ),
            ..e.clone()
        }),
        Err(list_err) => Err(ApiError {
            class: ErrorClass::Credentials,
            message: format!(
                "the API answered \"{}\" (not found, or no permission) and listing clusters with the same credentials failed ({list_err}); not treating the cluster as gone",
                e.message
            ),
            ..e.clone()
        }),
    })
}

/// Before a data-plane drop: when the resource lives in a cluster that its ZillizCluster object
/// says is gone, or whose endpoint is not known, ask the cluster itself. `Some` ends the drop.
pub fn check_container(plan: &Plan, s: &mut Script<'_>) -> Result<Option<Attempt>, Step> {
    match plan.container {
        Container::Cluster {
            hint_gone,
            endpoint_known,
        } if hint_gone || !endpoint_known => describe_container(plan, s),
        _ => Ok(None),
    }
}

/// After a data-plane call failed with `e`: if the resource lives in a cluster not described
/// yet and the error may come from a cluster that is gone (unreachable, unknown), ask it.
pub fn after_failure(plan: &Plan, s: &mut Script<'_>, e: &ApiError) -> Result<Attempt, Step> {
    let may_be_gone = matches!(e.class, ErrorClass::Transient | ErrorClass::Unknown);
    if may_be_gone
        && matches!(plan.container, Container::Cluster { .. })
        && !s.made(Call::DescribeCluster)
        && let Some(gone @ Attempt::Absent(..)) = describe_container(plan, s)?
    {
        return Ok(gone);
    }
    Ok(Attempt::Failed(e.clone()))
}

/// Describes the cluster a resource lives in: `Some` ends the drop (the cluster is gone, or not
/// in a state to serve it), `None` goes on (it runs).
fn describe_container(plan: &Plan, s: &mut Script<'_>) -> Result<Option<Attempt>, Step> {
    let id = plan.cluster_id.as_deref().unwrap_or_default();
    let what = &plan.what;
    Ok(match s.ask(Call::DescribeCluster)? {
        Ok(Reply::Cluster(info)) => match ClusterState::parse(&info.status) {
            ClusterState::Deleted => Some(Attempt::Absent(
                Evidence::ClusterDeleted,
                format!("cluster {id}, which holds {what}, is DELETED"),
            )),
            ClusterState::Running if info.connect_address.is_some() => None,
            ClusterState::Running => Some(Attempt::Failed(ApiError::new(
                ErrorClass::Unknown,
                format!("cluster {id} is RUNNING but its describe gave no endpoint"),
            ))),
            state => Some(Attempt::Failed(ApiError::new(
                ErrorClass::Transient,
                format!(
                    "cluster {id}, which holds {what}, is {state}; the drop waits until it runs or is DELETED"
                ),
            ))),
        },
        Ok(other) => Some(Attempt::Failed(ApiError::new(
            ErrorClass::Unknown,
            format!("cluster describe answered {other:?}"),
        ))),
        Err(e) if explicit_not_found(e) => Some(Attempt::Absent(
            Evidence::NotFound { code: e.code },
            format!("cluster {id}, which holds {what}, does not exist: {e}"),
        )),
        Err(e) if e.class == ErrorClass::NotFoundOrForbidden => {
            Some(match confirm_by_list(s, id, e)? {
                Ok(m) => Attempt::Absent(Evidence::ListedWithout, format!("{m}; it held {what}")),
                Err(e) => Attempt::Failed(e),
            })
        }
        Err(e) => Some(Attempt::Failed(e.clone())),
    })
}

/// A data-plane drop answered `e`: gone, blocked, to be confirmed, or failed.
pub fn data_drop_error(
    plan: &Plan,
    s: &mut Script<'_>,
    e: &ApiError,
    read: Call,
) -> Result<Attempt, Step> {
    let what = &plan.what;
    if explicit_not_found(e) {
        Ok(Attempt::Absent(
            Evidence::NotFound { code: e.code },
            format!("{what}: {}", e.message),
        ))
    } else if ambiguous(e) {
        confirm_by_read(s, read, what, e)
    } else {
        after_failure(plan, s, e)
    }
}

/// An existence read's answer as an observation.
pub fn observed_by_read(what: &str, answer: &Result<Reply, ApiError>) -> Observation {
    match answer {
        Ok(Reply::Has(true)) => Ok(Observed::Exists {
            usable: true,
            detail: format!("{what} exists"),
            endpoint: None,
            cluster_state: None,
            facts: Facts::None,
        }),
        Ok(Reply::Has(false)) => Ok(Observed::Absent {
            detail: format!("{what} does not exist"),
        }),
        Ok(other) => Err(ApiError::new(
            ErrorClass::Unknown,
            format!("an existence read answered {other:?}"),
        )),
        Err(e) => Err(e.clone()),
    }
}

pub(crate) fn parse_endpoint(raw: &str, what: &str) -> Result<Url, String> {
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

pub use collection::collection_loc_of;

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

/// The control plane base URL a cluster spec names.
pub fn control_plane_base(
    flavour: Flavour,
    base_url: Option<&str>,
    region: Option<&str>,
) -> Result<Url, String> {
    match base_url {
        Some(raw) => parse_endpoint(raw, "controlPlane.baseUrl"),
        None => ControlPlane::default_base(flavour, region),
    }
}

#[cfg(test)]
mod converge_tests;
#[cfg(test)]
mod tests;
