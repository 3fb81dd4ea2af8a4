//! HTTP for one site: hyper 1 over HTTP/1.1 keep-alive, answering only URLs the build
//! produced. No part of a request path is ever joined onto the file system: the path is
//! decoded and looked up in the published [`Output`], nothing else.

pub mod livereload;

use std::convert::Infallible;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::FutureExt;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::build::{Body as BuildBody, Output};

/// Open connections per site; past this, new ones wait in the accept backlog.
const MAX_CONNECTIONS: usize = 256;
/// A client must send its request head within this time (slowloris).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest request head accepted.
const MAX_HEAD_BYTES: usize = 16 * 1024;
/// How long open connections get to finish when the site stops.
const DRAIN_DEADLINE: Duration = Duration::from_millis(500);

/// Test-only: set to `1` in the daemon's environment to make a GET of
/// [`TEST_PANIC_PATH`] panic inside the request handler. The end-to-end tests use it to
/// prove that a handler panic is that request's 500 and nothing more (nothing a real
/// request can reach panics on purpose). Read once when a site's server starts.
pub const TEST_PANIC_ENV: &str = "SITED_TEST_PANIC_REQUEST";
/// The path that panics when [`TEST_PANIC_ENV`] is set; under the live-reload prefix,
/// which no build output uses.
pub const TEST_PANIC_PATH: &str = "/__sited/test-panic";

/// The latest published build; a request takes one snapshot and sees only it.
pub type Published = watch::Receiver<Arc<Output>>;

/// What a site's server answers from.
#[derive(Debug, Clone)]
pub struct Site {
    /// The build being served.
    pub output: Published,
    /// The live-reload state browsers follow.
    pub live: livereload::Live,
    /// Cancelled when the site stops; ends the server and every live-reload stream.
    pub token: CancellationToken,
}

