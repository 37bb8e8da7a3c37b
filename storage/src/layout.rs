//! Dataset discovery: which `part-*.parquet` files make up an engine output, from the
//! output's hive path template (`outputs.rs`) or from a user's glob. Paths come back sorted
//! in byte order, which is the order the stream-view contract ties on ("then source file
//! path (byte order)").

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{Result, StorageError};
use crate::object::{is_remote, Remote};
use crate::outputs::{OutputSpec, Pins};

/// The engine run's `run_receipt.json`: the pins every streamed output carries.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EngineRunReceipt {
    pub seed: i64,
    pub manifest_fingerprint: String,
    pub parameter_hash: String,
    pub scenario_id: String,
    /// Outputs the engine wrote (informational).
    #[serde(default)]
    pub outputs: Vec<String>,
    /// Who wrote it (informational).
    #[serde(default)]
    pub producer: String,
}

impl EngineRunReceipt {
    pub const FILE_NAME: &'static str = "run_receipt.json";

    /// Read `<engine_root>/run_receipt.json`.
    pub fn read(engine_root: &Path) -> Result<Self> {
        crate::publish::read_json(&engine_root.join(Self::FILE_NAME))
    }

    pub fn pins(&self) -> Pins {
        Pins {
            seed: self.seed,
            manifest_fingerprint: self.manifest_fingerprint.clone(),
            parameter_hash: self.parameter_hash.clone(),
            scenario_id: self.scenario_id.clone(),
        }
    }
}

fn read_dir_sorted(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| StorageError::io(dir, e))? {
        let entry = entry.map_err(|e| StorageError::io(dir, e))?;
        out.push(entry.path());
    }
    out.sort();
    Ok(out)
}

/// Sort paths in the byte order of their full text (the contract's tie-break order).
pub fn sort_paths_bytewise(paths: &mut [PathBuf]) {
    paths.sort_by(|a, b| {
        a.as_os_str()
            .as_encoded_bytes()
            .cmp(b.as_os_str().as_encoded_bytes())
    });
}

/// The source files of `output_id` under `engine_root`, following its hive template
/// (`seed=*/[parameter_hash=*/]manifest_fingerprint=*/scenario_id=*/part-*.parquet`).
/// `OUTPUT_PATHS_EMPTY` if none exist.
pub fn discover_output(engine_root: &Path, output_id: &str) -> Result<Vec<PathBuf>> {
    let spec = OutputSpec::get(output_id)?;
    let mut levels = vec!["seed="];
    if spec.path_has_parameter_hash {
        levels.push("parameter_hash=");
    }
    levels.extend(["manifest_fingerprint=", "scenario_id="]);
    let base = engine_root.join(spec.dataset_dir);
    if is_remote(&base) {
        return discover_remote(&base, &levels, output_id);
    }
    let mut dirs = vec![base.clone()];
    for prefix in levels {
        let mut next = Vec::new();
        for d in &dirs {
            if !d.is_dir() {
                continue;
            }
            for p in read_dir_sorted(d)? {
                let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
                if p.is_dir() && name.is_some_and(|n| n.starts_with(prefix)) {
                    next.push(p);
                }
            }
        }
        dirs = next;
    }
    let mut files = Vec::new();
    for d in &dirs {
        for p in read_dir_sorted(d)? {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if p.is_file() && name.starts_with("part-") && name.ends_with(".parquet") {
                files.push(p);
            }
        }
    }
    if files.is_empty() {
        return Err(no_parts(output_id, &base));
    }
    sort_paths_bytewise(&mut files);
    Ok(files)
}

/// An output whose dataset directory holds no part files.
fn no_parts(output_id: &str, base: &Path) -> StorageError {
    StorageError::OutputPathsEmpty(format!(
        "no part-*.parquet files for output {output_id} under {}",
        base.display()
    ))
}

/// [`discover_output`] on S3: one recursive listing of the dataset prefix, filtered by the
/// same template (one `<level>*` key component per partition level, then `part-*.parquet`).
fn discover_remote(base: &Path, levels: &[&str], output_id: &str) -> Result<Vec<PathBuf>> {
    let prefix = format!("{}/", base.to_string_lossy().trim_end_matches('/'));
    let mut files = Vec::new();
    for (p, _) in Remote::open(base)?.list()? {
        let text = p.to_string_lossy();
        let Some(rel) = text.strip_prefix(&prefix) else {
            continue;
        };
        let comps: Vec<&str> = rel.split('/').collect();
        let Some((name, dirs)) = comps.split_last() else {
            continue;
        };
        let template =
            dirs.len() == levels.len() && dirs.iter().zip(levels).all(|(d, l)| d.starts_with(l));
        if template && name.starts_with("part-") && name.ends_with(".parquet") {
            files.push(p.clone());
        }
    }
    if files.is_empty() {
        return Err(no_parts(output_id, base));
    }
    sort_paths_bytewise(&mut files);
    Ok(files)
}

