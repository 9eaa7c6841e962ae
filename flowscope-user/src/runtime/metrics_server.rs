//! The `/metrics` endpoint: one std-only HTTP/1.1 thread that answers each
//! scrape with the exposition text last published (no work per scrape
//! beyond copying it out). `GET` and `HEAD` of `/metrics` only; any other
//! path is 404, any other method 405. One connection at a time, each
//! closed after its answer; a client has 5 s to send its request and as
//! long for each write of the answer, so a stuck client delays a scrape but
//! cannot hold the thread.

use std::{
    io::{self, Read, Write},
    net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use crate::obs::CONTENT_TYPE;

/// The path that serves the metrics.
pub const METRICS_PATH: &str = "/metrics";

/// How long a client may take to send its request or read the answer.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest request head read.
const MAX_REQUEST: usize = 8192;

/// A running `/metrics` endpoint; stops (and frees its port) when dropped.
#[derive(Debug)]
pub struct MetricsServer {
    text: Arc<Mutex<Arc<str>>>,
    stop: Arc<AtomicBool>,
    addr: SocketAddr,
    thread: Option<JoinHandle<()>>,
}

impl MetricsServer {
    /// Listens on `addr` (port 0: any free port) and serves an empty
    /// exposition until the first [`publish`](Self::publish).
    ///
    /// # Errors
    ///
    /// The address cannot be bound.
    pub fn start(addr: SocketAddr) -> io::Result<Self> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let text: Arc<Mutex<Arc<str>>> = Arc::new(Mutex::new(Arc::from("")));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::Builder::new()
            .name("flowscope-metrics".into())
            .spawn({
                let (text, stop) = (text.clone(), stop.clone());
                move || {
                    for conn in listener.incoming() {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        // A client that fails its request only loses its answer.
                        let _ = conn.and_then(|c| answer(c, &current(&text)));
                    }
                }
            })?;
        Ok(Self {
            text,
            stop,
            addr,
            thread: Some(thread),
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves `text` from now on.
    pub fn publish(&self, text: String) {
        *self.text.lock().unwrap_or_else(|e| e.into_inner()) = Arc::from(text);
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the blocked accept; the thread sees the flag and ends.
        let mut wake = self.addr;
        if wake.ip().is_unspecified() {
            wake.set_ip(match wake {
                SocketAddr::V4(_) => Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => Ipv6Addr::LOCALHOST.into(),
            });
        }
        if TcpStream::connect_timeout(&wake, CLIENT_TIMEOUT).is_ok()
            && let Some(t) = self.thread.take()
        {
            let _ = t.join();
        }
    }
}

fn current(text: &Mutex<Arc<str>>) -> Arc<str> {
    text.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Reads one request from `conn` and answers it.
fn answer(mut conn: TcpStream, metrics: &str) -> io::Result<()> {
    conn.set_write_timeout(Some(CLIENT_TIMEOUT))?;
    let deadline = Instant::now() + CLIENT_TIMEOUT;
    let mut buf = vec![0u8; MAX_REQUEST];
    let mut len = 0;
    let response = loop {
        // The whole request within the timeout, however it trickles in.
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        conn.set_read_timeout(Some(left))?;
        let n = conn.read(&mut buf[len..])?;
        if n == 0 {
            return Ok(());
        }
        len += n;
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&buf[..len]) {
            Ok(httparse::Status::Complete(_)) => {
                break route(req.method.unwrap_or(""), req.path.unwrap_or(""), metrics);
            }
            Ok(httparse::Status::Partial) if len < buf.len() => {}
            _ => break Response::text(400, "Bad Request", "bad request\n"),
        }
    };
    conn.write_all(response.head().as_bytes())?;
    if response.send_body {
        conn.write_all(response.body.as_bytes())?;
    }
    conn.flush()
}

/// What to answer.
struct Response<'a> {
    status: u16,
    reason: &'static str,
    content_type: &'static str,
    allow: bool,
    body: &'a str,
    send_body: bool,
}

impl<'a> Response<'a> {
    fn text(status: u16, reason: &'static str, body: &'a str) -> Self {
        Self {
            status,
            reason,
            content_type: "text/plain; charset=utf-8",
            allow: false,
            body,
            send_body: true,
        }
    }

    fn head(&self) -> String {
        format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n{}Connection: close\r\n\r\n",
            self.status,
            self.reason,
            self.content_type,
            self.body.len(),
            if self.allow {
                "Allow: GET, HEAD\r\n"
            } else {
                ""
            },
        )
    }
}

fn route<'a>(method: &str, target: &str, metrics: &'a str) -> Response<'a> {
    let path = target.split_once('?').map_or(target, |(p, _)| p);
    if path != METRICS_PATH {
        return Response::text(404, "Not Found", "not found: the metrics are at /metrics\n");
    }
    match method {
        "GET" | "HEAD" => Response {
            content_type: CONTENT_TYPE,
            body: metrics,
            send_body: method == "GET",
            ..Response::text(200, "OK", "")
        },
        _ => Response {
            allow: true,
            ..Response::text(405, "Method Not Allowed", "GET or HEAD /metrics\n")
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One raw request to `server`; the whole answer.
    fn ask(server: &MetricsServer, request: &str) -> String {
        let mut s = TcpStream::connect(server.local_addr()).unwrap();
        s.write_all(request.as_bytes()).unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        answer
    }

    fn get(server: &MetricsServer, path: &str) -> String {
        ask(server, &format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n"))
    }

    #[test]
    fn serves_the_last_text_on_metrics_only() {
        let server = MetricsServer::start("127.0.0.1:0".parse().unwrap()).unwrap();
        let empty = get(&server, "/metrics");
        assert!(empty.starts_with("HTTP/1.1 200 OK\r\n"), "{empty}");
        assert!(empty.ends_with("Content-Length: 0\r\nConnection: close\r\n\r\n"));
        server.publish("a 1\n".into());
        server.publish("b 2\n".into());
        let ok = get(&server, "/metrics?x=1");
        assert_eq!(
            ok,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
             Content-Length: 4\r\nConnection: close\r\n\r\nb 2\n"
        );
        let head = ask(&server, "HEAD /metrics HTTP/1.1\r\n\r\n");
        assert!(
            head.contains("Content-Length: 4\r\n") && head.ends_with("\r\n\r\n"),
            "{head}"
        );
        for path in ["/", "/metrics/", "/metricsx", "/favicon.ico"] {
            let a = get(&server, path);
            assert!(a.starts_with("HTTP/1.1 404 Not Found\r\n"), "{path}: {a}");
            assert!(!a.contains("b 2"));
        }
        let post = ask(
            &server,
            "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
        );
        assert!(
            post.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"),
            "{post}"
        );
        assert!(post.contains("Allow: GET, HEAD\r\n"));
        let bad = ask(&server, "GARBAGE\0\r\n\r\n");
        assert!(bad.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{bad}");
    }

    #[test]
    fn a_request_split_over_writes_is_read_whole_and_drop_frees_the_port() {
        let server = MetricsServer::start("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = server.local_addr();
        server.publish("c 3\n".into());
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(b"GET /met").unwrap();
        s.flush().unwrap();
        std::thread::sleep(Duration::from_millis(20));
        s.write_all(b"rics HTTP/1.1\r\n\r\n").unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        assert!(answer.ends_with("\r\n\r\nc 3\n"), "{answer}");
        drop(server);
        TcpListener::bind(addr).expect("the port is free again");
    }
}
