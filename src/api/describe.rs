//! What a describe of a collection or an index says, parsed from the server's `data`
//! (`docs/zilliz-api.md`, "Creating and describing"). Pure: the I/O is in [`super::DataPlane`].
//!
//! Parsing is lenient where the servers differ (v1 prints `FloatVector(768)`, v2 gives
//! `params: [{key: dim, value: "768"}]`; load states come as `Loaded` or `LoadStateLoaded`), and
//! strict where a wrong reading would mislead: an answer without `fields` is an error, never an
//! empty schema.

use super::{ApiError, ErrorClass};
use serde_json::Value;

/// A collection's load state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoadState {
    NotLoad,
    Loading,
    Loaded,
    /// Any other word (kept as it came).
    Other(String),
}

impl LoadState {
    pub fn parse(raw: &str) -> Self {
        match raw.trim().trim_start_matches("LoadState") {
            "NotLoad" | "NotExist" | "Released" => LoadState::NotLoad,
            "Loading" => LoadState::Loading,
            "Loaded" => LoadState::Loaded,
            other => LoadState::Other(other.to_string()),
        }
    }

    /// As `status.observed.loadState` shows it.
    pub fn as_str(&self) -> &str {
        match self {
            LoadState::NotLoad => "NotLoaded",
            LoadState::Loading => "Loading",
            LoadState::Loaded => "Loaded",
            LoadState::Other(s) => s,
        }
    }
}

/// One field of a collection, as described.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldInfo {
    pub name: String,
    /// The base type, as the CRD spells it: `Int64`, `VarChar`, `FloatVector`, ...
    pub data_type: String,
    pub primary: bool,
    pub partition_key: bool,
    pub dim: Option<i64>,
    pub max_length: Option<i64>,
}

impl FieldInfo {
    pub fn is_vector(&self) -> bool {
        self.data_type.ends_with("Vector")
    }
}

/// What a collection describe says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CollectionInfo {
    pub description: Option<String>,
    pub auto_id: Option<bool>,
    pub enable_dynamic_field: Option<bool>,
    pub fields: Vec<FieldInfo>,
    /// Fields that have an index (v2 lists the first vector field's only; v1 all of them).
    pub indexed_fields: Vec<String>,
    pub load: LoadState,
    pub shards_num: Option<i64>,
    pub consistency_level: Option<String>,
    /// The `collection.ttl.seconds` property, when set.
    pub ttl_seconds: Option<i64>,
}

/// An index's build state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IndexState {
    Finished,
    InProgress,
    Failed,
    /// Any other word, or none (kept as it came).
    Other(String),
}

impl IndexState {
    pub fn parse(raw: &str) -> Self {
        match raw.trim() {
            "Finished" => IndexState::Finished,
            "InProgress" | "Unissued" | "Retry" => IndexState::InProgress,
            "Failed" => IndexState::Failed,
            other => IndexState::Other(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            IndexState::Finished => "Finished",
            IndexState::InProgress => "InProgress",
            IndexState::Failed => "Failed",
            IndexState::Other(s) => s,
        }
    }
}

/// What an index describe says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexInfo {
    pub field_name: String,
    pub index_type: String,
    pub metric_type: String,
    pub state: IndexState,
    pub indexed_rows: i64,
    pub total_rows: i64,
    pub fail_reason: String,
}

fn malformed(what: &str, data: &Value) -> ApiError {
    let full = data.to_string();
    let mut shown: String = full.chars().take(300).collect();
    if shown.len() < full.len() {
        shown.push('…');
    }
    ApiError::new(
        ErrorClass::Unknown,
        format!("the {what} answer is not what the API documents: {shown}"),
    )
}

fn int(v: &Value) -> Option<i64> {
    v.as_i64()
        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
}

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_string)
}

/// `{key, value}` pairs (v2 `params`, `properties`) as a lookup.
fn pair<'a>(pairs: &'a Value, key: &str) -> Option<&'a Value> {
    pairs
        .as_array()?
        .iter()
        .find(|p| p.get("key").and_then(Value::as_str) == Some(key))
        .and_then(|p| p.get("value"))
}

fn field(f: &Value) -> Option<FieldInfo> {
    let name = text(f, "name")?;
    let raw = text(f, "type")?;
    // v1: `FloatVector(768)`, `VarChar(512)`; v2: the base type, parameters apart
    let (data_type, inline) = match raw.split_once('(') {
        Some((base, rest)) => (
            base.to_string(),
            int(&Value::from(rest.trim_end_matches(')'))),
        ),
        None => (raw, None),
    };
    let params = f.get("params").unwrap_or(&Value::Null);
    let is_vector = data_type.ends_with("Vector");
    let dim = pair(params, "dim")
        .and_then(int)
        .or(inline.filter(|_| is_vector));
    let max_length = pair(params, "max_length")
        .and_then(int)
        .or(inline.filter(|_| !is_vector));
    Some(FieldInfo {
        name,
        data_type,
        primary: f.get("primaryKey").and_then(Value::as_bool) == Some(true),
        partition_key: f.get("partitionKey").and_then(Value::as_bool) == Some(true),
        dim,
        max_length,
    })
}

