//! mdBook books: a site folder holding `book.toml` is a book. Its source folder (`src/`,
//! or what `[book] src` names) is the content; its `SUMMARY.md` ([`summary`]) decides which
//! chapters exist (only those are built), their order, numbering, parts and nesting, and
//! prev/next and the theme's sidebar follow it. Chapters' `{{#…}}` directives are expanded
//! as mdBook's preprocessor does ([`include`]). `book.toml`'s title and authors are the
//! site's, and its `additional-css`/`-js` are served and linked; what sited cannot do of
//! `book.toml` (preprocessors and renderers, which run programs, Handlebars themes) is a
//! warning naming the key.
//!
//! Chapters keep sited's URLs: `ch01-00-getting-started.md` is served at
//! `/ch01-00-getting-started/`, and links written `….md` or `….html` (mdBook's output
//! names) lead there. `[output.html.redirect]` entries become pages that redirect.

pub mod include;
pub mod summary;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use serde::Serialize;

use crate::report::{Diagnostic, Severity};
pub use summary::{Chapter, Item};

/// A book's `book.toml` and `SUMMARY.md`, as one build reads them.
#[derive(Debug, Clone, Default)]
pub struct Book {
    pub title: Option<String>,
    pub authors: Vec<String>,
    /// The source folder, relative to the root (`src`).
    pub src: PathBuf,
    /// `SUMMARY.md`'s entries, in order.
    pub items: Vec<Item>,
    /// Files (relative to the source folder) of the chapters `SUMMARY.md` lists.
    pub listed: HashSet<PathBuf>,
    /// `[output.html.redirect]`: old output path → where it went.
    pub redirects: Vec<(String, String)>,
    /// `additional-css` and `additional-js` that exist in the book: (URL, file).
    pub css: Vec<(String, PathBuf)>,
    pub js: Vec<(String, PathBuf)>,
}

pub const BOOK_TOML: &str = "book.toml";
pub const SUMMARY: &str = "SUMMARY.md";

