//! Phase 5, write: the output on disk, for `sited build`. Only where it may go ([`out_dir`],
//! the data-loss guard: a missing or empty directory, or sited's own earlier output).
//! An earlier output is rewritten in place ([`update`]): only changed files, each moved
//! in by rename once the build succeeded. A fresh output, or any output with `--atomic`,
//! is written whole beside the output directory ([`Staging`]) and swapped in by rename,
//! so the directory holds the previous build or the new one, never a mix.

pub mod inputs;
pub mod out_dir;
pub mod update;

use std::collections::HashMap;
use std::fs;
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rayon::prelude::*;
use rustix::fs::{AtFlags, Mode, OFlags};
use rustix::io::Errno;

use crate::output::{Body, Output, Resource};
use crate::render::PageSink;
use crate::url::url_to_file;
use update::{Content, Stamp, Update, fill_stamped, write_stamped};

/// Writes every resource of `output` under `dir`, in parallel: on a busy disk each
/// `mkdir` and `create` waits on the journal, and thousands of them in a row dominate a
/// build. Returns the files written, relative to `dir`, with their stamps.
pub fn write_tree(output: &Output, dir: &Path) -> io::Result<Vec<(PathBuf, Option<Stamp>)>> {
    fs::create_dir_all(dir)?;
    let files: Vec<(PathBuf, &Resource)> = output
        .resources
        .iter()
        .filter_map(|(url, resource)| match url_to_file(url) {
            Some(rel) => Some((rel, resource)),
            None => {
                tracing::warn!(url, "skipping URL that has no safe file name");
                None
            }
        })
        .collect();
    // Every directory once, parents before children: one level at a time.
    let mut dirs: Vec<&Path> = files
        .iter()
        .flat_map(|(rel, _)| rel.ancestors().skip(1))
        .filter(|d| !d.as_os_str().is_empty())
        .collect();
    dirs.sort_by_key(|d| (d.components().count(), *d));
    dirs.dedup();
    for level in dirs.chunk_by(|a, b| a.components().count() == b.components().count()) {
        level
            .par_iter()
            .try_for_each(|rel| match fs::create_dir(dir.join(rel)) {
                Err(error) if error.kind() != io::ErrorKind::AlreadyExists => Err(error),
                _ => Ok(()),
            })?;
    }
    files
        .into_par_iter()
        .map(|(rel, resource)| {
            let path = dir.join(&rel);
            let stamp = match &resource.body {
                Body::Memory(bytes) => Some(write_stamped(&path, bytes)?),
                Body::Packed(packed) => Some(write_stamped(&path, &packed.unpack()?)?),
                Body::File(source) => {
                    fs::copy(source, &path)?;
                    Some(Stamp::copied(&fs::metadata(&path)?))
                }
            };
            Ok((rel, stamp))
        })
        .collect()
}

/// A sibling directory a build is written into before it replaces the output directory
/// whole (rename), so the output holds the previous build or the new one, never a mix.
/// Made only for an output directory [`out_dir::check`] allowed; it carries the marker
/// that lets the next build replace it.
#[derive(Debug)]
pub struct Staging {
    /// The checked output directory, symlinks resolved.
    out: PathBuf,
    staging: PathBuf,
    /// `staging`, open: each page is created relative to it, so the kernel walks only the
    /// page's own path, not the output's from `/` again for each of thousands of pages
    /// (a tenth of the time spent writing pages to tmpfs under a path like
    /// `/home/user/site/public`).
    dir: OwnedFd,
    /// Every file written into it so far, relative to it: the next manifest, known
    /// without walking the tree again (a walk of thousands of folders, on one thread,
    /// after the build).
    written: Mutex<Vec<(PathBuf, Option<Stamp>)>>,
}

