//! Measuring one contender run as a child process.
//!
//! Every contender (sluice, DuckDB, Polars, ...) runs as its own process so that its peak
//! memory is its own and nothing it allocates lingers into the next run. The harness owns the
//! clock: wall time is taken from just before `spawn` to just after `wait`, so process start,
//! library imports and the final flush all count, the same for every contender. Peak RSS is
//! reported by the child itself (std offers no per-child `rusage`), as the last JSON line it
//! prints. CPU time comes from `/proc` ([`crate::cpu`]), to show when a contender was
//! starved by other processes rather than slow.
//!
//! ```text
//!   harness ── Instant::now ──> spawn(child) ─ stdout/stderr piped ─> wait ── elapsed ──> ChildRun
//!                                   └── child prints {"peak_rss_bytes": …, …} as its last line
//! ```

use std::ffi::OsStr;
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::cpu::{CpuReading, CpuUse};
use crate::error::BenchError;

/// The outcome of one measured child process.
#[derive(Debug, Clone)]
pub struct ChildRun {
    /// Exit status 0.
    pub success: bool,
    /// The exit status as text (`exit status: 1`, `signal: 9 (SIGKILL)`).
    pub status: String,
    /// Wall seconds from spawn to exit, measured by the harness.
    pub wall_s: f64,
    /// CPU the child used, and what other processes took meanwhile.
    pub cpu: CpuUse,
    pub stdout: String,
    pub stderr: String,
}

impl ChildRun {
    /// The first `head` and the last `tail` lines of stderr, for a FAILED row of a report:
    /// a panic's message comes first (its backtrace after), an error's code comes last.
    pub fn stderr_excerpt(&self, head: usize, tail: usize) -> String {
        excerpt(&self.stderr, head, tail)
    }

    /// The JSON object the child printed: the whole stdout if it is one object, else the last
    /// line that parses as an object (progress text or warnings may precede it).
    pub fn json(&self) -> Option<serde_json::Value> {
        let whole = self.stdout.trim();
        if let Ok(v @ serde_json::Value::Object(_)) = serde_json::from_str(whole) {
            return Some(v);
        }
        self.stdout.lines().rev().find_map(|line| {
            match serde_json::from_str::<serde_json::Value>(line.trim()) {
                Ok(v @ serde_json::Value::Object(_)) => Some(v),
                _ => None,
            }
        })
    }
}

/// The first `head` and last `tail` lines of `text` with a marker for what lies between;
/// each line capped at 240 characters so one huge line cannot flood a report.
pub fn excerpt(text: &str, head: usize, tail: usize) -> String {
    const MAX_LINE_CHARS: usize = 240;
    let cap = |line: &str| match line.char_indices().nth(MAX_LINE_CHARS) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line.to_string(),
    };
    let lines: Vec<&str> = text.trim_end().lines().collect();
    if lines.len() <= head + tail {
        return lines.iter().map(|l| cap(l)).collect::<Vec<_>>().join("\n");
    }
    let omitted = lines.len() - head - tail;
    let mut out: Vec<String> = lines[..head].iter().map(|l| cap(l)).collect();
    out.push(format!("… ({omitted} lines omitted)"));
    out.extend(lines[lines.len() - tail..].iter().map(|l| cap(l)));
    out.join("\n")
}

/// Run `cmd` to completion with stdin closed and stdout/stderr captured; time it.
///
/// A child that exits non-zero is a normal outcome (`success == false`); only a program that
/// cannot be started at all is an error.
pub fn run_measured(cmd: &mut Command) -> Result<ChildRun, BenchError> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let cpu_before = CpuReading::now();
    let started = Instant::now();
    let output = cmd.output().map_err(|source| BenchError::Spawn {
        program: cmd.get_program().to_string_lossy().into_owned(),
        source,
    })?;
    let wall_s = started.elapsed().as_secs_f64();
    let cpu = cpu_before.until(&CpuReading::now());
    Ok(ChildRun {
        success: output.status.success(),
        status: output.status.to_string(),
        wall_s,
        cpu,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    })
}

