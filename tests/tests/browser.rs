//! Live reload in a real browser (headless Chromium): an edit shows up with no reload by
//! the test, a CSS edit restyles the page without reloading it, and a broken template
//! shows the error overlay until it is fixed.

use std::fs;
use std::time::Duration;

use sited_tests::Home;
use sited_tests::browser::Browser;

const WAIT: Duration = Duration::from_secs(20);

#[test]
fn edits_show_up_in_the_browser_by_themselves() {
    let home = Home::new();
    let root = home.site(
        "s",
        &[
            (
                "content/notes/page.md",
                "+++\ntitle = \"Page\"\n+++\nFirst version.\n",
            ),
            (
                "static/custom.css",
                "body { background-color: rgb(255, 255, 255); }\n",
            ),
        ],
    );
    let port = home.up(&root, &["--port", "0"]);
    let mut browser = Browser::open(&format!("http://127.0.0.1:{port}/notes/page/"));
    browser.wait_for(
        "document.body && document.body.innerText.includes('First version.')",
        WAIT,
    );
    // The live-reload script is connected once its EventSource is open.
    browser.wait_for("window.__sitedLiveReload === true", WAIT);

    // A content edit: the page reloads itself and shows the new text.
    fs::write(
        root.join("content/notes/page.md"),
        "+++\ntitle = \"Page\"\n+++\nSecond version.\n",
    )
    .unwrap();
    browser.wait_for("document.body.innerText.includes('Second version.')", WAIT);

    // A stylesheet edit: the computed style changes and the page is not reloaded (a
    // marker set on `window` survives).
    browser.wait_for("window.__sitedLiveReload === true", WAIT);
    browser.eval("window.__marker = 'still here'");
    fs::write(
        root.join("static/custom.css"),
        "body { background-color: rgb(1, 2, 3); }\n",
    )
    .unwrap();
    browser.wait_for(
        "getComputedStyle(document.body).backgroundColor === 'rgb(1, 2, 3)'",
        WAIT,
    );
    assert_eq!(
        browser.eval("window.__marker"),
        "still here",
        "the CSS change reloaded the page"
    );

    // A broken template: the overlay names the file and line, over the last good page.
    fs::create_dir_all(root.join("templates")).unwrap();
    fs::write(
        root.join("templates/page.html"),
        "<main>{{ page.title </main>\n",
    )
    .unwrap();
    browser.wait_for(
        "!!document.getElementById('__sited_overlay') && document.getElementById('__sited_overlay').innerText.includes('templates/page.html:1')",
        WAIT,
    );
    assert!(browser.eval("document.body.innerText.includes('Second version.')") == true);

    // Fixed: the overlay goes away and the new template is in use.
    fs::write(
        root.join("templates/page.html"),
        "<main id=\"custom\">{{ page.content|safe }}</main>\n",
    )
    .unwrap();
    browser.wait_for(
        "!document.getElementById('__sited_overlay') && !!document.getElementById('custom')",
        WAIT,
    );

    // The daemon goes away and comes back: the page reconnects by itself, and follows
    // edits again.
    home.sitectl_ok(&["daemon", "stop"]);
    assert_eq!(home.up(&root, &["--port", &port.to_string()]), port);
    fs::write(
        root.join("content/notes/page.md"),
        "+++\ntitle = \"Page\"\n+++\nAfter the restart.\n",
    )
    .unwrap();
    browser.wait_for(
        "document.body.innerText.includes('After the restart.')",
        WAIT,
    );
}
