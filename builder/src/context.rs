//! What templates see: the serde types behind `site`, `page` and `section` (documented
//! in README.md), and the hashes that let a rebuild skip every page whose context did not
//! change. The hashes are of values, never of pointers, so that they hold from one
//! process to the next: `sited build` keeps them in its output and does not render a page
//! whose context hashes as it did then ([`crate::write::inputs`]). A page's body is
//! hashed once, when its Markdown is rendered ([`PageCtx::body_hash`]).

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use serde::Serialize;

/// One heading in a page's table of contents.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct TocEntry {
    pub level: u8,
    pub id: String,
    pub title: String,
}

/// A page's own part of its context: everything that depends on its file alone.
#[derive(Debug, Clone, Serialize)]
pub struct PageCtx {
    pub title: String,
    pub url: String,
    /// Its rendered Markdown: spilled once rendered by a server's build (read back when
    /// the page is rendered again).
    pub content: crate::output::spill::Text,
    pub summary: Option<String>,
    pub description: Option<String>,
    pub date: Option<String>,
    pub tags: Vec<String>,
    pub toc: Vec<TocEntry>,
    pub word_count: usize,
    pub reading_time: usize,
    pub extra: Arc<serde_json::Map<String, serde_json::Value>>,
    pub draft: bool,
    pub weight: Option<i64>,
    #[serde(skip)]
    pub template: Option<String>,
    /// `{{#title …}}` of a book chapter: the page's `<title>`, whole.
    pub head_title: Option<String>,
    /// The body's links and the ids its fragments can name, for the link check. Made
    /// with `content` (a new body is a new render), so not hashed apart from it.
    #[serde(skip)]
    pub links: Vec<crate::check::LinkRef>,
    #[serde(skip)]
    pub anchors: Vec<String>,
    /// A hash of `content` and `extra`, taken once they are made: what the page's hash
    /// stands on for them.
    #[serde(skip)]
    pub body_hash: u64,
}

/// The hash of a page's `content` and `extra` for [`PageCtx::body_hash`].
pub fn body_hash(content: &str, extra: &serde_json::Map<String, serde_json::Value>) -> u64 {
    fingerprint(&(content, extra_text(extra)))
}

/// `extra` as text, to hash (JSON values are not `Hash`; maps are ordered by key).
fn extra_text(extra: &serde_json::Map<String, serde_json::Value>) -> String {
    serde_json::to_string(extra).unwrap_or_default()
}

impl Hash for PageCtx {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.title.hash(state);
        self.url.hash(state);
        self.body_hash.hash(state);
        self.summary.hash(state);
        self.description.hash(state);
        self.date.hash(state);
        self.tags.hash(state);
        self.toc.hash(state);
        self.word_count.hash(state);
        self.draft.hash(state);
        self.weight.hash(state);
        self.template.hash(state);
        self.head_title.hash(state);
    }
}

/// A page as `page.html` sees it: its own part plus where it sits in the site. Owned
/// (shared parts behind `Arc`s) so that templates can read it field by field as a
/// minijinja object (`render::object`) instead of a copy of all of it; the serde form is
/// what that object answers, field for field.
#[derive(Debug, Serialize, Hash)]
pub struct PageView {
    #[serde(flatten)]
    pub page: Arc<PageCtx>,
    pub tag_urls: Vec<TagLink>,
    /// Terms of categories and the site's own taxonomies, by taxonomy name.
    pub taxonomies: std::collections::BTreeMap<String, Vec<TagLink>>,
    pub section: Option<Arc<Link>>,
    pub prev: Option<Arc<Summary>>,
    pub next: Option<Arc<Summary>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Hash)]
pub struct Link {
    pub title: String,
    pub url: String,
}

#[derive(Debug, Clone, Serialize, Hash)]
pub struct TagLink {
    pub name: String,
    pub url: String,
    pub count: usize,
}

