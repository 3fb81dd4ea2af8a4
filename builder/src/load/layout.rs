//! The site's layout on disk and its `site.toml`: which directory is the content, where
//! the templates and static files are, and what was asked to be left out.

use std::fs;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::report::Diagnostic;

/// `site.toml`, every key optional.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SiteConfig {
    pub title: String,
    pub description: Option<String>,
    pub base_url: String,
    /// Free-form values for templates, as `site.extra`.
    pub extra: toml::Table,
    /// A build by another program ([`crate::detect::build_section`] reads it); the
    /// builder itself ignores it, so `--with native` still builds such a site.
    pub build: Option<toml::Value>,
}

impl Default for SiteConfig {
    fn default() -> Self {
        SiteConfig {
            title: String::new(),
            description: None,
            base_url: String::from("/"),
            extra: toml::Table::new(),
            build: None,
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
    /// Paths inside the site that are not part of it (canonical where they exist).
    pub exclude: Vec<PathBuf>,
}

/// Names at the top of the root that are the site's machinery, not its content, when the
/// root doubles as the content directory.
pub const RESERVED_AT_ROOT: &[&str] = &["site.toml", "templates", "static", "public", "target"];

impl Layout {
    /// Reads the layout of the site at `root`. Config errors are reported, not fatal:
    /// the site builds with defaults so the rest of it can still be seen.
    pub fn discover(
        root: &Path,
        exclude: &[PathBuf],
        errors: &mut Vec<Diagnostic>,
    ) -> std::io::Result<Layout> {
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
            exclude: exclude
                .iter()
                .map(|path| path.canonicalize().unwrap_or_else(|_| path.clone()))
                .collect(),
            root,
        })
    }

    /// Looks again for `templates/` and `static/`, which may have been created or
    /// removed since.
    pub fn refresh_dirs(&mut self) {
        let dir = |name: &str| {
            let path = self.root.join(name);
            path.is_dir().then_some(path)
        };
        self.templates_dir = dir("templates");
        self.static_dir = dir("static");
    }

    /// Path shown in diagnostics: relative to the root when inside it.
    pub fn display_path(&self, path: &Path) -> PathBuf {
        path.strip_prefix(&self.root).unwrap_or(path).to_path_buf()
    }

    /// Whether `path` is one the site was told to leave out, or inside one.
    pub fn is_excluded(&self, path: &Path) -> bool {
        self.exclude
            .iter()
            .any(|excluded| path.starts_with(excluded))
    }
}

fn read_config(root: &Path, errors: &mut Vec<Diagnostic>) -> SiteConfig {
    let path = root.join("site.toml");
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return SiteConfig::default(),
        Err(error) => {
            errors.push(Diagnostic::error(
                "site.toml",
                format!("cannot read: {error}"),
            ));
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
            errors.push(Diagnostic::error("site.toml", error.message().trim()).at(line, column));
            SiteConfig::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_site_toml_is_reported_with_its_line() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join("site.toml"),
            "title = \"T\"\ntitel = \"typo\"\n",
        )
        .unwrap();
        let mut errors = Vec::new();
        let layout = Layout::discover(dir.path(), &[], &mut errors).unwrap();
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
