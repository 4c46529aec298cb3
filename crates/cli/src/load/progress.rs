//! What `pipecat load` watches while it runs: how many sessions are starting, ready, failed
//! and done, the audio frames per second both ways (shown live on a terminal, with
//! indicatif), and the process's CPU time and peak memory (sampled for the summary whatever
//! the output).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use pipecat_testkit::process_stats::ProcessStats;

use crate::audio::AudioCounters;

/// How often the process is sampled and the progress line redrawn.
const TICK: Duration = Duration::from_millis(250);

/// Counters every session updates.
#[derive(Default)]
pub(crate) struct Live {
    starting: AtomicU64,
    ready: AtomicU64,
    failed: AtomicU64,
    done: AtomicU64,
    audio: Mutex<Vec<Arc<AudioCounters>>>,
}

/// Where a session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Starting,
    Ready,
    Failed,
    Done,
}

impl Live {
    /// A session moved on (`Failed` and `Done` are final; a session is `Done` after `Ready`).
    pub(crate) fn enter(&self, phase: Phase) {
        let counter = match phase {
            Phase::Starting => &self.starting,
            Phase::Ready => &self.ready,
            Phase::Failed => &self.failed,
            Phase::Done => &self.done,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts this session's audio in the frames per second.
    pub(crate) fn watch_audio(&self, counters: Arc<AudioCounters>) {
        self.audio.lock().unwrap_or_else(|p| p.into_inner()).push(counters);
    }

    /// Frames up and down so far, over every session.
    fn frames(&self) -> (u64, u64) {
        let audio = self.audio.lock().unwrap_or_else(|p| p.into_inner());
        audio.iter().fold((0, 0), |(up, down), c| (up + c.up.frames(), down + c.down.frames()))
    }

    fn line(&self, fps: (f64, f64)) -> String {
        let n = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let ready = n(&self.ready);
        let failed = n(&self.failed);
        let starting = n(&self.starting).saturating_sub(ready + failed);
        let live = ready.saturating_sub(n(&self.done));
        format!(
            "{starting} starting, {live} live, {ready} ready, {failed} failed | \
             frames/s up {:.0} down {:.0}",
            fps.0, fps.1
        )
    }

    fn settled(&self) -> u64 {
        self.ready.load(Ordering::Relaxed) + self.failed.load(Ordering::Relaxed)
    }
}

/// What the process used over the run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ProcessFigures {
    pub(crate) wall: Duration,
    pub(crate) cpu_time: Duration,
    pub(crate) rss_start: u64,
    pub(crate) rss_peak: u64,
}

/// Samples the process every tick, and draws the progress line when asked to.
pub(crate) struct Monitor {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<ProcessFigures>,
}

impl Monitor {
    /// Starts sampling; with `show`, draws a progress bar of `total` sessions on stderr
    /// (the caller decides: a terminal, and not asked to be quiet).
    pub(crate) fn start(live: Arc<Live>, total: u32, show: bool) -> Monitor {
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(async move {
            let bar = show.then(|| progress_bar(total));
            let started = Instant::now();
            let first = ProcessStats::now();
            let mut peak = first.rss_bytes;
            let mut last = (Instant::now(), live.frames());
            let mut tick = tokio::time::interval(TICK);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stopped.changed() => break,
                }
                peak = peak.max(ProcessStats::now().rss_bytes);
                if let Some(bar) = &bar {
                    let now = (Instant::now(), live.frames());
                    let secs = now.0.duration_since(last.0).as_secs_f64().max(1e-3);
                    let fps =
                        ((now.1.0 - last.1.0) as f64 / secs, (now.1.1 - last.1.1) as f64 / secs);
                    last = now;
                    bar.set_position(live.settled());
                    bar.set_message(live.line(fps));
                }
            }
            if let Some(bar) = bar {
                bar.finish_and_clear();
            }
            let end = ProcessStats::now();
            ProcessFigures {
                wall: started.elapsed(),
                cpu_time: end.cpu_time.saturating_sub(first.cpu_time),
                rss_start: first.rss_bytes,
                rss_peak: peak.max(end.rss_bytes),
            }
        });
        Monitor { stop, task }
    }

    /// Stops sampling (and clears the progress line); what the process used.
    pub(crate) async fn finish(self) -> Option<ProcessFigures> {
        self.stop.send_replace(true);
        self.task.await.ok()
    }
}

fn progress_bar(total: u32) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(u64::from(total)), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template("{elapsed_precise} [{bar:24}] {pos}/{len} {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    bar.set_style(style);
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_counts_sessions_by_phase() {
        let live = Live::default();
        for _ in 0..5 {
            live.enter(Phase::Starting);
        }
        live.enter(Phase::Ready);
        live.enter(Phase::Ready);
        live.enter(Phase::Failed);
        live.enter(Phase::Done);
        assert_eq!(
            live.line((50.0, 49.6)),
            "2 starting, 1 live, 2 ready, 1 failed | frames/s up 50 down 50"
        );
        assert_eq!(live.settled(), 3);
    }

    #[tokio::test]
    async fn the_monitor_reports_what_the_process_used() {
        let monitor = Monitor::start(Arc::new(Live::default()), 1, false);
        tokio::time::sleep(TICK * 2).await;
        let figures = monitor.finish().await.expect("figures");
        assert!(figures.wall >= TICK * 2);
        if cfg!(target_os = "linux") {
            assert!(figures.rss_start > 0 && figures.rss_peak >= figures.rss_start);
        }
    }
}
