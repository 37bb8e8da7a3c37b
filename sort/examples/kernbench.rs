//! Temporary: kernel comparisons, min of repeats.
use std::time::Instant;

fn main() {
    let k = 305usize;
    let per = 430usize;
    let mut seed = 7u64;
    let mut rnd = || { seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407); seed >> 11 };
    // a window: k sorted runs of `per` entries
    let mut base: Vec<(u128, u64)> = Vec::new();
    for s in 0..k {
        let mut run: Vec<u128> = (0..per).map(|_| (rnd() as u128) << 64 | s as u128).collect();
        run.sort_unstable();
        base.extend(run.into_iter().enumerate().map(|(j, key)| (key, (s as u64) << 24 | j as u64)));
    }
    let n = base.len();
    let mut best = [f64::MAX; 4];
    for _ in 0..15 {
        let mut e = base.clone();
        let t = Instant::now(); e.sort_unstable_by_key(|x| x.0); best[0] = best[0].min(t.elapsed().as_secs_f64());
        let mut e = base.clone();
        let t = Instant::now(); e.sort_by_key(|x| x.0); best[1] = best[1].min(t.elapsed().as_secs_f64());
        // keys only
        let mut keys: Vec<u128> = base.iter().map(|x| x.0).collect();
        let t = Instant::now(); keys.sort_unstable(); best[2] = best[2].min(t.elapsed().as_secs_f64());
        // loser-tree-free: binary heap of runs
        let t = Instant::now();
        let mut heap = std::collections::BinaryHeap::with_capacity(k);
        for s in 0..k { heap.push(std::cmp::Reverse((base[s * per].0, s, 0usize))); }
        let mut out = Vec::with_capacity(n);
        while let Some(std::cmp::Reverse((key, s, j))) = heap.pop() { out.push(key); if j + 1 < per { heap.push(std::cmp::Reverse((base[s * per + j + 1].0, s, j + 1))); } }
        best[3] = best[3].min(t.elapsed().as_secs_f64());
    }
    println!("window {n} entries: unstable {:.1} ns/row, stable {:.1}, keys-only unstable {:.1}, heap merge {:.1}",
        best[0] * 1e9 / n as f64, best[1] * 1e9 / n as f64, best[2] * 1e9 / n as f64, best[3] * 1e9 / n as f64);
}
