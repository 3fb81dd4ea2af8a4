//! Where the daemon's files live, resolved in one place for both sides.
//!
//! `SITED_HOME` relocates everything (tests, power users): `$SITED_HOME/run` holds the
//! socket and lock, `$SITED_HOME/state` the state file and logs. Without it, the runtime
//! dir is `$XDG_RUNTIME_DIR/sited`, or, where there is none (root shells, containers,
//! macOS), a private `run/` inside the state dir: never a shared `/tmp` path that
//! cleaners delete or other users can squat.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The environment variable that relocates every path sited uses.
pub const HOME_ENV: &str = "SITED_HOME";

/// `sun_path` is 108 bytes on Linux and 104 on the BSDs and macOS, NUL included.
#[cfg(target_os = "linux")]
const SOCKET_PATH_MAX: usize = 107;
#[cfg(not(target_os = "linux"))]
const SOCKET_PATH_MAX: usize = 103;

#[derive(Debug, thiserror::Error)]
pub enum PathsError {
    #[error("cannot find a home directory for the current user (set {HOME_ENV})")]
    NoHome,
    #[error(
        "socket path {} is {len} bytes, over this system's limit of {SOCKET_PATH_MAX}; \
         set {HOME_ENV} to a shorter directory",
        path.display()
    )]
    SocketPathTooLong { path: PathBuf, len: usize },
    #[error("cannot create {}: {source}", path.display())]
    CreateDir { path: PathBuf, source: io::Error },
    #[error(
        "{} is owned by uid {owner}, not by you (uid {me}); refusing to use it",
        path.display()
    )]
    NotOwner { path: PathBuf, owner: u32, me: u32 },
}

impl PathsError {
    /// True when trying again cannot help: the configuration itself is unusable (no
    /// home, a socket path over the limit, a runtime dir owned by someone else).
    pub fn is_permanent(&self) -> bool {
        !matches!(self, PathsError::CreateDir { .. })
    }
}

/// Every file location sited uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    /// Private (0700) directory for the socket and the lock.
    pub runtime_dir: PathBuf,
    /// Directory for `state.json` and the daemon log.
    pub state_dir: PathBuf,
    /// The RPC socket, mode 0600.
    pub socket: PathBuf,
    /// Held with an exclusive `flock` by the live daemon; contains its pid.
    pub lock: PathBuf,
    /// Persisted detached sites.
    pub state_file: PathBuf,
    /// Where a detached daemon writes its log.
    pub log_file: PathBuf,
}

impl Paths {
    /// Resolves paths from the environment: `SITED_HOME` if set, else the platform's dirs.
    pub fn from_env() -> Result<Paths, PathsError> {
        match std::env::var_os(HOME_ENV) {
            Some(home) if !home.is_empty() => Paths::under(Path::new(&home)),
            _ => Paths::platform(),
        }
    }

    /// Every path below one directory.
    pub fn under(home: &Path) -> Result<Paths, PathsError> {
        let home = absolute(home);
        Paths::from_dirs(home.join("run"), home.join("state"))
    }

    fn platform() -> Result<Paths, PathsError> {
        let dirs = directories::ProjectDirs::from("", "", "sited").ok_or(PathsError::NoHome)?;
        let state_dir = dirs
            .state_dir()
            .unwrap_or_else(|| dirs.data_local_dir())
            .to_path_buf();
        let runtime_dir = match dirs.runtime_dir() {
            Some(dir) => dir.to_path_buf(),
            None => state_dir.join("run"),
        };
        Paths::from_dirs(runtime_dir, state_dir)
    }

    fn from_dirs(runtime_dir: PathBuf, state_dir: PathBuf) -> Result<Paths, PathsError> {
        let socket = runtime_dir.join("sited.sock");
        let len = socket.as_os_str().len();
        if len > SOCKET_PATH_MAX {
            return Err(PathsError::SocketPathTooLong { path: socket, len });
        }
        Ok(Paths {
            lock: runtime_dir.join("sited.lock"),
            state_file: state_dir.join("state.json"),
            log_file: state_dir.join("sited.log"),
            socket,
            runtime_dir,
            state_dir,
        })
    }

    /// Creates both directories if needed. The runtime dir is made 0700 and must belong
    /// to the current user: anyone who can write there could impersonate the daemon.
    pub fn ensure_dirs(&self) -> Result<(), PathsError> {
        create_private_dir(&self.state_dir)?;
        create_private_dir(&self.runtime_dir)?;
        let meta = fs::metadata(&self.runtime_dir).map_err(|source| PathsError::CreateDir {
            path: self.runtime_dir.clone(),
            source,
        })?;
        let me = current_uid();
        if meta.uid() != me {
            return Err(PathsError::NotOwner {
                path: self.runtime_dir.clone(),
                owner: meta.uid(),
                me,
            });
        }
        if meta.permissions().mode() & 0o077 != 0 {
            fs::set_permissions(&self.runtime_dir, fs::Permissions::from_mode(0o700)).map_err(
                |source| PathsError::CreateDir {
                    path: self.runtime_dir.clone(),
                    source,
                },
            )?;
        }
        Ok(())
    }
}

fn create_private_dir(path: &Path) -> Result<(), PathsError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(|source| PathsError::CreateDir {
            path: path.to_path_buf(),
            source,
        })
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// The effective uid of this process.
pub fn current_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    #[allow(unsafe_code)]
    unsafe {
        libc::geteuid()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sited_home_relocates_everything() {
        let home = tempfile::tempdir().unwrap();
        let paths = Paths::under(home.path()).unwrap();
        for path in [
            &paths.socket,
            &paths.lock,
            &paths.state_file,
            &paths.log_file,
        ] {
            assert!(path.starts_with(home.path()), "{} escaped", path.display());
        }
        paths.ensure_dirs().unwrap();
        let mode = fs::metadata(&paths.runtime_dir)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
    }

    #[test]
    fn overlong_socket_path_is_a_clear_error() {
        let deep = PathBuf::from("/tmp").join("d".repeat(120));
        let error = Paths::under(&deep).unwrap_err();
        assert!(matches!(error, PathsError::SocketPathTooLong { .. }));
        assert!(error.to_string().contains(HOME_ENV));
    }

    #[test]
    fn loose_runtime_dir_is_tightened() {
        let home = tempfile::tempdir().unwrap();
        let paths = Paths::under(home.path()).unwrap();
        fs::create_dir_all(&paths.runtime_dir).unwrap();
        fs::set_permissions(&paths.runtime_dir, fs::Permissions::from_mode(0o777)).unwrap();
        paths.ensure_dirs().unwrap();
        let mode = fs::metadata(&paths.runtime_dir)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
    }
}
