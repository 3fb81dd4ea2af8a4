//! mdBook's `{{#…}}` directives in a chapter, expanded before its Markdown is read, as
//! mdBook's `links` preprocessor does: `{{#include file}}`, `{{#include file:10:20}}`
//! (also `file:5`, `file:5:`, `file::20`), `{{#include file:anchor}}` (the lines between
//! `ANCHOR: name` and `ANCHOR_END: name`), `{{#rustdoc_include …}}` (the whole file, the
//! lines outside the range or anchor hidden behind `# `), `{{#playground file}}` and
//! `{{#title …}}`; `\{{#…}}` is written as is. Paths are relative to the file the
//! directive is in; included text is expanded in turn (10 deep at most).
//!
//! Unlike mdBook, which includes nothing for an anchor it cannot find, a missing file or
//! anchor is an error at the directive's line. Files outside the book are not included.
//!
//! Then, as mdBook's HTML renderer does, lines of Rust code blocks that rustdoc hides
//! (`# hidden`, a lone `#`) are left out, and `##` is written `#`.

use std::path::Path;

/// A chapter's body with its directives expanded.
#[derive(Debug, Default)]
pub struct Expanded {
    pub text: String,
    /// For each line of `text`, the line of the chapter it comes from (an included line
    /// comes from the directive's).
    pub lines: Vec<u32>,
    /// From `{{#title …}}`: the page's `<title>`.
    pub title: Option<String>,
    /// `(line, message)` of every directive that could not be expanded.
    pub problems: Vec<(u32, String)>,
}

const MAX_DEPTH: usize = 10;

/// Expands `body` (whose first line is line `first_line` of its file), a chapter in
/// `dir`; included files must lie beneath `root`.
pub fn expand(body: &str, dir: &Path, root: &Path, first_line: u32) -> Expanded {
    let mut out = Expanded {
        lines: vec![first_line],
        ..Expanded::default()
    };
    let mut line = first_line;
    expand_into(&mut out, body, dir, root, 0, Some(&mut line), first_line);
    hide_rust_lines(&mut out);
    out
}

/// Appends `text` to `out`. `line` is `Some` (and advanced) when `text` is the chapter's
/// own; included text maps every line to `at` (its directive's line).
fn expand_into(
    out: &mut Expanded,
    text: &str,
    dir: &Path,
    root: &Path,
    depth: usize,
    mut line: Option<&mut u32>,
    at: u32,
) {
    let mut rest = text;
    while let Some(found) = rest.find("{{") {
        let escaped = found > 0 && rest.as_bytes()[found - 1] == b'\\';
        let here = line.as_deref().copied().unwrap_or(at);
        let here = here + rest[..found].matches('\n').count() as u32 * u32::from(line.is_some());
        let Some((directive, len)) = parse(&rest[found..]) else {
            push(out, &rest[..found + 2], line.as_deref_mut(), at);
            rest = &rest[found + 2..];
            continue;
        };
        if escaped {
            push(out, &rest[..found - 1], line.as_deref_mut(), at);
            push(out, &rest[found..found + len], line.as_deref_mut(), at);
            rest = &rest[found + len..];
            continue;
        }
        push(out, &rest[..found], line.as_deref_mut(), at);
        let raw = &rest[found..found + len];
        match run(&directive, dir, root) {
            Ok(Output::Title(title)) => out.title = Some(title),
            Ok(Output::Text(text, from)) if depth < MAX_DEPTH => {
                let inner_dir = from.parent().unwrap_or(dir).to_path_buf();
                expand_into(out, &text, &inner_dir, root, depth + 1, None, here);
            }
            Ok(Output::Text(..)) => {
                out.problems.push((
                    here,
                    format!("{raw}: includes nest more than {MAX_DEPTH} deep"),
                ));
                push(out, raw, None, here);
            }
            Err(message) => {
                out.problems.push((here, format!("{raw}: {message}")));
                push(out, raw, None, here);
            }
        }
        // The directive's own newlines (rare) still count in the chapter.
        if let Some(line) = line.as_deref_mut() {
            *line += raw.matches('\n').count() as u32;
        }
        rest = &rest[found + len..];
    }
    push(out, rest, line, at);
}

