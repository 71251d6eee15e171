//! CRD validation rules (`x-kubernetes-validations`), evaluated with a real CEL interpreter
//! (crates.io `cel`) as kube-apiserver's apiextensions `cel.Validator` does:
//!
//! - `self` is the value at the rule's schema node (the whole object at the root), `oldSelf`
//!   its previous value on an update; a rule using `oldSelf` (a transition rule) is only
//!   evaluated when that old value exists (an update, and for list items only in
//!   `x-kubernetes-list-type: map|set` lists, matched by key or value);
//! - rules of `null` values are not evaluated;
//! - a failed rule is a field error at the node (or at `fieldPath` below it) with `message`
//!   (or the string `messageExpression` evaluates to, or `failed rule: <rule>`) and `reason`
//!   (`FieldValueInvalid` by default, `FieldValueForbidden`, `FieldValueRequired`,
//!   `FieldValueDuplicate`); a rule that cannot be evaluated (e.g. `no such key`) is
//!   `Invalid value: ...: <error> evaluating rule: <rule>`;
//! - a CRD whose rules do not compile is refused ([`check_crd`]); besides parse errors,
//!   identifiers other than `self`/`oldSelf` (and macro variables) and fields of `self` that
//!   the schema does not have are compile errors, as kube's type checker makes them.
//!
//! [`unbounded_rules`] lists the rules whose cost kube-apiserver could not bound.

use crate::schema::{ErrorType, FieldError, child, field_schema, quote};
use cel::common::ast::{Expr, IdedExpr};
use cel::{Context, Env, Program};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

fn env() -> &'static Arc<Env> {
    static ENV: OnceLock<Arc<Env>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Env::stdlib();
        // Kubernetes' CEL environment has cel-go's strings and lists extensions.
        let _ = env.add_extension(cel::extensions::strings);
        let _ = env.add_extension(cel::extensions::lists);
        Arc::new(env)
    })
}

/// A compiled rule (cached by source: CRDs are re-read on every write).
fn compile(source: &str) -> Result<Arc<Program>, String> {
    type Cache = Mutex<HashMap<String, Result<Arc<Program>, String>>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Ok(c) = cache.lock()
        && let Some(p) = c.get(source)
    {
        return p.clone();
    }
    let compiled = env()
        .compile(source)
        .map(Arc::new)
        .map_err(|e| e.to_string());
    if let Ok(mut c) = cache.lock() {
        c.insert(source.to_string(), compiled.clone());
    }
    compiled
}

/// One entry of `x-kubernetes-validations`.
#[derive(Debug, Clone, Default)]
struct Rule {
    rule: String,
    message: Option<String>,
    message_expression: Option<String>,
    field_path: Option<String>,
    reason: Option<String>,
}

