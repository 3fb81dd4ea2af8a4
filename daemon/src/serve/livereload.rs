//! Live reload: a Server-Sent Events stream of the site's build state under `/__sited/`,
//! and the small script that listens to it, injected into HTML responses at serve time
//! (never into built files). The script reloads the page after a rebuild, swaps
//! stylesheets when only CSS changed, and shows build errors in an overlay.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use serde::Serialize;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::body::EventStream;
use super::{HostPolicy, Reply, ReplyBody, plain};

/// Everything live reload serves lives under this prefix, which no build output uses.
pub const PREFIX: &str = "/__sited/";
pub const EVENTS_PATH: &str = "/__sited/events";
pub const SCRIPT_PATH: &str = "/__sited/livereload.js";
const SCRIPT: &str = include_str!("livereload.js");
/// The tag added to pages. It carries the page's ETag, so a page loaded just before a
/// rebuild (whose event it then missed) can tell it is stale and reload.
pub fn script_tag(etag: &str) -> String {
    let etag = etag.trim_matches('"');
    format!("<script src=\"{SCRIPT_PATH}\" data-etag=\"{etag}\" defer></script>")
}

/// What changed in the last build, as the browser needs to know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// The state when the site came up; nothing to reload.
    Initial,
    /// Pages changed: reload.
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
}

impl LiveState {
    pub fn initial(session: String, errors: Vec<LiveError>) -> LiveState {
        LiveState {
            session,
            generation: 0,
            change: Change::Initial,
            css: Vec::new(),
            errors,
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

/// The browser's side of the site's live state.
pub type Live = watch::Receiver<LiveState>;

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
        EVENTS_PATH => {
            // Another site's page must not subscribe to ours (nor learn its errors).
            if let Some(origin) = origin
                && !origin
                    .to_str()
                    .is_ok_and(|origin| is_allowed_origin(origin, hosts))
            {
                return plain(StatusCode::FORBIDDEN, "403 forbidden: foreign Origin\n");
            }
            events(live.clone(), token.clone())
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

/// The SSE stream: the current state at once, then every new one. It ends when the site
/// stops, so open browser tabs never hold a stopping site up.
fn events(live: Live, token: CancellationToken) -> Reply {
    // Ask browsers to reconnect quickly after a daemon restart.
    let hello = futures::stream::once(async { Bytes::from_static(b"retry: 500\n\n") });
    let updates =
        futures::stream::unfold((live, token, true), |(mut live, token, first)| async move {
            if !first {
                tokio::select! {
                    changed = live.changed() => changed.ok()?,
                    () = token.cancelled() => return None,
                }
            }
            let state = live.borrow_and_update().clone();
            let json = serde_json::to_string(&state).expect("live state serializes");
            let chunk = Bytes::from(format!("data: {json}\n\n"));
            Some((chunk, (live, token, false)))
        });
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

/// Where a tag goes into `html`: before its last `</body>` (or at the end).
pub fn injection_point(html: &[u8]) -> usize {
    rfind_ascii_case_insensitive(html, b"</body>").unwrap_or(html.len())
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

fn rfind_ascii_case_insensitive(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.len() > haystack.len() {
        return None;
    }
    (0..=haystack.len() - needle.len())
        .rev()
        .find(|&i| haystack[i..i + needle.len()].eq_ignore_ascii_case(needle))
}

#[cfg(test)]
mod tests {
    use super::*;

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
