//! What the operator does to an external resource: observe it, and drop it.
//!
//! Drops are idempotent (a second drop answers "not found", which counts as done), so a crash
//! between a drop and the finalizer removal is recovered by simply dropping again.

use crate::{
    api::{ApiError, ControlPlane, ErrorClass},
    resolve::Target,
};

/// What an observation found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Observed {
    /// The resource exists. For clusters, `usable` is false unless it is RUNNING.
    Exists {
        usable: bool,
        detail: String,
        endpoint: Option<String>,
        cluster_status: Option<String>,
    },
    /// The resource does not exist.
    Absent { detail: String },
}

/// Checks that the external resource exists.
pub async fn observe(target: &Target) -> Result<Observed, ApiError> {
    let exists = |found: bool, what: String| {
        if found {
            Observed::Exists {
                usable: true,
                detail: format!("{what} exists"),
                endpoint: None,
                cluster_status: None,
            }
        } else {
            Observed::Absent {
                detail: format!("{what} does not exist"),
            }
        }
    };
    match target {
        Target::Cluster { cp, cluster_id } => match cp.describe_cluster(cluster_id).await {
            Ok(info) if info.status == "DELETED" => Ok(Observed::Absent {
                detail: format!("cluster {cluster_id} is DELETED"),
            }),
            Ok(info) => Ok(Observed::Exists {
                usable: info.status == "RUNNING",
                detail: format!("cluster {cluster_id} is {}", info.status),
                endpoint: info.connect_address,
                cluster_status: Some(info.status),
            }),
            Err(e)
                if matches!(
                    e.class,
                    ErrorClass::NotFound | ErrorClass::NotFoundOrForbidden
                ) =>
            {
                Ok(Observed::Absent {
                    detail: format!("cluster {cluster_id}: {}", e.message),
                })
            }
            Err(e) => Err(e),
        },
        Target::Collection { dp, db, collection } => {
            let found = dp.has_collection(db, collection).await?;
            Ok(exists(found, format!("collection {db}.{collection}")))
        }
        Target::Partition {
            dp,
            db,
            collection,
            partition,
        } => {
            let found = match dp.has_partition(db, collection, partition).await {
                Err(e) if e.class == ErrorClass::NotFound => false, // the collection is gone
                other => other?,
            };
            Ok(exists(
                found,
                format!("partition {partition} of {db}.{collection}"),
            ))
        }
        Target::Index {
            dp,
            db,
            collection,
            index,
            ..
        } => {
            let found = dp.has_index(db, collection, index).await?;
            Ok(exists(found, format!("index {index} of {db}.{collection}")))
        }
    }
}

/// How a drop ended, when it did not fail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DropOutcome {
    /// The API confirmed the drop.
    Dropped(String),
    /// The resource was already gone.
    AlreadyAbsent(String),
    /// The drop was accepted and completes asynchronously (clusters): poll again.
    InProgress(String),
}

/// "Not found or no permission" (Zilliz 80020) counts as gone only if the same credentials can
/// still list clusters and the cluster is not among them; otherwise it is a credentials problem.
async fn confirm_absent(
    cp: &ControlPlane,
    cluster_id: &str,
    ambiguous: ApiError,
) -> Result<DropOutcome, ApiError> {
    match cp.list_cluster_ids().await {
        Ok(ids) if !ids.iter().any(|i| i == cluster_id) => Ok(DropOutcome::AlreadyAbsent(format!(
            "cluster {cluster_id} does not exist (the API answered {} and the same credentials list clusters without it)",
            ambiguous.code.unwrap_or_default()
        ))),
        Ok(_) => Err(ApiError {
            class: ErrorClass::Unknown,
            message: format!(
                "the API answered \"{}\" but still lists cluster {cluster_id}",
                ambiguous.message
            ),
            ..ambiguous
        }),
        Err(list_err) => Err(ApiError {
            class: ErrorClass::Credentials,
            message: format!(
                "the API answered \"{}\" (not found, or no permission) and listing clusters with the same credentials failed ({list_err}); not treating the cluster as gone",
                ambiguous.message
            ),
            ..ambiguous
        }),
    }
}

fn gone(e: &ApiError) -> bool {
    matches!(e.class, ErrorClass::NotFound | ErrorClass::InvalidName)
}

