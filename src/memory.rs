//! How the daemon asks glibc's malloc to keep its resident memory close to what it uses.
//!
//! Left alone, glibc gives each thread that allocates its own arena (up to eight per core) and
//! raises its mmap and trim thresholds every time a large block is freed, so memory freed after
//! a sweep stays resident. For a daemon that holds a large index and works in bursts, measured
//! with the end-to-end benchmark (1,000,000 stored ids, 10,000 entries): 81 MiB peak without
//! these settings, 72 with two arenas and the fixed threshold. Two arenas cost ~15% of the
//! throughput (tokio's workers and librdkafka's threads contend for them); four cost about
//! 1 MiB more than two and none of the throughput. Elsewhere these calls do nothing.

/// Arenas: a fixed few, so resident memory does not grow with the host's core count.
const ARENA_MAX: i32 = 4;
/// Free memory above this at the top of the heap goes back to the system. Setting it also
/// stops glibc from raising the mmap threshold, so large buffers keep being returned on free.
const TRIM_THRESHOLD: i32 = 128 * 1024;
/// Blocks this large or larger are mapped on their own and unmapped on free; smaller ones come
/// from the heap. Above hyper's read buffer (408 KiB at most): the connection reads ahead while
/// the alerts of the chunk before still hold its buffer, so a large answer takes a new buffer
/// for nearly every chunk. At glibc's 128 KiB each was a fresh mapping whose ~100 pages faulted
/// in and were unmapped again (540 a sweep of the heavy benchmark); from the heap, a freed one
/// is reused. Measured on 200x500 plain: 7.4-8.0 µs an alert against 8.4-8.7 in one hour,
/// 8.1-8.5 against 8.6-9.1 in a slower one; peak RSS 2 MiB higher (40 MiB), the end-to-end
/// peak unchanged. At 1 MiB that peak rose by 8 MiB.
const MMAP_THRESHOLD: i32 = 512 * 1024;

/// Sets the arena count and the trim and mmap thresholds, unless the operator set glibc's own
/// variables (`MALLOC_ARENA_MAX`, `MALLOC_TRIM_THRESHOLD_`, `MALLOC_MMAP_THRESHOLD_`), which
/// then win. Call before threads start.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let set_unless_env = |variable: &str, param: libc::c_int, value: i32| {
            if std::env::var_os(variable).is_none() {
                // SAFETY: mallopt only changes malloc's parameters; it is called before any
                // other thread exists, and a refused value (return 0) leaves the default.
                unsafe {
                    libc::mallopt(param, value);
                }
            }
        };
        set_unless_env("MALLOC_ARENA_MAX", libc::M_ARENA_MAX, ARENA_MAX);
        set_unless_env(
            "MALLOC_TRIM_THRESHOLD_",
            libc::M_TRIM_THRESHOLD,
            TRIM_THRESHOLD,
        );
        set_unless_env(
            "MALLOC_MMAP_THRESHOLD_",
            libc::M_MMAP_THRESHOLD,
            MMAP_THRESHOLD,
        );
    }
}

/// Hands free pages back to the system after a phase that freed a lot at once (the store's
/// index rebuild); without it they stay resident until malloc happens to reuse them.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: malloc_trim only returns free memory to the system; it takes malloc's locks.
        unsafe {
            libc::malloc_trim(0);
        }
    }
}
