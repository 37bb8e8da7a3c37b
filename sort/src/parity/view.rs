//! `sluice parity view`: one stream view against its source files, its receipt and its
//! manifest, everything recomputed from the files.
//!
//! 1. Find the source files exactly as the sort does ([`SortSource::engine_output`]) and the
//!    view's parts on disk (`part-*.parquet`, name order); read the receipt and manifest
//!    (a missing or unreadable one is a failed check, and the rest still runs).
//! 2. Scan the source and the view ([`super::scan`]): rows, digest, time range, and in the
//!    view, every backwards step in time across all rows, row groups and parts.
//! 3. blake3 and size of every part, in parallel.
//! 4. Compare: source vs view, receipt vs recomputed, manifest vs receipt, parts on disk vs
//!    parts listed.
//!
//! ```text
//!  source files ─► scan ─┐
//!  view parts   ─► scan ─┼─► checks ─► ViewParity { checks: [Check] }
//!  parts ─► blake3 ∥  ───┤
//!  receipt, manifest ────┘
//! ```
//!
//! What the order check can and cannot see: the view has no file or row columns, so only
//! the first key (time, non-decreasing over the whole view) is checked here. Rows with
//! equal times may still be in the wrong file/row order; the digest proves they are the
//! right rows, and `sluice parity legacy` checks the tie order against a reference sort.
//!
//! Roots may be local or `s3://` ([`sluice_storage::object`]): listing, existence and
//! whole-file reads go through `object::fs` (local: the same `std::fs` calls as before).

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

use rayon::prelude::*;
use sluice_storage::digest::RowDigest;
use sluice_storage::object::{fs as objfs, is_remote};
use sluice_storage::view::{
    default_view_root, hex, source_locator_digest, stream_view_id, view_dir, PartInfo, SideStats,
    StreamSortReceipt, StreamViewManifest, MANIFEST_FILE, RECEIPT_FILE,
};

use super::scan::{footer_rows, read_footers, scan_files, ScanSummary};
use super::{time_text, Check};
use crate::error::{Result, SortError};
use crate::key::parse_time_str;
use crate::{Progress, SortSource};

/// Which view to check.
#[derive(Debug, Clone)]
pub struct ViewParityOptions {
    pub engine_root: PathBuf,
    /// Default `<engine_root>/stream_view/ts_utc`.
    pub view_root: Option<PathBuf>,
    pub output_id: String,
}

/// The checks of one view.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ViewParity {
    pub output_id: String,
    pub view_dir: PathBuf,
    pub source_files: usize,
    pub source_rows: u64,
    pub view_rows: u64,
    pub parts: usize,
    pub elapsed_s: f64,
    pub ok: bool,
    pub checks: Vec<Check>,
}

/// One part file on disk.
#[derive(Debug, Clone)]
struct DiskPart {
    name: String,
    path: PathBuf,
    bytes: u64,
    blake3: String,
}

fn digest_text(d: &RowDigest) -> String {
    format!(
        "{} rows, sum {:032x}, xor {:032x}",
        d.row_count, d.sum, d.xor
    )
}

fn stats_digest_text(s: &SideStats) -> String {
    format!(
        "{} rows, sum {}, xor {}",
        s.row_count, s.row_hash_sum, s.row_hash_xor
    )
}

/// A receipt time back to micros (receipts may come from other tools: parse, don't match
/// text).
fn receipt_time(t: &Option<String>) -> Option<i64> {
    t.as_deref().and_then(parse_time_str)
}

fn parts_on_disk(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    if !objfs::dir_exists(dir)? {
        return Ok(out);
    }
    for path in objfs::list_files(dir)? {
        // S3 listings are recursive: only the view directory's own parts count.
        if path.parent() != Some(dir) {
            continue;
        }
        let Some(name) = path.file_name().map(|n| n.to_string_lossy().into_owned()) else {
            continue;
        };
        if name.starts_with("part-") && name.ends_with(".parquet") {
            out.push((name, path));
        }
    }
    out.sort();
    Ok(out)
}

/// Size and blake3 of a part: streamed from a local file, or one GET of an S3 object.
fn blake3_file(path: &Path) -> Result<(u64, String)> {
    if is_remote(path) {
        let bytes = objfs::read(path)?;
        return Ok((bytes.len() as u64, hex(blake3::hash(&bytes).as_bytes())));
    }
    let mut f = File::open(path).map_err(|e| SortError::io(path, e))?;
    let mut h = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut bytes = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(|e| SortError::io(path, e))?;
        if n == 0 {
            break;
        }
        bytes += n as u64;
        h.update(&buf[..n]);
    }
    Ok((bytes, hex(h.finalize().as_bytes())))
}

