//! A Zola site as it is: its `config.toml` (the one with `base_url`) gives the title,
//! `base_url`, the taxonomies and `[extra]`; content is in `content/`. `@/path.md` links
//! are resolved by the Markdown stage, shortcodes by [`crate::shortcodes`]. Keys sited
//! cannot use (Tera-only features: `[markdown]` highlighting themes, search index,
//! translations) are a warning naming the key.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;

use crate::context::PageCtx;
use crate::load::layout::SiteConfig;
use crate::report::Diagnostic;
use crate::tree::{Placed, Section};

/// Keys of Zola's config.toml that sited reads or that change nothing it builds.
const READ: &[&str] = &[
    "base_url",
    "title",
    "description",
    "taxonomies",
    "extra",
    "default_language",
    "compile_sass",
    "generate_feeds",
    "generate_feed",
    "build_search_index",
    "markdown",
    "minify_html",
];

/// Reads `config.toml` as Zola's, if it is one (it sets `base_url`).
pub fn read(root: &Path, errors: &mut Vec<Diagnostic>) -> Option<SiteConfig> {
    let text = fs::read_to_string(root.join("config.toml")).ok()?;
    let table: toml::Table = match text.parse() {
        Ok(table) => table,
        Err(error) => {
            if text.contains("base_url") {
                errors.push(Diagnostic::error(
                    "config.toml",
                    format!("cannot read Zola config: {}", error.message().trim()),
                ));
            }
            return None;
        }
    };
    let base_url = table.get("base_url")?.as_str()?.to_string();
    let mut config = SiteConfig {
        base_url,
        ..SiteConfig::default()
    };
    let text_of = |key: &str| {
        table
            .get(key)
            .and_then(toml::Value::as_str)
            .map(str::to_string)
    };
    if let Some(title) = text_of("title") {
        config.title = title;
    }
    config.description = text_of("description");
    if let Some(toml::Value::Table(extra)) = table.get("extra") {
        config.extra = extra.clone();
    }
    for taxonomy in table
        .get("taxonomies")
        .and_then(toml::Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(name) = taxonomy.get("name").and_then(toml::Value::as_str) else {
            continue;
        };
        if !matches!(name, "tags" | "categories") {
            config.taxonomies.push(name.to_string());
        }
        if let Some(size) = taxonomy
            .get("paginate_by")
            .and_then(toml::Value::as_integer)
        {
            config.paginate_by = size.max(0) as usize;
        }
    }
    for key in table.keys().filter(|k| !READ.contains(&k.as_str())) {
        errors.push(Diagnostic::warning(
            "config.toml",
            format!("Zola's `{key}` is not supported by sited and is ignored"),
        ));
    }
    if table
        .get("build_search_index")
        .and_then(toml::Value::as_bool)
        == Some(true)
    {
        errors.push(Diagnostic::warning(
            "config.toml",
            "build_search_index: sited makes no search index",
        ));
    }
    if let Some(languages) = table.get("languages").and_then(toml::Value::as_table)
        && !languages.is_empty()
    {
        errors.push(Diagnostic::warning(
            "config.toml",
            "languages: only the default language is built",
        ));
    }
    Some(config)
}

/// Zola writes a page's tags under `[taxonomies]`: they are sited's `tags`.
pub fn map_front_matter(fm: &mut crate::load::frontmatter::FrontMatter) {
    if !fm.tags.is_empty() {
        return;
    }
    let tags = fm
        .extra
        .get_mut("taxonomies")
        .and_then(serde_json::Value::as_object_mut)
        .and_then(|t| t.remove("tags"));
    if let Some(serde_json::Value::Array(tags)) = tags {
        fm.tags = tags
            .iter()
            .filter_map(serde_json::Value::as_str)
            .map(str::to_string)
            .collect();
    }
}

/// Zola's section front matter, once every page's context is known: `page_template`
/// (the template of the section's pages that name none), `sort_by` (`date`, `weight`,
/// `title`, `none`) and `transparent` (the section's pages are listed in its parent's
/// too).
pub fn arrange_sections(placed: &mut Placed, pages: &mut [Option<Arc<PageCtx>>]) {
    let setting = |pages: &[Option<Arc<PageCtx>>], section: &Section, key: &str| {
        section
            .index
            .and_then(|i| pages[i].as_ref())
            .and_then(|p| p.extra.get(key).cloned())
    };
    for section in placed.sections.values() {
        let Some(Value::String(template)) = setting(pages, section, "page_template") else {
            continue;
        };
        for &i in &section.pages {
            if let Some(page) = pages[i].as_mut()
                && page.template.is_none()
            {
                Arc::make_mut(page).template = Some(template.clone());
            }
        }
    }
    // Deepest first, so a transparent section inside a transparent one reaches the top.
    let mut dirs: Vec<PathBuf> = placed.sections.keys().cloned().collect();
    dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    for dir in &dirs {
        let section = &placed.sections[dir];
        let transparent = setting(pages, section, "transparent") == Some(Value::Bool(true));
        if let (true, Some(parent)) = (transparent, dir.parent()) {
            let moved = section.pages.clone();
            if let Some(parent) = placed.sections.get_mut(parent) {
                parent.pages.extend(moved);
            }
        }
    }
    for section in placed.sections.values_mut() {
        let sort_by = setting(pages, section, "sort_by");
        let page = |i: usize| pages[i].as_deref();
        match sort_by.as_ref().and_then(Value::as_str) {
            Some("title") => section
                .pages
                .sort_by_cached_key(|&i| page(i).map(|p| p.title.to_lowercase())),
            Some("date") => section
                .pages
                .sort_by_cached_key(|&i| std::cmp::Reverse(page(i).and_then(|p| p.date.clone()))),
            Some("weight") => section
                .pages
                .sort_by_cached_key(|&i| page(i).map(|p| p.weight.unwrap_or(i64::MAX))),
            _ => {}
        }
    }
}

/// Tera functions of Zola that sited's templates (minijinja) do not have.
const TERA_ONLY: &[&str] = &[
    "get_page(",
    "get_section(",
    "get_taxonomy(",
    "get_taxonomy_url(",
    "get_url(",
    "get_image_metadata(",
    "resize_image(",
    "load_data(",
    "trans(",
];

/// A warning at each use, in the site's `templates/`, of a Tera function sited does not
/// have: the page using it fails to render with a template error, and this says why.
pub fn tera_warnings(templates_dir: Option<&Path>, root: &Path) -> Vec<Diagnostic> {
    let mut found = Vec::new();
    let mut stack: Vec<PathBuf> = templates_dir.map(Path::to_path_buf).into_iter().collect();
    while let Some(dir) = stack.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        paths.sort();
        for path in paths {
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let Ok(text) = fs::read_to_string(&path) else {
                continue;
            };
            let shown = path.strip_prefix(root).unwrap_or(&path).to_path_buf();
            for (n, line) in text.lines().enumerate() {
                for function in TERA_ONLY.iter().filter(|f| line.contains(**f)) {
                    let name = function.trim_end_matches('(');
                    found.push(
                        Diagnostic::warning(
                            &shown,
                            format!("Zola's Tera function `{name}` is not available in sited's templates"),
                        )
                        .at(Some(n as u32 + 1), None),
                    );
                }
            }
        }
    }
    found
}
