//! Patch application: JSON merge patch (RFC 7386), JSON patch (RFC 6902)
//! with kube-apiserver's leniencies and strategic merge (server-side apply
//! merges and field ownership live in `managed`).

use crate::error::{ApiError, ApiResult};
use json_patch::PatchOperation;
use serde_json::Value;

/// The patch flavours selected by the request `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchKind {
    /// `application/merge-patch+json`
    Merge,
    /// `application/json-patch+json`
    Json,
    /// `application/strategic-merge-patch+json` (approximated)
    Strategic,
    /// `application/apply-patch+yaml` (server-side apply, see `managed`)
    Apply,
}

impl PatchKind {
    /// Map a `Content-Type` header value to a patch kind.
    pub fn from_content_type(ct: &str) -> Option<PatchKind> {
        let base = ct.split(';').next().unwrap_or("").trim();
        match base {
            "application/merge-patch+json" => Some(PatchKind::Merge),
            "application/json-patch+json" => Some(PatchKind::Json),
            "application/strategic-merge-patch+json" => Some(PatchKind::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+cbor" => {
                Some(PatchKind::Apply)
            }
            _ => None,
        }
    }
}

/// Parse the body of an apply patch: YAML (which includes JSON).
pub fn parse_apply_body(body: &[u8]) -> ApiResult<Value> {
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::bad_request("apply patch body is not UTF-8"))?;
    let v: Value = serde_yaml::from_str(text)
        .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?;
    if !v.is_object() {
        return Err(ApiError::bad_request("apply patch must be an object"));
    }
    Ok(v)
}

/// Apply a JSON patch. Like kube-apiserver (evanphx/json-patch), a `test`
/// against `null` passes when the path does not exist. A failing `test` or
/// an invalid path yields 422 Invalid via the supplied constructor.
pub fn apply_json_patch(
    doc: &mut Value,
    body: &[u8],
    invalid: impl Fn(String) -> ApiError,
) -> ApiResult<()> {
    let ops: Vec<PatchOperation> = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON patch: {e}")))?;
    for op in &ops {
        if let PatchOperation::Test(t) = op
            && t.value.is_null()
            && doc.pointer(t.path.as_str()).is_none_or(Value::is_null)
        {
            continue;
        }
        json_patch::patch(doc, std::slice::from_ref(op)).map_err(|e| invalid(e.to_string()))?;
    }
    Ok(())
}

/// RFC 7386 JSON merge patch.
pub fn merge(doc: &mut Value, patch: &Value) {
    json_patch::merge(doc, patch);
}

/// How a strategic merge patch combines a list field (Go struct tags
/// `patchStrategy` / `patchMergeKey` of the built-in types).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListStrategy {
    /// No patch strategy (atomic): the patch's list replaces the old one.
    Replace,
    /// `patchStrategy:"merge"` on a list of scalars: union, in order.
    MergePrimitive,
    /// `patchStrategy:"merge"` with this `patchMergeKey`.
    MergeByKey(&'static str),
}

/// The list strategy of the field at `path` (field names from the object
/// root, list items not counted) of a built-in `group`/`plural`, as declared
/// by the Kubernetes Go types this server stores.
pub fn builtin_list_strategy(group: &str, plural: &str, path: &[&str]) -> ListStrategy {
    use ListStrategy::{MergeByKey, MergePrimitive, Replace};
    match path {
        ["metadata", "finalizers"] => return MergePrimitive,
        ["metadata", "ownerReferences"] => return MergeByKey("uid"),
        ["status", "conditions"]
            if matches!(
                (group, plural),
                ("", "namespaces" | "services")
                    | ("apps", "deployments")
                    | ("policy", "poddisruptionbudgets")
            ) =>
        {
            return MergeByKey("type");
        }
        _ => {}
    }
    match (group, plural, path) {
        ("", "serviceaccounts", ["secrets"]) => MergeByKey("name"),
        ("", "services", ["spec", "ports"]) => MergeByKey("port"),
        ("apps", "deployments", ["spec", "template", "metadata", "finalizers"]) => MergePrimitive,
        ("apps", "deployments", ["spec", "template", "metadata", "ownerReferences"]) => {
            MergeByKey("uid")
        }
        ("apps", "deployments", ["spec", "template", "spec", rest @ ..]) => pod_spec_list(rest),
        _ => Replace,
    }
}

