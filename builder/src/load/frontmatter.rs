//! Front matter: TOML between `+++` lines, YAML between `---` lines, or a JSON object
//! (`{` … `}`, as Hugo reads it), at the very top of a Markdown file. Known keys are typed; everything else lands in `extra` for templates.

use serde::Serialize;
use serde_json::{Map, Value};

/// A problem in the front matter, positioned in the whole file (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrontMatterError {
    pub line: u32,
    pub column: Option<u32>,
    pub message: String,
}

/// The typed front matter of a page or section.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FrontMatter {
    pub title: Option<String>,
    /// As written (`2026-03-14` or a full datetime); ISO dates sort as strings.
    pub date: Option<String>,
    pub draft: bool,
    pub description: Option<String>,
    pub weight: Option<i64>,
    pub tags: Vec<String>,
    pub template: Option<String>,
    pub slug: Option<String>,
    /// What listings and feeds show of the page, instead of its opening.
    pub summary: Option<String>,
    /// Entries per listing page, in a section's `_index.md` (0: one page).
    pub paginate_by: Option<usize>,
    /// Unknown top-level keys and the contents of an `extra` table.
    pub extra: Map<String, Value>,
}

/// A Markdown file split into its front matter and body.
#[derive(Debug)]
pub struct Split<'a> {
    pub front_matter: FrontMatter,
    pub body: &'a str,
    /// Lines before the body starts, so body positions can be mapped back to the file.
    pub body_line: u32,
}

enum Format {
    Toml,
    Yaml,
}

/// Splits `source` into front matter and body. A file without front matter is all body.
pub fn split(source: &str) -> Result<Split<'_>, FrontMatterError> {
    let source = source.strip_prefix('\u{feff}').unwrap_or(source);
    let (format, fence) = match first_line(source) {
        "+++" => (Format::Toml, "+++"),
        "---" => (Format::Yaml, "---"),
        // `{` alone or `{"key"…`: not `{{#include …}}` or a `{{< shortcode >}}`.
        line if line == "{" || line.starts_with("{\"") => return split_json(source),
        _ => {
            return Ok(Split {
                front_matter: FrontMatter::default(),
                body: source,
                body_line: 0,
            });
        }
    };
    let after_open = source.find('\n').map_or(source.len(), |i| i + 1);
    let mut offset = after_open;
    let mut closing = None;
    for line in source[after_open..].split_inclusive('\n') {
        if line.trim_end() == fence {
            closing = Some((offset, offset + line.len()));
            break;
        }
        offset += line.len();
    }
    let Some((fm_end, body_start)) = closing else {
        return Err(FrontMatterError {
            line: 1,
            column: Some(1),
            message: format!("front matter opened with `{fence}` is never closed"),
        });
    };
    let text = &source[after_open..fm_end];
    check_bounds(text)?;
    let value = match format {
        Format::Toml => parse_toml(text)?,
        Format::Yaml => parse_yaml(text)?,
    };
    let body_line = source[..body_start].matches('\n').count() as u32;
    let front_matter = typed(value).map_err(|message| FrontMatterError {
        line: 1,
        column: None,
        message,
    })?;
    Ok(Split {
        front_matter,
        body: &source[body_start..],
        body_line,
    })
}

/// A file opening with a JSON object: the object is the front matter, the body starts on
/// the line after it.
fn split_json(source: &str) -> Result<Split<'_>, FrontMatterError> {
    let mut values = serde_json::Deserializer::from_str(source).into_iter::<Value>();
    let map = match values.next() {
        Some(Ok(Value::Object(map))) => map,
        Some(Ok(_)) => unreachable!("a text opening with `{{` is an object or an error"),
        Some(Err(error)) => {
            return Err(FrontMatterError {
                line: error.line() as u32,
                column: Some(error.column() as u32),
                message: format!("invalid JSON front matter: {}", json_message(&error)),
            });
        }
        None => unreachable!("a text opening with `{{` holds a value"),
    };
    let end = values.byte_offset();
    // The rest of the closing line goes with the front matter.
    let body_start = source[end..]
        .find('\n')
        .map_or(source.len(), |i| end + i + 1);
    let front_matter = typed(map).map_err(|message| FrontMatterError {
        line: 1,
        column: None,
        message,
    })?;
    Ok(Split {
        front_matter,
        body: &source[body_start..],
        body_line: source[..body_start].matches('\n').count() as u32,
    })
}

/// serde_json appends " at line X column Y" to its message; the position is reported
/// apart.
fn json_message(error: &serde_json::Error) -> String {
    let text = error.to_string();
    match text.find(" at line ") {
        Some(cut) => text[..cut].to_string(),
        None => text,
    }
}

