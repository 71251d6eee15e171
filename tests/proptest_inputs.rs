//! Bad input, generated: arbitrary answers and arbitrary specs never panic, every answer is read
//! as its envelope says, and every spec gives either its address or an error that names what
//! to fix. Each property compares with an oracle written from the documented rules, so a wrong
//! classification or a missing validation fails here (not only a panic).

use proptest::prelude::*;
use serde_json::{Value, json};
use std::time::Duration;
use url::Url;
use zilliz_operator::{
    api::classify::{Envelope, classify, parse_retry_after},
    crd::{ZillizCollection, ZillizIndex, ZillizPartition},
    kinds::{Address, CollectionSource, Host, Managed},
};

fn envelope() -> impl Strategy<Value = Envelope> {
    prop_oneof![Just(Envelope::V1), Just(Envelope::V2)]
}

/// JSON bodies shaped like the APIs' envelopes, with arbitrary codes, messages and data.
fn envelope_body() -> impl Strategy<Value = Vec<u8>> {
    (
        prop_oneof![
            Just(json!(0)),
            Just(json!(200)),
            any::<i64>().prop_map(|c| json!(c)),
            ".*".prop_map(|s| json!(s)),
            Just(Value::Null),
        ],
        proptest::option::of(".{0,300}"),
        proptest::option::of(prop_oneof![
            Just(json!({})),
            Just(json!({"has": true})),
            Just(json!([1, 2])),
            ".*".prop_map(|s| json!(s)),
        ]),
    )
        .prop_map(|(code, message, data)| {
            let mut m = serde_json::Map::new();
            m.insert("code".into(), code);
            if let Some(msg) = message {
                m.insert("message".into(), json!(msg));
            }
            if let Some(d) = data {
                m.insert("data".into(), d);
            }
            serde_json::to_vec(&Value::Object(m)).unwrap()
        })
}

/// Names that are often empty or blank, sometimes ordinary, sometimes anything.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("  ".to_string()),
        "[a-z_][a-z0-9_]{0,11}",
        ".{0,40}",
    ]
}

/// Endpoints: valid ones, each kind of invalid one, and anything.
fn endpoint() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("http://m:19530".to_string()),
        Just("https://in01-x.api.gcp-us-west1.zillizcloud.com".to_string()),
        Just(" http://m:19530 ".to_string()),
        Just("http://root:Milvus@m:19530".to_string()),
        Just("ftp://m".to_string()),
        Just("m:19530".to_string()),
        Just(String::new()),
        ".{0,40}",
    ]
}

/// The documented endpoint rule: an http(s) URL with a host and no credentials in it.
fn endpoint_is_valid(raw: &str) -> bool {
    Url::parse(raw.trim()).is_ok_and(|u| {
        matches!(u.scheme(), "http" | "https")
            && u.host_str().is_some()
            && u.username().is_empty()
            && u.password().is_none()
    })
}

fn blank(s: &str) -> bool {
    s.trim().is_empty()
}

/// What is wrong with the part of a spec that names the host (clusterRef / connection): the
/// words a message about it must contain (any one of them).
fn host_problem(cluster_ref: bool, endpoint: Option<&str>) -> Option<&'static [&'static str]> {
    match (cluster_ref, endpoint) {
        (true, Some(_)) | (false, None) => Some(&["clusterRef", "connection"]),
        (false, Some(e)) if !endpoint_is_valid(e) => Some(&["connection.endpoint"]),
        _ => None,
    }
}

