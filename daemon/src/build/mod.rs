//! The builder: a site root in, an [`Output`] (URL → body) and a report out.
//!
//! Phases, parallel with rayon where the work is per file: discover the layout and walk
//! the sources; read and split front matter; give every page and section its URL; render
//! Markdown (links need every URL known); render templates. A bad file becomes a
//! [`BuildError`] and the build goes on without it: one build reports every error.
//!
//! A [`Builder`] keeps what it made between builds, so a rebuild after a few changed files
//! redoes only what they affect: changed Markdown is parsed and rendered again (and pages
//! whose links point at moved pages), every other page keeps its HTML; templates are
//! rendered again only for pages whose context changed; a template edit re-renders pages
//! without re-parsing Markdown; a static file edit renders nothing. A page that fails
//! keeps being served as it last built well.

pub mod content;
pub mod context;
pub mod feeds;
pub mod frontmatter;
pub mod highlight;
pub mod links;
pub mod markdown;
pub mod out_dir;
pub mod output;
pub mod templates;

use std::collections::BTreeMap;
use std::sync::LazyLock;

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use minijinja::Value;
use minijinja::value::Serde;
use rayon::prelude::*;
use sited_proto::{BuildError, BuildReport};

use content::{ChangeKind, Layout, Source};
use context::{
    Link, PageCtx, PageView, SectionCtx, SiteCtx, SubsectionCtx, Summary, TagLink, fingerprint,
};
use frontmatter::FrontMatter;
use links::{SourceLinks, file_url};
pub use links::{encode_path, percent_decode};
pub use output::{Body, Output, Resource};
use templates::Templates;

/// What a build is asked to do.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// Include pages marked `draft`.
    pub drafts: bool,
    /// Counts rendered pages while a build runs, for whoever shows progress.
    pub progress: Option<std::sync::Arc<crate::progress::Progress>>,
}

/// At most this many top-level pages are put in the navigation next to the sections; a
/// flat book of 100 chapters gets its chapters listed on the home page instead.
const NAV_MAX_PAGES: usize = 8;
/// Dated pages listed as `site.recent_pages`.
const RECENT_PAGES: usize = 20;
/// Words per minute for `reading_time`.
const WORDS_PER_MINUTE: usize = 220;

/// Builds the site at `root` once. Never fails as a whole: problems are in the report.
pub fn build(root: &Path, options: &BuildOptions) -> Output {
    let mut builder = Builder::new(root.to_path_buf(), options.clone());
    // Nothing will be rebuilt: Markdown sources can go once rendered (it keeps the peak
    // memory of a big one-shot build down).
    builder.keep_sources = false;
    builder.build(None)
}

/// Builds the site at `root` once into `out`, replacing it whole, and only if the build
/// has no errors (otherwise `out` is left as it was). Pages are written as they are
/// rendered rather than held in memory. The returned output holds the files that were
/// not pages; its report counts everything.
///
/// `out` must be a directory sited may replace ([`out_dir::check`]): anything else is
/// refused before the build starts. `home` is the user's home directory, never replaced.
pub fn build_to(
    root: &Path,
    options: &BuildOptions,
    out: &Path,
    home: Option<&Path>,
) -> Result<Output, out_dir::CheckError> {
    let layout = Layout::discover(root, &mut Vec::new())?;
    let folders = out_dir::SiteFolders {
        root: layout.root.clone(),
        content: layout.content_dir.clone(),
        static_dir: layout.static_dir.clone(),
        templates: layout.templates_dir.clone(),
    };
    let target = out_dir::check(&folders, out, home)?;
    let staging = output::Staging::new(&target)?;
    let mut builder = Builder::new(root.to_path_buf(), options.clone());
    builder.keep_sources = false;
    builder.sink = Some(staging.path().to_path_buf());
    let output = builder.build(None);
    let clean = output.report.as_ref().is_some_and(|r| r.errors.is_empty());
    if !clean {
        staging.discard();
        return Ok(output);
    }
    match output.write_tree(staging.path()) {
        Ok(()) => staging.publish()?,
        Err(error) => {
            staging.discard();
            return Err(error.into());
        }
    }
    Ok(output)
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A change reported by the watcher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub kind: ChangeKind,
    pub path: PathBuf,
}

/// Builds one site, again and again, reusing what did not change.
#[derive(Debug)]
pub struct Builder {
    root: PathBuf,
    options: BuildOptions,
    cache: Option<Cache>,
    /// Keep each Markdown body after rendering it, for later rebuilds.
    keep_sources: bool,
    /// Write each page into this directory as it is rendered instead of keeping it in
    /// the output (one-shot builds to disk).
    sink: Option<PathBuf>,
}

/// Everything a build made that the next one may reuse.
#[derive(Debug)]
struct Cache {
    layout: Layout,
    /// Problems with `site.toml`, reported by every build until it changes.
    config_errors: Vec<BuildError>,
    markdown_files: Vec<Source>,
    assets: Vec<Source>,
    walk_errors: Vec<BuildError>,
    statics: Vec<Source>,
    static_errors: Vec<BuildError>,
    templates: Templates,
    template_errors: Vec<BuildError>,
    /// Bumped whenever templates are reloaded: every page's context hash includes it.
    template_generation: u64,
    /// Source path → its front matter and body, or why it could not be read.
    parsed: HashMap<PathBuf, Result<Arc<Parsed>, BuildError>>,
    /// Source path → its rendered Markdown.
    markdown: HashMap<PathBuf, CachedMarkdown>,
    /// URL → (context hash, HTML) of the last good render.
    rendered: HashMap<String, (u64, Resource)>,
    /// Source path → the URL it was last rendered at, to keep serving it while broken.
    url_of_source: HashMap<PathBuf, String>,
    /// The whole picture of the last full pass, for the fast path.
    last: Option<LastSite>,
}

/// What the fast path needs to re-render a page whose body alone changed: the rest of
/// the site as the last full pass saw it.
#[derive(Debug)]
struct LastSite {
    site: Value,
    site_hash: u64,
    md_urls: HashMap<PathBuf, String>,
    links_hash: u64,
    /// Source path → index into `summaries`/`placement`, for pages (not sections).
    index: HashMap<PathBuf, usize>,
    summaries: Vec<Option<Summary>>,
    placement: Vec<Placement>,
    tag_counts: HashMap<String, usize>,
    resources: rustc_hash::FxHashMap<String, Resource>,
    errors: Vec<BuildError>,
}

/// A page's section and neighbours (indices into `summaries`).
type Placement = (Option<Link>, Option<usize>, Option<usize>);

#[derive(Debug)]
struct CachedMarkdown {
    ctx: PageCtx,
    /// The URL it was rendered for (decoded).
    url: String,
    /// Hash of every page's URL when this was rendered, if the page links to other
    /// pages (its HTML is then stale once any URL moves).
    links: Option<u64>,
}

