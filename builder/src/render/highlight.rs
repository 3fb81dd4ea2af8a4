//! Code highlighting at build time, with syntect: fenced code blocks become spans with
//! `hl-` classes, and the theme's stylesheet carries the colours for light and dark mode
//! (so a reader's colour scheme switches them, not a rebuild).
//!
//! The grammars are bat's, through the two-face crate: syntect's own set plus TOML,
//! TypeScript, Dockerfile, Kotlin, Swift, SCSS, PowerShell and many more. A few info
//! strings people write are mapped onto the name bat knows them by ([`ALIASES`]); Go
//! templates, which bat has no grammar of, are highlighted as HTML with Jinja2 (`{{ … }}`
//! actions in HTML), the nearest grammar there is.

use std::sync::LazyLock;

#[cfg(test)]
use syntect::html::css_for_theme_with_class_style;
use syntect::html::{ClassStyle, ClassedHTMLGenerator};
use syntect::parsing::SyntaxSet;
use syntect::util::LinesWithEndings;

const STYLE: ClassStyle = ClassStyle::SpacedPrefixed { prefix: "hl-" };

/// Loaded once per process, on the first fenced block in a language (a site without
/// code never loads it; see BENCHMARKS.md for what it costs).
static SYNTAXES: LazyLock<SyntaxSet> = LazyLock::new(two_face::syntax::extra_newlines);

/// Info strings that are not a name or file extension bat knows, and the syntax (by
/// name) they mean.
const ALIASES: &[(&str, &str)] = &[
    ("docker", "Dockerfile"),
    ("containerfile", "Dockerfile"),
    ("pwsh", "PowerShell"),
    ("ps", "PowerShell"),
    ("gotmpl", "HTML (Jinja2)"),
    ("gohtml", "HTML (Jinja2)"),
    ("go-html-template", "HTML (Jinja2)"),
    ("go-template", "HTML (Jinja2)"),
    ("gotemplate", "HTML (Jinja2)"),
    ("tmpl", "HTML (Jinja2)"),
];

/// The syntax of a fenced block's language, if there is one.
fn syntax_for(lang: &str) -> Option<&'static syntect::parsing::SyntaxReference> {
    let alias = ALIASES
        .iter()
        .find(|(token, _)| token.eq_ignore_ascii_case(lang))
        .map(|(_, name)| *name);
    match alias {
        Some(name) => SYNTAXES.find_syntax_by_name(name),
        None => SYNTAXES.find_syntax_by_token(lang),
    }
}

/// The language of a fenced block's info string: `rust,ignore` and `rust ignore` → `rust`.
pub fn language(info: &str) -> &str {
    info.split([',', ' ', '\t', '{'])
        .next()
        .unwrap_or("")
        .trim()
}

/// The block as highlighted HTML (`<pre><code>` included), or `None` if the language
/// is unknown (the caller renders it plain).
pub fn highlight(lang: &str, code: &str) -> Option<String> {
    if lang.is_empty() {
        return None;
    }
    let syntax = syntax_for(lang)?;
    let mut generator = ClassedHTMLGenerator::new_with_class_style(syntax, &SYNTAXES, STYLE);
    for line in LinesWithEndings::from(code) {
        generator
            .parse_html_for_line_which_includes_newline(line)
            .ok()?;
    }
    let lang = crate::html::escape(lang);
    Some(format!(
        "<pre class=\"hl-code\"><code class=\"language-{lang}\">{}</code></pre>\n",
        generator.finalize()
    ))
}

/// The colours: a light theme, and a dark one under `prefers-color-scheme: dark`. Made
/// by [`stylesheet_of_themes`] from syntect's themes and kept as a file: loading the
/// themes to make it was a serial 1.5 ms of every build and of a daemon's first one.
pub const STYLESHEET: &str = include_str!("highlight.css");

/// What [`STYLESHEET`] holds, made from syntect's themes; a test keeps the two the same.
#[cfg(test)]
fn stylesheet_of_themes() -> String {
    let themes = syntect::highlighting::ThemeSet::load_defaults();
    let light =
        css_for_theme_with_class_style(&themes.themes["InspiredGitHub"], STYLE).unwrap_or_default();
    let dark = css_for_theme_with_class_style(&themes.themes["base16-ocean.dark"], STYLE)
        .unwrap_or_default();
    format!(
        "\n/* Code highlighting (syntect, generated) */\n{light}\n@media (prefers-color-scheme: dark) {{\n{dark}\n}}\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_strings_name_the_language() {
        assert_eq!(language("rust,ignore"), "rust");
        assert_eq!(language("rust noplayground"), "rust");
        assert_eq!(language("python {linenos=true}"), "python");
        assert_eq!(language(""), "");
    }

    #[test]
    fn known_languages_get_classes_and_unknown_ones_do_not() {
        let html = highlight("rust", "fn main() {\n    let x = \"<b>\";\n}\n").unwrap();
        assert!(
            html.starts_with("<pre class=\"hl-code\"><code class=\"language-rust\">"),
            "{html}"
        );
        assert!(html.contains("class=\"hl-"), "{html}");
        assert!(html.contains("&lt;b&gt;"), "escaped: {html}");
        assert!(highlight("no-such-language", "x").is_none());
    }

    #[test]
    fn the_languages_people_write_about_are_highlighted() {
        for lang in [
            "rust",
            "python",
            "js",
            "html",
            "css",
            "bash",
            "json",
            "yaml",
            "c",
            "go",
            "toml",
            "typescript",
            "ts",
            "tsx",
            "dockerfile",
            "docker",
            "kotlin",
            "kt",
            "swift",
            "scss",
            "powershell",
            "ps1",
            "pwsh",
            "gotmpl",
            "go-html-template",
        ] {
            let html = highlight(lang, "x = \"{{ .Title }}\"\n");
            assert!(
                html.is_some_and(|h| h.contains("class=\"hl-")),
                "{lang} is not highlighted"
            );
        }
    }

    #[test]
    fn the_stylesheet_has_light_and_dark_colours() {
        assert!(STYLESHEET.contains(".hl-"));
        assert!(STYLESHEET.contains("prefers-color-scheme: dark"));
    }

    /// `highlight.css` is what syntect's themes make (after a syntect update:
    /// `SITED_BLESS=1 cargo test -p sited-builder stylesheet` rewrites it).
    #[test]
    fn the_kept_stylesheet_is_what_the_themes_make() {
        let made = stylesheet_of_themes();
        if std::env::var_os("SITED_BLESS").is_some_and(|v| v == "1") {
            let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/render/highlight.css");
            std::fs::write(path, &made).expect("write highlight.css");
            return;
        }
        assert!(
            made == STYLESHEET,
            "src/render/highlight.css is not what syntect's themes make; \
             `SITED_BLESS=1 cargo test -p sited-builder stylesheet` rewrites it"
        );
    }
}