/// `Ok` exactly when the oracle finds no problem; an error names one of the problems' fields
/// and is a readable size.
fn check_validation<T: std::fmt::Debug>(
    what: &str,
    result: &Result<T, String>,
    problems: &[&[&str]],
) -> Result<(), TestCaseError> {
    match result {
        Ok(addr) => prop_assert!(
            problems.is_empty(),
            "{what}: expected an error about {problems:?}, got {addr:?}"
        ),
        Err(message) => {
            prop_assert!(!problems.is_empty(), "{what}: valid, refused: {message}");
            prop_assert!(
                problems
                    .iter()
                    .flat_map(|p| p.iter())
                    .any(|f| message.contains(f)),
                "{what}: the message names none of {problems:?}: {message}"
            );
            prop_assert!(
                message.len() > 10 && message.len() < 500,
                "{what}: {message}"
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic_and_are_never_success_unless_an_envelope_says_so(
        env in envelope(),
        status in 100u16..600,
        body in proptest::collection::vec(any::<u8>(), 0..4096),
    ) {
        match classify(env, status, None, &body) {
            Ok(_) => {
                // success needs a JSON envelope with the success code, on a 2xx
                let v: Value = serde_json::from_slice(&body).expect("success from a JSON body");
                prop_assert!((200..300).contains(&status));
                prop_assert!(v["code"] == json!(0) || v["code"] == json!(200));
            }
            Err(e) => {
                prop_assert_eq!(e.http_status, Some(status));
                // a non-envelope body is quoted only as a short excerpt
                if serde_json::from_slice::<Value>(&body).is_err() {
                    prop_assert_eq!(e.code, None);
                    prop_assert!(e.message.chars().count() <= 300, "{}", e.message.len());
                }
            }
        }
    }

    /// The envelope is the truth: success exactly for the flavour's success code on a 2xx (with
    /// the envelope's data), otherwise an error that keeps the status, the code and the
    /// server's message as they came.
    #[test]
    fn envelopes_are_read_as_they_say(env in envelope(), status in 100u16..600, body in envelope_body()) {
        let v: Value = serde_json::from_slice(&body).unwrap();
        let code = v["code"].as_i64();
        let message = v.get("message").and_then(Value::as_str).unwrap_or("");
        let data = v.get("data");
        let success_code = code.is_some_and(|c| match env {
            Envelope::V1 => c == 200,
            Envelope::V2 => c == 0 || (c == 200 && data.is_some() && message.is_empty()),
        });
        let success = success_code && (200..300).contains(&status);
        match classify(env, status, None, &body) {
            Ok(got) => {
                prop_assert!(success, "HTTP {} {} read as success", status, v);
                prop_assert_eq!(&got, data.unwrap_or(&Value::Null));
            }
            Err(e) => {
                prop_assert!(!success, "a success envelope on HTTP {} refused: {:?}", status, e);
                prop_assert_eq!(e.http_status, Some(status));
                prop_assert_eq!(e.code, code);
                if code.is_some() && !message.is_empty() {
                    prop_assert_eq!(e.message.as_str(), message);
                }
                prop_assert!(!e.message.is_empty());
            }
        }
    }

    #[test]
    fn retry_after_seconds_are_read_exactly(secs in any::<u64>(), pad in "[ \t]{0,2}") {
        prop_assert_eq!(
            parse_retry_after(&format!("{pad}{secs}{pad}")),
            Some(Duration::from_secs(secs))
        );
    }

    /// Arbitrary text gives a delay only when it holds a number (seconds, or a date).
    #[test]
    fn retry_after_text_is_a_number_a_date_or_nothing(value in ".{0,64}") {
        if let Some(d) = parse_retry_after(&value) {
            prop_assert!(value.chars().any(|c| c.is_ascii_digit()), "{:?} gave {:?}", value, d);
        }
    }

    #[test]
    fn arbitrary_specs_give_an_address_or_an_error_naming_the_field(
        coll in proptest::option::of(name()),
        db in proptest::option::of(name()),
        endpoint in proptest::option::of(endpoint()),
        cluster_ref in proptest::option::of("[a-z]{0,10}"),
        collection_ref in proptest::option::of(name()),
        resource in name(),
    ) {
        let mut addr = serde_json::Map::new();
        if let Some(c) = &coll { addr.insert("collectionName".into(), json!(c)); }
        if let Some(d) = &db { addr.insert("dbName".into(), json!(d)); }
        if let Some(e) = &endpoint {
            addr.insert("connection".into(), json!({"endpoint": e, "credentialsSecretRef": {"name": "s"}}));
        }
        if let Some(r) = &cluster_ref { addr.insert("clusterRef".into(), json!({"name": r})); }
        let host = host_problem(cluster_ref.is_some(), endpoint.as_deref());

        // ZillizCollection: collectionName always there, dbName defaults to `default`
        let mut spec = addr.clone();
        spec.insert("collectionName".into(), json!(coll.clone().unwrap_or_default()));
        let collection = ZillizCollection::new(
            "x",
            serde_json::from_value(Value::Object(spec)).expect("a collection spec deserializes"),
        );
        let mut problems: Vec<&[&str]> = Vec::new();
        if blank(coll.as_deref().unwrap_or_default()) { problems.push(&["collectionName"]); }
        if db.as_deref().is_some_and(blank) { problems.push(&["dbName"]); }
        problems.extend(host);
        let result = collection.address();
        check_validation("collection", &result, &problems)?;
        if let Ok(Address::Collection(loc)) = &result {
            prop_assert_eq!(&loc.collection, coll.as_ref().unwrap());
            prop_assert_eq!(loc.db.as_str(), db.as_deref().unwrap_or("default"));
            match (&loc.host, &cluster_ref) {
                (Host::ClusterRef(r), Some(want)) => prop_assert_eq!(r, want),
                (Host::Connection { endpoint: e, .. }, None) => prop_assert!(e.host_str().is_some()),
                (h, r) => prop_assert!(false, "host {:?} for clusterRef {:?}", h, r),
            }
        } else if result.is_ok() {
            prop_assert!(false, "a collection gave {:?}", result);
        }

        // ZillizPartition and ZillizIndex: collectionRef alone, or collectionName + one host
        let mut source: Vec<&[&str]> = Vec::new();
        if let Some(r) = &collection_ref {
            addr.insert("collectionRef".into(), json!({"name": r}));
            if coll.is_some() || db.is_some() || cluster_ref.is_some() || endpoint.is_some() {
                source.push(&["collectionRef"]);
            } else if blank(r) {
                source.push(&["collectionRef.name"]);
            }
        } else {
            match &coll {
                None => source.push(&["collectionRef", "collectionName"]),
                Some(c) if blank(c) => source.push(&["collectionName"]),
                Some(_) => {}
            }
            if db.as_deref().is_some_and(blank) { source.push(&["dbName"]); }
            source.extend(host);
        }
        for (kind, field) in [("partition", "partitionName"), ("index", "indexName")] {
            let mut spec = addr.clone();
            spec.insert(field.into(), json!(resource));
            let mut problems = source.clone();
            if blank(&resource) { problems.push(match kind { "partition" => &["partitionName"], _ => &["indexName"] }); }
            let result = match kind {
                "partition" => ZillizPartition::new(
                    "x",
                    serde_json::from_value(Value::Object(spec)).expect("a partition spec deserializes"),
                ).address(),
                _ => ZillizIndex::new(
                    "x",
                    serde_json::from_value(Value::Object(spec)).expect("an index spec deserializes"),
                ).address(),
            };
            check_validation(kind, &result, &problems)?;
            let source_of = |a: &Address| match a {
                Address::Partition { collection, partition } => Some((collection.clone(), partition.clone())),
                Address::Index { collection, index, .. } => Some((collection.clone(), index.clone())),
                _ => None,
            };
            if let Ok(a) = &result {
                let (collection, name) = source_of(a).expect("a partition or index address");
                prop_assert_eq!(&name, &resource);
                match (collection, &collection_ref) {
                    (CollectionSource::Object(o), Some(r)) => prop_assert_eq!(&o, r),
                    (CollectionSource::Direct(loc), None) => prop_assert_eq!(&loc.collection, coll.as_ref().unwrap()),
                    (s, r) => prop_assert!(false, "source {:?} for collectionRef {:?}", s, r),
                }
            }
        }
    }
}
