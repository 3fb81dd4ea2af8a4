//! Rewriting an earlier output in place: most builds change few files, and on a disk every
//! file created or unlinked waits on the journal, so only files whose bytes changed are
//! written and only files that are gone are removed. Which files are sited's is what the
//! previous build listed in [`MANIFEST`]; every other file in the folder is left alone,
//! and a build that would write over one is refused before anything is touched.
//!
//! Changed files are written beside the output first ([`Update::pending`]) while the build
//! runs, and moved into place one rename each only once the build succeeded: a failed
//! build leaves the output as it was, and a reader never sees a half-written file.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use rayon::prelude::*;

use super::out_dir::{self, MARKER, Refusal};
use super::{WriteError, sibling_dir};

/// The list of files the last build wrote, beside [`MARKER`]: after a first line
/// [`VERSION`], one entry per file, each ended by a NUL byte (a file name may hold a
/// newline): its [`Stamp`] as four numbers (or `-`), a space, and its path relative to
/// the output. A manifest without the first line (sited before stamps) is paths alone.
pub const MANIFEST: &str = ".sited-manifest";

/// What the last build to publish into the output kept for the next one, beside the
/// manifest ([`super::inputs`]).
pub const INPUTS: &str = ".sited-inputs";

/// The first line of a manifest with stamps.
const VERSION: &str = "sited-manifest 2\n";

/// What the manifest lists: each file sited wrote, and its stamp when it has one.
pub type Listed = HashMap<PathBuf, Option<Stamp>>;

/// What a file sited wrote looked like once written: its size, modification time and
/// inode, and a hash of its bytes. A file that still shows the same size, time and inode
/// is taken to hold the same bytes, as `make` and `rsync` take it, so a rebuild tells an
/// unchanged file by one `stat` and the hash of the new bytes, without reading the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    len: u64,
    /// Nanoseconds since the epoch.
    modified: i128,
    inode: u64,
    hash: u64,
}

impl Stamp {
    /// The stamp of a file holding `bytes`, as `meta` shows it.
    fn of(meta: &fs::Metadata, bytes: &[u8]) -> Stamp {
        Stamp {
            hash: hash(bytes),
            ..Stamp::shown(meta)
        }
    }

    /// What `meta` shows of a file (its hash left 0: not compared by [`Stamp::holds`]).
    fn shown(meta: &fs::Metadata) -> Stamp {
        Stamp {
            len: meta.len(),
            modified: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
            inode: meta.ino(),
            hash: 0,
        }
    }

    /// The stamp of a file copied from a static file: what `meta` shows, its hash left 0.
    /// The copy is still compared with its source by every build; the stamp tells a
    /// build with nothing changed ([`super::inputs`]) that the copy is as it was written.
    pub(super) fn copied(meta: &fs::Metadata) -> Stamp {
        Stamp::shown(meta)
    }

    /// Whether the file `meta` describes is still the one stamped: same size, time and
    /// inode.
    pub(super) fn holds(&self, meta: &fs::Metadata) -> bool {
        let shown = Stamp::shown(meta);
        (self.len, self.modified, self.inode) == (shown.len, shown.modified, shown.inode)
    }

    /// A stamp from its four numbers as the manifest writes them.
    fn parse([len, modified, inode, hash]: [&str; 4]) -> Option<Stamp> {
        Some(Stamp {
            len: len.parse().ok()?,
            modified: modified.parse().ok()?,
            inode: inode.parse().ok()?,
            hash: u64::from_str_radix(hash, 16).ok()?,
        })
    }
}

/// A hash of a file's bytes for its [`Stamp`]: xxh3, the same in every run. Another
/// sited's hashes may differ (those of SipHash, before 2026-12-03); its files then read
/// as changed and are written once more, which costs time, never a stale file.
fn hash(bytes: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(bytes)
}

/// The files an output's manifest lists, or `None` when it has none (an output of an
/// older sited, which replaced its output whole).
pub fn read_manifest(out: &Path) -> io::Result<Option<HashSet<PathBuf>>> {
    Ok(read_listed(out)?.map(|listed| listed.into_keys().collect()))
}

