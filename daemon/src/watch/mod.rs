//! One file watcher for the whole daemon, fanned out to sites by path prefix.
//!
//! Linux allows 128 inotify instances per user by default, so sites do not each get a
//! watcher: one watcher serves them all (inotify driven by the daemon on Linux, see
//! `inotify`; notify's elsewhere), and every event is routed to the site
//! whose root contains it. Sites debounce on their own side (see `site`), so the
//! callback only records which paths changed and wakes the site: nothing is ever queued
//! without bound, nothing is dropped. When the kernel runs out of watches (ENOSPC /
//! EMFILE), that one site falls back to polling with a warning.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use notify::event::{AccessKind, AccessMode, CreateKind, EventKind, MetadataKind, ModifyKind};
use tokio::sync::Notify;

#[cfg(target_os = "linux")]
mod inotify;
#[cfg(target_os = "linux")]
use self::inotify::Native;

/// How often a polling fallback looks at the files.
const POLL_INTERVAL: Duration = Duration::from_millis(300);

/// Changes a site has not yet taken.
#[derive(Debug, Default)]
pub struct Changes {
    pub paths: BTreeSet<PathBuf>,
    /// The backend lost events (queue overflow): everything must be re-read.
    pub rescan: bool,
    /// Files written to (or truncated, or created) and not closed since: saves still
    /// under way, which a build must not read half-written.
    pub writing: BTreeSet<PathBuf>,
    /// A folder was made: files usually follow it at once (`mkdir` then a write, a copy
    /// of a tree), so a build should not start the moment it appears.
    pub made_folder: bool,
}

/// The site's end of a watch: changed paths accumulate here and `notify` wakes it.
#[derive(Debug, Default)]
pub struct Inbox {
    changes: Mutex<Changes>,
    wake: Notify,
}

impl Inbox {
    fn push(&self, paths: impl IntoIterator<Item = PathBuf>, rescan: bool) {
        self.change(|changes| {
            changes.paths.extend(paths);
            changes.rescan |= rescan;
        });
    }

    /// Records an event of `kind` on `paths`: a write, truncation or creation opens a
    /// save, which the file's close (or its rename, removal) ends.
    fn record(&self, kind: &EventKind, paths: Vec<PathBuf>) {
        let opens = matches!(
            kind,
            EventKind::Modify(ModifyKind::Data(_) | ModifyKind::Any)
                | EventKind::Create(CreateKind::File | CreateKind::Any)
        );
        let folder = matches!(kind, EventKind::Create(CreateKind::Folder));
        self.change(|changes| {
            changes.made_folder |= folder;
            for path in &paths {
                if opens {
                    changes.writing.insert(path.clone());
                } else {
                    changes.writing.remove(path);
                }
            }
            changes.paths.extend(paths);
        });
    }

    /// Changes what is recorded, then wakes the site.
    fn change(&self, change: impl FnOnce(&mut Changes)) {
        change(&mut self.changes.lock().unwrap_or_else(|p| p.into_inner()));
        self.wake.notify_one();
    }

    /// Whether a file was written to and not closed since: a save is under way.
    pub fn is_writing(&self) -> bool {
        !self
            .changes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .writing
            .is_empty()
    }

    /// Whether a folder was made since the changes were last taken.
    pub fn made_folder(&self) -> bool {
        self.changes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .made_folder
    }

    /// Waits until something changed.
    pub async fn changed(&self) {
        self.wake.notified().await;
    }

