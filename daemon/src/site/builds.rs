//! Where builds run: each on a thread pool of its own, for as long as it runs.
//!
//! Sites share the machine, not a queue. On one shared pool, a big site's build (or a
//! page that takes long to parse) holds every worker, and a small site's build waits
//! behind all of it: a 1 ms build waited 3.4 s once. With a pool per build, concurrent
//! builds are threads the kernel schedules side by side, so each gets its share of the
//! cores and a small one ends in about its own time. A pool costs a few threads while
//! its build runs and nothing after; no site holds threads between builds.

use tokio::sync::oneshot;

/// Runs `job` off the async runtime on a pool of its own (one thread per core), and
/// hands back its result. `Err` if the job was lost: no thread could be started, or it
/// panicked (the builder catches its own panics; this is for anything else).
pub async fn run<T: Send + 'static>(
    job: impl FnOnce() -> T + Send + 'static,
) -> Result<T, &'static str> {
    let (tx, rx) = oneshot::channel();
    std::thread::Builder::new()
        .name("sited-build".into())
        .spawn(move || {
            let threads = std::thread::available_parallelism().map_or(2, usize::from);
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .thread_name(|i| format!("sited-build-{i}"))
                .build();
            // Without a pool of its own, the job runs on this thread alone: slower, but
            // it runs.
            let result = match pool {
                Ok(pool) => pool.install(job),
                Err(_) => job(),
            };
            let _ = tx.send(result);
        })
        .map_err(|_| "no thread could be started for the build")?;
    rx.await.map_err(|_| "the build was lost")
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use rayon::prelude::*;

    use super::*;

    /// One build holding every worker of its pool does not hold up another: the second
    /// build, itself parallel, ends while the first is still stuck. On a shared pool it
    /// could not start until the first let go.
    // The test blocks on channels: the spawned build must be polled by another worker.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_build_that_holds_its_pool_does_not_hold_up_another() {
        let (release, released) = mpsc::channel::<()>();
        let released = std::sync::Mutex::new(released);
        let (started, started_rx) = mpsc::channel::<()>();
        let threads = std::thread::available_parallelism().map_or(2, usize::from);
        let stuck = tokio::spawn(run(move || {
            // Every worker of this pool blocks until released.
            (0..threads)
                .into_par_iter()
                .for_each_with(started, |started, _| {
                    let _ = started.send(());
                    // Until released, or the test gives up (its sender is dropped).
                    let _ = released.lock().unwrap().recv();
                });
        }));
        // Wait until the first build really holds every one of its workers.
        for _ in 0..threads {
            started_rx.recv_timeout(Duration::from_secs(60)).unwrap();
        }
        let small = run(|| (0..1000u64).into_par_iter().map(|n| n * 2).sum::<u64>());
        let sum = tokio::time::timeout(Duration::from_secs(60), small)
            .await
            .expect("the small build ended while the big one was stuck")
            .unwrap();
        assert_eq!(sum, 999_000);
        assert!(
            !stuck.is_finished(),
            "the first build was still stuck meanwhile"
        );
        for _ in 0..threads {
            let _ = release.send(());
        }
        stuck.await.unwrap().unwrap();
    }
}
