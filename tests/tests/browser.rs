//! Live reload in a real browser (headless Chromium): a text edit updates the page in
//! place (scroll position, focus and form state kept) and only in the tabs showing it; a
//! change to the head or a page with scripts of its own reloads; a CSS edit restyles
//! without reloading; a broken template shows the error overlay until it is fixed; a
//! 404 page never reloads itself. Also the default theme's layout, measured by the
//! boxes of its header, main column and footer.

use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;
use sited_tests::Home;
use sited_tests::browser::{Browser, Tab};

const WAIT: Duration = Duration::from_secs(20);

/// True once the live-reload script has had its first event.
const CONNECTED: &str =
    "!!window.__sitedLiveReload && window.__sitedLiveReload.generation !== null";

/// Counts the documents a tab loads, across reloads (the tab's sessionStorage survives
/// them).
const COUNT_LOADS: &str = "sessionStorage.loads = String(Number(sessionStorage.loads || 0) + 1);";

/// The page (`notes/page.md`) a few tests edit: long enough to scroll, with a form field.
fn long_page(version: &str) -> String {
    let mut page = format!("+++\ntitle = \"Page\"\n+++\n{version}\n\n");
    for n in 0..60 {
        page.push_str(&format!("Paragraph {n} of a long page.\n\n"));
        if n == 40 {
            page.push_str("<input id=\"note\" value=\"\">\n\n");
        }
    }
    page
}

fn site(home: &Home) -> PathBuf {
    home.site(
        "s",
        &[
            ("content/notes/page.md", &long_page("First version.")),
            (
                "content/notes/other.md",
                "+++\ntitle = \"Other\"\n+++\nAnother page.\n",
            ),
            (
                "content/notes/scripted.md",
                "+++\ntitle = \"Scripted\"\n+++\nScripted, first.\n\n<script>document.body.dataset.ran = 'yes';</script>\n",
            ),
            (
                "static/custom.css",
                "body { background-color: rgb(255, 255, 255); }\n",
            ),
        ],
    )
}

/// The generation the site's last build published, as a tab saw it.
fn generation(browser: &mut Browser, tab: &Tab) -> u64 {
    browser
        .eval_in(tab, "window.__sitedLiveReload.generation")
        .as_u64()
        .expect("a connected tab knows the generation")
}

#[test]
fn a_text_edit_updates_the_page_in_place_keeping_scroll_focus_and_form_state() {
    let home = Home::new();
    let root = site(&home);
    let port = home.up(&root, &["--port", "0"]);
    let mut browser = Browser::start();
    browser.on_new_document(COUNT_LOADS);
    browser.navigate(&format!("http://127.0.0.1:{port}/notes/page/"));
    browser.wait_for(CONNECTED, WAIT);
    browser.wait_for("document.readyState === 'complete'", WAIT);

    // The reader typed in the field, left the cursor there and scrolled down.
    browser.eval(
        "const note = document.getElementById('note'); note.focus(); note.value = 'typed'; \
         window.scrollTo(0, 1200); window.__marker = 'same document';",
    );
    let scrolled = browser.eval("window.scrollY").as_f64().unwrap();
    assert!(scrolled > 1000.0, "the page scrolls: {scrolled}");

    fs::write(
        root.join("content/notes/page.md"),
        long_page("Second version."),
    )
    .unwrap();
    browser.wait_for("document.body.innerText.includes('Second version.')", WAIT);
    assert!(
        browser.eval("document.body.innerText.includes('First version.')") == false,
        "the old text is gone"
    );
    assert_eq!(browser.eval("window.__marker"), "same document", "reloaded");
    assert_eq!(browser.eval("sessionStorage.loads"), "1");
    assert_eq!(browser.eval("window.__sitedLiveReload.updates"), 1);
    assert_eq!(browser.eval("window.scrollY").as_f64().unwrap(), scrolled);
    assert_eq!(
        browser.eval("document.getElementById('note').value"),
        "typed"
    );
    assert_eq!(browser.eval("document.activeElement.id"), "note");

    // The new page is the one served: a later edit builds on it, and the title follows.
    let mut edited = long_page("Third version.");
    edited = edited.replace("title = \"Page\"", "title = \"Renamed\"");
    fs::write(root.join("content/notes/page.md"), edited).unwrap();
    browser.wait_for(
        "document.body.innerText.includes('Third version.') && document.title.startsWith('Renamed')",
        WAIT,
    );
    assert_eq!(browser.eval("window.__marker"), "same document", "reloaded");
    assert_eq!(browser.eval("window.__sitedLiveReload.updates"), 2);
    assert_eq!(
        browser.eval("document.getElementById('note').value"),
        "typed"
    );
}

