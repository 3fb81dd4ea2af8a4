//! Lifecycle guarantees under stress and abuse (issue 5): the parent's death (S6), rapid
//! restart (S10), concurrent clients and a large build (S12), bad frames and foreign users
//! on the RPC socket (S13), and a panicking request handler. Each test is named after its
//! scenario in SCENARIOS.md; conditions are polled against deadlines, never slept for.

use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use serde_json::Value;
use sited_tests::{
    DEADLINE, Home, bin, copy_executable, get, kill, port_is_free, process_is_gone, wait_until,
};

/// `n` distinct ports that are free now, for tests that ask for a given `--port`, all
/// bound at once before any is released. Taken from below the kernel's ephemeral range
/// (`ip_local_port_range`): a port from inside it (what binding port 0 gives) can be taken
/// meanwhile as the local port of any outgoing connection on the machine, and a busy
/// machine makes many.
fn free_ports(n: usize) -> Vec<u16> {
    let range = fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap_or_default();
    let ephemeral: u16 = range
        .split_whitespace()
        .next()
        .and_then(|first| first.parse().ok())
        .unwrap_or(32768);
    // Above the ports people configure by hand, below the ephemeral ones; start at a
    // different place in each run so parallel tests rarely try the same ones.
    let (low, high) = (10_000u16, ephemeral.max(10_000 + 2 * n as u16));
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
        ^ std::process::id();
    let span = u32::from(high - low);
    // Never the same port twice in this process: the tests here run side by side, and a
    // port handed to one is released before its daemon binds it. Outside this process
    // only programs binding ports by number could take one (the kernel hands out ports
    // from the ephemeral range only).
    static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    let mut held = Vec::new();
    for step in 0..span {
        let port = low + ((seed.wrapping_add(step * 7919)) % span) as u16;
        if handed_out.contains(&port) {
            continue;
        }
        if let Ok(listener) = std::net::TcpListener::bind(("127.0.0.1", port)) {
            held.push(listener);
            if held.len() == n {
                break;
            }
        }
    }
    assert_eq!(held.len(), n, "not enough free ports");
    let ports: Vec<u16> = held
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect();
    handed_out.extend(&ports);
    ports
}

fn free_port() -> u16 {
    free_ports(1)[0]
}

/// Open file descriptors of `pid`.
fn fd_count(pid: u32) -> usize {
    fs::read_dir(format!("/proc/{pid}/fd")).unwrap().count()
}

/// What `pid`'s fds point to, counted by kind (`socket`, `anon_inode:[eventfd]`, paths),
/// for a failure message.
fn fd_summary(pid: u32) -> String {
    let mut kinds = std::collections::BTreeMap::<String, usize>::new();
    for entry in fs::read_dir(format!("/proc/{pid}/fd")).unwrap().flatten() {
        if let Ok(target) = fs::read_link(entry.path()) {
            let target = target.display().to_string();
            let kind = target.split(":[").next().unwrap_or(&target).to_string();
            let kind = if kind == "anon_inode" { target } else { kind };
            *kinds.entry(kind).or_default() += 1;
        }
    }
    format!("{kinds:?}")
}

