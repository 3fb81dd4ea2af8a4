//! The site actor's side of the builder: the options a site is built with, and what the
//! daemon makes of a build. Its output becomes serve's [`Output`] (a resource whose tag
//! did not change is carried over from the output being served, with the header values
//! and compressed bodies serving made for it); its report becomes the wire
//! [`BuildReport`] that `ps`, the logs and the browser overlay show.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sited_builder::{Cancel, Options, Progress, Report};
use sited_proto::{BuildError, BuildProgress, BuildReport};

use super::SiteConfig;
use crate::serve::{Body, Output, Resource};

/// How the site of `config` is built; `panic_function` is the test hook
/// ([`crate::hooks::TestHooks::panic_function`]).
pub fn options(
    config: &SiteConfig,
    progress: &Arc<Progress>,
    cancel: &Cancel,
    panic_function: bool,
    exclude: Vec<std::path::PathBuf>,
    wanted: Option<&sited_builder::Wanted>,
) -> Options {
    Options {
        drafts: config.drafts,
        progress: Some(progress.clone()),
        cancel: cancel.clone(),
        exclude,
        test_panic_function: panic_function,
        // `strict = true` in site.toml still applies.
        strict: false,
        wanted: wanted.cloned(),
        // A site's pages are held for as long as it is up: compressed, they take a fifth
        // of the memory and go to browsers as they are (issue 17 item 3).
        pack_pages: true,
        // ... and out of the heap: in an unlinked file beside the daemon's state, which
        // is page cache the kernel can take back.
        spill: spill(config),
        after_spill: Some(crate::allocator::trim),
    }
}

/// The file a site's packed pages are held in, made in the daemon's state folder; when it
/// cannot be made, the pages are held in memory and the site builds all the same.
fn spill(config: &SiteConfig) -> Option<Arc<sited_builder::output::Spill>> {
    let dir = config.work_dir();
    sited_builder::output::Spill::create(&dir)
        .inspect_err(|error| {
            tracing::warn!(%error, dir = %dir.display(), "cannot make a file for pages: holding them in memory");
        })
        .ok()
}

/// The build's output as serving holds it. Resources unchanged since `serving` (same URL,
/// tag and body) are the very ones being served, prepared headers and compressed bodies
/// included.
pub fn servable(built: &sited_builder::Output, serving: Option<&Output>) -> Output {
    let resources = built
        .resources
        .iter()
        .map(|(url, made)| {
            let kept = serving
                .and_then(|serving| serving.get(url))
                .filter(|served| same(served, made))
                .cloned();
            (url.clone(), kept.unwrap_or_else(|| Resource::from(made)))
        })
        .collect();
    Output { resources }
}

/// Brings `published` up to date with a build that changed only the `changed` URLs
/// (new, gone or different): those are made servable or removed; every other resource
/// stays as it is served, prepared headers and compressed bodies included.
pub fn apply(built: &sited_builder::Output, published: &mut Output, changed: &[String]) {
    for url in changed {
        match built.get(url) {
            Some(made) => {
                published
                    .resources
                    .insert(url.clone(), Resource::from(made));
            }
            None => {
                published.resources.remove(url);
            }
        }
    }
}

/// Whether `published` serves exactly what `built` made (the same URLs, each with the
/// same tag and body): what [`apply`] must leave, checked in debug builds.
pub fn agrees(published: &Output, built: &sited_builder::Output) -> bool {
    published.resources.len() == built.resources.len()
        && built
            .resources
            .iter()
            .all(|(url, made)| published.get(url).is_some_and(|served| same(served, made)))
}

/// Whether a served resource is what the builder made now.
fn same(served: &Resource, made: &sited_builder::Resource) -> bool {
    let same_body = match (&served.body, &made.body) {
        (Body::Memory(_), sited_builder::Body::Memory(_))
        | (Body::Packed(_), sited_builder::Body::Packed(_)) => true,
        (Body::File(a), sited_builder::Body::File(b)) => a == b,
        _ => false,
    };
    same_body && served.etag == made.etag && served.content_type == made.content_type
}

