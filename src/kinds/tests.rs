//! Validation of specs: what each kind's spec addresses.

use super::*;
use crate::crd::*;

fn collection(spec: serde_json::Value) -> ZillizCollection {
    ZillizCollection::new("c", serde_json::from_value(spec).unwrap())
}

#[test]
fn collection_needs_exactly_one_host() {
    let neither = collection(serde_json::json!({"collectionName": "c"}));
    assert!(neither.address().unwrap_err().contains("neither"));
    let both = collection(serde_json::json!({
        "collectionName": "c",
        "clusterRef": {"name": "x"},
        "connection": {"endpoint": "http://m:19530", "credentialsSecretRef": {"name": "s"}}
    }));
    assert!(both.address().unwrap_err().contains("both"));
    let ok = collection(serde_json::json!({
        "collectionName": "c",
        "connection": {"endpoint": "http://m:19530", "credentialsSecretRef": {"name": "s"}}
    }));
    let Address::Collection(loc) = ok.address().unwrap() else {
        panic!()
    };
    assert_eq!(loc.db, "default");
    assert_eq!(loc.flavour, Flavour::V2);
    assert_eq!(
        loc.host,
        Host::Connection {
            endpoint: Url::parse("http://m:19530").unwrap(),
            secret: SecretKeyRef {
                name: "s".into(),
                key: "apiKey".into()
            }
        }
    );
}

#[test]
fn endpoints_must_be_urls_without_credentials() {
    for bad in [
        "milvus:19530",
        "not a url",
        "ftp://m",
        "http://root:Milvus@m:19530",
    ] {
        let c = collection(serde_json::json!({
            "collectionName": "c",
            "connection": {"endpoint": bad, "credentialsSecretRef": {"name": "s"}}
        }));
        let err = c.address().unwrap_err();
        assert!(err.contains("connection.endpoint"), "{bad}: {err}");
        assert!(!err.contains("Milvus@") || !err.contains("Secret"), "{err}");
    }
}

#[test]
fn partition_addresses() {
    let by_ref: ZillizPartition = ZillizPartition::new(
        "p",
        serde_json::from_value(
            serde_json::json!({"partitionName": "p", "collectionRef": {"name": "c"}}),
        )
        .unwrap(),
    );
    assert_eq!(
        by_ref.address().unwrap(),
        Address::Partition {
            collection: CollectionSource::Object("c".into()),
            partition: "p".into()
        }
    );
    let mixed: ZillizPartition = ZillizPartition::new(
        "p",
        serde_json::from_value(serde_json::json!({
            "partitionName": "p", "collectionRef": {"name": "c"}, "collectionName": "x"
        }))
        .unwrap(),
    );
    assert!(mixed.address().unwrap_err().contains("collectionRef"));
    let nothing: ZillizIndex = ZillizIndex::new(
        "i",
        serde_json::from_value(serde_json::json!({"indexName": "i"})).unwrap(),
    );
    assert!(nothing.address().unwrap_err().contains("neither"));
}

#[test]
fn cluster_addresses() {
    let mk = |cp: serde_json::Value, id: &str| {
        ZillizCluster::new(
            "z",
            serde_json::from_value(serde_json::json!({
                "clusterId": id, "controlPlane": cp, "credentialsSecretRef": {"name": "s"}
            }))
            .unwrap(),
        )
    };
    let Address::Cluster { base, flavour, .. } =
        mk(serde_json::json!({}), "in01-x").address().unwrap()
    else {
        panic!()
    };
    assert_eq!(base.as_str(), "https://api.cloud.zilliz.com/");
    assert_eq!(flavour, Flavour::V2);
    let err = mk(serde_json::json!({"apiVersion": "v1"}), "in01-x")
        .address()
        .unwrap_err();
    assert!(err.contains("region"), "{err}");
    assert!(
        mk(serde_json::json!({}), "../etc")
            .address()
            .unwrap_err()
            .contains("clusterId")
    );
}
