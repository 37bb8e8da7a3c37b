//! The `sluice` binary: everything lives in the `sluice` library (`lib.rs`).

fn main() -> std::process::ExitCode {
    sluice::main()
}
