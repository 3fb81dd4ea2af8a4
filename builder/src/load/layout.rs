//! The site's layout on disk and its `site.toml`: which directory is the content, where
//! the templates and static files are, and what was asked to be left out.

use std::fs;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::report::Diagnostic;

/// `site.toml`, every key optional. A key it does not know is a warning (a typo, or a
/// setting of another generator), not a failed build: see [`KEYS`].
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct SiteConfig {
    pub title: String,
    pub description: Option<String>,
    pub base_url: String,
    /// Free-form values for templates, as `site.extra`.
    pub extra: toml::Table,
    /// A build by another program ([`crate::detect::build_section`] reads it); the
    /// builder itself ignores it, so `--with native` still builds such a site.
    pub build: Option<toml::Value>,
    /// Entries per listing page of every section that does not set its own (0: none).
    pub paginate_by: usize,
    /// Taxonomies besides tags and categories (front-matter keys with term pages).
    pub taxonomies: Vec<String>,
    /// The largest Markdown file built as a page: bytes, or a string with a unit
    /// (`"32 MiB"`). Rendering takes many times a page's size in memory, so one huge
    /// file must not take the machine.
    pub max_page_size: ByteSize,
    /// Every warning is an error, as with `sited build --strict`.
    pub strict: bool,
}

/// A size in bytes, written in site.toml as a number of bytes or as a string with a unit
/// (`"512 KiB"`, `"8 MiB"`, `"10 MB"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// 8 MiB: ten times the largest page of the Rust book or tldr, and a peak of a few
    /// hundred MB while it renders.
    pub const DEFAULT_MAX_PAGE: ByteSize = ByteSize(8 << 20);
}

impl std::fmt::Display for ByteSize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let bytes = self.0;
        match bytes {
            b if b >= 1 << 20 && b % (1 << 20) == 0 => write!(f, "{} MiB", b >> 20),
            b if b >= 1 << 20 => write!(f, "{:.1} MiB", b as f64 / f64::from(1 << 20)),
            b if b >= 1 << 10 => write!(f, "{} KiB", b >> 10),
            b => write!(f, "{b} bytes"),
        }
    }
}

impl std::str::FromStr for ByteSize {
    type Err = String;

    fn from_str(text: &str) -> Result<ByteSize, String> {
        let text = text.trim();
        let split = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let number: u64 = number
            .parse()
            .map_err(|_| format!("`{text}` is not a size: write e.g. 8388608 or \"8 MiB\""))?;
        let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "kb" => 1_000,
            "kib" | "k" => 1 << 10,
            "mb" => 1_000_000,
            "mib" | "m" => 1 << 20,
            "gb" => 1_000_000_000,
            "gib" | "g" => 1 << 30,
            other => return Err(format!("unknown size unit `{other}`: use KiB, MiB or GiB")),
        };
        number
            .checked_mul(factor)
            .map(ByteSize)
            .ok_or_else(|| format!("`{text}` is too large"))
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<ByteSize, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Written {
            Bytes(u64),
            Text(String),
        }
        match Written::deserialize(deserializer)? {
            Written::Bytes(bytes) => Ok(ByteSize(bytes)),
            Written::Text(text) => text.parse().map_err(serde::de::Error::custom),
        }
    }
}

/// Every key of [`SiteConfig`]: keep in step with its fields.
pub const KEYS: &[&str] = &[
    "title",
    "description",
    "base_url",
    "extra",
    "paginate_by",
    "taxonomies",
    "max_page_size",
    "strict",
];

