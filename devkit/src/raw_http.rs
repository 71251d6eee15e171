//! A raw HTTP/1.1 server on a TCP socket, for the answers no HTTP library sends on purpose: a
//! body cut off before its `Content-Length` (the connection closed or reset mid-body), and the
//! HTML error pages of a gateway. What it answers can be switched while it runs; every request
//! is recorded with the answer it got.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    task::JoinHandle,
};

/// What the server answers to every request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// Status line and headers promising `declared` body bytes, then only `sent` (fewer), then
    /// the connection ends: with a FIN when `reset` is false, with a RST (`SO_LINGER` 0) when
    /// true.
    CutBody {
        status: u16,
        declared: usize,
        sent: String,
        reset: bool,
    },
    /// A complete, well-formed answer (then the connection is closed: `Connection: close`).
    Full {
        status: u16,
        content_type: &'static str,
        body: String,
    },
}

impl Answer {
    /// A JSON answer.
    pub fn json(status: u16, body: &str) -> Answer {
        Answer::Full {
            status,
            content_type: "application/json",
            body: body.to_string(),
        }
    }

    /// An nginx-style HTML error page, as gateways and load balancers send (502, 503, 504).
    pub fn html_error(status: u16) -> Answer {
        let title = format!("{status} {}", reason(status));
        Answer::Full {
            status,
            content_type: "text/html",
            body: format!(
                "<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
            ),
        }
    }

    /// A short name for the request log: `cut`, `reset`, `html 502`, `json 200`, ...
    pub fn label(&self) -> String {
        match self {
            Answer::CutBody { reset: false, .. } => "cut".into(),
            Answer::CutBody { reset: true, .. } => "reset".into(),
            Answer::Full {
                status,
                content_type,
                ..
            } => {
                let kind = if content_type.contains("html") {
                    "html"
                } else if content_type.contains("json") {
                    "json"
                } else {
                    "text"
                };
                format!("{kind} {status}")
            }
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        401 => "Unauthorized",
        404 => "Not Found",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Temporarily Unavailable",
        504 => "Gateway Time-out",
        _ => "Status",
    }
}

/// One request served.
#[derive(Clone, Debug)]
pub struct Served {
    pub method: String,
    /// path and query
    pub path: String,
    /// [`Answer::label`] of what it got
    pub answer: String,
    pub at: Instant,
}

/// The server; stopped when dropped.
pub struct RawHttp {
    addr: SocketAddr,
    answer: Arc<Mutex<Answer>>,
    log: Arc<Mutex<Vec<Served>>>,
    task: JoinHandle<()>,
}

impl RawHttp {
    /// Listens on a free port of 127.0.0.1, answering `answer` until told otherwise.
    pub async fn start(answer: Answer) -> RawHttp {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let answer = Arc::new(Mutex::new(answer));
        let log = Arc::new(Mutex::new(Vec::new()));
        let (a, l) = (answer.clone(), log.clone());
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, a.clone(), l.clone()));
            }
        });
        RawHttp {
            addr,
            answer,
            log,
            task,
        }
    }

    /// `http://127.0.0.1:PORT`
    pub fn uri(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set_answer(&self, answer: Answer) {
        *self.answer.lock().unwrap() = answer;
    }

    /// Every request read so far, in order.
    pub fn requests(&self) -> Vec<Served> {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for RawHttp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads one request (headers, then `Content-Length` bytes of body), answers it, closes.
async fn serve(mut stream: TcpStream, answer: Arc<Mutex<Answer>>, log: Arc<Mutex<Vec<Served>>>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > 64 * 1024 {
            return;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut request_line = head.lines().next().unwrap_or_default().split_whitespace();
    let method = request_line.next().unwrap_or_default().to_string();
    let path = request_line.next().unwrap_or_default().to_string();
    let length: usize = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let answer = answer.lock().unwrap().clone();
    log.lock().unwrap().push(Served {
        method,
        path,
        answer: answer.label(),
        at: Instant::now(),
    });
    match answer {
        Answer::Full {
            status,
            content_type,
            body,
        } => {
            let text = format!(
                "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                reason(status),
                body.len()
            );
            let _ = stream.write_all(text.as_bytes()).await;
            let _ = stream.shutdown().await;
        }
        Answer::CutBody {
            status,
            declared,
            sent,
            reset,
        } => {
            assert!(sent.len() < declared, "a cut body sends fewer bytes");
            let text = format!(
                "HTTP/1.1 {status} {}\r\nContent-Type: application/json\r\nContent-Length: {declared}\r\n\r\n{sent}",
                reason(status)
            );
            let _ = stream.write_all(text.as_bytes()).await;
            let _ = stream.flush().await;
            // let the client read the headers and the first bytes before the connection ends
            tokio::time::sleep(Duration::from_millis(50)).await;
            if reset {
                let _ = stream.set_zero_linger();
                drop(stream);
            } else {
                let _ = stream.shutdown().await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn cut_bodies_fail_the_client_and_full_answers_do_not() {
        let server = RawHttp::start(Answer::CutBody {
            status: 200,
            declared: 64,
            sent: r#"{"code":200,"data":{}}"#.into(),
            reset: false,
        })
        .await;
        let http = reqwest::Client::new();
        let url = format!("{}/v1/vector/collections/drop", server.uri());
        let get = || async {
            let resp = http.post(&url).body("{}").send().await.unwrap();
            (resp.status().as_u16(), resp.text().await)
        };
        let (status, body) = get().await;
        assert_eq!(status, 200);
        assert!(body.is_err(), "a cut body is an error: {body:?}");
        server.set_answer(Answer::CutBody {
            status: 200,
            declared: 64,
            sent: "{".into(),
            reset: true,
        });
        assert!(get().await.1.is_err());
        server.set_answer(Answer::html_error(502));
        let (status, body) = get().await;
        assert_eq!(status, 502);
        assert!(body.unwrap().contains("502 Bad Gateway"));
        server.set_answer(Answer::json(200, r#"{"code":200,"data":{}}"#));
        assert_eq!(get().await.1.unwrap(), r#"{"code":200,"data":{}}"#);
        let labels: Vec<String> = server.requests().into_iter().map(|r| r.answer).collect();
        assert_eq!(labels, ["cut", "reset", "html 502", "json 200"]);
        assert_eq!(server.requests()[0].path, "/v1/vector/collections/drop");
    }
}
