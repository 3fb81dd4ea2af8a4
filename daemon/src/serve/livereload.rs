//! Live reload: a Server-Sent Events stream of the site's build state under `/__sited/`,
//! and the small script that listens to it, injected into HTML responses at serve time
//! (never into built files). A page opens the stream for its own URL
//! (`/__sited/events/notes/page/`), so every event also says what that URL serves now;
//! the script updates the page only when that differs from what it shows (in place when
//! it can, see livereload.js), swaps stylesheets when only CSS changed, and shows build
//! errors in an overlay.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use serde::Serialize;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::body::EventStream;
use super::{HostPolicy, Output, Published, Reply, ReplyBody, plain};

/// Everything live reload serves lives under this prefix, which no build output uses.
pub const PREFIX: &str = "/__sited/";
/// The event stream; followed by a page's own URL path, the stream of that page.
pub const EVENTS_PATH: &str = "/__sited/events";
pub const SCRIPT_PATH: &str = "/__sited/livereload.js";
const SCRIPT: &str = include_str!("livereload.js");
/// The tag added to pages. It carries the page's ETag, which every event of the page's
/// stream is compared with: a page loaded just before a rebuild (whose event it then
/// missed) sees at once that it is stale, and a page whose output a build left alone
/// does nothing.
pub fn script_tag(etag: &str) -> String {
    let etag = unquoted(etag);
    format!("<script src=\"{SCRIPT_PATH}\" data-etag=\"{etag}\" defer></script>")
}

/// An ETag as pages and events carry it: without its quotes.
fn unquoted(etag: &str) -> &str {
    etag.trim_matches('"')
}

/// Whether `path` (decoded) is an event stream, which stays open as long as its page.
pub fn is_event_stream(path: &str) -> bool {
    path.strip_prefix(EVENTS_PATH)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// What changed in the last build, as the browser needs to know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// The state when the site came up; nothing to reload.
    Initial,
    /// A build was published: each page compares what its URL serves now with what it
    /// shows, and updates itself if they differ.
    Reload,
    /// Only stylesheets changed: swap them in place.
    Css,
}

/// One build error, ready for the overlay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LiveError {
    /// `file:line:col`
    pub location: String,
    pub message: String,
}

/// The state a browser follows. A new value is published after every build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LiveState {
    /// Changes when the site is brought up anew; a browser seeing another one reloads.
    pub session: String,
    /// Bumped by every build.
    pub generation: u64,
    pub change: Change,
    /// For [`Change::Css`]: URL paths of the stylesheets that changed.
    pub css: Vec<String>,
    /// Errors of the last build; non-empty shows the overlay.
    pub errors: Vec<LiveError>,
    /// Warnings of the last build (links that lead nowhere): shown in a small panel that
    /// blocks nothing, when there are no errors.
    pub warnings: Vec<LiveError>,
}

impl LiveState {
    pub fn initial(session: String, errors: Vec<LiveError>) -> LiveState {
        LiveState {
            session,
            generation: 0,
            change: Change::Initial,
            css: Vec::new(),
            errors,
            warnings: Vec::new(),
        }
    }
}

impl From<&sited_proto::BuildError> for LiveError {
    fn from(error: &sited_proto::BuildError) -> LiveError {
        let mut location = error.file.display().to_string();
        if let Some(line) = error.line {
            location.push_str(&format!(":{line}"));
            if let Some(column) = error.column {
                location.push_str(&format!(":{column}"));
            }
        }
        LiveError {
            location,
            message: error.message.clone(),
        }
    }
}

/// The browser's side of a site: the live state every page follows, and the published
/// build, to tell each page what its own URL serves now.
#[derive(Debug, Clone)]
pub struct Live {
    state: watch::Receiver<LiveState>,
    output: Published,
}

impl Live {
    pub fn new(state: watch::Receiver<LiveState>, output: Published) -> Live {
        Live { state, output }
    }
}

/// One event as a page receives it: the site's state, and what the page's URL serves now.
#[derive(Debug, Serialize)]
struct Event<'a> {
    #[serde(flatten)]
    state: &'a LiveState,
    /// Absent on a stream opened for no page. Otherwise the (unquoted) ETag of the page
    /// the URL serves in the published build, as [`script_tag`] wrote it into that page;
    /// `null` if the URL now serves no page (it redirects, or answers a plain 404).
    #[serde(skip_serializing_if = "Option::is_none")]
    page: Option<Option<&'a str>>,
}

