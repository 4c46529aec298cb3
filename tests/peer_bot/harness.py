#
# Shared pieces of the peer bot's Python check clients (check_websocket.py, check_webrtc.py):
# launching bot.py on a free loopback port, recording what each scenario puts on the wire,
# and waiting for RTVI messages. Standard library only (plus what the venv has), loopback only.
#

"""Test harness for the peer bot's Python check clients."""

import asyncio
import json
import math
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

BOT = Path(__file__).resolve().parent / "bot.py"

# How long the bot may take to answer GET /status after launch (it needs ~1.3 s).
STARTUP_TIMEOUT_SECS = 30.0

# How long the bot may take to exit after SIGTERM before the harness kills it.
SHUTDOWN_TIMEOUT_SECS = 15.0

# Default wait for one expected message.
EXPECT_TIMEOUT_SECS = 10.0


def free_port() -> int:
    """A TCP port that was free on loopback a moment ago (never pipecat's default 7860)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port != 7860:
            return port


def http_json(method: str, url: str, body: Any = None, timeout: float = 10.0) -> Any:
    """One JSON request; returns the decoded answer (raises on non-2xx)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read() or b"null")


def pcm16_rms(pcm: bytes) -> float:
    """Root mean square of PCM16 little-endian samples."""
    count = len(pcm) // 2
    if count == 0:
        return 0.0
    samples = struct.unpack(f"<{count}h", pcm[: count * 2])
    return math.sqrt(sum(s * s for s in samples) / count)


def sine_pcm16(ms: int, hz: float, sample_rate: int, amplitude: float = 0.3) -> bytes:
    """`ms` milliseconds of a mono sine tone, PCM16 little-endian."""
    count = sample_rate * ms // 1000
    step = 2 * math.pi * hz / sample_rate
    scale = amplitude * 32767
    return struct.pack(f"<{count}h", *(int(scale * math.sin(step * i)) for i in range(count)))


class BotProcess:
    """bot.py running on a free loopback port; a context manager that stops it on exit."""

    def __init__(self, *extra_args: str, log_path: Path | None = None):
        self.port = free_port()
        self.base_url = f"http://localhost:{self.port}"
        self.extra_args = list(extra_args)
        self.log_path = log_path or Path(f"/tmp/peer-bot-{self.port}.log")
        self.exit_code: int | None = None
        self.shutdown_secs: float | None = None
        self._process: subprocess.Popen | None = None

    def __enter__(self) -> "BotProcess":
        log = open(self.log_path, "wb")
        command = [sys.executable, str(BOT), "--host", "localhost", "--port", str(self.port)]
        started = time.monotonic()
        self._process = subprocess.Popen(
            [*command, *self.extra_args], stdout=log, stderr=log, stdin=subprocess.DEVNULL
        )
        log.close()
        # Readiness: the runner answers GET /status once uvicorn listens.
        while True:
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"bot exited early ({self._process.returncode}); see {self.log_path}"
                )
            try:
                status = http_json("GET", f"{self.base_url}/status", timeout=1.0)
                if status.get("status") == "ready":
                    break
            except OSError:
                pass
            if time.monotonic() - started > STARTUP_TIMEOUT_SECS:
                raise RuntimeError(f"bot not ready after {STARTUP_TIMEOUT_SECS} s")
            time.sleep(0.05)
        self.startup_secs = time.monotonic() - started
        print(f"bot ready on {self.base_url} after {self.startup_secs:.2f} s (log {self.log_path})")
        return self

    def stop(self) -> int:
        """SIGTERM, then SIGKILL after SHUTDOWN_TIMEOUT_SECS; returns the exit code."""
        assert self._process is not None
        if self._process.poll() is None:
            started = time.monotonic()
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(SHUTDOWN_TIMEOUT_SECS)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self.shutdown_secs = time.monotonic() - started
        self.exit_code = self._process.returncode
        return self.exit_code

    def __exit__(self, *exc):
        code = self.stop()
        print(f"bot exited with {code} after SIGTERM ({self.shutdown_secs or 0:.2f} s)")


