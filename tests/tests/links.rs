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