/// A page as listings show it: its title, URL, date, description, summary, tags and
/// reading time, read from the page's own context (`Deref`), which it shares rather
/// than copies (issue 17.3: a copy of those strings for every page of a site cost 2.3
/// MiB for tldr's 7,400 pages). Equal and serialized by those fields alone; hashed by
/// their fingerprint, taken once: every neighbour's and every listed page's summary is
/// part of a page's or a listing's context hash, and hashing their strings again for
/// each cost 5% of a build's CPU.
///
/// Only those seven fields may be read through it: the rest of the context (content,
/// table of contents, extra) is not part of its equality or hash, so a listing that
/// showed them would not be rendered again when they change.
#[derive(Clone)]
pub struct Summary {
    page: Arc<PageCtx>,
    hash: u64,
}

/// The fields of a page a listing shows, in their serde order.
type ListingFields<'a> = (
    &'a str,
    &'a str,
    Option<&'a str>,
    Option<&'a str>,
    Option<&'a str>,
    &'a [String],
    usize,
);

fn listing_fields(page: &PageCtx) -> ListingFields<'_> {
    (
        &page.title,
        &page.url,
        page.date.as_deref(),
        page.description.as_deref(),
        page.summary.as_deref(),
        &page.tags,
        page.reading_time,
    )
}

impl Summary {
    pub fn of(page: &Arc<PageCtx>) -> Summary {
        Summary {
            page: page.clone(),
            hash: fingerprint(&listing_fields(page)),
        }
    }

    fn fields(&self) -> ListingFields<'_> {
        listing_fields(&self.page)
    }

    /// Whether this is the summary of `page` (that very context).
    pub fn is_of(&self, page: &Arc<PageCtx>) -> bool {
        Arc::ptr_eq(&self.page, page)
    }
}

#[cfg(test)]
impl Summary {
    /// A listing entry for a test: a page with these fields and nothing else.
    pub fn listed(
        title: &str,
        url: &str,
        date: Option<&str>,
        description: Option<&str>,
        summary: Option<&str>,
        tags: Vec<String>,
        reading_time: usize,
    ) -> Summary {
        Summary::of(&Arc::new(PageCtx {
            title: title.into(),
            url: url.into(),
            content: crate::output::spill::Text::new(""),
            summary: summary.map(Into::into),
            description: description.map(Into::into),
            date: date.map(Into::into),
            tags,
            toc: Vec::new(),
            word_count: 0,
            reading_time,
            extra: Arc::default(),
            draft: false,
            weight: None,
            template: None,
            head_title: None,
            links: Vec::new(),
            anchors: Vec::new(),
            body_hash: 0,
        }))
    }
}

impl std::fmt::Debug for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (title, url, date, description, summary, tags, reading_time) = self.fields();
        f.debug_struct("Summary")
            .field("title", &title)
            .field("url", &url)
            .field("date", &date)
            .field("description", &description)
            .field("summary", &summary)
            .field("tags", &tags)
            .field("reading_time", &reading_time)
            .finish()
    }
}

impl std::ops::Deref for Summary {
    type Target = PageCtx;

    fn deref(&self) -> &PageCtx {
        &self.page
    }
}

impl PartialEq for Summary {
    fn eq(&self, other: &Summary) -> bool {
        self.is_of(&other.page) || self.fields() == other.fields()
    }
}

impl Eq for Summary {}

impl Hash for Summary {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

impl Serialize for Summary {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct as _;
        let (title, url, date, description, summary, tags, reading_time) = self.fields();
        let mut s = serializer.serialize_struct("Summary", 7)?;
        s.serialize_field("title", title)?;
        s.serialize_field("url", url)?;
        s.serialize_field("date", &date)?;
        s.serialize_field("description", &description)?;
        s.serialize_field("summary", &summary)?;
        s.serialize_field("tags", tags)?;
        s.serialize_field("reading_time", &reading_time)?;
        s.end()
    }
}

#[derive(Debug, Clone, Serialize, Hash)]
pub struct SubsectionCtx {
    pub title: String,
    pub url: String,
    pub page_count: usize,
}

