//! HTTP request routing and the REST verbs.

use crate::App;
use crate::discovery;
use crate::error::{ApiError, ApiResult, success_status};
use crate::managed::{self, Op};
use crate::patch::{self, PatchKind};
use crate::selector::{FieldSelector, LabelSelector};
use crate::store::{ListOptions, ResourceType, Store, counter_resource};
use crate::table::{self, TableFormat};
use crate::watch::{self, WatchRequest};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, MutexGuard};
use std::time::Duration;

/// Largest accepted request body.
const MAX_BODY: usize = 64 * 1024 * 1024;

type Query = HashMap<String, String>;

fn json_response(code: u16, v: &Value) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = serde_json::to_vec(v).unwrap_or_default();
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

/// Render an error as a `Status` response.
pub fn error_response(e: &ApiError) -> Response {
    let mut r = json_response(e.code, &e.to_status());
    if e.code == 429 {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    r
}

fn lock(app: &App) -> ApiResult<MutexGuard<'_, Store>> {
    app.store
        .lock()
        .map_err(|_| ApiError::new(500, "InternalError", "store lock poisoned"))
}

/// The single entry point: fault injection, then routing.
pub async fn handle(State(app): State<Arc<App>>, req: Request) -> Response {
    let latency = app.faults.latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let user_agent = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok());
    if let Some(code) = app.faults.take_failure(user_agent) {
        let reason = match code {
            429 => "TooManyRequests",
            500 => "InternalError",
            503 => "ServiceUnavailable",
            504 => "Timeout",
            409 => "Conflict",
            404 => "NotFound",
            _ => "Unknown",
        };
        return error_response(&ApiError::new(
            code,
            reason,
            format!("injected failure ({code})"),
        ));
    }
    let (parts, body) = req.into_parts();
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(e) => return error_response(&ApiError::bad_request(format!("cannot read body: {e}"))),
    };
    let query: Query = parts
        .uri
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    let path = parts.uri.path().to_string();
    match route(&app, &parts.method, &path, &parts.headers, &query, &body) {
        Ok(r) => r,
        Err(e) => error_response(&e),
    }
}

fn route(
    app: &Arc<App>,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    q: &Query,
    body: &[u8],
) -> ApiResult<Response> {
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let get_only = |v: Value| -> ApiResult<Response> {
        if method == Method::GET {
            Ok(json_response(200, &v))
        } else {
            Err(ApiError::method_not_allowed())
        }
    };
    match segs.as_slice() {
        [] => get_only(
            json!({"paths": ["/api", "/api/v1", "/apis", "/openapi/v2", "/openapi/v3", "/version", "/healthz"]}),
        ),
        ["healthz" | "livez" | "readyz", ..] => Ok((StatusCode::OK, "ok").into_response()),
        ["version"] => get_only(discovery::version()),
        ["api"] => get_only(discovery::core_versions(&app.addr)),
        ["api", "v1"] => {
            get_only(discovery::resource_list(&*lock(app)?, "", "v1").unwrap_or(Value::Null))
        }
        ["apis"] => get_only(discovery::group_list(&*lock(app)?)),
        ["apis", g] => get_only(discovery::group(&*lock(app)?, g).ok_or_else(ApiError::no_route)?),
        ["apis", g, v] => {
            get_only(discovery::resource_list(&*lock(app)?, g, v).ok_or_else(ApiError::no_route)?)
        }
        ["openapi", "v2"] if method == Method::GET => Ok((
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            )],
            discovery::OPENAPI_V2_EMPTY,
        )
            .into_response()),
        ["openapi", "v3"] => get_only(discovery::openapi_v3_root(&*lock(app)?)),
        ["openapi", "v3", "api", "v1"] => {
            get_only(discovery::openapi_v3_gv(&*lock(app)?, "", "v1"))
        }
        ["openapi", "v3", "apis", g, v] => get_only(discovery::openapi_v3_gv(&*lock(app)?, g, v)),
        ["api", "v1", rest @ ..] => resource(app, method, "", "v1", rest, headers, q, body),
        ["apis", g, v, rest @ ..] => resource(app, method, g, v, rest, headers, q, body),
        _ => Err(ApiError::no_route()),
    }
}

/// Target of a resource request.
struct Target<'a> {
    rt: ResourceType,
    version: &'a str,
    ns: Option<&'a str>,
    name: Option<&'a str>,
    sub: Option<&'a str>,
}

impl Target<'_> {
    fn present(&self, mut obj: Value) -> Value {
        if obj.is_object() {
            obj["apiVersion"] = json!(self.rt.api_version(self.version));
        }
        obj
    }
}

