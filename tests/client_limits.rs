//! Staying polite to the APIs: a token bucket per control plane endpoint and credential, and a
//! cap on calls in flight per data plane endpoint.

use axum::{Router, routing::any};
use futures::future::join_all;
use std::{
    num::{NonZeroU32, NonZeroUsize},
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};
use url::Url;
use zilliz_operator::api::{ControlPlane, DataPlane, Flavour, HttpClient, Token};

/// A server answering success after `delay`, recording arrival times and the peak number of
/// requests in flight.
struct Server {
    url: Url,
    arrivals: Arc<Mutex<Vec<Instant>>>,
    peak: Arc<AtomicUsize>,
}

async fn server(delay: Duration) -> Server {
    let arrivals = Arc::new(Mutex::new(Vec::new()));
    let in_flight = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (a, f, p) = (arrivals.clone(), in_flight.clone(), peak.clone());
    let app = Router::new().fallback(any(move || {
        let (a, f, p) = (a.clone(), f.clone(), p.clone());
        async move {
            a.lock().unwrap().push(Instant::now());
            let now = f.fetch_add(1, Ordering::SeqCst) + 1;
            p.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(delay).await;
            f.fetch_sub(1, Ordering::SeqCst);
            (
                [("content-type", "application/json")],
                r#"{"code":0,"data":{"clusterId":"in01-x","status":"RUNNING"}}"#,
            )
        }
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = Url::parse(&format!("http://{}", listener.local_addr().unwrap())).unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Server {
        url,
        arrivals,
        peak,
    }
}

fn http(rps: u32, concurrency: usize) -> HttpClient {
    HttpClient::new(Duration::from_secs(10), None)
        .unwrap()
        .with_limits(NonZeroU32::new(rps), NonZeroUsize::new(concurrency))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_control_plane_is_rate_limited_per_endpoint_and_credential() {
    let s = server(Duration::ZERO).await;
    let http = http(10, 0);
    let plane = |token: &str| ControlPlane {
        http: http.clone(),
        base: s.url.clone(),
        flavour: Flavour::V2,
        token: Token::new(token),
    };
    let a = plane("key-a");
    let results = join_all((0..30).map(|_| a.describe_cluster("in01-x"))).await;
    assert!(results.iter().all(|r| r.is_ok()));
    let arrivals = s.arrivals.lock().unwrap().clone();
    assert_eq!(arrivals.len(), 30);
    // a burst of 10, then one every 100 ms: the last 20 are spread over about 2 s
    let spread = arrivals[29] - arrivals[10];
    assert!(
        spread >= Duration::from_millis(1700),
        "30 calls at 10/s came within {spread:?} after the burst"
    );

    // another credential has its own bucket: its burst is not held back by the first
    let b = plane("key-b");
    let started = Instant::now();
    let results = join_all((0..10).map(|_| b.describe_cluster("in01-x"))).await;
    assert!(results.iter().all(|r| r.is_ok()));
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_data_plane_is_concurrency_limited_per_endpoint() {
    let one = server(Duration::from_millis(150)).await;
    let two = server(Duration::from_millis(150)).await;
    let http = http(0, 4);
    let plane = |url: &Url| DataPlane {
        http: http.clone(),
        endpoint: url.clone(),
        flavour: Flavour::V2,
        token: Token::new("root:Milvus"),
    };
    let (p1, p2) = (plane(&one.url), plane(&two.url));
    let names: Vec<String> = (0..16).map(|i| format!("c{i}")).collect();
    let drops = names
        .iter()
        .map(|n| p1.drop_collection("default", n))
        .chain(names.iter().map(|n| p2.drop_collection("default", n)));
    let results = join_all(drops).await;
    assert!(results.iter().all(|r| r.is_ok()));
    assert_eq!(one.arrivals.lock().unwrap().len(), 16);
    // the cap holds, and is reached, on each endpoint separately
    assert_eq!(one.peak.load(Ordering::SeqCst), 4);
    assert_eq!(two.peak.load(Ordering::SeqCst), 4);

    // without a cap all 16 go at once
    let three = server(Duration::from_millis(150)).await;
    let open = DataPlane {
        http: HttpClient::new(Duration::from_secs(10), None).unwrap(),
        endpoint: three.url.clone(),
        flavour: Flavour::V2,
        token: Token::new("root:Milvus"),
    };
    join_all(names.iter().map(|n| open.drop_collection("default", n))).await;
    assert_eq!(three.peak.load(Ordering::SeqCst), 16);
}