/// A Markdown file after its front matter was read.
#[derive(Debug)]
struct Parsed {
    source: Source,
    fm: FrontMatter,
    extra: Arc<serde_json::Map<String, serde_json::Value>>,
    /// Emptied after rendering by one-shot builds (see [`Builder::keep_sources`]).
    body: std::sync::Mutex<String>,
}

/// Where a parsed Markdown file goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// `_index.md` (or `index.md`/`README.md` without one): the section's own text.
    SectionIndex,
    Page,
}

#[derive(Debug, Default)]
struct Section {
    dir: PathBuf,
    url: String,
    title: String,
    /// Index into the build's pages of the section's own Markdown, if any.
    index: Option<usize>,
    pages: Vec<usize>,
    subsections: Vec<PathBuf>,
}

/// What one render job renders with.
#[derive(Debug)]
enum JobCtx<'a> {
    Page(usize),
    Section(SectionCtx<'a>),
    Plain,
}

#[derive(Debug)]
struct RenderJob<'a> {
    url: String,
    template: String,
    ctx: JobCtx<'a>,
    /// The Markdown file behind it, for errors.
    source: Option<PathBuf>,
}

impl Builder {
    pub fn new(root: PathBuf, options: BuildOptions) -> Builder {
        Builder {
            root,
            options,
            cache: None,
            keep_sources: true,
            sink: None,
        }
    }

    /// Builds the site. `changes` lists what changed since the last build; `None` (or
    /// no previous build) means everything is read afresh.
    pub fn build(&mut self, changes: Option<&[Change]>) -> Output {
        let started = Instant::now();
        let mut errors = Vec::new();
        let mut output = Output::default();
        let mut rendered = 0;
        let mut written = 0;
        if let Some(fast) = self.fast_path(changes) {
            let (resources, errors, rendered) = fast;
            output.resources = resources;
            return finish(output, errors, rendered, 0, started);
        }
        match self.refresh(changes) {
            Ok(dirty) => {
                let cache = self.cache.as_mut().expect("refresh fills the cache");
                let keep = self.keep_sources;
                let sink = self.sink.as_deref();
                (rendered, written) = build_site(
                    cache,
                    &self.options,
                    keep,
                    sink,
                    &dirty,
                    &mut output,
                    &mut errors,
                );
            }
            Err(error) => {
                self.cache = None;
                errors.push(BuildError {
                    file: self.root.clone(),
                    line: None,
                    column: None,
                    message: format!("cannot open site root: {error}"),
                });
            }
        }
        finish(output, errors, rendered, written, started)
    }

    /// The edit-save-look loop's common case: only the bodies of existing pages changed,
    /// and nothing other pages show of them (title, summary, date, tags, ...). Then only
    /// those pages are rendered, against the rest of the site as the last build left it.
    /// `None` whenever that does not hold; the full pass then does the work.
    #[allow(clippy::type_complexity)]
    fn fast_path(
        &mut self,
        changes: Option<&[Change]>,
    ) -> Option<(
        rustc_hash::FxHashMap<String, Resource>,
        Vec<BuildError>,
        usize,
    )> {
        let changes = changes.filter(|c| !c.is_empty())?;
        let cache = self.cache.as_mut()?;
        let last = cache.last.as_ref()?;
        // With errors about, the full pass sorts out which are fixed.
        if !cache.template_errors.is_empty() || !last.errors.is_empty() {
            return None;
        }
        let mut updates = Vec::new();
        for change in changes {
            if change.kind != ChangeKind::Markdown {
                return None;
            }
            let i = *last.index.get(&change.path)?;
            let old_parsed = cache.parsed.get(&change.path)?.as_ref().ok()?;
            let old = cache.markdown.get(&change.path)?;
            let source = old_parsed.source.clone();
            let parsed = parse(&cache.layout, source).ok()?;
            if parsed.fm != old_parsed.fm || *parsed.extra != *old_parsed.extra {
                return None;
            }
            let links = SourceLinks {
                dir: parsed.source.rel.parent().unwrap_or(Path::new("")),
                md_urls: &last.md_urls,
                used_page_urls: std::cell::Cell::new(false),
            };
            let ctx = render_markdown(&parsed, &old.url, &links);
            if last.summaries[i].as_ref() != Some(&Summary::of(&ctx)) {
                return None;
            }
            let links = links.used_page_urls.get().then_some(last.links_hash);
            updates.push((change.path.clone(), i, Arc::new(parsed), ctx, links));
        }
        let mut resources = last.resources.clone();
        let mut rendered = 0;
        for (path, i, parsed, ctx, links) in updates {
            let (section, prev, next) = &last.placement[i];
            let view = PageView {
                page: &ctx,
                tag_urls: tag_links(&ctx.tags, |t| last.tag_counts.get(t).copied().unwrap_or(0)),
                section: section.as_ref(),
                prev: prev.and_then(|j| last.summaries[j].as_ref()),
                next: next.and_then(|j| last.summaries[j].as_ref()),
            };
            let url = cache.markdown[&path].url.clone();
            let template = ctx
                .template
                .clone()
                .unwrap_or_else(|| "page.html".to_string());
            let job = RenderJob {
                url: url.clone(),
                template,
                ctx: JobCtx::Plain,
                source: Some(path.clone()),
            };
            let value = minijinja::context! { site => last.site.clone(), page => Value::from(Serde(&view)), current_url => url.clone() };
            let html = std::panic::catch_unwind(AssertUnwindSafe(|| {
                render_job(&cache.templates, &job, &value)
            }))
            .ok()?
            .ok()?;
            let hash = fingerprint(&(last.site_hash, &job.url, &job.template, fingerprint(&view)));
            let resource = Resource::html(html);
            resources.insert(url.clone(), resource.clone());
            cache.rendered.insert(url, (hash, resource));
            cache.parsed.insert(path.clone(), Ok(parsed));
            cache.markdown.insert(
                path,
                CachedMarkdown {
                    url: job.url,
                    ctx,
                    links,
                },
            );
            rendered += 1;
        }
        let last = cache.last.as_mut().expect("checked above");
        last.resources = resources.clone();
        Some((resources, last.errors.clone(), rendered))
    }