fn resolve<'a>(
    app: &App,
    group: &str,
    version: &'a str,
    rest: &[&'a str],
) -> ApiResult<Target<'a>> {
    let store = lock(app)?;
    let namespaced_form = rest.len() >= 3
        && rest[0] == "namespaces"
        && store
            .find_type(group, version, rest[2])
            .is_some_and(|t| t.namespaced);
    let (ns, tail) = if namespaced_form {
        (Some(rest[1]), &rest[2..])
    } else {
        (None, rest)
    };
    let (plural, name, sub) = match tail {
        [p] => (*p, None, None),
        [p, n] => (*p, Some(*n), None),
        [p, n, s] => (*p, Some(*n), Some(*s)),
        _ => return Err(ApiError::no_route()),
    };
    let rt = store
        .find_type(group, version, plural)
        .ok_or_else(ApiError::no_route)?;
    if (rt.namespaced && ns.is_none() && name.is_some()) || (!rt.namespaced && ns.is_some()) {
        return Err(ApiError::no_route());
    }
    if let Some(s) = sub
        && !(s == "status" && rt.has_status)
    {
        return Err(ApiError::no_route());
    }
    Ok(Target {
        rt,
        version,
        ns,
        name,
        sub,
    })
}

/// The field manager of a write: `fieldManager`, else (like kube-apiserver)
/// the first `/`-separated segment of the User-Agent.
fn field_manager(q: &Query, headers: &HeaderMap) -> String {
    if let Some(m) = q.get("fieldManager").filter(|m| !m.is_empty()) {
        return m.clone();
    }
    let ua = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    match ua.split('/').next().map(str::trim) {
        Some(p) if !p.is_empty() => p.to_string(),
        _ => "unknown".to_string(),
    }
}

fn is_true(q: &Query, k: &str) -> bool {
    matches!(q.get(k).map(String::as_str), Some("true" | "1"))
}

fn dry_run(q: &Query) -> bool {
    q.get("dryRun").is_some_and(|v| v == "All")
}

fn selectors(q: &Query) -> ApiResult<(Option<LabelSelector>, Option<FieldSelector>)> {
    let labels = q
        .get("labelSelector")
        .filter(|s| !s.is_empty())
        .map(|s| LabelSelector::parse(s))
        .transpose()?;
    let fields = q
        .get("fieldSelector")
        .filter(|s| !s.is_empty())
        .map(|s| FieldSelector::parse(s))
        .transpose()?;
    Ok((labels, fields))
}

fn parse_body(headers: &HeaderMap, body: &[u8]) -> ApiResult<Value> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    if ct.contains("protobuf") {
        return Err(ApiError::new(
            415,
            "UnsupportedMediaType",
            "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml (protobuf is not supported by kube-test-server)",
        ));
    }
    let v: Value = if ct.contains("yaml") {
        let text =
            std::str::from_utf8(body).map_err(|_| ApiError::bad_request("body is not UTF-8"))?;
        serde_yaml::from_str(text)
            .map_err(|e| ApiError::bad_request(format!("invalid YAML body: {e}")))?
    } else {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?
    };
    if !v.is_object() {
        return Err(ApiError::bad_request(
            "the body of the request must be a JSON object",
        ));
    }
    Ok(v)
}

