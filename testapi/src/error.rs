//! Kubernetes `Status` errors.

use crate::schema::FieldError;
use serde_json::{Map, Value, json};

/// An API error, rendered as a `meta.k8s.io/v1` `Status` object.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status code.
    pub code: u16,
    /// `reason` field, e.g. `NotFound`.
    pub reason: &'static str,
    /// Human readable message.
    pub message: String,
    /// `details` (name, group, kind, causes) when known; boxed to keep errors small.
    pub details: Option<Box<Details>>,
}

/// `Status.details`.
#[derive(Debug, Clone, Default)]
pub struct Details {
    /// Object name.
    pub name: String,
    /// API group ("" for core).
    pub group: String,
    /// Resource (plural), as kube-apiserver reports it.
    pub kind: String,
    /// `causes` (e.g. the `FieldManagerConflict` entries of an apply conflict).
    pub causes: Vec<Value>,
}

/// Result type of store and handler operations.
pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// Generic constructor.
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }

    /// Attach details.
    pub fn with_details(mut self, group: &str, plural: &str, name: &str) -> Self {
        self.details = Some(Box::new(Details {
            name: name.to_string(),
            group: group.to_string(),
            kind: plural.to_string(),
            causes: Vec::new(),
        }));
        self
    }

    /// 400 BadRequest.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    /// 404 NotFound for an object.
    pub fn not_found(group: &str, plural: &str, name: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("{} \"{name}\" not found", qualified(group, plural)),
        )
        .with_details(group, plural, name)
    }

    /// 404 NotFound for a path that matches nothing.
    pub fn no_route() -> Self {
        Self::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
    }

    /// 409 AlreadyExists.
    pub fn already_exists(group: &str, plural: &str, name: &str) -> Self {
        Self::new(
            409,
            "AlreadyExists",
            format!("{} \"{name}\" already exists", qualified(group, plural)),
        )
        .with_details(group, plural, name)
    }

    /// 409 Conflict on a stale resourceVersion.
    pub fn conflict(group: &str, plural: &str, name: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                qualified(group, plural)
            ),
        )
        .with_details(group, plural, name)
    }

    /// 422 Invalid (`Kind.group "name" is invalid: ...`, kube's `NewInvalid`).
    pub fn invalid(group: &str, kind: &str, name: &str, message: impl Into<String>) -> Self {
        let mut e = Self::new(
            422,
            "Invalid",
            format!(
                "{} \"{name}\" is invalid: {}",
                qualified(group, kind),
                message.into()
            ),
        );
        e.details = Some(Box::new(Details {
            name: name.to_string(),
            group: group.to_string(),
            kind: kind.to_string(),
            causes: Vec::new(),
        }));
        e
    }

    /// 422 Invalid for field errors, as kube's `NewInvalid(kind, name, errs)`: the message
    /// lists them (`[a, b]` when more than one), `details.causes` has one
    /// `{reason, message, field}` each.
    pub fn invalid_fields(group: &str, kind: &str, name: &str, errs: &[FieldError]) -> Self {
        let mut shown: Vec<String> = Vec::new();
        for e in errs {
            let s = e.to_string();
            if !shown.contains(&s) {
                shown.push(s);
            }
        }
        let message = match shown.as_slice() {
            [one] => one.clone(),
            many => format!("[{}]", many.join(", ")),
        };
        let mut e = Self::invalid(group, kind, name, message);
        if let Some(d) = e.details.as_mut() {
            d.causes = errs
                .iter()
                .map(|f| json!({"reason": f.kind.reason(), "message": f.body(), "field": f.field}))
                .collect();
        }
        e
    }

    /// 403 Forbidden.
    pub fn forbidden(group: &str, plural: &str, name: &str, message: impl Into<String>) -> Self {
        Self::new(403, "Forbidden", message).with_details(group, plural, name)
    }

    /// 405 MethodNotAllowed.
    pub fn method_not_allowed() -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )
    }

    /// 410 Gone / Expired, used for too-old watch resourceVersions.
    pub fn gone(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    /// Render as a `Status` JSON object.
    pub fn to_status(&self) -> Value {
        let mut s = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(d) = &self.details {
            let mut details = Map::new();
            for (k, v) in [("name", &d.name), ("group", &d.group), ("kind", &d.kind)] {
                if !v.is_empty() || d.causes.is_empty() {
                    details.insert(k.into(), json!(v));
                }
            }
            if !d.causes.is_empty() {
                details.insert("causes".into(), Value::Array(d.causes.clone()));
            }
            s["details"] = Value::Object(details);
        }
        s
    }
}

/// `plural.group` or `plural` for the core group.
pub fn qualified(group: &str, plural: &str) -> String {
    if group.is_empty() {
        plural.to_string()
    } else {
        format!("{plural}.{group}")
    }
}

/// A `Status` with `status: Success`, as returned by deletes of built-ins.
pub fn success_status(group: &str, plural: &str, name: &str, uid: &str) -> Value {
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": {"name": name, "group": group, "kind": plural, "uid": uid},
    })
}