/// Front matter holds a page's settings, not its text: above this it is refused.
pub const MAX_FRONT_MATTER_BYTES: usize = 1 << 20;

/// Brackets (`[`, `{`) nested deeper than this are refused before parsing. A YAML
/// parser takes time quadratic in the nesting of flow collections (100,000 levels took
/// it 20 s) before its own recursion limit is reached.
pub const MAX_FRONT_MATTER_DEPTH: usize = 64;

/// Refuses front matter too big or too deeply nested to parse in reasonable time and
/// memory, pointing at where it goes too far.
fn check_bounds(text: &str) -> Result<(), FrontMatterError> {
    if text.len() > MAX_FRONT_MATTER_BYTES {
        return Err(FrontMatterError {
            line: FIRST_LINE,
            column: None,
            message: format!(
                "front matter is {} KiB, more than the {} KiB a page's settings may take; \
                 move long text into the page's body",
                text.len() / 1024,
                MAX_FRONT_MATTER_BYTES / 1024
            ),
        });
    }
    let (mut depth, mut quote, mut escaped, mut comment) = (0usize, None, false, false);
    let mut previous = '\n';
    for (offset, c) in text.char_indices() {
        match (quote, c) {
            _ if comment => comment = c != '\n',
            (Some('"'), _) if escaped => escaped = false,
            (Some('"'), '\\') => escaped = true,
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '#') if previous.is_whitespace() => comment = true,
            (None, '[' | '{') => {
                depth += 1;
                if depth > MAX_FRONT_MATTER_DEPTH {
                    let (line, column) = line_col(text, offset);
                    return Err(FrontMatterError {
                        line: FIRST_LINE + line,
                        column: Some(column + 1),
                        message: format!(
                            "front matter nests deeper than {MAX_FRONT_MATTER_DEPTH} levels"
                        ),
                    });
                }
            }
            (None, ']' | '}') => depth = depth.saturating_sub(1),
            _ => {}
        }
        previous = c;
    }
    Ok(())
}

fn first_line(source: &str) -> &str {
    source.lines().next().unwrap_or("").trim_end()
}

/// Front matter starts on line 2 of the file (after the fence).
const FIRST_LINE: u32 = 2;

fn parse_toml(text: &str) -> Result<Map<String, Value>, FrontMatterError> {
    match text.parse::<toml::Table>() {
        Ok(table) => Ok(toml_table_to_json(table)),
        Err(error) => {
            let (line, column) = match error.span() {
                Some(span) => line_col(text, span.start),
                None => (0, 0),
            };
            Err(FrontMatterError {
                line: FIRST_LINE + line,
                column: Some(column + 1),
                message: format!("invalid TOML front matter: {}", error.message().trim()),
            })
        }
    }
}

fn parse_yaml(text: &str) -> Result<Map<String, Value>, FrontMatterError> {
    if text.trim().is_empty() {
        return Ok(Map::new());
    }
    let value: serde_norway::Value =
        serde_norway::from_str(text).map_err(|error| match error.location() {
            Some(location) => FrontMatterError {
                line: FIRST_LINE + location.line().saturating_sub(1) as u32,
                column: Some(location.column() as u32),
                message: format!("invalid YAML front matter: {}", yaml_message(&error)),
            },
            None => FrontMatterError {
                line: FIRST_LINE,
                column: None,
                message: format!("invalid YAML front matter: {error}"),
            },
        })?;
    match serde_json::to_value(value) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(Value::Null) => Ok(Map::new()),
        Ok(other) => Err(FrontMatterError {
            line: FIRST_LINE,
            column: Some(1),
            message: format!("YAML front matter must be a mapping of keys, found {other}"),
        }),
        Err(error) => Err(FrontMatterError {
            line: FIRST_LINE,
            column: None,
            message: format!("YAML front matter cannot be used: {error}"),
        }),
    }
}

/// serde_norway appends " at line X column Y" to its message; we report the position
/// ourselves, relative to the whole file.
fn yaml_message(error: &serde_norway::Error) -> String {
    let text = error.to_string();
    match text.find(" at line ") {
        Some(cut) => text[..cut].to_string(),
        None => text,
    }
}

/// 0-based line and column of a byte offset.
fn line_col(text: &str, offset: usize) -> (u32, u32) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() as u32;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() as u32;
    (line, column)
}

fn toml_table_to_json(table: toml::Table) -> Map<String, Value> {
    table
        .into_iter()
        .map(|(key, value)| (key, toml_to_json(value)))
        .collect()
}

