//! The wall clock pacing waits on, behind a trait so that tests drive a logical clock
//! instead of sleeping: [`LogicalClock::sleep_until`] jumps time forward at once, so an
//! emission schedule can be asserted exactly, whatever the machine's speed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A monotonic clock measured from an arbitrary origin.
pub trait Clock: Send + Sync {
    /// Time since the clock's origin.
    fn now(&self) -> Duration;
    /// Block until `now() >= t`.
    fn sleep_until(&self, t: Duration);
}

/// The real monotonic clock.
#[derive(Debug)]
pub struct SystemClock {
    origin: Instant,
}

impl SystemClock {
    pub fn new() -> Self {
        SystemClock {
            origin: Instant::now(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }
    fn sleep_until(&self, t: Duration) {
        loop {
            let now = self.now();
            if now >= t {
                return;
            }
            std::thread::sleep(t - now);
        }
    }
}

/// A clock that only moves when someone sleeps on it: `sleep_until(t)` sets the time to
/// `t` (if later) and returns immediately.
#[derive(Debug, Default)]
pub struct LogicalClock {
    nanos: AtomicU64,
}

impl LogicalClock {
    pub fn new() -> Self {
        Self::default()
    }
}

impl Clock for LogicalClock {
    fn now(&self) -> Duration {
        Duration::from_nanos(self.nanos.load(Ordering::SeqCst))
    }
    fn sleep_until(&self, t: Duration) {
        let t = u64::try_from(t.as_nanos()).unwrap_or(u64::MAX);
        self.nanos.fetch_max(t, Ordering::SeqCst);
    }
}
