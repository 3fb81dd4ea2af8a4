//! Attached sites (`sitectl up --attach` / `sitectl serve`), S7: the site lives exactly as
//! long as the client; and `sitectl logs -f` following a site's log.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use sited_tests::{DEADLINE, Home, get, kill, port_is_free, port_of, wait_until};

/// Starts `sitectl ARGS` with its stdout read line by line on a thread.
fn spawn(home: &Home, args: &[&str]) -> (Child, mpsc::Receiver<String>) {
    let mut command = home.command("sitectl");
    command
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    // A hangup ends sitectl by its default action, and an ignored one is inherited
    // through exec: under `nohup` (a test run left to itself) the client would ignore
    // the SIGHUP the test sends, as `nohup sitectl serve` is meant to.
    // SAFETY: between fork and exec the closure only calls signal(2), which is
    // async-signal-safe, and touches no memory shared with the parent.
    #[allow(unsafe_code)]
    unsafe {
        command.pre_exec(|| {
            if libc::signal(libc::SIGHUP, libc::SIG_DFL) == libc::SIG_ERR {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command.spawn().expect("start sitectl");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

/// Waits for a line containing `needle`.
fn line_with(lines: &mpsc::Receiver<String>, needle: &str) -> String {
    let start = Instant::now();
    loop {
        let left = DEADLINE.saturating_sub(start.elapsed());
        let line = lines
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no line with {needle:?} within {DEADLINE:?}"));
        if line.contains(needle) {
            return line;
        }
    }
}

/// Brings up an attached site and a detached one; ends the client with `signal`.
fn attached_site_goes_down_with_its_client(signal: &str) {
    let home = Home::new();
    let attached_root = home.site("attached", &[("index.md", "# Attached\n")]);
    let other_root = home.site("other", &[("index.md", "# Other\n")]);
    let other = home.up(&other_root, &["--port", "0"]);
    let (mut client, lines) = spawn(
        &home,
        &["serve", attached_root.to_str().unwrap(), "--port", "0"],
    );
    let port = port_of(&line_with(&lines, "serving")).unwrap();
    assert_eq!(get(port, "/").unwrap().status, 200);
    let sites = home.ps();
    let row = sites.iter().find(|s| s["port"] == port).unwrap();
    assert_eq!(row["attached"], true);
    // Attached sites are never remembered.
    let state = std::fs::read_to_string(home.path().join("state/state.json")).unwrap();
    assert!(!state.contains("attached"), "{state}");

    let sent = Instant::now();
    kill(client.id(), signal);
    if !wait_until(DEADLINE, || client.try_wait().unwrap().is_some()) {
        let _ = client.kill();
        panic!("sitectl outlived SIG{signal}");
    }
    assert!(
        wait_until(DEADLINE, || port_is_free(port)),
        "the attached site outlived its client"
    );
    eprintln!(
        "SIG{signal}: attached site's port free after {:?}",
        sent.elapsed()
    );
    assert!(wait_until(DEADLINE, || home
        .ps()
        .iter()
        .all(|s| s["port"] != port)));
    assert_eq!(
        get(other, "/").unwrap().status,
        200,
        "other sites untouched"
    );
    assert_eq!(home.ps().len(), 1);
}

#[test]
fn s07_sigkill_of_the_attached_client_takes_its_site_down() {
    attached_site_goes_down_with_its_client("KILL");
}

#[test]
fn s07_closed_terminal_sighup_takes_its_site_down() {
    attached_site_goes_down_with_its_client("HUP");
}

#[test]
fn s07_ctrl_c_stops_the_attached_site_and_says_so() {
    let home = Home::new();
    let root = home.site("attached", &[("index.md", "# Attached\n")]);
    let (mut client, lines) = spawn(
        &home,
        &["up", "--attach", root.to_str().unwrap(), "--port", "0"],
    );
    let port = port_of(&line_with(&lines, "serving")).unwrap();
    // The site's log is streamed: its first build is there.
    line_with(&lines, "built");
    // A change shows up in the stream as it happens.
    std::fs::write(root.join("index.md"), "# Attached, edited\n").unwrap();
    let start = Instant::now();
    let mut builds = 0;
    while builds < 1 && start.elapsed() < DEADLINE {
        if let Ok(line) = lines.recv_timeout(Duration::from_millis(100))
            && line.contains("built")
        {
            builds += 1;
        }
    }
    assert_eq!(builds, 1, "the rebuild's log line was streamed");
    kill(client.id(), "INT");
    let status = client.wait().unwrap();
    assert!(status.success(), "Ctrl+C is a normal end: {status}");
    line_with(&lines, &format!("stopped http://127.0.0.1:{port}/"));
    assert!(port_is_free(port));
}

#[test]
fn up_attach_to_an_already_detached_site_does_not_adopt_it() {
    let home = Home::new();
    let root = home.site("s", &[("index.md", "# S\n")]);
    let port = home.up(&root, &["--port", "0"]);
    let out = home.sitectl(&["up", "--attach", root.to_str().unwrap()]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not attaching"), "{stderr}");
    assert_eq!(
        get(port, "/").unwrap().status,
        200,
        "still up after the client left"
    );
}

#[test]
fn logs_follow_shows_the_line_a_file_edit_causes() {
    let home = Home::new();
    let root = home.site("s", &[("index.md", "# Logged\n")]);
    let port = home.up(&root, &["--port", "0"]);
    let recent = home.sitectl_ok(&["logs", &port.to_string()]);
    assert_eq!(recent.matches("built").count(), 1, "{recent}");
    let by_path = home.sitectl_ok(&["logs", root.to_str().unwrap(), "-n", "1"]);
    assert_eq!(by_path.lines().count(), 1, "{by_path}");

    let (mut follower, lines) = spawn(&home, &["logs", &port.to_string(), "-f"]);
    line_with(&lines, "built");
    std::fs::write(root.join("broken.md"), "+++\ntitle = \"oops\n+++\n").unwrap();
    let line = line_with(&lines, "broken.md");
    assert!(
        line.contains("WARN") && line.contains("broken.md:2"),
        "{line}"
    );
    // The rebuild's line says what changed and how it went.
    let line = line_with(&lines, "rebuilt after broken.md: ");
    assert!(line.contains(", 1 error in "), "{line}");
    let _ = follower.kill();
    let _ = follower.wait();

    let daemon = home.sitectl_ok(&["logs", "--daemon"]);
    assert!(daemon.contains("sited ready"), "{daemon}");
    let missing = home.sitectl(&["logs", "65000"]);
    assert_eq!(missing.status.code(), Some(1));
}

#[test]
fn s07_client_killed_during_the_first_build_takes_the_site_down() {
    let home = Home::new();
    // A build that takes seconds (a template that loops), so the client can die in it.
    let mut files = vec![(
        "templates/page.html".to_string(),
        "{% for i in range(300) %}{% for j in range(1000) %}{% endfor %}{% endfor %}{{ page.title }}"
            .to_string(),
    )];
    for i in 0..30 {
        files.push((format!("content/p{i}.md"), format!("# Page {i}\n")));
    }
    let files: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    let root = home.site("slow", &files);
    home.sitectl_ok(&["daemon", "start"]);
    let (mut client, _lines) = spawn(&home, &["serve", root.to_str().unwrap(), "--port", "0"]);
    let mut port = 0;
    assert!(
        wait_until(DEADLINE, || {
            home.ps()
                .iter()
                .find(|s| s["state"] == "building")
                .map(|s| port = s["port"].as_u64().unwrap() as u16)
                .is_some()
        }),
        "the site never showed as building"
    );
    kill(client.id(), "KILL");
    let _ = client.wait();
    assert!(
        wait_until(DEADLINE, || home.ps().is_empty()),
        "the attached site outlived its client: {:?}",
        home.ps()
    );
    assert!(wait_until(DEADLINE, || port_is_free(port)));
}

/// Issue 16.2: a follower's long-poll ends with the daemon's shutdown instead of holding
/// it until the poll's deadline (30 s, cut short at 3 s by the shutdown deadline, which
/// exits 1 and says so in the log).
#[test]
fn daemon_stop_with_a_log_follower_is_clean_and_ends_the_follower() {
    let home = Home::new();
    let root = home.site("blog", &[("index.md", "# Blog\n")]);
    let port = home.up(&root, &["--port", "0"]);
    let mut follower = home
        .command("sitectl")
        .args(["logs", &port.to_string(), "-f"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start sitectl logs -f");
    let stdout = follower.stdout.take().unwrap();
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    // The recent lines are printed before the follower starts waiting for new ones.
    line_with(&lines, "starting");
    let pid = home.daemon_pid().expect("daemon running");

    home.sitectl_ok(&["daemon", "stop"]);
    assert!(
        wait_until(DEADLINE, || follower.try_wait().unwrap().is_some()),
        "the follower outlived the daemon"
    );
    let status = follower.wait().unwrap();
    let mut said = String::new();
    std::io::Read::read_to_string(follower.stderr.as_mut().unwrap(), &mut said).unwrap();
    assert!(status.success(), "{status}: {said}");
    assert!(said.contains("the daemon is shutting down"), "{said}");
    assert!(
        wait_until(DEADLINE, || sited_tests::process_is_gone(pid)),
        "daemon still running"
    );
    assert!(port_is_free(port), "port {port} still held");
    let log = home.log_text();
    assert!(log.contains("sited stopped"), "{log}");
    assert!(
        !log.contains("deadline passed") && !log.contains("exiting at once"),
        "the shutdown was cut short: {log}"
    );
}
