//! The control plane client's cluster create, find-by-name, modify, suspend and resume over
//! real HTTP: against the devkit's stateful Zilliz fake (the envelopes of `docs/zilliz-api.md`,
//! "Creating and describing"), and against wiremock where the exact request matters (method,
//! path, headers and the exact JSON body, each mock `.expect(1)` and verified).

use serde_json::{Value, json};
use std::time::Duration;
use url::Url;
use wiremock::matchers::{body_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};
use zilliz_devkit::zilliz_fake::{CreateFault, ZillizFake};
use zilliz_operator::api::{
    ApiError, ClusterPlan, ControlPlane, CreateCluster, ErrorClass, Flavour, HttpClient, Modify,
    Token, classify::is_duplicate_cluster_name,
};

/// The API key; the fake refuses any other.
const TOKEN: &str = "zk-0123456789-cluster-key";

fn control(base: &str, flavour: Flavour, timeout: Duration) -> ControlPlane {
    ControlPlane {
        http: HttpClient::new(timeout, None).expect("http client"),
        base: Url::parse(base).expect("url"),
        flavour,
        token: Token::new(TOKEN),
    }
}

fn v2(fake: &ZillizFake) -> ControlPlane {
    control(&fake.uri(), Flavour::V2, Duration::from_secs(5))
}

fn dedicated(name: &str, project: &str) -> CreateCluster {
    CreateCluster {
        cluster_name: name.into(),
        project_id: project.into(),
        region_id: "aws-us-west-2".into(),
        plan: ClusterPlan::Standard,
        cu_type: Some("Performance-optimized".into()),
        cu_size: Some(2),
    }
}

fn expect_err<T: std::fmt::Debug>(res: Result<T, ApiError>) -> ApiError {
    match res {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e,
    }
}

#[tokio::test]
async fn a_create_answers_the_id_and_a_password_that_never_shows_in_debug() {
    let fake = ZillizFake::start(TOKEN).await;
    let cp = v2(&fake);
    let created = cp
        .create_cluster(&dedicated("analytics", "proj-1"))
        .await
        .expect("created");
    assert!(created.cluster_id.starts_with("in01-"), "{created:?}");
    assert_eq!(created.username, "db_admin");
    let password = created.password.expose().to_string();
    assert!(password.len() >= 8);
    assert!(!created.prompt.is_empty());
    let shown = format!("{created:?}");
    assert!(!shown.contains(&password), "{shown}");
    assert!(shown.contains("<redacted>"), "{shown}");
    // the request the fake saw
    let bodies = fake.call_bodies("POST", "/v2/clusters/createDedicated");
    assert_eq!(
        bodies,
        [
            json!({"clusterName": "analytics", "projectId": "proj-1", "regionId": "aws-us-west-2",
                "plan": "Standard", "cuType": "Performance-optimized", "cuSize": 2})
        ]
    );
    assert!(
        fake.call_log(0).iter().all(|c| c.token == TOKEN),
        "every call carries the API key as a bearer token"
    );
    // the describe carries the new fields; CREATING first, then RUNNING
    let first = cp.describe_cluster(&created.cluster_id).await.unwrap();
    assert_eq!(first.status, "CREATING");
    assert_eq!(
        first.cluster_id.as_deref(),
        Some(created.cluster_id.as_str())
    );
    assert_eq!(first.cluster_name.as_deref(), Some("analytics"));
    assert_eq!(first.project_id.as_deref(), Some("proj-1"));
    assert_eq!((first.cu_size, first.replica), (Some(2), Some(1)));
    let then = cp.describe_cluster(&created.cluster_id).await.unwrap();
    assert_eq!(then.status, "RUNNING");
    assert_eq!(then.connect_address.as_deref(), Some(fake.uri().as_str()));
}

