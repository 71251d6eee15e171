//! `cargo run --release -p zilliz-devkit --bin bench -- --objects N [--latency 5ms]
//! [--kinds all|collection|cluster|partition|index] [--concurrency 16]`: the scale benchmark
//! (see `zilliz_devkit::bench`). It reports, it does not pass or fail. Without `--latency` it
//! runs 5 ms and 50 ms one after the other. Uses `target/release/zilliz-operator` (next to this
//! binary), built with `cargo build --release --bin zilliz-operator` when missing or when
//! `--rebuild` is given; `--operator PATH` runs another one. `--delete collection` deletes with
//! one deletecollection call per kind (a namespace teardown) instead of a call per object.
//! `--deletion-policy Orphan` gives every object `Orphan`: no Zilliz calls at all, so the
//! teardown measures the Kubernetes side alone (the floor any operator meets on this machine).
//! `--tenants T` spreads the objects over T namespaces that look alike (the same names in each,
//! each tenant in a database of its own), as a Kustomize base applied per tenant.
//! `--restart` stops the operator once all is Ready, deletes everything while it is down and
//! starts a new one: the time from its start to the first drop and to the last object gone.
//! `--create` runs the creation phase first: the operator starts, then the objects are applied
//! with what creates their resources, of which the fake holds one in four (adopted, never
//! created); apply → all Ready, create calls per absent and per existing resource, and the calls
//! of one resync interval after Ready (`--resync-interval`, 10 s with `--create`, else 1 h).

use std::{
    path::PathBuf,
    process::{Command, ExitCode},
    time::{Duration, SystemTime},
};
use zilliz_devkit::{
    bench::{self, Config, Kind, parse_duration},
    workspace_root,
};

const USAGE: &str =
    "usage: bench [--objects N] [--latency 5ms]... [--kinds all|collection|cluster|partition|index]
             [--concurrency 16] [--client-concurrency 32] [--poll-base 20ms] [--timeout 600s]
             [--control-plane-rps N] [--data-plane-concurrency N] (passed to the operator
             when given; 0 turns a limit off) [--delete each|collection]
             [--deletion-policy Delete|Orphan] [--tenants T] [--restart] [--create]
             [--resync-interval 10s] [--operator PATH] [--rebuild]";

