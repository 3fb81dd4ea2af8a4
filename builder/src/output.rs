//! A build's output: every URL the site serves mapped to its body, its type and its
//! validators. Immutable once built: a server publishes it whole, `sited build` writes it.

use std::fs;
use std::hash::{Hash, Hasher as _};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;

pub mod packed;
pub mod spill;
pub use packed::Packed;
pub use spill::Spill;

/// What a URL serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// Rendered by the build and held in memory.
    Memory(Bytes),
    /// A page rendered by a long-lived build (a server's), held compressed: see
    /// [`Packed`]. Shared, since every build's output and the render cache hold it.
    Packed(Arc<Packed>),
    /// A file served as it is. The path was found by the build's walk (inside the site,
    /// symlinks vetted, canonical), never derived from a request.
    File(PathBuf),
}

/// One servable URL: a handle on what the build made for it ([`Made`], read through
/// `Deref`). Shared, not copied: the render cache, the last output and a server's
/// published output each map every URL of a big site to it, and a handle makes each of
/// those tables 8 bytes a URL where the fields in place cost 88 (issue 17.3: about 3 MiB
/// a 7,400-page site, counted with `memory-parts`).
#[derive(Debug, Clone)]
pub struct Resource(Arc<Made>);

/// What the build made for one URL.
#[derive(Debug)]
pub struct Made {
    pub body: Body,
    /// Shared: every HTML page has the same one, and builds clone resources often.
    pub content_type: Arc<str>,
    /// Strong validator, quoted, ready for an `ETag` header: a hash of the bytes held in
    /// memory, or a file's size and modification time ([`file_etag`]). Equal tags mean
    /// equal bodies, which is how unchanged URLs are told apart from changed ones.
    pub etag: Arc<str>,
    pub len: u64,
    /// When the body was rendered (pages) or last changed on disk (files), for
    /// `Last-Modified`. The one field two builds of the same sources differ in.
    pub modified: SystemTime,
}

impl std::ops::Deref for Resource {
    type Target = Made;

    fn deref(&self) -> &Made {
        &self.0
    }
}

impl Resource {
    /// A resource of these parts (a server's tests make their own).
    pub fn new(
        body: Body,
        content_type: Arc<str>,
        etag: Arc<str>,
        len: u64,
        modified: SystemTime,
    ) -> Resource {
        Resource(Arc::new(Made {
            body,
            content_type,
            etag,
            len,
            modified,
        }))
    }

    /// A rendered HTML page.
    pub fn html(mut body: String) -> Resource {
        // Rendered strings grow by doubling; thousands of pages held for serving should
        // not keep that slack.
        body.shrink_to_fit();
        Resource::memory(Bytes::from(body), Resource::html_type())
    }

    /// A rendered HTML page held compressed ([`Packed`]); its tag and length are the
    /// page's own, as [`Resource::html`] makes them.
    pub fn packed_html(body: &str) -> Resource {
        let etag = Resource::memory_etag(body.as_bytes());
        Resource::new(
            Body::Packed(Arc::new(Packed::pack(body.as_bytes()))),
            Resource::html_type(),
            etag,
            body.len() as u64,
            SystemTime::now(),
        )
    }

    /// Bytes made by the build (a page, a feed, the stylesheet).
    pub fn memory(body: Bytes, content_type: Arc<str>) -> Resource {
        let etag = Resource::memory_etag(&body);
        let len = body.len() as u64;
        Resource::new(
            Body::Memory(body),
            content_type,
            etag,
            len,
            SystemTime::now(),
        )
    }

    /// The tag of bytes made by the build: a hash of them.
    fn memory_etag(body: &[u8]) -> Arc<str> {
        let mut hasher = rustc_hash::FxHasher::default();
        body.hash(&mut hasher);
        Arc::from(format!("\"{:016x}\"", hasher.finish()))
    }

    fn html_type() -> Arc<str> {
        static HTML: LazyLock<Arc<str>> = LazyLock::new(|| Arc::from("text/html; charset=utf-8"));
        HTML.clone()
    }

