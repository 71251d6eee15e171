//! The in-memory object store: resource types, objects, the global
//! resourceVersion counter and the watch-event history.

use crate::error::{ApiError, ApiResult, qualified};
use crate::managed::{self, Op, Schema, Scope};
use crate::schema;
use crate::selector::{FieldSelector, LabelSelector};
use base64::Engine as _;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use tokio::sync::broadcast;

/// How many watch events are kept per resource type for resuming watches. Per type, like
/// kube-apiserver's watch cache: a burst of Events does not push a watch of another kind
/// out of its window.
const HISTORY_LIMIT: usize = 20_000;

/// A resource type served by the server (built-in or CRD-defined).
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceType {
    /// API group, "" for core.
    pub group: String,
    /// Served versions, preferred first.
    pub versions: Vec<String>,
    /// Plural resource name (URL segment).
    pub plural: String,
    /// Singular name.
    pub singular: String,
    /// Kind.
    pub kind: String,
    /// Namespace-scoped?
    pub namespaced: bool,
    /// Short names (`kubectl get <short>`).
    pub short_names: Vec<String>,
    /// Categories (`kubectl get all`).
    pub categories: Vec<String>,
    /// Has a `/status` subresource.
    pub has_status: bool,
    /// Defined by a CustomResourceDefinition.
    pub custom: bool,
    /// A custom resource's `openAPIV3Schema` per version, in the CRD's order (read on every
    /// write for field ownership; kept here so that a write does not copy the CRD).
    pub schemas: Vec<(String, Arc<Value>)>,
}

impl ResourceType {
    fn builtin(
        group: &str,
        version: &str,
        plural: &str,
        kind: &str,
        namespaced: bool,
        short: &[&str],
    ) -> Self {
        ResourceType {
            group: group.into(),
            versions: vec![version.into()],
            plural: plural.into(),
            singular: kind.to_lowercase(),
            kind: kind.into(),
            namespaced,
            short_names: short.iter().map(|s| s.to_string()).collect(),
            categories: vec![],
            has_status: false,
            custom: false,
            schemas: Vec::new(),
        }
    }

    /// Whether objects of this type carry `metadata.generation` (as in
    /// kube-apiserver's registry strategies: CRs, CRDs, Deployments and
    /// PodDisruptionBudgets here; Services, RBAC and core kinds have none).
    fn tracks_generation(&self) -> bool {
        self.custom
            || matches!(
                (self.group.as_str(), self.plural.as_str()),
                ("apiextensions.k8s.io", "customresourcedefinitions")
                    | ("apps", "deployments")
                    | ("policy", "poddisruptionbudgets")
            )
    }

    /// The part of an object whose change bumps `metadata.generation`.
    fn spec_part(&self, obj: &Value) -> Value {
        if self.custom {
            let mut o = obj.clone();
            if let Some(m) = o.as_object_mut() {
                for k in ["metadata", "status", "kind", "apiVersion"] {
                    m.remove(k);
                }
            }
            o
        } else if self.group == "apps" && self.plural == "deployments" {
            // The Deployment strategy also bumps on annotation changes
            // ("annotations are copied from deployments to their replica sets").
            json!([
                obj.get("spec").cloned().unwrap_or(Value::Null),
                obj.pointer("/metadata/annotations")
                    .cloned()
                    .unwrap_or(Value::Null),
            ])
        } else {
            obj.get("spec").cloned().unwrap_or(Value::Null)
        }
    }

    /// `group/version` or `version` for core.
    pub fn api_version(&self, version: &str) -> String {
        if self.group.is_empty() {
            version.to_string()
        } else {
            format!("{}/{version}", self.group)
        }
    }

    /// The core `namespaces` type.
    pub fn is_namespace(&self) -> bool {
        self.group.is_empty() && self.plural == "namespaces"
    }

    fn is_crd(&self) -> bool {
        self.group == "apiextensions.k8s.io" && self.plural == "customresourcedefinitions"
    }
}

/// Watch event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// ADDED
    Added,
    /// MODIFIED
    Modified,
    /// DELETED
    Deleted,
}

