//! The one orchestrator: a [`Site`] runs the phases in order (load → tree → render →
//! assemble, and write for a build to disk) and keeps, between builds, what each one made,
//! so a rebuild after a few changed files redoes only what they affect:
//!
//! - changed Markdown is read and rendered again, and so are pages whose links point at
//!   pages that moved; every other page keeps its rendered Markdown;
//! - templates render again only the pages whose context changed (a hash of it), so a
//!   title edit re-renders the page and the listings that show it, not the site;
//! - a template edit re-renders every page without reading any Markdown again;
//! - a static file edit renders nothing;
//! - when only the bodies of existing pages changed and nothing other pages show of them
//!   (the fast path: the edit-save-look loop's common case), those pages alone are
//!   rendered against the rest of the site as the last build left it, through the same
//!   render path as everything else.
//!
//! A page that fails keeps being served as it last built well; its diagnostic stays until
//! it is fixed.

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use rustc_hash::FxHashMap as HashMap;

use crate::change::{ChangeKind, Changes, Plan};
use crate::check;
use crate::context::Summary;
use crate::load::layout::Layout;
use crate::load::{self, Parsed, ParsedFiles, Sources};
use crate::options::Options;
use crate::output::Output;
use crate::render::page::{self, CachedMarkdown};
use crate::render::templates::Templates;
use crate::render::{self, Env, RenderCache};
use crate::report::{BuildResult, Diagnostic, Failure, Reload, Report, panic_message};
use crate::tree::{self, Tree};
use crate::write::inputs::{self, Inputs, Record};
use crate::write::{Pages, Sink, WriteError, out_dir};

/// One site, built again and again.
#[derive(Debug)]
pub struct Site {
    root: PathBuf,
    options: Options,
    mode: Mode,
    /// What the last build made; `None` before the first build and after a failed one.
    state: Option<State>,
}

/// What a build keeps for the next one.
#[derive(Debug)]
enum Mode {
    /// Everything a rebuild can reuse (a development server).
    Incremental,
    /// Nothing: there is no next build. Markdown bodies are dropped once rendered, and
    /// pages go straight to `sink` when there is one, to keep a big build's peak memory
    /// down.
    OneShot {
        sink: Option<Arc<Pages>>,
        /// The process exits once this build is done ([`ToDisk::exits`]).
        exits: bool,
    },
}

/// Everything a build made that the next one may reuse, phase by phase.
#[derive(Debug)]
struct State {
    sources: Sources,
    templates: Templates,
    template_errors: Vec<Diagnostic>,
    /// Bumped whenever templates are reloaded: every page's context hash includes it.
    template_generation: u64,
    parsed: ParsedFiles,
    render: RenderCache,
    /// The last complete pass, for the fast path and for telling what changed.
    last: Option<Last>,
}

/// The site as the last complete pass (or fast path after it) left it.
#[derive(Debug)]
struct Last {
    tree: Tree,
    /// What Markdown links resolved against, and its hash.
    md_urls: HashMap<Arc<Path>, String>,
    links_hash: u64,
    /// Source path → index of its page in `tree`.
    page_index: HashMap<Arc<Path>, usize>,
    output: Arc<Output>,
    diagnostics: Vec<Diagnostic>,
    /// The pass's diagnostics but the link check's (with no errors among them when the
    /// fast path runs): they stand until the next full pass.
    kept_warnings: Vec<Diagnostic>,
    /// The link check's: a body edit that leaves its page's ids alone changes only that
    /// page's (the fast path checks its links alone).
    link_warnings: Vec<Diagnostic>,
}

/// What one pass made, before it is counted and reported.
#[derive(Debug)]
struct Pass {
    output: Arc<Output>,
    reload: Reload,
    diagnostics: Vec<Diagnostic>,
    rendered: usize,
    /// Pages that went to disk rather than into the output.
    written: usize,
    /// Of those, pages kept as the last build wrote them.
    kept: usize,
}

impl Site {
    /// A site rooted at `root`, not read yet: the first [`build`](Site::build) reads it.
    /// Paths given to later builds are matched against the canonical root.
    pub fn open(root: impl Into<PathBuf>, options: Options) -> Site {
        Site {
            root: root.into(),
            options,
            mode: Mode::Incremental,
            state: None,
        }
    }

    /// Waits until the last build's pages and their text are in the spill file
    /// ([`Options::spill`]), which is written apart from the build: for measures of
    /// what a site holds.
    pub fn wait_spilled(&mut self) {
        if let Some(state) = &mut self.state {
            state.render.wait_spilled();
        }
    }

    /// The root as given to [`open`](Site::open).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Whether any of `paths` (absolute, as a watcher reports them) can change the output:
    /// a source of the site rather than a hidden file, an editor's temp file, an output
    /// folder or an excluded path.
    pub fn affects_output(&self, paths: &[PathBuf]) -> bool {
        !self.plan_for(paths).changes.is_empty()
    }

