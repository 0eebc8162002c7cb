//! The system allocator's settings for the `shendu` program.

/// Fixes glibc's mmap threshold at 128 KiB. By default glibc raises the threshold to the size of
/// every large block freed, so after the first epoch tensor buffers come from the heap, whose
/// freed pages stay resident and fragment: the resident set then grows with each phase of
/// different buffer sizes (training, evaluation) instead of tracking the memory in use. With the
/// threshold fixed, large buffers are mapped and unmapped as wholes; shendu's buffer pool keeps
/// the ones a training loop reuses, so a steady loop still maps nothing new. A threshold the
/// user set (`MALLOC_MMAP_THRESHOLD_`, as the peers' benchmark harness does) is left alone.
pub fn configure() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
        // SAFETY: mallopt only changes allocator parameters; called once at start-up, before
        // any other thread exists.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
        }
    }
}