    /// Brings the cache up to date with the file system; returns the Markdown files
    /// whose contents must be read again.
    fn refresh(&mut self, changes: Option<&[Change]>) -> std::io::Result<HashSet<PathBuf>> {
        let full = match (&self.cache, changes) {
            (Some(_), Some(changes)) => changes
                .iter()
                .any(|c| matches!(c.kind, ChangeKind::Config | ChangeKind::Root)),
            _ => true,
        };
        if full {
            let mut config_errors = Vec::new();
            let layout = Layout::discover(&self.root, &mut config_errors)?;
            let mut walk_errors = Vec::new();
            let (markdown_files, assets) = split_sources(layout.content_files(&mut walk_errors));
            let mut static_errors = Vec::new();
            let statics = layout.static_files(&mut static_errors);
            let mut template_errors = Vec::new();
            let templates = Templates::load(
                layout.templates_dir.as_deref(),
                &layout.root,
                &mut template_errors,
            );
            let generation = self.cache.as_ref().map_or(0, |c| c.template_generation + 1);
            self.cache = Some(Cache {
                layout,
                config_errors,
                markdown_files,
                assets,
                walk_errors,
                statics,
                static_errors,
                templates,
                template_errors,
                template_generation: generation,
                parsed: HashMap::default(),
                markdown: HashMap::default(),
                rendered: HashMap::default(),
                url_of_source: HashMap::default(),
                last: None,
            });
            return Ok(HashSet::default());
        }
        let cache = self.cache.as_mut().expect("checked above");
        let changes = changes.unwrap_or_default();
        let mut dirty = HashSet::default();
        let (mut rewalk_content, mut rewalk_static, mut reload_templates) = (false, false, false);
        for change in changes {
            match change.kind {
                ChangeKind::Markdown => {
                    let known = cache.parsed.contains_key(&change.path);
                    if !known || !change.path.is_file() {
                        rewalk_content = true;
                    }
                    dirty.insert(change.path.clone());
                }
                ChangeKind::Asset => rewalk_content = true,
                ChangeKind::Static => rewalk_static = true,
                ChangeKind::Template => reload_templates = true,
                ChangeKind::Config | ChangeKind::Root | ChangeKind::Ignored => {}
            }
        }
        if rewalk_content {
            cache.walk_errors.clear();
            (cache.markdown_files, cache.assets) =
                split_sources(cache.layout.content_files(&mut cache.walk_errors));
            let present: HashSet<&PathBuf> = cache.markdown_files.iter().map(|s| &s.path).collect();
            cache.parsed.retain(|path, _| present.contains(path));
            cache.markdown.retain(|path, _| present.contains(path));
        }
        // `templates/` or `static/` may have been created (or removed) since.
        let dir = |name: &str| {
            let path = cache.layout.root.join(name);
            path.is_dir().then_some(path)
        };
        if reload_templates {
            cache.layout.templates_dir = dir("templates");
        }
        if rewalk_static {
            cache.layout.static_dir = dir("static");
            cache.static_errors.clear();
            cache.statics = cache.layout.static_files(&mut cache.static_errors);
        }
        if reload_templates {
            cache.template_errors.clear();
            cache.templates = Templates::load(
                cache.layout.templates_dir.as_deref(),
                &cache.layout.root,
                &mut cache.template_errors,
            );
            cache.template_generation += 1;
        }
        for path in &dirty {
            cache.parsed.remove(path);
            cache.markdown.remove(path);
        }
        Ok(dirty)
    }
}

/// Fills in the report of a build; `written` pages went straight to disk.
fn finish(
    mut output: Output,
    mut errors: Vec<BuildError>,
    rendered: usize,
    written: usize,
    started: Instant,
) -> Output {
    let in_memory = output
        .resources
        .values()
        .filter(|r| r.content_type.starts_with("text/html"))
        .count();
    let files = output.resources.len() - in_memory;
    let pages = in_memory + written;
    errors.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
    output.report = Some(BuildReport {
        pages,
        files,
        rendered,
        duration_ms: started.elapsed().as_millis() as u64,
        finished_at_ms: now_ms(),
        errors,
    });
    output
}

/// `tag_urls` of a page.
fn tag_links(tags: &[String], count: impl Fn(&str) -> usize) -> Vec<TagLink> {
    tags.iter()
        .map(|t| TagLink {
            name: t.clone(),
            url: tag_url(t),
            count: count(t),
        })
        .collect()
}

fn tag_url(tag: &str) -> String {
    format!("/tags/{}/", markdown::slugify(tag))
}

fn split_sources(files: Vec<Source>) -> (Vec<Source>, Vec<Source>) {
    files.into_iter().partition(|f| is_markdown(&f.rel))
}

