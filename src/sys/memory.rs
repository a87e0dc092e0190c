//! Giving the allocator's free memory back to the kernel.

/// `malloc_trim(0)`: true if glibc returned memory to the kernel.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub(crate) fn release_free_memory() -> bool {
    // SAFETY: malloc_trim only walks the allocator's own free lists; it is
    // thread-safe (it takes each arena's lock).
    unsafe { libc::malloc_trim(0) == 1 }
}

/// Other allocators return memory on their own (or offer no such call).
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub(crate) fn release_free_memory() -> bool {
    false
}
