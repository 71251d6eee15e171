//! A stateful HTTP fake of the Zilliz Cloud control plane (v2) and the v2 data plane, which have
//! no local server. It answers with the real bodies recorded in `docs/zilliz-api.md`, keeps
//! state (clusters, collections, partitions, indexes, what is loaded), checks the bearer token,
//! counts every call (with the token it carried and what it was answered), rejects invalid
//! collection names like Milvus (1100), and can simulate an outage (503 with an HTML body, for a
//! number of calls or a length of time), latency, and a gateway that echoes the `Authorization`
//! header back in its error pages. A token can be restricted (it authenticates and lists the
//! cluster, but describing or dropping it answers 80020, as a key with fewer rights does), and
//! the next answers of one path can be scripted ([`ZillizFake::answer_next`]).
//!
//! For create, adopt and update it follows the v2 handler (`docs/zilliz-api.md`, "Creating and
//! describing"): `collections/create` (quick setup or custom schema, idempotent only for the same
//! definition, not atomic: create, then each index, then the load), `collections/describe`,
//! `get_load_state`, `load` (every vector field needs an index), `alter_properties`,
//! `partitions/create|list`, `indexes/create|describe|list` (a build can take a number of
//! describes, [`ZillizFake::set_index_build_describes`]). State is kept per (database,
//! collection) and read back with [`ZillizFake::collection_state`].
//!
//! Clusters (v2 and v1 control plane, same facts): `createDedicated|createServerless|createFree`
//! (v1: `create`) answer `{clusterId, username, password, prompt}` and refuse a name already
//! used in the project with 80010; a new cluster is `CREATING` for a configurable number of
//! describes or a time ([`ZillizFake::set_create_phase`]) before `RUNNING`; lists carry name,
//! project, status, CUs and replicas, page by `pageSize` and `currentPage` (v1: `current`) and
//! can lag behind creates ([`ZillizFake::set_list_lag`]); `modify` takes exactly one of
//! `cuSize` and `replica` and only when `RUNNING` (`MODIFYING`, then `RUNNING`), `suspend` and
//! `resume` go through `SUSPENDING`/`SUSPENDED` and `RESUMING` (dedicated plans only, 80021
//! otherwise). The answer of a create can be lost after the cluster was made
//! ([`ZillizFake::fault_next_create`]).

use serde_json::{Value, json};
use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate, matchers::any};

type Key = (String, String);

#[derive(Default)]
struct State {
    token: String,
    /// the fake's own URI: the data plane endpoint that cluster describes report
    uri: String,
    /// cluster id → cluster (see [`FakeCluster`])
    clusters: BTreeMap<String, FakeCluster>,
    /// how long a create's `CREATING` lasts (see [`ZillizFake::set_create_phase`])
    create_phase: PhaseLength,
    /// how long `MODIFYING`, `SUSPENDING` and `RESUMING` last
    change_phase: PhaseLength,
    /// list answers a newly created cluster is missing from (see [`ZillizFake::set_list_lag`])
    list_lag: u32,
    /// what happens to the answer of the next cluster create (see [`ZillizFake::fault_next_create`])
    create_fault: Option<CreateFault>,
    /// clusters created so far (makes the next id)
    created_clusters: u64,
    /// the next answer is held back this long instead of [`State::latency`] (once)
    delay_once: Option<Duration>,
    collections: BTreeSet<Key>,
    loaded_collections: BTreeSet<Key>,
    partitions: BTreeSet<(Key, String)>,
    loaded_partitions: BTreeSet<(Key, String)>,
    indexes: BTreeMap<(Key, String), FakeIndex>,
    /// what each collection was created with (one added by [`ZillizFake::add_collection`] gets
    /// [`FakeCollection::default`] when first needed) and its id
    details: BTreeMap<Key, Stored>,
    next_collection_id: i64,
    /// databases besides `default` (those of added collections, [`ZillizFake::add_database`])
    databases: BTreeSet<String>,
    /// how many `indexes/describe` answers a new index shows `InProgress` before `Finished`
    index_build_describes: u32,
    outage: usize,
    /// every call arriving before this instant is answered 503 (see [`ZillizFake::outage_for`])
    outage_until: Option<Instant>,
    /// error answers quote the `Authorization` header they were sent (a careless gateway)
    echo_auth: bool,
    /// every request, in arrival order
    calls: Vec<Call>,
    latency: Duration,
    /// token → cluster ids it may not describe or drop (80020), see [`ZillizFake::deny_cluster`]
    denied: BTreeMap<String, BTreeSet<String>>,
    /// (method, path) → scripted answers still to give, see [`ZillizFake::answer_next`]
    scripted: BTreeMap<(String, String), Scripted>,
}

/// A collection's definition as `collections/create` made it: what `collections/describe`
/// answers and what a repeated create is compared with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FakeCollection {
    pub fields: Vec<FakeField>,
    /// `schema.autoID` of a custom schema (quick setup puts `autoID` on the primary key only)
    pub auto_id: bool,
    pub enable_dynamic_field: bool,
    pub description: String,
    pub shards_num: i64,
    pub consistency_level: String,
    /// the partitions of a partition-key collection (`params.partitionsNum`, default 64); `None`
    /// without a partition key
    pub partitions_num: Option<i64>,
    /// `params.ttlSeconds` (as `collection.ttl.seconds`), `params["mmap.enabled"]`, then
    /// whatever `collections/alter_properties` set; values as the server prints them
    pub properties: BTreeMap<String, String>,
}

impl Default for FakeCollection {
    /// What a collection added by [`ZillizFake::add_collection`] is described as: a quick-setup
    /// collection of dimension 4 (`id` Int64 primary key, `vector` FloatVector).
    fn default() -> Self {
        FakeCollection {
            fields: vec![
                FakeField::new("id", "Int64").primary(),
                FakeField::new("vector", "FloatVector").param("dim", "4"),
            ],
            auto_id: false,
            enable_dynamic_field: true,
            description: String::new(),
            shards_num: 1,
            consistency_level: "Bounded".into(),
            partitions_num: None,
            properties: BTreeMap::new(),
        }
    }
}

impl FakeCollection {
    fn field(&self, name: &str) -> Option<&FakeField> {
        self.fields.iter().find(|f| f.name == name)
    }

    fn vector_fields(&self) -> impl Iterator<Item = &FakeField> {
        self.fields.iter().filter(|f| f.is_vector())
    }
}

/// One field of a [`FakeCollection`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FakeField {
    pub name: String,
    /// the schema's data type name (`Int64`, `VarChar`, `FloatVector`, ...)
    pub data_type: String,
    pub primary_key: bool,
    pub partition_key: bool,
    pub auto_id: bool,
    /// `elementDataType` of an `Array` field
    pub element_type: Option<String>,
    /// type params (`dim`, `max_length`, ...), values as the server prints them
    pub params: BTreeMap<String, String>,
}

impl FakeField {
    pub fn new(name: &str, data_type: &str) -> FakeField {
        FakeField {
            name: name.into(),
            data_type: data_type.into(),
            primary_key: false,
            partition_key: false,
            auto_id: false,
            element_type: None,
            params: BTreeMap::new(),
        }
    }

    pub fn primary(mut self) -> FakeField {
        self.primary_key = true;
        self
    }

    pub fn param(mut self, key: &str, value: &str) -> FakeField {
        self.params.insert(key.into(), value.into());
        self
    }

    fn is_vector(&self) -> bool {
        self.data_type.ends_with("Vector")
    }
}

/// One index of a collection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FakeIndex {
    pub field_name: String,
    /// `AUTOINDEX` when the request named none
    pub index_type: String,
    /// `COSINE` on a vector field when the request named none
    pub metric_type: String,
    /// the request's `params`, values as the server prints them
    pub params: BTreeMap<String, String>,
    /// `indexes/describe` answers still to show `InProgress` before `Finished`
    pub describes_until_built: u32,
}

impl FakeIndex {
    /// The same index as far as a repeated `indexes/create` is concerned.
    fn same_definition(&self, other: &FakeIndex) -> bool {
        self.field_name == other.field_name
            && self.index_type == other.index_type
            && self.metric_type == other.metric_type
            && self.params == other.params
    }
}

/// Everything the fake knows of one collection, read back by [`ZillizFake::collection_state`].
#[derive(Clone, Debug)]
pub struct CollectionState {
    pub id: i64,
    pub definition: FakeCollection,
    pub loaded: bool,
    /// partitions created besides `_default`
    pub partitions: Vec<String>,
    /// index name → index
    pub indexes: BTreeMap<String, FakeIndex>,
}

struct Stored {
    id: i64,
    def: FakeCollection,
}

/// What the next calls of one method and path answer instead of the real thing.
struct Scripted {
    left: usize,
    status: u16,
    body: Value,
}

/// One request the fake received, and what it answered.
#[derive(Clone, Debug)]
pub struct Call {
    pub method: String,
    pub path: String,
    /// the JSON body (`null` when none)
    pub body: Value,
    pub arrived: Instant,
    /// the bearer token it carried (`""` without an `Authorization: Bearer` header)
    pub token: String,
    /// the HTTP status answered
    pub status: u16,
    /// the envelope `code` answered (`None` for a non-JSON answer)
    pub code: Option<i64>,
    /// how long the answer was held back ([`ZillizFake::set_latency`] when it arrived)
    pub delay: Duration,
}

/// What [`answer`] decided; the template is built from it after it has been recorded.
enum Reply {
    Json(u16, Value),
    Html(u16, String),
    Text(u16, &'static str),
}

/// A Milvus collection name: a letter or `_` first, then letters, digits and `_`; at most 255
/// (Milvus answers 1100 otherwise).
fn valid_collection_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 255
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The fake; `uri()` is both the control plane base URL and the data plane endpoint.
pub struct ZillizFake {
    pub server: MockServer,
    state: Arc<Mutex<State>>,
}

struct Responder(Arc<Mutex<State>>);

fn envelope(code: i64, message: &str) -> Value {
    json!({"code": code, "message": message})
}

fn ok(data: Value) -> Value {
    json!({"code": 0, "data": data})
}

/// The data type names a schema may use (`schemapb.DataType`, case-sensitive).
const DATA_TYPES: [&str; 16] = [
    "Bool",
    "Int8",
    "Int16",
    "Int32",
    "Int64",
    "Float",
    "Double",
    "VarChar",
    "JSON",
    "Array",
    "BinaryVector",
    "FloatVector",
    "Float16Vector",
    "BFloat16Vector",
    "SparseFloatVector",
    "Int8Vector",
];

const CONSISTENCY_LEVELS: [&str; 5] = ["Strong", "Session", "Bounded", "Eventually", "Customized"];

/// The first collection id handed out (real ids are large numbers of this kind).
const FIRST_COLLECTION_ID: i64 = 450_000_000_000_000_001;

/// How Go's `fmt.Sprintf("%v", v)` prints a decoded JSON value: the v2 handler turns `params`,
/// `elementTypeParams` and `properties` into strings this way.
fn go_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "<nil>".into(),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => i.to_string(),
            (None, Some(f)) if f.fract() == 0.0 && f.abs() < 1e21 => format!("{f:.0}"),
            _ => n.to_string(),
        },
        other => other.to_string(),
    }
}

/// Milvus' `ErrParameterInvalid` (1100) wrapping `msg`.
fn invalid(msg: &str) -> Value {
    envelope(1100, &format!("{msg}: invalid parameter"))
}

fn db_known(s: &State, db: &str) -> bool {
    db == "default" || s.databases.contains(db)
}

fn db_not_found(db: &str) -> Value {
    envelope(800, &format!("database not found[database={db}]"))
}

/// The stored definition of an existing collection (one added without a definition gets
/// [`FakeCollection::default`] and an id now).
fn stored_mut<'a>(s: &'a mut State, key: &Key) -> &'a mut Stored {
    let next = s.next_collection_id;
    let stored = s.details.entry(key.clone()).or_insert_with(|| Stored {
        id: FIRST_COLLECTION_ID + next,
        def: FakeCollection::default(),
    });
    if stored.id == FIRST_COLLECTION_ID + next {
        s.next_collection_id += 1;
    }
    stored
}

