//! The Linux watcher: inotify driven directly, one instance for the daemon.
//!
//! notify's inotify backend asks the kernel for every open of every file it watches and
//! stats every file of a tree to add its folders. A site's build opens every file it
//! reads, so each build came back as thousands of events, and registering tldr's 7,425
//! pages took 20 ms of `up`'s critical path; with both, the first page of tldr was served
//! ~65 ms later than with no watch at all. Here the kernel reports only what can change
//! a site (writes, closes after writing, creations, removals, renames, attribute
//! changes), and a tree is registered by listing folders alone.
//!
//! Events are translated to notify's own [`notify::Event`]s, as notify's backend does,
//! so the rest of the watcher (and the polling fallback, and macOS) sees one vocabulary.
//! A folder created or moved into a watched tree is watched, with everything under it,
//! *before* its event is delivered: a site that rebuilds on that event lists the folder
//! after its watch exists, so no file written into it is missed.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::Refused;
use inotify::{EventMask, Inotify, WatchDescriptor, WatchMask, Watches};
use notify::event::{
    AccessKind, AccessMode, CreateKind, DataChange, EventKind, Flag, MetadataKind, ModifyKind,
    RemoveKind, RenameMode,
};
use rustix::event::{PollFd, PollFlags};

/// What every watched folder reports: no opens, no reads, no closes after reading.
/// `MASK_ADD` so a folder two sites watch keeps what each asked for.
fn folder_mask() -> WatchMask {
    WatchMask::ATTRIB
        | WatchMask::CREATE
        | WatchMask::DELETE
        | WatchMask::CLOSE_WRITE
        | WatchMask::MODIFY
        | WatchMask::MOVED_FROM
        | WatchMask::MOVED_TO
        | WatchMask::MASK_ADD
}

/// A site's root also reports its own removal or renaming.
fn root_mask() -> WatchMask {
    folder_mask() | WatchMask::DELETE_SELF | WatchMask::MOVE_SELF
}

type Sink = Box<dyn Fn(notify::Result<notify::Event>) + Send + Sync>;

/// The daemon's inotify instance and the folders it watches.
pub struct Native {
    folders: Arc<Mutex<Folders>>,
    /// The write end of a pipe the reading thread polls beside inotify: dropped with the
    /// watcher, it wakes the reader (hang-up), which then ends and closes the instance.
    _stop: OwnedFd,
}

struct Folders {
    watches: Watches,
    /// Each watch and the folder it was added for (events name paths under it).
    by_wd: HashMap<i32, (WatchDescriptor, PathBuf)>,
    /// The roots being watched, once per registration (two sites may share one).
    roots: Vec<PathBuf>,
}

impl Native {
    /// Starts the reading thread; `sink` gets every event, on that thread.
    pub fn new(
        sink: impl Fn(notify::Result<notify::Event>) + Send + Sync + 'static,
    ) -> notify::Result<Native> {
        let inotify = Inotify::init().map_err(notify::Error::io)?;
        let (stop_read, stop) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
            .map_err(|e| notify::Error::io(e.into()))?;
        let folders = Arc::new(Mutex::new(Folders {
            watches: inotify.watches(),
            by_wd: HashMap::new(),
            roots: Vec::new(),
        }));
        let reader = Reader {
            inotify,
            stop: stop_read,
            folders: folders.clone(),
            sink: Box::new(sink),
        };
        std::thread::Builder::new()
            .name("sited-watch".into())
            .spawn(move || reader.run())
            .map_err(notify::Error::io)?;
        Ok(Native {
            folders,
            _stop: stop,
        })
    }

    /// Watches `root` and every folder under it (symlinked folders followed, each folder
    /// once), refusing a tree of more than `cap` folders. Each folder is listed after its
    /// watch is added, in one pass (a count first would list the tree twice): a folder
    /// made meanwhile is either listed or reported. On failure nothing of this call stays
    /// watched.
    pub fn watch(&self, root: &Path, cap: usize) -> Result<(), Refused> {
        let mut folders = lock(&self.folders);
        folders.roots.push(root.to_path_buf());
        let mut room = cap.saturating_sub(1);
        let result = (folders.add(root, root_mask()).map_err(Refused::io))
            .and_then(|_| folders.add_tree(root, &mut room, None));
        if result.is_err() {
            folders.unwatch(root);
        }
        result
    }

    /// Stops watching `root`, but not what another registration's root still covers.
    pub fn unwatch(&self, root: &Path) {
        lock(&self.folders).unwatch(root);
    }
}

