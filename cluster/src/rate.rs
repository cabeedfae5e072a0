//! The client-side rate limit every request goes through: a token bucket of
//! `burst` tokens refilled at `qps` per second, as client-go's
//! `flowcontrol.NewTokenBucketRateLimiter` (the `QPS`/`Burst` of its
//! `rest.Config`) behaves. Over any window of T seconds at most
//! `burst + qps·T` requests leave, which is what the end-to-end checks read
//! back from the API server's audit log.
//!
//! tower's `RateLimit` is a fixed window (`burst` per `burst/qps` seconds):
//! two full windows back to back let `2·burst` requests out at once, more
//! than the bucket allows, so the bucket is our own.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::Instant;

/// A shared token bucket, and how many requests it let through.
#[derive(Clone, Debug)]
pub struct RateLimit {
    qps: f64,
    burst: f64,
    bucket: Arc<Mutex<Bucket>>,
    sent: Arc<AtomicU64>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    refilled: Instant,
}

impl RateLimit {
    /// `qps` must be positive and finite, `burst` at least 1 (checked by
    /// [`RateLimit::new`]'s callers through [`crate::client::Connect::check`]).
    pub fn new(qps: f64, burst: u32) -> RateLimit {
        let burst = f64::from(burst.max(1));
        RateLimit {
            qps,
            burst,
            bucket: Arc::new(Mutex::new(Bucket { tokens: burst, refilled: Instant::now() })),
            sent: Arc::new(AtomicU64::new(0)),
        }
    }

    pub fn qps(&self) -> f64 {
        self.qps
    }

    pub fn burst(&self) -> u32 {
        self.burst as u32
    }

    /// Requests let through so far.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Takes a token now, or says how long until one is there.
    fn try_take(&self) -> Result<(), Duration> {
        let mut b = self.bucket.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let elapsed = now.saturating_duration_since(b.refilled).as_secs_f64();
        b.tokens = (b.tokens + elapsed * self.qps).min(self.burst);
        b.refilled = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            self.sent.fetch_add(1, Ordering::Relaxed);
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - b.tokens) / self.qps))
        }
    }

    /// Waits for a token.
    pub async fn acquire(&self) {
        while let Err(wait) = self.try_take() {
            tokio::time::sleep(wait).await;
        }
    }
}

/// The layer that puts a [`RateLimit`] in front of a client's service.
#[derive(Clone, Debug)]
pub struct RateLimitLayer(pub RateLimit);

impl<S> tower::Layer<S> for RateLimitLayer {
    type Service = Limited<S>;

    fn layer(&self, inner: S) -> Limited<S> {
        Limited { inner, limit: self.0.clone(), permit: false, wait: None }
    }
}

/// A service that is ready only once it holds a token. kube's client
/// drives its service from one buffer task, so a wait here holds back
/// every request behind it, in order.
pub struct Limited<S> {
    inner: S,
    limit: RateLimit,
    permit: bool,
    wait: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<S, R> tower::Service<R> for Limited<S>
where
    S: tower::Service<R>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        while !self.permit {
            if let Some(wait) = self.wait.as_mut() {
                match wait.as_mut().poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(()) => self.wait = None,
                }
            }
            match self.limit.try_take() {
                Ok(()) => self.permit = true,
                Err(wait) => self.wait = Some(Box::pin(tokio::time::sleep(wait))),
            }
        }
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> S::Future {
        self.permit = false;
        self.inner.call(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn no_window_holds_more_than_burst_plus_qps_times_its_length() {
        let limit = RateLimit::new(10.0, 5);
        let start = tokio::time::Instant::now();
        let mut at = Vec::new();
        for _ in 0..40 {
            limit.acquire().await;
            at.push(start.elapsed().as_secs_f64());
        }
        assert_eq!(limit.sent(), 40);
        // The burst at once, then one every 100 ms.
        assert!(at[4] < 0.001, "{at:?}");
        assert!((at[5] - 0.1).abs() < 0.01, "{at:?}");
        for i in 0..at.len() {
            for j in i..at.len() {
                let window = at[j] - at[i];
                let n = (j - i + 1) as f64;
                assert!(n <= 5.0 + 10.0 * window + 1e-6, "{n} requests in {window} s");
            }
        }
    }
}
