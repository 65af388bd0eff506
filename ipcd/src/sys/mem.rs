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
