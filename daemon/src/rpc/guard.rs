//! What one RPC connection may hold (S13/issue 12.13): a connection that sends nothing
//! for [`IDLE_TIMEOUT`] is closed, and bytes of frames not yet complete are counted
//! against one budget shared by every connection, so that many half-sent large frames
//! cannot take the daemon's memory (each may be up to `MAX_FRAME_LEN` on its own).

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_util::sync::CancellationToken;

/// A connection that has sent nothing for this long is closed. Clients always have
/// something to say sooner: a follower asks again every 20 s, a client waiting for a
/// build pings every 2 s.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(120);

/// Bytes of unfinished frames all connections together may hold.
pub const UNFINISHED_BUDGET: usize = 16 * 1024 * 1024;

/// Length prefix of a frame (tokio-util's `LengthDelimitedCodec` default: 4 bytes, big
/// endian, the body's length).
const HEADER: usize = 4;

/// Bytes of unfinished frames across connections.
#[derive(Debug, Clone)]
pub struct Budget {
    used: Arc<AtomicUsize>,
    limit: usize,
}

impl Budget {
    pub fn new(limit: usize) -> Budget {
        Budget {
            used: Arc::default(),
            limit,
        }
    }

    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }
}

/// A client's socket that tells when the peer has gone (`closed`), notes when it last
/// sent anything (`heard`), and keeps its unfinished frame within the [`Budget`].
pub struct Guarded<S> {
    inner: S,
    closed: CancellationToken,
    heard: Arc<tokio::sync::Notify>,
    budget: Budget,
    /// Header bytes of the current frame read so far, and its header.
    header_read: usize,
    header: [u8; HEADER],
    /// Body bytes of the current frame still to come.
    body_left: usize,
    /// Bytes of the current frame counted in the budget.
    counted: usize,
}

impl<S> Guarded<S> {
    pub fn new(
        inner: S,
        closed: CancellationToken,
        heard: Arc<tokio::sync::Notify>,
        budget: Budget,
    ) -> Guarded<S> {
        Guarded {
            inner,
            closed,
            heard,
            budget,
            header_read: 0,
            header: [0; HEADER],
            body_left: 0,
            counted: 0,
        }
    }

    /// Follows the frames through `bytes`; false if the budget is exceeded.
    fn account(&mut self, mut bytes: &[u8]) -> bool {
        while !bytes.is_empty() {
            let take = if self.header_read < HEADER {
                let take = (HEADER - self.header_read).min(bytes.len());
                self.header[self.header_read..self.header_read + take]
                    .copy_from_slice(&bytes[..take]);
                self.header_read += take;
                if self.header_read == HEADER {
                    self.body_left = u32::from_be_bytes(self.header) as usize;
                }
                take
            } else {
                let take = self.body_left.min(bytes.len());
                self.body_left -= take;
                take
            };
            bytes = &bytes[take..];
            self.counted += take;
            self.budget.used.fetch_add(take, Ordering::Relaxed);
            if self.header_read == HEADER && self.body_left == 0 {
                // A whole frame: it is the codec's now, parsed and let go.
                self.budget.used.fetch_sub(self.counted, Ordering::Relaxed);
                self.counted = 0;
                self.header_read = 0;
            }
        }
        self.budget.used() <= self.budget.limit
    }
}

impl<S> Drop for Guarded<S> {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.counted, Ordering::Relaxed);
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Guarded<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        match &polled {
            Poll::Ready(Ok(())) if buf.filled().len() == before && buf.remaining() > 0 => {
                self.closed.cancel();
            }
            Poll::Ready(Ok(())) => {
                self.heard.notify_one();
                let read = buf.filled()[before..].to_vec();
                if !self.account(&read) {
                    self.closed.cancel();
                    return Poll::Ready(Err(std::io::Error::other(
                        "too many bytes of unfinished requests across connections",
                    )));
                }
            }
            Poll::Ready(Err(_)) => self.closed.cancel(),
            Poll::Pending => {}
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Guarded<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Resolves once `heard` has not been notified for [`IDLE_TIMEOUT`] (or `idle`).
pub async fn idle(heard: &tokio::sync::Notify, timeout: Duration) {
    loop {
        if tokio::time::timeout(timeout, heard.notified())
            .await
            .is_err()
        {
            return;
        }
    }
}