/// The files an output's manifest lists, with their stamps, or `None` when it has none.
pub fn read_listed(out: &Path) -> io::Result<Option<Listed>> {
    let bytes = match fs::read(out.join(MANIFEST)) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error),
    };
    let (stamped, entries) = match bytes.strip_prefix(VERSION.as_bytes()) {
        Some(rest) => (true, rest),
        None => (false, &bytes[..]),
    };
    let mut listed = Listed::new();
    for entry in entries.split(|b| *b == 0).filter(|e| !e.is_empty()) {
        let entry = String::from_utf8_lossy(entry);
        let (stamp, name) = match entry.splitn(5, ' ').collect::<Vec<_>>()[..] {
            _ if !stamped => (None, &*entry),
            ["-", name] => (None, name),
            [len, modified, inode, hash, name] => {
                (Stamp::parse([len, modified, inode, hash]), name)
            }
            _ => continue,
        };
        listed.insert(PathBuf::from(name), stamp);
    }
    Ok(Some(listed))
}

/// Writes `files` as `dir`'s manifest, atomically (a temp file renamed over it).
pub fn write_manifest<'a>(
    dir: &Path,
    files: impl IntoIterator<Item = (&'a PathBuf, &'a Option<Stamp>)>,
) -> io::Result<()> {
    let mut entries: Vec<(&PathBuf, Option<Stamp>)> = files
        .into_iter()
        .map(|(name, stamp)| (name, *stamp))
        .collect();
    // By bytes, not by path components: the order only has to be stable, and comparing
    // thousands of paths component by component was a serial tail of every build.
    entries.sort_unstable_by(|(a, _), (b, _)| a.as_os_str().cmp(b.as_os_str()));
    // A file listed twice (written twice) keeps no stamp: which write was last is not
    // known here, and a stamp must never vouch for bytes the file does not hold.
    entries.dedup_by(|later, kept| {
        let same = later.0 == kept.0;
        if same && later.1 != kept.1 {
            kept.1 = None;
        }
        same
    });
    use std::fmt::Write as _;
    // Written in place, an entry's numbers without a string of their own: formatting
    // thousands of entries was a serial tail of every build.
    let mut text = String::with_capacity(VERSION.len() + entries.len() * 96);
    text.push_str(VERSION);
    for (name, stamp) in entries {
        match stamp {
            Some(s) => {
                let _ = write!(
                    text,
                    "{} {} {} {:016x} ",
                    s.len, s.modified, s.inode, s.hash
                );
            }
            None => text.push_str("- "),
        }
        text.push_str(&name.to_string_lossy());
        text.push('\0');
    }
    let temp = dir.join(format!("{MANIFEST}.new"));
    fs::write(&temp, text)?;
    fs::rename(temp, dir.join(MANIFEST))
}

/// Writes `bytes` to a new file at `path` and returns its stamp.
pub fn write_stamped(path: &Path, bytes: &[u8]) -> io::Result<Stamp> {
    fill_stamped(fs::File::create(path)?, bytes)
}

/// Writes `bytes` to `file`, just created, and returns its stamp.
pub fn fill_stamped(mut file: fs::File, bytes: &[u8]) -> io::Result<Stamp> {
    file.write_all(bytes)?;
    Ok(Stamp::of(&file.metadata()?, bytes))
}

/// An in-place rewrite of the output at `out`, under way.
#[derive(Debug)]
pub struct Update {
    out: PathBuf,
    /// Beside the output (the same file system, so a rename moves a file into place):
    /// every changed file, named by a counter, until [`Update::publish`].
    pending: PathBuf,
    /// What the previous build wrote: the only files this one may overwrite or remove.
    previous: Listed,
    counter: AtomicUsize,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Every file this build makes, changed or not, and its stamp: the next manifest.
    made: Vec<(PathBuf, Option<Stamp>)>,
    /// Changed files: where they go, where they wait.
    changed: Vec<(PathBuf, PathBuf)>,
    /// Files in the output that sited did not write and this build would overwrite.
    foreign: Vec<PathBuf>,
}