class Inbox:
    """Every RTVI (or signalling) message received, with waiters for expected ones."""

    def __init__(self):
        self.messages: list[dict] = []
        self._changed = asyncio.Event()

    def push(self, message: dict):
        self.messages.append(message)
        self._changed.set()

    def mark(self) -> int:
        """The index the next message will get: a scenario's starting point."""
        return len(self.messages)

    async def expect(
        self,
        predicate: Callable[[dict], bool],
        *,
        since: int = 0,
        timeout: float = EXPECT_TIMEOUT_SECS,
        what: str = "",
    ) -> dict:
        """The first message at or after `since` that matches, waiting for it if needed."""
        deadline = time.monotonic() + timeout
        while True:
            for message in self.messages[since:]:
                if predicate(message):
                    return message
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                seen = [m.get("type") for m in self.messages[since:]]
                raise AssertionError(f"timed out waiting for {what or predicate}; saw {seen}")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                pass


def of_type(kind: str, id: str | None = None) -> Callable[[dict], bool]:
    """Predicate: an RTVI message of this type (and id, if given)."""
    return lambda m: m.get("type") == kind and (id is None or m.get("id") == id)


class AudioStats:
    """What a stretch of received bot audio looked like."""

    def __init__(self):
        self.frames = 0
        self.bytes = 0
        self.sizes: dict[int, int] = {}
        self.formats: set[tuple[int, int]] = set()
        self.max_rms = 0.0
        self.voiced_frames = 0

    def add(self, pcm: bytes, sample_rate: int, num_channels: int):
        self.frames += 1
        self.bytes += len(pcm)
        self.sizes[len(pcm)] = self.sizes.get(len(pcm), 0) + 1
        self.formats.add((sample_rate, num_channels))
        rms = pcm16_rms(pcm)
        self.max_rms = max(self.max_rms, rms)
        if rms > 500:
            self.voiced_frames += 1

    def summary(self) -> str:
        formats = ", ".join(f"{r} Hz x{c}" for r, c in sorted(self.formats))
        sizes = ", ".join(f"{n}x{size} B" for size, n in sorted(self.sizes.items()))
        return (
            f"{self.frames} frames ({formats}; sizes {sizes}), "
            f"{self.voiced_frames} voiced, max RMS {self.max_rms:.0f}"
        )


class Trace:
    """The wire log of one scenario: client messages (`>`), server messages (`<`), notes."""

    def __init__(self, name: str, description: str):
        self.name = name
        self.description = description
        self.lines: list[str] = []
        self.notes: list[str] = []
        self.started = time.monotonic()
        self._audio: AudioStats | None = None

    def _flush_audio(self):
        if self._audio is not None:
            self.lines.append(f"< [audio] {self._audio.summary()}")
            self._audio = None

    def sent(self, raw: str):
        self._flush_audio()
        self.lines.append(f"> {raw}")

    def received(self, raw: str):
        self._flush_audio()
        self.lines.append(f"< {raw}")

    def event(self, text: str):
        """A non-RTVI happening on the wire (a protobuf interruption, a close, a track)."""
        self._flush_audio()
        self.lines.append(f"< [{text}]")

    def event_sent(self, text: str):
        """A non-RTVI thing the client put on the wire (audio, a keepalive, a close)."""
        self._flush_audio()
        self.lines.append(f"> [{text}]")

    def audio(self, pcm: bytes, sample_rate: int, num_channels: int):
        if self._audio is None:
            self._audio = AudioStats()
        self._audio.add(pcm, sample_rate, num_channels)

    def note(self, text: str):
        self.notes.append(text)

    def markdown(self) -> str:
        self._flush_audio()
        out = [f"#### `{self.name}`", "", self.description, "", "```", *self.lines, "```"]
        if self.notes:
            out += ["", *(f"- {n}" for n in self.notes)]
        return "\n".join(out) + "\n"


class TraceBook:
    """All scenarios of one check run, written out as Markdown for TRACES.md."""

    def __init__(self, title: str):
        self.title = title
        self.traces: list[Trace] = []
        self.current: Trace | None = None

    def start(self, name: str, description: str) -> Trace:
        self.current = Trace(name, description)
        self.traces.append(self.current)
        print(f"-- {name}")
        return self.current

    def write(self, path: str | None):
        if not path:
            return
        text = f"### {self.title}\n\n" + "\n".join(t.markdown() for t in self.traces)
        Path(path).write_text(text)
        print(f"traces written to {path}")


def rtvi(kind: str, id: str | None = None, data: Any = None) -> dict:
    """A client RTVI envelope (`id` and `data` left out when None)."""
    message: dict[str, Any] = {"label": "rtvi-ai", "type": kind}
    if id is not None:
        message["id"] = id
    if data is not None:
        message["data"] = data
    return message


CLIENT_ABOUT = {"library": "peer-check", "library_version": "0.1.0", "platform": "linux"}
