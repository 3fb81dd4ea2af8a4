//! `SUMMARY.md`, read as mdBook reads it: an optional title (a first `# heading`), prefix
//! chapters (links before the first list), numbered chapters (nested lists, split into
//! parts by `# Part title` headings, numbered `1.`, `1.1.` across every part), suffix
//! chapters (links after the lists) and `---` separators. A link with no target
//! (`[Storms]()`) is a draft chapter: listed, numbered, with no page.

use std::path::PathBuf;

use pulldown_cmark::{Event, HeadingLevel, Parser, Tag, TagEnd};

/// One entry of the table of contents, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    Chapter(Chapter),
    /// `# Part title` between lists of numbered chapters.
    Part(String),
    /// `---`.
    Separator,
}

/// A chapter as `SUMMARY.md` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chapter {
    /// The link's text: what the table of contents shows.
    pub title: String,
    /// Its file, relative to the book's source folder; `None` for a draft.
    pub path: Option<PathBuf>,
    /// `[1, 2]` for chapter 1.2; empty for prefix and suffix chapters.
    pub number: Vec<u32>,
    /// Nesting depth, 0 at the top.
    pub level: usize,
    /// Line of `SUMMARY.md` it is listed on.
    pub line: u32,
}

impl Chapter {
    /// `1.2.` as mdBook shows it; empty when unnumbered.
    pub fn number_text(&self) -> String {
        self.number.iter().map(|n| format!("{n}.")).collect()
    }
}

/// A problem in `SUMMARY.md`, at a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SummaryError {
    pub line: u32,
    pub message: String,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Prefix,
    Numbered,
    Suffix,
}

