//! The operator's caches of its four kinds, and the questions answered from them: who names a
//! Secret, who lives in a cluster, and who else names the same external resource.
//!
//! Each cache is a reflector [`Store`] plus an index kept in step with it from the same watch
//! events, so that these questions cost the number of matching objects, not a scan of the
//! cache: during a teardown of N objects every reconcile asks at least one of them, and a scan
//! made the whole teardown O(N²).

use crate::{
    crd::{FINALIZER, ZillizCluster, ZillizCollection, ZillizIndex, ZillizPartition},
    kinds::{
        Address, CollectionLoc, CollectionSource, Contains, Host, Managed, Refs, collection_loc_of,
    },
};
use kube::{
    ResourceExt,
    runtime::{
        reflector::{self, ObjectRef, Store, store::Writer},
        watcher,
    },
};
use std::{
    collections::{BTreeSet, HashMap, HashSet},
    sync::{Arc, Mutex, RwLock},
};

/// A kind with a cache among the operator's [`Stores`].
pub trait Cached: Managed {
    fn cache(stores: &Stores) -> &Cache<Self>;
}

impl Cached for ZillizCluster {
    fn cache(stores: &Stores) -> &Cache<Self> {
        &stores.clusters
    }
}

impl Cached for ZillizCollection {
    fn cache(stores: &Stores) -> &Cache<Self> {
        &stores.collections
    }
}

impl Cached for ZillizPartition {
    fn cache(stores: &Stores) -> &Cache<Self> {
        &stores.partitions
    }
}

impl Cached for ZillizIndex {
    fn cache(stores: &Stores) -> &Cache<Self> {
        &stores.indexes
    }
}

/// What an object is found under in its cache's index.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Key {
    /// A cluster's id, in any namespace (clusters that may be the same one); for an object
    /// whose spec is invalid, its external name (it has no identity, so it shares nothing).
    Name(Arc<str>),
    /// A collection, partition or index addressed with a `connection` of its own: endpoint,
    /// database, collection and its own name, all from its spec, in any namespace.
    Direct(Arc<str>),
    /// One addressed through a ZillizCluster object: namespace, that object's name, then
    /// database, collection and its own name.
    ViaCluster(Arc<str>, Arc<str>, Arc<str>),
    /// A partition or index addressed through a ZillizCollection object: namespace, that
    /// object's name, its own name.
    ViaCollection(Arc<str>, Arc<str>, Arc<str>),
    /// A Secret it names directly: namespace, name.
    Secret(Arc<str>, Arc<str>),
    /// The same, counted only while the object is being deleted.
    SecretDeleting(Arc<str>, Arc<str>),
    /// The ZillizCluster object its spec refers to: namespace, name.
    Cluster(Arc<str>, Arc<str>),
    /// The ZillizCollection object its spec refers to: namespace, name.
    Collection(Arc<str>, Arc<str>),
}

fn keys_of<K: Managed>(obj: &K) -> Vec<Key> {
    let ns = obj.namespace().unwrap_or_default();
    let deleting = obj.meta().deletion_timestamp.is_some();
    let ns: Arc<str> = ns.into();
    let mut keys = vec![share_key(obj, &ns)];
    // the Secret it names, and the one it recorded for a drop without its referenced object
    let recorded = obj
        .zstatus()
        .and_then(|s| s.resolved.as_ref())
        .map(|r| r.credentials_secret_ref.name.as_str());
    let mut secrets = obj.secret_names();
    secrets.extend(recorded.filter(|r| !secrets.contains(r)));
    for secret in secrets {
        keys.push(Key::Secret(ns.clone(), secret.into()));
        if deleting {
            keys.push(Key::SecretDeleting(ns.clone(), secret.into()));
        }
    }
    let refs = obj.refs();
    keys.extend(refs.cluster.map(|c| Key::Cluster(ns.clone(), c.into())));
    keys.extend(
        refs.collection
            .map(|c| Key::Collection(ns.clone(), c.into())),
    );
    keys
}

/// The key of the objects that may name the same external resource as `obj`, from its spec
/// alone (those that do are then told apart by [`Stores::identity`]). Many objects share a
/// name (every index called `vector_idx`, a collection `documents` in every tenant's
/// namespace): the whole address keeps each key to the objects that may share.
fn share_key<K: Managed>(obj: &K, ns: &Arc<str>) -> Key {
    match place(obj) {
        Place::Collection(loc) => location_key(&loc, None, ns),
        Place::InCollection(CollectionSource::Direct(loc), leaf) => {
            location_key(&loc, Some(&leaf), ns)
        }
        Place::InCollection(CollectionSource::Object(name), leaf) => {
            Key::ViaCollection(ns.clone(), name.into(), leaf.into())
        }
        Place::Other => Key::Name(obj.external_name().into()),
    }
}

/// What a valid spec addresses, for finding who else addresses it.
enum Place {
    Collection(CollectionLoc),
    /// A partition or index: its collection, and its own name.
    InCollection(CollectionSource, String),
    /// A cluster, or an invalid spec.
    Other,
}

fn place<K: Managed>(obj: &K) -> Place {
    match obj.address() {
        Ok(Address::Collection(loc)) => Place::Collection(loc),
        Ok(
            Address::Partition {
                collection,
                partition: leaf,
            }
            | Address::Index {
                collection,
                index: leaf,
                ..
            },
        ) => Place::InCollection(collection, leaf),
        _ => Place::Other,
    }
}

