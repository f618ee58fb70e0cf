//! The admin server's connections: how many may be open, and how long one
//! may sit without doing anything.
//!
//! Why: every connection is a file descriptor, and the daemon's own work
//! needs descriptors too (the database pool, SQLite's files, the registry
//! clients). Unbounded and without timeouts, a few thousand idle
//! connections took every descriptor: `/healthz` stopped answering and the
//! scan could not open its database file. So:
//!
//! - At most `admin.max_connections` are open. A connection arriving at the
//!   limit closes the one idle longest (no request in progress) to make
//!   room, so a crowd of idle connections cannot lock `/healthz` out; when
//!   every open connection is busy, the new one waits in the listen queue.
//! - A request's line and headers must arrive within
//!   `admin.header_read_timeout_ms` of the server waiting for them (hyper's
//!   header timer): a client trickling headers, or a keep-alive connection
//!   idle between requests, is closed then.
//! - A connection on which no byte moves either way for
//!   `admin.idle_timeout_ms`, while none of its requests is being handled,
//!   is closed: a stalled request body, a client that stopped reading its
//!   answer. A handler that takes long, its request received, is not cut.

use axum::Router;
use hyper::body::{Body as _, Incoming};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::BTreeMap;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;
use tracing::{debug, warn};

/// The bounds of `[admin]`.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
}

impl Limits {
    pub fn from_config(c: &crate::config::AdminConfig) -> Self {
        Self {
            max_connections: c.max_connections,
            header_read_timeout: Duration::from_millis(c.header_read_timeout_ms),
            idle_timeout: Duration::from_millis(c.idle_timeout_ms),
        }
    }
}

/// One open connection, as the accept loop sees it.
struct Conn {
    /// Requests of this connection being handled now.
    busy: AtomicUsize,
    /// When a byte last moved, in milliseconds since the server started.
    last_io_ms: AtomicU64,
    /// Cancelled to close the connection (gracefully: a request in
    /// progress is answered first).
    close: CancellationToken,
}

/// The open connections by accept order.
#[derive(Default)]
struct Open {
    conns: Mutex<BTreeMap<u64, Arc<Conn>>>,
}

impl Open {
    fn insert(&self, id: u64, conn: Arc<Conn>) {
        self.lock().insert(id, conn);
    }

    fn remove(&self, id: u64) {
        self.lock().remove(&id);
    }

    /// Closes the connection idle longest; false when every one is busy.
    fn close_idlest(&self) -> bool {
        let conns = self.lock();
        let idlest = conns
            .values()
            .filter(|c| c.busy.load(Ordering::SeqCst) == 0 && !c.close.is_cancelled())
            .min_by_key(|c| c.last_io_ms.load(Ordering::SeqCst));
        match idlest {
            Some(c) => {
                c.close.cancel();
                true
            }
            None => false,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Arc<Conn>>> {
        self.conns.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Serves `router` on `listener` within `limits` until `shutdown`; then
/// answers the requests in progress and returns.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: CancellationToken,
) -> io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let open = Arc::new(Open::default());
    let epoch = Instant::now();
    let tracker = TaskTracker::new();
    let mut next_id = 0u64;
    loop {
        let stream = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of descriptors, most likely: wait for some to
                    // be freed rather than spin.
                    warn!(error = %e, "admin server: cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let permit = match permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                if !open.close_idlest() {
                    debug!("admin server: every connection is busy; a new one waits");
                }
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    permit = permits.clone().acquire_owned() => permit.expect("never closed"),
                }
            }
        };
        next_id += 1;
        let conn = Arc::new(Conn {
            busy: AtomicUsize::new(0),
            last_io_ms: AtomicU64::new(epoch.elapsed().as_millis() as u64),
            close: shutdown.child_token(),
        });
        open.insert(next_id, conn.clone());
        let (id, open, router) = (next_id, open.clone(), router.clone());
        tracker.spawn(async move {
            serve_connection(stream, conn, epoch, router, limits).await;
            open.remove(id);
            drop(permit);
        });
    }
    tracker.close();
    tracker.wait().await;
    Ok(())
}

