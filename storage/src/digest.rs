//! The order-independent multiset digest of a table's rows (receipt `raw_stats` /
//! `sorted_stats`): proof that a stream view holds exactly the rows of its source, each row
//! intact, whatever the order.
//!
//! It is a checksum against bugs (a lost, duplicated or torn row; a value moved to another
//! row or column), not a defence against an adversary: the hash is a fast non-cryptographic
//! 64x64->128-bit multiply mix, and someone who wants to forge a collision can.
//!
//! # Definition (version 1; stable: the parity checks recompute it from the parquet files)
//!
//! 1. Every column gets a seed: `col_seed = hash_bytes(SEED_COLUMN, "sluice-digest-v1" ||
//!    index as u32 LE || name bytes)`, where `index` is the column's position in the schema.
//! 2. Every value becomes a 64-bit hash `x` of its canonical encoding, seeded by the column
//!    seed and a type tag (table below), `tag_seed = fmix(tag * K_TAG)`:
//!    - null, whatever the type: `x = fmix(col_seed ^ NULL_MARK)`;
//!    - fixed-width values become a u64 `v` (signed integers sign-extended to i64, unsigned
//!      zero-extended, `bool` as 0/1, floats as their IEEE bits with every NaN replaced by
//!      the canonical quiet NaN of its width, `-0.0` kept distinct from `0.0`, temporal
//!      values as their stored integer) and `x = mum(v ^ col_seed ^ tag_seed,
//!      fmix(col_seed ^ K_VALUE) | 1)`, where `mum(a, b)` is the 128-bit product `a * b`
//!      with its halves XOR-ed;
//!    - bytes (strings, binaries, fixed-size binaries, decimals as 16- or 32-byte
//!      little-endian integers) hash with [`hash_bytes`]`(col_seed ^ tag_seed, bytes)`, which
//!      folds in the length.
//!
//!    Physical representation never enters: `Utf8`, `LargeUtf8`, `Utf8View` and a dictionary
//!    of any of them share the tag `STRING`; the binary family shares `BINARY`; a dictionary
//!    array hashes like its decoded values; batch boundaries do not matter.
//! 3. A row folds its columns' hashes into two 64-bit lanes: `lo = Σ x_i` (wrapping) and
//!    `hi = XOR_i rotl(x_i, (7 i + 1) mod 64)`; the 128-bit row hash is [`finish_row`]`(lo,
//!    hi)` (three `fmix` rounds with cross-feeding). The lanes are linear, the finish is
//!    not, so a sum over rows cannot be regrouped into per-column sums: values stay bound
//!    to their row.
//! 4. The digest of a multiset of rows is `(row_count, Σ row_hash mod 2^128, XOR row_hash)`;
//!    digests of parts combine with [`RowDigest::merge`].
//!
//! Type tags: `INT`=1 (Int8..Int64), `UINT`=2, `FLOAT16`=3, `FLOAT32`=4, `FLOAT64`=5,
//! `BOOL`=6, `STRING`=7, `BINARY`=8, `FIXED_BINARY`=9 (+ width << 8), `DATE32`=10,
//! `DATE64`=11, `TIME32`=12, `TIME64`=13, `TIMESTAMP`=14, `DURATION`=15 (each temporal tag
//! plus `unit << 8`, unit 0=s 1=ms 2=us 3=ns; a timestamp's zone is metadata and is not
//! hashed), `DECIMAL`=16 (plus `precision << 8` and `scale << 16`), `NULL`=17. Other types
//! (nested types, intervals) are refused: [`check_supported`].
//!
//! Data flow: callers hash each `RecordBatch` with [`digest_batch`] (or get per-row hashes
//! with [`row_hashes`]), merge the partial digests, and render receipt fields with
//! [`RowDigest::to_side_stats`].

use arrow_array::cast::AsArray;
use arrow_array::types::*;
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_buffer::ArrowNativeType;
use arrow_schema::{DataType, TimeUnit};

use crate::error::{Result, StorageError};
use crate::view::SideStats;

const SEED_COLUMN: u64 = 0x9e37_79b9_7f4a_7c15;
const NULL_MARK: u64 = 0x6a09_e667_f3bc_c909;
const K_VALUE: u64 = 0xbf58_476d_1ce4_e5b9;
const K_TAG: u64 = 0x94d0_49bb_1331_11eb;
const P0: u64 = 0xa076_1d64_78bd_642f;
const P1: u64 = 0xe703_7ed1_a0b4_28db;
const P2: u64 = 0x8ebc_6af0_9c88_c6e3;
const P3: u64 = 0x5899_65cc_7537_4cc3;

