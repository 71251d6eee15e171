//! Bad input, generated: arbitrary answers and arbitrary specs never panic, and every error is a
//! clear, bounded message.

use proptest::prelude::*;
use serde_json::{Value, json};
use zilliz_operator::{
    api::classify::{Envelope, classify, parse_retry_after},
    crd::{ZillizCollection, ZillizIndex, ZillizPartition},
    kinds::Managed,
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
                // a non-envelope body is quoted only as a short excerpt
                if serde_json::from_slice::<Value>(&body).is_err() {
                    prop_assert!(e.message.chars().count() <= 300, "{}", e.message.len());
                }
            }
        }
    }

    #[test]
    fn arbitrary_envelopes_never_panic(env in envelope(), status in 100u16..600, body in envelope_body()) {
        let result = classify(env, status, None, &body);
        if result.is_ok() {
            prop_assert!((200..300).contains(&status));
        }
        if let Err(e) = result {
            prop_assert!(!e.to_string().is_empty());
        }
    }

    #[test]
    fn retry_after_never_panics(value in ".{0,64}") {
        let _ = parse_retry_after(&value);
    }

    #[test]
    fn arbitrary_specs_give_an_address_or_a_clear_error(
        coll in proptest::option::of(".{0,40}"),
        db in proptest::option::of(".{0,20}"),
        endpoint in proptest::option::of(prop_oneof![".{0,40}", Just("http://m:19530".to_string())]),
        cluster_ref in proptest::option::of("[a-z]{0,10}"),
        collection_ref in proptest::option::of("[a-z]{0,10}"),
        name in ".{0,40}",
    ) {
        let mut addr = serde_json::Map::new();
        if let Some(c) = &coll { addr.insert("collectionName".into(), json!(c)); }
        if let Some(d) = &db { addr.insert("dbName".into(), json!(d)); }
        if let Some(e) = &endpoint {
            addr.insert("connection".into(), json!({"endpoint": e, "credentialsSecretRef": {"name": "s"}}));
        }
        if let Some(r) = &cluster_ref { addr.insert("clusterRef".into(), json!({"name": r})); }
        let mut partition = addr.clone();
        if let Some(r) = &collection_ref { partition.insert("collectionRef".into(), json!({"name": r})); }
        partition.insert("partitionName".into(), json!(name));
        let mut index = partition.clone();
        index.remove("partitionName");
        index.insert("indexName".into(), json!(name));

        let checks: Vec<Result<(), String>> = vec![
            serde_json::from_value::<zilliz_operator::crd::ZillizCollectionSpec>(Value::Object({
                let mut c = addr.clone();
                c.insert("collectionName".into(), json!(coll.clone().unwrap_or_default()));
                if let Some(d) = &db { c.insert("dbName".into(), json!(d)); }
                c
            }))
            .map(|spec| ZillizCollection::new("x", spec).address().map(|_| ()))
            .unwrap_or(Ok(())),
            serde_json::from_value(Value::Object(partition))
                .map(|spec| ZillizPartition::new("x", spec).address().map(|_| ()))
                .unwrap_or(Ok(())),
            serde_json::from_value(Value::Object(index))
                .map(|spec| ZillizIndex::new("x", spec).address().map(|_| ()))
                .unwrap_or(Ok(())),
        ];
        for check in checks {
            if let Err(message) = check {
                prop_assert!(message.len() > 10 && message.len() < 500, "{message}");
            }
        }
    }
}
