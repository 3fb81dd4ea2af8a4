//! Watching, rebuilding and live reload, end to end: scenarios S9, S11, S16, S18 and the
//! ways editors save files.

use std::fs;
use std::path::Path;

use serde_json::Value;
use sited_tests::{Events, Home, get};

/// A small site with a section, a stylesheet and a page to edit.
fn site(home: &Home, name: &str) -> std::path::PathBuf {
    home.site(
        name,
        &[
            (
                "content/_index.md",
                "+++\ntitle = \"Home\"\n+++\nWelcome.\n",
            ),
            ("content/notes/_index.md", "+++\ntitle = \"Notes\"\n+++\n"),
            (
                "content/notes/page.md",
                "+++\ntitle = \"Page\"\n+++\nFirst version.\n",
            ),
            (
                "content/notes/other.md",
                "+++\ntitle = \"Other\"\n+++\nOther page.\n",
            ),
            ("static/custom.css", "body { color: black; }\n"),
        ],
    )
}

fn generation(event: &Value) -> u64 {
    event["generation"].as_u64().expect("generation")
}

fn body(port: u16, path: &str) -> String {
    get(port, path).unwrap().text()
}

#[test]
fn s09_failed_rebuild_keeps_serving_the_last_good_build() {
    let home = Home::new();
    let root = site(&home, "s");
    let other_root = site(&home, "other");
    let port = home.up(&root, &["--port", "0"]);
    let other = home.up(&other_root, &["--port", "0"]);
    let mut events = Events::connect(port).unwrap();
    let mut other_events = Events::connect(other).unwrap();
    let start = events.next_state();
    assert!(start["errors"].as_array().unwrap().is_empty());
    other_events.next_state();

    // Broken front matter: the overlay gets file:line, the page keeps its last good HTML.
    let page = root.join("content/notes/page.md");
    fs::write(
        &page,
        "+++\ntitle = \"Page\ndate = 2026-01-01\n+++\nSecond version.\n",
    )
    .unwrap();
    let broken = events.until(|e| !e["errors"].as_array().unwrap().is_empty());
    let error = &broken["errors"][0];
    assert_eq!(
        error["location"]
            .as_str()
            .unwrap()
            .split(':')
            .take(2)
            .collect::<Vec<_>>(),
        ["content/notes/page.md", "2"]
    );
    assert!(
        error["message"].as_str().unwrap().contains("TOML"),
        "{error}"
    );
    assert!(
        body(port, "/notes/page/").contains("First version."),
        "last good build served"
    );
    let sites = home.ps();
    let row = sites.iter().find(|s| s["port"] == port).unwrap();
    assert_eq!(row["state"], "serving");
    assert_eq!(row["errors"][0]["file"], "content/notes/page.md");
    assert_eq!(row["errors"][0]["line"], 2);
    let table = home.sitectl_ok(&["ps"]);
    assert!(table.contains("error: content/notes/page.md:2:"), "{table}");

    // Fixing it clears the overlay and serves the new version.
    fs::write(&page, "+++\ntitle = \"Page\"\n+++\nThird version.\n").unwrap();
    let fixed = events.until(|e| e["errors"].as_array().unwrap().is_empty());
    assert_eq!(fixed["change"], "reload");
    assert!(body(port, "/notes/page/").contains("Third version."));

    // A template syntax error: overlay with the template's file and line; the pages
    // keep their last good HTML.
    let templates = root.join("templates");
    fs::create_dir_all(&templates).unwrap();
    fs::write(
        templates.join("page.html"),
        "<main>\n{{ page.title </main>\n",
    )
    .unwrap();
    let broken = events.until(|e| !e["errors"].as_array().unwrap().is_empty());
    assert_eq!(broken["errors"][0]["location"], "templates/page.html:2");
    assert!(body(port, "/notes/page/").contains("Third version."));
    fs::write(
        templates.join("page.html"),
        "<main>{{ page.title }}: {{ page.content|safe }}</main>",
    )
    .unwrap();
    events.until(|e| e["errors"].as_array().unwrap().is_empty());
    assert!(body(port, "/notes/page/").starts_with("<main>Page: <p>Third version.</p>"));

    // The other site saw none of it.
    assert!(body(other, "/notes/page/").contains("First version."));
    fs::write(other_root.join("content/notes/other.md"), "Other edited.\n").unwrap();
    let next = other_events.next_state();
    assert_eq!(
        generation(&next),
        1,
        "the other site built once, for its own change"
    );
}