fn lock(folders: &Mutex<Folders>) -> std::sync::MutexGuard<'_, Folders> {
    folders.lock().unwrap_or_else(|p| p.into_inner())
}

impl Folders {
    /// Watches `dir`; whether it is newly watched. A folder already watched (under this
    /// path, or another: a symlink, a loop) keeps the path it was first watched under and
    /// is not to be walked again.
    fn add(&mut self, dir: &Path, mask: WatchMask) -> io::Result<bool> {
        let wd = self.watches.add(dir, mask)?;
        let id = wd.get_watch_descriptor_id();
        if self.by_wd.contains_key(&id) {
            return Ok(false);
        }
        self.by_wd.insert(id, (wd, dir.to_path_buf()));
        Ok(true)
    }

    /// Adds every folder under `dir` (not `dir` itself), at most `room` of them; every
    /// other entry found goes to `found` when asked for.
    fn add_tree(
        &mut self,
        dir: &Path,
        room: &mut usize,
        mut found: Option<&mut Vec<PathBuf>>,
    ) -> Result<(), Refused> {
        let mut pending = vec![dir.to_path_buf()];
        while let Some(dir) = pending.pop() {
            // A folder removed meanwhile has nothing left to watch.
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let Ok(kind) = entry.file_type() else {
                    continue;
                };
                let is_dir = kind.is_dir()
                    || (kind.is_symlink() && entry.path().metadata().is_ok_and(|m| m.is_dir()));
                if !is_dir {
                    if let Some(found) = found.as_deref_mut() {
                        found.push(entry.path());
                    }
                    continue;
                }
                let path = entry.path();
                match self.add(&path, folder_mask()) {
                    Ok(true) if *room == 0 => return Err(Refused::TooLarge),
                    Ok(true) => {
                        *room -= 1;
                        pending.push(path);
                    }
                    Ok(false) => {}
                    // Gone between the listing and the watch: its removal is reported.
                    Err(error) if error.raw_os_error() == Some(libc::ENOENT) => {}
                    Err(error) => return Err(Refused::io(error)),
                }
            }
        }
        Ok(())
    }

    /// Removes `root` once from the roots, then every watch no remaining root covers.
    fn unwatch(&mut self, root: &Path) {
        if let Some(at) = self.roots.iter().position(|r| r == root) {
            self.roots.remove(at);
        }
        let roots = self.roots.clone();
        self.forget_where(|path| {
            path.starts_with(root) && !roots.iter().any(|r| path.starts_with(r))
        });
    }

    /// Stops watching every folder at or under `dir` (a folder moved away: its watches
    /// would go on reporting it under its old path).
    fn forget_tree(&mut self, dir: &Path) {
        self.forget_where(|path| path.starts_with(dir));
    }

    fn forget_where(&mut self, gone: impl Fn(&Path) -> bool) {
        let ids: Vec<i32> = (self.by_wd.iter())
            .filter(|(_, (_, path))| gone(path))
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            if let Some((wd, _)) = self.by_wd.remove(&id) {
                // Fails harmlessly when the kernel already dropped it (folder deleted).
                let _ = self.watches.remove(wd);
            }
        }
    }

    fn covered(&self, path: &Path) -> bool {
        self.roots.iter().any(|root| path.starts_with(root))
    }
}

struct Reader {
    inotify: Inotify,
    stop: OwnedFd,
    folders: Arc<Mutex<Folders>>,
    sink: Sink,
}

