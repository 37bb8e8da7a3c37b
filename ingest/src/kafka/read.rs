//! Reading a partition back, from an offset to its end: what the gate's crash
//! reconciliation and `sluice parity bus` need, and how the sink finds a partition's end.
//!
//! ```text
//!  scan(t, p, from):  assign the consumer to (t, p, from)   (no group join, no commits)
//!                     poll: visit(offset, value) for offset >= from …
//!                     until PartitionEOF (the fetch reached the brokers' high watermark)
//!                     -> the offset after the last record seen
//!
//!  end(t, p):         hw = ListOffsets(latest)
//!                     hw == 0 -> 0;  else max(hw, scan(t, p, hw - 1))
//! ```
//!
//! Why `end` does not trust ListOffsets alone: some Kafka-protocol brokers (tansu 0.6)
//! answer it with the last *batch's* base offset + 1, while the batch holds more records.
//! Scanning from `hw - 1` costs one fetch on Apache Kafka (one record, then EOF) and gives
//! the true end on both. Reads use `read_uncommitted` for the same reason (the sink never
//! writes transactions) and `auto.offset.reset=error`: an offset the brokers no longer
//! hold (retention) is an error, never a silent jump.

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::ClientContext;
use rdkafka::{Offset, TopicPartitionList};

use crate::error::SinkError;
use crate::sink::Visit;

use super::codes;

/// The reading consumer's context: the end of a partition is how every read stops, not
/// an error worth a log line (librdkafka reports it through the error callback too).
#[derive(Debug, Default)]
pub struct ReadContext;

impl ClientContext for ReadContext {
    fn error(&self, error: KafkaError, reason: &str) {
        let eof = matches!(error, KafkaError::PartitionEOF(_))
            || error.rdkafka_error_code() == Some(RDKafkaErrorCode::PartitionEOF);
        if !eof {
            tracing::warn!("Kafka reader: {error}: {reason}");
        }
    }
}

impl ConsumerContext for ReadContext {}

/// The consumer [`scan`] and [`end`] use.
pub type Reader = BaseConsumer<ReadContext>;

/// Visit every record of `topic`/`partition` from `from` to the end; returns the offset
/// after the last record seen (`from` if none). `timeout` bounds the wait for each fetch.
pub fn scan(
    consumer: &Reader,
    topic: &str,
    partition: u32,
    from: u64,
    timeout: Duration,
    visit: &mut Visit<'_>,
) -> Result<u64, SinkError> {
    let what = format!("read {topic}/{partition} from {from}");
    let err = |e: &KafkaError| codes::kafka_error(e, codes::READ_FAILED, &what);
    let start = i64::try_from(from).map_err(|_| SinkError {
        code: codes::READ_FAILED,
        message: format!("{what}: offset out of range"),
    })?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition as i32, Offset::Offset(start))
        .map_err(|e| err(&e))?;
    consumer.assign(&tpl).map_err(|e| err(&e))?;
    let mut next = from;
    let result = loop {
        let m = match consumer.poll(timeout) {
            None => {
                break Err(SinkError {
                    code: codes::TIMEOUT,
                    message: format!("{what}: no record or end of partition within {timeout:?}"),
                })
            }
            Some(Err(KafkaError::PartitionEOF(p))) if p == partition as i32 => break Ok(next),
            Some(Err(KafkaError::PartitionEOF(_))) => continue,
            Some(Err(e)) => break Err(err(&e)),
            Some(Ok(m)) => m,
        };
        if m.topic() != topic || m.partition() != partition as i32 || m.offset() < start {
            continue;
        }
        let offset = m.offset() as u64;
        if let Err(e) = visit(offset, m.payload().unwrap_or_default()) {
            break Err(e);
        }
        next = next.max(offset + 1);
    };
    // Leave the consumer idle (no fetching in the background between reads).
    let _ = consumer.unassign();
    result
}

/// The offset the next record of `topic`/`partition` will get (see the module doc).
pub fn end(
    consumer: &Reader,
    topic: &str,
    partition: u32,
    timeout: Duration,
) -> Result<u64, SinkError> {
    let (_, high) = consumer
        .fetch_watermarks(topic, partition as i32, timeout)
        .map_err(|e| {
            codes::kafka_error(
                &e,
                codes::READ_FAILED,
                &format!("end offset of {topic}/{partition}"),
            )
        })?;
    if high <= 0 {
        return Ok(0);
    }
    let high = high as u64;
    let last = scan(
        consumer,
        topic,
        partition,
        high - 1,
        timeout,
        &mut |_, _| Ok(()),
    )?;
    Ok(high.max(last))
}
