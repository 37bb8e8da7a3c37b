//! Kafka as a [`Sink`]: the gate's admitted events on Kafka-protocol brokers (Apache
//! Kafka, Redpanda, tansu), with the file bus's semantics. Built on `rdkafka` (librdkafka
//! compiled from its bundled sources).
//!
//! It is not a consumer library and not a topic manager: it appends the gate's records to
//! the partitions the gate chose, creates missing topics, and reads partitions back for
//! reconciliation and parity. `docs/kafka.md` is the reference.
//!
//! ```text
//!  gate recorder ── append_many(topic, [(partition, records)…]) ──> produce::append_many
//!                   returns after every record is acknowledged       ThreadedProducer<Acks>
//!                   (acks=all, idempotent, zstd, linger, <= 5         (idempotent, zstd)
//!                   in flight) with each group's first offset                │
//!  reconcile /  ── partitions / end_offset / read ──> admin::partitions,      ▼
//!  parity /         (metadata; a consumer without     read::end,           brokers
//!  audit             a group, to the partition end)   read::scan
//!  prepare_topics ─ ensure_topic ──> admin::partitions, admin::create
//! ```
//!
//! The bus position a receipt records is the Kafka partition and offset. The sink checks
//! that each append's records got consecutive offsets (true for one producer without
//! transactions); if another producer interleaves, the append fails
//! `KAFKA_OFFSETS_NOT_CONSECUTIVE` rather than receipt wrong positions.
//!
//! Modules: [`url`] (`kafka://` URLs, options), [`codes`] (error codes and mapping),
//! [`produce`] (appending), [`admin`] (topics), [`read`] (reading back).

pub mod admin;
pub mod codes;
pub mod produce;
pub mod read;
pub mod url;

use std::time::Duration;

use rdkafka::admin::AdminClient;
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{Producer, ThreadedProducer};

use crate::error::SinkError;
use crate::sink::{Sink, SinkRecord, Visit};

pub use url::{is_kafka_url, KafkaOptions};

/// zstd level of the producer's batches (librdkafka's `compression.level`): fast, as the
/// file bus's level 1.
pub const ZSTD_LEVEL: i32 = 1;

/// Longest wait for the first contact with the brokers (`KAFKA_BROKERS_UNREACHABLE`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Producer bound: at most this much record data queued in librdkafka (in-flight bound
/// besides the 5 requests per connection).
const QUEUE_KBYTES: u32 = 64 * 1024;

/// The brokers of a `kafka://` URL as a sink.
pub struct KafkaSink {
    opts: KafkaOptions,
    producer: ThreadedProducer<produce::Acks>,
    admin: Option<AdminClient<DefaultClientContext>>,
    consumer: Option<read::Reader>,
}

impl std::fmt::Debug for KafkaSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSink")
            .field("brokers", &self.opts.brokers)
            .finish_non_exhaustive()
    }
}

/// The settings every client of the sink shares (brokers, then the URL's extra
/// properties, which may override ours).
fn base_config(opts: &KafkaOptions) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", opts.bootstrap())
        .set("client.id", "sluice")
        .set(
            "socket.connection.setup.timeout.ms",
            opts.timeout.as_millis().min(i32::MAX as u128).to_string(),
        );
    c
}

fn with_extra(mut c: ClientConfig, opts: &KafkaOptions) -> ClientConfig {
    for (k, v) in &opts.extra {
        c.set(k, v);
    }
    c
}

/// The producer's settings (see `docs/kafka.md`, "Producer").
pub fn producer_config(opts: &KafkaOptions) -> ClientConfig {
    let mut c = base_config(opts);
    c.set("enable.idempotence", "true")
        .set("acks", "all")
        .set("compression.type", "zstd")
        .set("compression.level", ZSTD_LEVEL.to_string())
        .set("linger.ms", opts.linger_ms.to_string())
        .set(
            "max.in.flight.requests.per.connection",
            opts.in_flight.to_string(),
        )
        .set(
            "message.timeout.ms",
            opts.timeout.as_millis().min(i32::MAX as u128).to_string(),
        )
        .set("queue.buffering.max.kbytes", QUEUE_KBYTES.to_string())
        // Never create a topic as a side effect of producing or of a metadata request:
        // creation is explicit (ensure_topic), with the requested partition count.
        .set("allow.auto.create.topics", "false");
    with_extra(c, opts)
}

fn consumer_config(opts: &KafkaOptions) -> ClientConfig {
    let mut c = base_config(opts);
    // librdkafka wants a group for `assign`; nothing is ever committed to it.
    c.set("group.id", "sluice-read")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "true")
        .set("isolation.level", "read_uncommitted")
        // Reads stop at the end of the partition: do not let the broker hold an empty
        // fetch waiting for new records (the default waits 500 ms).
        .set("fetch.wait.max.ms", "10")
        .set("auto.offset.reset", "error")
        .set("allow.auto.create.topics", "false");
    with_extra(c, opts)
}

