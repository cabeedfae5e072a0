//! The bounded pool every review's CPU work runs on (decoding large bodies,
//! converting, planning, judging), off the async runtime's threads so that
//! connections, health probes and small reviews are never held behind an
//! analysis.
//!
//! At most `workers` jobs run at once; a job waits for a worker no longer
//! than its review's deadline, and one picked up after it is dropped unrun.
//! Large reviews (big bodies) may take at most half the workers, so a few
//! of them never hold every worker while small reviews queue, and they run
//! on threads of their own at a lower CPU priority (nice 10), so that on a
//! busy or small node (the chart's limit is one CPU) the scheduler gives
//! small reviews, probes and I/O the CPU first. A job that
//! overruns its deadline keeps its worker until it ends — the engine cannot
//! be interrupted — but its review is answered at the deadline, and the
//! bound on workers bounds how much such work there can be.
//!
//! Small reviews whose plans are small too skip the pool ([`inline`]): their
//! work is bounded by their size, and the hand-off would cost more than it.

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
    /// The large lane's threads, fed one job at a time.
    large_jobs: std::sync::Mutex<std::sync::mpsc::Sender<Job>>,
}

type Job = Box<dyn FnOnce() + Send>;

/// Starts `n` threads that run the large lane's jobs at nice 10.
fn large_lane_threads(n: usize) -> std::sync::mpsc::Sender<Job> {
    let (tx, rx) = std::sync::mpsc::channel::<Job>();
    let rx = Arc::new(std::sync::Mutex::new(rx));
    for i in 0..n {
        let rx = rx.clone();
        let spawned = std::thread::Builder::new().name(format!("apiload-large-{i}")).spawn(move || {
            lower_priority();
            loop {
                let job = match rx.lock().unwrap_or_else(|e| e.into_inner()).recv() {
                    Ok(job) => job,
                    Err(_) => return,
                };
                job();
            }
        });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start a thread for large reviews");
        }
    }
    tx
}

/// Nice 10 for the calling thread (Linux: a thread's own priority).
pub(crate) fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: gettid and setpriority take no pointers; a failure only leaves the priority as it was.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, 10);
    }
}

/// A job's result and how long it waited for a worker.
pub struct Done<T> {
    pub value: T,
    pub queued: Duration,
}

impl Pool {
    pub fn new(workers: usize) -> Pool {
        let workers = workers.max(1);
        let large = (workers / 2).max(1);
        Pool {
            workers: Arc::new(Semaphore::new(workers)),
            large: Arc::new(Semaphore::new(large)),
            size: workers,
            large_jobs: std::sync::Mutex::new(large_lane_threads(large)),
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
        let work = move || {
            if Instant::now() >= deadline {
                return None;
            }
            Some(std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)))
        };
        let result = match large {
            None => {
                let handle = tokio::task::spawn_blocking(move || {
                    // The permit goes with the work, however long it takes.
                    let _worker = worker;
                    work()
                });
                tokio::time::timeout_at(until, handle).await.map(|r| r.map_err(|e| e.to_string()))
            }
            Some(large) => {
                let (tx, rx) = tokio::sync::oneshot::channel();
                let job: Job = Box::new(move || {
                    let _permits = (worker, large);
                    let _ = tx.send(work());
                });
                let sent = self.large_jobs.lock().unwrap_or_else(|e| e.into_inner()).send(job);
                if sent.is_err() {
                    return Err(Missed::Panicked("no thread for large reviews".into()));
                }
                tokio::time::timeout_at(until, rx).await.map(|r| r.map_err(|_| "the job was dropped".to_string()))
            }
        };
        match result {
            Err(_) | Ok(Ok(None)) => Err(Missed::Deadline),
            Ok(Ok(Some(Ok(value)))) => Ok(Done { value, queued }),
            Ok(Ok(Some(Err(panic)))) => Err(Missed::Panicked(panic_message(&panic))),
            Ok(Err(e)) => Err(Missed::Panicked(e)),
        }
    }
}

/// Runs a small, bounded job on the caller's thread (the request's task),
/// with the pool's answers: a panic is caught, and a job started or
/// finished past `deadline` counts as missed.
///
/// Why not always the pool: handing a 100 µs job to a blocking thread and
/// back costs two cross-thread wake-ups per job. On a one-CPU pod the two
/// threads take turns on the one core, and under an open-loop load that
/// turn-taking cost a third of the CPU and capped throughput at about 2,200
/// reviews/s (BENCHMARKS.md, "Open-loop latency"). Only work whose size is
/// bounded beforehand may run here: it cannot be answered at its deadline
/// while it runs.
pub fn inline<T, F>(deadline: Instant, job: F) -> Result<Done<T>, Missed>
where
    F: FnOnce() -> T,
{
    if Instant::now() >= deadline {
        return Err(Missed::Deadline);
    }
    let value = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job))
        .map_err(|panic| Missed::Panicked(panic_message(&panic)))?;
    if Instant::now() >= deadline {
        return Err(Missed::Deadline);
    }
    Ok(Done { value, queued: Duration::ZERO })
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

    #[test]
    fn an_inline_job_runs_on_the_callers_thread_with_the_pools_answers() {
        let far = Instant::now() + Duration::from_secs(10);
        let here = std::thread::current().id();
        let done = inline(far, || std::thread::current().id()).unwrap();
        assert_eq!(done.value, here);
        assert_eq!(done.queued, Duration::ZERO);
        assert_eq!(inline(far, || -> u8 { panic!("boom") }).err(), Some(Missed::Panicked("boom".into())));
        // Past its deadline: not started at all…
        let ran = std::cell::Cell::new(false);
        assert_eq!(inline(Instant::now(), || ran.set(true)).err(), Some(Missed::Deadline));
        assert!(!ran.get());
        // …or, finished late, missed all the same.
        let soon = Instant::now() + Duration::from_millis(20);
        assert_eq!(inline(soon, || std::thread::sleep(Duration::from_millis(40))).err(), Some(Missed::Deadline));
    }
}
