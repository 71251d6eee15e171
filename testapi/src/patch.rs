//! Patch application: JSON merge patch (RFC 7386), JSON patch (RFC 6902)
//! with kube-apiserver's leniencies, a strategic-merge approximation and
//! the merge used for server-side apply.

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
    /// `application/apply-patch+yaml` (server-side apply, merge semantics)
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

/// An approximation of strategic merge patch: a merge patch that honours
/// `$patch: delete|replace` on maps and `$deleteFromPrimitiveList/<key>`,
/// and ignores the other `$` directives (`$setElementOrder`, `$retainKeys`).
/// Lists are replaced (kube merges some lists by key; this does not).
pub fn strategic_merge(doc: &mut Value, patch: &Value) {
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
        if v.is_null() {
            d.remove(k);
        } else if v.is_object() {
            let entry = d.entry(k.clone()).or_insert(Value::Null);
            strategic_merge(entry, v);
            if entry.is_null() {
                d.remove(k);
            }
        } else {
            let mut clean = v.clone();
            strip_directives(&mut clean);
            d.insert(k.clone(), clean);
        }
    }
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
        strategic_merge(&mut doc, &p);
        assert_eq!(
            doc,
            json!({"metadata": {"finalizers": ["b"], "labels": {"y": "2"}}})
        );
    }
}
