//! A tournament tree of losers over `k` sorted streams of `u128` keys.
//!
//! Each internal node remembers the loser of the match played there; the overall winner
//! sits apart. Taking the winner's next key replays only the matches on its leaf-to-root
//! path: `log2(k)` comparisons of 16-byte integers per row, no row data touched.
//!
//! ```text
//!                 winner: 2
//!                  [ 0 ]            node 1: loser of (0 vs 2)
//!              [ 1 ]    [ 3 ]       nodes 2, 3: losers of (0 vs 1), (2 vs 3)
//!  leaves:   k0=10 k1=40 k2=7 k3=12
//! ```
//!
//! Exhausted streams hold [`EXHAUSTED`], which loses to every real key (packed keys never
//! equal it: the time half would be `i64::MAX` with file and row at their maximum).

/// The key of an exhausted stream.
pub const EXHAUSTED: u128 = u128::MAX;

/// A match result stored in the tree: a stream and its current key, side by side so that
/// replaying a match is one load.
#[derive(Debug, Clone, Copy)]
struct Node {
    key: u128,
    stream: usize,
}

/// The tree. Leaves are stream indices `0..k`.
#[derive(Debug, Clone)]
pub struct LoserTree {
    /// `nodes[n]` for internal nodes `1..k` holds the loser of the match at `n`; `nodes[0]`
    /// holds the overall winner.
    nodes: Vec<Node>,
}

impl LoserTree {
    /// Build from the first key of each stream (`EXHAUSTED` for an empty stream).
    pub fn new(keys: Vec<u128>) -> Self {
        let k = keys.len();
        let mut nodes = vec![
            Node {
                key: EXHAUSTED,
                stream: 0
            };
            k.max(1)
        ];
        if k == 0 {
            return LoserTree { nodes };
        }
        // Play the tournament bottom-up: winners[n] for every node, leaves at k..2k.
        let mut winners: Vec<Node> = vec![nodes[0]; 2 * k];
        for (i, &key) in keys.iter().enumerate() {
            winners[k + i] = Node { key, stream: i };
        }
        for n in (1..k).rev() {
            let (a, b) = (winners[2 * n], winners[2 * n + 1]);
            let (win, lose) = if a.key <= b.key { (a, b) } else { (b, a) };
            winners[n] = win;
            nodes[n] = lose;
        }
        nodes[0] = if k == 1 { winners[k] } else { winners[1] };
        LoserTree { nodes }
    }

    /// The stream holding the smallest current key.
    #[inline(always)]
    pub fn winner(&self) -> usize {
        self.nodes[0].stream
    }

    /// The smallest current key (`EXHAUSTED` when all streams are done).
    #[inline(always)]
    pub fn winner_key(&self) -> u128 {
        self.nodes[0].key
    }

    /// Replace the winner's key with its stream's next key and replay its path.
    #[inline]
    pub fn replace_winner(&mut self, next: u128) {
        let k = self.nodes.len();
        let mut w = Node {
            key: next,
            stream: self.nodes[0].stream,
        };
        let mut n = (w.stream + k) >> 1;
        while n > 0 {
            let stored = self.nodes[n];
            // Ties cannot happen between real keys (they are unique); between exhausted
            // streams the order does not matter. Select, not branch: the outcome is a coin
            // flip for the predictor.
            let challenger_wins = stored.key < w.key;
            let (win, lose) = if challenger_wins { (stored, w) } else { (w, stored) };
            self.nodes[n] = lose;
            w = win;
            n >>= 1;
        }
        self.nodes[0] = w;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_like_a_sort() {
        let mut seed = 7u64;
        let mut next = || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
            seed >> 33
        };
        for k in 1..12usize {
            let streams: Vec<Vec<u128>> = (0..k)
                .map(|s| {
                    let n = (next() % 20) as usize;
                    let mut v: Vec<u128> = (0..n)
                        .map(|i| ((next() % 50) as u128) << 64 | (s as u128) << 32 | i as u128)
                        .collect();
                    v.sort_unstable();
                    v
                })
                .collect();
            let mut pos = vec![0usize; k];
            let first = streams
                .iter()
                .map(|s| s.first().copied().unwrap_or(EXHAUSTED))
                .collect();
            let mut tree = LoserTree::new(first);
            let mut out = Vec::new();
            while tree.winner_key() != EXHAUSTED {
                let w = tree.winner();
                out.push(tree.winner_key());
                pos[w] += 1;
                tree.replace_winner(streams[w].get(pos[w]).copied().unwrap_or(EXHAUSTED));
            }
            let mut expected: Vec<u128> = streams.concat();
            expected.sort_unstable();
            assert_eq!(out, expected, "k={k}");
        }
    }

    #[test]
    fn no_streams_is_exhausted() {
        let t = LoserTree::new(vec![EXHAUSTED, EXHAUSTED]);
        assert_eq!(t.winner_key(), EXHAUSTED);
    }
}
