//! The per-event verdicts of the bus parity check: one bucket at a time, sorted by id, every
//! event id's sightings (view rows, bus records, receipts) side by side.
//!
//! | sightings of one id | verdict |
//! |---|---|
//! | 1 view row, 1 bus record, its ADMIT receipt at that position | admitted (pass) |
//! | 1 view row, no bus record, a QUARANTINE receipt | quarantined (pass) |
//! | 1 view row, no bus record, no QUARANTINE receipt | `missing` |
//! | 2+ bus records | `exactly_once` |
//! | bus record(s), no view row | `extra` |
//! | 2+ view rows | `view_ids_unique` |
//! | bus record without ADMIT receipt, receipt at another position, ADMIT without record, DUPLICATE not pointing at the record | `receipts` |
//! | bus record on another output's topic | `topic` (see `bus.rs`) |

use super::buckets::{Entry, Kind};
use super::Finding;

/// Names of views and topics, to turn slots into places.
pub struct Names<'a> {
    pub outputs: &'a [String],
    pub parts: &'a [Vec<String>],
    pub topics: &'a [String],
    /// Topic slot of each output slot.
    pub output_topic: &'a [u8],
}

impl Names<'_> {
    fn view(&self, e: &Entry) -> String {
        let out = self
            .outputs
            .get(e.slot as usize)
            .map_or("?", String::as_str);
        let part = self
            .parts
            .get(e.slot as usize)
            .and_then(|p| p.get(e.part as usize))
            .map_or("?", String::as_str);
        format!("{out} {part} row {}", e.pos)
    }

    fn bus(&self, e: &Entry) -> String {
        let t = self.topics.get(e.slot as usize).map_or("?", String::as_str);
        format!("{t}/{}@{}", e.part, e.pos)
    }
}

/// Counts and findings over all ids.
#[derive(Debug, Default)]
pub struct Verdicts {
    /// Per output slot: admitted (on the bus once), quarantined.
    pub admitted: Vec<u64>,
    pub quarantined: Vec<u64>,
    pub missing: Finding,
    pub exactly_once: Finding,
    pub extra: Finding,
    pub view_ids_unique: Finding,
    pub receipts: Finding,
    pub topic: Finding,
    /// QUARANTINE receipts whose event is in no view (counted, not a failure when the view
    /// row had no event id: see `quarantine_without_id`).
    pub stray_quarantine: u64,
}

impl Verdicts {
    pub fn new(outputs: usize) -> Self {
        Verdicts {
            admitted: vec![0; outputs],
            quarantined: vec![0; outputs],
            ..Verdicts::default()
        }
    }

    /// Judge every id of one sorted bucket.
    pub fn judge_bucket(&mut self, entries: &[Entry], names: &Names<'_>) {
        let mut start = 0;
        while start < entries.len() {
            let id = entries[start].id;
            let end = entries[start..]
                .iter()
                .position(|e| e.id != id)
                .map_or(entries.len(), |k| start + k);
            self.judge(&entries[start..end], names);
            start = end;
        }
    }

