//! One connection's life on a pool thread: HTTP/1.1 keep-alive through hyper, its
//! activity (busy answering, quiet, an event stream) reported to the site's table of
//! connections, and its end when that table or the site says so: it stops taking new
//! requests, finishes the response it is writing for a short while, then is dropped.

use std::convert::Infallible;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpStream;

use super::conns::{Admitted, Slot};
use super::pool::Job;
use super::zerocopy::ZeroCopy;
use super::{Published, ReplyBody, ServeConfig, limits, respond_or_500};

/// How long a connection told to close may take to finish the response it is writing.
pub const DRAIN_DEADLINE: Duration = Duration::from_millis(500);

/// What every connection of one site shares.
#[derive(Debug)]
pub struct Site {
    pub output: Published,
    pub config: Arc<ServeConfig>,
    http: http1::Builder,
}

impl Site {
    pub fn new(output: Published, config: Arc<ServeConfig>) -> Site {
        let mut http = http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(config.limits.header_read_timeout)
            .max_buf_size(config.limits.max_head_bytes.max(8192))
            .max_headers(config.limits.max_headers)
            .keep_alive(true);
        Site {
            output,
            config,
            http,
        }
    }
}

/// The work of serving `stream`, to run on a pool thread.
pub fn job(site: Arc<Site>, stream: std::net::TcpStream, admitted: Admitted) -> Job {
    Box::new(move || Box::pin(run(site, stream, admitted)))
}

async fn run(site: Arc<Site>, stream: std::net::TcpStream, admitted: Admitted) {
    // Registers the socket with this thread's reactor.
    let stream = match TcpStream::from_std(stream) {
        Ok(stream) => stream,
        Err(error) => {
            tracing::debug!(%error, "cannot take over a connection");
            return;
        }
    };
    let admitted = Arc::new(admitted);
    let token = admitted.slot().token().clone();
    let io = TokioIo::new(limits::StallGuard::new(
        ZeroCopy::new(stream),
        site.config.limits.write_stall_timeout,
    ));
    let service = {
        let site = site.clone();
        let admitted = admitted.clone();
        service_fn(move |request: hyper::Request<Incoming>| {
            admitted.slot().busy();
            let snapshot = site.output.borrow().clone();
            let site = site.clone();
            let admitted = admitted.clone();
            async move {
                let slot = admitted.slot();
                let reply = respond_or_500(&request, &snapshot, &site.config, slot.token()).await;
                if matches!(reply.body(), ReplyBody::Events(_)) {
                    admitted.become_stream();
                }
                let slot = slot.clone();
                Ok::<_, Infallible>(reply.map(|body| Tracked { body, slot }))
            }
        })
    };
    let connection = site.http.serve_connection(io, service);
    tokio::pin!(connection);
    tokio::select! {
        biased;
        _ = connection.as_mut() => {}
        () = token.cancelled() => {
            // Closes at once if idle, else after the response being written.
            connection.as_mut().graceful_shutdown();
            if tokio::time::timeout(DRAIN_DEADLINE, connection).await.is_err() {
                tracing::debug!("a connection did not finish in time; closing it");
            }
        }
    }
}

/// A response body that marks its connection quiet once hyper is done with it.
#[derive(Debug)]
struct Tracked {
    body: ReplyBody,
    slot: Arc<Slot>,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.slot.quiet();
    }
}

impl Body for Tracked {
    type Data = bytes::Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<bytes::Bytes>, io::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