    /// Builds the site, reusing what `changes` did not touch. A build never fails for a
    /// problem in the site (those are its diagnostics); it fails when it was cancelled or
    /// the builder itself panicked, and the next build then starts from scratch.
    pub fn build(&mut self, changes: Changes) -> Result<BuildResult, Failure> {
        let started = Instant::now();
        let pass = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let pass = self.pass(changes)?;
            if let Some(state) = &mut self.state {
                state
                    .render
                    .spill(self.options.spill.as_ref(), self.options.after_spill);
            }
            Ok(pass)
        }))
        .unwrap_or_else(|panic| Err(Failure::Panicked(panic_message(&panic))));
        match pass {
            Ok(pass) => Ok(finish(pass, started)),
            Err(failure) => {
                self.state = None;
                Err(failure)
            }
        }
    }

    fn plan_for(&self, paths: &[PathBuf]) -> Plan {
        match &self.state {
            Some(state) => {
                let layout = &state.sources.layout;
                let mut plan = Plan::of(paths, &layout.root, |path| layout.is_excluded(path));
                // A book's book.toml, SUMMARY.md, the files its chapters include, and
                // chapters coming or going (SUMMARY.md's entries are checked against them).
                if let Some(book) = &layout.book
                    && let Some(path) = paths.iter().find(|path| {
                        !layout.is_excluded(path)
                            && (crate::book::changes_everything(&layout.root, book, path)
                                || plan.changes.iter().any(|(kind, changed)| {
                                    changed == *path
                                        && *kind == ChangeKind::Markdown
                                        && (!path.is_file() || !state.parsed.contains(path))
                                }))
                    })
                {
                    plan.everything = true;
                    plan.changes.push((ChangeKind::Config, path.clone()));
                }
                plan
            }
            None => Plan::of(paths, &self.root, |path| {
                self.options.exclude.iter().any(|x| path.starts_with(x))
            }),
        }
    }

    fn pass(&mut self, changes: Changes) -> Result<Pass, Failure> {
        let plan = match changes {
            Changes::Paths(paths) if self.state.is_some() => self.plan_for(&paths),
            _ => Plan::everything(),
        };
        if let Some(pass) = self.fast_path(&plan)? {
            return Ok(pass);
        }
        let dirty = match self.refresh(&plan) {
            Ok(dirty) => dirty,
            Err(error) => {
                self.state = None;
                let message = format!("cannot open site root: {error}");
                return Ok(Pass {
                    output: Arc::default(),
                    reload: Reload::Full,
                    diagnostics: vec![Diagnostic::error(&self.root, message)],
                    rendered: 0,
                    written: 0,
                    kept: 0,
                });
            }
        };
        self.full_pass(&plan, &dirty)
    }

    /// Brings the state up to date with the file system: walks again what gained or lost
    /// files, reloads templates, forgets what changed. Returns the Markdown files whose
    /// contents must be read again.
    fn refresh(&mut self, plan: &Plan) -> io::Result<HashSet<PathBuf>> {
        let Some(state) = self.state.as_mut().filter(|_| !plan.everything) else {
            // Everything is read and rendered anew, but a page that fails now keeps
            // being served as it last built well, as after any other rebuild: the new
            // generation is in every context hash, so no old HTML is reused as current.
            let previous = self.state.take();
            let generation = previous.as_ref().map_or(0, |s| s.template_generation + 1);
            let render = previous.map_or_else(RenderCache::default, |s| s.render.last_good());
            let walk_started = Instant::now();
            let sources = Sources::discover(&self.root, &self.options.exclude)?;
            tracing::debug!(
                walk_us = walk_started.elapsed().as_micros(),
                markdown = sources.markdown.len(),
                "walked"
            );
            let (templates, template_errors) = load_templates(&sources, &self.options);
            self.state = Some(State {
                sources,
                templates,
                template_errors,
                template_generation: generation,
                parsed: ParsedFiles::default(),
                render,
                last: None,
            });
            return Ok(HashSet::new());
        };
        let mut dirty = HashSet::new();
        let (mut rewalk_content, mut rewalk_static, mut reload_templates) = (false, false, false);
        for (kind, path) in &plan.changes {
            match kind {
                ChangeKind::Markdown => {
                    if !state.parsed.contains(path) || !path.is_file() {
                        rewalk_content = true;
                    }
                    dirty.insert(path.clone());
                }
                ChangeKind::Asset => rewalk_content = true,
                ChangeKind::Static => rewalk_static = true,
                ChangeKind::Template => reload_templates = true,
                ChangeKind::Config | ChangeKind::Root | ChangeKind::Ignored => {}
            }
        }
        if rewalk_content {
            state.sources.rewalk_content();
            state.parsed.retain_present(&state.sources);
            state.render.retain_present(&state.sources);
        }
        if rewalk_static {
            state.sources.rewalk_static();
        }
        if reload_templates {
            state.sources.layout.refresh_dirs();
            (state.templates, state.template_errors) =
                load_templates(&state.sources, &self.options);
            state.template_generation += 1;
            // Shortcodes are expanded as pages are read: a shortcode template's change
            // means reading every page again.
            let shortcodes = state
                .sources
                .layout
                .templates_dir
                .as_ref()
                .map(|d| d.join("shortcodes"));
            let touched = plan.changes.iter().any(|(kind, path)| {
                *kind == ChangeKind::Template
                    && shortcodes.as_ref().is_some_and(|dir| path.starts_with(dir))
            });
            if touched && state.sources.layout.flavor != crate::load::layout::Flavor::Sited {
                dirty.extend(state.sources.markdown.iter().map(|s| s.path.to_path_buf()));
            }
        }
        for path in &dirty {
            state.parsed.forget(path);
            state.render.forget(path);
        }
        Ok(dirty)
    }

    /// Every phase over the whole site, reusing whatever is unchanged.
    fn full_pass(&mut self, plan: &Plan, dirty: &HashSet<PathBuf>) -> Result<Pass, Failure> {
        let keep = matches!(self.mode, Mode::Incremental);
        let options = &self.options;
        let state = self.state.as_mut().expect("refreshed");
        let mut diagnostics: Vec<Diagnostic> = state
            .sources
            .diagnostics()
            .chain(&state.template_errors)
            .cloned()
            .collect();
        if state.sources.markdown.is_empty() {
            diagnostics.push(no_content(&state.sources.layout));
        }
        // Load, then the tree's URLs, then Markdown (links need every URL).
        // Where a full pass's time goes (`SITED_LOG=sited_builder=debug`).
        let started = Instant::now();
        let stamping = match self.mode {
            Mode::OneShot { .. } => load::Stamping::Opened,
            Mode::Incremental => load::Stamping::None,
        };
        state
            .parsed
            .read_new(&state.sources, stamping, &options.cancel)?;
        let read_at = Instant::now();
        let (pages, broken) = state
            .parsed
            .pages(&state.sources, options.drafts, &mut diagnostics);
        let placed = tree::place(pages, &state.sources.layout, &mut diagnostics);
        let md_urls = placed.md_urls();
        let links_hash = placed.links_hash();
        let placed_at = Instant::now();
        let contexts = state
            .render
            .markdown(&placed, &md_urls, links_hash, dirty, options, keep)?;
        let markdown_at = Instant::now();
        if !keep {
            placed.pages.iter().for_each(|page| page.drop_body());
        }
        // The tree's listings (they need titles from Markdown), then templates.
        let layout = &state.sources.layout;
        let has_custom_css = state.sources.has_custom_css();
        let tree = tree::arrange(
            placed,
            contexts,
            layout,
            has_custom_css,
            // The generation tells a reload from the last (in memory); the fingerprint
            // tells these templates from another run's (a one-shot build's generation is
            // always 0).
            crate::context::fingerprint(&(
                state.template_generation,
                state.templates.fingerprint(),
            )),
        );
        let sink = match &self.mode {
            Mode::OneShot {
                sink: Some(sink), ..
            } => Some(sink.as_ref() as &dyn render::PageSink),
            _ => None,
        };
        let base_path = published_base_path(layout, keep, sink.is_some(), &mut diagnostics);
        let env = Env {
            tree: &tree,
            templates: &state.templates,
            templates_broken: !state.template_errors.is_empty(),
            layout,
            options,
            keep,
            write: sink,
            base_path: base_path.as_deref(),
        };
        let jobs = render::jobs(&tree);
        let arranged_at = Instant::now();
        if let Some(wanted) = &options.wanted {
            let sources = &state.sources;
            wanted.files_from(
                (sources.assets.iter().chain(&sources.statics))
                    .map(|s| (crate::url::file_url(&s.rel), s.path.to_path_buf())),
            );
            wanted.stage(crate::wanted::Stage::Render);
        }
        // The sitemap (every page's URL) is made beside the pages, not after them: it
        // was a serial tail of every build.
        let (rendered, sitemap) = rayon::join(
            || (state.render).render(&jobs, &env, true, &broken, &mut diagnostics),
            || crate::assemble::sitemap(&jobs, &tree, &layout.config.base_url),
        );
        let rendered = rendered?;
        if let Some(wanted) = &options.wanted {
            wanted.rendered(&rendered.pages);
            wanted.stage(crate::wanted::Stage::Rendered);
        }
        let rendered_at = Instant::now();
        let mut output = crate::assemble::output(
            &tree,
            &state.sources,
            rendered.pages,
            sitemap,
            &mut diagnostics,
        );
        if let Some(book) = &layout.book {
            for (url, path) in book.css.iter().chain(&book.js) {
                match crate::output::Resource::file(path.clone()) {
                    Ok(resource) => {
                        output.resources.insert(url.clone(), resource);
                    }
                    Err(error) => diagnostics.push(Diagnostic::error(
                        layout.display_path(path),
                        format!("cannot read: {error}"),
                    )),
                }
            }
            for (url, target) in book.redirects(&md_urls) {
                let page = crate::book::redirect_page(&target);
                output
                    .resources
                    .insert(url, crate::output::Resource::html(page));
            }
        }
        // Pages written straight to disk are not in the output: the jobs name them all.
        let made: HashSet<&str> = output
            .resources
            .keys()
            .chain(jobs.iter().map(|job| &job.url))
            .map(String::as_str)
            .collect();
        let links = check::links(&tree, layout, &|url| made.contains(url));
        drop(made);
        drop(jobs);
        let kept_warnings = diagnostics.clone();
        diagnostics.extend(links.iter().cloned());
        if options.strict || layout.config.strict {
            check::strict(&mut diagnostics);
        }
        let checked_at = Instant::now();
        tracing::debug!(
            read_us = (read_at - started).as_micros(),
            place_us = (placed_at - read_at).as_micros(),
            markdown_us = (markdown_at - placed_at).as_micros(),
            arrange_us = (arranged_at - markdown_at).as_micros(),
            render_us = (rendered_at - arranged_at).as_micros(),
            assemble_check_us = (checked_at - rendered_at).as_micros(),
            "full pass"
        );
        let output = Arc::new(output);
        let reload = reload(plan, state.last.as_ref(), &output, layout);
        state.last = if keep {
            Some(Last {
                page_index: tree.page_index(),
                tree,
                md_urls,
                links_hash,
                output: output.clone(),
                diagnostics: diagnostics.clone(),
                kept_warnings,
                link_warnings: links,
            })
        } else {
            let exits = matches!(self.mode, Mode::OneShot { exits: true, .. });
            let_go((tree, md_urls), exits);
            None
        };
        Ok(Pass {
            output,
            reload,
            diagnostics,
            rendered: rendered.rendered,
            written: rendered.written,
            kept: rendered.kept,
        })
    }

    /// The edit-save-look loop's common case: only the bodies of existing pages changed,
    /// and nothing other pages show of them (title, summary, date, tags, ...). Then only
    /// those pages are rendered, against the rest of the site as the last pass left it.
    /// `None` whenever that does not hold; the full pass then does the work.
    fn fast_path(&mut self, plan: &Plan) -> Result<Option<Pass>, Failure> {
        let Some(state) = &mut self.state else {
            return Ok(None);
        };
        let Some(last) = &mut state.last else {
            return Ok(None);
        };
        // With errors about, the full pass sorts out which are fixed.
        if !state.template_errors.is_empty() || last.diagnostics.iter().any(|d| d.is_error()) {
            return Ok(None);
        }
        // Where an edit's time goes (`SITED_LOG=sited_builder=debug`): bench/'s
        // reload-latency harness reads these.
        let started = Instant::now();
        let Some(updates) = body_edits(plan, last, &state.sources.layout) else {
            return Ok(None);
        };
        let markdown_done = Instant::now();
        let mut pages = Vec::with_capacity(updates.len());
        // Whether every edited page keeps its ids: then no other page's links change.
        let mut same_ids = true;
        for (i, parsed, markdown) in updates {
            same_ids &= last.tree.pages[i]
                .as_ref()
                .is_some_and(|old| old.anchors == markdown.ctx.anchors);
            last.tree
                .replace_page(i, parsed.clone(), markdown.ctx.clone());
            state.render.remember(&parsed, markdown);
            state.parsed.insert(parsed);
            pages.push(i);
        }
        let env = Env {
            tree: &last.tree,
            templates: &state.templates,
            templates_broken: false,
            layout: &state.sources.layout,
            options: &self.options,
            keep: true,
            write: None,
            base_path: None,
        };
        let jobs: Vec<render::Job> = pages
            .iter()
            .map(|&i| render::page_job(&last.tree, i))
            .collect();
        let mut diagnostics = Vec::new();
        let rendered = state
            .render
            .render(&jobs, &env, false, &[], &mut diagnostics)?;
        drop(jobs);
        let rendered_at = Instant::now();
        // Edited in place when nobody else holds the last output (the daemon lets go of
        // it once it has published it): the edit costs its pages, not a copy of the
        // site's map (70-100 ms at 100k pages).
        let output = Arc::make_mut(&mut last.output);
        let mut urls = Vec::new();
        for (url, resource) in rendered.pages {
            if output.get(&url).is_none_or(|old| !old.same_as(&resource)) {
                urls.push(url.clone());
            }
            output.resources.insert(url, resource);
        }
        urls.sort_unstable();
        let output_at = Instant::now();
        // A body edit can add or mend links, or take away the ids others link to: the
        // edited pages' links are checked again, and every page's when an edit changed
        // its page's ids (lookups only, no rendering). No URL comes or goes.
        let layout = &state.sources.layout;
        let exists = |url: &str| output.get(url).is_some();
        let links = if same_ids {
            let edited: HashSet<PathBuf> = pages
                .iter()
                .map(|&i| layout.display_path(&last.tree.source(i).source.path))
                .collect();
            let mut links: Vec<Diagnostic> = last
                .link_warnings
                .iter()
                .filter(|d| !edited.contains(&d.file))
                .cloned()
                .collect();
            links.extend(check::links_of(&last.tree, layout, &exists, pages));
            links
        } else {
            check::links(&last.tree, layout, &exists)
        };
        diagnostics.splice(0..0, last.kept_warnings.iter().cloned());
        diagnostics.extend(links.iter().cloned());
        last.link_warnings = links;
        if self.options.strict || state.sources.layout.config.strict {
            check::strict(&mut diagnostics);
        }
        last.diagnostics.clone_from(&diagnostics);
        tracing::debug!(
            markdown_us = (markdown_done - started).as_micros(),
            render_us = (rendered_at - markdown_done).as_micros(),
            output_us = (output_at - rendered_at).as_micros(),
            links_us = output_at.elapsed().as_micros(),
            "fast path"
        );
        Ok(Some(Pass {
            output: last.output.clone(),
            reload: changed(urls),
            diagnostics,
            rendered: rendered.rendered,
            written: 0,
            kept: 0,
        }))
    }
}

