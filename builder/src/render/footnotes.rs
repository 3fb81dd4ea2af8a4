//! Footnotes with back-links, and heading anchor links: two rewrites of a page's Markdown
//! events just before they become HTML.
//!
//! pulldown-cmark writes a footnote's definition where it was written, with the label as
//! its id and no way back to the text. Here references are numbered in the order they
//! are first used, definitions are gathered into one list at the end of the page (as
//! GitHub shows them), and each ends with a `↩` link back to every place it was cited.
//! Ids are prefixed (`fn-`, `fnref-`) so that a footnote labelled like a heading does not
//! take its id.

use std::fmt::Write as _;

use pulldown_cmark::{CowStr, Event, Tag, TagEnd};
use rustc_hash::FxHashMap as HashMap;

use crate::html::escape;
use crate::url::slugify;

/// Adds a `#` link to its own id at the end of every heading that has one, for readers
/// to copy a link to the section.
/// An iterator over the events, as they go to the HTML writer: no copy of the page's
/// events is made for the few it adds.
#[derive(Debug)]
pub struct HeadingAnchors<'a, I> {
    events: I,
    open_id: Option<CowStr<'a>>,
    /// The heading's end, held back one step while its anchor goes out first.
    held: Option<Event<'a>>,
}

impl<'a, I: Iterator<Item = Event<'a>>> HeadingAnchors<'a, I> {
    pub fn new(events: I) -> Self {
        HeadingAnchors {
            events,
            open_id: None,
            held: None,
        }
    }
}

impl<'a, I: Iterator<Item = Event<'a>>> Iterator for HeadingAnchors<'a, I> {
    type Item = Event<'a>;

    fn next(&mut self) -> Option<Event<'a>> {
        if let Some(event) = self.held.take() {
            return Some(event);
        }
        let event = self.events.next()?;
        match &event {
            Event::Start(Tag::Heading { id, .. }) => self.open_id = id.clone(),
            Event::End(TagEnd::Heading(_)) => {
                if let Some(id) = self.open_id.take() {
                    self.held = Some(event);
                    let id = escape(&id);
                    return Some(Event::InlineHtml(CowStr::from(format!(
                        " <a class=\"heading-anchor\" href=\"#{id}\" aria-label=\"Link to this section\">#</a>"
                    ))));
                }
            }
            _ => {}
        }
        Some(event)
    }
}

/// One footnote: its number and how many times it was cited.
struct Note {
    number: usize,
    cited: usize,
}