    /// The body's bytes when the build holds them (in memory or spilled, packed or not);
    /// `None` for a file. Only a spilled page fails, when its file cannot be read.
    pub fn bytes(&self) -> io::Result<Option<Bytes>> {
        match &self.body {
            Body::Memory(bytes) => Ok(Some(bytes.clone())),
            Body::Packed(packed) => packed.unpack().map(Some),
            Body::File(_) => Ok(None),
        }
    }

    /// A file on disk, validated by its size and modification time. The path kept is
    /// the canonical one (the walk already checked it stays inside the site), so a
    /// server can open it without following symlinks.
    pub fn file(path: PathBuf) -> io::Result<Resource> {
        let path = path.canonicalize()?;
        let meta = fs::metadata(&path)?;
        let content_type = Arc::from(content_type_for(&path));
        Ok(Resource::new(
            Body::File(path),
            content_type,
            Arc::from(file_etag(&meta)),
            meta.len(),
            meta.modified().unwrap_or(UNIX_EPOCH),
        ))
    }

    /// Whether this is an HTML page.
    pub fn is_html(&self) -> bool {
        self.content_type.starts_with("text/html")
    }

    /// Same body, type and validators (everything but `modified`). Bodies in memory are
    /// compared by their tags, which hash their bytes.
    pub fn same_as(&self, other: &Resource) -> bool {
        let same_body = match (&self.body, &other.body) {
            (Body::Memory(_), Body::Memory(_)) | (Body::Packed(_), Body::Packed(_)) => true,
            (Body::File(a), Body::File(b)) => a == b,
            _ => false,
        };
        same_body
            && self.etag == other.etag
            && self.len == other.len
            && self.content_type == other.content_type
    }
}

/// The strong validator the builder gives a file: its size and modification time, quoted.
pub fn file_etag(meta: &fs::Metadata) -> String {
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    format!("\"{:x}-{:x}\"", meta.len(), modified)
}

/// `Content-Type` for a file by its extension, with `charset=utf-8` on text. The web's
/// common types are spelled out (`text/javascript` per RFC 9239, fonts, media a browser
/// plays); anything else is mime_guess's answer.
pub fn content_type_for(path: &Path) -> String {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let known = match ext.as_str() {
        "html" | "htm" => Some("text/html"),
        "css" => Some("text/css"),
        "js" | "mjs" | "cjs" => Some("text/javascript"),
        "json" | "map" => Some("application/json"),
        "jsonld" => Some("application/ld+json"),
        "webmanifest" => Some("application/manifest+json"),
        "xml" | "xsl" => Some("application/xml"),
        "rss" => Some("application/rss+xml"),
        "atom" => Some("application/atom+xml"),
        "txt" => Some("text/plain"),
        "md" | "markdown" => Some("text/markdown"),
        "csv" => Some("text/csv"),
        "vtt" => Some("text/vtt"),
        "ics" => Some("text/calendar"),
        "svg" => Some("image/svg+xml"),
        "png" => Some("image/png"),
        "jpg" | "jpeg" => Some("image/jpeg"),
        "gif" => Some("image/gif"),
        "webp" => Some("image/webp"),
        "avif" => Some("image/avif"),
        "ico" => Some("image/x-icon"),
        "bmp" => Some("image/bmp"),
        "woff" => Some("font/woff"),
        "woff2" => Some("font/woff2"),
        "ttf" => Some("font/ttf"),
        "otf" => Some("font/otf"),
        "mp4" | "m4v" => Some("video/mp4"),
        "webm" => Some("video/webm"),
        "ogv" => Some("video/ogg"),
        "mov" => Some("video/quicktime"),
        "mp3" => Some("audio/mpeg"),
        "m4a" => Some("audio/mp4"),
        "aac" => Some("audio/aac"),
        "oga" | "ogg" => Some("audio/ogg"),
        "opus" => Some("audio/opus"),
        "wav" => Some("audio/wav"),
        "flac" => Some("audio/flac"),
        "pdf" => Some("application/pdf"),
        "wasm" => Some("application/wasm"),
        "zip" => Some("application/zip"),
        "gz" => Some("application/gzip"),
        _ => None,
    };
    let mime = known.map_or_else(
        || {
            mime_guess::from_path(path)
                .first_or_octet_stream()
                .essence_str()
                .to_string()
        },
        str::to_string,
    );
    let is_text = mime.starts_with("text/")
        || mime.ends_with("+xml")
        || mime.ends_with("+json")
        || matches!(
            mime.as_str(),
            "application/javascript" | "application/json" | "application/xml"
        );
    if is_text {
        format!("{mime}; charset=utf-8")
    } else {
        mime
    }
}

