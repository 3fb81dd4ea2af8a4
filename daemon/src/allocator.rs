//! glibc's allocator, tuned for a process that lives for days holding what its builds
//! leave behind (issue 17 item 3). Elsewhere (macOS, musl) these do nothing.

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