/// Reads `SUMMARY.md`'s text into its items, in order.
pub fn parse(text: &str) -> Result<Vec<Item>, SummaryError> {
    let events: Vec<(Event<'_>, usize)> = Parser::new(text)
        .into_offset_iter()
        .map(|(event, range)| (event, range.start))
        .collect();
    let line_of = |offset: usize| text[..offset].matches('\n').count() as u32 + 1;
    let mut items = Vec::new();
    let mut phase = Phase::Prefix;
    // Top-level numbered chapters so far: numbering runs on across parts.
    let mut numbered = 0u32;
    let mut i = 0;
    // A heading that opens the file is the summary's title, not a part.
    if let Some((Event::Start(Tag::Heading { .. }), _)) = events.first() {
        i = end_of(&events, 0) + 1;
    }
    while i < events.len() {
        let (event, offset) = &events[i];
        let error = |message: &str| SummaryError {
            line: line_of(*offset),
            message: message.to_string(),
        };
        match event {
            Event::Start(Tag::Heading { level, .. }) => {
                if *level != HeadingLevel::H1 {
                    return Err(error("only `# Part title` headings may follow the title"));
                }
                if phase == Phase::Suffix {
                    return Err(error("a part title cannot follow the suffix chapters"));
                }
                let end = end_of(&events, i);
                items.push(Item::Part(text_of(&events[i + 1..end])));
                phase = Phase::Numbered;
                i = end + 1;
                continue;
            }
            Event::Start(Tag::List(_)) => {
                if phase == Phase::Suffix {
                    return Err(error("suffix chapters cannot be followed by a list"));
                }
                phase = Phase::Numbered;
                let end = end_of(&events, i);
                let mut counter = numbered;
                list(
                    &events[i + 1..end],
                    &[],
                    0,
                    &mut counter,
                    &mut items,
                    &line_of,
                );
                numbered = counter;
                i = end + 1;
                continue;
            }
            Event::Start(Tag::Paragraph) if phase == Phase::Numbered => phase = Phase::Suffix,
            Event::Start(Tag::Link { dest_url, .. }) => {
                let end = end_of(&events, i);
                items.push(Item::Chapter(Chapter {
                    title: text_of(&events[i + 1..end]),
                    path: path_of(dest_url),
                    number: Vec::new(),
                    level: 0,
                    line: line_of(*offset),
                }));
                i = end + 1;
                continue;
            }
            Event::Rule => items.push(Item::Separator),
            _ => {}
        }
        i += 1;
    }
    Ok(items)
}

/// The items of one list (the events between its start and end), numbered under
/// `parent`; `counter` counts its items.
fn list(
    events: &[(Event<'_>, usize)],
    parent: &[u32],
    level: usize,
    counter: &mut u32,
    items: &mut Vec<Item>,
    line_of: &dyn Fn(usize) -> u32,
) {
    let mut i = 0;
    while i < events.len() {
        if !matches!(events[i].0, Event::Start(Tag::Item)) {
            i += 1;
            continue;
        }
        let end = end_of(events, i);
        let inner = &events[i + 1..end];
        let mut number = Vec::new();
        let mut j = 0;
        while j < inner.len() {
            match &inner[j].0 {
                Event::Start(Tag::Link { dest_url, .. }) if number.is_empty() => {
                    let link_end = end_of(inner, j);
                    *counter += 1;
                    number = [parent, &[*counter]].concat();
                    items.push(Item::Chapter(Chapter {
                        title: text_of(&inner[j + 1..link_end]),
                        path: path_of(dest_url),
                        number: number.clone(),
                        level,
                        line: line_of(inner[j].1),
                    }));
                    j = link_end;
                }
                Event::Start(Tag::List(_)) => {
                    let list_end = end_of(inner, j);
                    let mut nested = 0;
                    list(
                        &inner[j + 1..list_end],
                        &number,
                        level + 1,
                        &mut nested,
                        items,
                        line_of,
                    );
                    j = list_end;
                }
                Event::Rule => items.push(Item::Separator),
                _ => {}
            }
            j += 1;
        }
        i = end + 1;
    }
}

/// A link target as a path in the source folder; `None` for an empty one (a draft).
fn path_of(dest: &str) -> Option<PathBuf> {
    let dest = dest.replace("%20", " ");
    let dest = dest.strip_prefix("./").unwrap_or(&dest);
    (!dest.is_empty()).then(|| PathBuf::from(dest))
}

/// Index of the `End` matching the `Start` at `start`.
fn end_of(events: &[(Event<'_>, usize)], start: usize) -> usize {
    let mut depth = 0usize;
    for (offset, (event, _)) in events[start..].iter().enumerate() {
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

fn text_of(events: &[(Event<'_>, usize)]) -> String {
    let mut text = String::new();
    for (event, _) in events {
        match event {
            Event::Text(t) | Event::Code(t) => text.push_str(t),
            Event::SoftBreak | Event::HardBreak => text.push(' '),
            Event::End(TagEnd::Paragraph) => text.push(' '),
            _ => {}
        }
    }
    text.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outline(items: &[Item]) -> Vec<String> {
        items
            .iter()
            .map(|item| match item {
                Item::Chapter(c) => format!(
                    "{}{}{} -> {}",
                    "  ".repeat(c.level),
                    c.number_text(),
                    c.title,
                    c.path
                        .as_ref()
                        .map_or("draft".into(), |p| p.display().to_string())
                ),
                Item::Part(title) => format!("# {title}"),
                Item::Separator => "---".into(),
            })
            .collect()
    }

    #[test]
    fn reads_a_summary_as_mdbook_does() {
        let text = "# Summary\n\n[Preface](preface.md)\n\n---\n\n# Part one\n\n- [A](a.md)\n    - [A1](./a/one.md)\n    - [A2](a/two%20b.md)\n- [B](b.md)\n\n# Part two\n\n- [C](c.md)\n  - [Draft]()\n\n---\n\n[Thanks](thanks.md)\n";
        let items = parse(text).unwrap();
        assert_eq!(
            outline(&items),
            [
                "Preface -> preface.md",
                "---",
                "# Part one",
                "1.A -> a.md",
                "  1.1.A1 -> a/one.md",
                "  1.2.A2 -> a/two b.md",
                "2.B -> b.md",
                "# Part two",
                "3.C -> c.md",
                "  3.1.Draft -> draft",
                "---",
                "Thanks -> thanks.md",
            ]
        );
        let Item::Chapter(b) = &items[6] else {
            panic!()
        };
        assert_eq!(b.line, 12);
    }

    #[test]
    fn a_list_after_suffix_chapters_is_an_error_at_its_line() {
        let error = parse("- [A](a.md)\n\n[S](s.md)\n\n- [B](b.md)\n").unwrap_err();
        assert_eq!(error.line, 5);
    }
}