#[test]
fn only_the_tabs_whose_page_changed_react() {
    let home = Home::new();
    let root = site(&home);
    let port = home.up(&root, &["--port", "0"]);
    let mut browser = Browser::open(&format!("http://127.0.0.1:{port}/notes/page/"));
    let edited = browser.first_tab();
    let other = browser.new_tab(&format!("http://127.0.0.1:{port}/notes/other/"));
    for tab in [&edited, &other] {
        browser.wait_for_in(tab, CONNECTED, WAIT);
        browser.eval_in(tab, "window.__marker = 'same document'");
    }
    let before = generation(&mut browser, &other);

    fs::write(
        root.join("content/notes/page.md"),
        long_page("Second version."),
    )
    .unwrap();
    browser.wait_for_in(
        &edited,
        "document.body.innerText.includes('Second version.')",
        WAIT,
    );
    // The other tab heard of the build, and let it be: no fetch, no update, no reload.
    browser.wait_for_in(
        &other,
        &format!("window.__sitedLiveReload.generation > {before}"),
        WAIT,
    );
    assert_eq!(browser.eval_in(&other, "window.__marker"), "same document");
    assert_eq!(
        browser.eval_in(&other, "window.__sitedLiveReload.updates"),
        0
    );
    assert_eq!(
        browser.eval_in(
            &other,
            "performance.getEntriesByType('resource').filter(e => e.initiatorType === 'fetch').length"
        ),
        0,
        "the other tab fetched its page"
    );
    assert_eq!(browser.eval_in(&edited, "window.__marker"), "same document");
}

#[test]
fn a_change_to_the_head_or_a_page_with_scripts_reloads() {
    let home = Home::new();
    let root = site(&home);
    let port = home.up(&root, &["--port", "0"]);
    let mut browser = Browser::open(&format!("http://127.0.0.1:{port}/notes/other/"));
    browser.wait_for(CONNECTED, WAIT);
    browser.eval("window.__marker = 'old document'");

    // A description is a <meta> in the head: the page reloads.
    fs::write(
        root.join("content/notes/other.md"),
        "+++\ntitle = \"Other\"\ndescription = \"Now described.\"\n+++\nAnother page.\n",
    )
    .unwrap();
    browser.wait_for(
        "!!document.querySelector('meta[name=description][content=\"Now described.\"]')",
        WAIT,
    );
    browser.wait_for(CONNECTED, WAIT);
    assert_eq!(browser.eval("window.__marker"), Value::Null, "not reloaded");

    // A page that runs a script: a morph would keep what the script did without running
    // it again, so the page reloads and the script runs on the new text.
    browser.navigate(&format!("http://127.0.0.1:{port}/notes/scripted/"));
    browser.wait_for(
        &format!("document.body.dataset.ran === 'yes' && {CONNECTED}"),
        WAIT,
    );
    browser.eval("window.__marker = 'old document'");
    fs::write(
        root.join("content/notes/scripted.md"),
        "+++\ntitle = \"Scripted\"\n+++\nScripted, second.\n\n<script>document.body.dataset.ran = 'yes';</script>\n",
    )
    .unwrap();
    browser.wait_for(
        "document.body.innerText.includes('Scripted, second.') && document.body.dataset.ran === 'yes'",
        WAIT,
    );
    assert_eq!(browser.eval("window.__marker"), Value::Null, "not reloaded");
}

