//! ZillizPartition: a partition of a collection (data plane v2). A partition is always released
//! before it is dropped (the server refuses to drop a loaded one).

use super::Creatable;
use super::{
    Address, Attempt, Call, Contains, Managed, Observation, Plan, Refs, Script, Step, address_refs,
    address_secrets, check_container, collection_source, data_drop_error, non_empty,
    observed_by_read,
};
use crate::{
    api::Flavour,
    crd::{DeletionPolicy, ManagementPolicy, ZillizPartition, ZillizStatus},
};
use serde_json::json;

impl Managed for ZillizPartition {
    const LABEL: &'static str = "partition";
    const CONTAINS: Contains = Contains::Nothing;
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

    fn drop_protocol(plan: &Plan, s: &mut Script<'_>) -> Result<Attempt, Step> {
        if let Some(done) = check_container(plan, s)? {
            return Ok(done);
        }
        if let Err(e) = s.ask(Call::ReleasePartition)? {
            return data_drop_error(plan, s, e, Call::HasPartition);
        }
        Ok(match s.ask(Call::DropPartition)? {
            Ok(_) => Attempt::Dropped(format!("{} released and dropped", plan.what)),
            Err(e) => data_drop_error(plan, s, e, Call::HasPartition)?,
        })
    }

    /// A partition is created from its name (the create of an existing one succeeds).
    fn create_request(&self, db: &str, collection: &str, _: Flavour) -> Creatable {
        Creatable::Yes(
            Call::CreatePartition,
            json!({"dbName": db, "collectionName": collection, "partitionName": self.spec.partition_name}),
        )
    }

    fn observe_protocol(plan: &Plan, s: &mut Script<'_>) -> Result<Observation, Step> {
        // a missing collection (or database) is an error here: the partition waits for it
        // (see `converge`), and its drop counts it as gone (see `drop_protocol`)
        Ok(observed_by_read(&plan.what, s.ask(Call::HasPartition)?))
    }
}
