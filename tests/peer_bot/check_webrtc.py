#!/usr/bin/env python3
#
# Exercises the peer bot over SmallWebRTC the way the Rust SDK (and the JS transport) will:
# POST /start, an aiortc peer connection with an audio transceiver, a video transceiver and a
# client-created "chat" data channel, the offer POSTed to /sessions/{id}/api/offer (and, in a
# second session, to /api/offer with the candidates trickled by PATCH), `trackStatus`, a
# 1 s `ping` keepalive, client-ready -> bot-ready, the scripted messages, audio echo,
# renegotiation on the same PC, restart_pc with a new pc_id, drop-pc recovery, and
# disconnect-bot -> peerLeft. Fails (exit 1) on the first broken expectation.
#
#   target/peer-venv/bin/python tests/peer_bot/check_webrtc.py [--traces out.md]
#
# Without --url it launches `bot.py --loopback-ice` on a free loopback port. This client also
# gathers only 127.0.0.1 (aioice skips loopback by default), so nothing leaves the machine.

"""SmallWebRTC check client for the peer bot."""

import argparse
import asyncio
import fractions
import json
import re
import sys
import time

import aioice.ice
import numpy as np
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError
from av import AudioFrame

from harness import (
    CLIENT_ABOUT,
    BotProcess,
    Inbox,
    TraceBook,
    http_json,
    of_type,
    rtvi,
)

# Loopback-only ICE for this client too (see bot.py's --loopback-ice).
aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]

# Client microphone: 20 ms frames of 48 kHz mono PCM16 (aiortc encodes them as Opus).
MIC_RATE = 48000
MIC_FRAME_SAMPLES = 960

# Keepalive period of the JS transport; the server's liveness window is 3 s.
PING_PERIOD_SECS = 1.0

# A received bot-audio frame counts as voiced above this RMS (the echo/tone is ~5000-7000).
VOICED_RMS = 500

SETTLE_SECS = 0.4


class MicTrack(MediaStreamTrack):
    """A microphone stand-in: silence, or a sine tone while `tone_until` is in the future."""

    kind = "audio"

    def __init__(self):
        super().__init__()
        self.tone_until = 0.0
        self.tone_hz = 300.0
        self._pts = 0
        self._start: float | None = None

    async def recv(self) -> AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        # Pace like a real device: frame n is due at start + n * 20 ms.
        due = self._start + self._pts / MIC_RATE
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        if time.monotonic() < self.tone_until:
            t = (self._pts + np.arange(MIC_FRAME_SAMPLES)) / MIC_RATE
            samples = (0.3 * 32767 * np.sin(2 * np.pi * self.tone_hz * t)).astype(np.int16)
        else:
            samples = np.zeros(MIC_FRAME_SAMPLES, dtype=np.int16)
        frame = AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = MIC_RATE
        frame.pts = self._pts
        frame.time_base = fractions.Fraction(1, MIC_RATE)
        self._pts += MIC_FRAME_SAMPLES
        return frame


class Peer:
    """One client peer connection (a restart_pc makes a new one) and its data channel."""

    def __init__(self, client: "WebRTCClient"):
        self.client = client
        self.pc = RTCPeerConnection()
        self.mic = MicTrack()
        # Transceiver order matters to the server: 0 = mic audio, 1 = camera video.
        self.pc.addTransceiver(self.mic, direction="sendrecv")
        self.pc.addTransceiver("video", direction="sendrecv")
        self.dc = self.pc.createDataChannel("chat", ordered=True)
        self.opened = asyncio.Event()
        self.dc_closed = asyncio.Event()
        self.pc_closed = asyncio.Event()
        self._tasks: list[asyncio.Task] = []

        @self.dc.on("open")
        def on_open():
            self.opened.set()

        @self.dc.on("close")
        def on_close():
            self.dc_closed.set()

        @self.dc.on("message")
        def on_message(message):
            self.client.on_message(message)

        @self.pc.on("connectionstatechange")
        def on_state():
            self.client.note_state(self.pc.connectionState)
            if self.pc.connectionState in ("closed", "failed"):
                self.pc_closed.set()

        @self.pc.on("track")
        def on_track(track):
            self.client.book.current.event(f"remote {track.kind} track")
            if track.kind == "audio":
                self._tasks.append(asyncio.create_task(self.client.read_audio(track)))

    def start_keepalive(self):
        async def ping():
            while self.dc.readyState == "open":
                self.dc.send(f"ping: {int(time.time() * 1000)}")
                await asyncio.sleep(PING_PERIOD_SECS)

        self._tasks.append(asyncio.create_task(ping()))

    def send_raw(self, raw: str):
        self.dc.send(raw)

    async def close(self):
        for task in self._tasks:
            task.cancel()
        await self.pc.close()