/// What the v2 handler makes of a `collections/create` body before any server call: the
/// definition, the index params to create after it (quick setup: the vector field's index) and
/// whether it is a quick setup. Errors are the handler's answers (1100, or 65535 for an
/// unparsable `enableDynamicField`).
fn definition(body: &Value) -> Result<(FakeCollection, Vec<Value>, bool), Value> {
    let params = &body["params"];
    let param = |k: &str| params.get(k).filter(|v| !v.is_null());
    let mut def = FakeCollection {
        fields: Vec::new(),
        description: body["description"].as_str().unwrap_or_default().into(),
        ..FakeCollection::default()
    };
    let custom = body["schema"]["fields"]
        .as_array()
        .filter(|fields| !fields.is_empty());
    let indexes = if let Some(fields) = custom {
        let schema = &body["schema"];
        def.auto_id = schema["autoID"].as_bool().unwrap_or(false);
        def.enable_dynamic_field = schema["enableDynamicField"].as_bool().unwrap_or(false);
        for f in fields {
            let data_type = f["dataType"].as_str().unwrap_or_default();
            if !DATA_TYPES.contains(&data_type) {
                return Err(envelope(
                    1100,
                    &format!(
                        "invalid parameter, data type {data_type} is invalid(case sensitive)."
                    ),
                ));
            }
            let mut field = FakeField::new(f["fieldName"].as_str().unwrap_or_default(), data_type);
            field.primary_key = f["isPrimary"].as_bool().unwrap_or(false);
            field.partition_key = f["isPartitionKey"].as_bool().unwrap_or(false);
            field.auto_id = field.primary_key && def.auto_id;
            if data_type == "Array" {
                let element = f["elementDataType"].as_str().unwrap_or_default();
                if !DATA_TYPES.contains(&element) {
                    return Err(envelope(
                        1100,
                        &format!(
                            "invalid parameter, element data type {element} is invalid(case sensitive)."
                        ),
                    ));
                }
                field.element_type = Some(element.into());
            }
            if let Some(type_params) = f["elementTypeParams"].as_object() {
                for (k, v) in type_params {
                    field.params.insert(k.clone(), go_string(v));
                }
            }
            def.fields.push(field);
        }
        body["indexParams"].as_array().cloned().unwrap_or_default()
    } else {
        let dimension = body["dimension"].as_i64().unwrap_or(0);
        if dimension == 0 {
            return Err(envelope(
                1100,
                "dimension is required for quickly create collection(default metric type: COSINE): invalid parameter[expected=collectionName & dimension][actual=collectionName]",
            ));
        }
        let name_or = |k: &str, default: &str| {
            body[k]
                .as_str()
                .filter(|n| !n.is_empty())
                .unwrap_or(default)
                .to_string()
        };
        let mut id = FakeField::new(&name_or("primaryFieldName", "id"), "Int64").primary();
        match body["idType"].as_str().unwrap_or_default() {
            "" | "Int64" | "int64" => {}
            "VarChar" | "Varchar" => {
                id.data_type = "VarChar".into();
                id.params
                    .insert("max_length".into(), go_string(&params["max_length"]));
            }
            other => {
                return Err(envelope(
                    1100,
                    &format!(
                        "idType can only be [Int64, VarChar], default: Int64: invalid parameter[expected=Int64, Varchar][actual={other}]"
                    ),
                ));
            }
        }
        id.auto_id = body["autoID"].as_bool().unwrap_or(false);
        def.enable_dynamic_field = match param("enableDynamicField").map(go_string) {
            None => true,
            Some(v) => match v.as_str() {
                "1" | "t" | "T" | "true" | "TRUE" | "True" => true,
                "0" | "f" | "F" | "false" | "FALSE" | "False" => false,
                _ => {
                    return Err(envelope(
                        65535,
                        &format!(
                            "parse enableDynamicField fail, err:strconv.ParseBool: parsing \"{v}\": invalid syntax"
                        ),
                    ));
                }
            },
        };
        let vector = name_or("vectorFieldName", "vector");
        def.fields = vec![
            id,
            FakeField::new(&vector, "FloatVector").param("dim", &dimension.to_string()),
        ];
        let metric = name_or("metricType", "COSINE");
        vec![json!({"fieldName": vector, "indexName": vector, "metricType": metric})]
    };
    def.shards_num = param("shardsNum")
        .and_then(|v| go_string(v).parse().ok())
        .unwrap_or(1);
    if let Some(level) = param("consistencyLevel").map(go_string) {
        if !CONSISTENCY_LEVELS.contains(&level.as_str()) {
            return Err(envelope(
                1100,
                &format!(
                    "consistencyLevel can only be [Strong, Session, Bounded, Eventually, Customized], default: Bounded: invalid parameter[expected=Strong, Session, Bounded, Eventually, Customized][actual={level}]"
                ),
            ));
        }
        def.consistency_level = level;
    }
    if def.fields.iter().any(|f| f.partition_key) {
        def.partitions_num = Some(
            param("partitionsNum")
                .and_then(|v| go_string(v).parse().ok())
                .unwrap_or(64),
        );
    }
    if let Some(ttl) = param("ttlSeconds") {
        def.properties
            .insert("collection.ttl.seconds".into(), go_string(ttl));
    }
    if let Some(mmap) = param("mmap.enabled") {
        def.properties
            .insert("mmap.enabled".into(), go_string(mmap));
    }
    Ok((def, indexes, custom.is_none()))
}

/// The proxy's checks of a schema (all 1100; the messages paraphrase Milvus').
fn validate(def: &FakeCollection, collection: &str) -> Result<(), Value> {
    let names_of = |pred: fn(&FakeField) -> bool| -> Vec<&str> {
        def.fields
            .iter()
            .filter(|f| pred(f))
            .map(|f| f.name.as_str())
            .collect()
    };
    let mut seen = BTreeSet::new();
    if let Some(dup) = def.fields.iter().find(|f| !seen.insert(f.name.as_str())) {
        return Err(invalid(&format!("duplicated field name: {}", dup.name)));
    }
    let primaries = names_of(|f| f.primary_key);
    match primaries.len() {
        0 => return Err(invalid("primary key is not specified")),
        1 => {}
        _ => {
            return Err(invalid(&format!(
                "there are more than one primary key, field name = {}",
                primaries.join(", ")
            )));
        }
    }
    let keyable = |f: &FakeField| f.data_type == "Int64" || f.data_type == "VarChar";
    if def.fields.iter().any(|f| f.primary_key && !keyable(f)) {
        return Err(invalid(
            "the data type of primary key should be Int64 or VarChar",
        ));
    }
    let partition_keys = names_of(|f| f.partition_key);
    if partition_keys.len() > 1 {
        return Err(invalid(&format!(
            "there are more than one partition key, field name = {}",
            partition_keys.join(", ")
        )));
    }
    if def.fields.iter().any(|f| f.partition_key && !keyable(f)) {
        return Err(invalid(
            "the data type of partition key should be Int64 or VarChar",
        ));
    }
    if def.vector_fields().next().is_none() {
        return Err(invalid("schema does not contain vector field"));
    }
    for f in &def.fields {
        if f.is_vector() && f.data_type != "SparseFloatVector" {
            let Some(dim) = f.params.get("dim") else {
                return Err(invalid(&format!(
                    "dimension is not defined in field type params of field {}, check type param `dim` for vector field",
                    f.name
                )));
            };
            if !dim.parse::<i64>().is_ok_and(|d| (2..=32768).contains(&d)) {
                return Err(invalid(&format!(
                    "invalid dimension: {dim} of field {}. should be in range 2 ~ 32768",
                    f.name
                )));
            }
        }
        let max_length_ok = f
            .params
            .get("max_length")
            .and_then(|m| m.parse::<i64>().ok())
            .is_some_and(|m| (1..=65535).contains(&m));
        if f.data_type == "VarChar" && !max_length_ok {
            return Err(invalid(&format!(
                "type param(max_length) should be specified for the field({}) of collection {collection}",
                f.name
            )));
        }
    }
    Ok(())
}

/// `collections/create`: the handler's checks, the proxy's, the database, then (rootcoord) a
/// new collection or the comparison with the existing one, then each index and the load — as
/// separate steps, so a failure part-way leaves what was done (not atomic, like the server).
fn create_collection(s: &mut State, key: &Key, body: &Value) -> Value {
    let (def, index_params, quick) = match definition(body) {
        Ok(plan) => plan,
        Err(answer) => return answer,
    };
    if let Err(answer) = validate(&def, &key.1) {
        return answer;
    }
    if !db_known(s, &key.0) {
        return db_not_found(&key.0);
    }
    if s.collections.contains(key) {
        // rootcoord compares the whole stored collection (model.Collection.Equal): the schema,
        // shards, consistency, properties (altered ones too) and the partitions
        let has_partitions = s.partitions.iter().any(|(c, _)| c == key);
        if stored_mut(s, key).def != def || has_partitions {
            return envelope(
                65535,
                &format!(
                    "create duplicate collection with different parameters, collection: {}",
                    key.1
                ),
            );
        }
    } else {
        s.collections.insert(key.clone());
        s.details.remove(key);
        stored_mut(s, key).def = def.clone();
    }
    if !quick && index_params.is_empty() {
        return ok(json!({}));
    }
    for params in &index_params {
        if let Err(answer) = create_index(s, key, &def, params) {
            return answer;
        }
    }
    load_collection(s, key)
}

/// One entry of `indexParams`: 1802 for a field not in the schema; the identical index again is
/// a no-op, any other second index on the field (or another index under the name) is 65535.
/// Without `indexName` the index takes the name of the field's index, else the field's name.
fn create_index(
    s: &mut State,
    key: &Key,
    def: &FakeCollection,
    params: &Value,
) -> Result<(), Value> {
    let field_name = params["fieldName"].as_str().unwrap_or_default();
    let Some(field) = def.field(field_name) else {
        return Err(envelope(
            1802,
            &format!("missing required parameters, error: `{field_name}` hasn't defined in schema"),
        ));
    };
    let text = |k: &str| {
        params[k]
            .as_str()
            .filter(|v| !v.is_empty())
            .map(String::from)
    };
    let default_metric = match field.data_type.as_str() {
        "BinaryVector" => "HAMMING",
        "SparseFloatVector" => "IP",
        _ if field.is_vector() => "COSINE",
        _ => "",
    };
    let new = FakeIndex {
        field_name: field_name.into(),
        index_type: text("indexType").unwrap_or_else(|| "AUTOINDEX".into()),
        metric_type: text("metricType").unwrap_or_else(|| default_metric.into()),
        params: params["params"]
            .as_object()
            .map(|o| o.iter().map(|(k, v)| (k.clone(), go_string(v))).collect())
            .unwrap_or_default(),
        describes_until_built: s.index_build_describes,
    };
    let on_field = s
        .indexes
        .iter()
        .find(|((c, _), i)| c == key && i.field_name == field_name)
        .map(|((_, name), _)| name.clone());
    let name = text("indexName")
        .or_else(|| on_field.clone())
        .unwrap_or_else(|| field_name.into());
    let distinct = || {
        envelope(
            65535,
            "CreateIndex failed: at most one distinct index is allowed per field",
        )
    };
    if let Some(existing) = s.indexes.get(&(key.clone(), name.clone())) {
        return if existing.same_definition(&new) {
            Ok(())
        } else {
            Err(distinct())
        };
    }
    if on_field.is_some() {
        return Err(distinct());
    }
    s.indexes.insert((key.clone(), name), new);
    Ok(())
}

/// `collections/load` of an existing collection: every vector field needs an index (no index at
/// all: 700 from the index lookup; some vector field without one: 65535), as the proxy checks.
/// Loading a collection loads its partitions.
fn load_collection(s: &mut State, key: &Key) -> Value {
    let def = stored_mut(s, key).def.clone();
    let indexed: BTreeSet<String> = s
        .indexes
        .iter()
        .filter(|((c, _), _)| c == key)
        .map(|(_, i)| i.field_name.clone())
        .collect();
    if indexed.is_empty() {
        return envelope(700, &format!("index not found[collection={}]", key.1));
    }
    let unindexed: Vec<&str> = def
        .vector_fields()
        .filter(|f| !indexed.contains(&f.name))
        .map(|f| f.name.as_str())
        .collect();
    if !unindexed.is_empty() {
        return envelope(
            65535,
            &format!(
                "there is no vector index on field: [{}], please create index firstly",
                unindexed.join(" ")
            ),
        );
    }
    s.loaded_collections.insert(key.clone());
    let partitions: Vec<(Key, String)> = s
        .partitions
        .iter()
        .filter(|(c, _)| c == key)
        .cloned()
        .collect();
    s.loaded_partitions.extend(partitions);
    ok(json!({}))
}

/// `collections/describe` of an existing collection: the v2 handler's `data`; a failed index
/// lookup (no index on the first vector field) goes into `message` with code 0, as there.
fn describe_collection(s: &mut State, key: &Key) -> Value {
    let Stored { id, def } = stored_mut(s, key);
    let (id, def) = (*id, def.clone());
    let kv = |m: &BTreeMap<String, String>| -> Vec<Value> {
        m.iter()
            .map(|(k, v)| json!({"key": k, "value": v}))
            .collect()
    };
    let fields: Vec<Value> = def
        .fields
        .iter()
        .zip(100..)
        .map(|(f, field_id)| {
            let mut field = json!({
                "name": f.name,
                "id": field_id,
                "type": f.data_type,
                "primaryKey": f.primary_key,
                "partitionKey": f.partition_key,
                "clusteringKey": false,
                "autoId": f.auto_id,
                "description": "",
                "nullable": false,
                "params": kv(&f.params),
            });
            if let Some(element) = &f.element_type {
                field["elementType"] = json!(element);
            }
            field
        })
        .collect();
    let first_vector = def.vector_fields().next().map(|f| f.name.clone());
    let index = s
        .indexes
        .iter()
        .find(|((c, _), i)| c == key && Some(&i.field_name) == first_vector.as_ref());
    let (indexes, message) = match index {
        Some(((_, name), i)) => (
            vec![
                json!({"indexName": name, "fieldName": i.field_name, "metricType": i.metric_type}),
            ],
            String::new(),
        ),
        None => (Vec::new(), "index not found[indexName=];".to_string()),
    };
    let user_partitions = s.partitions.iter().filter(|(c, _)| c == key).count() as i64;
    let load = if s.loaded_collections.contains(key) {
        "LoadStateLoaded"
    } else {
        "LoadStateNotLoad"
    };
    json!({
        "code": 0,
        "data": {
            "collectionName": key.1,
            "collectionID": id,
            "description": def.description,
            "autoId": def.fields.iter().any(|f| f.primary_key && f.auto_id),
            "fields": fields,
            "functions": [],
            "aliases": [],
            "indexes": indexes,
            "load": load,
            "shardsNum": def.shards_num,
            "partitionsNum": def.partitions_num.unwrap_or(1 + user_partitions),
            "consistencyLevel": def.consistency_level,
            "enableDynamicField": def.enable_dynamic_field,
            "properties": kv(&def.properties),
        },
        "message": message,
    })
}

