//! `sitectl restart`, `rebuild` and `open` (and `up --open`) through the real daemon.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use sited_tests::{Home, get, port_is_free, write_executable};

/// A directory with an executable `xdg-open` that runs `body` (a shell script).
fn opener_dir(body: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("xdg-open");
    write_executable(&script, format!("#!/bin/sh\n{body}\n").as_bytes());
    dir
}

/// A home whose PATH has a fake `xdg-open` that writes each URL it is given to
/// `opened` next to it.
fn home_with_recording_opener() -> (Home, tempfile::TempDir) {
    let dir = opener_dir(r#"echo "$1" >> "$(dirname "$0")/opened""#);
    let path = format!("{}:/usr/bin:/bin", dir.path().display());
    (Home::with_env("PATH", &path), dir)
}

fn opened(dir: &Path) -> String {
    fs::read_to_string(dir.join("opened")).unwrap_or_default()
}

fn site_json(home: &Home, port: u16) -> serde_json::Value {
    home.ps()
        .into_iter()
        .find(|s| s["port"] == port)
        .unwrap_or_else(|| panic!("no site on port {port}"))
}

#[test]
fn restart_brings_the_site_back_on_its_port_with_its_options_and_log() {
    let home = Home::new();
    let root = home.site(
        "blog",
        &[
            ("content/a.md", "# A\n"),
            (
                "content/draft.md",
                "+++\ntitle = \"Draft\"\ndraft = true\n+++\nSoon.\n",
            ),
        ],
    );
    let port = home.up(&root, &["--port", "0", "--drafts"]);
    let before = site_json(&home, port);

    let out = home.sitectl_ok(&["restart", root.to_str().unwrap()]);
    assert!(
        out.starts_with(&format!(
            "restarted {} at http://127.0.0.1:{port}/",
            root.display()
        )),
        "{out}"
    );
    let after = site_json(&home, port);
    assert_eq!(after["state"], "serving", "returns once it serves: {after}");
    assert_eq!(after["drafts"], true, "same options: {after}");
    assert!(
        after["started_at_ms"].as_u64() > before["started_at_ms"].as_u64(),
        "a new life: {before} → {after}"
    );
    assert_eq!(
        get(port, "/draft/").unwrap().status,
        200,
        "drafts still built"
    );
    // The log carries on across the restart: both starts are in it, and why.
    let log = home.sitectl_ok(&["logs", &port.to_string()]);
    assert_eq!(
        log.lines().filter(|l| l.ends_with(" starting")).count(),
        2,
        "{log}"
    );
    assert!(log.contains("restarting, as asked"), "{log}");
    assert_eq!(home.ps().len(), 1);
}

#[test]
fn restart_all_leaves_attached_sites_alone_and_a_missing_site_is_an_error() {
    let home = Home::new();
    let a = home.site("a", &[("index.md", "# A\n")]);
    let b = home.site("b", &[("index.md", "# B\n")]);
    let c = home.site("c", &[("index.md", "# C\n")]);
    let port_a = home.up(&a, &["--port", "0"]);
    let port_b = home.up(&b, &["--port", "0"]);
    let mut attached = home
        .command("sitectl")
        .args(["serve", c.to_str().unwrap(), "--port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kept open to the end: `serve` ends when its output goes away.
    let mut output = BufReader::new(attached.stdout.take().unwrap());
    let mut first = String::new();
    output.read_line(&mut first).unwrap();
    let port_c = sited_tests::port_of(&first).unwrap_or_else(|| panic!("{first:?}"));
    let before_c = site_json(&home, port_c)["started_at_ms"].clone();

    let out = home.sitectl_ok(&["restart", "--all"]);
    assert_eq!(out.matches("restarted ").count(), 2, "{out}");
    assert!(
        out.contains(&format!("left http://127.0.0.1:{port_c}/ alone")),
        "{out}"
    );
    for port in [port_a, port_b] {
        assert_eq!(site_json(&home, port)["state"], "serving");
    }
    assert_eq!(site_json(&home, port_c)["started_at_ms"], before_c);
    // Named, an attached site is refused with the reason.
    let output = home.sitectl(&["restart", &port_c.to_string()]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("is attached to the `sitectl serve`"),
        "{stderr}"
    );
    attached.kill().unwrap();
    attached.wait().unwrap();
    drop(output);

    // One target names no site: said, the others are still restarted, exit 1.
    let output = home.sitectl(&["restart", "1", &port_a.to_string()]);
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stdout.contains(&format!(":{port_a}/")), "{stdout}");
    assert_eq!(
        stderr.matches("error: no site matches port 1").count(),
        1,
        "{stderr}"
    );
}

#[test]
fn restart_of_a_site_whose_folder_is_gone_says_so_and_keeps_it_listed() {
    let home = Home::new();
    let root = home.site("gone", &[("index.md", "# Gone\n")]);
    let port = home.up(&root, &["--port", "0"]);
    fs::remove_dir_all(&root).unwrap();
    let output = home.sitectl(&["restart", &port.to_string()]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("does not exist"), "{stderr}");
    assert!(home.ps().iter().any(|s| s["port"] == port));
}

#[test]
fn rebuild_waits_for_a_full_build_and_prints_it() {
    let home = Home::new();
    let root = home.site("s", &[("content/a.md", "# A\n")]);
    let port = home.up(&root, &["--port", "0"]);
    let before = site_json(&home, port)["built_at_ms"].as_u64().unwrap();

    let out = home.sitectl_ok(&["rebuild", &port.to_string()]);
    assert!(
        out.starts_with(&format!(
            "rebuilt {} at http://127.0.0.1:{port}/ (3 pages in ",
            root.display()
        )),
        "{out}"
    );
    let after = site_json(&home, port);
    assert_eq!(
        after["state"], "serving",
        "returned before the build was out"
    );
    assert!(after["built_at_ms"].as_u64().unwrap() >= before, "{after}");
    let log = home.sitectl_ok(&["logs", &port.to_string()]);
    assert_eq!(log.matches("built: 3 pages in ").count(), 1, "{log}");
    assert_eq!(
        log.matches("rebuilt as asked: 3 pages in ").count(),
        1,
        "a second build: {log}"
    );
    assert!(log.contains("building everything again, as asked"), "{log}");

    // Build errors are warnings: the rest is served, exit 0.
    fs::write(root.join("content/b.md"), "+++\ntitle = \"B\n+++\n").unwrap();
    let output = home.sitectl(&["rebuild", "--all"]);
    assert!(output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("warning: the build has 1 error(s)") && stderr.contains("content/b.md:2"),
        "{stderr}"
    );
}

#[test]
fn rebuild_of_a_failed_site_is_an_error_that_points_at_its_log() {
    let home = Home::new();
    let root = home.site("gone", &[("index.md", "# Gone\n")]);
    let port = home.up(&root, &["--port", "0"]);
    fs::remove_dir_all(&root).unwrap();
    assert!(sited_tests::wait_until(sited_tests::DEADLINE, || {
        site_json(&home, port)["state"] == "failed"
    }));
    let output = home.sitectl(&["rebuild", &port.to_string()]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("error: the site on port {port} failed")),
        "{stderr}"
    );
    assert!(stderr.contains("caused by: site root"), "{stderr}");
    assert!(stderr.contains(&format!("sitectl logs {port}")), "{stderr}");
}

#[test]
fn open_hands_the_url_to_the_system_opener() {
    let (home, opener) = home_with_recording_opener();
    let a = home.site("a", &[("index.md", "# A\n")]);
    let port_a = home.up(&a, &["--port", "0"]);
    let url_a = format!("http://127.0.0.1:{port_a}/");

    // The only site: no need to name it.
    let out = home.sitectl_ok(&["open"]);
    assert_eq!(out, format!("opened {url_a}\n"));
    assert_eq!(opened(opener.path()), format!("{url_a}\n"));

    // By path, and with two sites by port.
    let b = home.site("b", &[("index.md", "# B\n")]);
    let port_b = home.up(&b, &["--port", "0"]);
    let url_b = format!("http://127.0.0.1:{port_b}/");
    home.sitectl_ok(&["open", b.to_str().unwrap()]);
    home.sitectl_ok(&["open", &port_a.to_string()]);
    assert_eq!(
        opened(opener.path()),
        format!("{url_a}\n{url_b}\n{url_a}\n")
    );

    // Two sites and no target: the one whose folder we are in.
    let inside = home
        .command("sitectl")
        .arg("open")
        .current_dir(&b)
        .output()
        .unwrap();
    assert!(inside.status.success(), "{inside:?}");
    assert!(opened(opener.path()).ends_with(&format!("{url_b}\n")));
    // ...and outside both it is a question back (usage, exit 2).
    let outside = home
        .command("sitectl")
        .arg("open")
        .current_dir(home.path())
        .output()
        .unwrap();
    assert_eq!(outside.status.code(), Some(2), "{outside:?}");
}

#[test]
fn up_open_opens_the_new_site() {
    let (home, opener) = home_with_recording_opener();
    let root = home.site("a", &[("index.md", "# A\n")]);
    let port = home.up(&root, &["--port", "0", "--open"]);
    assert_eq!(opened(opener.path()), format!("http://127.0.0.1:{port}/\n"));
}

#[test]
fn without_an_opener_up_open_still_serves_and_gives_the_url() {
    let empty = tempfile::tempdir().unwrap();
    let home = Home::with_env("PATH", empty.path().to_str().unwrap());
    let root: PathBuf = home.site("a", &[("index.md", "# A\n")]);
    let output = home.sitectl(&["up", root.to_str().unwrap(), "--port", "0", "--open"]);
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let port = sited_tests::port_of(&stdout).unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "warning: cannot open http://127.0.0.1:{port}/ in a browser"
        )),
        "{stderr}"
    );
    assert!(stderr.contains("no `xdg-open`"), "{stderr}");
    assert_eq!(get(port, "/").unwrap().status, 200);
    home.sitectl_ok(&["down", "--all"]);
    assert!(port_is_free(port));
}
