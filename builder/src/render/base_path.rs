//! A site published under a path (`base_url = "https://example.org/docs/"`): every link
//! the build writes that starts at the site's root (`/posts/a/`, `/theme.css`, an author's
//! `[x](/about/)`) is moved under that path (`/docs/posts/a/`), in every page, whichever
//! template wrote it. Feeds and the sitemap join `base_url` itself, so they are absolute.
//!
//! Only published builds do this (`sited build`, one-shot builds): the development server
//! serves the site at its own root, as `hugo server` and `zola serve` do.

use crate::load::layout::BaseUrlSetting;
use crate::report::Diagnostic;

/// The path of `base_url` when it is not the root: `https://example.org/docs/` and
/// `/docs` give `/docs`; `https://example.org/`, `/` and `` give `None`.
pub fn of(base_url: &str) -> Option<String> {
    let after_scheme = match base_url.find("://") {
        Some(at) => {
            let rest = &base_url[at + 3..];
            rest.find('/').map_or("", |slash| &rest[slash..])
        }
        None => base_url,
    };
    let path = after_scheme.split(['?', '#']).next().unwrap_or("");
    let path = path.trim_end_matches('/');
    if path.is_empty() {
        return None;
    }
    let path = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    };
    Some(crate::url::encode_path(&path))
}

/// Whether `base_url` is absolute (`scheme://host…`), as feeds and sitemaps need.
pub fn is_absolute(base_url: &str) -> bool {
    base_url
        .split_once("://")
        .is_some_and(|(scheme, host)| !scheme.is_empty() && !host.is_empty())
}

/// The warning of a published build whose feeds and sitemap cannot have absolute URLs,
/// naming the file and key where the site sets its URL.
pub fn relative_urls_warning(base_url: &str, setting: &BaseUrlSetting) -> Diagnostic {
    let BaseUrlSetting { file, key, beside } = setting;
    let fix = match beside {
        Some(beside) => format!(
            "set {key} = \"https://…/\" in a {} beside {beside}",
            file.display()
        ),
        None => format!("set {key} = \"https://…/\" in {}", file.display()),
    };
    let message = if base_url.trim().is_empty() || base_url == "/" {
        format!(
            "no {key} is set: the sitemap and feeds have relative URLs, which search engines \
             and feed readers do not accept; {fix}"
        )
    } else {
        format!(
            "{key} \"{base_url}\" is not an absolute URL: the sitemap and feeds have \
             relative URLs, which search engines and feed readers do not accept; {fix}"
        )
    };
    Diagnostic::warning(file, message)
}

/// `html` with every root-relative `href`, `src`, `action` and `poster` value moved
/// under `base` (`/docs`). Protocol-relative (`//host/…`) values and values already
/// under `base` are left alone. One pass over the page.
pub fn prefix(html: &str, base: &str) -> String {
    let mut out = String::with_capacity(html.len() + 256);
    let mut copied = 0;
    let mut from = 0;
    while let Some(found) = html[from..].find('=') {
        let eq = from + found;
        from = eq + 1;
        let bytes = &html.as_bytes()[eq + 1..];
        let quoted_root = bytes.len() >= 2 && matches!(bytes[0], b'"' | b'\'') && bytes[1] == b'/';
        let value = eq + 2;
        if quoted_root && is_url_attribute(&html[..eq]) && needs_base(&html[value..], base) {
            out.push_str(&html[copied..value]);
            out.push_str(base);
            copied = value;
        }
    }
    out.push_str(&html[copied..]);
    out
}

/// Whether the text before an `=` ends with a whole attribute name that holds a URL
/// (`data-href` does not).
fn is_url_attribute(before: &str) -> bool {
    ["href", "src", "action", "poster"].iter().any(|name| {
        before
            .strip_suffix(name)
            .is_some_and(|head| head.chars().next_back().is_none_or(|c| c.is_whitespace()))
    })
}

/// Whether a root-relative value (starting with its `/`) is to move under `base`.
fn needs_base(value: &str, base: &str) -> bool {
    if value.starts_with("//") {
        return false;
    }
    let under_base = value
        .strip_prefix(base)
        .is_some_and(|after| after.starts_with(['/', '#', '?', '"', '\'']));
    !under_base
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_path_of_a_base_url() {
        assert_eq!(of("https://example.org/docs/").as_deref(), Some("/docs"));
        assert_eq!(of("https://example.org/a/b").as_deref(), Some("/a/b"));
        assert_eq!(of("/docs/").as_deref(), Some("/docs"));
        assert_eq!(of("https://example.org/"), None);
        assert_eq!(of("https://example.org"), None);
        assert_eq!(of("/"), None);
        assert_eq!(of(""), None);
        assert_eq!(of("https://e.org/my docs/").as_deref(), Some("/my%20docs"));
    }

    #[test]
    fn root_relative_links_move_under_the_base() {
        let html = "<link href=\"/theme.css\"><a href=\"/posts/a/#x\">a</a>\
                    <img src='/img/p.png'><a href=\"//cdn.example/x\">cdn</a>\
                    <a href=\"https://e.org/\">e</a><a href=\"#top\">top</a>\
                    <a href=\"/docs/already/\">d</a><a data-href=\"/x\">x</a><a href=\"/\">home</a>";
        assert_eq!(
            prefix(html, "/docs"),
            "<link href=\"/docs/theme.css\"><a href=\"/docs/posts/a/#x\">a</a>\
             <img src='/docs/img/p.png'><a href=\"//cdn.example/x\">cdn</a>\
             <a href=\"https://e.org/\">e</a><a href=\"#top\">top</a>\
             <a href=\"/docs/already/\">d</a><a data-href=\"/x\">x</a><a href=\"/docs/\">home</a>"
        );
        assert_eq!(
            prefix("<a href=\"/docsx/\">", "/docs"),
            "<a href=\"/docs/docsx/\">"
        );
    }

    #[test]
    fn only_absolute_base_urls_make_absolute_feeds() {
        assert!(is_absolute("https://example.org/docs/"));
        assert!(!is_absolute("/docs/"));
        assert!(!is_absolute("/"));
    }
}
