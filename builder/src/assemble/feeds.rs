//! `sitemap.xml` and Atom feeds, written directly (they are data, not design): the
//! sitemap lists every page, a feed lists the newest dated pages of the site or of one
//! section.

use std::fmt::Write as _;

use crate::context::Summary;
use crate::html::escape as escape_html;

/// Entries per feed.
pub const FEED_ENTRIES: usize = 20;

/// An absolute URL from the site's `base_url` and a path (`base_url` "/" keeps it
/// relative, which is fine for a local preview).
fn absolute(base_url: &str, path: &str) -> String {
    format!("{}{path}", base_url.trim_end_matches('/'))
}

/// A date as RFC 3339: `2026-03-14` becomes midnight UTC.
fn rfc3339(date: &str) -> String {
    if date.len() == 10 {
        format!("{date}T00:00:00Z")
    } else {
        date.replace(' ', "T")
    }
}

/// The sitemap of `pages` (URL path, date).
pub fn sitemap(base_url: &str, pages: &[(&str, Option<&str>)]) -> String {
    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<urlset xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\">\n",
    );
    for (url, date) in pages {
        let _ = write!(
            xml,
            "  <url><loc>{}</loc>",
            escape_html(&absolute(base_url, url))
        );
        if let Some(date) = date {
            let _ = write!(
                xml,
                "<lastmod>{}</lastmod>",
                escape_html(&date[..date.len().min(10)])
            );
        }
        xml.push_str("</url>\n");
    }
    xml.push_str("</urlset>\n");
    xml
}

/// An Atom feed at `feed_url` of `entries` (newest first).
pub fn atom(base_url: &str, feed_url: &str, title: &str, entries: &[&Summary]) -> String {
    let updated = entries
        .iter()
        .filter_map(|e| e.date.as_deref())
        .max()
        .map_or_else(|| "1970-01-01T00:00:00Z".to_string(), rfc3339);
    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\">\n",
    );
    let _ = writeln!(xml, "  <title>{}</title>", escape_html(title));
    let _ = writeln!(
        xml,
        "  <link rel=\"self\" href=\"{}\"/>",
        escape_html(&absolute(base_url, feed_url))
    );
    let _ = writeln!(
        xml,
        "  <link href=\"{}\"/>",
        escape_html(&absolute(base_url, "/"))
    );
    let _ = writeln!(
        xml,
        "  <id>{}</id>",
        escape_html(&absolute(base_url, feed_url))
    );
    let _ = writeln!(xml, "  <updated>{updated}</updated>");
    for entry in entries.iter().take(FEED_ENTRIES) {
        let link = escape_html(&absolute(base_url, &entry.url));
        xml.push_str("  <entry>\n");
        let _ = writeln!(xml, "    <title>{}</title>", escape_html(&entry.title));
        let _ = writeln!(xml, "    <link href=\"{link}\"/>");
        let _ = writeln!(xml, "    <id>{link}</id>");
        if let Some(date) = &entry.date {
            let _ = writeln!(xml, "    <updated>{}</updated>", rfc3339(date));
        }
        // Summaries are already HTML-escaped text.
        if let Some(text) = entry
            .description
            .as_deref()
            .map(escape_html)
            .or_else(|| entry.summary.clone())
        {
            let _ = writeln!(xml, "    <summary>{text}</summary>");
        }
        xml.push_str("  </entry>\n");
    }
    xml.push_str("</feed>\n");
    xml
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(title: &str, url: &str, date: Option<&str>) -> Summary {
        Summary::listed(title, url, date, Some("A <b> & c"), None, Vec::new(), 1)
    }

    #[test]
    fn atom_feed_is_well_formed_and_escaped() {
        let a = entry("New & shiny", "/posts/a/", Some("2026-03-14"));
        let b = entry("Old", "/posts/b/", Some("2025-01-01"));
        let xml = atom("https://example.com/", "/atom.xml", "Site", &[&a, &b]);
        assert!(xml.contains("<updated>2026-03-14T00:00:00Z</updated>"));
        assert!(xml.contains("<title>New &amp; shiny</title>"));
        assert!(xml.contains("<link href=\"https://example.com/posts/a/\"/>"));
        assert!(xml.contains("<summary>A &lt;b&gt; &amp; c</summary>"));
        assert_eq!(xml.matches("<entry>").count(), 2);
    }

    #[test]
    fn sitemap_lists_pages_with_dates() {
        let xml = sitemap(
            "http://localhost:5173",
            &[("/", None), ("/a/", Some("2026-01-02T10:00:00Z"))],
        );
        assert!(xml.contains("<url><loc>http://localhost:5173/</loc></url>"));
        assert!(xml.contains("<loc>http://localhost:5173/a/</loc><lastmod>2026-01-02</lastmod>"));
    }
}
