//! The python contenders' side: whether `duckdb`/`polars` import, and the scripts that run
//! them. The scripts are compiled into the binary and written into the scratch directory at
//! run time, so `sluice bench sort` works from any directory and any install.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::BenchError;
use crate::proc;

/// `benches/scripts/duckdb_sort.py`: the platform's legacy query, verbatim.
pub const DUCKDB_SCRIPT: &str = include_str!("../../scripts/duckdb_sort.py");
/// `benches/scripts/polars_sort.py`: the closest faithful Polars equivalent.
pub const POLARS_SCRIPT: &str = include_str!("../../scripts/polars_sort.py");

/// A python module is importable (with its version) or not (with the reason).
#[derive(Debug, Clone, PartialEq)]
pub enum ModuleProbe {
    Available { version: String },
    Missing { reason: String },
}

/// Try `python -c "import MODULE; print(MODULE.__version__)"`.
pub fn probe_module(python: &Path, module: &str) -> ModuleProbe {
    let code = format!("import {module}; print({module}.__version__)");
    let mut cmd = Command::new(python);
    cmd.args(["-c", &code]);
    match proc::run_measured(&mut cmd) {
        Ok(run) if run.success => ModuleProbe::Available {
            version: run.stdout.trim().to_string(),
        },
        Ok(run) => ModuleProbe::Missing {
            reason: format!(
                "python module {module} is not importable with {}: {}",
                python.display(),
                last_line(&run.stderr)
            ),
        },
        Err(e) => ModuleProbe::Missing {
            reason: e.to_string(),
        },
    }
}

fn last_line(text: &str) -> &str {
    text.trim_end().lines().last().unwrap_or("")
}

/// The scripts, written under `dir`: `(duckdb_sort.py, polars_sort.py)`.
pub fn write_scripts(dir: &Path) -> Result<(PathBuf, PathBuf), BenchError> {
    std::fs::create_dir_all(dir).map_err(|e| BenchError::io(dir, e))?;
    let duck = dir.join("duckdb_sort.py");
    let polars = dir.join("polars_sort.py");
    for (path, text) in [(&duck, DUCKDB_SCRIPT), (&polars, POLARS_SCRIPT)] {
        std::fs::write(path, text).map_err(|e| BenchError::io(path, e))?;
    }
    Ok((duck, polars))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_module_or_interpreter_is_a_reason_not_an_error() {
        let p = probe_module(Path::new("/nonexistent/python3"), "duckdb");
        assert!(matches!(p, ModuleProbe::Missing { .. }));
        // `false` exits non-zero like a python that lacks the module.
        let p = probe_module(Path::new("false"), "duckdb");
        assert!(matches!(p, ModuleProbe::Missing { .. }));
    }

    #[test]
    fn scripts_print_peak_rss_and_rows() {
        for s in [DUCKDB_SCRIPT, POLARS_SCRIPT] {
            assert!(s.contains("ru_maxrss * 1024"));
            assert!(s.contains("\"rows\""));
        }
        // The legacy query, with the sort key as a parameter whose default is `ts_utc`.
        assert!(DUCKDB_SCRIPT
            .contains("ORDER BY CAST({sql_ident(key)} AS TIMESTAMP), filename, file_row_number)"));
        assert!(DUCKDB_SCRIPT.contains("def legacy_query(files, out, key=\"ts_utc\"):"));
        for s in [DUCKDB_SCRIPT, POLARS_SCRIPT] {
            assert!(s.contains("parser.add_argument(\"--sort-key\", default=\"ts_utc\")"));
        }
    }
}