/// Lists of a `PodSpec` (and of its containers).
fn pod_spec_list(path: &[&str]) -> ListStrategy {
    use ListStrategy::{MergeByKey, Replace};
    match path {
        ["volumes" | "imagePullSecrets" | "schedulingGates" | "resourceClaims"] => {
            MergeByKey("name")
        }
        ["containers" | "initContainers" | "ephemeralContainers"] => MergeByKey("name"),
        ["hostAliases"] => MergeByKey("ip"),
        ["topologySpreadConstraints"] => MergeByKey("topologyKey"),
        [
            "containers" | "initContainers" | "ephemeralContainers",
            field,
        ] => match *field {
            "ports" => MergeByKey("containerPort"),
            "env" => MergeByKey("name"),
            "volumeMounts" => MergeByKey("mountPath"),
            "volumeDevices" => MergeByKey("devicePath"),
            _ => Replace,
        },
        _ => Replace,
    }
}

/// Strategic merge patch as kube-apiserver applies it to built-in types
/// (`k8s.io/apimachinery/pkg/util/strategicpatch`): maps merge (`null`
/// deletes), lists follow `schema` (merge by key, union of scalars, or
/// replace), and the directives `$patch: replace|delete|merge` (on maps and
/// as list elements), `$retainKeys`, `$deleteFromPrimitiveList/<list>` and
/// `$setElementOrder/<list>` are honoured.
pub fn strategic_merge(doc: &mut Value, patch: &Value, schema: &dyn Fn(&[&str]) -> ListStrategy) {
    let mut path = Vec::new();
    merge_value(doc, patch, &mut path, schema);
}

fn merge_value<'a>(
    doc: &mut Value,
    patch: &'a Value,
    path: &mut Vec<&'a str>,
    schema: &dyn Fn(&[&str]) -> ListStrategy,
) {
    let Value::Object(p) = patch else {
        *doc = patch.clone();
        return;
    };
    match p.get("$patch").and_then(Value::as_str) {
        Some("delete") => {
            *doc = Value::Null;
            return;
        }
        Some("replace") => {
            let mut clean = patch.clone();
            strip_directives(&mut clean);
            *doc = clean;
            return;
        }
        _ => {}
    }
    if !doc.is_object() {
        *doc = Value::Object(Default::default());
    }
    let Value::Object(d) = doc else { return };
    if let Some(Value::Array(keep)) = p.get("$retainKeys") {
        d.retain(|k, _| keep.iter().any(|x| x.as_str() == Some(k)));
    }
    // `$setElementOrder` lists, with the server's order from before the merge
    let orders: Vec<(&str, &Vec<Value>, Vec<Value>)> = p
        .iter()
        .filter_map(|(k, v)| {
            let list_key = k.strip_prefix("$setElementOrder/")?;
            let Value::Array(order) = v else { return None };
            let before = match d.get(list_key) {
                Some(Value::Array(a)) => a.clone(),
                _ => Vec::new(),
            };
            Some((list_key, order, before))
        })
        .collect();
    for (k, v) in p {
        if let Some(list_key) = k.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(items)), Value::Array(remove)) = (d.get_mut(list_key), v) {
                items.retain(|i| !remove.contains(i));
            }
            continue;
        }
        if k.starts_with('$') {
            continue;
        }
        path.push(k.as_str());
        match v {
            Value::Null => {
                d.remove(k);
            }
            Value::Object(_) => {
                let entry = d.entry(k.clone()).or_insert(Value::Null);
                merge_value(entry, v, path, schema);
                if entry.is_null() {
                    d.remove(k);
                }
            }
            Value::Array(items) => {
                let strategy = schema(path);
                let old = match d.remove(k) {
                    Some(Value::Array(a)) => a,
                    _ => Vec::new(),
                };
                let merged = merge_list(old, items, strategy, path, schema);
                d.insert(k.clone(), Value::Array(merged));
            }
            _ => {
                d.insert(k.clone(), v.clone());
            }
        }
        path.pop();
    }
    for (list_key, order, before) in orders {
        path.push(list_key);
        let strategy = schema(path);
        path.pop();
        if let Some(Value::Array(items)) = d.get_mut(list_key) {
            let key = match strategy {
                ListStrategy::MergeByKey(k) => Some(k),
                _ => None,
            };
            *items = set_element_order(std::mem::take(items), order, &before, key);
        }
    }
}

