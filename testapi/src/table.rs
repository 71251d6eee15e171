//! Server-side printing: `meta.k8s.io` `Table` responses, as kube-apiserver
//! sends them to `kubectl get` (which asks with
//! `Accept: application/json;as=Table;v=v1;g=meta.k8s.io,...`).
//!
//! Custom resources get a `Name` column followed by the CRD version's
//! `additionalPrinterColumns` (or `Age` when it has none), with cells computed
//! from the columns' JSONPaths like the apiextensions table convertor does:
//! missing values are `null` cells, `date` cells are human-readable ages.
//! Built-in types get the columns of kube-apiserver's printers (the cheap
//! ones): namespaces `Status`, secrets `Type`/`Data`, configmaps `Data`,
//! serviceaccounts `Secrets`, leases `Holder`, CRDs, roles and clusterroles
//! `Created At`, and the full column sets of deployments, services,
//! (cluster)rolebindings and poddisruptionbudgets (status-derived cells read
//! whatever status was written: no controller fills it in).

use crate::error::{ApiError, ApiResult};
use crate::store::{ResourceType, Store};
use axum::http::{HeaderMap, header};
use serde_json::{Map, Value, json};

const NAME_DESCRIPTION: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
const CREATED_DESCRIPTION: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";

/// What each row's `object` holds (`includeObject` query parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncludeObject {
    /// No object.
    None,
    /// A `PartialObjectMetadata` (the default).
    Metadata,
    /// The full object.
    Object,
}

/// A negotiated Table response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableFormat {
    /// `v1` or `v1beta1` (of `meta.k8s.io`).
    pub version: &'static str,
    /// Row object content.
    pub include: IncludeObject,
}

impl TableFormat {
    /// The response Content-Type.
    pub fn content_type(&self) -> String {
        format!("application/json;as=Table;v={};g=meta.k8s.io", self.version)
    }

    fn api_version(&self) -> String {
        format!("meta.k8s.io/{}", self.version)
    }
}

/// Negotiate the response format from the `Accept` header: `Some` when the
/// first media range this server can produce is a `meta.k8s.io` Table.
/// `includeObject` is validated only then, like kube-apiserver does.
pub fn negotiate(
    headers: &HeaderMap,
    include_object: Option<&str>,
) -> ApiResult<Option<TableFormat>> {
    let accept = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(",");
    for range in accept.split(',') {
        let mut parts = range.split(';').map(str::trim);
        let mime = parts.next().unwrap_or("").to_ascii_lowercase();
        if !matches!(mime.as_str(), "application/json" | "application/*" | "*/*") {
            continue;
        }
        let (mut r#as, mut g, mut v) = (None, None, None);
        for p in parts {
            let Some((k, val)) = p.split_once('=') else {
                continue;
            };
            let val = val.trim().trim_matches('"');
            match k.trim() {
                "as" => r#as = Some(val),
                "g" => g = Some(val),
                "v" => v = Some(val),
                _ => {}
            }
        }
        match (r#as, g, v) {
            (None, ..) => return Ok(None),
            (Some("Table"), Some("meta.k8s.io"), Some(ver @ ("v1" | "v1beta1"))) => {
                let include = match include_object.unwrap_or("") {
                    "" | "Metadata" => IncludeObject::Metadata,
                    "None" => IncludeObject::None,
                    "Object" => IncludeObject::Object,
                    other => {
                        return Err(ApiError::bad_request(format!(
                            "includeObject: Unsupported value: \"{other}\": supported values: \"Metadata\", \"None\", \"Object\""
                        )));
                    }
                };
                let version = if ver == "v1" { "v1" } else { "v1beta1" };
                return Ok(Some(TableFormat { version, include }));
            }
            // Other conversions (e.g. PartialObjectMetadata) are not
            // implemented: look for the next acceptable range.
            _ => {}
        }
    }
    Ok(None)
}

/// How a column's cells are computed.
#[derive(Debug, Clone)]
enum Cell {
    Name,
    /// Human-readable age of `metadata.creationTimestamp`.
    Age,
    /// `metadata.creationTimestamp` as RFC 3339 (the default table convertor).
    CreatedAt,
    /// A string at a JSON pointer (`null` when missing).
    Str(&'static str),
    /// Number of entries of the maps/arrays at these JSON pointers.
    Count(&'static [&'static str]),
    /// Computed by a printer function of kube-apiserver's internal printers.
    Func(fn(&Value) -> Value),
    /// A CRD printer column.
    Path {
        path: Option<JsonPath>,
        ty: String,
    },
}

/// A column: its definition and how to compute its cells.
#[derive(Debug, Clone)]
pub struct Column {
    definition: Value,
    cell: Cell,
}

fn def(name: &str, ty: &str, format: &str, description: &str, priority: i64) -> Value {
    json!({"name": name, "type": ty, "format": format, "description": description, "priority": priority})
}

fn col(name: &str, ty: &str, format: &str, description: &str, cell: Cell) -> Column {
    Column {
        definition: def(name, ty, format, description, 0),
        cell,
    }
}

/// A `-o wide` column (priority 1).
fn wide(name: &str, description: &str, cell: Cell) -> Column {
    Column {
        definition: def(name, "string", "", description, 1),
        cell,
    }
}

fn created_at_col() -> Column {
    col(
        "Created At",
        "date",
        "",
        CREATED_DESCRIPTION,
        Cell::CreatedAt,
    )
}

fn str_at<'a>(obj: &'a Value, p: &str) -> Option<&'a str> {
    obj.pointer(p).and_then(Value::as_str)
}

