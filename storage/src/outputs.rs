//! The catalog of engine outputs sluice streams (`shared/CONTEXT.md`, "Engine outputs that
//! are streamed" and "Ingestion gate"): path template, primary key, columns and types,
//! event class, bus topic and partition-key precedence. One table, read by the generator,
//! discovery, the gate and the parity checks, so the contract lives in exactly one place.

use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema, SchemaRef};

use crate::error::{Result, StorageError};

/// The logical type of a contract column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColType {
    Int,
    Float,
    Str,
    Bool,
}

impl ColType {
    /// The Arrow type sluice writes for it (and the generator emits).
    pub fn arrow_type(self) -> DataType {
        match self {
            ColType::Int => DataType::Int64,
            ColType::Float => DataType::Float64,
            ColType::Str => DataType::Utf8,
            ColType::Bool => DataType::Boolean,
        }
    }
}

/// Whether a column must be present, and whether it may hold nulls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    /// Present and never null.
    Required,
    /// Present, may be null.
    Nullable,
    /// May be absent from the dataset; when present it may be null.
    Optional,
}

/// One column of an output's contract.
#[derive(Debug, Clone, Copy)]
pub struct ColumnSpec {
    pub name: &'static str,
    pub ty: ColType,
    pub presence: Presence,
}

const fn req(name: &'static str, ty: ColType) -> ColumnSpec {
    ColumnSpec {
        name,
        ty,
        presence: Presence::Required,
    }
}
const fn nullable(name: &'static str, ty: ColType) -> ColumnSpec {
    ColumnSpec {
        name,
        ty,
        presence: Presence::Nullable,
    }
}
const fn optional(name: &'static str, ty: ColType) -> ColumnSpec {
    ColumnSpec {
        name,
        ty,
        presence: Presence::Optional,
    }
}

use ColType::{Bool, Float, Int, Str};

/// The four pins every streamed output carries as columns.
pub const PIN_COLUMNS: [ColumnSpec; 4] = [
    req("seed", Int),
    req("manifest_fingerprint", Str),
    req("parameter_hash", Str),
    req("scenario_id", Str),
];

/// One streamed engine output.
#[derive(Debug)]
pub struct OutputSpec {
    /// `output_id`, e.g. `s3_event_stream_with_fraud_6B`.
    pub id: &'static str,
    /// Directory of the dataset relative to the engine run root, before the partitions.
    pub dataset_dir: &'static str,
    /// Whether the hive path has a `parameter_hash=` level (5B arrival events do not).
    pub path_has_parameter_hash: bool,
    /// Primary key, in order (rows inside a source file are in this order).
    pub primary_key: &'static [&'static str],
    /// Columns before the pins, in file order.
    pub columns: &'static [ColumnSpec],
    /// The gate's event class for this output.
    pub event_class: &'static str,
    /// The bus topic admitted events of this class go to.
    pub topic: &'static str,
    /// Partition-key precedence: the first present field (payload fields, then `event_id`).
    pub partition_key_fields: &'static [&'static str],
    /// True for traffic outputs, false for context outputs.
    pub traffic: bool,
}

const TRAFFIC_KEYS: &[&str] = &[
    "flow_id",
    "merchant_id",
    "account_id",
    "party_id",
    "event_id",
];
const ARRIVAL_KEYS: &[&str] = &["merchant_id", "arrival_seq", "event_id"];
const FLOW_KEYS: &[&str] = &["flow_id", "merchant_id", "arrival_seq", "event_id"];