#[test]
fn a_404_page_does_not_reload_itself_and_follows_the_build() {
    let home = Home::new();
    let root = site(&home);
    let port = home.up(&root, &["--port", "0"]);
    let mut browser = Browser::start();
    browser.on_new_document(COUNT_LOADS);
    browser.navigate(&format!("http://127.0.0.1:{port}/nope/"));
    browser.wait_for(
        &format!(
            "document.body && document.body.innerText.includes('Page not found') && {CONNECTED}"
        ),
        WAIT,
    );
    // Watched for a while: one load, however long it stays open.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        browser.eval("sessionStorage.loads"),
        "1",
        "the 404 page reloaded"
    );

    // The build changes the 404 page (a new section is in its navigation): it updates
    // once, in place.
    fs::create_dir_all(root.join("content/guides")).unwrap();
    fs::write(
        root.join("content/guides/start.md"),
        "+++\ntitle = \"Start\"\n+++\nA guide.\n",
    )
    .unwrap();
    browser.wait_for(
        "!!document.querySelector('.site-nav a[href=\"/guides/\"]')",
        WAIT,
    );
    assert_eq!(browser.eval("window.__sitedLiveReload.updates"), 1);
    assert_eq!(browser.eval("sessionStorage.loads"), "1");

    // The missing page is written: the tab shows it.
    fs::write(
        root.join("content/nope.md"),
        "+++\ntitle = \"Nope\"\n+++\nHere after all.\n",
    )
    .unwrap();
    browser.wait_for("document.body.innerText.includes('Here after all.')", WAIT);
    assert_eq!(browser.eval("sessionStorage.loads"), "1");
    assert_eq!(browser.eval("window.__sitedLiveReload.updates"), 2);
}

#[test]
fn edits_styles_and_errors_show_up_in_the_browser_by_themselves() {
    let home = Home::new();
    let root = site(&home);
    let port = home.up(&root, &["--port", "0"]);
    let mut browser = Browser::open(&format!("http://127.0.0.1:{port}/notes/other/"));
    browser.wait_for(
        &format!("document.body.innerText.includes('Another page.') && {CONNECTED}"),
        WAIT,
    );

    // A stylesheet edit: the computed style changes and the page is not reloaded (a
    // marker set on `window` survives).
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

    // Broken front matter in another page: the overlay names the file and line. A
    // content edit while it shows updates the page under it, and the overlay stays.
    let scripted = fs::read_to_string(root.join("content/notes/scripted.md")).unwrap();
    fs::write(
        root.join("content/notes/scripted.md"),
        "+++\ntitle = \"Scripted\n+++\nBroken.\n",
    )
    .unwrap();
    let overlay_names = |location: &str| {
        format!(
            "!!document.getElementById('__sited_overlay') && \
             document.getElementById('__sited_overlay').innerText.includes('{location}')"
        )
    };
    browser.wait_for(&overlay_names("content/notes/scripted.md:2"), WAIT);
    fs::write(
        root.join("content/notes/other.md"),
        "+++\ntitle = \"Other\"\n+++\nEdited under the overlay.\n",
    )
    .unwrap();
    browser.wait_for(
        &format!(
            "document.body.innerText.includes('Edited under the overlay.') && {}",
            overlay_names("content/notes/scripted.md:2")
        ),
        WAIT,
    );
    fs::write(root.join("content/notes/scripted.md"), scripted).unwrap();
    browser.wait_for("!document.getElementById('__sited_overlay')", WAIT);
    assert_eq!(browser.eval("window.__marker"), "still here", "reloaded");

    // A broken template: the overlay names the file and line, over the last good page.
    fs::create_dir_all(root.join("templates")).unwrap();
    fs::write(
        root.join("templates/page.html"),
        "<main>{{ page.title </main>\n",
    )
    .unwrap();
    browser.wait_for(&overlay_names("templates/page.html:1"), WAIT);
    assert!(
        browser.eval("document.body.innerText.includes('Edited under the overlay.')") == true,
        "the last good page is not under the overlay; page: {}",
        browser.eval("document.documentElement.outerHTML")
    );

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
        root.join("content/notes/other.md"),
        "+++\ntitle = \"Other\"\n+++\nAfter the restart.\n",
    )
    .unwrap();
    browser.wait_for(
        "document.body.innerText.includes('After the restart.')",
        WAIT,
    );
}

