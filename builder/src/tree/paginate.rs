//! Pagination: a listing of more pages than its section's `paginate_by` (front matter of
//! its `_index.md`, else `paginate_by` in `site.toml`, else [`DEFAULT_PAGINATE_BY`]) is
//! split into pages of that many entries: the first at the section's own URL, the others
//! at `/section/page/2/`, `/section/page/3/`, … Each carries a [`Paginator`] (first,
//! previous, next and last URLs) for templates.

use serde::Serialize;

use crate::context::SectionCtx;
use crate::url::encode_path;

/// Entries per listing page when neither the section nor `site.toml` says: big enough
/// that a blog or a book is one page, small enough that a section of thousands of pages
/// (tldr's `common/`) never makes a page of megabytes.
pub const DEFAULT_PAGINATE_BY: usize = 200;

/// Where one listing page sits among its section's pages (`section.paginator`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Paginator {
    /// 1-based.
    pub current: usize,
    /// Number of listing pages.
    pub total: usize,
    pub per_page: usize,
    /// Entries over all listing pages.
    pub total_entries: usize,
    pub first: String,
    pub prev: Option<String>,
    pub next: Option<String>,
    pub last: String,
}

/// The decoded URL of listing page `n` (1-based) of the section at `url`.
pub fn pager_url(url: &str, n: usize) -> String {
    if n <= 1 {
        url.to_string()
    } else {
        format!("{url}page/{n}/")
    }
}

/// Splits a listing into its pages, as (decoded URL, context). `per_page` 0 means no
/// pagination; a listing that fits on one page gets no paginator.
pub fn split(ctx: SectionCtx, url: &str, per_page: usize) -> Vec<(String, SectionCtx)> {
    if per_page == 0 || ctx.pages.len() <= per_page {
        return vec![(url.to_string(), ctx)];
    }
    let total_entries = ctx.pages.len();
    let total = total_entries.div_ceil(per_page);
    let href = |n: usize| encode_path(&pager_url(url, n));
    let mut out = Vec::with_capacity(total);
    for (i, chunk) in ctx.pages.chunks(per_page).enumerate() {
        let current = i + 1;
        let paginator = Paginator {
            current,
            total,
            per_page,
            total_entries,
            first: href(1),
            prev: (current > 1).then(|| href(current - 1)),
            next: (current < total).then(|| href(current + 1)),
            last: href(total),
        };
        let page = SectionCtx {
            pages: chunk.to_vec(),
            paginator: Some(Box::new(paginator)),
            ..ctx.clone()
        };
        out.push((pager_url(url, current), page));
    }
    out
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::context::Summary;

    fn summary(n: usize) -> Summary {
        Summary::listed(
            &format!("p{n}"),
            &format!("/s/p{n}/"),
            None,
            None,
            None,
            Vec::new(),
            1,
        )
    }

    fn section(pages: Vec<Arc<Summary>>) -> SectionCtx {
        SectionCtx {
            title: "S".into(),
            url: "/s/".into(),
            content: Arc::from(""),
            description: None,
            pages,
            subsections: Vec::new(),
            extra: Arc::default(),
            paginator: None,
        }
    }

    #[test]
    fn a_long_listing_is_split_with_links_between_its_pages() {
        let all: Vec<Arc<Summary>> = (0..5).map(|n| Arc::new(summary(n))).collect();
        let split = split(section(all), "/s/", 2);
        let urls: Vec<&str> = split.iter().map(|(url, _)| url.as_str()).collect();
        assert_eq!(urls, ["/s/", "/s/page/2/", "/s/page/3/"]);
        let second = split[1].1.paginator.as_ref().unwrap();
        assert_eq!(second.current, 2);
        assert_eq!(second.total, 3);
        assert_eq!(second.prev.as_deref(), Some("/s/"));
        assert_eq!(second.next.as_deref(), Some("/s/page/3/"));
        assert_eq!(second.last, "/s/page/3/");
        assert_eq!(split[1].1.pages[0].title, "p2");
        assert_eq!(split[2].1.pages.len(), 1);
        assert_eq!(split[0].1.paginator.as_ref().unwrap().prev, None);
    }

    #[test]
    fn a_short_listing_or_zero_is_one_page_without_a_paginator() {
        let all: Vec<Arc<Summary>> = (0..3).map(|n| Arc::new(summary(n))).collect();
        let one = split(section(all.clone()), "/s/", 3);
        assert_eq!(one.len(), 1);
        assert!(one[0].1.paginator.is_none());
        assert_eq!(split(section(all), "/s/", 0).len(), 1);
    }
}