fn merge_key_of<'v>(item: &'v Value, key: Option<&str>) -> Option<&'v Value> {
    match key {
        Some(k) => item.get(k),
        None => Some(item),
    }
}

fn merge_list<'a>(
    mut old: Vec<Value>,
    patch: &'a [Value],
    strategy: ListStrategy,
    path: &mut Vec<&'a str>,
    schema: &dyn Fn(&[&str]) -> ListStrategy,
) -> Vec<Value> {
    let directive = |v: &Value| v.get("$patch").and_then(Value::as_str).map(String::from);
    let is_special = |v: &Value| directive(v).is_some();
    if strategy != ListStrategy::Replace
        && patch
            .iter()
            .any(|v| directive(v).as_deref() == Some("replace"))
    {
        old.clear();
    }
    match strategy {
        ListStrategy::Replace => {
            let mut clean = Value::Array(patch.to_vec());
            strip_directives(&mut clean);
            match clean {
                Value::Array(a) => a,
                _ => Vec::new(),
            }
        }
        ListStrategy::MergePrimitive => {
            for v in patch.iter().filter(|v| !is_special(v)) {
                if !old.contains(v) {
                    old.push(v.clone());
                }
            }
            old
        }
        ListStrategy::MergeByKey(key) => {
            for v in patch {
                let id = v.get(key);
                match directive(v).as_deref() {
                    Some("delete") => {
                        old.retain(|o| id.is_none() || o.get(key) != id);
                        continue;
                    }
                    Some("replace") => continue,
                    _ => {}
                }
                match old.iter_mut().find(|o| id.is_some() && o.get(key) == id) {
                    Some(o) => merge_value(o, v, path, schema),
                    None => {
                        let mut fresh = Value::Object(Default::default());
                        merge_value(&mut fresh, v, path, schema);
                        old.push(fresh);
                    }
                }
            }
            old
        }
    }
}

