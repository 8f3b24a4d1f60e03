//! A fault-injecting proxy between workstation engines and the real server.
//!
//! It relays TCP and reads just enough HTTP/1.1 to see where each request
//! and each answer ends, so a fault hits one request: drop it, drop the
//! answer after the server handled it (the server committed, the client sees
//! an error), delay it, send it to the server twice, hold the answer until
//! the test cuts the connections, or partition the network (new connections
//! are closed at once, open ones are cut) and heal it again.
//!
//! Faults are either scripted ([`Proxy::inject`], for the next request to a
//! path) or random ([`Proxy::set_chaos`]), drawn from an RNG seeded by the
//! test, so a schedule's faults are replayed from its seed. Every request
//! opens its own connection to the server, which is what lets a request be
//! duplicated and lets the server be swapped ([`Proxy::set_upstream`]) after
//! it was killed.

#![allow(dead_code)] // each test binary that includes this uses a part

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};

/// What the proxy does to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Close the client's connection without sending the request on.
    DropRequest,
    /// Send the request, read the server's whole answer, then close the
    /// client's connection without it: the server committed, the client
    /// sees an error.
    DropResponse,
    /// Wait this long before sending the request on.
    Delay(Duration),
    /// Send the request to the server twice at the same time; the client
    /// gets the first answer.
    Duplicate,
    /// Answer the client normally, then send the same request again after
    /// this long (a late retransmission).
    LateDuplicate(Duration),
    /// Send the request and read the answer, then hold it until the test
    /// cuts the connections ([`Proxy::cut`]): the client gets no answer.
    Hold,
}

/// Probabilities of random faults, per request.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Chaos {
    /// Of [`Fault::DropRequest`].
    pub drop_request: f64,
    /// Of [`Fault::DropResponse`].
    pub drop_response: f64,
    /// Of [`Fault::Delay`], up to `max_delay`.
    pub delay: f64,
    /// The longest random delay.
    pub max_delay: Duration,
    /// Of [`Fault::Duplicate`].
    pub duplicate: f64,
    /// Of [`Fault::LateDuplicate`], up to `max_delay` later.
    pub late_duplicate: f64,
}

impl Chaos {
    /// No faults.
    pub const NONE: Chaos = Chaos {
        drop_request: 0.0,
        drop_response: 0.0,
        delay: 0.0,
        max_delay: Duration::ZERO,
        duplicate: 0.0,
        late_duplicate: 0.0,
    };
}

/// How many of each fault the proxy injected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Requests seen.
    pub requests: usize,
    /// Requests dropped.
    pub dropped_requests: usize,
    /// Answers dropped after the server handled the request.
    pub dropped_responses: usize,
    /// Requests delayed.
    pub delayed: usize,
    /// Requests sent twice at once.
    pub duplicated: usize,
    /// Requests sent again later.
    pub late_duplicates: usize,
    /// Answers held.
    pub held: usize,
    /// Connections refused or cut by a partition.
    pub partitioned: usize,
}

struct State {
    rng: StdRng,
    chaos: Chaos,
    /// Scripted faults: (path prefix, fault), each used once, in order.
    script: VecDeque<(String, Fault)>,
    /// The servers requests go to, in turn.
    upstreams: Vec<SocketAddr>,
    /// How many requests were sent on (picks the next upstream).
    sent: usize,
    stats: Stats,
    /// (method and path, fault) of every request, newest last.
    log: Vec<(String, Option<Fault>)>,
}

struct Shared {
    state: Mutex<State>,
    partitioned: AtomicBool,
    /// Bumped to cut every open connection.
    cut: watch::Sender<u64>,
    /// Requests (and late duplicates) not finished yet.
    in_flight: AtomicUsize,
    idle: Notify,
    /// Held answers ([`Fault::Hold`]) no [`Proxy::wait_held`] has seen yet,
    /// and their wake-up.
    holding: AtomicUsize,
    held: Notify,
}

/// The proxy; dropping it stops accepting connections.
pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

impl Proxy {
    /// A proxy to `upstream` on a free loopback port, its random faults
    /// drawn from `seed`.
    pub async fn start(upstream: SocketAddr, seed: u64) -> Proxy {
        Proxy::start_balanced(vec![upstream], seed).await
    }

