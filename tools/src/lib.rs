//! # sluice (the binary)
//!
//! The command-line face of sluice. It is deliberately thin: it parses arguments, calls the
//! library crates (`sluice-storage`, `sluice-sort`, `sluice-bus`, ...) and prints. Every
//! command's work is a library call that tests and other programs can make too.
//!
//! Conventions every command keeps:
//! - failures print `error[CODE]: message` on stderr and exit non-zero; `CODE` is the stable
//!   code of the library error (see `docs/errors.md`), `INTERNAL` if none applies;
//! - `--json` prints one machine-readable JSON summary on stdout instead of human text;
//! - progress bars appear only when stderr is a terminal and `--json` is off;
//! - logs go to stderr through `tracing`, filtered by `RUST_LOG` (default `warn`).

pub mod cli;
pub mod cmd;
pub mod errors;
pub mod progress;

use std::process::ExitCode;

use clap::Parser;

/// The whole CLI: parse `std::env::args`, run, print errors with their codes.
pub fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    init_tracing();
    cli.object_store.install();
    let ctx = cli::Ctx { json: cli.json };
    match cmd::run(cli.command, &ctx) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let code = errors::code_of(&err);
            eprintln!("error[{code}]: {}", errors::render(&err));
            ExitCode::from(errors::exit_status(code))
        }
    }
}

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}
