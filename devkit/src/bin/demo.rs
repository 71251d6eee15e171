//! `cargo run -p zilliz-devkit --bin demo`: the operator end to end on this machine, no cluster
//! needed (see `zilliz_devkit::demo`). Uses the `zilliz-operator` binary next to this one, and
//! builds it first (`cargo build --bin zilliz-operator`) when it is missing.

use serde_json::Value;
use std::{
    path::PathBuf,
    process::{Command, ExitCode, Stdio},
};
use zilliz_devkit::{demo, workspace_root};

fn operator_binary() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("where am I? {e}"))?;
    let dir = exe
        .parent()
        .ok_or_else(|| format!("{} has no directory", exe.display()))?;
    let bin = dir.join("zilliz-operator");
    if bin.is_file() {
        println!("operator binary: {}", bin.display());
        return Ok(bin);
    }
    let release = dir.file_name().is_some_and(|n| n == "release");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(&cargo);
    cmd.args([
        "build",
        "--bin",
        "zilliz-operator",
        "--message-format=json-render-diagnostics",
    ])
    .current_dir(workspace_root())
    .stdout(Stdio::piped());
    if release {
        cmd.arg("--release");
    }
    println!(
        "{} is missing: running `cargo build --bin zilliz-operator{}` first",
        bin.display(),
        if release { " --release" } else { "" }
    );
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {}: {e}", cargo.to_string_lossy()))?;
    if !out.status.success() {
        return Err(format!("cargo build --bin zilliz-operator: {}", out.status));
    }
    // where cargo put it (CARGO_TARGET_DIR, profiles): its compiler-artifact message says
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "zilliz-operator")
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .filter(|p| p.is_file())
        .inspect(|p| println!("operator binary: {}", p.display()))
        .ok_or_else(|| "cargo built zilliz-operator but did not say where".to_string())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let bin = match operator_binary() {
        Ok(bin) => bin,
        Err(e) => {
            eprintln!("demo: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Ctrl-C drops the demo future: its servers, the operator and Milvus stop with it.
    let result = tokio::select! {
        r = demo::run(&bin) => r,
        _ = tokio::signal::ctrl_c() => {
            eprintln!("\ndemo: interrupted, tearing down");
            return ExitCode::from(130);
        }
    };
    match result {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("\ndemo {e}");
            ExitCode::FAILURE
        }
    }
}