/// Appends `text`, recording where each new line comes from.
fn push(out: &mut Expanded, text: &str, mut line: Option<&mut u32>, at: u32) {
    for piece in text.split_inclusive('\n') {
        out.text.push_str(piece);
        if piece.ends_with('\n') {
            let next = match line.as_deref_mut() {
                Some(line) => {
                    *line += 1;
                    *line
                }
                None => at,
            };
            out.lines.push(next);
        }
    }
}

/// A directive, parsed.
#[derive(Debug, PartialEq, Eq)]
enum Directive<'a> {
    Include(&'a str, Select<'a>),
    RustdocInclude(&'a str, Select<'a>),
    Playground(&'a str, Vec<&'a str>),
    Title(&'a str),
}

/// Which lines of a file.
#[derive(Debug, PartialEq, Eq)]
enum Select<'a> {
    /// 0-based, end excluded.
    Lines(usize, Option<usize>),
    Anchor(&'a str),
}

enum Output {
    Title(String),
    /// Text to include, and the file it came from.
    Text(String, std::path::PathBuf),
}

/// The directive `text` opens with (`{{#name args}}`) and its length; `None` if it opens
/// with none sited knows (left as written, as mdBook does).
fn parse(text: &str) -> Option<(Directive<'_>, usize)> {
    let inner = text.strip_prefix("{{")?;
    let skipped = inner.len() - inner.trim_start().len();
    let inner = inner.trim_start().strip_prefix('#')?;
    let name_len = inner
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(inner.len());
    let (name, after) = inner.split_at(name_len);
    if !after.starts_with(char::is_whitespace) {
        return None;
    }
    let close = after.find('}')?;
    if !after[close..].starts_with("}}") {
        return None;
    }
    let args = after[..close].trim();
    let len = 2 + skipped + 1 + name_len + close + 2;
    let mut words = args.split_whitespace();
    let first = words.next()?;
    let directive = match name {
        "include" => {
            let (path, select) = split_select(first);
            Directive::Include(path, select)
        }
        "rustdoc_include" => {
            let (path, select) = split_select(first);
            Directive::RustdocInclude(path, select)
        }
        "playground" | "playpen" => Directive::Playground(first, words.collect()),
        "title" => Directive::Title(args),
        _ => return None,
    };
    Some((directive, len))
}

/// `file:10:20`, `file:anchor`, … as mdBook reads them.
fn split_select(arg: &str) -> (&str, Select<'_>) {
    let Some((path, rest)) = arg.split_once(':') else {
        return (arg, Select::Lines(0, None));
    };
    let mut parts = rest.splitn(2, ':');
    let first = parts.next().unwrap_or("");
    let start = match first.parse::<usize>() {
        Ok(n) => Some(n.saturating_sub(1)),
        Err(_) if first.is_empty() => None,
        Err(_) => return (path, Select::Anchor(first)),
    };
    let end = parts.next().map(|s| s.parse::<usize>());
    let select = match (start, end) {
        (Some(start), Some(Ok(end))) => Select::Lines(start, Some(end)),
        (Some(start), Some(Err(_))) => Select::Lines(start, None),
        (Some(start), None) => Select::Lines(start, Some(start + 1)),
        (None, Some(Ok(end))) => Select::Lines(0, Some(end)),
        (None, _) => Select::Lines(0, None),
    };
    (path, select)
}

fn run(directive: &Directive<'_>, dir: &Path, root: &Path) -> Result<Output, String> {
    let read = |path: &str| -> Result<(String, std::path::PathBuf), String> {
        let target = dir.join(path);
        let canonical = target
            .canonicalize()
            .map_err(|error| format!("cannot read {path}: {error}"))?;
        if !canonical.starts_with(root) {
            return Err(format!("{path} is outside the book: not included"));
        }
        let text = std::fs::read_to_string(&canonical)
            .map_err(|error| format!("cannot read {path}: {error}"))?;
        Ok((text, canonical))
    };
    match directive {
        Directive::Title(title) => Ok(Output::Title(title.to_string())),
        Directive::Include(path, select) => {
            let (text, from) = read(path)?;
            let lines = select_lines(&text, select, false).map_err(|e| format!("{path}: {e}"))?;
            Ok(Output::Text(lines, from))
        }
        Directive::RustdocInclude(path, select) => {
            let (text, from) = read(path)?;
            let lines = select_lines(&text, select, true).map_err(|e| format!("{path}: {e}"))?;
            Ok(Output::Text(lines, from))
        }
        Directive::Playground(path, attrs) => {
            let (mut text, from) = read(path)?;
            if !text.ends_with('\n') {
                text.push('\n');
            }
            let info = if attrs.is_empty() {
                "rust".to_string()
            } else {
                format!("rust,{}", attrs.join(","))
            };
            Ok(Output::Text(format!("```{info}\n{text}```\n"), from))
        }
    }
}

