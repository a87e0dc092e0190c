//! Which core this thread is running on.

/// The core this thread ran on a moment ago (`sched_getcpu`, a vDSO read
/// on Linux), or `None` where the system does not say.
pub(crate) fn current_cpu() -> Option<u32> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: no arguments; returns -1 (errno set) on failure.
        let cpu = unsafe { libc::sched_getcpu() };
        u32::try_from(cpu).ok()
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}