/// Rewrites footnote references and definitions (see the module's documentation). A page
/// without footnotes comes back as it was.
pub fn with_backlinks(events: Vec<Event<'_>>) -> Vec<Event<'_>> {
    let has_notes = events.iter().any(|e| {
        matches!(
            e,
            Event::FootnoteReference(_) | Event::Start(Tag::FootnoteDefinition(_))
        )
    });
    if !has_notes {
        return events;
    }
    let mut notes: HashMap<String, Note> = HashMap::default();
    let mut out = Vec::with_capacity(events.len() + 8);
    // Each definition's events, by label, in the order written.
    let mut definitions: Vec<(String, Vec<Event<'_>>)> = Vec::new();
    let mut current: Option<(String, Vec<Event<'_>>)> = None;
    for event in events {
        match event {
            Event::Start(Tag::FootnoteDefinition(label)) => {
                current = Some((label.to_string(), Vec::new()));
            }
            Event::End(TagEnd::FootnoteDefinition) => {
                definitions.extend(current.take());
            }
            Event::FootnoteReference(label) => {
                let count = notes.len();
                let note = notes.entry(label.to_string()).or_insert(Note {
                    number: count + 1,
                    cited: 0,
                });
                note.cited += 1;
                let id = slugify(&label);
                let back = ref_id(&id, note.cited);
                let html = format!(
                    "<sup class=\"footnote-reference\" id=\"{back}\"><a href=\"#fn-{id}\">{}</a></sup>",
                    note.number
                );
                let event = Event::InlineHtml(CowStr::from(html));
                match &mut current {
                    Some((_, inner)) => inner.push(event),
                    None => out.push(event),
                }
            }
            other => match &mut current {
                Some((_, inner)) => inner.push(other),
                None => out.push(other),
            },
        }
    }
    // Definitions in the order of their first citation; those never cited last.
    definitions.sort_by_key(|(label, _)| notes.get(label).map_or(usize::MAX, |n| n.number));
    out.push(Event::Html(CowStr::from(
        "<section class=\"footnotes\">\n<ol>\n",
    )));
    for (label, mut inner) in definitions {
        let id = slugify(&label);
        let cited = notes.get(&label).map_or(0, |n| n.cited);
        let mut backlinks = String::new();
        for n in 1..=cited {
            let mark = if n == 1 {
                "↩".to_string()
            } else {
                format!("↩<sup>{n}</sup>")
            };
            let _ = write!(
                backlinks,
                " <a href=\"#{}\" class=\"footnote-backref\" aria-label=\"Back to the text\">{mark}</a>",
                ref_id(&id, n)
            );
        }
        let backlinks = Event::InlineHtml(CowStr::from(backlinks));
        // Inside the last paragraph when it ends with one, so the arrow follows the text.
        match inner.last() {
            Some(Event::End(TagEnd::Paragraph)) => {
                let end = inner.len() - 1;
                inner.insert(end, backlinks);
            }
            _ => inner.push(backlinks),
        }
        out.push(Event::Html(CowStr::from(format!("<li id=\"fn-{id}\">\n"))));
        out.extend(inner);
        out.push(Event::Html(CowStr::from("</li>\n")));
    }
    out.push(Event::Html(CowStr::from("</ol>\n</section>\n")));
    out
}

/// The id of the `n`th citation of footnote `id`.
fn ref_id(id: &str, n: usize) -> String {
    if n == 1 {
        format!("fnref-{id}")
    } else {
        format!("fnref-{id}-{n}")
    }
}

#[cfg(test)]
mod tests {
    use pulldown_cmark::{Options, Parser};

    use super::*;

    fn html(markdown: &str) -> String {
        let events = Parser::new_ext(markdown, Options::ENABLE_FOOTNOTES).collect();
        let mut html = String::new();
        pulldown_cmark::html::push_html(&mut html, with_backlinks(events).into_iter());
        html
    }

    #[test]
    fn footnotes_are_numbered_gathered_and_link_back() {
        let html = html("[^b] is second.\n\n[^b]: Bee.\n\nFirst[^a], again[^a].\n\n[^a]: Ay.\n");
        assert!(
            html.contains(
                "<sup class=\"footnote-reference\" id=\"fnref-b\"><a href=\"#fn-b\">1</a></sup>"
            ),
            "{html}"
        );
        assert!(
            html.contains("id=\"fnref-a\"><a href=\"#fn-a\">2</a>"),
            "{html}"
        );
        assert!(
            html.contains("id=\"fnref-a-2\"><a href=\"#fn-a\">2</a>"),
            "{html}"
        );
        let list = &html[html.find("<section class=\"footnotes\">").expect("a list")..];
        assert!(
            list.find("fn-b").unwrap() < list.find("fn-a").unwrap(),
            "by number: {list}"
        );
        assert!(
            list.contains(
                "<li id=\"fn-a\">\n<p>Ay. <a href=\"#fnref-a\" class=\"footnote-backref\""
            ),
            "{list}"
        );
        assert!(list.contains("href=\"#fnref-a-2\""), "{list}");
        assert!(
            !html[..html.find("<section").unwrap()].contains("Bee."),
            "moved to the end"
        );
    }

    #[test]
    fn pages_without_footnotes_are_untouched() {
        assert_eq!(html("Plain.\n"), "<p>Plain.</p>\n");
    }
}
