//! Prometheus metrics. Labels are bounded: kinds, results, operations, outcome classes — never
//! object names.

use crate::api::CallObserver;
use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram, info::Info},
    registry::Registry,
};
use std::time::Duration;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindResult {
    pub kind: &'static str,
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabels {
    pub operation: &'static str,
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabel {
    pub operation: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RetryLabels {
    pub kind: &'static str,
    pub reason: &'static str,
}

fn latency_buckets() -> Histogram {
    Histogram::new([
        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    ])
}

/// All metrics of the operator.
pub struct Metrics {
    registry: Registry,
    pub reconciles: Family<KindResult, Counter>,
    pub reconcile_duration: Family<KindLabel, Histogram>,
    pub api_requests: Family<CallLabels, Counter>,
    pub api_duration: Family<OperationLabel, Histogram>,
    pub drop_retries: Family<RetryLabels, Counter>,
    pub pending_deletion: Family<KindLabel, Gauge>,
    pub oldest_pending_deletion_seconds: Family<KindLabel, Gauge>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("zilliz_operator");
        let reconciles = Family::<KindResult, Counter>::default();
        registry.register(
            "reconciles",
            "Reconciles by kind and result",
            reconciles.clone(),
        );
        let reconcile_duration =
            Family::<KindLabel, Histogram>::new_with_constructor(latency_buckets);
        registry.register(
            "reconcile_duration_seconds",
            "Reconcile duration by kind",
            reconcile_duration.clone(),
        );
        let api_requests = Family::<CallLabels, Counter>::default();
        registry.register(
            "api_requests",
            "Zilliz / Milvus API requests by operation and outcome class",
            api_requests.clone(),
        );
        let api_duration =
            Family::<OperationLabel, Histogram>::new_with_constructor(latency_buckets);
        registry.register(
            "api_request_duration_seconds",
            "Zilliz / Milvus API request latency by operation",
            api_duration.clone(),
        );
        let drop_retries = Family::<RetryLabels, Counter>::default();
        registry.register(
            "drop_retries",
            "Drops that did not finish and were scheduled again, by kind and condition reason",
            drop_retries.clone(),
        );
        let pending_deletion = Family::<KindLabel, Gauge>::default();
        registry.register(
            "pending_deletion_objects",
            "Objects being deleted whose finalizer is still held",
            pending_deletion.clone(),
        );
        let oldest_pending_deletion_seconds = Family::<KindLabel, Gauge>::default();
        registry.register(
            "oldest_pending_deletion_age_seconds",
            "Age of the oldest deletion still waiting for its drop (alert on this for stuck finalizers)",
            oldest_pending_deletion_seconds.clone(),
        );
        registry.register(
            "build",
            "Build information",
            Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
        );
        Metrics {
            registry,
            reconciles,
            reconcile_duration,
            api_requests,
            api_duration,
            drop_retries,
            pending_deletion,
            oldest_pending_deletion_seconds,
        }
    }
}

impl Metrics {
    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // writing into a String cannot fail
        let _ = encode(&mut out, &self.registry);
        out
    }
}

impl CallObserver for Metrics {
    fn observe(&self, operation: &'static str, outcome: &'static str, elapsed: Duration) {
        self.api_requests
            .get_or_create(&CallLabels { operation, outcome })
            .inc();
        self.api_duration
            .get_or_create(&OperationLabel { operation })
            .observe(elapsed.as_secs_f64());
    }
}
