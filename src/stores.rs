//! The operator's caches of its four kinds, and the questions answered from them: who names a
//! Secret, and who else names the same external resource.

use crate::{
    crd::{ZillizCluster, ZillizCollection, ZillizIndex, ZillizPartition},
    resolve::{Address, CollectionLoc, CollectionSource, Host, Managed, collection_loc_of},
};
use kube::{
    ResourceExt,
    runtime::reflector::{ObjectRef, Store},
};
use std::sync::Arc;

/// The reflector stores of the four kinds.
#[derive(Clone)]
pub struct Stores {
    pub clusters: Store<ZillizCluster>,
    pub collections: Store<ZillizCollection>,
    pub partitions: Store<ZillizPartition>,
    pub indexes: Store<ZillizIndex>,
}

fn secret_users_in<K: Managed>(store: &Store<K>, ns: &str, name: &str) -> (usize, usize) {
    let mut all = 0;
    let mut deleting = 0;
    for o in store.state() {
        if o.namespace().as_deref() == Some(ns) && o.secret_names().contains(&name) {
            all += 1;
            if o.meta().deletion_timestamp.is_some() {
                deleting += 1;
            }
        }
    }
    (all, deleting)
}

/// Where a collection is, as a key that is equal for two specs naming the same collection.
fn collection_key(loc: &CollectionLoc, ns: &str, stores: &Stores) -> Option<String> {
    let host = match &loc.host {
        Host::Connection { endpoint, .. } => endpoint.to_string(),
        Host::ClusterRef(name) => {
            let cluster = stores.clusters.get(&ObjectRef::new(name).within(ns))?;
            match cluster.address().ok()? {
                Address::Cluster {
                    base, cluster_id, ..
                } => format!("zilliz:{base}{cluster_id}"),
                _ => return None,
            }
        }
    };
    Some(format!("{host}|{}|{}", loc.db, loc.collection))
}

fn source_key(source: &CollectionSource, ns: &str, stores: &Stores) -> Option<String> {
    match source {
        CollectionSource::Direct(loc) => collection_key(loc, ns, stores),
        CollectionSource::Object(name) => {
            let coll = stores.collections.get(&ObjectRef::new(name).within(ns))?;
            collection_key(&collection_loc_of(&coll.spec).ok()?, ns, stores)
        }
    }
}

impl Stores {
    /// Objects naming the Secret `ns/name`, and how many of them are being deleted.
    pub fn secret_users(&self, ns: &str, name: &str) -> (usize, usize) {
        [
            secret_users_in(&self.clusters, ns, name),
            secret_users_in(&self.collections, ns, name),
            secret_users_in(&self.partitions, ns, name),
            secret_users_in(&self.indexes, ns, name),
        ]
        .into_iter()
        .fold((0, 0), |(a, d), (a2, d2)| (a + a2, d + d2))
    }

    /// Objects of ours in `ns` that live in the ZillizCluster `cluster`: collections naming it,
    /// and partitions and indexes naming it or a collection that does. `kind/name`, sorted.
    pub fn cluster_dependents(&self, ns: &str, cluster: &str) -> Vec<String> {
        let collections: Vec<Arc<ZillizCollection>> = self
            .collections
            .state()
            .into_iter()
            .filter(|c| c.namespace().as_deref() == Some(ns))
            .filter(|c| {
                c.spec
                    .cluster_ref
                    .as_ref()
                    .is_some_and(|r| r.name == cluster)
            })
            .collect();
        let names_cluster = |addr: &crate::crd::CollectionAddress| {
            addr.cluster_ref.as_ref().is_some_and(|r| r.name == cluster)
                || addr
                    .collection_ref
                    .as_ref()
                    .is_some_and(|r| collections.iter().any(|c| c.name_any() == r.name))
        };
        let mut out: Vec<String> = collections
            .iter()
            .map(|c| format!("ZillizCollection/{}", c.name_any()))
            .collect();
        out.extend(
            self.partitions
                .state()
                .into_iter()
                .filter(|p| {
                    p.namespace().as_deref() == Some(ns) && names_cluster(&p.spec.collection)
                })
                .map(|p| format!("ZillizPartition/{}", p.name_any())),
        );
        out.extend(
            self.indexes
                .state()
                .into_iter()
                .filter(|i| {
                    i.namespace().as_deref() == Some(ns) && names_cluster(&i.spec.collection)
                })
                .map(|i| format!("ZillizIndex/{}", i.name_any())),
        );
        out.sort();
        out
    }

    /// The Secret an object reads its credentials from: its own, or its cluster's or
    /// collection's. `None` when it cannot be told from the caches.
    pub fn credential_secret<K: Managed>(&self, obj: &K) -> Option<String> {
        let ns = obj.namespace()?;
        let cluster_secret = |name: &str| {
            self.clusters
                .get(&ObjectRef::new(name).within(&ns))
                .map(|c| c.spec.credentials_secret_ref.name.clone())
        };
        let loc_secret = |loc: &CollectionLoc| match &loc.host {
            Host::Connection { secret, .. } => Some(secret.name.clone()),
            Host::ClusterRef(name) => cluster_secret(name),
        };
        match obj.address().ok()? {
            Address::Cluster { secret, .. } => Some(secret.name),
            Address::Collection(loc) => loc_secret(&loc),
            Address::Partition { collection, .. } | Address::Index { collection, .. } => {
                match collection {
                    CollectionSource::Direct(loc) => loc_secret(&loc),
                    CollectionSource::Object(name) => {
                        let coll = self.collections.get(&ObjectRef::new(&name).within(&ns))?;
                        loc_secret(&collection_loc_of(&coll.spec).ok()?)
                    }
                }
            }
        }
    }

    /// A key equal for two objects that name the same external resource; `None` when it cannot
    /// be told (invalid spec, referenced object not cached).
    pub fn identity<K: Managed>(&self, obj: &K) -> Option<String> {
        let ns = obj.namespace()?;
        Some(match obj.address().ok()? {
            Address::Cluster {
                base, cluster_id, ..
            } => format!("cluster|{base}{cluster_id}"),
            Address::Collection(loc) => format!("collection|{}", collection_key(&loc, &ns, self)?),
            Address::Partition {
                collection,
                partition,
            } => format!(
                "partition|{}|{partition}",
                source_key(&collection, &ns, self)?
            ),
            Address::Index {
                collection, index, ..
            } => format!("index|{}|{index}", source_key(&collection, &ns, self)?),
        })
    }

    /// The other objects of the same kind (any namespace) that name the same external resource.
    pub fn sharers<K: Managed>(&self, obj: &K) -> Vec<Arc<K>> {
        let Some(key) = self.identity(obj) else {
            return Vec::new();
        };
        let uid = obj.uid();
        K::cache(self)
            .state()
            .into_iter()
            // cheap prefilter before computing identities
            .filter(|o| o.external_name() == obj.external_name() && o.uid() != uid)
            .filter(|o| self.identity(o.as_ref()).as_ref() == Some(&key))
            .collect()
    }
}

/// Which of several objects naming one external resource manages it: the oldest (then by
/// namespace and name, so every replica agrees).
pub fn owner_order<K: Managed>(obj: &K) -> (Option<jiff::Timestamp>, String, String) {
    (
        obj.meta().creation_timestamp.as_ref().map(|t| t.0),
        obj.namespace().unwrap_or_default(),
        obj.name_any(),
    )
}
