//! Phase 3, render: each page's Markdown into its own context ([`page`]), then templates
//! into the HTML of every page, section, tag listing and the 404 page, in parallel.
//!
//! One path for full and incremental builds. A build makes the [`Job`]s it wants rendered
//! (every page of the site with [`jobs`], or only the pages whose body changed with
//! [`page_job`]) and hands them to [`RenderCache::render`], which renders each job whose
//! context changed since its last render and reuses the HTML of the others. A page that
//! fails to render (a template error, even a panic in the renderer) is that page's
//! diagnostic: it keeps its last good HTML and the other pages build.

pub mod base_path;
pub mod footnotes;
pub mod highlight;
pub mod links;
pub mod markdown;
pub mod object;
pub mod page;
pub mod templates;

use std::collections::HashSet;
use std::io;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use minijinja::Value;
use rayon::prelude::*;
use rustc_hash::FxHashMap as HashMap;

use crate::context::{PageCtx, SectionCtx, fingerprint};
use crate::load::Sources;
use crate::load::layout::Layout;
use crate::options::Options;
use crate::output::Resource;
use crate::output::spill::{Blob, Spill, Text};
use crate::progress::Progress;
use crate::report::{Diagnostic, Failure, panic_message};
use crate::tree::{Placed, Tree, paginate};
use page::CachedMarkdown;
use templates::Templates;

/// What one page is rendered from.
#[derive(Debug)]
pub enum JobCtx {
    /// Page `i` of the tree, as `page` (its view is made when it is rendered).
    Page(usize),
    /// A section, the home page or a tag listing, as `section`.
    Section(Arc<SectionCtx>),
    /// Only `site` (the 404 page).
    Plain,
}

/// One page to render: where it goes, with which template, from what.
#[derive(Debug)]
pub struct Job {
    pub url: String,
    pub template: String,
    pub ctx: JobCtx,
    /// The Markdown file behind it, for diagnostics.
    pub source: Option<Arc<Path>>,
}

/// Every page of the site: content pages, sections and the home page, tag listings and
/// the tags index, the 404 page.
pub fn jobs(tree: &Tree) -> Vec<Job> {
    let mut jobs: Vec<Job> = (0..tree.pages.len())
        .into_par_iter()
        .filter(|&i| tree.is_page(i))
        .map(|i| page_job(tree, i))
        .collect();
    for section in tree.placed.sections.values() {
        // A book's folders are no listings (mdBook has none): only the home page, and
        // folders whose README/index is a chapter.
        if tree.site.book.is_some() && !section.is_home() && section.index.is_none() {
            continue;
        }
        let index_page = section.index.and_then(|i| tree.pages[i].as_deref());
        let default = if section.is_home() && tree.site.book.is_some() {
            "book-index.html"
        } else if section.is_home() {
            "index.html"
        } else {
            "section.html"
        };
        let listing = paginate::split(
            tree.section_ctx(section),
            &section.url,
            tree.paginate_by(section),
        );
        for (url, ctx) in listing {
            jobs.push(Job {
                url,
                template: template_or(index_page, default),
                ctx: JobCtx::Section(Arc::new(ctx)),
                source: section.index.map(|i| tree.source(i).source.path.clone()),
            });
        }
    }
    if !tree.tags.is_empty() {
        for (name, pages) in &tree.tags {
            let url = crate::tree::tag_url(name);
            for (url, ctx) in paginate::split(tree.tag_ctx(name, pages), &url, tree.paginate_by) {
                jobs.push(Job {
                    url,
                    template: "section.html".into(),
                    ctx: JobCtx::Section(Arc::new(ctx)),
                    source: None,
                });
            }
        }
        jobs.push(Job {
            url: "/tags/".into(),
            template: "section.html".into(),
            ctx: JobCtx::Section(Arc::new(tree.tags_index_ctx())),
            source: None,
        });
    }
    taxonomy_jobs(tree, &mut jobs);
    jobs.push(Job {
        url: "/404.html".into(),
        template: "404.html".into(),
        ctx: JobCtx::Plain,
        source: None,
    });
    jobs
}

