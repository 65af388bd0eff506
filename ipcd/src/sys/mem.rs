//! Giving freed heap memory back to the system.

/// Returns free memory at the top of every malloc arena (and whole free pages
/// inside them) to the kernel (`malloc_trim(0)`), so the daemon's resident
/// size falls back after a burst of connections instead of staying at its peak.
pub fn give_back_free_memory() {
    // SAFETY: malloc_trim only walks the allocator's own free lists under its
    // locks; it takes no pointers from us and is safe to call from any thread.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Caps glibc's malloc arenas at `n`. By default each thread that meets
/// contention gets an arena of its own, up to eight per CPU, and every arena
/// keeps what it once held: changes run on blocking threads
/// (`changes::MAX_CHANGES_AT_ONCE`), which would spread the heap over many
/// arenas and triple the resident size under a create-heavy load. Call before
/// the runtime starts its threads.
pub fn limit_arenas(n: usize) {
    let n = libc::c_int::try_from(n.max(1)).unwrap_or(libc::c_int::MAX);
    // SAFETY: mallopt only sets a tunable of the allocator under its own
    // lock; it takes no pointers and is safe to call from any thread.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, n);
    }
}
