//! What kube-apiserver does to a custom resource with its CRD version's structural
//! `openAPIV3Schema` (apiextensions-apiserver's `schema/pruning`, `schema/defaulting` and
//! the kube-openapi validator behind `validation.ValidateCustomResource`):
//!
//! - [`prune`]: fields the schema does not specify are dropped, except under
//!   `x-kubernetes-preserve-unknown-fields: true` (and `apiVersion`, `kind`, `metadata` at
//!   the root and in `x-kubernetes-embedded-resource` objects);
//! - [`default`]: `null`s of non-nullable fields without a default are dropped, then every
//!   absent field (or non-nullable `null`) with a `default` gets a copy of it, and defaulting
//!   goes on inside what was set;
//! - [`validate`]: `type`, `nullable`, `enum`, `required`, `minimum`/`maximum` (and their
//!   `exclusive*`), `multipleOf`, `minLength`/`maxLength`, `pattern`,
//!   `minItems`/`maxItems`, `uniqueItems`, `minProperties`/`maxProperties`, and the
//!   uniqueness of `x-kubernetes-list-type: set|map` items, reported as kube's field errors.
//!
//! The CEL rules (`x-kubernetes-validations`) are in [`crate::cel`].

use serde_json::{Map, Value};

/// Kube's `field.ErrorType`, with what it is called in a `Status` cause and in a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorType {
    /// `FieldValueRequired`, "Required value".
    Required,
    /// `FieldValueInvalid`, "Invalid value".
    Invalid,
    /// `FieldValueTypeInvalid`, "Invalid value" (a value of the wrong type).
    TypeInvalid,
    /// `FieldValueNotSupported`, "Unsupported value" (not in `enum`).
    NotSupported,
    /// `FieldValueTooLong`, "Too long".
    TooLong,
    /// `FieldValueTooMany`, "Too many".
    TooMany,
    /// `FieldValueForbidden`, "Forbidden".
    Forbidden,
    /// `FieldValueDuplicate`, "Duplicate value".
    Duplicate,
}

impl ErrorType {
    /// The `reason` of a `Status` cause.
    pub fn reason(self) -> &'static str {
        match self {
            ErrorType::Required => "FieldValueRequired",
            ErrorType::Invalid => "FieldValueInvalid",
            ErrorType::TypeInvalid => "FieldValueTypeInvalid",
            ErrorType::NotSupported => "FieldValueNotSupported",
            ErrorType::TooLong => "FieldValueTooLong",
            ErrorType::TooMany => "FieldValueTooMany",
            ErrorType::Forbidden => "FieldValueForbidden",
            ErrorType::Duplicate => "FieldValueDuplicate",
        }
    }

    fn text(self) -> &'static str {
        match self {
            ErrorType::Required => "Required value",
            ErrorType::Invalid | ErrorType::TypeInvalid => "Invalid value",
            ErrorType::NotSupported => "Unsupported value",
            ErrorType::TooLong => "Too long",
            ErrorType::TooMany => "Too many",
            ErrorType::Forbidden => "Forbidden",
            ErrorType::Duplicate => "Duplicate value",
        }
    }
}

/// A field error, as kube's `field.Error`.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    /// What is wrong.
    pub kind: ErrorType,
    /// The field's path, e.g. `spec.collectionName` (`<nil>` for the whole object).
    pub field: String,
    /// The bad value as kube prints it (`"abc"`, `5`, `null`), `None` when it is omitted.
    pub value: Option<String>,
    /// Detail, e.g. `collectionName is immutable`.
    pub detail: String,
}

impl FieldError {
    /// A field error with the value printed as kube does (objects and lists omitted).
    pub fn new(
        kind: ErrorType,
        field: &str,
        value: Option<&Value>,
        detail: impl Into<String>,
    ) -> Self {
        FieldError {
            kind,
            field: if field.is_empty() {
                "<nil>".into()
            } else {
                field.into()
            },
            value: value.and_then(go_value),
            detail: detail.into(),
        }
    }