/// Murmur3's 64-bit finaliser: a bijective mix with full avalanche.
#[inline(always)]
pub fn fmix(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^ (k >> 33)
}

/// 64x64 -> 128-bit multiply folded to 64 bits (the wyhash "mum").
#[inline(always)]
fn mum(a: u64, b: u64) -> u64 {
    let r = (a as u128).wrapping_mul(b as u128);
    (r as u64) ^ ((r >> 64) as u64)
}

#[inline(always)]
fn read_u64(b: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[..8]);
    u64::from_le_bytes(w)
}

/// Up to 8 bytes little-endian, zero-padded (the definition; [`tail_u64`] computes it).
#[cfg(test)]
fn read_partial(b: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    w[..b.len()].copy_from_slice(b);
    u64::from_le_bytes(w)
}

#[inline(always)]
fn read_u32(b: &[u8]) -> u64 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[..4]);
    u32::from_le_bytes(w) as u64
}

/// `bytes[start..]` (at most 8 bytes) little-endian and zero-padded, as [`read_partial`]
/// defines it, with fixed-size loads instead of a variable-length copy (which costs a
/// `memcpy` call per value: most of the hash of a 27-byte `ts_utc`). Overlapping loads
/// put every byte at its own position, so OR-ing them is exact.
#[inline(always)]
fn tail_u64(bytes: &[u8], start: usize) -> u64 {
    let n = bytes.len() - start;
    if n == 0 {
        0
    } else if bytes.len() >= 8 {
        // The last 8 bytes of the string end with the tail: shift the rest out.
        read_u64(&bytes[bytes.len() - 8..]) >> (64 - 8 * n)
    } else {
        let b = &bytes[start..];
        if n >= 4 {
            read_u32(b) | read_u32(&b[n - 4..]) << (8 * (n - 4))
        } else {
            b[0] as u64 | (b[n / 2] as u64) << (8 * (n / 2)) | (b[n - 1] as u64) << (8 * (n - 1))
        }
    }
}

/// The 64-bit byte-string hash of step 2: 16-byte blocks through `mum`, the zero-padded
/// tail, then the length (so `"a"` and `"a\0"` differ).
#[inline(always)]
pub fn hash_bytes(seed: u64, bytes: &[u8]) -> u64 {
    let len = bytes.len();
    let mut s = seed ^ P0;
    let mut at = 0;
    while len - at > 16 {
        s = mum(read_u64(&bytes[at..]) ^ P1, read_u64(&bytes[at + 8..]) ^ s);
        at += 16;
    }
    let (a, b) = if len - at > 8 {
        (read_u64(&bytes[at..]), tail_u64(bytes, at + 8))
    } else {
        (tail_u64(bytes, at), 0)
    };
    s = mum(a ^ P1, b ^ s);
    mum(s ^ P2, len as u64 ^ P3)
}

/// The finishing mix of step 3.
#[inline(always)]
pub fn finish_row(lo: u64, hi: u64) -> u128 {
    let a = fmix(lo ^ P1);
    let b = fmix(hi ^ a.rotate_left(23) ^ P2);
    let a2 = fmix(a ^ b.rotate_left(41));
    ((b as u128) << 64) | a2 as u128
}

/// The seed of column `index` named `name` (step 1).
pub fn column_seed(index: usize, name: &str) -> u64 {
    let mut buf = Vec::with_capacity(20 + name.len());
    buf.extend_from_slice(b"sluice-digest-v1");
    buf.extend_from_slice(&(index as u32).to_le_bytes());
    buf.extend_from_slice(name.as_bytes());
    hash_bytes(SEED_COLUMN, &buf)
}

/// The rotation of column `index` in the `hi` lane (step 3).
#[inline(always)]
fn rotation(index: usize) -> u32 {
    ((7 * index + 1) % 64) as u32
}

fn unit_code(u: &TimeUnit) -> u64 {
    match u {
        TimeUnit::Second => 0,
        TimeUnit::Millisecond => 1,
        TimeUnit::Microsecond => 2,
        TimeUnit::Nanosecond => 3,
    }
}