impl Staging {
    /// Creates a fresh staging directory beside `out` (a name no one else uses: it is
    /// created, never taken over).
    pub fn new(out: &Path) -> io::Result<Staging> {
        let staging = sibling_dir(out, "sited-new")?;
        let dir = match rustix::fs::open(
            &staging,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(dir) => dir,
            Err(error) => {
                let _ = fs::remove_dir_all(&staging);
                return Err(error.into());
            }
        };
        let staging = Staging {
            out: out.to_path_buf(),
            staging,
            dir,
            written: Mutex::default(),
        };
        if let Err(error) = fs::write(staging.path().join(out_dir::MARKER), out_dir::MARKER_TEXT) {
            staging.discard();
            return Err(error);
        }
        Ok(staging)
    }

    pub fn path(&self) -> &Path {
        &self.staging
    }

    /// Writes the page for `url` into the staged tree.
    pub fn write_page(&self, url: &str, bytes: &[u8]) -> io::Result<()> {
        let rel = url_to_file(url)
            .ok_or_else(|| io::Error::other(format!("no safe file name for {url}")))?;
        if let Some(parent) = rel.parent().filter(|p| !p.as_os_str().is_empty()) {
            create_dir_all_at(&self.dir, parent)?;
        }
        let file = rustix::fs::openat(
            &self.dir,
            &rel,
            OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o666),
        )?;
        let stamp = fill_stamped(file.into(), bytes)?;
        self.record([(rel, Some(stamp))]);
        Ok(())
    }

    /// Writes every resource of `output` into the staged tree.
    pub fn write_tree(&self, output: &Output) -> io::Result<()> {
        let written = write_tree(output, &self.staging)?;
        self.record(written);
        Ok(())
    }

    fn record(&self, files: impl IntoIterator<Item = (PathBuf, Option<Stamp>)>) {
        let mut written = self.written.lock().unwrap_or_else(|e| e.into_inner());
        written.extend(files.into_iter().filter(|(rel, _)| !update::is_own(rel)));
    }

    /// Moves the staged build into place. The previous output is removed, after checking
    /// once more that it is still empty or sited's own.
    pub fn publish(self) -> io::Result<()> {
        if let Err(error) = out_dir::check_contents(&self.out, &self.out) {
            self.discard();
            return Err(io::Error::other(error.to_string()));
        }
        // The next build rewrites in place only what this one wrote.
        let written = std::mem::take(&mut *self.written.lock().unwrap_or_else(|e| e.into_inner()));
        write_manifest_or_discard(&self, &written)?;
        let parent = self.out.parent().unwrap_or(Path::new("/"));
        let name = self.out.file_name().unwrap_or_default().to_string_lossy();
        let old = parent.join(format!(".{name}.sited-old-{}", std::process::id()));
        let had_old = self.out.exists();
        if had_old && let Err(error) = fs::rename(&self.out, &old) {
            self.discard();
            return Err(error);
        }
        if let Err(error) = fs::rename(&self.staging, &self.out) {
            if had_old {
                let _ = fs::rename(&old, &self.out);
            }
            self.discard();
            return Err(error);
        }
        if had_old {
            fs::remove_dir_all(&old)?;
        }
        Ok(())
    }

    /// Throws the staged build away; the output is left as it was.
    pub fn discard(self) {
        let _ = fs::remove_dir_all(&self.staging);
    }
}

fn write_manifest_or_discard(
    staging: &Staging,
    written: &[(PathBuf, Option<Stamp>)],
) -> io::Result<()> {
    let entries = written.iter().map(|(rel, stamp)| (rel, stamp));
    update::write_manifest(&staging.staging, entries).inspect_err(|_| {
        let _ = fs::remove_dir_all(&staging.staging);
    })
}

