//! A Hugo site's configuration, read as Hugo reads it: `hugo.toml|yaml|json` or
//! `config.toml|yaml|json` at the root, then `config/_default/` (its `hugo.*`/`config.*`
//! is the root table, any other `NAME.*` the table `NAME`, as `params.toml` is `params`).
//! Hugo's keys are case-insensitive; they are looked up lowercased.
//!
//! What sited uses: `title`, `baseURL`, `params` (as `site.extra`), where the content is
//! (`contentDir`, the default language's `contentDir`, a `[[module.mounts]]` whose target
//! is `content`), `taxonomies`, the pagination size. What it cannot use (menus, module
//! imports, themes, more than one language) is a warning naming the file and the key.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::load::layout::SiteConfig;
use crate::report::Diagnostic;

/// The root config file names Hugo tries, in its order.
const ROOT_NAMES: &[&str] = &["hugo", "config"];
const EXTENSIONS: &[&str] = &["toml", "yaml", "yml", "json"];

/// What sited takes from a Hugo site's configuration.
#[derive(Debug)]
pub struct HugoSite {
    pub config: SiteConfig,
    pub content_dir: PathBuf,
}

/// Whether `root` is a Hugo site: a Hugo config file at the root or in
/// `config/_default/`. A root `config.toml` is Hugo's unless it sets Zola's `base_url`.
pub fn is_hugo(root: &Path) -> bool {
    config_files(root).next().is_some()
}

fn config_files(root: &Path) -> impl Iterator<Item = PathBuf> + '_ {
    let at_root = ROOT_NAMES.iter().flat_map(move |name| {
        EXTENSIONS
            .iter()
            .map(move |ext| root.join(format!("{name}.{ext}")))
    });
    at_root
        .filter(|path| path.is_file() && is_hugo_config(path))
        .chain(
            root.join("config/_default")
                .is_dir()
                .then(|| root.join("config/_default")),
        )
}

/// Keys only a Hugo config has: a root `config.yaml` of some other tool (or Zola's
/// `config.toml`, which has `base_url`) does not make a folder a Hugo site.
const HUGO_KEYS: &[&str] = &[
    "baseurl",
    "languagecode",
    "defaultcontentlanguage",
    "contentdir",
    "theme",
    "module",
    "params",
    "menu",
    "menus",
    "permalinks",
    "markup",
    "taxonomies",
];

/// Whether `path` is a Hugo config file: `hugo.*` always, `config.*` when it holds a key
/// only Hugo gives meaning to.
fn is_hugo_config(path: &Path) -> bool {
    if path.file_stem().is_some_and(|s| s == "hugo") {
        return true;
    }
    let mut ignored = Vec::new();
    let Some(root) = path.parent() else {
        return false;
    };
    match read_file(root, path, &mut ignored) {
        Some(Value::Object(table)) => {
            !table.contains_key("base_url") && HUGO_KEYS.iter().any(|k| table.contains_key(*k))
        }
        _ => false,
    }
}

/// Reads the Hugo configuration of `root`, if it is a Hugo site.
pub fn read(root: &Path, errors: &mut Vec<Diagnostic>) -> Option<HugoSite> {
    let mut table = Map::new();
    let mut found = false;
    for path in config_files(root).collect::<Vec<_>>() {
        found = true;
        if path.is_dir() {
            read_config_dir(root, &path, &mut table, errors);
        } else if let Some(Value::Object(map)) = read_file(root, &path, errors) {
            merge(&mut table, map);
            // Hugo reads the first root file it finds, not all of them.
            if !root.join("config/_default").is_dir() {
                break;
            }
        }
    }
    found.then(|| interpret(root, table, errors))
}

fn read_config_dir(
    root: &Path,
    dir: &Path,
    table: &mut Map<String, Value>,
    errors: &mut Vec<Diagnostic>,
) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    paths.sort();
    for path in paths {
        let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        let known = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| EXTENSIONS.contains(&e));
        if !known {
            continue;
        }
        let Some(value) = read_file(root, &path, errors) else {
            continue;
        };
        match (ROOT_NAMES.contains(&stem), value) {
            (true, Value::Object(map)) => merge(table, map),
            (false, value) => {
                let mut wrapped = Map::new();
                wrapped.insert(stem.to_ascii_lowercase(), value);
                merge(table, wrapped);
            }
            (true, _) => {}
        }
    }
}