/// Threads of `pid`, from `/proc/PID/status`.
fn thread_count(pid: u32) -> usize {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
        .expect("Threads: line")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The site on `port` in a `ps --json` listing.
fn row(sites: &[Value], port: u16) -> Option<&Value> {
    sites.iter().find(|s| s["port"] == port)
}

// ---------------------------------------------------------------------------------------
// S6: the parent of a foreground `sited --exit-with-parent` dies.

#[test]
fn s06_parent_death_exits_cleanly() {
    let mut home = Home::new();
    // An intermediate parent the test can kill: a shell that runs the daemon in the
    // background and waits. Its stderr (and so the daemon's) goes to foreground.log.
    let mut parent = home.command_for(Path::new("/bin/sh"));
    parent
        .arg("-c")
        .arg("\"$0\" --exit-with-parent & wait")
        .arg(bin("sited"));
    let shell = home.spawn_foreground(parent);
    assert!(
        wait_until(DEADLINE, || home.answers()),
        "sited did not come up: {}",
        home.foreground_log()
    );
    let pid = home.daemon_pid().expect("the lock names the daemon");
    assert_ne!(pid, shell, "the daemon is the shell's child, not the shell");
    let ports: Vec<u16> = ["a", "b", "c"]
        .iter()
        .map(|name| {
            let root = home.site(name, &[("index.md", &format!("# Site {name}\n"))]);
            home.up(&root, &["--port", "0"])
        })
        .collect();
    for &port in &ports {
        assert_eq!(get(port, "/").unwrap().status, 200);
    }

    kill(shell, "KILL");
    home.foreground_child().wait().expect("reap the shell");
    assert!(
        wait_until(DEADLINE, || ports.iter().all(|&p| port_is_free(p))),
        "ports still held after the parent died: {}",
        home.foreground_log()
    );
    assert!(
        wait_until(DEADLINE, || process_is_gone(pid)),
        "daemon still running after its parent died"
    );
    assert!(!home.socket().exists(), "socket left behind");
    assert!(!home.lock().exists(), "lock left behind");
    // Nobody is left to read the exit status (the daemon was reparented), so the log
    // tells how it went: the normal path (SIGTERM from PR_SET_PDEATHSIG), not a forced
    // one (which warns and exits 1).
    let log = home.foreground_log();
    assert!(log.contains("signal=\"SIGTERM\""), "{log}");
    assert!(log.contains("sited stopped"), "{log}");
    assert!(
        !log.contains("exiting at once") && !log.contains("deadline passed"),
        "{log}"
    );
}

// ---------------------------------------------------------------------------------------
// S13: bad frames and foreign users on the RPC socket.

/// Sends `bytes` on a fresh connection to the daemon's socket (then half-closes it if
/// `then_eof`), and returns whether the daemon closed the connection within the deadline.
/// A reset counts as closed: the daemon may close before reading all we sent.
fn daemon_drops(home: &Home, bytes: &[u8], then_eof: bool) -> bool {
    let mut stream = UnixStream::connect(home.socket()).expect("connect to the RPC socket");
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    match stream.write_all(bytes) {
        Ok(()) => {}
        // Already dropped while we were still writing.
        Err(error)
            if matches!(
                error.kind(),
                ErrorKind::BrokenPipe | ErrorKind::ConnectionReset
            ) =>
        {
            return true;
        }
        Err(error) => panic!("writing to the socket: {error}"),
    }
    if then_eof {
        stream.shutdown(std::net::Shutdown::Write).unwrap();
    }
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            // An answer (e.g. an error response) is fine; what counts is that it ends.
            Ok(_) => continue,
            Err(error) if error.kind() == ErrorKind::ConnectionReset => return true,
            Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return false;
            }
            Err(error) => panic!("reading from the socket: {error}"),
        }
    }
}

/// A frame: 4-byte big-endian length, then the payload.
fn frame(payload: &[u8]) -> Vec<u8> {
    let mut bytes = (payload.len() as u32).to_be_bytes().to_vec();
    bytes.extend_from_slice(payload);
    bytes
}

/// The daemon still answers `sitectl` and still serves the site on `port`.
fn still_serving(home: &Home, port: u16) {
    assert!(row(&home.ps(), port).is_some());
    assert_eq!(get(port, "/").unwrap().status, 200);
}

#[test]
fn s13_bad_frames_drop_only_their_connection() {
    let mut home = Home::new();
    let pid = home.start_foreground(&[]);
    let root = home.site("s", &[("index.md", "# S\n")]);
    let port = home.up(&root, &["--port", "0"]);

    // A connection that sits mid-frame stays open, but holds nobody else up.
    let mut pending = UnixStream::connect(home.socket()).unwrap();
    pending.write_all(&frame(b"{\"Request\":")[..8]).unwrap();

    let cases: &[(&str, Vec<u8>, bool)] = &[
        ("garbage", frame(b"\x00\xffnot json at all\x7f"), false),
        (
            "JSON of the wrong shape",
            frame(b"{\"hello\":[1,2,3]}"),
            false,
        ),
        // "GET " read as a length is 1.2 GB.
        (
            "an HTTP request",
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            false,
        ),
        (
            "truncated frame",
            frame(b"{\"Request\":{\"id\":1}}")[..10].to_vec(),
            true,
        ),
        ("truncated length prefix", vec![0, 0], true),
        (
            "oversized frame (4 MiB + 1)",
            ((4u32 << 20) + 1).to_be_bytes().to_vec(),
            false,
        ),
        (
            "oversized frame (4 GiB - 1)",
            u32::MAX.to_be_bytes().to_vec(),
            false,
        ),
        (
            "oversized frame with its 5 MiB body",
            frame(&vec![b' '; 5 << 20]),
            false,
        ),
    ];
    for (what, bytes, then_eof) in cases {
        assert!(
            daemon_drops(&home, bytes, *then_eof),
            "{what}: the daemon kept the connection open"
        );
        still_serving(&home, port);
    }
    // The half-sent frame's connection did not block any of that, and is still open: the
    // daemon drops bad connections, not every connection. It ends when its client goes.
    pending.set_nonblocking(true).unwrap();
    let still_open = pending.read(&mut [0u8; 16]);
    assert!(
        matches!(&still_open, Err(e) if e.kind() == ErrorKind::WouldBlock),
        "{still_open:?}"
    );
    drop(pending);
    still_serving(&home, port);
    assert!(!process_is_gone(pid));
}

