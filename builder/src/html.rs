//! Escaping text for HTML and XML (element content and quoted attribute values).

/// Escapes `<`, `>`, `&` and both quotes; nothing else (minijinja's own escaping also
/// escapes `/`, which makes every URL unreadable in view-source).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn markup_and_quotes_are_escaped_and_slashes_are_not() {
        assert_eq!(
            super::escape("<a href='/x/'>&\""),
            "&lt;a href=&#39;/x/&#39;&gt;&amp;&quot;"
        );
    }
}
