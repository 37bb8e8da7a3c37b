//! The Kafka sink against a real Kafka-protocol broker (tansu): topic creation with the
//! requested partition count, idempotent zstd appends acknowledged with consecutive
//! offsets, reading back, and the codes of a missing topic. Compared with a plain
//! in-memory model of the partitions (`sluice_ingest::sink::MemorySink`).

mod kafka_support;

use kafka_support::Tansu;
use sluice_ingest::kafka::{codes, KafkaSink};
use sluice_ingest::sink::{MemorySink, Sink, SinkRecord};
use sluice_storage::gen::rng::SplitMix64;

/// A record's key and value.
type KeyValue = (Vec<u8>, Vec<u8>);

fn read_all(sink: &mut dyn Sink, topic: &str, partition: u32, from: u64) -> Vec<(u64, Vec<u8>)> {
    let mut got = Vec::new();
    sink.read(topic, partition, from, &mut |o, v| {
        got.push((o, v.to_vec()));
        Ok(())
    })
    .unwrap();
    got
}

#[test]
fn seeded_appends_match_an_in_memory_log() {
    let Some(broker) = Tansu::start("seeded_appends_match_an_in_memory_log") else {
        return;
    };
    let mut kafka = KafkaSink::open(&broker.url()).unwrap();
    let mut model = MemorySink::new();
    let topic = "fp.bus.traffic.fraud.v1";
    assert_eq!(kafka.partitions(topic).unwrap(), None);
    assert_eq!(kafka.ensure_topic(topic, 3).unwrap(), 3);
    // Existing topics keep their count.
    assert_eq!(kafka.ensure_topic(topic, 5).unwrap(), 3);
    assert_eq!(model.ensure_topic(topic, 3).unwrap(), 3);

    let mut rng = SplitMix64::new(42);
    for round in 0..12 {
        // Random groups over the partitions, random sizes (incl. empty), envelope-sized
        // values so that batches span several requests.
        let mut data: Vec<(u32, Vec<KeyValue>)> = Vec::new();
        for p in 0..3u32 {
            if rng.next_u64().is_multiple_of(4) {
                continue;
            }
            let n = (rng.next_u64() % 300) as usize;
            let recs = (0..n)
                .map(|i| {
                    let key = format!("{}", rng.next_u64() % 1000).into_bytes();
                    let value = format!(
                        "{{\"round\":{round},\"i\":{i},\"pad\":\"{}\"}}",
                        "x".repeat((rng.next_u64() % 900) as usize)
                    );
                    (key, value.into_bytes())
                })
                .collect();
            data.push((p, recs));
        }
        let records: Vec<Vec<SinkRecord<'_>>> = data
            .iter()
            .map(|(_, rs)| {
                rs.iter()
                    .enumerate()
                    .map(|(i, (k, v))| SinkRecord {
                        ts_micros: 1_767_601_813_260_000 + i as i64 * 1000,
                        key: k,
                        value: v,
                    })
                    .collect()
            })
            .collect();
        let groups: Vec<(u32, &[SinkRecord<'_>])> = data
            .iter()
            .zip(&records)
            .map(|((p, _), r)| (*p, r.as_slice()))
            .collect();
        let got = kafka.append_many(topic, &groups).unwrap();
        let want = model.append_many(topic, &groups).unwrap();
        assert_eq!(got, want, "round {round}: first offsets");
    }
    for p in 0..3 {
        let end = model.end_offset(topic, p).unwrap();
        assert_eq!(kafka.end_offset(topic, p).unwrap(), end, "partition {p}");
        for from in [0, end / 2, end] {
            assert_eq!(
                read_all(&mut kafka, topic, p, from),
                read_all(&mut model, topic, p, from),
                "partition {p} from {from}"
            );
        }
    }
}

#[test]
fn creation_off_refuses_a_missing_topic() {
    let Some(broker) = Tansu::start("creation_off_refuses_a_missing_topic") else {
        return;
    };
    let mut kafka = KafkaSink::open(&format!("{}?create_topics=false", broker.url())).unwrap();
    let e = kafka
        .ensure_topic("fp.bus.context.arrival_events.v1", 2)
        .unwrap_err();
    assert_eq!(e.code, codes::TOPIC_NOT_FOUND, "{e}");
    // Nothing was created as a side effect.
    let mut kafka = KafkaSink::open(&broker.url()).unwrap();
    assert_eq!(
        kafka
            .partitions("fp.bus.context.arrival_events.v1")
            .unwrap(),
        None
    );
}