fn rules_of(s: &Value) -> Vec<Rule> {
    let str_of = |r: &Value, k: &str| r.get(k).and_then(Value::as_str).map(str::to_string);
    s.get("x-kubernetes-validations")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|r| Rule {
                    rule: str_of(r, "rule").unwrap_or_default(),
                    message: str_of(r, "message").filter(|m| !m.is_empty()),
                    message_expression: str_of(r, "messageExpression").filter(|m| !m.is_empty()),
                    field_path: str_of(r, "fieldPath").filter(|m| !m.is_empty()),
                    reason: str_of(r, "reason"),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn uses_old_self(e: &IdedExpr) -> bool {
    let mut found = false;
    visit(e, &mut |x| {
        if matches!(&x.expr, Expr::Ident(n) if n == "oldSelf") {
            found = true;
        }
    });
    found
}

/// Every node of an expression, outermost first.
fn visit(e: &IdedExpr, f: &mut dyn FnMut(&IdedExpr)) {
    f(e);
    match &e.expr {
        Expr::Call(c) => {
            if let Some(t) = &c.target {
                visit(t, f);
            }
            for a in &c.args {
                visit(a, f);
            }
        }
        Expr::Comprehension(c) => {
            for x in [
                &c.iter_range,
                &c.accu_init,
                &c.loop_cond,
                &c.loop_step,
                &c.result,
            ] {
                visit(x, f);
            }
        }
        Expr::List(l) => {
            for x in &l.elements {
                visit(x, f);
            }
        }
        Expr::Map(m) => {
            for entry in &m.entries {
                if let cel::common::ast::EntryExpr::MapEntry(me) = &entry.expr {
                    visit(&me.key, f);
                    visit(&me.value, f);
                }
            }
        }
        Expr::Select(s) => visit(&s.operand, f),
        Expr::Struct(st) => {
            for entry in &st.entries {
                if let cel::common::ast::EntryExpr::StructField(sf) = &entry.expr {
                    visit(&sf.value, f);
                }
            }
        }
        Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => {}
    }
}

/// `self.a.b` → (root identifier, [a, b]) for a chain of field selections.
fn select_chain(e: &IdedExpr) -> Option<(&str, Vec<&str>)> {
    match &e.expr {
        Expr::Ident(n) => Some((n.as_str(), Vec::new())),
        Expr::Select(s) => {
            let (root, mut fields) = select_chain(&s.operand)?;
            fields.push(s.field.as_str());
            Some((root, fields))
        }
        _ => None,
    }
}

/// Identifiers a rule may use besides `self`/`oldSelf`: macro variables and type names.
const BUILTIN_IDENTS: [&str; 12] = [
    "int",
    "uint",
    "double",
    "bool",
    "string",
    "bytes",
    "list",
    "map",
    "null_type",
    "type",
    "dyn",
    "@result",
];

/// Kube's type checker, for what can be checked without types: undeclared identifiers and
/// fields of `self`/`oldSelf` the schema does not have.
fn type_check(program: &Program, s: &Value, resource_root: bool) -> Result<(), String> {
    let root = program.expression();
    let mut bound: Vec<String> = Vec::new();
    visit(root, &mut |x| {
        if let Expr::Comprehension(c) = &x.expr {
            bound.push(c.iter_var.clone());
            if let Some(v) = &c.iter_var2 {
                bound.push(v.clone());
            }
            bound.push(c.accu_var.clone());
        }
    });
    let mut problem: Option<String> = None;
    visit(root, &mut |x| {
        if problem.is_some() {
            return;
        }
        if let Expr::Ident(n) = &x.expr
            && n != "self"
            && n != "oldSelf"
            && !bound.contains(n)
            && !BUILTIN_IDENTS.contains(&n.as_str())
        {
            problem = Some(format!("undeclared reference to '{n}' (in container '')"));
        }
        if let Some((var, fields)) = select_chain(x)
            && (var == "self" || var == "oldSelf")
        {
            let mut node = s;
            for (i, f) in fields.iter().enumerate() {
                if i == 0 && resource_root && ["apiVersion", "kind", "metadata"].contains(f) {
                    return;
                }
                if node
                    .get("x-kubernetes-preserve-unknown-fields")
                    .and_then(Value::as_bool)
                    == Some(true)
                {
                    return;
                }
                match field_schema(node, f) {
                    Some(next) => node = next,
                    None => {
                        problem = Some(format!("undefined field '{f}'"));
                        return;
                    }
                }
            }
        }
    });
    problem.map_or(Ok(()), Err)
}

/// Check every rule of a CRD as kube-apiserver does when the CRD is written: each rule and
/// `messageExpression` compiles, `fieldPath` names a field of the schema, `oldSelf` is not
/// used where old values cannot be matched (items of atomic lists), `reason` is known.
/// The errors name the rule like kube (`spec.versions[0].schema.openAPIV3Schema.properties[spec]
/// .x-kubernetes-validations[0].rule`).
pub fn check_crd(crd: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let versions = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for (i, v) in versions.iter().enumerate() {
        if let Some(s) = v.pointer("/schema/openAPIV3Schema") {
            let path = format!("spec.versions[{i}].schema.openAPIV3Schema");
            check_node(s, &path, true, true, &mut errs);
        }
    }
    errs
}

fn check_node(
    s: &Value,
    path: &str,
    resource_root: bool,
    correlatable: bool,
    errs: &mut Vec<FieldError>,
) {
    for (i, r) in rules_of(s).iter().enumerate() {
        let at = format!("{path}.x-kubernetes-validations[{i}]");
        let rule_value = Value::String(r.rule.clone());
        match compile(&r.rule).and_then(|p| type_check(&p, s, resource_root).map(|_| p)) {
            Err(e) => errs.push(FieldError::new(
                ErrorType::Invalid,
                &format!("{at}.rule"),
                Some(&rule_value),
                format!("compilation failed: ERROR: <input>: {e}"),
            )),
            Ok(p) => {
                if uses_old_self(p.expression()) && !correlatable {
                    errs.push(FieldError::new(
                        ErrorType::Invalid,
                        &format!("{at}.rule"),
                        Some(&rule_value),
                        "oldSelf cannot be used on the uncorrelatable portion of the schema within an atomic list or in the items of a list without x-kubernetes-list-type: map|set",
                    ));
                }
            }
        }
        if let Some(m) = &r.message_expression
            && let Err(e) = compile(m)
        {
            errs.push(FieldError::new(
                ErrorType::Invalid,
                &format!("{at}.messageExpression"),
                Some(&Value::String(m.clone())),
                format!("messageExpression compilation failed: ERROR: <input>: {e}"),
            ));
        }
        if let Some(fp) = &r.field_path
            && resolve_field_path(s, fp).is_none()
        {
            errs.push(FieldError::new(
                ErrorType::Invalid,
                &format!("{at}.fieldPath"),
                Some(&Value::String(fp.clone())),
                "fieldPath must be a valid path",
            ));
        }
        if let Some(reason) = &r.reason
            && ![
                "FieldValueInvalid",
                "FieldValueForbidden",
                "FieldValueRequired",
                "FieldValueDuplicate",
            ]
            .contains(&reason.as_str())
        {
            errs.push(FieldError::new(
                ErrorType::NotSupported,
                &format!("{at}.reason"),
                Some(&Value::String(reason.clone())),
                "supported values: \"FieldValueDuplicate\", \"FieldValueForbidden\", \"FieldValueInvalid\", \"FieldValueRequired\"",
            ));
        }
    }
    if let Some(props) = s.get("properties").and_then(Value::as_object) {
        for (k, p) in props {
            check_node(
                p,
                &format!("{path}.properties[{k}]"),
                false,
                correlatable,
                errs,
            );
        }
    }
    if let Some(a) = s.get("additionalProperties").filter(|a| a.is_object()) {
        check_node(
            a,
            &format!("{path}.additionalProperties"),
            false,
            correlatable,
            errs,
        );
    }
    if let Some(items) = s.get("items") {
        let keyed = matches!(
            s.get("x-kubernetes-list-type").and_then(Value::as_str),
            Some("map" | "set")
        );
        check_node(
            items,
            &format!("{path}.items"),
            false,
            correlatable && keyed,
            errs,
        );
    }
}

/// `fieldPath` (`.a.b`, `.a['b.c']`) below a schema node: the field path it adds.
fn resolve_field_path(s: &Value, fp: &str) -> Option<Vec<String>> {
    let mut rest = fp;
    let mut node = s;
    let mut out = Vec::new();
    while !rest.is_empty() {
        let name;
        if let Some(r) = rest.strip_prefix("['") {
            let end = r.find("']")?;
            name = &r[..end];
            rest = &r[end + 2..];
        } else if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            name = &r[..end];
            rest = &r[end..];
        } else {
            return None;
        }
        if name.is_empty() {
            return None;
        }
        node = field_schema(node, name)?;
        out.push(name.to_string());
    }
    Some(out)
}

/// A JSON value as a CEL value (integers as `int`, as kube's `UnstructuredToVal` does).
fn to_cel(v: &Value) -> cel::Value {
    match v {
        Value::Null => cel::Value::Null,
        Value::Bool(b) => cel::Value::Bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => cel::Value::Int(i),
            None => cel::Value::Float(n.as_f64().unwrap_or(0.0)),
        },
        Value::String(s) => cel::Value::String(Arc::new(s.clone())),
        Value::Array(a) => cel::Value::List(Arc::new(a.iter().map(to_cel).collect())),
        Value::Object(m) => {
            let map: HashMap<String, cel::Value> =
                m.iter().map(|(k, v)| (k.clone(), to_cel(v))).collect();
            cel::Value::from(map)
        }
    }
}