/// `sitectl ps` run as `nobody` against this home's daemon. `sitectl` is a copy in a
/// directory anyone can read, since the target dir may not be.
fn sitectl_as_nobody(home: &Home, bin_dir: &Path) -> Output {
    let started = Instant::now();
    loop {
        match home
            .command_for(&bin_dir.join("sitectl"))
            .arg("ps")
            .uid(65534)
            .gid(65534)
            .output()
        {
            Ok(output) => return output,
            // A process forked by another test while the copy was open for writing may
            // hold that fd until it execs: the copy is busy for a moment.
            Err(error)
                if error.raw_os_error() == Some(libc::ETXTBSY) && started.elapsed() < DEADLINE => {}
            Err(error) => panic!("run sitectl as nobody: {error}"),
        }
    }
}

/// Two locks keep other users out: the socket's 0700 directory (file permissions), and
/// the daemon's check of the peer's uid (`SO_PEERCRED`) on every connection. The test runs
/// as root, so it can be another user (`nobody`) and can open the permissions to prove
/// the second lock on its own.
#[test]
fn s13_a_client_of_another_uid_is_refused() {
    // SAFETY: geteuid has no preconditions and cannot fail.
    #[allow(unsafe_code)]
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        eprintln!("skipped: needs root to run a client as another user");
        return;
    }
    let mut home = Home::new();
    home.start_foreground(&[]);
    let site = home.site("s", &[("index.md", "# S\n")]);
    let port = home.up(&site, &["--port", "0"]);
    let bin_dir = tempfile::tempdir().unwrap();
    copy_executable(&bin("sitectl"), &bin_dir.path().join("sitectl"));
    fs::set_permissions(bin_dir.path(), fs::Permissions::from_mode(0o755)).unwrap();

    // As things are, nobody cannot even reach the socket.
    let out = sitectl_as_nobody(&home, bin_dir.path());
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("Permission denied"),
        "{}",
        stderr(&out)
    );

    // With the directories and the socket opened to everyone, nobody can connect, and
    // the daemon hangs up on it: the uid check alone keeps it out.
    for dir in [home.path(), &home.path().join("run")] {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o711)).unwrap();
    }
    fs::set_permissions(home.socket(), fs::Permissions::from_mode(0o666)).unwrap();
    let out = sitectl_as_nobody(&home, bin_dir.path());
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("lost the daemon mid-call"),
        "connected, then dropped: {}",
        stderr(&out)
    );
    assert!(
        home.foreground_log()
            .contains("refused RPC connection from another user uid=65534"),
        "{}",
        home.foreground_log()
    );
    // Its own user is still served.
    still_serving(&home, port);
}

// ---------------------------------------------------------------------------------------
// S10: rapid restart on one port.

/// Cycles for S10, and the warm-up ones before the daemon's resources are counted.
const CYCLES: usize = 200;
const WARM_UP: usize = 2;

