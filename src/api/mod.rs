//! HTTP clients for the Zilliz Cloud control plane and the Milvus / Zilliz data plane.
//!
//! Every call answers `Result<_, ApiError>` with the error already classified (see
//! [`classify`]), so callers decide on "done", "gone", "retry" or "give up" without looking at
//! HTTP details.

pub mod classify;
pub mod describe;

pub use classify::{ApiError, Envelope, ErrorClass};
pub use describe::{CollectionInfo, FieldInfo, IndexInfo, IndexState, LoadState};

use reqwest::{
    Method,
    header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue, RETRY_AFTER},
};
use serde_json::{Value, json};
use std::{collections::HashMap, fmt, sync::Arc, time::Duration};
use url::Url;

/// Largest answer body read; anything longer is cut (answers we need are a few hundred bytes).
const MAX_BODY: usize = 1 << 20;

/// A credential (API key or `user:password`). Its `Debug` never shows the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// Whitespace around the value (a trailing newline from `echo` into a Secret) is dropped.
    pub fn new(value: impl AsRef<str>) -> Self {
        Token(value.as_ref().trim().to_string())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The forms in which the credential can come back from a server: the whole token and,
    /// for `user:password`, the part after `user:` (the password alone). Each as it is and as
    /// it reads inside a JSON string (a password with `"` or `\` is echoed escaped).
    fn secret_forms(&self) -> Vec<String> {
        let mut forms: Vec<String> = Vec::new();
        let mut push = |s: &str| {
            if s.is_empty() {
                return;
            }
            let escaped = serde_json::to_string(s).unwrap_or_default();
            let escaped = escaped
                .strip_prefix('"')
                .and_then(|e| e.strip_suffix('"'))
                .unwrap_or_default();
            for form in [s, escaped] {
                if !form.is_empty() && !forms.iter().any(|f| f == form) {
                    forms.push(form.to_string());
                }
            }
        };
        push(&self.0);
        if let Some((_, password)) = self.0.split_once(':') {
            push(password);
        }
        forms
    }

    /// Removes the credential from a text that came back from the server (gateways echo the
    /// `Authorization` header, or the password alone, into their errors).
    ///
    /// The rule, for every form of [`Token::secret_forms`] (the whole token, the part after
    /// `user:`, each also JSON-escaped):
    /// - a form of at least [`MIN_REPLACED_SECRET`] characters is replaced by `<redacted>`
    ///   wherever it appears;
    /// - a shorter one is never replaced: cutting a 1–3 character password out of a text
    ///   mangles ordinary words (`on` in `collection`), and the marker itself could spell it
    ///   (`red`, `act`); so when it appears anywhere in the text, the **whole text is
    ///   withheld** and becomes [`WITHHELD_MESSAGE`];
    /// - the text is withheld too when any form is still there after the replacements (a
    ///   secret that overlaps the marker, such as `d>foobar` before `foobar`).
    ///
    /// So the result holds no form of the secret, or is exactly [`WITHHELD_MESSAGE`] (a fixed
    /// text that tells nothing about the secret, even when a 1-character password happens to
    /// be one of its letters). The result of a redaction redacts to itself.
    pub fn redact(&self, text: &str) -> String {
        self.redact_flagged(text, false)
    }

    /// [`Token::redact`]; `withhold`: a short form was already seen in the raw answer.
    fn redact_flagged(&self, text: &str, withhold: bool) -> String {
        if withhold {
            return WITHHELD_MESSAGE.to_string();
        }
        let forms = self.secret_forms();
        let mut out = text.to_string();
        for form in forms.iter().filter(|f| is_long(f)) {
            out = out.replace(form.as_str(), "<redacted>");
        }
        if forms.iter().any(|f| out.contains(f.as_str())) {
            return WITHHELD_MESSAGE.to_string();
        }
        out
    }

    /// [`Token::redact`] over a raw answer body, before anything is cut from it: an excerpt
    /// taken first could end in the middle of an echoed credential and keep its first part.
    /// Long forms are replaced in the bytes; a short form is left in place (the answer is
    /// still classified as it came) and answers `true`: the message built from this body must
    /// be withheld.
    fn redact_body(&self, body: Vec<u8>) -> (Vec<u8>, bool) {
        let forms = self.secret_forms();
        let mut body = body;
        for needle in forms.iter().filter(|f| is_long(f)).map(|f| f.as_bytes()) {
            if !contains(&body, needle) {
                continue;
            }
            let mut out = Vec::with_capacity(body.len());
            let mut i = 0;
            while i < body.len() {
                if body[i..].starts_with(needle) {
                    out.extend_from_slice(b"<redacted>");
                    i += needle.len();
                } else {
                    out.push(body[i]);
                    i += 1;
                }
            }
            body = out;
        }
        let withhold = forms.iter().any(|f| contains(&body, f.as_bytes()));
        (body, withhold)
    }

    fn bearer(&self) -> Result<HeaderValue, ApiError> {
        let mut v = HeaderValue::from_str(&format!("Bearer {}", self.0)).map_err(|_| {
            ApiError::new(
                ErrorClass::Credentials,
                "the credential contains characters that cannot be sent in an HTTP header",
            )
        })?;
        v.set_sensitive(true);
        Ok(v)
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// Shortest secret that [`Token::redact`] replaces in place; a shorter one withholds the
/// whole text.
pub const MIN_REPLACED_SECRET: usize = 8;

/// What an error message becomes when it holds a secret too short to cut out (see
/// [`Token::redact`]).
pub const WITHHELD_MESSAGE: &str = "the server's message was withheld: it contains the credential's password, which is too short to cut out of a text safely (a password of 8 or more characters lets messages through)";

fn is_long(form: &str) -> bool {
    form.chars().count() >= MIN_REPLACED_SECRET
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// What [`HttpClient`] does with an answer once read: the credential is removed from the raw
/// body (before any excerpt is cut), the answer is classified ([`classify::classify`]), and
/// the credential is removed from the error message ([`Token::redact`]). Public so that the
/// fuzz target drives exactly this path with echoed credentials.
pub fn classify_answer(
    token: &Token,
    envelope: Envelope,
    http_status: u16,
    retry_after: Option<Duration>,
    body: Vec<u8>,
) -> Result<Value, ApiError> {
    let (body, withhold) = token.redact_body(body);
    classify::classify(envelope, http_status, retry_after, &body).map_err(|mut e| {
        e.message = token.redact_flagged(&e.message, withhold);
        e
    })
}

/// REST flavour of an endpoint family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavour {
    V1,
    V2,
}

impl Flavour {
    fn envelope(self) -> Envelope {
        match self {
            Flavour::V1 => Envelope::V1,
            Flavour::V2 => Envelope::V2,
        }
    }
}

/// Observes every API call (metrics); a no-op by default.
pub trait CallObserver: Send + Sync {
    fn observe(&self, operation: &'static str, outcome: &'static str, elapsed: Duration);
}

/// An operation: a bounded name (metric label) and the API it goes to.
#[derive(Clone, Copy, Debug)]
struct Op(&'static str, Plane);

/// Which API a call goes to: the control plane is rate limited per credential and endpoint,
/// the data plane is concurrency limited per endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plane {
    Control,
    Data,
}

type KeyedLimiter = governor::RateLimiter<
    String,
    governor::state::keyed::HashMapStateStore<String>,
    governor::clock::DefaultClock,
>;

/// One semaphore per data plane endpoint (origin).
type Slots = std::sync::Mutex<HashMap<String, Arc<tokio::sync::Semaphore>>>;

/// Politeness limits shared by every call of one `HttpClient`.
#[derive(Default)]
struct Limits {
    /// Requests per second per (control plane endpoint, credential).
    control: Option<KeyedLimiter>,
    /// Calls in flight per data plane endpoint.
    data: Option<(usize, Slots)>,
}

impl Limits {
    async fn admit(
        &self,
        plane: Plane,
        url: &Url,
        token: &Token,
    ) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let origin = url.origin().ascii_serialization();
        match plane {
            Plane::Control => {
                if let Some(limiter) = &self.control {
                    // the credential is part of the key as a hash: never kept in clear
                    let mut h = std::collections::hash_map::DefaultHasher::new();
                    std::hash::Hash::hash(&token.0, &mut h);
                    let key = format!("{origin}|{:016x}", std::hash::Hasher::finish(&h));
                    limiter.until_key_ready(&key).await;
                }
                None
            }
            Plane::Data => {
                let (cap, slots) = self.data.as_ref()?;
                let semaphore = slots
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .entry(origin)
                    .or_insert_with(|| Arc::new(tokio::sync::Semaphore::new(*cap)))
                    .clone();
                semaphore.acquire_owned().await.ok()
            }
        }
    }
}

/// Shared HTTP client: connection pool, timeout, TLS roots, politeness limits.
#[derive(Clone)]
pub struct HttpClient {
    inner: reqwest::Client,
    timeout: Duration,
    observer: Option<Arc<dyn CallObserver>>,
    limits: Arc<Limits>,
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClient")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl HttpClient {
    /// `extra_ca_pem`: additional trusted roots (PEM bundle) for private gateways. TLS
    /// verification itself cannot be turned off.
    pub fn new(timeout: Duration, extra_ca_pem: Option<&[u8]>) -> Result<Self, reqwest::Error> {
        let mut builder = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("zilliz-operator/", env!("CARGO_PKG_VERSION")));
        if let Some(pem) = extra_ca_pem {
            for cert in reqwest::Certificate::from_pem_bundle(pem)? {
                builder = builder.add_root_certificate(cert);
            }
        }
        Ok(HttpClient {
            inner: builder.build()?,
            timeout,
            observer: None,
            limits: Arc::default(),
        })
    }

    /// Limits the control plane to `per_second` requests per endpoint and credential (bursts
    /// of the same size), and each data plane endpoint to `concurrency` calls in flight.
    pub fn with_limits(
        mut self,
        per_second: Option<std::num::NonZeroU32>,
        concurrency: Option<std::num::NonZeroUsize>,
    ) -> Self {
        self.limits = Arc::new(Limits {
            control: per_second
                .map(|r| governor::RateLimiter::hashmap(governor::Quota::per_second(r))),
            data: concurrency.map(|c| (c.get(), std::sync::Mutex::new(HashMap::new()))),
        });
        self
    }

    pub fn with_observer(mut self, observer: Arc<dyn CallObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    async fn call(
        &self,
        Op(operation, plane): Op,
        method: Method,
        url: Url,
        token: &Token,
        body: Option<Value>,
        envelope: Envelope,
    ) -> Result<Value, ApiError> {
        // Politeness first: wait for the control plane's token bucket, or for a free slot on the
        // data plane endpoint (held until the answer is read).
        let _slot = self.limits.admit(plane, &url, token).await;
        let started = std::time::Instant::now();
        let result = self
            .send(method, url, token, body, envelope)
            .await
            .map_err(|mut e| {
                // the message quotes the server; never let it carry the credential
                e.message = token.redact(&e.message);
                e
            });
        if let Some(obs) = &self.observer {
            let outcome = match &result {
                Ok(_) => "success",
                Err(e) => e.class.as_str(),
            };
            obs.observe(operation, outcome, started.elapsed());
        }
        result
    }

    async fn send(
        &self,
        method: Method,
        url: Url,
        token: &Token,
        body: Option<Value>,
        envelope: Envelope,
    ) -> Result<Value, ApiError> {
        let mut req = self
            .inner
            .request(method, url)
            .header(AUTHORIZATION, token.bearer()?)
            .header(reqwest::header::ACCEPT, "application/json")
            .header("Request-Timeout", self.timeout.as_secs().max(1).to_string());
        if let Some(body) = body {
            req = req
                .header(CONTENT_TYPE, "application/json")
                .body(body.to_string());
        }
        let mut resp = req.send().await.map_err(|e| transport_error(&e))?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(classify::parse_retry_after);
        let mut bytes = Vec::new();
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    let room = MAX_BODY.saturating_sub(bytes.len());
                    bytes.extend_from_slice(&chunk[..chunk.len().min(room)]);
                    if room <= chunk.len() {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    let mut err = transport_error(&e);
                    err.http_status = Some(status);
                    err.message = format!("answer cut off while reading its body: {}", err.message);
                    return Err(err);
                }
            }
        }
        classify_answer(token, envelope, status, retry_after, bytes)
    }
}

