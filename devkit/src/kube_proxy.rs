//! A TCP proxy in front of the test Kubernetes API server that records the request line (method
//! and path with query) and the `Accept` header of every HTTP/1.1 request going through it. The
//! test server counts requests per verb and resource only
//! ([`kube_test_server::Faults::request_counts`]); this says *which namespace and name* a client
//! read, and whether it asked for whole objects or metadata only — e.g. that the operator never
//! fetched a Secret of another namespace. Point only the operator at it
//! ([`RecordingProxy::write_kubeconfig`]); kubectl keeps talking to the server directly.

use std::{
    net::SocketAddr,
    path::Path,
    sync::{Arc, Mutex},
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    task::JoinHandle,
};

const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

/// One request seen by the proxy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    pub method: String,
    /// path and query
    pub path: String,
    /// the `Accept` header (`""` without one): `as=PartialObjectMetadata` asks for metadata only
    pub accept: String,
}

/// The proxy; stopped when dropped.
pub struct RecordingProxy {
    addr: SocketAddr,
    log: Arc<Mutex<Vec<Seen>>>,
    task: JoinHandle<()>,
}

impl RecordingProxy {
    /// Listens on a free port of 127.0.0.1 and forwards every connection to `upstream`.
    pub async fn start(upstream: SocketAddr) -> RecordingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let l = log.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let l = l.clone();
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let (mut from_client, mut to_server) = (client, server);
                    let (mut server_read, mut server_write) = to_server.split();
                    let (mut client_read, mut client_write) = from_client.split();
                    let up = async {
                        let mut scanner = Scanner::default();
                        let mut buf = [0u8; 16 * 1024];
                        loop {
                            let n = match client_read.read(&mut buf).await {
                                Ok(0) | Err(_) => break,
                                Ok(n) => n,
                            };
                            for line in scanner.feed(&buf[..n]) {
                                l.lock().unwrap().push(line);
                            }
                            if server_write.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                        let _ = server_write.shutdown().await;
                    };
                    let down = async {
                        let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
                        let _ = client_write.shutdown().await;
                    };
                    tokio::join!(up, down);
                });
            }
        });
        RecordingProxy { addr, log, task }
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A kubeconfig for this proxy (the test server's, with this address).
    pub fn write_kubeconfig(&self, path: &Path) -> std::io::Result<()> {
        std::fs::write(path, kube_test_server::kubeconfig_yaml(&self.url()))
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<Seen> {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for RecordingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Finds requests in a client's byte stream: a request line ends with ` HTTP/1.x\r\n`, header
/// lines follow up to an empty line. The body of the previous request (JSON, no line break) may
/// come right before the method, so the method is the end of the token before the path.
#[derive(Default)]
struct Scanner {
    pending: Vec<u8>,
    /// the request whose header lines are being read
    current: Option<Seen>,
}

impl Scanner {
    fn feed(&mut self, bytes: &[u8]) -> Vec<Seen> {
        self.pending.extend_from_slice(bytes);
        let mut found = Vec::new();
        while let Some(i) = self.pending.windows(2).position(|w| w == b"\r\n") {
            let line: Vec<u8> = self.pending.drain(..i + 2).collect();
            let line = String::from_utf8_lossy(&line[..i]).into_owned();
            match self.current.as_mut() {
                Some(_) if line.is_empty() => found.extend(self.current.take()),
                Some(seen) => {
                    if let Some((name, value)) = line.split_once(':')
                        && name.trim().eq_ignore_ascii_case("accept")
                    {
                        seen.accept = value.trim().to_string();
                    }
                }
                None => {
                    if let Some((method, path)) = request_line(&line) {
                        self.current = Some(Seen {
                            method,
                            path,
                            accept: String::new(),
                        });
                    }
                }
            }
        }
        // a body without line breaks: keep only its tail, where a request line may begin
        let keep = 8 * 1024;
        if self.pending.len() > 2 * keep {
            self.pending.drain(..self.pending.len() - keep);
        }
        found
    }
}

fn request_line(line: &str) -> Option<(String, String)> {
    let rest = line
        .strip_suffix(" HTTP/1.1")
        .or_else(|| line.strip_suffix(" HTTP/1.0"))?;
    let (before, path) = rest.rsplit_once(' ')?;
    let method_token = before.rsplit(' ').next().unwrap_or(before);
    let method = METHODS.iter().find(|m| method_token.ends_with(*m))?;
    path.starts_with('/')
        .then(|| (method.to_string(), path.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_found_across_chunks_and_after_bodies() {
        let mut s = Scanner::default();
        let mut seen = s.feed(b"GET /api/v1/namespaces/a/secrets/creds HTTP/1.1\r\nhost: x\r\naccept: application/json\r\n\r\nPAT");
        seen.extend(s.feed(b"CH /apis/zilliz.io/v1alpha1/namespaces/a/zillizcollections/c/status?fieldManager=z HTTP/1.1\r\ncontent-length: 9\r\n\r\n{\"a\":\"b\"}"));
        seen.extend(s.feed(b"GET /api/v1/secrets?watch=true HTTP/1.1\r\nAccept: application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1\r"));
        seen.extend(s.feed(b"\n\r\n"));
        let seen: Vec<(&str, &str, &str)> = seen
            .iter()
            .map(|r| (r.method.as_str(), r.path.as_str(), r.accept.as_str()))
            .collect();
        assert_eq!(
            seen,
            [
                (
                    "GET",
                    "/api/v1/namespaces/a/secrets/creds",
                    "application/json"
                ),
                (
                    "PATCH",
                    "/apis/zilliz.io/v1alpha1/namespaces/a/zillizcollections/c/status?fieldManager=z",
                    ""
                ),
                (
                    "GET",
                    "/api/v1/secrets?watch=true",
                    "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
                ),
            ]
        );
        assert_eq!(request_line("HTTP/1.1 200 OK"), None);
    }
}