fn int_at(obj: &Value, p: &str) -> i64 {
    obj.pointer(p).and_then(Value::as_i64).unwrap_or(0)
}

/// `labels.SelectorFromSet(m).String()`: `k=v` sorted by key, comma-joined.
fn selector_string(m: Option<&Value>) -> Option<String> {
    let m = m.and_then(Value::as_object).filter(|m| !m.is_empty())?;
    let mut kv: Vec<String> = m
        .iter()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
        .collect();
    kv.sort();
    Some(kv.join(","))
}

/// The names (or another string field) of a list's items, comma-joined.
fn joined(obj: &Value, list: &str, field: &str) -> String {
    obj.pointer(list)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|i| i.get(field).and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

/// An `intstr.IntOrString` as printed (`N/A` when unset).
fn int_or_string(v: Option<&Value>) -> Value {
    match v {
        Some(Value::String(s)) => json!(s),
        Some(Value::Number(n)) => json!(n.to_string()),
        _ => json!("N/A"),
    }
}

fn deployment_ready(o: &Value) -> Value {
    json!(format!(
        "{}/{}",
        int_at(o, "/status/readyReplicas"),
        // spec.replicas defaults to 1
        o.pointer("/spec/replicas")
            .and_then(Value::as_i64)
            .unwrap_or(1)
    ))
}

fn service_ports(o: &Value) -> Value {
    let ports: Vec<String> = o
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|p| {
                    let proto = p.get("protocol").and_then(Value::as_str).unwrap_or("TCP");
                    let port = p.get("port").and_then(Value::as_i64).unwrap_or(0);
                    match p.get("nodePort").and_then(Value::as_i64) {
                        Some(np) if np != 0 => format!("{port}:{np}/{proto}"),
                        _ => format!("{port}/{proto}"),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    json!(if ports.is_empty() {
        "<none>".to_string()
    } else {
        ports.join(",")
    })
}

/// `subjects` of a (Cluster)RoleBinding of one kind, as the wide columns print them.
fn subjects(o: &Value, kind: &str) -> Value {
    let names: Vec<String> = o
        .pointer("/subjects")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter(|s| s.get("kind").and_then(Value::as_str) == Some(kind))
                .map(|s| {
                    let name = s.get("name").and_then(Value::as_str).unwrap_or("");
                    match s.get("namespace").and_then(Value::as_str) {
                        Some(ns) if kind == "ServiceAccount" => format!("{ns}/{name}"),
                        _ => name.to_string(),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    json!(names.join(", "))
}

fn binding_columns() -> Vec<Column> {
    vec![
        name_col(),
        col(
            "Role",
            "string",
            "",
            "RoleRef can only reference a ClusterRole in the global namespace. If the RoleRef cannot be resolved, the Authorizer must return an error.",
            Cell::Func(|o| {
                json!(format!(
                    "{}/{}",
                    str_at(o, "/roleRef/kind").unwrap_or(""),
                    str_at(o, "/roleRef/name").unwrap_or("")
                ))
            }),
        ),
        age_col(),
        wide(
            "Users",
            "Users in the roleBinding",
            Cell::Func(|o| subjects(o, "User")),
        ),
        wide(
            "Groups",
            "Groups in the roleBinding",
            Cell::Func(|o| subjects(o, "Group")),
        ),
        wide(
            "ServiceAccounts",
            "ServiceAccounts in the roleBinding",
            Cell::Func(|o| subjects(o, "ServiceAccount")),
        ),
    ]
}

fn deployment_columns() -> Vec<Column> {
    vec![
        name_col(),
        col(
            "Ready",
            "string",
            "",
            "Number of the pod with ready state",
            Cell::Func(deployment_ready),
        ),
        col(
            "Up-to-date",
            "string",
            "",
            "Total number of non-terminated pods targeted by this deployment that have the desired template spec.",
            Cell::Func(|o| json!(int_at(o, "/status/updatedReplicas"))),
        ),
        col(
            "Available",
            "string",
            "",
            "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.",
            Cell::Func(|o| json!(int_at(o, "/status/availableReplicas"))),
        ),
        age_col(),
        wide(
            "Containers",
            "Names of each container in the template.",
            Cell::Func(|o| json!(joined(o, "/spec/template/spec/containers", "name"))),
        ),
        wide(
            "Images",
            "Images referenced by each container in the template.",
            Cell::Func(|o| json!(joined(o, "/spec/template/spec/containers", "image"))),
        ),
        wide(
            "Selector",
            "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment.",
            Cell::Func(|o| {
                json!(
                    selector_string(o.pointer("/spec/selector/matchLabels"))
                        .unwrap_or_else(|| "<none>".into())
                )
            }),
        ),
    ]
}

fn service_columns() -> Vec<Column> {
    vec![
        name_col(),
        col(
            "Type",
            "string",
            "",
            "type determines how the Service is exposed. Defaults to ClusterIP.",
            // the apiserver defaults spec.type; this server stores objects as sent
            Cell::Func(|o| json!(str_at(o, "/spec/type").unwrap_or("ClusterIP"))),
        ),
        col(
            "Cluster-IP",
            "string",
            "",
            "clusterIP is the IP address of the service and is usually assigned randomly.",
            Cell::Func(|o| {
                json!(
                    str_at(o, "/spec/clusterIP")
                        .filter(|s| !s.is_empty())
                        .unwrap_or("<none>")
                )
            }),
        ),
        col(
            "External-IP",
            "string",
            "",
            "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service.",
            Cell::Func(|o| {
                let ips = o
                    .pointer("/spec/externalIPs")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .collect::<Vec<_>>()
                            .join(",")
                    })
                    .unwrap_or_default();
                json!(if ips.is_empty() {
                    "<none>".to_string()
                } else {
                    ips
                })
            }),
        ),
        col(
            "Port(s)",
            "string",
            "",
            "The list of ports that are exposed by this service.",
            Cell::Func(service_ports),
        ),
        age_col(),
        wide(
            "Selector",
            "Route service traffic to pods with label keys and values matching this selector.",
            Cell::Func(|o| {
                json!(
                    selector_string(o.pointer("/spec/selector")).unwrap_or_else(|| "<none>".into())
                )
            }),
        ),
    ]
}

fn pdb_columns() -> Vec<Column> {
    vec![
        name_col(),
        col(
            "Min Available",
            "string",
            "",
            "The minimum number of pods that must be available.",
            Cell::Func(|o| int_or_string(o.pointer("/spec/minAvailable"))),
        ),
        col(
            "Max Unavailable",
            "string",
            "",
            "The maximum number of pods that may be unavailable.",
            Cell::Func(|o| int_or_string(o.pointer("/spec/maxUnavailable"))),
        ),
        col(
            "Allowed Disruptions",
            "integer",
            "",
            "Calculated number of pods that may be disrupted at this time.",
            Cell::Func(|o| json!(int_at(o, "/status/disruptionsAllowed"))),
        ),
        age_col(),
    ]
}

fn name_col() -> Column {
    col("Name", "string", "name", NAME_DESCRIPTION, Cell::Name)
}

fn age_col() -> Column {
    col("Age", "string", "", CREATED_DESCRIPTION, Cell::Age)
}

/// The columns kube-apiserver prints for `rt` in `version`.
pub fn columns(store: &Store, rt: &ResourceType, version: &str) -> Vec<Column> {
    if rt.custom {
        return crd_columns(store, rt, version);
    }
    match (rt.group.as_str(), rt.plural.as_str()) {
        ("apps", "deployments") => return deployment_columns(),
        ("", "services") => return service_columns(),
        ("policy", "poddisruptionbudgets") => return pdb_columns(),
        ("rbac.authorization.k8s.io", "roles" | "clusterroles") => {
            return vec![name_col(), created_at_col()];
        }
        ("rbac.authorization.k8s.io", "rolebindings" | "clusterrolebindings") => {
            return binding_columns();
        }
        _ => {}
    }
    let mut cols = vec![name_col()];
    match (rt.group.as_str(), rt.plural.as_str()) {
        ("", "namespaces") => cols.push(col(
            "Status",
            "string",
            "",
            "The status of the namespace",
            Cell::Str("/status/phase"),
        )),
        ("", "secrets") => {
            cols.push(col(
                "Type",
                "string",
                "",
                "Used to facilitate programmatic handling of secret data. More info: https://kubernetes.io/docs/concepts/configuration/secret/#secret-types",
                Cell::Str("/type"),
            ));
            cols.push(col(
                "Data",
                "string",
                "",
                "Data contains the secret data. Each key must consist of alphanumeric characters, '-', '_' or '.'.",
                Cell::Count(&["/data"]),
            ));
        }
        ("", "configmaps") => cols.push(col(
            "Data",
            "string",
            "",
            "Data contains the configuration data.",
            Cell::Count(&["/data", "/binaryData"]),
        )),
        ("", "serviceaccounts") => cols.push(col(
            "Secrets",
            "string",
            "",
            "Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use.",
            Cell::Count(&["/secrets"]),
        )),
        ("coordination.k8s.io", "leases") => cols.push(col(
            "Holder",
            "string",
            "",
            "holderIdentity contains the identity of the holder of a current lease.",
            Cell::Str("/spec/holderIdentity"),
        )),
        ("apiextensions.k8s.io", "customresourcedefinitions") => {
            cols.push(created_at_col());
            return cols;
        }
        _ => {}
    }
    cols.push(age_col());
    cols
}

fn crd_columns(store: &Store, rt: &ResourceType, version: &str) -> Vec<Column> {
    let crd_name = format!("{}.{}", rt.plural, rt.group);
    let printer = store
        .objects
        .get(&(
            "apiextensions.k8s.io".to_string(),
            "customresourcedefinitions".to_string(),
            String::new(),
            crd_name,
        ))
        .and_then(|crd| crd.pointer("/spec/versions"))
        .and_then(Value::as_array)
        .and_then(|vs| {
            vs.iter()
                .find(|v| v.get("name").and_then(Value::as_str) == Some(version))
        })
        .and_then(|v| v.get("additionalPrinterColumns"))
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty())
        .cloned();
    let mut cols = vec![name_col()];
    let Some(printer) = printer else {
        cols.push(Column {
            definition: def("Age", "date", "", CREATED_DESCRIPTION, 0),
            cell: Cell::Path {
                path: JsonPath::parse(".metadata.creationTimestamp").ok(),
                ty: "date".into(),
            },
        });
        return cols;
    };
    for c in printer {
        let s = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let ty = s("type");
        cols.push(Column {
            definition: def(
                &s("name"),
                &ty,
                &s("format"),
                &s("description"),
                c.get("priority").and_then(Value::as_i64).unwrap_or(0),
            ),
            cell: Cell::Path {
                path: JsonPath::parse(&s("jsonPath")).ok(),
                ty,
            },
        });
    }
    cols
}

/// The cells of one object's row.
fn cells(cols: &[Column], obj: &Value) -> Vec<Value> {
    cols.iter()
        .map(|c| match &c.cell {
            Cell::Name => obj
                .pointer("/metadata/name")
                .cloned()
                .unwrap_or_else(|| json!("")),
            Cell::Age => json!(age(obj.pointer("/metadata/creationTimestamp"))),
            Cell::CreatedAt => obj
                .pointer("/metadata/creationTimestamp")
                .cloned()
                .unwrap_or(Value::Null),
            Cell::Str(p) => obj
                .pointer(p)
                .filter(|v| v.is_string())
                .cloned()
                .unwrap_or_else(|| json!("")),
            Cell::Count(ps) => json!(
                ps.iter()
                    .map(|p| match obj.pointer(p) {
                        Some(Value::Object(m)) => m.len(),
                        Some(Value::Array(a)) => a.len(),
                        _ => 0,
                    })
                    .sum::<usize>()
            ),
            Cell::Func(f) => f(obj),
            Cell::Path { path, ty } => path
                .as_ref()
                .and_then(|p| p.eval(obj).into_iter().next())
                .map_or(Value::Null, |v| typed_cell(ty, v)),
        })
        .collect()
}

/// kube-apiserver's `cellForJSONValue` (and JSONPath text printing for strings).
fn typed_cell(ty: &str, v: &Value) -> Value {
    match (ty, v) {
        (_, Value::Null) => Value::Null,
        ("string", Value::String(_)) => v.clone(),
        ("string", Value::Object(_) | Value::Array(_)) => json!(v.to_string()),
        ("string", Value::Number(n)) => json!(n.to_string()),
        ("string", Value::Bool(b)) => json!(b.to_string()),
        ("integer", Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|f| f as i64))
            .map_or(Value::Null, |i| json!(i)),
        ("number", Value::Number(n)) => {
            let f = n.as_f64().unwrap_or(0.0);
            if f.fract() == 0.0 && f.abs() < 1e15 {
                json!(f as i64)
            } else {
                json!(f)
            }
        }
        ("boolean", Value::Bool(_)) => v.clone(),
        ("date", Value::String(_)) => json!(age(Some(v))),
        _ => Value::Null,
    }
}

/// `translateTimestampSince` / `ConvertToHumanReadableDateType`.
fn age(ts: Option<&Value>) -> String {
    let Some(s) = ts.and_then(Value::as_str) else {
        return "<unknown>".into();
    };
    match s.parse::<jiff::Timestamp>() {
        Ok(t) => human_duration(jiff::Timestamp::now().as_second() - t.as_second()),
        Err(_) => "<invalid>".into(),
    }
}

/// `k8s.io/apimachinery/pkg/util/duration.HumanDuration` of `secs` seconds.
pub fn human_duration(secs: i64) -> String {
    if secs < -1 {
        return "<invalid>".into();
    }
    if secs < 0 {
        return "0s".into();
    }
    if secs < 120 {
        return format!("{secs}s");
    }
    let minutes = secs / 60;
    if minutes < 10 {
        let s = secs % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = secs / 3600;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        return if dy == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{dy}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

/// One table row for `obj` (already presented in the requested version).
fn row(cols: &[Column], fmt: &TableFormat, obj: &Value) -> Value {
    let mut r = Map::new();
    r.insert("cells".into(), Value::Array(cells(cols, obj)));
    match fmt.include {
        IncludeObject::None => {}
        IncludeObject::Object => {
            r.insert("object".into(), obj.clone());
        }
        IncludeObject::Metadata => {
            r.insert(
                "object".into(),
                json!({
                    "kind": "PartialObjectMetadata",
                    "apiVersion": fmt.api_version(),
                    "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
                }),
            );
        }
    }
    Value::Object(r)
}

/// A Table of `objects`. `metadata` is the list metadata (resourceVersion,
/// continue); `headers = false` leaves `columnDefinitions` empty, as
/// kube-apiserver does for all but the first event of a watch.
pub fn table(
    cols: &[Column],
    fmt: &TableFormat,
    metadata: Value,
    objects: &[Value],
    headers: bool,
) -> Value {
    let defs: Vec<Value> = if headers {
        cols.iter().map(|c| c.definition.clone()).collect()
    } else {
        Vec::new()
    };
    json!({
        "kind": "Table",
        "apiVersion": fmt.api_version(),
        "metadata": metadata,
        "columnDefinitions": defs,
        "rows": objects.iter().map(|o| row(cols, fmt, o)).collect::<Vec<_>>(),
    })
}

/// The Table for a single object (its resourceVersion in the metadata).
pub fn object_table(cols: &[Column], fmt: &TableFormat, obj: &Value, headers: bool) -> Value {
    let rv = obj
        .pointer("/metadata/resourceVersion")
        .cloned()
        .unwrap_or_else(|| json!(""));
    table(
        cols,
        fmt,
        json!({"resourceVersion": rv}),
        std::slice::from_ref(obj),
        headers,
    )
}

/// A parsed JSONPath of the subset CRD printer columns use: `.field`,
/// `['field']`, `[N]`, `[*]`, `.*` and filters `[?(@.a.b == "x")]`
/// (`==`, `!=`, `<`, `<=`, `>`, `>=` against a string, number or boolean
/// literal, or `[?(@.a)]` for existence).
#[derive(Debug, Clone, PartialEq)]
pub struct JsonPath(Vec<Step>);

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Field(String),
    Index(i64),
    All,
    Filter {
        path: Vec<Step>,
        op: Option<(String, Value)>,
    },
}

impl JsonPath {
    /// Parse `.a.b[0]` (optionally wrapped in `{}`); errors on anything else.
    pub fn parse(s: &str) -> Result<JsonPath, String> {
        let s = s.trim();
        let s = s
            .strip_prefix('{')
            .and_then(|x| x.strip_suffix('}'))
            .unwrap_or(s)
            .trim();
        let s = s.strip_prefix('$').unwrap_or(s);
        let (steps, rest) = parse_steps(s)?;
        if !rest.is_empty() {
            return Err(format!("unexpected {rest:?}"));
        }
        Ok(JsonPath(steps))
    }

    /// All results, in document order.
    pub fn eval<'a>(&self, root: &'a Value) -> Vec<&'a Value> {
        eval_steps(&self.0, vec![root])
    }
}

/// Parse steps until the end or a character that cannot continue a path
/// (returned as the rest).
fn parse_steps(mut s: &str) -> Result<(Vec<Step>, &str), String> {
    let mut steps = Vec::new();
    loop {
        if let Some(r) = s.strip_prefix("..") {
            return Err(format!("recursive descent is not supported: ..{r}"));
        } else if let Some(r) = s.strip_prefix('.') {
            if let Some(r2) = r.strip_prefix('*') {
                steps.push(Step::All);
                s = r2;
                continue;
            }
            let end = r
                .find(['.', '[', ' ', '=', '!', '<', '>', ')'])
                .unwrap_or(r.len());
            if end == 0 {
                if r.is_empty() {
                    // a lone "." is the current object
                    s = r;
                    continue;
                }
                return Err(format!("empty field name at {s:?}"));
            }
            steps.push(Step::Field(r[..end].to_string()));
            s = &r[end..];
        } else if let Some(r) = s.strip_prefix("[?(") {
            let r = r.trim_start();
            let r = r
                .strip_prefix('@')
                .ok_or_else(|| format!("filter must start with @: {r:?}"))?;
            let (path, r) = parse_steps(r)?;
            let r = r.trim_start();
            let (op, r) = if let Some(r) = r.strip_prefix(")]") {
                (None, r)
            } else {
                let opl = ["==", "!=", "<=", ">=", "<", ">"]
                    .into_iter()
                    .find(|o| r.starts_with(o))
                    .ok_or_else(|| format!("unsupported filter at {r:?}"))?;
                let r = r[opl.len()..].trim_start();
                let (lit, r) = parse_literal(r)?;
                let r = r
                    .trim_start()
                    .strip_prefix(")]")
                    .ok_or_else(|| format!("unterminated filter at {r:?}"))?;
                (Some((opl.to_string(), lit)), r)
            };
            steps.push(Step::Filter { path, op });
            s = r;
        } else if let Some(r) = s.strip_prefix('[') {
            let close = r.find(']').ok_or("unterminated [")?;
            let inner = r[..close].trim();
            if inner == "*" {
                steps.push(Step::All);
            } else if let Some(q) = inner
                .strip_prefix('\'')
                .and_then(|x| x.strip_suffix('\''))
                .or_else(|| inner.strip_prefix('"').and_then(|x| x.strip_suffix('"')))
            {
                steps.push(Step::Field(q.to_string()));
            } else {
                let i = inner
                    .parse::<i64>()
                    .map_err(|_| format!("unsupported subscript [{inner}]"))?;
                steps.push(Step::Index(i));
            }
            s = &r[close + 1..];
        } else {
            return Ok((steps, s));
        }
    }
}

fn parse_literal(s: &str) -> Result<(Value, &str), String> {
    for q in ['"', '\''] {
        if let Some(r) = s.strip_prefix(q) {
            let end = r.find(q).ok_or("unterminated string")?;
            return Ok((json!(r[..end]), &r[end + 1..]));
        }
    }
    let end = s.find([')', ' ']).unwrap_or(s.len());
    let word = &s[..end];
    let v = match word {
        "true" => json!(true),
        "false" => json!(false),
        _ => serde_json::from_str::<serde_json::Number>(word)
            .map(Value::Number)
            .map_err(|_| format!("unsupported literal {word:?}"))?,
    };
    Ok((v, &s[end..]))
}

fn eval_steps<'a>(steps: &[Step], mut cur: Vec<&'a Value>) -> Vec<&'a Value> {
    for step in steps {
        let mut next = Vec::new();
        for v in cur {
            match step {
                Step::Field(f) => next.extend(v.get(f.as_str())),
                Step::Index(i) => {
                    if let Value::Array(a) = v {
                        let idx = if *i < 0 { a.len() as i64 + i } else { *i };
                        next.extend(usize::try_from(idx).ok().and_then(|i| a.get(i)));
                    }
                }
                Step::All => match v {
                    Value::Array(a) => next.extend(a.iter()),
                    Value::Object(m) => next.extend(m.values()),
                    _ => {}
                },
                Step::Filter { path, op } => {
                    let items: Vec<&Value> = match v {
                        Value::Array(a) => a.iter().collect(),
                        other => vec![other],
                    };
                    for item in items {
                        let found = eval_steps(path, vec![item]);
                        let keep = match op {
                            None => !found.is_empty(),
                            Some((op, lit)) => found.first().is_some_and(|x| compare(x, op, lit)),
                        };
                        if keep {
                            next.push(item);
                        }
                    }
                }
            }
        }
        cur = next;
    }
    cur
}

