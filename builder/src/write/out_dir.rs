//! Where `sited build` may write. A build replaces its output directory whole, so before a
//! single file is touched the directory must be proven sited's to replace: missing, empty,
//! or holding the marker an earlier `sited build` left there. The site itself, its
//! sources, any folder that holds the site and the home directory are refused even then.

use std::ffi::OsString;
use std::fmt;
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

/// The file every output directory written by `sited build` carries, proving the next
/// build may replace it.
pub const MARKER: &str = ".sited-output";

/// What the marker file says to a person who finds it.
pub const MARKER_TEXT: &str = "This directory was written by `sited build`. The next build rewrites the files it \
     wrote (listed in .sited-manifest) and leaves every other file alone.\n";

/// Why an output directory was refused. Nothing was read beyond the directory's listing
/// and nothing was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// `--out` names something that is not a directory (a file, a device).
    NotADirectory(PathBuf),
    /// A symlink that leads nowhere.
    DanglingSymlink(PathBuf),
    /// The site's root folder.
    SiteRoot(PathBuf),
    /// A folder that holds the site.
    AncestorOfSite(PathBuf),
    /// The home directory, or a folder that holds it.
    Home(PathBuf),
    /// The site's content, static or templates folder, or a folder inside one.
    InsideSources { out: PathBuf, folder: &'static str },
    /// A folder the next build would read back as content.
    InsideContent(PathBuf),
    /// A directory with files sited did not write.
    Foreign {
        out: PathBuf,
        examples: Vec<String>,
        more: usize,
    },
    /// Files in sited's earlier output that sited did not write, which this build would
    /// overwrite (or, with `--atomic`, remove).
    Overwrite {
        out: PathBuf,
        examples: Vec<String>,
        more: usize,
    },
}

impl Refusal {
    /// Something concrete to do about it.
    pub fn hint(&self) -> String {
        match self {
            Refusal::Foreign { .. } => format!(
                "sited build replaces its output directory whole, so it writes only to a \
                 missing or empty directory, or to its own earlier output (which holds a \
                 {MARKER} file); choose another --out, or empty that directory yourself if \
                 nothing in it is needed"
            ),
            Refusal::Overwrite { .. } => "sited build rewrites only the files it wrote \
                 itself: move those files elsewhere, or choose another --out"
                .to_string(),
            _ => "choose another --out, e.g. a new folder such as SITE/public".to_string(),
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::NotADirectory(out) => write!(
                f,
                "refusing to write the site to {}: it is a file, not a directory; it was \
                 left as it was",
                out.display()
            ),
            Refusal::DanglingSymlink(out) => write!(
                f,
                "refusing to write the site to {}: it is a symlink to nothing",
                out.display()
            ),
            Refusal::SiteRoot(out) => write!(
                f,
                "refusing to write the site to {}: it is the site's own folder, and writing \
                 there would replace the site",
                out.display()
            ),
            Refusal::AncestorOfSite(out) => write!(
                f,
                "refusing to write the site to {}: that folder holds the site, and writing \
                 there would replace the site",
                out.display()
            ),
            Refusal::Home(out) => write!(
                f,
                "refusing to write the site to {}: it is or holds the home directory",
                out.display()
            ),
            Refusal::InsideSources { out, folder } => write!(
                f,
                "refusing to write the site to {}: it is inside the site's {folder}/ folder, \
                 which the build reads",
                out.display()
            ),
            Refusal::InsideContent(out) => write!(
                f,
                "refusing to write the site to {}: the site's content is its whole folder, so \
                 the next build would read the output back as content (use SITE/public)",
                out.display()
            ),
            Refusal::Foreign {
                out,
                examples,
                more,
            } => {
                write!(
                    f,
                    "refusing to write the site to {}: it holds files sited did not write (",
                    out.display()
                )?;
                let quoted: Vec<String> = examples.iter().map(|e| format!("`{e}`")).collect();
                write!(f, "{}", quoted.join(", "))?;
                if *more > 0 {
                    write!(f, " and {more} more")?;
                }
                write!(f, ")")
            }
            Refusal::Overwrite {
                out,
                examples,
                more,
            } => {
                write!(
                    f,
                    "refusing to write the site to {}: the build would replace files there \
                     that sited did not write (",
                    out.display()
                )?;
                let quoted: Vec<String> = examples
                    .iter()
                    .map(|e| format!("`{}`", escape_controls(e)))
                    .collect();
                write!(f, "{}", quoted.join(", "))?;
                if *more > 0 {
                    write!(f, " and {more} more")?;
                }
                write!(f, "); nothing was changed")
            }
        }
    }
}

impl std::error::Error for Refusal {}

/// The site folders an output must stay out of.
#[derive(Debug, Clone)]
pub struct SiteFolders {
    /// Canonical site root.
    pub root: PathBuf,
    /// The content folder; the root itself when the site has no `content/`.
    pub content: PathBuf,
    pub static_dir: Option<PathBuf>,
    pub templates: Option<PathBuf>,
}

/// Names at the top of a site whose root is its content that the walk never reads as
/// content, so an output may live there.
const OUTPUT_NAMES_AT_ROOT: &[&str] = &["public", "target"];

