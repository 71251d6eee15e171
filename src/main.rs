use clap::{Parser, Subcommand, ValueEnum};
use std::{
    net::SocketAddr,
    num::{NonZeroU32, NonZeroUsize},
    path::PathBuf,
    process::ExitCode,
    sync::Arc,
    time::Duration,
};
use tracing::{error, info};
use tracing_subscriber::{EnvFilter, fmt, prelude::*};
use zilliz_operator::{
    backoff::Backoff,
    controller::Settings,
    crd, doctor,
    leader::{self, LeaseConfig},
    metrics::Metrics,
    operator::{self, Health, Options},
};

/// Kubernetes operator for Zilliz Cloud clusters and Milvus collections, partitions and indexes.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print the four CustomResourceDefinitions as YAML.
    Crd,
    /// Run the operator against the current kubeconfig (or the in-cluster service account).
    Run(Box<RunArgs>),
    /// Explain every stuck object and the safe way out; check the installation. Exit status:
    /// 0 nothing stuck, 1 something stuck (or an installation check failed), 2 the doctor could
    /// not run.
    Doctor(DoctorArgs),
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum OutputFormat {
    Text,
    Json,
}

#[derive(clap::Args, Debug)]
struct DoctorArgs {
    /// Namespace to look in (default: the kubeconfig's).
    #[arg(short = 'n', long, conflicts_with = "all_namespaces")]
    namespace: Option<String>,
    /// Look in every namespace.
    #[arg(short = 'A', long)]
    all_namespaces: bool,
    /// Only these objects (of any of the four kinds).
    names: Vec<String>,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = OutputFormat::Text)]
    output: OutputFormat,
    /// An object not Ready (or deleted and waiting) for longer than this is stuck.
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    stuck_after: Duration,
    /// Also call the Zilliz / Milvus APIs, read-only, with each object's credentials, to show
    /// the external state (needs read access to the Secrets the objects name).
    #[arg(long)]
    probe: bool,
    /// Namespace the operator runs in (its leader Lease and ServiceAccount).
    #[arg(long, default_value = "zilliz-operator")]
    operator_namespace: String,
    /// The operator's ServiceAccount, whose RBAC is checked.
    #[arg(long, default_value = "zilliz-operator")]
    operator_service_account: String,
    /// Name of the leader Lease.
    #[arg(long, default_value = "zilliz-operator-leader")]
    lease_name: String,
    /// Timeout of each probe request.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    request_timeout: Duration,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(clap::Args, Debug)]