fn evaluate(p: &Program, this: &Value, old: Option<&Value>) -> Result<cel::Value, String> {
    let mut ctx = Context::with_env(env().clone());
    ctx.add_variable("self", to_cel(this))
        .map_err(|e| format!("{e:?}"))?;
    if let Some(old) = old {
        ctx.add_variable("oldSelf", to_cel(old))
            .map_err(|e| format!("{e:?}"))?;
    }
    p.execute(&ctx).map_err(|e| e.to_string())
}

/// Evaluate every rule of `schema` (a version's `openAPIV3Schema`) on `obj`, with `old` the
/// stored object on an update.
pub fn validate(obj: &Value, old: Option<&Value>, schema: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    validate_node(obj, old, schema, "", true, &mut errs);
    errs
}

fn validate_node(
    v: &Value,
    old: Option<&Value>,
    s: &Value,
    path: &str,
    resource_root: bool,
    errs: &mut Vec<FieldError>,
) {
    if v.is_null() {
        return;
    }
    let old = old.filter(|o| !o.is_null());
    for r in rules_of(s) {
        let program = match compile(&r.rule) {
            Ok(p) => p,
            Err(e) => {
                errs.push(FieldError::new(
                    ErrorType::Invalid,
                    path,
                    Some(&Value::String(type_of(s, v).into())),
                    format!("rule compile error: {e}"),
                ));
                continue;
            }
        };
        if uses_old_self(program.expression()) && old.is_none() {
            continue;
        }
        let ty = Value::String(type_of(s, v).into());
        match evaluate(&program, v, old) {
            Ok(cel::Value::Bool(true)) => {}
            Ok(cel::Value::Bool(false)) => {
                let detail = r
                    .message_expression
                    .as_deref()
                    .and_then(|m| compile(m).ok())
                    .and_then(|m| match evaluate(&m, v, old) {
                        Ok(cel::Value::String(s)) if !s.trim().is_empty() => Some(s.to_string()),
                        _ => None,
                    })
                    .or_else(|| r.message.clone())
                    .unwrap_or_else(|| format!("failed rule: {}", r.rule));
                let mut at = path.to_string();
                if let Some(fp) = r
                    .field_path
                    .as_deref()
                    .and_then(|fp| resolve_field_path(s, fp))
                {
                    for f in fp {
                        at = child(&at, &f);
                    }
                }
                let shown = if v.is_object() || v.is_array() {
                    None
                } else {
                    Some(v)
                };
                let kind = match r.reason.as_deref() {
                    Some("FieldValueForbidden") => ErrorType::Forbidden,
                    Some("FieldValueRequired") => ErrorType::Required,
                    Some("FieldValueDuplicate") => ErrorType::Duplicate,
                    _ => ErrorType::Invalid,
                };
                let mut e = FieldError::new(kind, &at, shown, detail);
                if kind == ErrorType::Duplicate {
                    e.detail.clear();
                    if shown.is_none() {
                        e.value = Some(quote(type_of(s, v)));
                    }
                }
                errs.push(e);
            }
            Ok(other) => errs.push(FieldError::new(
                ErrorType::Invalid,
                path,
                Some(&ty),
                format!(
                    "rule did not evaluate to a bool ({other:?}) evaluating rule: {}",
                    r.rule
                ),
            )),
            Err(e) => errs.push(FieldError::new(
                ErrorType::Invalid,
                path,
                Some(&ty),
                format!("{e} evaluating rule: {}", r.rule),
            )),
        }
    }
    match v {
        Value::Object(m) => {
            for (k, fv) in m {
                if resource_root && ["apiVersion", "kind", "metadata"].contains(&k.as_str()) {
                    continue;
                }
                if let Some(p) = field_schema(s, k) {
                    let o = old.and_then(|o| o.get(k));
                    let at = if s.get("properties").and_then(|p| p.get(k)).is_some() {
                        child(path, k)
                    } else {
                        format!("{path}[{k}]")
                    };
                    validate_node(fv, o, p, &at, false, errs);
                }
            }
        }
        Value::Array(items) => {
            let Some(item_schema) = s.get("items") else {
                return;
            };
            let list_type = s.get("x-kubernetes-list-type").and_then(Value::as_str);
            let keys: Vec<&str> = s
                .get("x-kubernetes-list-map-keys")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let old_items = old.and_then(Value::as_array);
            for (i, item) in items.iter().enumerate() {
                let o = match (list_type, old_items) {
                    (Some("map"), Some(olds)) if !keys.is_empty() => olds
                        .iter()
                        .find(|o| keys.iter().all(|k| o.get(*k) == item.get(*k))),
                    (Some("set"), Some(olds)) => olds.iter().find(|o| *o == item),
                    _ => None,
                };
                validate_node(item, o, item_schema, &format!("{path}[{i}]"), false, errs);
            }
        }
        _ => {}
    }
}