/// The report as the wire carries it, finished now.
pub fn wire_report(report: &Report) -> BuildReport {
    let wire = |d: &sited_builder::Diagnostic| BuildError {
        file: d.file.clone(),
        line: d.line,
        column: d.column,
        message: d.message.clone(),
    };
    BuildReport {
        pages: report.pages,
        files: report.files,
        rendered: report.rendered,
        duration_ms: report.duration.as_millis() as u64,
        finished_at_ms: crate::clock::now_ms(),
        errors: report.errors().map(wire).collect(),
        warnings: report.warnings().map(wire).collect(),
    }
}

/// How far the build counting into `progress` is, as `ps` shows it.
pub fn progress(progress: &Progress) -> Option<BuildProgress> {
    progress.get().map(|count| BuildProgress {
        done: count.done,
        total: count.total,
    })
}

/// Why a site is built, for its log line.
#[derive(Debug)]
pub enum Cause<'a> {
    /// The site came up.
    First,
    /// `sitectl rebuild`.
    Asked,
    /// The watcher lost events: everything was read again.
    Rescan,
    /// Files saved, created or removed (absolute paths).
    Changed(&'a [PathBuf]),
}

/// Logs a build's diagnostics and outcome into the site's log, in words a person reads
/// at a glance: `rebuilt after content/about.md: 1 page in 3 ms`.
pub fn log_report(report: &Report, cause: &Cause<'_>, root: &Path) {
    // File names are the user's: escaped, so that none can drive the terminal of
    // whoever reads the log.
    for error in report.errors() {
        let error = sited_proto::escape_controls(&error.to_string()).into_owned();
        tracing::warn!(%error, "build error");
    }
    for warning in report.warnings() {
        let warning = sited_proto::escape_controls(&warning.to_string()).into_owned();
        tracing::warn!(%warning, "build warning");
    }
    tracing::info!("{}", summary(report, cause, root));
}