impl EventType {
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// A change to one object.
#[derive(Debug)]
pub struct Event {
    /// resourceVersion of the change.
    pub rv: u64,
    /// Group of the object's type.
    pub group: String,
    /// Plural of the object's type.
    pub plural: String,
    /// Namespace ("" for cluster-scoped).
    pub namespace: String,
    /// Type.
    pub etype: EventType,
    /// Object after the change (for DELETED: its last state).
    pub object: Value,
    /// Object before the change (for selector transitions).
    pub old: Option<Value>,
}

/// Key of a stored object: (group, plural, namespace, name).
pub type ObjKey = (String, String, String, String);

/// Options for list calls.
#[derive(Debug, Default)]
pub struct ListOptions {
    /// Namespace to restrict to.
    pub namespace: Option<String>,
    /// Label selector.
    pub labels: Option<LabelSelector>,
    /// Field selector.
    pub fields: Option<FieldSelector>,
    /// Page size.
    pub limit: Option<usize>,
    /// Continue token from a previous page.
    pub continue_token: Option<String>,
}

/// One page of a list.
#[derive(Debug)]
pub struct ListPage {
    /// Items.
    pub items: Vec<Value>,
    /// Continue token when more items exist.
    pub continue_token: Option<String>,
    /// Remaining items after this page.
    pub remaining: usize,
    /// Global resourceVersion at list time.
    pub rv: u64,
}

/// Result of a delete.
#[derive(Debug)]
pub struct Deleted {
    /// The object (its final state if gone, else its current state).
    pub object: Value,
    /// Whether the object is gone from the store.
    pub gone: bool,
}

/// The store. Always used behind a mutex; events are broadcast while the
/// lock is held so watchers observe them in resourceVersion order.
pub struct Store {
    /// Global resourceVersion (last one handed out).
    pub rv: u64,
    /// Served resource types by (group, plural).
    pub types: BTreeMap<(String, String), ResourceType>,
    /// Objects.
    pub objects: BTreeMap<ObjKey, Value>,
    /// Recent events per resource type (group, plural), oldest first.
    pub history: HashMap<(String, String), VecDeque<Arc<Event>>>,
    /// Per resource type, watches from a resourceVersion below this get 410 Gone.
    pub compacted: HashMap<(String, String), u64>,
    /// Watches of any type from a resourceVersion below this get 410 Gone ([`Store::compact`]).
    pub compacted_rv: u64,
    tx: broadcast::Sender<Arc<Event>>,
}

/// RFC 3339 "now" with second precision, as kube-apiserver writes it.
pub fn now_rfc3339() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj.get("metadata")
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
}

/// Name of an object ("" when missing).
pub fn name_of(obj: &Value) -> &str {
    meta_str(obj, "name").unwrap_or("")
}

fn finalizers_of(obj: &Value) -> Vec<String> {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// The `metadata` map of an object, created (or replaced if not a map) as needed.
pub fn metadata_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.is_object() {
        *obj = json!({});
    }
    let Value::Object(o) = obj else {
        unreachable!("just made an object")
    };
    let meta = o.entry("metadata").or_insert_with(|| json!({}));
    if !meta.is_object() {
        *meta = json!({});
    }
    let Value::Object(m) = meta else {
        unreachable!("just made an object")
    };
    m
}

fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    uuid::Uuid::new_v4().as_bytes()[..5]
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

/// Drop empty metadata collections the way Go's `omitempty` does.
fn normalise_metadata(obj: &mut Value) {
    let m = metadata_mut(obj);
    for k in ["finalizers", "labels", "annotations", "ownerReferences"] {
        let empty = match m.get(k) {
            Some(Value::Array(a)) => a.is_empty(),
            Some(Value::Object(o)) => o.is_empty(),
            Some(Value::Null) => true,
            _ => false,
        };
        if empty {
            m.remove(k);
        }
    }
    m.remove("selfLink");
}

/// Merge Secret `stringData` into base64 `data`.
fn normalise_secret(obj: &mut Value) -> ApiResult<()> {
    let Some(o) = obj.as_object_mut() else {
        return Ok(());
    };
    if let Some(sd) = o.remove("stringData") {
        let Value::Object(sd) = sd else {
            return Err(ApiError::bad_request("stringData must be a map of strings"));
        };
        let data = o.entry("data").or_insert_with(|| json!({}));
        if !data.is_object() {
            *data = json!({});
        }
        for (k, v) in sd {
            let s = v
                .as_str()
                .ok_or_else(|| ApiError::bad_request("stringData values must be strings"))?;
            data[k.as_str()] = Value::String(base64::engine::general_purpose::STANDARD.encode(s));
        }
    }
    if o.get("data")
        .is_some_and(|d| d.as_object().is_some_and(Map::is_empty))
    {
        o.remove("data");
    }
    o.entry("type").or_insert_with(|| json!("Opaque"));
    Ok(())
}

