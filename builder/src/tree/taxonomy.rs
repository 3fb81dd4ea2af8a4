//! Taxonomies besides tags: `categories` always, and any other a site names in
//! `site.toml` (`taxonomies = ["series", "authors"]`). A page lists its terms in front
//! matter as `categories = ["rust"]` (a string is one term), or under a `[taxonomies]`
//! table as Zola writes them. Each taxonomy gets an index at `/NAME/` and each term a
//! listing at `/NAME/TERM/` (paginated like sections) with a feed of its dated pages.
//!
//! Tags are the same thing with a typed front-matter key of their own and are kept apart
//! in [`Tree::tags`](super::Tree::tags) (and `site.tags`, `page.tag_urls`), as before.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::{EMPTY, NO_EXTRA, Tree, listing_key};
use crate::context::{SectionCtx, SubsectionCtx, TagLink};
use crate::url::slugify;

/// The taxonomy every site has besides tags.
pub const BUILT_IN: &str = "categories";

/// One taxonomy's terms and, for each, the pages carrying it (source order). Terms
/// that share a URL (`Rust` and `rust`) are one term, named as first written.
#[derive(Debug, Clone, Default)]
pub struct Taxonomy {
    pub name: String,
    pub terms: BTreeMap<String, Vec<usize>>,
    /// URL segment → the term's name in `terms`.
    by_slug: BTreeMap<String, String>,
}

impl Taxonomy {
    /// The URL of the taxonomy's index: `/categories/`.
    pub fn url(&self) -> String {
        format!("/{}/", slugify(&self.name))
    }

    /// The name a term is listed under (the first spelling of its URL).
    pub fn canonical<'a>(&'a self, term: &'a str) -> &'a str {
        self.by_slug
            .get(&slugify(term))
            .map_or(term, String::as_str)
    }

    /// The URL of one term's listing: `/categories/rust/`.
    pub fn term_url(&self, term: &str) -> String {
        format!("/{}/{}/", slugify(&self.name), slugify(term))
    }
}

/// Collects the terms of every page (`pages[i]` is page `i`'s front-matter `extra`,
/// `None` for a page that is not listed anywhere).
pub fn collect<'a>(
    names: &[String],
    pages: impl Iterator<Item = Option<&'a Map<String, Value>>> + Clone,
) -> Vec<Taxonomy> {
    names
        .iter()
        .map(|name| {
            let mut taxonomy = Taxonomy {
                name: name.clone(),
                ..Taxonomy::default()
            };
            for (i, extra) in pages.clone().enumerate() {
                for term in extra.map(|e| terms_of(e, name)).unwrap_or_default() {
                    let term = taxonomy
                        .by_slug
                        .entry(slugify(&term))
                        .or_insert(term)
                        .clone();
                    let pages = taxonomy.terms.entry(term).or_default();
                    if pages.last() != Some(&i) {
                        pages.push(i);
                    }
                }
            }
            taxonomy
        })
        .collect()
}

impl Tree {
    /// Each taxonomy's terms of page `i` with their URLs and counts, by taxonomy name
    /// (`page.taxonomies`); taxonomies the page has no term of are left out.
    pub fn term_links(&self, i: usize) -> BTreeMap<String, Vec<TagLink>> {
        let extra = &self.page(i).extra;
        self.taxonomies
            .iter()
            .filter_map(|taxonomy| {
                let mut links: Vec<TagLink> = terms_of(extra, &taxonomy.name)
                    .into_iter()
                    .map(|term| {
                        let name = taxonomy.canonical(&term);
                        TagLink {
                            url: taxonomy.term_url(name),
                            count: taxonomy.terms.get(name).map_or(0, Vec::len),
                            name: name.to_string(),
                        }
                    })
                    .collect();
                // `rust` and `Rust` on one page are one link.
                let mut seen = Vec::with_capacity(links.len());
                links.retain(|link| {
                    let new = !seen.contains(&link.url);
                    seen.push(link.url.clone());
                    new
                });
                (!links.is_empty()).then(|| (taxonomy.name.clone(), links))
            })
            .collect()
    }

    /// Every term of every taxonomy with a term, by taxonomy name (`site.taxonomies`).
    pub fn all_terms(&self) -> BTreeMap<String, Vec<TagLink>> {
        self.taxonomies
            .iter()
            .filter(|taxonomy| !taxonomy.terms.is_empty())
            .map(|taxonomy| {
                let links = taxonomy
                    .terms
                    .iter()
                    .map(|(term, pages)| TagLink {
                        name: term.clone(),
                        url: taxonomy.term_url(term),
                        count: pages.len(),
                    })
                    .collect();
                (taxonomy.name.clone(), links)
            })
            .collect()
    }