/// `sitectl up ROOT --port PORT`, a request (which leaves a connection in TIME_WAIT on
/// the daemon's side: it closes first), then `sitectl down PORT`.
fn up_serve_down(home: &Home, root: &Path, port: u16, cycle: usize) {
    let root = root.to_str().unwrap();
    let up = home.sitectl(&["up", root, "--port", &port.to_string()]);
    assert!(
        up.status.success(),
        "cycle {cycle}: up failed: {}\nlog: {}",
        stderr(&up),
        home.foreground_log()
    );
    assert!(
        String::from_utf8_lossy(&up.stdout).contains(&format!("http://127.0.0.1:{port}/")),
        "cycle {cycle}: {}",
        String::from_utf8_lossy(&up.stdout)
    );
    assert_eq!(get(port, "/").unwrap().status, 200, "cycle {cycle}");
    let down = home.sitectl(&["down", &port.to_string()]);
    assert!(
        down.status.success(),
        "cycle {cycle}: down failed: {}",
        stderr(&down)
    );
    assert!(
        port_is_free(port),
        "cycle {cycle}: port still held after down"
    );
}

#[test]
fn s10_rapid_restart_on_one_port_never_leaks() {
    let mut home = Home::new();
    let pid = home.start_foreground(&[]);
    let root = home.site("s", &[("index.md", "# S\n"), ("static/a.css", "a {}\n")]);
    let port = free_port();
    for cycle in 0..WARM_UP {
        up_serve_down(&home, &root, port, cycle);
    }
    let (fds, threads) = (fd_count(pid), thread_count(pid));
    let started = Instant::now();
    for cycle in WARM_UP..WARM_UP + CYCLES {
        up_serve_down(&home, &root, port, cycle);
    }
    eprintln!(
        "{CYCLES} cycles in {:?}; after warm-up: {fds} fds, {threads} threads; \
         now: {} fds, {} threads",
        started.elapsed(),
        fd_count(pid),
        thread_count(pid)
    );
    // Connections and tasks of the last cycle end asynchronously; an idle thread of
    // tokio's blocking pool lives up to 10 s. So wait, with a deadline, for the counts to
    // come back to (at most) what they were after the warm-up: a leak of one per cycle
    // would never get there.
    assert!(
        wait_until(DEADLINE, || fd_count(pid) <= fds),
        "open fds grew from {fds} to {}: {}",
        fd_count(pid),
        fd_summary(pid)
    );
    assert!(
        wait_until(DEADLINE, || thread_count(pid) <= threads),
        "threads grew from {threads} to {}",
        thread_count(pid)
    );
    assert!(home.ps().is_empty());
}

// ---------------------------------------------------------------------------------------
// S12: concurrent clients; a large build blocks nobody.

/// Concurrent clients in S12.
const CLIENTS: usize = 50;

/// Runs `client(i)` for `i in 0..n` on `n` threads released at once, and returns their
/// results in order. If they are not all done within `deadline` (a deadlock), kills the
/// daemon `pid` so the stuck calls end, and panics.
fn all_at_once<R: Send + 'static>(
    n: usize,
    deadline: Duration,
    pid: impl FnOnce() -> Option<u32>,
    client: impl Fn(usize) -> R + Send + Sync + 'static,
) -> Vec<R> {
    let client = Arc::new(client);
    let start = Arc::new(Barrier::new(n));
    let (done, results) = std::sync::mpsc::channel();
    for i in 0..n {
        let (client, start, done) = (client.clone(), start.clone(), done.clone());
        std::thread::spawn(move || {
            start.wait();
            let _ = done.send((i, client(i)));
        });
    }
    let until = Instant::now() + deadline;
    let mut out: Vec<Option<R>> = (0..n).map(|_| None).collect();
    for _ in 0..n {
        match results.recv_timeout(until.saturating_duration_since(Instant::now())) {
            Ok((i, result)) => out[i] = Some(result),
            Err(_) => {
                let stuck = out.iter().filter(|r| r.is_none()).count();
                if let Some(pid) = pid() {
                    kill(pid, "KILL");
                }
                panic!("{stuck} of {n} clients still waiting after {deadline:?}: deadlock?");
            }
        }
    }
    out.into_iter()
        .map(|r| r.expect("every client reported"))
        .collect()
}

/// What went wrong for one client, if anything: each step's unexpected outcome.
type Problems = Vec<String>;

/// Runs sitectl `args` and records a problem unless it exits with `want`.
fn expect(home: &Home, problems: &mut Problems, want: i32, args: &[&str]) -> Output {
    let out = home.sitectl(args);
    if out.status.code() != Some(want) {
        problems.push(format!(
            "sitectl {args:?}: exit {:?}, wanted {want}: {}",
            out.status.code(),
            stderr(&out)
        ));
    }
    out
}