def split_candidates(sdp: str) -> tuple[str, list[dict]]:
    """Strip `a=candidate` / `a=end-of-candidates` from an SDP; return them as PATCH entries."""
    lines, candidates = [], []
    mline_index, mid = -1, None
    for line in sdp.splitlines():
        if line.startswith("m="):
            mline_index += 1
            mid = None
        elif line.startswith("a=mid:"):
            mid = line[len("a=mid:") :]
        if line.startswith("a=candidate:"):
            candidates.append(
                {"candidate": line[2:], "sdp_mid": mid, "sdp_mline_index": mline_index}
            )
            continue
        if line.startswith("a=end-of-candidates"):
            continue
        lines.append(line)
    # The mid line may come after the candidates of its section: fill it in afterwards.
    mids = re.findall(r"^a=mid:(\S+)", sdp, flags=re.M)
    for c in candidates:
        c["sdp_mid"] = mids[c["sdp_mline_index"]]
    return "\r\n".join(lines) + "\r\n", candidates


class WebRTCClient:
    """A SmallWebRTC client session (one bot session, possibly several peer connections)."""

    def __init__(self, base_url: str, book: TraceBook):
        self.base_url = base_url
        self.book = book
        self.inbox = Inbox()
        self.peer: Peer | None = None
        self.pc_id: str | None = None
        self.session_id: str | None = None
        self.offer_url = f"{base_url}/api/offer"
        self.audio_log: list[tuple[float, float]] = []  # (arrival, rms) of bot audio frames
        self.audio_formats: set[tuple[int, str, int]] = set()
        self.states: list[str] = []

    # --- wire -------------------------------------------------------------------------------

    def on_message(self, message):
        trace = self.book.current
        if not isinstance(message, str):
            trace.event(f"binary data channel message of {len(message)} bytes")
            return
        trace.received(message)
        self.inbox.push(json.loads(message))

    def note_state(self, state: str):
        self.states.append(state)

    async def read_audio(self, track):
        try:
            while True:
                frame = await track.recv()
                pcm = frame.to_ndarray().astype(np.float64)
                rms = float(np.sqrt(np.mean(pcm * pcm))) if pcm.size else 0.0
                self.audio_log.append((time.monotonic(), rms))
                self.audio_formats.add((frame.sample_rate, frame.layout.name, frame.samples))
        except (MediaStreamError, asyncio.CancelledError):
            pass

    def voiced_since(self, t: float) -> list[float]:
        return [at for at, rms in self.audio_log if at >= t and rms > VOICED_RMS]

    def send(self, message: dict):
        raw = json.dumps(message)
        self.book.current.sent(raw)
        self.peer.send_raw(raw)

    def send_signalling(self, message: dict):
        self.send({"type": "signalling", "message": message})

    # --- signalling -------------------------------------------------------------------------

    async def negotiate(self, peer: Peer, *, restart_pc: bool = False, trickle: bool = False):
        """Offer from `peer`, POST it, apply the answer; optionally trickle candidates by PATCH."""
        offer = await peer.pc.createOffer()
        await peer.pc.setLocalDescription(offer)  # aiortc gathers candidates here
        sdp = peer.pc.localDescription.sdp
        candidates: list[dict] = []
        if trickle:
            sdp, candidates = split_candidates(sdp)
        body = {"sdp": sdp, "type": "offer", "pc_id": self.pc_id, "restart_pc": restart_pc}
        if self.session_id is None:
            body["request_data"] = {"client": "check_webrtc"}
        else:
            body["requestData"] = {"client": "check_webrtc"}
        started = time.monotonic()
        answer = http_json("POST", self.offer_url, body)
        trace = self.book.current
        trace.event_sent(
            f"POST {self.offer_url.removeprefix(self.base_url)} pc_id={self.pc_id} "
            f"restart_pc={restart_pc} ({len(candidates) if trickle else 'inline'} candidates)"
        )
        assert answer["type"] == "answer" and answer["sdp"].startswith("v=0"), answer
        server_candidates = re.findall(r"^a=candidate:.*$", answer["sdp"], flags=re.M)
        trace.event(
            f"answer {1000 * (time.monotonic() - started):.0f} ms: pc_id={answer['pc_id']}, "
            f"{len(server_candidates)} inline candidates {server_candidates}"
        )
        previous, self.pc_id = self.pc_id, answer["pc_id"]
        await peer.pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
        if trickle:
            patch = {"pc_id": self.pc_id, "candidates": candidates}
            patch["candidates"].append({"candidate": "", "sdp_mid": "0", "sdp_mline_index": 0})
            result = http_json("PATCH", self.offer_url, patch)
            assert result == {"status": "success"}, result
            trace.event_sent(f"PATCH {len(candidates) - 1} candidates + end-of-candidates")
        return previous

    async def connect(self, *, via_session: bool, trickle: bool = False):
        """Start a bot session: /start (if via_session), offer, data channel, trackStatus."""
        trace = self.book.current
        if via_session:
            start = http_json("POST", f"{self.base_url}/start", {})
            trace.note(f"/start answered `{json.dumps(start)}`")
            self.session_id = start["sessionId"]
            self.offer_url = f"{self.base_url}/sessions/{self.session_id}/api/offer"
        self.peer = Peer(self)
        await self.negotiate(self.peer, trickle=trickle)
        await asyncio.wait_for(self.peer.opened.wait(), 15)
        trace.event("data channel open")
        self.announce_tracks()
        self.peer.start_keepalive()
        trace.event_sent("ping: <epoch ms> every 1 s from here on (not shown)")

    def announce_tracks(self):
        # What JS sends when the channel opens: one trackStatus per transceiver.
        self.send_signalling({"type": "trackStatus", "receiver_index": 0, "enabled": True})
        self.send_signalling({"type": "trackStatus", "receiver_index": 1, "enabled": False})

    async def restart(self, reason: str):
        """restart_pc: a brand-new client PC and data channel, the old pc_id, restart_pc true."""
        old_peer, new_peer = self.peer, Peer(self)
        old_pc_id = await self.negotiate(new_peer, restart_pc=True)
        assert self.pc_id != old_pc_id, "restart_pc kept the pc_id"
        self.peer = new_peer
        await old_peer.close()
        await asyncio.wait_for(new_peer.opened.wait(), 15)
        self.book.current.event(f"new data channel open ({reason})")
        self.announce_tracks()
        new_peer.start_keepalive()
        return old_pc_id

    async def close(self):
        if self.peer is not None:
            await self.peer.close()


