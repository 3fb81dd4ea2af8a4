//! What a build to disk keeps for the next one, in [`INPUTS`] beside the manifest:
//!
//! - A rebuild with nothing changed: the output is already what the build would make, so
//!   `sited build` says so and writes nothing, the way `make` leaves a target newer than
//!   its prerequisites alone. A build that published records what its bytes depend on
//!   (sited itself, the options, today's date, and every file under the site root, each by
//!   size, times and inode) and what it reported. The next build into that output takes
//!   the same fingerprint before anything else; when it matches and every file the
//!   manifest lists still shows the stamp it was written with, the recorded report stands.
//! - A rebuild with something changed: each page's context hash (what its template saw,
//!   [`crate::context`]). A page whose context hashes the same in a build by the same
//!   sited with the same options, and whose file still shows its stamp, is not rendered
//!   again ([`crate::write::Pages`]).
//!
//! Correct by construction or not at all: the fingerprint is a superset of what a build
//! reads (every file under the root, not only those the build uses, so an unrelated file
//! changed costs a rebuild, never a stale page), and anything it cannot vouch for (a
//! symlinked folder, a name that is not UTF-8, an unstamped output file) means a build.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use rayon::prelude::*;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::load::layout::Layout;
use crate::load::walk::{content_skip_at_top, is_markdown, leaves_out};
use crate::load::{FileStamp, stamp};
use crate::options::Options;
use crate::report::{Diagnostic, Report, Severity};

pub use super::update::INPUTS;
use super::update::{self, Listed};

/// Folders of version control, which no build reads and which change without any edit.
const VCS: &[&str] = &[".git", ".hg", ".svn", ".jj", ".bzr"];

/// A walk that finds more entries than this is not fingerprinted: a site that large
/// rebuilds rather than stat a million files to find out whether it must.
const MOST_ENTRIES: usize = 500_000;

/// The stamp a page gets in a fingerprint taken with [`Read::Deferred`] until
/// [`Inputs::settle`] puts in the one the build took as it opened the page; no file shows
/// it.
const DEFERRED: FileStamp = (u64::MAX, i64::MIN, i64::MIN, u64::MAX);

/// How the fingerprint's walk stamps the pages (Markdown under the content folder).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Read {
    /// Each by a stat of its own: the fingerprint is whole before the build starts, to
    /// compare with the record of the last build.
    Now,
    /// Each as the build opens it ([`crate::load::Parsed::opened`], a stat of the file
    /// already open): when no record is compared (a fresh output, `--force`), the
    /// fingerprint only has to be whole when it is recorded, and a stat of each of
    /// tldr's 7,425 pages by name was 15 ms of a 230 ms build. The stamp is still taken
    /// before the page's bytes are read: an edit after it shows next time.
    Deferred,
}

impl Read {
    /// How a build of the site `layout` describes stamps its pages; `compared`: whether
    /// the fingerprint is compared with a last build's record first. A book's pages are
    /// read before their own turn (SUMMARY.md as the book is loaded, a chapter by
    /// another's `{{#include}}`): a stamp taken at its turn could postdate bytes the
    /// build used, so a book stamps every page up front.
    pub fn for_site(layout: &Layout, compared: bool) -> Read {
        match compared || layout.book.is_some() {
            true => Read::Now,
            false => Read::Deferred,
        }
    }
}

/// Everything a build's bytes depend on, as seen before it starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inputs {
    /// sited itself (version and executable), the options, today's date (Hugo's
    /// `publishDate` in the future hides a page until that day).
    key: String,
    /// Every file under the site root by relative path, sorted; `None` when some part of
    /// the site cannot be vouched for.
    files: Option<Vec<(String, FileStamp)>>,
}

/// What is kept in [`INPUTS`].
#[derive(Debug, Serialize, Deserialize)]
pub struct Record {
    inputs: Inputs,
    /// URL → context hash of every page the build wrote.
    page_hashes: Vec<(String, u64)>,
    pages: usize,
    files: usize,
    diagnostics: Vec<Recorded>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Recorded {
    error: bool,
    file: String,
    line: Option<u32>,
    column: Option<u32>,
    message: String,
}

impl Inputs {
    /// The fingerprint of the site `layout` describes built with `options` into `out`
    /// (left out of the walk when it lies inside the root); `None` when sited cannot
    /// tell its own executable.
    pub fn take(layout: &Layout, options: &Options, out: &Path, pages: Read) -> Option<Inputs> {
        Some(Inputs {
            key: format!("{} root {:?}", key(options)?, layout.root),
            files: files(layout, out, pages),
        })
    }