fn read_optional<T: serde::de::DeserializeOwned>(
    path: &Path,
    name: &str,
    checks: &mut Vec<Check>,
) -> Option<T> {
    // An error asking (S3 unreachable) is not "missing": the read below reports it.
    if matches!(objfs::exists(path), Ok(false)) {
        checks.push(Check::verdict(
            name,
            false,
            "present",
            "missing",
            path.display(),
        ));
        return None;
    }
    match sluice_storage::publish::read_json::<T>(path) {
        Ok(v) => {
            checks.push(Check::verdict(name, true, "present", "present", ""));
            Some(v)
        }
        Err(e) => {
            checks.push(Check::verdict(
                name,
                false,
                "readable JSON",
                e.to_string(),
                path.display(),
            ));
            None
        }
    }
}

/// Check one view (see the module doc).
pub fn check_view(opts: &ViewParityOptions, progress: &dyn Progress) -> Result<ViewParity> {
    let started = Instant::now();
    // Step 1.
    let source = SortSource::engine_output(
        &opts.engine_root,
        &opts.output_id,
        opts.view_root.as_deref(),
    )?;
    let view_root = opts
        .view_root
        .clone()
        .unwrap_or_else(|| default_view_root(Path::new(&source.engine_root_string())));
    let dir = view_dir(&view_root, &opts.output_id);
    let mut checks = Vec::new();
    let receipt: Option<StreamSortReceipt> =
        read_optional(&dir.join(RECEIPT_FILE), "receipt_present", &mut checks);
    let manifest: Option<StreamViewManifest> =
        read_optional(&dir.join(MANIFEST_FILE), "manifest_present", &mut checks);
    let sort_key = receipt
        .as_ref()
        .and_then(|r| r.sort_keys.first().cloned())
        .unwrap_or_else(|| "ts_utc".to_string());
    let disk = parts_on_disk(&dir)?;
    let part_paths: Vec<PathBuf> = disk.iter().map(|(_, p)| p.clone()).collect();

    // Step 2.
    // Footers are read once: their row counts size the progress bar, then the scans use them.
    let src_footers = read_footers(&source.files)?;
    let view_footers = read_footers(&part_paths)?;
    progress.phase(
        "parity",
        footer_rows(&src_footers) + footer_rows(&view_footers),
    );
    let advance = |n: u64| progress.advance(n);
    let src = scan_files(&source.files, src_footers, &sort_key, &advance)?;
    let view = if part_paths.is_empty() {
        ScanSummary::default()
    } else {
        scan_files(&part_paths, view_footers, &sort_key, &advance)?
    };

    // Step 3.
    let hashed: Vec<DiskPart> = disk
        .par_iter()
        .map(|(name, path)| {
            let (bytes, blake3) = blake3_file(path)?;
            Ok(DiskPart {
                name: name.clone(),
                path: path.clone(),
                bytes,
                blake3,
            })
        })
        .collect::<Result<_>>()?;

    // Step 4.
    compare_data(&src, &view, &hashed, &mut checks);
    if let Some(r) = &receipt {
        compare_receipt(r, &source, &src, &view, &mut checks);
        compare_parts(&r.parts, &hashed, &view, &mut checks);
        if let Some(m) = &manifest {
            compare_manifest(r, m, &view, &mut checks);
        }
    }
    Ok(ViewParity {
        output_id: opts.output_id.clone(),
        view_dir: dir,
        source_files: source.files.len(),
        source_rows: src.digest.row_count,
        view_rows: view.digest.row_count,
        parts: hashed.len(),
        elapsed_s: started.elapsed().as_secs_f64(),
        ok: checks.iter().all(|c| c.ok),
        checks,
    })
}