fn toml_to_json(value: toml::Value) -> Value {
    match value {
        toml::Value::String(s) => Value::String(s),
        toml::Value::Integer(i) => Value::from(i),
        toml::Value::Float(f) => Value::from(f),
        toml::Value::Boolean(b) => Value::Bool(b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(items) => Value::Array(items.into_iter().map(toml_to_json).collect()),
        toml::Value::Table(table) => Value::Object(toml_table_to_json(table)),
    }
}

fn typed(mut map: Map<String, Value>) -> Result<FrontMatter, String> {
    let mut fm = FrontMatter {
        title: take_string(&mut map, "title")?,
        date: take_date(&mut map)?,
        draft: take_bool(&mut map, "draft")?.unwrap_or(false),
        description: take_string(&mut map, "description")?,
        weight: take_int(&mut map, "weight")?,
        tags: take_tags(&mut map)?,
        template: take_string(&mut map, "template")?,
        slug: take_string(&mut map, "slug")?,
        summary: take_string(&mut map, "summary")?,
        paginate_by: take_count(&mut map, "paginate_by")?,
        extra: Map::new(),
    };
    if let Some(extra) = map.remove("extra") {
        match extra {
            Value::Object(extra) => fm.extra.extend(extra),
            other => return Err(format!("`extra` must be a table, found {}", kind(&other))),
        }
    }
    fm.extra.extend(map);
    Ok(fm)
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a table",
    }
}

fn take_string(map: &mut Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match map.remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(other) => Err(format!("`{key}` must be a string, found {}", kind(&other))),
    }
}

fn take_bool(map: &mut Map<String, Value>, key: &str) -> Result<Option<bool>, String> {
    match map.remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(b)),
        Some(other) => Err(format!(
            "`{key}` must be true or false, found {}",
            kind(&other)
        )),
    }
}

fn take_int(map: &mut Map<String, Value>, key: &str) -> Result<Option<i64>, String> {
    match map.remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) if n.is_i64() => Ok(n.as_i64()),
        Some(other) => Err(format!(
            "`{key}` must be a whole number, found {}",
            kind(&other)
        )),
    }
}

fn take_count(map: &mut Map<String, Value>, key: &str) -> Result<Option<usize>, String> {
    match map.remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) if n.as_u64().is_some() => Ok(n.as_u64().map(|n| n as usize)),
        Some(other) => Err(format!(
            "`{key}` must be a whole number of 0 or more, found {}",
            kind(&other)
        )),
    }
}

fn take_date(map: &mut Map<String, Value>) -> Result<Option<String>, String> {
    let Some(date) = take_string(map, "date")? else {
        return Ok(None);
    };
    let bytes = date.as_bytes();
    let looks_like_date = bytes.len() >= 10
        && bytes[..10].iter().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                *b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    if !looks_like_date {
        return Err(format!(
            "`date` must start with YYYY-MM-DD, found \"{date}\""
        ));
    }
    Ok(Some(date))
}

