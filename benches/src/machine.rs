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
    /// `MemFree` from `/proc/meminfo` when the facts were read, in bytes.
    #[serde(default)]
    pub mem_free_bytes: Option<u64>,
    /// Whether the VM hands its free memory back to the host (virtio-balloon free page
    /// reporting, feature bit 5). Then a page the guest has not used lately faults on the
    /// host when touched again, and memory-heavy runs (the replay, page-cache writes) are
    /// slower while much memory is free: on the project's VM, `dd` into fresh page cache ran
    /// at 0.33 GB/s against 2.1 GB/s into pages just freed (`docs/benchmarks.md`). Compare
    /// only contenders measured in the same run.
    #[serde(default)]
    pub free_page_reporting: Option<bool>,
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
            mem_free_bytes: fs::read_to_string("/proc/meminfo")
                .ok()
                .and_then(|t| parse_meminfo_bytes(&t, "MemFree:")),
            free_page_reporting: read_free_page_reporting(),
        }
    }
}

/// Free page reporting of a virtio balloon (`None` without `/sys`; `false` without one).
fn read_free_page_reporting() -> Option<bool> {
    if !std::path::Path::new("/sys/bus").is_dir() {
        return None;
    }
    let Ok(devices) = fs::read_dir("/sys/bus/virtio/drivers/virtio_balloon") else {
        return Some(false);
    };
    Some(
        devices
            .flatten()
            .filter(|d| d.file_name().to_string_lossy().starts_with("virtio"))
            .filter_map(|d| fs::read_to_string(d.path().join("features")).ok())
            .any(|f| reports_free_pages(&f)),
    )
}

/// A virtio device's `features` file is one `0`/`1` per feature bit, bit 0 first;
/// `VIRTIO_BALLOON_F_REPORTING` is bit 5.
fn reports_free_pages(features: &str) -> bool {
    features.trim().as_bytes().get(5) == Some(&b'1')
}

/// The 1, 5 and 15 minute load averages, if `/proc/loadavg` is readable.
pub fn read_loadavg() -> Option<[f64; 3]> {
    fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|t| parse_loadavg(&t))
}

fn parse_mem_total(meminfo: &str) -> Option<u64> {
    parse_meminfo_bytes(meminfo, "MemTotal:")
}

/// The value of one `/proc/meminfo` line (`name` with its colon), in bytes.
fn parse_meminfo_bytes(meminfo: &str, name: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with(name))?;
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
        assert_eq!(
            parse_meminfo_bytes("MemTotal: 9 kB\nMemFree:  16428036 kB\n", "MemFree:"),
            Some(16428036 * 1024)
        );
    }

    #[test]
    fn free_page_reporting_is_balloon_feature_bit_5() {
        // This VM's balloon: stats queue, deflate on OOM, reporting (bits 1, 2, 5) and bit 7.
        let vm = "0110010100000000000000000000000010000000000000000000000000000000\n";
        assert!(reports_free_pages(vm));
        assert!(!reports_free_pages("0110000100000000\n"));
        assert!(!reports_free_pages("01100"));
    }

    #[test]
    fn reading_never_fails() {
        let facts = MachineFacts::read();
        assert!(facts.nproc >= 1);
    }
}
