//! Field ownership for server-side apply (`metadata.managedFields`), a
//! subset of kube-apiserver's fieldmanager / structured-merge-diff.
//!
//! A field set is a set of paths; a path element is written as in FieldsV1:
//! `f:<field>`, `k:{"name":"x"}` (an item of a list of maps, by its keys) or
//! `v:<json>` (a value of a set list). Atomic lists are owned as a whole.
//!
//! - Apply by manager M: M's set becomes the applied config's set; fields M
//!   applied before and no longer applies are removed from the object unless
//!   another manager owns them; a change of the value of a field owned by
//!   another manager is a conflict unless forced (then ownership moves).
//! - Update (create, PUT, merge/JSON/strategic patch) by M: M takes the
//!   fields it added or changed from everyone; removed fields leave every set.

use crate::error::ApiError;
use crate::patch::{ListStrategy, builtin_list_strategy};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// A path in FieldsV1 notation, one element per entry.
pub type Path = Vec<String>;
/// A set of owned paths.
pub type FieldSet = BTreeSet<Path>;

/// How a list is merged and owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListKind {
    /// Owned and replaced as a whole.
    Atomic,
    /// A set of scalars, each value owned separately.
    Set,
    /// A list of maps identified by these key fields.
    Map(Vec<String>),
}

/// List types of one resource type.
#[derive(Debug, Clone)]
pub enum Schema {
    /// A built-in: the strategic-merge list strategies of the Go types.
    Builtin {
        /// API group.
        group: String,
        /// Plural.
        plural: String,
    },
    /// A custom resource: the CRD version's `openAPIV3Schema`
    /// (`x-kubernetes-list-type` / `x-kubernetes-list-map-keys`).
    Crd(std::sync::Arc<Value>),
}

impl Schema {
    /// The list kind of the list at `fields` (field names from the root, list
    /// items not counted).
    pub fn list_kind(&self, fields: &[&str]) -> ListKind {
        match fields {
            ["metadata", "finalizers"] => return ListKind::Set,
            ["metadata", "ownerReferences"] => return ListKind::Map(vec!["uid".into()]),
            ["metadata", ..] => return ListKind::Atomic,
            _ => {}
        }
        match self {
            Schema::Builtin { group, plural } => match builtin_list_strategy(group, plural, fields)
            {
                ListStrategy::Replace => ListKind::Atomic,
                ListStrategy::MergePrimitive => ListKind::Set,
                ListStrategy::MergeByKey(k) => ListKind::Map(vec![k.to_string()]),
            },
            Schema::Crd(root) => {
                let mut node: &Value = root;
                for f in fields {
                    while node.get("type").and_then(Value::as_str) == Some("array") {
                        match node.get("items") {
                            Some(i) => node = i,
                            None => return ListKind::Atomic,
                        }
                    }
                    node = match node
                        .get("properties")
                        .and_then(|p| p.get(*f))
                        .or_else(|| node.get("additionalProperties").filter(|a| a.is_object()))
                    {
                        Some(n) => n,
                        None => return ListKind::Atomic,
                    };
                }
                match node.get("x-kubernetes-list-type").and_then(Value::as_str) {
                    Some("set") => ListKind::Set,
                    Some("map") => {
                        let keys: Vec<String> = node
                            .get("x-kubernetes-list-map-keys")
                            .and_then(Value::as_array)
                            .map(|a| {
                                a.iter()
                                    .filter_map(|k| k.as_str().map(String::from))
                                    .collect()
                            })
                            .unwrap_or_default();
                        if keys.is_empty() {
                            ListKind::Atomic
                        } else {
                            ListKind::Map(keys)
                        }
                    }
                    _ => ListKind::Atomic,
                }
            }
        }
    }
}

/// One `managedFields` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Manager name.
    pub manager: String,
    /// `Apply` or `Update`.
    pub operation: String,
    /// apiVersion of the last write.
    pub api_version: String,
    /// Time of the last write that changed this entry.
    pub time: Option<String>,
    /// `status` or "".
    pub subresource: String,
    /// Owned fields.
    pub set: FieldSet,
}

impl Entry {
    /// kube-apiserver's manager identifier: manager, operation, subresource
    /// and, for updates only, the apiVersion.
    fn id(&self) -> (String, String, String, String) {
        let v = if self.operation == "Apply" {
            String::new()
        } else {
            self.api_version.clone()
        };
        (
            self.manager.clone(),
            self.operation.clone(),
            self.subresource.clone(),
            v,
        )
    }