/// A page whose body alone changed: its index in the tree, its new source and Markdown.
type BodyEdit = (usize, Arc<Parsed>, CachedMarkdown);

/// The changed pages when `plan` holds only edits of existing pages' bodies that leave
/// unchanged everything other pages show of them; `None` otherwise.
fn body_edits(plan: &Plan, last: &Last, layout: &Layout) -> Option<Vec<BodyEdit>> {
    if plan.everything || plan.changes.is_empty() {
        return None;
    }
    let mut edits = Vec::with_capacity(plan.changes.len());
    for (kind, path) in &plan.changes {
        let &i = last
            .page_index
            .get(path.as_path())
            .filter(|_| *kind == ChangeKind::Markdown)?;
        let old = last.tree.source(i);
        let parsed = load::parse(layout, old.source.clone(), load::Stamping::None).ok()?;
        if parsed.fm != old.fm || *parsed.extra != *old.extra || !parsed.diagnostics.is_empty() {
            return None;
        }
        // Shortcode warnings are the site's (one per name, counted): a full pass.
        if parsed.missing_shortcodes != old.missing_shortcodes || parsed.warnings != old.warnings {
            return None;
        }
        let url = &last.tree.placed.urls[i];
        let markdown = page::render(&parsed, url, &last.md_urls, last.links_hash);
        if last.tree.summaries[i].as_deref() != Some(&Summary::of(&markdown.ctx)) {
            return None;
        }
        edits.push((i, Arc::new(parsed), markdown));
    }
    Some(edits)
}