fn operator_binary(explicit: Option<PathBuf>, rebuild: bool) -> Result<PathBuf, String> {
    if let Some(p) = explicit {
        return p
            .is_file()
            .then_some(p.clone())
            .ok_or_else(|| format!("no operator binary at {}", p.display()));
    }
    let exe = std::env::current_exe().map_err(|e| format!("where am I? {e}"))?;
    let dir = exe
        .parent()
        .ok_or_else(|| format!("{} has no directory", exe.display()))?;
    // next to this binary when it is a release build, else the workspace's target/release
    let release_dir = if dir.file_name().is_some_and(|n| n == "release") {
        dir.to_path_buf()
    } else {
        workspace_root().join("target").join("release")
    };
    let bin = release_dir.join("zilliz-operator");
    if bin.is_file() && !rebuild {
        return Ok(bin);
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!("bench: cargo build --release --bin zilliz-operator");
    let status = Command::new(&cargo)
        .args(["build", "--release", "--bin", "zilliz-operator"])
        .current_dir(workspace_root())
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() || !bin.is_file() {
        return Err(format!(
            "cargo build --release --bin zilliz-operator: {status}; expected {}",
            bin.display()
        ));
    }
    Ok(bin)
}

struct Args {
    objects: usize,
    latencies: Vec<Duration>,
    kinds: Vec<Kind>,
    concurrency: u16,
    client_concurrency: usize,
    poll_base: Duration,
    timeout: Duration,
    operator: Option<PathBuf>,
    rebuild: bool,
    control_plane_rps: Option<u32>,
    data_plane_concurrency: Option<usize>,
    delete_collection: bool,
    orphan: bool,
    tenants: usize,
    restart: bool,
    create: bool,
    resync_interval: Option<Duration>,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        objects: 1000,
        latencies: Vec::new(),
        kinds: Kind::ALL.to_vec(),
        concurrency: 16,
        client_concurrency: 32,
        poll_base: Duration::from_millis(20),
        timeout: Duration::from_secs(600),
        operator: None,
        rebuild: false,
        control_plane_rps: None,
        data_plane_concurrency: None,
        delete_collection: false,
        orphan: false,
        tenants: 1,
        restart: false,
        create: false,
        resync_interval: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--rebuild" {
            a.rebuild = true;
            continue;
        }
        if flag == "--restart" {
            a.restart = true;
            continue;
        }
        if flag == "--create" {
            a.create = true;
            continue;
        }
        if flag == "-h" || flag == "--help" {
            return Err(String::new());
        }
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = || format!("{flag} {value:?}: not understood");
        match flag.as_str() {
            "--objects" => a.objects = value.parse().map_err(|_| bad())?,
            "--latency" => a.latencies.push(parse_duration(&value).ok_or_else(bad)?),
            "--kinds" => a.kinds = Kind::parse(&value).ok_or_else(bad)?,
            "--concurrency" => a.concurrency = value.parse().map_err(|_| bad())?,
            "--client-concurrency" => a.client_concurrency = value.parse().map_err(|_| bad())?,
            "--poll-base" => a.poll_base = parse_duration(&value).ok_or_else(bad)?,
            "--resync-interval" => {
                a.resync_interval = Some(parse_duration(&value).ok_or_else(bad)?)
            }
            "--timeout" => a.timeout = parse_duration(&value).ok_or_else(bad)?,
            "--operator" => a.operator = Some(PathBuf::from(value)),
            "--control-plane-rps" => a.control_plane_rps = Some(value.parse().map_err(|_| bad())?),
            "--delete" => {
                a.delete_collection = match value.as_str() {
                    "each" => false,
                    "collection" => true,
                    _ => return Err(bad()),
                }
            }
            "--tenants" => a.tenants = value.parse().map_err(|_| bad())?,
            "--deletion-policy" => {
                a.orphan = match value.as_str() {
                    "Delete" | "delete" => false,
                    "Orphan" | "orphan" => true,
                    _ => return Err(bad()),
                }
            }
            "--data-plane-concurrency" => {
                a.data_plane_concurrency = Some(value.parse().map_err(|_| bad())?)
            }
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    if a.latencies.is_empty() {
        a.latencies = vec![Duration::from_millis(5), Duration::from_millis(50)];
    }
    if a.objects == 0 {
        return Err("--objects must be > 0".into());
    }
    if a.tenants == 0 || a.tenants > 9999 {
        return Err("--tenants must be 1 to 9999".into());
    }
    if a.create && a.restart {
        return Err("--create and --restart do not go together".into());
    }
    Ok(a)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("bench: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let bin = match operator_binary(args.operator.clone(), args.rebuild) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    let age = std::fs::metadata(&bin)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|m| SystemTime::now().duration_since(m).ok())
        .map(|d| format!("built {}s ago", d.as_secs()))
        .unwrap_or_default();
    println!("operator binary: {} ({age})", bin.display());
    let mut failed = false;
    for latency in &args.latencies {
        let cfg = Config {
            objects: args.objects,
            latency: *latency,
            kinds: args.kinds.clone(),
            concurrency: args.concurrency,
            client_concurrency: args.client_concurrency,
            poll_base: args.poll_base,
            timeout: args.timeout,
            operator_bin: bin.clone(),
            control_plane_rps: args.control_plane_rps,
            data_plane_concurrency: args.data_plane_concurrency,
            delete_collection: args.delete_collection,
            orphan: args.orphan,
            tenants: args.tenants,
            restart: args.restart,
            create: args.create,
            resync_interval: args.resync_interval.unwrap_or(if args.create {
                Duration::from_secs(10)
            } else {
                Duration::from_secs(3600)
            }),
        };
        println!(
            "\nrunning: {} objects, latency {latency:?}: {} run {}",
            cfg.objects,
            bin.display(),
            cfg.operator_args().join(" ")
        );
        let result = tokio::select! {
            r = bench::run(&cfg) => r,
            _ = tokio::signal::ctrl_c() => {
                eprintln!("\nbench: interrupted");
                return ExitCode::from(130);
            }
        };
        match result {
            Ok(report) => {
                print!("{report}");
                println!("BENCH {}", report.json());
            }
            Err(e) => {
                eprintln!("bench: run with latency {latency:?} failed: {e}");
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
