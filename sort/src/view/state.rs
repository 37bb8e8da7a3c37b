//! What a view directory holds, and whether an existing receipt matches this build.

use std::fs;
use std::path::Path;

use sluice_storage::object::fs as objfs;
use sluice_storage::view::{StreamSortReceipt, MANIFEST_FILE, RECEIPT_FILE};

use crate::error::{Result, SortError};

/// The state of `<view_root>/output_id=<id>`.
#[derive(Debug)]
pub enum ViewState {
    /// No directory, or an empty one.
    Absent,
    /// A receipt (and whatever else).
    Receipt(Box<StreamSortReceipt>),
    /// A manifest but no receipt.
    ManifestOnly,
    /// Parquet files but neither receipt nor manifest.
    PartsOnly,
    /// Other files only (nothing the rules name); treated as absent but not deleted.
    Other,
}

/// Look at a view directory.
/// Works on local directories and `s3://` prefixes alike (through `sluice_storage::object`).
pub fn inspect(view_dir: &Path) -> Result<ViewState> {
    if !objfs::dir_exists(view_dir)? {
        return Ok(ViewState::Absent);
    }
    let receipt = view_dir.join(RECEIPT_FILE);
    if objfs::exists(&receipt)? {
        let r: StreamSortReceipt = sluice_storage::publish::read_json(&receipt)?;
        return Ok(ViewState::Receipt(Box::new(r)));
    }
    if objfs::exists(&view_dir.join(MANIFEST_FILE))? {
        return Ok(ViewState::ManifestOnly);
    }
    let mut any = false;
    if !sluice_storage::object::is_remote(view_dir) {
        // Locally, directories count as "something there" too.
        any = fs::read_dir(view_dir)
            .map_err(|e| SortError::io(view_dir, e))?
            .next()
            .is_some();
    }
    for path in objfs::list_files(view_dir)? {
        any = true;
        if path.to_string_lossy().ends_with(".parquet") {
            return Ok(ViewState::PartsOnly);
        }
    }
    Ok(if any {
        ViewState::Other
    } else {
        ViewState::Absent
    })
}

/// `Ok(())` if `existing` describes the view this build would make (same view id, same
/// source files, same sort keys, status OK, and every part present with its recorded size);
/// otherwise what differs.
pub fn receipt_matches(
    existing: &StreamSortReceipt,
    expected_view_id: &str,
    expected_locator: &str,
    expected_fingerprint: &str,
    sort_keys: &[String],
    view_dir: &Path,
) -> std::result::Result<(), String> {
    if existing.stream_view_id != expected_view_id {
        return Err(format!(
            "stream_view_id {} != {}",
            existing.stream_view_id, expected_view_id
        ));
    }
    if existing.source_locator_digest != expected_locator {
        return Err(format!(
            "source_locator_digest {} != {} (the source files changed)",
            existing.source_locator_digest, expected_locator
        ));
    }
    // Receipts from other tools carry no fingerprint; then the locator alone decides.
    if !existing.source_fingerprint.is_empty()
        && existing.source_fingerprint != expected_fingerprint
    {
        return Err(format!(
            "source_fingerprint {} != {} (a source file was rewritten since the view was built)",
            existing.source_fingerprint, expected_fingerprint
        ));
    }
    if existing.sort_keys != sort_keys {
        return Err(format!(
            "sort_keys {:?} != {:?}",
            existing.sort_keys, sort_keys
        ));
    }
    if existing.status != "OK" {
        return Err(format!("status {:?}", existing.status));
    }
    for part in &existing.parts {
        let p = view_dir.join(&part.name);
        match objfs::len(&p) {
            Ok(len) if len == part.bytes => {}
            Ok(len) => {
                return Err(format!(
                    "{} is {} bytes, the receipt says {}",
                    part.name, len, part.bytes
                ))
            }
            Err(_) => return Err(format!("{} is missing", part.name)),
        }
    }
    Ok(())
}