/// Creates a fresh directory beside `out` for `purpose`: a name no one else uses (it is
/// created, never taken over), on the same file system, so its files can be renamed into
/// `out`.
pub(crate) fn sibling_dir(out: &Path, purpose: &str) -> io::Result<PathBuf> {
    let parent = out.parent().unwrap_or(Path::new("/"));
    fs::create_dir_all(parent)?;
    let name = out.file_name().unwrap_or_default().to_string_lossy();
    for attempt in 0u32.. {
        let dir = parent.join(format!(
            ".{name}.{purpose}-{}-{attempt}",
            std::process::id()
        ));
        match fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists && attempt < 100 => {}
            Err(error) => return Err(error),
        }
    }
    unreachable!("the loop returns")
}

/// Every file under `dir` (not folders; a symlink counts as a file and is not followed),
/// relative to it, leaving out the files sited keeps there for itself.
pub fn list_files(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for entry in fs::read_dir(dir.join(&rel))? {
            let entry = entry?;
            let path = rel.join(entry.file_name());
            if entry.file_type()?.is_dir() {
                stack.push(path);
            } else if !update::is_own(&path) {
                files.push(path);
            }
        }
    }
    Ok(files)
}

/// Where a build to disk goes: a whole new tree swapped in, or the earlier output
/// rewritten in place. Pages are put as they are rendered, from the build's threads.
#[derive(Debug)]
pub enum Sink {
    Whole(Staging),
    InPlace(Update),
}

impl Sink {
    /// The sink for the checked output directory `target`: in place when it is an earlier
    /// output with a manifest and `atomic` is off; whole otherwise (a fresh output, or one
    /// from a sited that replaced it whole, as its marker then promised). With `atomic`, an
    /// output holding files sited did not write is refused, since the swap would remove
    /// them.
    pub fn open(target: &Path, atomic: bool) -> Result<Sink, WriteError> {
        let previous = match fs::symlink_metadata(target.join(out_dir::MARKER)) {
            Ok(_) => update::read_listed(target)?,
            Err(_) => None,
        };
        match previous {
            Some(previous) if !atomic => Ok(Sink::InPlace(Update::new(target, previous)?)),
            Some(previous) => {
                let mut foreign: Vec<String> = list_files(target)?
                    .into_iter()
                    .filter(|rel| !previous.contains_key(rel))
                    .map(|rel| rel.display().to_string())
                    .collect();
                if !foreign.is_empty() {
                    foreign.sort();
                    return Err(out_dir::CheckError::from(out_dir::Refusal::Overwrite {
                        out: target.to_path_buf(),
                        more: foreign.len().saturating_sub(3),
                        examples: foreign.into_iter().take(3).collect(),
                    })
                    .into());
                }
                Ok(Sink::Whole(Staging::new(target)?))
            }
            None => Ok(Sink::Whole(Staging::new(target)?)),
        }
    }

    /// Puts the page for `url`.
    pub fn write_page(&self, url: &str, bytes: &[u8]) -> io::Result<()> {
        match self {
            Sink::Whole(staging) => staging.write_page(url, bytes),
            Sink::InPlace(update) => match safe_rel(url) {
                Some(rel) => update.put(&rel, Content::Bytes(bytes)),
                None => Ok(()),
            },
        }
    }

    /// Whether the page for `url` may stay as the last build wrote it: its file is one
    /// sited wrote and still shows that file's stamp (an in-place rewrite only). It is
    /// then part of this build's output, as if written.
    pub fn keep_page(&self, url: &str) -> bool {
        match self {
            Sink::Whole(_) => false,
            Sink::InPlace(update) => safe_rel(url).is_some_and(|rel| update.keep(&rel)),
        }
    }

    /// Puts every resource of `output` (what was not put as a page), in parallel.
    pub fn write_rest(&self, output: &Output) -> io::Result<()> {
        match self {
            Sink::Whole(staging) => staging.write_tree(output),
            Sink::InPlace(update) => output.resources.par_iter().try_for_each(|(url, resource)| {
                let Some(rel) = safe_rel(url) else {
                    return Ok(());
                };
                match &resource.body {
                    Body::Memory(bytes) => update.put(&rel, Content::Bytes(bytes)),
                    Body::Packed(packed) => update.put(&rel, Content::Bytes(&packed.unpack()?)),
                    Body::File(source) => update.put(&rel, Content::File(source)),
                }
            }),
        }
    }