/// Checks that `out` may be replaced by a build of the site in `site`, and returns the
/// directory to write: `out` with every symlink resolved, so a symlinked output folder is
/// replaced where it points and the symlink is kept. `home` is the user's home directory,
/// when known.
pub fn check(site: &SiteFolders, out: &Path, home: Option<&Path>) -> Result<PathBuf, CheckError> {
    let target = resolve(out)?;
    let home = home.and_then(|home| home.canonicalize().ok());
    if target == site.root {
        return Err(Refusal::SiteRoot(out.to_path_buf()).into());
    }
    if site.root.starts_with(&target) {
        return Err(Refusal::AncestorOfSite(out.to_path_buf()).into());
    }
    if home
        .as_deref()
        .is_some_and(|home| home.starts_with(&target))
    {
        return Err(Refusal::Home(out.to_path_buf()).into());
    }
    for (folder, name) in [
        (Some(&site.content), "content"),
        (site.static_dir.as_ref(), "static"),
        (site.templates.as_ref(), "templates"),
    ] {
        let Some(folder) = folder else { continue };
        if folder == &site.root {
            if let Ok(rel) = target.strip_prefix(&site.root) {
                let first = rel
                    .components()
                    .next()
                    .map(|c| c.as_os_str().to_string_lossy());
                let outside_content = first.is_some_and(|first| {
                    OUTPUT_NAMES_AT_ROOT.contains(&first.as_ref()) || first.starts_with('.')
                });
                if !outside_content {
                    return Err(Refusal::InsideContent(out.to_path_buf()).into());
                }
            }
        } else if target.starts_with(folder) {
            return Err(Refusal::InsideSources {
                out: out.to_path_buf(),
                folder: name,
            }
            .into());
        }
    }
    check_contents(out, &target)?;
    Ok(target)
}

/// Whether the directory at `target` (if any) is empty or sited's own output.
pub fn check_contents(out: &Path, target: &Path) -> Result<(), CheckError> {
    let meta = match fs::metadata(target) {
        Ok(meta) => meta,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(CheckError::Io(error)),
    };
    if !meta.is_dir() {
        return Err(Refusal::NotADirectory(out.to_path_buf()).into());
    }
    let marked = fs::symlink_metadata(target.join(MARKER)).is_ok_and(|m| m.is_file());
    if marked {
        return Ok(());
    }
    let mut names: Vec<OsString> = Vec::new();
    for entry in fs::read_dir(target)? {
        names.push(entry?.file_name());
    }
    if names.is_empty() {
        return Ok(());
    }
    names.sort();
    const SHOWN: usize = 3;
    let examples = names
        .iter()
        .take(SHOWN)
        .map(|name| escape_controls(&name.to_string_lossy()))
        .collect();
    Err(Refusal::Foreign {
        out: out.to_path_buf(),
        examples,
        more: names.len().saturating_sub(SHOWN),
    }
    .into())
}

/// `out` made absolute with every symlink resolved. For a path that does not exist yet,
/// its nearest existing ancestor is resolved and the rest appended.
fn resolve(out: &Path) -> Result<PathBuf, CheckError> {
    let absolute = std::path::absolute(out)?;
    match fs::symlink_metadata(&absolute) {
        Ok(meta) if meta.file_type().is_symlink() => {
            return match absolute.canonicalize() {
                Ok(target) => Ok(target),
                Err(error) if error.kind() == io::ErrorKind::NotFound => {
                    Err(Refusal::DanglingSymlink(out.to_path_buf()).into())
                }
                Err(error) => Err(error.into()),
            };
        }
        Ok(_) => return Ok(absolute.canonicalize()?),
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        Err(error) => return Err(error.into()),
    }
    let mut missing = Vec::new();
    let mut existing = absolute.as_path();
    while fs::symlink_metadata(existing).is_err() {
        let Some(parent) = existing.parent() else {
            break;
        };
        missing.push(existing.components().next_back());
        existing = parent;
    }
    let mut resolved = existing.canonicalize()?;
    for component in missing.into_iter().rev().flatten() {
        match component {
            Component::Normal(name) => resolved.push(name),
            Component::ParentDir => {
                resolved.pop();
            }
            _ => {}
        }
    }
    Ok(resolved)
}

/// Why an output directory could not be used.
#[derive(Debug)]
pub enum CheckError {
    Refused(Refusal),
    Io(io::Error),
}

impl From<Refusal> for CheckError {
    fn from(refusal: Refusal) -> Self {
        CheckError::Refused(refusal)
    }
}

impl From<io::Error> for CheckError {
    fn from(error: io::Error) -> Self {
        CheckError::Io(error)
    }
}

impl fmt::Display for CheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckError::Refused(refusal) => refusal.fmt(f),
            CheckError::Io(error) => write!(f, "cannot inspect the output directory: {error}"),
        }
    }
}

impl std::error::Error for CheckError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CheckError::Refused(_) => None,
            CheckError::Io(error) => Some(error),
        }
    }
}

/// A file name as it may be shown on a terminal: control characters escaped (`\n`,
/// `\u{1b}`), so a hostile name cannot move the cursor or recolour the screen.
fn escape_controls(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().collect()
            } else {
                c.to_string()
            }
        })
        .collect()
}
