//! The builder: a site root in, an [`Output`] (URL → body) and a report out.
//!
//! Phases, each parallel with rayon where the work is per file: discover the layout and
//! walk the sources; read and split front matter; give every page and section its URL;
//! render Markdown (links need every URL known); render templates. A bad file becomes a
//! [`BuildError`] and the build goes on without it: one build reports every error.

pub mod content;
pub mod frontmatter;
pub mod markdown;
pub mod output;
pub mod templates;

use std::collections::{BTreeMap, HashMap};
use std::panic::AssertUnwindSafe;
use std::path::{Component, Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use minijinja::Value;
use rayon::prelude::*;
use serde::Serialize;
use sited_proto::{BuildError, BuildReport};

use content::{Layout, Source};
use frontmatter::FrontMatter;
use markdown::{LinkResolver, TocEntry};
pub use output::{Body, Output, Resource};
use templates::Templates;

/// What a build is asked to do.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// Include pages marked `draft`.
    pub drafts: bool,
}

/// At most this many top-level pages are put in the navigation next to the sections; a
/// flat book of 100 chapters gets its chapters listed on the home page instead.
const NAV_MAX_PAGES: usize = 8;
/// Dated pages listed as `site.recent_pages`.
const RECENT_PAGES: usize = 20;
/// Words per minute for `reading_time`.
const WORDS_PER_MINUTE: usize = 220;

/// Builds the site at `root`. Never fails as a whole: problems are in the report.
pub fn build(root: &Path, options: &BuildOptions) -> Output {
    let started = Instant::now();
    let mut errors = Vec::new();
    let mut output = Output::default();
    match Layout::discover(root, &mut errors) {
        Ok(layout) => build_layout(&layout, options, &mut output, &mut errors),
        Err(error) => errors.push(BuildError {
            file: root.to_path_buf(),
            line: None,
            column: None,
            message: format!("cannot open site root: {error}"),
        }),
    }
    let pages = output
        .resources
        .values()
        .filter(|r| r.content_type.starts_with("text/html"))
        .count();
    let files = output.resources.len() - pages;
    errors.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
    output.report = Some(BuildReport {
        pages,
        files,
        duration_ms: started.elapsed().as_millis() as u64,
        finished_at_ms: now_ms(),
        errors,
    });
    output
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A Markdown file after its front matter was read.
#[derive(Debug)]
struct Parsed {
    source: Source,
    fm: FrontMatter,
    body: String,
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
    /// Index into `parsed` of the section's own Markdown, if any.
    index: Option<usize>,
    pages: Vec<usize>,
    subsections: Vec<PathBuf>,
}

/// A page after Markdown rendering, ready for templates.
#[derive(Debug, Clone, Serialize)]
struct PageCtx {
    title: String,
    url: String,
    content: String,
    summary: Option<String>,
    description: Option<String>,
    date: Option<String>,
    tags: Vec<String>,
    tag_urls: Vec<TagLink>,
    toc: Vec<TocEntry>,
    word_count: usize,
    reading_time: usize,
    extra: serde_json::Map<String, serde_json::Value>,
    draft: bool,
    weight: Option<i64>,
    section: Option<Link>,
    prev: Option<Summary>,
    next: Option<Summary>,
    #[serde(skip)]
    template: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
struct Link {
    title: String,
    url: String,
}

#[derive(Debug, Clone, Serialize)]
struct TagLink {
    name: String,
    url: String,
    count: usize,
}

#[derive(Debug, Clone, Serialize)]
struct Summary {
    title: String,
    url: String,
    date: Option<String>,
    description: Option<String>,
    summary: Option<String>,
    tags: Vec<String>,
    reading_time: usize,
}

#[derive(Debug, Clone, Serialize)]
struct SubsectionCtx {
    title: String,
    url: String,
    page_count: usize,
}

#[derive(Debug, Clone, Serialize)]
struct SectionCtx {
    title: String,
    url: String,
    content: String,
    description: Option<String>,
    pages: Vec<Summary>,
    subsections: Vec<SubsectionCtx>,
    extra: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Serialize)]
struct SiteCtx<'a> {
    title: &'a str,
    description: Option<&'a str>,
    base_url: &'a str,
    has_custom_css: bool,
    sections: Vec<Link>,
    recent_pages: Vec<Summary>,
    tags: Vec<TagLink>,
    extra: &'a toml::Table,
}