fn take_tags(map: &mut Map<String, Value>) -> Result<Vec<String>, String> {
    match map.remove("tags") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .into_iter()
            .map(|item| match item {
                Value::String(s) => Ok(s),
                other => Err(format!("`tags` must be strings, found {}", kind(&other))),
            })
            .collect(),
        Some(Value::String(s)) => Ok(vec![s]),
        Some(other) => Err(format!(
            "`tags` must be a list of strings, found {}",
            kind(&other)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_front_matter_is_all_body() {
        let split = split("# Title\n\nText\n").unwrap();
        assert_eq!(split.front_matter, FrontMatter::default());
        assert_eq!(split.body, "# Title\n\nText\n");
        assert_eq!(split.body_line, 0);
    }

    #[test]
    fn toml_front_matter_is_typed() {
        let source = "+++\ntitle = \"Hello\"\ndate = 2026-03-14\ndraft = true\nweight = 3\n\
                      tags = [\"a\", \"b\"]\nmood = \"sunny\"\n[extra]\nhero = \"x.png\"\n+++\nBody\n";
        let split = split(source).unwrap();
        let fm = split.front_matter;
        assert_eq!(fm.title.as_deref(), Some("Hello"));
        assert_eq!(fm.date.as_deref(), Some("2026-03-14"));
        assert!(fm.draft);
        assert_eq!(fm.weight, Some(3));
        assert_eq!(fm.tags, ["a", "b"]);
        assert_eq!(fm.extra["mood"], "sunny");
        assert_eq!(fm.extra["hero"], "x.png");
        assert_eq!(split.body, "Body\n");
        assert_eq!(split.body_line, 10);
    }

    #[test]
    fn yaml_front_matter_is_typed() {
        let source = "---\ntitle: Hi there\ndate: 2025-01-02\ntags: [x]\nslug: hi\n---\nBody";
        let split = split(source).unwrap();
        assert_eq!(split.front_matter.title.as_deref(), Some("Hi there"));
        assert_eq!(split.front_matter.date.as_deref(), Some("2025-01-02"));
        assert_eq!(split.front_matter.slug.as_deref(), Some("hi"));
        assert_eq!(split.front_matter.tags, ["x"]);
        assert_eq!(split.body, "Body");
    }

    #[test]
    fn json_front_matter_is_typed() {
        let source = "{\n  \"title\": \"Hi\",\n  \"tags\": [\"a\"],\n  \"mood\": 3\n}\nBody\n";
        let split = split(source).unwrap();
        assert_eq!(split.front_matter.title.as_deref(), Some("Hi"));
        assert_eq!(split.front_matter.tags, ["a"]);
        let include = "{{#include listing.rs}}\n";
        assert_eq!(
            super::split(include).unwrap().body,
            include,
            "not front matter"
        );
        assert_eq!(split.front_matter.extra["mood"], 3);
        assert_eq!(split.body, "Body\n");
        assert_eq!(split.body_line, 5);
        let error = split_json("{\n  \"title\": \"Hi\"\n  \"x\": 1\n}\n").unwrap_err();
        assert_eq!(error.line, 3, "{error:?}");
        assert!(error.message.contains("JSON"), "{error:?}");
    }

    #[test]
    fn toml_error_points_at_file_line_and_column() {
        let source = "+++\ntitle = \"ok\"\ndate = = 3\n+++\n";
        let error = split(source).unwrap_err();
        assert_eq!(error.line, 3, "{error:?}");
        assert!(error.column.unwrap() > 1, "{error:?}");
        assert!(error.message.contains("TOML"), "{error:?}");
    }

    #[test]
    fn yaml_error_points_at_file_line() {
        let source = "---\ntitle: ok\ntags: [a, b\n---\n";
        let error = split(source).unwrap_err();
        assert!(error.line >= 3, "{error:?}");
        assert!(error.message.contains("YAML"), "{error:?}");
    }

    /// S25: a front-matter bomb fails fast with a clear error at the place it goes too
    /// far; the YAML parser would take seconds on it.
    #[test]
    fn s25_front_matter_too_deep_or_too_big_is_refused_before_parsing() {
        let deep = 100_000;
        // Each with the line and column of the 65th opening bracket.
        for (source, at) in [
            (
                format!(
                    "---\na: {}{}\n---\nbody",
                    "[".repeat(deep),
                    "]".repeat(deep)
                ),
                (2, 4 + 64),
            ),
            (
                format!(
                    "---\nb: 1\na: {}1{}\n---\n",
                    "{c: ".repeat(deep),
                    "}".repeat(deep)
                ),
                (3, 4 + 64 * 4),
            ),
            (
                format!("+++\na = {}{}\n+++\n", "[".repeat(deep), "]".repeat(deep)),
                (2, 5 + 64),
            ),
        ] {
            let error = split(&source).unwrap_err();
            assert_eq!(error.message, "front matter nests deeper than 64 levels");
            assert_eq!(
                (error.line, error.column),
                (at.0, Some(at.1)),
                "{source:.12}"
            );
        }
        let big = format!("---\ntext: \"{}\"\n---\n", "x".repeat(2 << 20));
        let error = split(&big).unwrap_err();
        assert!(
            error
                .message
                .starts_with("front matter is 2048 KiB, more than the 1024 KiB")
        );

        // Brackets in strings and comments do not count; real nesting within bounds parses.
        let fine = format!(
            "---\ntitle: \"{}\"\nnote: '{}' # {}\nlist: [[1, 2], {{a: [3]}}]\n---\n",
            "[".repeat(100),
            "{".repeat(100),
            "[".repeat(100)
        );
        let split = split(&fine).unwrap();
        assert_eq!(
            split.front_matter.title.as_deref(),
            Some("[".repeat(100).as_str())
        );
    }

    #[test]
    fn unclosed_front_matter_is_an_error() {
        let error = split("+++\ntitle = \"x\"\n").unwrap_err();
        assert_eq!(error.line, 1);
        assert!(error.message.contains("never closed"));
    }

    #[test]
    fn wrong_types_are_explained() {
        let error = split("+++\ndraft = \"yes\"\n+++\n").unwrap_err();
        assert!(
            error.message.contains("`draft` must be true or false"),
            "{error:?}"
        );
        let error = split("---\ndate: soon\n---\n").unwrap_err();
        assert!(error.message.contains("YYYY-MM-DD"), "{error:?}");
    }
}