const EVENT_STREAM_FRAUD: &[ColumnSpec] = &[
    req("flow_id", Int),
    req("event_seq", Int),
    req("event_type", Str),
    req("ts_utc", Str),
    req("amount", Float),
    req("fraud_flag", Bool),
    nullable("campaign_id", Str),
];
const EVENT_STREAM_BASELINE: &[ColumnSpec] = &[
    req("flow_id", Int),
    req("event_seq", Int),
    req("event_type", Str),
    req("ts_utc", Str),
    req("amount", Float),
];
const FLOW_ANCHOR_FRAUD: &[ColumnSpec] = &[
    req("flow_id", Int),
    req("arrival_seq", Int),
    req("merchant_id", Int),
    req("party_id", Int),
    req("account_id", Int),
    req("instrument_id", Int),
    req("device_id", Int),
    req("ip_id", Int),
    req("ts_utc", Str),
    req("amount", Float),
    req("fraud_flag", Bool),
    nullable("campaign_id", Str),
];
const FLOW_ANCHOR_BASELINE: &[ColumnSpec] = &[
    req("flow_id", Int),
    req("arrival_seq", Int),
    req("merchant_id", Int),
    req("party_id", Int),
    req("account_id", Int),
    req("instrument_id", Int),
    req("device_id", Int),
    req("ip_id", Int),
    req("ts_utc", Str),
    req("amount", Float),
];
const ARRIVAL_ENTITIES: &[ColumnSpec] = &[
    req("merchant_id", Int),
    req("arrival_seq", Int),
    req("party_id", Int),
    req("account_id", Int),
    req("instrument_id", Int),
    req("device_id", Int),
    req("ip_id", Int),
    req("session_id", Int),
    req("ts_utc", Str),
];
const ARRIVAL_EVENTS: &[ColumnSpec] = &[
    req("merchant_id", Int),
    req("zone_representation", Str),
    req("bucket_index", Int),
    req("arrival_seq", Int),
    req("ts_utc", Str),
    req("tzid_primary", Str),
    req("ts_local_primary", Str),
    req("is_virtual", Bool),
    optional("channel_group", Str),
    optional("tzid_settlement", Str),
    optional("ts_local_settlement", Str),
    optional("tzid_operational", Str),
    optional("ts_local_operational", Str),
    optional("tz_group_id", Str),
    optional("site_id", Int),
    optional("edge_id", Int),
    optional("routing_universe_hash", Str),
    optional("lambda_realised", Float),
    optional("s4_spec_version", Str),
];

/// Every output sluice knows, in a stable order.
pub static OUTPUTS: &[OutputSpec] = &[
    OutputSpec {
        id: "s3_event_stream_with_fraud_6B",
        dataset_dir: "data/layer3/6B/s3_event_stream_with_fraud_6B",
        path_has_parameter_hash: true,
        primary_key: &["flow_id", "event_seq"],
        columns: EVENT_STREAM_FRAUD,
        event_class: "traffic_fraud",
        topic: "fp.bus.traffic.fraud.v1",
        partition_key_fields: TRAFFIC_KEYS,
        traffic: true,
    },
    OutputSpec {
        id: "s2_event_stream_baseline_6B",
        dataset_dir: "data/layer3/6B/s2_event_stream_baseline_6B",
        path_has_parameter_hash: true,
        primary_key: &["flow_id", "event_seq"],
        columns: EVENT_STREAM_BASELINE,
        event_class: "traffic_baseline",
        topic: "fp.bus.traffic.baseline.v1",
        partition_key_fields: TRAFFIC_KEYS,
        traffic: true,
    },
    OutputSpec {
        id: "arrival_events_5B",
        dataset_dir: "data/layer2/5B/arrival_events",
        path_has_parameter_hash: false,
        primary_key: &["merchant_id", "arrival_seq"],
        columns: ARRIVAL_EVENTS,
        event_class: "context_arrival",
        topic: "fp.bus.context.arrival_events.v1",
        partition_key_fields: ARRIVAL_KEYS,
        traffic: false,
    },
    OutputSpec {
        id: "s1_arrival_entities_6B",
        dataset_dir: "data/layer3/6B/s1_arrival_entities_6B",
        path_has_parameter_hash: true,
        primary_key: &["merchant_id", "arrival_seq"],
        columns: ARRIVAL_ENTITIES,
        event_class: "context_arrival_entities",
        topic: "fp.bus.context.arrival_entities.v1",
        partition_key_fields: ARRIVAL_KEYS,
        traffic: false,
    },
    OutputSpec {
        id: "s3_flow_anchor_with_fraud_6B",
        dataset_dir: "data/layer3/6B/s3_flow_anchor_with_fraud_6B",
        path_has_parameter_hash: true,
        primary_key: &["flow_id"],
        columns: FLOW_ANCHOR_FRAUD,
        event_class: "context_flow_fraud",
        topic: "fp.bus.context.flow_anchor.fraud.v1",
        partition_key_fields: FLOW_KEYS,
        traffic: false,
    },
    OutputSpec {
        id: "s2_flow_anchor_baseline_6B",
        dataset_dir: "data/layer3/6B/s2_flow_anchor_baseline_6B",
        path_has_parameter_hash: true,
        primary_key: &["flow_id"],
        columns: FLOW_ANCHOR_BASELINE,
        event_class: "context_flow_baseline",
        topic: "fp.bus.context.flow_anchor.baseline.v1",
        partition_key_fields: FLOW_KEYS,
        traffic: false,
    },
];