impl Default for SiteConfig {
    fn default() -> Self {
        SiteConfig {
            title: String::new(),
            description: None,
            base_url: String::from("/"),
            extra: toml::Table::new(),
            build: None,
            paginate_by: crate::tree::paginate::DEFAULT_PAGINATE_BY,
            taxonomies: Vec::new(),
            max_page_size: ByteSize::DEFAULT_MAX_PAGE,
            strict: false,
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
    /// The mdBook book the site is (it holds `book.toml`): its source folder is the
    /// content, its `SUMMARY.md` decides the chapters.
    pub book: Option<std::sync::Arc<crate::book::Book>>,
    /// Whose conventions the site follows (read from its config files).
    pub flavor: Flavor,
    /// `templates/shortcodes/`, for Hugo and Zola sites.
    pub shortcodes: std::sync::Arc<crate::shortcodes::Shortcodes>,
}

/// Where a site sets its public URL: the config file (relative to the root), its key,
/// and for a file the site does not have yet, what it goes beside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseUrlSetting {
    pub file: std::path::PathBuf,
    pub key: &'static str,
    pub beside: Option<&'static str>,
}

/// The generator a site was written for: sited's own, or a Hugo or Zola site read as it
/// is (its config, front matter, shortcodes and links).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Flavor {
    #[default]
    Sited,
    Hugo,
    Zola,
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
        let book = crate::book::load(&root, errors);
        let book_src = book.as_ref().map(|book| root.join(&book.src));
        let mut content_dir = match book_src {
            Some(src) if src.is_dir() => src,
            Some(src) => {
                errors.push(Diagnostic::error(
                    crate::book::BOOK_TOML,
                    format!("the book's source folder {} does not exist", src.display()),
                ));
                dir("content").unwrap_or_else(|| root.clone())
            }
            None => dir("content").unwrap_or_else(|| root.clone()),
        };
        let mut config = read_config(&root, errors);
        let mut flavor = Flavor::Sited;
        // A site.toml is sited's; without one (and outside a book), a Hugo or Zola
        // config is read as it is.
        if book.is_none() && !root.join("site.toml").exists() {
            if let Some(zola) = crate::zola::read(&root, errors) {
                (config, flavor) = (zola, Flavor::Zola);
            } else if let Some(hugo) = crate::hugo::config::read(&root, errors) {
                (config, content_dir, flavor) = (hugo.config, hugo.content_dir, Flavor::Hugo);
            }
        }
        if config.title.is_empty()
            && let Some(title) = book.as_ref().and_then(|book| book.title.clone())
        {
            config.title = title;
        }
        if config.title.is_empty() {
            // Zero configuration still gets a name in the header and the tab: the folder's.
            config.title = root
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())
                .unwrap_or_default();
        }
        let templates_dir = dir("templates");
        if flavor == Flavor::Zola {
            errors.extend(crate::zola::tera_warnings(templates_dir.as_deref(), &root));
        }
        let shortcodes =
            crate::shortcodes::Shortcodes::for_site(flavor, templates_dir.as_deref(), &root);
        Ok(Layout {
            shortcodes: std::sync::Arc::new(shortcodes),
            templates_dir,
            static_dir: dir("static"),
            content_dir,
            config,
            exclude: exclude
                .iter()
                .map(|path| path.canonicalize().unwrap_or_else(|_| path.clone()))
                .collect(),
            book: book.map(std::sync::Arc::new),
            root,
            flavor,
        })
    }

    /// Where the site sets its public URL, in its own generator's terms: a book (which
    /// has no such key) takes sited's `base_url` from a site.toml beside book.toml.
    pub fn base_url_setting(&self) -> BaseUrlSetting {
        let (file, key, beside) = match self.flavor {
            Flavor::Hugo => (
                crate::hugo::config::config_name(&self.root),
                "baseURL",
                None,
            ),
            Flavor::Zola => ("config.toml".into(), "base_url", None),
            Flavor::Sited if self.book.is_some() && !self.root.join("site.toml").exists() => {
                ("site.toml".into(), "base_url", Some(crate::book::BOOK_TOML))
            }
            Flavor::Sited => ("site.toml".into(), "base_url", None),
        };
        BaseUrlSetting { file, key, beside }
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
        self.shortcodes = std::sync::Arc::new(crate::shortcodes::Shortcodes::for_site(
            self.flavor,
            self.templates_dir.as_deref(),
            &self.root,
        ));
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
    warn_unknown_keys(&text, errors);
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

/// A warning, at its line, for each top-level key of `site.toml` that sited does not know.
fn warn_unknown_keys(text: &str, errors: &mut Vec<Diagnostic>) {
    let Ok(table) = text.parse::<toml::Table>() else {
        return; // The parse error is reported by the typed read.
    };
    for key in table.keys().filter(|key| !KEYS.contains(&key.as_str())) {
        let message = format!(
            "unknown key `{key}` is ignored (sited knows {})",
            KEYS.iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        errors.push(Diagnostic::warning("site.toml", message).at(key_line(text, key), None));
    }
}

/// The line (1-based) where a top-level key or table is written, if it can be found.
fn key_line(text: &str, key: &str) -> Option<u32> {
    let quoted = format!("\"{key}\"");
    text.lines()
        .position(|line| {
            let line = line.trim_start().trim_start_matches('[').trim_start();
            [key, quoted.as_str()].iter().any(|k| {
                line.strip_prefix(k)
                    .is_some_and(|rest| rest.trim_start().starts_with(['=', ']', '.']))
            })
        })
        .map(|n| n as u32 + 1)
}

#[cfg(test)]
mod byte_size_tests {
    use super::ByteSize;

    #[test]
    fn sizes_are_read_as_people_write_them() {
        for (text, bytes) in [
            ("512", 512),
            ("512 KiB", 512 << 10),
            ("8MiB", 8 << 20),
            ("10 MB", 10_000_000),
            ("1 gib", 1 << 30),
        ] {
            assert_eq!(text.parse::<ByteSize>(), Ok(ByteSize(bytes)), "{text}");
        }
        assert!(
            "8 parsecs"
                .parse::<ByteSize>()
                .unwrap_err()
                .contains("unknown size unit")
        );
        assert!(
            "MiB"
                .parse::<ByteSize>()
                .unwrap_err()
                .contains("not a size")
        );
        assert_eq!(ByteSize(8 << 20).to_string(), "8 MiB");
        assert_eq!(ByteSize((8 << 20) + 10).to_string(), "8.0 MiB");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_warnings_naming_key_and_line() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join("site.toml"),
            "title = \"T\"\ntitel = \"typo\"\n[params]\nx = 1\n",
        )
        .unwrap();
        let mut errors = Vec::new();
        let layout = Layout::discover(dir.path(), &[], &mut errors).unwrap();
        assert_eq!(layout.config.title, "T", "the known keys still apply");
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors.iter().all(|e| !e.is_error()), "{errors:?}");
        assert_eq!(errors[0].file, PathBuf::from("site.toml"));
        assert_eq!(errors[0].line, Some(3), "{errors:?}");
        assert!(errors[0].message.contains("`params`"), "{errors:?}");
        assert_eq!(errors[1].line, Some(2), "{errors:?}");
        assert!(errors[1].message.contains("`titel`"), "{errors:?}");
    }

    #[test]
    fn the_base_url_is_set_where_the_sites_own_generator_sets_it() {
        let setting = |files: &[(&str, &str)]| {
            let dir = tempfile::tempdir().unwrap();
            for (name, text) in files {
                let path = dir.path().join(name);
                fs::create_dir_all(path.parent().unwrap()).unwrap();
                fs::write(path, text).unwrap();
            }
            let layout = Layout::discover(dir.path(), &[], &mut Vec::new()).unwrap();
            let BaseUrlSetting { file, key, beside } = layout.base_url_setting();
            (file.display().to_string(), key, beside)
        };
        assert_eq!(
            setting(&[("site.toml", "")]),
            ("site.toml".into(), "base_url", None)
        );
        assert_eq!(setting(&[]), ("site.toml".into(), "base_url", None));
        assert_eq!(
            setting(&[("config/_default/hugo.yaml", "title: H\n")]),
            ("config/_default/hugo.yaml".into(), "baseURL", None)
        );
        assert_eq!(
            setting(&[("config.toml", "base_url = \"/\"\n")]),
            ("config.toml".into(), "base_url", None)
        );
        assert_eq!(
            setting(&[("book.toml", "[book]\n"), ("src/SUMMARY.md", "# S\n")]),
            ("site.toml".into(), "base_url", Some("book.toml"))
        );
    }

    #[test]
    fn bad_site_toml_is_reported_with_its_line() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join("site.toml"),
            "title = \"T\"\ntitle = \"twice\"\n",
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
        assert!(errors[0].is_error(), "{errors:?}");
    }
}
