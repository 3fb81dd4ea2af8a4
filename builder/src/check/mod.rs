//! The link check, run by every build once the output is known: every link and image of
//! every page's Markdown (raw HTML `href`/`src` included) that stays on the site must
//! lead to something the build made (a page, a file, a listing), and its `#fragment` to an
//! id of that page. One that does not is a warning at `file:line`, naming the target; a
//! strict build (`--strict`, `strict = true` in `site.toml`) makes every warning an error.
//!
//! Links with a scheme (`https:`, `mailto:`), protocol-relative ones (`//host/…`) and
//! relative ones that climb above the site's root (`../reference/…`, a sibling site
//! on the same host) cannot be checked here and are left alone.

use std::path::Path;

use rayon::prelude::*;
use rustc_hash::FxHashMap as HashMap;

use crate::load::layout::Layout;
use crate::report::{Diagnostic, Severity};
use crate::tree::Tree;
use crate::url::percent_decode;

/// One link (or image) of a page's body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkRef {
    /// As the Markdown has it (`../guide/intro.md#setup`).
    pub written: String,
    /// As the HTML has it (`/guide/intro/#setup`).
    pub href: String,
    /// Line of the source file (1-based) it is on.
    pub line: u32,
}

/// Whether a build made something at a (decoded) URL path.
pub type Exists<'a> = &'a (dyn Fn(&str) -> bool + Sync);

/// The ids of the content page served at a URL (sections' own text included), if one is.
type Ids<'a> = &'a (dyn Fn(&str) -> Option<&'a [String]> + Sync);

/// Checks every link of every page of `tree`. `exists` says whether the build made a URL.
pub fn links(tree: &Tree, layout: &Layout, exists: Exists<'_>) -> Vec<Diagnostic> {
    // Borrowed, not a set per page: few links name a fragment.
    let mut anchors: HashMap<&str, &[String]> = HashMap::default();
    for (i, page) in tree.pages.iter().enumerate() {
        if let Some(page) = page {
            anchors.insert(tree.placed.urls[i].as_str(), &page.anchors);
        }
    }
    let ids = |url: &str| anchors.get(url).copied();
    // On every core: after the pages are written it was a serial tail of every build.
    (0..tree.pages.len())
        .into_par_iter()
        .with_min_len(256)
        .flat_map_iter(|i| check_pages(tree, layout, exists, &ids, [i]))
        .collect()
}

/// Checks the links of the few pages `of` (indices into `tree`) against the whole site:
/// a fragment's page is looked up when a link names one, with no map of the whole site
/// made first (an edit's check, on every save).
pub fn links_of(
    tree: &Tree,
    layout: &Layout,
    exists: Exists<'_>,
    of: impl IntoIterator<Item = usize>,
) -> Vec<Diagnostic> {
    // The last page at a URL, as the map of `links` has it.
    let ids = |url: &str| {
        let i = tree.placed.urls.iter().rposition(|u| u == url)?;
        tree.pages[i].as_deref().map(|page| page.anchors.as_slice())
    };
    check_pages(tree, layout, exists, &ids, of)
}

fn check_pages(
    tree: &Tree,
    layout: &Layout,
    exists: Exists<'_>,
    anchors: Ids<'_>,
    of: impl IntoIterator<Item = usize>,
) -> Vec<Diagnostic> {
    let base = base_path(&layout.config.base_url);
    let mut found = Vec::new();
    for i in of {
        let Some(page) = &tree.pages[i] else { continue };
        let url = &tree.placed.urls[i];
        let source = tree.source(i);
        for link in &page.links {
            if leaves_the_site(&link.written, source.dir()) {
                continue;
            }
            if let Some(problem) = check(link, url, base, anchors, exists) {
                let file = layout.display_path(&source.source.path);
                found.push(Diagnostic {
                    severity: Severity::Warning,
                    ..Diagnostic::error(&file, problem).at(Some(link.line), None)
                });
            }
        }
    }
    found
}

/// Whether a relative link climbs above the content folder from the source's folder
/// `dir` (`../reference/…` of a book beside other books on one host).
fn leaves_the_site(written: &str, dir: &Path) -> bool {
    if written.starts_with(['/', '#']) || has_scheme(written) {
        return false;
    }
    let path = written.split(['#', '?']).next().unwrap_or("");
    let mut depth = dir.components().count();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." if depth == 0 => return true,
            ".." => depth -= 1,
            _ => depth += 1,
        }
    }
    false
}

