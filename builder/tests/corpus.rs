//! The builder on real content nobody here shaped for it (`../shared/corpus`): the tldr
//! pages (7,425 small files, no front matter) and the Rust book (long chapters, code,
//! images, mdBook-style links). Every page builds, and every internal link of the book
//! resolves to something that was built.

mod common;

use std::collections::HashSet;
use std::path::Path;

use common::{corpus, text};
use sited_builder::url::percent_decode;
use sited_builder::{Body, Options, build_once};

fn count_markdown(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|entry| {
            let path = entry.path();
            if path.is_dir() {
                count_markdown(&path)
            } else {
                usize::from(path.extension().is_some_and(|e| e == "md"))
            }
        })
        .sum()
}

#[test]
fn tldr_builds_every_page_without_an_error() {
    let root = corpus("tldr");
    let pages = count_markdown(&root.join("content"));
    assert_eq!(pages, 7425);
    let built = build_once(&root, Options::default()).unwrap();
    let (output, report) = (&built.output, &built.report);
    assert!(
        report.diagnostics.is_empty(),
        "{:#?}",
        &report.diagnostics[..report.diagnostics.len().min(10)]
    );
    // Every page, plus a listing per platform folder, the home page and the 404.
    let html: Vec<&String> = output
        .resources
        .iter()
        .filter(|(_, r)| r.is_html())
        .map(|(url, _)| url)
        .collect();
    let sections = std::fs::read_dir(root.join("content"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().is_dir())
        .count();
    let is_pager = |url: &str| {
        url.strip_suffix('/')
            .and_then(|u| u.rsplit_once("/page/"))
            .is_some_and(|(_, n)| n.parse::<usize>().is_ok())
    };
    let listing_pages = html.iter().filter(|url| is_pager(url)).count();
    assert_eq!(
        html.len() - listing_pages,
        pages + sections + 2,
        "one page per file"
    );
    // Big sections are split (/common/ has 4,613 entries): no page is huge.
    assert!(listing_pages > 20, "{listing_pages} listing pages");
    for url in &html {
        let size = common::bytes(output, url).unwrap().len();
        assert!(size <= 200 * 1024, "{url} is {size} bytes");
    }
    assert!(
        text(output, "/common/page/2/")
            .unwrap()
            .contains("href=\"/common/page/3/\"")
    );
    // No dated pages: the home page lists the sections.
    let home = text(output, "/").unwrap();
    assert!(home.contains("<a href=\"/common/\">common</a>"), "{home}");
    let tar = text(output, "/common/tar/").unwrap();
    assert!(
        tar.contains("<h1 class=\"page-title\">tar</h1>"),
        "title from the first heading"
    );
    assert!(tar.contains("Archiving utility"), "{tar}");
    // Odd file names still get a page: `[.md` is the `[` command.
    assert!(output.get("/common/[/").is_some());
    assert!(
        text(output, "/common/_./").unwrap().contains("alias of"),
        "the `.` command"
    );
}

/// `href="…"` and `src="…"` values of an HTML page.
fn links(html: &str) -> Vec<String> {
    let mut found = Vec::new();
    for attr in ["href=\"", "src=\""] {
        let mut rest = html;
        while let Some(at) = rest.find(attr) {
            rest = &rest[at + attr.len()..];
            let end = rest.find('"').unwrap_or(rest.len());
            found.push(rest[..end].replace("&amp;", "&"));
            rest = &rest[end..];
        }
    }
    found
}

fn ids(html: &str) -> HashSet<String> {
    let mut ids = HashSet::new();
    let mut rest = html;
    while let Some(at) = rest.find(" id=\"") {
        rest = &rest[at + 5..];
        let end = rest.find('"').unwrap_or(rest.len());
        ids.insert(rest[..end].to_string());
    }
    ids
}

#[test]
fn the_rust_book_builds_and_every_internal_link_resolves() {
    let root = corpus("rust-book");
    let built = build_once(&root, Options::default()).unwrap();
    let (output, report) = (&built.output, &built.report);
    assert!(report.diagnostics.is_empty(), "{:#?}", report.diagnostics);
    assert!(
        report.pages >= count_markdown(&root.join("content")),
        "{report:?}"
    );

    // Images are served, from their files.
    let image = output
        .get("/img/trpl04-01.svg")
        .expect("the book's images are served");
    assert!(matches!(image.body, Body::File(_)));
    assert!(image.content_type.starts_with("image/svg+xml"));

    // Code is highlighted.
    let chapter = text(output, "/ch03-02-data-types/").unwrap();
    assert!(
        chapter.contains("<code class=\"language-rust\">"),
        "highlighted Rust"
    );

    let mut broken = Vec::new();
    let mut checked = 0;
    let mut leaving = 0;
    for (url, resource) in &output.resources {
        if !resource.is_html() || url == "/404.html" {
            continue;
        }
        let html = text(output, url).unwrap();
        for link in links(&html) {
            if link.contains("://") || link.starts_with("mailto:") || link.starts_with("//") {
                continue;
            }
            // Links that climb out of the book (`../reference/…`) point at sibling
            // books on the web; they are left as written.
            if link.starts_with("../") {
                leaving += 1;
                continue;
            }
            checked += 1;
            let (path, fragment) = link.split_once('#').unwrap_or((&link, ""));
            let target = if path.is_empty() {
                url.clone()
            } else if path.starts_with('/') {
                percent_decode(path).unwrap()
            } else {
                format!("{url}{}", percent_decode(path).unwrap())
            };
            let target = if output.get(&target).is_some() {
                target
            } else if output.get(&format!("{target}/")).is_some() {
                format!("{target}/")
            } else {
                broken.push(format!("{url}: {link} (no such page or file)"));
                continue;
            };
            if !fragment.is_empty() {
                let page = text(output, &target).unwrap_or_default();
                if !ids(&page).contains(fragment) {
                    broken.push(format!("{url}: {link} (no #{fragment} there)"));
                }
            }
        }
    }
    assert!(checked > 1000, "only {checked} links checked");
    assert!(
        broken.is_empty(),
        "{} broken links of {checked} (and {leaving} leaving the book):\n{}",
        broken.len(),
        broken.join("\n")
    );
}