    /// Makes the build the output.
    pub fn publish(self) -> Result<(), WriteError> {
        match self {
            Sink::Whole(staging) => Ok(staging.publish()?),
            Sink::InPlace(update) => update.publish().map(drop),
        }
    }

    /// Throws the build away; the output is left as it was.
    pub fn discard(self) {
        match self {
            Sink::Whole(staging) => staging.discard(),
            Sink::InPlace(update) => update.discard(),
        }
    }
}

/// A one-shot build's pages on their way to the output through a [`Sink`], each with the
/// hash of the context it was rendered from ([`crate::context`]): the next build does not
/// render a page whose context hashes the same and whose file is untouched
/// ([`inputs::Record::page_hashes`]).
#[derive(Debug)]
pub struct Pages {
    sink: Sink,
    /// URL → context hash of each page the last build wrote, when it was made by this
    /// sited with these options.
    last: HashMap<String, u64>,
    /// URL → context hash of each page of this build, written or kept.
    made: Mutex<Vec<(String, u64)>>,
}

impl Pages {
    pub fn new(sink: Sink, last: HashMap<String, u64>) -> Pages {
        Pages {
            sink,
            last,
            made: Mutex::default(),
        }
    }

    /// The sink, and the pages put through it with their context hashes.
    pub fn into_parts(self) -> (Sink, Vec<(String, u64)>) {
        let made = self.made.into_inner().unwrap_or_else(|e| e.into_inner());
        (self.sink, made)
    }

    fn made(&self, url: &str, hash: u64) {
        let mut made = self.made.lock().unwrap_or_else(|e| e.into_inner());
        made.push((url.to_string(), hash));
    }
}

impl PageSink for Pages {
    fn write(&self, url: &str, html: &[u8], hash: u64) -> io::Result<()> {
        self.sink.write_page(url, html)?;
        self.made(url, hash);
        Ok(())
    }

    fn keep(&self, url: &str, hash: u64) -> bool {
        let kept = self.last.get(url) == Some(&hash) && self.sink.keep_page(url);
        if kept {
            self.made(url, hash);
        }
        kept
    }
}

/// The file for `url` relative to the output, or `None` (with a warning) when it has no
/// safe file name or is one of the files sited keeps there for itself.
fn safe_rel(url: &str) -> Option<PathBuf> {
    match url_to_file(url) {
        Some(rel) if !update::is_own(&rel) => Some(rel),
        Some(_) => {
            tracing::warn!(url, "skipping a file named like sited's own bookkeeping");
            None
        }
        None => {
            tracing::warn!(url, "skipping URL that has no safe file name");
            None
        }
    }
}