/// One cluster the fake holds: what a describe answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FakeCluster {
    pub cluster_id: String,
    pub cluster_name: String,
    pub project_id: String,
    pub region_id: String,
    /// `Free`, `Serverless`, `Standard` or `Enterprise`
    pub plan: String,
    /// empty for serverless and free clusters
    pub cu_type: String,
    pub cu_size: u32,
    pub replica: u32,
    /// CREATING, RUNNING, MODIFYING, SUSPENDING, SUSPENDED, RESUMING, DELETING, DELETED
    pub status: String,
    /// where a transitional status goes, and when
    phase: Option<Phase>,
    /// list answers still to leave it out (a list that lags behind a create)
    unlisted_for: u32,
}

impl FakeCluster {
    fn dedicated(&self) -> bool {
        matches!(self.plan.as_str(), "Standard" | "Enterprise")
    }

    fn describe(&self, uri: &str) -> Value {
        let progress = match self.status.as_str() {
            "CREATING" => 50,
            _ => 100,
        };
        json!({
            "clusterId": self.cluster_id,
            "clusterName": self.cluster_name,
            "projectId": self.project_id,
            "regionId": self.region_id,
            "plan": self.plan,
            "cuType": self.cu_type,
            "cuSize": self.cu_size,
            "replica": self.replica,
            "status": self.status,
            "connectAddress": uri,
            "privateLinkAddress": "",
            "storageSize": 0,
            "createProgress": progress,
            "createTime": "2026-12-02T10:00:00Z",
        })
    }

    /// Moves to the phase's next status once its time has passed and no describe is owed.
    fn settle(&mut self, now: Instant) {
        if let Some(p) = &self.phase
            && p.describes == 0
            && p.until.is_none_or(|u| now >= u)
        {
            self.status = p.to.to_string();
            self.phase = None;
        }
    }

    /// What a describe sees: the transitional status for the phase's describes, then the next.
    fn described(&mut self, now: Instant) {
        self.settle(now);
        if let Some(p) = &mut self.phase {
            p.describes = p.describes.saturating_sub(1);
        }
    }

    fn enter(&mut self, status: &str, to: &'static str, length: PhaseLength, now: Instant) {
        self.status = status.to_string();
        self.phase = Some(Phase {
            to,
            describes: length.describes,
            until: (!length.duration.is_zero()).then(|| now + length.duration),
        });
    }
}

/// A transitional status's end: the status after it, the describes still to show it and the
/// instant before which it lasts.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Phase {
    to: &'static str,
    describes: u32,
    until: Option<Instant>,
}

/// How long a transitional status (`CREATING`, `MODIFYING`, ...) lasts: the first `describes`
/// describes show it, and it lasts at least `duration` (both must be over).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PhaseLength {
    pub describes: u32,
    pub duration: Duration,
}

impl PhaseLength {
    pub fn describes(n: u32) -> PhaseLength {
        PhaseLength {
            describes: n,
            duration: Duration::ZERO,
        }
    }

    pub fn lasting(d: Duration) -> PhaseLength {
        PhaseLength {
            describes: 0,
            duration: d,
        }
    }
}

/// What becomes of the answer of the next cluster create: the cluster is created either way
/// (the server did its work), only its answer is lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CreateFault {
    /// A gateway answers 504 with an HTML page.
    GatewayTimeout,
    /// The answer is held back this long (longer than the client's timeout: the client gives
    /// up and closes the connection before it arrives).
    Delay(Duration),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Version {
    V1,
    V2,
}
use Version::{V1, V2};

impl Version {
    /// The success envelope: code 200 in v1, 0 in v2.
    fn ok(self, data: Value) -> Value {
        match self {
            V1 => json!({"code": 200, "data": data}),
            V2 => ok(data),
        }
    }
}

/// The code this fake answers a control plane request it refuses as malformed (both or
/// neither of `cuSize` and `replica`, a missing field, a cluster not `RUNNING`).
/// UNCONFIRMED: the real code of each case is not documented; 80000 is the documented "bad
/// request" code (`docs/zilliz-api.md`).
pub const CLUSTER_BAD_REQUEST: i64 = 80000;

fn not_exist() -> Value {
    envelope(80020, "Cluster not exist or you don't have permission.")
}

/// A field of a request body, as the control plane reads it.
fn text(body: &Value, key: &str) -> Option<String> {
    body[key]
        .as_str()
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

/// A query parameter (`pageSize=10&currentPage=2`).
fn query_param(query: &str, key: &str) -> Option<usize> {
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == key).then(|| v.parse().ok()).flatten()
    })
}

/// The control plane's cluster routes (`rest`: the segments after `/v1/clusters` or
/// `/v2/clusters`).
#[allow(clippy::too_many_arguments)]
fn control_plane(
    s: &mut State,
    version: Version,
    method: &str,
    rest: &[&str],
    body: &Value,
    query: &str,
    token: &str,
    now: Instant,
) -> Reply {
    let json = Reply::Json;
    let denied = |s: &State, id: &str| s.denied.get(token).is_some_and(|ids| ids.contains(id));
    match (method, rest) {
        ("GET", []) => {
            let page_key = if version == V1 {
                "current"
            } else {
                "currentPage"
            };
            let all: Vec<Value> = s
                .clusters
                .values_mut()
                .filter_map(|c| {
                    c.settle(now);
                    if c.unlisted_for > 0 {
                        c.unlisted_for -= 1;
                        return None;
                    }
                    (c.status != "DELETED").then(|| {
                        json!({
                            "clusterId": c.cluster_id,
                            "clusterName": c.cluster_name,
                            "projectId": c.project_id,
                            "regionId": c.region_id,
                            "plan": c.plan,
                            "status": c.status,
                            "cuSize": c.cu_size,
                            "replica": c.replica,
                        })
                    })
                })
                .collect();
            let count = all.len();
            match query_param(query, "pageSize") {
                None => json(200, version.ok(json!({"count": count, "clusters": all}))),
                Some(size) => {
                    let size = size.max(1);
                    let page = query_param(query, page_key).unwrap_or(1).max(1);
                    let clusters: Vec<Value> =
                        all.into_iter().skip((page - 1) * size).take(size).collect();
                    json(
                        200,
                        version.ok(json!({
                            "count": count,
                            "currentPage": page,
                            "pageSize": size,
                            "clusters": clusters,
                        })),
                    )
                }
            }
        }
        ("POST", [kind @ ("create" | "createDedicated" | "createServerless" | "createFree")]) => {
            let plan_of_route = match (*kind, version) {
                ("createServerless", V2) => Some("Serverless"),
                ("createFree", V2) => Some("Free"),
                ("createDedicated", V2) | ("create", V1) => None,
                // v1 has only `create`, v2 has no `create`
                _ => return Reply::Text(404, "404 page not found"),
            };
            create_cluster(s, version, plan_of_route, body, now)
        }
        (_, [id, ..]) if denied(s, id) => json(200, not_exist()),
        ("GET", [id]) => {
            let uri = s.uri.clone();
            match s.clusters.get_mut(*id) {
                Some(c) => {
                    c.described(now);
                    json(200, version.ok(c.describe(&uri)))
                }
                None => json(200, not_exist()),
            }
        }
        ("DELETE", [id, "drop"]) => {
            let id = id.to_string();
            let Some(c) = s.clusters.get_mut(&id).filter(|c| c.status != "DELETED") else {
                return json(200, not_exist());
            };
            c.enter("DELETING", "DELETED", PhaseLength::describes(1), now);
            json(
                200,
                version.ok(json!({
                    "clusterId": id,
                    "prompt": "The cluster has been deleted. If you consider this action to be an error, you have the option to restore the deleted cluster from the recycle bin within a 30-day period. Kindly note, this recovery feature does not apply to free clusters."
                })),
            )
        }
        ("POST", [id, action @ ("modify" | "suspend" | "resume")]) => {
            let change = s.change_phase;
            let Some(c) = s.clusters.get_mut(*id).filter(|c| c.status != "DELETED") else {
                return json(200, not_exist());
            };
            c.settle(now);
            if !c.dedicated() {
                return json(
                    200,
                    envelope(
                        80021,
                        &format!("{} is not supported for {} clusters.", action, c.plan),
                    ),
                );
            }
            let (needs, during, to) = match *action {
                "modify" => ("RUNNING", "MODIFYING", "RUNNING"),
                "suspend" => ("RUNNING", "SUSPENDING", "SUSPENDED"),
                _ => ("SUSPENDED", "RESUMING", "RUNNING"),
            };
            if *action == "modify" {
                let cu = body["cuSize"].as_u64();
                let replica = body["replica"].as_u64();
                let limit = if c.plan == "Enterprise" { 1024 } else { 32 };
                match (cu, replica) {
                    (Some(_), Some(_)) | (None, None) => {
                        return json(
                            200,
                            envelope(
                                CLUSTER_BAD_REQUEST,
                                "Invalid parameter: set exactly one of cuSize and replica.",
                            ),
                        );
                    }
                    (Some(cu), None) if cu == 0 || cu > limit => {
                        return json(
                            200,
                            envelope(
                                CLUSTER_BAD_REQUEST,
                                &format!("Invalid parameter: cuSize {cu} is out of range."),
                            ),
                        );
                    }
                    _ => {}
                }
                if c.status != needs {
                    return json(200, not_in(c, needs));
                }
                if let Some(cu) = cu {
                    c.cu_size = cu as u32;
                }
                if let Some(r) = replica {
                    c.replica = r as u32;
                }
            } else if c.status != needs {
                return json(200, not_in(c, needs));
            }
            c.enter(during, to, change, now);
            json(
                200,
                version.ok(json!({"clusterId": c.cluster_id, "prompt": "Submission successful."})),
            )
        }
        _ => Reply::Text(404, "404 page not found"),
    }
}

fn not_in(c: &FakeCluster, needs: &str) -> Value {
    envelope(
        CLUSTER_BAD_REQUEST,
        &format!(
            "The cluster {} is {}; this operation needs it {needs}.",
            c.cluster_id, c.status
        ),
    )
}

/// `createDedicated` (`plan_of_route` `None`: the body's plan, Standard or Enterprise; also
/// v1's `create`, which may name any plan), `createServerless`, `createFree`.
fn create_cluster(
    s: &mut State,
    version: Version,
    plan_of_route: Option<&str>,
    body: &Value,
    now: Instant,
) -> Reply {
    let json = Reply::Json;
    let bad = |m: &str| {
        json(
            200,
            envelope(CLUSTER_BAD_REQUEST, &format!("Invalid parameter: {m}")),
        )
    };
    let Some(name) = text(body, "clusterName") else {
        return bad("clusterName is required.");
    };
    let Some(project) = text(body, "projectId") else {
        return bad("projectId is required.");
    };
    // v1's host names the region; its body may leave it out
    let region = match (text(body, "regionId"), version) {
        (Some(r), _) => r,
        (None, V1) => "v1-region".to_string(),
        (None, V2) => return bad("regionId is required."),
    };
    let plan = match plan_of_route {
        Some(p) => p.to_string(),
        None => match text(body, "plan").as_deref() {
            Some(p @ ("Standard" | "Enterprise")) => p.to_string(),
            Some(p @ ("Free" | "Serverless")) if version == V1 => p.to_string(),
            _ => return bad("plan must be Standard or Enterprise."),
        },
    };
    let dedicated = matches!(plan.as_str(), "Standard" | "Enterprise");
    let (cu_type, cu_size) = if dedicated {
        let Some(cu_type) = text(body, "cuType") else {
            return bad("cuType is required.");
        };
        let limit = if plan == "Enterprise" { 1024 } else { 32 };
        match body["cuSize"].as_u64() {
            Some(cu) if (1..=limit).contains(&cu) => (cu_type, cu as u32),
            _ => return bad(&format!("cuSize must be 1 to {limit} for {plan}.")),
        }
    } else {
        (String::new(), 1)
    };
    let taken = s
        .clusters
        .values()
        .any(|c| c.cluster_name == name && c.project_id == project && c.status != "DELETED");
    if taken {
        return json(
            200,
            envelope(
                80010,
                "Duplicated ClusterName. Please use a different name for your cluster.",
            ),
        );
    }
    s.created_clusters += 1;
    let id = format!("in01-{:016x}", 0x5eed_0000_0000 + s.created_clusters);
    let mut cluster = FakeCluster {
        cluster_id: id.clone(),
        cluster_name: name,
        project_id: project,
        region_id: region,
        plan,
        cu_type,
        cu_size,
        replica: 1,
        status: "CREATING".into(),
        phase: None,
        unlisted_for: s.list_lag,
    };
    cluster.enter("CREATING", "RUNNING", s.create_phase, now);
    s.clusters.insert(id.clone(), cluster);
    let password = format!("Pw{:x}-{}", s.created_clusters * 7919, &id[5..13]);
    match s.create_fault.take() {
        Some(CreateFault::GatewayTimeout) => Reply::Html(
            504,
            "<html><head><title>504 Gateway Time-out</title></head><body><h1>504 Gateway Time-out</h1><hr><center>nginx</center></body></html>".into(),
        ),
        fault => {
            if let Some(CreateFault::Delay(d)) = fault {
                s.delay_once = Some(d);
            }
            json(
                200,
                version.ok(json!({
                    "clusterId": id,
                    "username": "db_admin",
                    "password": password,
                    "prompt": "Submission successful, Cluster is being created, You can use the DescribeCluster interface to obtain the creation progress and the status of the Cluster. When the Cluster status is RUNNING, you can access your vector database using the SDK with the admin account and the initialization password you provided.",
                })),
            )
        }
    }
}

