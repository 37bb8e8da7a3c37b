//! Facts about the running process that summaries and benchmarks report.
//!
//! One place for them, so every command measures memory the same way.

/// Peak resident set size of this process (`VmHWM` in `/proc/self/status`), in bytes;
/// `None` where that file does not exist (not Linux) or cannot be read.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    #[test]
    fn peak_rss_is_known_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(super::peak_rss_bytes().is_some_and(|b| b > 0));
        }
    }
}
