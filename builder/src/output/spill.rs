//! Bytes a long-lived build holds but seldom reads, kept in a file instead of the heap
//! (issue 17 item 3): a server's packed pages ([`Blob`]) and each page's text
//! ([`Text`]: its Markdown and its rendered HTML, read again only when the page must be
//! rendered again), both [`Kept`] in memory until a build is done. The file is unlinked from the moment it
//! exists (nothing is left behind, whatever ends the process), so what it holds is page
//! cache, which the kernel writes back and takes when memory is short, and not the
//! daemon's own memory (though a cgroup's memory limit counts page cache too). A page is
//! read back with one positioned read when it is sent.
//!
//! Pages are replaced as a site is edited, so the file gains dead bytes. Each held piece
//! is a [`Region`] naming a slot, not an offset: when the dead bytes outgrow the live ones
//! the live ones are copied into a fresh file and the slots moved, and every region held
//! anywhere (the build's cache, the output being served) stays valid.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use bytes::Bytes;

/// Dead bytes are not worth a compaction below this: a site's worth of small edits.
const COMPACT_ABOVE: u64 = 8 * 1024 * 1024;

/// What [`Spill::put_all`] joins pieces into before a write: under glibc's default mmap
/// threshold (128 KiB), so the buffer comes from and goes back to the heap.
const CHUNK: usize = 64 * 1024;

/// An unlinked file that pieces of bytes are put into and read back from.
///
/// No file I/O happens under the table's lock: a read looks its piece up and reads it
/// with the lock released, so reads (a server sending pages) never wait for a write or
/// a compaction. A live piece's bytes are never written again, and a file replaced by a
/// compaction stays open for reads that looked it up before.
pub struct Spill {
    /// Where its file (and the file it is compacted into) is made.
    dir: PathBuf,
    table: Mutex<Table>,
    /// Held shared by writers, exclusively by a compaction (which copies what writers
    /// may not change meanwhile).
    gate: RwLock<()>,
    /// Whether a failed write was reported: a full disk fails every page, and the log
    /// should say so once.
    warned: AtomicBool,
}

struct Table {
    file: Arc<File>,
    /// Where the next piece goes. Advanced before the write: a write that fails leaves
    /// dead bytes, never a piece half-written.
    end: u64,
    /// Slot → where its piece is; `None` when free.
    slots: Vec<Option<Slot>>,
    free: Vec<u32>,
    /// Bytes of the pieces held.
    live: u64,
    /// Dead bytes at which to compact next: raised after a compaction fails, so a file
    /// that cannot be made is not tried again on every write.
    compact_at: u64,
}

#[derive(Clone, Copy)]
struct Slot {
    offset: u64,
    len: u32,
}

impl std::fmt::Debug for Spill {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (live, end) = self.usage();
        f.debug_struct("Spill")
            .field("dir", &self.dir)
            .field("end", &end)
            .field("live", &live)
            .finish()
    }
}

impl Spill {
    /// A spill in an unlinked file made in `dir` (created if missing).
    pub fn create(dir: &Path) -> io::Result<Arc<Spill>> {
        std::fs::create_dir_all(dir)?;
        let file = tempfile::tempfile_in(dir)?;
        Ok(Arc::new(Spill {
            dir: dir.to_path_buf(),
            table: Mutex::new(Table {
                file: Arc::new(file),
                end: 0,
                slots: Vec::new(),
                free: Vec::new(),
                live: 0,
                compact_at: COMPACT_ABOVE,
            }),
            gate: RwLock::new(()),
            warned: AtomicBool::new(false),
        }))
    }

    /// Puts every piece of `pieces` in the file, joined into writes of [`CHUNK`] bytes;
    /// each is read back with [`Region::read`] and given up when its region is dropped.
    /// Compacts the file first when its dead bytes outgrow the live ones.
    pub fn put_all(self: &Arc<Self>, pieces: &[&[u8]]) -> io::Result<Vec<Region>> {
        if pieces.iter().any(|p| u32::try_from(p.len()).is_err()) {
            return Err(io::Error::other("too long to spill"));
        }
        let total: u64 = pieces.iter().map(|p| p.len() as u64).sum();
        if self.lock().wants_compaction() {
            self.compact();
        }
        let _writing = self.gate.read().unwrap_or_else(PoisonError::into_inner);
        let (file, start) = {
            let mut table = self.lock();
            let start = table.end;
            table.end += total;
            (table.file.clone(), start)
        };
        write_joined(&file, pieces, start)?;
        let mut table = self.lock();
        table.live += total;
        let mut offset = start;
        let regions = pieces
            .iter()
            .map(|piece| {
                let len = piece.len() as u32;
                let slot = table.take_slot(Slot { offset, len });
                offset += u64::from(len);
                Region {
                    spill: self.clone(),
                    slot,
                    len,
                }
            })
            .collect();
        Ok(regions)
    }

