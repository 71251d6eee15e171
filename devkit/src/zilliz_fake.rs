//! A stateful HTTP fake of the Zilliz Cloud control plane (v2) and the v2 data plane, which have
//! no local server. It answers with the real bodies recorded in `shared/zilliz-api.md`, keeps
//! state (clusters, collections, partitions, indexes, what is loaded), checks the bearer token,
//! counts every call, and can simulate an outage (503 with an HTML body) or latency.

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
    /// cluster id → status; `describes_until_deleted` counts down after a drop
    clusters: BTreeMap<String, String>,
    describes_until_deleted: BTreeMap<String, u32>,
    collections: BTreeSet<Key>,
    loaded_collections: BTreeSet<Key>,
    partitions: BTreeSet<(Key, String)>,
    loaded_partitions: BTreeSet<(Key, String)>,
    indexes: BTreeSet<(Key, String)>,
    outage: usize,
    /// method, path and JSON body (`null` when none) of every request
    calls: Vec<(String, String, Value)>,
    /// when each of `calls` arrived (same index)
    arrived: Vec<Instant>,
    latency: Duration,
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

impl Respond for Responder {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let mut s = self.0.lock().unwrap();
        let path = req.url.path().to_string();
        let method = req.method.to_string();
        let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
        s.calls.push((method.clone(), path.clone(), body.clone()));
        s.arrived.push(Instant::now());
        let delay = s.latency;
        let json = |status: u16, body: Value| {
            ResponseTemplate::new(status)
                .set_body_json(body)
                .set_delay(delay)
        };
        if s.outage > 0 {
            s.outage -= 1;
            return ResponseTemplate::new(503)
                .insert_header("content-type", "text/html")
                .set_body_string(
                    "<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>",
                )
                .set_delay(delay);
        }
        let control = path.starts_with("/v2/clusters");
        let auth = req
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        if auth != format!("Bearer {}", s.token) {
            return if control {
                json(401, envelope(21119, "The apikey is illegal"))
            } else {
                json(401, envelope(1800, "user hasn't authenticated"))
            };
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
        let not_found = envelope(
            100,
            &format!(
                "collection not found[database={}][collection={}]",
                coll.0, coll.1
            ),
        );
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        match (method.as_str(), segments.as_slice()) {
            ("GET", ["v2", "clusters"]) => {
                let clusters: Vec<Value> = s
                    .clusters
                    .iter()
                    .filter(|(_, st)| st.as_str() != "DELETED")
                    .map(|(id, st)| json!({"clusterId": id, "status": st}))
                    .collect();
                json(
                    200,
                    ok(json!({"count": clusters.len(), "clusters": clusters})),
                )
            }
            ("GET", ["v2", "clusters", id]) => {
                let id = id.to_string();
                let Some(status) = s.clusters.get(&id).cloned() else {
                    return json(
                        200,
                        envelope(80020, "Cluster not exist or you don't have permission."),
                    );
                };
                let status = if status == "DELETING" {
                    let left = s.describes_until_deleted.entry(id.clone()).or_insert(0);
                    if *left == 0 {
                        s.clusters.insert(id.clone(), "DELETED".into());
                        "DELETED".to_string()
                    } else {
                        *left -= 1;
                        status
                    }
                } else {
                    status
                };
                let uri = s.uri.clone();
                json(
                    200,
                    ok(json!({"clusterId": id, "status": status, "connectAddress": uri})),
                )
            }
            ("DELETE", ["v2", "clusters", id, "drop"]) => {
                let id = id.to_string();
                match s.clusters.get(&id).map(String::as_str) {
                    None | Some("DELETED") => json(
                        200,
                        envelope(80020, "Cluster not exist or you don't have permission."),
                    ),
                    Some(_) => {
                        s.clusters.insert(id.clone(), "DELETING".into());
                        s.describes_until_deleted.insert(id.clone(), 1);
                        json(
                            200,
                            ok(json!({
                                "clusterId": id,
                                "prompt": "The cluster has been deleted. If you consider this action to be an error, you have the option to restore the deleted cluster from the recycle bin within a 30-day period. Kindly note, this recovery feature does not apply to free clusters."
                            })),
                        )
                    }
                }
            }
            ("POST", ["v2", "vectordb", "collections", "has"]) => {
                json(200, ok(json!({"has": s.collections.contains(&coll)})))
            }
            ("POST", ["v2", "vectordb", "collections", "drop"]) => {
                // v2 collection drop is idempotent: code 0 for a missing collection too
                s.collections.remove(&coll);
                s.loaded_collections.remove(&coll);
                s.partitions.retain(|(c, _)| c != &coll);
                s.indexes.retain(|(c, _)| c != &coll);
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
                if s.indexes.contains(&(coll, i.clone())) {
                    json(
                        200,
                        ok(json!([{"indexName": i, "indexType": "AUTOINDEX", "metricType": "L2"}])),
                    )
                } else {
                    json(
                        200,
                        envelope(700, &format!("index not found[indexName={i}]")),
                    )
                }
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
            _ => ResponseTemplate::new(404)
                .insert_header("content-type", "text/plain")
                .set_body_string("404 page not found"),
        }
    }
}

impl ZillizFake {
    pub async fn start(token: &str) -> ZillizFake {
        let server = MockServer::start().await;
        let state = Arc::new(Mutex::new(State {
            token: token.to_string(),
            uri: server.uri(),
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

    pub fn add_cluster(&self, id: &str) {
        self.state
            .lock()
            .unwrap()
            .clusters
            .insert(id.into(), "RUNNING".into());
    }

    pub fn cluster_status(&self, id: &str) -> Option<String> {
        self.state.lock().unwrap().clusters.get(id).cloned()
    }

    pub fn add_collection(&self, db: &str, name: &str, loaded: bool) {
        let mut s = self.state.lock().unwrap();
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

    pub fn add_index(&self, db: &str, coll: &str, name: &str) {
        self.state
            .lock()
            .unwrap()
            .indexes
            .insert(((db.into(), coll.into()), name.into()));
    }

    pub fn has_index(&self, db: &str, coll: &str, name: &str) -> bool {
        self.state
            .lock()
            .unwrap()
            .indexes
            .contains(&((db.into(), coll.into()), name.into()))
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

    pub fn set_latency(&self, d: Duration) {
        self.state.lock().unwrap().latency = d;
    }

    pub fn set_token(&self, token: &str) {
        self.state.lock().unwrap().token = token.into();
    }

    /// How many calls had this method and path.
    pub fn calls(&self, method: &str, path: &str) -> usize {
        self.state
            .lock()
            .unwrap()
            .calls
            .iter()
            .filter(|(m, p, _)| m == method && p == path)
            .count()
    }

    /// The JSON bodies of the calls with this method and path, in order.
    pub fn call_bodies(&self, method: &str, path: &str) -> Vec<Value> {
        self.state
            .lock()
            .unwrap()
            .calls
            .iter()
            .filter(|(m, p, _)| m == method && p == path)
            .map(|(_, _, b)| b.clone())
            .collect()
    }

    pub fn total_calls(&self) -> usize {
        self.state.lock().unwrap().calls.len()
    }

    /// Method, path and arrival time of every call from the `from`-th on (0: all), in order.
    /// The answer leaves [`ZillizFake::set_latency`] later than it arrived.
    pub fn timed_calls(&self, from: usize) -> Vec<(String, String, Instant)> {
        let s = self.state.lock().unwrap();
        s.calls
            .iter()
            .zip(&s.arrived)
            .skip(from)
            .map(|((m, p, _), t)| (m.clone(), p.clone(), *t))
            .collect()
    }

    pub fn all_calls(&self) -> Vec<(String, String)> {
        self.state
            .lock()
            .unwrap()
            .calls
            .iter()
            .map(|(m, p, _)| (m.clone(), p.clone()))
            .collect()
    }
}