impl Respond for Responder {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let mut s = self.0.lock().unwrap();
        let method = req.method.to_string();
        let path = req.url.path().to_string();
        let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
        let auth = req
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let arrived = Instant::now();
        let query = req.url.query().unwrap_or_default().to_string();
        let reply = answer(&mut s, &method, &path, &query, &body, &auth, arrived);
        let delay = s.delay_once.take().unwrap_or(s.latency);
        let (status, code) = match &reply {
            Reply::Json(st, v) => (*st, v["code"].as_i64()),
            Reply::Html(st, _) | Reply::Text(st, _) => (*st, None),
        };
        s.calls.push(Call {
            method,
            path,
            body,
            arrived,
            token: auth.strip_prefix("Bearer ").unwrap_or_default().to_string(),
            status,
            code,
            delay,
        });
        let template = match reply {
            Reply::Json(st, v) => ResponseTemplate::new(st).set_body_json(v),
            Reply::Html(st, page) => ResponseTemplate::new(st)
                .insert_header("content-type", "text/html")
                .set_body_string(page),
            Reply::Text(st, text) => ResponseTemplate::new(st)
                .insert_header("content-type", "text/plain")
                .set_body_string(text),
        };
        template.set_delay(delay)
    }
}

/// The answer to one request; changes the state like the real API would.
fn answer(
    s: &mut State,
    method: &str,
    path: &str,
    query: &str,
    body: &Value,
    auth: &str,
    now: Instant,
) -> Reply {
    let json = Reply::Json;
    let in_outage = s.outage_until.is_some_and(|until| now < until);
    if s.outage > 0 || in_outage {
        s.outage = s.outage.saturating_sub(1);
        // what a gateway in front of the API shows while the API is down
        let echoed = if s.echo_auth {
            format!("<p>Request rejected: Authorization: {auth}</p>")
        } else {
            String::new()
        };
        return Reply::Html(
            503,
            format!(
                "<html><head><title>503 Service Temporarily Unavailable</title></head><body><h1>503 Service Temporarily Unavailable</h1>{echoed}<hr><center>nginx</center></body></html>"
            ),
        );
    }
    let control = path.starts_with("/v2/clusters") || path.starts_with("/v1/clusters");
    let token = auth.strip_prefix("Bearer ").unwrap_or_default();
    if auth != format!("Bearer {}", s.token) {
        let echoed = if s.echo_auth {
            format!(" (Authorization: {auth})")
        } else {
            String::new()
        };
        return if control {
            json(
                401,
                envelope(21119, &format!("The apikey is illegal{echoed}")),
            )
        } else {
            json(
                401,
                envelope(1800, &format!("user hasn't authenticated{echoed}")),
            )
        };
    }
    let key = (method.to_string(), path.to_string());
    if let Some(next) = s.scripted.get_mut(&key) {
        next.left -= 1;
        let reply = json(next.status, next.body.clone());
        if next.left == 0 {
            s.scripted.remove(&key);
        }
        return reply;
    }
    let str_of = |k: &str| body[k].as_str().unwrap_or_default().to_string();
    let db = {
        let d = str_of("dbName");
        if d.is_empty() {
            "default".to_string()
        } else {
            d
        }
    };
    let coll: Key = (db.clone(), str_of("collectionName"));
    if path.starts_with("/v2/vectordb/") && !valid_collection_name(&coll.1) {
        // the answer of a Milvus 2.3.5 proxy (docs/zilliz-api.md)
        return json(
            200,
            envelope(
                1100,
                &format!(
                    "Invalid collection name: {}. collection name can only contain numbers, letters and underscores: invalid parameter",
                    coll.1
                ),
            ),
        );
    }
    let not_found = envelope(
        100,
        &format!(
            "collection not found[database={}][collection={}]",
            coll.0, coll.1
        ),
    );
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    // the routes for create, adopt and update answer 800 for a database that does not exist
    // (create checks it itself, after the request's own checks) and 100 for a missing collection
    let on_existing_collection = matches!(
        segments.as_slice(),
        [
            "v2",
            "vectordb",
            "collections",
            "describe" | "get_load_state" | "load" | "alter_properties"
        ] | ["v2", "vectordb", "partitions", "create" | "list"]
            | ["v2", "vectordb", "indexes", "create" | "list"]
    );
    if method == "POST" && on_existing_collection {
        if !db_known(s, &coll.0) {
            return json(200, db_not_found(&coll.0));
        }
        if !s.collections.contains(&coll) {
            return json(200, not_found);
        }
    }
    match (method, segments.as_slice()) {
        (_, [version @ ("v1" | "v2"), "clusters", rest @ ..]) => {
            let flavour = if *version == "v1" { V1 } else { V2 };
            control_plane(s, flavour, method, rest, body, query, token, now)
        }
        ("POST", ["v2", "vectordb", "collections", "has"]) => {
            json(200, ok(json!({"has": s.collections.contains(&coll)})))
        }
        ("POST", ["v2", "vectordb", "collections", "drop"]) => {
            // v2 collection drop is idempotent: code 0 for a missing collection too
            s.collections.remove(&coll);
            s.loaded_collections.remove(&coll);
            s.partitions.retain(|(c, _)| c != &coll);
            s.indexes.retain(|(c, _), _| c != &coll);
            s.details.remove(&coll);
            json(200, ok(json!({})))
        }
        ("POST", ["v2", "vectordb", "collections", "create"]) => {
            json(200, create_collection(s, &coll, body))
        }
        ("POST", ["v2", "vectordb", "collections", "describe"]) => {
            json(200, describe_collection(s, &coll))
        }
        ("POST", ["v2", "vectordb", "collections", "get_load_state"]) => {
            if s.loaded_collections.contains(&coll) {
                json(
                    200,
                    json!({"code": 0, "data": {"loadState": "LoadStateLoaded", "loadProgress": 100}, "message": ""}),
                )
            } else {
                json(200, ok(json!({"loadState": "LoadStateNotLoad"})))
            }
        }
        ("POST", ["v2", "vectordb", "collections", "load"]) => json(200, load_collection(s, &coll)),
        ("POST", ["v2", "vectordb", "collections", "alter_properties"]) => {
            let properties = body["properties"].as_object().cloned().unwrap_or_default();
            let def = &mut stored_mut(s, &coll).def;
            for (k, v) in &properties {
                def.properties.insert(k.clone(), go_string(v));
            }
            json(200, ok(json!({})))
        }
        ("POST", ["v2", "vectordb", "collections", "release"]) => {
            if !s.collections.contains(&coll) {
                return json(200, not_found);
            }
            s.loaded_collections.remove(&coll);
            s.loaded_partitions.retain(|(c, _)| c != &coll);
            json(200, ok(json!({})))
        }
        ("POST", ["v2", "vectordb", "partitions", "has"]) => {
            if !s.collections.contains(&coll) {
                return json(200, not_found);
            }
            let has = s
                .partitions
                .contains(&(coll.clone(), str_of("partitionName")));
            json(200, ok(json!({"has": has})))
        }
        ("POST", ["v2", "vectordb", "partitions", "create"]) => {
            if stored_mut(s, &coll).def.partitions_num.is_some() {
                return json(
                    200,
                    envelope(
                        65535,
                        "disable create partition if partition key mode is used",
                    ),
                );
            }
            // idempotent; a partition created in a loaded collection is loaded with it
            let p = str_of("partitionName");
            if p != "_default" {
                s.partitions.insert((coll.clone(), p.clone()));
                if s.loaded_collections.contains(&coll) {
                    s.loaded_partitions.insert((coll, p));
                }
            }
            json(200, ok(json!({})))
        }
        ("POST", ["v2", "vectordb", "partitions", "list"]) => {
            let names: Vec<String> = match stored_mut(s, &coll).def.partitions_num {
                // a partition-key collection's partitions are made by the server
                Some(n) => (0..n).map(|i| format!("_default_{i}")).collect(),
                None => std::iter::once("_default".to_string())
                    .chain(
                        s.partitions
                            .iter()
                            .filter(|(c, _)| c == &coll)
                            .map(|(_, p)| p.clone()),
                    )
                    .collect(),
            };
            json(200, ok(json!(names)))
        }
        ("POST", ["v2", "vectordb", "partitions", "release"]) => {
            if !s.collections.contains(&coll) {
                return json(200, not_found);
            }
            for p in body["partitionNames"]
                .as_array()
                .cloned()
                .unwrap_or_default()
            {
                let p = p.as_str().unwrap_or_default().to_string();
                s.loaded_partitions.remove(&(coll.clone(), p));
            }
            json(200, ok(json!({})))
        }
        ("POST", ["v2", "vectordb", "partitions", "drop"]) => {
            if !s.collections.contains(&coll) {
                return json(200, not_found);
            }
            let p = str_of("partitionName");
            if p == "_default" {
                return json(200, envelope(65535, "default partition cannot be deleted"));
            }
            if s.loaded_partitions.contains(&(coll.clone(), p.clone())) {
                return json(
                    200,
                    envelope(
                        65535,
                        "partition cannot be dropped, partition is loaded, please release it first",
                    ),
                );
            }
            s.partitions.remove(&(coll, p));
            json(200, ok(json!({})))
        }
        ("POST", ["v2", "vectordb", "indexes", "describe"]) => {
            if !s.collections.contains(&coll) {
                return json(200, not_found);
            }
            let i = str_of("indexName");
            let Some(index) = s.indexes.get_mut(&(coll, i.clone())) else {
                return json(
                    200,
                    envelope(700, &format!("index not found[indexName={i}]")),
                );
            };
            let state = if index.describes_until_built > 0 {
                index.describes_until_built -= 1;
                "InProgress"
            } else {
                "Finished"
            };
            json(
                200,
                ok(json!([{
                    "indexName": i,
                    "fieldName": index.field_name,
                    "indexType": index.index_type,
                    "metricType": index.metric_type,
                    "totalRows": 0,
                    "pendingRows": 0,
                    "indexedRows": 0,
                    "indexState": state,
                    "failReason": "",
                }])),
            )
        }
        ("POST", ["v2", "vectordb", "indexes", "create"]) => {
            let Some(params) = body["indexParams"].as_array().filter(|p| !p.is_empty()) else {
                return json(
                    200,
                    envelope(
                        1802,
                        "missing required parameters, error: Key: 'IndexParamReq.IndexParams' Error:Field validation for 'IndexParams' failed on the 'required' tag",
                    ),
                );
            };
            let def = stored_mut(s, &coll).def.clone();
            for p in params {
                if let Err(answer) = create_index(s, &coll, &def, p) {
                    return json(200, answer);
                }
            }
            json(200, ok(json!({})))
        }
        ("POST", ["v2", "vectordb", "indexes", "list"]) => {
            let field = str_of("fieldName");
            let names: Vec<&String> = s
                .indexes
                .iter()
                .filter(|((c, _), i)| c == &coll && (field.is_empty() || i.field_name == field))
                .map(|((_, name), _)| name)
                .collect();
            json(200, ok(json!(names)))
        }
        ("POST", ["v2", "vectordb", "indexes", "drop"]) => {
            if !s.collections.contains(&coll) {
                return json(200, not_found);
            }
            if s.loaded_collections.contains(&coll) {
                return json(
                    200,
                    envelope(
                        65535,
                        "index cannot be dropped, collection is loaded, please release it first",
                    ),
                );
            }
            s.indexes.remove(&(coll, str_of("indexName")));
            json(200, ok(json!({})))
        }
        _ => Reply::Text(404, "404 page not found"),
    }
}

impl ZillizFake {
    pub async fn start(token: &str) -> ZillizFake {
        let server = MockServer::start().await;
        let state = Arc::new(Mutex::new(State {
            token: token.to_string(),
            uri: server.uri(),
            create_phase: PhaseLength::describes(1),
            change_phase: PhaseLength::describes(1),
            ..State::default()
        }));
        Mock::given(any())
            .respond_with(Responder(state.clone()))
            .mount(&server)
            .await;
        ZillizFake { server, state }
    }

    pub fn uri(&self) -> String {
        self.server.uri()
    }

    /// Adds a `RUNNING` Standard cluster (1 CU, 1 replica) named after its id, in project
    /// `proj-default`.
    pub fn add_cluster(&self, id: &str) {
        self.add_named_cluster(id, id, "proj-default");
    }

    /// Adds a `RUNNING` Standard cluster (1 CU, 1 replica) with this name in this project.
    pub fn add_named_cluster(&self, id: &str, name: &str, project: &str) {
        self.state.lock().unwrap().clusters.insert(
            id.into(),
            FakeCluster {
                cluster_id: id.into(),
                cluster_name: name.into(),
                project_id: project.into(),
                region_id: "aws-us-west-2".into(),
                plan: "Standard".into(),
                cu_type: "Performance-optimized".into(),
                cu_size: 1,
                replica: 1,
                status: "RUNNING".into(),
                phase: None,
                unlisted_for: 0,
            },
        );
    }

