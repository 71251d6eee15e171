//! ZillizCollection: a Milvus collection, in a ZillizCluster or behind a direct connection.

use super::{
    Address, Attempt, Call, CollectionLoc, Contains, Managed, Observation, Plan, Refs, Script,
    Step, check_container, data_drop_error, host_of, non_empty, observed_by_read,
};
use crate::crd::{
    DeletionPolicy, ManagementPolicy, ZillizCollection, ZillizCollectionSpec, ZillizStatus,
};

/// The collection a ZillizCollection spec names.
pub fn collection_loc_of(spec: &ZillizCollectionSpec) -> Result<CollectionLoc, String> {
    Ok(CollectionLoc {
        db: non_empty(&spec.db_name, "dbName")?,
        collection: non_empty(&spec.collection_name, "collectionName")?,
        host: host_of(&spec.cluster_ref, &spec.connection)?,
        flavour: spec.api_version.into(),
    })
}

impl Managed for ZillizCollection {
    const LABEL: &'static str = "collection";
    const CONTAINS: Contains = Contains::CollectionObjects;
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

    /// v2 answers a drop of a missing collection with success (the drop is idempotent), v1 with
    /// code 100; 1100 ("invalid parameter") is confirmed with a read.
    fn drop_protocol(plan: &Plan, s: &mut Script<'_>) -> Result<Attempt, Step> {
        if let Some(done) = check_container(plan, s)? {
            return Ok(done);
        }
        Ok(match s.ask(Call::DropCollection)? {
            Ok(_) => Attempt::Dropped(format!("{} dropped", plan.what)),
            Err(e) => data_drop_error(plan, s, e, Call::HasCollection)?,
        })
    }

    fn observe_protocol(plan: &Plan, s: &mut Script<'_>) -> Result<Observation, Step> {
        Ok(observed_by_read(&plan.what, s.ask(Call::HasCollection)?))
    }
}