/// Why a build to disk wrote nothing, or not all of it.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The output directory was refused (or could not be inspected) before a single file
    /// was touched.
    #[error(transparent)]
    Check(#[from] out_dir::CheckError),
    /// Writing failed; the output directory was left as it was.
    #[error("cannot write the output: {0}")]
    Io(#[from] io::Error),
    #[error(transparent)]
    Failed(#[from] crate::report::Failure),
}

/// `fs::create_dir_all` of `rel` under the open directory `dir`: an existing folder is
/// fine, anything else in its place is an error.
fn create_dir_all_at(dir: &OwnedFd, rel: &Path) -> io::Result<()> {
    match make_dir_at(dir, rel) {
        Err(Errno::NOENT) => {
            if let Some(parent) = rel.parent().filter(|p| !p.as_os_str().is_empty()) {
                create_dir_all_at(dir, parent)?;
            }
            Ok(make_dir_at(dir, rel)?)
        }
        made => Ok(made?),
    }
}

/// `mkdirat`, where a folder already there (made by another thread: pages of one folder
/// are written in parallel) is as good as made.
fn make_dir_at(dir: &OwnedFd, rel: &Path) -> Result<(), Errno> {
    match rustix::fs::mkdirat(dir, rel, Mode::from_raw_mode(0o777)) {
        Err(Errno::EXIST) => match rustix::fs::statat(dir, rel, AtFlags::empty()) {
            Ok(stat) if rustix::fs::FileType::from_raw_mode(stat.st_mode).is_dir() => Ok(()),
            _ => Err(Errno::EXIST),
        },
        made => made,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staged_pages_get_their_folders_and_a_file_in_a_folders_place_is_an_error() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let staging = Staging::new(&out).unwrap();
        // Folders three deep with no page of their own, then one of them as a page, then
        // a sibling in parallel: each page lands where its URL says.
        staging.write_page("/a/b/c/", b"c").unwrap();
        staging.write_page("/a/", b"a").unwrap();
        ["/a/b/d/", "/a/b/e/", "/a/b/f/", "/a/b/g/"]
            .par_iter()
            .try_for_each(|url| staging.write_page(url, url.as_bytes()))
            .unwrap();
        staging.write_page("/feed.xml", b"feed").unwrap();
        // A page in or under what is already a file cannot be written: an error, not a
        // panic, and nothing else is lost.
        let error = staging.write_page("/feed.xml/", b"x").unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::AlreadyExists, "{error}");
        let error = staging.write_page("/feed.xml/x/", b"x").unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::NotADirectory, "{error}");
        // Made as std makes them: the umask decides.
        let mode = |path: &Path| fs::metadata(path).unwrap().permissions().mode();
        fs::create_dir(dir.path().join("std-dir")).unwrap();
        fs::File::create(dir.path().join("std-file")).unwrap();
        assert_eq!(
            mode(&staging.path().join("a/b")),
            mode(&dir.path().join("std-dir"))
        );
        assert_eq!(
            mode(&staging.path().join("a/index.html")),
            mode(&dir.path().join("std-file"))
        );
        staging.publish().unwrap();
        let read = |rel: &str| fs::read_to_string(out.join(rel)).unwrap();
        assert_eq!(read("a/b/c/index.html"), "c");
        assert_eq!(read("a/index.html"), "a");
        assert_eq!(read("a/b/g/index.html"), "/a/b/g/");
        assert_eq!(read("feed.xml"), "feed");
        let listed = update::read_manifest(&out).unwrap().unwrap();
        assert_eq!(listed.len(), 7, "{listed:?}");
    }

    #[test]
    fn publish_replaces_previous_output_whole() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("public");
        let mut output = Output::default();
        output
            .resources
            .insert("/".into(), Resource::html("home".into()));
        output
            .resources
            .insert("/a/".into(), Resource::html("a".into()));
        let write = |output: &Output| {
            let staging = Staging::new(&out).unwrap();
            staging.write_tree(output).unwrap();
            staging.publish().unwrap();
        };
        write(&output);
        fs::write(out.join("stale.html"), "old").unwrap();
        output.resources.remove("/a/");
        write(&output);
        assert_eq!(fs::read_to_string(out.join("index.html")).unwrap(), "home");
        assert!(!out.join("a").exists());
        assert!(!out.join("stale.html").exists());
        assert!(out.join(out_dir::MARKER).is_file());
        let leftovers: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "staging dirs left behind");
    }

    #[test]
    fn publish_refuses_an_output_that_became_foreign_meanwhile() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("public");
        let staging = Staging::new(&out).unwrap();
        fs::create_dir(&out).unwrap();
        fs::write(out.join("precious.txt"), "mine").unwrap();
        assert!(staging.publish().is_err());
        assert_eq!(
            fs::read_to_string(out.join("precious.txt")).unwrap(),
            "mine"
        );
        let leftovers: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "staging dir left behind");
    }
}