#[allow(clippy::too_many_arguments)]
fn resource(
    app: &Arc<App>,
    method: &Method,
    group: &str,
    version: &str,
    rest: &[&str],
    headers: &HeaderMap,
    q: &Query,
    body: &[u8],
) -> ApiResult<Response> {
    let t = resolve(app, group, version, rest)?;
    let watching = is_true(q, "watch");
    let verb = match (method.as_str(), t.name) {
        ("GET", None) if watching => "watch",
        ("GET", None) => "list",
        ("GET", Some(_)) => "get",
        ("POST", None) => "create",
        ("PUT", Some(_)) => "update",
        ("PATCH", Some(_)) => "patch",
        ("DELETE", Some(_)) => "delete",
        ("DELETE", None) => "deletecollection",
        _ => return Err(ApiError::method_not_allowed()),
    };
    let counter = match t.sub {
        Some(s) => format!("{verb} {}/{s}", counter_resource(&t.rt)),
        None => format!("{verb} {}", counter_resource(&t.rt)),
    };
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok());
    app.faults.count(counter, user_agent);
    let manager = field_manager(q, headers);
    let api_version = t.rt.api_version(t.version);
    let update_op = Op {
        manager: &manager,
        api_version: &api_version,
        apply: None,
    };
    let as_table = if t.sub.is_none() && matches!(verb, "get" | "list" | "watch") {
        table::negotiate(headers, q.get("includeObject").map(String::as_str))?
    } else {
        None
    };
    match verb {
        "watch" => do_watch(app, &t, q, as_table),
        "list" => do_list(app, &t, q, as_table),
        "get" => {
            let store = lock(app)?;
            let obj = t.present(store.get(&t.rt, t.ns, t.name.unwrap_or(""))?);
            match as_table {
                Some(f) => {
                    let cols = table::columns(&store, &t.rt, t.version);
                    drop(store);
                    Ok(table_response(
                        &f,
                        &table::object_table(&cols, &f, &obj, true),
                    ))
                }
                None => Ok(json_response(200, &obj)),
            }
        }
        "create" => {
            if t.rt.namespaced && t.ns.is_none() {
                return Err(ApiError::method_not_allowed());
            }
            let obj = parse_body(headers, body)?;
            let mut store = lock(app)?;
            let warnings = field_validation(&store, &t, q, &obj)?;
            let created =
                store.create(&t.rt, t.version, t.ns, obj, dry_run(q), Some(&update_op))?;
            Ok(warn(json_response(201, &t.present(created)), &warnings))
        }
        "update" => {
            let obj = parse_body(headers, body)?;
            let require_rv = t.rt.custom;
            let mut store = lock(app)?;
            let warnings = field_validation(&store, &t, q, &obj)?;
            let updated = store.update(
                &t.rt,
                t.ns,
                t.name.unwrap_or(""),
                obj,
                t.sub,
                require_rv,
                dry_run(q),
                Some(&update_op),
            )?;
            Ok(warn(json_response(200, &t.present(updated)), &warnings))
        }
        "patch" => do_patch(app, &t, headers, q, body, &update_op),
        "delete" => do_delete(app, &t, q, body),
        _ => do_delete_collection(app, &t, q),
    }
}

fn list_options(t: &Target<'_>, q: &Query) -> ApiResult<ListOptions> {
    let (labels, fields) = selectors(q)?;
    let limit = match q.get("limit").filter(|s| !s.is_empty()) {
        Some(l) => Some(
            l.parse::<usize>()
                .map_err(|_| ApiError::bad_request("limit must be an integer"))?,
        ),
        None => None,
    };
    Ok(ListOptions {
        namespace: t.ns.map(String::from),
        labels,
        fields,
        limit,
        continue_token: q.get("continue").cloned(),
    })
}

fn table_response(f: &TableFormat, v: &Value) -> Response {
    let mut r = json_response(200, v);
    if let Ok(ct) = HeaderValue::from_str(&f.content_type()) {
        r.headers_mut().insert(header::CONTENT_TYPE, ct);
    }
    r
}

fn do_list(
    app: &Arc<App>,
    t: &Target<'_>,
    q: &Query,
    as_table: Option<TableFormat>,
) -> ApiResult<Response> {
    let opts = list_options(t, q)?;
    let (page, cols) = {
        let store = lock(app)?;
        let page = store.list(&t.rt, &opts)?;
        let cols = as_table
            .as_ref()
            .map(|_| table::columns(&store, &t.rt, t.version));
        (page, cols)
    };
    let mut meta = json!({"resourceVersion": page.rv.to_string()});
    if let Some(c) = page.continue_token {
        meta["continue"] = json!(c);
        meta["remainingItemCount"] = json!(page.remaining);
    }
    let items: Vec<Value> = page.items.into_iter().map(|o| t.present(o)).collect();
    if let (Some(f), Some(cols)) = (&as_table, &cols) {
        return Ok(table_response(
            f,
            &table::table(cols, f, meta, &items, true),
        ));
    }
    Ok(json_response(
        200,
        &json!({
            "kind": format!("{}List", t.rt.kind),
            "apiVersion": t.rt.api_version(t.version),
            "metadata": meta,
            "items": items,
        }),
    ))
}