impl OutputSpec {
    /// Look an output up by id; `UNKNOWN_OUTPUT_ID` if it is not in the catalog.
    pub fn get(output_id: &str) -> Result<&'static OutputSpec> {
        OUTPUTS
            .iter()
            .find(|o| o.id == output_id)
            .ok_or_else(|| StorageError::UnknownOutput {
                output_id: output_id.to_string(),
                known: OUTPUTS.iter().map(|o| o.id).collect::<Vec<_>>().join(", "),
            })
    }

    /// All columns of the contract: the output's own, then the four pins.
    pub fn all_columns(&self) -> impl Iterator<Item = &'static ColumnSpec> {
        self.columns.iter().chain(PIN_COLUMNS.iter())
    }

    /// The Arrow schema of the output. `with_optional` includes the optional columns.
    pub fn arrow_schema(&self, with_optional: bool) -> SchemaRef {
        let fields: Vec<Field> = self
            .all_columns()
            .filter(|c| with_optional || c.presence != Presence::Optional)
            .map(|c| Field::new(c.name, c.ty.arrow_type(), c.presence != Presence::Required))
            .collect();
        Arc::new(Schema::new(fields))
    }

    /// The hive partition directory for one set of pins, relative to the engine root.
    pub fn partition_dir(&self, pins: &Pins) -> String {
        if self.path_has_parameter_hash {
            format!(
                "{}/seed={}/parameter_hash={}/manifest_fingerprint={}/scenario_id={}",
                self.dataset_dir,
                pins.seed,
                pins.parameter_hash,
                pins.manifest_fingerprint,
                pins.scenario_id
            )
        } else {
            format!(
                "{}/seed={}/manifest_fingerprint={}/scenario_id={}",
                self.dataset_dir, pins.seed, pins.manifest_fingerprint, pins.scenario_id
            )
        }
    }
}

/// The pins of an engine run (`run_receipt.json` names them; every row carries them).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Pins {
    pub seed: i64,
    pub manifest_fingerprint: String,
    pub parameter_hash: String,
    pub scenario_id: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_output_has_ts_utc_and_its_primary_key() {
        for o in OUTPUTS {
            let schema = o.arrow_schema(false);
            assert!(schema.field_with_name("ts_utc").is_ok(), "{}", o.id);
            for k in o.primary_key {
                let f = schema.field_with_name(k).unwrap();
                assert_eq!(f.data_type(), &DataType::Int64, "{} {}", o.id, k);
                assert!(!f.is_nullable());
            }
            for p in [
                "seed",
                "manifest_fingerprint",
                "parameter_hash",
                "scenario_id",
            ] {
                assert!(schema.field_with_name(p).is_ok(), "{} lacks pin {p}", o.id);
            }
        }
    }

    #[test]
    fn unknown_output_has_code() {
        let e = OutputSpec::get("nope").unwrap_err();
        assert_eq!(e.code(), "UNKNOWN_OUTPUT_ID");
    }

    #[test]
    fn partition_dirs_follow_templates() {
        let pins = Pins {
            seed: 7,
            manifest_fingerprint: "m".into(),
            parameter_hash: "p".into(),
            scenario_id: "s".into(),
        };
        assert_eq!(
            OutputSpec::get("arrival_events_5B")
                .unwrap()
                .partition_dir(&pins),
            "data/layer2/5B/arrival_events/seed=7/manifest_fingerprint=m/scenario_id=s"
        );
        assert_eq!(
            OutputSpec::get("s3_event_stream_with_fraud_6B").unwrap().partition_dir(&pins),
            "data/layer3/6B/s3_event_stream_with_fraud_6B/seed=7/parameter_hash=p/manifest_fingerprint=m/scenario_id=s"
        );
    }
}