/// Whether key components `name` match pattern components `pattern` (`**` spans any
/// number of components, including none).
fn components_match(pattern: &[&str], name: &[&str]) -> bool {
    match pattern.split_first() {
        None => name.is_empty(),
        Some((&"**", rest)) => (0..=name.len()).any(|k| components_match(rest, &name[k..])),
        Some((head, rest)) => match name.split_first() {
            Some((n, tail)) => {
                component_matches(head.as_bytes(), n.as_bytes()) && components_match(rest, tail)
            }
            None => false,
        },
    }
}

/// [`expand_glob`] on S3: list below the pattern's fixed prefix, match the rest.
fn expand_remote(pattern: &str) -> Result<Vec<PathBuf>> {
    let comps: Vec<&str> = pattern.trim_end_matches('/').split('/').collect();
    // `s3:`, ``, bucket: the fixed part always includes the bucket.
    let first_wild = comps
        .iter()
        .position(|c| has_wildcard(c))
        .unwrap_or(comps.len());
    if first_wild < 3 {
        return Err(StorageError::BadGlob {
            pattern: pattern.into(),
            reason: "wildcards in the bucket name".into(),
        });
    }
    let base = PathBuf::from(comps[..first_wild].join("/"));
    let mut files = Vec::new();
    if first_wild == comps.len() {
        // No wildcard: one object, or every *.parquet below a prefix.
        let remote = Remote::open(&base)?;
        if !remote.url.key.is_empty() && remote.exists()? {
            files.push(base);
        } else {
            files.extend(
                remote
                    .list()?
                    .into_iter()
                    .map(|(p, _)| p)
                    .filter(|p| p.to_string_lossy().ends_with(".parquet")),
            );
        }
    } else {
        let rest = &comps[first_wild..];
        let prefix = format!("{}/", base.to_string_lossy());
        for (p, _) in Remote::open(&base)?.list()? {
            let text = p.to_string_lossy().into_owned();
            let Some(rel) = text.strip_prefix(&prefix) else {
                continue;
            };
            let name: Vec<&str> = rel.split('/').collect();
            if components_match(rest, &name) {
                files.push(p);
            }
        }
    }
    Ok(files)
}

/// Match one path component against a pattern with `*` and `?`.
fn component_matches(pattern: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0usize, 0usize);
    let (mut star, mut mark) = (usize::MAX, 0usize);
    while n < name.len() {
        if p < pattern.len() && (pattern[p] == b'?' || pattern[p] == name[n]) {
            p += 1;
            n += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = p;
            mark = n;
            p += 1;
        } else if star != usize::MAX {
            p = star + 1;
            mark += 1;
            n = mark;
        } else {
            return false;
        }
    }
    while p < pattern.len() && pattern[p] == b'*' {
        p += 1;
    }
    p == pattern.len()
}

fn has_wildcard(s: &str) -> bool {
    s.contains('*') || s.contains('?')
}

/// Expand a glob (`*` and `?` within a component, `**` for any depth) to the regular files
/// it matches, sorted bytewise. A pattern without wildcards names one file or a directory
/// (all `*.parquet` below it). `OUTPUT_PATHS_EMPTY` if nothing matches.
pub fn expand_glob(pattern: &str) -> Result<Vec<PathBuf>> {
    if pattern.is_empty() {
        return Err(StorageError::BadGlob {
            pattern: pattern.into(),
            reason: "empty pattern".into(),
        });
    }
    let mut files = Vec::new();
    if is_remote(Path::new(pattern)) {
        files = expand_remote(pattern)?;
    } else if !has_wildcard(pattern) {
        let p = PathBuf::from(pattern);
        if p.is_file() {
            files.push(p);
        } else if p.is_dir() {
            walk(&p, &["**", "*.parquet"], &mut files)?;
        }
    } else {
        let comps: Vec<&str> = pattern.split('/').collect();
        let first_wild = comps.iter().position(|c| has_wildcard(c)).unwrap_or(0);
        let base = glob_base(pattern);
        if base.is_dir() {
            walk(&base, &comps[first_wild..], &mut files)?;
        }
    }
    if files.is_empty() {
        return Err(StorageError::OutputPathsEmpty(format!(
            "no parquet files match --input {pattern}"
        )));
    }
    sort_paths_bytewise(&mut files);
    files.dedup();
    Ok(files)
}

/// The directory a local glob matches under: its components before the first one with a
/// wildcard (`/` or `.` when that is the first), or the whole pattern when it has none.
/// [`expand_glob`] walks from here; nothing outside it can match.
pub fn glob_base(pattern: &str) -> PathBuf {
    let comps: Vec<&str> = pattern.split('/').collect();
    let first_wild = comps
        .iter()
        .position(|c| has_wildcard(c))
        .unwrap_or(comps.len());
    let base = comps[..first_wild].join("/");
    if !base.is_empty() {
        PathBuf::from(base)
    } else if pattern.starts_with('/') {
        PathBuf::from("/")
    } else {
        PathBuf::from(".")
    }
}

