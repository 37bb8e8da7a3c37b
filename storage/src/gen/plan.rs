//! Planning a generation run: validate the configuration, derive the pins from the seed,
//! plan the world, and cut every output into files and row groups. Cheap (a couple of
//! hashes per flow), so callers may plan first to size a progress bar.

use std::path::PathBuf;

use arrow_schema::{Schema, SchemaRef};
use sha2::{Digest, Sha256};

use crate::error::{Result, StorageError};
use crate::gen::arrival_events::EMITTED_OPTIONAL;
use crate::gen::context::ContextKind;
use crate::gen::world::World;
use crate::gen::GenConfig;
use crate::outputs::{OutputSpec, Pins, Presence};

/// The scenario every generated run claims.
pub const SCENARIO_ID: &str = "baseline_v1";

/// A planned run: what will be written where. Build it with [`crate::gen::plan`], write it
/// with [`crate::gen::execute`].
#[derive(Debug)]
pub struct GenPlan {
    pub(crate) cfg: GenConfig,
    pub(crate) world: World,
    pub pins: Pins,
    /// The 5B `routing_universe_hash` of the run.
    pub routing_universe_hash: String,
    pub outputs: Vec<OutputPlan>,
}

impl GenPlan {
    /// Rows over all outputs (the progress callback's total).
    pub fn total_rows(&self) -> u64 {
        self.outputs.iter().map(|o| o.rows).sum()
    }

    /// The run root the plan writes under.
    pub fn out(&self) -> &std::path::Path {
        &self.cfg.out
    }
}

/// Which generator writes an output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    EventStream { fraud: bool },
    Context(ContextKind),
    ArrivalEvents,
}

/// One output of a planned run.
#[derive(Debug)]
pub struct OutputPlan {
    pub spec: &'static OutputSpec,
    pub(crate) kind: Kind,
    /// The columns written (for 5B: the required ones plus [`EMITTED_OPTIONAL`]).
    pub schema: SchemaRef,
    /// `<partition_dir>` relative to the run root (from `OutputSpec::partition_dir`).
    pub partition_dir: String,
    /// Flow (= arrival) index range of each file, in file order.
    pub(crate) ranges: Vec<(u64, u64)>,
    pub rows: u64,
    pub row_group_rows: usize,
}

impl OutputPlan {
    pub fn files(&self) -> usize {
        self.ranges.len()
    }

    /// `part-NNNNN.parquet` for file `k`.
    pub fn file_name(k: usize) -> String {
        format!("part-{k:05}.parquet")
    }
}

/// The columns the generator writes for `spec`, in catalog order, typed and nullable as
/// `OutputSpec::arrow_schema` says.
pub fn emitted_schema(spec: &OutputSpec) -> SchemaRef {
    let full = spec.arrow_schema(true);
    let keep: Vec<_> = spec
        .all_columns()
        .zip(full.fields().iter())
        .filter(|(c, _)| c.presence != Presence::Optional || EMITTED_OPTIONAL.contains(&c.name))
        .map(|(_, f)| f.clone())
        .collect();
    std::sync::Arc::new(Schema::new(keep))
}

fn sha256_hex(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    let mut s = String::with_capacity(64);
    for b in digest {
        s.push(char::from(b"0123456789abcdef"[(b >> 4) as usize]));
        s.push(char::from(b"0123456789abcdef"[(b & 15) as usize]));
    }
    s
}

/// The pins of the run with `seed`: stable, and different for every seed.
pub fn pins_for_seed(seed: u64) -> Pins {
    Pins {
        seed: seed as i64,
        manifest_fingerprint: sha256_hex(&format!("sluice-gen/manifest_fingerprint/seed={seed}")),
        parameter_hash: sha256_hex(&format!("sluice-gen/parameter_hash/seed={seed}")),
        scenario_id: SCENARIO_ID.to_string(),
    }
}

fn kind_of(spec: &OutputSpec) -> Result<Kind> {
    Ok(match spec.id {
        "s3_event_stream_with_fraud_6B" => Kind::EventStream { fraud: true },
        "s2_event_stream_baseline_6B" => Kind::EventStream { fraud: false },
        "s3_flow_anchor_with_fraud_6B" => Kind::Context(ContextKind::FlowAnchorFraud),
        "s2_flow_anchor_baseline_6B" => Kind::Context(ContextKind::FlowAnchorBaseline),
        "s1_arrival_entities_6B" => Kind::Context(ContextKind::ArrivalEntities),
        "arrival_events_5B" => Kind::ArrivalEvents,
        other => {
            return Err(StorageError::InvalidArgument(format!(
                "gen cannot generate output {other}"
            )))
        }
    })
}