fn transport_error(e: &reqwest::Error) -> ApiError {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "transport error"
    };
    // reqwest's Display names the URL (no credentials in it) and the cause chain.
    let mut message = format!("{what}: {e}");
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        message.push_str(&format!(": {s}"));
        source = s.source();
    }
    ApiError::new(ErrorClass::Transient, message)
}

/// Joins a path onto a base URL that may itself carry a path prefix (gateways).
fn join(base: &Url, path: &str) -> Url {
    let mut url = base.clone();
    let prefix = base.path().trim_end_matches('/');
    url.set_path(&format!("{prefix}{path}"));
    url
}

/// What a cluster describe (or an entry of a cluster list) says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusterInfo {
    /// CREATING, RUNNING, DELETING, DELETED, ...
    pub status: String,
    /// Data-plane endpoint, when the control plane gives one.
    pub connect_address: Option<String>,
    /// The cluster's id, when the answer names it.
    pub cluster_id: Option<String>,
    /// Its name (unique within a project, see `docs/zilliz-api.md`, "Creating and describing").
    pub cluster_name: Option<String>,
    pub project_id: Option<String>,
    /// Compute units, when the answer gives them.
    pub cu_size: Option<u32>,
    pub replica: Option<u32>,
}

impl ClusterInfo {
    /// Reads a describe's `data` or a list entry (`status` empty when it has none).
    fn read(data: &Value) -> ClusterInfo {
        let text = |key: &str| {
            data.get(key)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let number = |key: &str| {
            data.get(key)
                .and_then(Value::as_u64)
                .and_then(|n| u32::try_from(n).ok())
        };
        ClusterInfo {
            status: text("status").unwrap_or_default(),
            connect_address: text("connectAddress"),
            cluster_id: text("clusterId"),
            cluster_name: text("clusterName"),
            project_id: text("projectId"),
            cu_size: number("cuSize"),
            replica: number("replica"),
        }
    }
}

/// A cluster plan (`docs/zilliz-api.md`, "Creating and describing"): Standard and Enterprise
/// are dedicated (CU type and size, modify, suspend and resume); Serverless and Free are not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClusterPlan {
    Free,
    Serverless,
    Standard,
    Enterprise,
}

