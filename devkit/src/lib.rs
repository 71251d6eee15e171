//! Development kit of zilliz-operator: shared by the operator's integration tests and the
//! one-command demo (`cargo run -p zilliz-devkit --bin demo`). Never linked into the operator.
//!
//! * [`milvus`]: a real Milvus 2.3.5 server (REST v1), provisioned into `target/milvus-venv` on
//!   first use by `devkit/scripts/provision-milvus.sh`.
//! * [`zilliz_fake`]: a stateful HTTP fake of the Zilliz Cloud control plane and v2 data plane.
//! * [`e2e`]: the test Kubernetes API server, the operator binary as a subprocess, kubectl.
//! * [`raw_http`]: a raw HTTP/1.1 server for broken answers (bodies cut short, gateway pages).
//! * [`tls`]: HTTPS in front of the fake, with a private CA made at test time.
//! * [`kube_proxy`]: a proxy in front of the test API server recording every request path.
//! * [`demo`]: the newcomer's walk-through, built from the three above.
//! * [`bench`]: the scale benchmark (`cargo run --release -p zilliz-devkit --bin bench`).

pub mod bench;
pub mod demo;
pub mod e2e;
pub mod kube_proxy;
pub mod milvus;
pub mod raw_http;
pub mod tls;
pub mod zilliz_fake;

use std::path::{Path, PathBuf};

/// The workspace root (the parent of `devkit/`): `crds/`, `examples/` and `target/` live there.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("devkit/ has a parent")
        .to_path_buf()
}