/// One build from the (refreshed) cache. Returns how many pages it rendered.
/// Returns how many pages it rendered, and how many of those it wrote to `sink`.
fn build_site(
    cache: &mut Cache,
    options: &BuildOptions,
    keep_sources: bool,
    sink: Option<&Path>,
    dirty: &HashSet<PathBuf>,
    output: &mut Output,
    errors: &mut Vec<BuildError>,
) -> (usize, usize) {
    let layout = &cache.layout;
    errors.extend(cache.config_errors.iter().cloned());
    errors.extend(cache.walk_errors.iter().cloned());
    errors.extend(cache.static_errors.iter().cloned());
    errors.extend(cache.template_errors.iter().cloned());

    // Front matter, for the files not read yet.
    let unread: Vec<&Source> = cache
        .markdown_files
        .iter()
        .filter(|s| !cache.parsed.contains_key(&s.path))
        .collect();
    let fresh: Vec<(PathBuf, Result<Arc<Parsed>, BuildError>)> = unread
        .into_par_iter()
        .map(|source| {
            (
                source.path.clone(),
                parse(layout, source.clone()).map(Arc::new),
            )
        })
        .collect();
    cache.parsed.extend(fresh);
    let mut parsed: Vec<Arc<Parsed>> = Vec::with_capacity(cache.markdown_files.len());
    let mut broken: Vec<&Path> = Vec::new();
    for source in &cache.markdown_files {
        match &cache.parsed[&source.path] {
            Ok(page) if page.fm.draft && !options.drafts => {}
            Ok(page) => parsed.push(page.clone()),
            Err(error) => {
                errors.push(error.clone());
                broken.push(&source.path);
            }
        }
    }

    // Sections and URLs.
    let roles = assign_roles(&parsed);
    let mut sections: BTreeMap<PathBuf, Section> = BTreeMap::new();
    ensure_section(&mut sections, Path::new(""));
    let mut page_urls: Vec<String> = vec![String::new(); parsed.len()];
    let mut url_owner: HashMap<String, usize> = HashMap::default();
    for (i, page) in parsed.iter().enumerate() {
        let dir = page
            .source
            .rel
            .parent()
            .unwrap_or(Path::new(""))
            .to_path_buf();
        ensure_section(&mut sections, &dir);
        let url = match roles[i] {
            Role::SectionIndex => {
                let section = sections.get_mut(&dir).expect("ensured above");
                section.index = Some(i);
                section.url.clone()
            }
            Role::Page => {
                let stem = page
                    .source
                    .rel
                    .file_stem()
                    .unwrap_or_default()
                    .to_string_lossy();
                let slug = page
                    .fm
                    .slug
                    .as_deref()
                    .unwrap_or(&stem)
                    .replace(['/', '\\'], "-");
                // `.` and `..` cannot be URL segments (browsers resolve them away, even
                // percent-encoded): the `.` command's page is served at `_./`.
                let slug = if matches!(slug.as_str(), "." | "..") {
                    format!("_{slug}")
                } else {
                    slug
                };
                if slug.is_empty() {
                    errors.push(page_error(
                        layout,
                        page,
                        format!("slug {slug:?} is not usable in a URL"),
                    ));
                    continue;
                }
                format!("{}{slug}/", sections[&dir].url)
            }
        };
        if let Some(&other) = url_owner.get(&url) {
            errors.push(page_error(
                layout,
                page,
                format!(
                    "URL {url} is already taken by {}",
                    layout.display_path(&parsed[other].source.path).display()
                ),
            ));
            continue;
        }
        url_owner.insert(url.clone(), i);
        if roles[i] == Role::Page {
            sections.get_mut(&dir).expect("ensured above").pages.push(i);
        }
        page_urls[i] = url;
    }

    // Markdown, in parallel, for pages not rendered yet (or whose links moved).
    let md_urls: HashMap<PathBuf, String> = parsed
        .iter()
        .zip(&page_urls)
        .filter(|(_, url)| !url.is_empty())
        .map(|(page, url)| (page.source.rel.clone(), url.clone()))
        .collect();
    let links_hash = {
        let mut hasher = rustc_hash::FxHasher::default();
        for (page, url) in parsed.iter().zip(&page_urls) {
            std::hash::Hash::hash(page.source.rel.as_os_str().as_encoded_bytes(), &mut hasher);
            std::hash::Hash::hash(url, &mut hasher);
        }
        std::hash::Hasher::finish(&hasher)
    };
    let stale = |i: usize| {
        let page = &parsed[i];
        match cache.markdown.get(&page.source.path) {
            None => true,
            Some(cached) => {
                dirty.contains(&page.source.path)
                    || cached.url != page_urls[i]
                    || cached.links.is_some_and(|h| h != links_hash)
            }
        }
    };
    let to_render: Vec<usize> = (0..parsed.len())
        .filter(|&i| !page_urls[i].is_empty() && stale(i))
        .collect();
    let fresh: Vec<(PathBuf, CachedMarkdown)> = to_render
        .into_par_iter()
        .map(|i| {
            let page = &parsed[i];
            let links = SourceLinks {
                dir: page.source.rel.parent().unwrap_or(Path::new("")),
                md_urls: &md_urls,
                used_page_urls: std::cell::Cell::new(false),
            };
            let ctx = render_markdown(page, &page_urls[i], &links);
            let links = links.used_page_urls.get().then_some(links_hash);
            let url = page_urls[i].clone();
            (page.source.path.clone(), CachedMarkdown { ctx, url, links })
        })
        .collect();
    cache.markdown.extend(fresh);
    if !keep_sources {
        for page in &parsed {
            std::mem::take(&mut *page.body.lock().unwrap_or_else(|p| p.into_inner()));
        }
    }
    let pages: Vec<Option<&PageCtx>> = parsed
        .iter()
        .zip(&page_urls)
        .map(|(page, url)| (!url.is_empty()).then(|| &cache.markdown[&page.source.path].ctx))
        .collect();
    let page = |i: usize| pages[i].expect("pages with a URL are rendered");

    // Section titles and order of pages within sections.
    for section in sections.values_mut() {
        let from_index = section
            .index
            .and_then(|i| pages[i])
            .map(|p| p.title.clone());
        section.title = match from_index {
            Some(title) => title,
            None if section.dir.as_os_str().is_empty() => layout.config.title.clone(),
            None => section
                .dir
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned(),
        };
        section.pages.sort_by_cached_key(|&i| listing_key(page(i)));
    }
    let dirs: Vec<PathBuf> = sections.keys().cloned().collect();
    for dir in &dirs {
        if let Some(parent) = dir.parent() {
            sections
                .get_mut(parent)
                .expect("ancestors are ensured")
                .subsections
                .push(dir.clone());
        }
    }

    // Tags.
    let mut tags: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, p) in pages.iter().enumerate() {
        if let Some(p) = p
            && roles[i] == Role::Page
        {
            for tag in &p.tags {
                tags.entry(tag).or_default().push(i);
            }
        }
    }

    // Where each page sits: its section and neighbours.
    let summaries: Vec<Option<Summary>> = pages.iter().map(|p| p.map(Summary::of)).collect();
    let mut placement: Vec<(Option<Link>, Option<usize>, Option<usize>)> =
        vec![(None, None, None); pages.len()];
    for section in sections.values() {
        let link = (!section.dir.as_os_str().is_empty()).then(|| Link {
            title: section.title.clone(),
            url: section.url.clone(),
        });
        for (n, &i) in section.pages.iter().enumerate() {
            placement[i] = (
                link.clone(),
                n.checked_sub(1).map(|p| section.pages[p]),
                section.pages.get(n + 1).copied(),
            );
        }
    }

    // Files served as they are: the theme's stylesheet and icon, assets beside content,
    // then `static/`, which wins.
    for (url, content_type, body) in crate::theme::assets() {
        output.resources.insert(
            url.to_string(),
            Resource::memory(body, Arc::from(content_type)),
        );
    }
    let has_custom_css = cache
        .statics
        .iter()
        .any(|s| s.rel == Path::new("custom.css"));
    for source in cache.assets.iter().chain(&cache.statics) {
        match Resource::file(source.path.clone()) {
            Ok(resource) => {
                output.resources.insert(file_url(&source.rel), resource);
            }
            Err(error) => errors.push(BuildError {
                file: layout.display_path(&source.path),
                line: None,
                column: None,
                message: format!("cannot read: {error}"),
            }),
        }
    }

    // The site context, shared by every render.
    let mut recent: Vec<usize> = (0..pages.len())
        .filter(|&i| roles[i] == Role::Page && pages[i].is_some_and(|p| p.date.is_some()))
        .collect();
    recent.sort_by(|&a, &b| page(b).date.cmp(&page(a).date));
    recent.truncate(RECENT_PAGES);
    let root_section = &sections[Path::new("")];
    let mut nav: Vec<Link> = root_section
        .subsections
        .iter()
        .map(|dir| Link {
            title: sections[dir].title.clone(),
            url: sections[dir].url.clone(),
        })
        .collect();
    if root_section.pages.len() <= NAV_MAX_PAGES {
        nav.extend(root_section.pages.iter().map(|&i| Link {
            title: page(i).title.clone(),
            url: page(i).url.clone(),
        }));
    }
    let site_ctx = SiteCtx {
        title: &layout.config.title,
        description: layout.config.description.as_deref(),
        base_url: &layout.config.base_url,
        has_custom_css,
        sections: nav,
        recent_pages: recent.iter().map(|&i| Summary::of(page(i))).collect(),
        feed_url: (!recent.is_empty()).then(|| "/atom.xml".to_string()),
        tags: tags
            .iter()
            .map(|(name, list)| TagLink {
                name: name.to_string(),
                url: tag_url(name),
                count: list.len(),
            })
            .collect(),
        extra: &layout.config.extra,
    };
    let site_hash = fingerprint(&(&site_ctx, cache.template_generation));
    let site = Value::from(Serde(&site_ctx));

    // Everything to render.
    let mut jobs: Vec<RenderJob> = Vec::new();
    for (i, p) in pages.iter().enumerate() {
        if let (Some(p), Role::Page) = (p, roles[i]) {
            jobs.push(RenderJob {
                url: page_urls[i].clone(),
                template: p
                    .template
                    .clone()
                    .unwrap_or_else(|| "page.html".to_string()),
                ctx: JobCtx::Page(i),
                source: Some(parsed[i].source.path.clone()),
            });
        }
    }
    // Shared across builds: context hashes see these by address.
    static EMPTY: LazyLock<Arc<str>> = LazyLock::new(|| Arc::from(""));
    static NO_EXTRA: LazyLock<Arc<serde_json::Map<String, serde_json::Value>>> =
        LazyLock::new(|| Arc::new(serde_json::Map::new()));
    let (empty, no_extra) = (&*EMPTY, &*NO_EXTRA);
    for section in sections.values() {
        let index_page = section.index.and_then(|i| pages[i]);
        let ctx = SectionCtx {
            title: section.title.clone(),
            url: encode_path(&section.url),
            content: index_page.map_or_else(|| empty.clone(), |p| p.content.clone()),
            description: index_page.and_then(|p| p.description.clone()),
            extra: index_page.map_or_else(|| no_extra.clone(), |p| p.extra.clone()),
            pages: section
                .pages
                .iter()
                .filter_map(|&i| summaries[i].as_ref())
                .collect(),
            subsections: section
                .subsections
                .iter()
                .map(|dir| SubsectionCtx {
                    title: sections[dir].title.clone(),
                    url: encode_path(&sections[dir].url),
                    page_count: sections[dir].pages.len(),
                })
                .collect(),
        };
        let default = if section.dir.as_os_str().is_empty() {
            "index.html"
        } else {
            "section.html"
        };
        jobs.push(RenderJob {
            url: section.url.clone(),
            template: index_page
                .and_then(|p| p.template.clone())
                .unwrap_or_else(|| default.to_string()),
            ctx: JobCtx::Section(ctx),
            source: section.index.map(|i| parsed[i].source.path.clone()),
        });
    }
    if !tags.is_empty() {
        let mut all_tags = Vec::new();
        for (name, list) in &tags {
            let mut list = list.clone();
            list.sort_by_cached_key(|&i| listing_key(page(i)));
            let url = tag_url(name);
            all_tags.push(SubsectionCtx {
                title: name.to_string(),
                url: url.clone(),
                page_count: list.len(),
            });
            let ctx = SectionCtx {
                title: format!("Tagged “{name}”"),
                url: url.clone(),
                content: empty.clone(),
                description: None,
                extra: no_extra.clone(),
                pages: list.iter().filter_map(|&i| summaries[i].as_ref()).collect(),
                subsections: Vec::new(),
            };
            jobs.push(RenderJob {
                url,
                template: "section.html".into(),
                ctx: JobCtx::Section(ctx),
                source: None,
            });
        }
        let ctx = SectionCtx {
            title: "Tags".into(),
            url: "/tags/".into(),
            content: empty.clone(),
            description: None,
            extra: no_extra.clone(),
            pages: Vec::new(),
            subsections: all_tags,
        };
        jobs.push(RenderJob {
            url: "/tags/".into(),
            template: "section.html".into(),
            ctx: JobCtx::Section(ctx),
            source: None,
        });
    }
    jobs.push(RenderJob {
        url: "/404.html".into(),
        template: "404.html".into(),
        ctx: JobCtx::Plain,
        source: None,
    });

    // Views of pages: their own context plus their place in the site.
    let view = |i: usize| {
        let p = page(i);
        let (section, prev, next) = &placement[i];
        PageView {
            page: p,
            tag_urls: tag_links(&p.tags, |t| tags.get(t).map_or(0, Vec::len)),
            section: section.as_ref(),
            prev: prev.and_then(|j| summaries[j].as_ref()),
            next: next.and_then(|j| summaries[j].as_ref()),
        }
    };

    // Templates, in parallel, only where the context changed. A page that fails to
    // render (or whose templates do not load) keeps its last good HTML.
    // A one-shot build has nothing to compare the hashes with.
    let hashes: Vec<u64> = jobs
        .par_iter()
        .map(|job| {
            if !keep_sources {
                return 0;
            }
            let ctx = match &job.ctx {
                JobCtx::Page(i) => fingerprint(&view(*i)),
                JobCtx::Section(ctx) => fingerprint(ctx),
                JobCtx::Plain => 0,
            };
            fingerprint(&(site_hash, &job.url, &job.template, ctx))
        })
        .collect();
    let templates_broken = !cache.template_errors.is_empty();
    let previous = std::mem::take(&mut cache.rendered);
    let progress = options.progress.as_deref();
    if let Some(progress) = progress {
        progress.start(jobs.len());
    }
    let results: Vec<(usize, Option<Result<Written, BuildError>>)> = jobs
        .par_iter()
        .enumerate()
        .map(|(n, job)| {
            let _counted = progress.map(crate::progress::Progress::counter);
            let reusable = previous
                .get(&job.url)
                .is_some_and(|(hash, _)| templates_broken || *hash == hashes[n]);
            if reusable {
                return (n, None);
            }
            let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
                let ctx = match &job.ctx {
                    JobCtx::Page(i) => minijinja::context! { site => site.clone(), page => Value::from(Serde(view(*i))), current_url => job.url.clone() },
                    JobCtx::Section(ctx) => minijinja::context! { site => site.clone(), section => Value::from(Serde(ctx)), current_url => job.url.clone() },
                    JobCtx::Plain => minijinja::context! { site => site.clone(), current_url => job.url.clone() },
                };
                render_job(&cache.templates, job, &ctx)
            }))
            .unwrap_or_else(|panic| {
                Err(BuildError {
                    file: job.source.as_deref().map(|p| layout.display_path(p)).unwrap_or_else(|| PathBuf::from(&job.template)),
                    line: None,
                    column: None,
                    message: format!("the renderer panicked: {}", panic_message(&panic)),
                })
            });
            // Straight to disk when building to a directory: thousands of pages need not
            // all be held at once.
            let result = match (result, sink) {
                (Ok(html), Some(dir)) => output::write_file(dir, &job.url, html.as_bytes())
                    .map(|()| Written::ToDisk)
                    .map_err(|error| BuildError {
                        file: PathBuf::from(&job.url),
                        line: None,
                        column: None,
                        message: format!("cannot write the page: {error}"),
                    }),
                (result, _) => result.map(Written::InMemory),
            };
            (n, Some(result))
        })
        .collect();
    let mut rendered_count = 0;
    let mut written_count = 0;
    for (n, result) in results {
        let job = &jobs[n];
        let rendered_now = matches!(result, Some(Ok(_)));
        let resource = match result {
            None => previous.get(&job.url).map(|(_, resource)| resource.clone()),
            Some(Ok(Written::ToDisk)) => {
                rendered_count += 1;
                written_count += 1;
                None
            }
            Some(Ok(Written::InMemory(html))) => {
                rendered_count += 1;
                Some(Resource::html(html))
            }
            Some(Err(error)) => {
                errors.push(error);
                previous.get(&job.url).map(|(_, resource)| resource.clone())
            }
        };
        // What only a later build would use is not kept by a one-shot build.
        if let Some(source) = &job.source
            && rendered_now
            && keep_sources
        {
            cache.url_of_source.insert(source.clone(), job.url.clone());
        }
        if let Some(resource) = resource {
            if keep_sources {
                cache
                    .rendered
                    .insert(job.url.clone(), (hashes[n], resource.clone()));
            }
            output.resources.insert(job.url.clone(), resource);
        }
    }
    // The sitemap and the feeds: the site's newest dated pages, and each section's.
    let mut sitemap: Vec<(&str, Option<&str>)> = jobs
        .iter()
        .filter(|job| !matches!(job.ctx, JobCtx::Plain))
        .map(|job| {
            let date = match &job.ctx {
                JobCtx::Page(i) => page(*i).date.as_deref(),
                _ => None,
            };
            (job.url.as_str(), date)
        })
        .collect();
    sitemap.sort_unstable();
    let xml = "application/xml; charset=utf-8";
    let base = &layout.config.base_url;
    output.resources.insert(
        "/sitemap.xml".into(),
        Resource::memory(Bytes::from(feeds::sitemap(base, &sitemap)), Arc::from(xml)),
    );
    let atom: Arc<str> = Arc::from("application/atom+xml; charset=utf-8");
    if let Some(feed_url) = &site_ctx.feed_url {
        let entries: Vec<&Summary> = site_ctx.recent_pages.iter().collect();
        let feed = feeds::atom(base, feed_url, &layout.config.title, &entries);
        output.resources.insert(
            feed_url.clone(),
            Resource::memory(Bytes::from(feed), atom.clone()),
        );
    }
    for section in sections.values().filter(|s| !s.dir.as_os_str().is_empty()) {
        let mut dated: Vec<&Summary> = section
            .pages
            .iter()
            .filter_map(|&i| summaries[i].as_ref())
            .filter(|s| s.date.is_some())
            .collect();
        if dated.is_empty() {
            continue;
        }
        dated.sort_by(|a, b| b.date.cmp(&a.date));
        let feed_url = format!("{}atom.xml", section.url);
        let title = format!("{} – {}", section.title, layout.config.title);
        let feed = feeds::atom(base, &encode_path(&feed_url), &title, &dated);
        output
            .resources
            .insert(feed_url, Resource::memory(Bytes::from(feed), atom.clone()));
    }
    // A page whose Markdown no longer parses is served as it last built.
    for path in broken {
        if let Some(url) = cache.url_of_source.get(path)
            && !output.resources.contains_key(url)
            && let Some((hash, resource)) = previous.get(url)
        {
            output.resources.insert(url.clone(), resource.clone());
            cache
                .rendered
                .insert(url.clone(), (*hash, resource.clone()));
        }
    }
    let index = parsed
        .iter()
        .enumerate()
        .filter(|(i, _)| roles[*i] == Role::Page && !page_urls[*i].is_empty())
        .map(|(i, p)| (p.source.path.clone(), i))
        .collect();
    let tag_counts = tags
        .iter()
        .map(|(t, list)| (t.to_string(), list.len()))
        .collect();
    if !keep_sources {
        // A one-shot build has no later build to speed up.
        return (rendered_count, written_count);
    }
    cache.last = Some(LastSite {
        site,
        site_hash,
        md_urls,
        links_hash,
        index,
        summaries,
        placement,
        tag_counts,
        resources: output.resources.clone(),
        errors: errors.clone(),
    });
    (rendered_count, written_count)
}

