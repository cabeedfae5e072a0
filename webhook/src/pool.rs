//! The bounded pool every review's CPU work runs on (decoding large bodies,
//! converting, planning, judging), off the async runtime's threads so that
//! connections, health probes and small reviews are never held behind an
//! analysis.
//!
//! At most `workers` jobs run at once; a job waits for a worker no longer
//! than its review's deadline, and one picked up after it is dropped unrun.
//! Large reviews (big bodies) may take at most half the workers, so a few
//! of them never hold every worker while small reviews queue. A job that
//! overruns its deadline keeps its worker until it ends — the engine cannot
//! be interrupted — but its review is answered at the deadline, and the
//! bound on workers bounds how much such work there can be.

use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// Which share of the pool a job may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lane {
    Small,
    Large,
}

/// Why a job gave no result.
#[derive(Debug, PartialEq, Eq)]
pub enum Missed {
    /// The deadline passed while it waited or ran.
    Deadline,
    /// It panicked (an engine bug); the message.
    Panicked(String),
}

pub struct Pool {
    workers: Arc<Semaphore>,
    large: Arc<Semaphore>,
    size: usize,
}

/// A job's result and how long it waited for a worker.
pub struct Done<T> {
    pub value: T,
    pub queued: Duration,
}

impl Pool {
    pub fn new(workers: usize) -> Pool {
        let workers = workers.max(1);
        Pool {
            workers: Arc::new(Semaphore::new(workers)),
            large: Arc::new(Semaphore::new((workers / 2).max(1))),
            size: workers,
        }
    }

    pub fn size(&self) -> usize {
        self.size
    }

    /// Runs `job` on a worker, or gives up at `deadline`.
    pub async fn run<T, F>(&self, lane: Lane, deadline: Instant, job: F) -> Result<Done<T>, Missed>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let waiting = Instant::now();
        let until = tokio::time::Instant::from_std(deadline);
        let large = match lane {
            Lane::Large => Some(
                tokio::time::timeout_at(until, self.large.clone().acquire_owned())
                    .await
                    .map_err(|_| Missed::Deadline)?
                    .map_err(|_| Missed::Deadline)?,
            ),
            Lane::Small => None,
        };
        let worker = tokio::time::timeout_at(until, self.workers.clone().acquire_owned())
            .await
            .map_err(|_| Missed::Deadline)?
            .map_err(|_| Missed::Deadline)?;
        let queued = waiting.elapsed();
        let handle = tokio::task::spawn_blocking(move || {
            // The permits go with the work, however long it takes.
            let _permits = (worker, large);
            if Instant::now() >= deadline {
                return None;
            }
            Some(std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)))
        });
        match tokio::time::timeout_at(until, handle).await {
            Err(_) | Ok(Ok(None)) => Err(Missed::Deadline),
            Ok(Ok(Some(Ok(value)))) => Ok(Done { value, queued }),
            Ok(Ok(Some(Err(panic)))) => Err(Missed::Panicked(panic_message(&panic))),
            Ok(Err(e)) => Err(Missed::Panicked(e.to_string())),
        }
    }
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn jobs_wait_no_longer_than_their_deadline_and_large_ones_take_half_the_workers() {
        let pool = Arc::new(Pool::new(2));
        let far = Instant::now() + Duration::from_secs(10);
        // One large job holds the large lane (half of two workers)…
        let p = pool.clone();
        let slow =
            tokio::spawn(
                async move { p.run(Lane::Large, far, || std::thread::sleep(Duration::from_millis(600))).await },
            );
        tokio::time::sleep(Duration::from_millis(100)).await;
        // …so another large one misses a short deadline, while a small one runs at once.
        let soon = Instant::now() + Duration::from_millis(200);
        assert_eq!(pool.run(Lane::Large, soon, || 1).await.err(), Some(Missed::Deadline));
        let small = pool.run(Lane::Small, Instant::now() + Duration::from_millis(200), || 2).await.unwrap();
        assert_eq!(small.value, 2);
        assert!(slow.await.unwrap().is_ok());
        // A job that overruns is answered at the deadline.
        let started = Instant::now();
        let r = pool
            .run(Lane::Small, Instant::now() + Duration::from_millis(100), || {
                std::thread::sleep(Duration::from_millis(500))
            })
            .await;
        assert_eq!(r.err(), Some(Missed::Deadline));
        assert!(started.elapsed() < Duration::from_millis(450));
        // A panic is reported, and the pool goes on.
        let r = pool.run(Lane::Small, far, || -> u8 { panic!("boom") }).await;
        assert_eq!(r.err(), Some(Missed::Panicked("boom".into())));
        assert_eq!(pool.run(Lane::Small, far, || 3).await.unwrap().value, 3);
    }
}
