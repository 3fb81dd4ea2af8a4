//! Hugo and Zola sites as they are (issue 18): the fixture sites under tests/fixtures/
//! build in-process with sited's builder, with no link warnings and no shortcode text
//! left in any page.

mod common;

use std::path::{Path, PathBuf};

use sited_builder::{BuildResult, Options, build_once};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(name)
}

fn build(name: &str) -> BuildResult {
    build_once(&fixture(name), Options::default()).expect("the build ran")
}

fn page(built: &BuildResult, url: &str) -> String {
    let bytes = common::bytes(&built.output, url).unwrap_or_else(|| panic!("no page at {url}"));
    String::from_utf8(bytes).expect("UTF-8")
}

/// A one-shot build publishes under base_url's path (`/lantern/`, `/harbour/`).
///
/// Every HTML page of the output with its text.
fn html_pages(built: &BuildResult) -> Vec<(String, String)> {
    let mut pages: Vec<(String, String)> = built
        .output
        .resources
        .keys()
        .filter(|url| url.ends_with('/') || url.ends_with(".html"))
        .map(|url| (url.clone(), page(built, url)))
        .collect();
    pages.sort();
    pages
}

/// No shortcode syntax of either generator is left in any page.
fn assert_no_shortcode_text(built: &BuildResult) {
    for (url, html) in html_pages(built) {
        for raw in [
            "{{<", "{{%", ">}}", "%}}", "{{ ", "{% ", "{%end", "@ref:", "@/",
        ] {
            assert!(!html.contains(raw), "{url} has {raw:?} in it:\n{html}");
        }
    }
}

fn warnings(built: &BuildResult) -> Vec<String> {
    built
        .report
        .diagnostics
        .iter()
        .map(|d| format!("{:?}: {d}", d.severity))
        .collect()
}

#[test]
fn hugo_docs_builds_with_no_link_warnings_and_no_shortcode_text() {
    let built = build("hugo-docs");
    let warnings = warnings(&built);
    assert!(
        warnings.iter().all(|w| !w.contains("leads nowhere")),
        "{warnings:#?}"
    );
    assert!(!built.report.has_errors(), "{warnings:#?}");
    assert_no_shortcode_text(&built);
    // One warning for the shortcode with no template, at its first use, counted.
    let notice: Vec<_> = warnings.iter().filter(|w| w.contains("`notice`")).collect();
    assert_eq!(notice.len(), 1, "{warnings:#?}");
    assert!(
        notice[0].contains("docs/getting-started/configure.md:15") && notice[0].contains("once"),
        "{notice:?}"
    );
    // The menus Hugo would show are not read: said, naming the file.
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("config/_default") && w.contains("menus")),
        "{warnings:#?}"
    );
}

#[test]
fn hugo_config_and_shortcodes_render() {
    let built = build("hugo-docs");
    let home = page(&built, "/");
    assert!(home.contains("Lantern Docs"), "title from hugo.toml");
    // ref/relref (case-insensitive, a folder naming its _index.md), param from params.toml.
    assert!(
        home.contains("href=\"/lantern/getting-started/install-guide/\""),
        "{home}"
    );
    assert!(home.contains("href=\"/lantern/blog/\""), "{home}");
    assert!(home.contains("This is version 2.4."), "{home}");
    let configure = page(&built, "/getting-started/configure/");
    assert!(
        configure.contains("<details><summary>Why twice?</summary>"),
        "{configure}"
    );
    assert!(
        configure.contains("<strong>load</strong>"),
        "details content is Markdown"
    );
    assert!(
        configure.contains("<aside class=\"alert alert-tip\">Check the hook every season.</aside>"),
        "{configure}"
    );
    assert!(
        configure.contains("data-shortcode=\"notice\""),
        "the box naming it"
    );
    assert!(
        configure.contains("<strong>plastic</strong>"),
        "its content, as Markdown"
    );
    let install = page(&built, "/getting-started/install-guide/");
    assert!(
        install.contains("href=\"/lantern/getting-started/configure/#the-hook\""),
        "{install}"
    );
    assert!(install.contains("<figure><img src=\"/lantern/images/hook.svg\" alt=\"A hook\"><figcaption>A sturdy hook</figcaption></figure>"), "{install}");
    assert!(
        install.contains("paraffin") && install.contains("<pre"),
        "highlight is a code block"
    );
    // Content comes from docs/ (module mount), so the future and expired pages are left out.
    assert!(built.output.get("/guides/lighting/matches/").is_some());
    assert!(built.output.get("/guides/lighting/future/").is_none());
    assert!(built.output.get("/guides/lighting/expired/").is_none());
    assert!(
        built.output.get("/shared/notice-text/").is_none(),
        "headless bundle"
    );
}

#[test]
fn zola_site_builds_with_no_link_warnings_and_no_shortcode_text() {
    let built = build("zola-site");
    let warnings = warnings(&built);
    assert!(warnings.is_empty(), "{warnings:#?}");
    assert_no_shortcode_text(&built);
    let home = page(&built, "/");
    assert!(home.contains("Harbour Notes"), "title from config.toml");
    assert!(
        home.contains("href=\"/harbour/blog/spring-tides/\""),
        "@/ link: {home}"
    );
    let spring = page(&built, "/blog/spring-tides/");
    assert!(
        spring.contains("href=\"/harbour/blog/neap-tides/#the-quarter-moons\""),
        "{spring}"
    );
    assert!(
        spring.contains("youtube-nocookie.com/embed/dQw4w9WgXcQ"),
        "{spring}"
    );
    assert!(
        spring.contains("<div class=\"note note-info\">"),
        "{spring}"
    );
    assert!(
        spring.contains("<strong>local</strong>"),
        "body through the markdown filter"
    );
    assert!(
        built.output.get("/authors/mira/").is_some(),
        "taxonomy from config.toml"
    );
}
