//! Small helpers shared by the modules: poison-free locking, timestamps, task tracking.

use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::task::AbortHandle;

/// Locks a mutex, ignoring poisoning: the state kept behind these locks stays consistent
/// even if a holder panicked (every update is a single assignment or push).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The civil date and time (UTC) of a point in time: (year, month, day, hour, minute, second,
/// microsecond).
fn civil(time: SystemTime) -> (i64, u32, u32, u32, u32, u32, u32) {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs() as i64;
    let micros = since.subsec_micros();
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    let hour = (rem / 3_600) as u32;
    let minute = (rem % 3_600 / 60) as u32;
    let second = (rem % 60) as u32;
    (year, month, day, hour, minute, second, micros)
}

/// The current time the way pipecat's `time_now_iso8601()` writes it (STT timestamps):
/// `2026-11-22T03:19:00.123Z`.
pub(crate) fn iso8601_millis_z() -> String {
    let (y, mo, d, h, mi, s, us) = civil(SystemTime::now());
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{:03}Z", us / 1_000)
}

/// The current time the way Python's `datetime.now(timezone.utc).isoformat()` writes it (chat
/// `user-input` timestamps): `2026-11-22T03:19:00.123456+00:00`.
pub(crate) fn iso8601_micros_offset() -> String {
    let (y, mo, d, h, mi, s, us) = civil(SystemTime::now());
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{us:06}+00:00")
}

/// Waits until a watched value satisfies `f` (or its sender is gone). Unlike
/// `watch::Receiver::wait_for` it holds no borrow afterwards, so it can sit in `select!`.
pub(crate) async fn watch_until<T>(
    rx: &mut tokio::sync::watch::Receiver<T>,
    f: impl FnMut(&T) -> bool,
) {
    let _ = rx.wait_for(f).await;
}

/// Tasks that must not outlive their owner: aborted on [`Tasks::abort_all`] and on drop.
#[derive(Default)]
pub(crate) struct Tasks {
    handles: Mutex<Vec<AbortHandle>>,
}

impl Tasks {
    /// Spawns a task on the current runtime and tracks it.
    pub(crate) fn spawn<F>(&self, future: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let task = tokio::spawn(future);
        let mut handles = lock(&self.handles);
        handles.retain(|h| !h.is_finished());
        handles.push(task.abort_handle());
        task
    }

    /// Aborts every tracked task.
    pub(crate) fn abort_all(&self) {
        for handle in lock(&self.handles).drain(..) {
            handle.abort();
        }
    }
}

impl Drop for Tasks {
    fn drop(&mut self) {
        self.abort_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn civil_dates_are_right() {
        let t = UNIX_EPOCH + Duration::from_secs(0);
        assert_eq!(civil(t), (1970, 1, 1, 0, 0, 0, 0));
        // 2024-02-29T12:34:56.789012Z (a leap day).
        let t = UNIX_EPOCH + Duration::from_micros(1_709_210_096_789_012);
        assert_eq!(civil(t), (2024, 2, 29, 12, 34, 56, 789_012));
        // 2000-03-01T00:00:00Z.
        let t = UNIX_EPOCH + Duration::from_secs(951_868_800);
        assert_eq!(civil(t), (2000, 3, 1, 0, 0, 0, 0));
    }

    #[test]
    fn timestamp_shapes() {
        let z = iso8601_millis_z();
        assert_eq!(z.len(), "2026-11-22T03:19:00.123Z".len());
        assert!(z.ends_with('Z'));
        let o = iso8601_micros_offset();
        assert_eq!(o.len(), "2026-11-22T03:19:00.123456+00:00".len());
        assert!(o.ends_with("+00:00"));
    }
}