fn build_layout(
    layout: &Layout,
    options: &BuildOptions,
    output: &mut Output,
    errors: &mut Vec<BuildError>,
) {
    let files = layout.content_files(errors);
    let (markdown_files, assets): (Vec<Source>, Vec<Source>) =
        files.into_iter().partition(|f| is_markdown(&f.rel));

    // Read and split front matter.
    let results: Vec<Result<Parsed, BuildError>> = markdown_files
        .into_par_iter()
        .map(|source| parse(layout, source))
        .collect();
    let mut parsed = Vec::with_capacity(results.len());
    for result in results {
        match result {
            Ok(page) if page.fm.draft && !options.drafts => {}
            Ok(page) => parsed.push(page),
            Err(error) => errors.push(error),
        }
    }

    // Sections and URLs.
    let roles = assign_roles(&parsed);
    let mut sections: BTreeMap<PathBuf, Section> = BTreeMap::new();
    ensure_section(&mut sections, Path::new(""));
    let mut page_urls: Vec<String> = vec![String::new(); parsed.len()];
    let mut url_owner: HashMap<String, usize> = HashMap::new();
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
                if slug.is_empty() || slug == "." || slug == ".." {
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

    // Markdown, in parallel. Links are resolved against every URL assigned above.
    let md_urls: HashMap<&Path, &str> = parsed
        .iter()
        .zip(&page_urls)
        .filter(|(_, url)| !url.is_empty())
        .map(|(page, url)| (page.source.rel.as_path(), url.as_str()))
        .collect();
    let rendered: Vec<Option<PageCtx>> = parsed
        .par_iter()
        .enumerate()
        .map(|(i, page)| {
            if page_urls[i].is_empty() {
                return None;
            }
            let links = SourceLinks {
                dir: page.source.rel.parent().unwrap_or(Path::new("")),
                md_urls: &md_urls,
            };
            Some(render_markdown(page, &page_urls[i], &links))
        })
        .collect();

    // Section titles and order of pages within sections.
    for section in sections.values_mut() {
        let from_index = section
            .index
            .and_then(|i| rendered[i].as_ref())
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
        section
            .pages
            .sort_by(|&a, &b| listing_order(&rendered, a, b));
    }
    let dirs: Vec<PathBuf> = sections.keys().cloned().collect();
    for dir in &dirs {
        if let Some(parent) = dir.parent() {
            let dir = dir.clone();
            sections
                .get_mut(parent)
                .expect("ancestors are ensured")
                .subsections
                .push(dir);
        }
    }

    // Tags.
    let mut tags: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, page) in rendered.iter().enumerate() {
        if let Some(page) = page
            && roles[i] == Role::Page
        {
            for tag in &page.tags {
                tags.entry(tag.clone()).or_default().push(i);
            }
        }
    }
    let tag_url = |tag: &str| format!("/tags/{}/", markdown::slugify(tag));

    // Fill in what needs the whole picture: section links, prev/next, tag URLs.
    let mut pages: Vec<Option<PageCtx>> = rendered;
    for section in sections.values() {
        let section_link = (!section.dir.as_os_str().is_empty()).then(|| Link {
            title: section.title.clone(),
            url: section.url.clone(),
        });
        let summaries: Vec<Summary> = section
            .pages
            .iter()
            .map(|&i| summary(pages[i].as_ref().expect("listed pages rendered")))
            .collect();
        for (n, &i) in section.pages.iter().enumerate() {
            let page = pages[i].as_mut().expect("listed pages rendered");
            page.section = section_link.clone();
            page.prev = n.checked_sub(1).map(|p| summaries[p].clone());
            page.next = summaries.get(n + 1).cloned();
            page.tag_urls = page
                .tags
                .iter()
                .map(|t| TagLink {
                    name: t.clone(),
                    url: tag_url(t),
                    count: tags[t].len(),
                })
                .collect();
        }
    }

    let templates = Templates::load(layout.templates_dir.as_deref(), &layout.root, errors);

    // Static files: theme stylesheet, assets beside content, then `static/` (wins).
    output.resources.insert(
        crate::theme::STYLESHEET_URL.to_string(),
        Resource::memory(
            Bytes::from_static(crate::theme::STYLESHEET.as_bytes()),
            "text/css; charset=utf-8".to_string(),
        ),
    );
    let statics = layout.static_files(errors);
    let has_custom_css = statics.iter().any(|s| s.rel == Path::new("custom.css"));
    for source in assets.iter().chain(&statics) {
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
        .filter(|&i| roles[i] == Role::Page && pages[i].as_ref().is_some_and(|p| p.date.is_some()))
        .collect();
    recent.sort_by(|&a, &b| {
        pages[b]
            .as_ref()
            .unwrap()
            .date
            .cmp(&pages[a].as_ref().unwrap().date)
    });
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
        nav.extend(root_section.pages.iter().map(|&i| {
            let page = pages[i].as_ref().expect("listed pages rendered");
            Link {
                title: page.title.clone(),
                url: page.url.clone(),
            }
        }));
    }
    let site = Value::from(minijinja::value::Serde(SiteCtx {
        title: &layout.config.title,
        description: layout.config.description.as_deref(),
        base_url: &layout.config.base_url,
        has_custom_css,
        sections: nav,
        recent_pages: recent
            .iter()
            .map(|&i| summary(pages[i].as_ref().unwrap()))
            .collect(),
        tags: tags
            .iter()
            .map(|(name, list)| TagLink {
                name: name.clone(),
                url: tag_url(name),
                count: list.len(),
            })
            .collect(),
        extra: &layout.config.extra,
    }));

    // Everything to render: (url, template, context, source file for errors).
    let mut jobs: Vec<RenderJob> = Vec::new();
    for (i, page) in pages.iter().enumerate() {
        if roles[i] != Role::Page {
            continue;
        }
        let Some(page) = page else { continue };
        let template = page
            .template
            .clone()
            .unwrap_or_else(|| "page.html".to_string());
        jobs.push(RenderJob {
            url: page.url.clone(),
            template,
            context: minijinja::context! { site => site.clone(), page => Value::from(minijinja::value::Serde(&page)), current_url => page.url.clone() },
            source: Some(parsed[i].source.path.clone()),
        });
    }
    for section in sections.values() {
        let index_page = section.index.and_then(|i| pages[i].as_ref());
        let ctx = SectionCtx {
            title: section.title.clone(),
            url: section.url.clone(),
            content: index_page.map(|p| p.content.clone()).unwrap_or_default(),
            description: index_page.and_then(|p| p.description.clone()),
            extra: index_page.map(|p| p.extra.clone()).unwrap_or_default(),
            pages: section
                .pages
                .iter()
                .map(|&i| summary(pages[i].as_ref().unwrap()))
                .collect(),
            subsections: section
                .subsections
                .iter()
                .map(|dir| SubsectionCtx {
                    title: sections[dir].title.clone(),
                    url: sections[dir].url.clone(),
                    page_count: sections[dir].pages.len(),
                })
                .collect(),
        };
        let is_home = section.dir.as_os_str().is_empty();
        let default = if is_home {
            "index.html"
        } else {
            "section.html"
        };
        let template = index_page
            .and_then(|p| p.template.clone())
            .unwrap_or_else(|| default.to_string());
        jobs.push(RenderJob {
            url: section.url.clone(),
            template,
            context: minijinja::context! { site => site.clone(), section => Value::from(minijinja::value::Serde(&ctx)), current_url => section.url.clone() },
            source: section.index.map(|i| parsed[i].source.path.clone()),
        });
    }
    if !tags.is_empty() {
        let mut all_tags = Vec::new();
        for (name, list) in &tags {
            let mut list = list.clone();
            list.sort_by(|&a, &b| listing_order(&pages, a, b));
            let url = tag_url(name);
            all_tags.push(SubsectionCtx {
                title: name.clone(),
                url: url.clone(),
                page_count: list.len(),
            });
            let ctx = SectionCtx {
                title: format!("Tagged “{name}”"),
                url: url.clone(),
                content: String::new(),
                description: None,
                extra: Default::default(),
                pages: list
                    .iter()
                    .filter_map(|&i| pages[i].as_ref().map(summary))
                    .collect(),
                subsections: Vec::new(),
            };
            jobs.push(RenderJob {
                url: url.clone(),
                template: "section.html".into(),
                context: minijinja::context! { site => site.clone(), section => Value::from(minijinja::value::Serde(&ctx)), current_url => url },
                source: None,
            });
        }
        let ctx = SectionCtx {
            title: "Tags".into(),
            url: "/tags/".into(),
            content: String::new(),
            description: None,
            extra: Default::default(),
            pages: Vec::new(),
            subsections: all_tags,
        };
        jobs.push(RenderJob {
            url: "/tags/".into(),
            template: "section.html".into(),
            context: minijinja::context! { site => site.clone(), section => Value::from(minijinja::value::Serde(&ctx)), current_url => "/tags/" },
            source: None,
        });
    }
    jobs.push(RenderJob {
        url: "/404.html".into(),
        template: "404.html".into(),
        context: minijinja::context! { site => site.clone(), current_url => "/404.html" },
        source: None,
    });

    // Templates, in parallel. A panic in the renderer is that page's error.
    let results: Vec<(String, Result<String, BuildError>)> = jobs
        .into_par_iter()
        .map(|job| {
            let result =
                std::panic::catch_unwind(AssertUnwindSafe(|| render_job(&templates, &job)))
                    .unwrap_or_else(|panic| {
                        Err(BuildError {
                            file: job
                                .source
                                .as_deref()
                                .map(|p| layout.display_path(p))
                                .unwrap_or_else(|| PathBuf::from(&job.template)),
                            line: None,
                            column: None,
                            message: format!("the renderer panicked: {}", panic_message(&panic)),
                        })
                    });
            (job.url, result)
        })
        .collect();
    for (url, result) in results {
        match result {
            Ok(html) => {
                output.resources.insert(url, Resource::html(html));
            }
            Err(error) => errors.push(error),
        }
    }
}

