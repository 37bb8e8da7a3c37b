//! Appending: the idempotent producer, and waiting until the brokers acknowledged every
//! record of an append.
//!
//! ```text
//!  append_many(topic, groups)         librdkafka (its own threads)          brokers
//!   1. stamp a new generation
//!   2. send each record, opaque =  ──> queue ─> batches per partition ─────> ProduceRequest
//!      (generation, index);            (linger.ms, zstd, <= 5 in flight,     (acks=all)
//!      queue full: wait a little        idempotent sequence numbers)
//!   3. wait on the condvar      <────── delivery report per record <──────── offsets
//!      until every index of this        (polling thread: Acks::delivery)
//!      generation has its result
//!   4. any error -> SinkError; offsets of each group must be first, first+1, …
//! ```
//!
//! Why the steps are safe:
//! - The idempotent producer numbers every batch, so librdkafka's retries of transient
//!   failures (a lost connection, a leader change, a request timeout) never write a
//!   record twice and never reorder a partition.
//! - `append` returns only when every record has its delivery report, and fails if one
//!   failed; the gate calls its durable callback (and later checkpoints) only after a
//!   successful return, so a checkpoint never passes an unacknowledged record.
//! - Records of a failed append may still be on the brokers (e.g. acknowledged after the
//!   deadline, or the process killed mid-append): the gate's reconciliation on the next
//!   open reads them back past its watermark and writes their receipts; a resend is then a
//!   DUPLICATE.
//! - Deliveries that arrive after their append gave up carry an old generation and are
//!   ignored.

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;

use crate::error::SinkError;
use crate::sink::SinkRecord;

use super::codes;

// The opaque packs a 32-bit generation above a 32-bit index.
const _: () = assert!(usize::BITS >= 64);

/// One record's outcome: partition and offset, or librdkafka's error.
type Outcome = Result<(i32, i64), RDKafkaErrorCode>;

#[derive(Debug, Default)]
struct AckState {
    generation: u32,
    outcomes: Vec<Option<Outcome>>,
    pending: usize,
}

/// The producer's context: collects delivery reports for the append in progress.
#[derive(Debug, Default)]
pub struct Acks {
    state: Mutex<AckState>,
    done: Condvar,
}

impl ClientContext for Acks {}

impl ProducerContext for Acks {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, opaque: usize) {
        let generation = (opaque >> 32) as u32;
        let index = opaque & 0xffff_ffff;
        let outcome = match result {
            Ok(m) => Ok((m.partition(), m.offset())),
            Err((e, _)) => Err(e.rdkafka_error_code().unwrap_or(RDKafkaErrorCode::Fail)),
        };
        let mut s = self.lock();
        if s.generation != generation {
            return;
        }
        if let Some(slot @ None) = s.outcomes.get_mut(index) {
            *slot = Some(outcome);
            s.pending -= 1;
            if s.pending == 0 {
                self.done.notify_all();
            }
        }
    }
}

impl Acks {
    fn lock(&self) -> MutexGuard<'_, AckState> {
        // A poisoned lock only means a panic elsewhere; the state is plain data.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Start collecting `n` outcomes; returns the new generation.
    fn begin(&self, n: usize) -> u32 {
        let mut s = self.lock();
        s.generation = s.generation.wrapping_add(1);
        s.outcomes.clear();
        s.outcomes.resize(n, None);
        s.pending = n;
        s.generation
    }

    /// Forget outcomes not yet sent (an append that stopped early).
    fn sent_only(&self, sent: usize) {
        let mut s = self.lock();
        s.outcomes.truncate(sent);
        s.pending = s.outcomes.iter().filter(|o| o.is_none()).count();
    }