/// The type tag of a value type (a dictionary's is its values'), `None` if unsupported.
fn type_tag(dt: &DataType) -> Option<u64> {
    Some(match dt {
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 => 1,
        DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64 => 2,
        DataType::Float16 => 3,
        DataType::Float32 => 4,
        DataType::Float64 => 5,
        DataType::Boolean => 6,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => 7,
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => 8,
        DataType::FixedSizeBinary(w) => 9 + ((*w as u64) << 8),
        DataType::Date32 => 10,
        DataType::Date64 => 11,
        DataType::Time32(u) => 12 + (unit_code(u) << 8),
        DataType::Time64(u) => 13 + (unit_code(u) << 8),
        DataType::Timestamp(u, _) => 14 + (unit_code(u) << 8),
        DataType::Duration(u) => 15 + (unit_code(u) << 8),
        DataType::Decimal128(p, s) | DataType::Decimal256(p, s) => {
            16 + ((*p as u64) << 8) + (((*s as u8) as u64) << 16)
        }
        DataType::Null => 17,
        DataType::Dictionary(_, v) => return type_tag(v),
        _ => return None,
    })
}

/// Whether values of this type can be digested (see the type-tag table).
pub fn is_supported(dt: &DataType) -> bool {
    type_tag(dt).is_some()
}

/// `Ok` if every column of the schema can be digested, else `INVALID_ARGUMENT` naming the
/// first column that cannot.
pub fn check_supported(schema: &arrow_schema::Schema) -> Result<()> {
    match schema
        .fields()
        .iter()
        .find(|f| !is_supported(f.data_type()))
    {
        None => Ok(()),
        Some(f) => Err(unsupported(f.name(), f.data_type())),
    }
}

fn unsupported(name: &str, dt: &DataType) -> StorageError {
    StorageError::InvalidArgument(format!(
        "column {name:?} has type {dt}, which the row digest does not support"
    ))
}

/// The digest of a multiset of rows (step 4).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RowDigest {
    pub row_count: u64,
    pub sum: u128,
    pub xor: u128,
}

impl RowDigest {
    /// Add one row hash.
    #[inline]
    pub fn add(&mut self, h: u128) {
        self.row_count += 1;
        self.sum = self.sum.wrapping_add(h);
        self.xor ^= h;
    }

    /// The digest of the union of two multisets.
    pub fn merge(self, other: RowDigest) -> RowDigest {
        RowDigest {
            row_count: self.row_count + other.row_count,
            sum: self.sum.wrapping_add(other.sum),
            xor: self.xor ^ other.xor,
        }
    }

    /// The digest of a list of row hashes.
    pub fn from_hashes(hashes: &[u128]) -> RowDigest {
        let mut d = RowDigest::default();
        for &h in hashes {
            d.add(h);
        }
        d
    }

    /// The receipt's `SideStats` (sums as 32 lowercase hex digits, most significant first).
    pub fn to_side_stats(
        &self,
        min_ts_utc: Option<String>,
        max_ts_utc: Option<String>,
    ) -> SideStats {
        SideStats {
            row_count: self.row_count,
            row_hash_sum: format!("{:032x}", self.sum),
            row_hash_xor: format!("{:032x}", self.xor),
            min_ts_utc,
            max_ts_utc,
        }
    }
}

/// Per-column hashing context: seeds and rotation.
#[derive(Clone, Copy)]
struct Col {
    /// `col_seed ^ tag_seed`: seeds every value hash of the column.
    mix: u64,
    /// Odd multiplier of fixed-width values (`fmix(col_seed) | 1`).
    mul: u64,
    rot: u32,
    null_x: u64,
}

impl Col {
    fn new(index: usize, name: &str, tag: u64) -> Self {
        let seed = column_seed(index, name);
        Col {
            mix: seed ^ fmix(tag.wrapping_mul(K_TAG)),
            mul: fmix(seed ^ K_VALUE) | 1,
            rot: rotation(index),
            null_x: fmix(seed ^ NULL_MARK),
        }
    }
    #[inline(always)]
    fn fixed(&self, v: u64) -> u64 {
        mum(v ^ self.mix, self.mul)
    }
    #[inline(always)]
    fn bytes(&self, b: &[u8]) -> u64 {
        hash_bytes(self.mix, b)
    }
}

fn nan_free_f16(bits: u16) -> u64 {
    if bits & 0x7c00 == 0x7c00 && bits & 0x03ff != 0 {
        0x7e00
    } else {
        bits as u64
    }
}

fn nan_free_f32(v: f32) -> u64 {
    if v.is_nan() {
        0x7fc0_0000
    } else {
        v.to_bits() as u64
    }
}

fn nan_free_f64(v: f64) -> u64 {
    if v.is_nan() {
        0x7ff8_0000_0000_0000
    } else {
        v.to_bits()
    }
}

