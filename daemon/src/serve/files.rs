//! Opening the files a build vetted so that nothing swapped in since can redirect the
//! read: every path is resolved beneath a handle on the site's directory, and no
//! component of it, directory or file, may be a symlink at the moment it is opened
//! (SCENARIOS S20: `static/sub` replaced by a link to `~/.ssh` while requests run).
//!
//! The build stores canonical paths (symlinks inside the site already resolved), so a
//! symlink met here was put there after the build and is refused. Linux ≥ 5.6 does the
//! whole walk in the kernel with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`;
//! elsewhere (older kernels, seccomp filters that refuse the call, macOS) the walk is
//! done one component at a time with `openat(O_NOFOLLOW)` from the directory handle.

use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rustix::fs::{Mode, OFlags};

/// Where a site's files may be opened from: a directory handle and the path it was
/// opened by. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Files {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// The canonical path `dir` was opened by; build paths are made relative to it.
    base: PathBuf,
    dir: OwnedFd,
    /// Cleared once `openat2` turns out to be unavailable, so the fallback is taken
    /// without asking the kernel again.
    openat2: AtomicBool,
}

impl Files {
    /// Files beneath the directory `base` (canonical), which is opened now: later
    /// renames of `base` or its parents do not move what is served.
    pub fn beneath(base: &Path) -> io::Result<Files> {
        let dir = rustix::fs::open(base, dir_flags(), Mode::empty())?;
        Ok(Files::from_dir(base.to_path_buf(), dir))
    }

    /// Files anywhere on the file system, still with no symlink on the way: for builds
    /// served without a site root (tests, tools).
    pub fn anywhere() -> Files {
        let dir = rustix::fs::open("/", dir_flags(), Mode::empty())
            .expect("the root directory can be opened");
        Files::from_dir(PathBuf::from("/"), dir)
    }

    fn from_dir(base: PathBuf, dir: OwnedFd) -> Files {
        Files {
            inner: Arc::new(Inner {
                base,
                dir,
                openat2: AtomicBool::new(cfg!(any(target_os = "linux", target_os = "android"))),
            }),
        }
    }

    /// The directory files are opened beneath.
    pub fn base(&self) -> &Path {
        &self.inner.base
    }

    /// Opens the regular file at `path` (absolute, as the build stored it) for reading.
    /// Fails with `PermissionDenied` for a path outside the base, and with the OS's
    /// error (`ELOOP`, `ENOTDIR`, `EXDEV`…) when a component is a symlink now; a
    /// directory, FIFO or device in its place is refused without blocking.
    pub fn open(&self, path: &Path) -> io::Result<std::fs::File> {
        let relative = self.relative(path)?;
        regular(self.open_relative(&relative)?)
    }

    /// `path` below the base, as plain names only.
    fn relative(&self, path: &Path) -> io::Result<PathBuf> {
        let outside = || {
            io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "{} is not inside {}",
                    path.display(),
                    self.inner.base.display()
                ),
            )
        };
        let rest = path.strip_prefix(&self.inner.base).map_err(|_| outside())?;
        if rest.as_os_str().is_empty()
            || !rest.components().all(|c| matches!(c, Component::Normal(_)))
        {
            return Err(outside());
        }
        Ok(rest.to_path_buf())
    }

    fn open_relative(&self, relative: &Path) -> io::Result<OwnedFd> {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        if self.inner.openat2.load(Ordering::Relaxed) {
            use rustix::fs::ResolveFlags;
            match rustix::fs::openat2(
                &self.inner.dir,
                relative,
                file_flags(),
                Mode::empty(),
                ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
            ) {
                // ENOSYS: a kernel before 5.6; EPERM: a seccomp filter that does not know
                // the call. Either way the answer will not change: walk by hand from now.
                Err(rustix::io::Errno::NOSYS | rustix::io::Errno::PERM) => {
                    tracing::debug!("openat2 is unavailable; opening files component by component");
                    self.inner.openat2.store(false, Ordering::Relaxed);
                }
                // The walk met a symlink: say so in the error, like the fallback's ELOOP.
                Err(rustix::io::Errno::XDEV) => return Err(symlink_error()),
                other => return other.map_err(io::Error::from),
            }
        }
        walk(&self.inner.dir, relative)
    }
}

/// `fd` as a file to read, if it is a regular file.
fn regular(fd: OwnedFd) -> io::Result<std::fs::File> {
    let file = std::fs::File::from(fd);
    if !file.metadata()?.is_file() {
        return Err(io::Error::other("not a regular file"));
    }
    // Opened non-blocking so a FIFO cannot hang the open; regular files ignore the
    // flag, but clear it anyway so reads behave as documented everywhere.
    rustix::fs::fcntl_setfl(file.as_fd(), OFlags::empty())?;
    Ok(file)
}

/// The portable walk: each directory opened from its parent's handle without following
/// a symlink, then the file the same way.
fn walk(dir: &OwnedFd, relative: &Path) -> io::Result<OwnedFd> {
    let names: Vec<&OsStr> = relative.iter().collect();
    let (file, parents) = names.split_last().expect("relative paths are not empty");
    let mut held: Option<OwnedFd> = None;
    for name in parents {
        let parent = held.as_ref().unwrap_or(dir);
        held =
            Some(rustix::fs::openat(parent, *name, dir_flags(), Mode::empty()).map_err(nofollow)?);
    }
    let parent = held.as_ref().unwrap_or(dir);
    rustix::fs::openat(parent, *file, file_flags(), Mode::empty()).map_err(nofollow)
}

