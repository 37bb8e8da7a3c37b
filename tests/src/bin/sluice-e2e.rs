//! The `sluice` CLI, built inside the tests package for the end-to-end tests.

fn main() -> std::process::ExitCode {
    sluice::main()
}
