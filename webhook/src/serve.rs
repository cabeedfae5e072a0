//! Serving connections within bounds, for the review port (TLS) and the
//! health and metrics port (plain HTTP) alike.
//!
//! Every connection costs a file descriptor and memory, and a client that
//! never finishes its request would otherwise hold both for ever. So:
//!
//! - at most [`ConnLimits::max_connections`] at once; when full, a new
//!   connection takes the place of the one that has waited longest without
//!   a request in progress (slow headers first, then idle keep-alive), and
//!   is refused (closed at once) only when every connection is busy with a
//!   request — so that the API server and the kubelet's probes get in under
//!   a flood of slow clients;
//! - the TLS handshake within `handshake_timeout`;
//! - a request's headers within `header_timeout` of its first byte (of the
//!   connection's start, for the first request), over HTTP/1 and HTTP/2
//!   alike: bytes that arrive without making a request do not count;
//! - a connection with no request for `idle_timeout` is closed (HTTP/2: a
//!   GOAWAY first);
//! - HTTP/2 with the limits HTTP/1 has: header size, streams per
//!   connection; request bodies are bounded by the handlers for both.
//!
//! On drain, the listener stops accepting, every connection is asked to
//! finish (HTTP/1: close after the response in progress; HTTP/2: GOAWAY),
//! and the ones still open after the grace period are closed.

use crate::metrics::Metrics;
use axum::Router;
use axum::body::Body;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};

/// The bounds of one listener.
#[derive(Clone, Debug)]
pub struct ConnLimits {
    pub max_connections: usize,
    pub handshake_timeout: Duration,
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    /// Largest request head (HTTP/1 buffer, HTTP/2 header list).
    pub max_header_bytes: usize,
    /// Concurrent HTTP/2 streams per connection.
    pub max_streams: u32,
}

/// Milliseconds since `epoch`, for atomics.
fn millis_since(epoch: Instant) -> u64 {
    epoch.elapsed().as_millis() as u64
}

/// What the watchdog and the eviction policy know of one connection.
struct ConnState {
    epoch: Instant,
    /// Requests in progress (the service was called, no response yet).
    active: AtomicUsize,
    /// Bytes arrived since the last request started (a request in the making).
    pending: AtomicBool,
    /// When the first of those bytes arrived, or the connection's start
    /// before its first request (ms since `epoch`).
    pending_since: AtomicU64,
    /// Last byte read or response produced (ms since `epoch`).
    last_activity: AtomicU64,
    evict: Notify,
}

impl ConnState {
    fn new() -> ConnState {
        ConnState {
            epoch: Instant::now(),
            active: AtomicUsize::new(0),
            pending: AtomicBool::new(true),
            pending_since: AtomicU64::new(0),
            last_activity: AtomicU64::new(0),
            evict: Notify::new(),
        }
    }

    fn now(&self) -> u64 {
        millis_since(self.epoch)
    }

    fn read_some(&self) {
        let now = self.now();
        self.last_activity.store(now, Ordering::Relaxed);
        if !self.pending.swap(true, Ordering::Relaxed) {
            self.pending_since.store(now, Ordering::Relaxed);
        }
    }

    fn request_started(&self) {
        self.active.fetch_add(1, Ordering::Relaxed);
        self.pending.store(false, Ordering::Relaxed);
    }

    fn request_done(&self) {
        self.last_activity.store(self.now(), Ordering::Relaxed);
        self.active.fetch_sub(1, Ordering::Relaxed);
    }

