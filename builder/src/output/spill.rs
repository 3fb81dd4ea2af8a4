//! Bytes a long-lived build holds but seldom reads, kept in a file instead of the heap
//! (issue 17 item 3): a server's packed pages. The file is unlinked from the moment it
//! exists (nothing is left behind, whatever ends the process), so what it holds is page
//! cache, which the kernel writes back and takes when memory is short, and not the
//! daemon's own memory. A page is read back with one positioned read when it is sent.
//!
//! [`Text`] holds text the same way (a page's Markdown and its rendered HTML, read again
//! only when the page must be rendered again).
//!
//! Pages are replaced as a site is edited, so the file gains dead bytes. Each held piece
//! is a [`Region`] naming a slot, not an offset: when the dead bytes outgrow the live ones
//! the live ones are copied into a fresh file and the slots moved, and every region held
//! anywhere (the build's cache, the output being served) stays valid.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use bytes::Bytes;

/// Dead bytes are not worth a compaction below this: a site's worth of small edits.
const COMPACT_ABOVE: u64 = 8 * 1024 * 1024;

/// What [`Spill::put_all`] joins pieces into before a write: under glibc's default mmap
/// threshold (128 KiB), so the buffer comes from and goes back to the heap.
const CHUNK: usize = 64 * 1024;

/// An unlinked file that pieces of bytes are put into and read back from.
pub struct Spill {
    /// Where its file (and the file it is compacted into) is made.
    dir: PathBuf,
    inner: RwLock<Inner>,
}

struct Inner {
    file: File,
    /// Where the next piece goes.
    end: u64,
    /// Slot → where its piece is; `None` when free.
    slots: Vec<Option<Slot>>,
    free: Vec<u32>,
    /// Bytes of the pieces held.
    live: u64,
}

#[derive(Clone, Copy)]
struct Slot {
    offset: u64,
    len: u32,
}

