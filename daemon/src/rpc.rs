//! The control plane: tarpc over the Unix socket. Each connection is checked for the
//! peer's uid, then served on its own task; a connection that sends garbage or an
//! oversized frame ends, and only it.

use std::sync::Arc;

use futures::StreamExt;
use sited_proto::{Error, Hello, PROTOCOL_VERSION, SiteInfo, SiteSpec, Sited, Target, VERSION};
use tarpc::context::Context;
use tarpc::server::{BaseChannel, Channel};
use tokio::net::UnixListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::registry::Registry;

/// One connection's view of the daemon.
#[derive(Debug, Clone)]
struct Server {
    registry: Arc<Registry>,
    /// Cancelled by the `shutdown` call: the daemon's root token.
    shutdown: CancellationToken,
}

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
        let result = self.registry.up(spec).await;
        if let Err(error) = &result {
            tracing::warn!(%error, "up refused");
        }
        result
    }

    async fn down(self, _: Context, target: Target) -> Result<Vec<SiteInfo>, Error> {
        tracing::info!(%target, "down");
        self.registry.down(&target).await
    }

    async fn ps(self, _: Context) -> Vec<SiteInfo> {
        self.registry.ps()
    }

    async fn shutdown(self, _: Context) {
        tracing::info!("shutdown requested over RPC");
        self.shutdown.cancel();
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
    let server = Server { registry, shutdown };
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
        let channel = BaseChannel::with_defaults(sited_proto::transport::transport(stream));
        let server = server.clone();
        let stop = stop.clone();
        let requests = tracker.clone();
        tracker.spawn(async move {
            let connection = channel.execute(server.serve()).for_each(|request| {
                requests.spawn(request);
                async {}
            });
            tokio::select! {
                () = stop.cancelled() => {}
                () = connection => {}
            }
        });
    }
}
