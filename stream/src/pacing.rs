//! Pacing: when each event is released, on its output's own scenario clock.
//!
//! ```text
//!  scenario time  ts0      ts1 ts2          ts3                 (event times, UTC micros)
//!                  |--------|---|------------|
//!  wall clock     o        o+d1 o+d2        o+d3               d_i = (ts_i - ts0) / speedup
//!                  ^ origin: the wall time the first event was released
//!  with --rate R:  due_i = max(o + d_i, due_{i-1} + 1/R)   (never two events closer than 1/R)
//!  with --max:     due_i = o                                 (no waiting; --rate still applies)
//! ```
//!
//! 1. The first event fixes the origin `o` (wall) and the anchor `ts0` (scenario time).
//! 2. Each later event is due at `o + (ts - ts0) / speedup`: waiting `(ts - ts_prev) /
//!    speedup` after the previous one, computed from the origin so that sleep overshoot
//!    never accumulates into drift. A time that goes backwards, or is missing, counts as the
//!    previous event's time (no negative waits).
//! 3. A rate cap pushes an event to at least `1/R` after the previous one's due time; later
//!    events catch up with the scenario clock at that rate, never faster.
//! 4. [`pace_batch`] cuts rows of a decoded batch into runs of events already due (ranges of
//!    the batch, nothing copied), sleeping on the [`Clock`] until the next one is due: one
//!    sleep per run, not per event.
//!
//! The schedule is a pure function of the event times and the settings, so tests assert it
//! exactly on a [`crate::clock::LogicalClock`].

use std::ops::Range;
use std::time::Duration;

use crate::clock::Clock;
use crate::reader::{ViewBatch, NO_TS};

/// How fast scenario time runs on the wall clock.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pacing {
    /// No waiting at all (the throughput mode).
    Max,
    /// Scenario seconds per wall second (the platform uses 600). Must be > 0.
    Speedup(f64),
}

impl Pacing {
    /// The platform's convention: a speedup <= 0 means no waiting.
    pub fn from_speedup(speedup: f64) -> Pacing {
        if speedup > 0.0 && speedup.is_finite() {
            Pacing::Speedup(speedup)
        } else {
            Pacing::Max
        }
    }
}

/// Pacing settings of one clock.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PacingConfig {
    pub pacing: Pacing,
    /// Cap in events per second (`None` = uncapped).
    pub rate: Option<f64>,
}

impl PacingConfig {
    pub const MAX: PacingConfig = PacingConfig {
        pacing: Pacing::Max,
        rate: None,
    };

    /// True when every event is due at once (`--max` without a rate cap): nothing waits on
    /// an event's release, so consumers may batch freely.
    pub fn is_free(&self) -> bool {
        self.pacing == Pacing::Max && self.rate.is_none()
    }
}

/// The emission schedule of one clock (see the module doc).
#[derive(Debug, Clone)]
pub struct Schedule {
    cfg: PacingConfig,
    origin: Option<Duration>,
    anchor_ts: Option<i64>,
    last_ts: Option<i64>,
    last_due: Option<Duration>,
}

fn nanos(d: f64) -> Duration {
    if d <= 0.0 || !d.is_finite() {
        Duration::ZERO
    } else {
        Duration::from_nanos(d.min(u64::MAX as f64) as u64)
    }
}

impl Schedule {
    pub fn new(cfg: PacingConfig) -> Self {
        Schedule {
            cfg,
            origin: None,
            anchor_ts: None,
            last_ts: None,
            last_due: None,
        }
    }

    /// True when every event is due at once ([`PacingConfig::is_free`]).
    pub fn is_free(&self) -> bool {
        self.cfg.is_free()
    }

    /// The due time of the next event, whose time is `ts` ([`NO_TS`] if unknown); `now`
    /// fixes the origin on the first call.
    pub fn due(&mut self, ts: i64, now: Duration) -> Duration {
        let origin = *self.origin.get_or_insert(now);
        let ts = match (ts, self.last_ts) {
            (NO_TS, prev) => prev,
            (t, Some(prev)) => Some(t.max(prev)),
            (t, None) => Some(t),
        };
        if let Some(t) = ts {
            self.anchor_ts.get_or_insert(t);
            self.last_ts = Some(t);
        }
        let mut due = match (self.cfg.pacing, ts, self.anchor_ts) {
            (Pacing::Speedup(s), Some(t), Some(a)) => origin + nanos((t - a) as f64 * 1_000.0 / s),
            _ => origin,
        };
        if let (Some(rate), Some(prev)) = (self.cfg.rate, self.last_due) {
            if rate > 0.0 && rate.is_finite() {
                due = due.max(prev + nanos(1e9 / rate));
            }
        }
        self.last_due = Some(due);
        due
    }

    /// The time the schedule gives the last event it was asked about: its own, or the one
    /// before it if missing or earlier (`None` before any known time).
    pub fn last_ts(&self) -> Option<i64> {
        self.last_ts
    }

    /// How far an event of (effective) time `released` is behind the scenario clock at
    /// `now`, in microseconds (`None` without a speedup or before the first event). The
    /// schedule may already know later events of a batch than the ones released: the lag
    /// is that of the events actually out.
    pub fn lag_micros(&self, now: Duration, released: i64) -> Option<i64> {
        let Pacing::Speedup(s) = self.cfg.pacing else {
            return None;
        };
        let (origin, anchor) = (self.origin?, self.anchor_ts?);
        let scenario_now = anchor + (now.saturating_sub(origin).as_micros() as f64 * s) as i64;
        Some(scenario_now - released)
    }
}