/// Source against view: rows, digest, time range; the view's order.
fn compare_data(src: &ScanSummary, view: &ScanSummary, parts: &[DiskPart], out: &mut Vec<Check>) {
    let rows_place = || {
        let per_part: Vec<String> = parts
            .iter()
            .zip(&view.files)
            .map(|(p, f)| format!("{} {}", p.name, f.rows))
            .collect();
        format!("view rows per part: {}", per_part.join(", "))
    };
    out.push(Check::equal(
        "row_count",
        src.digest.row_count,
        view.digest.row_count,
        rows_place,
    ));
    out.push(Check::equal(
        "digest",
        digest_text(&src.digest),
        digest_text(&view.digest),
        || "the view's rows are not the source's rows (a row lost, added or changed)".into(),
    ));
    out.push(Check::equal(
        "min_ts",
        time_text(src.min),
        time_text(view.min),
        || "view".into(),
    ));
    out.push(Check::equal(
        "max_ts",
        time_text(src.max),
        time_text(view.max),
        || "view".into(),
    ));
    let place = view.first_step_back.map_or_else(String::new, |s| {
        let part = parts.get(s.at.file).map_or("?", |p| p.name.as_str());
        format!(
            "{part} row {}: {} after {} (first of {} backwards steps)",
            s.at.row,
            time_text(Some(s.ts)),
            time_text(Some(s.prev_ts)),
            view.steps_back
        )
    });
    out.push(Check::verdict(
        "order",
        view.steps_back == 0,
        "0 backwards steps",
        format!("{} backwards steps", view.steps_back),
        place,
    ));
}

/// The receipt's fields against what the files say.
fn compare_receipt(
    r: &StreamSortReceipt,
    source: &SortSource,
    src: &ScanSummary,
    view: &ScanSummary,
    out: &mut Vec<Check>,
) {
    let receipt_place = || RECEIPT_FILE.to_string();
    out.push(Check::equal(
        "receipt_status",
        "OK",
        &r.status,
        receipt_place,
    ));
    out.push(Check::equal(
        "receipt_output_id",
        &source.output_id,
        &r.output_id,
        receipt_place,
    ));
    out.push(Check::equal(
        "receipt_granularity",
        sluice_storage::view::GRANULARITY_FLAT,
        &r.partition_granularity,
        receipt_place,
    ));
    out.push(Check::equal(
        "receipt_engine_run_root",
        source.engine_root_string(),
        &r.engine_run_root,
        receipt_place,
    ));
    let id = stream_view_id(
        &source.engine_root_string(),
        &source.scenario_id,
        &source.output_id,
        &r.sort_keys,
        &r.partition_granularity,
    );
    out.push(Check::equal(
        "receipt_stream_view_id",
        id,
        &r.stream_view_id,
        receipt_place,
    ));
    let paths = source.path_strings();
    out.push(Check::equal(
        "receipt_source_locator_digest",
        source_locator_digest(&paths),
        &r.source_locator_digest,
        receipt_place,
    ));
    // Same files, same order: the first index where the lists part, if any.
    let first_diff =
        (0..paths.len().max(r.source_paths.len())).find(|&i| paths.get(i) != r.source_paths.get(i));
    let show = |p: Option<&String>| p.map_or("(none)".to_string(), Clone::clone);
    out.push(Check::verdict(
        "receipt_source_paths",
        first_diff.is_none(),
        format!("{} files", paths.len()),
        format!("{} files in the receipt", r.source_paths.len()),
        first_diff.map_or_else(String::new, |i| {
            format!(
                "source file {i}: found {}, receipt lists {}",
                show(paths.get(i)),
                show(r.source_paths.get(i))
            )
        }),
    ));
    for (name, side, stats) in [
        ("receipt_raw_stats", src, &r.raw_stats),
        ("receipt_sorted_stats", view, &r.sorted_stats),
    ] {
        out.push(Check::equal(
            &format!("{name}.digest"),
            stats_digest_text(stats),
            digest_text(&side.digest),
            receipt_place,
        ));
        let range =
            |a: Option<i64>, b: Option<i64>| format!("{} .. {}", time_text(a), time_text(b));
        out.push(Check::equal(
            &format!("{name}.time_range"),
            range(
                receipt_time(&stats.min_ts_utc),
                receipt_time(&stats.max_ts_utc),
            ),
            range(side.min, side.max),
            receipt_place,
        ));
    }
}

