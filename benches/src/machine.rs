//! Facts about the machine a benchmark ran on, read from `/proc` (Linux), so a report can be
//! judged later: how many cores, how much memory, which CPU, and how busy the machine already
//! was. Missing facts (another OS, a locked-down `/proc`) come back as `None`, never as an
//! error: a benchmark without a CPU model is still a benchmark.

use std::fs;

/// What a reader of a benchmark report needs to know about the machine.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MachineFacts {
    /// Threads this process may use (`nproc`: affinity and cgroup limits applied).
    pub nproc: usize,
    /// `MemTotal` from `/proc/meminfo`, in bytes.
    pub mem_total_bytes: Option<u64>,
    /// `model name` from `/proc/cpuinfo`.
    pub cpu_model: Option<String>,
    /// `/proc/sys/kernel/osrelease`.
    pub kernel: Option<String>,
    /// 1, 5 and 15 minute load averages from `/proc/loadavg`.
    pub loadavg: Option<[f64; 3]>,
}

impl MachineFacts {
    /// Read the facts now (cheap: a few small `/proc` files).
    pub fn read() -> Self {
        MachineFacts {
            nproc: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            mem_total_bytes: fs::read_to_string("/proc/meminfo")
                .ok()
                .and_then(|t| parse_mem_total(&t)),
            cpu_model: fs::read_to_string("/proc/cpuinfo")
                .ok()
                .and_then(|t| parse_cpu_model(&t)),
            kernel: fs::read_to_string("/proc/sys/kernel/osrelease")
                .ok()
                .map(|s| s.trim().to_string()),
            loadavg: read_loadavg(),
        }
    }
}

/// The 1, 5 and 15 minute load averages, if `/proc/loadavg` is readable.
pub fn read_loadavg() -> Option<[f64; 3]> {
    fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|t| parse_loadavg(&t))
}

fn parse_mem_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let mut words = line.split_whitespace().skip(1);
    let value: u64 = words.next()?.parse().ok()?;
    match words.next() {
        Some("kB") | None => value.checked_mul(1024),
        Some(_) => None,
    }
}

fn parse_cpu_model(cpuinfo: &str) -> Option<String> {
    cpuinfo
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim() == "model name")
        .map(|(_, v)| v.trim().to_string())
}

fn parse_loadavg(text: &str) -> Option<[f64; 3]> {
    let mut it = text.split_whitespace().map(|w| w.parse::<f64>().ok());
    Some([it.next()??, it.next()??, it.next()??])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_files() {
        assert_eq!(
            parse_mem_total("MemFree: 1 kB\nMemTotal:   24576 kB\n"),
            Some(24576 * 1024)
        );
        assert_eq!(parse_mem_total("MemFree: 1 kB\n"), None);
        assert_eq!(
            parse_cpu_model("processor\t: 0\nmodel name\t: AMD EPYC 7B13\nflags: x\n").as_deref(),
            Some("AMD EPYC 7B13")
        );
        assert_eq!(
            parse_loadavg("2.35 2.06 1.21 3/456 789\n"),
            Some([2.35, 2.06, 1.21])
        );
        assert_eq!(parse_loadavg("x y z"), None);
    }

    #[test]
    fn reading_never_fails() {
        let facts = MachineFacts::read();
        assert!(facts.nproc >= 1);
    }
}
