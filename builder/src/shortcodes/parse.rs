//! Finding shortcodes in a Markdown body: Hugo's `{{< name args >}}` and
//! `{{% name args %}}` (each closed by `{{< /name >}}` when it has inner content), and
//! Zola's `{{ name(args) }}` and `{% name(args) %}…{% end %}`.

use serde_json::{Map, Value};

/// One shortcode call found in a body.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub name: String,
    /// Named arguments.
    pub named: Map<String, Value>,
    /// Positional arguments (Hugo).
    pub positional: Vec<String>,
    /// Byte range of the whole call, closing tag included.
    pub start: usize,
    pub end: usize,
    /// Byte range of the inner content, if the call has a closing tag.
    pub inner: Option<(usize, usize)>,
    /// `{{% %}}`: the inner content is Markdown of the page.
    pub markdown: bool,
    /// `{{</* … */>}}`: shown as written, not run.
    pub escaped: bool,
}

/// An opening or closing tag.
struct Tag {
    start: usize,
    end: usize,
    name: String,
    closing: bool,
    self_closing: bool,
    args: String,
    markdown: bool,
    escaped: bool,
}

/// The next Hugo tag at or after `from`.
fn next_hugo_tag(text: &str, from: usize) -> Option<Tag> {
    let mut at = from;
    loop {
        let start = at + text.get(at..)?.find("{{")?;
        let rest = &text[start + 2..];
        let delim = match rest.trim_start().chars().next() {
            Some('<') => '<',
            Some('%') => '%',
            _ => {
                at = start + 2;
                continue;
            }
        };
        let open_len = 2 + rest.len() - rest.trim_start().len() + 1;
        let close = if delim == '<' { ">}}" } else { "%}}" };
        let Some(close_at) = text[start + open_len..].find(close) else {
            at = start + 2;
            continue;
        };
        let mut inside = text[start + open_len..start + open_len + close_at].trim();
        let end = start + open_len + close_at + close.len();
        let escaped = inside.starts_with("/*") && inside.ends_with("*/");
        if escaped {
            inside = inside[2..inside.len() - 2].trim();
        }
        let closing = inside.starts_with('/');
        let inside = inside.trim_start_matches('/').trim_start();
        let self_closing = inside.ends_with('/');
        let inside = inside.trim_end_matches('/').trim_end();
        let name_end = inside.find(char::is_whitespace).unwrap_or(inside.len());
        let name = &inside[..name_end];
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_alphanumeric() || "-_/.".contains(c))
        {
            at = start + 2;
            continue;
        }
        return Some(Tag {
            start,
            end,
            name: name.to_string(),
            closing,
            self_closing,
            args: inside[name_end..].trim().to_string(),
            markdown: delim == '%',
            escaped,
        });
    }
}

/// Every top-level Hugo shortcode call of `text`, in order. Nested calls are inside
/// the inner content of their parent and are found when it is expanded.
pub fn hugo_calls(text: &str) -> Vec<Call> {
    let mut calls = Vec::new();
    let mut at = 0;
    while let Some(tag) = next_hugo_tag(text, at) {
        at = tag.end;
        if tag.closing && !tag.escaped {
            continue; // A stray closing tag: dropped by the caller's gap handling.
        }
        let (named, positional) = hugo_args(&tag.args);
        let mut call = Call {
            name: tag.name.clone(),
            named,
            positional,
            start: tag.start,
            end: tag.end,
            inner: None,
            markdown: tag.markdown,
            escaped: tag.escaped,
        };
        if !tag.self_closing
            && !tag.escaped
            && let Some(close) = find_close(text, tag.end, &tag.name)
        {
            call.inner = Some((tag.end, close.start));
            call.end = close.end;
            at = close.end;
        }
        calls.push(call);
    }
    calls
}

/// The tag closing `name`, counting nested calls of the same name.
fn find_close(text: &str, from: usize, name: &str) -> Option<Tag> {
    let mut depth = 0;
    let mut at = from;
    while let Some(tag) = next_hugo_tag(text, at) {
        at = tag.end;
        if tag.name != name || tag.escaped {
            continue;
        }
        if tag.closing {
            if depth == 0 {
                return Some(tag);
            }
            depth -= 1;
        } else if !tag.self_closing && has_close_ahead(text, tag.end, name) {
            depth += 1;
        }
    }
    None
}

fn has_close_ahead(text: &str, from: usize, name: &str) -> bool {
    let mut at = from;
    while let Some(tag) = next_hugo_tag(text, at) {
        if tag.name == name && tag.closing {
            return true;
        }
        at = tag.end;
    }
    false
}

/// `a "b c" key=value key2="d e"` → named and positional arguments.
pub fn hugo_args(args: &str) -> (Map<String, Value>, Vec<String>) {
    let mut named = Map::new();
    let mut positional = Vec::new();
    let mut rest = args.trim();
    while !rest.is_empty() {
        let key_end = rest
            .find(|c: char| c.is_whitespace() || c == '=' || c == '"' || c == '`')
            .unwrap_or(rest.len());
        let (key, after) = rest.split_at(key_end);
        if !key.is_empty() && after.starts_with('=') {
            let (value, next) = hugo_value(&after[1..]);
            named.insert(key.to_string(), Value::String(value));
            rest = next.trim_start();
        } else {
            let (value, next) = hugo_value(rest);
            positional.push(value);
            rest = next.trim_start();
        }
    }
    (named, positional)
}