    /// [`Proxy::start`] in front of several server processes: each request
    /// (and each live-channel connection) goes to the next one in turn, as
    /// behind a round-robin load balancer.
    pub async fn start_balanced(upstreams: Vec<SocketAddr>, seed: u64) -> Proxy {
        assert!(!upstreams.is_empty(), "a proxy needs a server");
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                rng: StdRng::seed_from_u64(seed),
                chaos: Chaos::NONE,
                script: VecDeque::new(),
                upstreams,
                sent: 0,
                stats: Stats::default(),
                log: Vec::new(),
            }),
            partitioned: AtomicBool::new(false),
            cut: watch::channel(0).0,
            in_flight: AtomicUsize::new(0),
            idle: Notify::new(),
            holding: AtomicUsize::new(0),
            held: Notify::new(),
        });
        let accept = tokio::spawn(accept_loop(listener, shared.clone()));
        Proxy {
            addr,
            shared,
            accept,
        }
    }

    /// `http://127.0.0.1:PORT`, the address workstations are given.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Sends later requests to `upstream` (a restarted server).
    pub fn set_upstream(&self, upstream: SocketAddr) {
        self.state().upstreams = vec![upstream];
    }

    /// Sets the random faults.
    pub fn set_chaos(&self, chaos: Chaos) {
        self.state().chaos = chaos;
    }

    /// The next request whose path starts with `path` gets `fault`.
    pub fn inject(&self, path: &str, fault: Fault) {
        self.state().script.push_back((path.to_owned(), fault));
    }

    /// Cuts every open connection and refuses new ones until [`Proxy::heal`].
    pub fn partition(&self) {
        self.shared.partitioned.store(true, Ordering::SeqCst);
        self.cut();
    }

    /// Ends a partition.
    pub fn heal(&self) {
        self.shared.partitioned.store(false, Ordering::SeqCst);
    }

    /// Whether the network is partitioned.
    pub fn is_partitioned(&self) -> bool {
        self.shared.partitioned.load(Ordering::SeqCst)
    }

    /// Cuts every open connection (held answers included).
    pub fn cut(&self) {
        self.shared.cut.send_modify(|g| *g += 1);
    }

    /// Waits until the server has answered a request whose answer the
    /// proxy holds ([`Fault::Hold`]); each held answer ends one wait.
    pub async fn wait_held(&self) {
        loop {
            let notified = self.shared.held.notified();
            let taken = self
                .shared
                .holding
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
            if taken.is_ok() {
                return;
            }
            notified.await;
        }
    }

    /// Waits until no request is on its way (late duplicates included).
    pub async fn wait_idle(&self) {
        loop {
            let notified = self.shared.idle.notified();
            if self.shared.in_flight.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }

    /// What the proxy has done so far.
    pub fn stats(&self) -> Stats {
        self.state().stats
    }

    /// The last `n` requests and their faults, one a line.
    pub fn recent(&self, n: usize) -> String {
        let state = self.state();
        let from = state.log.len().saturating_sub(n);
        state.log[from..]
            .iter()
            .map(|(req, fault)| match fault {
                Some(f) => format!("  {req} -> {f:?}\n"),
                None => format!("  {req}\n"),
            })
            .collect()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.shared.state.lock().expect("not poisoned")
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        if shared.partitioned.load(Ordering::SeqCst) {
            shared.state.lock().expect("not poisoned").stats.partitioned += 1;
            drop(client);
            continue;
        }
        let _ = client.set_nodelay(true);
        let shared = shared.clone();
        tokio::spawn(async move {
            let mut cut = shared.cut.subscribe();
            tokio::select! {
                _ = serve_client(client, &shared) => {}
                _ = cut.changed() => {
                    shared.state.lock().expect("not poisoned").stats.partitioned += 1;
                }
            }
        });
    }
}

/// Counts a request as in flight until dropped.
struct InFlight(Arc<Shared>);

