//! # sluice-tests
//!
//! End-to-end tests of the `sluice` binary: they run it as a child process on generated
//! data and check files, exit codes and printed codes. The tests are in `tests/`; this
//! library holds what they share.
//!
//! Cargo tells integration tests (not libraries) where a package's binary is, so tests get
//! the CLI through the [`sluice!`] macro, which expands in the test crate.

use std::path::Path;
use std::process::{Command, Output};

/// A `Command` for the CLI built in this package, with a clean, quiet environment.
#[macro_export]
macro_rules! sluice {
    () => {
        $crate::command(env!("CARGO_BIN_EXE_sluice-e2e"))
    };
}

/// A `Command` for the CLI at `bin` with a clean, quiet environment.
pub fn command(bin: impl AsRef<Path>) -> Command {
    let mut c = Command::new(bin.as_ref());
    c.env_remove("PLATFORM_RUN_ID").env("RUST_LOG", "warn");
    c
}

/// Run a command to completion; return its output.
pub fn output(mut c: Command) -> Output {
    c.output().expect("spawn sluice")
}

/// Stdout as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
