//! Decisions and reason codes (`shared/CONTEXT.md`, "Ingestion gate"), spelled exactly as
//! the platform spells them. A reason code explains a quarantine; it is not an error of the
//! gate (those are [`crate::IngestError`]).

/// What the gate decided for one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Decision {
    Admit,
    Duplicate,
    Quarantine,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Admit => "ADMIT",
            Decision::Duplicate => "DUPLICATE",
            Decision::Quarantine => "QUARANTINE",
        }
    }

    /// The byte stored in a receipt record.
    pub fn to_byte(self) -> u8 {
        match self {
            Decision::Admit => 1,
            Decision::Duplicate => 2,
            Decision::Quarantine => 3,
        }
    }

    pub fn from_byte(b: u8) -> Option<Decision> {
        match b {
            1 => Some(Decision::Admit),
            2 => Some(Decision::Duplicate),
            3 => Some(Decision::Quarantine),
            _ => None,
        }
    }
}

/// Why an event was quarantined. The checks run in this order and the first failure wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReasonCode {
    /// A primary-key value is null: no `event_id` can be formed (the producer's check).
    PrimaryKeyMissing,
    /// Envelope shape: unknown or missing fields, wrong types, `ts_utc` not normalised.
    EnvelopeInvalid,
    /// One of the seven pins is absent, null or empty.
    PinsMissing,
    /// The payload lacks a required field, has a null in it, or a value of the wrong type.
    SchemaFail,
    /// Same dedupe key as an admitted event, different payload hash.
    PayloadHashMismatch,
}

impl ReasonCode {
    pub const ALL: [ReasonCode; 5] = [
        ReasonCode::PrimaryKeyMissing,
        ReasonCode::EnvelopeInvalid,
        ReasonCode::PinsMissing,
        ReasonCode::SchemaFail,
        ReasonCode::PayloadHashMismatch,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ReasonCode::PrimaryKeyMissing => "PRIMARY_KEY_MISSING",
            ReasonCode::EnvelopeInvalid => "ENVELOPE_INVALID",
            ReasonCode::PinsMissing => "PINS_MISSING",
            ReasonCode::SchemaFail => "SCHEMA_FAIL",
            ReasonCode::PayloadHashMismatch => "PAYLOAD_HASH_MISMATCH",
        }
    }

    /// Bit in a receipt record's reason mask.
    pub fn bit(self) -> u16 {
        1 << (self as u16)
    }

    /// The codes in a reason mask, in check order.
    pub fn from_mask(mask: u16) -> Vec<ReasonCode> {
        Self::ALL
            .into_iter()
            .filter(|r| mask & r.bit() != 0)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_roundtrip_and_bytes_are_stable() {
        for r in ReasonCode::ALL {
            assert_eq!(ReasonCode::from_mask(r.bit()), vec![r]);
        }
        assert_eq!(ReasonCode::SchemaFail.bit(), 8);
        for d in [Decision::Admit, Decision::Duplicate, Decision::Quarantine] {
            assert_eq!(Decision::from_byte(d.to_byte()), Some(d));
        }
        assert_eq!(Decision::from_byte(0), None);
        assert_eq!(
            serde_json::to_string(&ReasonCode::PayloadHashMismatch).unwrap(),
            "\"PAYLOAD_HASH_MISMATCH\""
        );
    }
}
