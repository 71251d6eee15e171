//! Development kit of zilliz-operator: shared by the operator's integration tests and the
//! one-command demo (`cargo run -p zilliz-devkit --bin demo`). Never linked into the operator.
//!
//! * [`milvus`]: a real Milvus 2.3.5 server (REST v1), provisioned into `target/milvus-venv` on
//!   first use by `devkit/scripts/provision-milvus.sh`.
//! * [`zilliz_fake`]: a stateful HTTP fake of the Zilliz Cloud control plane and v2 data plane.
//! * [`e2e`]: the test Kubernetes API server, the operator binary as a subprocess, kubectl.
//! * [`demo`]: the newcomer's walk-through, built from the three above.
//! * [`bench`]: the scale benchmark (`cargo run --release -p zilliz-devkit --bin bench`).

pub mod bench;
pub mod demo;
pub mod e2e;
pub mod milvus;
pub mod zilliz_fake;

use std::path::{Path, PathBuf};

/// The workspace root (the parent of `devkit/`): `crds/`, `examples/` and `target/` live there.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("devkit/ has a parent")
        .to_path_buf()
}