/// The lines `select` names; with `hide_rest` (rustdoc_include) every other line too,
/// behind `# `. Lines naming anchors are never included by an anchor.
fn select_lines(text: &str, select: &Select<'_>, hide_rest: bool) -> Result<String, String> {
    let mut out: Vec<String> = Vec::new();
    match select {
        Select::Lines(start, end) => {
            for (n, line) in text.lines().enumerate() {
                let inside = n >= *start && end.is_none_or(|end| n < end);
                if inside {
                    out.push(line.to_string());
                } else if hide_rest {
                    out.push(format!("# {line}"));
                }
            }
        }
        Select::Anchor(name) => {
            let mut found = false;
            let mut inside = false;
            for line in text.lines() {
                let (opens, closes) = (anchor(line, "ANCHOR:"), anchor(line, "ANCHOR_END:"));
                if inside {
                    if closes == Some(name) {
                        inside = false;
                        // include stops at the first end; rustdoc_include takes every
                        // stretch of the anchor and hides the rest.
                        if !hide_rest {
                            break;
                        }
                    } else if opens.is_none() && closes.is_none() {
                        out.push(line.to_string());
                    }
                } else if opens.is_some() {
                    if opens == Some(name) {
                        (found, inside) = (true, true);
                    }
                } else if hide_rest && closes.is_none() {
                    out.push(format!("# {line}"));
                }
            }
            if !found {
                return Err(format!("no anchor `{name}` (no `ANCHOR: {name}` line)"));
            }
        }
    }
    Ok(out.join("\n"))
}

/// The anchor name after `marker` (`ANCHOR:` or `ANCHOR_END:`) on `line`, if any.
fn anchor<'l>(line: &'l str, marker: &str) -> Option<&'l str> {
    let at = line.find(marker)?;
    let rest = line[at + marker.len()..].trim_start();
    let len = rest
        .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '-'))
        .unwrap_or(rest.len());
    (len > 0).then(|| &rest[..len])
}

