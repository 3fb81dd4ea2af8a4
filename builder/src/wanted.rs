//! The first page before the build ends: URLs somebody is waiting for are rendered before
//! the rest of the build and handed over as soon as each is made.
//!
//! # Why it is shaped so
//!
//! - **What a page needs.** A page's HTML depends on more than its own file: `site`
//!   (the navigation, recent pages, tags), its section's title and its neighbours in the
//!   listing (prev/next), and those come from every page's front matter and Markdown
//!   (titles are often a page's first heading; listings sort by title). So a page is
//!   rendered early only once the tree is arranged, and then it is the very page the full
//!   build makes: the same job, the same context, the same bytes (tested). Nothing is
//!   served early that the browser would have to be told to reload.
//! - **What comes before.** Load (walk, read, front matter), the tree's URLs, Markdown
//!   and the listings run before any template. On tldr (7,425 pages) they are about 42%
//!   of the build (BENCHMARKS.md), more than the 150 ms goal of issue 17.2 on this
//!   machine; the template stage, most of the rest, is where a wanted page jumps the
//!   queue. A faster load and Markdown stage shortens the wait one for one. Files served as they are (`static/`, assets beside the
//!   content, the theme's stylesheet and icon) need no tree: they are handed over as soon
//!   as the render stage starts, whatever the state of the pages.
//! - **Asked for at any time.** A request can come before the render stage (its URL
//!   waits in [`Wanted`] and is taken first) or during it: every worker looks at the
//!   wanted URLs before it takes its next page, so a page asked for is the next one
//!   rendered, at most one page per worker later. A page already rendered is handed over
//!   from where it waits for the end of the stage; after the stage, every page and file
//!   is handed over the moment it is asked for.
//! - **Handed over, not published.** The builder calls the [`Wanted`]'s callback with
//!   each finished resource; the daemon keeps them aside for the requests waiting on
//!   them, and publishes the whole build as before once it is done. A URL that is not a
//!   page or a file of the site is answered by the whole build (a 404 is only known then,
//!   and the sitemap, feeds and aliases are made last).
//! - **First builds only.** The daemon closes its [`Wanted`] after the first build:
//!   rebuilds serve the last good output while they run, and render the plain way.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use rayon::prelude::*;
use rustc_hash::FxHashMap as HashMap;

use crate::output::Resource;

/// Where a build that serves [`Wanted`] URLs stands, for a test that holds it there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The tree is arranged; no page is rendered yet.
    Render,
    /// Every page is rendered; the output is not assembled yet.
    Rendered,
}

/// Receives each wanted resource as soon as it is made (URL, resource), on a build thread.
pub type Ready = dyn Fn(&str, &Resource) + Send + Sync;
/// Called by the build at each [`Stage`]: tests hold it there.
pub type StageHook = dyn Fn(Stage) + Send + Sync;

/// The URLs somebody waits for while the site builds, shared between the build and
/// whoever asks (a server). Cheap to clone; all clones are the same set.
#[derive(Clone)]
pub struct Wanted(Arc<Inner>);

struct Inner {
    state: Mutex<State>,
    ready: Box<Ready>,
    stage: Option<Box<StageHook>>,
}

#[derive(Default)]
struct State {
    /// Every URL asked for.
    all: HashSet<String>,
    /// Asked for and not yet looked at by the build.
    new: Vec<String>,
    /// Already given to `ready`.
    handed: HashSet<String>,
    /// Once closed, builds render in their plain order.
    closed: bool,
    /// URL → file of every file the build serves as it is, known once the render stage
    /// starts ([`Wanted::files_from`]).
    files: HashMap<String, PathBuf>,
    /// Every page, once the render stage is over ([`Wanted::rendered`]).
    pages: HashMap<String, Resource>,
}

impl std::fmt::Debug for Wanted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.lock();
        f.debug_struct("Wanted")
            .field("all", &state.all.len())
            .field("closed", &state.closed)
            .finish_non_exhaustive()
    }
}

impl Wanted {
    /// A set that hands each wanted resource to `ready` once it is made.
    pub fn new(ready: impl Fn(&str, &Resource) + Send + Sync + 'static) -> Wanted {
        Wanted(Arc::new(Inner {
            state: Mutex::default(),
            ready: Box::new(ready),
            stage: None,
        }))
    }