/// A config file as JSON with lowercased keys, or a diagnostic.
fn read_file(root: &Path, path: &Path, errors: &mut Vec<Diagnostic>) -> Option<Value> {
    let shown = path.strip_prefix(root).unwrap_or(path);
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) => {
            errors.push(Diagnostic::error(shown, format!("cannot read: {error}")));
            return None;
        }
    };
    let parsed: Result<Value, String> = match path.extension().and_then(|e| e.to_str()) {
        Some("toml") => toml::from_str::<toml::Value>(&text)
            .map_err(|e| e.message().trim().to_string())
            .and_then(|v| serde_json::to_value(v).map_err(|e| e.to_string())),
        Some("json") => serde_json::from_str(&text).map_err(|e| e.to_string()),
        _ => serde_norway::from_str::<serde_norway::Value>(&text)
            .map_err(|e| e.to_string())
            .and_then(|v| serde_json::to_value(v).map_err(|e| e.to_string())),
    };
    match parsed {
        Ok(value) => Some(lowercase_keys(value)),
        Err(message) => {
            errors.push(Diagnostic::error(
                shown,
                format!("cannot read Hugo config: {message}"),
            ));
            None
        }
    }
}

/// Hugo's config keys are case-insensitive, but `params` keep their case in templates:
/// only the keys of the config itself are lowercased.
fn lowercase_keys(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    let k = k.to_ascii_lowercase();
                    let v = if k == "params" { v } else { lowercase_keys(v) };
                    (k, v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(lowercase_keys).collect()),
        other => other,
    }
}

/// Deep merge: tables merge, anything else is replaced.
fn merge(into: &mut Map<String, Value>, from: Map<String, Value>) {
    for (key, value) in from {
        match (into.get_mut(&key), value) {
            (Some(Value::Object(old)), Value::Object(new)) => merge(old, new),
            (_, value) => {
                into.insert(key, value);
            }
        }
    }
}

fn interpret(root: &Path, table: Map<String, Value>, errors: &mut Vec<Diagnostic>) -> HugoSite {
    let text = |key: &str| table.get(key).and_then(Value::as_str).map(str::to_string);
    let mut config = SiteConfig::default();
    if let Some(title) = text("title") {
        config.title = title;
    }
    if let Some(base_url) = text("baseurl") {
        config.base_url = base_url;
    }
    if let Some(Value::Object(params)) = table.get("params") {
        config.description = params
            .get("description")
            .and_then(Value::as_str)
            .map(str::to_string);
        if let Ok(toml::Value::Table(extra)) = toml::Value::try_from(params) {
            config.extra = extra;
        }
    }
    if let Some(Value::Object(taxonomies)) = table.get("taxonomies") {
        // Hugo maps singular → plural; the plural names the front-matter key and URL.
        config.taxonomies = taxonomies
            .values()
            .filter_map(Value::as_str)
            .filter(|plural| !matches!(*plural, "tags" | "categories"))
            .map(str::to_string)
            .collect();
    }
    let pager = table
        .get("pagination")
        .and_then(|p| p.get("pagersize"))
        .or_else(|| table.get("paginate"))
        .and_then(Value::as_u64);
    if let Some(size) = pager {
        config.paginate_by = size as usize;
    }
    let content_dir = content_dir(root, &table, errors);
    warn_unsupported(root, &table, errors);
    HugoSite {
        config,
        content_dir,
    }
}

/// Where the content is: a module mount targeting `content`, else `contentDir` (the
/// site's, else the default language's), else `content/`.
fn content_dir(root: &Path, table: &Map<String, Value>, errors: &mut Vec<Diagnostic>) -> PathBuf {
    let mounts = table
        .get("module")
        .and_then(|m| m.get("mounts"))
        .and_then(Value::as_array);
    let content_mounts: Vec<&str> = mounts
        .into_iter()
        .flatten()
        .filter(|m| m.get("target").and_then(Value::as_str) == Some("content"))
        .filter_map(|m| m.get("source").and_then(Value::as_str))
        .collect();
    if content_mounts.len() > 1 {
        errors.push(Diagnostic::warning(
            config_name(root),
            format!(
                "module.mounts: {} folders are mounted as content; sited reads only the first, {}",
                content_mounts.len(),
                content_mounts[0]
            ),
        ));
    }
    let language_dir = || {
        let default = table
            .get("defaultcontentlanguage")
            .and_then(Value::as_str)
            .unwrap_or("en");
        table
            .get("languages")
            .and_then(|l| l.get(default))
            .and_then(|l| l.get("contentdir"))
            .and_then(Value::as_str)
    };
    let chosen = content_mounts
        .first()
        .copied()
        .or_else(|| table.get("contentdir").and_then(Value::as_str))
        .or_else(language_dir)
        .unwrap_or("content");
    let dir = root.join(chosen);
    if dir.is_dir() {
        dir
    } else {
        errors.push(Diagnostic::warning(
            config_name(root),
            format!("the content folder {chosen} does not exist; the site root is read instead"),
        ));
        root.to_path_buf()
    }
}