    /// How a conflict cause names this manager.
    fn describe(&self) -> String {
        let mut s = format!("{:?}", self.manager);
        if !self.subresource.is_empty() {
            s = format!("{s} with subresource {:?}", self.subresource);
        }
        if self.operation == "Update" {
            s = format!("{s} using {}", self.api_version);
        }
        s
    }
}

/// Parse `metadata.managedFields` of an object (entries without a manager
/// are dropped, as kube-apiserver does with `[{}]`).
pub fn parse_entries(v: Option<&Value>) -> Vec<Entry> {
    let Some(Value::Array(a)) = v else {
        return Vec::new();
    };
    a.iter()
        .filter_map(|e| {
            let s = |k: &str| e.get(k).and_then(Value::as_str).map(String::from);
            let manager = s("manager")?;
            let mut set = FieldSet::new();
            if let Some(f) = e.get("fieldsV1") {
                fields_v1_to_set(f, &mut Vec::new(), &mut set);
            }
            Some(Entry {
                manager,
                operation: s("operation").unwrap_or_else(|| "Update".into()),
                api_version: s("apiVersion").unwrap_or_default(),
                time: s("time"),
                subresource: s("subresource").unwrap_or_default(),
                set,
            })
        })
        .collect()
}

fn fields_v1_to_set(v: &Value, path: &mut Path, out: &mut FieldSet) {
    let Value::Object(m) = v else { return };
    if m.is_empty() && !path.is_empty() {
        out.insert(path.clone());
        return;
    }
    for (k, child) in m {
        if k == "." {
            out.insert(path.clone());
            continue;
        }
        path.push(k.clone());
        fields_v1_to_set(child, path, out);
        path.pop();
    }
}

/// FieldsV1 JSON of a set (`"."` marks a member that also has members below).
pub fn set_to_fields_v1(set: &FieldSet) -> Value {
    #[derive(Default)]
    struct Node {
        member: bool,
        children: BTreeMap<String, Node>,
    }
    fn render(n: &Node) -> Value {
        let mut m = Map::new();
        if n.member && !n.children.is_empty() {
            m.insert(".".into(), json!({}));
        }
        for (k, c) in &n.children {
            m.insert(k.clone(), render(c));
        }
        Value::Object(m)
    }
    let mut root = Node::default();
    for p in set {
        let mut n = &mut root;
        for e in p {
            n = n.children.entry(e.clone()).or_default();
        }
        n.member = true;
    }
    render(&root)
}

/// Encode entries as kube-apiserver orders them (Apply before Update, then
/// by time, manager, apiVersion, subresource).
pub fn encode_entries(entries: &[Entry]) -> Value {
    let mut sorted: Vec<&Entry> = entries.iter().collect();
    sorted.sort_by(|a, b| {
        (
            &a.operation,
            &a.time,
            &a.manager,
            &a.api_version,
            &a.subresource,
        )
            .cmp(&(
                &b.operation,
                &b.time,
                &b.manager,
                &b.api_version,
                &b.subresource,
            ))
    });
    Value::Array(
        sorted
            .into_iter()
            .map(|e| {
                let mut o = json!({
                    "manager": e.manager,
                    "operation": e.operation,
                    "apiVersion": e.api_version,
                    "fieldsType": "FieldsV1",
                    "fieldsV1": set_to_fields_v1(&e.set),
                });
                if let Some(t) = &e.time {
                    o["time"] = json!(t);
                }
                if !e.subresource.is_empty() {
                    o["subresource"] = json!(e.subresource);
                }
                o
            })
            .collect(),
    )
}

fn field(k: &str) -> String {
    format!("f:{k}")
}

fn key_elem(item: &Value, keys: &[String]) -> Option<String> {
    let mut m = Map::new();
    for k in keys {
        m.insert(k.clone(), item.get(k)?.clone());
    }
    Some(format!("k:{}", Value::Object(m)))
}

fn value_elem(v: &Value) -> String {
    format!("v:{v}")
}

/// Key elements of all items, or None when an item cannot be keyed.
fn keyed<'v>(items: &'v [Value], keys: &[String]) -> Option<Vec<(String, &'v Value)>> {
    items
        .iter()
        .map(|i| key_elem(i, keys).map(|k| (k, i)))
        .collect()
}

