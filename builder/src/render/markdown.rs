//! Markdown → HTML with pulldown-cmark: GitHub-style extensions, stable unique heading
//! ids, a table of contents, the title fallback, and links rewritten from source paths
//! (`other.md#part`, `img/x.png`) to the URLs they are served at.

use std::collections::HashSet;

use crate::check::LinkRef;
use crate::context::TocEntry;
use crate::url::slugify;
use pulldown_cmark::{CodeBlockKind, CowStr, Event, HeadingLevel, Options, Parser, Tag, TagEnd};

/// A rendered Markdown body.
#[derive(Debug, Default)]
pub struct Rendered {
    pub html: String,
    pub toc: Vec<TocEntry>,
    /// Text of the heading the document opens with, if it opens with one. It is taken
    /// out of `html` when `strip_title` was set, since the template prints the title.
    pub leading_heading: Option<String>,
    /// Plain text of the first paragraph, for listings.
    pub summary: Option<String>,
    pub word_count: usize,
    /// Every link and image of the body, as the HTML has it, with its line in the body
    /// (1-based): what the link check checks.
    pub links: Vec<LinkRef>,
    /// Every id a link's `#fragment` can name: headings' and raw HTML's `id`/`name`.
    pub anchors: Vec<String>,
}

/// Rewrites link and image destinations. Returns `None` to keep one as written.
pub trait LinkResolver {
    fn resolve(&self, dest: &str) -> Option<String>;
}

/// Options pulldown-cmark is run with, on every page.
fn options() -> Options {
    Options::ENABLE_TABLES
        | Options::ENABLE_FOOTNOTES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_SMART_PUNCTUATION
        | Options::ENABLE_HEADING_ATTRIBUTES
        | Options::ENABLE_DEFINITION_LIST
}

/// Renders a Markdown body. A heading that opens the document is reported in
/// `leading_heading`, and left out of the HTML if `strip_title(its text)` says so.
pub fn render(
    body: &str,
    links: &dyn LinkResolver,
    strip_title: &dyn Fn(&str) -> bool,
) -> Rendered {
    // Sized up front: growing these two vectors took a sixth of the Markdown phase.
    // About one event per 12 bytes of source, on tldr and the Rust book.
    let guess = body.len() / 12 + 16;
    let (mut events, mut offsets) = (Vec::with_capacity(guess), Vec::with_capacity(guess));
    for (event, range) in Parser::new_ext(body, options()).into_offset_iter() {
        events.push(event);
        offsets.push(range.start);
    }
    let mut lines = LineCounter::new(body);
    let mut walk = Walk {
        rendered: Rendered::default(),
        used_ids: HashSet::new(),
        first_block: true,
        strip: None,
    };
    let mut i = 0;
    while i < events.len() {
        match &events[i] {
            Event::Start(Tag::Heading { .. }) => {
                i = walk.heading(&mut events, i, strip_title);
                continue;
            }
            // A comment or a bare anchor before the first heading (a licence note, the
            // `<a id="old-heading"></a>` books keep for old links) does not stop that
            // heading being the title.
            Event::Start(Tag::HtmlBlock | Tag::Paragraph)
                if walk.first_block && is_invisible(&events, i) => {}
            Event::Start(Tag::Paragraph) => {
                let end = find_end(&events, i);
                if walk.rendered.summary.is_none() {
                    let text = plain_text(&events[i + 1..end]);
                    if !text.trim().is_empty() {
                        walk.rendered.summary = Some(truncate_words(&text, 200));
                    }
                }
                walk.first_block = false;
            }
            Event::Start(Tag::Link { dest_url, .. } | Tag::Image { dest_url, .. }) => {
                let resolved = links.resolve(dest_url);
                walk.rendered.links.push(LinkRef {
                    written: dest_url.to_string(),
                    href: resolved.clone().unwrap_or_else(|| dest_url.to_string()),
                    line: lines.line_at(offsets[i]),
                });
                if let Some(new) = resolved {
                    match &mut events[i] {
                        Event::Start(Tag::Link { dest_url, .. } | Tag::Image { dest_url, .. }) => {
                            *dest_url = CowStr::from(new);
                        }
                        _ => unreachable!("matched a link or image above"),
                    }
                }
            }
            Event::Text(text) => {
                walk.rendered.word_count += count_words(text);
            }
            Event::Html(html) | Event::InlineHtml(html) => {
                // Raw `<img src="img/x.png">` resolves like `![](img/x.png)`.
                let line = lines.line_at(offsets[i]);
                collect_html_anchors(html, &mut walk.rendered.anchors);
                let mut found = Vec::new();
                let rewritten = rewrite_html_links(html, links, &mut found);
                walk.rendered
                    .links
                    .extend(found.into_iter().map(|(written, href)| LinkRef {
                        written,
                        href,
                        line,
                    }));
                if let Some(rewritten) = rewritten {
                    match &mut events[i] {
                        Event::Html(html) | Event::InlineHtml(html) => {
                            *html = CowStr::from(rewritten)
                        }
                        _ => unreachable!("matched raw HTML above"),
                    }
                }
            }
            Event::Start(_) => walk.first_block = false,
            _ => {}
        }
        i += 1;
    }
    let mut rendered = walk.rendered;
    if let Some((range, id)) = walk.strip {
        // The heading goes (the template prints the title) but its anchor stays: other
        // pages link to `page#title`.
        let anchor = format!("<a id=\"{}\"></a>\n", crate::html::escape(&id));
        events.splice(range, [Event::Html(CowStr::from(anchor))]);
    }
    let mut html = String::with_capacity(body.len() * 3 / 2);
    let events = super::footnotes::with_backlinks(highlight_code(events));
    let events = super::footnotes::HeadingAnchors::new(events.into_iter());
    pulldown_cmark::html::push_html(&mut html, events);
    rendered.html = html;
    rendered
}

