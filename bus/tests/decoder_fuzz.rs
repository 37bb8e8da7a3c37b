//! The batch decoder never panics, and never allocates past its caps, on arbitrary bytes:
//! seeded random bytes, and valid batches mutated (bit flips, truncation, length fields),
//! with and without a recomputed CRC so that the record decoder sees garbage too.

mod common;

use common::Rng;
use sluice_bus::format::batch;
use sluice_bus::format::record::{BatchEncoder, EncodedBatches};
use sluice_bus::format::{Batch, Compression, Header, Record};

fn decode_all(bytes: &[u8], batch: &mut Batch) -> usize {
    let mut pos = 0;
    let mut good = 0;
    while pos < bytes.len() {
        let Ok(len) = batch::frame_length(&bytes[pos..]) else {
            break;
        };
        let end = (pos + len).min(bytes.len());
        if let Ok(h) = batch::verify(&bytes[pos..end]) {
            if batch.decode(&h, &bytes[pos..end]).is_ok() {
                good += batch.records().count();
            }
        }
        pos += len;
    }
    good
}

fn valid_batches(rng: &mut Rng) -> Vec<u8> {
    let n = 1 + rng.below(20) as usize;
    let values: Vec<Vec<u8>> = (0..n)
        .map(|_| {
            let k = rng.below(200) as usize;
            rng.bytes(k)
        })
        .collect();
    let hs = [Header {
        key: "k",
        value: b"v",
    }];
    let records: Vec<Record<'_>> = values
        .iter()
        .enumerate()
        .map(|(i, v)| Record {
            key: (i % 3 == 0).then_some(&v[..v.len().min(4)]),
            value: Some(v),
            timestamp: rng.next_u64() as i64 >> 8,
            headers: if i % 4 == 0 { &hs } else { &[] },
        })
        .collect();
    let compression = if rng.chance(50) {
        Compression::Zstd
    } else {
        Compression::None
    };
    let mut enc = BatchEncoder::new(compression, 1, 1 + rng.below(2000) as usize);
    let mut out = EncodedBatches::default();
    enc.encode(&records, &mut out).unwrap();
    out.stamp(rng.below(1000));
    out.bytes
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng::new(7);
    let mut batch = Batch::default();
    for _ in 0..3000 {
        let n = rng.below(300) as usize;
        let mut bytes = rng.bytes(n);
        if rng.chance(50) && bytes.len() >= 16 {
            bytes[0..4].copy_from_slice(b"SBUS"); // get past the magic
            let len = (rng.below(400) as u32).to_le_bytes();
            bytes[12..16].copy_from_slice(&len);
        }
        decode_all(&bytes, &mut batch);
    }
}

#[test]
fn mutated_batches_never_panic_and_unmutated_ones_decode() {
    let mut rng = Rng::new(11);
    let mut batch = Batch::default();
    let mut crc_caught = 0;
    for case in 0..3000 {
        let original = valid_batches(&mut rng);
        assert!(decode_all(&original, &mut batch) > 0, "case {case}");
        let mut bytes = original.clone();
        let flips = 1 + rng.below(4);
        for _ in 0..flips {
            let at = rng.below(bytes.len() as u64) as usize;
            bytes[at] ^= 1 << rng.below(8);
        }
        if rng.chance(20) {
            let keep = rng.below(bytes.len() as u64) as usize;
            bytes.truncate(keep);
        }
        // Half the time, re-seal the first frame's CRC so the record decoder sees the damage.
        if rng.chance(50) && bytes.len() >= 48 {
            if let Ok(len) = batch::frame_length(&bytes) {
                if len <= bytes.len() {
                    let crc = batch::compute_crc(&bytes[..len]);
                    bytes[8..12].copy_from_slice(&crc.to_le_bytes());
                }
            }
        } else if bytes != original && batch::frame_length(&bytes).is_ok() {
            let len = batch::frame_length(&bytes).unwrap();
            if len <= bytes.len() && batch::verify(&bytes[..len]).is_err() {
                crc_caught += 1;
            }
        }
        decode_all(&bytes, &mut batch);
    }
    assert!(
        crc_caught > 500,
        "the CRC caught only {crc_caught} mutations"
    );
}

#[test]
fn lying_lengths_are_capped_before_allocating() {
    let mut rng = Rng::new(3);
    let mut bytes = valid_batches(&mut rng);
    // A records_length of 4 GiB with a good CRC: refused by verify, not allocated.
    bytes[28..32].copy_from_slice(&u32::MAX.to_le_bytes());
    let len = batch::frame_length(&bytes).unwrap();
    let crc = batch::compute_crc(&bytes[..len]);
    bytes[8..12].copy_from_slice(&crc.to_le_bytes());
    assert!(batch::verify(&bytes[..len]).is_err());
    // A batch_length over 64 MiB is refused from the first 16 bytes.
    bytes[12..16].copy_from_slice(&(65u32 << 20).to_le_bytes());
    assert!(batch::frame_length(&bytes).is_err());
}
