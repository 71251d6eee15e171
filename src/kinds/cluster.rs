//! ZillizCluster: a Zilliz Cloud cluster. Its drop is asynchronous: accepted, then polled with
//! describes until the cluster is `DELETED`. Created from spec at most once ([`create_once`]),
//! resized, suspended and resumed one change at a time ([`update_step`]).

use super::desired::WantCluster;
use super::{
    Address, Attempt, Call, ClusterState, Contains, Evidence, Managed, Observation, Observed, Plan,
    Refs, Reply, Script, Step, confirm_by_list, control_plane_base, explicit_not_found, non_empty,
};
use crate::{
    api::{
        ApiError, ClusterInfo, CreateCluster, ErrorClass, Flavour, Modify,
        classify::is_duplicate_cluster_name,
    },
    crd::{
        DeletionPolicy, DesiredStatus, ManagementPolicy, Origin, ZillizCluster, ZillizClusterSpec,
        ZillizStatus,
    },
};
use kube::ResourceExt;
use std::time::Duration;

/// The annotation a ZillizCluster carries while a create of its cluster may be in flight:
/// written (value: the RFC 3339 time) before the create is sent, removed once the cluster's id
/// is recorded or the API refused the create. An annotation, not status: it survives a status
/// wipe and travels with a backup of the object.
pub const CREATE_PENDING: &str = "zilliz.io/create-pending";

/// The annotation holding the id of the cluster a ZillizCluster created or found by name
/// (`spec.clusterId`, when set, wins over it).
pub const CLUSTER_ID: &str = "zilliz.io/cluster-id";

/// The id of the cluster `obj` manages: `spec.clusterId`, else the annotation [`CLUSTER_ID`],
/// else `status.clusterId`; `None` while it has none (a cluster still to be created).
pub fn known_cluster_id(obj: &ZillizCluster) -> Option<&str> {
    fn set(v: Option<&String>) -> Option<&str> {
        v.map(|s| s.trim()).filter(|s| !s.is_empty())
    }
    set(obj.spec.cluster_id.as_ref())
        .or_else(|| set(obj.annotations().get(CLUSTER_ID)))
        .or_else(|| set(obj.status.as_ref().and_then(|s| s.cluster_id.as_ref())))
}

fn cluster_address(spec: &ZillizClusterSpec, id: Option<&str>) -> Result<Address, String> {
    let id = non_empty(
        id.ok_or("no cluster id yet: spec.clusterId is not set and no cluster was created or found by name")?,
        "clusterId",
    )?;
    if !id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(format!(
            "clusterId {id:?} may only hold letters, digits, '-' and '_'"
        ));
    }
    let flavour = Flavour::from(spec.control_plane.api_version);
    let base = control_plane_base(
        flavour,
        spec.control_plane.base_url.as_deref(),
        spec.control_plane.region.as_deref(),
    )?;
    Ok(Address::Cluster {
        cluster_id: id,
        base,
        flavour,
        secret: spec.credentials_secret_ref.clone(),
    })
}