/// Walks values along with the field names used to look up list kinds.
struct Walk<'s> {
    schema: &'s Schema,
    path: Path,
    fields: Vec<String>,
}

impl Walk<'_> {
    fn list_kind(&self) -> ListKind {
        let f: Vec<&str> = self.fields.iter().map(String::as_str).collect();
        self.schema.list_kind(&f)
    }

    fn push_field(&mut self, k: &str) {
        self.path.push(field(k));
        self.fields.push(k.to_string());
    }

    fn pop_field(&mut self) {
        self.path.pop();
        self.fields.pop();
    }

    /// The set of an applied configuration: leaves, empty maps and nulls,
    /// items of keyed lists, values of sets, atomic lists.
    fn config_set(&mut self, v: &Value, out: &mut FieldSet) {
        let Value::Object(m) = v else { return };
        for (k, child) in m {
            self.push_field(k);
            match child {
                Value::Object(c) if !c.is_empty() => self.config_set(child, out),
                Value::Array(items) => self.list_set(items, out),
                _ => {
                    out.insert(self.path.clone());
                }
            }
            self.pop_field();
        }
    }

    fn list_set(&mut self, items: &[Value], out: &mut FieldSet) {
        match self.list_kind() {
            ListKind::Set if !items.is_empty() => {
                for i in items {
                    let mut p = self.path.clone();
                    p.push(value_elem(i));
                    out.insert(p);
                }
            }
            ListKind::Map(keys) if !items.is_empty() => match keyed(items, &keys) {
                Some(ks) => {
                    for (k, item) in ks {
                        self.path.push(k);
                        out.insert(self.path.clone());
                        self.config_set(item, out);
                        self.path.pop();
                    }
                }
                None => {
                    out.insert(self.path.clone());
                }
            },
            _ => {
                out.insert(self.path.clone());
            }
        }
    }

    /// Every path of `v` below the current path (for added/removed subtrees).
    fn all_below(&mut self, v: &Value, out: &mut FieldSet) {
        match v {
            Value::Object(m) => {
                for (k, c) in m {
                    self.push_field(k);
                    out.insert(self.path.clone());
                    self.all_below(c, out);
                    self.pop_field();
                }
            }
            Value::Array(items) => match self.list_kind() {
                ListKind::Set => {
                    for i in items {
                        let mut p = self.path.clone();
                        p.push(value_elem(i));
                        out.insert(p);
                    }
                }
                ListKind::Map(keys) => {
                    if let Some(ks) = keyed(items, &keys) {
                        for (k, item) in ks {
                            self.path.push(k);
                            out.insert(self.path.clone());
                            self.all_below(item, out);
                            self.path.pop();
                        }
                    }
                }
                ListKind::Atomic => {}
            },
            _ => {}
        }
    }

    fn compare(&mut self, old: Option<&Value>, new: Option<&Value>, c: &mut Comparison) {
        match (old, new) {
            (None, None) => {}
            (None, Some(n)) => {
                c.added.insert(self.path.clone());
                self.all_below(n, &mut c.added);
            }
            (Some(o), None) => {
                c.removed.insert(self.path.clone());
                self.all_below(o, &mut c.removed);
            }
            (Some(Value::Object(o)), Some(Value::Object(n))) => {
                let keys: BTreeSet<&String> = o.keys().chain(n.keys()).collect();
                for k in keys {
                    self.push_field(k);
                    self.compare(o.get(k), n.get(k), c);
                    self.pop_field();
                }
            }
            (Some(Value::Array(o)), Some(Value::Array(n))) => match self.list_kind() {
                ListKind::Set => {
                    for v in n.iter().filter(|v| !o.contains(v)) {
                        let mut p = self.path.clone();
                        p.push(value_elem(v));
                        c.added.insert(p);
                    }
                    for v in o.iter().filter(|v| !n.contains(v)) {
                        let mut p = self.path.clone();
                        p.push(value_elem(v));
                        c.removed.insert(p);
                    }
                }
                ListKind::Map(keys) => match (keyed(o, &keys), keyed(n, &keys)) {
                    (Some(ok), Some(nk)) => {
                        let om: BTreeMap<String, &Value> = ok.into_iter().collect();
                        let nm: BTreeMap<String, &Value> = nk.into_iter().collect();
                        let ks: BTreeSet<&String> = om.keys().chain(nm.keys()).collect();
                        for k in ks {
                            self.path.push(k.clone());
                            self.compare(om.get(k).copied(), nm.get(k).copied(), c);
                            self.path.pop();
                        }
                    }
                    _ if o != n => {
                        c.modified.insert(self.path.clone());
                    }
                    _ => {}
                },
                ListKind::Atomic => {
                    if o != n {
                        c.modified.insert(self.path.clone());
                    }
                }
            },
            (Some(o), Some(n)) => {
                if o != n {
                    c.modified.insert(self.path.clone());
                    self.all_below(o, &mut c.removed);
                    self.all_below(n, &mut c.added);
                }
            }
        }
    }

    /// Server-side apply merge of `config` into `live`: maps merge (a null
    /// removes), keyed lists merge by key, sets are unions, other lists and
    /// scalars are replaced.
    fn merge(&mut self, live: &mut Value, config: &Value) {
        let Value::Object(cfg) = config else {
            *live = config.clone();
            return;
        };
        if !live.is_object() {
            *live = json!({});
        }
        let Value::Object(l) = live else { return };
        for (k, v) in cfg {
            self.push_field(k);
            match v {
                Value::Null => {
                    l.remove(k);
                }
                Value::Object(_) => {
                    let e = l.entry(k.clone()).or_insert(Value::Null);
                    self.merge(e, v);
                }
                Value::Array(items) => {
                    let merged = match (self.list_kind(), l.get_mut(k)) {
                        (ListKind::Set, Some(Value::Array(old))) => {
                            let mut out = old.clone();
                            for i in items {
                                if !out.contains(i) {
                                    out.push(i.clone());
                                }
                            }
                            out
                        }
                        (ListKind::Map(keys), Some(Value::Array(old)))
                            if keyed(old, &keys).is_some() && keyed(items, &keys).is_some() =>
                        {
                            let mut out = old.clone();
                            for i in items {
                                let id = key_elem(i, &keys);
                                match out.iter_mut().find(|o| key_elem(o, &keys) == id) {
                                    Some(o) => {
                                        self.path.push(id.unwrap_or_default());
                                        self.merge(o, i);
                                        self.path.pop();
                                    }
                                    None => out.push(i.clone()),
                                }
                            }
                            out
                        }
                        _ => items.clone(),
                    };
                    l.insert(k.clone(), Value::Array(merged));
                }
                _ => {
                    l.insert(k.clone(), v.clone());
                }
            }
            self.pop_field();
        }
    }
}

