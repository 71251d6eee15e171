//! Shared helpers for the integration tests.
#![allow(dead_code)]

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::PostParams;
use kube::{Api, Client, CustomResource, CustomResourceExt};
use kube_test_server::TestServer;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// A small test CRD.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "test.example.com",
    version = "v1",
    kind = "Gadget",
    namespaced,
    status = "GadgetStatus",
    shortname = "gd"
)]
pub struct GadgetSpec {
    pub size: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub colour: Option<String>,
}

/// Status of [`Gadget`].
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema, Default)]
pub struct GadgetStatus {
    pub ready: bool,
}

/// Counter key of list requests for gadgets.
pub const LIST_GADGETS: &str = "list gadgets.test.example.com";

/// Start a server and a kube client for it.
pub async fn start() -> (TestServer, Client) {
    let server = TestServer::start().await.expect("server starts");
    let url = server.url().parse().expect("valid url");
    let client = Client::try_from(kube::Config::new(url)).expect("client");
    (server, client)
}

/// Start a server with the Gadget CRD installed through the API.
pub async fn start_with_crd() -> (TestServer, Client) {
    let (server, client) = start().await;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.create(&PostParams::default(), &Gadget::crd())
        .await
        .expect("CRD created");
    (server, client)
}

/// A gadget named `name`.
pub fn gadget(name: &str, size: i32) -> Gadget {
    Gadget::new(name, GadgetSpec { size, colour: None })
}

/// Poll `f` until it returns true or `timeout` passes.
pub async fn eventually<F, Fut>(timeout: Duration, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if f().await {
            return true;
        }
        if tokio::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The HTTP status of a kube error (0 if not an API error).
pub fn code(e: &kube::Error) -> u16 {
    match e {
        kube::Error::Api(s) => s.code,
        _ => 0,
    }
}