#[derive(Debug)]
struct RenderJob {
    url: String,
    template: String,
    context: Value,
    source: Option<PathBuf>,
}

fn render_job(templates: &Templates, job: &RenderJob) -> Result<String, BuildError> {
    let template = templates.env().get_template(&job.template).map_err(|e| {
        let mut error = templates.error(&e);
        if let Some(source) = &job.source {
            error.message = format!("{} (asked for by {})", error.message, source.display());
        }
        error
    })?;
    template
        .render(&job.context)
        .map_err(|e| templates.error(&e))
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
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
    Ok(Parsed {
        fm: split.front_matter,
        body: split.body.to_string(),
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
fn assign_roles(parsed: &[Parsed]) -> Vec<Role> {
    let mut index_of_dir: HashMap<&Path, (u8, usize)> = HashMap::new();
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

fn file_url(rel: &Path) -> String {
    let mut url = String::new();
    for part in rel.components() {
        url.push('/');
        url.push_str(&part.as_os_str().to_string_lossy());
    }
    url
}

/// Resolves a page's relative links against the source tree.
struct SourceLinks<'a> {
    /// The page's directory, relative to the content dir.
    dir: &'a Path,
    /// Source path of every Markdown file → its URL.
    md_urls: &'a HashMap<&'a Path, &'a str>,
}

impl LinkResolver for SourceLinks<'_> {
    fn resolve(&self, dest: &str) -> Option<String> {
        if dest.is_empty() || dest.starts_with('/') || dest.starts_with('#') || has_scheme(dest) {
            return None;
        }
        let cut = dest.find(['#', '?']).unwrap_or(dest.len());
        let (path, suffix) = dest.split_at(cut);
        let decoded = percent_decode(path)?;
        let joined = normalize(&self.dir.join(&decoded))?;
        if is_markdown(&joined) {
            let url = self.md_urls.get(joined.as_path())?;
            return Some(format!("{}{suffix}", encode_path(url)));
        }
        let mut url = file_url(&joined);
        if path.ends_with('/') || url.is_empty() {
            url.push('/');
        }
        Some(format!("{}{suffix}", encode_path(&url)))
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

/// Decodes `%XX` escapes; `None` if the result is not UTF-8.
pub fn percent_decode(input: &str) -> Option<String> {
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = |b: u8| (b as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// Percent-encodes a URL path for an `href`: everything but unreserved characters,
/// `/` and a few harmless sub-delimiters.
pub fn encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for byte in path.bytes() {
        if byte.is_ascii_alphanumeric() || b"/-._~!$&'()*+,;=:@".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn render_markdown(page: &Parsed, url: &str, links: &SourceLinks<'_>) -> PageCtx {
    let fm = &page.fm;
    let stem = page
        .source
        .rel
        .file_stem()
        .unwrap_or_default()
        .to_string_lossy();
    let probe = markdown::render(&page.body, links, false);
    // The template prints the title; drop a leading heading that says the same thing.
    let strip = match (&fm.title, &probe.leading_heading) {
        (None, Some(_)) => true,
        (Some(title), Some(heading)) => title.trim() == heading.trim(),
        _ => false,
    };
    let rendered = if strip {
        markdown::render(&page.body, links, true)
    } else {
        probe
    };
    let title = fm
        .title
        .clone()
        .or_else(|| rendered.leading_heading.clone())
        .unwrap_or_else(|| stem.into_owned());
    PageCtx {
        title,
        url: encode_path(url),
        content: rendered.html,
        summary: rendered.summary.map(|s| templates::escape_html(&s)),
        description: fm.description.clone(),
        date: fm.date.clone(),
        tags: fm.tags.clone(),
        tag_urls: Vec::new(),
        toc: rendered.toc,
        word_count: rendered.word_count,
        reading_time: rendered.word_count.div_ceil(WORDS_PER_MINUTE).max(1),
        extra: fm.extra.clone(),
        draft: fm.draft,
        weight: fm.weight,
        section: None,
        prev: None,
        next: None,
        template: fm.template.clone(),
    }
}

fn summary(page: &PageCtx) -> Summary {
    Summary {
        title: page.title.clone(),
        url: page.url.clone(),
        date: page.date.clone(),
        description: page.description.clone(),
        summary: page.summary.clone(),
        tags: page.tags.clone(),
        reading_time: page.reading_time,
    }
}

/// Listing order: weight (unweighted last), then newest date first, then title.
fn listing_order(pages: &[Option<PageCtx>], a: usize, b: usize) -> std::cmp::Ordering {
    let (Some(a), Some(b)) = (&pages[a], &pages[b]) else {
        return std::cmp::Ordering::Equal;
    };
    let weight = |p: &PageCtx| p.weight.unwrap_or(i64::MAX);
    weight(a)
        .cmp(&weight(b))
        .then_with(|| b.date.cmp(&a.date))
        .then_with(|| a.title.to_lowercase().cmp(&b.title.to_lowercase()))
}