    /// Why the watchdog closes the connection now, if it does.
    fn expired(&self, limits: &ConnLimits) -> Option<&'static str> {
        if self.active.load(Ordering::Relaxed) > 0 {
            return None;
        }
        let now = self.now();
        if self.pending.load(Ordering::Relaxed) {
            let since = self.pending_since.load(Ordering::Relaxed);
            if now.saturating_sub(since) > limits.header_timeout.as_millis() as u64 {
                return Some("header_timeout");
            }
        }
        let last = self.last_activity.load(Ordering::Relaxed);
        if now.saturating_sub(last) > limits.idle_timeout.as_millis() as u64 {
            return Some("idle_timeout");
        }
        None
    }

    /// How good a victim it is when the table is full: `None` while a
    /// request is in progress; otherwise larger for longer waits, and
    /// unfinished requests before idle keep-alive.
    fn eviction_rank(&self) -> Option<(bool, u64)> {
        if self.active.load(Ordering::Relaxed) > 0 {
            return None;
        }
        let now = self.now();
        if self.pending.load(Ordering::Relaxed) {
            Some((true, now.saturating_sub(self.pending_since.load(Ordering::Relaxed))))
        } else {
            Some((false, now.saturating_sub(self.last_activity.load(Ordering::Relaxed))))
        }
    }
}

/// The connections of one listener.
#[derive(Default)]
struct Table {
    next: AtomicU64,
    open: Mutex<HashMap<u64, Arc<ConnState>>>,
    closed: Notify,
}

impl Table {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<ConnState>>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Admits a connection: `None` when the table is full of busy ones.
    fn admit(&self, max: usize) -> Option<(u64, Arc<ConnState>, bool)> {
        let mut open = self.lock();
        let mut evicted = false;
        if open.len() >= max {
            let victim =
                open.iter().filter_map(|(id, c)| c.eviction_rank().map(|r| (r, *id))).max().map(|(_, id)| id)?;
            if let Some(c) = open.remove(&victim) {
                c.evict.notify_one();
                evicted = true;
            }
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let state = Arc::new(ConnState::new());
        open.insert(id, state.clone());
        Some((id, state, evicted))
    }

    fn remove(&self, id: u64) {
        let mut open = self.lock();
        open.remove(&id);
        if open.is_empty() {
            self.closed.notify_waiters();
        }
    }

    fn len(&self) -> usize {
        self.lock().len()
    }
}

/// A socket that tells its connection's state when bytes arrive.
struct Tracked<S> {
    inner: S,
    state: Arc<ConnState>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.state.read_some();
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Decrements the connection's requests in progress when the response is
/// produced, or the request dropped.
struct RequestGuard(Arc<ConnState>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.0.request_done();
    }
}

/// The serving certificate, swapped in place by the reload loop; each
/// handshake takes the current one.
pub type TlsConfig = Arc<std::sync::RwLock<Arc<rustls::ServerConfig>>>;

/// A log line at most once per `every` for a repeated event (a flood must
/// not flood the log), with how many happened since.
pub struct RateLimitedLog {
    last: Mutex<Option<Instant>>,
    since: AtomicU64,
    every: Duration,
}

impl RateLimitedLog {
    pub fn new(every: Duration) -> RateLimitedLog {
        RateLimitedLog { last: Mutex::new(None), since: AtomicU64::new(0), every }
    }