/// Database, collection and (for a partition or index) its own name.
fn within(loc: &CollectionLoc, leaf: Option<&str>) -> Arc<str> {
    match leaf {
        Some(leaf) => format!("{}|{}|{leaf}", loc.db, loc.collection).into(),
        None => format!("{}|{}", loc.db, loc.collection).into(),
    }
}

/// The key of an object addressed by a collection location (and its own name in it).
fn location_key(loc: &CollectionLoc, leaf: Option<&str>, ns: &Arc<str>) -> Key {
    match &loc.host {
        Host::Connection { endpoint, .. } => {
            Key::Direct(format!("{endpoint}|{}", within(loc, leaf)).into())
        }
        Host::ClusterRef(cluster) => {
            Key::ViaCluster(ns.clone(), cluster.as_str().into(), within(loc, leaf))
        }
    }
}

/// Namespace and name only, for looking an object up in its store: the resourceVersion and uid
/// that `ObjectRef::from_obj` also copies take no part in comparing or hashing them.
fn slim_ref<K: Managed>(obj: &K) -> ObjectRef<K> {
    let name = obj.meta().name.as_deref().unwrap_or_default();
    match obj.meta().namespace.as_deref() {
        Some(ns) => ObjectRef::new(name).within(ns),
        None => ObjectRef::new(name),
    }
}

/// An object in the index: namespace and name, allocated once per object and shared by all
/// its entries (an `ObjectRef` is 120 bytes plus two strings of its own for each copy).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Id {
    ns: Arc<str>,
    name: Arc<str>,
}

impl Id {
    fn of<K: Managed>(obj: &K) -> Id {
        Id {
            ns: obj.meta().namespace.as_deref().unwrap_or_default().into(),
            name: obj.meta().name.as_deref().unwrap_or_default().into(),
        }
    }

    fn to_ref<K: Managed>(&self) -> ObjectRef<K> {
        ObjectRef::new(&self.name).within(&self.ns)
    }
}

/// The objects found under one key. Most keys (an object's external name) have one object,
/// and a set for each of them was most of the index's memory at 10,000 objects.
enum Members {
    One(Id),
    Many(HashSet<Id>),
}

impl Members {
    fn insert(&mut self, obj: Id) {
        match self {
            Members::One(one) if *one == obj => {}
            Members::One(one) => {
                let set = HashSet::from([one.clone(), obj]);
                *self = Members::Many(set);
            }
            Members::Many(set) => {
                set.insert(obj);
            }
        }
    }

    /// Removes `obj`; true when no object is left.
    fn remove(&mut self, obj: &Id) -> bool {
        match self {
            Members::One(one) => one == obj,
            Members::Many(set) => {
                set.remove(obj);
                set.is_empty()
            }
        }
    }

    fn len(&self) -> usize {
        match self {
            Members::One(_) => 1,
            Members::Many(set) => set.len(),
        }
    }

    fn refs<K: Managed>(&self) -> Vec<ObjectRef<K>> {
        match self {
            Members::One(one) => vec![one.to_ref()],
            Members::Many(set) => set.iter().map(Id::to_ref).collect(),
        }
    }
}

/// Each object's keys, and the objects under each key.
#[derive(Default)]
struct Entries {
    keys: HashMap<Id, Box<[Key]>>,
    by_key: HashMap<Key, Members>,
}

impl Entries {
    fn remove(&mut self, obj: &Id) {
        for key in self.keys.remove(obj).unwrap_or_default() {
            if let Some(members) = self.by_key.get_mut(&key)
                && members.remove(obj)
            {
                self.by_key.remove(&key);
            }
        }
    }

    fn insert(&mut self, obj: Id, keys: Vec<Key>) {
        self.remove(&obj);
        let mut kept = Vec::with_capacity(keys.len());
        for key in keys {
            // a key already in the index is shared, not held twice: 10,000 objects naming one
            // Secret hold one copy of its namespace and name
            match self.by_key.get_key_value(&key) {
                Some((shared, _)) => {
                    let shared = shared.clone();
                    if let Some(members) = self.by_key.get_mut(&shared) {
                        members.insert(obj.clone());
                    }
                    kept.push(shared);
                }
                None => {
                    self.by_key.insert(key.clone(), Members::One(obj.clone()));
                    kept.push(key);
                }
            }
        }
        self.keys.insert(obj, kept.into_boxed_slice());
    }
}

#[derive(Default)]
struct Index {
    live: Entries,
    /// The index of a re-list in progress (between `Init` and `InitDone`), built as its
    /// objects arrive and swapped in at the end, as kube's store does.
    relist: Option<Entries>,
    /// The first list is in. Before it, an object missing from the index may only not have
    /// been seen yet.
    synced: bool,
}

impl Index {
    fn apply<K: Managed>(&mut self, event: &watcher::Event<K>) {
        match event {
            watcher::Event::Apply(obj) => self.live.insert(Id::of(obj), keys_of(obj)),
            watcher::Event::Delete(obj) => self.live.remove(&Id::of(obj)),
            watcher::Event::Init => self.relist = Some(Entries::default()),
            watcher::Event::InitApply(obj) => {
                if let Some(relist) = &mut self.relist {
                    relist.insert(Id::of(obj), keys_of(obj));
                }
            }
            watcher::Event::InitDone => {
                if let Some(relist) = self.relist.take() {
                    self.live = relist;
                }
                self.synced = true;
            }
        }
    }
}