impl ClusterPlan {
    pub fn as_str(self) -> &'static str {
        match self {
            ClusterPlan::Free => "Free",
            ClusterPlan::Serverless => "Serverless",
            ClusterPlan::Standard => "Standard",
            ClusterPlan::Enterprise => "Enterprise",
        }
    }

    pub fn is_dedicated(self) -> bool {
        matches!(self, ClusterPlan::Standard | ClusterPlan::Enterprise)
    }
}

/// What a cluster create asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreateCluster {
    pub cluster_name: String,
    pub project_id: String,
    /// Sent on v2 only: a v1 control plane's host names the region.
    pub region_id: String,
    pub plan: ClusterPlan,
    /// Dedicated plans only.
    pub cu_type: Option<String>,
    /// Dedicated plans only.
    pub cu_size: Option<u32>,
}

/// A password the API showed once. Its `Debug` never shows the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    pub fn new(value: impl Into<String>) -> Self {
        Password(value.into())
    }

    /// The value, to be written where it belongs (a Secret) and nowhere else.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// The answer to a create: the new cluster's id and its admin credentials (shown only this
/// once).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreatedCluster {
    pub cluster_id: String,
    pub username: String,
    pub password: Password,
    pub prompt: String,
}

/// One change of a running dedicated cluster: the modify endpoint takes exactly one of these
/// per call (`docs/zilliz-api.md`, "Creating and describing").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Modify {
    CuSize(u32),
    Replica(u32),
}

