//! Whether a folder can be a site's root (S23: never a pseudo-file system).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use sited_proto::Error;

/// The kind of pseudo-file system `root` lies on (/proc, /sys, ...), if it does (S23).
fn pseudo_file_system(root: &Path) -> Option<&'static str> {
    let stat = rustix::fs::statfs(root).ok()?;
    // Magic numbers from linux/magic.h.
    #[allow(clippy::unreadable_literal)]
    let kind = match stat.f_type as u64 {
        0x9fa0 => "proc",
        0x62656572 => "sysfs",
        0x1cd1 => "devpts",
        0x27e0eb => "cgroup",
        0x63677270 => "cgroup2",
        0x64626720 => "debugfs",
        0x74726163 => "tracefs",
        0x73636673 => "securityfs",
        0xcafe4a11 => "bpf",
        0x62656570 => "configfs",
        0x6165676c => "pstore",
        0x65735543 => "fusectl",
        _ => return None,
    };
    Some(kind)
}

/// Checks that a root can be served and returns its canonical form.
pub(super) fn check_root(root: &Path) -> Result<PathBuf, Error> {
    if !root.is_absolute() {
        return Err(Error::RootNotAbsolute {
            path: root.to_path_buf(),
        });
    }
    let meta = fs::metadata(root).map_err(|error| match error.kind() {
        io::ErrorKind::NotFound => Error::RootMissing {
            path: root.to_path_buf(),
        },
        _ => Error::RootUnreadable {
            path: root.to_path_buf(),
            message: error.to_string(),
        },
    })?;
    if !meta.is_dir() {
        return Err(Error::RootNotDirectory {
            path: root.to_path_buf(),
        });
    }
    fs::read_dir(root).map_err(|error| Error::RootUnreadable {
        path: root.to_path_buf(),
        message: error.to_string(),
    })?;
    if let Some(kind) = pseudo_file_system(root) {
        return Err(Error::RootUnreadable {
            path: root.to_path_buf(),
            message: format!(
                "it is on a {kind} pseudo-file system, which holds no site (and whose \
                 endless files no watch can follow)"
            ),
        });
    }
    root.canonicalize().map_err(|error| Error::RootUnreadable {
        path: root.to_path_buf(),
        message: error.to_string(),
    })
}