/// A complete build, ready to serve or write.
#[derive(Debug, Clone, Default)]
pub struct Output {
    /// Decoded URL path (`/posts/hello/`, `/img/a.png`) → what it serves.
    pub resources: rustc_hash::FxHashMap<String, Resource>,
}

impl Output {
    pub fn get(&self, path: &str) -> Option<&Resource> {
        self.resources.get(path)
    }

    /// The URLs that are new, gone or different in `self` compared with `before`, sorted.
    pub fn changed_since(&self, before: &Output) -> Vec<String> {
        let mut changed: Vec<String> = self
            .resources
            .iter()
            .filter(|(url, now)| before.get(url).is_none_or(|then| !then.same_as(now)))
            .map(|(url, _)| url.clone())
            .chain(
                before
                    .resources
                    .keys()
                    .filter(|url| !self.resources.contains_key(*url))
                    .cloned(),
            )
            .collect();
        changed.sort_unstable();
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_of_the_web_carry_charset_on_text() {
        for (file, expected) in [
            ("a.html", "text/html; charset=utf-8"),
            ("a.css", "text/css; charset=utf-8"),
            ("a.js", "text/javascript; charset=utf-8"),
            ("a.mjs", "text/javascript; charset=utf-8"),
            ("a.json", "application/json; charset=utf-8"),
            ("a.js.map", "application/json; charset=utf-8"),
            (
                "site.webmanifest",
                "application/manifest+json; charset=utf-8",
            ),
            ("feed.xml", "application/xml; charset=utf-8"),
            ("feed.rss", "application/rss+xml; charset=utf-8"),
            ("a.txt", "text/plain; charset=utf-8"),
            ("a.svg", "image/svg+xml; charset=utf-8"),
            ("A.PNG", "image/png"),
            ("a.jpeg", "image/jpeg"),
            ("a.webp", "image/webp"),
            ("a.avif", "image/avif"),
            ("favicon.ico", "image/x-icon"),
            ("a.woff2", "font/woff2"),
            ("a.mp4", "video/mp4"),
            ("a.webm", "video/webm"),
            ("a.mp3", "audio/mpeg"),
            ("a.vtt", "text/vtt; charset=utf-8"),
            ("a.pdf", "application/pdf"),
            ("a.wasm", "application/wasm"),
            ("a.tiff", "image/tiff"),
            ("noext", "application/octet-stream"),
        ] {
            assert_eq!(content_type_for(Path::new(file)), expected, "{file}");
        }
    }

    #[test]
    fn changed_urls_are_the_new_the_gone_and_the_different() {
        let mut before = Output::default();
        for (url, body) in [("/", "home"), ("/a/", "a"), ("/b/", "b")] {
            before
                .resources
                .insert(url.into(), Resource::html(body.into()));
        }
        let mut after = before.clone();
        after.resources.remove("/a/");
        after
            .resources
            .insert("/b/".into(), Resource::html("b, edited".into()));
        after
            .resources
            .insert("/c/".into(), Resource::html("c".into()));
        // Rendered again to the same bytes: not a change.
        after
            .resources
            .insert("/".into(), Resource::html("home".into()));
        assert_eq!(after.changed_since(&before), ["/a/", "/b/", "/c/"]);
        assert!(before.changed_since(&before).is_empty());
    }
}
