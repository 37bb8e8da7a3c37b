//! The sink against librdkafka's built-in mock cluster (in process, no broker needed):
//! round trips, consecutive offsets, missing topics, and the error codes of refused
//! requests. The end-to-end tests against a real broker (tansu) are in
//! `tests/tests/kafka_*.rs`.

use rdkafka::mocking::MockCluster;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};

use super::*;

fn sink_for(cluster: &MockCluster<'_, impl rdkafka::ClientContext>, query: &str) -> KafkaSink {
    let url = format!(
        "kafka://{}?timeout_ms=5000{query}",
        cluster.bootstrap_servers()
    );
    KafkaSink::open(&url).unwrap()
}

fn records(n: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
    (0..n)
        .map(|i| {
            (
                format!("k{i}").into_bytes(),
                format!("{{\"i\":{i}}}").into_bytes(),
            )
        })
        .collect()
}

fn as_sink(rs: &[(Vec<u8>, Vec<u8>)]) -> Vec<SinkRecord<'_>> {
    rs.iter()
        .enumerate()
        .map(|(i, (k, v))| SinkRecord {
            ts_micros: 1_767_601_813_260_000 + i as i64,
            key: k,
            value: v,
        })
        .collect()
}

#[test]
fn appends_get_consecutive_offsets_and_read_back_in_order() {
    let cluster = MockCluster::new(1).unwrap();
    cluster.create_topic("t", 3, 1).unwrap();
    let mut sink = sink_for(&cluster, "");
    assert_eq!(sink.partitions("t").unwrap(), Some(3));
    assert_eq!(sink.partitions("absent").unwrap(), None);
    // An existing topic keeps its own partition count.
    assert_eq!(sink.ensure_topic("t", 8).unwrap(), 3);

    let a = records(5);
    let b = records(2);
    let firsts = sink
        .append_many("t", &[(0, &as_sink(&a)), (2, &as_sink(&b))])
        .unwrap();
    assert_eq!(firsts, vec![0, 0]);
    assert_eq!(sink.append("t", 0, &as_sink(&b)).unwrap(), 5);
    assert_eq!(sink.end_offset("t", 0).unwrap(), 7);
    assert_eq!(sink.end_offset("t", 1).unwrap(), 0);

    // The oracle: what was appended to partition 0, in order.
    let mut want: Vec<(u64, Vec<u8>)> = a
        .iter()
        .map(|r| r.1.clone())
        .enumerate()
        .map(|(i, v)| (i as u64, v))
        .collect();
    want.extend(
        b.iter()
            .enumerate()
            .map(|(i, r)| (5 + i as u64, r.1.clone())),
    );
    for from in [0u64, 3, 6, 7] {
        let mut got = Vec::new();
        sink.read("t", 0, from, &mut |o, v| {
            got.push((o, v.to_vec()));
            Ok(())
        })
        .unwrap();
        assert_eq!(got, want[from as usize..].to_vec(), "from {from}");
    }
    // A visitor's error stops the read and is returned as is.
    let e = sink
        .read("t", 0, 0, &mut |_, _| {
            Err(SinkError {
                code: "STOP",
                message: "stop".into(),
            })
        })
        .unwrap_err();
    assert_eq!(e.code, "STOP");
}

#[test]
fn a_missing_topic_with_creation_off_is_topic_not_found() {
    let cluster = MockCluster::new(1).unwrap();
    let mut sink = sink_for(&cluster, "&create_topics=false");
    let e = sink.ensure_topic("fp.bus.traffic.fraud.v1", 4).unwrap_err();
    assert_eq!(e.code, codes::TOPIC_NOT_FOUND, "{e}");
    assert!(e.message.contains("--no-create-topics"), "{e}");
}

#[test]
fn a_refused_produce_is_not_authorized() {
    let cluster = MockCluster::new(1).unwrap();
    cluster.create_topic("t", 1, 1).unwrap();
    let mut sink = sink_for(&cluster, "");
    // Let the producer get its id first, then refuse the write.
    let r = records(1);
    assert_eq!(sink.append("t", 0, &as_sink(&r)).unwrap(), 0);
    cluster.request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED],
    );
    let e = sink.append("t", 0, &as_sink(&r)).unwrap_err();
    assert_eq!(e.code, codes::NOT_AUTHORIZED, "{e}");
}

#[test]
fn transient_produce_errors_are_retried() {
    let cluster = MockCluster::new(1).unwrap();
    cluster.create_topic("t", 1, 1).unwrap();
    let mut sink = sink_for(&cluster, "");
    let r = records(3);
    assert_eq!(sink.append("t", 0, &as_sink(&r)).unwrap(), 0);
    // Two retriable failures, then success: one copy, consecutive offsets.
    cluster.request_errors(
        RDKafkaApiKey::Produce,
        &[
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
        ],
    );
    assert_eq!(sink.append("t", 0, &as_sink(&r)).unwrap(), 3);
    assert_eq!(sink.end_offset("t", 0).unwrap(), 6);
}

#[test]
fn no_broker_is_brokers_unreachable() {
    // A port nothing listens on (bound, then closed).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap();
    let e = KafkaSink::open(&format!("kafka://127.0.0.1:{port}?timeout_ms=1000")).unwrap_err();
    assert_eq!(e.code, codes::BROKERS_UNREACHABLE, "{e}");
}