/// Parts listed in the receipt against the part files on disk.
fn compare_parts(listed: &[PartInfo], disk: &[DiskPart], view: &ScanSummary, out: &mut Vec<Check>) {
    let listed_names: Vec<&str> = listed.iter().map(|p| p.name.as_str()).collect();
    let disk_names: Vec<&str> = disk.iter().map(|p| p.name.as_str()).collect();
    let missing: Vec<&str> = listed_names
        .iter()
        .filter(|n| !disk_names.contains(n))
        .copied()
        .collect();
    let extra: Vec<&str> = disk_names
        .iter()
        .filter(|n| !listed_names.contains(n))
        .copied()
        .collect();
    let numbered = disk_names
        .iter()
        .enumerate()
        .all(|(i, n)| *n == sluice_storage::view::part_name(i));
    out.push(Check::verdict(
        "parts_listed",
        missing.is_empty() && extra.is_empty() && numbered,
        format!("{} parts in the receipt", listed.len()),
        format!("{} part files", disk.len()),
        format!(
            "missing: [{}], not in the receipt: [{}]{}",
            missing.join(", "),
            extra.join(", "),
            if numbered { "" } else { ", numbering has gaps" }
        ),
    ));
    let mut rows = PartSums::default();
    let mut bytes = PartSums::default();
    let mut blake = (0usize, Vec::new());
    let mut range = (0usize, Vec::new());
    for (i, d) in disk.iter().enumerate() {
        let Some(p) = listed.iter().find(|p| p.name == d.name) else {
            continue;
        };
        let f = view.files.get(i).cloned().unwrap_or_default();
        rows.add(&d.name, p.row_count, f.rows);
        bytes.add(&d.name, p.bytes, d.bytes);
        if p.blake3 == d.blake3 {
            blake.0 += 1;
        } else {
            blake.1.push(format!("{} ({})", d.name, d.path.display()));
        }
        if (receipt_time(&p.min_ts_utc), receipt_time(&p.max_ts_utc)) == (f.min, f.max) {
            range.0 += 1;
        } else {
            range.1.push(format!(
                "{}: receipt {} .. {}, file {} .. {}",
                d.name,
                time_text(receipt_time(&p.min_ts_utc)),
                time_text(receipt_time(&p.max_ts_utc)),
                time_text(f.min),
                time_text(f.max)
            ));
        }
    }
    out.push(rows.check("part_rows"));
    out.push(bytes.check("part_bytes"));
    out.push(Check::verdict(
        "part_blake3",
        blake.1.is_empty(),
        format!("{} parts", disk.len()),
        format!("{} match", blake.0),
        format!("differs: {}", blake.1.join(", ")),
    ));
    out.push(Check::verdict(
        "part_time_range",
        range.1.is_empty(),
        format!("{} parts", disk.len()),
        format!("{} match", range.0),
        range.1.first().cloned().unwrap_or_default(),
    ));
}

/// One per-part number (rows, bytes) summed over the receipt's parts and over their files,
/// and the parts where the two differ.
#[derive(Default)]
struct PartSums {
    listed: u64,
    disk: u64,
    differs: Vec<String>,
}

impl PartSums {
    fn add(&mut self, part: &str, listed: u64, disk: u64) {
        self.listed += listed;
        self.disk += disk;
        if listed != disk {
            self.differs
                .push(format!("{part}: receipt {listed}, file {disk}"));
        }
    }

    /// Passes when no part differs; the place is the first part that does.
    fn check(self, name: &str) -> Check {
        let first = self.differs.first().cloned().unwrap_or_default();
        Check::verdict(name, self.differs.is_empty(), self.listed, self.disk, first)
    }
}

/// The manifest against the receipt and the view.
fn compare_manifest(
    r: &StreamSortReceipt,
    m: &StreamViewManifest,
    view: &ScanSummary,
    out: &mut Vec<Check>,
) {
    let place = || MANIFEST_FILE.to_string();
    out.push(Check::equal(
        "manifest_stream_view_id",
        &r.stream_view_id,
        &m.stream_view_id,
        place,
    ));
    out.push(Check::equal(
        "manifest_row_count",
        view.digest.row_count,
        m.row_count,
        place,
    ));
    let first = r
        .parts
        .iter()
        .zip(&m.parts)
        .find(|(a, b)| a != b)
        .map(|(a, _)| a.name.clone());
    out.push(Check::verdict(
        "manifest_parts",
        r.parts == m.parts,
        format!("{} parts in the receipt", r.parts.len()),
        format!("{} parts in the manifest", m.parts.len()),
        format!(
            "{MANIFEST_FILE}: {}",
            first.unwrap_or_else(|| "part lists differ in length".into())
        ),
    ));
}
