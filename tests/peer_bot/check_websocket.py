#!/usr/bin/env python3
#
# Exercises the peer bot over pipecat's WebSocket transport exactly the way the Rust SDK will:
# POST /start {"transport":"websocket"}, a binary protobuf `pipecat.Frame` per WebSocket
# message (RTVI JSON in MessageFrame.data, PCM16 in AudioRawFrame), client-ready -> bot-ready,
# every scripted client message, send-text, a function-call round trip, audio echo, and the
# ways a session ends. Fails (exit 1) on the first broken expectation.
#
#   target/peer-venv/bin/python tests/peer_bot/check_websocket.py [--traces out.md] [--url URL]
#
# Without --url it launches bot.py on a free loopback port and stops it with SIGTERM.

"""WebSocket check client for the peer bot."""

import argparse
import asyncio
import json
import sys
import time

from pipecat.frames.protobufs import frames_pb2
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from harness import (
    CLIENT_ABOUT,
    AudioStats,
    BotProcess,
    Inbox,
    TraceBook,
    http_json,
    of_type,
    pcm16_rms,
    rtvi,
    sine_pcm16,
)

# Client audio: what the JS websocket transport sends (16 kHz mono, 512-sample chunks).
CLIENT_SAMPLE_RATE = 16000
CLIENT_CHUNK_BYTES = 1024

# How long a scenario keeps listening after its last expected message, for stragglers.
SETTLE_SECS = 0.4


class WsSession:
    """One WebSocket connection to the bot, recording everything into the trace book."""

    def __init__(self, book: TraceBook):
        self.book = book
        self.inbox = Inbox()
        self.audio = AudioStats()
        self.audio_times: list[tuple[float, float]] = []  # (arrival time, rms) of bot audio
        self.close_code: int | None = None
        self.close_reason = ""
        self.closed = asyncio.Event()
        self._ws = None
        self._reader: asyncio.Task | None = None

    async def open(self, url: str):
        self._ws = await connect(url, max_size=None)
        self._reader = asyncio.create_task(self._read())

    async def _read(self):
        assert self._ws is not None
        try:
            async for payload in self._ws:
                self._on_payload(payload)
        except ConnectionClosed:
            pass
        finally:
            self.close_code = self._ws.close_code
            self.close_reason = self._ws.close_reason or ""
            if self.book.current:
                self.book.current.event(f"websocket close {self.close_code} {self.close_reason!r}")
            self.closed.set()

    def _on_payload(self, payload: bytes | str):
        trace = self.book.current
        if isinstance(payload, str):
            raise AssertionError(f"the server sent a text WebSocket message: {payload!r}")
        frame = frames_pb2.Frame()
        frame.ParseFromString(payload)
        kind = frame.WhichOneof("frame")
        if kind == "message":
            raw = frame.message.data
            self.inbox.push(json.loads(raw))
            trace.received(raw)
        elif kind == "audio":
            audio = frame.audio
            assert not audio.HasField("pts"), "bot audio carries a pts"
            self.audio.add(audio.audio, audio.sample_rate, audio.num_channels)
            self.audio_times.append((time.monotonic(), pcm16_rms(audio.audio)))
            trace.audio(audio.audio, audio.sample_rate, audio.num_channels)
        elif kind == "interruption":
            i = frame.interruption
            self.inbox.push({"_frame": "interruption", "id": i.id, "name": i.name})
            trace.event(f"protobuf InterruptionFrame id={i.id} name={i.name!r}")
        else:
            trace.event(f"protobuf {kind}: {frame}")

    async def send(self, message: dict):
        raw = json.dumps(message)
        self.book.current.sent(raw)
        frame = frames_pb2.Frame()
        frame.message.data = raw
        await self._ws.send(frame.SerializeToString())

    async def send_audio(self, pcm: bytes, *, realtime: bool = True):
        """Send PCM16 mono at 16 kHz in the JS client's 1024-byte chunks, paced in real time."""
        chunk_secs = CLIENT_CHUNK_BYTES / 2 / CLIENT_SAMPLE_RATE
        next_time = time.monotonic()
        for start in range(0, len(pcm), CLIENT_CHUNK_BYTES):
            frame = frames_pb2.Frame()
            frame.audio.audio = pcm[start : start + CLIENT_CHUNK_BYTES]
            frame.audio.sample_rate = CLIENT_SAMPLE_RATE
            frame.audio.num_channels = 1
            frame.audio.name = "audio"
            await self._ws.send(frame.SerializeToString())
            if realtime:
                next_time += chunk_secs
                await asyncio.sleep(max(0.0, next_time - time.monotonic()))

    async def close(self):
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            await self._reader


