//! A stable LSD radix sort on a `u64` key, for the two in-cache sorts of the engine (a
//! decoded chunk by time; a merge window by time).
//!
//! 11-bit digits (2048 counters fit in L1); digits on which all keys agree are skipped, so
//! a window spanning a few hours of microseconds takes 3-4 passes. Stability is what makes
//! sorting by the time half alone exact: callers feed rows in tie-break order (a chunk's
//! rows are consecutive rows of one file) or fix equal-time runs afterwards
//! ([`sort_ties`]). Measured against `sort_unstable` on 128 Ki entries in `docs/sort.md`.

/// Bits per digit.
const DIGIT: u32 = 11;
/// Below this many items a comparison sort is faster than the counting passes.
const SMALL: usize = 256;

/// Sort `items` stably by `key`, using `scratch` as the second buffer.
pub fn sort_by_u64<T: Copy>(items: &mut Vec<T>, scratch: &mut Vec<T>, key: impl Fn(&T) -> u64) {
    let n = items.len();
    if n < SMALL {
        items.sort_by_key(|x| key(x));
        return;
    }
    // Digits that differ somewhere: bits set in (key XOR first key) for any item.
    let first = key(&items[0]);
    let mut differ = 0u64;
    for x in items.iter() {
        differ |= key(x) ^ first;
    }
    if differ == 0 {
        return;
    }
    let top = 64 - differ.leading_zeros();
    let low = differ.trailing_zeros();
    scratch.clear();
    scratch.reserve(n);
    let mut shift = low - low % DIGIT;
    let mut counts = vec![0usize; 1 << DIGIT];
    while shift < top {
        let mask = (1u64 << DIGIT) - 1;
        counts.iter_mut().for_each(|c| *c = 0);
        for x in items.iter() {
            counts[((key(x) >> shift) & mask) as usize] += 1;
        }
        // Exclusive prefix sums: the first slot of each digit.
        let mut sum = 0;
        for c in counts.iter_mut() {
            let here = *c;
            *c = sum;
            sum += here;
        }
        // SAFETY: `scratch` has capacity `n`; every item is written exactly once, to a
        // distinct slot below `n` (the counts partition `0..n`), before `set_len(n)`.
        unsafe {
            let dst = scratch.as_mut_ptr();
            for x in items.iter() {
                let d = ((key(x) >> shift) & mask) as usize;
                dst.add(counts[d]).write(*x);
                counts[d] += 1;
            }
            scratch.set_len(n);
        }
        std::mem::swap(items, scratch);
        scratch.clear();
        shift += DIGIT;
    }
}

/// After a stable sort by a primary key, order each run of equal primary keys by a
/// secondary key (runs are short in practice: equal times).
pub fn sort_ties<T>(items: &mut [T], primary: impl Fn(&T) -> u64, secondary: impl Fn(&T) -> u64) {
    let mut i = 0;
    while i < items.len() {
        let p = primary(&items[i]);
        let mut j = i + 1;
        while j < items.len() && primary(&items[j]) == p {
            j += 1;
        }
        if j - i > 1 {
            items[i..j].sort_unstable_by_key(|x| secondary(x));
        }
        i = j;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_stably_like_the_standard_library() {
        let mut seed = 3u64;
        for n in [0usize, 1, 5, 255, 256, 1000, 70_000] {
            for spread in [1u64, 1 << 12, 1 << 40, u64::MAX] {
                let mut items: Vec<(u64, u32)> = (0..n as u32)
                    .map(|i| {
                        seed = seed
                            .wrapping_mul(6364136223846793005)
                            .wrapping_add(1442695040888963407);
                        ((seed >> 7) % spread.max(1), i)
                    })
                    .collect();
                let mut want = items.clone();
                want.sort_by_key(|x| x.0);
                let mut scratch = Vec::new();
                sort_by_u64(&mut items, &mut scratch, |x| x.0);
                assert_eq!(items, want, "n={n} spread={spread}");
            }
        }
    }

    #[test]
    fn ties_are_ordered_by_the_secondary_key() {
        let mut v = vec![(1u64, 9u64), (1, 3), (0, 7), (2, 1), (2, 0), (2, 5)];
        v.sort_by_key(|x| x.0);
        sort_ties(&mut v, |x| x.0, |x| x.1);
        assert_eq!(v, vec![(0, 7), (1, 3), (1, 9), (2, 0), (2, 1), (2, 5)]);
    }
}