/// Where a rendered page went.
enum Written {
    InMemory(String),
    ToDisk,
}

fn render_job(
    templates: &Templates,
    job: &RenderJob<'_>,
    ctx: &Value,
) -> Result<String, BuildError> {
    let template = templates.env().get_template(&job.template).map_err(|e| {
        let mut error = templates.error(&e);
        if let Some(source) = &job.source {
            error.message = format!("{} (asked for by {})", error.message, source.display());
        }
        error
    })?;
    template.render(ctx).map_err(|e| templates.error(&e))
}

/// What a caught panic said (its payload is a `&str` or a `String` for `panic!`).
pub fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

fn is_markdown(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("md" | "markdown")
    )
}

fn parse(layout: &Layout, source: Source) -> Result<Parsed, BuildError> {
    let file = layout.display_path(&source.path);
    let text = std::fs::read(&source.path).map_err(|error| BuildError {
        file: file.clone(),
        line: None,
        column: None,
        message: format!("cannot read: {error}"),
    })?;
    let text = String::from_utf8(text).map_err(|error| {
        let offset = error.utf8_error().valid_up_to();
        let bytes = error.as_bytes();
        let line = bytes[..offset].iter().filter(|&&b| b == b'\n').count() as u32 + 1;
        BuildError {
            file: file.clone(),
            line: Some(line),
            column: None,
            message: "not valid UTF-8".into(),
        }
    })?;
    let split = frontmatter::split(&text).map_err(|error| BuildError {
        file: file.clone(),
        line: Some(error.line),
        column: error.column,
        message: error.message,
    })?;
    let mut fm = split.front_matter;
    let extra = Arc::new(std::mem::take(&mut fm.extra));
    Ok(Parsed {
        fm,
        extra,
        body: std::sync::Mutex::new(split.body.to_string()),
        source,
    })
}