/// Identities (see [`Stores::identity`]) of objects that name their resource without a
/// reference to another object, by uid, with the generation they were computed at: objects
/// found under one key may still name different resources (another database or endpoint), and
/// finding who shares a resource compares the identity of each.
type Identities = Arc<Mutex<HashMap<String, (Option<i64>, Option<String>)>>>;

/// Objects whose cached copy may not show a write of ours yet, by uid: the resourceVersion
/// the write produced, or `None` for the removal of our finalizer (made by kube's
/// `finalizer()`, whose answer we do not see). An entry goes when the watch delivers that
/// version (or, for `None`, the object without our finalizer, or its deletion).
type Behind = Arc<Mutex<HashMap<String, Option<String>>>>;

/// A kind's cache: the reflector store and its index (see the module comment).
pub struct Cache<K: Managed> {
    store: Store<K>,
    index: Arc<RwLock<Index>>,
    identities: Identities,
    behind: Behind,
}

impl<K: Managed> Clone for Cache<K> {
    fn clone(&self) -> Self {
        Cache {
            store: self.store.clone(),
            index: self.index.clone(),
            identities: self.identities.clone(),
            behind: self.behind.clone(),
        }
    }
}

/// Feeds a [`Cache`] from watch events (what `reflect` does for a plain store).
pub struct CacheWriter<K: Managed> {
    writer: Writer<K>,
    index: Arc<RwLock<Index>>,
    identities: Identities,
    behind: Behind,
}

/// An empty cache and its writer.
pub fn cache<K: Managed>() -> (Cache<K>, CacheWriter<K>) {
    let (store, writer) = reflector::store();
    let index = Arc::new(RwLock::new(Index::default()));
    let identities = Identities::default();
    let behind = Behind::default();
    (
        Cache {
            store,
            index: index.clone(),
            identities: identities.clone(),
            behind: behind.clone(),
        },
        CacheWriter {
            writer,
            index,
            identities,
            behind,
        },
    )
}

impl<K: Managed> CacheWriter<K> {
    pub fn apply_watcher_event(&mut self, event: &watcher::Event<K>) {
        self.writer.apply_watcher_event(event);
        self.index
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .apply(event);
        let mut identities = self.identities.lock().unwrap_or_else(|p| p.into_inner());
        match event {
            watcher::Event::Delete(obj) => {
                identities.remove(&obj.uid().unwrap_or_default());
            }
            watcher::Event::InitDone => identities.clear(),
            _ => {}
        }
        drop(identities);
        let mut behind = self.behind.lock().unwrap_or_else(|p| p.into_inner());
        if behind.is_empty() {
            return;
        }
        match event {
            watcher::Event::Apply(obj) | watcher::Event::InitApply(obj) => {
                let uid = obj.uid().unwrap_or_default();
                let caught_up = match behind.get(&uid) {
                    None => false,
                    Some(Some(rv)) => obj.resource_version().as_ref() == Some(rv),
                    Some(None) => !obj.finalizers().iter().any(|f| f == FINALIZER),
                };
                if caught_up {
                    behind.remove(&uid);
                }
            }
            watcher::Event::Delete(obj) => {
                behind.remove(&obj.uid().unwrap_or_default());
            }
            watcher::Event::Init | watcher::Event::InitDone => {}
        }
    }
}

impl<K: Managed> Cache<K> {
    pub fn store(&self) -> &Store<K> {
        &self.store
    }

    /// Its first list is in the store and the index.
    pub fn synced(&self) -> bool {
        self.index.read().unwrap_or_else(|p| p.into_inner()).synced
    }

    pub fn get(&self, obj: &ObjectRef<K>) -> Option<Arc<K>> {
        self.store.get(obj)
    }

    pub fn state(&self) -> Vec<Arc<K>> {
        self.store.state()
    }

    /// Notes a write of ours to `obj` that produced `resource_version` (`None`: not known):
    /// until the watch shows it, the cached copy is behind.
    pub fn wrote(&self, obj: &K, resource_version: Option<String>) {
        let uid = obj.uid().unwrap_or_default();
        let mut behind = self.behind.lock().unwrap_or_else(|p| p.into_inner());
        behind.insert(uid.clone(), resource_version.clone());
        // The watch may have delivered the write before this note: the writer updates the
        // store before it looks here, so one of the two sees the other. (A copy already newer
        // than the write keeps the note until the object goes: it is only read afresh.)
        if resource_version.is_some()
            && self
                .store
                .get(&slim_ref(obj))
                .is_some_and(|cached| cached.resource_version() == resource_version)
        {
            behind.remove(&uid);
        }
    }

    /// The latest cached copy of `obj` if it shows every write of ours: `None` while it may
    /// be behind one (read the object afresh), `Some(None)` when it is no longer cached.
    ///
    /// The copy is taken from the store after the check, never the one a reconcile was handed:
    /// that one was looked up when the reconcile was dispatched, possibly before a write of
    /// ours whose note the watch has cleared since.
    pub fn current(&self, obj: &K) -> Option<Option<Arc<K>>> {
        let uid = obj.uid().unwrap_or_default();
        if self
            .behind
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(&uid)
        {
            return None;
        }
        // the writer updates the store before it clears a note: this copy shows the write
        Some(self.store.get(&slim_ref(obj)))
    }