/// The path every link of a one-shot build goes under (`/docs` of `base_url`
/// `https://example.org/docs/`); the development server (`keep`) serves the site at its
/// root. A build written to disk without an absolute `base_url` is warned about, once.
fn published_base_path(
    layout: &Layout,
    keep: bool,
    to_disk: bool,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<String> {
    let base_url = &layout.config.base_url;
    if to_disk && !render::base_path::is_absolute(base_url) {
        diagnostics.push(render::base_path::relative_urls_warning(
            base_url,
            &layout.base_url_setting(),
        ));
    }
    if keep {
        None
    } else {
        render::base_path::of(base_url)
    }
}

/// The warning of a site with no Markdown at all: it would serve an empty home page and
/// a 404 page, which looks like success.
fn no_content(layout: &Layout) -> Diagnostic {
    let dir = layout.display_path(&layout.content_dir);
    let dir = if dir.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        dir
    };
    let message = "no content: there are no Markdown (.md) files here, so the site is only \
                   an empty home page";
    Diagnostic::warning(dir, message)
}

fn load_templates(sources: &Sources, options: &Options) -> (Templates, Vec<Diagnostic>) {
    let mut errors = Vec::new();
    let layout = &sources.layout;
    let templates = Templates::load(
        layout.templates_dir.as_deref(),
        &layout.root,
        options.test_panic_function,
        &mut errors,
    );
    (templates, errors)
}

/// What a browser must do after a complete pass made `output`, the last one having left
/// `last`.
fn reload(plan: &Plan, last: Option<&Last>, output: &Output, layout: &Layout) -> Reload {
    match last {
        _ if plan.everything => Reload::Full,
        None => Reload::Full,
        Some(last) => match plan.stylesheets(&layout.root, &layout.content_dir) {
            Some(urls) => Reload::Styles(urls),
            None => changed(output.changed_since(&last.output)),
        },
    }
}

/// What a browser must do when `urls` changed.
fn changed(urls: Vec<String>) -> Reload {
    if urls.is_empty() {
        Reload::Nothing
    } else {
        Reload::Pages(urls)
    }
}

/// Counts a pass and sorts its diagnostics.
fn finish(pass: Pass, started: Instant) -> BuildResult {
    let in_memory = pass
        .output
        .resources
        .values()
        .filter(|r| r.is_html())
        .count();
    let mut diagnostics = pass.diagnostics;
    diagnostics.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
    BuildResult {
        report: Report {
            pages: in_memory + pass.written,
            files: pass.output.resources.len() - in_memory,
            rendered: pass.rendered,
            kept: pass.kept,
            duration: started.elapsed(),
            diagnostics,
            up_to_date: false,
        },
        output: pass.output,
        reload: pass.reload,
    }
}

/// Frees `value` on a thread of its own: a one-shot build's tree and sources are
/// thousands of small allocations, and freeing them on the thread that goes on to write
/// and publish the output made that a serial tail of the build.
fn drop_aside<T: Send + 'static>(value: T) {
    std::thread::spawn(move || drop(value));
}

/// Lets go of what a one-shot build no longer needs: freed aside ([`drop_aside`]), or,
/// when the process `exits` right after the build, left for the exit to reclaim at once
/// (as clang's `-disable-free` does): freeing a tldr build's tree and sources piece by
/// piece was 2.4% of its CPU. Nothing in them does more on drop than free memory (the
/// spill files are unlinked from the start).
fn let_go<T: Send + 'static>(value: T, exits: bool) {
    match exits {
        true => std::mem::forget(value),
        false => drop_aside(value),
    }
}

/// Builds the site at `root` once, in memory, keeping nothing for a rebuild.
pub fn build_once(root: &Path, options: Options) -> Result<BuildResult, Failure> {
    let mut site = Site {
        mode: Mode::OneShot {
            sink: None,
            exits: false,
        },
        ..Site::open(root, options)
    };
    site.build(Changes::Everything)
}

/// Builds the site at `root` once into `out`, and only if the build has no errors
/// (otherwise `out` is left as it was): an earlier output is rewritten in place (only the
/// files that changed), a fresh one written whole ([`build_to_with`] for the whole-tree
/// swap always). Pages are written as they are rendered rather than held in memory; the
/// returned output holds the files that were not pages, and its report counts everything.
///
/// `out` must be a directory sited may write ([`out_dir::check`]): anything else is
/// refused before the build starts. `home` is the user's home directory, never replaced.
pub fn build_to(
    root: &Path,
    options: Options,
    out: &Path,
    home: Option<&Path>,
) -> Result<BuildResult, WriteError> {
    build_to_with(root, options, out, home, ToDisk::default())
}

/// How [`build_to_with`] treats the output.
#[derive(Debug, Clone, Copy, Default)]
pub struct ToDisk {
    /// The output is written whole beside `out` and swapped in by one rename, so `out`
    /// holds the previous build or the new one, never a mix.
    pub atomic: bool,
    /// Build even when nothing the output depends on changed since the build that made
    /// it (otherwise that is found out first and nothing is built: [`inputs`]).
    pub force: bool,
    /// The process exits once the build is written (`sited build`): what the build held
    /// is left for the exit to reclaim rather than freed piece by piece. Off in anything
    /// that lives on (a test, a daemon): it would leak the build's memory.
    pub exits: bool,
}

/// [`build_to`], as `how` says.
pub fn build_to_with(
    root: &Path,
    options: Options,
    out: &Path,
    home: Option<&Path>,
    how: ToDisk,
) -> Result<BuildResult, WriteError> {
    let started = Instant::now();
    let layout = Layout::discover(root, &options.exclude, &mut Vec::new())
        .map_err(out_dir::CheckError::Io)?;
    let folders = out_dir::SiteFolders {
        root: layout.root.clone(),
        content: layout.content_dir.clone(),
        static_dir: layout.static_dir.clone(),
        templates: layout.templates_dir.clone(),
    };
    let target = out_dir::check(&folders, out, home)?;
    let checked_at = Instant::now();
    let last = Record::read(&target);
    // Taken before the build reads anything (a page: before its bytes are read): a file
    // saved while it runs shows as changed next time. With no record to compare with,
    // pages are stamped as the build opens them.
    let compared = !how.force && last.is_some();
    let pages = inputs::Read::for_site(&layout, compared);
    let mut inputs = Inputs::take(&layout, &options, &target, pages);
    let stamped_at = Instant::now();
    if !how.force
        && let (Some(inputs), Some(last)) = (&inputs, &last)
        && let Some(report) = last.up_to_date(&target, inputs, started)
    {
        return Ok(BuildResult {
            output: Arc::default(),
            reload: Reload::Full,
            report,
        });
    }
    let last_pages = match (&inputs, last) {
        (Some(inputs), Some(last)) if !how.force => last.page_hashes(inputs),
        _ => Default::default(),
    };
    let pages = Arc::new(Pages::new(Sink::open(&target, how.atomic)?, last_pages));
    let mut site = Site {
        mode: Mode::OneShot {
            sink: Some(pages.clone()),
            exits: how.exits,
        },
        ..Site::open(root, options)
    };
    let opened_at = Instant::now();
    let built = site.build(Changes::Everything);
    let built_at = Instant::now();
    // The site's sources and tree are freed beside the publishing, not before it: on
    // the one thread that publishes they were a serial tail of every build.
    site.mode = Mode::Incremental;
    let opened: Vec<(Arc<Path>, load::FileStamp)> = match &site.state {
        Some(state) => (state.parsed.opened())
            .map(|(path, stamp)| (path.clone(), stamp))
            .collect(),
        None => Vec::new(),
    };
    let_go(site, how.exits);
    let (sink, page_hashes) = Arc::into_inner(pages)
        .expect("the build let go of its sink")
        .into_parts();
    let built = match built {
        Ok(built) => built,
        Err(failure) => {
            sink.discard();
            return Err(failure.into());
        }
    };
    if built.report.has_errors() {
        sink.discard();
        return Ok(built);
    }
    let publish = || {
        let published = sink
            .write_rest(&built.output)
            .map_err(WriteError::from)
            .and_then(|()| Ok(inputs::forget(&target)?));
        match published {
            Ok(()) => sink.publish(),
            Err(error) => {
                sink.discard();
                Err(error)
            }
        }
    };
    // The record is made while the output is published (it was a serial tail), and
    // written only once it is.
    let encode = || {
        let mut inputs = inputs.take()?;
        inputs.settle(
            &layout.root,
            opened.iter().map(|(path, stamp)| (&**path, *stamp)),
        );
        Some(inputs::encode(inputs, page_hashes, &built.report))
    };
    let (published, encoded) = rayon::join(publish, encode);
    published?;
    // Without the record the next build runs whole: a cost, never a stale page.
    let recorded = match encoded {
        Some(Ok(Some(encoded))) => inputs::write_record(&target, &encoded),
        Some(Err(error)) => Err(error),
        Some(Ok(None)) | None => Ok(()),
    };
    if let Err(error) = recorded {
        tracing::warn!(%error, "cannot record the build's inputs");
    }
    tracing::debug!(
        check_us = (checked_at - started).as_micros(),
        stamp_us = (stamped_at - checked_at).as_micros(),
        open_us = (opened_at - stamped_at).as_micros(),
        build_us = (built_at - opened_at).as_micros(),
        publish_us = built_at.elapsed().as_micros(),
        "one-shot build"
    );
    Ok(built)
}