async def settle(seconds: float = SETTLE_SECS):
    await asyncio.sleep(seconds)


async def request(c: WebRTCClient, t: str, d=None, id: str | None = None) -> tuple[int, str]:
    id = id or f"m-{t}"
    mark = c.inbox.mark()
    c.send(rtvi("client-message", id, {"t": t} if d is None else {"t": t, "d": d}))
    return mark, id


async def handshake(c: WebRTCClient) -> dict:
    mark = c.inbox.mark()
    c.send(rtvi("client-ready", "cr-1", {"version": "2.2.0", "about": CLIENT_ABOUT}))
    return await c.inbox.expect(of_type("bot-ready", "cr-1"), since=mark, what="bot-ready")


async def ping_ok(c: WebRTCClient, id: str, timeout: float = 10.0):
    mark, id = await request(c, "ping", {"after": id}, id=id)
    r = await c.inbox.expect(of_type("server-response", id), since=mark, timeout=timeout)
    assert r["data"]["d"]["pong"] is True, r


def is_signalling(kind: str):
    return lambda m: m.get("type") == "signalling" and m["message"]["type"] == kind


async def main_session(base_url: str, book: TraceBook):
    c = WebRTCClient(base_url, book)
    trace = book.start(
        "webrtc-connect",
        "POST /start, offer to /sessions/{id}/api/offer, data channel, trackStatus, "
        "client-ready -> bot-ready.",
    )
    t0 = time.monotonic()
    await c.connect(via_session=True)
    ready = await handshake(c)
    trace.note(f"bot-ready {1000 * (time.monotonic() - t0):.0f} ms after POST /start.")
    assert ready["data"]["capabilities"]["audio_in"] is True, ready
    await settle(1.0)
    assert c.audio_log, "no bot audio frames (the bot sends silence while idle)"
    formats = sorted(c.audio_formats)
    trace.note(f"bot audio track decoded by aiortc as (rate, layout, samples/frame): {formats}")

    book.start("ping", "A client-message answered by server-response with the same id.")
    mark, id = await request(c, "ping", {"x": 1})
    r = await c.inbox.expect(of_type("server-response", id), since=mark)
    assert r["data"] == {"t": "ping", "d": {"pong": True, "echo": {"x": 1}}}, r
    await settle()

    book.start("server-msg", "The bot sends an unsolicited server-message, then answers.")
    mark, id = await request(c, "server-msg", {"hello": "world"})
    await c.inbox.expect(of_type("server-message"), since=mark)
    await c.inbox.expect(of_type("server-response", id), since=mark)
    await settle()

    book.start("transcript", "An interim then a final user transcription.")
    mark, id = await request(c, "transcript", {"text": "hello there bot"})
    await c.inbox.expect(of_type("server-response", id), since=mark)
    await c.inbox.expect(
        lambda m: m.get("type") == "user-transcription" and m["data"]["final"], since=mark
    )
    await settle()

    book.start("bot-text", "LLM-style bot text that is not spoken.")
    mark, id = await request(c, "bot-text", {"text": "Hello from the bot."})
    await c.inbox.expect(of_type("bot-output"), since=mark)
    await c.inbox.expect(of_type("server-response", id), since=mark)
    await settle()

    book.start("fn-call", "A function call announced by the bot, answered by the client.")
    fn = {"function_name": "get_weather", "tool_call_id": "call-1", "arguments": {"city": "Paris"}}
    mark, id = await request(c, "fn-call", fn)
    await c.inbox.expect(of_type("llm-function-call-in-progress"), since=mark)
    mark = c.inbox.mark()
    c.send(rtvi("llm-function-call-result", "fr-1", {**fn, "result": {"temp": 21}}))
    stopped = await c.inbox.expect(of_type("llm-function-call-stopped"), since=mark)
    assert stopped["data"]["result"] == {"temp": 21}, stopped
    await settle()

    book.start("fail-and-error", "error-response, then a non-fatal RTVI `error`.")
    mark, id = await request(c, "fail", {"error": "nope"})
    await c.inbox.expect(of_type("error-response", id), since=mark)
    mark, id = await request(c, "error", {"error": "boom", "fatal": False})
    await c.inbox.expect(of_type("error"), since=mark)
    await settle()

    book.start("metrics-and-user-speaking", "metrics, user-started/stopped-speaking.")
    mark, id = await request(c, "metrics")
    await c.inbox.expect(of_type("metrics"), since=mark)
    mark, id = await request(c, "user-speaking")
    await c.inbox.expect(of_type("user-stopped-speaking"), since=mark)
    await settle()

    book.start("tone-interrupted", "A 3 s tone cut short by `interrupt`.")
    mark, id = await request(c, "tone", {"ms": 3000, "hz": 440})
    await c.inbox.expect(of_type("bot-started-speaking"), since=mark)
    started = time.monotonic()
    await asyncio.sleep(0.5)
    mark2, id2 = await request(c, "interrupt")
    await c.inbox.expect(of_type("bot-interrupted"), since=mark2)
    await c.inbox.expect(of_type("bot-stopped-speaking"), since=mark2)
    stopped_at = time.monotonic()
    voiced = c.voiced_since(started)
    assert voiced, "no voiced bot audio during the tone"
    peak = max(rms for at, rms in c.audio_log if at >= started)
    book.current.note(
        f"bot-stopped-speaking {1000 * (stopped_at - started):.0f} ms after bot-started-speaking "
        f"for a 3000 ms tone interrupted at 500 ms; voiced audio received until "
        f"{1000 * (max(voiced) - started):.0f} ms; tone peak RMS {peak:.0f} as decoded by "
        "the client (generated at 0.3 FS = 6950)."
    )
    await settle()

    book.start("audio-echo", "1 s of 300 Hz tone from the mic track comes back as bot audio.")
    mark = c.inbox.mark()
    sent_at = time.monotonic()
    c.peer.mic.tone_until = sent_at + 1.0
    book.current.event_sent("mic: 1000 ms of 300 Hz tone (Opus, 20 ms frames)")
    await c.inbox.expect(of_type("bot-started-speaking"), since=mark)
    await c.inbox.expect(of_type("bot-stopped-speaking"), since=mark)
    voiced = c.voiced_since(sent_at)
    assert len(voiced) >= 25, f"only {len(voiced)} voiced echo frames"
    peak = max(rms for at, rms in c.audio_log if at >= sent_at)
    book.current.note(
        f"{len(voiced)} voiced 20 ms frames back; first {1000 * (voiced[0] - sent_at):.0f} ms "
        f"after the tone started; peak RMS {peak:.0f} (sent 0.3 FS)."
    )
    await settle()

    book.start("send-text", "send-text (run_immediately, no audio): interruption and echo reply.")
    mark = c.inbox.mark()
    c.send(
        rtvi(
            "send-text",
            "st-1",
            {
                "content": "Typed text.",
                "options": {"run_immediately": True, "audio_response": False},
            },
        )
    )
    out = await c.inbox.expect(of_type("bot-output"), since=mark)
    assert out["data"]["text"] == "echo: Typed text.", out
    await settle()

    book.start(
        "renegotiate", "The bot asks for renegotiation; the client re-offers on the same PC."
    )
    mark, id = await request(c, "renegotiate")
    r = await c.inbox.expect(of_type("server-response", id), since=mark)
    assert r["data"]["d"] == {"requested": True}, r
    await c.inbox.expect(is_signalling("renegotiate"), since=mark)
    old = await c.negotiate(c.peer)
    assert c.pc_id == old, f"same-PC renegotiation changed pc_id {old} -> {c.pc_id}"
    await ping_ok(c, "m-after-renegotiate")
    mark, id = await request(c, "renegotiate", id="m-renegotiate-2")
    r = await c.inbox.expect(of_type("server-response", id), since=mark)
    book.current.note(f"a second request inside the 2 s guard answers {r['data']['d']}")
    await settle()

    book.start("restart-pc", "restart_pc: new PC and data channel, old pc_id; the session goes on.")
    t = time.monotonic()
    old = await c.restart("restart_pc")
    book.current.note(
        f"pc_id {old} -> {c.pc_id}; data channel back after "
        f"{1000 * (time.monotonic() - t):.0f} ms; no client-ready re-sent"
    )
    await ping_ok(c, "m-after-restart")
    await settle(1.0)
    assert c.voiced_since(0) and c.audio_log[-1][0] > time.monotonic() - 1, "no audio after restart"

    book.start("drop-pc", "The bot kills its PC (mode close); the client recovers with restart_pc.")
    old_peer = c.peer
    mark, id = await request(c, "drop-pc")
    r = await c.inbox.expect(of_type("server-response", id), since=mark)
    assert r["data"]["d"] == {"dropping": c.pc_id, "mode": "close"}, r
    t = time.monotonic()
    await asyncio.wait_for(old_peer.dc_closed.wait(), 15)
    book.current.event(f"client data channel closed after {1000 * (time.monotonic() - t):.0f} ms")
    await asyncio.wait_for(old_peer.pc_closed.wait(), 15)
    book.current.event(
        f"client PC {old_peer.pc.connectionState} after {1000 * (time.monotonic() - t):.0f} ms"
    )
    await c.restart("after drop-pc")
    await ping_ok(c, "m-after-drop")
    mark, id = await request(c, "tone", {"ms": 500, "hz": 440}, id="m-tone-after-drop")
    t = time.monotonic()
    await c.inbox.expect(of_type("bot-stopped-speaking"), since=mark)
    voiced = c.voiced_since(t)
    assert len(voiced) >= 15, f"only {len(voiced)} voiced frames after recovery"
    book.current.note(f"after the recovery a 500 ms tone came back: {len(voiced)} voiced frames")

    book.start("drop-pc-silent", "The bot kills its PC without a word; the client restarts anyway.")
    mark, id = await request(c, "drop-pc", {"mode": "silent"})
    await c.inbox.expect(of_type("server-response", id), since=mark)
    await asyncio.sleep(1.0)
    mark, id = await request(c, "ping", id="m-into-the-void")
    await settle(1.0)
    assert not any(m.get("id") == id for m in c.inbox.messages[mark:]), "dead PC answered"
    book.current.note(
        f"1 s after the silent drop the client PC is still {c.peer.pc.connectionState!r}: "
        "only ICE consent expiry would tell it (seconds)."
    )
    await c.restart("after silent drop-pc")
    await ping_ok(c, "m-after-silent-drop")

    book.start(
        "disconnect-bot", "disconnect-bot: signalling peerLeft, then the server closes the PC."
    )
    mark = c.inbox.mark()
    t = time.monotonic()
    c.send(rtvi("disconnect-bot", "db-1", {}))
    await c.inbox.expect(is_signalling("peerLeft"), since=mark, timeout=15)
    left = time.monotonic() - t
    await asyncio.wait_for(c.peer.pc_closed.wait(), 15)
    book.current.note(
        f"peerLeft {1000 * left:.0f} ms after disconnect-bot; client PC "
        f"{c.peer.pc.connectionState} {1000 * (time.monotonic() - t):.0f} ms after it."
    )
    await c.close()


