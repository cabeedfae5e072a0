//! Work spread over the cores when there is enough of it: reading thousands
//! of workloads and analysing them are independent per workload. Small
//! inputs (an admission review) stay on the caller's thread.

use std::sync::OnceLock;

fn cores() -> usize {
    // available_parallelism reads the cgroup limits: once is enough.
    static CORES: OnceLock<usize> = OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// `f` over `items`, in order, on as many threads as there are cores and
/// chunks of at least `min_per_thread` items.
pub fn map<T: Sync, R: Send>(items: &[T], min_per_thread: usize, f: impl Fn(usize, &T) -> R + Sync) -> Vec<R> {
    let threads = cores().min(items.len() / min_per_thread.max(1)).max(1);
    if threads == 1 {
        return items.iter().enumerate().map(|(i, t)| f(i, t)).collect();
    }
    let chunk = items.len().div_ceil(threads);
    let f = &f;
    std::thread::scope(|s| {
        let parts: Vec<_> = items
            .chunks(chunk)
            .enumerate()
            .map(|(c, part)| {
                s.spawn(move || part.iter().enumerate().map(|(j, t)| f(c * chunk + j, t)).collect::<Vec<R>>())
            })
            .collect();
        parts.into_iter().flat_map(|p| p.join().unwrap_or_else(|e| std::panic::resume_unwind(e))).collect()
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn results_keep_the_order_of_the_items() {
        let items: Vec<usize> = (0..10_000).collect();
        assert_eq!(super::map(&items, 100, |i, &x| (i, x * 2)), items.iter().map(|&x| (x, x * 2)).collect::<Vec<_>>());
        assert_eq!(super::map(&items[..3], 100, |_, &x| x), vec![0, 1, 2]);
        assert!(super::map(&Vec::<u8>::new(), 1, |_, &x| x).is_empty());
    }
}