/// Differences between two objects.
#[derive(Debug, Default)]
struct Comparison {
    added: FieldSet,
    removed: FieldSet,
    modified: FieldSet,
}

/// Server-side apply merge of an applied configuration into the live object.
pub fn apply_merge(live: &mut Value, config: &Value, schema: &Schema) {
    let mut w = Walk {
        schema,
        path: Vec::new(),
        fields: Vec::new(),
    };
    w.merge(live, config);
}

/// Remove the field at `path` from `obj` (nothing if absent).
fn remove_path(obj: &mut Value, path: &[String]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut cur = obj;
    for e in parents {
        let next = match cur {
            Value::Object(m) => e.strip_prefix("f:").and_then(|f| m.get_mut(f)),
            Value::Array(items) => items.iter_mut().find(|i| item_matches(i, e)),
            _ => None,
        };
        match next {
            Some(n) => cur = n,
            None => return,
        }
    }
    match cur {
        Value::Object(m) => {
            if let Some(f) = last.strip_prefix("f:") {
                m.remove(f);
            }
        }
        Value::Array(items) => items.retain(|i| !item_matches(i, last)),
        _ => {}
    }
}

fn item_matches(item: &Value, elem: &str) -> bool {
    if let Some(k) = elem.strip_prefix("k:") {
        let Ok(Value::Object(keys)) = serde_json::from_str::<Value>(k) else {
            return false;
        };
        keys.iter().all(|(k, v)| item.get(k) == Some(v))
    } else if let Some(v) = elem.strip_prefix("v:") {
        serde_json::from_str::<Value>(v).is_ok_and(|v| &v == item)
    } else {
        false
    }
}

