//! Run-scoped layout (`shared/CONTEXT.md`, "Run-scoped layout"): everything a run writes
//! lives under `runs/<platform>/<platform_run_id>/` with `eb/` (bus), `ig/` (gate), `wsp/`
//! (world streamer checkpoints) and `logs/`.
//!
//! The run id comes from, in order: the `PLATFORM_RUN_ID` environment variable, the file
//! `runs/<platform>/ACTIVE_RUN_ID`, else a new `platform_YYYYMMDDTHHMMSSZ`. A new id is
//! recorded in `ACTIVE_RUN_ID` (atomically) when the run directory is created, so a later
//! `--resume` finds the same run.

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{Result, StorageError};
use crate::publish::write_atomic;
use crate::timefmt::{format_compact_seconds, now_micros};

/// The default `<platform>` directory name.
pub const DEFAULT_PLATFORM: &str = "fraud-platform";

/// Where the run id came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunIdSource {
    Env,
    ActiveFile,
    New,
}

/// A resolved run: its id and root directory.
#[derive(Debug, Clone)]
pub struct RunLayout {
    pub platform_dir: PathBuf,
    pub platform_run_id: String,
    pub source: RunIdSource,
}

fn validate_run_id(id: &str, source_name: &str) -> Result<()> {
    let bad = |reason: &str| StorageError::RunIdInvalid {
        run_id: id.to_string(),
        source_name: source_name.to_string(),
        reason: reason.to_string(),
    };
    if id.is_empty() || id.len() > 200 {
        return Err(bad("must be 1 to 200 characters"));
    }
    if id == "." || id == ".." {
        return Err(bad("must not be . or .."));
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
    {
        return Err(bad(
            "only ASCII letters, digits, '_', '-' and '.' are allowed",
        ));
    }
    Ok(())
}

impl RunLayout {
    /// Resolve the run under `runs_dir/<platform>/`, reading `PLATFORM_RUN_ID` from the
    /// process environment.
    pub fn resolve(runs_dir: &Path, platform: &str) -> Result<Self> {
        let env = std::env::var("PLATFORM_RUN_ID").ok();
        Self::resolve_with(runs_dir, platform, env.as_deref(), now_micros())
    }

    /// Resolution with the environment value and clock passed in (for tests).
    pub fn resolve_with(
        runs_dir: &Path,
        platform: &str,
        env_run_id: Option<&str>,
        now_micros: i64,
    ) -> Result<Self> {
        validate_run_id(platform, "platform name")?;
        let platform_dir = runs_dir.join(platform);
        if let Some(id) = env_run_id.map(str::trim).filter(|s| !s.is_empty()) {
            validate_run_id(id, "PLATFORM_RUN_ID")?;
            return Ok(RunLayout {
                platform_dir,
                platform_run_id: id.to_string(),
                source: RunIdSource::Env,
            });
        }
        let active = platform_dir.join("ACTIVE_RUN_ID");
        match fs::read_to_string(&active) {
            Ok(text) if !text.trim().is_empty() => {
                let id = text.trim();
                validate_run_id(id, &active.display().to_string())?;
                return Ok(RunLayout {
                    platform_dir,
                    platform_run_id: id.to_string(),
                    source: RunIdSource::ActiveFile,
                });
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(StorageError::io(&active, e)),
        }
        Ok(RunLayout {
            platform_dir,
            platform_run_id: format!("platform_{}", format_compact_seconds(now_micros)),
            source: RunIdSource::New,
        })
    }

    /// `runs/<platform>/<platform_run_id>/`.
    pub fn root(&self) -> PathBuf {
        self.platform_dir.join(&self.platform_run_id)
    }
    /// The event bus directory.
    pub fn eb(&self) -> PathBuf {
        self.root().join("eb")
    }
    /// The ingestion gate's state (receipts, dedupe index, quarantine).
    pub fn ig(&self) -> PathBuf {
        self.root().join("ig")
    }
    /// The world streamer's checkpoints.
    pub fn wsp(&self) -> PathBuf {
        self.root().join("wsp")
    }
    /// Logs.
    pub fn logs(&self) -> PathBuf {
        self.root().join("logs")
    }

    /// Create the run directory tree; a newly minted id is recorded in `ACTIVE_RUN_ID`.
    pub fn ensure(&self) -> Result<()> {
        for d in [self.eb(), self.ig(), self.wsp(), self.logs()] {
            fs::create_dir_all(&d).map_err(|e| StorageError::io(&d, e))?;
        }
        if self.source == RunIdSource::New {
            let active = self.platform_dir.join("ACTIVE_RUN_ID");
            write_atomic(&active, format!("{}\n", self.platform_run_id).as_bytes())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_747_801_000_000; // 2026-11-27T02:50:01Z

    #[test]
    fn env_wins_over_active_file() {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir_all(d.path().join("p")).unwrap();
        fs::write(d.path().join("p/ACTIVE_RUN_ID"), "from_file\n").unwrap();
        let r = RunLayout::resolve_with(d.path(), "p", Some("from_env"), NOW).unwrap();
        assert_eq!(r.platform_run_id, "from_env");
        assert_eq!(r.source, RunIdSource::Env);
        assert_eq!(r.root(), d.path().join("p/from_env"));
    }

    #[test]
    fn active_file_used_when_env_unset_or_blank() {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir_all(d.path().join("p")).unwrap();
        fs::write(d.path().join("p/ACTIVE_RUN_ID"), "  run_42 \n").unwrap();
        for env in [None, Some(""), Some("   ")] {
            let r = RunLayout::resolve_with(d.path(), "p", env, NOW).unwrap();
            assert_eq!(r.platform_run_id, "run_42");
            assert_eq!(r.source, RunIdSource::ActiveFile);
        }
    }

    #[test]
    fn new_id_is_minted_from_the_clock_and_recorded() {
        let d = tempfile::tempdir().unwrap();
        let r = RunLayout::resolve_with(d.path(), "p", None, NOW).unwrap();
        assert_eq!(r.platform_run_id, "platform_20261127T025001Z");
        assert_eq!(r.source, RunIdSource::New);
        r.ensure().unwrap();
        assert!(r.eb().is_dir() && r.ig().is_dir() && r.wsp().is_dir());
        // The next resolution finds it in ACTIVE_RUN_ID.
        let again = RunLayout::resolve_with(d.path(), "p", None, NOW + 5_000_000).unwrap();
        assert_eq!(again.platform_run_id, "platform_20261127T025001Z");
        assert_eq!(again.source, RunIdSource::ActiveFile);
    }

    #[test]
    fn hostile_ids_are_refused_with_code() {
        let d = tempfile::tempdir().unwrap();
        for bad in ["../escape", "a/b", "..", "spa ce"] {
            let e = RunLayout::resolve_with(d.path(), "p", Some(bad), NOW).unwrap_err();
            assert_eq!(e.code(), "RUN_ID_INVALID", "{bad}");
        }
    }
}
