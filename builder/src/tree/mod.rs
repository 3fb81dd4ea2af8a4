//! Phase 2, tree: where every page sits in the site. It runs on both sides of the
//! Markdown stage of rendering: before it, [`place`] gives every page and section its URL
//! (links need every URL known); after it, [`arrange`] names the sections, orders their
//! listings by weight, date and title, collects tags, links each page to its neighbours and
//! makes the `site` context every template sees.
//!
//! A [`Tree`] is kept between builds: when only the bodies of pages changed (nothing their
//! listings show), a rebuild swaps those pages' contexts in ([`Tree::replace_page`]) and
//! renders them against the rest of the site as it was.

pub mod paginate;
pub mod place;
pub mod taxonomy;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};

use minijinja::Value;
use minijinja::value::Serde;
use rayon::prelude::*;
use rustc_hash::FxHashMap as HashMap;

use crate::context::{
    Link, PageCtx, PageView, SectionCtx, SiteCtx, SubsectionCtx, Summary, TagLink, fingerprint,
};
use crate::load::Parsed;
use crate::load::layout::Layout;
use crate::url::{encode_path, slugify};
pub use place::{Placed, Role, Section, place};

/// At most this many top-level pages are put in the navigation next to the sections; a
/// flat book of 100 chapters gets its chapters listed on the home page instead.
const NAV_MAX_PAGES: usize = 8;
/// Dated pages listed as `site.recent_pages`.
const RECENT_PAGES: usize = 20;
/// The site's feed, when it has dated pages.
pub const FEED_URL: &str = "/atom.xml";

/// A page's section and neighbours (indices into the tree's pages).
#[derive(Debug, Clone, Default)]
pub struct Placement {
    pub section: Option<Arc<Link>>,
    pub prev: Option<usize>,
    pub next: Option<usize>,
}

/// The whole site, arranged.
#[derive(Debug)]
pub struct Tree {
    pub placed: Placed,
    /// Each page's own context (`None` for a page without a URL).
    pub pages: Vec<Option<Arc<PageCtx>>>,
    /// Each page as listings show it (shared by its listings and its neighbours' views).
    pub summaries: Vec<Option<Arc<Summary>>>,
    pub placement: Vec<Placement>,
    /// Tag → the pages carrying it (source order).
    pub tags: BTreeMap<String, Vec<usize>>,
    pub site: SiteCtx,
    /// `site` as templates receive it, made once per build.
    pub site_value: Value,
    /// Hash of `site` and of the templates' generation: any change re-renders every page.
    pub site_hash: u64,
    /// `paginate_by` of `site.toml`: entries per listing page where a section sets none.
    pub paginate_by: usize,
    /// Categories and the site's own taxonomies (tags are [`Tree::tags`]).
    pub taxonomies: Vec<taxonomy::Taxonomy>,
}

/// Arranges the placed pages once their Markdown is rendered (`pages[i]` is page `i`'s
/// context). `template_generation` changes whenever templates are reloaded.
pub fn arrange(
    mut placed: Placed,
    mut pages: Vec<Option<Arc<PageCtx>>>,
    layout: &Layout,
    has_custom_css: bool,
    template_generation: u64,
) -> Tree {
    name_and_order_sections(&mut placed, &pages, layout);
    if layout.flavor == crate::load::layout::Flavor::Zola {
        crate::zola::arrange_sections(&mut placed, &mut pages);
    }
    let mut tags: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, page) in pages.iter().enumerate() {
        if let Some(page) = page
            && placed.roles[i] == Role::Page
        {
            for tag in &page.tags {
                tags.entry(tag.clone()).or_default().push(i);
            }
        }
    }
    let summaries: Vec<Option<Arc<Summary>>> = pages
        .par_iter()
        .map(|p| p.as_ref().map(|p| Arc::new(Summary::of(p))))
        .collect();
    let mut placement = vec![Placement::default(); pages.len()];
    for section in placed.sections.values() {
        let link = (!section.is_home()).then(|| {
            Arc::new(Link {
                title: section.title.clone(),
                url: section.url.clone(),
            })
        });
        for (n, &i) in section.pages.iter().enumerate() {
            placement[i] = Placement {
                section: link.clone(),
                prev: n.checked_sub(1).map(|p| section.pages[p]),
                next: section.pages.get(n + 1).copied(),
            };
        }
    }
    if let Some(book) = &layout.book {
        book_order(&mut placement, &placed, book);
    }
    let mut tree = Tree {
        placed,
        pages,
        summaries,
        placement,
        tags,
        site: SiteCtx::default(),
        site_value: Value::UNDEFINED,
        site_hash: 0,
        paginate_by: layout.config.paginate_by,
        taxonomies: Vec::new(),
    };
    let listed = |i: usize| {
        (tree.placed.roles[i] == Role::Page)
            .then(|| tree.pages[i].as_deref().map(|p| &*p.extra))
            .flatten()
    };
    tree.taxonomies = taxonomy::collect(
        &taxonomy::names(&layout.config.taxonomies),
        (0..tree.pages.len()).map(listed),
    );
    tree.site = tree.site_context(layout, has_custom_css);
    tree.site_hash = fingerprint(&(&tree.site, template_generation));
    tree.site_value = Value::from(Serde(&tree.site));
    tree
}

