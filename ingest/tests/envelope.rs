//! The fast envelope path against the contract: ids recomputed from the documented strings,
//! bytes against `canonical_json` of a `serde_json::Value` built straight from the rows, and
//! every check decision against the reference checker run on the envelope as JSON.

mod common;

use std::sync::Arc;

use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use common::*;
use serde_json::{json, Value};
use sluice_ingest::envelope::build::EnvelopeBuilder;
use sluice_ingest::envelope::check::check_envelope;
use sluice_ingest::ids::hex32_string;
use sluice_ingest::ReasonCode;
use sluice_storage::outputs::OutputSpec;
use sluice_storage::view::{canonical_json, sha256_hex};

fn builder(partitions: u32) -> EnvelopeBuilder {
    EnvelopeBuilder::new(OutputSpec::get(OUTPUT).unwrap(), &run_ctx(), partitions)
}

fn f64_value(x: Option<f64>) -> Value {
    x.map_or(Value::Null, Value::from)
}

/// The envelope of a good row as a `serde_json::Value`, built without the fast path.
fn expected_envelope(r: &TRow, event_id: &str) -> (Value, Value) {
    let payload = json!({
        "flow_id": r.flow_id, "event_seq": r.event_seq, "event_type": r.event_type,
        "ts_utc": r.ts_utc, "amount": f64_value(r.amount), "fraud_flag": r.fraud_flag,
        "campaign_id": r.campaign_id, "seed": r.seed,
        "manifest_fingerprint": r.manifest_fingerprint, "parameter_hash": r.parameter_hash,
        "scenario_id": r.scenario_id,
    });
    let run = run_ctx();
    let env = json!({
        "event_id": event_id, "event_type": OUTPUT, "schema_version": "v1",
        "ts_utc": r.ts_utc, "manifest_fingerprint": r.manifest_fingerprint,
        "parameter_hash": r.parameter_hash, "seed": r.seed, "scenario_id": r.scenario_id,
        "run_id": run.run_id, "platform_run_id": run.platform_run_id,
        "scenario_run_id": run.scenario_run_id, "producer": run.producer,
        "payload": payload.clone(),
    });
    (env, payload)
}

fn random_string(rng: &mut SplitMix64) -> String {
    const PIECES: [&str; 10] = ["a", "Z", "\"", "\\", "\n", "\u{1}", "é", "€", "😀", "/"];
    (0..rng.below(6))
        .map(|_| PIECES[rng.below(10) as usize])
        .collect()
}

#[test]
fn event_ids_follow_the_documented_formula() {
    let rows = vec![row(1, 1), row(17, 2), row(123_456_789, 8)];
    let env = builder(4).build(&batch(&rows)).unwrap();
    for (i, r) in rows.iter().enumerate() {
        let expected = sha256_hex(event_id_string(r).as_bytes());
        assert_eq!(hex32_string(&env.rows[i].event_id.unwrap()), expected);
        let v: Value = serde_json::from_slice(env.value(i)).unwrap();
        assert_eq!(v["event_id"], expected);
    }
    // A literal, so a formula change cannot pass silently.
    assert_eq!(
        event_id_string(&rows[1]),
        format!(
            "s3_event_stream_with_fraud_6B|17|2|{}|{}|42|baseline_v1",
            mf(),
            ph()
        )
    );
}