/// Drops the external resource. `accepted`: an asynchronous drop was already accepted earlier,
/// so only poll.
pub async fn drop(target: &Target, accepted: bool) -> Result<DropOutcome, ApiError> {
    match target {
        Target::Cluster { cp, cluster_id } => {
            if !accepted {
                match cp.drop_cluster(cluster_id).await {
                    Ok(()) => {}
                    Err(e) if gone(&e) => {
                        return Ok(DropOutcome::AlreadyAbsent(format!(
                            "cluster {cluster_id}: {}",
                            e.message
                        )));
                    }
                    Err(e) if e.class == ErrorClass::NotFoundOrForbidden => {
                        return confirm_absent(cp, cluster_id, e).await;
                    }
                    Err(e) => return Err(e),
                }
                return Ok(DropOutcome::InProgress(format!(
                    "the control plane accepted the drop of cluster {cluster_id}; waiting for DELETED"
                )));
            }
            match cp.describe_cluster(cluster_id).await {
                Ok(info) if info.status == "DELETED" => Ok(DropOutcome::Dropped(format!(
                    "cluster {cluster_id} is DELETED (it stays in the recycle bin for 30 days)"
                ))),
                Ok(info) => Ok(DropOutcome::InProgress(format!(
                    "cluster {cluster_id} is {}; waiting for DELETED",
                    info.status
                ))),
                Err(e) if gone(&e) => Ok(DropOutcome::Dropped(format!(
                    "cluster {cluster_id} is gone: {}",
                    e.message
                ))),
                Err(e) if e.class == ErrorClass::NotFoundOrForbidden => {
                    confirm_absent(cp, cluster_id, e).await.map(|o| match o {
                        DropOutcome::AlreadyAbsent(m) => DropOutcome::Dropped(m),
                        other => other,
                    })
                }
                Err(e) => Err(e),
            }
        }
        Target::Collection { dp, db, collection } => {
            match dp.drop_collection(db, collection).await {
                Ok(()) => Ok(DropOutcome::Dropped(format!(
                    "collection {db}.{collection} dropped"
                ))),
                Err(e) if gone(&e) => Ok(DropOutcome::AlreadyAbsent(format!(
                    "collection {db}.{collection}: {}",
                    e.message
                ))),
                Err(e) => Err(e),
            }
        }
        Target::Partition {
            dp,
            db,
            collection,
            partition,
        } => {
            // The seed page: a partition must be released before it can be dropped.
            match dp.release_partition(db, collection, partition).await {
                Ok(()) => {}
                Err(e) if gone(&e) => {
                    return Ok(DropOutcome::AlreadyAbsent(format!(
                        "partition {partition} of {db}.{collection}: {}",
                        e.message
                    )));
                }
                Err(e) => return Err(e),
            }
            match dp.drop_partition(db, collection, partition).await {
                Ok(()) => Ok(DropOutcome::Dropped(format!(
                    "partition {partition} of {db}.{collection} released and dropped"
                ))),
                Err(e) if gone(&e) => Ok(DropOutcome::AlreadyAbsent(format!(
                    "partition {partition} of {db}.{collection}: {}",
                    e.message
                ))),
                Err(e) => Err(e),
            }
        }
        Target::Index {
            dp,
            db,
            collection,
            index,
            release_collection,
        } => {
            let mut released = false;
            loop {
                match dp.drop_index(db, collection, index).await {
                    Ok(()) => {
                        return Ok(DropOutcome::Dropped(format!(
                            "index {index} of {db}.{collection} dropped{}",
                            if released {
                                " (the collection was released first)"
                            } else {
                                ""
                            }
                        )));
                    }
                    Err(e) if gone(&e) => {
                        return Ok(DropOutcome::AlreadyAbsent(format!(
                            "index {index} of {db}.{collection}: {}",
                            e.message
                        )));
                    }
                    // Never release a serving collection unless the spec allows it.
                    Err(e)
                        if e.class == ErrorClass::NeedsRelease
                            && *release_collection
                            && !released =>
                    {
                        dp.release_collection(db, collection).await?;
                        released = true;
                    }
                    Err(e) => return Err(e),
                }
            }
        }
    }
}
