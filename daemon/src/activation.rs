//! Socket activation: taking over the listening RPC socket a service manager passes in
//! (systemd's `LISTEN_FDS` convention, used by `systemd/sited.socket`).
//!
//! The manager binds and listens itself, then starts sited with the sockets as fds 3, 4,
//! … and sets `LISTEN_FDS` (how many), `LISTEN_PID` (whom they are for: a child that
//! inherits the environment must not take them for its own) and, optionally,
//! `LISTEN_FDNAMES`. sited wants exactly one: a listening Unix stream socket. The socket
//! file then belongs to the manager, which keeps listening between daemon runs (that is
//! how the first `sitectl` call starts the daemon), so the daemon never unlinks it.
//!
//! Nothing here is Linux-specific: the convention works on any Unix. launchd has its own
//! API (`launch_activate_socket`), which the LaunchAgent does not need: it runs sited at
//! load and keeps it alive.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::UnixListener;
use std::sync::atomic::{AtomicBool, Ordering};

/// The first fd a service manager passes (`SD_LISTEN_FDS_START`).
pub const LISTEN_FDS_START: RawFd = 3;

/// Set once the passed fd has been taken: it has one owner, ever.
static TAKEN: AtomicBool = AtomicBool::new(false);

#[derive(Debug, thiserror::Error)]
pub enum ActivationError {
    #[error("{var}={value:?} is not a number")]
    NotANumber { var: &'static str, value: String },
    #[error(
        "the service manager passed {count} sockets, but sited takes exactly one \
         (sited.socket must have a single ListenStream= line)"
    )]
    TooMany { count: usize },
    #[error("cannot use fd {LISTEN_FDS_START} passed by the service manager: {0}")]
    Fd(io::Error),
    #[error(
        "fd {LISTEN_FDS_START} passed by the service manager is not a listening Unix stream \
         socket (sited.socket needs ListenStream=/a/path and Accept=no)"
    )]
    NotAListener,
}

/// The socket a service manager handed over.
#[derive(Debug)]
pub struct Activated {
    /// Listening, close-on-exec, still blocking (tokio wants it non-blocking; the daemon
    /// switches it when it adopts it).
    pub listener: UnixListener,
    /// Its name from `LISTEN_FDNAMES`, for the log (systemd's default: the unit name).
    pub name: Option<String>,
}

/// What the `LISTEN_*` variables say, before any fd is touched.
#[derive(Debug, PartialEq, Eq)]
enum Passed {
    /// No sockets for this process.
    Nothing,
    /// One socket at fd 3, with its name if the manager gave one.
    One { name: Option<String> },
}

/// Reads the `LISTEN_*` variables for a process whose pid is `me`. Pure, for tests.
fn parse(
    pid: Option<&str>,
    fds: Option<&str>,
    names: Option<&str>,
    me: u32,
) -> Result<Passed, ActivationError> {
    let (Some(pid), Some(fds)) = (pid, fds) else {
        return Ok(Passed::Nothing);
    };
    let pid: u32 = pid
        .trim()
        .parse()
        .map_err(|_| ActivationError::NotANumber {
            var: "LISTEN_PID",
            value: pid.to_string(),
        })?;
    if pid != me {
        // Meant for the process that exported them (we inherited its environment).
        return Ok(Passed::Nothing);
    }
    let count: usize = fds
        .trim()
        .parse()
        .map_err(|_| ActivationError::NotANumber {
            var: "LISTEN_FDS",
            value: fds.to_string(),
        })?;
    match count {
        0 => Ok(Passed::Nothing),
        1 => Ok(Passed::One {
            name: names
                .and_then(|names| names.split(':').next())
                .filter(|name| !name.is_empty())
                .map(str::to_string),
        }),
        count => Err(ActivationError::TooMany { count }),
    }
}

/// Takes the socket the service manager passed, if it passed one to this process.
///
/// Call it once, early in `main`, before anything could open fd 3 for itself. Later calls
/// return `None`.
pub fn take_from_env() -> Result<Option<Activated>, ActivationError> {
    let var = |name| std::env::var(name).ok();
    let passed = parse(
        var("LISTEN_PID").as_deref(),
        var("LISTEN_FDS").as_deref(),
        var("LISTEN_FDNAMES").as_deref(),
        std::process::id(),
    )?;
    let Passed::One { name } = passed else {
        return Ok(None);
    };
    if TAKEN.swap(true, Ordering::SeqCst) {
        return Ok(None);
    }
    if !fd_is_open(LISTEN_FDS_START) {
        return Err(ActivationError::Fd(io::Error::from_raw_os_error(
            libc::EBADF,
        )));
    }
    // SAFETY: fd 3 is open, and LISTEN_PID names this process, so the service manager
    // opened it for us and nothing else in this process owns it; TAKEN makes this the
    // only place that ever wraps it.
    #[allow(unsafe_code)]
    let passed = unsafe { OwnedFd::from_raw_fd(LISTEN_FDS_START) };
    // Systemd passes the fd without close-on-exec; a duplicate made by std has it, so
    // nothing the daemon ever runs inherits the listener. The original is closed.
    let fd = passed.try_clone().map_err(ActivationError::Fd)?;
    drop(passed);
    check_listening_stream(&fd)?;
    let listener = UnixListener::from(fd);
    // Also refuses other socket families (std checks the address is AF_UNIX).
    listener
        .local_addr()
        .map_err(|_| ActivationError::NotAListener)?;
    Ok(Some(Activated { listener, name }))
}

