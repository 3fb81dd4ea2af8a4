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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use http::Request;
    use http_body_util::BodyExt;

    use super::*;
    use crate::serve::ServeConfig;
    use crate::serve::tests::html;

    fn output(pages: &[(&str, &str)]) -> Arc<Output> {
        let mut output = Output::default();
        for (url, body) in pages {
            let page = format!("<!doctype html><title>t</title><body>{body}</body>");
            output.resources.insert(url.to_string(), html(page));
        }
        Arc::new(output)
    }

    fn get(path: &str) -> Request<()> {
        Request::get(path)
            .header(header::HOST, "localhost:5173")
            .body(())
            .unwrap()
    }

    /// The live channels of a site serving `first`, and a config that serves them.
    fn live(
        first: Arc<Output>,
    ) -> (
        watch::Sender<LiveState>,
        watch::Sender<Arc<Output>>,
        ServeConfig,
    ) {
        let (state, state_rx) = watch::channel(LiveState::initial("s-1".into(), Vec::new()));
        let (output, output_rx) = watch::channel(first);
        let config = ServeConfig {
            live: Some(Live::new(state_rx, output_rx)),
            ..ServeConfig::default()
        };
        (state, output, config)
    }

    /// The `data-etag` of the live-reload tag in `html`, if it has one.
    fn tag_etag(html: &str) -> Option<&str> {
        let at = html.find("data-etag=\"")? + "data-etag=\"".len();
        html[at..].split('"').next()
    }

    #[tokio::test]
    async fn a_pages_stream_names_the_etag_its_url_is_served_with() {
        // Every way a URL can be answered: its page, a redirect to its `/` form, the 404
        // page, and (without a 404 page) a plain 404. The page a browser gets and the
        // ETag its stream names must agree, or a page would reload itself forever.
        let site = output(&[
            ("/", "home"),
            ("/posts/", "posts"),
            ("/a b/", "spaced"),
            ("/404.html", "not here"),
        ]);
        let bare = output(&[("/", "home")]);
        for output in [&site, &bare] {
            let (_state, _published, config) = live(output.clone());
            for path in [
                "/",
                "/posts/",
                "/posts",
                "/a%20b/",
                "/nope",
                "/nope/",
                "/404.html",
            ] {
                let response = crate::serve::respond(&get(path), output, &config).await;
                let status = response.status();
                let body = response.into_body().collect().await.unwrap().to_bytes();
                let body = String::from_utf8_lossy(&body);
                let decoded = crate::serve::path::decode(path).unwrap();
                assert_eq!(
                    served_etag(output, &decoded),
                    tag_etag(&body),
                    "{path} ({status}): {body}"
                );
            }
        }
        assert!(
            served_etag(&site, "/nope").is_some(),
            "the 404 page has one"
        );
    }

    /// The JSON of the next event of `body`, skipping the `retry:` preamble.
    async fn next_event(body: &mut ReplyBody) -> serde_json::Value {
        loop {
            let frame = body.frame().await.expect("the stream goes on").unwrap();
            let chunk = frame.into_data().unwrap();
            let text = std::str::from_utf8(&chunk).unwrap();
            if let Some(json) = text.strip_prefix("data: ") {
                return serde_json::from_str(json.trim()).unwrap();
            }
        }
    }

    #[tokio::test]
    async fn each_event_says_what_the_pages_url_serves_now() {
        let first = output(&[("/", "home"), ("/posts/", "posts"), ("/404.html", "gone")]);
        let etag = |output: &Output, url: &str| unquoted(&output.get(url).unwrap().etag).to_owned();
        let (state, published, config) = live(first.clone());
        let open = |path: &str| {
            let request = get(path);
            let config = &config;
            let first = &first;
            async move {
                crate::serve::respond(&request, first, config)
                    .await
                    .into_body()
            }
        };
        let mut posts = open("/__sited/events/posts/").await;
        let mut missing = open("/__sited/events/nope").await;
        let mut no_page = open("/__sited/events").await;
        let event = next_event(&mut posts).await;
        assert_eq!(event["generation"], 0);
        assert_eq!(event["page"], etag(&first, "/posts/"));
        assert_eq!(
            next_event(&mut missing).await["page"],
            etag(&first, "/404.html"),
            "a missing URL is served the 404 page"
        );
        let event = next_event(&mut no_page).await;
        assert!(event.get("page").is_none(), "{event}");

        // A build changes the posts page and creates /nope/: published first, then
        // announced, as the site does it.
        let second = output(&[
            ("/", "home"),
            ("/posts/", "posts, edited"),
            ("/nope/", "now here"),
            ("/404.html", "gone"),
        ]);
        published.send_replace(second.clone());
        state.send_modify(|state| {
            state.generation += 1;
            state.change = Change::Reload;
        });
        let event = next_event(&mut posts).await;
        assert_eq!(event["generation"], 1);
        assert_eq!(event["change"], "reload");
        assert_ne!(etag(&second, "/posts/"), etag(&first, "/posts/"));
        assert_eq!(event["page"], etag(&second, "/posts/"));
        // `/nope` now redirects to `/nope/`: no page, the tab must follow.
        assert_eq!(
            next_event(&mut missing).await["page"],
            serde_json::Value::Null
        );
    }

    #[test]
    fn event_streams_are_the_bare_path_or_a_page_under_it() {
        assert!(is_event_stream("/__sited/events"));
        assert!(is_event_stream("/__sited/events/"));
        assert!(is_event_stream("/__sited/events/notes/page/"));
        assert!(!is_event_stream("/__sited/eventsx"));
        assert!(!is_event_stream("/__sited/livereload.js"));
    }

    #[test]
    fn script_goes_before_the_last_body_end() {
        let tag = script_tag("\"abc123\"");
        assert_eq!(
            tag,
            "<script src=\"/__sited/livereload.js\" data-etag=\"abc123\" defer></script>"
        );
        let out = inject(b"<html><body><p>x</p></BODY></html>", "<s>");
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            "<html><body><p>x</p><s></BODY></html>"
        );
        let bare = inject(b"<p>fragment</p>", "<s>");
        assert!(bare.ends_with(b"<s>"));
    }

    #[test]
    fn errors_carry_their_location() {
        let error = sited_proto::BuildError {
            file: "content/a.md".into(),
            line: Some(2),
            column: Some(9),
            message: "bad".into(),
        };
        let live = LiveError::from(&error);
        assert_eq!(live.location, "content/a.md:2:9");
    }

    #[test]
    fn only_the_sites_own_origins_may_subscribe() {
        let hosts = HostPolicy::default();
        assert!(is_allowed_origin("http://localhost:5173", &hosts));
        assert!(is_allowed_origin("http://127.0.0.1:5173", &hosts));
        assert!(!is_allowed_origin("http://evil.example", &hosts));
        assert!(!is_allowed_origin("null", &hosts));
    }
}