    pub fn cluster_status(&self, id: &str) -> Option<String> {
        self.cluster(id).map(|c| c.status)
    }

    /// The cluster as the fake holds it now (a describe may still move it on).
    pub fn cluster(&self, id: &str) -> Option<FakeCluster> {
        self.state.lock().unwrap().clusters.get(id).cloned()
    }

    /// Every cluster with this name in this project (`DELETED` ones included), by id.
    pub fn clusters_named(&self, project: &str, name: &str) -> Vec<FakeCluster> {
        self.state
            .lock()
            .unwrap()
            .clusters
            .values()
            .filter(|c| c.project_id == project && c.cluster_name == name)
            .cloned()
            .collect()
    }

    /// Sets a cluster's status now, ending any phase it was in.
    pub fn set_cluster_status(&self, id: &str, status: &str) {
        if let Some(c) = self.state.lock().unwrap().clusters.get_mut(id) {
            c.status = status.into();
            c.phase = None;
        }
    }

    /// How long clusters created from now on stay `CREATING` before `RUNNING` (default: one
    /// describe shows `CREATING`).
    pub fn set_create_phase(&self, length: PhaseLength) {
        self.state.lock().unwrap().create_phase = length;
    }

    /// How long `MODIFYING`, `SUSPENDING` and `RESUMING` last from now on (default: one
    /// describe shows them).
    pub fn set_change_phase(&self, length: PhaseLength) {
        self.state.lock().unwrap().change_phase = length;
    }

    /// Clusters created from now on are missing from their first `n` cluster list answers (a
    /// list that lags behind the create; describes find them at once).
    pub fn set_list_lag(&self, n: u32) {
        self.state.lock().unwrap().list_lag = n;
    }

    /// Every cluster list from now on shows every cluster (ends the lag of those created
    /// earlier, and of those created later).
    pub fn catch_up_lists(&self) {
        let mut s = self.state.lock().unwrap();
        s.list_lag = 0;
        for c in s.clusters.values_mut() {
            c.unlisted_for = 0;
        }
    }

    /// The next cluster create that the fake accepts creates the cluster, but its answer is
    /// lost as `fault` says (a refused create, such as 80010, does not use it up).
    pub fn fault_next_create(&self, fault: CreateFault) {
        self.state.lock().unwrap().create_fault = Some(fault);
    }

    /// Adds a collection with no recorded definition: `collections/describe` answers it as
    /// [`FakeCollection::default`] (use [`ZillizFake::create_collection`] for another schema).
    pub fn add_collection(&self, db: &str, name: &str, loaded: bool) {
        let mut s = self.state.lock().unwrap();
        if db != "default" {
            s.databases.insert(db.into());
        }
        s.collections.insert((db.into(), name.into()));
        if loaded {
            s.loaded_collections.insert((db.into(), name.into()));
        }
    }

    pub fn has_collection(&self, db: &str, name: &str) -> bool {
        self.state
            .lock()
            .unwrap()
            .collections
            .contains(&(db.into(), name.into()))
    }

    pub fn add_partition(&self, db: &str, coll: &str, name: &str, loaded: bool) {
        let mut s = self.state.lock().unwrap();
        let key = ((db.to_string(), coll.to_string()), name.to_string());
        s.partitions.insert(key.clone());
        if loaded {
            s.loaded_partitions.insert(key);
        }
    }

    pub fn has_partition(&self, db: &str, coll: &str, name: &str) -> bool {
        self.state
            .lock()
            .unwrap()
            .partitions
            .contains(&((db.into(), coll.into()), name.into()))
    }

    /// Adds a built `AUTOINDEX` index (metric `L2`) on the collection's first vector field
    /// (`vector` when the collection has no recorded definition).
    pub fn add_index(&self, db: &str, coll: &str, name: &str) {
        let mut s = self.state.lock().unwrap();
        let key: Key = (db.into(), coll.into());
        let field = s
            .details
            .get(&key)
            .and_then(|d| d.def.vector_fields().next().map(|f| f.name.clone()))
            .unwrap_or_else(|| "vector".into());
        s.indexes.insert(
            (key, name.into()),
            FakeIndex {
                field_name: field,
                index_type: "AUTOINDEX".into(),
                metric_type: "L2".into(),
                params: BTreeMap::new(),
                describes_until_built: 0,
            },
        );
    }

    pub fn has_index(&self, db: &str, coll: &str, name: &str) -> bool {
        self.state
            .lock()
            .unwrap()
            .indexes
            .contains_key(&((db.into(), coll.into()), name.into()))
    }

    /// A database besides `default` that creates may use (others answer 800).
    pub fn add_database(&self, name: &str) {
        self.state.lock().unwrap().databases.insert(name.into());
    }

    /// Indexes created from now on answer `indexState: InProgress` to their first `n`
    /// `indexes/describe` calls, then `Finished` (0, the default: built at once).
    pub fn set_index_build_describes(&self, n: u32) {
        self.state.lock().unwrap().index_build_describes = n;
    }

    /// Does what `POST /v2/vectordb/collections/create` with this body does (no call recorded,
    /// no token checked) and returns the answer's envelope: a way to set up a collection with a
    /// given schema, indexes and load state.
    pub fn create_collection(&self, body: Value) -> Value {
        let mut s = self.state.lock().unwrap();
        let db = body["dbName"]
            .as_str()
            .filter(|d| !d.is_empty())
            .unwrap_or("default");
        let key: Key = (
            db.into(),
            body["collectionName"].as_str().unwrap_or_default().into(),
        );
        create_collection(&mut s, &key, &body)
    }

    /// What the fake holds for a collection: its definition (fields, properties, ...), whether
    /// it is loaded, its partitions and indexes; `None` when it does not exist.
    pub fn collection_state(&self, db: &str, name: &str) -> Option<CollectionState> {
        let mut s = self.state.lock().unwrap();
        let key: Key = (db.into(), name.into());
        if !s.collections.contains(&key) {
            return None;
        }
        let stored = stored_mut(&mut s, &key);
        let (id, definition) = (stored.id, stored.def.clone());
        Some(CollectionState {
            id,
            definition,
            loaded: s.loaded_collections.contains(&key),
            partitions: s
                .partitions
                .iter()
                .filter(|(c, _)| c == &key)
                .map(|(_, p)| p.clone())
                .collect(),
            indexes: s
                .indexes
                .iter()
                .filter(|((c, _), _)| c == &key)
                .map(|((_, n), i)| (n.clone(), i.clone()))
                .collect(),
        })
    }

    pub fn release_collection(&self, db: &str, name: &str) {
        self.state
            .lock()
            .unwrap()
            .loaded_collections
            .remove(&(db.into(), name.into()));
    }

    /// The next `n` requests answer 503 with an HTML body.
    pub fn outage(&self, n: usize) {
        self.state.lock().unwrap().outage = n;
    }

    pub fn outage_left(&self) -> usize {
        self.state.lock().unwrap().outage
    }

    /// Every request arriving within `d` from now answers 503 with an HTML body (a gateway
    /// page); answers when the outage ends.
    pub fn outage_for(&self, d: Duration) -> Instant {
        let until = Instant::now() + d;
        self.state.lock().unwrap().outage_until = Some(until);
        until
    }

    /// Every request answers 503 with an HTML body while `on` (see [`ZillizFake::outage_for`]).
    pub fn set_outage(&self, on: bool) {
        self.state.lock().unwrap().outage_until =
            on.then(|| Instant::now() + Duration::from_secs(24 * 3600));
    }

    pub fn set_latency(&self, d: Duration) {
        self.state.lock().unwrap().latency = d;
    }

    pub fn set_token(&self, token: &str) {
        self.state.lock().unwrap().token = token.into();
    }

    /// Calls carrying `token` that describe or drop the cluster `cluster_id` answer 80020 ("not
    /// exist or you don't have permission") although it exists, as Zilliz answers an API key
    /// with fewer rights; the cluster list still lists it and every other call works (the token
    /// still has to be the accepted one, see [`ZillizFake::set_token`]).
    pub fn deny_cluster(&self, token: &str, cluster_id: &str) {
        self.state
            .lock()
            .unwrap()
            .denied
            .entry(token.into())
            .or_default()
            .insert(cluster_id.into());
    }

    /// The next `n` authenticated calls of `method` and `path` answer HTTP `status` with the
    /// JSON `body` and change nothing (a server's answer the fake does not model, such as
    /// Milvus' generic `{"code":1100,"message":"invalid parameter..."}`); later calls get the
    /// real answer again. Outages and refused tokens still come first.
    pub fn answer_next(&self, method: &str, path: &str, n: usize, status: u16, body: Value) {
        let mut s = self.state.lock().unwrap();
        let key = (method.to_string(), path.to_string());
        if n == 0 {
            s.scripted.remove(&key);
        } else {
            s.scripted.insert(
                key,
                Scripted {
                    left: n,
                    status,
                    body,
                },
            );
        }
    }

    /// How many scripted answers of `method` and `path` are still to be given.
    pub fn scripted_left(&self, method: &str, path: &str) -> usize {
        self.state
            .lock()
            .unwrap()
            .scripted
            .get(&(method.to_string(), path.to_string()))
            .map_or(0, |n| n.left)
    }

    /// Error answers (401 envelopes, 503 pages) quote the `Authorization` header they were sent,
    /// as a careless gateway might.
    pub fn set_echo_auth(&self, on: bool) {
        self.state.lock().unwrap().echo_auth = on;
    }

    /// How many calls had this method and path.
    pub fn calls(&self, method: &str, path: &str) -> usize {
        self.state
            .lock()
            .unwrap()
            .calls
            .iter()
            .filter(|c| c.method == method && c.path == path)
            .count()
    }

    /// The JSON bodies of the calls with this method and path, in order.
    pub fn call_bodies(&self, method: &str, path: &str) -> Vec<Value> {
        self.state
            .lock()
            .unwrap()
            .calls
            .iter()
            .filter(|c| c.method == method && c.path == path)
            .map(|c| c.body.clone())
            .collect()
    }

    pub fn total_calls(&self) -> usize {
        self.state.lock().unwrap().calls.len()
    }

    /// Method, path and arrival time of every call from the `from`-th on (0: all), in order.
    /// The answer leaves [`ZillizFake::set_latency`] later than it arrived.
    pub fn timed_calls(&self, from: usize) -> Vec<(String, String, Instant)> {
        self.calls_from(from, |c| (c.method.clone(), c.path.clone(), c.arrived))
    }

    /// Every call from the `from`-th on (0: all), in order, with its token and answer.
    pub fn call_log(&self, from: usize) -> Vec<Call> {
        self.calls_from(from, Call::clone)
    }

    /// `what` of every call from the `from`-th on, in order, read under one lock.
    fn calls_from<T>(&self, from: usize, what: impl Fn(&Call) -> T) -> Vec<T> {
        self.state
            .lock()
            .unwrap()
            .calls
            .iter()
            .skip(from)
            .map(what)
            .collect()
    }