    /// The listing of one term's pages.
    pub fn term_ctx(&self, taxonomy: &Taxonomy, term: &str, pages: &[usize]) -> SectionCtx {
        let mut pages = pages.to_vec();
        pages.sort_by_cached_key(|&i| listing_key(self.page(i)));
        SectionCtx {
            title: format!("{} “{term}”", title_case(&taxonomy.name)),
            url: taxonomy.term_url(term),
            content: EMPTY.clone(),
            description: None,
            extra: NO_EXTRA.clone(),
            paginator: None,
            pages: self.listing(&pages),
            subsections: Vec::new(),
        }
    }

    /// A taxonomy's index: every term, with its count.
    pub fn taxonomy_index_ctx(&self, taxonomy: &Taxonomy) -> SectionCtx {
        SectionCtx {
            title: title_case(&taxonomy.name),
            url: taxonomy.url(),
            content: EMPTY.clone(),
            description: None,
            extra: NO_EXTRA.clone(),
            paginator: None,
            pages: Vec::new(),
            subsections: taxonomy
                .terms
                .iter()
                .map(|(term, pages)| SubsectionCtx {
                    title: term.clone(),
                    url: taxonomy.term_url(term),
                    page_count: pages.len(),
                })
                .collect(),
        }
    }
}

/// `categories` → `Categories`, for headings.
fn title_case(name: &str) -> String {
    let mut chars = name.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect()
    })
}

/// The taxonomies of a site that declares `declared` in `site.toml` (tags aside, and
/// without repeats): `categories` first, then the declared ones in order.
pub fn names(declared: &[String]) -> Vec<String> {
    let mut names = vec![BUILT_IN.to_string()];
    for name in declared {
        if name != "tags" && !names.contains(name) {
            names.push(name.clone());
        }
    }
    names
}

/// The terms a page's front matter (its `extra`) gives for taxonomy `name`, trimmed and
/// without repeats: `name = ["a", "b"]`, `name = "a"`, or `[taxonomies] name = [...]`.
pub fn terms_of(extra: &Map<String, Value>, name: &str) -> Vec<String> {
    let value = extra.get(name).or_else(|| {
        extra
            .get("taxonomies")
            .and_then(Value::as_object)
            .and_then(|t| t.get(name))
    });
    let mut terms: Vec<String> = match value {
        Some(Value::String(term)) => vec![term.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    };
    terms.retain(|t| !t.trim().is_empty());
    let mut seen = Vec::with_capacity(terms.len());
    terms.retain(|t| {
        let new = !seen.contains(t);
        seen.push(t.clone());
        new
    });
    terms
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_and_declared_taxonomies() {
        let declared = ["series".to_string(), "tags".into(), "series".into()];
        assert_eq!(names(&declared), ["categories", "series"]);
    }

    #[test]
    fn terms_come_from_front_matter_in_either_shape() {
        let extra: Map<String, Value> = serde_json::from_str(
            r#"{"categories": ["Rust", "Web", "Rust"], "series": "Intro",
                "taxonomies": {"authors": ["Ann"]}}"#,
        )
        .unwrap();
        assert_eq!(terms_of(&extra, "categories"), ["Rust", "Web"]);
        assert_eq!(terms_of(&extra, "series"), ["Intro"]);
        assert_eq!(terms_of(&extra, "authors"), ["Ann"]);
        assert!(terms_of(&extra, "none").is_empty());
        let taxonomy = Taxonomy {
            name: "categories".into(),
            ..Taxonomy::default()
        };
        assert_eq!(taxonomy.term_url("Rust Web"), "/categories/rust-web/");
    }

    #[test]
    fn spellings_of_one_url_are_one_term() {
        let a: Map<String, Value> = serde_json::from_str(r#"{"categories": "Rust"}"#).unwrap();
        let b: Map<String, Value> =
            serde_json::from_str(r#"{"categories": ["rust", "RUST"]}"#).unwrap();
        let names = ["categories".to_string()];
        let taxonomies = collect(&names, [Some(&a), Some(&b)].into_iter());
        let terms: Vec<_> = taxonomies[0].terms.iter().collect();
        assert_eq!(terms, [(&"Rust".to_string(), &vec![0, 1])]);
        assert_eq!(taxonomies[0].canonical("rust"), "Rust");
    }
}
