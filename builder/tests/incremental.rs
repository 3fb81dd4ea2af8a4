//! "Incremental equals full", as a property: over a copy of the Rust book, a seeded random
//! sequence of edits, creations, deletions and renames of pages, templates, static files,
//! assets and the config; after each step the incremental build's output equals a fresh
//! full build of the same files, byte for byte, and so do their diagnostics.
//!
//! Compared per URL: the body (bytes in memory, or the file served), the content type,
//! the ETag and the length. Not compared: `Last-Modified` (`Resource::modified`), the time
//! a page was rendered, which differs between any two builds. Steps that leave the site
//! with errors compare diagnostics only: there, by design, the incremental build keeps
//! serving each broken page's last good HTML, which a fresh build never had; the step
//! after fixes the error and compares everything again.
//!
//! Reproducible: the seed (default below, or `SITED_PROPERTY_SEED`) and each step are
//! printed; `SITED_PROPERTY_STEPS` runs a longer sequence.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use sited_builder::{Body, Changes, Options, Output, Site};

const DEFAULT_SEED: u64 = 13;
const DEFAULT_STEPS: usize = 25;

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| {
        v.parse()
            .unwrap_or_else(|_| panic!("{name} must be a number"))
    })
}

/// A copy of the book's `content/` to edit, plus a stylesheet: a plain site (without
/// `book.toml`, whose SUMMARY.md would make the steps that add, delete and rename pages
/// errors). Books' own rebuilds are tested in `book.rs`.
fn copy_of_the_book() -> (tempfile::TempDir, PathBuf) {
    let book = common::corpus("rust-book");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap().join("book");
    copy_tree(&book.join("content"), &root.join("content"));
    fs::create_dir_all(root.join("static")).unwrap();
    fs::write(root.join("static/custom.css"), "body { margin: 0 }\n").unwrap();
    (dir, root)
}

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Every file under `dir` with the extension `ext`, sorted (for reproducible picks).
fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        let Ok(entries) = fs::read_dir(&path) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == ext) {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// One step: what it did, the paths a watcher would report, and whether it leaves an
/// error in the site (fixed by the step after).
struct Step {
    what: String,
    changed: Vec<PathBuf>,
    breaks: bool,
}

/// The book being edited, and the dice.
struct Editor {
    root: PathBuf,
    rng: fastrand::Rng,
    made: usize,
    /// A page broken by the last step, to fix next.
    broken: Option<(PathBuf, Vec<u8>)>,
}

impl Editor {
    fn content(&self) -> PathBuf {
        self.root.join("content")
    }

    fn pick(&mut self, mut list: Vec<PathBuf>) -> Option<PathBuf> {
        (!list.is_empty()).then(|| list.swap_remove(self.rng.usize(..list.len())))
    }

    fn page(&mut self) -> PathBuf {
        let pages = files(&self.content(), "md");
        self.pick(pages).expect("the book has pages")
    }

    fn fresh_name(&mut self, prefix: &str) -> String {
        self.made += 1;
        format!("{prefix}-{}", self.made)
    }

    fn rel(&self, path: &Path) -> String {
        path.strip_prefix(&self.root).unwrap().display().to_string()
    }

    fn step(&mut self) -> Step {
        if let Some((path, text)) = self.broken.take() {
            fs::write(&path, text).unwrap();
            return self.done(format!("fix {}", self.rel(&path)), vec![path]);
        }
        match self.rng.u32(..100) {
            0..25 => self.edit_body(),
            25..35 => self.front_matter(),
            35..42 => self.add_link(),
            42..52 => self.create_page(),
            52..58 => self.delete_page(),
            58..65 => self.rename_page(),
            65..74 => self.template(),
            74..84 => self.static_file(),
            84..89 => self.asset(),
            89..93 => self.config(),
            _ => self.break_page(),
        }
    }

    fn done(&self, what: String, changed: Vec<PathBuf>) -> Step {
        Step {
            what,
            changed,
            breaks: false,
        }
    }

    /// A body edit: most keep every listing as it is (the fast path), some change the
    /// first paragraph (the summary listings show).
    fn edit_body(&mut self) -> Step {
        let page = self.page();
        let mut text = fs::read_to_string(&page).unwrap();
        let n = self.rng.u32(..1000);
        let what = match self.rng.u8(..3) {
            0 => {
                text.push_str(&format!("\n\nAn added paragraph, number {n}.\n"));
                "append a paragraph to"
            }
            1 => {
                text.push_str(&format!("\n## Added heading {n}\n\nWith text.\n"));
                "append a section to"
            }
            _ => {
                text = insert_after_front_matter(&text, &format!("A new opening, number {n}.\n\n"));
                "open with a new paragraph"
            }
        };
        fs::write(&page, text).unwrap();
        self.done(format!("{what} {}", self.rel(&page)), vec![page])
    }

    /// Front matter that listings and other pages show: title, date, weight, tags, draft,
    /// slug.
    fn front_matter(&mut self) -> Step {
        let page = self.page();
        let text = fs::read_to_string(&page).unwrap();
        let body = strip_front_matter(&text);
        let n = self.rng.u32(..50);
        let key = match self.rng.u8(..6) {
            0 => format!("title = \"Retitled {n}\""),
            1 => format!("date = 2026-01-{:02}", 1 + n % 28),
            2 => format!("weight = {n}"),
            3 => format!("tags = [\"tag-{}\", \"shared\"]", n % 4),
            4 => "draft = true".to_string(),
            _ => format!("slug = \"slug-{n}\""),
        };
        fs::write(&page, format!("+++\n{key}\n+++\n{body}")).unwrap();
        self.done(format!("set `{key}` on {}", self.rel(&page)), vec![page])
    }

    fn add_link(&mut self) -> Step {
        let page = self.page();
        let target = self.page();
        let name = target.file_name().unwrap().to_string_lossy().into_owned();
        let rel = match target.strip_prefix(page.parent().unwrap()) {
            Ok(rel) => rel.display().to_string(),
            Err(_) => format!("../{name}"),
        };
        let mut text = fs::read_to_string(&page).unwrap();
        text.push_str(&format!("\nSee [{name}]({rel}#top).\n"));
        fs::write(&page, text).unwrap();
        self.done(format!("link {} to {rel}", self.rel(&page)), vec![page])
    }

    fn create_page(&mut self) -> Step {
        let name = self.fresh_name("page");
        let mut changed = Vec::new();
        let dir = if self.rng.bool() {
            let dir = self.content().join(self.fresh_name("part"));
            fs::create_dir(&dir).unwrap();
            changed.push(dir.clone());
            dir
        } else {
            self.content()
        };
        let path = dir.join(format!("{name}.md"));
        let date = self.rng.u8(1..28);
        fs::write(
            &path,
            format!("+++\ntitle = \"{name}\"\ndate = 2026-02-{date:02}\n+++\nA new page.\n"),
        )
        .unwrap();
        changed.push(path.clone());
        self.done(format!("create {}", self.rel(&path)), changed)
    }

    fn delete_page(&mut self) -> Step {
        let page = self.page();
        fs::remove_file(&page).unwrap();
        self.done(format!("delete {}", self.rel(&page)), vec![page])
    }

    fn rename_page(&mut self) -> Step {
        let page = self.page();
        let to = page.with_file_name(format!("{}.md", self.fresh_name("renamed")));
        fs::rename(&page, &to).unwrap();
        let what = format!("rename {} to {}", self.rel(&page), self.rel(&to));
        self.done(what, vec![page, to])
    }

    /// Creates, edits, renames or deletes a template override.
    fn template(&mut self) -> Step {
        let dir = self.root.join("templates");
        let existing = files(&dir, "html");
        let n = self.rng.u32(..1000);
        match (self.rng.u8(..4), self.pick(existing)) {
            (0, Some(template)) => {
                fs::remove_file(&template).unwrap();
                self.done(format!("delete {}", self.rel(&template)), vec![template])
            }
            (1, Some(template)) if template.ends_with("extra.html") => {
                let to = dir.join("extra-renamed.html");
                fs::rename(&template, &to).unwrap();
                let what = format!("rename {} to {}", self.rel(&template), self.rel(&to));
                self.done(what, vec![template, to])
            }
            _ => {
                let (name, text) = match self.rng.u8(..3) {
                    0 => (
                        "page.html",
                        format!(
                            "{{% extends \"base.html\" %}}{{% block content %}}<h1>{{{{ page.title }}}}</h1>\
                             <p>edition {n}</p>{{{{ page.content|safe }}}}{{% endblock %}}"
                        ),
                    ),
                    1 => (
                        "section.html",
                        format!(
                            "<h1>{{{{ section.title }}}} {n}</h1>{{% for p in section.pages %}}\
                             <a href=\"{{{{ p.url }}}}\">{{{{ p.title }}}}</a>{{% endfor %}}"
                        ),
                    ),
                    _ => ("extra.html", format!("unused {n}")),
                };
                fs::create_dir_all(&dir).unwrap();
                let path = dir.join(name);
                fs::write(&path, text).unwrap();
                self.done(format!("write {}", self.rel(&path)), vec![path])
            }
        }
    }

    /// Creates, edits, renames or deletes a file under `static/`.
    fn static_file(&mut self) -> Step {
        let dir = self.root.join("static");
        let mut existing = files(&dir, "css");
        existing.extend(files(&dir, "png"));
        let n = self.rng.u32(..1000);
        match (self.rng.u8(..4), self.pick(existing)) {
            (0, Some(file)) => {
                fs::remove_file(&file).unwrap();
                self.done(format!("delete {}", self.rel(&file)), vec![file])
            }
            (1, Some(file)) => {
                let ext = file.extension().unwrap().to_string_lossy().into_owned();
                let to = dir.join(format!("{}.{ext}", self.fresh_name("moved")));
                fs::rename(&file, &to).unwrap();
                let what = format!("rename {} to {}", self.rel(&file), self.rel(&to));
                self.done(what, vec![file, to])
            }
            (2, Some(file)) => {
                fs::write(&file, format!("/* edited {n} */\n")).unwrap();
                self.done(format!("edit {}", self.rel(&file)), vec![file])
            }
            _ => {
                let name = if self.rng.bool() {
                    "custom.css".to_string()
                } else {
                    format!("{}.png", self.fresh_name("image"))
                };
                let path = dir.join(name);
                fs::write(&path, n.to_le_bytes()).unwrap();
                self.done(format!("write {}", self.rel(&path)), vec![path])
            }
        }
    }

    /// An image beside the content comes or goes.
    fn asset(&mut self) -> Step {
        let images = files(&self.content().join("img"), "svg");
        match (self.rng.bool(), self.pick(images)) {
            (true, Some(image)) => {
                fs::remove_file(&image).unwrap();
                self.done(format!("delete {}", self.rel(&image)), vec![image])
            }
            _ => {
                let path = self
                    .content()
                    .join(format!("img/{}.svg", self.fresh_name("drawing")));
                fs::write(&path, "<svg xmlns=\"http://www.w3.org/2000/svg\"/>\n").unwrap();
                self.done(format!("create {}", self.rel(&path)), vec![path])
            }
        }
    }

    fn config(&mut self) -> Step {
        let path = self.root.join("site.toml");
        let n = self.rng.u32(..1000);
        fs::write(
            &path,
            // A host, not a path: a path moves a published build's links under it, which
            // the development server (an incremental build) leaves at the root.
            format!("title = \"The Book {n}\"\nbase_url = \"https://b{n}.example.org/\"\n"),
        )
        .unwrap();
        self.done(format!("write site.toml ({n})"), vec![path])
    }

    /// Front matter that does not parse; the next step puts the page back.
    fn break_page(&mut self) -> Step {
        let page = self.page();
        let text = fs::read(&page).unwrap();
        fs::write(&page, b"+++\ntitle = \"never closed\n+++\nBroken.\n").unwrap();
        self.broken = Some((page.clone(), text));
        Step {
            what: format!("break the front matter of {}", self.rel(&page)),
            changed: vec![page],
            breaks: true,
        }
    }
}

/// `text` without a `+++` front matter block at its top.
fn strip_front_matter(text: &str) -> &str {
    text.strip_prefix("+++\n")
        .and_then(|rest| rest.find("\n+++\n").map(|end| &rest[end + 5..]))
        .unwrap_or(text)
}

fn insert_after_front_matter(text: &str, insert: &str) -> String {
    let body = strip_front_matter(text);
    let head = &text[..text.len() - body.len()];
    format!("{head}{insert}{body}")
}

/// How two outputs differ (per URL), ignoring only when pages were rendered.
fn differences(incremental: &Output, full: &Output) -> Vec<String> {
    let mut found = Vec::new();
    let mut urls: Vec<&String> = incremental
        .resources
        .keys()
        .chain(full.resources.keys())
        .collect();
    urls.sort();
    urls.dedup();
    for url in urls {
        let (a, b) = match (incremental.get(url), full.get(url)) {
            (Some(a), Some(b)) => (a, b),
            (Some(_), None) => {
                found.push(format!("{url}: only in the incremental build"));
                continue;
            }
            (None, _) => {
                found.push(format!("{url}: missing from the incremental build"));
                continue;
            }
        };
        // The incremental build holds its pages packed, as a server's does: compared
        // by their bytes.
        let same_body = match (&a.body, &b.body) {
            (Body::File(x), Body::File(y)) => x == y,
            _ => a.bytes().unwrap().is_some() && a.bytes().unwrap() == b.bytes().unwrap(),
        };
        if !same_body {
            found.push(format!(
                "{url}: bodies differ\n  incremental: {}\n  full:        {}",
                excerpt(incremental, url),
                excerpt(full, url)
            ));
        } else if (&a.etag, &a.content_type, a.len) != (&b.etag, &b.content_type, b.len) {
            found.push(format!("{url}: tags, types or lengths differ"));
        }
    }
    found
}

/// Where two texts part (the first differing line is what a reader needs).
fn excerpt(output: &Output, url: &str) -> String {
    common::text(output, url)
        .unwrap_or_default()
        .chars()
        .take(300)
        .collect()
}

#[test]
fn incremental_builds_equal_full_builds_over_random_edits_of_the_rust_book() {
    let seed = env_number("SITED_PROPERTY_SEED").unwrap_or(DEFAULT_SEED);
    let steps = env_number("SITED_PROPERTY_STEPS").map_or(DEFAULT_STEPS, |n| n as usize);
    println!("seed {seed}, {steps} steps (SITED_PROPERTY_SEED, SITED_PROPERTY_STEPS)");
    let (_dir, root) = copy_of_the_book();
    let mut editor = Editor {
        root: root.clone(),
        rng: fastrand::Rng::with_seed(seed),
        made: 0,
        broken: None,
    };
    // Built as the daemon builds it: pages held packed, in a spill file with the text of
    // pages (read back when templates, links or URLs change).
    let spill_dir = tempfile::tempdir().unwrap();
    let options = Options {
        pack_pages: true,
        spill: Some(sited_builder::output::Spill::create(spill_dir.path()).unwrap()),
        ..Options::default()
    };
    let mut site = Site::open(&root, options);
    let first = site.build(Changes::Everything).unwrap();
    site.wait_spilled();
    assert!(
        matches!(&first.output.get("/").unwrap().body, Body::Packed(p) if p.is_spilled()),
        "pages are held packed, in the spill file"
    );
    assert!(
        first.report.diagnostics.is_empty(),
        "{:?}",
        first.report.diagnostics
    );
    let mut partial_renders = 0;
    for n in 1..=steps {
        let step = editor.step();
        println!("step {n}: {}", step.what);
        let incremental = site.build(Changes::Paths(step.changed)).unwrap();
        // A fresh site's first build reads and renders everything, as the development
        // server does (a one-shot build differs on purpose: it publishes under
        // base_url's path).
        let full = Site::open(&root, Options::default())
            .build(Changes::Everything)
            .unwrap();
        let context = format!("seed {seed}, step {n} ({})", step.what);
        assert_eq!(
            incremental.report.diagnostics, full.report.diagnostics,
            "{context}: diagnostics differ"
        );
        assert_eq!(
            step.breaks,
            full.report.has_errors(),
            "{context}: the step was meant to break the site or not"
        );
        if step.breaks {
            continue;
        }
        let found = differences(&incremental.output, &full.output);
        assert!(
            found.is_empty(),
            "{context}: the incremental output differs from a full build:\n{}",
            found.join("\n")
        );
        assert_eq!(incremental.report.pages, full.report.pages, "{context}");
        assert_eq!(incremental.report.files, full.report.files, "{context}");
        if incremental.report.rendered < full.report.pages {
            partial_renders += 1;
        }
    }
    assert!(
        partial_renders > steps / 4,
        "only {partial_renders} of {steps} steps rendered less than the whole site: the \
         builds compared were not incremental"
    );
}
