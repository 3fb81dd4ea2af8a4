//! Phase 4, assemble: the output map. The theme's assets (its stylesheet, with the
//! code-highlighting colours added, and its icon), the files served as they are (assets
//! beside the content, then `static/`, which wins over both), the rendered pages, the
//! sitemap and the Atom feeds (the site's newest dated pages, and each section's).

pub mod feeds;

use std::sync::{Arc, LazyLock};

use bytes::Bytes;

use crate::context::Summary;
use crate::load::Sources;
use crate::output::{Output, Resource};
use crate::render::{Job, JobCtx};
use crate::report::Diagnostic;
use crate::theme;
use crate::tree::Tree;
use crate::url::{encode_path, file_url};

static XML: LazyLock<Arc<str>> = LazyLock::new(|| Arc::from("application/xml; charset=utf-8"));
static ATOM: LazyLock<Arc<str>> =
    LazyLock::new(|| Arc::from("application/atom+xml; charset=utf-8"));

/// The output of a build whose pages are `pages` (the HTML of `jobs` held in memory). A
/// file that cannot be read adds a diagnostic.
pub fn output(
    tree: &Tree,
    sources: &Sources,
    pages: Vec<(String, Resource)>,
    sitemap: Resource,
    diagnostics: &mut Vec<Diagnostic>,
) -> Output {
    let mut output = Output::default();
    output
        .resources
        .reserve(pages.len() + sources.assets.len() + sources.statics.len() + 8);
    for (url, content_type, body) in theme::ASSETS {
        let body = if url == theme::STYLESHEET_URL {
            theme::stylesheet()
        } else {
            Bytes::from_static(body.as_bytes())
        };
        output.resources.insert(
            url.to_string(),
            Resource::memory(body, Arc::from(content_type)),
        );
    }
    for source in sources.assets.iter().chain(&sources.statics) {
        match Resource::file(source.path.to_path_buf()) {
            Ok(resource) => {
                output.resources.insert(file_url(&source.rel), resource);
            }
            Err(error) => diagnostics.push(Diagnostic::error(
                sources.layout.display_path(&source.path),
                format!("cannot read: {error}"),
            )),
        }
    }
    output.resources.extend(pages);
    crate::hugo::aliases::add(&mut output, tree, &sources.layout, diagnostics);
    let base = &sources.layout.config.base_url;
    output.resources.insert("/sitemap.xml".into(), sitemap);
    add_feeds(&mut output, tree, base, &sources.layout.config.title);
    output
}

/// The sitemap of the site at `base`: every page with a context of its own (not the 404
/// page, nor the second and later pages of a split listing), with its date.
pub fn sitemap(jobs: &[Job], tree: &Tree, base: &str) -> Resource {
    let mut entries: Vec<(&str, Option<&str>)> = jobs
        .iter()
        .filter(|job| match &job.ctx {
            JobCtx::Plain => false,
            JobCtx::Section(ctx) => ctx.paginator.as_ref().is_none_or(|p| p.current == 1),
            JobCtx::Page(_) => true,
        })
        .map(|job| {
            let date = match &job.ctx {
                JobCtx::Page(i) => tree.page(*i).date.as_deref(),
                _ => None,
            };
            (job.url.as_str(), date)
        })
        .collect();
    entries.sort_unstable();
    Resource::memory(Bytes::from(feeds::sitemap(base, &entries)), XML.clone())
}

/// The site's feed (when it has dated pages) and each section's.
fn add_feeds(output: &mut Output, tree: &Tree, base: &str, site_title: &str) {
    if let Some(feed_url) = &tree.site.feed_url {
        let entries: Vec<&Summary> = tree.site.recent_pages.iter().collect();
        let feed = feeds::atom(base, feed_url, site_title, &entries);
        output.resources.insert(
            feed_url.clone(),
            Resource::memory(Bytes::from(feed), ATOM.clone()),
        );
    }
    for section in tree.placed.sections.values().filter(|s| !s.is_home()) {
        let title = format!("{} – {site_title}", section.title);
        add_feed(output, tree, base, &section.url, &title, &section.pages);
    }
    // Each term's feed: tags, categories and the site's own taxonomies.
    for (tag, pages) in &tree.tags {
        let title = format!("#{tag} – {site_title}");
        add_feed(
            output,
            tree,
            base,
            &crate::tree::tag_url(tag),
            &title,
            pages,
        );
    }
    for taxonomy in &tree.taxonomies {
        for (term, pages) in &taxonomy.terms {
            let title = format!("{term} – {site_title}");
            add_feed(output, tree, base, &taxonomy.term_url(term), &title, pages);
        }
    }
}

/// The feed at `{url}atom.xml` of the dated ones among `pages`, if any.
fn add_feed(output: &mut Output, tree: &Tree, base: &str, url: &str, title: &str, pages: &[usize]) {
    let listing = tree.listing(pages);
    let mut dated: Vec<&Summary> = listing
        .iter()
        .map(|s| &**s)
        .filter(|s| s.date.is_some())
        .collect();
    if dated.is_empty() {
        return;
    }
    dated.sort_by(|a, b| b.date.cmp(&a.date));
    let feed_url = format!("{url}atom.xml");
    let feed = feeds::atom(base, &encode_path(&feed_url), title, &dated);
    output
        .resources
        .insert(feed_url, Resource::memory(Bytes::from(feed), ATOM.clone()));
}
