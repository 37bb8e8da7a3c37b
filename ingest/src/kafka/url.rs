//! `kafka://` bus URLs: which brokers, and the few knobs a replay may set.
//!
//! ```text
//!  kafka://host:port[,host:port…][?option=value&…]
//!          └ bootstrap brokers ┘   replication=N     replication factor of created topics
//!                                                    (default -1: the broker's default)
//!                                  linger_ms=N       producer batching delay (default 1)
//!                                  in_flight=N       requests in flight per broker, 1..=5
//!                                  timeout_ms=N      delivery / metadata deadline (default 30000)
//!                                  create_topics=false   same as --no-create-topics
//!                                  a.dotted.key=v    passed to librdkafka as is
//!                                                    (e.g. security.protocol, client.id)
//! ```
//!
//! Parsing only: nothing here talks to a broker. A port may be omitted (9092); IPv6 hosts
//! are written in brackets (`[::1]:9092`).

use std::time::Duration;

use crate::error::SinkError;

use super::codes;

/// The scheme that selects the Kafka sink.
pub const SCHEME: &str = "kafka://";

/// The port of a broker written without one.
pub const DEFAULT_PORT: u16 = 9092;

/// Where the brokers are and how to talk to them (parsed from a `kafka://` URL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaOptions {
    /// `host:port` of each bootstrap broker, in the order given.
    pub brokers: Vec<String>,
    /// Create missing topics through the admin API (off: a missing topic is
    /// `KAFKA_TOPIC_NOT_FOUND`).
    pub create_topics: bool,
    /// Replication factor of created topics; -1 leaves it to the broker.
    pub replication: i32,
    /// How long the producer waits to fill a batch (`linger.ms`).
    pub linger_ms: u32,
    /// Produce requests in flight per broker connection (idempotence allows at most 5).
    pub in_flight: u32,
    /// Deadline of one delivery (librdkafka retries transient errors within it), and of
    /// metadata, admin and read requests.
    pub timeout: Duration,
    /// Further librdkafka properties, set verbatim after ours.
    pub extra: Vec<(String, String)>,
}

impl Default for KafkaOptions {
    fn default() -> Self {
        KafkaOptions {
            brokers: Vec::new(),
            create_topics: true,
            replication: -1,
            // The gate waits for each group's acknowledgements, so linger is pure latency
            // per group; 1 ms measured best (docs/kafka.md, "Performance").
            linger_ms: 1,
            in_flight: 5,
            timeout: Duration::from_secs(30),
            extra: Vec::new(),
        }
    }
}

/// Whether `bus` names a Kafka bus (rather than a file bus directory).
pub fn is_kafka_url(bus: &str) -> bool {
    bus.len() >= SCHEME.len() && bus[..SCHEME.len()].eq_ignore_ascii_case(SCHEME)
}

fn invalid(url: &str, why: impl std::fmt::Display) -> SinkError {
    SinkError {
        code: codes::URL_INVALID,
        message: format!("invalid Kafka URL {url:?}: {why}"),
    }
}

impl KafkaOptions {
    /// Parse `kafka://host:port[,host:port][?options]` (see the module doc).
    pub fn parse(url: &str) -> Result<KafkaOptions, SinkError> {
        if !is_kafka_url(url) {
            return Err(invalid(url, "it must start with kafka://"));
        }
        let rest = &url[SCHEME.len()..];
        let (hosts, query) = match rest.split_once('?') {
            Some((h, q)) => (h, Some(q)),
            None => (rest, None),
        };
        let hosts = hosts.strip_suffix('/').unwrap_or(hosts);
        let mut opts = KafkaOptions::default();
        for broker in hosts.split(',') {
            opts.brokers
                .push(parse_broker(broker).map_err(|why| invalid(url, why))?);
        }
        for pair in query.into_iter().flat_map(|q| q.split('&')) {
            if pair.is_empty() {
                continue;
            }
            let (k, v) = pair
                .split_once('=')
                .ok_or_else(|| invalid(url, format!("option {pair:?} has no '='")))?;
            opts.set(k, v).map_err(|why| invalid(url, why))?;
        }
        Ok(opts)
    }

    fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        fn num<T: std::str::FromStr>(key: &str, value: &str) -> Result<T, String> {
            value
                .parse()
                .map_err(|_| format!("{key}={value:?} is not a valid number"))
        }
        match key {
            "replication" => {
                let r: i32 = num(key, value)?;
                if r == 0 || r < -1 {
                    return Err(format!("replication must be -1 or >= 1, not {r}"));
                }
                self.replication = r;
            }
            "linger_ms" => self.linger_ms = num(key, value)?,
            "in_flight" => {
                let n: u32 = num(key, value)?;
                if !(1..=5).contains(&n) {
                    return Err(format!(
                        "in_flight must be 1 to 5 (the idempotent producer's limit), not {n}"
                    ));
                }
                self.in_flight = n;
            }
            "timeout_ms" => {
                let ms: u64 = num(key, value)?;
                if ms == 0 {
                    return Err("timeout_ms must be positive".into());
                }
                self.timeout = Duration::from_millis(ms);
            }
            "create_topics" => {
                self.create_topics = match value {
                    "true" | "1" => true,
                    "false" | "0" => false,
                    _ => return Err(format!("create_topics={value:?} is not true/false")),
                }
            }
            k if k.contains('.') && !value.is_empty() => {
                self.extra.push((k.to_string(), value.to_string()));
            }
            _ => return Err(format!("unknown option {key:?}")),
        }
        Ok(())
    }

    /// `bootstrap.servers`: the brokers joined by commas.
    pub fn bootstrap(&self) -> String {
        self.brokers.join(",")
    }
}

/// One `host[:port]`, returned as `host:port`.
fn parse_broker(broker: &str) -> Result<String, String> {
    if broker.is_empty() {
        return Err("empty broker address".into());
    }
    let (host, port) = if let Some(v6) = broker.strip_prefix('[') {
        let (h, after) = v6
            .split_once(']')
            .ok_or_else(|| format!("{broker:?}: unclosed '['"))?;
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or_else(|| format!("{broker:?}: expected ':' after ']'"))?,
            ),
        };
        (format!("[{h}]"), port)
    } else {
        match broker.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (broker.to_string(), None),
        }
    };
    let bad_host = host.is_empty()
        || host == "[]"
        || host
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '/' | '@' | '?' | '#' | ','));
    if bad_host {
        return Err(format!("{broker:?}: bad host"));
    }
    let port = match port {
        None => DEFAULT_PORT,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => n,
            _ => return Err(format!("{broker:?}: port must be 1 to 65535")),
        },
    };
    Ok(format!("{host}:{port}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_and_several_brokers() {
        let o = KafkaOptions::parse("kafka://127.0.0.1:9093").unwrap();
        assert_eq!(o.brokers, vec!["127.0.0.1:9093"]);
        assert!(o.create_topics);
        let o = KafkaOptions::parse("kafka://a:1,b,[::1]:3,[fe80::2]/").unwrap();
        assert_eq!(
            o.brokers,
            vec!["a:1", "b:9092", "[::1]:3", "[fe80::2]:9092"]
        );
        assert_eq!(o.bootstrap(), "a:1,b:9092,[::1]:3,[fe80::2]:9092");
        assert!(is_kafka_url("KAFKA://x:1"));
        assert!(!is_kafka_url("runs/eb"));
        assert!(!is_kafka_url("kafka:/x"));
    }

    #[test]
    fn options() {
        let o = KafkaOptions::parse(
            "kafka://h:1?replication=3&linger_ms=0&in_flight=1&timeout_ms=500&create_topics=false&client.id=me",
        )
        .unwrap();
        assert_eq!(o.replication, 3);
        assert_eq!(o.linger_ms, 0);
        assert_eq!(o.in_flight, 1);
        assert_eq!(o.timeout, Duration::from_millis(500));
        assert!(!o.create_topics);
        assert_eq!(o.extra, vec![("client.id".to_string(), "me".to_string())]);
    }

    #[test]
    fn rejects() {
        for bad in [
            "http://h:1",
            "kafka://",
            "kafka://h:1,,h:2",
            "kafka://h:0",
            "kafka://h:65536",
            "kafka://h:x",
            "kafka://:9092",
            "kafka://[::1",
            "kafka://[::1]x",
            "kafka://u@h:1",
            "kafka://h:1?replication=0",
            "kafka://h:1?in_flight=6",
            "kafka://h:1?timeout_ms=0",
            "kafka://h:1?create_topics=maybe",
            "kafka://h:1?nodots=1",
            "kafka://h:1?linger_ms",
        ] {
            let e = KafkaOptions::parse(bad).unwrap_err();
            assert_eq!(e.code, codes::URL_INVALID, "{bad}: {e}");
        }
    }
}
