//! The threads a site's connections run on. The accept loop hands each new connection, in
//! turn, to one of a few threads that each run a single-threaded tokio runtime, and the
//! connection stays there for its life: nginx's model, with no work stealing and no
//! cross-thread wake-up per request. In 7 paired A/B runs on a busy 2-core machine (wrk
//! and other processes competing for the cores), pinned connections served a median of
//! 29% more small-page requests/s than the daemon's work-stealing runtime, at the same
//! CPU time per request (BENCHMARKS.md).
//!
//! Each thread drains its own connections when the site's token is cancelled, then ends;
//! [`Workers::shutdown`] waits for all of them.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, mpsc, oneshot};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::{Published, ServeConfig, limits, respond_or_500};

/// How long open connections get to finish when the site stops.
const DRAIN_DEADLINE: Duration = Duration::from_millis(500);
/// Threads per site, at most: a dev server has a handful of clients, and every site has
/// its own.
const MAX_THREADS: usize = 4;

/// One accepted connection on its way to a thread, with the slot it holds.
#[derive(Debug)]
struct Handoff {
    stream: std::net::TcpStream,
    permit: OwnedSemaphorePermit,
}

/// A site's connection threads.
#[derive(Debug)]
pub struct Workers {
    /// One queue per thread; connections are dealt round-robin.
    lanes: Vec<mpsc::UnboundedSender<Handoff>>,
    next: usize,
    /// Fires when a lane has drained and its runtime is gone.
    done: Vec<oneshot::Receiver<()>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Workers {
    /// Starts one lane per core (at most [`MAX_THREADS`]). Lanes end when `token` is
    /// cancelled. If no thread can be started, one lane runs as a task on the current
    /// runtime instead: slower, but the site is served.
    pub fn start(
        output: &Published,
        config: &Arc<ServeConfig>,
        token: &CancellationToken,
    ) -> Workers {
        let count = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, MAX_THREADS);
        let span = tracing::Span::current();
        let mut workers = Workers {
            lanes: Vec::with_capacity(count),
            next: 0,
            done: Vec::with_capacity(count),
            threads: Vec::with_capacity(count),
        };
        for index in 0..count {
            let (tx, rx) = mpsc::unbounded_channel();
            let (done_tx, done_rx) = oneshot::channel();
            let lane = lane(rx, output.clone(), config.clone(), token.clone());
            match spawn_thread(index, lane.instrument(span.clone()), done_tx) {
                Ok(thread) => {
                    workers.lanes.push(tx);
                    workers.done.push(done_rx);
                    workers.threads.push(thread);
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot start a connection thread");
                    break;
                }
            }
        }
        if workers.lanes.is_empty() {
            let (tx, rx) = mpsc::unbounded_channel();
            let (done_tx, done_rx) = oneshot::channel();
            let lane = lane(rx, output.clone(), config.clone(), token.clone());
            tokio::spawn(
                async move {
                    lane.await;
                    let _ = done_tx.send(());
                }
                .instrument(span),
            );
            workers.lanes.push(tx);
            workers.done.push(done_rx);
        }
        workers
    }

    /// Hands `stream` to the next lane; `permit` is released when the connection ends.
    pub fn dispatch(&mut self, stream: TcpStream, permit: OwnedSemaphorePermit) {
        // Moving it to another runtime means leaving this one's reactor first.
        let stream = match stream.into_std() {
            Ok(stream) => stream,
            Err(error) => {
                tracing::debug!(%error, "cannot hand over a connection");
                return;
            }
        };
        let lane = &self.lanes[self.next % self.lanes.len()];
        self.next = self.next.wrapping_add(1);
        // A lane only stops receiving once the token is cancelled: the connection is
        // dropped with the site.
        let _ = lane.send(Handoff { stream, permit });
    }

    /// Waits until every lane has drained (the token must be cancelled) and its thread
    /// has ended.
    pub async fn shutdown(self) {
        drop(self.lanes);
        for done in self.done {
            let _ = done.await;
        }
        let threads = self.threads;
        let _ = tokio::task::spawn_blocking(move || {
            for thread in threads {
                let _ = thread.join();
            }
        })
        .await;
    }
}

fn spawn_thread(
    index: usize,
    lane: impl Future<Output = ()> + Send + 'static,
    done: oneshot::Sender<()>,
) -> io::Result<std::thread::JoinHandle<()>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .thread_name("sited-http")
        .build()?;
    std::thread::Builder::new()
        .name(format!("sited-http-{index}"))
        .spawn(move || {
            runtime.block_on(lane);
            // Compression or file reads still running finish on their own.
            runtime.shutdown_background();
            let _ = done.send(());
        })
}

/// Serves the connections dealt to one lane until `token` is cancelled, then lets them
/// finish for a short while and drops the rest.
async fn lane(
    mut incoming: mpsc::UnboundedReceiver<Handoff>,
    output: Published,
    config: Arc<ServeConfig>,
    token: CancellationToken,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut connections = JoinSet::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(config.limits.header_read_timeout)
        .max_buf_size(config.limits.max_head_bytes.max(8192))
        .max_headers(config.limits.max_headers)
        .keep_alive(true);
    loop {
        let Handoff { stream, permit } = tokio::select! {
            biased;
            () = token.cancelled() => break,
            handoff = incoming.recv() => match handoff {
                Some(handoff) => handoff,
                None => break,
            },
        };
        let stream = match TcpStream::from_std(stream) {
            Ok(stream) => stream,
            Err(error) => {
                tracing::debug!(%error, "cannot take over a connection");
                continue;
            }
        };
        let io = TokioIo::new(limits::StallGuard::new(
            stream,
            config.limits.write_stall_timeout,
        ));
        let output = output.clone();
        let config = config.clone();
        let service = service_fn(move |request: hyper::Request<Incoming>| {
            let snapshot = output.borrow().clone();
            let config = config.clone();
            async move {
                Ok::<_, std::convert::Infallible>(
                    respond_or_500(&request, &snapshot, &config).await,
                )
            }
        });
        let connection = graceful.watch(http.serve_connection(io, service));
        connections.spawn(async move {
            let _ = connection.await;
            drop(permit);
        });
        // Reap finished connections so the set does not grow without bound.
        while connections.try_join_next().is_some() {}
    }
    drop(incoming);
    if tokio::time::timeout(DRAIN_DEADLINE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::debug!("connections still open after the drain deadline; closing them");
    }
    connections.shutdown().await;
}
