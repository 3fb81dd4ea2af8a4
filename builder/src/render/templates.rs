//! Templates: the embedded theme overlaid with the site's `templates/`, loaded into one
//! minijinja environment that renders pages in parallel. Template errors carry the file
//! and line they come from.

use std::fs;
use std::path::{Path, PathBuf};

use minijinja::{Environment, ErrorKind};

use crate::load::walk::is_ignored_name;
use crate::report::Diagnostic;
use crate::theme;

/// A loaded template set and where each template came from.
#[derive(Debug)]
pub struct Templates {
    env: Environment<'static>,
    /// Site-relative directory of override templates, for error paths.
    overrides_dir: Option<PathBuf>,
    overridden: Vec<String>,
    /// A hash of the site's own templates (names and sources): with sited's identity
    /// (which fixes the theme's), what the HTML of an unchanged context depends on.
    fingerprint: u64,
}

impl Templates {
    /// Loads the theme, then the site's overrides. A template that does not parse is
    /// reported and left out; the theme's version of it is used instead, if any.
    /// `test_panic_function` adds `sited_test_panic` ([`Options`](crate::Options)).
    pub fn load(
        templates_dir: Option<&Path>,
        root: &Path,
        test_panic_function: bool,
        errors: &mut Vec<Diagnostic>,
    ) -> Templates {
        let mut env = Environment::new();
        // Block tags on lines of their own leave no blank lines behind.
        env.set_syntax(
            minijinja::syntax::SyntaxConfig::builder()
                .trim_blocks(true)
                .lstrip_blocks(true)
                .build()
                .expect("the default delimiters are valid"),
        );
        env.set_auto_escape_callback(|name| {
            if name.ends_with(".html") || name.ends_with(".xml") {
                minijinja::AutoEscape::Html
            } else {
                minijinja::AutoEscape::None
            }
        });
        // minijinja's HTML escaping also escapes `/`, which turns every URL into
        // `&#x2f;posts&#x2f;`: valid, but unreadable in view-source. Escape what HTML
        // needs escaped and nothing more.
        env.set_formatter(|out, state, value| match value.as_str() {
            Some(text)
                if *state.auto_escape() == minijinja::AutoEscape::Html && !value.is_safe() =>
            {
                crate::html::escape_to(out, text).map_err(minijinja::Error::from)
            }
            _ => minijinja::escape_formatter(out, state, value),
        });
        // Test-only trigger for S9/panic isolation: a template function that panics. Real
        // templates cannot make minijinja panic, so the tests need a way to.
        if test_panic_function {
            env.add_function("sited_test_panic", |message: String| -> String {
                panic!("{message}")
            });
        }
        for (name, source) in theme::TEMPLATES {
            env.add_template(name, source)
                .expect("the embedded theme's templates parse");
        }
        let mut templates = Templates {
            env,
            overrides_dir: templates_dir
                .map(|dir| dir.strip_prefix(root).unwrap_or(dir).to_path_buf()),
            overridden: Vec::new(),
            fingerprint: 0,
        };
        // Sorted before they are hashed: a folder's order may differ from run to run.
        let mut loaded: Vec<u64> = Vec::new();
        if let Some(dir) = templates_dir {
            let mut files = Vec::new();
            collect_templates(dir, Path::new(""), &mut files);
            for (name, path) in files {
                let source = match fs::read_to_string(&path) {
                    Ok(source) => source,
                    Err(error) => {
                        errors.push(Diagnostic::error(
                            path.strip_prefix(root).unwrap_or(&path),
                            format!("cannot read template: {error}"),
                        ));
                        continue;
                    }
                };
                let hash = crate::context::fingerprint(&(&name, &source));
                match templates.env.add_template_owned(name.clone(), source) {
                    Ok(()) => {
                        loaded.push(hash);
                        templates.overridden.push(name);
                    }
                    Err(error) => {
                        let mut error = templates.error(&error);
                        error.file = path.strip_prefix(root).unwrap_or(&path).to_path_buf();
                        errors.push(error);
                    }
                }
            }
        }
        loaded.sort_unstable();
        templates.fingerprint = crate::context::fingerprint(&loaded);
        templates
    }