    /// Wait until every outcome is in, or `deadline`.
    fn wait(&self, deadline: Instant) -> Result<Vec<Option<Outcome>>, usize> {
        let mut s = self.lock();
        while s.pending > 0 {
            let now = Instant::now();
            if now >= deadline {
                return Err(s.pending);
            }
            s = self
                .done
                .wait_timeout(s, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        Ok(std::mem::take(&mut s.outcomes))
    }
}

/// Send `groups` (partition, records) to `topic` and wait for every acknowledgement;
/// returns each group's first offset. `timeout` bounds the wait after the last send
/// (librdkafka's own `message.timeout.ms` is the same, so it normally answers first).
pub fn append_many(
    producer: &ThreadedProducer<Acks>,
    topic: &str,
    groups: &[(u32, &[SinkRecord<'_>])],
    timeout: Duration,
) -> Result<Vec<u64>, SinkError> {
    let total: usize = groups.iter().map(|g| g.1.len()).sum();
    if total == 0 {
        return Ok(vec![0; groups.len()]);
    }
    if total >= 1 << 32 {
        return Err(SinkError {
            code: codes::PRODUCE_FAILED,
            message: format!("one append of {total} records is too large"),
        });
    }
    let acks = producer.context();
    let generation = acks.begin(total);
    let mut index = 0usize;
    for &(partition, records) in groups {
        for r in records {
            let opaque = ((generation as usize) << 32) | index;
            if let Err(e) = send(producer, topic, partition, r, opaque, timeout) {
                acks.sent_only(index);
                // Let what was sent finish (or time out) so the next append starts clean.
                let _ = acks.wait(Instant::now() + timeout);
                return Err(e);
            }
            index += 1;
        }
    }
    // librdkafka fails a record after message.timeout.ms; the margin covers its report.
    let outcomes = acks
        .wait(Instant::now() + timeout + Duration::from_secs(5))
        .map_err(|pending| SinkError {
            code: codes::TIMEOUT,
            message: format!(
                "{pending} of {total} record(s) to {topic} not acknowledged within {:?}",
                timeout
            ),
        })?;
    first_offsets(topic, groups, &outcomes)
}

/// Enqueue one record, waiting while the producer's queue is full.
fn send(
    producer: &ThreadedProducer<Acks>,
    topic: &str,
    partition: u32,
    r: &SinkRecord<'_>,
    opaque: usize,
    timeout: Duration,
) -> Result<(), SinkError> {
    let mut record = BaseRecord::with_opaque_to(topic, opaque)
        .partition(partition as i32)
        .key(r.key)
        .payload(r.value);
    // Kafka timestamps are milliseconds since the epoch and must not be negative.
    if r.ts_micros >= 0 {
        record = record.timestamp(r.ts_micros / 1000);
    }
    let started = Instant::now();
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back))
                if started.elapsed() < timeout =>
            {
                // The queue is the in-flight bound: wait for acknowledgements to drain it.
                record = back;
                std::thread::sleep(Duration::from_millis(1));
            }
            Err((e, _)) => {
                return Err(codes::kafka_error(
                    &e,
                    codes::PRODUCE_FAILED,
                    &format!("enqueue to {topic}/{partition}"),
                ))
            }
        }
    }
}

/// Check every outcome and that each group's offsets are consecutive from its first.
fn first_offsets(
    topic: &str,
    groups: &[(u32, &[SinkRecord<'_>])],
    outcomes: &[Option<Outcome>],
) -> Result<Vec<u64>, SinkError> {
    let mut firsts = Vec::with_capacity(groups.len());
    let mut at = 0usize;
    for &(partition, records) in groups {
        let mut first = None;
        for j in 0..records.len() {
            let outcome = outcomes.get(at + j).copied().flatten();
            let (p, offset) = match outcome {
                Some(Ok(po)) => po,
                Some(Err(code)) => {
                    return Err(codes::error_code(
                        code,
                        codes::PRODUCE_FAILED,
                        &format!("record {j} of an append to {topic}/{partition} failed"),
                    ))
                }
                None => {
                    return Err(SinkError {
                        code: codes::PRODUCE_FAILED,
                        message: format!(
                            "no delivery report for record {j} to {topic}/{partition}"
                        ),
                    })
                }
            };
            let first = *first.get_or_insert(offset);
            if p != partition as i32 || offset < 0 || offset != first + j as i64 {
                return Err(SinkError {
                    code: codes::OFFSETS_NOT_CONSECUTIVE,
                    message: format!(
                        "record {j} of an append to {topic}/{partition} landed at {p}/{offset}, expected {partition}/{}; another producer is writing to the topic",
                        first + j as i64
                    ),
                });
            }
        }
        firsts.push(first.unwrap_or(0) as u64);
        at += records.len();
    }
    Ok(firsts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recs(n: usize) -> Vec<SinkRecord<'static>> {
        (0..n)
            .map(|_| SinkRecord {
                ts_micros: 0,
                key: b"k",
                value: b"v",
            })
            .collect()
    }

    #[test]
    fn consecutive_offsets_give_firsts() {
        let a = recs(2);
        let b = recs(1);
        let groups: Vec<(u32, &[SinkRecord<'_>])> = vec![(0, &a), (3, &b)];
        let out = vec![Some(Ok((0, 10))), Some(Ok((0, 11))), Some(Ok((3, 0)))];
        assert_eq!(first_offsets("t", &groups, &out).unwrap(), vec![10, 0]);
    }

    #[test]
    fn gaps_failures_and_missing_reports_are_errors() {
        let a = recs(2);
        let groups: Vec<(u32, &[SinkRecord<'_>])> = vec![(0, &a)];
        let gap = vec![Some(Ok((0, 10))), Some(Ok((0, 12)))];
        let e = first_offsets("t", &groups, &gap).unwrap_err();
        assert_eq!(e.code, codes::OFFSETS_NOT_CONSECUTIVE);
        let other_partition = vec![Some(Ok((0, 10))), Some(Ok((1, 11)))];
        let e = first_offsets("t", &groups, &other_partition).unwrap_err();
        assert_eq!(e.code, codes::OFFSETS_NOT_CONSECUTIVE);
        let denied = vec![
            Some(Ok((0, 10))),
            Some(Err(RDKafkaErrorCode::TopicAuthorizationFailed)),
        ];
        let e = first_offsets("t", &groups, &denied).unwrap_err();
        assert_eq!(e.code, codes::NOT_AUTHORIZED);
        let missing = vec![Some(Ok((0, 10))), None];
        let e = first_offsets("t", &groups, &missing).unwrap_err();
        assert_eq!(e.code, codes::PRODUCE_FAILED);
    }

    #[test]
    fn stale_generations_are_ignored() {
        let acks = Acks::default();
        let g1 = acks.begin(1);
        let g2 = acks.begin(1);
        assert_ne!(g1, g2);
        // A report for g1 must not complete g2's append.
        assert!(acks.lock().generation == g2 && acks.lock().pending == 1);
        acks.sent_only(0);
        assert!(matches!(acks.wait(Instant::now()), Ok(v) if v.is_empty()));
    }
}
