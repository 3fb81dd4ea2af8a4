//! Save → updated page in a real browser: headless Chromium, driven over the DevTools
//! protocol, shows a post of a copy of the example blog while its files are edited.
//!
//! Three kinds of edit take turns, one at a time, each timed from just before the
//! `write` to the moment the page's DOM shows the edit:
//! - text: a line appended to the post's body, which live reload morphs into the open
//!   page in place;
//! - head: the post's `description` changed (a `<meta>` in the head), which makes the
//!   page reload (the full-reload figure, side by side);
//! - css: `static/custom.css` changed, which swaps the stylesheet (timed to the new
//!   stylesheet's `load` with the new rule in effect).
//!
//! The page records the moments itself: a script run in every document the tab loads
//! (reloads included) watches the DOM for the edit's marker and notes
//! `performance.timeOrigin + performance.now()` (the same wall clock as the harness's)
//! when the DOM first shows it — for a reload, once the new document is whole
//! (`DOMContentLoaded`) — and again after the next frame is painted.
//! Usage: `browser-latency [EDITS] [ARTICLE.md]` (default 25 of each kind after 2 warm-up
//! rounds; ARTICLE's text, e.g. a long chapter of the Rust book, is added to the post to
//! make it a long page); run it through `bench/browser-latency.sh`, which builds in
//! release mode.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sited_tests::Home;
use sited_tests::browser::Browser;

/// The post edited, relative to the site, and its URL.
const POST: &str = "content/posts/notes-on-static-sites.md";
const URL: &str = "/posts/notes-on-static-sites/";
const STYLESHEET: &str = "static/custom.css";
/// Rounds not counted, to let the daemon and the browser warm up.
const WARMUP: usize = 2;
/// Quiet time between edits, so one edit's work never overlaps the next.
const SETTLE: Duration = Duration::from_millis(300);
const DEADLINE: Duration = Duration::from_secs(20);

/// Runs in every document the tab loads: notes when the marker the harness set in
/// sessionStorage first shows in the DOM, or in the root's `--bench` custom property
/// once a swapped stylesheet has loaded.
const RECORDER: &str = r#"(() => {
  const check = () => {
    const marker = sessionStorage.getItem("bench-marker");
    if (!marker || sessionStorage.getItem("bench-seen")) return;
    const root = document.documentElement;
    if (!root) return;
    const shown = root.outerHTML.includes(marker) ||
      getComputedStyle(root).getPropertyValue("--bench").includes(marker);
    if (!shown) return;
    // A reloading document counts once it is whole (its head shows the edit long
    // before its body is parsed).
    if (document.readyState === "loading") {
      if (!recording) document.addEventListener("DOMContentLoaded", record, { once: true });
      recording = true;
      return;
    }
    record();
  };
  let recording = false;
  const record = () => {
    const now = () => String(performance.timeOrigin + performance.now());
    sessionStorage.setItem("bench-seen", now());
    // The frame that shows it: a rendering update runs animation frame callbacks and
    // then paints; a task queued from one runs after that paint.
    requestAnimationFrame(() => setTimeout(() => sessionStorage.setItem("bench-painted", now()), 0));
  };
  new MutationObserver(check).observe(document, { subtree: true, childList: true, characterData: true, attributes: true });
  document.addEventListener("load", check, true);
})();"#;

const CONNECTED: &str =
    "!!window.__sitedLiveReload && window.__sitedLiveReload.generation !== null";

#[derive(Debug, Clone, Copy)]
enum Edit {
    Text,
    Head,
    Css,
}

impl Edit {
    const ALL: [Edit; 3] = [Edit::Text, Edit::Head, Edit::Css];

    fn label(self) -> &'static str {
        match self {
            Edit::Text => "text edit → DOM updated in place",
            Edit::Head => "head edit → DOM after a full reload",
            Edit::Css => "css edit → stylesheet swapped",
        }
    }

    /// Writes the edit, with `marker` where the page will show it. `post` holds the
    /// markers of the post's text and description, so an edit of one leaves the other
    /// as the page shows it.
    fn write(self, site: &Path, post: &mut Post, original_css: &str, marker: &str) {
        match self {
            Edit::Text => post.text = marker.to_string(),
            Edit::Head => post.description = marker.to_string(),
            Edit::Css => {
                let css = format!("{original_css}\n:root {{ --bench: \"{marker}\"; }}\n");
                fs::write(site.join(STYLESHEET), css).unwrap();
                return;
            }
        }
        fs::write(site.join(POST), post.render()).unwrap();
    }
}

/// The post as the harness last wrote it.
#[derive(Debug)]
struct Post {
    original: String,
    /// Put in front of the description (in the head).
    description: String,
    /// Appended to the text (in the body).
    text: String,
}