/// `$setElementOrder`: the items named in `order` in that order, merged with
/// the items only the server has by their original relative position
/// (strategicpatch's `normalizeElementOrder` / `mergeSortedSlice`).
fn set_element_order(
    items: Vec<Value>,
    order: &[Value],
    before: &[Value],
    key: Option<&str>,
) -> Vec<Value> {
    let order_keys: Vec<&Value> = order.iter().filter_map(|o| merge_key_of(o, key)).collect();
    let server_order: Vec<&Value> = before.iter().filter_map(|i| merge_key_of(i, key)).collect();
    let (mut in_patch, server_only): (Vec<Value>, Vec<Value>) = items
        .into_iter()
        .partition(|i| merge_key_of(i, key).is_some_and(|k| order_keys.contains(&k)));
    in_patch.sort_by_key(|i| {
        merge_key_of(i, key)
            .and_then(|k| order_keys.iter().position(|o| *o == k))
            .unwrap_or(usize::MAX)
    });
    let pos =
        |v: &Value| merge_key_of(v, key).and_then(|k| server_order.iter().position(|s| *s == k));
    let mut out = Vec::with_capacity(in_patch.len() + server_only.len());
    let (mut left, mut right) = (
        server_only.into_iter().peekable(),
        in_patch.into_iter().peekable(),
    );
    loop {
        match (left.peek(), right.peek()) {
            (Some(l), Some(r)) => {
                let take_left = matches!((pos(l), pos(r)), (Some(a), Some(b)) if a < b);
                let next = if take_left { left.next() } else { right.next() };
                out.extend(next);
            }
            (Some(_), None) => out.extend(left.next()),
            (None, Some(_)) => out.extend(right.next()),
            (None, None) => break,
        }
    }
    out
}
fn strip_directives(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|k, _| !k.starts_with('$'));
            m.values_mut().for_each(strip_directives);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_directives),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn test_null_passes_on_missing_path() {
        let mut doc = json!({"metadata": {"name": "a"}});
        let body = br#"[{"op":"test","path":"/metadata/finalizers","value":null},
                        {"op":"add","path":"/metadata/finalizers","value":["f"]}]"#;
        apply_json_patch(&mut doc, body, ApiError::bad_request).expect("patch applies");
        assert_eq!(doc["metadata"]["finalizers"], json!(["f"]));
        let fail = br#"[{"op":"test","path":"/metadata/finalizers","value":null}]"#;
        let err = apply_json_patch(&mut doc, fail, |m| ApiError::new(422, "Invalid", m));
        assert_eq!(err.err().map(|e| e.code), Some(422));
    }

    #[test]
    fn strategic_directives() {
        let mut doc = json!({"metadata": {"finalizers": ["a", "b"], "labels": {"x": "1"}}});
        let p = json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"], "$setElementOrder/finalizers": [], "labels": {"x": null, "y": "2"}}});
        strategic_merge(&mut doc, &p, &|path| {
            builtin_list_strategy("", "configmaps", path)
        });
        assert_eq!(
            doc,
            json!({"metadata": {"finalizers": ["b"], "labels": {"y": "2"}}})
        );
    }

    fn deploy_schema(path: &[&str]) -> ListStrategy {
        builtin_list_strategy("apps", "deployments", path)
    }

    #[test]
    fn strategic_lists_merge_by_key() {
        let mut doc = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "a", "image": "a:1", "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}]},
            {"name": "side", "image": "s:1"}
        ], "tolerations": [{"key": "k"}]}}}});
        // what kubectl apply sends when a's image and env change and a new container appears
        let p = json!({"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "b"}, {"name": "a"}],
            "containers": [
                {"name": "a", "image": "a:2",
                 "$setElementOrder/env": [{"name": "Y"}, {"name": "Z"}],
                 "env": [{"name": "X", "$patch": "delete"}, {"name": "Z", "value": "3"}]},
                {"name": "b", "image": "b:1"}
            ],
            "tolerations": [{"key": "other"}]
        }}}});
        strategic_merge(&mut doc, &p, &deploy_schema);
        assert_eq!(
            doc,
            json!({"spec": {"template": {"spec": {"containers": [
                {"name": "b", "image": "b:1"},
                {"name": "a", "image": "a:2", "env": [{"name": "Y", "value": "2"}, {"name": "Z", "value": "3"}]},
                {"name": "side", "image": "s:1"}
            ], "tolerations": [{"key": "other"}]}}}})
        );
    }

    #[test]
    fn strategic_retain_keys_and_list_replace() {
        let mut doc = json!({"spec": {
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}},
            "template": {"spec": {"containers": [{"name": "a"}, {"name": "b"}]}}
        }});
        let p = json!({"spec": {
            "strategy": {"$retainKeys": ["type"], "type": "Recreate"},
            "template": {"spec": {"containers": [{"$patch": "replace"}, {"name": "c"}]}}
        }});
        strategic_merge(&mut doc, &p, &deploy_schema);
        assert_eq!(
            doc,
            json!({"spec": {
                "strategy": {"type": "Recreate"},
                "template": {"spec": {"containers": [{"name": "c"}]}}
            }})
        );
    }
}
