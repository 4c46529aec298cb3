//! The speaker thread: daily-core's virtual speaker is non-blocking, so it is polled and paced
//! to real time here.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use pipecat_media::{AudioFormat, AudioFrame};

use super::BackendChannels;
use super::abi::{Api, Ptr};

/// Reads the virtual speaker until `running` is cleared or the transport stops listening,
/// delivering what it reads as bot audio. Runs on a thread of its own.
pub(super) fn speaker_loop(
    api: Api,
    device: Ptr,
    format: AudioFormat,
    running: Arc<AtomicBool>,
    channels: BackendChannels,
) {
    let frames = format.frames_in(Duration::from_millis(20)).max(1);
    let mut buffer = vec![0i16; frames * usize::from(format.channels)];
    let mut samples_read: usize = 0;
    let mut request: u64 = 1 << 48;
    let start = std::time::Instant::now();
    while running.load(Ordering::SeqCst) && !channels.is_closed() {
        request += 1;
        // SAFETY: the buffer holds `frames` frames of `format.channels` samples; the device
        // lives for the process; no callback, so the call completes before it returns.
        let read = unsafe {
            (api.speaker_read)(
                device.0,
                buffer.as_mut_ptr(),
                frames,
                request,
                None,
                std::ptr::null_mut(),
            )
        };
        let read = usize::try_from(read).unwrap_or(0).min(frames);
        {
            if read > 0 {
                let samples = buffer[..read * usize::from(format.channels)].to_vec();
                let ts = format.duration_of_samples(samples_read);
                samples_read += samples.len();
                if let Ok(frame) = AudioFrame::new(samples, format, ts) {
                    channels.speaker(frame);
                }
            }
        }
        // Pace to real time: the device is non-blocking.
        let wait = if read == 0 {
            Duration::from_millis(10)
        } else {
            format.duration_of_samples(samples_read).saturating_sub(start.elapsed())
        };
        std::thread::sleep(wait.min(Duration::from_millis(40)));
    }
}
