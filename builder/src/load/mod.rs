//! Phase 1, load: find the site's sources (its [layout] and the [walk] of its folders) and
//! read each Markdown file's [front matter](frontmatter), in parallel. A file that cannot
//! be read becomes a diagnostic; the build goes on without it.
//!
//! What was found and read is kept between builds: a rebuild walks again only the folders
//! whose files came or went, and reads again only the files that changed.

pub mod frontmatter;
pub mod layout;
pub mod walk;

use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rayon::prelude::*;
use rustc_hash::FxHashMap as HashMap;

use crate::hugo::front_matter as hugo_front_matter;
use crate::options::Cancel;
use crate::output::spill::Text;
use crate::report::{Diagnostic, Failure};
use crate::shortcodes;
use frontmatter::FrontMatter;
use layout::{ByteSize, Flavor, Layout};
use walk::{Source, is_markdown};

/// Every source file of a site, as the last walk found them.
#[derive(Debug)]
pub struct Sources {
    pub layout: Layout,
    /// Problems with `site.toml`, reported by every build until it changes.
    config_errors: Vec<Diagnostic>,
    /// Markdown files under the content directory.
    pub markdown: Vec<Source>,
    /// Other files under the content directory, served as they are.
    pub assets: Vec<Source>,
    walk_errors: Vec<Diagnostic>,
    /// Files under `static/`, served as they are (and winning over assets).
    pub statics: Vec<Source>,
    static_errors: Vec<Diagnostic>,
}

impl Sources {
    /// Reads the layout and walks every folder.
    pub fn discover(root: &Path, exclude: &[PathBuf]) -> io::Result<Sources> {
        let mut config_errors = Vec::new();
        let layout = Layout::discover(root, exclude, &mut config_errors)?;
        let mut sources = Sources {
            layout,
            config_errors,
            markdown: Vec::new(),
            assets: Vec::new(),
            walk_errors: Vec::new(),
            statics: Vec::new(),
            static_errors: Vec::new(),
        };
        sources.rewalk_content();
        sources.rewalk_static();
        Ok(sources)
    }

    /// Walks the content directory again (files came or went).
    pub fn rewalk_content(&mut self) {
        self.walk_errors.clear();
        let files = walk::content_files(&self.layout, &mut self.walk_errors);
        (self.markdown, self.assets) = files.into_iter().partition(|f| is_markdown(&f.rel));
    }

    /// Walks `static/` again (which may have appeared or gone too).
    pub fn rewalk_static(&mut self) {
        self.layout.refresh_dirs();
        self.static_errors.clear();
        self.statics = walk::static_files(&self.layout, &mut self.static_errors);
    }

    /// What the walk and the config had to say, reported by every build until fixed.
    pub fn diagnostics(&self) -> impl Iterator<Item = &Diagnostic> {
        self.config_errors
            .iter()
            .chain(self.layout.shortcodes.errors())
            .chain(&self.walk_errors)
            .chain(&self.static_errors)
    }

    /// Whether `static/custom.css` exists (the theme links it).
    pub fn has_custom_css(&self) -> bool {
        self.statics
            .iter()
            .any(|s| *s.rel == *Path::new("custom.css"))
    }
}

/// A Markdown file after its front matter was read.
#[derive(Debug)]
pub struct Parsed {
    pub source: Source,
    pub fm: FrontMatter,
    pub extra: Arc<serde_json::Map<String, serde_json::Value>>,
    /// Emptied once rendered by one-shot builds, which keep no sources for a rebuild
    /// (it keeps the peak memory of a big one-shot build down); spilled once rendered by
    /// a server's ([`crate::Options::spill`]).
    pub body: Text,
    /// Lines of the file before the body (its front matter).
    pub body_line: u32,
    /// What a Hugo page's front matter says beyond sited's keys.
    pub meta: crate::hugo::front_matter::PageMeta,
    /// When the body was expanded (shortcodes, or a book chapter's `{{#…}}` directives):
    /// line `i + 1` of `body` is line `lines[i]` of the body as written (an included
    /// line: the line of its directive). Empty when nothing was expanded.
    pub lines: Vec<u32>,
    /// Shortcodes with no template and no built-in: name and line in the file.
    pub missing_shortcodes: Vec<(String, u32)>,
    /// Problems of this file besides its front matter (a shortcode template failing).
    pub warnings: Vec<Diagnostic>,
    /// `{{#title …}}`: the page's `<title>`.
    pub head_title: Option<String>,
    /// A book chapter's name in SUMMARY.md: its title when it opens with no heading.
    pub summary_title: Option<String>,
    /// What could not be expanded (a missing file or anchor): reported by every build
    /// until the file changes.
    pub diagnostics: Vec<Diagnostic>,
    /// What the file showed when it was opened, before a byte of it was read: a one-shot
    /// build's record vouches for the page by it (`write::inputs`) instead of a stat of
    /// its own.
    pub opened: Option<FileStamp>,
}