/// A book reads in `SUMMARY.md`'s order, across folders: prev/next follow it, and its
/// folders are no sections to go back to.
fn book_order(placement: &mut [Placement], placed: &Placed, book: &crate::book::Book) {
    let index: HashMap<&Path, usize> = placed
        .pages
        .iter()
        .enumerate()
        .filter(|&(i, _)| !placed.urls[i].is_empty())
        .map(|(i, page)| (&*page.source.rel, i))
        .collect();
    let order = book.reading_order(&index);
    for place in placement.iter_mut() {
        *place = Placement::default();
    }
    for (n, &i) in order.iter().enumerate() {
        placement[i] = Placement {
            section: None,
            prev: n.checked_sub(1).map(|p| order[p]),
            next: order.get(n + 1).copied(),
        };
    }
}

/// Section titles (their own page's title, the site's for the home page, else the folder
/// name), listing order, and which sections each one holds.
fn name_and_order_sections(placed: &mut Placed, pages: &[Option<Arc<PageCtx>>], layout: &Layout) {
    let page = |i: usize| pages[i].as_deref().expect("pages with a URL are rendered");
    for section in placed.sections.values_mut() {
        // An index file's title, unless it is only its file name (`README`): then the
        // folder's name says more.
        let from_index = section
            .index
            .and_then(|i| pages[i].as_deref().map(|p| (i, p)))
            .filter(|(i, p)| p.title != placed.pages[*i].stem())
            .map(|(_, p)| p.title.clone());
        section.title = match from_index {
            Some(title) => title,
            None if section.is_home() => layout.config.title.clone(),
            None => section
                .dir
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned(),
        };
        section.pages.sort_by_cached_key(|&i| listing_key(page(i)));
    }
    let dirs: Vec<PathBuf> = placed.sections.keys().cloned().collect();
    for dir in &dirs {
        if let Some(parent) = dir.parent() {
            placed
                .sections
                .get_mut(parent)
                .expect("ancestors are ensured")
                .subsections
                .push(dir.clone());
        }
    }
}

/// Listing order: weight (unweighted last), then newest date first (undated last), then
/// title, case-insensitively. An ASCII title with no capital is its own key: lowering
/// every title of tldr's 4,612-page section was a serial millisecond of every build.
pub fn listing_key(
    page: &PageCtx,
) -> (
    i64,
    std::cmp::Reverse<Option<&str>>,
    std::borrow::Cow<'_, str>,
) {
    let title = &page.title;
    let lowered = match title
        .bytes()
        .all(|b| b.is_ascii() && !b.is_ascii_uppercase())
    {
        true => std::borrow::Cow::Borrowed(title.as_str()),
        false => std::borrow::Cow::Owned(title.to_lowercase()),
    };
    (
        page.weight.unwrap_or(i64::MAX),
        std::cmp::Reverse(page.date.as_deref()),
        lowered,
    )
}

/// The URL of a tag's listing.
pub fn tag_url(tag: &str) -> String {
    format!("/tags/{}/", slugify(tag))
}

