//! up / ps / down through the real daemon: the everyday loop.

use sited_tests::{DEADLINE, Home, example_blog, get, port_is_free, wait_until};

#[test]
fn up_serves_the_example_blog_and_down_frees_the_port() {
    let home = Home::new();
    let port = home.up(&example_blog(), &["--port", "0"]);

    let home_page = get(port, "/").unwrap();
    assert_eq!(home_page.status, 200);
    assert_eq!(
        home_page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let html = home_page.text();
    assert!(html.contains("<title>Field Notes</title>"), "{html}");
    assert!(
        html.contains("/posts/a-week-at-the-lighthouse/"),
        "recent posts listed: {html}"
    );
    assert!(
        !html.contains("half-finished-idea"),
        "drafts are left out: {html}"
    );

    let sites = home.ps();
    assert_eq!(sites.len(), 1);
    assert_eq!(sites[0]["state"], "serving");
    assert_eq!(sites[0]["port"], port);
    assert!(sites[0]["pages"].as_u64().unwrap() >= 8, "{sites:?}");
    assert!(sites[0]["build_ms"].is_u64(), "{sites:?}");

    let table = home.sitectl_ok(&["ps"]);
    assert!(table.starts_with("PORT"), "{table}");
    assert!(table.contains("serving"), "{table}");
    assert!(
        table.contains(&format!("http://127.0.0.1:{port}/")),
        "{table}"
    );

    let out = home.sitectl_ok(&["down", "--all"]);
    assert!(out.contains(&format!(":{port}/")), "{out}");
    assert!(port_is_free(port), "port {port} still held after down");
    assert!(home.ps().is_empty());
}

#[test]
fn up_is_idempotent_for_the_same_root() {
    let home = Home::new();
    let root = home.site("notes", &[("index.md", "# Notes\n\nHello.\n")]);
    let first = home.up(&root, &["--port", "0"]);
    let again = home.up(&root, &[]);
    assert_eq!(first, again);
    // The same directory reached through another spelling is the same site.
    let dotted = root.join("..").join("notes");
    assert_eq!(home.up(&dotted, &[]), first);
    assert_eq!(home.ps().len(), 1);
}

#[test]
fn ps_json_has_a_stable_schema() {
    let home = Home::new();
    let root = home.site("s", &[("content/a.md", "+++\ntitle = \"A\"\n+++\nText\n")]);
    let port = home.up(&root, &["--port", "0"]);
    let sites = home.ps();
    let site = sites[0].as_object().unwrap();
    let mut keys: Vec<&str> = site.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "address",
            "attached",
            "build_ms",
            "build_warnings",
            "builder",
            "built_at_ms",
            "drafts",
            "errors",
            "files",
            "pages",
            "port",
            "progress",
            "reason",
            "root",
            "started_at_ms",
            "state",
            "url",
            "warnings"
        ]
    );
    assert_eq!(site["port"], port);
    assert_eq!(site["url"], format!("http://127.0.0.1:{port}/"));
    assert_eq!(site["root"], root.canonicalize().unwrap().to_str().unwrap());
    assert_eq!(site["state"], "serving");
    assert!(site["reason"].is_null());
    assert_eq!(site["pages"], 3, "page, home, 404");
    assert!(site["errors"].as_array().unwrap().is_empty());
    assert!(site["started_at_ms"].as_u64().unwrap() > 1_600_000_000_000);
    assert_eq!(site["drafts"], false);
    assert!(site["warnings"].as_array().unwrap().is_empty());
    assert_eq!(site["attached"], false);
    assert!(site["progress"].is_null(), "only while building");
}

#[test]
fn two_sites_at_once_serve_their_own_content() {
    let home = Home::new();
    let a = home.site("a", &[("index.md", "# Alpha site\n")]);
    let b = home.site("b", &[("index.md", "# Beta site\n")]);
    let port_a = home.up(&a, &["--port", "0"]);
    let port_b = home.up(&b, &["--port", "0"]);
    assert_ne!(port_a, port_b);
    assert!(get(port_a, "/").unwrap().text().contains("Alpha site"));
    assert!(get(port_b, "/").unwrap().text().contains("Beta site"));
    assert_eq!(home.ps().len(), 2);

    // Down by path leaves the other one alone.
    home.sitectl_ok(&["down", a.to_str().unwrap()]);
    assert!(port_is_free(port_a));
    assert!(get(port_b, "/").unwrap().text().contains("Beta site"));
    home.sitectl_ok(&["down", &port_b.to_string()]);
    assert!(port_is_free(port_b));
}