fn walk(dir: &Path, rest: &[&str], out: &mut Vec<PathBuf>) -> Result<()> {
    let Some((head, tail)) = rest.split_first() else {
        return Ok(());
    };
    if *head == "**" {
        // Zero levels, then one level deeper with `**` still in force.
        walk(dir, tail, out)?;
        for p in read_dir_sorted(dir)? {
            if p.is_dir() {
                walk(&p, rest, out)?;
            }
        }
        return Ok(());
    }
    for p in read_dir_sorted(dir)? {
        let name = p
            .file_name()
            .map(|n| n.as_encoded_bytes().to_vec())
            .unwrap_or_default();
        if !component_matches(head.as_bytes(), &name) {
            continue;
        }
        if tail.is_empty() {
            if p.is_file() {
                out.push(p);
            }
        } else if p.is_dir() {
            walk(&p, tail, out)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(p: &Path) {
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, b"x").unwrap();
    }

    #[test]
    fn discovers_by_template_sorted_and_ignores_strays() {
        let d = tempfile::tempdir().unwrap();
        let base = d.path().join(
            "data/layer3/6B/s3_event_stream_with_fraud_6B/seed=1/parameter_hash=p/manifest_fingerprint=m/scenario_id=s",
        );
        touch(&base.join("part-00010.parquet"));
        touch(&base.join("part-00002.parquet"));
        touch(&base.join("_SUCCESS"));
        touch(&base.join("notes.txt"));
        let files = discover_output(d.path(), "s3_event_stream_with_fraud_6B").unwrap();
        let names: Vec<_> = files
            .iter()
            .map(|p| p.file_name().unwrap().to_owned())
            .collect();
        assert_eq!(names, ["part-00002.parquet", "part-00010.parquet"]);
    }

    #[test]
    fn empty_output_has_code() {
        let d = tempfile::tempdir().unwrap();
        let e = discover_output(d.path(), "arrival_events_5B").unwrap_err();
        assert_eq!(e.code(), "OUTPUT_PATHS_EMPTY");
    }

    #[test]
    fn glob_matches_components_and_double_star() {
        let d = tempfile::tempdir().unwrap();
        touch(&d.path().join("a/x/f1.parquet"));
        touch(&d.path().join("a/y/z/f2.parquet"));
        touch(&d.path().join("a/y/z/f3.csv"));
        let root = d.path().display().to_string();
        let all = expand_glob(&format!("{root}/a/**/*.parquet")).unwrap();
        assert_eq!(all.len(), 2);
        let one = expand_glob(&format!("{root}/a/?/f*.parquet")).unwrap();
        assert_eq!(one, vec![d.path().join("a/x/f1.parquet")]);
        let dir = expand_glob(&format!("{root}/a")).unwrap();
        assert_eq!(dir.len(), 2);
        let none = expand_glob(&format!("{root}/a/*.nothing")).unwrap_err();
        assert_eq!(none.code(), "OUTPUT_PATHS_EMPTY");
        assert_eq!(
            none.to_string(),
            format!("no parquet files match --input {root}/a/*.nothing")
        );
    }

    #[test]
    fn component_lists_match_double_star() {
        let m = |p: &str, n: &str| {
            let p: Vec<&str> = p.split('/').collect();
            let n: Vec<&str> = n.split('/').collect();
            components_match(&p, &n)
        };
        assert!(m("**/*.parquet", "a.parquet"));
        assert!(m("**/*.parquet", "x/y/a.parquet"));
        assert!(m("seed=*/**/part-*.parquet", "seed=1/m=2/part-0.parquet"));
        assert!(!m("seed=*/*.parquet", "seed=1/m=2/part-0.parquet"));
        assert!(!m("*.parquet", "a.csv"));
    }

    #[test]
    fn glob_base_is_the_literal_directory() {
        assert_eq!(glob_base("/d/x/*.parquet"), PathBuf::from("/d/x"));
        assert_eq!(glob_base("/d/**/p?.parquet"), PathBuf::from("/d"));
        assert_eq!(glob_base("/**/*.parquet"), PathBuf::from("/"));
        assert_eq!(glob_base("*.parquet"), PathBuf::from("."));
        assert_eq!(glob_base("/d/x"), PathBuf::from("/d/x"));
    }

    #[test]
    fn component_matcher() {
        assert!(component_matches(b"part-*.parquet", b"part-000.parquet"));
        assert!(!component_matches(
            b"part-*.parquet",
            b"part-000.parquet.tmp"
        ));
        assert!(component_matches(b"*", b""));
        assert!(component_matches(b"a?c", b"abc"));
        assert!(!component_matches(b"a?c", b"ac"));
    }
}
