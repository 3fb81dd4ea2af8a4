//! Escaping text for HTML and XML (element content and quoted attribute values).

/// Escapes `<`, `>`, `&` and both quotes; nothing else (minijinja's own escaping also
/// escapes `/`, which makes every URL unreadable in view-source).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    escape_to(&mut out, text).expect("a String takes any text");
    out
}

/// [`escape`] straight into `out`, in runs between the characters it replaces: templates
/// print every value this way, so no copy is made per value.
pub fn escape_to(out: &mut impl std::fmt::Write, text: &str) -> std::fmt::Result {
    let mut start = 0;
    for (i, byte) in text.bytes().enumerate() {
        let entity = match byte {
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'&' => "&amp;",
            b'"' => "&quot;",
            b'\'' => "&#39;",
            _ => continue,
        };
        out.write_str(&text[start..i])?;
        out.write_str(entity)?;
        start = i + 1;
    }
    out.write_str(&text[start..])
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