fn compare(x: &Value, op: &str, lit: &Value) -> bool {
    use std::cmp::Ordering;
    let ord = match (x, lit) {
        (Value::Number(a), Value::Number(b)) => a
            .as_f64()
            .zip(b.as_f64())
            .and_then(|(a, b)| a.partial_cmp(&b)),
        (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
        (Value::Bool(a), Value::Bool(b)) if op == "==" || op == "!=" => Some(a.cmp(b)),
        _ => None,
    };
    match (op, ord) {
        ("==", o) => o == Some(Ordering::Equal),
        ("!=", o) => o != Some(Ordering::Equal),
        ("<", Some(o)) => o == Ordering::Less,
        ("<=", Some(o)) => o != Ordering::Greater,
        (">", Some(o)) => o == Ordering::Greater,
        (">=", Some(o)) => o != Ordering::Less,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj() -> Value {
        json!({
            "metadata": {"name": "a", "labels": {"app.kubernetes.io/name": "x"}},
            "spec": {"replicas": 3, "ratio": 1.5, "on": true, "tags": ["t1", "t2"]},
            "status": {"conditions": [
                {"type": "Synced", "status": "False", "reason": "Boom"},
                {"type": "Ready", "status": "True", "reason": "Ok"},
            ]}
        })
    }

    fn first(path: &str) -> Option<Value> {
        let o = obj();
        JsonPath::parse(path)
            .expect("parses")
            .eval(&o)
            .first()
            .map(|v| (*v).clone())
    }

    #[test]
    fn jsonpath_subset() {
        assert_eq!(first(".metadata.name"), Some(json!("a")));
        assert_eq!(first("{.spec.replicas}"), Some(json!(3)));
        assert_eq!(first(".spec.tags[1]"), Some(json!("t2")));
        assert_eq!(first(".spec.tags[-1]"), Some(json!("t2")));
        assert_eq!(first(".spec.tags[*]"), Some(json!("t1")));
        assert_eq!(
            first(".metadata.labels['app.kubernetes.io/name']"),
            Some(json!("x"))
        );
        assert_eq!(
            first(r#".status.conditions[?(@.type=="Ready")].status"#),
            Some(json!("True"))
        );
        assert_eq!(
            first(r#".status.conditions[?(@.type == 'Synced')].reason"#),
            Some(json!("Boom"))
        );
        assert_eq!(
            first(r#".status.conditions[?(@.type!="Synced")].type"#),
            Some(json!("Ready"))
        );
        assert_eq!(
            first(r#".status.conditions[?(@.type=="Missing")].status"#),
            None
        );
        assert_eq!(first(".status.missing.deeper"), None);
        assert_eq!(first(".spec.tags[5]"), None);
        assert!(JsonPath::parse("..name").is_err());
        assert!(JsonPath::parse(".a[?(@.b ~ 1)]").is_err());
    }

    #[test]
    fn typed_cells() {
        assert_eq!(typed_cell("string", &json!("x")), json!("x"));
        assert_eq!(typed_cell("string", &json!(3)), json!("3"));
        assert_eq!(typed_cell("string", &json!(true)), json!("true"));
        assert_eq!(typed_cell("string", &json!(["a"])), json!("[\"a\"]"));
        assert_eq!(typed_cell("integer", &json!(3)), json!(3));
        assert_eq!(typed_cell("integer", &json!(2.7)), json!(2));
        assert_eq!(typed_cell("integer", &json!("3")), Value::Null);
        assert_eq!(typed_cell("number", &json!(1.5)), json!(1.5));
        assert_eq!(typed_cell("boolean", &json!(true)), json!(true));
        assert_eq!(typed_cell("date", &json!("nope")), json!("<invalid>"));
        let old = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(3 * 3600 + 120);
        assert_eq!(
            typed_cell(
                "date",
                &json!(old.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
            ),
            json!("3h2m")
        );
    }

    #[test]
    fn human_durations() {
        for (s, want) in [
            (-5, "<invalid>"),
            (-1, "0s"),
            (0, "0s"),
            (119, "119s"),
            (120, "2m"),
            (125, "2m5s"),
            (600, "10m"),
            (3 * 3600, "3h"),
            (7 * 3600 + 60, "7h1m"),
            (47 * 3600, "47h"),
            (2 * 86400 + 3600, "2d1h"),
            (30 * 86400, "30d"),
            (3 * 365 * 86400, "3y"),
            (10 * 365 * 86400, "10y"),
        ] {
            assert_eq!(human_duration(s), want, "{s}");
        }
    }

    #[test]
    fn negotiation() {
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(header::ACCEPT, v.parse().expect("header"));
            m
        };
        let kubectl = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
        assert_eq!(
            negotiate(&h(kubectl), None).expect("ok"),
            Some(TableFormat {
                version: "v1",
                include: IncludeObject::Metadata
            })
        );
        assert_eq!(
            negotiate(&h(kubectl), Some("Object"))
                .expect("ok")
                .map(|f| f.include),
            Some(IncludeObject::Object)
        );
        assert!(negotiate(&h(kubectl), Some("All")).is_err());
        assert_eq!(
            negotiate(
                &h("application/json;as=Table;v=v1beta1;g=meta.k8s.io"),
                None
            )
            .expect("ok")
            .map(|f| f.version),
            Some("v1beta1")
        );
        assert_eq!(negotiate(&h("application/json"), None).expect("ok"), None);
        assert_eq!(negotiate(&HeaderMap::new(), None).expect("ok"), None);
        assert_eq!(
            negotiate(
                &h("application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io,application/json"),
                None
            )
            .expect("ok"),
            None
        );
    }
}