    /// Puts in the stamps of the pages a fingerprint taken with [`Read::Deferred`] left
    /// out, from `opened` (what each file the build read showed as it was opened, by
    /// path). A page the build did not read (it could not be opened, or its walk did not
    /// take it after all) leaves the fingerprint vouching for nothing: the next build
    /// runs whole.
    pub fn settle<'a>(
        &mut self,
        root: &Path,
        opened: impl IntoIterator<Item = (&'a Path, FileStamp)>,
    ) {
        let Some(files) = &mut self.files else {
            return;
        };
        // By path from the root, as the walk names files: looking each page up by its
        // whole path, made anew for the look-up, was 2% of tldr's build.
        let opened: FxHashMap<Cow<'a, str>, FileStamp> = (opened.into_iter())
            .filter_map(|(path, stamp)| Some((rel_under(root, path)?, stamp)))
            .collect();
        for (rel, stamp) in files.iter_mut().filter(|(_, stamp)| *stamp == DEFERRED) {
            match opened.get(rel.as_str()) {
                Some(opened) => *stamp = *opened,
                None => {
                    self.files = None;
                    return;
                }
            }
        }
    }
}

/// `path` from `root` as the fingerprint's walk names it (parts joined by `/`), if it
/// is under it. Most paths are `root` and a plain rest, which is taken as it is.
fn rel_under<'a>(root: &Path, path: &'a Path) -> Option<Cow<'a, str>> {
    let plain = |rest: &str| !rest.is_empty() && rest.split('/').all(|p| !p.is_empty() && p != ".");
    let rest = (path.as_os_str().as_encoded_bytes())
        .strip_prefix(root.as_os_str().as_encoded_bytes())
        .and_then(|rest| rest.strip_prefix(b"/"))
        .and_then(|rest| std::str::from_utf8(rest).ok());
    if let Some(rest) = rest
        && plain(rest)
    {
        return Some(Cow::Borrowed(rest));
    }
    let parts: Vec<&str> = (path.strip_prefix(root).ok()?.components())
        .map(|part| part.as_os_str().to_str())
        .collect::<Option<_>>()?;
    Some(Cow::Owned(parts.join("/")))
}

/// Every file under the root, or `None` when some part of the site cannot be vouched for.
fn files(layout: &Layout, out: &Path, pages: Read) -> Option<Vec<(String, FileStamp)>> {
    // A config may put the content elsewhere (`contentDir = "../notes"`): the walk of
    // the root would not see it.
    let folders = [&layout.content_dir]
        .into_iter()
        .chain(&layout.static_dir)
        .chain(&layout.templates_dir);
    for folder in folders {
        if !folder.canonicalize().ok()?.starts_with(&layout.root) {
            return None;
        }
    }
    let skip = Skip {
        layout,
        out,
        pages,
        entries: AtomicUsize::new(0),
    };
    let mut files = walk(&layout.root, "", &skip)?;
    files.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    Some(files)
}
/// sited's identity, the options that change output, and the date.
fn key(options: &Options) -> Option<String> {
    let exe = fs::metadata(std::env::current_exe().ok()?).ok()?;
    let Options {
        drafts,
        strict,
        exclude,
        test_panic_function,
        pack_pages,
        progress: _,
        cancel: _,
        wanted: _,
        spill: _,
        after_spill: _,
    } = options;
    Some(format!(
        "sited {} exe {:?} drafts {drafts} strict {strict} panic {test_panic_function} \
         exclude {exclude:?} packed {pack_pages} today {}",
        env!("CARGO_PKG_VERSION"),
        stamp(&exe),
        crate::hugo::front_matter::today(),
    ))
}

/// What the fingerprint's walk leaves out: the output, excluded paths, and names the
/// build never reads (version control's folders).
struct Skip<'a> {
    layout: &'a Layout,
    out: &'a Path,
    /// How pages are stamped.
    pages: Read,
    /// Entries seen so far, by every folder's walk: past [`MOST_ENTRIES`], none goes on.
    entries: AtomicUsize,
}