impl Store {
    /// A store with the built-in types and the `default`, `kube-system`,
    /// `kube-public` and `kube-node-lease` namespaces.
    pub fn new(tx: broadcast::Sender<Arc<Event>>) -> Store {
        let mut s = Store {
            rv: 0,
            types: BTreeMap::new(),
            objects: BTreeMap::new(),
            history: HashMap::new(),
            compacted: HashMap::new(),
            compacted_rv: 0,
            tx,
        };
        let mut ns = ResourceType::builtin("", "v1", "namespaces", "Namespace", false, &["ns"]);
        ns.has_status = true;
        let mut crd = ResourceType::builtin(
            "apiextensions.k8s.io",
            "v1",
            "customresourcedefinitions",
            "CustomResourceDefinition",
            false,
            &["crd", "crds"],
        );
        crd.has_status = true;
        crd.categories = vec!["api-extensions".into()];
        let mut deploy =
            ResourceType::builtin("apps", "v1", "deployments", "Deployment", true, &["deploy"]);
        deploy.has_status = true;
        deploy.categories = vec!["all".into()];
        let mut svc = ResourceType::builtin("", "v1", "services", "Service", true, &["svc"]);
        svc.has_status = true;
        svc.categories = vec!["all".into()];
        let mut pdb = ResourceType::builtin(
            "policy",
            "v1",
            "poddisruptionbudgets",
            "PodDisruptionBudget",
            true,
            &["pdb"],
        );
        pdb.has_status = true;
        let rbac = "rbac.authorization.k8s.io";
        for t in [
            ns,
            svc,
            deploy,
            pdb,
            ResourceType::builtin(rbac, "v1", "roles", "Role", true, &[]),
            ResourceType::builtin(rbac, "v1", "rolebindings", "RoleBinding", true, &[]),
            ResourceType::builtin(rbac, "v1", "clusterroles", "ClusterRole", false, &[]),
            ResourceType::builtin(
                rbac,
                "v1",
                "clusterrolebindings",
                "ClusterRoleBinding",
                false,
                &[],
            ),
            ResourceType::builtin("", "v1", "secrets", "Secret", true, &[]),
            ResourceType::builtin("", "v1", "configmaps", "ConfigMap", true, &["cm"]),
            ResourceType::builtin("", "v1", "serviceaccounts", "ServiceAccount", true, &["sa"]),
            ResourceType::builtin("", "v1", "events", "Event", true, &["ev"]),
            ResourceType::builtin("events.k8s.io", "v1", "events", "Event", true, &["ev"]),
            ResourceType::builtin("coordination.k8s.io", "v1", "leases", "Lease", true, &[]),
            crd,
        ] {
            s.types.insert((t.group.clone(), t.plural.clone()), t);
        }
        for name in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            let t = s
                .types
                .get(&(String::new(), "namespaces".to_string()))
                .cloned();
            if let Some(t) = t {
                let _ = s.create(
                    &t,
                    "v1",
                    None,
                    json!({"metadata": {"name": name}}),
                    false,
                    None,
                );
            }
        }
        s
    }

    /// Look up a served type by group, version and plural.
    pub fn find_type(&self, group: &str, version: &str, plural: &str) -> Option<ResourceType> {
        self.types
            .get(&(group.to_string(), plural.to_string()))
            .filter(|t| t.versions.iter().any(|v| v == version))
            .cloned()
    }

    /// All groups with their versions (core excluded), sorted by group.
    pub fn groups(&self) -> BTreeMap<String, Vec<String>> {
        let mut g: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for t in self.types.values().filter(|t| !t.group.is_empty()) {
            let e = g.entry(t.group.clone()).or_default();
            for v in &t.versions {
                if !e.contains(v) {
                    e.push(v.clone());
                }
            }
        }
        g
    }

    fn next_rv(&mut self) -> u64 {
        self.rv += 1;
        self.rv
    }

    /// Forget history: any watch from a resourceVersion issued before now
    /// gets 410 Gone.
    pub fn compact(&mut self) {
        let rv = self.next_rv();
        self.history.clear();
        self.compacted.clear();
        self.compacted_rv = rv;
    }

    /// Watches of `(group, plural)` from a resourceVersion below this get 410 Gone.
    pub fn compacted_for(&self, group: &str, plural: &str) -> u64 {
        let key = (group.to_string(), plural.to_string());
        self.compacted_rv
            .max(self.compacted.get(&key).copied().unwrap_or(0))
    }

    /// The kept events of `(group, plural)` after resourceVersion `rv`, oldest first.
    pub fn history_after(
        &self,
        group: &str,
        plural: &str,
        rv: u64,
    ) -> impl Iterator<Item = &Arc<Event>> {
        let key = (group.to_string(), plural.to_string());
        self.history
            .get(&key)
            .into_iter()
            .flat_map(|h| h.iter())
            .filter(move |e| e.rv > rv)
    }

    fn emit(&mut self, rt: &ResourceType, etype: EventType, object: &Value, old: Option<Value>) {
        let ev = Arc::new(Event {
            rv: self.rv,
            group: rt.group.clone(),
            plural: rt.plural.clone(),
            namespace: meta_str(object, "namespace").unwrap_or("").to_string(),
            etype,
            object: object.clone(),
            old,
        });
        let key = (rt.group.clone(), rt.plural.clone());
        let history = self.history.entry(key.clone()).or_default();
        history.push_back(ev.clone());
        while history.len() > HISTORY_LIMIT {
            if let Some(e) = history.pop_front() {
                self.compacted.insert(key.clone(), e.rv);
            }
        }
        let _ = self.tx.send(ev);
    }

    fn key(rt: &ResourceType, ns: Option<&str>, name: &str) -> ObjKey {
        let ns = if rt.namespaced { ns.unwrap_or("") } else { "" };
        (
            rt.group.clone(),
            rt.plural.clone(),
            ns.to_string(),
            name.to_string(),
        )
    }

    /// Get one object.
    pub fn get(&self, rt: &ResourceType, ns: Option<&str>, name: &str) -> ApiResult<Value> {
        self.objects
            .get(&Self::key(rt, ns, name))
            .cloned()
            .ok_or_else(|| ApiError::not_found(&rt.group, &rt.plural, name))
    }

    /// List objects.
    pub fn list(&self, rt: &ResourceType, opts: &ListOptions) -> ApiResult<ListPage> {
        let start: ObjKey = (
            rt.group.clone(),
            rt.plural.clone(),
            String::new(),
            String::new(),
        );
        let after = match &opts.continue_token {
            Some(tok) if !tok.is_empty() => {
                let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(tok)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .ok_or_else(|| ApiError::bad_request("invalid continue token"))?;
                let (ns, name) = raw
                    .split_once('/')
                    .ok_or_else(|| ApiError::bad_request("invalid continue token"))?;
                Some((ns.to_string(), name.to_string()))
            }
            _ => None,
        };
        let matching = self
            .objects
            .range(start..)
            .take_while(|(k, _)| k.0 == rt.group && k.1 == rt.plural)
            .filter(|(k, _)| {
                after
                    .as_ref()
                    .is_none_or(|(ans, aname)| (&k.2, &k.3) > (ans, aname))
            })
            .filter(|(k, _)| {
                opts.namespace
                    .as_ref()
                    .is_none_or(|ns| !rt.namespaced || &k.2 == ns)
            })
            .filter(|(_, o)| opts.labels.as_ref().is_none_or(|l| l.matches(o)))
            .filter(|(_, o)| opts.fields.as_ref().is_none_or(|f| f.matches(o)));
        let mut items = Vec::new();
        let mut remaining = 0;
        let mut last: Option<(String, String)> = None;
        for (k, o) in matching {
            if opts.limit.is_some_and(|l| l > 0 && items.len() >= l) {
                remaining += 1;
            } else {
                items.push(o.clone());
                last = Some((k.2.clone(), k.3.clone()));
            }
        }
        let continue_token = if remaining > 0 {
            last.map(|(ns, name)| {
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{ns}/{name}"))
            })
        } else {
            None
        };
        Ok(ListPage {
            items,
            continue_token,
            remaining,
            rv: self.rv,
        })
    }

    fn check_namespace_for_create(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        name: &str,
    ) -> ApiResult<()> {
        if !rt.namespaced {
            return Ok(());
        }
        let ns = ns.unwrap_or("");
        let key = (
            String::new(),
            "namespaces".to_string(),
            String::new(),
            ns.to_string(),
        );
        match self.objects.get(&key) {
            None => Err(ApiError::not_found("", "namespaces", ns)),
            Some(n) if n.pointer("/metadata/deletionTimestamp").is_some() => {
                Err(ApiError::forbidden(
                    &rt.group,
                    &rt.plural,
                    name,
                    format!(
                        "{} \"{name}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                        rt.plural
                    ),
                ))
            }
            Some(_) => Ok(()),
        }
    }

    /// Per-kind defaulting and normalisation applied on every write.
    fn normalise(&self, rt: &ResourceType, obj: &mut Value) -> ApiResult<()> {
        normalise_metadata(obj);
        if let Some(schema) = custom_schema(rt, obj) {
            // kube-apiserver prunes and defaults a custom resource when it decodes one
            schema::prune(obj, &schema);
            schema::default(obj, &schema);
        }
        if rt.group.is_empty() && rt.plural == "secrets" {
            normalise_secret(obj)?;
        }
        if rt.is_namespace() {
            if obj.pointer("/spec/finalizers").is_none() {
                obj["spec"] = json!({"finalizers": ["kubernetes"]});
            }
            if obj.pointer("/status/phase").is_none() {
                obj["status"] = json!({"phase": "Active"});
            }
        }
        Ok(())
    }

    /// List types of `rt` for field ownership and apply merges (a custom
    /// resource's from its CRD's `version` schema).
    pub fn field_schema(&self, rt: &ResourceType, version: &str) -> Schema {
        if !rt.custom {
            return Schema::Builtin {
                group: rt.group.clone(),
                plural: rt.plural.clone(),
            };
        }
        let schema = rt
            .schemas
            .iter()
            .find(|(v, _)| v == version)
            .or_else(|| rt.schemas.first())
            .map(|(_, schema)| schema.clone())
            .unwrap_or_default();
        Schema::Crd(schema)
    }

    /// Prune a server-side apply configuration of a custom resource as its object will be
    /// (so that the manager does not own fields the schema drops).
    pub fn prune_apply_config(&self, rt: &ResourceType, version: &str, config: &mut Value) {
        if let Some(schema) = version_schema(rt, version) {
            schema::prune(config, &schema);
        }
    }

    /// The fields of a custom resource (a request's object, or a patched copy) that its
    /// schema will prune, e.g. `spec.bogus` (for `fieldValidation`).
    pub fn unknown_fields(&self, rt: &ResourceType, version: &str, obj: &Value) -> Vec<String> {
        match version_schema(rt, version) {
            Some(schema) => schema::prune(&mut obj.clone(), &schema),
            None => Vec::new(),
        }
    }

    /// Record field ownership of a write (see [`managed::track`]); for an
    /// apply, prunes fields the manager stopped applying and normalises again.
    fn track_fields(
        &self,
        rt: &ResourceType,
        old: Option<&Value>,
        new: &mut Value,
        base: Vec<managed::Entry>,
        op: &Op<'_>,
        status_subresource: bool,
    ) -> ApiResult<()> {
        let version = op.api_version.rsplit('/').next().unwrap_or("");
        let schema = self.field_schema(rt, version);
        let scope = Scope {
            schema: &schema,
            status_subresource,
            has_status: rt.has_status,
            custom: rt.custom,
        };
        managed::track(old, new, base, op, &scope, &now_rfc3339(), &mut |o| {
            self.normalise(rt, o)
        })
    }

    /// Create an object (`version` is the request's version, recorded in `apiVersion`).
    pub fn create(
        &mut self,
        rt: &ResourceType,
        version: &str,
        ns: Option<&str>,
        mut obj: Value,
        dry_run: bool,
        op: Option<&Op<'_>>,
    ) -> ApiResult<Value> {
        if !obj.is_object() {
            return Err(ApiError::bad_request(
                "the body of the request must be a JSON object",
            ));
        }
        let ns = if rt.namespaced { ns } else { None };
        if let (Some(ns), Some(body_ns)) = (ns, meta_str(&obj, "namespace"))
            && !body_ns.is_empty()
            && body_ns != ns
        {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        let mut name = meta_str(&obj, "name").unwrap_or("").to_string();
        if name.is_empty() {
            match meta_str(&obj, "generateName") {
                Some(prefix) if !prefix.is_empty() => name = format!("{prefix}{}", random_suffix()),
                _ => {
                    return Err(ApiError::invalid(
                        &rt.group,
                        &rt.kind,
                        "",
                        "metadata.name: Required value: name or generateName is required",
                    ));
                }
            }
        }
        self.check_namespace_for_create(rt, ns, &name)?;
        let key = Self::key(rt, ns, &name);
        if self.objects.contains_key(&key) {
            return Err(ApiError::already_exists(&rt.group, &rt.plural, &name));
        }
        if rt.has_status
            && !rt.is_namespace()
            && !rt.is_crd()
            && let Some(o) = obj.as_object_mut()
        {
            o.remove("status");
        }
        obj["kind"] = json!(rt.kind);
        obj["apiVersion"] = json!(rt.api_version(version));
        self.normalise(rt, &mut obj)?;
        if rt.is_crd() {
            let (t, status) = crd_type(&obj, &name)?;
            if let Some(existing) = self.types.get(&(t.group.clone(), t.plural.clone()))
                && !existing.custom
            {
                return Err(ApiError::invalid(
                    &rt.group,
                    &rt.kind,
                    &name,
                    "spec.names.plural: Invalid value: conflicts with a built-in resource",
                ));
            }
            obj["status"] = status;
            if !dry_run {
                self.types.insert((t.group.clone(), t.plural.clone()), t);
            }
        }
        let rv = if dry_run { self.rv } else { self.next_rv() };
        let tracks_generation = rt.tracks_generation();
        let m = metadata_mut(&mut obj);
        m.insert("name".into(), json!(name));
        if let Some(ns) = ns {
            m.insert("namespace".into(), json!(ns));
        } else {
            m.remove("namespace");
        }
        m.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
        m.insert("creationTimestamp".into(), json!(now_rfc3339()));
        m.insert("resourceVersion".into(), json!(rv.to_string()));
        m.remove("deletionTimestamp");
        m.remove("deletionGracePeriodSeconds");
        if tracks_generation {
            m.insert("generation".into(), json!(1));
        } else {
            m.remove("generation");
        }
        let request_managed = m.remove("managedFields");
        if let Some(op) = op {
            let base = managed::parse_entries(request_managed.as_ref());
            self.track_fields(rt, None, &mut obj, base, op, false)?;
        }
        validate_custom(rt, &obj, None, &name)?;
        if !dry_run {
            self.objects.insert(key, obj.clone());
            self.emit(rt, EventType::Added, &obj, None);
        }
        Ok(obj)
    }

    /// Commit an update computed from `old` (PUT body, or a patched copy).
    ///
    /// `subresource` is `Some("status")` for writes to `/status`. When
    /// `require_rv` is set the candidate must carry a resourceVersion.
    /// A candidate whose resourceVersion differs from the stored one is a
    /// 409 Conflict.
    #[allow(clippy::too_many_arguments)]
    pub fn update(
        &mut self,
        rt: &ResourceType,
        ns: Option<&str>,
        name: &str,
        mut candidate: Value,
        subresource: Option<&str>,
        require_rv: bool,
        dry_run: bool,
        op: Option<&Op<'_>>,
    ) -> ApiResult<Value> {
        let key = Self::key(rt, ns, name);
        let old = self
            .objects
            .get(&key)
            .cloned()
            .ok_or_else(|| ApiError::not_found(&rt.group, &rt.plural, name))?;
        if !candidate.is_object() {
            return Err(ApiError::bad_request(
                "the body of the request must be a JSON object",
            ));
        }
        let old_rv = meta_str(&old, "resourceVersion").unwrap_or("");
        match meta_str(&candidate, "resourceVersion") {
            Some(rv) if !rv.is_empty() && rv != old_rv => {
                return Err(ApiError::conflict(&rt.group, &rt.plural, name));
            }
            None | Some("") if require_rv => {
                return Err(ApiError::invalid(
                    &rt.group,
                    &rt.kind,
                    name,
                    "metadata.resourceVersion: Invalid value: 0x0: must be specified for an update",
                ));
            }
            _ => {}
        }
        if let Some(n) = meta_str(&candidate, "name")
            && !n.is_empty()
            && n != name
        {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({n}) does not match the name on the URL ({name})"
            )));
        }
        let request_managed = candidate
            .get_mut("metadata")
            .and_then(Value::as_object_mut)
            .and_then(|m| m.remove("managedFields"));
        let mut new = if subresource == Some("status") {
            let mut n = old.clone();
            match candidate.get("status") {
                Some(s) if !s.is_null() => n["status"] = s.clone(),
                _ => {
                    if let Some(o) = n.as_object_mut() {
                        o.remove("status");
                    }
                }
            }
            n
        } else {
            let mut n = candidate;
            if rt.has_status {
                match old.get("status") {
                    Some(s) => n["status"] = s.clone(),
                    None => {
                        if let Some(o) = n.as_object_mut() {
                            o.remove("status");
                        }
                    }
                }
            }
            let old_meta = old.get("metadata").cloned().unwrap_or_else(|| json!({}));
            let m = metadata_mut(&mut n);
            for k in [
                "name",
                "namespace",
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generation",
                "resourceVersion",
                "generateName",
            ] {
                match old_meta.get(k) {
                    Some(v) => m.insert(k.to_string(), v.clone()),
                    None => m.remove(k),
                };
            }
            n
        };
        new["kind"] = old["kind"].clone();
        new["apiVersion"] = old["apiVersion"].clone();
        self.normalise(rt, &mut new)?;
        if rt.is_crd() {
            let (_, status) = crd_type(&new, name)?;
            new["status"] = status;
        }
        metadata_mut(&mut new).remove("managedFields");
        match op {
            Some(op) => {
                let base = match request_managed {
                    Some(Value::Array(a)) if !a.is_empty() => {
                        managed::parse_entries(Some(&Value::Array(a)))
                    }
                    _ => managed::parse_entries(old.pointer("/metadata/managedFields")),
                };
                self.track_fields(
                    rt,
                    Some(&old),
                    &mut new,
                    base,
                    op,
                    subresource == Some("status"),
                )?;
            }
            None => {
                if let Some(mf) = old.pointer("/metadata/managedFields") {
                    metadata_mut(&mut new).insert("managedFields".into(), mf.clone());
                }
            }
        }
        if old.pointer("/metadata/deletionTimestamp").is_some() {
            let before = finalizers_of(&old);
            if finalizers_of(&new).iter().any(|f| !before.contains(f)) {
                return Err(ApiError::invalid(
                    &rt.group,
                    &rt.kind,
                    name,
                    "metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted",
                ));
            }
        }
        validate_custom(rt, &new, Some(&old), name)?;
        if rt.tracks_generation() && rt.spec_part(&old) != rt.spec_part(&new) {
            let g = old
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            metadata_mut(&mut new).insert("generation".into(), json!(g + 1));
        }
        if new == old || dry_run {
            return Ok(if dry_run { new } else { old });
        }
        if rt.is_crd() {
            let (t, _) = crd_type(&new, name)?;
            self.types.insert((t.group.clone(), t.plural.clone()), t);
        }
        let rv = self.next_rv();
        metadata_mut(&mut new).insert("resourceVersion".into(), json!(rv.to_string()));
        if new.pointer("/metadata/deletionTimestamp").is_some() && finalizers_of(&new).is_empty() {
            return Ok(self.remove(rt, key, Some(new)));
        }
        self.objects.insert(key, new.clone());
        self.emit(rt, EventType::Modified, &new, Some(old));
        Ok(new)
    }

    /// Remove an object now (a new resourceVersion must not have been taken
    /// yet unless `last` carries it), send DELETED, cascade for CRDs and
    /// finish terminating namespaces.
    fn remove(&mut self, rt: &ResourceType, key: ObjKey, last: Option<Value>) -> Value {
        let Some(old) = self.objects.remove(&key) else {
            return last.unwrap_or(Value::Null);
        };
        let mut obj = match last {
            Some(l) => l,
            None => {
                let rv = self.next_rv();
                let mut o = old.clone();
                metadata_mut(&mut o).insert("resourceVersion".into(), json!(rv.to_string()));
                o
            }
        };
        self.emit(rt, EventType::Deleted, &obj, Some(old));
        if rt.is_crd() {
            self.remove_crd_type(&obj);
        }
        if rt.is_namespace() {
            return obj;
        }
        if rt.namespaced {
            self.maybe_finish_namespace(&key.2);
        }
        normalise_metadata(&mut obj);
        obj
    }

    fn remove_crd_type(&mut self, crd: &Value) {
        let group = crd
            .pointer("/spec/group")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let plural = crd
            .pointer("/spec/names/plural")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let Some(t) = self.types.get(&(group.clone(), plural.clone())).cloned() else {
            return;
        };
        if !t.custom {
            return;
        }
        let start: ObjKey = (group.clone(), plural.clone(), String::new(), String::new());
        let keys: Vec<ObjKey> = self
            .objects
            .range(start..)
            .take_while(|(k, _)| k.0 == group && k.1 == plural)
            .map(|(k, _)| k.clone())
            .collect();
        for k in keys {
            self.remove(&t, k, None);
        }
        self.types.remove(&(group, plural));
    }

    /// Remove a terminating namespace once it holds no objects.
    fn maybe_finish_namespace(&mut self, ns: &str) {
        let key = (
            String::new(),
            "namespaces".to_string(),
            String::new(),
            ns.to_string(),
        );
        let terminating = self
            .objects
            .get(&key)
            .is_some_and(|n| n.pointer("/metadata/deletionTimestamp").is_some());
        if !terminating || self.objects.keys().any(|k| k.2 == ns) {
            return;
        }
        if let Some(t) = self
            .types
            .get(&(String::new(), "namespaces".to_string()))
            .cloned()
        {
            self.remove(&t, key, None);
        }
    }

    /// Delete an object, honouring finalizers.
    pub fn delete(
        &mut self,
        rt: &ResourceType,
        ns: Option<&str>,
        name: &str,
        precondition_rv: Option<&str>,
        precondition_uid: Option<&str>,
        dry_run: bool,
    ) -> ApiResult<Deleted> {
        let key = Self::key(rt, ns, name);
        let obj = self
            .objects
            .get(&key)
            .cloned()
            .ok_or_else(|| ApiError::not_found(&rt.group, &rt.plural, name))?;
        if precondition_rv.is_some_and(|rv| Some(rv) != meta_str(&obj, "resourceVersion"))
            || precondition_uid.is_some_and(|u| Some(u) != meta_str(&obj, "uid"))
        {
            return Err(ApiError::conflict(&rt.group, &rt.plural, name));
        }
        if dry_run {
            return Ok(Deleted {
                object: obj,
                gone: false,
            });
        }
        if rt.is_namespace() {
            return Ok(self.delete_namespace(rt, key, obj));
        }
        if !finalizers_of(&obj).is_empty() {
            if obj.pointer("/metadata/deletionTimestamp").is_some() {
                return Ok(Deleted {
                    object: obj,
                    gone: false,
                });
            }
            let mut new = obj.clone();
            let rv = self.next_rv();
            let m = metadata_mut(&mut new);
            m.insert("deletionTimestamp".into(), json!(now_rfc3339()));
            m.insert("deletionGracePeriodSeconds".into(), json!(0));
            m.insert("resourceVersion".into(), json!(rv.to_string()));
            self.objects.insert(key, new.clone());
            self.emit(rt, EventType::Modified, &new, Some(obj));
            return Ok(Deleted {
                object: new,
                gone: false,
            });
        }
        let object = self.remove(rt, key, None);
        Ok(Deleted { object, gone: true })
    }

    fn delete_namespace(&mut self, rt: &ResourceType, key: ObjKey, obj: Value) -> Deleted {
        let mut current = obj.clone();
        if obj.pointer("/metadata/deletionTimestamp").is_none() {
            let rv = self.next_rv();
            let m = metadata_mut(&mut current);
            m.insert("deletionTimestamp".into(), json!(now_rfc3339()));
            m.insert("resourceVersion".into(), json!(rv.to_string()));
            current["spec"] = json!({"finalizers": ["kubernetes"]});
            current["status"] = json!({"phase": "Terminating"});
            self.objects.insert(key.clone(), current.clone());
            self.emit(rt, EventType::Modified, &current, Some(obj));
        }
        // The contents are deleted later, by `sweep_namespace` (the namespace
        // controller), as in Kubernetes: `kubectl delete -f` of a namespace and
        // the objects in it succeeds for each object.
        Deleted {
            object: current,
            gone: false,
        }
    }

    /// The namespace controller's work for a terminating namespace: delete
    /// its contents (honouring finalizers) and remove it once empty.
    /// Does nothing unless `ns` is terminating.
    pub fn sweep_namespace(&mut self, ns: &str) {
        let key: ObjKey = (
            String::new(),
            "namespaces".to_string(),
            String::new(),
            ns.to_string(),
        );
        if self
            .objects
            .get(&key)
            .is_none_or(|n| n.pointer("/metadata/deletionTimestamp").is_none())
        {
            return;
        }
        let ns = ns.to_string();
        let children: Vec<ObjKey> = self
            .objects
            .keys()
            .filter(|k| k.2 == ns && !k.2.is_empty())
            .cloned()
            .collect();
        for k in children {
            let Some(t) = self.types.get(&(k.0.clone(), k.1.clone())).cloned() else {
                continue;
            };
            let _ = self.delete(&t, Some(&ns), &k.3, None, None, false);
        }
        self.maybe_finish_namespace(&ns);
    }
}

