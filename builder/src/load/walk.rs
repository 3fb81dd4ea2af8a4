//! The walk that finds a site's sources: which files are Markdown, which are served as
//! they are, and which are ignored (hidden files, editor droppings, symlinks that leave
//! the site, paths the site was told to exclude).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rayon::prelude::*;

use crate::report::Diagnostic;

use super::layout::{Layout, RESERVED_AT_ROOT};

/// A file found by the walk, with its path relative to the directory walked. Both are
/// shared: a big site's maps are keyed by a page's path (parsed files, rendered Markdown,
/// URLs), and each holding a copy of it cost about 2 MiB for tldr's 7,400 pages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub path: Arc<Path>,
    pub rel: Arc<Path>,
}

/// Files and directories no site means to publish: hidden ones and the temp files
/// editors leave while saving (vim's `.swp`/`4913`/`~`, emacs' `.#x`/`#x#`, JetBrains'
/// `___jb_tmp___`, generic `.tmp`).
pub fn is_ignored_name(name: &str) -> bool {
    // `..md` is not hidden: it is the page for the `.` command (tldr has one).
    let hidden = name.starts_with('.') && !(name.starts_with("..") && name.len() > 2);
    hidden
        || name.ends_with('~')
        || name == "4913"
        || name.ends_with(".swp")
        || name.ends_with(".swx")
        || name.ends_with(".tmp")
        || name.ends_with("___jb_tmp___")
        || name.ends_with("___jb_old___")
        || (name.starts_with('#') && name.ends_with('#'))
}

/// The one hidden folder that is published: `.well-known/` directly in the folder walked
/// (content or `static/`), where RFC 8615 puts `security.txt`, ACME challenges and app
/// links. Hidden names inside it stay hidden.
pub const WELL_KNOWN: &str = ".well-known";

/// Whether the walk leaves out an entry named `name`; `at_top`: directly in the folder
/// walked.
pub fn is_left_out(name: &str, at_top: bool) -> bool {
    is_ignored_name(name) && !(at_top && name == WELL_KNOWN)
}

/// Whether a file is a page (or a section's own text) rather than a file served as is.
pub fn is_markdown(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("md" | "markdown")
    )
}

/// Whether the walk leaves out an entry named `name` of a folder; `at_top`: directly in
/// the folder walked; `skip`: the names it skips there (given only at the top).
pub fn leaves_out(name: &str, at_top: bool, skip: &[&str]) -> bool {
    is_left_out(name, at_top) || skip.contains(&name)
}

/// The names the content walk skips directly in the content folder: sited's own files and
/// folders, when the content is the site's root.
pub fn content_skip_at_top(layout: &Layout) -> &'static [&'static str] {
    match layout.content_dir == layout.root {
        true => RESERVED_AT_ROOT,
        false => &[],
    }
}

/// Every file under the content directory (Markdown and assets alike).
pub fn content_files(layout: &Layout, errors: &mut Vec<Diagnostic>) -> Vec<Source> {
    files(
        layout,
        &layout.content_dir,
        content_skip_at_top(layout),
        errors,
    )
}

/// Every file under `static/`.
pub fn static_files(layout: &Layout, errors: &mut Vec<Diagnostic>) -> Vec<Source> {
    match &layout.static_dir {
        Some(dir) => files(layout, dir, &[], errors),
        None => Vec::new(),
    }
}

/// Every file under `dir` (sorted by relative path), skipping `skip_at_top` names directly
/// in it.
fn files(
    layout: &Layout,
    dir: &Path,
    skip_at_top: &[&str],
    errors: &mut Vec<Diagnostic>,
) -> Vec<Source> {
    let mut files = Vec::new();
    walk(layout, dir, Path::new(""), skip_at_top, &mut files, errors);
    debug_assert!(files.is_sorted_by(|a, b| a.rel < b.rel));
    files
}

fn walk(
    layout: &Layout,
    dir: &Path,
    rel: &Path,
    skip: &[&str],
    out: &mut Vec<Source>,
    errors: &mut Vec<Diagnostic>,
) {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) => {
            errors.push(Diagnostic::error(
                layout.display_path(dir),
                format!("cannot read directory: {error}"),
            ));
            return;
        }
    };
    // In name order, each folder's files where its name falls: the whole list comes out
    // sorted by path (component by component) with no sort of its own, which took half
    // of the walk of tldr's 7,425 pages.
    let mut entries: Vec<(std::ffi::OsString, fs::DirEntry)> =
        entries.flatten().map(|e| (e.file_name(), e)).collect();
    entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    // Each entry on every core: a big folder's (tldr's `common/`, 4,612 pages) was a
    // serial start of every build, its paths made one by one.
    let found: Vec<Found> = entries
        .into_par_iter()
        .filter_map(|(name, entry)| found(layout, rel, skip, &name, &entry))
        .collect();
    // Each folder on a worker of its own (a big site's sections side by side: the walk
    // was a serial start of every build), what it holds put where its name falls.
    let walked: Vec<(Vec<Source>, Vec<Diagnostic>)> = found
        .par_iter()
        .filter_map(|found| match found {
            Found::Dir { path, rel } => {
                let (mut files, mut errors) = (Vec::new(), Vec::new());
                walk(layout, path, rel, &[], &mut files, &mut errors);
                Some((files, errors))
            }
            _ => None,
        })
        .collect();
    let mut walked = walked.into_iter();
    for found in found {
        match found {
            Found::File(source) => out.push(source),
            Found::Error(error) => errors.push(error),
            Found::Dir { .. } => {
                let (files, dir_errors) = walked.next().expect("one walk per folder");
                out.extend(files);
                errors.extend(dir_errors);
            }
        }
    }
}