/// The term listings and index of every taxonomy with a term (tags aside).
fn taxonomy_jobs(tree: &Tree, jobs: &mut Vec<Job>) {
    for taxonomy in tree.taxonomies.iter().filter(|t| !t.terms.is_empty()) {
        for (term, pages) in &taxonomy.terms {
            let ctx = tree.term_ctx(taxonomy, term, pages);
            let url = taxonomy.term_url(term);
            for (url, ctx) in paginate::split(ctx, &url, tree.paginate_by) {
                jobs.push(Job {
                    url,
                    template: "section.html".into(),
                    ctx: JobCtx::Section(Arc::new(ctx)),
                    source: None,
                });
            }
        }
        jobs.push(Job {
            url: taxonomy.url(),
            template: "section.html".into(),
            ctx: JobCtx::Section(Arc::new(tree.taxonomy_index_ctx(taxonomy))),
            source: None,
        });
    }
}

/// The job of content page `i`.
pub fn page_job(tree: &Tree, i: usize) -> Job {
    Job {
        url: tree.placed.urls[i].clone(),
        template: template_or(tree.pages[i].as_deref(), "page.html"),
        ctx: JobCtx::Page(i),
        source: Some(tree.source(i).source.path.clone()),
    }
}

/// The template a page asked for in its front matter, else `default`.
fn template_or(page: Option<&PageCtx>, default: &str) -> String {
    page.and_then(|p| p.template.clone())
        .unwrap_or_else(|| default.to_string())
}

/// What rendering needs besides the jobs.
#[derive(Clone, Copy)]
pub struct Env<'a> {
    pub tree: &'a Tree,
    pub templates: &'a Templates,
    /// The site's templates did not all load: every page keeps its last good HTML
    /// rather than being rendered with the theme's stand-ins.
    pub templates_broken: bool,
    pub layout: &'a Layout,
    pub options: &'a Options,
    /// Keep what a later build can reuse (context hashes, HTML). One-shot builds keep
    /// nothing and skip hashing.
    pub keep: bool,
    /// Where a rendered page goes instead of the output: one-shot builds to disk write
    /// pages as they are rendered rather than holding thousands at once.
    pub write: Option<&'a dyn PageSink>,
    /// The path of `base_url` (`/docs`) that every root-relative link of a published build
    /// moves under ([`base_path`]); `None` at the root and on the development server.
    pub base_path: Option<&'a str>,
}

/// Where a one-shot build puts its pages instead of the output (a build to disk).
pub trait PageSink: Sync {
    /// Puts the page for `url`, rendered from a context that hashes to `hash`.
    fn write(&self, url: &str, html: &[u8], hash: u64) -> io::Result<()>;
    /// Whether the page for `url` is already where it goes as a context hashing to `hash`
    /// made it (the last build's output, untouched since): then it is not rendered.
    fn keep(&self, url: &str, hash: u64) -> bool;
}

impl std::fmt::Debug for Env<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Env")
            .field("templates_broken", &self.templates_broken)
            .field("keep", &self.keep)
            .field("writes", &self.write.is_some())
            .finish_non_exhaustive()
    }
}

/// The pages one render made or reused.
#[derive(Debug, Default)]
pub struct Rendered {
    /// URL → HTML of every page held in memory (rendered now, reused, or kept as it last
    /// rendered well).
    pub pages: Vec<(String, Resource)>,
    /// Pages rendered by this build.
    pub rendered: usize,
    /// Of those, pages written straight to disk.
    pub written: usize,
    /// Pages left on disk as the last build wrote them ([`PageSink::keep`]).
    pub kept: usize,
}