    /// A hash of the site's own templates, names and sources: changes with any of them.
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    pub fn env(&self) -> &Environment<'static> {
        &self.env
    }

    pub fn has(&self, name: &str) -> bool {
        self.env.get_template(name).is_ok()
    }

    /// Turns a minijinja error into a diagnostic naming the template file and line.
    pub fn error(&self, error: &minijinja::Error) -> Diagnostic {
        // The innermost error knows the template and line where things went wrong; an
        // `include`/`extends` wraps it.
        let mut source: &minijinja::Error = error;
        while let Some(inner) = std::error::Error::source(source)
            .and_then(|inner| inner.downcast_ref::<minijinja::Error>())
        {
            source = inner;
        }
        let name = source.name().or(error.name()).unwrap_or("<template>");
        let file = if self.overridden.iter().any(|n| n == name) {
            self.overrides_dir.clone().unwrap_or_default().join(name)
        } else {
            PathBuf::from("<theme>").join(name)
        };
        let message = match source.detail() {
            Some(detail) => format!("{}: {detail}", kind_text(source.kind())),
            None => kind_text(source.kind()).to_string(),
        };
        Diagnostic::error(file, message).at(source.line().map(|line| line as u32), None)
    }
}

fn kind_text(kind: ErrorKind) -> String {
    match kind {
        ErrorKind::SyntaxError => "template syntax error".into(),
        ErrorKind::UndefinedError => "undefined value".into(),
        ErrorKind::TemplateNotFound => "template not found".into(),
        ErrorKind::UnknownFilter => "unknown filter".into(),
        ErrorKind::UnknownFunction => "unknown function".into(),
        ErrorKind::UnknownTest => "unknown test".into(),
        ErrorKind::InvalidOperation => "invalid operation".into(),
        other => other.to_string(),
    }
}

fn collect_templates(dir: &Path, rel: &Path, out: &mut Vec<(String, PathBuf)>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if is_ignored_name(name) {
            continue;
        }
        let path = entry.path();
        let rel = rel.join(name);
        if path.is_dir() {
            collect_templates(&path, &rel, out);
        } else if let Some(name) = rel.to_str() {
            out.push((name.replace('\\', "/"), path));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn theme_loads_and_override_replaces_it() {
        let site = tempfile::tempdir().unwrap();
        let dir = site.path().join("templates");
        fs::create_dir(&dir).unwrap();
        fs::write(dir.join("page.html"), "CUSTOM {{ page.title }}").unwrap();
        let mut errors = Vec::new();
        let templates = Templates::load(Some(&dir), site.path(), false, &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        let out = templates
            .env()
            .get_template("page.html")
            .unwrap()
            .render(minijinja::context! { page => minijinja::context! { title => "Hi" } })
            .unwrap();
        assert_eq!(out, "CUSTOM Hi");
        assert!(templates.has("section.html"));
    }

    #[test]
    fn html_is_escaped_but_urls_stay_readable() {
        let mut errors = Vec::new();
        let mut templates = Templates::load(None, Path::new("/"), false, &mut errors);
        templates
            .env
            .add_template("t.html", "<a href=\"{{ url }}\">{{ text }}</a>")
            .unwrap();
        let out = templates
            .env()
            .get_template("t.html")
            .unwrap()
            .render(minijinja::context! { url => "/a/b/", text => "<b>&\"'" })
            .unwrap();
        assert_eq!(out, "<a href=\"/a/b/\">&lt;b&gt;&amp;&quot;&#39;</a>");
    }

    #[test]
    fn syntax_error_names_file_and_line() {
        let site = tempfile::tempdir().unwrap();
        let dir = site.path().join("templates");
        fs::create_dir(&dir).unwrap();
        fs::write(dir.join("page.html"), "line one\n{% if %}\n").unwrap();
        let mut errors = Vec::new();
        let templates = Templates::load(Some(&dir), site.path(), false, &mut errors);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].file, PathBuf::from("templates/page.html"));
        assert_eq!(errors[0].line, Some(2));
        assert!(errors[0].message.contains("syntax error"), "{errors:?}");
        // The theme's page template still renders pages.
        assert!(templates.has("page.html"));
    }
}