fn do_watch(
    app: &Arc<App>,
    t: &Target<'_>,
    q: &Query,
    as_table: Option<TableFormat>,
) -> ApiResult<Response> {
    let (labels, fields) = selectors(q)?;
    let timeout = match q.get("timeoutSeconds").filter(|s| !s.is_empty()) {
        Some(s) => Some(Duration::from_secs(s.parse::<u64>().map_err(|_| {
            ApiError::bad_request("timeoutSeconds must be an integer")
        })?)),
        None => None,
    };
    let req = WatchRequest {
        rt: t.rt.clone(),
        version: t.version.to_string(),
        namespace: t.ns.map(String::from),
        labels,
        fields,
        resource_version: q.get("resourceVersion").cloned(),
        send_initial_events: is_true(q, "sendInitialEvents"),
        bookmarks: is_true(q, "allowWatchBookmarks"),
        timeout,
        table: match as_table {
            Some(f) => Some((table::columns(&*lock(app)?, &t.rt, t.version), f)),
            None => None,
        },
        headers_sent: Default::default(),
    };
    let content_type = req
        .table
        .as_ref()
        .map_or_else(|| "application/json".to_string(), |(_, f)| f.content_type());
    let stream = watch::start(app.clone(), req)?;
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CACHE_CONTROL, "no-cache, private")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| {
            error_response(&ApiError::new(
                500,
                "InternalError",
                "cannot build response",
            ))
        }))
}

fn do_patch(
    app: &Arc<App>,
    t: &Target<'_>,
    headers: &HeaderMap,
    q: &Query,
    body: &[u8],
    update_op: &Op<'_>,
) -> ApiResult<Response> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let kind = PatchKind::from_content_type(ct).ok_or_else(|| {
        ApiError::new(415, "UnsupportedMediaType", format!("the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml (got {ct:?})"))
    })?;
    let name = t.name.unwrap_or("");
    let dry = dry_run(q);
    let mut store = lock(app)?;
    let existing = store.get(&t.rt, t.ns, name);
    let (rt, group, kind_name) = (&t.rt, t.rt.group.as_str(), t.rt.kind.as_str());
    let invalid = |m: String| ApiError::invalid(group, kind_name, name, m);
    let config;
    let mut warnings = Vec::new();
    let mut op = update_op.clone();
    let candidate = match kind {
        PatchKind::Apply => {
            if q.get("fieldManager").is_none_or(|f| f.is_empty()) {
                return Err(invalid(
                    "fieldManager: Required value: is required for apply patch".into(),
                ));
            }
            let mut parsed = patch::parse_apply_body(body)?;
            warnings = field_validation(&store, t, q, &parsed)?;
            store.prune_apply_config(rt, t.version, &mut parsed);
            config = parsed;
            if config.pointer("/metadata/managedFields").is_some() {
                return Err(ApiError::bad_request("metadata.managedFields must be nil"));
            }
            op.apply = Some((&config, is_true(q, "force")));
            match existing {
                Err(e) if e.code == 404 && t.sub.is_none() => {
                    let mut obj = config.clone();
                    crate::store::metadata_mut(&mut obj).insert("name".into(), json!(name));
                    let created = store.create(rt, t.version, t.ns, obj, dry, Some(&op))?;
                    return Ok(warn(json_response(201, &t.present(created)), &warnings));
                }
                Err(e) => return Err(e),
                Ok(old) => {
                    let mut c = old;
                    let schema = store.field_schema(rt, t.version);
                    managed::apply_merge(&mut c, &config, &schema);
                    c
                }
            }
        }
        PatchKind::Strategic if rt.custom => {
            // kube-apiserver has no patch strategies for custom resources
            return Err(ApiError::new(
                415,
                "UnsupportedMediaType",
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
            ));
        }
        PatchKind::Merge | PatchKind::Strategic => {
            let p: Value = serde_json::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("invalid merge patch: {e}")))?;
            if !p.is_object() {
                return Err(ApiError::bad_request("a merge patch must be a JSON object"));
            }
            let mut c = existing?;
            if kind == PatchKind::Merge {
                patch::merge(&mut c, &p);
            } else {
                patch::strategic_merge(&mut c, &p, &|path| {
                    patch::builtin_list_strategy(group, &rt.plural, path)
                });
            }
            c
        }
        PatchKind::Json => {
            let mut c = existing?;
            patch::apply_json_patch(&mut c, body, invalid)?;
            c
        }
    };
    if kind != PatchKind::Apply {
        warnings = field_validation(&store, t, q, &candidate)?;
    }
    let updated = store.update(rt, t.ns, name, candidate, t.sub, false, dry, Some(&op))?;
    Ok(warn(json_response(200, &t.present(updated)), &warnings))
}