impl std::fmt::Debug for Spill {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.inner.read().expect("the spill");
        f.debug_struct("Spill")
            .field("dir", &self.dir)
            .field("end", &inner.end)
            .field("live", &inner.live)
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
            inner: RwLock::new(Inner {
                file,
                end: 0,
                slots: Vec::new(),
                free: Vec::new(),
                live: 0,
            }),
        }))
    }

    /// Puts `bytes` in the file; they are read back with [`Region::read`] and given up
    /// when the region is dropped.
    pub fn put(self: &Arc<Self>, bytes: &[u8]) -> io::Result<Region> {
        let len = u32::try_from(bytes.len()).map_err(|_| io::Error::other("too long to spill"))?;
        let mut inner = self.inner.write().expect("the spill");
        inner.compact_if_worth_it(&self.dir);
        let offset = inner.end;
        inner.file.write_all_at(bytes, offset)?;
        inner.end += u64::from(len);
        inner.live += u64::from(len);
        let index = inner.take_slot(Slot { offset, len });
        Ok(Region {
            spill: self.clone(),
            slot: index,
            len,
        })
    }

    /// Puts every piece of `pieces` in the file with one write (what [`Spill::put`] does
    /// for each, at the cost of one call).
    pub fn put_all(self: &Arc<Self>, pieces: &[&[u8]]) -> io::Result<Vec<Region>> {
        let total: usize = pieces.iter().map(|p| p.len()).sum();
        if pieces.iter().any(|p| u32::try_from(p.len()).is_err()) {
            return Err(io::Error::other("too long to spill"));
        }
        let mut inner = self.inner.write().expect("the spill");
        inner.compact_if_worth_it(&self.dir);
        let start = inner.end;
        // Joined into writes of a modest size: one buffer of a whole site's text would be
        // one large allocation, which glibc's allocator answers by keeping that much more
        // heap for good (its mmap threshold rises to the size of a freed mapping).
        let mut chunk = Vec::with_capacity(CHUNK);
        let mut at = start;
        for piece in pieces {
            if chunk.len() + piece.len() > CHUNK && !chunk.is_empty() {
                inner.file.write_all_at(&chunk, at)?;
                at += chunk.len() as u64;
                chunk.clear();
            }
            if piece.len() > CHUNK {
                inner.file.write_all_at(piece, at)?;
                at += piece.len() as u64;
            } else {
                chunk.extend_from_slice(piece);
            }
        }
        inner.file.write_all_at(&chunk, at)?;
        inner.end += total as u64;
        inner.live += total as u64;
        let mut offset = start;
        let regions = pieces
            .iter()
            .map(|piece| {
                let len = piece.len() as u32;
                let slot = inner.take_slot(Slot { offset, len });
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

    /// Bytes held, and bytes the file takes (held and dead).
    pub fn usage(&self) -> (u64, u64) {
        let inner = self.inner.read().expect("the spill");
        (inner.live, inner.end)
    }

    fn read(&self, slot: u32) -> io::Result<Bytes> {
        let inner = self.inner.read().expect("the spill");
        let Slot { offset, len } = inner.slots[slot as usize].expect("a held region's slot");
        let mut bytes = vec![0; len as usize];
        inner.file.read_exact_at(&mut bytes, offset)?;
        Ok(Bytes::from(bytes))
    }

    fn give_up(&self, slot: u32) {
        let mut inner = self.inner.write().expect("the spill");
        if let Some(Slot { len, .. }) = inner.slots[slot as usize].take() {
            inner.live -= u64::from(len);
            inner.free.push(slot);
        }
    }
}

impl Inner {
    fn dead(&self) -> u64 {
        self.end - self.live
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

    /// Compacts when the dead bytes outgrow the held ones (and a floor). Not fatal when
    /// it fails: the dead bytes stay until the next try.
    fn compact_if_worth_it(&mut self, dir: &Path) {
        if self.dead() > self.live.max(COMPACT_ABOVE)
            && let Err(error) = self.compact(dir)
        {
            tracing::warn!(%error, dir = %dir.display(), "cannot compact the page spill");
        }
    }

    /// Copies the held pieces into a fresh file, in the order they sit, and moves their
    /// slots there; the old file goes when this drops it.
    fn compact(&mut self, dir: &Path) -> io::Result<()> {
        let file = tempfile::tempfile_in(dir)?;
        let mut order: Vec<u32> = (0..self.slots.len() as u32)
            .filter(|&i| self.slots[i as usize].is_some())
            .collect();
        order.sort_by_key(|&i| self.slots[i as usize].map(|s| s.offset));
        let mut moved = Vec::with_capacity(order.len());
        let mut buffer = Vec::with_capacity(CHUNK);
        let mut end = 0u64;
        let mut written = 0u64;
        for &i in &order {
            let slot = self.slots[i as usize].expect("filtered above");
            let start = buffer.len();
            buffer.resize(start + slot.len as usize, 0);
            self.file.read_exact_at(&mut buffer[start..], slot.offset)?;
            moved.push((i, end));
            end += u64::from(slot.len);
            if buffer.len() >= CHUNK {
                file.write_all_at(&buffer, written)?;
                written += buffer.len() as u64;
                buffer.clear();
            }
        }
        file.write_all_at(&buffer, written)?;
        // Nothing is moved until all is copied: a failure leaves the old file as it was.
        for (i, offset) in moved {
            if let Some(slot) = &mut self.slots[i as usize] {
                slot.offset = offset;
            }
        }
        self.file = file;
        self.end = end;
        Ok(())
    }
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

/// Text a long-lived build keeps but reads again only when it must (a page's Markdown
/// source, its rendered Markdown): in memory until [`Text::spill_all`] moves it into a
/// [`Spill`]. Shared parts of a build hold it, so it changes place behind a lock.
pub struct Text(RwLock<Place>);

enum Place {
    Memory(Arc<str>),
    /// As made (a file's body as read): not copied into an `Arc` until it must be.
    Owned(String),
    Spilled(Region),
}

impl Text {
    pub fn new(text: impl Into<Arc<str>>) -> Text {
        Text(RwLock::new(Place::Memory(text.into())))
    }

    /// Text kept as the `String` it is, for text read through [`Text::with`].
    pub fn owned(text: String) -> Text {
        Text(RwLock::new(Place::Owned(text)))
    }

    /// Calls `f` with the text, without a copy when it is in memory (read back when
    /// spilled, as [`Text::get`] does).
    pub fn with<R>(&self, f: impl FnOnce(&str) -> R) -> R {
        {
            let place = self.0.read().expect("a text");
            match &*place {
                Place::Memory(text) => return f(text),
                Place::Owned(text) => return f(text),
                Place::Spilled(_) => {}
            }
        }
        f(&self.get())
    }

    /// The text, read back when it was spilled. A spill that cannot be read (its file
    /// failed) gives empty text, reported in the log: the page shows empty until it is
    /// rendered again.
    pub fn get(&self) -> Arc<str> {
        match &*self.0.read().expect("a text") {
            Place::Memory(text) => text.clone(),
            Place::Owned(text) => Arc::from(text.as_str()),
            Place::Spilled(region) => match region.read() {
                Ok(bytes) => match std::str::from_utf8(&bytes) {
                    Ok(text) => Arc::from(text),
                    Err(_) => unreachable!("spilled from a str"),
                },
                Err(error) => {
                    tracing::error!(%error, "cannot read spilled text back");
                    Arc::from("")
                }
            },
        }
    }

    /// Replaces it (with nothing, to free a one-shot build's Markdown once rendered).
    pub fn set(&self, text: impl Into<Arc<str>>) {
        *self.0.write().expect("a text") = Place::Memory(text.into());
    }

    /// Moves every text of `texts` still in memory into `spill`, with one write. When the
    /// write fails they stay in memory.
    pub fn spill_all<'a>(
        texts: impl IntoIterator<Item = &'a Text>,
        spill: &Arc<Spill>,
    ) -> io::Result<()> {
        let held: Vec<(&Text, Arc<str>)> = texts
            .into_iter()
            .filter_map(|text| match &*text.0.read().expect("a text") {
                Place::Memory(memory) if !memory.is_empty() => Some((text, memory.clone())),
                // Copied here, where the build does not wait for it.
                Place::Owned(owned) if !owned.is_empty() => Some((text, Arc::from(owned.as_str()))),
                _ => None,
            })
            .collect();
        if held.is_empty() {
            return Ok(());
        }
        let pieces: Vec<&[u8]> = held.iter().map(|(_, t)| t.as_bytes()).collect();
        let regions = spill.put_all(&pieces)?;
        for ((text, _), region) in held.iter().zip(regions) {
            *text.0.write().expect("a text") = Place::Spilled(region);
        }
        Ok(())
    }

    /// Whether it is spilled (tests).
    pub fn is_spilled(&self) -> bool {
        matches!(&*self.0.read().expect("a text"), Place::Spilled(_))
    }
}

impl Clone for Text {
    fn clone(&self) -> Text {
        Text::new(self.get())
    }
}

impl std::fmt::Debug for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &*self.0.read().expect("a text") {
            Place::Memory(text) => text.fmt(f),
            Place::Owned(text) => text.fmt(f),
            Place::Spilled(region) => region.fmt(f),
        }
    }
}

impl serde::Serialize for Text {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.get())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn piece(i: usize, len: usize) -> Vec<u8> {
        (0..len).map(|j| (i * 31 + j) as u8).collect()
    }

    #[test]
    fn pieces_read_back_as_put_and_leave_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let spill = Spill::create(&dir.path().join("spill")).unwrap();
        let regions: Vec<Region> = (0..100)
            .map(|i| spill.put(&piece(i, 10 + i * 7)).unwrap())
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
        let mut replaced = spill.put(&piece(0, big)).unwrap();
        for round in 1..=12 {
            // Every round replaces the big piece (its old bytes die) and keeps a small one.
            replaced = spill.put(&piece(round, big)).unwrap();
            kept.push((round, spill.put(&piece(round, 100 + round)).unwrap()));
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
        let a = spill.put(b"first").unwrap();
        let slot = a.slot;
        drop(a);
        let b = spill.put(b"second").unwrap();
        assert_eq!(b.slot, slot);
        assert_eq!(&b.read().unwrap()[..], b"second");
    }
}