async fn serve_connection(
    stream: TcpStream,
    conn: Arc<Conn>,
    epoch: Instant,
    router: Router,
    limits: Limits,
) {
    let _ = stream.set_nodelay(true);
    // The console's sign-in throttle counts failures per client address.
    let peer = stream.peer_addr().ok();
    let io = TokioIo::new(IdleIo {
        inner: stream,
        conn: conn.clone(),
        epoch,
        idle: limits.idle_timeout,
        deadline: Box::pin(tokio::time::sleep(limits.idle_timeout)),
    });
    let service = {
        let conn = conn.clone();
        hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let handling = Arc::new(Mutex::new(Handling::Receiving));
            let mut request = request.map(|body| BodyReceived {
                inner: body,
                conn: conn.clone(),
                handling: handling.clone(),
            });
            if let Some(peer) = peer {
                request
                    .extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
            }
            if request.body().inner.is_end_stream() {
                request.body().received();
            }
            let router = router.clone();
            async move {
                let answer = router.oneshot(request).await;
                *lock(&handling) = Handling::Answered;
                answer
            }
        })
    };
    let served = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .serve_connection(io, service);
    tokio::pin!(served);
    let ended = tokio::select! {
        ended = served.as_mut() => ended,
        _ = conn.close.cancelled() => {
            served.as_mut().graceful_shutdown();
            served.await
        }
    };
    if let Err(e) = ended {
        debug!(error = %e, "admin connection ended");
    }
}

/// Where a request is: its body still arriving (the client's to send, so
/// the idle timer runs), received and being handled (busy: the timer
/// waits), answered.
enum Handling {
    Receiving,
    Busy(#[allow(dead_code)] Busy),
    Answered,
}

fn lock(h: &Mutex<Handling>) -> std::sync::MutexGuard<'_, Handling> {
    h.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A request body that marks its request busy once it has been received
/// whole.
struct BodyReceived {
    inner: Incoming,
    conn: Arc<Conn>,
    handling: Arc<Mutex<Handling>>,
}

impl BodyReceived {
    fn received(&self) {
        let mut h = lock(&self.handling);
        if matches!(*h, Handling::Receiving) {
            *h = Handling::Busy(Busy::enter(&self.conn));
        }
    }
}

impl hyper::body::Body for BodyReceived {
    type Data = hyper::body::Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None)) || self.inner.is_end_stream() {
            self.received();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// A request being handled on a connection, for as long as it lives.
struct Busy(Arc<Conn>);

impl Busy {
    fn enter(conn: &Arc<Conn>) -> Self {
        conn.busy.fetch_add(1, Ordering::SeqCst);
        Self(conn.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A connection's socket that fails with `TimedOut` once no byte moved
/// either way for `idle` while none of its requests is being handled.
struct IdleIo {
    inner: TcpStream,
    conn: Arc<Conn>,
    epoch: Instant,
    idle: Duration,
    deadline: Pin<Box<Sleep>>,
}

impl IdleIo {
    fn moved(&mut self) {
        self.deadline.as_mut().reset(Instant::now() + self.idle);
        let ms = self.epoch.elapsed().as_millis() as u64;
        self.conn.last_io_ms.store(ms, Ordering::SeqCst);
    }

    /// Called when the socket has nothing to do: the error to end the
    /// connection with once it has been idle too long.
    fn idle_too_long(&mut self, cx: &mut Context<'_>) -> Option<io::Error> {
        if self.deadline.as_mut().poll(cx).is_pending() {
            return None;
        }
        if self.conn.busy.load(Ordering::SeqCst) > 0 {
            // A handler is at work: not idle. Look again later.
            self.deadline.as_mut().reset(Instant::now() + self.idle);
            let _ = self.deadline.as_mut().poll(cx);
            return None;
        }
        Some(io::Error::new(
            io::ErrorKind::TimedOut,
            "admin connection idle too long",
        ))
    }

    fn pending_or_idle<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        match self.idle_too_long(cx) {
            Some(e) => Poll::Ready(Err(e)),
            None => Poll::Pending,
        }
    }

    /// A write's poll, seen by the idle clock: bytes written count as
    /// movement, a pending write as idleness.
    fn after_write(
        &mut self,
        cx: &mut Context<'_>,
        written: Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        match written {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    self.moved();
                }
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => self.pending_or_idle(cx),
        }
    }
}

impl AsyncRead for IdleIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.moved();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => this.pending_or_idle(cx),
        }
    }
}

impl AsyncWrite for IdleIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.after_write(cx, written)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.after_write(cx, written)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_flush(cx) {
            Poll::Pending => this.pending_or_idle(cx),
            ready => ready,
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