/// What rendering keeps between builds.
#[derive(Debug, Default)]
pub struct RenderCache {
    /// Source path → its rendered Markdown.
    markdown: HashMap<Arc<Path>, CachedMarkdown>,
    /// URL → (context hash, HTML) of the last good render.
    rendered: HashMap<String, (u64, Resource)>,
    /// Source path → the URL it was last rendered at, to keep serving it while broken.
    url_of_source: HashMap<Arc<Path>, String>,
    /// What was made since the last [`RenderCache::spill`], to spill: pages whose
    /// Markdown was rendered (their source and context), pages packed.
    unspilled: Vec<(Arc<crate::load::Parsed>, Arc<PageCtx>)>,
    unspilled_pages: Vec<Arc<crate::output::Packed>>,
    /// The thread spilling many pages' text, if one is.
    spilling: Option<std::thread::JoinHandle<()>>,
}

/// Pages whose text [`RenderCache::spill`] writes on a thread of its own, from this many
/// (an edit's page or two is written in place, in microseconds).
pub(crate) const SPILL_APART: usize = 256;

/// How one job went.
enum Outcome {
    /// Its context is unchanged: the last HTML stands.
    Reused,
    /// HTML from [`render_one`], made into a page by the render's worker ([`page`]).
    Rendered(String),
    Made(Resource),
    Written,
    /// Already where it goes, as this context made it ([`PageSink::keep`]).
    Kept,
    /// What went wrong, and the page it went wrong for (its source, else its URL).
    Failed(Diagnostic, String),
}

impl RenderCache {
    /// Its parts, to drop one by one (`Site::measure_parts`).
    pub(crate) fn into_parts(self) -> (impl Sized, impl Sized, impl Sized) {
        (self.markdown, self.rendered, self.url_of_source)
    }

    /// Forgets a source's rendered Markdown, so the next build renders it again.
    pub fn forget(&mut self, path: &Path) {
        self.markdown.remove(path);
    }

    /// Only the last good HTML of each page, to serve while it fails: a build of
    /// everything renders every page again, but a page broken now is not dropped.
    pub fn last_good(self) -> RenderCache {
        RenderCache {
            markdown: HashMap::default(),
            ..self
        }
    }

    /// Forgets the Markdown of files the last walk did not find.
    pub fn retain_present(&mut self, sources: &Sources) {
        let present: HashSet<&Path> = sources.markdown.iter().map(|s| &*s.path).collect();
        self.markdown.retain(|path, _| present.contains(&**path));
    }

    /// Keeps a page's Markdown rendered elsewhere (by an incremental build).
    pub fn remember(&mut self, page: &Arc<crate::load::Parsed>, markdown: CachedMarkdown) {
        self.unspilled.push((page.clone(), markdown.ctx.clone()));
        self.markdown.insert(page.source.path.clone(), markdown);
    }

    /// Moves the pages packed since the last call, and the text of pages rendered (their
    /// Markdown source and rendered Markdown), into `spill`: a server reads a page back
    /// when it sends it and the text only to render the page again (issue 17 item 3).
    /// Many pages (a first build's) are written on a thread of its own, so the build
    /// hands its pages over without waiting for the write (35-42 ms for tldr's 22 MB);
    /// they are readable throughout.
    /// Without a spill, nothing is moved (and nothing is kept to move).
    pub fn spill(&mut self, spill: Option<&Arc<Spill>>, after: Option<fn()>) {
        self.wait_spilled();
        let texts = std::mem::take(&mut self.unspilled);
        let pages = std::mem::take(&mut self.unspilled_pages);
        let Some(spill) = spill else {
            return;
        };
        let spill = spill.clone();
        let many = texts.len() + pages.len() >= SPILL_APART;
        let write = move || {
            let started = std::time::Instant::now();
            let blobs = pages.iter().map(|page| page.blob());
            let texts = texts
                .iter()
                .flat_map(|(source, ctx)| [&source.body, &ctx.content]);
            let spilled =
                Blob::spill_all(blobs, &spill).and_then(|()| Text::spill_all(texts, &spill));
            if let Err(error) = spilled {
                spill.warn_once(&error);
            }
            let (held, file) = spill.usage();
            let spill_us = started.elapsed().as_micros();
            tracing::debug!(spill_us, held, file, "pages and text spilled");
        };
        if !many {
            write();
            return;
        }
        let write_apart = move || {
            write();
            if let Some(after) = after {
                after();
            }
        };
        match std::thread::Builder::new()
            .name("sited-spill".into())
            .spawn(write_apart)
        {
            Ok(thread) => self.spilling = Some(thread),
            Err(error) => tracing::warn!(%error, "cannot spill pages: held in memory"),
        }
    }

