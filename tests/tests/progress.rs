//! A build that takes more than about a second shows its progress (pages done / total)
//! on a terminal: in `sited build`, and in `sitectl up` (which reads it from the daemon:
//! `ps` reports `progress` while a site builds). Never into a pipe.
//!
//! The slow site is slow for real: a page template that loops a few hundred thousand
//! times, so that its 42 pages take seconds to render on any machine this runs on (about
//! 5 s of CPU in a debug build: 2.5 s on two idle cores, well past the 1 s threshold).

use std::path::PathBuf;

use sited_tests::{DEADLINE, Home, wait_until};

const PAGES: usize = 40;
/// Content pages, the home page, the 404 page.
const TOTAL: usize = PAGES + 2;

fn slow_site(home: &Home) -> PathBuf {
    let mut files = vec![
        // Published with absolute feed URLs: `sited build` prints no warning.
        (
            "site.toml".to_string(),
            "base_url = \"https://example.org/\"\n".to_string(),
        ),
        (
            "templates/page.html".to_string(),
            "{% extends \"base.html\" %}{% block content %}\
         {% for i in range(450) %}{% for j in range(1000) %}{% endfor %}{% endfor %}\
         {{ page.content | safe }}{% endblock %}"
                .to_string(),
        ),
    ];
    for i in 0..PAGES {
        files.push((format!("content/p{i}.md"), format!("# Page {i}\n\nText.\n")));
    }
    let files: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    home.site("slow", &files)
}

/// Whether `text` shows a progress line of the whole build, e.g. `12/42 pages (28%)`.
fn shows_progress(text: &str) -> bool {
    regex::Regex::new(&format!(r"\d+/{TOTAL} pages \(\d+%\)"))
        .unwrap()
        .is_match(text)
}

#[test]
fn sited_build_shows_progress_on_a_terminal_only() {
    let home = Home::new();
    let root = slow_site(&home);
    let out = home.path().join("out");
    let args = [
        "build",
        root.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];

    let (screen, code) = home.run_in_terminal("sited", &args, &[]);
    assert_eq!(code, 0, "{screen}");
    assert!(
        shows_progress(&screen),
        "no progress on the terminal: {screen:?}"
    );
    assert!(screen.contains("building: "), "{screen:?}");
    // The line is blanked before the result is printed.
    let last = screen.rsplit('\r').next().unwrap();
    assert!(
        last.starts_with(&format!("built {TOTAL} pages")),
        "{last:?}"
    );

    let piped = home.command("sited").args(args).output().unwrap();
    assert!(piped.status.success());
    let stderr = String::from_utf8_lossy(&piped.stderr);
    assert!(
        !stderr.contains("building:"),
        "progress into a pipe: {stderr}"
    );
}

#[test]
fn sitectl_up_shows_the_daemons_progress_on_a_terminal() {
    let home = Home::new();
    home.sitectl_ok(&["daemon", "start"]);
    let root = slow_site(&home);
    let args = ["up", root.to_str().unwrap(), "--port", "0"];
    std::thread::scope(|scope| {
        let up = scope.spawn(|| home.run_in_terminal("sitectl", &args, &[]));

        // Meanwhile `ps --json` tells how far the first build is.
        let mut seen = None;
        assert!(
            wait_until(DEADLINE, || {
                seen = home
                    .ps()
                    .into_iter()
                    .find(|s| s["state"] == "building" && !s["progress"].is_null());
                seen.is_some() || up.is_finished()
            }),
            "ps never showed the build's progress"
        );
        let site = seen.expect("the build finished before ps saw its progress");
        let progress = &site["progress"];
        assert_eq!(progress["total"], TOTAL, "{site}");
        assert!(progress["done"].as_u64().unwrap() <= TOTAL as u64, "{site}");

        let (screen, code) = up.join().unwrap();
        assert_eq!(code, 0, "{screen}");
        assert!(
            shows_progress(&screen),
            "no progress on the terminal: {screen:?}"
        );
        assert!(screen.contains("building port "), "{screen:?}");
        let last = screen.rsplit('\r').next().unwrap();
        assert!(
            last.starts_with("serving "),
            "the line is blanked: {last:?}"
        );
    });
    let site = &home.ps()[0];
    assert_eq!(site["state"], "serving");
    assert!(site["progress"].is_null(), "no progress once built: {site}");
}