#[test]
fn no_port_given_takes_the_first_free_port_from_the_first_upward() {
    // The scan starts at 5173; here at a port the OS gave this test, which it keeps
    // holding: no fixed range needs to be free, and the first port is certainly taken.
    let held = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let first = held.local_addr().unwrap().port();
    let home = Home::with_env("SITED_TEST_FIRST_PORT", &first.to_string());
    let root = home.site("s", &[("index.md", "# S\n")]);
    // Other programs may hold some ports after it: only the direction is certain.
    let port = home.up(&root, &[]);
    assert!(port > first, "{port} after {first}");
    // A second site gets another port of the same scan.
    let other = home.site("t", &[("index.md", "# T\n")]);
    let second = home.up(&other, &[]);
    assert!(
        second > first && second != port,
        "{second} after {first}, not {port}"
    );
    drop(held);
}

#[test]
fn explicit_port_taken_by_another_site_is_refused() {
    let home = Home::new();
    let a = home.site("a", &[("index.md", "# A\n")]);
    let b = home.site("b", &[("index.md", "# B\n")]);
    let port = home.up(&a, &["--port", "0"]);
    let out = home.sitectl(&["up", b.to_str().unwrap(), "--port", &port.to_string()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("error: port {port} is already serving")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("sitectl down {port}")),
        "hint: {stderr}"
    );
    assert_eq!(home.ps().len(), 1);
}

#[test]
fn down_of_an_unknown_site_says_so() {
    let home = Home::new();
    let out = home.sitectl(&["down", "65000"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("error: no site matches port 65000"),
        "{stderr}"
    );
}

#[test]
fn build_errors_are_reported_and_the_rest_is_served() {
    let home = Home::new();
    let root = home.site(
        "s",
        &[
            ("content/good.md", "# Good page\n"),
            ("content/bad.md", "+++\ntitle = \"unterminated\n+++\nbody\n"),
        ],
    );
    let out = home.sitectl(&["up", root.to_str().unwrap(), "--port", "0"]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("content/bad.md:2:"),
        "file:line in the warning: {stderr}"
    );
    let port = sited_tests::port_of(&String::from_utf8_lossy(&out.stdout)).unwrap();
    assert_eq!(get(port, "/good/").unwrap().status, 200);
    let sites = home.ps();
    let error = &sites[0]["errors"][0];
    assert_eq!(error["file"], "content/bad.md");
    assert_eq!(error["line"], 2);
    let table = home.sitectl_ok(&["ps"]);
    assert!(table.contains("error: content/bad.md:2:"), "{table}");
}

#[test]
fn sitectl_starts_the_daemon_once_and_daemon_stop_ends_it() {
    let home = Home::new();
    assert!(!home.answers());
    let status = home.sitectl(&["daemon", "status"]);
    assert_eq!(status.status.code(), Some(3), "not running is exit 3");

    home.sitectl_ok(&["daemon", "start"]);
    let pid = home.daemon_pid().expect("lock holds the pid");
    let again = home.sitectl_ok(&["daemon", "start"]);
    assert!(again.contains("already running"), "{again}");
    assert_eq!(home.daemon_pid(), Some(pid), "no second daemon");

    let root = home.site("s", &[("index.md", "# S\n")]);
    let port = home.up(&root, &["--port", "0"]);
    let out = home.sitectl_ok(&["daemon", "stop"]);
    assert!(out.contains("stopped"), "{out}");
    assert!(wait_until(DEADLINE, || sited_tests::process_is_gone(pid)));
    assert!(port_is_free(port));
    assert!(!home.socket().exists());
    assert!(!home.lock().exists());
}

#[test]
fn a_folder_without_markdown_is_served_with_a_no_content_warning() {
    let home = Home::new();
    let root = home.site("empty", &[("static/style.css", "body{}")]);
    let out = home.sitectl_ok(&["up", root.to_str().unwrap(), "--port", "0"]);
    assert!(out.contains("1 warning"), "said at once: {out}");
    let logs = home.sitectl_ok(&["logs", root.to_str().unwrap()]);
    assert!(logs.contains("no content"), "{logs}");
    let sites = home.ps();
    let warnings = sites[0]["build_warnings"].as_array().unwrap();
    assert!(
        warnings
            .iter()
            .any(|w| w["message"].as_str().unwrap().starts_with("no content")),
        "{warnings:?}"
    );
}