async def settle(seconds: float = SETTLE_SECS):
    await asyncio.sleep(seconds)


async def start_session(base_url: str, book: TraceBook) -> tuple[WsSession, dict]:
    """POST /start, connect to the advertised wsUrl."""
    start = http_json("POST", f"{base_url}/start", {"transport": "websocket"})
    assert set(start) >= {"wsUrl", "sessionId", "token"}, start
    assert start["wsUrl"].startswith("ws://localhost:"), start
    assert start["token"] is None, start
    session = WsSession(book)
    await session.open(start["wsUrl"])
    return session, start


async def handshake(s: WsSession, version: str | None = "2.2.0", id: str = "cr-1") -> dict:
    data = {"about": CLIENT_ABOUT}
    if version is not None:
        data["version"] = version
    mark = s.inbox.mark()
    await s.send(rtvi("client-ready", id, data))
    return await s.inbox.expect(of_type("bot-ready", id), since=mark, what="bot-ready")


async def request(s: WsSession, t: str, d=None, id: str | None = None) -> tuple[int, str]:
    """Send a client-message; returns (inbox mark before sending, its id)."""
    id = id or f"m-{t}"
    mark = s.inbox.mark()
    data = {"t": t} if d is None else {"t": t, "d": d}
    await s.send(rtvi("client-message", id, data))
    return mark, id