    /// `Some(n)`: log now, `n` events since the last line (this one included).
    pub fn hit(&self) -> Option<u64> {
        let n = self.since.fetch_add(1, Ordering::Relaxed) + 1;
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_some_and(|t| t.elapsed() < self.every) {
            return None;
        }
        *last = Some(Instant::now());
        self.since.store(0, Ordering::Relaxed);
        Some(n)
    }
}

/// One listener: what it serves and how.
pub struct Listener {
    pub name: &'static str,
    pub tcp: TcpListener,
    pub tls: Option<TlsConfig>,
    pub router: Router,
    pub limits: ConnLimits,
    pub metrics: Arc<Metrics>,
}

/// Serves until `drain` turns true, then lets connections finish for
/// `grace` and returns.
pub async fn serve(listener: Listener, mut drain: watch::Receiver<bool>, grace: Duration) {
    let Listener { name, tcp, tls, router, limits, metrics } = listener;
    let table = Arc::new(Table::default());
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        // The watchdog times headers (and keep-alive) for both protocols.
        .header_read_timeout(None)
        .max_buf_size(limits.max_header_bytes.max(8192))
        .max_headers(100);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.max_streams)
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX))
        .max_pending_accept_reset_streams(20);
    let builder = Arc::new(builder);
    let refused_log = RateLimitedLog::new(Duration::from_secs(10));
    let evicted_log = RateLimitedLog::new(Duration::from_secs(10));
    loop {
        let accepted = tokio::select! {
            a = tcp.accept() => a,
            _ = drain.wait_for(|d| *d) => break,
        };
        let (socket, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // Out of file descriptors, mostly: wait a little rather than spin.
                if let Some(n) = refused_log.hit() {
                    tracing::warn!(listener = name, error = %e, events = n, "cannot accept a connection");
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some((id, state, evicted)) = table.admit(limits.max_connections) else {
            metrics.connection(name, "refused");
            if let Some(n) = refused_log.hit() {
                tracing::warn!(listener = name, %peer, connections = limits.max_connections, refused = n,
                    "connection refused: every connection is busy with a request");
            }
            drop(socket);
            continue;
        };
        if evicted {
            metrics.connection(name, "evicted");
            if let Some(n) = evicted_log.hit() {
                tracing::warn!(
                    listener = name,
                    connections = limits.max_connections,
                    evicted = n,
                    "connection limit reached: closed the connection that waited longest without a request"
                );
            }
        }
        metrics.connection(name, "accepted");
        let _ = socket.set_nodelay(true);
        let io = Tracked { inner: socket, state: state.clone() };
        let ctx = ConnContext {
            name,
            tls: tls.clone(),
            router: router.clone(),
            limits: limits.clone(),
            metrics: metrics.clone(),
            builder: builder.clone(),
            drain: drain.clone(),
            table: table.clone(),
        };
        tokio::spawn(async move {
            ctx.run(id, io, state).await;
        });
    }
    drop(tcp);
    // Drain: connections were told through `drain`; wait for them to go.
    let deadline = tokio::time::Instant::now() + grace;
    while table.len() > 0 {
        let closed = table.closed.notified();
        if tokio::time::timeout_at(deadline, closed).await.is_err() {
            tracing::warn!(listener = name, open = table.len(), "grace period over; closing the rest");
            break;
        }
    }
}

struct ConnContext {
    name: &'static str,
    tls: Option<TlsConfig>,
    router: Router,
    limits: ConnLimits,
    metrics: Arc<Metrics>,
    builder: Arc<auto::Builder<TokioExecutor>>,
    drain: watch::Receiver<bool>,
    table: Arc<Table>,
}

impl ConnContext {
    async fn run(self, id: u64, io: Tracked<tokio::net::TcpStream>, state: Arc<ConnState>) {
        match self.tls.clone() {
            Some(tls) => {
                let config = tls.read().unwrap_or_else(|e| e.into_inner()).clone();
                let acceptor = tokio_rustls::TlsAcceptor::from(config);
                let handshake = tokio::select! {
                    h = tokio::time::timeout(self.limits.handshake_timeout, acceptor.accept(io)) => h,
                    _ = state.evict.notified() => {
                        self.table.remove(id);
                        return;
                    }
                };
                match handshake {
                    Ok(Ok(stream)) => self.http(stream, state).await,
                    Ok(Err(e)) => {
                        self.metrics.connection(self.name, "tls_error");
                        tracing::debug!(listener = self.name, error = %e, "TLS handshake failed");
                    }
                    Err(_) => {
                        self.metrics.connection(self.name, "handshake_timeout");
                        tracing::debug!(listener = self.name, "TLS handshake timed out");
                    }
                }
            }
            None => self.http(io, state).await,
        }
        self.table.remove(id);
    }

    async fn http<S>(&self, io: S, state: Arc<ConnState>)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let router = self.router.clone();
        let service_state = state.clone();
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            service_state.request_started();
            let guard = RequestGuard(service_state.clone());
            let mut router = router.clone();
            async move {
                let _guard = guard;
                let request = request.map(Body::new);
                tower::Service::call(&mut router, request).await
            }
        });
        let conn = self.builder.serve_connection(TokioIo::new(io), service);
        tokio::pin!(conn);
        let mut drain = self.drain.clone();
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Set once the connection was asked to finish: then it gets a moment
        // to do so before it is closed.
        let mut closing: Option<Instant> = None;
        loop {
            tokio::select! {
                done = conn.as_mut() => {
                    if let Err(e) = done {
                        tracing::debug!(listener = self.name, error = %e, "connection ended with an error");
                    }
                    return;
                }
                _ = state.evict.notified() => return,
                _ = drain.wait_for(|d| *d), if closing.is_none() => {
                    conn.as_mut().graceful_shutdown();
                    // In-flight reviews finish within the drain's grace.
                    closing = Some(Instant::now() + Duration::from_secs(3600));
                }
                _ = tick.tick() => {
                    if let Some(at) = closing {
                        if Instant::now() >= at {
                            return;
                        }
                        continue;
                    }
                    // Asked to finish (HTTP/2: GOAWAY, so that a client
                    // about to send on it goes elsewhere), then closed.
                    if let Some(why) = state.expired(&self.limits) {
                        self.metrics.connection(self.name, why);
                        tracing::debug!(listener = self.name, reason = why, "closing the connection");
                        conn.as_mut().graceful_shutdown();
                        closing = Some(Instant::now() + Duration::from_secs(1));
                    }
                }
            }
        }
    }
}