/// What a file's bytes come from.
#[derive(Debug, Clone, Copy)]
pub enum Content<'a> {
    Bytes(&'a [u8]),
    File(&'a Path),
}

impl Update {
    /// Starts rewriting `out`, whose manifest listed `previous`.
    pub fn new(out: &Path, previous: Listed) -> io::Result<Update> {
        Ok(Update {
            out: out.to_path_buf(),
            pending: sibling_dir(out, "sited-pending")?,
            previous,
            counter: AtomicUsize::new(0),
            state: Mutex::new(State::default()),
        })
    }

    /// Puts the file `rel` (relative to the output): compared with what is there, and
    /// written beside the output only when it differs.
    pub fn put(&self, rel: &Path, content: Content<'_>) -> io::Result<()> {
        let path = self.out.join(rel);
        let (verdict, stamp) = match fs::symlink_metadata(&path) {
            Ok(meta) if !meta.is_file() => (Verdict::Foreign, None),
            Ok(meta) => match self.previous.get(rel) {
                None => (Verdict::Foreign, None),
                Some(stamp) => judge(&path, &meta, *stamp, &content)?,
            },
            Err(error) if error.kind() == io::ErrorKind::NotFound => (Verdict::Changed, None),
            Err(error) => return Err(error),
        };
        let (waiting, stamp) = match verdict {
            Verdict::Changed => {
                let waiting = self
                    .pending
                    .join(self.counter.fetch_add(1, Ordering::Relaxed).to_string());
                // A rename keeps a file's size, time and inode: the stamp stays true
                // once it is moved into place.
                let stamp = match content {
                    Content::Bytes(bytes) => Some(write_stamped(&waiting, bytes)?),
                    Content::File(source) => {
                        fs::copy(source, &waiting)?;
                        Some(Stamp::copied(&fs::metadata(&waiting)?))
                    }
                };
                (Some(waiting), stamp)
            }
            _ => (None, stamp),
        };
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match (verdict, waiting) {
            (Verdict::Foreign, _) => state.foreign.push(rel.to_path_buf()),
            (_, Some(waiting)) => state.changed.push((rel.to_path_buf(), waiting)),
            _ => {}
        }
        state.made.push((rel.to_path_buf(), stamp));
        Ok(())
    }

    /// Keeps the file `rel` as the previous build wrote it, when it did and the file
    /// still shows the stamp it was written with; `false` (nothing done) otherwise.
    pub fn keep(&self, rel: &Path) -> bool {
        let Some(Some(stamp)) = self.previous.get(rel) else {
            return false;
        };
        let holds = fs::symlink_metadata(self.out.join(rel))
            .is_ok_and(|meta| meta.is_file() && stamp.holds(&meta));
        if holds {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            state.made.push((rel.to_path_buf(), Some(*stamp)));
        }
        holds
    }

    /// Moves every changed file into place, removes the files the previous build wrote
    /// and this one did not, and records the new list. Refused, with nothing touched,
    /// when the build would overwrite a file sited did not write, or when the output is no
    /// longer sited's.
    pub fn publish(self) -> Result<Stats, WriteError> {
        let state = std::mem::take(&mut *self.state.lock().unwrap_or_else(|e| e.into_inner()));
        if !state.foreign.is_empty() {
            let mut names: Vec<String> = state
                .foreign
                .iter()
                .map(|rel| rel.display().to_string())
                .collect();
            names.sort();
            self.discard();
            return Err(out_dir::CheckError::from(Refusal::Overwrite {
                out: self.out.clone(),
                examples: names.iter().take(3).cloned().collect(),
                more: names.len().saturating_sub(3),
            })
            .into());
        }
        if let Err(error) = out_dir::check_contents(&self.out, &self.out) {
            self.discard();
            return Err(error.into());
        }
        let made: Listed = state.made.into_iter().collect();
        // Listed before they exist, so that a build stopped half way still knows them
        // as its own next time (without stamps: a stamp is only ever trusted for a file
        // moved into place).
        if made.keys().any(|rel| !self.previous.contains_key(rel)) {
            let unstamped = made.keys().map(|rel| (rel, &None));
            write_manifest(&self.out, self.previous.iter().chain(unstamped))?;
        }
        let mut dirs: Vec<&Path> = state
            .changed
            .iter()
            .filter_map(|(rel, _)| rel.parent())
            .filter(|dir| !dir.as_os_str().is_empty())
            .collect();
        dirs.sort();
        dirs.dedup();
        dirs.par_iter()
            .try_for_each(|dir| fs::create_dir_all(self.out.join(dir)))?;
        state
            .changed
            .par_iter()
            .try_for_each(|(rel, waiting)| fs::rename(waiting, self.out.join(rel)))?;
        let gone: Vec<&PathBuf> = self
            .previous
            .keys()
            .filter(|rel| !made.contains_key(*rel))
            .collect();
        gone.par_iter()
            .try_for_each(|rel| match fs::remove_file(self.out.join(rel)) {
                Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
                _ => Ok(()),
            })?;
        self.remove_emptied_dirs(&gone);
        write_manifest(&self.out, &made)?;
        let _ = fs::remove_dir_all(&self.pending);
        Ok(Stats {
            written: state.changed.len(),
            removed: gone.len(),
        })
    }

    /// Removes the folders that removing `gone` left empty, deepest first; a folder that
    /// still holds anything (the user's files too) stays.
    fn remove_emptied_dirs(&self, gone: &[&PathBuf]) {
        let mut dirs: Vec<&Path> = gone
            .iter()
            .flat_map(|rel| rel.ancestors().skip(1))
            .filter(|dir| !dir.as_os_str().is_empty())
            .collect();
        dirs.sort_by_key(|dir| std::cmp::Reverse(dir.components().count()));
        dirs.dedup();
        for dir in dirs {
            let _ = fs::remove_dir(self.out.join(dir));
        }
    }

    /// Throws the changed files away; the output is left as it was.
    pub fn discard(&self) {
        let _ = fs::remove_dir_all(&self.pending);
    }
}

/// What an in-place rewrite did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    pub written: usize,
    pub removed: usize,
}

