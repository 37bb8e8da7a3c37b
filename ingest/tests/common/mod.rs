//! Shared helpers: traffic rows with every field optional (to inject nulls), a seeded PRNG,
//! and a run context.

#![allow(dead_code)]

use std::sync::Arc;

use arrow_array::{ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use sluice_ingest::envelope::RunContext;
use sluice_ingest::Origin;
use sluice_storage::timefmt::format_rfc3339_micros;

pub const OUTPUT: &str = "s3_event_stream_with_fraud_6B";
pub const T0: i64 = 1_767_601_813_260_000;

pub struct SplitMix64(pub u64);
impl SplitMix64 {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// One traffic row; `None` is a null cell.
#[derive(Debug, Clone, PartialEq)]
pub struct TRow {
    pub flow_id: Option<i64>,
    pub event_seq: Option<i64>,
    pub event_type: Option<String>,
    pub ts_utc: Option<String>,
    pub amount: Option<f64>,
    pub fraud_flag: Option<bool>,
    pub campaign_id: Option<String>,
    pub seed: Option<i64>,
    pub manifest_fingerprint: Option<String>,
    pub parameter_hash: Option<String>,
    pub scenario_id: Option<String>,
}

pub fn mf() -> String {
    "a1".repeat(32)
}
pub fn ph() -> String {
    "b2".repeat(32)
}

/// A good row: flow `flow`, seq `seq`, at `T0 + flow` seconds.
pub fn row(flow: i64, seq: i64) -> TRow {
    TRow {
        flow_id: Some(flow),
        event_seq: Some(seq),
        event_type: Some("AUTH_REQUEST".into()),
        ts_utc: Some(format_rfc3339_micros(T0 + flow * 1_000_000 + seq * 10_000)),
        amount: Some(flow as f64 * 1.25 + 0.1),
        fraud_flag: Some(flow % 5 == 0),
        campaign_id: (flow % 3 == 0).then(|| format!("camp-{flow}")),
        seed: Some(42),
        manifest_fingerprint: Some(mf()),
        parameter_hash: Some(ph()),
        scenario_id: Some("baseline_v1".into()),
    }
}

/// A batch of the fraud event stream's columns (all declared nullable, so nulls can be
/// injected), in the contract's column order.
pub fn batch(rows: &[TRow]) -> RecordBatch {
    let f = |n: &str, t: DataType| Field::new(n, t, true);
    let schema = Arc::new(Schema::new(vec![
        f("flow_id", DataType::Int64),
        f("event_seq", DataType::Int64),
        f("event_type", DataType::Utf8),
        f("ts_utc", DataType::Utf8),
        f("amount", DataType::Float64),
        f("fraud_flag", DataType::Boolean),
        f("campaign_id", DataType::Utf8),
        f("seed", DataType::Int64),
        f("manifest_fingerprint", DataType::Utf8),
        f("parameter_hash", DataType::Utf8),
        f("scenario_id", DataType::Utf8),
    ]));
    let cols: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from_iter(rows.iter().map(|r| r.flow_id))),
        Arc::new(Int64Array::from_iter(rows.iter().map(|r| r.event_seq))),
        Arc::new(StringArray::from_iter(
            rows.iter().map(|r| r.event_type.clone()),
        )),
        Arc::new(StringArray::from_iter(
            rows.iter().map(|r| r.ts_utc.clone()),
        )),
        Arc::new(Float64Array::from_iter(rows.iter().map(|r| r.amount))),
        Arc::new(BooleanArray::from_iter(rows.iter().map(|r| r.fraud_flag))),
        Arc::new(StringArray::from_iter(
            rows.iter().map(|r| r.campaign_id.clone()),
        )),
        Arc::new(Int64Array::from_iter(rows.iter().map(|r| r.seed))),
        Arc::new(StringArray::from_iter(
            rows.iter().map(|r| r.manifest_fingerprint.clone()),
        )),
        Arc::new(StringArray::from_iter(
            rows.iter().map(|r| r.parameter_hash.clone()),
        )),
        Arc::new(StringArray::from_iter(
            rows.iter().map(|r| r.scenario_id.clone()),
        )),
    ];
    RecordBatch::try_new(schema, cols).unwrap()
}

pub fn run_ctx() -> RunContext {
    RunContext {
        platform_run_id: "platform_20260105T083000Z".into(),
        run_id: "run-7".into(),
        scenario_run_id: "srun-7".into(),
        producer: "sluice-test".into(),
    }
}

pub fn origin(first_row: u64) -> Origin {
    Origin {
        label: Arc::from("part-000000.parquet"),
        first_row,
    }
}

/// The platform's event id string for a row, as documented.
pub fn event_id_string(r: &TRow) -> String {
    format!(
        "{OUTPUT}|{}|{}|{}|{}|{}|{}",
        r.flow_id.unwrap(),
        r.event_seq.unwrap(),
        r.manifest_fingerprint.clone().unwrap(),
        r.parameter_hash.clone().unwrap(),
        r.seed.unwrap(),
        r.scenario_id.clone().unwrap()
    )
}
