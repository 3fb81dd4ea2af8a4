//! mdBook books (issue 19 item 2) on `tests/fixtures/mdbook-book`, a small book in the
//! shape of a real one: it builds with no link warning, only the chapters SUMMARY.md
//! lists, in its order, with its numbering, parts and draft; includes are expanded; and
//! a rebuild follows edits of SUMMARY.md and of the files chapters include.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::text;
use sited_builder::{Changes, Options, Site, build_once};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/mdbook-book")
}

/// A copy of the fixture to edit.
fn copy() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap().join("book");
    copy_tree(&fixture(), &root);
    (dir, root)
}

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// The `href` of the `rel="{rel}"` link of a page.
fn pager(html: &str, rel: &str) -> Option<String> {
    let at = html.find(&format!("rel=\"{rel}\""))?;
    let start = html[..at].rfind("href=\"")? + 6;
    Some(html[start..start + html[start..].find('"')?].to_string())
}

#[test]
fn the_fixture_book_builds_as_mdbook_would_with_no_link_warning() {
    let built = build_once(&fixture(), Options::default()).unwrap();
    let (output, report) = (&built.output, &built.report);
    let diagnostics: Vec<String> = report.diagnostics.iter().map(|d| d.to_string()).collect();
    assert_eq!(
        diagnostics,
        [
            "book.toml: [preprocessor.lantern-notes]: sited does not run mdBook preprocessors \
             (they are programs); chapters are built without it",
            "src/not-in-summary.md: not listed in SUMMARY.md, so not built (as in mdBook): list \
             it there to make it a chapter",
        ],
        "no link warning, no error"
    );
    assert!(!report.has_errors());

    // Only SUMMARY.md's chapters, no SUMMARY page, no page for the file it does not list.
    let order = [
        "/preface/",
        "/introduction/",
        "/guide/installing/",
        "/guide/on-a-boat/",
        "/guide/on-a-hill/",
        "/guide/trimming/",
        "/reference/fuels/",
        "/reference/paraffin/",
        "/contributors/",
    ];
    for url in order {
        assert!(output.get(url).is_some(), "{url}");
    }
    for url in ["/SUMMARY/", "/not-in-summary/", "/guide/", "/reference/"] {
        assert!(output.get(url).is_none(), "{url} is no page of the book");
    }

    // Prev/next across parts and folders, in SUMMARY.md's order (the draft has no page).
    for pair in order.windows(2) {
        let here = text(output, pair[0]).unwrap();
        assert_eq!(
            pager(&here, "next").as_deref(),
            Some(pair[1]),
            "after {}",
            pair[0]
        );
        let there = text(output, pair[1]).unwrap();
        assert_eq!(
            pager(&there, "prev").as_deref(),
            Some(pair[0]),
            "before {}",
            pair[1]
        );
    }

    // The sidebar: parts, numbers across parts, nesting, the draft without a link.
    let page = text(output, "/reference/paraffin/").unwrap();
    assert!(
        page.contains("<li class=\"toc-part\">Reference</li>"),
        "{page}"
    );
    assert!(
        page.contains("<a href=\"/reference/paraffin/\" aria-current=\"page\"><span class=\"toc-number\">4.1.</span> Paraffin</a>"),
        "{page}"
    );
    assert!(
        page.contains("<li class=\"toc-chapter toc-level-0 toc-draft\"><span class=\"toc-number\">5.</span> Storms</li>"),
        "{page}"
    );
    assert!(
        page.contains("<a href=\"/preface/\">Preface</a>"),
        "prefix: unnumbered"
    );

    // book.toml's title and authors.
    let home = text(output, "/").unwrap();
    assert!(
        home.contains("<title>The Lantern Handbook</title>"),
        "{home}"
    );
    assert!(home.contains("by Ada Keeper, Brin Wick"), "{home}");

    // A chapter opening with a comment is titled by its heading; includes are expanded
    // (whole, by anchor, by range); `{{#title}}` makes the <title>.
    let intro = text(output, "/introduction/").unwrap();
    assert!(intro.contains("<h1 class=\"page-title\">Introduction</h1>"));
    assert!(intro.contains("check_hook"), "the whole listing");
    let installing = text(output, "/guide/installing/").unwrap();
    assert!(installing.contains("hook_ok"), "the anchored part");
    assert!(
        !installing.contains("ANCHOR"),
        "anchor lines are not included"
    );
    let hill = text(output, "/guide/on-a-hill/").unwrap();
    assert!(
        hill.contains("<title>On a hill — The Lantern Handbook</title>"),
        "{hill}"
    );
    // rustdoc_include: the lines outside the anchor are hidden, as mdBook shows them.
    let boat = text(output, "/guide/on-a-boat/").unwrap();
    assert!(
        boat.contains("hook_ok") && !boat.contains("kilograms"),
        "{boat}"
    );
    for url in order {
        assert!(!text(output, url).unwrap().contains("{{#"), "{url}");
    }

    // additional-css is served and linked.
    assert!(output.get("/theme/extra.css").is_some());
    assert!(intro.contains("<link rel=\"stylesheet\" href=\"/theme/extra.css\">"));

    // The redirect book.toml asks for.
    let old = text(output, "/old-intro.html").unwrap();
    assert!(old.contains("url=/introduction/"), "{old}");
}