/// What a file showed: size, modification and change times (ns) and inode. The change
/// time moves with any write, rename or `touch -d`, so a tool that puts an old
/// modification time on new bytes (`cp -p`, `tar x`) is still seen.
pub type FileStamp = (u64, i64, i64, u64);

/// The stamp of what `meta` describes.
pub fn stamp(meta: &std::fs::Metadata) -> FileStamp {
    use std::os::unix::fs::MetadataExt;
    let ns = |secs: i64, nsec: i64| secs.saturating_mul(1_000_000_000).saturating_add(nsec);
    (
        meta.len(),
        ns(meta.mtime(), meta.mtime_nsec()),
        ns(meta.ctime(), meta.ctime_nsec()),
        meta.ino(),
    )
}

impl Parsed {
    /// The file's directory, relative to the content directory.
    pub fn dir(&self) -> &Path {
        self.source.rel.parent().unwrap_or(Path::new(""))
    }

    /// The file name without its extension.
    pub fn stem(&self) -> std::borrow::Cow<'_, str> {
        self.source
            .rel
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
    }

    /// The line of the file that line `line` (1-based) of the body comes from.
    pub fn file_line(&self, line: u32) -> u32 {
        let written = (line as usize)
            .checked_sub(1)
            .and_then(|i| self.lines.get(i).copied())
            .unwrap_or(line);
        self.body_line + written
    }

    /// Frees the Markdown body (see [`Parsed::body`]).
    pub fn drop_body(&self) {
        self.body.set("");
    }
}

/// Whether a read takes the stamp of each file it opens ([`Parsed::opened`]): only a
/// one-shot build records it; a development server's edits are told by the watcher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stamping {
    Opened,
    None,
}