/// What is wrong with `link` on the page at `page_url`, if anything.
fn check(
    link: &LinkRef,
    page_url: &str,
    base: &str,
    anchors: Ids<'_>,
    exists: Exists<'_>,
) -> Option<String> {
    let (path, fragment) = target(&link.href, page_url, base)?;
    // A Hugo `ref`/`relref` is named as the shortcode was written, not by the marker
    // the shortcode pass left for the link resolver.
    let reference = link.written.strip_prefix(crate::shortcodes::REF_PREFIX);
    let (link_to, written) = match reference {
        Some(target) => (format!("ref \"{target}\""), target),
        None => (format!("link to {}", link.written), link.written.as_str()),
    };
    // Unresolved, a link keeps what was written (a ref: its target).
    let unresolved = link.href == written;
    let Some(found) = [path.clone(), format!("{path}/")]
        .into_iter()
        .find(|candidate| exists(candidate))
    else {
        let is_page = Path::new(written.split(['#', '?']).next().unwrap_or(""))
            .extension()
            .is_some_and(|e| e == "md");
        return Some(if unresolved && (is_page || reference.is_some()) {
            format!("{link_to} leads nowhere: no page of the site is made from it")
        } else {
            format!("{link_to} leads nowhere: nothing is served at {path}")
        });
    };
    let fragment = percent_decode(&fragment?).unwrap_or_default();
    if fragment.is_empty() || fragment == "top" {
        return None;
    }
    let ids = anchors(found.as_str())?;
    (!ids.contains(&fragment))
        .then(|| format!("{link_to} leads nowhere: {found} has no #{fragment}"))
}

/// The decoded URL path a link leads to on this site and its fragment, or `None` for a
/// link that leaves the site (or cannot be told).
fn target(href: &str, page_url: &str, base: &str) -> Option<(String, Option<String>)> {
    if href.is_empty() || href.starts_with("//") || has_scheme(href) {
        return None;
    }
    let (rest, fragment) = match href.split_once('#') {
        Some((rest, fragment)) => (rest, Some(fragment.to_string())),
        None => (href, None),
    };
    let path = rest.split('?').next().unwrap_or("");
    let path = percent_decode(path)?;
    if path.is_empty() {
        return Some((page_url.to_string(), fragment));
    }
    let absolute = if let Some(local) = path.strip_prefix(base) {
        format!("/{local}")
    } else if path.starts_with('/') {
        path
    } else {
        let dir = &page_url[..page_url.rfind('/').map_or(0, |i| i + 1)];
        format!("{dir}{path}")
    };
    Some((normalize(&absolute)?, fragment))
}

/// Resolves `.` and `..` segments of an absolute URL path; `None` if it climbs above
/// the root.
fn normalize(path: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            other => parts.push(other),
        }
    }
    let mut out = String::from("/");
    out.push_str(&parts.join("/"));
    if (path.ends_with('/') || path.ends_with("/.") || path.ends_with("/..")) && out.len() > 1 {
        out.push('/');
    }
    Some(out)
}

/// The path of `base_url` (`/docs/` of `https://example.org/docs/`), with its slashes.
fn base_path(base_url: &str) -> &str {
    let after_scheme = base_url
        .split_once("://")
        .map_or(base_url, |(_, rest)| rest);
    let path = after_scheme.find('/').map_or("/", |i| &after_scheme[i..]);
    if path.len() > 1 && path.ends_with('/') {
        path
    } else {
        // The root: nothing to strip (`/` stays the root).
        "\u{0}"
    }
}