/// The schema type kube names in rule errors (`object`, `string`, ...).
fn type_of<'a>(s: &'a Value, v: &Value) -> &'a str {
    s.get("type").and_then(Value::as_str).unwrap_or(match v {
        Value::Object(_) => "object",
        Value::Array(_) => "array",
        Value::String(_) => "string",
        Value::Number(_) => "number",
        Value::Bool(_) => "boolean",
        Value::Null => "null",
    })
}

/// A rule that reads a string or a list whose size the schema does not bound: kube-apiserver
/// estimates a rule's cost from `maxLength`/`maxItems`/`maxProperties` (a string with an
/// `enum` is bounded by it), and refuses a CRD whose rules may cost too much; a rule over
/// unbounded data is the usual cause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnboundedRule {
    /// The CRD's kind.
    pub kind: String,
    /// The version whose schema holds the rule.
    pub version: String,
    /// Where the rule is, e.g. `spec.clusterRef` (`<root>` for the object).
    pub path: String,
    /// The rule.
    pub rule: String,
    /// What it reads without a bound, e.g. `spec.clusterRef.name (string without maxLength)`.
    pub unbounded: Vec<String>,
}

impl std::fmt::Display for UnboundedRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} {}: rule {:?} reads {}",
            self.kind,
            self.version,
            self.path,
            self.rule,
            self.unbounded.join(", ")
        )
    }
}