    fn judge(&mut self, group: &[Entry], names: &Names<'_>) {
        let of = |k: Kind| group.iter().filter(move |e| e.kind == k);
        let views: Vec<&Entry> = of(Kind::View).collect();
        let bus: Vec<&Entry> = of(Kind::Bus).collect();
        let admits: Vec<&Entry> = of(Kind::Admit).collect();
        let quarantined = of(Kind::Quarantine).count();
        let same_pos = |a: &Entry, b: &Entry| (a.slot, a.part, a.pos) == (b.slot, b.part, b.pos);

        if views.len() > 1 {
            self.view_ids_unique.add(|| {
                let at: Vec<String> = views.iter().map(|v| names.view(v)).collect();
                format!("one event id at {}", at.join(" and "))
            });
        }
        match (views.first(), bus.len()) {
            (Some(v), 0) if quarantined > 0 => {
                if let Some(q) = self.quarantined.get_mut(v.slot as usize) {
                    *q += 1;
                }
            }
            (Some(v), 0) => self.missing.add(|| {
                format!(
                    "{} is not on the bus and has no QUARANTINE receipt",
                    names.view(v)
                )
            }),
            (Some(v), n) => {
                if n > 1 {
                    self.exactly_once.add(|| {
                        let at: Vec<String> = bus.iter().map(|b| names.bus(b)).collect();
                        format!(
                            "{} is on the bus {n} times: {}",
                            names.view(v),
                            at.join(", ")
                        )
                    });
                }
                if let Some(a) = self.admitted.get_mut(v.slot as usize) {
                    *a += 1;
                }
                let want = names.output_topic.get(v.slot as usize).copied();
                if let Some(b) = bus.iter().find(|b| Some(b.slot) != want) {
                    self.topic
                        .add(|| format!("{} is on topic {}", names.view(v), names.bus(b)));
                }
            }
            (None, 0) => {
                if quarantined > 0 {
                    self.stray_quarantine += 1;
                }
            }
            (None, _) => self
                .extra
                .add(|| format!("{} holds an event that is in no view", names.bus(bus[0]))),
        }
        // Receipts against bus positions.
        for b in &bus {
            match admits.iter().filter(|a| same_pos(a, b)).count() {
                1 => {}
                0 => self
                    .receipts
                    .add(|| format!("{} has no ADMIT receipt", names.bus(b))),
                k => self
                    .receipts
                    .add(|| format!("{} has {k} ADMIT receipts", names.bus(b))),
            }
        }
        for a in &admits {
            if !bus.iter().any(|b| same_pos(a, b)) {
                self.receipts.add(|| {
                    format!(
                        "an ADMIT receipt points at {}, which does not hold its event",
                        names.bus(a)
                    )
                });
            }
        }
        for d in of(Kind::Duplicate) {
            if !bus.iter().any(|b| same_pos(d, b)) {
                self.receipts.add(|| {
                    format!(
                        "a DUPLICATE receipt points at {}, which does not hold its original",
                        names.bus(d)
                    )
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> [u8; 32] {
        [n; 32]
    }

    fn judge(entries: &mut [Entry]) -> Verdicts {
        entries.sort_unstable();
        let outputs = vec!["out".to_string()];
        let parts = vec![vec!["part-000000.parquet".to_string()]];
        let topics = vec!["t".to_string(), "other".to_string()];
        let names = Names {
            outputs: &outputs,
            parts: &parts,
            topics: &topics,
            output_topic: &[0],
        };
        let mut v = Verdicts::new(1);
        v.judge_bucket(entries, &names);
        v
    }

    fn view(n: u8, row: u64) -> Entry {
        Entry::new(&id(n), Kind::View, 0, 0, row)
    }
    fn at(n: u8, kind: Kind, slot: u8, part: u32, off: u64) -> Entry {
        Entry::new(&id(n), kind, slot, part, off)
    }

    #[test]
    fn a_clean_admission_and_a_quarantine_pass() {
        let v = judge(&mut [
            view(1, 0),
            at(1, Kind::Bus, 0, 2, 7),
            at(1, Kind::Admit, 0, 2, 7),
            at(1, Kind::Duplicate, 0, 2, 7),
            view(2, 1),
            at(2, Kind::Quarantine, 0, 0, 3),
        ]);
        assert_eq!((v.admitted[0], v.quarantined[0]), (1, 1));
        for f in [&v.missing, &v.exactly_once, &v.extra, &v.receipts, &v.topic] {
            assert_eq!(f.count, 0, "{f:?}");
        }
    }

    #[test]
    fn each_kind_of_damage_is_counted_and_placed() {
        let v = judge(&mut [
            // Missing: in a view, nowhere else.
            view(1, 4),
            // Twice on the bus, one receipt.
            view(2, 5),
            at(2, Kind::Bus, 0, 0, 1),
            at(2, Kind::Bus, 0, 0, 9),
            at(2, Kind::Admit, 0, 0, 1),
            // On the bus, in no view.
            at(3, Kind::Bus, 0, 1, 2),
            at(3, Kind::Admit, 0, 1, 2),
            // Receipt at another position; on a wrong topic.
            view(4, 6),
            at(4, Kind::Bus, 1, 0, 3),
            at(4, Kind::Admit, 1, 0, 4),
        ]);
        assert_eq!(v.missing.count, 1);
        assert_eq!(
            v.missing.first.as_deref(),
            Some("out part-000000.parquet row 4 is not on the bus and has no QUARANTINE receipt")
        );
        assert_eq!(v.exactly_once.count, 1);
        assert!(v
            .exactly_once
            .first
            .as_deref()
            .unwrap()
            .contains("t/0@1, t/0@9"));
        assert_eq!(v.extra.count, 1);
        assert!(v.extra.first.as_deref().unwrap().starts_with("t/1@2"));
        assert_eq!(v.topic.count, 1);
        // id 2: offset 9 has no receipt; id 4: record without receipt + dangling receipt.
        assert_eq!(v.receipts.count, 3);
    }
}