/// `.spec.containers[name="a"].image`, as structured-merge-diff prints paths.
pub fn path_string(path: &[String]) -> String {
    let mut s = String::new();
    for e in path {
        if let Some(f) = e.strip_prefix("f:") {
            s.push('.');
            s.push_str(f);
        } else if let Some(k) = e.strip_prefix("k:") {
            let parts: Vec<String> = match serde_json::from_str::<Value>(k) {
                Ok(Value::Object(m)) => m.iter().map(|(k, v)| format!("{k}={v}")).collect(),
                _ => vec![k.to_string()],
            };
            s.push_str(&format!("[{}]", parts.join(",")));
        } else if let Some(v) = e.strip_prefix("v:") {
            s.push_str(&format!("[={v}]"));
        }
    }
    s
}

/// Metadata fields never owned (kube-apiserver's stripmeta manager).
fn stripped(path: &[String]) -> bool {
    match path {
        [] => true,
        [f] => matches!(f.as_str(), "f:apiVersion" | "f:kind" | "f:metadata"),
        [m, f, ..] if m == "f:metadata" => matches!(
            f.as_str(),
            "f:name"
                | "f:namespace"
                | "f:uid"
                | "f:creationTimestamp"
                | "f:selfLink"
                | "f:generation"
                | "f:managedFields"
                | "f:resourceVersion"
                | "f:deletionTimestamp"
                | "f:deletionGracePeriodSeconds"
        ),
        _ => false,
    }
}

const KUBECTL: &str = "kubectl";
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// The parsed client-side apply annotation of an object.
fn last_applied(obj: Option<&Value>) -> Option<Value> {
    let text = obj?
        .pointer("/metadata/annotations")?
        .get(LAST_APPLIED)?
        .as_str()?;
    serde_json::from_str(text).ok().filter(Value::is_object)
}

/// A write for field tracking.
#[derive(Debug, Clone)]
pub struct Op<'a> {
    /// Field manager.
    pub manager: &'a str,
    /// The request's apiVersion (`group/version`).
    pub api_version: &'a str,
    /// `Some(config, force)` for server-side apply, None for updates.
    pub apply: Option<(&'a Value, bool)>,
}

/// Everything the tracker needs to know about the resource type.
pub struct Scope<'a> {
    /// List types.
    pub schema: &'a Schema,
    /// The write is to the `status` subresource.
    pub status_subresource: bool,
    /// The type has a `status` subresource (status is not owned through the main resource).
    pub has_status: bool,
    /// Custom resource (its spec/status are ordinary fields).
    pub custom: bool,
}

impl Scope<'_> {
    fn keep(&self, p: &[String]) -> bool {
        if stripped(p) {
            return false;
        }
        let in_status = p.first().is_some_and(|f| f == "f:status");
        if self.status_subresource {
            in_status
        } else {
            !(self.has_status && in_status)
        }
    }

    fn filter(&self, s: FieldSet) -> FieldSet {
        s.into_iter()
            .filter(|p| {
                // the always-present top-level structs of built-ins own nothing themselves
                let top_struct =
                    p.len() == 1 && !self.custom && (p[0] == "f:spec" || p[0] == "f:status");
                self.keep(p) && !top_struct
            })
            .collect()
    }
}

fn without_managed(obj: Option<&Value>) -> Option<Value> {
    obj.map(|o| {
        let mut o = o.clone();
        if let Some(m) = o.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove("managedFields");
        }
        o
    })
}

/// The 409 of a non-forced apply that would change fields of other managers.
fn conflict_error(conflicts: &[(String, Path)]) -> ApiError {
    let causes: Vec<Value> = conflicts
        .iter()
        .map(|(m, p)| {
            json!({"reason": "FieldManagerConflict", "message": format!("conflict with {m}"), "field": path_string(p)})
        })
        .collect();
    let message = if let [(m, p)] = conflicts {
        format!(
            "Apply failed with 1 conflict: conflict with {m}: {}",
            path_string(p)
        )
    } else {
        let mut by_manager: BTreeMap<&String, Vec<String>> = BTreeMap::new();
        for (m, p) in conflicts {
            by_manager.entry(m).or_default().push(path_string(p));
        }
        let parts: Vec<String> = by_manager
            .iter()
            .map(|(m, ps)| {
                let lines: Vec<String> = ps.iter().map(|p| format!("- {p}")).collect();
                format!("conflicts with {m}:\n{}", lines.join("\n"))
            })
            .collect();
        format!(
            "Apply failed with {} conflicts: {}",
            conflicts.len(),
            parts.join("\n")
        )
    };
    let mut e = ApiError::new(409, "Conflict", message);
    e.details = Some(Box::new(crate::error::Details {
        causes,
        ..Default::default()
    }));
    e
}

