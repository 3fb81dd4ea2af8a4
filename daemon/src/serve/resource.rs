//! What serving holds of a build: every URL the build produced mapped to a [`Resource`],
//! with the header values and compressed bodies derived from it ([`Prepared`]), made on
//! its first request and kept for as long as the resource is. The site actor carries a
//! resource (and so its prepared headers and compressed bodies) over from one build to the
//! next when its tag did not change.

use std::fs;
use std::sync::{Arc, OnceLock};
use std::time::UNIX_EPOCH;

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

/// What a URL serves: the builder's own (memory, packed page or file).
pub use sited_builder::Body;

/// One servable URL: what the build made for it, shared with the builder rather than
/// copied (a table of every URL of a big site costs a handle per URL, not the fields),
/// and what serving derives from it.
#[derive(Debug, Clone)]
pub struct Resource {
    made: sited_builder::Resource,
    /// Shared by every copy of the resource, so its compressed bodies outlive the build
    /// that made them. Boxed: most resources of a big site are never requested between
    /// two builds, and an empty cell costs a pointer where a `Prepared` in place cost
    /// about 400 bytes per URL (3 MB for a 7,400-page site; bench/memory.sh).
    prepared: Arc<OnceLock<Box<Prepared>>>,
}

impl std::ops::Deref for Resource {
    type Target = sited_builder::Made;

    fn deref(&self) -> &sited_builder::Made {
        &self.made
    }
}

impl From<&sited_builder::Resource> for Resource {
    fn from(made: &sited_builder::Resource) -> Resource {
        Resource {
            made: made.clone(),
            prepared: Arc::default(),
        }
    }
}

impl Resource {
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