impl InFlight {
    fn new(shared: &Arc<Shared>) -> InFlight {
        shared.in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight(shared.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

/// Relays the client's requests one by one until it closes or a fault
/// closes the connection.
async fn serve_client(client: TcpStream, shared: &Arc<Shared>) {
    let mut client = Conn::new(client);
    loop {
        let Ok(Some(request)) = client.read_request().await else {
            return;
        };
        if request.path.starts_with("/v1/sync/events") {
            // The live channel streams; relay it as it is, without faults.
            let upstream = shared.state.lock().expect("not poisoned").next_upstream();
            let _ = relay_stream(client, &request, upstream).await;
            return;
        }
        let _in_flight = InFlight::new(shared);
        let (fault, upstream) = decide(shared, &request);
        let response = match fault {
            Some(Fault::DropRequest) => return,
            Some(Fault::Delay(d)) => {
                tokio::time::sleep(d).await;
                exchange(upstream, &request.raw).await
            }
            Some(Fault::Duplicate) => {
                let (a, b) = tokio::join!(
                    exchange(upstream, &request.raw),
                    exchange(upstream, &request.raw)
                );
                a.or(b)
            }
            Some(Fault::LateDuplicate(d)) => {
                let again = InFlight::new(shared);
                let raw = request.raw.clone();
                tokio::spawn(async move {
                    let _again = again;
                    tokio::time::sleep(d).await;
                    let _ = exchange(upstream, &raw).await;
                });
                exchange(upstream, &request.raw).await
            }
            _ => exchange(upstream, &request.raw).await,
        };
        // The server is gone: the client sees the connection close.
        let Ok(response) = response else { return };
        match fault {
            Some(Fault::DropResponse) => return,
            Some(Fault::Hold) => {
                shared.holding.fetch_add(1, Ordering::SeqCst);
                shared.held.notify_waiters();
                // Until the connection is cut.
                std::future::pending::<()>().await;
            }
            _ => {}
        }
        if client.stream.write_all(&response.raw).await.is_err() || response.close {
            return;
        }
    }
}

/// Picks the request's fault and notes it.
fn decide(shared: &Shared, request: &Request) -> (Option<Fault>, SocketAddr) {
    let mut state = shared.state.lock().expect("not poisoned");
    let state = &mut *state;
    state.stats.requests += 1;
    let scripted = state
        .script
        .iter()
        .position(|(path, _)| request.path.starts_with(path.as_str()))
        .and_then(|i| state.script.remove(i))
        .map(|(_, f)| f);
    let fault = scripted.or_else(|| {
        let c = state.chaos;
        if c == Chaos::NONE {
            return None;
        }
        // Both draws every time, so one request's fault never shifts the
        // numbers the next requests get.
        let roll: f64 = state.rng.gen_range(0.0..1.0);
        let max = c.max_delay.as_micros().max(1) as u64;
        let delay = Duration::from_micros(state.rng.gen_range(0..=max));
        let mut acc = 0.0;
        let mut pick = |p: f64| {
            acc += p;
            roll < acc
        };
        if pick(c.drop_request) {
            Some(Fault::DropRequest)
        } else if pick(c.drop_response) {
            Some(Fault::DropResponse)
        } else if pick(c.delay) {
            Some(Fault::Delay(delay))
        } else if pick(c.duplicate) {
            Some(Fault::Duplicate)
        } else if pick(c.late_duplicate) {
            Some(Fault::LateDuplicate(delay))
        } else {
            None
        }
    });
    let s = &mut state.stats;
    match fault {
        Some(Fault::DropRequest) => s.dropped_requests += 1,
        Some(Fault::DropResponse) => s.dropped_responses += 1,
        Some(Fault::Delay(_)) => s.delayed += 1,
        Some(Fault::Duplicate) => s.duplicated += 1,
        Some(Fault::LateDuplicate(_)) => s.late_duplicates += 1,
        Some(Fault::Hold) => s.held += 1,
        None => {}
    }
    state
        .log
        .push((format!("{} {}", request.method, request.path), fault));
    (fault, state.next_upstream())
}

impl State {
    /// The server the next request goes to.
    fn next_upstream(&mut self) -> SocketAddr {
        let upstream = self.upstreams[self.sent % self.upstreams.len()];
        self.sent += 1;
        upstream
    }
}

/// One request or answer, as the bytes that travelled.
struct Request {
    method: String,
    path: String,
    raw: Vec<u8>,
}

struct Response {
    raw: Vec<u8>,
    /// The server closes the connection after it.
    close: bool,
}

/// Sends one request on a fresh connection to the server and reads the answer.
async fn exchange(upstream: SocketAddr, raw: &[u8]) -> io::Result<Response> {
    let stream = TcpStream::connect(upstream).await?;
    let _ = stream.set_nodelay(true);
    let mut server = Conn::new(stream);
    server.stream.write_all(raw).await?;
    server.read_response().await
}

/// Relays a streaming exchange (the live channel) both ways until either
/// side closes.
async fn relay_stream(mut client: Conn, request: &Request, upstream: SocketAddr) -> io::Result<()> {
    let mut server = TcpStream::connect(upstream).await?;
    server.write_all(&request.raw).await?;
    server.write_all(&client.buf).await?;
    tokio::io::copy_bidirectional(&mut client.stream, &mut server).await?;
    Ok(())
}

/// A connection with its read-ahead.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

/// The head of a message: its lines and where the body starts.
struct Head {
    first_line: String,
    content_length: Option<usize>,
    chunked: bool,
    close: bool,
    len: usize,
}

impl Conn {
    fn new(stream: TcpStream) -> Conn {
        Conn {
            stream,
            buf: Vec::new(),
        }
    }

    /// Reads more bytes; `false` at the end of the stream.
    async fn fill(&mut self) -> io::Result<bool> {
        let mut chunk = [0u8; 16 * 1024];
        let n = self.stream.read(&mut chunk).await?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n > 0)
    }

    /// Reads up to the blank line after the headers; `None` if the stream
    /// ended before any byte of a new message.
    async fn read_head(&mut self) -> io::Result<Option<Head>> {
        loop {
            if let Some(end) = find(&self.buf, b"\r\n\r\n") {
                let text = String::from_utf8_lossy(&self.buf[..end]).into_owned();
                let mut lines = text.split("\r\n");
                let first_line = lines.next().unwrap_or("").to_owned();
                let mut head = Head {
                    first_line,
                    content_length: None,
                    chunked: false,
                    close: false,
                    len: end + 4,
                };
                for line in lines {
                    let Some((name, value)) = line.split_once(':') else {
                        continue;
                    };
                    let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
                    match name.as_str() {
                        "content-length" => head.content_length = value.parse().ok(),
                        "transfer-encoding" => {
                            head.chunked = value.to_ascii_lowercase().contains("chunked")
                        }
                        "connection" => head.close = value.eq_ignore_ascii_case("close"),
                        _ => {}
                    }
                }
                return Ok(Some(head));
            }
            if !self.fill().await? {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(io::ErrorKind::UnexpectedEof.into())
                };
            }
        }
    }

    /// Takes `n` bytes from the read-ahead, reading more as needed.
    async fn take(&mut self, n: usize) -> io::Result<Vec<u8>> {
        while self.buf.len() < n {
            if !self.fill().await? {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
        Ok(self.buf.drain(..n).collect())
    }

    /// Takes one line, CRLF included.
    async fn take_line(&mut self) -> io::Result<Vec<u8>> {
        loop {
            if let Some(end) = find(&self.buf, b"\r\n") {
                return Ok(self.buf.drain(..end + 2).collect());
            }
            if !self.fill().await? {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
    }

    /// Takes the head and the body the head announces.
    async fn take_message(&mut self, head: &Head, body_to_eof: bool) -> io::Result<Vec<u8>> {
        let mut raw = self.take(head.len).await?;
        if head.chunked {
            loop {
                let line = self.take_line().await?;
                let size_text = String::from_utf8_lossy(&line);
                let size_text = size_text.trim().split(';').next().unwrap_or("");
                let size = usize::from_str_radix(size_text, 16)
                    .map_err(|_| io::Error::from(io::ErrorKind::InvalidData))?;
                raw.extend_from_slice(&line);
                if size == 0 {
                    // Trailers, up to the blank line.
                    loop {
                        let line = self.take_line().await?;
                        raw.extend_from_slice(&line);
                        if line == b"\r\n" {
                            return Ok(raw);
                        }
                    }
                }
                raw.extend(self.take(size + 2).await?);
            }
        } else if let Some(n) = head.content_length {
            raw.extend(self.take(n).await?);
        } else if body_to_eof {
            while self.fill().await? {}
            raw.append(&mut self.buf);
        }
        Ok(raw)
    }

    async fn read_request(&mut self) -> io::Result<Option<Request>> {
        let Some(head) = self.read_head().await? else {
            return Ok(None);
        };
        let mut parts = head.first_line.split(' ');
        let method = parts.next().unwrap_or("").to_owned();
        let path = parts.next().unwrap_or("").to_owned();
        let raw = self.take_message(&head, false).await?;
        Ok(Some(Request { method, path, raw }))
    }

    async fn read_response(&mut self) -> io::Result<Response> {
        let head = self
            .read_head()
            .await?
            .ok_or(io::Error::from(io::ErrorKind::UnexpectedEof))?;
        let status: u16 = head
            .first_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let bodiless = (100..200).contains(&status) || status == 204 || status == 304;
        let to_eof = !bodiless && head.content_length.is_none() && !head.chunked;
        let raw = if bodiless {
            self.take(head.len).await?
        } else {
            self.take_message(&head, true).await?
        };
        Ok(Response {
            raw,
            close: head.close || to_eof,
        })
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
