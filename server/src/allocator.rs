//! glibc's per-thread cache, narrowed for `vireo run`.
//!
//! After a peak of connections the server trims the heap
//! (`xmpp_runtime` memory.rs), yet 15,000 sessions that had come and gone
//! still left 2.35x the fresh RSS. Walking the arenas showed why: each
//! thread's tcache keeps up to 7 freed chunks of each of 64 sizes (up to
//! 1 KiB), about 450 chunks scattered over the heap, and every one pins its
//! page, which `malloc_trim` cannot return. Caching only chunks of up to
//! 128 bytes (`glibc.malloc.tcache_max=128`) brought that to 1.68x; message
//! throughput did not move measurably (alternated runs, spec/performance.md).
//!
//! Tunables are read once, when the process starts, and glibc has no
//! `mallopt` for them; so `vireo run` re-executes itself with the tunable
//! set. An operator who sets any `glibc.malloc.tcache` tunable in
//! `GLIBC_TUNABLES` keeps theirs.

/// The tunable `vireo run` adds.
pub const TCACHE_TUNABLE: &str = "glibc.malloc.tcache_max=128";

/// `GLIBC_TUNABLES` with [`TCACHE_TUNABLE`] added, or `None` when it holds
/// a tcache setting already (the operator's, or ours after the re-exec).
pub fn tunables_with_tcache(current: Option<&str>) -> Option<String> {
    match current {
        None | Some("") => Some(TCACHE_TUNABLE.to_string()),
        Some(t) if t.split(':').any(|kv| kv.starts_with("glibc.malloc.tcache")) => None,
        Some(t) => Some(format!("{t}:{TCACHE_TUNABLE}")),
    }
}

/// Re-execute this process with [`TCACHE_TUNABLE`] unless it is set. Same
/// process id, arguments and environment otherwise. Returns only when no
/// re-execution was needed or it failed (the server then runs with
/// glibc's defaults; the failure is printed, since logging is not set up).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn tune_tcache() {
    use std::os::unix::process::CommandExt;
    let current = std::env::var("GLIBC_TUNABLES").ok();
    let Some(tunables) = tunables_with_tcache(current.as_deref()) else {
        return;
    };
    let mut args = std::env::args_os();
    let arg0 = args.next().unwrap_or_else(|| "vireo".into());
    // /proc/self/exe, not the path in argv[0]: it is this very binary even
    // when the file was replaced or the process was started by a relative
    // path from another directory.
    let err = std::process::Command::new("/proc/self/exe")
        .arg0(arg0)
        .args(args)
        .env("GLIBC_TUNABLES", tunables)
        .exec();
    eprintln!(
        "vireo: could not re-execute with {TCACHE_TUNABLE} ({err}); running with glibc's defaults"
    );
}

/// Other platforms have other allocators: nothing to tune.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn tune_tcache() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tunable_is_added_once_and_an_operators_tcache_setting_wins() {
        assert_eq!(tunables_with_tcache(None).as_deref(), Some(TCACHE_TUNABLE));
        assert_eq!(
            tunables_with_tcache(Some("")).as_deref(),
            Some(TCACHE_TUNABLE)
        );
        assert_eq!(
            tunables_with_tcache(Some("glibc.malloc.arena_max=2")).as_deref(),
            Some("glibc.malloc.arena_max=2:glibc.malloc.tcache_max=128")
        );
        assert_eq!(tunables_with_tcache(Some(TCACHE_TUNABLE)), None);
        assert_eq!(
            tunables_with_tcache(Some("glibc.malloc.tcache_count=0")),
            None
        );
    }
}
