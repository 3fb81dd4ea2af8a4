//! Shortcodes of Hugo (`{{< name >}}`, `{{% name %}}`) and Zola (`{{ name() }}`,
//! `{% name() %}…{% end %}`) pages, expanded in the Markdown body before it is rendered:
//!
//! - a template `templates/shortcodes/NAME.html` (minijinja) renders NAME, with its named
//!   arguments both as variables and as `args` (positional ones as `args._0`, `_1`, … and
//!   `positional`), and its inner content as `inner` (Hugo) and `body` (Zola); a
//!   `markdown` filter renders Markdown;
//! - Hugo's built-ins `ref`, `relref`, `figure`, `highlight`, `details`, `param` render
//!   without one;
//! - any other renders its inner content in a visible box naming it, and the site gets
//!   one warning per name, at its first use, with how often it is used.
//!
//! No shortcode text is left in the output. The expanded body keeps a map from its lines
//! to the file's, so diagnostics still point at the line written.

mod builtin;
pub mod parse;

pub use builtin::REF_PREFIX;

use std::fmt::Write as _;
use std::path::Path;

use minijinja::Environment;
use serde_json::{Map, Value};

use crate::load::layout::Flavor;
use crate::report::Diagnostic;
use parse::Call;

/// The site's shortcode templates.
#[derive(Debug, Default)]
pub struct Shortcodes {
    env: Option<Environment<'static>>,
    /// Templates that could not be read or parsed.
    errors: Vec<Diagnostic>,
}

impl Shortcodes {
    /// The shortcodes of a site of `flavor`: none for sited's own sites, which have none.
    pub fn for_site(flavor: Flavor, templates_dir: Option<&Path>, root: &Path) -> Shortcodes {
        if flavor == Flavor::Sited {
            return Shortcodes::default();
        }
        let mut errors = Vec::new();
        let mut shortcodes = Shortcodes::load(templates_dir, root, &mut errors);
        shortcodes.errors = errors;
        shortcodes
    }

    /// What loading the templates found wrong.
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.errors.iter()
    }

    /// Loads `templates/shortcodes/*.html`; one that does not parse is a diagnostic (and
    /// renders as a shortcode without a template).
    pub fn load(
        templates_dir: Option<&Path>,
        root: &Path,
        errors: &mut Vec<Diagnostic>,
    ) -> Shortcodes {
        let Some(dir) = templates_dir.map(|d| d.join("shortcodes")) else {
            return Shortcodes::default();
        };
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return Shortcodes::default();
        };
        let mut env = Environment::new();
        env.add_filter("markdown", |text: String| {
            minijinja::Value::from_safe_string(markdown_html(&text))
        });
        let mut paths: Vec<_> = entries.flatten().map(|e| e.path()).collect();
        paths.sort();
        for path in paths {
            let (Some(stem), Some("html")) = (
                path.file_stem().and_then(|s| s.to_str()),
                path.extension().and_then(|e| e.to_str()),
            ) else {
                continue;
            };
            let shown = path.strip_prefix(root).unwrap_or(&path).to_path_buf();
            let source = match std::fs::read_to_string(&path) {
                Ok(source) => source,
                Err(error) => {
                    errors.push(Diagnostic::error(shown, format!("cannot read: {error}")));
                    continue;
                }
            };
            if let Err(error) = env.add_template_owned(stem.to_string(), source) {
                errors.push(
                    Diagnostic::error(
                        shown,
                        format!(
                            "shortcode template: {}",
                            error.detail().unwrap_or("does not parse")
                        ),
                    )
                    .at(error.line().map(|l| l as u32), None),
                );
            }
        }
        Shortcodes {
            env: Some(env),
            errors: Vec::new(),
        }
    }

    fn has(&self, name: &str) -> bool {
        self.env
            .as_ref()
            .is_some_and(|env| env.get_template(name).is_ok())
    }
}

/// Markdown to HTML, plainly (for the `markdown` filter and `details`).
pub fn markdown_html(text: &str) -> String {
    let mut html = String::new();
    pulldown_cmark::html::push_html(&mut html, pulldown_cmark::Parser::new(text));
    html
}

/// What a page's shortcodes need to know about the site and the page.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    pub flavor: Flavor,
    pub shortcodes: &'a Shortcodes,
    /// `params` of the site (`site.extra`).
    pub site_params: &'a toml::Table,
    /// The page's own front matter values.
    pub page_params: &'a Map<String, Value>,
}

/// A body with its shortcodes expanded.
#[derive(Debug, Default)]
pub struct Expanded {
    pub body: String,
    /// Line `i + 1` of `body` comes from line `lines[i]` of the original body; empty when
    /// nothing was expanded.
    pub lines: Vec<u32>,
    /// Each use of a shortcode with no template and no built-in: name, line in the body.
    pub missing: Vec<(String, u32)>,
    /// Shortcode templates that failed: line, message.
    pub errors: Vec<(u32, String)>,
}