/// Parses a collection describe's `data` (v1 or v2).
pub fn collection_info(data: &Value) -> Result<CollectionInfo, ApiError> {
    let fields = data
        .get("fields")
        .and_then(Value::as_array)
        .ok_or_else(|| malformed("collection describe", data))?
        .iter()
        .map(field)
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| malformed("collection describe", data))?;
    let indexed_fields = data
        .get("indexes")
        .and_then(Value::as_array)
        .map(|ix| ix.iter().filter_map(|i| text(i, "fieldName")).collect())
        .unwrap_or_default();
    let properties = data.get("properties").unwrap_or(&Value::Null);
    Ok(CollectionInfo {
        description: text(data, "description"),
        auto_id: data.get("autoId").and_then(Value::as_bool),
        enable_dynamic_field: data
            .get("enableDynamicField")
            .or_else(|| data.get("enableDynamic"))
            .and_then(Value::as_bool),
        fields,
        indexed_fields,
        load: LoadState::parse(data.get("load").and_then(Value::as_str).unwrap_or("")),
        shards_num: data.get("shardsNum").and_then(int),
        consistency_level: text(data, "consistencyLevel"),
        ttl_seconds: pair(properties, "collection.ttl.seconds").and_then(int),
    })
}

/// Parses an index describe's `data`: a list with the one index.
pub fn index_info(data: &Value) -> Result<IndexInfo, ApiError> {
    let i = data
        .as_array()
        .and_then(|list| list.first())
        .ok_or_else(|| malformed("index describe", data))?;
    Ok(IndexInfo {
        field_name: text(i, "fieldName").unwrap_or_default(),
        index_type: text(i, "indexType").unwrap_or_default(),
        metric_type: text(i, "metricType").unwrap_or_default(),
        state: IndexState::parse(i.get("indexState").and_then(Value::as_str).unwrap_or("")),
        indexed_rows: i.get("indexedRows").and_then(int).unwrap_or_default(),
        total_rows: i.get("totalRows").and_then(int).unwrap_or_default(),
        fail_reason: text(i, "failReason").unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_v2_describe_gives_fields_load_shards_and_ttl() {
        // the shape of the v2 handler's answer (docs/zilliz-api.md)
        let data = json!({"collectionName": "articles", "description": "news", "autoId": false,
            "fields": [
                {"name": "id", "type": "Int64", "primaryKey": true, "partitionKey": false,
                    "autoId": false, "params": []},
                {"name": "title", "type": "VarChar", "primaryKey": false,
                    "params": [{"key": "max_length", "value": "512"}]},
                {"name": "vector", "type": "FloatVector", "primaryKey": false,
                    "params": [{"key": "dim", "value": "768"}]}],
            "indexes": [{"indexName": "vector", "fieldName": "vector", "metricType": "COSINE"}],
            "load": "LoadStateLoaded", "shardsNum": 2, "consistencyLevel": "Bounded",
            "enableDynamicField": true,
            "properties": [{"key": "collection.ttl.seconds", "value": "3600"}]});
        let info = collection_info(&data).unwrap();
        assert_eq!(info.fields.len(), 3);
        assert_eq!(info.fields[1].max_length, Some(512));
        assert_eq!(info.fields[2].dim, Some(768));
        assert!(info.fields[2].is_vector() && info.fields[0].primary);
        assert_eq!(info.load, LoadState::Loaded);
        assert_eq!(info.shards_num, Some(2));
        assert_eq!(info.ttl_seconds, Some(3600));
        assert_eq!(info.indexed_fields, vec!["vector".to_string()]);
        assert_eq!(info.enable_dynamic_field, Some(true));
    }

    #[test]
    fn a_v1_describe_carries_parameters_in_the_type() {
        // Milvus 2.3.5's v1 answer, as the real server gives it
        let data = json!({"collectionName": "books", "description": "",
            "fields": [
                {"name": "id", "type": "Int64", "primaryKey": true, "autoId": true,
                    "description": ""},
                {"name": "vector", "type": "FloatVector(8)", "primaryKey": false,
                    "autoId": false, "description": ""}],
            "indexes": [{"fieldName": "vector", "indexName": "vector_idx", "metricType": "L2"}],
            "load": "LoadStateLoaded", "shardsNum": 1, "enableDynamic": true});
        let info = collection_info(&data).unwrap();
        assert_eq!(info.fields[1].data_type, "FloatVector");
        assert_eq!(info.fields[1].dim, Some(8));
        assert_eq!(info.fields[1].max_length, None);
        assert_eq!(info.load, LoadState::Loaded);
        assert_eq!(info.enable_dynamic_field, Some(true));
        assert_eq!(info.ttl_seconds, None);
    }

    #[test]
    fn an_answer_without_fields_is_an_error_not_an_empty_schema() {
        let e = collection_info(&json!({"collectionName": "x"})).unwrap_err();
        assert_eq!(e.class, ErrorClass::Unknown);
        assert!(index_info(&json!([])).is_err());
    }

    #[test]
    fn load_and_index_states_read_every_spelling() {
        for (raw, want) in [
            ("LoadStateNotLoad", LoadState::NotLoad),
            ("NotLoad", LoadState::NotLoad),
            ("LoadStateLoading", LoadState::Loading),
            ("Loaded", LoadState::Loaded),
        ] {
            assert_eq!(LoadState::parse(raw), want, "{raw}");
        }
        let built = index_info(&json!([{"indexName": "v", "fieldName": "vector",
            "indexType": "HNSW", "metricType": "COSINE", "totalRows": 10, "indexedRows": 4,
            "pendingRows": 6, "indexState": "InProgress", "failReason": ""}]))
        .unwrap();
        assert_eq!(built.state, IndexState::InProgress);
        assert_eq!((built.indexed_rows, built.total_rows), (4, 10));
    }
}