/// What the walk takes of the entry `name` of the folder `rel`, if anything.
fn found(
    layout: &Layout,
    rel: &Path,
    skip: &[&str],
    name: &std::ffi::OsStr,
    entry: &fs::DirEntry,
) -> Option<Found> {
    let Some(name_str) = name.to_str() else {
        return Some(Found::Error(Diagnostic::error(
            layout.display_path(&entry.path()),
            "file name is not valid UTF-8; skipped",
        )));
    };
    let path = entry.path();
    if leaves_out(name_str, rel.as_os_str().is_empty(), skip) || layout.is_excluded(&path) {
        return None;
    }
    let file_type = entry.file_type().ok()?;
    let (is_dir, is_file) = if file_type.is_symlink() {
        // Follow a link only when its target stays inside the site: a link to
        // ~/.ssh must never become servable.
        match path.canonicalize() {
            Ok(target) if target.starts_with(&layout.root) => (target.is_dir(), target.is_file()),
            _ => {
                tracing::warn!(path = %path.display(), "skipping symlink that leaves the site");
                return None;
            }
        }
    } else {
        (file_type.is_dir(), file_type.is_file())
    };
    let rel = rel.join(name);
    if is_dir {
        // Symlinked directories are not descended into: they could loop.
        (!file_type.is_symlink()).then_some(Found::Dir { path, rel })
    } else if is_file {
        Some(Found::File(Source {
            path: path.into(),
            rel: rel.into(),
        }))
    } else {
        // Reading a FIFO would wait for a writer forever; a device or socket is not
        // content either. Never silently: the person put it there.
        special_kind(&file_type).map(|kind| {
            Found::Error(Diagnostic::warning(
                layout.display_path(&path),
                format!("is {kind}, not a regular file; skipped"),
            ))
        })
    }
}

/// An entry of a folder, as the walk takes it.
enum Found {
    File(Source),
    Dir { path: PathBuf, rel: PathBuf },
    Error(Diagnostic),
}