/// Reads one Markdown file and splits off its front matter.
pub fn parse(layout: &Layout, source: Source, stamping: Stamping) -> Result<Parsed, Diagnostic> {
    // Made only for a diagnostic: most pages have none.
    let file = || layout.display_path(&source.path);
    let cannot_read = |error| Diagnostic::error(file(), format!("cannot read: {error}"));
    let mut reader = std::fs::File::open(&source.path).map_err(cannot_read)?;
    let opened = match stamping {
        Stamping::Opened => reader.metadata().ok().map(|meta| stamp(&meta)),
        Stamping::None => None,
    };
    // Read at most one byte past the limit: a file that grows meanwhile is still bounded.
    let limit = layout.config.max_page_size;
    // A page whose stamp was taken is read as long as the stamp says, in one read: the
    // read that finds its end is not made (7,425 calls on tldr). Those bytes are what
    // the stamp vouches for; a file that grows meanwhile has a new stamp next time.
    let (take, capacity) = match opened {
        Some((len, ..)) if len <= limit.0 => (len, len),
        // Room for most pages at once: two reads (the page, then its end) instead of a
        // small probe and reads that grow the buffer.
        _ => (
            limit.0.saturating_add(1),
            limit.0.saturating_add(1).min(16 * 1024),
        ),
    };
    let mut text = Vec::with_capacity(capacity as usize);
    Read::by_ref(&mut reader)
        .take(take)
        .read_to_end(&mut text)
        .map_err(cannot_read)?;
    if text.len() as u64 > limit.0 {
        let size = reader.metadata().map_or(text.len() as u64, |m| m.len());
        return Err(Diagnostic::error(
            file(),
            format!(
                "is {}, larger than the {limit} a page may be; not built \
                 (`max_page_size` in site.toml raises the limit)",
                ByteSize(size)
            ),
        ));
    }
    let text = String::from_utf8(text).map_err(|error| {
        let offset = error.utf8_error().valid_up_to();
        let line = error.as_bytes()[..offset]
            .iter()
            .filter(|&&b| b == b'\n')
            .count() as u32
            + 1;
        Diagnostic::error(file(), "not valid UTF-8").at(Some(line), None)
    })?;
    let split = frontmatter::split(&text).map_err(|error| {
        Diagnostic::error(file(), error.message).at(Some(error.line), error.column)
    })?;
    let mut fm = split.front_matter;
    let meta = match layout.flavor {
        Flavor::Hugo => {
            let is_bundle = source.rel.file_stem().is_some_and(|s| s == "index");
            hugo_front_matter::apply(&mut fm, is_bundle, &hugo_front_matter::today())
        }
        Flavor::Zola => {
            crate::zola::map_front_matter(&mut fm);
            Default::default()
        }
        Flavor::Sited => Default::default(),
    };
    let scope = shortcodes::Scope {
        flavor: layout.flavor,
        shortcodes: &layout.shortcodes,
        site_params: &layout.config.extra,
        page_params: &fm.extra,
    };
    let expanded = shortcodes::expand(split.body, &scope).unwrap_or_default();
    let body = if expanded.lines.is_empty() {
        split.body.to_string()
    } else {
        expanded.body
    };
    let body_line = split.body_line;
    let warnings = expanded
        .errors
        .into_iter()
        .map(|(line, message)| {
            Diagnostic::warning(file(), message).at(Some(body_line + line), None)
        })
        .collect();
    let extra = Arc::new(std::mem::take(&mut fm.extra));
    let mut parsed = Parsed {
        fm,
        extra,
        body: Text::owned(body),
        body_line,
        meta,
        lines: expanded.lines,
        missing_shortcodes: expanded
            .missing
            .into_iter()
            .map(|(name, line)| (name, body_line + line))
            .collect(),
        warnings,
        head_title: None,
        summary_title: None,
        diagnostics: Vec::new(),
        opened,
        source,
    };
    if let Some(book) = &layout.book {
        parsed.summary_title = book.title_of(&parsed.source.rel);
        let dir = parsed.source.path.parent().unwrap_or(&layout.root);
        let expanded =
            crate::book::include::expand(split.body, dir, &layout.root, split.body_line + 1);
        let file = layout.display_path(&parsed.source.path);
        parsed.diagnostics = expanded
            .problems
            .into_iter()
            .map(|(line, message)| Diagnostic::error(&file, message).at(Some(line), None))
            .collect();
        parsed.head_title = expanded.title;
        // Its lines are the file's; `lines` holds them relative to the body.
        parsed.lines = expanded
            .lines
            .iter()
            .map(|line| line.saturating_sub(split.body_line))
            .collect();
        parsed.body = Text::owned(expanded.text);
    }
    Ok(parsed)
}

/// Every Markdown file read so far: source path → its front matter and body, or why it
/// could not be read.
#[derive(Debug, Default)]
pub struct ParsedFiles(HashMap<Arc<Path>, ReadFile>);

/// A Markdown file as read: parsed, or why it could not be.
type ReadFile = Result<Arc<Parsed>, Diagnostic>;

impl ParsedFiles {
    /// Reads every Markdown file of `sources` not read yet, in parallel.
    pub fn read_new(
        &mut self,
        sources: &Sources,
        stamping: Stamping,
        cancel: &Cancel,
    ) -> Result<(), Failure> {
        let unread: Vec<&Source> = sources
            .markdown
            .iter()
            .filter(|s| !self.0.contains_key(&s.path))
            .collect();
        let fresh: Vec<(Arc<Path>, ReadFile)> = unread
            .into_par_iter()
            .filter(|_| !cancel.is_cancelled())
            .map(|source| {
                let parsed = parse(&sources.layout, source.clone(), stamping).map(Arc::new);
                (source.path.clone(), parsed)
            })
            .collect();
        if cancel.is_cancelled() {
            return Err(Failure::Cancelled);
        }
        self.0.extend(fresh);
        Ok(())
    }

