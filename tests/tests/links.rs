//! The link check end to end (issue 19 item 1): a link that leads nowhere is a warning
//! the daemon shows everywhere a build's outcome shows (its log, `ps`, the browser's
//! event stream) without blocking anything, and it goes once the link is mended.

use std::fs;

use sited_tests::{Events, Home, get};

#[test]
fn a_broken_link_is_a_warning_in_logs_ps_and_the_browser() {
    let home = Home::new();
    let root = home.site(
        "linked",
        &[
            ("content/a.md", "# A\n\nSee [the missing page](gone.md).\n"),
            ("content/b.md", "# B\n\nFine.\n"),
        ],
    );
    let up = home.sitectl_ok(&["up", root.to_str().unwrap(), "--port", "0"]);
    assert!(up.contains("1 warning"), "{up}");
    let port = sited_tests::port_of(&up).expect("a URL");
    let expected = "content/a.md:3: link to gone.md leads nowhere";

    // `ps`: counted in the table, listed whole in --json.
    let table = home.sitectl_ok(&["ps"]);
    assert!(table.contains("1 warn"), "{table}");
    let rows = home.ps();
    let warnings = rows[0]["build_warnings"]
        .as_array()
        .expect("build_warnings");
    assert_eq!(warnings.len(), 1, "{rows:?}");
    assert_eq!(warnings[0]["file"], "content/a.md");
    assert_eq!(warnings[0]["line"], 3);
    assert!(rows[0]["errors"].as_array().unwrap().is_empty(), "{rows:?}");

    // The site's log.
    let log = home.sitectl_ok(&["logs", &port.to_string()]);
    assert!(log.contains(expected), "{log}");

    // The browser: warnings, not errors (the error overlay stays away), and the page is
    // served as built.
    let mut events = Events::connect(port).unwrap();
    let state = events.next_state();
    assert!(state["errors"].as_array().unwrap().is_empty(), "{state}");
    let live = state["warnings"].as_array().expect("warnings");
    assert_eq!(live.len(), 1, "{state}");
    assert_eq!(live[0]["location"], "content/a.md:3");
    assert!(
        live[0]["message"]
            .as_str()
            .unwrap()
            .contains("link to gone.md leads nowhere"),
        "{state}"
    );
    assert!(
        get(port, "/a/")
            .unwrap()
            .text()
            .contains("the missing page")
    );

    // Mended: the warning goes everywhere.
    fs::write(root.join("content/gone.md"), "# Gone no more\n").unwrap();
    events.until(|e| e["warnings"].as_array().unwrap().is_empty());
    assert!(
        home.ps()[0]["build_warnings"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

/// A book served by the daemon: its warnings are shown like any build's, and editing a
/// file its chapters include (outside the book's `src/`, where the watcher still looks)
/// rebuilds the chapters that include it.
#[test]
fn a_served_book_follows_edits_of_the_files_its_chapters_include() {
    let home = Home::new();
    let root = home.path().join("sites/book");
    sited_tests::copy_tree(
        &sited_tests::workspace().join("tests/fixtures/mdbook-book"),
        &root,
    );
    let up = home.sitectl_ok(&["up", root.to_str().unwrap(), "--port", "0"]);
    assert!(
        up.contains("2 warnings"),
        "the preprocessor, the unlisted file: {up}"
    );
    let port = sited_tests::port_of(&up).expect("a URL");
    let page = get(port, "/guide/installing/").unwrap().text();
    assert!(page.contains("hook holds"), "{page}");
    assert!(page.contains("class=\"book-toc\""), "the book's sidebar");
    assert!(get(port, "/SUMMARY/").unwrap().status == 404);

    let mut events = Events::connect(port).unwrap();
    let start = events.next_state()["generation"].as_u64().unwrap();
    let listing = root.join("listings/hello/src/main.rs");
    let source = fs::read_to_string(&listing).unwrap();
    // Saved whole (a temp file renamed over it): no build sees it half written.
    let temp = root.join("listings/hello/src/main.rs.tmp");
    fs::write(&temp, source.replace("hook holds", "hook still holds")).unwrap();
    fs::rename(&temp, &listing).unwrap();
    events.until(|e| e["generation"].as_u64().unwrap() > start);
    let page = get(port, "/guide/installing/").unwrap().text();
    assert!(page.contains("hook still holds"), "{page}");
}

/// In a real browser: the warnings panel names the link and blocks nothing (folded, in a
/// corner, the page usable under it), and goes once the link is mended.
#[test]
fn a_browser_shows_link_warnings_in_a_panel_that_blocks_nothing() {
    use sited_tests::browser::Browser;
    let wait = std::time::Duration::from_secs(20);
    let home = Home::new();
    let root = home.site(
        "panel",
        &[("content/a.md", "# A\n\nSee [the missing page](gone.md).\n")],
    );
    let port = home.up(&root, &["--port", "0"]);
    let mut browser = Browser::open(&format!("http://127.0.0.1:{port}/a/"));
    let panel = "document.getElementById('__sited_overlay')";
    browser.wait_for(
        &format!(
            "!!{panel} && {panel}.dataset.kind === 'warnings' && \
             {panel}.innerText.includes('1 warning')"
        ),
        wait,
    );
    // Folded to its count, not over the page's text; opened, it names file:line.
    assert_eq!(browser.eval(&format!("{panel}.open")), false);
    assert_eq!(
        browser.eval(&format!(
            "{panel}.getBoundingClientRect().height < window.innerHeight / 4"
        )),
        true
    );
    browser.eval(&format!("{panel}.open = true"));
    browser.wait_for(
        &format!(
            "{panel}.innerText.includes('content/a.md:3') && {panel}.innerText.includes('gone.md')"
        ),
        wait,
    );
    fs::write(root.join("content/gone.md"), "# Gone no more\n").unwrap();
    browser.wait_for(&format!("!{panel}"), wait);
}
