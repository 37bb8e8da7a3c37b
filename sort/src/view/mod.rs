//! The view directory's life cycle: what is there, who may build, and atomic publication.
//!
//! ```text
//!  <view_root>/
//!    output_id=<id>/                      the published view (parts, receipt, manifest)
//!    .output_id=<id>.lock                 flock: one builder per view at a time
//!    .output_id=<id>.staging-<pid>        a build in progress (never read by anyone)
//!    .output_id=<id>.trash-<pid>          the old view during a non-atomic replacement
//! ```
//!
//! Rules (fail-closed, `shared/CONTEXT.md`): a receipt that matches this build means the view
//! is done (skip); a receipt that does not match fails `STREAM_RECEIPT_MISMATCH`; a manifest
//! without a receipt fails `STREAM_RECEIPT_MISSING`; parquet without a receipt fails
//! `STREAM_VIEW_PARTIAL_EXISTS`. `--force` rebuilds in all these cases.
//!
//! Crash safety: a build writes everything (parts, then receipt, then manifest) into its
//! staging directory, fsyncs it, and publishes with one rename. Replacing an existing view
//! swaps the two directories with `renameat2(RENAME_EXCHANGE)`; where the filesystem lacks
//! it, the old view is renamed to a trash name first and the new one into place second. The
//! next build (holding the lock) first restores a trash directory if the view itself is
//! missing (a crash between the two renames), then deletes every staging and trash
//! leftover. So after a crash at any point a reader sees the old view or the whole new one.

mod publish;
mod state;

pub use publish::{canonical_view_root, publish, staging_dir, ViewLock};
pub use state::{inspect, receipt_matches, ViewState};
