//! HTTP for one site: hyper 1 over HTTP/1.1 keep-alive, answering only URLs the build
//! produced. No part of a request path is ever joined onto the file system: the path is
//! decoded ([`path`]) and looked up in the published [`Output`], nothing else. Requests
//! for a foreign `Host` are refused ([`host`]); what a client can make the server hold
//! is bounded ([`limits`], [`conns`]). Files are opened beneath the site's directory
//! with no symlink on the way ([`files`]). The accept loop runs here; connections run on
//! the daemon's one pool of connection threads ([`pool`], [`connection`]).

mod body;
pub mod conditional;
mod connection;
pub mod conns;
pub mod encoding;
pub mod files;
pub mod host;
mod hot;
pub mod limits;
pub mod livereload;
pub mod path;
pub mod pool;
mod prepared;
pub mod range;
mod resource;
mod zerocopy;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use http::{HeaderValue, Method, Request, Response, StatusCode, Version, header};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub use body::{Pieces, ReplyBody};
use conditional::Validators;
use encoding::{Coding, Source};
pub use files::Files;
pub use host::HostPolicy;
pub use limits::Limits;
pub use pool::Pool;
pub use prepared::Prepared;
use range::Ranged;
pub use resource::{Body, Output, Resource};

/// The latest published build; a request takes one snapshot and sees only it.
pub type Published = watch::Receiver<Arc<Output>>;

/// A response as the server sends it.
pub type Reply = Response<ReplyBody>;

/// How one site is served.
#[derive(Debug, Clone, Default)]
pub struct ServeConfig {
    /// Which `Host` values are answered.
    pub hosts: HostPolicy,
    pub limits: Limits,
    /// The daemon's connection threads, shared by every site.
    pub pool: Pool,
    /// The site's directory (canonical): files are opened beneath it. `None` opens them
    /// by their full path, still with no symlink on the way.
    pub root: Option<PathBuf>,
    /// Set by [`serve`] from `root`.
    pub files: Option<Files>,
    /// The site's live-reload state: `Some` adds the live-reload script to HTML and
    /// answers `/__sited/`.
    pub live: Option<livereload::Live>,
    /// Set by [`serve`]: cancelled when the site stops, which ends live-reload streams.
    pub token: CancellationToken,
    /// Test hook: a GET of [`TEST_PANIC_PATH`] panics in the handler
    /// ([`crate::hooks::TestHooks::panic_request`]).
    pub test_panic: bool,
    /// While the site's first build runs, a URL not published yet is asked of it.
    pub early: Option<Arc<dyn FirstBuild>>,
}

/// A site whose first build still runs, asked for a URL it has not published yet (the
/// site's side is `site::early`): the output that serves it once the build made it (or
/// the whole build's, once it is over); `None` when the build did not make it in time.
pub trait FirstBuild: Send + Sync + std::fmt::Debug {
    fn answer<'a>(&'a self, path: &'a str) -> futures::future::BoxFuture<'a, Option<Arc<Output>>>;
}

impl ServeConfig {
    /// Where files are opened from.
    fn files(&self) -> Files {
        self.files.clone().unwrap_or_else(Files::anywhere)
    }
}

/// Connections the kernel queues for `accept` (std binds with 128).
const ACCEPT_BACKLOG: i32 = 4096;
/// The path that panics when [`ServeConfig::test_panic`] is set; under the live-reload
/// prefix, which no build output uses.
pub const TEST_PANIC_PATH: &str = "/__sited/test-panic";

