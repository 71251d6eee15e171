//! `kube-test-server --port N --kubeconfig PATH`: serve until SIGTERM/SIGINT.

use std::path::PathBuf;

fn usage() -> ! {
    eprintln!("usage: kube-test-server [--port N] [--kubeconfig PATH]");
    std::process::exit(2)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut port: u16 = 0;
    let mut kubeconfig: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--port" => {
                port = args
                    .next()
                    .and_then(|p| p.parse().ok())
                    .unwrap_or_else(|| usage())
            }
            "--kubeconfig" => {
                kubeconfig = Some(args.next().map(PathBuf::from).unwrap_or_else(|| usage()))
            }
            "-h" | "--help" => usage(),
            _ => usage(),
        }
    }
    let server = kube_test_server::TestServer::start_on(port).await?;
    if let Some(path) = &kubeconfig {
        server.write_kubeconfig(path)?;
    }
    println!("kube-test-server listening on {}", server.url());
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    server.shutdown().await;
    Ok(())
}