/// Expands every shortcode of `body`. A body without any is returned as it is.
pub fn expand(body: &str, scope: &Scope<'_>) -> Option<Expanded> {
    if scope.flavor == Flavor::Sited || !body.contains(['{']) {
        return None;
    }
    let mut out = Out::default();
    let found = expand_into(body, 1, scope, &mut out);
    found.then_some(Expanded {
        body: out.text,
        lines: out.lines,
        missing: out.missing,
        errors: out.errors,
    })
}

/// The expanded text and its line map, as it is written.
#[derive(Debug, Default)]
struct Out {
    text: String,
    /// Source line of each output line but the one being written.
    lines: Vec<u32>,
    missing: Vec<(String, u32)>,
    errors: Vec<(u32, String)>,
}

impl Out {
    /// Original text starting at source line `line`: its lines map one to one.
    fn source(&mut self, text: &str, mut line: u32) {
        for c in text.chars() {
            self.text.push(c);
            if c == '\n' {
                self.lines.push(line);
                line += 1;
            }
        }
    }

    /// Generated text: every line of it maps to `line`.
    fn generated(&mut self, text: &str, line: u32) {
        for c in text.chars() {
            self.text.push(c);
            if c == '\n' {
                self.lines.push(line);
            }
        }
    }

    /// Closes the map: the last line is written without a newline.
    fn finish(&mut self, line: u32) {
        self.lines.push(line);
    }
}

/// Expands `text` (starting at source line `first_line`) into `out`. Returns whether
/// there was any shortcode.
fn expand_into(text: &str, first_line: u32, scope: &Scope<'_>, out: &mut Out) -> bool {
    let calls = match scope.flavor {
        Flavor::Hugo => parse::hugo_calls(text),
        Flavor::Zola => parse::zola_calls(text),
        Flavor::Sited => Vec::new(),
    };
    let line_at = |offset: usize| first_line + text[..offset].matches('\n').count() as u32;
    let mut at = 0;
    for call in &calls {
        out.source(&text[at..call.start], line_at(at));
        let line = line_at(call.start);
        render_call(text, call, line, scope, out);
        at = call.end;
    }
    out.source(&text[at..], line_at(at));
    if first_line == 1 {
        out.finish(line_at(text.len()));
    }
    !calls.is_empty()
}

fn render_call(text: &str, call: &Call, line: u32, scope: &Scope<'_>, out: &mut Out) {
    if call.escaped {
        // Written to be shown: `{{</* x */>}}` is `{{< x >}}` on the page, as in Hugo.
        let shown = text[call.start..call.end]
            .replace("/*", "")
            .replace("*/", "");
        let shown = shown.replace("{{<  ", "{{< ").replace("  >}}", " >}}");
        out.generated(&crate::html::escape(&shown), line);
        return;
    }
    let inner_start = call.inner.map_or(line, |(s, _)| {
        line + text[call.start..s].matches('\n').count() as u32
    });
    // The inner content, its own shortcodes expanded.
    let inner = call.inner.map(|(s, e)| {
        let mut nested = Out::default();
        expand_into(&text[s..e], inner_start, scope, &mut nested);
        out.missing.append(&mut nested.missing);
        out.errors.append(&mut nested.errors);
        nested
    });
    let inner_text = inner.as_ref().map_or("", |n| n.text.as_str());
    if scope.shortcodes.has(&call.name) {
        match render_template(call, inner_text, scope) {
            Ok(html) => out.generated(&html_block(&html, is_block(text, call)), line),
            Err(message) => {
                out.errors.push((line, message));
                missing_box(call, inner, line, is_block(text, call), out);
            }
        }
        return;
    }
    if scope.flavor == Flavor::Hugo
        && let Some(rendered) = builtin::render(call, inner_text, scope)
    {
        let is_ref = matches!(call.name.as_str(), "ref" | "relref");
        if is_ref && !in_link(&text[..call.start]) {
            // A reference in running text: Hugo prints the URL; a link to it says more
            // and is checked like any other.
            let shown = rendered.trim_start_matches(builtin::REF_PREFIX);
            out.generated(&format!("[{shown}]({rendered})"), line);
        } else {
            out.generated(&rendered, line);
        }
        return;
    }
    out.missing.push((call.name.clone(), line));
    missing_box(call, inner, line, is_block(text, call), out);
}

/// Whether text ending with `before` is inside a link's destination: `[text](`, an
/// HTML attribute (`href="`), or a link reference definition (`[id]: `).
fn in_link(before: &str) -> bool {
    let trimmed = before.trim_end_matches(['<', ' ']);
    trimmed.ends_with("](")
        || trimmed.ends_with("=\"")
        || trimmed.ends_with("='")
        || (trimmed.ends_with("]:")
            && before
                .rsplit('\n')
                .next()
                .is_some_and(|l| l.starts_with('[')))
}

