//! What changed paths ask of a build, decided from the paths alone: each raw path a
//! watcher reported is classified ([`ChangeKind`]), and together they make the [`Plan`]
//! the build follows (what to walk or read again, whether stylesheets alone changed).
//! Whoever watches the site needs to know nothing of its layout.

use std::path::{Path, PathBuf};

use crate::load::layout::RESERVED_AT_ROOT;
use crate::load::walk::{is_left_out, is_markdown};
use crate::url::file_url;

/// What a build is asked to take into account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Changes {
    /// Read the whole site afresh (a first build, an explicit rebuild, or a watcher that
    /// lost track of events).
    Everything,
    /// These paths changed since the last build (created, modified, removed, or either
    /// end of a rename), as a watcher reports them: absolute, under the site's root.
    Paths(Vec<PathBuf>),
}

/// What a changed path means for a site.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// A Markdown page or section.
    Markdown,
    /// Any other file beside the content (images, downloads), or a folder of content.
    Asset,
    /// A template override.
    Template,
    /// A file under `static/`.
    Static,
    /// `site.toml`.
    Config,
    /// The site root itself (created, deleted, renamed), or `content/` coming or going.
    Root,
    /// Not part of the site: hidden and editor temp files, build output, other folders,
    /// excluded paths.
    Ignored,
}

/// Classifies a changed `path` of the site rooted at `root` (both canonical). Pure but
/// for one question: whether the site has a `content/` folder.
pub fn classify(root: &Path, path: &Path, has_content_dir: bool) -> ChangeKind {
    let Ok(rel) = path.strip_prefix(root) else {
        return ChangeKind::Ignored;
    };
    let mut parts = rel
        .components()
        .map(|c| c.as_os_str().to_str().unwrap_or("."));
    let Some(first) = parts.next() else {
        return ChangeKind::Root;
    };
    // `content/` itself appearing or going changes which folder is the content.
    if rel == Path::new("content") {
        return ChangeKind::Root;
    }
    // Left out as the walk leaves them out: `.well-known/` directly in the content or
    // `static/` folder is published, every other hidden name is not.
    let walked_from = match first {
        "static" => 1,
        "content" if has_content_dir => 1,
        _ => 0,
    };
    if rel.components().enumerate().any(|(depth, c)| {
        c.as_os_str()
            .to_str()
            .is_none_or(|name| is_left_out(name, depth == walked_from))
    }) {
        return ChangeKind::Ignored;
    }
    let content = if is_markdown(rel) {
        ChangeKind::Markdown
    } else {
        ChangeKind::Asset
    };
    match first {
        "site.toml" if rel.components().count() == 1 => ChangeKind::Config,
        // A Hugo or Zola site's config (see `hugo::config`, `zola`): read anew.
        name if rel.components().count() == 1 && FOREIGN_CONFIGS.contains(&name) => {
            ChangeKind::Config
        }
        "config" if parts.next() == Some("_default") => ChangeKind::Config,
        "templates" => ChangeKind::Template,
        "static" => ChangeKind::Static,
        "content" if has_content_dir => content,
        _ if has_content_dir => ChangeKind::Ignored,
        name if RESERVED_AT_ROOT.contains(&name) => ChangeKind::Ignored,
        _ => content,
    }
}

/// Config files of Hugo and Zola sites at the root.
const FOREIGN_CONFIGS: &[&str] = &[
    "hugo.toml",
    "hugo.yaml",
    "hugo.yml",
    "hugo.json",
    "config.toml",
    "config.yaml",
    "config.yml",
    "config.json",
];

/// What one build redoes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Read everything afresh: nothing is reused.
    pub everything: bool,
    /// The changes that matter, in the order reported.
    pub changes: Vec<(ChangeKind, PathBuf)>,
}

impl Plan {
    /// A plan that reads everything afresh.
    pub fn everything() -> Plan {
        Plan {
            everything: true,
            changes: Vec::new(),
        }
    }

    /// The plan for `paths` of the site at `root`, leaving out what does not matter.
    pub fn of(paths: &[PathBuf], root: &Path, is_excluded: impl Fn(&Path) -> bool) -> Plan {
        let has_content_dir = root.join("content").is_dir();
        let changes: Vec<(ChangeKind, PathBuf)> = paths
            .iter()
            .map(|path| {
                let kind = if is_excluded(path) {
                    ChangeKind::Ignored
                } else {
                    classify(root, path, has_content_dir)
                };
                (kind, path.clone())
            })
            .filter(|(kind, _)| *kind != ChangeKind::Ignored)
            .collect();
        let everything = changes
            .iter()
            .any(|(kind, _)| matches!(kind, ChangeKind::Config | ChangeKind::Root));
        Plan {
            everything,
            changes,
        }
    }

