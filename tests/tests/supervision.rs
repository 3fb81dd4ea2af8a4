//! Running under a service manager: readiness notification (`Type=notify`), socket
//! activation (`LISTEN_FDS`), and the exit codes supervisors act on. The tests play the
//! service manager themselves, with the real `sited` binary in a temp home.

use std::fs;
use std::io::ErrorKind;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::os::unix::net::{UnixDatagram, UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::Path;

use sited_tests::{DEADLINE, Home, bin, kill, port_is_free, wait_until};

/// Fills the receive queue of the datagram socket at `path`, so that the next datagram
/// sent to it waits until the queue is read. Returns the senders (their datagrams stay
/// queued either way; kept for clarity). A sender stops on its own buffer limit or on the
/// receiver's queue limit, whichever comes first; a fresh sender that cannot send even
/// once has hit the receiver's.
fn fill_queue(path: &Path) -> Vec<UnixDatagram> {
    let mut senders = Vec::new();
    loop {
        let sender = UnixDatagram::unbound().unwrap();
        sender.set_nonblocking(true).unwrap();
        let mut sent = 0;
        loop {
            match sender.send_to(b"FILLER=1", path) {
                Ok(_) => sent += 1,
                Err(error) if error.kind() == ErrorKind::WouldBlock => break,
                Err(error) => panic!("filling the notify queue: {error}"),
            }
        }
        senders.push(sender);
        if sent == 0 {
            return senders;
        }
        assert!(senders.len() < 1000, "the notify queue never filled");
    }
}

/// The next message that is not filler.
fn next_message(manager: &UnixDatagram) -> String {
    let mut buf = [0u8; 4096];
    loop {
        let n = manager
            .recv(&mut buf)
            .expect("a notification before the deadline");
        let message = String::from_utf8_lossy(&buf[..n]).into_owned();
        if message != "FILLER=1" {
            return message;
        }
    }
}

#[test]
fn ready_is_sent_only_once_calls_are_answered_and_stopping_on_sigterm() {
    let mut home = Home::new();
    let notify = home.path().join("notify.sock");
    let manager = UnixDatagram::bind(&notify).unwrap();
    manager.set_read_timeout(Some(DEADLINE)).unwrap();
    // Hold READY=1 back: with the manager's queue full the daemon cannot deliver it until
    // the test reads. Whatever the daemon manages to do meanwhile, it does before READY.
    let _fillers = fill_queue(&notify);

    let mut command = home.command("sited");
    command.env("NOTIFY_SOCKET", &notify);
    let pid = home.spawn_foreground(command);
    assert!(
        wait_until(DEADLINE, || home.answers()),
        "the daemon must answer calls before it may say READY=1: {}",
        home.foreground_log()
    );
    assert!(home.socket().exists());
    UnixStream::connect(home.socket()).expect("the socket accepts");
    assert!(
        manager.recv(&mut [0u8; 64]).is_ok(),
        "the queue was full of filler"
    );

    // Now let it through: READY=1 is the first thing the daemon said.
    let ready = next_message(&manager);
    assert!(ready.starts_with("READY=1\n"), "{ready:?}");
    assert!(ready.contains("STATUS=serving on "), "{ready:?}");
    // No earlier attempt gave up waiting for room in the queue (a READY sent too early
    // would have, while the test held the queue full).
    let log = home.foreground_log();
    assert!(!log.contains("cannot notify"), "{log}");
    // And at the moment it arrives, calls work (as systemd's `start` returning implies).
    let status = home.sitectl_ok(&["daemon", "status"]);
    assert!(status.contains(&format!("(pid {pid})")), "{status}");

    kill(pid, "TERM");
    let stopping = next_message(&manager);
    assert!(stopping.starts_with("STOPPING=1"), "{stopping:?}");
    let exit = home.foreground_child().wait().unwrap();
    assert_eq!(exit.code(), Some(0), "{}", home.foreground_log());
}

#[test]
fn without_notify_socket_nothing_is_sent_and_a_relative_one_is_ignored() {
    // NOTIFY_SOCKET must be absolute (or @abstract): a relative value is not a target,
    // and the daemon starts normally instead of failing.
    let mut home = Home::new();
    let mut command = home.command("sited");
    command.env("NOTIFY_SOCKET", "relative/notify.sock");
    home.spawn_foreground(command);
    assert!(
        wait_until(DEADLINE, || home.answers()),
        "{}",
        home.foreground_log()
    );
}

/// Starts `sited` the way a service manager does for socket activation: `listener` as
/// fd 3, `LISTEN_FDS=1`, and `LISTEN_PID` set to the daemon's own pid. That pid exists
/// only in the child, so a shell exports its own (`$$`) and execs sited, which keeps it.
fn spawn_activated(home: &mut Home, listener: &UnixListener) -> u32 {
    let mut command = home.command_for(Path::new("/bin/sh"));
    command
        .args(["-c", "LISTEN_PID=$$ exec \"$0\""])
        .arg(bin("sited"))
        .env("LISTEN_FDS", "1")
        .env("LISTEN_FDNAMES", "sited.socket");
    let fd = listener.as_raw_fd();
    // SAFETY: between fork and exec the closure only calls dup2/fcntl, which are
    // async-signal-safe, and touches no memory shared with the parent.
    #[allow(unsafe_code)]
    unsafe {
        command.pre_exec(move || {
            // dup2 clears close-on-exec on the copy; if the fd already is 3, clear it.
            let result = if fd == 3 {
                libc::fcntl(3, libc::F_SETFD, 0)
            } else {
                libc::dup2(fd, 3)
            };
            if result == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    home.spawn_foreground(command)
}

/// The runtime dir with the mode the daemon insists on, and a listener at the socket
/// path, as systemd's `sited.socket` would make.
fn manager_listener(home: &Home) -> UnixListener {
    fs::DirBuilder::new()
        .mode(0o700)
        .create(home.socket().parent().unwrap())
        .unwrap();
    UnixListener::bind(home.socket()).unwrap()
}

fn inode(path: &Path) -> u64 {
    fs::metadata(path).unwrap().ino()
}

#[test]
fn socket_activation_serves_the_passed_socket_and_leaves_it_to_the_manager() {
    let mut home = Home::new();
    let listener = manager_listener(&home);
    let socket_inode = inode(&home.socket());
    let pid = spawn_activated(&mut home, &listener);

    // sitectl finds the daemon at the usual path and drives it.
    assert!(
        wait_until(DEADLINE, || home.answers()),
        "{}",
        home.foreground_log()
    );
    let root = home.site("s", &[("index.md", "# Activated\n")]);
    let port = home.up(&root, &["--port", "0"]);
    let sites = home.ps();
    assert_eq!(sites.len(), 1);
    assert_eq!(sites[0]["port"], port);
    assert_eq!(sites[0]["state"], "serving");
    assert!(
        home.sitectl_ok(&["daemon", "status"])
            .contains(&format!("(pid {pid})"))
    );

    // It serves the manager's socket (not one of its own) and still holds the lock.
    assert_eq!(inode(&home.socket()), socket_inode, "socket file replaced");
    assert_eq!(home.daemon_pid(), Some(pid), "the lock names the daemon");
    let log = home.foreground_log();
    assert!(log.contains("socket-activated"), "{log}");
    assert!(!log.contains("not where sitectl looks"), "{log}");

    // `daemon stop` waits for the lock, not for a socket file that stays.
    home.sitectl_ok(&["daemon", "stop"]);
    let exit = home.foreground_child().wait().unwrap();
    assert_eq!(exit.code(), Some(0), "{}", home.foreground_log());
    assert!(wait_until(DEADLINE, || port_is_free(port)));
    assert!(!home.lock().exists(), "lock released");
    // The socket is still the manager's, still listening for the next activation.
    assert_eq!(inode(&home.socket()), socket_inode, "socket file removed");
    UnixStream::connect(home.socket()).expect("the manager's socket still listens");
}

#[test]
fn a_live_socket_held_by_a_service_manager_is_not_taken_over() {
    let home = Home::new();
    let _listener = manager_listener(&home);
    let socket_inode = inode(&home.socket());

    let out = home.command("sited").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "blocked start: {stderr}");
    assert!(
        stderr.contains("live socket that no sited owns"),
        "{stderr}"
    );
    assert!(stderr.contains("systemctl --user"), "hint: {stderr}");
    assert_eq!(inode(&home.socket()), socket_inode, "socket untouched");
    assert!(!home.lock().exists(), "lock released");
}

#[test]
fn a_blocked_start_exits_3_or_0_for_launchd_and_a_stale_socket_is_replaced() {
    let mut home = Home::new();
    // A stale socket file (nobody listens): the daemon replaces it and starts.
    let stale = manager_listener(&home);
    drop(stale);
    assert!(home.socket().exists());
    let pid = home.start_foreground(&[]);

    // Another instance runs: 3 (systemd's RestartPreventExitStatus) by default…
    let second = home.command("sited").output().unwrap();
    assert_eq!(second.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains(&format!("already running (pid {pid})")),
        "{stderr}"
    );
    // …and 0 for launchd, whose KeepAlive would otherwise restart it again and again.
    let agent = home
        .command("sited")
        .arg("--exit-zero-if-running")
        .output()
        .unwrap();
    assert_eq!(agent.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&agent.stderr).contains("already running"));
    assert!(home.answers(), "the first daemon is untouched");
}

#[test]
fn a_unit_that_passes_the_wrong_sockets_is_a_blocked_start() {
    let home = Home::new();
    let run = |fds: &str| {
        home.command_for(Path::new("/bin/sh"))
            .args(["-c", "LISTEN_PID=$$ exec \"$0\""])
            .arg(bin("sited"))
            .env("LISTEN_FDS", fds)
            .output()
            .unwrap()
    };
    // Two sockets: sited takes exactly one.
    let two = run("2");
    let stderr = String::from_utf8_lossy(&two.stderr);
    assert_eq!(two.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("ListenStream"), "{stderr}");
    // One announced, but fd 3 is no listening socket.
    let none = run("1");
    let stderr = String::from_utf8_lossy(&none.stderr);
    assert_eq!(none.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("passed by the service manager"), "{stderr}");
    assert!(!home.socket().exists(), "no socket of its own instead");
}
