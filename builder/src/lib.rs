//! sited's site generator: a site folder in, its output (every URL it serves mapped to a
//! body) out. A library with no async runtime, HTTP or RPC in it: the daemon serves and
//! watches, `sited build` writes to disk, tests call it in-process.
//!
//! # Using it
//!
//! ```no_run
//! use sited_builder::{Changes, Options, Site};
//!
//! let mut site = Site::open("/home/me/blog", Options::default());
//! let first = site.build(Changes::Everything).expect("not cancelled");
//! assert!(!first.report.has_errors());
//! // Later, with the paths a watcher reported:
//! let paths = vec!["/home/me/blog/content/posts/hello.md".into()];
//! if site.affects_output(&paths) {
//!     let next = site.build(Changes::Paths(paths)).expect("not cancelled");
//!     println!("{:?}", next.reload); // e.g. Pages(["/posts/hello/"])
//! }
//! ```
//!
//! A [`BuildResult`] holds the output (behind an `Arc`: publishing it is cloning a
//! pointer), what a browser showing the site must do ([`Reload`]: everything, swap these
//! stylesheets, these pages, nothing) and the [`Report`] with its [`Diagnostic`]s, each an
//! error or a warning at `file:line:col`. The builder alone decides from raw changed paths
//! what to redo ([`change`]); whoever watches the site knows nothing of its layout.
//! [`build_once`] and [`build_to`] are the one-shot builds, in memory and to disk.
//!
//! # Phases
//!
//! [`Site`] ([`site`]) is the one orchestrator; each phase is a module named after it:
//!
//! 1. [`load`]: the layout and `site.toml`, the walk of the site's folders, front matter.
//! 2. [`tree`]: sections, URLs, listing order, tags, neighbours, the `site` context. It
//!    runs on both sides of the Markdown stage: URLs before (links need them), listings
//!    after (they need titles).
//! 3. [`render`]: Markdown to each page's own context, then templates to HTML, in
//!    parallel. One render path for full and incremental builds.
//! 4. [`assemble`]: the output map: files served as they are, pages, sitemap, feeds.
//! 5. [`write`]: the output on disk, only where sited may write (the data-loss guard),
//!    swapped in whole.
//!
//! Beside them: [`context`] (what templates see), [`output`] (the output's types),
//! [`theme`] (the embedded default theme), [`url`] and [`html`] (encodings), [`report`],
//! [`options`], [`progress`].
//!
//! # Room for what comes next
//!
//! - Warnings: [`Severity::Warning`] diagnostics do not fail a build (a link check's
//!   findings will be warnings).
//! - Cancellation: [`Options::cancel`] is checked between files and between pages; a
//!   cancelled build returns [`Failure::Cancelled`] and the next one starts afresh.
//! - Exclusions: [`Options::exclude`] keeps paths inside a site (a daemon's own state
//!   directory) out of the walk and out of every change plan.
//! - One URL first: [`Options::wanted`] names URLs somebody waits for; they are rendered
//!   before the rest and handed over as each is made ([`wanted`]).
//! - Writing in place: the write phase owns the output directory, its guard and how files
//!   get there ([`write`]), apart from how they were made.

pub mod assemble;
pub mod book;
pub mod change;
pub mod check;
pub mod context;
pub mod detect;
pub mod html;
pub mod hugo;
pub mod load;
pub mod options;
pub mod output;
pub mod progress;
pub mod render;
pub mod report;
pub mod shortcodes;
pub mod site;
pub mod theme;
pub mod tree;
pub mod url;
pub mod wanted;
pub mod write;
pub mod zola;

pub use change::Changes;
pub use options::{Cancel, Options};
pub use output::{Body, Made, Output, Resource};
pub use progress::Progress;
pub use report::{BuildResult, Diagnostic, Failure, Reload, Report, Severity};
pub use site::{Site, ToDisk, build_once, build_to, build_to_with};
pub use wanted::{Stage, Wanted};
pub use write::WriteError;