/// Parse a CRD into a served type and compute the CRD's status.
fn crd_type(crd: &Value, name: &str) -> ApiResult<(ResourceType, Value)> {
    let g = "apiextensions.k8s.io";
    let k = "CustomResourceDefinition";
    let s = |p: &str| {
        crd.pointer(p)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let group = s("/spec/group");
    let plural = s("/spec/names/plural");
    let kind = s("/spec/names/kind");
    if group.is_empty() || plural.is_empty() || kind.is_empty() {
        return Err(ApiError::invalid(
            g,
            k,
            name,
            "spec.group, spec.names.plural and spec.names.kind are required",
        ));
    }
    if name != format!("{plural}.{group}") {
        return Err(ApiError::invalid(
            g,
            k,
            name,
            format!(
                "metadata.name: Invalid value: \"{name}\": must be spec.names.plural+\".\"+spec.group"
            ),
        ));
    }
    let scope = s("/spec/scope");
    if scope != "Namespaced" && scope != "Cluster" {
        return Err(ApiError::invalid(
            g,
            k,
            name,
            "spec.scope: Unsupported value: must be Namespaced or Cluster",
        ));
    }
    let rule_errors = crate::cel::check_crd(crd);
    if !rule_errors.is_empty() {
        return Err(ApiError::invalid_fields(g, k, name, &rule_errors));
    }
    let versions = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let served: Vec<&Value> = versions
        .iter()
        .filter(|v| v.get("served").and_then(Value::as_bool).unwrap_or(true))
        .collect();
    if served.is_empty() {
        return Err(ApiError::invalid(
            g,
            k,
            name,
            "spec.versions: Invalid value: must have at least one served version",
        ));
    }
    let storage = versions
        .iter()
        .find(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        .and_then(|v| v.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let mut names: Vec<String> = served
        .iter()
        .filter_map(|v| v.get("name").and_then(Value::as_str))
        .map(String::from)
        .collect();
    names.sort_by_key(|v| std::cmp::Reverse(version_priority(v)));
    let has_status = served
        .iter()
        .any(|v| v.pointer("/subresources/status").is_some());
    let strs = |p: &str| -> Vec<String> {
        crd.pointer(p)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    let singular = match s("/spec/names/singular") {
        x if x.is_empty() => kind.to_lowercase(),
        x => x,
    };
    let list_kind = match s("/spec/names/listKind") {
        x if x.is_empty() => format!("{kind}List"),
        x => x,
    };
    let t = ResourceType {
        group,
        versions: names,
        plural: plural.clone(),
        singular: singular.clone(),
        kind: kind.clone(),
        namespaced: scope == "Namespaced",
        short_names: strs("/spec/names/shortNames"),
        categories: strs("/spec/names/categories"),
        has_status,
        custom: true,
        schemas: versions
            .iter()
            .filter_map(|v| {
                let name = v.get("name")?.as_str()?.to_string();
                let schema = v.pointer("/schema/openAPIV3Schema")?.clone();
                Some((name, Arc::new(schema)))
            })
            .collect(),
    };
    let now = now_rfc3339();
    let mut accepted =
        json!({"plural": plural, "singular": singular, "kind": kind, "listKind": list_kind});
    if !t.short_names.is_empty() {
        accepted["shortNames"] = json!(t.short_names);
    }
    if !t.categories.is_empty() {
        accepted["categories"] = json!(t.categories);
    }
    let cond = |ty: &str, reason: &str, msg: &str| json!({"type": ty, "status": "True", "lastTransitionTime": now, "reason": reason, "message": msg});
    let status = json!({
        "conditions": [
            cond("NamesAccepted", "NoConflicts", "no conflicts found"),
            cond("Established", "InitialNamesAccepted", "the initial names have been accepted"),
        ],
        "acceptedNames": accepted,
        "storedVersions": [storage],
    });
    Ok((t, status))
}

/// kube's version ordering: GA > beta > alpha, higher numbers first.
fn version_priority(v: &str) -> (u8, u64, u64) {
    let Some(rest) = v.strip_prefix('v') else {
        return (0, 0, 0);
    };
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let Ok(major) = digits.parse::<u64>() else {
        return (0, 0, 0);
    };
    let tail = &rest[digits.len()..];
    let (tier, minor) = if tail.is_empty() {
        (3, 0)
    } else if let Some(n) = tail.strip_prefix("beta") {
        (2, n.parse().unwrap_or(0))
    } else if let Some(n) = tail.strip_prefix("alpha") {
        (1, n.parse().unwrap_or(0))
    } else {
        (0, 0)
    };
    (tier, major, minor)
}

/// Qualified resource name used in request counters, e.g. `secrets` or
/// `zillizclusters.zilliz.io`.
pub fn counter_resource(rt: &ResourceType) -> String {
    qualified(&rt.group, &rt.plural)
}

/// A custom resource type's schema for `version` (the first one's when it has none).
fn version_schema(rt: &ResourceType, version: &str) -> Option<Arc<Value>> {
    if !rt.custom {
        return None;
    }
    rt.schemas
        .iter()
        .find(|(v, _)| v == version)
        .or_else(|| rt.schemas.first())
        .map(|(_, s)| s.clone())
}

/// The schema of a custom resource object, by the version of its `apiVersion`.
fn custom_schema(rt: &ResourceType, obj: &Value) -> Option<Arc<Value>> {
    let version = obj
        .get("apiVersion")
        .and_then(Value::as_str)
        .and_then(|a| a.rsplit('/').next())
        .unwrap_or("");
    version_schema(rt, version)
}

/// kube-apiserver's validation of a custom resource write: the structural schema, then (when
/// that found nothing that blocks them) the `x-kubernetes-validations` rules, with `old` on an
/// update. Failures are one `422 Invalid`.
fn validate_custom(
    rt: &ResourceType,
    obj: &Value,
    old: Option<&Value>,
    name: &str,
) -> ApiResult<()> {
    let Some(s) = custom_schema(rt, obj) else {
        return Ok(());
    };
    let mut errs = schema::validate(obj, &s);
    match schema::blocking(&errs) {
        Some(e) => errs.push(e),
        None => errs.extend(crate::cel::validate(obj, old, &s)),
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid_fields(&rt.group, &rt.kind, name, &errs))
    }
}
