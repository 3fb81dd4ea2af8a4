//! Start and stop of the whole daemon: the single-instance lock, the RPC socket, signals,
//! and the one shutdown path every exit takes (signal, `shutdown` call, parent death):
//! cancel → every site stops concurrently → RPC closes → socket removed → lock released.
//!
//! Under a service manager it also tells the manager when it is ready and when it stops
//! ([`Notifier`]), and it can serve a socket the manager passed in (socket activation,
//! [`crate::activation`]) instead of binding its own; that socket's file belongs to the
//! manager and is left in place on exit, while the lock is still taken and released here.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sited_proto::{Paths, PathsError};
use tokio::net::UnixListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::notify::Notifier;
use crate::registry::{Registry, RegistryConfig};

/// Hard limit on a graceful shutdown; past it the daemon exits anyway.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(3);

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Paths(#[from] PathsError),
    #[error("sited is already running (pid {pid}); `sitectl daemon stop` stops it")]
    AlreadyRunning { pid: String },
    #[error("cannot use lock file {}: {source}", path.display())]
    Lock { path: PathBuf, source: io::Error },
    #[error("cannot listen on {}: {source}", path.display())]
    Socket { path: PathBuf, source: io::Error },
    #[error(
        "{} is a live socket that no sited owns: a service manager listens there \
         (systemd's sited.socket?); start sited through it (`systemctl --user start \
         sited.service`), or stop it first (`systemctl --user stop sited.socket`)",
        path.display()
    )]
    SocketInUse { path: PathBuf },
    #[error("cannot use the socket passed by the service manager: {0}")]
    Activated(io::Error),
}

impl DaemonError {
    /// True when starting again cannot help: another daemon owns this home, or a service
    /// manager owns its socket. Supervisors must not restart on these (see main.rs for
    /// the exit code this maps to).
    pub fn is_blocked(&self) -> bool {
        match self {
            DaemonError::AlreadyRunning { .. } | DaemonError::SocketInUse { .. } => true,
            DaemonError::Paths(error) => error.is_permanent(),
            _ => false,
        }
    }
}

/// How the daemon runs.
#[derive(Debug)]
pub struct DaemonConfig {
    pub paths: Paths,
    /// A listening socket a service manager passed in (socket activation). When set the
    /// daemon serves it instead of binding `paths.socket`, and leaves its file alone on
    /// exit: the manager owns it and keeps listening, to start the next daemon.
    pub inherited_socket: Option<std::os::unix::net::UnixListener>,
    /// Tells the service manager (systemd `Type=notify`) when the daemon is ready and
    /// when it stops; silent when no manager asked.
    pub notifier: Notifier,
    /// Where log lines are kept for `sitectl logs` (filled by the tracing layer the
    /// binary installs).
    pub logs: crate::logs::LogHub,
    /// Behaviour only tests ask for; all off by default.
    pub hooks: crate::hooks::TestHooks,
}

impl DaemonConfig {
    /// A daemon that binds its own socket and notifies nobody.
    pub fn new(paths: Paths) -> DaemonConfig {
        DaemonConfig {
            paths,
            inherited_socket: None,
            notifier: Notifier::none(),
            logs: crate::logs::LogHub::default(),
            hooks: crate::hooks::TestHooks::default(),
        }
    }
}

/// Requests to stop from outside: the binary forwards signals here (named, for the log).
/// The first one shuts the daemon down gracefully; a second one during that shutdown
/// cuts it short. When every sender is gone, nothing more will come.
pub type Stops = mpsc::Receiver<&'static str>;

/// The next stop request; never resolves once every sender is gone.
async fn next_stop(stops: &mut Stops) -> &'static str {
    match stops.recv().await {
        Some(why) => why,
        None => std::future::pending().await,
    }
}

/// Why the daemon stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Everything was released in order.
    Clean,
    /// A second signal or the deadline cut the shutdown short.
    Forced,
}

/// The exclusive lock that makes this process the daemon. Holds the pid for humans; the
/// `flock`, not the pid, is what counts (pids are reused).
#[derive(Debug)]
pub struct InstanceLock {
    file: File,
    path: PathBuf,
}