/// The Zilliz Cloud control plane (clusters).
#[derive(Clone, Debug)]
pub struct ControlPlane {
    pub http: HttpClient,
    pub base: Url,
    pub flavour: Flavour,
    pub token: Token,
}

impl ControlPlane {
    /// Default base URL for a flavour: v2 is global, v1 is per region.
    pub fn default_base(flavour: Flavour, region: Option<&str>) -> Result<Url, String> {
        let raw = match flavour {
            Flavour::V2 => "https://api.cloud.zilliz.com".to_string(),
            Flavour::V1 => {
                let region = region.filter(|r| !r.is_empty()).ok_or(
                    "controlPlane.region is required for control plane v1 (its host is per region) unless baseUrl is set",
                )?;
                format!("https://controller.api.{region}.zillizcloud.com")
            }
        };
        Url::parse(&raw).map_err(|e| format!("invalid control plane URL {raw}: {e}"))
    }

    fn cluster_path(&self, cluster_id: &str, suffix: &str) -> Url {
        let v = match self.flavour {
            Flavour::V1 => "v1",
            Flavour::V2 => "v2",
        };
        let mut url = join(&self.base, &format!("/{v}/clusters/"));
        // push the id as one escaped segment so it can never change the path
        if let Ok(mut segs) = url.path_segments_mut() {
            segs.pop_if_empty().push(cluster_id);
            if !suffix.is_empty() {
                segs.push(suffix);
            }
        }
        url
    }

    pub async fn drop_cluster(&self, cluster_id: &str) -> Result<(), ApiError> {
        let url = self.cluster_path(cluster_id, "drop");
        self.http
            .call(
                Op("cluster.drop", Plane::Control),
                Method::DELETE,
                url,
                &self.token,
                None,
                self.flavour.envelope(),
            )
            .await
            .map(|_| ())
    }

    pub async fn describe_cluster(&self, cluster_id: &str) -> Result<ClusterInfo, ApiError> {
        let url = self.cluster_path(cluster_id, "");
        let data = self
            .http
            .call(
                Op("cluster.describe", Plane::Control),
                Method::GET,
                url,
                &self.token,
                None,
                self.flavour.envelope(),
            )
            .await?;
        let info = ClusterInfo::read(&data);
        if info.status.is_empty() {
            return Err(ApiError::new(
                ErrorClass::Unknown,
                "cluster describe answered without data.status",
            ));
        }
        Ok(info)
    }