fn page_error(layout: &Layout, page: &Parsed, message: String) -> BuildError {
    BuildError {
        file: layout.display_path(&page.source.path),
        line: None,
        column: None,
        message,
    }
}

/// `_index.md` is its directory's own text; without one, `index.md` or `README.md`.
fn assign_roles(parsed: &[Arc<Parsed>]) -> Vec<Role> {
    let mut index_of_dir: HashMap<&Path, (u8, usize)> = HashMap::default();
    for (i, page) in parsed.iter().enumerate() {
        let rank = match page.source.rel.file_stem().and_then(|s| s.to_str()) {
            Some("_index") => 0,
            Some("index") => 1,
            Some("README" | "readme" | "Readme") => 2,
            _ => continue,
        };
        let dir = page.source.rel.parent().unwrap_or(Path::new(""));
        let entry = index_of_dir.entry(dir).or_insert((rank, i));
        if rank < entry.0 {
            *entry = (rank, i);
        }
    }
    let mut roles = vec![Role::Page; parsed.len()];
    for (_, i) in index_of_dir.into_values() {
        roles[i] = Role::SectionIndex;
    }
    roles
}

fn ensure_section(sections: &mut BTreeMap<PathBuf, Section>, dir: &Path) {
    if sections.contains_key(dir) {
        return;
    }
    if let Some(parent) = dir.parent() {
        ensure_section(sections, parent);
    }
    let mut url = String::from("/");
    for part in dir.components() {
        url.push_str(&part.as_os_str().to_string_lossy());
        url.push('/');
    }
    sections.insert(
        dir.to_path_buf(),
        Section {
            dir: dir.to_path_buf(),
            url,
            ..Section::default()
        },
    );
}