    /// The pages to build, in source order: drafts are left out unless asked for; a file
    /// that could not be read adds its diagnostic and is listed in the second vector.
    pub fn pages<'s>(
        &self,
        sources: &'s Sources,
        drafts: bool,
        diagnostics: &mut Vec<Diagnostic>,
    ) -> (Vec<Arc<Parsed>>, Vec<&'s Path>) {
        let mut pages = Vec::with_capacity(sources.markdown.len());
        let mut broken = Vec::new();
        let book = sources.layout.book.as_deref();
        let mut missing = Vec::new();
        for source in &sources.markdown {
            // A book builds the chapters its SUMMARY.md lists, and no SUMMARY page.
            if let Some(book) = book
                && !book.lists(&source.rel)
            {
                if *source.rel != *Path::new(crate::book::SUMMARY) {
                    let file = sources.layout.display_path(&source.path);
                    diagnostics.push(crate::book::unlisted_warning(file));
                }
                continue;
            }
            match &self.0[&source.path] {
                Ok(page) if page.meta.skip || (page.fm.draft && !drafts) => {}
                Ok(page) => {
                    // What sited could not render of a page that is built.
                    diagnostics.extend(page.diagnostics.iter().cloned());
                    diagnostics.extend(page.warnings.iter().cloned());
                    if !page.missing_shortcodes.is_empty() {
                        let file = sources.layout.display_path(&source.path);
                        missing.extend(
                            page.missing_shortcodes
                                .iter()
                                .map(|(name, line)| (name.clone(), file.clone(), *line)),
                        );
                    }
                    pages.push(page.clone());
                }
                Err(error) => {
                    diagnostics.push(error.clone());
                    broken.push(&*source.path);
                }
            }
        }
        diagnostics.extend(shortcodes::missing_warnings(&missing));
        (pages, broken)
    }

    /// Each file read, with what it showed when it was opened.
    pub fn opened(&self) -> impl Iterator<Item = (&Arc<Path>, FileStamp)> {
        (self.0.iter()).filter_map(|(path, read)| Some((path, read.as_ref().ok()?.opened?)))
    }

    pub fn get(&self, path: &Path) -> Option<&Result<Arc<Parsed>, Diagnostic>> {
        self.0.get(path)
    }

    pub fn contains(&self, path: &Path) -> bool {
        self.0.contains_key(path)
    }

    pub fn insert(&mut self, parsed: Arc<Parsed>) {
        self.0.insert(parsed.source.path.clone(), Ok(parsed));
    }

    /// Forgets a file so that the next build reads it again.
    pub fn forget(&mut self, path: &Path) {
        self.0.remove(path);
    }

    /// Forgets files the last walk did not find.
    pub fn retain_present(&mut self, sources: &Sources) {
        let present: rustc_hash::FxHashSet<&Path> =
            sources.markdown.iter().map(|s| &*s.path).collect();
        self.0.retain(|path, _| present.contains(&**path));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_is_stamped_as_opened_only_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("content")).unwrap();
        let path = dir.path().join("content/a.md");
        std::fs::write(&path, "+++\ntitle = \"A\"\n+++\nText.\n").unwrap();
        let layout = Layout::discover(dir.path(), &[], &mut Vec::new()).unwrap();
        let source = Source {
            path: Arc::from(path.as_path()),
            rel: Arc::from(Path::new("a.md")),
        };
        let read = |stamping| parse(&layout, source.clone(), stamping).unwrap();
        let stamped = read(Stamping::Opened);
        assert_eq!(
            stamped.opened,
            Some(stamp(&std::fs::metadata(&path).unwrap()))
        );
        assert_eq!(stamped.fm.title.as_deref(), Some("A"));
        // A development server's reads take no stamp (its watcher tells it of edits).
        assert_eq!(read(Stamping::None).opened, None);
    }
}
