//! [`ProcessStats`]: what this process holds (resident memory, open file descriptors,
//! threads, live tokio tasks), for leak tests and soak benches. Linux (`/proc/self`);
//! elsewhere the figures read 0.

use std::fmt;

/// A snapshot of what the process holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProcessStats {
    /// Resident memory, in bytes.
    pub rss_bytes: u64,
    /// Open file descriptors (sockets included).
    pub open_fds: usize,
    /// Operating-system threads.
    pub threads: usize,
    /// Live tasks of the current tokio runtime (0 outside one).
    pub tokio_tasks: usize,
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
        }
    }
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
        }
    }
}
