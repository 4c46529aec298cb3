//! [`ProcessStats`]: what this process holds (resident memory, open file descriptors,
//! threads, live tokio tasks) and the CPU time it used, for leak tests, soak benches and
//! `pipecat load`. Linux (`/proc/self`);
//! elsewhere the figures read 0.

use std::fmt;
use std::time::Duration;

/// A snapshot of what the process holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ProcessStats {
    /// Resident memory, in bytes.
    pub rss_bytes: u64,
    /// Open file descriptors (sockets included).
    pub open_fds: usize,
    /// Operating-system threads.
    pub threads: usize,
    /// Live tasks of the current tokio runtime (0 outside one).
    pub tokio_tasks: usize,
    /// CPU time used so far, user and system, all threads (10 ms resolution).
    pub cpu_time: Duration,
}

impl ProcessStats {
    /// Reads the figures now.
    pub fn now() -> ProcessStats {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|value| value.parse::<u64>().ok())
                .unwrap_or(0)
        };
        ProcessStats {
            rss_bytes: field("VmRSS:") * 1024,
            open_fds: std::fs::read_dir("/proc/self/fd").map(|dir| dir.count()).unwrap_or(0),
            threads: usize::try_from(field("Threads:")).unwrap_or(0),
            tokio_tasks: tokio::runtime::Handle::try_current()
                .map(|handle| handle.metrics().num_alive_tasks())
                .unwrap_or(0),
            cpu_time: cpu_time(),
        }
    }
}

/// utime + stime of `/proc/self/stat`, in clock ticks of the /proc ABI (USER_HZ, 100 per
/// second on Linux whatever the kernel's own tick).
fn cpu_time() -> Duration {
    const USER_HZ: u64 = 100;
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The command name (field 2) is in parentheses and may hold spaces: count after it.
    let Some(after_name) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
        return Duration::ZERO;
    };
    let mut fields = after_name.split_whitespace().skip(11);
    let mut tick = || fields.next().and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    let ticks = tick() + tick();
    Duration::from_millis(ticks * 1000 / USER_HZ)
}

impl fmt::Display for ProcessStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "RSS {:.1} MiB, {} fds, {} threads, {} tokio tasks",
            self.rss_bytes as f64 / (1024.0 * 1024.0),
            self.open_fds,
            self.threads,
            self.tokio_tasks
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_this_process() {
        let stats = ProcessStats::now();
        if cfg!(target_os = "linux") {
            assert!(stats.rss_bytes > 0 && stats.open_fds > 0 && stats.threads > 0, "{stats}");
            // Burn CPU until the counter moves (bounded: 2 s of work at most).
            let started = std::time::Instant::now();
            let mut x = 0u64;
            while ProcessStats::now().cpu_time == stats.cpu_time
                && started.elapsed() < std::time::Duration::from_secs(2)
            {
                for i in 0..100_000u64 {
                    x = x.wrapping_mul(31).wrapping_add(i);
                }
            }
            assert!(ProcessStats::now().cpu_time > stats.cpu_time, "no CPU time counted ({x})");
        }
    }
}