    /// Kube's `ErrorBody()`: the message without the field, e.g. `Required value` or
    /// `Invalid value: "x": must be ...`.
    pub fn body(&self) -> String {
        let mut s = self.kind.text().to_string();
        let shows_value = !matches!(
            self.kind,
            ErrorType::Required | ErrorType::Forbidden | ErrorType::TooLong
        );
        if shows_value && let Some(v) = &self.value {
            s.push_str(": ");
            s.push_str(v);
        }
        if !self.detail.is_empty() {
            s.push_str(": ");
            s.push_str(&self.detail);
        }
        s
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.body())
    }
}

/// How Go's `%v`/`%q` prints a scalar in a field error; objects and lists are omitted.
fn go_value(v: &Value) -> Option<String> {
    match v {
        Value::Null => Some("\"null\"".into()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(number(n)),
        Value::String(s) => Some(quote(s)),
        Value::Array(_) | Value::Object(_) => None,
    }
}

/// Go's `%q` of a string (close enough: JSON escaping).
pub(crate) fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}

/// Go's `%v` of a JSON number (integral floats without a fraction, like `0.0` → `0`).
fn number(n: &serde_json::Number) -> String {
    if let Some(i) = n.as_i64() {
        return i.to_string();
    }
    if let Some(u) = n.as_u64() {
        return u.to_string();
    }
    let f = n.as_f64().unwrap_or(0.0);
    if f.fract() == 0.0 && f.abs() < 1e21 {
        format!("{f:.0}")
    } else {
        f.to_string()
    }
}

/// `a.b` (the root is the empty path).
pub(crate) fn child(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

fn flag(s: &Value, name: &str) -> bool {
    s.get(name).and_then(Value::as_bool) == Some(true)
}

fn properties(s: &Value) -> Option<&Map<String, Value>> {
    s.get("properties").and_then(Value::as_object)
}

/// The schema of a map's values (`additionalProperties` as a schema).
fn additional(s: &Value) -> Option<&Value> {
    s.get("additionalProperties").filter(|a| a.is_object())
}

/// The schema of a field of an object node.
pub(crate) fn field_schema<'a>(s: &'a Value, name: &str) -> Option<&'a Value> {
    properties(s)
        .and_then(|p| p.get(name))
        .or_else(|| additional(s))
}

const META_FIELDS: [&str; 3] = ["apiVersion", "kind", "metadata"];

/// Drop the fields `schema` does not specify (the schema is the version's `openAPIV3Schema`;
/// `obj` the whole object: `apiVersion`, `kind`, `metadata` stay).
///
/// Returns the paths of the fields dropped (`spec.bogus`, `spec.items[0].x`), which
/// kube-apiserver reports as `unknown field "spec.bogus"` (a warning, or with
/// `fieldValidation=Strict` an error).
pub fn prune(obj: &mut Value, schema: &Value) -> Vec<String> {
    let mut pruned = Vec::new();
    prune_node(obj, Some(schema), true, "", &mut pruned);
    pruned
}

fn prune_node(
    x: &mut Value,
    s: Option<&Value>,
    resource_root: bool,
    path: &str,
    pruned: &mut Vec<String>,
) {
    if let Some(s) = s
        && flag(s, "x-kubernetes-preserve-unknown-fields")
    {
        return skip_prune(x, s, resource_root, path, pruned);
    }
    match x {
        Value::Object(m) => {
            let Some(s) = s else {
                pruned.extend(m.keys().map(|k| child(path, k)));
                m.clear();
                return;
            };
            let embedded = resource_root || flag(s, "x-kubernetes-embedded-resource");
            m.retain(|k, v| {
                if embedded && META_FIELDS.contains(&k.as_str()) {
                    return true;
                }
                let at = child(path, k);
                if let Some(p) = properties(s).and_then(|p| p.get(k)) {
                    prune_node(v, Some(p), false, &at, pruned);
                    true
                } else if let Some(a) = additional(s) {
                    prune_node(v, Some(a), false, &at, pruned);
                    true
                } else if s.get("additionalProperties").and_then(Value::as_bool) == Some(true) {
                    true
                } else {
                    pruned.push(at);
                    false
                }
            });
        }
        Value::Array(a) => {
            let items = s.and_then(|s| s.get("items"));
            for (i, v) in a.iter_mut().enumerate() {
                prune_node(v, items, false, &format!("{path}[{i}]"), pruned);
            }
        }
        _ => {}
    }
}