#[tokio::test]
async fn a_duplicate_name_is_refused_with_80010_and_creates_nothing() {
    let fake = ZillizFake::start(TOKEN).await;
    fake.add_named_cluster("in01-old", "analytics", "proj-1");
    let cp = v2(&fake);
    let e = expect_err(cp.create_cluster(&dedicated("analytics", "proj-1")).await);
    assert_eq!(e.code, Some(80010), "{e}");
    assert_eq!(e.class, ErrorClass::BadRequest);
    assert!(is_duplicate_cluster_name(&e));
    assert_eq!(fake.clusters_named("proj-1", "analytics").len(), 1);
    // a wrong key is a credentials error, not a duplicate
    let mut wrong = v2(&fake);
    wrong.token = Token::new("zk-wrong-key-0000000");
    let e = expect_err(wrong.create_cluster(&dedicated("other", "proj-1")).await);
    assert_eq!(e.class, ErrorClass::Credentials, "{e}");
    assert!(!is_duplicate_cluster_name(&e));
}

#[tokio::test]
async fn find_by_name_reads_every_page_and_keeps_to_the_project() {
    let fake = ZillizFake::start(TOKEN).await;
    for i in 0..150 {
        fake.add_named_cluster(&format!("in01-{i:04}"), &format!("c{i}"), "proj-1");
    }
    // the one that matters sorts last (page 2); the same name in another project, and a
    // dropped cluster of that name, do not count
    fake.add_named_cluster("in01-zzzz", "analytics", "proj-1");
    fake.add_named_cluster("in01-aaaa", "analytics", "proj-2");
    fake.add_named_cluster("in01-dead", "analytics", "proj-1");
    fake.set_cluster_status("in01-dead", "DELETED");
    let cp = v2(&fake);
    let found = cp
        .find_clusters_by_name("proj-1", "analytics")
        .await
        .unwrap();
    let ids: Vec<_> = found.iter().map(|c| c.cluster_id.clone()).collect();
    assert_eq!(ids, [Some("in01-zzzz".to_string())]);
    assert_eq!(found[0].status, "RUNNING");
    assert_eq!((found[0].cu_size, found[0].replica), (Some(1), Some(1)));
    assert_eq!(fake.calls("GET", "/v2/clusters"), 2, "two pages of 100");
    assert!(
        cp.find_clusters_by_name("proj-3", "analytics")
            .await
            .unwrap()
            .is_empty()
    );
    // the ids of the same list
    assert_eq!(cp.list_cluster_ids().await.unwrap().len(), 152);
}

#[tokio::test]
async fn a_lost_create_answer_is_an_error_that_may_hide_a_cluster_found_by_name() {
    let fake = ZillizFake::start(TOKEN).await;
    let cp = v2(&fake);
    fake.fault_next_create(CreateFault::GatewayTimeout);
    let e = expect_err(cp.create_cluster(&dedicated("a", "proj-1")).await);
    assert_eq!(
        (e.class, e.http_status),
        (ErrorClass::Transient, Some(504)),
        "{e}"
    );
    assert!(!is_duplicate_cluster_name(&e));
    let found = cp.find_clusters_by_name("proj-1", "a").await.unwrap();
    assert_eq!(
        found.len(),
        1,
        "the create happened although its answer was lost"
    );
    // the answer held back past the client's timeout
    fake.fault_next_create(CreateFault::Delay(Duration::from_secs(3)));
    let quick = control(&fake.uri(), Flavour::V2, Duration::from_millis(300));
    let e = expect_err(quick.create_cluster(&dedicated("b", "proj-1")).await);
    assert_eq!(e.class, ErrorClass::Transient, "{e}");
    assert!(e.message.contains("timed out"), "{e}");
    assert_eq!(
        cp.find_clusters_by_name("proj-1", "b").await.unwrap().len(),
        1
    );
    // a second create of either name is refused by the API itself
    let again = expect_err(cp.create_cluster(&dedicated("a", "proj-1")).await);
    assert!(is_duplicate_cluster_name(&again), "{again}");
}