    /// Reports that a write to the spill failed and what is held in memory instead,
    /// the first time only.
    pub fn warn_once(&self, error: &io::Error) {
        if !self.warned.swap(true, Ordering::Relaxed) {
            tracing::warn!(%error, dir = %self.dir.display(), "cannot write to the page spill: pages are held in memory");
        }
    }

    /// Bytes held, and bytes the file takes (held and dead).
    pub fn usage(&self) -> (u64, u64) {
        let table = self.lock();
        (table.live, table.end)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        // Every change to the table is whole before the lock is let go: a panic
        // elsewhere while it was held leaves nothing half-done.
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn read(&self, slot: u32) -> io::Result<Bytes> {
        let (file, Slot { offset, len }) = {
            let table = self.lock();
            let slot = table.slots[slot as usize].expect("a held region's slot");
            (table.file.clone(), slot)
        };
        let mut bytes = vec![0; len as usize];
        file.read_exact_at(&mut bytes, offset)?;
        Ok(Bytes::from(bytes))
    }

    fn give_up(&self, slot: u32) {
        let mut table = self.lock();
        if let Some(Slot { len, .. }) = table.slots[slot as usize].take() {
            table.live -= u64::from(len);
            table.free.push(slot);
        }
    }

    /// Copies the held pieces into a fresh file, in the order they sit, and moves their
    /// slots there; the old file closes when the last read that looked it up is done.
    /// Writers wait (the gate); reads go on from the old file. On failure nothing moves.
    fn compact(&self) {
        let _compacting = self.gate.write().unwrap_or_else(PoisonError::into_inner);
        let (file, mut held) = {
            let table = self.lock();
            if !table.wants_compaction() {
                return;
            }
            let held: Vec<(u32, Slot)> = (table.slots.iter().enumerate())
                .filter_map(|(i, slot)| Some((i as u32, (*slot)?)))
                .collect();
            (table.file.clone(), held)
        };
        held.sort_by_key(|(_, slot)| slot.offset);
        match copy_live(&self.dir, &file, &held) {
            Ok((fresh, end)) => {
                let mut table = self.lock();
                let mut offset = 0;
                for (i, slot) in &held {
                    // A piece given up meanwhile is left free; its bytes are copied dead.
                    if let Some(moved) = &mut table.slots[*i as usize] {
                        moved.offset = offset;
                    }
                    offset += u64::from(slot.len);
                }
                table.file = Arc::new(fresh);
                table.end = end;
                table.compact_at = COMPACT_ABOVE;
            }
            Err(error) => {
                let mut table = self.lock();
                table.compact_at = table.dead().max(COMPACT_ABOVE) * 2;
                drop(table);
                tracing::warn!(%error, dir = %self.dir.display(), "cannot compact the page spill");
            }
        }
    }
}

impl Table {
    fn dead(&self) -> u64 {
        self.end - self.live
    }

    fn wants_compaction(&self) -> bool {
        self.dead() > self.live.max(self.compact_at)
    }