/// Release the rows `rows` of `batch` in runs, each once all its events are due; `emit`
/// gets the run (a range of `batch`'s rows), the clock time of its release and the lag
/// behind the scenario clock ([`Schedule::lag_micros`]). Returns early with `emit`'s
/// error.
pub fn pace_batch<E>(
    sched: &mut Schedule,
    clock: &dyn Clock,
    batch: &ViewBatch,
    rows: Range<usize>,
    mut emit: impl FnMut(Range<usize>, Duration, Option<i64>) -> Result<(), E>,
) -> Result<(), E> {
    let ts = &batch.ts[rows.clone()];
    if ts.is_empty() {
        return Ok(());
    }
    if sched.is_free() {
        let now = clock.now();
        // Keep the schedule's bookkeeping (origin, lag) without a per-row loop.
        sched.due(ts[0], now);
        if let Some(&last) = ts.iter().rev().find(|&&t| t != NO_TS) {
            sched.due(last, now);
        }
        return emit(rows, now, None);
    }
    // Each event's due time and effective time (a missing or backward time counts as the
    // previous one's).
    let (dues, times): (Vec<Duration>, Vec<Option<i64>>) = {
        let now = clock.now();
        ts.iter()
            .map(|&t| (sched.due(t, now), sched.last_ts()))
            .unzip()
    };
    let n = ts.len();
    let mut i = 0;
    while i < n {
        if clock.now() < dues[i] {
            clock.sleep_until(dues[i]);
        }
        let now = clock.now();
        // Dues never decrease, so the events due now are a prefix of the rest.
        let j = i + dues[i..].partition_point(|&d| d <= now);
        let lag = times[j - 1].and_then(|t| sched.lag_micros(now, t));
        emit(rows.start + i..rows.start + j, now, lag)?;
        i = j;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000;

    #[test]
    fn speedup_waits_scaled_gaps_from_the_origin() {
        let mut s = Schedule::new(PacingConfig {
            pacing: Pacing::Speedup(600.0),
            rate: None,
        });
        let t0 = 1_700_000_000 * S;
        let now = Duration::from_secs(5);
        assert_eq!(s.due(t0, now), now);
        // 600 s of scenario time = 1 s of wall time.
        assert_eq!(s.due(t0 + 600 * S, now), now + Duration::from_secs(1));
        // Equal times: no wait; a time going backwards counts as the previous one.
        assert_eq!(s.due(t0 + 600 * S, now), now + Duration::from_secs(1));
        assert_eq!(s.due(t0, now), now + Duration::from_secs(1));
        assert_eq!(s.due(NO_TS, now), now + Duration::from_secs(1));
        assert_eq!(s.due(t0 + 1200 * S, now), now + Duration::from_secs(2));
    }

    #[test]
    fn rate_cap_spaces_events() {
        let mut s = Schedule::new(PacingConfig {
            pacing: Pacing::Max,
            rate: Some(4.0),
        });
        let dues: Vec<_> = (0..4).map(|_| s.due(0, Duration::ZERO)).collect();
        assert_eq!(dues, [0, 250, 500, 750].map(Duration::from_millis).to_vec());
    }

    #[test]
    fn rate_cap_and_speedup_take_the_later() {
        let mut s = Schedule::new(PacingConfig {
            pacing: Pacing::Speedup(1.0),
            rate: Some(2.0),
        });
        assert_eq!(s.due(0, Duration::ZERO), Duration::ZERO);
        // 100 ms of scenario time, but the cap wants 500 ms.
        assert_eq!(s.due(100_000, Duration::ZERO), Duration::from_millis(500));
        // 3 s of scenario time: the scenario clock wins again.
        assert_eq!(s.due(3 * S, Duration::ZERO), Duration::from_secs(3));
    }

    #[test]
    fn non_positive_speedup_means_max() {
        assert_eq!(Pacing::from_speedup(0.0), Pacing::Max);
        assert_eq!(Pacing::from_speedup(-3.0), Pacing::Max);
        assert_eq!(Pacing::from_speedup(600.0), Pacing::Speedup(600.0));
    }

    #[test]
    fn lag_is_scenario_now_minus_last_event() {
        let mut s = Schedule::new(PacingConfig {
            pacing: Pacing::Speedup(10.0),
            rate: None,
        });
        s.due(0, Duration::ZERO);
        // 1 s of wall time = 10 s of scenario time; an event at 4 s -> 6 s behind.
        s.due(4 * S, Duration::ZERO);
        assert_eq!(s.lag_micros(Duration::from_secs(1), 4 * S), Some(6 * S));
    }

    #[test]
    fn the_lag_is_that_of_the_released_events_not_of_the_whole_batch() {
        // One batch of three events 10 s apart at speedup 10: the first slice (the event
        // at 0) goes out at once with lag 0, although the schedule already knows the later
        // events (a lag of -20 s if measured against the batch's last event); the next
        // slices go out when due, each exactly on the scenario clock.
        use crate::clock::LogicalClock;
        use crate::reader::ViewBatch;
        let mut s = Schedule::new(PacingConfig {
            pacing: Pacing::Speedup(10.0),
            rate: None,
        });
        let clock = LogicalClock::new();
        let ts = vec![0, 10 * S, 20 * S];
        let rows: arrow_array::ArrayRef =
            std::sync::Arc::new(arrow_array::Int64Array::from(ts.clone()));
        let batch = ViewBatch {
            part: 0,
            first_row: 0,
            batch: arrow_array::RecordBatch::try_from_iter([("ts", rows)]).unwrap(),
            ts,
        };
        let mut lags = Vec::new();
        pace_batch(&mut s, &clock, &batch, 0..3, |rows, _, lag| {
            lags.push((rows.len(), lag));
            Ok::<_, ()>(())
        })
        .unwrap();
        assert_eq!(lags, vec![(1, Some(0)), (1, Some(0)), (1, Some(0))]);
    }
}