#[test]
fn pages_left_behind_let_go_of_their_stream_and_take_it_up_again_when_shown() {
    let home = Home::new();
    let root = site(&home);
    for n in 0..8 {
        fs::write(
            root.join(format!("content/notes/n{n}.md")),
            format!("+++\ntitle = \"N{n}\"\n+++\nNote {n}.\n"),
        )
        .unwrap();
    }
    let port = home.up(&root, &["--port", "0"]);
    let mut browser = Browser::start();
    // More pages than the six connections a browser opens to a host. The pages left
    // behind stay in the back/forward cache: had they kept their streams, the seventh
    // would wait for a free connection (about a minute, until the cache gave one up)
    // and the browser would not answer meanwhile.
    for n in 0..8 {
        browser.navigate(&format!("http://127.0.0.1:{port}/notes/n{n}/"));
        browser.wait_for(
            &format!("document.body.innerText.includes('Note {n}.') && {CONNECTED}"),
            WAIT,
        );
        browser.eval(&format!("window.__marker = 'page {n}'"));
    }
    // Back: the page before comes out of the cache as it was, and follows edits again.
    browser.eval("history.back()");
    browser.wait_for(
        "location.pathname === '/notes/n6/' && document.readyState === 'complete'",
        WAIT,
    );
    assert_eq!(
        browser.eval("window.__marker"),
        "page 6",
        "not restored from the back/forward cache"
    );
    fs::write(
        root.join("content/notes/n6.md"),
        "+++\ntitle = \"N6\"\n+++\nSeen after going back.\n",
    )
    .unwrap();
    browser.wait_for(
        "document.body.innerText.includes('Seen after going back.')",
        WAIT,
    );
    assert_eq!(browser.eval("window.__marker"), "page 6");
    assert_eq!(browser.eval("window.__sitedLiveReload.updates"), 1);
}

/// The boxes of the theme's layout on the page the tab shows, in CSS pixels.
const MEASURE_LAYOUT: &str = r#"(async () => {
  const box = (el) => { const b = el.getBoundingClientRect(); return { left: b.left, right: b.right, top: b.top, bottom: b.bottom }; };
  const one = (selector) => { const el = document.querySelector(selector); return el ? box(el) : null; };
  const icon = document.querySelector('link[rel~="icon"]');
  let iconType = null;
  if (icon) {
    const response = await fetch(icon.href, { cache: "no-store" });
    iconType = response.ok ? response.headers.get("content-type") : `HTTP ${response.status}`;
  }
  return {
    header: one(".site-header .wrap"),
    rule: one(".site-header").bottom,
    main: one("main"),
    footer: one(".site-footer .wrap"),
    siteTitle: one(".site-title"),
    heading: one("main h1"),
    footerText: one(".site-footer p"),
    nav: Array.from(document.querySelectorAll(".site-nav a")).map(box),
    scrollWidth: document.documentElement.scrollWidth,
    width: window.innerWidth,
    background: getComputedStyle(document.body).backgroundColor,
    iconType,
  };
})()"#;

/// Within a pixel (layout rounds sub-pixel positions).
fn near(a: &Value, b: &Value) -> bool {
    (a.as_f64().unwrap() - b.as_f64().unwrap()).abs() <= 1.0
}

/// Mean of an `rgb(r, g, b)` colour's channels: dark below 128.
fn brightness(colour: &str) -> f64 {
    let channels: Vec<f64> = colour
        .trim_start_matches("rgba(")
        .trim_start_matches("rgb(")
        .trim_end_matches(')')
        .split(',')
        .take(3)
        .map(|c| c.trim().parse().unwrap())
        .collect();
    channels.iter().sum::<f64>() / 3.0
}

