//! What a site is built with, fixed for the life of a [`Site`](crate::Site), and the flag
//! that stops a running build.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::progress::Progress;

/// How a site is built.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Include pages marked `draft`.
    pub drafts: bool,
    /// Counts rendered pages while a build runs, for whoever shows progress.
    pub progress: Option<Arc<Progress>>,
    /// Raised by whoever no longer wants the build (a site going down); checked between
    /// files and between pages.
    pub cancel: Cancel,
    /// Files and folders inside the site that are not part of it, whatever their names
    /// (a daemon's own state directory kept under the site). Neither read nor watched.
    pub exclude: Vec<PathBuf>,
    /// Gives templates a `sited_test_panic(message)` function that panics: end-to-end
    /// tests use it to prove that a renderer panic is one page's error and nothing more.
    /// Real templates cannot make the renderer panic.
    pub test_panic_function: bool,
    /// Every warning is an error (`sited build --strict`, for CI): a link that leads
    /// nowhere fails the build. `strict = true` in `site.toml` asks the same.
    pub strict: bool,
    /// URLs somebody waits for (a server's requests during the site's first build):
    /// rendered first and handed over as soon as each is made.
    pub wanted: Option<crate::wanted::Wanted>,
    /// Hold rendered pages compressed ([`crate::output::Packed`]): a server that keeps a
    /// site's pages for as long as it runs takes a fifth of the memory, and sends them
    /// to clients as they are held. Pages are packed as they are rendered, in parallel.
    pub pack_pages: bool,
    /// Where packed pages and each page's text are held once a build is done: an
    /// unlinked file (page cache, which the kernel can reclaim) rather than the heap
    /// ([`crate::output::Spill`]). Without one, or when the file refuses them, they are
    /// held in memory.
    pub spill: Option<Arc<crate::output::Spill>>,
    /// Called once a build's many pages were spilled apart from it (a first build's):
    /// a server gives the freed heap back to the system here (glibc keeps it otherwise).
    pub after_spill: Option<fn()>,
}

/// A flag shared between a build and whoever may call it off. Cheap to clone; all clones
/// are the same flag.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    /// Asks every build holding this flag to stop at the next file or page.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}