    /// Takes everything recorded so far.
    pub fn take(&self) -> Changes {
        std::mem::take(&mut *self.changes.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// Whether a raw event can mean a file's content or presence changed. A backend may
/// also report opens and reads (notify's inotify backend does), and the daemon reads
/// every file it builds and serves: counting those would rebuild forever.
pub fn is_change(kind: &EventKind) -> bool {
    match kind {
        EventKind::Create(_) | EventKind::Remove(_) => true,
        EventKind::Modify(ModifyKind::Metadata(meta)) => {
            matches!(meta, MetadataKind::WriteTime | MetadataKind::Any)
        }
        EventKind::Modify(_) => true,
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) | EventKind::Any | EventKind::Other => false,
    }
}

#[derive(Debug)]
struct Route {
    root: PathBuf,
    /// Folders under `root` whose changes are not the site's (the daemon's own state).
    ignore: Vec<PathBuf>,
    inbox: Weak<Inbox>,
}

#[derive(Debug, Default)]
struct Routes(Mutex<Vec<Route>>);

impl Routes {
    fn deliver(&self, event: notify::Result<notify::Event>) {
        let event = match event {
            Ok(event) => event,
            Err(error) => {
                tracing::warn!(%error, "file watcher error");
                return;
            }
        };
        let routes = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if event.need_rescan() {
            for route in routes.iter() {
                if let Some(inbox) = route.inbox.upgrade() {
                    inbox.push([], true);
                }
            }
            return;
        }
        if !is_change(&event.kind) {
            return;
        }
        for route in routes.iter() {
            let mine: Vec<PathBuf> = event
                .paths
                .iter()
                .filter(|p| p.starts_with(&route.root))
                .filter(|p| !route.ignore.iter().any(|dir| p.starts_with(dir)))
                .cloned()
                .collect();
            if !mine.is_empty()
                && let Some(inbox) = route.inbox.upgrade()
            {
                inbox.record(&event.kind, mine);
            }
        }
    }
}

/// Most folders one site may have watched (each is one inotify watch; the default
/// per-user budget is 8,192 on older kernels, and one site must not take it all from
/// the others). A larger site is served without live reload, with a warning.
pub const MAX_WATCHED_DIRS: usize = 20_000;

#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error(
        "{} has more than {limit} folders: too many to watch, so changes are not seen \
         (`sitectl rebuild` builds it again)",
        root.display()
    )]
    TooLarge { root: PathBuf, limit: usize },
    #[error("cannot watch {}: {source}", root.display())]
    Watch {
        root: PathBuf,
        source: notify::Error,
    },
}

/// The daemon's watcher. Cheap to clone.
#[derive(Clone)]
pub struct Watcher {
    inner: Arc<Inner>,
}

struct Inner {
    native: Native,
    routes: Arc<Routes>,
    /// See [`crate::hooks::TestHooks::watch_limit`].
    test_limit: Option<usize>,
}

impl std::fmt::Debug for Watcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watcher").finish_non_exhaustive()
    }
}

/// How a registration watches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    Native,
    /// Fell back to polling; the reason is shown to the user.
    Polling {
        reason: String,
    },
}