#[test]
fn s09_a_template_that_panics_the_renderer_is_that_pages_error() {
    let home = Home::with_env("SITED_TEST_PANIC_FUNCTION", "1");
    let root = site(&home, "s");
    let other_root = site(&home, "other");
    let port = home.up(&root, &["--port", "0"]);
    let other = home.up(&other_root, &["--port", "0"]);
    let mut events = Events::connect(port).unwrap();
    events.next_state();
    fs::create_dir_all(root.join("templates")).unwrap();
    fs::write(
        root.join("templates/boom.html"),
        "{{ sited_test_panic('kaboom') }}",
    )
    .unwrap();
    fs::write(
        root.join("content/notes/page.md"),
        "+++\ntitle = \"Page\"\ntemplate = \"boom.html\"\n+++\nSecond version.\n",
    )
    .unwrap();
    let event = events.until(|e| !e["errors"].as_array().unwrap().is_empty());
    let error = &event["errors"][0];
    assert_eq!(error["location"], "content/notes/page.md");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("the renderer panicked: kaboom"),
        "{error}"
    );
    // That page keeps its last good HTML; the rest of the site and the daemon carry on.
    assert!(body(port, "/notes/page/").contains("First version."));
    assert!(body(port, "/notes/other/").contains("Other page."));
    assert_eq!(get(other, "/").unwrap().status, 200);
    assert!(home.answers());
    fs::write(
        root.join("content/notes/page.md"),
        "+++\ntitle = \"Page\"\n+++\nThird version.\n",
    )
    .unwrap();
    events.until(|e| e["errors"].as_array().unwrap().is_empty());
    assert!(body(port, "/notes/page/").contains("Third version."));
}

#[test]
fn s11_only_the_site_whose_file_changed_rebuilds() {
    let home = Home::new();
    let roots: Vec<_> = (0..20).map(|n| site(&home, &format!("site{n}"))).collect();
    let ports: Vec<u16> = roots
        .iter()
        .map(|root| home.up(root, &["--port", "0"]))
        .collect();
    let built_at = |home: &Home| -> Vec<u64> {
        let sites = home.ps();
        ports
            .iter()
            .map(|port| {
                let row = sites.iter().find(|s| s["port"] == *port).unwrap();
                row["built_at_ms"].as_u64().unwrap()
            })
            .collect()
    };
    let before = built_at(&home);
    let mut events = Events::connect(ports[7]).unwrap();
    events.next_state();
    fs::write(roots[7].join("content/notes/page.md"), "Changed once.\n").unwrap();
    events.until(|e| generation(e) == 1);
    // A second change to the same site: once it is built, anything the first change
    // could have set off elsewhere has long happened.
    fs::write(roots[7].join("content/notes/page.md"), "Changed twice.\n").unwrap();
    events.until(|e| generation(e) == 2);
    let after = built_at(&home);
    for (n, (b, a)) in before.iter().zip(&after).enumerate() {
        if n == 7 {
            assert!(a > b, "site 7 rebuilt");
        } else {
            assert_eq!(a, b, "site {n} rebuilt for another site's change");
        }
    }
    assert!(body(ports[7], "/notes/page/").contains("Changed twice."));
}