/// The config file to name in a message.
pub(crate) fn config_name(root: &Path) -> PathBuf {
    let first = config_files(root).next().map(|path| {
        if !path.is_dir() {
            return path;
        }
        // config/_default/: its hugo.* or config.*, where the main keys live.
        ROOT_NAMES
            .iter()
            .flat_map(|name| EXTENSIONS.iter().map(move |ext| format!("{name}.{ext}")))
            .map(|file| path.join(file))
            .find(|file| file.is_file())
            .unwrap_or(path)
    });
    first
        .map(|p| p.strip_prefix(root).unwrap_or(&p).to_path_buf())
        .unwrap_or_else(|| PathBuf::from("hugo.toml"))
}

/// Hugo features sited does not have: said once per build, naming the file and key.
fn warn_unsupported(root: &Path, table: &Map<String, Value>, errors: &mut Vec<Diagnostic>) {
    if root.join("layouts").is_dir() {
        errors.push(Diagnostic::warning(
            "layouts",
            "Hugo's Go templates are not run: pages use sited's theme (and templates/)",
        ));
    }
    let file = config_name(root);
    if table.contains_key("menus") || table.contains_key("menu") {
        // Named where they are written: config/_default/menus.toml, or the root file.
        let own_file = ["menus", "menu"].iter().find_map(|name| {
            EXTENSIONS.iter().find_map(|ext| {
                let rel = PathBuf::from(format!("config/_default/{name}.{ext}"));
                root.join(&rel).is_file().then_some(rel)
            })
        });
        errors.push(Diagnostic::warning(
            own_file.unwrap_or_else(|| file.clone()),
            "menus are not read: sited's theme lists the sections in its navigation",
        ));
    }
    let mut warn = |what: &str| errors.push(Diagnostic::warning(&file, what));
    if table.contains_key("theme") {
        warn(
            "`theme`: Hugo themes are Go templates, which sited does not run; sited's own theme is used",
        );
    }
    if table.get("module").and_then(|m| m.get("imports")).is_some() {
        warn(
            "module.imports: Hugo modules are not fetched; only module.mounts of content are read",
        );
    }
    if table
        .get("languages")
        .and_then(Value::as_object)
        .is_some_and(|l| l.len() > 1)
    {
        warn("languages: only the default language's content is built");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::layout::{Flavor, Layout};

    /// The layout of a site made of `files`, with the folder holding it.
    fn layout(files: &[(&str, &str)]) -> (Layout, Vec<Diagnostic>, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in files {
            let path = dir.path().join(path);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, text).unwrap();
        }
        let mut errors = Vec::new();
        let layout = Layout::discover(dir.path(), &[], &mut errors).unwrap();
        (layout, errors, dir)
    }

    #[test]
    fn hugo_json_with_content_dir_and_layouts_warned() {
        let (layout, errors, _dir) = layout(&[
            (
                "hugo.json",
                r#"{"Title": "J", "BaseURL": "https://x.org/", "contentDir": "src", "Params": {"Key": 1}}"#,
            ),
            ("src/a.md", "# A"),
            ("layouts/index.html", "{{ .Title }}"),
        ]);
        assert_eq!(layout.flavor, Flavor::Hugo);
        assert_eq!(layout.config.title, "J");
        assert_eq!(layout.config.base_url, "https://x.org/");
        assert!(layout.content_dir.ends_with("src"));
        assert_eq!(
            layout.config.extra["Key"].as_integer(),
            Some(1),
            "params keep their case"
        );
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].file, PathBuf::from("layouts"));
    }

    #[test]
    fn a_config_toml_with_base_url_is_zola_s_and_without_it_hugo_s() {
        let (other, _, _dir0) = layout(&[("config.yaml", "editor: vim\ntitle: mine\n")]);
        assert_eq!(other.flavor, Flavor::Sited, "another tool's config.yaml");
        let (zola, _, _dir) =
            layout(&[("config.toml", "base_url = \"https://z/\"\ntitle = \"Z\"\n")]);
        assert_eq!(
            (zola.flavor, zola.config.title.as_str()),
            (Flavor::Zola, "Z")
        );
        let (hugo, _, _dir2) =
            layout(&[("config.toml", "baseURL = \"https://h/\"\ntitle = \"H\"\n")]);
        assert_eq!(
            (hugo.flavor, hugo.config.title.as_str()),
            (Flavor::Hugo, "H")
        );
        let (sited, _, _dir3) = layout(&[
            ("site.toml", "title = \"S\"\n"),
            ("config.toml", "title = \"H\"\n"),
        ]);
        assert_eq!(sited.flavor, Flavor::Sited, "site.toml wins");
    }

    #[test]
    fn a_missing_content_mount_is_a_warning_and_the_root_is_read() {
        let (layout, errors, _dir) = layout(&[(
            "config/_default/hugo.toml",
            "[[module.mounts]]\nsource = \"nowhere\"\ntarget = \"content\"\n",
        )]);
        assert_eq!(layout.content_dir, layout.root);
        assert!(
            errors.iter().any(|e| e.message.contains("nowhere")),
            "{errors:?}"
        );
    }
}