impl InstanceLock {
    /// Takes the lock or says who holds it.
    pub fn acquire(path: &Path) -> Result<InstanceLock, DaemonError> {
        let lock_error = |source| DaemonError::Lock {
            path: path.to_path_buf(),
            source,
        };
        loop {
            let mut file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(path)
                .map_err(lock_error)?;
            match file.try_lock() {
                Ok(()) => {}
                Err(fs::TryLockError::WouldBlock) => {
                    let mut pid = String::new();
                    let _ = file.read_to_string(&mut pid);
                    let pid = pid.trim().to_string();
                    return Err(DaemonError::AlreadyRunning {
                        pid: if pid.is_empty() {
                            "unknown".into()
                        } else {
                            pid
                        },
                    });
                }
                Err(fs::TryLockError::Error(error)) => return Err(lock_error(error)),
            }
            // The previous owner unlinks the file on exit. If it did so between our open
            // and our lock, we hold a lock on a file nobody else will ever open: retry.
            let same_file = match (file.metadata(), fs::metadata(path)) {
                (Ok(held), Ok(named)) => held.ino() == named.ino() && held.dev() == named.dev(),
                _ => false,
            };
            if !same_file {
                continue;
            }
            file.set_len(0).map_err(lock_error)?;
            file.rewind().map_err(lock_error)?;
            writeln!(file, "{}", std::process::id()).map_err(lock_error)?;
            return Ok(InstanceLock {
                file,
                path: path.to_path_buf(),
            });
        }
    }
}

impl Drop for InstanceLock {
    fn drop(&mut self) {
        // Unlink while still holding the lock, then unlock by closing.
        let _ = fs::remove_file(&self.path);
        let _ = self.file.unlock();
    }
}

/// The bound RPC socket; removes its file when dropped.
#[derive(Debug)]
struct SocketFile {
    path: PathBuf,
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// Binds the RPC socket. Only called with the instance lock held, so no other sited
/// listens: a socket file already there was left by a daemon that was killed, and is
/// replaced — unless something still accepts on it, which can only be a service manager
/// holding it for socket activation. Taking its path would strand every client that
/// comes through the manager, so that is refused.
fn bind_socket(path: &Path) -> Result<(UnixListener, SocketFile), DaemonError> {
    let socket_error = |source| DaemonError::Socket {
        path: path.to_path_buf(),
        source,
    };
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => {
            return Err(DaemonError::SocketInUse {
                path: path.to_path_buf(),
            });
        }
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        // Refused (nobody listens), or not a socket at all: stale either way.
        Err(_) => match fs::remove_file(path) {
            Ok(()) => tracing::info!(path = %path.display(), "removed stale socket"),
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => return Err(socket_error(error)),
        },
    }
    let listener = UnixListener::bind(path).map_err(socket_error)?;
    let guard = SocketFile {
        path: path.to_path_buf(),
    };
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).map_err(socket_error)?;
    Ok((listener, guard))
}

/// Everything the daemon holds before it starts serving.
#[derive(Debug)]
pub struct Prepared {
    config: DaemonConfig,
    lock: InstanceLock,
    listener: UnixListener,
    /// The socket file to remove on exit; `None` when a service manager owns it.
    socket: Option<SocketFile>,
}

/// Takes the lock and binds the socket (or adopts the one a service manager passed):
/// after this returns, clients can connect. Must run inside a tokio runtime.
pub fn prepare(mut config: DaemonConfig) -> Result<Prepared, DaemonError> {
    config.paths.ensure_dirs()?;
    let lock = InstanceLock::acquire(&config.paths.lock)?;
    let (listener, socket) = match config.inherited_socket.take() {
        Some(inherited) => (adopt_socket(inherited, &config.paths.socket)?, None),
        None => {
            let (listener, socket) = bind_socket(&config.paths.socket)?;
            (listener, Some(socket))
        }
    };
    Ok(Prepared {
        config,
        lock,
        listener,
        socket,
    })
}

/// Serves a listening socket passed in by a service manager. Its path should be the one
/// `sitectl` computes; if not, clients will not find it, which is worth a warning.
fn adopt_socket(
    inherited: std::os::unix::net::UnixListener,
    expected: &Path,
) -> Result<UnixListener, DaemonError> {
    inherited
        .set_nonblocking(true)
        .map_err(DaemonError::Activated)?;
    let bound = inherited.local_addr().map_err(DaemonError::Activated)?;
    match bound.as_pathname() {
        Some(path) if path == expected => {}
        other => tracing::warn!(
            passed = ?other,
            expected = %expected.display(),
            "the service manager's socket is not where sitectl looks: set SITED_HOME alike \
             for both (or let `sitectl service install` write the units)"
        ),
    }
    tracing::info!(socket = ?bound.as_pathname(), "serving the socket passed by the service manager");
    UnixListener::from_std(inherited).map_err(DaemonError::Activated)
}

