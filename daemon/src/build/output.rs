//! A finished build: every servable URL mapped to its body, published whole. Serving reads
//! it; `sited build` writes it to disk, atomically.

use std::fs;
use std::hash::{Hash, Hasher as _};
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, LazyLock};

use bytes::Bytes;
use sited_proto::BuildReport;

/// What a URL serves.
#[derive(Debug, Clone)]
pub enum Body {
    /// Rendered by the build and held in memory.
    Memory(Bytes),
    /// A file served as it is. The path was found by the build's walk (inside the site,
    /// symlinks vetted), never derived from a request.
    File(PathBuf),
}

/// One servable URL.
#[derive(Debug, Clone)]
pub struct Resource {
    pub body: Body,
    /// Shared: every HTML page has the same one, and builds clone resources often.
    pub content_type: Arc<str>,
    /// Strong validator for `If-None-Match`; quoted, ready for the header.
    pub etag: Arc<str>,
    pub len: u64,
}

impl Resource {
    pub fn html(mut body: String) -> Resource {
        // Rendered strings grow by doubling; thousands of pages held for serving should
        // not keep that slack.
        body.shrink_to_fit();
        static HTML: LazyLock<Arc<str>> = LazyLock::new(|| Arc::from("text/html; charset=utf-8"));
        Resource::memory(Bytes::from(body), HTML.clone())
    }

    pub fn memory(body: Bytes, content_type: Arc<str>) -> Resource {
        let mut hasher = rustc_hash::FxHasher::default();
        body.hash(&mut hasher);
        Resource {
            etag: Arc::from(format!("\"{:016x}\"", hasher.finish())),
            len: body.len() as u64,
            body: Body::Memory(body),
            content_type,
        }
    }

    /// A file on disk, validated by its size and modification time.
    pub fn file(path: PathBuf) -> io::Result<Resource> {
        let meta = fs::metadata(&path)?;
        let modified = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        Ok(Resource {
            content_type: Arc::from(content_type_for(&path)),
            etag: Arc::from(format!("\"{:x}-{:x}\"", meta.len(), modified)),
            len: meta.len(),
            body: Body::File(path),
        })
    }
}

/// `Content-Type` for a file by its extension, with a charset on text.
pub fn content_type_for(path: &Path) -> String {
    let mime = mime_guess::from_path(path).first_or_octet_stream();
    let essence = mime.essence_str();
    let is_text = mime.type_() == mime_guess::mime::TEXT
        || matches!(
            essence,
            "application/javascript" | "application/json" | "image/svg+xml" | "application/xml"
        );
    if is_text {
        format!("{essence}; charset=utf-8")
    } else {
        essence.to_string()
    }
}

/// A complete build, ready to serve or write.
#[derive(Debug, Default)]
pub struct Output {
    /// Decoded URL path (`/posts/hello/`, `/img/a.png`) → what it serves.
    pub resources: rustc_hash::FxHashMap<String, Resource>,
    pub report: Option<BuildReport>,
}

impl Output {
    pub fn get(&self, path: &str) -> Option<&Resource> {
        self.resources.get(path)
    }

    /// Writes the build to `out` so that `out` holds either the previous output or the
    /// whole new one: everything goes to a sibling temp dir that is renamed into place.
    pub fn write_to(&self, out: &Path) -> io::Result<()> {
        let out = std::path::absolute(out)?;
        let parent = out.parent().unwrap_or(Path::new("/"));
        fs::create_dir_all(parent)?;
        let name = out.file_name().unwrap_or_default().to_string_lossy();
        let staging = parent.join(format!(".{name}.sited-new-{}", std::process::id()));
        let old = parent.join(format!(".{name}.sited-old-{}", std::process::id()));
        let _ = fs::remove_dir_all(&staging);
        let written = self.write_tree(&staging);
        if let Err(error) = written {
            let _ = fs::remove_dir_all(&staging);
            return Err(error);
        }
        let had_old = out.exists();
        if had_old {
            fs::rename(&out, &old)?;
        }
        if let Err(error) = fs::rename(&staging, &out) {
            if had_old {
                let _ = fs::rename(&old, &out);
            }
            return Err(error);
        }
        if had_old {
            fs::remove_dir_all(&old)?;
        }
        Ok(())
    }

