//! What a spec declares of its resource, and how it compares with what a describe shows. Pure.
//!
//! A comparison gives three things: the differences that cannot be changed in place (reported
//! as `SpecMismatch`, never "fixed" by dropping and recreating), the updates that bring mutable
//! fields to the spec (load or release, `collection.ttl.seconds`), and what is still on its way
//! (an index being built, a collection loading or waiting for its index).

use super::{Call, ClusterState, Facts};
use crate::api::{CollectionInfo, IndexInfo, IndexState, LoadState, Modify};
use crate::crd::{DesiredStatus, ZillizClusterSpec};
use std::fmt;

/// The load state a collection's spec asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadWanted {
    Loaded,
    Released,
}

/// One declared field of a custom schema.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WantField {
    pub name: String,
    pub data_type: String,
    pub primary: bool,
    pub partition_key: bool,
    pub dim: Option<i64>,
    pub max_length: Option<i64>,
}

/// What a ZillizCollection declares.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WantCollection {
    /// A custom schema's fields.
    pub fields: Option<Vec<WantField>>,
    /// A quick setup's vector dimension, and the name of its vector field (default `vector`).
    pub quick_dimension: Option<(i64, String)>,
    pub shards_num: Option<i64>,
    pub ttl_seconds: Option<i64>,
    pub load: Option<LoadWanted>,
}

/// What a ZillizIndex declares (each only when set).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WantIndex {
    pub field_name: Option<String>,
    pub index_type: Option<String>,
    pub metric_type: Option<String>,
}

/// What a ZillizCluster declares of what can change in place (each only when set: an
/// undeclared value is never changed, so adopting a cluster makes no call).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WantCluster {
    pub cu_size: Option<u32>,
    pub replica: Option<u32>,
    pub desired_status: Option<DesiredStatus>,
}

impl From<&ZillizClusterSpec> for WantCluster {
    fn from(spec: &ZillizClusterSpec) -> Self {
        WantCluster {
            cu_size: spec.cu_size,
            replica: spec.replica,
            desired_status: spec.desired_status,
        }
    }
}

/// What a spec declares beyond the resource's name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Desired {
    /// Nothing to compare (clusters, partitions).
    #[default]
    Nothing,
    Collection(WantCollection),
    Index(WantIndex),
    Cluster(WantCluster),
}

/// A declared value that differs from the observed one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Difference {
    /// The spec's field, as a user writes it: `schema.fields[title].maxLength`.
    pub field: String,
    pub declared: String,
    pub observed: String,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: declared {}, observed {}",
            self.field, self.declared, self.observed
        )
    }
}

/// A mutable difference and the call that removes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Update {
    pub call: Call,
    pub difference: Difference,
}

/// What is on its way and makes the resource not ready yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pending {
    /// The spec asks for `Loaded`, and the collection's vector fields have no index yet.
    IndexMissing,
    /// The collection is loading.
    Loading,
    /// The index is being built.
    Building { indexed_rows: i64, total_rows: i64 },
    /// The index build failed (the server's reason).
    BuildFailed(String),
}

/// What [`Desired::assess`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Found {
    pub differences: Vec<Difference>,
    pub updates: Vec<Update>,
    pub pending: Option<Pending>,
}

/// What a converge run found and did beyond observing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Assessment {
    /// Declared values that differ from the observed ones and were not brought in line: they
    /// cannot change in place, or `managementPolicies` do not allow `Update`.
    pub differences: Vec<Difference>,
    /// What this run changed to match the spec.
    pub updated: Vec<Difference>,
    pub pending: Option<Pending>,
    /// An update call failed (the rest were not tried).
    pub failed: Option<crate::api::ApiError>,
}

fn diff(
    field: impl Into<String>,
    declared: impl fmt::Display,
    observed: impl fmt::Display,
) -> Difference {
    Difference {
        field: field.into(),
        declared: declared.to_string(),
        observed: observed.to_string(),
    }
}