impl Managed for ZillizCluster {
    const LABEL: &'static str = "cluster";
    const CONTAINS: Contains = Contains::ClusterObjects;
    fn deletion_policy(&self) -> DeletionPolicy {
        self.spec.deletion_policy
    }
    fn management_policies(&self) -> &[ManagementPolicy] {
        &self.spec.management_policies
    }
    fn zstatus(&self) -> Option<&ZillizStatus> {
        self.status.as_ref()
    }
    fn external_name(&self) -> &str {
        known_cluster_id(self).unwrap_or_default()
    }
    fn address(&self) -> Result<Address, String> {
        cluster_address(&self.spec, known_cluster_id(self))
    }
    fn secret_names(&self) -> Vec<&str> {
        vec![self.spec.credentials_secret_ref.name.as_str()]
    }
    fn refs(&self) -> Refs<'_> {
        Refs::default()
    }

    fn desired(&self) -> super::Desired {
        super::Desired::Cluster(WantCluster::from(&self.spec))
    }

    fn create_once(&self, now: jiff::Timestamp) -> Option<super::CreateOnce> {
        let flavour = Flavour::from(self.spec.control_plane.api_version);
        let base = control_plane_base(
            flavour,
            self.spec.control_plane.base_url.as_deref(),
            self.spec.control_plane.region.as_deref(),
        );
        let record = CreateRecord::of(self, now);
        let (want, base) = match base {
            Ok(base) => (create_request(&self.spec), Some(base)),
            Err(e) => (Err(e), None),
        };
        Some(super::CreateOnce {
            record,
            want,
            base,
            flavour,
            secret: self.spec.credentials_secret_ref.clone(),
        })
    }

    fn connection_secret(&self) -> Option<&str> {
        self.spec
            .write_connection_secret_to_ref
            .as_ref()
            .map(|r| r.name.as_str())
    }

    /// Describe first, always: a drop accepted earlier whose mark in the status was lost (the
    /// status write after it failed) shows `DELETING`/`DELETED` and is never sent again; an
    /// ambiguous describe (80020 with the cluster still listed) sends nothing.
    fn drop_protocol(plan: &Plan, s: &mut Script<'_>) -> Result<Attempt, Step> {
        let id = plan.cluster_id.as_deref().unwrap_or_default();
        let gone = |evidence: Evidence, m: String| {
            if plan.accepted {
                Attempt::Dropped(m)
            } else {
                Attempt::Absent(evidence, m)
            }
        };
        let state = match s.ask(Call::DescribeCluster)? {
            Ok(Reply::Cluster(info)) => ClusterState::parse(&info.status),
            Ok(other) => {
                return Ok(Attempt::Failed(ApiError::new(
                    ErrorClass::Unknown,
                    format!("cluster describe answered {other:?}"),
                )));
            }
            Err(e) if explicit_not_found(e) => {
                return Ok(gone(
                    Evidence::NotFound { code: e.code },
                    format!("cluster {id} is gone: {}", e.message),
                ));
            }
            Err(e) if e.class == ErrorClass::NotFoundOrForbidden => {
                return Ok(match confirm_by_list(s, id, e)? {
                    Ok(m) => gone(Evidence::ListedWithout, m),
                    Err(e) => Attempt::Failed(e),
                });
            }
            Err(e) => return Ok(Attempt::Failed(e.clone())),
        };
        match state {
            ClusterState::Deleted => {
                return Ok(gone(
                    Evidence::ClusterDeleted,
                    format!("cluster {id} is DELETED (it stays in the recycle bin for 30 days)"),
                ));
            }
            ClusterState::Deleting => {
                return Ok(Attempt::InProgress(format!(
                    "cluster {id} is DELETING; waiting for DELETED"
                )));
            }
            state if plan.accepted => {
                return Ok(Attempt::InProgress(format!(
                    "cluster {id} is {state}; waiting for DELETED"
                )));
            }
            _ => {}
        }
        Ok(match s.ask(Call::DropCluster)? {
            Ok(_) => Attempt::Accepted(format!(
                "the control plane accepted the drop of cluster {id}; waiting for DELETED"
            )),
            Err(e) if explicit_not_found(e) => Attempt::Absent(
                Evidence::NotFound { code: e.code },
                format!("cluster {id}: {}", e.message),
            ),
            Err(e) if e.class == ErrorClass::NotFoundOrForbidden => {
                match confirm_by_list(s, id, e)? {
                    Ok(m) => Attempt::Absent(Evidence::ListedWithout, m),
                    Err(e) => Attempt::Failed(e),
                }
            }
            Err(e) => Attempt::Failed(e.clone()),
        })
    }

    /// 80020 is "not found" only once the cluster list confirms it, as for a drop.
    fn observe_protocol(plan: &Plan, s: &mut Script<'_>) -> Result<Observation, Step> {
        let id = plan.cluster_id.as_deref().unwrap_or_default();
        Ok(match s.ask(Call::DescribeCluster)? {
            Ok(Reply::Cluster(info)) => match ClusterState::parse(&info.status) {
                ClusterState::Deleted => Ok(Observed::Absent {
                    detail: format!("cluster {id} is DELETED"),
                }),
                state => Ok(Observed::Exists {
                    // a cluster suspended on purpose is as declared
                    usable: state == ClusterState::Running
                        || (state == ClusterState::Suspended && suspended_on_purpose(plan)),
                    detail: match state {
                        ClusterState::Suspended if suspended_on_purpose(plan) => {
                            format!("cluster {id} is SUSPENDED, as declared")
                        }
                        _ => format!("cluster {id} is {state}"),
                    },
                    endpoint: info.connect_address.clone(),
                    cluster_state: Some(state),
                    facts: super::Facts::Cluster(Box::new(info.clone())),
                }),
            },
            Ok(other) => Err(ApiError::new(
                ErrorClass::Unknown,
                format!("cluster describe answered {other:?}"),
            )),
            Err(e) if explicit_not_found(e) => Ok(Observed::Absent {
                detail: format!("cluster {id}: {}", e.message),
            }),
            Err(e) if e.class == ErrorClass::NotFoundOrForbidden => {
                confirm_by_list(s, id, e)?.map(|detail| Observed::Absent { detail })
            }
            Err(e) => Err(e.clone()),
        })
    }
}