    fn refs(&self, key: &Key) -> Vec<ObjectRef<K>> {
        let index = self.index.read().unwrap_or_else(|p| p.into_inner());
        index
            .live
            .by_key
            .get(key)
            .map(Members::refs)
            .unwrap_or_default()
    }

    fn count(&self, key: &Key) -> usize {
        let index = self.index.read().unwrap_or_else(|p| p.into_inner());
        index.live.by_key.get(key).map_or(0, Members::len)
    }

    /// The cached objects found under `key`.
    fn find(&self, key: &Key) -> Vec<Arc<K>> {
        self.refs(key)
            .iter()
            .filter_map(|obj| self.store.get(obj))
            .collect()
    }

    fn names(&self, key: &Key) -> BTreeSet<String> {
        self.refs(key).into_iter().map(|obj| obj.name).collect()
    }
}

/// The caches of the four kinds.
#[derive(Clone)]
pub struct Stores {
    pub clusters: Cache<ZillizCluster>,
    pub collections: Cache<ZillizCollection>,
    pub partitions: Cache<ZillizPartition>,
    pub indexes: Cache<ZillizIndex>,
}

/// The writers of [`Stores`].
pub struct StoreWriters {
    pub clusters: CacheWriter<ZillizCluster>,
    pub collections: CacheWriter<ZillizCollection>,
    pub partitions: CacheWriter<ZillizPartition>,
    pub indexes: CacheWriter<ZillizIndex>,
}

impl Stores {
    /// Empty caches of the four kinds, and their writers.
    pub fn new() -> (Stores, StoreWriters) {
        let (clusters, cluster_writer) = cache();
        let (collections, collection_writer) = cache();
        let (partitions, partition_writer) = cache();
        let (indexes, index_writer) = cache();
        (
            Stores {
                clusters,
                collections,
                partitions,
                indexes,
            },
            StoreWriters {
                clusters: cluster_writer,
                collections: collection_writer,
                partitions: partition_writer,
                indexes: index_writer,
            },
        )
    }
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
    collection_key(&stores.collection_loc(source, ns)?, ns, stores)
}

impl Stores {
    /// Every cache holds its first list: only then does "no object names it" mean none does.
    pub fn synced(&self) -> bool {
        self.clusters.synced()
            && self.collections.synced()
            && self.partitions.synced()
            && self.indexes.synced()
    }

    /// Objects naming the Secret `ns/name` directly, and how many of them are being deleted.
    /// Meaningful once [`Stores::synced`].
    pub fn secret_users(&self, ns: &str, name: &str) -> (usize, usize) {
        let all = Key::Secret(ns.into(), name.into());
        let deleting = Key::SecretDeleting(ns.into(), name.into());
        let count = |key: &Key| {
            self.clusters.count(key)
                + self.collections.count(key)
                + self.partitions.count(key)
                + self.indexes.count(key)
        };
        (count(&all), count(&deleting))
    }

    /// Objects of ours in `ns` that live in the ZillizCluster `cluster`: collections naming it,
    /// and partitions and indexes naming it or a collection that does. `kind/name`, sorted.
    pub fn cluster_dependents(&self, ns: &str, cluster: &str) -> Vec<String> {
        let in_cluster = Key::Cluster(ns.into(), cluster.into());
        let collections = self.collections.names(&in_cluster);
        let mut partitions = self.partitions.names(&in_cluster);
        let mut indexes = self.indexes.names(&in_cluster);
        for c in &collections {
            let in_collection = Key::Collection(ns.into(), c.as_str().into());
            partitions.extend(self.partitions.names(&in_collection));
            indexes.extend(self.indexes.names(&in_collection));
        }
        let mut out: Vec<String> = collections
            .iter()
            .map(|c| format!("ZillizCollection/{c}"))
            .chain(partitions.iter().map(|p| format!("ZillizPartition/{p}")))
            .chain(indexes.iter().map(|i| format!("ZillizIndex/{i}")))
            .collect();
        out.sort();
        out
    }

    /// The objects of ours that live inside the resource of the object `ns/name`, of a kind
    /// that [`Contains`] them: `kind/name`, sorted.
    pub fn dependents(&self, contains: Contains, ns: &str, name: &str) -> Vec<String> {
        match contains {
            Contains::Nothing => Vec::new(),
            Contains::ClusterObjects => self.cluster_dependents(ns, name),
            Contains::CollectionObjects => {
                let key = Key::Collection(ns.into(), name.into());
                let partitions = self.partitions.names(&key);
                let indexes = self.indexes.names(&key);
                partitions
                    .iter()
                    .map(|p| format!("ZillizPartition/{p}"))
                    .chain(indexes.iter().map(|i| format!("ZillizIndex/{i}")))
                    .collect()
            }
        }
    }