    /// A slot (a free one when there is one) for `slot`'s piece.
    fn take_slot(&mut self, slot: Slot) -> u32 {
        match self.free.pop() {
            Some(index) => {
                self.slots[index as usize] = Some(slot);
                index
            }
            None => {
                self.slots.push(Some(slot));
                u32::try_from(self.slots.len() - 1).expect("fewer than 2^32 pieces")
            }
        }
    }
}

/// Writes `pieces` one after the other from `start`, joined into writes of [`CHUNK`].
fn write_joined(file: &File, pieces: &[&[u8]], start: u64) -> io::Result<()> {
    // One buffer of a whole site's text would be one large allocation, which glibc's
    // allocator answers by keeping that much more heap for good.
    let mut chunk = Vec::with_capacity(CHUNK.min(pieces.iter().map(|p| p.len()).sum()));
    let mut at = start;
    for piece in pieces {
        if chunk.len() + piece.len() > CHUNK && !chunk.is_empty() {
            file.write_all_at(&chunk, at)?;
            at += chunk.len() as u64;
            chunk.clear();
        }
        if piece.len() > CHUNK {
            file.write_all_at(piece, at)?;
            at += piece.len() as u64;
        } else {
            chunk.extend_from_slice(piece);
        }
    }
    file.write_all_at(&chunk, at)
}

/// The pieces `held` (in file order) of `file` copied one after the other into a fresh
/// file in `dir`, and its length.
fn copy_live(dir: &Path, file: &File, held: &[(u32, Slot)]) -> io::Result<(File, u64)> {
    let fresh = tempfile::tempfile_in(dir)?;
    let mut buffer = Vec::with_capacity(CHUNK);
    let mut written = 0u64;
    for (_, slot) in held {
        let start = buffer.len();
        buffer.resize(start + slot.len as usize, 0);
        file.read_exact_at(&mut buffer[start..], slot.offset)?;
        if buffer.len() >= CHUNK {
            fresh.write_all_at(&buffer, written)?;
            written += buffer.len() as u64;
            buffer.clear();
        }
    }
    fresh.write_all_at(&buffer, written)?;
    written += buffer.len() as u64;
    Ok((fresh, written))
}

/// A piece of bytes held in a [`Spill`].
pub struct Region {
    spill: Arc<Spill>,
    slot: u32,
    len: u32,
}

impl Region {
    /// Its bytes, read back from the file.
    pub fn read(&self) -> io::Result<Bytes> {
        self.spill.read(self.slot)
    }

    pub fn len(&self) -> usize {
        self.len as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl PartialEq for Region {
    fn eq(&self, other: &Region) -> bool {
        Arc::ptr_eq(&self.spill, &other.spill) && self.slot == other.slot
    }
}

impl Eq for Region {}

impl Drop for Region {
    fn drop(&mut self) {
        self.spill.give_up(self.slot);
    }
}

impl std::fmt::Debug for Region {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Region")
            .field("slot", &self.slot)
            .field("len", &self.len)
            .finish()
    }
}

/// What a long-lived build keeps but reads again seldom: in memory (as an `M`) until
/// [`Kept::spill_all`] moves it into a [`Spill`]. Clones share it (a clone costs a
/// reference count, and is spilled with it), and it changes place behind a lock, so a
/// build may read it while a spill moves it. [`Blob`] and [`Text`] are its two kinds.
pub struct Kept<M>(Arc<RwLock<Place<M>>>);

enum Place<M> {
    Memory(M),
    Spilled(Region),
}

impl<M> Clone for Kept<M> {
    fn clone(&self) -> Kept<M> {
        Kept(self.0.clone())
    }
}

impl<M> Kept<M> {
    fn in_memory(memory: M) -> Kept<M> {
        Kept(Arc::new(RwLock::new(Place::Memory(memory))))
    }