/// `O_NOFOLLOW` on a symlink fails with `ELOOP` (Linux) or `EMLINK`/`EFTYPE` (BSDs);
/// a symlink in a directory's place with `O_DIRECTORY | O_NOFOLLOW` gives `ENOTDIR` or
/// `ELOOP`. Those are all "a symlink is in the way".
fn nofollow(errno: rustix::io::Errno) -> io::Error {
    match errno {
        rustix::io::Errno::LOOP | rustix::io::Errno::MLINK => symlink_error(),
        other => io::Error::from(other),
    }
}

fn symlink_error() -> io::Error {
    io::Error::new(
        io::ErrorKind::PermissionDenied,
        "a component of the path is a symlink",
    )
}

fn dir_flags() -> OFlags {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let open = OFlags::PATH;
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let open = OFlags::RDONLY;
    open | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
}

fn file_flags() -> OFlags {
    OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::unix::fs::symlink;

    fn read(file: io::Result<std::fs::File>) -> io::Result<String> {
        let mut text = String::new();
        file?.read_to_string(&mut text)?;
        Ok(text)
    }

    /// A site with `static/sub/page.txt`, and a secret outside it.
    fn setup() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap().join("site");
        std::fs::create_dir_all(root.join("static/sub")).unwrap();
        std::fs::write(root.join("static/sub/page.txt"), "inside").unwrap();
        let outside = dir.path().canonicalize().unwrap().join("outside");
        std::fs::create_dir_all(outside.join("sub")).unwrap();
        std::fs::write(outside.join("sub/page.txt"), "SECRET").unwrap();
        (dir, root, outside)
    }

    fn both_ways(files: &Files, check: impl Fn(&dyn Fn(&Path) -> io::Result<String>)) {
        check(&|path| read(files.open(path)));
        check(&|path| {
            let relative = files.relative(path)?;
            read(walk(&files.inner.dir, &relative).and_then(regular))
        });
    }

    #[test]
    fn files_beneath_the_site_are_read() {
        let (_dir, root, _) = setup();
        let files = Files::beneath(&root).unwrap();
        both_ways(&files, |open| {
            assert_eq!(open(&root.join("static/sub/page.txt")).unwrap(), "inside");
        });
    }

    #[test]
    fn a_directory_swapped_for_a_symlink_is_refused() {
        let (_dir, root, outside) = setup();
        let files = Files::beneath(&root).unwrap();
        std::fs::rename(root.join("static"), root.join("static-old")).unwrap();
        symlink(&outside, root.join("static")).unwrap();
        both_ways(&files, |open| {
            let error = open(&root.join("static/sub/page.txt")).unwrap_err();
            assert_ne!(error.kind(), io::ErrorKind::NotFound, "{error}");
        });
        // Deeper too: the last directory is the link.
        std::fs::remove_file(root.join("static")).unwrap();
        std::fs::rename(root.join("static-old"), root.join("static")).unwrap();
        std::fs::rename(root.join("static/sub"), root.join("static/sub-old")).unwrap();
        symlink(outside.join("sub"), root.join("static/sub")).unwrap();
        both_ways(&files, |open| {
            assert!(open(&root.join("static/sub/page.txt")).is_err());
        });
    }

    #[test]
    fn a_file_swapped_for_a_symlink_is_refused_even_one_inside() {
        let (_dir, root, outside) = setup();
        let files = Files::beneath(&root).unwrap();
        let page = root.join("static/sub/page.txt");
        std::fs::remove_file(&page).unwrap();
        symlink(outside.join("sub/page.txt"), &page).unwrap();
        both_ways(&files, |open| assert!(open(&page).is_err()));
        std::fs::remove_file(&page).unwrap();
        std::fs::write(root.join("other.txt"), "inside too").unwrap();
        symlink(root.join("other.txt"), &page).unwrap();
        both_ways(&files, |open| assert!(open(&page).is_err()));
    }

    #[test]
    fn paths_outside_the_base_and_non_files_are_refused() {
        let (_dir, root, outside) = setup();
        let files = Files::beneath(&root).unwrap();
        both_ways(&files, |open| {
            for path in [
                outside.join("sub/page.txt"),
                root.join("static/../../outside/sub/page.txt"),
                root.clone(),
                root.join("static/sub"),
            ] {
                assert!(open(&path).is_err(), "{}", path.display());
            }
        });
        // A FIFO where a file was: refused at once, not a read that never returns.
        let fifo = root.join("static/sub/page.txt");
        std::fs::remove_file(&fifo).unwrap();
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if made.is_ok_and(|s| s.success()) {
            both_ways(&files, |open| assert!(open(&fifo).is_err()));
        }
    }

    #[test]
    fn the_handle_survives_a_rename_of_the_site() {
        let (dir, root, _) = setup();
        let files = Files::beneath(&root).unwrap();
        let moved = dir.path().canonicalize().unwrap().join("moved");
        std::fs::rename(&root, &moved).unwrap();
        // Paths are still those of the build; the handle follows the directory.
        assert_eq!(
            read(files.open(&root.join("static/sub/page.txt"))).unwrap(),
            "inside"
        );
    }

    #[test]
    fn anywhere_still_refuses_symlinks() {
        let (_dir, root, outside) = setup();
        let files = Files::anywhere();
        assert_eq!(
            read(files.open(&root.join("static/sub/page.txt"))).unwrap(),
            "inside"
        );
        std::fs::remove_dir_all(root.join("static/sub")).unwrap();
        symlink(outside.join("sub"), root.join("static/sub")).unwrap();
        assert!(files.open(&root.join("static/sub/page.txt")).is_err());
    }
}
