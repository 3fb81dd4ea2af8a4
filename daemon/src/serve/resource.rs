//! What serving holds of a build: every URL the build produced mapped to a [`Resource`],
//! with the header values and compressed bodies derived from it ([`Prepared`]), made on
//! its first request and kept for as long as the resource is. The site actor carries a
//! resource (and so its prepared headers and compressed bodies) over from one build to the
//! next when its tag did not change.

use std::fs;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use super::Prepared;

/// Every servable URL of one build.
#[derive(Debug, Clone, Default)]
pub struct Output {
    /// Decoded URL path (`/posts/hello/`, `/img/a.png`) → what it serves.
    pub resources: rustc_hash::FxHashMap<String, Resource>,
}

impl Output {
    pub fn get(&self, path: &str) -> Option<&Resource> {
        self.resources.get(path)
    }
}

/// What a URL serves.
#[derive(Debug, Clone)]
pub enum Body {
    /// Bytes held in memory (a rendered page, a feed).
    Memory(Bytes),
    /// A page held compressed: sent as it is held to clients that take gzip, inflated
    /// (through a small cache of hot pages, [`super::hot`]) for the others.
    Packed(Arc<sited_builder::output::Packed>),
    /// A file served as it is. The path was found by the build's walk (inside the site,
    /// symlinks vetted), never derived from a request.
    File(PathBuf),
}

/// One servable URL.
#[derive(Debug, Clone)]
pub struct Resource {
    pub body: Body,
    pub content_type: Arc<str>,
    /// Strong validator for `If-None-Match`; quoted, ready for the header. For a file,
    /// the tag it had when built: responses tag the file as it is when opened.
    pub etag: Arc<str>,
    pub len: u64,
    /// For `Last-Modified`.
    pub modified: SystemTime,
    /// Shared by every copy of the resource, so its compressed bodies outlive the build
    /// that made them. Boxed: most resources of a big site are never requested between
    /// two builds, and an empty cell costs a pointer where a `Prepared` in place cost
    /// about 400 bytes per URL (3 MB for a 7,400-page site; bench/memory.sh).
    prepared: Arc<OnceLock<Box<Prepared>>>,
}

impl Resource {
    pub fn new(
        body: Body,
        content_type: Arc<str>,
        etag: Arc<str>,
        len: u64,
        modified: SystemTime,
    ) -> Resource {
        Resource {
            body,
            content_type,
            etag,
            len,
            modified,
            prepared: Arc::default(),
        }
    }

    /// What the server derives from the resource: made on the first request for it.
    pub fn prepared(&self) -> &Prepared {
        self.prepared
            .get_or_init(|| Box::new(Prepared::new(&self.content_type, &self.etag, self.modified)))
    }
}

/// The strong validator of a file as it is now: its size and modification time, quoted.
pub fn file_etag(meta: &fs::Metadata) -> String {
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    format!("\"{:x}-{:x}\"", meta.len(), modified)
}