    /// Waits for the pages being spilled apart (see [`RenderCache::spill`]).
    pub fn wait_spilled(&mut self) {
        if let Some(thread) = self.spilling.take() {
            // The thread catches nothing: a panic there is a bug, and the text it was
            // moving stays readable where it was.
            let _ = thread.join();
        }
    }

    /// The Markdown stage: every placed page's context, rendering (in parallel) those not
    /// rendered yet, `dirty` ones, and those whose URL or links moved.
    pub fn markdown(
        &mut self,
        placed: &Placed,
        md_urls: &HashMap<Arc<Path>, String>,
        links_hash: u64,
        dirty: &HashSet<PathBuf>,
        options: &Options,
        keep: bool,
    ) -> Result<Vec<Option<Arc<PageCtx>>>, Failure> {
        let current = |i: usize| {
            let path = &placed.pages[i].source.path;
            self.markdown
                .get(path)
                .filter(|md| !dirty.contains(&**path) && md.is_current(&placed.urls[i], links_hash))
        };
        let stale: Vec<usize> = (0..placed.pages.len())
            .filter(|&i| !placed.urls[i].is_empty() && current(i).is_none())
            .collect();
        let cancel = &options.cancel;
        let fresh: Vec<(usize, CachedMarkdown)> = stale
            .into_par_iter()
            .filter(|_| !cancel.is_cancelled())
            .map(|i| {
                (
                    i,
                    page::render(&placed.pages[i], &placed.urls[i], md_urls, links_hash),
                )
            })
            .collect();
        if cancel.is_cancelled() {
            return Err(Failure::Cancelled);
        }
        let mut pages: Vec<Option<Arc<PageCtx>>> = (0..placed.pages.len())
            .map(|i| current(i).map(|md| md.ctx.clone()))
            .collect();
        for (i, md) in fresh {
            pages[i] = Some(md.ctx.clone());
            if keep {
                let page = &placed.pages[i];
                self.unspilled.push((page.clone(), md.ctx.clone()));
                self.markdown.insert(page.source.path.clone(), md);
            }
        }
        Ok(pages)
    }

    /// Renders `jobs` (every page of the site when `complete`: then pages not among them
    /// are forgotten). Sources in `broken` (whose Markdown no longer reads) keep their last
    /// good HTML. Rendering and template errors go to `diagnostics`.
    pub fn render(
        &mut self,
        jobs: &[Job],
        env: &Env<'_>,
        complete: bool,
        broken: &[&Path],
        diagnostics: &mut Vec<Diagnostic>,
    ) -> Result<Rendered, Failure> {
        let progress = env.options.progress.as_deref();
        if let Some(progress) = progress {
            progress.start(jobs.len());
        }
        let cancel = &env.options.cancel;
        let site = object::SitePerThread::new(&env.tree.site, &env.tree.site_value);
        let render_job = |job: &Job, hash: u64| {
            let _counted = progress.map(Progress::counter);
            let reusable = self
                .rendered
                .get(&job.url)
                .is_some_and(|(last, _)| env.templates_broken || *last == hash);
            if reusable || cancel.is_cancelled() {
                return Outcome::Reused;
            }
            if env.write.is_some_and(|sink| sink.keep(&job.url, hash)) {
                return Outcome::Kept;
            }
            match render_one(job, env, hash, &site) {
                // Packing (when asked) is done here, on the render's workers, not in
                // `settle`'s single thread.
                Outcome::Rendered(html) => Outcome::Made(page(html, env.options)),
                other => other,
            }
        };
        // Pages somebody waits for go first (see `crate::wanted`). Each job's context
        // hash is taken on the worker that renders it, so such a page does not wait for
        // every page's hash first.
        let outcomes: Vec<(u64, Outcome)> = crate::wanted::run(
            jobs.len(),
            |i| jobs[i].url.as_str(),
            env.options.wanted.as_ref(),
            |i| {
                let job = &jobs[i];
                let hash = context_hash(job, env);
                (hash, render_job(job, hash))
            },
            |(_, outcome)| match outcome {
                Outcome::Made(resource) => Some(resource.clone()),
                _ => None,
            },
        );
        if cancel.is_cancelled() {
            return Err(Failure::Cancelled);
        }
        Ok(self.settle(jobs, outcomes, env.keep, complete, broken, diagnostics))
    }