/// Under `x-kubernetes-preserve-unknown-fields`: unknown fields stay, known ones are pruned
/// by their schemas.
fn skip_prune(x: &mut Value, s: &Value, resource_root: bool, path: &str, pruned: &mut Vec<String>) {
    match x {
        Value::Object(m) => {
            let embedded = resource_root || flag(s, "x-kubernetes-embedded-resource");
            for (k, v) in m.iter_mut() {
                if embedded && META_FIELDS.contains(&k.as_str()) {
                    continue;
                }
                if let Some(p) = field_schema(s, k) {
                    prune_node(v, Some(p), false, &child(path, k), pruned);
                }
            }
        }
        Value::Array(a) => {
            if let Some(items) = s.get("items") {
                for (i, v) in a.iter_mut().enumerate() {
                    prune_node(v, Some(items), false, &format!("{path}[{i}]"), pruned);
                }
            }
        }
        _ => {}
    }
}

/// Kube's structural defaulting of a whole object: non-nullable `null`s without a default
/// are dropped, then defaults are applied.
pub fn default(obj: &mut Value, schema: &Value) {
    prune_nulls(obj, schema);
    default_node(obj, schema);
}

fn nullable(s: &Value) -> bool {
    flag(s, "nullable")
}

fn prune_nulls(x: &mut Value, s: &Value) {
    match x {
        Value::Object(m) => m.retain(|k, v| match field_schema(s, k) {
            Some(p) => {
                if v.is_null() && p.get("default").is_none() && !nullable(p) {
                    false
                } else {
                    prune_nulls(v, p);
                    true
                }
            }
            None => true,
        }),
        Value::Array(a) => {
            if let Some(items) = s.get("items") {
                for v in a {
                    prune_nulls(v, items);
                }
            }
        }
        _ => {}
    }
}

fn default_node(x: &mut Value, s: &Value) {
    match x {
        Value::Object(m) => {
            if let Some(props) = properties(s) {
                for (k, p) in props {
                    let Some(d) = p.get("default") else { continue };
                    let missing = match m.get(k) {
                        None => true,
                        Some(v) => v.is_null() && !nullable(p),
                    };
                    if missing {
                        m.insert(k.clone(), d.clone());
                    }
                }
            }
            for (k, v) in m.iter_mut() {
                if let Some(p) = properties(s).and_then(|p| p.get(k)) {
                    default_node(v, p);
                } else if let Some(a) = additional(s) {
                    if v.is_null()
                        && !nullable(a)
                        && let Some(d) = a.get("default")
                    {
                        *v = d.clone();
                    }
                    default_node(v, a);
                }
            }
        }
        Value::Array(arr) => {
            if let Some(items) = s.get("items") {
                for v in arr {
                    if v.is_null()
                        && !nullable(items)
                        && let Some(d) = items.get("default")
                    {
                        *v = d.clone();
                    }
                    default_node(v, items);
                }
            }
        }
        _ => {}
    }
}

/// Validate a whole object against its version's schema (the root's `apiVersion`, `kind` and
/// `metadata` are not: kube-apiserver checks them elsewhere).
pub fn validate(obj: &Value, schema: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    validate_node(obj, schema, "", true, &mut errs);
    errs
}