async def main_session(base_url: str, book: TraceBook):
    trace = book.start("ws-connect", "POST /start, connect to wsUrl, client-ready -> bot-ready.")
    t0 = time.monotonic()
    s, start = await start_session(base_url, book)
    trace.note(f"/start answered `{json.dumps(start)}` (sessionId is never used by the bot).")
    ready = await handshake(s)
    trace.note(f"bot-ready {1000 * (time.monotonic() - t0):.0f} ms after POST /start.")
    assert ready["data"]["version"] == "2.2.0", ready
    assert ready["data"]["about"] == {"library": "pipecat-ai", "library_version": "1.14.0"}
    caps = ready["data"]["capabilities"]
    assert caps["audio_in"] and caps["audio_out"], caps
    await settle()

    book.start("ping", "A client-message answered by server-response with the same id.")
    mark, id = await request(s, "ping", {"x": 1})
    r = await s.inbox.expect(of_type("server-response", id), since=mark)
    assert r["data"] == {"t": "ping", "d": {"pong": True, "echo": {"x": 1}}}, r
    await settle()

    book.start("server-msg", "The bot sends an unsolicited server-message, then answers.")
    mark, id = await request(s, "server-msg", {"hello": "world"})
    m = await s.inbox.expect(of_type("server-message"), since=mark)
    assert m["data"] == {"hello": "world"} and "id" not in m, m
    await s.inbox.expect(of_type("server-response", id), since=mark)
    await settle()

    book.start("transcript", "An interim then a final user transcription (as an STT would).")
    mark, id = await request(s, "transcript", {"text": "hello there bot"})
    await s.inbox.expect(of_type("server-response", id), since=mark)
    finals = []
    for final in (False, True):
        u = await s.inbox.expect(
            lambda m, f=final: m.get("type") == "user-transcription" and m["data"]["final"] == f,
            since=mark,
        )
        finals.append(u)
        await s.inbox.expect(
            lambda m, f=final: m.get("type") == "user-input" and m["data"]["final"] == f,
            since=mark,
        )
    assert finals[1]["data"]["text"] == "hello there bot", finals
    await settle()

    book.start("bot-text", "LLM-style bot text that is not spoken (skip_tts).")
    mark, id = await request(s, "bot-text", {"text": "Hello from the bot."})
    for kind in ("bot-llm-started", "bot-llm-text", "bot-transcription", "bot-llm-stopped"):
        await s.inbox.expect(of_type(kind), since=mark, what=kind)
    out = await s.inbox.expect(of_type("bot-output"), since=mark)
    assert out["data"]["text"] == "Hello from the bot.", out
    assert out["data"]["spoken_status"] == "new" and out["data"]["will_be_spoken"] is False, out
    await s.inbox.expect(of_type("server-response", id), since=mark)
    await settle()

    book.start("fn-call", "A function call announced by the bot, answered by the client.")
    fn = {"function_name": "get_weather", "tool_call_id": "call-1", "arguments": {"city": "Paris"}}
    mark, id = await request(s, "fn-call", fn)
    started = await s.inbox.expect(of_type("llm-function-call-started"), since=mark)
    assert started["data"] == {"function_name": "get_weather"}, started
    progress = await s.inbox.expect(of_type("llm-function-call-in-progress"), since=mark)
    assert progress["data"] == fn, progress
    await s.inbox.expect(of_type("server-response", id), since=mark)
    mark = s.inbox.mark()
    await s.send(rtvi("llm-function-call-result", "fr-1", {**fn, "result": {"temp": 21}}))
    stopped = await s.inbox.expect(of_type("llm-function-call-stopped"), since=mark)
    assert stopped["data"] == {
        "tool_call_id": "call-1",
        "cancelled": False,
        "function_name": "get_weather",
        "result": {"temp": 21},
    }, stopped
    await settle()

    book.start("fail", "The bot answers a client-message with error-response.")
    mark, id = await request(s, "fail", {"error": "nope"})
    e = await s.inbox.expect(of_type("error-response", id), since=mark)
    assert e["data"] == {"error": "nope"}, e
    await settle()

    book.start("error", "A non-fatal pipeline ErrorFrame: RTVI `error`, the session goes on.")
    mark, id = await request(s, "error", {"error": "boom", "fatal": False})
    await s.inbox.expect(of_type("server-response", id), since=mark)
    e = await s.inbox.expect(of_type("error"), since=mark)
    assert e["data"] == {"error": "boom", "fatal": False} and "id" not in e, e
    await settle()

    book.start("echo-other", "An unscripted `t` is echoed back.")
    mark, id = await request(s, "something-else", {"a": [1, 2]})
    r = await s.inbox.expect(of_type("server-response", id), since=mark)
    assert r["data"] == {"t": "something-else", "d": {"a": [1, 2]}}, r
    await settle()

    book.start("invalid", "Messages the server rejects: unsupported type, missing `t`.")
    mark = s.inbox.mark()
    await s.send(rtvi("append-to-context", "atc-1", {"role": "user", "content": "x"}))
    e = await s.inbox.expect(of_type("error-response", "atc-1"), since=mark)
    assert e["data"] == {"error": "Unsupported type append-to-context"}, e
    await s.send(rtvi("client-message", "m-no-t", {"d": 1}))
    e = await s.inbox.expect(of_type("error-response", "m-no-t"), since=mark)
    assert e["data"]["error"].startswith("Invalid message:"), e
    await settle()

    book.start("dtmf", "DTMF keys ({buttons}): accepted silently, no reply.")
    mark = s.inbox.mark()
    await s.send(rtvi("dtmf", "dt-1", {"buttons": ["1", "#"]}))
    await settle(0.6)
    assert s.inbox.messages[mark:] == [], s.inbox.messages[mark:]

    book.start("metrics", "A MetricsFrame (TTFB + processing) becomes an RTVI `metrics` message.")
    mark, id = await request(s, "metrics")
    m = await s.inbox.expect(of_type("metrics"), since=mark)
    assert set(m["data"]) == {"ttfb", "processing"}, m
    await s.inbox.expect(of_type("server-response", id), since=mark)
    await settle()

    book.start("user-speaking", "User turn start / stop events.")
    mark, id = await request(s, "user-speaking")
    await s.inbox.expect(of_type("user-started-speaking"), since=mark)
    await s.inbox.expect(of_type("user-stopped-speaking"), since=mark)
    await s.inbox.expect(of_type("server-response", id), since=mark)
    await settle()

    book.start("interrupt", "An interruption: protobuf InterruptionFrame plus `bot-interrupted`.")
    mark, id = await request(s, "interrupt")
    await s.inbox.expect(lambda m: m.get("_frame") == "interruption", since=mark)
    await s.inbox.expect(of_type("bot-interrupted"), since=mark)
    await s.inbox.expect(of_type("server-response", id), since=mark)
    await settle()

    book.start("webrtc-only", "`renegotiate` and `drop-pc` need SmallWebRTC.")
    mark, id = await request(s, "renegotiate")
    await s.inbox.expect(of_type("error-response", id), since=mark)
    mark, id = await request(s, "drop-pc")
    await s.inbox.expect(of_type("error-response", id), since=mark)
    await settle()

    book.start("tone", "A 600 ms 440 Hz tone: bot speech audio and the speaking events.")
    before = s.audio.voiced_frames
    mark, id = await request(s, "tone", {"ms": 600, "hz": 440})
    r = await s.inbox.expect(of_type("server-response", id), since=mark)
    assert r["data"]["d"] == {"samples": 14400}, r
    await s.inbox.expect(of_type("bot-started-speaking"), since=mark)
    await s.inbox.expect(of_type("bot-stopped-speaking"), since=mark)
    voiced = s.audio.voiced_frames - before
    assert voiced >= 14, f"only {voiced} voiced audio frames"
    book.current.note(f"{voiced} voiced 40 ms frames received for 600 ms of tone.")
    await settle()

    book.start("audio-echo", "1 s of 16 kHz tone sent up (1024-byte chunks) comes back at 24 kHz.")
    mark = s.inbox.mark()
    sent_at = time.monotonic()
    book.current.event_sent("audio: 1000 ms of 300 Hz tone, 16000 Hz x1, 32 frames of 1024 B")
    await s.send_audio(sine_pcm16(1000, 300, CLIENT_SAMPLE_RATE))
    await s.inbox.expect(of_type("bot-started-speaking"), since=mark)
    await s.inbox.expect(of_type("bot-stopped-speaking"), since=mark)
    echoed = [(t, rms) for t, rms in s.audio_times if t >= sent_at and rms > 500]
    assert len(echoed) >= 20, f"only {len(echoed)} voiced echo frames"
    first_echo_ms = 1000 * (echoed[0][0] - sent_at)
    book.current.note(
        f"{len(echoed)} voiced echo frames; first voiced echo {first_echo_ms:.0f} ms after the "
        f"first chunk was sent; peak RMS {max(r for _, r in echoed):.0f} (sent 0.3 FS = 6950)."
    )
    await settle()

    book.start("send-text", "send-text with run_immediately (default) and audio_response false.")
    mark = s.inbox.mark()
    await s.send(
        rtvi(
            "send-text",
            "st-1",
            {
                "content": "Typed text.",
                "options": {"run_immediately": True, "audio_response": False},
            },
        )
    )
    await s.inbox.expect(lambda m: m.get("_frame") == "interruption", since=mark)
    await s.inbox.expect(of_type("bot-interrupted"), since=mark)
    u = await s.inbox.expect(of_type("user-input"), since=mark)
    assert u["data"]["input_type"] == "chat" and u["data"]["msg_id"] == "st-1", u
    await s.inbox.expect(of_type("bot-transcription"), since=mark)
    out = await s.inbox.expect(of_type("bot-output"), since=mark)
    assert out["data"]["text"] == "echo: Typed text.", out
    await s.inbox.expect(of_type("bot-llm-stopped"), since=mark)
    await settle()

    book.start(
        "send-text-queued", "send-text with run_immediately false: no interruption, no reply."
    )
    mark = s.inbox.mark()
    await s.send(
        rtvi("send-text", "st-2", {"content": "later", "options": {"run_immediately": False}})
    )
    await s.inbox.expect(of_type("user-input"), since=mark)
    await settle(0.8)
    kinds = [m.get("type") or m.get("_frame") for m in s.inbox.messages[mark:]]
    assert kinds == ["user-input"], kinds

    book.start("disconnect-bot", "The client asks the bot to leave: trailing silence, close 1000.")
    mark = s.inbox.mark()
    audio_before = s.audio.frames
    sent_at = time.monotonic()
    await s.send(rtvi("disconnect-bot", "db-1", {}))
    await asyncio.wait_for(s.closed.wait(), 15)
    assert s.close_code == 1000, s.close_code
    assert s.inbox.messages[mark:] == [], s.inbox.messages[mark:]
    book.current.note(
        f"Closed {1000 * (time.monotonic() - sent_at):.0f} ms after disconnect-bot; "
        f"{s.audio.frames - audio_before} audio frames arrived in between."
    )
    await s.close()
    return s