    /// Objects of kind `K` in `ns` that read their credentials from the Secret `secret`:
    /// directly, or through their cluster or collection.
    pub fn credential_users<K: Cached>(&self, ns: &str, secret: &str) -> Vec<ObjectRef<K>> {
        let key = |k: fn(Arc<str>, Arc<str>) -> Key, name: &str| k(ns.into(), name.into());
        let cache = K::cache(self);
        let mut candidates = cache.refs(&key(Key::Secret, secret));
        let clusters = self.clusters.names(&key(Key::Secret, secret));
        let mut collections = self.collections.names(&key(Key::Secret, secret));
        for cluster in &clusters {
            candidates.extend(cache.refs(&key(Key::Cluster, cluster)));
            collections.extend(self.collections.names(&key(Key::Cluster, cluster)));
        }
        for collection in &collections {
            candidates.extend(cache.refs(&key(Key::Collection, collection)));
        }
        let mut seen = HashSet::new();
        candidates
            .into_iter()
            .filter(|obj| seen.insert(obj.clone()))
            .filter(|obj| {
                cache
                    .get(obj)
                    .is_some_and(|o| self.credential_secret(o.as_ref()).as_deref() == Some(secret))
            })
            .collect()
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
    pub fn identity<K: Cached>(&self, obj: &K) -> Option<String> {
        // Without references the identity follows from the object's own spec (its generation).
        let standalone = obj.refs() == Refs::default();
        let (Some(uid), generation) = (obj.uid(), obj.meta().generation) else {
            return self.compute_identity(obj);
        };
        if !standalone {
            return self.compute_identity(obj);
        }
        let memo = &K::cache(self).identities;
        if let Some((g, id)) = memo.lock().unwrap_or_else(|p| p.into_inner()).get(&uid)
            && *g == generation
        {
            return id.clone();
        }
        let id = self.compute_identity(obj);
        memo.lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(uid, (generation, id.clone()));
        id
    }

    fn compute_identity<K: Cached>(&self, obj: &K) -> Option<String> {
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

    /// The keys of the objects that may name the same external resource as `obj`: each way of
    /// addressing it (its connection, any ZillizCluster object for the same cluster, any
    /// ZillizCollection object for the same collection). Empty when a referenced object is not
    /// cached: then `obj` has no identity, and no sharers.
    fn candidate_keys<K: Cached>(&self, obj: &K) -> Vec<Key> {
        let ns = obj.namespace().unwrap_or_default();
        let (loc, leaf) = match place(obj) {
            Place::Collection(loc) => (loc, None),
            Place::InCollection(source, leaf) => match self.collection_loc(&source, &ns) {
                Some(loc) => (loc, Some(leaf)),
                None => return Vec::new(),
            },
            Place::Other => return vec![Key::Name(obj.external_name().into())],
        };
        let mut keys = self.location_keys(&loc, leaf.as_deref(), &ns);
        if let Some(leaf) = leaf {
            let leaf: Arc<str> = leaf.into();
            let collections = self.location_keys(&loc, None, &ns);
            keys.extend(
                collections
                    .iter()
                    .flat_map(|key| self.collections.refs(key))
                    .map(|coll| {
                        Key::ViaCollection(
                            coll.namespace.as_deref().unwrap_or_default().into(),
                            coll.name.as_str().into(),
                            leaf.clone(),
                        )
                    }),
            );
        }
        keys
    }

    /// The collection a partition or index in `ns` lives in: given directly, or the one its
    /// ZillizCollection object names (none when that object is not cached or is invalid).
    fn collection_loc(&self, source: &CollectionSource, ns: &str) -> Option<CollectionLoc> {
        match source {
            CollectionSource::Direct(loc) => Some(loc.clone()),
            CollectionSource::Object(name) => {
                let coll = self.collections.get(&ObjectRef::new(name).within(ns))?;
                collection_loc_of(&coll.spec).ok()
            }
        }
    }

    /// The keys of objects addressing `loc` (and `leaf` in it) directly: with the same
    /// connection, or through any ZillizCluster object for the same cluster as the one `loc`
    /// names in `ns`.
    fn location_keys(&self, loc: &CollectionLoc, leaf: Option<&str>, ns: &str) -> Vec<Key> {
        let Host::ClusterRef(name) = &loc.host else {
            return vec![location_key(loc, leaf, &ns.into())];
        };
        let Some(cluster) = self.clusters.get(&ObjectRef::new(name).within(ns)) else {
            return Vec::new();
        };
        let Some(identity) = self.identity(cluster.as_ref()) else {
            return Vec::new();
        };
        let within = within(loc, leaf);
        self.clusters
            .find(&Key::Name(cluster.external_name().into()))
            .into_iter()
            .filter(|other| self.identity(other.as_ref()).as_ref() == Some(&identity))
            .map(|other| {
                Key::ViaCluster(
                    other.namespace().unwrap_or_default().into(),
                    other.name_any().into(),
                    within.clone(),
                )
            })
            .collect()
    }

    /// The other objects of the same kind (any namespace) that name the same external resource.
    pub fn sharers<K: Cached>(&self, obj: &K) -> Vec<Arc<K>> {
        let uid = obj.uid();
        let cache = K::cache(self);
        let candidates: Vec<Arc<K>> = self
            .candidate_keys(obj)
            .iter()
            .flat_map(|key| cache.find(key))
            .filter(|o| o.uid() != uid)
            .collect();
        // a name no other object uses needs no identity (nor a remembered one)
        if candidates.is_empty() {
            return Vec::new();
        }
        let Some(key) = self.identity(obj) else {
            return Vec::new();
        };
        candidates
            .into_iter()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{NS, object};
    use serde_json::{Value, json};

    fn conn(secret: &str) -> Value {
        json!({"endpoint": "http://m:19530", "credentialsSecretRef": {"name": secret}})
    }

    fn cluster(name: &str, secret: &str) -> ZillizCluster {
        serde_json::from_value(object(
            "ZillizCluster",
            name,
            json!({"clusterId": format!("in01-{name}"), "credentialsSecretRef": {"name": secret}}),
            true,
            false,
        ))
        .unwrap()
    }

    fn collection(name: &str, host: Value) -> ZillizCollection {
        let mut spec = json!({"collectionName": name});
        spec.as_object_mut()
            .unwrap()
            .extend(host.as_object().unwrap().clone());
        serde_json::from_value(object("ZillizCollection", name, spec, true, false)).unwrap()
    }

    /// A partition; `collection` is its flattened collection address.
    fn partition(name: &str, collection: Value, deleting: bool) -> ZillizPartition {
        let mut spec = json!({"partitionName": name});
        spec.as_object_mut()
            .unwrap()
            .extend(collection.as_object().unwrap().clone());
        serde_json::from_value(object("ZillizPartition", name, spec, true, deleting)).unwrap()
    }

    fn apply<K: Managed>(writer: &mut CacheWriter<K>, obj: K) {
        writer.apply_watcher_event(&watcher::Event::Apply(obj));
    }

    fn names<K: Managed>(objs: Vec<ObjectRef<K>>) -> Vec<String> {
        let mut names: Vec<String> = objs.into_iter().map(|o| o.name).collect();
        names.sort();
        names
    }

    /// A cluster `c1` (Secret `cloud`), a collection `books` in it, partitions in it through the
    /// collection and through the cluster, and one with its own connection.
    fn populated() -> (Stores, StoreWriters) {
        let (stores, mut w) = Stores::new();
        apply(&mut w.clusters, cluster("c1", "cloud"));
        apply(&mut w.clusters, cluster("c2", "cloud"));
        apply(
            &mut w.collections,
            collection("books", json!({"clusterRef": {"name": "c1"}})),
        );
        apply(
            &mut w.collections,
            collection("films", json!({"connection": conn("direct")})),
        );
        apply(
            &mut w.partitions,
            partition(
                "p-by-collection",
                json!({"collectionRef": {"name": "books"}}),
                false,
            ),
        );
        apply(
            &mut w.partitions,
            partition(
                "p-by-cluster",
                json!({"clusterRef": {"name": "c1"}, "collectionName": "x"}),
                false,
            ),
        );
        apply(
            &mut w.partitions,
            partition(
                "p-direct",
                json!({"connection": conn("direct"), "collectionName": "x"}),
                true,
            ),
        );
        (stores, w)
    }

    #[test]
    fn dependents_of_a_cluster_come_through_refs() {
        let (stores, _w) = populated();
        assert_eq!(
            stores.cluster_dependents(NS, "c1"),
            [
                "ZillizCollection/books",
                "ZillizPartition/p-by-cluster",
                "ZillizPartition/p-by-collection"
            ]
        );
        assert!(stores.cluster_dependents(NS, "c2").is_empty());
        assert!(stores.cluster_dependents("elsewhere", "c1").is_empty());
    }

    #[test]
    fn secret_users_count_direct_users_and_deletions() {
        let (stores, mut w) = populated();
        // films and p-direct name `direct`; p-direct is being deleted
        assert_eq!(stores.secret_users(NS, "direct"), (2, 1));
        assert_eq!(stores.secret_users(NS, "cloud"), (2, 0));
        // the deletion mark arrives as an update: counted without a scan
        let mut films = collection("films", json!({"connection": conn("direct")}));
        films.metadata.deletion_timestamp = Some(
            k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::UNIX_EPOCH),
        );
        apply(&mut w.collections, films.clone());
        assert_eq!(stores.secret_users(NS, "direct"), (2, 2));
        w.collections
            .apply_watcher_event(&watcher::Event::Delete(films));
        assert_eq!(stores.secret_users(NS, "direct"), (1, 1));
    }

    #[test]
    fn a_secret_recorded_for_a_drop_counts_as_used() {
        // a collection reached through its cluster records the cluster's Secret: should the
        // cluster object be removed by hand, its drop still needs that Secret
        let (stores, mut w) = Stores::new();
        let mut books = collection("books", json!({"clusterRef": {"name": "gone"}}));
        assert_eq!(stores.secret_users(NS, "cloud"), (0, 0));
        books.status = Some(crate::crd::ZillizStatus {
            resolved: Some(crate::crd::ResolvedStatus {
                endpoint: Some("https://in01-gone.example".into()),
                db_name: "default".into(),
                collection_name: "books".into(),
                credentials_secret_ref: crate::crd::SecretKeyRef {
                    name: "cloud".into(),
                    key: "apiKey".into(),
                },
                cluster: None,
            }),
            ..Default::default()
        });
        apply(&mut w.collections, books);
        assert_eq!(stores.secret_users(NS, "cloud"), (1, 0));
    }

    #[test]
    fn credential_users_follow_cluster_and_collection_refs() {
        let (stores, _w) = populated();
        assert_eq!(
            names(stores.credential_users::<ZillizPartition>(NS, "cloud")),
            ["p-by-cluster", "p-by-collection"]
        );
        assert_eq!(
            names(stores.credential_users::<ZillizCollection>(NS, "cloud")),
            ["books"]
        );
        assert_eq!(
            names(stores.credential_users::<ZillizCluster>(NS, "cloud")),
            ["c1", "c2"]
        );
        assert_eq!(
            names(stores.credential_users::<ZillizPartition>(NS, "direct")),
            ["p-direct"]
        );
    }

    #[test]
    fn a_spec_change_moves_the_object_between_keys() {
        let (stores, mut w) = populated();
        apply(
            &mut w.collections,
            collection("books", json!({"clusterRef": {"name": "c2"}})),
        );
        assert_eq!(
            stores.cluster_dependents(NS, "c1"),
            ["ZillizPartition/p-by-cluster"]
        );
        assert_eq!(
            stores.cluster_dependents(NS, "c2"),
            ["ZillizCollection/books", "ZillizPartition/p-by-collection"]
        );
    }

    #[test]
    fn a_relist_replaces_the_index_like_the_store() {
        let (stores, mut w) = populated();
        // a re-list (after a 410) that no longer holds c1's collection
        w.collections.apply_watcher_event(&watcher::Event::Init);
        w.collections
            .apply_watcher_event(&watcher::Event::InitApply(collection(
                "films",
                json!({"connection": conn("direct")}),
            )));
        // until InitDone the old view still answers
        assert_eq!(stores.cluster_dependents(NS, "c1").len(), 3);
        w.collections.apply_watcher_event(&watcher::Event::InitDone);
        assert_eq!(
            stores.cluster_dependents(NS, "c1"),
            ["ZillizPartition/p-by-cluster"]
        );
        assert_eq!(stores.collections.state().len(), 1);
        assert_eq!(stores.secret_users(NS, "direct"), (2, 1));
    }

    #[test]
    fn sharers_are_found_by_name_then_checked_by_identity() {
        let (stores, mut w) = Stores::new();
        let mut other_ns = collection("films", json!({"connection": conn("direct")}));
        other_ns.metadata.namespace = Some("other".into());
        other_ns.metadata.uid = Some("uid-other".into());
        apply(&mut w.collections, other_ns);
        let mut elsewhere = collection("films", json!({"connection": conn("direct")}));
        elsewhere.metadata.name = Some("films-elsewhere".into());
        elsewhere.metadata.uid = Some("uid-elsewhere".into());
        elsewhere.spec.connection.as_mut().unwrap().endpoint = "http://n:19530".into();
        apply(&mut w.collections, elsewhere);
        let mine = collection("films", json!({"connection": conn("direct")}));
        apply(&mut w.collections, mine.clone());
        let sharers = stores.sharers(&mine);
        assert_eq!(
            sharers.len(),
            1,
            "same endpoint and name in another namespace"
        );
        assert_eq!(sharers[0].namespace().as_deref(), Some("other"));
    }

    /// Partition `2024` of collection `books` (as `name`), its collection given by `collection`.
    fn partition_2024(name: &str, collection: Value) -> ZillizPartition {
        let mut p = partition("2024", collection, false);
        p.metadata.name = Some(name.into());
        p.metadata.uid = Some(format!("uid-{name}"));
        p
    }

    #[test]
    fn partitions_named_alike_in_other_collections_are_not_candidate_sharers() {
        let (stores, mut w) = Stores::new();
        apply(
            &mut w.collections,
            collection("books", json!({"connection": conn("direct")})),
        );
        let by_ref = partition_2024("by-ref", json!({"collectionRef": {"name": "books"}}));
        apply(&mut w.partitions, by_ref.clone());
        let direct = json!({"connection": conn("direct"), "collectionName": "books"});
        apply(&mut w.partitions, partition_2024("direct", direct));
        let elsewhere = json!({"connection": {"endpoint": "http://n:19530",
            "credentialsSecretRef": {"name": "direct"}}, "collectionName": "books"});
        apply(
            &mut w.partitions,
            partition_2024("other-endpoint", elsewhere),
        );
        // the name every partition of a yearly scheme has, in a hundred other collections
        for i in 0..100 {
            let coll = json!({"connection": conn("direct"), "collectionName": format!("c{i}")});
            apply(&mut w.partitions, partition_2024(&format!("in-c{i}"), coll));
        }

        let candidates = |p: &ZillizPartition| {
            names(
                stores
                    .candidate_keys(p)
                    .iter()
                    .flat_map(|k| stores.partitions.refs(k))
                    .collect(),
            )
        };
        assert_eq!(
            candidates(&by_ref),
            ["by-ref", "direct"],
            "the same collection, directly or through the ZillizCollection"
        );
        let direct = stores
            .partitions
            .get(&ObjectRef::new("direct").within(NS))
            .unwrap();
        assert_eq!(candidates(&direct), ["by-ref", "direct"]);
        assert_eq!(
            names(
                stores
                    .sharers(&by_ref)
                    .iter()
                    .map(|p| slim_ref(p.as_ref()))
                    .collect()
            ),
            ["direct"]
        );
        assert_eq!(
            names(
                stores
                    .sharers(direct.as_ref())
                    .iter()
                    .map(|p| slim_ref(p.as_ref()))
                    .collect()
            ),
            ["by-ref"]
        );
        let c7 = stores
            .partitions
            .get(&ObjectRef::new("in-c7").within(NS))
            .unwrap();
        assert_eq!(candidates(&c7), ["in-c7"]);
        assert!(stores.sharers(c7.as_ref()).is_empty());
    }

    /// `obj` moved to namespace `ns` (its uid follows).
    fn in_ns<K: Managed>(mut obj: K, ns: &str) -> K {
        let name = obj.name_any();
        obj.meta_mut().namespace = Some(ns.into());
        obj.meta_mut().uid = Some(format!("uid-{ns}-{name}"));
        obj
    }

    #[test]
    fn tenants_with_alike_names_are_not_candidate_sharers_but_one_cluster_shares() {
        let (stores, mut w) = Stores::new();
        // a Kustomize base per tenant: its own cluster, collection `documents` in it, and a
        // partition `2024` of it; and on one shared Milvus, database per tenant
        for t in 0..50 {
            let ns = format!("tenant{t}");
            let mut cluster = cluster("own", "cloud");
            cluster.spec.cluster_id = Some(format!("in01-tenant{t}"));
            apply(&mut w.clusters, in_ns(cluster, &ns));
            let docs = collection("documents", json!({"clusterRef": {"name": "own"}}));
            apply(&mut w.collections, in_ns(docs, &ns));
            let part = partition_2024("docs-2024", json!({"collectionRef": {"name": "documents"}}));
            apply(&mut w.partitions, in_ns(part, &ns));
            let mut shared = collection("shared-docs", json!({"connection": conn("direct")}));
            shared.spec.collection_name = "documents".into();
            shared.spec.db_name = ns.clone();
            apply(&mut w.collections, in_ns(shared, &ns));
        }
        // two namespaces whose ZillizCluster objects are one Zilliz cluster
        for ns in ["team-a", "team-b"] {
            apply(&mut w.clusters, in_ns(cluster("same", "cloud"), ns));
            let docs = collection("documents", json!({"clusterRef": {"name": "same"}}));
            apply(&mut w.collections, in_ns(docs, ns));
            let part = partition_2024("docs-2024", json!({"collectionRef": {"name": "documents"}}));
            apply(&mut w.partitions, in_ns(part, ns));
        }

        fn candidates<K: Cached>(stores: &Stores, obj: &K) -> Vec<String> {
            let mut found: Vec<String> = stores
                .candidate_keys(obj)
                .iter()
                .flat_map(|k| K::cache(stores).refs(k))
                .map(|o| format!("{}/{}", o.namespace.unwrap_or_default(), o.name))
                .collect();
            found.sort();
            found
        }
        let coll = |ns: &str, name: &str| {
            stores
                .collections
                .get(&ObjectRef::new(name).within(ns))
                .unwrap()
        };
        let part = |ns: &str| {
            stores
                .partitions
                .get(&ObjectRef::new("docs-2024").within(ns))
                .unwrap()
        };
        assert_eq!(
            candidates(&stores, coll("tenant7", "documents").as_ref()),
            ["tenant7/documents"]
        );
        assert_eq!(
            candidates(&stores, coll("tenant7", "shared-docs").as_ref()),
            ["tenant7/shared-docs"],
            "another database on the same endpoint"
        );
        assert_eq!(
            candidates(&stores, part("tenant7").as_ref()),
            ["tenant7/docs-2024"]
        );
        assert!(stores.sharers(part("tenant7").as_ref()).is_empty());

        assert_eq!(
            candidates(&stores, coll("team-a", "documents").as_ref()),
            ["team-a/documents", "team-b/documents"]
        );
        assert_eq!(
            candidates(&stores, part("team-a").as_ref()),
            ["team-a/docs-2024", "team-b/docs-2024"]
        );
        let sharers = stores.sharers(part("team-a").as_ref());
        assert_eq!(sharers.len(), 1);
        assert_eq!(sharers[0].namespace().as_deref(), Some("team-b"));
    }

    fn version(obj: &ZillizCollection, rv: &str, finalizer: bool) -> ZillizCollection {
        let mut obj = obj.clone();
        obj.metadata.resource_version = Some(rv.into());
        if !finalizer {
            obj.metadata.finalizers = None;
        }
        obj
    }

    #[test]
    fn a_cache_is_behind_a_write_of_ours_until_the_watch_shows_it() {
        let (cache, mut writer) = cache::<ZillizCollection>();
        let obj = collection("books", conn("s"));
        apply(&mut writer, version(&obj, "1", true));
        assert!(cache.current(&obj).is_some(), "nothing written yet");

        // a status write answered with version 3; the watch shows 2 (someone else's), then 3
        cache.wrote(&obj, Some("3".into()));
        assert!(cache.current(&obj).is_none());
        apply(&mut writer, version(&obj, "2", true));
        assert!(
            cache.current(&obj).is_none(),
            "version 2 does not show our write"
        );
        let handed = version(&obj, "2", true);
        assert!(cache.current(&handed).is_none(), "read it afresh");
        apply(&mut writer, version(&obj, "3", true));
        assert!(cache.current(&obj).is_some());
        // a reconcile handed version 2 gets the cache's version 3, which shows the write
        let latest = cache.current(&handed).flatten().unwrap();
        assert_eq!(latest.resource_version().as_deref(), Some("3"));

        // the watch delivered version 4 before the write's note: nothing to wait for
        apply(&mut writer, version(&obj, "4", true));
        cache.wrote(&obj, Some("4".into()));
        assert!(
            cache.current(&obj).is_some(),
            "the cache already shows the write"
        );

        // our finalizer removal (its version unknown): behind until the object is seen
        // without it, or is deleted
        cache.wrote(&obj, None);
        apply(&mut writer, version(&obj, "5", true));
        assert!(cache.current(&obj).is_none(), "still shows our finalizer");
        apply(&mut writer, version(&obj, "6", false));
        assert!(cache.current(&obj).is_some());
        cache.wrote(&obj, None);
        writer.apply_watcher_event(&watcher::Event::Delete(version(&obj, "7", true)));
        assert!(
            cache.current(&obj).is_some(),
            "deleted: no copy left to be behind"
        );
        assert!(
            matches!(cache.current(&obj), Some(None)),
            "gone from the cache"
        );
    }
}