#[test]
fn envelopes_and_hashes_are_canonical_json_byte_for_byte() {
    let mut rng = SplitMix64(11);
    let mut rows = Vec::new();
    for i in 0..400 {
        let mut r = row(i, rng.below(8) as i64 + 1);
        r.event_type = Some(random_string(&mut rng));
        r.campaign_id = if rng.below(3) == 0 {
            None
        } else {
            Some(random_string(&mut rng))
        };
        r.amount = Some(match rng.below(4) {
            0 => f64::from_bits(rng.next() >> 2),
            1 => (rng.below(1_000_000) as f64) / 100.0,
            2 => 1e16 * rng.below(5) as f64,
            _ => -0.0,
        });
        rows.push(r);
    }
    let env = builder(4).build(&batch(&rows)).unwrap();
    for (i, r) in rows.iter().enumerate() {
        let eid = sha256_hex(event_id_string(r).as_bytes());
        let (expected, payload) = expected_envelope(r, &eid);
        assert_eq!(
            String::from_utf8(env.value(i).to_vec()).unwrap(),
            canonical_json(&expected),
            "row {i}"
        );
        let hashed = canonical_json(
            &json!({"event_type": OUTPUT, "schema_version": "v1", "payload": payload}),
        );
        let m = &env.rows[i];
        assert_eq!(
            hex32_string(&env.payload_hash(i)),
            sha256_hex(hashed.as_bytes())
        );
        // As a reader computes it from the stored envelope (an ADMIT receipt's).
        assert_eq!(
            sluice_ingest::bus_payload::payload_hash_of(env.value(i)),
            Some(env.payload_hash(i))
        );
        // The dedupe index's key: the event id XOR sha256("sluice-dedupe-index-v2:<class>").
        let mask = sha2_digest(b"sluice-dedupe-index-v2:traffic_fraud");
        let id = m.event_id.unwrap();
        let expected: Vec<u8> = id.iter().zip(mask.iter()).map(|(a, b)| a ^ b).collect();
        assert_eq!(m.index_key.to_vec(), expected);
        assert_eq!(hex32_string(&id), eid);
        // Partition: sha256 of the first present key field (flow_id), big-endian u64 mod 4.
        let d = sha2_digest(r.flow_id.unwrap().to_string().as_bytes());
        assert_eq!(
            u64::from(m.partition),
            u64::from_be_bytes(d[..8].try_into().unwrap()) % 4
        );
        assert_eq!(env.key(i), r.flow_id.unwrap().to_string().as_bytes());
        assert_eq!(m.reason, None, "row {i}: {:?}", env.detail(i));
    }
}