    /// The same, with `hook` called at each [`Stage`] of the build (a test holds it).
    pub fn with_stage_hook(
        ready: impl Fn(&str, &Resource) + Send + Sync + 'static,
        hook: impl Fn(Stage) + Send + Sync + 'static,
    ) -> Wanted {
        Wanted(Arc::new(Inner {
            state: Mutex::default(),
            ready: Box::new(ready),
            stage: Some(Box::new(hook)),
        }))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Asks for `url` (a decoded URL path, as the output keys it). Returns at once; the
    /// resource comes through the callback, or with the whole build.
    pub fn want(&self, url: &str) {
        let mut state = self.lock();
        if state.closed || !state.all.insert(url.to_string()) {
            return;
        }
        // Made already (the render stage is over) or a file: handed over at once.
        let page = state.pages.get(url).cloned();
        let file = state.files.contains_key(url);
        if page.is_none() && !file {
            state.new.push(url.to_string());
            return;
        }
        drop(state);
        if let Some(made) = page.or_else(|| self.file(url)) {
            self.hand_over(url, &made);
        }
    }

    /// No more wants: later builds render in their plain order.
    pub fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        state.new.clear();
        state.pages.clear();
        state.files.clear();
    }

    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// Tells the hook where the build is (not once closed: rebuilds are not held).
    pub(crate) fn stage(&self, stage: Stage) {
        if let Some(hook) = self.0.stage.as_ref().filter(|_| !self.is_closed()) {
            hook(stage);
        }
    }

    /// Learns where the site's files are served (URL → path; a later one for the same
    /// URL wins, as `static/` wins over assets), so a wanted file is handed over without
    /// waiting for the pages.
    pub(crate) fn files_from(&self, files: impl Iterator<Item = (String, PathBuf)>) {
        if self.is_closed() {
            return;
        }
        let files = files.collect();
        self.lock().files = files;
    }

    /// The render stage is over and made `pages`: wants not met yet are met from them,
    /// and so is any want from now on (until the build ends, a few steps later).
    pub(crate) fn rendered(&self, pages: &[(String, Resource)]) {
        if self.is_closed() {
            return;
        }
        let pages: HashMap<String, Resource> = pages.iter().cloned().collect();
        let mut state = self.lock();
        state.pages = pages;
        let waiting: Vec<(String, Resource)> = std::mem::take(&mut state.new)
            .into_iter()
            .filter_map(|url| state.pages.get(&url).cloned().map(|made| (url, made)))
            .collect();
        drop(state);
        for (url, made) in waiting {
            self.hand_over(&url, &made);
        }
    }

    /// What a wanted URL that is no page serves, as the whole build will serve it: a
    /// file of the site, or the theme's stylesheet and icon. `None` for the rest
    /// (sitemap, feeds, aliases, a book's files), which are made last.
    fn file(&self, url: &str) -> Option<Resource> {
        let path = self.lock().files.get(url).cloned();
        if let Some(path) = path {
            return Resource::file(path).ok();
        }
        crate::theme::ASSETS
            .iter()
            .find(|(asset, ..)| *asset == url)
            .map(|(asset, content_type, body)| {
                let body = if *asset == crate::theme::STYLESHEET_URL {
                    crate::theme::stylesheet()
                } else {
                    bytes::Bytes::from_static(body.as_bytes())
                };
                Resource::memory(body, Arc::from(*content_type))
            })
    }

    fn take_new(&self) -> Vec<String> {
        std::mem::take(&mut self.lock().new)
    }

    fn is_wanted(&self, url: &str) -> bool {
        self.lock().all.contains(url)
    }

    /// Gives `resource` to the callback, once per URL (outside the lock: the callback
    /// may ask for more).
    fn hand_over(&self, url: &str, resource: &Resource) {
        if self.lock().handed.insert(url.to_string()) {
            (self.0.ready)(url, resource);
        }
    }
}