#[test]
fn a_book_rebuilds_on_summary_and_included_file_edits() {
    let (_dir, root) = copy();
    let mut site = Site::open(&root, Options::default());
    let first = site.build(Changes::Everything).unwrap();
    assert!(!first.report.has_errors(), "{:?}", first.report.diagnostics);

    // An included listing changes: the chapters that include it follow.
    let listing = root.join("listings/hello/src/main.rs");
    let source = fs::read_to_string(&listing).unwrap();
    fs::write(&listing, source.replace("hook holds", "hook still holds")).unwrap();
    let built = site.build(Changes::Paths(vec![listing])).unwrap();
    let installing = text(&built.output, "/guide/installing/").unwrap();
    assert!(installing.contains("hook still holds"), "{installing}");

    // SUMMARY.md lists the stray file and drops a chapter: pages and order follow.
    let summary = root.join("src/SUMMARY.md");
    let text_of = fs::read_to_string(&summary).unwrap();
    let edited = text_of
        .replace("- [Trimming the wick](guide/trimming.md)\n", "")
        .replace("- [Storms]()", "- [Storms](not-in-summary.md)");
    fs::write(&summary, edited).unwrap();
    let built = site.build(Changes::Paths(vec![summary])).unwrap();
    assert!(built.output.get("/guide/trimming/").is_none());
    assert!(built.output.get("/not-in-summary/").is_some());
    let hill = text(&built.output, "/guide/on-a-hill/").unwrap();
    assert_eq!(pager(&hill, "next").as_deref(), Some("/reference/fuels/"));
    // The preface linked the dropped chapter: now a warning, at its line.
    let warnings: Vec<String> = built.report.warnings().map(|d| d.to_string()).collect();
    assert!(
        warnings.iter().any(|w| w
            .starts_with("src/preface.md:4: link to guide/trimming.md#when-to-trim leads nowhere")),
        "{warnings:#?}"
    );

    // A chapter including a file that is not there: an error at the directive's line,
    // the rest of the book builds.
    let fuels = root.join("src/reference/fuels.md");
    fs::write(&fuels, "# Fuels\n\nText.\n\n{{#include missing.txt}}\n").unwrap();
    let built = site.build(Changes::Paths(vec![fuels])).unwrap();
    let errors: Vec<String> = built.report.errors().map(|d| d.to_string()).collect();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(
        errors[0].starts_with(
            "src/reference/fuels.md:5: {{#include missing.txt}}: cannot read missing.txt"
        ),
        "{errors:#?}"
    );
    assert!(built.output.get("/introduction/").is_some());
}
