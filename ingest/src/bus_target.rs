//! Which sink a replay writes to: the `--bus URL` of `sluice replay`, parsed once and opened
//! in one place ([`open_sink`]), so a new transport is one match arm.
//!
//! | URL | sink |
//! |---|---|
//! | (none) | the embedded file bus under the run root, `<run_root>/eb/` |
//! | `file:DIR` or `file://DIR` | the embedded file bus in `DIR` |
//! | `kafka://host:port[,host:port…][?options]` | Kafka brokers (`crate::kafka`, `docs/kafka.md`) |
//!
//! A `kafka://` URL is parsed whole here ([`KafkaOptions::parse`]: brokers and `?options`), so
//! a malformed one fails `KAFKA_URL_INVALID`, and anything else `BUS_URL_UNSUPPORTED`, before
//! any run directory is touched.

use std::path::PathBuf;

use sluice_storage::run::RunLayout;

use crate::bus_sink::FileBusSink;
use crate::error::{IngestError, Result};
use crate::kafka::{is_kafka_url, KafkaOptions, KafkaSink};
use crate::sink::Sink;

/// Where admitted events go.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum BusTarget {
    /// The embedded file bus under `<run_root>/eb/` (the default).
    #[default]
    RunDefault,
    /// The embedded file bus in this directory.
    File(PathBuf),
    /// Kafka brokers and the producer's options, parsed from the URL.
    Kafka(KafkaOptions),
}

impl BusTarget {
    /// Parse a `--bus` URL (see the module doc).
    pub fn parse(url: &str) -> Result<BusTarget> {
        let unsupported = |reason: &str| IngestError::BusUrlUnsupported {
            url: url.to_string(),
            reason: reason.to_string(),
        };
        if is_kafka_url(url) {
            let opts = KafkaOptions::parse(url).map_err(|e| IngestError::sink("(bus)", e))?;
            return Ok(BusTarget::Kafka(opts));
        }
        let Some((scheme, rest)) = url.split_once(':') else {
            return Err(unsupported(
                "expected file:DIR or kafka://host:port (no scheme given)",
            ));
        };
        if !scheme.eq_ignore_ascii_case("file") {
            return Err(unsupported(
                "unknown scheme; expected file:DIR or kafka://host:port",
            ));
        }
        let dir = rest.strip_prefix("//").unwrap_or(rest);
        if dir.is_empty() {
            return Err(unsupported("file: needs a directory"));
        }
        Ok(BusTarget::File(PathBuf::from(dir)))
    }

    /// Turn off topic creation (`--no-create-topics`); only a Kafka target has topics to
    /// create, so for the others this is an error the caller reports.
    pub fn no_create_topics(&mut self) -> std::result::Result<(), &'static str> {
        match self {
            BusTarget::Kafka(opts) => {
                opts.create_topics = false;
                Ok(())
            }
            _ => Err("--no-create-topics needs a kafka:// --bus"),
        }
    }

    /// The URL form, for summaries.
    pub fn describe(&self, layout: &RunLayout) -> String {
        match self {
            BusTarget::RunDefault => format!("file://{}", layout.eb().display()),
            BusTarget::File(dir) => format!("file://{}", dir.display()),
            BusTarget::Kafka(opts) => format!("kafka://{}", opts.brokers.join(",")),
        }
    }
}

/// Open the sink `target` names for the run `layout`. This is the one place a transport is
/// chosen: the Kafka sink (issue 8) plugs in as the `BusTarget::Kafka` arm.
pub fn open_sink(target: &BusTarget, layout: &RunLayout) -> Result<Box<dyn Sink>> {
    let file = |dir: PathBuf| -> Result<Box<dyn Sink>> {
        let sink = FileBusSink::open(&dir).map_err(|e| IngestError::sink("(bus)", e))?;
        Ok(Box::new(sink))
    };
    match target {
        BusTarget::RunDefault => file(layout.eb()),
        BusTarget::File(dir) => file(dir.clone()),
        BusTarget::Kafka(opts) => {
            let sink =
                KafkaSink::connect(opts.clone()).map_err(|e| IngestError::sink("(bus)", e))?;
            Ok(Box::new(sink))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_or_fail_with_their_code() {
        assert_eq!(
            BusTarget::parse("file:///tmp/eb").ok(),
            Some(BusTarget::File("/tmp/eb".into()))
        );
        assert_eq!(
            BusTarget::parse("file:rel/eb").ok(),
            Some(BusTarget::File("rel/eb".into()))
        );
        let Ok(BusTarget::Kafka(opts)) = BusTarget::parse("kafka://a:9092,b:9093?linger_ms=5")
        else {
            panic!("a kafka:// URL parses into Kafka options");
        };
        assert_eq!(opts.brokers, ["a:9092", "b:9093"]);
        assert_eq!(opts.linger_ms, 5);
        assert!(opts.create_topics);
        // The Kafka URL's own rules apply: a port may be omitted (9092).
        let Ok(BusTarget::Kafka(opts)) = BusTarget::parse("KAFKA://host") else {
            panic!("kafka://host parses");
        };
        assert_eq!(opts.brokers, ["host:9092"]);
        for bad in ["", "eb", "s3://x/y", "file:", "http://x:1"] {
            let e = BusTarget::parse(bad).err();
            assert_eq!(e.map(|e| e.code()), Some("BUS_URL_UNSUPPORTED"), "{bad}");
        }
        for bad in [
            "kafka://",
            "kafka://h:0",
            "kafka://h:1?in_flight=9",
            "kafka://h:1?x",
        ] {
            let e = BusTarget::parse(bad).err();
            assert_eq!(e.map(|e| e.code()), Some("KAFKA_URL_INVALID"), "{bad}");
        }
    }

    #[test]
    fn no_create_topics_applies_to_kafka_only() {
        let mut kafka = BusTarget::parse("kafka://h:1").unwrap();
        assert!(kafka.no_create_topics().is_ok());
        assert!(matches!(kafka, BusTarget::Kafka(ref o) if !o.create_topics));
        assert!(BusTarget::RunDefault.no_create_topics().is_err());
        assert!(BusTarget::File("d".into()).no_create_topics().is_err());
    }
}
