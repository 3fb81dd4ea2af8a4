//! The embedded default theme: templates a site without `templates/` renders with, and
//! the stylesheet served at `/theme.css`. A site overrides any template by putting a file
//! of the same name in its `templates/`, and the stylesheet with `static/theme.css`.

/// `(name, source)` of every embedded template.
pub const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("base.html")),
    ("page.html", include_str!("page.html")),
    ("section.html", include_str!("section.html")),
    ("index.html", include_str!("index.html")),
    ("404.html", include_str!("404.html")),
];

/// The theme's stylesheet, light and dark (the output adds the code-highlighting
/// colours to it).
pub const STYLESHEET: &str = include_str!("theme.css");

/// URL the stylesheet is served at.
pub const STYLESHEET_URL: &str = "/theme.css";
