//! Failure scenarios from SCENARIOS.md, each named after its id. "Clean" means: every port
//! the daemon held can be bound again, socket and lock are gone, the process is gone.

use std::time::{Duration, Instant};

use sited_tests::{DEADLINE, Home, get, kill, port_is_free, process_is_gone, wait_until};

/// Starts a foreground daemon with three sites up and returns (pid, ports).
fn daemon_with_three_sites(home: &mut Home) -> (u32, Vec<u16>) {
    let pid = home.start_foreground(&[]);
    let ports = ["a", "b", "c"]
        .iter()
        .map(|name| {
            let root = home.site(name, &[("index.md", &format!("# Site {name}\n"))]);
            home.up(&root, &["--port", "0"])
        })
        .collect::<Vec<_>>();
    for &port in &ports {
        assert_eq!(get(port, "/").unwrap().status, 200);
        assert!(!port_is_free(port));
    }
    (pid, ports)
}

/// Sends `signal` and checks the clean exit: status 0, every port free, socket and lock
/// gone. Returns how long until the ports were free (reported, not asserted: timing
/// targets live in bench/).
fn signal_exits_cleanly(signal: &str) -> Duration {
    let mut home = Home::new();
    let (pid, ports) = daemon_with_three_sites(&mut home);
    let sent = Instant::now();
    kill(pid, signal);
    assert!(
        wait_until(DEADLINE, || ports.iter().all(|&p| port_is_free(p))),
        "ports still held after SIG{signal}"
    );
    let freed = sent.elapsed();
    let status = home.foreground_child().wait().expect("wait for sited");
    assert_eq!(
        status.code(),
        Some(0),
        "exit status after SIG{signal}: {}",
        home.foreground_log()
    );
    assert!(!home.socket().exists(), "socket left behind");
    assert!(!home.lock().exists(), "lock left behind");
    let log = home.foreground_log();
    assert!(log.contains(&format!("signal=\"SIG{signal}\"")), "{log}");
    assert!(log.contains("sited stopped"), "{log}");
    eprintln!("SIG{signal}: ports free after {freed:?}");
    freed
}

#[test]
fn s01_sigint_exits_cleanly() {
    signal_exits_cleanly("INT");
}

#[test]
fn s02_sigterm_frees_every_port() {
    signal_exits_cleanly("TERM");
}

#[test]
fn s03_sighup_exits_cleanly() {
    signal_exits_cleanly("HUP");
}

#[test]
fn s04_sigquit_exits_cleanly() {
    signal_exits_cleanly("QUIT");
}

#[test]
fn s08_failed_start_leaves_nothing_behind() {
    let home = Home::new();
    // Port taken by another program: this test process.
    let holder = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let port = holder.local_addr().unwrap().port();
    let root = home.site("s", &[("index.md", "# S\n")]);
    let out = home.sitectl(&["up", root.to_str().unwrap(), "--port", &port.to_string()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "port {port} is already in use by pid {}",
            std::process::id()
        )),
        "owner named: {stderr}"
    );
    assert!(
        stderr.contains(&format!("kill {}", std::process::id())),
        "hint: {stderr}"
    );

    // Root missing, and root not a directory.
    let missing = home.path().join("nope");
    let out = home.sitectl(&["up", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
    let file = home.site("f", &[("file.md", "x")]).join("file.md");
    let out = home.sitectl(&["up", file.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a directory"));

    // Nothing registered; and once the other program lets go, the same port works:
    // the failed attempt left no listener of its own on it.
    assert!(home.ps().is_empty());
    drop(holder);
    // (A process another test forks at this instant may hold a copy of the fd until
    // its exec, so wait for the port rather than assume it.)
    assert!(wait_until(DEADLINE, || port_is_free(port)));
    assert_eq!(home.up(&root, &["--port", &port.to_string()]), port);
}

#[test]
fn s17_second_daemon_refuses_and_touches_nothing() {
    let mut home = Home::new();
    let pid = home.start_foreground(&[]);
    let root = home.site("s", &[("index.md", "# S\n")]);
    let port = home.up(&root, &["--port", "0"]);

    let second = home.command("sited").output().expect("run second sited");
    assert!(!second.status.success());
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains(&format!("already running (pid {pid})")),
        "names the running daemon: {stderr}"
    );
    // The first daemon is untouched: same pid in the lock, socket answers, site serves.
    assert_eq!(home.daemon_pid(), Some(pid));
    assert!(home.answers());
    assert_eq!(get(port, "/").unwrap().status, 200);

    // `--daemonize` reports the same refusal instead of claiming success.
    let detached = home.command("sited").arg("--daemonize").output().unwrap();
    assert!(!detached.status.success());
    let stderr = String::from_utf8_lossy(&detached.stderr);
    assert!(stderr.contains("already running"), "{stderr}");
    assert!(!process_is_gone(pid));
}

#[test]
fn shutdown_rpc_takes_the_same_clean_path() {
    let mut home = Home::new();
    let (pid, ports) = daemon_with_three_sites(&mut home);
    home.sitectl_ok(&["daemon", "stop"]);
    let status = home.foreground_child().wait().unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(ports.iter().all(|&p| port_is_free(p)));
    assert!(process_is_gone(pid));
    assert!(!home.socket().exists() && !home.lock().exists());
}
