//! Hugo and Zola sites as they are (issue 18): the fixture sites under tests/fixtures/
//! build in-process with sited's builder, with no link warnings and no shortcode text
//! left in any page.

mod common;

use std::path::{Path, PathBuf};

use sited_builder::{BuildResult, Changes, Options, Site, build_once};

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
            .any(|w| w.contains("config/_default/menus.toml: menus are not read")),
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

/// The URLs `hugo` 0.111 makes of tests/fixtures/hugo-docs (its sitemap), which sited
/// must make too: lowercased slugs, `url`, leaf bundles as pages, branch bundles as
/// sections, a headless bundle left out; plus `/install/`, an alias (a redirect page,
/// which Hugo's sitemap does not list but it writes too).
const HUGO_URLS: &[&str] = &[
    "/",
    "/blog/",
    "/blog/old-post/",
    "/blog/storm-season/",
    "/build-options/",
    "/categories/",
    "/categories/basics/",
    "/getting-started/",
    "/getting-started/configure/",
    "/getting-started/install-guide/",
    "/guides/",
    "/guides/lighting/",
    "/guides/lighting/matches/",
    "/install/",
    "/news/first-light/",
    "/shared/",
    "/tags/",
    "/tags/config/",
    "/tags/news/",
    "/tags/setup/",
    "/tags/weather/",
];

#[test]
fn hugo_urls_bundles_and_aliases_are_hugo_s() {
    let built = build("hugo-docs");
    let made: Vec<&str> = built
        .output
        .resources
        .keys()
        .map(String::as_str)
        .filter(|url| url.ends_with('/'))
        .filter(|url| !url.contains("/page/"))
        .collect();
    let mut made = made;
    made.sort_unstable();
    assert_eq!(made, HUGO_URLS);
    // A leaf bundle is a page of its parent section, listed there.
    let blog = page(&built, "/blog/");
    assert!(
        blog.contains("Storm Season") && blog.contains("First Light"),
        "{blog}"
    );
    // build.list = never: rendered, listed nowhere.
    assert!(!page(&built, "/").contains("Listed Nowhere"));
    // Each alias is a page redirecting to the page, by a relative link.
    let alias = page(&built, "/install/");
    assert!(
        alias.contains("content=\"0; url=../getting-started/install-guide/\""),
        "{alias}"
    );
    let old = page(&built, "/docs/old-install.html");
    assert!(
        old.contains("url=../getting-started/install-guide/"),
        "{old}"
    );
    // <!--more--> and `summary` make what listings show.
    let lighting = page(&built, "/guides/lighting/");
    assert!(
        lighting.contains("Strike away from you, light from below."),
        "{lighting}"
    );
}

#[test]
fn hugo_future_and_expired_pages_are_built_when_asked_like_drafts() {
    let options = Options {
        drafts: true,
        ..Options::default()
    };
    let built = build_once(&fixture("hugo-docs"), options).expect("the build ran");
    assert!(built.output.get("/guides/lighting/future/").is_some());
    assert!(built.output.get("/guides/lighting/expired/").is_some());
    assert!(
        built.output.get("/shared/notice-text/").is_none(),
        "headless: never"
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

/// Copies a fixture into a fresh folder (fixtures are read-only input).
fn copy_fixture(name: &str) -> tempfile::TempDir {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap().flatten() {
            let target = to.join(entry.file_name());
            if entry.path().is_dir() {
                copy(&entry.path(), &target);
            } else {
                std::fs::copy(entry.path(), target).unwrap();
            }
        }
    }
    let dir = tempfile::tempdir().unwrap();
    copy(&fixture(name), dir.path());
    dir
}

#[test]
fn a_shortcode_template_edit_rebuilds_the_pages_using_it() {
    let dir = copy_fixture("zola-site");
    let root = dir.path().canonicalize().unwrap();
    let mut site = Site::open(&root, Options::default());
    let first = site.build(Changes::Everything).unwrap();
    let spring = common::text(&first.output, "/blog/spring-tides/").unwrap();
    assert!(spring.contains("note note-info"), "{spring}");
    let template = root.join("templates/shortcodes/note.html");
    std::fs::write(&template, "<p class=\"edited-{{ kind }}\">{{ body }}</p>").unwrap();
    let next = site.build(Changes::Paths(vec![template])).unwrap();
    let spring = common::text(&next.output, "/blog/spring-tides/").unwrap();
    assert!(spring.contains("edited-info"), "{spring}");
    assert!(!spring.contains("note note-info"), "{spring}");
}