/// Serves `listener` until `token` is cancelled, then stops accepting, lets open
/// connections finish for a short while and drops the rest. When this returns, the
/// listening socket is closed and every connection of the site has ended.
pub async fn serve(
    listener: TcpListener,
    output: Published,
    config: ServeConfig,
    token: CancellationToken,
) {
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    let files = config.root.as_deref().and_then(|root| {
        Files::beneath(root)
            .inspect_err(|error| {
                tracing::warn!(root = %root.display(), %error, "cannot open the site's directory; opening files by their full path");
            })
            .ok()
    });
    let config = Arc::new(ServeConfig {
        token: token.clone(),
        files: files.or(config.files),
        ..config
    });
    // A burst of connections (a browser opening several, a client reconnecting in a
    // loop) waits in the backlog instead of having its SYNs dropped, which costs each
    // one a retransmit a second later. Linux caps it at net.core.somaxconn.
    if let Err(error) = rustix::net::listen(&listener, ACCEPT_BACKLOG) {
        tracing::debug!(%error, "cannot deepen the accept backlog");
    }
    let conns = conns::Conns::new(&config.limits, token.clone());
    let site = Arc::new(connection::Site::new(output, config.clone()));
    loop {
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
        // While every place is taken, this one waits here and the next in the backlog.
        let admitted = tokio::select! {
            biased;
            () = token.cancelled() => break,
            admitted = conns.admit_when_room() => admitted,
        };
        let _ = stream.set_nodelay(true);
        // Moving it to another runtime means leaving this one's reactor first.
        match stream.into_std() {
            Ok(stream) => config
                .pool
                .spawn(connection::job(site.clone(), stream, admitted)),
            Err(error) => tracing::debug!(%error, "cannot hand over a connection"),
        }
    }
    drop(listener);
    // Every connection watches a child of `token`: each finishes its response for at
    // most the drain deadline, then is dropped. The margin covers a pool thread busy
    // with other sites' connections.
    let deadline = connection::DRAIN_DEADLINE * 4;
    if tokio::time::timeout(deadline, conns.drained())
        .await
        .is_err()
    {
        tracing::warn!(port, counts = ?conns.counts(), "connections still open after the drain deadline");
    }
}

/// Answers one request on a connection that closes when `closing` is cancelled (which
/// also ends an event stream on it). A panic while answering is caught and becomes a 500
/// for that request alone: the connection, the site and the daemon carry on.
pub async fn respond_or_500<B>(
    request: &Request<B>,
    output: &Output,
    config: &ServeConfig,
    closing: &CancellationToken,
) -> Reply {
    use futures::FutureExt;
    let answer = async {
        if config.test_panic && request.uri().path() == TEST_PANIC_PATH {
            panic!("test-only panic in a request handler (TestHooks::panic_request)");
        }
        respond_on(request, output, config, closing).await
    };
    match std::panic::AssertUnwindSafe(answer).catch_unwind().await {
        Ok(reply) => reply,
        Err(panic) => {
            let message = panic_message(&panic);
            tracing::error!(path = %request.uri().path(), "request handler panicked: {message}");
            plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "500 internal server error\n",
            )
        }
    }
}

/// The answer to one request from one build. Generic over the request body, which is
/// never read (only GET and HEAD are served).
pub async fn respond<B>(request: &Request<B>, output: &Output, config: &ServeConfig) -> Reply {
    respond_on(request, output, config, &config.token).await
}