#[derive(Debug, Clone, Copy)]
enum Verdict {
    Same,
    Changed,
    Foreign,
}

/// Whether the file at `path` (`meta`) holds `content`, and its stamp if it does. A file
/// its stamp still holds for is judged by hashes; any other is read and compared.
fn judge(
    path: &Path,
    meta: &fs::Metadata,
    stamp: Option<Stamp>,
    content: &Content<'_>,
) -> io::Result<(Verdict, Option<Stamp>)> {
    if let (Some(stamp), Content::Bytes(bytes)) = (stamp, content)
        && stamp.holds(meta)
    {
        return Ok(
            match stamp.len == bytes.len() as u64 && stamp.hash == hash(bytes) {
                true => (Verdict::Same, Some(stamp)),
                false => (Verdict::Changed, None),
            },
        );
    }
    Ok(match same_content(path, meta.len(), content)? {
        true => {
            let stamp = match content {
                Content::Bytes(bytes) => Stamp::of(meta, bytes),
                Content::File(_) => Stamp::copied(meta),
            };
            (Verdict::Same, Some(stamp))
        }
        false => (Verdict::Changed, None),
    })
}

/// Whether the file at `path` (`len` bytes long) holds exactly `content`: sizes first, so
/// most changed files are told apart without reading them.
fn same_content(path: &Path, len: u64, content: &Content<'_>) -> io::Result<bool> {
    match content {
        Content::Bytes(bytes) => Ok(len == bytes.len() as u64 && fs::read(path)? == *bytes),
        Content::File(source) => {
            if fs::metadata(source)?.len() != len {
                return Ok(false);
            }
            same_files(path, source)
        }
    }
}

/// Compares two files of equal length a block at a time (a static file may be large).
fn same_files(a: &Path, b: &Path) -> io::Result<bool> {
    let (mut a, mut b) = (fs::File::open(a)?, fs::File::open(b)?);
    let (mut left, mut right) = (vec![0; 64 * 1024], vec![0; 64 * 1024]);
    loop {
        let n = a.read(&mut left)?;
        if n == 0 {
            return Ok(b.read(&mut right[..1])? == 0);
        }
        b.read_exact(&mut right[..n])?;
        if left[..n] != right[..n] {
            return Ok(false);
        }
    }
}