impl Post {
    fn render(&self) -> String {
        let post = self.original.replacen(
            "description = \"",
            &format!("description = \"{} ", self.description),
            1,
        );
        format!("{post}\n\nEdited: {}.\n", self.text)
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let edits: usize = args
        .next()
        .map_or(25, |n| n.parse().expect("EDITS is a number"));
    let article = args
        .next()
        .map(|path| fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}")));
    let work = tempfile::tempdir().unwrap();
    let site = work.path().join("blog");
    sited_tests::copy_tree(&sited_tests::workspace().join("examples/blog"), &site);
    let mut original = fs::read_to_string(site.join(POST)).unwrap();
    if let Some(article) = &article {
        original.push_str("\n\n");
        original.push_str(article);
    }
    assert!(
        original.contains("description = \""),
        "{POST} has a description"
    );
    let mut post = Post {
        original,
        description: "start".into(),
        text: "start".into(),
    };
    // The page starts as it will stay between edits: with both markers in place.
    fs::write(site.join(POST), post.render()).unwrap();
    let original_css = fs::read_to_string(site.join(STYLESHEET)).unwrap();

    let home = Home::new();
    let port = home.up(&site, &["--port", "0"]);
    let mut browser = Browser::start();
    browser.on_new_document(RECORDER);
    browser.navigate(&format!("http://127.0.0.1:{port}{URL}"));
    browser.wait_for(CONNECTED, DEADLINE);
    let html = sited_tests::get(port, URL).unwrap().body.len();
    println!(
        "site: a copy of examples/blog on port {port}; page {URL} ({html} bytes of HTML); {edits} edits of each kind after {WARMUP} warm-up rounds"
    );

    // Write → DOM shows the edit, and write → a frame with it painted, per kind.
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); Edit::ALL.len()];
    let mut painted_samples: Vec<Vec<f64>> = vec![Vec::new(); Edit::ALL.len()];
    println!("each edit: write → DOM shows it / write → painted");
    for round in 0..edits + WARMUP {
        let mut line = format!("round {round:>2}:");
        for (kind, edit) in Edit::ALL.into_iter().enumerate() {
            std::thread::sleep(SETTLE);
            browser.wait_for(CONNECTED, DEADLINE);
            let marker = format!("bench-{round}-{kind}");
            browser.eval(&format!(
                "sessionStorage.setItem('bench-marker', '{marker}'); \
                 sessionStorage.removeItem('bench-seen'); sessionStorage.removeItem('bench-painted'); true"
            ));
            let t0 = wall_ms();
            edit.write(&site, &mut post, &original_css, &marker);
            let (seen, painted) = wait_seen(&mut browser);
            let (dom, paint) = (seen - t0, painted - t0);
            line.push_str(&format!(
                "  {:>4} {dom:>6.2} / {paint:>6.2} ms",
                short(edit)
            ));
            if round >= WARMUP {
                samples[kind].push(dom);
                painted_samples[kind].push(paint);
            }
        }
        if round < WARMUP {
            line.push_str("  (warm-up)");
        }
        println!("{line}");
    }

    println!();
    for (edit, samples) in Edit::ALL.into_iter().zip(&mut samples) {
        report(&format!("{}, DOM", edit.label()), samples);
    }
    for (edit, samples) in Edit::ALL.into_iter().zip(&mut painted_samples) {
        report(&format!("{}, painted", edit.label()), samples);
    }
    println!(
        "full reload / in place (medians): DOM {:.1}×, painted {:.1}×",
        median(&samples[1]) / median(&samples[0]),
        median(&painted_samples[1]) / median(&painted_samples[0])
    );
}

fn short(edit: Edit) -> &'static str {
    match edit {
        Edit::Text => "text",
        Edit::Head => "head",
        Edit::Css => "css",
    }
}

/// Milliseconds since the Unix epoch, as the page's `performance.timeOrigin` counts.
fn wall_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        * 1000.0
}

/// The moments the page noted the marker in its DOM and painted it (polled gently: the
/// page times itself).
fn wait_seen(browser: &mut Browser) -> (f64, f64) {
    let start = Instant::now();
    loop {
        let noted = browser.eval(
            "[sessionStorage.getItem('bench-seen'), sessionStorage.getItem('bench-painted')]",
        );
        let moment = |n: usize| noted[n].as_str().and_then(|s| s.parse::<f64>().ok());
        if let (Some(seen), Some(painted)) = (moment(0), moment(1)) {
            return (seen, painted);
        }
        assert!(start.elapsed() < DEADLINE, "the page never showed the edit");
        std::thread::sleep(Duration::from_millis(25));
    }
}

fn median(samples: &[f64]) -> f64 {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

fn report(label: &str, samples: &mut [f64]) {
    samples.sort_by(f64::total_cmp);
    let p95 = samples[((samples.len() as f64 * 0.95).ceil() as usize).saturating_sub(1)];
    println!(
        "{label}: median {:.2} ms, p95 {p95:.2} ms, min {:.2} ms, max {:.2} ms (n={})",
        median(samples),
        samples[0],
        samples[samples.len() - 1],
        samples.len()
    );
}