/// What a ZillizCluster object has recorded about its cluster, read from the object as the
/// reconcile pass read it (see [`create_once`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CreateRecord {
    /// [`known_cluster_id`]: the cluster is known, nothing is to be created.
    pub cluster_id: Option<String>,
    /// The annotation [`CREATE_PENDING`] is there: an earlier pass may have sent a create.
    pub pending: bool,
    /// How long ago the intent was recorded (`None`: its time cannot be read, taken as long ago).
    pub pending_for: Option<Duration>,
}

impl CreateRecord {
    pub fn of(obj: &ZillizCluster, now: jiff::Timestamp) -> CreateRecord {
        let intent = obj.annotations().get(CREATE_PENDING);
        CreateRecord {
            cluster_id: known_cluster_id(obj).map(str::to_string),
            pending: intent.is_some(),
            pending_for: intent
                .and_then(|v| v.trim().parse::<jiff::Timestamp>().ok())
                .and_then(|at| Duration::try_from(now.duration_since(at)).ok()),
        }
    }
}

/// The create request `spec` describes, or why it describes none (CEL refuses such specs; this
/// is the same check for objects written before the rules existed).
pub fn create_request(spec: &ZillizClusterSpec) -> Result<CreateCluster, String> {
    let need = |v: &Option<String>, field: &str| {
        v.as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
            .ok_or_else(|| {
                format!(
                    "creating a cluster needs spec.{field} (or set spec.clusterId to adopt one)"
                )
            })
    };
    let plan = spec
        .plan
        .ok_or("creating a cluster needs spec.plan (or set spec.clusterId to adopt one)")?;
    let plan = crate::api::ClusterPlan::from(plan);
    let (cu_type, cu_size) = if plan.is_dedicated() {
        let cu_size = spec
            .cu_size
            .ok_or("creating a dedicated cluster (Standard, Enterprise) needs spec.cuSize")?;
        (Some(need(&spec.cu_type, "cuType")?), Some(cu_size))
    } else {
        (None, None)
    };
    Ok(CreateCluster {
        cluster_name: need(&spec.cluster_name, "clusterName")?,
        project_id: need(&spec.project_id, "projectId")?,
        region_id: need(&spec.region_id, "regionId")?,
        plan,
        cu_type,
        cu_size,
    })
}

/// What happened so far in this reconcile pass of the create protocol, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CreateEvent {
    /// `ControlPlane::find_clusters_by_name` answered (a complete list, or an error).
    Found(Result<Vec<ClusterInfo>, ApiError>),
    /// The annotation [`CREATE_PENDING`] was written, on the object as this pass read it.
    IntentRecorded,
    /// `ControlPlane::create_cluster` answered: the new cluster's id, or an error.
    Created(Result<String, ApiError>),
}

/// The next thing the create protocol needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClusterStep {
    /// The cluster is known ([`CreateRecord::cluster_id`]): nothing to create; observe it.
    Known(String),
    /// List the clusters (every page) and keep those named `clusterName` in `projectId`.
    FindByName,
    /// Write the annotation [`CREATE_PENDING`] (the time, RFC 3339), as an update that carries
    /// the `resourceVersion` of the object this pass read, so that it fails on a stale read;
    /// then run the protocol again with [`CreateEvent::IntentRecorded`].
    RecordIntent,
    /// Send the create; run the protocol again with its answer.
    Create,
    /// This is the object's cluster: record its id (annotation [`CLUSTER_ID`] and
    /// `status.clusterId`, `status.origin`), then remove [`CREATE_PENDING`]. `Created`: the
    /// answer of this pass's create (which alone holds the password).
    Adopt { cluster_id: String, origin: Origin },
    /// A create may have been sent and the cluster is not listed yet: poll again with the
    /// usual backoff (`Synced=False`, in progress).
    Wait(String),
    /// Cannot be decided without a person: `Synced=False`/`CreatePending` with this message;
    /// never a second create. Lists go on being read (with backoff), so a cluster that shows up
    /// later is still adopted.
    CreatePending(String),
    /// The API refused this pass's create itself, so nothing was created: remove
    /// [`CREATE_PENDING`] (as for `RecordIntent`, on the object this pass read) and report the
    /// error; a later pass may create again.
    Refused(ApiError),
    /// A list failed: report it like any failed call; the intent stays.
    Failed(ApiError),
}