fn sha2_digest(b: &[u8]) -> Vec<u8> {
    let hex = sha256_hex(b);
    (0..32)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

/// Fast decisions equal the reference checker's on the JSON the fast path wrote.
fn assert_paths_agree(b: &RecordBatch) -> Vec<Option<ReasonCode>> {
    let env = builder(4).build(b).unwrap();
    let mut reasons = Vec::new();
    for i in 0..env.len() {
        let v: Value = serde_json::from_slice(env.value(i)).unwrap();
        let reference = check_envelope(&v).err().map(|r| r.reason);
        assert_eq!(env.rows[i].reason, reference, "row {i}: {v}");
        reasons.push(reference);
    }
    reasons
}

#[test]
fn fast_checks_match_the_reference_on_damaged_rows() {
    let mut rng = SplitMix64(5);
    let mut rows = Vec::new();
    for i in 0..600 {
        let mut r = row(i, 1);
        match rng.below(14) {
            0 => r.flow_id = None,
            1 => r.event_seq = None,
            2 => r.ts_utc = None,
            3 => r.ts_utc = Some("garbage".into()),
            4 => r.ts_utc = Some("2026-01-05 08:30:13+02:00".into()),
            5 => r.seed = None,
            6 => r.manifest_fingerprint = Some(String::new()),
            7 => r.scenario_id = None,
            8 => r.amount = None,
            9 => r.amount = Some(f64::NAN),
            10 => r.event_type = None,
            11 => r.fraud_flag = None,
            12 => {
                r.flow_id = None;
                r.ts_utc = None;
            }
            _ => r.campaign_id = None,
        }
        rows.push(r);
    }
    let reasons = assert_paths_agree(&batch(&rows));
    use ReasonCode::*;
    for want in [PrimaryKeyMissing, EnvelopeInvalid, PinsMissing, SchemaFail] {
        assert!(reasons.contains(&Some(want)), "no {want:?} case");
    }
    assert!(reasons.contains(&None), "no good row");
}

#[test]
fn column_level_problems_decide_like_the_reference() {
    let rows: Vec<TRow> = (0..20).map(|i| row(i, 1)).collect();
    let good = batch(&rows);
    let replace = |name: &str, col: ArrayRef| {
        let schema = good.schema();
        let i = schema.index_of(name).unwrap();
        let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
        fields[i] = Field::new(name, col.data_type().clone(), true);
        let mut cols = good.columns().to_vec();
        cols[i] = col;
        RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).unwrap()
    };
    let drop_col = |name: &str| {
        let i = good.schema().index_of(name).unwrap();
        let mut b = good.clone();
        b.remove_column(i);
        b
    };
    let strings =
        |v: &str| -> ArrayRef { Arc::new(StringArray::from_iter_values((0..20).map(|_| v))) };
    let ints: ArrayRef = Arc::new(Int64Array::from_iter_values(0..20));
    use ReasonCode::*;
    let cases: Vec<(&str, RecordBatch, Option<ReasonCode>)> = vec![
        (
            "flow_id as strings",
            replace("flow_id", strings("7")),
            Some(SchemaFail),
        ),
        ("amount as ints", replace("amount", ints.clone()), None),
        (
            "fraud_flag as ints",
            replace("fraud_flag", ints.clone()),
            Some(SchemaFail),
        ),
        (
            "seed as strings",
            replace("seed", strings("42")),
            Some(EnvelopeInvalid),
        ),
        (
            "manifest_fingerprint as ints",
            replace("manifest_fingerprint", ints),
            Some(EnvelopeInvalid),
        ),
        (
            "no campaign_id (nullable)",
            drop_col("campaign_id"),
            Some(SchemaFail),
        ),
        ("no amount", drop_col("amount"), Some(SchemaFail)),
        ("no seed", drop_col("seed"), Some(PinsMissing)),
        (
            "no event_seq",
            drop_col("event_seq"),
            Some(PrimaryKeyMissing),
        ),
        ("no ts_utc", drop_col("ts_utc"), Some(EnvelopeInvalid)),
    ];
    for (name, b, want) in cases {
        let reasons = assert_paths_agree(&b);
        assert!(reasons.iter().all(|r| *r == want), "{name}: {reasons:?}");
    }
    // An extra column is allowed and lands in the payload.
    let mut fields: Vec<Field> = good
        .schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    fields.push(Field::new("extra", DataType::Utf8, true));
    let mut cols = good.columns().to_vec();
    cols.push(strings("x"));
    let b = RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).unwrap();
    assert!(assert_paths_agree(&b).iter().all(Option::is_none));
}

#[test]
fn unsupported_column_types_are_refused_with_a_code() {
    let rows: Vec<TRow> = (0..3).map(|i| row(i, 1)).collect();
    let good = batch(&rows);
    let mut fields: Vec<Field> = good
        .schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    fields.push(Field::new("bin", DataType::Binary, true));
    let mut cols = good.columns().to_vec();
    cols.push(Arc::new(arrow_array::BinaryArray::from_iter_values([
        b"a", b"b", b"c",
    ])));
    let b = RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).unwrap();
    let e = builder(4).build(&b).unwrap_err();
    assert_eq!(e.code(), "PAYLOAD_TYPE_UNSUPPORTED");
}