/// A section (or the home page, or a tag listing) as its template sees it.
#[derive(Debug, Clone, Serialize)]
pub struct SectionCtx {
    pub title: String,
    pub url: String,
    pub content: Arc<str>,
    pub description: Option<String>,
    /// Shared: a section of thousands of pages must not copy their summaries.
    pub pages: Vec<Arc<Summary>>,
    pub subsections: Vec<SubsectionCtx>,
    pub extra: Arc<serde_json::Map<String, serde_json::Value>>,
    /// Where this listing page sits among its section's, when the listing is split.
    pub paginator: Option<Box<crate::tree::paginate::Paginator>>,
}

impl Hash for SectionCtx {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.title.hash(state);
        self.url.hash(state);
        self.content.hash(state);
        self.description.hash(state);
        self.pages.hash(state);
        self.subsections.hash(state);
        extra_text(&self.extra).hash(state);
        self.paginator.hash(state);
    }
}

/// `site`, the same for every page of one build.
#[derive(Debug, Default, Serialize)]
pub struct SiteCtx {
    pub title: String,
    pub description: Option<String>,
    pub base_url: String,
    pub has_custom_css: bool,
    pub sections: Vec<Link>,
    pub recent_pages: Vec<Summary>,
    /// `/atom.xml` when the site has dated pages.
    pub feed_url: Option<String>,
    pub tags: Vec<TagLink>,
    /// Every term of categories and the site's own taxonomies, by taxonomy name.
    pub taxonomies: std::collections::BTreeMap<String, Vec<TagLink>>,
    /// `[extra]` of `site.toml`.
    pub extra: toml::Table,
    /// An mdBook book's title, authors and table of contents.
    pub book: Option<crate::book::BookCtx>,
}

impl Hash for SiteCtx {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.title.hash(state);
        self.description.hash(state);
        self.base_url.hash(state);
        self.has_custom_css.hash(state);
        self.sections.hash(state);
        self.recent_pages.hash(state);
        self.feed_url.hash(state);
        self.tags.hash(state);
        self.taxonomies.hash(state);
        self.book.hash(state);
        self.extra.to_string().hash(state);
    }
}

/// A fast, deterministic hash of anything hashable: xxh3 with its default secret, the
/// same in every run (fingerprints are kept between builds). SipHash, before, was the
/// build's costliest function of its own (3.4% of a one-shot tldr build's CPU).
pub fn fingerprint(value: &impl Hash) -> u64 {
    let mut hasher = xxhash_rust::xxh3::Xxh3Default::new();
    value.hash(&mut hasher);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(title: &str, reading_time: usize) -> Summary {
        Summary::listed(
            title,
            "/a/",
            Some("2026-01-02"),
            None,
            Some("first"),
            vec!["t".into()],
            reading_time,
        )
    }

    #[test]
    fn a_summary_is_its_seven_fields_whatever_else_its_page_holds() {
        let a = listed("A", 1);
        // The same listing fields on another page, with other content: equal, same hash.
        let mut other = (*a).clone();
        other.content = crate::output::spill::Text::new("<p>other body</p>");
        other.toc = vec![TocEntry {
            level: 2,
            id: "x".into(),
            title: "X".into(),
        }];
        let b = Summary::of(&Arc::new(other));
        assert_eq!(a, b);
        assert_eq!(fingerprint(&a), fingerprint(&b));
        // One listing field differs: unequal, another hash.
        for c in [listed("B", 1), listed("A", 2)] {
            assert_ne!(a, c);
            assert_ne!(fingerprint(&a), fingerprint(&c));
        }
        // Templates see those fields, in that order, and nothing else.
        assert_eq!(
            serde_json::to_string(&a).unwrap(),
            r#"{"title":"A","url":"/a/","date":"2026-01-02","description":null,"summary":"first","tags":["t"],"reading_time":1}"#
        );
    }
}