#[tokio::test]
async fn modify_suspend_and_resume_over_the_fake() {
    let fake = ZillizFake::start(TOKEN).await;
    fake.add_named_cluster("in01-m", "m", "proj-1");
    let cp = v2(&fake);
    cp.modify_cluster("in01-m", Modify::CuSize(4))
        .await
        .unwrap();
    assert_eq!(
        fake.call_bodies("POST", "/v2/clusters/in01-m/modify"),
        [json!({"cuSize": 4})]
    );
    // MODIFYING: a second change is refused until RUNNING again
    let e = expect_err(cp.modify_cluster("in01-m", Modify::Replica(2)).await);
    assert_eq!(
        (e.class, e.code),
        (ErrorClass::BadRequest, Some(80000)),
        "{e}"
    );
    assert_eq!(
        cp.describe_cluster("in01-m").await.unwrap().status,
        "MODIFYING"
    );
    let info = cp.describe_cluster("in01-m").await.unwrap();
    assert_eq!((info.status.as_str(), info.cu_size), ("RUNNING", Some(4)));
    cp.modify_cluster("in01-m", Modify::Replica(2))
        .await
        .unwrap();
    cp.describe_cluster("in01-m").await.unwrap();
    assert_eq!(
        cp.describe_cluster("in01-m").await.unwrap().replica,
        Some(2)
    );
    cp.suspend_cluster("in01-m").await.unwrap();
    assert_eq!(fake.cluster_status("in01-m").as_deref(), Some("SUSPENDING"));
    cp.describe_cluster("in01-m").await.unwrap();
    assert_eq!(
        cp.describe_cluster("in01-m").await.unwrap().status,
        "SUSPENDED"
    );
    cp.resume_cluster("in01-m").await.unwrap();
    assert_eq!(fake.cluster_status("in01-m").as_deref(), Some("RESUMING"));
    let e = expect_err(cp.suspend_cluster("in01-nope").await);
    assert_eq!(e.class, ErrorClass::NotFoundOrForbidden, "{e}");
}

#[tokio::test]
async fn v1_creates_lists_and_modifies_with_code_200() {
    let fake = ZillizFake::start(TOKEN).await;
    let cp = control(&fake.uri(), Flavour::V1, Duration::from_secs(5));
    let req = CreateCluster {
        plan: ClusterPlan::Enterprise,
        cu_size: Some(64),
        ..dedicated("v", "proj-1")
    };
    let created = cp.create_cluster(&req).await.expect("created");
    // v1's body has the plan and no region (its host names the region)
    assert_eq!(
        fake.call_bodies("POST", "/v1/clusters/create"),
        [
            json!({"clusterName": "v", "projectId": "proj-1", "plan": "Enterprise",
                "cuType": "Performance-optimized", "cuSize": 64})
        ]
    );
    let found = cp.find_clusters_by_name("proj-1", "v").await.unwrap();
    assert_eq!(
        found[0].cluster_id.as_deref(),
        Some(created.cluster_id.as_str())
    );
    let path = format!("/v1/clusters/{}", created.cluster_id);
    assert_eq!(fake.calls("GET", "/v1/clusters"), 1);
    cp.describe_cluster(&created.cluster_id).await.unwrap();
    assert_eq!(
        cp.describe_cluster(&created.cluster_id)
            .await
            .unwrap()
            .status,
        "RUNNING"
    );
    cp.modify_cluster(&created.cluster_id, Modify::CuSize(128))
        .await
        .unwrap();
    assert_eq!(fake.calls("POST", &format!("{path}/modify")), 1);
    let e = expect_err(cp.create_cluster(&req).await);
    assert!(is_duplicate_cluster_name(&e), "{e}");
}

/// A JSON POST mock with the common headers and the exact body.
fn post(p: &str, body: Value) -> wiremock::MockBuilder {
    Mock::given(method("POST"))
        .and(path(p.to_string()))
        .and(header("Authorization", format!("Bearer {TOKEN}").as_str()))
        .and(header("Content-Type", "application/json"))
        .and(header("Request-Timeout", "5"))
        .and(body_json(body))
}

