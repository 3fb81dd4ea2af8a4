//! Hugo's `aliases`: each old URL of a page gets a small page that sends the browser on
//! to the page's URL, as Hugo writes them. The link is relative, so the redirect works
//! wherever the site is published (under `base_url`'s path or at the root).

use crate::load::layout::Layout;
use crate::output::{Output, Resource};
use crate::report::Diagnostic;
use crate::tree::Tree;
use crate::url::encode_path;

/// Adds a redirect page for every alias of every page. An alias whose URL is taken by
/// something the build made is a warning, and the page there stays.
pub fn add(output: &mut Output, tree: &Tree, layout: &Layout, diagnostics: &mut Vec<Diagnostic>) {
    for (i, parsed) in tree.placed.pages.iter().enumerate() {
        let url = &tree.placed.urls[i];
        if url.is_empty() || tree.pages[i].is_none() {
            continue;
        }
        for alias in &parsed.meta.aliases {
            let alias_url = super::front_matter::page_url(alias);
            if output.resources.contains_key(&alias_url) {
                diagnostics.push(Diagnostic::warning(
                    layout.display_path(&parsed.source.path),
                    format!("alias {alias} is not made: {alias_url} is already a page of the site"),
                ));
                continue;
            }
            let target = relative(&alias_url, url);
            output
                .resources
                .insert(alias_url, Resource::html(redirect_page(&target)));
        }
    }
}

/// `to` as a link from the page at `from` (both decoded, rooted).
fn relative(from: &str, to: &str) -> String {
    let dir_depth = from.matches('/').count().saturating_sub(1);
    let ups = "../".repeat(dir_depth);
    let target = encode_path(to.trim_start_matches('/'));
    if ups.is_empty() && target.is_empty() {
        "./".to_string()
    } else {
        format!("{ups}{target}")
    }
}

fn redirect_page(target: &str) -> String {
    let target = crate::html::escape(target);
    format!(
        "<!DOCTYPE html>\n<html>\n<head>\n<title>{target}</title>\n<link rel=\"canonical\" href=\"{target}\">\n<meta name=\"robots\" content=\"noindex\">\n<meta charset=\"utf-8\">\n<meta http-equiv=\"refresh\" content=\"0; url={target}\">\n</head>\n<body><p>This page has moved to <a href=\"{target}\">{target}</a>.</p></body>\n</html>\n"
    )
}

#[cfg(test)]
mod tests {
    use super::relative;

    #[test]
    fn redirects_are_relative() {
        assert_eq!(
            relative("/install/", "/getting-started/install-guide/"),
            "../getting-started/install-guide/"
        );
        assert_eq!(relative("/docs/old-install.html", "/a/"), "../a/");
        assert_eq!(relative("/old.html", "/a/"), "a/");
    }
}