fn shown<T: fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "unset".to_string(), |v| v.to_string())
}

impl Desired {
    /// Compares the declaration with what a describe showed. A describe that showed nothing
    /// (`Facts::None`) compares equal: no reading, no claim.
    pub fn assess(&self, facts: &Facts) -> Found {
        match (self, facts) {
            (Desired::Collection(want), Facts::Collection(seen)) => collection(want, seen),
            (Desired::Index(want), Facts::Index(seen)) => index(want, seen),
            (Desired::Cluster(want), Facts::Cluster(seen)) => cluster(want, seen),
            _ => Found::default(),
        }
    }
}

fn collection(want: &WantCollection, seen: &CollectionInfo) -> Found {
    let mut found = Found::default();
    let d = &mut found.differences;
    if let Some(fields) = &want.fields {
        for w in fields {
            let at = |what: &str| format!("schema.fields[{}].{what}", w.name);
            let Some(o) = seen.fields.iter().find(|o| o.name == w.name) else {
                d.push(diff(
                    format!("schema.fields[{}]", w.name),
                    &w.data_type,
                    "absent",
                ));
                continue;
            };
            if o.data_type != w.data_type {
                d.push(diff(at("dataType"), &w.data_type, &o.data_type));
            }
            if o.primary != w.primary {
                d.push(diff(at("isPrimary"), w.primary, o.primary));
            }
            if o.partition_key != w.partition_key {
                d.push(diff(at("isPartitionKey"), w.partition_key, o.partition_key));
            }
            if w.dim.is_some() && o.dim != w.dim {
                d.push(diff(at("dim"), shown(w.dim), shown(o.dim)));
            }
            if w.max_length.is_some() && o.max_length != w.max_length {
                d.push(diff(
                    at("maxLength"),
                    shown(w.max_length),
                    shown(o.max_length),
                ));
            }
        }
        // fields the server has and the spec does not (the dynamic field's `$meta` is internal)
        for o in &seen.fields {
            if !o.name.starts_with('$') && !fields.iter().any(|w| w.name == o.name) {
                d.push(diff(
                    format!("schema.fields[{}]", o.name),
                    "absent",
                    &o.data_type,
                ));
            }
        }
    }
    if let Some((dim, vector)) = &want.quick_dimension {
        let observed = seen
            .fields
            .iter()
            .find(|f| &f.name == vector)
            .or_else(|| seen.fields.iter().find(|f| f.is_vector()));
        match observed {
            Some(f) if f.dim == Some(*dim) => {}
            Some(f) => d.push(diff("quickSetup.dimension", dim, shown(f.dim))),
            None => d.push(diff("quickSetup.dimension", dim, "no vector field")),
        }
    }
    if let (Some(w), Some(o)) = (want.shards_num, seen.shards_num)
        && w != o
    {
        d.push(diff("params.shardsNum", w, o));
    }
    // an unset property is 0 (no expiry) to the server
    if let Some(w) = want.ttl_seconds {
        let o = seen.ttl_seconds.unwrap_or(0);
        if w != o {
            found.updates.push(Update {
                call: Call::AlterCollection,
                difference: diff("params.ttlSeconds", w, o),
            });
        }
    }
    match (want.load, &seen.load) {
        (Some(LoadWanted::Loaded), LoadState::Loaded) => {}
        (Some(LoadWanted::Loaded), LoadState::Loading) => found.pending = Some(Pending::Loading),
        // the server refuses to load a collection whose vector fields have no index
        (Some(LoadWanted::Loaded), _) if seen.indexed_fields.is_empty() => {
            found.pending = Some(Pending::IndexMissing)
        }
        (Some(LoadWanted::Loaded), other) => found.updates.push(Update {
            call: Call::LoadCollection,
            difference: diff("loadState", "Loaded", other.as_str()),
        }),
        (Some(LoadWanted::Released), LoadState::Loaded | LoadState::Loading) => {
            found.updates.push(Update {
                call: Call::ReleaseCollection,
                difference: diff("loadState", "Released", seen.load.as_str()),
            })
        }
        _ => {}
    }
    found
}

