//! Criterion benches of the file bus: batch encoding alone (the CPU path), append with an
//! fsync per batch, and reads from page cache, for 100-byte and 1 KiB records.
//!
//! `cargo bench -p sluice-benches --bench bus_append`. The side-by-side comparison with dd
//! and the legacy pattern is `sluice bench bus`.

use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use sluice_bus::format::record::{BatchEncoder, EncodedBatches};
use sluice_bus::{Bus, BusOptions, Compression, Durability, Record, StartAt, TopicConfig};

fn values(size: usize) -> Vec<Vec<u8>> {
    (0..64u8)
        .map(|i| {
            (0..size)
                .map(|j| b'a' + ((i as usize + j) % 26) as u8)
                .collect()
        })
        .collect()
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("sluice-bench-bus-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn encode(c: &mut Criterion) {
    let mut g = c.benchmark_group("bus_encode");
    for size in [100usize, 1024] {
        let pool = values(size);
        let n = (1 << 20) / size;
        let records: Vec<_> = (0..n)
            .map(|i| Record::new(&pool[i % 64], i as i64))
            .collect();
        g.throughput(Throughput::Elements(n as u64));
        for (label, comp) in [("none", Compression::None), ("zstd", Compression::Zstd)] {
            let mut enc = BatchEncoder::new(comp, 3, 1 << 20);
            let mut out = EncodedBatches::default();
            g.bench_function(format!("{size}B/{label}"), |b| {
                b.iter(|| {
                    enc.encode(&records, &mut out).unwrap();
                    out.stamp(0);
                })
            });
        }
    }
    g.finish();
}

fn append_fsync(c: &mut Criterion) {
    let mut g = c.benchmark_group("bus_append_fsync_per_batch");
    g.sample_size(10);
    for size in [100usize, 1024] {
        let dir = scratch(&format!("append-{size}"));
        let bus = Bus::create(
            &dir,
            BusOptions {
                durability: Durability::EveryBatch,
                ..BusOptions::default()
            },
        )
        .unwrap();
        bus.create_topic("t", 1, TopicConfig::default()).unwrap();
        let producer = bus.producer("t").unwrap();
        let pool = values(size);
        let n = (4 << 20) / size;
        let records: Vec<_> = (0..n)
            .map(|i| Record::new(&pool[i % 64], i as i64))
            .collect();
        g.throughput(Throughput::Bytes((n * size) as u64));
        g.bench_function(format!("{size}B x {n} per batch"), |b| {
            b.iter(|| producer.append_batch(0, &records).unwrap())
        });
        drop(producer);
        let _ = std::fs::remove_dir_all(&dir);
    }
    g.finish();
}

fn read(c: &mut Criterion) {
    let mut g = c.benchmark_group("bus_read_page_cache");
    g.sample_size(10);
    for size in [100usize, 1024] {
        let dir = scratch(&format!("read-{size}"));
        let bus = Bus::create(
            &dir,
            BusOptions {
                durability: Durability::Never,
                ..BusOptions::default()
            },
        )
        .unwrap();
        bus.create_topic("t", 1, TopicConfig::default()).unwrap();
        let pool = values(size);
        let n = (64 << 20) / size;
        {
            let producer = bus.producer("t").unwrap();
            let records: Vec<_> = (0..n)
                .map(|i| Record::new(&pool[i % 64], i as i64))
                .collect();
            for chunk in records.chunks(10_000) {
                producer.append_batch(0, chunk).unwrap();
            }
        }
        g.throughput(Throughput::Bytes((n * size) as u64));
        g.bench_function(format!("{size}B x {n}"), |b| {
            b.iter_batched(
                || bus.partition_reader("t", 0, StartAt::Earliest).unwrap(),
                |mut r| {
                    let mut total = 0usize;
                    while let Some(batch) = r.next_batch().unwrap() {
                        total += batch
                            .records()
                            .map(|r| r.value.map_or(0, <[u8]>::len))
                            .sum::<usize>();
                    }
                    total
                },
                BatchSize::PerIteration,
            )
        });
        let _ = std::fs::remove_dir_all(&dir);
    }
    g.finish();
}

criterion_group!(benches, encode, append_fsync, read);
criterion_main!(benches);