/// Call `out(slot, x)` with the value hash (`x` of step 2) of every slot of a
/// non-dictionary array, nulls included. One monomorphised loop per type, no allocation.
fn for_each_hash(
    col: &Col,
    name: &str,
    array: &dyn Array,
    mut out: impl FnMut(usize, u64),
) -> Result<()> {
    let nulls = array.logical_nulls().filter(|n| n.null_count() > 0);
    let n = array.len();
    // Two loops per type: without nulls (the common case, no branch per row) and with.
    macro_rules! each {
        ($hash:expr) => {{
            let hash = $hash;
            match &nulls {
                None => (0..n).for_each(|i| out(i, hash(i))),
                Some(nb) => {
                    (0..n).for_each(|i| out(i, if nb.is_valid(i) { hash(i) } else { col.null_x }))
                }
            }
        }};
    }
    macro_rules! fixed {
        ($t:ty, $conv:expr) => {{
            let conv = $conv;
            let v = array.as_primitive::<$t>().values();
            each!(|i: usize| col.fixed(conv(v[i])))
        }};
    }
    macro_rules! offsets {
        ($a:expr) => {{
            let a = $a;
            let offs = a.value_offsets();
            let data = a.value_data();
            each!(|i: usize| col.bytes(&data[offs[i] as usize..offs[i + 1] as usize]))
        }};
    }
    macro_rules! views {
        ($a:expr) => {{
            let a = $a;
            each!(|i: usize| col.bytes(a.value(i).as_ref()))
        }};
    }
    match array.data_type() {
        DataType::Int8 => fixed!(Int8Type, |v: i8| v as i64 as u64),
        DataType::Int16 => fixed!(Int16Type, |v: i16| v as i64 as u64),
        DataType::Int32 => fixed!(Int32Type, |v: i32| v as i64 as u64),
        DataType::Int64 => fixed!(Int64Type, |v: i64| v as u64),
        DataType::UInt8 => fixed!(UInt8Type, |v: u8| v as u64),
        DataType::UInt16 => fixed!(UInt16Type, |v: u16| v as u64),
        DataType::UInt32 => fixed!(UInt32Type, |v: u32| v as u64),
        DataType::UInt64 => fixed!(UInt64Type, |v: u64| v),
        DataType::Float16 => {
            let v = array.as_primitive::<Float16Type>().values();
            each!(|i: usize| col.fixed(nan_free_f16(v[i].to_bits())))
        }
        DataType::Float32 => fixed!(Float32Type, nan_free_f32),
        DataType::Float64 => fixed!(Float64Type, nan_free_f64),
        DataType::Boolean => {
            let a = array.as_boolean();
            each!(|i: usize| col.fixed(a.value(i) as u64))
        }
        DataType::Utf8 => offsets!(array.as_string::<i32>()),
        DataType::LargeUtf8 => offsets!(array.as_string::<i64>()),
        DataType::Binary => offsets!(array.as_binary::<i32>()),
        DataType::LargeBinary => offsets!(array.as_binary::<i64>()),
        DataType::Utf8View => views!(array.as_string_view()),
        DataType::BinaryView => views!(array.as_binary_view()),
        DataType::FixedSizeBinary(_) => views!(array.as_fixed_size_binary()),
        DataType::Date32 => fixed!(Date32Type, |v: i32| v as i64 as u64),
        DataType::Date64 => fixed!(Date64Type, |v: i64| v as u64),
        DataType::Time32(TimeUnit::Second) => fixed!(Time32SecondType, |v: i32| v as i64 as u64),
        DataType::Time32(_) => fixed!(Time32MillisecondType, |v: i32| v as i64 as u64),
        DataType::Time64(TimeUnit::Microsecond) => {
            fixed!(Time64MicrosecondType, |v: i64| v as u64)
        }
        DataType::Time64(_) => fixed!(Time64NanosecondType, |v: i64| v as u64),
        DataType::Timestamp(TimeUnit::Second, _) => fixed!(TimestampSecondType, |v: i64| v as u64),
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            fixed!(TimestampMillisecondType, |v: i64| v as u64)
        }
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            fixed!(TimestampMicrosecondType, |v: i64| v as u64)
        }
        DataType::Timestamp(TimeUnit::Nanosecond, _) => {
            fixed!(TimestampNanosecondType, |v: i64| v as u64)
        }
        DataType::Duration(TimeUnit::Second) => fixed!(DurationSecondType, |v: i64| v as u64),
        DataType::Duration(TimeUnit::Millisecond) => {
            fixed!(DurationMillisecondType, |v: i64| v as u64)
        }
        DataType::Duration(TimeUnit::Microsecond) => {
            fixed!(DurationMicrosecondType, |v: i64| v as u64)
        }
        DataType::Duration(TimeUnit::Nanosecond) => {
            fixed!(DurationNanosecondType, |v: i64| v as u64)
        }
        DataType::Decimal128(_, _) => {
            let v = array.as_primitive::<Decimal128Type>().values();
            each!(|i: usize| col.bytes(&v[i].to_le_bytes()))
        }
        DataType::Decimal256(_, _) => {
            let v = array.as_primitive::<Decimal256Type>().values();
            each!(|i: usize| col.bytes(&v[i].to_le_bytes()))
        }
        DataType::Null => (0..n).for_each(|i| out(i, col.null_x)),
        other => return Err(unsupported(name, other)),
    }
    Ok(())
}