/// Checks the theme's layout as measured on one page, and says what is wrong.
fn check_layout(layout: &Value, dark: bool) -> Vec<String> {
    let mut wrong = Vec::new();
    let (header, main, footer) = (&layout["header"], &layout["main"], &layout["footer"]);
    for side in ["left", "right"] {
        if !(near(&header[side], &main[side]) && near(&main[side], &footer[side])) {
            wrong.push(format!(
                "header, main and footer columns differ on the {side}: {} / {} / {}",
                header[side], main[side], footer[side]
            ));
        }
    }
    let text_left = &layout["heading"]["left"];
    for (what, left) in [
        ("the site title", &layout["siteTitle"]["left"]),
        ("the footer text", &layout["footerText"]["left"]),
    ] {
        if !near(left, text_left) {
            wrong.push(format!(
                "{what} starts at {left}, the page's heading at {text_left}"
            ));
        }
    }
    let gap = layout["heading"]["top"].as_f64().unwrap() - layout["rule"].as_f64().unwrap();
    if gap < 16.0 {
        wrong.push(format!(
            "the page's heading is {gap} px below the header rule"
        ));
    }
    let nav = layout["nav"].as_array().unwrap();
    if nav.iter().any(|item| !near(&item["top"], &nav[0]["top"])) {
        let tops: Vec<_> = nav.iter().map(|item| &item["top"]).collect();
        wrong.push(format!(
            "the navigation items are not on one line: {tops:?}"
        ));
    }
    if layout["scrollWidth"].as_f64() > layout["width"].as_f64() {
        wrong.push(format!(
            "the page is wider ({}) than the window ({})",
            layout["scrollWidth"], layout["width"]
        ));
    }
    let background = brightness(layout["background"].as_str().unwrap());
    if (background < 128.0) != dark {
        wrong.push(format!(
            "the background ({}) is not {}",
            layout["background"],
            if dark { "dark" } else { "light" }
        ));
    }
    if !layout["iconType"]
        .as_str()
        .is_some_and(|t| t.starts_with("image/"))
    {
        wrong.push(format!("the page's icon is {}", layout["iconType"]));
    }
    wrong
}