/// Reads the book at `root` (canonical), if `root` holds `book.toml`. Problems are added
/// to `diagnostics`; a book whose `SUMMARY.md` cannot be read has no chapters.
pub fn load(root: &Path, diagnostics: &mut Vec<Diagnostic>) -> Option<Book> {
    let path = root.join(BOOK_TOML);
    let text = std::fs::read_to_string(&path).ok()?;
    let table: toml::Table = match text.parse() {
        Ok(table) => table,
        Err(error) => {
            let line = error
                .span()
                .map(|span| text[..span.start].matches('\n').count() as u32 + 1);
            diagnostics.push(Diagnostic::error(BOOK_TOML, error.message().trim()).at(line, None));
            toml::Table::new()
        }
    };
    let book = table.get("book").and_then(|b| b.as_table());
    let string = |key: &str| book.and_then(|b| b.get(key)).and_then(|v| v.as_str());
    let mut found = Book {
        title: string("title").map(str::to_string),
        authors: book
            .and_then(|b| b.get("authors"))
            .and_then(|a| a.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
        src: PathBuf::from(string("src").unwrap_or("src")),
        ..Book::default()
    };
    unsupported(root, &table, diagnostics);
    found.css = extra_files(root, &table, "additional-css", diagnostics);
    found.js = extra_files(root, &table, "additional-js", diagnostics);
    found.redirects = table
        .get("output")
        .and_then(|o| o.get("html"))
        .and_then(|h| h.get("redirect"))
        .and_then(|r| r.as_table())
        .map(|r| {
            r.iter()
                .filter_map(|(from, to)| Some((from.clone(), to.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default();
    let src = root.join(&found.src);
    let summary_file = found.src.join(SUMMARY);
    let summary = match std::fs::read_to_string(src.join(SUMMARY)) {
        Ok(summary) => summary,
        Err(error) => {
            diagnostics.push(Diagnostic::error(
                &summary_file,
                format!("cannot read the book's table of contents: {error}"),
            ));
            return Some(found);
        }
    };
    match summary::parse(&summary) {
        Ok(items) => found.items = items,
        Err(error) => diagnostics
            .push(Diagnostic::error(&summary_file, error.message).at(Some(error.line), None)),
    }
    let mut listed = HashSet::default();
    for chapter in found.chapters() {
        let Some(path) = &chapter.path else { continue };
        if !src.join(path).is_file() {
            diagnostics.push(
                Diagnostic::error(
                    &summary_file,
                    format!(
                        "chapter “{}” is {}, which does not exist",
                        chapter.title,
                        found.src.join(path).display()
                    ),
                )
                .at(Some(chapter.line), None),
            );
        }
        listed.insert(path.clone());
    }
    found.listed = listed;
    Some(found)
}

/// Warns about each part of `book.toml` sited does not do.
fn unsupported(root: &Path, table: &toml::Table, diagnostics: &mut Vec<Diagnostic>) {
    let mut warn = |message: String| {
        diagnostics.push(Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(BOOK_TOML, message)
        });
    };
    let tables = |key: &str| {
        table
            .get(key)
            .and_then(|t| t.as_table())
            .cloned()
            .unwrap_or_default()
    };
    for (name, _) in tables("preprocessor") {
        if !matches!(name.as_str(), "links" | "index") {
            warn(format!(
                "[preprocessor.{name}]: sited does not run mdBook preprocessors (they are \
                 programs); chapters are built without it"
            ));
        }
    }
    let output = tables("output");
    for (name, _) in &output {
        if name != "html" {
            warn(format!(
                "[output.{name}]: sited does not run mdBook renderers; only the HTML site is built"
            ));
        }
    }
    let html = output
        .get("html")
        .and_then(|h| h.as_table())
        .cloned()
        .unwrap_or_default();
    let theme_dir = html
        .get("theme")
        .and_then(|t| t.as_str())
        .unwrap_or("theme");
    if html.contains_key("theme") || root.join(theme_dir).join("index.hbs").is_file() {
        warn(format!(
            "output.html.theme: sited does not render Handlebars themes ({theme_dir}/); the \
             book uses sited's theme (or templates/)"
        ));
    }
}

/// `output.html.additional-css` or `-js` files that exist beneath `root`, as (URL, file);
/// each missing one is a warning.
fn extra_files(
    root: &Path,
    table: &toml::Table,
    key: &str,
    diagnostics: &mut Vec<Diagnostic>,
) -> Vec<(String, PathBuf)> {
    let listed = table
        .get("output")
        .and_then(|o| o.get("html"))
        .and_then(|h| h.get(key))
        .and_then(|v| v.as_array())
        .cloned()
        .unwrap_or_default();
    let mut found = Vec::new();
    for rel in listed.iter().filter_map(|v| v.as_str()) {
        let inside = root
            .join(rel)
            .canonicalize()
            .ok()
            .filter(|path| path.starts_with(root) && path.is_file());
        match inside {
            Some(path) => {
                let url = crate::url::file_url(Path::new(rel.trim_start_matches("./")));
                found.push((url, path));
            }
            None => diagnostics.push(Diagnostic {
                severity: Severity::Warning,
                ..Diagnostic::error(
                    BOOK_TOML,
                    format!("output.html.{key}: {rel} is not a file of the book; not linked"),
                )
            }),
        }
    }
    found
}

impl Book {
    /// Every chapter, drafts included, in order.
    pub fn chapters(&self) -> impl Iterator<Item = &Chapter> {
        self.items.iter().filter_map(|item| match item {
            Item::Chapter(chapter) => Some(chapter),
            _ => None,
        })
    }

    /// The name SUMMARY.md gives the chapter in `rel`.
    pub fn title_of(&self, rel: &Path) -> Option<String> {
        self.chapters()
            .find(|c| c.path.as_deref() == Some(rel))
            .map(|c| c.title.clone())
    }

    /// Whether `rel` (relative to the source folder) is a chapter `SUMMARY.md` lists.
    pub fn lists(&self, rel: &Path) -> bool {
        self.listed.contains(rel)
    }

    /// The book as templates see it (`site.book`); `urls`: source path → page URL.
    pub fn context(&self, urls: &HashMap<Arc<Path>, String>) -> BookCtx {
        let toc = self
            .items
            .iter()
            .map(|item| match item {
                Item::Chapter(chapter) => TocItem {
                    kind: "chapter",
                    title: chapter.title.clone(),
                    number: chapter.number_text(),
                    url: chapter
                        .path
                        .as_ref()
                        .and_then(|path| urls.get(path.as_path()))
                        .map(|url| crate::url::encode_path(url)),
                    level: chapter.level,
                },
                Item::Part(title) => TocItem {
                    kind: "part",
                    title: title.clone(),
                    ..TocItem::default()
                },
                Item::Separator => TocItem {
                    kind: "separator",
                    ..TocItem::default()
                },
            })
            .collect();
        let urls = |files: &[(String, PathBuf)]| {
            files
                .iter()
                .map(|(url, _)| crate::url::encode_path(url))
                .collect()
        };
        BookCtx {
            title: self.title.clone(),
            authors: self.authors.clone(),
            toc,
            css: urls(&self.css),
            js: urls(&self.js),
        }
    }

    /// The pages in reading order (prev/next): `index` maps a chapter's file to its page.
    pub fn reading_order(&self, index: &HashMap<&Path, usize>) -> Vec<usize> {
        let mut seen = HashSet::default();
        self.chapters()
            .filter_map(|c| c.path.as_deref())
            .filter_map(|path| index.get(path).copied())
            .filter(|&i| seen.insert(i))
            .collect()
    }

    /// `[output.html.redirect]` as `(URL, target)` pairs: an old output path such as
    /// `old-intro.html` to the URL of the chapter it names now (`introduction.html` is
    /// `introduction.md`'s page), or to the address as written.
    pub fn redirects(&self, urls: &HashMap<Arc<Path>, String>) -> Vec<(String, String)> {
        self.redirects
            .iter()
            .map(|(from, to)| {
                let url = format!("/{}", from.trim_start_matches('/'));
                let (path, fragment) = to
                    .split_once('#')
                    .map_or((to.as_str(), ""), |(p, f)| (p, f));
                let chapter = Path::new(path.trim_start_matches('/')).with_extension("md");
                let target = match urls.get(chapter.as_path()) {
                    Some(page) => crate::url::encode_path(page),
                    None => to.to_string(),
                };
                let target = if fragment.is_empty() || urls.get(chapter.as_path()).is_none() {
                    target
                } else {
                    format!("{target}#{fragment}")
                };
                (url, target)
            })
            .collect()
    }
}

/// A page that sends browsers on to `target`.
pub fn redirect_page(target: &str) -> String {
    let target = crate::html::escape(target);
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>Redirecting…</title>\n\
         <meta http-equiv=\"refresh\" content=\"0; url={target}\">\n<link rel=\"canonical\" href=\"{target}\">\n\
         </head>\n<body>\n<p>Moved to <a href=\"{target}\">{target}</a>.</p>\n</body>\n</html>\n"
    )
}

/// Whether a change to `path` (absolute, under the site's `root`) of a book changes what
/// every chapter is: `book.toml`, `SUMMARY.md`, or a file outside the source folder
/// (listings chapters include). Hidden files and output folders are not.
pub fn changes_everything(root: &Path, book: &Book, path: &Path) -> bool {
    let Ok(rel) = path.strip_prefix(root) else {
        return false;
    };
    if rel == Path::new(BOOK_TOML) || rel == book.src.join(SUMMARY) {
        return true;
    }
    let hidden = rel.components().any(|c| {
        c.as_os_str()
            .to_str()
            .is_none_or(crate::load::walk::is_ignored_name)
    });
    let first = rel.components().next().map(|c| c.as_os_str());
    let output = first.is_some_and(|first| {
        ["public", "target", "book", "templates", "static"]
            .iter()
            .any(|name| first == *name)
    });
    !hidden && !output && !rel.starts_with(&book.src) && !rel.as_os_str().is_empty()
}

/// `site.book`.
#[derive(Debug, Clone, Default, Serialize, Hash, PartialEq, Eq)]
pub struct BookCtx {
    pub title: Option<String>,
    pub authors: Vec<String>,
    /// The table of contents, flat: each entry with its nesting `level`.
    pub toc: Vec<TocItem>,
    /// URLs of `additional-css` and `additional-js`, linked by the theme.
    pub css: Vec<String>,
    pub js: Vec<String>,
}

/// One entry of the table of contents.
#[derive(Debug, Clone, Default, Serialize, Hash, PartialEq, Eq)]
pub struct TocItem {
    /// `chapter`, `part` (a part title) or `separator`.
    pub kind: &'static str,
    pub title: String,
    /// `1.2.`; empty for prefix and suffix chapters.
    pub number: String,
    /// `None` for a draft chapter (listed, no page).
    pub url: Option<String>,
    pub level: usize,
}

/// A warning for each Markdown file of the book `SUMMARY.md` does not list (mdBook does
/// not build them either, silently).
pub fn unlisted_warning(file: PathBuf) -> Diagnostic {
    Diagnostic {
        severity: Severity::Warning,
        ..Diagnostic::error(
            file,
            "not listed in SUMMARY.md, so not built (as in mdBook): list it there to make it a chapter",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn book_toml_features_sited_cannot_do_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir(root.join("src")).unwrap();
        std::fs::write(root.join("src/SUMMARY.md"), "- [A](a.md)\n").unwrap();
        std::fs::create_dir(root.join("theme")).unwrap();
        std::fs::write(root.join("theme/y.css"), "p {}").unwrap();
        std::fs::write(
            root.join("book.toml"),
            "[book]\ntitle = \"T\"\nauthors = [\"A\", \"B\"]\n\n[preprocessor.notes]\ncommand = \"x\"\n\n[output.pdf]\n\n[output.html]\nadditional-css = [\"x.css\", \"theme/y.css\"]\n",
        )
        .unwrap();
        let mut diagnostics = Vec::new();
        let root = &root.canonicalize().unwrap();
        let book = load(root, &mut diagnostics).unwrap();
        assert_eq!(book.css.len(), 1, "the one that exists");
        assert_eq!(book.css[0].0, "/theme/y.css");
        assert_eq!(book.title.as_deref(), Some("T"));
        assert_eq!(book.authors, ["A", "B"]);
        let messages: Vec<String> = diagnostics.iter().map(|d| d.to_string()).collect();
        assert_eq!(messages.len(), 4, "{messages:#?}");
        assert!(
            messages[0].starts_with("book.toml: [preprocessor.notes]"),
            "{messages:#?}"
        );
        assert!(
            messages[1].starts_with("book.toml: [output.pdf]"),
            "{messages:#?}"
        );
        assert!(
            messages[2].starts_with("book.toml: output.html.additional-css: x.css is not a file"),
            "{messages:#?}"
        );
        assert!(
            messages[3]
                .starts_with("src/SUMMARY.md:1: chapter “A” is src/a.md, which does not exist"),
            "{messages:#?}"
        );
        assert!(diagnostics[3].is_error());
    }
}
