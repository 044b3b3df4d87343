//! Which hosts run when: at most `--parallel` at once; `--batch` windows, each started
//! only when every host of the previous one succeeded, `--batchWait` apart; no new host
//! once more than `--maxFailPercentage` of all hosts failed.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::context::HostContext;
use super::events::Event;
use super::host::run_host;
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
    let request = context.request;
    let hosts = &request.hosts;
    let total = hosts.len();
    let reports: Mutex<Vec<HostReport>> = Mutex::new(hosts.iter().map(|h| HostReport::new(h)).collect());
    let failed = AtomicUsize::new(0);
    let size = window_size(request.batch, total);
    let windows: Vec<Vec<usize>> =
        (0..total).step_by(size).map(|start| (start..(start + size).min(total)).collect()).collect();
    for (number, window) in windows.iter().enumerate() {
        if number > 0
            && let Some(wait) = request.batch_wait.filter(|w| !w.is_zero())
        {
            let seconds = wait.as_secs_f64();
            context.output.line(&format!("Waiting {seconds} s before batch {}", number + 1));
            context.events.emit(&Event::BatchWait { batch: number + 1, seconds });
            std::thread::sleep(wait);
        }
        if request.batch.is_some() {
            let names = window.iter().map(|&i| hosts[i].as_str()).collect();
            context.events.emit(&Event::BatchStarted { batch: number + 1, hosts: names });
        }
        let next = AtomicUsize::new(0);
        let workers = request.parallel.min(window.len()).max(1);
        std::thread::scope(|scope| -> Result<(), Error> {
            for _ in 0..workers {
                std::thread::Builder::new()
                    .name("fleet-host".into())
                    .spawn_scoped(scope, || {
                        loop {
                            let i = next.fetch_add(1, Ordering::SeqCst);
                            let Some(&index) = window.get(i) else { break };
                            if limit_exceeded(failed.load(Ordering::SeqCst), total, request.max_fail_percentage) {
                                continue;
                            }
                            let report = run_host(context, &hosts[index]);
                            if report.result != HostResult::Succeeded {
                                failed.fetch_add(1, Ordering::SeqCst);
                            }
                            reports.lock().unwrap_or_else(std::sync::PoisonError::into_inner)[index] = report;
                        }
                    })
                    .map_err(Error::Start)?;
            }
            Ok(())
        })?;
        let window_failed = {
            let reports = reports.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            window.iter().any(|&i| reports[i].result != HostResult::Succeeded)
        };
        if window_failed && request.batch.is_some() {
            break;
        }
    }
    let reports = reports.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
    for report in reports.iter().filter(|r| r.result == HostResult::NotStarted) {
        context.events.emit(&Event::NotStarted { host: &report.host });
    }
    Ok(reports)
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