/// The JSON value of an Arrow cell, the plain way.
fn cell(a: &ArrayRef, i: usize) -> Value {
    use arrow_array::cast::AsArray;
    use arrow_array::Array;
    if a.is_null(i) {
        return Value::Null;
    }
    match a.data_type() {
        DataType::Int64 => a
            .as_primitive::<arrow_array::types::Int64Type>()
            .value(i)
            .into(),
        DataType::Float64 => f64_value(Some(
            a.as_primitive::<arrow_array::types::Float64Type>().value(i),
        )),
        DataType::Utf8 => a.as_string::<i32>().value(i).into(),
        DataType::Boolean => a.as_boolean().value(i).into(),
        t => panic!("{t}"),
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[test]
fn varying_pins_and_many_optional_columns_stay_canonical() {
    // arrival_events_5B: optional columns, pins not adjacent in key order, pins changing
    // from row to row (including a null seed), nulls everywhere the schema allows.
    let spec = OutputSpec::get("arrival_events_5B").unwrap();
    let schema = spec.arrow_schema(true);
    let mut rng = SplitMix64(21);
    let n = 300;
    let cols: Vec<ArrayRef> = schema
        .fields()
        .iter()
        .map(|f| -> ArrayRef {
            let name = f.name().as_str();
            let null = |rng: &mut SplitMix64| f.is_nullable() && rng.below(4) == 0;
            match (name, f.data_type()) {
                ("manifest_fingerprint", _) => {
                    Arc::new(StringArray::from_iter_values((0..n).map(|i| {
                        if i % 7 < 3 {
                            mf()
                        } else {
                            "c3".repeat(32)
                        }
                    })))
                }
                ("parameter_hash", _) => {
                    Arc::new(StringArray::from_iter_values((0..n).map(|_| ph())))
                }
                ("scenario_id", _) => {
                    Arc::new(StringArray::from_iter_values((0..n).map(|_| "s\"1")))
                }
                ("seed", _) => Arc::new(Int64Array::from_iter((0..n).map(|i| match i % 11 {
                    0 => None,
                    1..=4 => Some(7),
                    _ => Some(42),
                }))),
                ("ts_utc", _) => Arc::new(StringArray::from_iter_values((0..n).map(|i| {
                    let t = sluice_storage::timefmt::format_rfc3339_micros(T0 + i as i64 * 1_000);
                    if i % 13 == 0 {
                        t.replace('T', " ")
                    } else {
                        t
                    }
                }))),
                (_, DataType::Int64) => Arc::new(Int64Array::from_iter(
                    (0..n).map(|i| (!null(&mut rng)).then_some(i as i64 * 31 - 5)),
                )),
                (_, DataType::Float64) => {
                    Arc::new(arrow_array::Float64Array::from_iter((0..n).map(|_| {
                        (!null(&mut rng)).then(|| f64::from_bits(rng.next() >> 3))
                    })))
                }
                (_, DataType::Boolean) => Arc::new(arrow_array::BooleanArray::from_iter(
                    (0..n).map(|i| (!null(&mut rng)).then_some(i % 2 == 0)),
                )),
                _ => Arc::new(StringArray::from_iter(
                    (0..n).map(|_| (!null(&mut rng)).then(|| random_string(&mut rng))),
                )),
            }
        })
        .collect();
    let all_nullable = Arc::new(Schema::new(
        schema
            .fields()
            .iter()
            .map(|f| f.as_ref().clone().with_nullable(true))
            .collect::<Vec<_>>(),
    ));
    let b = RecordBatch::try_new(all_nullable, cols).unwrap();
    let env = EnvelopeBuilder::new(spec, &run_ctx(), 3).build(&b).unwrap();
    let run = run_ctx();
    let mut pin_sets = std::collections::HashSet::new();
    for i in 0..n {
        let payload: serde_json::Map<String, Value> = schema
            .fields()
            .iter()
            .zip(b.columns())
            .map(|(f, a)| (f.name().clone(), cell(a, i)))
            .collect();
        let pk: Vec<String> = spec
            .primary_key
            .iter()
            .map(|k| text(&payload[*k]))
            .collect();
        let pk_null = spec.primary_key.iter().any(|k| payload[*k].is_null());
        let id_text = format!(
            "arrival_events_5B|{}|{}|{}|{}|{}",
            pk.join("|"),
            text(&payload["manifest_fingerprint"]),
            text(&payload["parameter_hash"]),
            text(&payload["seed"]),
            text(&payload["scenario_id"])
        );
        let ts = payload["ts_utc"].as_str().unwrap();
        let norm = sluice_storage::timefmt::format_rfc3339_micros(
            sluice_storage::timefmt::parse_rfc3339_micros(ts).unwrap(),
        );
        let expected = json!({
            "event_id": (!pk_null).then(|| sha256_hex(id_text.as_bytes())),
            "event_type": "arrival_events_5B", "schema_version": "v1", "ts_utc": norm,
            "manifest_fingerprint": payload["manifest_fingerprint"], "parameter_hash": payload["parameter_hash"],
            "seed": payload["seed"], "scenario_id": payload["scenario_id"],
            "run_id": run.run_id, "platform_run_id": run.platform_run_id,
            "scenario_run_id": run.scenario_run_id, "producer": run.producer,
            "payload": Value::Object(payload.clone()),
        });
        assert_eq!(
            String::from_utf8(env.value(i).to_vec()).unwrap(),
            canonical_json(&expected),
            "row {i}"
        );
        let hashed = canonical_json(
            &json!({"event_type": "arrival_events_5B", "schema_version": "v1", "payload": payload}),
        );
        assert_eq!(
            hex32_string(&env.payload_hash(i)),
            sha256_hex(hashed.as_bytes()),
            "row {i}"
        );
        let pins = &env.pin_sets[env.rows[i].pin_set as usize];
        assert_eq!(
            pins.seed.as_deref().unwrap_or(""),
            text(&payload["seed"]),
            "row {i}"
        );
        assert_eq!(
            pins.manifest_fingerprint.as_deref(),
            payload["manifest_fingerprint"].as_str()
        );
        pin_sets.insert(env.rows[i].pin_set);
    }
    assert_eq!(pin_sets.len(), 6, "2 fingerprints x 3 seeds");
    assert_paths_agree(&b);
}

#[test]
fn slices_built_one_by_one_equal_the_whole_batch() {
    // `--merge` builds envelopes a row or two at a time with one builder, which keeps the
    // schema's plan and the pin sets' chunks between batches. Every slice must come out as
    // that row does in one whole batch: several pin sets (a null pin among them), failing
    // rows, and batches of another column order in between (a different plan).
    let mut rng = SplitMix64(5);
    let rows: Vec<TRow> = (0..300)
        .map(|i| {
            let mut r = row(i, 1 + rng.below(4) as i64);
            match rng.below(6) {
                0 => r.seed = Some(7),
                1 => r.scenario_id = Some("stress_v2".into()),
                2 => r.parameter_hash = None,
                _ => {}
            }
            if rng.below(25) == 0 {
                r.amount = None;
            }
            if rng.below(40) == 0 {
                r.flow_id = None;
            }
            r
        })
        .collect();
    let whole = batch(&rows);
    let reference = builder(4).build(&whole).unwrap();
    assert!(
        reference.pin_sets.len() >= 4,
        "the rows must carry several pin sets"
    );
    let reversed: Vec<usize> = (0..whole.num_columns()).rev().collect();
    let mut b = builder(4);
    let mut at = 0;
    while at < rows.len() {
        let len = (1 + rng.below(3) as usize).min(rows.len() - at);
        let piece = whole.slice(at, len);
        // Every other slice goes through the other column order first.
        let pieces = if rng.below(2) == 0 {
            vec![piece.project(&reversed).unwrap(), piece]
        } else {
            vec![piece]
        };
        for p in pieces {
            let env = b.build(&p).unwrap();
            for j in 0..len {
                let (m, r) = (&env.rows[j], &reference.rows[at + j]);
                let i = at + j;
                assert_eq!(env.value(j), reference.value(i), "row {i} envelope");
                assert_eq!(env.key(j), reference.key(i), "row {i} key");
                assert_eq!(m.event_id, r.event_id, "row {i}");
                assert_eq!(m.index_key, r.index_key, "row {i}");
                assert_eq!(env.payload_hash(j), reference.payload_hash(i), "row {i}");
                assert_eq!((m.ts, m.partition, m.reason), (r.ts, r.partition, r.reason));
                assert_eq!(
                    env.pin_sets[m.pin_set as usize], reference.pin_sets[r.pin_set as usize],
                    "row {i} pins"
                );
                assert_eq!(env.detail(j), reference.detail(i), "row {i} detail");
            }
        }
        at += len;
    }
}