/// A site's watch. Dropping it stops watching.
pub struct Registration {
    root: PathBuf,
    pub inbox: Arc<Inbox>,
    pub mode: Mode,
    watcher: Watcher,
    /// Only for [`Mode::Polling`]: its own thread, stopped when dropped.
    _poller: Option<Poller>,
}

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registration")
            .field("root", &self.root)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl Watcher {
    /// Creates the daemon's single native watcher (one inotify instance on Linux).
    pub fn new() -> Result<Watcher, notify::Error> {
        Watcher::with_test_limit(None)
    }

    /// [`Watcher::new`], pretending the kernel allows only `test_limit` watched
    /// directories (a test hook, [`crate::hooks::TestHooks::watch_limit`]).
    pub fn with_test_limit(test_limit: Option<usize>) -> Result<Watcher, notify::Error> {
        let routes = Arc::new(Routes::default());
        let sink = routes.clone();
        let native = Native::new(move |event| sink.deliver(event))?;
        Ok(Watcher {
            inner: Arc::new(Inner {
                native,
                routes,
                test_limit,
            }),
        })
    }

    /// Starts watching `root` (recursively) for a site.
    pub fn watch(&self, root: &Path) -> Result<Registration, WatchError> {
        self.watch_ignoring(root, Vec::new())
    }

    /// [`Watcher::watch`], with changes under `ignore` never reported: the daemon's own
    /// files inside a site (its log grows with every build: a rebuild loop otherwise).
    pub fn watch_ignoring(
        &self,
        root: &Path,
        ignore: Vec<PathBuf>,
    ) -> Result<Registration, WatchError> {
        let inbox = Arc::new(Inbox::default());
        self.inner
            .routes
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Route {
                root: root.to_path_buf(),
                ignore,
                inbox: Arc::downgrade(&inbox),
            });
        let registration = |mode, poller| Registration {
            root: root.to_path_buf(),
            inbox: inbox.clone(),
            mode,
            watcher: self.clone(),
            _poller: poller,
        };
        // Off the async workers (the caller runs this on a blocking thread). A tree too
        // large is refused whole.
        match self.watch_native(root) {
            Ok(()) => Ok(registration(Mode::Native, None)),
            Err(Refused::TooLarge) => {
                self.forget(root);
                Err(WatchError::TooLarge {
                    root: root.to_path_buf(),
                    limit: MAX_WATCHED_DIRS,
                })
            }
            Err(Refused::Failed(error)) if is_out_of_watches(&error) => {
                let reason = format!(
                    "out of inotify watches ({error}); polling every {} ms instead. \
                     Raise fs.inotify.max_user_watches to get instant reloads back",
                    POLL_INTERVAL.as_millis()
                );
                tracing::warn!(root = %root.display(), "{reason}");
                let poller = Poller::start(root, Arc::downgrade(&inbox));
                Ok(registration(Mode::Polling { reason }, Some(poller)))
            }
            Err(Refused::Failed(source)) => {
                self.forget(root);
                Err(WatchError::Watch {
                    root: root.to_path_buf(),
                    source,
                })
            }
        }
    }

    fn watch_native(&self, root: &Path) -> Result<(), Refused> {
        if let Some(limit) = self.inner.test_limit
            && count_dirs_up_to(root, limit + 1) > limit
        {
            return Err(Refused::out_of_watches());
        }
        match self.inner.native.watch(root, MAX_WATCHED_DIRS) {
            // Out of watches before the cap: said as too large if it is (it would be
            // with watches to spare), not as a reason to poll a tree that size.
            Err(Refused::Failed(error))
                if is_out_of_watches(&error)
                    && count_dirs_up_to(root, MAX_WATCHED_DIRS + 1) > MAX_WATCHED_DIRS =>
            {
                Err(Refused::TooLarge)
            }
            other => other,
        }
    }

    fn forget(&self, root: &Path) {
        self.inner
            .routes
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|route| route.root != root && route.inbox.strong_count() > 0);
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if self.mode == Mode::Native {
            self.watcher.inner.native.unwatch(&self.root);
        }
        self.watcher.forget(&self.root);
    }
}

/// Why a tree is not watched by the kernel.
#[derive(Debug)]
enum Refused {
    /// More than [`MAX_WATCHED_DIRS`] folders.
    TooLarge,
    Failed(notify::Error),
}

impl Refused {
    #[cfg(target_os = "linux")]
    fn io(error: std::io::Error) -> Refused {
        Refused::Failed(notify::Error::io(error))
    }

    fn out_of_watches() -> Refused {
        Refused::Failed(notify::Error::new(notify::ErrorKind::MaxFilesWatch))
    }
}

/// notify's watcher where the daemon does not drive the kernel's API itself (macOS:
/// FSEvents). Recursive; a watch that fails half-way leaves nothing watched.
#[cfg(not(target_os = "linux"))]
struct Native(Mutex<notify::RecommendedWatcher>);

#[cfg(not(target_os = "linux"))]
impl Native {
    fn new(
        sink: impl Fn(notify::Result<notify::Event>) + Send + Sync + 'static,
    ) -> notify::Result<Native> {
        Ok(Native(Mutex::new(notify::recommended_watcher(sink)?)))
    }

    fn watch(&self, root: &Path, cap: usize) -> Result<(), Refused> {
        use notify::Watcher as _;
        // Counted before a single watch is added: a tree too large is refused whole.
        if count_dirs_up_to(root, cap + 1) > cap {
            return Err(Refused::TooLarge);
        }
        let mut native = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let result = native.watch(root, notify::RecursiveMode::Recursive);
        if result.is_err() {
            let _ = native.unwatch(root);
        }
        result.map_err(Refused::Failed)
    }

