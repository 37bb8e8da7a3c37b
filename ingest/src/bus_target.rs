//! Which sink a replay writes to: the `--bus URL` of `sluice replay`, parsed once and opened
//! in one place ([`open_sink`]), so a new transport is one match arm.
//!
//! | URL | sink |
//! |---|---|
//! | (none) | the embedded file bus under the run root, `<run_root>/eb/` |
//! | `file:DIR` or `file://DIR` | the embedded file bus in `DIR` |
//! | `kafka://host:port[,host:port…][?options]` | Kafka brokers (`crate::kafka`, `docs/kafka.md`) |
//!
//! Anything else is refused with `BUS_URL_UNSUPPORTED` before any run directory is touched.

use std::path::PathBuf;

use sluice_storage::run::RunLayout;

use crate::bus_sink::FileBusSink;
use crate::error::{IngestError, Result};
use crate::sink::Sink;

/// Where admitted events go.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum BusTarget {
    /// The embedded file bus under `<run_root>/eb/` (the default).
    #[default]
    RunDefault,
    /// The embedded file bus in this directory.
    File(PathBuf),
    /// Kafka bootstrap servers, comma-separated `host:port`.
    Kafka { brokers: String },
}

impl BusTarget {
    /// Parse a `--bus` URL (see the module doc).
    pub fn parse(url: &str) -> Result<BusTarget> {
        let unsupported = |reason: &str| IngestError::BusUrlUnsupported {
            url: url.to_string(),
            reason: reason.to_string(),
        };
        let Some((scheme, rest)) = url.split_once(':') else {
            return Err(unsupported(
                "expected file:DIR or kafka://host:port (no scheme given)",
            ));
        };
        match scheme.to_ascii_lowercase().as_str() {
            "file" => {
                let dir = rest.strip_prefix("//").unwrap_or(rest);
                if dir.is_empty() {
                    return Err(unsupported("file: needs a directory"));
                }
                Ok(BusTarget::File(PathBuf::from(dir)))
            }
            "kafka" => {
                let brokers = rest
                    .strip_prefix("//")
                    .unwrap_or(rest)
                    .trim_end_matches('/');
                // `?options` (crate::kafka::url) are checked when the sink opens.
                let hosts = brokers.split_once('?').map_or(brokers, |(h, _)| h);
                let hosts = hosts.trim_end_matches('/');
                let ok = !hosts.is_empty()
                    && hosts.split(',').all(|b| {
                        b.rsplit_once(':')
                            .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok())
                    });
                if !ok {
                    return Err(unsupported("kafka:// needs host:port[,host:port...]"));
                }
                Ok(BusTarget::Kafka {
                    brokers: brokers.to_string(),
                })
            }
            _ => Err(unsupported(
                "unknown scheme; expected file:DIR or kafka://host:port",
            )),
        }
    }

    /// The URL form, for summaries.
    pub fn describe(&self, layout: &RunLayout) -> String {
        match self {
            BusTarget::RunDefault => format!("file://{}", layout.eb().display()),
            BusTarget::File(dir) => format!("file://{}", dir.display()),
            BusTarget::Kafka { brokers } => format!("kafka://{brokers}"),
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
        BusTarget::Kafka { brokers } => {
            let sink = crate::kafka::KafkaSink::open(&format!("kafka://{brokers}"))
                .map_err(|e| IngestError::sink("(bus)", e))?;
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
        assert_eq!(
            BusTarget::parse("kafka://a:9092,b:9093").ok(),
            Some(BusTarget::Kafka {
                brokers: "a:9092,b:9093".into()
            })
        );
        for bad in [
            "",
            "eb",
            "s3://x/y",
            "kafka://",
            "kafka://host",
            "file:",
            "http://x:1",
        ] {
            let e = BusTarget::parse(bad).err();
            assert_eq!(e.map(|e| e.code()), Some("BUS_URL_UNSUPPORTED"), "{bad}");
        }
    }
}