/// One of the concurrent clients: brings its own site up on its own port, checks `ps`
/// shows it, takes it down by path (twice: the second is the one expected error), brings
/// it up again on the same port, and leaves it up or takes it down again by port.
/// All of them also ask for one shared site, which must come up once.
fn client(home: &Home, i: usize, root: &Path, port: u16, shared: &Path) -> (Problems, u16) {
    let mut problems = Problems::new();
    let (root, port_arg) = (root.to_str().unwrap(), port.to_string());
    let up = expect(home, &mut problems, 0, &["up", root, "--port", &port_arg]);
    if sited_tests::port_of(&String::from_utf8_lossy(&up.stdout)) != Some(port) {
        problems.push(format!("up: not on port {port}: {:?}", up));
    }
    let shared = expect(
        home,
        &mut problems,
        0,
        &["up", shared.to_str().unwrap(), "--port", "0"],
    );
    let shared_port = sited_tests::port_of(&String::from_utf8_lossy(&shared.stdout)).unwrap_or(0);
    let ps = expect(home, &mut problems, 0, &["ps", "--json"]);
    let sites: Vec<Value> = serde_json::from_slice(&ps.stdout).unwrap_or_default();
    match row(&sites, port) {
        Some(site) if site["root"].as_str() == Some(root) && site["state"] == "serving" => {}
        other => problems.push(format!("ps: own site not serving on {port}: {other:?}")),
    }
    expect(home, &mut problems, 0, &["down", root]);
    let again = expect(home, &mut problems, 1, &["down", root]);
    if !stderr(&again).contains("no site matches") {
        problems.push(format!("second down: {}", stderr(&again)));
    }
    expect(home, &mut problems, 0, &["up", root, "--port", &port_arg]);
    if i % 2 == 1 {
        expect(home, &mut problems, 0, &["down", &port_arg]);
    }
    expect(home, &mut problems, 0, &["ps"]);
    for problem in &mut problems {
        problem.insert_str(0, &format!("client {i}: "));
    }
    (problems, shared_port)
}

