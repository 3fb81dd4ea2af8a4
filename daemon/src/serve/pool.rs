//! The threads every site's connections run on: one pool for the whole daemon, one
//! thread per core, so a site costs memory, not threads (50 sites, still one thread per
//! core). Each thread runs a single-threaded tokio runtime; a site's accept loop deals
//! its new connections round-robin over them and a connection stays on its thread for
//! its life: nginx's model, with no work stealing and no cross-thread wake-up per
//! request. In 7 paired A/B runs on a busy 2-core machine, pinned connections served a
//! median of 29% more small-page requests/s than the daemon's work-stealing runtime, at
//! the same CPU time per request (BENCHMARKS.md).
//!
//! The pool holds no site state: draining a stopping site's connections is the site's
//! business ([`super::conns`]). The threads end when the last handle is dropped.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::mpsc;

/// Work for a pool thread: made on the thread that runs it, so it can register its
/// socket with that thread's reactor.
pub type Job = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

/// A handle on the connection threads; cheap to clone. The default runs connections on
/// whatever tokio runtime dispatches them (tests, and the fallback when no thread can be
/// started).
#[derive(Debug, Clone, Default)]
pub struct Pool {
    lanes: Option<Arc<Lanes>>,
}

#[derive(Debug)]
struct Lanes {
    /// One queue per thread.
    queues: Vec<mpsc::UnboundedSender<Job>>,
    next: AtomicUsize,
}

impl Pool {
    /// One thread per core, or `SITED_HTTP_THREADS` of them (1 to 64) when set: what
    /// bench/http-vs-nginx.sh compares pool sizes with. Never a number that grows with
    /// the sites.
    pub fn for_this_machine() -> Pool {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Pool::with_threads(threads_from(
            std::env::var("SITED_HTTP_THREADS").ok().as_deref(),
            cores,
        ))
    }

    /// `count` threads (at least one). If not one can be started, connections run on
    /// the dispatching runtime instead: slower, but served.
    pub fn with_threads(count: usize) -> Pool {
        let mut queues = Vec::with_capacity(count.max(1));
        for index in 0..count.max(1) {
            let (tx, rx) = mpsc::unbounded_channel();
            match start_thread(index, rx) {
                Ok(()) => queues.push(tx),
                Err(error) => {
                    tracing::warn!(%error, "cannot start a connection thread");
                    break;
                }
            }
        }
        if queues.is_empty() {
            return Pool::default();
        }
        Pool {
            lanes: Some(Arc::new(Lanes {
                queues,
                next: AtomicUsize::new(0),
            })),
        }
    }

    /// How many threads run connections (0: the dispatching runtime does).
    pub fn threads(&self) -> usize {
        self.lanes.as_ref().map_or(0, |lanes| lanes.queues.len())
    }

    /// Runs `job` on the next thread in turn.
    pub fn spawn(&self, job: Job) {
        match &self.lanes {
            Some(lanes) => {
                let next = lanes.next.fetch_add(1, Ordering::Relaxed);
                let queue = &lanes.queues[next % lanes.queues.len()];
                if let Err(mpsc::error::SendError(job)) = queue.send(job) {
                    // The thread died (a panic escaped a connection): serve here rather
                    // than drop the connection.
                    tracing::error!("a connection thread is gone; serving on the caller");
                    tokio::spawn(job());
                }
            }
            None => {
                tokio::spawn(job());
            }
        }
    }
}

/// The pool size `SITED_HTTP_THREADS` asks for, else `cores`; a value that is not a
/// number from 1 to 64 is ignored with a warning.
fn threads_from(asked: Option<&str>, cores: usize) -> usize {
    let Some(asked) = asked else { return cores };
    match asked.trim().parse::<usize>() {
        Ok(n) if (1..=64).contains(&n) => n,
        _ => {
            tracing::warn!(
                value = asked,
                "SITED_HTTP_THREADS must be a number from 1 to 64; using one thread per core"
            );
            cores
        }
    }
}

fn start_thread(index: usize, mut jobs: mpsc::UnboundedReceiver<Job>) -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .thread_name("sited-http")
        .build()?;
    std::thread::Builder::new()
        .name(format!("sited-http-{index}"))
        .spawn(move || {
            runtime.block_on(async move {
                while let Some(job) = jobs.recv().await {
                    tokio::spawn(job());
                }
            });
            // Every site has drained its connections before the last handle goes; what
            // is left (a compression in flight) ends on its own.
            runtime.shutdown_background();
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn jobs_run_on_the_pool_threads_in_turn() {
        let pool = Pool::with_threads(2);
        assert_eq!(pool.threads(), 2);
        let (tx, mut rx) = mpsc::unbounded_channel();
        for _ in 0..4 {
            let tx = tx.clone();
            pool.spawn(Box::new(move || {
                Box::pin(async move {
                    let name = std::thread::current().name().map(str::to_string);
                    tx.send(name).unwrap();
                })
            }));
        }
        let mut names = Vec::new();
        for _ in 0..4 {
            names.push(rx.recv().await.unwrap().unwrap());
        }
        names.sort();
        assert_eq!(
            names,
            [
                "sited-http-0",
                "sited-http-0",
                "sited-http-1",
                "sited-http-1"
            ]
        );
    }

    #[test]
    fn the_thread_count_is_the_cores_unless_asked_within_bounds() {
        assert_eq!(threads_from(None, 2), 2);
        assert_eq!(threads_from(Some("4"), 2), 4);
        assert_eq!(threads_from(Some(" 1 "), 8), 1);
        for bad in ["0", "65", "-1", "many", ""] {
            assert_eq!(threads_from(Some(bad), 2), 2, "{bad:?}");
        }
    }

    #[tokio::test]
    async fn the_default_pool_runs_on_the_caller() {
        let pool = Pool::default();
        assert_eq!(pool.threads(), 0);
        let (tx, rx) = tokio::sync::oneshot::channel();
        pool.spawn(Box::new(move || {
            Box::pin(async move {
                tx.send(()).unwrap();
            })
        }));
        rx.await.unwrap();
    }
}
