//! ZillizCluster: a Zilliz Cloud cluster. Its drop is asynchronous: accepted, then polled with
//! describes until the cluster is `DELETED`.

use super::{
    Address, Attempt, Call, ClusterState, Contains, Evidence, Managed, Observation, Observed, Plan,
    Refs, Reply, Script, Step, confirm_by_list, control_plane_base, explicit_not_found, non_empty,
};
use crate::{
    api::{ApiError, ErrorClass, Flavour},
    crd::{DeletionPolicy, ManagementPolicy, ZillizCluster, ZillizClusterSpec, ZillizStatus},
};
use kube::ResourceExt;

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
                    usable: state == ClusterState::Running,
                    detail: format!("cluster {id} is {state}"),
                    endpoint: info.connect_address.clone(),
                    cluster_state: Some(state),
                    facts: super::Facts::None,
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
