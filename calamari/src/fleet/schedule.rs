//! Which hosts run when: at most `--parallel` at once; `--batch` windows, each started
//! only when every host of the previous one succeeded; no new host once more than
//! `--maxFailPercentage` of all hosts failed.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::host::{HostContext, run_host};
use super::report::{HostReport, HostResult};
use super::{Batch, Error};

/// The size of each window for `total` hosts.
pub(crate) fn window_size(batch: Option<Batch>, total: usize) -> usize {
    match batch {
        None => total.max(1),
        Some(Batch::Hosts(n)) => n.max(1),
        Some(Batch::Percent(p)) => (total * p as usize).div_ceil(100).max(1),
    }
}

/// Whether `failed` of `total` exceeds `max_percent`.
pub(crate) fn limit_exceeded(failed: usize, total: usize, max_percent: u32) -> bool {
    failed * 100 > total * max_percent as usize
}

/// Runs every host; returns their reports in host order.
pub(crate) fn run_all(context: &HostContext<'_>) -> Result<Vec<HostReport>, Error> {
    let hosts = &context.request.hosts;
    let total = hosts.len();
    let reports: Mutex<Vec<HostReport>> = Mutex::new(hosts.iter().map(|h| HostReport::new(h)).collect());
    let failed = AtomicUsize::new(0);
    let size = window_size(context.request.batch, total);
    for window_start in (0..total).step_by(size) {
        let window: Vec<usize> = (window_start..(window_start + size).min(total)).collect();
        let next = AtomicUsize::new(0);
        let workers = context.request.parallel.min(window.len()).max(1);
        std::thread::scope(|scope| -> Result<(), Error> {
            for _ in 0..workers {
                std::thread::Builder::new()
                    .name("fleet-host".into())
                    .spawn_scoped(scope, || {
                        loop {
                            let i = next.fetch_add(1, Ordering::SeqCst);
                            let Some(&index) = window.get(i) else { break };
                            if limit_exceeded(failed.load(Ordering::SeqCst), total, context.request.max_fail_percentage)
                            {
                                continue;
                            }
                            let report = run_host(context, index, &hosts[index]);
                            if report.result != HostResult::Succeeded {
                                failed.fetch_add(1, Ordering::SeqCst);
                            }
                            reports.lock().unwrap_or_else(std::sync::PoisonError::into_inner)[index] = report;
                        }
                    })
                    .map_err(|e| Error::Start(e.to_string()))?;
            }
            Ok(())
        })?;
        let window_failed = {
            let reports = reports.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            window.iter().any(|&i| reports[i].result != HostResult::Succeeded)
        };
        if window_failed && context.request.batch.is_some() {
            break;
        }
    }
    Ok(reports.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_and_limits() {
        assert_eq!(window_size(None, 8), 8);
        assert_eq!(window_size(Some(Batch::Hosts(3)), 8), 3);
        assert_eq!(window_size(Some(Batch::Percent(25)), 8), 2);
        assert_eq!(window_size(Some(Batch::Percent(10)), 8), 1);
        assert_eq!(window_size(Some(Batch::Percent(100)), 8), 8);
        assert!(limit_exceeded(1, 8, 0));
        assert!(!limit_exceeded(0, 8, 0));
        assert!(!limit_exceeded(2, 8, 25));
        assert!(limit_exceeded(3, 8, 25));
    }
}