    pub fn all_calls(&self) -> Vec<(String, String)> {
        self.calls_from(0, |c| (c.method.clone(), c.path.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collection_names_follow_milvus() {
        for good in ["articles", "_x", "coll_00001", "A1"] {
            assert!(valid_collection_name(good), "{good}");
        }
        for bad in ["", "bad name!", "1abc", "with-dash", &"x".repeat(256)] {
            assert!(!valid_collection_name(bad), "{bad}");
        }
    }

    #[tokio::test]
    async fn calls_record_token_and_answer_and_outages_are_timed() {
        let fake = ZillizFake::start("k1").await;
        fake.add_collection("default", "c", false);
        let http = reqwest::Client::new();
        let post = |token: &'static str, body: Value| {
            let url = format!("{}/v2/vectordb/collections/has", fake.uri());
            let req = http.post(url).bearer_auth(token).json(&body);
            async move { req.send().await.unwrap().status().as_u16() }
        };
        assert_eq!(post("k1", json!({"collectionName": "c"})).await, 200);
        assert_eq!(post("nope", json!({"collectionName": "c"})).await, 401);
        assert_eq!(
            post("k1", json!({"collectionName": "bad name!"})).await,
            200
        );
        let until = fake.outage_for(Duration::from_millis(300));
        assert_eq!(post("k1", json!({"collectionName": "c"})).await, 503);
        tokio::time::sleep_until(until.into()).await;
        assert_eq!(post("k1", json!({"collectionName": "c"})).await, 200);
        fake.set_echo_auth(true);
        fake.set_outage(true);
        let page = http
            .post(format!("{}/v2/vectordb/collections/has", fake.uri()))
            .bearer_auth("k1")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(page.contains("Bearer k1"), "{page}");
        fake.set_outage(false);
        let log = fake.call_log(0);
        let seen: Vec<(&str, u16, Option<i64>)> = log
            .iter()
            .map(|c| (c.token.as_str(), c.status, c.code))
            .collect();
        assert_eq!(
            seen,
            [
                ("k1", 200, Some(0)),
                ("nope", 401, Some(1800)),
                ("k1", 200, Some(1100)),
                ("k1", 503, None),
                ("k1", 200, Some(0)),
                ("k1", 503, None),
            ]
        );
    }

    #[tokio::test]
    async fn a_denied_token_gets_80020_for_its_cluster_but_still_lists_it() {
        let fake = ZillizFake::start("k1").await;
        fake.add_cluster("in01-a");
        fake.add_cluster("in01-b");
        fake.add_collection("default", "c", false);
        fake.deny_cluster("k1", "in01-a");
        let http = reqwest::Client::new();
        let call = |method: &str, path: &str| {
            let url = format!("{}{path}", fake.uri());
            let req = match method {
                "GET" => http.get(url),
                "DELETE" => http.delete(url),
                _ => http.post(url).json(&json!({"collectionName": "c"})),
            }
            .bearer_auth("k1");
            async move { req.send().await.unwrap().json::<Value>().await.unwrap() }
        };
        assert_eq!(call("GET", "/v2/clusters/in01-a").await["code"], 80020);
        assert_eq!(
            call("DELETE", "/v2/clusters/in01-a/drop").await["code"],
            80020
        );
        assert_eq!(fake.cluster_status("in01-a").as_deref(), Some("RUNNING"));
        let listed = call("GET", "/v2/clusters").await;
        assert_eq!(listed["data"]["count"], 2, "{listed}");
        assert_eq!(call("GET", "/v2/clusters/in01-b").await["code"], 0);
        let has = call("POST", "/v2/vectordb/collections/has").await;
        assert_eq!(has["data"]["has"], true, "{has}");
    }

    #[tokio::test]
    async fn scripted_answers_come_n_times_then_the_real_one() {
        let fake = ZillizFake::start("k1").await;
        fake.add_collection("default", "c", false);
        let odd = json!({"code": 1100, "message": "invalid parameter"});
        fake.answer_next("POST", "/v2/vectordb/collections/drop", 2, 200, odd.clone());
        let http = reqwest::Client::new();
        let drop = |token: &'static str| {
            let url = format!("{}/v2/vectordb/collections/drop", fake.uri());
            let req = http
                .post(url)
                .bearer_auth(token)
                .json(&json!({"collectionName": "c"}));
            async move { req.send().await.unwrap().json::<Value>().await.unwrap() }
        };
        // a refused token is refused first and uses up no scripted answer
        assert_eq!(drop("nope").await["code"], 1800);
        assert_eq!(drop("k1").await, odd);
        assert_eq!(
            fake.scripted_left("POST", "/v2/vectordb/collections/drop"),
            1
        );
        assert!(fake.has_collection("default", "c"));
        assert_eq!(drop("k1").await, odd);
        assert!(fake.has_collection("default", "c"));
        assert_eq!(drop("k1").await["code"], 0);
        assert!(!fake.has_collection("default", "c"));
        let codes: Vec<Option<i64>> = fake.call_log(0).iter().map(|c| c.code).collect();
        assert_eq!(codes, [Some(1800), Some(1100), Some(1100), Some(0)]);
    }

    /// A control plane call with the accepted token: HTTP status and JSON body (`null` for a
    /// non-JSON answer).
    async fn cp(fake: &ZillizFake, method: &str, path: &str, body: Value) -> (u16, Value) {
        let url = format!("{}{path}", fake.uri());
        let http = reqwest::Client::new();
        let req = match method {
            "GET" => http.get(url),
            "DELETE" => http.delete(url),
            _ => http.post(url).json(&body),
        };
        let answer = req.bearer_auth("k1").send().await.unwrap();
        let status = answer.status().as_u16();
        (status, answer.json().await.unwrap_or(Value::Null))
    }

    fn dedicated(name: &str) -> Value {
        json!({"clusterName": name, "projectId": "proj-1", "regionId": "aws-us-west-2",
               "plan": "Standard", "cuType": "Performance-optimized", "cuSize": 2})
    }

    #[tokio::test]
    async fn a_created_cluster_is_creating_then_running_and_its_name_is_unique_in_a_project() {
        let fake = ZillizFake::start("k1").await;
        let (st, created) = cp(
            &fake,
            "POST",
            "/v2/clusters/createDedicated",
            dedicated("a"),
        )
        .await;
        assert_eq!(st, 200);
        assert_eq!(created["code"], 0, "{created}");
        let id = created["data"]["clusterId"].as_str().unwrap().to_string();
        assert!(id.starts_with("in01-"), "{id}");
        assert_eq!(created["data"]["username"], "db_admin");
        assert!(created["data"]["password"].as_str().unwrap().len() >= 8);
        assert!(created["data"]["prompt"].is_string());
        // the same name in the same project is refused and creates nothing
        let (_, dup) = cp(
            &fake,
            "POST",
            "/v2/clusters/createDedicated",
            dedicated("a"),
        )
        .await;
        assert_eq!(dup["code"], 80010, "{dup}");
        assert_eq!(fake.clusters_named("proj-1", "a").len(), 1);
        // in another project it is another cluster
        let mut other = dedicated("a");
        other["projectId"] = json!("proj-2");
        let (_, second) = cp(&fake, "POST", "/v2/clusters/createDedicated", other).await;
        assert_eq!(second["code"], 0, "{second}");
        let path = format!("/v2/clusters/{id}");
        let (_, first) = cp(&fake, "GET", &path, Value::Null).await;
        let d = &first["data"];
        assert_eq!(d["status"], "CREATING", "{first}");
        assert_eq!(d["createProgress"], 50);
        assert_eq!(
            (
                &d["clusterName"],
                &d["projectId"],
                &d["regionId"],
                &d["plan"]
            ),
            (
                &json!("a"),
                &json!("proj-1"),
                &json!("aws-us-west-2"),
                &json!("Standard")
            )
        );
        assert_eq!(
            (&d["cuType"], &d["cuSize"], &d["replica"]),
            (&json!("Performance-optimized"), &json!(2), &json!(1))
        );
        let (_, then) = cp(&fake, "GET", &path, Value::Null).await;
        assert_eq!(then["data"]["status"], "RUNNING", "{then}");
        assert_eq!(then["data"]["connectAddress"], fake.uri());
        let (_, listed) = cp(
            &fake,
            "GET",
            "/v2/clusters?pageSize=1&currentPage=1",
            Value::Null,
        )
        .await;
        assert_eq!(listed["data"]["count"], 2, "{listed}");
        assert_eq!(listed["data"]["currentPage"], 1);
        let entry = &listed["data"]["clusters"][0];
        assert_eq!(entry["clusterId"], json!(id), "{listed}");
        assert_eq!(
            (&entry["clusterName"], &entry["projectId"], &entry["status"]),
            (&json!("a"), &json!("proj-1"), &json!("RUNNING"))
        );
        assert_eq!(
            (&entry["cuSize"], &entry["replica"]),
            (&json!(2), &json!(1))
        );
        let (_, page2) = cp(
            &fake,
            "GET",
            "/v2/clusters?pageSize=1&currentPage=2",
            Value::Null,
        )
        .await;
        assert_eq!(
            page2["data"]["clusters"].as_array().unwrap().len(),
            1,
            "{page2}"
        );
        assert_ne!(page2["data"]["clusters"][0]["clusterId"], json!(id));
        assert_eq!(fake.calls("POST", "/v2/clusters/createDedicated"), 3);
        // a dropped cluster frees its name
        cp(&fake, "DELETE", &format!("{path}/drop"), Value::Null).await;
        cp(&fake, "GET", &path, Value::Null).await;
        cp(&fake, "GET", &path, Value::Null).await;
        assert_eq!(fake.cluster_status(&id).as_deref(), Some("DELETED"));
        let (_, again) = cp(
            &fake,
            "POST",
            "/v2/clusters/createDedicated",
            dedicated("a"),
        )
        .await;
        assert_eq!(again["code"], 0, "{again}");
    }

    #[tokio::test]
    async fn serverless_free_and_v1_creates_and_malformed_creates() {
        let fake = ZillizFake::start("k1").await;
        let small = json!({"clusterName": "s", "projectId": "p", "regionId": "gcp-us-west1"});
        let (_, s) = cp(
            &fake,
            "POST",
            "/v2/clusters/createServerless",
            small.clone(),
        )
        .await;
        let sid = s["data"]["clusterId"].as_str().unwrap().to_string();
        assert_eq!(fake.cluster(&sid).unwrap().plan, "Serverless");
        let mut free = small.clone();
        free["clusterName"] = json!("f");
        let (_, f) = cp(&fake, "POST", "/v2/clusters/createFree", free).await;
        let fid = f["data"]["clusterId"].as_str().unwrap();
        assert_eq!(fake.cluster(fid).unwrap().plan, "Free");
        // v1: one create route, success code 200, the region is the host's
        let v1 = json!({"clusterName": "v", "projectId": "p", "plan": "Enterprise", "cuType": "Capacity-optimized", "cuSize": 64});
        let (_, created) = cp(&fake, "POST", "/v1/clusters/create", v1).await;
        assert_eq!(created["code"], 200, "{created}");
        let vid = created["data"]["clusterId"].as_str().unwrap().to_string();
        let (_, described) = cp(&fake, "GET", &format!("/v1/clusters/{vid}"), Value::Null).await;
        assert_eq!(described["code"], 200);
        assert_eq!(described["data"]["cuSize"], 64);
        let (_, listed) = cp(
            &fake,
            "GET",
            "/v1/clusters?pageSize=10&current=1",
            Value::Null,
        )
        .await;
        assert_eq!(
            (listed["code"].clone(), listed["data"]["count"].clone()),
            (json!(200), json!(3))
        );
        // malformed: no name, a dedicated plan without cuType, too many CUs, a plan on the
        // wrong route; none creates anything
        let mut too_big = dedicated("b");
        too_big["cuSize"] = json!(33);
        let mut no_type = dedicated("b");
        no_type["cuType"] = Value::Null;
        for body in [
            json!({"projectId": "p", "regionId": "r"}),
            no_type,
            too_big,
            small.clone(),
        ] {
            let (_, refused) = cp(&fake, "POST", "/v2/clusters/createDedicated", body).await;
            assert_eq!(refused["code"], CLUSTER_BAD_REQUEST, "{refused}");
        }
        let (st, _) = cp(&fake, "POST", "/v2/clusters/create", small).await;
        assert_eq!(st, 404);
        assert_eq!(fake.state.lock().unwrap().clusters.len(), 3);
        // an unknown key is refused on v1 like on v2
        let answer = reqwest::Client::new()
            .get(format!("{}/v1/clusters", fake.uri()))
            .bearer_auth("nope")
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 401);
    }

