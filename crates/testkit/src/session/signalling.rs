//! The SmallWebRTC side of a session: its `pc_id`, renegotiation requests (with the server's
//! guard), peer-connection drops and signalling messages. On WebSocket the requests fail with
//! [`TestkitError::WrongTransport`].

#[cfg(feature = "webrtc")]
use std::sync::Arc;
#[cfg(feature = "webrtc")]
use std::time::Duration;

use serde_json::json;

use super::{Outbound, SessionCore};
use crate::BotTransport;
use crate::error::TestkitError;
use crate::util::lock;

/// The renegotiation guard: no new `renegotiate` until this long after the client's offer.
#[cfg(feature = "webrtc")]
const RENEGOTIATION_GUARD: Duration = Duration::from_secs(2);

impl SessionCore {
    /// Records the current SmallWebRTC `pc_id`.
    #[cfg(feature = "webrtc")]
    pub(crate) fn set_pc_id(&self, pc_id: &str) {
        lock(&self.state).pc_id = Some(pc_id.to_owned());
    }

    /// The current SmallWebRTC `pc_id`.
    pub(crate) fn pc_id(&self) -> Option<String> {
        lock(&self.state).pc_id.clone()
    }

    /// The client's renegotiation offer was handled: allow a new `renegotiate` request after
    /// the guard time.
    #[cfg(feature = "webrtc")]
    pub(crate) fn renegotiation_handled(self: &Arc<Self>) {
        let epoch = {
            let mut state = lock(&self.state);
            state.renegotiation_epoch += 1;
            state.renegotiation_epoch
        };
        let core = Arc::clone(self);
        self.tasks.spawn(async move {
            tokio::time::sleep(RENEGOTIATION_GUARD).await;
            let mut state = lock(&core.state);
            if state.renegotiation_epoch == epoch {
                state.renegotiating = false;
            }
        });
    }

    /// Sends a signalling message (SmallWebRTC only).
    pub(super) fn send_signalling(&self, message_type: &str) -> Result<(), TestkitError> {
        if self.transport != BotTransport::WebRtc {
            return Err(TestkitError::WrongTransport {
                what: "a signalling message",
                needs: BotTransport::WebRtc,
            });
        }
        let json = json!({"type": "signalling", "message": {"type": message_type}}).to_string();
        self.push(Outbound::Signalling(json.clone()))?;
        self.recorder.sent(&self.id, &format!("signalling/{message_type}"), &json);
        Ok(())
    }

    /// Asks a SmallWebRTC client to renegotiate; `false` if a renegotiation is already in
    /// progress (the request is then a no-op, as on the real server).
    pub(super) fn request_renegotiate(&self) -> Result<bool, TestkitError> {
        if self.transport != BotTransport::WebRtc {
            return Err(TestkitError::WrongTransport {
                what: "renegotiate",
                needs: BotTransport::WebRtc,
            });
        }
        if std::mem::replace(&mut lock(&self.state).renegotiating, true) {
            return Ok(false);
        }
        self.send_signalling("renegotiate")?;
        Ok(true)
    }

    /// Closes the SmallWebRTC peer connection under the running session.
    pub(super) fn drop_peer_connection(&self) -> Result<(), TestkitError> {
        if self.transport != BotTransport::WebRtc {
            return Err(TestkitError::WrongTransport {
                what: "dropping the peer connection",
                needs: BotTransport::WebRtc,
            });
        }
        self.push(Outbound::DropPeerConnection)
    }
}