fn validate(cfg: &GenConfig) -> Result<Vec<&'static OutputSpec>> {
    let bad = |m: &str| Err(StorageError::InvalidArgument(m.to_string()));
    if cfg.out.as_os_str().is_empty() {
        return bad("gen needs an output directory");
    }
    if cfg.rows == 0 {
        return bad("--rows must be at least 1");
    }
    if cfg.files == 0 {
        return bad("--files must be at least 1");
    }
    if cfg.row_group_rows == Some(0) {
        return bad("--row-group-rows must be at least 1");
    }
    if cfg.seed > i64::MAX as u64 {
        return bad("--seed must fit in a signed 64-bit integer (the seed pin is an int)");
    }
    if cfg.outputs.is_empty() {
        return bad("--outputs must name at least one output");
    }
    let mut specs: Vec<&'static OutputSpec> = Vec::new();
    for id in &cfg.outputs {
        let spec = OutputSpec::get(id.trim())?;
        kind_of(spec)?;
        if !specs.iter().any(|s| s.id == spec.id) {
            specs.push(spec);
        }
    }
    Ok(specs)
}

/// Split `n` entities into `files` contiguous, non-empty, near-equal ranges.
fn even_ranges(n: u64, files: u64) -> Vec<(u64, u64)> {
    let at = |k: u64| (n as u128 * k as u128 / files as u128) as u64;
    (0..files).map(|k| (at(k), at(k + 1))).collect()
}

/// Validate `cfg` and plan the run (no I/O).
pub fn plan(cfg: &GenConfig) -> Result<GenPlan> {
    let specs = validate(cfg)?;
    let world = World::plan(cfg.seed, cfg.rows);
    let pins = pins_for_seed(cfg.seed);
    let traffic_files = (cfg.files as u64).min(world.flows);
    // Context outputs keep about the traffic's rows per file: fewer, but at least one.
    let context_files = (traffic_files as u128 * world.flows as u128)
        .div_ceil(cfg.rows as u128)
        .clamp(1, world.flows as u128) as u64;
    let traffic_ranges: Vec<(u64, u64)> = world
        .traffic_cuts(traffic_files)
        .windows(2)
        .map(|c| (c[0], c[1]))
        .collect();
    let mut outputs = Vec::with_capacity(specs.len());
    for spec in specs {
        let kind = kind_of(spec)?;
        let (ranges, rows, largest) = match kind {
            Kind::EventStream { .. } => {
                let sizes: Vec<u64> = traffic_ranges
                    .iter()
                    .map(|&(lo, hi)| world.traffic_rows_in(lo, hi))
                    .collect();
                let largest = sizes.iter().copied().max().unwrap_or(0);
                (traffic_ranges.clone(), world.traffic_rows, largest)
            }
            Kind::Context(_) | Kind::ArrivalEvents => {
                let ranges = even_ranges(world.flows, context_files);
                let largest = ranges.iter().map(|(lo, hi)| hi - lo).max().unwrap_or(0);
                (ranges, world.flows, largest)
            }
        };
        // Default: four row groups in the largest file (so every file has at least three).
        let row_group_rows = cfg
            .row_group_rows
            .unwrap_or_else(|| largest.div_ceil(4).max(1) as usize);
        outputs.push(OutputPlan {
            spec,
            kind,
            schema: emitted_schema(spec),
            partition_dir: spec.partition_dir(&pins),
            ranges,
            rows,
            row_group_rows,
        });
    }
    Ok(GenPlan {
        cfg: cfg.clone(),
        world,
        routing_universe_hash: sha256_hex(&format!(
            "sluice-gen/routing_universe/seed={}",
            cfg.seed
        )),
        pins,
        outputs,
    })
}