/// The JSON type name kube-openapi reports for a value.
fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn type_matches(v: &Value, ty: &str) -> bool {
    match ty {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "boolean" => v.is_boolean(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        _ => true,
    }
}

/// JSON equality with numbers compared by value (`1` equals `1.0`).
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_eq(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

fn num(s: &Value, k: &str) -> Option<f64> {
    s.get(k).and_then(Value::as_f64)
}

fn count(s: &Value, k: &str) -> Option<u64> {
    s.get(k).and_then(|v| {
        v.as_u64()
            .or_else(|| v.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
    })
}

fn validate_node(v: &Value, s: &Value, path: &str, root: bool, errs: &mut Vec<FieldError>) {
    let invalid = |detail: String| FieldError::new(ErrorType::Invalid, path, Some(v), detail);
    let ty = s.get("type").and_then(Value::as_str);
    if v.is_null() {
        if !nullable(s) && ty.is_some() {
            errs.push(type_error(path, ty.unwrap_or_default(), v));
        }
        return;
    }
    if flag(s, "x-kubernetes-int-or-string") {
        if !(v.is_string() || v.is_i64() || v.is_u64()) {
            errs.push(type_error(path, "integer,string", v));
            return;
        }
    } else if let Some(ty) = ty
        && !type_matches(v, ty)
    {
        errs.push(type_error(path, ty, v));
        return;
    }
    if let Some(allowed) = s.get("enum").and_then(Value::as_array)
        && !allowed.iter().any(|a| json_eq(a, v))
    {
        let supported: Vec<String> = allowed
            .iter()
            .map(|a| go_value(a).unwrap_or_else(|| a.to_string()))
            .collect();
        errs.push(FieldError::new(
            ErrorType::NotSupported,
            path,
            Some(v),
            format!("supported values: {}", supported.join(", ")),
        ));
    }
    match v {
        Value::String(text) => {
            let len = text.chars().count() as u64;
            if let Some(max) = count(s, "maxLength")
                && len > max
            {
                errs.push(FieldError::new(
                    ErrorType::TooLong,
                    path,
                    None,
                    format!("may not be more than {max} bytes"),
                ));
            }
            if let Some(min) = count(s, "minLength")
                && len < min
            {
                errs.push(invalid(format!(
                    "{path} in body should be at least {min} chars long"
                )));
            }
            if let Some(p) = s.get("pattern").and_then(Value::as_str) {
                match regex::Regex::new(p) {
                    Ok(re) if re.is_match(text) => {}
                    _ => errs.push(invalid(format!("{path} in body should match '{p}'"))),
                }
            }
        }
        Value::Number(n) => {
            let f = n.as_f64().unwrap_or(0.0);
            let show = |x: f64| {
                serde_json::Number::from_f64(x)
                    .map(|n| number(&n))
                    .unwrap_or_default()
            };
            if let Some(min) = num(s, "minimum") {
                if flag(s, "exclusiveMinimum") && f <= min {
                    errs.push(invalid(format!(
                        "{path} in body should be greater than {}",
                        show(min)
                    )));
                } else if f < min {
                    errs.push(invalid(format!(
                        "{path} in body should be greater than or equal to {}",
                        show(min)
                    )));
                }
            }
            if let Some(max) = num(s, "maximum") {
                if flag(s, "exclusiveMaximum") && f >= max {
                    errs.push(invalid(format!(
                        "{path} in body should be less than {}",
                        show(max)
                    )));
                } else if f > max {
                    errs.push(invalid(format!(
                        "{path} in body should be less than or equal to {}",
                        show(max)
                    )));
                }
            }
            if let Some(m) = num(s, "multipleOf")
                && m != 0.0
                && (f / m).fract() != 0.0
            {
                errs.push(invalid(format!(
                    "{path} in body should be a multiple of {}",
                    show(m)
                )));
            }
        }
        Value::Array(items) => {
            let n = items.len() as u64;
            if let Some(max) = count(s, "maxItems")
                && n > max
            {
                errs.push(FieldError {
                    kind: ErrorType::TooMany,
                    field: path.into(),
                    value: Some(n.to_string()),
                    detail: format!("must have at most {max} items"),
                });
            }
            if let Some(min) = count(s, "minItems")
                && n < min
            {
                errs.push(FieldError::new(
                    ErrorType::Invalid,
                    path,
                    Some(&Value::from(n)),
                    format!("{path} in body should have at least {min} items"),
                ));
            }
            list_uniqueness(items, s, path, errs);
            if let Some(item_schema) = s.get("items") {
                for (i, item) in items.iter().enumerate() {
                    validate_node(item, item_schema, &format!("{path}[{i}]"), false, errs);
                }
            }
        }
        Value::Object(m) => {
            let n = m.len() as u64;
            if let Some(max) = count(s, "maxProperties")
                && n > max
            {
                errs.push(FieldError {
                    kind: ErrorType::TooMany,
                    field: path.into(),
                    value: Some(n.to_string()),
                    detail: format!("must have at most {max} items"),
                });
            }
            if let Some(min) = count(s, "minProperties")
                && n < min
            {
                errs.push(invalid(format!(
                    "{path} in body should have at least {min} properties"
                )));
            }
            if let Some(req) = s.get("required").and_then(Value::as_array) {
                for r in req.iter().filter_map(Value::as_str) {
                    if !m.contains_key(r) {
                        errs.push(FieldError::new(
                            ErrorType::Required,
                            &child(path, r),
                            None,
                            "",
                        ));
                    }
                }
            }
            for (k, fv) in m {
                if root && META_FIELDS.contains(&k.as_str()) {
                    continue;
                }
                if let Some(p) = field_schema(s, k) {
                    validate_node(fv, p, &child(path, k), false, errs);
                }
            }
        }
        Value::Bool(_) | Value::Null => {}
    }
}

fn type_error(path: &str, ty: &str, v: &Value) -> FieldError {
    let actual = type_name(v);
    FieldError {
        kind: ErrorType::TypeInvalid,
        field: if path.is_empty() {
            "<nil>".into()
        } else {
            path.into()
        },
        value: Some(quote(actual)),
        detail: format!(
            "{} in body must be of type {ty}: {}",
            if path.is_empty() { "body" } else { path },
            quote(actual)
        ),
    }
}

/// `x-kubernetes-list-type: set` items and `map` keys must be unique (kube's
/// `structurallisttype.ValidateListSetsAndMaps`); `uniqueItems` likewise.
fn list_uniqueness(items: &[Value], s: &Value, path: &str, errs: &mut Vec<FieldError>) {
    let list_type = s.get("x-kubernetes-list-type").and_then(Value::as_str);
    let keys: Vec<&str> = s
        .get("x-kubernetes-list-map-keys")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    for (i, item) in items.iter().enumerate() {
        let earlier = &items[..i];
        let dup = match list_type {
            Some("map") if !keys.is_empty() => {
                let key_of = |x: &Value| -> Vec<Value> {
                    keys.iter()
                        .map(|k| x.get(*k).cloned().unwrap_or(Value::Null))
                        .collect()
                };
                let mine = key_of(item);
                if earlier
                    .iter()
                    .any(|e| key_of(e).iter().zip(&mine).all(|(a, b)| json_eq(a, b)))
                {
                    let shown: Map<String, Value> = keys
                        .iter()
                        .map(|k| (k.to_string(), item.get(*k).cloned().unwrap_or(Value::Null)))
                        .collect();
                    Some(Value::Object(shown).to_string())
                } else {
                    None
                }
            }
            Some("set") => earlier
                .iter()
                .any(|e| json_eq(e, item))
                .then(|| go_value(item).unwrap_or_else(|| item.to_string())),
            _ if flag(s, "uniqueItems") && earlier.iter().any(|e| json_eq(e, item)) => {
                Some(go_value(item).unwrap_or_else(|| item.to_string()))
            }
            _ => None,
        };
        if let Some(shown) = dup {
            errs.push(FieldError {
                kind: ErrorType::Duplicate,
                field: format!("{path}[{i}]"),
                value: Some(shown),
                detail: String::new(),
            });
        }
    }
}

/// Errors that keep kube-apiserver from running the CEL rules (a wrong type, a missing
/// required field, an unsupported enum value, too long / too many): then the rules are not
/// evaluated and this error is added instead.
pub fn blocking(errs: &[FieldError]) -> Option<FieldError> {
    errs.iter()
        .any(|e| {
            matches!(
                e.kind,
                ErrorType::NotSupported
                    | ErrorType::Required
                    | ErrorType::TooLong
                    | ErrorType::TooMany
                    | ErrorType::TypeInvalid
            )
        })
        .then(|| FieldError {
            kind: ErrorType::Invalid,
            field: "<nil>".into(),
            value: Some("\"null\"".into()),
            detail: "some validation rules were not checked because the object was invalid; correct the existing errors to complete validation".into(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {
                        "name": {"type": "string", "minLength": 1, "maxLength": 5, "pattern": "^[a-z]+$"},
                        "mode": {"type": "string", "enum": ["A", "B"], "default": "A"},
                        "size": {"type": "integer", "minimum": 1, "maximum": 3},
                        "opt": {"type": "string", "nullable": true},
                        "tags": {"type": "array", "maxItems": 2, "minItems": 1, "items": {"type": "string"},
                                 "x-kubernetes-list-type": "set"},
                        "conn": {"type": "object", "default": {}, "properties": {
                            "port": {"type": "integer", "default": 80}}},
                        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true,
                                 "properties": {"known": {"type": "object", "properties": {"a": {"type": "string"}}}}},
                        "labels": {"type": "object", "additionalProperties": {"type": "string"}}
                    }
                }
            }
        })
    }

    #[test]
    fn prunes_unknown_fields_but_not_preserved_or_meta() {
        let mut o = json!({"apiVersion": "x/v1", "kind": "K", "metadata": {"name": "n"},
            "junk": 1,
            "spec": {"name": "a", "extra": true, "labels": {"k": "v"},
                     "free": {"anything": {"deep": 1}, "known": {"a": "x", "b": "y"}}}});
        let pruned = prune(&mut o, &schema());
        assert_eq!(pruned, ["junk", "spec.extra", "spec.free.known.b"]);
        assert_eq!(
            o,
            json!({"apiVersion": "x/v1", "kind": "K", "metadata": {"name": "n"},
                "spec": {"name": "a", "labels": {"k": "v"},
                         "free": {"anything": {"deep": 1}, "known": {"a": "x"}}}})
        );
    }

    #[test]
    fn defaults_nested_and_replaces_non_nullable_nulls() {
        let mut o = json!({"spec": {"name": "a", "mode": null, "size": null, "opt": null}});
        default(&mut o, &schema());
        assert_eq!(
            o,
            json!({"spec": {"name": "a", "mode": "A", "opt": null, "conn": {"port": 80}}})
        );
    }

    #[test]
    fn validation_messages_follow_kube() {
        let o = json!({"metadata": {"anything": 1}, "spec": {
            "mode": "C", "size": 7, "tags": ["a", "a", "b"], "opt": null, "labels": {"k": 1}}});
        let msgs: Vec<String> = validate(&o, &schema())
            .iter()
            .map(|e| e.to_string())
            .collect();
        for want in [
            "spec.name: Required value",
            "spec.mode: Unsupported value: \"C\": supported values: \"A\", \"B\"",
            "spec.size: Invalid value: 7: spec.size in body should be less than or equal to 3",
            "spec.tags: Too many: 3: must have at most 2 items",
            "spec.tags[1]: Duplicate value: \"a\"",
            "spec.labels.k: Invalid value: \"integer\": spec.labels.k in body must be of type string: \"integer\"",
        ] {
            assert!(msgs.contains(&want.to_string()), "{want} not in {msgs:#?}");
        }
        assert_eq!(msgs.len(), 6, "{msgs:#?}");
        let o = json!({"spec": {"name": "ABCDEF", "size": 0, "tags": [], "conn": null}});
        let msgs: Vec<String> = validate(&o, &schema())
            .iter()
            .map(|e| e.to_string())
            .collect();
        for want in [
            "spec.name: Too long: may not be more than 5 bytes",
            "spec.name: Invalid value: \"ABCDEF\": spec.name in body should match '^[a-z]+$'",
            "spec.size: Invalid value: 0: spec.size in body should be greater than or equal to 1",
            "spec.tags: Invalid value: 0: spec.tags in body should have at least 1 items",
            "spec.conn: Invalid value: \"null\": spec.conn in body must be of type object: \"null\"",
        ] {
            assert!(msgs.contains(&want.to_string()), "{want} not in {msgs:#?}");
        }
        assert!(blocking(&validate(&o, &schema())).is_some());
        assert!(validate(&json!({"spec": {"name": "ok", "size": 2}}), &schema()).is_empty());
    }
}
