//! The site's layout on disk and the walk that finds its sources: which directory is the
//! content, which files are Markdown, which are served as they are, and which are
//! ignored (hidden files, editor droppings, symlinks that leave the site).

use std::fs;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sited_proto::BuildError;

/// `site.toml`, every key optional.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SiteConfig {
    pub title: String,
    pub description: Option<String>,
    pub base_url: String,
    /// Free-form values for templates, as `site.extra`.
    pub extra: toml::Table,
}

impl Default for SiteConfig {
    fn default() -> Self {
        SiteConfig {
            title: String::new(),
            description: None,
            base_url: String::from("/"),
            extra: toml::Table::new(),
        }
    }
}

/// Where things are in one site.
#[derive(Debug, Clone)]
pub struct Layout {
    /// Canonical site root.
    pub root: PathBuf,
    /// `root/content`, or the root itself when there is no `content/`.
    pub content_dir: PathBuf,
    pub templates_dir: Option<PathBuf>,
    pub static_dir: Option<PathBuf>,
    pub config: SiteConfig,
}

/// A file found by the walk, with its path relative to the directory walked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub path: PathBuf,
    pub rel: PathBuf,
}

/// Names at the top of the root that are the site's machinery, not its content, when the
/// root doubles as the content directory.
const RESERVED_AT_ROOT: &[&str] = &["site.toml", "templates", "static", "public", "target"];

impl Layout {
    /// Reads the layout of the site at `root`. Config errors are reported, not fatal:
    /// the site builds with defaults so the rest of it can still be seen.
    pub fn discover(root: &Path, errors: &mut Vec<BuildError>) -> std::io::Result<Layout> {
        let root = root.canonicalize()?;
        let dir = |name: &str| {
            let path = root.join(name);
            path.is_dir().then_some(path)
        };
        let content_dir = dir("content").unwrap_or_else(|| root.clone());
        let mut config = read_config(&root, errors);
        if config.title.is_empty() {
            // Zero configuration still gets a name in the header and the tab: the folder's.
            config.title = root
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())
                .unwrap_or_default();
        }
        Ok(Layout {
            templates_dir: dir("templates"),
            static_dir: dir("static"),
            content_dir,
            config,
            root,
        })
    }

    /// Path shown in errors: relative to the root when inside it.
    pub fn display_path(&self, path: &Path) -> PathBuf {
        path.strip_prefix(&self.root).unwrap_or(path).to_path_buf()
    }

    /// Every file under the content directory (Markdown and assets alike).
    pub fn content_files(&self, errors: &mut Vec<BuildError>) -> Vec<Source> {
        let skip_reserved = self.content_dir == self.root;
        let mut files = Vec::new();
        walk(
            self,
            &self.content_dir,
            Path::new(""),
            skip_reserved,
            &mut files,
            errors,
        );
        files.sort_by(|a, b| a.rel.cmp(&b.rel));
        files
    }

    /// Every file under `static/`.
    pub fn static_files(&self, errors: &mut Vec<BuildError>) -> Vec<Source> {
        let mut files = Vec::new();
        if let Some(dir) = &self.static_dir {
            walk(self, dir, Path::new(""), false, &mut files, errors);
        }
        files.sort_by(|a, b| a.rel.cmp(&b.rel));
        files
    }
}

fn read_config(root: &Path, errors: &mut Vec<BuildError>) -> SiteConfig {
    let path = root.join("site.toml");
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return SiteConfig::default(),
        Err(error) => {
            errors.push(BuildError {
                file: "site.toml".into(),
                line: None,
                column: None,
                message: format!("cannot read: {error}"),
            });
            return SiteConfig::default();
        }
    };
    match toml::from_str(&text) {
        Ok(config) => config,
        Err(error) => {
            let (line, column) = error
                .span()
                .map(|span| {
                    let before = &text[..span.start];
                    let line = before.matches('\n').count() as u32 + 1;
                    let column = before.rsplit('\n').next().unwrap_or("").chars().count() as u32;
                    (Some(line), Some(column + 1))
                })
                .unwrap_or((None, None));
            errors.push(BuildError {
                file: "site.toml".into(),
                line,
                column,
                message: error.message().trim().to_string(),
            });
            SiteConfig::default()
        }
    }
}