/// Shared across builds: context hashes see these by address, so an empty body must be
/// the same allocation every time.
pub(crate) static EMPTY: LazyLock<Arc<str>> = LazyLock::new(|| Arc::from(""));
pub(crate) static NO_EXTRA: LazyLock<Arc<serde_json::Map<String, serde_json::Value>>> =
    LazyLock::new(|| Arc::new(serde_json::Map::new()));

impl Tree {
    /// Page `i`'s own context; only for pages with a URL.
    pub fn page(&self, i: usize) -> &PageCtx {
        self.pages[i]
            .as_deref()
            .expect("pages with a URL are rendered")
    }

    /// Whether page `i` has a page of its own (not a section's text, not unplaced).
    pub fn is_page(&self, i: usize) -> bool {
        self.placed.roles[i] == Role::Page && self.pages[i].is_some()
    }

    /// Page `i` as `page.html` sees it: its own context and its place in the site.
    pub fn page_view(&self, i: usize) -> PageView {
        let page = self.pages[i]
            .clone()
            .expect("pages with a URL are rendered");
        let placement = &self.placement[i];
        PageView {
            tag_urls: self.tag_links(&page.tags),
            taxonomies: self.term_links(i),
            section: placement.section.clone(),
            prev: placement.prev.and_then(|j| self.summaries[j].clone()),
            next: placement.next.and_then(|j| self.summaries[j].clone()),
            page,
        }
    }

    fn tag_links(&self, tags: &[String]) -> Vec<TagLink> {
        tags.iter()
            .map(|tag| TagLink {
                name: tag.clone(),
                url: tag_url(tag),
                count: self.tags.get(tag).map_or(0, Vec::len),
            })
            .collect()
    }

    /// A section (or the home page) as its template sees it.
    pub fn section_ctx(&self, section: &Section) -> SectionCtx {
        let index_page = section.index.and_then(|i| self.pages[i].as_deref());
        SectionCtx {
            title: section.title.clone(),
            url: encode_path(&section.url),
            content: index_page.map_or_else(|| EMPTY.clone(), |p| p.content.get()),
            description: index_page.and_then(|p| p.description.clone()),
            extra: index_page.map_or_else(|| NO_EXTRA.clone(), |p| p.extra.clone()),
            paginator: None,
            pages: self.listing(&section.pages),
            subsections: section
                .subsections
                .iter()
                .map(|dir| {
                    let sub = &self.placed.sections[dir];
                    SubsectionCtx {
                        title: sub.title.clone(),
                        url: encode_path(&sub.url),
                        page_count: sub.pages.len(),
                    }
                })
                .collect(),
        }
    }

    /// Entries per listing page of `section`: its own `paginate_by`, else the site's.
    pub fn paginate_by(&self, section: &Section) -> usize {
        section
            .index
            .and_then(|i| self.placed.pages[i].fm.paginate_by)
            .unwrap_or(self.paginate_by)
    }

    /// The listing of one tag's pages, and its URL.
    pub fn tag_ctx(&self, name: &str, pages: &[usize]) -> SectionCtx {
        let mut pages = pages.to_vec();
        pages.sort_by_cached_key(|&i| listing_key(self.page(i)));
        SectionCtx {
            title: format!("Tagged “{name}”"),
            url: tag_url(name),
            content: EMPTY.clone(),
            description: None,
            extra: NO_EXTRA.clone(),
            paginator: None,
            pages: self.listing(&pages),
            subsections: Vec::new(),
        }
    }

    /// `/tags/`: every tag, with its count.
    pub fn tags_index_ctx(&self) -> SectionCtx {
        SectionCtx {
            title: "Tags".into(),
            url: "/tags/".into(),
            content: EMPTY.clone(),
            description: None,
            extra: NO_EXTRA.clone(),
            paginator: None,
            pages: Vec::new(),
            subsections: self
                .tags
                .iter()
                .map(|(name, pages)| SubsectionCtx {
                    title: name.clone(),
                    url: tag_url(name),
                    page_count: pages.len(),
                })
                .collect(),
        }
    }

    /// Summaries of `pages`, shared: a section of thousands of pages copies none.
    pub fn listing(&self, pages: &[usize]) -> Vec<Arc<Summary>> {
        pages
            .iter()
            .filter_map(|&i| self.summaries[i].clone())
            .collect()
    }

