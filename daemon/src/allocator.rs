//! The `sited` binary's allocator ([`Allocator`], set in `main.rs`): glibc's malloc for
//! the daemon, tuned for a process that lives for days holding what its builds leave
//! behind ([`tune`], [`trim`]); mimalloc for a one-shot `sited build` ([`for_builds`]).
//!
//! Measured on tldr (BENCHMARKS.md, "mimalloc for one-shot builds"): a one-shot build
//! 0.24 -> 0.22 s under mimalloc (glibc's arenas serialise a build's many threads' small
//! allocations). In the daemon mimalloc made `up` slower instead (up -> build done
//! 358 -> 414-488 ms, first page 153 -> 152-167 ms) for no memory it saved once every page
//! was served, so the daemon keeps glibc. mimalloc is built with `no_thp`: otherwise it
//! asks for transparent huge pages for its arenas (`madvise`), which the kernel then
//! backs 2 MiB at a time (a build's peak RSS 45 -> 100 MB).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether new blocks come from mimalloc; set once, before any thread is started.
static MIMALLOC: AtomicBool = AtomicBool::new(false);

/// glibc's malloc, or mimalloc once [`for_builds`] was called. A block is always freed by
/// the allocator that made it (those made before the switch are the system's): mimalloc
/// knows its own blocks by address (`mi_is_in_heap_region`, a look-up in its page map),
/// asked only once it is in use.
#[derive(Debug)]
pub struct Allocator;

/// Makes new blocks come from mimalloc: for a process that builds once and exits. Called
/// first thing in `main`, before any other thread exists.
pub fn for_builds() {
    // SAFETY: mi_option_set only stores an integer option, read by mimalloc as it runs.
    #[allow(unsafe_code)]
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1);
    }
    MIMALLOC.store(true, Ordering::Relaxed);
}

/// `mi_option_purge_delay` in mimalloc.h (v2 and v3), which `libmimalloc-sys` does not
/// name: how long freed memory waits before it is given back to the system, `-1` never.
/// A build that exits gives everything back at once; purging before (`madvise`) was
/// work for nothing, 1.9 ms of tldr's build in mimalloc's exit handler alone.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// The largest alignment every block of mimalloc's has: its size classes are multiples
/// of a word. A block asked for with no more is made by `mi_malloc` itself; the
/// `mimalloc` crate makes every block through `mi_malloc_aligned`, whose version 3
/// takes a slower path for sizes that are not a power of two (and over-allocates them).
const WORD: usize = std::mem::size_of::<usize>();

/// Whether `layout` is met by any block of mimalloc's of its size.
fn plain(layout: &Layout) -> bool {
    layout.align() <= WORD && layout.align() <= layout.size()
}

fn mimalloc_on() -> bool {
    MIMALLOC.load(Ordering::Relaxed)
}

/// Whether mimalloc made the block at `ptr`.
fn from_mimalloc(ptr: *mut u8) -> bool {
    // SAFETY: mi_is_in_heap_region only looks `ptr` up in mimalloc's page map.
    #[allow(unsafe_code)]
    unsafe {
        mimalloc_on() && libmimalloc_sys::mi_is_in_heap_region(ptr.cast())
    }
}

// SAFETY: every block is made by one of two allocators that uphold `GlobalAlloc`'s
// contract, and freed or resized by the one that made it ([`from_mimalloc`]); a block moved
// from the system's to mimalloc's is copied within both blocks' sizes.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Allocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        unsafe {
            match mimalloc_on() {
                true if plain(&layout) => libmimalloc_sys::mi_malloc(layout.size()).cast(),
                true => mimalloc::MiMalloc.alloc(layout),
                false => System.alloc(layout),
            }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        unsafe {
            match mimalloc_on() {
                true if plain(&layout) => libmimalloc_sys::mi_zalloc(layout.size()).cast(),
                true => mimalloc::MiMalloc.alloc_zeroed(layout),
                false => System.alloc_zeroed(layout),
            }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, passed on to the allocator that made `ptr`.
        unsafe {
            match from_mimalloc(ptr) {
                true => mimalloc::MiMalloc.dealloc(ptr, layout),
                false => System.dealloc(ptr, layout),
            }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's contract, passed on to the allocator that made `ptr`; a
        // system block moved to mimalloc is copied within both sizes, then freed.
        unsafe {
            if from_mimalloc(ptr) {
                let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
                return match plain(&new_layout) {
                    true => libmimalloc_sys::mi_realloc(ptr.cast(), new_size).cast(),
                    false => mimalloc::MiMalloc.realloc(ptr, layout, new_size),
                };
            }
            if !mimalloc_on() {
                return System.realloc(ptr, layout, new_size);
            }
            let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
            let new = self.alloc(new_layout);
            if !new.is_null() {
                std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                System.dealloc(ptr, layout);
            }
            new
        }
    }
}