fn client_error(e: &rdkafka::error::KafkaError, what: &str) -> SinkError {
    codes::kafka_error(e, codes::CLIENT_FAILED, what)
}

impl KafkaSink {
    /// Connect to the brokers of `url` (`kafka://host:port[,host:port][?options]`).
    pub fn open(url: &str) -> Result<KafkaSink, SinkError> {
        Self::connect(KafkaOptions::parse(url)?)
    }

    /// Create the producer and check that a broker answers (cluster metadata), so that a
    /// wrong address fails now with `KAFKA_BROKERS_UNREACHABLE`, not at the first append.
    pub fn connect(opts: KafkaOptions) -> Result<KafkaSink, SinkError> {
        let producer: ThreadedProducer<produce::Acks> = producer_config(&opts)
            .create_with_context(produce::Acks::default())
            .map_err(|e| client_error(&e, "create the Kafka producer"))?;
        let wait = opts.timeout.min(CONNECT_TIMEOUT);
        producer.client().fetch_metadata(None, wait).map_err(|e| {
            let mut err = codes::kafka_error(&e, codes::BROKERS_UNREACHABLE, "");
            // No answer at all within the wait is an unreachable cluster.
            if err.code == codes::TIMEOUT {
                err.code = codes::BROKERS_UNREACHABLE;
            }
            err.message = format!(
                "no Kafka broker of {} answered within {wait:?} ({e})",
                opts.bootstrap()
            );
            err
        })?;
        Ok(KafkaSink {
            opts,
            producer,
            admin: None,
            consumer: None,
        })
    }

    pub fn options(&self) -> &KafkaOptions {
        &self.opts
    }

    fn admin(&mut self) -> Result<&AdminClient<DefaultClientContext>, SinkError> {
        let admin = match self.admin.take() {
            Some(a) => a,
            None => with_extra(base_config(&self.opts), &self.opts)
                .create()
                .map_err(|e| client_error(&e, "create the Kafka admin client"))?,
        };
        Ok(self.admin.insert(admin))
    }

    fn consumer(&mut self) -> Result<&read::Reader, SinkError> {
        let consumer = match self.consumer.take() {
            Some(c) => c,
            None => consumer_config(&self.opts)
                .create_with_context(read::ReadContext)
                .map_err(|e| client_error(&e, "create the Kafka consumer"))?,
        };
        Ok(self.consumer.insert(consumer))
    }
}

impl Sink for KafkaSink {
    fn ensure_topic(&mut self, topic: &str, partitions: u32) -> Result<u32, SinkError> {
        let timeout = self.opts.timeout;
        if let Some(n) = admin::partitions(self.producer.client(), topic, timeout)? {
            return Ok(n);
        }
        if !self.opts.create_topics {
            return Err(SinkError {
                code: codes::TOPIC_NOT_FOUND,
                message: format!(
                    "topic {topic} does not exist on {} and topic creation is off (--no-create-topics)",
                    self.opts.bootstrap()
                ),
            });
        }
        let replication = self.opts.replication;
        admin::create(
            self.admin()?,
            topic,
            partitions.max(1),
            replication,
            timeout,
        )?;
        // Creation is asynchronous on the brokers: wait until metadata shows the topic.
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(n) = admin::partitions(self.producer.client(), topic, timeout)? {
                tracing::info!("created Kafka topic {topic} with {n} partition(s)");
                return Ok(n);
            }
            if std::time::Instant::now() >= deadline {
                return Err(SinkError {
                    code: codes::TIMEOUT,
                    message: format!("topic {topic} created but not visible within {timeout:?}"),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn partitions(&mut self, topic: &str) -> Result<Option<u32>, SinkError> {
        admin::partitions(self.producer.client(), topic, self.opts.timeout)
    }

    fn append(
        &mut self,
        topic: &str,
        partition: u32,
        records: &[SinkRecord<'_>],
    ) -> Result<u64, SinkError> {
        let firsts = self.append_many(topic, &[(partition, records)])?;
        Ok(firsts.first().copied().unwrap_or(0))
    }

    /// Every group is sent before waiting, so the partitions' batches overlap on the wire.
    fn append_many(
        &mut self,
        topic: &str,
        groups: &[(u32, &[SinkRecord<'_>])],
    ) -> Result<Vec<u64>, SinkError> {
        produce::append_many(&self.producer, topic, groups, self.opts.timeout)
    }

    fn end_offset(&mut self, topic: &str, partition: u32) -> Result<u64, SinkError> {
        let timeout = self.opts.timeout;
        read::end(self.consumer()?, topic, partition, timeout)
    }

    fn read(
        &mut self,
        topic: &str,
        partition: u32,
        from: u64,
        visit: &mut Visit<'_>,
    ) -> Result<(), SinkError> {
        let timeout = self.opts.timeout;
        read::scan(self.consumer()?, topic, partition, from, timeout, visit).map(|_| ())
    }

    /// Topics on a cluster are shared by every run that replays into it.
    fn outlives_run(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests;