    /// Takes in what the jobs came to: new HTML where they rendered, the last good HTML
    /// where they were reused or failed.
    #[allow(clippy::too_many_arguments)]
    fn settle(
        &mut self,
        jobs: &[Job],
        outcomes: Vec<(u64, Outcome)>,
        keep: bool,
        complete: bool,
        broken: &[&Path],
        diagnostics: &mut Vec<Diagnostic>,
    ) -> Rendered {
        let mut done = Rendered::default();
        let mut fresh: HashMap<String, (u64, Resource)> = HashMap::default();
        let mut failures = Failures::default();
        let last_good = |url: &str| self.rendered.get(url).cloned();
        for (job, (hash, outcome)) in jobs.iter().zip(outcomes) {
            if keep
                && matches!(outcome, Outcome::Rendered(_) | Outcome::Made(_))
                && let Some(source) = &job.source
            {
                self.url_of_source.insert(source.clone(), job.url.clone());
            }
            let kept = match outcome {
                Outcome::Reused => last_good(&job.url),
                Outcome::Failed(diagnostic, page) => {
                    failures.add(diagnostic, page);
                    last_good(&job.url)
                }
                Outcome::Written => {
                    done.rendered += 1;
                    done.written += 1;
                    None
                }
                Outcome::Kept => {
                    done.written += 1;
                    done.kept += 1;
                    None
                }
                // `render` makes every rendered page a resource on its workers.
                Outcome::Rendered(html) => {
                    done.rendered += 1;
                    Some((hash, Resource::html(html)))
                }
                Outcome::Made(resource) => {
                    done.rendered += 1;
                    if keep && let crate::output::Body::Packed(packed) = &resource.body {
                        self.unspilled_pages.push(packed.clone());
                    }
                    Some((hash, resource))
                }
            };
            if let Some((hash, resource)) = kept {
                done.pages.push((job.url.clone(), resource.clone()));
                if keep {
                    fresh.insert(job.url.clone(), (hash, resource));
                }
            }
        }
        diagnostics.extend(failures.reported());
        // A page whose Markdown no longer reads is served as it last built.
        for path in broken {
            if let Some(url) = self.url_of_source.get(*path)
                && !fresh.contains_key(url)
                && let Some((hash, resource)) = self.rendered.get(url)
            {
                done.pages.push((url.clone(), resource.clone()));
                fresh.insert(url.clone(), (*hash, resource.clone()));
            }
        }
        if complete {
            self.rendered = fresh;
        } else {
            self.rendered.extend(fresh);
        }
        done
    }
}

/// A rendered page as the output holds it: packed when the options ask.
fn page(html: String, options: &Options) -> Resource {
    if options.pack_pages {
        Resource::packed_html(&html)
    } else {
        Resource::html(html)
    }
}

/// A job's context hash: the same hash means the same HTML as last time. A one-shot
/// build in memory has nothing to compare with, and takes none.
fn context_hash(job: &Job, env: &Env<'_>) -> u64 {
    if !env.keep && env.write.is_none() {
        return 0;
    }
    let ctx = match &job.ctx {
        JobCtx::Page(i) => fingerprint(&env.tree.page_view(*i)),
        JobCtx::Section(ctx) => fingerprint(ctx),
        JobCtx::Plain => 0,
    };
    fingerprint(&(env.tree.site_hash, &job.url, &job.template, ctx))
}