#[command(args_override_self = true)] // a later flag wins: wrappers can append overrides
struct RunArgs {
    /// Watch only this namespace (default: all namespaces).
    #[arg(long, env = "WATCH_NAMESPACE")]
    namespace: Option<String>,
    /// Reconciles running at once, per kind.
    #[arg(long, env = "MAX_CONCURRENT_RECONCILES", default_value_t = 16)]
    max_concurrent_reconciles: u16,
    /// Interval between observations of a healthy object (jittered by ±10 %).
    #[arg(long, env = "RESYNC_INTERVAL", default_value = "10m", value_parser = humantime::parse_duration)]
    resync_interval: Duration,
    /// Timeout of each Zilliz / Milvus API request (also sent as `Request-Timeout`).
    #[arg(long, env = "REQUEST_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    request_timeout: Duration,
    /// First retry delay of a failed drop (doubling, with full jitter).
    #[arg(long, env = "BACKOFF_BASE", default_value = "1s", value_parser = humantime::parse_duration)]
    backoff_base: Duration,
    /// Longest retry delay of a failed drop; terminal errors retry at about this pace.
    #[arg(long, env = "BACKOFF_CAP", default_value = "5m", value_parser = humantime::parse_duration)]
    backoff_cap: Duration,
    /// First delay between polls of an accepted cluster drop.
    #[arg(long, env = "POLL_BASE", default_value = "5s", value_parser = humantime::parse_duration)]
    poll_base: Duration,
    /// Longest delay between polls of an accepted cluster drop.
    #[arg(long, env = "POLL_CAP", default_value = "60s", value_parser = humantime::parse_duration)]
    poll_cap: Duration,
    /// PEM bundle of extra CA certificates to trust (private gateways). TLS verification cannot
    /// be turned off.
    #[arg(long, env = "CA_BUNDLE")]
    ca_bundle: Option<PathBuf>,
    /// Control plane requests per second, per endpoint and API key (a token bucket with bursts
    /// of the same size; Zilliz Cloud allows about 20 per second per key); 0 turns it off.
    #[arg(long, env = "CONTROL_PLANE_RPS", default_value_t = 10)]
    control_plane_rps: u32,
    /// Data plane calls in flight per endpoint (one Milvus or Zilliz cluster), at most; 0
    /// turns the cap off.
    #[arg(long, env = "DATA_PLANE_CONCURRENCY", default_value_t = 32)]
    data_plane_concurrency: usize,
    /// Log format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Address for /metrics, /healthz and /readyz; `off` to disable.
    #[arg(long, env = "METRICS_ADDR", default_value = "0.0.0.0:8080")]
    metrics_addr: String,
    /// Reconcile only while holding a coordination.k8s.io/v1 Lease (run several replicas).
    #[arg(long, env = "LEADER_ELECT", default_value_t = false)]
    leader_elect: bool,
    /// Name of the leader Lease.
    #[arg(long, env = "LEASE_NAME", default_value = "zilliz-operator-leader")]
    lease_name: String,
    /// Namespace of the leader Lease (the operator's own namespace).
    #[arg(long, env = "POD_NAMESPACE", default_value = "zilliz-operator")]
    lease_namespace: String,
    /// How long the lease stays valid after the leader's last renewal: a standby takes over
    /// within this time when the leader dies.
    #[arg(long, env = "LEASE_DURATION", default_value = "15s", value_parser = humantime::parse_duration)]
    lease_duration: Duration,
}

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    match format {
        LogFormat::Text => registry.with(fmt::layer()).init(),
        LogFormat::Json => registry
            .with(
                fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true),
            )
            .init(),
    }
}

async fn shutdown_signal(tx: tokio::sync::watch::Sender<bool>) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    error!(error = %e, "cannot listen for SIGTERM");
                    let _ = ctrl_c.await;
                    let _ = tx.send(true);
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    info!("shutting down: letting in-flight reconciles finish");
    let _ = tx.send(true);
}

