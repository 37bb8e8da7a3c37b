//! Development driver (temporary): sort or copy an engine output with the library directly.
fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let a: Vec<String> = std::env::args().collect();
    let root = std::path::Path::new(&a[1]);
    let view = std::path::Path::new(&a[2]);
    let floor = a.get(3).is_some_and(|s| s == "floor");
    let threads = a.get(4).and_then(|s| s.parse().ok());
    let source =
        sluice_sort::SortSource::engine_output(root, "s3_event_stream_with_fraud_6B", Some(view))
            .unwrap();
    let cfg = sluice_sort::SortConfig {
        force: true,
        threads,
        ..Default::default()
    };
    let t = std::time::Instant::now();
    let r = if floor {
        sluice_sort::copy_floor(&cfg, &source, &sluice_sort::NoProgress)
    } else {
        sluice_sort::build_view(&cfg, &source, &sluice_sort::NoProgress)
    };
    println!(
        "{:?} {:.2}s",
        r.map(|r| (r.rows, r.runs, r.spilled_bytes)),
        t.elapsed().as_secs_f64()
    );
}