/// What a file that is neither a regular file, a directory nor a symlink is, in words.
fn special_kind(file_type: &fs::FileType) -> Option<&'static str> {
    use std::os::unix::fs::FileTypeExt;
    if file_type.is_fifo() {
        Some("a named pipe (FIFO)")
    } else if file_type.is_socket() {
        Some("a socket")
    } else if file_type.is_char_device() || file_type.is_block_device() {
        Some("a device")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn editor_temp_files_are_ignored() {
        for name in [
            ".hidden",
            "a.md~",
            "4913",
            ".a.md.swp",
            "x.tmp",
            ".#a.md",
            "#a.md#",
            "a.md___jb_tmp___",
        ] {
            assert!(is_ignored_name(name), "{name}");
        }
        for name in ["a.md", "index.md", "photo.jpg", "README.md", "..md"] {
            assert!(!is_ignored_name(name), "{name}");
        }
    }

    #[test]
    fn root_is_content_when_no_content_dir() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("note.md"), "# Note").unwrap();
        fs::write(dir.path().join("site.toml"), "title = \"T\"").unwrap();
        fs::create_dir(dir.path().join("templates")).unwrap();
        fs::write(dir.path().join("templates/page.html"), "x").unwrap();
        let mut errors = Vec::new();
        let layout = Layout::discover(dir.path(), &[], &mut errors).unwrap();
        assert_eq!(layout.content_dir, layout.root);
        let files = content_files(&layout, &mut errors);
        let rels: Vec<PathBuf> = files.iter().map(|f| f.rel.to_path_buf()).collect();
        assert_eq!(rels, [PathBuf::from("note.md")]);
        assert_eq!(layout.config.title, "T");
        assert!(errors.is_empty(), "{errors:?}");
    }

    #[test]
    fn files_come_in_path_order_folder_by_folder() {
        let site = tempfile::tempdir().unwrap();
        // Byte order of whole paths would put `a-b.md` before `a/z.md` ('-' < '/'); path
        // order compares `a` with `a-b.md` first.
        let names = [
            "a-b.md", "a.md", "a/z.md", "a/b/c.md", "B.md", "b.md", "é.md", "z.md",
        ];
        for name in names {
            let path = site.path().join("content").join(name);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, "x").unwrap();
        }
        let mut errors = Vec::new();
        let layout = Layout::discover(site.path(), &[], &mut errors).unwrap();
        let rels: Vec<PathBuf> = (content_files(&layout, &mut errors).into_iter())
            .map(|f| f.rel.to_path_buf())
            .collect();
        let mut sorted: Vec<PathBuf> = names.iter().map(PathBuf::from).collect();
        sorted.sort();
        assert_eq!(rels, sorted);
        assert_eq!(rels[0], Path::new("B.md"));
        assert_eq!(
            rels[1..4],
            [
                Path::new("a/b/c.md"),
                Path::new("a/z.md"),
                Path::new("a-b.md")
            ]
        );
    }

    #[test]
    fn special_files_are_skipped_with_a_warning() {
        let site = tempfile::tempdir().unwrap();
        fs::create_dir_all(site.path().join("content")).unwrap();
        fs::create_dir_all(site.path().join("static")).unwrap();
        fs::write(site.path().join("content/page.md"), "x").unwrap();
        for fifo in ["content/pipe.md", "static/pipe.css"] {
            let status = std::process::Command::new("mkfifo")
                .arg(site.path().join(fifo))
                .status()
                .unwrap();
            assert!(status.success());
        }
        let _socket =
            std::os::unix::net::UnixListener::bind(site.path().join("content/sock")).unwrap();
        let mut errors = Vec::new();
        let layout = Layout::discover(site.path(), &[], &mut errors).unwrap();
        let content = content_files(&layout, &mut errors);
        let statics = static_files(&layout, &mut errors);
        assert_eq!(content.len(), 1, "{content:?}");
        assert!(statics.is_empty(), "{statics:?}");
        assert!(errors.iter().all(|e| !e.is_error()), "warnings: {errors:?}");
        let mut seen: Vec<String> = errors.iter().map(ToString::to_string).collect();
        seen.sort();
        assert_eq!(
            seen,
            [
                "content/pipe.md: is a named pipe (FIFO), not a regular file; skipped",
                "content/sock: is a socket, not a regular file; skipped",
                "static/pipe.css: is a named pipe (FIFO), not a regular file; skipped",
            ]
        );
    }

    #[test]
    fn symlinks_leaving_the_site_are_skipped() {
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("secret.txt"), "secret").unwrap();
        let site = tempfile::tempdir().unwrap();
        fs::create_dir(site.path().join("content")).unwrap();
        fs::write(site.path().join("content/inside.md"), "x").unwrap();
        std::os::unix::fs::symlink(
            outside.path().join("secret.txt"),
            site.path().join("content/leak.txt"),
        )
        .unwrap();
        std::os::unix::fs::symlink(
            site.path().join("content/inside.md"),
            site.path().join("content/alias.md"),
        )
        .unwrap();
        let mut errors = Vec::new();
        let layout = Layout::discover(site.path(), &[], &mut errors).unwrap();
        let rels: Vec<PathBuf> = content_files(&layout, &mut errors)
            .into_iter()
            .map(|f| f.rel.to_path_buf())
            .collect();
        assert_eq!(
            rels,
            [PathBuf::from("alias.md"), PathBuf::from("inside.md")]
        );
    }

    #[test]
    fn well_known_directly_in_the_folder_walked_is_published() {
        let site = tempfile::tempdir().unwrap();
        for file in [
            "content/.well-known/security.txt",
            "content/.well-known/.hidden",
            "content/docs/.well-known/nested.txt",
            "static/.well-known/acme-challenge/token",
            "static/.git/config",
        ] {
            let path = site.path().join(file);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, "x").unwrap();
        }
        let mut errors = Vec::new();
        let layout = Layout::discover(site.path(), &[], &mut errors).unwrap();
        let rels = |sources: Vec<Source>| -> Vec<PathBuf> {
            sources.into_iter().map(|f| f.rel.to_path_buf()).collect()
        };
        assert_eq!(
            rels(content_files(&layout, &mut errors)),
            [PathBuf::from(".well-known/security.txt")]
        );
        assert_eq!(
            rels(static_files(&layout, &mut errors)),
            [PathBuf::from(".well-known/acme-challenge/token")]
        );
        assert!(errors.is_empty(), "{errors:?}");
    }

    #[test]
    fn excluded_paths_are_not_walked() {
        let site = tempfile::tempdir().unwrap();
        fs::create_dir_all(site.path().join("state/sited")).unwrap();
        fs::write(site.path().join("state/sited/sited.log"), "log").unwrap();
        fs::write(site.path().join("state/notes.md"), "# Kept").unwrap();
        fs::write(site.path().join("page.md"), "# Page").unwrap();
        let mut errors = Vec::new();
        let exclude = [site.path().join("state/sited")];
        let layout = Layout::discover(site.path(), &exclude, &mut errors).unwrap();
        let rels: Vec<PathBuf> = content_files(&layout, &mut errors)
            .into_iter()
            .map(|f| f.rel.to_path_buf())
            .collect();
        assert_eq!(
            rels,
            [PathBuf::from("page.md"), PathBuf::from("state/notes.md")]
        );
    }
}