    /// Creates a cluster: v2 `createDedicated`, `createServerless` or `createFree` by plan, v1
    /// `create` (`docs/zilliz-api.md`, "Creating and describing"). There is no idempotency
    /// token: an error that is not a refusal by the API itself (a timeout, a 5xx, a reset) may
    /// hide a cluster that was created; see `kinds::cluster::create_once`.
    pub async fn create_cluster(&self, req: &CreateCluster) -> Result<CreatedCluster, ApiError> {
        let mut body = json!({
            "clusterName": req.cluster_name,
            "projectId": req.project_id,
        });
        let dedicated = req.plan.is_dedicated();
        if dedicated || self.flavour == Flavour::V1 {
            body["plan"] = json!(req.plan.as_str());
        }
        if dedicated {
            if let Some(t) = &req.cu_type {
                body["cuType"] = json!(t);
            }
            if let Some(n) = req.cu_size {
                body["cuSize"] = json!(n);
            }
        }
        let path = match (self.flavour, req.plan) {
            (Flavour::V1, _) => "/v1/clusters/create",
            (Flavour::V2, ClusterPlan::Free) => "/v2/clusters/createFree",
            (Flavour::V2, ClusterPlan::Serverless) => "/v2/clusters/createServerless",
            (Flavour::V2, _) => "/v2/clusters/createDedicated",
        };
        if self.flavour == Flavour::V2 {
            body["regionId"] = json!(req.region_id);
        }
        let data = self
            .http
            .call(
                Op("cluster.create", Plane::Control),
                Method::POST,
                join(&self.base, path),
                &self.token,
                Some(body),
                self.flavour.envelope(),
            )
            .await?;
        let text = |key: &str| {
            data.get(key)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let cluster_id = text("clusterId");
        if cluster_id.is_empty() {
            // the create may have happened: never read this as a refusal
            return Err(ApiError::new(
                ErrorClass::Unknown,
                "the cluster create was accepted without a clusterId; the cluster may exist",
            ));
        }
        Ok(CreatedCluster {
            cluster_id,
            username: text("username"),
            password: Password(text("password")),
            prompt: text("prompt"),
        })
    }

    /// Resizes a running dedicated cluster: one change per call, as the API requires.
    pub async fn modify_cluster(&self, cluster_id: &str, change: Modify) -> Result<(), ApiError> {
        let body = match change {
            Modify::CuSize(n) => json!({"cuSize": n}),
            Modify::Replica(n) => json!({"replica": n}),
        };
        self.cluster_action("cluster.modify", cluster_id, "modify", body)
            .await
    }

    /// Suspends a running dedicated cluster (it goes SUSPENDING, then SUSPENDED).
    pub async fn suspend_cluster(&self, cluster_id: &str) -> Result<(), ApiError> {
        self.cluster_action("cluster.suspend", cluster_id, "suspend", json!({}))
            .await
    }

    /// Resumes a suspended dedicated cluster (it goes RESUMING, then RUNNING).
    pub async fn resume_cluster(&self, cluster_id: &str) -> Result<(), ApiError> {
        self.cluster_action("cluster.resume", cluster_id, "resume", json!({}))
            .await
    }

    async fn cluster_action(
        &self,
        operation: &'static str,
        cluster_id: &str,
        action: &str,
        body: Value,
    ) -> Result<(), ApiError> {
        let url = self.cluster_path(cluster_id, action);
        self.http
            .call(
                Op(operation, Plane::Control),
                Method::POST,
                url,
                &self.token,
                Some(body),
                self.flavour.envelope(),
            )
            .await
            .map(|_| ())
    }

    /// The clusters named `name` in project `project_id`, read from every page of the list as
    /// [`ControlPlane::list_clusters`] reads it (an incomplete list is an error, never a shorter
    /// answer), `DELETED` ones left out. A name is unique in a project, so more than one match
    /// means something the caller must not guess about.
    pub async fn find_clusters_by_name(
        &self,
        project_id: &str,
        name: &str,
    ) -> Result<Vec<ClusterInfo>, ApiError> {
        let all = self.list_clusters().await?;
        let mut found = Vec::new();
        for c in all {
            if c.cluster_name.is_none() || c.project_id.is_none() {
                return Err(unlisted(format!(
                    "the cluster list does not name the project and name of cluster {}",
                    c.cluster_id.as_deref().unwrap_or_default()
                )));
            }
            if c.cluster_name.as_deref() == Some(name)
                && c.project_id.as_deref() == Some(project_id)
                && !c.status.eq_ignore_ascii_case("DELETED")
            {
                found.push(c);
            }
        }
        Ok(found)
    }

    /// The ids of [`ControlPlane::list_clusters`].
    pub async fn list_cluster_ids(&self) -> Result<Vec<String>, ApiError> {
        Ok(self
            .list_clusters()
            .await?
            .into_iter()
            .filter_map(|c| c.cluster_id)
            .collect())
    }

    /// Lists the clusters these credentials can see, every page of them: proves the
    /// credentials work, and is what confirms an ambiguous "not found or no permission"
    /// (Zilliz 80020), so a cluster missing from the answer must really be missing.
    ///
    /// Pages of [`LIST_PAGE_SIZE`] (`pageSize` and `currentPage`; v1 names the page `current`)
    /// are read until `count` clusters were read or a page comes back empty, at most
    /// [`LIST_MAX_PAGES`] pages (a page shorter than asked does not end the list by itself: a
    /// server may use a smaller page size). Anything that does not add up is an error of
    /// class `Unknown` ("cannot confirm"), never a shorter list: no `clusters` array, no
    /// integer `count` or one that changes between pages, an entry without a `clusterId`, a
    /// page that is not the one asked for, the same cluster twice, fewer or more clusters
    /// than `count`, more clusters than the pages allowed, or a later page that fails.
    pub async fn list_clusters(&self) -> Result<Vec<ClusterInfo>, ApiError> {
        let (path, page_param) = match self.flavour {
            Flavour::V1 => ("/v1/clusters", "current"),
            Flavour::V2 => ("/v2/clusters", "currentPage"),
        };
        let mut ids: Vec<String> = Vec::new();
        let mut clusters: Vec<ClusterInfo> = Vec::new();
        let mut total: Option<u64> = None;
        let mut pages_read = 0;
        for page in 1..=LIST_MAX_PAGES {
            pages_read = page;
            let mut url = join(&self.base, path);
            url.query_pairs_mut()
                .append_pair("pageSize", &LIST_PAGE_SIZE.to_string())
                .append_pair(page_param, &page.to_string());
            let data = self
                .http
                .call(
                    Op("cluster.list", Plane::Control),
                    Method::GET,
                    url,
                    &self.token,
                    None,
                    self.flavour.envelope(),
                )
                .await
                .map_err(|e| {
                    if page == 1 {
                        e
                    } else {
                        ApiError {
                            class: ErrorClass::Unknown,
                            message: format!(
                                "listing clusters failed on page {page}, so the list is incomplete: {}",
                                e.message
                            ),
                            ..e
                        }
                    }
                })?;
            let (count, page_clusters) = parse_cluster_page(&data, page)?;
            match total {
                None if count > (LIST_MAX_PAGES * LIST_PAGE_SIZE) as u64 => {
                    return Err(unlisted(format!(
                        "the cluster list counts {count} clusters, more than the {} this operator reads",
                        LIST_MAX_PAGES * LIST_PAGE_SIZE
                    )));
                }
                None => total = Some(count),
                Some(t) if t != count => {
                    return Err(unlisted(format!(
                        "the cluster list changed while it was read (count {t}, then {count} on page {page})"
                    )));
                }
                Some(_) => {}
            }
            let empty = page_clusters.is_empty();
            for cluster in page_clusters {
                let id = cluster.cluster_id.clone().unwrap_or_default();
                if ids.contains(&id) {
                    return Err(unlisted(format!(
                        "the cluster list names cluster {id} twice (page {page})"
                    )));
                }
                ids.push(id);
                clusters.push(cluster);
            }
            if empty || ids.len() as u64 >= count {
                break;
            }
        }
        let count = total.unwrap_or_default();
        if ids.len() as u64 != count {
            return Err(unlisted(format!(
                "the cluster list counts {count} clusters, but {} were read up to page {pages_read}",
                ids.len()
            )));
        }
        Ok(clusters)
    }
}

/// Clusters asked for per page of a cluster list.
pub const LIST_PAGE_SIZE: usize = 100;
/// Most pages of a cluster list read (so at most 5,000 clusters per credential).
pub const LIST_MAX_PAGES: usize = 50;

fn unlisted(why: String) -> ApiError {
    ApiError::new(
        ErrorClass::Unknown,
        format!("cannot confirm from the cluster list: {why}"),
    )
}

/// `count` and the clusters of one page of a cluster list (`data` of the envelope); each has
/// its `cluster_id`.
fn parse_cluster_page(data: &Value, page: usize) -> Result<(u64, Vec<ClusterInfo>), ApiError> {
    let count = data
        .get("count")
        .and_then(Value::as_u64)
        .ok_or_else(|| unlisted(format!("page {page} has no integer count")))?;
    if let Some(current) = data.get("currentPage")
        && current.as_u64() != Some(page as u64)
    {
        return Err(unlisted(format!(
            "asked for page {page}, the answer is page {current}"
        )));
    }
    let clusters = data
        .get("clusters")
        .and_then(Value::as_array)
        .ok_or_else(|| unlisted(format!("page {page} has no clusters array")))?;
    let clusters = clusters
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let id = c
                .get("clusterId")
                .and_then(Value::as_str)
                .filter(|id| !id.is_empty())
                .ok_or_else(|| unlisted(format!("entry {i} of page {page} has no clusterId")))?;
            Ok(ClusterInfo {
                cluster_id: Some(id.to_string()),
                ..ClusterInfo::read(c)
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    Ok((count, clusters))
}

/// What [`DataPlane::create`] creates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Creates {
    Collection,
    Partition,
    Index,
}

/// A Milvus / Zilliz data-plane endpoint.
#[derive(Clone, Debug)]
pub struct DataPlane {
    pub http: HttpClient,
    pub endpoint: Url,
    pub flavour: Flavour,
    pub token: Token,
}

impl DataPlane {
    async fn v2(
        &self,
        operation: &'static str,
        path: &str,
        body: Value,
    ) -> Result<Value, ApiError> {
        if self.flavour != Flavour::V2 {
            return Err(ApiError::new(
                ErrorClass::Unsupported,
                format!(
                    "{operation} needs the v2 data plane (REST v1 has no such endpoint); set the collection's apiVersion to v2"
                ),
            ));
        }
        let url = join(&self.endpoint, path);
        self.http
            .call(
                Op(operation, Plane::Data),
                Method::POST,
                url,
                &self.token,
                Some(body),
                Envelope::V2,
            )
            .await
    }

    pub async fn drop_collection(&self, db: &str, collection: &str) -> Result<(), ApiError> {
        let body = json!({"collectionName": collection, "dbName": db});
        match self.flavour {
            Flavour::V1 => {
                let url = join(&self.endpoint, "/v1/vector/collections/drop");
                self.http
                    .call(
                        Op("collection.drop", Plane::Data),
                        Method::POST,
                        url,
                        &self.token,
                        Some(body),
                        Envelope::V1,
                    )
                    .await
                    .map(|_| ())
            }
            Flavour::V2 => self
                .v2("collection.drop", "/v2/vectordb/collections/drop", body)
                .await
                .map(|_| ()),
        }
    }

    pub async fn has_collection(&self, db: &str, collection: &str) -> Result<bool, ApiError> {
        match self.flavour {
            Flavour::V1 => {
                let mut url = join(&self.endpoint, "/v1/vector/collections/describe");
                url.query_pairs_mut()
                    .append_pair("collectionName", collection)
                    .append_pair("dbName", db);
                let res = self
                    .http
                    .call(
                        Op("collection.describe", Plane::Data),
                        Method::GET,
                        url,
                        &self.token,
                        None,
                        Envelope::V1,
                    )
                    .await;
                absent_is_false(res)
            }
            Flavour::V2 => {
                let data = self
                    .v2(
                        "collection.has",
                        "/v2/vectordb/collections/has",
                        json!({"collectionName": collection, "dbName": db}),
                    )
                    .await?;
                has_flag(&data, &self.token)
            }
        }
    }

    /// Creates a resource from the request its kind built (`docs/zilliz-api.md`, "Creating and
    /// describing"): a collection (v1 or v2), a partition or an index (v2).
    pub async fn create(&self, what: Creates, body: Value) -> Result<(), ApiError> {
        match (what, self.flavour) {
            (Creates::Collection, Flavour::V1) => {
                let url = join(&self.endpoint, "/v1/vector/collections/create");
                self.http
                    .call(
                        Op("collection.create", Plane::Data),
                        Method::POST,
                        url,
                        &self.token,
                        Some(body),
                        Envelope::V1,
                    )
                    .await
                    .map(|_| ())
            }
            (Creates::Collection, Flavour::V2) => self
                .v2("collection.create", "/v2/vectordb/collections/create", body)
                .await
                .map(|_| ()),
            (Creates::Partition, _) => self
                .v2("partition.create", "/v2/vectordb/partitions/create", body)
                .await
                .map(|_| ()),
            (Creates::Index, _) => self
                .v2("index.create", "/v2/vectordb/indexes/create", body)
                .await
                .map(|_| ()),
        }
    }

    /// Describes a collection: its fields, load state, shards and properties. A missing
    /// collection answers 100 (`ErrorClass::NotFound`), a missing database 800.
    pub async fn describe_collection(
        &self,
        db: &str,
        collection: &str,
    ) -> Result<CollectionInfo, ApiError> {
        let data = match self.flavour {
            Flavour::V1 => {
                let mut url = join(&self.endpoint, "/v1/vector/collections/describe");
                url.query_pairs_mut()
                    .append_pair("collectionName", collection)
                    .append_pair("dbName", db);
                self.http
                    .call(
                        Op("collection.describe", Plane::Data),
                        Method::GET,
                        url,
                        &self.token,
                        None,
                        Envelope::V1,
                    )
                    .await?
            }
            Flavour::V2 => {
                self.v2(
                    "collection.describe",
                    "/v2/vectordb/collections/describe",
                    json!({"collectionName": collection, "dbName": db}),
                )
                .await?
            }
        };
        describe::collection_info(&data)
    }

    /// Describes an index: type, metric and build progress. A missing index answers 700.
    pub async fn describe_index(
        &self,
        db: &str,
        collection: &str,
        index: &str,
    ) -> Result<IndexInfo, ApiError> {
        let data = self
            .v2(
                "index.describe",
                "/v2/vectordb/indexes/describe",
                json!({"collectionName": collection, "dbName": db, "indexName": index}),
            )
            .await?;
        describe::index_info(&data)
    }

    /// Loads a collection (v2; REST v1 has no load endpoint).
    pub async fn load_collection(&self, db: &str, collection: &str) -> Result<(), ApiError> {
        self.v2(
            "collection.load",
            "/v2/vectordb/collections/load",
            json!({"collectionName": collection, "dbName": db}),
        )
        .await
        .map(|_| ())
    }

    /// Alters a collection's properties in place (v2 `collections/alter_properties`).
    pub async fn alter_collection(
        &self,
        db: &str,
        collection: &str,
        properties: Value,
    ) -> Result<(), ApiError> {
        self.v2(
            "collection.alter",
            "/v2/vectordb/collections/alter_properties",
            json!({"collectionName": collection, "dbName": db, "properties": properties}),
        )
        .await
        .map(|_| ())
    }

    pub async fn release_collection(&self, db: &str, collection: &str) -> Result<(), ApiError> {
        self.v2(
            "collection.release",
            "/v2/vectordb/collections/release",
            json!({"collectionName": collection, "dbName": db}),
        )
        .await
        .map(|_| ())
    }

    pub async fn has_partition(
        &self,
        db: &str,
        collection: &str,
        partition: &str,
    ) -> Result<bool, ApiError> {
        let data = self
            .v2(
                "partition.has",
                "/v2/vectordb/partitions/has",
                json!({"collectionName": collection, "dbName": db, "partitionName": partition}),
            )
            .await?;
        has_flag(&data, &self.token)
    }

    pub async fn release_partition(
        &self,
        db: &str,
        collection: &str,
        partition: &str,
    ) -> Result<(), ApiError> {
        self.v2(
            "partition.release",
            "/v2/vectordb/partitions/release",
            json!({"collectionName": collection, "dbName": db, "partitionNames": [partition]}),
        )
        .await
        .map(|_| ())
    }

    pub async fn drop_partition(
        &self,
        db: &str,
        collection: &str,
        partition: &str,
    ) -> Result<(), ApiError> {
        self.v2(
            "partition.drop",
            "/v2/vectordb/partitions/drop",
            json!({"collectionName": collection, "dbName": db, "partitionName": partition}),
        )
        .await
        .map(|_| ())
    }

    pub async fn has_index(
        &self,
        db: &str,
        collection: &str,
        index: &str,
    ) -> Result<bool, ApiError> {
        let res = self
            .v2(
                "index.describe",
                "/v2/vectordb/indexes/describe",
                json!({"collectionName": collection, "dbName": db, "indexName": index}),
            )
            .await;
        // only "index not found" (700) says the index is absent; a missing collection (100)
        // or database (800) is an error the caller tells apart
        match res {
            Ok(_) => Ok(true),
            Err(e) if e.class == ErrorClass::NotFound && e.code == Some(700) => Ok(false),
            Err(e) => Err(e),
        }
    }

    pub async fn drop_index(
        &self,
        db: &str,
        collection: &str,
        index: &str,
    ) -> Result<(), ApiError> {
        self.v2(
            "index.drop",
            "/v2/vectordb/indexes/drop",
            json!({"collectionName": collection, "dbName": db, "indexName": index}),
        )
        .await
        .map(|_| ())
    }
}

fn absent_is_false(res: Result<Value, ApiError>) -> Result<bool, ApiError> {
    match res {
        Ok(_) => Ok(true),
        Err(e) if e.class == ErrorClass::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

fn has_flag(data: &Value, token: &Token) -> Result<bool, ApiError> {
    data.get("has").and_then(|h| h.as_bool()).ok_or_else(|| {
        ApiError::new(
            ErrorClass::Unknown,
            // the answer is quoted: never with the credential in it
            token.redact(&format!("expected data.has in the answer, got {data}")),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_debug_is_redacted() {
        let t = Token::new("root:Milvus\n");
        assert_eq!(format!("{t:?}"), "Token(<redacted>)");
        assert_eq!(t, Token::new("root:Milvus"));
    }

    #[test]
    fn token_redaction() {
        let t = Token::new("root:Sup3rSecret");
        assert_eq!(
            t.redact("bad token Bearer root:Sup3rSecret, password Sup3rSecret"),
            "bad token Bearer <redacted>, password <redacted>"
        );
        assert_eq!(Token::new("").redact("text"), "text");
        // a long API key (no user part)
        assert_eq!(
            Token::new("0123456789abcdef").redact("key 0123456789abcdef is illegal"),
            "key <redacted> is illegal"
        );
        // JSON-escaped echo of a password with a quote
        assert_eq!(
            Token::new(r#"u:pa"ss\word"#).redact(r#"{"p":"pa\"ss\\word"}"#),
            r#"{"p":"<redacted>"}"#
        );
    }

    #[test]
    fn short_passwords_withhold_the_whole_message() {
        // the password alone, whatever its length, never comes through
        for (token, text) in [
            ("root:Milvus", "Milvus says no"),
            ("root:abc", "user root password abc rejected"),
            ("u:x", "anything with an x"),
            ("u:on", "collection not found"),
            ("u:red", "a <redacted> marker would spell it"),
            ("k", "k"),
        ] {
            let t = Token::new(token);
            assert_eq!(t.redact(text), WITHHELD_MESSAGE, "{token}: {text}");
        }
        // a short password that does not appear leaves the text alone
        assert_eq!(
            Token::new("root:Milvus").redact("collection not found"),
            "collection not found"
        );
        // a long secret that a replacement would spell again: withheld
        let t = Token::new("u:d>foobar");
        assert_eq!(t.redact("d>foobarfoobar"), WITHHELD_MESSAGE);
        // the marker itself spells an 8-character password
        assert_eq!(
            Token::new("u:redacted").redact("pw redacted"),
            WITHHELD_MESSAGE
        );
    }

    #[test]
    fn body_redaction_happens_before_any_excerpt() {
        let t = Token::new("root:Sup3rSecret");
        // the echo straddles the 200-character excerpt of a non-JSON body
        let page = format!("<html>{}Bearer root:Sup3rSecret</html>", "x".repeat(190));
        let err = classify_answer(&t, Envelope::V2, 502, None, page.into_bytes()).unwrap_err();
        assert!(!err.message.contains("Sup3r"), "{}", err.message);
        assert!(!err.message.contains("root:S"), "{}", err.message);
        assert_eq!(
            t.redact_body(b"a Sup3rSecret b root:Sup3rSecret".to_vec()),
            (b"a <redacted> b <redacted>".to_vec(), false)
        );
        assert_eq!(
            Token::new("").redact_body(b"x".to_vec()),
            (b"x".to_vec(), false)
        );
        // a short password straddling the cut: the body held it, so the message is withheld
        let t = Token::new("root:abcdef");
        let page = format!("<html>{}abcdef</html>", "x".repeat(192));
        let err = classify_answer(&t, Envelope::V2, 502, None, page.into_bytes()).unwrap_err();
        assert_eq!(err.message, WITHHELD_MESSAGE);
        assert_eq!(err.class, ErrorClass::Transient);
    }

    #[test]
    fn a_short_password_does_not_change_the_classification() {
        // "on" is in "collection": the message is withheld, the answer still means "gone"
        let t = Token::new("root:on");
        let body = br#"{"code":100,"message":"collection not found"}"#.to_vec();
        let err = classify_answer(&t, Envelope::V1, 200, None, body).unwrap_err();
        assert_eq!(err.class, ErrorClass::NotFound);
        assert_eq!(err.code, Some(100));
        assert_eq!(err.message, WITHHELD_MESSAGE);
        // and success stays success
        let ok = br#"{"code":0,"data":{"has":true}}"#.to_vec();
        assert!(classify_answer(&t, Envelope::V2, 200, None, ok).is_ok());
    }

    #[test]
    fn cluster_ids_are_one_escaped_segment() {
        let cp = ControlPlane {
            http: HttpClient::new(Duration::from_secs(1), None).unwrap(),
            base: Url::parse("https://gw.example/zilliz/").unwrap(),
            flavour: Flavour::V2,
            token: Token::new("k"),
        };
        assert_eq!(
            cp.cluster_path("in01-abc", "drop").as_str(),
            "https://gw.example/zilliz/v2/clusters/in01-abc/drop"
        );
        assert_eq!(
            cp.cluster_path("../x?y", "drop").as_str(),
            "https://gw.example/zilliz/v2/clusters/..%2Fx%3Fy/drop"
        );
    }

    #[test]
    fn default_bases() {
        assert_eq!(
            ControlPlane::default_base(Flavour::V2, None)
                .unwrap()
                .as_str(),
            "https://api.cloud.zilliz.com/"
        );
        assert_eq!(
            ControlPlane::default_base(Flavour::V1, Some("gcp-us-west1"))
                .unwrap()
                .as_str(),
            "https://controller.api.gcp-us-west1.zillizcloud.com/"
        );
        assert!(ControlPlane::default_base(Flavour::V1, None).is_err());
    }
}
