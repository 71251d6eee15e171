//! A stateful HTTP fake of the Zilliz Cloud control plane (v2) and the v2 data plane, which have
//! no local server. It answers with the real bodies recorded in `docs/zilliz-api.md`, keeps
//! state (clusters, collections, partitions, indexes, what is loaded), checks the bearer token,
//! counts every call (with the token it carried and what it was answered), rejects invalid
//! collection names like Milvus (1100), and can simulate an outage (503 with an HTML body, for a
//! number of calls or a length of time), latency, and a gateway that echoes the `Authorization`
//! header back in its error pages. A token can be restricted (it authenticates and lists the
//! cluster, but describing or dropping it answers 80020, as a key with fewer rights does), and
//! the next answers of one path can be scripted ([`ZillizFake::answer_next`]).

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
        let reply = answer(&mut s, &method, &path, &body, &auth, arrived);
        let delay = s.latency;
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
    let control = path.starts_with("/v2/clusters");
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
    match (method, segments.as_slice()) {
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
        ("GET", ["v2", "clusters", id]) | ("DELETE", ["v2", "clusters", id, "drop"])
            if s.denied.get(token).is_some_and(|ids| ids.contains(*id)) =>
        {
            // what Zilliz answers a key without rights on an existing cluster
            json(
                200,
                envelope(80020, "Cluster not exist or you don't have permission."),
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
        _ => Reply::Text(404, "404 page not found"),
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
}