/// Every file under `dir` (`rel` from the root); `None` when a part cannot be vouched
/// for. Folders are walked on every core: the fingerprint is taken before a build reads
/// anything, so its stat of every file was a serial start of every build (24 ms of 7,425
/// pages' one-shot build).
fn walk(dir: &Path, rel: &str, skip: &Skip<'_>) -> Option<Vec<(String, FileStamp)>> {
    // Worked out once for the folder, not for each of its pages.
    let pages_here = match skip.pages {
        Read::Deferred => pages_in(skip.layout, dir),
        Read::Now => PagesIn::None,
    };
    let entries: Vec<fs::DirEntry> = fs::read_dir(dir).ok()?.collect::<io::Result<_>>().ok()?;
    // Each entry on every core too: a big folder's (tldr's `common/`, 4,612 pages) was
    // a serial start of every build, its names made one by one.
    let taken: Vec<Taken> = entries
        .par_iter()
        .map(|entry| take(entry, rel, skip, pages_here))
        .collect::<Option<_>>()?;
    let mut files = Vec::with_capacity(taken.len());
    let mut folders = Vec::new();
    for taken in taken {
        match taken {
            Taken::Nothing => {}
            Taken::File(child, stamp) => files.push((child, stamp)),
            Taken::Link(link, target) => {
                files.push(link);
                files.extend(target);
            }
            Taken::Folder(path, child) => {
                // A folder counts by being there: a new `content/` changes what the
                // site is.
                files.push((format!("{child}/"), (0, 0, 0, 0)));
                folders.push((path, child));
            }
        }
    }
    let nested: Vec<Vec<(String, FileStamp)>> = (folders.par_iter())
        .map(|(path, child)| walk(path, child, skip))
        .collect::<Option<_>>()?;
    files.extend(nested.into_iter().flatten());
    Some(files)
}

/// What the fingerprint's walk takes of one entry of a folder.
enum Taken {
    Nothing,
    /// A file by its path from the root, and its stamp.
    File(String, FileStamp),
    /// A symlinked file: the link, and what it points at when that is there.
    Link((String, FileStamp), Option<(String, FileStamp)>),
    /// A folder, to be walked, by its path and its path from the root.
    Folder(PathBuf, String),
}

/// What the fingerprint's walk takes of `entry` of the folder `rel`; `None` when it
/// cannot be vouched for.
fn take(entry: &fs::DirEntry, rel: &str, skip: &Skip<'_>, pages_here: PagesIn) -> Option<Taken> {
    let name = entry.file_name();
    let name = name.to_str()?;
    let path = entry.path();
    // Hidden and temporary files count too: a book's `{{#include}}` or `additional-css`
    // may read them. Only version control's folders and sited's own staging beside an
    // output are left out.
    if VCS.contains(&name)
        || (name.starts_with('.') && name.contains(".sited-"))
        || path == skip.out
        || skip.layout.is_excluded(&path)
    {
        return Some(Taken::Nothing);
    }
    let child = if rel.is_empty() {
        name.to_string()
    } else {
        format!("{rel}/{name}")
    };
    if skip.entries.fetch_add(1, Ordering::Relaxed) >= MOST_ENTRIES {
        return None;
    }
    // A page the build will read is stamped as it opens it (see `Read::Deferred`).
    if pages_here.reads(name) && entry.file_type().ok()?.is_file() && is_markdown(Path::new(name)) {
        return Some(Taken::File(child, DEFERRED));
    }
    let meta = entry.metadata().ok()?;
    if meta.is_dir() {
        Some(Taken::Folder(path, child))
    } else if meta.file_type().is_symlink() {
        // The build reads a symlinked file inside the site through its link: both the
        // link and what it points at count. A symlinked folder is not vouched for.
        let target = fs::metadata(&path).ok();
        if target.as_ref().is_some_and(fs::Metadata::is_dir) {
            return None;
        }
        let target = target.map(|target| (child.clone(), stamp(&target)));
        Some(Taken::Link((format!("{child} ->"), stamp(&meta)), target))
    } else {
        Some(Taken::File(child, stamp(&meta)))
    }
}

/// Which Markdown files of a folder the sources' walk takes as pages: in the content
/// folder or a folder under it, none it leaves out, by its own rule
/// ([`leaves_out`]). One it would not take is stamped by the fingerprint's walk: were it
/// left for the build to stamp, the record would vouch for nothing (a whole build next
/// time, never a stale page).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PagesIn {
    /// None of them: the folder is outside the content or left out.
    None,
    /// Those the walk does not leave out: `at_top` in the content folder itself, where
    /// it also skips `skip`.
    Content {
        at_top: bool,
        skip: &'static [&'static str],
    },
}

fn pages_in(layout: &Layout, dir: &Path) -> PagesIn {
    let Ok(rel) = dir.strip_prefix(&layout.content_dir) else {
        return PagesIn::None;
    };
    let skip = content_skip_at_top(layout);
    let mut parts = rel.iter().map(|part| part.to_str().unwrap_or("."));
    let Some(first) = parts.next() else {
        return PagesIn::Content { at_top: true, skip };
    };
    match !leaves_out(first, true, skip) && parts.all(|part| !leaves_out(part, false, &[])) {
        true => PagesIn::Content {
            at_top: false,
            skip: &[],
        },
        false => PagesIn::None,
    }
}