/// Serves `listener` until the site's token is cancelled, then stops accepting, lets
/// open connections finish for a short while and drops the rest. When this returns, the
/// listening socket is closed.
pub async fn serve(listener: TcpListener, site: Site) {
    let token = site.token.clone();
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut connections = JoinSet::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(MAX_HEAD_BYTES.max(8192))
        .keep_alive(true);
    let test_panic = std::env::var_os(TEST_PANIC_ENV).is_some_and(|v| v == "1");
    loop {
        let permit = tokio::select! {
            biased;
            () = token.cancelled() => break,
            permit = permits.clone().acquire_owned() => permit.expect("semaphore is never closed"),
        };
        let (stream, _) = tokio::select! {
            biased;
            () = token.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(port, %error, "accept failed");
                    tokio::select! {
                        () = token.cancelled() => break,
                        () = tokio::time::sleep(Duration::from_millis(50)) => continue,
                    }
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let site = site.clone();
        let service = service_fn(move |request| {
            let answer = respond_or_500(request, site.clone(), port, test_panic);
            async move { Ok::<_, Infallible>(answer.await) }
        });
        let connection = http.serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        connections.spawn(async move {
            let _ = connection.await;
            drop(permit);
        });
        // Reap finished connections so the set does not grow without bound.
        while connections.try_join_next().is_some() {}
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_DEADLINE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::debug!(
            port,
            "connections still open after the drain deadline; closing them"
        );
    }
    connections.shutdown().await;
}

/// Response bodies: whole buffers, or the live-reload event stream.
pub type Body = UnsyncBoxBody<Bytes, Infallible>;
type Reply = Response<Body>;

fn full(bytes: Bytes) -> Body {
    Full::new(bytes).boxed_unsync()
}

fn plain(status: StatusCode, text: &'static str) -> Reply {
    let mut response = Response::new(full(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// Host names a local dev server answers to. Anything else is a DNS-rebinding attempt
/// (a foreign page resolving its own name to 127.0.0.1) or a misdirected request.
fn is_local_host(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map_or(host, |(name, port)| {
            if port.chars().all(|c| c.is_ascii_digit()) {
                name
            } else {
                host
            }
        })
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost"
        || name.ends_with(".localhost")
        || name == "::1"
        || name
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Answers one request. A panic while answering is caught and becomes a 500 for that
/// request alone: the connection, the site and the daemon carry on.
async fn respond_or_500(
    request: Request<Incoming>,
    site: Site,
    port: u16,
    test_panic: bool,
) -> Reply {
    let answer = async {
        if test_panic && request.uri().path() == TEST_PANIC_PATH {
            panic!("test-only panic in a request handler ({TEST_PANIC_ENV}=1)");
        }
        respond(&request, &site, port).await
    };
    match AssertUnwindSafe(answer).catch_unwind().await {
        Ok(reply) => reply,
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            tracing::error!(port, path = %request.uri().path(), "request handler panicked: {message}");
            plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "500 internal server error\n",
            )
        }
    }
}

async fn respond(request: &Request<Incoming>, site: &Site, port: u16) -> Reply {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let mut response = plain(StatusCode::METHOD_NOT_ALLOWED, "405 method not allowed\n");
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    if let Some(host) = request.headers().get(header::HOST)
        && !host.to_str().is_ok_and(is_local_host)
    {
        tracing::warn!(port, host = ?host, "refused request for a foreign Host");
        return plain(StatusCode::FORBIDDEN, "403 forbidden: unknown Host\n");
    }
    // Absolute-form request targets (`GET http://evil/ HTTP/1.1`) are refused outright.
    if request.uri().scheme().is_some() || request.uri().authority().is_some() {
        return plain(StatusCode::BAD_REQUEST, "400 bad request\n");
    }
    let raw = request.uri().path();
    let Some(path) = crate::build::percent_decode(raw) else {
        return plain(
            StatusCode::BAD_REQUEST,
            "400 bad request: path is not UTF-8\n",
        );
    };
    if !path.starts_with('/') || path.contains(['\0', '\\']) {
        return plain(StatusCode::BAD_REQUEST, "400 bad request\n");
    }
    if path.starts_with(livereload::PREFIX) {
        let origin = request.headers().get(header::ORIGIN);
        return livereload::respond(&path, origin, &site.live, &site.token);
    }
    // One snapshot per request: it sees the old build or the new one, never a mix.
    let output = site.output.borrow().clone();
    let head = request.method() == Method::HEAD;
    if let Some(resource) = output.get(&path) {
        return send(request, resource, StatusCode::OK, head, &site.live).await;
    }
    if !path.ends_with('/') && output.get(&format!("{path}/")).is_some() {
        let mut location = format!("{raw}/");
        if let Some(query) = request.uri().query() {
            location.push('?');
            location.push_str(query);
        }
        let mut response = plain(StatusCode::MOVED_PERMANENTLY, "301 moved permanently\n");
        if let Ok(value) = HeaderValue::from_str(&location) {
            response.headers_mut().insert(header::LOCATION, value);
        }
        return response;
    }
    match output.get("/404.html") {
        Some(page) => send(request, page, StatusCode::NOT_FOUND, head, &site.live).await,
        None => plain(StatusCode::NOT_FOUND, "404 not found\n"),
    }
}

async fn send(
    request: &Request<Incoming>,
    resource: &crate::build::Resource,
    status: StatusCode,
    head: bool,
    live: &livereload::Live,
) -> Reply {
    let is_html = resource.content_type.starts_with("text/html");
    // HTML is served with the live-reload tag, which names the build: its validator
    // must change with it, or a revalidated page would carry a stale build number.
    let (tag, etag) = if is_html {
        let live = live.borrow();
        let inner = resource.etag.trim_matches('"');
        let etag = format!("\"{inner}-{}-{}\"", live.session, live.generation);
        (livereload::script_tag(&live), etag)
    } else {
        (String::new(), resource.etag.to_string())
    };
    let not_modified = status == StatusCode::OK
        && request
            .headers()
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.split(',')
                    .any(|candidate| candidate.trim() == etag || candidate.trim() == "*")
            });
    let body = if head || not_modified {
        Bytes::new()
    } else {
        match &resource.body {
            BuildBody::Memory(bytes) if is_html => livereload::inject(bytes, &tag),
            BuildBody::Memory(bytes) => bytes.clone(),
            BuildBody::File(path) => match tokio::fs::read(path).await {
                Ok(bytes) => Bytes::from(bytes),
                Err(error) => {
                    tracing::warn!(path = %path.display(), %error, "cannot read a built file");
                    return plain(StatusCode::NOT_FOUND, "404 not found\n");
                }
            },
        }
    };
    let len = body.len();
    let mut response = Response::new(full(body));
    *response.status_mut() = if not_modified {
        StatusCode::NOT_MODIFIED
    } else {
        status
    };
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    // A dev server's content changes under the browser's feet: always revalidate.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    if !not_modified {
        if let Ok(value) = HeaderValue::from_str(&resource.content_type) {
            headers.insert(header::CONTENT_TYPE, value);
        }
        if head {
            // GET bodies get their length from hyper; HEAD must say it explicitly.
            headers.insert(
                header::CONTENT_LENGTH,
                HeaderValue::from(resource.len + tag.len() as u64),
            );
        } else {
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_hosts_are_accepted_and_others_refused() {
        for host in [
            "localhost",
            "localhost:5173",
            "127.0.0.1:80",
            "127.1.2.3",
            "[::1]:5173",
            "blog.localhost:1",
            "LOCALHOST.",
        ] {
            assert!(is_local_host(host), "{host}");
        }
        for host in [
            "evil.com",
            "evil.com:5173",
            "10.0.0.1",
            "localhost.evil.com",
            "[::2]:1",
            "",
        ] {
            assert!(!is_local_host(host), "{host}");
        }
    }
}