impl Reader {
    fn run(mut self) {
        // Large enough for many events per read; each is 16 bytes and a name.
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let mut fds = [
                PollFd::new(&self.inotify, PollFlags::IN),
                PollFd::new(&self.stop, PollFlags::IN),
            ];
            match rustix::event::poll(&mut fds, None) {
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => continue,
                Err(error) => {
                    (self.sink)(Err(notify::Error::io(error.into())));
                    return;
                }
            }
            if !fds[1].revents().is_empty() {
                return;
            }
            loop {
                let events = match self.inotify.read_events(&mut buffer) {
                    Ok(events) => events,
                    Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
                    Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                    Err(error) => {
                        (self.sink)(Err(notify::Error::io(error)));
                        break;
                    }
                };
                let mut read = 0;
                for event in events {
                    read += 1;
                    self.handle(event);
                }
                if read == 0 {
                    break;
                }
            }
        }
    }

    fn handle(&self, event: inotify::Event<&OsStr>) {
        let mask = event.mask;
        if mask.contains(EventMask::Q_OVERFLOW) {
            (self.sink)(Ok(
                notify::Event::new(EventKind::Other).set_flag(Flag::Rescan)
            ));
            return;
        }
        let id = event.wd.get_watch_descriptor_id();
        let mut folders = lock(&self.folders);
        if mask.contains(EventMask::IGNORED) {
            folders.by_wd.remove(&id);
            return;
        }
        let Some((_, dir)) = folders.by_wd.get(&id) else {
            return;
        };
        let path = match event.name {
            Some(name) => dir.join(name),
            None => dir.clone(),
        };
        let is_dir = mask.contains(EventMask::ISDIR);
        // Watches first, events after (see the module's doc). What a new folder already
        // holds was made before its watch, so no event told of it: it is reported here.
        let mut added = Ok(());
        let mut found = Vec::new();
        if is_dir
            && mask.intersects(EventMask::CREATE | EventMask::MOVED_TO)
            && folders.covered(&path)
        {
            added = match folders.add(&path, folder_mask()) {
                // Not capped: the site is watched already.
                Ok(true) => folders.add_tree(&path, &mut { usize::MAX }, Some(&mut found)),
                Ok(false) => Ok(()),
                Err(error) => Err(Refused::io(error)),
            };
        }
        if is_dir && mask.intersects(EventMask::MOVED_FROM | EventMask::DELETE) {
            folders.forget_tree(&path);
        }
        if mask.contains(EventMask::DELETE_SELF) {
            folders.by_wd.remove(&id);
        }
        drop(folders);
        if let Err(Refused::Failed(error)) = added {
            // Out of watches, most likely: said as notify would say it.
            (self.sink)(Err(error));
        }
        for kind in kinds(mask) {
            (self.sink)(Ok(notify::Event::new(kind).add_path(path.clone())));
        }
        // In a folder just made (`mkdir -p` and files, an unpacking, a checkout) a file
        // found may still be being written: reported as created, it holds the site's
        // build until its close is seen (or the longest debounce passes). A folder moved
        // in arrives whole.
        let kind = if mask.contains(EventMask::CREATE) {
            EventKind::Create(CreateKind::File)
        } else {
            EventKind::Modify(ModifyKind::Name(RenameMode::To))
        };
        for file in found {
            (self.sink)(Ok(notify::Event::new(kind).add_path(file)));
        }
    }
}

