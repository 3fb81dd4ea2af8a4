//! The control plane: tarpc over the Unix socket. Each connection is checked for the
//! peer's uid, then served on its own task; a connection that sends garbage or an
//! oversized frame ends, and only it.

use std::sync::{Arc, Mutex};

use futures::StreamExt;
use sited_proto::{
    Error, Hello, LogLine, LogQuery, PROTOCOL_VERSION, SiteInfo, SiteSpec, Sited, SitedRequest,
    SitedResponse, Target, VERSION,
};
use tarpc::context::Context;
use tarpc::server::{BaseChannel, Channel};
use tokio::net::UnixListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::registry::{Attachment, Registry};

/// One connection's view of the daemon.
#[derive(Debug, Clone)]
struct Server {
    registry: Arc<Registry>,
    /// Cancelled by the `shutdown` call: the daemon's root token.
    shutdown: CancellationToken,
    /// Sites this connection brought up attached: they go down when the connection
    /// closes (or, at the latest, when the last request of it ends and drops this).
    attached: Arc<Mutex<Vec<Attachment>>>,
    /// Cancelled when the client's end of the connection closes.
    closed: CancellationToken,
}

/// Longest a `logs` call may wait for a new line; clients call again.
const MAX_LOG_WAIT_MS: u64 = 30_000;

impl Sited for Server {
    async fn hello(self, _: Context, client_protocol: u32) -> Hello {
        if client_protocol != PROTOCOL_VERSION {
            tracing::warn!(client_protocol, "client speaks another protocol version");
        }
        Hello {
            version: VERSION.to_string(),
            protocol: PROTOCOL_VERSION,
            pid: std::process::id(),
        }
    }

    async fn up(self, _: Context, spec: SiteSpec) -> Result<SiteInfo, Error> {
        tracing::info!(root = %spec.root.display(), port = ?spec.port, "up");
        let started = match self.registry.start(spec).await {
            Ok(started) => started,
            Err(error) => {
                tracing::warn!(%error, "up refused");
                return Err(error);
            }
        };
        // Kept before the first build, which the client may not live through: only a
        // site this call created comes with an attachment (another client's is not ours).
        if let Some(attachment) = started.attachment {
            if self.closed.is_cancelled() {
                // The connection closed (and took the list) meanwhile.
                drop(attachment);
            } else {
                self.attached
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(attachment);
            }
        }
        Ok(started.site.settled().await)
    }

    async fn down(self, _: Context, target: Target) -> Result<Vec<SiteInfo>, Error> {
        tracing::info!(%target, "down");
        self.registry.down(&target).await
    }

    async fn ps(self, _: Context) -> Vec<SiteInfo> {
        self.registry.ps()
    }

    async fn logs(self, _: Context, mut query: LogQuery) -> Result<Vec<LogLine>, Error> {
        query.wait_ms = query.wait_ms.min(MAX_LOG_WAIT_MS);
        let port = query.port;
        let no_such_site = || Error::NoSuchSite {
            target: Target::Port(port.unwrap_or_default()),
        };
        // A follower's wait must not hold the daemon's shutdown until its deadline: it
        // ends with the shutdown, which the follower is told of.
        tokio::select! {
            biased;
            lines = self.registry.logs().query(&query) => lines.ok_or_else(no_such_site),
            () = self.shutdown.cancelled() => Err(Error::ShuttingDown),
        }
    }

    async fn shutdown(self, _: Context) {
        tracing::info!("shutdown requested over RPC");
        self.shutdown.cancel();
    }

    async fn restart(self, _: Context, port: u16) -> Result<SiteInfo, Error> {
        tracing::info!(port, "restart");
        let result = self.registry.restart(port).await;
        if let Err(error) = &result {
            tracing::warn!(%error, "restart refused");
        }
        result
    }

    async fn rebuild(self, _: Context, port: u16) -> Result<SiteInfo, Error> {
        tracing::info!(port, "rebuild");
        self.registry.rebuild(port).await
    }
}

/// Accepts connections until `stop` is cancelled. Connection tasks end with it too.
pub async fn serve(
    listener: UnixListener,
    registry: Arc<Registry>,
    shutdown: CancellationToken,
    stop: CancellationToken,
    tracker: TaskTracker,
) {
    let server = Server {
        registry,
        shutdown,
        attached: Arc::default(),
        closed: CancellationToken::new(),
    };
    let me = sited_proto::paths::current_uid();
    loop {
        let stream = tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    tracing::warn!(%error, "RPC accept failed");
                    tokio::select! {
                        () = stop.cancelled() => break,
                        () = tokio::time::sleep(std::time::Duration::from_millis(50)) => continue,
                    }
                }
            },
        };
        // The socket is 0600 in a 0700 dir; the uid check is the second lock on the door.
        match stream.peer_cred() {
            Ok(cred) if cred.uid() == me => {}
            Ok(cred) => {
                tracing::warn!(uid = cred.uid(), "refused RPC connection from another user");
                continue;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot read RPC peer credentials; refusing");
                continue;
            }
        }
        // tarpc keeps a channel open while requests are in flight (a client following a
        // log has one waiting most of the time); the client's end of the socket is seen
        // here, at once.
        let closed = CancellationToken::new();
        let stream = EofWatch {
            inner: stream,
            closed: closed.clone(),
        };
        let transport = sited_proto::transport::transport(stream);
        tracker.spawn(serve_connection(
            transport,
            server.clone(),
            closed,
            stop.clone(),
            tracker.clone(),
        ));
    }
}

/// Serves one connection's requests (each on its own task of `tracker`) until the client
/// goes (`closed`, or the end of its requests) or `stop` is cancelled; then the sites it
/// brought up attached go down. Any transport: the Unix socket, or an in-memory channel
/// in tests.
async fn serve_connection<T>(
    transport: T,
    server: Server,
    closed: CancellationToken,
    stop: CancellationToken,
    tracker: TaskTracker,
) where
    T: tarpc::Transport<tarpc::Response<SitedResponse>, tarpc::ClientMessage<SitedRequest>>
        + Send
        + 'static,
{
    let channel = BaseChannel::with_defaults(transport);
    // Each connection has its own list of attached sites.
    let server = Server {
        attached: Arc::default(),
        closed: closed.clone(),
        ..server
    };
    let attached = server.attached.clone();
    let connection = channel.execute(server.serve()).for_each(|request| {
        tracker.spawn(request);
        async {}
    });
    tokio::select! {
        () = stop.cancelled() => {}
        () = closed.cancelled() => {}
        () = connection => {}
    }
    // The client is gone (or the daemon is stopping): its attached sites go too.
    closed.cancel();
    drop(std::mem::take(
        &mut *attached.lock().unwrap_or_else(|p| p.into_inner()),
    ));
}

/// A socket that tells when the peer has gone: its read side reached the end, or failed.
struct EofWatch {
    inner: tokio::net::UnixStream,
    closed: CancellationToken,
}

impl tokio::io::AsyncRead for EofWatch {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        match &polled {
            std::task::Poll::Ready(Ok(()))
                if buf.filled().len() == before && buf.remaining() > 0 =>
            {
                self.closed.cancel();
            }
            std::task::Poll::Ready(Err(_)) => self.closed.cancel(),
            _ => {}
        }
        polled
    }
}

impl tokio::io::AsyncWrite for EofWatch {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests;
