//! ZillizIndex: an index of a collection (data plane v2). The server refuses to drop an index
//! of a loaded collection; the operator releases a serving collection only when the spec says
//! so (`releaseCollectionBeforeDrop`).

use super::desired::WantIndex;
use super::{
    Address, Attempt, Call, Contains, Creatable, Desired, Evidence, Facts, Managed, Observation,
    Observed, Plan, Refs, Reply, Script, Step, address_refs, address_secrets, check_container,
    collection_source, data_drop_error, non_empty,
};
use crate::api::ApiError;
use crate::{
    api::{ErrorClass, Flavour},
    crd::{DeletionPolicy, ManagementPolicy, ZillizIndex, ZillizStatus},
};
use serde_json::json;

impl Managed for ZillizIndex {
    const LABEL: &'static str = "index";
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

    fn drop_protocol(plan: &Plan, s: &mut Script<'_>) -> Result<Attempt, Step> {
        if let Some(done) = check_container(plan, s)? {
            return Ok(done);
        }
        let mut released = false;
        loop {
            let e = match s.ask(Call::DropIndex)? {
                Ok(_) => {
                    let how = if released {
                        " (the collection was released first)"
                    } else {
                        ""
                    };
                    return Ok(Attempt::Dropped(format!("{} dropped{how}", plan.what)));
                }
                Err(e) => e,
            };
            if e.class != ErrorClass::NeedsRelease {
                return data_drop_error(plan, s, e, Call::HasIndex);
            }
            // Never release a serving collection unless the spec allows it. The server refuses
            // the drop of any index of a loaded collection, even one that does not exist (a
            // create it refused): a read tells.
            if !plan.release_collection || released {
                return Ok(match s.ask(Call::HasIndex)? {
                    Ok(Reply::Has(false)) => Attempt::Absent(
                        Evidence::ReadSaysAbsent,
                        format!(
                            "{} does not exist (the drop answered \"{e}\" and a read confirmed it)",
                            plan.what
                        ),
                    ),
                    _ => Attempt::Blocked(e.clone()),
                });
            }
            if let Err(r) = s.ask(Call::ReleaseCollection)? {
                return data_drop_error(plan, s, r, Call::HasIndex);
            }
            released = true;
        }
    }

    /// A describe: type, metric and build progress. Only "index not found" (700) says the
    /// index is absent; a missing collection (100) or database (800) is an error the caller
    /// tells apart.
    fn observe_protocol(plan: &Plan, s: &mut Script<'_>) -> Result<Observation, Step> {
        Ok(match s.ask(Call::DescribeIndex)? {
            Ok(Reply::Index(info)) => Ok(Observed::Exists {
                usable: true,
                detail: format!("{} exists", plan.what),
                endpoint: None,
                cluster_state: None,
                facts: Facts::Index(info.clone()),
            }),
            Ok(other) => Err(ApiError::new(
                ErrorClass::Unknown,
                format!("an index describe answered {other:?}"),
            )),
            Err(e) if e.class == ErrorClass::NotFound && e.code == Some(700) => {
                Ok(Observed::Absent {
                    detail: format!("{} does not exist", plan.what),
                })
            }
            Err(e) => Err(e.clone()),
        })
    }

    fn desired(&self) -> Desired {
        Desired::Index(WantIndex {
            field_name: self.spec.field_name.clone(),
            index_type: self.spec.index_type.clone(),
            metric_type: self.spec.metric_type.clone(),
        })
    }

    fn create_request(&self, db: &str, collection: &str, _: Flavour) -> Creatable {
        let Some(field) = &self.spec.field_name else {
            return Creatable::No(
                "set spec.fieldName (and indexType, metricType) to let the operator create it",
            );
        };
        let mut index = json!({
            "fieldName": field,
            "indexName": self.spec.index_name,
            "indexType": self.spec.index_type.as_deref().unwrap_or("AUTOINDEX"),
        });
        if let Some(m) = &self.spec.metric_type {
            index["metricType"] = json!(m);
        }
        if let Some(p) = &self.spec.params {
            index["params"] = json!(p);
        }
        Creatable::Yes(
            Call::CreateIndex,
            json!({"dbName": db, "collectionName": collection, "indexParams": [index]}),
        )
    }
}
