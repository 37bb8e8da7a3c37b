//! # sluice-benches
//!
//! The comparative harnesses behind `sluice bench` (sluice side by side with DuckDB, Polars,
//! `dd` and the legacy bus pattern, in the same run, reported as ratios) and the criterion
//! benches of the hot kernels (`benches/`). Benchmarks measure; tests never time anything.