#[test]
fn s12_concurrent_clients_leave_a_consistent_registry() {
    let mut home = Home::new();
    let pid = home.start_foreground(&[]);
    let roots: Vec<PathBuf> = (0..CLIENTS)
        .map(|i| home.site(&format!("s{i}"), &[("index.md", &format!("# Site {i}\n"))]))
        .collect();
    let shared = home.site("shared", &[("index.md", "# Shared\n")]);
    let ports = free_ports(CLIENTS);
    let home = Arc::new(home);
    let started = Instant::now();
    let results = {
        let (home, roots, ports, shared) =
            (home.clone(), roots.clone(), ports.clone(), shared.clone());
        all_at_once(
            CLIENTS,
            3 * DEADLINE,
            move || Some(pid),
            move |i| client(&home, i, &roots[i], ports[i], &shared),
        )
    };
    eprintln!("{CLIENTS} clients done in {:?}", started.elapsed());
    let problems: Vec<&String> = results.iter().flat_map(|(p, _)| p).collect();
    assert!(
        problems.is_empty(),
        "unexpected outcomes:\n{problems:#?}\nlog: {}",
        home.foreground_log()
    );
    let shared_port = results[0].1;
    assert!(
        results.iter().all(|(_, p)| *p == shared_port),
        "the shared site came up more than once: {:?}",
        results.iter().map(|(_, p)| p).collect::<Vec<_>>()
    );

    // Exactly the sites that should be up are: the even clients' and the shared one,
    // each on its port, serving its own content.
    let sites = home.ps();
    let mut want: Vec<(u16, String)> = (0..CLIENTS)
        .filter(|i| i % 2 == 0)
        .map(|i| {
            (
                ports[i],
                roots[i].canonicalize().unwrap().display().to_string(),
            )
        })
        .collect();
    want.push((
        shared_port,
        shared.canonicalize().unwrap().display().to_string(),
    ));
    want.sort();
    let got: Vec<(u16, String)> = sites
        .iter()
        .map(|s| {
            (
                s["port"].as_u64().unwrap() as u16,
                s["root"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(got, want);
    assert!(sites.iter().all(|s| s["state"] == "serving"), "{sites:#?}");
    for (i, &port) in ports.iter().enumerate() {
        if i % 2 == 0 {
            assert!(
                get(port, "/")
                    .unwrap()
                    .text()
                    .contains(&format!("Site {i}"))
            );
        } else {
            assert!(port_is_free(port), "client {i} took its site down");
        }
    }
    assert!(get(shared_port, "/").unwrap().text().contains("Shared"));
}

#[test]
fn s12_concurrent_clients_with_no_daemon_start_exactly_one() {
    let home = Home::new();
    let roots: Vec<PathBuf> = (0..CLIENTS)
        .map(|i| home.site(&format!("s{i}"), &[("index.md", &format!("# Site {i}\n"))]))
        .collect();
    let ports = free_ports(CLIENTS);
    let home = Arc::new(home);
    let results = {
        let (home, roots, ports) = (home.clone(), roots.clone(), ports.clone());
        let pid_home = home.clone();
        all_at_once(
            CLIENTS,
            3 * DEADLINE,
            move || pid_home.daemon_pid(),
            move |i| {
                home.sitectl(&[
                    "up",
                    roots[i].to_str().unwrap(),
                    "--port",
                    &ports[i].to_string(),
                ])
            },
        )
    };
    let failed: Vec<String> = results
        .iter()
        .enumerate()
        .filter(|(_, out)| !out.status.success())
        .map(|(i, out)| format!("client {i}: {:?} {}", out.status.code(), stderr(out)))
        .collect();
    assert!(failed.is_empty(), "{failed:#?}\nlog: {}", home.log_text());
    let pid = home.daemon_pid().expect("a daemon runs");
    let sites = home.ps();
    assert_eq!(sites.len(), CLIENTS);
    let daemons = fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| !process_is_gone(*p))
        .filter(|p| {
            fs::read(format!("/proc/{p}/environ")).is_ok_and(|env| {
                env.split(|b| *b == 0)
                    .any(|v| v == format!("SITED_HOME={}", home.path().display()).as_bytes())
            }) && fs::read_link(format!("/proc/{p}/exe")).is_ok_and(|exe| exe == bin("sited"))
        })
        .collect::<Vec<_>>();
    assert_eq!(daemons, vec![pid], "exactly one daemon for this home");
}

/// Copies the directory tree `from` to `to`.
fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Pages in the tldr corpus, and in the stand-in generated when it is not there.
const LARGE_SITE_PAGES: usize = 7425;

/// Fills `content` with a large site: a copy of the tldr corpus (7,425 pages in 10
/// sections) from the shared corpus directory next to the workspace, or, where that is
/// missing (a bare clone), as many generated pages of the same shape.
fn large_content(content: &Path) {
    if let Some(corpus) = sited_tests::corpus("tldr/content") {
        copy_tree(&corpus, content);
        return;
    }
    eprintln!("the tldr corpus is missing: generating the large site");
    for i in 0..LARGE_SITE_PAGES {
        let section = content.join(format!("section{}", i % 10));
        fs::create_dir_all(&section).unwrap();
        let mut page = format!("# command{i}\n\n> Does thing {i}.\n\n");
        for example in 0..8 {
            page.push_str(&format!(
                "- Example {example} of command{i}:\n\n`command{i} --flag{example} {{{{path/to/file}}}}`\n\n"
            ));
        }
        fs::write(section.join(format!("command{i}.md")), page).unwrap();
    }
}

#[test]
fn s12_a_large_build_blocks_neither_ps_nor_other_sites() {
    let mut home = Home::new();
    home.start_foreground(&[]);
    let big = home.path().join("sites/big");
    large_content(&big.join("content"));
    let big = big.canonicalize().unwrap();
    let small = home.site("small", &[("index.md", "# Small\n")]);
    let home = Arc::new(home);

    let up = {
        let (home, big) = (home.clone(), big.clone());
        std::thread::spawn(move || {
            let started = Instant::now();
            let out = home.sitectl(&["up", big.to_str().unwrap(), "--port", "0"]);
            (out, started.elapsed())
        })
    };
    // `ps` answers quickly all along, and shows the big site building.
    let big_root = big.display().to_string();
    let state = |sites: &[Value]| {
        sites
            .iter()
            .find(|s| s["root"] == big_root.as_str())
            .map(|s| s["state"].as_str().unwrap().to_string())
    };
    // What is proven is order, not speed (speed is measured in bench/): `ps` answers,
    // and another site makes its whole round trip, while the big site is still building.
    let timed_ps = || home.ps();
    assert!(
        wait_until(DEADLINE, || state(&timed_ps()).as_deref()
            == Some("building")),
        "the big site never showed as building: {:?}",
        timed_ps()
    );
    // Another site comes up, serves, and goes down meanwhile.
    let asked = Instant::now();
    let port = home.up(&small, &["--port", "0"]);
    assert_eq!(get(port, "/").unwrap().status, 200);
    home.sitectl_ok(&["down", &port.to_string()]);
    let small_took = asked.elapsed();
    let sites = timed_ps();
    assert_eq!(
        state(&sites).as_deref(),
        Some("building"),
        "the big build ended before the small site's round trip ({small_took:?}): \
         nothing proven"
    );
    let mut samples = 0;
    while !up.is_finished() {
        timed_ps();
        samples += 1;
    }

    let (out, took) = up.join().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let sites = timed_ps();
    let site = sites
        .iter()
        .find(|s| s["root"] == big_root.as_str())
        .unwrap();
    assert_eq!(site["state"], "serving");
    assert!(
        site["pages"].as_u64().unwrap() as usize >= LARGE_SITE_PAGES,
        "{site}"
    );
    eprintln!(
        "big site up in {took:?} ({} pages); small site round trip {small_took:?}; \
         {samples} ps calls meanwhile",
        site["pages"]
    );
}

// ---------------------------------------------------------------------------------------
// Panic isolation in a request handler (DESIGN.md, "Panic isolation").

#[test]
fn panic_in_a_request_handler_is_that_requests_500() {
    let mut home = Home::with_env("SITED_TEST_PANIC_REQUEST", "1");
    let pid = home.start_foreground(&[]);
    let a = home.site("a", &[("index.md", "# Site a\n")]);
    let b = home.site("b", &[("index.md", "# Site b\n")]);
    let (a, b) = (home.up(&a, &["--port", "0"]), home.up(&b, &["--port", "0"]));
    let mut events = sited_tests::Events::connect(a).unwrap();
    events.next_state();

    let panicked = get(a, "/__sited/test-panic").unwrap();
    assert_eq!(panicked.status, 500, "{}", panicked.text());
    assert!(
        home.foreground_log().contains("request handler panicked"),
        "{}",
        home.foreground_log()
    );
    // On one keep-alive connection: the panicking request, then a normal one. The
    // connection outlives the panic.
    let both = sited_tests::http_raw(
        a,
        format!(
            "GET /__sited/test-panic HTTP/1.1\r\nHost: localhost:{a}\r\n\r\n\
             GET / HTTP/1.1\r\nHost: localhost:{a}\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
    )
    .unwrap();
    assert_eq!(both.status, 500);
    let rest = both.text();
    assert!(rest.contains("HTTP/1.1 200 OK"), "second answer: {rest}");
    assert!(rest.contains("Site a"), "{rest}");

    // The site, the other site and the daemon carry on; the live-reload stream too.
    for _ in 0..3 {
        assert_eq!(get(a, "/__sited/test-panic").unwrap().status, 500);
    }
    assert!(get(a, "/").unwrap().text().contains("Site a"));
    assert!(get(b, "/").unwrap().text().contains("Site b"));
    let sites = home.ps();
    assert!(sites.iter().all(|s| s["state"] == "serving"), "{sites:#?}");
    assert!(!process_is_gone(pid));
    // The same live-reload stream, opened before the panics, still reports rebuilds.
    fs::write(home.path().join("sites/a/index.md"), "# Site a, edited\n").unwrap();
    assert_eq!(events.next_state()["generation"], 1);
    assert!(get(a, "/").unwrap().text().contains("Site a, edited"));
}

#[test]
fn the_test_panic_trigger_is_off_by_default() {
    let home = Home::new();
    let root = home.site("a", &[("index.md", "# Site a\n")]);
    let port = home.up(&root, &["--port", "0"]);
    assert_eq!(get(port, "/__sited/test-panic").unwrap().status, 404);
}

// ---------------------------------------------------------------------------------------
// S28: the RPC socket file deleted while the daemon runs.

#[test]
fn s28_a_deleted_socket_is_made_again_and_the_daemon_still_found() {
    let home = Home::new();
    let root = home.site("s", &[("index.md", "# S\n")]);
    let port = home.up(&root, &["--port", "0"]);
    let pid = home.daemon_pid().unwrap();
    fs::remove_file(home.socket()).unwrap();

    // Every command still finds the daemon: it makes its socket again, and clients wait
    // for it while the lock says a daemon runs.
    let sites = home.ps();
    assert_eq!(sites.len(), 1, "{sites:?}");
    assert_eq!(sites[0]["port"], port);
    let status = home.sitectl_ok(&["daemon", "status"]);
    assert!(status.contains(&format!("pid {pid}")), "{status}");
    assert!(home.socket().exists());
    assert!(
        home.log_text()
            .contains("the socket file was deleted; listening on a new one"),
        "{}",
        home.log_text()
    );
    let stopped = home.sitectl_ok(&["daemon", "stop"]);
    assert!(
        stopped.contains(&format!("sited stopped (pid {pid})")),
        "{stopped}"
    );
    assert!(wait_until(DEADLINE, || process_is_gone(pid)));
    assert!(port_is_free(port));
}

// ---------------------------------------------------------------------------------------
// S24: the daemon frozen (SIGSTOP) during a client's call.

#[test]
fn s24_a_frozen_daemon_fails_every_call_within_its_deadline_naming_its_pid() {
    let home = Home::new();
    let big = home.path().join("sites/big");
    large_content(&big.join("content"));
    let home = Arc::new(home);
    let up = {
        let (home, big) = (home.clone(), big.clone());
        std::thread::spawn(move || home.sitectl(&["up", big.to_str().unwrap(), "--port", "0"]))
    };
    let building = || {
        home.ps()
            .iter()
            .any(|site| site["state"] == "building" || site["state"] == "starting")
    };
    assert!(wait_until(DEADLINE, building), "the big site never built");
    let pid = home.daemon_pid().unwrap();
    kill(pid, "STOP");
    // The `up` in flight waits for a build, which may take long; a frozen daemon is
    // found out by its pulse, not after the build's deadline of minutes.
    let waited = wait_until(DEADLINE, || up.is_finished());
    kill(pid, "CONT");
    assert!(waited, "the client of a frozen daemon is still waiting");
    let out = up.join().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "sited (pid {pid}) stopped answering while waiting for the first build"
        )),
        "{stderr}"
    );
    // A new call to a frozen daemon fails at the handshake, naming the pid.
    kill(pid, "STOP");
    let out = home.sitectl(&["ps"]);
    kill(pid, "CONT");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains(&format!("sited (pid {pid}) did not answer the handshake")),
        "{stderr}"
    );
    home.sitectl_ok(&["down", "--all"]);
}