fn render_markdown(page: &Parsed, url: &str, links: &SourceLinks<'_>) -> PageCtx {
    let fm = &page.fm;
    // The template prints the title; drop a heading the page opens with when it is the
    // title (no title in front matter, or the same one).
    let strip = |heading: &str| {
        fm.title
            .as_deref()
            .is_none_or(|title| title.trim() == heading.trim())
    };
    let body = page.body.lock().unwrap_or_else(|p| p.into_inner());
    let rendered = markdown::render(&body, links, &strip);
    let title = fm
        .title
        .clone()
        .or_else(|| rendered.leading_heading.clone())
        .unwrap_or_else(|| {
            page.source
                .rel
                .file_stem()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned()
        });
    PageCtx {
        title,
        url: encode_path(url),
        content: Arc::from(rendered.html),
        summary: rendered.summary.map(|s| templates::escape_html(&s)),
        description: fm.description.clone(),
        date: fm.date.clone(),
        tags: fm.tags.clone(),
        toc: rendered.toc,
        word_count: rendered.word_count,
        reading_time: rendered.word_count.div_ceil(WORDS_PER_MINUTE).max(1),
        extra: page.extra.clone(),
        draft: fm.draft,
        weight: fm.weight,
        template: fm.template.clone(),
    }
}