def finished_sessions(log_path) -> int:
    """How many bot sessions the bot's log says have finished."""
    return len(re.findall(r"peer-bot: session \S+ finished", log_path.read_text()))


async def stall_session(base_url: str, book: TraceBook):
    book.start(
        "restart-pc-while-speaking",
        "Own session. restart_pc in the middle of a 3 s tone: pipecat 1.14 stalls the audio "
        "write in flight on the old PC until its 10 s write timeout, reports a non-fatal error, "
        "and marks the output transport unusable: no more bot audio in this session.",
    )
    c = WebRTCClient(base_url, book)
    await c.connect(via_session=True)
    await handshake(c)
    mark, id = await request(c, "tone", {"ms": 3000, "hz": 440})
    await c.inbox.expect(of_type("bot-started-speaking"), since=mark)
    await asyncio.sleep(0.5)
    t = time.monotonic()
    await c.restart("restart_pc mid-speech")
    e = await c.inbox.expect(of_type("error"), since=mark, timeout=20)
    assert "timed out" in e["data"]["error"] and e["data"]["fatal"] is False, e
    error_at = time.monotonic()
    await c.inbox.expect(of_type("bot-stopped-speaking"), since=mark, timeout=20)
    await ping_ok(c, "m-after-stall")
    mark, id = await request(c, "tone", {"ms": 500, "hz": 440}, id="m-tone-after-stall")
    retry_at = time.monotonic()
    await c.inbox.expect(of_type("server-response", id), since=mark)
    await settle(1.5)
    kinds = [m.get("type") for m in c.inbox.messages[mark:]]
    silent = not c.voiced_since(retry_at)
    book.current.note(
        f"the error came {1000 * (error_at - t):.0f} ms after the restart; voiced 20 ms frames "
        f"on the new PC: {len(c.voiced_since(t))} before the error, "
        f"{len(c.voiced_since(error_at))} after it. A 500 ms tone requested afterwards gave "
        f"{kinds} and {'no' if silent else 'some'} voiced audio: SmallWebRTCOutputTransport is "
        "'no longer usable' (bot log) and drops all audio; RTVI messages still flow."
    )
    assert silent, "bot audio works after the stall: pipecat fixed it, update TRACES.md"
    await c.close()


