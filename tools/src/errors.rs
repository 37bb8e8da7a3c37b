//! Mapping library errors to the stable codes the CLI prints (`error[CODE]: message`).
//!
//! Each library crate has one error enum with a `code()`; this walks the `anyhow` chain and
//! returns the first code it finds. Codes never change meaning (`docs/errors.md`).

/// A CLI-level failure with a stable code (bad flag combinations and the like).
#[derive(Debug)]
pub struct CliError {
    pub code: &'static str,
    pub message: String,
}

impl std::error::Error for CliError {}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl CliError {
    /// Build the error already boxed as `anyhow::Error`, which is what commands return.
    #[allow(clippy::new_ret_no_self)]
    pub fn new(code: &'static str, message: impl Into<String>) -> anyhow::Error {
        anyhow::Error::new(CliError {
            code,
            message: message.into(),
        })
    }
}

/// The stable code of the first coded error in the chain, or `INTERNAL`.
pub fn code_of(err: &anyhow::Error) -> &'static str {
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<CliError>() {
            return e.code;
        }
        if let Some(e) = cause.downcast_ref::<sluice_storage::StorageError>() {
            return e.code();
        }
        if let Some(e) = cause.downcast_ref::<sluice_sort::SortError>() {
            return e.code();
        }
        if let Some(e) = cause.downcast_ref::<sluice_bus::BusError>() {
            return e.code();
        }
        if let Some(e) = cause.downcast_ref::<sluice_stream::ReplayError>() {
            return e.code();
        }
        if let Some(e) = cause.downcast_ref::<sluice_ingest::IngestError>() {
            return e.code();
        }
    }
    "INTERNAL"
}

/// The message: the outermost context followed by its causes.
pub fn render(err: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in err.chain() {
        let s = cause.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
    }
    parts.join(": ")
}

/// Exit status: 2 for usage errors, 1 for everything else.
pub fn exit_status(code: &str) -> u8 {
    match code {
        "USAGE" | "INVALID_ARGUMENT" => 2,
        _ => 1,
    }
}