/// Memory accounting for bench/ (issue 17.3), apart from the build logic.
impl Site {
    /// Bench-only: drops the parts of what is kept between builds one at a time, calling
    /// `after` with each part's name once it is gone, so a harness counting live heap
    /// bytes can tell what each holds (bench/src/bin/memory-parts.rs). The site builds
    /// from scratch afterwards.
    #[doc(hidden)]
    pub fn measure_parts(&mut self, mut after: impl FnMut(&str)) {
        let Some(state) = self.state.take() else {
            return;
        };
        let State {
            sources,
            templates,
            template_errors,
            parsed,
            render,
            last,
            ..
        } = state;
        drop(template_errors);
        drop(templates);
        after("templates");
        if let Some(last) = last {
            let Last {
                tree,
                md_urls,
                page_index,
                output,
                diagnostics,
                kept_warnings,
                ..
            } = last;
            drop((md_urls, page_index, diagnostics, kept_warnings));
            after("last: urls, index, diagnostics");
            let Tree {
                placed,
                pages,
                summaries,
                site_value,
                ..
            } = tree;
            drop(summaries);
            after("tree: summaries");
            drop(pages);
            after("tree: page contexts");
            drop(placed);
            after("tree: placed");
            drop(site_value);
            after("tree: the rest");
            drop(output);
            after("last: output");
        }
        let (markdown, rendered, url_of_source) = render.into_parts();
        drop(markdown);
        after("render cache: each page's Markdown and context");
        drop(rendered);
        after("render cache: each page's last HTML");
        drop(url_of_source);
        after("render cache: the rest");
        drop(parsed);
        after("parsed files");
        drop(sources);
        after("sources");
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;
    use crate::output::Body;

    /// A site in a temp dir and its incremental builder.
    struct TestSite {
        dir: tempfile::TempDir,
        site: Site,
    }

    impl TestSite {
        fn new(files: &[(&str, &str)]) -> TestSite {
            TestSite::with_options(files, Options::default())
        }

        fn with_options(files: &[(&str, &str)], options: Options) -> TestSite {
            let dir = tempfile::tempdir().unwrap();
            for (rel, text) in files {
                let path = dir.path().join(rel);
                fs::create_dir_all(path.parent().unwrap()).unwrap();
                fs::write(path, text).unwrap();
            }
            let root = dir.path().canonicalize().unwrap();
            TestSite {
                dir,
                site: Site::open(root, options),
            }
        }

        fn path(&self, rel: &str) -> PathBuf {
            self.dir.path().canonicalize().unwrap().join(rel)
        }

        fn write(&self, rel: &str, text: &str) -> PathBuf {
            let path = self.path(rel);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(&path, text).unwrap();
            path
        }

        fn build(&mut self, changes: &[PathBuf]) -> (Arc<Output>, Report) {
            let built = self.built(changes);
            (built.output, built.report)
        }

        fn built(&mut self, changes: &[PathBuf]) -> BuildResult {
            let changes = if changes.is_empty() {
                Changes::Everything
            } else {
                Changes::Paths(changes.to_vec())
            };
            self.site.build(changes).expect("the build ran")
        }
    }

    fn html(output: &Output, url: &str) -> String {
        match &output
            .get(url)
            .unwrap_or_else(|| panic!("{url} not built"))
            .body
        {
            Body::Memory(bytes) => String::from_utf8(bytes.to_vec()).unwrap(),
            Body::Packed(packed) => String::from_utf8(packed.unpack().unwrap().to_vec()).unwrap(),
            Body::File(path) => fs::read_to_string(path).unwrap(),
        }
    }

    fn blog() -> TestSite {
        TestSite::new(&[
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

    /// A server's build (pages packed, a spill file): pages, their Markdown and their
    /// rendered Markdown go to the file (the text apart from the build, for this many
    /// pages), and rebuilds read them back: a template change renders every page from
    /// its spilled Markdown, a new page (every link's target may move) renders the
    /// Markdown again from the spilled source.
    #[test]
    fn a_server_build_spills_pages_and_text_and_renders_again_from_them() {
        let spill_dir = tempfile::tempdir().unwrap();
        let spill = crate::output::Spill::create(spill_dir.path()).unwrap();
        let count = crate::render::SPILL_APART + 20;
        let mut files: Vec<(String, String)> = (0..count)
            .map(|i| {
                let next = (i + 1) % count;
                let page =
                    format!("+++\ntitle = \"P{i}\"\n+++\nPage {i} body, [next](p{next}.md).\n");
                (format!("content/p{i}.md"), page)
            })
            .collect();
        files.push((
            "templates/page.html".into(),
            "<main>{{ page.content|safe }}</main>".into(),
        ));
        let borrowed: Vec<(&str, &str)> = files
            .iter()
            .map(|(p, t)| (p.as_str(), t.as_str()))
            .collect();
        let mut site = TestSite::with_options(
            &borrowed,
            Options {
                pack_pages: true,
                spill: Some(spill.clone()),
                ..Options::default()
            },
        );
        let (output, report) = site.build(&[]);
        assert!(report.diagnostics.is_empty(), "{:?}", report.diagnostics);
        site.site.wait_spilled();
        let spilled = |site: &TestSite, i: usize| {
            let state = site.site.state.as_ref().unwrap();
            let path = site.path(&format!("content/p{i}.md"));
            let body = state
                .parsed
                .get(&path)
                .unwrap()
                .as_ref()
                .unwrap()
                .body
                .is_spilled();
            let last = state.last.as_ref().unwrap();
            let index = last.page_index[path.as_path()];
            let content = last.tree.pages[index]
                .as_ref()
                .unwrap()
                .content
                .is_spilled();
            (body, content)
        };
        assert_eq!(
            spilled(&site, 7),
            (true, true),
            "source and rendered Markdown"
        );
        assert!(matches!(&output.get("/p7/").unwrap().body, Body::Packed(p) if p.is_spilled()));
        let (held, _) = spill.usage();
        assert!(held > 0);

        // A template change: every page again, from its spilled rendered Markdown.
        let template = site.write(
            "templates/page.html",
            "<article>{{ page.content|safe }}</article>",
        );
        let (output, _) = site.build(&[template]);
        let page = html(&output, "/p7/");
        assert!(page.starts_with("<article><p>Page 7 body"), "{page}");
        assert!(page.contains(r#"href="/p8/""#), "{page}");

        // A new page: links resolve anew, so Markdown renders again from the source.
        let new = site.write("content/new.md", "+++\ntitle = \"New\"\n+++\nNew.\n");
        let (output, report) = site.build(&[new]);
        assert!(report.diagnostics.is_empty(), "{:?}", report.diagnostics);
        let page = html(&output, "/p9/");
        assert!(page.starts_with("<article><p>Page 9 body"), "{page}");
        assert!(html(&output, "/new/").contains("New."));
        site.site.wait_spilled();
        assert_eq!(spilled(&site, 9), (true, true));
    }

    /// Titles sort regardless of case, ASCII or not: a capital does not put a page
    /// first, nor does an accent put it last.
    #[test]
    fn a_listing_is_in_title_order_whatever_the_case() {
        let titles = [
            "Zebra",
            "apple",
            "mango",
            "ÉCLAIR",
            "Banana",
            "éclair-2",
            "date",
        ];
        let mut files: Vec<(String, String)> = (titles.iter().enumerate())
            .map(|(i, title)| {
                let page = format!("+++\ntitle = \"{title}\"\n+++\nText.\n");
                (format!("content/p{i}.md"), page)
            })
            .collect();
        files.push((
            "templates/index.html".into(),
            "{% for p in section.pages %}{{ p.title }}|{% endfor %}".into(),
        ));
        let files: Vec<(&str, &str)> = files
            .iter()
            .map(|(p, t)| (p.as_str(), t.as_str()))
            .collect();
        let mut site = TestSite::new(&files);
        let (output, report) = site.build(&[]);
        assert!(report.diagnostics.is_empty(), "{:?}", report.diagnostics);
        assert_eq!(
            html(&output, "/"),
            "apple|Banana|date|mango|Zebra|ÉCLAIR|éclair-2|"
        );
    }

    #[test]
    fn first_build_renders_everything() {
        let mut site = blog();
        let (output, report) = site.build(&[]);
        assert!(report.diagnostics.is_empty(), "{:?}", report.diagnostics);
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
    fn a_body_edit_lets_go_of_the_pages_old_context() {
        let mut site = blog();
        site.build(&[]);
        let a = site.path("content/posts/a.md");
        let context = |site: &TestSite| {
            let last = site.site.state.as_ref().unwrap().last.as_ref().unwrap();
            last.tree.pages[last.page_index[a.as_path()]]
                .clone()
                .unwrap()
        };
        let old = Arc::downgrade(&context(&site));
        // Alpha is dated: the site's recent pages list it, as its section does.
        let last = site.site.state.as_ref().unwrap().last.as_ref().unwrap();
        let listed = |ctx: &Arc<crate::context::PageCtx>| {
            last.tree.site.recent_pages.iter().any(|s| s.is_of(ctx))
        };
        assert!(listed(&old.upgrade().unwrap()));
        let change = site.write(
            "content/posts/a.md",
            "+++\ntitle = \"Alpha\"\ndate = 2026-01-01\n+++\nAlpha body. See [b](b.md#part).\n\nMore.\n",
        );
        let (_, report) = site.build(&[change]);
        assert_eq!(report.rendered, 1, "the fast path");
        // Summaries and the recent pages read the new context; nothing keeps the old.
        assert!(old.upgrade().is_none(), "the old context is still held");
        let new = context(&site);
        let last = site.site.state.as_ref().unwrap().last.as_ref().unwrap();
        assert!(last.tree.site.recent_pages.iter().any(|s| s.is_of(&new)));
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
    fn the_themes_icon_is_served_until_static_replaces_it() {
        let mut site = blog();
        let (output, _) = site.build(&[]);
        let icon = output
            .get(crate::theme::FAVICON_URL)
            .expect("the theme's icon");
        assert_eq!(&*icon.content_type, "image/svg+xml");
        assert_eq!(html(&output, "/favicon.svg"), crate::theme::FAVICON);
        assert!(html(&output, "/").contains(r#"<link rel="icon" href="/favicon.svg""#));
        let change = site.write("static/favicon.svg", "<svg>mine</svg>");
        let (output, _) = site.build(&[change]);
        assert_eq!(html(&output, "/favicon.svg"), "<svg>mine</svg>");
    }

    #[test]
    fn edits_in_static_well_known_are_published() {
        let mut site = blog();
        site.build(&[]);
        let change = site.write("static/.well-known/security.txt", "Contact: a");
        assert!(site.site.affects_output(std::slice::from_ref(&change)));
        let (output, _) = site.build(&[change]);
        assert_eq!(html(&output, "/.well-known/security.txt"), "Contact: a");
        let hidden = site.write("static/.well-known/.secret", "SECRET");
        assert!(!site.site.affects_output(std::slice::from_ref(&hidden)));
        let (output, _) = site.build(&[]);
        assert!(output.get("/.well-known/.secret").is_none());
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
            site.path("content/posts/c.md"),
            site.path("content/posts/cee.md"),
        ];
        let (output, report) = site.build(&changes);
        assert!(report.diagnostics.is_empty(), "{:?}", report.diagnostics);
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
        let (output, _) = site.build(&[site.path("content/posts/d.md")]);
        assert!(output.get("/posts/d/").is_none());
        assert!(!html(&output, "/posts/").contains("Delta"));
    }

    #[test]
    fn a_broken_page_keeps_its_last_good_html() {
        let mut site = blog();
        site.build(&[]);
        let change = site.write("content/posts/c.md", "+++\ntitle = \"Gamma\n+++\nbroken\n");
        let (output, report) = site.build(&[change]);
        assert_eq!(report.diagnostics.len(), 1);
        assert_eq!(
            report.diagnostics[0].file,
            PathBuf::from("content/posts/c.md")
        );
        assert_eq!(report.diagnostics[0].line, Some(2));
        assert!(
            html(&output, "/posts/c/").contains("Gamma body."),
            "last good version served"
        );

        let fixed = site.write(
            "content/posts/c.md",
            "+++\ntitle = \"Gamma\"\n+++\nFixed.\n",
        );
        let (output, report) = site.build(&[fixed]);
        assert!(report.diagnostics.is_empty());
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
        assert_eq!(report.diagnostics.len(), 1, "{:?}", report.diagnostics);
        assert_eq!(
            report.diagnostics[0].file,
            PathBuf::from("templates/page.html")
        );
        assert_eq!(report.diagnostics[0].line, Some(1));
        assert_eq!(
            html(&output, "/posts/c/"),
            "<main>Gamma</main>",
            "the site's own design stays"
        );
    }

    /// S25: a page above the size limit fails alone, with its size and how to raise the
    /// limit; the rest of the site builds. The limit is the site's to set.
    #[test]
    fn s25_a_page_above_the_size_limit_is_that_pages_error() {
        let mut site = blog();
        let huge = format!("# Huge\n\n{}", "word ".repeat((8 << 20) / 5 + 1));
        site.write("content/posts/huge.md", &huge);
        let (output, report) = site.build(&[]);
        let messages: Vec<String> = report.diagnostics.iter().map(ToString::to_string).collect();
        assert_eq!(
            messages,
            [
                "content/posts/huge.md: is 8.0 MiB, larger than the 8 MiB a page may be; \
              not built (`max_page_size` in site.toml raises the limit)"
            ]
        );
        assert!(output.get("/posts/huge/").is_none());
        assert!(html(&output, "/posts/a/").contains("Alpha body."));

        site.write("site.toml", "max_page_size = \"16 MiB\"\n");
        let (output, report) = site.build(&[]);
        assert!(report.diagnostics.is_empty(), "{:?}", report.diagnostics);
        assert!(html(&output, "/posts/huge/").contains("word word"));
    }

    /// `sitectl rebuild` (everything read anew) and a watcher's rebuild (the changed
    /// paths) agree on what a page broken by a template serves: its last good HTML,
    /// never a 404. The one diagnostic names the template and counts the pages.
    #[test]
    fn a_rebuild_of_everything_serves_what_a_watchers_rebuild_serves() {
        let mut site = blog();
        site.write("templates/page.html", "<main>{{ page.title }}</main>");
        let (good, _) = site.build(&[]);
        let broken = site.write(
            "templates/page.html",
            "<main>{% for c in page.title %}{{ c + 1 }}{% endfor %}</main>",
        );
        let (watched, report) = site.build(&[broken]);
        let (everything, again) = site.build(&[]);
        for output in [&watched, &everything] {
            for url in ["/posts/a/", "/posts/b/", "/posts/c/"] {
                assert_eq!(html(output, url), html(&good, url), "{url}");
            }
            assert_eq!(output.resources.len(), good.resources.len());
        }
        for report in [&report, &again] {
            assert_eq!(report.diagnostics.len(), 1, "{:?}", report.diagnostics);
            let diagnostic = &report.diagnostics[0];
            assert_eq!(diagnostic.file, PathBuf::from("templates/page.html"));
            assert_eq!(diagnostic.line, Some(1));
            assert!(
                diagnostic.message.ends_with(
                    "(affects 3 pages: content/posts/a.md, content/posts/b.md, \
                     content/posts/c.md)"
                ),
                "{diagnostic}"
            );
        }
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
        assert_eq!(report.diagnostics.len(), 1, "{:?}", report.diagnostics);
        assert!(
            report.diagnostics[0].message.contains("unknown filter"),
            "{:?}",
            report.diagnostics
        );
        assert!(output.get("/posts/a/").is_some());
    }

    #[test]
    fn a_build_says_what_a_browser_must_redo() {
        let mut site = blog();
        assert_eq!(site.built(&[]).reload, Reload::Full, "a first build");
        let body = site.write(
            "content/posts/c.md",
            "+++\ntitle = \"Gamma\"\n+++\nGamma body.\n\nMore.\n",
        );
        assert_eq!(
            site.built(std::slice::from_ref(&body)).reload,
            Reload::Pages(vec!["/posts/c/".into()]),
            "a body edit changes its page alone"
        );
        // Saved again without a change: nothing to redo in a browser.
        let same = site.write(
            "content/posts/c.md",
            "+++\ntitle = \"Gamma\"\n+++\nGamma body.\n\nMore.\n",
        );
        assert_eq!(site.built(&[same]).reload, Reload::Nothing);
        let css = site.write("static/custom.css", "body{color:blue}");
        assert_eq!(
            site.built(&[css]).reload,
            Reload::Styles(vec!["/custom.css".into()])
        );
        let title = site.write(
            "content/posts/c.md",
            "+++\ntitle = \"Gamma Two\"\n+++\nGamma body.\n",
        );
        // Its page, its section's listing, and its neighbour's "next" link (Gamma has no
        // date: it is on neither the home page nor the sitemap's dated entries).
        assert_eq!(
            site.built(&[title]).reload,
            Reload::Pages(vec![
                "/posts/".into(),
                "/posts/a/".into(),
                "/posts/c/".into()
            ])
        );
        let config = site.write("site.toml", "title = \"Renamed\"\n");
        assert_eq!(site.built(&[config]).reload, Reload::Full);
    }

    #[test]
    fn only_the_sites_sources_affect_its_output() {
        let mut site = blog();
        site.build(&[]);
        let affects = |site: &TestSite, rel: &str| site.site.affects_output(&[site.path(rel)]);
        assert!(affects(&site, "content/posts/a.md"));
        assert!(affects(&site, "templates/page.html"));
        assert!(affects(&site, "site.toml"));
        assert!(!affects(&site, "content/posts/.a.md.swp"));
        assert!(!affects(&site, "public/index.html"), "an output folder");
        assert!(!affects(&site, "notes.md"), "outside content/");
    }

    #[test]
    fn links_are_checked_again_by_every_build_fast_path_included() {
        let mut site = TestSite::new(&[
            ("content/a.md", "# A\n\nSee [b](b.md#part).\n"),
            ("content/b.md", "# B\n\nText.\n\n## Part\n"),
        ]);
        let (_, report) = site.build(&[]);
        assert!(report.diagnostics.is_empty(), "{:?}", report.diagnostics);
        // The heading a.md links to goes: a.md's link is now broken, though a.md did not
        // change (and only b.md is rendered again).
        let b = site.write("content/b.md", "# B\n\nText.\n\n## Other\n");
        let (_, report) = site.build(&[b]);
        assert_eq!(report.rendered, 1, "the fast path");
        assert_eq!(report.diagnostics.len(), 1, "{:?}", report.diagnostics);
        let warning = &report.diagnostics[0];
        assert_eq!(warning.severity, crate::Severity::Warning);
        assert_eq!(warning.file, PathBuf::from("content/a.md"));
        assert_eq!(warning.line, Some(3));
        assert!(warning.message.contains("b.md#part"), "{warning}");
        // A warning does not keep later edits off the fast path, and mending it clears it.
        let b = site.write("content/b.md", "# B\n\nText.\n\n## Part\n");
        let (_, report) = site.build(&[b]);
        assert_eq!(report.rendered, 1, "the fast path");
        assert!(report.diagnostics.is_empty(), "{:?}", report.diagnostics);
    }

    #[test]
    fn an_edit_keeping_its_ids_rechecks_its_links_and_keeps_the_others_warnings() {
        let mut site = TestSite::new(&[
            ("content/a.md", "# A\n\nSee [b](b.md#gone).\n"),
            ("content/b.md", "# B\n\nText.\n\n## Part\n"),
        ]);
        let (_, report) = site.build(&[]);
        assert_eq!(report.diagnostics.len(), 1, "{:?}", report.diagnostics);
        // b.md's ids stay; its own links break (a fragment looked up on its own, no map
        // of the site): a.md's warning stands, b.md's are new.
        let b = site.write(
            "content/b.md",
            "# B\n\nText.\n\n[x](nowhere.md) [y](a.md#a) [z](a.md#nope)\n\n## Part\n",
        );
        let (_, report) = site.build(std::slice::from_ref(&b));
        assert_eq!(report.rendered, 1, "the fast path");
        let files: Vec<_> = report.diagnostics.iter().map(|d| &d.file).collect();
        let (a_md, b_md) = (PathBuf::from("content/a.md"), PathBuf::from("content/b.md"));
        assert_eq!(files, [&a_md, &b_md, &b_md], "{:?}", report.diagnostics);
        let nope = &report.diagnostics[2].message;
        assert!(nope.contains("a.md#nope"), "{nope}");
        // Mended, b.md's warning goes and a.md's still stands.
        site.write("content/b.md", "# B\n\nText.\n\n## Part\n");
        let (_, report) = site.build(&[b]);
        assert_eq!(report.rendered, 1, "the fast path");
        assert_eq!(report.diagnostics.len(), 1, "{:?}", report.diagnostics);
        assert_eq!(report.diagnostics[0].file, PathBuf::from("content/a.md"));
    }

    #[test]
    fn an_edit_changes_the_output_in_place_only_when_nobody_else_holds_it() {
        let mut site = TestSite::new(&[
            ("content/a.md", "# A\n\nIntro.\n\nOne.\n"),
            ("content/b.md", "# B\n"),
        ]);
        let (first, _) = site.build(&[]);
        let a = site.write("content/a.md", "# A\n\nIntro.\n\nTwo.\n");
        // Held (a server still serves it): the edit copies, and what is held stays as built.
        let (second, report) = site.build(std::slice::from_ref(&a));
        assert_eq!(report.rendered, 1, "the fast path");
        assert!(!Arc::ptr_eq(&first, &second));
        let text = |output: &Output| html(output, "/a/");
        assert!(
            text(&first).contains("One."),
            "what was held did not change"
        );
        assert!(text(&second).contains("Two."));
        // Let go of: the next edit changes the same map, without a copy of the site.
        let second_at = Arc::as_ptr(&second);
        drop((first, second));
        site.write("content/a.md", "# A\n\nIntro.\n\nThree.\n");
        let (third, report) = site.build(&[a]);
        assert_eq!(report.rendered, 1, "the fast path");
        assert_eq!(Arc::as_ptr(&third), second_at, "edited in place");
        assert!(text(&third).contains("Three."));
        assert!(
            third.get("/b/").is_some(),
            "the rest of the site is still there"
        );
    }

    #[test]
    fn a_strict_build_makes_warnings_errors() {
        let files = [("content/a.md", "# A\n\n[gone](gone.md)\n")];
        let (_, report) = TestSite::new(&files).build(&[]);
        assert!(!report.has_errors() && report.warnings().count() == 1);
        let strict = Options {
            strict: true,
            ..Options::default()
        };
        let (_, report) = TestSite::with_options(&files, strict).build(&[]);
        assert_eq!(report.errors().count(), 1, "{:?}", report.diagnostics);
    }

    #[test]
    fn a_cancelled_build_gives_no_output_and_the_next_starts_afresh() {
        let options = Options::default();
        let cancel = options.cancel.clone();
        let mut site = TestSite::with_options(&[("a.md", "# A\n"), ("b.md", "# B\n")], options);
        site.build(&[]);
        cancel.cancel();
        let a = site.write("a.md", "# A\n\nNew text.\n");
        assert_eq!(
            site.site.build(Changes::Paths(vec![a])).unwrap_err(),
            Failure::Cancelled
        );
        assert!(site.site.state.is_none(), "nothing half-built is kept");
    }

    #[test]
    fn the_test_panic_function_is_there_only_when_asked_for() {
        let files = [
            ("content/a.md", "# A\n"),
            ("content/b.md", "+++\ntemplate = \"boom.html\"\n+++\nB\n"),
            (
                "templates/boom.html",
                "{{ sited_test_panic(\"on purpose\") }}",
            ),
        ];
        let mut plain = TestSite::new(&files);
        let (_, report) = plain.build(&[]);
        assert!(
            report.diagnostics[0].message.contains("unknown function"),
            "{:?}",
            report.diagnostics
        );
        let options = Options {
            test_panic_function: true,
            ..Options::default()
        };
        let mut site = TestSite::with_options(&files, options);
        let (output, report) = site.build(&[]);
        assert_eq!(report.diagnostics.len(), 1, "{:?}", report.diagnostics);
        assert!(
            report.diagnostics[0]
                .message
                .contains("the renderer panicked: on purpose"),
            "{:?}",
            report.diagnostics
        );
        assert_eq!(report.diagnostics[0].file, PathBuf::from("content/b.md"));
        assert!(output.get("/a/").is_some(), "the other pages build");
    }

    #[test]
    fn a_build_that_leaves_its_memory_to_the_exit_writes_the_same_output() {
        let site = blog();
        let out = tempfile::tempdir().unwrap();
        let build = |name: &str, exits: bool| {
            let how = ToDisk {
                exits,
                ..ToDisk::default()
            };
            let dir = out.path().join(name);
            let built = build_to_with(site.dir.path(), Options::default(), &dir, None, how);
            assert!(!built.unwrap().report.has_errors());
            let mut files = crate::write::list_files(&dir).unwrap();
            files.sort();
            let read = |rel: &PathBuf| (rel.clone(), fs::read(dir.join(rel)).unwrap());
            files.iter().map(read).collect::<Vec<_>>()
        };
        let (freed, left) = (build("freed", false), build("left", true));
        assert!(freed.len() > 5, "{freed:?}");
        assert_eq!(freed, left);
    }

    #[test]
    fn a_published_build_warns_once_without_an_absolute_base_url() {
        let site = TestSite::new(&[("a.md", "# A\n"), ("b.md", "# B\n")]);
        let out = tempfile::tempdir().unwrap();
        let built = build_to(
            site.dir.path(),
            Options::default(),
            &out.path().join("o"),
            None,
        )
        .unwrap();
        let warnings: Vec<_> = built.report.warnings().collect();
        assert_eq!(warnings.len(), 1, "once per build: {warnings:?}");
        assert!(warnings[0].message.contains("no base_url"), "{warnings:?}");
        assert!(
            warnings[0].message.ends_with("in site.toml"),
            "{warnings:?}"
        );

        fs::write(
            site.path("site.toml"),
            "base_url = \"https://e.org/docs/\"\n",
        )
        .unwrap();
        let built = build_to(
            site.dir.path(),
            Options::default(),
            &out.path().join("p"),
            None,
        )
        .unwrap();
        assert!(built.report.diagnostics.is_empty(), "{:?}", built.report);
        let a = fs::read_to_string(out.path().join("p/a/index.html")).unwrap();
        assert!(
            a.contains("href=\"/docs/theme.css\""),
            "published under the path: {a}"
        );
    }

    #[test]
    fn the_development_server_serves_a_base_path_site_at_its_root() {
        let mut site = TestSite::new(&[
            ("site.toml", "base_url = \"https://e.org/docs/\"\n"),
            ("a.md", "# A\n\n[b](b.md)\n"),
            ("b.md", "# B\n"),
        ]);
        let (output, report) = site.build(&[]);
        assert!(report.diagnostics.is_empty(), "no warning: {report:?}");
        let a = html(&output, "/a/");
        assert!(a.contains("href=\"/b/\""), "{a}");
        assert!(a.contains("href=\"/theme.css\""), "{a}");
        let sitemap = html(&output, "/sitemap.xml");
        assert!(
            sitemap.contains("<loc>https://e.org/docs/a/</loc>"),
            "{sitemap}"
        );
    }

    #[test]
    fn a_site_without_markdown_warns_that_it_has_no_content() {
        let mut site = TestSite::new(&[("static/style.css", "body{}")]);
        let (_, report) = site.build(&[]);
        assert_eq!(report.diagnostics.len(), 1, "{:?}", report.diagnostics);
        assert!(!report.has_errors());
        assert!(
            report.diagnostics[0].message.starts_with("no content"),
            "{:?}",
            report.diagnostics
        );
        let added = site.write("note.md", "# Note\n");
        let (_, report) = site.build(&[added]);
        assert!(report.diagnostics.is_empty(), "{:?}", report.diagnostics);
    }

    #[test]
    fn excluded_folders_are_neither_built_nor_changes() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        fs::write(root.join("a.md"), "# A\n").unwrap();
        fs::create_dir(root.join("state")).unwrap();
        fs::write(root.join("state/log.md"), "# Log\n").unwrap();
        let options = Options {
            exclude: vec![root.join("state")],
            ..Options::default()
        };
        let mut site = Site::open(&root, options);
        let built = site.build(Changes::Everything).unwrap();
        assert!(built.output.get("/a/").is_some());
        assert!(built.output.get("/state/log/").is_none());
        assert!(!site.affects_output(&[root.join("state/log.md")]));
    }
}
