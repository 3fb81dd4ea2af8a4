//! The Markdown stage: a page's own context ([`PageCtx`]) from its Markdown and front
//! matter. Made here alone, for full and incremental builds alike; kept between builds
//! until the file changes, its URL moves, or (for a page that links to other pages) any
//! page's URL moves.

use std::cell::Cell;
use std::path::Path;
use std::sync::Arc;

use pulldown_cmark::{Event, Parser, Tag, TagEnd};
use rustc_hash::FxHashMap as HashMap;

use super::links::SourceLinks;
use super::markdown;
use crate::context::PageCtx;
use crate::load::Parsed;
use crate::url::encode_path;

/// Words per minute for `reading_time`.
const WORDS_PER_MINUTE: usize = 220;

/// A page's rendered Markdown, as kept for later builds.
#[derive(Debug, Clone)]
pub struct CachedMarkdown {
    pub ctx: Arc<PageCtx>,
    /// The URL it was rendered for (decoded).
    pub url: String,
    /// The hash of every page's URL when this was rendered, if the page links to other
    /// pages: its HTML is stale once that hash changes.
    pub links: Option<u64>,
}

impl CachedMarkdown {
    /// Whether this is still the page's Markdown at `url` when the pages' URLs hash to
    /// `links_hash`.
    pub fn is_current(&self, url: &str, links_hash: u64) -> bool {
        self.url == url && self.links.is_none_or(|h| h == links_hash)
    }
}

/// Renders `page`'s Markdown for `url`. Relative links resolve against `md_urls` (source
/// path → URL of every page), whose hash is `links_hash`.
pub fn render(
    page: &Parsed,
    url: &str,
    md_urls: &HashMap<Arc<Path>, String>,
    links_hash: u64,
) -> CachedMarkdown {
    let links = SourceLinks {
        dir: page.dir(),
        md_urls,
        used_page_urls: Cell::new(false),
    };
    let ctx = page_ctx(page, url, &links);
    CachedMarkdown {
        ctx: Arc::new(ctx),
        url: url.to_string(),
        links: links.used_page_urls.get().then_some(links_hash),
    }
}

/// Where a page's summary comes from: `summary` in its front matter, else everything
/// before a `<!--more-->` line, else its first paragraph (`first_paragraph`). Plain text.
fn summary(written: Option<&str>, body: &str, first_paragraph: Option<String>) -> Option<String> {
    if let Some(summary) = written {
        return Some(summary.trim().to_string());
    }
    // memchr's search, not `str::find`'s: it is run over every page's whole body.
    let Some(cut) = memchr::memmem::find(body.as_bytes(), b"<!--more-->") else {
        return first_paragraph;
    };
    let mut text = String::new();
    let mut in_heading = false;
    for event in Parser::new(&body[..cut]) {
        match event {
            Event::Start(Tag::Heading { .. }) => in_heading = true,
            Event::End(TagEnd::Heading(_)) => in_heading = false,
            Event::Text(t) | Event::Code(t) if !in_heading => text.push_str(&t),
            Event::SoftBreak | Event::HardBreak => text.push(' '),
            Event::End(TagEnd::Paragraph | TagEnd::Item) => text.push(' '),
            _ => {}
        }
    }
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.is_empty() {
        first_paragraph
    } else {
        Some(text)
    }
}

/// Whether a file of this stem can be its folder's own text (see `tree::place`).
pub fn is_index_name(stem: &str) -> bool {
    matches!(stem, "_index" | "index" | "README" | "readme" | "Readme")
}

fn page_ctx(page: &Parsed, url: &str, links: &SourceLinks<'_>) -> PageCtx {
    page.body.with(|body| page_ctx_of(page, body, url, links))
}

/// [`page_ctx`] with the page's Markdown `body` at hand.
fn page_ctx_of(page: &Parsed, body: &str, url: &str, links: &SourceLinks<'_>) -> PageCtx {
    let fm = &page.fm;
    // The template prints the title; drop a heading the page opens with when it is the
    // title (no title in front matter, or the same one).
    let strip = |heading: &str| {
        fm.title
            .as_deref()
            .is_none_or(|title| title.trim() == heading.trim())
    };
    let mut rendered = markdown::render(body, links, &strip);
    // A section's own text is shown under the section's title, not as a page that other
    // pages link into by its title: the anchor left for the stripped heading would be a
    // stray one there.
    if is_index_name(&page.stem())
        && rendered.html.starts_with("<a id=\"")
        && let Some(end) = rendered.html.find("</a>\n")
    {
        let id = rendered.html["<a id=\"".len()..end].trim_end_matches("\">");
        let id = id.to_string();
        rendered.html.replace_range(..end + "</a>\n".len(), "");
        // Nothing on the page bears that id any more: a link to it leads nowhere.
        rendered.anchors.retain(|anchor| *anchor != id);
    }
    let title = fm
        .title
        .clone()
        .or_else(|| rendered.leading_heading.clone())
        .or_else(|| page.summary_title.clone())
        .unwrap_or_else(|| page.stem().into_owned());
    let body_hash = crate::context::body_hash(&rendered.html, &page.extra);
    PageCtx {
        title,
        url: encode_path(url),
        content: crate::output::spill::Text::new(rendered.html),
        summary: summary(fm.summary.as_deref(), body, rendered.summary)
            .map(|s| crate::html::escape(&s)),
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
        head_title: page.head_title.clone(),
        links: rendered
            .links
            .into_iter()
            .map(|link| crate::check::LinkRef {
                line: page.file_line(link.line),
                ..link
            })
            .collect(),
        anchors: rendered.anchors,
        body_hash,
    }
}