/// Runs `work` for each of `count` jobs (job `i` makes the page at `url(i)`) on the
/// current rayon pool and returns the results in job order. With an open `wanted`, the
/// jobs whose URLs are wanted run first, even those asked for while the others run, and
/// each is handed over (as `resource` makes it of the result) as soon as it is done;
/// wanted URLs that are no job are files, handed over as they are found.
pub(crate) fn run<'a, T: Send + Sync>(
    count: usize,
    url: impl Fn(usize) -> &'a str + Sync,
    wanted: Option<&Wanted>,
    work: impl Fn(usize) -> T + Sync,
    resource: impl Fn(&T) -> Option<Resource> + Sync,
) -> Vec<T> {
    let Some(wanted) = wanted.filter(|w| !w.is_closed()) else {
        return (0..count).into_par_iter().map(&work).collect();
    };
    let urls: Vec<&str> = (0..count).map(&url).collect();
    let index: HashMap<&str, usize> = urls.iter().enumerate().map(|(i, &url)| (url, i)).collect();
    let slots: Vec<OnceLock<T>> = (0..count).map(|_| OnceLock::new()).collect();
    let claimed: Vec<AtomicBool> = (0..count).map(|_| AtomicBool::new(false)).collect();
    let cursor = AtomicUsize::new(0);
    let hand_over = |i: usize, done: &T| {
        if let Some(made) = resource(done) {
            wanted.hand_over(urls[i], &made);
        }
    };
    let run_job = |i: usize| {
        let done = slots[i].get_or_init(|| work(i));
        // Asked for while it ran (or before): whoever asked finds it here. A want that
        // comes after this look is met by `wanted_first`, which then sees the slot set.
        if wanted.is_wanted(urls[i]) {
            hand_over(i, done);
        }
    };
    let wanted_first = || {
        for asked in wanted.take_new() {
            match index.get(asked.as_str()) {
                Some(&i) if !claimed[i].swap(true, Ordering::AcqRel) => run_job(i),
                // Running elsewhere: that worker hands it over when done.
                Some(&i) => {
                    if let Some(done) = slots[i].get() {
                        hand_over(i, done);
                    }
                }
                None => {
                    if let Some(made) = wanted.file(&asked) {
                        wanted.hand_over(&asked, &made);
                    }
                }
            }
        }
    };
    let workers = rayon::current_num_threads().max(1);
    (0..workers).into_par_iter().for_each(|_| {
        loop {
            wanted_first();
            let i = cursor.fetch_add(1, Ordering::Relaxed);
            if i >= count {
                break;
            }
            if !claimed[i].swap(true, Ordering::AcqRel) {
                run_job(i);
            }
        }
    });
    slots
        .into_iter()
        .map(|slot| slot.into_inner().expect("every job ran"))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::sync::Arc;

    use super::*;
    use crate::progress::Progress;
    use crate::{Body, Changes, Options, Site};

    /// What the callback saw: URL, body, pages rendered when it was called.
    type Seen = Arc<Mutex<Vec<(String, Body, usize)>>>;

    fn site(pages: usize) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for n in 0..pages {
            let text = format!("# Page {n:02}\n\nText of page {n:02}.\n");
            fs::write(dir.path().join(format!("p{n:02}.md")), text).unwrap();
        }
        fs::create_dir(dir.path().join("static")).unwrap();
        fs::write(dir.path().join("static/app.css"), "body{}").unwrap();
        dir
    }

    /// On one worker, so "before the others" is an order, not a race.
    fn build_on_one_thread(root: &std::path::Path, options: Options) -> crate::BuildResult {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let mut site = Site::open(root.canonicalize().unwrap(), options);
        pool.install(|| site.build(Changes::Everything).unwrap())
    }

    /// A page asked for before the render stage is the first page rendered; one asked
    /// for while the stage runs (here, from the callback) is rendered next, ahead of the
    /// pages before it in the plain order; a file comes as it is; one asked for after the
    /// render stage comes at once. Each is handed over before the build ends, with the
    /// bytes the whole build serves.
    #[test]
    fn a_wanted_page_is_rendered_first_and_handed_over_as_soon_as_made() {
        let dir = site(40);
        let progress = Arc::new(Progress::default());
        let seen: Seen = Arc::default();
        let handle: Arc<OnceLock<Wanted>> = Arc::default();
        let wanted = {
            let (seen, progress, handle) = (seen.clone(), progress.clone(), handle.clone());
            let hook_handle = handle.clone();
            Wanted::with_stage_hook(
                move |url, resource| {
                    let done = progress.get().map_or(0, |c| c.done);
                    seen.lock()
                        .unwrap()
                        .push((url.to_string(), resource.body.clone(), done));
                    if url == "/p35/" {
                        let wanted = handle.get().unwrap();
                        wanted.want("/p30/");
                        wanted.want("/app.css");
                    }
                },
                move |stage| match stage {
                    Stage::Render => hook_handle.get().unwrap().want("/p35/"),
                    // After the render stage: met at once from what it made.
                    Stage::Rendered => hook_handle.get().unwrap().want("/p05/"),
                },
            )
        };
        handle.set(wanted.clone()).unwrap();
        let options = Options {
            progress: Some(progress.clone()),
            wanted: Some(wanted),
            ..Options::default()
        };
        let built = build_on_one_thread(dir.path(), options);
        let seen = seen.lock().unwrap();
        let urls: Vec<&str> = seen.iter().map(|(url, ..)| url.as_str()).collect();
        // The file at once, as it was asked for; the page by the next free worker.
        assert_eq!(urls, ["/p35/", "/app.css", "/p30/", "/p05/"]);
        assert_eq!(seen[0].2, 1, "the first page rendered");
        // At most one page of the plain order between the ask and its page.
        assert!(seen[2].2 <= 3, "rendered {} pages before /p30/", seen[2].2);
        for (url, body, _) in seen.iter() {
            assert_eq!(
                &built.output.get(url).unwrap().body,
                body,
                "{url}: what the build serves"
            );
        }
    }

    /// A closed set changes nothing: no callback, the plain order, the same output.
    #[test]
    fn a_closed_wanted_set_hands_nothing_over() {
        let dir = site(5);
        let seen: Seen = Arc::default();
        let wanted = {
            let seen = seen.clone();
            Wanted::new(move |url, resource| {
                seen.lock()
                    .unwrap()
                    .push((url.to_string(), resource.body.clone(), 0));
            })
        };
        wanted.want("/p01/");
        wanted.close();
        wanted.want("/p02/");
        let options = Options {
            wanted: Some(wanted),
            ..Options::default()
        };
        let built = build_on_one_thread(dir.path(), options);
        assert!(seen.lock().unwrap().is_empty());
        assert!(built.output.get("/p01/").is_some());
    }
}