/// Where file `k` of `output` goes.
pub(crate) fn file_path(out: &std::path::Path, output: &OutputPlan, k: usize) -> PathBuf {
    out.join(&output.partition_dir)
        .join(OutputPlan::file_name(k))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(rows: u64, files: usize) -> GenConfig {
        GenConfig {
            rows,
            files,
            ..GenConfig::new("/nonexistent/gen-plan-test")
        }
    }

    #[test]
    fn pins_are_stable_hex_and_seed_specific() {
        let a = pins_for_seed(7);
        assert_eq!(a, pins_for_seed(7));
        assert_ne!(
            a.manifest_fingerprint,
            pins_for_seed(8).manifest_fingerprint
        );
        for h in [&a.manifest_fingerprint, &a.parameter_hash] {
            assert_eq!(h.len(), 64);
            assert!(h
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        }
        assert_ne!(a.manifest_fingerprint, a.parameter_hash);
        assert_eq!((a.seed, a.scenario_id.as_str()), (7, SCENARIO_ID));
    }

    #[test]
    fn outputs_are_sized_from_traffic_rows() {
        let p = plan(&cfg(100_000, 8)).unwrap();
        let traffic = &p.outputs[0];
        assert_eq!(traffic.spec.id, "s3_event_stream_with_fraud_6B");
        assert_eq!((traffic.rows, traffic.files()), (100_000, 8));
        let flows = p.world.flows;
        assert!((20_000..35_000).contains(&flows), "{flows} flows");
        for o in &p.outputs[1..] {
            assert_eq!(o.rows, flows);
            assert!((1..8).contains(&o.files()), "{} {}", o.spec.id, o.files());
            assert_eq!(o.ranges.last().unwrap().1, flows);
        }
        // Default row groups: >= 3 per file everywhere.
        for o in &p.outputs {
            for &(lo, hi) in &o.ranges {
                let rows = match o.kind {
                    Kind::EventStream { .. } => p.world.traffic_rows_in(lo, hi),
                    _ => hi - lo,
                };
                assert!(rows.div_ceil(o.row_group_rows as u64) >= 3, "{}", o.spec.id);
            }
        }
    }

    #[test]
    fn tiny_runs_clamp_files_to_flows() {
        let p = plan(&cfg(3, 8)).unwrap();
        for o in &p.outputs {
            assert!(o.files() as u64 <= p.world.flows);
            assert!(o.ranges.iter().all(|(lo, hi)| hi > lo));
        }
        assert_eq!(p.outputs[0].rows, 3);
    }

    #[test]
    fn bad_configs_are_rejected_with_codes() {
        let cases = [
            (
                GenConfig {
                    rows: 0,
                    ..cfg(1, 1)
                },
                "INVALID_ARGUMENT",
            ),
            (
                GenConfig {
                    files: 0,
                    ..cfg(1, 1)
                },
                "INVALID_ARGUMENT",
            ),
            (
                GenConfig {
                    row_group_rows: Some(0),
                    ..cfg(1, 1)
                },
                "INVALID_ARGUMENT",
            ),
            (
                GenConfig {
                    seed: u64::MAX,
                    ..cfg(1, 1)
                },
                "INVALID_ARGUMENT",
            ),
            (
                GenConfig {
                    outputs: vec![],
                    ..cfg(1, 1)
                },
                "INVALID_ARGUMENT",
            ),
            (
                GenConfig {
                    outputs: vec!["nope".into()],
                    ..cfg(1, 1)
                },
                "UNKNOWN_OUTPUT_ID",
            ),
        ];
        for (c, code) in cases {
            assert_eq!(plan(&c).unwrap_err().code(), code, "{c:?}");
        }
    }

    #[test]
    fn arrival_events_schema_is_required_plus_emitted_optional_in_catalog_order() {
        let spec = OutputSpec::get("arrival_events_5B").unwrap();
        let s = emitted_schema(spec);
        let full = spec.arrow_schema(true);
        let names: Vec<&str> = s.fields().iter().map(|f| f.name().as_str()).collect();
        let expected: Vec<&str> = full
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .filter(|n| {
                spec.arrow_schema(false).field_with_name(n).is_ok() || EMITTED_OPTIONAL.contains(n)
            })
            .collect();
        assert_eq!(names, expected);
        assert!(s.field_with_name("s4_spec_version").is_err());
        let traffic = OutputSpec::get("s3_event_stream_with_fraud_6B").unwrap();
        assert_eq!(emitted_schema(traffic), traffic.arrow_schema(false));
    }
}
