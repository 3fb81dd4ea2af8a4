//! What the builder keeps of a site between builds, counted by a global allocator that
//! tracks live heap bytes (issue 17 item 3): a copy of a site (the tldr corpus by default)
//! built incrementally as the daemon builds it, the live heap after the first build and
//! after dropping parts of it, and the time of one-page rebuilds (the fast path), so a
//! memory cut can be checked not to slow the edit loop.
//!
//! Usage: `memory-parts CONTENT_DIR [EDITS]` (the directory is copied; EDITS one-page
//! rebuilds are timed, default 15). Run it under heaptrack for who allocated what is kept:
//! `SITED_MEMORY_UNPACKED=1` holds pages unpacked, as before issue 17.3's change;
//! `SITED_MEMORY_NO_SPILL=1` holds packed pages and pages' text in the heap, as before
//! they went to a spill file;
//! with `SITED_MEMORY_LEAK=1` the site is never dropped, so heaptrack reports what it
//! holds as leaked, by call stack.
#![allow(unsafe_code)] // a GlobalAlloc is unsafe to implement; it only counts.

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use sited_builder::{Body, Changes, Options, Site};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged; only sizes are
// counted on the side.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded with the caller's pointer and layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size, Ordering::Relaxed);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded with the caller's pointer, layout and size.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn mib(bytes: usize) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(content) = args.first() else {
        eprintln!("usage: memory-parts CONTENT_DIR [EDITS]");
        std::process::exit(2);
    };
    let edits: usize = args.get(1).map_or(15, |n| n.parse().expect("EDITS"));
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap().join("site");
    copy_tree(Path::new(content), &root.join("content"));

    let base = LIVE.load(Ordering::Relaxed);
    // As the daemon builds a site: pages held packed, in a spill file, with the text of
    // rendered pages.
    let spill = (std::env::var_os("SITED_MEMORY_NO_SPILL").is_none())
        .then(|| sited_builder::output::Spill::create(dir.path()).expect("a spill file"));
    let options = Options {
        pack_pages: std::env::var_os("SITED_MEMORY_UNPACKED").is_none(),
        spill,
        ..Options::default()
    };
    let mut site = Site::open(&root, options);
    let start = Instant::now();
    let built = site.build(Changes::Everything).expect("the first build");
    site.wait_spilled();
    println!(
        "first build: {} pages in {:.0} ms",
        built.report.pages,
        start.elapsed().as_secs_f64() * 1000.0
    );
    let pages: usize = built
        .output
        .resources
        .values()
        .map(|r| match &r.body {
            Body::Memory(bytes) => bytes.len(),
            Body::Packed(packed) => packed.packed_len(),
            Body::File(_) => 0,
        })
        .sum();
    let after_build = LIVE.load(Ordering::Relaxed) - base;
    println!(
        "live heap after the first build: {} (RSS {} KiB); page bodies in the output: {}",
        mib(after_build),
        rss_kib(),
        mib(pages)
    );

    // One-page edits: the fast path.
    let page = find_page(&root.join("content"));
    let mut times = Vec::new();
    for i in 0..edits {
        let mut text = std::fs::read_to_string(&page).unwrap();
        text.push_str(&format!("\nmemory-parts edit {i}\n"));
        std::fs::write(&page, text).unwrap();
        let start = Instant::now();
        let rebuilt = site
            .build(Changes::Paths(vec![page.clone()]))
            .expect("a rebuild");
        times.push(start.elapsed().as_secs_f64() * 1000.0);
        assert!(rebuilt.report.rendered <= 2, "the edit took the slow path");
    }
    times.sort_by(f64::total_cmp);
    if !times.is_empty() {
        println!(
            "one-page rebuild ({} edits): median {:.2} ms, min {:.2} ms, max {:.2} ms",
            times.len(),
            times[times.len() / 2],
            times[0],
            times[times.len() - 1]
        );
    }
    let with_output = LIVE.load(Ordering::Relaxed) - base;
    println!(
        "live heap after the edits, the first build's output still held: {}",
        mib(with_output)
    );
    drop(built);
    let site_only = LIVE.load(Ordering::Relaxed) - base;
    println!(
        "live heap, the site alone (its state, its last output): {}",
        mib(site_only)
    );
    if std::env::var_os("SITED_MEMORY_LEAK").is_some() {
        std::mem::forget(site);
        std::mem::forget(dir);
        std::process::exit(0);
    }
    let mut previous = LIVE.load(Ordering::Relaxed);
    site.measure_parts(|part| {
        let now = LIVE.load(Ordering::Relaxed);
        println!(
            "  freed by dropping {part}: {}",
            mib(previous.saturating_sub(now))
        );
        previous = now;
    });
    drop(site);
    println!(
        "live heap after dropping the site: {}",
        mib(LIVE.load(Ordering::Relaxed) - base)
    );
}

/// The Markdown file the tldr harnesses edit, else the first one found.
fn find_page(content: &Path) -> PathBuf {
    let tar = content.join("common/tar.md");
    if tar.exists() {
        return tar;
    }
    walk(content).expect("a Markdown file")
}

fn walk(dir: &Path) -> Option<PathBuf> {
    for entry in std::fs::read_dir(dir).ok()? {
        let path = entry.ok()?.path();
        if path.is_dir() {
            if let Some(found) = walk(&path) {
                return Some(found);
            }
        } else if path.extension().is_some_and(|e| e == "md") {
            return Some(path);
        }
    }
    None
}
