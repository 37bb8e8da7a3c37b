//! # sluice-benches
//!
//! The comparative harnesses behind `sluice bench` (sluice side by side with DuckDB, Polars,
//! `dd` and the legacy bus pattern, in the same run, reported as ratios) and the criterion
//! benches of the hot kernels (`benches/`). Benchmarks measure; tests never time anything.
//!
//! Shared by the harnesses: [`proc`] (run and time one contender as a child process),
//! [`cpu`] (CPU time of a child and of everyone else meanwhile), [`machine`] (the facts a
//! report needs about the machine), [`space`] (free disk space before writing gigabytes),
//! [`error`] (the crate's error).
//! One module per harness: [`sort`] (`sluice bench sort`), [`bus`] (`sluice bench bus`),
//! [`replay`] (`sluice bench replay`). [`report`] (`sluice bench report`) runs all three and
//! writes them up as HTML with inline SVG charts, markdown and JSON.

pub mod bus;
pub mod cpu;
pub mod error;
pub mod machine;
pub mod proc;
pub mod replay;
pub mod report;
pub mod rng;
pub mod sort;
pub mod sort_s3;
pub mod space;

pub use error::BenchError;