/// [`respond`], with event streams ending when `closing` is cancelled.
async fn respond_on<B>(
    request: &Request<B>,
    output: &Output,
    config: &ServeConfig,
    closing: &CancellationToken,
) -> Reply {
    let method = request.method();
    if method != Method::GET && method != Method::HEAD {
        let mut response = plain(StatusCode::METHOD_NOT_ALLOWED, "405 method not allowed\n");
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    let uri = request.uri();
    let target_len = uri.path_and_query().map_or(0, |pq| pq.as_str().len())
        + uri.authority().map_or(0, |a| a.as_str().len());
    if target_len > config.limits.max_uri_bytes {
        return plain(StatusCode::URI_TOO_LONG, "414 URI too long\n");
    }
    if let Some(refusal) = refuse_host(request, &config.hosts) {
        return refusal;
    }
    let raw = uri.path();
    let path = match path::decode(raw) {
        Ok(path) => path,
        Err(why) => {
            tracing::debug!(path = raw, ?why, "refused request path");
            return plain(StatusCode::BAD_REQUEST, "400 bad request: path\n");
        }
    };
    if path.starts_with(livereload::PREFIX)
        && let Some(live) = &config.live
    {
        let origin = request.headers().get(header::ORIGIN);
        return livereload::respond(&path, origin, live, &config.hosts, closing);
    }
    let inject = config.live.is_some();
    if path::is_hidden(&path) {
        // Defence in depth: builds leave hidden files out, but a `.git` or `.env` must
        // never be served whatever a build or another generator put in its output.
        tracing::debug!(path = %path, "refused a hidden path");
        return not_found(request, output, inject, config).await;
    }
    let waited;
    let output = match &config.early {
        Some(early) if output.get(&path).is_none() => match early.answer(&path).await {
            Some(made) => {
                waited = made;
                &*waited
            }
            None => return still_building(),
        },
        _ => output,
    };
    if let Some(resource) = output.get(&path) {
        return send(request, resource, StatusCode::OK, inject, config).await;
    }
    if !path.ends_with('/') && output.get(&format!("{path}/")).is_some() {
        // Built from the decoded path, so the redirect cannot point anywhere a build
        // did not produce (no `//host` open redirect).
        let mut location = path::encode(&path);
        location.push('/');
        if let Some(query) = uri.query() {
            location.push('?');
            location.push_str(query);
        }
        let mut response = plain(StatusCode::MOVED_PERMANENTLY, "301 moved permanently\n");
        if let Ok(value) = HeaderValue::from_str(&location) {
            response.headers_mut().insert(header::LOCATION, value);
        }
        return response;
    }
    not_found(request, output, inject, config).await
}

/// The answer to a request the site's first build did not make in time.
fn still_building() -> Reply {
    let mut response = plain(
        StatusCode::SERVICE_UNAVAILABLE,
        "503 the site is still building; try again\n",
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

/// The site's 404 page, or a plain one.
async fn not_found<B>(
    request: &Request<B>,
    output: &Output,
    inject: bool,
    config: &ServeConfig,
) -> Reply {
    match output.get("/404.html") {
        Some(page) => send(request, page, StatusCode::NOT_FOUND, inject, config).await,
        None => plain(StatusCode::NOT_FOUND, "404 not found\n"),
    }
}

/// The refusal of a request for a foreign host (403) or an ambiguous one (400), if it is
/// one. Both the `Host` header and an absolute-form target's authority must be
/// acceptable; HTTP/1.1 requires `Host`, HTTP/1.0 clients may leave it out.
fn refuse_host<B>(request: &Request<B>, hosts: &HostPolicy) -> Option<Reply> {
    let uri = request.uri();
    if let Some(authority) = uri.authority() {
        if uri.scheme() != Some(&http::uri::Scheme::HTTP) || authority.as_str().contains('@') {
            return Some(plain(StatusCode::BAD_REQUEST, "400 bad request: target\n"));
        }
        if !hosts.allows(authority.as_str()) {
            tracing::warn!(
                authority = authority.as_str(),
                "refused request for a foreign host"
            );
            return Some(plain(
                StatusCode::FORBIDDEN,
                "403 forbidden: unknown host\n",
            ));
        }
    } else if uri.scheme().is_some() {
        return Some(plain(StatusCode::BAD_REQUEST, "400 bad request: target\n"));
    }
    let mut values = request.headers().get_all(header::HOST).iter();
    match (values.next(), values.next()) {
        (None, _) if request.version() >= Version::HTTP_11 && uri.authority().is_none() => {
            Some(plain(StatusCode::BAD_REQUEST, "400 bad request: no Host\n"))
        }
        (None, _) => None,
        (Some(_), Some(_)) => Some(plain(
            StatusCode::BAD_REQUEST,
            "400 bad request: two Hosts\n",
        )),
        (Some(host), None) => {
            if host.to_str().is_ok_and(|host| hosts.allows(host)) {
                None
            } else {
                tracing::warn!(?host, "refused request for a foreign Host");
                Some(plain(
                    StatusCode::FORBIDDEN,
                    "403 forbidden: unknown Host\n",
                ))
            }
        }
    }
}

/// A resource's response: `status` is 200 for the URL itself, 404 when it stands in as
/// the not-found page. Conditionals and ranges apply to 200s only.
async fn send<B>(
    request: &Request<B>,
    resource: &Resource,
    status: StatusCode,
    inject: bool,
    config: &ServeConfig,
) -> Reply {
    let asked = request.headers();
    // Pages are served with the live-reload script. The tag names the page's own ETag
    // (so a page can tell it is stale), which makes the served bytes a function of the
    // resource alone: validators, ranges and cached compression all still hold.
    let html = resource.content_type.starts_with("text/html");
    let injected = match &resource.body {
        Body::Memory(bytes) if inject && html => {
            let (at, tag) = resource.prepared().live_reload.get_or_init(|| {
                (
                    livereload::injection_point(bytes),
                    bytes::Bytes::from(livereload::script_tag(&resource.etag)),
                )
            });
            Some(Pieces::inserted(bytes, *at, tag))
        }
        _ => None,
    };
    // A packed page gets the same tag at the same place (its split point), whether it is
    // sent as held (gzip) or inflated.
    let packed_tag = match &resource.body {
        Body::Packed(packed) if inject && html => {
            let (_, tag) = resource.prepared().live_reload.get_or_init(|| {
                (
                    packed.at(),
                    bytes::Bytes::from(livereload::script_tag(&resource.etag)),
                )
            });
            Some(tag)
        }
        _ => None,
    };
    let head = request.method() == Method::HEAD;
    let prepared = resource.prepared();
    // Memory bodies carry validators made at build time; files are described as they
    // are now, from the handle that will be read.
    let (file, etag, etag_value, modified, last_modified, len) = match &resource.body {
        Body::Memory(_) => (
            None,
            std::borrow::Cow::Borrowed(&*resource.etag),
            prepared.etag.clone(),
            resource.modified,
            prepared.last_modified.clone(),
            injected.as_ref().map_or(resource.len, |p| p.len() as u64),
        ),
        Body::Packed(_) => (
            None,
            std::borrow::Cow::Borrowed(&*resource.etag),
            prepared.etag.clone(),
            resource.modified,
            prepared.last_modified.clone(),
            resource.len + packed_tag.map_or(0, |tag| tag.len() as u64),
        ),
        Body::File(path) => match body::open(&config.files(), path).await {
            Ok((file, meta)) => {
                let etag = resource::file_etag(&meta);
                let modified = meta.modified().unwrap_or(UNIX_EPOCH);
                let Ok(etag_value) = HeaderValue::from_str(&etag) else {
                    return plain(StatusCode::INTERNAL_SERVER_ERROR, "500\n");
                };
                (
                    Some(file),
                    std::borrow::Cow::Owned(etag),
                    etag_value,
                    modified,
                    prepared::http_date(modified),
                    meta.len(),
                )
            }
            Err(error) => {
                // A symlink swapped in since the build lands here too (S20).
                tracing::warn!(path = %path.display(), %error, "cannot open a built file");
                return plain(StatusCode::NOT_FOUND, "404 not found\n");
            }
        },
    };
    let validators = Validators {
        etag: &etag,
        modified,
    };
    let coding = match &resource.body {
        _ if !prepared.compressible => Coding::Identity,
        Body::Packed(_) => Coding::negotiate_packed(asked),
        _ => Coding::negotiate(asked),
    };

    let mut response = Response::new(ReplyBody::empty());
    let headers = response.headers_mut();
    headers.reserve(10);
    // A dev server's content changes under the browser's feet: always revalidate.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if prepared.compressible {
        headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
    if status != StatusCode::OK {
        *response.status_mut() = status;
        return finish(
            response,
            resource,
            injected.as_ref(),
            packed_tag,
            &etag,
            len,
            coding,
            file,
            None,
            head,
        )
        .await;
    }
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    headers.insert(header::LAST_MODIFIED, last_modified);

    if validators.not_modified(asked) {
        // The tag of the representation this client would get, if it exists already.
        let tag = match &resource.body {
            Body::Packed(_) if coding == Coding::Gzip => gzip_etag(resource),
            _ => prepared
                .encodings
                .peek(coding, &etag)
                .map_or(etag_value, |encoded| encoded.etag.clone()),
        };
        headers.insert(header::ETAG, tag);
        *response.status_mut() = StatusCode::NOT_MODIFIED;
        return response;
    }
    let ranged = if validators.range_applies(asked) {
        Ranged::parse(asked.get(header::RANGE), len)
    } else {
        Ranged::Full
    };
    match ranged {
        Ranged::Full => {
            headers.insert(header::ETAG, etag_value);
            finish(
                response,
                resource,
                injected.as_ref(),
                packed_tag,
                &etag,
                len,
                coding,
                file,
                None,
                head,
            )
            .await
        }
        Ranged::Part { start, end } => {
            // Ranges are of the identity body: byte offsets a browser seeks to.
            headers.insert(header::ETAG, etag_value);
            let content_range = format!("bytes {start}-{end}/{len}");
            if let Ok(value) = HeaderValue::from_str(&content_range) {
                headers.insert(header::CONTENT_RANGE, value);
            }
            *response.status_mut() = StatusCode::PARTIAL_CONTENT;
            let span = end - start + 1;
            finish(
                response,
                resource,
                injected.as_ref(),
                packed_tag,
                &etag,
                span,
                Coding::Identity,
                file,
                Some(start),
                head,
            )
            .await
        }
        Ranged::Unsatisfiable => {
            let mut response = plain(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "416 range not satisfiable\n",
            );
            let headers = response.headers_mut();
            headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
            if let Ok(value) = HeaderValue::from_str(&format!("bytes */{len}")) {
                headers.insert(header::CONTENT_RANGE, value);
            }
            response
        }
    }
}

/// Puts the body on `response`: `len` bytes from `offset` (a range) or the whole body,
/// compressed when `coding` asks and it pays. HEAD gets the headers and length only.
#[allow(clippy::too_many_arguments)]
async fn finish(
    mut response: Reply,
    resource: &Resource,
    injected: Option<&Pieces>,
    packed_tag: Option<&bytes::Bytes>,
    etag: &str,
    len: u64,
    coding: Coding,
    file: Option<std::fs::File>,
    offset: Option<u64>,
    head: bool,
) -> Reply {
    if let Body::Packed(packed) = &resource.body {
        let sending = Sending {
            len,
            coding,
            offset,
            head,
        };
        return finish_packed(response, resource, packed, packed_tag, sending);
    }
    let prepared = resource.prepared();
    let whole;
    let source = match (&resource.body, injected, &file) {
        (Body::Packed(_), ..) => unreachable!("packed pages are finished above"),
        (_, Some(pieces), _) => Source::Memory(pieces),
        (Body::Memory(bytes), None, _) => {
            whole = Pieces::whole(bytes.clone());
            Source::Memory(&whole)
        }
        (Body::File(_), None, Some(file)) => Source::File(file),
        (Body::File(_), None, None) => {
            unreachable!("files are opened before their response is made")
        }
    };
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, prepared.content_type.clone());
    if offset.is_none()
        && let Some(encoded) = prepared.encodings.get(coding, etag, len, source).await
    {
        headers.insert(
            header::CONTENT_ENCODING,
            coding.header().expect("not identity"),
        );
        if headers.contains_key(header::ETAG) {
            headers.insert(header::ETAG, encoded.etag.clone());
        }
        return with_body(response, encoded.body.clone(), head);
    }
    let start = offset.unwrap_or(0);
    match (&resource.body, file) {
        (Body::Memory(bytes), _) => {
            let start = start as usize;
            let body = match injected {
                Some(pieces) => pieces.slice(start, len as usize),
                None => Pieces::whole(bytes.slice(start..start + len as usize)),
            };
            if head {
                set_length(&mut response, body.len() as u64);
            } else {
                *response.body_mut() = ReplyBody::pieces(body);
            }
            response
        }
        (Body::File(_), Some(mut file)) => {
            if head {
                set_length(&mut response, len);
                return response;
            }
            // A seek is no wait on any file system: no need to leave this thread.
            if start > 0
                && let Err(error) = std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(start))
            {
                tracing::warn!(%error, "cannot seek in a built file");
                return plain(StatusCode::INTERNAL_SERVER_ERROR, "500 cannot read\n");
            }
            *response.body_mut() = ReplyBody::file(tokio::fs::File::from_std(file), len);
            response
        }
        (Body::File(_), None) => unreachable!("files are opened before their response is made"),
        (Body::Packed(_), _) => unreachable!("packed pages are finished above"),
    }
}

/// What a response sends of its resource: `len` bytes from `offset` (a range) or all of
/// it, in `coding`; only the length for HEAD.
struct Sending {
    len: u64,
    coding: Coding,
    offset: Option<u64>,
    head: bool,
}

/// [`finish`] for a packed page: gzip as it is held, with the live-reload `tag`'s own
/// segment spliced in; or inflated (from the hot cache) for identity and ranges.
fn finish_packed(
    mut response: Reply,
    resource: &Resource,
    packed: &Arc<sited_builder::output::Packed>,
    tag: Option<&bytes::Bytes>,
    sending: Sending,
) -> Reply {
    use sited_builder::output::packed::Segment;
    static NO_INSERT: std::sync::LazyLock<Segment> = std::sync::LazyLock::new(Segment::empty);
    let prepared = resource.prepared();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, prepared.content_type.clone());
    if sending.offset.is_none() && sending.coding == Coding::Gzip {
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        if headers.contains_key(header::ETAG) {
            headers.insert(header::ETAG, gzip_etag(resource));
        }
        let insert = match tag {
            Some(tag) => prepared.packed_insert.get_or_init(|| Segment::new(tag)),
            None => &NO_INSERT,
        };
        if sending.head {
            set_length(&mut response, packed.gzip_len(insert) as u64);
        } else {
            // A spilled page is one positioned read of its packed bytes (a few KiB, in
            // the page cache unless memory ran short), made on this thread as nginx
            // reads its files; the spill's lock is never held across I/O.
            match packed.gzip(insert) {
                Ok(pieces) => *response.body_mut() = ReplyBody::pieces(Pieces::from_array(pieces)),
                Err(error) => return unreadable(&error),
            }
        }
        return response;
    }
    if sending.head {
        set_length(&mut response, sending.len);
        return response;
    }
    // A page the hot cache keeps is sent as one piece with its tag in place; a larger
    // one is inflated per request and sent around its tag, not copied a second time.
    let whole = if hot::keeps(packed.len()) {
        hot::inflated(packed, tag).map(Pieces::whole)
    } else {
        packed.unpack().map(|page| match tag {
            Some(tag) => Pieces::inserted(&page, packed.at(), tag),
            None => Pieces::whole(page),
        })
    };
    let whole = match whole {
        Ok(whole) => whole,
        Err(error) => return unreadable(&error),
    };
    let start = sending.offset.unwrap_or(0) as usize;
    *response.body_mut() = ReplyBody::pieces(whole.slice(start, sending.len as usize));
    response
}