/// Every rule of `crd` (a `CustomResourceDefinition` as JSON) that reads a string without
/// `maxLength` (or `enum`), a list without `maxItems` or a map without `maxProperties`.
///
/// A rule reads what its expression uses as a value: `self`, or a field chain `self.a.b`
/// (`oldSelf` alike), with everything below it (`self == oldSelf` on an object compares
/// every field); a presence test `has(self.a)` reads nothing. Rules that do not compile are
/// skipped ([`check_crd`] reports them).
pub fn unbounded_rules(crd: &Value) -> Vec<UnboundedRule> {
    let kind = crd
        .pointer("/spec/names/kind")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let mut out = Vec::new();
    for v in crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let version = v
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if let Some(s) = v.pointer("/schema/openAPIV3Schema") {
            unbounded_node(s, "", &kind, &version, &mut out);
        }
    }
    out
}

fn unbounded_node(s: &Value, path: &str, kind: &str, version: &str, out: &mut Vec<UnboundedRule>) {
    for r in rules_of(s) {
        let Ok(p) = compile(&r.rule) else { continue };
        let mut unbounded = Vec::new();
        for fields in read_chains(p.expression()) {
            let mut node = Some(s);
            let mut at = path.to_string();
            for f in &fields {
                node = node.and_then(|n| field_schema(n, f));
                at = child(&at, f);
            }
            if let Some(node) = node {
                unbounded_below(node, &at, &mut unbounded);
            }
        }
        unbounded.sort();
        unbounded.dedup();
        if !unbounded.is_empty() {
            out.push(UnboundedRule {
                kind: kind.to_string(),
                version: version.to_string(),
                path: if path.is_empty() {
                    "<root>".into()
                } else {
                    path.into()
                },
                rule: r.rule.clone(),
                unbounded,
            });
        }
    }
    if let Some(props) = s.get("properties").and_then(Value::as_object) {
        for (k, p) in props {
            unbounded_node(p, &child(path, k), kind, version, out);
        }
    }
    if let Some(a) = s.get("additionalProperties").filter(|a| a.is_object()) {
        unbounded_node(a, &format!("{path}[*]"), kind, version, out);
    }
    if let Some(items) = s.get("items") {
        unbounded_node(items, &format!("{path}[*]"), kind, version, out);
    }
}