/// Call `out(row, x)` for every row of a dictionary array: its values hashed once each,
/// rows looked up by key (a null key or a null value hashes as null).
///
/// A dictionary with more values than the array has rows (a sort's whole-dataset
/// dictionary under one 16 Ki-row batch: hundreds of thousands of user ids) is decoded
/// instead, so the cost follows the rows, not the dictionary: hashing every value per
/// batch made the view digest quadratic in the dataset (a 2M-row sort with a 400k-value
/// dictionary spent 0.25 CPU-s there). Same hashes either way (a dictionary hashes like
/// its decoded values).
fn for_each_dict_hash(
    col: &Col,
    name: &str,
    array: &dyn Array,
    mut out: impl FnMut(usize, u64),
) -> Result<()> {
    let Some(dict) = array.as_any_dictionary_opt() else {
        return for_each_hash(col, name, array, out);
    };
    if dict.values().len() > array.len() {
        let decoded = arrow_select::take::take(dict.values().as_ref(), dict.keys(), None)
            .map_err(|e| StorageError::InvalidArgument(format!("column {name:?}: {e}")))?;
        return for_each_hash(col, name, decoded.as_ref(), out);
    }
    let mut values = vec![col.null_x; dict.values().len()];
    for_each_hash(col, name, dict.values().as_ref(), |i, x| values[i] = x)?;
    let nulls = array.nulls().filter(|n| n.null_count() > 0);
    macro_rules! keys {
        ($k:ty) => {{
            let keys = array.as_dictionary::<$k>().keys().values();
            let look = |row: usize| {
                values
                    .get(keys[row].as_usize())
                    .copied()
                    .unwrap_or(col.null_x)
            };
            match &nulls {
                None => (0..keys.len()).for_each(|row| out(row, look(row))),
                Some(nb) => (0..keys.len()).for_each(|row| {
                    out(
                        row,
                        if nb.is_valid(row) {
                            look(row)
                        } else {
                            col.null_x
                        },
                    )
                }),
            }
        }};
    }
    match dict.keys().data_type() {
        DataType::Int8 => keys!(Int8Type),
        DataType::Int16 => keys!(Int16Type),
        DataType::Int32 => keys!(Int32Type),
        DataType::Int64 => keys!(Int64Type),
        DataType::UInt8 => keys!(UInt8Type),
        DataType::UInt16 => keys!(UInt16Type),
        DataType::UInt32 => keys!(UInt32Type),
        DataType::UInt64 => keys!(UInt64Type),
        other => return Err(unsupported(name, other)),
    }
    Ok(())
}

/// Accumulates the lanes of step 3 for a run of rows, column by column.
pub struct RowLanes {
    lo: Vec<u64>,
    hi: Vec<u64>,
    /// What columns folded with [`RowLanes::fold_constant`] add to every row's lanes.
    all_lo: u64,
    all_hi: u64,
}

impl RowLanes {
    /// Lanes for `rows` rows, all zero.
    pub fn new(rows: usize) -> Self {
        RowLanes {
            lo: vec![0; rows],
            hi: vec![0; rows],
            all_lo: 0,
            all_hi: 0,
        }
    }

    /// Fold column `index` (named `name`) whose every row holds the value of the one-row
    /// array `value`, without a pass over the rows: the lanes are linear, so the value's
    /// hash is combined once and applied to every row by [`RowLanes::finish`]. The result
    /// is exactly that of [`RowLanes::fold_column`] on the repeated array; the caller must
    /// know every row holds that value.
    pub fn fold_constant(&mut self, index: usize, name: &str, value: &ArrayRef) -> Result<()> {
        if value.len() != 1 {
            return Err(StorageError::InvalidArgument(format!(
                "column {name:?}: a constant is one value, not {}",
                value.len()
            )));
        }
        let tag =
            type_tag(value.data_type()).ok_or_else(|| unsupported(name, value.data_type()))?;
        let col = Col::new(index, name, tag);
        let mut x = 0;
        for_each_dict_hash(&col, name, value.as_ref(), |_, h| x = h)?;
        self.all_lo = self.all_lo.wrapping_add(x);
        self.all_hi ^= x.rotate_left(col.rot);
        Ok(())
    }