/// A page whose held bytes cannot be read back (its spill file failed): this request
/// fails, the daemon and the site go on.
fn unreadable(error: &std::io::Error) -> Reply {
    tracing::warn!(%error, "cannot read a held page back");
    plain(StatusCode::INTERNAL_SERVER_ERROR, "500 cannot read\n")
}

/// A packed page's tag as sent in gzip: its own with the coding's suffix, as compressed
/// bodies of other resources are tagged.
fn gzip_etag(resource: &Resource) -> HeaderValue {
    let prepared = resource.prepared();
    prepared
        .gzip_etag
        .get_or_init(|| {
            HeaderValue::from_str(&Coding::Gzip.etag(&resource.etag))
                .unwrap_or_else(|_| prepared.etag.clone())
        })
        .clone()
}

fn with_body(mut response: Reply, bytes: bytes::Bytes, head: bool) -> Reply {
    if head {
        set_length(&mut response, bytes.len() as u64);
    } else {
        *response.body_mut() = ReplyBody::bytes(bytes);
    }
    response
}

/// HEAD says the length of what GET would send; for GET hyper writes it from the body.
fn set_length(response: &mut Reply, len: u64) {
    response
        .headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
}

/// What a caught panic said (its payload is a `&str` or a `String` for `panic!`).
fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

fn plain(status: StatusCode, text: &'static str) -> Reply {
    let mut response = Response::new(ReplyBody::from(text));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

#[cfg(test)]
mod tests;
