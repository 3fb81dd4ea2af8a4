//! Build progress: how many of a build's pages are rendered, shared between the build
//! (which counts) and whoever shows it (`ps` while a site builds, `sited build` on a
//! terminal). Counting is two relaxed atomics, so the render loop pays nothing for it.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Pages rendered so far out of the pages the build renders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Count {
    pub done: usize,
    pub total: usize,
}

#[derive(Debug, Default)]
pub struct Progress {
    done: AtomicUsize,
    /// 0 until the build knows how many pages it renders.
    total: AtomicUsize,
}

impl Progress {
    /// Forgets the last build's numbers; called before each build.
    pub fn reset(&self) {
        self.total.store(0, Ordering::Relaxed);
        self.done.store(0, Ordering::Relaxed);
    }

    /// The build is about to render `total` pages.
    pub fn start(&self, total: usize) {
        self.done.store(0, Ordering::Relaxed);
        self.total.store(total, Ordering::Relaxed);
    }

    /// One more page is rendered (or found unchanged).
    pub fn page_done(&self) {
        self.done.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one page as done when dropped, however its rendering ends (reused,
    /// rendered, failed, panicked).
    pub fn counter(&self) -> PageDone<'_> {
        PageDone(self)
    }

    /// Where the build is; `None` before it knows its number of pages.
    pub fn get(&self) -> Option<Count> {
        let total = self.total.load(Ordering::Relaxed);
        let done = self.done.load(Ordering::Relaxed).min(total);
        (total > 0).then_some(Count { done, total })
    }
}

/// See [`Progress::counter`].
#[derive(Debug)]
pub struct PageDone<'a>(&'a Progress);

impl Drop for PageDone<'_> {
    fn drop(&mut self) {
        self.0.page_done();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_pages_of_the_current_build_only() {
        let progress = Progress::default();
        assert_eq!(
            progress.get(),
            None,
            "nothing known before the build starts"
        );
        progress.start(3);
        drop(progress.counter());
        assert_eq!(progress.get(), Some(Count { done: 1, total: 3 }));
        progress.reset();
        assert_eq!(progress.get(), None, "a new build starts from nothing");
    }
}
