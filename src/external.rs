//! The I/O side of the kinds' protocols: makes each [`Call`] a protocol asks for against the
//! real API, until the protocol ends. What to call and what the answers mean is decided in
//! `kinds/`, without I/O.
//!
//! Drops are idempotent (a second drop answers "not found" or success), so a crash between a
//! drop and the finalizer removal is recovered by simply running the protocol again.

use crate::{
    api::{ApiError, Creates, ErrorClass, Modify},
    kinds::{
        Attempt, Call, Converged, Desired, Exchange, MAX_CALLS, Managed, Reply, Script, Step,
        converge as converge_protocol, learned_endpoint,
    },
    resolve::Target,
};

fn missing(what: &str) -> ApiError {
    ApiError::new(
        ErrorClass::Unknown,
        format!("no {what} is known for this call"),
    )
}

/// Makes one call against `target`. A data-plane call goes to the endpoint a describe of the
/// cluster gave earlier in `history`, else to the one known beforehand.
pub async fn execute(target: &Target, call: Call, history: &[Exchange]) -> Result<Reply, ApiError> {
    let cluster = || {
        let cp = target
            .control
            .as_ref()
            .ok_or_else(|| missing("control plane"))?;
        let id = target
            .plan
            .cluster_id
            .as_deref()
            .ok_or_else(|| missing("cluster id"))?;
        Ok::<_, ApiError>((cp, id))
    };
    let data = || {
        let d = target.data.as_ref().ok_or_else(|| missing("data plane"))?;
        let endpoint = match learned_endpoint(history) {
            Some(raw) => url::Url::parse(raw).map_err(|e| {
                ApiError::new(
                    ErrorClass::Unknown,
                    format!("the cluster's describe gave an endpoint that is not a URL ({e})"),
                )
            })?,
            None => d
                .endpoint
                .clone()
                .ok_or_else(|| missing("data-plane endpoint"))?,
        };
        let leaf = d.leaf.as_deref().unwrap_or_default();
        Ok::<_, ApiError>((d.at(endpoint), d.db.as_str(), d.collection.as_str(), leaf))
    };
    let done = |r: Result<(), ApiError>| r.map(|()| Reply::Done);
    match call {
        Call::DescribeCluster => {
            let (cp, id) = cluster()?;
            cp.describe_cluster(id).await.map(Reply::Cluster)
        }
        Call::ListClusters => {
            let (cp, _) = cluster()?;
            cp.list_cluster_ids().await.map(Reply::Clusters)
        }
        Call::DropCluster => {
            let (cp, id) = cluster()?;
            done(cp.drop_cluster(id).await)
        }
        Call::HasCollection => {
            let (dp, db, coll, _) = data()?;
            dp.has_collection(db, coll).await.map(Reply::Has)
        }
        Call::DropCollection => {
            let (dp, db, coll, _) = data()?;
            done(dp.drop_collection(db, coll).await)
        }
        Call::ReleaseCollection => {
            let (dp, db, coll, _) = data()?;
            done(dp.release_collection(db, coll).await)
        }
        Call::HasPartition => {
            let (dp, db, coll, p) = data()?;
            dp.has_partition(db, coll, p).await.map(Reply::Has)
        }
        Call::ReleasePartition => {
            let (dp, db, coll, p) = data()?;
            done(dp.release_partition(db, coll, p).await)
        }
        Call::DropPartition => {
            let (dp, db, coll, p) = data()?;
            done(dp.drop_partition(db, coll, p).await)
        }
        Call::HasIndex => {
            let (dp, db, coll, i) = data()?;
            dp.has_index(db, coll, i).await.map(Reply::Has)
        }
        Call::DropIndex => {
            let (dp, db, coll, i) = data()?;
            done(dp.drop_index(db, coll, i).await)
        }
        Call::DescribeCollection => {
            let (dp, db, coll, _) = data()?;
            dp.describe_collection(db, coll)
                .await
                .map(|c| Reply::Collection(Box::new(c)))
        }
        Call::DescribeIndex => {
            let (dp, db, coll, i) = data()?;
            dp.describe_index(db, coll, i)
                .await
                .map(|i| Reply::Index(Box::new(i)))
        }
        Call::LoadCollection => {
            let (dp, db, coll, _) = data()?;
            done(dp.load_collection(db, coll).await)
        }
        Call::AlterCollection => {
            let (dp, db, coll, _) = data()?;
            let properties = alter_properties(&target.plan.desired)
                .ok_or_else(|| missing("property to alter"))?;
            done(dp.alter_collection(db, coll, properties).await)
        }
        Call::ResizeCluster | Call::ReplicateCluster => {
            let (cp, id) = cluster()?;
            let want = match &target.plan.desired {
                Desired::Cluster(want) => want,
                _ => return Err(missing("declared size")),
            };
            let change = match call {
                Call::ResizeCluster => want.cu_size.map(Modify::CuSize),
                _ => want.replica.map(Modify::Replica),
            }
            .ok_or_else(|| missing("declared size"))?;
            done(cp.modify_cluster(id, change).await)
        }
        Call::SuspendCluster => {
            let (cp, id) = cluster()?;
            done(cp.suspend_cluster(id).await)
        }
        Call::ResumeCluster => {
            let (cp, id) = cluster()?;
            done(cp.resume_cluster(id).await)
        }
        Call::CreateCollection | Call::CreatePartition | Call::CreateIndex => {
            let what = match call {
                Call::CreateCollection => Creates::Collection,
                Call::CreatePartition => Creates::Partition,
                _ => Creates::Index,
            };
            let (dp, ..) = data()?;
            let body = target
                .data
                .as_ref()
                .and_then(|d| d.create_body.clone())
                .ok_or_else(|| missing("create request"))?;
            done(dp.create(what, body).await)
        }
    }
}

/// The properties an [`Call::AlterCollection`] sets: the spec's, as the server names them
/// (`docs/zilliz-api.md`: `collections/alter_properties`).
fn alter_properties(desired: &Desired) -> Option<serde_json::Value> {
    match desired {
        Desired::Collection(want) => want
            .ttl_seconds
            .map(|ttl| serde_json::json!({"collection.ttl.seconds": ttl})),
        _ => None,
    }
}

/// Runs `protocol` against the real API until it ends (at most [`MAX_CALLS`] calls).
async fn drive<T>(
    target: &Target,
    protocol: impl Fn(&mut Script<'_>) -> Result<T, Step>,
) -> Result<T, ApiError> {
    let mut history: Vec<Exchange> = Vec::new();
    loop {
        match protocol(&mut Script::new(&history)) {
            Ok(done) => return Ok(done),
            Err(Step(call)) if history.len() < MAX_CALLS => {
                let reply = execute(target, call, &history).await;
                history.push((call, reply));
            }
            Err(Step(call)) => {
                return Err(ApiError::new(
                    ErrorClass::Unknown,
                    format!("gave up after {MAX_CALLS} calls (the next would have been {call:?})"),
                ));
            }
        }
    }
}

/// Drops the resource of an object of kind `K`.
pub async fn drop<K: Managed>(target: &Target) -> Attempt {
    drive(target, |s| K::drop_protocol(&target.plan, s))
        .await
        .unwrap_or_else(Attempt::Failed)
}

/// Observes the resource of a live object of kind `K`, and creates it when absent and the plan
/// says how.
pub async fn converge<K: Managed>(target: &Target) -> Converged {
    drive(target, |s| converge_protocol::<K>(&target.plan, s))
        .await
        .unwrap_or_else(|e| Converged::seen(Err(e)))
}