/// What one pass over a document's events has gathered so far.
struct Walk {
    rendered: Rendered,
    used_ids: HashSet<String>,
    /// No block has been seen yet: a heading now opens the document.
    first_block: bool,
    /// The events of the opening heading to take out, and its id.
    strip: Option<(std::ops::Range<usize>, String)>,
}

impl Walk {
    /// Takes in the heading that starts at `events[i]`: its unique id (written back into
    /// the event), its words and table-of-contents entry, whether it is the title.
    /// Returns the index after the heading.
    fn heading(
        &mut self,
        events: &mut [Event<'_>],
        i: usize,
        strip_title: &dyn Fn(&str) -> bool,
    ) -> usize {
        let Event::Start(Tag::Heading { level, id, .. }) = &events[i] else {
            unreachable!("called on a heading");
        };
        let (level, explicit) = (*level, id.clone());
        let end = find_end(events, i);
        let text = plain_text(&events[i + 1..end]);
        let id = unique_id(
            explicit
                .map(|id| id.to_string())
                .unwrap_or_else(|| slugify(&text)),
            &mut self.used_ids,
        );
        let mut stripped = false;
        if self.first_block {
            if strip_title(&text) {
                self.strip = Some((i..end + 1, id.clone()));
                stripped = true;
            }
            self.rendered.leading_heading = Some(text.clone());
        }
        // A stripped title is the page's title: not text, not a TOC entry.
        if !stripped {
            self.rendered.word_count += count_words(&text);
            if (HeadingLevel::H2..=HeadingLevel::H4).contains(&level) {
                self.rendered.toc.push(TocEntry {
                    level: level as u8,
                    id: id.clone(),
                    title: text,
                });
            }
        }
        self.rendered.anchors.push(id.clone());
        if let Event::Start(Tag::Heading { id: slot, .. }) = &mut events[i] {
            *slot = Some(CowStr::from(id));
        }
        self.first_block = false;
        end + 1
    }
}

/// Replaces fenced code blocks in a known language by their highlighted HTML.
fn highlight_code(events: Vec<Event<'_>>) -> Vec<Event<'_>> {
    let fenced =
        |e: &Event<'_>| matches!(e, Event::Start(Tag::CodeBlock(CodeBlockKind::Fenced(_))));
    if !events.iter().any(fenced) {
        return events;
    }
    let mut out = Vec::with_capacity(events.len());
    let mut events = events.into_iter();
    while let Some(event) = events.next() {
        let Event::Start(Tag::CodeBlock(CodeBlockKind::Fenced(info))) = &event else {
            out.push(event);
            continue;
        };
        let lang = super::highlight::language(info).to_string();
        let mut code = String::new();
        let mut inner = Vec::new();
        for event in events.by_ref() {
            match event {
                Event::End(TagEnd::CodeBlock) => break,
                Event::Text(text) => {
                    code.push_str(&text);
                    inner.push(Event::Text(text));
                }
                other => inner.push(other),
            }
        }
        match super::highlight::highlight(&lang, &code) {
            Some(html) => out.push(Event::Html(CowStr::from(html))),
            None => {
                out.push(event);
                out.extend(inner);
                out.push(Event::End(TagEnd::CodeBlock));
            }
        }
    }
    out
}

/// Rewrites the `src` and `href` attributes of raw HTML through `links`; `None` if
/// nothing changed. Each value is added to `found`, as written and as rewritten.
fn rewrite_html_links(
    html: &str,
    links: &dyn LinkResolver,
    found: &mut Vec<(String, String)>,
) -> Option<String> {
    let mut out = String::with_capacity(html.len());
    let mut changed = false;
    let mut rest = html;
    while let Some(at) = ["src=", "href=", "SRC=", "HREF="]
        .iter()
        .filter_map(|a| rest.find(a).map(|i| (i, a.len())))
        .min()
    {
        let (start, len) = at;
        let value_start = start + len;
        let quote = rest[value_start..].chars().next();
        let Some(quote @ ('"' | '\'')) = quote else {
            out.push_str(&rest[..value_start]);
            rest = &rest[value_start..];
            continue;
        };
        let inner = &rest[value_start + 1..];
        let Some(end) = inner.find(quote) else { break };
        out.push_str(&rest[..value_start + 1]);
        let written = &inner[..end];
        match links.resolve(written) {
            Some(new) => {
                out.push_str(&new);
                found.push((written.to_string(), new));
                changed = true;
            }
            None => {
                out.push_str(written);
                found.push((written.to_string(), written.to_string()));
            }
        }
        out.push(quote);
        rest = &inner[end + 1..];
    }
    out.push_str(rest);
    changed.then_some(out)
}

/// Adds the `id="…"` and `name="…"` values of raw HTML (`<a id="x"></a>`, `<a name="x">`)
/// to `anchors`.
fn collect_html_anchors(html: &str, anchors: &mut Vec<String>) {
    for attr in [" id=", " name=", " ID=", " NAME="] {
        let mut rest = html;
        while let Some(at) = rest.find(attr) {
            rest = &rest[at + attr.len()..];
            let Some(quote @ ('"' | '\'')) = rest.chars().next() else {
                continue;
            };
            let Some(end) = rest[1..].find(quote) else {
                break;
            };
            anchors.push(rest[1..end + 1].to_string());
            rest = &rest[end + 1..];
        }
    }
}

/// Turns byte offsets of a text into 1-based line numbers, cheaply for offsets that come
/// in order.
struct LineCounter<'a> {
    text: &'a str,
    offset: usize,
    line: u32,
}

impl<'a> LineCounter<'a> {
    fn new(text: &'a str) -> Self {
        LineCounter {
            text,
            offset: 0,
            line: 1,
        }
    }