    /// Writes every resource under `dir`, in parallel: on a busy disk each `mkdir` and
    /// `create` waits on the journal, and thousands of them in a row dominate a build.
    fn write_tree(&self, dir: &Path) -> io::Result<()> {
        use rayon::prelude::*;
        fs::create_dir_all(dir)?;
        let files: Vec<(PathBuf, &Resource)> = self
            .resources
            .iter()
            .filter_map(|(url, resource)| match url_to_file(url) {
                Some(rel) => Some((rel, resource)),
                None => {
                    tracing::warn!(url, "skipping URL that has no safe file name");
                    None
                }
            })
            .collect();
        // Every directory once, parents before children: one level at a time.
        let mut dirs: Vec<&Path> = files
            .iter()
            .flat_map(|(rel, _)| rel.ancestors().skip(1))
            .filter(|d| !d.as_os_str().is_empty())
            .collect();
        dirs.sort_by_key(|d| (d.components().count(), *d));
        dirs.dedup();
        for level in dirs.chunk_by(|a, b| a.components().count() == b.components().count()) {
            level
                .par_iter()
                .try_for_each(|rel| match fs::create_dir(dir.join(rel)) {
                    Err(error) if error.kind() != io::ErrorKind::AlreadyExists => Err(error),
                    _ => Ok(()),
                })?;
        }
        files.par_iter().try_for_each(|(rel, resource)| {
            let path = dir.join(rel);
            match &resource.body {
                Body::Memory(bytes) => fs::write(&path, bytes),
                Body::File(source) => fs::copy(source, &path).map(drop),
            }
        })
    }
}

/// The relative file a URL is written to: `/a/b/` → `a/b/index.html`. `None` for
/// anything that could step outside the output directory.
pub fn url_to_file(url: &str) -> Option<PathBuf> {
    let trimmed = url.trim_start_matches('/');
    let mut rel = PathBuf::from(trimmed);
    if url.ends_with('/') {
        rel.push("index.html");
    }
    rel.components()
        .all(|c| matches!(c, Component::Normal(_)))
        .then_some(rel)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_map_to_files_inside_the_output() {
        assert_eq!(url_to_file("/"), Some(PathBuf::from("index.html")));
        assert_eq!(url_to_file("/a/b/"), Some(PathBuf::from("a/b/index.html")));
        assert_eq!(url_to_file("/theme.css"), Some(PathBuf::from("theme.css")));
        assert_eq!(url_to_file("/../x"), None);
        assert_eq!(url_to_file("/a/../../x/"), None);
    }

    #[test]
    fn content_types_carry_charset_on_text() {
        assert_eq!(
            content_type_for(Path::new("a.css")),
            "text/css; charset=utf-8"
        );
        assert_eq!(
            content_type_for(Path::new("a.svg")),
            "image/svg+xml; charset=utf-8"
        );
        assert_eq!(content_type_for(Path::new("a.png")), "image/png");
        assert_eq!(
            content_type_for(Path::new("noext")),
            "application/octet-stream"
        );
    }

    #[test]
    fn write_replaces_previous_output_whole() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("public");
        fs::create_dir(&out).unwrap();
        fs::write(out.join("stale.html"), "old").unwrap();
        let mut output = Output::default();
        output
            .resources
            .insert("/".into(), Resource::html("home".into()));
        output
            .resources
            .insert("/a/".into(), Resource::html("a".into()));
        output.write_to(&out).unwrap();
        assert_eq!(fs::read_to_string(out.join("index.html")).unwrap(), "home");
        assert_eq!(fs::read_to_string(out.join("a/index.html")).unwrap(), "a");
        assert!(!out.join("stale.html").exists());
        let leftovers: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "staging dirs left behind");
    }
}