#[tokio::test]
async fn each_plan_goes_to_its_route_with_its_body() {
    let server = MockServer::start().await;
    let answer = |id: &str| {
        ResponseTemplate::new(200).set_body_json(json!({"code": 0, "data": {
            "clusterId": id, "username": "db_admin", "password": "pw-0123456789", "prompt": "ok"}}))
    };
    let small = json!({"clusterName": "s", "projectId": "p", "regionId": "gcp-us-west1"});
    post("/gw/v2/clusters/createServerless", small.clone())
        .respond_with(answer("in01-s"))
        .expect(1)
        .mount(&server)
        .await;
    post("/gw/v2/clusters/createFree", small)
        .respond_with(answer("in01-f"))
        .expect(1)
        .mount(&server)
        .await;
    post("/gw/v2/clusters/in01-s/suspend", json!({}))
        .respond_with(answer("in01-s"))
        .expect(1)
        .mount(&server)
        .await;
    post("/gw/v2/clusters/in01-s/resume", json!({}))
        .respond_with(answer("in01-s"))
        .expect(1)
        .mount(&server)
        .await;
    post("/gw/v2/clusters/in01-s/modify", json!({"replica": 3}))
        .respond_with(answer("in01-s"))
        .expect(1)
        .mount(&server)
        .await;
    // a create accepted without an id may still have made a cluster: never a refusal
    post(
        "/gw/v2/clusters/createDedicated",
        json!({"clusterName": "d", "projectId": "p", "regionId": "gcp-us-west1", "plan": "Standard"}),
    )
    .respond_with(ResponseTemplate::new(200).set_body_json(json!({"code": 0, "data": {}})))
    .expect(1)
    .mount(&server)
    .await;
    let cp = control(
        &format!("{}/gw", server.uri()),
        Flavour::V2,
        Duration::from_secs(5),
    );
    let serverless = CreateCluster {
        cluster_name: "s".into(),
        project_id: "p".into(),
        region_id: "gcp-us-west1".into(),
        plan: ClusterPlan::Serverless,
        // ignored for plans that are not dedicated
        cu_type: Some("Performance-optimized".into()),
        cu_size: Some(4),
    };
    let s = cp.create_cluster(&serverless).await.unwrap();
    assert_eq!(s.cluster_id, "in01-s");
    let free = CreateCluster {
        plan: ClusterPlan::Free,
        ..serverless.clone()
    };
    assert_eq!(cp.create_cluster(&free).await.unwrap().cluster_id, "in01-f");
    cp.suspend_cluster("in01-s").await.unwrap();
    cp.resume_cluster("in01-s").await.unwrap();
    cp.modify_cluster("in01-s", Modify::Replica(3))
        .await
        .unwrap();
    let no_id = CreateCluster {
        cluster_name: "d".into(),
        plan: ClusterPlan::Standard,
        cu_type: None,
        cu_size: None,
        ..serverless
    };
    let e = expect_err(cp.create_cluster(&no_id).await);
    assert_eq!(e.class, ErrorClass::Unknown, "{e}");
    server.verify().await;
}

#[tokio::test]
async fn find_by_name_refuses_a_list_that_does_not_name_projects() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v2/clusters"))
        .and(query_param("pageSize", "100"))
        .and(query_param("currentPage", "1"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"code": 0, "data": {
            "count": 1, "currentPage": 1, "pageSize": 100,
            "clusters": [{"clusterId": "in01-x", "clusterName": "a", "status": "RUNNING"}]}})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let cp = control(&server.uri(), Flavour::V2, Duration::from_secs(5));
    let e = expect_err(cp.find_clusters_by_name("p", "a").await);
    assert_eq!(e.class, ErrorClass::Unknown, "{e}");
    assert!(e.message.contains("cannot confirm"), "{e}");
}