/// The field chains below `self`/`oldSelf` an expression uses as values.
fn read_chains(e: &IdedExpr) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    collect_reads(e, &mut out);
    out
}

fn collect_reads(e: &IdedExpr, out: &mut Vec<Vec<String>>) {
    if let Some((var, fields)) = select_chain(e)
        && (var == "self" || var == "oldSelf")
    {
        // `has(self.a.b)`: a presence test of b; reading self.a to get there costs nothing
        let test = matches!(&e.expr, Expr::Select(s) if s.test);
        if !test {
            out.push(fields.iter().map(|f| f.to_string()).collect());
        }
        return;
    }
    match &e.expr {
        Expr::Select(s) => collect_reads(&s.operand, out),
        Expr::Call(c) => {
            if let Some(t) = &c.target {
                collect_reads(t, out);
            }
            for a in &c.args {
                collect_reads(a, out);
            }
        }
        Expr::Comprehension(c) => {
            for x in [
                &c.iter_range,
                &c.accu_init,
                &c.loop_cond,
                &c.loop_step,
                &c.result,
            ] {
                collect_reads(x, out);
            }
        }
        Expr::List(l) => {
            for x in &l.elements {
                collect_reads(x, out);
            }
        }
        Expr::Map(m) => {
            for entry in &m.entries {
                if let cel::common::ast::EntryExpr::MapEntry(me) = &entry.expr {
                    collect_reads(&me.key, out);
                    collect_reads(&me.value, out);
                }
            }
        }
        _ => {}
    }
}

