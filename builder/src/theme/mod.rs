//! The embedded default theme: templates a site without `templates/` renders with, the
//! stylesheet served at `/theme.css` and the icon served at `/favicon.svg`. A site
//! overrides any template by putting a file of the same name in its `templates/`, the
//! stylesheet with `static/theme.css` and the icon with `static/favicon.svg`.

/// `(name, source)` of every embedded template.
pub const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("base.html")),
    ("page.html", include_str!("page.html")),
    ("section.html", include_str!("section.html")),
    ("index.html", include_str!("index.html")),
    ("404.html", include_str!("404.html")),
    ("paginator.html", include_str!("paginator.html")),
    // An mdBook book's table of contents (in every page) and home page.
    ("book-toc.html", include_str!("book-toc.html")),
    ("book-index.html", include_str!("book-index.html")),
];

/// The theme's stylesheet, light and dark (the output adds the code-highlighting
/// colours to it).
pub const STYLESHEET: &str = include_str!("theme.css");

/// URL the stylesheet is served at.
pub const STYLESHEET_URL: &str = "/theme.css";

/// The theme's icon, linked from every page, so that no site logs a `/favicon.ico` 404.
pub const FAVICON: &str = include_str!("favicon.svg");

/// URL the icon is served at.
pub const FAVICON_URL: &str = "/favicon.svg";

/// What the theme serves besides its templates, as `(URL, content type, body)`. A file
/// of the site's at the same URL (in `static/`) replaces the theme's. The output adds
/// the code-highlighting colours to the stylesheet.
pub const ASSETS: [(&str, &str, &str); 2] = [
    (STYLESHEET_URL, "text/css; charset=utf-8", STYLESHEET),
    (FAVICON_URL, "image/svg+xml", FAVICON),
];

/// What is served at [`STYLESHEET_URL`]: the theme's own rules and the code-highlighting
/// colours ([`crate::render::highlight::STYLESHEET`]).
pub fn stylesheet() -> bytes::Bytes {
    const FULL: &str = concat!(
        include_str!("theme.css"),
        include_str!("../render/highlight.css")
    );
    bytes::Bytes::from_static(FULL.as_bytes())
}