/// Files and directories no site means to publish: hidden ones and the temp files
/// editors leave while saving (vim's `.swp`/`4913`/`~`, emacs' `.#x`/`#x#`, JetBrains'
/// `___jb_tmp___`, generic `.tmp`).
pub fn is_ignored_name(name: &str) -> bool {
    // `..md` is not hidden: it is the page for the `.` command (tldr has one).
    let hidden = name.starts_with('.') && !(name.starts_with("..") && name.len() > 2);
    hidden
        || name.ends_with('~')
        || name == "4913"
        || name.ends_with(".swp")
        || name.ends_with(".swx")
        || name.ends_with(".tmp")
        || name.ends_with("___jb_tmp___")
        || name.ends_with("___jb_old___")
        || (name.starts_with('#') && name.ends_with('#'))
}

fn walk(
    layout: &Layout,
    dir: &Path,
    rel: &Path,
    skip_reserved: bool,
    out: &mut Vec<Source>,
    errors: &mut Vec<BuildError>,
) {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) => {
            errors.push(BuildError {
                file: layout.display_path(dir),
                line: None,
                column: None,
                message: format!("cannot read directory: {error}"),
            });
            return;
        }
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name_str) = name.to_str() else {
            errors.push(BuildError {
                file: layout.display_path(&entry.path()),
                line: None,
                column: None,
                message: "file name is not valid UTF-8; skipped".into(),
            });
            continue;
        };
        if (is_ignored_name(name_str) && !(rel.as_os_str().is_empty() && name_str == ".well-known"))
            || (skip_reserved && RESERVED_AT_ROOT.contains(&name_str))
        {
            continue;
        }
        let path = entry.path();
        let Ok(file_type) = entry.file_type() else {
            continue;
        };
        let (is_dir, is_file) = if file_type.is_symlink() {
            // Follow a link only when its target stays inside the site: a link to
            // ~/.ssh must never become servable.
            match path.canonicalize() {
                Ok(target) if target.starts_with(&layout.root) => {
                    (target.is_dir(), target.is_file())
                }
                _ => {
                    tracing::warn!(path = %path.display(), "skipping symlink that leaves the site");
                    continue;
                }
            }
        } else {
            (file_type.is_dir(), file_type.is_file())
        };
        let child_rel = rel.join(&name);
        if is_dir {
            // Symlinked directories are not descended into: they could loop.
            if !file_type.is_symlink() {
                walk(layout, &path, &child_rel, false, out, errors);
            }
        } else if is_file {
            out.push(Source {
                path,
                rel: child_rel,
            });
        }
    }
}

/// What a changed path means for a site, decided from the path alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// A Markdown page or section.
    Markdown,
    /// Any other file beside the content (images, downloads).
    Asset,
    /// A template override.
    Template,
    /// A file under `static/`.
    Static,
    /// `site.toml`.
    Config,
    /// The site root itself (created, deleted, renamed).
    Root,
    /// Not part of the site: hidden and editor temp files, build output, other folders.
    Ignored,
}

