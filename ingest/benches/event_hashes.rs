//! The gate's per-event sha256 work: sha2 one message at a time against
//! `sluice_ingest::sha256x2` (two interleaved SHA-NI chains), on messages of the sizes a
//! traffic event hashes (partition key 8 bytes, dedupe key 91, event-id text ~190,
//! payload hash input ~550). `cargo bench -p sluice-ingest --bench event_hashes`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use sha2::{Digest, Sha256};
use sluice_ingest::sha256x2::{Message, PairHasher};

fn messages(len: usize, n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| (0..len).map(|j| (i * 31 + j * 7) as u8).collect())
        .collect()
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("sha256_per_message");
    for len in [8usize, 91, 190, 550] {
        let msgs = messages(len, 256);
        g.throughput(Throughput::Elements(msgs.len() as u64));
        g.bench_with_input(BenchmarkId::new("sha2", len), &msgs, |b, msgs| {
            b.iter(|| {
                let mut x = 0u8;
                for m in msgs {
                    let d: [u8; 32] = Sha256::digest(m).into();
                    x ^= d[0];
                }
                x
            })
        });
        g.bench_with_input(BenchmarkId::new("pair", len), &msgs, |b, msgs| {
            let mut h = PairHasher::new();
            b.iter(|| {
                let mut x = 0u8;
                for p in msgs.chunks_exact(2) {
                    let (d0, d1) = h.hash_pair(&Message::plain(&p[0]), &Message::plain(&p[1]));
                    x ^= d0[0] ^ d1[0];
                }
                x
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