// ---------------------------------------------------------------------------------------
// S23: pseudo-file-system roots and trees larger than the watch budget.

#[test]
fn s23_pseudo_file_system_roots_are_refused() {
    let home = Home::new();
    for root in ["/proc/self", "/sys/kernel"] {
        if !Path::new(root).is_dir() {
            continue;
        }
        let out = home.sitectl(&["up", root]);
        let stderr = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{root}: {stderr}");
        assert!(stderr.contains("pseudo-file system"), "{root}: {stderr}");
    }
    assert!(home.ps().is_empty());
}

#[test]
fn s23_a_tree_beyond_the_watch_budget_is_served_unwatched_and_others_keep_live_reload() {
    let home = Home::new();
    let big = home.site("big", &[("index.md", "# Big\n")]);
    for i in 0..20_001 {
        fs::create_dir_all(big.join(format!("d{}/e{i}", i % 100))).unwrap();
    }
    let small = home.site("small", &[("index.md", "# Small\n")]);
    let big_port = home.up(&big, &["--port", "0"]);
    let small_port = home.up(&small, &["--port", "0"]);
    let sites = home.ps();
    let row = sites.iter().find(|s| s["port"] == big_port).unwrap();
    assert!(
        row["warnings"].to_string().contains("too many to watch"),
        "{row}"
    );
    assert_eq!(get(big_port, "/").unwrap().status, 200);
    // The other site still reloads on a change.
    let mut events = sited_tests::Events::connect(small_port).unwrap();
    let first = events.next_state();
    fs::write(small.join("index.md"), "# Small, edited\n").unwrap();
    events.until(|state| state["generation"] != first["generation"]);
    assert!(get(small_port, "/").unwrap().text().contains("edited"));
    home.sitectl_ok(&["down", &big_port.to_string()]);
    assert!(port_is_free(big_port));
}
