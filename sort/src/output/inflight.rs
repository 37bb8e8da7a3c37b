//! Row groups encoded by pool tasks while the caller prepares the next ones, handed back
//! in the order they were started.
//!
//! ```text
//!  caller:  prepare 1 ─ spawn 1 ─ prepare 2 ─ spawn 2 ─ prepare 3 ─ spawn 3 ─ take 1 ─ …
//!  pool:                encode 1 ─────────────────────┐  encode 2 …        (waits here run
//!                                                     └─► result 1          pool tasks)
//! ```
//!
//! A `rayon::join` of "encode this row group" and "prepare the next" is a barrier per row
//! group: whichever side finishes first idles until the other does. Here nothing waits for
//! a row group until more than `limit` are in flight, and a wait runs the pool's other
//! tasks (the awaited row group's column encodes among them).

use std::collections::VecDeque;
use std::sync::mpsc::{sync_channel, Receiver, TryRecvError};
use std::time::Duration;

use crate::error::{Result, SortError};

/// Results of spawned jobs, oldest first.
pub(crate) struct InFlight<T> {
    queue: VecDeque<Receiver<Result<T>>>,
}

impl<T: Send> InFlight<T> {
    pub(crate) fn new() -> Self {
        InFlight {
            queue: VecDeque::new(),
        }
    }

    /// Run `job` as a task of `scope`; its result joins the queue.
    pub(crate) fn spawn<'s>(
        &mut self,
        scope: &rayon::Scope<'s>,
        job: impl FnOnce() -> Result<T> + Send + 's,
    ) where
        T: 's,
    {
        let (tx, rx) = sync_channel(1);
        scope.spawn(move |_| {
            // The receiver is gone only if the caller already failed.
            let _ = tx.send(job());
        });
        self.queue.push_back(rx);
    }

    /// Hand the oldest results to `done`, in order, until at most `keep` are in flight.
    pub(crate) fn settle(
        &mut self,
        keep: usize,
        mut done: impl FnMut(Result<T>) -> Result<()>,
    ) -> Result<()> {
        while self.queue.len() > keep {
            if let Some(rx) = self.queue.pop_front() {
                done(wait_helping(&rx))?;
            }
        }
        Ok(())
    }
}

/// The result `rx` will deliver, running the pool's other tasks while it is not there.
fn wait_helping<T>(rx: &Receiver<Result<T>>) -> Result<T> {
    loop {
        match rx.try_recv() {
            Ok(done) => return done,
            // Only a panicking task drops its sender; `rayon::scope` re-raises the panic.
            Err(TryRecvError::Disconnected) => {
                return Err(SortError::Internal(
                    "an encoding task stopped without a result".into(),
                ))
            }
            Err(TryRecvError::Empty) => {
                if rayon::yield_now() != Some(rayon::Yield::Executed) {
                    // Nothing to help with: the last tasks run on other threads.
                    if let Ok(done) = rx.recv_timeout(Duration::from_micros(200)) {
                        return done;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_back_in_spawn_order_whatever_finishes_first() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        let got = pool.install(|| {
            let mut got = Vec::new();
            rayon::scope(|s| -> Result<()> {
                let mut f = InFlight::new();
                for i in 0..20u64 {
                    // Early jobs take longest.
                    f.spawn(s, move || {
                        std::thread::sleep(Duration::from_micros(200 * (20 - i)));
                        Ok(i)
                    });
                    f.settle(2, |r| {
                        got.push(r?);
                        Ok(())
                    })?;
                }
                f.settle(0, |r| {
                    got.push(r?);
                    Ok(())
                })
            })
            .unwrap();
            got
        });
        assert_eq!(got, (0..20).collect::<Vec<_>>());
    }

    #[test]
    fn a_failed_job_stops_the_caller_with_its_error() {
        let r = rayon::scope(|s| -> Result<()> {
            let mut f = InFlight::new();
            f.spawn(s, || Ok(1u32));
            f.spawn(s, || Err(SortError::Config("broken row group".into())));
            f.spawn(s, || Ok(3u32));
            f.settle(0, |r| r.map(|_| ()))
        });
        assert!(matches!(r, Err(SortError::Config(m)) if m == "broken row group"));
    }
}