/// One value: `"quoted \" text"`, `` `raw` `` or a bare word; and what follows it.
fn hugo_value(text: &str) -> (String, &str) {
    let mut chars = text.char_indices();
    match chars.next() {
        Some((_, q @ ('"' | '`'))) => {
            let mut value = String::new();
            let mut escaped = false;
            for (i, c) in chars {
                match c {
                    '\\' if q == '"' && !escaped => escaped = true,
                    c if c == q && !escaped => return (value, &text[i + 1..]),
                    c => {
                        value.push(c);
                        escaped = false;
                    }
                }
            }
            (value, "")
        }
        _ => {
            let end = text.find(char::is_whitespace).unwrap_or(text.len());
            (text[..end].to_string(), &text[end..])
        }
    }
}

/// Every Zola shortcode call of `text`: `{{ name(…) }}` and `{% name(…) %}…{% end %}`.
pub fn zola_calls(text: &str) -> Vec<Call> {
    let mut calls = Vec::new();
    let mut at = 0;
    while let Some(found) = text[at..].find(['{']).map(|i| at + i) {
        at = found + 1;
        let rest = &text[found..];
        let (open, close, body) = if rest.starts_with("{{") {
            ("{{", "}}", false)
        } else if rest.starts_with("{%") {
            ("{%", "%}", true)
        } else {
            continue;
        };
        let Some(close_at) = rest.find(close) else {
            continue;
        };
        let inside = rest[open.len()..close_at].trim();
        let Some(paren) = inside.find('(') else {
            continue;
        };
        let name = inside[..paren].trim();
        if name.is_empty()
            || !name.chars().all(|c| c.is_alphanumeric() || c == '_')
            || !inside.ends_with(')')
        {
            continue;
        }
        let named = zola_args(&inside[paren + 1..inside.len() - 1]);
        let tag_end = found + close_at + close.len();
        let mut call = Call {
            name: name.to_string(),
            named,
            positional: Vec::new(),
            start: found,
            end: tag_end,
            inner: None,
            markdown: true,
            escaped: false,
        };
        if body {
            let end_tag = text[tag_end..]
                .find("{% end %}")
                .or_else(|| text[tag_end..].find("{%end%}"));
            let Some(end_at) = end_tag else { continue };
            let end_at = tag_end + end_at;
            call.inner = Some((tag_end, end_at));
            call.end = end_at + text[end_at..].find("%}").map_or(0, |i| i + 2);
        }
        at = call.end;
        calls.push(call);
    }
    calls
}

/// `id="x", n=3, on=true` → named arguments with their types.
fn zola_args(args: &str) -> Map<String, Value> {
    let mut named = Map::new();
    let mut rest = args.trim();
    while let Some(eq) = rest.find('=') {
        let key = rest[..eq].trim().trim_start_matches(',').trim().to_string();
        let after = rest[eq + 1..].trim_start();
        let (value, next) = if after.starts_with(['"', '\'', '`']) {
            let q = after.chars().next().unwrap_or('"');
            let close = after[1..].find(q).map_or(after.len(), |i| i + 1);
            (
                Value::String(after[1..close].to_string()),
                after.get(close + 1..).unwrap_or(""),
            )
        } else {
            let end = after.find(',').unwrap_or(after.len());
            let word = after[..end].trim();
            let value = serde_json::from_str(word).unwrap_or_else(|_| Value::String(word.into()));
            (value, &after[end..])
        };
        named.insert(key, value);
        rest = next.trim_start().trim_start_matches(',').trim_start();
    }
    named
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hugo_calls_with_closing_tags_and_arguments() {
        let text = "a {{< ref \"x.md\" >}} b {{% notice warning %}}**hi** {{< b />}}{{% /notice %}} {{</* lit */>}}";
        let calls = hugo_calls(text);
        assert_eq!(calls.len(), 3, "{calls:?}");
        assert_eq!(calls[0].name, "ref");
        assert_eq!(calls[0].positional, ["x.md"]);
        assert!(calls[0].inner.is_none());
        assert_eq!(calls[1].name, "notice");
        assert!(calls[1].markdown);
        let (s, e) = calls[1].inner.unwrap();
        assert_eq!(&text[s..e], "**hi** {{< b />}}");
        assert!(calls[2].escaped);
        let (named, positional) = hugo_args(r#"toml "linenos=false" src="/a b.svg" k=v"#);
        assert_eq!(positional, ["toml", "linenos=false"]);
        assert_eq!(named["src"], "/a b.svg");
        assert_eq!(named["k"], "v");
    }

    #[test]
    fn zola_calls_inline_and_with_body() {
        let text = "x {{ youtube(id=\"abc\", n=3) }} y\n{% note(kind=\"info\") %}\nBody\n{% end %}\n{{ page.title }}";
        let calls = zola_calls(text);
        assert_eq!(calls.len(), 2, "{calls:?}");
        assert_eq!(calls[0].named["id"], "abc");
        assert_eq!(calls[0].named["n"], 3);
        let (s, e) = calls[1].inner.unwrap();
        assert_eq!(text[s..e].trim(), "Body");
        assert!(text[calls[1].end..].starts_with('\n'));
    }
}