    fn place(&self) -> std::sync::RwLockReadGuard<'_, Place<M>> {
        // A place is replaced whole: a panic while it was held leaves it as it was.
        self.0.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether it is held in a spill rather than in memory.
    pub fn is_spilled(&self) -> bool {
        matches!(&*self.place(), Place::Spilled(_))
    }
}

impl<M: Clone + AsRef<[u8]>> Kept<M> {
    /// Its length in bytes, wherever it is.
    pub fn len(&self) -> usize {
        match &*self.place() {
            Place::Memory(memory) => memory.as_ref().len(),
            Place::Spilled(region) => region.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Moves everything of `kept` still in memory into `spill`, joined into few writes
    /// ([`Spill::put_all`]). When the write fails it stays in memory. What was set anew
    /// while this ran keeps its new value (its spilled copy is given up).
    pub fn spill_all<'a>(
        kept: impl IntoIterator<Item = &'a Kept<M>>,
        spill: &Arc<Spill>,
    ) -> io::Result<()>
    where
        M: 'a,
    {
        // Each with a copy of what it held when read (a reference count, but for text
        // owned as read, copied here where no build waits for it) and the address of
        // its bytes, to tell it was not replaced meanwhile.
        let held: Vec<(&Kept<M>, M, *const u8)> = kept
            .into_iter()
            .filter_map(|kept| match &*kept.place() {
                Place::Memory(memory) if !memory.as_ref().is_empty() => {
                    Some((kept, memory.clone(), memory.as_ref().as_ptr()))
                }
                _ => None,
            })
            .collect();
        if held.is_empty() {
            return Ok(());
        }
        let pieces: Vec<&[u8]> = held.iter().map(|(_, memory, _)| memory.as_ref()).collect();
        let regions = spill.put_all(&pieces)?;
        for ((kept, _, was), region) in held.iter().zip(regions) {
            let mut place = kept.0.write().unwrap_or_else(PoisonError::into_inner);
            if matches!(&*place, Place::Memory(memory) if memory.as_ref().as_ptr() == *was) {
                *place = Place::Spilled(region);
            }
        }
        Ok(())
    }
}

impl<M: std::fmt::Debug> std::fmt::Debug for Kept<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &*self.place() {
            Place::Memory(memory) => memory.fmt(f),
            Place::Spilled(region) => region.fmt(f),
        }
    }
}

/// Bytes kept (a packed page). A server's build spills them after the build, so no
/// page waits for a write on its way to the first request.
pub type Blob = Kept<Bytes>;

impl Blob {
    pub fn new(bytes: Bytes) -> Blob {
        Kept::in_memory(bytes)
    }

    /// The bytes, read back when spilled; an error only when the spill's file fails.
    pub fn bytes(&self) -> io::Result<Bytes> {
        // Read under the place's read lock: it is only ever taken for writing to move
        // bytes from memory to the spill, never while spilled.
        match &*self.place() {
            Place::Memory(bytes) => Ok(bytes.clone()),
            Place::Spilled(region) => region.read(),
        }
    }
}

/// Text kept (a page's Markdown source, its rendered Markdown), read again only to
/// render the page again.
pub type Text = Kept<Str>;

/// Text in memory: shared, or the `String` it was made as (a file's body as read), not
/// copied into an `Arc` until it must be.
#[derive(Clone, Debug)]
pub enum Str {
    Shared(Arc<str>),
    Owned(String),
}

impl AsRef<[u8]> for Str {
    fn as_ref(&self) -> &[u8] {
        self.as_str().as_bytes()
    }
}

impl Str {
    fn as_str(&self) -> &str {
        match self {
            Str::Shared(text) => text,
            Str::Owned(text) => text,
        }
    }
}

impl Text {
    pub fn new(text: impl Into<Arc<str>>) -> Text {
        Kept::in_memory(Str::Shared(text.into()))
    }

    /// Text kept as the `String` it is, for text read through [`Text::with`].
    pub fn owned(text: String) -> Text {
        Kept::in_memory(Str::Owned(text))
    }

    /// Calls `f` with the text, without a copy when it is in memory (read back when
    /// spilled, as [`Text::get`] does).
    pub fn with<R>(&self, f: impl FnOnce(&str) -> R) -> R {
        {
            if let Place::Memory(text) = &*self.place() {
                return f(text.as_str());
            }
        }
        f(&self.get())
    }

    /// The text, read back when it was spilled.
    ///
    /// # Panics
    ///
    /// When spilled text cannot be read back (the spill's file failed). A build reading
    /// it fails as a whole (the builder's panic is the build's failure), and the next
    /// build starts from the site's files; a template reading it fails that page, which
    /// keeps its last good HTML. Neither keeps empty text as if it were the page's.
    pub fn get(&self) -> Arc<str> {
        match &*self.place() {
            Place::Memory(Str::Shared(text)) => text.clone(),
            Place::Memory(Str::Owned(text)) => Arc::from(text.as_str()),
            Place::Spilled(region) => {
                let bytes = region.read().unwrap_or_else(|error| {
                    panic!("cannot read a page's text back from the spill file: {error}")
                });
                match std::str::from_utf8(&bytes) {
                    Ok(text) => Arc::from(text),
                    Err(_) => unreachable!("spilled from a str"),
                }
            }
        }
    }

