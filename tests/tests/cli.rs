//! The CLI's shared conventions, end to end: `--help` lists the subcommands, failures print
//! `error[CODE]: message` and exit non-zero, `--json` output parses, and the run id resolves
//! from PLATFORM_RUN_ID, then ACTIVE_RUN_ID, then a new `platform_…` id.

use sluice_tests::{output, sluice, stderr, stdout};

#[test]
fn help_lists_every_subcommand_with_a_description() {
    let o = output({
        let mut c = sluice!();
        c.arg("--help");
        c
    });
    assert!(o.status.success());
    let text = stdout(&o);
    for sub in ["demo", "gen", "sort", "bus", "bench", "run"] {
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{sub} ")))
            .unwrap_or_else(|| panic!("--help does not list {sub}:\n{text}"));
        assert!(
            line.split_whitespace().count() > 2,
            "{sub} has no description: {line}"
        );
    }
}

#[test]
fn library_errors_print_their_code_and_exit_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = sluice!();
    c.args(["run", "--runs-dir"])
        .arg(dir.path())
        .env("PLATFORM_RUN_ID", "../escape");
    let o = output(c);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.starts_with("error[RUN_ID_INVALID]: "),
        "unexpected stderr: {err}"
    );
    assert!(
        err.contains("../escape"),
        "message names the bad value: {err}"
    );
}

#[test]
fn usage_errors_exit_with_clap_status() {
    let mut c = sluice!();
    c.arg("no-such-command");
    let o = output(c);
    assert_eq!(o.status.code(), Some(2));
}

fn run_json(dir: &std::path::Path, env_id: Option<&str>, create: bool) -> serde_json::Value {
    let mut c = sluice!();
    c.args(["--json", "run", "--runs-dir"]).arg(dir);
    if create {
        c.arg("--create");
    }
    if let Some(id) = env_id {
        c.env("PLATFORM_RUN_ID", id);
    }
    let o = output(c);
    assert!(o.status.success(), "{}", stderr(&o));
    serde_json::from_str(stdout(&o).trim()).expect("--json prints one JSON object")
}

#[test]
fn run_id_resolution_order_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing set: a new id, recorded in ACTIVE_RUN_ID by --create.
    let first = run_json(dir.path(), None, true);
    assert_eq!(first["source"], "new");
    let id = first["platform_run_id"].as_str().unwrap().to_string();
    assert!(
        id.starts_with("platform_") && id.ends_with('Z') && id.len() == 25,
        "{id}"
    );
    assert!(dir
        .path()
        .join("fraud-platform")
        .join(&id)
        .join("eb")
        .is_dir());
    // Next time the active file wins.
    let second = run_json(dir.path(), None, false);
    assert_eq!(second["source"], "active_file");
    assert_eq!(second["platform_run_id"], id.as_str());
    // And the environment wins over both.
    let third = run_json(dir.path(), Some("run_from_env"), false);
    assert_eq!(third["source"], "env");
    assert_eq!(third["platform_run_id"], "run_from_env");
}