    /// If every change is a stylesheet served as it is, the URL paths they are served at
    /// (a browser can swap them without reloading the page). `content_dir` is where
    /// assets live.
    pub fn stylesheets(&self, root: &Path, content_dir: &Path) -> Option<Vec<String>> {
        if self.everything || self.changes.is_empty() {
            return None;
        }
        self.changes
            .iter()
            .map(|(kind, path)| {
                let base = match kind {
                    ChangeKind::Static => root.join("static"),
                    ChangeKind::Asset => content_dir.to_path_buf(),
                    _ => return None,
                };
                let is_css = path.extension().is_some_and(|e| e == "css");
                let rel = path.strip_prefix(base).ok().filter(|_| is_css)?;
                rel.to_str()?;
                Some(file_url(rel))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changed_paths_are_classified() {
        let root = Path::new("/site");
        let kind = |p: &str, content: bool| classify(root, &root.join(p), content);
        assert_eq!(classify(root, root, true), ChangeKind::Root);
        assert_eq!(kind("content", true), ChangeKind::Root);
        assert_eq!(kind("content", false), ChangeKind::Root);
        assert_eq!(kind("content/posts/a.md", true), ChangeKind::Markdown);
        assert_eq!(kind("content/posts/a.png", true), ChangeKind::Asset);
        assert_eq!(kind("templates/page.html", true), ChangeKind::Template);
        // Hugo's and Zola's config files are read anew, as site.toml is.
        assert_eq!(kind("hugo.toml", false), ChangeKind::Config);
        assert_eq!(kind("config.toml", true), ChangeKind::Config);
        assert_eq!(
            kind("config/_default/params.toml", false),
            ChangeKind::Config
        );
        assert_eq!(kind("docs/config.toml", false), ChangeKind::Asset);
        assert_eq!(kind("static/custom.css", true), ChangeKind::Static);
        assert_eq!(kind("site.toml", true), ChangeKind::Config);
        assert_eq!(kind("public/index.html", true), ChangeKind::Ignored);
        assert_eq!(
            kind("notes.md", true),
            ChangeKind::Ignored,
            "outside content/"
        );
        assert_eq!(
            kind("notes.md", false),
            ChangeKind::Markdown,
            "root is the content"
        );
        assert_eq!(kind("public/x.md", false), ChangeKind::Ignored);
        for temp in [
            "content/.a.md.swp",
            "content/a.md~",
            "content/4913",
            "content/.#a.md",
            ".git/index",
            "content/a.md___jb_tmp___",
        ] {
            assert_eq!(kind(temp, true), ChangeKind::Ignored, "{temp}");
        }
        assert_eq!(
            classify(root, Path::new("/elsewhere/a.md"), true),
            ChangeKind::Ignored
        );
    }

    #[test]
    fn edits_in_a_top_level_well_known_rebuild_and_other_hidden_paths_do_not() {
        let root = Path::new("/site");
        let kind = |p: &str, content: bool| classify(root, &root.join(p), content);
        assert_eq!(
            kind("static/.well-known/security.txt", true),
            ChangeKind::Static
        );
        assert_eq!(
            kind("static/.well-known/acme-challenge/token", false),
            ChangeKind::Static
        );
        assert_eq!(
            kind("content/.well-known/security.txt", true),
            ChangeKind::Asset
        );
        assert_eq!(kind("content/.well-known", true), ChangeKind::Asset);
        assert_eq!(
            kind(".well-known/security.txt", false),
            ChangeKind::Asset,
            "the root is the content"
        );
        for hidden in [
            "static/.well-known/.hidden",
            "static/docs/.well-known/x.txt",
            "content/docs/.well-known/x.txt",
            "static/.git/config",
            "content/.well-known/.security.txt.swp",
            "content/.well-known/security.txt~",
        ] {
            assert_eq!(kind(hidden, true), ChangeKind::Ignored, "{hidden}");
        }
        assert_eq!(
            kind(".well-known/security.txt", true),
            ChangeKind::Ignored,
            "outside content/"
        );
        assert_eq!(
            kind("templates/.well-known/x.html", true),
            ChangeKind::Ignored
        );
        assert_eq!(
            kind("docs/.well-known/x.txt", false),
            ChangeKind::Ignored,
            "not directly in the content"
        );
    }

    #[test]
    fn a_plan_keeps_what_matters_and_reads_everything_for_the_config() {
        let root = Path::new("/nonexistent-site");
        let excluded = root.join("state");
        let plan = Plan::of(
            &[
                root.join("a.md"),
                root.join(".a.md.swp"),
                root.join("state/sited.log"),
            ],
            root,
            |path| path.starts_with(&excluded),
        );
        assert_eq!(plan.changes, [(ChangeKind::Markdown, root.join("a.md"))]);
        assert!(!plan.everything);
        let plan = Plan::of(&[root.join("a.md"), root.join("site.toml")], root, |_| {
            false
        });
        assert!(plan.everything, "a config change rereads the site");
    }

    #[test]
    fn stylesheet_only_changes_are_recognised() {
        let root = Path::new("/nonexistent-site");
        let content = root.join("content");
        let css = root.join("static/custom.css");
        let page = root.join("content/a.md");
        let plan = |changes: &[(ChangeKind, &Path)]| Plan {
            everything: false,
            changes: changes.iter().map(|(k, p)| (*k, p.to_path_buf())).collect(),
        };
        assert_eq!(
            plan(&[(ChangeKind::Static, &css)]).stylesheets(root, &content),
            Some(vec!["/custom.css".to_string()])
        );
        assert_eq!(
            plan(&[(ChangeKind::Asset, &content.join("css/a.css"))]).stylesheets(root, &content),
            Some(vec!["/css/a.css".to_string()]),
            "a stylesheet beside the content"
        );
        assert_eq!(
            plan(&[(ChangeKind::Static, &css), (ChangeKind::Markdown, &page)])
                .stylesheets(root, &content),
            None
        );
        let logo = root.join("static/logo.png");
        assert_eq!(
            plan(&[(ChangeKind::Static, &logo)]).stylesheets(root, &content),
            None
        );
        assert_eq!(plan(&[]).stylesheets(root, &content), None);
    }
}