/// Classifies a changed `path` of the site rooted at `root` (both canonical). Pure but
/// for one question: whether the site has a `content/` folder.
pub fn classify(root: &Path, path: &Path, has_content_dir: bool) -> ChangeKind {
    let Ok(rel) = path.strip_prefix(root) else {
        return ChangeKind::Ignored;
    };
    let mut parts = rel
        .components()
        .map(|c| c.as_os_str().to_str().unwrap_or("."));
    let Some(first) = parts.next() else {
        return ChangeKind::Root;
    };
    // `content/` itself appearing or going changes which folder is the content.
    if rel == Path::new("content") {
        return ChangeKind::Root;
    }
    if rel
        .components()
        .any(|c| c.as_os_str().to_str().is_none_or(is_ignored_name))
    {
        return ChangeKind::Ignored;
    }
    let is_markdown = matches!(
        rel.extension().and_then(|e| e.to_str()),
        Some("md" | "markdown")
    );
    let content = if is_markdown {
        ChangeKind::Markdown
    } else {
        ChangeKind::Asset
    };
    match first {
        "site.toml" if rel.components().count() == 1 => ChangeKind::Config,
        "templates" => ChangeKind::Template,
        "static" => ChangeKind::Static,
        "content" if has_content_dir => content,
        _ if has_content_dir => ChangeKind::Ignored,
        name if RESERVED_AT_ROOT.contains(&name) => ChangeKind::Ignored,
        _ => content,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changed_paths_are_classified() {
        let root = Path::new("/site");
        let kind = |p: &str, content: bool| classify(root, &root.join(p), content);
        assert_eq!(classify(root, root, true), ChangeKind::Root);
        assert_eq!(kind("content", true), ChangeKind::Root);
        assert_eq!(kind("content", false), ChangeKind::Root);
        assert_eq!(kind("content/posts/a.md", true), ChangeKind::Markdown);
        assert_eq!(kind("content/posts/a.png", true), ChangeKind::Asset);
        assert_eq!(kind("templates/page.html", true), ChangeKind::Template);
        assert_eq!(kind("static/custom.css", true), ChangeKind::Static);
        assert_eq!(kind("site.toml", true), ChangeKind::Config);
        assert_eq!(kind("public/index.html", true), ChangeKind::Ignored);
        assert_eq!(
            kind("notes.md", true),
            ChangeKind::Ignored,
            "outside content/"
        );
        assert_eq!(
            kind("notes.md", false),
            ChangeKind::Markdown,
            "root is the content"
        );
        assert_eq!(kind("public/x.md", false), ChangeKind::Ignored);
        for temp in [
            "content/.a.md.swp",
            "content/a.md~",
            "content/4913",
            "content/.#a.md",
            ".git/index",
            "content/a.md___jb_tmp___",
        ] {
            assert_eq!(kind(temp, true), ChangeKind::Ignored, "{temp}");
        }
        assert_eq!(
            classify(root, Path::new("/elsewhere/a.md"), true),
            ChangeKind::Ignored
        );
    }

    #[test]
    fn editor_temp_files_are_ignored() {
        for name in [
            ".hidden",
            "a.md~",
            "4913",
            ".a.md.swp",
            "x.tmp",
            ".#a.md",
            "#a.md#",
            "a.md___jb_tmp___",
        ] {
            assert!(is_ignored_name(name), "{name}");
        }
        for name in ["a.md", "index.md", "photo.jpg", "README.md", "..md"] {
            assert!(!is_ignored_name(name), "{name}");
        }
    }

    #[test]
    fn root_is_content_when_no_content_dir() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("note.md"), "# Note").unwrap();
        fs::write(dir.path().join("site.toml"), "title = \"T\"").unwrap();
        fs::create_dir(dir.path().join("templates")).unwrap();
        fs::write(dir.path().join("templates/page.html"), "x").unwrap();
        let mut errors = Vec::new();
        let layout = Layout::discover(dir.path(), &mut errors).unwrap();
        assert_eq!(layout.content_dir, layout.root);
        let files = layout.content_files(&mut errors);
        let rels: Vec<_> = files.iter().map(|f| f.rel.clone()).collect();
        assert_eq!(rels, [PathBuf::from("note.md")]);
        assert_eq!(layout.config.title, "T");
        assert!(errors.is_empty(), "{errors:?}");
    }

    #[test]
    fn symlinks_leaving_the_site_are_skipped() {
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("secret.txt"), "secret").unwrap();
        let site = tempfile::tempdir().unwrap();
        fs::create_dir(site.path().join("content")).unwrap();
        fs::write(site.path().join("content/inside.md"), "x").unwrap();
        std::os::unix::fs::symlink(
            outside.path().join("secret.txt"),
            site.path().join("content/leak.txt"),
        )
        .unwrap();
        std::os::unix::fs::symlink(
            site.path().join("content/inside.md"),
            site.path().join("content/alias.md"),
        )
        .unwrap();
        let mut errors = Vec::new();
        let layout = Layout::discover(site.path(), &mut errors).unwrap();
        let rels: Vec<_> = layout
            .content_files(&mut errors)
            .into_iter()
            .map(|f| f.rel)
            .collect();
        assert_eq!(
            rels,
            [PathBuf::from("alias.md"), PathBuf::from("inside.md")]
        );
    }

    #[test]
    fn bad_site_toml_is_reported_with_its_line() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join("site.toml"),
            "title = \"T\"\ntitel = \"typo\"\n",
        )
        .unwrap();
        let mut errors = Vec::new();
        let layout = Layout::discover(dir.path(), &mut errors).unwrap();
        let folder = dir.path().file_name().unwrap().to_str().unwrap();
        assert_eq!(
            layout.config.title, folder,
            "the defaults, named after the folder"
        );
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].line, Some(2), "{errors:?}");
        assert!(errors[0].message.contains("titel"), "{errors:?}");
    }
}