/// How long after the intent was recorded a cluster missing from a complete list is waited for
/// (`Wait`) before [`ClusterStep::CreatePending`]: lists may lag behind creates.
pub const LIST_GRACE: Duration = Duration::from_secs(10 * 60);

/// Whether a failed create was refused by the API itself before it created anything: an
/// envelope code that says the request is wrong, the credentials are refused or the operation
/// is unsupported. A timeout, a reset, a 5xx or a gateway page (no envelope), an unknown code,
/// or a success without an id may all hide a created cluster. 80010 (the name is taken) made
/// nothing either, but says a cluster of that name exists: it is looked for by name.
pub fn refused_before_creating(e: &ApiError) -> bool {
    e.code.is_some()
        && !is_duplicate_cluster_name(e)
        && e.http_status.is_none_or(|s| s < 500)
        && matches!(
            e.class,
            ErrorClass::BadRequest
                | ErrorClass::Credentials
                | ErrorClass::Unsupported
                | ErrorClass::InvalidName
        )
}

/// The create protocol: which cluster this object manages, creating it at most once.
///
/// A pass reads the object once (`record`), then calls this again after each step with the
/// events so far; it is pure, so a restart simply starts a new pass from what the object
/// recorded.
///
/// - A known id (`spec.clusterId`, the annotation [`CLUSTER_ID`], `status.clusterId`) ends it.
/// - Otherwise the clusters named `clusterName` in `projectId` are looked for first: exactly one
///   (not `DELETING`/`DELETED`) is adopted, two or more stop at `CreatePending`.
/// - None, and no intent recorded: the intent is recorded, and only then, in the same pass, is
///   the create sent. An answer with an id is adopted.
/// - Once an intent is recorded (by an earlier pass, or a create in this pass whose answer was
///   lost), no create is ever sent again: the cluster is looked for by name; while it is
///   missing it is waited for (`Wait`, [`LIST_GRACE`] from the intent), then `CreatePending`.
///   A refusal by the API itself ([`refused_before_creating`]) created nothing: `Refused`.
///
/// What this assumes, and so why at most one create per object reaches the server:
/// 1. every create is sent by this function's `Create` step, which it gives only in a pass that
///    read the object without [`CREATE_PENDING`] and without an id, right after that pass wrote
///    the intent, and at most once per pass;
/// 2. the intent is written with the `resourceVersion` of the object the pass read, so a pass
///    working from a stale copy (an informer lagging behind the intent written by the pass
///    before) fails to write it and sends nothing;
/// 3. the intent is removed only together with, or after, recording the id (`Adopt`), or after
///    the API refused the create itself (`Refused`: nothing was created);
/// 4. annotations survive restarts and status wipes. An object restored from a backup older
///    than its intent can send one more create; the API's refusal of a duplicate name in a
///    project (80010) is then what stops a second cluster, and the list finds the first.
///
/// It assumes nothing of the list's freshness: a cluster created but not yet listed is never
/// taken for an absent one (that only delays the adoption).
pub fn create_once(
    record: &CreateRecord,
    want: &CreateCluster,
    events: &[CreateEvent],
) -> ClusterStep {
    if let Some(id) = &record.cluster_id {
        return ClusterStep::Known(id.clone());
    }
    let mut intent_here = false;
    let mut created: Option<&Result<String, ApiError>> = None;
    let mut listed: Option<&Result<Vec<ClusterInfo>, ApiError>> = None;
    for event in events {
        match event {
            CreateEvent::Found(found) => listed = Some(found),
            CreateEvent::IntentRecorded => intent_here = true,
            CreateEvent::Created(answer) => {
                created = Some(answer);
                // a list read before the create says nothing of what it made
                listed = None;
            }
        }
    }
    match created {
        Some(Ok(id)) => {
            return ClusterStep::Adopt {
                cluster_id: id.clone(),
                origin: Origin::Created,
            };
        }
        Some(Err(e)) if refused_before_creating(e) => return ClusterStep::Refused(e.clone()),
        _ => {}
    }
    // a create may have reached the server: an earlier pass's (the intent was there when this
    // pass read the object) or this pass's, whose answer was lost
    let may_exist = record.pending || created.is_some();
    let found = match listed {
        None => return ClusterStep::FindByName,
        Some(Err(e)) => return ClusterStep::Failed(e.clone()),
        Some(Ok(found)) => found,
    };
    let matches: Vec<&ClusterInfo> = found
        .iter()
        .filter(|c| {
            c.cluster_name.as_deref() == Some(want.cluster_name.as_str())
                && c.project_id.as_deref() == Some(want.project_id.as_str())
                && !matches!(
                    ClusterState::parse(&c.status),
                    ClusterState::Deleting | ClusterState::Deleted
                )
        })
        .collect();
    let (name, project) = (&want.cluster_name, &want.project_id);
    match matches.as_slice() {
        [one] => match &one.cluster_id {
            Some(id) => ClusterStep::Adopt {
                cluster_id: id.clone(),
                origin: Origin::Adopted,
            },
            None => ClusterStep::Failed(ApiError::new(
                ErrorClass::Unknown,
                format!(
                    "the cluster list names a cluster {name} in project {project} without its id"
                ),
            )),
        },
        [] if !may_exist && intent_here => ClusterStep::Create,
        [] if !may_exist => ClusterStep::RecordIntent,
        [] => {
            let why = match created {
                Some(Err(e)) if is_duplicate_cluster_name(e) => format!(
                    "the API refused the create because a cluster named {name} exists in project {project}, yet the list does not show it"
                ),
                Some(Err(e)) => format!(
                    "the create's answer was lost ({e}); the cluster may exist, but the list does not show it"
                ),
                _ => format!(
                    "a create of cluster {name} in project {project} may have been sent (annotation {CREATE_PENDING}), but the list does not show it"
                ),
            };
            let young = created.is_some() || record.pending_for.is_some_and(|d| d < LIST_GRACE);
            if young {
                ClusterStep::Wait(format!("{why} yet; looking again"))
            } else {
                ClusterStep::CreatePending(format!(
                    "{why}. No second create is sent. Check the Zilliz Cloud console: if the cluster exists, set spec.clusterId to its id; if it does not, remove the annotation {CREATE_PENDING} from this object to create it"
                ))
            }
        }
        many => {
            let ids: Vec<&str> = many
                .iter()
                .filter_map(|c| c.cluster_id.as_deref())
                .collect();
            ClusterStep::CreatePending(format!(
                "{} clusters are named {name} in project {project} ({}); set spec.clusterId to the one this object manages",
                many.len(),
                ids.join(", ")
            ))
        }
    }
}

