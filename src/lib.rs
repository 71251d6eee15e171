//! zilliz-operator: keeps Zilliz Cloud clusters and Milvus collections, partitions and indexes in
//! step with Kubernetes custom resources, and drops them safely when those are deleted.

pub mod api;
pub mod backoff;
pub mod controller;
pub mod crd;
pub mod decide;
pub mod doctor;
pub mod events;
pub mod external;
pub mod kinds;
pub mod metrics;
pub mod operator;
pub mod resolve;

#[cfg(test)]
mod fixtures;
pub mod leader;
#[cfg(test)]
mod reconcile_tests;
pub mod secrets;
pub mod stores;
