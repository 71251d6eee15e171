//! ZillizCollection: a Milvus collection, in a ZillizCluster or behind a direct connection.

use super::desired::{LoadWanted, WantCollection, WantField};
use super::{
    Address, Attempt, Call, CollectionLoc, Contains, Creatable, Desired, Facts, Managed,
    Observation, Observed, Plan, Refs, Reply, Script, Step, check_container, data_drop_error,
    explicit_not_found, host_of, non_empty,
};
use crate::{
    api::{ApiError, ErrorClass, Flavour},
    crd::{
        DeletionPolicy, LoadStateSpec, ManagementPolicy, ZillizCollection, ZillizCollectionSpec,
        ZillizStatus,
    },
};
use serde_json::{Map, Value, json};

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

    /// A describe: the collection's fields, load state, shards and properties. A missing
    /// collection (100, or v1's not-found) is absent; a missing database (800) is an error the
    /// caller tells apart.
    fn observe_protocol(plan: &Plan, s: &mut Script<'_>) -> Result<Observation, Step> {
        Ok(match s.ask(Call::DescribeCollection)? {
            Ok(Reply::Collection(info)) => Ok(Observed::Exists {
                usable: true,
                detail: format!("{} exists", plan.what),
                endpoint: None,
                cluster_state: None,
                facts: Facts::Collection(info.clone()),
            }),
            Ok(other) => Err(ApiError::new(
                ErrorClass::Unknown,
                format!("a collection describe answered {other:?}"),
            )),
            Err(e) if explicit_not_found(e) && e.code != Some(800) => Ok(Observed::Absent {
                detail: format!("{} does not exist", plan.what),
            }),
            Err(e) => Err(e.clone()),
        })
    }

    fn desired(&self) -> Desired {
        desired(&self.spec)
    }

    fn create_request(&self, db: &str, collection: &str, flavour: Flavour) -> Creatable {
        create_request(&self.spec, db, collection, flavour)
    }
}

/// What a collection spec declares. REST v1 creates with the server's defaults and has no
/// parameters, load or alter: only the schema's dimension is compared there.
pub fn desired(spec: &ZillizCollectionSpec) -> Desired {
    let v2 = Flavour::from(spec.api_version) == Flavour::V2;
    let params = spec.params.as_ref().filter(|_| v2);
    Desired::Collection(WantCollection {
        fields: spec.schema.as_ref().map(|schema| {
            schema
                .fields
                .iter()
                .map(|f| WantField {
                    name: f.name.clone(),
                    data_type: f.data_type.as_str().to_string(),
                    primary: f.is_primary,
                    partition_key: f.is_partition_key,
                    dim: f.dim,
                    max_length: f.max_length,
                })
                .collect()
        }),
        quick_dimension: spec.quick_setup.as_ref().map(|q| {
            let vector = q.vector_field_name.as_deref().unwrap_or("vector");
            (q.dimension, vector.to_string())
        }),
        shards_num: params.and_then(|p| p.shards_num),
        ttl_seconds: params.and_then(|p| p.ttl_seconds),
        load: spec.load_state.filter(|_| v2).map(|l| match l {
            LoadStateSpec::Loaded => LoadWanted::Loaded,
            LoadStateSpec::Released => LoadWanted::Released,
        }),
    })
}

/// The create request of a collection spec (`docs/zilliz-api.md`, "Creating and describing"):
/// v2 from `schema` or `quickSetup` with `params`; v1 from `quickSetup` only.
pub fn create_request(
    spec: &ZillizCollectionSpec,
    db: &str,
    collection: &str,
    flavour: Flavour,
) -> Creatable {
    let mut body = Map::new();
    body.insert("dbName".into(), json!(db));
    body.insert("collectionName".into(), json!(collection));
    if let Some(d) = &spec.description {
        body.insert("description".into(), json!(d));
    }
    match (&spec.schema, &spec.quick_setup, flavour) {
        (Some(_), Some(_), _) => return Creatable::No("set schema or quickSetup, not both"),
        (None, None, _) => {
            return Creatable::No(
                "set spec.quickSetup (or, with apiVersion v2, spec.schema) to let the operator create it",
            );
        }
        (Some(_), None, Flavour::V1) => {
            return Creatable::No("REST v1 can only create from quickSetup");
        }
        (Some(schema), None, Flavour::V2) => {
            let fields: Vec<Value> = schema
                .fields
                .iter()
                .map(|f| {
                    let mut params = Map::new();
                    if let Some(dim) = f.dim {
                        params.insert("dim".into(), json!(dim));
                    }
                    if let Some(len) = f.max_length {
                        params.insert("max_length".into(), json!(len));
                    }
                    let mut field = json!({
                        "fieldName": f.name,
                        "dataType": f.data_type.as_str(),
                        "isPrimary": f.is_primary,
                    });
                    if f.is_partition_key {
                        field["isPartitionKey"] = json!(true);
                    }
                    if !params.is_empty() {
                        field["elementTypeParams"] = Value::Object(params);
                    }
                    field
                })
                .collect();
            body.insert(
                "schema".into(),
                json!({
                    "autoID": schema.auto_id,
                    "enableDynamicField": schema.enable_dynamic_field,
                    "fields": fields,
                }),
            );
        }
        (None, Some(q), flavour) => {
            body.insert("dimension".into(), json!(q.dimension));
            if let Some(m) = &q.metric_type {
                body.insert("metricType".into(), json!(m));
            }
            let (primary, vector) = match flavour {
                Flavour::V1 => ("primaryField", "vectorField"),
                Flavour::V2 => ("primaryFieldName", "vectorFieldName"),
            };
            if let Some(p) = &q.primary_field_name {
                body.insert(primary.into(), json!(p));
            }
            if let Some(v) = &q.vector_field_name {
                body.insert(vector.into(), json!(v));
            }
            if flavour == Flavour::V2 {
                if let Some(t) = q.id_type {
                    body.insert("idType".into(), json!(t));
                }
                if let Some(a) = q.auto_id {
                    body.insert("autoID".into(), json!(a));
                }
            }
        }
    }
    if flavour == Flavour::V2
        && let Some(p) = &spec.params
    {
        let mut params = Map::new();
        if let Some(c) = p.consistency_level {
            params.insert("consistencyLevel".into(), json!(c));
        }
        if let Some(n) = p.shards_num {
            params.insert("shardsNum".into(), json!(n));
        }
        if let Some(t) = p.ttl_seconds {
            params.insert("ttlSeconds".into(), json!(t));
        }
        if !params.is_empty() {
            body.insert("params".into(), Value::Object(params));
        }
    }
    Creatable::Yes(Call::CreateCollection, Value::Object(body))
}