    /// Fold column `index` (named `name`) into the lanes; `array.len()` must equal the
    /// number of rows.
    pub fn fold_column(&mut self, index: usize, name: &str, array: &ArrayRef) -> Result<()> {
        let tag =
            type_tag(array.data_type()).ok_or_else(|| unsupported(name, array.data_type()))?;
        let col = Col::new(index, name, tag);
        let (lo, hi) = (&mut self.lo[..array.len()], &mut self.hi[..array.len()]);
        for_each_dict_hash(&col, name, array.as_ref(), |row, x| {
            lo[row] = lo[row].wrapping_add(x);
            hi[row] ^= x.rotate_left(col.rot);
        })
    }

    /// The finished 128-bit row hashes.
    pub fn finish(&self) -> impl Iterator<Item = u128> + '_ {
        let (all_lo, all_hi) = (self.all_lo, self.all_hi);
        self.lo
            .iter()
            .zip(&self.hi)
            .map(move |(&lo, &hi)| finish_row(lo.wrapping_add(all_lo), hi ^ all_hi))
    }
}

fn lanes_of(batch: &RecordBatch) -> Result<RowLanes> {
    let mut lanes = RowLanes::new(batch.num_rows());
    let schema = batch.schema();
    for (i, (field, array)) in schema.fields().iter().zip(batch.columns()).enumerate() {
        lanes.fold_column(i, field.name(), array)?;
    }
    Ok(lanes)
}

/// The 128-bit hash of every row of `batch` (columns identified by position and name).
pub fn row_hashes(batch: &RecordBatch) -> Result<Vec<u128>> {
    Ok(lanes_of(batch)?.finish().collect())
}