/// One change at a time, as the API requires ([`super::cluster::update_step`]).
fn cluster(want: &WantCluster, seen: &crate::api::ClusterInfo) -> Found {
    use super::cluster::ClusterChange;
    let mut found = Found::default();
    let state = ClusterState::parse(&seen.status);
    if let Some(change) = super::cluster::update_step(want, seen) {
        let (call, difference) = match change {
            ClusterChange::Modify(Modify::CuSize(n)) => {
                (Call::ResizeCluster, diff("cuSize", n, shown(seen.cu_size)))
            }
            ClusterChange::Modify(Modify::Replica(n)) => (
                Call::ReplicateCluster,
                diff("replica", n, shown(seen.replica)),
            ),
            ClusterChange::Suspend => (
                Call::SuspendCluster,
                diff("desiredStatus", "Suspended", &state),
            ),
            ClusterChange::Resume => (
                Call::ResumeCluster,
                diff("desiredStatus", "Running", &state),
            ),
        };
        found.updates.push(Update { call, difference });
    }
    found
}

fn index(want: &WantIndex, seen: &IndexInfo) -> Found {
    let mut found = Found::default();
    let same = |w: &Option<String>, o: &str| w.as_deref().is_none_or(|w| w.eq_ignore_ascii_case(o));
    for (field, w, o) in [
        ("fieldName", &want.field_name, &seen.field_name),
        ("indexType", &want.index_type, &seen.index_type),
        ("metricType", &want.metric_type, &seen.metric_type),
    ] {
        // a describe that omits the value says nothing about it
        if !o.is_empty() && !same(w, o) {
            found
                .differences
                .push(diff(field, w.as_deref().unwrap_or_default(), o));
        }
    }
    found.pending = match &seen.state {
        IndexState::Finished | IndexState::Other(_) => None,
        IndexState::InProgress => Some(Pending::Building {
            indexed_rows: seen.indexed_rows,
            total_rows: seen.total_rows,
        }),
        IndexState::Failed => Some(Pending::BuildFailed(seen.fail_reason.clone())),
    };
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::FieldInfo;

    fn field(name: &str, data_type: &str, dim: Option<i64>, max_length: Option<i64>) -> FieldInfo {
        FieldInfo {
            name: name.into(),
            data_type: data_type.into(),
            primary: name == "id",
            partition_key: false,
            dim,
            max_length,
        }
    }

    fn want_field(
        name: &str,
        data_type: &str,
        dim: Option<i64>,
        max_length: Option<i64>,
    ) -> WantField {
        WantField {
            name: name.into(),
            data_type: data_type.into(),
            primary: name == "id",
            partition_key: false,
            dim,
            max_length,
        }
    }

    fn seen() -> CollectionInfo {
        CollectionInfo {
            description: None,
            auto_id: Some(false),
            enable_dynamic_field: Some(true),
            fields: vec![
                field("id", "Int64", None, None),
                field("title", "VarChar", None, Some(256)),
                field("vector", "FloatVector", Some(768), None),
            ],
            indexed_fields: vec![],
            load: LoadState::NotLoad,
            shards_num: Some(1),
            consistency_level: Some("Bounded".into()),
            ttl_seconds: None,
        }
    }

    #[test]
    fn each_schema_difference_is_listed_with_declared_and_observed() {
        let want = WantCollection {
            fields: Some(vec![
                want_field("id", "Int64", None, None),
                want_field("title", "VarChar", None, Some(512)),
                want_field("vector", "FloatVector", Some(1024), None),
                want_field("tenant", "VarChar", None, Some(64)),
            ]),
            shards_num: Some(2),
            ..WantCollection::default()
        };
        let found = collection(&want, &seen());
        let shown: Vec<String> = found.differences.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "schema.fields[title].maxLength: declared 512, observed 256",
                "schema.fields[vector].dim: declared 1024, observed 768",
                "schema.fields[tenant]: declared VarChar, observed absent",
                "params.shardsNum: declared 2, observed 1",
            ]
        );
        assert!(
            found.updates.is_empty(),
            "immutable differences are never updated"
        );
    }

    #[test]
    fn an_equal_declaration_finds_nothing_to_do() {
        let mut loaded = seen();
        loaded.load = LoadState::Loaded;
        loaded.indexed_fields = vec!["vector".into()];
        let want = WantCollection {
            fields: Some(vec![
                want_field("id", "Int64", None, None),
                want_field("title", "VarChar", None, Some(256)),
                want_field("vector", "FloatVector", Some(768), None),
            ]),
            quick_dimension: None,
            shards_num: Some(1),
            ttl_seconds: Some(0),
            load: Some(LoadWanted::Loaded),
        };
        assert_eq!(collection(&want, &loaded), Found::default());
    }

    #[test]
    fn load_state_and_ttl_are_updates_and_a_missing_index_waits() {
        let want = WantCollection {
            ttl_seconds: Some(3600),
            load: Some(LoadWanted::Loaded),
            ..WantCollection::default()
        };
        let found = collection(&want, &seen());
        assert_eq!(found.pending, Some(Pending::IndexMissing));
        assert_eq!(
            found.updates.iter().map(|u| u.call).collect::<Vec<_>>(),
            [Call::AlterCollection]
        );
        let mut indexed = seen();
        indexed.indexed_fields = vec!["vector".into()];
        let found = collection(&want, &indexed);
        assert_eq!(
            found.updates.iter().map(|u| u.call).collect::<Vec<_>>(),
            [Call::AlterCollection, Call::LoadCollection]
        );
        let mut loaded = indexed;
        loaded.load = LoadState::Loaded;
        let release = WantCollection {
            load: Some(LoadWanted::Released),
            ..WantCollection::default()
        };
        assert_eq!(
            collection(&release, &loaded).updates[0].call,
            Call::ReleaseCollection
        );
    }

    #[test]
    fn a_cluster_is_changed_one_declared_value_at_a_time() {
        let seen = crate::api::ClusterInfo {
            status: "RUNNING".into(),
            cu_size: Some(1),
            replica: Some(1),
            ..Default::default()
        };
        let want = WantCluster {
            cu_size: Some(2),
            replica: Some(3),
            desired_status: None,
        };
        let found = cluster(&want, &seen);
        assert_eq!(
            found.updates,
            [Update {
                call: Call::ResizeCluster,
                difference: diff("cuSize", 2, 1)
            }]
        );
        // nothing declared: adopting makes no call
        assert_eq!(cluster(&WantCluster::default(), &seen), Found::default());
        let suspend = WantCluster {
            desired_status: Some(DesiredStatus::Suspended),
            ..WantCluster::default()
        };
        assert_eq!(
            cluster(&suspend, &seen).updates[0].call,
            Call::SuspendCluster
        );
    }

    #[test]
    fn an_index_reports_its_build_and_a_different_type() {
        let seen = IndexInfo {
            field_name: "vector".into(),
            index_type: "IVF_FLAT".into(),
            metric_type: "COSINE".into(),
            state: IndexState::InProgress,
            indexed_rows: 40,
            total_rows: 100,
            fail_reason: String::new(),
        };
        let want = WantIndex {
            field_name: Some("vector".into()),
            index_type: Some("HNSW".into()),
            metric_type: Some("cosine".into()),
        };
        let found = index(&want, &seen);
        assert_eq!(found.differences, [diff("indexType", "HNSW", "IVF_FLAT")]);
        assert_eq!(
            found.pending,
            Some(Pending::Building {
                indexed_rows: 40,
                total_rows: 100
            })
        );
    }
}
