//! The control plane: tarpc over the Unix socket. Each connection is checked for the
//! peer's uid, then served on its own task; a connection that sends garbage or an
//! oversized frame ends, and only it.

use std::path::{Path, PathBuf};
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

/// How long a connection is still served once the daemon stops: answers already made
/// (a log follower told of the shutdown) go out, and a call made meanwhile is answered
/// (with the shutdown), instead of the client finding its connection cut mid-call.
const STOP_GRACE: std::time::Duration = std::time::Duration::from_millis(200);

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
        let info = started.site.settled().await;
        Ok(self.registry.with_warnings(info))
    }

    async fn down(self, _: Context, target: Target) -> Result<Vec<SiteInfo>, Error> {
        tracing::info!(%target, "down");
        let stopped = self.registry.down(&target).await?;
        Ok(stopped
            .into_iter()
            .map(|info| self.registry.with_warnings(info))
            .collect())
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
        // ends with the shutdown, which the follower is told of. The shutdown comes
        // first even when lines are waiting (the sites log their stopping meanwhile):
        // a follower given lines would ask again, and its next call could find the
        // connection closed and end in an error instead of the daemon's goodbye.
        tokio::select! {
            biased;
            () = self.shutdown.cancelled() => Err(Error::ShuttingDown),
            lines = self.registry.logs().query(&query) => lines.ok_or_else(no_such_site),
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

/// How often the daemon looks whether its socket file is still there (S28): a deleted
/// socket leaves every client out, so it is made anew within this long.
const SOCKET_CHECK: std::time::Duration = std::time::Duration::from_secs(1);

/// The socket file the daemon made, to make again if someone deletes it.
struct KeptSocket {
    path: PathBuf,
    /// (device, inode) of the file the listener is bound to.
    id: Option<(u64, u64)>,
}

impl KeptSocket {
    fn new(path: PathBuf) -> KeptSocket {
        let id = file_id(&path);
        KeptSocket { path, id }
    }

    /// A new listener if the socket file is gone; `None` while it is there (or when what
    /// stands there now is someone else's: it is left alone).
    fn recheck(&mut self) -> Option<UnixListener> {
        match std::fs::symlink_metadata(&self.path) {
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            _ => return None,
        }
        let bound = UnixListener::bind(&self.path).and_then(|listener| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&self.path, std::fs::Permissions::from_mode(0o600))?;
            Ok(listener)
        });
        match bound {
            Ok(listener) => {
                self.id = file_id(&self.path);
                tracing::warn!(socket = %self.path.display(), "the socket file was deleted; listening on a new one");
                Some(listener)
            }
            Err(error) => {
                tracing::warn!(socket = %self.path.display(), %error, "the socket file was deleted and cannot be made again");
                None
            }
        }
    }
}

fn file_id(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(path)
        .ok()
        .map(|meta| (meta.dev(), meta.ino()))
}

/// Accepts connections until `stop` is cancelled. Connection tasks end with it too.
/// `socket` is the path of a socket file the daemon made itself: if it is deleted, a new
/// one is bound there (`None` for a socket a service manager owns).
pub async fn serve(
    mut listener: UnixListener,
    socket: Option<PathBuf>,
    registry: Arc<Registry>,
    shutdown: CancellationToken,
    stop: CancellationToken,
    tracker: TaskTracker,
) {
    let budget = guard::Budget::new(guard::UNFINISHED_BUDGET);
    let mut kept = socket.map(KeptSocket::new);
    let mut check = tokio::time::interval(SOCKET_CHECK);
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
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
            _ = check.tick(), if kept.is_some() => {
                if let Some(fresh) = kept.as_mut().and_then(KeptSocket::recheck) {
                    listener = fresh;
                }
                continue;
            }
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
        tracker.spawn(serve_stream(
            stream,
            server.clone(),
            budget.clone(),
            stop.clone(),
            tracker.clone(),
        ));
    }
}

/// Serves one client's stream: closed when the client goes, when it has sent nothing
/// for [`guard::IDLE_TIMEOUT`], or when its unfinished frame would take `budget` over.
async fn serve_stream<S>(
    stream: S,
    server: Server,
    budget: guard::Budget,
    stop: CancellationToken,
    tracker: TaskTracker,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let closed = CancellationToken::new();
    let heard = Arc::new(tokio::sync::Notify::new());
    let stream = guard::Guarded::new(stream, closed.clone(), heard.clone(), budget);
    let transport = sited_proto::transport::transport(stream);
    let idle = closed.clone();
    tracker.spawn(async move {
        tokio::select! {
            () = guard::idle(&heard, guard::IDLE_TIMEOUT) => {
                tracing::debug!("closing an RPC connection that sent nothing for a while");
                idle.cancel();
            }
            () = idle.cancelled() => {}
        }
    });
    serve_connection(transport, server, closed, stop, tracker).await;
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
    tokio::pin!(connection);
    tokio::select! {
        () = stop.cancelled() => {
            // Ends sooner when the client hangs up, as a told client does.
            let _ = tokio::time::timeout(STOP_GRACE, &mut connection).await;
        }
        () = closed.cancelled() => {}
        () = &mut connection => {}
    }
    // The client is gone (or the daemon is stopping): its attached sites go too.
    closed.cancel();
    drop(std::mem::take(
        &mut *attached.lock().unwrap_or_else(|p| p.into_inner()),
    ));
}

mod guard;
#[cfg(test)]
mod tests;