/// Raises the soft limit of open files to the hard one and says how many
/// connections the process can hold besides its other files; the
/// connection limits are cut to fit, so that accepting never fails for want
/// of a descriptor (which would leave the health endpoints unreachable).
#[cfg(unix)]
pub fn file_descriptor_budget() -> Option<usize> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return None;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit { rlim_cur: limit.rlim_max, rlim_max: limit.rlim_max };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    // Kept for the rest: watches, the certificate files, logs, the runtime.
    const RESERVED: u64 = 64;
    Some(usize::try_from(limit.rlim_cur.saturating_sub(RESERVED)).unwrap_or(usize::MAX))
}

#[cfg(not(unix))]
pub fn file_descriptor_budget() -> Option<usize> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> ConnLimits {
        ConnLimits {
            max_connections: 2,
            handshake_timeout: Duration::from_secs(1),
            header_timeout: Duration::from_millis(100),
            idle_timeout: Duration::from_millis(300),
            max_header_bytes: 16 * 1024,
            max_streams: 10,
        }
    }

    #[test]
    fn a_full_table_evicts_the_longest_waiting_connection_never_a_busy_one() {
        let t = Table::default();
        let (a, sa, _) = t.admit(2).unwrap();
        let (_b, sb, _) = t.admit(2).unwrap();
        // `a` is busy with a request, `b` waits for headers: `b` goes.
        sa.request_started();
        let (_c, sc, evicted) = t.admit(2).unwrap();
        assert!(evicted);
        assert!(t.lock().contains_key(&a));
        assert_eq!(t.len(), 2);
        drop(sb);
        // Both busy now: a new connection is refused.
        sc.request_started();
        assert!(t.admit(2).is_none());
    }

    #[test]
    fn headers_and_idleness_are_timed_only_without_a_request_in_progress() {
        let l = limits();
        let s = ConnState::new();
        assert_eq!(s.expired(&l), None);
        std::thread::sleep(Duration::from_millis(150));
        assert_eq!(s.expired(&l), Some("header_timeout"), "no request since the connection started");
        s.request_started();
        std::thread::sleep(Duration::from_millis(350));
        assert_eq!(s.expired(&l), None, "a request in progress is the handler's to time");
        s.request_done();
        assert_eq!(s.expired(&l), None);
        std::thread::sleep(Duration::from_millis(350));
        assert_eq!(s.expired(&l), Some("idle_timeout"));
        s.read_some();
        assert_eq!(s.expired(&l), None, "a new request's first byte");
    }

    #[test]
    fn repeated_events_are_logged_once_per_period() {
        let log = RateLimitedLog::new(Duration::from_secs(3600));
        assert_eq!(log.hit(), Some(1));
        assert_eq!(log.hit(), None);
        assert_eq!(log.hit(), None);
    }
}
