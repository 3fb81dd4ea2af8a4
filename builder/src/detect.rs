//! Which program a site was written for, and what its `site.toml` says about building it
//! with another one. Pure inspection of the site folder: the daemon decides from this
//! (and from what is installed) whether sited's own builder or that program builds it.
//!
//! sited's builder takes Hugo, Zola and mdBook content trees, but not their templates:
//! a Hugo site with its own `layouts/` or a theme, or a Zola site with its own Tera
//! templates (beyond `templates/shortcodes/`, which sited renders), is only built right by
//! its own generator.

use std::fs;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::report::Diagnostic;

/// The generators sited knows how to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Generator {
    Hugo,
    Zola,
    Mdbook,
}

impl Generator {
    pub const ALL: [Generator; 3] = [Generator::Hugo, Generator::Zola, Generator::Mdbook];

    /// The program's name, as on `PATH` and as `--with` takes it.
    pub fn program(self) -> &'static str {
        match self {
            Generator::Hugo => "hugo",
            Generator::Zola => "zola",
            Generator::Mdbook => "mdbook",
        }
    }

    pub fn from_name(name: &str) -> Option<Generator> {
        Generator::ALL.into_iter().find(|g| g.program() == name)
    }
}

/// A site recognised as written for another generator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detected {
    pub generator: Generator,
    /// What of the site only that generator can run ("layouts/", "theme \"ananke\"",
    /// "templates/page.html"); `None` when sited's builder takes all of it.
    pub own_templates: Option<String>,
}

/// What the site at `root` was written for; `None` for a plain folder or a sited site.
/// A `site.toml` makes it sited's, whatever else is there.
pub fn detect(root: &Path) -> Option<Detected> {
    if root.join("site.toml").is_file() {
        return None;
    }
    if root.join("book.toml").is_file() {
        // sited's builder reads SUMMARY.md, book.toml and the book's theme/ itself.
        return Some(Detected {
            generator: Generator::Mdbook,
            own_templates: None,
        });
    }
    if let Some(config) = hugo_config(root) {
        let theme = config_has_theme(&config);
        let own_templates = if has_file(&root.join("layouts")) {
            Some("layouts/".to_string())
        } else if has_file(&root.join("themes")) || theme {
            Some("a theme".to_string())
        } else {
            None
        };
        return Some(Detected {
            generator: Generator::Hugo,
            own_templates,
        });
    }
    let zola = ["zola.toml", "config.toml"]
        .iter()
        .map(|name| root.join(name))
        .find(|path| fs::read_to_string(path).is_ok_and(|text| is_zola_config(&text)))?;
    let text = fs::read_to_string(zola).unwrap_or_default();
    let own_templates = if let Some(name) = zola_base_template(&root.join("templates")) {
        Some(format!("templates/{name}"))
    } else if has_file(&root.join("themes")) || config_has_theme(&text) {
        Some("a theme".to_string())
    } else {
        None
    };
    Some(Detected {
        generator: Generator::Zola,
        own_templates,
    })
}

/// The first of the templates a Zola site's pages are made from that `templates/` holds.
/// Shortcodes and page templates extending sited's theme (`{% extends "page.html" %}`)
/// are sited's to render; a site's own `index.html`, `base.html`, `page.html`,
/// `section.html` or taxonomy templates are Tera sited does not run.
fn zola_base_template(dir: &Path) -> Option<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| {
            matches!(
                name.as_str(),
                "index.html" | "base.html" | "page.html" | "section.html"
            ) || name.starts_with("taxonomy_")
        })
        .collect();
    names.sort();
    names.into_iter().next()
}