fn summary(report: &Report, cause: &Cause<'_>, root: &Path) -> String {
    let ms = report.duration.as_millis();
    let (what, count) = match cause {
        Cause::First => ("built".to_string(), report.pages),
        Cause::Asked => ("rebuilt as asked".to_string(), report.rendered),
        Cause::Rescan => ("rebuilt after a rescan".to_string(), report.rendered),
        Cause::Changed(paths) => {
            let first = paths.first().map_or_else(String::new, |path| {
                let shown = path.strip_prefix(root).unwrap_or(path);
                sited_proto::escape_controls(&shown.display().to_string()).into_owned()
            });
            let more = match paths.len() {
                0 | 1 => String::new(),
                2 => " and 1 more file".to_string(),
                n => format!(" and {} more files", n - 1),
            };
            (format!("rebuilt after {first}{more}"), report.rendered)
        }
    };
    let mut line = format!("{what}: {}", plural(count, "page"));
    let (errors, warnings) = (report.errors().count(), report.warnings().count());
    if errors > 0 {
        line.push_str(&format!(", {}", plural(errors, "error")));
    }
    if warnings > 0 {
        line.push_str(&format!(", {}", plural(warnings, "warning")));
    }
    line.push_str(&format!(" in {ms} ms"));
    line
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_builds_log_line_says_why_and_how_it_went() {
        let root = Path::new("/site");
        let mut report = Report {
            pages: 11,
            rendered: 1,
            duration: std::time::Duration::from_millis(3),
            ..Report::default()
        };
        let one = [root.join("content/about.md")];
        let three = [root.join("a.md"), root.join("b.md"), root.join("c.md")];
        for (cause, line) in [
            (Cause::First, "built: 11 pages in 3 ms"),
            (
                Cause::Changed(&one),
                "rebuilt after content/about.md: 1 page in 3 ms",
            ),
            (
                Cause::Changed(&three),
                "rebuilt after a.md and 2 more files: 1 page in 3 ms",
            ),
            (Cause::Asked, "rebuilt as asked: 1 page in 3 ms"),
            (Cause::Rescan, "rebuilt after a rescan: 1 page in 3 ms"),
        ] {
            assert_eq!(summary(&report, &cause, root), line);
        }
        report.diagnostics = vec![
            sited_builder::Diagnostic::error("a.md", "bad"),
            sited_builder::Diagnostic::warning("b.md", "meh"),
            sited_builder::Diagnostic::warning("c.md", "meh"),
        ];
        assert_eq!(
            summary(&report, &Cause::Changed(&one), root),
            "rebuilt after content/about.md: 1 page, 1 error, 2 warnings in 3 ms"
        );
    }

    #[test]
    fn every_file_a_build_serves_opens_beneath_the_site_root() {
        // The daemon hands serving the site's canonical root, and serving opens each
        // file beneath it with no symlink on the way: the paths the builder stores must
        // be below that root with links inside the site already resolved.
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        for (rel, text) in [
            ("content/a.md", "# A"),
            ("content/img/logo.svg", "<svg/>"),
            ("static/css/app.css", "body{}"),
            ("static/.well-known/security.txt", "Contact: x"),
        ] {
            let path = root.join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        std::os::unix::fs::symlink(
            root.join("content/img/logo.svg"),
            root.join("content/alias.svg"),
        )
        .unwrap();
        let mut site = sited_builder::Site::open(root.clone(), Options::default());
        let built = site.build(sited_builder::Changes::Everything).unwrap();
        let output = servable(&built.output, None);
        let files = crate::serve::Files::beneath(&root).unwrap();
        let mut opened = Vec::new();
        for (url, resource) in &output.resources {
            if let Body::File(path) = &resource.body {
                let mut file = files
                    .open(path)
                    .unwrap_or_else(|error| panic!("{url} at {}: {error}", path.display()));
                let mut text = String::new();
                std::io::Read::read_to_string(&mut file, &mut text).unwrap();
                opened.push((url.as_str(), text));
            }
        }
        opened.sort();
        assert_eq!(
            opened,
            [
                ("/.well-known/security.txt", "Contact: x".to_string()),
                ("/alias.svg", "<svg/>".to_string()),
                ("/css/app.css", "body{}".to_string()),
                ("/img/logo.svg", "<svg/>".to_string()),
            ]
        );
    }

    #[test]
    fn unchanged_resources_keep_what_serving_made_of_them() {
        let mut built = sited_builder::Output::default();
        for (url, body) in [("/", "home"), ("/a/", "a")] {
            built
                .resources
                .insert(url.into(), sited_builder::Resource::html(body.into()));
        }
        let served = servable(&built, None);
        // Serving prepares the resources it is asked for (header values, compressed
        // bodies are made on demand and live in there).
        let prepared = |output: &Output, url: &str| {
            output.get(url).unwrap().prepared() as *const crate::serve::Prepared
        };
        let home = prepared(&served, "/");
        let a = prepared(&served, "/a/");

        let mut rebuilt = built.clone();
        rebuilt.resources.insert(
            "/a/".into(),
            sited_builder::Resource::html("a, edited".into()),
        );
        // Rendered again to the same bytes: still the same resource.
        rebuilt
            .resources
            .insert("/".into(), sited_builder::Resource::html("home".into()));
        let next = servable(&rebuilt, Some(&served));
        assert_eq!(prepared(&next, "/"), home, "kept across builds");
        assert_ne!(prepared(&next, "/a/"), a, "a new body gets new headers");
        let Body::Memory(bytes) = &next.get("/a/").unwrap().body else {
            panic!("a page is held in memory");
        };
        assert_eq!(&bytes[..], b"a, edited");
    }

    #[test]
    fn a_build_that_lists_its_changes_is_published_by_them_alone() {
        let page = |body: &str| sited_builder::Resource::html(body.into());
        let mut built = sited_builder::Output::default();
        for (url, body) in [("/", "home"), ("/a/", "a"), ("/b/", "b")] {
            built.resources.insert(url.into(), page(body));
        }
        let mut published = servable(&built, None);
        let prepared = |output: &Output, url: &str| {
            output.get(url).unwrap().prepared() as *const crate::serve::Prepared
        };
        let home = prepared(&published, "/");

        let mut rebuilt = built.clone();
        rebuilt.resources.insert("/a/".into(), page("a, edited"));
        rebuilt.resources.remove("/b/");
        rebuilt.resources.insert("/c/".into(), page("c"));
        assert!(!agrees(&published, &rebuilt));
        let changed = ["/a/".to_string(), "/b/".to_string(), "/c/".to_string()];
        apply(&rebuilt, &mut published, &changed);
        assert!(agrees(&published, &rebuilt), "serves what the build made");
        assert!(published.get("/b/").is_none(), "a page gone is gone");
        assert_eq!(prepared(&published, "/"), home, "the rest is the very same");
        let Body::Memory(bytes) = &published.get("/a/").unwrap().body else {
            panic!("a page is held in memory");
        };
        assert_eq!(&bytes[..], b"a, edited");
    }
}