    #[tokio::test]
    async fn modify_takes_one_change_only_when_running_and_suspend_resume_cycle() {
        let fake = ZillizFake::start("k1").await;
        fake.add_named_cluster("in01-m", "m", "proj-1");
        let modify = "/v2/clusters/in01-m/modify";
        for body in [
            json!({"cuSize": 2, "replica": 2}),
            json!({}),
            json!({"cuSize": 0}),
        ] {
            let (_, refused) = cp(&fake, "POST", modify, body).await;
            assert_eq!(refused["code"], CLUSTER_BAD_REQUEST, "{refused}");
        }
        assert_eq!(fake.cluster("in01-m").unwrap().status, "RUNNING");
        let (_, accepted) = cp(&fake, "POST", modify, json!({"cuSize": 4})).await;
        assert_eq!(accepted["code"], 0, "{accepted}");
        let c = fake.cluster("in01-m").unwrap();
        assert_eq!((c.status.as_str(), c.cu_size), ("MODIFYING", 4));
        // not RUNNING: refused, nothing changes
        let (_, busy) = cp(&fake, "POST", modify, json!({"replica": 2})).await;
        assert_eq!(busy["code"], CLUSTER_BAD_REQUEST, "{busy}");
        let (_, suspend_busy) = cp(&fake, "POST", "/v2/clusters/in01-m/suspend", json!({})).await;
        assert_eq!(suspend_busy["code"], CLUSTER_BAD_REQUEST);
        let describe = |status: &'static str| {
            let fake = &fake;
            async move {
                let (_, d) = cp(fake, "GET", "/v2/clusters/in01-m", Value::Null).await;
                assert_eq!(d["data"]["status"], status, "{d}");
                d
            }
        };
        describe("MODIFYING").await;
        let d = describe("RUNNING").await;
        assert_eq!(
            (&d["data"]["cuSize"], &d["data"]["replica"]),
            (&json!(4), &json!(1))
        );
        let (_, r) = cp(&fake, "POST", modify, json!({"replica": 2})).await;
        assert_eq!(r["code"], 0);
        describe("MODIFYING").await;
        assert_eq!(describe("RUNNING").await["data"]["replica"], 2);
        // resume only from SUSPENDED
        let (_, early) = cp(&fake, "POST", "/v2/clusters/in01-m/resume", json!({})).await;
        assert_eq!(early["code"], CLUSTER_BAD_REQUEST);
        let (_, s) = cp(&fake, "POST", "/v2/clusters/in01-m/suspend", json!({})).await;
        assert_eq!(s["code"], 0, "{s}");
        describe("SUSPENDING").await;
        describe("SUSPENDED").await;
        let (_, r) = cp(&fake, "POST", "/v2/clusters/in01-m/resume", json!({})).await;
        assert_eq!(r["code"], 0, "{r}");
        describe("RESUMING").await;
        describe("RUNNING").await;
        assert_eq!(fake.calls("POST", modify), 6);
        // serverless clusters can neither be modified nor suspended
        let (_, s) = cp(
            &fake,
            "POST",
            "/v2/clusters/createServerless",
            json!({"clusterName": "s", "projectId": "p", "regionId": "r"}),
        )
        .await;
        let sid = s["data"]["clusterId"].as_str().unwrap().to_string();
        fake.set_cluster_status(&sid, "RUNNING");
        for action in ["modify", "suspend"] {
            let (_, no) = cp(
                &fake,
                "POST",
                &format!("/v2/clusters/{sid}/{action}"),
                json!({"cuSize": 2}),
            )
            .await;
            assert_eq!(no["code"], 80021, "{no}");
        }
        let (_, missing) = cp(&fake, "POST", "/v2/clusters/in01-nope/suspend", json!({})).await;
        assert_eq!(missing["code"], 80020);
    }

    #[tokio::test]
    async fn a_lost_create_answer_still_creates_and_phases_can_last_a_time_and_lists_can_lag() {
        let fake = ZillizFake::start("k1").await;
        fake.fault_next_create(CreateFault::GatewayTimeout);
        // a refused create does not use the fault up
        fake.add_named_cluster("in01-x", "taken", "proj-1");
        let (_, dup) = cp(
            &fake,
            "POST",
            "/v2/clusters/createDedicated",
            dedicated("taken"),
        )
        .await;
        assert_eq!(dup["code"], 80010);
        let (st, page) = cp(
            &fake,
            "POST",
            "/v2/clusters/createDedicated",
            dedicated("a"),
        )
        .await;
        assert_eq!((st, page), (504, Value::Null));
        assert_eq!(fake.clusters_named("proj-1", "a").len(), 1);
        // the answer held back past the client's timeout: the client gives up, the cluster exists
        fake.fault_next_create(CreateFault::Delay(Duration::from_secs(5)));
        let quick = reqwest::Client::builder()
            .timeout(Duration::from_millis(300))
            .build()
            .unwrap();
        let err = quick
            .post(format!("{}/v2/clusters/createDedicated", fake.uri()))
            .bearer_auth("k1")
            .json(&dedicated("b"))
            .send()
            .await
            .unwrap_err();
        assert!(err.is_timeout(), "{err}");
        assert_eq!(fake.clusters_named("proj-1", "b").len(), 1);
        assert_eq!(
            fake.call_log(0).last().unwrap().delay,
            Duration::from_secs(5)
        );
        // CREATING for a time, whatever the describes; a lagging list leaves the new one out
        fake.set_create_phase(PhaseLength::lasting(Duration::from_millis(300)));
        fake.set_list_lag(2);
        let (_, c) = cp(
            &fake,
            "POST",
            "/v2/clusters/createDedicated",
            dedicated("c"),
        )
        .await;
        let id = c["data"]["clusterId"].as_str().unwrap().to_string();
        let path = format!("/v2/clusters/{id}");
        for _ in 0..3 {
            let (_, d) = cp(&fake, "GET", &path, Value::Null).await;
            assert_eq!(d["data"]["status"], "CREATING", "{d}");
        }
        let listed_ids = |v: &Value| -> Vec<String> {
            v["data"]["clusters"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["clusterId"].as_str().unwrap().to_string())
                .collect()
        };
        for _ in 0..2 {
            let (_, l) = cp(&fake, "GET", "/v2/clusters", Value::Null).await;
            assert!(!listed_ids(&l).contains(&id), "{l}");
            assert_eq!(l["data"]["count"], 3);
        }
        let (_, l) = cp(&fake, "GET", "/v2/clusters", Value::Null).await;
        assert!(listed_ids(&l).contains(&id), "{l}");
        tokio::time::sleep(Duration::from_millis(350)).await;
        let (_, d) = cp(&fake, "GET", &path, Value::Null).await;
        assert_eq!(d["data"]["status"], "RUNNING", "{d}");
    }

    /// `POST /v2/vectordb/{path}` with the accepted token; the answer's JSON body.
    async fn v2(fake: &ZillizFake, path: &str, body: Value) -> Value {
        let answer = reqwest::Client::new()
            .post(format!("{}/v2/vectordb/{path}", fake.uri()))
            .bearer_auth("k1")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200, "{path}");
        answer.json().await.unwrap()
    }

    fn field(name: &str, id: i64, ty: &str, primary: bool, params: Value) -> Value {
        json!({
            "name": name, "id": id, "type": ty, "primaryKey": primary, "partitionKey": false,
            "clusteringKey": false, "autoId": false, "description": "", "nullable": false,
            "params": params,
        })
    }

    fn empty_ok() -> Value {
        json!({"code": 0, "data": {}})
    }

    #[tokio::test]
    async fn quick_setup_indexes_loads_describes_and_is_idempotent_by_definition() {
        let fake = ZillizFake::start("k1").await;
        let create = json!({"collectionName": "docs", "dimension": 8});
        assert_eq!(
            v2(&fake, "collections/create", create.clone()).await,
            empty_ok()
        );
        let described = json!({
            "code": 0,
            "data": {
                "collectionName": "docs",
                "collectionID": 450_000_000_000_000_001_i64,
                "description": "",
                "autoId": false,
                "fields": [
                    field("id", 100, "Int64", true, json!([])),
                    field("vector", 101, "FloatVector", false, json!([{"key": "dim", "value": "8"}])),
                ],
                "functions": [],
                "aliases": [],
                "indexes": [{"indexName": "vector", "fieldName": "vector", "metricType": "COSINE"}],
                "load": "LoadStateLoaded",
                "shardsNum": 1,
                "partitionsNum": 1,
                "consistencyLevel": "Bounded",
                "enableDynamicField": true,
                "properties": [],
            },
            "message": "",
        });
        let describe = json!({"collectionName": "docs"});
        assert_eq!(
            v2(&fake, "collections/describe", describe.clone()).await,
            described
        );
        assert_eq!(
            v2(&fake, "collections/get_load_state", describe.clone()).await,
            json!({"code": 0, "data": {"loadState": "LoadStateLoaded", "loadProgress": 100}, "message": ""})
        );
        assert_eq!(
            v2(&fake, "indexes/list", describe.clone()).await,
            json!({"code": 0, "data": ["vector"]})
        );
        assert_eq!(
            v2(
                &fake,
                "indexes/describe",
                json!({"collectionName": "docs", "indexName": "vector"})
            )
            .await,
            json!({"code": 0, "data": [{
                "indexName": "vector", "fieldName": "vector", "indexType": "AUTOINDEX",
                "metricType": "COSINE", "totalRows": 0, "pendingRows": 0, "indexedRows": 0,
                "indexState": "Finished", "failReason": "",
            }]})
        );
        // the same create again: success, and nothing changes (a released collection is loaded
        // again, as the handler's load step runs again)
        fake.release_collection("default", "docs");
        assert_eq!(
            v2(&fake, "collections/create", create.clone()).await,
            empty_ok()
        );
        assert_eq!(
            v2(&fake, "collections/describe", describe.clone()).await,
            described
        );
        // another definition under the same name
        assert_eq!(
            v2(
                &fake,
                "collections/create",
                json!({"collectionName": "docs", "dimension": 16})
            )
            .await,
            json!({"code": 65535, "message": "create duplicate collection with different parameters, collection: docs"})
        );
        // the same collection with another metric: the collection is equal, its index is not
        assert_eq!(
            v2(
                &fake,
                "collections/create",
                json!({"collectionName": "docs", "dimension": 8, "metricType": "L2"})
            )
            .await,
            json!({"code": 65535, "message": "CreateIndex failed: at most one distinct index is allowed per field"})
        );
        assert_eq!(v2(&fake, "collections/describe", describe).await, described);
        // no dimension, an unknown database: refused, nothing created
        assert_eq!(
            v2(
                &fake,
                "collections/create",
                json!({"collectionName": "other"})
            )
            .await,
            json!({"code": 1100, "message": "dimension is required for quickly create collection(default metric type: COSINE): invalid parameter[expected=collectionName & dimension][actual=collectionName]"})
        );
        assert_eq!(
            v2(
                &fake,
                "collections/create",
                json!({"dbName": "nodb", "collectionName": "other", "dimension": 8})
            )
            .await,
            json!({"code": 800, "message": "database not found[database=nodb]"})
        );
        assert!(!fake.has_collection("default", "other"));
        assert!(!fake.has_collection("nodb", "other"));
        fake.add_database("nodb");
        let create_in_db = json!({"dbName": "nodb", "collectionName": "other", "dimension": 8, "idType": "VarChar", "autoID": true, "primaryFieldName": "key", "vectorFieldName": "emb", "metricType": "IP", "params": {"max_length": 32}});
        assert_eq!(
            v2(&fake, "collections/create", create_in_db).await,
            empty_ok()
        );
        let state = fake.collection_state("nodb", "other").unwrap();
        assert!(state.loaded);
        assert_eq!(
            state.definition.fields,
            [
                FakeField {
                    auto_id: true,
                    ..FakeField::new("key", "VarChar")
                        .primary()
                        .param("max_length", "32")
                },
                FakeField::new("emb", "FloatVector").param("dim", "8"),
            ]
        );
        assert_eq!(state.indexes["emb"].metric_type, "IP");
        assert_eq!(fake.calls("POST", "/v2/vectordb/collections/create"), 7);
    }

    #[tokio::test]
    async fn custom_schema_without_index_params_is_not_indexed_nor_loaded_until_asked() {
        let fake = ZillizFake::start("k1").await;
        let create = json!({
            "collectionName": "articles",
            "schema": {"autoID": true, "enableDynamicField": false, "fields": [
                {"fieldName": "pk", "dataType": "VarChar", "isPrimary": true, "elementTypeParams": {"max_length": 64}},
                {"fieldName": "emb", "dataType": "FloatVector", "elementTypeParams": {"dim": "4"}},
                {"fieldName": "year", "dataType": "Int64"},
            ]},
            "params": {"shardsNum": 2, "consistencyLevel": "Strong", "ttlSeconds": 3600},
        });
        assert_eq!(
            v2(&fake, "collections/create", create.clone()).await,
            empty_ok()
        );
        let name = json!({"collectionName": "articles"});
        let mut pk = field(
            "pk",
            100,
            "VarChar",
            true,
            json!([{"key": "max_length", "value": "64"}]),
        );
        pk["autoId"] = json!(true);
        assert_eq!(
            v2(&fake, "collections/describe", name.clone()).await,
            json!({
                "code": 0,
                "data": {
                    "collectionName": "articles",
                    "collectionID": 450_000_000_000_000_001_i64,
                    "description": "",
                    "autoId": true,
                    "fields": [
                        pk,
                        field("emb", 101, "FloatVector", false, json!([{"key": "dim", "value": "4"}])),
                        field("year", 102, "Int64", false, json!([])),
                    ],
                    "functions": [],
                    "aliases": [],
                    "indexes": [],
                    "load": "LoadStateNotLoad",
                    "shardsNum": 2,
                    "partitionsNum": 1,
                    "consistencyLevel": "Strong",
                    "enableDynamicField": false,
                    "properties": [{"key": "collection.ttl.seconds", "value": "3600"}],
                },
                "message": "index not found[indexName=];",
            })
        );
        assert_eq!(
            v2(&fake, "collections/get_load_state", name.clone()).await,
            json!({"code": 0, "data": {"loadState": "LoadStateNotLoad"}})
        );
        assert_eq!(
            v2(&fake, "indexes/list", name.clone()).await,
            json!({"code": 0, "data": []})
        );
        assert_eq!(
            v2(&fake, "collections/load", name.clone()).await,
            json!({"code": 700, "message": "index not found[collection=articles]"})
        );
        let index = |params: Value| json!({"collectionName": "articles", "indexParams": params});
        assert_eq!(
            v2(
                &fake,
                "indexes/create",
                index(
                    json!([{"fieldName": "year", "indexName": "year_idx", "indexType": "STL_SORT"}])
                )
            )
            .await,
            empty_ok()
        );
        assert_eq!(
            v2(&fake, "collections/load", name.clone()).await,
            json!({"code": 65535, "message": "there is no vector index on field: [emb], please create index firstly"})
        );
        assert_eq!(
            v2(
                &fake,
                "indexes/create",
                index(json!([{"fieldName": "nope", "indexName": "n"}]))
            )
            .await,
            json!({"code": 1802, "message": "missing required parameters, error: `nope` hasn't defined in schema"})
        );
        let hnsw = json!([{"fieldName": "emb", "indexName": "emb_idx", "metricType": "L2", "indexType": "HNSW", "params": {"M": 16, "efConstruction": 200}}]);
        assert_eq!(
            v2(&fake, "indexes/create", index(hnsw.clone())).await,
            empty_ok()
        );
        // the identical index again is a no-op; any other one on the field is refused
        assert_eq!(v2(&fake, "indexes/create", index(hnsw)).await, empty_ok());
        let distinct = json!({"code": 65535, "message": "CreateIndex failed: at most one distinct index is allowed per field"});
        for other in [
            json!([{"fieldName": "emb", "indexName": "emb_idx", "metricType": "IP", "indexType": "HNSW", "params": {"M": 16, "efConstruction": 200}}]),
            json!([{"fieldName": "emb", "indexName": "emb_idx", "metricType": "L2", "indexType": "HNSW", "params": {"M": 8, "efConstruction": 200}}]),
            json!([{"fieldName": "emb", "indexName": "second", "metricType": "L2", "indexType": "HNSW", "params": {"M": 16, "efConstruction": 200}}]),
        ] {
            assert_eq!(v2(&fake, "indexes/create", index(other)).await, distinct);
        }
        assert_eq!(
            v2(&fake, "indexes/create", name.clone()).await["code"],
            1802
        );
        assert_eq!(
            v2(
                &fake,
                "indexes/describe",
                json!({"collectionName": "articles", "indexName": "emb_idx"})
            )
            .await,
            json!({"code": 0, "data": [{
                "indexName": "emb_idx", "fieldName": "emb", "indexType": "HNSW", "metricType": "L2",
                "totalRows": 0, "pendingRows": 0, "indexedRows": 0, "indexState": "Finished",
                "failReason": "",
            }]})
        );
        assert_eq!(
            v2(
                &fake,
                "indexes/list",
                json!({"collectionName": "articles", "fieldName": "emb"})
            )
            .await,
            json!({"code": 0, "data": ["emb_idx"]})
        );
        assert_eq!(
            v2(&fake, "collections/load", name.clone()).await,
            empty_ok()
        );
        assert_eq!(
            v2(&fake, "collections/get_load_state", name.clone()).await["data"]["loadState"],
            "LoadStateLoaded"
        );
        let described = v2(&fake, "collections/describe", name.clone()).await;
        assert_eq!(
            described["data"]["indexes"],
            json!([{"indexName": "emb_idx", "fieldName": "emb", "metricType": "L2"}])
        );
        assert_eq!(described["message"], "");
        let state = fake.collection_state("default", "articles").unwrap();
        assert!(state.loaded);
        assert_eq!(
            state.indexes.keys().collect::<Vec<_>>(),
            ["emb_idx", "year_idx"]
        );
        assert_eq!(state.indexes["emb_idx"].params["M"], "16");
        // created without indexParams, the same create again succeeds
        assert_eq!(v2(&fake, "collections/create", create).await, empty_ok());
        // the index drop route sees the created indexes
        fake.release_collection("default", "articles");
        let drop = json!({"collectionName": "articles", "indexName": "year_idx"});
        assert_eq!(v2(&fake, "indexes/drop", drop).await, empty_ok());
        assert!(!fake.has_index("default", "articles", "year_idx"));
        assert!(fake.has_index("default", "articles", "emb_idx"));
    }

    #[tokio::test]
    async fn create_is_not_atomic_an_unknown_index_field_leaves_the_collection_unloaded() {
        let fake = ZillizFake::start("k1").await;
        let schema = json!({"fields": [
            {"fieldName": "id", "dataType": "Int64", "isPrimary": true},
            {"fieldName": "vector", "dataType": "FloatVector", "elementTypeParams": {"dim": 4}},
        ]});
        let with = |index_params: Value| json!({"collectionName": "c", "schema": schema, "indexParams": index_params});
        let v = json!({"fieldName": "vector", "indexName": "v", "metricType": "L2"});
        assert_eq!(
            v2(
                &fake,
                "collections/create",
                with(json!([v, {"fieldName": "nope", "indexName": "n"}]))
            )
            .await,
            json!({"code": 1802, "message": "missing required parameters, error: `nope` hasn't defined in schema"})
        );
        let state = fake.collection_state("default", "c").unwrap();
        assert!(!state.loaded);
        assert_eq!(state.indexes.keys().collect::<Vec<_>>(), ["v"]);
        // the same schema with good index params: the collection is equal, the index identical,
        // and the load step runs
        assert_eq!(
            v2(&fake, "collections/create", with(json!([v]))).await,
            empty_ok()
        );
        let state = fake.collection_state("default", "c").unwrap();
        assert!(state.loaded);
        assert_eq!(state.indexes.keys().collect::<Vec<_>>(), ["v"]);
    }

    #[tokio::test]
    async fn invalid_schemas_are_refused_like_the_server_and_create_nothing() {
        let fake = ZillizFake::start("k1").await;
        let vector =
            json!({"fieldName": "v", "dataType": "FloatVector", "elementTypeParams": {"dim": 4}});
        let id = json!({"fieldName": "id", "dataType": "Int64", "isPrimary": true});
        let cases = [
            (
                json!([{"fieldName": "id", "dataType": "int64", "isPrimary": true}, vector]),
                json!({}),
                "invalid parameter, data type int64 is invalid(case sensitive).",
            ),
            (
                json!([{"fieldName": "id", "dataType": "Int64"}, vector]),
                json!({}),
                "primary key is not specified: invalid parameter",
            ),
            (
                json!([id, {"fieldName": "id2", "dataType": "Int64", "isPrimary": true}, vector]),
                json!({}),
                "there are more than one primary key, field name = id, id2: invalid parameter",
            ),
            (
                json!([id, {"fieldName": "v", "dataType": "FloatVector"}]),
                json!({}),
                "dimension is not defined in field type params of field v, check type param `dim` for vector field: invalid parameter",
            ),
            (
                json!([id]),
                json!({}),
                "schema does not contain vector field: invalid parameter",
            ),
            (
                json!([id, vector]),
                json!({"consistencyLevel": "Weak"}),
                "consistencyLevel can only be [Strong, Session, Bounded, Eventually, Customized], default: Bounded: invalid parameter[expected=Strong, Session, Bounded, Eventually, Customized][actual=Weak]",
            ),
        ];
        for (fields, params, message) in cases {
            let body =
                json!({"collectionName": "c", "schema": {"fields": fields}, "params": params});
            assert_eq!(
                v2(&fake, "collections/create", body).await,
                json!({"code": 1100, "message": message})
            );
            assert!(!fake.has_collection("default", "c"), "{message}");
        }
        // a missing collection: 100 from every route that needs one
        let missing =
            json!({"code": 100, "message": "collection not found[database=default][collection=c]"});
        for path in [
            "collections/describe",
            "collections/get_load_state",
            "collections/load",
            "collections/alter_properties",
            "partitions/create",
            "partitions/list",
            "indexes/create",
            "indexes/list",
        ] {
            let body = json!({"collectionName": "c", "partitionName": "p", "indexParams": [{"fieldName": "v"}]});
            assert_eq!(v2(&fake, path, body).await, missing, "{path}");
        }
    }

    #[tokio::test]
    async fn altered_properties_and_partitions_are_described_and_make_a_repeated_create_differ() {
        let fake = ZillizFake::start("k1").await;
        let create = json!({"collectionName": "c", "dimension": 4, "params": {"ttlSeconds": 60}});
        assert_eq!(
            v2(&fake, "collections/create", create.clone()).await,
            empty_ok()
        );
        assert_eq!(
            v2(&fake, "collections/create", create.clone()).await,
            empty_ok()
        );
        let alter = json!({"collectionName": "c", "properties": {"collection.ttl.seconds": 120, "mmap.enabled": true}});
        assert_eq!(
            v2(&fake, "collections/alter_properties", alter).await,
            empty_ok()
        );
        let name = json!({"collectionName": "c"});
        assert_eq!(
            v2(&fake, "collections/describe", name.clone()).await["data"]["properties"],
            json!([{"key": "collection.ttl.seconds", "value": "120"}, {"key": "mmap.enabled", "value": "true"}])
        );
        let state = fake.collection_state("default", "c").unwrap();
        assert_eq!(state.definition.properties["collection.ttl.seconds"], "120");
        let differ = json!({"code": 65535, "message": "create duplicate collection with different parameters, collection: c"});
        assert_eq!(v2(&fake, "collections/create", create).await, differ);

        let create = json!({"collectionName": "d", "dimension": 8});
        assert_eq!(
            v2(&fake, "collections/create", create.clone()).await,
            empty_ok()
        );
        let partition = json!({"collectionName": "d", "partitionName": "p1"});
        for _ in 0..2 {
            assert_eq!(
                v2(&fake, "partitions/create", partition.clone()).await,
                empty_ok()
            );
        }
        assert_eq!(
            v2(&fake, "partitions/list", json!({"collectionName": "d"})).await,
            json!({"code": 0, "data": ["_default", "p1"]})
        );
        assert_eq!(
            v2(&fake, "partitions/has", partition.clone()).await,
            json!({"code": 0, "data": {"has": true}})
        );
        assert_eq!(
            v2(
                &fake,
                "collections/describe",
                json!({"collectionName": "d"})
            )
            .await["data"]["partitionsNum"],
            2
        );
        // created in a loaded collection, the partition is loaded with it
        assert_eq!(v2(&fake, "partitions/drop", partition).await["code"], 65535);
        assert_eq!(
            fake.collection_state("default", "d").unwrap().partitions,
            ["p1"]
        );
        assert_eq!(
            v2(&fake, "collections/create", create).await["message"],
            "create duplicate collection with different parameters, collection: d"
        );
        // a dropped collection is forgotten: the name takes a new definition
        assert_eq!(
            v2(&fake, "collections/drop", json!({"collectionName": "d"})).await,
            empty_ok()
        );
        assert!(fake.collection_state("default", "d").is_none());
        fake.add_collection("default", "d", false);
        let state = fake.collection_state("default", "d").unwrap();
        assert_eq!(state.definition, FakeCollection::default());
        assert!(state.indexes.is_empty() && state.partitions.is_empty());
        assert_eq!(
            v2(&fake, "collections/drop", json!({"collectionName": "d"})).await,
            empty_ok()
        );
        let create = json!({"collectionName": "d", "dimension": 32});
        assert_eq!(v2(&fake, "collections/create", create).await, empty_ok());
        assert!(
            fake.collection_state("default", "d")
                .unwrap()
                .partitions
                .is_empty()
        );
    }

    #[tokio::test]
    async fn a_partition_key_collection_has_server_made_partitions() {
        let fake = ZillizFake::start("k1").await;
        let create = json!({
            "collectionName": "k",
            "schema": {"fields": [
                {"fieldName": "id", "dataType": "Int64", "isPrimary": true},
                {"fieldName": "tenant", "dataType": "VarChar", "isPartitionKey": true, "elementTypeParams": {"max_length": 16}},
                {"fieldName": "v", "dataType": "FloatVector", "elementTypeParams": {"dim": 4}},
            ]},
            "indexParams": [{"fieldName": "v", "indexName": "v"}],
            "params": {"partitionsNum": 3},
        });
        assert_eq!(v2(&fake, "collections/create", create).await, empty_ok());
        let name = json!({"collectionName": "k"});
        let described = v2(&fake, "collections/describe", name.clone()).await;
        assert_eq!(described["data"]["partitionsNum"], 3);
        assert_eq!(described["data"]["fields"][1]["partitionKey"], true);
        assert_eq!(described["data"]["indexes"][0]["metricType"], "COSINE");
        assert_eq!(described["data"]["load"], "LoadStateLoaded");
        assert_eq!(
            v2(&fake, "partitions/list", name).await,
            json!({"code": 0, "data": ["_default_0", "_default_1", "_default_2"]})
        );
        assert_eq!(
            v2(
                &fake,
                "partitions/create",
                json!({"collectionName": "k", "partitionName": "p"})
            )
            .await,
            json!({"code": 65535, "message": "disable create partition if partition key mode is used"})
        );
    }

    #[tokio::test]
    async fn an_index_build_can_take_describes_and_answers_can_be_scripted() {
        let fake = ZillizFake::start("k1").await;
        fake.set_index_build_describes(2);
        let busy = json!({"code": 1807, "message": "request is rejected by grpc RateLimiter middleware, please retry later: rate limit exceeded[rate=0.1]"});
        fake.answer_next(
            "POST",
            "/v2/vectordb/collections/create",
            1,
            200,
            busy.clone(),
        );
        let create = json!({"collectionName": "c", "dimension": 4});
        assert_eq!(v2(&fake, "collections/create", create.clone()).await, busy);
        assert!(!fake.has_collection("default", "c"));
        assert_eq!(v2(&fake, "collections/create", create).await, empty_ok());
        let describe = json!({"collectionName": "c", "indexName": "vector"});
        let mut states = Vec::new();
        for _ in 0..3 {
            let answer = v2(&fake, "indexes/describe", describe.clone()).await;
            states.push(
                answer["data"][0]["indexState"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            );
        }
        assert_eq!(states, ["InProgress", "InProgress", "Finished"]);
        assert_eq!(fake.calls("POST", "/v2/vectordb/indexes/describe"), 3);
    }

    #[tokio::test]
    async fn added_collections_describe_as_the_default_and_can_be_set_up_directly() {
        let fake = ZillizFake::start("k1").await;
        fake.add_collection("tenant1", "plain", true);
        fake.add_index("tenant1", "plain", "vidx");
        let described = v2(
            &fake,
            "collections/describe",
            json!({"dbName": "tenant1", "collectionName": "plain"}),
        )
        .await;
        assert_eq!(
            described["data"]["fields"][1]["params"],
            json!([{"key": "dim", "value": "4"}])
        );
        assert_eq!(
            described["data"]["indexes"],
            json!([{"indexName": "vidx", "fieldName": "vector", "metricType": "L2"}])
        );
        assert_eq!(described["data"]["load"], "LoadStateLoaded");
        // the database of an added collection exists
        let create = json!({"dbName": "tenant1", "collectionName": "more", "dimension": 4});
        assert_eq!(v2(&fake, "collections/create", create).await, empty_ok());
        // set up without a call
        let body = json!({"collectionName": "seeded", "schema": {"fields": [
            {"fieldName": "id", "dataType": "Int64", "isPrimary": true},
            {"fieldName": "v", "dataType": "BinaryVector", "elementTypeParams": {"dim": 16}},
        ]}, "indexParams": [{"fieldName": "v", "indexName": "v"}]});
        let calls = fake.total_calls();
        assert_eq!(fake.create_collection(body), empty_ok());
        assert_eq!(fake.total_calls(), calls);
        let state = fake.collection_state("default", "seeded").unwrap();
        assert!(state.loaded);
        assert_eq!(state.indexes["v"].metric_type, "HAMMING");
        assert!(fake.collection_state("default", "nothing").is_none());
    }
}