async def version_sessions(base_url: str, book: TraceBook):
    cases = [
        ("version-1.x", "1.2.0", None),
        ("version-3.x", "3.0.0", "RTVI version 3.0.0 is not compatible"),
        ("version-malformed", "2.1", "Invalid client version format (2.1)."),
        ("version-missing", None, "Client version unknown."),
    ]
    for name, version, error in cases:
        book.start(name, f"client-ready with version {version!r} (own session).")
        s, _ = await start_session(base_url, book)
        mark = s.inbox.mark()
        ready = await handshake(s, version)
        if error is None:
            assert ready["data"]["version"] == version, ready
        else:
            e = await s.inbox.expect(of_type("error-response", "cr-1"), since=mark)
            assert e["data"]["error"].startswith(error), e
            assert s.inbox.messages.index(e) < s.inbox.messages.index(ready), "order"
        await settle(0.2)
        await s.close()
        book.current.note(f"the client closed; close code seen by the client {s.close_code}")


async def ending_sessions(base_url: str, book: TraceBook):
    book.start("end", "The bot ends the session itself (EndWorkerFrame): close 1000.")
    s, _ = await start_session(base_url, book)
    await handshake(s)
    mark, id = await request(s, "end")
    await s.inbox.expect(of_type("server-response", id), since=mark)
    await asyncio.wait_for(s.closed.wait(), 15)
    assert s.close_code == 1000, s.close_code
    await s.close()

    book.start("fatal-error", "A fatal ErrorFrame: `error` with fatal true, then the close.")
    s, _ = await start_session(base_url, book)
    await handshake(s)
    mark, id = await request(s, "error", {"error": "fatal boom", "fatal": True})
    await s.inbox.expect(of_type("server-response", id), since=mark)
    e = await s.inbox.expect(of_type("error"), since=mark)
    assert e["data"] == {"error": "fatal boom", "fatal": True}, e
    await asyncio.wait_for(s.closed.wait(), 15)
    book.current.note(f"close code {s.close_code}")
    await s.close()

    book.start("client-close", "The client closes first; the bot cancels its pipeline.")
    s, _ = await start_session(base_url, book)
    await handshake(s)
    await s.close()
    book.current.note(f"close code seen by the client {s.close_code}")


async def run(base_url: str, book: TraceBook):
    await main_session(base_url, book)
    await version_sessions(base_url, book)
    await ending_sessions(base_url, book)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", help="use a running bot instead of launching one")
    parser.add_argument("--traces", help="write the scenario traces (Markdown) here")
    args = parser.parse_args()
    book = TraceBook("WebSocket (protobuf)")
    try:
        if args.url:
            asyncio.run(run(args.url, book))
        else:
            with BotProcess("-t", "websocket") as bot:
                asyncio.run(run(bot.base_url, book))
            assert bot.exit_code == 0, f"bot exit code {bot.exit_code}"
    finally:
        book.write(args.traces)
    print("check_websocket: all scenarios passed")


if __name__ == "__main__":
    sys.exit(main())