    fn unwatch(&self, root: &Path) {
        use notify::Watcher as _;
        // Fails harmlessly when the root is already gone.
        let _ = self
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .unwatch(root);
    }
}

/// Polls a site's files when the kernel has no watches left: every [`POLL_INTERVAL`] it
/// compares each file's size and modification time (to the nanosecond; notify's own
/// poller compares whole seconds and misses a second save within the same second).
struct Poller {
    stop: Arc<std::sync::atomic::AtomicBool>,
}

type Snapshot = std::collections::HashMap<PathBuf, (u64, Option<std::time::SystemTime>)>;

impl Poller {
    fn start(root: &Path, inbox: Weak<Inbox>) -> Poller {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let root = root.to_path_buf();
        let spawned = std::thread::Builder::new()
            .name("sited-poll".into())
            .spawn(move || {
                let mut last = snapshot(&root);
                // Sleeping is the point of a poller: it looks again after an interval.
                while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                    std::thread::sleep(POLL_INTERVAL);
                    let Some(inbox) = inbox.upgrade() else { break };
                    let now = snapshot(&root);
                    let mut changed: Vec<PathBuf> = now
                        .iter()
                        .filter(|(path, meta)| last.get(*path) != Some(meta))
                        .map(|(path, _)| path.clone())
                        .collect();
                    changed.extend(last.keys().filter(|p| !now.contains_key(*p)).cloned());
                    if !root.is_dir() {
                        changed.push(root.clone());
                    }
                    if !changed.is_empty() {
                        inbox.push(changed, false);
                    }
                    last = now;
                }
            });
        if let Err(error) = spawned {
            tracing::error!(%error, "cannot start the polling thread");
        }
        Poller { stop }
    }
}

impl Drop for Poller {
    fn drop(&mut self) {
        // Not joined: it notices within one interval, and joining would block the caller.
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

fn snapshot(root: &Path) -> Snapshot {
    fn walk(dir: &Path, out: &mut Snapshot) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                walk(&entry.path(), out);
            } else {
                out.insert(entry.path(), (meta.len(), meta.modified().ok()));
            }
        }
    }
    let mut snapshot = Snapshot::new();
    walk(root, &mut snapshot);
    snapshot
}

/// ENOSPC (watch limit) and EMFILE (instance/fd limit) mean "no more native watches".
pub fn is_out_of_watches(error: &notify::Error) -> bool {
    match &error.kind {
        notify::ErrorKind::MaxFilesWatch => true,
        notify::ErrorKind::Io(io) => matches!(io.raw_os_error(), Some(libc::ENOSPC | libc::EMFILE)),
        _ => false,
    }
}

/// Folders under `root` (itself included), counting no further than `cap`; symlinks are
/// not followed.
fn count_dirs_up_to(root: &Path, cap: usize) -> usize {
    let mut count = 0;
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        count += 1;
        if count >= cap {
            break;
        }
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                pending.push(entry.path());
            }
        }
    }
    count
}

#[cfg(test)]
mod tests {
    use notify::event::{RemoveKind, RenameMode};

    use super::*;

    #[test]
    fn a_save_is_under_way_from_its_first_write_to_its_close() {
        let inbox = Inbox::default();
        let (page, other) = (PathBuf::from("/s/a.md"), PathBuf::from("/s/b.md"));
        let data = EventKind::Modify(ModifyKind::Data(notify::event::DataChange::Any));
        let close = EventKind::Access(AccessKind::Close(AccessMode::Write));
        assert!(!inbox.is_writing());
        // open(O_TRUNC) empties the file: its bytes are still to come.
        inbox.record(&data, vec![page.clone()]);
        assert!(inbox.is_writing());
        inbox.record(&close, vec![other.clone()]);
        assert!(
            inbox.is_writing(),
            "another file's close does not end this save"
        );
        inbox.record(&close, vec![page.clone()]);
        assert!(!inbox.is_writing(), "closed: the save is done");
        // An editor that writes a temp file and renames it over the page.
        inbox.record(&EventKind::Create(CreateKind::File), vec![other.clone()]);
        assert!(inbox.is_writing());
        inbox.record(
            &EventKind::Modify(ModifyKind::Name(RenameMode::From)),
            vec![other.clone()],
        );
        assert!(!inbox.is_writing());
        let changes = inbox.take();
        assert_eq!(changes.paths.into_iter().collect::<Vec<_>>(), [page, other]);
    }