/// Whether `name` is one of the files sited keeps in an output for itself.
pub fn is_own(rel: &Path) -> bool {
    [MARKER, MANIFEST, INPUTS]
        .iter()
        .any(|own| rel == Path::new(own))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;
    use crate::output::Output;
    use crate::write::Sink;

    /// Writes `pages` (URL, HTML) into `out` as `sited build` does, in place when it can.
    fn build(out: &Path, pages: &[(&str, &str)]) -> Result<(), WriteError> {
        let sink = Sink::open(out, false)?;
        for (url, html) in pages {
            sink.write_page(url, html.as_bytes())?;
        }
        sink.write_rest(&Output::default())?;
        sink.publish()
    }

    /// Inode and modification time of `rel` under `out`: both change when a file is
    /// replaced or rewritten.
    fn identity(out: &Path, rel: &str) -> (u64, i64, i64) {
        let meta = fs::metadata(out.join(rel)).unwrap();
        (meta.ino(), meta.mtime(), meta.mtime_nsec())
    }

    const SITE: &[(&str, &str)] = &[("/", "home"), ("/a/", "page a"), ("/b/", "page b")];

    fn built_once() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("public");
        build(&out, SITE).unwrap();
        (dir, out)
    }

    #[test]
    fn a_fresh_output_lists_what_it_wrote() {
        let (_dir, out) = built_once();
        let listed = read_manifest(&out).unwrap().expect("a manifest");
        let expected: HashSet<PathBuf> = ["index.html", "a/index.html", "b/index.html"]
            .into_iter()
            .map(PathBuf::from)
            .collect();
        assert_eq!(listed, expected);
        assert!(out.join(MARKER).is_file());
    }

    #[test]
    fn an_unchanged_rebuild_writes_nothing() {
        let (dir, out) = built_once();
        let before: Vec<_> = ["index.html", "a/index.html", "b/index.html", MANIFEST]
            .iter()
            .map(|rel| identity(&out, rel))
            .collect();
        let sink = Sink::open(&out, false).unwrap();
        assert!(
            matches!(sink, Sink::InPlace(_)),
            "an earlier output is rewritten in place"
        );
        for (url, html) in SITE {
            sink.write_page(url, html.as_bytes()).unwrap();
        }
        let Sink::InPlace(update) = sink else {
            unreachable!()
        };
        let stats = update.publish().unwrap();
        assert_eq!(
            stats,
            Stats {
                written: 0,
                removed: 0
            }
        );
        let after: Vec<_> = ["index.html", "a/index.html", "b/index.html"]
            .iter()
            .map(|rel| identity(&out, rel))
            .collect();
        assert_eq!(before[..3], after[..]);
        let leftovers: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "pending dir left behind");
    }

    #[test]
    fn one_changed_page_rewrites_only_it() {
        let (_dir, out) = built_once();
        let home = identity(&out, "index.html");
        let b = identity(&out, "b/index.html");
        let a = identity(&out, "a/index.html");
        build(&out, &[("/", "home"), ("/a/", "page A"), ("/b/", "page b")]).unwrap();
        assert_eq!(
            fs::read_to_string(out.join("a/index.html")).unwrap(),
            "page A"
        );
        assert_ne!(identity(&out, "a/index.html"), a, "replaced by a new file");
        assert_eq!(identity(&out, "index.html"), home);
        assert_eq!(identity(&out, "b/index.html"), b);
    }

    #[test]
    fn a_file_its_stamp_holds_for_is_trusted_without_being_read() {
        let (_dir, out) = built_once();
        // Other bytes of the same size, with the time and inode put back: only a reader
        // of the file could tell. Trusted like make and rsync trust size and time.
        let path = out.join("a/index.html");
        let modified = fs::metadata(&path).unwrap().modified().unwrap();
        let file = fs::OpenOptions::new().write(true).open(&path).unwrap();
        (&file).write_all(b"PAGE a").unwrap();
        file.set_modified(modified).unwrap();
        drop(file);
        build(&out, SITE).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "PAGE a");
    }

    #[test]
    fn a_file_changed_since_it_was_written_is_compared_and_mended() {
        let (_dir, out) = built_once();
        let path = out.join("a/index.html");
        let old = fs::metadata(&path).unwrap().modified().unwrap();
        let file = fs::OpenOptions::new().write(true).open(&path).unwrap();
        (&file).write_all(b"PAGE a").unwrap();
        file.set_modified(old + std::time::Duration::from_secs(1))
            .unwrap();
        drop(file);
        build(&out, SITE).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "page a");
        // And a file rewritten by the build is stamped anew: the next build trusts it.
        let a = identity(&out, "a/index.html");
        build(&out, SITE).unwrap();
        assert_eq!(identity(&out, "a/index.html"), a);
    }

    #[test]
    fn a_manifest_without_stamps_is_read_and_stamped_by_the_next_build() {
        let (_dir, out) = built_once();
        fs::write(
            out.join(MANIFEST),
            "index.html\0a/index.html\0b/index.html\0",
        )
        .unwrap();
        let home = identity(&out, "index.html");
        build(&out, &[("/", "home"), ("/a/", "page a")]).unwrap();
        assert_eq!(identity(&out, "index.html"), home, "compared, unchanged");
        assert!(!out.join("b").exists(), "listed, so removed");
        let listed = read_listed(&out).unwrap().unwrap();
        assert_eq!(listed.len(), 2);
        assert!(listed.values().all(Option::is_some), "{listed:?}");
    }

    #[test]
    fn a_deleted_page_is_removed_with_its_emptied_folder() {
        let (_dir, out) = built_once();
        build(&out, &[("/", "home"), ("/a/", "page a")]).unwrap();
        assert!(!out.join("b").exists());
        assert!(out.join("a/index.html").is_file());
        let listed = read_manifest(&out).unwrap().unwrap();
        assert!(!listed.contains(Path::new("b/index.html")));
    }

    #[test]
    fn files_sited_did_not_write_are_kept() {
        let (_dir, out) = built_once();
        fs::write(out.join("CNAME"), "example.com").unwrap();
        fs::write(out.join("b/notes.txt"), "mine").unwrap();
        build(&out, &[("/", "home")]).unwrap();
        assert_eq!(
            fs::read_to_string(out.join("CNAME")).unwrap(),
            "example.com"
        );
        assert_eq!(fs::read_to_string(out.join("b/notes.txt")).unwrap(), "mine");
        assert!(!out.join("b/index.html").exists());
        assert!(!out.join("a").exists());
    }

    #[test]
    fn a_build_that_would_overwrite_a_users_file_is_refused_untouched() {
        let (_dir, out) = built_once();
        fs::create_dir(out.join("c")).unwrap();
        fs::write(out.join("c/index.html"), "mine").unwrap();
        let a = identity(&out, "a/index.html");
        let error = build(&out, &[("/", "home"), ("/a/", "new a"), ("/c/", "page c")])
            .expect_err("refused");
        assert!(error.to_string().contains("c/index.html"), "{error}");
        assert_eq!(
            fs::read_to_string(out.join("c/index.html")).unwrap(),
            "mine"
        );
        assert_eq!(
            identity(&out, "a/index.html"),
            a,
            "nothing else changed either"
        );
    }

    #[test]
    fn atomic_refuses_an_output_holding_a_users_file() {
        let (_dir, out) = built_once();
        fs::write(out.join("CNAME"), "example.com").unwrap();
        let error = Sink::open(&out, true).expect_err("the swap would remove CNAME");
        assert!(error.to_string().contains("CNAME"), "{error}");
        fs::remove_file(out.join("CNAME")).unwrap();
        let sink = Sink::open(&out, true).unwrap();
        assert!(matches!(sink, Sink::Whole(_)));
        sink.write_page("/", b"swapped").unwrap();
        sink.publish().unwrap();
        assert!(!out.join("a").exists(), "replaced whole");
        assert_eq!(read_manifest(&out).unwrap().unwrap().len(), 1);
    }

    #[test]
    fn a_discarded_build_leaves_the_output_untouched() {
        let (dir, out) = built_once();
        let a = identity(&out, "a/index.html");
        let sink = Sink::open(&out, false).unwrap();
        sink.write_page("/a/", b"half way").unwrap();
        sink.write_page("/new/", b"new").unwrap();
        sink.discard();
        assert_eq!(identity(&out, "a/index.html"), a);
        assert!(!out.join("new").exists());
        let leftovers: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "pending dir left behind");
    }

    #[test]
    fn a_failing_build_leaves_the_output_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let site = dir.path().join("site");
        fs::create_dir_all(site.join("content")).unwrap();
        fs::write(
            site.join("site.toml"),
            "base_url = \"https://example.com/\"\n",
        )
        .unwrap();
        fs::write(site.join("content/index.md"), "# Home\n").unwrap();
        fs::write(site.join("content/a.md"), "# A\n").unwrap();
        let out = dir.path().join("public");
        let options = || crate::Options {
            strict: true,
            ..crate::Options::default()
        };
        let built = crate::build_to(&site, options(), &out, None).unwrap();
        assert!(!built.report.has_errors(), "{:?}", built.report);
        let files = crate::write::list_files(&out).unwrap();
        let before: Vec<_> = files
            .iter()
            .map(|rel| (rel.clone(), identity(&out, rel.to_str().unwrap())))
            .collect();
        fs::write(site.join("content/a.md"), "# A changed\n[x](/nowhere/)\n").unwrap();
        let built = crate::build_to(&site, options(), &out, None).unwrap();
        assert!(
            built.report.has_errors(),
            "strict makes the broken link an error"
        );
        let after: Vec<_> = files
            .iter()
            .map(|rel| (rel.clone(), identity(&out, rel.to_str().unwrap())))
            .collect();
        assert_eq!(before, after);
        assert_eq!(crate::write::list_files(&out).unwrap().len(), files.len());
    }
}