impl PagesIn {
    /// Whether the file `name` in the folder is read as a page (if Markdown).
    fn reads(self, name: &str) -> bool {
        match self {
            PagesIn::None => false,
            PagesIn::Content { at_top, skip } => !leaves_out(name, at_top, skip),
        }
    }
}

impl Record {
    /// The record in the output `out`, if there is one that reads.
    pub fn read(out: &Path) -> Option<Record> {
        serde_json::from_slice(&fs::read(out.join(INPUTS)).ok()?).ok()
    }

    /// The report of the build that made the output `out`, when `inputs` are what it
    /// recorded and every file its manifest lists still shows the stamp it was written
    /// with: the output is what this build would make.
    pub fn up_to_date(&self, out: &Path, inputs: &Inputs, started: Instant) -> Option<Report> {
        if inputs.files.is_none() || self.inputs != *inputs {
            return None;
        }
        let listed: Listed = update::read_listed(out).ok()??;
        let intact = listed.par_iter().all(|(rel, stamp)| {
            stamp.is_some_and(|stamp| {
                fs::symlink_metadata(out.join(rel))
                    .is_ok_and(|meta| meta.is_file() && stamp.holds(&meta))
            })
        });
        if !intact {
            return None;
        }
        let diagnostics = self
            .diagnostics
            .iter()
            .map(|d| Diagnostic {
                severity: if d.error {
                    Severity::Error
                } else {
                    Severity::Warning
                },
                file: PathBuf::from(&d.file),
                line: d.line,
                column: d.column,
                message: d.message.clone(),
            })
            .collect();
        Some(Report {
            pages: self.pages,
            files: self.files,
            rendered: 0,
            kept: 0,
            duration: started.elapsed(),
            diagnostics,
            up_to_date: true,
        })
    }

    /// URL → context hash of the pages the recorded build wrote, when it was made by this
    /// sited with these options (`inputs`' key); empty otherwise.
    pub fn page_hashes(self, inputs: &Inputs) -> HashMap<String, u64> {
        match self.inputs.key == inputs.key {
            true => self.page_hashes.into_iter().collect(),
            false => HashMap::new(),
        }
    }
}

/// Forgets the record before a build changes the output: an output half rewritten must
/// never pass for the last build's.
pub fn forget(out: &Path) -> io::Result<()> {
    match fs::remove_file(out.join(INPUTS)) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
        _ => Ok(()),
    }
}

/// The record of `inputs`, the pages' context hashes and `report` as its file holds it,
/// made apart from writing it (while the output is still being published). `None` when
/// a report names a file by a path that is not UTF-8: it is not recorded (the next build
/// runs whole).
pub fn encode(
    inputs: Inputs,
    page_hashes: Vec<(String, u64)>,
    report: &Report,
) -> io::Result<Option<Vec<u8>>> {
    let diagnostics: Option<Vec<Recorded>> = report
        .diagnostics
        .iter()
        .map(|d| {
            Some(Recorded {
                error: d.is_error(),
                file: d.file.to_str()?.to_string(),
                line: d.line,
                column: d.column,
                message: d.message.clone(),
            })
        })
        .collect();
    let Some(diagnostics) = diagnostics else {
        return Ok(None);
    };
    let record = Record {
        inputs,
        page_hashes,
        pages: report.pages,
        files: report.files,
        diagnostics,
    };
    serde_json::to_vec(&record)
        .map(Some)
        .map_err(io::Error::other)
}