    fn line_at(&mut self, offset: usize) -> u32 {
        if offset < self.offset {
            (self.offset, self.line) = (0, 1);
        }
        let offset = offset.min(self.text.len());
        self.line += self.text.as_bytes()[self.offset..offset]
            .iter()
            .filter(|&&b| b == b'\n')
            .count() as u32;
        self.offset = offset;
        self.line
    }
}

/// Whether the HTML block or paragraph starting at `events[start]` shows nothing:
/// comments and empty `<a id="…"></a>` anchors only.
fn is_invisible(events: &[Event<'_>], start: usize) -> bool {
    let mut html = String::new();
    for event in &events[start + 1..] {
        match event {
            Event::Html(text) | Event::InlineHtml(text) => html.push_str(text),
            Event::Text(text) if text.trim().is_empty() => {}
            Event::SoftBreak => {}
            Event::End(TagEnd::HtmlBlock | TagEnd::Paragraph) => break,
            _ => return false,
        }
    }
    let mut rest = html.trim();
    while !rest.is_empty() {
        let end = if rest.starts_with("<!--") {
            rest.find("-->").map(|e| e + 3)
        } else if rest.starts_with("<a ") {
            rest.find("</a>")
                .filter(|&e| rest[..e].ends_with('>') && rest[..e].matches('>').count() == 1)
                .map(|e| e + 4)
        } else {
            None
        };
        let Some(end) = end else { return false };
        rest = rest[end..].trim_start();
    }
    true
}

/// Index of the `End` matching the `Start` at `start`.
fn find_end(events: &[Event<'_>], start: usize) -> usize {
    let mut depth = 0usize;
    for (offset, event) in events[start..].iter().enumerate() {
        match event {
            Event::Start(_) => depth += 1,
            Event::End(_) => {
                depth -= 1;
                if depth == 0 {
                    return start + offset;
                }
            }
            _ => {}
        }
    }
    events.len() - 1
}

fn plain_text(events: &[Event<'_>]) -> String {
    let mut text = String::new();
    for event in events {
        match event {
            Event::Text(t) | Event::Code(t) | Event::InlineMath(t) => text.push_str(t),
            Event::SoftBreak | Event::HardBreak => text.push(' '),
            Event::End(TagEnd::Paragraph) => text.push(' '),
            _ => {}
        }
    }
    text.trim().to_string()
}

/// `text.split_whitespace().count()`, without decoding characters in ASCII text (8% of
/// the Markdown phase on tldr went to that decoding): a word starts at a first byte that
/// is no space, and wherever a non-space follows a space. Called for every text event (a
/// few words each), in one pass over pairs of bytes that the compiler vectorises: a
/// `windows(2)` filter was still 8% of the phase (2× slower on tldr's texts).
fn count_words(text: &str) -> usize {
    if !text.is_ascii() {
        return text.split_whitespace().count();
    }
    // `char::is_whitespace` in ASCII: space, and tab to carriage return (`\t \n \x0b
    // \x0c \r`, 9 to 13).
    let space = |b: u8| (b == b' ') | (b.wrapping_sub(b'\t') < 5);
    let bytes = text.as_bytes();
    let Some(&first) = bytes.first() else {
        return 0;
    };
    let after_a_space: u32 = (bytes.iter().zip(&bytes[1..]))
        .map(|(&a, &b)| u32::from(space(a) & !space(b)))
        .sum();
    usize::from(!space(first)) + after_a_space as usize
}

fn truncate_words(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_string();
    }
    let cut: String = text.chars().take(max_chars).collect();
    let cut = cut.rsplit_once(' ').map_or(cut.as_str(), |(head, _)| head);
    format!("{}…", cut.trim_end_matches([',', ';', ':', '.']))
}

fn unique_id(base: String, used: &mut HashSet<String>) -> String {
    let base = if base.is_empty() {
        "section".to_string()
    } else {
        base
    };
    if used.insert(base.clone()) {
        return base;
    }
    (1..)
        .map(|n| format!("{base}-{n}"))
        .find(|candidate| used.insert(candidate.clone()))
        .expect("an unused suffix exists")
}

#[cfg(test)]
mod tests {
    use super::*;

    struct NoLinks;
    impl LinkResolver for NoLinks {
        fn resolve(&self, _: &str) -> Option<String> {
            None
        }
    }

    struct Upper;
    impl LinkResolver for Upper {
        fn resolve(&self, dest: &str) -> Option<String> {
            dest.ends_with(".md")
                .then(|| format!("/{}/", dest.trim_end_matches(".md")))
        }
    }

    #[test]
    fn words_are_counted_as_split_whitespace_counts_them() {
        for text in [
            "",
            " ",
            "one",
            "  two words  ",
            "tabs\tand\nnew\r\nlines",
            "vertical\x0btab and\x0cform feed",
            "a-b c_d {{x}} `tar -xf`",
            "non\u{a0}breaking and\u{2003}em space, café",
        ] {
            assert_eq!(
                count_words(text),
                text.split_whitespace().count(),
                "{text:?}"
            );
        }
        // Every ASCII character between words, at the start and at the end.
        for c in (0..128u8).map(char::from) {
            for text in [format!("a{c}b"), format!("{c}a b{c}"), format!("{c}{c}")] {
                assert_eq!(
                    count_words(&text),
                    text.split_whitespace().count(),
                    "{text:?}"
                );
            }
        }
    }

    #[test]
    fn headings_get_stable_unique_ids_and_a_toc() {
        let out = render(
            "## Set up\n\n## Set up\n\n### Hello, World!\n",
            &NoLinks,
            &|_| false,
        );
        assert!(out.html.contains(r#"<h2 id="set-up">"#), "{}", out.html);
        assert!(out.html.contains(r#"<h2 id="set-up-1">"#), "{}", out.html);
        assert!(
            out.html.contains(r#"<h3 id="hello-world">"#),
            "{}",
            out.html
        );
        let ids: Vec<_> = out.toc.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["set-up", "set-up-1", "hello-world"]);
        assert_eq!(out.toc[2].level, 3);
    }

    #[test]
    fn explicit_heading_id_wins() {
        let out = render("## Intro {#start}\n", &NoLinks, &|_| false);
        assert!(out.html.contains(r#"<h2 id="start">"#), "{}", out.html);
    }

    #[test]
    fn leading_heading_is_the_title_and_can_be_stripped() {
        let out = render("# tar\n\n> Archiving utility.\n", &NoLinks, &|_| true);
        assert_eq!(out.leading_heading.as_deref(), Some("tar"));
        assert!(!out.html.contains("<h1"), "{}", out.html);
        assert!(out.html.contains("Archiving utility"));
        let kept = render("Intro.\n\n# Later\n", &NoLinks, &|_| true);
        assert_eq!(kept.leading_heading, None);
        assert!(kept.html.contains("<h1"));
    }

    #[test]
    fn extensions_are_on() {
        let source = "| a | b |\n|---|---|\n| 1 | 2 |\n\n~~old~~\n\n- [x] done\n\nNote[^1].\n\n[^1]: Foot.\n\n\"quoted\"\n";
        let html = render(source, &NoLinks, &|_| false).html;
        assert!(html.contains("<table>"), "{html}");
        assert!(html.contains("<del>old</del>"), "{html}");
        assert!(html.contains(r#"type="checkbox""#), "{html}");
        assert!(html.contains("footnote-backref"), "{html}");
        assert!(html.contains('“'), "smart quotes: {html}");
        let html = render("Term\n: Its definition.\n", &NoLinks, &|_| false).html;
        assert!(
            html.contains("<dl>\n<dt>Term</dt>\n<dd>Its definition.</dd>"),
            "{html}"
        );
    }

    #[test]
    fn headings_carry_a_link_to_themselves() {
        let html = render("## Set up\n", &NoLinks, &|_| false).html;
        assert!(
            html.contains("<h2 id=\"set-up\">Set up <a class=\"heading-anchor\" href=\"#set-up\""),
            "{html}"
        );
    }

    #[test]
    fn links_and_images_go_through_the_resolver() {
        let html = render(
            "[x](other.md) ![i](pic.png) [y](https://e.com)",
            &Upper,
            &|_| false,
        )
        .html;
        assert!(html.contains(r#"href="/other/""#), "{html}");
        assert!(html.contains(r#"src="pic.png""#), "{html}");
        assert!(html.contains(r#"href="https://e.com""#), "{html}");
    }

    #[test]
    fn summary_and_word_count() {
        let out = render("# T\n\nFirst *para* here.\n\nSecond.\n", &NoLinks, &|_| {
            true
        });
        assert_eq!(out.summary.as_deref(), Some("First para here."));
        assert_eq!(
            out.word_count, 4,
            "a stripped title is not part of the text"
        );
        assert_eq!(
            render("# T\n\nFirst.\n", &NoLinks, &|_| false).word_count,
            2
        );
    }

    #[test]
    fn fenced_code_in_a_known_language_is_highlighted() {
        let html = render(
            "```rust,ignore\nlet x = 1;\n```\n\n```nope\nplain <x>\n```\n",
            &NoLinks,
            &|_| false,
        )
        .html;
        assert!(
            html.contains(r#"<pre class="hl-code"><code class="language-rust">"#),
            "{html}"
        );
        assert!(
            html.contains(r#"<code class="language-nope">plain &lt;x&gt;"#),
            "{html}"
        );
    }

    #[test]
    fn raw_html_links_are_rewritten_too() {
        let html = render(
            "<img alt=\"x\" src=\"pic.md\" class=\"c\">\n\nText <a href='a.md'>a</a>.\n",
            &Upper,
            &|_| false,
        )
        .html;
        assert!(html.contains(r#"src="/pic/""#), "{html}");
        assert!(html.contains("href='/a/'"), "{html}");
    }

    #[test]
    fn a_comment_before_the_first_heading_leaves_it_the_title() {
        let out = render(
            "<!-- Licence: MIT.\n     Second line. -->\n\n# Title\n\nText.\n",
            &NoLinks,
            &|_| true,
        );
        assert_eq!(out.leading_heading.as_deref(), Some("Title"));
        assert!(!out.html.contains("<h1"), "{}", out.html);
        let anchored = render(
            "<!-- Old headings. -->\n\n<a id=\"old\"></a>\n\n## Title\n",
            &NoLinks,
            &|_| true,
        );
        assert_eq!(anchored.leading_heading.as_deref(), Some("Title"));
        assert!(anchored.anchors.contains(&"old".to_string()));
        let html_first = render("<div>x</div>\n\n# Later\n", &NoLinks, &|_| true);
        assert_eq!(html_first.leading_heading, None);
    }

    #[test]
    fn a_stripped_title_keeps_its_anchor() {
        let out = render("## Data Types\n\nText.\n\n## Scalars\n", &NoLinks, &|_| {
            true
        });
        assert!(
            out.html.starts_with("<a id=\"data-types\"></a>"),
            "{}",
            out.html
        );
        assert!(!out.html.contains("<h2 id=\"data-types\""), "{}", out.html);
        let toc: Vec<_> = out.toc.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(
            toc,
            ["scalars"],
            "the title is not in its own table of contents"
        );
    }
}