/// The digest of the rows of `batch`.
pub fn digest_batch(batch: &RecordBatch) -> Result<RowDigest> {
    let mut d = RowDigest::default();
    lanes_of(batch)?.finish().for_each(|h| d.add(h));
    Ok(d)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{
        BooleanArray, DictionaryArray, Float64Array, Int64Array, LargeStringArray, StringArray,
        StringViewArray,
    };
    use arrow_schema::{Field, Schema};

    use super::*;

    /// A small seeded PRNG (splitmix64).
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            fmix(self.0)
        }
    }

    struct Rows {
        ids: Vec<i64>,
        amounts: Vec<f64>,
        names: Vec<Option<String>>,
        flags: Vec<bool>,
    }

    fn rows(n: usize, seed: u64) -> Rows {
        let mut r = Rng(seed);
        let mut out = Rows {
            ids: vec![],
            amounts: vec![],
            names: vec![],
            flags: vec![],
        };
        for _ in 0..n {
            out.ids.push((r.next() % 50) as i64 - 10);
            out.amounts.push((r.next() % 1000) as f64 / 8.0);
            out.names.push(match r.next() % 4 {
                0 => None,
                k => Some(format!("name-{k}")),
            });
            out.flags.push(r.next().is_multiple_of(2));
        }
        out
    }

    #[derive(Clone, Copy)]
    enum Strings {
        Plain,
        Large,
        View,
        Dict,
    }

    fn batch(r: &Rows, order: &[usize], strings: Strings) -> RecordBatch {
        let names: Vec<Option<&str>> = order.iter().map(|&i| r.names[i].as_deref()).collect();
        let name_array: ArrayRef = match strings {
            Strings::Plain => Arc::new(StringArray::from(names)),
            Strings::Large => Arc::new(LargeStringArray::from(names)),
            Strings::View => Arc::new(StringViewArray::from(names)),
            Strings::Dict => Arc::new(names.into_iter().collect::<DictionaryArray<Int32Type>>()),
        };
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("amount", DataType::Float64, false),
            Field::new("name", name_array.data_type().clone(), true),
            Field::new("flag", DataType::Boolean, false),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from_iter_values(
                    order.iter().map(|&i| r.ids[i]),
                )),
                Arc::new(Float64Array::from_iter_values(
                    order.iter().map(|&i| r.amounts[i]),
                )),
                name_array,
                Arc::new(BooleanArray::from_iter(
                    order.iter().map(|&i| Some(r.flags[i])),
                )),
            ],
        )
        .unwrap()
    }

    fn digest_in_batches(r: &Rows, order: &[usize], strings: Strings, size: usize) -> RowDigest {
        order.chunks(size).fold(RowDigest::default(), |acc, chunk| {
            acc.merge(digest_batch(&batch(r, chunk, strings)).unwrap())
        })
    }

    #[test]
    fn same_rows_any_order_batching_or_representation_digest_equal() {
        for seed in 0..5 {
            let r = rows(300, seed);
            let ident: Vec<usize> = (0..300).collect();
            let base = digest_in_batches(&r, &ident, Strings::Plain, 300);
            assert_eq!(base.row_count, 300);
            let mut shuffled = ident.clone();
            let mut rng = Rng(seed + 100);
            for i in (1..shuffled.len()).rev() {
                shuffled.swap(i, (rng.next() % (i as u64 + 1)) as usize);
            }
            for (strings, size) in [
                (Strings::Plain, 7),
                (Strings::Large, 300),
                (Strings::View, 64),
                (Strings::Dict, 33),
            ] {
                assert_eq!(digest_in_batches(&r, &shuffled, strings, size), base);
            }
        }
    }

    #[test]
    fn one_changed_value_changes_the_digest() {
        let r = rows(100, 9);
        let ident: Vec<usize> = (0..100).collect();
        let base = digest_batch(&batch(&r, &ident, Strings::Plain)).unwrap();
        let mut changed = rows(100, 9);
        changed.amounts[42] += 0.125;
        assert_ne!(
            digest_batch(&batch(&changed, &ident, Strings::Plain)).unwrap(),
            base
        );
        let mut nulled = rows(100, 9);
        let k = nulled.names.iter().position(|n| n.is_some()).unwrap();
        nulled.names[k] = None;
        assert_ne!(
            digest_batch(&batch(&nulled, &ident, Strings::Dict)).unwrap(),
            base
        );
    }

    #[test]
    fn swapping_values_between_rows_changes_the_digest() {
        // Same multiset of values per column, different rows: the row binding must notice.
        let r = rows(100, 3);
        let ident: Vec<usize> = (0..100).collect();
        let base = digest_batch(&batch(&r, &ident, Strings::Plain)).unwrap();
        let mut swapped = rows(100, 3);
        let (a, b) = (0..100)
            .flat_map(|a| (0..100).map(move |b| (a, b)))
            .find(|&(a, b)| swapped.ids[a] != swapped.ids[b])
            .unwrap();
        swapped.ids.swap(a, b);
        assert_ne!(
            digest_batch(&batch(&swapped, &ident, Strings::Plain)).unwrap(),
            base
        );
    }

    #[test]
    fn columns_are_distinguished_by_position_and_name() {
        let schema = |a: &str, b: &str| {
            Arc::new(Schema::new(vec![
                Field::new(a, DataType::Int64, false),
                Field::new(b, DataType::Int64, false),
            ]))
        };
        let cols = |x: i64, y: i64| -> Vec<ArrayRef> {
            vec![
                Arc::new(Int64Array::from(vec![x])),
                Arc::new(Int64Array::from(vec![y])),
            ]
        };
        let d = |s, c| digest_batch(&RecordBatch::try_new(s, c).unwrap()).unwrap();
        let base = d(schema("a", "b"), cols(1, 2));
        assert_ne!(d(schema("a", "b"), cols(2, 1)), base);
        assert_ne!(d(schema("a", "c"), cols(1, 2)), base);
    }

    #[test]
    fn nan_payloads_are_canonical_and_signed_zeros_distinct() {
        let schema = Arc::new(Schema::new(vec![Field::new("f", DataType::Float64, false)]));
        let d = |v: f64| {
            let a: ArrayRef = Arc::new(Float64Array::from(vec![v]));
            digest_batch(&RecordBatch::try_new(schema.clone(), vec![a]).unwrap()).unwrap()
        };
        assert_eq!(d(f64::NAN), d(f64::from_bits(0x7ff8_0000_0000_0001)));
        assert_ne!(d(0.0), d(-0.0));
    }

    #[test]
    fn tails_read_without_a_copy_equal_the_zero_padded_definition() {
        let bytes: Vec<u8> = (1..=40u8).map(|i| i.wrapping_mul(37) | 1).collect();
        for len in 0..=bytes.len() {
            let s = &bytes[..len];
            for start in len.saturating_sub(8)..=len {
                assert_eq!(
                    tail_u64(s, start),
                    read_partial(&s[start..]),
                    "len {len} start {start}"
                );
            }
        }
    }

    /// The hash of step 2 as first written (a copy per tail): the reference.
    fn hash_bytes_by_copies(seed: u64, bytes: &[u8]) -> u64 {
        let mut s = seed ^ P0;
        let mut rest = bytes;
        while rest.len() > 16 {
            s = mum(read_u64(rest) ^ P1, read_u64(&rest[8..]) ^ s);
            rest = &rest[16..];
        }
        let (a, b) = if rest.len() > 8 {
            (read_u64(rest), read_partial(&rest[8..]))
        } else {
            (read_partial(rest), 0)
        };
        s = mum(a ^ P1, b ^ s);
        mum(s ^ P2, bytes.len() as u64 ^ P3)
    }

    #[test]
    fn byte_hashes_equal_the_reference_at_every_length() {
        let bytes: Vec<u8> = (0..80u8)
            .map(|i| i.wrapping_mul(91).wrapping_add(7))
            .collect();
        for len in 0..=bytes.len() {
            for seed in [0, 1, u64::MAX] {
                assert_eq!(
                    hash_bytes(seed, &bytes[..len]),
                    hash_bytes_by_copies(seed, &bytes[..len]),
                    "len {len}"
                );
            }
        }
    }

    #[test]
    fn the_encoding_is_stable() {
        // Pinned outputs: a change here breaks every stored receipt. Never update casually.
        assert_eq!(hash_bytes(0, b""), PINNED_EMPTY);
        assert_eq!(hash_bytes(1, b"2026-01-05T08:30:13.260000Z"), PINNED_TS);
        let r = rows(10, 1);
        let ident: Vec<usize> = (0..10).collect();
        let d = digest_batch(&batch(&r, &ident, Strings::Plain)).unwrap();
        assert_eq!(format!("{:032x}", d.sum), PINNED_SUM);
    }
    const PINNED_EMPTY: u64 = 3096840761329300690;
    const PINNED_TS: u64 = 5902320065836244038;
    const PINNED_SUM: &str = "dc61c8060cc8cb4bfb5e561416073cc4";

    #[test]
    fn a_dictionary_hashes_like_its_values_whether_larger_or_smaller_than_its_rows() {
        use arrow_array::Int32Array;
        // 1,000 values (one null) under 40 rows: the decoding path; the same keys over a
        // 30-value prefix of the dictionary: the values-once path.
        let values: Vec<Option<String>> = (0..1000)
            .map(|i| (i != 3).then(|| format!("user-{i:05}")))
            .collect();
        for size in [1000usize, 30] {
            let keys: Vec<Option<i32>> = (0..40)
                .map(|r| match r % 7 {
                    0 => None,
                    1 => Some(3),
                    _ => Some((r * 37 % size) as i32),
                })
                .collect();
            let dict = DictionaryArray::new(
                Int32Array::from(keys.clone()),
                Arc::new(StringArray::from(values[..size].to_vec())),
            );
            let plain = StringArray::from(
                keys.iter()
                    .map(|k| k.and_then(|k| values[k as usize].clone()))
                    .collect::<Vec<_>>(),
            );
            let lanes = |a: ArrayRef| {
                let mut l = RowLanes::new(40);
                l.fold_column(0, "user_id", &a).unwrap();
                l.finish().collect::<Vec<_>>()
            };
            assert_eq!(
                lanes(Arc::new(dict)),
                lanes(Arc::new(plain)),
                "{size} values"
            );
        }
    }

    #[test]
    fn constant_folds_equal_folding_the_repeated_column() {
        let r = rows(50, 4);
        let ident: Vec<usize> = (0..50).collect();
        let b = batch(&r, &ident, Strings::Dict);
        let constant: ArrayRef = Arc::new(StringArray::from(vec!["pin"; 50]));
        let mut full = RowLanes::new(50);
        let mut folded = RowLanes::new(50);
        for (i, a) in b.columns().iter().enumerate() {
            full.fold_column(i, "c", a).unwrap();
            folded.fold_column(i, "c", a).unwrap();
        }
        full.fold_column(4, "k", &constant).unwrap();
        folded.fold_constant(4, "k", &constant.slice(7, 1)).unwrap();
        assert!(full.finish().eq(folded.finish()));
        assert!(folded.fold_constant(5, "k", &constant).is_err());
    }

    #[test]
    fn unsupported_types_are_refused() {
        let dt = DataType::List(Arc::new(Field::new("x", DataType::Int64, true)));
        assert!(!is_supported(&dt));
        let schema = Schema::new(vec![Field::new("l", dt, true)]);
        assert_eq!(
            check_supported(&schema).unwrap_err().code(),
            "INVALID_ARGUMENT"
        );
        assert!(is_supported(&DataType::Dictionary(
            Box::new(DataType::Int32),
            Box::new(DataType::Utf8)
        )));
    }
}