#[test]
fn s16_deleted_root_fails_the_site_and_up_recovers_it() {
    let home = Home::new();
    let root = site(&home, "doomed");
    let survivor = site(&home, "survivor");
    let port = home.up(&root, &["--port", "0"]);
    let other = home.up(&survivor, &["--port", "0"]);
    let mut events = Events::connect(port).unwrap();
    events.next_state();

    let moved = root.with_file_name("moved-away");
    fs::rename(&root, &moved).unwrap();
    let failed = events.until(|e| !e["errors"].as_array().unwrap().is_empty());
    assert!(
        failed["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("deleted or moved")
    );
    let state = |home: &Home| {
        let sites = home.ps();
        let row = sites.iter().find(|s| s["port"] == port).cloned().unwrap();
        (
            row["state"].as_str().unwrap().to_string(),
            row["reason"].as_str().unwrap_or("").to_string(),
        )
    };
    let (name, reason) = state(&home);
    assert_eq!(name, "failed");
    assert!(reason.contains("deleted or moved"), "{reason}");
    let table = home.sitectl_ok(&["ps"]);
    assert!(table.contains("failed: site root"), "{table}");
    assert_eq!(
        get(other, "/").unwrap().status,
        200,
        "other sites unaffected"
    );

    // Back in place, `up` brings it back on its port.
    fs::rename(&moved, &root).unwrap();
    assert_eq!(home.up(&root, &[]), port);
    assert_eq!(state(&home).0, "serving");
    assert!(body(port, "/notes/page/").contains("First version."));
    // ...and it watches again.
    let mut events = Events::connect(port).unwrap();
    events.next_state();
    fs::write(root.join("content/notes/page.md"), "Alive again.\n").unwrap();
    events.until(|e| generation(e) >= 1);
    assert!(body(port, "/notes/page/").contains("Alive again."));
}

#[test]
fn s18_out_of_inotify_watches_falls_back_to_polling_and_still_reloads() {
    // The daemon believes the kernel allows no watches: the same path as ENOSPC.
    let home = Home::with_env("SITED_TEST_INOTIFY_WATCH_LIMIT", "0");
    let root = site(&home, "s");
    let port = home.up(&root, &["--port", "0"]);
    let sites = home.ps();
    let warnings = sites[0]["warnings"].as_array().unwrap();
    assert!(
        warnings
            .iter()
            .any(|w| w.as_str().unwrap().contains("polling")),
        "{warnings:?}"
    );
    let table = home.sitectl_ok(&["ps"]);
    assert!(table.contains("warning: out of inotify watches"), "{table}");
    let mut events = Events::connect(port).unwrap();
    events.next_state();
    fs::write(root.join("content/notes/page.md"), "Polled change.\n").unwrap();
    let event = events.until(|e| generation(e) >= 1);
    assert_eq!(event["change"], "reload");
    assert!(body(port, "/notes/page/").contains("Polled change."));
}

/// Saves `page` the way an editor does, and checks that it makes exactly one build.
fn assert_one_rebuild(save: impl FnOnce(&Path)) {
    let home = Home::new();
    let root = site(&home, "s");
    let port = home.up(&root, &["--port", "0"]);
    let mut events = Events::connect(port).unwrap();
    let start = generation(&events.next_state());
    let page = root.join("content/notes/page.md");
    save(&page);
    let saved = events.next_state();
    assert_eq!(generation(&saved), start + 1);
    assert!(body(port, "/notes/page/").contains("Saved text."));
    // A sentinel change: had the save set off a second build, this one would be +3.
    fs::write(root.join("content/notes/other.md"), "Sentinel.\n").unwrap();
    let sentinel = events.next_state();
    assert_eq!(
        generation(&sentinel),
        start + 2,
        "the save caused more than one build"
    );
}

const SAVED: &str = "+++\ntitle = \"Page\"\n+++\nSaved text.\n";

#[test]
fn a_burst_of_twenty_writes_coalesces_into_a_few_builds() {
    // The first write builds at once (a lone save waits out no window); the rest, made
    // while that build runs or just after it, coalesce into one more build.
    let home = Home::new();
    let root = site(&home, "s");
    let port = home.up(&root, &["--port", "0"]);
    let page = root.join("content/notes/page.md");
    for n in 0..20 {
        fs::write(&page, format!("+++\ntitle = \"Page\"\n+++\nBurst {n}.\n")).unwrap();
    }
    let deadline = std::time::Duration::from_secs(20);
    assert!(
        sited_tests::wait_until(deadline, || body(port, "/notes/page/")
            .contains("Burst 19.")),
        "the burst's last write was never served"
    );
    // A sentinel edit: once its build is logged, every build the burst set off is too.
    fs::write(root.join("content/notes/other.md"), "Sentinel.\n").unwrap();
    let mut log = String::new();
    assert!(
        sited_tests::wait_until(deadline, || {
            log = home.sitectl_ok(&["logs", &port.to_string()]);
            log.contains("rebuilt after content/notes/other.md")
        }),
        "the sentinel was never rebuilt"
    );
    // Two is what a burst makes: its first write's build and one for the rest. A write
    // of this loop that the test's own thread makes more than the quiet window (8 ms)
    // after the one before is a new burst, which a loaded machine can cause now and
    // then: up to five builds for 20 writes still shows them coalescing, with room for
    // that; one build per write would not.
    let burst_builds = log.matches("rebuilt after content/notes/page.md").count();
    assert!(
        (1..=5).contains(&burst_builds),
        "{burst_builds} builds for one burst of 20 writes:\n{log}"
    );
}

#[test]
fn in_place_write_rebuilds_once() {
    assert_one_rebuild(|page| fs::write(page, SAVED).unwrap());
}

#[test]
fn write_temp_then_rename_rebuilds_once() {
    // JetBrains: write a temp file, move the original aside, move the temp in place.
    assert_one_rebuild(|page| {
        let tmp = page.with_file_name("page.md___jb_tmp___");
        let old = page.with_file_name("page.md___jb_old___");
        fs::write(&tmp, SAVED).unwrap();
        fs::rename(page, &old).unwrap();
        fs::rename(&tmp, page).unwrap();
        fs::remove_file(&old).unwrap();
    });
}

#[test]
fn vim_style_save_rebuilds_once() {
    // vim: probe with 4913, back the file up as page.md~, write anew, drop the backup.
    assert_one_rebuild(|page| {
        let probe = page.with_file_name("4913");
        fs::write(&probe, "").unwrap();
        fs::remove_file(&probe).unwrap();
        let backup = page.with_file_name("page.md~");
        fs::rename(page, &backup).unwrap();
        fs::write(page, SAVED).unwrap();
        fs::remove_file(&backup).unwrap();
    });
}

#[test]
fn remove_then_create_rebuilds_once() {
    assert_one_rebuild(|page| {
        fs::remove_file(page).unwrap();
        fs::write(page, SAVED).unwrap();
    });
}

#[test]
fn editor_temp_files_alone_rebuild_nothing() {
    let home = Home::new();
    let root = site(&home, "s");
    let port = home.up(&root, &["--port", "0"]);
    let mut events = Events::connect(port).unwrap();
    let start = generation(&events.next_state());
    let dir = root.join("content/notes");
    for name in [
        ".page.md.swp",
        "page.md~",
        "4913",
        ".#page.md",
        "page.md.tmp",
        "page.md___jb_tmp___",
    ] {
        fs::write(dir.join(name), "junk").unwrap();
    }
    fs::write(dir.join("other.md"), "Sentinel.\n").unwrap();
    let event = events.next_state();
    assert_eq!(generation(&event), start + 1, "temp files caused a build");
    assert!(get(port, "/notes/page.md~").unwrap().status == 404);
}

#[test]
fn stylesheet_change_swaps_css_without_reload() {
    let home = Home::new();
    let root = site(&home, "s");
    let port = home.up(&root, &["--port", "0"]);
    let mut events = Events::connect(port).unwrap();
    events.next_state();
    fs::write(root.join("static/custom.css"), "body { color: red; }\n").unwrap();
    let event = events.next_state();
    assert_eq!(event["change"], "css");
    assert_eq!(event["css"], serde_json::json!(["/custom.css"]));
    assert!(body(port, "/custom.css").contains("red"));
}

#[test]
fn html_is_served_with_the_live_reload_script_and_built_files_are_not() {
    let home = Home::new();
    let root = site(&home, "s");
    let port = home.up(&root, &["--port", "0"]);
    let page = body(port, "/notes/page/");
    assert!(
        page.contains(r#"<script src="/__sited/livereload.js" data-etag=""#)
            && page.contains(r#"" defer></script></body>"#),
        "{page}"
    );
    let script = get(port, "/__sited/livereload.js").unwrap();
    assert_eq!(script.status, 200);
    assert!(script.text().contains("EventSource"));
    // A foreign page may not subscribe to the site's events.
    let foreign = sited_tests::http_raw(
        port,
        format!("GET /__sited/events HTTP/1.1\r\nHost: localhost:{port}\r\nOrigin: http://evil.example\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .unwrap();
    assert_eq!(foreign.status, 403);
    // `sited build` output has no script.
    let out = home.path().join("out");
    let status = home
        .command("sited")
        .arg("build")
        .arg(&root)
        .arg("--out")
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    let built = fs::read_to_string(out.join("notes/page/index.html")).unwrap();
    assert!(!built.contains("__sited"), "{built}");
}

/// A save under way is not built half-written: a file emptied by `open(O_TRUNC)` whose
/// bytes come a moment later (a slow disk, a busy machine, an editor writing in pieces)
/// is built once it is closed, so a broken save keeps the last good page, not an empty
/// one that was never meant.
#[test]
fn a_slow_save_is_built_once_it_is_closed() {
    use std::io::Write;
    let home = Home::new();
    let root = site(&home, "s");
    let port = home.up(&root, &["--port", "0"]);
    let mut events = Events::connect(port).unwrap();
    events.next_state();

    let page = root.join("content/notes/page.md");
    let mut file = fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&page)
        .unwrap();
    // The writer is slow: the daemon sees the truncation well before the bytes. This is
    // the input, not a wait for the daemon.
    std::thread::sleep(std::time::Duration::from_millis(30));
    file.write_all(b"+++\ntitle = \"Page\ndate = 2026-01-01\n+++\nSecond version.\n")
        .unwrap();
    drop(file);
    let broken = events.until(|e| !e["errors"].as_array().unwrap().is_empty());
    assert!(
        broken["errors"][0]["location"]
            .as_str()
            .unwrap()
            .starts_with("content/notes/page.md:2"),
        "{broken}"
    );
    assert!(
        body(port, "/notes/page/").contains("First version."),
        "the last good page is the one before the save, not the emptied file"
    );
}