async def trickle_session(base_url: str, book: TraceBook, log_path):
    book.start(
        "api-offer-trickle",
        "A session without /start: POST /api/offer with the candidates stripped, then PATCH; "
        "the client closes its PC and the bot's pipeline ends.",
    )
    c = WebRTCClient(base_url, book)
    await c.connect(via_session=False, trickle=True)
    await handshake(c)
    await ping_ok(c, "m-trickle")
    sessions_before = finished_sessions(log_path)
    await c.close()
    book.current.event_sent("client closed its PC")
    deadline = time.monotonic() + 10
    while finished_sessions(log_path) == sessions_before:
        assert time.monotonic() < deadline, "the bot did not end the session"
        await asyncio.sleep(0.1)
    book.current.note("the bot logged on_client_disconnected and its session finished")


async def ending_sessions(base_url: str, book: TraceBook):
    book.start("end", "The bot ends the session (EndWorkerFrame): peerLeft.")
    c = WebRTCClient(base_url, book)
    await c.connect(via_session=True)
    await handshake(c)
    mark, id = await request(c, "end")
    t = time.monotonic()
    await c.inbox.expect(is_signalling("peerLeft"), since=mark, timeout=15)
    book.current.note(f"peerLeft {1000 * (time.monotonic() - t):.0f} ms after `end`")
    await c.close()

    book.start("fatal-error", "A fatal ErrorFrame: `error` fatal true, then peerLeft.")
    c = WebRTCClient(base_url, book)
    await c.connect(via_session=True)
    await handshake(c)
    mark, id = await request(c, "error", {"error": "fatal boom", "fatal": True})
    await c.inbox.expect(of_type("error"), since=mark)
    await c.inbox.expect(is_signalling("peerLeft"), since=mark, timeout=15)
    await c.close()

    book.start("unknown-session", "An offer to a session id /start never gave out.")
    c = WebRTCClient(base_url, book)
    c.session_id = "no-such-session"
    c.offer_url = f"{base_url}/sessions/no-such-session/api/offer"
    peer = Peer(c)
    try:
        await c.negotiate(peer)
        raise AssertionError("the offer to an unknown session was answered")
    except Exception as e:  # urllib's HTTPError
        status = getattr(e, "code", None)
        body = e.read().decode() if hasattr(e, "read") else str(e)
        assert status == 404, e
        book.current.event(f"HTTP {status} {body!r}")
    await peer.close()


async def run(base_url: str, book: TraceBook, log_path):
    await main_session(base_url, book)
    await trickle_session(base_url, book, log_path)
    await ending_sessions(base_url, book)
    await stall_session(base_url, book)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--traces", help="write the scenario traces (Markdown) here")
    args = parser.parse_args()
    book = TraceBook("SmallWebRTC (data channel)")
    try:
        with BotProcess("-t", "webrtc", "--loopback-ice") as bot:
            asyncio.run(run(bot.base_url, book, bot.log_path))
        assert bot.exit_code == 0, f"bot exit code {bot.exit_code}"
    finally:
        book.write(args.traces)
    print("check_webrtc: all scenarios passed")


if __name__ == "__main__":
    sys.exit(main())