/// Runs the daemon until a stop request arrives on `stops` (a signal, forwarded by the
/// binary) or a client asks it to shut down; then releases everything. A second stop
/// request during the shutdown cuts it short. Returns how the shutdown went.
pub async fn run(prepared: Prepared, mut stops: Stops) -> Result<Exit, DaemonError> {
    let Prepared {
        config,
        lock,
        listener,
        socket,
    } = prepared;
    let root = CancellationToken::new();
    let tracker = TaskTracker::new();
    let watcher = match crate::watch::Watcher::with_test_limit(config.hooks.watch_limit) {
        Ok(watcher) => Some(watcher),
        Err(error) => {
            tracing::warn!(%error, "cannot create the file watcher; sites will not live-reload");
            None
        }
    };
    // Generators an earlier daemon left running (killed outright), and their builds.
    crate::generator::clean_state(&config.paths.state_dir);
    let store = crate::state_file::StateStore::new(config.paths.state_file.clone());
    let remembered = store.load();
    for warning in &remembered.warnings {
        tracing::warn!("{warning}");
    }
    crate::serve::limits::raise_open_files_limit();
    let registry = Arc::new(Registry::new(RegistryConfig {
        token: root.child_token(),
        tracker: tracker.clone(),
        watcher,
        pool: crate::serve::Pool::for_this_machine(),
        store: Some(store),
        logs: config.logs.clone(),
        hooks: config.hooks.clone(),
        own_dirs: own_dirs(&config.paths),
    }));
    // Remembered sites get their ports back before any client can ask for one.
    registry.restore(&remembered.sites).await;
    let rpc_stop = CancellationToken::new();
    tracker.spawn(crate::rpc::serve(
        listener,
        socket.as_ref().map(|socket| socket.path.clone()),
        registry.clone(),
        root.clone(),
        rpc_stop.clone(),
        tracker.clone(),
    ));
    // The socket has been listening since `prepare` (connections wait in its backlog)
    // and its accept loop is now spawned: any call made from here on is answered.
    tracing::info!(pid = std::process::id(), socket = %config.paths.socket.display(), "sited ready");
    config
        .notifier
        .ready(&format!("serving on {}", config.paths.socket.display()));

    tokio::select! {
        signal = next_stop(&mut stops) => tracing::info!(signal, "shutting down"),
        () = root.cancelled() => {}
    }
    config.notifier.stopping();
    root.cancel();

    let graceful = async {
        registry.stop_all().await;
        rpc_stop.cancel();
        tracker.close();
        tracker.wait().await;
    };
    let exit = tokio::select! {
        () = graceful => Exit::Clean,
        signal = next_stop(&mut stops) => {
            tracing::warn!(signal, "second signal: exiting at once");
            Exit::Forced
        }
        () = tokio::time::sleep(SHUTDOWN_DEADLINE) => {
            tracing::warn!("shutdown deadline passed: exiting with tasks still running");
            Exit::Forced
        }
    };
    drop(socket);
    drop(lock);
    tracing::info!("sited stopped");
    Ok(exit)
}

/// The daemon's own folders, canonical (they exist: `prepare` made them), as a site
/// that holds one must leave them out.
fn own_dirs(paths: &Paths) -> Vec<PathBuf> {
    [&paths.runtime_dir, &paths.state_dir]
        .into_iter()
        .map(|dir| dir.canonicalize().unwrap_or_else(|_| dir.clone()))
        .collect()
}

/// Makes the kernel send SIGTERM when the parent dies (`--exit-with-parent`), so the
/// daemon takes its normal shutdown path. Linux only: elsewhere it is refused.
#[cfg(target_os = "linux")]
pub fn exit_with_parent() -> io::Result<()> {
    // SAFETY: prctl(PR_SET_PDEATHSIG) and getppid only read their integer arguments.
    #[allow(unsafe_code)]
    unsafe {
        let parent = libc::getppid();
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) == -1 {
            return Err(io::Error::last_os_error());
        }
        // The parent may have died before the prctl: then we were reparented already.
        if libc::getppid() != parent {
            libc::raise(libc::SIGTERM);
        }
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
pub fn exit_with_parent() -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "--exit-with-parent needs Linux's PR_SET_PDEATHSIG",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_is_refused_with_the_pid() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sited.lock");
        let first = InstanceLock::acquire(&path).unwrap();
        match InstanceLock::acquire(&path) {
            Err(DaemonError::AlreadyRunning { pid }) => {
                assert_eq!(pid, std::process::id().to_string())
            }
            other => panic!("expected AlreadyRunning, got {other:?}"),
        }
        drop(first);
        assert!(!path.exists(), "lock file removed on release");
        InstanceLock::acquire(&path).expect("free again after release");
    }
}