/// Sets glibc's allocator to at most two arenas (one per thread by default, up to
/// eight per core: every build and serving thread kept its own heap and its own holes),
/// and a fixed threshold above which allocations are mapped and unmapped on their own
/// (by default the threshold rises to the largest block freed, so a build's big
/// transient buffers came from the heap and left it grown). Measured with three tldr
/// sites up: 151 -> 136 MB (BENCHMARKS.md). Whoever sets glibc's own knobs
/// (`MALLOC_ARENA_MAX`, `MALLOC_MMAP_THRESHOLD_`, `GLIBC_TUNABLES`) keeps them.
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let asked = [
            "MALLOC_ARENA_MAX",
            "MALLOC_MMAP_THRESHOLD_",
            "GLIBC_TUNABLES",
        ]
        .iter()
        .any(|name| std::env::var_os(name).is_some());
        if asked {
            return;
        }
        // SAFETY: mallopt only sets glibc's malloc parameters from its integer
        // arguments, under glibc's own lock.
        #[allow(unsafe_code)]
        let set = unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2) == 1
                && libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024) == 1
        };
        if !set {
            tracing::debug!("glibc's allocator refused a setting; left as it was");
        }
    }
}

/// Gives the heap's free pages back to the system (glibc's `malloc_trim`): after a big
/// build's pages went to its spill file, ~8 MB for three tldr sites (BENCHMARKS.md).
pub fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes an integer and works under glibc's own locks.
    #[allow(unsafe_code)]
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Blocks made before the switch (the system's) are freed and resized by the system's
    /// allocator after it, and new ones come from mimalloc. Run on an `Allocator` of the
    /// test's own (the tests' global allocator is the system's).
    #[test]
    #[allow(unsafe_code)]
    fn blocks_are_freed_by_the_allocator_that_made_them() {
        let allocator = Allocator;
        let layout = Layout::from_size_align(64, 8).unwrap();
        // SAFETY: each block is used within its layout and freed once, with it.
        unsafe {
            let before = allocator.alloc(layout);
            let before_too = allocator.alloc(layout);
            before.write_bytes(7, 64);
            before_too.write_bytes(9, 64);
            for_builds();
            let after = allocator.alloc_zeroed(layout);
            assert!(from_mimalloc(after), "new blocks come from mimalloc");
            assert!(!from_mimalloc(before), "the system's stay the system's");
            assert_eq!(*after.add(63), 0);
            // A system block grown moves to mimalloc with its bytes.
            let grown = allocator.realloc(before, layout, 4096);
            assert!(from_mimalloc(grown));
            assert_eq!(std::slice::from_raw_parts(grown, 64), [7; 64]);
            // A mimalloc block shrunk stays mimalloc's, with its bytes.
            let shrunk = allocator.realloc(grown, Layout::from_size_align(4096, 8).unwrap(), 32);
            assert!(from_mimalloc(shrunk));
            assert_eq!(std::slice::from_raw_parts(shrunk, 32), [7; 32]);
            // A system block made before the switch is freed by the system's allocator
            // (were it handed to mimalloc, the next line would corrupt or abort).
            assert!(!from_mimalloc(before_too));
            assert_eq!(*before_too.add(63), 9);
            allocator.dealloc(before_too, layout);
            allocator.dealloc(after, layout);
            allocator.dealloc(shrunk, Layout::from_size_align(32, 8).unwrap());
        }
        // After the switch (one test: it is the process's, and the lines above need the
        // system's before it).
        builds_blocks_have_their_alignment_and_are_never_purged();
    }

    /// Every block mimalloc makes has the alignment asked for, whether it is made by
    /// `mi_malloc` itself (a word or less) or by the aligned calls, and keeps it when
    /// resized; a build's memory is never purged before the exit.
    #[allow(unsafe_code)]
    fn builds_blocks_have_their_alignment_and_are_never_purged() {
        let allocator = Allocator;
        // SAFETY: mi_option_get only reads an option.
        let delay = unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) };
        assert_eq!(delay, -1);
        for align in [1, 2, 4, 8, 16, 32, 64, 4096] {
            for size in [1, 7, 8, 9, 24, 40, 100, 1000, 5000, 70_000] {
                let layout = Layout::from_size_align(size, align).unwrap();
                let grown = Layout::from_size_align(size * 3 + 1, align).unwrap();
                // SAFETY: each block is used within its layout and freed once, with it.
                unsafe {
                    let blocks: Vec<*mut u8> = (0..40)
                        .map(|i| match i % 2 {
                            0 => allocator.alloc(layout),
                            _ => allocator.alloc_zeroed(layout),
                        })
                        .collect();
                    for (i, &block) in blocks.iter().enumerate() {
                        assert!(from_mimalloc(block));
                        assert_eq!(block as usize % align, 0, "size {size}, align {align}");
                        block.write_bytes(i as u8, size);
                        let moved = allocator.realloc(block, layout, grown.size());
                        assert_eq!(moved as usize % align, 0, "grown {size}, align {align}");
                        assert_eq!(std::slice::from_raw_parts(moved, size), vec![i as u8; size]);
                        allocator.dealloc(moved, grown);
                    }
                }
            }
        }
    }
}
