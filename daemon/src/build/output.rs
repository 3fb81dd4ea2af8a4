//! A finished build: every servable URL mapped to its body, published whole. Serving reads
//! it; `sited build` writes it to disk, atomically.

use std::fs;
use std::hash::{Hash, Hasher as _};
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, LazyLock};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use sited_proto::BuildReport;

use crate::build::out_dir;
use crate::serve::Prepared;

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
    /// When the body was rendered (pages) or last changed on disk (files), for
    /// `Last-Modified`.
    pub modified: SystemTime,
    /// What the server derives from the above once per build instead of per request:
    /// header values and compressed bodies.
    prepared: Arc<std::sync::OnceLock<Prepared>>,
}

impl Resource {
    /// What the server derives from the resource: made on the first request for it (a
    /// one-shot build never pays for it), shared by every copy of the resource, so its
    /// compressed bodies outlive the build that made them.
    pub fn prepared(&self) -> &Prepared {
        self.prepared
            .get_or_init(|| Prepared::new(&self.content_type, &self.etag, self.modified))
    }

    pub fn html(mut body: String) -> Resource {
        static HTML: LazyLock<Arc<str>> = LazyLock::new(|| Arc::from("text/html; charset=utf-8"));
        // Rendered strings grow by doubling; thousands of pages held for serving should
        // not keep that slack.
        body.shrink_to_fit();
        Resource::memory(Bytes::from(body), HTML.clone())
    }

    pub fn memory(body: Bytes, content_type: Arc<str>) -> Resource {
        let mut hasher = rustc_hash::FxHasher::default();
        body.hash(&mut hasher);
        let etag: Arc<str> = Arc::from(format!("\"{:016x}\"", hasher.finish()));
        let modified = SystemTime::now();
        Resource {
            prepared: Arc::default(),
            etag,
            len: body.len() as u64,
            body: Body::Memory(body),
            content_type,
            modified,
        }
    }

    /// A file on disk, validated by its size and modification time. The path kept is
    /// the canonical one (the walk already checked it stays inside the site), so the
    /// server can open it without following symlinks.
    pub fn file(path: PathBuf) -> io::Result<Resource> {
        let path = path.canonicalize()?;
        let meta = fs::metadata(&path)?;
        let content_type: Arc<str> = Arc::from(content_type_for(&path));
        let etag: Arc<str> = Arc::from(file_etag(&meta));
        let modified = meta.modified().unwrap_or(UNIX_EPOCH);
        Ok(Resource {
            prepared: Arc::default(),
            content_type,
            etag,
            len: meta.len(),
            modified,
            body: Body::File(path),
        })
    }
}

/// The strong validator of a file: its size and modification time, quoted.
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

    /// Writes every resource under `dir`, in parallel: on a busy disk each `mkdir` and
    /// `create` waits on the journal, and thousands of them in a row dominate a build.
    pub fn write_tree(&self, dir: &Path) -> io::Result<()> {
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

/// A sibling directory a build is written into before it replaces the output directory
/// whole (rename), so the output holds the previous build or the new one, never a mix.
/// Made only for an output directory [`out_dir::check`] allowed; it carries the marker
/// that lets the next build replace it.
#[derive(Debug)]
pub struct Staging {
    /// The checked output directory, symlinks resolved.
    out: PathBuf,
    staging: PathBuf,
}

impl Staging {
    /// Creates a fresh staging directory beside `out` (a name no one else uses: it is
    /// created, never taken over).
    pub fn new(out: &Path) -> io::Result<Staging> {
        let parent = out.parent().unwrap_or(Path::new("/"));
        fs::create_dir_all(parent)?;
        let name = out.file_name().unwrap_or_default().to_string_lossy();
        for attempt in 0u32.. {
            let staging = parent.join(format!(
                ".{name}.sited-new-{}-{attempt}",
                std::process::id()
            ));
            match fs::create_dir(&staging) {
                Ok(()) => {
                    let staging = Staging {
                        out: out.to_path_buf(),
                        staging,
                    };
                    if let Err(error) =
                        fs::write(staging.path().join(out_dir::MARKER), out_dir::MARKER_TEXT)
                    {
                        staging.discard();
                        return Err(error);
                    }
                    return Ok(staging);
                }
                Err(error) if error.kind() == io::ErrorKind::AlreadyExists && attempt < 100 => {}
                Err(error) => return Err(error),
            }
        }
        unreachable!("the loop returns")
    }

    pub fn path(&self) -> &Path {
        &self.staging
    }

    /// Moves the staged build into place. The previous output is removed, after checking
    /// once more that it is still empty or sited's own.
    pub fn publish(self) -> io::Result<()> {
        if let Err(error) = out_dir::check_contents(&self.out, &self.out) {
            self.discard();
            return Err(io::Error::other(error.to_string()));
        }
        let parent = self.out.parent().unwrap_or(Path::new("/"));
        let name = self.out.file_name().unwrap_or_default().to_string_lossy();
        let old = parent.join(format!(".{name}.sited-old-{}", std::process::id()));
        let had_old = self.out.exists();
        if had_old && let Err(error) = fs::rename(&self.out, &old) {
            self.discard();
            return Err(error);
        }
        if let Err(error) = fs::rename(&self.staging, &self.out) {
            if had_old {
                let _ = fs::rename(&old, &self.out);
            }
            self.discard();
            return Err(error);
        }
        if had_old {
            fs::remove_dir_all(&old)?;
        }
        Ok(())
    }

    /// Throws the staged build away; the output is left as it was.
    pub fn discard(self) {
        let _ = fs::remove_dir_all(&self.staging);
    }
}

/// Writes one file under `dir` at the place for `url`, creating its folders.
pub fn write_file(dir: &Path, url: &str, bytes: &[u8]) -> io::Result<()> {
    let rel =
        url_to_file(url).ok_or_else(|| io::Error::other(format!("no safe file name for {url}")))?;
    let path = dir.join(rel);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    fs::write(path, bytes)
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
    fn publish_replaces_previous_output_whole() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("public");
        let mut output = Output::default();
        output
            .resources
            .insert("/".into(), Resource::html("home".into()));
        output
            .resources
            .insert("/a/".into(), Resource::html("a".into()));
        let write = |output: &Output| {
            let staging = Staging::new(&out).unwrap();
            output.write_tree(staging.path()).unwrap();
            staging.publish().unwrap();
        };
        write(&output);
        fs::write(out.join("stale.html"), "old").unwrap();
        output.resources.remove("/a/");
        write(&output);
        assert_eq!(fs::read_to_string(out.join("index.html")).unwrap(), "home");
        assert!(!out.join("a").exists());
        assert!(!out.join("stale.html").exists());
        assert!(out.join(out_dir::MARKER).is_file());
        let leftovers: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "staging dirs left behind");
    }

    #[test]
    fn publish_refuses_an_output_that_became_foreign_meanwhile() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("public");
        let staging = Staging::new(&out).unwrap();
        fs::create_dir(&out).unwrap();
        fs::write(out.join("precious.txt"), "mine").unwrap();
        assert!(staging.publish().is_err());
        assert_eq!(
            fs::read_to_string(out.join("precious.txt")).unwrap(),
            "mine"
        );
        let leftovers: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "staging dir left behind");
    }
}