/// The text of a Hugo configuration at `root`, if there is one.
fn hugo_config(root: &Path) -> Option<String> {
    for name in ["hugo.toml", "hugo.yaml", "hugo.yml", "hugo.json"] {
        if let Ok(text) = fs::read_to_string(root.join(name)) {
            return Some(text);
        }
        if let Ok(text) = fs::read_to_string(root.join("config/_default").join(name)) {
            return Some(text);
        }
    }
    // Before 0.110 Hugo read config.*; Zola reads config.toml too, with `base_url`.
    for name in ["config.toml", "config.yaml", "config.yml", "config.json"] {
        if let Ok(text) = fs::read_to_string(root.join(name))
            && !is_zola_config(&text)
        {
            return Some(text);
        }
    }
    None
}

fn is_zola_config(text: &str) -> bool {
    text.lines()
        .any(|line| line.trim_start().starts_with("base_url"))
}

/// A top-level `theme` key, in TOML, YAML or JSON.
fn config_has_theme(text: &str) -> bool {
    text.lines().any(|line| {
        let line = line.trim_start().trim_start_matches('"');
        line.strip_prefix("theme").is_some_and(|rest| {
            rest.trim_start_matches('"')
                .trim_start()
                .starts_with(['=', ':'])
        })
    })
}

/// Whether `dir` holds a regular file anywhere below it. Hidden entries (`.gitkeep`, `.DS_Store`) do not count.
fn has_file(dir: &Path) -> bool {
    let Ok(entries) = fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().any(|entry| {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') {
            return false;
        }
        match entry.file_type() {
            Ok(kind) if kind.is_dir() => has_file(&entry.path()),
            Ok(_) => true,
            Err(_) => false,
        }
    })
}

/// `[build]` in `site.toml`: the site is built by a program of its own.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildSection {
    /// `"hugo --destination {out}"` (split like a shell would, but run without one) or
    /// `["hugo", "--destination", "{out}"]`.
    pub command: Option<CommandLine>,
    /// Where the program writes, relative to the site, for programs that write in place
    /// (mdBook's `book/`). Without it the program is given `{out}`.
    pub output: Option<PathBuf>,
    /// Seconds a build may take before it is killed.
    pub timeout: Option<u64>,
}

/// A command as `site.toml` gives it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum CommandLine {
    Line(String),
    Argv(Vec<String>),
}