/// The ETag of the page a request for `path` is answered with: the URL's own page, or the
/// site's 404 page where there is none; `None` where the answer is a redirect or a plain
/// 404. This mirrors the lookup of [`super::respond`] (a test holds them together).
fn served_etag<'a>(output: &'a Output, path: &str) -> Option<&'a str> {
    if let Some(resource) = output.get(path) {
        return Some(unquoted(&resource.etag));
    }
    if !path.ends_with('/') && output.get(&format!("{path}/")).is_some() {
        return None;
    }
    output.get("/404.html").map(|page| unquoted(&page.etag))
}

/// Answers a request under [`PREFIX`].
pub fn respond(
    path: &str,
    origin: Option<&HeaderValue>,
    live: &Live,
    hosts: &HostPolicy,
    token: &CancellationToken,
) -> Reply {
    match path {
        SCRIPT_PATH => {
            let mut response =
                Response::new(ReplyBody::bytes(Bytes::from_static(SCRIPT.as_bytes())));
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/javascript; charset=utf-8"),
            );
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            response
        }
        path if is_event_stream(path) => {
            // Another site's page must not subscribe to ours (nor learn its errors).
            if let Some(origin) = origin
                && !origin
                    .to_str()
                    .is_ok_and(|origin| is_allowed_origin(origin, hosts))
            {
                return plain(StatusCode::FORBIDDEN, "403 forbidden: foreign Origin\n");
            }
            let page = Some(&path[EVENTS_PATH.len()..])
                .filter(|page| !page.is_empty())
                .map(str::to_owned);
            events(live.clone(), page, token.clone())
        }
        _ => plain(StatusCode::NOT_FOUND, "404 not found\n"),
    }
}

/// An origin whose host the site answers to (its pages, not another site's).
fn is_allowed_origin(origin: &str, hosts: &HostPolicy) -> bool {
    origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .is_some_and(|host| hosts.allows(host))
}

/// The SSE stream of the page at `page` (a decoded URL path; `None`: no page): the
/// current state at once, then every new one. It ends when the site stops, so open
/// browser tabs never hold a stopping site up.
fn events(live: Live, page: Option<String>, token: CancellationToken) -> Reply {
    // Ask browsers to reconnect quickly after a daemon restart.
    let hello = futures::stream::once(async { Bytes::from_static(b"retry: 500\n\n") });
    let updates = futures::stream::unfold(
        (live, page, token, true),
        |(mut live, page, token, first)| async move {
            if !first {
                tokio::select! {
                    changed = live.state.changed() => changed.ok()?,
                    () = token.cancelled() => return None,
                }
            }
            let chunk = event(&mut live, page.as_deref());
            Some((chunk, (live, page, token, false)))
        },
    );
    let stream = futures::StreamExt::chain(hello, updates);
    let mut response = Response::new(ReplyBody::Events(EventStream(Box::pin(stream))));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// The next event of a page's stream. The site publishes a build before the state that
/// announces it, so the output read here is at least as new as the state.
fn event(live: &mut Live, page: Option<&str>) -> Bytes {
    let state = live.state.borrow_and_update().clone();
    let output = live.output.borrow().clone();
    let event = Event {
        state: &state,
        page: page.map(|page| served_etag(&output, page)),
    };
    let json = serde_json::to_string(&event).expect("live state serializes");
    Bytes::from(format!("data: {json}\n\n"))
}

/// Where a tag goes into `html`: before its last `</body>` (or at the end).
pub fn injection_point(html: &[u8]) -> usize {
    // One rule for pages in memory and packed ones (split there when packed).
    sited_builder::output::packed::injection_point(html)
}

/// The HTML with `tag` at its [`injection_point`].
pub fn inject(html: &[u8], tag: &str) -> Bytes {
    let at = injection_point(html);
    let mut out = Vec::with_capacity(html.len() + tag.len());
    out.extend_from_slice(&html[..at]);
    out.extend_from_slice(tag.as_bytes());
    out.extend_from_slice(&html[at..]);
    Bytes::from(out)
}
