//! `sluice parity legacy`: a view against a reference parquet file, row by row
//! ([`sluice_sort::parity::legacy::compare_with_reference`]).

use std::path::PathBuf;

use sluice_sort::parity::legacy::compare_with_reference;

use crate::cli::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The view directory (`.../output_id=<id>`) or one parquet file.
    #[arg(long)]
    pub view: PathBuf,
    /// The reference parquet file, e.g. from DuckDB:
    /// COPY (SELECT * FROM read_parquet('…/*.parquet', filename=true, file_row_number=true)
    /// ORDER BY CAST(ts_utc AS TIMESTAMP), filename, file_row_number) TO 'ref.parquet'
    /// (drop the helper columns in the SELECT, or they count as extra columns).
    #[arg(long)]
    pub reference: PathBuf,
}

struct Bar(indicatif::ProgressBar);

impl sluice_sort::Progress for Bar {
    fn advance(&self, n: u64) {
        self.0.inc(n);
    }
}

pub fn run(args: Args, ctx: &Ctx) -> anyhow::Result<()> {
    let bar = Bar(crate::progress::bar(ctx, 0, "legacy", "rows"));
    let r = compare_with_reference(&args.view, &args.reference, &bar);
    bar.0.finish_and_clear();
    let r = r?;
    let value = serde_json::to_value(&r)?;
    ctx.emit(&value, || {
        let mut s = format!(
            "{} {} vs {}: {} view rows, {} reference rows, {} columns compared, {:.2} s\n",
            if r.ok { "PASS" } else { "FAIL" },
            r.view.display(),
            r.reference.display(),
            r.view_rows,
            r.reference_rows,
            r.compared_columns.len(),
            r.elapsed_s
        );
        s.push_str(&super::check_table(&r.checks));
        if let Some(d) = &r.first_difference {
            s.push_str(&format!(
                "\nfirst difference: row {} column {}\n  view:      {}\n  reference: {}",
                d.row, d.column, d.view_value, d.reference_value
            ));
        }
        s
    });
    super::verdict("the legacy comparison", super::failed_checks(&r.checks))
}