    #[test]
    fn a_new_folder_is_noted_until_the_changes_are_taken() {
        let inbox = Inbox::default();
        inbox.record(&EventKind::Create(CreateKind::File), vec!["/s/a.md".into()]);
        assert!(!inbox.made_folder(), "a file is no folder");
        inbox.record(&EventKind::Create(CreateKind::Folder), vec!["/s/t".into()]);
        assert!(inbox.made_folder());
        assert!(inbox.take().made_folder);
        assert!(!inbox.made_folder(), "taken with the changes");
    }

    #[test]
    fn only_real_changes_count() {
        for kind in [
            EventKind::Create(CreateKind::File),
            EventKind::Remove(RemoveKind::Folder),
            EventKind::Modify(ModifyKind::Data(notify::event::DataChange::Content)),
            EventKind::Modify(ModifyKind::Name(RenameMode::To)),
            EventKind::Modify(ModifyKind::Metadata(MetadataKind::WriteTime)),
            EventKind::Access(AccessKind::Close(AccessMode::Write)),
        ] {
            assert!(is_change(&kind), "{kind:?}");
        }
        for kind in [
            EventKind::Access(AccessKind::Open(AccessMode::Any)),
            EventKind::Access(AccessKind::Read),
            EventKind::Access(AccessKind::Close(AccessMode::Read)),
            EventKind::Modify(ModifyKind::Metadata(MetadataKind::AccessTime)),
            EventKind::Modify(ModifyKind::Metadata(MetadataKind::Permissions)),
            EventKind::Other,
        ] {
            assert!(!is_change(&kind), "{kind:?}");
        }
    }

    #[test]
    fn watch_exhaustion_is_recognised() {
        assert!(is_out_of_watches(&notify::Error::new(
            notify::ErrorKind::MaxFilesWatch
        )));
        let enospc = std::io::Error::from_raw_os_error(libc::ENOSPC);
        assert!(is_out_of_watches(&notify::Error::io(enospc)));
        let emfile = std::io::Error::from_raw_os_error(libc::EMFILE);
        assert!(is_out_of_watches(&notify::Error::io(emfile)));
        let enoent = std::io::Error::from_raw_os_error(libc::ENOENT);
        assert!(!is_out_of_watches(&notify::Error::io(enoent)));
    }

    #[tokio::test]
    async fn events_reach_only_the_site_that_owns_the_path() {
        let watcher = Watcher::new().unwrap();
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let a_root = a.path().canonicalize().unwrap();
        let b_root = b.path().canonicalize().unwrap();
        let reg_a = watcher.watch(&a_root).unwrap();
        let reg_b = watcher.watch(&b_root).unwrap();
        assert_eq!(reg_a.mode, Mode::Native);
        std::fs::write(a_root.join("x.md"), "hello").unwrap();
        tokio::time::timeout(Duration::from_secs(10), reg_a.inbox.changed())
            .await
            .expect("site a is told");
        let changes = reg_a.inbox.take();
        assert!(changes.paths.contains(&a_root.join("x.md")), "{changes:?}");
        assert!(reg_b.inbox.take().paths.is_empty(), "site b is not told");
        drop(reg_b);
        std::fs::write(b_root.join("y.md"), "x").unwrap();
        std::fs::write(a_root.join("z.md"), "x").unwrap();
        tokio::time::timeout(Duration::from_secs(10), reg_a.inbox.changed())
            .await
            .unwrap();
        let paths = reg_a.inbox.take().paths;
        assert!(paths.iter().all(|p| p.starts_with(&a_root)), "{paths:?}");
    }
}
