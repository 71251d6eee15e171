//! Helpers shared by the integration tests (`mod support;`).
//!
//! * [`milvus`]: a real Milvus 2.3.5 server (REST v1) per test, provisioned on demand.

pub mod milvus;