fn has_scheme(dest: &str) -> bool {
    dest.find(':').is_some_and(|colon| {
        let scheme = &dest[..colon];
        !scheme.is_empty()
            && !scheme.contains('/')
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    })
}

/// Makes every warning of `diagnostics` an error (a strict build).
pub fn strict(diagnostics: &mut [Diagnostic]) {
    for diagnostic in diagnostics {
        diagnostic.severity = Severity::Error;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(href: &str, page: &str) -> Option<String> {
        problem_of(href, href, page)
    }

    /// As [`problem`], for a link written one way (a Hugo `ref`) and resolved to `href`.
    fn problem_of(written: &str, href: &str, page: &str) -> Option<String> {
        let made: rustc_hash::FxHashSet<&str> = ["/", "/guide/", "/guide/intro/", "/img/a.png"]
            .into_iter()
            .collect();
        let setup = ["setup".to_string()];
        let mut anchors: HashMap<&str, &[String]> = HashMap::default();
        anchors.insert("/guide/intro/", &setup);
        let link = LinkRef {
            written: written.to_string(),
            href: href.to_string(),
            line: 1,
        };
        let ids = |url: &str| anchors.get(url).copied();
        check(&link, page, "\u{0}", &ids, &|url| made.contains(url))
    }

    #[test]
    fn links_to_what_was_made_pass() {
        for (href, page) in [
            ("/guide/intro/", "/"),
            ("/guide/intro", "/"),
            ("/guide/intro/#setup", "/"),
            ("intro/#setup", "/guide/"),
            ("../img/a.png", "/guide/"),
            ("#setup", "/guide/intro/"),
            ("#top", "/guide/intro/"),
            ("/img/a.png?v=2", "/"),
            ("https://example.org/nowhere", "/"),
            ("mailto:a@b.c", "/"),
            ("//cdn.example.org/x.js", "/"),
            ("../../../reference/x.html", "/guide/"),
            ("/guide/#anything", "/"),
        ] {
            assert_eq!(problem(href, page), None, "{href} from {page}");
        }
    }

    #[test]
    fn links_that_lead_nowhere_say_where_they_looked() {
        assert_eq!(
            problem("missing.md", "/guide/intro/").unwrap(),
            "link to missing.md leads nowhere: no page of the site is made from it"
        );
        assert_eq!(
            problem("../img/b.png", "/guide/").unwrap(),
            "link to ../img/b.png leads nowhere: nothing is served at /img/b.png"
        );
        assert_eq!(
            problem("/guide/intro/#nope", "/").unwrap(),
            "link to /guide/intro/#nope leads nowhere: /guide/intro/ has no #nope"
        );
        assert!(problem("#nope", "/guide/intro/").is_some());
    }

    #[test]
    fn a_hugo_ref_that_leads_nowhere_is_named_as_written() {
        for target in ["missing.md", "missing"] {
            assert_eq!(
                problem_of(&format!("@ref:{target}"), target, "/guide/").unwrap(),
                format!("ref \"{target}\" leads nowhere: no page of the site is made from it")
            );
        }
        assert_eq!(
            problem_of("@ref:/guide/intro.md#nope", "/guide/intro/#nope", "/").unwrap(),
            "ref \"/guide/intro.md#nope\" leads nowhere: /guide/intro/ has no #nope"
        );
    }

    #[test]
    fn links_climbing_out_of_the_content_folder_are_not_checked() {
        assert!(leaves_the_site("../reference/x.html", Path::new("")));
        assert!(leaves_the_site("../../x.md", Path::new("guide")));
        assert!(!leaves_the_site("../x.md", Path::new("guide")));
        assert!(!leaves_the_site("/x/", Path::new("")));
    }

    #[test]
    fn a_base_path_is_the_sites_root() {
        assert_eq!(base_path("https://example.org/docs/"), "/docs/");
        assert_eq!(base_path("https://example.org/"), "\u{0}");
        assert_eq!(base_path("/"), "\u{0}");
        assert_eq!(
            target("/docs/guide/", "/", "/docs/"),
            Some(("/guide/".to_string(), None))
        );
    }
}