/// Listing order: weight (unweighted last), then newest date first (undated last), then
/// title, case-insensitively.
fn listing_key(page: &PageCtx) -> (i64, std::cmp::Reverse<Option<&str>>, String) {
    (
        page.weight.unwrap_or(i64::MAX),
        std::cmp::Reverse(page.date.as_deref()),
        page.title.to_lowercase(),
    )
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    struct Site {
        dir: tempfile::TempDir,
        builder: Builder,
    }

    impl Site {
        fn new(files: &[(&str, &str)]) -> Site {
            let dir = tempfile::tempdir().unwrap();
            for (rel, text) in files {
                let path = dir.path().join(rel);
                fs::create_dir_all(path.parent().unwrap()).unwrap();
                fs::write(path, text).unwrap();
            }
            let root = dir.path().canonicalize().unwrap();
            Site {
                dir,
                builder: Builder::new(root, BuildOptions::default()),
            }
        }

        fn path(&self, rel: &str) -> PathBuf {
            self.dir.path().canonicalize().unwrap().join(rel)
        }

        fn write(&self, rel: &str, text: &str) -> Change {
            let path = self.path(rel);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(&path, text).unwrap();
            self.change(rel)
        }

        fn change(&self, rel: &str) -> Change {
            let root = self.path("");
            let path = self.path(rel);
            let kind = content::classify(&root, &path, root.join("content").is_dir());
            Change { kind, path }
        }

        fn build(&mut self, changes: &[Change]) -> (Output, BuildReport) {
            let output = self.builder.build(Some(changes));
            let report = output.report.clone().unwrap();
            (output, report)
        }
    }

    fn html(output: &Output, url: &str) -> String {
        match &output
            .get(url)
            .unwrap_or_else(|| panic!("{url} not built"))
            .body
        {
            Body::Memory(bytes) => String::from_utf8(bytes.to_vec()).unwrap(),
            Body::File(path) => fs::read_to_string(path).unwrap(),
        }
    }

    fn blog() -> Site {
        Site::new(&[
            (
                "content/_index.md",
                "+++\ntitle = \"Home\"\n+++\nWelcome.\n",
            ),
            ("content/posts/_index.md", "+++\ntitle = \"Posts\"\n+++\n"),
            (
                "content/posts/a.md",
                "+++\ntitle = \"Alpha\"\ndate = 2026-01-01\n+++\nAlpha body. See [b](b.md#part).\n",
            ),
            (
                "content/posts/b.md",
                "+++\ntitle = \"Beta\"\ndate = 2026-01-02\n+++\n## Part\n\nBeta body.\n",
            ),
            (
                "content/posts/c.md",
                "+++\ntitle = \"Gamma\"\n+++\nGamma body.\n",
            ),
            ("static/custom.css", "body{}"),
        ])
    }

    #[test]
    fn first_build_renders_everything() {
        let mut site = blog();
        let (output, report) = site.build(&[]);
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        // 3 pages, posts section, home, 404.
        assert_eq!(report.pages, 6);
        assert_eq!(report.rendered, 6);
        assert!(html(&output, "/posts/a/").contains(r#"href="/posts/b/#part""#));
        assert!(output.get("/custom.css").is_some());
        // Feeds of the dated pages (Gamma has no date), newest first.
        let feed = html(&output, "/atom.xml");
        assert!(
            feed.find("Beta").unwrap() < feed.find("Alpha").unwrap(),
            "{feed}"
        );
        assert!(!feed.contains("Gamma"), "{feed}");
        assert!(html(&output, "/posts/atom.xml").contains("<title>Beta</title>"));
        assert!(html(&output, "/").contains(r#"type="application/atom+xml""#));
        let sitemap = html(&output, "/sitemap.xml");
        for url in ["/", "/posts/", "/posts/a/", "/posts/c/"] {
            assert!(
                sitemap.contains(&format!("<loc>{url}</loc>")),
                "{url} missing: {sitemap}"
            );
        }
        assert!(!sitemap.contains("404"), "{sitemap}");
    }

    #[test]
    fn body_edit_rerenders_only_that_page() {
        let mut site = blog();
        site.build(&[]);
        // Below the first paragraph, so listings (which show it) are unaffected.
        let change = site.write(
            "content/posts/c.md",
            "+++\ntitle = \"Gamma\"\n+++\nGamma body.\n\nMore.\n",
        );
        let (output, report) = site.build(&[change]);
        assert_eq!(report.rendered, 1, "only the page itself");
        assert!(html(&output, "/posts/c/").contains("More."));
        assert!(
            html(&output, "/posts/a/").contains("Alpha body."),
            "others still served"
        );

        // A new first paragraph shows in the section listing and the neighbours' links.
        let change = site.write(
            "content/posts/c.md",
            "+++\ntitle = \"Gamma\"\n+++\nNew opening.\n",
        );
        let (output, report) = site.build(&[change]);
        assert!(html(&output, "/posts/").contains("New opening."));
        assert!(
            report.rendered < report.pages,
            "home and 404 stay: {report:?}"
        );
    }

    #[test]
    fn title_edit_rerenders_the_listings_that_show_it() {
        let mut site = blog();
        site.build(&[]);
        let change = site.write(
            "content/posts/b.md",
            "+++\ntitle = \"Beta Two\"\ndate = 2026-01-02\n+++\n## Part\n\nBeta body.\n",
        );
        let (output, report) = site.build(&[change]);
        assert!(
            html(&output, "/posts/").contains("Beta Two"),
            "section listing"
        );
        assert!(
            html(&output, "/").contains("Beta Two"),
            "recent pages on the home page"
        );
        assert!(html(&output, "/posts/b/").contains("Beta Two"));
        assert!(
            report.rendered > 1 && report.rendered <= report.pages,
            "{report:?}"
        );
    }

    #[test]
    fn static_edit_renders_nothing() {
        let mut site = blog();
        site.build(&[]);
        let change = site.write("static/custom.css", "body{color:red}");
        let (output, report) = site.build(&[change]);
        assert_eq!(report.rendered, 0);
        assert_eq!(
            output.resources.len(),
            12,
            "6 pages, 2 stylesheets, the theme's icon, sitemap, 2 feeds"
        );
        assert!(html(&output, "/custom.css").contains("red"));
    }

    #[test]
    fn template_edit_rerenders_without_reparsing() {
        let mut site = blog();
        site.build(&[]);
        let change = site.write(
            "templates/page.html",
            "<main>{{ page.content|safe }}</main>",
        );
        let (output, report) = site.build(&[change]);
        assert_eq!(report.rendered, report.pages, "every page renders again");
        assert_eq!(
            html(&output, "/posts/c/"),
            "<main><p>Gamma body.</p>\n</main>"
        );
    }

    #[test]
    fn added_and_removed_pages_update_listings_and_links() {
        let mut site = blog();
        site.build(&[]);
        let added = site.write("content/posts/d.md", "+++\ntitle = \"Delta\"\n+++\nNew.\n");
        let (output, _) = site.build(&[added]);
        assert!(html(&output, "/posts/").contains("Delta"));
        assert!(output.get("/posts/d/").is_some());

        // Renaming a file moves its page and updates the listing.
        fs::rename(
            site.path("content/posts/c.md"),
            site.path("content/posts/cee.md"),
        )
        .unwrap();
        let changes = [
            site.change("content/posts/c.md"),
            site.change("content/posts/cee.md"),
        ];
        let (output, report) = site.build(&changes);
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        assert!(output.get("/posts/c/").is_none());
        assert!(html(&output, "/posts/").contains("/posts/cee/"));
        assert!(!html(&output, "/posts/").contains("/posts/c/\""));

        // A new slug moves b's URL: a.md links to b.md and must follow, though a.md
        // itself did not change.
        let change = site.write("content/posts/b.md", "+++\ntitle = \"Beta\"\nslug = \"bee\"\ndate = 2026-01-02\n+++\n## Part\n\nBeta body.\n");
        let (output, _) = site.build(&[change]);
        assert!(html(&output, "/posts/a/").contains(r#"href="/posts/bee/#part""#));

        // Removing a page drops it everywhere.
        fs::remove_file(site.path("content/posts/d.md")).unwrap();
        let (output, _) = site.build(&[site.change("content/posts/d.md")]);
        assert!(output.get("/posts/d/").is_none());
        assert!(!html(&output, "/posts/").contains("Delta"));
    }

    #[test]
    fn a_broken_page_keeps_its_last_good_html() {
        let mut site = blog();
        site.build(&[]);
        let change = site.write("content/posts/c.md", "+++\ntitle = \"Gamma\n+++\nbroken\n");
        let (output, report) = site.build(&[change]);
        assert_eq!(report.errors.len(), 1);
        assert_eq!(report.errors[0].file, PathBuf::from("content/posts/c.md"));
        assert_eq!(report.errors[0].line, Some(2));
        assert!(
            html(&output, "/posts/c/").contains("Gamma body."),
            "last good version served"
        );

        let fixed = site.write(
            "content/posts/c.md",
            "+++\ntitle = \"Gamma\"\n+++\nFixed.\n",
        );
        let (output, report) = site.build(&[fixed]);
        assert!(report.errors.is_empty());
        assert!(html(&output, "/posts/c/").contains("Fixed."));
    }

    #[test]
    fn a_broken_template_keeps_the_last_good_pages() {
        let mut site = blog();
        site.write("templates/page.html", "<main>{{ page.title }}</main>");
        site.build(&[]);
        let broken = site.write("templates/page.html", "<main>{{ page.title </main>");
        let body = site.write(
            "content/posts/c.md",
            "+++\ntitle = \"Gamma\"\n+++\nChanged.\n",
        );
        let (output, report) = site.build(&[broken, body]);
        assert_eq!(report.errors.len(), 1, "{:?}", report.errors);
        assert_eq!(report.errors[0].file, PathBuf::from("templates/page.html"));
        assert_eq!(report.errors[0].line, Some(1));
        assert_eq!(
            html(&output, "/posts/c/"),
            "<main>Gamma</main>",
            "the site's own design stays"
        );
    }

    #[test]
    fn a_template_that_panics_the_renderer_is_that_pages_error() {
        let mut site = blog();
        // Deep recursion through a macro is caught by minijinja; an unknown filter is a
        // plain error. Either way the other pages build.
        site.write(
            "templates/special.html",
            "{{ page.title | no_such_filter }}",
        );
        site.write(
            "content/posts/c.md",
            "+++\ntitle = \"Gamma\"\ntemplate = \"special.html\"\n+++\nx\n",
        );
        let (output, report) = site.build(&[]);
        assert_eq!(report.errors.len(), 1, "{:?}", report.errors);
        assert!(
            report.errors[0].message.contains("unknown filter"),
            "{:?}",
            report.errors
        );
        assert!(output.get("/posts/a/").is_some());
    }
}