/// Whether a call stands on lines of its own (its output is then a block of HTML).
fn is_block(text: &str, call: &Call) -> bool {
    let before = text[..call.start].rsplit('\n').next().unwrap_or("");
    let after = text[call.end..].split('\n').next().unwrap_or("");
    before.trim().is_empty() && after.trim().is_empty()
}

/// Template output as Markdown sees it: blank lines inside a block of HTML would end it
/// (and turn what follows into Markdown), so they go.
fn html_block(html: &str, block: bool) -> String {
    if !block {
        return html.replace('\n', " ");
    }
    html.lines()
        .filter(|l| !l.trim().is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

fn render_template(call: &Call, inner: &str, scope: &Scope<'_>) -> Result<String, String> {
    let env = scope.shortcodes.env.as_ref().expect("has() checked");
    let template = env.get_template(&call.name).map_err(|e| e.to_string())?;
    let mut args = call.named.clone();
    for (i, value) in call.positional.iter().enumerate() {
        args.insert(format!("_{i}"), Value::String(value.clone()));
    }
    let mut ctx: Map<String, Value> = call.named.clone();
    ctx.insert("args".into(), Value::Object(args));
    ctx.insert("positional".into(), Value::from(call.positional.clone()));
    let mut ctx = minijinja::Value::from(minijinja::value::Serde(&ctx));
    let inner = minijinja::Value::from_safe_string(inner.to_string());
    ctx = minijinja::context! { inner => inner.clone(), body => inner, ..ctx };
    template.render(ctx).map_err(|error| {
        let mut message = format!("shortcode `{}`: {}", call.name, error.kind());
        if let Some(detail) = error.detail() {
            let _ = write!(message, ": {detail}");
        }
        message
    })
}

/// The visible stand-in for a shortcode sited cannot render: its inner content (as
/// Markdown) in a box that names it; inside a line of text, an inline box.
fn missing_box(call: &Call, inner: Option<Out>, line: u32, block: bool, out: &mut Out) {
    let mut label = call.name.clone();
    for value in &call.positional {
        let _ = write!(label, " {value}");
    }
    for (key, value) in &call.named {
        let value = value
            .as_str()
            .map_or_else(|| value.to_string(), str::to_string);
        let _ = write!(label, " {key}={value}");
    }
    if !block {
        let inner = inner.map_or(String::new(), |inner| format!(": {}", inner.text.trim()));
        let html = format!(
            "<span class=\"shortcode-missing\" data-shortcode=\"{name}\" style=\"border:2px dashed #d97706;border-radius:4px;padding:0 0.25rem\"><code>{label}</code>{inner}</span>",
            name = crate::html::escape(&call.name),
            label = crate::html::escape(&label),
        );
        out.generated(&html.replace('\n', " "), line);
        return;
    }
    let open = format!(
        "<div class=\"shortcode-missing\" data-shortcode=\"{name}\" style=\"border:2px dashed #d97706;border-radius:6px;padding:0.25rem 1rem;margin:1rem 0\">\n<p style=\"font:0.8rem monospace;color:#b45309;margin:0.25rem 0\">shortcode {label} (no template: add templates/shortcodes/{name}.html)</p>",
        name = crate::html::escape(&call.name),
        label = crate::html::escape(&label),
    );
    let Some(inner) = inner else {
        out.generated(&format!("{open}\n</div>"), line);
        return;
    };
    // Blank lines around the inner content make it Markdown again inside the box.
    out.generated(&format!("{open}\n\n"), line);
    let mut lines = inner.lines.into_iter();
    for c in inner.text.chars() {
        out.text.push(c);
        if c == '\n' {
            out.lines.push(lines.next().unwrap_or(line));
        }
    }
    out.generated("\n\n</div>", line);
}

/// One warning per shortcode name sited could not render, at its first use, with the
/// number of uses: `uses` are (name, file, line) across the site.
pub fn missing_warnings(uses: &[(String, std::path::PathBuf, u32)]) -> Vec<Diagnostic> {
    let mut by_name: std::collections::BTreeMap<&str, (usize, &std::path::PathBuf, u32)> =
        std::collections::BTreeMap::new();
    for (name, file, line) in uses {
        by_name.entry(name).or_insert((0, file, *line)).0 += 1;
    }
    by_name
        .into_iter()
        .map(|(name, (count, file, line))| {
            let times = if count == 1 {
                "once".to_string()
            } else {
                format!("{count} times")
            };
            Diagnostic::warning(
                file,
                format!(
                    "shortcode `{name}` has no template and is not built in: its content is shown in a box (used {times}; add templates/shortcodes/{name}.html)"
                ),
            )
            .at(Some(line), None)
        })
        .collect()
}