#[test]
fn the_themes_header_main_and_footer_line_up_in_light_and_dark_and_on_a_phone() {
    let home = Home::new();
    let root = home.path().join("blog");
    sited_tests::copy_tree(&sited_tests::workspace().join("examples/blog"), &root);
    let port = home.up(&root, &["--port", "0"]);
    let pages = [
        ("home", "/"),
        ("section", "/posts/"),
        ("post", "/posts/a-week-at-the-lighthouse/"),
        ("page", "/about/"),
        ("404", "/nope/"),
    ];
    let shots = sited_tests::browser::screenshots_dir();
    let mut browser = Browser::start();
    let mut wrong = Vec::new();
    for (width, height) in [(1280, 900), (390, 844)] {
        browser.set_viewport(width, height, width < 600);
        for dark in [false, true] {
            browser.set_color_scheme(dark);
            for (name, path) in pages {
                browser.navigate(&format!("http://127.0.0.1:{port}{path}"));
                browser.wait_for(
                    &format!("location.pathname === '{path}' && document.readyState === 'complete' && !!document.querySelector('main h1')"),
                    WAIT,
                );
                let mode = if dark { "dark" } else { "light" };
                let layout = browser.eval(MEASURE_LAYOUT);
                browser.screenshot(&shots.join(format!("theme-{name}-{width}-{mode}-top.png")));
                browser.eval("window.scrollTo(0, document.documentElement.scrollHeight)");
                browser.screenshot(&shots.join(format!("theme-{name}-{width}-{mode}-end.png")));
                wrong.extend(
                    check_layout(&layout, dark)
                        .into_iter()
                        .map(|w| format!("{path} at {width} px, {mode}: {w}")),
                );
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} (screenshots in {})",
        wrong.join("\n"),
        shots.display()
    );
    // The site's own icon replaces the theme's.
    let icon = sited_tests::get(port, "/favicon.svg").unwrap();
    assert_eq!(
        icon.body,
        fs::read(root.join("static/favicon.svg")).unwrap()
    );
}

#[test]
fn a_site_without_an_icon_gets_the_themes() {
    let home = Home::new();
    let root = site(&home);
    let port = home.up(&root, &["--port", "0"]);
    let page = sited_tests::get(port, "/notes/other/").unwrap().text();
    assert!(
        page.contains(r#"<link rel="icon" href="/favicon.svg" type="image/svg+xml">"#),
        "{page}"
    );
    let icon = sited_tests::get(port, "/favicon.svg").unwrap();
    assert_eq!(icon.status, 200);
    assert_eq!(icon.header("content-type"), Some("image/svg+xml"));
    assert!(icon.text().starts_with("<svg"), "{}", icon.text());
    // A site can point at an icon of another kind.
    fs::write(
        root.join("site.toml"),
        "title = \"s\"\n[extra]\nfavicon = \"/favicon.ico\"\n",
    )
    .unwrap();
    assert!(
        sited_tests::wait_until(WAIT, || sited_tests::get(port, "/notes/other/")
            .unwrap()
            .text()
            .contains(r#"<link rel="icon" href="/favicon.ico">"#)),
        "site.toml's extra.favicon is linked"
    );
}

/// The navigation as the tab shows it: the vertical middles of the links and the menu's
/// label laid out on the page (a closed menu's links are not), the height of the
/// navigation's box, and the sections it reaches (shown or in the menu), in order.
const MEASURE_NAV: &str = r#"(() => {
  const nav = document.querySelector(".site-nav");
  const visible = (el) => el.checkVisibility() && el.getClientRects().length > 0;
  const shown = Array.from(nav.querySelectorAll("a, summary span")).filter(visible);
  const middle = (el) => { const b = el.getBoundingClientRect(); return (b.top + b.bottom) / 2; };
  return {
    tops: shown.map(middle),
    lineHeight: Math.max(...shown.map((el) => el.getBoundingClientRect().height)),
    navHeight: nav.getBoundingClientRect().height,
    titles: [...new Set(Array.from(nav.querySelectorAll("a")).map((a) => a.textContent.trim()))],
    more: !!nav.querySelector("details summary") && visible(nav.querySelector("details summary")),
    scrollWidth: document.documentElement.scrollWidth,
    width: window.innerWidth,
  };
})()"#;

#[test]
fn twenty_sections_keep_the_navigation_on_one_line_in_weight_order() {
    let home = Home::new();
    let mut files = Vec::new();
    for n in 1..=20 {
        // Weights run backwards, so that weight and not the folder name sets the order.
        files.push((
            format!("content/topic-{n:02}/_index.md"),
            format!(
                "+++\ntitle = \"Topic number {n}\"\nweight = {}\n+++\n",
                21 - n
            ),
        ));
        files.push((
            format!("content/topic-{n:02}/page.md"),
            "# A page\n\nText.\n".to_string(),
        ));
    }
    let files: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    let root = home.site("many", &files);
    let port = home.up(&root, &["--port", "0"]);
    let expected: Vec<String> = (1..=20)
        .rev()
        .map(|n| format!("Topic number {n}"))
        .collect();
    let shots = sited_tests::browser::screenshots_dir();
    let mut browser = Browser::start();
    for (width, height) in [(1280, 900), (390, 844)] {
        browser.set_viewport(width, height, width < 600);
        browser.navigate(&format!("http://127.0.0.1:{port}/topic-01/"));
        browser.wait_for(
            "document.readyState === 'complete' && !!document.querySelector('.site-nav')",
            WAIT,
        );
        browser.screenshot(&shots.join(format!("nav-20-sections-{width}.png")));
        let nav = browser.eval(MEASURE_NAV);
        let titles: Vec<&str> = nav["titles"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap())
            .collect();
        assert_eq!(titles, expected, "every section, by weight, at {width} px");
        assert_eq!(nav["more"], true, "the rest behind a menu at {width} px");
        // One line: the middles of what is shown are within a few pixels of each
        // other (links and the menu's label have boxes of their own sizes); a second
        // row would be a whole line lower.
        let tops = nav["tops"].as_array().unwrap();
        let line = nav["lineHeight"].as_f64().unwrap();
        assert!(
            tops.iter()
                .all(|top| (top.as_f64().unwrap() - tops[0].as_f64().unwrap()).abs() < line / 4.0),
            "the shown links and the menu are on one line at {width} px: {nav}"
        );
        // The menu opens on the rest.
        browser.eval("document.querySelector('.site-nav details summary').click()");
        browser.screenshot(&shots.join(format!("nav-20-sections-{width}-open.png")));
        let opened = browser.eval(
            "Array.from(document.querySelectorAll('.site-nav details a')).filter((a) => a.checkVisibility()).length",
        );
        assert!(
            opened.as_u64().unwrap() >= 10,
            "the opened menu shows the sections the line has no room for at {width} px: {opened}"
        );
        let height = nav["navHeight"].as_f64().unwrap();
        assert!(
            height < 2.0 * line,
            "the navigation is one row ({height} px for {line} px links) at {width} px"
        );
        assert!(
            nav["scrollWidth"].as_f64() <= nav["width"].as_f64(),
            "the page fits the window at {width} px: {nav}"
        );
    }
}
