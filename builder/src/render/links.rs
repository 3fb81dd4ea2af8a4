//! Links between sources: relative Markdown links (`../guide/intro.md#setup`) become the
//! URLs of the pages they name, and relative file links become absolute (a page is served
//! one level deeper than its source file).

use rustc_hash::FxHashMap as HashMap;
use std::cell::Cell;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use super::markdown::LinkResolver;
use crate::load::walk::is_markdown;
use crate::url::{encode_path, file_url, percent_decode};

/// Resolves a page's relative links against the source tree.
#[derive(Debug)]
pub struct SourceLinks<'a> {
    /// The page's directory, relative to the content dir.
    pub dir: &'a Path,
    /// Source path of every Markdown file → its URL.
    pub md_urls: &'a HashMap<Arc<Path>, String>,
    /// Set when a `.md` link was looked up: the page's HTML then depends on other
    /// pages' URLs, and must be re-rendered when they change.
    pub used_page_urls: Cell<bool>,
}

impl LinkResolver for SourceLinks<'_> {
    fn resolve(&self, dest: &str) -> Option<String> {
        if let Some(target) = dest.strip_prefix("@/") {
            // Zola's link to a page by its path in the content folder.
            return self.resolve_page(target, &[Path::new("")], false);
        }
        if let Some(target) = dest.strip_prefix(crate::shortcodes::REF_PREFIX) {
            // Hugo's `ref`/`relref`: the page's folder first, then the content folder.
            let bases = if target.starts_with('/') {
                vec![Path::new("")]
            } else {
                vec![self.dir, Path::new("")]
            };
            // One that finds no page keeps its target as written, never the marker: the
            // link check names it.
            return self
                .resolve_page(target.trim_start_matches('/'), &bases, true)
                .or_else(|| Some(target.to_string()));
        }
        if dest.is_empty() || dest.starts_with('/') || dest.starts_with('#') || has_scheme(dest) {
            return None;
        }
        let cut = dest.find(['#', '?']).unwrap_or(dest.len());
        let (path, suffix) = dest.split_at(cut);
        let decoded = percent_decode(path)?;
        let joined = normalize(&self.dir.join(&decoded))?;
        if is_markdown(&joined) {
            self.used_page_urls.set(true);
            let url = self.md_urls.get(joined.as_path())?;
            return Some(format!("{}{suffix}", encode_path(url)));
        }
        // mdBook sources link chapters by their output name: `intro.html` is `intro.md`.
        if joined.extension().is_some_and(|e| e == "html") {
            self.used_page_urls.set(true);
            if let Some(url) = self.md_urls.get(joined.with_extension("md").as_path()) {
                return Some(format!("{}{suffix}", encode_path(url)));
            }
        }
        let mut url = file_url(&joined);
        if path.ends_with('/') || url.is_empty() {
            url.push('/');
        }
        Some(format!("{}{suffix}", encode_path(&url)))
    }
}

impl SourceLinks<'_> {
    /// The URL of the page `target` (`path.md#fragment`) names under one of `bases`; with
    /// `hugo`, as Hugo looks pages up: case-insensitive, a folder naming its `_index.md`
    /// or `index.md`, `.md` optional.
    fn resolve_page(&self, target: &str, bases: &[&Path], hugo: bool) -> Option<String> {
        self.used_page_urls.set(true);
        let cut = target.find(['#', '?']).unwrap_or(target.len());
        let (path, suffix) = target.split_at(cut);
        let path = percent_decode(path)?;
        let path = path.trim_end_matches('/');
        for base in bases {
            let Some(joined) = normalize(&base.join(path)) else {
                continue;
            };
            if !hugo {
                if let Some(url) = self.md_urls.get(joined.as_path()) {
                    return Some(format!("{}{suffix}", encode_path(url)));
                }
                continue;
            }
            let candidates = [
                joined.clone(),
                joined.with_extension("md"),
                joined.join("_index.md"),
                joined.join("index.md"),
            ];
            // The path as written first (a lookup), then any case (a scan).
            let exact = candidates
                .iter()
                .find_map(|c| self.md_urls.get(c.as_path()));
            let any_case = || {
                candidates.iter().find_map(|candidate| {
                    let wanted = candidate.to_str()?;
                    self.md_urls
                        .iter()
                        .find(|(source, _)| {
                            source
                                .to_str()
                                .is_some_and(|s| s.eq_ignore_ascii_case(wanted))
                        })
                        .map(|(_, url)| url)
                })
            };
            if let Some(url) = exact.or_else(any_case) {
                return Some(format!("{}{suffix}", encode_path(url)));
            }
        }
        None
    }
}