/// notify's names for what an inotify event says (as its own inotify backend names them).
fn kinds(mask: EventMask) -> Vec<EventKind> {
    let folder = mask.contains(EventMask::ISDIR);
    let mut kinds = Vec::new();
    if mask.contains(EventMask::MOVED_FROM) || mask.contains(EventMask::MOVE_SELF) {
        kinds.push(EventKind::Modify(ModifyKind::Name(RenameMode::From)));
    }
    if mask.contains(EventMask::MOVED_TO) {
        kinds.push(EventKind::Modify(ModifyKind::Name(RenameMode::To)));
    }
    if mask.contains(EventMask::CREATE) {
        kinds.push(EventKind::Create(if folder {
            CreateKind::Folder
        } else {
            CreateKind::File
        }));
    }
    if mask.contains(EventMask::DELETE) {
        kinds.push(EventKind::Remove(if folder {
            RemoveKind::Folder
        } else {
            RemoveKind::File
        }));
    }
    if mask.contains(EventMask::DELETE_SELF) {
        kinds.push(EventKind::Remove(RemoveKind::Folder));
    }
    if mask.contains(EventMask::MODIFY) {
        kinds.push(EventKind::Modify(ModifyKind::Data(DataChange::Any)));
    }
    if mask.contains(EventMask::CLOSE_WRITE) {
        kinds.push(EventKind::Access(AccessKind::Close(AccessMode::Write)));
    }
    if mask.contains(EventMask::ATTRIB) {
        kinds.push(EventKind::Modify(ModifyKind::Metadata(MetadataKind::Any)));
    }
    kinds
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    /// A watcher whose events are kept, in order, for the test to look at.
    struct Seen {
        native: Native,
        events: Arc<Mutex<Vec<(EventKind, PathBuf)>>>,
    }

    impl Seen {
        fn new() -> Seen {
            let events = Arc::new(Mutex::new(Vec::new()));
            let sink = events.clone();
            let native = Native::new(move |event: notify::Result<notify::Event>| {
                let event = event.expect("no watcher error");
                let mut seen = sink.lock().unwrap();
                for path in event.paths {
                    seen.push((event.kind, path));
                }
            })
            .unwrap();
            Seen { native, events }
        }

        /// Waits (up to a deadline) until an event names `path`; then returns every event
        /// seen so far and forgets them.
        fn until(&self, path: &Path) -> Vec<(EventKind, PathBuf)> {
            self.until_any(path, |_| true)
        }

        /// Every event seen, once one of `kind` for `path` is among them.
        fn until_event(&self, kind: EventKind, path: &Path) -> Vec<(EventKind, PathBuf)> {
            self.until_any(path, |seen| *seen == kind)
        }

        fn until_any(
            &self,
            path: &Path,
            kind: impl Fn(&EventKind) -> bool,
        ) -> Vec<(EventKind, PathBuf)> {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                {
                    let mut events = self.events.lock().unwrap();
                    if events.iter().any(|(k, p)| p == path && kind(k)) {
                        return std::mem::take(&mut *events);
                    }
                }
                assert!(
                    Instant::now() < deadline,
                    "no event for {} in 10 s; saw {:?}",
                    path.display(),
                    self.events.lock().unwrap()
                );
                std::thread::yield_now();
            }
        }
    }

    fn root() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        (dir, root)
    }

    fn names(events: &[(EventKind, PathBuf)], path: &Path) -> bool {
        events.iter().any(|(_, p)| p == path)
    }

    /// The masks the kernel holds for the watches on `dir`'s inode, from this process's
    /// fdinfo (`inotify wd:1 ino:… sdev:… mask:… …`).
    fn kernel_masks(dir: &Path) -> Vec<u32> {
        use std::os::unix::fs::MetadataExt;
        let ino = format!("ino:{:x} ", dir.metadata().unwrap().ino());
        let mut masks = Vec::new();
        for entry in std::fs::read_dir("/proc/self/fdinfo").unwrap().flatten() {
            let Ok(info) = std::fs::read_to_string(entry.path()) else {
                continue;
            };
            for line in info
                .lines()
                .filter(|l| l.starts_with("inotify ") && l.contains(&ino))
            {
                let mask = line
                    .split(' ')
                    .find_map(|f| f.strip_prefix("mask:"))
                    .unwrap();
                masks.push(u32::from_str_radix(mask, 16).unwrap());
            }
        }
        masks
    }

    #[test]
    fn the_kernel_reports_changes_never_opens_or_reads() {
        let (_dir, root) = root();
        std::fs::create_dir_all(root.join("content/deep")).unwrap();
        let page = root.join("content/deep/page.md");
        std::fs::write(&page, "old").unwrap();
        let seen = Seen::new();
        seen.native.watch(&root, usize::MAX).unwrap();
        let reads = (EventMask::OPEN | EventMask::ACCESS | EventMask::CLOSE_NOWRITE).bits();
        let changes = (EventMask::MODIFY | EventMask::CLOSE_WRITE | EventMask::CREATE)
            .union(EventMask::DELETE | EventMask::MOVED_FROM | EventMask::MOVED_TO)
            .bits();
        for dir in [&root, &root.join("content"), &root.join("content/deep")] {
            let masks = kernel_masks(dir);
            assert_eq!(masks.len(), 1, "{} is watched once", dir.display());
            assert_eq!(
                masks[0] & reads,
                0,
                "{}: mask {:x}",
                dir.display(),
                masks[0]
            );
            assert_eq!(masks[0] & changes, changes, "{}", dir.display());
        }
        assert_eq!(std::fs::read_to_string(&page).unwrap(), "old");
        std::fs::write(&page, "new").unwrap();
        // The write's close is reported (the modification may come alone first).
        seen.until_event(
            EventKind::Access(AccessKind::Close(AccessMode::Write)),
            &page,
        );
    }

    #[test]
    fn a_new_folder_is_watched_before_it_is_reported() {
        let (_outside_dir, outside) = root();
        let (_dir, root) = root();
        let seen = Seen::new();
        seen.native.watch(&root, usize::MAX).unwrap();
        // Folders three deep with a file, made before any watch on them can exist, moved
        // in at once: the file is reported, as moved in (it arrives whole).
        std::fs::create_dir_all(outside.join("a/b/c")).unwrap();
        let early = root.join("a/b/early.md");
        std::fs::write(outside.join("a/b/early.md"), "x").unwrap();
        std::fs::rename(outside.join("a"), root.join("a")).unwrap();
        let events = seen.until(&early);
        assert!(events.contains(&(
            EventKind::Modify(ModifyKind::Name(RenameMode::To)),
            early.clone()
        )));
        // `mkdir -p` and a file at once: reported by its own events or, when written
        // before its folder's watch, by the listing that follows the watch.
        std::fs::create_dir_all(root.join("d/e")).unwrap();
        std::fs::write(root.join("d/e/new.md"), "x").unwrap();
        let events = seen.until(&root.join("d/e/new.md"));
        assert!(events.contains(&(EventKind::Create(CreateKind::Folder), root.join("d"))));
        let page = root.join("a/b/c/page.md");
        std::fs::write(&page, "x").unwrap();
        seen.until(&page);
    }

    #[test]
    fn a_folder_moved_in_is_watched_and_one_moved_out_is_not() {
        let (_outside_dir, outside) = root();
        let (_dir, root) = root();
        std::fs::create_dir_all(outside.join("incoming/inner")).unwrap();
        std::fs::create_dir_all(root.join("leaving/inner")).unwrap();
        let seen = Seen::new();
        seen.native.watch(&root, usize::MAX).unwrap();
        std::fs::rename(outside.join("incoming"), root.join("incoming")).unwrap();
        std::fs::rename(root.join("leaving"), outside.join("left")).unwrap();
        seen.until(&root.join("leaving"));
        let moved_in = root.join("incoming/inner/page.md");
        std::fs::write(&moved_in, "x").unwrap();
        seen.until(&moved_in);
        // Written in the folder that left, then a marker: events come in order, so the
        // first write would be seen before the marker if it were reported at all.
        std::fs::write(outside.join("left/inner/page.md"), "x").unwrap();
        let marker = root.join("marker");
        std::fs::write(&marker, "x").unwrap();
        let events = seen.until(&marker);
        assert!(
            events
                .iter()
                .all(|(_, p)| !p.starts_with(root.join("leaving"))),
            "a folder moved away is no longer the site's: {events:?}"
        );
    }

    #[test]
    fn two_registrations_of_one_tree_end_separately() {
        let (_dir, root) = root();
        std::fs::create_dir_all(root.join("sub/deeper")).unwrap();
        let seen = Seen::new();
        let nested = root.join("sub");
        seen.native.watch(&root, usize::MAX).unwrap();
        seen.native.watch(&nested, usize::MAX).unwrap();
        seen.native.watch(&root, usize::MAX).unwrap();
        seen.native.unwatch(&root);
        let page = root.join("sub/deeper/page.md");
        std::fs::write(&page, "x").unwrap();
        seen.until(&page);
        seen.native.unwatch(&root);
        let top = root.join("top.md");
        std::fs::write(&top, "x").unwrap();
        let marker = nested.join("marker");
        std::fs::write(&marker, "x").unwrap();
        let events = seen.until(&marker);
        assert!(
            !names(&events, &top),
            "the root's own folder is no longer watched: {events:?}"
        );
        seen.native.unwatch(&nested);
        assert!(lock(&seen.native.folders).by_wd.is_empty());
    }

    #[test]
    fn a_tree_of_more_folders_than_allowed_is_refused_whole() {
        let (_dir, root) = root();
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::create_dir_all(root.join("c")).unwrap();
        let seen = Seen::new();
        assert!(matches!(
            seen.native.watch(&root, 3),
            Err(Refused::TooLarge)
        ));
        let folders = lock(&seen.native.folders);
        assert!(folders.by_wd.is_empty() && folders.roots.is_empty());
        drop(folders);
        seen.native.watch(&root, 4).unwrap();
        assert_eq!(lock(&seen.native.folders).by_wd.len(), 4);
    }

    #[test]
    fn a_symlink_loop_is_watched_once() {
        let (_dir, root) = root();
        std::fs::create_dir(root.join("sub")).unwrap();
        std::os::unix::fs::symlink(&root, root.join("sub/loop")).unwrap();
        let seen = Seen::new();
        seen.native.watch(&root, usize::MAX).unwrap();
        assert_eq!(
            lock(&seen.native.folders).by_wd.len(),
            2,
            "the root and sub/"
        );
    }

    #[test]
    fn a_root_removed_is_reported() {
        let (_dir, root) = root();
        let site = root.join("site");
        std::fs::create_dir_all(site.join("content")).unwrap();
        let seen = Seen::new();
        seen.native.watch(&site, usize::MAX).unwrap();
        std::fs::remove_dir_all(&site).unwrap();
        let events = seen.until(&site);
        assert!(events.contains(&(EventKind::Remove(RemoveKind::Folder), site.clone())));
    }

    #[test]
    fn a_root_that_is_not_there_is_an_error_and_leaves_nothing_watched() {
        let (_dir, root) = root();
        let seen = Seen::new();
        assert!(
            seen.native
                .watch(&root.join("missing"), usize::MAX)
                .is_err()
        );
        let folders = lock(&seen.native.folders);
        assert!(folders.by_wd.is_empty() && folders.roots.is_empty());
    }
}
