//! Packed pages inflated for clients that take no gzip (benchmarks, scripts, ranges),
//! the most recently used kept up to a small budget for the whole daemon, so a page
//! asked for again and again is inflated once rather than per request, and memory stays
//! bounded whatever is asked.

use std::sync::{Arc, LazyLock, Mutex, Weak};

use bytes::Bytes;
use rustc_hash::FxHashMap;
use sited_builder::output::Packed;

use super::zerocopy;

/// What the inflated pages may take together: a few hundred typical pages, or a dozen
/// large ones.
const BUDGET: usize = 4 * 1024 * 1024;

/// Whether a page of `len` bytes is kept.
pub fn keeps(len: usize) -> bool {
    fits(len, BUDGET)
}

/// Whether a page of `len` bytes is kept within `budget`: a page larger than a quarter
/// of it would push out everything else.
fn fits(len: usize, budget: usize) -> bool {
    len <= budget / 4
}

/// The page `packed` holds, inflated, with `tag` (the live-reload script) at its split
/// point when one is given, from the cache when it is there. One piece: a response is
/// its head and this, written together (pieces around the tag made hyper write a large
/// page and its last bytes apart: two writes and two wake-ups of the client a request).
/// Meant for pages the cache [`keeps`]: the tag is copied in once, when the page is
/// inflated. Fails when a spilled page cannot be read back.
pub fn inflated(packed: &Arc<Packed>, tag: Option<&Bytes>) -> std::io::Result<Bytes> {
    let key = Key::of(packed, tag.is_some());
    let hit = HOT.lock().expect("the hot cache").get(key);
    if let Some(page) = hit {
        return Ok(page);
    }
    // Inflated outside the lock: a large page takes a fraction of a millisecond.
    let page = packed.unpack()?;
    let page = match tag {
        Some(tag) => {
            let at = packed.at();
            let mut whole = Vec::with_capacity(page.len() + tag.len());
            whole.extend_from_slice(&page[..at]);
            whole.extend_from_slice(tag);
            whole.extend_from_slice(&page[at..]);
            Bytes::from(whole)
        }
        None => page,
    };
    // A large page goes in a memory file, sent without a copy.
    let page = zerocopy::share(page);
    HOT.lock()
        .expect("the hot cache")
        .insert(packed, tag.is_some(), page.clone(), BUDGET);
    Ok(page)
}

/// A cached page: the packed page's address, and whether it holds the live-reload tag.
/// The tag a page gets is a function of the page (it names the page's own ETag, and a
/// packed page belongs to one resource), so the address and this flag name the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Key(usize, bool);

impl Key {
    fn of(packed: &Arc<Packed>, tagged: bool) -> Key {
        Key(Arc::as_ptr(packed) as usize, tagged)
    }
}

static HOT: LazyLock<Mutex<Hot>> = LazyLock::new(Mutex::default);

#[derive(Default)]
struct Hot {
    /// By the packed page's address (and whether tagged); the entry holds a weak
    /// reference to the page, which keeps its allocation, so the address is not reused
    /// by another page while it is here.
    pages: FxHashMap<Key, Entry>,
    bytes: usize,
    clock: u64,
}

struct Entry {
    /// Weak: a page gone from every output is dropped (and the spill file that holds it
    /// with its last page), while its address stays taken as long as this key is here.
    _packed: Weak<Packed>,
    page: Bytes,
    used: u64,
}

impl Hot {
    fn get(&mut self, key: Key) -> Option<Bytes> {
        self.clock += 1;
        let entry = self.pages.get_mut(&key)?;
        entry.used = self.clock;
        Some(entry.page.clone())
    }

    fn insert(&mut self, packed: &Arc<Packed>, tagged: bool, page: Bytes, budget: usize) {
        if !fits(page.len(), budget) {
            return;
        }
        let key = Key::of(packed, tagged);
        self.clock += 1;
        let entry = Entry {
            _packed: Arc::downgrade(packed),
            used: self.clock,
            page,
        };
        self.bytes += entry.page.len();
        if let Some(old) = self.pages.insert(key, entry) {
            self.bytes -= old.page.len();
        }
        if self.bytes > budget {
            self.evict(budget * 3 / 4);
        }
    }

    /// Drops the least recently used pages until they take at most `down_to`: one pass
    /// over the entries for many evictions.
    fn evict(&mut self, down_to: usize) {
        let mut by_use: Vec<(u64, Key, usize)> = self
            .pages
            .iter()
            .map(|(&key, entry)| (entry.used, key, entry.page.len()))
            .collect();
        by_use.sort_unstable();
        for (_, key, len) in by_use {
            if self.bytes <= down_to {
                break;
            }
            self.pages.remove(&key);
            self.bytes -= len;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packed(n: usize) -> Arc<Packed> {
        Arc::new(Packed::pack(
            format!("<body>{}</body>", "x".repeat(n)).as_bytes(),
        ))
    }

    #[test]
    fn pages_come_back_whole_and_the_least_recently_used_go_first() {
        let mut hot = Hot::default();
        let pages: Vec<Arc<Packed>> = (0..4).map(|_| packed(1000)).collect();
        let key = |page: &Arc<Packed>| Key::of(page, false);
        for page in &pages {
            hot.insert(page, false, page.unpack().unwrap(), 4 * 1100);
        }
        assert_eq!(hot.get(key(&pages[0])).unwrap(), pages[0].unpack().unwrap());
        // Over budget: the least recently used go until three quarters are left.
        let fifth = packed(1000);
        hot.insert(&fifth, false, fifth.unpack().unwrap(), 4 * 1100);
        assert!(hot.bytes <= 4 * 1100 * 3 / 4, "{}", hot.bytes);
        assert!(hot.get(key(&pages[0])).is_some(), "used last but one");
        assert!(hot.get(key(&fifth)).is_some(), "used last");
        assert!(hot.get(key(&pages[1])).is_none(), "used first");
        // A page too large for the budget is not kept.
        let large = packed(2000);
        hot.insert(&large, false, large.unpack().unwrap(), 4 * 1100);
        assert!(hot.get(key(&large)).is_none());
    }

    #[test]
    fn a_cached_page_is_not_kept_alive_by_the_cache() {
        let mut hot = Hot::default();
        let page = packed(100);
        let key = Key::of(&page, false);
        hot.insert(&page, false, page.unpack().unwrap(), 4 * 1100);
        assert!(hot.get(key).is_some());
        assert_eq!(
            Arc::strong_count(&page),
            1,
            "only the page's owner holds it"
        );
    }

    #[test]
    fn inflated_is_the_page() {
        let page = packed(5000);
        assert_eq!(inflated(&page, None).unwrap(), page.unpack().unwrap());
        assert_eq!(inflated(&page, None).unwrap(), page.unpack().unwrap());
    }

    #[test]
    fn inflated_with_a_tag_is_the_page_with_the_tag_at_its_split_point() {
        let page = Arc::new(Packed::pack(b"<html><body>text</body></html>"));
        let tag = Bytes::from_static(b"<script></script>");
        let whole = page.unpack().unwrap();
        let mut expected = whole[..page.at()].to_vec();
        expected.extend_from_slice(&tag);
        expected.extend_from_slice(&whole[page.at()..]);
        // Asked for twice (inflated, then from the cache), with the tag and without:
        // each is its own page.
        for _ in 0..2 {
            assert_eq!(inflated(&page, Some(&tag)).unwrap(), expected);
            assert_eq!(inflated(&page, None).unwrap(), whole);
        }
    }
}
