//! CPU time, to tell a slow contender from a starved one.
//!
//! Two Linux counters, read before and after each child process:
//! - the harness's *children* CPU time (`cutime + cstime` in `/proc/self/stat`), which grows
//!   by exactly the CPU the child (and the descendants it waited for) used once it is
//!   reaped; contenders run one at a time, so the difference is that contender's CPU;
//! - the whole machine's busy time (`/proc/stat`, all cores), whose difference minus the
//!   child's CPU is what *other* processes took meanwhile (compilers on a shared box).
//!
//! Both count in USER_HZ ticks, fixed at 100 per second by the Linux ABI. Without `/proc`
//! the readings are `None` and the report leaves the columns empty.

use std::fs;

/// Linux's USER_HZ: the unit of `/proc` CPU times (part of the kernel ABI, always 100).
const TICKS_PER_SECOND: f64 = 100.0;

/// A reading of both counters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CpuReading {
    /// CPU seconds used by this process's reaped children so far.
    pub children_s: Option<f64>,
    /// CPU seconds all cores of the machine have been busy since boot.
    pub machine_busy_s: Option<f64>,
}

/// What one child used, from readings taken before and after it.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct CpuUse {
    /// CPU seconds (user + system) the child used.
    pub cpu_s: Option<f64>,
    /// CPU seconds other processes used on the machine meanwhile.
    pub others_cpu_s: Option<f64>,
}

impl CpuReading {
    pub fn now() -> Self {
        CpuReading {
            children_s: fs::read_to_string("/proc/self/stat")
                .ok()
                .and_then(|t| parse_children_ticks(&t))
                .map(|t| t as f64 / TICKS_PER_SECOND),
            machine_busy_s: fs::read_to_string("/proc/stat")
                .ok()
                .and_then(|t| parse_busy_ticks(&t))
                .map(|t| t as f64 / TICKS_PER_SECOND),
        }
    }

    /// What happened between `self` (before) and `after`.
    pub fn until(&self, after: &CpuReading) -> CpuUse {
        let diff = |a: Option<f64>, b: Option<f64>| Some((b? - a?).max(0.0));
        let cpu_s = diff(self.children_s, after.children_s);
        let busy = diff(self.machine_busy_s, after.machine_busy_s);
        CpuUse {
            cpu_s,
            others_cpu_s: busy.zip(cpu_s).map(|(b, c)| (b - c).max(0.0)),
        }
    }
}

/// `cutime + cstime` (fields 16 and 17) from `/proc/self/stat`. The command name (field 2)
/// may contain spaces and parentheses, so fields are counted after its last `)`.
fn parse_children_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state): field n is at index n - 3.
    let cutime: u64 = fields.get(13)?.parse().ok()?;
    let cstime: u64 = fields.get(14)?.parse().ok()?;
    Some(cutime + cstime)
}

/// Busy ticks of all cores from the first line of `/proc/stat`:
/// `cpu user nice system idle iowait irq softirq steal …`; busy is everything but idle and
/// iowait (steal counts as busy: another guest had the core).
fn parse_busy_ticks(stat: &str) -> Option<u64> {
    let line = stat.lines().next()?;
    let mut words = line.split_whitespace();
    if words.next()? != "cpu" {
        return None;
    }
    let v: Vec<u64> = words
        .take(8)
        .map(|w| w.parse().ok())
        .collect::<Option<_>>()?;
    let [user, nice, system, _idle, _iowait, irq, softirq, steal] = v[..] else {
        return None;
    };
    Some(user + nice + system + irq + softirq + steal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_children_ticks_after_a_tricky_command_name() {
        let stat = "42 (a) b (c)) S 1 42 42 0 -1 4194304 101 0 0 0 7 3 250 50 20 0 1 0 2141";
        assert_eq!(parse_children_ticks(stat), Some(300));
        assert_eq!(parse_children_ticks("42 (x) S 1"), None);
    }

    #[test]
    fn parses_machine_busy_ticks() {
        let stat = "cpu  352933 5 33428 40120 600 1 116 199 0 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n";
        assert_eq!(
            parse_busy_ticks(stat),
            Some(352933 + 5 + 33428 + 1 + 116 + 199)
        );
        assert_eq!(parse_busy_ticks("intr 1 2 3"), None);
    }

    #[test]
    fn use_is_the_difference_and_others_exclude_the_child() {
        let before = CpuReading {
            children_s: Some(1.0),
            machine_busy_s: Some(100.0),
        };
        let after = CpuReading {
            children_s: Some(4.0),
            machine_busy_s: Some(110.0),
        };
        let used = before.until(&after);
        assert_eq!(used.cpu_s, Some(3.0));
        assert_eq!(used.others_cpu_s, Some(7.0));
        let blind = CpuReading {
            children_s: None,
            machine_busy_s: Some(1.0),
        };
        assert_eq!(blind.until(&after).others_cpu_s, None);
    }

    #[test]
    fn a_child_s_cpu_is_counted_once_it_is_reaped() {
        let before = CpuReading::now();
        let status = std::process::Command::new("sh")
            .args(["-c", "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done"])
            .status();
        assert!(status.is_ok_and(|s| s.success()));
        let used = before.until(&CpuReading::now());
        assert!(used.cpu_s.is_some_and(|c| c > 0.0), "{used:?}");
    }
}