async fn run(args: RunArgs) -> Result<(), String> {
    let metrics_addr = match args.metrics_addr.as_str() {
        "off" | "" => None,
        raw => Some(
            raw.parse::<SocketAddr>()
                .map_err(|e| format!("--metrics-addr {raw:?}: {e}"))?,
        ),
    };
    let ca_bundle = match &args.ca_bundle {
        Some(path) => {
            Some(std::fs::read(path).map_err(|e| format!("--ca-bundle {}: {e}", path.display()))?)
        }
        None => None,
    };
    if args.backoff_base.is_zero() || args.backoff_cap < args.backoff_base {
        return Err("--backoff-base must be > 0 and <= --backoff-cap".into());
    }
    if args.poll_base.is_zero() || args.poll_cap < args.poll_base {
        return Err("--poll-base must be > 0 and <= --poll-cap".into());
    }
    let opts = Options {
        namespace: args.namespace,
        concurrency: args.max_concurrent_reconciles.max(1),
        settings: Settings {
            resync: args.resync_interval,
            backoff: Backoff {
                base: args.backoff_base,
                cap: args.backoff_cap,
            },
            poll: Backoff {
                base: args.poll_base,
                cap: args.poll_cap,
            },
        },
        request_timeout: args.request_timeout,
        ca_bundle,
        control_plane_rps: NonZeroU32::new(args.control_plane_rps),
        data_plane_concurrency: NonZeroUsize::new(args.data_plane_concurrency),
    };
    let client = kube_client()
        .await
        .map_err(|e| format!("cannot build a Kubernetes client from the kubeconfig or the in-cluster environment: {e}"))?;
    let (tx, signal) = tokio::sync::watch::channel(false);
    tokio::spawn(shutdown_signal(tx));

    let health = Health::new(Arc::new(Metrics::default()));
    if let Some(addr) = metrics_addr {
        operator::serve_health(addr, health.clone(), signal.clone())
            .await
            .map_err(|e| e.to_string())?;
    }

    if !args.leader_elect {
        return operator::run(client, opts, health, signal)
            .await
            .map_err(|e| e.to_string());
    }

    // A standby is healthy and ready: it only waits.
    health.set_ready(true);
    let lease = LeaseConfig {
        name: args.lease_name,
        namespace: args.lease_namespace,
        identity: leader::identity(),
        duration: args.lease_duration,
        grace: (args.lease_duration / 3).max(Duration::from_secs(1)),
    };
    let Some(leadership) = leader::acquire(client.clone(), &lease, signal.clone())
        .await
        .map_err(|e| format!("leader election failed: {e}"))?
    else {
        return Ok(());
    };
    // Stop reconciling at once when the lease is lost, or on a signal.
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let mut on_signal = signal.clone();
    let mut held = leadership.watch();
    let lost = tokio::spawn(async move {
        let lost = tokio::select! {
            _ = on_signal.wait_for(|s| *s) => false,
            _ = held.wait_for(|leader| !*leader) => true,
        };
        if lost {
            error!("lost the leader lease: stopping reconciles now");
        }
        let _ = stop_tx.send(true);
        lost
    });
    let result = operator::run(client, opts, health, stop).await;
    let lost = lost.await.unwrap_or(false);
    leadership.release().await;
    result.map_err(|e| e.to_string())?;
    if lost {
        return Err(
            "lost the leader lease; exiting so that this replica starts again as a candidate"
                .into(),
        );
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Crd => match crd::all_crds_yaml() {
            Ok(yaml) => {
                print!("{yaml}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("cannot render the CRDs: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Doctor(args) => doctor(args).await,
        Command::Run(args) => {
            init_logging(args.log_format);
            match run(*args).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    error!("{e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// `zilliz-operator doctor`: exit 0 nothing stuck, 1 something stuck, 2 the doctor could not
/// run.
async fn doctor(args: DoctorArgs) -> ExitCode {
    let client = match kube::Client::try_default().await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("doctor: cannot build a Kubernetes client from the kubeconfig: {e}");
            return ExitCode::from(2);
        }
    };
    let namespace = if args.all_namespaces {
        None
    } else {
        Some(
            args.namespace
                .clone()
                .unwrap_or_else(|| client.default_namespace().to_string()),
        )
    };
    let opts = doctor::Options {
        namespace,
        settings: doctor::Settings {
            stuck_after: args.stuck_after,
            names: args.names,
            operator_namespace: args.operator_namespace,
        },
        probe: args.probe,
        lease_name: args.lease_name,
        service_account: args.operator_service_account,
        request_timeout: args.request_timeout,
    };
    let report = match doctor::gather(client, &opts).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("doctor: {e}");
            return ExitCode::from(2);
        }
    };
    match args.output {
        OutputFormat::Text => print!("{}", doctor::render_text(&report)),
        OutputFormat::Json => match serde_json::to_string_pretty(&report) {
            Ok(json) => println!("{json}"),
            Err(e) => {
                eprintln!("doctor: cannot render the report: {e}");
                return ExitCode::from(2);
            }
        },
    }
    ExitCode::from(report.exit_code())
}

/// A client from the kubeconfig or the in-cluster environment that names itself
/// (`zilliz-operator/<version>`) in the API server's audit log and request metrics.
async fn kube_client() -> Result<kube::Client, kube::Error> {
    use http::{HeaderValue, header::USER_AGENT};
    let mut config = kube::Config::infer()
        .await
        .map_err(kube::Error::InferConfig)?;
    config.headers.push((
        USER_AGENT,
        HeaderValue::from_static(concat!("zilliz-operator/", env!("CARGO_PKG_VERSION"))),
    ));
    kube::Client::try_from(config)
}
