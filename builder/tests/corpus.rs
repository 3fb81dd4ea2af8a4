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

/// The chapters SUMMARY.md lists (`](file.md)` targets), in order.
fn summary_chapters(summary: &str) -> Vec<String> {
    let mut chapters = Vec::new();
    for line in summary.lines() {
        if let Some(at) = line.find("](") {
            let target = &line[at + 2..line[at..].find(')').map_or(line.len(), |e| at + e)];
            if !target.is_empty() {
                chapters.push(target.to_string());
            }
        }
    }
    chapters
}

/// The `href` of the first `rel="{rel}"` link of a page.
fn pager(html: &str, rel: &str) -> Option<String> {
    let marker = format!("rel=\"{rel}\"");
    let at = html.find(&marker)?;
    let start = html[..at].rfind("href=\"")? + 6;
    let end = start + html[start..].find('"')?;
    Some(html[start..end].to_string())
}

#[test]
fn the_rust_book_builds_as_the_book_it_is_and_every_internal_link_resolves() {
    let root = corpus("rust-book");
    let built = build_once(&root, Options::default()).unwrap();
    let (output, report) = (&built.output, &built.report);
    // Nothing but what book.toml asks and sited cannot do: no errors (every include found
    // its file and anchor), no link that leads nowhere, no chapter left out.
    let warnings: Vec<String> = report.diagnostics.iter().map(|d| d.to_string()).collect();
    assert!(!report.has_errors(), "{warnings:#?}");
    assert!(
        warnings.iter().all(|w| w.starts_with("book.toml: ")),
        "{warnings:#?}"
    );
    // 2 preprocessors; 4 additional-css and 1 additional-js files the corpus copy lacks.
    assert_eq!(warnings.len(), 7, "{warnings:#?}");

    // SUMMARY.md decides the chapters: each listed one has a page, SUMMARY itself none.
    let summary = std::fs::read_to_string(root.join("content/SUMMARY.md")).unwrap();
    let chapters = summary_chapters(&summary);
    assert_eq!(chapters.len(), 111);
    let url = |chapter: &str| format!("/{}/", chapter.trim_end_matches(".md"));
    for chapter in &chapters {
        assert!(output.get(&url(chapter)).is_some(), "{chapter} has no page");
    }
    assert!(output.get("/SUMMARY/").is_none());
    assert!(report.pages >= chapters.len(), "{report:?}");

    // Prev/next in SUMMARY.md's order, across the whole book, as mdBook links them.
    for pair in chapters.windows(2) {
        let (a, b) = (url(&pair[0]), url(&pair[1]));
        let here = text(output, &a).unwrap();
        assert_eq!(pager(&here, "next"), Some(b.clone()), "next of {a}");
        let there = text(output, &b).unwrap();
        assert_eq!(pager(&there, "prev"), Some(a.clone()), "prev of {b}");
    }
    let first = text(output, &url(&chapters[0])).unwrap();
    assert_eq!(pager(&first, "prev"), None);

    // The sidebar numbers chapters as mdBook does.
    let getting_started = text(output, "/ch01-00-getting-started/").unwrap();
    assert!(
        getting_started.contains("<span class=\"toc-number\">1.2.</span> Hello, World!</a>"),
        "numbered table of contents"
    );

    // Every directive expanded, every listing included.
    let mut directives = 0;
    for chapter in &chapters {
        let source = std::fs::read_to_string(root.join("content").join(chapter)).unwrap();
        directives += source.matches("{{#").count();
        let html = text(output, &url(chapter)).unwrap();
        assert!(
            !html.contains("{{#"),
            "{chapter}: a directive left in the output"
        );
    }
    assert!(directives > 700, "only {directives} directives");
    let guessing = text(output, "/ch02-00-guessing-game-tutorial/").unwrap();
    assert!(
        guessing.contains("read_line"),
        "the guessing game's listings"
    );

    // A chapter opening with an HTML comment is titled by its first heading.
    for chapter in [
        "ch06-02-match.md",
        "ch10-02-traits.md",
        "ch13-01-closures.md",
    ] {
        let source = std::fs::read_to_string(root.join("content").join(chapter)).unwrap();
        assert!(source.starts_with("<!--"), "{chapter}");
        let heading = source
            .lines()
            .find_map(|line| line.strip_prefix("## ").or(line.strip_prefix("# ")))
            .unwrap();
        let html = text(output, &url(chapter)).unwrap();
        let title = format!(
            "<h1 class=\"page-title\">{}</h1>",
            heading.trim().replace('`', "")
        );
        assert!(html.contains(&title), "{chapter}: {title}");
    }

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

    // The link check of every page's HTML, independent of the builder's own: mdBook
    // does not check links, so its baseline is every link of this book that leads
    // nowhere in its own output; links that climb out of the book (`../std/…`) lead
    // to sibling books on doc.rust-lang.org in both and are not counted.
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