    /// Where the Markdown of page `i` came from.
    pub fn source(&self, i: usize) -> &Parsed {
        &self.placed.pages[i]
    }

    /// Source path → index of every page of its own (for finding a changed file's page).
    pub fn page_index(&self) -> HashMap<Arc<Path>, usize> {
        (0..self.pages.len())
            .filter(|&i| self.is_page(i))
            .map(|i| (self.placed.pages[i].source.path.clone(), i))
            .collect()
    }

    /// Swaps in a new version of page `i` whose summary (all that other pages show of
    /// it) is unchanged: no other page's context changes.
    pub fn replace_page(&mut self, i: usize, parsed: Arc<Parsed>, page: Arc<PageCtx>) {
        debug_assert_eq!(self.summaries[i].as_deref(), Some(&Summary::of(&page)));
        self.placed.pages[i] = parsed;
        // The front matter is unchanged: a template it did not name came from the
        // section (Zola's `page_template`) and still does.
        let mut page = page;
        if page.template.is_none()
            && let Some(template) = self.pages[i].as_ref().and_then(|p| p.template.clone())
        {
            Arc::make_mut(&mut page).template = Some(template);
        }
        // The same fields, read from the new context: the old one is not kept for them
        // (nor for `site.recent_pages`, which lists it if it is among the newest).
        let summary = Summary::of(&page);
        if let Some(old) = &self.pages[i] {
            for recent in &mut self.site.recent_pages {
                if recent.is_of(old) {
                    *recent = summary.clone();
                }
            }
        }
        self.summaries[i] = Some(Arc::new(summary));
        self.pages[i] = Some(page);
    }

    /// `site`: navigation, recent pages, tags and the site's own settings.
    fn site_context(&self, layout: &Layout, has_custom_css: bool) -> SiteCtx {
        let mut recent: Vec<usize> = (0..self.pages.len())
            .filter(|&i| self.is_page(i) && self.page(i).date.is_some())
            .collect();
        recent.sort_by(|&a, &b| self.page(b).date.cmp(&self.page(a).date));
        recent.truncate(RECENT_PAGES);
        let home = &self.placed.sections[Path::new("")];
        // Sections and top-level pages together, by weight (unweighted last), then title.
        let mut nav: Vec<(Option<i64>, Link)> = home
            .subsections
            .iter()
            .map(|dir| {
                let section = &self.placed.sections[dir];
                let weight = section.index.and_then(|i| self.placed.pages[i].fm.weight);
                let link = Link {
                    title: section.title.clone(),
                    url: section.url.clone(),
                };
                (weight, link)
            })
            .collect();
        // A book's navigation is its table of contents (`site.book`).
        if layout.book.is_some() {
            nav.clear();
        } else if home.pages.len() <= NAV_MAX_PAGES {
            nav.extend(home.pages.iter().map(|&i| {
                let page = self.page(i);
                let link = Link {
                    title: page.title.clone(),
                    url: page.url.clone(),
                };
                (page.weight, link)
            }));
        }
        nav.sort_by_cached_key(|(weight, link)| {
            (weight.unwrap_or(i64::MAX), link.title.to_lowercase())
        });
        let nav: Vec<Link> = nav.into_iter().map(|(_, link)| link).collect();
        SiteCtx {
            title: layout.config.title.clone(),
            description: layout.config.description.clone(),
            base_url: layout.config.base_url.clone(),
            has_custom_css,
            sections: nav,
            recent_pages: recent
                .iter()
                .filter_map(|&i| self.summaries[i].as_deref().cloned())
                .collect(),
            feed_url: (!recent.is_empty()).then(|| FEED_URL.to_string()),
            tags: self
                .tags
                .iter()
                .map(|(name, pages)| TagLink {
                    name: name.clone(),
                    url: tag_url(name),
                    count: pages.len(),
                })
                .collect(),
            extra: layout.config.extra.clone(),
            taxonomies: self.all_terms(),
            book: layout
                .book
                .as_ref()
                .map(|book| book.context(&self.placed.md_urls())),
        }
    }
}