/// Whether `fd` is an open descriptor of this process.
fn fd_is_open(fd: RawFd) -> bool {
    // SAFETY: F_GETFD only reads the descriptor table entry; any integer is acceptable.
    #[allow(unsafe_code)]
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    flags != -1
}

/// Checks that `fd` is a socket of type `SOCK_STREAM` on which `listen` was called.
fn check_listening_stream(fd: &OwnedFd) -> Result<(), ActivationError> {
    let file = std::fs::File::from(fd.try_clone().map_err(ActivationError::Fd)?);
    let is_socket = file
        .metadata()
        .map_err(ActivationError::Fd)?
        .file_type()
        .is_socket();
    if !is_socket {
        return Err(ActivationError::NotAListener);
    }
    let stream = socket_option(fd, libc::SO_TYPE).map_err(ActivationError::Fd)?;
    let listening = socket_option(fd, libc::SO_ACCEPTCONN).map_err(ActivationError::Fd)?;
    if stream != libc::SOCK_STREAM || listening == 0 {
        return Err(ActivationError::NotAListener);
    }
    Ok(())
}

/// An integer `SOL_SOCKET` option.
fn socket_option(fd: &OwnedFd, option: libc::c_int) -> io::Result<libc::c_int> {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `fd` is an open descriptor we own; `value` and `len` are valid for writes
    // and `len` holds the size of `value`, as getsockopt requires.
    #[allow(unsafe_code)]
    let result = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            option,
            (&raw mut value).cast(),
            &raw mut len,
        )
    };
    if result == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: u32 = 4242;

    #[test]
    fn no_variables_means_no_socket() {
        assert_eq!(parse(None, None, None, ME).unwrap(), Passed::Nothing);
        assert_eq!(
            parse(Some("4242"), None, None, ME).unwrap(),
            Passed::Nothing
        );
        assert_eq!(parse(None, Some("1"), None, ME).unwrap(), Passed::Nothing);
    }

    #[test]
    fn sockets_for_another_pid_are_not_ours() {
        assert_eq!(
            parse(Some("1"), Some("1"), None, ME).unwrap(),
            Passed::Nothing
        );
    }

    #[test]
    fn one_socket_with_or_without_a_name() {
        assert_eq!(
            parse(Some("4242"), Some("1"), None, ME).unwrap(),
            Passed::One { name: None }
        );
        assert_eq!(
            parse(Some("4242"), Some("1"), Some("sited.socket"), ME).unwrap(),
            Passed::One {
                name: Some("sited.socket".into())
            }
        );
        assert_eq!(
            parse(Some("4242"), Some("0"), None, ME).unwrap(),
            Passed::Nothing
        );
    }

    #[test]
    fn malformed_or_too_many_is_an_error() {
        assert!(matches!(
            parse(Some("x"), Some("1"), None, ME),
            Err(ActivationError::NotANumber {
                var: "LISTEN_PID",
                ..
            })
        ));
        assert!(matches!(
            parse(Some("4242"), Some("one"), None, ME),
            Err(ActivationError::NotANumber {
                var: "LISTEN_FDS",
                ..
            })
        ));
        let error = parse(Some("4242"), Some("2"), None, ME).unwrap_err();
        assert!(matches!(error, ActivationError::TooMany { count: 2 }));
        assert!(error.to_string().contains("ListenStream"));
    }

    #[test]
    fn only_listening_unix_stream_sockets_are_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let listener = UnixListener::bind(dir.path().join("s")).unwrap();
        check_listening_stream(&OwnedFd::from(listener)).expect("a listener");

        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        assert!(matches!(
            check_listening_stream(&OwnedFd::from(a)),
            Err(ActivationError::NotAListener)
        ));
        let datagram = std::os::unix::net::UnixDatagram::unbound().unwrap();
        assert!(matches!(
            check_listening_stream(&OwnedFd::from(datagram)),
            Err(ActivationError::NotAListener)
        ));
        let file = std::fs::File::open(dir.path()).unwrap();
        assert!(matches!(
            check_listening_stream(&OwnedFd::from(file)),
            Err(ActivationError::NotAListener)
        ));
    }
}
