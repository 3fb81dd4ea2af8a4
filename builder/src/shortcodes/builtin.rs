//! Hugo's common built-in shortcodes: `ref`, `relref`, `figure`, `highlight`,
//! `details`, `param`.

use serde_json::Value;

use super::Scope;
use super::parse::Call;
use crate::html::escape;

/// The prefix of a link written by `ref`/`relref`: the Markdown stage resolves it
/// against the site's pages as Hugo does (relative to the page, then to the content
/// folder; case-insensitive; a folder names its `_index.md` or `index.md`).
pub const REF_PREFIX: &str = "@ref:";

/// The output of built-in `call`, or `None` if it is not one.
pub fn render(call: &Call, inner: &str, scope: &Scope<'_>) -> Option<String> {
    let arg = |key: &str, position: usize| -> Option<String> {
        call.named
            .get(key)
            .and_then(|v| v.as_str().map(str::to_string))
            .or_else(|| call.positional.get(position).cloned())
    };
    Some(match call.name.as_str() {
        "ref" | "relref" => {
            let target = arg("path", 0).unwrap_or_default();
            let target = target.replace(' ', "%20");
            format!("{REF_PREFIX}{target}")
        }
        "param" => {
            let name = arg("name", 0).unwrap_or_default();
            escape(&param(&name, scope).unwrap_or_default())
        }
        "figure" => figure(&arg),
        "highlight" => {
            let lang = arg("lang", 0).unwrap_or_default();
            let code = inner.strip_prefix('\n').unwrap_or(inner);
            let code = code.strip_suffix('\n').unwrap_or(code);
            let fence = if code.contains("```") { "~~~~" } else { "```" };
            format!("{fence}{lang}\n{code}\n{fence}")
        }
        "details" => {
            let summary = arg("summary", 0).unwrap_or_else(|| "Details".into());
            let open = call.named.get("open").and_then(Value::as_str) == Some("true");
            format!(
                "<details{}><summary>{}</summary>\n\n{}\n\n</details>",
                if open { " open" } else { "" },
                escape(&summary),
                inner.trim()
            )
        }
        _ => return None,
    })
}

/// `param "a.b"`: the page's value, else the site's `params`.
fn param(name: &str, scope: &Scope<'_>) -> Option<String> {
    let mut parts = name.split('.');
    let first = parts.next()?;
    let rest: Vec<&str> = parts.collect();
    let page = scope.page_params.get(first).map(|v| (v.clone(), &rest));
    let site = || {
        scope
            .site_params
            .get(first)
            .and_then(|v| serde_json::to_value(v).ok())
            .map(|v| (v, &rest))
    };
    let (mut value, rest) = page.or_else(site)?;
    for key in rest {
        value = value.get(key)?.clone();
    }
    Some(match value {
        Value::String(text) => text,
        other => other.to_string(),
    })
}

fn figure(arg: &dyn Fn(&str, usize) -> Option<String>) -> String {
    let attr = |key: &str| {
        arg(key, usize::MAX)
            .map(|v| format!(" {key}=\"{}\"", escape(&v)))
            .unwrap_or_default()
    };
    let class = attr("class");
    let mut img = format!(
        "<img{}{}{}{}{}>",
        attr("src"),
        arg("alt", usize::MAX)
            .or_else(|| arg("caption", usize::MAX))
            .map(|v| format!(" alt=\"{}\"", escape(&v)))
            .unwrap_or_default(),
        attr("title"),
        attr("width"),
        attr("height")
    );
    if let Some(link) = arg("link", usize::MAX) {
        img = format!("<a href=\"{}\">{img}</a>", escape(&link));
    }
    let caption = arg("caption", usize::MAX)
        .map(|c| format!("<figcaption>{}</figcaption>", escape(&c)))
        .unwrap_or_default();
    format!("<figure{class}>{img}{caption}</figure>")
}