/// Renders one job: its HTML (or where it was written), or why not. A panic in the
/// renderer is caught here and becomes this page's diagnostic.
fn render_one(job: &Job, env: &Env<'_>, hash: u64, site: &object::SitePerThread<'_>) -> Outcome {
    let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
        let own = match &job.ctx {
            JobCtx::Page(i) => Some(("page", object::page(env.tree.page_view(*i)))),
            JobCtx::Section(section) => Some(("section", object::section(section.clone()))),
            JobCtx::Plain => None,
        };
        let ctx = object::root(site.get(), job.url.clone(), own);
        let html = render_template(env, job, &ctx)?;
        Ok(match env.base_path {
            Some(base) => base_path::prefix(&html, base),
            None => html,
        })
    }))
    .unwrap_or_else(|panic| {
        let file = match &job.source {
            Some(path) => env.layout.display_path(path),
            None => PathBuf::from(&job.template),
        };
        let message = format!("the renderer panicked: {}", panic_message(&panic));
        Err(Diagnostic::error(file, message))
    });
    let page = || match &job.source {
        Some(path) => env.layout.display_path(path).display().to_string(),
        None => job.url.clone(),
    };
    match (result, env.write) {
        (Ok(html), Some(sink)) => match sink.write(&job.url, html.as_bytes(), hash) {
            Ok(()) => Outcome::Written,
            Err(error) => Outcome::Failed(
                Diagnostic::error(&job.url, format!("cannot write the page: {error}")),
                page(),
            ),
        },
        (Ok(html), None) => Outcome::Rendered(html),
        (Err(diagnostic), _) => Outcome::Failed(diagnostic, page()),
    }
}

/// The pages' failures, one diagnostic per distinct problem: a broken template fails
/// every page that uses it, and is reported once, at the template's file:line, with
/// how many pages it affects and which.
#[derive(Default)]
struct Failures {
    /// Each distinct diagnostic, in the order first met, with the pages it failed.
    distinct: Vec<(Diagnostic, Vec<String>)>,
    index: HashMap<Diagnostic, usize>,
}

impl Failures {
    /// Pages named in a diagnostic; the rest are counted.
    const NAMED: usize = 3;

    fn add(&mut self, diagnostic: Diagnostic, page: String) {
        match self.index.get(&diagnostic) {
            Some(&i) => self.distinct[i].1.push(page),
            None => {
                self.index.insert(diagnostic.clone(), self.distinct.len());
                self.distinct.push((diagnostic, vec![page]));
            }
        }
    }

    fn reported(self) -> impl Iterator<Item = Diagnostic> {
        self.distinct
            .into_iter()
            .map(|(mut diagnostic, mut pages)| {
                // A problem in the page's own file needs no page named.
                if pages.len() == 1 && Path::new(&pages[0]) == diagnostic.file {
                    return diagnostic;
                }
                pages.sort();
                let named = pages[..pages.len().min(Self::NAMED)].join(", ");
                let affects = match pages.len() {
                    1 => format!("affects {named}"),
                    n if n <= Self::NAMED => format!("affects {n} pages: {named}"),
                    n => format!("affects {n} pages: {named} and {} more", n - Self::NAMED),
                };
                diagnostic.message = format!("{} ({affects})", diagnostic.message);
                diagnostic
            })
    }
}

fn render_template(env: &Env<'_>, job: &Job, ctx: &Value) -> Result<String, Diagnostic> {
    let templates = env.templates;
    // The page that asked for it is named where failures are reported.
    let template = templates
        .env()
        .get_template(&job.template)
        .map_err(|e| templates.error(&e))?;
    template.render(ctx).map_err(|e| templates.error(&e))
}
