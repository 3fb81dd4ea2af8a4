//! A Zola site as it is: its `config.toml` (the one with `base_url`) gives the title,
//! `base_url`, the taxonomies and `[extra]`; content is in `content/`. `@/path.md` links
//! are resolved by the Markdown stage, shortcodes by [`crate::shortcodes`]. Keys sited
//! cannot use (Tera-only features: `[markdown]` highlighting themes, search index,
//! translations) are a warning naming the key.

use std::fs;
use std::path::Path;

use crate::load::layout::SiteConfig;
use crate::report::Diagnostic;

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