fn has_scheme(dest: &str) -> bool {
    match dest.find(':') {
        Some(colon) => {
            let scheme = &dest[..colon];
            !scheme.is_empty()
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        }
        None => false,
    }
}

/// Resolves `.` and `..` without touching the file system; `None` if it leaves the root.
fn normalize(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(dir: &str, dest: &str) -> Option<String> {
        let mut urls = HashMap::default();
        urls.insert(
            Arc::from(Path::new("guide/intro.md")),
            "/guide/intro/".to_string(),
        );
        urls.insert(
            Arc::from(Path::new("guide/_index.md")),
            "/guide/".to_string(),
        );
        urls.insert(Arc::from(Path::new("café.md")), "/café/".to_string());
        let links = SourceLinks {
            dir: Path::new(dir),
            md_urls: &urls,
            used_page_urls: Cell::new(false),
        };
        links.resolve(dest)
    }

    #[test]
    fn markdown_links_become_page_urls_with_their_fragment() {
        assert_eq!(
            resolve("guide", "intro.md").as_deref(),
            Some("/guide/intro/")
        );
        assert_eq!(
            resolve("guide", "intro.md#setup").as_deref(),
            Some("/guide/intro/#setup")
        );
        assert_eq!(
            resolve("other", "../guide/intro.md").as_deref(),
            Some("/guide/intro/")
        );
        assert_eq!(resolve("guide", "_index.md").as_deref(), Some("/guide/"));
        assert_eq!(resolve("", "caf%C3%A9.md").as_deref(), Some("/caf%C3%A9/"));
        // mdBook style.
        assert_eq!(
            resolve("guide", "intro.html#x").as_deref(),
            Some("/guide/intro/#x")
        );
    }

    #[test]
    fn files_become_absolute_and_the_rest_is_left_alone() {
        assert_eq!(
            resolve("posts", "img/a.png").as_deref(),
            Some("/posts/img/a.png")
        );
        assert_eq!(
            resolve("posts", "../a b.pdf").as_deref(),
            Some("/a%20b.pdf")
        );
        assert_eq!(resolve("posts", "https://example.com/x.md"), None);
        assert_eq!(resolve("posts", "mailto:a@b.c"), None);
        assert_eq!(resolve("posts", "#top"), None);
        assert_eq!(resolve("posts", "/abs/path"), None);
        assert_eq!(resolve("posts", "missing.md"), None, "left as written");
        assert_eq!(resolve("", "../../outside.md"), None, "leaves the site");
    }

    #[test]
    fn zola_and_hugo_page_references() {
        assert_eq!(
            resolve("other", "@/guide/intro.md#x").as_deref(),
            Some("/guide/intro/#x")
        );
        assert_eq!(
            resolve("other", "@/intro.md"),
            None,
            "from the content folder only"
        );
        // Hugo: relative to the page first, then the content folder; any case; a folder
        // names its _index.md; `.md` optional.
        assert_eq!(
            resolve("guide", "@ref:Intro.md").as_deref(),
            Some("/guide/intro/")
        );
        assert_eq!(
            resolve("other", "@ref:guide/intro").as_deref(),
            Some("/guide/intro/")
        );
        assert_eq!(
            resolve("other", "@ref:/guide#top").as_deref(),
            Some("/guide/#top")
        );
        assert_eq!(
            resolve("other", "@ref:nothing.md").as_deref(),
            Some("nothing.md")
        );
    }
}
