//! The bounds on what clients can make a site's server hold: connections, the size of a
//! request head, and time. A client that connects and sends nothing, trickles its
//! headers (slowloris), idles on keep-alive or stops reading a response it asked for
//! loses its connection after a bounded time, and sooner if a new client needs its
//! place ([`super::conns`]), so no number of them can keep a request out (S21).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// Every bound of one site's server.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Connections for pages (a browser opens about six per origin). Past this, a new
    /// one displaces the connection quiet the longest.
    pub max_connections: usize,
    /// How long a connection must have been quiet before a newcomer may displace it:
    /// a client gets that long to send its request after connecting, and connections
    /// busy with back-to-back requests are never thrashed.
    pub displace_after: Duration,
    /// More connections let in while every one of `max_connections` is busy answering;
    /// past these, new ones wait in the kernel's accept backlog until one closes.
    pub reserve_connections: usize,
    /// Live-reload event streams (one per open tab), counted apart from the above; past
    /// this, the oldest is closed and its browser reconnects.
    pub max_event_streams: usize,
    /// Time to send a whole request head, counted from the connection's start or the end
    /// of the previous response. This is also the keep-alive idle timeout: reconnecting
    /// to a local server costs a browser well under a millisecond.
    pub header_read_timeout: Duration,
    /// A response write that makes no progress for this long (a client that stopped
    /// reading) ends the connection.
    pub write_stall_timeout: Duration,
    /// Largest request head (request line and headers); larger gets 431. hyper's floor
    /// is 8 KiB.
    pub max_head_bytes: usize,
    /// Most header lines in a request; more gets 431.
    pub max_headers: usize,
    /// Longest request target; longer gets 414.
    pub max_uri_bytes: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_connections: 512,
            displace_after: Duration::from_millis(100),
            reserve_connections: 64,
            max_event_streams: 128,
            header_read_timeout: Duration::from_secs(5),
            write_stall_timeout: Duration::from_secs(30),
            max_head_bytes: 16 * 1024,
            max_headers: 64,
            max_uri_bytes: 8 * 1024,
        }
    }
}

/// Raises this process's soft limit on open files to its hard limit (at most 2^20,
/// Linux's default `fs.nr_open`, above which raising fails), so that the connection bounds above, not `EMFILE`, decide how many
/// connections are held: desktop sessions often start with a soft limit of 1,024, which
/// one site under attack (S21) would use up for every site and the control socket.
/// Returns the limit now in force.
pub fn raise_open_files_limit() -> Option<u64> {
    const MAX_OPEN_FILES: u64 = 1 << 20;
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let wanted = limit.maximum.unwrap_or(MAX_OPEN_FILES).min(MAX_OPEN_FILES);
    match limit.current {
        Some(current) if current >= wanted => Some(current),
        _ => match setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(wanted),
                maximum: limit.maximum,
            },
        ) {
            Ok(()) => Some(wanted),
            Err(error) => {
                tracing::warn!(%error, "cannot raise the open files limit");
                limit.current
            }
        },
    }
}

/// A stream whose writes fail with `TimedOut` once they have been blocked (the peer's
/// receive window full) for the stall timeout. Progress of any size resets the clock;
/// an idle connection with nothing to write is not stalled.
#[derive(Debug)]
pub struct StallGuard<T> {
    inner: T,
    timeout: Duration,
    /// Armed when a write first returns `Pending`, dropped on progress.
    stalled: Option<Pin<Box<Sleep>>>,
}

impl<T> StallGuard<T> {
    pub fn new(inner: T, timeout: Duration) -> StallGuard<T> {
        StallGuard {
            inner,
            timeout,
            stalled: None,
        }
    }

    fn on_write<R>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<R>>,
    ) -> Poll<io::Result<R>> {
        match polled {
            Poll::Ready(result) => {
                self.stalled = None;
                Poll::Ready(result)
            }
            Poll::Pending => {
                let timeout = self.timeout;
                let sleep = self
                    .stalled
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                if sleep.as_mut().poll(cx).is_ready() {
                    Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the client stopped reading",
                    )))
                } else {
                    Poll::Pending
                }
            }
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for StallGuard<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for StallGuard<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.on_write(cx, polled)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.on_write(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_flush(cx);
        self.on_write(cx, polled)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.on_write(cx, polled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[test]
    fn the_open_files_limit_is_raised_to_the_hard_limit() {
        let hard = rustix::process::getrlimit(rustix::process::Resource::Nofile).maximum;
        let now = raise_open_files_limit().expect("a limit");
        assert_eq!(now, hard.unwrap_or(1 << 20).min(1 << 20));
    }

    #[tokio::test(start_paused = true)]
    async fn a_peer_that_stops_reading_times_out_and_one_that_reads_does_not() {
        let (near, mut far) = tokio::io::duplex(1024);
        let mut guarded = StallGuard::new(near, Duration::from_secs(5));
        let chunk = vec![7u8; 4096];
        // Nobody reads `far`: the 1 KiB pipe fills and the write stalls until the timeout.
        let error = guarded.write_all(&chunk).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);

        let (near, mut far2) = tokio::io::duplex(1024);
        let mut guarded = StallGuard::new(near, Duration::from_secs(5));
        let reader = tokio::spawn(async move {
            let mut sink = Vec::new();
            tokio::io::AsyncReadExt::read_to_end(&mut far2, &mut sink)
                .await
                .unwrap();
            sink.len()
        });
        guarded.write_all(&chunk).await.unwrap();
        guarded.shutdown().await.unwrap();
        drop(guarded);
        assert_eq!(reader.await.unwrap(), 4096);
        let _ = far.write_all(b"").await;
    }
}