    /// Replaces it (with nothing, to free a one-shot build's Markdown once rendered).
    pub fn set(&self, text: impl Into<Arc<str>>) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) =
            Place::Memory(Str::Shared(text.into()));
    }
}

impl serde::Serialize for Text {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.with(|text| serializer.serialize_str(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One piece put on its own.
    fn put(spill: &Arc<Spill>, bytes: &[u8]) -> Region {
        spill.put_all(&[bytes]).unwrap().pop().unwrap()
    }

    fn piece(i: usize, len: usize) -> Vec<u8> {
        (0..len).map(|j| (i * 31 + j) as u8).collect()
    }

    #[test]
    fn pieces_read_back_as_put_and_leave_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let spill = Spill::create(&dir.path().join("spill")).unwrap();
        let regions: Vec<Region> = (0..100)
            .map(|i| put(&spill, &piece(i, 10 + i * 7)))
            .collect();
        for (i, region) in regions.iter().enumerate() {
            assert_eq!(region.read().unwrap(), piece(i, 10 + i * 7));
        }
        let held: u64 = (0..100).map(|i| 10 + i as u64 * 7).sum();
        assert_eq!(spill.usage(), (held, held));
        // The file is unlinked: its folder is empty while it holds all of that.
        assert_eq!(
            std::fs::read_dir(dir.path().join("spill")).unwrap().count(),
            0
        );
        drop(regions);
        assert_eq!(spill.usage(), (0, held));
    }

    #[test]
    fn dead_bytes_are_compacted_away_and_held_regions_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let spill = Spill::create(dir.path()).unwrap();
        let big = (COMPACT_ABOVE / 4) as usize;
        let mut kept = Vec::new();
        let mut replaced = put(&spill, &piece(0, big));
        for round in 1..=12 {
            // Every round replaces the big piece (its old bytes die) and keeps a small one.
            replaced = put(&spill, &piece(round, big));
            kept.push((round, put(&spill, &piece(round, 100 + round))));
        }
        let (live, end) = spill.usage();
        assert_eq!(
            live,
            big as u64 + kept.iter().map(|(r, _)| 100 + *r as u64).sum::<u64>()
        );
        // Without compaction the file would hold 13 big pieces.
        assert!(
            end < live + COMPACT_ABOVE + 2 * big as u64,
            "live {live}, file {end}"
        );
        assert_eq!(replaced.read().unwrap(), piece(12, big));
        for (round, region) in &kept {
            assert_eq!(region.read().unwrap(), piece(*round, 100 + round));
        }
    }

    #[test]
    fn texts_spill_with_one_write_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let spill = Spill::create(dir.path()).unwrap();
        // Half shared, half owned (as a file's body is kept).
        let texts: Vec<Text> = (0..50)
            .map(|i| match i % 2 {
                0 => Text::new(format!("text {i} é")),
                _ => Text::owned(format!("text {i} é")),
            })
            .collect();
        assert_eq!(texts[1].with(str::len), "text 1 é".len());
        let empty = Text::new("");
        Text::spill_all(texts.iter().chain([&empty]), &spill).unwrap();
        for (i, text) in texts.iter().enumerate() {
            assert!(text.is_spilled());
            assert_eq!(&*text.get(), format!("text {i} é"));
            assert_eq!(text.with(str::to_string), format!("text {i} é"));
        }
        // Nothing to hold for empty text.
        assert!(!empty.is_spilled());
        let held: usize = texts.iter().map(|t| t.get().len()).sum();
        assert_eq!(spill.usage(), (held as u64, held as u64));
        // Set again, a text is in memory and its old bytes are dead.
        texts[0].set("new");
        assert!(!texts[0].is_spilled());
        assert_eq!(spill.usage().0, (held - "text 0 é".len()) as u64);
    }

    #[test]
    fn freed_slots_are_reused() {
        let dir = tempfile::tempdir().unwrap();
        let spill = Spill::create(dir.path()).unwrap();
        let a = put(&spill, b"first");
        let slot = a.slot;
        drop(a);
        let b = put(&spill, b"second");
        assert_eq!(b.slot, slot);
        assert_eq!(&b.read().unwrap()[..], b"second");
    }
}
