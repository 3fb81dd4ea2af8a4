//! Code highlighting at build time, with syntect: fenced code blocks become spans with
//! `hl-` classes, and the theme's stylesheet carries the colours for light and dark mode
//! (so a reader's colour scheme switches them, not a rebuild).

use std::sync::LazyLock;

use syntect::highlighting::ThemeSet;
use syntect::html::{ClassStyle, ClassedHTMLGenerator, css_for_theme_with_class_style};
use syntect::parsing::SyntaxSet;
use syntect::util::LinesWithEndings;

const STYLE: ClassStyle = ClassStyle::SpacedPrefixed { prefix: "hl-" };

/// Loaded once per process, on first use (a few milliseconds).
static SYNTAXES: LazyLock<SyntaxSet> = LazyLock::new(SyntaxSet::load_defaults_newlines);

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
    let syntax = SYNTAXES.find_syntax_by_token(lang)?;
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

/// The colours: a light theme, and a dark one under `prefers-color-scheme: dark`.
pub static STYLESHEET: LazyLock<String> = LazyLock::new(|| {
    let themes = ThemeSet::load_defaults();
    let light =
        css_for_theme_with_class_style(&themes.themes["InspiredGitHub"], STYLE).unwrap_or_default();
    let dark = css_for_theme_with_class_style(&themes.themes["base16-ocean.dark"], STYLE)
        .unwrap_or_default();
    format!(
        "\n/* Code highlighting (syntect, generated) */\n{light}\n@media (prefers-color-scheme: dark) {{\n{dark}\n}}\n"
    )
});

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
    fn the_stylesheet_has_light_and_dark_colours() {
        assert!(STYLESHEET.contains(".hl-"));
        assert!(STYLESHEET.contains("prefers-color-scheme: dark"));
    }
}