fn suspended_on_purpose(plan: &Plan) -> bool {
    matches!(&plan.desired, super::Desired::Cluster(w) if w.desired_status == Some(DesiredStatus::Suspended))
}

/// One change to bring a cluster to its spec (see [`update_step`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClusterChange {
    Modify(Modify),
    Suspend,
    Resume,
}

/// The next change to make to the observed cluster, one at a time as the API requires
/// (`docs/zilliz-api.md`, "Creating and describing"), or `None`.
///
/// Only declared fields count (an undeclared `cuSize`, `replica` or `desiredStatus` is never
/// changed, so adopting a cluster makes no call), and a declared value equal to the observed
/// one makes no call; neither does an observation without the value. Resize and suspend only
/// a `RUNNING` cluster, resume only a `SUSPENDED` one: any other state (`CREATING`,
/// `MODIFYING`, `SUSPENDING`, ...) waits. Suspending comes before resizing; a suspended cluster
/// is resized after it was resumed.
pub fn update_step(spec: &WantCluster, observed: &ClusterInfo) -> Option<ClusterChange> {
    let differs = |want: Option<u32>, seen: Option<u32>| match (want, seen) {
        (Some(w), Some(s)) => w != s,
        _ => false,
    };
    match (ClusterState::parse(&observed.status), spec.desired_status) {
        (ClusterState::Running, Some(DesiredStatus::Suspended)) => Some(ClusterChange::Suspend),
        (ClusterState::Suspended, Some(DesiredStatus::Running)) => Some(ClusterChange::Resume),
        (ClusterState::Running, _) => {
            if differs(spec.cu_size, observed.cu_size) {
                spec.cu_size
                    .map(|n| ClusterChange::Modify(Modify::CuSize(n)))
            } else if differs(spec.replica, observed.replica) {
                spec.replica
                    .map(|n| ClusterChange::Modify(Modify::Replica(n)))
            } else {
                None
            }
        }
        _ => None,
    }
}

#[cfg(test)]
#[path = "cluster_create_tests.rs"]
mod create_tests;