/// Writes a record [`encode`] made for the output `out`, which the build has just
/// published.
pub fn write_record(out: &Path, encoded: &[u8]) -> io::Result<()> {
    let temp = out.join(format!("{INPUTS}.new"));
    fs::write(&temp, encoded)?;
    fs::rename(temp, out.join(INPUTS))
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::io::Write;
    use std::os::unix::fs::MetadataExt;
    use std::path::{Path, PathBuf};

    use super::INPUTS;
    use crate::report::Report;
    use crate::{Options, ToDisk};

    /// A small site (one page with a link that leads nowhere, a static file) and where
    /// it is built to.
    struct Site {
        _dir: tempfile::TempDir,
        root: PathBuf,
        out: PathBuf,
    }

    impl Site {
        fn new() -> Site {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path().join("site");
            fs::create_dir_all(root.join("content")).unwrap();
            fs::create_dir_all(root.join("static")).unwrap();
            fs::write(root.join("content/index.md"), "# Home\n").unwrap();
            fs::write(root.join("content/a.md"), "# A\n\n[gone](/nowhere/)\n").unwrap();
            fs::write(root.join("static/style.css"), "body {}\n").unwrap();
            let out = dir.path().join("out");
            Site {
                _dir: dir,
                root,
                out,
            }
        }

        fn build_with(&self, options: Options, force: bool) -> Report {
            let how = ToDisk {
                force,
                ..ToDisk::default()
            };
            let built = crate::build_to_with(&self.root, options, &self.out, None, how).unwrap();
            assert!(!built.report.has_errors(), "{:?}", built.report);
            built.report
        }

        fn build(&self) -> Report {
            self.build_with(Options::default(), false)
        }

        /// Every file of the output but the record, with its inode and times: what a
        /// build that wrote nothing leaves as it was.
        fn identities(&self) -> Vec<(PathBuf, u64, i64, i64)> {
            let mut files: Vec<_> = crate::write::list_files(&self.out)
                .unwrap()
                .into_iter()
                .filter(|rel| rel != Path::new(INPUTS))
                .map(|rel| {
                    let meta = fs::metadata(self.out.join(&rel)).unwrap();
                    (rel, meta.ino(), meta.mtime(), meta.mtime_nsec())
                })
                .collect();
            files.sort();
            files
        }

        fn page(&self, rel: &str) -> String {
            fs::read_to_string(self.out.join(rel)).unwrap()
        }
    }

    /// A change made to a site, what it is, and what its output must show after it.
    type Change<'a> = (&'a str, &'a dyn Fn(&Path), &'a dyn Fn(&Site));

    /// Writes `bytes` over the file at `path` in place, keeping its size and putting its
    /// modification time back: only its change time (and its bytes) tell.
    fn overwrite_keeping_mtime(path: &Path, bytes: &[u8]) {
        assert_eq!(fs::metadata(path).unwrap().len(), bytes.len() as u64);
        let modified = fs::metadata(path).unwrap().modified().unwrap();
        let file = fs::OpenOptions::new().write(true).open(path).unwrap();
        (&file).write_all(bytes).unwrap();
        file.set_modified(modified).unwrap();
    }

    #[test]
    fn a_rebuild_with_nothing_changed_writes_nothing_and_reports_what_the_build_did() {
        let site = Site::new();
        let first = site.build();
        assert!(!first.up_to_date);
        assert!(first.warnings().count() > 0, "the link to /nowhere/ warns");
        let before = site.identities();
        let again = site.build();
        assert!(again.up_to_date, "{again:?}");
        assert_eq!(again.rendered, 0);
        assert_eq!((again.pages, again.files), (first.pages, first.files));
        assert_eq!(
            again.diagnostics, first.diagnostics,
            "warnings are told again"
        );
        assert_eq!(site.identities(), before, "nothing written");
    }

    #[test]
    fn any_change_to_the_site_builds_again() {
        let site = Site::new();
        site.build();
        let changes: [Change<'_>; 5] = [
            (
                "a page's bytes, same size and time",
                &|root| {
                    overwrite_keeping_mtime(
                        &root.join("content/a.md"),
                        b"# B\n\n[gone](/nowhere/)\n",
                    )
                },
                &|site| assert!(site.page("a/index.html").contains(">B</h1>")),
            ),
            (
                "a page added",
                &|root| fs::write(root.join("content/new.md"), "# New\n").unwrap(),
                &|site| assert!(site.out.join("new/index.html").is_file()),
            ),
            (
                "a page removed",
                &|root| fs::remove_file(root.join("content/new.md")).unwrap(),
                &|site| assert!(!site.out.join("new/index.html").exists()),
            ),
            (
                "a static file",
                &|root| fs::write(root.join("static/style.css"), "p {}\n").unwrap(),
                &|site| assert_eq!(site.page("style.css"), "p {}\n"),
            ),
            (
                "a template",
                &|root| {
                    fs::create_dir_all(root.join("templates")).unwrap();
                    fs::write(root.join("templates/page.html"), "PAGE {{ page.title }}").unwrap();
                },
                &|site| assert_eq!(site.page("a/index.html"), "PAGE B"),
            ),
        ];
        for (what, change, check) in changes {
            change(&site.root);
            let report = site.build();
            assert!(!report.up_to_date, "{what}: built again");
            check(&site);
            assert!(site.build().up_to_date, "{what}: then up to date");
        }
    }

    #[test]
    fn an_output_file_changed_or_gone_is_built_again_and_mended() {
        // Edited as a person or a tool would (a new modification time); one whose size,
        // time and inode were all put back is trusted, as `make` trusts it
        // (`update::tests::a_file_its_stamp_holds_for_is_trusted_without_being_read`).
        let site = Site::new();
        site.build();
        let page = site.out.join("a/index.html");
        let html = site.page("a/index.html");
        fs::write(&page, "X".repeat(html.len())).unwrap();
        assert!(!site.build().up_to_date);
        assert_eq!(site.page("a/index.html"), html);
        fs::write(site.out.join("style.css"), "xxxx {}\n").unwrap();
        assert!(
            !site.build().up_to_date,
            "a copied static file is stamped too"
        );
        assert_eq!(site.page("style.css"), "body {}\n");
        fs::remove_file(&page).unwrap();
        assert!(!site.build().up_to_date);
        assert_eq!(site.page("a/index.html"), html);
        assert!(site.build().up_to_date);
    }

    #[test]
    fn other_options_or_force_build_again() {
        let site = Site::new();
        site.build();
        let drafts = Options {
            drafts: true,
            ..Options::default()
        };
        assert!(!site.build_with(drafts, false).up_to_date);
        assert!(!site.build().up_to_date, "back to no drafts");
        assert!(
            !site.build_with(Options::default(), true).up_to_date,
            "forced"
        );
        assert!(site.build().up_to_date);
    }

    #[test]
    fn a_fresh_builds_pages_are_stamped_as_they_are_read_and_match_a_stamp_of_each() {
        let site = Site::new();
        // Markdown the build does not read as a page is stamped up front.
        fs::create_dir_all(site.root.join("content/.notes")).unwrap();
        fs::write(site.root.join("content/.notes/n.md"), "# N\n").unwrap();
        fs::write(site.root.join("content/.hidden.md"), "# H\n").unwrap();
        fs::write(site.root.join("README.md"), "# R\n").unwrap();
        // A page in a folder waits; one in a hidden folder below it does not.
        fs::create_dir_all(site.root.join("content/docs/.drafts")).unwrap();
        fs::write(site.root.join("content/docs/b.md"), "# B\n").unwrap();
        fs::write(site.root.join("content/docs/.drafts/c.md"), "# C\n").unwrap();
        // `.well-known/` at the top is the one hidden folder the sources' walk takes.
        fs::create_dir_all(site.root.join("content/.well-known/.old")).unwrap();
        fs::write(site.root.join("content/.well-known/about.md"), "# W\n").unwrap();
        fs::write(site.root.join("content/.well-known/.old/x.md"), "# X\n").unwrap();
        let layout =
            crate::load::layout::Layout::discover(&site.root, &[], &mut Vec::new()).unwrap();
        let options = Options::default();
        let deferred =
            super::Inputs::take(&layout, &options, &site.out, super::Read::Deferred).unwrap();
        let now = super::Inputs::take(&layout, &options, &site.out, super::Read::Now).unwrap();
        let stamps = |inputs: &super::Inputs| inputs.files.clone().unwrap();
        let pending: Vec<String> = (stamps(&deferred).into_iter())
            .filter(|(_, stamp)| *stamp == super::DEFERRED)
            .map(|(rel, _)| rel)
            .collect();
        assert_eq!(
            pending,
            [
                "content/.well-known/about.md",
                "content/a.md",
                "content/docs/b.md",
                "content/index.md"
            ],
            "only pages wait"
        );
        // Settled from what each page showed as it was opened: what a stat of each gives.
        let opened: Vec<(PathBuf, crate::load::FileStamp)> = (pending.iter())
            .map(|rel| {
                let path = site.root.join(rel);
                let stamp = crate::load::stamp(&fs::metadata(&path).unwrap());
                (path, stamp)
            })
            .collect();
        let by_path = || opened.iter().map(|(path, stamp)| (path.as_path(), *stamp));
        let mut settled = deferred.clone();
        settled.settle(&site.root, by_path());
        assert_eq!(settled, now);
        // However the path is spelled.
        let spelled: Vec<(PathBuf, crate::load::FileStamp)> = (opened.iter())
            .map(|(path, stamp)| {
                let rel = path.strip_prefix(&site.root).unwrap();
                (site.root.join(".").join(rel), *stamp)
            })
            .collect();
        let mut settled = deferred.clone();
        settled.settle(&site.root, spelled.iter().map(|(p, s)| (p.as_path(), *s)));
        assert_eq!(settled, now);
        // A page the build did not read leaves nothing vouched for.
        let mut unread = deferred;
        unread.settle(
            &site.root,
            by_path().filter(|(path, _)| !path.ends_with("content/a.md")),
        );
        assert_eq!(unread.files, None);
        // And a fresh build's record is what the next build's stamps show.
        site.build();
        assert!(site.build().up_to_date);
        assert_eq!(super::Read::for_site(&layout, false), super::Read::Deferred);
        assert_eq!(super::Read::for_site(&layout, true), super::Read::Now);
    }

    #[test]
    fn a_site_whose_content_is_its_root_defers_only_the_pages_it_reads() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("notes");
        for (rel, text) in [
            ("index.md", "# Home\n"),
            ("journal/monday.md", "# Monday\n"),
            ("journal/.trash/old.md", "# Old\n"),
            ("static/readme.md", "# Not a page\n"),
            ("templates/notes.md", "# Not a page\n"),
        ] {
            fs::create_dir_all(root.join(rel).parent().unwrap()).unwrap();
            fs::write(root.join(rel), text).unwrap();
        }
        let layout = crate::load::layout::Layout::discover(&root, &[], &mut Vec::new()).unwrap();
        assert_eq!(layout.content_dir, layout.root);
        let out = dir.path().join("out");
        let deferred =
            super::Inputs::take(&layout, &Options::default(), &out, super::Read::Deferred).unwrap();
        let pending: Vec<String> = (deferred.files.unwrap().into_iter())
            .filter(|(_, stamp)| *stamp == super::DEFERRED)
            .map(|(rel, _)| rel)
            .collect();
        assert_eq!(pending, ["index.md", "journal/monday.md"]);
        // What the build read settles the record: the next build finds nothing to do.
        let build = || {
            crate::build_to_with(&root, Options::default(), &out, None, ToDisk::default())
                .unwrap()
                .report
        };
        assert!(!build().up_to_date);
        assert!(build().up_to_date);
    }

    #[test]
    fn a_books_pages_are_stamped_before_the_build_reads_any() {
        // SUMMARY.md is read as the book is loaded, a chapter by another's include.
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("src")).unwrap();
        fs::write(dir.path().join("book.toml"), "[book]\ntitle = \"B\"\n").unwrap();
        fs::write(
            dir.path().join("src/SUMMARY.md"),
            "# Summary\n\n- [A](a.md)\n",
        )
        .unwrap();
        fs::write(dir.path().join("src/a.md"), "# A\n").unwrap();
        let layout =
            crate::load::layout::Layout::discover(dir.path(), &[], &mut Vec::new()).unwrap();
        assert!(layout.book.is_some());
        assert_eq!(super::Read::for_site(&layout, false), super::Read::Now);
    }

    #[test]
    fn a_missing_or_unreadable_record_builds_again() {
        let site = Site::new();
        site.build();
        fs::write(site.out.join(INPUTS), "{ not json").unwrap();
        assert!(!site.build().up_to_date);
        assert!(site.build().up_to_date, "recorded anew");
        fs::remove_file(site.out.join(INPUTS)).unwrap();
        assert!(!site.build().up_to_date);
    }

    #[test]
    fn version_control_and_an_output_inside_the_site_do_not_count() {
        let mut site = Site::new();
        site.out = site.root.join("public");
        site.build();
        assert!(site.build().up_to_date, "its own output is not an input");
        fs::create_dir_all(site.root.join(".git")).unwrap();
        fs::write(site.root.join(".git/index"), "changed").unwrap();
        assert!(site.build().up_to_date, "files no build reads");
        // A hidden file may be read (a book's `{{#include ../.snips/x.md}}`).
        fs::write(site.root.join(".snippet.md"), "hidden").unwrap();
        assert!(!site.build().up_to_date);
    }

    #[test]
    fn a_new_folder_or_a_moved_site_builds_again() {
        // Without `content/` the root is the content; a `content/` made empty changes that.
        let mut site = Site::new();
        site.build();
        fs::create_dir_all(site.root.join("content/empty")).unwrap();
        assert!(!site.build().up_to_date, "a folder counts by being there");
        // A site without a title is named after its folder.
        let moved = site.root.with_file_name("renamed");
        fs::rename(&site.root, &moved).unwrap();
        site.root = moved;
        assert!(!site.build().up_to_date, "another folder is another site");
        assert!(site.page("index.html").contains("renamed"));
    }

    #[test]
    fn content_outside_the_site_is_not_vouched_for() {
        let site = Site::new();
        let notes = site.root.parent().unwrap().join("notes");
        fs::create_dir_all(&notes).unwrap();
        fs::write(notes.join("n.md"), "# N\n").unwrap();
        fs::write(site.root.join("hugo.toml"), "contentDir = \"../notes\"\n").unwrap();
        site.build();
        assert!(
            site.out.join("n/index.html").is_file(),
            "the content is the notes"
        );
        assert!(!site.build().up_to_date, "builds every time");
    }

    #[test]
    fn a_symlinked_folder_is_not_vouched_for() {
        let site = Site::new();
        fs::create_dir_all(site.root.join("shared")).unwrap();
        std::os::unix::fs::symlink(site.root.join("shared"), site.root.join("content/linked"))
            .unwrap();
        site.build();
        assert!(!site.build().up_to_date, "builds every time");
    }

    fn copy_dir(from: &Path, to: &Path) {
        fs::create_dir_all(to).unwrap();
        for entry in fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let target = to.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                copy_dir(&entry.path(), &target);
            } else {
                fs::copy(entry.path(), &target).unwrap();
            }
        }
    }

    /// Every file under `dir` with its bytes, but sited's own bookkeeping.
    fn tree(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
        let mut files: Vec<_> = crate::write::list_files(dir)
            .unwrap()
            .into_iter()
            .filter(|rel| !crate::write::update::is_own(rel))
            .map(|rel| {
                let bytes = fs::read(dir.join(&rel)).unwrap();
                (rel, bytes)
            })
            .collect();
        files.sort();
        files
    }

    /// The pages a build keeps from the last one must be exactly what rendering them
    /// would give: after each edit, the output rewritten in place (keeping what it can)
    /// is compared with a fresh build of the same site, file by file.
    #[test]
    fn a_rebuild_keeping_unchanged_pages_makes_what_a_fresh_build_makes() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("blog");
        copy_dir(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/blog"),
            &root,
        );
        let out = dir.path().join("out");
        let build = |out: &Path| {
            let built = crate::build_to(&root, Options::default(), out, None).unwrap();
            assert!(!built.report.has_errors(), "{:?}", built.report);
            built.report
        };
        let first = build(&out);
        let post = root.join("content/posts/a-week-at-the-lighthouse.md");
        let edit = |path: &Path, from: &str, to: &str| {
            let text = fs::read_to_string(path).unwrap();
            assert!(text.contains(from), "{from} in {}", path.display());
            fs::write(path, text.replacen(from, to, 1)).unwrap();
        };
        // Listings and `site.recent_pages` show a page's summary and reading time, so an
        // edit of its first paragraph or length re-renders every page that shows them; one
        // further down of the same length, only the page itself.
        let edits: [(&str, &dyn Fn()); 9] = [
            ("deep in a body", &|| {
                edit(&post, "I overpacked", "I underpacked")
            }),
            ("a body", &|| edit(&post, "Last week", "Last month")),
            ("a summary", &|| edit(&post, "\n\nLast", "\n\nOnly last")),
            ("a title", &|| {
                edit(&post, "A Week at the Lighthouse", "Seven Days at the Light")
            }),
            ("tags", &|| {
                edit(&post, "\"travel\", \"coast\"", "\"travel\"")
            }),
            ("a date", &|| edit(&post, "2026-03-14", "2026-01-14")),
            ("the site's config", &|| {
                edit(&root.join("site.toml"), "Field Notes", "Field Book")
            }),
            ("a new page", &|| {
                fs::write(
                    root.join("content/posts/new.md"),
                    "+++\ntitle = \"New\"\ndate = 2026-05-01\n+++\nNew.\n",
                )
                .unwrap()
            }),
            ("a template", &|| {
                fs::create_dir_all(root.join("templates")).unwrap();
                fs::write(
                    root.join("templates/page.html"),
                    "<h1>{{ page.title }}</h1>{{ page.content }}",
                )
                .unwrap();
            }),
        ];
        let mut rendered = Vec::new();
        for (n, (what, change)) in edits.iter().enumerate() {
            change();
            let report = build(&out);
            assert!(!report.up_to_date, "{what}");
            rendered.push(report.rendered);
            let fresh = dir.path().join(format!("fresh-{n}"));
            build(&fresh);
            assert_eq!(tree(&out), tree(&fresh), "after {what}");
        }
        assert_eq!(
            first.rendered, first.pages,
            "the first build renders every page"
        );
        assert_eq!(rendered[0], 1, "an edit deep in one page renders it alone");
        assert_eq!(first.kept, 0, "a first build keeps nothing");
        assert_eq!(
            rendered[1], first.pages,
            "a summary shows on every page here"
        );
    }
}