/// Flush dirty pages to disk (`sync`, no root needed) so one contender's written-back output
/// does not slow the next. Best effort: a missing `sync` only weakens the isolation.
pub fn sync_filesystems() {
    let _ = Command::new("sync")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// The command as a line a person can paste into a shell: `cd DIR && VAR=x prog 'arg 1' …`.
pub fn command_line(cmd: &Command) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Some(dir) = cmd.get_current_dir() {
        parts.push(format!("cd {} &&", shell_quote(dir.as_os_str())));
    }
    let (mut unset, mut set) = (Vec::new(), Vec::new());
    for (key, value) in cmd.get_envs() {
        let key = key.to_string_lossy();
        match value {
            Some(v) => set.push(format!("{key}={}", shell_quote(v))),
            // Removed variables are part of the exact environment too (`env -u`, which must
            // come before the assignments).
            None => unset.push(format!("-u {key}")),
        }
    }
    if !unset.is_empty() {
        parts.push("env".to_string());
        parts.extend(unset);
    }
    parts.extend(set);
    parts.push(shell_quote(cmd.get_program()));
    parts.extend(cmd.get_args().map(shell_quote));
    parts.join(" ")
}

/// Quote one word for a POSIX shell (single quotes unless it is plainly safe).
pub fn shell_quote(word: &OsStr) -> String {
    let s = word.to_string_lossy();
    let safe = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_./=:,@%+-".contains(c));
    if safe {
        s.into_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_keeps_safe_words_and_escapes_quotes() {
        assert_eq!(shell_quote(OsStr::new("--rows")), "--rows");
        assert_eq!(shell_quote(OsStr::new("a b")), "'a b'");
        assert_eq!(shell_quote(OsStr::new("it's")), r"'it'\''s'");
        assert_eq!(shell_quote(OsStr::new("")), "''");
    }

    #[test]
    fn command_line_shows_dir_env_and_args() {
        let mut c = Command::new("python3");
        c.current_dir("/tmp/w")
            .env("POLARS_MAX_THREADS", "2")
            .env_remove("STREAM_SORT_THREADS")
            .args(["x.py", "--out", "a b"]);
        let line = command_line(&c);
        assert_eq!(
            line,
            "cd /tmp/w && env -u STREAM_SORT_THREADS POLARS_MAX_THREADS=2 python3 x.py --out 'a b'"
        );
    }

    #[test]
    fn json_is_found_after_noise_and_excerpts_are_bounded() {
        let run = ChildRun {
            success: true,
            status: "exit status: 0".into(),
            wall_s: 0.1,
            cpu: CpuUse {
                cpu_s: None,
                others_cpu_s: None,
            },
            stdout: "warming up\n{\"rows\": 3}\n".into(),
            stderr: (0..100).map(|i| format!("line {i}\n")).collect(),
        };
        assert_eq!(run.json().and_then(|v| v["rows"].as_u64()), Some(3));
        assert_eq!(
            run.stderr_excerpt(2, 3),
            "line 0\nline 1\n… (95 lines omitted)\nline 97\nline 98\nline 99"
        );
        assert_eq!(excerpt("a\nb\n", 1, 1), "a\nb");
        let long = "é".repeat(5000);
        assert_eq!(excerpt(&long, 1, 1).chars().count(), 241);
    }

    #[test]
    fn a_failing_child_is_an_outcome_not_an_error() {
        let run = run_measured(Command::new("sh").args(["-c", "echo oops >&2; exit 3"]));
        let run = match run {
            Ok(r) => r,
            Err(e) => panic!("sh should start: {e}"),
        };
        assert!(!run.success);
        assert_eq!(run.stderr_excerpt(5, 5), "oops");
        assert!(run.wall_s >= 0.0);
        let missing = run_measured(&mut Command::new("/nonexistent/program"));
        assert!(matches!(missing, Err(BenchError::Spawn { .. })));
    }
}
