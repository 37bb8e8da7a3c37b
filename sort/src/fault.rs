//! Fault injection for the end-to-end tests, driven by the environment variable
//! `SLUICE_SORT_FAULT` (comma-separated items). Never set in production; unset, every
//! check is one lookup of a cached empty list.
//!
//! - `drop-view-row`: phase 2 leaves the last row of the first row group out of the view,
//!   so validation must fail (`STREAM_SORT_VALIDATION_FAILED`) and nothing be published;
//! - `pause-<point>=<ms>`: sleep at a named point (`after-phase1`, `before-publish`,
//!   `after-swap`; for S3 views `s3-after-part`, after each uploaded part, and
//!   `read-row-group`, before each row group is read) so a test can `SIGKILL` the process
//!   there or stop the server under it.

use std::sync::OnceLock;

fn items() -> &'static [String] {
    static ITEMS: OnceLock<Vec<String>> = OnceLock::new();
    ITEMS.get_or_init(|| {
        std::env::var("SLUICE_SORT_FAULT")
            .map(|v| v.split(',').map(|s| s.trim().to_string()).collect())
            .unwrap_or_default()
    })
}

/// Whether fault `name` is requested.
pub fn active(name: &str) -> bool {
    items().iter().any(|i| i == name)
}

/// Sleep if `pause-<point>=<ms>` is requested.
pub fn pause(point: &str) {
    let prefix = format!("pause-{point}=");
    for item in items() {
        if let Some(ms) = item
            .strip_prefix(&prefix)
            .and_then(|v| v.parse::<u64>().ok())
        {
            std::thread::sleep(std::time::Duration::from_millis(ms));
        }
    }
}