fn unbounded_below(s: &Value, path: &str, out: &mut Vec<String>) {
    let ty = s.get("type").and_then(Value::as_str);
    match ty {
        Some("string") if s.get("maxLength").is_none() && s.get("enum").is_none() => {
            out.push(format!("{path} (string without maxLength)"));
        }
        Some("array") => {
            if s.get("maxItems").is_none() {
                out.push(format!("{path} (list without maxItems)"));
            }
            if let Some(items) = s.get("items") {
                unbounded_below(items, &format!("{path}[*]"), out);
            }
        }
        Some("object") | None => {
            if let Some(props) = s.get("properties").and_then(Value::as_object) {
                for (k, p) in props {
                    unbounded_below(p, &child(path, k), out);
                }
            }
            if let Some(a) = s.get("additionalProperties").filter(|a| a.is_object()) {
                if s.get("maxProperties").is_none() {
                    out.push(format!("{path} (map without maxProperties)"));
                }
                unbounded_below(a, &format!("{path}[*]"), out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn crd(schema: Value) -> Value {
        json!({"spec": {"names": {"kind": "K"}, "versions": [
            {"name": "v1", "schema": {"openAPIV3Schema": schema}}]}})
    }

    #[test]
    fn compile_errors_are_reported_like_kube() {
        let bad = crd(json!({"type": "object", "properties": {"spec": {
            "type": "object",
            "properties": {"a": {"type": "string"}, "l": {"type": "array", "items": {
                "type": "object", "properties": {"x": {"type": "string"}},
                "x-kubernetes-validations": [{"rule": "self.x == oldSelf.x"}]}}},
            "x-kubernetes-validations": [
                {"rule": "self.a ==", "message": "m"},
                {"rule": "self.nope == 'x'"},
                {"rule": "other == 1"},
                {"rule": "has(self.a)", "fieldPath": ".zz"},
                {"rule": "has(self.a)", "reason": "Nope"}]}}}));
        let errs: Vec<String> = check_crd(&bad).iter().map(|e| e.to_string()).collect();
        assert_eq!(errs.len(), 6, "{errs:#?}");
        let base = "spec.versions[0].schema.openAPIV3Schema.properties[spec]";
        assert!(errs[0].starts_with(&format!(
            "{base}.x-kubernetes-validations[0].rule: Invalid value: \"self.a ==\": compilation failed"
        )), "{errs:#?}");
        assert!(errs[1].ends_with("undefined field 'nope'"), "{errs:#?}");
        assert!(
            errs[2].ends_with("undeclared reference to 'other' (in container '')"),
            "{errs:#?}"
        );
        assert!(errs[3].contains("[3].fieldPath"), "{errs:#?}");
        assert!(
            errs[4].contains("[4].reason: Unsupported value: \"Nope\""),
            "{errs:#?}"
        );
        assert!(
            errs[5].contains("properties[l].items.x-kubernetes-validations[0].rule"),
            "{errs:#?}"
        );
        assert!(errs[5].contains("oldSelf cannot be used"), "{errs:#?}");
    }

    #[test]
    fn rules_evaluate_with_self_old_self_and_messages() {
        let s = json!({"type": "object", "properties": {"spec": {
            "type": "object",
            "properties": {
                "id": {"type": "string", "x-kubernetes-validations": [
                    {"rule": "self == oldSelf", "message": "id is immutable"}]},
                "n": {"type": "integer"},
                "items": {"type": "array", "items": {"type": "string"}}},
            "x-kubernetes-validations": [
                {"rule": "self.n < 10", "messageExpression": "'n is ' + string(self.n)",
                 "fieldPath": ".n", "reason": "FieldValueForbidden"},
                {"rule": "self.items.all(i, i.startsWith('a')) && size(self.id) > 1"}]}}});
        let new = json!({"spec": {"id": "b", "n": 12, "items": ["ab", "b"]}});
        let old = json!({"spec": {"id": "a", "n": 1, "items": []}});
        let msgs: Vec<String> = validate(&new, None, &s)
            .iter()
            .map(|e| e.to_string())
            .collect();
        assert_eq!(msgs, vec![
            "spec.n: Forbidden: n is 12".to_string(),
            "spec: Invalid value: failed rule: self.items.all(i, i.startsWith('a')) && size(self.id) > 1".to_string(),
        ]);
        let msgs: Vec<String> = validate(&new, Some(&old), &s)
            .iter()
            .map(|e| e.to_string())
            .collect();
        assert!(
            msgs.contains(&"spec.id: Invalid value: \"b\": id is immutable".to_string()),
            "{msgs:#?}"
        );
        let missing = json!({"spec": {"id": "ab", "items": []}});
        let msgs: Vec<String> = validate(&missing, None, &s)
            .iter()
            .map(|e| e.to_string())
            .collect();
        assert_eq!(msgs.len(), 1, "{msgs:#?}");
        assert!(
            msgs[0].starts_with("spec: Invalid value: \"object\": "),
            "{msgs:#?}"
        );
        assert!(
            msgs[0].ends_with(" evaluating rule: self.n < 10"),
            "{msgs:#?}"
        );
    }

    #[test]
    fn unbounded_rules_name_what_they_read() {
        let c = crd(json!({"type": "object", "properties": {"spec": {
            "type": "object",
            "properties": {
                "ref": {"type": "object", "properties": {"name": {"type": "string"}},
                        "x-kubernetes-validations": [{"rule": "self == oldSelf"}]},
                "id": {"type": "string", "maxLength": 5,
                       "x-kubernetes-validations": [{"rule": "self == oldSelf"}]},
                "mode": {"type": "string", "enum": ["a"]},
                "tags": {"type": "array", "items": {"type": "string", "maxLength": 3}},
                "free": {"type": "string"}},
            "x-kubernetes-validations": [
                {"rule": "has(self.ref) && has(self.free)"},
                {"rule": "self.mode == 'a' || self.tags.exists(t, t == 'x')"}]}}}));
        let found: Vec<String> = unbounded_rules(&c).iter().map(|r| r.to_string()).collect();
        assert_eq!(found, vec![
            "K v1 spec: rule \"self.mode == 'a' || self.tags.exists(t, t == 'x')\" reads spec.tags (list without maxItems)".to_string(),
            "K v1 spec.ref: rule \"self == oldSelf\" reads spec.ref.name (string without maxLength)".to_string(),
        ]);
    }
}
