//! Readiness notifications to the service manager: systemd's `sd_notify` protocol, so a
//! `Type=notify` unit is "active" only once the RPC socket accepts calls, and "stopping"
//! as soon as the shutdown path starts.
//!
//! The protocol is one datagram per message (`READY=1`, `STOPPING=1`, `STATUS=…`, newline
//! separated) to the Unix socket named by `NOTIFY_SOCKET`: a path, or `@name` for Linux's
//! abstract namespace. Without the variable — started by hand, by `sitectl`, or by
//! launchd, which has no readiness protocol — every call is a no-op. Failures are logged,
//! never fatal: a daemon that cannot tell systemd it is ready still serves.
//!
//! Written here rather than pulled in from a crate: it is one `sendto`, and owning it
//! keeps the send timeout (below) and the logging in our hands.

use std::io;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::time::Duration;

/// The variable systemd sets for `Type=notify` services.
pub const NOTIFY_SOCKET_ENV: &str = "NOTIFY_SOCKET";

/// How long one message may wait for room in the manager's queue. The send blocks like
/// `sd_notify` does (a full queue means systemd is busy, not gone), but never forever.
const SEND_TIMEOUT: Duration = Duration::from_secs(5);

/// Where notifications go.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    /// A socket file.
    Path(PathBuf),
    /// A name in Linux's abstract socket namespace (`NOTIFY_SOCKET=@name`).
    Abstract(Vec<u8>),
}

/// Sends lifecycle messages to the service manager, if there is one.
#[derive(Debug, Clone, Default)]
pub struct Notifier {
    /// `None`: nobody asked to be told; every message is dropped silently.
    target: Option<Target>,
}

impl Notifier {
    /// The notifier `NOTIFY_SOCKET` asks for, or a silent one.
    pub fn from_env() -> Notifier {
        let value = std::env::var_os(NOTIFY_SOCKET_ENV);
        Notifier {
            target: value.as_deref().and_then(parse_target),
        }
    }

    /// A notifier that sends nothing (tests, `sited build`).
    pub fn none() -> Notifier {
        Notifier::default()
    }

    /// Whether a service manager is listening for notifications.
    pub fn is_active(&self) -> bool {
        self.target.is_some()
    }

    /// The RPC socket accepts calls: the unit becomes active.
    pub fn ready(&self, status: &str) {
        self.send(&format!("READY=1\nSTATUS={status}"));
    }

    /// The shutdown path has started: the unit becomes "deactivating".
    pub fn stopping(&self) {
        self.send("STOPPING=1\nSTATUS=stopping every site");
    }

    fn send(&self, message: &str) {
        let Some(target) = &self.target else { return };
        match send_to(target, message.as_bytes()) {
            Ok(()) => tracing::debug!(?target, message, "notified the service manager"),
            Err(error) => {
                tracing::warn!(?target, %error, message, "cannot notify the service manager")
            }
        }
    }
}

/// `NOTIFY_SOCKET`'s value → where to send. Empty or relative values are ignored, as
/// systemd's own client does.
fn parse_target(value: &std::ffi::OsStr) -> Option<Target> {
    use std::os::unix::ffi::OsStrExt;
    let bytes = value.as_bytes();
    match bytes.first()? {
        b'/' => Some(Target::Path(PathBuf::from(value))),
        b'@' if bytes.len() > 1 => Some(Target::Abstract(bytes[1..].to_vec())),
        _ => None,
    }
}

fn send_to(target: &Target, message: &[u8]) -> io::Result<()> {
    let socket = UnixDatagram::unbound()?;
    socket.set_write_timeout(Some(SEND_TIMEOUT))?;
    let sent = match target {
        Target::Path(path) => socket.send_to(message, path)?,
        Target::Abstract(name) => send_abstract(&socket, name, message)?,
    };
    if sent != message.len() {
        return Err(io::Error::other(format!(
            "sent {sent} of {} bytes",
            message.len()
        )));
    }
    Ok(())
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn send_abstract(socket: &UnixDatagram, name: &[u8], message: &[u8]) -> io::Result<usize> {
    #[cfg(target_os = "android")]
    use std::os::android::net::SocketAddrExt;
    #[cfg(target_os = "linux")]
    use std::os::linux::net::SocketAddrExt;
    let address = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
    socket.send_to_addr(message, &address)
}

/// Abstract socket names exist only on Linux; elsewhere (macOS: launchd never sets
/// `NOTIFY_SOCKET`) such a value cannot be honoured.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn send_abstract(_: &UnixDatagram, _: &[u8], _: &[u8]) -> io::Result<usize> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "abstract socket names need Linux",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn notify_socket_values() {
        assert_eq!(
            parse_target(OsStr::new("/run/user/1000/systemd/notify")),
            Some(Target::Path("/run/user/1000/systemd/notify".into()))
        );
        assert_eq!(
            parse_target(OsStr::new("@/org/freedesktop/systemd1/notify/1")),
            Some(Target::Abstract(
                b"/org/freedesktop/systemd1/notify/1".to_vec()
            ))
        );
        for ignored in ["", "@", "relative/path"] {
            assert_eq!(parse_target(OsStr::new(ignored)), None, "{ignored:?}");
        }
    }

    #[test]
    fn messages_arrive_as_one_datagram_each() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let manager = UnixDatagram::bind(&path).unwrap();
        manager
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let notifier = Notifier {
            target: Some(Target::Path(path)),
        };
        notifier.ready("serving");
        notifier.stopping();
        let mut buf = [0u8; 256];
        let n = manager.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1\nSTATUS=serving");
        let n = manager.recv(&mut buf).unwrap();
        assert!(buf[..n].starts_with(b"STOPPING=1\n"));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn abstract_names_work_on_linux() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("sited-notify-test-{}", std::process::id());
        let address = std::os::unix::net::SocketAddr::from_abstract_name(&name).unwrap();
        let manager = UnixDatagram::bind_addr(&address).unwrap();
        manager
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let notifier = Notifier {
            target: parse_target(OsStr::new(&format!("@{name}"))),
        };
        notifier.stopping();
        let mut buf = [0u8; 256];
        let n = manager.recv(&mut buf).unwrap();
        assert!(buf[..n].starts_with(b"STOPPING=1"));
    }

    #[test]
    fn no_socket_means_no_op() {
        let notifier = Notifier::none();
        assert!(!notifier.is_active());
        notifier.ready("x");
        notifier.stopping();
    }
}