/// kube-apiserver's `fieldValidation` for the fields a custom resource's schema prunes:
/// `Strict` refuses the request (400, "strict decoding error: unknown field ..."), `Warn`
/// (the default) answers with a `Warning` header per field, `Ignore` says nothing.
fn field_validation(
    store: &Store,
    t: &Target<'_>,
    q: &Query,
    obj: &Value,
) -> ApiResult<Vec<String>> {
    if !t.rt.custom {
        return Ok(Vec::new());
    }
    let unknown: Vec<String> = store
        .unknown_fields(&t.rt, t.version, obj)
        .iter()
        .map(|f| format!("unknown field \"{f}\""))
        .collect();
    match q.get("fieldValidation").map(String::as_str) {
        _ if unknown.is_empty() => Ok(Vec::new()),
        Some("Ignore") => Ok(Vec::new()),
        Some("Strict") => Err(ApiError::bad_request(format!(
            "{kind} in version \"{v}\" cannot be handled as a {kind}: strict decoding error: {}",
            unknown.join(", "),
            kind = t.rt.kind,
            v = t.version,
        ))),
        _ => Ok(unknown),
    }
}

/// Add `Warning: 299 - "..."` headers, as kube-apiserver sends warnings.
fn warn(mut r: Response, warnings: &[String]) -> Response {
    for w in warnings {
        let text = format!("299 - {}", crate::schema::quote(w));
        if let Ok(v) = HeaderValue::from_str(&text) {
            r.headers_mut().append(header::WARNING, v);
        }
    }
    r
}

fn delete_options(q: &Query, body: &[u8]) -> ApiResult<(Option<String>, Option<String>, bool)> {
    let opts: Value = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("invalid DeleteOptions: {e}")))?
    };
    let rv = opts
        .pointer("/preconditions/resourceVersion")
        .and_then(Value::as_str)
        .map(String::from);
    let uid = opts
        .pointer("/preconditions/uid")
        .and_then(Value::as_str)
        .map(String::from);
    let dry = dry_run(q)
        || opts
            .get("dryRun")
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(|v| v.as_str() == Some("All")));
    Ok((rv, uid, dry))
}

/// How long after a namespace starts terminating its contents are deleted.
/// kube-controller-manager's namespace controller also acts asynchronously
/// (after discovery, through a work queue), so clients deleting a namespace
/// and then the objects in it (`kubectl delete -f`/`-k`) find them.
pub const NAMESPACE_CONTROLLER_DELAY: Duration = Duration::from_secs(1);

/// Run the namespace controller for `ns` after [`NAMESPACE_CONTROLLER_DELAY`].
fn spawn_namespace_controller(app: &Arc<App>, ns: String) {
    let app = Arc::downgrade(app);
    tokio::spawn(async move {
        tokio::time::sleep(NAMESPACE_CONTROLLER_DELAY).await;
        if let Some(app) = app.upgrade()
            && let Ok(mut store) = app.store.lock()
        {
            store.sweep_namespace(&ns);
        }
    });
}

fn do_delete(app: &Arc<App>, t: &Target<'_>, q: &Query, body: &[u8]) -> ApiResult<Response> {
    let (rv, uid, dry) = delete_options(q, body)?;
    let name = t.name.unwrap_or("");
    let d = lock(app)?.delete(&t.rt, t.ns, name, rv.as_deref(), uid.as_deref(), dry)?;
    if t.rt.is_namespace() && !dry {
        spawn_namespace_controller(app, name.to_string());
    }
    if d.gone && !t.rt.custom && t.rt.plural != "namespaces" {
        let uid = d
            .object
            .pointer("/metadata/uid")
            .and_then(Value::as_str)
            .unwrap_or("");
        return Ok(json_response(
            200,
            &success_status(&t.rt.group, &t.rt.plural, name, uid),
        ));
    }
    Ok(json_response(200, &t.present(d.object)))
}

fn do_delete_collection(app: &Arc<App>, t: &Target<'_>, q: &Query) -> ApiResult<Response> {
    let opts = list_options(t, q)?;
    let dry = dry_run(q);
    let mut store = lock(app)?;
    let page = store.list(
        &t.rt,
        &ListOptions {
            limit: None,
            continue_token: None,
            ..opts
        },
    )?;
    let mut items = Vec::new();
    for o in page.items {
        let ns = o
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .map(String::from);
        let name = crate::store::name_of(&o).to_string();
        if let Ok(d) = store.delete(&t.rt, ns.as_deref(), &name, None, None, dry) {
            items.push(t.present(d.object));
            if t.rt.is_namespace() && !dry {
                spawn_namespace_controller(app, name);
            }
        }
    }
    let rv = store.rv.to_string();
    Ok(json_response(
        200,
        &json!({
            "kind": format!("{}List", t.rt.kind),
            "apiVersion": t.rt.api_version(t.version),
            "metadata": {"resourceVersion": rv},
            "items": items,
        }),
    ))
}
