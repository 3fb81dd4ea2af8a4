//! The `sited` binary's allocator: mimalloc (issue 17 items 3 and 5), set as the global
//! allocator in `main.rs`; this module holds its settings.
//!
//! Against glibc's malloc, measured on tldr (BENCHMARKS.md, "mimalloc"): a one-shot
//! build's wall time 0.29 -> 0.22 s (glibc's arenas serialise a build's many threads'
//! small allocations); three tldr sites in the daemon 110 -> 97 MB after `up`.
//! Two settings make the memory figures hold:
//! - `no_thp` (a build feature): mimalloc turns transparent huge pages off for the
//!   process. Where the kernel backs every anonymous mapping with huge pages (THP
//!   `always`), mimalloc's eagerly committed arenas were otherwise resident 2 MiB at a
//!   time: a one-shot build's peak RSS 45 -> 100 MB, the daemon's 134 MB.
//! - a purge delay of 0 in the daemon (here, [`tune`]): freed memory goes back to the
//!   system when freed, not a second later at the freeing thread's next allocation, which
//!   for a serving or building thread that has gone idle is never (134 -> 97 MB).
//!   One-shot builds keep the default: their memory goes back at exit anyway.

/// `mi_option_purge_delay` in mimalloc's `mimalloc.h` (v3), which `libmimalloc-sys`
/// does not name.
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Settings for a process that lives for days holding what its builds leave behind:
/// freed memory is returned at once. Whoever sets `MIMALLOC_PURGE_DELAY` keeps it.
pub fn tune() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return;
    }
    // SAFETY: mi_option_set stores an integer option; mimalloc reads options atomically.
    #[allow(unsafe_code)]
    unsafe {
        libmimalloc_sys::mi_option_set(PURGE_DELAY, 0);
    }
}

/// Gives the allocator's free pages back to the system: after a big build's pages went
/// to its spill file (BENCHMARKS.md).
pub fn trim() {
    // SAFETY: mi_collect takes a flag and works on the allocator's own state.
    #[allow(unsafe_code)]
    unsafe {
        libmimalloc_sys::mi_collect(true);
    }
}