/// Leaves out the lines rustdoc hides in Rust code blocks (`# x`, a lone `#`) and writes
/// `##` as `#`, keeping `lines` in step with `text`.
fn hide_rust_lines(out: &mut Expanded) {
    let mut text = String::with_capacity(out.text.len());
    let mut lines = Vec::with_capacity(out.lines.len());
    let mut fence: Option<(char, usize, bool)> = None;
    for (n, piece) in out.text.split_inclusive('\n').enumerate() {
        let line_no = out.lines.get(n).copied().unwrap_or(0);
        let trimmed = piece.trim_start();
        let fence_char = trimmed.chars().next().filter(|c| matches!(c, '`' | '~'));
        let run = fence_char.map_or(0, |c| trimmed.chars().take_while(|&x| x == c).count());
        match (fence, fence_char) {
            (None, Some(c)) if run >= 3 => {
                let info = trimmed[run..].trim();
                let lang = info.split([',', ' ']).next().unwrap_or("");
                fence = Some((c, run, lang == "rust"));
            }
            (Some((c, len, _)), Some(d))
                if c == d && run >= len && trimmed[run..].trim().is_empty() =>
            {
                fence = None;
            }
            (Some((_, _, true)), _) => {
                let code = trimmed.trim_end_matches(['\n', '\r']);
                if code == "#" || code.starts_with("# ") {
                    continue;
                }
                if code.starts_with("##") {
                    let indent = &piece[..piece.len() - trimmed.len()];
                    text.push_str(indent);
                    text.push_str(&trimmed[1..]);
                    lines.push(line_no);
                    continue;
                }
            }
            _ => {}
        }
        text.push_str(piece);
        lines.push(line_no);
    }
    if out.text.is_empty() || out.text.ends_with('\n') {
        // The line after the last newline (empty) still has a number.
        lines.push(out.lines.last().copied().unwrap_or(0));
    }
    out.text = text;
    out.lines = lines;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn book() -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir_all(root.join("src/sub")).unwrap();
        std::fs::create_dir_all(root.join("listings")).unwrap();
        std::fs::write(
            root.join("listings/main.rs"),
            "use std::io;\n\nfn main() {\n    // ANCHOR: body\n    let x = 1;\n    // ANCHOR_END: body\n}\n",
        )
        .unwrap();
        (dir, root)
    }

    fn run_on(root: &Path, body: &str) -> Expanded {
        expand(body, &root.join("src/sub"), root, 1)
    }

    #[test]
    fn ranges_and_anchors_select_lines_as_mdbook_does() {
        let (_dir, root) = book();
        let lines = |arg: &str| {
            run_on(
                &root,
                &format!("{{{{#include ../../listings/main.rs{arg}}}}}"),
            )
            .text
        };
        assert_eq!(lines(":1"), "use std::io;");
        assert_eq!(lines(":1:3"), "use std::io;\n\nfn main() {");
        assert_eq!(lines(":6:"), "    // ANCHOR_END: body\n}");
        assert_eq!(lines("::2"), "use std::io;\n");
        assert_eq!(lines(":body"), "    let x = 1;");
        assert!(lines("").starts_with("use std::io;\n\nfn main() {\n    // ANCHOR: body"));
    }

    #[test]
    fn rustdoc_include_hides_the_rest_and_the_code_block_leaves_it_out() {
        let (_dir, root) = book();
        let out = run_on(
            &root,
            "Intro\n\n```rust\n{{#rustdoc_include ../../listings/main.rs:body}}\n```\n\nAfter [x](y.md)\n",
        );
        assert_eq!(
            out.text,
            "Intro\n\n```rust\n    let x = 1;\n```\n\nAfter [x](y.md)\n"
        );
        assert!(out.problems.is_empty(), "{:?}", out.problems);
        // Every line of the text knows its line in the chapter.
        assert_eq!(out.lines, [1, 2, 3, 4, 5, 6, 7, 8]);
    }

    #[test]
    fn missing_files_and_anchors_are_problems_at_their_line() {
        let (_dir, root) = book();
        let out = run_on(
            &root,
            "a\n{{#include nope.rs}}\n{{#include ../../listings/main.rs:nope}}\n{{#include ../../../../etc/passwd}}\n",
        );
        let lines: Vec<u32> = out.problems.iter().map(|(line, _)| *line).collect();
        assert_eq!(lines, [2, 3, 4], "{:?}", out.problems);
        assert!(
            out.problems[0].1.contains("cannot read nope.rs"),
            "{:?}",
            out.problems
        );
        assert!(
            out.problems[1].1.contains("no anchor `nope`"),
            "{:?}",
            out.problems
        );
        assert!(out.text.contains("{{#include nope.rs}}"), "left as written");
    }

    #[test]
    fn title_escapes_and_unknown_directives() {
        let (_dir, root) = book();
        let out = run_on(
            &root,
            "{{#title A title}}\n# H\n\\{{#include x}} {{#unknown y}}\n",
        );
        assert_eq!(out.title.as_deref(), Some("A title"));
        assert_eq!(out.text, "\n# H\n{{#include x}} {{#unknown y}}\n");
        assert!(out.problems.is_empty());
    }

    #[test]
    fn hidden_lines_only_in_rust_blocks() {
        let mut out = Expanded {
            text: "```rust\n# use a;\n#\n##[attr]\n#[derive(Debug)]\nfn f() {}\n```\n```sh\n# comment\n```\n".into(),
            lines: (1..=11).collect(),
            ..Expanded::default()
        };
        hide_rust_lines(&mut out);
        assert_eq!(
            out.text,
            "```rust\n#[attr]\n#[derive(Debug)]\nfn f() {}\n```\n```sh\n# comment\n```\n"
        );
        assert_eq!(out.lines, [1, 4, 5, 6, 7, 8, 9, 10, 11]);
    }
}