/// Reads `[build]` from the site's `site.toml`: `Ok(None)` when there is none.
pub fn build_section(root: &Path) -> Result<Option<BuildSection>, Diagnostic> {
    #[derive(Deserialize)]
    struct OnlyBuild {
        build: Option<toml::Value>,
    }
    let text = match fs::read_to_string(root.join("site.toml")) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => {
            return Err(Diagnostic::error(
                "site.toml",
                format!("cannot read: {error}"),
            ));
        }
    };
    let bad = |message: String| Diagnostic::error("site.toml", message);
    let table: OnlyBuild = toml::from_str(&text).map_err(|e| bad(e.message().to_string()))?;
    let Some(build) = table.build else {
        return Ok(None);
    };
    let section = BuildSection::deserialize(build).map_err(|e| bad(format!("[build]: {e}")))?;
    if section.command.is_none() {
        return Err(bad("[build] needs a `command`".to_string()));
    }
    Ok(Some(section))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in files {
            let path = dir.path().join(path);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, text).unwrap();
        }
        dir
    }

    fn detected(files: &[(&str, &str)]) -> Option<(Generator, Option<String>)> {
        detect(site(files).path()).map(|d| (d.generator, d.own_templates))
    }

    #[test]
    fn hugo_sites_with_their_own_templates_are_told_from_content_trees() {
        let hugo = Some(Generator::Hugo);
        let of = |files| detected(files).map(|(g, t)| (Some(g), t));
        assert_eq!(
            of(&[("hugo.toml", "title = 'x'"), ("content/a.md", "")]),
            Some((hugo, None))
        );
        assert_eq!(
            of(&[("hugo.toml", ""), ("layouts/_default/single.html", "")]),
            Some((hugo, Some("layouts/".into())))
        );
        assert_eq!(
            of(&[("hugo.toml", ""), ("layouts/.gitkeep", "")]),
            Some((hugo, None)),
            "an empty layouts/ is no templates"
        );
        assert_eq!(
            of(&[("config.toml", "theme = \"ananke\"\nbaseURL = '/'")]),
            Some((hugo, Some("a theme".into())))
        );
        assert_eq!(
            of(&[("config/_default/hugo.toml", ""), ("themes/t/x.html", "")]),
            Some((hugo, Some("a theme".into())))
        );
        assert_eq!(
            of(&[("hugo.yaml", "themes: []\n")]),
            Some((hugo, None)),
            "`themes` is not `theme`"
        );
    }

    #[test]
    fn zola_sites_with_their_own_templates_are_told_from_content_trees() {
        let zola = Some(Generator::Zola);
        let of = |files| detected(files).map(|(g, t)| (Some(g), t));
        assert_eq!(
            of(&[
                ("config.toml", "base_url = '/'"),
                ("templates/shortcodes/a.html", "")
            ]),
            Some((zola, None)),
            "sited renders shortcodes itself"
        );
        assert_eq!(
            of(&[
                ("config.toml", "base_url = '/'"),
                ("templates/doc.html", "{% extends \"page.html\" %}"),
            ]),
            Some((zola, None)),
            "a page template extending sited's theme is sited's"
        );
        assert_eq!(
            of(&[
                ("config.toml", "base_url = '/'"),
                ("templates/page.html", "")
            ]),
            Some((zola, Some("templates/page.html".into())))
        );
        assert_eq!(
            of(&[("zola.toml", "base_url = '/'\ntheme = \"even\"")]),
            Some((zola, Some("a theme".into())))
        );
    }

    #[test]
    fn books_plain_folders_and_sited_sites() {
        assert_eq!(
            detected(&[("book.toml", ""), ("theme/index.hbs", "")]),
            Some((Generator::Mdbook, None)),
            "sited takes a book, theme and all"
        );
        assert_eq!(detected(&[("index.md", "# hi")]), None);
        assert_eq!(
            detected(&[("site.toml", ""), ("layouts/a.html", ""), ("hugo.toml", "")]),
            None,
            "site.toml makes it sited's"
        );
    }

    #[test]
    fn the_fixtures_are_detected_as_the_readme_says() {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures");
        let of = |name: &str| detect(&fixtures.join(name)).map(|d| (d.generator, d.own_templates));
        assert_eq!(
            of("hugo-site"),
            Some((Generator::Hugo, Some("layouts/".into())))
        );
        assert_eq!(of("hugo-docs"), Some((Generator::Hugo, None)));
        assert_eq!(of("zola-site"), Some((Generator::Zola, None)));
        assert_eq!(of("mdbook-book"), Some((Generator::Mdbook, None)));
    }

    #[test]
    fn build_sections_in_both_forms_and_bad_ones_with_the_reason() {
        let read = |text: &str| build_section(site(&[("site.toml", text)]).path());
        assert_eq!(read("title = 'x'"), Ok(None));
        assert_eq!(
            read("[build]\ncommand = 'make site OUT={out}'\ntimeout = 30"),
            Ok(Some(BuildSection {
                command: Some(CommandLine::Line("make site OUT={out}".into())),
                output: None,
                timeout: Some(30),
            }))
        );
        assert_eq!(
            read("[build]\ncommand = ['mdbook', 'build']\noutput = 'book'"),
            Ok(Some(BuildSection {
                command: Some(CommandLine::Argv(vec!["mdbook".into(), "build".into()])),
                output: Some("book".into()),
                timeout: None,
            }))
        );
        let error = read("[build]\ncomand = 'x'").unwrap_err();
        assert!(error.message.contains("comand"), "{error}");
        let error = read("[build]\noutput = 'x'").unwrap_err();
        assert!(error.message.contains("command"), "{error}");
    }
}