/// Track ownership for a write from `old` (None on create) to `new`, which
/// has no `managedFields` yet. `base` are the entries to start from (the
/// stored ones, or those a client wrote explicitly). For apply, fields the
/// manager stopped applying are removed from `new`. Sets `new`'s
/// `metadata.managedFields`; returns 409 on a non-forced apply conflict.
pub fn track(
    old: Option<&Value>,
    new: &mut Value,
    base: Vec<Entry>,
    op: &Op<'_>,
    scope: &Scope<'_>,
    now: &str,
    normalise: &mut dyn FnMut(&mut Value) -> Result<(), ApiError>,
) -> Result<(), ApiError> {
    let subresource = if scope.status_subresource {
        "status"
    } else {
        ""
    };
    let mut entries = base;
    let old_entries = entries.clone();
    let me = Entry {
        manager: op.manager.to_string(),
        operation: if op.apply.is_some() {
            "Apply"
        } else {
            "Update"
        }
        .into(),
        api_version: op.api_version.to_string(),
        time: Some(now.to_string()),
        subresource: subresource.into(),
        set: FieldSet::new(),
    };
    let my_id = me.id();
    let idx = match entries.iter().position(|e| e.id() == my_id) {
        Some(i) => i,
        None => {
            entries.push(me.clone());
            entries.len() - 1
        }
    };
    let mut walk = Walk {
        schema: scope.schema,
        path: Vec::new(),
        fields: Vec::new(),
    };
    if let Some((config, _)) = op.apply {
        let mut applied = FieldSet::new();
        walk.config_set(config, &mut applied);
        let applied = scope.filter(applied);
        let last = std::mem::replace(&mut entries[idx].set, applied);
        let owned = |p: &Path| {
            entries
                .iter()
                .any(|e| e.set.iter().any(|q| q.starts_with(p)))
        };
        let gone: Vec<Path> = last.iter().filter(|p| !owned(p)).cloned().collect();
        if !gone.is_empty() {
            for p in gone {
                remove_path(new, &p);
            }
            normalise(new)?;
        }
    }
    let old_plain = without_managed(old);
    let mut c = Comparison::default();
    walk.compare(old_plain.as_ref(), Some(new), &mut c);
    let changed = scope.filter(c.added.union(&c.modified).cloned().collect());
    let removed = scope.filter(c.removed);
    let mut conflicts: Vec<(String, Path)> = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        if i != idx {
            for p in e.set.intersection(&changed) {
                conflicts.push((e.describe(), p.clone()));
            }
        }
    }
    if let Some((_, false)) = op.apply
        && !conflicts.is_empty()
    {
        // kube-apiserver's lastAppliedManager: `kubectl apply --server-side` may take
        // over fields of the object's client-side-apply configuration
        let allowed = (op.manager == KUBECTL)
            .then(|| last_applied(old))
            .flatten()
            .map(|cfg| {
                let mut s = FieldSet::new();
                walk.path.clear();
                walk.fields.clear();
                walk.config_set(&cfg, &mut s);
                s
            });
        if !allowed.is_some_and(|a| conflicts.iter().all(|(_, p)| a.contains(p))) {
            return Err(conflict_error(&conflicts));
        }
    }
    for (i, e) in entries.iter_mut().enumerate() {
        if i != idx {
            e.set = e.set.difference(&changed).cloned().collect();
            e.set = e.set.difference(&removed).cloned().collect();
        }
    }
    if op.apply.is_none() {
        let mine = &mut entries[idx].set;
        mine.extend(changed.iter().cloned());
        *mine = mine.difference(&removed).cloned().collect();
    }
    entries.retain(|e| !e.set.is_empty());
    // no-op: keep the stored entries (and their times) untouched
    let unchanged_object = old_plain.as_ref() == Some(&*new);
    let same_sets = entries.len() == old_entries.len()
        && entries.iter().all(|e| {
            old_entries
                .iter()
                .any(|o| o.id() == e.id() && o.set == e.set)
        });
    let result = if unchanged_object && same_sets {
        old_entries
    } else {
        for e in &mut entries {
            if e.id() == my_id {
                e.time = Some(now.to_string());
                e.api_version = op.api_version.to_string();
            }
        }
        entries
    };
    // kube-apiserver's lastAppliedUpdater: keep kubectl's client-side annotation in step
    if let Some((config, _)) = op.apply
        && op.manager == KUBECTL
        && last_applied(old).is_some()
    {
        let mut cfg = config.clone();
        if let Some(a) = cfg
            .pointer_mut("/metadata/annotations")
            .and_then(Value::as_object_mut)
        {
            a.remove(LAST_APPLIED);
        }
        let m = crate::store::metadata_mut(new);
        let ann = m.entry("annotations").or_insert_with(|| json!({}));
        if let Some(a) = ann.as_object_mut() {
            a.insert(LAST_APPLIED.into(), json!(cfg.to_string()));
        }
    }
    let m = crate::store::metadata_mut(new);
    if result.is_empty() {
        m.remove("managedFields");
    } else {
        m.insert("managedFields".into(), encode_entries(&result));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease_schema() -> Schema {
        Schema::Builtin {
            group: "coordination.k8s.io".into(),
            plural: "leases".into(),
        }
    }

    fn scope(schema: &Schema) -> Scope<'_> {
        Scope {
            schema,
            status_subresource: false,
            has_status: false,
            custom: false,
        }
    }

    #[test]
    fn fields_v1_round_trip() {
        let v = json!({"f:metadata": {"f:labels": {".": {}, "f:app": {}}},
                       "f:spec": {"f:containers": {"k:{\"name\":\"a\"}": {".": {}, "f:image": {}, "f:name": {}}}},
                       "f:finalizers": {"v:\"x\"": {}}});
        let mut s = FieldSet::new();
        fields_v1_to_set(&v, &mut Vec::new(), &mut s);
        assert_eq!(set_to_fields_v1(&s), v);
        let p: Path = vec![
            "f:spec".into(),
            "f:containers".into(),
            "k:{\"name\":\"a\"}".into(),
            "f:image".into(),
        ];
        assert!(s.contains(&p));
        assert_eq!(path_string(&p), ".spec.containers[name=\"a\"].image");
    }

    #[test]
    fn apply_conflict_and_shared_ownership() {
        let schema = lease_schema();
        let sc = scope(&schema);
        let old = json!({"metadata": {"name": "l"}, "spec": {}});
        let cfg_a = json!({"spec": {"holderIdentity": "a"}});
        let mut new = old.clone();
        apply_merge(&mut new, &cfg_a, &schema);
        let op = Op {
            manager: "a",
            api_version: "coordination.k8s.io/v1",
            apply: Some((&cfg_a, false)),
        };
        track(
            Some(&old),
            &mut new,
            vec![],
            &op,
            &sc,
            "t1",
            &mut |_| Ok(()),
        )
        .unwrap();
        assert_eq!(
            new["metadata"]["managedFields"][0]["fieldsV1"],
            json!({"f:spec": {"f:holderIdentity": {}}})
        );
        let stored = new.clone();
        let entries = parse_entries(stored.pointer("/metadata/managedFields"));
        // b applies another value: conflict
        let cfg_b = json!({"spec": {"holderIdentity": "b"}});
        let mut cand = stored.clone();
        apply_merge(&mut cand, &cfg_b, &schema);
        let op_b = Op {
            manager: "b",
            api_version: "coordination.k8s.io/v1",
            apply: Some((&cfg_b, false)),
        };
        let err = track(
            Some(&stored),
            &mut cand,
            entries.clone(),
            &op_b,
            &sc,
            "t2",
            &mut |_| Ok(()),
        )
        .unwrap_err();
        assert_eq!(err.code, 409);
        assert_eq!(
            err.message,
            "Apply failed with 1 conflict: conflict with \"a\": .spec.holderIdentity"
        );
        // same value: shared
        let mut cand = stored.clone();
        apply_merge(&mut cand, &cfg_a, &schema);
        let op_b = Op {
            manager: "b",
            api_version: "coordination.k8s.io/v1",
            apply: Some((&cfg_a, false)),
        };
        track(
            Some(&stored),
            &mut cand,
            entries,
            &op_b,
            &sc,
            "t2",
            &mut |_| Ok(()),
        )
        .unwrap();
        assert_eq!(
            cand["metadata"]["managedFields"].as_array().map(Vec::len),
            Some(2)
        );
    }
}
